//! Consumer groups: get, list, create, delete, join, leave, and the 0.11
//! SyncConsumerGroup through which members learn their partitions.
//!
//! Groups and their members are replicated metadata: a member is a client
//! connection on any broker, and every broker computes the same
//! assignment from the same members.

use super::{Context, decode};
use crate::auth::Action;
use crate::broker::users::unexpected;
use crate::error::{Error, Result};
use crate::metadata::{Applied, ConsumerGroupMeta, GroupKey, Ident, MetadataCommand};
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

fn details(group: &ConsumerGroupMeta, partitions: u32) -> ConsumerGroupDetailsResponse {
    let members: Vec<ConsumerGroupMemberResponse> = group
        .assignment(partitions)
        .into_iter()
        .map(|(id, owned)| ConsumerGroupMemberResponse {
            id,
            partitions_count: owned.len() as u32,
            partitions: owned,
        })
        .collect();
    ConsumerGroupDetailsResponse {
        group: ConsumerGroupResponse {
            id: group.id,
            partitions_count: partitions,
            members_count: members.len() as u32,
            name: WireName::new(group.name.as_str()).expect("stored names are valid"),
        },
        members,
    }
}

/// A group with its topic's partition count.
fn group(ctx: &Context<'_>, key: GroupKey) -> Option<(ConsumerGroupMeta, u32)> {
    ctx.broker.metadata.read(|m| {
        let topic = m.topic(key.0, key.1)?;
        Some((
            topic.consumer_groups.get(&key.2)?.clone(),
            topic.partitions.len() as u32,
        ))
    })
}

fn idents(
    stream: &WireIdentifier,
    topic: &WireIdentifier,
    group: &WireIdentifier,
) -> (Ident, Ident, Ident) {
    (Ident::from(stream), Ident::from(topic), Ident::from(group))
}

fn resolve(
    ctx: &Context<'_>,
    stream: &WireIdentifier,
    topic: &WireIdentifier,
    group: &WireIdentifier,
) -> Result<GroupKey> {
    let (stream, topic, group) = idents(stream, topic, group);
    ctx.broker
        .metadata
        .read(|m| m.resolve_group(&stream, &topic, &group))
}

pub fn get_consumer_group(ctx: &mut Context<'_>, body: &[u8], out: &mut BytesMut) -> Result<()> {
    let request: GetConsumerGroupRequest = decode(body)?;
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::ReadTopic)?;
    // Absent: an empty OK body, which the SDK reads as `None`.
    let found = resolve(
        ctx,
        &request.stream_id,
        &request.topic_id,
        &request.group_id,
    )
    .ok()
    .and_then(|key| group(ctx, key));
    if let Some((group, partitions)) = found {
        details(&group, partitions).encode(out);
    }
    Ok(())
}

pub fn get_consumer_groups(ctx: &mut Context<'_>, body: &[u8], out: &mut BytesMut) -> Result<()> {
    let request: GetConsumerGroupsRequest = decode(body)?;
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::ReadTopic)?;
    let (stream, topic) = (
        Ident::from(&request.stream_id),
        Ident::from(&request.topic_id),
    );
    let Ok(groups) = ctx.broker.metadata.read(|m| {
        m.resolve_topic(&stream, &topic).map(|(s, t)| {
            let topic = &m.streams[&s].topics[&t];
            let partitions = topic.partitions.len() as u32;
            topic
                .consumer_groups
                .values()
                .map(|g| details(g, partitions).group)
                .collect::<Vec<_>>()
        })
    }) else {
        return Ok(());
    };
    GetConsumerGroupsResponse { groups }.encode(out);
    Ok(())
}

pub async fn create_consumer_group(
    ctx: &mut Context<'_>,
    body: &[u8],
    out: &mut BytesMut,
) -> Result<()> {
    let request: CreateConsumerGroupRequest = decode(body)?;
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::ReadTopic)?;
    let command = MetadataCommand::CreateConsumerGroup {
        stream: Ident::from(&request.stream_id),
        topic: Ident::from(&request.topic_id),
        name: request.name.to_string(),
    };
    let key = match ctx.write(command).await? {
        Applied::Group(s, t, g) => (s, t, g),
        other => return Err(unexpected(other)),
    };
    if let Some((group, partitions)) = group(ctx, key) {
        details(&group, partitions).encode(out);
    }
    Ok(())
}

pub async fn delete_consumer_group(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let request: DeleteConsumerGroupRequest = decode(body)?;
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::ReadTopic)?;
    let (stream, topic, group) = idents(&request.stream_id, &request.topic_id, &request.group_id);
    ctx.write(MetadataCommand::DeleteConsumerGroup {
        stream,
        topic,
        group,
    })
    .await
    .map(drop)
}

pub async fn join_consumer_group(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let request: JoinConsumerGroupRequest = decode(body)?;
    let (stream, topic, group) = (&request.stream_id, &request.topic_id, &request.group_id);
    change_membership(ctx, stream, topic, group, true).await
}

pub async fn leave_consumer_group(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let request: LeaveConsumerGroupRequest = decode(body)?;
    let (stream, topic, group) = (&request.stream_id, &request.topic_id, &request.group_id);
    change_membership(ctx, stream, topic, group, false).await
}

/// This connection's member joins or leaves a group.
async fn change_membership(
    ctx: &mut Context<'_>,
    stream: &WireIdentifier,
    topic: &WireIdentifier,
    group: &WireIdentifier,
    join: bool,
) -> Result<()> {
    ctx.authorize_topic(stream, topic, Action::ReadTopic)?;
    let (stream, topic, group) = idents(stream, topic, group);
    let member = ctx.member();
    let command = if join {
        MetadataCommand::JoinConsumerGroup {
            stream,
            topic,
            group,
            member,
        }
    } else {
        MetadataCommand::LeaveConsumerGroup {
            stream,
            topic,
            group,
            member,
        }
    };
    ctx.write(command).await.map(drop)
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
    let member = ctx.member();
    let Some((group, partitions)) = group(ctx, key) else {
        return Err(Error::ConsumerGroupIdNotFound(key.2));
    };
    if let Some(owned) = group.partitions_of(member.client_id, partitions) {
        SyncConsumerGroupResponse {
            generation: group.generation,
            partitions: owned,
        }
        .encode(out);
    }
    Ok(())
}
