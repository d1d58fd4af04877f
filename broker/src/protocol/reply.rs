//! Building replies in the connection's reusable output buffer: a 256-byte
//! `ReplyHeader` followed by the body, or an `EvictionHeader` that ends the
//! session.

use bytes::{BufMut, BytesMut};
use iggy_binary_protocol::consensus::{
    Command, EvictionHeader, EvictionReason, HEADER_SIZE, Operation, ReplyHeader, RequestHeader,
};
use iggy_binary_protocol::version::{IGGY_PROTOCOL_VERSION, IGGY_PROTOCOL_VERSION_MIN};

/// Whether replies to `operation` start with a result section. Metadata
/// writes, consumer-offset writes and login are "result-framed": the body
/// begins `[count u32]`, 0 meaning success.
fn result_framed(operation: Operation) -> bool {
    operation.is_result_framed() || operation == Operation::Register
}

/// Clear `out` and reserve the header (and result section) so the handler
/// writes the body in place.
pub fn begin(out: &mut BytesMut, operation: Operation) {
    out.clear();
    out.resize(HEADER_SIZE, 0);
    if result_framed(operation) {
        out.put_u32_le(0);
    }
}

/// Seal the header with `status` (0 = OK). A failed request carries an empty
/// body, as the protocol requires. `commit` is the metadata log index this
/// broker has applied: the 0.11 SDK keeps the highest it has seen and
/// passes it along when it moves a consumer to another broker, which then
/// catches up that far first.
pub fn finish(out: &mut BytesMut, request: &RequestHeader, status: u32, commit: u64) {
    if status != 0 {
        out.truncate(HEADER_SIZE);
    }
    let header = ReplyHeader {
        command: Command::Reply,
        size: out.len() as u32,
        cluster: request.cluster,
        request_checksum: request.request_checksum,
        client: request.client,
        request: request.request,
        operation: request.operation,
        timestamp: request.timestamp,
        status,
        commit,
        ..Default::default()
    };
    out[..HEADER_SIZE].copy_from_slice(bytemuck::bytes_of(&header));
}

/// A session-terminal eviction for `client`.
pub fn eviction(client: u128, reason: EvictionReason) -> [u8; HEADER_SIZE] {
    // The header requires a non-zero client id so SDKs can route it.
    let client = client.max(1);
    let header = if reason == EvictionReason::IncompatibleProtocol {
        EvictionHeader::incompatible_protocol(
            0,
            0,
            0,
            client,
            IGGY_PROTOCOL_VERSION,
            IGGY_PROTOCOL_VERSION_MIN,
        )
    } else {
        EvictionHeader::new(0, 0, 0, client, reason)
    };
    bytemuck::bytes_of(&header)
        .try_into()
        .expect("eviction header is 256 bytes")
}
