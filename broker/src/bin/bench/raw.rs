//! Ceilings of this machine's loopback: what any broker could reach at
//! best with the same connections and batch size — streaming one way
//! ([`loopback`]), and in the end-to-end producing consumer's round trips
//! ([`round_trips`]).

use crate::report::{Phase, histogram, record};
use std::net::SocketAddr;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What a round trip's short message (the acknowledgement, the poll
/// request) weighs.
const SHORT: usize = 16;

/// `connections` writers each push `bytes_each` bytes in `chunk`-sized
/// writes to readers that discard them.
pub async fn loopback(connections: u32, bytes_each: u64, chunk: usize) -> anyhow::Result<Phase> {
    let (address, readers) = serve_each(connections, |mut stream| async move {
        let mut buf = vec![0u8; 256 * 1024];
        while stream.read(&mut buf).await? > 0 {}
        Ok(())
    })
    .await?;
    let start = Instant::now();
    let mut writers = Vec::new();
    for _ in 0..connections {
        writers.push(tokio::spawn(async move {
            let mut stream = connect(address).await?;
            let data = vec![0x5Au8; chunk];
            let mut sent = 0u64;
            while sent < bytes_each {
                stream.write_all(&data).await?;
                sent += chunk as u64;
            }
            stream.shutdown().await?;
            anyhow::Ok(())
        }));
    }
    for writer in writers {
        writer.await??;
    }
    readers.await??;
    Ok(Phase {
        name: "raw-tcp (loopback ceiling)".into(),
        bytes: bytes_each * u64::from(connections),
        messages: 0,
        elapsed: start.elapsed(),
        latency: None,
    })
}

/// The end-to-end producing consumer's round with nothing but TCP and a
/// server that stores nothing: each of `connections` clients sends a batch
/// of `wire_bytes` and waits for a short answer, then sends a short request
/// and reads `wire_bytes` back, `rounds` times. Counted as the workload
/// counts (`counted_bytes` of payload a batch, both ways); latency per
/// round. The workload is a chain of waits and copies on both sides, not
/// a stream, so this is its ceiling on this machine, not [`loopback`]'s
/// rate. `wire_bytes` should be what the SDK puts on the wire, headers
/// included: whether a batch fits in a core's cache moves this ceiling by
/// half (on the 2-core EPYC VM, 1,000,000-byte batches ran at 1.5× the
/// rate of 1,064,000-byte ones).
pub async fn round_trips(
    connections: u32,
    rounds: u32,
    wire_bytes: usize,
    counted_bytes: usize,
) -> anyhow::Result<Phase> {
    let (address, server) = serve_each(connections, move |mut stream| async move {
        let mut received = vec![0u8; wire_bytes];
        let stored = vec![0x5Au8; wire_bytes];
        let mut request = [0u8; SHORT];
        for _ in 0..rounds {
            stream.read_exact(&mut received).await?;
            stream.write_all(&[0u8; SHORT]).await?;
            stream.read_exact(&mut request).await?;
            stream.write_all(&stored).await?;
        }
        Ok(())
    })
    .await?;
    let start = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..connections {
        clients.push(tokio::spawn(async move {
            let mut stream = connect(address).await?;
            let sent = vec![0x33u8; wire_bytes];
            let mut polled = vec![0u8; wire_bytes];
            let mut short = [0u8; SHORT];
            let mut latency = histogram();
            for _ in 0..rounds {
                let round = Instant::now();
                stream.write_all(&sent).await?;
                stream.read_exact(&mut short).await?;
                stream.write_all(&short).await?;
                stream.read_exact(&mut polled).await?;
                record(&mut latency, round)?;
            }
            anyhow::Ok(latency)
        }));
    }
    let mut latency = histogram();
    for client in clients {
        latency.add(client.await??)?;
    }
    let elapsed = start.elapsed();
    server.await??;
    Ok(Phase {
        name: "raw round trips (end-to-end floor)".into(),
        bytes: 2 * counted_bytes as u64 * u64::from(rounds) * u64::from(connections),
        messages: 0,
        elapsed,
        latency: Some(latency),
    })
}

/// A loopback listener that takes `connections` connections and runs
/// `serve` on each in its own task; the handle ends when all have.
async fn serve_each<F, Served>(
    connections: u32,
    serve: F,
) -> anyhow::Result<(SocketAddr, JoinHandle<anyhow::Result<()>>)>
where
    F: Fn(TcpStream) -> Served + Send + 'static,
    Served: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tasks.push(tokio::spawn(serve(stream)));
        }
        for task in tasks {
            task.await??;
        }
        anyhow::Ok(())
    });
    Ok((address, server))
}

/// A client connection as the benchmark's clients make them (`nodelay`).
async fn connect(address: SocketAddr) -> anyhow::Result<TcpStream> {
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    /// Every round moves a batch each way and is timed once; the counted
    /// bytes are the payload, not what went over the wire.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn round_trips_count_the_payload_both_ways_and_time_each_round() {
        let phase = super::round_trips(2, 5, 1_064, 1_000).await.unwrap();
        assert_eq!(phase.bytes, 2 * 1_000 * 5 * 2);
        assert_eq!(phase.latency.expect("timed rounds").len(), 2 * 5);
    }
}
