//! Ping, stats, clients, cluster metadata, option catalogs.

use super::{Context, decode};
use crate::auth::Action;
use crate::clients::ClientInfo;
use crate::cluster::roster::RosterNode;
use crate::error::Result;
use bytes::BytesMut;
use iggy_binary_protocol::WireEncode;
use iggy_binary_protocol::requests::system::describe_options::DescribeOptionsRequest;
use iggy_binary_protocol::requests::system::get_client::GetClientRequest;
use iggy_binary_protocol::responses::clients::client_response::{
    ClientResponse, ConsumerGroupInfoResponse,
};
use iggy_binary_protocol::responses::clients::get_client::ClientDetailsResponse;
use iggy_binary_protocol::responses::system::get_cluster_metadata::{
    ClusterMetadataResponse, ClusterNodeResponse,
};
use iggy_binary_protocol::responses::system::get_stats::StatsResponse;

fn groups_of(ctx: &Context<'_>, client_id: u32) -> Vec<(u32, u32, u32)> {
    ctx.broker.metadata.read(|m| {
        m.streams
            .values()
            .flat_map(|s| s.topics.values().map(move |t| (s.id, t)))
            .flat_map(|(s, t)| {
                t.consumer_groups
                    .values()
                    .filter(|g| g.members.contains_key(&client_id))
                    .map(move |g| (s, t.id, g.id))
            })
            .collect()
    })
}

fn client_response(ctx: &Context<'_>, client: &ClientInfo) -> ClientResponse {
    ClientResponse {
        client_id: client.client_id,
        user_id: client.user_id.unwrap_or(u32::MAX),
        transport: client.transport as u8,
        address: client.address.to_string(),
        consumer_groups_count: groups_of(ctx, client.client_id).len() as u32,
    }
}

fn client_details(ctx: &Context<'_>, client: &ClientInfo) -> ClientDetailsResponse {
    ClientDetailsResponse {
        client: client_response(ctx, client),
        consumer_groups: groups_of(ctx, client.client_id)
            .into_iter()
            .map(
                |(stream_id, topic_id, group_id)| ConsumerGroupInfoResponse {
                    stream_id,
                    topic_id,
                    group_id,
                },
            )
            .collect(),
    }
}

pub fn get_me(ctx: &mut Context<'_>, out: &mut BytesMut) -> Result<()> {
    if let Some(client) = ctx.broker.clients.get(ctx.session.client_id) {
        client_details(ctx, &client).encode(out);
    }
    Ok(())
}

pub fn get_client(ctx: &mut Context<'_>, body: &[u8], out: &mut BytesMut) -> Result<()> {
    ctx.authorize(Action::ReadServers)?;
    let request: GetClientRequest = decode(body)?;
    if let Some(client) = ctx.broker.clients.get(request.client_id) {
        client_details(ctx, &client).encode(out);
    }
    Ok(())
}

pub fn get_clients(ctx: &mut Context<'_>, out: &mut BytesMut) -> Result<()> {
    ctx.authorize(Action::ReadServers)?;
    for client in ctx.broker.clients.list() {
        client_response(ctx, &client).encode(out);
    }
    Ok(())
}

/// The roster entry of a broker, as the wire carries it.
pub fn node_response(node: &RosterNode) -> ClusterNodeResponse {
    ClusterNodeResponse {
        name: node.name.clone(),
        ip: node.advertised.host.clone(),
        tcp_port: node.advertised.tcp,
        quic_port: node.advertised.quic,
        http_port: node.advertised.http,
        websocket_port: node.advertised.websocket,
        role: node.role as u8,
        status: node.status as u8,
    }
}

/// Every broker with its role and health (see `cluster::roster`); a
/// standalone broker is a cluster of one that leads everything.
pub fn get_cluster_metadata(ctx: &mut Context<'_>, out: &mut BytesMut) -> Result<()> {
    let roster = ctx.broker.roster();
    ClusterMetadataResponse {
        name: roster.name,
        nodes: roster.nodes.iter().map(node_response).collect(),
    }
    .encode(out);
    Ok(())
}

pub async fn get_stats(ctx: &mut Context<'_>, out: &mut BytesMut) -> Result<()> {
    ctx.authorize(Action::ReadServers)?;
    let broker = ctx.broker;
    let (streams, topics, partitions, groups) = broker.metadata.read(|m| {
        let topics: usize = m.streams.values().map(|s| s.topics.len()).sum();
        let all_topics = || m.streams.values().flat_map(|s| s.topics.values());
        let partitions: usize = all_topics().map(|t| t.partitions.len()).sum();
        let groups: usize = all_topics().map(|t| t.consumer_groups.len()).sum();
        (
            m.streams.len() as u32,
            topics as u32,
            partitions as u32,
            groups as u32,
        )
    });
    // Every partition, wherever it is held.
    let sum = crate::broker::stats::total(&broker.partition_stats(|_| true).await, |_| true);
    let (segments, size, messages) = (sum.segments, sum.size_bytes, sum.messages);
    StatsResponse {
        process_id: std::process::id(),
        cpu_usage: 0.0,
        total_cpu_usage: 0.0,
        memory_usage: 0,
        total_memory: 0,
        available_memory: 0,
        run_time: broker.started_at.elapsed().as_micros() as u64,
        start_time: broker.started_at_micros,
        read_bytes: 0,
        written_bytes: 0,
        messages_size_bytes: size,
        streams_count: streams,
        topics_count: topics,
        partitions_count: partitions,
        segments_count: segments,
        messages_count: messages,
        clients_count: broker.clients.len() as u32,
        consumer_groups_count: groups,
        hostname: std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default(),
        os_name: std::env::consts::OS.into(),
        os_version: String::new(),
        kernel_version: String::new(),
        iggy_server_version: env!("CARGO_PKG_VERSION").into(),
        iggy_server_semver: None,
        cache_metrics: Vec::new(),
        threads_count: 0,
        free_disk_space: 0,
        total_disk_space: 0,
    }
    .encode(out);
    Ok(())
}

/// The catalog of options each resource accepts. Topics accept upstream's
/// topic catalog and `replication_factor` (`topic_options`); streams and
/// users accept no options yet.
pub fn describe_options(body: &[u8], out: &mut BytesMut) -> Result<()> {
    use iggy_binary_protocol::responses::system::describe_options::{
        DescribeOptionsResponse, OptionDescriptor,
    };
    let request: DescribeOptionsRequest = decode(body)?;
    let scope = iggy_common::OptionsScope::from_code(request.scope)
        .map_err(|_| crate::error::Error::InvalidCommand)?;
    let keys: Vec<&str> = match scope {
        iggy_common::OptionsScope::Topic => iggy_common::TOPIC_OPTION_KEYS
            .iter()
            .chain(super::topic_options::EXTRA_TOPIC_OPTION_KEYS)
            .copied()
            .collect(),
        iggy_common::OptionsScope::Stream | iggy_common::OptionsScope::User => Vec::new(),
    };
    let entries = keys
        .iter()
        .map(|key| OptionDescriptor {
            key: iggy_binary_protocol::WireName::new(*key).expect("catalog keys are valid names"),
            // String kind: every key accepts a human-readable string value.
            kind: 2,
            default_value: bytes::Bytes::new(),
            description: String::new(),
        })
        .collect();
    DescribeOptionsResponse { entries }.encode(out);
    Ok(())
}
