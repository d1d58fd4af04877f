//! `iggy-soak`: a long steady run against a broker, watching the broker
//! process for leaks.
//!
//! Producers send at a fixed rate, a consumer group consumes with
//! auto-commit, one member leaves and a new one joins every
//! `--churn-seconds` (and a short-lived client connects, logs in and goes),
//! while the broker's retention deletes old segments. Every `--sample-seconds`
//! it prints the broker's resident memory and open files (from
//! `/proc/<pid>`), the sends and their latency in that period, and what was
//! consumed. At the end it checks that memory and open files stayed flat
//! after the warm-up (the first fifth of the run) and that no request
//! failed; it exits 1 otherwise. `scripts/soak.sh` starts a broker for it.

use clap::Parser;
use futures::StreamExt;
use hdrhistogram::Histogram;
use iggy::prelude::*;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser, Debug, Clone)]
#[command(name = "iggy-soak", about = "Steady load with leak checks")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:8090")]
    address: String,
    /// The broker's process id (its memory and files are sampled).
    #[arg(long)]
    pid: u32,
    #[arg(long, default_value_t = 3600)]
    seconds: u64,
    #[arg(long, default_value_t = 60)]
    sample_seconds: u64,
    #[arg(long, default_value_t = 2)]
    producers: u32,
    /// Messages per second per producer (sent in batches of 10).
    #[arg(long, default_value_t = 500)]
    rate: u32,
    #[arg(long, default_value_t = 256)]
    message_size: usize,
    #[arg(long, default_value_t = 3)]
    group_members: usize,
    #[arg(long, default_value_t = 20)]
    churn_seconds: u64,
    /// Messages expire after this long (the broker's retention removes them).
    #[arg(long, default_value_t = 120)]
    expiry_seconds: u64,
}

const STREAM: &str = "soak";
const TOPIC: &str = "events";
const PARTITIONS: u32 = 4;

#[derive(Default)]
struct Totals {
    sent: AtomicU64,
    consumed: AtomicU64,
    errors: AtomicU64,
    rejoins: AtomicU64,
}

struct Sample {
    rss_kib: u64,
    fds: u64,
}

fn sample_process(pid: u32) -> std::io::Result<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64;
    Ok(Sample { rss_kib, fds })
}

async fn connect(args: &Args) -> Result<IggyClient, IggyError> {
    let client = IggyClient::from_connection_string(&format!("iggy://iggy:iggy@{}", args.address))?;
    client.connect().await?;
    Ok(client)
}

async fn produce(
    args: Args,
    producer: u32,
    totals: Arc<Totals>,
    latency: Arc<Mutex<Histogram<u64>>>,
    stop: Arc<AtomicBool>,
) -> Result<(), IggyError> {
    let client = connect(&args).await?;
    let payload = bytes::Bytes::from(vec![b'x'; args.message_size]);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(10.0 / f64::from(args.rate)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next = u128::from(producer) << 64;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let mut batch: Vec<IggyMessage> = (0..10)
            .map(|i| {
                IggyMessage::builder()
                    .id(next + i + 1)
                    .payload(payload.clone())
                    .build()
                    .expect("valid message")
            })
            .collect();
        let started = Instant::now();
        let sent = client
            .send_messages(
                &Identifier::named(STREAM)?,
                &Identifier::named(TOPIC)?,
                &Partitioning::balanced(),
                &mut batch,
            )
            .await;
        match sent {
            Ok(_) => {
                let micros = started.elapsed().as_micros() as u64;
                let _ = latency
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .record(micros.max(1));
                totals.sent.fetch_add(10, Ordering::Relaxed);
                next += 10;
            }
            Err(e) => {
                eprintln!("send failed: {e}");
                totals.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

/// One group member until `leave` fires; every message id it gets goes
/// into `seen`.
async fn member(
    args: Args,
    totals: Arc<Totals>,
    seen: Arc<Mutex<HashSet<u128>>>,
    leave: tokio::sync::oneshot::Receiver<()>,
) -> Result<(), IggyError> {
    let client = connect(&args).await?;
    let mut consumer = client
        .consumer_group("soakers", STREAM, TOPIC)?
        .auto_commit(AutoCommit::When(AutoCommitWhen::PollingMessages))
        .create_consumer_group_if_not_exists()
        .auto_join_consumer_group()
        .polling_strategy(PollingStrategy::next())
        .batch_length(100)
        .poll_interval(IggyDuration::from(20_000))
        .build();
    consumer.init().await?;
    tokio::pin!(leave);
    loop {
        tokio::select! {
            _ = &mut leave => break,
            message = consumer.next() => match message {
                Some(Ok(message)) => {
                    totals.consumed.fetch_add(1, Ordering::Relaxed);
                    seen.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(message.message.header.id);
                }
                Some(Err(e)) => {
                    eprintln!("consume failed: {e}");
                    totals.errors.fetch_add(1, Ordering::Relaxed);
                }
                None => break,
            },
        }
    }
    drop(consumer);
    client.disconnect().await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let admin = connect(&args).await?;
    let _ = admin.delete_stream(&Identifier::named(STREAM)?).await;
    admin.create_stream(STREAM).await?;
    admin
        .create_topic(
            &Identifier::named(STREAM)?,
            TOPIC,
            &TopicCreateOptions {
                partitions_count: Some(PARTITIONS),
                message_expiry: Some(IggyExpiry::ExpireDuration(IggyDuration::from(
                    args.expiry_seconds * 1_000_000,
                ))),
                ..Default::default()
            },
        )
        .await?;

    let totals = Arc::new(Totals::default());
    let latency = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut producers = Vec::new();
    for producer in 0..args.producers {
        producers.push(tokio::spawn(produce(
            args.clone(),
            producer,
            totals.clone(),
            latency.clone(),
            stop.clone(),
        )));
    }
    let join = |args: &Args| {
        let (leave, left) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(member(args.clone(), totals.clone(), seen.clone(), left));
        (leave, task)
    };
    let mut members: std::collections::VecDeque<_> =
        (0..args.group_members).map(|_| join(&args)).collect();

    println!("# iggy-soak: {args:?}");
    println!(
        "{:>6} {:>8} {:>5} {:>9} {:>9} {:>9} {:>10} {:>7} {:>7}",
        "second", "rss_mib", "fds", "sent", "p50_ms", "p99_ms", "consumed", "errors", "rejoins"
    );
    let start = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut churn = tokio::time::interval(Duration::from_secs(args.churn_seconds));
    churn.tick().await;
    let mut report = tokio::time::interval(Duration::from_secs(args.sample_seconds));
    report.tick().await;
    while start.elapsed() < Duration::from_secs(args.seconds) {
        tokio::select! {
            _ = churn.tick() => {
                // The oldest member leaves, a new one joins, and a client
                // comes and goes.
                if let Some((leave, task)) = members.pop_front() {
                    let _ = leave.send(());
                    if let Ok(Err(e)) = task.await {
                        eprintln!("member failed: {e}");
                        totals.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                members.push_back(join(&args));
                totals.rejoins.fetch_add(1, Ordering::Relaxed);
                match connect(&args).await {
                    Ok(client) => {
                        let _ = client.ping().await;
                        let _ = client.disconnect().await;
                    }
                    Err(_) => {
                        totals.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            _ = report.tick() => {
                let sample = sample_process(args.pid)?;
                let (p50, p99) = {
                    let mut h = latency.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    let q = (h.value_at_quantile(0.5), h.value_at_quantile(0.99));
                    h.reset();
                    q
                };
                println!(
                    "{:>6} {:>8.1} {:>5} {:>9} {:>9.2} {:>9.2} {:>10} {:>7} {:>7}",
                    start.elapsed().as_secs(),
                    sample.rss_kib as f64 / 1024.0,
                    sample.fds,
                    totals.sent.load(Ordering::Relaxed),
                    p50 as f64 / 1000.0,
                    p99 as f64 / 1000.0,
                    totals.consumed.load(Ordering::Relaxed),
                    totals.errors.load(Ordering::Relaxed),
                    totals.rejoins.load(Ordering::Relaxed),
                );
                samples.push(sample);
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for producer in producers {
        producer.await??;
    }
    for (leave, task) in members {
        let _ = leave.send(());
        let _ = task.await;
    }
    verdict(&samples, args.sample_seconds, &totals, &seen)
}

/// Flat after the warm-up: memory within 20 % + 16 MiB of the sample at a
/// fifth of the run (judged on runs of 10 minutes or more: the allocator's
/// arenas and the metadata log's kept entries take a few minutes to reach
/// their size), open files within 16 of the most seen in the first half;
/// no request failed.
fn verdict(
    samples: &[Sample],
    sample_seconds: u64,
    totals: &Totals,
    seen: &Mutex<HashSet<u128>>,
) -> anyhow::Result<()> {
    anyhow::ensure!(samples.len() >= 5, "too short a run to judge");
    let base = &samples[samples.len() / 5];
    let last = samples.last().expect("samples");
    let fds_first_half = samples[..samples.len() / 2]
        .iter()
        .map(|s| s.fds)
        .max()
        .unwrap_or(0);
    let rss_limit = base.rss_kib + base.rss_kib / 5 + 16 * 1024;
    let sent = totals.sent.load(Ordering::Relaxed);
    let unique = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .len();
    let errors = totals.errors.load(Ordering::Relaxed);
    println!(
        "# rss {:.1} MiB at warm-up, {:.1} MiB at the end (limit {:.1}); fds {} at warm-up, {} at the end, {} most in the first half; sent {sent}, distinct consumed {unique}, errors {errors}",
        base.rss_kib as f64 / 1024.0,
        last.rss_kib as f64 / 1024.0,
        rss_limit as f64 / 1024.0,
        base.fds,
        last.fds,
        fds_first_half,
    );
    let long_enough = samples.len() as u64 * sample_seconds >= 600;
    anyhow::ensure!(
        !long_enough || last.rss_kib <= rss_limit,
        "resident memory grew"
    );
    anyhow::ensure!(last.fds <= fds_first_half + 16, "open files grew");
    anyhow::ensure!(errors == 0, "{errors} requests failed");
    if long_enough {
        println!("# flat: no growth in memory or open files, no failed request");
    } else {
        println!("# no growth in open files, no failed request (too short to judge memory)");
    }
    Ok(())
}
