//! Reconciling an `IggyTopic`: read the cluster, the credentials and the
//! broker's topic, decide with [`topic_plan`](super::topic_plan), apply
//! the changes through the official client and the admin API, and write a
//! status that says what the brokers have.
//!
//! A finalizer keeps the resource until its `deletionPolicy` is carried
//! out: `Delete` removes the topic (only one this resource created or
//! adopted), `Retain` keeps it.

use super::Context;
use super::brokers::{self, AdminSession, PartitionStatus};
use super::topic_plan::{self, Change, Desired, Observed, Plan};
use crate::crd::conditions::{self, DEGRADED, READY};
use crate::crd::topic::{DeletionPolicy, TopicPartitionStatus};
use crate::crd::{IggyCluster, IggyTopic, IggyTopicStatus};
use crate::resources::{names, tls};
use crate::{Error, Result};
use iggy::prelude::*;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizing, finalizer};
use kube::{Api, ResourceExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub const FINALIZER: &str = "iggy.rs/topic";
pub const CONFLICT: &str = "Conflict";
const KIND: &str = "iggytopic";

/// Re-read a topic that is in sync this often, to undo changes made
/// behind the resource's back.
const DRIFT_CHECK: Duration = Duration::from_secs(60);
/// Look again this soon while waiting for partitions to move.
const WAIT: Duration = Duration::from_secs(5);
/// Look again this late while waiting for the cluster to exist or be
/// Ready: its changes wake its topics (see [`ClusterChanges`]), so this
/// only covers a change missed (a cluster deleted outright, say).
const WAIT_FOR_CLUSTER: Duration = Duration::from_secs(60);

pub async fn reconcile(topic: Arc<IggyTopic>, ctx: Arc<Context>) -> Result<Action> {
    let mut measurer = ctx.metrics.measure(KIND);
    let namespace = topic.namespace().unwrap_or_default();
    let api: Api<IggyTopic> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = finalizer(&api, FINALIZER, topic.clone(), |event| async {
        match event {
            Finalizing::Apply(topic) => apply(&topic, &ctx).await,
            Finalizing::Cleanup(topic) => cleanup(&topic, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    });
    match &result {
        Ok(_) => ctx.succeeded(topic.as_ref()),
        Err(e) => measurer.fail(e.metric_label()),
    }
    result
}

/// Retry with exponential backoff (the failure is in the status already).
pub fn error_policy(topic: Arc<IggyTopic>, error: &Error, ctx: Arc<Context>) -> Action {
    let retry = ctx.failed(topic.as_ref());
    tracing::warn!(topic = %topic.name_any(), ?retry, "reconcile failed: {error}");
    Action::requeue(retry)
}

/// The cluster, if it exists and is not being deleted.
async fn cluster_of(ctx: &Context, topic: &IggyTopic) -> Result<Option<IggyCluster>> {
    let api: Api<IggyCluster> =
        Api::namespaced(ctx.client.clone(), &topic.namespace().unwrap_or_default());
    Ok(api
        .get_opt(&topic.spec.cluster_ref)
        .await?
        .filter(|c| c.metadata.deletion_timestamp.is_none()))
}

/// A client of the cluster's brokers, logged in as root, and a session
/// on their admin API.
async fn connect(ctx: &Context, cluster: &IggyCluster) -> Result<(IggyClient, AdminSession)> {
    let namespace = cluster.namespace().unwrap_or_default();
    let credentials = brokers::credentials(ctx, cluster, &namespace)
        .await?
        .ok_or_else(|| Error::Broker("the cluster's root credentials are missing".into()))?;
    let address = format!(
        "{}.{namespace}.svc:{}",
        names::client_service(cluster),
        cluster.spec.listeners.tcp_port
    );
    let mut builder = IggyClient::builder()
        .with_tcp()
        .with_server_address(address.clone());
    if cluster.spec.tls().is_some_and(|t| t.listeners.tcp) {
        // The SDK reads its CAs from a file.
        let bundle = credentials.ca_bundle.clone().ok_or_else(|| {
            Error::Broker(format!(
                "TLS is on but ConfigMap {} holds no CA bundle yet",
                names::ca_bundle(cluster)
            ))
        })?;
        let file = std::env::temp_dir().join(format!(
            "iggy-operator-{namespace}-{}-ca.crt",
            cluster.name_any()
        ));
        std::fs::write(&file, bundle)
            .map_err(|e| Error::Broker(format!("writing {}: {e}", file.display())))?;
        builder = builder
            .with_tls_enabled(true)
            .with_tls_domain(tls::client_domain(cluster))
            .with_tls_ca_file(file.display().to_string());
    }
    let client = builder
        .build()
        .map_err(|e| Error::Broker(format!("client for {address}: {e}")))?;
    client
        .connect()
        .await
        .map_err(|e| Error::Broker(format!("connecting to {address}: {e}")))?;
    client
        .login_user(&credentials.username, &credentials.password)
        .await
        .map_err(|e| Error::Broker(format!("logging in to {address}: {e}")))?;
    let admin = AdminSession::login(cluster, &credentials)
        .await
        .map_err(|e| Error::Broker(format!("the admin API: {e}")))?;
    Ok((client, admin))
}

fn broker_error(what: &str) -> impl Fn(IggyError) -> Error + '_ {
    move |e| Error::Broker(format!("{what}: {e}"))
}

async fn apply(topic: &IggyTopic, ctx: &Context) -> Result<Action> {
    let generation = topic.metadata.generation;
    let mut status = topic.status.clone().unwrap_or_default();
    status.observed_generation = generation;

    let desired = match Desired::from_spec(&topic.spec, &topic.name_any()) {
        Ok(desired) => desired,
        Err(message) => {
            not_ready(&mut status, "InvalidSpec", &message, generation, true);
            write_status(ctx, topic, &status).await?;
            return Ok(Action::await_change());
        }
    };
    let cluster = match cluster_of(ctx, topic).await? {
        Some(cluster) if cluster_ready(&cluster) => cluster,
        other => {
            let name = &topic.spec.cluster_ref;
            let (reason, message) = match other {
                Some(_) => (
                    "ClusterNotReady",
                    format!("waiting for IggyCluster {name} to be Ready"),
                ),
                None => (
                    "ClusterNotFound",
                    format!("IggyCluster {name} does not exist in this namespace"),
                ),
            };
            not_ready(&mut status, reason, &message, generation, false);
            write_status(ctx, topic, &status).await?;
            return Ok(Action::requeue(WAIT_FOR_CLUSTER));
        }
    };

    let result = sync(topic, ctx, &cluster, &desired, &mut status).await;
    if let Err(e) = &result {
        // Every failure reaches the status and an Event.
        let message = e.to_string();
        not_ready(&mut status, "SyncFailed", &message, generation, true);
        ctx.publish(topic, EventType::Warning, "SyncFailed", &message)
            .await;
    }
    write_status(ctx, topic, &status).await?;
    result
}

/// Bring the broker's topic to the spec; fills `status`.
async fn sync(
    topic: &IggyTopic,
    ctx: &Context,
    cluster: &IggyCluster,
    desired: &Desired,
    status: &mut IggyTopicStatus,
) -> Result<Action> {
    let generation = topic.metadata.generation;
    let (client, admin) = connect(ctx, cluster).await?;
    let stream_id = ensure_stream(topic, ctx, &client).await?;
    let stream = Identifier::numeric(stream_id).expect("a stream id");
    let topic_name = Identifier::named(&desired.name)
        .map_err(|e| Error::InvalidSpec(format!("topic name {:?}: {e}", desired.name)))?;
    let partitions = admin
        .partitions()
        .await
        .map_err(|e| Error::Broker(format!("reading partitions: {e}")))?;
    let details = client
        .get_topic(&stream, &topic_name)
        .await
        .map_err(broker_error("reading the topic"))?;
    let observed = details.map(|d| observe(&d, stream_id, &partitions));

    // Whether the broker's topic changed here (then its partitions are
    // read again for the status).
    let (topic_id, changed) = match topic_plan::plan(desired, observed.as_ref(), status.topic_id) {
        Plan::Conflict(message) => {
            report_conflict(topic, ctx, status, &message).await;
            return Ok(Action::requeue(DRIFT_CHECK));
        }
        Plan::Create => (
            create_topic(topic, ctx, &client, &stream, desired).await?,
            true,
        ),
        Plan::Sync { changes, problems } => {
            let id = observed.as_ref().expect("a topic to sync").id;
            for change in &changes {
                let note = change_topic(&client, &admin, (stream_id, id), desired, change).await?;
                ctx.publish(topic, EventType::Normal, "TopicUpdated", &note)
                    .await;
            }
            let problem =
                (!problems.is_empty()).then(|| ("MorePartitionsThanDeclared", problems.join("; ")));
            set_degraded(status, problem, generation);
            (id, !changes.is_empty())
        }
    };
    conditions::set(
        &mut status.conditions,
        CONFLICT,
        false,
        "Owned",
        "",
        generation,
    );
    status.stream_id = Some(stream_id);
    status.topic_id = Some(topic_id);

    // What the brokers have now (after the changes above, if any).
    let partitions = if changed {
        admin
            .partitions()
            .await
            .map_err(|e| Error::Broker(format!("reading partitions: {e}")))?
    } else {
        partitions
    };
    status.partitions = partitions
        .iter()
        .filter(|p| p.stream_id == stream_id && p.topic_id == topic_id)
        .map(|p| TopicPartitionStatus {
            id: p.partition_id,
            replicas: p.replicas.clone(),
            leader: p.leader,
            in_sync: p.in_sync.clone(),
            moving_to: p.reassigning.clone(),
        })
        .collect();
    let (ready, reason, message) = readiness(desired, &status.partitions);
    conditions::set(
        &mut status.conditions,
        READY,
        ready,
        reason,
        &message,
        generation,
    );
    Ok(Action::requeue(if ready { DRIFT_CHECK } else { WAIT }))
}

/// The id of the spec's stream, created if it does not exist.
async fn ensure_stream(topic: &IggyTopic, ctx: &Context, client: &IggyClient) -> Result<u32> {
    let stream_name = &topic.spec.stream;
    let stream = Identifier::named(stream_name)
        .map_err(|e| Error::InvalidSpec(format!("stream {stream_name:?}: {e}")))?;
    if let Some(details) = client
        .get_stream(&stream)
        .await
        .map_err(broker_error("reading the stream"))?
    {
        return Ok(details.id);
    }
    let created = client
        .create_stream(stream_name)
        .await
        .map_err(broker_error("creating the stream"))?;
    let note = format!("created stream {stream_name:?}");
    ctx.publish(topic, EventType::Normal, "StreamCreated", &note)
        .await;
    Ok(created.id)
}

/// Someone else's topic of that name differs from the spec: left alone,
/// and said so (the Warning Event only when the conflict is new).
async fn report_conflict(
    topic: &IggyTopic,
    ctx: &Context,
    status: &mut IggyTopicStatus,
    message: &str,
) {
    let generation = topic.metadata.generation;
    if !conditions::is_true(&status.conditions, CONFLICT) {
        ctx.publish(topic, EventType::Warning, CONFLICT, message)
            .await;
    }
    conditions::set(
        &mut status.conditions,
        CONFLICT,
        true,
        "TopicExists",
        message,
        generation,
    );
    conditions::set(
        &mut status.conditions,
        READY,
        false,
        CONFLICT,
        message,
        generation,
    );
    set_degraded(status, None, generation);
}

/// Create the declared topic in `stream`; returns its id.
async fn create_topic(
    topic: &IggyTopic,
    ctx: &Context,
    client: &IggyClient,
    stream: &Identifier,
    desired: &Desired,
) -> Result<u32> {
    let options = TopicCreateOptions {
        partitions_count: Some(desired.partitions),
        compression_algorithm: Some(desired.compression),
        message_expiry: Some(desired.message_expiry),
        max_topic_size: Some(desired.max_topic_size),
        raw: [(
            "replication_factor".to_string(),
            desired.replication_factor.to_string(),
        )]
        .into(),
        ..Default::default()
    };
    let created = client
        .create_topic(stream, &desired.name, &options)
        .await
        .map_err(broker_error("creating the topic"))?;
    let note = format!(
        "created topic {:?} in stream {:?}: {} partitions, replication factor {}",
        desired.name, topic.spec.stream, desired.partitions, desired.replication_factor
    );
    ctx.publish(topic, EventType::Normal, "TopicCreated", &note)
        .await;
    Ok(created.id)
}

/// Make one change to the broker's topic `(stream id, topic id)`; returns
/// what was done, for the Event.
async fn change_topic(
    client: &IggyClient,
    admin: &AdminSession,
    (stream_id, topic_id): (u32, u32),
    desired: &Desired,
    change: &Change,
) -> Result<String> {
    let stream = Identifier::numeric(stream_id).expect("a stream id");
    let topic = Identifier::numeric(topic_id).expect("a topic id");
    Ok(match change {
        Change::Settings => {
            let options = TopicUpdateOptions {
                compression_algorithm: Some(desired.compression),
                message_expiry: Some(desired.message_expiry),
                max_topic_size: Some(desired.max_topic_size),
                ..Default::default()
            };
            client
                .update_topic(&stream, &topic, &desired.name, &options)
                .await
                .map_err(broker_error("updating the topic"))?;
            "updated message expiry, size cap and compression".to_string()
        }
        Change::AddPartitions(count) => {
            client
                .create_partitions(&stream, &topic, *count)
                .await
                .map_err(broker_error("adding partitions"))?;
            format!("added {count} partitions")
        }
        Change::ReplicationFactor(factor) => {
            admin
                .change_replication_factor(stream_id, topic_id, *factor)
                .await
                .map_err(|e| Error::Broker(format!("changing the replication factor: {e}")))?;
            format!("changing the replication factor to {factor}")
        }
    })
}

/// Whether the brokers have the declared topic: every partition there,
/// led, with its replicas in place and in sync.
fn readiness(
    desired: &Desired,
    partitions: &[TopicPartitionStatus],
) -> (bool, &'static str, String) {
    let factor = desired.replication_factor as usize;
    let moving = partitions.iter().filter(|p| p.moving_to.is_some()).count();
    let settled = partitions
        .iter()
        .filter(|p| {
            p.moving_to.is_none()
                && p.leader.is_some()
                && p.replicas.len() == factor
                && p.in_sync.len() == factor
        })
        .count();
    if (partitions.len() as u32) < desired.partitions {
        (
            false,
            "PartitionsMissing",
            format!(
                "{} of {} partitions exist",
                partitions.len(),
                desired.partitions
            ),
        )
    } else if moving > 0 {
        (
            false,
            "ReplicasMoving",
            format!(
                "{moving} of {} partitions moving to {factor} replicas",
                partitions.len()
            ),
        )
    } else if settled < partitions.len() {
        (
            false,
            "UnderReplicated",
            format!(
                "{settled} of {} partitions have {factor} replicas in sync and a leader",
                partitions.len()
            ),
        )
    } else {
        (
            true,
            "InSync",
            format!(
                "{} partitions, each on {factor} replicas in sync",
                partitions.len()
            ),
        )
    }
}

fn observe(details: &TopicDetails, stream_id: u32, partitions: &[PartitionStatus]) -> Observed {
    let of_topic = || {
        partitions
            .iter()
            .filter(move |p| p.stream_id == stream_id && p.topic_id == details.id)
    };
    Observed {
        id: details.id,
        partitions: details.partitions_count,
        replication_factor: of_topic().find_map(|p| p.replication_factor),
        message_expiry: details.message_expiry,
        max_topic_size: details.max_topic_size,
        compression: details.compression_algorithm,
        moving: of_topic().any(|p| p.reassigning.is_some()),
    }
}

/// Carry out the deletion policy. A topic this resource never created or
/// adopted is never deleted; neither is anything when the cluster is gone.
async fn cleanup(topic: &IggyTopic, ctx: &Context) -> Result<Action> {
    let name = topic.spec.name.clone().unwrap_or_else(|| topic.name_any());
    let status = topic.status.clone().unwrap_or_default();
    let (Some(stream_id), Some(topic_id)) = (status.stream_id, status.topic_id) else {
        return Ok(Action::await_change());
    };
    if topic.spec.deletion_policy == DeletionPolicy::Retain {
        let note = format!("kept topic {name:?} in the broker (deletionPolicy Retain)");
        ctx.publish(topic, EventType::Normal, "TopicRetained", &note)
            .await;
        return Ok(Action::await_change());
    }
    let Some(cluster) = cluster_of(ctx, topic).await? else {
        return Ok(Action::await_change());
    };
    let (client, _) = connect(ctx, &cluster).await?;
    let stream = Identifier::numeric(stream_id).expect("a stream id");
    let id = Identifier::numeric(topic_id).expect("a topic id");
    let present = client
        .get_topic(&stream, &id)
        .await
        .map_err(broker_error("reading the topic"))?;
    if present.is_some_and(|t| t.name == name) {
        client
            .delete_topic(&stream, &id)
            .await
            .map_err(broker_error("deleting the topic"))?;
        let note = format!("deleted topic {name:?} and its messages (deletionPolicy Delete)");
        ctx.publish(topic, EventType::Normal, "TopicDeleted", &note)
            .await;
    }
    Ok(Action::await_change())
}

fn cluster_ready(cluster: &IggyCluster) -> bool {
    cluster
        .status
        .as_ref()
        .is_some_and(|s| conditions::is_true(&s.conditions, READY))
}

/// Whether `topic` names `cluster` (they share a namespace).
pub fn names_cluster(topic: &IggyTopic, cluster: &IggyCluster) -> bool {
    topic.spec.cluster_ref == cluster.name_any() && topic.namespace() == cluster.namespace()
}

/// What about a cluster its topics act on: its spec (generation), whether
/// it is Ready and whether it is being deleted. The topic controller
/// watches clusters and wakes a cluster's topics when one of these changes
/// — a topic waiting for its cluster syncs as soon as it is Ready, a
/// replication factor the cluster has just grown to hold is applied at
/// once — and not on the cluster's other status updates (each topic sync
/// logs in to a broker).
#[derive(Default)]
pub struct ClusterChanges {
    seen: std::sync::Mutex<HashMap<(Option<String>, String), ClusterState>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ClusterState {
    generation: Option<i64>,
    ready: bool,
    deleting: bool,
}

impl ClusterChanges {
    /// Whether `cluster` differs, in what its topics act on, from the last
    /// time it was looked at here (a cluster not seen before does).
    pub fn changed(&self, cluster: &IggyCluster) -> bool {
        let state = ClusterState {
            generation: cluster.metadata.generation,
            ready: cluster_ready(cluster),
            deleting: cluster.metadata.deletion_timestamp.is_some(),
        };
        let key = (cluster.namespace(), cluster.name_any());
        let mut seen = self.seen.lock().expect("not poisoned");
        seen.insert(key, state) != Some(state)
    }
}

/// Ready false for `reason`; `degraded` when it needs a person (a bad
/// spec, a failing broker) rather than time.
fn not_ready(
    status: &mut IggyTopicStatus,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    degraded: bool,
) {
    conditions::set(
        &mut status.conditions,
        READY,
        false,
        reason,
        message,
        generation,
    );
    let problem = degraded.then(|| (reason, message.to_string()));
    set_degraded(status, problem, generation);
}

/// Degraded with `(reason, message)`, or not degraded.
fn set_degraded(
    status: &mut IggyTopicStatus,
    problem: Option<(&str, String)>,
    generation: Option<i64>,
) {
    let (degraded, reason, message) = match problem {
        Some((reason, message)) => (true, reason, message),
        None => (false, "AsExpected", String::new()),
    };
    conditions::set(
        &mut status.conditions,
        DEGRADED,
        degraded,
        reason,
        message,
        generation,
    );
}

async fn write_status(ctx: &Context, topic: &IggyTopic, status: &IggyTopicStatus) -> Result<()> {
    super::patch_status(ctx, topic, status).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::IggyClusterStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn cluster(name: &str, generation: i64, ready: bool) -> IggyCluster {
        let mut cluster: IggyCluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "iggy.rs/v1alpha1",
            "kind": "IggyCluster",
            "metadata": {"name": name, "namespace": "ns", "generation": generation},
            "spec": {"replicas": 3},
        }))
        .unwrap();
        let mut status = IggyClusterStatus::default();
        conditions::set(
            &mut status.conditions,
            READY,
            ready,
            "Test",
            "",
            Some(generation),
        );
        cluster.status = Some(status);
        cluster
    }

    #[test]
    fn a_clusters_topics_wake_on_its_spec_readiness_or_deletion_not_on_other_status() {
        let changes = ClusterChanges::default();
        assert!(changes.changed(&cluster("a", 1, false)), "first seen");
        assert!(!changes.changed(&cluster("a", 1, false)), "the same again");
        assert!(changes.changed(&cluster("b", 1, false)), "another cluster");

        let mut other_status = cluster("a", 1, false);
        let status = other_status.status.as_mut().unwrap();
        status.ready_replicas = 2;
        conditions::set(
            &mut status.conditions,
            crate::crd::conditions::PROGRESSING,
            true,
            "Rolling",
            "",
            Some(1),
        );
        assert!(!changes.changed(&other_status), "another condition");

        assert!(changes.changed(&cluster("a", 1, true)), "became Ready");
        assert!(changes.changed(&cluster("a", 2, true)), "spec changed");
        let mut deleting = cluster("a", 2, true);
        deleting.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        assert!(changes.changed(&deleting), "being deleted");
    }
}
