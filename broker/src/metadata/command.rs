//! What goes into the replicated metadata log: commands (what a client
//! asked for, before it is checked against the state), their outcomes, and
//! the side effects a broker carries out when it applies them.
//!
//! A command names streams, topics, groups and users the way the client
//! did (by id or by name) and is resolved and validated when it is
//! applied, in log order. So two brokers that accept conflicting requests
//! at the same moment (two creations of one name) never both succeed: the
//! first in the log wins and the second is rejected on every broker with
//! the same error code.

use super::state::{
    Advertised, ConsumerKey, Member, PartitionKey, TokenMeta, TopicSettings, UserMeta,
};
use crate::auth::Permissions;
use crate::error::Error;
use iggy_binary_protocol::WireIdentifier;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The set of metadata commands this build writes, as a number that grows
/// when a command is added. Every broker of a cluster applies every entry
/// of the metadata log, so a command is only proposed once every member
/// understands it ([`MetadataCommand::since_version`],
/// `MetadataService::metadata_version`): during a rolling upgrade the
/// upgraded brokers keep to what the others read. Brokers report theirs
/// when they register; one that does not (a build from before this number
/// existed) is at 0.
///
/// - 0: the commands up to and including `RegisterNode`'s `zone`.
/// - 1: `StoreConsumerOffsets` (auto-commit offsets committed together).
/// - 2: `NameCluster` (the cluster's uid, checked when brokers connect).
pub const METADATA_VERSION: u32 = 2;

/// A stream, topic, group or user as a request names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ident {
    Id(u32),
    Name(String),
}

impl From<&WireIdentifier> for Ident {
    fn from(id: &WireIdentifier) -> Self {
        match id {
            WireIdentifier::Numeric(id) => Ident::Id(*id),
            WireIdentifier::String(name) => Ident::Name(name.to_string()),
        }
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ident::Id(id) => write!(f, "{id}"),
            Ident::Name(name) => write!(f, "{name}"),
        }
    }
}

/// Identifies one proposal across retries: the broker that proposed it,
/// that broker's process incarnation, and a sequence number. A client's
/// replay of the same request reuses the id (see `Session::proposal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProposalId {
    pub node: u32,
    pub epoch: u64,
    pub seq: u64,
}

/// A log entry's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub proposal: ProposalId,
    pub command: MetadataCommand,
}

impl fmt::Display for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.command)
    }
}

/// Topic settings an update may change (`None`: keep).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicUpdate {
    pub compression_algorithm: Option<u8>,
    pub message_expiry_us: Option<u64>,
    pub max_topic_size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataCommand {
    CreateStream {
        name: String,
        options: Vec<u8>,
        created_at: u64,
    },
    UpdateStream {
        stream: Ident,
        name: String,
        /// `None`: keep the current options.
        options: Option<Vec<u8>>,
    },
    DeleteStream {
        stream: Ident,
    },
    PurgeStream {
        stream: Ident,
    },
    CreateTopic {
        stream: Ident,
        name: String,
        partitions: u32,
        settings: TopicSettings,
        options: Vec<u8>,
        created_at: u64,
    },
    UpdateTopic {
        stream: Ident,
        topic: Ident,
        name: String,
        update: TopicUpdate,
        options: Option<Vec<u8>>,
    },
    DeleteTopic {
        stream: Ident,
        topic: Ident,
    },
    PurgeTopic {
        stream: Ident,
        topic: Ident,
    },
    CreatePartitions {
        stream: Ident,
        topic: Ident,
        count: u32,
        created_at: u64,
    },
    DeletePartitions {
        stream: Ident,
        topic: Ident,
        count: u32,
    },
    /// Create the root user unless any user exists (first start).
    CreateRootUser {
        user: UserMeta,
    },
    /// `user.id` is ignored: the next free id is assigned.
    CreateUser {
        user: UserMeta,
    },
    UpdateUser {
        user: Ident,
        username: Option<String>,
        status: Option<u8>,
    },
    DeleteUser {
        user: Ident,
    },
    /// The proposer checked the current password against `expected_hash`;
    /// a concurrent change makes this one fail rather than overwrite it.
    ChangePassword {
        user_id: u32,
        expected_hash: String,
        password_hash: String,
    },
    UpdatePermissions {
        user: Ident,
        permissions: Option<Permissions>,
    },
    CreateToken {
        user_id: u32,
        name: String,
        token: TokenMeta,
    },
    DeleteToken {
        user_id: u32,
        name: String,
    },
    DeleteExpiredTokens {
        now: u64,
    },
    CreateConsumerGroup {
        stream: Ident,
        topic: Ident,
        name: String,
    },
    DeleteConsumerGroup {
        stream: Ident,
        topic: Ident,
        group: Ident,
    },
    JoinConsumerGroup {
        stream: Ident,
        topic: Ident,
        group: Ident,
        member: Member,
    },
    LeaveConsumerGroup {
        stream: Ident,
        topic: Ident,
        group: Ident,
        member: Member,
    },
    /// A client disconnected: it leaves every group it was in.
    LeaveConsumerGroups {
        member: Member,
    },
    StoreConsumerOffset {
        partition: PartitionKey,
        consumer: ConsumerKey,
        offset: u64,
    },
    /// Offsets of auto-commit polls, committed together (see
    /// `broker::offset_commits`); an offset whose partition is gone by then
    /// is skipped.
    StoreConsumerOffsets {
        offsets: Vec<(PartitionKey, ConsumerKey, u64)>,
    },
    DeleteConsumerOffset {
        partition: PartitionKey,
        consumer: ConsumerKey,
    },
    /// A new leader for a partition whose leader is lost (proposed by the
    /// metadata leader), with the in-sync set without the lost one. Only
    /// applies while the partition is still in `epoch`; bumps the epoch.
    ElectLeader {
        partition: PartitionKey,
        epoch: u32,
        leader: u32,
        in_sync: Vec<u32>,
    },
    /// The partition's leader shrinks or grows its in-sync set. Only
    /// applies while the partition is still in `epoch` (an old leader
    /// cannot change anything once a new one is elected).
    ChangeInSync {
        partition: PartitionKey,
        epoch: u32,
        in_sync: Vec<u32>,
    },
    /// Move a partition to another set of replicas: the new ones are added
    /// and copy the log; `CompleteReassignment` drops the old ones.
    ReassignReplicas {
        partition: PartitionKey,
        replicas: Vec<u32>,
    },
    /// Give every partition of a topic `factor` replicas, as one change:
    /// the new replica sets are planned when it is applied
    /// (`placement::change_factor`) and each partition is reassigned to
    /// its set (add → catch up → switch → remove, as `ReassignReplicas`).
    ChangeReplicationFactor {
        stream_id: u32,
        topic_id: u32,
        factor: u8,
        /// The topic's new minimum of in-sync replicas.
        min_in_sync: u8,
    },
    /// Every new replica is in sync and one of them leads (proposed by the
    /// metadata leader): drop the replicas that are not in the new set.
    CompleteReassignment {
        partition: PartitionKey,
        epoch: u32,
    },
    /// A broker (re)started: record how clients reach it, drop group
    /// members of its earlier processes, and fence it from its partitions'
    /// in-sync sets if it comes back with an empty disk.
    RegisterNode {
        node: u32,
        epoch: u64,
        advertised: Advertised,
        version: String,
        /// The broker's data directory's storage id: another one than last
        /// time means it lost its disk, so it leaves every in-sync set (and
        /// leadership) until it has copied the logs again.
        #[serde(default)]
        storage: u64,
        /// The broker's failure domain (empty: none known).
        #[serde(default)]
        zone: String,
        /// The newest metadata commands it reads ([`METADATA_VERSION`]).
        #[serde(default)]
        metadata_version: u32,
    },
    /// Give the cluster its uid, unless it has one (`cluster::uid`;
    /// proposed by the metadata leader).
    NameCluster {
        uid: u64,
    },
}

impl MetadataCommand {
    /// The [`METADATA_VERSION`] that introduced this command.
    pub fn since_version(&self) -> u32 {
        match self {
            MetadataCommand::StoreConsumerOffsets { .. } => 1,
            MetadataCommand::NameCluster { .. } => 2,
            _ => 0,
        }
    }

    /// A change that removes data or entries. It is let through when the
    /// data directory is short of space (`storage::space`): it frees some,
    /// and a client must be able to delete or leave to recover.
    pub fn frees_space(&self) -> bool {
        use MetadataCommand::*;
        matches!(
            self,
            DeleteStream { .. }
                | PurgeStream { .. }
                | DeleteTopic { .. }
                | PurgeTopic { .. }
                | DeletePartitions { .. }
                | DeleteUser { .. }
                | DeleteToken { .. }
                | DeleteExpiredTokens { .. }
                | DeleteConsumerGroup { .. }
                | LeaveConsumerGroup { .. }
                | LeaveConsumerGroups { .. }
                | DeleteConsumerOffset { .. }
        )
    }
}

/// What an applied command produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    Done,
    Stream(u32),
    Topic(u32, u32),
    User(u32),
    Group(u32, u32, u32),
    /// CreateRootUser: whether this command created it.
    RootUser(bool),
    /// DeleteExpiredTokens: how many were removed.
    Removed(usize),
}

/// Why a command was rejected: the wire status code and a message. The
/// same on every broker, because every broker applies the same log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub code: u32,
    pub message: String,
}

impl From<&Error> for Rejection {
    fn from(e: &Error) -> Self {
        Rejection {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl From<Rejection> for Error {
    fn from(r: Rejection) -> Self {
        Error::Rejected {
            code: r.code,
            message: r.message,
        }
    }
}

/// The state machine's answer to one log entry.
pub type Response = Result<Applied, Rejection>;

/// Work outside the metadata a broker does after applying a command,
/// for the partitions it holds a replica of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// New partitions (created at log index `incarnation`).
    CreatePartitions {
        partitions: Vec<(PartitionKey, Vec<u32>)>,
        incarnation: u64,
        /// The log index of the command that gave these brokers their
        /// replica (`incarnation` for a new partition).
        assigned_at: u64,
        settings: TopicSettings,
    },
    /// Partitions that no longer exist; `before` is the log index of the
    /// deletion (only directories of older incarnations are removed).
    RemovePartitions {
        partitions: Vec<PartitionKey>,
        before: u64,
    },
    /// Empty these partitions' logs.
    PurgePartitions { partitions: Vec<PartitionKey> },
    /// These partitions' leader, epoch or in-sync set changed.
    PartitionStateChanged { partitions: Vec<PartitionKey> },
    /// Replicas of a partition that moved away from `nodes` (`before`: the
    /// log index of the change; only older incarnations are removed).
    RemoveReplicas {
        partition: PartitionKey,
        nodes: Vec<u32>,
        before: u64,
    },
    /// New settings for these partitions' logs.
    ConfigurePartitions {
        partitions: Vec<PartitionKey>,
        settings: TopicSettings,
    },
}
