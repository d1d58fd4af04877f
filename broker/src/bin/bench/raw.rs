//! The loopback ceiling: what any broker on this machine's loopback could
//! reach at best with the same connections and write size.

use crate::report::Phase;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `connections` writers each push `bytes_each` bytes in `chunk`-sized
/// writes to readers that discard them.
pub async fn loopback(connections: u32, bytes_each: u64, chunk: usize) -> anyhow::Result<Phase> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let readers = tokio::spawn(async move {
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let (mut stream, _) = listener.accept().await?;
            tasks.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 256 * 1024];
                while stream.read(&mut buf).await? > 0 {}
                anyhow::Ok(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        anyhow::Ok(())
    });
    let start = Instant::now();
    let mut writers = Vec::new();
    for _ in 0..connections {
        writers.push(tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(address).await?;
            stream.set_nodelay(true)?;
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
