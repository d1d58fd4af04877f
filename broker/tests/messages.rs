//! Produce and consume through the official `iggy` 0.11 client: every
//! partitioning kind, every polling strategy, ids, headers and offsets.

mod common;

use common::{TestBroker, create_stream_and_topic, id, messages, poll_all, send, topic};
use iggy::prelude::*;
use std::collections::HashMap;

const PARTITIONS: u32 = 3;
const BATCH: usize = 1_000;

fn assert_message(message: &IggyMessage, expected_id: u128) {
    assert_eq!(message.header.id, expected_id);
    assert_eq!(
        message.payload,
        bytes::Bytes::from(format!("message-{expected_id}"))
    );
    let headers = message.user_headers_map().unwrap().expect("user headers");
    assert_eq!(
        headers[&HeaderKey::try_from("id").unwrap()]
            .as_str()
            .unwrap(),
        expected_id.to_string()
    );
    assert_eq!(
        headers[&HeaderKey::try_from("n").unwrap()]
            .as_uint64()
            .unwrap(),
        expected_id as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_messages_through_every_partitioning_kind() {
    let broker = TestBroker::start();
    let client = broker.client().await;
    create_stream_and_topic(&client, "orders", "events", PARTITIONS).await;

    // 40k explicit (partition 0), 30k balanced, 30k keyed: 100k in all.
    let mut next_id: u128 = 1;
    for _ in 0..40 {
        let mut batch = messages(next_id, BATCH);
        next_id += BATCH as u128;
        client
            .send_messages(
                &id("orders"),
                &id("events"),
                &Partitioning::partition_id(0),
                &mut batch,
            )
            .await
            .unwrap();
    }
    for _ in 0..30 {
        let mut batch = messages(next_id, BATCH);
        next_id += BATCH as u128;
        client
            .send_messages(
                &id("orders"),
                &id("events"),
                &Partitioning::balanced(),
                &mut batch,
            )
            .await
            .unwrap();
    }
    let keys = ["alice", "bob", "carol", "dave"];
    let mut key_of_id = HashMap::new();
    for round in 0..30 {
        let key = keys[round % keys.len()];
        for i in 0..BATCH {
            key_of_id.insert(next_id + i as u128, key);
        }
        let partitioning = Partitioning::messages_key_str(key).unwrap();
        send(&client, "orders", "events", &partitioning, next_id, BATCH).await;
        next_id += BATCH as u128;
    }
    assert_eq!(next_id - 1, 100_000);

    let details = topic(&client, "orders", "events").await.unwrap();
    assert_eq!(details.messages_count, 100_000);

    let mut seen = vec![false; 100_001];
    let mut partition_of_key: HashMap<&str, u32> = HashMap::new();
    for partition in 0..PARTITIONS {
        let polled = poll_all(&client, "orders", "events", partition).await;
        // Offsets are dense from 0 and ids arrive in send order.
        for (i, (offset, _)) in polled.iter().enumerate() {
            assert_eq!(*offset, i as u64);
        }
        assert!(polled.windows(2).all(|w| w[0].1 < w[1].1));
        for (_, message_id) in &polled {
            assert!(!seen[*message_id as usize], "duplicate id {message_id}");
            seen[*message_id as usize] = true;
            if let Some(key) = key_of_id.get(message_id) {
                // The same key always lands on the same partition.
                let first = *partition_of_key.entry(key).or_insert(partition);
                assert_eq!(first, partition, "key {key} spread over partitions");
            }
        }
        let expected = details.partitions[partition as usize].messages_count;
        assert_eq!(polled.len() as u64, expected);
    }
    assert!(seen[1..].iter().all(|s| *s), "every message came back");
    // Explicit partition 0 got the first 40k.
    let first = poll_all(&client, "orders", "events", 0).await;
    assert!(first.iter().take(40_000).all(|(_, id)| *id <= 40_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_polling_strategy_returns_the_right_messages() {
    let broker = TestBroker::start();
    let client = broker.client().await;
    create_stream_and_topic(&client, "orders", "events", 1).await;
    let stream = id("orders");
    let topic = id("events");
    let part = Partitioning::partition_id(0);

    let mut first_half = messages(1, 50);
    client
        .send_messages(&stream, &topic, &part, &mut first_half)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let boundary = IggyTimestamp::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut second_half = messages(51, 50);
    client
        .send_messages(&stream, &topic, &part, &mut second_half)
        .await
        .unwrap();

    let consumer = Consumer::new(Identifier::named("reader").unwrap());
    let poll = |strategy: PollingStrategy, count: u32, auto_commit: bool| {
        let client = &client;
        let consumer = &consumer;
        let (stream, topic) = (&stream, &topic);
        async move {
            client
                .poll_messages(
                    stream,
                    topic,
                    Some(0),
                    consumer,
                    &strategy,
                    count,
                    auto_commit,
                )
                .await
                .unwrap()
        }
    };
    let ids = |polled: &PolledMessages| {
        polled
            .messages
            .iter()
            .map(|m| m.header.id)
            .collect::<Vec<_>>()
    };

    // Offset: a slice from the middle of a batch.
    let polled = poll(PollingStrategy::offset(10), 5, false).await;
    assert_eq!(ids(&polled), vec![11, 12, 13, 14, 15]);
    assert_eq!(polled.messages[0].header.offset, 10);
    assert_eq!(polled.current_offset, 99);
    for message in &polled.messages {
        assert_message(message, message.header.id);
    }
    // Across the batch boundary.
    let polled = poll(PollingStrategy::offset(48), 4, false).await;
    assert_eq!(ids(&polled), vec![49, 50, 51, 52]);
    // First and last.
    assert_eq!(
        ids(&poll(PollingStrategy::first(), 3, false).await),
        vec![1, 2, 3]
    );
    assert_eq!(
        ids(&poll(PollingStrategy::last(), 3, false).await),
        vec![98, 99, 100]
    );
    // Timestamp: the first message stamped at or after the boundary.
    let polled = poll(PollingStrategy::timestamp(boundary), 2, false).await;
    assert_eq!(ids(&polled), vec![51, 52]);
    // Past the end: nothing.
    assert!(
        poll(PollingStrategy::offset(100), 10, false)
            .await
            .messages
            .is_empty()
    );

    // Next with auto-commit walks the partition without gaps or repeats.
    let mut walked = Vec::new();
    loop {
        let polled = poll(PollingStrategy::next(), 30, true).await;
        if polled.messages.is_empty() {
            break;
        }
        walked.extend(ids(&polled));
    }
    assert_eq!(walked, (1..=100).collect::<Vec<_>>());
    let stored = client
        .get_consumer_offset(&consumer, &stream, &topic, Some(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.stored_offset, 99);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_offsets_drive_next_and_can_be_deleted() {
    let broker = TestBroker::start();
    let client = broker.client().await;
    create_stream_and_topic(&client, "orders", "events", 2).await;
    let (stream, topic) = (id("orders"), id("events"));
    send(
        &client,
        "orders",
        "events",
        &Partitioning::partition_id(1),
        1,
        20,
    )
    .await;
    let consumer = Consumer::new(Identifier::numeric(7).unwrap());
    assert!(
        client
            .get_consumer_offset(&consumer, &stream, &topic, Some(1))
            .await
            .unwrap()
            .is_none()
    );
    client
        .store_consumer_offset(&consumer, &stream, &topic, Some(1), 9)
        .await
        .unwrap();
    let offset = client
        .get_consumer_offset(&consumer, &stream, &topic, Some(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((offset.stored_offset, offset.current_offset), (9, 19));
    let polled = client
        .poll_messages(
            &stream,
            &topic,
            Some(1),
            &consumer,
            &PollingStrategy::next(),
            3,
            false,
        )
        .await
        .unwrap();
    assert_eq!(polled.messages[0].header.offset, 10);
    // Offsets survive a restart.
    let mut broker = broker;
    broker.restart();
    let client = broker.client().await;
    let offset = client
        .get_consumer_offset(&consumer, &stream, &topic, Some(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(offset.stored_offset, 9);
    client
        .delete_consumer_offset(&consumer, &stream, &topic, Some(1))
        .await
        .unwrap();
    assert!(
        client
            .get_consumer_offset(&consumer, &stream, &topic, Some(1))
            .await
            .unwrap()
            .is_none()
    );
    // Storing beyond the end is refused.
    let err = client
        .store_consumer_offset(&consumer, &stream, &topic, Some(1), 500)
        .await
        .unwrap_err();
    assert_eq!(err.as_code(), IggyError::InvalidOffset(0).as_code());
}
