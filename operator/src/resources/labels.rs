//! The labels every child carries (`app.kubernetes.io/*`) and the subset
//! that selects the broker pods.

use crate::crd::IggyCluster;
use kube::ResourceExt;
use std::collections::BTreeMap;

pub const NAME: &str = "app.kubernetes.io/name";
pub const INSTANCE: &str = "app.kubernetes.io/instance";
pub const COMPONENT: &str = "app.kubernetes.io/component";
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// Selects the broker pods of one cluster. Never changes for a cluster
/// (a StatefulSet's selector is immutable).
pub fn selector(cluster: &IggyCluster) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME.to_string(), "iggy".to_string()),
        (INSTANCE.to_string(), cluster.name_any()),
    ])
}

pub fn labels(cluster: &IggyCluster) -> BTreeMap<String, String> {
    let mut labels = selector(cluster);
    labels.insert(COMPONENT.into(), "broker".into());
    labels.insert(MANAGED_BY.into(), crate::MANAGER.into());
    labels
}

/// Label selector string for listing a cluster's children.
pub fn selector_string(cluster: &IggyCluster) -> String {
    format!(
        "{NAME}=iggy,{INSTANCE}={},{MANAGED_BY}={}",
        cluster.name_any(),
        crate::MANAGER
    )
}
