//! Growing the brokers' volumes with `spec.storage.size`.
//!
//! A StatefulSet's `volumeClaimTemplates` cannot change, so the operator
//! keeps the template as it was created and carries a larger size out on
//! the claims themselves: each broker's PersistentVolumeClaim gets the new
//! request, which the storage driver expands (online, for drivers that can)
//! when the claim's StorageClass has `allowVolumeExpansion`. A smaller size
//! is refused (volumes never shrink), and so is a larger one on a class
//! that cannot expand: the claims keep their size and the cluster's
//! `Degraded` condition says why. The decision is pure ([`plan`]).

use super::Context;
use crate::crd::IggyCluster;
use crate::resources::{labels, quantity};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use std::collections::BTreeMap;

/// A broker's claim as the plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub name: String,
    /// Its `spec.resources.requests.storage`.
    pub requested: String,
    pub class: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Every claim has the declared size.
    AsDeclared,
    /// Ask these claims for the declared size.
    Expand(Vec<String>),
    /// Nothing changes; why not.
    Refused(String),
}

/// What to do so that every claim has `desired` bytes. `expandable` says
/// whether a StorageClass allows expansion (`None`: no such class).
pub fn plan(desired: &str, claims: &[Claim], expandable: impl Fn(&str) -> Option<bool>) -> Plan {
    let Some(want) = quantity::bytes(desired) else {
        return Plan::Refused(format!("spec.storage.size `{desired}` is not a quantity"));
    };
    let mut expand = Vec::new();
    for claim in claims {
        let Some(has) = quantity::bytes(&claim.requested) else {
            continue;
        };
        if want < has {
            return Plan::Refused(format!(
                "volumes cannot shrink: claim {} has {}, spec.storage.size asks {desired}",
                claim.name, claim.requested
            ));
        }
        if want == has {
            continue;
        }
        let class = claim.class.as_deref().unwrap_or_default();
        match expandable(class) {
            Some(true) => expand.push(claim.name.clone()),
            Some(false) => {
                return Plan::Refused(format!(
                    "StorageClass `{class}` of claim {} does not allow volume expansion",
                    claim.name
                ));
            }
            None => {
                return Plan::Refused(format!(
                    "claim {} has no StorageClass the operator can read (`{class}`), so it cannot \
                     tell whether the volume can grow",
                    claim.name
                ));
            }
        }
    }
    if expand.is_empty() {
        Plan::AsDeclared
    } else {
        Plan::Expand(expand)
    }
}

/// Bring the brokers' claims to `spec.storage.size`; `Some(why)` when that
/// is refused.
pub async fn reconcile(
    ctx: &Context,
    cluster: &IggyCluster,
    namespace: &str,
) -> crate::Result<Option<String>> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), namespace);
    let selector = labels::selector(cluster)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let list = api.list(&ListParams::default().labels(&selector)).await?;
    let claims: Vec<Claim> = list
        .items
        .iter()
        .filter(|pvc| pvc.metadata.deletion_timestamp.is_none())
        .map(|pvc| {
            let spec = pvc.spec.clone().unwrap_or_default();
            Claim {
                name: pvc.name_any(),
                requested: spec
                    .resources
                    .and_then(|r| r.requests)
                    .and_then(|r| r.get("storage").map(|q| q.0.clone()))
                    .unwrap_or_default(),
                class: spec.storage_class_name,
            }
        })
        .collect();
    let desired = &cluster.spec.storage.size;
    let growing = claims.iter().any(|c| {
        quantity::bytes(&c.requested)
            .zip(quantity::bytes(desired))
            .is_some_and(|(has, want)| want > has)
    });
    // Read the StorageClasses only when a claim is to grow.
    let mut classes: BTreeMap<String, Option<bool>> = BTreeMap::new();
    if growing {
        let storage_classes: Api<StorageClass> = Api::all(ctx.client.clone());
        for class in claims.iter().filter_map(|c| c.class.clone()) {
            if classes.contains_key(&class) {
                continue;
            }
            let found = storage_classes.get_opt(&class).await?;
            classes.insert(
                class,
                found.map(|c| c.allow_volume_expansion.unwrap_or(false)),
            );
        }
    }
    match plan(desired, &claims, |class| {
        classes.get(class).copied().flatten()
    }) {
        Plan::AsDeclared => Ok(None),
        Plan::Refused(why) => Ok(Some(why)),
        Plan::Expand(names) => {
            let patch = serde_json::json!({
                "spec": {"resources": {"requests": {"storage": desired}}}
            });
            for name in &names {
                api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
            }
            ctx.publish(
                cluster,
                EventType::Normal,
                "VolumeExpansion",
                &format!("asked claims {} for {desired}", names.join(", ")),
            )
            .await;
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(name: &str, requested: &str, class: &str) -> Claim {
        Claim {
            name: name.into(),
            requested: requested.into(),
            class: Some(class.into()),
        }
    }

    fn expandable(class: &str) -> Option<bool> {
        match class {
            "fast" => Some(true),
            "fixed" => Some(false),
            _ => None,
        }
    }

    #[test]
    fn a_larger_size_expands_the_claims_that_are_smaller() {
        let claims = [
            claim("data-a-0", "10Gi", "fast"),
            claim("data-a-1", "20Gi", "fast"),
        ];
        assert_eq!(
            plan("20Gi", &claims, expandable),
            Plan::Expand(vec!["data-a-0".into()])
        );
        assert_eq!(plan("10Gi", &claims[..1], expandable), Plan::AsDeclared);
    }

    #[test]
    fn shrinking_or_a_class_without_expansion_is_refused() {
        let claims = [claim("data-a-0", "10Gi", "fast")];
        let Plan::Refused(why) = plan("5Gi", &claims, expandable) else {
            panic!("not refused");
        };
        assert!(why.contains("cannot shrink"), "{why}");
        let fixed = [claim("data-a-0", "10Gi", "fixed")];
        let Plan::Refused(why) = plan("20Gi", &fixed, expandable) else {
            panic!("not refused");
        };
        assert!(why.contains("does not allow volume expansion"), "{why}");
        let unknown = [claim("data-a-0", "10Gi", "gone")];
        assert!(matches!(
            plan("20Gi", &unknown, expandable),
            Plan::Refused(_)
        ));
        assert!(matches!(plan("big", &claims, expandable), Plan::Refused(_)));
    }
}
