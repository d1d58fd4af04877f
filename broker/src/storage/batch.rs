//! Batch records: the unit that is received, stored, replicated and served.
//!
//! A batch record is the 0.11 wire batch unchanged — a 256-byte batch header
//! followed by 48-byte message frames — so the broker writes exactly the bytes
//! a producer sent (after stamping offset and time) and serves polls from the
//! same bytes. This module stamps, validates and slices batch records in place;
//! it performs no I/O.

use iggy_binary_protocol::WireError;
use iggy_binary_protocol::batch::{
    BATCH_HEADER_SIZE, BATCH_MESSAGE_HEADER_SIZE, BatchHeader, BatchIntegrity,
    calculate_batch_checksum, decode_batch_slice_with,
};

/// Largest payload of one message, as upstream (64 MB).
pub const MAX_PAYLOAD_BYTES: u32 = 64_000_000;
/// Largest user-headers block of one message, as upstream.
pub const MAX_USER_HEADERS_BYTES: u32 = 100_000;

/// Why a batch was refused.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("malformed batch: {0}")]
    Malformed(#[from] WireError),
    #[error("batch declares {declared} messages but carries {found}")]
    CountMismatch { declared: u32, found: u32 },
    #[error("empty batch")]
    Empty,
    #[error("message payload is empty")]
    EmptyPayload,
    #[error("message payload of {0} bytes exceeds the limit")]
    PayloadTooBig(u32),
    #[error("user headers of {0} bytes exceed the limit")]
    HeadersTooBig(u32),
    #[error("message frame at index {index} has offset delta {found}")]
    BadOffsetDelta { index: u32, found: u32 },
}

/// Validate a producer's batch: layout, per-message limits, contiguous
/// offset deltas `0..n` and, with [`BatchIntegrity::Verify`], every frame
/// checksum and the batch checksum.
///
/// Returns the decoded header. Validation reads the batch once; nothing is
/// copied.
pub fn validate_incoming(
    bytes: &[u8],
    declared_count: u32,
    integrity: BatchIntegrity,
) -> Result<BatchHeader, BatchError> {
    let batch = decode_batch_slice_with(bytes, integrity)?;
    if batch.header.total_size() != bytes.len() {
        return Err(BatchError::Malformed(WireError::Validation(
            "batch length does not match the request body".into(),
        )));
    }
    if batch.message_count() == 0 {
        return Err(BatchError::Empty);
    }
    if batch.message_count() != declared_count {
        return Err(BatchError::CountMismatch {
            declared: declared_count,
            found: batch.message_count(),
        });
    }
    for (index, message) in batch.iter().enumerate() {
        let index = index as u32;
        let header = &message.header;
        if header.offset_delta != index {
            return Err(BatchError::BadOffsetDelta {
                index,
                found: header.offset_delta,
            });
        }
        if header.payload_length == 0 {
            return Err(BatchError::EmptyPayload);
        }
        if header.payload_length > MAX_PAYLOAD_BYTES {
            return Err(BatchError::PayloadTooBig(header.payload_length));
        }
        if header.user_headers_length > MAX_USER_HEADERS_BYTES {
            return Err(BatchError::HeadersTooBig(header.user_headers_length));
        }
    }
    Ok(batch.header)
}

/// Stamp the server-owned header fields of a validated batch in place and
/// reseal its checksum. Frames are untouched (their checksums do not cover
/// these fields).
pub fn stamp(bytes: &mut [u8], partition_id: u32, base_offset: u64, base_timestamp: u64) {
    let mut header = BatchHeader::decode(bytes).expect("batch was validated before stamping");
    header.partition_id = u64::from(partition_id);
    header.base_offset = base_offset;
    header.base_timestamp = base_timestamp;
    let blob = &bytes[BATCH_HEADER_SIZE..header.total_size()];
    header.batch_checksum = calculate_batch_checksum(&header, blob);
    header.encode_into(&mut bytes[..BATCH_HEADER_SIZE]);
}

/// Byte range and count of the frames of a batch whose offsets fall in
/// `[from, to]`.
struct FrameRange {
    start: usize,
    end: usize,
    count: u32,
}

fn frames_in_range(blob: &[u8], base_offset: u64, from: u64, to: u64) -> FrameRange {
    let mut range = FrameRange {
        start: blob.len(),
        end: blob.len(),
        count: 0,
    };
    let mut position = 0;
    while position + BATCH_MESSAGE_HEADER_SIZE <= blob.len() {
        let frame = &blob[position..];
        let delta = u32::from_le_bytes(frame[24..28].try_into().expect("4 bytes"));
        let headers_len = u32::from_le_bytes(frame[32..36].try_into().expect("4 bytes")) as usize;
        let payload_len = u32::from_le_bytes(frame[36..40].try_into().expect("4 bytes")) as usize;
        let size = BATCH_MESSAGE_HEADER_SIZE + headers_len + payload_len;
        let offset = base_offset + u64::from(delta);
        if offset > to {
            break;
        }
        if offset >= from {
            if range.count == 0 {
                range.start = position;
            }
            range.end = position + size;
            range.count += 1;
        }
        position += size;
    }
    range
}

/// Narrow the batch record at the start of `buf` to the messages with offsets
/// in `[from, to]`, in place. Returns the new record length and its message
/// count (0 when no message of the batch is in range).
///
/// The base offset is kept and frames keep their deltas, so every message's
/// absolute offset is unchanged; only the header's length, count and
/// checksum are rewritten.
pub fn slice_in_place(buf: &mut [u8], from: u64, to: u64) -> (usize, u32) {
    let mut header = BatchHeader::decode(buf).expect("stored batch has a valid header");
    let total = header.total_size();
    if header.message_count > 0 {
        let first = header.base_offset;
        let last = first + u64::from(header.message_count) - 1;
        if from <= first && to >= last {
            return (total, header.message_count);
        }
    }
    let range = frames_in_range(&buf[BATCH_HEADER_SIZE..total], header.base_offset, from, to);
    if range.count == 0 {
        return (0, 0);
    }
    let len = range.end - range.start;
    buf.copy_within(
        BATCH_HEADER_SIZE + range.start..BATCH_HEADER_SIZE + range.end,
        BATCH_HEADER_SIZE,
    );
    header.message_count = range.count;
    header.batch_length = (BATCH_HEADER_SIZE + len) as u64;
    header.batch_checksum =
        calculate_batch_checksum(&header, &buf[BATCH_HEADER_SIZE..BATCH_HEADER_SIZE + len]);
    header.encode_into(&mut buf[..BATCH_HEADER_SIZE]);
    (BATCH_HEADER_SIZE + len, range.count)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::BytesMut;
    use iggy_binary_protocol::WireIdentifier;
    use iggy_binary_protocol::WirePartitioning;
    use iggy_binary_protocol::batch::decode_batch_slice;
    use iggy_binary_protocol::requests::messages::send_messages::{
        RawMessage, SendMessagesEncoder,
    };

    /// A batch record exactly as the official encoder produces it.
    pub fn encoded_batch(payloads: &[&[u8]]) -> Vec<u8> {
        let messages: Vec<RawMessage<'_>> = payloads
            .iter()
            .enumerate()
            .map(|(i, payload)| RawMessage {
                id: i as u128 + 1,
                origin_timestamp: 1_000 + i as u64,
                headers: None,
                payload,
            })
            .collect();
        let mut buf = BytesMut::new();
        SendMessagesEncoder::encode(
            &mut buf,
            &WireIdentifier::numeric(0),
            &WireIdentifier::numeric(0),
            &WirePartitioning::Balanced,
            &messages,
        )
        .unwrap();
        let metadata_len = u32::from_le_bytes(buf[0..4].try_into().unwrap()) as usize;
        buf[4 + metadata_len..].to_vec()
    }

    #[test]
    fn validated_and_stamped_batch_verifies() {
        let mut batch = encoded_batch(&[b"a", b"bb", b"ccc"]);
        validate_incoming(&batch, 3, BatchIntegrity::Verify).unwrap();
        stamp(&mut batch, 2, 100, 555);
        let decoded = decode_batch_slice(&batch).unwrap();
        assert_eq!(decoded.header.base_offset, 100);
        assert_eq!(decoded.header.base_timestamp, 555);
        assert_eq!(decoded.header.partition_id, 2);
    }

    #[test]
    fn corrupt_payload_is_rejected() {
        let mut batch = encoded_batch(&[b"hello"]);
        let last = batch.len() - 1;
        batch[last] ^= 0xff;
        assert!(matches!(
            validate_incoming(&batch, 1, BatchIntegrity::Verify),
            Err(BatchError::Malformed(
                WireError::InvalidMessageChecksum { .. }
            ))
        ));
    }

    #[test]
    fn wrong_declared_count_is_rejected() {
        let batch = encoded_batch(&[b"a", b"b"]);
        assert!(matches!(
            validate_incoming(&batch, 3, BatchIntegrity::Verify),
            Err(BatchError::CountMismatch { .. })
        ));
    }

    #[test]
    fn truncated_batch_is_rejected() {
        let batch = encoded_batch(&[b"abc", b"def"]);
        for len in [0, 10, 255, 256, batch.len() - 1] {
            assert!(
                validate_incoming(&batch[..len], 2, BatchIntegrity::Verify).is_err(),
                "len {len}"
            );
        }
    }

    #[test]
    fn slicing_keeps_absolute_offsets_and_a_valid_checksum() {
        let mut batch = encoded_batch(&[b"m0", b"m1", b"m2", b"m3"]);
        stamp(&mut batch, 0, 10, 1);
        let (len, count) = slice_in_place(&mut batch, 11, 12);
        assert_eq!(count, 2);
        let decoded = decode_batch_slice(&batch[..len]).unwrap();
        let payloads: Vec<_> = decoded.iter().map(|m| m.payload.to_vec()).collect();
        assert_eq!(payloads, vec![b"m1".to_vec(), b"m2".to_vec()]);
        let offsets: Vec<_> = decoded
            .iter()
            .map(|m| decoded.header.base_offset + u64::from(m.header.offset_delta))
            .collect();
        assert_eq!(offsets, vec![11, 12]);
    }

    #[test]
    fn slicing_outside_the_batch_yields_nothing() {
        let mut batch = encoded_batch(&[b"m0"]);
        stamp(&mut batch, 0, 10, 1);
        assert_eq!(slice_in_place(&mut batch, 11, 20).1, 0);
    }
}
