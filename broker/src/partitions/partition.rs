//! A partition at run time: its log, its replication state, and the lock
//! that keeps two committing polls of one partition from handing out the
//! same messages.
//!
//! Consumer offsets are replicated metadata (`metadata::PartitionMeta`),
//! not partition state.

use crate::metadata::PartitionKey;
use crate::replication::ReplicaState;
use crate::storage::{LogConfig, PartitionLog};
use std::io;
use std::path::Path;
use std::sync::Mutex;

pub struct Partition {
    pub key: PartitionKey,
    pub id: u32,
    /// The metadata log index that created this partition (see
    /// `PartitionMeta::incarnation`).
    pub incarnation: u64,
    /// The metadata log index of the command that gave this broker this
    /// copy (`PartitionMeta::assigned_at`): a copy removed and added back
    /// is a new one, and its fetches say which it is.
    pub assigned_at: u64,
    pub log: Mutex<PartitionLog>,
    /// Committed offset, leader epochs, followers' progress.
    pub replica: ReplicaState,
    /// Held across "read the stored offset, read messages, store the new
    /// offset" so two polls of the same consumer never get the same
    /// messages. Async: storing the offset waits for the metadata group.
    pub commit_lock: tokio::sync::Mutex<()>,
}

impl Partition {
    /// Open (or create, durably) the partition's log in `dir`, the
    /// directory of `incarnation`, as the copy assigned at `assigned_at`.
    /// `replicated`: the partition has other replicas, so what is
    /// committed is learned from them again.
    pub fn open(
        dir: &Path,
        key: PartitionKey,
        (incarnation, assigned_at): (u64, u64),
        config: LogConfig,
        replicated: bool,
    ) -> io::Result<Self> {
        let (log, recovery) = PartitionLog::open(dir, config)?;
        if recovery.truncated_bytes() > 0 {
            tracing::warn!(
                partition = %dir.display(),
                bytes = recovery.truncated_bytes(),
                "cut off a torn tail (a write that was never acknowledged)"
            );
        }
        let replica = ReplicaState::open(dir, &log, replicated)?;
        Ok(Self {
            key,
            id: key.2,
            incarnation,
            assigned_at,
            log: Mutex::new(log),
            replica,
            commit_lock: tokio::sync::Mutex::new(()),
        })
    }

    pub fn lock_log(&self) -> std::sync::MutexGuard<'_, PartitionLog> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
