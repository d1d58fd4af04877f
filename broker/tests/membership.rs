//! A cluster that grows and shrinks: real broker processes
//! (`scripts/cluster.sh`) join the metadata group, take partitions through
//! a rebalance, and leave after being drained, while an SDK producer keeps
//! sending; afterwards every acknowledged message is read back once. And a
//! founder back on an empty volume joins the cluster instead of forking it,
//! or, when it cannot tell, is kept apart from it.

mod common;

use common::cluster::TestCluster;
use common::replicated::*;
use common::upgrade::wait_for_uid;
use iggy::prelude::*;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_join_take_partitions_and_leave_drained_under_load() {
    let mut cluster =
        TestCluster::up_with_spare(3, 2, &[("IGGY_CLUSTER_DEFAULT_REPLICATION_FACTOR", "3")]);
    assert_eq!(voters(&cluster, 0).await, vec![0, 1, 2]);
    create_topic_with_partitions(&cluster, 6).await;
    let producer = Producer::start(&cluster);
    producer.more_acks(50).await;

    // Grow 3 → 5: the new brokers join by themselves.
    let grow = Instant::now();
    cluster.start(3);
    cluster.start(4);
    wait_for_voters(&cluster, 0, &[0, 1, 2, 3, 4]).await;
    wait_for_voters(&cluster, 4, &[0, 1, 2, 3, 4]).await;
    let joined = grow.elapsed();
    producer.more_acks(50).await;

    // Then take their share of the partitions.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut calls = 0;
    loop {
        let (code, response) =
            admin_post(&cluster, 3, "/cluster/rebalance", r#"{"max_moves":3}"#).await;
        assert_eq!(code, 202, "{response}");
        calls += 1;
        if response.contains(r#""balanced":true"#) {
            break;
        }
        assert!(Instant::now() < deadline, "{response}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let rebalanced = grow.elapsed();
    let partitions = admin_get(&cluster, 0, "/cluster/partitions").await;
    assert!(settled(&partitions), "{partitions}");
    // 18 replicas and 6 leaders over 5 brokers: 3 or 4, 1 or 2 each.
    let replicas = per_broker(&partitions, false);
    assert_eq!(replicas.len(), 5, "{partitions}");
    assert!(
        replicas.values().all(|c| (3..=4).contains(c)),
        "{replicas:?}"
    );
    let leaders = per_broker(&partitions, true);
    assert!(leaders.values().all(|c| (1..=2).contains(c)), "{leaders:?}");
    producer.more_acks(50).await;

    // A broker that holds replicas is not removed.
    let (code, response) = admin_delete(&cluster, 1, "/cluster/nodes/4").await;
    assert_eq!(code, 409, "{response}");
    assert!(response.contains("drain it first"), "{response}");

    // Shrink 5 → 3, one drained broker at a time.
    let shrink = Instant::now();
    for node in [4u32, 3] {
        let (code, response) =
            admin_post(&cluster, 0, &format!("/cluster/nodes/{node}/drain"), "").await;
        assert_eq!(code, 202, "{response}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let partitions = admin_get(&cluster, 0, "/cluster/partitions").await;
            if !holds(&partitions, node.into()) && settled(&partitions) {
                break;
            }
            assert!(Instant::now() < deadline, "{partitions}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (code, response) = admin_delete(&cluster, 0, &format!("/cluster/nodes/{node}")).await;
        assert_eq!(code, 200, "{response}");
        assert!(response.contains(r#""removed":true"#), "{response}");
        let remaining: Vec<u32> = (0..node).collect();
        wait_for_voters(&cluster, 1, &remaining).await;
        cluster.kill(node);
        producer.more_acks(20).await;
    }
    let shrunk = shrink.elapsed();
    // Removing it again is a no-op.
    let (code, response) = admin_delete(&cluster, 0, "/cluster/nodes/4").await;
    assert_eq!(code, 200, "{response}");
    assert!(response.contains(r#""removed":false"#), "{response}");

    // Broker 3 comes back on its old volume: it was removed, so it asks to
    // join again and becomes a voter.
    let back = Instant::now();
    cluster.start(3);
    wait_for_voters(&cluster, 0, &[0, 1, 2, 3]).await;
    let rejoined = back.elapsed();
    producer.more_acks(50).await;

    let (outcomes, ids) = finish_and_check(producer, &cluster).await;
    eprintln!(
        "{} sends, {} stored; 3 → 5 joined in {joined:?}, balanced in {rebalanced:?} \
         ({calls} calls); 5 → 3 in {shrunk:?}; a removed broker rejoined in {rejoined:?}",
        outcomes.len(),
        ids.len()
    );
}

/// A cluster founded by one broker and grown to three: the founder back on
/// an empty volume joins the cluster it founded, instead of founding a
/// second, empty one under the same name (`cluster::founding`). The others
/// cannot reach it at first (their connections to it are refused; its own
/// to them work), which is when a second cluster would take writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_founder_back_on_an_empty_volume_joins_its_cluster_instead_of_forking() {
    let mut cluster = founded_by_one_grown_to_three(3).await;

    cluster.kill(0);
    std::fs::remove_dir_all(&cluster.node(0).data).unwrap();
    let unreachable = cluster.refuse_peers_of(0);
    // The log goes on from the first start, when broker 0 did found.
    let earlier = cluster.log(0).len();
    cluster.launch(0);
    common::wait_for("broker 0 to decide", Duration::from_secs(30), || {
        let log = cluster.log(0);
        let now = log.get(earlier..).unwrap_or_default();
        now.contains("not founding one") || now.contains("founding the cluster")
    })
    .await;
    // A stream created through broker 0 now must not be acknowledged by
    // anything but the cluster. Tried for a while: a broker that founded
    // a cluster of its own creates its root user first.
    let address = cluster.node(0).tcp;
    let create = || async {
        let client = IggyClient::from_connection_string(&format!("iggy://iggy:iggy@{address}"))?;
        client.connect().await?;
        client.create_stream("while-unreachable").await
    };
    let window = Instant::now();
    let mut acknowledged = false;
    while !acknowledged && window.elapsed() < Duration::from_secs(5) {
        acknowledged = matches!(
            tokio::time::timeout(Duration::from_secs(2), create()).await,
            Ok(Ok(_))
        );
        if !acknowledged {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    unreachable.heal();

    let back = Instant::now();
    let http = cluster.node(0).http;
    common::wait_for("broker 0 to be ready", Duration::from_secs(30), || {
        common::is_ready(http)
    })
    .await;
    wait_for_voters(&cluster, 0, &[0, 1, 2]).await;
    let leader = cluster.wait_for_leader(None, Duration::from_secs(30)).await;
    let through_0 = cluster.client(0).await;
    let topic = common::topic(&through_0, "s", "t").await;
    assert_eq!(
        topic.map(|t| t.partitions_count),
        Some(3),
        "broker 0 does not see the cluster's topic"
    );
    let through_1 = cluster.client(1).await;
    let seen_by_0 = stream_names(&through_0).await;
    let seen_by_1 = stream_names(&through_1).await;
    assert_eq!(seen_by_0, seen_by_1, "brokers 0 and 1 disagree");
    if acknowledged {
        assert!(
            seen_by_1.contains(&"while-unreachable".to_string()),
            "broker 0 acknowledged a stream the cluster does not have: {seen_by_1:?}"
        );
    }
    let log = cluster.log(0);
    let after_the_wipe = log.get(earlier..).unwrap_or_default();
    assert!(
        after_the_wipe.contains("joining it, not founding one"),
        "{after_the_wipe}"
    );
    eprintln!(
        "the founder back on an empty volume: stream acknowledged while unreachable: \
         {acknowledged}; in the cluster {:?} after its peers could reach it (leader {leader})",
        back.elapsed()
    );
}

/// What founding cannot tell apart: the same founder back on an empty
/// volume while its whole cluster is down founds a new cluster once it
/// has waited for the others (`cluster::founding`). When they come back,
/// the two clusters refuse each other (`cluster::uid`): the cluster runs
/// on with its metadata and the fork keeps its own, where the same log
/// ids would otherwise let the cluster's leader stream its entries on top
/// of the fork's. The fork reports itself not ready; emptying its volume
/// again lets it join.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_founder_that_founded_again_on_an_empty_volume_is_kept_apart_from_its_cluster() {
    let mut cluster = founded_by_one_grown_to_three(1).await;
    let named = wait_for_uid(&cluster, 0).await;

    for node in [0, 1, 2] {
        cluster.kill(node);
    }
    std::fs::remove_dir_all(&cluster.node(0).data).unwrap();
    // Ready once it has waited for its silent peers and founded alone.
    cluster.start(0);
    let forked = wait_for_uid(&cluster, 0).await;
    assert_ne!(forked, named, "a cluster founded again got the same uid");
    // It chose that uid before founding, so it refused the old cluster's
    // brokers from its first entry on, not only once the name applied.
    assert!(
        cluster
            .log(0)
            .lines()
            .any(|l| l.contains("founding the cluster") && l.contains(&forked)),
        "the lone founder did not found with its uid chosen"
    );
    let through_0 = cluster.client(0).await;
    through_0.create_stream("fork").await.unwrap();
    create_fork_topic(&through_0, "t").await.unwrap();
    send_to_fork(&through_0).await.unwrap();

    let earlier = cluster.log(0).len();
    // Neither is ready before the other is up: they are a majority of
    // the three voters only together.
    cluster.launch(1);
    cluster.launch(2);
    for node in [1, 2] {
        let http = cluster.node(node).http;
        common::wait_for(
            "brokers 1 and 2 to be ready",
            Duration::from_secs(60),
            || common::is_ready(http),
        )
        .await;
    }
    // The cluster's metadata leader still counts broker 0 as a voter and
    // calls it; broker 0 refuses, and the leader says why.
    common::wait_for(
        "broker 0 to refuse the cluster",
        Duration::from_secs(30),
        || {
            let log = cluster.log(0);
            log.get(earlier..)
                .unwrap_or_default()
                .contains("founded apart")
        },
    )
    .await;
    common::wait_for("the cluster to hear why", Duration::from_secs(30), || {
        [1, 2].iter().any(|node| {
            cluster
                .log(*node)
                .lines()
                .any(|l| l.contains("refused by the peer") && l.contains("founded apart"))
        })
    })
    .await;
    // Broker 0 can tell it is the odd one out, and takes no clients
    // through a load balancer; the cluster's brokers stay ready.
    let readyz = common::http_get(cluster.node(0).http, "/readyz").await;
    assert!(
        readyz.contains(" 503 ") && readyz.contains("founded apart"),
        "{readyz}"
    );
    assert!(common::is_ready(cluster.node(1).http) && common::is_ready(cluster.node(2).http));
    // Nor does it take writes from clients connected to it directly: they
    // would go with its volume. The refusal is `TransientNotAccepted`,
    // which the SDK's TCP client retries at another broker if it knows one
    // (for about 30 s when it knows only the fork); over HTTP it comes at
    // once. The broker's log says why.
    let over_http = http_client(cluster.node(0).http).await;
    for refused in [
        send_to_fork(&over_http)
            .await
            .expect_err("the fork took a send"),
        create_fork_topic(&over_http, "later")
            .await
            .expect_err("the fork took a topic"),
    ] {
        assert!(refused.to_string().contains("\"id\":58"), "{refused}");
    }
    assert!(
        cluster
            .log(0)
            .contains("refused a client's write: founded apart"),
        "broker 0 did not say why it refused"
    );
    let fork = through_0
        .get_stream(&Identifier::named("fork").unwrap())
        .await
        .unwrap()
        .expect("the fork's stream");
    assert_eq!(
        (fork.topics_count, fork.messages_count),
        (1, 1),
        "the fork changed"
    );
    let through_1 = cluster.client(1).await;
    through_1.create_stream("after").await.unwrap();
    assert_eq!(wait_for_uid(&cluster, 1).await, named);
    assert_eq!(stream_names(&through_1).await, ["after", "s"]);
    assert_eq!(
        stream_names(&through_0).await,
        ["fork"],
        "broker 0 took entries of the cluster it was refused by"
    );

    // The way back: empty the fork's volume, and it joins its cluster.
    cluster.kill(0);
    std::fs::remove_dir_all(&cluster.node(0).data).unwrap();
    cluster.start(0);
    wait_for_voters(&cluster, 1, &[0, 1, 2]).await;
    assert_eq!(wait_for_uid(&cluster, 0).await, named);
    let through_0 = cluster.client(0).await;
    assert_eq!(stream_names(&through_0).await, ["after", "s"]);
}

/// Create topic `name` in the fork's stream.
async fn create_fork_topic(client: &IggyClient, name: &str) -> Result<(), IggyError> {
    client
        .create_topic(
            &Identifier::named("fork").unwrap(),
            name,
            &TopicCreateOptions::default(),
        )
        .await
        .map(drop)
}

/// Send one message to the fork's topic `t`.
async fn send_to_fork(client: &IggyClient) -> Result<(), IggyError> {
    client
        .send_messages(
            &Identifier::named("fork").unwrap(),
            &Identifier::named("t").unwrap(),
            &Partitioning::partition_id(0),
            &mut common::messages(1, 1),
        )
        .await
        .map(drop)
}

/// A cluster founded by broker 0 alone, joined by brokers 1 and 2, with
/// topic `t` of stream `s` (`partitions` partitions).
async fn founded_by_one_grown_to_three(partitions: u32) -> TestCluster {
    let mut cluster = TestCluster::up_with_spare(1, 2, &[]);
    cluster.start(1);
    cluster.start(2);
    wait_for_voters(&cluster, 0, &[0, 1, 2]).await;
    create_topic_with_partitions(&cluster, partitions).await;
    cluster
}

/// Every stream's name, sorted, as `client`'s broker lists them.
async fn stream_names(client: &IggyClient) -> Vec<String> {
    let mut names: Vec<String> = client
        .get_streams()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    names.sort();
    names
}
