//! Asking the brokers how their cluster is doing: their REST API's
//! `GET /cluster/status`, through the client Service, as the root user.
//!
//! The answer fills the `IggyCluster` status (members, metadata leader).
//! Brokers that cannot be reached (still starting, or an operator running
//! outside the cluster network) are not an error: the status just lacks
//! what only they can tell.

use crate::crd::IggyCluster;
use crate::crd::cluster::ClusterMember;
use crate::resources::names;
use kube::ResourceExt;
use serde::Deserialize;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(3);

/// What a broker reports on `/cluster/status` (the fields used here).
#[derive(Debug, Deserialize)]
pub struct ClusterStatus {
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
}

#[derive(Deserialize)]
struct Identity {
    access_token: Token,
}

#[derive(Deserialize)]
struct Token {
    token: String,
}

/// The cluster's status as one of its brokers sees it.
pub async fn cluster_status(
    cluster: &IggyCluster,
    username: &str,
    password: &str,
) -> Result<ClusterStatus, reqwest::Error> {
    let base = format!(
        "http://{}.{}.svc:{}",
        names::client_service(cluster),
        cluster.namespace().unwrap_or_default(),
        cluster.spec.listeners.http_port
    );
    let client = http_client()?;
    let identity: Identity = client
        .post(format!("{base}/users/login"))
        .json(&serde_json::json!({ "username": username, "password": password }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    client
        .get(format!("{base}/cluster/status"))
        .bearer_auth(identity.access_token.token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
}

/// A client for the brokers' HTTP listener. Plain HTTP today (TLS for the
/// brokers joins with operator-managed certificates, which add the cluster
/// CA here). The TLS backend is configured explicitly: the operator's image
/// has no system CA store, which reqwest's default would try to load, and
/// the crypto provider is the one kube uses (ring).
fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls' default protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
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
        })
        .collect()
}

#[cfg(test)]
mod tests {
    /// The preconfigured rustls backend is the one reqwest links against
    /// (a version mismatch is an "unknown TLS backend" error here).
    #[test]
    fn the_broker_client_builds_without_a_system_ca_store() {
        super::http_client().expect("client");
    }
}
