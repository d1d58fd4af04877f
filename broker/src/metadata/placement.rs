//! Where replicas go: pure choices over the metadata, used when
//! partitions are created (here, inside the deterministic apply step) and
//! when a broker is drained (`replication::plan`).
//!
//! Brokers may name a failure domain (`cluster.zone`; on Kubernetes the
//! pod's `topology.kubernetes.io/zone`). The replicas of one partition go
//! to different zones first, and only share a zone when there are fewer
//! zones than replicas. A broker without a zone counts as a zone of its
//! own, so with no zones at all placement only balances load.

use super::{MetadataState, PartitionKey};
use std::collections::{BTreeMap, BTreeSet};

/// A broker's failure domain as placement compares it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Domain<'a> {
    Zone(&'a str),
    /// No zone known: a domain of its own.
    Node(u32),
}

/// The failure domain of `node`.
pub fn domain(state: &MetadataState, node: u32) -> Domain<'_> {
    match state.nodes.get(&node) {
        Some(meta) if !meta.zone.is_empty() => Domain::Zone(&meta.zone),
        _ => Domain::Node(node),
    }
}

/// Take `count` brokers from `preferred` (best first), skipping brokers in
/// a domain that `taken` or an earlier pick already uses while others are
/// left; then, when there are fewer domains than `count`, the best of the
/// rest.
pub fn pick_spread(
    state: &MetadataState,
    preferred: &[u32],
    taken: &[u32],
    count: usize,
) -> Vec<u32> {
    let mut used: BTreeSet<Domain<'_>> = taken.iter().map(|n| domain(state, *n)).collect();
    let mut picked = Vec::with_capacity(count);
    for node in preferred {
        if picked.len() == count {
            return picked;
        }
        if used.insert(domain(state, *node)) {
            picked.push(*node);
        }
    }
    for node in preferred {
        if picked.len() == count {
            break;
        }
        if !picked.contains(node) {
            picked.push(*node);
        }
    }
    picked
}

/// Replica sets for `count` new partitions on `nodes`: each partition gets
/// `factor` distinct brokers in as many zones as possible, the least
/// loaded first (ties by id), so partitions and their leaders spread
/// evenly. The first broker of each set leads.
pub fn place(state: &MetadataState, nodes: &[u32], factor: u8, count: u32) -> Vec<Vec<u32>> {
    let factor = (factor.max(1) as usize).min(nodes.len());
    let mut replicas: BTreeMap<u32, usize> = nodes.iter().map(|n| (*n, 0)).collect();
    let mut leaders: BTreeMap<u32, usize> = nodes.iter().map(|n| (*n, 0)).collect();
    for (_, _, partition) in state.partitions() {
        for (i, node) in partition.replicas.iter().enumerate() {
            if let Some(count) = replicas.get_mut(node) {
                *count += 1;
            }
            if i == 0
                && let Some(count) = leaders.get_mut(node)
            {
                *count += 1;
            }
        }
    }
    (0..count)
        .map(|_| {
            let mut preferred: Vec<u32> = nodes.to_vec();
            preferred.sort_by_key(|n| (replicas[n], leaders[n], *n));
            let mut chosen = pick_spread(state, &preferred, &[], factor);
            // The least-led of the chosen brokers leads.
            let leader = *chosen
                .iter()
                .min_by_key(|n| (leaders[n], *n))
                .expect("at least one broker");
            chosen.retain(|n| *n != leader);
            chosen.insert(0, leader);
            for node in &chosen {
                *replicas.get_mut(node).expect("known") += 1;
            }
            *leaders.get_mut(&leader).expect("known") += 1;
            chosen
        })
        .collect()
}

/// New replica sets that give every partition of topic `(stream, topic)`
/// `factor` replicas (partitions that have it already are left out).
/// Growing keeps the current replicas and adds the least-loaded brokers,
/// in new zones first; shrinking keeps the leader, then in-sync replicas,
/// again in as many zones as possible. The order of the kept replicas is
/// kept, so the preferred leader stays first.
pub fn change_factor(
    state: &MetadataState,
    nodes: &[u32],
    (stream, topic): (u32, u32),
    factor: u8,
) -> Vec<(PartitionKey, Vec<u32>)> {
    let factor = factor as usize;
    let mut load: BTreeMap<u32, usize> = nodes.iter().map(|n| (*n, 0)).collect();
    for (_, _, partition) in state.partitions() {
        for node in &partition.replicas {
            if let Some(count) = load.get_mut(node) {
                *count += 1;
            }
        }
    }
    let Some(meta) = state.topic(stream, topic) else {
        return Vec::new();
    };
    let mut moves = Vec::new();
    for partition in &meta.partitions {
        let current = &partition.replicas;
        let target = if factor > current.len() {
            let mut candidates: Vec<u32> = nodes
                .iter()
                .copied()
                .filter(|n| !current.contains(n))
                .collect();
            candidates.sort_by_key(|n| (load[n], *n));
            let added = pick_spread(state, &candidates, current, factor - current.len());
            for node in &added {
                *load.get_mut(node).expect("a known broker") += 1;
            }
            current.iter().copied().chain(added).collect()
        } else if factor < current.len() {
            let mut keep_first: Vec<u32> = partition.leader.into_iter().collect();
            keep_first.extend(
                partition
                    .in_sync
                    .iter()
                    .filter(|r| Some(**r) != partition.leader),
            );
            keep_first.extend(current.iter().filter(|r| !partition.in_sync.contains(r)));
            keep_first.retain(|r| current.contains(r));
            let kept = pick_spread(state, &keep_first, &[], factor);
            for node in current.iter().filter(|r| !kept.contains(r)) {
                if let Some(count) = load.get_mut(node) {
                    *count -= 1;
                }
            }
            current
                .iter()
                .copied()
                .filter(|r| kept.contains(r))
                .collect()
        } else {
            continue;
        };
        moves.push(((stream, topic, partition.id), target));
    }
    moves
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::NodeMeta;

    fn with_zones(zones: &[&str]) -> MetadataState {
        let mut state = MetadataState::default();
        for (id, zone) in zones.iter().enumerate() {
            state.nodes.insert(
                id as u32,
                NodeMeta {
                    zone: zone.to_string(),
                    ..NodeMeta::default()
                },
            );
        }
        state
    }

    fn zones_of(state: &MetadataState, replicas: &[u32]) -> BTreeSet<String> {
        replicas
            .iter()
            .map(|n| state.nodes[n].zone.clone())
            .collect()
    }

    #[test]
    fn replicas_of_a_partition_go_to_different_zones_first() {
        // Six brokers, three zones, and the least-loaded order would
        // otherwise put 0, 1, 2 (two of them in zone a) together.
        let state = with_zones(&["a", "a", "b", "b", "c", "c"]);
        let nodes: Vec<u32> = (0..6).collect();
        for sets in [place(&state, &nodes, 3, 12), place(&state, &nodes, 2, 12)] {
            for replicas in &sets {
                assert_eq!(
                    zones_of(&state, replicas).len(),
                    replicas.len(),
                    "{replicas:?} shares a zone"
                );
            }
        }
    }

    #[test]
    fn fewer_zones_than_replicas_still_gives_distinct_brokers_in_every_zone() {
        let state = with_zones(&["a", "a", "b", "b"]);
        let nodes: Vec<u32> = (0..4).collect();
        for replicas in place(&state, &nodes, 3, 8) {
            let distinct: BTreeSet<u32> = replicas.iter().copied().collect();
            assert_eq!(distinct.len(), 3);
            assert_eq!(zones_of(&state, &replicas).len(), 2, "{replicas:?}");
        }
    }

    #[test]
    fn without_zones_replicas_and_leaders_spread_evenly() {
        let state = MetadataState::default();
        let nodes: Vec<u32> = (0..3).collect();
        let sets = place(&state, &nodes, 2, 6);
        let mut replicas = BTreeMap::<u32, usize>::new();
        let mut leaders = BTreeMap::<u32, usize>::new();
        for set in &sets {
            assert_ne!(set[0], set[1]);
            *leaders.entry(set[0]).or_default() += 1;
            for node in set {
                *replicas.entry(*node).or_default() += 1;
            }
        }
        assert_eq!(replicas.values().copied().collect::<Vec<_>>(), [4, 4, 4]);
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), [2, 2, 2]);
    }

    #[test]
    fn a_pick_avoids_the_zones_already_taken() {
        let state = with_zones(&["a", "b", "a", "c"]);
        // Replica 0 (zone a) stays; the best-loaded candidate 2 is in a too.
        assert_eq!(pick_spread(&state, &[2, 1, 3], &[0], 1), [1]);
        // Every candidate shares a taken zone: the best one still goes.
        assert_eq!(pick_spread(&state, &[2], &[0], 1), [2]);
    }

    #[test]
    fn changing_the_factor_adds_in_new_zones_and_removes_keeping_the_leader() {
        let mut state = with_zones(&["a", "a", "b", "c"]);
        state.insert_test_topic(
            0,
            0,
            vec![
                crate::metadata::PartitionMeta::for_test(0, &[0, 1], 1, &[0, 1]),
                crate::metadata::PartitionMeta::for_test(1, &[2, 3, 0], 3, &[3, 0]),
            ],
        );
        let nodes: Vec<u32> = (0..4).collect();
        let grown = change_factor(&state, &nodes, (0, 0), 3);
        // Partition 0 (zone a twice) gains a broker of b or c, the less
        // loaded first: 2 and 3 hold one replica each, so 2. Partition 1
        // has three already.
        assert_eq!(grown, vec![((0, 0, 0), vec![0, 1, 2])]);
        let shrunk = change_factor(&state, &nodes, (0, 0), 1);
        // The leader stays.
        assert_eq!(shrunk, vec![((0, 0, 0), vec![1]), ((0, 0, 1), vec![3])]);
        // Down to two: partition 0 is there already; partition 1 keeps its
        // leader 3 (zone c) and in-sync 0 (zone a), drops 2.
        assert_eq!(
            change_factor(&state, &nodes, (0, 0), 2),
            vec![((0, 0, 1), vec![3, 0])]
        );
    }
}
