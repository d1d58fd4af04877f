//! The HTTP health endpoints that Kubernetes probes, and Prometheus metrics.

mod common;

use common::{
    TestBroker, create_stream_and_topic, http_get as get, http_get_with as get_with,
    metric as sample, poll_all, send,
};
use iggy::prelude::*;

#[tokio::test]
async fn ping_healthz_and_readyz_answer() {
    let broker = TestBroker::start();
    let http = broker
        .http_address
        .expect("the HTTP listener is on by default");
    let ping = get(http, "/ping").await;
    assert!(
        ping.starts_with("HTTP/1.0 200") && ping.ends_with("pong"),
        "{ping}"
    );
    assert!(get(http, "/healthz").await.starts_with("HTTP/1.0 200"));
    let ready = get(http, "/readyz").await;
    assert!(
        ready.starts_with("HTTP/1.0 200") && ready.ends_with("ready"),
        "{ready}"
    );
    assert!(get(http, "/nope").await.starts_with("HTTP/1.0 404"));
}

/// The value of the sample `name{labels}` (or unlabelled `name`).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_traffic_requests_and_storage() {
    let broker = TestBroker::start();
    let http = broker.http_address.unwrap();
    let client = broker.client().await;
    create_stream_and_topic(&client, "orders", "events", 2).await;
    for _ in 0..3 {
        send(
            &client,
            "orders",
            "events",
            &Partitioning::partition_id(1),
            1,
            10,
        )
        .await;
    }
    assert_eq!(poll_all(&client, "orders", "events", 1).await.len(), 30);
    let err = client.create_stream("orders").await.unwrap_err();
    assert_eq!(err.as_code(), 1012);

    let response = get(http, "/metrics").await;
    assert!(response.starts_with("HTTP/1.0 200"), "{response}");
    let topic = r#"{stream="orders",topic="events"}"#;
    assert_eq!(
        sample(&response, &format!("iggy_broker_messages_in_total{topic}")),
        30.0
    );
    assert_eq!(
        sample(&response, &format!("iggy_broker_messages_out_total{topic}")),
        30.0
    );
    assert!(sample(&response, &format!("iggy_broker_bytes_in_total{topic}")) > 30.0 * 48.0);
    assert_eq!(
        sample(
            &response,
            r#"iggy_broker_request_duration_seconds_count{command="message.send"}"#
        ),
        3.0
    );
    assert_eq!(
        sample(&response, r#"iggy_broker_errors_total{code="1012"}"#),
        1.0
    );
    assert_eq!(
        sample(&response, "iggy_broker_fsync_duration_seconds_count"),
        3.0
    );
    assert!(sample(&response, "iggy_broker_connections{transport=\"tcp\"}") >= 1.0);
    assert_eq!(sample(&response, "iggy_broker_partitions"), 2.0);
    // (Leaders and under-replicated partitions are constant for a broker
    // alone; tests/replication.rs and tests/cluster.rs check them where
    // they change.)
    assert_eq!(sample(&response, "iggy_broker_segments"), 2.0);
    assert!(sample(&response, "iggy_broker_disk_bytes") > 0.0);
}

#[tokio::test]
async fn metrics_can_require_a_bearer_token() {
    let broker = TestBroker::start_with(&[("IGGY_HTTP_METRICS_TOKEN", "scrape-secret")]);
    let http = broker.http_address.unwrap();
    assert!(get(http, "/metrics").await.starts_with("HTTP/1.0 401"));
    let wrong = get_with(http, "/metrics", "Authorization: Bearer scrape-secreT\r\n").await;
    assert!(wrong.starts_with("HTTP/1.0 401"));
    let right = get_with(http, "/metrics", "Authorization: Bearer scrape-secret\r\n").await;
    assert!(right.starts_with("HTTP/1.0 200"), "{right}");
    assert!(right.contains("iggy_broker_partitions"));
    // Probes stay open, and the token is not written to the runtime file.
    assert!(get(http, "/healthz").await.starts_with("HTTP/1.0 200"));
    let runtime = std::fs::read_to_string(
        broker
            .data_dir()
            .join("runtime")
            .join("current_config.toml"),
    )
    .unwrap();
    assert!(!runtime.contains("scrape-secret"));
}
