//! Pure decisions about replica sets, for the admin API: whether
//! restarting a broker now is safe, and where a drained broker's replicas
//! go.

use crate::metadata::{MetadataState, PartitionKey, placement};
use std::collections::BTreeMap;

/// What restarting a broker now would do to the partitions it holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RestartImpact {
    /// Why restarting it now would make a replicated partition refuse
    /// sends or lose its leader (empty: safe). These clear once replicas
    /// catch up.
    pub blockers: Vec<String>,
    /// Partitions with no other replica: unavailable while it restarts,
    /// whenever that is (their topic chose one replica), so they never
    /// block a restart.
    pub unreplicated: Vec<String>,
}

/// What restarting `node` now would do. `is_down` says which other
/// brokers are down already.
pub fn restart_impact(
    state: &MetadataState,
    node: u32,
    is_down: impl Fn(u32) -> bool,
) -> RestartImpact {
    let mut impact = RestartImpact::default();
    for ((s, t, p), topic, partition) in state.partitions() {
        if !partition.replicas.contains(&node) {
            continue;
        }
        let name = format!("partition {p} of topic {t} in stream {s}");
        if partition.replicas.len() == 1 {
            impact
                .unreplicated
                .push(format!("{name} has no other replica"));
            continue;
        }
        let others_in_sync = partition
            .in_sync
            .iter()
            .filter(|r| **r != node && !is_down(**r))
            .count();
        if partition.leader == Some(node) && others_in_sync == 0 {
            impact.blockers.push(format!(
                "{name} is led here and no other replica is in sync"
            ));
        } else if partition.in_sync.contains(&node)
            && others_in_sync < topic.settings.min_in_sync as usize
        {
            impact.blockers.push(format!(
                "{name} would have {others_in_sync} in-sync replicas, fewer than its minimum of {}",
                topic.settings.min_in_sync
            ));
        }
    }
    impact
}

/// New replica sets that move every replica off `node`: each goes to the
/// broker holding the fewest replicas that does not hold one of that
/// partition yet, in a zone the partition's other replicas are not in when
/// there is one (the new one takes the drained one's place in the list, so
/// a drained preferred leader is replaced as preferred leader).
pub fn drain(
    state: &MetadataState,
    node: u32,
    nodes: &[u32],
) -> Result<Vec<(PartitionKey, Vec<u32>)>, String> {
    let mut load: BTreeMap<u32, usize> = nodes
        .iter()
        .filter(|n| **n != node)
        .map(|n| (*n, 0))
        .collect();
    for (_, _, partition) in state.partitions() {
        for replica in &partition.replicas {
            if let Some(count) = load.get_mut(replica) {
                *count += 1;
            }
        }
    }
    let mut moves = Vec::new();
    for ((s, t, p), _, partition) in state.partitions() {
        if !partition.replicas.contains(&node) {
            continue;
        }
        if partition.reassigning.is_some() {
            return Err(format!(
                "partition {p} of topic {t} in stream {s} is being reassigned already"
            ));
        }
        let mut candidates: Vec<u32> = load
            .keys()
            .copied()
            .filter(|n| !partition.replicas.contains(n))
            .collect();
        candidates.sort_by_key(|n| (load[n], *n));
        let staying: Vec<u32> = partition
            .replicas
            .iter()
            .copied()
            .filter(|r| *r != node)
            .collect();
        let to = placement::pick_spread(state, &candidates, &staying, 1)
            .first()
            .copied()
            .ok_or_else(|| {
                format!(
                    "partition {p} of topic {t} in stream {s} has nowhere to go: every other broker holds it"
                )
            })?;
        *load.get_mut(&to).expect("a known broker") += 1;
        let replicas = partition
            .replicas
            .iter()
            .map(|r| if *r == node { to } else { *r })
            .collect();
        moves.push(((s, t, p), replicas));
    }
    Ok(moves)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::PartitionMeta;

    fn partition(id: u32, replicas: &[u32], leader: u32, in_sync: &[u32]) -> PartitionMeta {
        PartitionMeta::for_test(id, replicas, leader, in_sync)
    }

    #[test]
    fn a_restart_is_unsafe_when_a_partition_would_drop_below_its_minimum() {
        // Topic of factor 3, minimum 2 (see insert_test_topic).
        let mut state = MetadataState::default();
        state.insert_test_topic(
            0,
            0,
            vec![
                partition(0, &[0, 1, 2], 0, &[0, 1, 2]),
                partition(1, &[1, 2, 0], 1, &[1, 0]),
            ],
        );
        let nobody_down = |_| false;
        assert!(restart_impact(&state, 2, nobody_down).blockers.is_empty());
        // Partition 1 has in sync only 1 and 0: restarting 0 leaves one.
        let blockers = restart_impact(&state, 0, nobody_down).blockers;
        assert_eq!(blockers.len(), 1, "{blockers:?}");
        assert!(blockers[0].contains("partition 1"), "{blockers:?}");
        // With 1 down already, restarting 2 leaves partition 0 with one.
        assert_eq!(restart_impact(&state, 2, |n| n == 1).blockers.len(), 1);
        // A partition of one replica never blocks: it is down during any
        // restart of its broker, and said so.
        let mut single = MetadataState::default();
        single.insert_test_topic(0, 0, vec![partition(0, &[1], 1, &[1])]);
        let impact = restart_impact(&single, 1, nobody_down);
        assert!(impact.blockers.is_empty());
        assert_eq!(impact.unreplicated.len(), 1);
    }

    #[test]
    fn draining_moves_every_replica_to_the_least_loaded_broker_without_doubling_up() {
        let mut state = MetadataState::default();
        state.insert_test_topic(
            0,
            0,
            vec![
                partition(0, &[0, 1], 0, &[0, 1]),
                partition(1, &[1, 2], 1, &[1, 2]),
                partition(2, &[0, 2], 2, &[0, 2]),
            ],
        );
        let moves = drain(&state, 0, &[0, 1, 2, 3]).unwrap();
        assert_eq!(
            moves,
            vec![((0, 0, 0), vec![3, 1]), ((0, 0, 2), vec![3, 2])],
            "broker 3 holds nothing, so it takes both (never twice one partition)"
        );
        // Without a spare broker each goes where the other replica is not.
        assert_eq!(
            drain(&state, 0, &[0, 1, 2]).unwrap(),
            vec![((0, 0, 0), vec![2, 1]), ((0, 0, 2), vec![1, 2])]
        );
        // Three replicas on three brokers: nowhere to go.
        let mut full = MetadataState::default();
        full.insert_test_topic(0, 0, vec![partition(0, &[0, 1, 2], 0, &[0, 1, 2])]);
        assert!(drain(&full, 0, &[0, 1, 2]).is_err());
    }

    #[test]
    fn a_drained_replica_goes_to_a_zone_its_partition_is_not_in_yet() {
        let mut state = MetadataState::default();
        for (id, zone) in ["a", "b", "b", "a"].iter().enumerate() {
            state.nodes.insert(
                id as u32,
                crate::metadata::NodeMeta {
                    zone: zone.to_string(),
                    ..Default::default()
                },
            );
        }
        // Replicas in zones a (0) and b (1). Broker 2 (b) holds less than
        // broker 3 (a), but only 3 keeps the partition in two zones.
        state.insert_test_topic(
            0,
            0,
            vec![
                partition(0, &[0, 1], 0, &[0, 1]),
                partition(1, &[3, 1], 3, &[3, 1]),
            ],
        );
        assert_eq!(
            drain(&state, 0, &[0, 1, 2, 3]).unwrap(),
            vec![((0, 0, 0), vec![3, 1])]
        );
    }
}
