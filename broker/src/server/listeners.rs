//! The client listeners: TCP and WebSocket (byte streams, optionally TLS)
//! and QUIC. Each accept loop hands connections to `crate::connection`,
//! stops accepting on shutdown, and then waits for its connections.

use super::admission::Admission;
use super::quick_ack::QuickAck;
use crate::broker::Broker;
use crate::clients::Transport;
use crate::config::TlsSettings;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// A client that does not finish its TLS handshake in this time is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The listeners that carry a byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Tcp,
    WebSocket,
}

impl Listener {
    fn name(self) -> &'static str {
        match self {
            Listener::Tcp => "TCP",
            Listener::WebSocket => "WebSocket",
        }
    }

    fn transport(self) -> Transport {
        match self {
            Listener::Tcp => Transport::Tcp,
            Listener::WebSocket => Transport::WebSocket,
        }
    }
}

/// A bound byte-stream listener, its TLS acceptor if any, and the task
/// reloading that acceptor's certificate.
pub struct StreamListener {
    kind: Listener,
    listener: TcpListener,
    pub bound: SocketAddr,
    tls: Option<TlsAcceptor>,
    reloader: Option<tokio::task::JoinHandle<()>>,
}

/// Bind the TCP or WebSocket listener if enabled, with its TLS settings.
pub async fn bind_stream(
    broker: &Arc<Broker>,
    kind: Listener,
) -> anyhow::Result<Option<StreamListener>> {
    let config = &broker.config;
    let (enabled, address, tls) = match kind {
        Listener::Tcp => (
            config.tcp.enabled,
            &config.tcp.address,
            &broker.effective.tcp_tls,
        ),
        Listener::WebSocket => (
            config.websocket.enabled,
            &config.websocket.address,
            &broker.effective.websocket_tls,
        ),
    };
    let Some((listener, bound)) = bind(kind.name(), enabled, address).await? else {
        return Ok(None);
    };
    let (tls, reloader) = match tls {
        Some(settings) => {
            let (acceptor, reloader) = tls_acceptor(broker, kind.transport(), settings)?;
            (Some(acceptor), Some(reloader))
        }
        None => (None, None),
    };
    Ok(Some(StreamListener {
        kind,
        listener,
        bound,
        tls,
        reloader,
    }))
}

/// A TLS acceptor serving the certificate files (generated first if
/// `self_signed` and missing), and the task that reloads them.
pub fn tls_acceptor(
    broker: &Broker,
    transport: Transport,
    settings: &TlsSettings,
) -> anyhow::Result<(TlsAcceptor, tokio::task::JoinHandle<()>)> {
    let (cert, key) = (&settings.cert, &settings.key);
    if settings.self_signed
        && crate::tls::ensure_self_signed(cert, key, &["localhost".to_string()])?
    {
        tracing::warn!(cert = %cert.display(), "generated a self-signed TLS certificate (development only)");
    }
    let certificates = crate::tls::Certificates::load(cert, key)?;
    let acceptor = TlsAcceptor::from(certificates.server_config()?);
    broker
        .metrics
        .watch_certificate(transport.label(), certificates.clone());
    let reloader = tokio::spawn(certificates.watch(settings.reload_interval));
    tracing::info!(cert = %cert.display(), "{} TLS enabled", transport.label());
    Ok((acceptor, reloader))
}

/// Accept connections until shutdown, then wait for them to finish.
pub async fn accept_stream(
    broker: Arc<Broker>,
    listener: StreamListener,
    admission: Arc<Admission>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let (stream, address) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        reap(&mut tasks);
        let permit = match admission.admit(address.ip()) {
            Ok(permit) => permit,
            Err(refused) => {
                tracing::warn!(%address, "refused a connection: {refused}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let stream = QuickAck::new(stream);
        let broker = broker.clone();
        let shutdown = shutdown.clone();
        let tls = listener.tls.clone();
        let kind = listener.kind;
        tasks.spawn(async move {
            match tls {
                None => serve_stream(kind, broker, stream, address, shutdown).await,
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(stream)) => {
                            serve_stream(kind, broker, stream, address, shutdown).await
                        }
                        Ok(Err(e)) => tracing::info!(%address, "TLS handshake failed: {e}"),
                        Err(_) => tracing::info!(%address, "TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
    while let Some(ended) = tasks.join_next().await {
        report_panic(ended);
    }
    if let Some(reloader) = listener.reloader {
        reloader.abort();
    }
}

async fn serve_stream<S>(
    kind: Listener,
    broker: Arc<Broker>,
    stream: S,
    address: SocketAddr,
    shutdown: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    match kind {
        Listener::Tcp => crate::connection::serve(broker, stream, address, shutdown).await,
        Listener::WebSocket => {
            crate::connection::websocket::serve(broker, stream, address, shutdown).await
        }
    }
}

/// The bound QUIC endpoint and the certificate it serves.
pub struct QuicListener {
    endpoint: quinn::Endpoint,
    pub bound: SocketAddr,
    reloader: Option<tokio::task::JoinHandle<()>>,
}

/// Bind the QUIC listener when `quic.enabled`.
pub fn bind_quic(broker: &Arc<Broker>) -> anyhow::Result<Option<QuicListener>> {
    let config = &broker.config.quic;
    if !config.enabled {
        return Ok(None);
    }
    let certificates = match &broker.effective.quic_certificate {
        Some((cert, key)) => crate::tls::Certificates::load(cert, key)?,
        None => {
            tracing::warn!("QUIC uses an in-memory self-signed certificate (development only)");
            crate::tls::Certificates::ephemeral()?
        }
    };
    let mut server_config = certificates.quic_config()?;
    broker
        .metrics
        .watch_certificate(Transport::Quic.label(), certificates.clone());
    let mut transport = quinn::TransportConfig::default();
    transport.max_idle_timeout(Some(broker.effective.quic_max_idle_timeout.try_into()?));
    transport.stream_receive_window(broker.effective.quic_stream_receive_window_bytes.into());
    server_config.transport_config(Arc::new(transport));
    let address: std::net::SocketAddr = config.address.parse()?;
    let socket = quic_socket(address, broker.effective.quic_socket_buffer_bytes)
        .map_err(|e| anyhow::anyhow!("cannot bind QUIC {address}: {e}"))?;
    let runtime = quinn::default_runtime().ok_or_else(|| anyhow::anyhow!("no async runtime"))?;
    let endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(server_config),
        socket,
        runtime,
    )
    .map_err(|e| anyhow::anyhow!("cannot serve QUIC on {address}: {e}"))?;
    let bound = endpoint.local_addr()?;
    tracing::info!("QUIC listening on {bound}");
    let reloader = broker
        .effective
        .quic_certificate
        .is_some()
        .then(|| tokio::spawn(certificates.watch(broker.effective.quic_reload_interval)));
    Ok(Some(QuicListener {
        endpoint,
        bound,
        reloader,
    }))
}

/// The QUIC listener's UDP socket with `buffer_bytes` of receive and send
/// buffer (the kernel caps both at `net.core.rmem_max`/`wmem_max`; a
/// warning names the sizes when it grants less).
fn quic_socket(address: SocketAddr, buffer_bytes: usize) -> std::io::Result<std::net::UdpSocket> {
    let socket = std::net::UdpSocket::bind(address)?;
    let options = socket2::SockRef::from(&socket);
    options.set_recv_buffer_size(buffer_bytes)?;
    options.set_send_buffer_size(buffer_bytes)?;
    // Linux reports twice what it grants (the other half is its overhead).
    let (receive, send) = (
        options.recv_buffer_size()? / 2,
        options.send_buffer_size()? / 2,
    );
    if receive < buffer_bytes || send < buffer_bytes {
        tracing::warn!(
            "QUIC socket buffers are {receive} B (receive) and {send} B (send), less than the \
             {buffer_bytes} B of quic.socket_buffer_size: raise net.core.rmem_max and \
             net.core.wmem_max, or datagrams of large batches may be dropped"
        );
    }
    Ok(socket)
}

/// Accept QUIC connections until shutdown, then wait for them to finish.
pub async fn accept_quic(
    broker: Arc<Broker>,
    quic: QuicListener,
    admission: Arc<Admission>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let incoming = tokio::select! {
            incoming = quic.endpoint.accept() => incoming,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let Some(incoming) = incoming else { break };
        reap(&mut tasks);
        let permit = match admission.admit(incoming.remote_address().ip()) {
            Ok(permit) => permit,
            Err(refused) => {
                tracing::warn!(address = %incoming.remote_address(), "refused a connection: {refused}");
                incoming.refuse();
                continue;
            }
        };
        let broker = broker.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            match incoming.await {
                Ok(connection) => {
                    crate::connection::quic::serve(broker, connection, shutdown).await
                }
                Err(e) => tracing::info!("QUIC handshake failed: {e}"),
            }
            drop(permit);
        });
    }
    while let Some(ended) = tasks.join_next().await {
        report_panic(ended);
    }
    quic.endpoint.close(0u32.into(), b"shutting down");
    if let Some(reloader) = quic.reloader {
        reloader.abort();
    }
}

/// Collect the connections that ended (the set would otherwise keep every
/// one until shutdown).
fn reap(tasks: &mut tokio::task::JoinSet<()>) {
    while let Some(ended) = tasks.try_join_next() {
        report_panic(ended);
    }
}

/// A request that panicked took only its own connection down: its session
/// was closed on the way out (`SessionCloser`), and the locks it held are
/// taken over by the next user (they are never poisoned for good).
fn report_panic(ended: Result<(), tokio::task::JoinError>) {
    if let Err(e) = ended
        && e.is_panic()
    {
        tracing::error!("a request panicked; its connection was closed: {e}");
    }
}

/// Bind an enabled listener and log where it listens.
pub async fn bind(
    kind: &str,
    enabled: bool,
    address: &str,
) -> anyhow::Result<Option<(TcpListener, std::net::SocketAddr)>> {
    if !enabled {
        return Ok(None);
    }
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind {kind} {address}: {e}"))?;
    let bound = listener.local_addr()?;
    tracing::info!("{kind} listening on {bound}");
    Ok(Some((listener, bound)))
}

/// The HTTP listener with TLS: handshakes run concurrently in a background
/// task (a slow client cannot hold up others) and finished connections are
/// handed to the HTTP server.
pub struct TlsHttpListener {
    ready: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        SocketAddr,
    )>,
    local: SocketAddr,
    _acceptor: tokio::task::JoinHandle<()>,
}

impl TlsHttpListener {
    pub fn new(listener: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, ready) = tokio::sync::mpsc::channel(64);
        let task = tokio::spawn(async move {
            loop {
                let (stream, address) = match listener.accept().await {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!("HTTP accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, address)).await;
                        }
                        Ok(Err(e)) => tracing::info!(%address, "HTTPS handshake failed: {e}"),
                        Err(_) => tracing::info!(%address, "HTTPS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self {
            ready,
            local,
            _acceptor: task,
        })
    }
}

impl axum::serve::Listener for TlsHttpListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task never ends on its own.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

impl crate::http::TlsListener for TlsHttpListener {}

impl Drop for TlsHttpListener {
    fn drop(&mut self) {
        self._acceptor.abort();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_quic_socket_gets_the_configured_buffers() {
        // Far below any kernel default, so only the broker's setting can
        // produce it (Linux reports twice the size it was given).
        let socket = super::quic_socket("127.0.0.1:0".parse().unwrap(), 16 * 1024).unwrap();
        let options = socket2::SockRef::from(&socket);
        assert_eq!(options.recv_buffer_size().unwrap(), 32 * 1024);
        assert_eq!(options.send_buffer_size().unwrap(), 32 * 1024);
    }
}
