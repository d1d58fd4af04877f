//! Command handlers: decode a request body with the wire crate, act on the
//! broker, encode the reply body.
//!
//! `dispatch` is the single place that maps a command code to its handler
//! and enforces that only ping and login work before authentication.
//! Handlers are grouped by area as `iggy_binary_protocol::requests` is.

mod consumer_groups;
mod consumer_offsets;
pub mod legacy;
pub mod login;
mod messages;
mod partitions;
mod personal_access_tokens;
mod streams;
mod system;
mod topics;
mod users;

use crate::auth::{Action, ROOT_USER_ID};
use crate::broker::Broker;
use crate::broker::users::check_permission;
use crate::error::{Error, Result};
use crate::session::Session;
use bytes::BytesMut;
use iggy_binary_protocol::codes::*;
use iggy_binary_protocol::{WireDecode, WireIdentifier, WireOptions};

/// What a handler works with.
pub struct Context<'a> {
    pub broker: &'a Broker,
    pub session: &'a mut Session,
}

impl Context<'_> {
    fn user_id(&self) -> Result<u32> {
        self.session.user_id.ok_or(Error::Unauthenticated)
    }

    /// Fail with `Unauthorized` unless the logged-in user may do `action`.
    pub fn authorize(&self, action: Action) -> Result<()> {
        self.broker.authorize(self.user_id()?, action)
    }

    /// Authorize an action on a stream. An unknown stream passes, so the
    /// handler reports "not found" as upstream does (not-found before
    /// unauthorized). Resolution and check share one metadata read.
    pub fn authorize_stream(
        &self,
        stream: &WireIdentifier,
        action: fn(u32) -> Action,
    ) -> Result<()> {
        let user_id = self.user_id()?;
        if user_id == ROOT_USER_ID {
            return Ok(());
        }
        let broker = self.broker;
        broker.with_metadata(|m| match broker.resolve_stream(m, stream) {
            Ok(s) => check_permission(m, user_id, action(s)),
            Err(_) => Ok(()),
        })
    }

    /// Authorize an action on a topic; unknown topics pass as above.
    pub fn authorize_topic(
        &self,
        stream: &WireIdentifier,
        topic: &WireIdentifier,
        action: fn(u32, u32) -> Action,
    ) -> Result<()> {
        let user_id = self.user_id()?;
        if user_id == ROOT_USER_ID {
            return Ok(());
        }
        let broker = self.broker;
        broker.with_metadata(|m| match broker.resolve_topic(m, stream, topic) {
            Ok((s, t)) => check_permission(m, user_id, action(s, t)),
            Err(_) => Ok(()),
        })
    }
}

/// Refuse option keys outside `allowed`, naming the first one: a key that
/// is stored but ignored would silently give the client defaults.
pub fn reject_option_keys(options: &WireOptions, allowed: &[&str]) -> Result<()> {
    for entry in options {
        let key = String::from_utf8_lossy(entry.key);
        if !allowed.contains(&key.as_ref()) {
            return Err(Error::UnsupportedOptionKey(key.into_owned()));
        }
    }
    Ok(())
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

        GET_USER_CODE => users::get_user(ctx, body, out),
        GET_USERS_CODE => users::get_users(ctx, out),
        CREATE_USER_CODE => users::create_user(ctx, body, out),
        UPDATE_USER_CODE => users::update_user(ctx, body),
        DELETE_USER_CODE => users::delete_user(ctx, body),
        UPDATE_PERMISSIONS_CODE => users::update_permissions(ctx, body),
        CHANGE_PASSWORD_CODE => users::change_password(ctx, body),

        GET_PERSONAL_ACCESS_TOKENS_CODE => personal_access_tokens::get_tokens(ctx, out),
        CREATE_PERSONAL_ACCESS_TOKEN_CODE => personal_access_tokens::create_token(ctx, body, out),
        DELETE_PERSONAL_ACCESS_TOKEN_CODE => personal_access_tokens::delete_token(ctx, body),

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
