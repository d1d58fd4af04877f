//! Streams, topics and partitions: create, get, list, update, purge, delete;
//! stats, clients and cluster metadata.

mod common;

use common::{TestBroker, create_stream_and_topic, id, send, topic};
use iggy::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_and_topic_lifecycle() {
    let broker = TestBroker::start();
    let client = broker.client().await;

    let stream = client.create_stream("payments").await.unwrap();
    assert_eq!(stream.name, "payments");
    assert_eq!(stream.topics_count, 0);
    let second = client.create_stream("audit").await.unwrap();
    assert_ne!(stream.id, second.id);
    let got = client
        .get_stream(&Identifier::numeric(stream.id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.name, "payments");
    assert!(client.get_stream(&id("missing")).await.unwrap().is_none());
    assert_eq!(client.get_streams().await.unwrap().len(), 2);

    client
        .update_stream(&id("audit"), "audit-log", &StreamUpdateOptions::default())
        .await
        .unwrap();
    assert!(client.get_stream(&id("audit-log")).await.unwrap().is_some());

    let created = client
        .create_topic(
            &id("payments"),
            "charges",
            &TopicCreateOptions {
                partitions_count: Some(2),
                message_expiry: Some(IggyExpiry::ExpireDuration(IggyDuration::from(
                    3_600_000_000,
                ))),
                segment_size: Some(IggyByteSize::from(2 * 1024 * 1024)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(created.partitions_count, 2);
    assert_eq!(created.partitions.len(), 2);
    assert_eq!(
        created.message_expiry,
        IggyExpiry::ExpireDuration(IggyDuration::from(3_600_000_000))
    );
    let err = client
        .create_topic(
            &id("payments"),
            "bad",
            &TopicCreateOptions {
                segment_size: Some(IggyByteSize::from(1000)),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.as_code(),
        IggyError::InvalidOptionValue(String::new()).as_code()
    );

    client
        .create_partitions(&id("payments"), &id("charges"), 3)
        .await
        .unwrap();
    let details = topic(&client, "payments", "charges").await.unwrap();
    assert_eq!(details.partitions_count, 5);
    client
        .delete_partitions(&id("payments"), &id("charges"), 2)
        .await
        .unwrap();
    let details = topic(&client, "payments", "charges").await.unwrap();
    assert_eq!(details.partitions_count, 3);

    send(
        &client,
        "payments",
        "charges",
        &Partitioning::partition_id(2),
        1,
        25,
    )
    .await;
    let details = topic(&client, "payments", "charges").await.unwrap();
    assert_eq!(details.messages_count, 25);
    assert_eq!(details.partitions[2].current_offset, 24);
    let stats = client.get_stats().await.unwrap();
    assert_eq!((stats.streams_count, stats.topics_count), (2, 1));
    assert_eq!(stats.messages_count, 25);

    client
        .purge_topic(&id("payments"), &id("charges"))
        .await
        .unwrap();
    let details = topic(&client, "payments", "charges").await.unwrap();
    assert_eq!(details.messages_count, 0);

    client
        .update_topic(
            &id("payments"),
            &id("charges"),
            "charges-v2",
            &TopicUpdateOptions {
                max_topic_size: Some(MaxTopicSize::Custom(IggyByteSize::from(1_000_000_000))),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let details = topic(&client, "payments", "charges-v2").await.unwrap();
    assert_eq!(
        details.max_topic_size,
        MaxTopicSize::Custom(IggyByteSize::from(1_000_000_000))
    );
    assert_eq!(client.get_topics(&id("payments")).await.unwrap().len(), 1);

    client
        .delete_topic(&id("payments"), &id("charges-v2"))
        .await
        .unwrap();
    assert!(
        client
            .get_topic(&id("payments"), &id("charges-v2"))
            .await
            .unwrap()
            .is_none()
    );
    client.delete_stream(&id("payments")).await.unwrap();
    assert_eq!(client.get_streams().await.unwrap().len(), 1);
    // A new topic with reused ids starts empty.
    create_stream_and_topic(&client, "payments", "charges", 1).await;
    let details = topic(&client, "payments", "charges").await.unwrap();
    assert_eq!(details.messages_count, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_me_and_cluster_metadata() {
    let broker = TestBroker::start();
    let client = broker.client().await;
    let other = broker.client().await;
    let me = client.get_me().await.unwrap();
    let clients = other.get_clients().await.unwrap();
    assert!(clients.len() >= 2);
    assert!(clients.iter().any(|c| c.client_id == me.client_id));
    let cluster = client.get_cluster_metadata().await.unwrap();
    assert_eq!(cluster.nodes.len(), 1);
    assert_eq!(cluster.nodes[0].endpoints.tcp, broker.address.port());

    let topic_options = client.describe_options(OptionsScope::Topic).await.unwrap();
    let keys: Vec<_> = topic_options.iter().map(|o| o.key.as_str()).collect();
    for key in [
        "message_expiry",
        "max_topic_size",
        "segment_size",
        "compression_algorithm",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    assert!(
        client
            .describe_options(OptionsScope::Stream)
            .await
            .unwrap()
            .is_empty()
    );
}
