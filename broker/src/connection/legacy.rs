//! A 0.10 session (legacy framing): read `[length][code][payload]`, run it
//! through the legacy adapter, write `[status][length][payload]`, repeat.
//!
//! There is no eviction in this generation: a frame that cannot be read
//! ends only this connection; an invalid request gets an error status and
//! the connection stays usable.

use super::{Shutdown, idle, record_request};
use crate::broker::Broker;
use crate::command::Context;
use crate::command::legacy::{Scratch, dispatch};
use crate::protocol::legacy::{LegacyFrameError, begin, finish, read_request};
use crate::session::Session;
use tokio::io::{AsyncBufRead, AsyncWrite};

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
    let address = session.address;
    tracing::debug!(client_id, %address, "legacy (0.10) protocol");
    let mut body = idle::buffer();
    let mut reply = idle::buffer();
    let mut idle_watch = idle::IdleWatch::new(idle::IDLE_RELEASE_AFTER);
    let mut scratch = Scratch::default();
    let max_request = broker.effective.max_request_bytes;
    loop {
        let read = tokio::select! {
            read = async {
                let [scratch_request, scratch_reply] = scratch.buffers();
                let buffers = &mut [&mut body, &mut reply, scratch_request, scratch_reply];
                idle_watch
                    .awaiting_next_request(idle::first_bytes(&mut reader), buffers)
                    .await;
                read_request(&mut reader, &mut body, max_request).await
            } => read,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let code = match read {
            Ok(code) => code,
            Err(LegacyFrameError::Closed) => break,
            Err(LegacyFrameError::Io(e)) => {
                tracing::debug!(client_id, "connection error: {e}");
                break;
            }
            Err(e) => {
                tracing::warn!(client_id, %address, "closing legacy connection: {e}");
                break;
            }
        };
        let started = std::time::Instant::now();
        let mut ctx = Context {
            broker,
            session: &mut *session,
        };
        begin(&mut reply);
        let status = match dispatch(&mut ctx, code, &mut body, &mut scratch, &mut reply).await {
            Ok(()) => 0,
            Err(e) => {
                tracing::debug!(client_id, code, "legacy request failed: {e}");
                crate::command::legacy::status_code(&e)
            }
        };
        finish(&mut reply, status);
        record_request(broker, code, started, status);
        if let Err(e) = super::send_reply(&mut writer, &reply).await {
            tracing::debug!(client_id, "write failed: {e}");
            break;
        }
    }
}
