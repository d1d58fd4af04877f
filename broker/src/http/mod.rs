//! The HTTP listener: the health endpoints Kubernetes probes — `/ping` and
//! `/healthz` (the process is up), `/readyz` (storage is recovered, the
//! client listeners are serving, the broker has registered with the
//! metadata group and is in contact with it, and every partition replica
//! it holds is in sync) — Prometheus `/metrics`, and the REST API
//! (`api`, authenticated with `auth` tokens, executed by `inprocess`;
//! message bodies go straight to the binary form in `send_body`, polled
//! messages straight to JSON in `polled_body`).

mod api;
mod auth;
mod cluster;
mod inprocess;
mod polled_body;
mod send_body;
mod tls;

pub use send_body::SendBody;

use crate::broker::Broker;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use std::sync::Arc;

/// The address of an HTTP client, for plain and TLS listeners alike.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

impl<L> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, L>> for ClientAddr
where
    L: axum::serve::Listener<Addr = std::net::SocketAddr> + TlsListener,
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, L>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

/// Marks listeners whose connections are TLS (see `server::listeners`).
pub trait TlsListener {}

pub fn router(broker: Arc<Broker>) -> Router {
    Router::new()
        .route("/ping", get(|| async { "pong" }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(broker.clone())
        .merge(api::router(broker))
}

async fn metrics(
    State(broker): State<Arc<Broker>>,
    headers: HeaderMap,
) -> Result<String, StatusCode> {
    let token = &broker.config.http.metrics_token;
    if !token.is_empty() && !bearer_matches(&headers, token) {
        return Err(StatusCode::UNAUTHORIZED);
    }
    broker.refresh_storage_metrics();
    Ok(broker.metrics.encode())
}

/// Whether the request carries `Authorization: Bearer <token>`. Compared in
/// constant time so the token cannot be guessed byte by byte.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

async fn readyz(State(broker): State<Arc<Broker>>) -> (StatusCode, String) {
    match broker.not_ready_because() {
        None => (StatusCode::OK, "ready".into()),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}
