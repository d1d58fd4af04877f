//! 0.10 replies for the records whose layout changed in 0.11: streams,
//! topics and users. The 0.11 handler's reply is decoded and re-encoded
//! with the 0.10 crate's own types, so both layouts come from their
//! published definitions.

use super::super::Context;
use crate::error::{Error, Result};
use bytes::BytesMut;
use iggy_binary_protocol::codes::*;
use iggy_binary_protocol::requests::topics::{GetTopicRequest, GetTopicsRequest};
use iggy_binary_protocol::responses::streams::{GetStreamResponse, StreamResponse, TopicHeader};
use iggy_binary_protocol::responses::topics::get_topic::GetTopicResponse;
use iggy_binary_protocol::responses::topics::get_topics::GetTopicsResponse;
use iggy_binary_protocol::responses::users::{GetUsersResponse, UserDetailsResponse, UserResponse};
use iggy_binary_protocol::{WireDecode, WireEncode, WireIdentifier, WireName};
use iggy_binary_protocol_010 as v010;
use iggy_binary_protocol_010::{WireDecode as _, WireEncode as _};

/// Translate the 0.11 `reply` of command `code` (whose request was `body`)
/// into the 0.10 layout. An empty reply ("not found") stays empty.
pub fn translate(
    ctx: &Context<'_>,
    code: u32,
    body: &[u8],
    reply: &[u8],
    out: &mut BytesMut,
) -> Result<()> {
    if reply.is_empty() {
        return Ok(());
    }
    match code {
        GET_STREAM_CODE | CREATE_STREAM_CODE => {
            let stream: GetStreamResponse = decode_reply(reply)?;
            let topics = stream
                .topics
                .iter()
                .map(|t| topic_header(ctx, stream.stream.id, t))
                .collect();
            v010::responses::streams::GetStreamResponse {
                stream: stream_response(&stream.stream),
                topics,
            }
            .encode(out);
        }
        GET_STREAMS_CODE => {
            // A list runs to the end of the body, as in both generations.
            let mut rest = reply;
            while !rest.is_empty() {
                let (stream, used) = StreamResponse::decode(rest)?;
                stream_response(&stream).encode(out);
                rest = &rest[used..];
            }
        }
        GET_TOPIC_CODE | CREATE_TOPIC_CODE => {
            let topic: GetTopicResponse = decode_reply(reply)?;
            let stream_id = stream_of(ctx, code, body)?;
            v010::responses::topics::get_topic::GetTopicResponse {
                topic: topic_header(ctx, stream_id, &topic.topic),
                partitions: topic
                    .partitions
                    .iter()
                    .map(|p| v010::responses::topics::get_topic::PartitionResponse {
                        id: p.id,
                        created_at: p.created_at,
                        segments_count: p.segments_count,
                        current_offset: p.current_offset,
                        size_bytes: p.size_bytes,
                        messages_count: p.messages_count,
                    })
                    .collect(),
            }
            .encode(out);
        }
        GET_TOPICS_CODE => {
            let topics: GetTopicsResponse = decode_reply(reply)?;
            let stream_id = stream_of(ctx, code, body)?;
            // 0.10 lists topic headers to the end of the body, no count.
            for topic in &topics.topics {
                topic_header(ctx, stream_id, topic).encode(out);
            }
        }
        GET_USER_CODE | CREATE_USER_CODE => {
            let details: UserDetailsResponse = decode_reply(reply)?;
            let permissions = details
                .permissions
                .map(|p| v010::WirePermissions::decode_from(&p.to_bytes()))
                .transpose()
                .map_err(|e| Error::InvalidFormat(e.to_string()))?;
            v010::responses::users::UserDetailsResponse {
                user: user_response(&details.user),
                permissions,
            }
            .encode(out);
        }
        GET_USERS_CODE => {
            let users: GetUsersResponse = decode_reply(reply)?;
            for user in &users.users {
                user_response(user).encode(out);
            }
        }
        other => unreachable!("no 0.10 reply translation for command {other}"),
    }
    Ok(())
}

fn decode_reply<T: WireDecode>(reply: &[u8]) -> Result<T> {
    Ok(T::decode_from(reply)?)
}

fn name(name: &WireName) -> v010::WireName {
    v010::WireName::new(name.as_str()).expect("a valid 0.11 name is a valid 0.10 name")
}

fn stream_response(s: &StreamResponse) -> v010::responses::streams::StreamResponse {
    v010::responses::streams::StreamResponse {
        id: s.id,
        created_at: s.created_at,
        topics_count: s.topics_count,
        size_bytes: s.size_bytes,
        messages_count: s.messages_count,
        name: name(&s.name),
    }
}

fn user_response(u: &UserResponse) -> v010::responses::users::UserResponse {
    v010::responses::users::UserResponse {
        id: u.id,
        created_at: u.created_at,
        status: u.status,
        username: name(&u.username),
    }
}

/// The 0.10 topic header adds the topic's replication factor.
fn topic_header(
    ctx: &Context<'_>,
    stream_id: u32,
    t: &TopicHeader,
) -> v010::responses::streams::TopicHeader {
    let replication_factor = ctx.broker.metadata.read(|m| {
        m.topic(stream_id, t.id)
            .map_or(1, |topic| topic.settings.replication_factor)
    });
    v010::responses::streams::TopicHeader {
        id: t.id,
        created_at: t.created_at,
        partitions_count: t.partitions_count,
        message_expiry: t.message_expiry,
        compression_algorithm: t.compression_algorithm,
        max_topic_size: t.max_topic_size,
        replication_factor,
        size_bytes: t.size_bytes,
        messages_count: t.messages_count,
        name: name(&t.name),
    }
}

/// The stream a topic request addressed (it succeeded, so it exists).
fn stream_of(ctx: &Context<'_>, code: u32, body: &[u8]) -> Result<u32> {
    let stream: WireIdentifier = match code {
        GET_TOPIC_CODE => GetTopicRequest::decode_from(body)?.stream_id,
        GET_TOPICS_CODE => GetTopicsRequest::decode_from(body)?.stream_id,
        // The create request was translated; its stream leads the body.
        CREATE_TOPIC_CODE => WireIdentifier::decode(body)?.0,
        other => {
            return Err(Error::InvalidFormat(format!(
                "command {other} names no stream"
            )));
        }
    };
    let stream = crate::metadata::Ident::from(&stream);
    ctx.broker.metadata.read(|m| m.resolve_stream(&stream))
}
