//! Pure builders: `fn(&IggyCluster, …) -> Kubernetes object`. No client, no
//! I/O, so tests can compare whole objects.

pub mod certificates;
pub mod configmap;
pub mod labels;
pub mod monitoring;
pub mod pdb;
pub mod quantity;
pub mod secret;
pub mod services;
pub mod statefulset;
pub mod tls;

use crate::crd::IggyCluster;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

/// Metadata of a child object: name, namespace, labels, and the owner
/// reference that makes Kubernetes delete it with the cluster.
pub fn child_meta(cluster: &IggyCluster, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: cluster.namespace(),
        labels: Some(labels::labels(cluster)),
        owner_references: Some(vec![owner_reference(cluster)]),
        ..Default::default()
    }
}

pub fn owner_reference(cluster: &IggyCluster) -> OwnerReference {
    cluster
        .controller_owner_ref(&())
        .expect("a stored IggyCluster has a name and uid")
}

/// Names of the children of a cluster.
pub mod names {
    use crate::crd::IggyCluster;
    use kube::ResourceExt;

    pub fn statefulset(c: &IggyCluster) -> String {
        c.name_any()
    }
    pub fn headless_service(c: &IggyCluster) -> String {
        format!("{}-headless", c.name_any())
    }
    pub fn client_service(c: &IggyCluster) -> String {
        format!("{}-client", c.name_any())
    }
    pub fn config_map(c: &IggyCluster) -> String {
        format!("{}-config", c.name_any())
    }
    pub fn pdb(c: &IggyCluster) -> String {
        c.name_any()
    }
    pub fn pod_monitor(c: &IggyCluster) -> String {
        format!("{}-brokers", c.name_any())
    }
    /// The brokers' shared secret (inter-broker authentication).
    pub fn cluster_secret(c: &IggyCluster) -> String {
        format!("{}-cluster-secret", c.name_any())
    }

    /// The operator's CA (`spec.tls.mode: Operator`).
    pub fn ca_secret(c: &IggyCluster) -> String {
        format!("{}-ca", c.name_any())
    }
    /// The brokers' certificates (operator or cert-manager made).
    pub fn broker_tls_secret(c: &IggyCluster) -> String {
        format!("{}-broker-tls", c.name_any())
    }
    /// The cert-manager Certificate of the brokers.
    pub fn broker_certificate(c: &IggyCluster) -> String {
        format!("{}-brokers", c.name_any())
    }
    /// The CA bundle for applications (a ConfigMap and a Secret).
    pub fn ca_bundle(c: &IggyCluster) -> String {
        format!("{}-ca-bundle", c.name_any())
    }

    /// The root-credentials Secret: the user's, or the one the operator makes.
    pub fn root_secret(c: &IggyCluster) -> String {
        c.spec
            .auth
            .root_credentials_secret
            .clone()
            .unwrap_or_else(|| format!("{}-root-credentials", c.name_any()))
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use crate::crd::{IggyCluster, IggyClusterSpec};

    /// A stored-looking cluster (name, namespace, uid, generation set).
    pub fn cluster(replicas: i32) -> IggyCluster {
        let spec: IggyClusterSpec =
            serde_json::from_value(serde_json::json!({ "replicas": replicas })).unwrap();
        let mut cluster = IggyCluster::new("demo", spec);
        cluster.metadata.namespace = Some("iggy".into());
        cluster.metadata.uid = Some("1234".into());
        cluster.metadata.generation = Some(1);
        cluster
    }
}
