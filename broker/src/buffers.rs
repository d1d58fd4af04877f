//! Reading frames into byte buffers without zeroing them first.
//!
//! `BytesMut::resize(n, 0)` followed by `read_exact` writes every byte of a
//! megabyte batch twice: once with zeros, once with the data. Reading into
//! the buffer's spare capacity instead writes it once.

use bytes::BytesMut;
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Append exactly `n` bytes from `reader` to `buf`. An end of stream before
/// `n` bytes is `UnexpectedEof` (what `read_exact` reports).
pub async fn read_appending<R: AsyncRead + Unpin + ?Sized>(
    reader: &mut R,
    buf: &mut BytesMut,
    n: usize,
) -> io::Result<()> {
    let target = buf.len() + n;
    buf.reserve(n);
    while buf.len() < target {
        let want = (target - buf.len()) as u64;
        if (&mut *reader).take(want).read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_exactly_n_bytes_and_leaves_the_rest() {
        let data: Vec<u8> = (0..=255).collect();
        let mut reader = &data[..];
        let mut buf = BytesMut::from(&b"ab"[..]);
        read_appending(&mut reader, &mut buf, 100).await.unwrap();
        assert_eq!(&buf[..2], b"ab");
        assert_eq!(&buf[2..], &data[..100]);
        assert_eq!(reader.len(), 156);
    }

    #[tokio::test]
    async fn a_short_stream_is_an_unexpected_eof() {
        let mut reader: &[u8] = b"abc";
        let mut buf = BytesMut::new();
        let err = read_appending(&mut reader, &mut buf, 4).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
