//! Retention: the cleaner deletes exactly the expired or excess sealed
//! segments (never the active one), and DeleteSegments removes the oldest.

mod common;

use common::{TestBroker, http_get, id, metric};
use iggy::prelude::*;
use std::time::{Duration, Instant};

const SEGMENT: u64 = 1024 * 1024;

/// 1000 messages of ~1 KB: just over one 1 MiB segment, so every batch
/// after the first starts a new segment.
async fn send_big_batch(client: &IggyClient, topic: &str, first_id: u128) {
    let payload = bytes::Bytes::from(vec![b'x'; 1024]);
    let mut batch: Vec<IggyMessage> = (0..1000u128)
        .map(|i| {
            IggyMessage::builder()
                .id(first_id + i)
                .payload(payload.clone())
                .build()
                .unwrap()
        })
        .collect();
    client
        .send_messages(
            &id("s"),
            &id(topic),
            &Partitioning::partition_id(0),
            &mut batch,
        )
        .await
        .unwrap();
}

async fn create_topic(client: &IggyClient, name: &str, options: TopicCreateOptions) {
    client
        .create_topic(
            &id("s"),
            name,
            &TopicCreateOptions {
                partitions_count: Some(1),
                segment_size: Some(IggyByteSize::from(SEGMENT)),
                ..options
            },
        )
        .await
        .unwrap();
}

async fn first_offset(client: &IggyClient, topic: &str) -> u64 {
    let polled = client
        .poll_messages(
            &id("s"),
            &id(topic),
            Some(0),
            &Consumer::new(Identifier::numeric(1).unwrap()),
            &PollingStrategy::first(),
            1,
            false,
        )
        .await
        .unwrap();
    polled.messages[0].header.offset
}

async fn segments(client: &IggyClient, topic: &str) -> u32 {
    client
        .get_topic(&id("s"), &id(topic))
        .await
        .unwrap()
        .unwrap()
        .partitions[0]
        .segments_count
}

async fn retention_runs(broker: &TestBroker) -> f64 {
    let metrics = http_get(broker.http_address.unwrap(), "/metrics").await;
    metric(&metrics, "iggy_broker_retention_runs_total")
}

async fn wait_for_first_offset(client: &IggyClient, topic: &str, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while first_offset(client, topic).await != expected {
        assert!(
            Instant::now() < deadline,
            "{topic}: first offset never reached {expected}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_expired_and_excess_sealed_segments() {
    let broker = TestBroker::start_with(&[("IGGY_RETENTION_INTERVAL", "500ms")]);
    let client = broker.client().await;
    client.create_stream("s").await.unwrap();
    create_topic(
        &client,
        "expiring",
        TopicCreateOptions {
            // Long enough that all four segments exist before the first
            // can expire, even on a busy machine.
            message_expiry: Some(IggyExpiry::ExpireDuration(IggyDuration::from(5_000_000))),
            ..Default::default()
        },
    )
    .await;
    create_topic(
        &client,
        "capped",
        TopicCreateOptions {
            max_topic_size: Some(MaxTopicSize::Custom(IggyByteSize::from(SEGMENT * 5 / 2))),
            ..Default::default()
        },
    )
    .await;
    for batch in 0..4u128 {
        send_big_batch(&client, "expiring", batch * 1000 + 1).await;
    }
    assert_eq!(segments(&client, "expiring").await, 4);
    for batch in 0..5u128 {
        send_big_batch(&client, "capped", batch * 1000 + 1).await;
    }

    // Expiry: the three sealed segments go, the active one (offsets
    // 3000..) stays even though its messages are just as old.
    // The active segment's messages were sent milliseconds after the last
    // sealed one's, so two more passes of the cleaner (500 ms apart) see
    // them expired too — and must leave them.
    wait_for_first_offset(&client, "expiring", 3000).await;
    let passes = retention_runs(&broker).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while retention_runs(&broker).await < passes + 2.0 {
        assert!(Instant::now() < deadline, "the cleaner stopped running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(first_offset(&client, "expiring").await, 3000);
    assert_eq!(segments(&client, "expiring").await, 1);

    // Size: 5 segments of just over 1 MiB under a 2.5 MiB cap keep the
    // newest two.
    wait_for_first_offset(&client, "capped", 3000).await;
    assert_eq!(segments(&client, "capped").await, 2);
    let topic = client
        .get_topic(&id("s"), &id("capped"))
        .await
        .unwrap()
        .unwrap();
    assert!(topic.size.as_bytes_u64() <= SEGMENT * 5 / 2);
    assert_eq!(topic.messages_count, 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_segments_removes_the_oldest_sealed_segments() {
    let broker = TestBroker::start();
    let client = broker.client().await;
    client.create_stream("s").await.unwrap();
    create_topic(&client, "t", TopicCreateOptions::default()).await;
    for batch in 0..3u128 {
        send_big_batch(&client, "t", batch * 1000 + 1).await;
    }
    client
        .delete_segments(&id("s"), &id("t"), 0, 1)
        .await
        .unwrap();
    assert_eq!(first_offset(&client, "t").await, 1000);
    // Asking for more than exist deletes only the sealed ones.
    client
        .delete_segments(&id("s"), &id("t"), 0, 10)
        .await
        .unwrap();
    assert_eq!(first_offset(&client, "t").await, 2000);
    assert_eq!(segments(&client, "t").await, 1);
}
