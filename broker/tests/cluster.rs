//! N brokers as one cluster: real processes (`scripts/cluster.sh`), real
//! faults (kill -9, iptables), the official SDK as the client.

mod common;

use common::cluster::{RoundRobinProxy, TestCluster, client_at};
use common::*;
use iggy::prelude::*;
use std::time::{Duration, Instant};

fn reader_of_everything() -> Permissions {
    Permissions {
        global: GlobalPermissions {
            read_streams: true,
            read_topics: true,
            poll_messages: true,
            ..Default::default()
        },
        streams: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_made_through_one_broker_is_seen_and_usable_through_the_others() {
    let cluster = TestCluster::up(3);
    let first = cluster.client(0).await;
    create_stream_and_topic(&first, "orders", "events", 3).await;
    first
        .create_user(
            "reader",
            "reader-pass",
            UserStatus::Active,
            Some(reader_of_everything()),
        )
        .await
        .unwrap();
    let reader = client_at(cluster.node(0).tcp, "reader", "reader-pass").await;
    let token = reader
        .create_personal_access_token("ci-token", PersonalAccessTokenExpiry::NeverExpire)
        .await
        .unwrap()
        .token;
    first
        .create_consumer_group(&id("orders"), &id("events"), "workers")
        .await
        .unwrap();

    for node in [1, 2] {
        let other = cluster.client(node).await;
        let streams = other.get_streams().await.unwrap();
        assert_eq!(
            streams.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["orders"],
            "node {node}"
        );
        let topic = topic(&other, "orders", "events").await.unwrap();
        assert_eq!(topic.partitions_count, 3);
        let user = other
            .get_user(&Identifier::named("reader").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user.permissions, Some(reader_of_everything()));
        let group = other
            .get_consumer_group(&id("orders"), &id("events"), &id("workers"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(group.name, "workers");

        // The user logs in through this broker, with a password and with
        // the token, and its permissions hold here.
        let as_reader = client_at(cluster.node(node).tcp, "reader", "reader-pass").await;
        assert!(as_reader.get_stream(&id("orders")).await.unwrap().is_some());
        let denied = as_reader.create_stream("not-allowed").await.unwrap_err();
        assert_eq!(denied.as_code(), IggyError::Unauthorized.as_code());
        let by_token = IggyClient::builder()
            .with_tcp()
            .with_server_address(cluster.node(node).tcp.to_string())
            .build()
            .unwrap();
        by_token.connect().await.unwrap();
        by_token
            .login_with_personal_access_token(&token)
            .await
            .unwrap();
        assert_eq!(by_token.get_me().await.unwrap().user_id, Some(user.id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_a_wrong_secret_or_a_client_on_the_replica_port_gets_nothing() {
    use iggy_broker::cluster::transport::handshake::{HandshakeError, dial};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let cluster = TestCluster::up(2);
    let node = cluster.node(0);

    // A broker of this cluster's name, as node 1, with the wrong secret.
    let impostor = cluster.peer_settings(1, b"not-the-secret-not-the-secret-not".to_vec());
    let mut stream = tokio::net::TcpStream::connect(node.replica).await.unwrap();
    let refused = dial(&mut stream, &impostor, None, 0).await.unwrap_err();
    assert!(
        matches!(refused, HandshakeError::BadProof),
        "the listener's proof cannot check out under another secret: {refused}"
    );
    // Under another cluster's name it is refused outright, and logged.
    let mut stranger = impostor.clone();
    stranger.name = "another-cluster".into();
    let mut stream = tokio::net::TcpStream::connect(node.replica).await.unwrap();
    let refused = dial(&mut stream, &stranger, None, 0).await.unwrap_err();
    assert!(
        matches!(refused, HandshakeError::RefusedByPeer(_)),
        "{refused}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cluster.log(0).contains("refused a peer") {
        assert!(
            Instant::now() < deadline,
            "no log line for the refused peer"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Its retries are refused too, but not warned of every time.
    for _ in 0..4 {
        let mut stream = tokio::net::TcpStream::connect(node.replica).await.unwrap();
        dial(&mut stream, &stranger, None, 0).await.unwrap_err();
    }

    // With the name and the secret, but from a cluster founded apart (a
    // uid other than this cluster's).
    let mut own = impostor.clone();
    own.secret = std::fs::read(
        node.data
            .parent()
            .and_then(|p| p.parent())
            .unwrap()
            .join("secret"),
    )
    .unwrap();
    let uid = common::upgrade::wait_for_uid(&cluster, 0).await;
    let other = u64::from_str_radix(&uid, 16).unwrap() ^ 1;
    let mut stream = tokio::net::TcpStream::connect(node.replica).await.unwrap();
    let refused = dial(&mut stream, &own, Some(other), 0).await.unwrap_err();
    assert!(
        matches!(&refused, HandshakeError::RefusedByPeer(why) if why.contains("founded apart")),
        "{refused}"
    );
    // Another reason is news, warned of at once; the stranger's retries
    // before it were not.
    common::wait_for("the listener's warning", Duration::from_secs(5), || {
        cluster
            .log(0)
            .contains("refused a peer: the dialing broker belongs to another cluster of this name")
    })
    .await;
    let warnings = cluster
        .log(0)
        .lines()
        .filter(|l| {
            l.contains("WARN") && l.contains("refused a peer") && l.contains("another-cluster")
        })
        .count();
    assert_eq!(warnings, 1, "{}", cluster.log(0));

    // A broker dialing a client port gets no handshake from it.
    let mut stream = tokio::net::TcpStream::connect(node.tcp).await.unwrap();
    assert!(
        dial(&mut stream, &own, None, 0).await.is_err(),
        "a client listener took an inter-broker handshake"
    );

    // An Iggy client on the replica port: its request gets no reply, the
    // connection is closed.
    let mut client = tokio::net::TcpStream::connect(node.replica).await.unwrap();
    let mut request = vec![0u8; 256];
    request[48..52].copy_from_slice(&256u32.to_le_bytes());
    client.write_all(&request).await.unwrap();
    let mut reply = Vec::new();
    // Closed (or reset: the request was never read) without a byte sent.
    tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut reply))
        .await
        .expect("the broker closes the connection")
        .ok();
    assert!(reply.is_empty(), "got {reply:?}");
    // And the official SDK cannot log in there.
    let sdk = IggyClient::builder()
        .with_tcp()
        .with_server_address(node.replica.to_string())
        .with_reconnection_max_retries(Some(0))
        .build()
        .unwrap();
    let login = tokio::time::timeout(Duration::from_secs(20), async {
        sdk.connect().await?;
        sdk.login_user("iggy", "iggy").await
    })
    .await;
    assert!(!matches!(login, Ok(Ok(_))), "logged in on the replica port");
}

/// Every topic name of stream `s` as broker `node` lists them.
async fn topic_names(cluster: &TestCluster, node: u32) -> Vec<String> {
    let client = cluster.client(node).await;
    let mut names: Vec<String> = client
        .get_topics(&id("s"))
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    names.sort();
    names
}

/// Wait until broker `node` lists exactly `expected` (sorted) topics.
async fn wait_for_topics(cluster: &TestCluster, node: u32, expected: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let names = topic_names(cluster, node).await;
        if names == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {node} lists {} topics, expected {}",
            names.len(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_metadata_leader_is_replaced_and_no_acknowledged_change_is_lost() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    // Snapshot often, keep little log behind: a wiped broker must come back
    // through a snapshot.
    let mut cluster = TestCluster::up_with(
        3,
        &[
            ("IGGY_CLUSTER_SNAPSHOT_EVERY", "40"),
            ("IGGY_CLUSTER_LOG_KEPT", "5"),
        ],
    );
    let leader = cluster.wait_for_leader(None, Duration::from_secs(10)).await;
    let follower = (leader + 1) % 3;
    let client = cluster.client(follower).await;
    client.create_stream("s").await.unwrap();

    // A client keeps creating topics through a follower.
    let stop = Arc::new(AtomicBool::new(false));
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let creator = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("t{i:05}");
                match client
                    .create_topic(&id("s"), &name, &TopicCreateOptions::default())
                    .await
                {
                    Ok(_) => acked_tx.send(name).unwrap(),
                    Err(e) => failures.push(format!("{name}: {e}")),
                }
                i += 1;
            }
            failures
        })
    };
    let mut acked = Vec::new();
    while acked.len() < 30 {
        acked.push(acked_rx.recv().await.unwrap());
    }
    cluster.kill(leader);
    let killed_at = Instant::now();
    let new_leader = cluster
        .wait_for_leader(Some(leader), Duration::from_secs(3))
        .await;
    let failover = killed_at.elapsed();
    let before_kill = acked.len();
    while acked.len() < before_kill + 30 {
        acked.push(acked_rx.recv().await.unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    let failures = creator.await.unwrap();
    while let Ok(name) = acked_rx.try_recv() {
        acked.push(name);
    }
    acked.sort();
    eprintln!(
        "new leader {new_leader} after {failover:?}; {} topics acknowledged; failures: {failures:?}",
        acked.len()
    );

    // Every acknowledged creation is on every survivor — and nothing else.
    for node in cluster.running().map(|n| n.id).collect::<Vec<_>>() {
        wait_for_topics(&cluster, node, &acked).await;
    }

    // The killed broker restarts on its data and catches up.
    cluster.start(leader);
    wait_for_topics(&cluster, leader, &acked).await;

    // A broker whose data directory is wiped rejoins through a snapshot.
    let wiped = (new_leader + 1) % 3;
    cluster.kill(wiped);
    std::fs::remove_dir_all(&cluster.node(wiped).data).unwrap();
    cluster.start(wiped);
    wait_for_topics(&cluster, wiped, &acked).await;
    assert!(
        cluster.log(wiped).contains("installed a metadata snapshot"),
        "node {wiped} caught up without a snapshot:\n{}",
        cluster.log(wiped)
    );
}

/// A broker back with an empty metadata log does not vote until it has
/// caught up (`cluster::catching_up`). Here the metadata leader commits a
/// stream with one follower while the other is down, then loses its
/// volume; the follower that was down comes back on its older log while
/// the one that has the stream is cut off. With the wiped broker's vote the
/// older log would win an election and the stream would be lost (found by
/// `make chaos`, seed 24); without it nobody is elected until the cut-off
/// broker is back, and then the stream is everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_broker_does_not_vote_until_caught_up_so_nothing_committed_is_lost() {
    let mut cluster = TestCluster::up(3);
    let leader = cluster.wait_for_leader(None, Duration::from_secs(10)).await;
    let (stale, keeper) = ((leader + 1) % 3, (leader + 2) % 3);
    cluster.kill(stale);
    let client = cluster.client(leader).await;
    client.create_stream("committed").await.unwrap();
    drop(client);
    cluster.kill(leader);
    std::fs::remove_dir_all(&cluster.node(leader).data).unwrap();

    let cut_off = cluster.isolate(keeper);
    // Its log goes on from its first start.
    let earlier = cluster.log(leader).len();
    cluster.launch(stale);
    cluster.launch(leader);
    // Several election rounds' time: were the wiped broker to vote, the
    // broker on the older log would be elected within it.
    let mut elected = None;
    let window = Instant::now();
    while elected.is_none() && window.elapsed() < Duration::from_secs(8) {
        for id in [stale, leader] {
            if is_ready(cluster.node(id).http) {
                elected = cluster.leader_seen_by(id).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cut_off.heal();

    let now_leader = cluster.wait_for_leader(None, Duration::from_secs(30)).await;
    for node in 0..3 {
        let http = cluster.node(node).http;
        wait_for("the broker to be ready", Duration::from_secs(30), || {
            is_ready(http)
        })
        .await;
        let client = cluster.client(node).await;
        assert!(
            client.get_stream(&id("committed")).await.unwrap().is_some(),
            "broker {node} lost the committed stream (elected while the keeper was cut off: {elected:?})"
        );
    }
    assert_eq!(
        elected, None,
        "a leader was elected without the broker that had the log"
    );
    let log = cluster.log(leader);
    let after_the_wipe = log.get(earlier..).unwrap_or_default();
    assert!(after_the_wipe.contains("vote refused"), "{after_the_wipe}");
    eprintln!("after the cut: leader {now_leader} (keeper {keeper}, stale {stale})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_cut_off_cannot_commit_and_no_name_is_created_twice() {
    let cluster = TestCluster::up(3);
    let leader = cluster.wait_for_leader(None, Duration::from_secs(10)).await;
    let majority: Vec<u32> = (0..3).filter(|n| *n != leader).collect();
    let cut_off = cluster.node(leader).clone();
    let token = http_login(cut_off.http, "iggy", "iggy").await;
    let minority_client = cluster.client(leader).await;
    let majority_client = cluster.client(majority[0]).await;

    // Cut the leader off from the others.
    let isolation = cluster.isolate(leader);
    // It soon knows it has no majority behind it, refuses changes before
    // proposing anything, and says why: 58 (TransientNotAccepted: nothing
    // was applied, retry on another broker).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = http_json(
            cut_off.http,
            "POST",
            "/streams",
            Some(&token),
            r#"{"name":"dup"}"#,
        )
        .await;
        if response.contains(r#""id":58"#) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cut-off broker did not refuse: {response}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        cluster
            .log(leader)
            .contains("cut off from the cluster's majority"),
        "the cut-off broker does not log why"
    );

    // Both sides try to create the same name at once. The SDK on the
    // cut-off broker is refused and moves to a broker of the majority, as
    // the refusal tells it to; the majority elects a leader and commits.
    let minority = tokio::spawn(async move { minority_client.create_stream("dup").await });
    let majority_result = {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match majority_client.create_stream("dup").await {
                Ok(_) => break Ok(()),
                Err(e) if e.as_code() == 1012 => break Err(e),
                Err(e) => {
                    assert!(Instant::now() < deadline, "the majority cannot commit: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    };
    majority_client
        .create_stream("majority-only")
        .await
        .unwrap();
    let minority_result = minority.await.unwrap();
    let successes = [majority_result.is_ok(), minority_result.is_ok()];
    assert_eq!(
        successes.iter().filter(|ok| **ok).count(),
        1,
        "exactly one creation of `dup` succeeds: majority {majority_result:?}, minority {minority_result:?}"
    );
    for result in [majority_result.err(), minority_result.err()]
        .into_iter()
        .flatten()
    {
        assert_eq!(
            result.as_code(),
            1012,
            "the other is told it exists: {result}"
        );
    }

    // Healed, the cut-off broker converges on the majority's history.
    isolation.heal();
    let rejoined = cluster.client(leader).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut names: Vec<String> = rejoined
            .get_streams()
            .await
            .map(|s| s.into_iter().map(|s| s.name).collect())
            .unwrap_or_default();
        names.sort();
        if names == ["dup", "majority-only"] {
            break;
        }
        assert!(Instant::now() < deadline, "not converged: {names:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.wait_for_leader(None, Duration::from_secs(10)).await;
}

/// 10,000 messages from the SDK's high-level producer to a topic whose
/// partitions live on different brokers, consumed by three members of a
/// consumer group (the SDK's high-level consumer with its default
/// auto-commit), every client connected through one round-robin address.
/// Returns the ids each member consumed.
async fn produce_and_consume_through(address: std::net::SocketAddr) -> Vec<u128> {
    use futures::StreamExt;
    use std::sync::{Arc, Mutex};
    const MESSAGES: u128 = 10_000;
    const PARTITIONS: u32 = 3;
    let connection = format!("iggy://iggy:iggy@{address}");
    let producer_client = IggyClient::from_connection_string(&connection).unwrap();
    producer_client.connect().await.unwrap();
    let producer = producer_client
        .producer("s", "t")
        .unwrap()
        .create_stream_if_not_exists()
        .create_topic_if_not_exists(
            PARTITIONS,
            IggyExpiry::ServerDefault,
            MaxTopicSize::ServerDefault,
        )
        .partitioning(Partitioning::balanced())
        .build();
    producer.init().await.unwrap();

    let seen: Arc<Mutex<Vec<u128>>> = Arc::default();
    let mut members = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..3 {
        let client = IggyClient::from_connection_string(&connection).unwrap();
        client.connect().await.unwrap();
        let mut consumer = client
            .consumer_group("workers", "s", "t")
            .unwrap()
            .create_consumer_group_if_not_exists()
            .auto_join_consumer_group()
            .polling_strategy(PollingStrategy::next())
            .batch_length(500)
            .poll_interval(IggyDuration::from(10_000))
            .build();
        consumer.init().await.unwrap();
        let seen = seen.clone();
        members.push(tokio::spawn(async move {
            while let Some(message) = consumer.next().await {
                match message {
                    Ok(message) => seen.lock().unwrap().push(message.message.header.id),
                    Err(e) => eprintln!("consumer: {e}"),
                }
            }
        }));
        clients.push(client);
    }

    for batch in 0..MESSAGES / 100 {
        producer.send(messages(1 + batch * 100, 100)).await.unwrap();
    }
    // One marker per partition after the data: once every marker is in,
    // every message before it in its partition has been delivered.
    for partition in 0..PARTITIONS {
        producer_client
            .send_messages(
                &id("s"),
                &id("t"),
                &Partitioning::partition_id(partition),
                &mut messages(1_000_000 + u128::from(partition), 1),
            )
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let markers = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|id| **id >= 1_000_000)
            .count();
        if markers == PARTITIONS as usize {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "consumed {} messages, {markers} markers",
            seen.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for member in members {
        member.abort();
    }
    let consumed: Vec<u128> = seen
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|id| *id < 1_000_000)
        .collect();
    consumed
}

fn assert_exactly_once(consumed: &[u128]) {
    let mut sorted = consumed.to_vec();
    sorted.sort_unstable();
    let unique = sorted.len();
    sorted.dedup();
    assert_eq!(sorted.len(), 10_000, "missing messages");
    assert_eq!(unique, 10_000, "{} duplicates", unique - 10_000);
    assert_eq!(sorted, (1..=10_000).collect::<Vec<_>>());
}

/// The sum over running brokers of one metric series.
async fn cluster_metric(cluster: &TestCluster, series: &str) -> f64 {
    let mut total = 0.0;
    for node in cluster.running() {
        let metrics = http_get(node.http, "/metrics").await;
        total += metrics
            .lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_producer_and_consumer_group_through_a_round_robin_address_get_every_message_once() {
    // Every broker advertises its own address: a client that came in
    // through the shared address is redirected to the broker it reached,
    // and auto-committing polls are routed to each partition's broker
    // (GetPollRouting, AttachConsumerSession, PollMessagesOnPrimary).
    let cluster = TestCluster::up(3);
    let proxy = RoundRobinProxy::start(cluster.nodes.iter().map(|n| n.tcp).collect()).await;
    let consumed = produce_and_consume_through(proxy.address).await;
    assert_exactly_once(&consumed);
    assert_eq!(
        cluster_metric(&cluster, "iggy_broker_partition_leaders").await,
        3.0
    );
    for node in cluster.running() {
        let metrics = http_get(node.http, "/metrics").await;
        assert_eq!(
            metric(&metrics, "iggy_broker_partition_leaders"),
            1.0,
            "node {}",
            node.id
        );
    }
    let routed = r#"iggy_broker_request_duration_seconds_count{command="message.poll_primary"}"#;
    assert!(
        cluster_metric(&cluster, routed).await > 0.0,
        "no routed polls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_service_address_every_broker_advertises_the_sdk_is_never_redirected() {
    // Every broker advertises the shared address, as behind a Kubernetes
    // Service that clients reach by one address only: clients stay where the
    // proxy put them, and brokers forward to each partition's broker.
    let proxy = RoundRobinProxy::bind().await;
    let port = proxy.address.port().to_string();
    let cluster = TestCluster::up_with(
        3,
        &[
            ("IGGY_CLUSTER_ADVERTISED_HOST", "127.0.0.1"),
            ("IGGY_CLUSTER_ADVERTISED_TCP", &port),
        ],
    );
    proxy.set_backends(cluster.nodes.iter().map(|n| n.tcp).collect());
    let consumed = produce_and_consume_through(proxy.address).await;
    assert_exactly_once(&consumed);
    let forwarded = r#"iggy_broker_forwarded_requests_total{command="message.send"}"#;
    assert!(
        cluster_metric(&cluster, forwarded).await > 0.0,
        "no forwarded sends"
    );
    let forwarded = r#"iggy_broker_forwarded_requests_total{command="message.poll_primary"}"#;
    assert!(
        cluster_metric(&cluster, forwarded).await > 0.0,
        "no forwarded polls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_and_sdk_generation_reaches_every_partition_through_any_broker() {
    let cluster = TestCluster::up(3);
    // Three partitions: one on each broker.
    let tcp = cluster.client(0).await;
    create_stream_and_topic(&tcp, "s", "t", 3).await;

    // QUIC, connected to broker 1, writes to and reads from every partition.
    let quic = IggyClient::from_connection_string(&format!(
        "iggy+quic://iggy:iggy@{}",
        cluster.node(1).quic
    ))
    .unwrap();
    quic.connect().await.unwrap();
    for partition in 0..3u32 {
        send(
            &quic,
            "s",
            "t",
            &Partitioning::partition_id(partition),
            u128::from(partition) * 100 + 1,
            10,
        )
        .await;
    }
    for partition in 0..3u32 {
        let polled = poll_all(&quic, "s", "t", partition).await;
        let first = u128::from(partition) * 100 + 1;
        assert_eq!(
            polled.iter().map(|(_, id)| *id).collect::<Vec<_>>(),
            (first..first + 10).collect::<Vec<_>>(),
            "partition {partition} over QUIC through broker 1"
        );
    }

    // Any broker reports every partition's figures, wherever it is held.
    for node in 0..3 {
        let client = cluster.client(node).await;
        let details = topic(&client, "s", "t").await.unwrap();
        assert_eq!(details.messages_count, 30, "GetTopic through broker {node}");
        assert!(
            details
                .partitions
                .iter()
                .all(|p| p.messages_count == 10 && p.current_offset == 9),
            "GetTopic through broker {node}: {:?}",
            details.partitions
        );
        assert_eq!(client.get_stats().await.unwrap().messages_count, 30);
    }

    // HTTP through broker 2 reads them too; its access token works on
    // every broker.
    let http = IggyClient::from_connection_string(&format!(
        "iggy+http://iggy:iggy@{}",
        cluster.node(2).http
    ))
    .unwrap();
    http.connect().await.unwrap();
    http.login_user("iggy", "iggy").await.unwrap();
    for partition in 0..3u32 {
        assert_eq!(poll_all(&http, "s", "t", partition).await.len(), 10);
    }
    let token = http_login(cluster.node(2).http, "iggy", "iggy").await;
    let listed = http_json(cluster.node(0).http, "GET", "/streams", Some(&token), "").await;
    assert!(listed.starts_with("HTTP/1.0 200"), "{listed}");

    // The previous SDK generation (legacy framing) through broker 2.
    legacy::sends_and_polls_every_partition(cluster.node(2).tcp).await;
}

mod legacy {
    use iggy_010::prelude::*;

    fn id(name: &str) -> Identifier {
        Identifier::named(name).unwrap()
    }

    pub async fn sends_and_polls_every_partition(address: std::net::SocketAddr) {
        let client =
            IggyClient::from_connection_string(&format!("iggy://iggy:iggy@{address}")).unwrap();
        client.connect().await.unwrap();
        assert!(client.get_stream(&id("s")).await.unwrap().is_some());
        for partition in 0..3u32 {
            let mut batch = vec![
                IggyMessage::builder()
                    .id(1_000 + u128::from(partition))
                    .payload(bytes::Bytes::from("legacy"))
                    .build()
                    .unwrap(),
            ];
            client
                .send_messages(
                    &id("s"),
                    &id("t"),
                    &Partitioning::partition_id(partition),
                    &mut batch,
                )
                .await
                .unwrap();
            let polled = client
                .poll_messages(
                    &id("s"),
                    &id("t"),
                    Some(partition),
                    &Consumer::new(Identifier::numeric(7).unwrap()),
                    &PollingStrategy::offset(10),
                    10,
                    false,
                )
                .await
                .unwrap();
            assert_eq!(polled.messages.len(), 1, "partition {partition}");
            assert_eq!(polled.messages[0].header.id, 1_000 + u128::from(partition));
        }
    }
}

/// The middle of a rolling upgrade: while one broker reads only the
/// metadata commands of the build before (`cluster.metadata_version`
/// pinned to 0, which is what that build registers), the cluster writes
/// nothing newer — the offsets of auto-commit polls go as one command each
/// instead of together — and once that broker registers this build's
/// version they go together again. (`broker/tests/upgrade.rs` does the
/// same with a real broker of the build before.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_writes_only_metadata_commands_every_broker_reads() {
    use common::upgrade::*;
    let mut cluster = TestCluster::up(3);
    cluster.set_node_env(2, &[("IGGY_CLUSTER_METADATA_VERSION", "0")]);
    cluster.stop(2);
    cluster.start(2);
    wait_for_metadata_version(&cluster, 0).await;
    let client = offsets_go_one_each(&cluster).await;

    cluster.set_node_env(2, &[]);
    cluster.stop(2);
    cluster.start(2);
    wait_for_metadata_version(&cluster, NEWEST).await;
    offsets_go_together(&cluster, &client).await;
}

/// A cluster that ran a build from before uids (metadata version 1) has
/// none, and gets one once every broker reads `NameCluster` — the same on
/// every broker (`cluster::uid`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_of_an_older_build_is_named_once_every_broker_reads_it() {
    use common::upgrade::*;
    let mut cluster = TestCluster::up_with(3, &[("IGGY_CLUSTER_METADATA_VERSION", "1")]);
    wait_for_metadata_version(&cluster, 1).await;
    // The metadata leader has seen that it may not name the cluster yet.
    let leader = cluster.wait_for_leader(None, Duration::from_secs(10)).await;
    common::wait_for("the leader to hold off", Duration::from_secs(10), || {
        cluster.log(leader).contains("the cluster stays unnamed")
    })
    .await;
    let status = replicated::admin_get(&cluster, 0, "/cluster/status").await;
    assert!(status.get("uid").is_none(), "named at version 1: {status}");

    roll_to_newest(&mut cluster).await;
    let mut uids = Vec::new();
    for node in [0, 1, 2] {
        uids.push(wait_for_uid(&cluster, node).await);
    }
    assert!(uids.iter().all(|uid| *uid == uids[0]), "{uids:?}");
}

/// A lone founder restarted before its cluster is named (naming held back
/// here by a metadata version pin; otherwise a crash within a few hundred
/// milliseconds of founding) still knows the uid it chose, so it keeps
/// refusing brokers of another cluster of its name — and names the cluster
/// with that uid once it may.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_founder_restarted_before_naming_keeps_the_uid_it_chose() {
    use common::upgrade::*;
    let mut cluster = TestCluster::up_with(1, &[("IGGY_CLUSTER_METADATA_VERSION", "1")]);
    let chosen = wait_for_uid(&cluster, 0).await;
    assert!(!cluster.log(0).contains("this broker's cluster is named"));

    cluster.kill(0);
    cluster.start(0);
    let status = replicated::admin_get(&cluster, 0, "/cluster/status").await;
    assert_eq!(status["uid"].as_str(), Some(chosen.as_str()), "{status}");

    roll_to_newest(&mut cluster).await;
    common::wait_for("the cluster to be named", Duration::from_secs(10), || {
        cluster
            .log(0)
            .lines()
            .any(|l| l.contains("this broker's cluster is named") && l.contains(&chosen))
    })
    .await;
    assert_eq!(wait_for_uid(&cluster, 0).await, chosen);
}
