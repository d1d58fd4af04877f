//! The follower's side: fetch from the leader, cut a divergent tail,
//! append the leader's batches unchanged.

use super::leader::{FETCH_WAIT, Fetch};
use crate::cluster::Peers;
use crate::cluster::transport::{Lane, Request, Response};
use crate::error::SaveKind;
use crate::partitions::Partition;
use crate::storage::space::DataDirectory;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// Most bytes one fetch brings.
const FETCH_MAX_BYTES: u32 = 8 << 20;

/// What one fetch round did.
#[derive(Debug, PartialEq, Eq)]
pub enum Round {
    /// Appended this many messages (maybe 0: nothing new).
    Appended(u64),
    /// Cut the log back to this offset; fetch again.
    Truncated(u64),
    /// The leader is not ready or not the leader: look at the metadata
    /// again after a pause.
    Retry(String),
}

/// One fetch from `leader` in `epoch`.
pub async fn fetch_once(
    partition: &Arc<Partition>,
    peers: &Peers,
    space: &Arc<DataDirectory>,
    leader: u32,
    epoch: u32,
) -> Round {
    let fetch = {
        let log = partition.lock_log();
        Fetch {
            partition: partition.key,
            incarnation: partition.incarnation,
            epoch,
            offset: log.next_offset(),
            last_epoch: partition.replica.history().latest().map(|e| e.epoch),
            max_bytes: FETCH_MAX_BYTES,
            assigned_at: partition.assigned_at,
        }
    };
    let reply = peers
        .call(
            leader,
            Lane::Data,
            &Request::Fetch(fetch.clone()),
            Bytes::new(),
            FETCH_WAIT + Duration::from_secs(2),
        )
        .await;
    match reply {
        Ok((Response::Fetched { committed, epochs }, records)) => {
            let partition = partition.clone();
            let space = space.clone();
            let appended = tokio::task::spawn_blocking(move || -> crate::error::Result<u64> {
                // A follower keeps the same reserve as a leader: it falls
                // out of the in-sync set rather than fill its disk.
                if !records.is_empty() {
                    space.admit(SaveKind::Messages, records.len() as u64)?;
                }
                let mut log = partition.lock_log();
                if log.next_offset() != fetch.offset {
                    // Cut or purged meanwhile: this answer is stale.
                    return Ok(0);
                }
                let appended = log
                    .append_replicated(&records)
                    .map_err(|e| space.write_failed(SaveKind::Messages, e))?;
                // Label what is now stored with the leader's epochs. A crash
                // before this leaves newer messages under an older epoch:
                // the next fetch then finds them divergent and fetches them
                // again, which is safe.
                let mut history = partition.replica.history();
                for (epoch, start) in epochs {
                    if start <= log.next_offset() {
                        history.assign(epoch, start)?;
                    }
                }
                drop(history);
                partition.replica.set_log_end(log.next_offset());
                partition
                    .replica
                    .commit_up_to(committed.min(log.next_offset()));
                Ok(appended)
            })
            .await;
            match appended {
                Ok(Ok(count)) => Round::Appended(count),
                Ok(Err(e)) => Round::Retry(format!("appending from the leader: {e}")),
                Err(e) => Round::Retry(format!("appending from the leader: {e}")),
            }
        }
        Ok((Response::Diverged { epoch, end_offset }, _)) => {
            let partition = partition.clone();
            let cut = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
                let mut log = partition.lock_log();
                let end = log.truncate(end_offset)?;
                let mut history = partition.replica.history();
                history.truncate(end)?;
                // Epochs newer than the leader's answer are not in its log;
                // the next fetch checks the epoch before them.
                history.forget_newer_than(epoch)?;
                partition.replica.set_log_end(end);
                Ok(end)
            })
            .await;
            match cut {
                Ok(Ok(end)) => {
                    tracing::info!(partition = ?fetch.partition, leader, end, "cut off a tail the leader does not have");
                    Round::Truncated(end)
                }
                Ok(Err(e)) => Round::Retry(format!("cutting the log: {e}")),
                Err(e) => Round::Retry(format!("cutting the log: {e}")),
            }
        }
        Ok((Response::NotPartitionLeader { leader, epoch }, _)) => Round::Retry(format!(
            "not the leader (the leader's metadata says leader {leader:?}, epoch {epoch})"
        )),
        Ok((other, _)) => Round::Retry(format!("unexpected answer to a fetch: {other:?}")),
        Err(e) => Round::Retry(format!("fetch from broker {leader}: {e}")),
    }
}
