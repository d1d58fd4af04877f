//! The legacy framing of the 0.10 protocol generation, still spoken by
//! every application built on the `iggy` 0.10 SDK:
//!
//! - request `[length u32][code u32][payload]`, where `length` counts the
//!   code and the payload (never less than 4);
//! - reply `[status u32][length u32][payload]`, where `length` counts the
//!   payload only, and an error always carries an empty payload.
//!
//! There are no sessions, evictions or result sections. A connection is
//! recognised as legacy from its first eight bytes (see [`is_legacy_prefix`]).

use bytes::{BufMut, BytesMut};
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Size of the request header (`length`, `code`) and of the reply header
/// (`status`, `length`).
pub const HEADER_BYTES: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum LegacyFrameError {
    #[error("connection closed")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    #[error("legacy frame of {size} bytes exceeds the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("legacy frame length {0} is smaller than its command code")]
    TooShort(u32),
}

/// Whether the first eight bytes of a connection are a legacy request
/// header: a length of at least 4 and a command code the 0.10 generation
/// knows. A 0.11 client starts with a 256-byte header whose first bytes are
/// a checksum (zero from the Rust SDK), so it never matches. An oversize
/// length is still legacy: [`read_request`] refuses it and the connection
/// closes at once instead of waiting for a 256-byte header.
pub fn is_legacy_prefix(prefix: &[u8; HEADER_BYTES]) -> bool {
    let length = u32::from_le_bytes(prefix[0..4].try_into().expect("4 bytes"));
    let code = u32::from_le_bytes(prefix[4..8].try_into().expect("4 bytes"));
    length >= 4 && iggy_binary_protocol_010::lookup_command(code).is_some()
}

/// Read one request into `body` (reused between calls); returns its code.
pub async fn read_request<R: AsyncRead + Unpin>(
    reader: &mut R,
    body: &mut BytesMut,
    max_request_bytes: usize,
) -> Result<u32, LegacyFrameError> {
    let mut header = [0u8; HEADER_BYTES];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(LegacyFrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let length = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes"));
    let code = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    if length < 4 {
        return Err(LegacyFrameError::TooShort(length));
    }
    if length as usize > max_request_bytes {
        return Err(LegacyFrameError::TooLarge {
            size: length as usize,
            max: max_request_bytes,
        });
    }
    body.clear();
    crate::buffers::read_appending(reader, body, length as usize - 4).await?;
    Ok(code)
}

/// Clear `out` and reserve the reply header; the handler appends the body.
pub fn begin(out: &mut BytesMut) {
    out.clear();
    out.put_bytes(0, HEADER_BYTES);
}

/// Seal the reply with `status`. A failed request carries no body. A body of
/// exactly one byte cannot be sent (0.10 clients skip bodies of length ≤ 1
/// without reading them), so it is dropped; no reply of ours is one byte.
pub fn finish(out: &mut BytesMut, status: u32) {
    if status != 0 || out.len() == HEADER_BYTES + 1 {
        out.truncate(HEADER_BYTES);
    }
    let length = (out.len() - HEADER_BYTES) as u32;
    out[0..4].copy_from_slice(&status.to_le_bytes());
    out[4..8].copy_from_slice(&length.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_legacy_requests_and_not_0_11_headers() {
        let ping = [4, 0, 0, 0, 1, 0, 0, 0];
        assert!(is_legacy_prefix(&ping));
        let login = [28, 0, 0, 0, 38, 0, 0, 0];
        assert!(is_legacy_prefix(&login));
        // The 0.11 SDK starts with a zero checksum.
        assert!(!is_legacy_prefix(&[0; 8]));
        // Unknown code (0.11-only LoginRegister = 40), or too short.
        assert!(!is_legacy_prefix(&[28, 0, 0, 0, 40, 0, 0, 0]));
        assert!(!is_legacy_prefix(&[3, 0, 0, 0, 1, 0, 0, 0]));
    }

    #[test]
    fn errors_and_one_byte_bodies_are_sent_empty() {
        let mut out = BytesMut::new();
        begin(&mut out);
        out.put_slice(b"xyz");
        finish(&mut out, 0);
        assert_eq!(&out[..], &[0, 0, 0, 0, 3, 0, 0, 0, b'x', b'y', b'z']);
        begin(&mut out);
        out.put_slice(b"xyz");
        finish(&mut out, 1009);
        assert_eq!(&out[..], &[0xf1, 3, 0, 0, 0, 0, 0, 0]);
    }
}
