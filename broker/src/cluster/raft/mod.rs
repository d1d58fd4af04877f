//! The metadata group: an `openraft` Raft whose log is the metadata log
//! and whose state machine is [`crate::metadata::MetadataState`].
//!
//! - [`log_store`]: the durable log (entries with their terms, the vote,
//!   truncation of a conflicting tail, purging after a snapshot).
//! - [`state_machine`]: applies committed entries to the metadata and
//!   carries out their side effects on local partitions; builds, stores
//!   and installs snapshots.
//! - [`network`]: Raft's RPCs over the inter-broker transport.
//!
//! A standalone broker is a group of one: the same log, state machine and
//! snapshots, with nobody to replicate to.

pub mod log_store;
pub mod network;
pub mod state_machine;

use crate::metadata::command::{Envelope, Response};
use std::io::Cursor;

openraft::declare_raft_types!(
    /// The metadata group's types.
    pub TypeConfig:
        D = Envelope,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type LogId = openraft::LogId<u64>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StoredMembership = openraft::StoredMembership<u64, openraft::BasicNode>;
pub type StorageError = openraft::StorageError<u64>;
