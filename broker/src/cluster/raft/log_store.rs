//! The metadata group's durable log.
//!
//! Files in the Raft directory:
//! - `log`: entries as checksummed records (`storage::records`), each
//!   the JSON of an `openraft::Entry` (log id with its term, payload).
//!   Appends are `fdatasync`ed before openraft is told they are durable
//!   (outside the store's lock, so replication reads are not held up by
//!   it); one append call is one write and one sync, however many entries
//!   it carries (openraft batches entries that queue up: group commit).
//! - `vote`: the current term and vote, replaced atomically and fsynced
//!   before it counts.
//! - `purged`: the last purged log id, written before entries are dropped.
//! - `committed`: the commit index, rewritten in place without fsync — a
//!   hint for replaying at start-up; losing it only means replaying less
//!   until the leader says more is committed.
//!
//! All entries since the last purge are also kept in memory (the metadata
//! log is small and purged after every snapshot); the file is rewritten
//! without the purged prefix once that prefix is most of it.

use super::{Entry, LogId, StorageError, TypeConfig};
use crate::storage::fs::{create_dir_durable, write_atomic};
use crate::storage::records;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{RaftLogReader, StorageIOError, Vote};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io;
use std::ops::RangeBounds;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use twox_hash::XxHash3_64;

const LOG_FILE: &str = "log";
const VOTE_FILE: &str = "vote";
const PURGED_FILE: &str = "purged";
const COMMITTED_FILE: &str = "committed";
/// Rewrite the log file once the purged prefix is at least this big and
/// more than half of the file.
const COMPACT_AFTER_BYTES: u64 = 1 << 20;

/// The log store handed to openraft; clones share one log (the reader
/// openraft's replication tasks use is a clone).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    dir: PathBuf,
    /// Shared so that an append can fsync it after releasing the lock.
    file: Arc<File>,
    /// Bytes of the log file (where the next append goes).
    len: u64,
    /// Entries after the last purge, with the file position of each.
    entries: BTreeMap<u64, (Entry, u64)>,
    /// File position of the first entry after the last purge.
    live_from: u64,
    last_purged: Option<LogId>,
    vote: Option<Vote<u64>>,
    committed: Option<LogId>,
    committed_file: File,
}

/// What opening the log found.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Bytes of a torn tail that were cut off.
    pub truncated_bytes: u64,
    /// Whole entries found after damage in the middle of the file, dropped
    /// with it (0 for a torn tail).
    pub dropped_intact: usize,
    pub entries: usize,
}

impl LogStore {
    pub fn open(dir: &Path) -> io::Result<(Self, Recovered)> {
        create_dir_durable(dir)?;
        let last_purged: Option<LogId> = read_json(&dir.join(PURGED_FILE))?;
        let vote: Option<Vote<u64>> = read_json(&dir.join(VOTE_FILE))?;
        let committed_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(COMMITTED_FILE))?;
        let committed = read_committed(&committed_file);

        let path = dir.join(LOG_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let bytes = std::fs::read(&path)?;
        let mut position = 0usize;
        let mut entries = BTreeMap::new();
        let mut live_from = None;
        let purged_index = last_purged.map(|id| id.index);
        while let Some((index, payload, size)) = records::decode(&bytes[position..]) {
            // The record's checksum holds, so this is no damage: an entry
            // this build cannot read, written by a newer one (a downgrade
            // past a metadata version). Cutting it off would lose
            // committed metadata here and on a standalone broker for good.
            let entry = serde_json::from_slice::<Entry>(payload).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "metadata log {}: entry {index} (byte {position}) is intact but this \
                         build cannot read it ({e}); it was written by a newer version of the \
                         broker, which this data directory needs",
                        path.display()
                    ),
                )
            })?;
            if entry.log_id.index != index {
                break;
            }
            if purged_index.is_none_or(|purged| index > purged) {
                // Consecutive, or the rest is not this log's.
                if let Some((&last, _)) = entries.last_key_value()
                    && index != last + 1
                {
                    break;
                }
                live_from.get_or_insert(position as u64);
                entries.insert(index, (entry, position as u64));
            }
            position += size;
        }
        let truncated_bytes = (bytes.len() - position) as u64;
        let mut dropped_intact = 0;
        if truncated_bytes > 0 {
            // A torn tail holds nothing whole; damage in the middle of the
            // file leaves whole entries behind it, dropped with it.
            let next = entries
                .last_key_value()
                .map_or(purged_index.unwrap_or(0), |(&last, _)| last)
                .saturating_add(1);
            match records::intact_after(&bytes[position..], next..=next.saturating_add(1 << 32)) {
                None => tracing::warn!(
                    bytes = truncated_bytes,
                    "metadata log had a torn tail (entries never acknowledged); cut it off"
                ),
                Some((count, first, last)) => {
                    dropped_intact = count;
                    tracing::error!(
                        position,
                        "metadata log {} is damaged at byte {position}, not just torn: {count} \
                         intact entries after the damage ({first}..={last}) were dropped with it. \
                         In a cluster this broker copies them again from the metadata leader; a \
                         standalone broker has lost them. Check the disk.",
                        path.display()
                    );
                }
            }
            file.set_len(position as u64)?;
            file.sync_all()?;
        }
        let recovered = Recovered {
            truncated_bytes,
            dropped_intact,
            entries: entries.len(),
        };
        let inner = Inner {
            dir: dir.to_path_buf(),
            file: Arc::new(file),
            len: position as u64,
            entries,
            live_from: live_from.unwrap_or(position as u64),
            last_purged,
            vote,
            committed,
            committed_file,
        };
        Ok((
            Self {
                inner: Arc::new(Mutex::new(inner)),
            },
            recovered,
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether nothing was ever written: a node that must be initialized.
    pub fn is_pristine(&self) -> bool {
        let inner = self.lock();
        inner.entries.is_empty() && inner.last_purged.is_none() && inner.vote.is_none()
    }
}

impl Inner {
    fn last_log_id(&self) -> Option<LogId> {
        self.entries
            .last_key_value()
            .map(|(_, (entry, _))| entry.log_id)
            .or(self.last_purged)
    }

    /// Write and sync `entries` (tests; the store syncs outside its lock).
    #[cfg(test)]
    fn append(&mut self, entries: Vec<Entry>) -> io::Result<()> {
        self.write(entries)?.sync_data()
    }

    /// Write `entries` at the end of the log file and take them in; the
    /// caller makes them durable by syncing the returned file. Readers see
    /// them at once: openraft may send entries to followers before the
    /// leader's own copy is durable (it counts the leader toward a
    /// majority only once its append is reported flushed).
    fn write(&mut self, entries: Vec<Entry>) -> io::Result<Arc<File>> {
        let mut buf = Vec::new();
        let mut positions = Vec::with_capacity(entries.len());
        for entry in &entries {
            positions.push(self.len + buf.len() as u64);
            let payload = serde_json::to_vec(entry).map_err(io::Error::other)?;
            records::encode(entry.log_id.index, &payload, &mut buf);
        }
        self.file.write_all_at(&buf, self.len)?;
        self.len += buf.len() as u64;
        for (entry, position) in entries.into_iter().zip(positions) {
            if self.entries.is_empty() {
                self.live_from = position;
            }
            self.entries.insert(entry.log_id.index, (entry, position));
        }
        Ok(self.file.clone())
    }

    /// Remove entries from `index` on (a conflicting, uncommitted tail).
    fn truncate(&mut self, index: u64) -> io::Result<()> {
        let Some(&(_, position)) = self.entries.get(&index) else {
            return Ok(());
        };
        self.file.set_len(position)?;
        self.file.sync_data()?;
        self.len = position;
        self.entries.split_off(&index);
        Ok(())
    }

    /// Drop entries up to and including `log_id` (covered by a snapshot).
    fn purge(&mut self, log_id: LogId) -> io::Result<()> {
        write_atomic(
            &self.dir.join(PURGED_FILE),
            &serde_json::to_vec(&log_id).map_err(io::Error::other)?,
            true,
        )?;
        self.last_purged = Some(log_id);
        let kept = self.entries.split_off(&(log_id.index + 1));
        self.entries = kept;
        self.live_from = self
            .entries
            .first_key_value()
            .map_or(self.len, |(_, (_, position))| *position);
        if self.live_from >= COMPACT_AFTER_BYTES && self.live_from * 2 > self.len {
            match self.compact() {
                // Appends now go to the new file: its name must be durable.
                Ok(()) => crate::storage::fs::fsync_dir(&self.dir)?,
                Err(e) => {
                    // Only space is lost (a full disk, say): the purged
                    // prefix stays in the file, skipped when read, until a
                    // later purge compacts it. Failing here would stop the
                    // metadata group.
                    let _ = std::fs::remove_file(self.dir.join("log.tmp"));
                    tracing::warn!("compacting the metadata log failed, kept as is: {e}");
                }
            }
        }
        Ok(())
    }

    /// Rewrite the log file without its purged prefix.
    fn compact(&mut self) -> io::Result<()> {
        let tmp = self.dir.join("log.tmp");
        let mut buf = Vec::new();
        let mut positions = Vec::with_capacity(self.entries.len());
        for (index, (entry, _)) in &self.entries {
            positions.push((*index, buf.len() as u64));
            let payload = serde_json::to_vec(entry).map_err(io::Error::other)?;
            records::encode(*index, &payload, &mut buf);
        }
        write_atomic(&tmp, &buf, true)?;
        // Opened before the rename, so that once the new file has the
        // log's name nothing can fail before appends go to it.
        let file = OpenOptions::new().read(true).write(true).open(&tmp)?;
        std::fs::rename(&tmp, self.dir.join(LOG_FILE))?;
        self.file = Arc::new(file);
        self.len = buf.len() as u64;
        for (index, position) in positions {
            if let Some(slot) = self.entries.get_mut(&index) {
                slot.1 = position;
            }
        }
        self.live_from = 0;
        Ok(())
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::other(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `committed` holds `[leader term u64][leader node u64][index u64][xxh3]`.
fn read_committed(file: &File) -> Option<LogId> {
    let mut buf = [0u8; 32];
    file.read_exact_at(&mut buf, 0).ok()?;
    let checksum = u64::from_le_bytes(buf[24..32].try_into().ok()?);
    if XxHash3_64::oneshot(&buf[..24]) != checksum {
        return None;
    }
    let field = |i: usize| u64::from_le_bytes(buf[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    Some(LogId::new(
        openraft::CommittedLeaderId::new(field(0), field(1)),
        field(2),
    ))
}

fn write_committed(file: &File, log_id: &LogId) -> io::Result<()> {
    let mut buf = [0u8; 32];
    buf[0..8].copy_from_slice(&log_id.leader_id.term.to_le_bytes());
    buf[8..16].copy_from_slice(&log_id.leader_id.node_id.to_le_bytes());
    buf[16..24].copy_from_slice(&log_id.index.to_le_bytes());
    let checksum = XxHash3_64::oneshot(&buf[..24]);
    buf[24..32].copy_from_slice(&checksum.to_le_bytes());
    file.write_all_at(&buf, 0)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let inner = self.lock();
        Ok(inner
            .entries
            .range(range)
            .map(|(_, (entry, _))| entry.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let inner = self.lock();
        Ok(LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id: inner.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(vote).map_err(|e| StorageIOError::write_vote(&e))?;
        let mut inner = self.lock();
        tokio::task::block_in_place(|| write_atomic(&inner.dir.join(VOTE_FILE), &bytes, true))
            .map_err(|e| StorageIOError::write_vote(&e))?;
        inner.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        Ok(self.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let mut inner = self.lock();
        if let Some(log_id) = &committed {
            write_committed(&inner.committed_file, log_id)
                .map_err(|e| StorageIOError::write(&e))?;
        }
        inner.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        // The fsync runs after the lock is released: openraft's replication
        // tasks read new entries through this store while the leader's own
        // copy is being synced, so followers append in parallel with it.
        let written = {
            let mut inner = self.lock();
            tokio::task::block_in_place(|| inner.write(entries))
        };
        let result = written.and_then(|file| tokio::task::block_in_place(|| file.sync_data()));
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let error = StorageIOError::write_logs(&e);
                callback.log_io_completed(Err(e));
                Err(error.into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut inner = self.lock();
        tokio::task::block_in_place(|| inner.truncate(log_id.index))
            .map_err(|e| StorageIOError::write_log_entry(log_id, &e).into())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut inner = self.lock();
        tokio::task::block_in_place(|| inner.purge(log_id))
            .map_err(|e| StorageIOError::write_log_entry(log_id, &e).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload};

    fn entry(term: u64, index: u64) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 0), index),
            payload: EntryPayload::Blank,
        }
    }

    fn indexes(store: &LogStore) -> Vec<u64> {
        store.lock().entries.keys().copied().collect()
    }

    /// A new log in `dir` holding entries `1..=count` of term 1.
    fn log_of(dir: &Path, count: u64) -> LogStore {
        let (store, _) = LogStore::open(dir).unwrap();
        store
            .lock()
            .append((1..=count).map(|i| entry(1, i)).collect())
            .unwrap();
        store
    }

    #[test]
    fn entries_survive_reopen_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        drop(log_of(dir.path(), 3));
        let path = dir.path().join(LOG_FILE);
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let (store, recovered) = LogStore::open(dir.path()).unwrap();
        assert!(recovered.truncated_bytes > 0);
        assert_eq!(recovered.dropped_intact, 0, "a torn tail");
        assert_eq!(indexes(&store), vec![1, 2]);
        store.lock().append(vec![entry(2, 3)]).unwrap();
        drop(store);
        let (store, _) = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&store), vec![1, 2, 3]);
        assert_eq!(store.lock().last_log_id().unwrap().leader_id.term, 2);
    }

    #[test]
    fn damage_in_the_middle_is_told_apart_from_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let store = log_of(dir.path(), 5);
        let third = store.lock().entries[&3].1;
        drop(store);
        let path = dir.path().join(LOG_FILE);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(b"\xff\xff", third + records::RECORD_HEADER_BYTES as u64 + 2)
            .unwrap();
        drop(file);
        let (store, recovered) = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&store), vec![1, 2]);
        assert_eq!(recovered.dropped_intact, 2, "entries 4 and 5");
    }

    #[test]
    fn an_intact_entry_this_build_cannot_read_stops_the_open_and_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        drop(log_of(dir.path(), 2));
        // What a newer build's command looks like to this one: an entry
        // whose payload names a command variant it does not know.
        let json = serde_json::to_string(&entry(1, 3)).unwrap();
        let newer = json.replace("\"Blank\"", "\"FromTheFuture\"").into_bytes();
        assert_ne!(json.as_bytes(), newer.as_slice());
        assert!(serde_json::from_slice::<Entry>(&newer).is_err());
        let mut record = Vec::new();
        records::encode(3, &newer, &mut record);
        let path = dir.path().join(LOG_FILE);
        let before = std::fs::read(&path).unwrap().len() + record.len();
        let file = OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut &file, &record).unwrap();
        drop(file);
        let error = LogStore::open(dir.path()).err().expect("the open refuses");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("entry 3"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap().len(), before, "nothing cut");
    }

    #[test]
    fn truncate_removes_a_conflicting_tail_and_purge_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = LogStore::open(dir.path()).unwrap();
        store
            .lock()
            .append((1..=5).map(|i| entry(1, i)).collect())
            .unwrap();
        store.lock().truncate(4).unwrap();
        store.lock().append(vec![entry(3, 4), entry(3, 5)]).unwrap();
        store.lock().purge(entry(1, 2).log_id).unwrap();
        drop(store);
        let (store, _) = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&store), vec![3, 4, 5]);
        let inner = store.lock();
        assert_eq!(inner.last_purged.unwrap().index, 2);
        assert_eq!(inner.entries[&4].0.log_id.leader_id.term, 3);
    }

    #[test]
    fn compaction_rewrites_the_file_without_the_purged_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = LogStore::open(dir.path()).unwrap();
        let big = |i| Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 0), i),
            payload: EntryPayload::Normal(crate::metadata::command::Envelope {
                proposal: crate::metadata::command::ProposalId {
                    node: 0,
                    epoch: 0,
                    seq: i,
                },
                command: crate::metadata::command::MetadataCommand::DeleteExpiredTokens { now: i },
            }),
        };
        for batch in 0..200u64 {
            store
                .lock()
                .append((1..=100).map(|i| big(batch * 100 + i)).collect())
                .unwrap();
        }
        let before = std::fs::metadata(dir.path().join(LOG_FILE)).unwrap().len();
        store.lock().purge(big(19_990).log_id).unwrap();
        let after = std::fs::metadata(dir.path().join(LOG_FILE)).unwrap().len();
        assert!(after * 100 < before, "{before} -> {after}");
        drop(store);
        let (store, _) = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&store), (19_991..=20_000).collect::<Vec<_>>());
    }

    #[test]
    fn the_committed_hint_round_trips_and_a_garbled_one_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.path().join(COMMITTED_FILE))
            .unwrap();
        assert_eq!(read_committed(&file), None);
        let id = entry(7, 42).log_id;
        write_committed(&file, &id).unwrap();
        assert_eq!(read_committed(&file), Some(id));
        file.write_all_at(&[0xff], 3).unwrap();
        assert_eq!(read_committed(&file), None);
    }
}
