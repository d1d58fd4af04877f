//! Offsets of auto-commit polls, committed behind the reply and together.
//!
//! A poll with auto-commit is answered as soon as its messages are read;
//! its new offset is queued here with the partition's `commit_lock` still
//! held, and the guard is released only once the offset is applied on this
//! broker. Whoever needs that offset next — the next committing poll of the
//! partition, an offset request, shutdown — waits on the lock, so nobody
//! reads an offset older than a reply already sent, and no message is
//! given twice while the broker runs.
//!
//! One commit at a time goes to the metadata group, carrying every offset
//! queued while the previous one ran: under load many polls share one Raft
//! entry and one fsync of the metadata log. A commit that fails (a
//! lost majority, a crash before it lands) leaves the offsets where they
//! were and the messages are delivered again: auto-commit is at-least-once,
//! as upstream's, which keeps the offset in memory and stores it behind.

use crate::metadata::{ConsumerKey, MetadataCommand, MetadataService, PartitionKey};
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

/// The queue of offsets waiting to be committed, and its committer.
pub struct OffsetCommits {
    inner: Arc<Inner>,
}

struct Inner {
    metadata: Arc<MetadataService>,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    offsets: Vec<(PartitionKey, ConsumerKey, u64)>,
    /// The partitions' commit locks, released after the commit.
    guards: Vec<OwnedMutexGuard<()>>,
    /// A committer task is running (it takes what is queued in turn).
    committing: bool,
}

impl OffsetCommits {
    pub fn new(metadata: Arc<MetadataService>) -> Self {
        Self {
            inner: Arc::new(Inner {
                metadata,
                queue: Mutex::new(Queue::default()),
            }),
        }
    }

    /// Commit `offset` for `consumer` in `partition`, holding `guard` (the
    /// partition's commit lock) until it is applied here or has failed.
    pub fn store(
        &self,
        partition: PartitionKey,
        consumer: ConsumerKey,
        offset: u64,
        guard: OwnedMutexGuard<()>,
    ) {
        let mut queue = self.inner.lock();
        queue.offsets.push((partition, consumer, offset));
        queue.guards.push(guard);
        if !queue.committing {
            queue.committing = true;
            tokio::spawn(self.inner.clone().commit_queued());
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Commit what is queued, then what was queued meanwhile, until the
    /// queue is empty.
    async fn commit_queued(self: Arc<Self>) {
        loop {
            let (mut offsets, guards) = {
                let mut queue = self.lock();
                if queue.offsets.is_empty() {
                    queue.committing = false;
                    return;
                }
                (
                    std::mem::take(&mut queue.offsets),
                    std::mem::take(&mut queue.guards),
                )
            };
            let count = offsets.len();
            // One offset alone goes as the older single-offset command.
            let command = if count == 1 {
                let (partition, consumer, offset) = offsets.remove(0);
                MetadataCommand::StoreConsumerOffset {
                    partition,
                    consumer,
                    offset,
                }
            } else {
                MetadataCommand::StoreConsumerOffsets { offsets }
            };
            if let Err(e) = self.metadata.write(command).await {
                tracing::warn!(
                    "{count} auto-commit offset(s) not stored, their messages will be \
                     delivered again: {e}"
                );
            }
            drop(guards);
        }
    }
}
