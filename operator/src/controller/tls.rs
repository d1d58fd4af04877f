//! Reconciling `spec.tls`: the brokers' certificates, in one of three
//! modes, and the CA bundle published for applications (ConfigMap and
//! Secret `<name>-ca-bundle`, key `ca.crt`).
//!
//! - `Operator`: the operator's own CA and a certificate per broker
//!   (decided by [`super::tls_plan`], written to Secrets `<name>-ca` and
//!   `<name>-broker-tls`); a CA rotation follows what the brokers report on
//!   `GET /cluster/tls`.
//! - `CertManager`: a cert-manager `Certificate` writes `<name>-broker-tls`.
//! - `Secret`: the user's Secret, checked and followed.
//!
//! Runs before the StatefulSet is applied, so a broker never starts
//! without its certificate. A broker re-reads the mounted files, so
//! renewals restart nothing.

use super::Context;
use super::brokers;
use super::cluster::{apply, publish_event};
use super::tls_plan::{self, BrokerView, Current, ROTATION_ANNOTATION};
use crate::crd::IggyCluster;
use crate::crd::cluster::{BrokerCertificate, TlsMode, TlsSpec, TlsStatus};
use crate::resources::certificates::inspect;
use crate::resources::{child_meta, names, tls};
use crate::{Error, MANAGER, Result};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use std::collections::BTreeMap;

/// What the cluster's status should say about TLS.
#[derive(Debug, Default)]
pub struct TlsOutcome {
    pub status: Option<TlsStatus>,
    /// Why TLS cannot be set up as asked: reason and message (`Degraded`).
    pub refused: Option<(&'static str, String)>,
    /// A step under way (`Progressing`).
    pub progressing: Option<String>,
}

/// Make the brokers' certificates what `spec.tls` asks for, for
/// `brokers` pods.
pub async fn reconcile(
    ctx: &Context,
    cluster: &IggyCluster,
    namespace: &str,
    brokers: i32,
) -> Result<TlsOutcome> {
    let Some(spec) = cluster.spec.tls() else {
        return Ok(TlsOutcome::default());
    };
    match spec.mode {
        TlsMode::Operator => operator_mode(ctx, cluster, namespace, brokers).await,
        TlsMode::CertManager => cert_manager_mode(ctx, cluster, spec, namespace, brokers).await,
        TlsMode::Secret => user_secret_mode(ctx, cluster, spec, namespace).await,
    }
}

/// Whether `cluster` takes its certificates from `secret`, written by
/// someone else than the operator (the user's, or cert-manager's).
pub fn uses_secret(cluster: &IggyCluster, secret: &Secret) -> bool {
    let Some(spec) = cluster.spec.tls() else {
        return false;
    };
    if secret.namespace() != cluster.namespace() {
        return false;
    }
    let name = secret.name_any();
    match spec.mode {
        TlsMode::Operator => false,
        TlsMode::CertManager => name == names::broker_tls_secret(cluster),
        TlsMode::Secret => spec.secret_name.as_deref() == Some(name.as_str()),
    }
}

/// A Secret's data as text, and its annotations.
fn decoded(secret: Option<Secret>) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let Some(secret) = secret else {
        return Default::default();
    };
    let data = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    (data, secret.metadata.annotations.unwrap_or_default())
}

fn secret_of(
    cluster: &IggyCluster,
    name: String,
    data: &BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
) -> Secret {
    let mut metadata = child_meta(cluster, name);
    metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    Secret {
        metadata,
        data: Some(
            data.iter()
                .map(|(k, v)| (k.clone(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

async fn operator_mode(
    ctx: &Context,
    cluster: &IggyCluster,
    namespace: &str,
    brokers: i32,
) -> Result<TlsOutcome> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let (ca, ca_annotations) = decoded(secrets.get_opt(&names::ca_secret(cluster)).await?);
    let (broker_files, _) = decoded(secrets.get_opt(&names::broker_tls_secret(cluster)).await?);
    let current = Current {
        ca,
        ca_annotations,
        brokers: broker_files,
    };
    // Only a rotation under way needs to know what the brokers hold.
    let observed = if current.ca_annotations.contains_key(ROTATION_ANNOTATION) {
        observe(ctx, cluster, namespace, brokers).await
    } else {
        None
    };
    let plan = tls_plan::plan(cluster, &current, brokers, ctx.now(), observed.as_ref())
        .map_err(|e| Error::Tls(e.to_string()))?;
    // The CA first: a certificate is never published before its CA is
    // kept.
    apply(
        ctx,
        namespace,
        &secret_of(
            cluster,
            names::ca_secret(cluster),
            &plan.ca,
            plan.ca_annotations.clone(),
        ),
    )
    .await?;
    apply(
        ctx,
        namespace,
        &secret_of(
            cluster,
            names::broker_tls_secret(cluster),
            &plan.brokers,
            BTreeMap::new(),
        ),
    )
    .await?;
    publish_bundle(ctx, cluster, namespace, &plan.bundle).await?;
    for (reason, note) in &plan.events {
        publish_event(ctx, cluster, EventType::Normal, reason, note).await;
    }
    Ok(TlsOutcome {
        status: Some(plan.status),
        refused: None,
        progressing: plan.progressing,
    })
}

/// What every broker reports of its TLS; `None` unless all answer.
async fn observe(
    ctx: &Context,
    cluster: &IggyCluster,
    namespace: &str,
    brokers: i32,
) -> Option<BTreeMap<i32, BrokerView>> {
    let credentials = brokers::credentials(ctx, cluster, namespace).await.ok()??;
    let mut views = BTreeMap::new();
    for ordinal in 0..brokers {
        match brokers::broker_tls(cluster, ordinal, &credentials).await {
            Ok(report) => {
                views.insert(
                    ordinal,
                    BrokerView {
                        trusts: report.trusted_cas.into_iter().map(|c| c.subject).collect(),
                        serves: report.certificates.into_iter().map(|c| c.issuer).collect(),
                    },
                );
            }
            Err(e) => {
                tracing::info!(cluster = %cluster.name_any(), ordinal, "broker TLS unavailable: {e}");
            }
        }
    }
    Some(views)
}

/// Publish `bundle` under `ca.crt` in ConfigMap and Secret
/// `<name>-ca-bundle`.
async fn publish_bundle(
    ctx: &Context,
    cluster: &IggyCluster,
    namespace: &str,
    bundle: &str,
) -> Result<()> {
    apply(
        ctx,
        namespace,
        &tls::build_bundle_config_map(cluster, bundle),
    )
    .await?;
    apply(ctx, namespace, &tls::build_bundle_secret(cluster, bundle)).await?;
    Ok(())
}

async fn cert_manager_mode(
    ctx: &Context,
    cluster: &IggyCluster,
    spec: &TlsSpec,
    namespace: &str,
    brokers: i32,
) -> Result<TlsOutcome> {
    if !ctx
        .serves(tls::CERT_MANAGER_GROUP_VERSION, "certificates")
        .await?
    {
        return Ok(TlsOutcome {
            refused: Some((
                "CertManagerMissing",
                "spec.tls.mode is CertManager but the cert-manager.io/v1 Certificate CRD is not \
                 installed: install cert-manager, or use mode Operator or Secret"
                    .into(),
            )),
            ..Default::default()
        });
    }
    let resource = tls::certificate_resource();
    let certificates: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), namespace, &resource);
    let name = names::broker_certificate(cluster);
    let existing = certificates.get_opt(&name).await?;
    let mut renewed_for = existing.as_ref().and_then(|c| {
        c.annotations()
            .get(tls_plan::RENEWED_FOR_ANNOTATION)
            .cloned()
    });
    // A new value of the renew annotation: ask cert-manager to re-issue now,
    // the way `cmctl renew` does (the Certificate's Issuing condition).
    let wanted = cluster.annotations().get(tls_plan::RENEW_ANNOTATION);
    if existing.is_none() {
        // The first issuance is new anyway.
        renewed_for = wanted.cloned();
    }
    if let (Some(wanted), Some(existing)) = (wanted, &existing)
        && renewed_for.as_ref() != Some(wanted)
    {
        let conditions = existing.data["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let status = serde_json::json!({
            "metadata": {"resourceVersion": existing.resource_version()},
            "status": {"conditions": tls::with_issuing_condition(
                conditions,
                &tls_plan::rfc3339(tls_plan::unix(ctx.now())),
                existing.metadata.generation,
            )},
        });
        certificates
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await?;
        publish_event(
            ctx,
            cluster,
            EventType::Normal,
            "CertificateRenewalRequested",
            &format!("asked cert-manager to re-issue Certificate {name} ({wanted})"),
        )
        .await;
        renewed_for = Some(wanted.clone());
    }
    let mut certificate = tls::build_certificate(cluster, spec, brokers);
    if let Some(value) = renewed_for {
        certificate
            .annotations_mut()
            .insert(tls_plan::RENEWED_FOR_ANNOTATION.into(), value);
    }
    certificates
        .patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&certificate),
        )
        .await?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let (files, _) = decoded(secrets.get_opt(&names::broker_tls_secret(cluster)).await?);
    let Some(certificate) = files.get("tls.crt") else {
        return Ok(TlsOutcome {
            progressing: Some(format!(
                "waiting for cert-manager to issue Certificate {} into Secret {}",
                names::broker_certificate(cluster),
                names::broker_tls_secret(cluster)
            )),
            ..Default::default()
        });
    };
    follow_secret(ctx, cluster, namespace, &files, certificate, brokers).await
}

async fn user_secret_mode(
    ctx: &Context,
    cluster: &IggyCluster,
    spec: &TlsSpec,
    namespace: &str,
) -> Result<TlsOutcome> {
    let name = spec.secret_name.clone().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let Some(secret) = secrets.get_opt(&name).await? else {
        return Ok(TlsOutcome {
            refused: Some((
                "TLSSecretMissing",
                format!("Secret {name} (spec.tls.secretName) does not exist"),
            )),
            ..Default::default()
        });
    };
    let (files, _) = decoded(Some(secret));
    let missing: Vec<&str> = ["tls.crt", "tls.key", tls::CA_BUNDLE_KEY]
        .into_iter()
        .filter(|key| !files.contains_key(*key))
        .collect();
    if !missing.is_empty() {
        return Ok(TlsOutcome {
            refused: Some((
                "TLSSecretInvalid",
                format!(
                    "Secret {name} (spec.tls.secretName) lacks {}: it needs tls.crt, tls.key and ca.crt",
                    missing.join(", ")
                ),
            )),
            ..Default::default()
        });
    }
    let certificate = files["tls.crt"].clone();
    follow_secret(
        ctx,
        cluster,
        namespace,
        &files,
        &certificate,
        cluster.spec.replicas,
    )
    .await
}

/// A Secret holding one certificate for every broker (`tls.crt`) and its
/// CA (`ca.crt`): publish the CA, report the expiry.
async fn follow_secret(
    ctx: &Context,
    cluster: &IggyCluster,
    namespace: &str,
    files: &BTreeMap<String, String>,
    certificate: &str,
    brokers: i32,
) -> Result<TlsOutcome> {
    let info = match inspect(certificate) {
        Ok(info) => info,
        Err(e) => {
            return Ok(TlsOutcome {
                refused: Some(("TLSSecretInvalid", format!("tls.crt is not usable: {e}"))),
                ..Default::default()
            });
        }
    };
    let bundle = files.get(tls::CA_BUNDLE_KEY).cloned().unwrap_or_default();
    let ca_not_after = crate::resources::certificates::inspect_bundle(&bundle)
        .unwrap_or_default()
        .into_iter()
        .map(|ca| tls_plan::rfc3339(ca.not_after))
        .collect();
    publish_bundle(ctx, cluster, namespace, &bundle).await?;
    let not_after = tls_plan::rfc3339(info.not_after);
    Ok(TlsOutcome {
        status: Some(TlsStatus {
            ca_not_after,
            brokers: (0..brokers)
                .map(|id| BrokerCertificate {
                    id,
                    not_after: not_after.clone(),
                })
                .collect(),
            ca_bundle: Some(names::ca_bundle(cluster)),
            connection: Some(tls::connection_options(cluster)),
        }),
        ..Default::default()
    })
}
