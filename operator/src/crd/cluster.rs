//! `IggyCluster`: a replicated set of iggy-broker nodes.

use k8s_openapi::api::apps::v1::StatefulSetPersistentVolumeClaimRetentionPolicy;
use k8s_openapi::api::core::v1::{
    Affinity, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Desired state of an Iggy cluster.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "iggy.rs",
    version = "v1alpha1",
    kind = "IggyCluster",
    plural = "iggyclusters",
    shortname = "iggy",
    namespaced,
    status = "IggyClusterStatus",
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"}"#,
    printcolumn = r#"{"name": "Ready Replicas", "type": "integer", "jsonPath": ".status.readyReplicas"}"#,
    printcolumn = r#"{"name": "Version", "type": "string", "jsonPath": ".status.version"}"#,
    printcolumn = r#"{"name": "Leader", "type": "integer", "jsonPath": ".status.metadataLeader"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.replication) || self.replication.defaultFactor <= self.replicas").message("replication.defaultFactor cannot exceed replicas"))]
pub struct IggyClusterSpec {
    /// Number of broker nodes (pods).
    #[x_kube(validation = Rule::new("self >= 1").message("replicas must be at least 1"))]
    pub replicas: i32,
    /// Broker container image. Defaults to the image matching `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Broker version, reported in status; selects the default image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Persistent storage of each broker.
    #[serde(default)]
    pub storage: StorageSpec,
    /// Compute resources of the broker container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Client-facing listeners and the client Service.
    #[serde(default)]
    pub listeners: ListenersSpec,
    /// Root credentials.
    #[serde(default)]
    pub auth: AuthSpec,
    /// Broker settings.
    #[serde(default)]
    pub config: BrokerConfig,
    /// Replication defaults for topics.
    #[serde(default)]
    pub replication: ReplicationSpec,
    /// Overrides merged into the broker pod template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<PodTemplateOverrides>,
    /// How Prometheus finds and scrapes the brokers' `/metrics`.
    #[serde(default)]
    pub metrics: MetricsSpec,
    /// TLS on the client listeners and between brokers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
}

/// Where the brokers' certificates come from.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// The operator keeps a CA for the cluster (Secret `<name>-ca`) and
    /// issues and renews every broker's certificate itself.
    #[default]
    Operator,
    /// cert-manager issues them from `issuerRef` (a `Certificate` owned by
    /// the cluster).
    CertManager,
    /// The user's Secret `secretName` (`tls.crt`, `tls.key`, `ca.crt`),
    /// used as it is and followed when it changes.
    Secret,
}

/// TLS for the cluster. Certificates reach the brokers through a mounted
/// Secret, which they re-read: renewals need no restart.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.mode != 'CertManager' || has(self.issuerRef)").message("mode CertManager needs issuerRef"))]
#[x_kube(validation = Rule::new("self.mode != 'Secret' || has(self.secretName)").message("mode Secret needs secretName"))]
pub struct TlsSpec {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `Operator` (default), `CertManager` or `Secret`.
    #[serde(default)]
    pub mode: TlsMode,
    /// Which listeners use TLS (every one by default). A listener with TLS
    /// serves TLS only.
    #[serde(default)]
    pub listeners: TlsListeners,
    /// Lifetime of the brokers' certificates the operator or cert-manager
    /// issues, e.g. `2160h` (90 days).
    #[serde(default = "default_validity")]
    #[x_kube(validation = Rule::new("self.matches('^[0-9]+(s|m|h|d)$')").message("must be a duration such as 2160h or 90d"))]
    pub validity: String,
    /// Renew a certificate (and, in `Operator` mode, the CA) this long
    /// before it expires, e.g. `720h`.
    #[serde(default = "default_renew_before")]
    #[x_kube(validation = Rule::new("self.matches('^[0-9]+(s|m|h|d)$')").message("must be a duration such as 720h or 30d"))]
    pub renew_before: String,
    /// Lifetime of the CA the operator makes (`Operator` mode).
    #[serde(default = "default_ca_validity")]
    #[x_kube(validation = Rule::new("self.matches('^[0-9]+(s|m|h|d)$')").message("must be a duration such as 43800h or 1825d"))]
    pub ca_validity: String,
    /// More names (or addresses) the certificates are valid for, e.g. the
    /// name clients outside the cluster use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_sans: Vec<String>,
    /// `CertManager` mode: the Issuer or ClusterIssuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_ref: Option<IssuerRef>,
    /// `Secret` mode: the Secret in the cluster's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
}

fn yes() -> bool {
    true
}
fn default_validity() -> String {
    "2160h".into()
}
fn default_renew_before() -> String {
    "720h".into()
}
fn default_ca_validity() -> String {
    "43800h".into()
}

/// Which listeners serve TLS.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TlsListeners {
    #[serde(default = "yes")]
    pub tcp: bool,
    /// QUIC is always encrypted: this chooses the cluster's certificate
    /// over the broker's self-signed one.
    #[serde(default = "yes")]
    pub quic: bool,
    #[serde(default = "yes")]
    pub websocket: bool,
    /// HTTP API, metrics and probes (the probes switch to HTTPS).
    #[serde(default = "yes")]
    pub http: bool,
    /// Mutual TLS between brokers on the replica port.
    #[serde(default = "yes")]
    pub inter_broker: bool,
}

impl Default for TlsListeners {
    fn default() -> Self {
        Self {
            tcp: true,
            quic: true,
            websocket: true,
            http: true,
            inter_broker: true,
        }
    }
}

/// A cert-manager issuer.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IssuerRef {
    pub name: String,
    /// `Issuer` (default) or `ClusterIssuer`.
    #[serde(default = "default_issuer_kind")]
    pub kind: String,
    #[serde(default = "default_issuer_group")]
    pub group: String,
}

fn default_issuer_kind() -> String {
    "Issuer".into()
}
fn default_issuer_group() -> String {
    "cert-manager.io".into()
}

impl IggyClusterSpec {
    /// TLS settings when TLS is on.
    pub fn tls(&self) -> Option<&TlsSpec> {
        self.tls.as_ref().filter(|t| t.enabled)
    }
}

/// How the brokers are made known to Prometheus.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MonitorMode {
    /// A PodMonitor when the monitoring.coreos.com CRDs are installed
    /// (Prometheus Operator), `prometheus.io/*` annotations otherwise.
    #[default]
    Auto,
    /// Always a PodMonitor; without the CRD the brokers still run, unscraped,
    /// and a Warning event says why.
    PodMonitor,
    /// `prometheus.io/scrape|port|path` annotations on the headless Service.
    Annotations,
    /// Neither.
    None,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.tokenSecret) || self.monitor != 'Annotations'").message("prometheus.io annotations cannot carry a token: use monitor PodMonitor or Auto with tokenSecret"))]
pub struct MetricsSpec {
    /// `Auto` (default), `PodMonitor`, `Annotations` or `None`.
    #[serde(default)]
    pub monitor: MonitorMode,
    /// Extra labels on the PodMonitor, e.g. the `release` label a
    /// kube-prometheus-stack Prometheus selects monitors by.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Scrape interval of the PodMonitor, e.g. `30s`.
    #[serde(default = "default_scrape_interval")]
    #[x_kube(validation = Rule::new("self.matches('^[0-9]+(ms|s|m|h)$')").message("must be a duration such as 30s or 1m"))]
    pub interval: String,
    /// Protect `/metrics` with a bearer token read from this Secret. The
    /// brokers require it and the PodMonitor presents it. Annotation-based
    /// scrapers cannot send a token, so this needs `PodMonitor` (or `Auto`
    /// with the CRDs installed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret: Option<SecretKeyRef>,
}

fn default_scrape_interval() -> String {
    "30s".into()
}

impl Default for MetricsSpec {
    fn default() -> Self {
        Self {
            monitor: MonitorMode::Auto,
            labels: BTreeMap::new(),
            interval: default_scrape_interval(),
            token_secret: None,
        }
    }
}

/// A key of a Secret in the cluster's namespace.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.persistentVolumeClaimRetentionPolicy) || ((!has(self.persistentVolumeClaimRetentionPolicy.whenScaled) || self.persistentVolumeClaimRetentionPolicy.whenScaled in ['Retain', 'Delete']) && (!has(self.persistentVolumeClaimRetentionPolicy.whenDeleted) || self.persistentVolumeClaimRetentionPolicy.whenDeleted in ['Retain', 'Delete']))").message("persistentVolumeClaimRetentionPolicy.whenScaled and .whenDeleted are Retain or Delete"))]
pub struct StorageSpec {
    /// Size of each broker's volume, e.g. `10Gi`.
    #[serde(default = "default_storage_size")]
    pub size: String,
    /// Storage class of the volumes; the cluster default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// What becomes of a broker's volume when the cluster scales down
    /// (`whenScaled`) or is deleted (`whenDeleted`): `Retain` (the default
    /// for both) or `Delete`. The StatefulSet's policy of that name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim_retention_policy:
        Option<StatefulSetPersistentVolumeClaimRetentionPolicy>,
}

fn default_storage_size() -> String {
    "10Gi".into()
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self {
            size: default_storage_size(),
            storage_class_name: None,
            persistent_volume_claim_retention_policy: None,
        }
    }
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListenersSpec {
    /// Iggy binary protocol over TCP.
    #[serde(default = "default_tcp_port")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("must be a port number"))]
    pub tcp_port: i32,
    /// QUIC (UDP).
    #[serde(default = "default_quic_port")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("must be a port number"))]
    pub quic_port: i32,
    /// HTTP API, metrics and health probes.
    #[serde(default = "default_http_port")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("must be a port number"))]
    pub http_port: i32,
    /// Type of the client Service: ClusterIP, NodePort or LoadBalancer.
    #[serde(default = "default_service_type")]
    #[x_kube(validation = Rule::new("self in ['ClusterIP', 'NodePort', 'LoadBalancer']").message("must be ClusterIP, NodePort or LoadBalancer"))]
    pub service_type: String,
    /// Inter-broker (replica) port, on the headless Service only.
    #[serde(default = "default_replica_port")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("must be a port number"))]
    pub replica_port: i32,
    /// The host every broker tells clients to reach it at (the roster the
    /// SDKs read). Default: the client Service's cluster IP, which clients
    /// in the cluster and on its nodes reach whatever DNS they use. Set a
    /// name or address your clients reach (a load balancer's) when they
    /// connect from elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertised_host: Option<String>,
}

fn default_tcp_port() -> i32 {
    8090
}
fn default_quic_port() -> i32 {
    8080
}
fn default_http_port() -> i32 {
    3000
}
fn default_service_type() -> String {
    "ClusterIP".into()
}
fn default_replica_port() -> i32 {
    9090
}

impl Default for ListenersSpec {
    fn default() -> Self {
        Self {
            tcp_port: default_tcp_port(),
            quic_port: default_quic_port(),
            http_port: default_http_port(),
            service_type: default_service_type(),
            replica_port: default_replica_port(),
            advertised_host: None,
        }
    }
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AuthSpec {
    /// Secret with `username` and `password` keys for the root user. When
    /// unset the operator creates `<cluster>-root-credentials` with a random
    /// password (and never overwrites it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_credentials_secret: Option<String>,
}

/// How brokers fsync appended messages.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum FsyncMode {
    /// Every batch is on disk before it is acknowledged.
    #[default]
    Always,
    /// A background fsync every `fsyncInterval`.
    Interval,
    /// Left to the operating system.
    Never,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BrokerConfig {
    /// Default segment size of topics, e.g. `1GiB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fsync: Option<FsyncMode>,
    /// Period of the `interval` fsync mode, e.g. `1s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fsync_interval: Option<String>,
    /// Any other broker setting as `section.key: value` (e.g.
    /// `limits.max_connections: "5000"`), passed as `IGGY_SECTION_KEY`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.minInSync) || self.minInSync <= self.defaultFactor").message("minInSync cannot exceed defaultFactor"))]
pub struct ReplicationSpec {
    /// Replication factor of topics that do not set one (at most
    /// `replicas`).
    #[serde(default = "one")]
    #[x_kube(validation = Rule::new("self >= 1").message("defaultFactor must be at least 1"))]
    pub default_factor: i32,
    /// In-sync replicas a topic needs to accept sends (a send is
    /// acknowledged once every in-sync replica has it). Default: a
    /// majority of the topic's replication factor (2 of 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1").message("minInSync must be at least 1"))]
    pub min_in_sync: Option<i32>,
}

fn one() -> i32 {
    1
}

impl Default for ReplicationSpec {
    fn default() -> Self {
        Self {
            default_factor: 1,
            min_in_sync: None,
        }
    }
}

/// Pod-level settings merged into the broker StatefulSet's template.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateOverrides {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Replaces the default anti-affinity (spread brokers across nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Replaces the default topology spread (by zone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

/// Observed state of an Iggy cluster.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct IggyClusterStatus {
    /// Ready, Progressing, Degraded, Paused.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub replicas: i32,
    #[serde(default)]
    pub ready_replicas: i32,
    /// Brokers whose pod runs the StatefulSet's latest revision.
    #[serde(default)]
    pub updated_replicas: i32,
    /// The revision being rolled out (the StatefulSet's update revision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_revision: Option<String>,
    /// The broker version the brokers report running (when they all agree;
    /// the spec's version until they report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Where clients connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<ClusterEndpoints>,
    /// Node id (pod ordinal) of the broker leading the metadata group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_leader: Option<i32>,
    /// The uid the brokers' cluster got when it was formed: it tells this
    /// cluster apart from one formed anew under the same name (a Warning
    /// Event `ClusterFormedAnew` when it changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_uid: Option<String>,
    /// The brokers as the cluster sees them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<ClusterMember>,
    /// Certificates, when TLS is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsStatus>,
}

/// The cluster's certificates and how clients connect with TLS.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TlsStatus {
    /// Expiry of each CA clients should trust (RFC 3339), newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_not_after: Vec<String>,
    /// Expiry of each broker's certificate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub brokers: Vec<BrokerCertificate>,
    /// ConfigMap (and Secret) holding the CA bundle under `ca.crt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// The SDK connection string's TLS part for the client Service (the
    /// bundle mounted at `/etc/iggy-ca/ca.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BrokerCertificate {
    pub id: i32,
    /// RFC 3339.
    pub not_after: String,
}

/// One broker of the cluster, as the brokers report it.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ClusterMember {
    /// Node id = pod ordinal.
    pub id: i32,
    pub pod: String,
    /// `healthy`, `starting` or `unreachable`.
    pub status: String,
    /// Metadata log index the broker has applied.
    #[serde(default)]
    pub applied_index: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Its data volume runs low on space (less than twice the broker's
    /// `system.reserved_space` free, or failing writes): it hands the
    /// leadership of its partitions to brokers with room (a Warning Event
    /// `BrokerLowOnSpace` when it starts).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub low_on_space: bool,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ClusterEndpoints {
    /// `host:port` of the client Service's TCP listener.
    pub tcp: String,
    pub quic: String,
    pub http: String,
}
