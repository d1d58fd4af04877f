//! `MetadataStore`: the metadata state plus the WAL that makes it durable.

use super::{MetadataOp, MetadataState};
use crate::storage::wal::Wal;
use std::io;
use std::path::Path;

/// Write a snapshot (and empty the WAL) after this many logged operations.
const SNAPSHOT_EVERY_OPS: usize = 1_000;

pub struct MetadataStore {
    state: MetadataState,
    wal: Wal<MetadataOp>,
}

impl MetadataStore {
    pub fn open(dir: &Path) -> io::Result<Self> {
        let (wal, recovered) = Wal::open::<MetadataState>(dir)?;
        if recovered.truncated_bytes > 0 {
            tracing::warn!(
                bytes = recovered.truncated_bytes,
                "metadata log had a torn tail (an operation that was never acknowledged); cut it off"
            );
        }
        let mut state = recovered.snapshot.unwrap_or_default();
        for op in &recovered.ops {
            state.apply(op);
        }
        Ok(Self { state, wal })
    }

    pub fn state(&self) -> &MetadataState {
        &self.state
    }

    /// Log `op` durably, then apply it.
    pub fn commit(&mut self, op: MetadataOp) -> io::Result<()> {
        self.wal.append(&op)?;
        self.state.apply(&op);
        if self.wal.entries_in_log() >= SNAPSHOT_EVERY_OPS {
            self.wal.snapshot(&self.state)?;
        }
        Ok(())
    }
}
