//! Start-up and shutdown: bind the listeners, join the cluster (or, alone,
//! the group of one), serve until a shutdown signal, then stop accepting,
//! let connections finish their current request, and flush every partition.

mod admission;
mod listeners;
mod quick_ack;

use crate::broker::Broker;
use crate::config::{BoundAddresses, write_runtime_config};
use crate::error::SaveKind;
use crate::storage::FsyncPolicy;
use listeners::Listener;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How long connections get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Credentials for the root user, created on the cluster's first start.
pub struct RootUser {
    pub username: String,
    pub password: String,
    /// A random password, printed once when this broker creates the user.
    pub generated: bool,
}

pub async fn run(
    broker: Arc<Broker>,
    root: RootUser,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let config = &broker.config;
    let tcp = listeners::bind_stream(&broker, Listener::Tcp).await?;
    let websocket = listeners::bind_stream(&broker, Listener::WebSocket).await?;
    let quic = listeners::bind_quic(&broker)?;
    let http = listeners::bind("HTTP", config.http.enabled, &config.http.address).await?;
    let bound = BoundAddresses {
        tcp: tcp.as_ref().map(|l| l.bound),
        quic: quic.as_ref().map(|q| q.bound),
        http: http.as_ref().map(|(_, bound)| *bound),
        websocket: websocket.as_ref().map(|l| l.bound),
    };
    *broker
        .listeners
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = bound;

    let mut background = Vec::new();
    background.push(tokio::spawn(
        broker.partitions.clone().empty_trash_forever(),
    ));
    if let (Some(cluster), Some(peers)) = (&broker.cluster, &broker.peers) {
        let listener = tokio::net::TcpListener::bind(cluster.replica_bind)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot bind the replica listener {}: {e}",
                    cluster.replica_bind
                )
            })?;
        tracing::info!(
            address = %listener.local_addr()?,
            node = cluster.node_id,
            cluster = %cluster.name,
            "replica listener"
        );
        let max_frame = (broker.effective.max_request_bytes + (1 << 20)).max(8 << 20);
        let tls = peers.tls();
        if let Some(tls) = &tls {
            broker
                .metrics
                .watch_certificate("replica", tls.certificates.clone());
            let interval = cluster
                .tls
                .as_ref()
                .map_or(Duration::from_secs(5), |t| t.reload_interval);
            background.extend(tls.watch(interval));
        }
        background.push(tokio::spawn(crate::cluster::transport::server::serve(
            listener,
            cluster.clone(),
            peers.uid(),
            tls,
            Arc::new(crate::cluster::rpc::PeerService::new(broker.clone())),
            max_frame,
        )));
        background.push(tokio::spawn(crate::cluster::uid::name_unless_named(
            broker.clone(),
            peers.uid(),
        )));
        background.push(tokio::spawn(crate::cluster::membership::run(
            broker.clone(),
        )));
        background.push(tokio::spawn(crate::cluster::rpc::ping_forever(
            broker.clone(),
            peers.clone(),
        )));
        background.push(tokio::spawn(crate::replication::run(broker.clone())));
        background.push(tokio::spawn(crate::replication::controller::run(
            broker.clone(),
        )));
        background.push(tokio::spawn(crate::replication::low_space::run(
            broker.clone(),
        )));
    }
    // Join: create the root user on the cluster's first start, record how
    // clients reach this broker, then report ready. Alone, this commits at
    // once and finishes before clients are let in; in a cluster it waits
    // for a quorum, while the listeners already accept (requests wait for
    // the metadata group the same way).
    let joining = tokio::spawn(join(broker.clone(), root));
    if broker.cluster.is_none() {
        joining.await??;
    } else {
        background.push(tokio::spawn(async move {
            match joining.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!("joining the cluster failed: {e}"),
                Err(e) => tracing::error!("joining the cluster failed: {e}"),
            }
        }));
    }
    let http_server = match http {
        Some((listener, _)) => Some(serve_http(&broker, listener)?),
        None => None,
    };
    // Written last: its presence means every listener is set up (the HTTP
    // listener's certificate loaded too), which scripts and tests wait for.
    // Not a reason to stop: a full or read-only disk must not keep the
    // broker from serving reads.
    if let Err(e) = write_runtime_config(config, &bound) {
        tracing::warn!("cannot write the runtime file (current_config.toml): {e}");
    }

    background.push(tokio::spawn(periodic_flush(broker.clone())));
    background.push(tokio::spawn(broker.space.clone().watch()));
    background.push(tokio::spawn(crate::memory::give_back_forever()));
    if config.retention.enabled {
        background.push(tokio::spawn(crate::retention::run(
            broker.clone(),
            broker.effective.retention_interval,
        )));
    }
    // One set of connection limits across transports.
    let connections = admission::Admission::new(
        config.limits.max_connections,
        config.limits.max_connections_per_address,
    );
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
    for task in accepting.iter().chain(background.iter()) {
        task.abort();
    }
    wait_for_offset_commits(&broker).await;
    flush_all(&broker);
    if let Err(e) = broker.metadata.raft().shutdown().await {
        tracing::warn!("stopping the metadata group: {e}");
    }
    tracing::info!("shutdown complete");
    Ok(())
}

/// Root user (first start), registration, readiness.
async fn join(broker: Arc<Broker>, root: RootUser) -> anyhow::Result<()> {
    loop {
        match broker
            .ensure_root_user(&root.username, &root.password)
            .await
        {
            Ok(true) if root.generated => {
                // Shown once, on the first start only.
                println!(
                    "Created root user `{}` with password: {}",
                    root.username, root.password
                );
                break;
            }
            Ok(true) => {
                tracing::info!("created root user `{}`", root.username);
                break;
            }
            Ok(false) => break,
            Err(e) if broker.cluster.is_some() => {
                tracing::info!("creating the root user: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    broker.register().await;
    // Its registration applied here: its log holds everything committed.
    crate::cluster::catching_up::finish(&broker);
    broker.set_ready(true);
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
            crate::clients::Transport::Http,
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

/// Let the offsets of auto-commit polls already answered finish
/// committing.
async fn wait_for_offset_commits(broker: &Broker) {
    let waiting = broker.offset_commits.settle_all();
    if tokio::time::timeout(SHUTDOWN_GRACE, waiting).await.is_err() {
        tracing::warn!("consumer offsets still committing after {SHUTDOWN_GRACE:?}");
    }
}

fn flush_all(broker: &Broker) {
    for partition in broker.partitions.all() {
        let mut log = partition
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = log.flush() {
            tracing::error!(partition = partition.id, "flush failed: {e}");
        }
    }
}

/// Fsync partitions whose topics use the `interval` policy, each outside
/// its log's lock (`Partition::sync_up_to`), so polls and sends go on.
async fn periodic_flush(broker: Arc<Broker>) {
    let interval = match broker.effective.fsync {
        FsyncPolicy::Interval(interval) => interval,
        _ => Duration::from_secs(1),
    };
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        for partition in broker.partitions.all() {
            let due = {
                let log = partition.lock_log();
                (matches!(log.config().fsync, FsyncPolicy::Interval(_)) && log.unsynced())
                    .then(|| (log.next_offset(), log.generation()))
            };
            if let Some((end, generation)) = due
                && let Err(e) = partition.sync_up_to(end, generation, false).await
            {
                // Logged once when the directory starts failing.
                broker.space.write_failed(SaveKind::Messages, e);
            }
        }
    }
}
