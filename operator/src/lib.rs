//! `iggy-operator`: runs Iggy broker clusters on Kubernetes.
//!
//! # Layout
//!
//! - [`crd`]: the `IggyCluster` / `IggyTopic` API types (CRDs are generated
//!   from them) and status conditions.
//! - [`resources`]: pure builders, `fn(&IggyCluster) -> k8s object`; no client.
//! - [`controller`]: reconcile / error_policy and the controller runtime.
//! - [`leader`]: leader election through a Lease.
//! - [`metrics`]: the operator's Prometheus metrics.
//! - [`web`]: `/metrics`, `/healthz`, `/readyz`.
//! - [`probe`]: a minimal HTTP GET for `iggy-operator probe` (helm test).

pub mod controller;
pub mod crd;
pub mod leader;
pub mod metrics;
pub mod probe;
pub mod resources;
pub mod web;

/// Field manager for server-side apply, and the name on events.
pub const MANAGER: &str = "iggy-operator";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
    #[error("invalid IggyCluster: {0}")]
    InvalidSpec(String),
    #[error("serialization error: {0}")]
    Serialization(#[from] serde_json::Error),
    /// The brokers refused or could not be reached.
    #[error("brokers: {0}")]
    Broker(String),
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// Certificates could not be made or read.
    #[error("TLS: {0}")]
    Tls(String),
}

impl Error {
    /// A bounded label for the failure metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(_)) => "api",
            Error::Kube(_) => "client",
            Error::InvalidSpec(_) => "invalid_spec",
            Error::Serialization(_) => "serialization",
            Error::Broker(_) => "broker",
            Error::Finalizer(_) => "finalizer",
            Error::Tls(_) => "tls",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
