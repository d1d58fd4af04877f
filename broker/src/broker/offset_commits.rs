//! Offsets of auto-commit polls: answered at once, committed behind and
//! together.
//!
//! A poll with auto-commit is answered as soon as its messages are read;
//! its new offset becomes *pending* here and is what the next poll of that
//! consumer and any offset request read (`pending`), so nobody reads an
//! offset older than a reply already sent and no message is given twice
//! while the broker runs — without the next poll waiting for the metadata
//! log's fsync. (It used to: a consumer polling one partition with
//! auto-commit went at the pace of fsyncs, about 40 % slower.)
//!
//! One commit at a time goes to the metadata group, carrying the newest
//! pending offset of every consumer, at most every [`COMMIT_PAUSE`] unless
//! someone waits for it (`settle`): under load many polls share one Raft
//! entry and one fsync of the metadata log. A commit that fails (a lost
//! majority, a crash before it lands) leaves the offsets where they were
//! and the messages are delivered again: auto-commit is at-least-once, as
//! upstream's, which keeps the offset in memory and stores it behind.
//!
//! An explicit store or delete of an offset must land after the pending
//! ones of its partition, or a late commit would overwrite it: it holds
//! the partition's `commit_lock` (no new pending offset) and `settle`s the
//! partition first.

use crate::metadata::{ConsumerKey, MetadataCommand, MetadataService, PartitionKey};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// The least time between two commits that nobody waits for: bounds the
/// metadata log's fsyncs (and Raft entries) that auto-commit causes, and
/// what a crash redelivers.
const COMMIT_PAUSE: Duration = Duration::from_millis(20);

/// The pending offsets and their committer.
pub struct OffsetCommits {
    inner: Arc<Inner>,
}

struct Inner {
    metadata: Arc<MetadataService>,
    queue: Mutex<Queue>,
    /// Someone waits in `settle`: commit without the pause.
    hurry: Notify,
    /// Bumped after every commit (applied or failed).
    rounds: watch::Sender<u64>,
}

#[derive(Default)]
struct Queue {
    pending: HashMap<PartitionKey, HashMap<ConsumerKey, Pending>>,
    /// A committer task is running (it takes what is pending in turn).
    committing: bool,
}

#[derive(Clone, Copy)]
struct Pending {
    offset: u64,
    /// In the commit under way.
    sent: bool,
}

impl OffsetCommits {
    pub fn new(metadata: Arc<MetadataService>) -> Self {
        Self {
            inner: Arc::new(Inner {
                metadata,
                queue: Mutex::new(Queue::default()),
                hurry: Notify::new(),
                rounds: watch::Sender::new(0),
            }),
        }
    }

    /// `consumer`'s offset in `partition` answered by a poll and not yet
    /// committed, if any: newer than the stored one.
    pub fn pending(&self, partition: PartitionKey, consumer: &ConsumerKey) -> Option<u64> {
        let queue = self.inner.lock();
        Some(queue.pending.get(&partition)?.get(consumer)?.offset)
    }

    /// Make `offset` `consumer`'s offset in `partition` and commit it
    /// behind. The caller holds the partition's `commit_lock`.
    pub fn store(&self, partition: PartitionKey, consumer: ConsumerKey, offset: u64) {
        let mut queue = self.inner.lock();
        queue.pending.entry(partition).or_default().insert(
            consumer,
            Pending {
                offset,
                sent: false,
            },
        );
        if !queue.committing {
            queue.committing = true;
            tokio::spawn(self.inner.clone().commit_pending());
        }
    }

    /// Wait until every offset pending in `partition` is committed (or has
    /// failed). The caller holds the partition's `commit_lock`, so none is
    /// added meanwhile.
    pub async fn settle(&self, partition: PartitionKey) {
        self.settle_where(|queue| queue.pending.contains_key(&partition))
            .await;
    }

    /// Wait until nothing is pending (shutdown; connections are closed).
    pub async fn settle_all(&self) {
        self.settle_where(|queue| !queue.pending.is_empty()).await;
    }

    async fn settle_where(&self, waiting_for: impl Fn(&Queue) -> bool) {
        let mut rounds = self.inner.rounds.subscribe();
        while waiting_for(&self.inner.lock()) {
            self.inner.hurry.notify_one();
            // Changed after the check: the next commit ends this wait.
            if rounds.changed().await.is_err() {
                return;
            }
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The offsets not yet sent, marked as sent; `None` (and the committer
    /// stops) when there are none.
    fn take_unsent(&self) -> Option<Vec<(PartitionKey, ConsumerKey, u64)>> {
        let mut queue = self.lock();
        let mut offsets = Vec::new();
        for (partition, consumers) in &mut queue.pending {
            for (consumer, pending) in consumers.iter_mut().filter(|(_, p)| !p.sent) {
                pending.sent = true;
                offsets.push((*partition, consumer.clone(), pending.offset));
            }
        }
        if offsets.is_empty() {
            queue.committing = false;
            return None;
        }
        Some(offsets)
    }

    /// The commit of `offsets` is over: they are stored, or failed and the
    /// stored ones stand. Newer offsets queued meanwhile stay pending.
    fn finish(&self, offsets: &[(PartitionKey, ConsumerKey, u64)]) {
        let mut queue = self.lock();
        for (partition, consumer, offset) in offsets {
            let Some(consumers) = queue.pending.get_mut(partition) else {
                continue;
            };
            if consumers.get(consumer).is_some_and(|p| p.offset == *offset) {
                consumers.remove(consumer);
            }
            if consumers.is_empty() {
                queue.pending.remove(partition);
            }
        }
        drop(queue);
        self.rounds.send_modify(|round| *round += 1);
    }

    /// Store `offsets` in the metadata: in one command, unless there is
    /// one alone, or unless a member of the cluster does not read that
    /// command yet (a rolling upgrade from a build without it) — then one
    /// command each, all at once. What fails is logged: its messages will
    /// be delivered again.
    async fn store(&self, offsets: &[(PartitionKey, ConsumerKey, u64)]) {
        let together = (offsets.len() > 1)
            .then(|| MetadataCommand::StoreConsumerOffsets {
                offsets: offsets.to_vec(),
            })
            .filter(|command| self.metadata.metadata_version() >= command.since_version());
        let (commands, offsets_each) = match together {
            Some(command) => (vec![command], offsets.len()),
            None => (
                offsets
                    .iter()
                    .map(
                        |(partition, consumer, offset)| MetadataCommand::StoreConsumerOffset {
                            partition: *partition,
                            consumer: consumer.clone(),
                            offset: *offset,
                        },
                    )
                    .collect(),
                1,
            ),
        };
        let writes = commands.into_iter().map(|c| self.metadata.write(c));
        let failures: Vec<_> = futures::future::join_all(writes)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect();
        if let Some(e) = failures.first() {
            tracing::warn!(
                "{} of {} auto-commit offset(s) not stored, their messages will be delivered \
                 again: {e}",
                failures.len() * offsets_each,
                offsets.len()
            );
        }
    }

    /// Commit what is pending, then what became pending meanwhile, until
    /// nothing is.
    async fn commit_pending(self: Arc<Self>) {
        loop {
            // Gather the polls of the next moments into this commit, unless
            // someone waits for it.
            let _ = tokio::time::timeout(COMMIT_PAUSE, self.hurry.notified()).await;
            let Some(offsets) = self.take_unsent() else {
                return;
            };
            self.store(&offsets).await;
            self.finish(&offsets);
        }
    }
}
