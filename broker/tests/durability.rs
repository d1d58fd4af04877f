//! Durability against process crashes: what a client was told is stored
//! survives `kill -9`, and a segment cut mid-record recovers to its last
//! whole record. (Machine crashes — power loss — are in power_loss.rs.)

mod common;

use common::{TestBroker, create_stream_and_topic, poll_all, produce_until_stopped, send};
use iggy::prelude::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_kill_9_under_load() {
    let mut broker = TestBroker::start_with(&[("IGGY_TOPIC_FSYNC", "always")]);
    let client = broker.client().await;
    create_stream_and_topic(&client, "s", "t", 1).await;

    let (producer, acked) = produce_until_stopped(client, "s", 1, 5_000).await;
    broker.kill9();
    producer.await.unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 5_000);

    broker.restart();
    let client = broker.client().await;
    let stored = poll_all(&client, "s", "t", 0).await;
    // Offsets are dense and nothing acknowledged is missing.
    assert!(stored.iter().enumerate().all(|(i, (o, _))| *o == i as u64));
    let stored_ids: std::collections::HashSet<u128> = stored.iter().map(|(_, id)| *id).collect();
    let missing: Vec<_> = acked.iter().filter(|id| !stored_ids.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged messages lost",
        missing.len()
    );
    // The partition accepts writes again, continuing the offsets.
    send(
        &client,
        "s",
        "t",
        &Partitioning::partition_id(0),
        1_000_000,
        10,
    )
    .await;
    assert_eq!(
        poll_all(&client, "s", "t", 0).await.len(),
        stored.len() + 10
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_promptly_and_keeps_every_acknowledged_message() {
    // fsync "never": nothing is synced while serving; the shutdown's flush
    // is what would make the data survive a power cut (see power_loss.rs:
    // kill -9 and SIGTERM both keep the page cache).
    let mut broker = TestBroker::start_with(&[("IGGY_TOPIC_FSYNC", "never")]);
    let client = broker.client().await;
    create_stream_and_topic(&client, "s", "t", 1).await;
    let (producer, acked) = produce_until_stopped(client, "s", 1, 5_000).await;
    // The producer keeps sending while the broker shuts down.
    let (status, took) = tokio::task::block_in_place(|| broker.terminate());
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}");
    producer.await.unwrap();
    assert!(broker.log().contains("shutdown complete"));

    broker.start_again();
    let client = broker.client().await;
    let stored: std::collections::HashSet<u128> = poll_all(&client, "s", "t", 0)
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    let acked = acked.lock().unwrap().clone();
    let missing = acked.iter().filter(|id| !stored.contains(id)).count();
    assert_eq!(missing, 0, "{missing} acknowledged messages lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_cut_mid_record_recovers_to_the_last_whole_record() {
    let mut broker = TestBroker::start();
    let client = broker.client().await;
    create_stream_and_topic(&client, "s", "t", 1).await;
    for round in 0..5u128 {
        send(
            &client,
            "s",
            "t",
            &Partitioning::partition_id(0),
            round * 10 + 1,
            10,
        )
        .await;
    }
    drop(client);
    broker.kill9();

    // Simulate a torn write: cut the last record in half.
    // The partition's directory is `<id>-<incarnation>`.
    let partitions = broker.data_dir().join("streams/0/topics/0/partitions");
    let dir = std::fs::read_dir(&partitions)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("0-")
        })
        .expect("partition 0's directory");
    let log = dir.join("00000000000000000000.log");
    let len = std::fs::metadata(&log).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(len - 100)
        .unwrap();

    broker.restart();
    assert!(broker.log().contains("torn tail"), "recovery is reported");
    let client = broker.client().await;
    let stored = poll_all(&client, "s", "t", 0).await;
    assert_eq!(stored.len(), 40, "the four whole batches remain");
    assert_eq!(stored.last().unwrap().1, 40);
    let sent = send(&client, "s", "t", &Partitioning::partition_id(0), 100, 1).await;
    assert_eq!(sent.confirmations[0].base_offset, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_survives_kill_9() {
    let mut broker = TestBroker::start();
    let client = broker.client().await;
    create_stream_and_topic(&client, "s", "t", 4).await;
    client.create_stream("other").await.unwrap();
    broker.kill9();
    broker.restart();
    let client = broker.client().await;
    let streams = client.get_streams().await.unwrap();
    assert_eq!(streams.len(), 2);
    let details = common::topic(&client, "s", "t").await.unwrap();
    assert_eq!(details.partitions_count, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_start_wipes_the_data_directory() {
    let mut broker = TestBroker::start();
    let client = broker.client().await;
    create_stream_and_topic(&client, "s", "t", 1).await;
    send(&client, "s", "t", &Partitioning::partition_id(0), 1, 10).await;
    broker.restart_with_args(&["--fresh"]);
    let client = broker.client().await;
    assert!(client.get_streams().await.unwrap().is_empty());
    assert!(broker.log().contains("--fresh: deleting"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_created_persisted_is_fsynced_even_when_the_broker_is_not() {
    let broker = TestBroker::start_with(&[("IGGY_TOPIC_FSYNC", "never")]);
    let client = broker.client().await;
    client.create_stream("s").await.unwrap();
    let stream = Identifier::named("s").unwrap();
    client
        .create_topic(&stream, "replicated", &TopicCreateOptions::default())
        .await
        .unwrap();
    client
        .create_topic(
            &stream,
            "persisted",
            &TopicCreateOptions {
                durability: Durability::Persisted,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let fsyncs = || async {
        let metrics = common::http_get(broker.http_address.unwrap(), "/metrics").await;
        common::metric(&metrics, "iggy_broker_fsync_duration_seconds_count")
    };
    let before = fsyncs().await;
    send(
        &client,
        "s",
        "replicated",
        &Partitioning::partition_id(0),
        1,
        10,
    )
    .await;
    assert_eq!(fsyncs().await, before, "the broker's `never` applies");
    send(
        &client,
        "s",
        "persisted",
        &Partitioning::partition_id(0),
        11,
        10,
    )
    .await;
    assert_eq!(
        fsyncs().await,
        before + 1.0,
        "one fsync for the persisted batch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_metadata_files_are_reported_and_recovered_or_named() {
    let mut broker = TestBroker::start();
    let client = broker.client().await;
    create_stream_and_topic(&client, "s", "t", 1).await;
    broker.kill9();

    // The identity file: recovered (a new storage id, as after a new disk).
    let identity = broker.data_dir().join("identity.json");
    std::fs::write(&identity, b"{\"cluster\": nul").unwrap();
    broker.start_again();
    assert!(
        broker.log().contains("damaged identity file"),
        "the damage is reported"
    );
    let client = broker.client().await;
    assert!(common::topic(&client, "s", "t").await.is_some());
    let rewritten: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&identity).unwrap()).unwrap();
    assert!(rewritten["storage_id"].as_u64().unwrap() > 0);
    broker.kill9();

    // The vote: the broker refuses to start, naming the file and the way out.
    let vote = broker.data_dir().join("metadata/vote");
    let saved = std::fs::read(&vote).unwrap();
    std::fs::write(&vote, b"\x00garbage").unwrap();
    let refused = broker
        .try_start_again()
        .expect_err("a damaged vote stops start-up");
    assert!(refused.contains("metadata/vote"), "{refused}");
    assert!(
        refused.contains("move this broker's data directory away"),
        "{refused}"
    );

    // Restored, everything is back.
    std::fs::write(&vote, saved).unwrap();
    broker.start_again();
    let client = broker.client().await;
    assert!(common::topic(&client, "s", "t").await.is_some());
}
