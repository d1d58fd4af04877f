//! Streams: get, list, create, update, delete, purge.

use super::{Context, decode, reject_option_keys};
use crate::auth::Action;
use crate::broker::stats::{Stats, total};
use crate::broker::{now_micros, users::unexpected};
use crate::error::Result;
use crate::metadata::{Applied, Ident, MetadataCommand, StreamMeta};
use bytes::BytesMut;
use iggy_binary_protocol::requests::streams::{
    CreateStreamRequest, DeleteStreamRequest, GetStreamRequest, PurgeStreamRequest,
    UpdateStreamRequest,
};
use iggy_binary_protocol::responses::streams::{GetStreamResponse, StreamResponse};
use iggy_binary_protocol::{WireEncode, WireName, WireOptions};
use iggy_common::UPDATABLE_STREAM_OPTION_KEYS;

pub fn stream_response(stream: &StreamMeta, stats: &Stats) -> StreamResponse {
    let sum = total(stats, |key| key.0 == stream.id);
    StreamResponse {
        id: stream.id,
        created_at: stream.created_at,
        topics_count: stream.topics.len() as u32,
        size_bytes: sum.size_bytes,
        messages_count: sum.messages,
        name: WireName::new(stream.name.as_str()).expect("stored names are valid"),
        options: WireOptions::from_validated(bytes::Bytes::from(stream.options.clone())),
    }
}

fn encode_stream(stream: &StreamMeta, stats: &Stats, out: &mut BytesMut) {
    let topics = stream
        .topics
        .values()
        .map(|topic| super::topics::topic_header(stream.id, topic, stats))
        .collect();
    GetStreamResponse {
        stream: stream_response(stream, stats),
        topics,
    }
    .encode(out);
}

pub async fn get_stream(ctx: &mut Context<'_>, body: &[u8], out: &mut BytesMut) -> Result<()> {
    let request: GetStreamRequest = decode(body)?;
    ctx.authorize_stream(&request.stream_id, Action::ReadStream)?;
    let id = Ident::from(&request.stream_id);
    let stream = ctx
        .broker
        .metadata
        .read(|m| m.resolve_stream(&id).ok().map(|id| m.streams[&id].clone()));
    // Absent: an empty OK body, which the SDK reads as `None`.
    if let Some(stream) = stream {
        let stats = ctx.broker.partition_stats(|key| key.0 == stream.id).await;
        encode_stream(&stream, &stats, out);
    }
    Ok(())
}

pub async fn get_streams(ctx: &mut Context<'_>, out: &mut BytesMut) -> Result<()> {
    ctx.authorize(Action::ListStreams)?;
    let streams: Vec<StreamMeta> = ctx
        .broker
        .metadata
        .read(|m| m.streams.values().cloned().collect());
    let stats = ctx.broker.partition_stats(|_| true).await;
    for stream in &streams {
        stream_response(stream, &stats).encode(out);
    }
    Ok(())
}

pub async fn create_stream(ctx: &mut Context<'_>, body: &[u8], out: &mut BytesMut) -> Result<()> {
    ctx.authorize(Action::CreateStream)?;
    let request: CreateStreamRequest = decode(body)?;
    reject_option_keys(&request.options, UPDATABLE_STREAM_OPTION_KEYS)?;
    let command = MetadataCommand::CreateStream {
        name: request.name.to_string(),
        options: request.options.as_bytes().to_vec(),
        created_at: now_micros(),
    };
    let id = match ctx.write(command).await? {
        Applied::Stream(id) => id,
        other => return Err(unexpected(other)),
    };
    // A new stream has no partitions yet.
    if let Some(stream) = ctx.broker.metadata.read(|m| m.streams.get(&id).cloned()) {
        encode_stream(&stream, &Stats::default(), out);
    }
    Ok(())
}

pub async fn update_stream(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let request: UpdateStreamRequest = decode(body)?;
    ctx.authorize_stream(&request.stream_id, Action::ManageStream)?;
    reject_option_keys(&request.options, UPDATABLE_STREAM_OPTION_KEYS)?;
    let command = MetadataCommand::UpdateStream {
        stream: Ident::from(&request.stream_id),
        name: request.name.to_string(),
        options: (!request.options.is_empty()).then(|| request.options.as_bytes().to_vec()),
    };
    ctx.write(command).await.map(drop)
}

pub async fn delete_stream(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let request: DeleteStreamRequest = decode(body)?;
    ctx.authorize_stream(&request.stream_id, Action::ManageStream)?;
    let stream = Ident::from(&request.stream_id);
    ctx.write(MetadataCommand::DeleteStream { stream })
        .await
        .map(drop)
}

pub async fn purge_stream(ctx: &mut Context<'_>, body: &[u8]) -> Result<()> {
    let request: PurgeStreamRequest = decode(body)?;
    ctx.authorize_stream(&request.stream_id, Action::ManageStream)?;
    let stream = Ident::from(&request.stream_id);
    ctx.write(MetadataCommand::PurgeStream { stream })
        .await
        .map(drop)
}
