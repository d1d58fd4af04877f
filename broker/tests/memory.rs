//! The broker's resident memory after a burst of large batches: buffers
//! the connections grew are given back once they go quiet, and the
//! allocator returns the freed memory to the operating system — what a
//! container's memory limit counts does not stay at the burst's peak.

mod common;

use common::{TestBroker, create_stream_and_topic, id, wait_for};
use iggy::prelude::*;
use std::time::Duration;

/// The broker process's resident memory, in MiB.
fn resident_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kib / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_grown_by_large_batches_is_given_back_when_connections_go_quiet() {
    let broker = TestBroker::start();
    let admin = broker.client().await;
    create_stream_and_topic(&admin, "s", "t", 1).await;
    let before = resident_mib(broker.pid());

    // 40 clients send one 1 MB batch each and stay connected (quiet but
    // for the SDK's heartbeats).
    let payload = bytes::Bytes::from(vec![b'x'; 1000]);
    let mut clients = Vec::new();
    for _ in 0..40 {
        let client = broker.client().await;
        let mut batch: Vec<IggyMessage> = (0..1000)
            .map(|_| IggyMessage::builder().payload(payload.clone()).build())
            .collect::<Result<_, _>>()
            .unwrap();
        client
            .send_messages(
                &id("s"),
                &id("t"),
                &Partitioning::partition_id(0),
                &mut batch,
            )
            .await
            .unwrap();
        clients.push(client);
    }
    let peak = resident_mib(broker.pid());
    assert!(
        peak > before + 30.0,
        "the burst grows the broker's buffers ({before:.0} → {peak:.0} MiB)"
    );

    // Quiet connections give their buffers back after 5–10 s and the
    // allocator's free memory is returned within 10 s more.
    let target = before + (peak - before) / 3.0;
    wait_for(
        &format!("resident memory below {target:.0} MiB (from {peak:.0})"),
        Duration::from_secs(60),
        || resident_mib(broker.pid()) < target,
    )
    .await;
    for client in &clients {
        client.ping().await.unwrap();
    }
}
