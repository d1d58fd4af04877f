//! The clients a workload is made of: each opens its own connection (as
//! separate applications would) and reports what it did.
//!
//! They are written once ([`actors!`]) and expanded for each SDK
//! generation, whose client APIs are the same for what they do: `sdk011`
//! over the 0.11 SDK, and with the `legacy-bench` feature `sdk010` over the
//! 0.10 SDK, which speaks the legacy framing upstream's own benchmark uses
//! (served by the broker's 0.10 adapter). `--sdk` picks one; the
//! functions at the bottom dispatch.

use crate::report::{Actor, record};
use crate::{Args, Sdk};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// The topic every workload writes to, in each of its streams.
pub const TOPIC: &str = "bench";

/// A poll that found nothing waits this long before asking again (only
/// when consumers run ahead of producers).
const EMPTY_POLL_PAUSE: Duration = Duration::from_millis(1);

/// Where a producer sends.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// One partition, by id (pinned).
    Partition(u32),
    /// The partition the client's balanced partitioning picks.
    Balanced,
}

/// The actors, over whichever SDK's `prelude` is in scope where expanded.
macro_rules! actors {
    () => {
        // Named, not globbed: explicit names win over the SDK prelude's
        // (which has an `Args` of its own).
        use super::{Actor, Args, EMPTY_POLL_PAUSE, TOPIC, Target, record};
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::time::Instant;

        /// A logged-in client with the run's connection settings.
        async fn connect(args: &Args) -> anyhow::Result<IggyClient> {
            let client = IggyClient::from_connection_string(&crate::connection_string(
                args,
                !args.sdk_defaults,
            )?)?;
            client.connect().await?;
            if args.transport == "http" {
                // The HTTP client logs in on request, not on connect.
                client.login_user(&args.username, &args.password).await?;
            }
            Ok(client)
        }

        fn ids(stream: &str) -> anyhow::Result<(Identifier, Identifier)> {
            Ok((Identifier::named(stream)?, Identifier::named(TOPIC)?))
        }

        /// One batch of `messages_per_batch` messages of `message_size` bytes,
        /// built once and sent again and again.
        fn batch(args: &Args) -> anyhow::Result<Vec<IggyMessage>> {
            let payload = bytes::Bytes::from(vec![b'x'; args.message_size]);
            Ok((0..args.messages_per_batch)
                .map(|_| IggyMessage::builder().payload(payload.clone()).build())
                .collect::<Result<_, _>>()?)
        }

        fn payload_bytes(polled: &PolledMessages) -> u64 {
            polled.messages.iter().map(|m| m.payload.len() as u64).sum()
        }

        /// Send `args.batches` batches to `stream` with `partitioning`; latency per
        /// send (request to acknowledgement).
        pub async fn producer(
            args: Arc<Args>,
            stream: String,
            target: Target,
        ) -> anyhow::Result<Actor> {
            let client = connect(&args).await?;
            let partitioning = match target {
                Target::Partition(id) => Partitioning::partition_id(id),
                Target::Balanced => Partitioning::balanced(),
            };
            let (stream, topic) = ids(&stream)?;
            let mut messages = batch(&args)?;
            let mut actor = Actor::new();
            for _ in 0..args.batches {
                let sent_at = Instant::now();
                client
                    .send_messages(&stream, &topic, &partitioning, &mut messages)
                    .await?;
                record(&mut actor.latency, sent_at)?;
                actor.messages += u64::from(args.messages_per_batch);
                actor.bytes += (args.messages_per_batch as usize * args.message_size) as u64;
            }
            Ok(actor)
        }

        /// Read `expected` messages of one partition from offset 0 with the
        /// consumer id `consumer`; latency per poll that returned messages.
        pub async fn offset_consumer(
            args: Arc<Args>,
            stream: String,
            partition: u32,
            consumer: u32,
            expected: u64,
        ) -> anyhow::Result<Actor> {
            let client = connect(&args).await?;
            let (stream, topic) = ids(&stream)?;
            let who = Consumer::new(Identifier::numeric(consumer + 1)?);
            let mut actor = Actor::new();
            while actor.messages < expected {
                let polled_at = Instant::now();
                let polled = client
                    .poll_messages(
                        &stream,
                        &topic,
                        Some(partition),
                        &who,
                        &PollingStrategy::offset(actor.messages),
                        args.messages_per_batch,
                        args.auto_commit,
                    )
                    .await?;
                if polled.messages.is_empty() {
                    tokio::time::sleep(EMPTY_POLL_PAUSE).await;
                    continue;
                }
                record(&mut actor.latency, polled_at)?;
                actor.messages += polled.messages.len() as u64;
                actor.bytes += payload_bytes(&polled);
            }
            Ok(actor)
        }

        /// A member of consumer group `group`: poll `next` with auto-commit (what
        /// the SDK's high-level consumer does) until the group as a whole has read
        /// what `remaining` says is left.
        pub async fn group_consumer(
            args: Arc<Args>,
            stream: String,
            group: String,
            remaining: Arc<AtomicU64>,
        ) -> anyhow::Result<Actor> {
            let client = connect(&args).await?;
            let (stream, topic) = ids(&stream)?;
            let group = Identifier::named(&group)?;
            client.join_consumer_group(&stream, &topic, &group).await?;
            let who = Consumer::group(group.clone());
            let mut actor = Actor::new();
            while remaining.load(Ordering::Acquire) > 0 {
                let polled_at = Instant::now();
                let polled = client
                    .poll_messages(
                        &stream,
                        &topic,
                        None,
                        &who,
                        &PollingStrategy::next(),
                        args.messages_per_batch,
                        true,
                    )
                    .await?;
                if polled.messages.is_empty() {
                    tokio::time::sleep(EMPTY_POLL_PAUSE).await;
                    continue;
                }
                record(&mut actor.latency, polled_at)?;
                let count = polled.messages.len() as u64;
                let before = remaining
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                        Some(left.saturating_sub(count))
                    })
                    .expect("the update always succeeds");
                anyhow::ensure!(
                    before >= count,
                    "the group was given more messages than were sent (a message delivered twice)"
                );
                actor.messages += count;
                actor.bytes += payload_bytes(&polled);
            }
            client.leave_consumer_group(&stream, &topic, &group).await?;
            Ok(actor)
        }

        /// Send a batch to partition 0 of `stream`, read it back, repeat: latency
        /// per round (send, then polls until the whole batch came back). Bytes and
        /// messages count both ways, sent and received, as upstream's bench counts
        /// them for this workload (its latency is of the polls alone).
        pub async fn producing_consumer(
            args: Arc<Args>,
            stream: String,
            consumer: u32,
        ) -> anyhow::Result<Actor> {
            let client = connect(&args).await?;
            let (stream, topic) = ids(&stream)?;
            let who = Consumer::new(Identifier::numeric(consumer + 1)?);
            let mut messages = batch(&args)?;
            let partitioning = Partitioning::partition_id(0);
            let mut actor = Actor::new();
            let mut offset = 0u64;
            for _ in 0..args.batches {
                let round = Instant::now();
                client
                    .send_messages(&stream, &topic, &partitioning, &mut messages)
                    .await?;
                let end = offset + u64::from(args.messages_per_batch);
                while offset < end {
                    let polled = client
                        .poll_messages(
                            &stream,
                            &topic,
                            Some(0),
                            &who,
                            &PollingStrategy::offset(offset),
                            args.messages_per_batch,
                            false,
                        )
                        .await?;
                    anyhow::ensure!(
                        !polled.messages.is_empty(),
                        "an acknowledged batch could not be read back at offset {offset}"
                    );
                    offset += polled.messages.len() as u64;
                    actor.bytes += payload_bytes(&polled);
                }
                record(&mut actor.latency, round)?;
                actor.messages += 2 * u64::from(args.messages_per_batch);
                actor.bytes += (args.messages_per_batch as usize * args.message_size) as u64;
            }
            Ok(actor)
        }
    };
}

pub mod sdk011 {
    use iggy::prelude::*;
    actors!();
}

#[cfg(feature = "legacy-bench")]
pub mod sdk010 {
    use iggy_010::prelude::*;
    actors!();
}

/// Call actor `$name` of the SDK `$args.sdk` names.
macro_rules! by_sdk {
    ($args:ident, $name:ident($($arg:expr),*)) => {
        match $args.sdk {
            Sdk::V011 => sdk011::$name($args, $($arg),*).await,
            #[cfg(feature = "legacy-bench")]
            Sdk::V010 => sdk010::$name($args, $($arg),*).await,
            #[cfg(not(feature = "legacy-bench"))]
            Sdk::V010 => anyhow::bail!(crate::NO_LEGACY_SDK),
        }
    };
}

/// Send `args.batches` batches to `stream`; latency per send.
pub async fn producer(args: Arc<Args>, stream: String, target: Target) -> anyhow::Result<Actor> {
    by_sdk!(args, producer(stream, target))
}

/// Read `expected` messages of `partition` from offset 0; latency per poll.
pub async fn offset_consumer(
    args: Arc<Args>,
    stream: String,
    partition: u32,
    consumer: u32,
    expected: u64,
) -> anyhow::Result<Actor> {
    by_sdk!(args, offset_consumer(stream, partition, consumer, expected))
}

/// A member of consumer group `group` polling `next` with auto-commit.
pub async fn group_consumer(
    args: Arc<Args>,
    stream: String,
    group: String,
    remaining: Arc<AtomicU64>,
) -> anyhow::Result<Actor> {
    by_sdk!(args, group_consumer(stream, group, remaining))
}

/// Send a batch, read it back, repeat.
pub async fn producing_consumer(
    args: Arc<Args>,
    stream: String,
    consumer: u32,
) -> anyhow::Result<Actor> {
    by_sdk!(args, producing_consumer(stream, consumer))
}
