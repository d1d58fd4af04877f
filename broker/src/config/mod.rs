//! Broker configuration: built-in defaults, then a TOML file, then
//! `IGGY_<SECTION>_<KEY>` environment variables, then command-line flags.
//!
//! Every value is validated at start-up; an invalid one stops the broker with
//! a message naming the key and the reason. The effective configuration, with
//! the addresses actually bound, is written to
//! `<system.path>/runtime/current_config.toml` (upstream's contract, which
//! test harnesses wait for).

mod cluster;

pub use cluster::{
    ClusterConfig, ClusterSettings, NodeConfig, NodePorts, Peer, PeerTlsConfig, PeerTlsSettings,
};

use crate::storage::FsyncPolicy;
use iggy_common::{IggyByteSize, IggyDuration};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub system: SystemConfig,
    pub tcp: TcpConfig,
    pub quic: QuicConfig,
    pub websocket: WebSocketListenerConfig,
    pub http: HttpConfig,
    pub topic: TopicDefaults,
    pub retention: RetentionConfig,
    pub limits: Limits,
    pub cluster: ClusterConfig,
}

/// The background cleaner that enforces `message_expiry` and
/// `max_topic_size` on sealed segments.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    pub enabled: bool,
    /// How often the cleaner runs, e.g. `"1m"`.
    pub interval: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SystemConfig {
    /// Data directory: metadata, partitions, runtime files.
    pub path: PathBuf,
    /// Log format: `text` or `json`.
    pub log_format: String,
    /// Space kept free on the data directory's filesystem: sends are
    /// refused below it, metadata changes other than deletions below half
    /// of it (see `storage::space`).
    pub reserved_space: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TcpConfig {
    pub enabled: bool,
    /// Bind address; `127.0.0.1:8090` standalone, `0.0.0.0:8090` in containers.
    pub address: String,
    pub tls: TlsConfig,
}

/// The WebSocket listener: the binary protocol in binary messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSocketListenerConfig {
    pub enabled: bool,
    /// Bind address; `127.0.0.1:8092` standalone.
    pub address: String,
    pub tls: TlsConfig,
}

/// The QUIC listener (always TLS 1.3).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuicConfig {
    pub enabled: bool,
    /// UDP bind address; `127.0.0.1:8080` standalone.
    pub address: String,
    /// PEM certificate chain and key. Both empty: a self-signed `localhost`
    /// certificate generated in memory at every start (development only).
    pub cert_file: String,
    pub key_file: String,
    /// How often the files are checked for a new certificate.
    pub reload_interval: String,
    /// Connections silent for this long are closed (clients keep alive).
    pub max_idle_timeout: String,
    /// Receive and send buffer of the UDP socket. The kernel's default
    /// (~208 KiB) overflows when clients send megabyte batches at once:
    /// every dropped datagram then costs a loss-recovery wait (25 ms and
    /// more). The kernel caps it at `net.core.rmem_max`/`wmem_max`.
    pub socket_buffer_size: String,
    /// How far a client may send ahead of what the broker has read, per
    /// stream (one request). Below the SDK's default `send_window` (100 KB)
    /// so a sending client waits for flow control, which the broker answers
    /// as it reads, instead of for acknowledgements, which QUIC may delay
    /// 25 ms. Raise it, with the clients' `send_window`, for links with a
    /// long round trip.
    pub stream_receive_window: String,
}

/// TLS for a listener (upstream's `[tcp.tls]` keys, plus reloading).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub enabled: bool,
    /// PEM certificate chain; empty = `<system.path>/certs/iggy_cert.pem`.
    pub cert_file: String,
    /// PEM private key; empty = `<system.path>/certs/iggy_key.pem`.
    pub key_file: String,
    /// Generate a self-signed certificate (for `localhost`) when the files
    /// do not exist — for development only.
    pub self_signed: bool,
    /// How often the files are checked for a new certificate.
    pub reload_interval: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub enabled: bool,
    /// Bind address of the HTTP listener (health probes).
    pub address: String,
    /// When set, `/metrics` requires `Authorization: Bearer <token>`.
    /// Empty: open (the usual in-cluster setup).
    pub metrics_token: String,
    /// Key signing REST access tokens. Empty: random per start (tokens do
    /// not survive a restart).
    pub jwt_secret: String,
    /// Lifetime of a REST access token.
    pub jwt_expiry: String,
    /// TLS for the HTTP listener (`https://`).
    pub tls: TlsConfig,
}

/// Defaults applied to topics that do not set an option themselves.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicDefaults {
    /// Segment roll size, e.g. `"1 GiB"`.
    pub segment_size: String,
    /// `always` (fsync each batch before acknowledging), `interval`
    /// (background fsync every `fsync_interval`) or `never`.
    pub fsync: String,
    pub fsync_interval: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request frame (header + body) accepted, e.g. `"64 MiB"`.
    pub max_request_size: String,
    /// Most concurrent client connections.
    pub max_connections: usize,
    /// Most concurrent client connections from one IP address (well above
    /// what one application host opens; a runaway or hostile one cannot
    /// take every connection).
    pub max_connections_per_address: usize,
    /// A connection that has not logged in this long after it opened is
    /// closed, e.g. `"30s"`.
    pub login_timeout: String,
    /// Most bytes one poll reply reads, e.g. `"16 MiB"`.
    pub max_poll_size: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            system: SystemConfig {
                path: PathBuf::from("local_data"),
                log_format: "text".into(),
                reserved_space: "64 MiB".into(),
            },
            tcp: TcpConfig {
                enabled: true,
                address: "127.0.0.1:8090".into(),
                tls: TlsConfig::disabled(),
            },
            quic: QuicConfig {
                enabled: true,
                address: "127.0.0.1:8080".into(),
                cert_file: String::new(),
                key_file: String::new(),
                reload_interval: "5s".into(),
                max_idle_timeout: "30s".into(),
                socket_buffer_size: "4 MiB".into(),
                stream_receive_window: "96 KiB".into(),
            },
            websocket: WebSocketListenerConfig {
                enabled: true,
                address: "127.0.0.1:8092".into(),
                tls: TlsConfig::disabled(),
            },
            http: HttpConfig {
                enabled: true,
                address: "127.0.0.1:3000".into(),
                metrics_token: String::new(),
                jwt_secret: String::new(),
                jwt_expiry: "1h".into(),
                tls: TlsConfig::disabled(),
            },
            topic: TopicDefaults {
                segment_size: "1 GiB".into(),
                fsync: "always".into(),
                fsync_interval: "1s".into(),
            },
            retention: RetentionConfig {
                enabled: true,
                interval: "1m".into(),
            },
            limits: Limits {
                max_request_size: "64 MiB".into(),
                max_connections: 10_000,
                max_connections_per_address: 1_000,
                login_timeout: "30s".into(),
                max_poll_size: "16 MiB".into(),
            },
            cluster: ClusterConfig::default(),
        }
    }
}

impl Default for SystemConfig {
    fn default() -> Self {
        Config::default().system
    }
}
impl Default for TcpConfig {
    fn default() -> Self {
        Config::default().tcp
    }
}
impl Default for WebSocketListenerConfig {
    fn default() -> Self {
        Config::default().websocket
    }
}
impl Default for QuicConfig {
    fn default() -> Self {
        Config::default().quic
    }
}
impl Default for TlsConfig {
    fn default() -> Self {
        Self::disabled()
    }
}

impl TlsConfig {
    /// Plain text (the default for every listener that may use TLS).
    fn disabled() -> Self {
        TlsConfig {
            enabled: false,
            cert_file: String::new(),
            key_file: String::new(),
            self_signed: false,
            reload_interval: "5s".into(),
        }
    }
}
impl Default for HttpConfig {
    fn default() -> Self {
        Config::default().http
    }
}
impl Default for TopicDefaults {
    fn default() -> Self {
        Config::default().topic
    }
}
impl Default for RetentionConfig {
    fn default() -> Self {
        Config::default().retention
    }
}
impl Default for Limits {
    fn default() -> Self {
        Config::default().limits
    }
}

/// A configuration error that names the offending key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: `{key}`: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

pub(crate) fn invalid(key: &str, reason: impl ToString) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        reason: reason.to_string(),
    }
}

/// Validated values derived from the textual configuration.
/// A listener's TLS settings with defaults resolved and values validated.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub self_signed: bool,
    pub reload_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct Effective {
    pub segment_size_bytes: u64,
    /// TLS of the TCP, WebSocket and HTTP listeners, when enabled.
    pub tcp_tls: Option<TlsSettings>,
    pub websocket_tls: Option<TlsSettings>,
    pub http_tls: Option<TlsSettings>,
    /// QUIC certificate and key paths; `None` = in-memory self-signed.
    pub quic_certificate: Option<(PathBuf, PathBuf)>,
    pub quic_reload_interval: Duration,
    pub quic_max_idle_timeout: Duration,
    pub quic_socket_buffer_bytes: usize,
    pub quic_stream_receive_window_bytes: u32,
    /// Lifetime of REST access tokens.
    pub http_token_lifetime: Duration,
    pub retention_interval: Duration,
    pub login_timeout: Duration,
    pub fsync: FsyncPolicy,
    pub max_request_bytes: usize,
    pub max_poll_bytes: usize,
    pub reserved_space_bytes: u64,
    /// `None`: a standalone broker.
    pub cluster: Option<ClusterSettings>,
}

/// Smallest segment the broker accepts as a default (tests use small ones).
pub const MIN_SEGMENT_SIZE_BYTES: u64 = 4 * 1024;
/// Largest segment: index positions and upstream's ceiling.
pub const MAX_SEGMENT_SIZE_BYTES: u64 = 1024 * 1024 * 1024;

fn byte_size(key: &str, value: &str) -> Result<u64, ConfigError> {
    IggyByteSize::from_str(value)
        .map(|size| size.as_bytes_u64())
        .map_err(|e| invalid(key, format!("`{value}` is not a byte size ({e})")))
}

pub(crate) fn duration(key: &str, value: &str) -> Result<Duration, ConfigError> {
    IggyDuration::from_str(value)
        .map(|d| d.get_duration())
        .map_err(|e| invalid(key, format!("`{value}` is not a duration ({e})")))
}

impl Config {
    /// Load defaults ← file (if any) ← environment overrides.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut value = toml::Value::try_from(Config::default()).expect("defaults serialize");
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| invalid("--config", format!("cannot read {}: {e}", path.display())))?;
            let from_file: toml::Value = toml::from_str(&text)
                .map_err(|e| invalid("--config", format!("{}: {e}", path.display())))?;
            merge(&mut value, from_file);
        }
        apply_env_overrides(&mut value, env)?;
        let config: Config = value
            .try_into()
            .map_err(|e: toml::de::Error| invalid("config", e.message().to_string()))?;
        config.effective()?;
        Ok(config)
    }

    /// Check every value and derive the typed settings.
    pub fn effective(&self) -> Result<Effective, ConfigError> {
        let segment_size_bytes = byte_size("topic.segment_size", &self.topic.segment_size)?;
        if !(MIN_SEGMENT_SIZE_BYTES..=MAX_SEGMENT_SIZE_BYTES).contains(&segment_size_bytes) {
            return Err(invalid(
                "topic.segment_size",
                format!("must be between {MIN_SEGMENT_SIZE_BYTES} B and 1 GiB"),
            ));
        }
        let fsync = match self.topic.fsync.as_str() {
            "always" => FsyncPolicy::Always,
            "never" => FsyncPolicy::Never,
            "interval" => FsyncPolicy::Interval(duration(
                "topic.fsync_interval",
                &self.topic.fsync_interval,
            )?),
            other => {
                return Err(invalid(
                    "topic.fsync",
                    format!("`{other}` is not one of always, interval, never"),
                ));
            }
        };
        let max_request_bytes =
            byte_size("limits.max_request_size", &self.limits.max_request_size)? as usize;
        if max_request_bytes < 4096 {
            return Err(invalid("limits.max_request_size", "must be at least 4 KiB"));
        }
        let max_poll_bytes =
            byte_size("limits.max_poll_size", &self.limits.max_poll_size)? as usize;
        if self.limits.max_connections == 0 {
            return Err(invalid("limits.max_connections", "must be at least 1"));
        }
        if self.limits.max_connections_per_address == 0 {
            return Err(invalid(
                "limits.max_connections_per_address",
                "must be at least 1",
            ));
        }
        let login_timeout = duration("limits.login_timeout", &self.limits.login_timeout)?;
        if login_timeout.is_zero() {
            return Err(invalid("limits.login_timeout", "must be longer than zero"));
        }
        if !matches!(self.system.log_format.as_str(), "text" | "json") {
            return Err(invalid("system.log_format", "must be `text` or `json`"));
        }
        if self.tcp.enabled {
            self.tcp
                .address
                .parse::<std::net::SocketAddr>()
                .map_err(|e| invalid("tcp.address", format!("`{}`: {e}", self.tcp.address)))?;
        }
        if self.http.enabled {
            self.http
                .address
                .parse::<std::net::SocketAddr>()
                .map_err(|e| invalid("http.address", format!("`{}`: {e}", self.http.address)))?;
        }
        let retention_interval = duration("retention.interval", &self.retention.interval)?;
        if retention_interval.is_zero() {
            return Err(invalid("retention.interval", "must be longer than zero"));
        }
        let certs = self.system.path.join("certs");
        let tls_settings = |section: &str, tls: &TlsConfig| -> Result<_, ConfigError> {
            let key = format!("{section}.tls.reload_interval");
            let reload_interval = duration(&key, &tls.reload_interval)?;
            if reload_interval.is_zero() {
                return Err(invalid(&key, "must be longer than zero"));
            }
            let or_default = |file: &str, default: &str| {
                if file.is_empty() {
                    certs.join(default)
                } else {
                    PathBuf::from(file)
                }
            };
            Ok(tls.enabled.then(|| TlsSettings {
                cert: or_default(&tls.cert_file, "iggy_cert.pem"),
                key: or_default(&tls.key_file, "iggy_key.pem"),
                self_signed: tls.self_signed,
                reload_interval,
            }))
        };
        let tcp_tls = tls_settings("tcp", &self.tcp.tls)?;
        let websocket_tls = tls_settings("websocket", &self.websocket.tls)?;
        let http_tls = tls_settings("http", &self.http.tls)?;
        if self.websocket.enabled {
            self.websocket
                .address
                .parse::<std::net::SocketAddr>()
                .map_err(|e| {
                    invalid(
                        "websocket.address",
                        format!("`{}`: {e}", self.websocket.address),
                    )
                })?;
        }
        let quic = &self.quic;
        let quic_certificate = match (quic.cert_file.is_empty(), quic.key_file.is_empty()) {
            (true, true) => None,
            (false, false) => Some((
                PathBuf::from(&quic.cert_file),
                PathBuf::from(&quic.key_file),
            )),
            _ => {
                return Err(invalid(
                    "quic.cert_file",
                    "set both quic.cert_file and quic.key_file, or neither",
                ));
            }
        };
        let quic_reload_interval = duration("quic.reload_interval", &quic.reload_interval)?;
        let quic_max_idle_timeout = duration("quic.max_idle_timeout", &quic.max_idle_timeout)?;
        if quic_reload_interval.is_zero() || quic_max_idle_timeout.is_zero() {
            return Err(invalid(
                "quic",
                "reload_interval and max_idle_timeout must be longer than zero",
            ));
        }
        let quic_socket_buffer_bytes =
            byte_size("quic.socket_buffer_size", &quic.socket_buffer_size)? as usize;
        let quic_stream_receive_window_bytes =
            byte_size("quic.stream_receive_window", &quic.stream_receive_window)?;
        let quic_stream_receive_window_bytes = u32::try_from(quic_stream_receive_window_bytes)
            .ok()
            .filter(|bytes| *bytes >= 1024)
            .ok_or_else(|| invalid("quic.stream_receive_window", "must be 1 KiB to 4 GiB"))?;
        if quic.enabled {
            quic.address
                .parse::<std::net::SocketAddr>()
                .map_err(|e| invalid("quic.address", format!("`{}`: {e}", quic.address)))?;
        }
        let http_token_lifetime = duration("http.jwt_expiry", &self.http.jwt_expiry)?;
        if http_token_lifetime < Duration::from_secs(1) {
            return Err(invalid("http.jwt_expiry", "must be at least 1s"));
        }
        let cluster = self.cluster.settings()?;
        Ok(Effective {
            cluster,
            http_token_lifetime,
            segment_size_bytes,
            tcp_tls,
            websocket_tls,
            http_tls,
            quic_certificate,
            quic_reload_interval,
            quic_max_idle_timeout,
            quic_socket_buffer_bytes,
            quic_stream_receive_window_bytes,
            retention_interval,
            login_timeout,
            fsync,
            max_request_bytes,
            max_poll_bytes,
            reserved_space_bytes: byte_size("system.reserved_space", &self.system.reserved_space)?,
        })
    }

    pub fn runtime_dir(&self) -> PathBuf {
        self.system.path.join("runtime")
    }
}

fn merge(base: &mut toml::Value, overlay: toml::Value) {
    match (base, overlay) {
        (toml::Value::Table(base), toml::Value::Table(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// Apply `IGGY_<SECTION>_<KEY>` variables to the known keys. The value is
/// parsed as the type of the key's default; variables for keys this broker
/// does not have are ignored (upstream harnesses set some).
fn apply_env_overrides(
    value: &mut toml::Value,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("IGGY_"))
        .collect();
    override_table(value, "IGGY", "", &env)
}

/// Apply overrides to every scalar key of `value`, recursing into nested
/// tables: `[tcp.tls] enabled` is `IGGY_TCP_TLS_ENABLED`.
fn override_table(
    value: &mut toml::Value,
    prefix: &str,
    dotted_prefix: &str,
    env: &[(String, String)],
) -> Result<(), ConfigError> {
    let toml::Value::Table(table) = value else {
        return Ok(());
    };
    for (key, current) in table.iter_mut() {
        let name = format!("{prefix}_{key}").to_uppercase();
        let dotted = if dotted_prefix.is_empty() {
            key.clone()
        } else {
            format!("{dotted_prefix}.{key}")
        };
        if current.is_table() {
            override_table(current, &name, &dotted, env)?;
            continue;
        }
        let Some((_, raw)) = env.iter().find(|(k, _)| *k == name) else {
            continue;
        };
        *current = match current {
            toml::Value::Boolean(_) => toml::Value::Boolean(
                raw.parse()
                    .map_err(|_| invalid(&dotted, format!("{name}=`{raw}` is not a boolean")))?,
            ),
            toml::Value::Integer(_) => toml::Value::Integer(
                raw.parse()
                    .map_err(|_| invalid(&dotted, format!("{name}=`{raw}` is not an integer")))?,
            ),
            _ => toml::Value::String(raw.clone()),
        };
    }
    Ok(())
}

/// Where the client listeners are bound (reported in the runtime file and,
/// for ports left to the OS, in cluster metadata).
#[derive(Debug, Clone, Copy, Default)]
pub struct BoundAddresses {
    pub tcp: Option<std::net::SocketAddr>,
    pub quic: Option<std::net::SocketAddr>,
    pub http: Option<std::net::SocketAddr>,
    pub websocket: Option<std::net::SocketAddr>,
}

/// Write `<path>/runtime/current_config.toml` with the bound addresses.
pub fn write_runtime_config(config: &Config, bound: &BoundAddresses) -> std::io::Result<()> {
    let mut effective = config.clone();
    if let Some(addr) = bound.tcp {
        effective.tcp.address = addr.to_string();
    }
    if let Some(addr) = bound.quic {
        effective.quic.address = addr.to_string();
    }
    if let Some(addr) = bound.websocket {
        effective.websocket.address = addr.to_string();
    }
    if let Some(addr) = bound.http {
        effective.http.address = addr.to_string();
    }
    // The file is for humans and harnesses; secrets stay out of it.
    for secret in [
        &mut effective.http.metrics_token,
        &mut effective.http.jwt_secret,
        &mut effective.cluster.auth.shared_secret,
    ] {
        if !secret.is_empty() {
            *secret = "<redacted>".into();
        }
    }
    let text = toml::to_string_pretty(&effective).map_err(std::io::Error::other)?;
    let dir = config.runtime_dir();
    std::fs::create_dir_all(&dir)?;
    crate::storage::fs::write_atomic(&dir.join("current_config.toml"), text.as_bytes(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_upstream() {
        let config = Config::load(None, env(&[])).unwrap();
        assert_eq!(config.tcp.address, "127.0.0.1:8090");
        let effective = config.effective().unwrap();
        assert_eq!(effective.fsync, FsyncPolicy::Always);
        assert_eq!(effective.segment_size_bytes, 1024 * 1024 * 1024);
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("broker.toml");
        std::fs::write(
            &file,
            "[tcp]\naddress = \"0.0.0.0:9000\"\n[topic]\nsegment_size = \"2 MiB\"\n",
        )
        .unwrap();
        let config = Config::load(
            Some(&file),
            env(&[
                ("IGGY_TCP_ADDRESS", "127.0.0.1:9100"),
                ("IGGY_UNKNOWN_KEY", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(config.tcp.address, "127.0.0.1:9100");
        assert_eq!(
            config.effective().unwrap().segment_size_bytes,
            2 * 1024 * 1024
        );
    }

    #[test]
    fn invalid_values_name_the_key() {
        let err = Config::load(None, env(&[("IGGY_TOPIC_FSYNC", "sometimes")])).unwrap_err();
        assert_eq!(err.key, "topic.fsync");
        let err = Config::load(None, env(&[("IGGY_TCP_ENABLED", "maybe")])).unwrap_err();
        assert_eq!(err.key, "tcp.enabled");
        let err = Config::load(None, env(&[("IGGY_TOPIC_SEGMENT_SIZE", "1 B")])).unwrap_err();
        assert_eq!(err.key, "topic.segment_size");
        let err = Config::load(None, env(&[("IGGY_TCP_ADDRESS", "nowhere")])).unwrap_err();
        assert_eq!(err.key, "tcp.address");
        for window in ["0 B", "5 GiB", "wide"] {
            let err = Config::load(None, env(&[("IGGY_QUIC_STREAM_RECEIVE_WINDOW", window)]))
                .unwrap_err();
            assert_eq!(err.key, "quic.stream_receive_window");
        }
        let err = Config::load(None, env(&[("IGGY_QUIC_SOCKET_BUFFER_SIZE", "big")])).unwrap_err();
        assert_eq!(err.key, "quic.socket_buffer_size");
    }

    #[test]
    fn unknown_keys_in_the_file_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("broker.toml");
        std::fs::write(&file, "[tcp]\nadress = \"0.0.0.0:9000\"\n").unwrap();
        let err = Config::load(Some(&file), env(&[])).unwrap_err();
        assert!(err.reason.contains("adress"), "{err}");
    }
}
