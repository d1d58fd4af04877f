//! A tour of a broker cluster through one address (a Kubernetes Service, or
//! any address that spreads connections over the brokers): create a stream
//! through the first connection, then open more connections — each may
//! reach another broker — and list the streams through each. Prints which
//! broker every connection reached (a client id's top byte is its broker's
//! node id) and the roster the brokers report.
//!
//! `cargo run --example cluster_tour -- iggy://iggy:iggy@10.96.0.20:8090 [connections]`
//!
//! Exits non-zero if a connection does not see the stream.

use iggy::prelude::*;
use std::collections::BTreeSet;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "iggy://iggy:iggy@127.0.0.1:8090".into());
    let connections: usize = args.next().map_or(Ok(6), |n| n.parse())?;
    let stream = format!("tour-{}", std::process::id());

    let first = IggyClient::from_connection_string(&url)?;
    first.connect().await?;
    let roster = first.get_cluster_metadata().await?;
    println!("cluster `{}`:", roster.name);
    for node in &roster.nodes {
        println!(
            "  {:<24} {:>15}:{:<5} {:?} {:?}",
            node.name, node.ip, node.endpoints.tcp, node.role, node.status
        );
    }
    first.create_stream(&stream).await?;
    let me = first.get_me().await?;
    println!(
        "connection 1 reached broker {}: created stream `{stream}`",
        me.client_id >> 24
    );

    let mut brokers = BTreeSet::from([me.client_id >> 24]);
    for n in 2..=connections {
        let client = IggyClient::from_connection_string(&url)?;
        client.connect().await?;
        let broker = client.get_me().await?.client_id >> 24;
        brokers.insert(broker);
        let names: Vec<String> = client
            .get_streams()
            .await?
            .into_iter()
            .map(|s| s.name)
            .collect();
        let seen = names.contains(&stream);
        println!(
            "connection {n} reached broker {broker}: {} `{stream}`",
            if seen { "lists" } else { "DOES NOT list" }
        );
        anyhow::ensure!(seen, "broker {broker} does not list stream `{stream}`");
    }
    first.delete_stream(&Identifier::named(&stream)?).await?;
    println!(
        "{connections} connections reached {} of {} brokers; every one listed the stream",
        brokers.len(),
        roster.nodes.len()
    );
    Ok(())
}
