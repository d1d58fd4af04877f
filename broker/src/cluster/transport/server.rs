//! The replica listener: accepts connections from other brokers of the
//! cluster (and only them: see [`super::handshake`]) and serves their
//! requests concurrently, answering each as soon as it is done.

use super::PeerStream;
use super::frame::{self, Frame, KIND_REQUEST, KIND_RESPONSE};
use super::handshake::{self, HandshakeError};
use super::messages::{Request, Response};
use super::repeats::Repeats;
use crate::cluster::uid::ClusterUid;
use crate::config::ClusterSettings;
use crate::tls::peer::{Accepted, PeerTls};
use bytes::Bytes;
use std::mem::Discriminant;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Serves requests from peers.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, from: u32, request: Request, body: Bytes) -> (Response, Bytes);
}

/// What the listener serves peers with.
struct Listener {
    settings: Arc<ClusterSettings>,
    uid: Arc<ClusterUid>,
    tls: Option<Arc<PeerTls>>,
    handler: Arc<dyn Handler>,
    max_frame_bytes: usize,
    /// Refused connections by address and reason, warned of once in a
    /// while (a refused broker retries several times a second).
    refusals: Repeats<(IpAddr, Refusal)>,
}

/// Why a connection to the replica port was refused.
#[derive(Debug, PartialEq, Eq, Hash)]
enum Refusal {
    /// TLS failed, as the message says (another CA, no TLS at all, …).
    Tls(String),
    Handshake(Discriminant<HandshakeError>),
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
    let serving = Arc::new(Listener {
        settings,
        uid,
        tls,
        handler,
        max_frame_bytes,
        refusals: Repeats::default(),
    });
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
        let serving = serving.clone();
        tokio::spawn(async move {
            if let Some((stream, peer)) = serving.admit(stream, address).await {
                serving.serve_peer(stream, peer).await;
            }
        });
    }
}

impl Listener {
    /// TLS (when configured) and the handshake: the connection and the
    /// broker it is from, or `None` if it was refused (and logged).
    async fn admit(&self, stream: TcpStream, address: SocketAddr) -> Option<(PeerStream, u32)> {
        let mut stream: PeerStream = match &self.tls {
            None => Box::new(stream),
            Some(tls) => {
                match tokio::time::timeout(handshake::HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                    Ok(Ok(Accepted::Tls(stream))) => stream,
                    Ok(Ok(Accepted::Plain(stream))) => {
                        tracing::debug!(%address, "a peer without TLS (cluster.tls.accept_plaintext is on)");
                        Box::new(stream)
                    }
                    Ok(Err(e)) => {
                        if self
                            .refusals
                            .is_news((address.ip(), Refusal::Tls(e.to_string())))
                        {
                            tracing::warn!(%address, "refused a connection to the replica port: TLS: {e}");
                        } else {
                            tracing::debug!(%address, "refused a connection to the replica port again: TLS: {e}");
                        }
                        return None;
                    }
                    Err(_) => {
                        tracing::debug!(%address, "replica TLS handshake did not complete");
                        return None;
                    }
                }
            }
        };
        match handshake::accept(&mut stream, &self.settings, self.uid.get()).await {
            Ok(accepted) => {
                tracing::debug!(%address, peer = accepted.peer, version = accepted.version, "peer connected");
                Some((stream, accepted.peer))
            }
            Err(HandshakeError::NotAPeer) => {
                tracing::info!(%address, "closed a connection to the replica port that is not a broker of this cluster");
                None
            }
            Err(HandshakeError::Io(_)) | Err(HandshakeError::Timeout) => {
                tracing::debug!(%address, "replica handshake did not complete");
                None
            }
            Err(e) => {
                // A broker of another uid calling tells readiness that this
                // one may be the one founded apart (`cluster::uid`).
                if let HandshakeError::FoundedApart { peer, .. } = e {
                    self.uid.refused(peer);
                }
                let why = Refusal::Handshake(std::mem::discriminant(&e));
                let news = self.refusals.is_news((address.ip(), why));
                if news {
                    tracing::warn!(%address, "refused a peer: {e}");
                } else {
                    tracing::debug!(%address, "refused a peer again: {e}");
                }
                None
            }
        }
    }

    /// Serve an admitted peer's requests, each answered as soon as it is
    /// done, until the connection ends.
    async fn serve_peer(&self, stream: PeerStream, peer: u32) {
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
            let frame = match frame::read(&mut reader, self.max_frame_bytes).await {
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
            let handler = self.handler.clone();
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
}
