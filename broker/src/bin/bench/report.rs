//! What a measured phase produced, and how it is printed.

use hdrhistogram::Histogram;
use std::time::Duration;

/// One measured phase: bytes and messages moved in `elapsed`, and the
/// latency of each request when it has one (a send, a poll, a round).
pub struct Phase {
    pub name: String,
    pub bytes: u64,
    pub messages: u64,
    pub elapsed: Duration,
    pub latency: Option<Histogram<u64>>,
}

impl Phase {
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }

    pub fn print(&self) {
        print!(
            "{:<34} {:>8.1} MB/s {:>10.0} msg/s",
            self.name,
            self.mb_per_s(),
            self.messages as f64 / self.elapsed.as_secs_f64()
        );
        if let Some(h) = &self.latency {
            print!(
                "   p50 {:.2}  p95 {:.2}  p99 {:.2}  p999 {:.2}  max {:.2} ms",
                millis(h, 0.5),
                millis(h, 0.95),
                millis(h, 0.99),
                millis(h, 0.999),
                h.max() as f64 / 1000.0
            );
        }
        println!();
    }
}

fn millis(h: &Histogram<u64>, quantile: f64) -> f64 {
    h.value_at_quantile(quantile) as f64 / 1000.0
}

/// Latencies in microseconds, up to a minute.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

/// Record the time since `since` in `h` (at least 1 µs).
pub fn record(h: &mut Histogram<u64>, since: std::time::Instant) -> anyhow::Result<()> {
    h.record(since.elapsed().as_micros().max(1) as u64)?;
    Ok(())
}

/// Sum per-actor results into one phase.
pub fn merge(
    name: impl Into<String>,
    elapsed: Duration,
    parts: Vec<Actor>,
) -> anyhow::Result<Phase> {
    let mut latency = histogram();
    let (mut bytes, mut messages) = (0, 0);
    for part in parts {
        latency.add(part.latency)?;
        bytes += part.bytes;
        messages += part.messages;
    }
    Ok(Phase {
        name: name.into(),
        bytes,
        messages,
        elapsed,
        latency: Some(latency),
    })
}

/// What one producer or consumer did.
pub struct Actor {
    pub latency: Histogram<u64>,
    pub bytes: u64,
    pub messages: u64,
}

impl Actor {
    pub fn new() -> Self {
        Actor {
            latency: histogram(),
            bytes: 0,
            messages: 0,
        }
    }
}
