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
use std::time::{Duration, Instant};

/// How [`Partition::sync_up_to`] made the log durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synced {
    /// This call's fsync, which took this long.
    Now(Duration),
    /// An earlier fsync already covered the offsets asked for.
    Covered,
    /// The log was cut (truncated, purged, or a failed sync forgot the
    /// tail) after the batch was appended: it is not there to be synced.
    Cut,
}

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
    /// messages. An auto-commit poll's offset is pending until it commits
    /// behind the reply (`broker::offset_commits`); an explicit store or
    /// delete holds this lock while it waits for the pending ones to land.
    pub commit_lock: tokio::sync::Mutex<()>,
    /// One fsync of this partition's log at a time (see `sync_up_to`).
    sync_turn: tokio::sync::Mutex<()>,
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
        let (dropped_segments, dropped_bytes) = recovery.dropped_after_gap;
        if dropped_segments > 0 {
            tracing::warn!(
                partition = %dir.display(),
                segments = dropped_segments,
                bytes = dropped_bytes,
                "dropped the segments after a sealed segment torn by a crash \
                 (fsync `never`/`interval`: what was not synced is lost)"
            );
        }
        if recovery.truncated_bytes() > dropped_bytes {
            tracing::warn!(
                partition = %dir.display(),
                bytes = recovery.truncated_bytes() - dropped_bytes,
                "cut off a torn tail (under fsync `always`, a write that was never acknowledged)"
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
            sync_turn: tokio::sync::Mutex::new(()),
        })
    }

    /// Make the log durable up to `end`, appended in log generation
    /// `generation`, without holding the log's lock across the fsync: polls
    /// and other producers go on while it runs.
    ///
    /// Group commit: one fsync at a time per partition; whoever's turn it
    /// is syncs everything appended so far, so the sends that queued
    /// behind it usually find their batches covered and return at once.
    /// On failure the error is returned and, when `forget_on_failure`
    /// (a partition without other replicas, `always` policy: nothing past
    /// the durable end was acknowledged or shown to anyone), what was not
    /// durable is forgotten. A replicated leader keeps it — followers may
    /// have copied it — and a later sync makes it durable: its client was
    /// told the send may or may not be kept.
    pub async fn sync_up_to(
        &self,
        end: u64,
        generation: u64,
        forget_on_failure: bool,
    ) -> io::Result<Synced> {
        let _turn = self.sync_turn.lock().await;
        // On this worker thread, handed over as a blocking one for the
        // duration (cheaper than a hop to the blocking pool, which cost a
        // single producer per partition about a tenth of its throughput).
        tokio::task::block_in_place(|| self.sync_in_turn(end, generation, forget_on_failure))
    }

    /// [`Self::sync_up_to`] for a caller already off the async workers (in
    /// `block_in_place`, as a send's append is) — it saves handing the
    /// worker over a second time. `None` when another fsync of this log
    /// is running: then wait for the turn with [`Self::sync_up_to`].
    pub fn try_sync_up_to(
        &self,
        end: u64,
        generation: u64,
        forget_on_failure: bool,
    ) -> Option<io::Result<Synced>> {
        let _turn = self.sync_turn.try_lock().ok()?;
        Some(self.sync_in_turn(end, generation, forget_on_failure))
    }

    /// The fsync of [`Self::sync_up_to`], in this log's sync turn; blocks.
    fn sync_in_turn(
        &self,
        end: u64,
        generation: u64,
        forget_on_failure: bool,
    ) -> io::Result<Synced> {
        let target = {
            let log = self.lock_log();
            if log.generation() != generation {
                return Ok(Synced::Cut);
            }
            if log.durable_end() >= end {
                return Ok(Synced::Covered);
            }
            log.sync_target()
        };
        let started = Instant::now();
        let synced = target.file.sync_data();
        let mut log = self.lock_log();
        match synced {
            Ok(()) => {
                log.synced(&target);
                self.replica.note_synced(target.end);
                Ok(Synced::Now(started.elapsed()))
            }
            Err(e) => {
                if forget_on_failure {
                    log.sync_failed(&target);
                    self.replica.set_log_end(log.next_offset());
                }
                Err(e)
            }
        }
    }

    pub fn lock_log(&self) -> std::sync::MutexGuard<'_, PartitionLog> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The log's lock if nobody holds it now (a producer appending holds
    /// it for the length of a page-cache write).
    pub fn try_lock_log(&self) -> Option<std::sync::MutexGuard<'_, PartitionLog>> {
        match self.log.try_lock() {
            Ok(log) => Some(log),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}
