//! The operator's API, group `iggy.rs`, version `v1alpha1`: `IggyCluster`
//! and `IggyTopic`. The CRD YAML in `crds/` is generated from these types
//! (`iggy-operator crdgen`).

pub mod cluster;
pub mod conditions;
pub mod install;
pub mod topic;

pub use cluster::{IggyCluster, IggyClusterSpec, IggyClusterStatus};
pub use topic::{IggyTopic, IggyTopicSpec, IggyTopicStatus};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CRD of the operator, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![IggyCluster::crd(), IggyTopic::crd()]
}

/// `(file name, YAML)` of each CRD, as kept in `crds/`.
pub fn crd_files() -> Vec<(String, String)> {
    crds()
        .into_iter()
        .map(|crd| {
            let name = format!(
                "{}.yaml",
                crd.metadata.name.clone().expect("CRDs are named")
            );
            (name, serde_yaml::to_string(&crd).expect("CRDs serialize"))
        })
        .collect()
}
