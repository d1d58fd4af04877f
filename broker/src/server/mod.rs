//! Start-up and shutdown: open the broker, bind the listeners, run until a
//! shutdown signal, then stop accepting, let connections finish their
//! current request, and flush every partition.

mod listeners;

use crate::broker::Broker;
use crate::config::write_runtime_config;
use crate::storage::FsyncPolicy;
use listeners::Listener;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// How long connections get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub async fn run(broker: Arc<Broker>, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let config = &broker.config;
    let tcp = listeners::bind_stream(&broker, Listener::Tcp).await?;
    let websocket = listeners::bind_stream(&broker, Listener::WebSocket).await?;
    let quic = listeners::bind_quic(&broker)?;
    let http = listeners::bind("HTTP", config.http.enabled, &config.http.address).await?;
    let bound = crate::broker::Listeners {
        tcp: tcp.as_ref().map(|l| l.bound),
        quic: quic.as_ref().map(|q| q.bound),
        http: http.as_ref().map(|(_, bound)| *bound),
        websocket: websocket.as_ref().map(|l| l.bound),
    };
    *broker.listeners.write().expect("listeners lock") = bound;
    write_runtime_config(config, &bound)?;
    let http_server = match http {
        Some((listener, _)) => Some(serve_http(&broker, listener)?),
        None => None,
    };

    let flusher = tokio::spawn(periodic_flush(broker.clone()));
    let cleaner = config.retention.enabled.then(|| {
        tokio::spawn(crate::retention::run(
            broker.clone(),
            broker.effective.retention_interval,
        ))
    });
    // One connection limit across transports.
    let connections = Arc::new(Semaphore::new(config.limits.max_connections));
    let (stop_connections, connection_shutdown) = tokio::sync::watch::channel(false);
    let mut accepting = Vec::new();
    for listener in [tcp, websocket].into_iter().flatten() {
        accepting.push(tokio::spawn(listeners::accept_stream(
            broker.clone(),
            listener,
            connections.clone(),
            connection_shutdown.clone(),
        )));
    }
    if let Some(quic) = quic {
        accepting.push(tokio::spawn(listeners::accept_quic(
            broker.clone(),
            quic,
            connections.clone(),
            connection_shutdown.clone(),
        )));
    }
    broker.set_ready(true);

    shutdown.await;
    broker.set_ready(false);
    if let Some(server) = http_server {
        server.abort();
    }
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    let _ = stop_connections.send(true);
    // Each accept loop stops accepting, then waits for its connections.
    let waiting = futures::future::join_all(accepting.iter_mut());
    if tokio::time::timeout(SHUTDOWN_GRACE, waiting).await.is_err() {
        tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; closing them");
    }
    for task in &accepting {
        task.abort();
    }
    flusher.abort();
    if let Some(cleaner) = cleaner {
        cleaner.abort();
    }
    flush_all(&broker);
    tracing::info!("shutdown complete");
    Ok(())
}

/// Serve the HTTP API (with TLS when `http.tls.enabled`).
fn serve_http(
    broker: &Arc<Broker>,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let app = crate::http::router(broker.clone())
        .into_make_service_with_connect_info::<crate::http::ClientAddr>();
    let tls = match &broker.effective.http_tls {
        Some(settings) => Some(listeners::tls_acceptor(
            broker,
            crate::broker::Transport::Http,
            settings,
        )?),
        None => None,
    };
    Ok(tokio::spawn(async move {
        let served = match tls {
            None => axum::serve(listener, app).await,
            Some((acceptor, reloader)) => {
                let listener = match listeners::TlsHttpListener::new(listener, acceptor) {
                    Ok(listener) => listener,
                    Err(e) => {
                        tracing::error!("HTTPS listener failed: {e}");
                        return;
                    }
                };
                let served = axum::serve(listener, app).await;
                reloader.abort();
                served
            }
        };
        if let Err(e) = served {
            tracing::error!("HTTP server failed: {e}");
        }
    }))
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
