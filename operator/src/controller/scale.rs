//! Scaling the brokers with `spec.replicas`.
//!
//! **Up**: the StatefulSet grows at once; each new broker joins the
//! metadata group by itself (it is not a founder, so it asks the leader,
//! which catches it up and makes it a voter). Once every broker is a voter,
//! the brokers' rebalance planner spreads partition replicas and leaders
//! onto them, a few moves per reconcile (`POST /cluster/rebalance`).
//!
//! **Down**: one broker at a time, highest ordinal first: drain it (every
//! replica and leadership moved to the brokers that stay, caught up), take
//! it out of the membership (`DELETE /cluster/nodes/{id}`), and only then
//! shrink the StatefulSet by one. A shrink that would leave fewer brokers
//! than a topic's replication factor is refused, and nothing is removed.
//! Shrinking 5 → 3 therefore passes through 4 voters and keeps a quorum
//! throughout; its volumes are kept (the StatefulSet's
//! `persistentVolumeClaimRetentionPolicy` decides), and a broker scaled up
//! again on its old volume joins again.
//!
//! The decision is pure ([`next_step`]); [`carry_out`] takes its step.

use super::Context;
use super::brokers::{AdminSession, PartitionStatus};
use super::cluster::{degrade, publish};
use crate::crd::conditions::{self, PROGRESSING};
use crate::crd::{IggyCluster, IggyClusterStatus};
use kube::ResourceExt;
use std::collections::BTreeSet;

/// What the brokers report that scaling needs.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The metadata group's voters.
    pub voters: BTreeSet<u32>,
    pub partitions: Vec<PartitionStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing to scale; make sure partitions are balanced.
    Rebalance,
    /// New brokers have not joined yet.
    Joining(Vec<u32>),
    /// The brokers cannot be asked: hold the StatefulSet where it is.
    Unobserved,
    /// The shrink is refused, with why.
    Refused(String),
    /// Move every replica off this broker.
    Drain(u32),
    /// Replicas are moving off this broker (`count` partitions left).
    Draining { node: u32, partitions: usize },
    /// This broker holds nothing: take it out of the membership.
    Remove(u32),
    /// Shrink the StatefulSet to this many pods.
    Shrink(i32),
}

/// The next step from `current` pods (the StatefulSet's replicas) to
/// `desired` ones (the spec's). `observed` is `None` when the brokers
/// cannot be asked; `running` says whether any broker pod is Ready.
pub fn next_step(desired: i32, current: i32, observed: Option<&Observed>, running: bool) -> Step {
    if desired >= current {
        let Some(observed) = observed else {
            return Step::Unobserved;
        };
        let missing: Vec<u32> = (0..desired as u32)
            .filter(|id| !observed.voters.contains(id))
            .collect();
        return if missing.is_empty() {
            Step::Rebalance
        } else {
            Step::Joining(missing)
        };
    }
    let Some(observed) = observed else {
        // No broker runs: nothing is served and nothing can be drained; the
        // volumes stay, so shrinking loses nothing.
        return if running {
            Step::Unobserved
        } else {
            Step::Shrink(desired)
        };
    };
    let widest = observed
        .partitions
        .iter()
        .map(|p| p.replication_factor.map_or(p.replicas.len(), usize::from))
        .max()
        .unwrap_or(0);
    if widest > desired as usize {
        return Step::Refused(format!(
            "a topic has {widest} replicas per partition, more than the {desired} brokers that \
             would remain; lower its replication factor first"
        ));
    }
    let victim = current as u32 - 1;
    if !observed.voters.contains(&victim) {
        return Step::Shrink(current - 1);
    }
    let involved: Vec<&PartitionStatus> = observed
        .partitions
        .iter()
        .filter(|p| {
            p.replicas.contains(&victim)
                || p.reassigning.as_ref().is_some_and(|r| r.contains(&victim))
        })
        .collect();
    if involved.is_empty() {
        return Step::Remove(victim);
    }
    if involved.iter().any(|p| p.reassigning.is_some()) {
        return Step::Draining {
            node: victim,
            partitions: involved.len(),
        };
    }
    Step::Drain(victim)
}

/// The StatefulSet's replicas for `step`.
pub fn statefulset_replicas(desired: i32, current: Option<i32>, step: &Step) -> i32 {
    match (current, step) {
        (None, _) => desired,
        (Some(_), Step::Shrink(to)) => *to,
        (Some(current), _) => current.max(desired),
    }
}

/// Take the scaling step through the brokers' admin `session` (Events for
/// what changes, a condition for where it stands). Returns whether scaling
/// is under way.
pub(super) async fn carry_out(
    ctx: &Context,
    cluster: &IggyCluster,
    session: Option<&AdminSession>,
    step: &Step,
    status: &mut IggyClusterStatus,
) -> bool {
    let generation = cluster.metadata.generation;
    let mut progressing = |reason: &str, message: String| {
        conditions::set(
            &mut status.conditions,
            PROGRESSING,
            true,
            reason,
            message,
            generation,
        )
    };
    match (step, session) {
        (Step::Refused(why), _) => {
            let message = format!(
                "not scaling down to {} brokers: {why}",
                cluster.spec.replicas
            );
            degrade(ctx, cluster, status, "ScaleDownRefused", why, message).await;
            false
        }
        (Step::Joining(missing), _) => {
            progressing(
                "ScalingUp",
                format!("waiting for brokers {missing:?} to join the cluster"),
            );
            true
        }
        (Step::Rebalance, Some(session)) => match session.rebalance(REBALANCE_MOVES).await {
            Ok(done) if done.balanced => false,
            Ok(done) => {
                let note = format!(
                    "rebalancing partitions: {} replica moves and {} leader moves started, {} in progress",
                    done.moves.len(),
                    done.leader_moves.len(),
                    done.in_progress
                );
                if !done.moves.is_empty() || !done.leader_moves.is_empty() {
                    publish(ctx, cluster, "Rebalancing", &note).await;
                }
                progressing("Rebalancing", note);
                true
            }
            Err(e) => {
                tracing::info!(cluster = %cluster.name_any(), "rebalance: {e}");
                false
            }
        },
        (Step::Drain(node), Some(session)) => {
            let note = match session.drain(*node).await {
                Ok(()) => {
                    let note = format!("draining broker {node} before removing it");
                    publish(ctx, cluster, "Draining", &note).await;
                    note
                }
                Err(e) => format!("draining broker {node}: {e}"),
            };
            progressing("ScalingDown", note);
            true
        }
        (Step::Draining { node, partitions }, _) => {
            progressing(
                "ScalingDown",
                format!("draining broker {node}: {partitions} partitions still moving"),
            );
            true
        }
        (Step::Remove(node), Some(session)) => {
            let note = match session.remove_node(*node).await {
                Ok(removed) => {
                    let note = format!("broker {node} is drained and left the cluster");
                    if removed {
                        publish(ctx, cluster, "BrokerRemoved", &note).await;
                    }
                    note
                }
                Err(e) => format!("removing broker {node}: {e}"),
            };
            progressing("ScalingDown", note);
            true
        }
        (Step::Shrink(to), _) => {
            progressing(
                "ScalingDown",
                format!("shrinking the StatefulSet to {to} brokers"),
            );
            true
        }
        (Step::Unobserved, _) | (_, None) => false,
    }
}

/// Changes per rebalance call (each reconcile while unbalanced).
const REBALANCE_MOVES: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(id: u32, replicas: &[u32], reassigning: Option<&[u32]>) -> PartitionStatus {
        PartitionStatus {
            stream_id: 1,
            topic_id: 1,
            partition_id: id,
            replicas: replicas.to_vec(),
            leader: replicas.first().copied(),
            in_sync: replicas.to_vec(),
            replication_factor: Some(replicas.len() as u8),
            reassigning: reassigning.map(<[u32]>::to_vec),
        }
    }

    fn observed(voters: &[u32], partitions: Vec<PartitionStatus>) -> Observed {
        Observed {
            voters: voters.iter().copied().collect(),
            partitions,
        }
    }

    #[test]
    fn growing_waits_for_the_new_brokers_then_rebalances() {
        let joining = observed(&[0, 1, 2, 3], vec![]);
        assert_eq!(
            next_step(5, 3, Some(&joining), true),
            Step::Joining(vec![4])
        );
        assert_eq!(statefulset_replicas(5, Some(3), &Step::Joining(vec![4])), 5);
        let joined = observed(&[0, 1, 2, 3, 4], vec![]);
        assert_eq!(next_step(5, 5, Some(&joined), true), Step::Rebalance);
    }

    #[test]
    fn shrinking_drains_then_removes_then_shrinks_one_broker_at_a_time() {
        let p = |replicas: &[u32], moving: Option<&[u32]>| vec![partition(0, replicas, moving)];
        // 5 → 3 starts with broker 4 only.
        let held = observed(&[0, 1, 2, 3, 4], p(&[4, 0, 1], None));
        assert_eq!(next_step(3, 5, Some(&held), true), Step::Drain(4));
        assert_eq!(statefulset_replicas(3, Some(5), &Step::Drain(4)), 5);
        let moving = observed(&[0, 1, 2, 3, 4], p(&[4, 0, 1], Some(&[2, 0, 1])));
        assert_eq!(
            next_step(3, 5, Some(&moving), true),
            Step::Draining {
                node: 4,
                partitions: 1
            }
        );
        let drained = observed(&[0, 1, 2, 3, 4], p(&[2, 0, 1], None));
        assert_eq!(next_step(3, 5, Some(&drained), true), Step::Remove(4));
        let removed = observed(&[0, 1, 2, 3], p(&[2, 0, 1], None));
        assert_eq!(next_step(3, 5, Some(&removed), true), Step::Shrink(4));
        assert_eq!(statefulset_replicas(3, Some(5), &Step::Shrink(4)), 4);
        // Then broker 3, which holds nothing.
        assert_eq!(next_step(3, 4, Some(&removed), true), Step::Remove(3));
    }

    #[test]
    fn a_shrink_below_a_topics_replication_factor_is_refused() {
        let wide = observed(&[0, 1, 2], vec![partition(0, &[0, 1, 2], None)]);
        let Step::Refused(why) = next_step(2, 3, Some(&wide), true) else {
            panic!("not refused");
        };
        assert!(why.contains("3 replicas"), "{why}");
        assert_eq!(statefulset_replicas(2, Some(3), &Step::Refused(why)), 3);
    }

    #[test]
    fn without_the_brokers_a_running_cluster_is_held_and_a_stopped_one_shrinks() {
        assert_eq!(next_step(1, 3, None, true), Step::Unobserved);
        assert_eq!(statefulset_replicas(1, Some(3), &Step::Unobserved), 3);
        assert_eq!(next_step(1, 3, None, false), Step::Shrink(1));
        assert_eq!(next_step(3, 1, None, true), Step::Unobserved);
        assert_eq!(statefulset_replicas(3, Some(1), &Step::Unobserved), 3);
    }
}
