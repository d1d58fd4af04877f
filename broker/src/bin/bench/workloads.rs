//! The workloads of upstream Iggy's `iggy-bench`, in the same shapes, over
//! the 0.11 SDK (or, `--sdk 0.10`, the 0.10 SDK's legacy framing):
//!
//! | workload | streams | partitions per topic | who |
//! |---|---|---|---|
//! | pinned producer | `--streams` (default: one per producer) | 1 | producer *i* sends to stream *i mod streams* |
//! | pinned consumer | same | 1 | consumer *i* reads stream *i mod streams* from offset 0 (seeded first, not measured) |
//! | pinned producer and consumer | same | 1 | both of the above at once, consumers following the producers |
//! | balanced producer | `--streams` (default 1) | `--partitions` | producer *i* sends to stream *i mod streams*, partitions chosen by the broker (balanced) |
//! | balanced consumer group | same | `--partitions` | one group per stream; consumer *i* joins the group of stream *i mod streams* and polls `next` with auto-commit until the group has read the stream (seeded first) |
//! | end-to-end producing consumer | one per producer | 1 | each client sends a batch, reads it back, repeats; bytes counted both ways, as upstream does |
//!
//! Each workload runs on fresh streams named `<--stream>-<n>`, deleted at
//! the end.

use crate::actors::{self, TOPIC, Target};
use crate::report::{Actor, Phase, merge};
use crate::{Args, Workload, connect};
use iggy::prelude::*;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

/// Run `workload` and return its measured phases.
pub async fn run(args: &Arc<Args>, workload: Workload) -> anyhow::Result<Vec<Phase>> {
    let admin = connect(args).await?;

    let pinned_streams = args.streams.unwrap_or(args.producers.max(args.consumers));
    let balanced_streams = args.streams.unwrap_or(1);
    let phases = match workload {
        Workload::PinnedProducer => {
            let streams = Streams::create(&admin, args, pinned_streams, 1).await?;
            let phase = producers(args, &streams, "pinned producer", PINNED).await?;
            streams.delete(&admin, args).await?;
            vec![phase]
        }
        Workload::PinnedConsumer => {
            let streams = Streams::create(&admin, args, pinned_streams, 1).await?;
            let seed = producers(args, &streams, "(seed: pinned producer)", PINNED).await?;
            let phase = pinned_consumers(args, &streams, "pinned consumer").await?;
            streams.delete(&admin, args).await?;
            vec![seed, phase]
        }
        Workload::PinnedProducerAndConsumer => {
            let streams = Streams::create(&admin, args, pinned_streams, 1).await?;
            let (produced, consumed) = tokio::try_join!(
                producers(args, &streams, "pinned producer (with consumers)", PINNED),
                pinned_consumers(args, &streams, "pinned consumer (with producers)"),
            )?;
            streams.delete(&admin, args).await?;
            let aggregate = Phase {
                name: "pinned producer and consumer (sum)".into(),
                bytes: produced.bytes + consumed.bytes,
                messages: produced.messages + consumed.messages,
                elapsed: produced.elapsed.max(consumed.elapsed),
                latency: None,
            };
            vec![produced, consumed, aggregate]
        }
        Workload::BalancedProducer => {
            let streams = Streams::create(&admin, args, balanced_streams, args.partitions).await?;
            let phase = producers(args, &streams, "balanced producer", Target::Balanced).await?;
            streams.delete(&admin, args).await?;
            vec![phase]
        }
        Workload::BalancedConsumerGroup => {
            let streams = Streams::create(&admin, args, balanced_streams, args.partitions).await?;
            let seed = producers(
                args,
                &streams,
                "(seed: balanced producer)",
                Target::Balanced,
            )
            .await?;
            let group = format!("{}-group", args.stream);
            let mut left = Vec::new();
            for (s, name) in streams.names.iter().enumerate() {
                let (stream, topic) = (Identifier::named(name)?, Identifier::named(TOPIC)?);
                admin.create_consumer_group(&stream, &topic, &group).await?;
                let sent = streams.messages_sent_to(s as u32, args);
                left.push(Arc::new(AtomicU64::new(sent)));
            }
            let phase = measure("balanced consumer group", args.consumers, |i| {
                let s = i as usize % streams.len();
                actors::group_consumer(
                    args.clone(),
                    streams.names[s].clone(),
                    group.clone(),
                    left[s].clone(),
                )
            })
            .await?;
            streams.delete(&admin, args).await?;
            vec![seed, phase]
        }
        Workload::EndToEndProducingConsumer => {
            let streams = Streams::create(&admin, args, args.producers, 1).await?;
            let phase = measure(
                "end-to-end producing consumer (both ways)",
                args.producers,
                |i| actors::producing_consumer(args.clone(), streams.names[i as usize].clone(), i),
            )
            .await?;
            streams.delete(&admin, args).await?;
            vec![phase]
        }
        Workload::Classic | Workload::All | Workload::SendLatency => {
            anyhow::bail!("{workload:?} is not a single workload")
        }
    };
    Ok(phases)
}

/// Every producer sends to its stream: to partition 0 when pinned, to the
/// partition the broker picks when balanced.
async fn producers(
    args: &Arc<Args>,
    streams: &Streams,
    name: &str,
    target: Target,
) -> anyhow::Result<Phase> {
    measure(name, args.producers, |i| {
        actors::producer(args.clone(), streams.of(i).to_string(), target)
    })
    .await
}

/// Pinned producers send to partition 0 of their stream.
const PINNED: Target = Target::Partition(0);

async fn pinned_consumers(
    args: &Arc<Args>,
    streams: &Streams,
    name: &str,
) -> anyhow::Result<Phase> {
    measure(name, args.consumers, |i| {
        let expected = streams.messages_sent_to(i, args);
        actors::offset_consumer(args.clone(), streams.of(i).to_string(), 0, i, expected)
    })
    .await
}

/// Start `count` actors at once and time them from the first start to the
/// last finish.
async fn measure<F, Fut>(name: &str, count: u32, actor: F) -> anyhow::Result<Phase>
where
    F: Fn(u32) -> Fut,
    Fut: Future<Output = anyhow::Result<Actor>> + Send + 'static,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..count).map(|i| tokio::spawn(actor(i))).collect();
    let mut parts = Vec::new();
    for task in tasks {
        parts.push(task.await??);
    }
    merge(name, started.elapsed(), parts)
}

/// The fresh streams of one workload, each with topic `bench`.
struct Streams {
    names: Vec<String>,
}

impl Streams {
    async fn create(
        admin: &IggyClient,
        args: &Args,
        count: u32,
        partitions: u32,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            count > 0 && partitions > 0,
            "need at least one stream and partition"
        );
        let names: Vec<String> = (1..=count)
            .map(|n| format!("{}-{n}", args.stream))
            .collect();
        for name in &names {
            let id = Identifier::named(name)?;
            if admin.get_stream(&id).await?.is_some() {
                admin.delete_stream(&id).await?;
            }
            admin.create_stream(name).await?;
            admin
                .create_topic(
                    &id,
                    TOPIC,
                    &TopicCreateOptions {
                        partitions_count: Some(partitions),
                        ..Default::default()
                    },
                )
                .await?;
        }
        Ok(Streams { names })
    }

    fn len(&self) -> usize {
        self.names.len()
    }

    /// How many messages the producers send to the stream of actor `i`.
    fn messages_sent_to(&self, i: u32, args: &Args) -> u64 {
        let stream = i as usize % self.len();
        let senders = (0..args.producers).filter(|p| *p as usize % self.len() == stream);
        senders.count() as u64 * u64::from(args.batches) * u64::from(args.messages_per_batch)
    }

    /// The stream of actor `i`.
    fn of(&self, i: u32) -> &str {
        &self.names[i as usize % self.names.len()]
    }

    /// Delete the streams, unless `--keep-data` asks to leave them.
    async fn delete(self, admin: &IggyClient, args: &Args) -> anyhow::Result<()> {
        if args.keep_data {
            return Ok(());
        }
        for name in &self.names {
            admin.delete_stream(&Identifier::named(name)?).await?;
        }
        Ok(())
    }
}
