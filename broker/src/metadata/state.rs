//! The replicated metadata: streams, topics, partitions with their replica
//! assignment and consumer offsets, consumer groups with their members,
//! users with permissions and personal access tokens, and the roster of
//! brokers.
//!
//! This module is the data and its queries (resolving identifiers, finding
//! users and tokens). Changes go through [`super::apply`], which every
//! broker runs on the same log in the same order.

use super::command::{Ident, ProposalId, Response};
use crate::auth::Permissions;
use crate::error::{Error, Result};
use crate::storage::FsyncPolicy;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// (stream id, topic id, partition id)
pub type PartitionKey = (u32, u32, u32);
/// (stream id, topic id, group id)
pub type GroupKey = (u32, u32, u32);

/// Who an offset belongs to: a named consumer or a consumer group (by id,
/// so the group's name and its numeric id share one offset).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ConsumerKey {
    Consumer(String),
    Group(u32),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionMeta {
    pub id: u32,
    pub created_at: u64,
    /// Brokers holding a copy of this partition's log (the preferred
    /// leader first).
    pub replicas: Vec<u32>,
    /// The broker leading the partition: it appends, and the others copy
    /// from it. Chosen by the metadata leader among the in-sync replicas.
    pub leader: Option<u32>,
    /// Bumped by every change of leader. Fetches, in-sync changes and
    /// appends name the epoch they belong to, so an old leader cut off
    /// from the cluster cannot change anything once a new one is chosen.
    pub leader_epoch: u32,
    /// Replicas holding every committed message, the leader included. A
    /// message is committed (and its send acknowledged) once all of them
    /// have it, so any of them can take over without losing it.
    pub in_sync: Vec<u32>,
    /// A reassignment in progress: the replica set being moved to. Until
    /// it completes, `replicas` holds the old and the new replicas; it
    /// completes once every new replica is in sync and one of them leads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reassigning: Option<Vec<u32>>,
    /// Log index of the operation that created this partition. Partition
    /// ids are reused (delete the last partition, add one), so a partition
    /// directory records the incarnation it belongs to: replaying the log
    /// after a crash never mistakes one incarnation's data for another's.
    pub incarnation: u64,
    /// Replicas added by a reassignment, and the log index of the command
    /// that added each (the others date from `incarnation`). A replica
    /// removed and added back is a new, empty copy: what its earlier copy
    /// still sends is told apart by this and refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub added_at: BTreeMap<u32, u64>,
    /// Stored consumer offsets.
    #[serde(with = "pairs")]
    pub offsets: BTreeMap<ConsumerKey, u64>,
}

impl PartitionMeta {
    pub fn leader(&self) -> Option<u32> {
        self.leader
    }

    /// The log index of the command that gave `node` its current replica
    /// of this partition.
    pub fn assigned_at(&self, node: u32) -> u64 {
        self.added_at
            .get(&node)
            .copied()
            .unwrap_or(self.incarnation)
    }
}

/// Settings of a topic, resolved against the broker defaults at creation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopicSettings {
    pub compression_algorithm: u8,
    /// Message expiry in µs; `u64::MAX` = never.
    pub message_expiry_us: u64,
    /// Byte cap of the topic; `u64::MAX` = unlimited.
    pub max_topic_size: u64,
    pub segment_size_bytes: u64,
    pub replication_factor: u8,
    /// A send is refused while fewer replicas than this are in sync.
    pub min_in_sync: u8,
    /// The minimum a growing replication factor takes once every
    /// partition has its new replicas in sync (until then the old minimum
    /// holds, so the topic keeps accepting sends while they catch up).
    #[serde(default)]
    pub pending_min_in_sync: Option<u8>,
    pub fsync: FsyncPolicy,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopicMeta {
    pub id: u32,
    pub name: String,
    pub created_at: u64,
    pub partitions: Vec<PartitionMeta>,
    pub settings: TopicSettings,
    /// The options block the client sent, echoed back by GetTopic.
    pub options: Vec<u8>,
    pub consumer_groups: BTreeMap<u32, ConsumerGroupMeta>,
    pub next_group_id: u32,
}

/// A member of a consumer group: a client connection on some broker.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Member {
    /// Cluster-unique client id (the broker's id is in its top byte).
    pub client_id: u32,
    /// The broker the client is connected to.
    pub node: u32,
    /// That broker's process incarnation: members of an earlier process of
    /// the same broker are gone and are removed when it registers again.
    pub epoch: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConsumerGroupMeta {
    pub id: u32,
    pub name: String,
    /// Members by client id.
    pub members: BTreeMap<u32, Member>,
    /// Bumped by every membership change, so members know to re-sync.
    pub generation: u64,
}

impl ConsumerGroupMeta {
    /// Every member with its partitions: partitions `0..partitions` spread
    /// round-robin in member order — member `i` gets every `p` with
    /// `p % n == i`.
    pub fn assignment(&self, partitions: u32) -> Vec<(u32, Vec<u32>)> {
        assign(
            &self.members.keys().copied().collect::<Vec<_>>(),
            partitions,
        )
    }

    /// The partitions of `client_id`, `None` if it is not a member.
    pub fn partitions_of(&self, client_id: u32, partitions: u32) -> Option<Vec<u32>> {
        self.assignment(partitions)
            .into_iter()
            .find(|(member, _)| *member == client_id)
            .map(|(_, owned)| owned)
    }
}

/// Partitions `0..partitions` spread round-robin over `members` (sorted).
pub fn assign(members: &[u32], partitions: u32) -> Vec<(u32, Vec<u32>)> {
    let n = members.len() as u32;
    members
        .iter()
        .enumerate()
        .map(|(i, member)| {
            let owned = (0..partitions)
                .filter(|p| n > 0 && p % n == i as u32)
                .collect();
            (*member, owned)
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StreamMeta {
    pub id: u32,
    pub name: String,
    pub created_at: u64,
    pub topics: BTreeMap<u32, TopicMeta>,
    pub next_topic_id: u32,
    pub options: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserMeta {
    pub id: u32,
    pub username: String,
    /// Argon2 PHC string; the password itself is never stored.
    pub password_hash: String,
    /// 1 active, 2 inactive (upstream codes).
    pub status: u8,
    pub created_at: u64,
    /// `None`: no rights beyond the self-service commands.
    pub permissions: Option<Permissions>,
    /// Personal access tokens by name.
    pub tokens: BTreeMap<String, TokenMeta>,
}

/// A personal access token: only the hash of the secret is kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenMeta {
    pub hash: String,
    /// Expiry in µs since the epoch; `None` = never.
    pub expiry_at: Option<u64>,
}

/// How clients reach a broker (what the roster reports for it).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Advertised {
    pub host: String,
    pub tcp: u16,
    pub quic: u16,
    pub http: u16,
    pub websocket: u16,
}

/// A broker as it last registered: its process incarnation and addresses.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeMeta {
    pub epoch: u64,
    pub advertised: Advertised,
    pub version: String,
    /// Storage id of its data directory (0: not reported).
    #[serde(default)]
    pub storage: u64,
    /// Its failure domain (empty: none known).
    #[serde(default)]
    pub zone: String,
    /// The newest metadata commands it reads (`command::METADATA_VERSION`;
    /// 0: it did not say, a build from before the number existed).
    #[serde(default)]
    pub metadata_version: u32,
}

/// Recent proposals and their outcomes, so a proposal retried after a
/// timeout (the first attempt may have committed after all) gets the
/// first attempt's answer instead of being applied twice.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecentProposals {
    #[serde(with = "pairs")]
    outcomes: BTreeMap<ProposalId, Response>,
    order: VecDeque<ProposalId>,
}

/// How many outcomes are remembered. Clients retry within seconds; this
/// covers far more proposals than a cluster commits in that time.
const RECENT_PROPOSALS: usize = 4096;

impl RecentProposals {
    pub fn get(&self, id: &ProposalId) -> Option<&Response> {
        self.outcomes.get(id)
    }

    pub fn remember(&mut self, id: ProposalId, response: Response) {
        if self.outcomes.insert(id, response).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > RECENT_PROPOSALS {
            if let Some(oldest) = self.order.pop_front() {
                self.outcomes.remove(&oldest);
            }
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MetadataState {
    pub streams: BTreeMap<u32, StreamMeta>,
    pub next_stream_id: u32,
    pub users: BTreeMap<u32, UserMeta>,
    pub next_user_id: u32,
    /// Brokers that have registered, by node id.
    pub nodes: BTreeMap<u32, NodeMeta>,
    pub recent: RecentProposals,
    /// Tells this cluster apart from another formed under its name
    /// (`cluster::uid`); `None` until it is named.
    #[serde(default)]
    pub cluster_uid: Option<u64>,
}

impl MetadataState {
    pub fn topic(&self, stream_id: u32, topic_id: u32) -> Option<&TopicMeta> {
        self.streams.get(&stream_id)?.topics.get(&topic_id)
    }

    pub fn topic_mut(&mut self, stream_id: u32, topic_id: u32) -> Option<&mut TopicMeta> {
        self.streams.get_mut(&stream_id)?.topics.get_mut(&topic_id)
    }

    pub fn partition(&self, (s, t, p): PartitionKey) -> Option<&PartitionMeta> {
        self.topic(s, t)?.partitions.get(p as usize)
    }

    pub fn group(&self, (s, t, g): GroupKey) -> Option<&ConsumerGroupMeta> {
        self.topic(s, t)?.consumer_groups.get(&g)
    }

    pub fn stream_by_name(&self, name: &str) -> Option<&StreamMeta> {
        self.streams.values().find(|s| s.name == name)
    }

    pub fn user_by_name(&self, name: &str) -> Option<&UserMeta> {
        self.users.values().find(|u| u.username == name)
    }

    /// The newest metadata commands every one of `members` reads: the
    /// least version they registered with, 0 for one not registered yet.
    pub fn metadata_version_of(&self, members: impl IntoIterator<Item = u32>) -> u32 {
        members
            .into_iter()
            .map(|node| self.nodes.get(&node).map_or(0, |n| n.metadata_version))
            .min()
            .unwrap_or(0)
    }

    /// The user holding the token with this hash, and the token's name.
    pub fn token_by_hash(&self, hash: &str) -> Option<(&UserMeta, &str, &TokenMeta)> {
        self.users.values().find_map(|user| {
            user.tokens
                .iter()
                .find(|(_, token)| token.hash == hash)
                .map(|(name, token)| (user, name.as_str(), token))
        })
    }

    pub fn resolve_stream(&self, id: &Ident) -> Result<u32> {
        match id {
            Ident::Id(id) => self
                .streams
                .contains_key(id)
                .then_some(*id)
                .ok_or(Error::StreamIdNotFound(*id)),
            Ident::Name(name) => self
                .stream_by_name(name)
                .map(|s| s.id)
                .ok_or_else(|| Error::StreamNameNotFound(name.clone())),
        }
    }

    pub fn resolve_topic(&self, stream: &Ident, topic: &Ident) -> Result<(u32, u32)> {
        let stream_id = self.resolve_stream(stream)?;
        let topics = &self.streams[&stream_id].topics;
        let topic_id = match topic {
            Ident::Id(id) => topics
                .contains_key(id)
                .then_some(*id)
                .ok_or(Error::TopicIdNotFound(*id))?,
            Ident::Name(name) => topics
                .values()
                .find(|t| t.name == *name)
                .map(|t| t.id)
                .ok_or_else(|| Error::TopicNameNotFound(name.clone()))?,
        };
        Ok((stream_id, topic_id))
    }

    pub fn resolve_group(&self, stream: &Ident, topic: &Ident, group: &Ident) -> Result<GroupKey> {
        let (s, t) = self.resolve_topic(stream, topic)?;
        let groups = &self.streams[&s].topics[&t].consumer_groups;
        let g = match group {
            Ident::Id(id) => groups
                .contains_key(id)
                .then_some(*id)
                .ok_or(Error::ConsumerGroupIdNotFound(*id))?,
            Ident::Name(name) => groups
                .values()
                .find(|g| g.name == *name)
                .map(|g| g.id)
                .ok_or_else(|| Error::ConsumerGroupNameNotFound(name.clone()))?,
        };
        Ok((s, t, g))
    }

    pub fn resolve_user(&self, id: &Ident) -> Result<u32> {
        match id {
            Ident::Id(id) => self.users.contains_key(id).then_some(*id),
            Ident::Name(name) => self.user_by_name(name).map(|u| u.id),
        }
        .ok_or_else(|| Error::ResourceNotFound(format!("user {id}")))
    }

    /// Every partition with its metadata.
    pub fn partitions(&self) -> impl Iterator<Item = (PartitionKey, &TopicMeta, &PartitionMeta)> {
        self.streams.values().flat_map(|s| {
            s.topics
                .values()
                .flat_map(move |t| t.partitions.iter().map(move |p| ((s.id, t.id, p.id), t, p)))
        })
    }
}

/// Serialize a map with non-string keys as a list of pairs (JSON objects
/// only have string keys).
mod pairs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        let pairs: Vec<(K, V)> = Vec::deserialize(deserializer)?;
        Ok(pairs.into_iter().collect())
    }
}

#[cfg(test)]
impl PartitionMeta {
    /// A partition with this replication state, for tests.
    pub fn for_test(id: u32, replicas: &[u32], leader: u32, in_sync: &[u32]) -> Self {
        Self {
            id,
            created_at: 0,
            replicas: replicas.to_vec(),
            leader: Some(leader),
            leader_epoch: 4,
            in_sync: in_sync.to_vec(),
            reassigning: None,
            incarnation: 1,
            added_at: BTreeMap::new(),
            offsets: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
impl MetadataState {
    /// A stream and topic holding `partitions`, for tests of code that
    /// reads partition state.
    pub fn insert_test_topic(
        &mut self,
        stream_id: u32,
        topic_id: u32,
        partitions: Vec<PartitionMeta>,
    ) {
        let topic = TopicMeta {
            id: topic_id,
            name: format!("topic-{topic_id}"),
            created_at: 0,
            partitions,
            settings: TopicSettings {
                compression_algorithm: 1,
                message_expiry_us: u64::MAX,
                max_topic_size: u64::MAX,
                segment_size_bytes: 1 << 20,
                replication_factor: 3,
                min_in_sync: 2,
                pending_min_in_sync: None,
                fsync: FsyncPolicy::Never,
            },
            options: Vec::new(),
            consumer_groups: BTreeMap::new(),
            next_group_id: 0,
        };
        self.streams
            .entry(stream_id)
            .or_insert_with(|| StreamMeta {
                id: stream_id,
                name: format!("stream-{stream_id}"),
                created_at: 0,
                topics: BTreeMap::new(),
                next_topic_id: 0,
                options: Vec::new(),
            })
            .topics
            .insert(topic_id, topic);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_partition_has_exactly_one_member_and_load_is_even() {
        let assignment = assign(&[3, 7, 9], 10);
        let mut all: Vec<u32> = assignment.iter().flat_map(|(_, p)| p.clone()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        let sizes: Vec<usize> = assignment.iter().map(|(_, p)| p.len()).collect();
        assert_eq!(sizes, vec![4, 3, 3]);
        assert!(assign(&[], 5).is_empty());
    }

    #[test]
    fn maps_with_structured_keys_round_trip_through_json() {
        let mut partition = PartitionMeta {
            id: 0,
            created_at: 1,
            replicas: vec![0],
            leader: Some(0),
            leader_epoch: 1,
            in_sync: vec![0],
            reassigning: None,
            incarnation: 7,
            added_at: BTreeMap::new(),
            offsets: BTreeMap::new(),
        };
        partition
            .offsets
            .insert(ConsumerKey::Consumer("c".into()), 5);
        partition.offsets.insert(ConsumerKey::Group(2), 9);
        let json = serde_json::to_vec(&partition).unwrap();
        let back: PartitionMeta = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, partition);
    }
}
