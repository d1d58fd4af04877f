//! One task per local replica of a replicated partition: as follower it
//! fetches from the leader; as leader it keeps the in-sync set honest.
//! The role comes from the metadata and changes when it does.

use super::follower::{Round, fetch_once};
use super::leader::{self, Role};
use crate::broker::Broker;
use crate::metadata::{MetadataCommand, PartitionKey};
use crate::partitions::Partition;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often the supervisor looks for partitions to start or stop.
const SCAN_INTERVAL: Duration = Duration::from_millis(200);
/// How often a leader reviews its in-sync set; also the pause after a
/// failed fetch.
const TICK: Duration = Duration::from_millis(100);

/// Keep one replication task per local partition replica (runs until
/// dropped).
pub async fn run(broker: Arc<Broker>) {
    // By copy: a partition removed from this broker and added back is a
    // new copy with a task of its own.
    let mut tasks: HashMap<(PartitionKey, u64, u64), JoinHandle<()>> = HashMap::new();
    let mut ticker = tokio::time::interval(SCAN_INTERVAL);
    loop {
        ticker.tick().await;
        let local = broker.partitions.all();
        tasks.retain(|(key, incarnation, assigned_at), task| {
            let alive = !task.is_finished()
                && local.iter().any(|p| {
                    p.key == *key && p.incarnation == *incarnation && p.assigned_at == *assigned_at
                });
            if !alive {
                task.abort();
            }
            alive
        });
        for partition in local {
            tasks
                .entry((partition.key, partition.incarnation, partition.assigned_at))
                .or_insert_with(|| tokio::spawn(replicate(broker.clone(), partition)));
        }
    }
}

/// The partition's role here, by the metadata (`None`: it no longer exists
/// in this incarnation, or this copy is no longer this broker's).
pub fn role(broker: &Broker, partition: &Partition) -> Option<Role> {
    let me = broker.node_id();
    broker.metadata.read(|m| {
        let topic = m
            .streams
            .get(&partition.key.0)?
            .topics
            .get(&partition.key.1)?;
        let meta = topic.partitions.get(partition.key.2 as usize)?;
        (meta.incarnation == partition.incarnation
            && meta.replicas.contains(&me)
            && meta.assigned_at(me) == partition.assigned_at)
            .then(|| Role::of(meta, topic.settings.min_in_sync))
    })
}

async fn replicate(broker: Arc<Broker>, partition: Arc<Partition>) {
    let me = broker.node_id();
    let max_lag = broker.replica_max_lag();
    loop {
        // Stop as soon as this copy is not the one the registry holds (the
        // partition was removed here, and maybe added back as a new copy).
        let current = broker
            .partitions
            .get(partition.key)
            .is_some_and(|p| Arc::ptr_eq(&p, &partition));
        let Some(role) = role(&broker, &partition).filter(|_| current) else {
            return;
        };
        match role.leader {
            Some(leader) if leader == me => {
                if broker.is_ready() {
                    if let Err(e) = leader::take_up(&partition, role.epoch) {
                        tracing::warn!(partition = ?partition.key, "cannot take up leadership: {e}");
                    } else {
                        leader::advance_committed(&partition, me, &role.in_sync);
                        review_in_sync(&broker, &partition, &role, me, max_lag).await;
                    }
                }
                pause(&partition, TICK).await;
            }
            Some(leader) => {
                leader::step_down(&partition);
                let Some(peers) = broker.peers.as_ref() else {
                    return;
                };
                match fetch_once(&partition, peers, &broker.space, leader, role.epoch).await {
                    Round::Appended(_) | Round::Truncated(_) => {}
                    Round::Retry(why) => {
                        tracing::debug!(partition = ?partition.key, leader, "fetch: {why}");
                        pause(&partition, TICK).await;
                    }
                }
            }
            None => {
                leader::step_down(&partition);
                pause(&partition, TICK).await;
            }
        }
    }
}

/// Shrink or grow the in-sync set through the metadata group when the
/// followers' progress says so.
async fn review_in_sync(
    broker: &Broker,
    partition: &Partition,
    role: &Role,
    me: u32,
    max_lag: Duration,
) {
    let Some(in_sync) = leader::desired_in_sync(partition, role, me, max_lag) else {
        return;
    };
    tracing::info!(partition = ?partition.key, epoch = role.epoch, from = ?role.in_sync, to = ?in_sync, "changing the in-sync replicas");
    let command = MetadataCommand::ChangeInSync {
        partition: partition.key,
        epoch: role.epoch,
        in_sync,
    };
    if let Err(e) = broker.metadata.write(command).await {
        tracing::debug!(partition = ?partition.key, "in-sync change not made: {e}");
    }
}

/// Wait for `timeout` or a change of the partition's metadata.
async fn pause(partition: &Partition, timeout: Duration) {
    let _ = tokio::time::timeout(timeout, partition.replica.changed.notified()).await;
}
