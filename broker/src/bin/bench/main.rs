//! `iggy-broker-bench`: a load generator for any Iggy-compatible server,
//! built on the official `iggy` 0.11 client (not to be confused with
//! upstream Iggy's `iggy-bench`, whose workloads it repeats).
//!
//! Workloads (`--workload`):
//! - `classic` (default): the raw loopback TCP rate of this machine, then
//!   every producer sends to its own partition, then every consumer reads one
//!   back; prints produce throughput as a fraction of the raw rate.
//! - the six shapes of upstream's benchmark (`pinned-producer`,
//!   `pinned-consumer`, `pinned-producer-and-consumer`, `balanced-producer`,
//!   `balanced-consumer-group`, `end-to-end-producing-consumer`; see
//!   `workloads.rs`), or `all` of them after one raw loopback measurement
//!   (the end-to-end producing consumer preceded by its own ceiling, the
//!   same round trips over bare TCP);
//! - `send-latency`: round trips of 10- and 100-message sends and polls with
//!   the SDK's default connection settings and with `nodelay=true`.
//!
//! Clients connect with `nodelay=true` unless `--sdk-defaults` is given.

mod actors;
mod latency;
mod raw;
mod report;
mod workloads;

use clap::{Parser, ValueEnum};
use iggy::prelude::*;
use report::{Actor, Phase, merge};
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    Classic,
    PinnedProducer,
    PinnedConsumer,
    PinnedProducerAndConsumer,
    BalancedProducer,
    BalancedConsumerGroup,
    EndToEndProducingConsumer,
    All,
    SendLatency,
}

/// Which SDK generation the workloads' clients use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Sdk {
    /// The 0.11 SDK (this project's protocol generation).
    #[value(name = "0.11")]
    V011,
    /// The 0.10 SDK: the legacy framing, as upstream's own benchmark sends
    /// (needs the `legacy-bench` feature).
    #[value(name = "0.10")]
    V010,
}

/// Why `--sdk 0.10` cannot run in a default build.
pub const NO_LEGACY_SDK: &str = "--sdk 0.10 needs the legacy-bench feature: \
     cargo build --release -p iggy-broker --features legacy-bench --bin iggy-broker-bench";

/// The six workloads `all` runs, in upstream's order.
const UPSTREAM_WORKLOADS: [Workload; 6] = [
    Workload::PinnedProducer,
    Workload::PinnedConsumer,
    Workload::PinnedProducerAndConsumer,
    Workload::BalancedProducer,
    Workload::BalancedConsumerGroup,
    Workload::EndToEndProducingConsumer,
];

#[derive(Parser, Debug, Clone)]
#[command(
    name = "iggy-broker-bench",
    about = "Benchmark for Iggy-compatible servers over the official 0.11 SDK"
)]
pub struct Args {
    /// Server TCP address.
    #[arg(long, default_value = "127.0.0.1:8090")]
    address: String,
    #[arg(long, default_value = "iggy")]
    username: String,
    #[arg(long, default_value = "iggy")]
    password: String,
    #[arg(long, value_enum, default_value_t = Workload::Classic)]
    workload: Workload,
    /// Concurrent producers (each on its own connection).
    #[arg(long, default_value_t = 4)]
    producers: u32,
    /// Concurrent consumers (each on its own connection).
    #[arg(long, default_value_t = 4)]
    consumers: u32,
    /// Streams of the upstream workloads (default: one per producer or
    /// consumer for pinned workloads, 1 for balanced ones).
    #[arg(long)]
    streams: Option<u32>,
    /// Partitions per topic of the balanced workloads.
    #[arg(long, default_value_t = 24)]
    partitions: u32,
    /// Messages per batch (per send and per poll).
    #[arg(long, default_value_t = 1000)]
    messages_per_batch: u32,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 1000)]
    message_size: usize,
    /// Batches each producer sends.
    #[arg(long, default_value_t = 200)]
    batches: u32,
    /// Stream name (prefix of the upstream workloads' streams); deleted
    /// first if it exists.
    #[arg(long, default_value = "bench")]
    stream: String,
    /// The SDK generation of the workloads' clients (setting up streams,
    /// topics and groups always uses 0.11).
    #[arg(long, value_enum, default_value_t = Sdk::V011)]
    sdk: Sdk,
    /// Connect with the SDK's default settings (Nagle on) instead of
    /// `nodelay=true`: what applications that do not tune the client get.
    #[arg(long)]
    sdk_defaults: bool,
    /// Connect with TLS, verifying the server (name `localhost`) against
    /// this CA certificate.
    #[arg(long)]
    tls_ca_file: Option<String>,
    /// Transport: `tcp`, `quic`, `ws` (WebSocket) or `http`; `--address`
    /// is that listener's address. Over HTTP there are no consumer groups
    /// (the SDK joins only over connections).
    #[arg(long, default_value = "tcp")]
    transport: String,
    /// More connection-string options, e.g. `send_window=10000000` (QUIC).
    #[arg(long)]
    connection_options: Option<String>,
    /// Consumers of the offset-based workloads poll with auto-commit,
    /// storing their offset with every poll.
    #[arg(long)]
    auto_commit: bool,
    /// Leave the upstream workloads' streams and their messages on the
    /// server (to measure start-up with that much data).
    #[arg(long)]
    keep_data: bool,
    /// Instead of messages, measure metadata writes: create this many
    /// topics one after another and report the latency of each creation.
    #[arg(long)]
    metadata_ops: Option<u32>,
}

/// A logged-in client with the run's settings.
pub async fn connect(args: &Args) -> anyhow::Result<IggyClient> {
    connect_with(args, !args.sdk_defaults).await
}

/// A logged-in client, Nagle off when `nodelay`.
pub async fn connect_with(args: &Args, nodelay: bool) -> anyhow::Result<IggyClient> {
    let client = IggyClient::from_connection_string(&connection_string(args, nodelay)?)?;
    client.connect().await?;
    if args.transport == "http" {
        // The HTTP client logs in on request, not on connect.
        client.login_user(&args.username, &args.password).await?;
    }
    Ok(client)
}

/// The connection string of the run's settings (both SDK generations read
/// the same format), Nagle off when `nodelay`.
pub fn connection_string(args: &Args, nodelay: bool) -> anyhow::Result<String> {
    let mut options = Vec::new();
    // Nagle and the CA file are options of the TCP client only.
    if args.transport == "tcp" {
        if nodelay {
            options.push("nodelay=true".to_string());
        }
        if let Some(ca) = &args.tls_ca_file {
            options.push(format!("tls=true&tls_domain=localhost&tls_ca_file={ca}"));
        }
    }
    options.extend(args.connection_options.clone());
    let query = if options.is_empty() {
        String::new()
    } else {
        format!("?{}", options.join("&"))
    };
    let credentials = format!("{}:{}@{}", args.username, args.password, args.address);
    Ok(match args.transport.as_str() {
        "tcp" => format!("iggy://{credentials}{query}"),
        "quic" => format!("iggy+quic://{credentials}{query}"),
        "ws" => format!("iggy+ws://{credentials}{query}"),
        "http" => format!("iggy+http://{credentials}{query}"),
        other => anyhow::bail!("unknown transport `{other}` (tcp, quic, ws or http)"),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    if let Some(ops) = args.metadata_ops {
        return latency::metadata(&args, ops).await;
    }
    anyhow::ensure!(
        args.producers > 0 && args.consumers > 0,
        "need producers and consumers"
    );
    if args.sdk == Sdk::V010 && cfg!(not(feature = "legacy-bench")) {
        anyhow::bail!(NO_LEGACY_SDK);
    }
    println!(
        "iggy-broker-bench {:?}: {} producers, {} consumers, {} batches x {} messages x {} B against {}{}{}",
        args.workload,
        args.producers,
        args.consumers,
        args.batches,
        args.messages_per_batch,
        args.message_size,
        args.address,
        if args.sdk_defaults {
            " (SDK default connection settings)"
        } else {
            " (nodelay=true)"
        },
        if args.sdk == Sdk::V010 {
            ", 0.10 SDK (legacy framing)"
        } else {
            ""
        }
    );
    match args.workload {
        Workload::Classic => classic(&args).await,
        Workload::SendLatency => latency::sends_and_polls(&args).await,
        Workload::All => {
            let raw = ceiling(&args).await?;
            raw.print();
            for workload in UPSTREAM_WORKLOADS {
                if workload == Workload::BalancedConsumerGroup && args.transport == "http" {
                    println!("(balanced consumer group skipped: no groups over HTTP)");
                    continue;
                }
                run_against(&args, workload, &raw).await?;
            }
            Ok(())
        }
        workload => {
            let raw = ceiling(&args).await?;
            raw.print();
            run_against(&args, workload, &raw).await
        }
    }
}

/// The raw loopback rate with as many connections as producers, each
/// writing what one producer sends, one batch per write.
async fn ceiling(args: &Args) -> anyhow::Result<Phase> {
    let batch_bytes = args.messages_per_batch as usize * args.message_size;
    let bytes_each = u64::from(args.batches) * batch_bytes as u64;
    raw::loopback(args.producers, bytes_each, batch_bytes).await
}

/// Run `workload` and print each phase against the raw loopback rate; the
/// end-to-end producing consumer also against its own ceiling, the same
/// round trips over bare TCP ([`raw::round_trips`]), measured first: after
/// the workload the page cache's writeback of what it wrote would still
/// share the cores (up to a third off the ceiling on the 2-core VM).
async fn run_against(args: &Arc<Args>, workload: Workload, raw: &Phase) -> anyhow::Result<()> {
    let floor = if workload == Workload::EndToEndProducingConsumer {
        let messages = args.messages_per_batch as usize;
        let payload = messages * args.message_size;
        // Messages with their 0.11 headers: the bytes the SDK sends and polls.
        let wire = payload + messages * IGGY_MESSAGE_HEADER_SIZE;
        let floor = raw::round_trips(args.producers, args.batches, wire, payload).await?;
        floor.print();
        Some(floor)
    } else {
        None
    };
    for phase in workloads::run(args, workload).await? {
        print_against(&phase, raw);
        if let Some(floor) = &floor {
            println!(
                "{:<34} {:>8.1} % of raw round trips",
                "",
                100.0 * phase.mb_per_s() / floor.mb_per_s()
            );
        }
    }
    Ok(())
}

fn print_against(phase: &Phase, raw: &Phase) {
    phase.print();
    println!(
        "{:<34} {:>8.1} % of raw loopback",
        "",
        100.0 * phase.mb_per_s() / raw.mb_per_s()
    );
}

/// Raw loopback, then every producer to its own partition of one topic,
/// then every consumer reading one of them back.
async fn classic(args: &Arc<Args>) -> anyhow::Result<()> {
    let admin = connect(args).await?;
    let stream = Identifier::named(&args.stream)?;
    if admin.get_stream(&stream).await?.is_some() {
        admin.delete_stream(&stream).await?;
    }
    admin.create_stream(&args.stream).await?;
    admin
        .create_topic(
            &stream,
            actors::TOPIC,
            &TopicCreateOptions {
                partitions_count: Some(args.producers),
                ..Default::default()
            },
        )
        .await?;
    let raw = ceiling(args).await?;
    let started = Instant::now();
    let producers: Vec<_> = (0..args.producers)
        .map(|p| {
            tokio::spawn(actors::producer(
                args.clone(),
                args.stream.clone(),
                actors::Target::Partition(p),
            ))
        })
        .collect();
    let produced = join("produce", started, producers).await?;
    let per_partition = u64::from(args.batches) * u64::from(args.messages_per_batch);
    let started = Instant::now();
    let consumers: Vec<_> = (0..args.consumers)
        .map(|c| {
            tokio::spawn(actors::offset_consumer(
                args.clone(),
                args.stream.clone(),
                c % args.producers,
                c,
                per_partition,
            ))
        })
        .collect();
    let consumed = join("consume", started, consumers).await?;
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

async fn join(
    name: &str,
    started: Instant,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<Actor>>>,
) -> anyhow::Result<Phase> {
    let mut parts = Vec::new();
    for task in tasks {
        parts.push(task.await??);
    }
    merge(name, started.elapsed(), parts)
}
