//! The controllers and what they share.

pub mod brokers;
pub mod cluster;
mod credentials;
pub mod replica_tls;
pub mod roll;
pub mod scale;
pub mod storage;
pub mod tls;
pub mod tls_plan;
pub mod topic;
pub mod topic_plan;

use crate::crd::IggyCluster;
use crate::metrics::Metrics;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::controller::Controller;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client};
use std::sync::Arc;

/// What every reconcile gets.
pub struct Context {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    /// Consecutive failed reconciles per object, for the backoff.
    failures: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// Whether optional APIs are served, by `group/version/resource`, and
    /// when that was learned (discovery is not repeated every reconcile).
    discovered: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, bool)>>,
    /// The time certificates are judged by (a test moves it).
    clock: Box<dyn Fn() -> std::time::SystemTime + Send + Sync>,
}

/// How long a discovery answer is trusted: an API installed later (say the
/// Prometheus Operator's CRDs) is noticed within this.
pub const DISCOVERY_TTL: std::time::Duration = std::time::Duration::from_secs(120);

/// The first retry after a failed reconcile; each further failure doubles
/// it, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: std::time::Duration = std::time::Duration::from_secs(5);
pub const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(300);

/// How long to wait before retrying after the `failures`-th failure in a
/// row (1, 2, …).
pub fn backoff(failures: u32) -> std::time::Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
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
            failures: Default::default(),
            discovered: Default::default(),
            clock: Box::new(std::time::SystemTime::now),
        }
    }

    /// The same context judging certificates by `clock` instead of the
    /// system's time (tests of renewals).
    pub fn with_clock(
        mut self,
        clock: impl Fn() -> std::time::SystemTime + Send + Sync + 'static,
    ) -> Self {
        self.clock = Box::new(clock);
        self
    }

    pub fn now(&self) -> std::time::SystemTime {
        (self.clock)()
    }

    /// Whether the API server serves `resource` in `group_version`
    /// (e.g. `monitoring.coreos.com/v1`, `podmonitors`), from a cache of
    /// [`DISCOVERY_TTL`].
    pub async fn serves(&self, group_version: &str, resource: &str) -> crate::Result<bool> {
        let key = format!("{group_version}/{resource}");
        let cached = self
            .discovered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .copied();
        if let Some((at, served)) = cached
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(served);
        }
        let served = match self.client.list_api_group_resources(group_version).await {
            Ok(list) => list.resources.iter().any(|r| r.name == resource),
            Err(kube::Error::Api(e)) if e.code == 404 => false,
            Err(e) => return Err(e.into()),
        };
        self.discovered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, (std::time::Instant::now(), served));
        Ok(served)
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, u32>> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Another failed reconcile of `object`: when to try again.
    pub fn failed<K: kube::Resource<DynamicType = ()>>(&self, object: &K) -> std::time::Duration {
        let mut failures = self.failures();
        let count = failures.entry(failure_key(object)).or_default();
        *count += 1;
        backoff(*count)
    }

    /// `object` reconciled: its next failure starts the backoff afresh.
    pub fn succeeded<K: kube::Resource<DynamicType = ()>>(&self, object: &K) {
        self.failures().remove(&failure_key(object));
    }

    /// Record a Kubernetes Event about `object`; failures to record are
    /// logged, never fatal.
    pub async fn publish<K: kube::Resource<DynamicType = ()>>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        note: &str,
    ) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note.into()),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &object.object_ref(&())).await {
            tracing::warn!("could not record event {reason}: {e}");
        }
    }
}

fn failure_key<K: kube::Resource<DynamicType = ()>>(object: &K) -> String {
    use kube::ResourceExt;
    format!(
        "{}/{}/{}",
        K::kind(&()),
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// Write `status` as the status of `object` (server-side apply, as the
/// operator's field manager).
pub async fn patch_status<K>(
    ctx: &Context,
    object: &K,
    status: &impl serde::Serialize,
) -> crate::Result<()>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    use kube::ResourceExt;
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &object.name_any(),
        &kube::api::PatchParams::apply(crate::MANAGER).force(),
        &kube::api::Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// Log what a controller's reconciles return (errors are already in the
/// resources' status and Events).
async fn log_result<T, E: std::fmt::Display>(result: Result<T, E>) {
    if let Err(e) = result {
        tracing::debug!("reconcile: {e}");
    }
}

/// Which namespaces the operator watches. Cluster-wide needs a ClusterRole;
/// a list of namespaces needs only a Role in each of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Cluster,
    Namespaces(Vec<String>),
}

impl Scope {
    /// `[]` means cluster-wide.
    pub fn from_namespaces(namespaces: Vec<String>) -> Self {
        if namespaces.is_empty() {
            Scope::Cluster
        } else {
            Scope::Namespaces(namespaces)
        }
    }

    /// An `Api` per watched namespace (one cluster-wide `Api` otherwise).
    fn apis<K>(&self, client: &Client) -> Vec<Api<K>>
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        match self {
            Scope::Cluster => vec![Api::all(client.clone())],
            Scope::Namespaces(namespaces) => namespaces
                .iter()
                .map(|ns| Api::namespaced(client.clone(), ns))
                .collect(),
        }
    }
}

/// Check that the CRDs are installed, with a message saying how to fix it.
pub async fn check_crds(client: &Client, scope: &Scope) -> anyhow::Result<()> {
    check_crd::<IggyCluster>(client, scope).await?;
    check_crd::<crate::crd::IggyTopic>(client, scope).await
}

/// Check that the API server serves the resource `K` where the operator
/// watches it.
pub async fn check_crd<K>(client: &Client, scope: &Scope) -> anyhow::Result<()>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    for api in scope.apis::<K>(client) {
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
    }
    Ok(())
}

/// Run the IggyCluster and IggyTopic controllers (one of each per watched
/// namespace) until the streams end.
pub async fn run(ctx: Arc<Context>, scope: Scope) {
    let clusters = scope
        .apis::<IggyCluster>(&ctx.client)
        .into_iter()
        .map(|clusters| run_controller(ctx.clone(), clusters));
    let topics = scope
        .apis::<crate::crd::IggyTopic>(&ctx.client)
        .into_iter()
        .map(|topics| run_topic_controller(ctx.clone(), topics));
    futures::future::join(
        futures::future::join_all(clusters),
        futures::future::join_all(topics),
    )
    .await;
}

/// Topics are reconciled when they change, periodically (drift), and when
/// their cluster changes in what they act on ([`topic::ClusterChanges`]).
async fn run_topic_controller(ctx: Arc<Context>, topics: Api<crate::crd::IggyTopic>) {
    let namespace = topics.namespace().map(str::to_owned);
    let controller = Controller::new(topics, watcher::Config::default());
    let store = controller.store();
    let changes = topic::ClusterChanges::default();
    let topics_of = move |cluster: IggyCluster| {
        if !changes.changed(&cluster) {
            return Vec::new();
        }
        store
            .state()
            .into_iter()
            .filter(|topic| topic::names_cluster(topic, &cluster))
            .map(|topic| kube::runtime::reflector::ObjectRef::from_obj(&*topic))
            .collect()
    };
    controller
        .watches(
            scoped::<IggyCluster>(&ctx.client, &namespace),
            watcher::Config::default(),
            topics_of,
        )
        .shutdown_on_signal()
        .run(topic::reconcile, topic::error_policy, ctx)
        .for_each(log_result)
        .await;
}

/// `K` in `namespace`, or in every namespace.
fn scoped<K>(client: &Client, namespace: &Option<String>) -> Api<K>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The children are watched in the same namespace(s) as the clusters, and
/// only those the operator labelled (less memory than every Secret and
/// ConfigMap of the cluster).
async fn run_controller(ctx: Arc<Context>, clusters: Api<IggyCluster>) {
    let client = ctx.client.clone();
    let namespace = clusters.namespace().map(str::to_owned);
    let owned = watcher::Config::default().labels(&format!(
        "{}={}",
        crate::resources::labels::MANAGED_BY,
        crate::MANAGER
    ));
    let controller = Controller::new(clusters, watcher::Config::default());
    // A certificate Secret the operator did not write (the user's, or
    // cert-manager's) changes: reconcile the clusters using it, to publish
    // its CA and report its expiry.
    let store = controller.store();
    let tls_users = move |secret: Secret| {
        store
            .state()
            .into_iter()
            .filter(|cluster| tls::uses_secret(cluster, &secret))
            .map(|cluster| kube::runtime::reflector::ObjectRef::from_obj(&*cluster))
            .collect::<Vec<_>>()
    };
    controller
        .owns(scoped::<StatefulSet>(&client, &namespace), owned.clone())
        .owns(scoped::<Service>(&client, &namespace), owned.clone())
        .owns(scoped::<ConfigMap>(&client, &namespace), owned.clone())
        .owns(scoped::<Secret>(&client, &namespace), owned.clone())
        .owns(scoped::<PodDisruptionBudget>(&client, &namespace), owned)
        .watches(
            scoped::<Secret>(&client, &namespace),
            watcher::Config::default(),
            tls_users,
        )
        .shutdown_on_signal()
        .run(cluster::reconcile, cluster::error_policy, ctx)
        .for_each(log_result)
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_five_seconds_up_to_five_minutes() {
        let secs: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
