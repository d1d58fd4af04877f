//! Request latency one client sees when it is alone: small sends and polls
//! with the SDK's default settings next to `nodelay=true`, and metadata
//! writes.

use crate::actors::TOPIC;
use crate::report::{histogram, record};
use crate::{Args, connect, connect_with};
use hdrhistogram::Histogram;
use iggy::prelude::*;
use std::time::Instant;

/// Batch sizes measured: a small and a mid-size batch.
const MESSAGES_PER_SEND: [u32; 2] = [10, 100];

/// For 10- and 100-message batches: `--batches` sends one after another,
/// then as many polls of the same size, once with the SDK's default
/// connection settings (Nagle on) and once with `nodelay=true`.
pub async fn sends_and_polls(args: &Args) -> anyhow::Result<()> {
    let admin = connect(args).await?;
    let stream = Identifier::named(&args.stream)?;
    let topic = Identifier::named(TOPIC)?;
    if admin.get_stream(&stream).await?.is_some() {
        admin.delete_stream(&stream).await?;
    }
    admin.create_stream(&args.stream).await?;
    let payload = bytes::Bytes::from(vec![b'x'; args.message_size]);
    for count in MESSAGES_PER_SEND {
        for (label, nodelay) in [("SDK defaults", false), ("nodelay=true", true)] {
            // A fresh topic per run, so that the polls read what it sent.
            if admin.get_topic(&stream, &topic).await?.is_some() {
                admin.delete_topic(&stream, &topic).await?;
            }
            admin
                .create_topic(&stream, TOPIC, &TopicCreateOptions::default())
                .await?;
            let client = connect_with(args, nodelay).await?;
            let mut batch: Vec<IggyMessage> = (0..count)
                .map(|_| IggyMessage::builder().payload(payload.clone()).build())
                .collect::<Result<_, _>>()?;
            let partitioning = Partitioning::partition_id(0);
            let mut sends = histogram();
            for _ in 0..args.batches {
                let at = Instant::now();
                client
                    .send_messages(&stream, &topic, &partitioning, &mut batch)
                    .await?;
                record(&mut sends, at)?;
            }
            let who = Consumer::new(Identifier::numeric(1)?);
            let mut polls = histogram();
            let mut offset = 0u64;
            for _ in 0..args.batches {
                let at = Instant::now();
                let polled = client
                    .poll_messages(
                        &stream,
                        &topic,
                        Some(0),
                        &who,
                        &PollingStrategy::offset(offset),
                        count,
                        false,
                    )
                    .await?;
                record(&mut polls, at)?;
                anyhow::ensure!(
                    polled.messages.len() == count as usize,
                    "polled {} messages at offset {offset}, expected {count}",
                    polled.messages.len()
                );
                offset += u64::from(count);
            }
            print_round_trips(
                &format!("send {count} x {} B, {label}", args.message_size),
                &sends,
            );
            print_round_trips(
                &format!("poll {count} x {} B, {label}", args.message_size),
                &polls,
            );
        }
    }
    admin.delete_stream(&stream).await?;
    Ok(())
}

fn print_round_trips(name: &str, h: &Histogram<u64>) {
    println!(
        "{name:<34} {:>6} requests   p50 {:.3}  p99 {:.3}  max {:.3} ms",
        h.len(),
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
}

/// Create `ops` topics, one at a time, in a fresh stream: the latency of a
/// metadata change as a client sees it (for a cluster: through the
/// metadata group's leader and back to the broker asked).
pub async fn metadata(args: &Args, ops: u32) -> anyhow::Result<()> {
    let admin = connect(args).await?;
    let stream = Identifier::named(&args.stream)?;
    if admin.get_stream(&stream).await?.is_some() {
        admin.delete_stream(&stream).await?;
    }
    admin.create_stream(&args.stream).await?;
    let mut latency = Histogram::<u64>::new(3)?;
    let started = Instant::now();
    for i in 0..ops {
        let at = Instant::now();
        admin
            .create_topic(&stream, &format!("t{i}"), &TopicCreateOptions::default())
            .await?;
        latency.record(at.elapsed().as_micros() as u64)?;
    }
    let elapsed = started.elapsed();
    println!(
        "create-topic {ops} ops in {:.2} s ({:.0} ops/s): latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        elapsed.as_secs_f64(),
        f64::from(ops) / elapsed.as_secs_f64(),
        latency.value_at_quantile(0.5) as f64 / 1000.0,
        latency.value_at_quantile(0.99) as f64 / 1000.0,
        latency.max() as f64 / 1000.0
    );
    admin.delete_stream(&stream).await?;
    Ok(())
}
