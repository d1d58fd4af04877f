//! Who is in the cluster: the metadata group's voters.
//!
//! A new cluster is formed by its founders (`cluster.founders`, every
//! listed node by default), which initialize the group together
//! (`cluster::founding`, which first makes sure it does not run already). Every
//! other broker **joins**: when it starts and is not a voter, it asks the
//! group's leader to add it; the leader adds it as a learner, waits until
//! it has caught up with the metadata log, then makes it a voter (a joint
//! consensus change, so a quorum is kept throughout). Joining is
//! idempotent: a broker that is a voter already is told so.
//!
//! A broker **leaves** when an operator removes it (`DELETE
//! /cluster/nodes/{id}`, what the Kubernetes operator does before it
//! shrinks a StatefulSet). The leader refuses while the broker still holds
//! a partition replica: drain it first (`POST /cluster/nodes/{id}/drain`).
//! One broker leaves per change, so shrinking 5 → 3 goes through 4 voters
//! and never loses a quorum.
//!
//! A removed broker is told so by the leader and records it on its volume
//! (`metadata/removed`): until it has joined again it does not stand for
//! election, so a broker scaled down and later up again on its old volume
//! cannot disrupt the group with campaigns of a membership it left. One
//! that never heard of its removal (it was down) notices that no leader
//! talks to it and asks to join again.

use super::transport::{Lane, Request, Response};
use crate::broker::Broker;
use openraft::{BasicNode, ChangeMembers};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A change of the membership, carried out by the metadata leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Add `node` as a voter once it has caught up.
    Join { node: u32 },
    /// Remove `node`, which must hold no partition replica.
    Remove { node: u32 },
}

/// How long a join may take on the leader (the learner catching up with
/// the metadata log, then two membership entries committing).
const CHANGE_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between attempts to reach a leader.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// A voter that heard from no leader for this long asks to join again (it
/// may have been removed without hearing of it).
const ORPHANED_AFTER: Duration = Duration::from_secs(10);

/// How long the leader tries to tell a removed broker.
const TELL_TIMEOUT: Duration = Duration::from_secs(2);
/// A broker removed this recently is refused when it asks to join: it may
/// be the removed process itself, which saw its removal in the log before
/// the leader's word reached it (which takes at most `TELL_TIMEOUT`). A
/// restarted one is let in once this has passed.
const REJOIN_AFTER: Duration = Duration::from_secs(10);

/// The file that marks a broker removed from its cluster.
fn removed_marker(metadata_dir: &Path) -> PathBuf {
    metadata_dir.join("removed")
}

/// Whether the broker of this metadata directory was removed from its
/// cluster (and has not joined again).
pub fn was_removed(metadata_dir: &Path) -> bool {
    removed_marker(metadata_dir).exists()
}

/// This broker was removed: record it durably and stop standing for
/// election.
pub fn record_removal(broker: &Broker) -> std::io::Result<()> {
    broker
        .removed
        .store(true, std::sync::atomic::Ordering::Relaxed);
    broker.metadata.raft().runtime_config().elect(false);
    let dir = broker.metadata_dir();
    crate::storage::fs::write_atomic(&removed_marker(&dir), b"removed from the cluster\n", true)?;
    tracing::warn!(
        node = broker.node_id(),
        "removed from the cluster: not standing for election until it joins again"
    );
    Ok(())
}

/// Joined again: clear the mark and stand for election.
fn clear_removal(broker: &Broker) {
    let marker = removed_marker(&broker.metadata_dir());
    if marker.exists() {
        if let Err(e) = std::fs::remove_file(&marker)
            .and_then(|()| crate::storage::fs::fsync_dir(&broker.metadata_dir()))
        {
            tracing::warn!("could not clear {}: {e}", marker.display());
            return;
        }
        tracing::info!(node = broker.node_id(), "joined the cluster again");
    }
    broker.metadata.raft().runtime_config().elect(true);
}

/// The metadata group's voters, as this broker knows them.
pub fn voters(broker: &Broker) -> Vec<u32> {
    let receiver = broker.metadata.raft().metrics();
    let metrics = receiver.borrow();
    let mut voters: Vec<u32> = metrics
        .membership_config
        .membership()
        .voter_ids()
        .map(|id| id as u32)
        .collect();
    voters.sort_unstable();
    voters
}

/// Carry out `change` on this broker, which must lead the metadata group:
/// whether the membership changed (not when there was nothing to do), or
/// why it was refused or failed.
pub async fn carry_out(broker: &Broker, change: MembershipChange) -> Result<bool, String> {
    let raft = broker.metadata.raft();
    match change {
        MembershipChange::Join { node } => {
            if voters(broker).contains(&node) || node == broker.node_id() {
                return Ok(false);
            }
            if let Some(at) = lock(&broker.recently_removed).get(&node)
                && at.elapsed() < REJOIN_AFTER
            {
                return Err(format!(
                    "broker {node} was removed {:?} ago: it may join again {REJOIN_AFTER:?} after its removal",
                    at.elapsed()
                ));
            }
            let address = broker
                .cluster
                .as_ref()
                .and_then(|c| c.peer(node))
                .ok_or_else(|| format!("node {node} is not in the address book"))?
                .address();
            tracing::info!(node, %address, "adding a broker: catching it up as a learner");
            raft.add_learner(node as u64, BasicNode::new(address), true)
                .await
                .map_err(|e| format!("adding node {node} as a learner: {e}"))?;
            raft.change_membership(
                ChangeMembers::AddVoterIds(BTreeSet::from([node as u64])),
                false,
            )
            .await
            .map_err(|e| format!("making node {node} a voter: {e}"))?;
            tracing::info!(node, voters = ?voters(broker), "broker joined");
            Ok(true)
        }
        MembershipChange::Remove { node } => {
            if !broker.metadata.members().contains(&node) {
                return Ok(false);
            }
            let held = broker.metadata.read(|m| {
                m.partitions()
                    .filter(|(_, _, p)| {
                        p.replicas.contains(&node)
                            || p.reassigning.as_ref().is_some_and(|r| r.contains(&node))
                    })
                    .count()
            });
            if held > 0 {
                return Err(format!(
                    "broker {node} still holds {held} partition replica(s): drain it first"
                ));
            }
            let voters = voters(broker);
            if voters == [node] {
                return Err(format!("broker {node} is the last voter"));
            }
            // A voter leaves in one joint change (`retain: false` drops it
            // from the nodes too); a learner that never became one is
            // simply dropped.
            let ids = BTreeSet::from([node as u64]);
            let change = if voters.contains(&node) {
                ChangeMembers::RemoveVoters(ids)
            } else {
                ChangeMembers::RemoveNodes(ids)
            };
            let me = node == broker.node_id();
            // Leaving: this broker must not ask to join again meanwhile.
            if me {
                broker
                    .removed
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            lock(&broker.recently_removed).insert(node, Instant::now());
            if let Err(e) = raft.change_membership(change, false).await {
                if me {
                    broker
                        .removed
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                }
                lock(&broker.recently_removed).remove(&node);
                return Err(format!("removing node {node}: {e}"));
            }
            tracing::info!(node, voters = ?self::voters(broker), "broker removed");
            // Tell it, so it stops standing for election (best effort: a
            // broker that is down learns it when it asks to join).
            if node == broker.node_id() {
                if let Err(e) = record_removal(broker) {
                    tracing::warn!("recording this broker's removal: {e}");
                }
            } else if let Some(peers) = &broker.peers
                && let Err(e) = peers
                    .call(
                        node,
                        Lane::Control,
                        &Request::Removed,
                        bytes::Bytes::new(),
                        TELL_TIMEOUT,
                    )
                    .await
            {
                tracing::info!(node, "could not tell the removed broker: {e}");
            }
            Ok(true)
        }
    }
}

/// Have the metadata leader carry out `change`, wherever it is: this
/// broker, or a peer (following `NotLeader` hints; when no leader is known,
/// asking the members, founders and brokers that answered in turn). Gives
/// up at `deadline`.
/// Whether the membership changed.
pub async fn request(
    broker: &Broker,
    change: MembershipChange,
    deadline: Instant,
) -> Result<bool, String> {
    let Some(peers) = &broker.peers else {
        return Err("a standalone broker has no membership to change".into());
    };
    let me = broker.node_id();
    let mut hint = broker.metadata.leader();
    let mut turn = 0usize;
    let mut last = String::from("no leader reachable");
    while Instant::now() < deadline {
        let target = hint.take().or_else(|| {
            let mut candidates: Vec<u32> = broker.metadata.members().into_iter().collect();
            if let Some(settings) = &broker.cluster {
                candidates.extend(settings.founding_ids());
            }
            // A founder back on an empty volume knows its cluster's members
            // only as the brokers that answered it (`cluster::founding`).
            candidates.extend(peers.answered());
            candidates.sort_unstable();
            candidates.dedup();
            candidates.retain(|id| *id != me);
            turn += 1;
            (!candidates.is_empty()).then(|| candidates[turn % candidates.len()])
        });
        // A broker never adds itself: one that is asking to join is not a
        // member, whatever an old vote on its disk says.
        let joining_myself = change == MembershipChange::Join { node: me };
        match target {
            Some(leader) if leader == me && broker.metadata.is_leader() && !joining_myself => {
                return carry_out(broker, change).await;
            }
            Some(leader) if leader == me => {}
            Some(target) => {
                let left = deadline.saturating_duration_since(Instant::now());
                match peers
                    .call(
                        target,
                        Lane::Control,
                        &Request::Membership(change),
                        bytes::Bytes::new(),
                        left.min(CHANGE_TIMEOUT),
                    )
                    .await
                {
                    Ok((
                        Response::Membership {
                            refused: None,
                            changed,
                        },
                        _,
                    )) => return Ok(changed),
                    Ok((
                        Response::Membership {
                            refused: Some(why), ..
                        },
                        _,
                    )) => return Err(why),
                    Ok((Response::NotLeader { leader }, _)) => {
                        hint = leader.filter(|l| *l != target);
                        if hint.is_some() {
                            continue;
                        }
                    }
                    Ok((other, _)) => last = format!("node {target} answered {other:?}"),
                    Err(e) => last = e.to_string(),
                }
            }
            None => {}
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
    Err(last)
}

/// Keep this broker in the cluster and its peers list current, for as long
/// as it runs: join when it is not a voter (a new broker, or one removed
/// before it restarted), and ping whoever the membership names. A broker
/// removed while it runs stays out until it restarts.
pub async fn run(broker: Arc<Broker>) {
    let Some(peers) = broker.peers.clone() else {
        return;
    };
    // A founder with an empty log forms the cluster first, unless it runs
    // already.
    super::founding::found_unless_formed(&broker).await;
    let me = broker.node_id();
    let mut metrics = broker.metadata.raft().metrics();
    let mut last_leader_seen = Instant::now();
    let mut announced = HashSet::new();
    loop {
        metrics.borrow_and_update();
        peers.set_members(broker.metadata.members());
        if broker.removed.load(std::sync::atomic::Ordering::Relaxed) {
            // Removed while running: wait to be stopped.
            let _ = metrics.changed().await;
            continue;
        }
        let leader_known = broker.metadata.leader().is_some();
        if leader_known {
            last_leader_seen = Instant::now();
        }
        let removed = was_removed(&broker.metadata_dir());
        let voter = voters(&broker).contains(&me) && !removed;
        // A leader is a voter, or on its way out of the group. (A removed
        // broker restarted on an old vote of its own may believe it leads:
        // it is no voter, so it asks to join.)
        let leading = voter && broker.metadata.is_leader();
        if !leading && (!voter || last_leader_seen.elapsed() >= ORPHANED_AFTER) {
            if announced.insert(voter) {
                tracing::info!(
                    node = me,
                    voter,
                    "asking the metadata leader to join the cluster"
                );
            }
            let deadline = Instant::now() + CHANGE_TIMEOUT;
            match request(&broker, MembershipChange::Join { node: me }, deadline).await {
                Ok(_) => {
                    last_leader_seen = Instant::now();
                    if removed {
                        clear_removal(&broker);
                    }
                }
                Err(e) => tracing::info!(node = me, "joining the cluster: {e}; retrying"),
            }
        }
        // Wake on a membership or leader change, or look again shortly.
        let _ = tokio::time::timeout(RETRY_PAUSE * 4, metrics.changed()).await;
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
