//! Calling other brokers.
//!
//! One [`PeerClient`] per peer, with two connections ("lanes"): control
//! (Raft, proposals, pings) and data (forwarded client requests), so a
//! large batch on its way to a partition never delays a heartbeat. Each
//! lane is connected on first use — resolving the peer's host name again
//! every time, so a pod that restarted with a new address is found — and
//! carries many concurrent requests, matched to responses by request id.

use super::PeerStream;
use super::frame::{self, Frame, KIND_REQUEST, KIND_RESPONSE};
use super::handshake;
use super::messages::{Request, Response};
use super::repeats::Repeats;
use crate::cluster::uid::ClusterUid;
use crate::config::{ClusterSettings, Peer};
use crate::tls::peer::PeerTls;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// After a failed connect, calls fail at once for this long (callers have
/// their own retry loops; this keeps them from hammering a dead peer).
const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, thiserror::Error)]
pub enum PeerError {
    /// Could not connect: the request was never sent.
    #[error("node {0} unreachable: {1}")]
    Unreachable(u32, String),
    /// The connection broke after the request was sent: it may or may not
    /// have been carried out.
    #[error("connection to node {0} lost: {1}")]
    Disconnected(u32, String),
    #[error("node {0} did not answer in {1:?}")]
    Timeout(u32, Duration),
    /// The peer answered that it cannot serve this request.
    #[error("node {0}: {1}")]
    Remote(u32, String),
}

impl PeerError {
    /// Whether the request certainly did not reach the peer.
    pub fn not_sent(&self) -> bool {
        matches!(self, PeerError::Unreachable(..))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Control,
    Data,
}

pub struct PeerClient {
    peer: Peer,
    settings: Arc<ClusterSettings>,
    tls: Option<Arc<PeerTls>>,
    max_frame_bytes: usize,
    uid: Arc<ClusterUid>,
    /// Refusals by the peer, warned of once in a while.
    refusals: Repeats<()>,
    control: LaneSlot,
    data: LaneSlot,
    next_id: AtomicU64,
}

#[derive(Default)]
struct LaneSlot {
    connection: tokio::sync::Mutex<Option<Arc<Connection>>>,
    failed_at: Mutex<Option<Instant>>,
}

type Pending = Mutex<HashMap<u64, oneshot::Sender<Result<Frame, PeerError>>>>;

struct Connection {
    writer: tokio::sync::Mutex<tokio::io::WriteHalf<PeerStream>>,
    pending: Arc<Pending>,
    closed: Arc<AtomicBool>,
    /// When the last frame arrived: a call that times out on a connection
    /// that has been silent that long closes it (the peer may be gone
    /// without a reset, e.g. a pod whose address now belongs to nobody).
    last_read: Arc<Mutex<Instant>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl PeerClient {
    pub fn new(
        peer: Peer,
        settings: Arc<ClusterSettings>,
        tls: Option<Arc<PeerTls>>,
        max_frame_bytes: usize,
        uid: Arc<ClusterUid>,
    ) -> Self {
        Self {
            peer,
            settings,
            tls,
            max_frame_bytes,
            uid,
            refusals: Repeats::default(),
            control: LaneSlot::default(),
            data: LaneSlot::default(),
            next_id: AtomicU64::new(1),
        }
    }

    pub fn id(&self) -> u32 {
        self.peer.id
    }

    /// Send `request` (with `body`) and wait up to `timeout` for the answer.
    pub async fn call(
        &self,
        lane: Lane,
        request: &Request,
        body: Bytes,
        timeout: Duration,
    ) -> Result<(Response, Bytes), PeerError> {
        let id = self.peer.id;
        let meta = Bytes::from(
            serde_json::to_vec(request).map_err(|e| PeerError::Remote(id, e.to_string()))?,
        );
        let slot = match lane {
            Lane::Control => &self.control,
            Lane::Data => &self.data,
        };
        let connection = self.connection(slot).await?;
        let request_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&connection.pending).insert(request_id, tx);
        if connection.closed.load(Ordering::Acquire) {
            lock(&connection.pending).remove(&request_id);
            self.drop_connection(slot, &connection).await;
            return Err(PeerError::Unreachable(id, "connection closed".into()));
        }
        let frame = Frame {
            kind: KIND_REQUEST,
            request_id,
            meta,
            body,
        };
        let sent_at = Instant::now();
        let written = tokio::time::timeout(timeout, async {
            let mut writer = connection.writer.lock().await;
            frame::write(&mut *writer, &frame).await
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                self.drop_connection(slot, &connection).await;
                return Err(PeerError::Disconnected(id, e.to_string()));
            }
            Err(_) => {
                lock(&connection.pending).remove(&request_id);
                self.drop_connection(slot, &connection).await;
                return Err(PeerError::Timeout(id, timeout));
            }
        }
        let remaining = timeout.saturating_sub(sent_at.elapsed());
        let frame = match tokio::time::timeout(remaining, rx).await {
            Ok(Ok(Ok(frame))) => frame,
            Ok(Ok(Err(e))) => return Err(e),
            Ok(Err(_)) => return Err(PeerError::Disconnected(id, "connection closed".into())),
            Err(_) => {
                lock(&connection.pending).remove(&request_id);
                if lock(&connection.last_read).elapsed() >= timeout {
                    self.drop_connection(slot, &connection).await;
                }
                return Err(PeerError::Timeout(id, timeout));
            }
        };
        let response: Response = serde_json::from_slice(&frame.meta)
            .map_err(|e| PeerError::Remote(id, format!("undecodable response: {e}")))?;
        match response {
            Response::Unsupported { message } | Response::Failed { message } => {
                Err(PeerError::Remote(id, message))
            }
            response => Ok((response, frame.body)),
        }
    }

    async fn connection(&self, slot: &LaneSlot) -> Result<Arc<Connection>, PeerError> {
        let mut current = slot.connection.lock().await;
        if let Some(connection) = current.as_ref()
            && !connection.closed.load(Ordering::Acquire)
        {
            return Ok(connection.clone());
        }
        *current = None;
        if lock(&slot.failed_at).is_some_and(|at| at.elapsed() < RECONNECT_BACKOFF) {
            return Err(PeerError::Unreachable(
                self.peer.id,
                "recently failed to connect".into(),
            ));
        }
        match self.connect().await {
            Ok(connection) => {
                *lock(&slot.failed_at) = None;
                let connection = Arc::new(connection);
                *current = Some(connection.clone());
                Ok(connection)
            }
            Err(e) => {
                *lock(&slot.failed_at) = Some(Instant::now());
                Err(e)
            }
        }
    }

    async fn drop_connection(&self, slot: &LaneSlot, connection: &Arc<Connection>) {
        connection.closed.store(true, Ordering::Release);
        let mut current = slot.connection.lock().await;
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, connection)) {
            *current = None;
        }
    }

    async fn connect(&self) -> Result<Connection, PeerError> {
        let id = self.peer.id;
        let unreachable = |e: &dyn std::fmt::Display| PeerError::Unreachable(id, e.to_string());
        let address = self.peer.address();
        let resolved: Vec<_> =
            tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host(&address))
                .await
                .map_err(|_| unreachable(&format!("resolving {address} timed out")))?
                .map_err(|e| unreachable(&format!("resolving {address}: {e}")))?
                .collect();
        let mut last_error = format!("{address} resolved to no address");
        for socket in resolved {
            let stream = match self.open(socket).await {
                Ok(stream) => stream,
                Err(e) => {
                    last_error = e;
                    continue;
                }
            };
            let mut stream: PeerStream = match &self.tls {
                None => Box::new(stream),
                Some(tls) => {
                    let secured = tokio::time::timeout(
                        handshake::HANDSHAKE_TIMEOUT,
                        tls.connect(&self.peer.host, stream),
                    )
                    .await
                    .map_err(|_| "timed out".to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()));
                    match secured {
                        Ok(stream) => Box::new(stream),
                        // A peer not switched to TLS yet (or no longer on
                        // it), while the cluster switches.
                        Err(e) if tls.accept_plaintext => {
                            tracing::debug!(peer = id, "TLS with {socket} failed ({e}): plain TCP");
                            Box::new(self.open(socket).await.map_err(|e| unreachable(&e))?)
                        }
                        Err(e) => return Err(unreachable(&format!("TLS with {socket}: {e}"))),
                    }
                }
            };
            handshake::dial(&mut stream, &self.settings, self.uid.get(), id)
                .await
                .map_err(|e| {
                    // Not a broker being down: a setting to fix, or two
                    // clusters founded apart. Warned of once in a while,
                    // not on every retry.
                    if let handshake::HandshakeError::RefusedByPeer(why) = &e
                        && self.refusals.is_news(())
                    {
                        tracing::warn!(peer = id, %socket, "refused by the peer: {why}");
                    }
                    unreachable(&format!("handshake with {socket}: {e}"))
                })?;
            return Ok(self.start(stream));
        }
        Err(unreachable(&last_error))
    }

    /// A TCP connection to `socket`, from the replica listener's address
    /// when it names one, so a broker's traffic to its peers is told apart
    /// by address (several brokers on one host use distinct loopback
    /// addresses).
    async fn open(&self, socket: std::net::SocketAddr) -> Result<TcpStream, String> {
        let local = self.settings.replica_bind.ip();
        let connect = async {
            let tcp = if socket.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            if !local.is_unspecified() && local.is_ipv4() == socket.is_ipv4() {
                tcp.bind(std::net::SocketAddr::new(local, 0))?;
            }
            tcp.connect(socket).await
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                Ok(stream)
            }
            Ok(Err(e)) => Err(format!("{socket}: {e}")),
            Err(_) => Err(format!("{socket}: connect timed out")),
        }
    }

    fn start(&self, stream: PeerStream) -> Connection {
        let (mut read_half, write_half) = tokio::io::split(stream);
        let pending: Arc<Pending> = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let last_read = Arc::new(Mutex::new(Instant::now()));
        let reader = {
            let (pending, closed, last_read) = (pending.clone(), closed.clone(), last_read.clone());
            let max = self.max_frame_bytes;
            let id = self.peer.id;
            tokio::spawn(async move {
                let reason = loop {
                    match frame::read(&mut read_half, max).await {
                        Ok(Some(frame)) if frame.kind == KIND_RESPONSE => {
                            *lock(&last_read) = Instant::now();
                            if let Some(tx) = lock(&pending).remove(&frame.request_id) {
                                let _ = tx.send(Ok(frame));
                            }
                        }
                        Ok(Some(_)) => break "unexpected frame kind".to_string(),
                        Ok(None) => break "closed by the peer".to_string(),
                        Err(e) => break e.to_string(),
                    }
                };
                closed.store(true, Ordering::Release);
                for (_, tx) in lock(&pending).drain() {
                    let _ = tx.send(Err(PeerError::Disconnected(id, reason.clone())));
                }
            })
        };
        Connection {
            writer: tokio::sync::Mutex::new(write_half),
            pending,
            closed,
            last_read,
            reader,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
