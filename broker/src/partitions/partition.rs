//! A partition at run time: its log, and the lock that keeps two
//! committing polls of one partition from handing out the same messages.
//!
//! Consumer offsets are replicated metadata (`metadata::PartitionMeta`),
//! not partition state.

use crate::metadata::PartitionKey;
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
    pub log: Mutex<PartitionLog>,
    /// Held across "read the stored offset, read messages, store the new
    /// offset" so two polls of the same consumer never get the same
    /// messages. Async: storing the offset waits for the metadata group.
    pub commit_lock: tokio::sync::Mutex<()>,
}

impl Partition {
    /// Open (or create, durably) the partition's log in `dir`, the
    /// directory of `incarnation`.
    pub fn open(
        dir: &Path,
        key: PartitionKey,
        incarnation: u64,
        config: LogConfig,
    ) -> io::Result<Self> {
        let (log, recovery) = PartitionLog::open(dir, config)?;
        if recovery.truncated_bytes() > 0 {
            tracing::warn!(
                partition = %dir.display(),
                bytes = recovery.truncated_bytes(),
                "cut off a torn tail (a write that was never acknowledged)"
            );
        }
        Ok(Self {
            key,
            id: key.2,
            incarnation,
            log: Mutex::new(log),
            commit_lock: tokio::sync::Mutex::new(()),
        })
    }
}
