//! A 0.11 session: read a 256-byte-header frame, run it, write the reply,
//! repeat.
//!
//! The protocol is strictly one request, one reply, in order. A malformed or
//! oversize frame ends only this connection (with an eviction when the
//! client can still be told why); every other client is unaffected.

use super::{Shutdown, idle, record_request};
use crate::broker::Broker;
use crate::command::login::{LoginOutcome, login_register, logout};
use crate::command::{Context, dispatch};
use crate::protocol::reply::{begin, eviction, finish};
use crate::protocol::{FrameError, RequestFrame, read_frame};
use crate::session::Session;
use bytes::BytesMut;
use iggy_binary_protocol::codes::{
    LOGIN_REGISTER_CODE, LOGIN_USER_CODE, LOGIN_WITH_PERSONAL_ACCESS_TOKEN_CODE, LOGOUT_USER_CODE,
};
use iggy_binary_protocol::consensus::{EvictionReason, HEADER_SIZE, Operation};
use tokio::io::{AsyncBufRead, AsyncWrite};

/// Serve 0.11 requests until the client leaves, a frame is malformed, or
/// shutdown is signalled (checked between requests, so a request that has
/// started is always answered).
pub async fn serve<R, W>(
    broker: &Broker,
    session: &mut Session,
    mut reader: R,
    mut writer: W,
    mut shutdown: Shutdown,
) where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let client_id = session.client_id;
    let mut request = idle::buffer();
    let mut reply = idle::buffer();
    let mut idle_watch = idle::IdleWatch::new(idle::IDLE_RELEASE_AFTER);
    let max_frame = broker.effective.max_request_bytes;
    loop {
        let read = tokio::select! {
            read = async {
                let buffers = &mut [&mut request, &mut reply];
                idle_watch
                    .awaiting_next_request(idle::first_bytes(&mut reader), buffers)
                    .await;
                read_frame(&mut reader, &mut request, max_frame).await
            } => read,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let Some(answer) = answer(broker, session, read, &mut request, &mut reply).await else {
            break;
        };
        if let Err(e) = super::send_reply(&mut writer, &reply).await {
            tracing::debug!(client_id, "write failed: {e}");
            break;
        }
        if answer == Answer::Evicted {
            break;
        }
    }
}

/// How a request was answered; the bytes to send are in the reply buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A reply; the session goes on.
    Replied,
    /// An eviction; the session ends once it is sent.
    Evicted,
}

/// Answer one read attempt: run the request and fill `reply`. `None` when
/// the connection is gone or broken beyond telling the client why. Shared
/// by every transport that carries 0.11 frames (TCP, QUIC, WebSocket).
pub async fn answer(
    broker: &Broker,
    session: &mut Session,
    read: Result<RequestFrame, FrameError>,
    request: &mut BytesMut,
    reply: &mut BytesMut,
) -> Option<Answer> {
    let client_id = session.client_id;
    let frame = match read {
        Ok(frame) => frame,
        Err(FrameError::Closed) => return None,
        Err(FrameError::Io(e)) => {
            tracing::debug!(client_id, "connection error: {e}");
            return None;
        }
        Err(e @ (FrameError::TooLarge { .. } | FrameError::Malformed(_))) => {
            tracing::warn!(client_id, address = %session.address, "closing connection: {e}");
            let reason = match e {
                FrameError::TooLarge { .. } => EvictionReason::InvalidRequestBodySize,
                _ => EvictionReason::InvalidRequestOperation,
            };
            return Some(evict(reply, session.vsr_client, reason));
        }
    };
    let header = frame.header;
    let started = std::time::Instant::now();
    let mut ctx = Context {
        broker,
        session: &mut *session,
    };
    begin(reply, header.operation);
    let body = &mut request[HEADER_SIZE..];
    let status = match frame.code {
        LOGIN_REGISTER_CODE if header.operation == Operation::Register => {
            match login_register(&mut ctx, header.client, body, reply).await {
                LoginOutcome::Ok => 0,
                LoginOutcome::Refused(e) => e.code(),
                LoginOutcome::Evict(reason) => return Some(evict(reply, header.client, reason)),
            }
        }
        LOGOUT_USER_CODE => {
            logout(&mut ctx);
            0
        }
        // Pre-0.11 login commands cannot open a 0.11 session.
        LOGIN_USER_CODE | LOGIN_WITH_PERSONAL_ACCESS_TOKEN_CODE => {
            return Some(evict(reply, header.client, EvictionReason::MalformedLogin));
        }
        code => {
            let stale_session = header.operation != Operation::NonReplicated
                && header.session != ctx.session.session;
            // Replicated requests carry a request number the SDK reuses when
            // it replays one answered "not committed" (status 57).
            ctx.session.request =
                (header.operation != Operation::NonReplicated).then_some(header.request);
            let result = if stale_session {
                Err(crate::error::Error::Unauthenticated)
            } else {
                dispatch(&mut ctx, code, body, reply).await
            };
            match result {
                Ok(()) => 0,
                Err(e) => {
                    tracing::debug!(client_id, code, "request failed: {e}");
                    e.code()
                }
            }
        }
    };
    finish(reply, &header, status, broker.metadata.applied_index());
    record_request(broker, frame.code, started, status);
    Some(Answer::Replied)
}

fn evict(reply: &mut BytesMut, client: u128, reason: EvictionReason) -> Answer {
    reply.clear();
    reply.extend_from_slice(&eviction(client, reason));
    Answer::Evicted
}
