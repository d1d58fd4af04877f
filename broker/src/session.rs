//! Per-connection state: who the client is, whether it has logged in, and
//! the metadata change its current request started.

use crate::metadata::{Applied, GroupKey, Member};
use futures::future::{BoxFuture, Shared};
use std::collections::HashMap;
use std::net::SocketAddr;

/// How a metadata change ended: what the handler needs to answer, kept
/// (cloned) for replays of the request.
pub type WriteOutcome = Result<Applied, (u32, String)>;

/// A metadata change a replicated 0.11 request started, still being
/// committed in the background. The SDK replays a request answered "not
/// committed yet" (status 57) under the same request number, as long as
/// it has time left; the replay gets this change's outcome instead of
/// starting another.
pub struct PendingWrite {
    pub request: u64,
    pub outcome: Shared<BoxFuture<'static, WriteOutcome>>,
    /// What the handler must return besides the outcome (a minted token),
    /// the same for every replay.
    pub note: Option<String>,
}

pub struct Session {
    /// Server-assigned client id reported by GetMe / GetClients.
    pub client_id: u32,
    pub address: SocketAddr,
    /// The VSR client id (u128) the SDK registered with.
    pub vsr_client: u128,
    /// Session number handed out at login; requests echo it.
    pub session: u64,
    pub user_id: Option<u32>,
    /// Request number of the replicated (0.11) request being served, if it
    /// is one.
    pub request: Option<u64>,
    pub pending: Option<PendingWrite>,
    /// Whose group membership and offsets this connection acts for, when
    /// not its own: a data connection attached to a coordinator session
    /// (AttachConsumerSession), or a request forwarded by another broker.
    pub acting_for: Option<Member>,
    /// A request forwarded by another broker: it is served here or fails,
    /// never forwarded again.
    pub forwarded: bool,
    /// Legacy (0.10) group polls name no partition: the broker walks the
    /// member's partitions round-robin; this is the next position per group.
    pub group_cursors: HashMap<GroupKey, usize>,
}

impl Session {
    pub fn new(client_id: u32, address: SocketAddr) -> Self {
        Self {
            client_id,
            address,
            vsr_client: 0,
            session: 0,
            user_id: None,
            request: None,
            pending: None,
            acting_for: None,
            forwarded: false,
            group_cursors: HashMap::new(),
        }
    }

    pub fn is_authenticated(&self) -> bool {
        self.user_id.is_some()
    }

    /// The change the current request started before, if this is a replay.
    pub fn take_pending(&mut self) -> Option<PendingWrite> {
        let request = self.request?;
        self.pending.take().filter(|p| p.request == request)
    }
}
