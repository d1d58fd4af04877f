//! One segment of a partition log: `<start_offset:020>.log` holding batch
//! records back to back, and its sparse index.
//!
//! A segment only ever grows at its end. It knows its own offset range and
//! size; choosing when to roll to a new segment is the log's job.

use super::index::{Index, IndexEntry};
use bytes::BytesMut;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const LOG_EXTENSION: &str = "log";
pub const INDEX_EXTENSION: &str = "index";
/// Appended to the names of a removed segment's files until they are
/// deleted (`PartitionLog::remove_oldest_segments`).
pub const REMOVED_EXTENSION: &str = "removed";

/// How an append gets the log file's blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// Allocated ahead of the file's end (`fallocate`, keeping the file's
    /// size, so readers and recovery see only what was written), in steps
    /// that grow with the segment: an append then writes into allocated
    /// blocks and ext4 skips its per-page delayed-allocation work, which
    /// cost more than the copy itself (a producer's 1 MB `pwrite` under
    /// the partition's lock: 0.25 → 0.16 ms). For fsync `always`, where
    /// every batch waits for the disk's queue anyway (and the log's own
    /// writes keep it short). The waste is bounded: a step is at most what
    /// the segment holds, between [`ALLOCATE_AHEAD_MIN`] and
    /// [`ALLOCATE_AHEAD_MAX`]; what is left over is given back when the
    /// segment is sealed; and none is taken on a file system with less
    /// than [`ALLOCATE_AHEAD_FLOOR`] free.
    Ahead,
    /// By the file system when the pages are written back (ext4's delayed
    /// allocation), off the writer's path. For fsync `never` and
    /// `interval`: there the disk can be far behind the page cache, and an
    /// `fallocate` that needs a block group's bitmap reads it from the
    /// disk behind that queue — 50–160 ms under the partition's lock and
    /// the file's, measured while a segment's worth of writes was being
    /// written back.
    AtWriteback,
}

const ALLOCATE_AHEAD_MIN: u64 = 64 << 10;
const ALLOCATE_AHEAD_MAX: u64 = 8 << 20;
/// Free space under which nothing is allocated ahead: close to full, the
/// broker's own reserve (`system.reserved_space`) must see only data.
const ALLOCATE_AHEAD_FLOOR: u64 = 256 << 20;

/// File stem of the segment that starts at `start_offset`; zero-padded so
/// that `ls` lists segments in offset order.
pub fn file_stem(start_offset: u64) -> String {
    format!("{start_offset:020}")
}

pub fn log_path(dir: &Path, start_offset: u64) -> PathBuf {
    dir.join(format!("{}.{LOG_EXTENSION}", file_stem(start_offset)))
}

pub fn index_path(dir: &Path, start_offset: u64) -> PathBuf {
    dir.join(format!("{}.{INDEX_EXTENSION}", file_stem(start_offset)))
}

/// A range of a segment's log file holding whole batch records. Stored
/// bytes never change once written, and a range below the committed offset
/// is never cut, so it can be read without the partition's lock; a segment
/// removed meanwhile is still read through the open file.
#[derive(Debug)]
pub struct StoredBytes {
    file: Arc<File>,
    position: u64,
    len: usize,
}

impl StoredBytes {
    /// Append the bytes to `out`, straight into its spare capacity: a poll's
    /// megabyte is not zero-filled first only to be overwritten.
    pub fn read_appending(&self, out: &mut BytesMut) -> io::Result<()> {
        self.read_with_flags(out, 0)
    }

    /// [`Self::read_appending`] only if it needs no wait for the disk
    /// (`RWF_NOWAIT`): `Ok(false)`, with `out` as it was, when some bytes
    /// would have to come from the disk, or when the file system cannot
    /// tell. On a miss the kernel still starts reading ahead, which helps
    /// the blocking read that follows (and, when the disk answers at once,
    /// lets this read succeed). Lets a poll read on an async worker without
    /// ever waiting for the disk there.
    pub fn read_cached_appending(&self, out: &mut BytesMut) -> io::Result<bool> {
        let start = out.len();
        match self.read_with_flags(out, libc::RWF_NOWAIT) {
            Ok(()) => Ok(true),
            // Not cached (EAGAIN), unsupported here, or a real error: the
            // blocking read sorts it out.
            Err(_) => {
                out.truncate(start);
                Ok(false)
            }
        }
    }

    /// `preadv2` the range into the spare capacity of `out` with `flags`;
    /// on an error part of it may have been appended.
    fn read_with_flags(&self, out: &mut BytesMut, flags: libc::c_int) -> io::Result<()> {
        out.reserve(self.len);
        let mut done = 0;
        while done < self.len {
            let spare = &mut out.spare_capacity_mut()[..self.len - done];
            let iov = libc::iovec {
                iov_base: spare.as_mut_ptr().cast(),
                iov_len: spare.len(),
            };
            let offset = (self.position + done as u64) as libc::off_t;
            // SAFETY: `iov` is the spare capacity of `out`, valid for writes
            // of `iov_len` bytes; it is only marked initialized for the
            // bytes the call reports as read.
            let read = unsafe { libc::preadv2(self.file.as_raw_fd(), &iov, 1, offset, flags) };
            match read {
                ..0 => return Err(io::Error::last_os_error()),
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => {
                    // SAFETY: preadv2 initialized the first `n` spare bytes.
                    unsafe { out.set_len(out.len() + n as usize) };
                    done += n as usize;
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
pub struct Segment {
    start_offset: u64,
    /// One past the last offset stored here (`start_offset` when empty).
    next_offset: u64,
    size_bytes: u64,
    log: Arc<File>,
    index: Index,
    log_path: PathBuf,
    index_path: PathBuf,
    /// Wall-clock time (µs) of the newest batch, for retention by age.
    last_timestamp: u64,
    /// The log file position up to which appends need no allocation of
    /// their own ([`Allocation::Ahead`]).
    allocated_end: u64,
}

impl Segment {
    /// Create a new, empty segment starting at `start_offset`.
    pub fn create(dir: &Path, start_offset: u64) -> io::Result<Self> {
        let log_path = log_path(dir, start_offset);
        let index_path = index_path(dir, start_offset);
        let log = Arc::new(open_rw(&log_path, true)?);
        let index_file = open_rw(&index_path, true)?;
        Ok(Self {
            start_offset,
            next_offset: start_offset,
            size_bytes: 0,
            log,
            index: Index::new(index_file, Vec::new()),
            log_path,
            index_path,
            last_timestamp: 0,
            allocated_end: 0,
        })
    }

    /// Assemble a segment from the state recovery established.
    pub fn from_recovered(
        dir: &Path,
        start_offset: u64,
        next_offset: u64,
        size_bytes: u64,
        entries: Vec<IndexEntry>,
    ) -> io::Result<Self> {
        let log_path = log_path(dir, start_offset);
        let index_path = index_path(dir, start_offset);
        let log = Arc::new(open_rw(&log_path, false)?);
        let index_file = open_rw(&index_path, false)?;
        let last_timestamp = entries.last().map_or(0, |e| e.timestamp);
        Ok(Self {
            start_offset,
            next_offset,
            size_bytes,
            log,
            index: Index::new(index_file, entries),
            log_path,
            index_path,
            last_timestamp,
            allocated_end: size_bytes,
        })
    }

    /// Append one stamped batch record holding `count` messages. On an
    /// error nothing is appended: the log file is cut back (best effort —
    /// the next append overwrites whatever is left, and recovery cuts a
    /// tail that is not a whole batch).
    pub fn append(
        &mut self,
        record: &[u8],
        count: u32,
        timestamp: u64,
        allocation: Allocation,
    ) -> io::Result<()> {
        let position = self.size_bytes;
        if allocation == Allocation::Ahead {
            self.allocate_ahead(record.len() as u64);
        }
        let written = self.log.write_all_at(record, position).and_then(|()| {
            self.index.append(IndexEntry {
                base_offset: self.next_offset,
                timestamp,
                position,
            })
        });
        if let Err(e) = written {
            let _ = self.cut_file(position);
            return Err(e);
        }
        self.size_bytes += record.len() as u64;
        self.next_offset += u64::from(count);
        self.last_timestamp = timestamp;
        Ok(())
    }

    /// Allocate the log file's blocks ahead of its end (see
    /// [`Allocation::Ahead`]) when an append of `len` bytes would pass
    /// what is allocated. Best effort: blocks not allocated ahead are
    /// allocated as they are written, as without it.
    fn allocate_ahead(&mut self, len: u64) {
        let from = self.size_bytes;
        if from + len <= self.allocated_end {
            return;
        }
        let step = from.clamp(ALLOCATE_AHEAD_MIN, ALLOCATE_AHEAD_MAX).max(len);
        // Tried again only a step further on, also when the file system
        // cannot (no `fallocate`, or short of space).
        self.allocated_end = from + step;
        if free_space(&self.log).is_some_and(|free| free >= ALLOCATE_AHEAD_FLOOR + step) {
            // SAFETY: a plain system call on an open file descriptor.
            unsafe {
                libc::fallocate(
                    self.log.as_raw_fd(),
                    libc::FALLOC_FL_KEEP_SIZE,
                    from as libc::off_t,
                    step as libc::off_t,
                )
            };
        }
    }

    /// Cut the log file to `len` bytes; the blocks allocated ahead go
    /// with the rest.
    fn cut_file(&mut self, len: u64) -> io::Result<()> {
        self.allocated_end = len;
        self.log.set_len(len)
    }

    /// Remove the batches from offset `offset` on; a batch that holds
    /// `offset` but starts before it is removed whole. Durable on return.
    /// Returns the segment's new next offset.
    pub fn truncate(&mut self, offset: u64) -> io::Result<u64> {
        let entries = self.index.entries();
        let mut keep = entries.partition_point(|e| e.base_offset < offset);
        let end_of = |i: usize| {
            entries
                .get(i + 1)
                .map_or(self.next_offset, |e| e.base_offset)
        };
        if keep > 0 && end_of(keep - 1) > offset {
            keep -= 1;
        }
        if keep == entries.len() {
            return Ok(self.next_offset);
        }
        let cut = entries[keep];
        self.cut_file(cut.position)?;
        self.log.sync_all()?;
        self.index.truncate(keep)?;
        self.size_bytes = cut.position;
        self.next_offset = cut.base_offset;
        self.last_timestamp = self.index.entries().last().map_or(0, |e| e.timestamp);
        Ok(self.next_offset)
    }

    /// Forget the batches from `offset` (a batch boundary) on: their fsync
    /// failed, so they were never acknowledged, and the next append takes
    /// their place. The files are cut back as far as the failing disk
    /// allows; whatever stays past the end is overwritten or cut by
    /// recovery.
    pub fn forget_from(&mut self, offset: u64) {
        let entries = self.index.entries();
        let keep = entries.partition_point(|e| e.base_offset < offset);
        let Some(cut) = entries.get(keep).copied() else {
            return;
        };
        let _ = self.cut_file(cut.position);
        let _ = self.index.truncate(keep);
        self.size_bytes = cut.position;
        self.next_offset = cut.base_offset;
        self.last_timestamp = self.index.entries().last().map_or(0, |e| e.timestamp);
    }

    /// Make every appended byte of the log durable. The index is rebuilt by
    /// recovery when needed, so only the log is synced.
    pub fn sync(&self) -> io::Result<()> {
        self.log.sync_data()
    }

    /// What sealing this segment needs, to do it without the partition's
    /// lock ([`Sealer::seal`]).
    pub fn sealer(&self) -> Sealer {
        Sealer {
            file: self.log.clone(),
            len: self.size_bytes,
        }
    }

    /// The log file, to sync without holding the partition's lock.
    pub fn log_file(&self) -> Arc<File> {
        self.log.clone()
    }

    /// The bytes `[position, position + len)` of the log file, to read
    /// after the partition's lock is released ([`StoredBytes::read_appending`]).
    pub fn stored_bytes(&self, position: u64, len: usize) -> StoredBytes {
        StoredBytes {
            file: self.log.clone(),
            position,
            len,
        }
    }

    pub fn start_offset(&self) -> u64 {
        self.start_offset
    }

    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    pub fn is_empty(&self) -> bool {
        self.next_offset == self.start_offset
    }

    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    pub fn last_timestamp(&self) -> u64 {
        self.last_timestamp
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    /// File position where the batch at index entry `i` ends.
    pub fn batch_end(&self, i: usize) -> u64 {
        self.index
            .entries()
            .get(i + 1)
            .map_or(self.size_bytes, |e| e.position)
    }

    /// Remove the segment's files.
    /// Rename the segment's files aside (`<name>.removed`), to be deleted
    /// later; returns their new paths. The segment is not usable after.
    pub fn rename_aside(&self) -> io::Result<Vec<PathBuf>> {
        let mut renamed = Vec::with_capacity(2);
        for path in [&self.log_path, &self.index_path] {
            let mut aside = path.clone().into_os_string();
            aside.push(".");
            aside.push(REMOVED_EXTENSION);
            let aside = PathBuf::from(aside);
            match std::fs::rename(path, &aside) {
                Ok(()) => renamed.push(aside),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(renamed)
    }

    pub fn delete(self) -> io::Result<()> {
        std::fs::remove_file(&self.log_path)?;
        match std::fs::remove_file(&self.index_path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// A segment that takes no more appends, to be sealed.
pub struct Sealer {
    file: Arc<File>,
    len: u64,
}

impl Sealer {
    /// Give back the blocks allocated ahead of the log file's end, and
    /// make the file durable.
    pub fn seal(&self) -> io::Result<()> {
        self.file.set_len(self.len)?;
        self.file.sync_data()
    }
}

/// Bytes free for unprivileged use on the file system of `file`.
fn free_space(file: &File) -> Option<u64> {
    let stat = rustix::fs::fstatvfs(file).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Open a segment file for reading and positional writes; `truncate` starts
/// it empty (a new segment), otherwise existing bytes are kept.
fn open_rw(path: &Path, truncate: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate)
        .open(path)
}
