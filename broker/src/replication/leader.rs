//! The leader's side: taking up an epoch, serving followers' fetches,
//! advancing the committed offset, waiting for a send to commit, and
//! keeping the in-sync set honest.

use super::Leading;
use crate::cluster::transport::Response;
use crate::error::{Error, Result};
use crate::metadata::{PartitionKey, PartitionMeta};
use crate::partitions::Partition;
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest a fetch waits for new messages before answering empty.
pub const FETCH_WAIT: Duration = Duration::from_millis(500);

/// What the leader needs to know about its partition, from the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub leader: Option<u32>,
    pub epoch: u32,
    pub replicas: Vec<u32>,
    pub in_sync: Vec<u32>,
    pub min_in_sync: u8,
    /// When each replica got its current copy (`PartitionMeta::assigned_at`).
    pub assigned_at: Vec<(u32, u64)>,
}

impl Role {
    pub fn of(meta: &PartitionMeta, min_in_sync: u8) -> Self {
        Self {
            leader: meta.leader,
            epoch: meta.leader_epoch,
            replicas: meta.replicas.clone(),
            in_sync: meta.in_sync.clone(),
            min_in_sync,
            assigned_at: meta
                .replicas
                .iter()
                .map(|r| (*r, meta.assigned_at(*r)))
                .collect(),
        }
    }

    /// When `replica` got its current copy; `None` if it holds none.
    pub fn assigned_at(&self, replica: u32) -> Option<u64> {
        self.assigned_at
            .iter()
            .find(|(r, _)| *r == replica)
            .map(|(_, at)| *at)
    }
}

/// Take up leadership of `partition` in `epoch` (once per epoch): record
/// that the epoch starts at the current log end, and start tracking the
/// followers afresh (each gets a full lag window to show up).
pub fn take_up(partition: &Partition, epoch: u32) -> Result<()> {
    if partition.replica.leading_epoch() == epoch {
        return Ok(());
    }
    let log = partition.lock_log();
    let mut leading = partition.replica.leading();
    if leading.epoch == epoch {
        return Ok(());
    }
    partition
        .replica
        .history()
        .assign(epoch, log.next_offset())?;
    leading.epoch = epoch;
    leading.taken_up_at = Some(Instant::now());
    leading.followers.clear();
    tracing::info!(partition = ?partition.key, epoch, from = log.next_offset(), "leading");
    Ok(())
}

/// Stop acting as leader (another broker leads now).
pub fn step_down(partition: &Partition) {
    let mut leading = partition.replica.leading();
    if leading.epoch != 0 {
        tracing::info!(partition = ?partition.key, epoch = leading.epoch, "no longer leading");
        leading.epoch = 0;
        leading.taken_up_at = None;
        leading.followers.clear();
    }
}

/// Raise the committed offset to what every in-sync replica has.
pub fn advance_committed(partition: &Partition, me: u32, in_sync: &[u32]) {
    let leading = partition.replica.leading();
    // The leader's own part: what it has made durable (a batch whose sync
    // is still running does not count yet).
    let mut committed = partition.replica.durable_end();
    for replica in in_sync.iter().filter(|r| **r != me) {
        let has = leading.followers.get(replica).map_or(0, |p| p.log_end);
        committed = committed.min(has);
    }
    drop(leading);
    partition.replica.commit_up_to(committed);
}

/// Wait until every message before `end` is committed. Fails when the
/// epoch the send was appended in ends first (its messages may or may not
/// be kept by the next leader) or at `deadline`.
pub async fn wait_committed(
    partition: &Partition,
    epoch: u32,
    end: u64,
    deadline: Instant,
) -> Result<()> {
    let mut committed = partition.replica.subscribe_committed();
    loop {
        if *committed.borrow_and_update() >= end {
            return Ok(());
        }
        if partition.replica.leading_epoch() != epoch {
            return Err(Error::PartitionUnavailable(format!(
                "the partition's leader changed before offsets below {end} were replicated; they may or may not be kept"
            )));
        }
        let changed = partition.replica.changed.notified();
        tokio::select! {
            result = committed.changed() => {
                if result.is_err() {
                    return Err(Error::PartitionUnavailable("the partition was removed".into()));
                }
            }
            _ = changed => {}
            _ = tokio::time::sleep_until(deadline.into()) => {
                return Err(Error::PartitionUnavailable(format!(
                    "offsets below {end} were not replicated to the in-sync replicas in time; they may still be"
                )));
            }
        }
    }
}

/// A follower's fetch request.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Fetch {
    pub partition: PartitionKey,
    pub incarnation: u64,
    pub epoch: u32,
    /// The follower's log end: it has everything before.
    pub offset: u64,
    /// The newest epoch in the follower's log (`None`: its log is empty).
    pub last_epoch: Option<u32>,
    pub max_bytes: u32,
    /// When the follower's copy was assigned to it
    /// (`PartitionMeta::assigned_at`; 0 from brokers that do not say).
    #[serde(default)]
    pub assigned_at: u64,
}

/// Serve a follower's fetch: check that both sides agree on the epoch and
/// that the follower's log agrees with this one, record its progress, then
/// send what it lacks (waiting up to [`FETCH_WAIT`] for new messages).
pub async fn serve_fetch(
    partition: Arc<Partition>,
    role: Role,
    me: u32,
    from: u32,
    fetch: Fetch,
) -> (Response, Bytes) {
    let refuse = |message: String| (Response::Failed { message }, Bytes::new());
    if role.leader != Some(me) || role.epoch != fetch.epoch {
        return (
            Response::NotPartitionLeader {
                leader: role.leader,
                epoch: role.epoch,
            },
            Bytes::new(),
        );
    }
    if partition.incarnation != fetch.incarnation {
        return refuse(format!(
            "partition {:?} is incarnation {}, not {}",
            fetch.partition, partition.incarnation, fetch.incarnation
        ));
    }
    if partition.replica.leading_epoch() != fetch.epoch {
        // Not taken up yet: the follower asks again shortly.
        return refuse("the leader is taking up its epoch".into());
    }
    // Only the copy the follower holds now counts: one it held before it
    // was removed from the partition and added back may still be sending,
    // and its progress is not the new, empty copy's.
    match role.assigned_at(from) {
        None => {
            return refuse(format!(
                "broker {from} holds no replica of partition {:?}",
                fetch.partition
            ));
        }
        Some(current) if fetch.assigned_at != 0 && fetch.assigned_at != current => {
            return refuse(format!(
                "broker {from}'s copy of partition {:?} dates from log index {}, its current one from {current}",
                fetch.partition, fetch.assigned_at
            ));
        }
        Some(_) => {}
    }
    // Where does the follower's log stop agreeing with this one?
    let log_end = partition.replica.log_end();
    let diverged = {
        let history = partition.replica.history();
        match fetch.last_epoch {
            Some(last) => match history.end_of(last, log_end) {
                Some((epoch, end)) if epoch != last || end < fetch.offset => Some((epoch, end)),
                Some(_) => None,
                // Older than anything here: keep only what is committed.
                None => Some((0, partition.replica.committed().min(fetch.offset))),
            },
            None if fetch.offset > log_end => Some((0, log_end)),
            None => None,
        }
    };
    if let Some((epoch, end_offset)) = diverged {
        return (Response::Diverged { epoch, end_offset }, Bytes::new());
    }
    record_progress(&partition, &role, me, from, fetch.offset);

    // Wait for something to send.
    let mut end = partition.replica.subscribe_log_end();
    if *end.borrow_and_update() <= fetch.offset {
        let _ = tokio::time::timeout(FETCH_WAIT, end.wait_for(|end| *end > fetch.offset)).await;
    }
    let read = {
        let partition = partition.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<(BytesMut, Vec<(u32, u64)>)> {
            let log = partition.lock_log();
            let mut records = BytesMut::new();
            log.read(
                fetch.offset,
                u32::MAX,
                fetch.max_bytes as usize,
                u64::MAX,
                &mut records,
            )?;
            let epochs = partition
                .replica
                .history()
                .entries()
                .iter()
                .map(|e| (e.epoch, e.start_offset))
                .collect();
            Ok((records, epochs))
        })
        .await
    };
    match read {
        Ok(Ok((records, epochs))) => (
            Response::Fetched {
                committed: partition.replica.committed(),
                epochs,
            },
            records.freeze(),
        ),
        Ok(Err(e)) => refuse(format!("reading the log: {e}")),
        Err(e) => refuse(format!("reading the log: {e}")),
    }
}

/// Note that follower `from` has everything before `offset`, and move the
/// committed offset on.
fn record_progress(partition: &Partition, role: &Role, me: u32, from: u32, offset: u64) {
    let log_end = partition.replica.log_end();
    partition
        .replica
        .leading()
        .record_fetch(from, offset, log_end, Instant::now());
    advance_committed(partition, me, &role.in_sync);
}

/// The in-sync set the leader should have now: followers that were caught
/// up within `max_lag` stay or join; the others leave. `None`: no change.
pub fn desired_in_sync(
    partition: &Partition,
    role: &Role,
    me: u32,
    max_lag: Duration,
) -> Option<Vec<u32>> {
    // A follower joins only with everything committed and everything this
    // leader had when it took up the epoch: after a restart the committed
    // offset starts at the log's first offset until followers report, so
    // it alone would let an empty replica in.
    let committed = partition.replica.committed();
    let epoch_start = partition
        .replica
        .history()
        .entries()
        .last()
        .map_or(0, |e| e.start_offset);
    let desired = in_sync_wanted(
        &partition.replica.leading(),
        role,
        me,
        max_lag,
        committed.max(epoch_start),
        Instant::now(),
    );
    let mut current = role.in_sync.clone();
    current.sort_unstable();
    let mut sorted = desired.clone();
    sorted.sort_unstable();
    (sorted != current).then_some(desired)
}

/// The replicas that belong in the in-sync set at `now`, by what the
/// leader has seen of them: those in it stay while they were level within
/// `max_lag` (or, not level yet in this epoch, during its first lag
/// window); the others join when they were level within `max_lag`, after
/// the partition last changed, and have everything before `must_have`.
fn in_sync_wanted(
    leading: &Leading,
    role: &Role,
    me: u32,
    max_lag: Duration,
    must_have: u64,
    now: Instant,
) -> Vec<u32> {
    let within_lag = |at: Instant| now.saturating_duration_since(at) <= max_lag;
    let in_grace = leading.taken_up_at.is_none_or(within_lag);
    role.replicas
        .iter()
        .copied()
        .filter(|replica| {
            if *replica == me {
                return true;
            }
            match leading.followers.get(replica) {
                // Never fetched in this epoch: keep it for one lag window
                // (taking up the epoch cleared the progress).
                None => role.in_sync.contains(replica) && in_grace,
                Some(progress) => {
                    let recent = progress.caught_up_at.is_some_and(within_lag);
                    if role.in_sync.contains(replica) {
                        recent || (progress.caught_up_at.is_none() && in_grace)
                    } else {
                        // Progress from before the partition last changed
                        // may belong to a replica that was removed and
                        // added back (its log empty now): it never counts.
                        recent
                            && progress.caught_up_at > leading.state_changed_at
                            && progress.log_end >= must_have
                    }
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAG: Duration = Duration::from_secs(10);

    /// Leader 0 of replicas 0, 1, 2 in an epoch taken up at `start`.
    fn role(replicas: &[u32], in_sync: &[u32]) -> Role {
        Role {
            leader: Some(0),
            epoch: 3,
            replicas: replicas.to_vec(),
            in_sync: in_sync.to_vec(),
            min_in_sync: 2,
            assigned_at: replicas.iter().map(|r| (*r, 1)).collect(),
        }
    }

    fn leading(start: Instant) -> Leading {
        Leading {
            epoch: 3,
            taken_up_at: Some(start),
            ..Default::default()
        }
    }

    #[test]
    fn a_level_follower_joins_and_one_that_falls_behind_leaves() {
        let t0 = Instant::now();
        let mut leading = leading(t0);
        leading.record_fetch(1, 100, 100, t0 + Duration::from_secs(1));
        leading.record_fetch(2, 40, 100, t0 + Duration::from_secs(1));
        let now = t0 + Duration::from_secs(2);
        let wanted = in_sync_wanted(&leading, &role(&[0, 1, 2], &[0]), 0, LAG, 100, now);
        assert_eq!(wanted, vec![0, 1], "2 has not caught up");

        // Both in the set; 2 never level again within the lag window.
        leading.record_fetch(2, 100, 100, now);
        let later = now + LAG + Duration::from_secs(1);
        leading.record_fetch(1, 150, 150, later);
        let wanted = in_sync_wanted(&leading, &role(&[0, 1, 2], &[0, 1, 2]), 0, LAG, 150, later);
        assert_eq!(wanted, vec![0, 1]);
    }

    #[test]
    fn a_follower_not_yet_seen_in_this_epoch_keeps_its_place_for_one_lag_window() {
        let t0 = Instant::now();
        let leading = leading(t0);
        let role = role(&[0, 1, 2], &[0, 1, 2]);
        let soon = t0 + LAG / 2;
        assert_eq!(
            in_sync_wanted(&leading, &role, 0, LAG, 0, soon),
            vec![0, 1, 2]
        );
        let late = t0 + LAG * 2;
        assert_eq!(in_sync_wanted(&leading, &role, 0, LAG, 0, late), vec![0]);
    }

    #[test]
    fn a_follower_joins_only_with_everything_committed() {
        let t0 = Instant::now();
        let mut leading = leading(t0);
        // Level with a log that ends before what must be had (the leader's
        // log was cut back, say): not enough.
        leading.record_fetch(1, 80, 80, t0 + Duration::from_secs(1));
        let now = t0 + Duration::from_secs(2);
        let wanted = in_sync_wanted(&leading, &role(&[0, 1], &[0]), 0, LAG, 100, now);
        assert_eq!(wanted, vec![0]);
    }

    /// The data loss found by `scripts/membership-churn.sh`: replica 2 is
    /// moved away and back within one leader epoch; its new, empty log
    /// must not join on the progress its old one made.
    #[test]
    fn a_replica_removed_and_added_back_does_not_join_on_its_old_progress() {
        let t0 = Instant::now();
        let mut leading = leading(t0);
        let secs = |s: u64| t0 + Duration::from_secs(s);
        leading.record_fetch(2, 500, 500, secs(1));
        // Removed from the replicas, then added back: the partition's
        // metadata changed twice.
        leading.state_changed_at = Some(secs(2));
        leading.state_changed_at = Some(secs(3));
        let back = role(&[0, 1, 2], &[0, 1]);
        assert_eq!(
            in_sync_wanted(&leading, &back, 0, LAG, 500, secs(4)),
            vec![0, 1],
            "stale progress let the re-added replica in"
        );
        // Its new log fetches from the start: behind, not level.
        leading.record_fetch(2, 0, 500, secs(5));
        assert_eq!(
            in_sync_wanted(&leading, &back, 0, LAG, 500, secs(5)),
            vec![0, 1]
        );
        // Once it has caught up for real, it joins.
        leading.record_fetch(2, 500, 500, secs(6));
        assert_eq!(
            in_sync_wanted(&leading, &back, 0, LAG, 500, secs(6)),
            vec![0, 1, 2]
        );
    }
}
