//! Partitions: add to and remove from the end of a topic; delete a
//! partition's oldest segments.

use super::{Context, decode};
use crate::auth::Action;
use crate::error::Result;
use iggy_binary_protocol::requests::partitions::{
    CreatePartitionsRequest, DeletePartitionsRequest,
};
use iggy_binary_protocol::requests::segments::DeleteSegmentsRequest;

pub fn create_partitions(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let request: CreatePartitionsRequest = decode(body)?;
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::ManageTopic)?;
    ctx.broker.create_partitions(
        &request.stream_id,
        &request.topic_id,
        request.partitions_count,
    )
}

pub fn delete_partitions(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let request: DeletePartitionsRequest = decode(body)?;
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::ManageTopic)?;
    ctx.broker.delete_partitions(
        &request.stream_id,
        &request.topic_id,
        request.partitions_count,
    )
}

/// Delete the oldest sealed segments of one partition (never the active one).
pub fn delete_segments(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let request: DeleteSegmentsRequest = decode(body)?;
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::ManageTopic)?;
    let (_, partition) =
        ctx.broker
            .partition(&request.stream_id, &request.topic_id, request.partition_id)?;
    let mut log = partition.log.lock().expect("log lock");
    log.delete_oldest_segments(request.segments_count as usize)?;
    Ok(())
}
