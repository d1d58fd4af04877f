//! Leader election for partitions, run by the metadata leader: when a
//! partition's leader is down, the first in-sync replica that is alive
//! takes over in the next epoch. Only in-sync replicas are candidates —
//! they have every acknowledged message — so a partition whose in-sync
//! replicas are all down waits for one of them (no unclean election).

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

/// The elections `state` needs, given which brokers are down.
pub fn elections(state: &MetadataState, is_down: impl Fn(u32) -> bool) -> Vec<Election> {
    let mut needed = Vec::new();
    for (key, _, partition) in state.partitions() {
        let Some(leader) = partition.leader else {
            continue;
        };
        if !is_down(leader) {
            continue;
        }
        let successor = partition
            .replicas
            .iter()
            .copied()
            .find(|r| *r != leader && partition.in_sync.contains(r) && !is_down(*r));
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
        let needed = broker
            .metadata
            .read(|m| elections(m, |node| node != me && peers.is_down(node)));
        for election in needed {
            tracing::info!(
                partition = ?election.partition,
                epoch = election.epoch,
                leader = election.leader,
                in_sync = ?election.in_sync,
                "electing a partition leader (the leader is down)"
            );
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
                    .with_label_values(&["leader_down"])
                    .inc(),
                Err(e) => tracing::debug!("election not made: {e}"),
            }
        }
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
        PartitionMeta {
            id,
            created_at: 0,
            replicas: replicas.to_vec(),
            leader: Some(leader),
            leader_epoch: 4,
            in_sync: in_sync.to_vec(),
            incarnation: 1,
            offsets: Default::default(),
        }
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
        let elections = elections(&state, down);
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
        let partition_2 = super::elections(&state, both_down)
            .into_iter()
            .find(|e| e.partition == (0, 0, 2));
        assert_eq!(partition_2, None, "no unclean election");
    }
}
