//! Produce and consume a few messages with the official iggy SDK.
//!
//! `cargo run --example produce_consume -- iggy://iggy:iggy@127.0.0.1:8090`

use iggy::prelude::*;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "iggy://iggy:iggy@127.0.0.1:8090".into());
    let client = IggyClient::from_connection_string(&url)?;
    client.connect().await?;

    let stream = Identifier::named("demo")?;
    let topic = Identifier::named("greetings")?;
    if client.get_stream(&stream).await?.is_none() {
        client.create_stream("demo").await?;
        client
            .create_topic(
                &stream,
                "greetings",
                &TopicCreateOptions {
                    partitions_count: Some(3),
                    ..Default::default()
                },
            )
            .await?;
        println!("created stream `demo` with topic `greetings` (3 partitions)");
    }

    let mut messages = (1..=10)
        .map(|i| {
            IggyMessage::builder()
                .payload(bytes::Bytes::from(format!("hello #{i}")))
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let sent = client
        .send_messages(
            &stream,
            &topic,
            &Partitioning::messages_key_str("demo-key")?,
            &mut messages,
        )
        .await?;
    let confirmation = &sent.confirmations[0];
    println!(
        "sent 10 messages to partition {} at offset {}",
        confirmation.partition_id, confirmation.base_offset
    );

    let polled = client
        .poll_messages(
            &stream,
            &topic,
            Some(confirmation.partition_id),
            &Consumer::new(Identifier::named("demo-consumer")?),
            &PollingStrategy::next(),
            100,
            true,
        )
        .await?;
    for message in &polled.messages {
        println!(
            "  offset {:>3}: {}",
            message.header.offset,
            String::from_utf8_lossy(&message.payload)
        );
    }
    println!("consumed {} messages", polled.messages.len());
    Ok(())
}
