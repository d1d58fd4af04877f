//! The Secrets the operator generates for a cluster: the root user's
//! credentials (unless the spec names the user's own Secret) and the
//! brokers' shared secret. Each is created once and never overwritten — a
//! new root password would lock the operator out of brokers that keep the
//! old one, and a new shared secret would split the cluster.

use super::Context;
use crate::crd::IggyCluster;
use crate::resources::{names, secret};
use crate::{MANAGER, Result};
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

/// Make sure the root-credentials Secret exists. A Secret the user names is
/// only checked; the operator's own is created once and never overwritten.
/// Returns whether the Secret exists.
pub(super) async fn ensure_root_secret(
    ctx: &Context,
    cluster: &IggyCluster,
    namespace: &str,
) -> Result<bool> {
    if cluster.spec.auth.root_credentials_secret.is_some() {
        let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
        return Ok(api.get_opt(&names::root_secret(cluster)).await?.is_some());
    }
    let secret = secret::build_root_secret(cluster, &secret::random_password());
    ensure_secret(
        ctx,
        cluster,
        namespace,
        secret,
        "generated root credentials",
    )
    .await
}

/// Make sure the brokers' shared secret exists (created once, never
/// overwritten: changing it would split the cluster).
pub(super) async fn ensure_cluster_secret(
    ctx: &Context,
    cluster: &IggyCluster,
    namespace: &str,
) -> Result<bool> {
    let secret = secret::build_cluster_secret(cluster, &secret::random_shared_secret());
    ensure_secret(
        ctx,
        cluster,
        namespace,
        secret,
        "generated the brokers' shared secret",
    )
    .await
}

/// Create `secret` unless a Secret of its name exists; returns whether it
/// exists now.
async fn ensure_secret(
    ctx: &Context,
    cluster: &IggyCluster,
    namespace: &str,
    secret: Secret,
    what: &str,
) -> Result<bool> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let name = secret.name_any();
    if api.get_opt(&name).await?.is_some() {
        return Ok(true);
    }
    let params = PostParams {
        field_manager: Some(MANAGER.into()),
        ..Default::default()
    };
    match api.create(&params, &secret).await {
        Ok(_) => {
            let note = format!("{what} in Secret {name}");
            ctx.publish(cluster, EventType::Normal, "SecretCreated", &note)
                .await;
            Ok(true)
        }
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// The root user's name and password, from the root-credentials Secret.
pub(super) async fn root_credentials(
    ctx: &Context,
    cluster: &IggyCluster,
    namespace: &str,
) -> Result<Option<(String, String)>> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let Some(secret) = api.get_opt(&names::root_secret(cluster)).await? else {
        return Ok(None);
    };
    let data = secret.data.unwrap_or_default();
    let field = |key: &str| {
        data.get(key)
            .map(|value| String::from_utf8_lossy(&value.0).into_owned())
    };
    Ok(field(secret::USERNAME_KEY).zip(field(secret::PASSWORD_KEY)))
}
