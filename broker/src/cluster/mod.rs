//! N brokers as one cluster.
//!
//! - [`transport`]: the authenticated inter-broker connection (its own
//!   listener, handshake, framing, client and server).
//! - [`raft`]: the metadata group on `openraft` — log store, state machine,
//!   network.
//! - [`Peers`]: the other brokers as this one sees them: a client for each,
//!   and when each last answered.
//! - [`rpc`]: what this broker answers to its peers.
//!
//! Node ids are positions in the configured node list (pod ordinals on
//! Kubernetes); the membership is static: every listed broker is a voter.

pub mod raft;
pub mod roster;
pub mod rpc;
pub mod transport;

pub use crate::config::ClusterSettings;

use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use transport::{Lane, PeerClient, PeerError, Request, Response};

/// A peer counts as healthy when it answered within this window (pings go
/// out every [`PING_INTERVAL`]).
pub const HEALTH_WINDOW: Duration = Duration::from_secs(2);
pub const PING_INTERVAL: Duration = Duration::from_millis(500);

/// What this broker last heard from a peer.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeerStatus {
    pub last_answer: Option<Instant>,
    /// When a ping last failed (refused, reset or unanswered in time).
    pub last_failure: Option<Instant>,
    pub epoch: u64,
    pub applied: u64,
}

pub struct Peers {
    clients: BTreeMap<u32, Arc<PeerClient>>,
    status: Mutex<BTreeMap<u32, PeerStatus>>,
}

impl Peers {
    pub fn new(settings: Arc<ClusterSettings>, max_frame_bytes: usize) -> Self {
        let clients = settings
            .peers()
            .map(|peer| {
                (
                    peer.id,
                    Arc::new(PeerClient::new(
                        peer.clone(),
                        settings.clone(),
                        max_frame_bytes,
                    )),
                )
            })
            .collect();
        Self {
            clients,
            status: Mutex::default(),
        }
    }

    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.clients.keys().copied()
    }

    /// Call peer `to`; every answer counts as a sign of life.
    pub async fn call(
        &self,
        to: u32,
        lane: Lane,
        request: &Request,
        body: Bytes,
        timeout: Duration,
    ) -> Result<(Response, Bytes), PeerError> {
        let client = self
            .clients
            .get(&to)
            .ok_or_else(|| PeerError::Unreachable(to, "not a peer of this broker".into()))?;
        let result = client.call(lane, request, body, timeout).await;
        if result.is_ok() {
            self.heard_from(to, None);
        }
        result
    }

    /// Record an answer (with the peer's epoch and applied index, if known).
    pub fn heard_from(&self, peer: u32, progress: Option<(u64, u64)>) {
        let mut status = self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = status.entry(peer).or_default();
        entry.last_answer = Some(Instant::now());
        if let Some((epoch, applied)) = progress {
            entry.epoch = epoch;
            entry.applied = applied;
        }
    }

    pub fn status(&self, peer: u32) -> PeerStatus {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&peer)
            .copied()
            .unwrap_or_default()
    }

    pub fn ping_failed(&self, peer: u32) {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(peer)
            .or_default()
            .last_failure = Some(Instant::now());
    }

    /// Known to be down: its last ping failed after its last answer, or it
    /// has not answered for [`HEALTH_WINDOW`]. A peer never heard of either
    /// way is not known to be down.
    pub fn is_down(&self, peer: u32) -> bool {
        let status = self.status(peer);
        match (status.last_answer, status.last_failure) {
            (Some(answer), Some(failure)) if failure > answer => true,
            (Some(answer), _) => answer.elapsed() >= HEALTH_WINDOW,
            (None, Some(_)) => true,
            (None, None) => false,
        }
    }

    pub fn is_healthy(&self, peer: u32) -> bool {
        self.status(peer)
            .last_answer
            .is_some_and(|at| at.elapsed() < HEALTH_WINDOW)
    }
}
