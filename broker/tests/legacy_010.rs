//! Applications on the previous SDK generation: the official `iggy` 0.10.0
//! crate (legacy framing) against the same broker, on the same port as 0.11
//! clients — login, CRUD, send/poll with headers, offsets, consumer groups,
//! users and tokens — and data written by one generation read by the other.

mod common;

use common::TestBroker;
use futures::StreamExt;
use iggy_010::prelude::*;
use std::collections::HashSet;
use std::time::{Duration, Instant};

async fn client(broker: &TestBroker) -> IggyClient {
    client_with(broker, "iggy", "iggy").await
}

async fn client_with(broker: &TestBroker, username: &str, password: &str) -> IggyClient {
    let connection = format!("iggy://{username}:{password}@{}", broker.address);
    let client = IggyClient::from_connection_string(&connection).unwrap();
    client.connect().await.unwrap();
    client
}

/// A topic with no expiry and no size cap.
async fn create_topic(client: &IggyClient, stream: &str, topic: &str, partitions: u32) {
    client
        .create_topic(
            &id(stream),
            topic,
            partitions,
            CompressionAlgorithm::None,
            None,
            IggyExpiry::NeverExpire,
            MaxTopicSize::Unlimited,
        )
        .await
        .unwrap();
}

async fn send(client: &IggyClient, partitioning: &Partitioning, batch: &mut [IggyMessage]) {
    client
        .send_messages(&id("s"), &id("t"), partitioning, batch)
        .await
        .unwrap();
}

/// Poll stream `s`, topic `t` as consumer 1.
async fn poll(
    client: &IggyClient,
    partition: u32,
    strategy: &PollingStrategy,
    count: u32,
    auto_commit: bool,
) -> PolledMessages {
    let consumer = Consumer::new(Identifier::numeric(1).unwrap());
    client
        .poll_messages(
            &id("s"),
            &id("t"),
            Some(partition),
            &consumer,
            strategy,
            count,
            auto_commit,
        )
        .await
        .unwrap()
}

fn id(name: &str) -> Identifier {
    Identifier::named(name).unwrap()
}

fn messages(first_id: u128, count: usize) -> Vec<IggyMessage> {
    (0..count)
        .map(|i| {
            let id = first_id + i as u128;
            let mut headers = std::collections::BTreeMap::new();
            headers.insert(
                HeaderKey::try_from("seq").unwrap(),
                HeaderValue::from(id as u64),
            );
            IggyMessage::builder()
                .id(id)
                .payload(bytes::Bytes::from(format!("legacy-{id}")))
                .user_headers(headers)
                .build()
                .unwrap()
        })
        .collect()
}

fn code(result: Result<impl std::fmt::Debug, IggyError>) -> u32 {
    result.expect_err("the request should fail").as_code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_topics_and_partitions() {
    let broker = TestBroker::start();
    let client = client(&broker).await;
    client.ping().await.unwrap();

    let stream = client.create_stream("orders").await.unwrap();
    assert_eq!(stream.name, "orders");
    assert_eq!(stream.topics_count, 0);
    let topic = client
        .create_topic(
            &id("orders"),
            "created",
            3,
            CompressionAlgorithm::None,
            None,
            IggyExpiry::ExpireDuration(IggyDuration::from(3_600_000_000)),
            MaxTopicSize::from(10_000_000_u64),
        )
        .await
        .unwrap();
    assert_eq!(topic.partitions_count, 3);
    assert_eq!(topic.partitions.len(), 3);
    assert_eq!(
        topic.message_expiry,
        IggyExpiry::ExpireDuration(IggyDuration::from(3_600_000_000))
    );
    assert_eq!(topic.max_topic_size, MaxTopicSize::from(10_000_000_u64));

    let same = code(client.create_stream("orders").await);
    assert_eq!(
        same,
        IggyError::StreamNameAlreadyExists(String::new()).as_code()
    );

    let streams = client.get_streams().await.unwrap();
    assert_eq!(streams.len(), 1);
    let details = client.get_stream(&id("orders")).await.unwrap().unwrap();
    assert_eq!(details.topics.len(), 1);
    assert_eq!(details.topics[0].name, "created");
    assert!(client.get_stream(&id("nope")).await.unwrap().is_none());
    assert_eq!(client.get_topics(&id("orders")).await.unwrap().len(), 1);

    client
        .update_topic(
            &id("orders"),
            &id("created"),
            "placed",
            CompressionAlgorithm::None,
            None,
            IggyExpiry::NeverExpire,
            MaxTopicSize::Unlimited,
        )
        .await
        .unwrap();
    let topic = client
        .get_topic(&id("orders"), &id("placed"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(topic.message_expiry, IggyExpiry::NeverExpire);
    assert_eq!(topic.max_topic_size, MaxTopicSize::Unlimited);

    client
        .create_partitions(&id("orders"), &id("placed"), 2)
        .await
        .unwrap();
    client
        .delete_partitions(&id("orders"), &id("placed"), 1)
        .await
        .unwrap();
    let topic = client
        .get_topic(&id("orders"), &id("placed"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(topic.partitions_count, 4);

    client.update_stream(&id("orders"), "sales").await.unwrap();
    client
        .delete_topic(&id("sales"), &id("placed"))
        .await
        .unwrap();
    client.delete_stream(&id("sales")).await.unwrap();
    assert!(client.get_streams().await.unwrap().is_empty());
    let stats = client.get_stats().await.unwrap();
    assert_eq!(stats.streams_count, 0);
    assert!(client.get_me().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_with_headers_offsets_and_both_generations() {
    let broker = TestBroker::start();
    let client = client(&broker).await;
    client.create_stream("s").await.unwrap();
    create_topic(&client, "s", "t", 2).await;

    // Explicit partition, balanced and keyed sends, resolved by the server.
    let mut batch = messages(1, 100);
    send(&client, &Partitioning::partition_id(0), &mut batch).await;
    for i in 0..4 {
        let mut batch = messages(1_000 + i * 10, 10);
        send(&client, &Partitioning::balanced(), &mut batch).await;
    }
    let mut keyed = messages(2_000, 10);
    send(
        &client,
        &Partitioning::messages_key_str("customer-7").unwrap(),
        &mut keyed,
    )
    .await;
    // Messages without an id get one from the broker, different within
    // a batch and across batches (counted below with the others).
    for _ in 0..2 {
        let mut anonymous = (0..3)
            .map(|_| {
                IggyMessage::builder()
                    .payload("no id".into())
                    .build()
                    .unwrap()
            })
            .collect::<Vec<_>>();
        send(&client, &Partitioning::partition_id(1), &mut anonymous).await;
    }

    let consumer = Consumer::new(Identifier::numeric(1).unwrap());
    let polled = poll(&client, 0, &PollingStrategy::offset(0), 100, false).await;
    assert_eq!(polled.partition_id, 0);
    assert_eq!(polled.messages.len(), 100);
    for (i, message) in polled.messages.iter().enumerate() {
        assert_eq!(message.header.offset, i as u64);
        assert_eq!(message.header.id, 1 + i as u128);
        assert_eq!(message.payload, format!("legacy-{}", 1 + i).as_bytes());
        let headers = message.user_headers_map().unwrap().unwrap();
        let seq = headers.get(&HeaderKey::try_from("seq").unwrap()).unwrap();
        assert_eq!(seq.as_uint64().unwrap(), 1 + i as u64);
        assert!(message.header.timestamp > 0);
    }

    // Every message is somewhere, once; ids were assigned where missing.
    let mut ids = HashSet::new();
    let mut total = 0;
    let mut in_partition_0 = 0;
    for partition in 0..2 {
        let polled = poll(
            &client,
            partition,
            &PollingStrategy::offset(0),
            1_000,
            false,
        )
        .await;
        total += polled.messages.len();
        if partition == 0 {
            in_partition_0 = polled.messages.len();
        }
        ids.extend(polled.messages.iter().map(|m| m.header.id));
    }
    assert_eq!(total, 100 + 40 + 10 + 6);
    assert_eq!(ids.len(), total);
    assert!(!ids.contains(&0));

    // Offsets: store, get, delete; then `next` continues after the stored one.
    client
        .store_consumer_offset(&consumer, &id("s"), &id("t"), Some(0), 49)
        .await
        .unwrap();
    let offset = client
        .get_consumer_offset(&consumer, &id("s"), &id("t"), Some(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(offset.stored_offset, 49);
    let next = poll(&client, 0, &PollingStrategy::next(), 10, true).await;
    assert_eq!(next.messages[0].header.offset, 50);
    client
        .delete_consumer_offset(&consumer, &id("s"), &id("t"), Some(0))
        .await
        .unwrap();
    assert!(
        client
            .get_consumer_offset(&consumer, &id("s"), &id("t"), Some(0))
            .await
            .unwrap()
            .is_none()
    );

    // The 0.11 SDK reads what the 0.10 SDK wrote, and the other way round.
    let modern = broker.client().await;
    let read = common::poll_all(&modern, "s", "t", 0).await;
    assert_eq!(read.len(), in_partition_0);
    assert_eq!(read[7], (7, 8));
    common::send(
        &modern,
        "s",
        "t",
        &iggy::prelude::Partitioning::partition_id(0),
        5_000,
        5,
    )
    .await;
    let polled = poll(
        &client,
        0,
        &PollingStrategy::offset(in_partition_0 as u64),
        10,
        false,
    )
    .await;
    let ids: Vec<u128> = polled.messages.iter().map(|m| m.header.id).collect();
    assert_eq!(ids, [5_000, 5_001, 5_002, 5_003, 5_004]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_groups_with_the_high_level_consumer() {
    let broker = TestBroker::start();
    let producer = client(&broker).await;
    producer.create_stream("s").await.unwrap();
    create_topic(&producer, "s", "t", 4).await;

    let mut members = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..2 {
        let client = client(&broker).await;
        let mut consumer = client
            .consumer_group("workers", "s", "t")
            .unwrap()
            .auto_commit(AutoCommit::When(AutoCommitWhen::PollingMessages))
            .create_consumer_group_if_not_exists()
            .auto_join_consumer_group()
            .polling_strategy(PollingStrategy::next())
            .batch_length(100)
            .poll_interval(IggyDuration::from(10_000))
            .build();
        consumer.init().await.unwrap();
        members.push(consumer);
        clients.push(client);
    }
    let group = producer
        .get_consumer_group(&id("s"), &id("t"), &id("workers"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(group.members_count, 2);
    assert!(group.members.iter().all(|m| m.partitions_count == 2));

    for batch in 0..10 {
        let mut messages = messages(1 + batch * 100, 100);
        send(&producer, &Partitioning::balanced(), &mut messages).await;
    }

    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let tasks: Vec<_> = members
        .into_iter()
        .map(|mut consumer| {
            let seen = seen.clone();
            tokio::spawn(async move {
                while let Some(Ok(message)) = consumer.next().await {
                    seen.lock().unwrap().push(message.message.header.id);
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().len() < 1_000 {
        assert!(
            Instant::now() < deadline,
            "only {} of 1000 consumed",
            seen.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for task in &tasks {
        task.abort();
    }
    let seen = seen.lock().unwrap().clone();
    let unique: HashSet<u128> = seen.iter().copied().collect();
    assert_eq!(unique.len(), 1_000);
    assert_eq!(seen.len(), 1_000, "some messages were delivered twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_permissions_and_tokens() {
    let broker = TestBroker::start();
    let root = client(&broker).await;
    root.create_stream("s").await.unwrap();
    let readers = Permissions {
        global: GlobalPermissions {
            read_streams: true,
            ..Default::default()
        },
        streams: None,
    };
    let user = root
        .create_user(
            "legacy-user",
            "secret-1",
            UserStatus::Active,
            Some(readers.clone()),
        )
        .await
        .unwrap();
    assert_eq!(user.username, "legacy-user");
    assert_eq!(user.permissions, Some(readers));
    let users = root.get_users().await.unwrap();
    assert_eq!(users.len(), 2);
    root.update_user(&id("legacy-user"), None, Some(UserStatus::Active))
        .await
        .unwrap();

    let user_client = client_with(&broker, "legacy-user", "secret-1").await;
    assert_eq!(user_client.get_streams().await.unwrap().len(), 1);
    assert_eq!(
        code(user_client.create_stream("nope").await),
        IggyError::Unauthorized.as_code()
    );
    user_client
        .change_password(&id("legacy-user"), "secret-1", "secret-2")
        .await
        .unwrap();

    // Personal access tokens: create, log in with one, list, delete.
    let token = user_client
        .create_personal_access_token("legacy-token", PersonalAccessTokenExpiry::NeverExpire)
        .await
        .unwrap()
        .token;
    let with_token = IggyClient::builder()
        .with_tcp()
        .with_server_address(broker.address.to_string())
        .build()
        .unwrap();
    with_token.connect().await.unwrap();
    let identity = with_token
        .login_with_personal_access_token(&token)
        .await
        .unwrap();
    assert_eq!(identity.user_id, user.id);
    assert_eq!(with_token.get_streams().await.unwrap().len(), 1);
    let tokens = user_client.get_personal_access_tokens().await.unwrap();
    assert_eq!(tokens.len(), 1);
    user_client
        .delete_personal_access_token("legacy-token")
        .await
        .unwrap();

    // Wrong password: a clear error, and the right one still works.
    let fresh = IggyClient::builder()
        .with_tcp()
        .with_server_address(broker.address.to_string())
        .build()
        .unwrap();
    fresh.connect().await.unwrap();
    assert_eq!(
        code(fresh.login_user("legacy-user", "secret-1").await),
        IggyError::InvalidCredentials.as_code()
    );
    fresh.login_user("legacy-user", "secret-2").await.unwrap();

    root.delete_user(&id("legacy-user")).await.unwrap();
    assert!(root.get_user(&id("legacy-user")).await.unwrap().is_none());
}

/// The 0.10 SDK over WebSocket: the broker detects the legacy framing on
/// that transport too, and requests and replies larger than one WebSocket
/// message (the broker sends replies in 64 KiB messages) arrive whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_clients_work_over_websocket() {
    let broker = TestBroker::start();
    let address = broker.websocket_address.expect("WebSocket is enabled");
    let client =
        IggyClient::from_connection_string(&format!("iggy+ws://iggy:iggy@{address}")).unwrap();
    client.connect().await.unwrap();
    client.create_stream("s").await.unwrap();
    create_topic(&client, "s", "t", 1).await;
    let mut batch: Vec<IggyMessage> = (0..3u8)
        .map(|i| {
            IggyMessage::builder()
                .id(u128::from(i) + 1)
                .payload(bytes::Bytes::from(vec![b'a' + i; 100_000]))
                .build()
                .unwrap()
        })
        .collect();
    send(&client, &Partitioning::partition_id(0), &mut batch).await;
    let polled = poll(&client, 0, &PollingStrategy::offset(0), 10, false).await;
    assert_eq!(polled.messages.len(), 3);
    for (i, message) in polled.messages.iter().enumerate() {
        assert_eq!(message.header.id, i as u128 + 1);
        assert_eq!(message.payload.len(), 100_000);
        assert!(message.payload.iter().all(|byte| *byte == b'a' + i as u8));
    }
    let me = client.get_me().await.unwrap();
    assert_eq!(me.transport, "WebSocket");
}
