//! Consumer offsets: get, store, delete.

use super::messages::consumer_target;
use super::{Context, decode};
use crate::auth::Action;
use crate::error::{Error, Result};
use bytes::BytesMut;
use iggy_binary_protocol::WireEncode;
use iggy_binary_protocol::requests::consumer_offsets::{
    DeleteConsumerOffsetRequest, GetConsumerOffsetRequest, StoreConsumerOffsetRequest,
};
use iggy_binary_protocol::responses::consumer_offsets::ConsumerOffsetResponse;

pub fn get_consumer_offset(ctx: &mut Context<'_>, body: &[u8], out: &mut BytesMut) -> Result<()> {
    let request: GetConsumerOffsetRequest = decode(body)?;
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::PollMessages)?;
    let ((_, _, partition_id), partition, key) = consumer_target(
        ctx,
        &request.consumer,
        &request.stream_id,
        &request.topic_id,
        request.partition_id,
    )?;
    // Absent: an empty OK body, which the SDK reads as `None`.
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
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::PollMessages)?;
    let (_, partition, key) = consumer_target(
        ctx,
        &request.consumer,
        &request.stream_id,
        &request.topic_id,
        request.partition_id,
    )?;
    let next = partition.log.lock().expect("log lock").next_offset();
    if request.offset >= next {
        return Err(Error::InvalidOffset(request.offset));
    }
    partition.store_offset(key, request.offset)?;
    Ok(())
}

pub fn delete_consumer_offset(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let request: DeleteConsumerOffsetRequest = decode(body)?;
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::PollMessages)?;
    let ((_, _, partition_id), partition, key) = consumer_target(
        ctx,
        &request.consumer,
        &request.stream_id,
        &request.topic_id,
        request.partition_id,
    )?;
    if !partition.delete_offset(&key)? {
        return Err(Error::ConsumerOffsetNotFound(partition_id));
    }
    Ok(())
}
