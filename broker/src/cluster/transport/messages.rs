//! What brokers say to each other. Requests and responses travel as the
//! `meta` JSON of a frame; bulk bytes go in the frame's body.
//!
//! Adding a message type or an optional field is compatible: an older
//! broker answers an unknown request type with `Unsupported` instead of
//! dropping the connection, and ignores fields it does not know.

use crate::broker::stats::PartitionStats;
use crate::cluster::raft::TypeConfig;
use crate::metadata::command::{Envelope, Response as MetadataResponse};
use crate::metadata::{Member, PartitionKey};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]

pub enum Request {
    // ---- the metadata group's Raft ----
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<u64>),
    /// A snapshot chunk; its bytes are the frame body.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),

    // ---- metadata on behalf of clients ----
    /// Propose a metadata change (sent to the leader).
    Propose(Envelope),
    /// The leader's commit index, confirmed by a quorum: reads that follow
    /// wait until they have applied it (linearizable reads on followers).
    ReadIndex,

    // ---- client requests for partitions held elsewhere ----
    /// A client command (0.11 code and request body in the frame body) run
    /// as `user_id` for `member`, once this broker has applied the
    /// metadata up to `applied`.
    Client {
        code: u32,
        user_id: u32,
        member: Member,
        applied: u64,
    },

    /// Sizes and counts of these partitions (led by the broker asked).
    PartitionStats {
        keys: Vec<PartitionKey>,
    },

    // ---- partition replication ----
    /// A follower asks the partition's leader for what follows its log
    /// end, naming the newest epoch in its log.
    Fetch(crate::replication::leader::Fetch),

    // ---- membership ----
    /// Add or remove a broker (sent to the metadata leader).
    Membership(crate::cluster::membership::MembershipChange),
    /// The leader removed the receiver from the cluster.
    Removed,

    /// Liveness and progress, every few hundred milliseconds.
    Ping {
        epoch: u64,
        applied: u64,
        /// The sender's data directory runs low on space (false from
        /// older brokers, which do not say).
        #[serde(default)]
        low_on_space: bool,
    },
}

#[derive(Debug, Serialize, Deserialize)]

pub enum Response {
    AppendEntries(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    InstallSnapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    /// A proposal committed at `index` with this outcome.
    Proposed {
        index: u64,
        response: MetadataResponse,
    },
    /// This broker does not lead the metadata group; `leader` might.
    NotLeader {
        leader: Option<u32>,
    },
    ReadIndex {
        index: u64,
    },
    /// Status and reply body (frame body) of a forwarded client command.
    Client {
        status: u32,
    },
    PartitionStats {
        stats: Vec<(PartitionKey, PartitionStats)>,
    },
    Pong {
        epoch: u64,
        applied: u64,
        leader: Option<u32>,
        #[serde(default)]
        low_on_space: bool,
    },
    /// Batch records from the fetch offset (frame body), the leader's
    /// committed offset and its epoch starts `(epoch, start offset)`.
    Fetched {
        committed: u64,
        epochs: Vec<(u32, u64)>,
    },
    /// The follower's log stops agreeing with the leader's at
    /// `end_offset` (where `epoch`, the newest leader epoch not after the
    /// follower's, ends): cut it there and fetch again.
    Diverged {
        epoch: u32,
        end_offset: u64,
    },
    /// This broker does not lead the partition in that epoch.
    NotPartitionLeader {
        leader: Option<u32>,
        epoch: u32,
    },
    /// A membership change was carried out (`refused: None`; `changed`:
    /// false when there was nothing to do) or why not.
    Membership {
        refused: Option<String>,
        #[serde(default)]
        changed: bool,
    },
    /// A request this broker cannot serve (an unknown type from a newer
    /// version, or a failure); `message` says why.
    Unsupported {
        message: String,
    },
    Failed {
        message: String,
    },
}
