//! `Broker`: what every connection and peer request works on — the
//! replicated metadata, the partitions held here, the client registry —
//! and start-up.
//!
//! Each part owns its own locking: the metadata behind the metadata
//! group's state lock (writes go through Raft, never under a broker-wide
//! lock), the partition map behind the registry's lock (held only to
//! clone an `Arc<Partition>`), message I/O under each partition's lock.

pub mod offset_commits;
mod replicas;
pub mod stats;
pub mod users;

use crate::clients::Clients;
use crate::cluster::raft::Raft;
use crate::cluster::raft::log_store::LogStore;
use crate::cluster::raft::network::Network;
use crate::cluster::raft::state_machine::{SharedState, StateMachine};
use crate::cluster::{ClusterSettings, Peers};
use crate::config::{BoundAddresses, Config, Effective};
use crate::error::{Error, Result};
use crate::metadata::{
    Advertised, Ident, MetadataCommand, MetadataService, MetadataState, PartitionKey, TopicSettings,
};
use crate::partitions::{Layout, Partition, PartitionRegistry};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Where a partition's requests are served.
pub enum PartitionHome {
    /// Here.
    Local(PartitionKey, Arc<Partition>),
    /// On another broker (its leader).
    Remote(PartitionKey, u32),
}

pub struct Broker {
    pub config: Config,
    pub effective: Effective,
    pub metadata: Arc<MetadataService>,
    /// Offsets of auto-commit polls, committed behind their replies.
    pub offset_commits: offset_commits::OffsetCommits,
    pub partitions: Arc<PartitionRegistry>,
    pub clients: Clients,
    /// `None` for a standalone broker.
    pub cluster: Option<Arc<ClusterSettings>>,
    pub peers: Option<Arc<Peers>>,
    /// Round-robin position per topic for balanced sends.
    balanced: Mutex<HashMap<(u32, u32), u32>>,
    pub metrics: crate::metrics::Metrics,
    /// Key sealing the consumer-session blocks of cluster routing (the
    /// cluster's secret, so every broker can check them).
    pub routing_key: Vec<u8>,
    pub started_at: Instant,
    pub started_at_micros: u64,
    /// Bound listener addresses, once listening.
    pub listeners: RwLock<BoundAddresses>,
    /// Recovered, listening, and registered with the metadata group.
    ready: AtomicBool,
    /// Removed from the cluster while running: this process stays out
    /// (it asks to join again only when restarted).
    pub removed: AtomicBool,
    /// Started with an empty metadata log in a cluster and not caught up
    /// yet: refuses its vote (`cluster::catching_up`).
    pub catching_up: AtomicBool,
    /// Metadata leader only: brokers it removed, and when (a broker still
    /// running when it is removed may ask to join before it hears of it).
    pub recently_removed: std::sync::Mutex<std::collections::HashMap<u32, std::time::Instant>>,
    /// Bounded password hashing and refused passwords remembered.
    pub login_guard: crate::auth::guard::LoginGuard,
    /// The data directory's storage id (see `Identity`).
    pub storage_id: u64,
    /// Free space and health of the data directory; asked before writes.
    pub space: Arc<crate::storage::space::DataDirectory>,
}

/// The identity a data directory was created with.
#[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Identity {
    /// `None`: a standalone broker.
    cluster: Option<String>,
    node_id: u32,
    /// Random, made with the directory: a broker that comes back with
    /// another one lost its disk (see `MetadataCommand::RegisterNode`).
    #[serde(default)]
    storage_id: u64,
}

impl Broker {
    /// Open the data directory: the metadata log and snapshot (replaying
    /// committed entries), and the partitions assigned here.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        let effective = config.effective()?;
        let cluster = effective.cluster.clone().map(Arc::new);
        let node_id = cluster.as_ref().map_or(0, |c| c.node_id);
        let data = config.system.path.clone();
        crate::storage::fs::create_dir_durable(&data)?;
        let storage_id = check_identity(&data, cluster.as_deref())?;

        let partitions = Arc::new(PartitionRegistry::new(node_id, Layout::new(&data)));
        let state: SharedState = Arc::new(RwLock::new(MetadataState::default()));
        let uid = Arc::new(crate::cluster::uid::ClusterUid::default());
        let raft_dir = data.join("metadata");
        let state_machine =
            StateMachine::open(&raft_dir, state.clone(), partitions.clone(), uid.clone())
                .map_err(|e| unreadable_metadata(&raft_dir, e))?;
        let (log_store, _) =
            LogStore::open(&raft_dir).map_err(|e| unreadable_metadata(&raft_dir, e))?;
        let pristine = log_store.is_pristine();
        // Before peers can reach it (`cluster::catching_up`).
        let catching_up = cluster.is_some()
            && crate::cluster::catching_up::begin(&raft_dir, pristine)
                .map_err(|e| anyhow::anyhow!("marking {}: {e}", raft_dir.display()))?;

        let max_frame = (effective.max_request_bytes + (1 << 20)).max(8 << 20);
        let peers = cluster
            .as_ref()
            .map(|settings| Peers::new(settings.clone(), max_frame, uid.clone()).map(Arc::new))
            .transpose()?;
        let raft_config = raft_config(&config.cluster, cluster.as_deref())?;
        let raft = Raft::new(
            node_id as u64,
            Arc::new(raft_config),
            Network::new(peers.clone()),
            log_store,
            state_machine,
        )
        .await?;
        // Alone, the broker is its own group of one. In a cluster the
        // founders form the group once their peers can be asked whether it
        // runs already (`cluster::founding`); the others join it
        // (`cluster::membership`).
        if pristine && cluster.is_none() {
            let members = BTreeMap::from([(0, openraft::BasicNode::new("standalone"))]);
            if let Err(e) = raft.initialize(members).await {
                tracing::debug!("metadata group already initialized: {e}");
            }
        }
        // Committed entries are applied again by now: if they do not name
        // the cluster, the uid a lone founder chose is still its own.
        if cluster.is_some() {
            uid.recall_founding(&raft_dir)
                .map_err(|e| unreadable_metadata(&raft_dir, e))?;
        }
        if crate::cluster::membership::was_removed(&raft_dir) {
            // It asks to join first (`cluster::membership::run`).
            raft.runtime_config().elect(false);
        }
        let write_timeout = cluster
            .as_ref()
            .map_or(std::time::Duration::from_secs(5), |c| c.write_timeout);
        let contact_timeout = cluster
            .as_ref()
            .map_or(std::time::Duration::from_secs(1), |c| c.election_timeout);
        // 32 bits: it travels in the routing attach block (`command::routing`).
        let epoch = u64::from(rand::random::<u32>().max(1));
        let routing_key = cluster
            .as_ref()
            .map_or_else(|| rand::random::<[u8; 32]>().to_vec(), |c| c.secret.clone());
        let metadata = Arc::new(MetadataService::new(
            state,
            raft,
            node_id,
            epoch,
            peers.clone(),
            write_timeout,
            contact_timeout,
        ));
        let space = Arc::new(crate::storage::space::DataDirectory::new(
            &config.system.path,
            effective.reserved_space_bytes,
        ));
        Ok(Self {
            config,
            effective,
            offset_commits: offset_commits::OffsetCommits::new(metadata.clone()),
            metadata,
            partitions,
            clients: Clients::new(node_id),
            cluster,
            peers,
            balanced: Mutex::new(HashMap::new()),
            metrics: Default::default(),
            routing_key,
            started_at: Instant::now(),
            started_at_micros: now_micros(),
            listeners: RwLock::new(BoundAddresses::default()),
            ready: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            catching_up: AtomicBool::new(catching_up),
            recently_removed: Default::default(),
            login_guard: Default::default(),
            storage_id,
            space,
        })
    }

    pub fn node_id(&self) -> u32 {
        self.metadata.node_id()
    }

    /// Where the metadata log, snapshots and membership marks live.
    pub fn metadata_dir(&self) -> std::path::PathBuf {
        self.config.system.path.join("metadata")
    }

    /// Registered with the metadata group and in contact with it.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed) && self.metadata.in_contact()
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Record in the metadata how clients reach this broker (and drop the
    /// group members of its earlier processes). Retries until it commits.
    pub async fn register(&self) {
        let advertised = self.advertised();
        loop {
            let command = MetadataCommand::RegisterNode {
                node: self.node_id(),
                epoch: self.metadata.epoch(),
                advertised: advertised.clone(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                storage: self.storage_id,
                zone: self
                    .cluster
                    .as_ref()
                    .map_or_else(String::new, |c| c.zone.clone()),
                metadata_version: self
                    .cluster
                    .as_ref()
                    .map_or(crate::metadata::command::METADATA_VERSION, |c| {
                        c.metadata_version
                    }),
            };
            match self.metadata.write(command).await {
                Ok(_) => {
                    tracing::info!(
                        node = self.node_id(),
                        leader = ?self.metadata.leader(),
                        "registered with the metadata group"
                    );
                    return;
                }
                Err(e) => {
                    tracing::info!("registering with the metadata group: {e}; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
            }
        }
    }

    /// How clients reach this broker: configured, falling back to the bound
    /// addresses.
    pub fn advertised(&self) -> Advertised {
        let bound = *self
            .listeners
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let port = |configured: u16, bound: Option<std::net::SocketAddr>| match bound {
            None => 0,
            Some(address) if configured == 0 => address.port(),
            Some(_) => configured,
        };
        let configured = self
            .cluster
            .as_ref()
            .map(|c| c.advertised.clone())
            .unwrap_or_default();
        let host = if configured.host.is_empty() {
            bound
                .tcp
                .map(|a| a.ip())
                .filter(|ip| !ip.is_unspecified())
                .map_or_else(|| "127.0.0.1".to_string(), |ip| ip.to_string())
        } else {
            configured.host.clone()
        };
        Advertised {
            host,
            tcp: port(configured.tcp, bound.tcp),
            quic: port(configured.quic, bound.quic),
            http: port(configured.http, bound.http),
            websocket: port(configured.websocket, bound.websocket),
        }
    }

    // ---- partitions ----

    /// Where partition `partition_id` of a topic is served. A stream,
    /// topic or partition this broker does not know (yet: made through
    /// another broker a moment ago) is looked up again after catching up
    /// with the metadata leader.
    pub async fn locate(
        &self,
        stream: &Ident,
        topic: &Ident,
        partition_id: u32,
    ) -> Result<PartitionHome> {
        self.catching_up(|| self.partition(stream, topic, partition_id))
            .await
    }

    /// Run `lookup`; if what it looks for is not found, catch up with the
    /// metadata leader and run it again.
    pub async fn catching_up<T>(&self, lookup: impl Fn() -> Result<T>) -> Result<T> {
        match lookup() {
            Err(e) if is_not_found(&e) => {
                self.metadata.sync().await;
                lookup()
            }
            other => other,
        }
    }

    /// Where partition `partition_id` of a topic is served, by what this
    /// broker knows now.
    pub fn partition(
        &self,
        stream: &Ident,
        topic: &Ident,
        partition_id: u32,
    ) -> Result<PartitionHome> {
        let (key, leader) = self.metadata.read(|m| -> Result<_> {
            let (s, t) = m.resolve_topic(stream, topic)?;
            let key = (s, t, partition_id);
            let meta = m
                .partition(key)
                .ok_or(Error::PartitionNotFound(partition_id))?;
            Ok((key, meta.leader().unwrap_or(self.node_id())))
        })?;
        if leader == self.node_id() {
            let partition = self.partitions.get(key).ok_or_else(|| {
                Error::PartitionUnavailable(format!(
                    "partition {partition_id} is not open on this broker"
                ))
            })?;
            Ok(PartitionHome::Local(key, partition))
        } else {
            Ok(PartitionHome::Remote(key, leader))
        }
    }

    /// Round-robin partition choice for balanced sends, per topic.
    pub fn next_balanced(&self, topic: (u32, u32), count: u32) -> Result<u32> {
        if count == 0 {
            return Err(Error::NoPartitions);
        }
        let mut counters = self
            .balanced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let counter = counters.entry(topic).or_insert(0);
        let chosen = *counter % count;
        *counter = counter.wrapping_add(1);
        Ok(chosen)
    }

    /// Stream and topic names, for metric labels.
    pub fn topic_names(&self, stream_id: u32, topic_id: u32) -> (String, String) {
        self.metadata.read(|m| {
            let stream = m.streams.get(&stream_id);
            let topic = stream.and_then(|s| s.topics.get(&topic_id));
            (
                stream.map_or_else(String::new, |s| s.name.clone()),
                topic.map_or_else(String::new, |t| t.name.clone()),
            )
        })
    }

    /// Refresh the storage and cluster gauges (called when metrics are
    /// scraped).
    pub fn refresh_storage_metrics(&self) {
        let partitions = self.partitions.all();
        let (mut segments, mut bytes) = (0, 0);
        for partition in &partitions {
            let log = partition
                .log
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            segments += log.segments_count() as i64;
            bytes += log.size_bytes() as i64;
        }
        let node = self.node_id();
        let (leaders, under_replicated) = self.metadata.read(|m| {
            let mut leaders = 0;
            let mut under = 0;
            for (_, topic, partition) in m.partitions() {
                if partition.leader() == Some(node) {
                    leaders += 1;
                    if partition.in_sync.len() < partition.replicas.len()
                        || partition.replicas.len() < topic.settings.replication_factor as usize
                    {
                        under += 1;
                    }
                }
            }
            (leaders, under)
        });
        let max_lag = partitions
            .iter()
            .map(|p| p.replica.max_follower_lag())
            .max()
            .unwrap_or(0);
        self.metrics.max_replica_lag.set(max_lag as i64);
        self.metrics.partitions.set(partitions.len() as i64);
        self.metrics.partition_leaders.set(leaders);
        self.metrics.under_replicated.set(under_replicated);
        self.metrics.segments.set(segments);
        self.metrics.disk_bytes.set(bytes);
        self.metrics.refresh_certificates();
        self.space.refresh();
        let space = &self.space;
        self.metrics.filesystem_avail.set(space.available() as i64);
        self.metrics.filesystem_size.set(space.capacity() as i64);
        self.metrics.storage_reserved.set(space.reserve() as i64);
        self.metrics
            .storage_writable
            .set(i64::from(space.failure().is_none()));
        self.metrics.storage_low.set(i64::from(space.is_low()));
        let raft = self.metadata.raft().metrics().borrow().clone();
        self.metrics
            .metadata_leader
            .set(raft.current_leader.map_or(-1, |id| id as i64));
        self.metrics.metadata_term.set(raft.current_term as i64);
        self.metrics
            .metadata_applied
            .set(raft.last_applied.map_or(0, |id| id.index as i64));
        if let Some(peers) = &self.peers {
            for peer in peers.ids() {
                self.metrics
                    .peer_up
                    .with_label_values(&[&peer.to_string()])
                    .set(i64::from(peers.is_healthy(peer)));
            }
        }
    }

    /// Each topic's settings with its local partitions, for the retention
    /// cleaner.
    pub fn topics_for_retention(&self) -> Vec<(TopicSettings, u32, Vec<Arc<Partition>>)> {
        let topics: Vec<(TopicSettings, u32, Vec<PartitionKey>)> = self.metadata.read(|m| {
            m.streams
                .values()
                .flat_map(|s| s.topics.values().map(move |t| (s.id, t)))
                .map(|(s, t)| {
                    (
                        t.settings.clone(),
                        t.partitions.len() as u32,
                        t.partitions.iter().map(|p| (s, t.id, p.id)).collect(),
                    )
                })
                .collect()
        });
        topics
            .into_iter()
            .map(|(settings, count, keys)| {
                let local = keys
                    .into_iter()
                    .filter_map(|k| self.partitions.get(k))
                    .collect();
                (settings, count, local)
            })
            .collect()
    }
}

fn is_not_found(e: &Error) -> bool {
    matches!(
        e,
        Error::StreamIdNotFound(_)
            | Error::StreamNameNotFound(_)
            | Error::TopicIdNotFound(_)
            | Error::TopicNameNotFound(_)
            | Error::PartitionNotFound(_)
    )
}

/// Refuse a data directory made for another cluster or node: opening it
/// would merge two histories.
/// The error a broker stops with when its metadata (vote, log, snapshot)
/// cannot be read: starting without it could make this broker vote twice
/// in a term or forget what it acknowledged, so it says what is wrong and
/// how to recover instead.
fn unreadable_metadata(dir: &std::path::Path, e: std::io::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot read the metadata in {}: {e}. The broker does not start without it. \
         In a cluster, move this broker's data directory away and start it again: \
         it rejoins empty and copies the metadata and its partitions from its peers. \
         A standalone broker needs the file restored from a backup.",
        dir.display()
    )
}

/// Check that the data directory belongs to this broker (recording its
/// identity on first use); returns the directory's storage id.
fn check_identity(
    data: &std::path::Path,
    cluster: Option<&ClusterSettings>,
) -> anyhow::Result<u64> {
    let expected = Identity {
        cluster: cluster.map(|c| c.name.clone()),
        node_id: cluster.map_or(0, |c| c.node_id),
        storage_id: 0,
    };
    let path = data.join("identity.json");
    let new_identity = |mut expected: Identity| -> anyhow::Result<u64> {
        expected.storage_id = rand::random::<u64>().max(1);
        crate::storage::fs::write_atomic(&path, &serde_json::to_vec(&expected)?, true)?;
        Ok(expected.storage_id)
    };
    let mut found: Identity = match std::fs::read(&path) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(found) => found,
            Err(e) => {
                // Written atomically, so only outside damage gets here. A new
                // storage id is the safe recovery: peers treat this broker
                // as one that lost its disk until it has copied the logs
                // again (see `MetadataCommand::RegisterNode`).
                tracing::error!(
                    path = %path.display(),
                    "damaged identity file ({e}): writing a new one; this broker rejoins as if its disk were new"
                );
                return new_identity(expected);
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return new_identity(expected),
        Err(e) => return Err(e.into()),
    };
    if (&found.cluster, found.node_id) != (&expected.cluster, expected.node_id) {
        let describe = |i: &Identity| match &i.cluster {
            Some(name) => format!("node {} of cluster `{name}`", i.node_id),
            None => "a standalone broker".to_string(),
        };
        anyhow::bail!(
            "invalid configuration: `cluster`: the data directory {} belongs to {}, but this broker is configured as {}; use another data directory",
            data.display(),
            describe(&found),
            describe(&expected)
        );
    }
    if found.storage_id == 0 {
        // Made by a version without storage ids.
        found.storage_id = rand::random::<u64>().max(1);
        crate::storage::fs::write_atomic(&path, &serde_json::to_vec(&found)?, true)?;
    }
    Ok(found.storage_id)
}

fn raft_config(
    configured: &crate::config::ClusterConfig,
    cluster: Option<&ClusterSettings>,
) -> anyhow::Result<openraft::Config> {
    let (name, heartbeat, election) = match cluster {
        Some(c) => (
            c.name.clone(),
            c.heartbeat_interval.as_millis() as u64,
            c.election_timeout.as_millis() as u64,
        ),
        None => ("standalone".to_string(), 100, 1000),
    };
    let config = openraft::Config {
        cluster_name: name,
        heartbeat_interval: heartbeat,
        election_timeout_min: election,
        election_timeout_max: election * 2,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(configured.snapshot_every),
        max_in_snapshot_log_to_keep: configured.log_kept,
        install_snapshot_timeout: 2_000.max(election),
        ..Default::default()
    };
    Ok(config.validate()?)
}
