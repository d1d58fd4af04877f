//! One client connection: read a frame, run it, write the reply, repeat.
//!
//! The protocol is strictly one request, one reply, in order. A malformed or
//! oversize frame ends only this connection (with an eviction when the
//! client can still be told why); every other client is unaffected.

use crate::broker::Broker;
use crate::command::login::{LoginOutcome, login_register, logout};
use crate::command::{Context, dispatch};
use crate::protocol::reply::{begin, eviction, finish};
use crate::protocol::{FrameError, read_frame};
use crate::session::Session;
use bytes::BytesMut;
use iggy_binary_protocol::codes::{
    LOGIN_REGISTER_CODE, LOGIN_USER_CODE, LOGIN_WITH_PERSONAL_ACCESS_TOKEN_CODE, LOGOUT_USER_CODE,
};
use iggy_binary_protocol::consensus::{EvictionReason, HEADER_SIZE, Operation};
use iggy_binary_protocol::lookup_command;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// Read-buffer size: large enough that a 1 MB batch arrives in few reads.
const READ_BUFFER_BYTES: usize = 256 * 1024;

/// Serve one connection until the client leaves, a frame is malformed, or
/// `shutdown` turns true — checked between requests, so a request that has
/// started is always answered.
pub async fn serve<S>(
    broker: Arc<Broker>,
    stream: S,
    address: SocketAddr,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let client_id = broker.register_client(address);
    broker.metrics.connections.inc();
    let mut session = Session::new(client_id, address);
    tracing::debug!(client_id, %address, "client connected");
    let (reader, mut writer) = tokio::io::split(stream);
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, reader);
    let mut request = BytesMut::with_capacity(64 * 1024);
    let mut reply = BytesMut::with_capacity(64 * 1024);
    let max_frame = broker.effective.max_request_bytes;

    loop {
        let read = tokio::select! {
            read = read_frame(&mut reader, &mut request, max_frame) => read,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let frame = match read {
            Ok(frame) => frame,
            Err(FrameError::Closed) => break,
            Err(FrameError::Io(e)) => {
                tracing::debug!(client_id, "connection error: {e}");
                break;
            }
            Err(e @ (FrameError::TooLarge { .. } | FrameError::Malformed(_))) => {
                tracing::warn!(client_id, %address, "closing connection: {e}");
                let reason = match e {
                    FrameError::TooLarge { .. } => EvictionReason::InvalidRequestBodySize,
                    _ => EvictionReason::InvalidRequestOperation,
                };
                let _ = writer
                    .write_all(&eviction(session.vsr_client, reason))
                    .await;
                break;
            }
        };
        let header = frame.header;
        let started = std::time::Instant::now();
        let mut ctx = Context {
            broker: &broker,
            session: &mut session,
        };
        begin(&mut reply, header.operation);
        let body = &mut request[HEADER_SIZE..];
        let status = match frame.code {
            LOGIN_REGISTER_CODE if header.operation == Operation::Register => {
                match login_register(&mut ctx, header.client, body, &mut reply) {
                    LoginOutcome::Ok => 0,
                    LoginOutcome::Refused(e) => e.code(),
                    LoginOutcome::Evict(reason) => {
                        let _ = writer.write_all(&eviction(header.client, reason)).await;
                        break;
                    }
                }
            }
            LOGOUT_USER_CODE => {
                logout(&mut ctx);
                0
            }
            // Pre-0.11 login commands cannot open a 0.11 session.
            LOGIN_USER_CODE | LOGIN_WITH_PERSONAL_ACCESS_TOKEN_CODE => {
                let reason = EvictionReason::MalformedLogin;
                let _ = writer.write_all(&eviction(header.client, reason)).await;
                break;
            }
            code => {
                let stale_session = header.operation != Operation::NonReplicated
                    && header.session != ctx.session.session;
                let result = if stale_session {
                    Err(crate::error::Error::Unauthenticated)
                } else {
                    dispatch(&mut ctx, code, body, &mut reply)
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
        finish(&mut reply, &header, status);
        let command = lookup_command(frame.code).map_or("unknown", |meta| meta.name);
        broker
            .metrics
            .request_duration
            .with_label_values(&[command])
            .observe(started.elapsed().as_secs_f64());
        if status != 0 {
            broker
                .metrics
                .errors
                .with_label_values(&[&status.to_string()])
                .inc();
        }
        if let Err(e) = writer.write_all(&reply).await {
            tracing::debug!(client_id, "write failed: {e}");
            break;
        }
    }
    broker.remove_client(client_id);
    broker.metrics.connections.dec();
    tracing::debug!(client_id, "client disconnected");
}
