//! A replicated topic under test: partition 0's state from the admin API,
//! a producer that records what became of every send, and the check that
//! nothing acknowledged was lost, duplicated or reordered.

use super::cluster::TestCluster;
use super::{http_get_with, http_login};
use iggy::prelude::*;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Deserialize)]
pub struct PartitionStatus {
    pub partition_id: u32,
    pub replicas: Vec<u32>,
    pub leader: Option<u32>,
    pub leader_epoch: u32,
    pub in_sync: Vec<u32>,
    /// As the broker asked knows it (if it holds a replica).
    pub committed: Option<u64>,
    pub reassigning: Option<Vec<u32>>,
}

/// Partition 0's replication as broker `via` reports it.
pub async fn partition_status(cluster: &TestCluster, via: u32) -> Option<PartitionStatus> {
    let http = cluster.node(via).http;
    let token = http_login(http, "iggy", "iggy").await;
    let response = http_get_with(
        http,
        "/cluster/partitions",
        &format!("Authorization: Bearer {token}\r\n"),
    )
    .await;
    let body = response.split("\r\n\r\n").nth(1)?;
    let all: Vec<PartitionStatus> = serde_json::from_str(body).ok()?;
    all.into_iter().find(|p| p.partition_id == 0)
}

/// Wait until broker `via` (a running one if `None`) reports partition 0
/// in a state that `ready` accepts; `what` names it in the failure.
pub async fn wait_until(
    cluster: &TestCluster,
    via: Option<u32>,
    what: &str,
    ready: impl Fn(&PartitionStatus) -> bool,
) -> PartitionStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = None;
    loop {
        let via = via.unwrap_or_else(|| cluster.running().next().expect("a running broker").id);
        if let Some(status) = partition_status(cluster, via).await {
            if ready(&status) {
                return status;
            }
            last = Some(status);
        }
        assert!(
            Instant::now() < deadline,
            "partition 0 not {what} (as broker {via} sees it): {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait until every running broker reports partition 0 led by the same
/// running broker, in the same epoch, with `in_sync` replicas in sync (a
/// broker just healed from isolation still reports what it knew before).
pub async fn wait_for_partition(cluster: &TestCluster, in_sync: usize) -> PartitionStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut seen = Vec::new();
        for node in cluster.running().map(|n| n.id).collect::<Vec<_>>() {
            seen.push(partition_status(cluster, node).await);
        }
        let first = seen.first().cloned().flatten();
        if let Some(status) = &first
            && status
                .leader
                .is_some_and(|leader| cluster.node(leader).running)
            && status.in_sync.len() == in_sync
            && seen.iter().all(|s| {
                s.as_ref().is_some_and(|s| {
                    (s.leader, s.leader_epoch, s.in_sync.len())
                        == (status.leader, status.leader_epoch, in_sync)
                })
            })
        {
            return status.clone();
        }
        assert!(
            Instant::now() < deadline,
            "partition 0 not led with {in_sync} in sync on every broker: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Three brokers (with extra `env`) and stream `s`, topic `t` of one
/// partition with `factor` replicas; returns its state once all are in
/// sync.
pub async fn replicated_topic(
    factor: usize,
    env: &[(&str, &str)],
) -> (TestCluster, PartitionStatus) {
    let factor_text = factor.to_string();
    let mut all = vec![(
        "IGGY_CLUSTER_DEFAULT_REPLICATION_FACTOR",
        factor_text.as_str(),
    )];
    all.extend_from_slice(env);
    let cluster = TestCluster::up_with(3, &all);
    let admin = cluster.client(0).await;
    admin.create_stream("s").await.unwrap();
    admin
        .create_topic(
            &Identifier::named("s").unwrap(),
            "t",
            &TopicCreateOptions::default(),
        )
        .await
        .unwrap();
    let created = wait_for_partition(&cluster, factor).await;
    assert_eq!(created.replicas.len(), factor, "{created:?}");
    (cluster, created)
}

/// The SDK's HTTP client, logged in as root: served by the broker it is
/// sent to (HTTP has no redirect to a leader).
pub async fn http_client(address: SocketAddr) -> IggyClient {
    let client =
        IggyClient::from_connection_string(&format!("iggy+http://iggy:iggy@{address}")).unwrap();
    client.connect().await.unwrap();
    client.login_user("iggy", "iggy").await.unwrap();
    client
}

/// What the producer learned about one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged: when the send started and when the ack came.
    Acked(Instant, Instant),
    /// Failed or timed out: it may or may not have been kept.
    Unknown,
}

pub async fn connect(address: SocketAddr) -> Option<IggyClient> {
    let client = IggyClient::from_connection_string(&format!("iggy://iggy:iggy@{address}")).ok()?;
    // A killed broker refuses at once, but the SDK keeps retrying it.
    tokio::time::timeout(Duration::from_millis(500), client.connect())
        .await
        .ok()?
        .ok()?;
    Some(client)
}

/// Send message ids 1, 2, 3, … one by one (each waits for its
/// acknowledgement) until `stop`; a failed send is not retried (so an
/// acknowledged message is never sent twice) and the producer moves to the
/// next broker.
pub async fn produce(
    addresses: Vec<SocketAddr>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut next_broker = 0usize;
    let mut client: Option<IggyClient> = None;
    // Id 0 asks for a generated id: start at 1.
    let mut id: u128 = 1;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let Some(current) = client.as_ref() else {
            client = connect(addresses[next_broker % addresses.len()]).await;
            next_broker += 1;
            if client.is_none() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            continue;
        };
        // A send to a killed broker fails at once or hangs while the SDK
        // reconnects to the same address; either way, move on.
        let started = Instant::now();
        let sent = tokio::time::timeout(Duration::from_secs(1), send_one(current, id)).await;
        let outcome = match sent {
            Ok(Ok(_)) => Outcome::Acked(started, Instant::now()),
            _ => {
                client = None;
                Outcome::Unknown
            }
        };
        outcomes.lock().unwrap().push(outcome);
        id += 1;
    }
}

pub fn acked_count(outcomes: &Mutex<Vec<Outcome>>) -> usize {
    outcomes
        .lock()
        .unwrap()
        .iter()
        .filter(|o| matches!(o, Outcome::Acked(..)))
        .count()
}

pub async fn wait_for_acks(outcomes: &Mutex<Vec<Outcome>>, at_least: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while acked_count(outcomes) < at_least {
        assert!(
            Instant::now() < deadline,
            "only {} of {at_least} sends acknowledged within {timeout:?}",
            acked_count(outcomes)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The producer of [`produce`], running in the background.
pub struct Producer {
    pub outcomes: Arc<Mutex<Vec<Outcome>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Producer {
    pub fn start(cluster: &TestCluster) -> Self {
        let addresses: Vec<SocketAddr> = cluster.nodes.iter().map(|n| n.tcp).collect();
        let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let task = tokio::spawn(produce(addresses, outcomes.clone(), stop.clone()));
        Self {
            outcomes,
            stop,
            task,
        }
    }

    /// Wait for `count` more acknowledgements (sends are flowing).
    pub async fn more_acks(&self, count: usize) {
        let target = acked_count(&self.outcomes) + count;
        wait_for_acks(&self.outcomes, target, Duration::from_secs(20)).await;
    }

    /// Stop; what became of every send.
    pub async fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.task.await.unwrap();
        self.outcomes.lock().unwrap().clone()
    }
}

/// The log (message ids in offset order) holds every acknowledged send
/// (outcome `i` is message id `i + 1`), none twice, and the acknowledged
/// ones in the order they were sent. A send whose outcome the producer
/// never learned (it gave up and moved on) may be missing, or may land
/// after later sends: a forwarding broker can still deliver it.
pub fn assert_every_acknowledged_message_once_in_order(outcomes: &[Outcome], ids: &[u128]) {
    let mut seen = std::collections::HashSet::new();
    let duplicated: Vec<u128> = ids.iter().copied().filter(|id| !seen.insert(*id)).collect();
    assert!(duplicated.is_empty(), "stored twice: {duplicated:?}");
    let acked = |id: u128| {
        outcomes
            .get(id as usize - 1)
            .is_some_and(|o| matches!(o, Outcome::Acked(..)))
    };
    let acked_in_log: Vec<u128> = ids.iter().copied().filter(|id| acked(*id)).collect();
    for pair in acked_in_log.windows(2) {
        assert!(
            pair[0] < pair[1],
            "acknowledged messages out of order: {pair:?}"
        );
    }
    let lost: Vec<u128> = (1..=outcomes.len() as u128)
        .filter(|id| acked(*id) && !seen.contains(id))
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
}

/// Partition 0 read through every running broker (each may answer from
/// another broker's replica): the same log from all of them, returned once.
pub async fn read_through_every_broker(cluster: &TestCluster) -> Vec<(u64, u128)> {
    let mut logs = Vec::new();
    for node in cluster.running().map(|n| n.id).collect::<Vec<_>>() {
        let client = cluster.client(node).await;
        logs.push(read_all(&client).await);
    }
    for (node, log) in logs.iter().enumerate() {
        assert_eq!(log, &logs[0], "broker {node} serves a different log");
    }
    logs.swap_remove(0)
}

/// Stop `producer`, read partition 0 through every broker (they must
/// agree) and check every acknowledged message is there once, in order.
/// Returns what the producer learned and the ids stored.
pub async fn finish_and_check(
    producer: Producer,
    cluster: &TestCluster,
) -> (Vec<Outcome>, Vec<u128>) {
    let outcomes = producer.finish().await;
    let ids: Vec<u128> = read_through_every_broker(cluster)
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_every_acknowledged_message_once_in_order(&outcomes, &ids);
    (outcomes, ids)
}

/// Every message of partition 0, in offset order, read through `client`.
pub async fn read_all(client: &IggyClient) -> Vec<(u64, u128)> {
    let (stream, topic) = (
        Identifier::named("s").unwrap(),
        Identifier::named("t").unwrap(),
    );
    let consumer = Consumer::new(Identifier::named("checker").unwrap());
    let mut read = Vec::new();
    let mut offset = 0;
    loop {
        let polled = client
            .poll_messages(
                &stream,
                &topic,
                Some(0),
                &consumer,
                &PollingStrategy::offset(offset),
                1000,
                false,
            )
            .await
            .unwrap();
        if polled.messages.is_empty() {
            return read;
        }
        for message in &polled.messages {
            read.push((message.header.offset, message.header.id));
        }
        offset = read.last().unwrap().0 + 1;
    }
}

/// Send one message with `id` to partition 0 through `client`.
pub async fn send_one(client: &IggyClient, id: u128) -> Result<(), IggyError> {
    let mut messages = vec![
        IggyMessage::builder()
            .id(id)
            .payload(bytes::Bytes::from(format!("message {id}")))
            .build()
            .unwrap(),
    ];
    client
        .send_messages(
            &Identifier::named("s").unwrap(),
            &Identifier::named("t").unwrap(),
            &Partitioning::partition_id(0),
            &mut messages,
        )
        .await
        .map(|_| ())
}

/// Stream `s` and topic `t` of `partitions` partitions (the cluster's
/// default replication factor), created through broker 0.
pub async fn create_topic_with_partitions(cluster: &TestCluster, partitions: u32) {
    let client = cluster.client(0).await;
    client.create_stream("s").await.unwrap();
    client
        .create_topic(
            &Identifier::named("s").unwrap(),
            "t",
            &TopicCreateOptions {
                partitions_count: Some(partitions),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

/// `POST` to the admin API of broker `via`; returns the status code.
pub async fn admin_post(cluster: &TestCluster, via: u32, path: &str, body: &str) -> (u16, String) {
    admin_call(cluster, via, "POST", path, body).await
}

/// `DELETE` on the admin API of broker `via`; returns the status code.
pub async fn admin_delete(cluster: &TestCluster, via: u32, path: &str) -> (u16, String) {
    admin_call(cluster, via, "DELETE", path, "").await
}

async fn admin_call(
    cluster: &TestCluster,
    via: u32,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String) {
    let http = cluster.node(via).http;
    let token = http_login(http, "iggy", "iggy").await;
    let response = super::http_json(http, method, path, Some(&token), body).await;
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, response)
}

/// `GET` from the admin API of broker `via`, as JSON.
pub async fn admin_get(cluster: &TestCluster, via: u32, path: &str) -> serde_json::Value {
    let http = cluster.node(via).http;
    let token = http_login(http, "iggy", "iggy").await;
    let response = http_get_with(http, path, &format!("Authorization: Bearer {token}\r\n")).await;
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {response}"))
}

/// The voters of the metadata group as broker `via` reports them.
pub async fn voters(cluster: &TestCluster, via: u32) -> Vec<u32> {
    let status = admin_get(cluster, via, "/cluster/status").await;
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["voter"] == true)
        .map(|n| n["id"].as_u64().unwrap() as u32)
        .collect()
}

pub async fn wait_for_voters(cluster: &TestCluster, via: u32, want: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = voters(cluster, via).await;
        if seen == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "voters {seen:?}, expected {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Replicas (or, with `leaders`, leaderships) per broker.
pub fn per_broker(partitions: &serde_json::Value, leaders: bool) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for p in partitions.as_array().unwrap() {
        if leaders {
            if let Some(l) = p["leader"].as_u64() {
                *counts.entry(l).or_default() += 1;
            }
        } else {
            for r in p["replicas"].as_array().unwrap() {
                *counts.entry(r.as_u64().unwrap()).or_default() += 1;
            }
        }
    }
    counts
}

pub fn settled(partitions: &serde_json::Value) -> bool {
    partitions.as_array().unwrap().iter().all(|p| {
        p["reassigning"].is_null()
            && p["in_sync"].as_array().map(Vec::len) == p["replicas"].as_array().map(Vec::len)
    })
}

/// Whether broker `node` holds (or is about to hold) a replica.
pub fn holds(partitions: &serde_json::Value, node: u64) -> bool {
    partitions.as_array().unwrap().iter().any(|p| {
        [&p["replicas"], &p["reassigning"]]
            .iter()
            .filter_map(|list| list.as_array())
            .any(|list| list.iter().any(|r| r.as_u64() == Some(node)))
    })
}
