//! Replicated partitions on real broker processes (`scripts/cluster.sh`),
//! driven by the official SDK: a producer keeps sending while the
//! partition's leader is killed again and again; afterwards every
//! acknowledged message must be read back exactly once, in order.

mod common;

use common::cluster::TestCluster;
use common::{http_get_with, http_login};
use iggy::prelude::*;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Deserialize)]
struct PartitionStatus {
    partition_id: u32,
    replicas: Vec<u32>,
    leader: Option<u32>,
    leader_epoch: u32,
    in_sync: Vec<u32>,
    /// As the broker asked knows it (if it holds a replica).
    committed: Option<u64>,
    reassigning: Option<Vec<u32>>,
}

/// Partition 0's replication as broker `via` reports it.
async fn partition_status(cluster: &TestCluster, via: u32) -> Option<PartitionStatus> {
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
async fn wait_until(
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

/// Wait until partition 0 is led by a running broker with `in_sync`
/// replicas in sync.
async fn wait_for_partition(cluster: &TestCluster, in_sync: usize) -> PartitionStatus {
    wait_until(cluster, None, &format!("led with {in_sync} in sync"), |s| {
        s.leader.is_some_and(|leader| cluster.node(leader).running) && s.in_sync.len() == in_sync
    })
    .await
}

/// Three brokers (with extra `env`) and stream `s`, topic `t` of one
/// partition with `factor` replicas; returns its state once all are in
/// sync.
async fn replicated_topic(factor: usize, env: &[(&str, &str)]) -> (TestCluster, PartitionStatus) {
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
async fn http_client(address: SocketAddr) -> IggyClient {
    let client =
        IggyClient::from_connection_string(&format!("iggy+http://iggy:iggy@{address}")).unwrap();
    client.connect().await.unwrap();
    client.login_user("iggy", "iggy").await.unwrap();
    client
}

/// What the producer learned about one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Acknowledged: when the send started and when the ack came.
    Acked(Instant, Instant),
    /// Failed or timed out: it may or may not have been kept.
    Unknown,
}

async fn connect(address: SocketAddr) -> Option<IggyClient> {
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
async fn produce(
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

fn acked_count(outcomes: &Mutex<Vec<Outcome>>) -> usize {
    outcomes
        .lock()
        .unwrap()
        .iter()
        .filter(|o| matches!(o, Outcome::Acked(..)))
        .count()
}

async fn wait_for_acks(outcomes: &Mutex<Vec<Outcome>>, at_least: usize, timeout: Duration) {
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
struct Producer {
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Producer {
    fn start(cluster: &TestCluster) -> Self {
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
    async fn more_acks(&self, count: usize) {
        let target = acked_count(&self.outcomes) + count;
        wait_for_acks(&self.outcomes, target, Duration::from_secs(20)).await;
    }

    /// Stop; what became of every send.
    async fn finish(self) -> Vec<Outcome> {
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
fn assert_every_acknowledged_message_once_in_order(outcomes: &[Outcome], ids: &[u128]) {
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

/// Every message of partition 0, in offset order, read through `client`.
async fn read_all(client: &IggyClient) -> Vec<(u64, u128)> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_partition_leader_loses_no_acknowledged_message() {
    // A short run here; `IGGY_FAILOVER_ROUNDS=20` for the measurement in
    // docs/benchmarks.md.
    let rounds: usize = std::env::var("IGGY_FAILOVER_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(4);
    let (mut cluster, _) = replicated_topic(3, &[]).await;

    let producer = Producer::start(&cluster);
    let outcomes = producer.outcomes.clone();

    let mut failovers = Vec::new();
    for round in 0..rounds {
        let status = wait_for_partition(&cluster, 3).await;
        let leader = status.leader.unwrap();
        producer.more_acks(100).await;
        let killed_at = cluster.kill_timed(leader);
        let elected = wait_for_partition(&cluster, 2).await;
        let elected_after = killed_at.elapsed();
        // Writes resumed: the first acknowledgement of a send started after
        // the kill (acks already on their way from the old leader do not
        // count).
        let resumed = loop {
            let first = outcomes.lock().unwrap().iter().find_map(|o| match o {
                Outcome::Acked(started, acked) if *started > killed_at => Some(*acked),
                _ => None,
            });
            if let Some(acked) = first {
                break acked;
            }
            assert!(
                killed_at.elapsed() < Duration::from_secs(20),
                "no write acknowledged within 20 s of killing the leader"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let failover = resumed - killed_at;
        let now = wait_for_partition(&cluster, 2).await;
        eprintln!(
            "round {round}: killed leader {leader} (epoch {}); new leader {:?} (epoch {}) seen after {elected_after:?}; writes resumed after {failover:?}",
            status.leader_epoch, elected.leader, now.leader_epoch
        );
        assert_ne!(now.leader, Some(leader));
        assert!(now.leader_epoch > status.leader_epoch);
        failovers.push(failover);
        cluster.start(leader);
    }
    wait_for_partition(&cluster, 3).await;
    producer.more_acks(100).await;
    let outcomes = producer.finish().await;

    // Read everything back through every broker: the same log everywhere.
    let mut logs = Vec::new();
    for node in 0..3 {
        let client = cluster.client(node).await;
        logs.push(read_all(&client).await);
    }
    let read = &logs[0];
    for (node, log) in logs.iter().enumerate() {
        assert_eq!(log, read, "broker {node} serves a different log");
    }
    let ids: Vec<u128> = read.iter().map(|(_, id)| *id).collect();
    let offsets: Vec<u64> = read.iter().map(|(offset, _)| *offset).collect();
    assert_eq!(
        offsets,
        (0..read.len() as u64).collect::<Vec<_>>(),
        "offsets have holes"
    );
    let unknown = outcomes.iter().filter(|o| **o == Outcome::Unknown).count();
    let mut sorted = failovers.clone();
    sorted.sort();
    eprintln!(
        "{} sends: {} acknowledged, {unknown} failed; {} stored; failovers {sorted:?}",
        outcomes.len(),
        outcomes.len() - unknown,
        read.len()
    );
    assert_every_acknowledged_message_once_in_order(&outcomes, &ids);
    assert!(
        sorted.last().unwrap() < &Duration::from_secs(5),
        "writes resumed too late: {sorted:?}"
    );
}

/// Send one message with `id` to partition 0 through `client`.
async fn send_one(client: &IggyClient, id: u128) -> Result<(), IggyError> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_partition_leader_acknowledges_nothing_and_rejoins_the_new_leaders_log() {
    let (cluster, created) = replicated_topic(3, &[("IGGY_CLUSTER_WRITE_TIMEOUT", "2s")]).await;
    let old = created.leader.unwrap();

    let to_old = http_client(cluster.node(old).http).await;
    for id in 1..=10 {
        send_one(&to_old, id).await.unwrap();
    }

    let isolation = cluster.isolate(old);
    for id in 1000..1003 {
        let answer = send_one(&to_old, id).await;
        assert!(
            answer.is_err(),
            "the cut-off leader acknowledged message {id}"
        );
    }

    // The other side elects a leader among the in-sync replicas and goes on.
    let majority = (old + 1) % 3;
    let new = wait_until(&cluster, Some(majority), "led by another broker", |s| {
        s.leader.is_some_and(|leader| leader != old)
    })
    .await
    .leader
    .unwrap();
    let to_new = http_client(cluster.node(new).http).await;
    for id in 2000..2010 {
        send_one(&to_new, id).await.unwrap();
    }
    // The new leader reports it: one partition led, short of a replica.
    let metrics = common::http_get(cluster.node(new).http, "/metrics").await;
    assert_eq!(
        common::metric(&metrics, "iggy_broker_partition_leaders"),
        1.0
    );
    assert_eq!(
        common::metric(&metrics, "iggy_broker_under_replicated_partitions"),
        1.0
    );

    // Healed: the old leader follows, cutting off what it never committed.
    drop(isolation);
    wait_for_partition(&cluster, 3).await;
    let expected: Vec<u128> = (1..=10).chain(2000..2010).collect();
    for node in 0..3 {
        let client = cluster.client(node).await;
        let ids: Vec<u128> = read_all(&client)
            .await
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        assert_eq!(ids, expected, "the log as broker {node} serves it");
    }
    assert!(
        cluster
            .log(old)
            .contains("cut off a tail the leader does not have"),
        "{}",
        cluster.log(old)
    );
}

/// The previous SDK generation, sending and reading through a broker that
/// does not lead the partition.
mod legacy {
    use iggy_010::prelude::*;

    /// Create topic `name` in stream `s` with the 0.10 CreateTopic's own
    /// replication factor field.
    pub async fn create_topic(address: std::net::SocketAddr, name: &str, factor: u8) {
        let client =
            IggyClient::from_connection_string(&format!("iggy://iggy:iggy@{address}")).unwrap();
        client.connect().await.unwrap();
        client
            .create_topic(
                &Identifier::named("s").unwrap(),
                name,
                1,
                CompressionAlgorithm::None,
                Some(factor),
                IggyExpiry::NeverExpire,
                MaxTopicSize::ServerDefault,
            )
            .await
            .unwrap();
    }

    pub async fn send_and_read(
        address: std::net::SocketAddr,
        ids: std::ops::Range<u128>,
    ) -> Vec<u128> {
        let client =
            IggyClient::from_connection_string(&format!("iggy://iggy:iggy@{address}")).unwrap();
        client.connect().await.unwrap();
        let (stream, topic) = (
            Identifier::named("s").unwrap(),
            Identifier::named("t").unwrap(),
        );
        let mut batch: Vec<IggyMessage> = ids
            .map(|id| {
                IggyMessage::builder()
                    .id(id)
                    .payload(bytes::Bytes::from("legacy"))
                    .build()
                    .unwrap()
            })
            .collect();
        client
            .send_messages(&stream, &topic, &Partitioning::partition_id(0), &mut batch)
            .await
            .unwrap();
        let polled = client
            .poll_messages(
                &stream,
                &topic,
                Some(0),
                &Consumer::new(Identifier::numeric(7).unwrap()),
                &PollingStrategy::offset(0),
                1000,
                false,
            )
            .await
            .unwrap();
        polled.messages.iter().map(|m| m.header.id).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_sdks_and_http_use_a_replicated_partition_through_followers_and_a_wiped_follower_catches_up()
 {
    let (mut cluster, created) = replicated_topic(3, &[]).await;
    let leader = created.leader.unwrap();
    let (a, b) = ((leader + 1) % 3, (leader + 2) % 3);

    // The 0.10 SDK through one follower, HTTP through the other.
    let read = legacy::send_and_read(cluster.node(a).tcp, 1..51).await;
    assert_eq!(read, (1..51).collect::<Vec<_>>());
    let http = http_client(cluster.node(b).http).await;
    for id in 51..101 {
        send_one(&http, id).await.unwrap();
    }
    let ids: Vec<u128> = read_all(&http)
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(ids, (1..101).collect::<Vec<_>>());

    // A follower loses its disk, comes back empty and copies the log again.
    cluster.kill(a);
    std::fs::remove_dir_all(&cluster.node(a).data).unwrap();
    cluster.start(a);
    // Broker `a` reports its own replica's committed offset.
    wait_until(&cluster, Some(a), "caught up on the wiped broker", |s| {
        s.in_sync.contains(&a) && s.committed == Some(100)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replication_factor_comes_from_the_topic_option_the_010_field_or_the_cluster_default() {
    let cluster = TestCluster::up(3);
    let client = cluster.client(0).await;
    client.create_stream("s").await.unwrap();
    let stream = Identifier::named("s").unwrap();
    let with_factor = |factor: &str| TopicCreateOptions {
        raw: [("replication_factor".to_string(), factor.to_string())].into(),
        ..Default::default()
    };
    client
        .create_topic(&stream, "three", &with_factor("3"))
        .await
        .unwrap();
    client
        .create_topic(&stream, "default", &TopicCreateOptions::default())
        .await
        .unwrap();
    let refused = client
        .create_topic(&stream, "four", &with_factor("4"))
        .await
        .unwrap_err();
    assert_eq!(
        refused.as_code(),
        IggyError::InvalidReplicationFactor.as_code(),
        "{refused}"
    );
    legacy::create_topic(cluster.node(1).tcp, "two", 2).await;

    let token = http_login(cluster.node(2).http, "iggy", "iggy").await;
    let response = http_get_with(
        cluster.node(2).http,
        "/cluster/partitions",
        &format!("Authorization: Bearer {token}\r\n"),
    )
    .await;
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    let partitions: Vec<serde_json::Value> = serde_json::from_str(body).unwrap();
    let replicas_of = |topic_id: u64| {
        partitions
            .iter()
            .find(|p| p["topic_id"] == topic_id)
            .map(|p| p["replicas"].as_array().unwrap().len())
    };
    // Topics get ids 0, 1, 2 in creation order ("four" was refused).
    assert_eq!(replicas_of(0), Some(3), "{body}");
    assert_eq!(replicas_of(1), Some(1), "{body}");
    assert_eq!(replicas_of(2), Some(2), "{body}");

    let catalog = client
        .describe_options(iggy::prelude::OptionsScope::Topic)
        .await
        .unwrap();
    assert!(
        catalog
            .iter()
            .any(|entry| entry.key == "replication_factor"),
        "{catalog:?}"
    );
}

/// `POST` to the admin API of broker `via`; returns the status code.
async fn admin_post(cluster: &TestCluster, via: u32, path: &str, body: &str) -> (u16, String) {
    let http = cluster.node(via).http;
    let token = http_login(http, "iggy", "iggy").await;
    let response = common::http_json(http, "POST", path, Some(&token), body).await;
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, response)
}

async fn safe_to_restart(cluster: &TestCluster, node: u32) -> serde_json::Value {
    let http = cluster.node(0).http;
    let token = http_login(http, "iggy", "iggy").await;
    let response = http_get_with(
        http,
        &format!("/cluster/nodes/{node}/safe-to-restart"),
        &format!("Authorization: Bearer {token}\r\n"),
    )
    .await;
    serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap_or_default()).unwrap()
}

/// Wait until partition 0 sits on exactly `replicas` (in any order), with
/// no reassignment left and every replica in sync.
async fn wait_for_replicas(cluster: &TestCluster, replicas: &[u32]) -> PartitionStatus {
    let sorted = |list: &[u32]| {
        let mut list = list.to_vec();
        list.sort_unstable();
        list
    };
    let want = sorted(replicas);
    wait_until(cluster, Some(0), &format!("settled on {replicas:?}"), |s| {
        sorted(&s.replicas) == want && sorted(&s.in_sync) == want && s.reassigning.is_none()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reassigning_and_draining_under_load_lose_nothing_and_an_unsafe_restart_is_named() {
    let (cluster, start) = replicated_topic(2, &[]).await;
    let spare = (0..3).find(|n| !start.replicas.contains(n)).unwrap();

    // Factor 2, minimum 2: restarting a replica would stop the sends.
    let holder = safe_to_restart(&cluster, start.replicas[0]).await;
    assert_eq!(holder["safe"], false, "{holder}");
    assert!(
        holder["reasons"][0]
            .as_str()
            .unwrap()
            .contains("partition 0"),
        "{holder}"
    );
    assert_eq!(safe_to_restart(&cluster, spare).await["safe"], true);

    let producer = Producer::start(&cluster);
    producer.more_acks(100).await;

    // Move the partition off its preferred leader onto the spare broker.
    let target = vec![spare, start.replicas[1]];
    let (code, response) = admin_post(
        &cluster,
        1,
        "/cluster/partitions/s/t/0/reassign",
        &format!(r#"{{"replicas":{target:?}}}"#),
    )
    .await;
    assert_eq!(code, 202, "{response}");
    let moved = wait_for_replicas(&cluster, &target).await;
    assert!(
        moved.leader.is_some_and(|l| target.contains(&l)),
        "{moved:?}"
    );
    producer.more_acks(100).await;

    // Drain the spare again: its replica goes to the one broker left.
    let (code, response) =
        admin_post(&cluster, 2, &format!("/cluster/nodes/{spare}/drain"), "").await;
    assert_eq!(code, 202, "{response}");
    let drained = wait_for_replicas(&cluster, &start.replicas).await;
    assert!(!drained.replicas.contains(&spare));
    producer.more_acks(100).await;

    let outcomes = producer.finish().await;
    let client = cluster.client(0).await;
    let ids: Vec<u128> = read_all(&client)
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_every_acknowledged_message_once_in_order(&outcomes, &ids);
    eprintln!(
        "{} sends, {} stored; moved to {target:?} and back to {:?}",
        outcomes.len(),
        ids.len(),
        start.replicas
    );
}
