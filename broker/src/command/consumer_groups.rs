//! Consumer groups: get, list, create, delete, join, leave, and the 0.11
//! SyncConsumerGroup through which members learn their partitions.

use super::{Context, decode};
use crate::auth::Action;
use crate::consumer_groups::GroupKey;
use crate::error::{Error, Result};
use bytes::BytesMut;
use iggy_binary_protocol::requests::consumer_groups::{
    CreateConsumerGroupRequest, DeleteConsumerGroupRequest, GetConsumerGroupRequest,
    GetConsumerGroupsRequest, JoinConsumerGroupRequest, LeaveConsumerGroupRequest,
    SyncConsumerGroupRequest,
};
use iggy_binary_protocol::responses::consumer_groups::consumer_group_response::ConsumerGroupResponse;
use iggy_binary_protocol::responses::consumer_groups::get_consumer_group::{
    ConsumerGroupDetailsResponse, ConsumerGroupMemberResponse,
};
use iggy_binary_protocol::responses::consumer_groups::get_consumer_groups::GetConsumerGroupsResponse;
use iggy_binary_protocol::responses::consumer_groups::sync_consumer_group::SyncConsumerGroupResponse;
use iggy_binary_protocol::{WireEncode, WireIdentifier, WireName};

fn partitions_count(ctx: &Context<'_>, key: GroupKey) -> u32 {
    ctx.broker.with_metadata(|m| {
        m.streams
            .get(&key.0)
            .and_then(|s| s.topics.get(&key.1))
            .map_or(0, |t| t.partitions.len() as u32)
    })
}

fn group_name(ctx: &Context<'_>, key: GroupKey) -> String {
    ctx.broker.with_metadata(|m| {
        m.streams[&key.0].topics[&key.1].consumer_groups[&key.2]
            .name
            .clone()
    })
}

fn details(ctx: &Context<'_>, key: GroupKey) -> ConsumerGroupDetailsResponse {
    let partitions = partitions_count(ctx, key);
    let members: Vec<ConsumerGroupMemberResponse> = ctx
        .broker
        .groups
        .assignment(key, partitions)
        .into_iter()
        .map(|(id, owned)| ConsumerGroupMemberResponse {
            id,
            partitions_count: owned.len() as u32,
            partitions: owned,
        })
        .collect();
    ConsumerGroupDetailsResponse {
        group: ConsumerGroupResponse {
            id: key.2,
            partitions_count: partitions,
            members_count: members.len() as u32,
            name: WireName::new(group_name(ctx, key)).expect("stored names are valid"),
        },
        members,
    }
}

fn resolve(
    ctx: &Context<'_>,
    stream: &WireIdentifier,
    topic: &WireIdentifier,
    group: &WireIdentifier,
) -> Result<GroupKey> {
    ctx.broker
        .with_metadata(|m| ctx.broker.resolve_group(m, stream, topic, group))
}

pub fn get_consumer_group(ctx: &mut Context<'_>, body: &[u8], out: &mut BytesMut) -> Result<()> {
    let request: GetConsumerGroupRequest = decode(body)?;
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::ReadTopic)?;
    // Absent: an empty OK body, which the SDK reads as `None`.
    if let Ok(key) = resolve(
        ctx,
        &request.stream_id,
        &request.topic_id,
        &request.group_id,
    ) {
        details(ctx, key).encode(out);
    }
    Ok(())
}

pub fn get_consumer_groups(ctx: &mut Context<'_>, body: &[u8], out: &mut BytesMut) -> Result<()> {
    let request: GetConsumerGroupsRequest = decode(body)?;
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::ReadTopic)?;
    let broker = ctx.broker;
    let Ok(keys) = broker.with_metadata(|m| {
        broker
            .resolve_topic(m, &request.stream_id, &request.topic_id)
            .map(|(s, t)| {
                m.streams[&s].topics[&t]
                    .consumer_groups
                    .keys()
                    .map(|g| (s, t, *g))
                    .collect::<Vec<_>>()
            })
    }) else {
        return Ok(());
    };
    GetConsumerGroupsResponse {
        groups: keys
            .into_iter()
            .map(|key| details(ctx, key).group)
            .collect(),
    }
    .encode(out);
    Ok(())
}

pub fn create_consumer_group(ctx: &mut Context<'_>, body: &[u8], out: &mut BytesMut) -> Result<()> {
    let request: CreateConsumerGroupRequest = decode(body)?;
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::ReadTopic)?;
    let (key, _) =
        ctx.broker
            .create_consumer_group(&request.stream_id, &request.topic_id, &request.name)?;
    details(ctx, key).encode(out);
    Ok(())
}

pub fn delete_consumer_group(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let request: DeleteConsumerGroupRequest = decode(body)?;
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::ReadTopic)?;
    ctx.broker
        .delete_consumer_group(&request.stream_id, &request.topic_id, &request.group_id)
}

pub fn join_consumer_group(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let request: JoinConsumerGroupRequest = decode(body)?;
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::ReadTopic)?;
    let key = resolve(
        ctx,
        &request.stream_id,
        &request.topic_id,
        &request.group_id,
    )?;
    ctx.broker.groups.join(key, ctx.session.client_id);
    Ok(())
}

pub fn leave_consumer_group(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let request: LeaveConsumerGroupRequest = decode(body)?;
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::ReadTopic)?;
    let key = resolve(
        ctx,
        &request.stream_id,
        &request.topic_id,
        &request.group_id,
    )?;
    if !ctx.broker.groups.leave(key, ctx.session.client_id) {
        return Err(Error::ConsumerGroupMemberNotFound);
    }
    Ok(())
}

/// A member gets its generation and partitions; a non-member an empty body
/// (the SDK reports that as "not a member" and re-joins).
pub fn sync_consumer_group(ctx: &mut Context<'_>, body: &[u8], out: &mut BytesMut) -> Result<()> {
    let request: SyncConsumerGroupRequest = decode(body)?;
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::ReadTopic)?;
    let key = resolve(
        ctx,
        &request.stream_id,
        &request.topic_id,
        &request.group_id,
    )?;
    let partitions = partitions_count(ctx, key);
    if let Some((generation, owned)) =
        ctx.broker
            .groups
            .sync(key, ctx.session.client_id, partitions)
    {
        SyncConsumerGroupResponse {
            generation,
            partitions: owned,
        }
        .encode(out);
    }
    Ok(())
}
