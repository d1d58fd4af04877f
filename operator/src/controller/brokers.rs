//! The brokers' cluster admin API (`docs/admin-api.md`), through the
//! client Service, as the root user: how the cluster is doing (for the
//! `IggyCluster` status: members, metadata leader) and where each
//! partition's replicas are (for the `IggyTopic` status), and changing a
//! topic's replication factor.
//! Brokers that cannot be reached (still starting, or an operator running
//! outside the cluster network) are not an error: the status just lacks
//! what only they can tell.

use super::Context;
use crate::crd::IggyCluster;
use crate::crd::cluster::ClusterMember;
use crate::resources::{names, tls};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, ResourceExt};
use serde::Deserialize;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(3);

/// What a broker reports on `/cluster/status` (the fields used here).
#[derive(Debug, Deserialize)]
pub struct ClusterStatus {
    /// The uid the brokers' cluster got when it was formed (absent from
    /// builds before uids, and until the cluster is named).
    #[serde(default)]
    pub uid: Option<String>,
    pub leader: Option<u32>,
    pub nodes: Vec<NodeStatus>,
}

#[derive(Debug, Deserialize)]
pub struct NodeStatus {
    pub id: u32,
    pub status: String,
    #[serde(default)]
    pub applied_index: u64,
    pub version: Option<String>,
    /// A voter of the metadata group (brokers before dynamic membership
    /// do not say: all of theirs were).
    #[serde(default = "yes")]
    pub voter: bool,
    /// Its data directory runs low on space (brokers before this field do
    /// not say).
    #[serde(default)]
    pub low_on_space: bool,
}

fn yes() -> bool {
    true
}

/// Why the brokers answering now are not the cluster this `IggyCluster`
/// ran until now, if they are not: their cluster's uid changed. It happens
/// when the cluster was formed anew — every broker's volume lost, or a
/// broker that founded a cluster of its own is the only one left answering
/// (`docs/decisions.md`, founding) — and its metadata (streams, topics,
/// users) is not the earlier cluster's.
pub fn founded_anew(before: Option<&str>, now: Option<&str>) -> Option<String> {
    match (before, now) {
        (Some(before), Some(now)) if before != now => Some(format!(
            "the brokers answer as cluster {now}, not {before}, which this IggyCluster ran \
             until now: the cluster was formed anew (every volume lost, or only a broker that \
             founded a cluster of its own answers) and does not hold the earlier cluster's \
             streams, topics and users"
        )),
        _ => None,
    }
}

/// What a rebalance call did (`POST /cluster/rebalance`).
#[derive(Debug, Deserialize)]
pub struct Rebalance {
    #[serde(default)]
    pub in_progress: usize,
    #[serde(default)]
    pub moves: Vec<serde_json::Value>,
    #[serde(default)]
    pub leader_moves: Vec<serde_json::Value>,
    pub balanced: bool,
}

#[derive(Deserialize)]
struct Identity {
    access_token: Token,
}

#[derive(Deserialize)]
struct Token {
    token: String,
}

/// A logged-in connection to the brokers' HTTP API, through the client
/// Service.
pub struct AdminSession {
    client: reqwest::Client,
    base: String,
    token: String,
}

/// How to reach the brokers as root: the root user's name and password
/// and, with TLS on the HTTP listener, the CAs to verify them by.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// The published CA bundle (PEM), when TLS is on.
    pub ca_bundle: Option<String>,
}

/// The root credentials (and the CA bundle, with TLS); `None` while the
/// root-credentials Secret is missing.
pub async fn credentials(
    ctx: &Context,
    cluster: &IggyCluster,
    namespace: &str,
) -> crate::Result<Option<Credentials>> {
    let Some((username, password)) =
        super::credentials::root_credentials(ctx, cluster, namespace).await?
    else {
        return Ok(None);
    };
    let ca_bundle = if cluster.spec.tls().is_some() {
        let maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
        maps.get_opt(&names::ca_bundle(cluster))
            .await?
            .and_then(|map| map.data?.remove(tls::CA_BUNDLE_KEY))
    } else {
        None
    };
    Ok(Some(Credentials {
        username,
        password,
        ca_bundle,
    }))
}

/// The brokers' HTTP API through the client Service.
fn service_base(cluster: &IggyCluster) -> String {
    format!(
        "{}://{}.{}.svc:{}",
        scheme(cluster),
        names::client_service(cluster),
        cluster.namespace().unwrap_or_default(),
        cluster.spec.listeners.http_port
    )
}

/// Broker `ordinal`'s own HTTP API (its pod's DNS name).
fn pod_base(cluster: &IggyCluster, ordinal: i32) -> String {
    format!(
        "{}://{}-{ordinal}.{}.{}.svc:{}",
        scheme(cluster),
        names::statefulset(cluster),
        names::headless_service(cluster),
        cluster.namespace().unwrap_or_default(),
        cluster.spec.listeners.http_port
    )
}

fn scheme(cluster: &IggyCluster) -> &'static str {
    if tls::https(cluster) { "https" } else { "http" }
}

impl AdminSession {
    /// Log in through the client Service.
    pub async fn login(
        cluster: &IggyCluster,
        credentials: &Credentials,
    ) -> Result<Self, reqwest::Error> {
        Self::login_at(service_base(cluster), credentials).await
    }

    async fn login_at(base: String, credentials: &Credentials) -> Result<Self, reqwest::Error> {
        let client = http_client(credentials.ca_bundle.as_deref())?;
        let identity: Identity = client
            .post(format!("{base}/users/login"))
            .json(&serde_json::json!({
                "username": credentials.username,
                "password": credentials.password,
            }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(Self {
            client,
            base,
            token: identity.access_token.token,
        })
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, reqwest::Error> {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await
    }

    /// The cluster's status as one of its brokers sees it.
    pub async fn status(&self) -> Result<ClusterStatus, reqwest::Error> {
        self.get("/cluster/status").await
    }

    /// Whether restarting broker `node` now keeps every partition led and
    /// at its minimum of in-sync replicas; if not, why.
    pub async fn safe_to_restart(&self, node: u32) -> Result<SafeToRestart, reqwest::Error> {
        self.get(&format!("/cluster/nodes/{node}/safe-to-restart"))
            .await
    }

    /// Every partition's replicas, leader and in-sync set.
    pub async fn partitions(&self) -> Result<Vec<PartitionStatus>, reqwest::Error> {
        self.get("/cluster/partitions").await
    }

    /// Give every partition of a topic `factor` replicas (one operation
    /// on the brokers; progress shows in [`Self::partitions`]). The error
    /// carries the broker's explanation.
    pub async fn change_replication_factor(
        &self,
        stream_id: u32,
        topic_id: u32,
        factor: u8,
    ) -> Result<(), String> {
        self.send(
            reqwest::Method::POST,
            &format!("/cluster/topics/{stream_id}/{topic_id}/replication-factor"),
            serde_json::json!({ "factor": factor }),
        )
        .await
        .map(drop)
    }

    /// Spread replicas and leaders over the brokers, at most `max_moves`
    /// changes this call.
    pub async fn rebalance(&self, max_moves: usize) -> Result<Rebalance, String> {
        let body = self
            .send(
                reqwest::Method::POST,
                "/cluster/rebalance",
                serde_json::json!({ "max_moves": max_moves }),
            )
            .await?;
        serde_json::from_str(&body).map_err(|e| format!("rebalance answer: {e}: {body}"))
    }

    /// Move every replica off broker `node`.
    pub async fn drain(&self, node: u32) -> Result<(), String> {
        self.send(
            reqwest::Method::POST,
            &format!("/cluster/nodes/{node}/drain"),
            serde_json::json!({}),
        )
        .await
        .map(drop)
    }

    /// Take broker `node` out of the cluster's membership (refused while
    /// it holds replicas). Whether this call removed it (false: it was not
    /// a member).
    pub async fn remove_node(&self, node: u32) -> Result<bool, String> {
        #[derive(Deserialize)]
        struct Removal {
            removed: bool,
        }
        let body = self
            .send(
                reqwest::Method::DELETE,
                &format!("/cluster/nodes/{node}"),
                serde_json::json!({}),
            )
            .await?;
        serde_json::from_str::<Removal>(&body)
            .map(|r| r.removed)
            .map_err(|e| format!("removal answer: {e}: {body}"))
    }

    /// A change; the answer's body, or the status and body as the error.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> Result<String, String> {
        let response = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            Ok(text)
        } else {
            Err(format!("{status}: {text}"))
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct SafeToRestart {
    pub safe: bool,
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Partitions of one replica, unavailable during the restart.
    #[serde(default)]
    pub unreplicated: Vec<String>,
}

/// One partition's replication, as `GET /cluster/partitions` reports it.
#[derive(Debug, Clone, Deserialize)]
pub struct PartitionStatus {
    pub stream_id: u32,
    pub topic_id: u32,
    pub partition_id: u32,
    pub replicas: Vec<u32>,
    pub leader: Option<u32>,
    pub in_sync: Vec<u32>,
    #[serde(default)]
    pub replication_factor: Option<u8>,
    #[serde(default)]
    pub reassigning: Option<Vec<u32>>,
}

/// What broker `ordinal` reports of its TLS (`GET /cluster/tls`, asked
/// of that broker itself).
pub async fn broker_tls(
    cluster: &IggyCluster,
    ordinal: i32,
    credentials: &Credentials,
) -> Result<TlsReport, reqwest::Error> {
    AdminSession::login_at(pod_base(cluster, ordinal), credentials)
        .await?
        .get("/cluster/tls")
        .await
}

/// A broker's certificates and trusted CAs (the fields used here).
#[derive(Debug, Deserialize)]
pub struct TlsReport {
    #[serde(default)]
    pub certificates: Vec<Described>,
    #[serde(default)]
    pub trusted_cas: Vec<Described>,
}

#[derive(Debug, Deserialize)]
pub struct Described {
    pub subject: String,
    #[serde(default)]
    pub issuer: String,
}

/// A client for the brokers' HTTP listener, trusting `ca_bundle` (PEM)
/// when TLS is on. The TLS backend is configured explicitly: the
/// operator's image has no system CA store, which reqwest's default would
/// try to load, and the crypto provider is the one kube uses (ring).
fn http_client(ca_bundle: Option<&str>) -> Result<reqwest::Client, reqwest::Error> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    if let Some(pem) = ca_bundle {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        for ca in CertificateDer::pem_slice_iter(pem.as_bytes()).flatten() {
            let _ = roots.add(ca);
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls' default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .tls_backend_preconfigured(tls)
        .build()
}

/// The members for the `IggyCluster` status.
pub fn members(cluster: &IggyCluster, status: &ClusterStatus) -> Vec<ClusterMember> {
    status
        .nodes
        .iter()
        .map(|node| ClusterMember {
            id: node.id as i32,
            pod: format!("{}-{}", names::statefulset(cluster), node.id),
            status: node.status.clone(),
            applied_index: node.applied_index,
            version: node.version.clone(),
            low_on_space: node.low_on_space,
        })
        .collect()
}

/// The members that run low on disk space now and did not before (one
/// Warning Event each, not one per reconcile).
pub fn newly_low<'a>(before: &[ClusterMember], now: &'a [ClusterMember]) -> Vec<&'a ClusterMember> {
    now.iter()
        .filter(|member| member.low_on_space)
        .filter(|member| {
            !before
                .iter()
                .any(|earlier| earlier.id == member.id && earlier.low_on_space)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    /// The preconfigured rustls backend is the one reqwest links against
    /// (a version mismatch is an "unknown TLS backend" error here).
    #[test]
    fn the_broker_client_builds_without_a_system_ca_store() {
        super::http_client(None).expect("client");
    }

    #[test]
    fn a_member_is_announced_low_on_space_once_until_it_has_room_again() {
        use super::newly_low;
        use crate::crd::cluster::ClusterMember;
        let member = |id: i32, low_on_space: bool| ClusterMember {
            id,
            pod: format!("demo-{id}"),
            status: "healthy".into(),
            applied_index: 1,
            version: None,
            low_on_space,
        };
        let ids = |members: Vec<&ClusterMember>| members.iter().map(|m| m.id).collect::<Vec<_>>();
        let calm = [member(0, false), member(1, false)];
        let one_low = [member(0, false), member(1, true)];
        assert_eq!(ids(newly_low(&calm, &one_low)), vec![1]);
        assert_eq!(ids(newly_low(&one_low, &one_low)), Vec::<i32>::new());
        assert_eq!(ids(newly_low(&one_low, &calm)), Vec::<i32>::new());
        // A member first seen low (a new status) is announced too.
        assert_eq!(ids(newly_low(&[], &one_low)), vec![1]);
    }

    #[test]
    fn only_another_uid_is_a_cluster_formed_anew() {
        use super::founded_anew;
        assert!(founded_anew(Some("a"), Some("b")).is_some_and(|why| why.contains("as cluster b")));
        // The first uid seen, the same one, or a broker that reports none.
        for (before, now) in [(None, Some("a")), (Some("a"), Some("a")), (Some("a"), None)] {
            assert_eq!(founded_anew(before, now), None, "{before:?} → {now:?}");
        }
    }
}
