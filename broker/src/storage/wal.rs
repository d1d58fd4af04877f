//! The metadata write-ahead log and its snapshot.
//!
//! Metadata changes (streams, topics, users, …) are operations of a
//! deterministic state machine. Each operation is appended to `wal.log` and
//! fsynced before it is applied; periodically the whole state is written to
//! `snapshot.json` (atomically) and the log is emptied. Recovery loads the
//! snapshot and replays the operations after it, cutting off a torn tail.
//! The entries carry a monotonically increasing index, which is what a
//! replicated log (openraft) will key them by.
//!
//! Entry layout: `[payload_len u32][index u64][xxh3 u64 of payload][payload]`.

use super::fs::{create_dir_durable, write_atomic};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fs::{File, OpenOptions};
use std::io;
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use twox_hash::XxHash3_64;

const ENTRY_HEADER_BYTES: usize = 20;
/// An entry larger than this can only be garbage (metadata ops are small).
const MAX_ENTRY_BYTES: usize = 16 << 20;

#[derive(Serialize, serde::Deserialize)]
struct SnapshotFile<S> {
    last_index: u64,
    state: S,
}

/// What was on disk when the WAL was opened.
pub struct Recovered<S, T> {
    pub snapshot: Option<S>,
    pub ops: Vec<T>,
    pub truncated_bytes: u64,
}

pub struct Wal<T> {
    dir: PathBuf,
    file: File,
    len: u64,
    next_index: u64,
    entries_in_log: usize,
    _op: PhantomData<T>,
}

impl<T: Serialize + DeserializeOwned> Wal<T> {
    pub fn open<S: DeserializeOwned>(dir: &Path) -> io::Result<(Self, Recovered<S, T>)> {
        create_dir_durable(dir)?;
        let snapshot: Option<SnapshotFile<S>> = match std::fs::read(dir.join("snapshot.json")) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(io::Error::other)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let snapshot_index = snapshot.as_ref().map_or(0, |s| s.last_index);

        let path = dir.join("wal.log");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let bytes = std::fs::read(&path)?;
        let mut position = 0usize;
        let mut ops = Vec::new();
        let mut next_index = snapshot_index + 1;
        let mut entries_in_log = 0;
        while let Some((index, payload, size)) = decode_entry(&bytes[position..]) {
            let Ok(op) = serde_json::from_slice::<T>(payload) else {
                break;
            };
            if index > snapshot_index {
                if index != next_index {
                    break;
                }
                ops.push(op);
                next_index = index + 1;
            }
            entries_in_log += 1;
            position += size;
        }
        let truncated_bytes = (bytes.len() - position) as u64;
        if truncated_bytes > 0 {
            file.set_len(position as u64)?;
            file.sync_all()?;
        }
        let wal = Self {
            dir: dir.to_path_buf(),
            file,
            len: position as u64,
            next_index,
            entries_in_log,
            _op: PhantomData,
        };
        Ok((
            wal,
            Recovered {
                snapshot: snapshot.map(|s| s.state),
                ops,
                truncated_bytes,
            },
        ))
    }

    /// Durably append one operation; returns its index.
    pub fn append(&mut self, op: &T) -> io::Result<u64> {
        let payload = serde_json::to_vec(op).map_err(io::Error::other)?;
        let index = self.next_index;
        let mut entry = Vec::with_capacity(ENTRY_HEADER_BYTES + payload.len());
        entry.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        entry.extend_from_slice(&index.to_le_bytes());
        entry.extend_from_slice(&XxHash3_64::oneshot(&payload).to_le_bytes());
        entry.extend_from_slice(&payload);
        self.file.write_all_at(&entry, self.len)?;
        self.file.sync_data()?;
        self.len += entry.len() as u64;
        self.next_index += 1;
        self.entries_in_log += 1;
        Ok(index)
    }

    /// Number of operations in the log since the last snapshot.
    pub fn entries_in_log(&self) -> usize {
        self.entries_in_log
    }

    /// Write `state` (which reflects every appended op) as the snapshot and
    /// empty the log.
    pub fn snapshot<S: Serialize>(&mut self, state: &S) -> io::Result<()> {
        let file = SnapshotFile {
            last_index: self.next_index - 1,
            state,
        };
        let bytes = serde_json::to_vec(&file).map_err(io::Error::other)?;
        write_atomic(&self.dir.join("snapshot.json"), &bytes, true)?;
        self.file.set_len(0)?;
        self.file.sync_all()?;
        self.len = 0;
        self.entries_in_log = 0;
        Ok(())
    }
}

fn decode_entry(bytes: &[u8]) -> Option<(u64, &[u8], usize)> {
    let header = bytes.get(..ENTRY_HEADER_BYTES)?;
    let len = u32::from_le_bytes(header[0..4].try_into().ok()?) as usize;
    if len > MAX_ENTRY_BYTES {
        return None;
    }
    let index = u64::from_le_bytes(header[4..12].try_into().ok()?);
    let checksum = u64::from_le_bytes(header[12..20].try_into().ok()?);
    let payload = bytes.get(ENTRY_HEADER_BYTES..ENTRY_HEADER_BYTES + len)?;
    (XxHash3_64::oneshot(payload) == checksum).then_some((index, payload, ENTRY_HEADER_BYTES + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestWal = Wal<String>;

    #[test]
    fn ops_survive_reopen_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, rec) = TestWal::open::<Vec<String>>(dir.path()).unwrap();
        assert!(rec.snapshot.is_none() && rec.ops.is_empty());
        wal.append(&"a".to_string()).unwrap();
        wal.append(&"b".to_string()).unwrap();
        drop(wal);
        // Tear the last entry.
        let path = dir.path().join("wal.log");
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 2)
            .unwrap();

        let (mut wal, rec) = TestWal::open::<Vec<String>>(dir.path()).unwrap();
        assert_eq!(rec.ops, vec!["a".to_string()]);
        assert!(rec.truncated_bytes > 0);
        wal.append(&"c".to_string()).unwrap();
        drop(wal);
        let (_, rec) = TestWal::open::<Vec<String>>(dir.path()).unwrap();
        assert_eq!(rec.ops, vec!["a".to_string(), "c".to_string()]);
    }

    #[test]
    fn snapshot_replaces_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = TestWal::open::<Vec<String>>(dir.path()).unwrap();
        wal.append(&"a".to_string()).unwrap();
        wal.snapshot(&vec!["a".to_string()]).unwrap();
        wal.append(&"b".to_string()).unwrap();
        drop(wal);
        let (_, rec) = TestWal::open::<Vec<String>>(dir.path()).unwrap();
        assert_eq!(rec.snapshot, Some(vec!["a".to_string()]));
        assert_eq!(rec.ops, vec!["b".to_string()]);
    }
}
