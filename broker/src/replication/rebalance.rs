//! Rebalancing: new replica sets that spread the partitions' replicas and
//! preferred leaders evenly over the brokers (after brokers were added, or
//! came back empty), moving as few replicas as possible.
//!
//! A pure function, so its promises are property tests:
//! - every broker ends within one replica of every other (±1 of the mean),
//!   and within one preferred leader;
//! - the number of replicas moved is the least any plan needs: the larger
//!   of the replicas above the mean's ceiling and the places below its
//!   floor;
//! - no partition gets two replicas on one broker, and no move takes a
//!   partition into fewer zones than it was in.
//!
//! Replicas move one at a time from the fullest broker to the emptiest
//! (each such move shrinks both the excess and the shortfall); preferred
//! leaders then move along chains of partitions sharing brokers, which
//! changes only the order of a replica set, not where data lives.

use crate::metadata::PartitionKey;
use crate::metadata::placement::Domain;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Where one partition's replicas are; the first is its preferred leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub partition: PartitionKey,
    pub replicas: Vec<u32>,
}

/// The replica sets that change (in the same order as `assignments`).
pub fn rebalance<'a>(
    assignments: &[Assignment],
    nodes: &[u32],
    domain: impl Fn(u32) -> Domain<'a>,
) -> Vec<Assignment> {
    let mut planned: Vec<Assignment> = assignments.to_vec();
    balance_replicas(&mut planned, nodes, &domain);
    balance_leaders(&mut planned, nodes);
    planned
        .into_iter()
        .zip(assignments)
        .filter(|(new, old)| new.replicas != old.replicas)
        .map(|(new, _)| new)
        .collect()
}

fn zones<'a>(replicas: &[u32], domain: &impl Fn(u32) -> Domain<'a>) -> usize {
    replicas
        .iter()
        .map(|r| domain(*r))
        .collect::<BTreeSet<_>>()
        .len()
}

fn balance_replicas<'a>(
    planned: &mut [Assignment],
    nodes: &[u32],
    domain: &impl Fn(u32) -> Domain<'a>,
) {
    let mut load: BTreeMap<u32, usize> = nodes.iter().map(|n| (*n, 0)).collect();
    for a in planned.iter() {
        for r in &a.replicas {
            if let Some(count) = load.get_mut(r) {
                *count += 1;
            }
        }
    }
    loop {
        // The fullest broker, and the others from the emptiest up.
        let Some((&from, &most)) = load
            .iter()
            .max_by_key(|(n, c)| (**c, std::cmp::Reverse(**n)))
        else {
            return;
        };
        let mut targets: Vec<(u32, usize)> = load
            .iter()
            .map(|(n, c)| (*n, *c))
            .filter(|(_, c)| *c + 2 <= most)
            .collect();
        targets.sort_by_key(|(n, c)| (*c, *n));
        let choice = targets.iter().find_map(|(to, _)| {
            planned
                .iter()
                .position(|a| {
                    if !a.replicas.contains(&from) || a.replicas.contains(to) {
                        return false;
                    }
                    let moved: Vec<u32> = a
                        .replicas
                        .iter()
                        .map(|r| if *r == from { *to } else { *r })
                        .collect();
                    zones(&moved, domain) >= zones(&a.replicas, domain)
                })
                .map(|i| (i, *to))
        });
        let Some((i, to)) = choice else {
            // Balanced (within one), or only moves that lose a zone are left.
            return;
        };
        for r in planned[i].replicas.iter_mut() {
            if *r == from {
                *r = to;
            }
        }
        *load.get_mut(&from).expect("known") -= 1;
        *load.get_mut(&to).expect("known") += 1;
    }
}

fn balance_leaders(planned: &mut [Assignment], nodes: &[u32]) {
    let leaders = |planned: &[Assignment]| {
        let mut count: BTreeMap<u32, usize> = nodes.iter().map(|n| (*n, 0)).collect();
        for a in planned {
            if let Some(c) = a.replicas.first().and_then(|l| count.get_mut(l)) {
                *c += 1;
            }
        }
        count
    };
    loop {
        let count = leaders(planned);
        let Some(&most) = count.values().max() else {
            return;
        };
        let busiest: Vec<u32> = count
            .iter()
            .filter(|(_, c)| **c == most)
            .map(|(n, _)| *n)
            .collect();
        let Some(path) = busiest
            .into_iter()
            .find_map(|from| leader_path(planned, &count, from, most))
        else {
            return;
        };
        // Each partition on the path passes its leadership one step on:
        // the first broker leads one fewer, the last one more.
        for (i, to) in path {
            let replicas = &mut planned[i].replicas;
            let at = replicas.iter().position(|r| *r == to).expect("a replica");
            replicas.swap(0, at);
        }
    }
}

/// Breadth-first from `from`: partition `i` led by `a` with a replica on
/// `b` lets leadership shift from `a` to `b`. The partitions (and who
/// takes each over) on the shortest path to a broker leading at least two
/// fewer than `most`, if there is one.
fn leader_path(
    planned: &[Assignment],
    count: &BTreeMap<u32, usize>,
    from: u32,
    most: usize,
) -> Option<Vec<(usize, u32)>> {
    let mut previous: BTreeMap<u32, (u32, usize)> = BTreeMap::new();
    let mut queue = VecDeque::from([from]);
    let mut seen = BTreeSet::from([from]);
    while let Some(node) = queue.pop_front() {
        if node != from && count[&node] + 2 <= most {
            let mut path = Vec::new();
            let mut at = node;
            while let Some(&(before, i)) = previous.get(&at) {
                path.push((i, at));
                at = before;
            }
            return Some(path);
        }
        for (i, a) in planned.iter().enumerate() {
            if a.replicas.first() != Some(&node) {
                continue;
            }
            for next in &a.replicas[1..] {
                if count.contains_key(next) && seen.insert(*next) {
                    previous.insert(*next, (node, i));
                    queue.push_back(*next);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn counts(planned: &[Assignment], nodes: &[u32], leaders_only: bool) -> Vec<usize> {
        nodes
            .iter()
            .map(|n| {
                planned
                    .iter()
                    .filter(|a| {
                        if leaders_only {
                            a.replicas.first() == Some(n)
                        } else {
                            a.replicas.contains(n)
                        }
                    })
                    .count()
            })
            .collect()
    }

    fn apply(assignments: &[Assignment], changes: &[Assignment]) -> Vec<Assignment> {
        assignments
            .iter()
            .map(|a| {
                changes
                    .iter()
                    .find(|c| c.partition == a.partition)
                    .cloned()
                    .unwrap_or_else(|| a.clone())
            })
            .collect()
    }

    /// A cluster that grew: `old` brokers hold everything, `new` nothing;
    /// `factor` distinct replicas per partition among the old ones.
    fn grown_cluster() -> impl Strategy<Value = (Vec<u32>, Vec<Assignment>, Vec<u8>)> {
        (1usize..=5, 0usize..=4, 1usize..=3, 1usize..=40).prop_flat_map(
            |(old, added, factor, partitions)| {
                let factor = factor.min(old);
                let nodes: Vec<u32> = (0..(old + added) as u32).collect();
                let sets = proptest::collection::vec(
                    Just((0..old as u32).collect::<Vec<u32>>()).prop_shuffle(),
                    partitions,
                );
                let zones = proptest::collection::vec(0u8..3, old + added);
                (Just(nodes), sets, zones).prop_map(move |(nodes, sets, zones)| {
                    let assignments = sets
                        .into_iter()
                        .enumerate()
                        .map(|(i, mut replicas)| {
                            replicas.truncate(factor);
                            Assignment {
                                partition: (0, 0, i as u32),
                                replicas,
                            }
                        })
                        .collect();
                    (nodes, assignments, zones)
                })
            },
        )
    }

    proptest! {
        #[test]
        fn without_zones_every_broker_ends_within_one_replica_and_one_leader_with_the_fewest_moves(
            (nodes, assignments, _) in grown_cluster()
        ) {
            let changes = rebalance(&assignments, &nodes, Domain::Node);
            let after = apply(&assignments, &changes);

            let replicas = counts(&after, &nodes, false);
            let (lo, hi) = (replicas.iter().min().unwrap(), replicas.iter().max().unwrap());
            prop_assert!(hi - lo <= 1, "replicas per broker {replicas:?}");
            let leaders = counts(&after, &nodes, true);
            let (lo, hi) = (leaders.iter().min().unwrap(), leaders.iter().max().unwrap());
            prop_assert!(hi - lo <= 1, "leaders per broker {leaders:?}");

            for a in &after {
                let distinct: BTreeSet<u32> = a.replicas.iter().copied().collect();
                prop_assert_eq!(distinct.len(), a.replicas.len(), "{:?}", a);
            }
            // Replicas that moved vs. the least any plan needs.
            let moved: usize = after
                .iter()
                .zip(&assignments)
                .map(|(new, old)| new.replicas.iter().filter(|r| !old.replicas.contains(r)).count())
                .sum();
            let before = counts(&assignments, &nodes, false);
            let total: usize = before.iter().sum();
            let (floor, ceil) = (total / nodes.len(), total.div_ceil(nodes.len()));
            let excess: usize = before.iter().map(|c| c.saturating_sub(ceil)).sum();
            let shortfall: usize = before.iter().map(|c| floor.saturating_sub(*c)).sum();
            prop_assert_eq!(moved, excess.max(shortfall));
        }

        #[test]
        fn with_zones_no_partition_ends_in_fewer_zones(
            (nodes, assignments, zone_ids) in grown_cluster()
        ) {
            let names: Vec<String> = zone_ids.iter().map(|z| format!("zone-{z}")).collect();
            let domain = |n: u32| Domain::Zone(&names[n as usize]);
            let changes = rebalance(&assignments, &nodes, domain);
            let after = apply(&assignments, &changes);
            for (new, old) in after.iter().zip(&assignments) {
                prop_assert!(
                    zones(&new.replicas, &domain) >= zones(&old.replicas, &domain),
                    "{old:?} -> {new:?}"
                );
                let distinct: BTreeSet<u32> = new.replicas.iter().copied().collect();
                prop_assert_eq!(distinct.len(), new.replicas.len());
            }
        }
    }

    #[test]
    fn a_balanced_cluster_is_left_alone() {
        let assignments: Vec<Assignment> = (0..3)
            .map(|i| Assignment {
                partition: (0, 0, i),
                replicas: vec![i, (i + 1) % 3],
            })
            .collect();
        assert!(rebalance(&assignments, &[0, 1, 2], Domain::Node).is_empty());
    }

    #[test]
    fn a_new_broker_takes_its_share_of_replicas_and_leaders() {
        // Three brokers hold six partitions of factor 2; broker 3 joins.
        let assignments: Vec<Assignment> = (0..6)
            .map(|i| Assignment {
                partition: (0, 0, i),
                replicas: vec![i % 3, (i + 1) % 3],
            })
            .collect();
        let changes = rebalance(&assignments, &[0, 1, 2, 3], Domain::Node);
        let after = apply(&assignments, &changes);
        assert_eq!(counts(&after, &[0, 1, 2, 3], false), [3, 3, 3, 3]);
        let leaders = counts(&after, &[0, 1, 2, 3], true);
        assert!(leaders.iter().all(|l| (1..=2).contains(l)), "{leaders:?}");
    }
}
