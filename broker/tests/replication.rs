//! Replicated partitions on real broker processes (`scripts/cluster.sh`),
//! driven by the official SDK: a producer keeps sending while the
//! partition's leader is killed again and again; afterwards every
//! acknowledged message must be read back exactly once, in order.

mod common;

use common::cluster::TestCluster;
use common::replicated::*;
use iggy::prelude::*;
use std::time::Duration;

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
    let read = &read_through_every_broker(&cluster).await;
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

    let partitions = admin_get(&cluster, 2, "/cluster/partitions").await;
    let replicas_of = |topic_id: u64| {
        partitions
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["topic_id"] == topic_id)
            .map(|p| p["replicas"].as_array().unwrap().len())
    };
    // Topics get ids 0, 1, 2 in creation order ("four" was refused).
    assert_eq!(replicas_of(0), Some(3), "{partitions}");
    assert_eq!(replicas_of(1), Some(1), "{partitions}");
    assert_eq!(replicas_of(2), Some(2), "{partitions}");

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitions_replicas_go_to_different_zones() {
    // Brokers 0 and 1 in zone a, 2 and 3 in zone b: by load alone the
    // first partition would go to 0 and 1, both in a.
    let cluster = TestCluster::up_with(
        4,
        &[
            ("CLUSTER_ZONES", "a,a,b,b"),
            ("IGGY_CLUSTER_DEFAULT_REPLICATION_FACTOR", "2"),
        ],
    );
    let mut zone_of = std::collections::BTreeMap::new();
    for _ in 0..100 {
        let status = admin_get(&cluster, 0, "/cluster/status").await;
        zone_of = status["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| Some((n["id"].as_u64()?, n["zone"].as_str()?.to_string())))
            .collect();
        if zone_of.len() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        zone_of.values().map(String::as_str).collect::<Vec<_>>(),
        ["a", "a", "b", "b"],
        "every broker registered its zone"
    );
    create_topic_with_partitions(&cluster, 4).await;
    // Broker 3 applies the new topic a moment after the client hears OK.
    let mut partitions = Vec::new();
    for _ in 0..100 {
        let listed = admin_get(&cluster, 3, "/cluster/partitions").await;
        partitions = listed.as_array().unwrap().clone();
        if partitions.len() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(partitions.len(), 4, "{partitions:?}");
    for partition in &partitions {
        let zones: std::collections::BTreeSet<&str> = partition["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| zone_of[&r.as_u64().unwrap()].as_str())
            .collect();
        assert_eq!(zones.len(), 2, "{partition}");
    }
}

async fn safe_to_restart(cluster: &TestCluster, node: u32) -> serde_json::Value {
    admin_get(
        cluster,
        0,
        &format!("/cluster/nodes/{node}/safe-to-restart"),
    )
    .await
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

    let (outcomes, ids) = finish_and_check(producer, &cluster).await;
    eprintln!(
        "{} sends, {} stored; moved to {target:?} and back to {:?}",
        outcomes.len(),
        ids.len(),
        start.replicas
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_a_topics_replication_factor_under_load_loses_nothing() {
    let (cluster, start) = replicated_topic(1, &[]).await;
    let producer = Producer::start(&cluster);
    producer.more_acks(100).await;

    let path = "/cluster/topics/s/t/replication-factor";
    let (code, response) = admin_post(&cluster, 1, path, r#"{"factor":3}"#).await;
    assert_eq!(code, 202, "{response}");
    assert!(response.contains(r#""min_in_sync":2"#), "{response}");
    let grown = wait_for_replicas(&cluster, &[0, 1, 2]).await;
    assert_eq!(
        grown.replicas[0], start.replicas[0],
        "the preferred leader stays first: {grown:?}"
    );
    producer.more_acks(100).await;

    let (code, response) = admin_post(&cluster, 2, path, r#"{"factor":2}"#).await;
    assert_eq!(code, 202, "{response}");
    let shrunk = wait_until(&cluster, Some(0), "two replicas in sync", |s| {
        s.replicas.len() == 2 && s.in_sync.len() == 2 && s.reassigning.is_none()
    })
    .await;
    assert!(
        shrunk.leader.is_some_and(|l| shrunk.replicas.contains(&l)),
        "{shrunk:?}"
    );
    producer.more_acks(100).await;

    let (code, response) = admin_post(&cluster, 0, path, r#"{"factor":4}"#).await;
    assert_eq!(code, 400, "more replicas than brokers: {response}");

    let (outcomes, ids) = finish_and_check(producer, &cluster).await;
    // The topic kept accepting sends: growing the factor does not demand
    // the new replicas before they have caught up.
    let failed = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Unknown))
        .count();
    assert_eq!(failed, 0, "sends failed while the factor changed");
    eprintln!(
        "{} sends, {} stored; factor 1 on {:?} → 3 → 2 on {:?}",
        outcomes.len(),
        ids.len(),
        start.replicas,
        shrunk.replicas
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalancing_spreads_replicas_and_leaders_evenly_under_load() {
    let cluster = TestCluster::up(3);
    create_topic_with_partitions(&cluster, 6).await;
    let producer = Producer::start(&cluster);
    producer.more_acks(50).await;

    // Pile every partition onto broker 0.
    for partition in 0..6 {
        let (code, response) = admin_post(
            &cluster,
            1,
            &format!("/cluster/partitions/s/t/{partition}/reassign"),
            r#"{"replicas":[0]}"#,
        )
        .await;
        assert_eq!(code, 202, "{response}");
    }
    let per_broker = |partitions: &serde_json::Value, leaders: bool| {
        let mut counts = [0usize; 3];
        for p in partitions.as_array().unwrap() {
            if leaders {
                if let Some(l) = p["leader"].as_u64() {
                    counts[l as usize] += 1;
                }
            } else {
                for r in p["replicas"].as_array().unwrap() {
                    counts[r.as_u64().unwrap() as usize] += 1;
                }
            }
        }
        counts
    };
    let settled = |partitions: &serde_json::Value| {
        partitions
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["reassigning"].is_null() && p["leader"] == p["replicas"][0])
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let partitions = admin_get(&cluster, 0, "/cluster/partitions").await;
        if settled(&partitions) && per_broker(&partitions, false) == [6, 0, 0] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{partitions}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    producer.more_acks(50).await;

    // Rebalance a few moves at a time until the brokers say it is done.
    let mut calls = 0;
    loop {
        let (code, response) =
            admin_post(&cluster, 2, "/cluster/rebalance", r#"{"max_moves":2}"#).await;
        assert_eq!(code, 202, "{response}");
        calls += 1;
        if response.contains(r#""balanced":true"#) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline + Duration::from_secs(60),
            "{response}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let partitions = admin_get(&cluster, 0, "/cluster/partitions").await;
    assert!(settled(&partitions), "{partitions}");
    assert_eq!(per_broker(&partitions, false), [2, 2, 2], "{partitions}");
    assert_eq!(per_broker(&partitions, true), [2, 2, 2], "{partitions}");
    producer.more_acks(50).await;
    let (outcomes, ids) = finish_and_check(producer, &cluster).await;
    eprintln!(
        "{} sends, {} stored; balanced after {calls} calls",
        outcomes.len(),
        ids.len()
    );
}
