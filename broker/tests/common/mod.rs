//! Test harness: runs the real `iggy-broker` binary in a temporary data
//! directory on a free port and connects the official `iggy` client to it.
#![allow(dead_code)]

pub mod cluster;
pub mod replicated;
pub mod tls;
pub mod tmpfs;
pub mod upgrade;

use iggy::prelude::*;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct TestBroker {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Where the data directory is, when not inside `dir`.
    data: Option<PathBuf>,
    env: Vec<(String, String)>,
    pub address: SocketAddr,
    pub http_address: Option<SocketAddr>,
    pub quic_address: Option<SocketAddr>,
    pub websocket_address: Option<SocketAddr>,
}

impl TestBroker {
    /// Start a broker with default settings (fsync every batch).
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Start a broker with extra `IGGY_*` environment settings.
    pub fn start_with(env: &[(&str, &str)]) -> Self {
        Self::start_in(None, env)
    }

    /// Start a broker whose data directory is `data` (e.g. on a test
    /// filesystem); its log stays in a temporary directory.
    pub fn start_on(data: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_in(Some(data.to_owned()), env)
    }

    fn start_in(data: Option<PathBuf>, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut broker = Self {
            child: None,
            dir,
            data,
            env,
            address: "127.0.0.1:0".parse().unwrap(),
            http_address: None,
            quic_address: None,
            websocket_address: None,
        };
        broker.spawn();
        broker
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data
            .clone()
            .unwrap_or_else(|| self.dir.path().join("data"))
    }

    fn spawn(&mut self) {
        self.spawn_with_args(&[]);
    }

    fn spawn_with_args(&mut self, args: &[&str]) {
        if let Err(e) = self.try_spawn(args) {
            panic!("iggy-broker {e}");
        }
    }

    /// Start the broker again; `Err` with its log if it exits during
    /// start-up.
    pub fn try_start_again(&mut self) -> Result<(), String> {
        self.try_spawn(&[])
    }

    /// Start the broker again on the addresses it had, without waiting for
    /// its runtime file (a completely full disk keeps it from writing
    /// one): returns once `/readyz` answers 200; `Err` with its log if it
    /// exits first.
    pub fn try_start_again_on_same_addresses(&mut self) -> Result<(), String> {
        let http = self.http_address.expect("the HTTP listener is on");
        self.spawn_child(&[]);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(format!("exited during start-up: {status}\n{}", self.log()));
            }
            if is_ready(http) {
                return Ok(());
            }
            assert!(Instant::now() < deadline, "broker not ready in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn try_spawn(&mut self, args: &[&str]) -> Result<(), String> {
        let runtime_config = self.spawn_child(args);
        let bound = match wait_for_addresses(&runtime_config, self.child.as_mut().unwrap()) {
            Ok(bound) => bound,
            Err(status) => {
                self.child = None;
                return Err(format!("exited during start-up: {status}\n{}", self.log()));
            }
        };
        self.address = bound.tcp;
        self.http_address = bound.http;
        self.quic_address = bound.quic;
        self.websocket_address = bound.websocket;
        Ok(())
    }

    /// Start the process (addresses from an earlier start kept); returns
    /// the runtime file it will write once listening.
    fn spawn_child(&mut self, args: &[&str]) -> PathBuf {
        let data = self.data_dir();
        let runtime_config = data.join("runtime").join("current_config.toml");
        let _ = std::fs::remove_file(&runtime_config);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("broker.log"))
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_iggy-broker"));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("IGGY_SYSTEM_PATH", &data)
            // Reuse the port across restarts so reconnecting clients find it.
            .env("IGGY_TCP_ADDRESS", self.address.to_string())
            .env(
                "IGGY_HTTP_ADDRESS",
                self.http_address
                    .map_or_else(|| "127.0.0.1:0".to_string(), |a| a.to_string()),
            )
            .env(
                "IGGY_WEBSOCKET_ADDRESS",
                self.websocket_address
                    .map_or_else(|| "127.0.0.1:0".to_string(), |a| a.to_string()),
            )
            .env(
                "IGGY_QUIC_ADDRESS",
                self.quic_address
                    .map_or_else(|| "127.0.0.1:0".to_string(), |a| a.to_string()),
            )
            .env("IGGY_ROOT_USERNAME", "iggy")
            .env("IGGY_ROOT_PASSWORD", "iggy")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        for (k, v) in &self.env {
            command.env(k, v);
        }
        self.child = Some(command.spawn().expect("start iggy-broker"));
        runtime_config
    }

    /// `kill -9` the broker: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().unwrap();
        }
    }

    /// SIGTERM the broker and wait for it to exit; returns its exit status
    /// and how long it took.
    pub fn terminate(&mut self) -> (std::process::ExitStatus, Duration) {
        let mut child = self.child.take().expect("broker running");
        let started = Instant::now();
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        (status, started.elapsed())
    }

    /// Start the broker again after `terminate` or `kill9`.
    pub fn start_again(&mut self) {
        self.spawn();
    }

    /// Start the broker again on the same data directory and port.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Restart with command-line flags (e.g. `--fresh`).
    pub fn restart_with_args(&mut self, args: &[&str]) {
        self.kill9();
        self.spawn_with_args(args);
    }

    pub fn connection_string(&self) -> String {
        format!("iggy://iggy:iggy@{}", self.address)
    }

    /// A connected, logged-in official client.
    pub async fn client(&self) -> IggyClient {
        let client = IggyClient::from_connection_string(&self.connection_string()).unwrap();
        client.connect().await.unwrap();
        client
    }

    /// A connected official client that has not logged in.
    pub async fn anonymous_client(&self) -> IggyClient {
        let client = IggyClient::builder()
            .with_tcp()
            .with_server_address(self.address.to_string())
            .build()
            .unwrap();
        client.connect().await.unwrap();
        client
    }

    /// A client logged in as `username`.
    pub async fn client_as(&self, username: &str, password: &str) -> IggyClient {
        let client = self.anonymous_client().await;
        client.login_user(username, password).await.unwrap();
        client
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default()
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Wait until `done` holds (checked every 20 ms); fail naming `what`
/// after `timeout`.
pub async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether `/readyz` at `http` answers 200 (blocking).
pub fn is_ready(http: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(http) else {
        return false;
    };
    let mut response = String::new();
    stream
        .write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .and_then(|()| stream.read_to_string(&mut response))
        .is_ok_and(|_| response.starts_with("HTTP/1.0 200"))
}

/// The addresses a started broker listens on.
struct Bound {
    tcp: SocketAddr,
    quic: Option<SocketAddr>,
    websocket: Option<SocketAddr>,
    http: Option<SocketAddr>,
}

fn wait_for_addresses(
    runtime_config: &Path,
    child: &mut Child,
) -> Result<Bound, std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Err(status);
        }
        if let Ok(text) = std::fs::read_to_string(runtime_config)
            && let Ok(value) = text.parse::<toml::Table>()
            && let Some(address) = value["tcp"]["address"].as_str()
        {
            let listener = |name: &str| {
                value
                    .get(name)
                    .filter(|section| {
                        section.get("enabled").and_then(|e| e.as_bool()) == Some(true)
                    })
                    .and_then(|section| section.get("address"))
                    .and_then(|a| a.as_str())
                    .map(|a| a.parse().unwrap())
            };
            return Ok(Bound {
                tcp: address.parse().unwrap(),
                quic: listener("quic"),
                websocket: listener("websocket"),
                http: listener("http"),
            });
        }
        assert!(Instant::now() < deadline, "broker did not start in time");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `count` messages with ids `first_id..`, a payload naming the id, and user
/// headers carrying the id as a string and as a number.
pub fn messages(first_id: u128, count: usize) -> Vec<IggyMessage> {
    (0..count)
        .map(|i| {
            let id = first_id + i as u128;
            let mut headers = std::collections::BTreeMap::new();
            headers.insert(
                HeaderKey::try_from("id").unwrap(),
                HeaderValue::try_from(id.to_string().as_str()).unwrap(),
            );
            headers.insert(
                HeaderKey::try_from("n").unwrap(),
                HeaderValue::from(id as u64),
            );
            IggyMessage::builder()
                .id(id)
                .payload(bytes::Bytes::from(format!("message-{id}")))
                .user_headers(headers)
                .build()
                .unwrap()
        })
        .collect()
}

pub async fn create_stream_and_topic(
    client: &IggyClient,
    stream: &str,
    topic: &str,
    partitions: u32,
) {
    client.create_stream(stream).await.unwrap();
    client
        .create_topic(
            &Identifier::named(stream).unwrap(),
            topic,
            &TopicCreateOptions {
                partitions_count: Some(partitions),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

pub fn id(name: &str) -> Identifier {
    Identifier::named(name).unwrap()
}

/// Send `count` generated messages starting at id `first_id`.
pub async fn send(
    client: &IggyClient,
    stream: &str,
    topic: &str,
    partitioning: &Partitioning,
    first_id: u128,
    count: usize,
) -> SendMessagesResponse {
    let mut batch = messages(first_id, count);
    client
        .send_messages(&id(stream), &id(topic), partitioning, &mut batch)
        .await
        .unwrap()
}

/// Send batches of 100 to partition 0 of `stream`/t until a send fails,
/// recording every acknowledged id; returns once `at_least` are
/// acknowledged, with the producer still running. Ids start at `first_id`.
pub async fn produce_until_stopped(
    client: IggyClient,
    stream: &str,
    first_id: u128,
    at_least: usize,
) -> (
    tokio::task::JoinHandle<()>,
    std::sync::Arc<std::sync::Mutex<Vec<u128>>>,
) {
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u128>::new()));
    let progress = std::sync::Arc::new(tokio::sync::Notify::new());
    let producer = {
        let (acked, progress) = (acked.clone(), progress.clone());
        let stream = id(stream);
        tokio::spawn(async move {
            let topic = id("t");
            let mut next = first_id;
            loop {
                let mut batch = messages(next, 100);
                let partitioning = Partitioning::partition_id(0);
                let send = client.send_messages(&stream, &topic, &partitioning, &mut batch);
                match tokio::time::timeout(Duration::from_secs(5), send).await {
                    Ok(Ok(_)) => {
                        acked.lock().unwrap().extend(next..next + 100);
                        next += 100;
                        progress.notify_one();
                    }
                    _ => return,
                }
            }
        })
    };
    loop {
        let notified = progress.notified();
        if acked.lock().unwrap().len() >= at_least {
            return (producer, acked);
        }
        assert!(!producer.is_finished(), "the producer stopped early");
        let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
    }
}

/// Every (offset, id) of a partition, read from offset 0 in pages of 1000.
pub async fn poll_all(
    client: &IggyClient,
    stream: &str,
    topic: &str,
    partition: u32,
) -> Vec<(u64, u128)> {
    let consumer = Consumer::new(Identifier::numeric(1).unwrap());
    let mut out = Vec::new();
    loop {
        let polled = client
            .poll_messages(
                &id(stream),
                &id(topic),
                Some(partition),
                &consumer,
                &PollingStrategy::offset(out.len() as u64),
                1_000,
                false,
            )
            .await
            .unwrap();
        assert_eq!(polled.partition_id, partition);
        if polled.messages.is_empty() {
            return out;
        }
        out.extend(
            polled
                .messages
                .iter()
                .map(|m| (m.header.offset, m.header.id)),
        );
    }
}

pub async fn topic(client: &IggyClient, stream: &str, topic: &str) -> Option<TopicDetails> {
    client.get_topic(&id(stream), &id(topic)).await.unwrap()
}

/// A plain HTTP/1.0 GET; returns the whole response (status line included).
pub async fn http_get(address: SocketAddr, path: &str) -> String {
    http_get_with(address, path, "").await
}

/// A GET with extra header lines (each ending in `\r\n`).
pub async fn http_get_with(address: SocketAddr, path: &str, headers: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n{headers}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

/// An HTTP/1.0 request with a JSON body; returns the whole response.
pub async fn http_json(
    address: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> String {
    try_http_json(address, method, path, token, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {path} on {address}: {e}"))
}

/// [`http_json`] for a broker that may be down: the error instead of a
/// panic.
pub async fn try_http_json(
    address: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response)
}

/// An access token for the REST API of the broker at `address`.
pub async fn http_login(address: SocketAddr, user: &str, password: &str) -> String {
    let response = http_json(
        address,
        "POST",
        "/users/login",
        None,
        &format!(r#"{{"username":"{user}","password":"{password}"}}"#),
    )
    .await;
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    let json: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("login answered {response}: {e}"));
    json["access_token"]["token"].as_str().unwrap().to_string()
}

/// The value of one series in a Prometheus text exposition.
pub fn metric(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in:\n{metrics}"))
}
