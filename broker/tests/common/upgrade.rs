//! Rolling upgrades: what the cluster's metadata version lets it write,
//! seen through auto-commit offsets (stored together in one command from
//! metadata version 1 on, one command each before).

use super::cluster::TestCluster;
use super::replicated::admin_get;
use super::{create_stream_and_topic, id, send};
use iggy::prelude::*;
use std::time::{Duration, Instant};

/// How the metadata log spells one offset's command and the command of
/// several together (serde's tag of each).
pub const SINGLE: &str = "\"StoreConsumerOffset\"";
pub const TOGETHER: &str = "\"StoreConsumerOffsets\"";
/// The consumers of every round.
const CONSUMERS: u32 = 4;

/// Stream `upgrade`, topic `t` of one partition, 100 messages in it.
async fn setup_topic(client: &IggyClient) {
    create_stream_and_topic(client, "upgrade", "t", 1).await;
    send(
        client,
        "upgrade",
        "t",
        &Partitioning::partition_id(0),
        1,
        100,
    )
    .await;
}

fn consumer(n: u32) -> Consumer {
    Consumer::new(Identifier::numeric(n + 1).unwrap())
}

/// Round `round`: each consumer polls the next 10 messages with
/// auto-commit, one after the other within one commit pause, so their
/// offsets are pending together.
async fn auto_commit_round(client: &IggyClient, round: u64) {
    for n in 0..CONSUMERS {
        let polled = client
            .poll_messages(
                &id("upgrade"),
                &id("t"),
                Some(0),
                &consumer(n),
                &PollingStrategy::next(),
                10,
                true,
            )
            .await
            .unwrap();
        assert_eq!(polled.messages[0].header.offset, round * 10, "consumer {n}");
    }
}

/// This build's metadata version.
pub const NEWEST: u64 = iggy_broker::metadata::command::METADATA_VERSION as u64;

/// The cluster's uid as broker `via` reports it, once it has one
/// (`cluster::uid`).
pub async fn wait_for_uid(cluster: &TestCluster, via: u32) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = admin_get(cluster, via, "/cluster/status").await;
        if let Some(uid) = status["uid"].as_str() {
            return uid.to_string();
        }
        assert!(Instant::now() < deadline, "no uid: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Let every running broker write this build's metadata version (the
/// cluster's `IGGY_CLUSTER_METADATA_VERSION` pin lifted), one restart at a
/// time.
pub async fn roll_to_newest(cluster: &mut TestCluster) {
    let newest = NEWEST.to_string();
    let running: Vec<u32> = cluster.running().map(|node| node.id).collect();
    for node in running {
        cluster.set_node_env(node, &[("IGGY_CLUSTER_METADATA_VERSION", &newest)]);
        cluster.stop(node);
        cluster.start(node);
    }
    wait_for_metadata_version(cluster, NEWEST).await;
}

/// Wait until broker 0 reports the cluster at metadata version `version`.
pub async fn wait_for_metadata_version(cluster: &TestCluster, version: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = admin_get(cluster, 0, "/cluster/status").await;
        if status["metadata_version"].as_u64() == Some(version) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster never reached metadata version {version}: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether broker `node`'s metadata log holds `text` (`SINGLE`, `TOGETHER`).
pub fn metadata_log_holds(cluster: &TestCluster, node: u32, text: &str) -> bool {
    occurrences(cluster, node, text) > 0
}

fn occurrences(cluster: &TestCluster, node: u32, text: &str) -> usize {
    let log = std::fs::read(cluster.node(node).data.join("metadata").join("log")).unwrap();
    log.windows(text.len())
        .filter(|w| *w == text.as_bytes())
        .count()
}

/// Wait until broker `node`'s own metadata log holds every consumer's
/// offset `offset` stored one command each: what it replicated, not what
/// the partition's broker still holds pending (offset requests read that).
async fn wait_for_single_stores_in_log(cluster: &TestCluster, node: u32, offset: u64) {
    // `StoreConsumerOffset { partition, consumer, offset }`, as serde_json
    // writes it; the offsets of `StoreConsumerOffsets` are tuples.
    let stored = format!("\"offset\":{offset}}}}}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while occurrences(cluster, node, &stored) < CONSUMERS as usize {
        assert!(
            Instant::now() < deadline,
            "broker {node}'s metadata log holds {} of the {CONSUMERS} stores of offset {offset} \
             (together: {})",
            occurrences(cluster, node, &stored),
            metadata_log_holds(cluster, node, TOGETHER)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// With broker 2 reading only metadata version 0: three rounds of polls
/// on a new topic, whose offsets are stored one command each and reach
/// broker 2's own metadata log, and never together. Returns the client
/// (on broker 0) for the rounds after.
pub async fn offsets_go_one_each(cluster: &TestCluster) -> IggyClient {
    let client = cluster.client(0).await;
    setup_topic(&client).await;
    for round in 0..3 {
        auto_commit_round(&client, round).await;
    }
    wait_for_single_stores_in_log(cluster, 2, 29).await;
    assert!(
        !metadata_log_holds(cluster, 0, TOGETHER),
        "the cluster wrote a command broker 2 does not read"
    );
    client
}

/// With every broker at version 1: rounds of polls from the fourth on
/// until offsets go together (a round's four can still split across two
/// commits), and reach broker 2's own metadata log too.
pub async fn offsets_go_together(cluster: &TestCluster, client: &IggyClient) {
    let mut round = 3;
    while !metadata_log_holds(cluster, 0, TOGETHER) {
        assert!(
            round < 10,
            "auto-commit offsets never went together once every broker read that"
        );
        auto_commit_round(client, round).await;
        round += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !metadata_log_holds(cluster, 2, TOGETHER) {
        assert!(
            Instant::now() < deadline,
            "broker 2 never got the offsets stored together"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
