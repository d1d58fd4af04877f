//! The background cleaner: applies each topic's `message_expiry` and
//! `max_topic_size` to its partitions. Only sealed segments are deleted,
//! never the active one, so retention never removes the newest messages.
//! A topic's size cap is shared equally by its partitions (as upstream).
//! The same loop, on the metadata leader, removes expired personal access
//! tokens (they are already refused at login; this only keeps the metadata
//! tidy).

use crate::broker::{Broker, now_micros};
use crate::storage::RemovedSegments;
use std::sync::Arc;
use std::time::Duration;

/// Apply retention once; returns the number of segments deleted.
pub fn clean_once(broker: &Broker, now_us: u64) -> usize {
    let mut deleted = 0;
    for (settings, partitions_count, partitions) in broker.topics_for_retention() {
        let expiry = settings.message_expiry_us;
        let share = match settings.max_topic_size {
            u64::MAX => None,
            max => Some(max / u64::from(partitions_count.max(1))),
        };
        for partition in partitions {
            // Taken out under the log's lock; deleted after it is released.
            let removed = {
                let mut log = partition.lock_log();
                (|| -> std::io::Result<Vec<RemovedSegments>> {
                    let mut removed = Vec::new();
                    if expiry != u64::MAX {
                        removed.push(log.remove_expired_segments(now_us, expiry)?);
                    }
                    if let Some(max) = share {
                        removed.push(log.remove_segments_over_size(max)?);
                    }
                    Ok(removed)
                })()
            };
            let result = removed.and_then(|removed| {
                removed
                    .into_iter()
                    .map(RemovedSegments::delete)
                    .sum::<std::io::Result<usize>>()
            });
            match result {
                Ok(n) => deleted += n,
                Err(e) => tracing::error!(partition = partition.id, "retention failed: {e}"),
            }
        }
    }
    deleted
}

/// Run the cleaner every `interval` until the task is dropped.
pub async fn run(broker: Arc<Broker>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let cleaner = broker.clone();
        let deleted = tokio::task::spawn_blocking(move || clean_once(&cleaner, now_micros()))
            .await
            .unwrap_or(0);
        broker
            .metrics
            .retention_deleted_segments
            .inc_by(deleted as u64);
        broker.metrics.retention_runs.inc();
        // Housekeeping of the replicated metadata is the leader's job.
        let tokens = if broker.metadata.is_leader() {
            broker.delete_expired_tokens().await
        } else {
            Ok(0)
        };
        match tokens {
            Ok(0) => {}
            Ok(n) => tracing::info!(tokens = n, "deleted expired personal access tokens"),
            Err(e) => tracing::error!("deleting expired personal access tokens failed: {e}"),
        }
        if deleted > 0 {
            tracing::info!(
                segments = deleted,
                "retention deleted expired or excess segments"
            );
        }
    }
}
