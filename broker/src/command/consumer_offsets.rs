//! Consumer offsets: get, store, delete. Offsets are replicated metadata;
//! the requests are served by the partition's broker, which knows the
//! partition's end (a stored offset must lie below it) and the offsets of
//! auto-commit polls still committing behind their replies: a get reads
//! them, a store or delete lands after them.

use super::messages::{consumer_key, stored_offset};
use super::{Context, decode, forward};
use crate::auth::Action;
use crate::broker::PartitionHome;
use crate::error::{Error, Result};
use crate::metadata::{ConsumerKey, Ident, MetadataCommand};
use crate::partitions::Partition;
use bytes::{Bytes, BytesMut};
use iggy_binary_protocol::WireEncode;
use iggy_binary_protocol::WireIdentifier;
use iggy_binary_protocol::codes::{
    DELETE_CONSUMER_OFFSET_CODE, GET_CONSUMER_OFFSET_CODE, STORE_CONSUMER_OFFSET_CODE,
};
use iggy_binary_protocol::primitives::consumer::WireConsumer;
use iggy_binary_protocol::requests::consumer_offsets::{
    DeleteConsumerOffsetRequest, GetConsumerOffsetRequest, StoreConsumerOffsetRequest,
};
use iggy_binary_protocol::responses::consumer_offsets::ConsumerOffsetResponse;
use std::sync::Arc;

/// Who and which partition an offset request names.
type Addressed<'a> = (
    &'a WireConsumer,
    &'a WireIdentifier,
    &'a WireIdentifier,
    Option<u32>,
);

/// The local partition and the consumer an offset request is about, after
/// checking the caller may poll the topic; `None` when the request was
/// served by the partition's broker (its reply is then in `out`).
async fn target(
    ctx: &Context<'_>,
    code: u32,
    body: &[u8],
    (consumer, stream, topic, partition_id): Addressed<'_>,
    out: &mut BytesMut,
) -> Result<Option<(Arc<Partition>, ConsumerKey)>> {
    ctx.authorize_topic(stream, topic, Action::PollMessages)?;
    // Partition 0 when none is given, as upstream.
    let partition_id = partition_id.unwrap_or(0);
    let home = ctx
        .broker
        .locate(&Ident::from(stream), &Ident::from(topic), partition_id)
        .await?;
    match home {
        PartitionHome::Local(_, partition) => {
            let key = consumer_key(ctx, stream, topic, consumer)?;
            Ok(Some((partition, key)))
        }
        PartitionHome::Remote(_, leader) => {
            forward::to_broker(ctx, leader, code, Bytes::copy_from_slice(body), out).await?;
            Ok(None)
        }
    }
}

fn next_offset(partition: &Partition) -> u64 {
    partition.lock_log().next_offset()
}

/// The partition's commit lock, once the offsets of auto-commit polls
/// still committing there have landed: an explicit store or delete made
/// before would be overwritten by them.
async fn settled<'a>(
    ctx: &Context<'_>,
    partition: &'a Partition,
) -> tokio::sync::MutexGuard<'a, ()> {
    let commit = partition.commit_lock.lock().await;
    ctx.broker.offset_commits.settle(partition.key).await;
    commit
}

pub async fn get_consumer_offset(
    ctx: &mut Context<'_>,
    body: &[u8],
    out: &mut BytesMut,
) -> Result<()> {
    let r: GetConsumerOffsetRequest = decode(body)?;
    let code = GET_CONSUMER_OFFSET_CODE;
    let addressed = (&r.consumer, &r.stream_id, &r.topic_id, r.partition_id);
    let Some((partition, key)) = target(ctx, code, body, addressed, out).await? else {
        return Ok(());
    };
    // After the offset of an auto-commit poll answered before this request
    // (pending or stored: `stored_offset`).
    drop(partition.commit_lock.lock().await);
    // Absent: an empty OK body, which the SDK reads as `None`.
    if let Some(stored_offset) = stored_offset(ctx, partition.key, &key) {
        ConsumerOffsetResponse {
            partition_id: partition.id,
            current_offset: next_offset(&partition).saturating_sub(1),
            stored_offset,
        }
        .encode(out);
    }
    Ok(())
}

pub async fn store_consumer_offset(
    ctx: &mut Context<'_>,
    body: &[u8],
    out: &mut BytesMut,
) -> Result<()> {
    let r: StoreConsumerOffsetRequest = decode(body)?;
    let code = STORE_CONSUMER_OFFSET_CODE;
    let addressed = (&r.consumer, &r.stream_id, &r.topic_id, r.partition_id);
    let Some((partition, consumer)) = target(ctx, code, body, addressed, out).await? else {
        return Ok(());
    };
    if r.offset >= next_offset(&partition) {
        return Err(Error::InvalidOffset(r.offset));
    }
    let _commit = settled(ctx, &partition).await;
    ctx.write(MetadataCommand::StoreConsumerOffset {
        partition: partition.key,
        consumer,
        offset: r.offset,
    })
    .await
    .map(drop)
}

pub async fn delete_consumer_offset(
    ctx: &mut Context<'_>,
    body: &[u8],
    out: &mut BytesMut,
) -> Result<()> {
    let r: DeleteConsumerOffsetRequest = decode(body)?;
    let code = DELETE_CONSUMER_OFFSET_CODE;
    let addressed = (&r.consumer, &r.stream_id, &r.topic_id, r.partition_id);
    let Some((partition, consumer)) = target(ctx, code, body, addressed, out).await? else {
        return Ok(());
    };
    let _commit = settled(ctx, &partition).await;
    ctx.write(MetadataCommand::DeleteConsumerOffset {
        partition: partition.key,
        consumer,
    })
    .await
    .map(drop)
}
