//! The roster: every broker of the cluster with the addresses clients
//! reach it at, its health and its role, as GetClusterMetadata reports it.
//!
//! Role: every broker serves every request (forwarding what it does not
//! hold), so the broker a client is connected to is that client's leader.
//! The roster marks the broker answering as `Leader` when it is healthy,
//! and the others `Follower`. The 0.11 SDK then stays on the broker it
//! reached (no redirect when it dialed the broker's advertised address,
//! one redirect to that same broker otherwise) instead of crowding every
//! client onto one broker. Which broker leads the metadata group is
//! reported separately (HTTP `/cluster/status`, metrics). See
//! `docs/decisions.md`.

use crate::broker::Broker;
use crate::metadata::Advertised;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader = 0,
    Follower = 1,
}

/// Upstream's `ClusterNodeStatus` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Healthy = 0,
    Starting = 1,
    Unreachable = 3,
}

#[derive(Debug, Clone)]
pub struct RosterNode {
    pub id: u32,
    pub name: String,
    pub advertised: Advertised,
    pub role: Role,
    pub status: Status,
}

pub struct Roster {
    pub name: String,
    pub nodes: Vec<RosterNode>,
}

impl Broker {
    /// The roster as this broker sees it.
    pub fn roster(&self) -> Roster {
        let Some(cluster) = &self.cluster else {
            // A standalone broker is a cluster of one that leads everything.
            return Roster {
                name: "single-node".into(),
                nodes: vec![RosterNode {
                    id: 0,
                    name: "iggy-broker-0".into(),
                    advertised: self.advertised(),
                    role: Role::Leader,
                    status: Status::Healthy,
                }],
            };
        };
        let registered = self.metadata.read(|m| m.nodes.clone());
        let me = self.node_id();
        // The metadata group's members (and this broker, joining or not).
        let mut members = self.metadata.members();
        members.insert(me);
        let nodes = members
            .into_iter()
            .filter_map(|id| cluster.peer(id))
            .map(|node| {
                let known = registered.get(&node.id);
                let status = if node.id == me {
                    if self.is_ready() {
                        Status::Healthy
                    } else {
                        Status::Starting
                    }
                } else {
                    let healthy = self.peers.as_ref().is_some_and(|p| p.is_healthy(node.id));
                    match (healthy, known) {
                        (true, Some(_)) => Status::Healthy,
                        (true, None) => Status::Starting,
                        (false, _) => Status::Unreachable,
                    }
                };
                let advertised = if node.id == me {
                    self.advertised()
                } else {
                    known
                        .map(|n| n.advertised.clone())
                        .unwrap_or_else(|| Advertised {
                            host: node.host.clone(),
                            ..Default::default()
                        })
                };
                RosterNode {
                    id: node.id,
                    name: format!("{}-{}", cluster.name, node.id),
                    advertised,
                    role: if node.id == me && status == Status::Healthy {
                        Role::Leader
                    } else {
                        Role::Follower
                    },
                    status,
                }
            })
            .collect();
        Roster {
            name: cluster.name.clone(),
            nodes,
        }
    }

    /// The roster entry of broker `id`.
    pub fn roster_node(&self, id: u32) -> Option<RosterNode> {
        self.roster().nodes.into_iter().find(|n| n.id == id)
    }
}
