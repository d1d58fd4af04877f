//! `iggy-bench`: a load generator for any Iggy-compatible server, built on
//! the official `iggy` client.
//!
//! It measures, in one run:
//! 1. the raw loopback TCP copy rate of this machine (the ceiling any broker
//!    on loopback can reach) with the same number of connections and the
//!    same write size as the producers;
//! 2. produce throughput and per-batch latency (p50/p99/p999);
//! 3. consume throughput and per-poll latency;
//!
//! and prints produce throughput as a fraction of the raw rate.

use clap::Parser;
use hdrhistogram::Histogram;
use iggy::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "iggy-bench",
    about = "Produce/consume benchmark for Iggy-compatible servers"
)]
struct Args {
    /// Server TCP address.
    #[arg(long, default_value = "127.0.0.1:8090")]
    address: String,
    #[arg(long, default_value = "iggy")]
    username: String,
    #[arg(long, default_value = "iggy")]
    password: String,
    /// Concurrent producers (each on its own connection and partition).
    #[arg(long, default_value_t = 4)]
    producers: u32,
    /// Concurrent consumers (each reads one producer's partition).
    #[arg(long, default_value_t = 4)]
    consumers: u32,
    /// Messages per batch (per send and per poll).
    #[arg(long, default_value_t = 1000)]
    messages_per_batch: u32,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 1000)]
    message_size: usize,
    /// Batches each producer sends.
    #[arg(long, default_value_t = 200)]
    batches: u32,
    /// Stream name used for the run (deleted first if it exists).
    #[arg(long, default_value = "bench")]
    stream: String,
    /// Connect with TLS, verifying the server (name `localhost`) against
    /// this CA certificate.
    #[arg(long)]
    tls_ca_file: Option<String>,
    /// Transport: `tcp` or `quic` (then `--address` is the QUIC address).
    #[arg(long, default_value = "tcp")]
    transport: String,
    /// Consumers poll with auto-commit, storing their offset with every
    /// poll (what the SDK's high-level consumer does by default).
    #[arg(long)]
    auto_commit: bool,
    /// Instead of messages, measure metadata writes: create this many
    /// topics one after another and report the latency of each creation.
    #[arg(long)]
    metadata_ops: Option<u32>,
}

struct Phase {
    name: &'static str,
    bytes: u64,
    messages: u64,
    elapsed: Duration,
    latency: Option<Histogram<u64>>,
}

impl Phase {
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }

    fn print(&self) {
        print!(
            "{:<10} {:>10.1} MB/s {:>12.0} msg/s",
            self.name,
            self.mb_per_s(),
            self.messages as f64 / self.elapsed.as_secs_f64()
        );
        if let Some(h) = &self.latency {
            print!(
                "   latency p50 {:.2} ms  p99 {:.2} ms  p999 {:.2} ms  max {:.2} ms",
                h.value_at_quantile(0.5) as f64 / 1000.0,
                h.value_at_quantile(0.99) as f64 / 1000.0,
                h.value_at_quantile(0.999) as f64 / 1000.0,
                h.max() as f64 / 1000.0
            );
        }
        println!();
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

/// The loopback ceiling: `connections` writers each push `bytes_each` bytes
/// in `chunk`-sized writes to readers that discard them.
async fn raw_loopback(connections: u32, bytes_each: u64, chunk: usize) -> anyhow::Result<Phase> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let readers = tokio::spawn(async move {
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let (mut stream, _) = listener.accept().await?;
            tasks.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 256 * 1024];
                while stream.read(&mut buf).await? > 0 {}
                anyhow::Ok(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        anyhow::Ok(())
    });
    let start = Instant::now();
    let mut writers = Vec::new();
    for _ in 0..connections {
        writers.push(tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(address).await?;
            stream.set_nodelay(true)?;
            let data = vec![0x5Au8; chunk];
            let mut sent = 0u64;
            while sent < bytes_each {
                stream.write_all(&data).await?;
                sent += chunk as u64;
            }
            stream.shutdown().await?;
            anyhow::Ok(())
        }));
    }
    for writer in writers {
        writer.await??;
    }
    readers.await??;
    Ok(Phase {
        name: "raw-tcp",
        bytes: bytes_each * u64::from(connections),
        messages: 0,
        elapsed: start.elapsed(),
        latency: None,
    })
}

async fn connect(args: &Args) -> anyhow::Result<IggyClient> {
    // Nagle off, as for any latency-sensitive client (the SDK's default is
    // on; with TLS it then holds the second record of each request until
    // the server's delayed ACK, ~40 ms).
    let tls = args.tls_ca_file.as_ref().map_or(String::new(), |ca| {
        format!("&tls=true&tls_domain=localhost&tls_ca_file={ca}")
    });
    let connection = match args.transport.as_str() {
        "tcp" => format!(
            "iggy://{}:{}@{}?nodelay=true{tls}",
            args.username, args.password, args.address
        ),
        "quic" => format!(
            "iggy+quic://{}:{}@{}",
            args.username, args.password, args.address
        ),
        other => anyhow::bail!("unknown transport `{other}` (tcp or quic)"),
    };
    let client = IggyClient::from_connection_string(&connection)?;
    client.connect().await?;
    Ok(client)
}

async fn produce(args: Arc<Args>) -> anyhow::Result<Phase> {
    let payload = bytes::Bytes::from(vec![b'x'; args.message_size]);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for producer in 0..args.producers {
        let args = args.clone();
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            let client = connect(&args).await?;
            let stream = Identifier::named(&args.stream)?;
            let topic = Identifier::named("bench")?;
            let partitioning = Partitioning::partition_id(producer);
            let mut latency = histogram();
            let mut batch: Vec<IggyMessage> = (0..args.messages_per_batch)
                .map(|_| IggyMessage::builder().payload(payload.clone()).build())
                .collect::<Result<_, _>>()?;
            for _ in 0..args.batches {
                let sent_at = Instant::now();
                client
                    .send_messages(&stream, &topic, &partitioning, &mut batch)
                    .await?;
                latency.record(sent_at.elapsed().as_micros().max(1) as u64)?;
            }
            anyhow::Ok(latency)
        }));
    }
    let mut latency = histogram();
    for task in tasks {
        latency.add(task.await??)?;
    }
    let messages = u64::from(args.producers * args.batches * args.messages_per_batch);
    Ok(Phase {
        name: "produce",
        bytes: messages * args.message_size as u64,
        messages,
        elapsed: start.elapsed(),
        latency: Some(latency),
    })
}

async fn consume(args: Arc<Args>) -> anyhow::Result<Phase> {
    let start = Instant::now();
    let per_partition = u64::from(args.batches * args.messages_per_batch);
    let mut tasks = Vec::new();
    for consumer in 0..args.consumers {
        let args = args.clone();
        tasks.push(tokio::spawn(async move {
            let client = connect(&args).await?;
            let stream = Identifier::named(&args.stream)?;
            let topic = Identifier::named("bench")?;
            let partition = consumer % args.producers;
            let who = Consumer::new(Identifier::numeric(consumer + 1)?);
            let mut latency = histogram();
            let (mut offset, mut bytes) = (0u64, 0u64);
            while offset < per_partition {
                let polled_at = Instant::now();
                let polled = client
                    .poll_messages(
                        &stream,
                        &topic,
                        Some(partition),
                        &who,
                        &PollingStrategy::offset(offset),
                        args.messages_per_batch,
                        args.auto_commit,
                    )
                    .await?;
                latency.record(polled_at.elapsed().as_micros().max(1) as u64)?;
                anyhow::ensure!(
                    !polled.messages.is_empty(),
                    "partition ended early at {offset}"
                );
                offset += polled.messages.len() as u64;
                bytes += polled
                    .messages
                    .iter()
                    .map(|m| m.payload.len() as u64)
                    .sum::<u64>();
            }
            anyhow::Ok((latency, offset, bytes))
        }));
    }
    let mut latency = histogram();
    let (mut messages, mut bytes) = (0, 0);
    for task in tasks {
        let (h, m, b) = task.await??;
        latency.add(h)?;
        messages += m;
        bytes += b;
    }
    Ok(Phase {
        name: "consume",
        bytes,
        messages,
        elapsed: start.elapsed(),
        latency: Some(latency),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    if let Some(ops) = args.metadata_ops {
        return metadata(&args, ops).await;
    }
    anyhow::ensure!(
        args.producers > 0 && args.consumers > 0,
        "need producers and consumers"
    );
    let batch_bytes = args.messages_per_batch as usize * args.message_size;
    let produce_bytes_each = u64::from(args.batches) * batch_bytes as u64;
    println!(
        "iggy-bench: {} producers, {} consumers, {} batches x {} messages x {} B against {}",
        args.producers,
        args.consumers,
        args.batches,
        args.messages_per_batch,
        args.message_size,
        args.address
    );

    let admin = connect(&args).await?;
    let stream = Identifier::named(&args.stream)?;
    if admin.get_stream(&stream).await?.is_some() {
        admin.delete_stream(&stream).await?;
    }
    admin.create_stream(&args.stream).await?;
    admin
        .create_topic(
            &stream,
            "bench",
            &TopicCreateOptions {
                partitions_count: Some(args.producers),
                ..Default::default()
            },
        )
        .await?;

    let raw = raw_loopback(args.producers, produce_bytes_each, batch_bytes).await?;
    let produced = produce(args.clone()).await?;
    let consumed = consume(args.clone()).await?;
    raw.print();
    produced.print();
    consumed.print();
    println!(
        "produce / raw loopback = {:.1} %",
        100.0 * produced.mb_per_s() / raw.mb_per_s()
    );
    admin.delete_stream(&stream).await?;
    Ok(())
}

/// Create `ops` topics, one at a time, in a fresh stream: the latency of a
/// metadata change as a client sees it (for a cluster: through the
/// metadata group's leader and back to the broker asked).
async fn metadata(args: &Args, ops: u32) -> anyhow::Result<()> {
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
