//! Command handlers: decode a request body with the wire crate, act on the
//! broker, encode the reply body.
//!
//! `dispatch` is the single place that maps a command code to its handler
//! and enforces that only ping and login work before authentication.
//! Handlers are grouped by area as `iggy_binary_protocol::requests` is.

mod consumer_groups;
mod consumer_offsets;
mod messages;
mod partitions;
mod streams;
mod system;
mod topics;
pub mod users;

use crate::broker::Broker;
use crate::error::{Error, Result};
use crate::session::Session;
use bytes::BytesMut;
use iggy_binary_protocol::WireDecode;
use iggy_binary_protocol::codes::*;

/// What a handler works with.
pub struct Context<'a> {
    pub broker: &'a Broker,
    pub session: &'a mut Session,
}

/// Decode a whole request body as `T`; trailing bytes are an error.
pub fn decode<T: WireDecode>(body: &[u8]) -> Result<T> {
    let (value, consumed) = T::decode(body)?;
    if consumed != body.len() {
        return Err(Error::InvalidFormat(format!(
            "{} trailing bytes after the request",
            body.len() - consumed
        )));
    }
    Ok(value)
}

/// Run the command `code` with request `body`, writing the reply body to
/// `out`. Login is handled by the connection (it shapes the session).
pub fn dispatch(
    ctx: &mut Context<'_>,
    code: u32,
    body: &mut [u8],
    out: &mut BytesMut,
) -> Result<()> {
    if code != PING_CODE && !ctx.session.is_authenticated() {
        return Err(Error::Unauthenticated);
    }
    match code {
        PING_CODE => Ok(()),
        GET_STATS_CODE => system::get_stats(ctx, out),
        GET_CLUSTER_METADATA_CODE => system::get_cluster_metadata(ctx, out),
        GET_ME_CODE => system::get_me(ctx, out),
        GET_CLIENT_CODE => system::get_client(ctx, body, out),
        GET_CLIENTS_CODE => system::get_clients(ctx, out),
        DESCRIBE_OPTIONS_CODE => system::describe_options(body, out),

        GET_STREAM_CODE => streams::get_stream(ctx, body, out),
        GET_STREAMS_CODE => streams::get_streams(ctx, out),
        CREATE_STREAM_CODE => streams::create_stream(ctx, body, out),
        UPDATE_STREAM_CODE => streams::update_stream(ctx, body),
        DELETE_STREAM_CODE => streams::delete_stream(ctx, body),
        PURGE_STREAM_CODE => streams::purge_stream(ctx, body),

        GET_TOPIC_CODE => topics::get_topic(ctx, body, out),
        GET_TOPICS_CODE => topics::get_topics(ctx, body, out),
        CREATE_TOPIC_CODE => topics::create_topic(ctx, body, out),
        UPDATE_TOPIC_CODE => topics::update_topic(ctx, body),
        DELETE_TOPIC_CODE => topics::delete_topic(ctx, body),
        PURGE_TOPIC_CODE => topics::purge_topic(ctx, body),

        CREATE_PARTITIONS_CODE => partitions::create_partitions(ctx, body),
        DELETE_PARTITIONS_CODE => partitions::delete_partitions(ctx, body),
        DELETE_SEGMENTS_CODE => partitions::delete_segments(ctx, body),

        SEND_MESSAGES_CODE => messages::send_messages(ctx, body, out),
        POLL_MESSAGES_CODE => messages::poll_messages(ctx, body, out),
        FLUSH_UNSAVED_BUFFER_CODE => Err(Error::FeatureUnavailable(
            "every acknowledged batch is already written; FlushUnsavedBuffer is not part of 0.11",
        )),

        GET_CONSUMER_OFFSET_CODE => consumer_offsets::get_consumer_offset(ctx, body, out),
        STORE_CONSUMER_OFFSET_CODE => consumer_offsets::store_consumer_offset(ctx, body),
        DELETE_CONSUMER_OFFSET_CODE => consumer_offsets::delete_consumer_offset(ctx, body),

        GET_CONSUMER_GROUP_CODE => consumer_groups::get_consumer_group(ctx, body, out),
        GET_CONSUMER_GROUPS_CODE => consumer_groups::get_consumer_groups(ctx, body, out),
        CREATE_CONSUMER_GROUP_CODE => consumer_groups::create_consumer_group(ctx, body, out),
        DELETE_CONSUMER_GROUP_CODE => consumer_groups::delete_consumer_group(ctx, body),
        JOIN_CONSUMER_GROUP_CODE => consumer_groups::join_consumer_group(ctx, body),
        LEAVE_CONSUMER_GROUP_CODE => consumer_groups::leave_consumer_group(ctx, body),
        SYNC_CONSUMER_GROUP_CODE => consumer_groups::sync_consumer_group(ctx, body, out),

        _ => Err(Error::FeatureUnavailable(
            "command not supported by this broker yet",
        )),
    }
}
