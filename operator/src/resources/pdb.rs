//! The PodDisruptionBudget: voluntary disruptions (drains) take at most one
//! broker at a time.

use super::{child_meta, labels, names};
use crate::crd::IggyCluster;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// `None` for a single broker: a budget of one unavailable pod out of one
/// protects nothing, so the cluster has no PDB (and an existing one is
/// removed when scaling down to one).
pub fn build_pdb(cluster: &IggyCluster) -> Option<PodDisruptionBudget> {
    if cluster.spec.replicas < 2 {
        return None;
    }
    Some(PodDisruptionBudget {
        metadata: child_meta(cluster, names::pdb(cluster)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(labels::selector(cluster)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::fixtures::cluster;

    #[test]
    fn one_broker_gets_no_budget_and_more_get_max_unavailable_one() {
        assert!(build_pdb(&cluster(1)).is_none());
        let pdb = build_pdb(&cluster(3)).unwrap();
        let spec = pdb.spec.unwrap();
        assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
        assert_eq!(
            spec.selector.unwrap().match_labels.unwrap()["app.kubernetes.io/instance"],
            "demo"
        );
        assert_eq!(
            pdb.metadata.owner_references.unwrap()[0].kind,
            "IggyCluster"
        );
    }
}
