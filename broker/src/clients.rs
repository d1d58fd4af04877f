//! The client connections of this broker, as GetClients and GetMe report
//! them. Connections are local: each broker lists its own.
//!
//! Client ids are unique across the cluster: the broker's node id is the
//! top byte, a counter the rest (a standalone broker is node 0, so its
//! ids are 1, 2, 3, …). Consumer-group members are client ids, and groups
//! are cluster-wide.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// How a client is connected (upstream's codes in client listings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp = 1,
    Quic = 2,
    Http = 3,
    WebSocket = 4,
}

impl Transport {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Quic => "quic",
            Transport::Http => "http",
            Transport::WebSocket => "websocket",
        }
    }
}

/// A connected client, as GetClients reports it.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub client_id: u32,
    pub user_id: Option<u32>,
    pub address: SocketAddr,
    pub transport: Transport,
}

/// Bits of a client id below the node id.
const COUNTER_BITS: u32 = 24;
const COUNTER_MASK: u32 = (1 << COUNTER_BITS) - 1;

pub struct Clients {
    node_id: u32,
    next_client: AtomicU32,
    next_session: AtomicU64,
    clients: Mutex<HashMap<u32, ClientInfo>>,
}

impl Clients {
    pub fn new(node_id: u32) -> Self {
        Self {
            node_id,
            next_client: AtomicU32::new(1),
            next_session: AtomicU64::new(1),
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, ClientInfo>> {
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Register a new connection; returns its client id.
    pub fn register(&self, address: SocketAddr, transport: Transport) -> u32 {
        let client_id = loop {
            let counter = self.next_client.fetch_add(1, Ordering::Relaxed) & COUNTER_MASK;
            if counter != 0 {
                break (self.node_id << COUNTER_BITS) | counter;
            }
        };
        self.lock().insert(
            client_id,
            ClientInfo {
                client_id,
                user_id: None,
                address,
                transport,
            },
        );
        client_id
    }

    pub fn set_user(&self, client_id: u32, user_id: Option<u32>) {
        if let Some(client) = self.lock().get_mut(&client_id) {
            client.user_id = user_id;
        }
    }

    pub fn remove(&self, client_id: u32) -> Option<ClientInfo> {
        self.lock().remove(&client_id)
    }

    pub fn list(&self) -> Vec<ClientInfo> {
        let mut clients: Vec<_> = self.lock().values().cloned().collect();
        clients.sort_by_key(|c| c.client_id);
        clients
    }

    pub fn get(&self, client_id: u32) -> Option<ClientInfo> {
        self.lock().get(&client_id).cloned()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A session number for a login.
    pub fn new_session(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_carry_the_node_id_and_skip_zero() {
        let address = "127.0.0.1:1".parse().unwrap();
        let standalone = Clients::new(0);
        assert_eq!(standalone.register(address, Transport::Tcp), 1);
        let node = Clients::new(3);
        let id = node.register(address, Transport::Tcp);
        assert_eq!(id >> COUNTER_BITS, 3);
        node.next_client.store(COUNTER_MASK + 1, Ordering::Relaxed);
        let wrapped = node.register(address, Transport::Tcp);
        assert_eq!(wrapped & COUNTER_MASK, 1);
    }
}
