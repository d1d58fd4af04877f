//! Partitions: add to and remove from the end of a topic.

use super::{Context, decode};
use crate::error::Result;
use iggy_binary_protocol::requests::partitions::{
    CreatePartitionsRequest, DeletePartitionsRequest,
};

pub fn create_partitions(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let request: CreatePartitionsRequest = decode(body)?;
    ctx.broker.create_partitions(
        &request.stream_id,
        &request.topic_id,
        request.partitions_count,
    )
}

pub fn delete_partitions(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let request: DeletePartitionsRequest = decode(body)?;
    ctx.broker.delete_partitions(
        &request.stream_id,
        &request.topic_id,
        request.partitions_count,
    )
}
