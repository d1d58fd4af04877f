//! Full and failing disks, for real: the data directory is on a 64 MiB
//! tmpfs that the broker fills, or on `powercut-fs` made to fail every
//! write. A full disk refuses sends with `CannotSaveMessagesToSegment`
//! (4006) and growing metadata changes with `CannotWriteToFile` (10006)
//! while reads, logins and metrics go on, deletions still work, and writes
//! resume when space is freed; a failing one also turns `/readyz` and
//! `iggy_broker_storage_writable` off until writes work again. Mounting
//! needs root.

mod common;

use common::tmpfs::Tmpfs;
use common::{
    TestBroker, create_stream_and_topic, http_get, id, messages, metric, poll_all, wait_for,
};
use iggy::prelude::*;
use powercut_fs::{PowerCutFs, libc_errno};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
/// `system.reserved_space` in these tests.
const RESERVE: &str = "8 MiB";
const RESERVE_BYTES: u64 = 8 * MIB;

/// One batch of 100 messages of 10 KiB (about 1 MiB) with ids from `first`.
fn big_batch(first: u128) -> Vec<IggyMessage> {
    (0..100u128)
        .map(|i| {
            IggyMessage::builder()
                .id(first + i)
                .payload(bytes::Bytes::from(vec![b'x'; 10 << 10]))
                .build()
                .unwrap()
        })
        .collect()
}

/// Send batches of 100 × 10 KiB, then of 10 small messages, to partition 0
/// of `stream`/t until they are refused; returns how many messages were
/// acknowledged and the last refusal.
async fn fill(client: &IggyClient, stream: &str, first: u128) -> (u128, IggyError) {
    let mut next = first;
    while send_to(client, stream, big_batch(next)).await.is_ok() {
        next += 100;
        assert!(next - first < 10_000, "64 MiB cannot hold this much");
    }
    loop {
        match send_small(client, stream, next).await {
            Ok(()) => next += 10,
            Err(e) => return (next - first, e),
        }
        assert!(next - first < 100_000, "64 MiB cannot hold this much");
    }
}

async fn send_small(client: &IggyClient, stream: &str, first: u128) -> Result<(), IggyError> {
    send_to(client, stream, messages(first, 10)).await
}

async fn send_to(
    client: &IggyClient,
    stream: &str,
    mut batch: Vec<IggyMessage>,
) -> Result<(), IggyError> {
    client
        .send_messages(
            &id(stream),
            &id("t"),
            &Partitioning::partition_id(0),
            &mut batch,
        )
        .await
        .map(drop)
}

/// How many log lines mention `needle`.
fn log_lines(broker: &TestBroker, needle: &str) -> usize {
    broker.log().lines().filter(|l| l.contains(needle)).count()
}

async fn metrics(broker: &TestBroker) -> String {
    http_get(broker.http_address.unwrap(), "/metrics").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_keeps_serving_and_resumes_when_space_is_freed() {
    let fs = Tmpfs::mount(64);
    let data = fs.path().join("data");
    let mut broker = TestBroker::start_on(&data, &[("IGGY_SYSTEM_RESERVED_SPACE", RESERVE)]);
    let client = broker.client().await;
    create_stream_and_topic(&client, "kept", "t", 1).await;
    create_stream_and_topic(&client, "filler", "t", 1).await;
    send_small(&client, "kept", 0).await.unwrap();

    // Sends are refused with a specific code before the reserve is touched.
    let (acked, refusal) = fill(&client, "filler", 1_000).await;
    assert_eq!(
        refusal.as_code(),
        IggyError::CannotSaveMessagesToSegment.as_code(),
        "{refusal}"
    );
    assert!(
        acked >= 4_000,
        "only {acked} messages fit before the refusal"
    );
    assert!(
        fs.available() >= RESERVE_BYTES / 2,
        "the reserve was used up"
    );
    let refused = send_small(&client, "kept", 100).await.unwrap_err();
    assert_eq!(refused.as_code(), 4006, "{refused}");

    // Everything else goes on: reads of every acknowledged message,
    // logins, pings, metrics (showing the reserve about reached).
    assert_eq!(
        poll_all(&client, "filler", "t", 0).await.len() as u128,
        acked
    );
    assert_eq!(poll_all(&client, "kept", "t", 0).await.len(), 10);
    let other = broker.client().await;
    other.ping().await.unwrap();
    let scraped = metrics(&broker).await;
    let reserved = metric(&scraped, "iggy_broker_storage_reserved_bytes");
    assert_eq!(reserved as u64, RESERVE_BYTES);
    let available = metric(&scraped, "iggy_broker_filesystem_avail_bytes");
    assert!(available < reserved + MIB as f64, "{available} B available");
    assert_eq!(metric(&scraped, "iggy_broker_storage_writable"), 1.0);
    assert_eq!(metric(&scraped, "iggy_broker_storage_low"), 1.0);
    // Refusals are logged, not once per refused send.
    for i in 0..20 {
        assert!(send_small(&client, "kept", 200 + i * 10).await.is_err());
    }
    let logged = log_lines(&broker, "refusing to save messages");
    assert!(
        (1..=2).contains(&logged),
        "{logged} log lines for 22 refusals"
    );

    // Squeeze the disk below half the reserve from outside: a change that
    // adds metadata is refused (and not made), a deletion goes through.
    let squeeze = fs.path().join("squeeze");
    let leave = RESERVE_BYTES / 4;
    std::fs::write(&squeeze, vec![0u8; (fs.available() - leave) as usize]).unwrap();
    let refused = client.create_stream("new").await.unwrap_err();
    assert_eq!(
        refused.as_code(),
        IggyError::CannotWriteToFile.as_code(),
        "{refused}"
    );
    assert!(client.get_stream(&id("new")).await.unwrap().is_none());
    client.delete_stream(&id("filler")).await.unwrap();

    // The deleted stream's files go, and sends resume without a restart.
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = send_small(&client, "kept", 1_000).await {
        assert!(
            Instant::now() < deadline,
            "sends still refused after the deletion: {e}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::fs::remove_file(&squeeze).unwrap();
    client.create_stream("new").await.unwrap();

    // Filled again, killed, started again on the full disk: it comes up
    // and serves every acknowledged message.
    let (acked, refusal) = fill(&client, "kept", 10_000).await;
    assert_eq!(refusal.as_code(), 4006, "{refusal}");
    let kept = 20 + acked as usize;
    broker.kill9();
    broker
        .try_start_again()
        .expect("a broker on a full disk starts");
    let client = broker.client().await;
    assert_eq!(poll_all(&client, "kept", "t", 0).await.len(), kept);
    assert_eq!(
        send_small(&client, "kept", 50_000)
            .await
            .unwrap_err()
            .as_code(),
        4006
    );

    // Even with nothing left at all (filled from outside), it starts and
    // serves reads.
    broker.kill9();
    let filler = fs.path().join("everything");
    fill_completely(&filler);
    assert_eq!(fs.available(), 0);
    // (It cannot write its runtime file, so wait on its readiness.)
    broker
        .try_start_again_on_same_addresses()
        .expect("a broker on a completely full disk starts");
    // Readiness comes first: the runtime file is attempted just after the
    // HTTP listener is up, so wait for the warning rather than expect it.
    wait_for(
        "the warning about the runtime file",
        Duration::from_secs(10),
        || broker.log().contains("cannot write the runtime file"),
    )
    .await;
    let client = broker.client().await;
    assert_eq!(poll_all(&client, "kept", "t", 0).await.len(), kept);
    assert!(send_small(&client, "kept", 60_000).await.is_err());
}

/// Write zeros to `path` until the filesystem has no room left.
fn fill_completely(path: &PathBuf) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 64 << 10];
    loop {
        match file.write(&block) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    // The last partial block too.
    while file.write(&[0u8]).is_ok_and(|n| n == 1) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_data_directory_is_reported_and_writes_resume_when_it_recovers() {
    let mountpoint = tempfile::tempdir().unwrap();
    let fs = PowerCutFs::mount(mountpoint.path()).expect("mount powercut-fs (root, /dev/fuse)");
    let broker = TestBroker::start_on(&mountpoint.path().join("data"), &[]);
    let client = broker.client().await;
    create_stream_and_topic(&client, "s", "t", 1).await;
    send_small(&client, "s", 1).await.unwrap();
    let http = broker.http_address.unwrap();
    assert!(http_get(http, "/readyz").await.starts_with("HTTP/1.0 200"));

    fs.fail_writes(Some(libc_errno::EROFS));
    let refused = send_small(&client, "s", 10).await.unwrap_err();
    assert_eq!(refused.as_code(), 4006, "{refused}");
    let ready = http_get(http, "/readyz").await;
    assert!(ready.starts_with("HTTP/1.0 503"), "{ready}");
    assert!(ready.contains("Read-only file system"), "{ready}");
    assert_eq!(
        metric(&metrics(&broker).await, "iggy_broker_storage_writable"),
        0.0
    );
    let refused = client.create_stream("other").await.unwrap_err();
    assert_eq!(
        refused.as_code(),
        IggyError::CannotWriteToFile.as_code(),
        "{refused}"
    );
    // Reads and new sessions go on.
    assert_eq!(poll_all(&client, "s", "t", 0).await.len(), 10);
    broker.client().await.ping().await.unwrap();
    assert_eq!(
        log_lines(&broker, "writes are refused until a test write succeeds"),
        1,
        "{}",
        broker.log()
    );

    // Writable again: a probe notices, readiness comes back, sends work —
    // and the refused batch is not in the log.
    fs.fail_writes(None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !http_get(http, "/readyz").await.starts_with("HTTP/1.0 200") {
        assert!(
            Instant::now() < deadline,
            "still not ready after the disk recovered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    send_small(&client, "s", 20).await.unwrap();
    let ids: Vec<u128> = poll_all(&client, "s", "t", 0)
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(ids, (1..11).chain(20..30).collect::<Vec<u128>>());
    assert!(
        broker
            .log()
            .contains("the data directory takes writes again")
    );
}

/// Three brokers, broker 2's data on a 64 MiB volume, and topic `s`/`t`
/// of one partition with a replica on each. Brokers 0 and 1 hold the
/// topic from the start, so one of them is its preferred leader; broker 2
/// joins and gets the third replica.
async fn broker_2_on_a_small_volume() -> (common::cluster::TestCluster, Tmpfs) {
    use common::cluster::TestCluster;
    use common::replicated::{
        admin_post, create_topic_with_partitions, wait_for_partition, wait_for_voters,
    };
    let mut cluster = TestCluster::up_with_spare(
        2,
        1,
        &[
            ("IGGY_SYSTEM_RESERVED_SPACE", RESERVE),
            ("IGGY_CLUSTER_DEFAULT_REPLICATION_FACTOR", "2"),
        ],
    );
    let volume = Tmpfs::mount_at(&cluster.dir().join("node-2").join("data"), 64);
    create_topic_with_partitions(&cluster, 1).await;
    cluster.start(2);
    wait_for_voters(&cluster, 0, &[0, 1, 2]).await;
    let (status, body) = admin_post(
        &cluster,
        0,
        "/cluster/topics/s/t/replication-factor",
        r#"{"factor": 3}"#,
    )
    .await;
    assert!((200..300).contains(&status), "{status} {body}");
    let grown = wait_for_partition(&cluster, 3).await;
    assert_ne!(grown.leader, Some(2), "{grown:?}");
    (cluster, volume)
}

/// Make broker `to` the partition's leader.
async fn move_leader(cluster: &common::cluster::TestCluster, to: u32) {
    use common::replicated::{admin_post, wait_until};
    let (status, body) = admin_post(
        cluster,
        0,
        "/cluster/partitions/s/t/0/leader",
        &format!(r#"{{"leader": {to}}}"#),
    )
    .await;
    assert!((200..300).contains(&status), "{status} {body}");
    wait_until(cluster, Some(to), "the leader moved", |p| {
        p.leader == Some(to)
    })
    .await;
}

/// Whether broker 0's `/cluster/status` reports broker `node` low on space.
async fn reported_low(cluster: &common::cluster::TestCluster, node: u32) -> bool {
    let status = common::replicated::admin_get(cluster, 0, "/cluster/status").await;
    let nodes = status["nodes"].as_array().expect("nodes");
    let entry = nodes.iter().find(|n| n["id"] == node).expect("listed");
    entry["low_on_space"].as_bool().expect("low_on_space")
}

/// Grow broker 2's volume to 256 MiB; once broker 2 is back in sync and
/// ready, make it the partition's leader and read every message through it.
async fn grow_and_read_through_2(
    cluster: &common::cluster::TestCluster,
    volume: &Tmpfs,
) -> Vec<u128> {
    volume.resize(256);
    common::replicated::wait_for_partition(cluster, 3).await;
    wait_for("broker 2 to be ready", Duration::from_secs(30), || {
        common::is_ready(cluster.node(2).http)
    })
    .await;
    move_leader(cluster, 2).await;
    let through_2 = cluster.client(2).await;
    common::replicated::read_all(&through_2)
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect()
}

/// A follower whose volume fills up: it refuses to copy past its reserve
/// and falls out of the in-sync set, while the cluster acknowledges every
/// send with the other replicas; it keeps applying metadata and says it is
/// not ready; once its volume grows it copies what it missed, and every
/// acknowledged message can be read from it as the leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_whose_disk_fills_drops_out_of_sync_and_catches_up_once_its_volume_grows() {
    use common::replicated::wait_until;
    let (cluster, volume) = broker_2_on_a_small_volume().await;

    // 96 batches of 1 MiB: more than the volume holds. Every one is
    // acknowledged, by the leader and the follower with room.
    let client = cluster.client(0).await;
    for batch in 0..96u128 {
        // (Ids from 1: the SDK replaces id 0 with a random one.)
        send_to(&client, "s", big_batch(1 + batch * 100))
            .await
            .unwrap_or_else(|e| panic!("batch {batch} not acknowledged: {e}"));
    }
    let shrunk = wait_until(&cluster, Some(0), "without broker 2 in sync", |p| {
        p.in_sync.len() == 2 && !p.in_sync.contains(&2)
    })
    .await;
    assert!(
        cluster.log(2).contains("refusing to save messages"),
        "broker 2 did not say why it stopped copying"
    );
    assert!(
        volume.available() >= RESERVE_BYTES / 2,
        "the follower used up its reserve: {} B free",
        volume.available()
    );
    let readyz = http_get(cluster.node(2).http, "/readyz").await;
    assert!(readyz.contains(" 503 "), "{readyz}");
    let leader = shrunk.leader.expect("a leader");
    let scraped = http_get(cluster.node(leader).http, "/metrics").await;
    assert_eq!(
        metric(&scraped, "iggy_broker_under_replicated_partitions"),
        1.0
    );
    // It still takes metadata, and serves it.
    client.create_stream("later").await.unwrap();
    let through_2 = cluster.client(2).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while through_2.get_stream(&id("later")).await.unwrap().is_none() {
        assert!(Instant::now() < deadline, "broker 2 took no metadata");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The volume grows: broker 2 copies the rest and is in sync again; led
    // by it, the partition holds every acknowledged message once.
    let ids = grow_and_read_through_2(&cluster, &volume).await;
    let first_wrong = ids.iter().zip(1..).position(|(id, want)| *id != want);
    assert!(
        ids.len() == 9_600 && first_wrong.is_none(),
        "{} messages read from broker 2, the first out of place at {first_wrong:?}",
        ids.len()
    );
}

/// A partition leader whose volume runs low hands leadership to an
/// in-sync replica with room before it would refuse a send: producers go
/// on at the new leader and never see the full disk; the broker is
/// reported low on space and given no leadership until it has room again,
/// then catches up and holds every message. Without the handover, sends
/// are refused with 4006 once broker 2's volume reaches its reserve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_disk_runs_low_hands_leadership_to_a_replica_with_room() {
    use common::replicated::{admin_post, wait_until};
    let (cluster, volume) = broker_2_on_a_small_volume().await;
    move_leader(&cluster, 2).await;

    // 96 batches of 1 MiB through broker 0, which forwards them to the
    // leader. A send in flight while leadership moves may fail with "may
    // or may not be kept": it is sent again, as an application would.
    let client = cluster.client(0).await;
    let mut sent_again = Vec::new();
    for batch in 0..96u128 {
        loop {
            match send_to(&client, "s", big_batch(1 + batch * 100)).await {
                Ok(()) => break,
                Err(e) if e.as_code() == 4006 => {
                    panic!("batch {batch} refused for want of space: {e}")
                }
                Err(e) => {
                    assert!(sent_again.len() < 5, "sent again: {sent_again:?}; {e}");
                    sent_again.push(batch);
                }
            }
        }
    }
    let moved = wait_until(&cluster, Some(0), "led by a broker with room", |p| {
        p.leader.is_some_and(|l| l != 2)
    })
    .await;
    assert!(
        cluster
            .log(2)
            .contains("handing the partition's leadership to a replica with room"),
        "broker 2 did not say why it handed leadership on"
    );
    let scraped = http_get(cluster.node(2).http, "/metrics").await;
    assert_eq!(
        metric(
            &scraped,
            r#"iggy_broker_partition_elections_total{reason="low_disk_space"}"#
        ),
        1.0
    );
    assert_eq!(metric(&scraped, "iggy_broker_storage_low"), 1.0);
    // The others know it runs low, and give it no leadership back.
    assert!(reported_low(&cluster, 2).await, "broker 2 not reported low");
    let (code, body) = admin_post(
        &cluster,
        0,
        "/cluster/partitions/s/t/0/leader",
        r#"{"leader": 2}"#,
    )
    .await;
    assert!(
        code == 400 && body.contains("low on disk space"),
        "{code} {body}"
    );
    // As a follower it copies up to its reserve, then drops out of sync.
    wait_until(
        &cluster,
        Some(moved.leader.unwrap()),
        "without broker 2 in sync",
        |p| !p.in_sync.contains(&2),
    )
    .await;
    assert!(volume.available() >= RESERVE_BYTES / 2);

    // With room again it catches up and, led by it, the partition holds
    // every acknowledged message — once, but for batches sent again.
    let ids = grow_and_read_through_2(&cluster, &volume).await;
    assert!(
        !reported_low(&cluster, 2).await,
        "broker 2 still reported low"
    );
    let mut expected = 1u128;
    for (at, id) in ids.iter().enumerate() {
        if *id == expected {
            expected += 1;
        } else {
            let batch = (id - 1) / 100;
            assert!(
                *id < expected && sent_again.contains(&batch),
                "id {id} at {at}, expected {expected} (sent again: {sent_again:?})"
            );
        }
    }
    assert_eq!(expected, 9_601, "{} messages read", ids.len());
}
