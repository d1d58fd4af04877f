//! A partition at run time: its log and its consumer offsets.
//!
//! Both are behind their own mutex so that appends to one partition never
//! wait for another, and offset commits never wait for an fsync of the log.

use crate::storage::{LogConfig, PartitionLog, fs::write_atomic};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Who an offset belongs to: a named consumer or a consumer group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum ConsumerKey {
    Consumer(String),
    Group(String),
}

pub struct Partition {
    pub id: u32,
    pub log: Mutex<PartitionLog>,
    /// Held across "read the stored offset, read messages, store the new
    /// offset" so two polls of the same consumer never get the same
    /// messages.
    pub commit_lock: Mutex<()>,
    offsets: Mutex<BTreeMap<ConsumerKey, u64>>,
    offsets_path: PathBuf,
}

const OFFSETS_FILE: &str = "consumer_offsets.json";

impl Partition {
    pub fn open(dir: &Path, id: u32, config: LogConfig) -> io::Result<Self> {
        let (log, recovery) = PartitionLog::open(dir, config)?;
        if recovery.truncated_bytes() > 0 {
            tracing::warn!(
                partition = %dir.display(),
                bytes = recovery.truncated_bytes(),
                "cut off a torn tail (a write that was never acknowledged)"
            );
        }
        let offsets_path = dir.join(OFFSETS_FILE);
        let offsets = match std::fs::read(&offsets_path) {
            Ok(bytes) => {
                let list: Vec<(ConsumerKey, u64)> =
                    serde_json::from_slice(&bytes).map_err(io::Error::other)?;
                list.into_iter().collect()
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        Ok(Self {
            id,
            log: Mutex::new(log),
            commit_lock: Mutex::new(()),
            offsets: Mutex::new(offsets),
            offsets_path,
        })
    }

    pub fn stored_offset(&self, key: &ConsumerKey) -> Option<u64> {
        self.offsets.lock().expect("offsets lock").get(key).copied()
    }

    /// Store a consumer offset. The file is replaced atomically (a crash
    /// leaves the old or new offsets, never a mix) but not fsynced: consumers
    /// are at-least-once, so losing the newest commit on power loss only
    /// redelivers messages.
    pub fn store_offset(&self, key: ConsumerKey, offset: u64) -> io::Result<()> {
        let mut offsets = self.offsets.lock().expect("offsets lock");
        if offsets.get(&key) == Some(&offset) {
            return Ok(());
        }
        offsets.insert(key, offset);
        self.persist_offsets(&offsets)
    }

    pub fn delete_offset(&self, key: &ConsumerKey) -> io::Result<bool> {
        let mut offsets = self.offsets.lock().expect("offsets lock");
        if offsets.remove(key).is_none() {
            return Ok(false);
        }
        self.persist_offsets(&offsets)?;
        Ok(true)
    }

    pub fn clear_offsets(&self) -> io::Result<()> {
        let mut offsets = self.offsets.lock().expect("offsets lock");
        offsets.clear();
        self.persist_offsets(&offsets)
    }

    fn persist_offsets(&self, offsets: &BTreeMap<ConsumerKey, u64>) -> io::Result<()> {
        let list: Vec<(&ConsumerKey, &u64)> = offsets.iter().collect();
        let bytes = serde_json::to_vec(&list).map_err(io::Error::other)?;
        write_atomic(&self.offsets_path, &bytes, false)
    }
}
