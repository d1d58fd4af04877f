//! Start-up and shutdown: open the broker, bind listeners, run until a
//! shutdown signal, then stop accepting, let connections finish their
//! current request, and flush every partition.

use crate::broker::Broker;
use crate::config::write_runtime_config;
use crate::storage::FsyncPolicy;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// How long connections get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// A client that does not finish its TLS handshake in this time is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(broker: Arc<Broker>, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let config = &broker.config;
    let tcp = bind("TCP", config.tcp.enabled, &config.tcp.address).await?;
    let quic = bind_quic(&broker)?;
    let http = bind("HTTP", config.http.enabled, &config.http.address).await?;
    {
        let mut listeners = broker.listeners.write().expect("listeners lock");
        listeners.tcp = tcp.as_ref().map(|(_, bound)| *bound);
        listeners.quic = quic.as_ref().map(|q| q.bound);
        listeners.http = http.as_ref().map(|(_, bound)| *bound);
    }
    write_runtime_config(
        config,
        tcp.as_ref().map(|(_, bound)| *bound),
        quic.as_ref().map(|q| q.bound),
        http.as_ref().map(|(_, bound)| *bound),
    )?;
    let http_server = http.map(|(listener, _)| {
        let app = crate::http::router(broker.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("HTTP server failed: {e}");
            }
        })
    });
    broker.set_ready(true);

    let (tls, tls_watcher) = match tls_acceptor(&broker)? {
        Some((acceptor, watcher)) => (Some(acceptor), Some(watcher)),
        None => (None, None),
    };
    let flusher = tokio::spawn(periodic_flush(broker.clone()));
    let cleaner = config.retention.enabled.then(|| {
        tokio::spawn(crate::retention::run(
            broker.clone(),
            broker.effective.retention_interval,
        ))
    });
    let connections = Arc::new(Semaphore::new(config.limits.max_connections));
    let (stop_connections, connection_shutdown) = tokio::sync::watch::channel(false);
    let quic_server = quic.map(|quic| {
        tokio::spawn(accept_quic(
            broker.clone(),
            quic,
            connections.clone(),
            connection_shutdown.clone(),
        ))
    });
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    if let Some((listener, _)) = tcp {
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => {
                    let (stream, address) = match accepted {
                        Ok(pair) => pair,
                        Err(e) => {
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let Ok(permit) = connections.clone().try_acquire_owned() else {
                        tracing::warn!(%address, "connection limit reached; refusing");
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let broker = broker.clone();
                    let shutdown = connection_shutdown.clone();
                    let tls = tls.clone();
                    tasks.spawn(async move {
                        match tls {
                            None => crate::connection::serve(broker, stream, address, shutdown).await,
                            Some(acceptor) => {
                                let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                                match handshake {
                                    Ok(Ok(stream)) => crate::connection::serve(broker, stream, address, shutdown).await,
                                    Ok(Err(e)) => tracing::info!(%address, "TLS handshake failed: {e}"),
                                    Err(_) => tracing::info!(%address, "TLS handshake timed out"),
                                }
                            }
                        }
                        drop(permit);
                    });
                }
            }
        }
    } else {
        shutdown.await;
    }
    broker.set_ready(false);
    if let Some(server) = http_server {
        server.abort();
    }
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    let _ = stop_connections.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
        if let Some(quic) = quic_server {
            let _ = quic.await;
        }
    })
    .await;
    tasks.abort_all();
    flusher.abort();
    if let Some(watcher) = tls_watcher {
        watcher.abort();
    }
    if let Some(cleaner) = cleaner {
        cleaner.abort();
    }
    flush_all(&broker);
    tracing::info!("shutdown complete");
    Ok(())
}

/// The TCP listener's TLS acceptor (and the task reloading its certificate)
/// when `tcp.tls.enabled`.
fn tls_acceptor(
    broker: &Arc<Broker>,
) -> anyhow::Result<Option<(TlsAcceptor, tokio::task::JoinHandle<()>)>> {
    let Some((cert, key)) = &broker.effective.tcp_tls else {
        return Ok(None);
    };
    if broker.config.tcp.tls.self_signed
        && crate::tls::ensure_self_signed(cert, key, &["localhost".to_string()])?
    {
        tracing::warn!(cert = %cert.display(), "generated a self-signed TLS certificate (development only)");
    }
    let certificates = crate::tls::Certificates::load(cert, key)?;
    let acceptor = TlsAcceptor::from(certificates.server_config()?);
    let watcher = tokio::spawn(certificates.watch(broker.effective.tls_reload_interval));
    tracing::info!(cert = %cert.display(), "TCP TLS enabled");
    Ok(Some((acceptor, watcher)))
}

/// The bound QUIC endpoint and the certificate it serves.
struct QuicListener {
    endpoint: quinn::Endpoint,
    bound: std::net::SocketAddr,
    reloader: Option<tokio::task::JoinHandle<()>>,
}

/// Bind the QUIC listener when `quic.enabled`.
fn bind_quic(broker: &Arc<Broker>) -> anyhow::Result<Option<QuicListener>> {
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
    let mut transport = quinn::TransportConfig::default();
    transport.max_idle_timeout(Some(broker.effective.quic_max_idle_timeout.try_into()?));
    server_config.transport_config(Arc::new(transport));
    let address: std::net::SocketAddr = config.address.parse()?;
    let endpoint = quinn::Endpoint::server(server_config, address)
        .map_err(|e| anyhow::anyhow!("cannot bind QUIC {address}: {e}"))?;
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

/// Accept QUIC connections until shutdown, then wait for them to finish.
async fn accept_quic(
    broker: Arc<Broker>,
    quic: QuicListener,
    connections: Arc<Semaphore>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let incoming = tokio::select! {
            incoming = quic.endpoint.accept() => incoming,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let Some(incoming) = incoming else { break };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(address = %incoming.remote_address(), "connection limit reached; refusing");
            incoming.refuse();
            continue;
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
    while tasks.join_next().await.is_some() {}
    quic.endpoint.close(0u32.into(), b"shutting down");
    if let Some(reloader) = quic.reloader {
        reloader.abort();
    }
}

/// Bind an enabled listener and log where it listens.
async fn bind(
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

fn flush_all(broker: &Broker) {
    for partition in broker.all_partitions() {
        if let Err(e) = partition.log.lock().expect("log lock").flush() {
            tracing::error!(partition = partition.id, "flush failed: {e}");
        }
    }
}

/// Fsync partitions whose topics use the `interval` policy.
async fn periodic_flush(broker: Arc<Broker>) {
    let interval = match broker.effective.fsync {
        FsyncPolicy::Interval(interval) => interval,
        _ => Duration::from_secs(1),
    };
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        let broker = broker.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for partition in broker.all_partitions() {
                let mut log = partition.log.lock().expect("log lock");
                if matches!(log.config().fsync, FsyncPolicy::Interval(_))
                    && let Err(e) = log.flush()
                {
                    tracing::error!(partition = partition.id, "periodic fsync failed: {e}");
                }
            }
        })
        .await;
    }
}
