//! The sparse offset index of one segment: `<start_offset:020>.index`.
//!
//! One 24-byte entry per stored batch — `[base_offset u64][base_timestamp u64]
//! [position u64]`, little-endian — so a poll finds the batch holding an
//! offset (or the first batch at or after a timestamp) with a binary search
//! and reads from that file position. The index is derived data: recovery
//! verifies it against the log and rebuilds it when it is missing or torn, so
//! it never needs an fsync of its own.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

pub const INDEX_ENTRY_BYTES: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub base_offset: u64,
    pub timestamp: u64,
    pub position: u64,
}

impl IndexEntry {
    pub fn encode(&self) -> [u8; INDEX_ENTRY_BYTES] {
        let mut out = [0u8; INDEX_ENTRY_BYTES];
        out[0..8].copy_from_slice(&self.base_offset.to_le_bytes());
        out[8..16].copy_from_slice(&self.timestamp.to_le_bytes());
        out[16..24].copy_from_slice(&self.position.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8; INDEX_ENTRY_BYTES]) -> Self {
        let read = |range: std::ops::Range<usize>| {
            u64::from_le_bytes(bytes[range].try_into().expect("8 bytes"))
        };
        Self {
            base_offset: read(0..8),
            timestamp: read(8..16),
            position: read(16..24),
        }
    }
}

/// The in-memory copy of a segment's index plus its file.
#[derive(Debug)]
pub struct Index {
    file: File,
    entries: Vec<IndexEntry>,
}

impl Index {
    pub fn new(file: File, entries: Vec<IndexEntry>) -> Self {
        Self { file, entries }
    }

    /// Decode every whole entry of an index file's bytes; a torn trailing
    /// entry is ignored.
    pub fn parse(bytes: &[u8]) -> Vec<IndexEntry> {
        bytes
            .chunks_exact(INDEX_ENTRY_BYTES)
            .map(|chunk| IndexEntry::decode(chunk.try_into().expect("exact chunk")))
            .collect()
    }

    pub fn encode_all(entries: &[IndexEntry]) -> Vec<u8> {
        entries.iter().flat_map(IndexEntry::encode).collect()
    }

    pub fn append(&mut self, entry: IndexEntry) -> io::Result<()> {
        let position = (self.entries.len() * INDEX_ENTRY_BYTES) as u64;
        if let Err(e) = self.file.write_all_at(&entry.encode(), position) {
            // No half entry left behind for the next append to follow.
            let _ = self.file.set_len(position);
            return Err(e);
        }
        self.entries.push(entry);
        Ok(())
    }

    pub fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    /// Keep only the first `count` entries (dropped from memory even if
    /// cutting the file fails).
    pub fn truncate(&mut self, count: usize) -> io::Result<()> {
        if count < self.entries.len() {
            self.entries.truncate(count);
            self.file.set_len((count * INDEX_ENTRY_BYTES) as u64)?;
        }
        Ok(())
    }

    /// Index of the entry of the batch that holds `offset`: the last entry
    /// whose base offset is not after it.
    pub fn batch_containing(&self, offset: u64) -> Option<usize> {
        let after = self.entries.partition_point(|e| e.base_offset <= offset);
        after.checked_sub(1)
    }

    /// Index of the first entry whose base offset is after `offset`.
    pub fn first_batch_after(&self, offset: u64) -> usize {
        self.entries.partition_point(|e| e.base_offset <= offset)
    }

    /// The first batch stamped at or after `timestamp`.
    pub fn first_at_or_after_timestamp(&self, timestamp: u64) -> Option<&IndexEntry> {
        let at = self.entries.partition_point(|e| e.timestamp < timestamp);
        self.entries.get(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(base_offset: u64, timestamp: u64, position: u64) -> IndexEntry {
        IndexEntry {
            base_offset,
            timestamp,
            position,
        }
    }

    #[test]
    fn entries_roundtrip_and_a_torn_tail_is_ignored() {
        let entries = vec![entry(0, 10, 0), entry(5, 20, 900)];
        let mut bytes = Index::encode_all(&entries);
        bytes.extend_from_slice(&[1, 2, 3]);
        assert_eq!(Index::parse(&bytes), entries);
    }

    #[test]
    fn lookups_find_the_right_batch() {
        let file = tempfile::tempfile().unwrap();
        let index = Index::new(
            file,
            vec![entry(0, 10, 0), entry(5, 20, 900), entry(9, 30, 1500)],
        );
        assert_eq!(index.batch_containing(0), Some(0));
        assert_eq!(index.batch_containing(7), Some(1));
        assert_eq!(index.batch_containing(100), Some(2));
        assert_eq!(index.first_batch_after(5), 2);
        assert_eq!(
            index.first_at_or_after_timestamp(15).unwrap().base_offset,
            5
        );
        assert!(index.first_at_or_after_timestamp(31).is_none());
    }
}
