//! Secrets the operator generates: the root credentials (when the user names
//! none) and the brokers' shared secret. Each is created once and never
//! overwritten.

use super::{child_meta, names};
use crate::crd::IggyCluster;
use k8s_openapi::api::core::v1::Secret;
use std::collections::BTreeMap;

pub const USERNAME_KEY: &str = "username";
pub const PASSWORD_KEY: &str = "password";
pub const ROOT_USERNAME: &str = "iggy";

pub fn build_root_secret(cluster: &IggyCluster, password: &str) -> Secret {
    Secret {
        metadata: child_meta(cluster, names::root_secret(cluster)),
        string_data: Some(BTreeMap::from([
            (USERNAME_KEY.to_string(), ROOT_USERNAME.to_string()),
            (PASSWORD_KEY.to_string(), password.to_string()),
        ])),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

/// Key of the brokers' shared secret in its Secret.
pub const SHARED_SECRET_KEY: &str = "shared-secret";

/// The Secret holding the secret brokers prove to each other
/// (`cluster.auth.shared_secret`).
pub fn build_cluster_secret(cluster: &IggyCluster, secret: &str) -> Secret {
    Secret {
        metadata: child_meta(cluster, names::cluster_secret(cluster)),
        string_data: Some(BTreeMap::from([(
            SHARED_SECRET_KEY.to_string(),
            secret.to_string(),
        )])),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

/// A random 32-character alphanumeric password.
pub fn random_password() -> String {
    random_alphanumeric(32)
}

/// A random 64-character shared secret (the brokers need at least 32 bytes).
pub fn random_shared_secret() -> String {
    random_alphanumeric(64)
}

fn random_alphanumeric(len: usize) -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}
