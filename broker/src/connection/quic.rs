//! A QUIC connection carrying the 0.11 protocol as the SDK does: one
//! bidirectional stream per request — the client writes the 256-byte
//! header and the body and finishes its side; the broker answers on the
//! same stream and finishes it. Requests of one connection are answered
//! in order, one at a time, like TCP.

use super::vsr::{Answer, answer};
use super::{SessionCloser, Shutdown, idle, open_session};
use crate::broker::Broker;
use crate::clients::Transport;
use crate::protocol::read_frame;
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
        // The whole request is the stream; a longer one is refused like an
        // oversize TCP frame.
        let bytes = match recv.read_to_end(max_request).await {
            Ok(bytes) => bytes,
            Err(quinn::ReadToEndError::TooLong) => {
                // Let the frame reader produce the eviction for the size.
                let mut oversize = vec![0u8; iggy_binary_protocol::consensus::HEADER_SIZE];
                oversize[48..52].copy_from_slice(&u32::MAX.to_le_bytes());
                oversize
            }
            Err(e) => {
                tracing::debug!(client_id, "QUIC stream failed: {e}");
                continue;
            }
        };
        let read = read_frame(&mut bytes.as_slice(), &mut request, max_request).await;
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
