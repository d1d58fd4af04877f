//! 0.10 CreateTopic and UpdateTopic carry the topic settings as fixed
//! fields, where 0.11 carries an options block:
//!
//! `[stream][topic (update only)][partitions_count u32 (create only)]
//!  [compression u8][message_expiry u64][max_topic_size u64]
//!  [replication_factor u8][name]`
//!
//! They are rewritten as 0.11 requests with the equivalent options; 0 means
//! "server default" for expiry and size, as in 0.10.

use super::super::Context;
use super::{Scratch, replies, run_011 as run};
use crate::error::{Error, Result};
use bytes::BytesMut;
use iggy_binary_protocol::codes::{CREATE_TOPIC_CODE, UPDATE_TOPIC_CODE};
use iggy_binary_protocol::requests::topics::{CreateTopicRequest, UpdateTopicRequest};
use iggy_binary_protocol::{WireDecode, WireIdentifier, WireName, WireOptions};
use iggy_common::{
    CompressionAlgorithm, IggyExpiry, MaxTopicSize, TopicCreateOptions, TopicUpdateOptions,
};

/// The fixed settings of a 0.10 topic request.
struct Settings {
    /// 0: the cluster's default (ignored on update: the admin API changes it).
    replication_factor: u8,
    compression: Option<CompressionAlgorithm>,
    message_expiry: Option<IggyExpiry>,
    max_topic_size: Option<MaxTopicSize>,
}

/// Reads the fixed-layout fields in order, using the 0.11 primitives (their
/// encodings did not change).
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let bytes = self
            .buf
            .get(self.pos..self.pos + n)
            .ok_or_else(|| Error::InvalidFormat("legacy topic request is truncated".into()))?;
        self.pos += n;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn decode<T: WireDecode>(&mut self) -> Result<T> {
        let (value, used) = T::decode(&self.buf[self.pos..])?;
        self.pos += used;
        Ok(value)
    }

    fn settings(&mut self) -> Result<Settings> {
        let compression = self.u8()?;
        let compression = Some(
            CompressionAlgorithm::from_code(compression)
                .map_err(|_| Error::InvalidFormat(format!("compression code {compression}")))?,
        );
        let expiry = self.u64()?;
        let max_size = self.u64()?;
        let replication_factor = self.u8()?; // 0: the cluster's default
        Ok(Settings {
            replication_factor,
            compression,
            message_expiry: (expiry != 0).then(|| IggyExpiry::from(expiry)),
            max_topic_size: (max_size != 0).then(|| MaxTopicSize::from(max_size)),
        })
    }

    fn finish(self) -> Result<()> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(Error::InvalidFormat(format!(
                "{} trailing bytes after the request",
                self.buf.len() - self.pos
            )))
        }
    }
}

pub async fn create(
    ctx: &mut Context<'_>,
    body: &mut BytesMut,
    scratch: &mut Scratch,
    out: &mut BytesMut,
) -> Result<()> {
    let mut reader = Reader { buf: body, pos: 0 };
    let stream_id: WireIdentifier = reader.decode()?;
    let partitions_count = reader.u32()?;
    let settings = reader.settings()?;
    let name: WireName = reader.decode()?;
    reader.finish()?;
    let options = TopicCreateOptions {
        compression_algorithm: settings.compression,
        message_expiry: settings.message_expiry,
        max_topic_size: settings.max_topic_size,
        raw: (settings.replication_factor > 0)
            .then(|| {
                (
                    crate::command::topic_options::REPLICATION_FACTOR.to_string(),
                    settings.replication_factor.to_string(),
                )
            })
            .into_iter()
            .collect(),
        ..Default::default()
    }
    .to_explicit_wire(|_| false)?;
    let request = CreateTopicRequest {
        stream_id,
        partitions_count,
        name,
        options,
    };
    run(ctx, CREATE_TOPIC_CODE, &request, scratch).await?;
    replies::translate(ctx, CREATE_TOPIC_CODE, body, &scratch.reply, out)
}

pub async fn update(ctx: &mut Context<'_>, body: &[u8], scratch: &mut Scratch) -> Result<()> {
    let mut reader = Reader { buf: body, pos: 0 };
    let stream_id: WireIdentifier = reader.decode()?;
    let topic_id: WireIdentifier = reader.decode()?;
    let settings = reader.settings()?;
    let name: WireName = reader.decode()?;
    reader.finish()?;
    // 0.10 always sends all three settings; "server default" means no limit.
    let options: WireOptions = TopicUpdateOptions {
        compression_algorithm: settings.compression,
        message_expiry: Some(settings.message_expiry.unwrap_or(IggyExpiry::NeverExpire)),
        max_topic_size: Some(settings.max_topic_size.unwrap_or(MaxTopicSize::Unlimited)),
        ..Default::default()
    }
    .to_wire()?;
    let request = UpdateTopicRequest {
        stream_id,
        topic_id,
        name,
        options,
    };
    run(ctx, UPDATE_TOPIC_CODE, &request, scratch).await
}
