//! The 0.11 SDK's cluster routing: once the roster lists more than one
//! broker, auto-committing polls and offset writes ask where the partition
//! is served (103 GetPollRouting, 123 GetConsumerOffsetRouting), open a
//! data connection there, attach it to the asking session (14
//! AttachConsumerSession) and send 104 PollMessagesOnPrimary or 121/122 on
//! it.
//!
//! The route names the partition's leader. The attach block the SDK
//! carries from the route to the data connection says which consumer-group
//! member the data connection acts for; it is sealed with an HMAC under the
//! cluster's secret, so any broker can check it without asking the one
//! that issued it, and a client cannot act as another member.

use super::system::node_response;
use super::{Context, decode};
use crate::auth::Action;
use crate::error::{Error, Result};
use crate::metadata::{Ident, Member};
use bytes::BytesMut;
use iggy_binary_protocol::requests::consumer_offsets::GetConsumerOffsetRequest;
use iggy_binary_protocol::requests::messages::poll_messages::PollMessagesRequest;
use iggy_binary_protocol::requests::system::attach_consumer_session::AttachConsumerSessionRequest;
use iggy_binary_protocol::responses::messages::poll_routing::PollRoutingResponse;
use iggy_binary_protocol::{WireEncode, WireIdentifier};
use ring::hmac;
use std::time::{Duration, Instant};

/// How long an attach waits for this broker to catch up with the
/// metadata the client has seen.
const ATTACH_CATCH_UP: Duration = Duration::from_secs(5);

pub fn get_poll_routing(ctx: &mut Context<'_>, body: &[u8], out: &mut BytesMut) -> Result<()> {
    let request: PollMessagesRequest = decode(body)?;
    route(
        ctx,
        &request.stream_id,
        &request.topic_id,
        request.partition_id,
        out,
    )
}

pub fn get_consumer_offset_routing(
    ctx: &mut Context<'_>,
    body: &[u8],
    out: &mut BytesMut,
) -> Result<()> {
    let request: GetConsumerOffsetRequest = decode(body)?;
    route(
        ctx,
        &request.stream_id,
        &request.topic_id,
        request.partition_id,
        out,
    )
}

fn route(
    ctx: &Context<'_>,
    stream: &WireIdentifier,
    topic: &WireIdentifier,
    partition_id: Option<u32>,
    out: &mut BytesMut,
) -> Result<()> {
    ctx.authorize_topic(stream, topic, Action::PollMessages)?;
    let (stream, topic) = (Ident::from(stream), Ident::from(topic));
    let partition_id = partition_id.unwrap_or(0);
    let broker = ctx.broker;
    let leader = broker.metadata.read(|m| -> Result<u32> {
        let (s, t) = m.resolve_topic(&stream, &topic)?;
        m.partition((s, t, partition_id))
            .and_then(|p| p.leader())
            .ok_or(Error::PartitionNotFound(partition_id))
    })?;
    let primary = broker
        .roster_node(leader)
        .or_else(|| broker.roster_node(broker.node_id()))
        .ok_or_else(|| Error::PartitionUnavailable("no roster entry".into()))?;
    PollRoutingResponse {
        consumer_session: seal(ctx)?,
        primary: node_response(&primary),
    }
    .encode(out);
    Ok(())
}

/// `client_id` packs `[member client id u32][member node u32][user u32]
/// [member epoch u32]`; `session` is the first 8 bytes of its HMAC.
fn seal(ctx: &Context<'_>) -> Result<AttachConsumerSessionRequest> {
    let member = ctx.member();
    let user_id = ctx.session.user_id.ok_or(Error::Unauthenticated)?;
    let client_id = u128::from(member.client_id)
        | u128::from(member.node) << 32
        | u128::from(user_id) << 64
        | u128::from(member.epoch as u32) << 96;
    Ok(AttachConsumerSessionRequest {
        client_id,
        session: tag(ctx, client_id),
        metadata_watermark: ctx.broker.metadata.applied_index(),
    })
}

fn tag(ctx: &Context<'_>, client_id: u128) -> u64 {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &ctx.broker.routing_key);
    let mac = hmac::sign(&key, &client_id.to_le_bytes());
    u64::from_le_bytes(mac.as_ref()[..8].try_into().expect("8 bytes"))
}

/// Make this (data) connection act for the member the attach block names,
/// once this broker has applied the metadata the client has seen.
pub async fn attach_consumer_session(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let request: AttachConsumerSessionRequest = decode(body)?;
    if tag(ctx, request.client_id) != request.session {
        return Err(Error::Unauthenticated);
    }
    let client_id = request.client_id as u32;
    let node = (request.client_id >> 32) as u32;
    let user_id = (request.client_id >> 64) as u32;
    let epoch = u64::from((request.client_id >> 96) as u32);
    if ctx.session.user_id != Some(user_id) {
        return Err(Error::Unauthorized);
    }
    let deadline = Instant::now() + ATTACH_CATCH_UP;
    ctx.broker
        .metadata
        .wait_applied(request.metadata_watermark, deadline)
        .await?;
    ctx.session.acting_for = Some(Member {
        client_id,
        node,
        epoch,
    });
    Ok(())
}
