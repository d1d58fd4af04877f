//! Forming the cluster: what a founder with an empty metadata log does.
//!
//! The founders (`cluster.founders`) initialize the metadata group with
//! the same membership, which openraft allows; the election decides. But an
//! empty log does not always mean a new cluster: a founder's volume may have
//! been lost or replaced while its cluster ran on. With several founders
//! that is harmless — the group it initializes needs another founder's
//! vote, and they follow the running cluster's longer log. A cluster
//! founded by **one** broker and grown since is another matter: its founder
//! would elect itself at once and fork a second cluster under the same
//! name, empty, beside the first.
//!
//! So before initializing, a founder asks the brokers of its address book
//! (every listed one; with a `{id}` template, the first ids) whether they
//! belong to a running metadata group, with the ping they answer anyway.
//! If one does, it initializes nothing and joins instead
//! (`membership::run`; the group's leader catches it up, and it does not
//! vote until then: `cluster::catching_up`). It forms the cluster only once
//! a majority of the founders, itself included, answered that they are in
//! no group; a lone founder also waits a few seconds for brokers that
//! exist but do not answer yet. What no founder can tell apart is a new
//! cluster from one whose every other broker is down too: a lone founder
//! back empty while the whole cluster is down still founds a new one (kept
//! apart from the old one when that comes back by the uid it chooses
//! before founding: `cluster::uid`), so
//! clusters meant to grow are best founded by three brokers (the
//! operator's default).

use super::transport::{Lane, Response};
use super::{ClusterSettings, Peers};
use crate::broker::Broker;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long one question to a broker may take (resolving its name, then
/// its answer).
const ASK_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between rounds of questions.
const ROUND_PAUSE: Duration = Duration::from_millis(500);
/// How long a lone founder waits for brokers that exist but do not answer.
const LONE_FOUNDER_WAIT: Duration = Duration::from_secs(15);
/// With a `{id}` template, the ids past the founders that are asked too
/// (a StatefulSet's ordinals are dense from 0, so any running broker of a
/// grown cluster is among the first few).
const TEMPLATE_IDS_PAST_FOUNDERS: u32 = 8;

/// What a broker of the address book said about its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// It belongs to a running metadata group (it applied a command of
    /// one, or knows its leader).
    Member,
    /// It is up and in no group yet (a founder like this one, or a broker
    /// waiting to join).
    Unformed,
    /// Its name resolves to nothing: there is no such broker (a pod not
    /// created).
    Absent,
    /// It exists but did not answer.
    Silent,
}

/// Initialize the metadata group if this broker founds the cluster: it is
/// a founder, its log is empty, no broker it can ask belongs to a running
/// group, and a majority of the founders is known to be in none (see
/// `decide`). Otherwise it joins (`membership::run`) — or, with a log,
/// simply carries on.
pub async fn found_unless_formed(broker: &Broker) {
    let (Some(settings), Some(peers)) = (&broker.cluster, &broker.peers) else {
        return;
    };
    let raft = broker.metadata.raft();
    if !settings.is_founder() || raft.is_initialized().await.unwrap_or(true) {
        return;
    }
    let me = settings.node_id;
    let others = address_book(settings);
    let deadline = Instant::now() + LONE_FOUNDER_WAIT;
    let mut waiting_logged = false;
    loop {
        let answers = ask_all(broker, peers, settings, &others).await;
        match decide(&answers, settings.founders, Instant::now() >= deadline) {
            Decision::Join(member) => {
                tracing::info!(
                    node = me,
                    member,
                    "the cluster exists already (broker {member} belongs to it): joining it, not founding one"
                );
                return;
            }
            Decision::Found => break,
            Decision::FoundDespite(silent) => {
                tracing::warn!(
                    node = me,
                    ?silent,
                    "founding the cluster alone although brokers {silent:?} did not answer in {LONE_FOUNDER_WAIT:?}: if they belong to a running cluster, this broker forks it"
                );
                break;
            }
            Decision::Wait if !waiting_logged => {
                waiting_logged = true;
                tracing::info!(
                    node = me,
                    ?answers,
                    "waiting for the other founders to answer"
                );
            }
            Decision::Wait => {}
        }
        tokio::time::sleep(ROUND_PAUSE).await;
        // A running group's leader may have reached this broker meanwhile.
        if raft.is_initialized().await.unwrap_or(true) {
            return;
        }
    }
    let members: BTreeMap<u64, openraft::BasicNode> = settings
        .founding_ids()
        .filter_map(|id| settings.peer(id))
        .map(|n| (n.id as u64, openraft::BasicNode::new(n.address())))
        .collect();
    // A lone founder is the one that can fork its cluster (see above): it
    // knows its new cluster's uid before its first entry, so that brokers
    // of the old one are refused from the start.
    let uid = if settings.founders == 1 {
        peers.uid().choose_for_founding(&broker.metadata_dir())
    } else {
        None
    };
    tracing::info!(
        node = me,
        founders = ?members.keys().collect::<Vec<_>>(),
        uid = uid.map(super::uid::format_uid),
        "founding the cluster"
    );
    // A founder of a new cluster has nothing to catch up with.
    super::catching_up::finish(broker);
    // Every founder initializes with the same membership; the election
    // decides. One that was reached by a leader first is told it has a log.
    if let Err(e) = raft.initialize(members).await {
        tracing::debug!("metadata group already initialized: {e}");
        if let Some(chosen) = uid {
            peers.uid().abandon_founding(chosen, &broker.metadata_dir());
        }
    }
}

/// What a founder does after a round of questions.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    /// This broker belongs to a running cluster: join it.
    Join(u32),
    /// Form the cluster.
    Found,
    /// Form it, alone, although these brokers did not answer.
    FoundDespite(Vec<u32>),
    /// Ask again.
    Wait,
}

/// A founder forms the cluster once no broker belongs to a running one and
/// a majority of the founders, itself included, is known to be in no group
/// (fewer could not elect a leader anyway, and a lost volume among them
/// would vote with what it forgot). A lone founder also waits for brokers
/// that exist but do not answer, until `waited_out`.
fn decide(answers: &[(u32, Answer)], founders: u32, waited_out: bool) -> Decision {
    if let Some(member) = answers
        .iter()
        .find_map(|(id, answer)| (*answer == Answer::Member).then_some(*id))
    {
        return Decision::Join(member);
    }
    let unformed_founders = 1 + answers
        .iter()
        .filter(|(id, answer)| *id < founders && *answer == Answer::Unformed)
        .count();
    if unformed_founders * 2 <= founders as usize {
        return Decision::Wait;
    }
    let silent: Vec<u32> = answers
        .iter()
        .filter_map(|(id, answer)| (*answer == Answer::Silent).then_some(*id))
        .collect();
    match (founders, silent.is_empty(), waited_out) {
        (2.., _, _) | (_, true, _) => Decision::Found,
        (_, false, true) => Decision::FoundDespite(silent),
        (_, false, false) => Decision::Wait,
    }
}

/// The other brokers a founder asks.
fn address_book(settings: &ClusterSettings) -> Vec<u32> {
    let ids: Vec<u32> = match &settings.template {
        None => settings.nodes.iter().map(|p| p.id).collect(),
        Some(_) => (0..settings.founders.saturating_add(TEMPLATE_IDS_PAST_FOUNDERS)).collect(),
    };
    ids.into_iter()
        .filter(|id| *id != settings.node_id && settings.peer(*id).is_some())
        .collect()
}

async fn ask_all(
    broker: &Broker,
    peers: &Peers,
    settings: &ClusterSettings,
    ids: &[u32],
) -> Vec<(u32, Answer)> {
    let questions = ids
        .iter()
        .map(|id| async move { (*id, ask(broker, peers, settings, *id).await) });
    futures::future::join_all(questions).await
}

async fn ask(broker: &Broker, peers: &Peers, settings: &ClusterSettings, id: u32) -> Answer {
    let Some(peer) = settings.peer(id) else {
        return Answer::Absent;
    };
    let resolved = tokio::time::timeout(ASK_TIMEOUT, tokio::net::lookup_host(peer.address()))
        .await
        .map(|found| found.map_or(0, Iterator::count));
    match resolved {
        Ok(0) => return Answer::Absent,
        Ok(_) => {}
        Err(_) => return Answer::Silent,
    }
    let ping = super::rpc::ping(broker);
    let call = peers.call(id, Lane::Control, &ping, bytes::Bytes::new(), ASK_TIMEOUT);
    match tokio::time::timeout(ASK_TIMEOUT, call).await {
        Ok(Ok((
            Response::Pong {
                applied, leader, ..
            },
            _,
        ))) if applied > 0 || leader.is_some() => Answer::Member,
        Ok(Ok((Response::Pong { .. }, _))) => Answer::Unformed,
        _ => Answer::Silent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn settings(node: &str, peers: &str, founders: Option<&str>) -> ClusterSettings {
        let mut vars = vec![
            ("IGGY_CLUSTER_ENABLED", "true"),
            ("IGGY_CLUSTER_NODE_ID", node),
            (
                "IGGY_CLUSTER_AUTH_SHARED_SECRET",
                "0123456789abcdef0123456789abcdef",
            ),
            ("IGGY_CLUSTER_PEERS", peers),
        ];
        if let Some(founders) = founders {
            vars.push(("IGGY_CLUSTER_FOUNDERS", founders));
        }
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::load(None, vars)
            .and_then(|c| c.effective())
            .unwrap()
            .cluster
            .unwrap()
    }

    use Answer::*;

    #[test]
    fn a_member_anywhere_means_join() {
        let answers = [(1, Silent), (2, Unformed), (5, Member)];
        assert_eq!(decide(&answers, 3, false), Decision::Join(5));
        assert_eq!(decide(&answers, 1, true), Decision::Join(5));
    }

    #[test]
    fn founders_form_once_a_majority_of_them_is_in_no_group() {
        // Founder 0 of three: itself and founder 1.
        assert_eq!(
            decide(&[(1, Unformed), (2, Silent), (3, Silent)], 3, false),
            Decision::Found
        );
        // Itself alone, the others silent (down, or not started yet).
        assert_eq!(decide(&[(1, Silent), (2, Silent)], 3, true), Decision::Wait);
        assert_eq!(decide(&[(1, Absent), (2, Silent)], 3, true), Decision::Wait);
        // Two of four is not a majority.
        assert_eq!(
            decide(&[(1, Unformed), (2, Silent), (3, Silent)], 4, true),
            Decision::Wait
        );
    }

    #[test]
    fn a_lone_founder_waits_for_brokers_that_exist_then_forms_anyway() {
        assert_eq!(decide(&[], 1, false), Decision::Found);
        assert_eq!(
            decide(&[(1, Absent), (2, Unformed)], 1, false),
            Decision::Found
        );
        assert_eq!(
            decide(&[(1, Silent), (2, Absent)], 1, false),
            Decision::Wait
        );
        assert_eq!(
            decide(&[(1, Silent), (2, Absent)], 1, true),
            Decision::FoundDespite(vec![1])
        );
    }

    #[test]
    fn a_founder_asks_every_listed_broker_but_itself() {
        let listed = settings("0", "a:1,b:1,c:1,d:1", Some("1"));
        assert_eq!(address_book(&listed), vec![1, 2, 3]);
    }

    #[test]
    fn with_a_template_a_founder_asks_the_first_ids_past_the_founders_too() {
        let template = settings("1", "iggy-{id}.h.ns.svc:9090", Some("3"));
        assert_eq!(address_book(&template), vec![0, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    }
}
