//! The broker StatefulSet.
//!
//! - `updateStrategy: OnDelete`: the operator decides when each pod is
//!   replaced (one at a time, once the broker says it is safe).
//! - Node id = pod ordinal (the `apps.kubernetes.io/pod-index` label); peers
//!   are addressed by their stable DNS names in the headless Service.
//! - Non-root, read-only root filesystem, all capabilities dropped.
//! - Brokers prefer different nodes and zones unless the spec overrides it.

use super::configmap::{CONFIG_DIR, CONFIG_FILE, DATA_DIR, broker_toml};
use super::secret::{PASSWORD_KEY, SHARED_SECRET_KEY, USERNAME_KEY};
use super::{child_meta, labels, names};
use crate::crd::IggyCluster;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    HTTPGetAction, ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    SeccompProfile, SecretKeySelector, SecurityContext, TopologySpreadConstraint, Volume,
    VolumeMount, VolumeResourceRequirements, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use std::collections::BTreeMap;

/// Image repository used when the spec names no image.
pub const DEFAULT_IMAGE_REPOSITORY: &str = "localhost/iggy-broker";
/// Non-root user of the broker image.
pub const BROKER_UID: i64 = 65532;
/// Annotation holding a hash of the broker config, so a config change is
/// visible on the pod template (and pods are replaced by the roll-out).
pub const CONFIG_HASH_ANNOTATION: &str = "iggy.rs/config-hash";

pub fn image(cluster: &IggyCluster) -> String {
    cluster.spec.image.clone().unwrap_or_else(|| {
        let version = cluster
            .spec
            .version
            .clone()
            .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string());
        format!("{DEFAULT_IMAGE_REPOSITORY}:{version}")
    })
}

/// Where broker `{id}` listens for its peers (the brokers'
/// `IGGY_CLUSTER_PEERS` template: pod ordinal = node id). The same for any
/// number of brokers, so scaling does not change the pod template.
pub fn peers_template(cluster: &IggyCluster) -> String {
    let namespace = cluster.namespace().unwrap_or_default();
    format!(
        "{}-{{id}}.{}.{namespace}.svc:{}",
        names::statefulset(cluster),
        names::headless_service(cluster),
        cluster.spec.listeners.replica_port
    )
}

/// Keep the volume claim template of the StatefulSet that exists: it cannot
/// change (the API server refuses), so a new `storage.size` goes to the
/// claims instead (`controller::storage`), and new brokers' claims start
/// at the size the StatefulSet was created with until they are expanded.
pub fn keep_claim_template(desired: &mut StatefulSet, existing: &StatefulSet) {
    let template = |sts: &StatefulSet| {
        sts.spec
            .as_ref()?
            .volume_claim_templates
            .as_ref()?
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some("data"))?
            .spec
            .clone()
    };
    let Some(existing) = template(existing) else {
        return;
    };
    if let Some(claim) = desired
        .spec
        .as_mut()
        .and_then(|s| s.volume_claim_templates.as_mut())
        .and_then(|t| {
            t.iter_mut()
                .find(|c| c.metadata.name.as_deref() == Some("data"))
        })
        .and_then(|c| c.spec.as_mut())
    {
        claim.resources = existing.resources;
        claim.storage_class_name = existing.storage_class_name;
    }
}

/// How many brokers founded the cluster of this StatefulSet (its
/// `IGGY_CLUSTER_FOUNDERS`, or, from an operator that listed every broker
/// in `IGGY_CLUSTER_PEERS`, their number). Kept for the StatefulSet's
/// life: a broker that starts on an empty volume founds a new cluster only
/// if it is one of these and none exists.
pub fn founders(sts: &StatefulSet) -> Option<i32> {
    let broker = sts
        .spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == "broker")?;
    let var = |name: &str| {
        broker
            .env
            .as_ref()?
            .iter()
            .find(|e| e.name == name)?
            .value
            .clone()
    };
    if let Some(founders) = var("IGGY_CLUSTER_FOUNDERS").and_then(|v| v.parse().ok()) {
        return Some(founders);
    }
    var("IGGY_CLUSTER_PEERS")
        .filter(|peers| !peers.contains("{id}") && !peers.is_empty())
        .map(|peers| peers.split(',').count() as i32)
}

/// The pod's environment. `advertised_host` is where the brokers tell
/// clients to reach them (see `ListenersSpec::advertised_host`).
fn env(cluster: &IggyCluster, advertised_host: &str, founders: i32) -> Vec<EnvVar> {
    let root_secret = names::root_secret(cluster);
    let from_secret = |name: &str, secret: &str, key: &str| EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let value = |name: &str, value: String| EnvVar {
        name: name.into(),
        value: Some(value),
        ..Default::default()
    };
    // A pod label through the downward API ("" when the pod lacks it).
    let from_pod_label = |name: &str, label: &str| EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: format!("metadata.labels['{label}']"),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut env = vec![
        value("IGGY_CONFIG_PATH", format!("{CONFIG_DIR}/{CONFIG_FILE}")),
        from_secret("IGGY_ROOT_USERNAME", &root_secret, USERNAME_KEY),
        from_secret("IGGY_ROOT_PASSWORD", &root_secret, PASSWORD_KEY),
        from_pod_label("IGGY_CLUSTER_NODE_ID", "apps.kubernetes.io/pod-index"),
        // Kubernetes copies the node's zone label onto the pod when it is
        // bound (the PodTopologyLabelsAdmission plugin: beta and on by
        // default from 1.35 as topology.kubernetes.io/zone; alpha behind
        // a feature gate in 1.33–1.34, as topology.k8s.io/zone). One of
        // the two is set at most, so the broker gets whichever it is;
        // without either it has no zone and placement only balances load.
        from_pod_label("ZONE", "topology.kubernetes.io/zone"),
        from_pod_label("ZONE_ALPHA", "topology.k8s.io/zone"),
        value("IGGY_CLUSTER_ZONE", "$(ZONE)$(ZONE_ALPHA)".into()),
        value("IGGY_CLUSTER_PEERS", peers_template(cluster)),
        value("IGGY_CLUSTER_FOUNDERS", founders.to_string()),
        from_secret(
            "IGGY_CLUSTER_AUTH_SHARED_SECRET",
            &names::cluster_secret(cluster),
            SHARED_SECRET_KEY,
        ),
        value("IGGY_CLUSTER_ADVERTISED_HOST", advertised_host.to_string()),
    ];
    if let Some(token) = &cluster.spec.metrics.token_secret {
        env.push(from_secret(
            "IGGY_HTTP_METRICS_TOKEN",
            &token.name,
            &token.key,
        ));
    }
    env.extend(super::tls::env(cluster));
    // `section.key: value` → IGGY_SECTION_KEY=value (the broker's own
    // override mechanism, which parses the value as the key's type).
    for (key, val) in &cluster.spec.config.extra {
        let name = format!("IGGY_{}", key.replace(['.', '-'], "_").to_uppercase());
        env.push(value(&name, val.clone()));
    }
    env
}

/// An HTTP(S) probe; the kubelet does not verify the certificate.
fn probe(path: &str, port: i32, https: bool, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(port),
            scheme: https.then(|| "HTTPS".to_string()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        ..Default::default()
    }
}

fn default_affinity(cluster: &IggyCluster) -> Affinity {
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        label_selector: Some(LabelSelector {
                            match_labels: Some(labels::selector(cluster)),
                            ..Default::default()
                        }),
                        topology_key: "kubernetes.io/hostname".into(),
                        ..Default::default()
                    },
                },
            ]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn default_topology_spread(cluster: &IggyCluster) -> Vec<TopologySpreadConstraint> {
    vec![TopologySpreadConstraint {
        max_skew: 1,
        topology_key: "topology.kubernetes.io/zone".into(),
        when_unsatisfiable: "ScheduleAnyway".into(),
        label_selector: Some(LabelSelector {
            match_labels: Some(labels::selector(cluster)),
            ..Default::default()
        }),
        ..Default::default()
    }]
}

/// FNV-1a of the broker configuration: stable across operator versions and
/// platforms (unlike `DefaultHasher`).
pub fn config_hash(cluster: &IggyCluster) -> String {
    let mut hash: u64 = 0xcbf29ce484222325;
    for byte in broker_toml(cluster).bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    format!("{hash:016x}")
}

/// The broker StatefulSet with `replicas` pods (see `controller::scale`)
/// of a cluster founded by `founders` brokers.
pub fn build_statefulset(
    cluster: &IggyCluster,
    advertised_host: &str,
    replicas: i32,
    founders: i32,
) -> StatefulSet {
    let spec = &cluster.spec;
    let overrides = spec.pod_template.clone().unwrap_or_default();
    let mut pod_labels = overrides.labels.clone();
    pod_labels.extend(labels::labels(cluster));
    let mut annotations = overrides.annotations.clone();
    annotations.insert(CONFIG_HASH_ANNOTATION.into(), config_hash(cluster));
    let l = &spec.listeners;
    let https = super::tls::https(cluster);
    let tls_volume = super::tls::volume(cluster);
    let port = |name: &str, port: i32, protocol: &str| ContainerPort {
        name: Some(name.into()),
        container_port: port,
        protocol: Some(protocol.into()),
        ..Default::default()
    };

    let container = Container {
        name: "broker".into(),
        image: Some(image(cluster)),
        image_pull_policy: Some("IfNotPresent".into()),
        env: Some(env(cluster, advertised_host, founders)),
        ports: Some(vec![
            port("tcp", l.tcp_port, "TCP"),
            port("quic", l.quic_port, "UDP"),
            port("http", l.http_port, "TCP"),
            port("replica", l.replica_port, "TCP"),
        ]),
        liveness_probe: Some(probe("/healthz", l.http_port, https, 10, 3)),
        readiness_probe: Some(probe("/readyz", l.http_port, https, 5, 3)),
        resources: spec.resources.clone(),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        volume_mounts: Some(
            [
                VolumeMount {
                    name: "data".into(),
                    mount_path: DATA_DIR.into(),
                    ..Default::default()
                },
                VolumeMount {
                    name: "config".into(),
                    mount_path: CONFIG_DIR.into(),
                    read_only: Some(true),
                    ..Default::default()
                },
            ]
            .into_iter()
            .chain(tls_volume.as_ref().map(|(_, mount)| mount.clone()))
            .collect(),
        ),
        ..Default::default()
    };

    let pod_spec = PodSpec {
        containers: vec![container],
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(BROKER_UID),
            run_as_group: Some(BROKER_UID),
            fs_group: Some(BROKER_UID),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        affinity: Some(
            overrides
                .affinity
                .clone()
                .unwrap_or_else(|| default_affinity(cluster)),
        ),
        topology_spread_constraints: Some(if overrides.topology_spread_constraints.is_empty() {
            default_topology_spread(cluster)
        } else {
            overrides.topology_spread_constraints.clone()
        }),
        tolerations: (!overrides.tolerations.is_empty()).then(|| overrides.tolerations.clone()),
        node_selector: (!overrides.node_selector.is_empty())
            .then(|| overrides.node_selector.clone()),
        priority_class_name: overrides.priority_class_name.clone(),
        termination_grace_period_seconds: Some(30),
        volumes: Some(
            [Volume {
                name: "config".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: names::config_map(cluster),
                    ..Default::default()
                }),
                ..Default::default()
            }]
            .into_iter()
            .chain(tls_volume.map(|(volume, _)| volume))
            .collect(),
        ),
        ..Default::default()
    };

    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".into()),
            labels: Some(labels::selector(cluster)),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: spec.storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(spec.storage.size.clone()),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };

    StatefulSet {
        metadata: child_meta(cluster, names::statefulset(cluster)),
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            service_name: Some(names::headless_service(cluster)),
            selector: LabelSelector {
                match_labels: Some(labels::selector(cluster)),
                ..Default::default()
            },
            pod_management_policy: Some("Parallel".into()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                ..Default::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(annotations),
                    ..Default::default()
                }),
                spec: Some(pod_spec),
            },
            volume_claim_templates: Some(vec![claim]),
            persistent_volume_claim_retention_policy: spec
                .storage
                .persistent_volume_claim_retention_policy
                .clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::fixtures::cluster;
    use k8s_openapi::api::apps::v1::StatefulSetPersistentVolumeClaimRetentionPolicy;

    fn container(sts: &StatefulSet) -> Container {
        sts.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .clone()
    }

    fn env_value(c: &Container, name: &str) -> Option<String> {
        c.env
            .as_ref()?
            .iter()
            .find(|e| e.name == name)?
            .value
            .clone()
    }

    /// The downward-API field an env var is read from.
    fn env_field_path(c: &Container, name: &str) -> Option<String> {
        let var = c.env.as_ref()?.iter().find(|e| e.name == name)?;
        Some(
            var.value_from
                .as_ref()?
                .field_ref
                .as_ref()?
                .field_path
                .clone(),
        )
    }

    #[test]
    fn volumes_are_kept_unless_the_retention_policy_says_otherwise() {
        let mut c = cluster(3);
        let sts = build_statefulset(&c, "10.96.0.20", 3, 3);
        assert!(
            sts.spec
                .unwrap()
                .persistent_volume_claim_retention_policy
                .is_none()
        );
        c.spec.storage.persistent_volume_claim_retention_policy =
            Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_scaled: Some("Delete".into()),
                when_deleted: Some("Retain".into()),
            });
        let sts = build_statefulset(&c, "10.96.0.20", 3, 3);
        let policy = sts
            .spec
            .unwrap()
            .persistent_volume_claim_retention_policy
            .unwrap();
        assert_eq!(policy.when_scaled.as_deref(), Some("Delete"));
    }

    #[test]
    fn statefulset_is_wired_for_a_replicated_cluster() {
        let c = cluster(3);
        let sts = build_statefulset(&c, "10.96.0.20", 3, 3);
        let spec = sts.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(spec.service_name.as_deref(), Some("demo-headless"));
        assert_eq!(
            spec.update_strategy.as_ref().unwrap().type_.as_deref(),
            Some("OnDelete")
        );
        let broker = container(&sts);
        assert_eq!(
            broker.image.as_deref(),
            Some(format!("localhost/iggy-broker:{}", env!("CARGO_PKG_VERSION")).as_str())
        );
        assert_eq!(
            env_value(&broker, "IGGY_CLUSTER_PEERS").unwrap(),
            "demo-{id}.demo-headless.iggy.svc:9090"
        );
        assert_eq!(founders(&sts), Some(3));
        // Scaling changes the size, never the pod template.
        let grown = build_statefulset(&c, "10.96.0.20", 5, 3);
        assert_eq!(grown.spec.as_ref().unwrap().replicas, Some(5));
        assert_eq!(
            grown.spec.as_ref().unwrap().template,
            sts.spec.as_ref().unwrap().template
        );
        assert_eq!(
            env_value(&broker, "IGGY_CLUSTER_ADVERTISED_HOST").as_deref(),
            Some("10.96.0.20")
        );
        let secret = broker
            .env
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.name == "IGGY_CLUSTER_AUTH_SHARED_SECRET")
            .and_then(|e| e.value_from.as_ref()?.secret_key_ref.clone())
            .expect("the shared secret comes from a Secret");
        assert_eq!(
            (secret.name.as_str(), secret.key.as_str()),
            ("demo-cluster-secret", "shared-secret")
        );
        assert!(
            broker
                .ports
                .as_ref()
                .unwrap()
                .iter()
                .any(|p| p.name.as_deref() == Some("replica") && p.container_port == 9090)
        );
        assert_eq!(
            env_field_path(&broker, "IGGY_CLUSTER_NODE_ID").as_deref(),
            Some("metadata.labels['apps.kubernetes.io/pod-index']")
        );
        assert_eq!(
            env_field_path(&broker, "ZONE").as_deref(),
            Some("metadata.labels['topology.kubernetes.io/zone']")
        );
        assert_eq!(
            env_value(&broker, "IGGY_CLUSTER_ZONE").as_deref(),
            Some("$(ZONE)$(ZONE_ALPHA)")
        );
        assert_eq!(
            broker
                .liveness_probe
                .unwrap()
                .http_get
                .unwrap()
                .path
                .as_deref(),
            Some("/healthz")
        );
        assert_eq!(
            broker
                .readiness_probe
                .unwrap()
                .http_get
                .unwrap()
                .path
                .as_deref(),
            Some("/readyz")
        );
        let security = broker.security_context.unwrap();
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.run_as_non_root, Some(true));
        let claim = &spec.volume_claim_templates.as_ref().unwrap()[0];
        assert_eq!(
            claim
                .spec
                .as_ref()
                .unwrap()
                .resources
                .as_ref()
                .unwrap()
                .requests
                .as_ref()
                .unwrap()["storage"],
            Quantity("10Gi".into())
        );
        assert_eq!(sts.metadata.owner_references.unwrap()[0].name, "demo");
    }

    #[test]
    fn a_metrics_token_comes_from_its_secret() {
        let mut c = cluster(1);
        let broker = container(&build_statefulset(&c, "10.96.0.20", 3, 3));
        assert!(
            !broker
                .env
                .unwrap()
                .iter()
                .any(|e| e.name == "IGGY_HTTP_METRICS_TOKEN")
        );
        c.spec.metrics.token_secret = Some(crate::crd::cluster::SecretKeyRef {
            name: "scrape".into(),
            key: "token".into(),
        });
        let broker = container(&build_statefulset(&c, "10.96.0.20", 3, 3));
        let env = broker.env.unwrap();
        let token = env
            .iter()
            .find(|e| e.name == "IGGY_HTTP_METRICS_TOKEN")
            .unwrap();
        let secret = token
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!(
            (secret.name.as_str(), secret.key.as_str()),
            ("scrape", "token")
        );
    }

    #[test]
    fn overrides_replace_the_defaults_and_extra_config_becomes_env() {
        let mut c = cluster(1);
        c.spec.image = Some("example.com/iggy:9".into());
        c.spec
            .config
            .extra
            .insert("limits.max_connections".into(), "5000".into());
        c.spec.pod_template = Some(crate::crd::cluster::PodTemplateOverrides {
            node_selector: BTreeMap::from([("disk".into(), "ssd".into())]),
            affinity: Some(Affinity::default()),
            ..Default::default()
        });
        let sts = build_statefulset(&c, "10.96.0.20", 3, 3);
        let pod = sts.spec.as_ref().unwrap().template.spec.clone().unwrap();
        assert_eq!(pod.node_selector.unwrap()["disk"], "ssd");
        assert_eq!(pod.affinity, Some(Affinity::default()));
        let broker = container(&sts);
        assert_eq!(broker.image.as_deref(), Some("example.com/iggy:9"));
        assert_eq!(
            env_value(&broker, "IGGY_LIMITS_MAX_CONNECTIONS").as_deref(),
            Some("5000")
        );
    }

    #[test]
    fn a_config_change_changes_the_pod_template() {
        let a = cluster(1);
        let mut b = cluster(1);
        b.spec.config.segment_size = Some("64MiB".into());
        assert_ne!(config_hash(&a), config_hash(&b));
        assert_eq!(config_hash(&a), config_hash(&cluster(1)));
    }
}
