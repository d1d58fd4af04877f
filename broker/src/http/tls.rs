//! `GET /cluster/tls`: the certificate each listener of this broker serves
//! and the CAs it accepts peers' certificates from — what the Kubernetes
//! operator waits on while it replaces a CA (`docs/admin-api.md`). Needs a
//! user who may read servers.

use super::api::{Api, ApiResult, Caller};
use crate::auth::Action;
use crate::tls::certificates::Described;
use axum::Json;
use axum::extract::State;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct TlsReport {
    /// `None` for a standalone broker.
    pub node_id: Option<u32>,
    pub certificates: Vec<ServedCertificate>,
    /// Empty without `[cluster.tls]`.
    pub trusted_cas: Vec<Described>,
    /// Inter-broker TLS: `off`, `required`, or `accepting plaintext` (while
    /// a running cluster switches it on or off).
    pub replica_tls: &'static str,
}

#[derive(Debug, Serialize)]
pub struct ServedCertificate {
    /// `tcp`, `quic`, `websocket`, `http` or `replica`.
    pub listener: &'static str,
    #[serde(flatten)]
    pub certificate: Described,
}

pub async fn report(State(api): State<Api>, caller: Caller) -> ApiResult<Json<TlsReport>> {
    let broker = api.broker();
    broker.authorize(caller.user_id(), Action::ReadServers)?;
    let certificates = broker
        .metrics
        .certificates()
        .into_iter()
        .filter_map(|(listener, certificates)| {
            Some(ServedCertificate {
                listener,
                certificate: certificates.describe()?,
            })
        })
        .collect();
    let peer_tls = broker.peers.as_ref().and_then(|peers| peers.tls());
    let trusted_cas = peer_tls
        .as_ref()
        .map(|tls| tls.trust.cas())
        .unwrap_or_default();
    let replica_tls = match peer_tls {
        None => "off",
        Some(tls) if tls.accept_plaintext => "accepting plaintext",
        Some(_) => "required",
    };
    Ok(Json(TlsReport {
        node_id: broker.cluster.as_ref().map(|c| c.node_id),
        certificates,
        trusted_cas,
        replica_tls,
    }))
}
