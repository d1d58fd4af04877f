//! A client's TCP stream that acknowledges what it read at once.
//!
//! Why: the official SDK (0.11) writes each request in two writes — the
//! 256-byte header, then the body — and leaves Nagle's algorithm on unless
//! the application asks for `nodelay`. Nagle holds the body back until the
//! header is acknowledged, and Linux delays that acknowledgement (40 ms or
//! more) on a connection it considers interactive, which a request/reply
//! connection always is. With the SDK's defaults a send of 10 × 1 KB took
//! about 45 ms. Setting `TCP_QUICKACK` after a read sends the pending
//! acknowledgement immediately, so the body follows the header without the
//! wait. The kernel drops the flag again by itself, hence once per read: one
//! cheap system call per read; a 1 MB batch arrives in two or three.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A [`TcpStream`] that sets `TCP_QUICKACK` after every read that returned
/// bytes; writes pass through unchanged.
pub struct QuickAck {
    stream: TcpStream,
}

impl QuickAck {
    pub fn new(stream: TcpStream) -> Self {
        QuickAck { stream }
    }
}

impl AsyncRead for QuickAck {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            acknowledge_now(&self.stream);
        }
        read
    }
}

#[cfg(target_os = "linux")]
fn acknowledge_now(stream: &TcpStream) {
    // Failing only costs the delayed acknowledgement this avoids.
    let _ = stream.set_quickack(true);
}

#[cfg(not(target_os = "linux"))]
fn acknowledge_now(_stream: &TcpStream) {}

impl AsyncWrite for QuickAck {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
