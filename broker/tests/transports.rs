//! The same client scenario over every transport the broker serves, with
//! the official `iggy` 0.11 client picking the transport from its
//! connection string (`iggy://`, `iggy+quic://`, `iggy+ws://`).

mod common;

use common::*;
use iggy::prelude::*;

/// Login, CRUD, send and poll with headers, offsets, a consumer group and
/// a clear error for a bad request: what every transport must carry.
/// Group membership is a property of a connection, so the SDK offers
/// join only on the binary transports (`joins`), not over HTTP.
async fn scenario(client: &IggyClient, joins: bool) {
    client.ping().await.unwrap();
    create_stream_and_topic(client, "s", "t", 2).await;
    let topic = client.get_topic(&id("s"), &id("t")).await.unwrap().unwrap();
    assert_eq!(topic.partitions_count, 2);

    for (partition, first_id) in [(0, 1), (1, 1_001)] {
        send(
            client,
            "s",
            "t",
            &Partitioning::partition_id(partition),
            first_id,
            500,
        )
        .await;
    }
    let read = poll_all(client, "s", "t", 1).await;
    assert_eq!(read.len(), 500);
    assert!(
        read.iter()
            .enumerate()
            .all(|(i, (offset, id))| { *offset == i as u64 && *id == 1_001 + i as u128 })
    );
    let consumer = Consumer::new(Identifier::numeric(7).unwrap());
    let polled = client
        .poll_messages(
            &id("s"),
            &id("t"),
            Some(0),
            &consumer,
            &PollingStrategy::offset(10),
            1,
            false,
        )
        .await
        .unwrap();
    let headers = polled.messages[0].user_headers_map().unwrap().unwrap();
    assert_eq!(
        headers[&HeaderKey::try_from("n").unwrap()]
            .as_uint64()
            .unwrap(),
        11
    );

    client
        .store_consumer_offset(&consumer, &id("s"), &id("t"), Some(0), 99)
        .await
        .unwrap();
    let offset = client
        .get_consumer_offset(&consumer, &id("s"), &id("t"), Some(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(offset.stored_offset, 99);

    client
        .create_consumer_group(&id("s"), &id("t"), "g")
        .await
        .unwrap();
    if joins {
        client
            .join_consumer_group(&id("s"), &id("t"), &id("g"))
            .await
            .unwrap();
    }
    let group = client
        .get_consumer_group(&id("s"), &id("t"), &id("g"))
        .await
        .unwrap()
        .unwrap();
    if joins {
        assert_eq!(group.members_count, 1);
        assert_eq!(group.members[0].partitions_count, 2);
    } else {
        assert_eq!(group.members_count, 0);
    }

    let missing = client.get_topic(&id("s"), &id("nope")).await.unwrap();
    assert!(missing.is_none());
    let err = client.create_stream("s").await.unwrap_err();
    assert_eq!(
        upstream_code(&err),
        IggyError::StreamNameAlreadyExists(String::new()).as_code()
    );
    client.delete_stream(&id("s")).await.unwrap();
}

/// The upstream error code of a failed request. Over HTTP the SDK reports
/// a non-auth error as `HttpResponseError(status, body)`; the broker's JSON
/// body carries the code as `id`.
fn upstream_code(err: &IggyError) -> u32 {
    match err {
        IggyError::HttpResponseError(400, body) => {
            let body: serde_json::Value = serde_json::from_str(body).unwrap();
            body["id"].as_u64().unwrap() as u32
        }
        other => other.as_code(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_carries_the_scenario() {
    let broker = TestBroker::start();
    scenario(&broker.client().await, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_carries_the_scenario() {
    let broker = TestBroker::start();
    let address = broker.quic_address.expect("QUIC is enabled by default");
    let client =
        IggyClient::from_connection_string(&format!("iggy+quic://iggy:iggy@{address}")).unwrap();
    client.connect().await.unwrap();
    scenario(&client, true).await;

    // The broker lists the client as a QUIC client (transport 2) and
    // counts it per transport.
    let me = client.get_me().await.unwrap();
    assert_eq!(me.transport, "QUIC");
    let metrics = http_get(broker.http_address.unwrap(), "/metrics").await;
    assert_eq!(
        metric(&metrics, "iggy_broker_connections{transport=\"quic\"}"),
        1.0
    );
    // A wrong password is refused with the same error as over TCP.
    let wrong = IggyClient::from_connection_string(&format!(
        "iggy+quic://iggy:wrong@{address}?reconnection_max_retries=0"
    ))
    .unwrap();
    let err = wrong.connect().await.unwrap_err();
    assert_eq!(err.as_code(), IggyError::InvalidCredentials.as_code());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_carries_the_scenario() {
    let broker = TestBroker::start();
    let address = broker
        .websocket_address
        .expect("WebSocket is enabled by default");
    let client =
        IggyClient::from_connection_string(&format!("iggy+ws://iggy:iggy@{address}")).unwrap();
    client.connect().await.unwrap();
    scenario(&client, true).await;
    assert_eq!(client.get_me().await.unwrap().transport, "WebSocket");
    let metrics = http_get(broker.http_address.unwrap(), "/metrics").await;
    assert_eq!(
        metric(&metrics, "iggy_broker_connections{transport=\"websocket\"}"),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_carries_the_scenario() {
    let broker = TestBroker::start();
    let address = broker.http_address.unwrap();
    let client =
        IggyClient::from_connection_string(&format!("iggy+http://iggy:iggy@{address}")).unwrap();
    client.connect().await.unwrap();
    client.login_user("iggy", "iggy").await.unwrap();
    scenario(&client, false).await;
}
