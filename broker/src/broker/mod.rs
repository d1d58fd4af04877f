//! `Broker`: the shared state every connection works on — metadata, the
//! partitions, connected clients — and the operations handlers call.
//!
//! Locking: one `RwLock` guards the metadata and the map of partitions.
//! Lookups take it shared and only long enough to clone an `Arc<Partition>`;
//! metadata changes take it exclusively (they are rare and fsync their WAL
//! entry). Message I/O happens under the partition's own lock, never under
//! the broker's.

use crate::config::{Config, Effective};
use crate::consumer_groups::{GroupKey, Groups};
use crate::error::{Error, Result};
use crate::metadata::{
    ConsumerGroupMeta, MetadataOp, MetadataState, MetadataStore, PartitionMeta, StreamMeta,
    TopicMeta, TopicSettings,
};
use crate::partition::Partition;
use crate::storage::LogConfig;

pub mod users;
use iggy_binary_protocol::{WireIdentifier, WireOptions};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Most partitions one topic may have (upstream's per-request cap).
pub const MAX_PARTITIONS_PER_TOPIC: u32 = iggy_binary_protocol::MAX_PARTITIONS_PER_REQUEST;

pub type PartitionKey = (u32, u32, u32);

pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Where the client listeners are bound (reported in cluster metadata).
#[derive(Debug, Clone, Copy, Default)]
pub struct Listeners {
    pub tcp: Option<SocketAddr>,
    pub quic: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub websocket: Option<SocketAddr>,
}

/// How a client is connected (upstream's codes in client listings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp = 1,
    Quic = 2,
    Http = 3,
    WebSocket = 4,
}

impl Transport {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Quic => "quic",
            Transport::Http => "http",
            Transport::WebSocket => "websocket",
        }
    }
}

/// A connected client, as GetClients reports it.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub client_id: u32,
    pub user_id: Option<u32>,
    pub address: SocketAddr,
    pub transport: Transport,
}

struct Inner {
    metadata: MetadataStore,
    partitions: HashMap<PartitionKey, Arc<Partition>>,
}

pub struct Broker {
    pub config: Config,
    pub effective: Effective,
    inner: RwLock<Inner>,
    clients: Mutex<HashMap<u32, ClientInfo>>,
    balanced: Mutex<HashMap<(u32, u32), u32>>,
    /// Consumer-group membership (runtime: members are sessions).
    pub groups: Groups,
    pub metrics: crate::metrics::Metrics,
    next_client_id: AtomicU32,
    next_session: AtomicU64,
    pub started_at: Instant,
    pub started_at_micros: u64,
    /// Bound listener addresses, once listening.
    pub listeners: RwLock<Listeners>,
    /// Recovered and serving clients (the readiness probe).
    ready: std::sync::atomic::AtomicBool,
}

impl Broker {
    /// Open the data directory: recover metadata and every partition log.
    pub fn open(config: Config) -> anyhow::Result<Self> {
        let effective = config.effective()?;
        let metadata = MetadataStore::open(&config.system.path.join("metadata"))?;
        let mut partitions = HashMap::new();
        for stream in metadata.state().streams.values() {
            for topic in stream.topics.values() {
                for partition in &topic.partitions {
                    let key = (stream.id, topic.id, partition.id);
                    let p = Partition::open(
                        &partition_dir(&config, key),
                        partition.id,
                        log_config(&topic.settings),
                    )?;
                    partitions.insert(key, Arc::new(p));
                }
            }
        }
        Ok(Self {
            config,
            effective,
            inner: RwLock::new(Inner {
                metadata,
                partitions,
            }),
            clients: Mutex::new(HashMap::new()),
            balanced: Mutex::new(HashMap::new()),
            groups: Groups::default(),
            metrics: Default::default(),
            next_client_id: AtomicU32::new(1),
            next_session: AtomicU64::new(1),
            started_at: Instant::now(),
            started_at_micros: now_micros(),
            listeners: RwLock::new(Listeners::default()),
            ready: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Read access to the metadata for building replies.
    pub fn with_metadata<T>(&self, f: impl FnOnce(&MetadataState) -> T) -> T {
        f(self.inner.read().expect("broker lock").metadata.state())
    }

    fn commit(&self, inner: &mut Inner, op: MetadataOp) -> Result<()> {
        inner.metadata.commit(op)?;
        Ok(())
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    // ---- clients ----

    pub fn register_client(&self, address: SocketAddr, transport: Transport) -> u32 {
        let client_id = self.next_client_id.fetch_add(1, Ordering::Relaxed);
        self.clients.lock().expect("clients lock").insert(
            client_id,
            ClientInfo {
                client_id,
                user_id: None,
                address,
                transport,
            },
        );
        client_id
    }

    pub fn set_client_user(&self, client_id: u32, user_id: Option<u32>) {
        if let Some(client) = self
            .clients
            .lock()
            .expect("clients lock")
            .get_mut(&client_id)
        {
            client.user_id = user_id;
        }
    }

    /// A disconnected client is forgotten and leaves its consumer groups.
    pub fn remove_client(&self, client_id: u32) {
        self.clients
            .lock()
            .expect("clients lock")
            .remove(&client_id);
        self.groups.remove_client(client_id);
    }

    pub fn clients(&self) -> Vec<ClientInfo> {
        let mut clients: Vec<_> = self
            .clients
            .lock()
            .expect("clients lock")
            .values()
            .cloned()
            .collect();
        clients.sort_by_key(|c| c.client_id);
        clients
    }

    pub fn client(&self, client_id: u32) -> Option<ClientInfo> {
        self.clients
            .lock()
            .expect("clients lock")
            .get(&client_id)
            .cloned()
    }

    pub fn new_session(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    // ---- resolution ----

    pub fn resolve_stream(&self, m: &MetadataState, id: &WireIdentifier) -> Result<u32> {
        match id {
            WireIdentifier::Numeric(id) => m
                .streams
                .contains_key(id)
                .then_some(*id)
                .ok_or(Error::StreamIdNotFound(*id)),
            WireIdentifier::String(name) => m
                .stream_by_name(name)
                .map(|s| s.id)
                .ok_or_else(|| Error::StreamNameNotFound(name.to_string())),
        }
    }

    pub fn resolve_topic(
        &self,
        m: &MetadataState,
        stream: &WireIdentifier,
        topic: &WireIdentifier,
    ) -> Result<(u32, u32)> {
        let stream_id = self.resolve_stream(m, stream)?;
        let topics = &m.streams[&stream_id].topics;
        let topic_id = match topic {
            WireIdentifier::Numeric(id) => topics
                .contains_key(id)
                .then_some(*id)
                .ok_or(Error::TopicIdNotFound(*id))?,
            WireIdentifier::String(name) => topics
                .values()
                .find(|t| t.name == name.as_str())
                .map(|t| t.id)
                .ok_or_else(|| Error::TopicNameNotFound(name.to_string()))?,
        };
        Ok((stream_id, topic_id))
    }

    /// Resolve a consumer group of a topic by id or name.
    pub fn resolve_group(
        &self,
        m: &MetadataState,
        stream: &WireIdentifier,
        topic: &WireIdentifier,
        group: &WireIdentifier,
    ) -> Result<GroupKey> {
        let (s, t) = self.resolve_topic(m, stream, topic)?;
        let groups = &m.streams[&s].topics[&t].consumer_groups;
        let g = match group {
            WireIdentifier::Numeric(id) => groups
                .contains_key(id)
                .then_some(*id)
                .ok_or(Error::ConsumerGroupIdNotFound(*id))?,
            WireIdentifier::String(name) => groups
                .values()
                .find(|g| g.name == name.as_str())
                .map(|g| g.id)
                .ok_or_else(|| Error::ConsumerGroupNameNotFound(name.to_string()))?,
        };
        Ok((s, t, g))
    }

    pub fn create_consumer_group(
        &self,
        stream: &WireIdentifier,
        topic: &WireIdentifier,
        name: &str,
    ) -> Result<(GroupKey, ConsumerGroupMeta)> {
        let mut inner = self.inner.write().expect("broker lock");
        let m = inner.metadata.state();
        let (stream_id, topic_id) = self.resolve_topic(m, stream, topic)?;
        let topic_meta = &m.streams[&stream_id].topics[&topic_id];
        if topic_meta.consumer_groups.values().any(|g| g.name == name) {
            return Err(Error::ConsumerGroupNameAlreadyExists(name.to_string()));
        }
        let group = ConsumerGroupMeta {
            id: topic_meta.next_group_id,
            name: name.to_string(),
        };
        self.commit(
            &mut inner,
            MetadataOp::CreateConsumerGroup {
                stream_id,
                topic_id,
                group: group.clone(),
            },
        )?;
        Ok(((stream_id, topic_id, group.id), group))
    }

    pub fn delete_consumer_group(
        &self,
        stream: &WireIdentifier,
        topic: &WireIdentifier,
        group: &WireIdentifier,
    ) -> Result<()> {
        let mut inner = self.inner.write().expect("broker lock");
        let key = self.resolve_group(inner.metadata.state(), stream, topic, group)?;
        self.commit(
            &mut inner,
            MetadataOp::DeleteConsumerGroup {
                stream_id: key.0,
                topic_id: key.1,
                group_id: key.2,
            },
        )?;
        self.groups.remove_group(key);
        Ok(())
    }

    /// Look up a partition of a topic by identifiers.
    pub fn partition(
        &self,
        stream: &WireIdentifier,
        topic: &WireIdentifier,
        partition_id: u32,
    ) -> Result<(PartitionKey, Arc<Partition>)> {
        let inner = self.inner.read().expect("broker lock");
        let (s, t) = self.resolve_topic(inner.metadata.state(), stream, topic)?;
        let key = (s, t, partition_id);
        let partition = inner
            .partitions
            .get(&key)
            .cloned()
            .ok_or(Error::PartitionNotFound(partition_id))?;
        Ok((key, partition))
    }

    /// Number of partitions of a topic (for balanced and key routing).
    pub fn partitions_count(&self, stream: &WireIdentifier, topic: &WireIdentifier) -> Result<u32> {
        let inner = self.inner.read().expect("broker lock");
        let m = inner.metadata.state();
        let (s, t) = self.resolve_topic(m, stream, topic)?;
        Ok(m.streams[&s].topics[&t].partitions.len() as u32)
    }

    // ---- streams ----

    pub fn create_stream(&self, name: &str, options: &WireOptions) -> Result<StreamMeta> {
        validate_name(name).map_err(|_| Error::InvalidStreamName)?;
        let mut inner = self.inner.write().expect("broker lock");
        let m = inner.metadata.state();
        if m.stream_by_name(name).is_some() {
            return Err(Error::StreamNameAlreadyExists(name.to_string()));
        }
        let id = m.next_stream_id;
        self.commit(
            &mut inner,
            MetadataOp::CreateStream {
                id,
                name: name.to_string(),
                created_at: now_micros(),
                options: options.as_bytes().to_vec(),
            },
        )?;
        Ok(inner.metadata.state().streams[&id].clone())
    }

    pub fn update_stream(
        &self,
        stream: &WireIdentifier,
        name: &str,
        options: &WireOptions,
    ) -> Result<()> {
        validate_name(name).map_err(|_| Error::InvalidStreamName)?;
        let mut inner = self.inner.write().expect("broker lock");
        let m = inner.metadata.state();
        let id = self.resolve_stream(m, stream)?;
        if m.stream_by_name(name).is_some_and(|s| s.id != id) {
            return Err(Error::StreamNameAlreadyExists(name.to_string()));
        }
        let options = if options.is_empty() {
            m.streams[&id].options.clone()
        } else {
            options.as_bytes().to_vec()
        };
        self.commit(
            &mut inner,
            MetadataOp::UpdateStream {
                id,
                name: name.to_string(),
                options,
            },
        )
    }

    pub fn delete_stream(&self, stream: &WireIdentifier) -> Result<()> {
        let mut inner = self.inner.write().expect("broker lock");
        let id = self.resolve_stream(inner.metadata.state(), stream)?;
        self.commit(&mut inner, MetadataOp::DeleteStream { id })?;
        inner.partitions.retain(|key, _| key.0 != id);
        remove_dir_if_exists(self.config.system.path.join("streams").join(id.to_string()))?;
        Ok(())
    }

    pub fn purge_stream(&self, stream: &WireIdentifier) -> Result<()> {
        let partitions: Vec<Arc<Partition>> = {
            let inner = self.inner.read().expect("broker lock");
            let id = self.resolve_stream(inner.metadata.state(), stream)?;
            inner
                .partitions
                .iter()
                .filter(|(key, _)| key.0 == id)
                .map(|(_, p)| p.clone())
                .collect()
        };
        purge_partitions(&partitions)
    }

    // ---- topics ----

    pub fn create_topic(
        &self,
        stream: &WireIdentifier,
        name: &str,
        partitions_count: u32,
        settings: TopicSettings,
        options: &WireOptions,
    ) -> Result<(u32, TopicMeta)> {
        validate_name(name).map_err(|_| Error::InvalidTopicName)?;
        if partitions_count > MAX_PARTITIONS_PER_TOPIC {
            return Err(Error::TooManyPartitions);
        }
        let mut inner = self.inner.write().expect("broker lock");
        let m = inner.metadata.state();
        let stream_id = self.resolve_stream(m, stream)?;
        let stream_meta = &m.streams[&stream_id];
        if stream_meta.topics.values().any(|t| t.name == name) {
            return Err(Error::TopicNameAlreadyExists(name.to_string()));
        }
        let topic_id = stream_meta.next_topic_id;
        let created_at = now_micros();
        let topic = TopicMeta {
            id: topic_id,
            name: name.to_string(),
            created_at,
            partitions: (0..partitions_count)
                .map(|id| PartitionMeta { id, created_at })
                .collect(),
            settings,
            options: options.as_bytes().to_vec(),
            consumer_groups: Default::default(),
            next_group_id: 0,
        };
        self.open_partitions(&mut inner, stream_id, &topic, 0..partitions_count)?;
        self.commit(&mut inner, MetadataOp::CreateTopic { stream_id, topic })?;
        Ok((
            stream_id,
            inner.metadata.state().streams[&stream_id].topics[&topic_id].clone(),
        ))
    }

    fn open_partitions(
        &self,
        inner: &mut Inner,
        stream_id: u32,
        topic: &TopicMeta,
        ids: std::ops::Range<u32>,
    ) -> Result<()> {
        for partition_id in ids {
            let key = (stream_id, topic.id, partition_id);
            let dir = partition_dir(&self.config, key);
            // A directory left by an earlier topic with the same ids (deleted
            // but not yet cleaned) must not leak its messages into this one.
            remove_dir_if_exists(dir.clone())?;
            let partition = Partition::open(&dir, partition_id, log_config(&topic.settings))?;
            inner.partitions.insert(key, Arc::new(partition));
        }
        Ok(())
    }

    pub fn update_topic(
        &self,
        stream: &WireIdentifier,
        topic: &WireIdentifier,
        name: &str,
        update: impl FnOnce(&TopicSettings) -> Result<TopicSettings>,
        options: &WireOptions,
    ) -> Result<()> {
        validate_name(name).map_err(|_| Error::InvalidTopicName)?;
        let mut inner = self.inner.write().expect("broker lock");
        let m = inner.metadata.state();
        let (stream_id, topic_id) = self.resolve_topic(m, stream, topic)?;
        if m.streams[&stream_id]
            .topics
            .values()
            .any(|t| t.name == name && t.id != topic_id)
        {
            return Err(Error::TopicNameAlreadyExists(name.to_string()));
        }
        let current = &m.streams[&stream_id].topics[&topic_id];
        let settings = update(&current.settings)?;
        let mut merged = current.options.clone();
        if !options.is_empty() {
            merged = options.as_bytes().to_vec();
        }
        self.commit(
            &mut inner,
            MetadataOp::UpdateTopic {
                stream_id,
                topic_id,
                name: name.to_string(),
                settings: settings.clone(),
                options: merged,
            },
        )?;
        for (key, partition) in &inner.partitions {
            if key.0 == stream_id && key.1 == topic_id {
                partition
                    .log
                    .lock()
                    .expect("log lock")
                    .set_config(log_config(&settings));
            }
        }
        Ok(())
    }

    pub fn delete_topic(&self, stream: &WireIdentifier, topic: &WireIdentifier) -> Result<()> {
        let mut inner = self.inner.write().expect("broker lock");
        let (stream_id, topic_id) = self.resolve_topic(inner.metadata.state(), stream, topic)?;
        self.commit(
            &mut inner,
            MetadataOp::DeleteTopic {
                stream_id,
                topic_id,
            },
        )?;
        inner
            .partitions
            .retain(|key, _| !(key.0 == stream_id && key.1 == topic_id));
        remove_dir_if_exists(topic_dir(&self.config, stream_id, topic_id))?;
        Ok(())
    }

    pub fn purge_topic(&self, stream: &WireIdentifier, topic: &WireIdentifier) -> Result<()> {
        let partitions: Vec<Arc<Partition>> = {
            let inner = self.inner.read().expect("broker lock");
            let (s, t) = self.resolve_topic(inner.metadata.state(), stream, topic)?;
            inner
                .partitions
                .iter()
                .filter(|(key, _)| key.0 == s && key.1 == t)
                .map(|(_, p)| p.clone())
                .collect()
        };
        purge_partitions(&partitions)
    }

    // ---- partitions ----

    pub fn create_partitions(
        &self,
        stream: &WireIdentifier,
        topic: &WireIdentifier,
        count: u32,
    ) -> Result<()> {
        if count == 0 || count > MAX_PARTITIONS_PER_TOPIC {
            return Err(Error::InvalidPartitionsCount);
        }
        let mut inner = self.inner.write().expect("broker lock");
        let m = inner.metadata.state();
        let (stream_id, topic_id) = self.resolve_topic(m, stream, topic)?;
        let topic_meta = m.streams[&stream_id].topics[&topic_id].clone();
        let existing = topic_meta.partitions.len() as u32;
        if existing + count > MAX_PARTITIONS_PER_TOPIC {
            return Err(Error::TooManyPartitions);
        }
        self.open_partitions(
            &mut inner,
            stream_id,
            &topic_meta,
            existing..existing + count,
        )?;
        self.commit(
            &mut inner,
            MetadataOp::CreatePartitions {
                stream_id,
                topic_id,
                count,
                created_at: now_micros(),
            },
        )
    }

    pub fn delete_partitions(
        &self,
        stream: &WireIdentifier,
        topic: &WireIdentifier,
        count: u32,
    ) -> Result<()> {
        let mut inner = self.inner.write().expect("broker lock");
        let m = inner.metadata.state();
        let (stream_id, topic_id) = self.resolve_topic(m, stream, topic)?;
        let existing = m.streams[&stream_id].topics[&topic_id].partitions.len() as u32;
        if count == 0 || count > existing {
            return Err(Error::InvalidPartitionsCount);
        }
        self.commit(
            &mut inner,
            MetadataOp::DeletePartitions {
                stream_id,
                topic_id,
                count,
            },
        )?;
        for partition_id in existing - count..existing {
            let key = (stream_id, topic_id, partition_id);
            inner.partitions.remove(&key);
            remove_dir_if_exists(partition_dir(&self.config, key))?;
        }
        Ok(())
    }

    /// Size and message count of the partitions matching `filter`.
    pub fn usage(&self, filter: impl Fn(&PartitionKey) -> bool) -> (u64, u64) {
        let partitions: Vec<Arc<Partition>> = {
            let inner = self.inner.read().expect("broker lock");
            inner
                .partitions
                .iter()
                .filter(|(key, _)| filter(key))
                .map(|(_, p)| p.clone())
                .collect()
        };
        partitions.iter().fold((0, 0), |(size, count), p| {
            let log = p.log.lock().expect("log lock");
            (size + log.size_bytes(), count + log.messages_count())
        })
    }

    /// Round-robin partition choice for balanced sends, per topic.
    pub fn next_balanced(
        &self,
        stream: &WireIdentifier,
        topic: &WireIdentifier,
        count: u32,
    ) -> Result<u32> {
        if count == 0 {
            return Err(Error::NoPartitions);
        }
        let key = self.with_metadata(|m| self.resolve_topic(m, stream, topic))?;
        let mut counters = self.balanced.lock().expect("balanced lock");
        let counter = counters.entry(key).or_insert(0);
        let chosen = *counter % count;
        *counter = counter.wrapping_add(1);
        Ok(chosen)
    }

    pub fn partition_handle(&self, key: PartitionKey) -> Option<Arc<Partition>> {
        self.inner
            .read()
            .expect("broker lock")
            .partitions
            .get(&key)
            .cloned()
    }

    /// Stream and topic names, for metric labels.
    pub fn topic_names(&self, stream_id: u32, topic_id: u32) -> (String, String) {
        self.with_metadata(|m| {
            let stream = m.streams.get(&stream_id);
            let topic = stream.and_then(|s| s.topics.get(&topic_id));
            (
                stream.map_or_else(String::new, |s| s.name.clone()),
                topic.map_or_else(String::new, |t| t.name.clone()),
            )
        })
    }

    /// Refresh the storage gauges (called when metrics are scraped).
    pub fn refresh_storage_metrics(&self) {
        let partitions = self.all_partitions();
        let (mut segments, mut bytes) = (0, 0);
        for partition in &partitions {
            let log = partition.log.lock().expect("log lock");
            segments += log.segments_count() as i64;
            bytes += log.size_bytes() as i64;
        }
        self.metrics.partitions.set(partitions.len() as i64);
        // One broker holds every replica of its partitions: it leads them
        // all, and a partition is under-replicated when its topic asks for
        // more than that one replica.
        self.metrics.partition_leaders.set(partitions.len() as i64);
        let under_replicated: usize = self.with_metadata(|m| {
            m.streams
                .values()
                .flat_map(|s| s.topics.values())
                .filter(|t| t.settings.replication_factor > 1)
                .map(|t| t.partitions.len())
                .sum()
        });
        self.metrics.under_replicated.set(under_replicated as i64);
        self.metrics.segments.set(segments);
        self.metrics.disk_bytes.set(bytes);
        self.metrics.refresh_system(&self.config.system.path);
    }

    /// Each topic's settings with its partitions, for the retention cleaner.
    pub fn topics_for_retention(&self) -> Vec<(TopicSettings, Vec<Arc<Partition>>)> {
        let inner = self.inner.read().expect("broker lock");
        let mut out = Vec::new();
        for stream in inner.metadata.state().streams.values() {
            for topic in stream.topics.values() {
                let partitions = topic
                    .partitions
                    .iter()
                    .filter_map(|p| inner.partitions.get(&(stream.id, topic.id, p.id)).cloned())
                    .collect();
                out.push((topic.settings.clone(), partitions));
            }
        }
        out
    }

    /// Every partition, for housekeeping (periodic fsync, stats).
    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.inner
            .read()
            .expect("broker lock")
            .partitions
            .values()
            .cloned()
            .collect()
    }
}

fn purge_partitions(partitions: &[Arc<Partition>]) -> Result<()> {
    for partition in partitions {
        partition.log.lock().expect("log lock").purge()?;
        partition.clear_offsets()?;
    }
    Ok(())
}

pub fn log_config(settings: &TopicSettings) -> LogConfig {
    LogConfig {
        segment_size_bytes: settings.segment_size_bytes,
        fsync: settings.fsync,
    }
}

fn topic_dir(config: &Config, stream_id: u32, topic_id: u32) -> PathBuf {
    config
        .system
        .path
        .join("streams")
        .join(stream_id.to_string())
        .join("topics")
        .join(topic_id.to_string())
}

fn partition_dir(config: &Config, (s, t, p): PartitionKey) -> PathBuf {
    topic_dir(config, s, t)
        .join("partitions")
        .join(p.to_string())
}

fn remove_dir_if_exists(dir: PathBuf) -> std::io::Result<()> {
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Names are 1..=255 bytes (the wire limit) and not blank.
fn validate_name(name: &str) -> std::result::Result<(), ()> {
    if name.trim().is_empty() || name.len() > 255 {
        return Err(());
    }
    Ok(())
}
