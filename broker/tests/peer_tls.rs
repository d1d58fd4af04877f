//! Mutual TLS between brokers (`[cluster.tls]`) on real processes
//! (`scripts/cluster.sh` with `CLUSTER_TLS=1`: a CA of the cluster and a
//! certificate per broker for its address): brokers replicate over it,
//! refuse a peer that speaks plain TCP or presents a certificate of
//! another CA, and take new certificates and a new CA without a restart.

mod common;

use common::cluster::TestCluster;
use common::replicated::*;
use common::tls::{TestCa, replace_file};
use iggy_broker::cluster::transport::handshake::dial;
use iggy_broker::config::{ClusterSettings, PeerTlsSettings};
use iggy_broker::tls::peer::PeerTls;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// The settings of a broker that would be node `as_node` of `cluster`,
/// with the cluster's own secret: everything a peer needs but a
/// certificate.
fn peer_settings(cluster: &TestCluster, as_node: u32) -> ClusterSettings {
    let secret = std::fs::read(cluster.dir().join("secret")).unwrap();
    cluster.peer_settings(as_node, secret)
}

/// Dial `to`'s replica port over TLS with `cert`/`key`, trusting `ca`,
/// and run the inter-broker handshake as node `as_node`.
async fn dial_with(
    cluster: &TestCluster,
    to: u32,
    as_node: u32,
    (cert, key): (&Path, &Path),
    ca: &Path,
) -> Result<(), String> {
    let tls = PeerTls::load(&PeerTlsSettings {
        cert: cert.into(),
        key: key.into(),
        ca: ca.into(),
        reload_interval: Duration::from_secs(1),
        accept_plaintext: false,
    })
    .map_err(|e| format!("{e:#}"))?;
    let address: SocketAddr = cluster.node(to).replica;
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut stream = tls
        .connect(&address.ip().to_string(), tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    dial(&mut stream, &peer_settings(cluster, as_node), None, to)
        .await
        .map(|_| ())
        .map_err(|e| format!("handshake: {e}"))
}

/// Wait until broker `id`'s log holds `text` at least `count` times.
async fn wait_for_log(cluster: &TestCluster, id: u32, text: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while cluster.log(id).matches(text).count() < count {
        assert!(
            Instant::now() < deadline,
            "broker {id} never logged `{text}` {count} time(s):\n{}",
            cluster.log(id)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn replica_certificate_expiry(cluster: &TestCluster, id: u32) -> f64 {
    let metrics = common::http_get(cluster.node(id).http, "/metrics").await;
    common::metric(
        &metrics,
        r#"iggy_broker_tls_certificate_not_after_seconds{listener="replica"}"#,
    )
}

async fn send_and_read_back(cluster: &TestCluster, from: u128, count: u128) {
    let client = cluster.client(0).await;
    for id in from..from + count {
        send_one(&client, id).await.unwrap();
    }
    let ids: Vec<u128> = read_through_every_broker(cluster)
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(ids, (1..from + count).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_replicate_over_mutual_tls_and_refuse_peers_without_a_certificate_of_the_cluster_ca()
 {
    let cluster = TestCluster::up_with(
        3,
        &[
            ("CLUSTER_TLS", "1"),
            ("IGGY_CLUSTER_DEFAULT_REPLICATION_FACTOR", "3"),
        ],
    );
    create_topic_with_partitions(&cluster, 1).await;
    wait_for_partition(&cluster, 3).await;
    send_and_read_back(&cluster, 1, 20).await;
    assert!(replica_certificate_expiry(&cluster, 0).await > 0.0);

    let tls = cluster.dir().join("tls");
    let ca = tls.join("ca.crt");
    // A broker's own certificate gets through (what the refusals below
    // are measured against).
    dial_with(
        &cluster,
        0,
        1,
        (&tls.join("node-1.crt"), &tls.join("node-1.key")),
        &ca,
    )
    .await
    .expect("a certificate of the cluster's CA is accepted");

    // Plain TCP with the right secret: refused, and logged.
    let mut tcp = tokio::net::TcpStream::connect(cluster.node(0).replica)
        .await
        .unwrap();
    let plain = dial(&mut tcp, &peer_settings(&cluster, 1), None, 0).await;
    assert!(plain.is_err(), "a plain-TCP peer got through");
    wait_for_log(
        &cluster,
        0,
        "refused a connection to the replica port: TLS",
        1,
    )
    .await;

    // A certificate from another CA (for the right address, right secret):
    // refused.
    let stranger = TestCa::new("another CA");
    let (cert, key) = stranger.issue(&[cluster.node(1).replica.ip().to_string()]);
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("c.crt"), dir.path().join("c.key"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let refused = dial_with(&cluster, 0, 1, (&cert_path, &key_path), &ca).await;
    assert!(refused.is_err(), "a certificate of another CA got through");
    wait_for_log(
        &cluster,
        0,
        "refused a connection to the replica port: TLS",
        2,
    )
    .await;

    // The brokers are none the worse for it.
    send_and_read_back(&cluster, 21, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_certificates_and_a_new_ca_are_taken_without_a_restart() {
    let mut cluster = TestCluster::up_with(
        3,
        &[
            ("CLUSTER_TLS", "1"),
            ("IGGY_CLUSTER_DEFAULT_REPLICATION_FACTOR", "3"),
        ],
    );
    create_topic_with_partitions(&cluster, 1).await;
    wait_for_partition(&cluster, 3).await;
    send_and_read_back(&cluster, 1, 10).await;
    let tls = cluster.dir().join("tls");
    let old_ca = std::fs::read_to_string(tls.join("ca.crt")).unwrap();
    let old_cert = (tls.join("old-node-1.crt"), tls.join("old-node-1.key"));
    std::fs::copy(tls.join("node-1.crt"), &old_cert.0).unwrap();
    std::fs::copy(tls.join("node-1.key"), &old_cert.1).unwrap();
    let before = replica_certificate_expiry(&cluster, 0).await;

    // 1. Trust both CAs.
    let new_ca = TestCa::new("the next CA");
    replace_file(&tls.join("ca.crt"), &format!("{old_ca}{}", new_ca.pem));
    for id in 0..3 {
        wait_for_log(&cluster, id, "trusted CAs reloaded", 1).await;
    }
    // 2. New certificates from the new CA.
    for id in 0..3 {
        let (cert, key) = new_ca.issue(&[cluster.node(id).replica.ip().to_string()]);
        replace_file(&tls.join(format!("node-{id}.key")), &key);
        replace_file(&tls.join(format!("node-{id}.crt")), &cert);
    }
    for id in 0..3 {
        wait_for_log(&cluster, id, "TLS certificate reloaded", 1).await;
    }
    assert_ne!(replica_certificate_expiry(&cluster, 0).await, before);
    // 3. Only the new CA.
    replace_file(&tls.join("ca.crt"), &new_ca.pem);
    for id in 0..3 {
        wait_for_log(&cluster, id, "trusted CAs reloaded", 2).await;
    }
    // What the operator reads to follow a rotation.
    for id in 0..3 {
        let report = admin_get(&cluster, id, "/cluster/tls").await;
        let trusted = report["trusted_cas"].as_array().unwrap();
        assert_eq!(trusted.len(), 1, "{report}");
        assert!(
            trusted[0]["subject"]
                .as_str()
                .unwrap()
                .contains("the next CA"),
            "{report}"
        );
        let replica = report["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["listener"] == "replica")
            .unwrap_or_else(|| panic!("{report}"));
        assert!(
            replica["issuer"].as_str().unwrap().contains("the next CA"),
            "{report}"
        );
    }

    // A broker restarted now makes every connection afresh, both ways,
    // with the new certificates only.
    cluster.kill(2);
    cluster.start(2);
    wait_for_partition(&cluster, 3).await;
    send_and_read_back(&cluster, 11, 10).await;
    // ... and a certificate of the old CA no longer gets in.
    let refused = dial_with(
        &cluster,
        0,
        1,
        (&old_cert.0, &old_cert.1),
        &tls.join("ca.crt"),
    )
    .await;
    assert!(
        refused.is_err(),
        "a certificate of the retired CA got through"
    );
}

/// Broker `id` restarted with `env` over the cluster's settings; then it
/// must replicate with the others both ways: partition 0 in sync on all
/// three, messages sent through it acknowledged by all and read back
/// through every broker.
async fn restart_with(cluster: &mut TestCluster, id: u32, env: &[(&str, &str)], next: &mut u128) {
    cluster.set_node_env(id, env);
    cluster.stop(id);
    cluster.start(id);
    wait_for_partition(cluster, 3).await;
    let client = cluster.client(id).await;
    for message in *next..*next + 5 {
        send_one(&client, message).await.unwrap();
    }
    *next += 5;
    let ids: Vec<u128> = read_through_every_broker(cluster)
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(
        ids,
        (1..*next).collect::<Vec<_>>(),
        "after restarting broker {id} with {env:?}"
    );
}

/// Whether broker `to` takes a plain-TCP peer with the cluster's secret.
async fn takes_plaintext(cluster: &TestCluster, to: u32) -> bool {
    let mut tcp = tokio::net::TcpStream::connect(cluster.node(to).replica)
        .await
        .unwrap();
    dial(&mut tcp, &peer_settings(cluster, 1), None, to)
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inter_broker_tls_is_switched_off_and_on_again_one_broker_at_a_time() {
    let mut cluster = TestCluster::up_with(
        3,
        &[
            ("CLUSTER_TLS", "1"),
            ("IGGY_CLUSTER_DEFAULT_REPLICATION_FACTOR", "3"),
        ],
    );
    create_topic_with_partitions(&cluster, 1).await;
    wait_for_partition(&cluster, 3).await;
    send_and_read_back(&cluster, 1, 5).await;
    let mut next = 6;
    assert!(!takes_plaintext(&cluster, 0).await);

    // Off: every broker accepts both (and falls back to plain TCP), then
    // every broker drops TLS. Mid-way each step, brokers of both kinds
    // replicate with each other.
    let transition = [("IGGY_CLUSTER_TLS_ACCEPT_PLAINTEXT", "true")];
    for id in 0..3 {
        restart_with(&mut cluster, id, &transition, &mut next).await;
    }
    assert!(takes_plaintext(&cluster, 0).await);
    for id in 0..3 {
        restart_with(
            &mut cluster,
            id,
            &[("IGGY_CLUSTER_TLS_ENABLED", "false")],
            &mut next,
        )
        .await;
    }
    // On again, the same way round.
    for id in 0..3 {
        restart_with(&mut cluster, id, &transition, &mut next).await;
    }
    for id in 0..3 {
        restart_with(&mut cluster, id, &[], &mut next).await;
    }
    // TLS only again: a plain peer is refused.
    assert!(!takes_plaintext(&cluster, 0).await);
    assert!(!takes_plaintext(&cluster, 2).await);
}
