//! A WebSocket connection carrying the binary protocol as the SDK does:
//! requests arrive as binary messages and replies go back as binary
//! messages, but the SDK treats both directions as one byte stream (it
//! reassembles a reply from as many messages as it takes). So the socket is
//! bridged to an in-memory byte pipe and served by the same session code as
//! TCP — including the legacy-protocol detection.

use super::Shutdown;
use crate::broker::Broker;
use crate::clients::Transport;
use futures::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Bytes buffered between the socket and the session in each direction.
const PIPE_BYTES: usize = 256 * 1024;
/// Largest binary message sent with a reply (the client reassembles).
const REPLY_CHUNK_BYTES: usize = 64 * 1024;

/// Upgrade `stream` to a WebSocket (any path) and serve it.
pub async fn serve<S>(broker: Arc<Broker>, stream: S, address: SocketAddr, shutdown: Shutdown)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let max_request = broker.effective.max_request_bytes;
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_request))
        .max_frame_size(Some(max_request));
    let socket = match tokio_tungstenite::accept_async_with_config(stream, Some(config)).await {
        Ok(socket) => socket,
        Err(e) => {
            tracing::info!(%address, "WebSocket handshake failed: {e}");
            return;
        }
    };
    let (mut sink, mut source) = socket.split();
    let (session_side, bridge_side) = tokio::io::duplex(PIPE_BYTES);
    let (mut from_session, mut to_session) = tokio::io::split(bridge_side);

    // Socket → session: the payload of every binary message, in order.
    let inbound = async move {
        while let Some(message) = source.next().await {
            match message {
                Ok(Message::Binary(data)) => {
                    if to_session.write_all(&data).await.is_err() {
                        break;
                    }
                }
                Ok(Message::Close(_)) | Err(_) => break,
                // Pings are answered by the library; text is not protocol.
                Ok(_) => {}
            }
        }
        let _ = to_session.shutdown().await;
    };
    // Session → socket: replies as binary messages.
    let outbound = async move {
        let mut buf = vec![0u8; REPLY_CHUNK_BYTES];
        loop {
            match from_session.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sink.send(Message::binary(buf[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = sink.close().await;
    };
    let session = super::serve_as(
        broker,
        session_side,
        address,
        shutdown,
        Transport::WebSocket,
    );
    // The session ends the connection: when it returns, its pipe end closes
    // and the outbound pump sends the close frame.
    let inbound = tokio::spawn(inbound);
    tokio::join!(session, outbound);
    inbound.abort();
}
