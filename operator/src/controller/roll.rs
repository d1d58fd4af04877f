//! Rolling the brokers onto a new StatefulSet revision, one pod at a time.
//!
//! The StatefulSet uses `OnDelete`, so a changed image, config or resources
//! reaches a broker only when the operator restarts its pod. The decision
//! is pure: given the pods and the revision they should run, either
//! everything runs it, or the roll waits (a pod is not Ready — restarted
//! and still catching up, or anything else), or one pod is next. The caller
//! then asks the brokers whether restarting that one is safe (no partition
//! would drop below its minimum of in-sync replicas or lose its leader
//! without a caught-up successor) and evicts it only if they say yes.
//!
//! Brokers are rolled highest ordinal first; a broker is Ready only when
//! its replicas have caught up (its `/readyz`), so "every pod Ready" before
//! the next restart is what keeps two brokers from being down at once.

use std::time::Duration;

/// A broker pod as the roll sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodState {
    pub ordinal: u32,
    /// Its `controller-revision-hash` label.
    pub revision: String,
    pub ready: bool,
    /// How long ago it was created (a restarted pod is a new pod).
    pub age: Duration,
}

/// A pod that is not Ready this long after it was created did not come
/// back: the roll stops and says so.
pub const STALLED_AFTER: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollStep {
    /// Every pod runs the revision.
    Done,
    /// Wait and look again; the message says for what.
    Wait(String),
    /// A pod has not become Ready for [`STALLED_AFTER`]: stop rolling.
    Stalled(String),
    /// Restart this pod next (if the brokers agree it is safe).
    Restart(u32),
}

/// The next step towards every one of `expected` pods running `revision`.
pub fn next_step(pods: &[PodState], revision: &str, expected: u32) -> RollStep {
    if let Some(stuck) = pods
        .iter()
        .find(|p| !p.ready && p.revision == revision && p.age >= STALLED_AFTER)
    {
        return RollStep::Stalled(format!(
            "broker pod {} runs revision {revision} but has not been Ready in the {} s since it started",
            stuck.ordinal,
            stuck.age.as_secs()
        ));
    }
    let outdated: Vec<&PodState> = pods.iter().filter(|p| p.revision != revision).collect();
    if outdated.is_empty() {
        // Pods still to be created are the StatefulSet's business.
        return RollStep::Done;
    }
    if (pods.len() as u32) < expected {
        return RollStep::Wait(format!("{} of {expected} broker pods exist", pods.len()));
    }
    if let Some(not_ready) = pods.iter().find(|p| !p.ready) {
        return RollStep::Wait(format!(
            "broker pod {} is not Ready (restarting or catching up)",
            not_ready.ordinal
        ));
    }
    let next = outdated
        .iter()
        .map(|p| p.ordinal)
        .max()
        .expect("an outdated pod");
    RollStep::Restart(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ordinal: u32, revision: &str, ready: bool) -> PodState {
        PodState {
            ordinal,
            revision: revision.into(),
            ready,
            age: Duration::from_secs(30),
        }
    }

    #[test]
    fn pods_roll_highest_ordinal_first_and_only_when_all_are_ready() {
        let all_old = [pod(0, "a", true), pod(1, "a", true), pod(2, "a", true)];
        assert_eq!(next_step(&all_old, "b", 3), RollStep::Restart(2));
        let two_done = [pod(0, "a", true), pod(1, "b", true), pod(2, "b", true)];
        assert_eq!(next_step(&two_done, "b", 3), RollStep::Restart(0));
        let all_new = [pod(0, "b", true), pod(1, "b", true), pod(2, "b", true)];
        assert_eq!(next_step(&all_new, "b", 3), RollStep::Done);
    }

    #[test]
    fn a_restarted_pod_that_is_not_ready_yet_blocks_the_next_restart() {
        // Pod 2 already runs the new revision but its broker has not caught
        // up (not Ready): pod 1 must not go down too.
        let catching_up = [pod(0, "a", true), pod(1, "a", true), pod(2, "b", false)];
        assert!(matches!(
            next_step(&catching_up, "b", 3),
            RollStep::Wait(m) if m.contains("pod 2")
        ));
        // A pod missing (deleted, not recreated yet) blocks too.
        let missing = [pod(0, "a", true), pod(1, "a", true)];
        assert!(matches!(next_step(&missing, "b", 3), RollStep::Wait(_)));
        // An old pod that is not Ready also blocks: never two down.
        let old_down = [pod(0, "a", false), pod(1, "a", true), pod(2, "a", true)];
        assert!(matches!(next_step(&old_down, "b", 3), RollStep::Wait(_)));
    }

    #[test]
    fn a_pod_that_does_not_come_back_stops_the_roll() {
        let stuck = [
            pod(0, "a", true),
            pod(1, "a", true),
            PodState {
                age: STALLED_AFTER,
                ..pod(2, "b", false)
            },
        ];
        assert!(matches!(
            next_step(&stuck, "b", 3),
            RollStep::Stalled(m) if m.contains("pod 2")
        ));
    }
}

/// What a reconcile did about the roll, for the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rolling {
    /// Nothing to roll.
    Idle,
    /// Rolling; the message says where it stands.
    InProgress(String),
    /// Stopped: a pod did not come back.
    Stalled(String),
}

/// The broker pods of `cluster` as the roll sees them.
pub async fn pod_states(
    pods: &kube::Api<k8s_openapi::api::core::v1::Pod>,
    cluster: &crate::crd::IggyCluster,
) -> crate::Result<Vec<PodState>> {
    let selector = crate::resources::labels::selector(cluster)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let list = pods
        .list(&kube::api::ListParams::default().labels(&selector))
        .await?;
    let now = k8s_openapi::jiff::Timestamp::now();
    Ok(list
        .items
        .into_iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .filter_map(|pod| {
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            let ordinal = labels.get("apps.kubernetes.io/pod-index")?.parse().ok()?;
            let revision = labels.get("controller-revision-hash")?.clone();
            let ready = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            let age = pod
                .metadata
                .creation_timestamp
                .as_ref()
                .and_then(|created| (now - created.0).try_into().ok())
                .unwrap_or_default();
            Some(PodState {
                ordinal,
                revision,
                ready,
                age,
            })
        })
        .collect())
}

/// One step of the roll: restart the next pod if every pod is Ready and
/// the brokers say its restart is safe.
pub async fn roll(
    ctx: &super::Context,
    cluster: &crate::crd::IggyCluster,
    namespace: &str,
    sts: &k8s_openapi::api::apps::v1::StatefulSet,
    status: &mut crate::crd::IggyClusterStatus,
) -> crate::Result<Rolling> {
    use k8s_openapi::api::core::v1::Pod;
    use kube::runtime::events::EventType;
    let Some(revision) = sts.status.as_ref().and_then(|s| s.update_revision.clone()) else {
        return Ok(Rolling::Idle);
    };
    let pods: kube::Api<Pod> = kube::Api::namespaced(ctx.client.clone(), namespace);
    let states = pod_states(&pods, cluster).await?;
    status.updated_replicas = states.iter().filter(|p| p.revision == revision).count() as i32;
    status.update_revision = Some(revision.clone());
    let expected = cluster.spec.replicas.max(0) as u32;
    match next_step(&states, &revision, expected) {
        RollStep::Done => Ok(Rolling::Idle),
        RollStep::Wait(message) => Ok(Rolling::InProgress(format!(
            "rolling out revision {revision}: {message}"
        ))),
        RollStep::Stalled(message) => Ok(Rolling::Stalled(message)),
        RollStep::Restart(ordinal) => {
            let Some(credentials) = super::brokers::credentials(ctx, cluster, namespace).await?
            else {
                return Ok(Rolling::InProgress(
                    "waiting for the root credentials to ask the brokers".into(),
                ));
            };
            let answer = match super::brokers::AdminSession::login(cluster, &credentials).await {
                Ok(session) => session.safe_to_restart(ordinal).await,
                Err(e) => Err(e),
            };
            let answer = match answer {
                Ok(answer) => answer,
                Err(e) => {
                    return Ok(Rolling::InProgress(format!(
                        "rolling out revision {revision}: cannot ask the brokers whether restarting broker {ordinal} is safe ({e})"
                    )));
                }
            };
            if !answer.safe {
                return Ok(Rolling::InProgress(format!(
                    "rolling out revision {revision}: restarting broker {ordinal} now is unsafe: {}",
                    answer.reasons.join("; ")
                )));
            }
            let pod = format!(
                "{}-{ordinal}",
                crate::resources::names::statefulset(cluster)
            );
            // An eviction, not a delete: the PodDisruptionBudget has the
            // last word.
            pods.evict(&pod, &kube::api::EvictParams::default()).await?;
            let mut note = format!(
                "restarting broker pod {pod} for revision {revision} (the brokers say it is safe)"
            );
            if !answer.unreplicated.is_empty() {
                note.push_str(&format!(
                    "; {} partitions of one replica are unavailable until it is back",
                    answer.unreplicated.len()
                ));
            }
            ctx.publish(cluster, EventType::Normal, "RollingRestart", &note)
                .await;
            Ok(Rolling::InProgress(format!(
                "rolling out revision {revision}: restarted {pod}"
            )))
        }
    }
}
