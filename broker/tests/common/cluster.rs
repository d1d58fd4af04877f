//! Cluster harness: N real `iggy-broker` processes started, killed and
//! restarted through `scripts/cluster.sh` (the same script people use to
//! try a cluster without Kubernetes), faults made with iptables, and a
//! round-robin TCP proxy standing in for a Kubernetes Service.

use super::{http_get, metric};
use iggy::prelude::*;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Node {
    pub id: u32,
    pub pid: u32,
    pub tcp: SocketAddr,
    pub quic: SocketAddr,
    pub http: SocketAddr,
    pub replica: SocketAddr,
    pub data: PathBuf,
    pub running: bool,
}

pub struct TestCluster {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    pub nodes: Vec<Node>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/cluster.sh")
}

fn parse_node(line: &str) -> Node {
    // node <id> pid <pid> tcp <a> quic <a> http <a> replica <a> data <dir>
    let words: Vec<&str> = line.split_whitespace().collect();
    let field = |name: &str| {
        let at = words
            .iter()
            .position(|w| *w == name)
            .unwrap_or_else(|| panic!("no `{name}` in `{line}`"));
        words[at + 1]
    };
    Node {
        id: field("node").parse().unwrap(),
        pid: field("pid").parse().unwrap(),
        tcp: field("tcp").parse().unwrap(),
        quic: field("quic").parse().unwrap(),
        http: field("http").parse().unwrap(),
        replica: field("replica").parse().unwrap(),
        data: PathBuf::from(field("data")),
        running: true,
    }
}

impl TestCluster {
    /// Start `n` brokers and wait until they form a cluster.
    pub fn up(n: usize) -> Self {
        Self::up_with(n, &[])
    }

    /// Start `n` brokers with extra `IGGY_*` settings.
    pub fn up_with(n: usize, env: &[(&str, &str)]) -> Self {
        Self::up_with_spare(n, 0, env)
    }

    /// Start `n` brokers, which found the cluster, and give `spare` more
    /// addresses and ports: [`TestCluster::start`] one and it joins.
    pub fn up_with_spare(n: usize, spare: usize, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cluster = Self {
            dir,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .chain([("CLUSTER_SPARE".to_string(), spare.to_string())])
                .collect(),
            nodes: Vec::new(),
        };
        let out = cluster.run(&["up", &n.to_string()]);
        cluster.nodes = out.lines().map(parse_node).collect();
        assert_eq!(cluster.nodes.len(), n, "{out}");
        cluster
    }

    fn run(&self, args: &[&str]) -> String {
        self.run_binary(args, env!("CARGO_BIN_EXE_iggy-broker"))
    }

    /// [`Self::run`] with another broker binary for the nodes it starts.
    fn run_binary(&self, args: &[&str], binary: &str) -> String {
        let mut command = Command::new("bash");
        command
            .arg(script())
            .args(args)
            .arg(self.dir.path())
            .env("IGGY_BROKER_BIN", binary);
        for (k, v) in &self.env {
            command.env(k, v);
        }
        let output = command.output().expect("run scripts/cluster.sh");
        if !output.status.success() {
            // A broker that panicked says where: show it with the failure.
            for node in &self.nodes {
                let log = self.log(node.id);
                for line in log.lines().filter(|l| l.contains("panicked at")) {
                    eprintln!("broker {}: {line}", node.id);
                }
            }
        }
        assert!(
            output.status.success(),
            "cluster.sh {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// The settings a broker would have as node `as_node` of this cluster
    /// (named `local`, as `scripts/cluster.sh` names it) with `secret`:
    /// for dialing its brokers as a peer would.
    pub fn peer_settings(
        &self,
        as_node: u32,
        secret: Vec<u8>,
    ) -> iggy_broker::config::ClusterSettings {
        iggy_broker::config::ClusterSettings {
            name: "local".into(),
            node_id: as_node,
            nodes: self
                .nodes
                .iter()
                .map(|n| iggy_broker::config::Peer {
                    id: n.id,
                    host: n.replica.ip().to_string(),
                    replica_port: n.replica.port(),
                })
                .collect(),
            template: None,
            founders: self.nodes.len() as u32,
            secret,
            replica_bind: "127.0.0.1:0".parse().unwrap(),
            heartbeat_interval: Duration::from_millis(100),
            election_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(1),
            advertised: Default::default(),
            default_replication_factor: 1,
            min_in_sync_replicas: 0,
            replica_max_lag: Duration::from_secs(1),
            zone: String::new(),
            metadata_version: iggy_broker::metadata::command::METADATA_VERSION,
            tls: None,
        }
    }

    /// Where the cluster keeps its files (`scripts/cluster.sh`'s DIR).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn node(&self, id: u32) -> &Node {
        &self.nodes[id as usize]
    }

    /// `kill -9` node `id`.
    pub fn kill(&mut self, id: u32) {
        self.run(&["kill", &id.to_string()]);
        self.nodes[id as usize].running = false;
    }

    /// `kill -9` node `id` from here; returns when the signal was sent
    /// (for failover timings), once the process is gone.
    pub fn kill_timed(&mut self, id: u32) -> Instant {
        self.signal_and_wait(id, "-9", Duration::from_secs(10))
    }

    /// Stop node `id` as Kubernetes does (SIGTERM) and wait until it has
    /// shut down.
    pub fn stop(&mut self, id: u32) {
        self.signal_and_wait(id, "-TERM", Duration::from_secs(60));
    }

    /// Send `signal` to node `id`; returns when it was sent, once the
    /// process is gone.
    fn signal_and_wait(&mut self, id: u32, signal: &str, timeout: Duration) -> Instant {
        let pid = self.node(id).pid;
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        let at = Instant::now();
        assert!(status.success(), "kill {signal} {pid} failed");
        // A zombie has an empty environment; a live broker has its own.
        let deadline = Instant::now() + timeout;
        while std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| !env.is_empty()) {
            assert!(
                Instant::now() < deadline,
                "node {id} (pid {pid}) did not exit on {signal}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        self.nodes[id as usize].running = false;
        at
    }

    /// Settings (`IGGY_*` variables) of node `id` alone from its next
    /// start on, over the cluster's (replacing the earlier ones).
    pub fn set_node_env(&self, id: u32, env: &[(&str, &str)]) {
        let lines: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(self.dir().join(format!("node-{id}")).join("env"), lines).unwrap();
    }

    /// Restart node `id` on its data and ports, or start the next spare
    /// node; returns once it is ready.
    pub fn start(&mut self, id: u32) {
        self.start_binary(id, env!("CARGO_BIN_EXE_iggy-broker"));
    }

    /// [`Self::start`] node `id` without waiting until it is ready.
    pub fn launch(&mut self, id: u32) {
        let out = self.run(&["launch", &id.to_string()]);
        self.record_started(id, parse_node(out.trim()));
    }

    /// [`Self::start`] node `id` running `binary` (another build of the
    /// broker, for rolling upgrades).
    pub fn start_binary(&mut self, id: u32, binary: &str) {
        let out = self.run_binary(&["start", &id.to_string()], binary);
        self.record_started(id, parse_node(out.trim()));
    }

    fn record_started(&mut self, id: u32, node: Node) {
        if id as usize == self.nodes.len() {
            self.nodes.push(node);
        } else {
            self.nodes[id as usize] = node;
        }
    }

    pub fn log(&self, id: u32) -> String {
        std::fs::read_to_string(
            self.dir
                .path()
                .join(format!("node-{id}"))
                .join("broker.log"),
        )
        .unwrap_or_default()
    }

    pub fn running(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.running)
    }

    /// The metadata leader as broker `id` sees it (from its metrics).
    pub async fn leader_seen_by(&self, id: u32) -> Option<u32> {
        let metrics = http_get(self.node(id).http, "/metrics").await;
        let leader = metric(&metrics, "iggy_broker_metadata_leader");
        (leader >= 0.0).then_some(leader as u32)
    }

    /// Wait until every running broker names the same running leader
    /// (other than `not`); returns it.
    pub async fn wait_for_leader(&self, not: Option<u32>, timeout: Duration) -> u32 {
        let deadline = Instant::now() + timeout;
        loop {
            let mut seen = Vec::new();
            for node in self.running() {
                seen.push(self.leader_seen_by(node.id).await);
            }
            if let Some(Some(leader)) = seen.first().copied()
                && seen.iter().all(|s| *s == Some(leader))
                && Some(leader) != not
                && self.node(leader).running
            {
                return leader;
            }
            assert!(
                Instant::now() < deadline,
                "no agreed leader within {timeout:?}: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Root's client connected directly to broker `id`.
    pub async fn client(&self, id: u32) -> IggyClient {
        client_at(self.node(id).tcp, "iggy", "iggy").await
    }

    /// Cut broker `id`'s replica traffic off from every other broker
    /// (iptables on the loopback addresses; clients still reach it).
    pub fn isolate(&self, id: u32) -> Isolation {
        let ip = self.node(id).replica.ip();
        let mut rules = Vec::new();
        for other in self.nodes.iter().filter(|n| n.id != id) {
            let peer = other.replica.ip();
            for (from, to) in [(ip, peer), (peer, ip)] {
                rules.push(vec![
                    "INPUT".to_string(),
                    "-s".into(),
                    from.to_string(),
                    "-d".into(),
                    to.to_string(),
                    "-p".into(),
                    "tcp".into(),
                    "-j".into(),
                    "DROP".into(),
                ]);
            }
        }
        for rule in &rules {
            iptables("-I", rule);
        }
        Isolation { rules }
    }

    /// Refuse every connection to broker `id`'s replica port (its own
    /// connections to the others still work): the others cannot reach it,
    /// it can reach them.
    pub fn refuse_peers_of(&self, id: u32) -> Isolation {
        let replica = self.node(id).replica;
        let rule: Vec<String> = [
            "INPUT",
            "-d",
            &replica.ip().to_string(),
            "-p",
            "tcp",
            "--dport",
            &replica.port().to_string(),
            "-j",
            "DROP",
        ]
        .map(String::from)
        .into();
        iptables("-I", &rule);
        Isolation { rules: vec![rule] }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        // A failed test keeps the brokers' logs to read.
        if std::thread::panicking() {
            let kept = std::env::temp_dir().join(format!(
                "iggy-failed-{}",
                self.dir
                    .path()
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
            ));
            for node in &self.nodes {
                let log = self
                    .dir
                    .path()
                    .join(format!("node-{}", node.id))
                    .join("broker.log");
                let _ = std::fs::create_dir_all(&kept);
                let _ = std::fs::copy(&log, kept.join(format!("node-{}.log", node.id)));
            }
            eprintln!("the brokers' logs are kept in {}", kept.display());
        }
        let _ = Command::new("bash")
            .arg(script())
            .arg("down")
            .arg(self.dir.path())
            .status();
    }
}

fn iptables(action: &str, rule: &[String]) {
    let status = Command::new("iptables")
        .arg("-w")
        .arg(action)
        .args(rule)
        .status()
        .expect("iptables (the cluster fault tests need it and root)");
    assert!(status.success(), "iptables {action} {rule:?} failed");
}

/// iptables rules that cut a broker off; removed when dropped.
pub struct Isolation {
    rules: Vec<Vec<String>>,
}

impl Isolation {
    pub fn heal(self) {}
}

impl Drop for Isolation {
    fn drop(&mut self) {
        for rule in &self.rules {
            iptables("-D", rule);
        }
    }
}

/// A client logged in as `user` to `address`.
pub async fn client_at(address: SocketAddr, user: &str, password: &str) -> IggyClient {
    let client =
        IggyClient::from_connection_string(&format!("iggy://{user}:{password}@{address}")).unwrap();
    client.connect().await.unwrap();
    client
}

/// A TCP proxy on 127.0.0.1 that sends each new connection to the next
/// backend in turn — what a Kubernetes Service does for the SDK.
pub struct RoundRobinProxy {
    pub address: SocketAddr,
    backends: Arc<std::sync::Mutex<Vec<SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RoundRobinProxy {
    /// Listen now; backends can be named later (brokers may have to know
    /// the proxy's address before they start).
    pub async fn bind() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let backends: Arc<std::sync::Mutex<Vec<SocketAddr>>> = Arc::default();
        let next = Arc::new(AtomicUsize::new(0));
        let task = {
            let backends = backends.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    let backend = {
                        let backends = backends.lock().unwrap();
                        if backends.is_empty() {
                            continue;
                        }
                        backends[next.fetch_add(1, Ordering::Relaxed) % backends.len()]
                    };
                    tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(backend).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                }
            })
        };
        Self {
            address,
            backends,
            task,
        }
    }

    pub async fn start(backends: Vec<SocketAddr>) -> Self {
        let proxy = Self::bind().await;
        proxy.set_backends(backends);
        proxy
    }

    pub fn set_backends(&self, backends: Vec<SocketAddr>) {
        *self.backends.lock().unwrap() = backends;
    }
}

impl Drop for RoundRobinProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
