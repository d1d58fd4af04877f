//! Topics: get, list, create, update, delete, purge; option blocks.

use super::{Context, decode};
use crate::auth::Action;
use crate::broker::stats::{Stats, total};
use crate::broker::{now_micros, users::unexpected};
use crate::error::{Error, Result};
use crate::metadata::command::TopicUpdate;
use crate::metadata::{Applied, Ident, MetadataCommand, TopicMeta, TopicSettings};
use bytes::BytesMut;
use iggy_binary_protocol::requests::topics::{
    CreateTopicRequest, DeleteTopicRequest, GetTopicRequest, GetTopicsRequest, PurgeTopicRequest,
    UpdateTopicRequest,
};
use iggy_binary_protocol::responses::streams::TopicHeader;
use iggy_binary_protocol::responses::topics::get_topic::{GetTopicResponse, PartitionResponse};
use iggy_binary_protocol::responses::topics::get_topics::GetTopicsResponse;
use iggy_binary_protocol::{WireEncode, WireName, WireOptions};
use iggy_common::{
    IggyExpiry, MAX_TOPIC_SEGMENT_SIZE, TopicCreateOptions, validate_topic_segment_size,
};

/// Expiry as the wire reports it: upstream SDKs read 0 as "never".
fn wire_expiry(expiry_us: u64) -> u64 {
    if expiry_us == u64::MAX { 0 } else { expiry_us }
}

pub fn topic_header(stream_id: u32, topic: &TopicMeta, stats: &Stats) -> TopicHeader {
    let sum = total(stats, |key| key.0 == stream_id && key.1 == topic.id);
    let (size_bytes, messages_count) = (sum.size_bytes, sum.messages);
    TopicHeader {
        id: topic.id,
        created_at: topic.created_at,
        partitions_count: topic.partitions.len() as u32,
        message_expiry: wire_expiry(topic.settings.message_expiry_us),
        compression_algorithm: topic.settings.compression_algorithm,
        max_topic_size: topic.settings.max_topic_size,
        size_bytes,
        messages_count,
        name: WireName::new(topic.name.as_str()).expect("stored names are valid"),
        options: WireOptions::from_validated(bytes::Bytes::from(topic.options.clone())),
        derived_options: WireOptions::empty(),
    }
}

fn encode_topic(stream_id: u32, topic: &TopicMeta, stats: &Stats, out: &mut BytesMut) {
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            let s = stats
                .get(&(stream_id, topic.id, p.id))
                .copied()
                .unwrap_or_default();
            PartitionResponse {
                id: p.id,
                created_at: p.created_at,
                segments_count: s.segments,
                current_offset: s.current_offset,
                size_bytes: s.size_bytes,
                messages_count: s.messages,
            }
        })
        .collect();
    GetTopicResponse {
        topic: topic_header(stream_id, topic, stats),
        partitions,
    }
    .encode(out);
}

/// Resolve a create request's options over the broker defaults.
fn settings_from_options(ctx: &Context<'_>, options: &WireOptions) -> Result<TopicSettings> {
    let own = super::topic_options::split(options)?;
    let parsed = TopicCreateOptions::parse(&own.upstream)?;
    let replication_factor = ctx.broker.replication_factor(own.replication_factor)?;
    let segment_size_bytes = match parsed.segment_size {
        Some(size) => {
            let bytes = size.as_bytes_u64();
            validate_topic_segment_size(bytes, MAX_TOPIC_SEGMENT_SIZE)?;
            bytes
        }
        None => ctx.broker.effective.segment_size_bytes,
    };
    Ok(TopicSettings {
        compression_algorithm: parsed.compression_algorithm.map_or(1, |c| c.as_code()),
        message_expiry_us: parsed.message_expiry.map_or(u64::MAX, u64::from),
        max_topic_size: parsed.max_topic_size.map_or(u64::MAX, u64::from),
        segment_size_bytes,
        replication_factor,
        min_in_sync: ctx.broker.min_in_sync(replication_factor),
        pending_min_in_sync: None,
        // `persisted` asks for every acknowledged batch on stable storage:
        // fsync each batch on every replica, whatever the broker's policy.
        // `replicated` (the SDK's default) is met by any policy.
        fsync: if parsed.durability.is_persisted() {
            crate::storage::FsyncPolicy::Always
        } else {
            ctx.broker.effective.fsync
        },
    })
}

pub async fn get_topic(ctx: &mut Context<'_>, body: &[u8], out: &mut BytesMut) -> Result<()> {
    let request: GetTopicRequest = decode(body)?;
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::ReadTopic)?;
    let (stream, topic) = (
        Ident::from(&request.stream_id),
        Ident::from(&request.topic_id),
    );
    let found = ctx.broker.metadata.read(|m| {
        m.resolve_topic(&stream, &topic)
            .ok()
            .map(|(s, t)| (s, m.streams[&s].topics[&t].clone()))
    });
    if let Some((stream_id, topic)) = found {
        let stats = ctx
            .broker
            .partition_stats(|key| key.0 == stream_id && key.1 == topic.id)
            .await;
        encode_topic(stream_id, &topic, &stats, out);
    }
    Ok(())
}

pub async fn get_topics(ctx: &mut Context<'_>, body: &[u8], out: &mut BytesMut) -> Result<()> {
    let request: GetTopicsRequest = decode(body)?;
    ctx.authorize_stream(&request.stream_id, Action::ListTopics)?;
    let stream = Ident::from(&request.stream_id);
    let found = ctx.broker.metadata.read(|m| {
        m.resolve_stream(&stream).map(|s| {
            (
                s,
                m.streams[&s].topics.values().cloned().collect::<Vec<_>>(),
            )
        })
    });
    let (stream_id, topics) = match found {
        Ok(found) => found,
        Err(Error::StreamIdNotFound(_) | Error::StreamNameNotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    let stats = ctx.broker.partition_stats(|key| key.0 == stream_id).await;
    GetTopicsResponse {
        topics: topics
            .iter()
            .map(|t| topic_header(stream_id, t, &stats))
            .collect(),
    }
    .encode(out);
    Ok(())
}

pub async fn create_topic(ctx: &mut Context<'_>, body: &[u8], out: &mut BytesMut) -> Result<()> {
    let request: CreateTopicRequest = decode(body)?;
    ctx.authorize_stream(&request.stream_id, Action::CreateTopic)?;
    let settings = settings_from_options(ctx, &request.options)?;
    let command = MetadataCommand::CreateTopic {
        stream: Ident::from(&request.stream_id),
        name: request.name.to_string(),
        partitions: request.partitions_count,
        settings,
        options: request.options.as_bytes().to_vec(),
        created_at: now_micros(),
    };
    let (stream_id, topic_id) = match ctx.write(command).await? {
        Applied::Topic(s, t) => (s, t),
        other => return Err(unexpected(other)),
    };
    // A new topic's partitions are empty.
    if let Some(topic) = ctx
        .broker
        .metadata
        .read(|m| m.topic(stream_id, topic_id).cloned())
    {
        encode_topic(stream_id, &topic, &Stats::default(), out);
    }
    Ok(())
}

pub async fn update_topic(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let request: UpdateTopicRequest = decode(body)?;
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::ManageTopic)?;
    let parsed = TopicCreateOptions::parse(&request.options)?;
    if parsed.segment_size.is_some() {
        return Err(Error::InvalidOptionValue("segment_size".into()));
    }
    let update = TopicUpdate {
        compression_algorithm: parsed.compression_algorithm.map(|c| c.as_code()),
        message_expiry_us: parsed.message_expiry.map(|expiry| match expiry {
            IggyExpiry::ServerDefault => u64::MAX,
            other => u64::from(other),
        }),
        max_topic_size: parsed.max_topic_size.map(u64::from),
    };
    let command = MetadataCommand::UpdateTopic {
        stream: Ident::from(&request.stream_id),
        topic: Ident::from(&request.topic_id),
        name: request.name.to_string(),
        update,
        options: (!request.options.is_empty()).then(|| request.options.as_bytes().to_vec()),
    };
    ctx.write(command).await.map(drop)
}

pub async fn delete_topic(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let request: DeleteTopicRequest = decode(body)?;
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::ManageTopic)?;
    let command = MetadataCommand::DeleteTopic {
        stream: Ident::from(&request.stream_id),
        topic: Ident::from(&request.topic_id),
    };
    ctx.write(command).await.map(drop)
}

pub async fn purge_topic(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let request: PurgeTopicRequest = decode(body)?;
    ctx.authorize_topic(&request.stream_id, &request.topic_id, Action::ManageTopic)?;
    let command = MetadataCommand::PurgeTopic {
        stream: Ident::from(&request.stream_id),
        topic: Ident::from(&request.topic_id),
    };
    ctx.write(command).await.map(drop)
}
