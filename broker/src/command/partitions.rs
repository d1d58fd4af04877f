//! Partitions: add to and remove from the end of a topic; delete a
//! partition's oldest segments.

use super::{Context, decode};
use crate::auth::Action;
use crate::broker::{PartitionHome, now_micros};
use crate::error::Result;
use crate::metadata::{Ident, MetadataCommand};
use bytes::BytesMut;
use iggy_binary_protocol::requests::partitions::{
    CreatePartitionsRequest, DeletePartitionsRequest,
};
use iggy_binary_protocol::requests::segments::DeleteSegmentsRequest;

pub async fn create_partitions(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let request: CreatePartitionsRequest = decode(body)?;
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::ManageTopic)?;
    let command = MetadataCommand::CreatePartitions {
        stream: Ident::from(&request.stream_id),
        topic: Ident::from(&request.topic_id),
        count: request.partitions_count,
        created_at: now_micros(),
    };
    ctx.write(command).await.map(drop)
}

pub async fn delete_partitions(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let request: DeletePartitionsRequest = decode(body)?;
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::ManageTopic)?;
    let command = MetadataCommand::DeletePartitions {
        stream: Ident::from(&request.stream_id),
        topic: Ident::from(&request.topic_id),
        count: request.partitions_count,
    };
    ctx.write(command).await.map(drop)
}

/// Delete the oldest sealed segments of one partition (never the active one).
pub async fn delete_segments(ctx: &mut Context<'_>, body: &[u8], out: &mut BytesMut) -> Result<()> {
    let request: DeleteSegmentsRequest = decode(body)?;
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::ManageTopic)?;
    let home = ctx
        .broker
        .locate(
            &Ident::from(&request.stream_id),
            &Ident::from(&request.topic_id),
            request.partition_id,
        )
        .await?;
    match home {
        PartitionHome::Local(_, partition) => {
            let count = request.segments_count as usize;
            tokio::task::block_in_place(|| {
                let removed = partition.lock_log().remove_oldest_segments(count)?;
                // After the log's lock is released.
                removed.delete()
            })?;
            Ok(())
        }
        PartitionHome::Remote(_, leader) => {
            let code = iggy_binary_protocol::codes::DELETE_SEGMENTS_CODE;
            super::forward::to_broker(ctx, leader, code, bytes::Bytes::copy_from_slice(body), out)
                .await
        }
    }
}
