//! The HTTP listener: the health endpoints Kubernetes probes — `/ping` and
//! `/healthz` (the process is up), `/readyz` (storage is recovered and the
//! client listeners are serving) — and Prometheus `/metrics`. The REST API
//! grows here.

use crate::broker::Broker;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use std::sync::Arc;

pub fn router(broker: Arc<Broker>) -> Router {
    Router::new()
        .route("/ping", get(|| async { "pong" }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(broker)
}

async fn metrics(State(broker): State<Arc<Broker>>) -> String {
    broker.refresh_storage_metrics();
    broker.metrics.encode()
}

async fn readyz(State(broker): State<Arc<Broker>>) -> (StatusCode, &'static str) {
    if broker.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}
