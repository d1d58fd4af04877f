//! Partition decisions the metadata leader takes:
//! - election: when a partition's leader is down, the first in-sync
//!   replica that is alive takes over in the next epoch — the first with
//!   room on its disk if there is one (a broker running low would hand
//!   leadership on at once, `low_space`). Only in-sync replicas are
//!   candidates — they have every acknowledged message — so a partition
//!   whose in-sync replicas are all down waits for one of them (no unclean
//!   election);
//! - reassignment: once every new replica is in sync, leadership moves to
//!   one of them if needed (one with room first), then the old replicas
//!   are dropped.

use crate::broker::Broker;
use crate::metadata::{MetadataCommand, MetadataState, PartitionKey};
use std::sync::Arc;
use std::time::Duration;

const INTERVAL: Duration = Duration::from_millis(100);

/// An election to make: partition, its current epoch, new leader, new
/// in-sync set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Election {
    pub partition: PartitionKey,
    pub epoch: u32,
    pub leader: u32,
    pub in_sync: Vec<u32>,
}

/// The elections `state` needs, given which brokers are down, which may
/// lead (alive, and registered since their last restart: a broker that
/// restarted has not yet been fenced if it lost its disk) and which have
/// room.
pub fn elections(
    state: &MetadataState,
    is_down: impl Fn(u32) -> bool,
    may_lead: impl Fn(u32) -> bool,
    has_room: impl Fn(u32) -> bool,
) -> Vec<Election> {
    let mut needed = Vec::new();
    for (key, _, partition) in state.partitions() {
        let Some(leader) = partition.leader else {
            continue;
        };
        if !is_down(leader) {
            continue;
        }
        let successor = first_with_room(
            partition
                .replicas
                .iter()
                .copied()
                .filter(|r| *r != leader && partition.in_sync.contains(r) && may_lead(*r)),
            &has_room,
        );
        if let Some(successor) = successor {
            needed.push(Election {
                partition: key,
                epoch: partition.leader_epoch,
                leader: successor,
                in_sync: partition
                    .in_sync
                    .iter()
                    .copied()
                    .filter(|r| *r != leader)
                    .collect(),
            });
        }
    }
    needed
}

/// The first of `candidates` with room on its disk, else the first.
fn first_with_room(
    candidates: impl Iterator<Item = u32> + Clone,
    has_room: impl Fn(u32) -> bool,
) -> Option<u32> {
    candidates
        .clone()
        .find(|r| has_room(*r))
        .or_else(|| candidates.clone().next())
}

/// The next step of every reassignment in progress, given which brokers
/// may lead and which have room: move leadership onto a new replica, or
/// complete it.
pub fn reassignment_steps(
    state: &MetadataState,
    may_lead: impl Fn(u32) -> bool,
    has_room: impl Fn(u32) -> bool,
) -> Vec<MetadataCommand> {
    let mut steps = Vec::new();
    for (key, _, partition) in state.partitions() {
        let Some(target) = &partition.reassigning else {
            continue;
        };
        if !target.iter().all(|r| partition.in_sync.contains(r)) {
            continue; // still copying
        }
        if partition.leader.is_some_and(|l| target.contains(&l)) {
            steps.push(MetadataCommand::CompleteReassignment {
                partition: key,
                epoch: partition.leader_epoch,
            });
        } else if let Some(leader) =
            first_with_room(target.iter().copied().filter(|r| may_lead(*r)), &has_room)
        {
            steps.push(MetadataCommand::ElectLeader {
                partition: key,
                epoch: partition.leader_epoch,
                leader,
                in_sync: partition.in_sync.clone(),
            });
        }
    }
    steps
}

/// Whether `node` may take a partition's leadership now, as broker `me`
/// sees it: alive, and registered since its last restart (a broker that
/// restarted has not yet been fenced if it lost its disk).
pub fn may_lead(state: &MetadataState, me: u32, peers: &crate::cluster::Peers, node: u32) -> bool {
    node == me
        || (!peers.is_down(node)
            && state.nodes.get(&node).map(|n| n.epoch) == Some(peers.status(node).epoch))
}

/// Whether `node`'s data directory has room, as broker `me` knows: its
/// own directly, a peer's from its last ping or pong.
pub fn has_room(broker: &Broker, peers: &crate::cluster::Peers, node: u32) -> bool {
    if node == broker.node_id() {
        !broker.space.is_low()
    } else {
        !peers.status(node).low_on_space
    }
}

/// Elect new leaders whenever this broker leads the metadata group (runs
/// until dropped).
pub async fn run(broker: Arc<Broker>) {
    let Some(peers) = broker.peers.clone() else {
        return;
    };
    let me = broker.node_id();
    let mut ticker = tokio::time::interval(INTERVAL);
    loop {
        ticker.tick().await;
        if !broker.metadata.is_leader() {
            continue;
        }
        let is_down = |node| node != me && peers.is_down(node);
        let has_room = |node| has_room(&broker, &peers, node);
        let (needed, steps) = broker.metadata.read(|m| {
            let may_lead = |node: u32| may_lead(m, me, &peers, node);
            (
                elections(m, is_down, may_lead, has_room),
                reassignment_steps(m, may_lead, has_room),
            )
        });
        for step in steps {
            tracing::info!(?step, "reassignment step");
            let reason = match step {
                MetadataCommand::ElectLeader { .. } => "reassignment",
                _ => "",
            };
            match broker.metadata.write(step).await {
                Ok(_) if !reason.is_empty() => broker
                    .metrics
                    .partition_elections
                    .with_label_values(&[reason])
                    .inc(),
                Ok(_) => {}
                Err(e) => tracing::debug!("reassignment step not taken: {e}"),
            }
        }
        for election in needed {
            tracing::info!(
                partition = ?election.partition,
                epoch = election.epoch,
                leader = election.leader,
                in_sync = ?election.in_sync,
                "electing a partition leader (the leader is down)"
            );
            elect(&broker, election, "leader_down").await;
        }
    }
}

/// Make `election` through the metadata group, counted under `reason`. Not
/// made if the partition changed epoch meanwhile (someone else decided) or
/// the group did not commit it in time: the caller looks again later.
pub async fn elect(broker: &Broker, election: Election, reason: &str) {
    let command = MetadataCommand::ElectLeader {
        partition: election.partition,
        epoch: election.epoch,
        leader: election.leader,
        in_sync: election.in_sync,
    };
    match broker.metadata.write(command).await {
        Ok(_) => broker
            .metrics
            .partition_elections
            .with_label_values(&[reason])
            .inc(),
        Err(e) => tracing::debug!(reason, "election not made: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::PartitionMeta;

    fn state_with(partitions: Vec<PartitionMeta>) -> MetadataState {
        let mut state = MetadataState::default();
        state.insert_test_topic(0, 0, partitions);
        state
    }

    fn partition(id: u32, replicas: &[u32], leader: u32, in_sync: &[u32]) -> PartitionMeta {
        PartitionMeta::for_test(id, replicas, leader, in_sync)
    }

    #[test]
    fn only_a_live_in_sync_replica_takes_over() {
        let state = state_with(vec![
            partition(0, &[0, 1, 2], 0, &[0, 1, 2]),
            partition(1, &[1, 2, 0], 1, &[1, 2, 0]),
            // Replica 2 is behind: only 1 may lead, and 1 is down too.
            partition(2, &[0, 2, 1], 0, &[0, 1]),
            partition(3, &[0, 1, 2], 0, &[0, 2]),
        ]);
        let down = |node| node == 0;
        let room = |_| true;
        let elections = elections(&state, down, |node| !down(node), room);
        assert_eq!(
            elections,
            vec![
                Election {
                    partition: (0, 0, 0),
                    epoch: 4,
                    leader: 1,
                    in_sync: vec![1, 2]
                },
                Election {
                    partition: (0, 0, 2),
                    epoch: 4,
                    leader: 1,
                    in_sync: vec![1]
                },
                Election {
                    partition: (0, 0, 3),
                    epoch: 4,
                    leader: 2,
                    in_sync: vec![2]
                },
            ]
        );
        let both_down = |node| node == 0 || node == 1;
        let partition_2 = super::elections(&state, both_down, |node| !both_down(node), room)
            .into_iter()
            .find(|e| e.partition == (0, 0, 2));
        assert_eq!(partition_2, None, "no unclean election");
        // A replica that restarted and has not registered again may not
        // lead yet: the next in-sync one does.
        let first = super::elections(&state, down, |node| node == 2, room)
            .into_iter()
            .find(|e| e.partition == (0, 0, 0))
            .unwrap();
        assert_eq!(first.leader, 2);
    }

    #[test]
    fn a_replica_with_room_is_elected_before_one_running_low() {
        let state = state_with(vec![
            partition(0, &[0, 1, 2], 0, &[0, 1, 2]),
            partition(1, &[0, 1], 0, &[0, 1]),
        ]);
        let down = |node| node == 0;
        let low = |node| node == 1;
        let leaders: Vec<u32> = elections(&state, down, |node| !down(node), |node| !low(node))
            .iter()
            .map(|e| e.leader)
            .collect();
        // Broker 1 comes first, but runs low: 2 takes partition 0; for
        // partition 1 broker 1 is the only candidate, and serves reads.
        assert_eq!(leaders, vec![2, 1]);
    }
}
