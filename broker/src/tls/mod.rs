//! TLS: certificates served by the client listeners and presented
//! between brokers ([`certificates`]), the CAs peers are checked against
//! ([`trust`]), and mutual TLS on the replica port ([`peer`]). Everything
//! is read from PEM files and read again when they change, so Kubernetes
//! can rotate certificates and CAs under a running broker.

pub mod certificates;
pub mod peer;
pub mod trust;

pub use certificates::{Certificates, ensure_self_signed};

use rustls::crypto::CryptoProvider;
use std::sync::Arc;

/// The process-wide crypto provider. Chosen explicitly: the dependency graph
/// enables more than one, so rustls cannot pick a default itself.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
