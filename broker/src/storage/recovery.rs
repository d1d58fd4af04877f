//! Start-up recovery of one segment: establish the longest prefix of the log
//! that is made of whole, checksum-valid batch records, truncate a torn
//! tail, and bring the index in line with it.
//!
//! Crash windows this covers (appends are log write → index write → fsync):
//! - a batch written partially, or not at all past some page: the tail fails
//!   its length or checksum check and is cut off;
//! - index entries written for a batch that did not reach the disk: entries
//!   pointing past the valid log are dropped;
//! - batches on disk without index entries (index lost or torn): rebuilt by
//!   scanning forward from the last verified entry.
//!
//! Only bytes after the last valid batch are ever removed. With the `always`
//! fsync policy every acknowledged batch was synced before the client heard
//! OK, so it is inside the valid prefix.

use super::fs::write_atomic;
use super::index::{Index, IndexEntry};
use super::segment::{index_path, log_path};
use iggy_binary_protocol::batch::{
    BATCH_HEADER_SIZE, BatchHeader, BatchIntegrity, decode_batch_slice_with,
};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// What recovery found and did for one segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentRecovery {
    pub start_offset: u64,
    pub next_offset: u64,
    pub valid_bytes: u64,
    pub truncated_bytes: u64,
    pub entries: Vec<IndexEntry>,
    pub index_rebuilt: bool,
}

/// Read and fully verify the batch record at `position` (`None` if it is not
/// a whole valid record expected to start at `expected_offset`).
fn verified_batch_at(
    log: &File,
    position: u64,
    log_len: u64,
    expected_offset: Option<u64>,
) -> io::Result<Option<BatchHeader>> {
    if position + BATCH_HEADER_SIZE as u64 > log_len {
        return Ok(None);
    }
    let mut header_bytes = [0u8; BATCH_HEADER_SIZE];
    log.read_exact_at(&mut header_bytes, position)?;
    let Ok(header) = BatchHeader::decode(&header_bytes) else {
        return Ok(None);
    };
    // The length and offsets are the file's word, not yet verified: a
    // damaged header may claim anything, so no arithmetic on them may wrap
    // (a wrapped end would pass the bounds check and ask for a buffer of
    // the claimed size).
    let end = position.checked_add(header.batch_length);
    let next = header
        .base_offset
        .checked_add(u64::from(header.message_count));
    if header.message_count == 0
        || end.is_none_or(|end| end > log_len)
        || next.is_none()
        || expected_offset.is_some_and(|expected| header.base_offset != expected)
    {
        return Ok(None);
    }
    let mut record = vec![0u8; header.total_size()];
    log.read_exact_at(&mut record, position)?;
    Ok(decode_batch_slice_with(&record, BatchIntegrity::Verify)
        .ok()
        .map(|batch| batch.header))
}

pub fn recover_segment(dir: &Path, start_offset: u64) -> io::Result<SegmentRecovery> {
    let log_path = log_path(dir, start_offset);
    let index_path = index_path(dir, start_offset);
    let log = OpenOptions::new().read(true).write(true).open(&log_path)?;
    let log_len = log.metadata()?.len();
    let stored_entries = match std::fs::read(&index_path) {
        Ok(bytes) => Index::parse(&bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };

    // Keep the prefix of stored entries that is well-formed and inside the log.
    let mut entries: Vec<IndexEntry> = Vec::with_capacity(stored_entries.len());
    for entry in &stored_entries {
        let ordered = entries.last().is_none_or(|prev| {
            entry.base_offset > prev.base_offset && entry.position > prev.position
        });
        let first_ok =
            !entries.is_empty() || (entry.position == 0 && entry.base_offset == start_offset);
        if !ordered || !first_ok || entry.position >= log_len {
            break;
        }
        entries.push(*entry);
    }

    // Walk back to the newest indexed batch that verifies; everything before
    // it was written (and synced) earlier.
    let mut scan_from = (0u64, start_offset);
    while let Some(last) = entries.last().copied() {
        if let Some(header) =
            verified_batch_at(&log, last.position, log_len, Some(last.base_offset))?
        {
            scan_from = (
                last.position + header.batch_length,
                last.base_offset + u64::from(header.message_count),
            );
            break;
        }
        entries.pop();
    }

    // Scan forward, indexing every further whole batch.
    let (mut position, mut next_offset) = scan_from;
    while let Some(header) = verified_batch_at(&log, position, log_len, Some(next_offset))? {
        entries.push(IndexEntry {
            base_offset: next_offset,
            timestamp: header.base_timestamp,
            position,
        });
        position += header.batch_length;
        next_offset += u64::from(header.message_count);
    }

    let truncated_bytes = log_len - position;
    if truncated_bytes > 0 {
        log.set_len(position)?;
        log.sync_all()?;
    }
    let index_rebuilt = entries != stored_entries;
    if index_rebuilt {
        write_atomic(&index_path, &Index::encode_all(&entries), true)?;
    }
    Ok(SegmentRecovery {
        start_offset,
        next_offset,
        valid_bytes: position,
        truncated_bytes,
        entries,
        index_rebuilt,
    })
}
