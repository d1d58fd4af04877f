//! The `[cluster]` section: N brokers as one cluster.
//!
//! In the shape of upstream Iggy's cluster mode:
//!
//! ```toml
//! [cluster]
//! enabled = true
//! name = "iggy"
//! node_id = 0                        # this broker (IGGY_CLUSTER_NODE_ID)
//! [cluster.auth]
//! shared_secret = "…at least 32 bytes…"
//! [cluster.advertised]               # how clients reach this broker
//! host = "10.0.0.5"                  # empty: this node's `host`
//! [[cluster.nodes]]
//! id = 0
//! host = "iggy-0.iggy-headless.default.svc"
//! ports = { tcp = 8090, quic = 8080, http = 3000, websocket = 8092, tcp_replica = 9090 }
//! ```
//!
//! The node list's environment form is `IGGY_CLUSTER_PEERS`: a comma
//! separated list of `host[:replica port]`, entry *i* being node *i*, or
//! one entry with `{id}` in its host standing for every node id (what the
//! operator sets for a StatefulSet, pod ordinal = node id:
//! `iggy-{id}.iggy-headless.ns.svc:9090`). Hosts are DNS names, resolved
//! again whenever a connection to the peer is made, so a restarted pod with
//! a new address is found.
//!
//! The node list is an address book, not the membership. The membership is
//! the metadata group's: the first `founders` nodes (all listed ones by
//! default) form a new cluster; any other node asks to join when it starts
//! (`cluster::membership`), and leaves when an operator removes it. So a
//! cluster grows and shrinks without its brokers' settings changing.

use super::{ConfigError, duration, invalid};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Default port of the inter-broker (replica) listener, as upstream.
pub const DEFAULT_REPLICA_PORT: u16 = 9090;
/// Shortest shared secret accepted (upstream's minimum).
pub const MIN_SECRET_BYTES: usize = 32;
/// Node ids fit in a client id's top byte.
pub const MAX_NODES: usize = 255;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    pub enabled: bool,
    /// Every broker of one cluster has the same name; a peer with another
    /// name is refused.
    pub name: String,
    /// This broker's id: its position in the node list.
    pub node_id: u32,
    /// Environment form of `nodes`: `host[:replica_port],…` by node id, or
    /// one `host[:replica_port]` with `{id}` in the host.
    pub peers: String,
    /// How many nodes (ids 0..founders) form a new cluster; 0: every
    /// listed node. Required with a `{id}` template.
    pub founders: u32,
    /// Bind address of this broker's replica listener; empty:
    /// `127.0.0.1:<this node's tcp_replica port>`.
    pub replica_address: String,
    /// How often the metadata leader heartbeats its followers.
    pub heartbeat_interval: String,
    /// A follower that hears no leader for the leader's lease (twice this)
    /// and then a randomized one to two times this starts an election: a
    /// dead leader is replaced three to four times this later.
    pub election_timeout: String,
    /// How long one client request waits for a metadata change to commit
    /// before it is answered "not committed yet" (the SDK then retries it).
    pub write_timeout: String,
    /// Snapshot the metadata (and drop the log behind it) every this many
    /// entries; `log_kept` entries stay behind a snapshot so a follower a
    /// little behind catches up from the log. Also used standalone.
    pub snapshot_every: u64,
    pub log_kept: u64,
    /// Replicas of each partition of a topic created without a factor of
    /// its own (at most the number of brokers).
    pub default_replication_factor: u8,
    /// A send is refused while fewer replicas are in sync; 0: a majority
    /// of the topic's replication factor.
    pub min_in_sync_replicas: u8,
    /// A follower that has not been level with its leader for this long
    /// leaves the in-sync set (sends then stop waiting for it).
    pub replica_max_lag: String,
    /// The failure domain (zone, rack) this broker runs in; empty: none
    /// known. Replicas of a partition go to brokers in different zones
    /// first. On Kubernetes the pod's `topology.kubernetes.io/zone` label.
    pub zone: String,
    /// The newest metadata commands this broker lets the cluster write
    /// (`metadata::command::METADATA_VERSION`; default: every one this
    /// build knows). The cluster writes only what all its brokers read, so
    /// pinning one broker to the version of the build before holds the
    /// whole cluster there: an upgrade that may be rolled back pins it
    /// until it is there to stay.
    pub metadata_version: u32,
    pub auth: ClusterAuth,
    /// Mutual TLS on the replica port.
    pub tls: PeerTlsConfig,
    pub advertised: AdvertisedConfig,
    pub nodes: Vec<NodeConfig>,
}

/// Mutual TLS between brokers: each presents its certificate (which must
/// allow both server and client authentication) and accepts only peers
/// whose certificate chains to one of the CAs in `ca_file`. All three
/// files are read again every `reload_interval`, so certificates and the
/// trusted CAs change without a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeerTlsConfig {
    pub enabled: bool,
    pub cert_file: String,
    pub key_file: String,
    /// PEM bundle of the CAs a peer's certificate may chain to (more than
    /// one while a CA is being replaced).
    pub ca_file: String,
    pub reload_interval: String,
    /// Also accept peers that speak plain TCP, and fall back to plain TCP
    /// when a peer does not answer TLS: only while a running cluster
    /// switches inter-broker TLS on or off, one broker at a time (the
    /// shared-secret handshake still authenticates every peer).
    pub accept_plaintext: bool,
}

impl Default for PeerTlsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            cert_file: String::new(),
            key_file: String::new(),
            ca_file: String::new(),
            reload_interval: "5s".into(),
            accept_plaintext: false,
        }
    }
}

/// Validated [`PeerTlsConfig`].
#[derive(Debug, Clone)]
pub struct PeerTlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
    pub reload_interval: Duration,
    pub accept_plaintext: bool,
}

impl PeerTlsConfig {
    fn settings(&self) -> Result<Option<PeerTlsSettings>, ConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        for (key, value) in [
            ("cluster.tls.cert_file", &self.cert_file),
            ("cluster.tls.key_file", &self.key_file),
            ("cluster.tls.ca_file", &self.ca_file),
        ] {
            if value.trim().is_empty() {
                return Err(invalid(key, "required when cluster.tls.enabled"));
            }
        }
        let reload_interval = duration("cluster.tls.reload_interval", &self.reload_interval)?;
        if reload_interval.is_zero() {
            return Err(invalid(
                "cluster.tls.reload_interval",
                "must be longer than zero",
            ));
        }
        Ok(Some(PeerTlsSettings {
            cert: PathBuf::from(&self.cert_file),
            key: PathBuf::from(&self.key_file),
            ca: PathBuf::from(&self.ca_file),
            reload_interval,
            accept_plaintext: self.accept_plaintext,
        }))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterAuth {
    pub shared_secret: String,
}

/// How clients reach this broker, as the roster reports it. Ports that are
/// 0 are this broker's bound client ports.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdvertisedConfig {
    pub host: String,
    pub tcp: u16,
    pub quic: u16,
    pub http: u16,
    pub websocket: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub id: u32,
    pub host: String,
    #[serde(default)]
    pub ports: NodePorts,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodePorts {
    pub tcp: u16,
    pub quic: u16,
    pub http: u16,
    pub websocket: u16,
    pub tcp_replica: u16,
}

impl Default for NodePorts {
    fn default() -> Self {
        Self {
            tcp: 8090,
            quic: 8080,
            http: 3000,
            websocket: 8092,
            tcp_replica: DEFAULT_REPLICA_PORT,
        }
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            name: "iggy-cluster".into(),
            node_id: 0,
            peers: String::new(),
            founders: 0,
            replica_address: String::new(),
            heartbeat_interval: "100ms".into(),
            election_timeout: "500ms".into(),
            write_timeout: "5s".into(),
            snapshot_every: 5_000,
            log_kept: 1_000,
            default_replication_factor: 1,
            min_in_sync_replicas: 0,
            replica_max_lag: "1s".into(),
            zone: String::new(),
            metadata_version: crate::metadata::command::METADATA_VERSION,
            auth: ClusterAuth::default(),
            tls: PeerTlsConfig::default(),
            advertised: AdvertisedConfig::default(),
            nodes: Vec::new(),
        }
    }
}

/// A peer's replica endpoint (resolved at each connect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub id: u32,
    pub host: String,
    pub replica_port: u16,
}

impl Peer {
    pub fn address(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.replica_port)
        } else {
            format!("{}:{}", self.host, self.replica_port)
        }
    }
}

/// Validated cluster settings.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    pub name: String,
    pub node_id: u32,
    /// The listed brokers, this one included, by id (ids are 0..n); with a
    /// template, the founders.
    pub nodes: Vec<Peer>,
    /// `{id}` in its host stands for any node id.
    pub template: Option<Peer>,
    /// Nodes 0..founders form a new cluster; the others join one.
    pub founders: u32,
    pub secret: Vec<u8>,
    pub replica_bind: SocketAddr,
    pub heartbeat_interval: Duration,
    pub election_timeout: Duration,
    pub write_timeout: Duration,
    pub advertised: AdvertisedConfig,
    pub default_replication_factor: u8,
    /// 0: a majority of each topic's factor.
    pub min_in_sync_replicas: u8,
    pub replica_max_lag: Duration,
    pub zone: String,
    /// The newest metadata commands this broker reads and lets the
    /// cluster write (`cluster.metadata_version`).
    pub metadata_version: u32,
    /// Mutual TLS on the replica port; `None`: plain TCP.
    pub tls: Option<PeerTlsSettings>,
}

impl ClusterSettings {
    /// Where node `id` listens for its peers, if the address book knows.
    pub fn peer(&self, id: u32) -> Option<Peer> {
        if let Some(listed) = self.nodes.iter().find(|p| p.id == id) {
            return Some(listed.clone());
        }
        let template = self.template.as_ref()?;
        (id < MAX_NODES as u32).then(|| Peer {
            id,
            host: template.host.replace(ID_PLACEHOLDER, &id.to_string()),
            replica_port: template.replica_port,
        })
    }

    /// The nodes that form a new cluster.
    pub fn founding_ids(&self) -> impl Iterator<Item = u32> {
        0..self.founders
    }

    /// Whether this broker forms a new cluster (or joins one).
    pub fn is_founder(&self) -> bool {
        self.node_id < self.founders
    }
}

/// Stands for the node id in a `cluster.peers` template.
pub const ID_PLACEHOLDER: &str = "{id}";

impl ClusterConfig {
    /// The validated settings; `None` when clustering is off (standalone).
    pub fn settings(&self) -> Result<Option<ClusterSettings>, ConfigError> {
        if self.snapshot_every == 0 {
            return Err(invalid("cluster.snapshot_every", "must be at least 1"));
        }
        if !self.enabled {
            return Ok(None);
        }
        if self.name.trim().is_empty() {
            return Err(invalid("cluster.name", "must not be empty"));
        }
        if self.auth.shared_secret.len() < MIN_SECRET_BYTES {
            return Err(invalid(
                "cluster.auth.shared_secret",
                format!("must be at least {MIN_SECRET_BYTES} bytes"),
            ));
        }
        let (nodes, template) = self.node_list()?;
        let founders = match (self.founders, &template) {
            (0, None) => nodes.len() as u32,
            (0, Some(_)) => {
                return Err(invalid(
                    "cluster.founders",
                    "set how many nodes form the cluster when cluster.peers is a template",
                ));
            }
            (n, None) if n as usize > nodes.len() => {
                return Err(invalid(
                    "cluster.founders",
                    format!("{n} is more than the {} listed nodes", nodes.len()),
                ));
            }
            (n, _) if n as usize > MAX_NODES => {
                return Err(invalid(
                    "cluster.founders",
                    format!("at most {MAX_NODES} brokers"),
                ));
            }
            (n, _) => n,
        };
        // With a template the founders are listed too (nothing else is).
        let nodes = match &template {
            Some(t) => (0..founders)
                .map(|id| Peer {
                    id,
                    host: t.host.replace(ID_PLACEHOLDER, &id.to_string()),
                    replica_port: t.replica_port,
                })
                .collect(),
            None => nodes,
        };
        let this = match &template {
            Some(t) if self.node_id < MAX_NODES as u32 => Peer {
                id: self.node_id,
                host: t.host.replace(ID_PLACEHOLDER, &self.node_id.to_string()),
                replica_port: t.replica_port,
            },
            _ => nodes
                .iter()
                .find(|n| n.id == self.node_id)
                .cloned()
                .ok_or_else(|| {
                    invalid(
                        "cluster.node_id",
                        format!(
                            "{} is not in the node list (ids 0..{})",
                            self.node_id,
                            nodes.len()
                        ),
                    )
                })?,
        };
        let replica_bind = if self.replica_address.is_empty() {
            SocketAddr::from(([127, 0, 0, 1], this.replica_port))
        } else {
            self.replica_address.parse().map_err(|e| {
                invalid(
                    "cluster.replica_address",
                    format!("`{}`: {e}", self.replica_address),
                )
            })?
        };
        let heartbeat_interval = duration("cluster.heartbeat_interval", &self.heartbeat_interval)?;
        let election_timeout = duration("cluster.election_timeout", &self.election_timeout)?;
        if heartbeat_interval.is_zero() || election_timeout < heartbeat_interval * 3 {
            return Err(invalid(
                "cluster.election_timeout",
                "must be at least three heartbeat intervals (and the interval longer than zero)",
            ));
        }
        let write_timeout = duration("cluster.write_timeout", &self.write_timeout)?;
        if write_timeout < Duration::from_millis(100) {
            return Err(invalid("cluster.write_timeout", "must be at least 100ms"));
        }
        if self.default_replication_factor == 0
            || u32::from(self.default_replication_factor) > founders
        {
            return Err(invalid(
                "cluster.default_replication_factor",
                format!("must be between 1 and the number of founding brokers ({founders})"),
            ));
        }
        if self.min_in_sync_replicas > self.default_replication_factor {
            return Err(invalid(
                "cluster.min_in_sync_replicas",
                "must not exceed cluster.default_replication_factor (0: a majority)",
            ));
        }
        let replica_max_lag = duration("cluster.replica_max_lag", &self.replica_max_lag)?;
        let newest = crate::metadata::command::METADATA_VERSION;
        if self.metadata_version > newest {
            return Err(invalid(
                "cluster.metadata_version",
                format!("this build reads metadata commands up to version {newest}"),
            ));
        }
        if replica_max_lag < Duration::from_millis(100) {
            return Err(invalid("cluster.replica_max_lag", "must be at least 100ms"));
        }
        let mut advertised = self.advertised.clone();
        if advertised.host.is_empty() {
            advertised.host = this.host.clone();
        }
        if let Some(node) = self.nodes.iter().find(|n| n.id == self.node_id) {
            let ports = &node.ports;
            for (port, configured) in [
                (&mut advertised.tcp, ports.tcp),
                (&mut advertised.quic, ports.quic),
                (&mut advertised.http, ports.http),
                (&mut advertised.websocket, ports.websocket),
            ] {
                if *port == 0 {
                    *port = configured;
                }
            }
        }
        Ok(Some(ClusterSettings {
            name: self.name.clone(),
            node_id: self.node_id,
            nodes,
            template,
            founders,
            secret: self.auth.shared_secret.as_bytes().to_vec(),
            replica_bind,
            heartbeat_interval,
            election_timeout,
            write_timeout,
            advertised,
            default_replication_factor: self.default_replication_factor,
            min_in_sync_replicas: self.min_in_sync_replicas,
            replica_max_lag,
            zone: self.zone.trim().to_string(),
            metadata_version: self.metadata_version,
            tls: self.tls.settings()?,
        }))
    }

    /// The node list: `peers` (environment form) if set, else `nodes`; or
    /// the template `peers` is.
    fn node_list(&self) -> Result<(Vec<Peer>, Option<Peer>), ConfigError> {
        if self.peers.contains(ID_PLACEHOLDER) {
            let entry = self.peers.trim();
            if entry.contains(',') || entry.matches(ID_PLACEHOLDER).count() != 1 {
                return Err(invalid(
                    "cluster.peers",
                    format!(
                        "a template is one host[:replica_port] with {ID_PLACEHOLDER} in the host once, not `{entry}`"
                    ),
                ));
            }
            return Ok((Vec::new(), Some(parse_peer(0, entry)?)));
        }
        let nodes: Vec<Peer> = if !self.peers.trim().is_empty() {
            self.peers
                .split(',')
                .enumerate()
                .map(|(id, entry)| parse_peer(id as u32, entry.trim()))
                .collect::<Result<_, _>>()?
        } else {
            let mut nodes: Vec<Peer> = self
                .nodes
                .iter()
                .map(|n| Peer {
                    id: n.id,
                    host: n.host.clone(),
                    replica_port: n.ports.tcp_replica,
                })
                .collect();
            nodes.sort_by_key(|n| n.id);
            nodes
        };
        if nodes.is_empty() {
            return Err(invalid(
                "cluster.nodes",
                "list every broker ([[cluster.nodes]] or IGGY_CLUSTER_PEERS)",
            ));
        }
        if nodes.len() > MAX_NODES {
            return Err(invalid(
                "cluster.nodes",
                format!("at most {MAX_NODES} brokers"),
            ));
        }
        for (i, node) in nodes.iter().enumerate() {
            if node.id != i as u32 {
                return Err(invalid(
                    "cluster.nodes",
                    format!("ids must be 0..{} without gaps or repeats", nodes.len()),
                ));
            }
            if node.host.trim().is_empty() {
                return Err(invalid("cluster.nodes", format!("node {i} has no host")));
            }
            if node.replica_port == 0 {
                return Err(invalid(
                    "cluster.nodes",
                    format!("node {i} has no tcp_replica port"),
                ));
            }
        }
        Ok((nodes, None))
    }
}

/// `host`, `host:port`, `[v6]:port` or `v6`.
fn parse_peer(id: u32, entry: &str) -> Result<Peer, ConfigError> {
    let bad = || {
        invalid(
            "cluster.peers",
            format!("entry {id} `{entry}` is not host[:replica_port]"),
        )
    };
    if entry.is_empty() {
        return Err(bad());
    }
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(port) => (host.to_string(), port.parse().map_err(|_| bad())?),
            None if after.is_empty() => (host.to_string(), DEFAULT_REPLICA_PORT),
            None => return Err(bad()),
        }
    } else if entry.matches(':').count() == 1 {
        let (host, port) = entry.split_once(':').expect("one colon");
        (host.to_string(), port.parse().map_err(|_| bad())?)
    } else {
        (entry.to_string(), DEFAULT_REPLICA_PORT)
    };
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok(Peer {
        id,
        host,
        replica_port: port,
    })
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::super::tests::env;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn standalone_has_no_cluster_settings() {
        let config = Config::load(None, env(&[])).unwrap();
        assert!(config.effective().unwrap().cluster.is_none());
    }

    #[test]
    fn the_environment_form_lists_nodes_by_id() {
        let config = Config::load(
            None,
            env(&[
                ("IGGY_CLUSTER_ENABLED", "true"),
                ("IGGY_CLUSTER_NODE_ID", "1"),
                ("IGGY_CLUSTER_AUTH_SHARED_SECRET", SECRET),
                (
                    "IGGY_CLUSTER_PEERS",
                    "iggy-0.h.ns.svc:9090, iggy-1.h.ns.svc ,[fd00::2]:9191",
                ),
            ]),
        )
        .unwrap();
        let cluster = config.effective().unwrap().cluster.unwrap();
        assert_eq!(cluster.node_id, 1);
        assert_eq!(cluster.nodes.len(), 3);
        assert_eq!(cluster.nodes[1].address(), "iggy-1.h.ns.svc:9090");
        assert_eq!(cluster.nodes[2].address(), "[fd00::2]:9191");
        assert_eq!(cluster.replica_bind.to_string(), "127.0.0.1:9090");
        assert_eq!(cluster.advertised.host, "iggy-1.h.ns.svc");
        assert_eq!(cluster.founders, 3);
        assert!(cluster.peer(3).is_none(), "a list knows only its nodes");
    }

    #[test]
    fn a_template_addresses_every_node_and_founders_say_who_forms_the_cluster() {
        let load = |extra: &[(&str, &str)]| {
            let mut vars = vec![
                ("IGGY_CLUSTER_ENABLED", "true"),
                ("IGGY_CLUSTER_NODE_ID", "4"),
                ("IGGY_CLUSTER_AUTH_SHARED_SECRET", SECRET),
            ];
            vars.extend_from_slice(extra);
            if !extra.iter().any(|(k, _)| *k == "IGGY_CLUSTER_PEERS") {
                vars.push(("IGGY_CLUSTER_PEERS", "iggy-{id}.h.ns.svc:9191"));
            }
            Config::load(None, env(&vars))
                .and_then(|c| c.effective())
                .map(|e| e.cluster.unwrap())
        };
        let error = load(&[]).unwrap_err().to_string();
        assert!(error.contains("cluster.founders"), "{error}");
        let cluster = load(&[("IGGY_CLUSTER_FOUNDERS", "3")]).unwrap();
        assert_eq!(cluster.nodes.len(), 3);
        assert!(!cluster.is_founder());
        assert_eq!(cluster.advertised.host, "iggy-4.h.ns.svc");
        assert_eq!(cluster.peer(7).unwrap().address(), "iggy-7.h.ns.svc:9191");
        let error = load(&[
            ("IGGY_CLUSTER_FOUNDERS", "3"),
            ("IGGY_CLUSTER_PEERS", "a-{id}:1,b:2"),
        ])
        .unwrap_err()
        .to_string();
        assert!(error.contains("cluster.peers"), "{error}");
    }

    #[test]
    fn the_metadata_version_is_this_builds_unless_pinned_lower() {
        let load = |extra: &[(&str, &str)]| {
            let mut vars = vec![
                ("IGGY_CLUSTER_ENABLED", "true"),
                ("IGGY_CLUSTER_AUTH_SHARED_SECRET", SECRET),
                ("IGGY_CLUSTER_PEERS", "a:1,b:1,c:1"),
            ];
            vars.extend_from_slice(extra);
            Config::load(None, env(&vars))
                .and_then(|c| c.effective())
                .map(|e| e.cluster.unwrap())
        };
        let newest = crate::metadata::command::METADATA_VERSION;
        assert_eq!(load(&[]).unwrap().metadata_version, newest);
        let pinned = load(&[("IGGY_CLUSTER_METADATA_VERSION", "0")]).unwrap();
        assert_eq!(pinned.metadata_version, 0);
        let newer = (newest + 1).to_string();
        let error = load(&[("IGGY_CLUSTER_METADATA_VERSION", &newer)])
            .unwrap_err()
            .to_string();
        assert!(error.contains("cluster.metadata_version"), "{error}");
    }

    #[test]
    fn founders_are_a_prefix_of_the_list() {
        let load = |founders: &str| {
            Config::load(
                None,
                env(&[
                    ("IGGY_CLUSTER_ENABLED", "true"),
                    ("IGGY_CLUSTER_AUTH_SHARED_SECRET", SECRET),
                    ("IGGY_CLUSTER_PEERS", "a:1,b:1,c:1,d:1"),
                    ("IGGY_CLUSTER_FOUNDERS", founders),
                ]),
            )
            .and_then(|c| c.effective())
            .map(|e| e.cluster.unwrap())
        };
        let cluster = load("3").unwrap();
        assert!(cluster.is_founder());
        assert_eq!(cluster.founding_ids().collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(
            cluster.peer(3).unwrap().host,
            "d",
            "spare nodes stay addressable"
        );
        assert!(
            load("5")
                .unwrap_err()
                .to_string()
                .contains("cluster.founders")
        );
    }

    #[test]
    fn the_file_form_takes_upstreams_shape() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("broker.toml");
        std::fs::write(
            &file,
            format!(
                r#"
[cluster]
enabled = true
name = "prod"
node_id = 0
[cluster.auth]
shared_secret = "{SECRET}"
[[cluster.nodes]]
id = 0
host = "127.0.0.1"
ports = {{ tcp = 18090, quic = 18080, http = 13000, websocket = 18092, tcp_replica = 19090 }}
[[cluster.nodes]]
id = 1
host = "127.0.0.1"
ports = {{ tcp = 28090, tcp_replica = 29090 }}
"#
            ),
        )
        .unwrap();
        let config = Config::load(Some(&file), env(&[])).unwrap();
        let cluster = config.effective().unwrap().cluster.unwrap();
        assert_eq!(cluster.name, "prod");
        assert_eq!(cluster.nodes[1].replica_port, 29090);
        assert_eq!(cluster.replica_bind.to_string(), "127.0.0.1:19090");
        assert_eq!(cluster.advertised.tcp, 18090);
    }

    #[test]
    fn invalid_cluster_settings_name_the_key() {
        let base = [
            ("IGGY_CLUSTER_ENABLED", "true"),
            ("IGGY_CLUSTER_AUTH_SHARED_SECRET", SECRET),
            ("IGGY_CLUSTER_PEERS", "a:9090,b:9090"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut all: Vec<(&str, &str)> = base.to_vec();
            for (k, v) in extra {
                all.retain(|(key, _)| key != k);
                all.push((k, v));
            }
            Config::load(None, env(&all)).unwrap_err().key
        };
        assert_eq!(
            with(&[("IGGY_CLUSTER_AUTH_SHARED_SECRET", "short")]),
            "cluster.auth.shared_secret"
        );
        assert_eq!(with(&[("IGGY_CLUSTER_NODE_ID", "2")]), "cluster.node_id");
        assert_eq!(
            with(&[("IGGY_CLUSTER_PEERS", "a:9090,:1")]),
            "cluster.peers"
        );
        assert_eq!(with(&[("IGGY_CLUSTER_PEERS", "")]), "cluster.nodes");
        assert_eq!(with(&[("IGGY_CLUSTER_NAME", " ")]), "cluster.name");
        assert_eq!(
            with(&[("IGGY_CLUSTER_ELECTION_TIMEOUT", "150ms")]),
            "cluster.election_timeout"
        );
        assert_eq!(
            with(&[("IGGY_CLUSTER_REPLICA_ADDRESS", "nowhere")]),
            "cluster.replica_address"
        );
        assert_eq!(with(&[("IGGY_CLUSTER_NODE_ID", "x")]), "cluster.node_id");
        assert_eq!(
            with(&[("IGGY_CLUSTER_DEFAULT_REPLICATION_FACTOR", "3")]),
            "cluster.default_replication_factor"
        );
        assert_eq!(
            with(&[("IGGY_CLUSTER_MIN_IN_SYNC_REPLICAS", "2")]),
            "cluster.min_in_sync_replicas"
        );
        assert_eq!(
            with(&[("IGGY_CLUSTER_REPLICA_MAX_LAG", "10ms")]),
            "cluster.replica_max_lag"
        );
    }
}
