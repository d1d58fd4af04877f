//! The root-credentials Secret the operator generates when the user names
//! none. It is created once and never overwritten.

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

/// A random 32-character alphanumeric password.
pub fn random_password() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}
