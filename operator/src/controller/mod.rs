//! The controllers and what they share.

pub mod cluster;

use crate::crd::IggyCluster;
use crate::metrics::Metrics;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::controller::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client};
use std::sync::Arc;

/// What every reconcile gets.
pub struct Context {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
}

impl Context {
    pub fn new(client: Client, metrics: Arc<Metrics>, instance: &str) -> Self {
        let reporter = Reporter {
            controller: crate::MANAGER.into(),
            instance: Some(instance.into()),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
        }
    }
}

/// Check that the CRDs are installed, with a message saying how to fix it.
pub async fn check_crds(client: &Client) -> anyhow::Result<()> {
    check_crd::<IggyCluster>(client).await?;
    check_crd::<crate::crd::IggyTopic>(client).await
}

/// Check that the API server serves the resource `K`.
pub async fn check_crd<K>(client: &Client) -> anyhow::Result<()>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let api: Api<K> = Api::all(client.clone());
    api.list(&kube::api::ListParams::default().limit(1))
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "the {} CRD ({}) is not installed or not readable ({e}); \
                 install the CRDs with `kubectl apply -f crds/` (or the Helm chart)",
                K::kind(&()),
                K::api_version(&()),
            )
        })?;
    Ok(())
}

/// Run the IggyCluster controller until the stream ends.
pub async fn run(ctx: Arc<Context>) {
    let client = ctx.client.clone();
    let clusters: Api<IggyCluster> = Api::all(client.clone());
    let config = watcher::Config::default();
    Controller::new(clusters, config.clone())
        .owns(Api::<StatefulSet>::all(client.clone()), config.clone())
        .owns(Api::<Service>::all(client.clone()), config.clone())
        .owns(Api::<ConfigMap>::all(client.clone()), config.clone())
        .owns(Api::<Secret>::all(client.clone()), config.clone())
        .owns(Api::<PodDisruptionBudget>::all(client.clone()), config)
        .shutdown_on_signal()
        .run(cluster::reconcile, cluster::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!("reconcile: {e}");
            }
        })
        .await;
}
