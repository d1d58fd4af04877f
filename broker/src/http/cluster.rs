//! `GET /cluster/status`: the cluster as this broker sees it — every
//! broker with its health, role and progress, and which one leads the
//! metadata group. `GET /cluster/partitions`: every partition's replicas,
//! leader, epoch and in-sync set. And the changes the operator drives:
//! reassign a partition, move its leadership, drain a broker, and ask
//! whether restarting one is safe (`docs/admin-api.md`). For operators and the Kubernetes operator (the SDKs use
//! GetClusterMetadata); needs a token of a user who may read servers.

use super::api::{Api, ApiResult, Caller};
use crate::auth::Action;
use crate::cluster::roster::Status;
use crate::metadata::{MetadataCommand, PartitionKey};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize)]
pub struct ClusterStatus {
    /// `None` for a standalone broker.
    pub name: Option<String>,
    /// Tells the cluster apart from another formed under its name
    /// (`cluster::uid`); absent until it is named (or, on a lone
    /// founder, chosen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The broker answering.
    pub node_id: u32,
    /// The metadata group's leader as this broker sees it.
    pub leader: Option<u32>,
    pub term: u64,
    /// Joined, caught up, and in contact with a leader.
    pub ready: bool,
    /// The newest metadata commands every member reads, so the cluster
    /// writes (below a broker's own during a rolling upgrade).
    pub metadata_version: u32,
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
    /// The newest metadata commands it reads, as it registered.
    pub metadata_version: Option<u32>,
    /// A voter of the metadata group (false: still joining).
    pub voter: bool,
    /// The zone it registered with (`cluster.zone`; absent: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Its data directory runs low on space (as last heard): it hands its
    /// partitions' leadership to replicas with room and is given none.
    pub low_on_space: bool,
}

pub async fn status(State(api): State<Api>, caller: Caller) -> ApiResult<Json<ClusterStatus>> {
    let broker = api.broker();
    broker.authorize(caller.user_id(), Action::ReadServers)?;
    let raft = broker.metadata.raft().metrics().borrow().clone();
    let leader = raft.current_leader.map(|id| id as u32);
    let registered = broker.metadata.read(|m| {
        m.nodes
            .iter()
            .map(|(id, node)| (*id, node.clone()))
            .collect::<std::collections::BTreeMap<_, _>>()
    });
    let me = broker.node_id();
    let voters = broker.brokers();
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
            voter: voters.contains(&node.id),
            applied_index: if node.id == me {
                broker.metadata.applied_index()
            } else {
                broker
                    .peers
                    .as_ref()
                    .map_or(0, |p| p.status(node.id).applied)
            },
            version: registered.get(&node.id).map(|n| n.version.clone()),
            metadata_version: registered.get(&node.id).map(|n| n.metadata_version),
            zone: registered
                .get(&node.id)
                .map(|n| n.zone.clone())
                .filter(|zone| !zone.is_empty()),
            low_on_space: broker.peers.as_ref().is_some_and(|peers| {
                !crate::replication::controller::has_room(broker, peers, node.id)
            }),
        })
        .collect();
    Ok(Json(ClusterStatus {
        name: broker.cluster.as_ref().map(|c| c.name.clone()),
        // The one the handshake checks: applied, or chosen by a lone
        // founder ahead of that.
        uid: broker
            .peers
            .as_ref()
            .and_then(|peers| peers.uid().get())
            .map(crate::cluster::uid::format_uid),
        node_id: me,
        leader,
        term: raft.current_term,
        ready: broker.is_ready(),
        metadata_version: broker.metadata.metadata_version(),
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
    /// The topic's replication factor (what every partition has, or is
    /// moving to).
    pub replication_factor: u8,
    pub min_in_sync: u8,
    /// The replica set a reassignment in progress moves to.
    pub reassigning: Option<Vec<u32>>,
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
                replication_factor: topic.settings.replication_factor,
                min_in_sync: topic.settings.min_in_sync,
                reassigning: p.reassigning.clone(),
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

/// A topic named in a path: stream and topic by id or name.
fn topic_key(
    broker: &crate::broker::Broker,
    stream: &str,
    topic: &str,
) -> Result<(u32, u32), crate::error::Error> {
    let ident = |text: &str| match text.parse() {
        Ok(id) => crate::metadata::Ident::Id(id),
        Err(_) => crate::metadata::Ident::Name(text.to_string()),
    };
    broker
        .metadata
        .read(|m| m.resolve_topic(&ident(stream), &ident(topic)))
}

/// A partition named in a path: stream and topic by id or name.
fn partition_key(
    broker: &crate::broker::Broker,
    (stream, topic, partition): &(String, String, u32),
) -> Result<crate::metadata::PartitionKey, crate::error::Error> {
    let (s, t) = topic_key(broker, stream, topic)?;
    broker
        .metadata
        .read(|m| m.partition((s, t, *partition)).is_some())
        .then_some((s, t, *partition))
        .ok_or(crate::error::Error::PartitionNotFound(*partition))
}

#[derive(Debug, Deserialize)]
pub struct Reassign {
    pub replicas: Vec<u32>,
}

/// `POST /cluster/partitions/{stream}/{topic}/{partition}/reassign`: move
/// the partition to `replicas` (the new ones copy the log, then the old
/// ones are dropped; follow it on `GET /cluster/partitions`).
pub async fn reassign(
    State(api): State<Api>,
    caller: Caller,
    Path(path): Path<(String, String, u32)>,
    Json(body): Json<Reassign>,
) -> ApiResult<StatusCode> {
    let broker = api.broker();
    broker.authorize(caller.user_id(), Action::ManageServers)?;
    let partition = partition_key(broker, &path)?;
    broker
        .metadata
        .write(MetadataCommand::ReassignReplicas {
            partition,
            replicas: body.replicas,
        })
        .await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Debug, Deserialize)]
pub struct ChangeFactor {
    pub factor: u8,
}

#[derive(Debug, Serialize)]
pub struct FactorChange {
    pub stream_id: u32,
    pub topic_id: u32,
    pub factor: u8,
    pub min_in_sync: u8,
    /// Partitions moving to new replica sets (follow them on
    /// `GET /cluster/partitions`; `reassigning` clears when done).
    pub moves: Vec<PartitionMove>,
}

/// `POST /cluster/topics/{stream}/{topic}/replication-factor`: give every
/// partition of the topic `factor` replicas, as one metadata change (new
/// replicas copy the log and join; removed ones go once the rest are in
/// sync). Refused while a partition of the topic is being reassigned.
pub async fn change_replication_factor(
    State(api): State<Api>,
    caller: Caller,
    Path((stream, topic)): Path<(String, String)>,
    Json(body): Json<ChangeFactor>,
) -> ApiResult<(StatusCode, Json<FactorChange>)> {
    let broker = api.broker();
    broker.authorize(caller.user_id(), Action::ManageServers)?;
    let (stream_id, topic_id) = topic_key(broker, &stream, &topic)?;
    if body.factor == 0 {
        return Err(
            crate::error::Error::InvalidReplicaSet("a replication factor of 0".into()).into(),
        );
    }
    // Checked against the number of brokers.
    let factor = broker.replication_factor(Some(body.factor))?;
    let min_in_sync = broker.min_in_sync(factor);
    broker
        .metadata
        .write(MetadataCommand::ChangeReplicationFactor {
            stream_id,
            topic_id,
            factor,
            min_in_sync,
        })
        .await?;
    let moves = broker.metadata.read(|m| {
        m.topic(stream_id, topic_id)
            .map(|t| {
                t.partitions
                    .iter()
                    .filter_map(|p| {
                        Some(PartitionMove {
                            stream_id,
                            topic_id,
                            partition_id: p.id,
                            replicas: p.reassigning.clone()?,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(FactorChange {
            stream_id,
            topic_id,
            factor,
            min_in_sync,
            moves,
        }),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RebalanceRequest {
    /// Most replica-set changes and leader moves started by this call
    /// (default 4): a few at a time, so the cluster keeps serving.
    pub max_moves: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct Rebalance {
    /// Partitions still moving from earlier calls (nothing new is planned
    /// while any move).
    pub in_progress: usize,
    /// Replica sets changed by this call.
    pub moves: Vec<PartitionMove>,
    /// Leadership handed to a partition's preferred replica by this call.
    pub leader_moves: Vec<LeaderMove>,
    /// Nothing moving and nothing left to move.
    pub balanced: bool,
}

#[derive(Debug, Serialize)]
pub struct LeaderMove {
    pub stream_id: u32,
    pub topic_id: u32,
    pub partition_id: u32,
    pub leader: u32,
}

/// `POST /cluster/rebalance`: spread replicas and leaders evenly over the
/// brokers (`replication::rebalance`), a few moves per call; call again
/// until `balanced`.
pub async fn rebalance(
    State(api): State<Api>,
    caller: Caller,
    body: Option<Json<RebalanceRequest>>,
) -> ApiResult<(StatusCode, Json<Rebalance>)> {
    use crate::replication::rebalance::{Assignment, rebalance};
    let broker = api.broker();
    broker.authorize(caller.user_id(), Action::ManageServers)?;
    let max_moves = body.and_then(|b| b.0.max_moves).unwrap_or(4).max(1);
    let nodes = broker.brokers();
    // Plan on one view of the metadata.
    let (in_progress, changes, preferred) = broker.metadata.read(|m| {
        let in_progress = m
            .partitions()
            .filter(|(_, _, p)| p.reassigning.is_some())
            .count();
        let assignments: Vec<Assignment> = m
            .partitions()
            .map(|(key, _, p)| Assignment {
                partition: key,
                replicas: p.replicas.clone(),
            })
            .collect();
        let changes = if in_progress == 0 {
            rebalance(&assignments, &nodes, |n| {
                crate::metadata::placement::domain(m, n)
            })
        } else {
            Vec::new()
        };
        // Partitions not led by their preferred (first) replica although
        // it is in sync: hand leadership back — only to a broker that may
        // lead by the rule elections follow (alive, registered since its
        // last restart), never to one just back, nor to one running low
        // on disk space (it would hand leadership on at once).
        let me = broker.node_id();
        let may_lead = |node: u32| {
            broker.peers.as_ref().is_some_and(|peers| {
                use crate::replication::controller::{has_room, may_lead};
                may_lead(m, me, peers, node) && has_room(broker, peers, node)
            })
        };
        let preferred: Vec<(PartitionKey, u32, u32, Vec<u32>)> = m
            .partitions()
            .filter(|(key, _, p)| {
                p.reassigning.is_none()
                    && !changes.iter().any(|c| c.partition == *key)
                    && p.replicas.first().is_some_and(|first| {
                        p.leader != Some(*first) && p.in_sync.contains(first) && may_lead(*first)
                    })
            })
            .map(|(key, _, p)| (key, p.leader_epoch, p.replicas[0], p.in_sync.clone()))
            .collect();
        (in_progress, changes, preferred)
    });
    let mut moves = Vec::new();
    for change in changes.into_iter().take(max_moves) {
        broker
            .metadata
            .write(MetadataCommand::ReassignReplicas {
                partition: change.partition,
                replicas: change.replicas.clone(),
            })
            .await?;
        let (stream_id, topic_id, partition_id) = change.partition;
        moves.push(PartitionMove {
            stream_id,
            topic_id,
            partition_id,
            replicas: change.replicas,
        });
    }
    let mut leader_moves = Vec::new();
    for (partition, epoch, leader, in_sync) in preferred
        .into_iter()
        .take(max_moves.saturating_sub(moves.len()))
    {
        broker
            .metadata
            .write(MetadataCommand::ElectLeader {
                partition,
                epoch,
                leader,
                in_sync,
            })
            .await?;
        let (stream_id, topic_id, partition_id) = partition;
        leader_moves.push(LeaderMove {
            stream_id,
            topic_id,
            partition_id,
            leader,
        });
    }
    let balanced = in_progress == 0 && moves.is_empty() && leader_moves.is_empty();
    Ok((
        StatusCode::ACCEPTED,
        Json(Rebalance {
            in_progress,
            moves,
            leader_moves,
            balanced,
        }),
    ))
}

#[derive(Debug, Deserialize)]
pub struct MoveLeader {
    pub leader: u32,
}

/// `POST /cluster/partitions/{stream}/{topic}/{partition}/leader`: make an
/// in-sync replica the partition's leader (in the next epoch).
pub async fn move_leader(
    State(api): State<Api>,
    caller: Caller,
    Path(path): Path<(String, String, u32)>,
    Json(body): Json<MoveLeader>,
) -> ApiResult<StatusCode> {
    let broker = api.broker();
    broker.authorize(caller.user_id(), Action::ManageServers)?;
    let partition = partition_key(broker, &path)?;
    let (epoch, leader, in_sync) = broker.metadata.read(|m| {
        let p = m.partition(partition).expect("resolved");
        (p.leader_epoch, p.leader, p.in_sync.clone())
    });
    if leader == Some(body.leader) {
        return Ok(StatusCode::OK);
    }
    let low = broker
        .peers
        .as_ref()
        .is_some_and(|peers| !crate::replication::controller::has_room(broker, peers, body.leader));
    if low {
        return Err(crate::error::Error::InvalidReplicaSet(format!(
            "broker {} is running low on disk space: it would hand the leadership of partition {} on at once",
            body.leader, partition.2
        ))
        .into());
    }
    if !in_sync.contains(&body.leader) {
        return Err(crate::error::Error::InvalidReplicaSet(format!(
            "broker {} is not an in-sync replica of partition {} ({in_sync:?})",
            body.leader, partition.2
        ))
        .into());
    }
    broker
        .metadata
        .write(MetadataCommand::ElectLeader {
            partition,
            epoch,
            leader: body.leader,
            in_sync,
        })
        .await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Debug, Serialize)]
pub struct SafeToRestart {
    pub node: u32,
    pub safe: bool,
    /// What would break (empty when safe).
    pub reasons: Vec<String>,
    /// Partitions of one replica: unavailable while it restarts, whenever
    /// that is; they do not make a restart unsafe.
    pub unreplicated: Vec<String>,
}

/// `GET /cluster/nodes/{id}/safe-to-restart`: whether restarting broker
/// `id` now keeps every partition led and at its minimum of in-sync
/// replicas.
pub async fn safe_to_restart(
    State(api): State<Api>,
    caller: Caller,
    Path(node): Path<u32>,
) -> ApiResult<Json<SafeToRestart>> {
    let broker = api.broker();
    broker.authorize(caller.user_id(), Action::ReadServers)?;
    let me = broker.node_id();
    let is_down = |n: u32| n != me && broker.peers.as_ref().is_some_and(|peers| peers.is_down(n));
    let impact = broker
        .metadata
        .read(|m| crate::replication::plan::restart_impact(m, node, is_down));
    Ok(Json(SafeToRestart {
        node,
        safe: impact.blockers.is_empty(),
        reasons: impact.blockers,
        unreplicated: impact.unreplicated,
    }))
}

#[derive(Debug, Serialize)]
pub struct Drain {
    pub node: u32,
    /// Partitions moving, with their new replicas.
    pub moves: Vec<PartitionMove>,
}

#[derive(Debug, Serialize)]
pub struct PartitionMove {
    pub stream_id: u32,
    pub topic_id: u32,
    pub partition_id: u32,
    pub replicas: Vec<u32>,
}

/// `POST /cluster/nodes/{id}/drain`: move every replica (and so every
/// leadership) off broker `id`.
pub async fn drain(
    State(api): State<Api>,
    caller: Caller,
    Path(node): Path<u32>,
) -> ApiResult<(StatusCode, Json<Drain>)> {
    let broker = api.broker();
    broker.authorize(caller.user_id(), Action::ManageServers)?;
    let nodes = broker.brokers();
    let moves = broker
        .metadata
        .read(|m| crate::replication::plan::drain(m, node, &nodes))
        .map_err(crate::error::Error::InvalidReplicaSet)?;
    for (partition, replicas) in &moves {
        broker
            .metadata
            .write(MetadataCommand::ReassignReplicas {
                partition: *partition,
                replicas: replicas.clone(),
            })
            .await?;
    }
    let moves = moves
        .into_iter()
        .map(
            |((stream_id, topic_id, partition_id), replicas)| PartitionMove {
                stream_id,
                topic_id,
                partition_id,
                replicas,
            },
        )
        .collect();
    Ok((StatusCode::ACCEPTED, Json(Drain { node, moves })))
}

/// `DELETE /cluster/nodes/{id}`: take broker `id` out of the cluster (the
/// metadata group's membership). Refused (409) while it holds a partition
/// replica: drain it first. Removing a broker that is not a member is a
/// no-op (`removed: false`, still 200), so the call can be repeated.
pub async fn remove_node(
    State(api): State<Api>,
    caller: Caller,
    Path(node): Path<u32>,
) -> ApiResult<(StatusCode, Json<Removal>)> {
    use crate::cluster::membership::{MembershipChange, request};
    let broker = api.broker();
    broker.authorize(caller.user_id(), Action::ManageServers)?;
    let deadline = std::time::Instant::now() + broker.metadata.write_timeout() * 2;
    Ok(
        match request(broker, MembershipChange::Remove { node }, deadline).await {
            Ok(changed) => (
                StatusCode::OK,
                Json(Removal {
                    node,
                    removed: changed,
                    reason: (!changed).then(|| format!("broker {node} is not a member")),
                }),
            ),
            Err(reason) => (
                StatusCode::CONFLICT,
                Json(Removal {
                    node,
                    removed: false,
                    reason: Some(reason),
                }),
            ),
        },
    )
}

#[derive(Debug, Serialize)]
pub struct Removal {
    pub node: u32,
    /// Whether this call removed it.
    pub removed: bool,
    /// Why not (it still holds replicas; it is not a member).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
