//! Installing and upgrading the CRDs at operator start-up.
//!
//! `helm upgrade` never touches a chart's `crds/` again after the first
//! install, so an operator upgrade would otherwise run against old CRDs.
//! The operator therefore applies the CRDs it was built with (server-side
//! apply, taking over fields Helm or `kubectl` set), stamped with its own
//! version — unless the cluster already has CRDs from a *newer* operator:
//! an old replica during a rolling upgrade must not downgrade the schema.

use super::crds;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, ResourceExt};
use std::time::Duration;

/// The operator version that last applied a CRD.
pub const VERSION_ANNOTATION: &str = "iggy.rs/operator-version";

/// How long a freshly applied CRD may take to be served.
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(60);

/// `major.minor.patch` of a version string (pre-release suffixes ignored);
/// `None` if it is not one.
fn version(text: &str) -> Option<(u64, u64, u64)> {
    let core = text.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let version = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(version)
}

/// What to do with one installed CRD.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Apply,
    /// A newer operator installed it; leave it.
    KeepNewer(String),
}

/// Apply unless the installed CRD was stamped by a newer operator than
/// `ours`. Missing, unstamped or unparsable stamps are applied over.
pub fn decide(installed: Option<&CustomResourceDefinition>, ours: &str) -> Decision {
    let theirs = installed.and_then(|crd| crd.annotations().get(VERSION_ANNOTATION));
    match (theirs.and_then(|v| version(v)), version(ours)) {
        (Some(theirs_v), Some(ours_v)) if theirs_v > ours_v => {
            Decision::KeepNewer(theirs.cloned().unwrap_or_default())
        }
        _ => Decision::Apply,
    }
}

/// Apply the bundled CRDs as field manager `manager` (unless newer ones are
/// installed) and wait until each is served.
pub async fn ensure_crds(client: &Client, manager: &str) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let ours = env!("CARGO_PKG_VERSION");
    for mut crd in crds() {
        let name = crd.name_any();
        let installed = api.get_opt(&name).await?;
        if let Decision::KeepNewer(theirs) = decide(installed.as_ref(), ours) {
            tracing::warn!(crd = %name, installed = %theirs, bundled = %ours, "a newer operator installed this CRD; not downgrading it");
            continue;
        }
        crd.annotations_mut()
            .insert(VERSION_ANNOTATION.into(), ours.to_string());
        api.patch(
            &name,
            &PatchParams::apply(manager).force(),
            &Patch::Apply(&crd),
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot apply the CRD {name}: {e}"))?;
        tokio::time::timeout(
            ESTABLISH_TIMEOUT,
            await_condition(api.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .map_err(|_| {
            anyhow::anyhow!("the CRD {name} was not established within {ESTABLISH_TIMEOUT:?}")
        })??;
        tracing::info!(crd = %name, version = %ours, "CRD applied");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamped(version: &str) -> CustomResourceDefinition {
        let mut crd = crds().remove(0);
        crd.annotations_mut()
            .insert(VERSION_ANNOTATION.into(), version.into());
        crd
    }

    #[test]
    fn only_newer_stamps_are_kept() {
        assert_eq!(decide(None, "0.1.0"), Decision::Apply);
        assert_eq!(decide(Some(&crds()[0]), "0.1.0"), Decision::Apply);
        assert_eq!(decide(Some(&stamped("0.0.9")), "0.1.0"), Decision::Apply);
        assert_eq!(decide(Some(&stamped("0.1.0")), "0.1.0"), Decision::Apply);
        assert_eq!(decide(Some(&stamped("garbage")), "0.1.0"), Decision::Apply);
        assert_eq!(
            decide(Some(&stamped("0.10.0")), "0.9.1"),
            Decision::KeepNewer("0.10.0".into())
        );
        assert_eq!(
            decide(Some(&stamped("1.0.0-rc.1")), "0.1.0"),
            Decision::KeepNewer("1.0.0-rc.1".into())
        );
    }
}
