//! The clients a workload is made of: each opens its own connection (as
//! separate applications would) and reports what it did.

use crate::report::{Actor, record};
use crate::{Args, connect};
use iggy::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The topic every workload writes to, in each of its streams.
pub const TOPIC: &str = "bench";

/// A poll that found nothing waits this long before asking again (only
/// when consumers run ahead of producers).
const EMPTY_POLL_PAUSE: Duration = Duration::from_millis(1);

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
    partitioning: Partitioning,
) -> anyhow::Result<Actor> {
    let client = connect(&args).await?;
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
