//! Per-connection state: who the client is, whether it has logged in, and
//! what makes its retried requests recognizable.

use crate::metadata::{GroupKey, Member, ProposalId};
use std::collections::HashMap;
use std::net::SocketAddr;

#[derive(Debug, Clone)]
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
    /// is one. The SDK replays a request answered "not committed" under the
    /// same number; its metadata change then reuses the first proposal id.
    pub request: Option<u64>,
    last_proposal: Option<(u64, ProposalId)>,
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
            last_proposal: None,
            acting_for: None,
            forwarded: false,
            group_cursors: HashMap::new(),
        }
    }

    pub fn is_authenticated(&self) -> bool {
        self.user_id.is_some()
    }

    /// The proposal id for a metadata change made by the current request:
    /// the one used before if this request is a replay, else `fresh()`.
    pub fn proposal(&mut self, fresh: impl FnOnce() -> ProposalId) -> ProposalId {
        match (self.request, self.last_proposal) {
            (Some(request), Some((last, proposal))) if request == last => proposal,
            (Some(request), _) => {
                let proposal = fresh();
                self.last_proposal = Some((request, proposal));
                proposal
            }
            (None, _) => fresh(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replayed_request_reuses_its_proposal_id() {
        let mut session = Session::new(1, "127.0.0.1:1".parse().unwrap());
        let mut seq = 0;
        let mut fresh = || {
            seq += 1;
            ProposalId {
                node: 0,
                epoch: 1,
                seq,
            }
        };
        session.request = Some(5);
        let first = session.proposal(&mut fresh);
        let replay = session.proposal(&mut fresh);
        assert_eq!(first, replay);
        session.request = Some(6);
        assert_ne!(session.proposal(&mut fresh), first);
        session.request = None;
        let a = session.proposal(&mut fresh);
        let b = session.proposal(&mut fresh);
        assert_ne!(a, b);
    }
}
