//! What this broker answers to its peers (the replica listener's handler),
//! and the pings that tell it which peers are alive.

use super::transport::{Handler, Lane, Request, Response};
use super::{PING_INTERVAL, PeerReport, Peers};
use crate::broker::Broker;
use crate::command::{Context, Kind, dispatch};
use crate::metadata::Member;
use crate::session::Session;
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long a forwarded request waits for this broker to catch up with the
/// metadata the forwarding broker had applied.
const CATCH_UP: Duration = Duration::from_secs(5);

pub struct PeerService {
    broker: Arc<Broker>,
}

impl PeerService {
    pub fn new(broker: Arc<Broker>) -> Self {
        Self { broker }
    }

    /// Run a client command forwarded by a peer, as `user_id` for `member`.
    async fn client(
        &self,
        from: u32,
        code: u32,
        user_id: u32,
        member: Member,
        applied: u64,
        body: Bytes,
    ) -> (Response, Bytes) {
        let broker = &self.broker;
        let forwardable =
            crate::command::Command::from_code(code).is_some_and(|c| c.kind() == Kind::Partition);
        if !forwardable {
            return (
                Response::Unsupported {
                    message: format!("command {code} is not forwarded between brokers"),
                },
                Bytes::new(),
            );
        }
        if let Err(e) = broker
            .metadata
            .wait_applied(applied, Instant::now() + CATCH_UP)
            .await
        {
            return (Response::Client { status: e.code() }, Bytes::new());
        }
        let address = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
        let mut session = Session::new(member.client_id, address);
        session.user_id = Some(user_id);
        session.acting_for = Some(member);
        session.forwarded = true;
        let mut ctx = Context {
            broker,
            session: &mut session,
        };
        let mut body = body
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        let mut out = BytesMut::new();
        match dispatch(&mut ctx, code, &mut body, &mut out).await {
            Ok(()) => (Response::Client { status: 0 }, out.freeze()),
            Err(e) => {
                tracing::debug!(from, code, "forwarded request failed: {e}");
                (Response::Client { status: e.code() }, Bytes::new())
            }
        }
    }
}

impl PeerService {
    /// A follower's fetch: served if this broker leads the partition.
    async fn fetch(
        &self,
        from: u32,
        fetch: crate::replication::leader::Fetch,
    ) -> (Response, Bytes) {
        let broker = &self.broker;
        let local = broker.partitions.get(fetch.partition);
        let role = local
            .as_ref()
            .and_then(|p| crate::replication::role(broker, p));
        match (local, role) {
            (Some(partition), Some(role)) => {
                crate::replication::leader::serve_fetch(
                    partition,
                    role,
                    broker.node_id(),
                    from,
                    fetch,
                )
                .await
            }
            _ => (
                Response::NotPartitionLeader {
                    leader: None,
                    epoch: 0,
                },
                Bytes::new(),
            ),
        }
    }
}

#[async_trait::async_trait]
impl Handler for PeerService {
    async fn handle(&self, from: u32, request: Request, body: Bytes) -> (Response, Bytes) {
        let broker = &self.broker;
        let raft = broker.metadata.raft();
        let response = match request {
            Request::AppendEntries(rpc) => Response::AppendEntries(raft.append_entries(rpc).await),
            Request::Vote(_) if broker.catching_up.load(Ordering::Acquire) => {
                tracing::info!(
                    candidate = from,
                    "vote refused: this broker started with an empty metadata log and has not caught up"
                );
                Response::Vote(Ok(super::catching_up::abstain(raft)))
            }
            Request::Vote(rpc) => Response::Vote(raft.vote(rpc).await),
            Request::InstallSnapshot(mut rpc) => {
                rpc.data = body.to_vec();
                Response::InstallSnapshot(raft.install_snapshot(rpc).await)
            }
            Request::Propose(envelope) => broker.metadata.propose_for_peer(envelope).await,
            Request::ReadIndex => match broker.metadata.read_index().await {
                Some(index) if broker.metadata.is_leader() => Response::ReadIndex { index },
                _ => Response::NotLeader {
                    leader: broker.metadata.leader(),
                },
            },
            Request::Client {
                code,
                user_id,
                member,
                applied,
            } => {
                return self
                    .client(from, code, user_id, member, applied, body)
                    .await;
            }
            Request::Fetch(fetch) => return self.fetch(from, fetch).await,
            Request::PartitionStats { keys } => Response::PartitionStats {
                stats: broker.local_stats(&keys),
            },
            Request::Membership(change) => {
                if broker.metadata.is_leader() {
                    match super::membership::carry_out(broker, change).await {
                        Ok(changed) => Response::Membership {
                            refused: None,
                            changed,
                        },
                        Err(why) => Response::Membership {
                            refused: Some(why),
                            changed: false,
                        },
                    }
                } else {
                    Response::NotLeader {
                        leader: broker.metadata.leader(),
                    }
                }
            }
            Request::Removed => match super::membership::record_removal(broker) {
                Ok(()) => Response::Membership {
                    refused: None,
                    changed: true,
                },
                Err(e) => Response::Failed {
                    message: format!("recording the removal: {e}"),
                },
            },
            Request::Ping {
                epoch,
                applied,
                low_on_space,
            } => {
                if let Some(peers) = &broker.peers {
                    let report = PeerReport {
                        epoch,
                        applied,
                        low_on_space,
                    };
                    peers.heard_from(from, Some(report));
                }
                let me = report(broker);
                Response::Pong {
                    epoch: me.epoch,
                    applied: me.applied,
                    leader: broker.metadata.leader(),
                    low_on_space: me.low_on_space,
                }
            }
        };
        (response, Bytes::new())
    }
}

/// What this broker says of itself to its peers.
fn report(broker: &Broker) -> PeerReport {
    PeerReport {
        epoch: broker.metadata.epoch(),
        applied: broker.metadata.applied_index(),
        low_on_space: broker.space.is_low(),
    }
}

/// A ping carrying this broker's [`report`].
pub fn ping(broker: &Broker) -> Request {
    let me = report(broker);
    Request::Ping {
        epoch: me.epoch,
        applied: me.applied,
        low_on_space: me.low_on_space,
    }
}

/// Ping every peer every [`PING_INTERVAL`] (runs until dropped). The
/// answers keep the roster's health current.
pub async fn ping_forever(broker: Arc<Broker>, peers: Arc<Peers>) {
    let mut ticker = tokio::time::interval(PING_INTERVAL);
    loop {
        ticker.tick().await;
        for peer in peers.ids() {
            let (broker, peers) = (broker.clone(), peers.clone());
            tokio::spawn(async move {
                let request = ping(&broker);
                match peers
                    .call(
                        peer,
                        Lane::Control,
                        &request,
                        Bytes::new(),
                        PING_INTERVAL * 2,
                    )
                    .await
                {
                    Ok((
                        Response::Pong {
                            epoch,
                            applied,
                            low_on_space,
                            ..
                        },
                        _,
                    )) => {
                        let report = PeerReport {
                            epoch,
                            applied,
                            low_on_space,
                        };
                        peers.heard_from(peer, Some(report));
                    }
                    Ok(_) => {}
                    Err(_) => peers.ping_failed(peer),
                }
            });
        }
    }
}
