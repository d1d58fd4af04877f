//! SendMessages and PollMessages: the hot path.
//!
//! A send validates the producer's batch where it lies in the request
//! buffer, stamps offset and time into it and writes those same bytes to the
//! partition log — no per-message decoding or copying. A poll reads stored
//! batch records from the log straight into the reply buffer. A partition
//! led by another broker is served there (`forward`).

use super::{Context, decode, forward};
use crate::auth::Action;
use crate::broker::{Broker, PartitionHome};
use crate::error::{Error, Result, SaveKind};
use crate::metadata::{ConsumerKey, GroupKey, Ident, PartitionKey};
use crate::partitions::{Partition, Synced};
use crate::replication;
use crate::storage::log::{Appended, PartitionLog};
use crate::storage::{FsyncPolicy, batch};
use bytes::{BufMut, Bytes, BytesMut};
use iggy_binary_protocol::batch::BatchIntegrity;
use iggy_binary_protocol::codes::SEND_MESSAGES_CODE;
use iggy_binary_protocol::primitives::consumer::{KIND_CONSUMER_GROUP, WireConsumer};
use iggy_binary_protocol::requests::messages::poll_messages::PollMessagesRequest;
use iggy_binary_protocol::requests::messages::send_messages::SendMessagesHeader;
use iggy_binary_protocol::responses::messages::send_messages::{
    SendMessagesConfirmationResponse, SendMessagesResponse,
};
use iggy_binary_protocol::{WireDecode, WireEncode, WireIdentifier, WirePartitioning};
use std::sync::Arc;

/// Whose offset a request is about. A group is resolved to its id, so the
/// name and the numeric id of a group share one offset.
pub fn consumer_key(
    ctx: &Context<'_>,
    stream: &WireIdentifier,
    topic: &WireIdentifier,
    consumer: &WireConsumer,
) -> Result<ConsumerKey> {
    if consumer.kind == KIND_CONSUMER_GROUP {
        let (stream, topic, group) = (
            Ident::from(stream),
            Ident::from(topic),
            Ident::from(&consumer.id),
        );
        let key = ctx
            .broker
            .metadata
            .read(|m| m.resolve_group(&stream, &topic, &group))?;
        Ok(ConsumerKey::Group(key.2))
    } else {
        Ok(ConsumerKey::Consumer(consumer.id.to_string()))
    }
}

/// The offset of `consumer` in partition `key`: the one an auto-commit
/// poll answered and is still committing behind, else the stored one.
pub fn stored_offset(ctx: &Context<'_>, key: PartitionKey, consumer: &ConsumerKey) -> Option<u64> {
    if let Some(pending) = ctx.broker.offset_commits.pending(key, consumer) {
        return Some(pending);
    }
    ctx.broker.metadata.read(|m| {
        m.partition(key)
            .and_then(|p| p.offsets.get(consumer).copied())
    })
}

/// A SendMessages body `[metadata length u32][metadata][batch record]`:
/// the decoded metadata and the (not yet validated) batch record.
pub fn split_send_body(body: &mut [u8]) -> Result<(SendMessagesHeader, &mut [u8])> {
    if body.len() < 4 {
        return Err(Error::InvalidFormat("send_messages body too short".into()));
    }
    let metadata_len = u32::from_le_bytes(body[0..4].try_into().expect("4 bytes")) as usize;
    let batch_start = 4usize
        .checked_add(metadata_len)
        .filter(|end| *end <= body.len())
        .ok_or_else(|| Error::InvalidFormat("metadata length exceeds the body".into()))?;
    let (header, consumed) = SendMessagesHeader::decode(&body[4..batch_start])?;
    if consumed != metadata_len {
        return Err(Error::InvalidFormat("metadata length mismatch".into()));
    }
    Ok((header, &mut body[batch_start..]))
}

/// Store a SendMessages body's batch and acknowledge it. `integrity` is
/// [`BatchIntegrity::Verify`] for whatever a client sent;
/// [`BatchIntegrity::LayoutOnly`] only for a batch this broker encoded a
/// moment ago (`super::send_encoded`: every 0.10 send, every REST send): its
/// checksums were just computed from the payloads, so hashing every byte
/// again would prove nothing. Layout and limits are checked either way.
pub async fn send_messages(
    ctx: &mut Context<'_>,
    body: &mut [u8],
    out: &mut BytesMut,
    integrity: BatchIntegrity,
) -> Result<()> {
    let (header, record) = split_send_body(body)?;
    ctx.authorize_topic(&header.stream_id, &header.topic_id, Action::SendMessages)?;
    batch::validate_incoming(record, header.messages_count, integrity)?;

    let broker = ctx.broker;
    let (stream, topic) = (
        Ident::from(&header.stream_id),
        Ident::from(&header.topic_id),
    );
    let partition_id = match &header.partitioning {
        WirePartitioning::PartitionId(id) => *id,
        partitioning => {
            let (ids, count) = broker
                .catching_up(|| {
                    broker.metadata.read(|m| {
                        let (s, t) = m.resolve_topic(&stream, &topic)?;
                        Ok(((s, t), m.streams[&s].topics[&t].partitions.len() as u32))
                    })
                })
                .await?;
            match partitioning {
                WirePartitioning::MessagesKey(key) => {
                    if count == 0 {
                        return Err(Error::NoPartitions);
                    }
                    // The same function the SDKs use client-side: xxh32(seed 0) mod n.
                    iggy_common::calculate_32(key) % count
                }
                _ => broker.next_balanced(ids, count)?,
            }
        }
    };
    let partition = match broker.locate(&stream, &topic, partition_id).await? {
        PartitionHome::Local(_, partition) => partition,
        PartitionHome::Remote(_, leader) => {
            // The partition is chosen here: name it, so the leader does not
            // choose again.
            let header = SendMessagesHeader {
                partitioning: WirePartitioning::PartitionId(partition_id),
                ..header
            };
            let mut forwarded = BytesMut::with_capacity(4 + 64 + record.len());
            forwarded.put_u32_le(header.encoded_size() as u32);
            header.encode(&mut forwarded);
            forwarded.extend_from_slice(record);
            return forward::to_broker(ctx, leader, SEND_MESSAGES_CODE, forwarded.freeze(), out)
                .await;
        }
    };
    let (stream_id, topic_id, _) = partition.key;
    let role = leading_role(broker, &partition)?;
    crate::cluster::uid::refuse_if_founded_apart(broker)?;
    broker
        .space
        .admit(SaveKind::Messages, record.len() as u64)?;
    let appended = store(
        broker,
        &partition,
        record,
        header.messages_count,
        role.is_none(),
    )
    .await?;
    let end = appended.end();
    match &role {
        Some(role) => {
            // Acknowledged once every in-sync replica has it.
            replication::leader::advance_committed(&partition, broker.node_id(), &role.in_sync);
            let deadline = std::time::Instant::now()
                + broker
                    .cluster
                    .as_ref()
                    .map_or(std::time::Duration::from_secs(5), |c| c.write_timeout);
            replication::leader::wait_committed(&partition, role.epoch, end, deadline).await?;
            // The in-sync set may have shrunk below the minimum while this
            // send waited: then fewer replicas than promised have it.
            let now = replication::role(broker, &partition);
            if now.is_none_or(|now| now.in_sync.len() < now.min_in_sync as usize) {
                return Err(Error::PartitionUnavailable(format!(
                    "partition {partition_id} fell below {} in-sync replicas before the send was acknowledged; it may or may not be kept",
                    role.min_in_sync
                )));
            }
        }
        None => partition.replica.commit_up_to(end),
    }
    let metrics = &broker.metrics;
    let (stream_name, topic_name) = broker.topic_names(stream_id, topic_id);
    let labels = [stream_name.as_str(), topic_name.as_str()];
    metrics
        .messages_in
        .with_label_values(&labels)
        .inc_by(u64::from(appended.count));
    metrics
        .bytes_in
        .with_label_values(&labels)
        .inc_by(record.len() as u64);
    SendMessagesResponse {
        confirmations: vec![SendMessagesConfirmationResponse {
            stream_id,
            topic_id,
            partition_id,
            base_offset: appended.base_offset,
        }],
    }
    .encode(out);
    Ok(())
}

/// Append a validated batch to this broker's copy of `partition` and,
/// under fsync `always`, make it durable (see `Partition::sync_up_to` for
/// `forget_on_failure`).
async fn store(
    broker: &Broker,
    partition: &Partition,
    record: &mut [u8],
    messages_count: u32,
    forget_on_failure: bool,
) -> Result<Appended> {
    let partition_id = partition.id;
    let timestamp = crate::broker::now_micros();
    // Writing a large batch into the page cache may block, and so does an
    // fsync: both run off the async workers, in one hand-over when this
    // send's fsync can start at once (a second hand-over per batch cost a
    // producer about 6 % of its rate under fsync `always`).
    let (appended, sync, synced) = tokio::task::block_in_place(|| -> Result<_> {
        let (appended, sync) = {
            let mut log = partition.lock_log();
            #[cfg(debug_assertions)]
            panic_if_asked(record);
            let appended = log
                .append(record, messages_count, partition_id, timestamp)
                .map_err(|e| broker.space.write_failed(SaveKind::Messages, e))?;
            let sync = log.config().fsync == FsyncPolicy::Always;
            // Under the log's lock, so the log end never goes back.
            if sync {
                partition.replica.set_log_end_unsynced(log.next_offset());
            } else {
                partition.replica.set_log_end(log.next_offset());
            }
            (appended, sync)
        };
        // Outside the log's lock, shared with the sends around it.
        let synced = sync
            .then(|| {
                partition.try_sync_up_to(appended.end(), appended.generation, forget_on_failure)
            })
            .flatten();
        Ok((appended, sync, synced))
    })?;
    if !sync {
        return Ok(appended);
    }
    let synced = match synced {
        Some(synced) => synced,
        // Another send's fsync is running: wait for the turn after it.
        None => {
            partition
                .sync_up_to(appended.end(), appended.generation, forget_on_failure)
                .await
        }
    }
    .map_err(|e| broker.space.write_failed(SaveKind::Messages, e))?;
    match synced {
        Synced::Now(took) => broker.metrics.fsync_duration.observe(took.as_secs_f64()),
        Synced::Covered => {}
        Synced::Cut => {
            return Err(Error::PartitionUnavailable(format!(
                "partition {partition_id} was cut back before the batch was durable; it is not kept"
            )));
        }
    }
    Ok(appended)
}

/// Debug builds only: a send whose batch holds the bytes of the
/// environment variable `IGGY_DEBUG_PANIC_ON_PAYLOAD` panics while holding
/// its partition's log lock — how `tests/bad_input.rs` shows that a
/// panicking request closes its connection and wedges nothing.
#[cfg(debug_assertions)]
fn panic_if_asked(record: &[u8]) {
    static MARKER: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();
    let marker = MARKER.get_or_init(|| {
        std::env::var_os("IGGY_DEBUG_PANIC_ON_PAYLOAD")
            .map(|v| v.into_encoded_bytes())
            .filter(|v| !v.is_empty())
    });
    if let Some(marker) = marker
        && record.windows(marker.len()).any(|w| w == marker.as_slice())
    {
        panic!("IGGY_DEBUG_PANIC_ON_PAYLOAD: a send carried the marker");
    }
}

/// Check that this broker may append to `partition` now. `Some(role)`
/// for a replicated partition (the send then waits for its in-sync
/// replicas), `None` for a partition with a single replica.
fn leading_role(
    broker: &crate::broker::Broker,
    partition: &Partition,
) -> Result<Option<replication::leader::Role>> {
    let role =
        replication::role(broker, partition).ok_or(Error::PartitionNotFound(partition.id))?;
    if role.replicas.len() <= 1 {
        return Ok(None);
    }
    if role.leader != Some(broker.node_id()) {
        return Err(Error::NotEnoughReplicas(format!(
            "partition {} is moving to another leader",
            partition.id
        )));
    }
    if !broker.is_ready() {
        return Err(Error::NotEnoughReplicas(
            "this broker is still joining the cluster".into(),
        ));
    }
    if role.in_sync.len() < role.min_in_sync as usize {
        return Err(Error::NotEnoughReplicas(format!(
            "partition {} has {} of {} replicas in sync; the topic needs {}",
            partition.id,
            role.in_sync.len(),
            role.replicas.len(),
            role.min_in_sync
        )));
    }
    replication::leader::take_up(partition, role.epoch)?;
    Ok(Some(role))
}

/// The partitions of the group a poll names that are assigned to this
/// connection's member (`ConsumerGroupMemberNotFound` if it is not one).
pub fn owned_partitions(
    ctx: &Context<'_>,
    request: &PollMessagesRequest,
) -> Result<(GroupKey, Vec<u32>)> {
    let (stream, topic, group) = (
        Ident::from(&request.stream_id),
        Ident::from(&request.topic_id),
        Ident::from(&request.consumer.id),
    );
    let member = ctx.member();
    ctx.broker.metadata.read(|m| {
        let key = m.resolve_group(&stream, &topic, &group)?;
        let partitions = m.streams[&key.0].topics[&key.1].partitions.len() as u32;
        let owned = m
            .group(key)
            .and_then(|g| g.partitions_of(member.client_id, partitions))
            .ok_or(Error::ConsumerGroupMemberNotFound)?;
        Ok((key, owned))
    })
}

/// A group member may only poll the partitions assigned to it; a member
/// with a stale assignment is told so and re-syncs.
fn ensure_owned(ctx: &Context<'_>, request: &PollMessagesRequest, partition_id: u32) -> Result<()> {
    let (_, owned) = owned_partitions(ctx, request)?;
    if owned.contains(&partition_id) {
        Ok(())
    } else {
        Err(Error::ConsumerGroupPartitionNotOwned(partition_id))
    }
}

const STRATEGY_OFFSET: u8 = 1;
const STRATEGY_TIMESTAMP: u8 = 2;
const STRATEGY_FIRST: u8 = 3;
const STRATEGY_LAST: u8 = 4;
const STRATEGY_NEXT: u8 = 5;
/// Size of the `[partition_id u32][current_offset u64][count u32]` prefix.
const POLL_PREFIX_BYTES: usize = 16;

/// PollMessages (100) and PollMessagesOnPrimary (104, the same request sent
/// by the 0.11 SDK to the partition's broker once it knows the cluster).
pub async fn poll_messages(
    ctx: &mut Context<'_>,
    code: u32,
    body: &[u8],
    out: &mut BytesMut,
) -> Result<()> {
    let request: PollMessagesRequest = decode(body)?;
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::PollMessages)?;
    let partition_id = request.partition_id.unwrap_or(0);
    let (stream, topic) = (
        Ident::from(&request.stream_id),
        Ident::from(&request.topic_id),
    );
    let partition = match ctx.broker.locate(&stream, &topic, partition_id).await? {
        PartitionHome::Local(_, partition) => partition,
        PartitionHome::Remote(_, leader) => {
            return forward::to_broker(ctx, leader, code, Bytes::copy_from_slice(body), out).await;
        }
    };
    let key = consumer_key(
        ctx,
        &request.stream_id,
        &request.topic_id,
        &request.consumer,
    )?;
    if let ConsumerKey::Group(_) = key {
        ensure_owned(ctx, &request, partition_id)?;
    }
    // Serialize committing polls of one partition (see `commit_lock`): one
    // reads the offset the poll answered before it stored.
    let _commit = if request.auto_commit || request.strategy.kind == STRATEGY_NEXT {
        Some(partition.commit_lock.lock().await)
    } else {
        None
    };
    let stored = stored_offset(ctx, partition.key, &key);
    let (start, count) = read_into(ctx, &partition, &request, stored, out)?;
    if request.auto_commit && count > 0 {
        // Answered now, committed behind (`broker::offset_commits`): the
        // reply does not wait for the metadata log's fsync.
        ctx.check_writable()?;
        let offset = start + u64::from(count) - 1;
        ctx.broker.offset_commits.store(partition.key, key, offset);
    }
    Ok(())
}

/// Read the messages `request` asks for into `out` (prefix, then batch
/// records); returns the first offset read and how many messages.
fn read_into(
    ctx: &Context<'_>,
    partition: &Arc<Partition>,
    request: &PollMessagesRequest,
    stored: Option<u64>,
    out: &mut BytesMut,
) -> Result<(u64, u32)> {
    let max_bytes = ctx.broker.effective.max_poll_bytes;
    let prefix_at = out.len();
    out.put_bytes(0, POLL_PREFIX_BYTES);
    // Where the records lie, found under the log's lock, then read without
    // it. Both steps run on this task when they need not wait — the lock
    // free, every byte in the page cache, as when consumers keep up with
    // producers — and off the async worker (`block_in_place`, a thread
    // hand-off) when they would wait for a producer or for the disk.
    let plan = |log: &PartitionLog| -> Result<_> {
        // Only committed messages are served.
        let next = log.next_offset().min(partition.replica.committed());
        let first = log.first_offset();
        let start = match request.strategy.kind {
            STRATEGY_OFFSET => Some(request.strategy.value),
            STRATEGY_TIMESTAMP => log.offset_at_timestamp(request.strategy.value),
            STRATEGY_FIRST => Some(first),
            STRATEGY_LAST => Some(next.saturating_sub(u64::from(request.count)).max(first)),
            STRATEGY_NEXT => Some(stored.map_or(first, |o| o + 1)),
            other => {
                return Err(Error::InvalidFormat(format!(
                    "unknown polling strategy {other}"
                )));
            }
        };
        let start = start.map_or(next, |start| start.max(first));
        // Bounded by the committed offset, so it reads without the lock.
        let planned = log.plan_read(start, request.count, max_bytes, next);
        Ok((next.saturating_sub(1), start, planned))
    };
    let (current_offset, start, planned) = match partition.try_lock_log() {
        Some(log) => plan(&log)?,
        None => tokio::task::block_in_place(|| plan(&partition.lock_log()))?,
    };
    let count = match planned.read_cached_appending(out)? {
        Some(count) => count,
        None => tokio::task::block_in_place(|| planned.read_appending(out))?,
    };
    let (stream_id, topic_id, partition_id) = partition.key;
    out[prefix_at..prefix_at + 4].copy_from_slice(&partition_id.to_le_bytes());
    out[prefix_at + 4..prefix_at + 12].copy_from_slice(&current_offset.to_le_bytes());
    out[prefix_at + 12..prefix_at + 16].copy_from_slice(&count.to_le_bytes());

    if count > 0 {
        let (stream_name, topic_name) = ctx.broker.topic_names(stream_id, topic_id);
        let labels = [stream_name.as_str(), topic_name.as_str()];
        let metrics = &ctx.broker.metrics;
        metrics
            .messages_out
            .with_label_values(&labels)
            .inc_by(u64::from(count));
        let bytes = out.len() - prefix_at - POLL_PREFIX_BYTES;
        metrics
            .bytes_out
            .with_label_values(&labels)
            .inc_by(bytes as u64);
    }
    Ok((start, count))
}
