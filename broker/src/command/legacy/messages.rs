//! 0.10 SendMessages and PollMessages.
//!
//! A 0.10 message is a 64-byte header (checksum, id, absolute offset,
//! timestamp, origin timestamp, lengths, reserved) then payload then user
//! headers; a send also carries a 16-byte index entry per message. The
//! broker stores 0.11 batch records (a 256-byte batch header and 48-byte
//! frames with offset and timestamp deltas), so sends are re-encoded as a
//! 0.11 batch and polls are expanded back into 0.10 messages, with the
//! per-message checksum the 0.10 server computed: xxh3-64 of bytes 8.. of
//! the message.

use super::super::Context;
use super::{Scratch, run_011};
use crate::error::{Error, Result};
use bytes::{BufMut, BytesMut};
use iggy_binary_protocol::codes::POLL_MESSAGES_CODE;
use iggy_binary_protocol::requests::messages::PollMessagesRequest;
use iggy_binary_protocol::requests::messages::send_messages::{
    RawMessage, SendMessagesEncoder, SendMessagesHeader,
};
use iggy_binary_protocol::responses::messages::poll_messages::PolledBatchesIterator;
use iggy_binary_protocol::{KIND_CONSUMER_GROUP, WireDecode};
use iggy_binary_protocol_010::WireMessageIterator;
use iggy_binary_protocol_010::message_layout::{WIRE_MESSAGE_HEADER_SIZE, WIRE_MESSAGE_INDEX_SIZE};

/// `[partition_id u32][current_offset u64][count u32]`, as in 0.11.
const POLL_PREFIX_BYTES: usize = 16;

pub async fn send(ctx: &mut Context<'_>, body: &[u8], scratch: &mut Scratch) -> Result<()> {
    reencode_send(body, &mut scratch.request)?;
    scratch.reply.clear();
    // 0.10 clients ignore the reply body; the confirmations are dropped.
    super::super::send_encoded(ctx, &mut scratch.request, &mut scratch.reply).await
}

/// Re-encode a 0.10 SendMessages body as a 0.11 one in `out`: every
/// message is checked against its declared lengths and count first.
pub fn reencode_send(body: &[u8], out: &mut BytesMut) -> Result<()> {
    let short = || Error::InvalidFormat("legacy send_messages body is truncated".into());
    let metadata_len = u32::from_le_bytes(body.get(0..4).ok_or_else(short)?.try_into().expect("4"));
    let messages_start = 4usize
        .checked_add(metadata_len as usize)
        .ok_or_else(short)?;
    let metadata = body.get(4..messages_start).ok_or_else(short)?;
    let (header, used) = SendMessagesHeader::decode(metadata)?;
    if used != metadata.len() {
        return Err(Error::InvalidFormat("metadata length mismatch".into()));
    }
    if header.messages_count == 0 {
        return Err(Error::InvalidMessagesCount);
    }
    // The index array is redundant (message lengths are in the headers).
    let index_bytes = header.messages_count as usize * WIRE_MESSAGE_INDEX_SIZE;
    let messages = body.get(messages_start + index_bytes..).ok_or_else(short)?;
    let mut raw = Vec::with_capacity(header.messages_count as usize);
    let mut consumed = 0;
    // 0.10 clients leave ids to the server. One random draw per batch,
    // counted up per message: as unlikely to collide as a draw per
    // message, without a ChaCha block for every 1 KB message.
    let first_id = rand::random::<u128>();
    for (index, message) in WireMessageIterator::new(messages, header.messages_count).enumerate() {
        let message = message.map_err(|e| Error::InvalidFormat(e.to_string()))?;
        consumed +=
            WIRE_MESSAGE_HEADER_SIZE + message.payload().len() + message.user_headers().len();
        let headers = message.user_headers();
        raw.push(RawMessage {
            id: match message.id() {
                0 => first_id.wrapping_add(index as u128).max(1),
                id => id,
            },
            origin_timestamp: message.origin_timestamp(),
            headers: (!headers.is_empty()).then_some(headers),
            payload: message.payload(),
        });
    }
    if raw.len() != header.messages_count as usize || consumed != messages.len() {
        return Err(Error::InvalidMessagesCount);
    }
    out.clear();
    SendMessagesEncoder::encode(
        out,
        &header.stream_id,
        &header.topic_id,
        &header.partitioning,
        &raw,
    )?;
    Ok(())
}

pub async fn poll(
    ctx: &mut Context<'_>,
    body: &[u8],
    scratch: &mut Scratch,
    out: &mut BytesMut,
) -> Result<()> {
    let mut request: PollMessagesRequest = super::super::decode(body)?;
    if request.consumer.kind == KIND_CONSUMER_GROUP && request.partition_id.is_none() {
        match next_group_partition(ctx, &request)? {
            Some(partition) => request.partition_id = Some(partition),
            None => {
                // A member without partitions gets an empty poll.
                out.put_bytes(0, POLL_PREFIX_BYTES);
                return Ok(());
            }
        }
    }
    match run_011(ctx, POLL_MESSAGES_CODE, &request, scratch).await {
        Ok(()) => expand(&scratch.reply, out),
        // 0.10 clients do not know "not your partition" (5009); the 0.10
        // server answered an empty poll.
        Err(e) if e.code() == Error::ConsumerGroupPartitionNotOwned(0).code() => {
            out.put_u32_le(request.partition_id.unwrap_or(0));
            out.put_bytes(0, POLL_PREFIX_BYTES - 4);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The partition a 0.10 group member polls next: its assigned partitions in
/// turn. `None` when it has none (more members than partitions).
fn next_group_partition(
    ctx: &mut Context<'_>,
    request: &PollMessagesRequest,
) -> Result<Option<u32>> {
    let (key, owned) = super::super::messages::owned_partitions(ctx, request)?;
    if owned.is_empty() {
        return Ok(None);
    }
    let cursor = ctx.session.group_cursors.entry(key).or_insert(0);
    let partition = owned[*cursor % owned.len()];
    *cursor = (*cursor + 1) % owned.len();
    Ok(Some(partition))
}

/// Rewrite a 0.11 poll reply (prefix + batch records) as a 0.10 one
/// (prefix + 64-byte-header messages).
fn expand(reply: &[u8], out: &mut BytesMut) -> Result<()> {
    let prefix_at = out.len();
    out.put_slice(&reply[..POLL_PREFIX_BYTES]);
    let mut count = 0u32;
    for message in PolledBatchesIterator::new(&reply[POLL_PREFIX_BYTES..]) {
        let message = message?;
        let start = out.len();
        out.put_u64_le(0); // checksum, filled in below
        out.put_u128_le(message.id);
        out.put_u64_le(message.offset);
        out.put_u64_le(message.timestamp);
        out.put_u64_le(message.origin_timestamp);
        out.put_u32_le(message.user_headers.len() as u32);
        out.put_u32_le(message.payload.len() as u32);
        out.put_u64_le(0); // reserved
        out.put_slice(message.payload);
        out.put_slice(message.user_headers);
        let checksum = twox_hash::XxHash3_64::oneshot(&out[start + 8..]);
        out[start..start + 8].copy_from_slice(&checksum.to_le_bytes());
        count += 1;
    }
    out[prefix_at + 12..prefix_at + POLL_PREFIX_BYTES].copy_from_slice(&count.to_le_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::split_send_body;
    use crate::storage::batch;
    use iggy_binary_protocol::batch::BatchIntegrity;
    use iggy_binary_protocol::{WireEncode, WireIdentifier, WirePartitioning};

    /// A 0.10 SendMessages body: metadata, the index array, then messages
    /// with a 64-byte header each (ids left to the server).
    fn legacy_send(payloads: &[&[u8]]) -> Vec<u8> {
        let header = SendMessagesHeader {
            stream_id: WireIdentifier::numeric(1),
            topic_id: WireIdentifier::numeric(1),
            partitioning: WirePartitioning::PartitionId(0),
            messages_count: payloads.len() as u32,
        };
        let mut metadata = BytesMut::new();
        header.encode(&mut metadata);
        let mut body = (metadata.len() as u32).to_le_bytes().to_vec();
        body.extend_from_slice(&metadata);
        body.extend(std::iter::repeat_n(
            0u8,
            WIRE_MESSAGE_INDEX_SIZE * payloads.len(),
        ));
        for payload in payloads {
            body.extend_from_slice(&[0u8; 48]); // checksum, id, offset, timestamps
            body.extend_from_slice(&0u32.to_le_bytes()); // user headers length
            body.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            body.extend_from_slice(&0u64.to_le_bytes()); // reserved
            body.extend_from_slice(payload);
        }
        body
    }

    /// The send path checks only the layout of a re-encoded batch, on the
    /// strength of this: the adapter's batches carry right checksums.
    #[test]
    fn a_reencoded_send_carries_right_checksums() {
        let mut reencoded = BytesMut::new();
        reencode_send(&legacy_send(&[b"a", b"bb", &[7; 3000]]), &mut reencoded).unwrap();
        let (header, record) = split_send_body(&mut reencoded).unwrap();
        assert_eq!(header.messages_count, 3);
        batch::validate_incoming(record, 3, BatchIntegrity::Verify).unwrap();
    }
}
