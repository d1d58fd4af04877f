//! A producer of numbered messages that keeps going through broker
//! restarts, and the check that every acknowledged one was kept once: what
//! the Kubernetes end-to-end test runs while it rolls, scales and deletes
//! broker pods. The official SDK with its default connection settings.
//!
//! ```text
//! numbered produce URL STREAM TOPIC ACKED_FILE STOP_FILE
//!     send message ids 1, 2, 3, … one send each (balanced over the
//!     partitions), until STOP_FILE exists; append each acknowledged id to
//!     ACKED_FILE. A failed send is not retried: its message may or may
//!     not be kept, but never twice.
//! numbered verify URL STREAM TOPIC ACKED_FILE
//!     read every partition from the start; fail unless every id in
//!     ACKED_FILE is there exactly once and no id is there twice.
//! ```

use iggy::prelude::*;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// A send that takes longer has an unknown outcome.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["produce", url, stream, topic, acked, stop] => {
            produce(url, stream, topic, Path::new(acked), Path::new(stop)).await
        }
        ["verify", url, stream, topic, acked] => verify(url, stream, topic, Path::new(acked)).await,
        _ => {
            eprintln!("usage: numbered produce URL STREAM TOPIC ACKED_FILE STOP_FILE");
            eprintln!("       numbered verify URL STREAM TOPIC ACKED_FILE");
            std::process::exit(2);
        }
    }
}

async fn connect(url: &str) -> anyhow::Result<IggyClient> {
    let client = IggyClient::from_connection_string(url)?;
    client.connect().await?;
    Ok(client)
}

async fn produce(
    url: &str,
    stream: &str,
    topic: &str,
    acked_file: &Path,
    stop: &Path,
) -> anyhow::Result<()> {
    let (stream, topic) = (Identifier::named(stream)?, Identifier::named(topic)?);
    let mut acked = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(acked_file)?;
    let mut client = None;
    let (mut sent, mut ok, mut unknown) = (0u64, 0u64, 0u64);
    let mut last_report = Instant::now();
    // Id 0 asks the broker for a generated id: start at 1.
    let mut id: u128 = 1;
    while !stop.exists() {
        let Some(current) = client.as_ref() else {
            match tokio::time::timeout(SEND_TIMEOUT, connect(url)).await {
                Ok(Ok(c)) => client = Some(c),
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
            continue;
        };
        let mut messages = vec![
            IggyMessage::builder()
                .id(id)
                .payload(bytes::Bytes::from(format!("message {id}")))
                .build()?,
        ];
        let partitioning = Partitioning::balanced();
        let send = current.send_messages(&stream, &topic, &partitioning, &mut messages);
        sent += 1;
        match tokio::time::timeout(SEND_TIMEOUT, send).await {
            Ok(Ok(_)) => {
                writeln!(acked, "{id}")?;
                ok += 1;
            }
            Ok(Err(e)) => {
                unknown += 1;
                eprintln!("send {id}: {e}");
                // Fresh connection: the SDK may be stuck on a gone broker.
                client = None;
            }
            Err(_) => {
                unknown += 1;
                eprintln!("send {id}: no answer in {SEND_TIMEOUT:?}");
                client = None;
            }
        }
        id += 1;
        if last_report.elapsed() >= Duration::from_secs(10) {
            println!("sent {sent}, acknowledged {ok}, unknown {unknown}");
            last_report = Instant::now();
        }
    }
    acked.flush()?;
    println!("stopped: sent {sent}, acknowledged {ok}, unknown {unknown}");
    Ok(())
}

async fn verify(url: &str, stream: &str, topic: &str, acked_file: &Path) -> anyhow::Result<()> {
    let client = connect(url).await?;
    let (stream_id, topic_id) = (Identifier::named(stream)?, Identifier::named(topic)?);
    let details = client
        .get_topic(&stream_id, &topic_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no topic {topic} in stream {stream}"))?;
    let consumer = Consumer::new(Identifier::named("numbered-verify")?);
    let mut stored: HashMap<u128, u32> = HashMap::new();
    for partition in 0..details.partitions_count {
        let mut offset = 0;
        loop {
            let polled = client
                .poll_messages(
                    &stream_id,
                    &topic_id,
                    Some(partition),
                    &consumer,
                    &PollingStrategy::offset(offset),
                    1000,
                    false,
                )
                .await?;
            let Some(last) = polled.messages.last() else {
                break;
            };
            offset = last.header.offset + 1;
            for message in &polled.messages {
                *stored.entry(message.header.id).or_default() += 1;
            }
        }
    }
    let acked: Vec<u128> = std::fs::read_to_string(acked_file)?
        .lines()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let lost: Vec<u128> = acked
        .iter()
        .copied()
        .filter(|id| !stored.contains_key(id))
        .collect();
    let mut twice: Vec<u128> = stored
        .iter()
        .filter(|(_, count)| **count > 1)
        .map(|(id, _)| *id)
        .collect();
    twice.sort_unstable();
    println!(
        "{} acknowledged, {} stored in {} partitions, {} lost, {} stored twice",
        acked.len(),
        stored.len(),
        details.partitions_count,
        lost.len(),
        twice.len()
    );
    if !lost.is_empty() || !twice.is_empty() || acked.is_empty() {
        anyhow::bail!(
            "acknowledged but lost: {:?}; stored twice: {:?}",
            &lost[..lost.len().min(20)],
            &twice[..twice.len().min(20)]
        );
    }
    Ok(())
}
