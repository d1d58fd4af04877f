//! Replicated partitions: leader/follower replication with in-sync
//! replicas, whose leader and leader epoch the metadata group decides
//! (Kafka's model; `docs/decisions.md` says why).
//!
//! - Every partition has `replication_factor` replicas; one leads. The
//!   leader appends producers' batches to its segment log; followers copy
//!   the same batch records, unchanged, by fetching from it ([`follower`]).
//!   The segment log is the replicated log: nothing is written twice.
//! - A fetch names the follower's log end, so the leader knows what each
//!   follower has. The committed offset (high watermark) is the lowest log
//!   end among the in-sync replicas; polls never read past it, and a send
//!   is acknowledged once it is committed ([`leader`]).
//! - The leader shrinks the in-sync set when a follower falls behind and
//!   grows it when one catches up, through the metadata group, in its own
//!   epoch only.
//! - When a leader is lost, the metadata leader picks a new one among the
//!   in-sync replicas still alive and bumps the epoch ([`controller`]).
//!   Every in-sync replica has every acknowledged message, so none is lost.
//! - A leader whose disk runs low hands its partitions to in-sync
//!   replicas with room before sends would be refused ([`low_space`]).
//! - Each replica records where every leader epoch starts in its log
//!   (`storage::epochs`); a follower of a new leader cuts off the tail its
//!   old leader never committed by asking where its last epoch ended.

pub mod controller;
pub mod follower;
pub mod leader;
pub mod low_space;
pub mod plan;
pub mod rebalance;
mod supervisor;

pub use supervisor::{role, run};

use crate::storage::PartitionLog;
use crate::storage::epochs::EpochHistory;
use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::sync::{Notify, watch};

/// What a leader knows of one follower.
#[derive(Debug, Clone, Copy)]
pub struct FollowerProgress {
    /// The follower has every message before this offset.
    pub log_end: u64,
    /// When the follower last had everything the leader had (`None`: not
    /// yet in this epoch — a first fetch from behind is not being level).
    pub caught_up_at: Option<Instant>,
}

/// The replication side of one partition replica.
pub struct ReplicaState {
    /// Where each leader epoch starts in this replica's log. Lock order:
    /// the partition's log first, then this.
    pub history: Mutex<EpochHistory>,
    /// The committed offset: every message before it is on every in-sync
    /// replica. Never goes back (except when the log is purged).
    committed: watch::Sender<u64>,
    /// This replica's log end, for fetches waiting for new messages.
    log_end: watch::Sender<u64>,
    /// This replica's log is durable before this offset: its log end,
    /// except on a leader under the `always` policy while the sync of a
    /// batch is pending. What a leader counts for itself toward the
    /// committed offset.
    durable_end: AtomicU64,
    /// Leader only: the epoch it leads in (0: not leading) and its
    /// followers' progress.
    leading: Mutex<Leading>,
    /// The partition's leader, epoch or in-sync set changed.
    pub changed: Notify,
}

#[derive(Debug, Default)]
struct Leading {
    epoch: u32,
    taken_up_at: Option<Instant>,
    /// When the partition's metadata (replicas, in-sync set, leader) last
    /// changed: a follower joins the in-sync set only with a level fetch
    /// after it, so progress recorded for a replica that was removed and
    /// added back (an empty log now) never counts.
    state_changed_at: Option<Instant>,
    followers: BTreeMap<u32, FollowerProgress>,
}

impl Leading {
    /// Follower `from` fetched from `offset` while the leader's log ended
    /// at `log_end`: it has everything before `offset`, and is level when
    /// it asks for nothing older than the end. A first fetch from behind
    /// leaves it not level.
    fn record_fetch(&mut self, from: u32, offset: u64, log_end: u64, now: Instant) {
        let progress = self.followers.entry(from).or_insert(FollowerProgress {
            log_end: offset,
            caught_up_at: None,
        });
        progress.log_end = offset.min(log_end);
        if offset >= log_end {
            progress.caught_up_at = Some(now);
        }
    }
}

impl ReplicaState {
    /// The state of the replica whose log is `log`, in `dir`. A partition
    /// without other replicas has committed everything it stores; a
    /// replicated one learns its committed offset again from its leader or
    /// followers.
    pub fn open(dir: &Path, log: &PartitionLog, replicated: bool) -> io::Result<Self> {
        let committed = if replicated {
            log.first_offset()
        } else {
            log.next_offset()
        };
        Ok(Self {
            history: Mutex::new(EpochHistory::open(dir)?),
            committed: watch::Sender::new(committed),
            log_end: watch::Sender::new(log.next_offset()),
            durable_end: AtomicU64::new(log.next_offset()),
            leading: Mutex::new(Leading::default()),
            changed: Notify::new(),
        })
    }

    /// The committed offset (one past the last committed message).
    pub fn committed(&self) -> u64 {
        *self.committed.borrow()
    }

    /// Raise the committed offset to `offset` (never lowers it).
    pub fn commit_up_to(&self, offset: u64) {
        self.committed.send_if_modified(|current| {
            let raise = offset > *current;
            if raise {
                *current = offset;
            }
            raise
        });
    }

    /// The partition's metadata changed (see `Leading::state_changed_at`).
    pub fn note_state_changed(&self) {
        self.leading().state_changed_at = Some(Instant::now());
    }

    pub fn subscribe_committed(&self) -> watch::Receiver<u64> {
        self.committed.subscribe()
    }

    pub fn log_end(&self) -> u64 {
        *self.log_end.borrow()
    }

    /// The log grew (or was cut) to `end`, durably as far as its fsync
    /// policy asks.
    pub fn set_log_end(&self, end: u64) {
        self.log_end.send_replace(end);
        self.durable_end.store(end, Ordering::Release);
    }

    /// The log grew to `end`, but under the `always` policy the new batch
    /// is durable only once `note_synced` says so.
    pub fn set_log_end_unsynced(&self, end: u64) {
        self.log_end.send_replace(end);
    }

    /// The log is durable up to `end`.
    pub fn note_synced(&self, end: u64) {
        self.durable_end
            .fetch_max(end.min(self.log_end()), Ordering::AcqRel);
    }

    /// See the field.
    pub fn durable_end(&self) -> u64 {
        self.durable_end.load(Ordering::Acquire)
    }

    pub fn subscribe_log_end(&self) -> watch::Receiver<u64> {
        self.log_end.subscribe()
    }

    pub fn history(&self) -> std::sync::MutexGuard<'_, EpochHistory> {
        self.history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn leading(&self) -> std::sync::MutexGuard<'_, Leading> {
        self.leading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The epoch this replica leads in (0: it does not lead).
    pub fn leading_epoch(&self) -> u32 {
        self.leading().epoch
    }

    /// Leader only: how many messages the furthest-behind follower lacks.
    pub fn max_follower_lag(&self) -> u64 {
        let end = self.log_end();
        self.leading()
            .followers
            .values()
            .map(|f| end.saturating_sub(f.log_end))
            .max()
            .unwrap_or(0)
    }

    /// The log was purged: nothing is stored, nothing committed.
    pub fn purged(&self, log: &PartitionLog) -> io::Result<()> {
        self.history().clear()?;
        self.committed.send_replace(log.next_offset());
        self.log_end.send_replace(log.next_offset());
        let mut leading = self.leading();
        for progress in leading.followers.values_mut() {
            progress.log_end = log.next_offset();
        }
        Ok(())
    }
}
