//! N brokers as one cluster.
//!
//! - [`transport`]: the authenticated inter-broker connection (its own
//!   listener, handshake, framing, client and server).
//! - [`raft`]: the metadata group on `openraft` — log store, state machine,
//!   network.
//! - [`Peers`]: the other brokers as this one sees them: a client for each,
//!   and when each last answered.
//! - [`rpc`]: what this broker answers to its peers.
//! - [`founding`]: forming a new cluster — unless the founder's cluster
//!   runs already without it.
//! - [`catching_up`]: a broker back with an empty metadata log does not
//!   vote until it has caught up.
//! - [`membership`]: who is in the cluster — joining it, and removing a
//!   drained broker.
//! - [`uid`]: tells the cluster apart from another formed under its name.
//!
//! Node ids are positions in the configured node list (pod ordinals on
//! Kubernetes). The list is an address book; the membership is the
//! metadata group's (its founders, plus every broker that joined since).

pub mod catching_up;
pub mod founding;
pub mod membership;
pub mod raft;
pub mod roster;
pub mod rpc;
pub mod transport;
pub mod uid;

pub use crate::config::ClusterSettings;

use crate::tls::peer::PeerTls;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
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
    /// Its data directory runs low on space (`DataDirectory::is_low`): it
    /// should not be given the leadership of a partition another replica
    /// with room can take.
    pub low_on_space: bool,
}

/// What a peer says of itself in every ping and pong.
#[derive(Debug, Clone, Copy)]
pub struct PeerReport {
    pub epoch: u64,
    pub applied: u64,
    pub low_on_space: bool,
}

pub struct Peers {
    settings: Arc<ClusterSettings>,
    /// Mutual TLS on every peer connection (`[cluster.tls]`).
    tls: Option<Arc<PeerTls>>,
    max_frame_bytes: usize,
    /// The cluster's uid once known: a peer that names another is refused.
    uid: Arc<uid::ClusterUid>,
    /// A client per peer called so far, made on first use from the
    /// address book.
    clients: Mutex<BTreeMap<u32, Arc<PeerClient>>>,
    /// The other members of the metadata group: who gets pinged.
    members: Mutex<BTreeSet<u32>>,
    status: Mutex<BTreeMap<u32, PeerStatus>>,
}

impl Peers {
    /// The peers of the cluster `settings` describe; with `[cluster.tls]`,
    /// this broker's certificate and trusted CAs are loaded here.
    pub fn new(
        settings: Arc<ClusterSettings>,
        max_frame_bytes: usize,
        uid: Arc<uid::ClusterUid>,
    ) -> anyhow::Result<Self> {
        let members = settings
            .founding_ids()
            .filter(|id| *id != settings.node_id)
            .collect();
        let tls = settings.tls.as_ref().map(PeerTls::load).transpose()?;
        Ok(Self {
            settings,
            tls,
            max_frame_bytes,
            uid,
            clients: Mutex::default(),
            members: Mutex::new(members),
            status: Mutex::default(),
        })
    }

    /// The TLS of peer connections, if on (the replica listener uses it
    /// too).
    pub fn tls(&self) -> Option<Arc<PeerTls>> {
        self.tls.clone()
    }

    /// The cluster's uid as this broker knows it (the replica listener
    /// checks it too).
    pub fn uid(&self) -> Arc<uid::ClusterUid> {
        self.uid.clone()
    }

    /// The same, borrowed (for checks on every client write).
    pub fn uid_ref(&self) -> &uid::ClusterUid {
        &self.uid
    }

    /// The other members, as last set from the metadata group.
    pub fn ids(&self) -> Vec<u32> {
        lock(&self.members).iter().copied().collect()
    }

    /// The metadata group's members changed: ping these (this broker
    /// left out).
    pub fn set_members(&self, members: impl IntoIterator<Item = u32>) {
        let me = self.settings.node_id;
        *lock(&self.members) = members.into_iter().filter(|id| *id != me).collect();
    }

    fn client(&self, to: u32) -> Option<Arc<PeerClient>> {
        if to == self.settings.node_id {
            return None;
        }
        let mut clients = lock(&self.clients);
        if let Some(client) = clients.get(&to) {
            return Some(client.clone());
        }
        let peer = self.settings.peer(to)?;
        let client = Arc::new(PeerClient::new(
            peer,
            self.settings.clone(),
            self.tls.clone(),
            self.max_frame_bytes,
            self.uid.clone(),
        ));
        clients.insert(to, client.clone());
        Some(client)
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
        let client = self.client(to).ok_or_else(|| {
            PeerError::Unreachable(to, "not in this broker's address book".into())
        })?;
        let result = client.call(lane, request, body, timeout).await;
        if result.is_ok() {
            self.heard_from(to, None);
        }
        result
    }

    /// Record an answer (with what the peer said of itself, if it did).
    pub fn heard_from(&self, peer: u32, report: Option<PeerReport>) {
        let mut status = lock(&self.status);
        let entry = status.entry(peer).or_default();
        entry.last_answer = Some(Instant::now());
        if let Some(report) = report {
            entry.epoch = report.epoch;
            entry.applied = report.applied;
            entry.low_on_space = report.low_on_space;
        }
    }

    /// Every peer that has answered this broker since it started.
    pub fn answered(&self) -> Vec<u32> {
        lock(&self.status)
            .iter()
            .filter(|(_, status)| status.last_answer.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn status(&self, peer: u32) -> PeerStatus {
        lock(&self.status).get(&peer).copied().unwrap_or_default()
    }

    pub fn ping_failed(&self, peer: u32) {
        lock(&self.status).entry(peer).or_default().last_failure = Some(Instant::now());
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

/// These maps stay consistent whatever panicked while holding them.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
