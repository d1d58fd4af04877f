//! Buffers a quiet connection gives back.
//!
//! A session reuses its request and reply buffers from one request to the
//! next, so it allocates nothing per request; the price is that each buffer
//! keeps the size of the largest request or reply it carried — a megabyte
//! or two for a client of 1 MB batches, for as long as it stays connected.
//! A connection that has carried nothing larger than [`KEPT_BYTES`] for
//! [`IDLE_RELEASE_AFTER`] gives back what grew past that; small requests do
//! not hold the memory (the SDKs send a heartbeat every few seconds, so a
//! connection is seldom without any request for long). Memory then follows
//! the connections that move large batches, not every connection that
//! ever did.

use bytes::BytesMut;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::time::{Instant, Sleep};

/// What a session's buffers start with, and keep through idleness.
pub const KEPT_BYTES: usize = 64 * 1024;

/// How long a connection carries nothing larger than [`KEPT_BYTES`], at
/// least, before giving back buffers grown past it (at most twice that).
pub const IDLE_RELEASE_AFTER: Duration = Duration::from_secs(5);

/// A session buffer of the kept size.
pub fn buffer() -> BytesMut {
    BytesMut::with_capacity(KEPT_BYTES)
}

/// The first bytes of the next request arriving on `reader` (read into its
/// buffer and left there). Errors and the end of the stream are left for
/// the frame reader that follows to report.
pub async fn first_bytes<R: AsyncBufRead + Unpin>(reader: &mut R) {
    let _ = reader.fill_buf().await;
}

/// One connection's watch. Its timer is armed only while the connection
/// holds grown buffers, and it is not renewed per request — a timer set
/// and cancelled around every request cost a pinned consumer about 10 % of
/// its rate on two cores — but once per period: a period that saw a large
/// request or reply is followed by another, one that saw none gives the
/// buffers back.
pub struct IdleWatch {
    period: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    busy: bool,
}

impl IdleWatch {
    pub fn new(period: Duration) -> Self {
        IdleWatch {
            period,
            timer: None,
            busy: false,
        }
    }

    /// Await `next` — the arrival of the next request — and give back any
    /// of `buffers` grown past [`KEPT_BYTES`] once a whole period has passed
    /// in which none of them held more than that. Called between requests,
    /// when `buffers` still hold the last request and reply (stale from now
    /// on, so they may be replaced). `next` is polled to its end, never
    /// dropped half-way, so it need not be cancel-safe.
    pub async fn awaiting_next_request<T>(
        &mut self,
        next: impl Future<Output = T>,
        buffers: &mut [&mut BytesMut],
    ) -> T {
        if buffers.iter().any(|b| b.len() > KEPT_BYTES) {
            self.busy = true;
        }
        let mut next = std::pin::pin!(next);
        loop {
            if !buffers.iter().any(|b| b.capacity() > KEPT_BYTES) {
                self.timer = None;
                return next.await;
            }
            let period = self.period;
            let timer = self
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(period)));
            tokio::select! {
                biased;
                arrived = &mut next => return arrived,
                () = timer.as_mut() => {
                    if std::mem::take(&mut self.busy) {
                        timer.as_mut().reset(Instant::now() + period);
                    } else {
                        for b in buffers.iter_mut().filter(|b| b.capacity() > KEPT_BYTES) {
                            **b = buffer();
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_millis(10);

    fn grown() -> BytesMut {
        let mut b = buffer();
        b.resize(2 << 20, 7);
        b.clear();
        b
    }

    /// The next request comes well after the idle time: the grown buffer is
    /// given back, and the arrival is returned.
    #[tokio::test]
    async fn an_idle_connection_gives_back_grown_buffers() {
        let mut large = grown();
        let late = async {
            tokio::time::sleep(IDLE * 5).await;
            42
        };
        let mut watch = IdleWatch::new(IDLE);
        let arrived = watch.awaiting_next_request(late, &mut [&mut large]).await;
        assert_eq!(arrived, 42);
        assert_eq!(large.capacity(), KEPT_BYTES);
    }

    /// Small requests (heartbeats) during the period do not keep grown
    /// buffers; a large one does, for the period after it.
    #[tokio::test]
    async fn only_large_requests_keep_grown_buffers() {
        let mut watch = IdleWatch::new(IDLE);
        let mut large = grown();
        // The last request was large: its period keeps the buffer.
        large.resize(KEPT_BYTES + 1, 1);
        let capacity = large.capacity();
        let late = tokio::time::sleep(IDLE + IDLE / 2);
        watch.awaiting_next_request(late, &mut [&mut large]).await;
        assert_eq!(large.capacity(), capacity);
        // Then only small ones: gone within two periods.
        for _ in 0..4 {
            large.clear();
            large.resize(100, 1);
            let heartbeat = tokio::time::sleep(IDLE / 2);
            watch
                .awaiting_next_request(heartbeat, &mut [&mut large])
                .await;
        }
        assert_eq!(large.capacity(), KEPT_BYTES);
    }

    /// A request that is already there: the buffers stay as they are.
    #[tokio::test]
    async fn a_busy_connection_keeps_its_buffers() {
        let mut large = grown();
        let capacity = large.capacity();
        let mut watch = IdleWatch::new(IDLE);
        let arrived = watch
            .awaiting_next_request(async { 7 }, &mut [&mut large])
            .await;
        assert_eq!(arrived, 7);
        assert_eq!(large.capacity(), capacity);
    }
}
