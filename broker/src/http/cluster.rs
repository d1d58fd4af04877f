//! `GET /cluster/status`: the cluster as this broker sees it — every
//! broker with its health, role and progress, and which one leads the
//! metadata group. `GET /cluster/partitions`: every partition's replicas,
//! leader, epoch and in-sync set. For operators and the Kubernetes operator (the SDKs use
//! GetClusterMetadata); needs a token of a user who may read servers.

use super::api::{Api, ApiResult, Caller};
use crate::auth::Action;
use crate::cluster::roster::Status;
use axum::Json;
use axum::extract::State;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct ClusterStatus {
    /// `None` for a standalone broker.
    pub name: Option<String>,
    /// The broker answering.
    pub node_id: u32,
    /// The metadata group's leader as this broker sees it.
    pub leader: Option<u32>,
    pub term: u64,
    /// Joined, caught up, and in contact with a leader.
    pub ready: bool,
    pub nodes: Vec<NodeStatus>,
}

#[derive(Debug, Serialize)]
pub struct NodeStatus {
    pub id: u32,
    pub name: String,
    pub host: String,
    pub tcp_port: u16,
    pub quic_port: u16,
    pub http_port: u16,
    pub websocket_port: u16,
    /// `healthy`, `starting` or `unreachable`, as this broker sees it.
    pub status: &'static str,
    pub metadata_leader: bool,
    /// Metadata log index the broker has applied (as last reported).
    pub applied_index: u64,
    pub version: Option<String>,
}

pub async fn status(State(api): State<Api>, caller: Caller) -> ApiResult<Json<ClusterStatus>> {
    let broker = api.broker();
    broker.authorize(caller.user_id(), Action::ReadServers)?;
    let raft = broker.metadata.raft().metrics().borrow().clone();
    let leader = raft.current_leader.map(|id| id as u32);
    let versions = broker.metadata.read(|m| {
        m.nodes
            .iter()
            .map(|(id, node)| (*id, node.version.clone()))
            .collect::<std::collections::BTreeMap<_, _>>()
    });
    let me = broker.node_id();
    let nodes = broker
        .roster()
        .nodes
        .into_iter()
        .map(|node| NodeStatus {
            id: node.id,
            name: node.name,
            host: node.advertised.host,
            tcp_port: node.advertised.tcp,
            quic_port: node.advertised.quic,
            http_port: node.advertised.http,
            websocket_port: node.advertised.websocket,
            status: match node.status {
                Status::Healthy => "healthy",
                Status::Starting => "starting",
                Status::Unreachable => "unreachable",
            },
            metadata_leader: leader == Some(node.id),
            applied_index: if node.id == me {
                broker.metadata.applied_index()
            } else {
                broker
                    .peers
                    .as_ref()
                    .map_or(0, |p| p.status(node.id).applied)
            },
            version: versions.get(&node.id).cloned(),
        })
        .collect();
    Ok(Json(ClusterStatus {
        name: broker.cluster.as_ref().map(|c| c.name.clone()),
        node_id: me,
        leader,
        term: raft.current_term,
        ready: broker.is_ready(),
        nodes,
    }))
}

/// One partition's replication, as the metadata says.
#[derive(Debug, Serialize)]
pub struct PartitionStatus {
    pub stream_id: u32,
    pub topic_id: u32,
    pub partition_id: u32,
    pub replicas: Vec<u32>,
    pub leader: Option<u32>,
    pub leader_epoch: u32,
    pub in_sync: Vec<u32>,
    pub min_in_sync: u8,
    /// Committed offset as this broker knows it (it holds a replica).
    pub committed: Option<u64>,
}

pub async fn partitions(
    State(api): State<Api>,
    caller: Caller,
) -> ApiResult<Json<Vec<PartitionStatus>>> {
    let broker = api.broker();
    broker.authorize(caller.user_id(), Action::ReadServers)?;
    let partitions = broker.metadata.read(|m| {
        m.partitions()
            .map(|(key, topic, p)| PartitionStatus {
                stream_id: key.0,
                topic_id: key.1,
                partition_id: key.2,
                replicas: p.replicas.clone(),
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                in_sync: p.in_sync.clone(),
                min_in_sync: topic.settings.min_in_sync,
                committed: None,
            })
            .collect::<Vec<_>>()
    });
    let partitions = partitions
        .into_iter()
        .map(|mut status| {
            let key = (status.stream_id, status.topic_id, status.partition_id);
            status.committed = broker.partitions.get(key).map(|p| p.replica.committed());
            status
        })
        .collect();
    Ok(Json(partitions))
}
