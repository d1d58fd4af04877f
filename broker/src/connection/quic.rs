//! A QUIC connection carrying the 0.11 protocol as the SDK does: one
//! bidirectional stream per request — the client writes the 256-byte
//! header and the body and finishes its side; the broker answers on the
//! same stream and finishes it. Requests of one connection are answered
//! in order, one at a time, like TCP.

use super::vsr::{Answer, answer};
use super::{SessionCloser, Shutdown, idle, open_session};
use crate::broker::Broker;
use crate::clients::Transport;
use crate::protocol::{FrameError, read_frame};
use std::sync::Arc;

/// Serve one QUIC connection until the client closes it, it idles out, it
/// is evicted, or the broker shuts down.
pub async fn serve(broker: Arc<Broker>, connection: quinn::Connection, mut shutdown: Shutdown) {
    let mut session = open_session(&broker, connection.remote_address(), Transport::Quic);
    let client_id = session.client_id;
    let _close = SessionCloser::new(&broker, client_id, Transport::Quic);
    let max_request = broker.effective.max_request_bytes;
    let mut request = idle::buffer();
    let mut reply = idle::buffer();
    let mut idle_watch = idle::IdleWatch::new(idle::IDLE_RELEASE_AFTER);
    loop {
        let accepted = tokio::select! {
            accepted = async {
                let buffers = &mut [&mut request, &mut reply];
                idle_watch.awaiting_next_request(connection.accept_bi(), buffers).await
            } => accepted,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let (mut send, mut recv) = match accepted {
            Ok(streams) => streams,
            Err(e) => {
                tracing::debug!(client_id, "QUIC connection ended: {e}");
                break;
            }
        };
        // The request is read from the stream straight into the request
        // buffer (no per-request allocation or copy); a declared size over
        // the limit is refused like an oversize TCP frame. A stream that
        // fails (reset by the client) costs only that request.
        let read = match read_frame(&mut recv, &mut request, max_request).await {
            Err(FrameError::Io(e)) => {
                tracing::debug!(client_id, "QUIC stream failed: {e}");
                continue;
            }
            read => read,
        };
        if read.is_ok() {
            // Take the client's end of the stream too: a stream dropped
            // before its end is read makes quinn ask the client to stop
            // sending (an extra frame per request). Bytes after the
            // declared frame are ignored.
            let _ = recv.read_to_end(0).await;
        }
        let Some(outcome) = answer(&broker, &mut session, read, &mut request, &mut reply).await
        else {
            break;
        };
        if let Err(e) = send.write_all(&reply).await {
            tracing::debug!(client_id, "QUIC write failed: {e}");
            break;
        }
        let _ = send.finish();
        if outcome == Answer::Evicted {
            // Let the eviction reach the client before closing.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), send.stopped()).await;
            connection.close(0u32.into(), b"evicted");
            break;
        }
    }
}
