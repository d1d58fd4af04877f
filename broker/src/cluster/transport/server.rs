//! The replica listener: accepts connections from other brokers of the
//! cluster (and only them: see [`super::handshake`]) and serves their
//! requests concurrently, answering each as soon as it is done.

use super::PeerStream;
use super::frame::{self, Frame, KIND_REQUEST, KIND_RESPONSE};
use super::handshake::{self, HandshakeError};
use super::messages::{Request, Response};
use crate::cluster::uid::ClusterUid;
use crate::config::ClusterSettings;
use crate::tls::peer::{Accepted, PeerTls};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Serves requests from peers.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, from: u32, request: Request, body: Bytes) -> (Response, Bytes);
}

/// Accept peers until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    settings: Arc<ClusterSettings>,
    uid: Arc<ClusterUid>,
    tls: Option<Arc<PeerTls>>,
    handler: Arc<dyn Handler>,
    max_frame_bytes: usize,
) {
    loop {
        let (stream, address) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("replica listener: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_peer(
            stream,
            address,
            settings.clone(),
            uid.clone(),
            tls.clone(),
            handler.clone(),
            max_frame_bytes,
        ));
    }
}

async fn serve_peer(
    stream: TcpStream,
    address: SocketAddr,
    settings: Arc<ClusterSettings>,
    uid: Arc<ClusterUid>,
    tls: Option<Arc<PeerTls>>,
    handler: Arc<dyn Handler>,
    max_frame_bytes: usize,
) {
    let mut stream: PeerStream = match tls {
        None => Box::new(stream),
        Some(tls) => {
            match tokio::time::timeout(handshake::HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                Ok(Ok(Accepted::Tls(stream))) => stream,
                Ok(Ok(Accepted::Plain(stream))) => {
                    tracing::debug!(%address, "a peer without TLS (cluster.tls.accept_plaintext is on)");
                    Box::new(stream)
                }
                Ok(Err(e)) => {
                    tracing::warn!(%address, "refused a connection to the replica port: TLS: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%address, "replica TLS handshake did not complete");
                    return;
                }
            }
        }
    };
    let accepted = match handshake::accept(&mut stream, &settings, uid.get()).await {
        Ok(accepted) => accepted,
        Err(HandshakeError::NotAPeer) => {
            tracing::info!(%address, "closed a connection to the replica port that is not a broker of this cluster");
            return;
        }
        Err(HandshakeError::Io(_)) | Err(HandshakeError::Timeout) => {
            tracing::debug!(%address, "replica handshake did not complete");
            return;
        }
        Err(e) => {
            let news = match e {
                HandshakeError::FoundedApart { peer, .. } => uid.refused(peer),
                _ => true,
            };
            if news {
                tracing::warn!(%address, "refused a peer: {e}");
            } else {
                tracing::debug!(%address, "refused a peer again: {e}");
            }
            return;
        }
    };
    let peer = accepted.peer;
    tracing::debug!(%address, peer, version = accepted.version, "peer connected");
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (replies, mut outgoing) = mpsc::channel::<Frame>(256);
    let writing = tokio::spawn(async move {
        while let Some(frame) = outgoing.recv().await {
            if frame::write(&mut writer, &frame).await.is_err() {
                break;
            }
        }
    });
    loop {
        let frame = match frame::read(&mut reader, max_frame_bytes).await {
            Ok(Some(frame)) if frame.kind == KIND_REQUEST => frame,
            Ok(Some(_)) => {
                tracing::warn!(peer, "unexpected frame from a peer; closing");
                break;
            }
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(peer, "peer connection ended: {e}");
                break;
            }
        };
        let handler = handler.clone();
        let replies = replies.clone();
        tokio::spawn(async move {
            let (response, body) = match serde_json::from_slice::<Request>(&frame.meta) {
                Ok(request) => handler.handle(peer, request, frame.body).await,
                Err(e) => (
                    Response::Unsupported {
                        message: format!("unknown request: {e}"),
                    },
                    Bytes::new(),
                ),
            };
            let meta = match serde_json::to_vec(&response) {
                Ok(meta) => Bytes::from(meta),
                Err(e) => Bytes::from(
                    serde_json::to_vec(&Response::Failed {
                        message: format!("unencodable response: {e}"),
                    })
                    .unwrap_or_default(),
                ),
            };
            let _ = replies
                .send(Frame {
                    kind: KIND_RESPONSE,
                    request_id: frame.request_id,
                    meta,
                    body,
                })
                .await;
        });
    }
    drop(replies);
    let _ = writing.await;
}
