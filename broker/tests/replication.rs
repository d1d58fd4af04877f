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

/// Wait until a running broker reports partition 0 led by a running
/// broker with `in_sync` replicas in sync.
async fn wait_for_partition(
    cluster: &TestCluster,
    in_sync: usize,
    timeout: Duration,
) -> PartitionStatus {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        let via = cluster.running().next().expect("a running broker").id;
        if let Some(status) = partition_status(cluster, via).await {
            if status
                .leader
                .is_some_and(|leader| cluster.node(leader).running)
                && status.in_sync.len() == in_sync
            {
                return status;
            }
            last = Some(status);
        }
        assert!(
            Instant::now() < deadline,
            "partition 0 not led with {in_sync} in sync within {timeout:?}: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Three brokers (with extra `env`) and stream `s`, topic `t` of one
/// partition replicated on all three; returns the partition's leader.
async fn replicated_topic(env: &[(&str, &str)]) -> (TestCluster, u32) {
    let mut all = vec![("IGGY_CLUSTER_DEFAULT_REPLICATION_FACTOR", "3")];
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
    let created = wait_for_partition(&cluster, 3, Duration::from_secs(10)).await;
    assert_eq!(created.replicas.len(), 3, "{created:?}");
    (cluster, created.leader.unwrap())
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
    let (mut cluster, _) = replicated_topic(&[]).await;

    let addresses: Vec<SocketAddr> = cluster.nodes.iter().map(|n| n.tcp).collect();
    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = tokio::spawn(produce(addresses, outcomes.clone(), stop.clone()));

    let mut failovers = Vec::new();
    for round in 0..rounds {
        let status = wait_for_partition(&cluster, 3, Duration::from_secs(30)).await;
        let leader = status.leader.unwrap();
        wait_for_acks(
            &outcomes,
            acked_count(&outcomes) + 100,
            Duration::from_secs(20),
        )
        .await;
        let killed_at = cluster.kill_timed(leader);
        let elected = wait_for_partition(&cluster, 2, Duration::from_secs(10)).await;
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
        let now = wait_for_partition(&cluster, 2, Duration::from_secs(10)).await;
        eprintln!(
            "round {round}: killed leader {leader} (epoch {}); new leader {:?} (epoch {}) seen after {elected_after:?}; writes resumed after {failover:?}",
            status.leader_epoch, elected.leader, now.leader_epoch
        );
        assert_ne!(now.leader, Some(leader));
        assert!(now.leader_epoch > status.leader_epoch);
        failovers.push(failover);
        cluster.start(leader);
    }
    wait_for_partition(&cluster, 3, Duration::from_secs(30)).await;
    wait_for_acks(
        &outcomes,
        acked_count(&outcomes) + 100,
        Duration::from_secs(20),
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    producer.await.unwrap();

    // Read everything back through every broker: the same log everywhere.
    let outcomes = outcomes.lock().unwrap().clone();
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
    for pair in ids.windows(2) {
        assert!(pair[0] < pair[1], "out of order or duplicated: {pair:?}");
    }
    let offsets: Vec<u64> = read.iter().map(|(offset, _)| *offset).collect();
    assert_eq!(
        offsets,
        (0..read.len() as u64).collect::<Vec<_>>(),
        "offsets have holes"
    );
    let stored: std::collections::HashSet<u128> = ids.iter().copied().collect();
    // Outcome `i` is message id `i + 1`.
    let lost: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| (i + 1, o))
        .filter(|(id, o)| matches!(o, Outcome::Acked(..)) && !stored.contains(&(*id as u128)))
        .map(|(id, _)| id)
        .collect();
    let unknown = outcomes.iter().filter(|o| **o == Outcome::Unknown).count();
    let mut sorted = failovers.clone();
    sorted.sort();
    eprintln!(
        "{} sends: {} acknowledged, {unknown} failed; {} stored; failovers {sorted:?}",
        outcomes.len(),
        outcomes.len() - unknown,
        read.len()
    );
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
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
    let (cluster, old) = replicated_topic(&[("IGGY_CLUSTER_WRITE_TIMEOUT", "2s")]).await;

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
    let deadline = Instant::now() + Duration::from_secs(10);
    let new = loop {
        if let Some(status) = partition_status(&cluster, majority).await
            && let Some(leader) = status.leader
            && leader != old
        {
            break leader;
        }
        assert!(
            Instant::now() < deadline,
            "no new leader on the majority side"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let to_new = http_client(cluster.node(new).http).await;
    for id in 2000..2010 {
        send_one(&to_new, id).await.unwrap();
    }

    // Healed: the old leader follows, cutting off what it never committed.
    drop(isolation);
    wait_for_partition(&cluster, 3, Duration::from_secs(20)).await;
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
    let (mut cluster, leader) = replicated_topic(&[]).await;
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
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = partition_status(&cluster, a).await;
        // Broker `a` reports its own replica's committed offset.
        let committed_here = status.as_ref().and_then(|s| s.committed);
        if status.as_ref().is_some_and(|s| s.in_sync.contains(&a)) && committed_here == Some(100) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "broker {a} did not catch up: {status:?}, committed here {committed_here:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
