//! `MetadataService`: how the rest of the broker reads and changes the
//! replicated metadata.
//!
//! - Reads are local ([`MetadataService::read`]): a closure over the
//!   state under a read lock, held only for the closure.
//! - Writes ([`MetadataService::write`]) are proposed to the metadata
//!   group's leader — this broker's Raft if it leads, else the leader's over
//!   the transport — and return once committed **and applied here**, so a
//!   connection always reads its own writes. A write that cannot commit in
//!   `cluster.write_timeout` (no leader, no quorum) fails with
//!   [`Error::NotCommitted`]; retried with the same proposal id it is
//!   applied at most once.
//! - [`MetadataService::sync`] makes a follower's later reads see every
//!   write committed before it (a read index from the leader).

use super::command::{Applied, Envelope, MetadataCommand, ProposalId};
use super::state::MetadataState;
use crate::cluster::Peers;
use crate::cluster::raft::Raft;
use crate::cluster::raft::state_machine::SharedState;
use crate::cluster::transport::{Lane, Request, Response};
use crate::error::{Error, Result};
use bytes::Bytes;
use openraft::error::{ClientWriteError, RaftError};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Pause between attempts while the group elects a leader.
const RETRY_PAUSE: Duration = Duration::from_millis(25);
/// How long a read waits for the leader's read index before it is served
/// from this broker's (possibly older) state.
const READ_INDEX_TIMEOUT: Duration = Duration::from_secs(1);

pub struct MetadataService {
    state: SharedState,
    raft: Raft,
    node_id: u32,
    epoch: u64,
    next_seq: AtomicU64,
    peers: Option<Arc<Peers>>,
    write_timeout: Duration,
    /// A leader not acknowledged by a majority for this long is cut off.
    contact_timeout: Duration,
}

/// Why one attempt to commit did not produce an answer.
enum Attempt {
    /// Try again (leader unknown or changed, peer unreachable).
    Retry(String),
}

impl MetadataService {
    pub fn new(
        state: SharedState,
        raft: Raft,
        node_id: u32,
        epoch: u64,
        peers: Option<Arc<Peers>>,
        write_timeout: Duration,
        contact_timeout: Duration,
    ) -> Self {
        Self {
            contact_timeout,
            state,
            raft,
            node_id,
            epoch,
            next_seq: AtomicU64::new(1),
            peers,
            write_timeout,
        }
    }

    /// How long a write waits to commit (`cluster.write_timeout`).
    pub fn write_timeout(&self) -> Duration {
        self.write_timeout
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    pub fn node_id(&self) -> u32 {
        self.node_id
    }

    /// This process's incarnation (random per start).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Read the metadata.
    pub fn read<T>(&self, f: impl FnOnce(&MetadataState) -> T) -> T {
        f(&self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// A new proposal id (one per client request; a replay of the request
    /// reuses it).
    pub fn proposal(&self) -> ProposalId {
        ProposalId {
            node: self.node_id,
            epoch: self.epoch,
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
        }
    }

    pub fn leader(&self) -> Option<u32> {
        self.raft
            .metrics()
            .borrow()
            .current_leader
            .map(|id| id as u32)
    }

    pub fn is_leader(&self) -> bool {
        self.leader() == Some(self.node_id)
    }

    /// The group's voters and learners (brokers on their way in), as this
    /// broker knows them.
    pub fn members(&self) -> BTreeSet<u32> {
        self.raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .nodes()
            .map(|(id, _)| *id as u32)
            .collect()
    }

    /// The newest metadata commands every member reads
    /// ([`super::command::METADATA_VERSION`]): what this broker may propose.
    pub fn metadata_version(&self) -> u32 {
        let members = self.members();
        self.read(|state| state.metadata_version_of(members))
    }

    /// Whether this broker is in contact with a working metadata group: it
    /// knows a leader, and if it is the leader itself, a majority
    /// acknowledged it lately (a leader cut off from the others keeps its
    /// title until it hears of a new term, but cannot commit anything).
    pub fn in_contact(&self) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        match metrics.current_leader {
            None => false,
            // A group of one is its own majority.
            Some(_) if self.peers.is_none() => true,
            Some(leader) if leader as u32 == self.node_id => metrics
                .millis_since_quorum_ack
                .is_some_and(|ms| u128::from(ms) < self.contact_timeout.as_millis()),
            Some(_) => true,
        }
    }

    /// Index of the last entry applied here.
    pub fn applied_index(&self) -> u64 {
        self.raft
            .metrics()
            .borrow()
            .last_applied
            .map_or(0, |id| id.index)
    }

    /// Commit `command` under a fresh proposal id.
    pub async fn write(&self, command: MetadataCommand) -> Result<Applied> {
        self.write_as(self.proposal(), command).await
    }

    /// Commit `command` as `proposal`; returns once it is applied here.
    pub async fn write_as(
        &self,
        proposal: ProposalId,
        command: MetadataCommand,
    ) -> Result<Applied> {
        self.write_until(proposal, command, Instant::now() + self.write_timeout)
            .await
    }

    /// Commit `command` as `proposal`, trying until `deadline`.
    pub async fn write_until(
        &self,
        proposal: ProposalId,
        command: MetadataCommand,
        deadline: Instant,
    ) -> Result<Applied> {
        // A member that cannot read the entry could not apply it: its copy
        // of the metadata would stop there (a rolling upgrade half done).
        let needed = command.since_version();
        if needed > 0 {
            let understood = self.metadata_version();
            if understood < needed {
                return Err(Error::NotCommitted(format!(
                    "not every broker of the cluster reads this metadata change yet (it needs \
                     metadata version {needed}, the cluster is at {understood}; a rolling \
                     upgrade under way?)"
                )));
            }
        }
        let envelope = Envelope { proposal, command };
        loop {
            let last = match self.attempt(&envelope, deadline).await {
                Ok((index, response)) => {
                    self.wait_applied(index, deadline).await?;
                    return response.map_err(Error::from);
                }
                Err(Attempt::Retry(why)) => why,
            };
            if Instant::now() + RETRY_PAUSE >= deadline {
                tracing::warn!(
                    ?envelope.proposal,
                    "metadata change not committed in time ({last}); this broker may be cut off from the cluster's majority"
                );
                return Err(Error::NotCommitted(format!(
                    "metadata change not committed in time ({last}); this broker may be cut off from the cluster's majority"
                )));
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    async fn attempt(
        &self,
        envelope: &Envelope,
        deadline: Instant,
    ) -> Result<(u64, super::command::Response), Attempt> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match self.leader() {
            Some(leader) if leader == self.node_id => {
                match tokio::time::timeout(remaining, self.raft.client_write(envelope.clone()))
                    .await
                {
                    Ok(Ok(written)) => Ok((written.log_id.index, written.data)),
                    Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
                        Err(Attempt::Retry("leadership moved".into()))
                    }
                    Ok(Err(e)) => Err(Attempt::Retry(e.to_string())),
                    Err(_) => Err(Attempt::Retry(
                        "this broker leads but no majority confirmed the change".into(),
                    )),
                }
            }
            Some(leader) => {
                let Some(peers) = &self.peers else {
                    return Err(Attempt::Retry("no peers".into()));
                };
                let request = Request::Propose(envelope.clone());
                // One attempt gives up when the group elects another
                // leader (the one asked may be gone without a word: a
                // cut-off peer drops packets instead of refusing them).
                let call = peers.call(
                    leader,
                    Lane::Control,
                    &request,
                    Bytes::new(),
                    remaining.min(self.write_timeout),
                );
                let mut metrics = self.raft.metrics();
                let answer = tokio::select! {
                    answer = call => answer,
                    _ = metrics.wait_for(|m| m.current_leader != Some(u64::from(leader))) => {
                        return Err(Attempt::Retry(format!("node {leader} no longer leads")));
                    }
                };
                match answer {
                    Ok((Response::Proposed { index, response }, _)) => Ok((index, response)),
                    Ok((Response::NotLeader { .. }, _)) => {
                        Err(Attempt::Retry(format!("node {leader} no longer leads")))
                    }
                    Ok((other, _)) => Err(Attempt::Retry(format!("unexpected answer {other:?}"))),
                    Err(e) => Err(Attempt::Retry(e.to_string())),
                }
            }
            None => {
                let mut metrics = self.raft.metrics();
                let _ = tokio::time::timeout(
                    remaining,
                    metrics.wait_for(|m| m.current_leader.is_some()),
                )
                .await;
                Err(Attempt::Retry(
                    "no metadata leader (election in progress?)".into(),
                ))
            }
        }
    }

    /// Serve a proposal from a peer (this broker should lead).
    pub async fn propose_for_peer(&self, envelope: Envelope) -> Response {
        if !self.is_leader() {
            return Response::NotLeader {
                leader: self.leader(),
            };
        }
        match tokio::time::timeout(self.write_timeout, self.raft.client_write(envelope)).await {
            Ok(Ok(written)) => Response::Proposed {
                index: written.log_id.index,
                response: written.data,
            },
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Response::NotLeader {
                    leader: f.leader_id.map(|id| id as u32),
                }
            }
            Ok(Err(e)) => Response::Failed {
                message: e.to_string(),
            },
            Err(_) => Response::Failed {
                message: "not committed in time: no majority".into(),
            },
        }
    }

    /// Wait until this broker has applied `index`.
    pub async fn wait_applied(&self, index: u64, deadline: Instant) -> Result<()> {
        let mut metrics = self.raft.metrics();
        let applied = metrics.wait_for(|m| m.last_applied.is_some_and(|id| id.index >= index));
        match tokio::time::timeout_at(deadline.into(), applied).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(Error::NotCommitted("the metadata group stopped".into())),
            Err(_) => Err(Error::NotCommitted(format!(
                "committed at index {index} but not yet applied on this broker"
            ))),
        }
    }

    /// The leader's read index: every write committed before this call is
    /// at or below it (confirmed by a quorum, so a deposed leader cannot
    /// answer).
    pub async fn read_index(&self) -> Option<u64> {
        let confirmed = tokio::time::timeout(READ_INDEX_TIMEOUT, self.raft.ensure_linearizable())
            .await
            .ok()?
            .ok()?;
        Some(confirmed.map_or(0, |id| id.index))
    }

    /// Make later reads here see every write committed before this call.
    /// The leader's own state already does; a follower asks the leader for
    /// its read index and waits to apply it. When the leader cannot be
    /// reached in time, reads are served from this broker's state as it is.
    pub async fn sync(&self) {
        let Some(leader) = self.leader() else { return };
        if leader == self.node_id {
            return;
        }
        let Some(peers) = &self.peers else { return };
        let deadline = Instant::now() + READ_INDEX_TIMEOUT;
        let index = match peers
            .call(
                leader,
                Lane::Control,
                &Request::ReadIndex,
                Bytes::new(),
                READ_INDEX_TIMEOUT,
            )
            .await
        {
            Ok((Response::ReadIndex { index }, _)) => index,
            Ok(_) | Err(_) => {
                tracing::debug!("read index unavailable; serving local metadata");
                return;
            }
        };
        if self.wait_applied(index, deadline).await.is_err() {
            tracing::debug!(
                index,
                "read index not applied in time; serving local metadata"
            );
        }
    }
}
