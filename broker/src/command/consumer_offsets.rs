//! Consumer offsets: get, store, delete.

use super::messages::consumer_key;
use super::{Context, decode};
use crate::error::{Error, Result};
use bytes::BytesMut;
use iggy_binary_protocol::WireEncode;
use iggy_binary_protocol::requests::consumer_offsets::{
    DeleteConsumerOffsetRequest, GetConsumerOffsetRequest, StoreConsumerOffsetRequest,
};
use iggy_binary_protocol::responses::consumer_offsets::ConsumerOffsetResponse;

pub fn get_consumer_offset(ctx: &mut Context<'_>, body: &[u8], out: &mut BytesMut) -> Result<()> {
    let request: GetConsumerOffsetRequest = decode(body)?;
    let partition_id = request.partition_id.unwrap_or(0);
    let (_, partition) =
        ctx.broker
            .partition(&request.stream_id, &request.topic_id, partition_id)?;
    // Absent: an empty OK body, which the SDK reads as `None`.
    let key = consumer_key(
        ctx,
        &request.stream_id,
        &request.topic_id,
        &request.consumer,
    )?;
    if let Some(stored_offset) = partition.stored_offset(&key) {
        let current_offset = partition
            .log
            .lock()
            .expect("log lock")
            .next_offset()
            .saturating_sub(1);
        ConsumerOffsetResponse {
            partition_id,
            current_offset,
            stored_offset,
        }
        .encode(out);
    }
    Ok(())
}

pub fn store_consumer_offset(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let request: StoreConsumerOffsetRequest = decode(body)?;
    let partition_id = request.partition_id.unwrap_or(0);
    let (_, partition) =
        ctx.broker
            .partition(&request.stream_id, &request.topic_id, partition_id)?;
    let next = partition.log.lock().expect("log lock").next_offset();
    if request.offset >= next {
        return Err(Error::InvalidOffset(request.offset));
    }
    let key = consumer_key(
        ctx,
        &request.stream_id,
        &request.topic_id,
        &request.consumer,
    )?;
    partition.store_offset(key, request.offset)?;
    Ok(())
}

pub fn delete_consumer_offset(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let request: DeleteConsumerOffsetRequest = decode(body)?;
    let partition_id = request.partition_id.unwrap_or(0);
    let (_, partition) =
        ctx.broker
            .partition(&request.stream_id, &request.topic_id, partition_id)?;
    let key = consumer_key(
        ctx,
        &request.stream_id,
        &request.topic_id,
        &request.consumer,
    )?;
    if !partition.delete_offset(&key)? {
        return Err(Error::ConsumerOffsetNotFound(partition_id));
    }
    Ok(())
}
