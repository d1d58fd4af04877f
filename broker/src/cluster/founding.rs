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
//! (`membership::run`; the group's leader catches it up). A lone founder
//! also waits a few seconds for brokers that exist but do not answer yet.
//! What no founder can tell apart is a new cluster from one whose every
//! other broker is down too: a lone founder back empty while the whole
//! cluster is down still founds a new one, so clusters meant to grow are
//! best founded by three brokers (the operator's default).

use super::transport::{Lane, Request, Response};
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
/// a founder, its log is empty, and no broker it can ask belongs to a
/// running group. Otherwise it joins (`membership::run`) — or, with a log,
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
    let lone = settings.founders == 1;
    let deadline = Instant::now() + LONE_FOUNDER_WAIT;
    loop {
        let answers = ask_all(broker, peers, settings, &others).await;
        if let Some(member) = answers
            .iter()
            .find_map(|(id, answer)| (*answer == Answer::Member).then_some(*id))
        {
            tracing::info!(
                node = me,
                member,
                "the cluster exists already (broker {member} belongs to it): joining it, not founding one"
            );
            return;
        }
        let silent: Vec<u32> = answers
            .iter()
            .filter_map(|(id, answer)| (*answer == Answer::Silent).then_some(*id))
            .collect();
        if silent.is_empty() || !lone {
            break;
        }
        if Instant::now() >= deadline {
            tracing::warn!(
                node = me,
                ?silent,
                "founding the cluster alone although brokers {silent:?} did not answer in {LONE_FOUNDER_WAIT:?}: if they belong to a running cluster, this broker forks it"
            );
            break;
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
    tracing::info!(node = me, founders = ?members.keys().collect::<Vec<_>>(), "founding the cluster");
    // Every founder initializes with the same membership; the election
    // decides. One that was reached by a leader first is told it has a log.
    if let Err(e) = raft.initialize(members).await {
        tracing::debug!("metadata group already initialized: {e}");
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
    let ping = Request::Ping {
        epoch: broker.metadata.epoch(),
        applied: broker.metadata.applied_index(),
    };
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
