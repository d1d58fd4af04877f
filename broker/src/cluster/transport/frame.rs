//! Inter-broker framing, after the handshake:
//!
//! `[length u32][kind u8][request id u64][meta length u32][meta][body]`
//!
//! (little-endian; `length` counts everything after itself). `meta` is the
//! JSON of a [`super::messages`] request or response — self-describing, so
//! a broker of the next version can add fields and message types that an
//! older one skips or refuses by name. `body` carries raw bytes (a client
//! request or reply, a snapshot chunk) that are never re-encoded.

use crate::buffers::read_appending;
use bytes::{Buf, Bytes, BytesMut};
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const KIND_REQUEST: u8 = 1;
pub const KIND_RESPONSE: u8 = 2;

const PREFIX_BYTES: usize = 4 + 1 + 8 + 4;

pub struct Frame {
    pub kind: u8,
    pub request_id: u64,
    pub meta: Bytes,
    pub body: Bytes,
}

impl Frame {
    /// The frame as three pieces — prefix, meta, body — that a vectored
    /// write sends without copying the body into a new buffer.
    pub fn to_buf(&self) -> impl Buf + use<> {
        let length = 1 + 8 + 4 + self.meta.len() + self.body.len();
        let mut prefix = [0u8; PREFIX_BYTES];
        prefix[..4].copy_from_slice(&(length as u32).to_le_bytes());
        prefix[4] = self.kind;
        prefix[5..13].copy_from_slice(&self.request_id.to_le_bytes());
        prefix[13..].copy_from_slice(&(self.meta.len() as u32).to_le_bytes());
        Bytes::copy_from_slice(&prefix)
            .chain(self.meta.clone())
            .chain(self.body.clone())
    }
}

/// Read one frame; `Ok(None)` when the peer closed the connection between
/// frames. A frame longer than `max_bytes` is an error (the connection is
/// then dropped).
pub async fn read<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_bytes: usize,
) -> io::Result<Option<Frame>> {
    let mut prefix = [0u8; PREFIX_BYTES];
    match reader.read_exact(&mut prefix[..4]).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let length = u32::from_le_bytes(prefix[..4].try_into().expect("4 bytes")) as usize;
    if !(PREFIX_BYTES - 4..=max_bytes).contains(&length) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("inter-broker frame of {length} bytes"),
        ));
    }
    reader.read_exact(&mut prefix[4..]).await?;
    let kind = prefix[4];
    let request_id = u64::from_le_bytes(prefix[5..13].try_into().expect("8 bytes"));
    let meta_len = u32::from_le_bytes(prefix[13..17].try_into().expect("4 bytes")) as usize;
    let rest = length - (PREFIX_BYTES - 4);
    if meta_len > rest {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "inter-broker frame meta longer than the frame",
        ));
    }
    let mut buf = BytesMut::new();
    read_appending(reader, &mut buf, rest).await?;
    let body = buf.split_off(meta_len).freeze();
    Ok(Some(Frame {
        kind,
        request_id,
        meta: buf.freeze(),
        body,
    }))
}

pub async fn write<W: AsyncWrite + Unpin>(writer: &mut W, frame: &Frame) -> io::Result<()> {
    writer.write_all_buf(&mut frame.to_buf()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_oversize_ones_are_refused() {
        let frame = Frame {
            kind: KIND_REQUEST,
            request_id: 7,
            meta: Bytes::from_static(b"{\"type\":\"Ping\"}"),
            body: Bytes::from_static(b"raw"),
        };
        let mut bytes = Vec::new();
        write(&mut bytes, &frame).await.unwrap();
        let mut reader = &bytes[..];
        let back = read(&mut reader, 1024).await.unwrap().unwrap();
        assert_eq!(back.request_id, 7);
        assert_eq!(&back.meta[..], &frame.meta[..]);
        assert_eq!(&back.body[..], b"raw");
        let mut reader = &bytes[..];
        assert!(read(&mut reader, 8).await.is_err());
        let mut empty: &[u8] = &[];
        assert!(read(&mut empty, 1024).await.unwrap().is_none());
    }
}
