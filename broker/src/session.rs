//! Per-connection state: who the client is and whether it has logged in.

use crate::consumer_groups::GroupKey;
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
            group_cursors: HashMap::new(),
        }
    }

    pub fn is_authenticated(&self) -> bool {
        self.user_id.is_some()
    }
}
