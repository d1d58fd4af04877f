//! Reconciling an `IggyCluster`: apply every child with server-side apply,
//! remove children the spec no longer needs, and write an honest status.

use super::replica_tls::{self, ReplicaTls};
use super::roll::{self, Rolling};
use super::scale;
use super::{Context, brokers, credentials};
use crate::crd::cluster::ClusterEndpoints;
use crate::crd::conditions::{self, DEGRADED, PAUSED, PROGRESSING, READY};
use crate::crd::{IggyCluster, IggyClusterStatus};
use crate::resources::monitoring::{self, Scrape};
use crate::resources::{
    configmap::build_config_map, names, pdb::build_pdb, services, statefulset, tls,
};
use crate::{Error, MANAGER, Result};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

/// Setting this annotation to "true" stops all changes to the cluster.
pub const PAUSE_ANNOTATION: &str = "iggy.rs/pause-reconciliation";
const KIND: &str = "iggycluster";

/// Requeue while the cluster is converging, to refresh the status.
const PROGRESS_REQUEUE: Duration = Duration::from_secs(10);
/// Periodic resync of a steady cluster.
const STEADY_REQUEUE: Duration = Duration::from_secs(300);

pub fn is_paused(cluster: &IggyCluster) -> bool {
    cluster
        .annotations()
        .get(PAUSE_ANNOTATION)
        .is_some_and(|v| v == "true")
}

pub async fn reconcile(cluster: Arc<IggyCluster>, ctx: Arc<Context>) -> Result<Action> {
    let mut measurer = ctx.metrics.measure(KIND);
    let result = reconcile_inner(&cluster, &ctx).await;
    match &result {
        Ok(_) => ctx.succeeded(cluster.as_ref()),
        Err(e) => {
            measurer.fail(e.metric_label());
            report_failure(&ctx, &cluster, e).await;
        }
    }
    result
}

/// Retry with exponential backoff.
pub fn error_policy(cluster: Arc<IggyCluster>, error: &Error, ctx: Arc<Context>) -> Action {
    let retry = ctx.failed(cluster.as_ref());
    tracing::warn!(cluster = %cluster.name_any(), ?retry, "reconcile failed: {error}");
    Action::requeue(retry)
}

/// A failed reconcile reaches the status (Degraded, ReconcileFailed) and
/// an Event; if even that fails, the log has it.
async fn report_failure(ctx: &Context, cluster: &IggyCluster, error: &Error) {
    let message = error.to_string();
    let mut status = cluster.status.clone().unwrap_or_default();
    conditions::set(
        &mut status.conditions,
        DEGRADED,
        true,
        "ReconcileFailed",
        message.clone(),
        cluster.metadata.generation,
    );
    if let Err(e) = write_status(ctx, cluster, &status).await {
        tracing::warn!(cluster = %cluster.name_any(), "could not record the failure in the status: {e}");
    }
    publish_event(
        ctx,
        cluster,
        EventType::Warning,
        "ReconcileFailed",
        &message,
    )
    .await;
}

async fn reconcile_inner(cluster: &IggyCluster, ctx: &Context) -> Result<Action> {
    let namespace = cluster
        .namespace()
        .ok_or_else(|| Error::InvalidSpec("IggyCluster must be namespaced".into()))?;
    let mut status = cluster.status.clone().unwrap_or_default();
    if hold_if_paused(ctx, cluster, &mut status).await? {
        return Ok(Action::await_change());
    }

    let root_secret_ready = credentials::ensure_root_secret(ctx, cluster, &namespace).await?;
    credentials::ensure_cluster_secret(ctx, cluster, &namespace).await?;

    let previous: Option<StatefulSet> =
        Api::<StatefulSet>::namespaced(ctx.client.clone(), &namespace)
            .get_opt(&names::statefulset(cluster))
            .await?;
    apply(ctx, &namespace, &build_config_map(cluster)).await?;
    let pod_monitor_crd = pod_monitor_crd_installed(ctx).await?;
    let scrape = scrape_by(ctx, cluster, pod_monitor_crd).await;
    let advertised = apply_services(ctx, cluster, &namespace, scrape).await?;

    // Read the brokers before deciding the StatefulSet's size: a shrink
    // waits until the broker it removes is drained and out.
    let running = previous
        .as_ref()
        .and_then(|s| s.status.as_ref()?.ready_replicas)
        .unwrap_or(0)
        > 0;
    let brokers = if running {
        observe_brokers(ctx, cluster, &namespace).await?
    } else {
        None
    };
    let current = previous.as_ref().and_then(|s| s.spec.as_ref()?.replicas);
    let step = scale::next_step(
        cluster.spec.replicas,
        current.unwrap_or(cluster.spec.replicas),
        brokers.as_ref().map(|b| &b.scale),
        running,
    );
    let replicas = scale::statefulset_replicas(cluster.spec.replicas, current, &step);
    let founders = previous
        .as_ref()
        .and_then(statefulset::founders)
        .unwrap_or(cluster.spec.replicas);
    // Certificates before pods: a broker never starts without its own.
    let tls =
        super::tls::reconcile(ctx, cluster, &namespace, replicas.max(current.unwrap_or(0))).await?;
    let mut desired = statefulset::build_statefulset(cluster, &advertised, replicas, founders);
    if let Some(existing) = &previous {
        statefulset::keep_claim_template(&mut desired, existing);
    }
    let replica_tls =
        switch_replica_tls(ctx, cluster, &namespace, previous.as_ref(), &mut desired).await?;
    let sts = apply(ctx, &namespace, &desired).await?;
    let storage_refused = super::storage::reconcile(ctx, cluster, &namespace).await?;
    reconcile_pdb(ctx, cluster, &namespace).await?;

    if pod_monitor_crd {
        reconcile_pod_monitor(ctx, cluster, &namespace, scrape).await?;
    }

    announce_size(ctx, cluster, current, replicas).await;

    let was_ready = conditions::is_true(&status.conditions, READY);
    compute_status(cluster, &sts, root_secret_ready, &mut status);
    if let Some(brokers) = &brokers {
        report_brokers(ctx, cluster, &brokers.status, &mut status).await;
    }
    report_tls(ctx, cluster, &tls, replica_tls, &mut status).await;
    if let Some(why) = &storage_refused {
        degrade(
            ctx,
            cluster,
            &mut status,
            "StorageChangeRefused",
            why,
            why.clone(),
        )
        .await;
    }
    let rolling = roll::roll(ctx, cluster, &namespace, &sts, &mut status).await?;
    report_roll(ctx, cluster, &rolling, &mut status).await;
    // One change at a time: scaling waits while a pod restarts.
    let scaling = if rolling == Rolling::Idle {
        let session = brokers.as_ref().map(|b| &b.session);
        scale::carry_out(ctx, cluster, session, &step, &mut status).await
    } else {
        false
    };
    if !was_ready && conditions::is_true(&status.conditions, READY) {
        publish(ctx, cluster, "Ready", "all brokers are ready").await;
    }
    write_status(ctx, cluster, &status).await?;

    // Steady only when ready, rolled out and every broker reports healthy.
    let members_healthy = status.members.len() == cluster.spec.replicas as usize
        && status.members.iter().all(|m| m.status == "healthy");
    Ok(
        if conditions::is_true(&status.conditions, READY)
            && members_healthy
            && rolling == Rolling::Idle
            && !scaling
            && tls.progressing.is_none()
        {
            Action::requeue(STEADY_REQUEUE)
        } else {
            Action::requeue(PROGRESS_REQUEUE)
        },
    )
}

/// Put the roll in the status (Progressing while rolling; Degraded and a
/// Warning Event when a pod did not come back), and the version the
/// brokers run.
async fn report_roll(
    ctx: &Context,
    cluster: &IggyCluster,
    rolling: &Rolling,
    status: &mut IggyClusterStatus,
) {
    let generation = cluster.metadata.generation;
    match rolling {
        Rolling::Idle => {}
        Rolling::InProgress(message) => conditions::set(
            &mut status.conditions,
            PROGRESSING,
            true,
            "RollingUpdate",
            message.clone(),
            generation,
        ),
        Rolling::Stalled(message) => {
            let stopped = format!("the roll stopped: {message}");
            degrade(
                ctx,
                cluster,
                status,
                "RollStalled",
                message,
                stopped.clone(),
            )
            .await;
            conditions::set(
                &mut status.conditions,
                PROGRESSING,
                true,
                "RollStalled",
                stopped,
                generation,
            );
        }
    }
    let mut versions = status.members.iter().filter_map(|m| m.version.clone());
    if let Some(first) = versions.next()
        && status
            .members
            .iter()
            .all(|m| m.version.as_ref() == Some(&first))
    {
        status.version = Some(first);
    }
}

/// The status of a cluster given its StatefulSet.
pub fn compute_status(
    cluster: &IggyCluster,
    sts: &StatefulSet,
    root_secret_ready: bool,
    status: &mut IggyClusterStatus,
) {
    let generation = cluster.metadata.generation;
    let desired = cluster.spec.replicas;
    let sts_status = sts.status.clone().unwrap_or_default();
    let ready = sts_status.ready_replicas.unwrap_or(0);
    let sts_current = sts_status.observed_generation == sts.metadata.generation;

    status.observed_generation = generation;
    status.replicas = desired;
    status.ready_replicas = ready;
    status.version = Some(cluster.spec.version.clone().unwrap_or_else(|| {
        statefulset::image(cluster)
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_string()
    }));
    let namespace = cluster.namespace().unwrap_or_default();
    let host = format!("{}.{namespace}.svc", names::client_service(cluster));
    let l = &cluster.spec.listeners;
    status.endpoints = Some(ClusterEndpoints {
        tcp: format!("{host}:{}", l.tcp_port),
        quic: format!("{host}:{}", l.quic_port),
        http: format!("{host}:{}", l.http_port),
    });

    let all_ready = root_secret_ready && sts_current && ready >= desired;
    let (reason, message) = if !root_secret_ready {
        (
            "RootCredentialsMissing",
            format!(
                "Secret {} with username and password is missing",
                names::root_secret(cluster)
            ),
        )
    } else if all_ready {
        (
            "AllBrokersReady",
            format!("{ready}/{desired} brokers ready"),
        )
    } else {
        (
            "BrokersStarting",
            format!("{ready}/{desired} brokers ready"),
        )
    };
    conditions::set(
        &mut status.conditions,
        READY,
        all_ready,
        reason,
        message.clone(),
        generation,
    );
    conditions::set(
        &mut status.conditions,
        PROGRESSING,
        !all_ready,
        if all_ready { "Stable" } else { reason },
        if all_ready {
            String::new()
        } else {
            message.clone()
        },
        generation,
    );
    // Degraded: some brokers that should serve are not ready (a partial
    // outage), as opposed to a cluster that has not started yet.
    let degraded = root_secret_ready && ready > 0 && ready < desired;
    conditions::set(
        &mut status.conditions,
        DEGRADED,
        degraded || !root_secret_ready,
        if degraded {
            "BrokersUnavailable"
        } else if !root_secret_ready {
            reason
        } else {
            "AsExpected"
        },
        if degraded || !root_secret_ready {
            message
        } else {
            String::new()
        },
        generation,
    );
}

/// Whether the API server serves PodMonitors (Prometheus Operator).
async fn pod_monitor_crd_installed(ctx: &Context) -> Result<bool> {
    ctx.serves(monitoring::MONITORING_GROUP_VERSION, "podmonitors")
        .await
}

/// Apply the PodMonitor, or remove one left from an earlier mode (only
/// called when the CRD is installed).
async fn reconcile_pod_monitor(
    ctx: &Context,
    cluster: &IggyCluster,
    namespace: &str,
    scrape: Scrape,
) -> Result<()> {
    let resource = monitoring::pod_monitor_resource();
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, &resource);
    let name = names::pod_monitor(cluster);
    if scrape == Scrape::PodMonitor {
        let monitor = monitoring::build_pod_monitor(cluster);
        api.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&monitor),
        )
        .await?;
        return Ok(());
    }
    delete_if_present(&api, &name).await
}

/// Where the brokers tell clients to reach them: the spec's host, else the
/// client Service's cluster IP.
fn advertised_host(cluster: &IggyCluster, client_service: &Service) -> String {
    if let Some(host) = &cluster.spec.listeners.advertised_host {
        return host.clone();
    }
    client_service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.clone())
        .filter(|ip| !ip.is_empty() && ip != "None")
        .unwrap_or_else(|| names::client_service(cluster))
}

/// The brokers as they report themselves, through a logged-in session.
struct Brokers {
    session: brokers::AdminSession,
    status: brokers::ClusterStatus,
    scale: scale::Observed,
}

/// Ask the brokers how the cluster is doing; `None` when none answers (the
/// status then keeps what it had).
/// With the pause annotation, record `Paused` and change nothing: whether
/// the reconcile stops here. Otherwise clear it (announcing a resume).
async fn hold_if_paused(
    ctx: &Context,
    cluster: &IggyCluster,
    status: &mut IggyClusterStatus,
) -> Result<bool> {
    let generation = cluster.metadata.generation;
    let was_paused = conditions::is_true(&status.conditions, PAUSED);
    if is_paused(cluster) {
        if !was_paused {
            publish(
                ctx,
                cluster,
                "Paused",
                "reconciliation paused by annotation",
            )
            .await;
        }
        conditions::set(
            &mut status.conditions,
            PAUSED,
            true,
            "PausedByAnnotation",
            format!("{PAUSE_ANNOTATION} is \"true\": the operator changes nothing"),
            generation,
        );
        write_status(ctx, cluster, status).await?;
        return Ok(true);
    }
    if was_paused {
        publish(ctx, cluster, "Resumed", "reconciliation resumed").await;
    }
    conditions::set(
        &mut status.conditions,
        PAUSED,
        false,
        "Reconciling",
        "",
        generation,
    );
    Ok(false)
}

/// How Prometheus is to find the brokers. Asked for a PodMonitor without
/// its CRD, the brokers run anyway, unscraped, and an Event says why.
async fn scrape_by(ctx: &Context, cluster: &IggyCluster, pod_monitor_crd: bool) -> Scrape {
    if let Some(scrape) = monitoring::resolve(cluster.spec.metrics.monitor, pod_monitor_crd) {
        return scrape;
    }
    let note = "spec.metrics.monitor is PodMonitor but the monitoring.coreos.com/v1 \
                PodMonitor CRD is not installed; the brokers are not registered with \
                Prometheus (install the Prometheus Operator, or use Auto or Annotations)";
    publish_event(
        ctx,
        cluster,
        EventType::Warning,
        "PodMonitorUnavailable",
        note,
    )
    .await;
    Scrape::Nothing
}

/// The headless and client Services; returns the host the brokers
/// advertise to clients.
async fn apply_services(
    ctx: &Context,
    cluster: &IggyCluster,
    namespace: &str,
    scrape: Scrape,
) -> Result<String> {
    apply(
        ctx,
        namespace,
        &services::build_headless_service(cluster, scrape == Scrape::Annotations),
    )
    .await?;
    let client_service = apply(ctx, namespace, &services::build_client_service(cluster)).await?;
    Ok(advertised_host(cluster, &client_service))
}

/// The PodDisruptionBudget when the spec asks for one, none otherwise.
async fn reconcile_pdb(ctx: &Context, cluster: &IggyCluster, namespace: &str) -> Result<()> {
    match build_pdb(cluster) {
        Some(pdb) => apply(ctx, namespace, &pdb).await.map(drop),
        None => {
            let pdbs = Api::<PodDisruptionBudget>::namespaced(ctx.client.clone(), namespace);
            delete_if_present(&pdbs, &names::pdb(cluster)).await
        }
    }
}

/// An Event when the StatefulSet was created or its size changed.
async fn announce_size(ctx: &Context, cluster: &IggyCluster, before: Option<i32>, now: i32) {
    match before {
        None => {
            publish(
                ctx,
                cluster,
                "Created",
                "created the broker StatefulSet and its Services",
            )
            .await
        }
        Some(before) if before != now => {
            let note = format!("scaled the broker StatefulSet from {before} to {now}");
            publish(ctx, cluster, "Scaled", &note).await
        }
        _ => {}
    }
}

/// What the brokers report: members, metadata leader, the cluster's uid
/// (and a Warning Event should it change, or a broker run low on disk
/// space).
async fn report_brokers(
    ctx: &Context,
    cluster: &IggyCluster,
    observed: &brokers::ClusterStatus,
    status: &mut IggyClusterStatus,
) {
    status.metadata_leader = observed.leader.map(|id| id as i32);
    let members = brokers::members(cluster, observed);
    for member in brokers::newly_low(&status.members, &members) {
        let why = format!(
            "broker {} (pod {}) runs low on disk space: it hands the leadership of its \
             partitions to brokers with room, and refuses writes at its reserve; grow \
             spec.storage.size or shorten the topics' retention",
            member.id, member.pod
        );
        publish_event(ctx, cluster, EventType::Warning, "BrokerLowOnSpace", &why).await;
    }
    status.members = members;
    let uid = observed.uid.as_deref();
    if let Some(why) = brokers::founded_anew(status.cluster_uid.as_deref(), uid) {
        publish_event(ctx, cluster, EventType::Warning, "ClusterFormedAnew", &why).await;
    }
    if uid.is_some() {
        status.cluster_uid = uid.map(str::to_string);
    }
}

/// The certificates' status, and what TLS refused or has under way.
async fn report_tls(
    ctx: &Context,
    cluster: &IggyCluster,
    tls: &super::tls::TlsOutcome,
    replica_tls: ReplicaTls,
    status: &mut IggyClusterStatus,
) {
    let generation = cluster.metadata.generation;
    status.tls = tls.status.clone();
    if let Some((reason, why)) = &tls.refused {
        degrade(ctx, cluster, status, reason, why, why.clone()).await;
    }
    if replica_tls == ReplicaTls::Switching {
        conditions::set(
            &mut status.conditions,
            PROGRESSING,
            true,
            "InterBrokerTLSSwitching",
            "switching inter-broker TLS: every broker accepts peers with and without it until \
             all run that, then every broker is restarted as asked",
            generation,
        );
    }
    if let Some(step) = &tls.progressing {
        conditions::set(
            &mut status.conditions,
            PROGRESSING,
            true,
            "CertificateRotation",
            step.clone(),
            generation,
        );
    }
}

async fn observe_brokers(
    ctx: &Context,
    cluster: &IggyCluster,
    namespace: &str,
) -> Result<Option<Brokers>> {
    let Some(credentials) = brokers::credentials(ctx, cluster, namespace).await? else {
        return Ok(None);
    };
    let observed = async {
        let session = brokers::AdminSession::login(cluster, &credentials).await?;
        let status = session.status().await?;
        let partitions = session.partitions().await?;
        Ok::<_, reqwest::Error>((session, status, partitions))
    };
    match observed.await {
        Ok((session, status, partitions)) => {
            let voters = status
                .nodes
                .iter()
                .filter(|n| n.voter)
                .map(|n| n.id)
                .collect();
            Ok(Some(Brokers {
                session,
                status,
                scale: scale::Observed { voters, partitions },
            }))
        }
        Err(e) => {
            tracing::info!(cluster = %cluster.name_any(), "cluster status unavailable: {e:?}");
            Ok(None)
        }
    }
}

/// Server-side apply `object` as the operator's field manager.
pub(super) async fn apply<K>(ctx: &Context, namespace: &str, object: &K) -> Result<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Serialize
        + DeserializeOwned
        + Clone
        + Debug,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    let name = object.meta().name.clone().expect("children are named");
    Ok(api
        .patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(object),
        )
        .await?)
}

async fn delete_if_present<K>(api: &Api<K>, name: &str) -> Result<()>
where
    K: Resource + DeserializeOwned + Clone + Debug,
{
    match api.delete(name, &Default::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn write_status(
    ctx: &Context,
    cluster: &IggyCluster,
    status: &IggyClusterStatus,
) -> Result<()> {
    super::patch_status(ctx, cluster, status).await
}

/// Inter-broker TLS as `cluster` asks for it, through a switching roll
/// when the running brokers have it the other way (see
/// [`super::replica_tls`]); applied to `desired`, and returned.
async fn switch_replica_tls(
    ctx: &Context,
    cluster: &IggyCluster,
    namespace: &str,
    previous: Option<&StatefulSet>,
    desired: &mut StatefulSet,
) -> Result<ReplicaTls> {
    let wanted = cluster.spec.tls().is_some_and(|t| t.listeners.inter_broker);
    let current = previous.map(ReplicaTls::of);
    // Only a switch under way needs to know how far its roll got.
    let rolled = match (current, previous) {
        (Some(ReplicaTls::Switching), Some(sts)) => {
            let revision = sts.status.as_ref().and_then(|s| s.update_revision.clone());
            let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
            let states = super::roll::pod_states(&pods, cluster).await?;
            let expected = sts
                .spec
                .as_ref()
                .and_then(|s| s.replicas)
                .unwrap_or(0)
                .max(0) as usize;
            // The StatefulSet controller has seen the switching template
            // (else its revision is the one before).
            let observed =
                sts.status.as_ref().and_then(|s| s.observed_generation) == sts.metadata.generation;
            observed
                && revision.is_some_and(|revision| {
                    states.len() >= expected
                        && states.iter().all(|p| p.ready && p.revision == revision)
                })
        }
        _ => false,
    };
    let next = replica_tls::next(wanted, current, rolled);
    tls::set_replica_tls(desired, previous, next);
    if current.is_some_and(|c| c != next) {
        // One reason per step: Events of one reason are aggregated into a
        // series that keeps the first note.
        let (reason, note) = match next {
            ReplicaTls::Switching => (
                "InterBrokerTLSSwitching",
                "switching inter-broker TLS: rolling every broker to accept peers with and without it",
            ),
            ReplicaTls::Required => (
                "InterBrokerTLSRequired",
                "every broker accepts TLS peers: rolling them to require inter-broker TLS",
            ),
            ReplicaTls::Off => (
                "InterBrokerTLSOff",
                "every broker accepts plain peers: rolling them to inter-broker TLS off",
            ),
        };
        publish(ctx, cluster, reason, note).await;
    }
    Ok(next)
}

/// Record a Normal Event on the cluster.
pub(super) async fn publish(ctx: &Context, cluster: &IggyCluster, reason: &str, note: &str) {
    publish_event(ctx, cluster, EventType::Normal, reason, note).await
}

/// Set `Degraded` with `reason`, and the Warning Event `note` when the
/// cluster was not already degraded for that reason before this reconcile
/// (the status being built has had its conditions recomputed already).
pub(super) async fn degrade(
    ctx: &Context,
    cluster: &IggyCluster,
    status: &mut IggyClusterStatus,
    reason: &str,
    note: &str,
    message: String,
) {
    let already = cluster.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == DEGRADED && c.status == "True" && c.reason == reason)
    });
    if !already {
        publish_event(ctx, cluster, EventType::Warning, reason, note).await;
    }
    conditions::set(
        &mut status.conditions,
        DEGRADED,
        true,
        reason,
        message,
        cluster.metadata.generation,
    );
}

/// Record a Kubernetes Event on the cluster.
pub(super) async fn publish_event(
    ctx: &Context,
    cluster: &IggyCluster,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    ctx.publish(cluster, type_, reason, note).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::fixtures::cluster;
    use k8s_openapi::api::apps::v1::StatefulSetStatus;

    fn sts(generation: i64, observed: i64, ready: i32) -> StatefulSet {
        let mut s = StatefulSet::default();
        s.metadata.generation = Some(generation);
        s.status = Some(StatefulSetStatus {
            observed_generation: Some(observed),
            ready_replicas: Some(ready),
            ..Default::default()
        });
        s
    }

    #[test]
    fn status_tells_starting_degraded_and_ready_apart() {
        let c = cluster(3);
        let mut status = IggyClusterStatus::default();
        compute_status(&c, &sts(1, 1, 0), true, &mut status);
        assert!(!conditions::is_true(&status.conditions, READY));
        assert!(conditions::is_true(&status.conditions, PROGRESSING));
        assert!(!conditions::is_true(&status.conditions, DEGRADED));

        compute_status(&c, &sts(1, 1, 2), true, &mut status);
        assert!(conditions::is_true(&status.conditions, DEGRADED));

        compute_status(&c, &sts(2, 1, 3), true, &mut status);
        assert!(
            !conditions::is_true(&status.conditions, READY),
            "StatefulSet not caught up"
        );

        compute_status(&c, &sts(2, 2, 3), true, &mut status);
        assert!(conditions::is_true(&status.conditions, READY));
        assert!(!conditions::is_true(&status.conditions, PROGRESSING));
        assert_eq!(status.observed_generation, Some(1));
        assert_eq!(status.ready_replicas, 3);
        assert_eq!(
            status.endpoints.as_ref().unwrap().tcp,
            "demo-client.iggy.svc:8090"
        );
    }

    #[test]
    fn a_missing_user_secret_is_reported() {
        let c = cluster(1);
        let mut status = IggyClusterStatus::default();
        compute_status(&c, &sts(1, 1, 1), false, &mut status);
        assert!(!conditions::is_true(&status.conditions, READY));
        let ready = status.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(ready.reason, "RootCredentialsMissing");
    }
}
