//! TLS objects and pod settings (`spec.tls`): which Secret the brokers
//! mount and which files in it each listener uses, the names a broker's
//! certificate must carry, and the CA bundle published for applications.
//!
//! The Secret is mounted as a whole directory (never with `subPath`), so
//! the kubelet swaps renewed files in place and the brokers, which re-read
//! them, pick them up without a restart.

use super::{child_meta, names};
use crate::crd::IggyCluster;
use crate::crd::cluster::{TlsMode, TlsSpec};
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, EnvVar, EnvVarSource, ObjectFieldSelector, Secret, SecretVolumeSource, Volume,
    VolumeMount,
};
use kube::ResourceExt;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use std::collections::BTreeMap;

/// Where the brokers find their TLS files.
pub const TLS_DIR: &str = "/etc/iggy/tls";
/// The CA bundle's key, in every Secret and ConfigMap that carries one.
pub const CA_BUNDLE_KEY: &str = "ca.crt";
/// Where the status's connection string expects an application to have
/// mounted the bundle.
pub const CLIENT_CA_PATH: &str = "/etc/iggy-ca/ca.crt";
/// The broker settings of inter-broker TLS, and of accepting plain TCP
/// peers beside it while a running cluster switches it on or off.
pub const REPLICA_TLS_ENABLED_ENV: &str = "IGGY_CLUSTER_TLS_ENABLED";
pub const REPLICA_TLS_PLAINTEXT_ENV: &str = "IGGY_CLUSTER_TLS_ACCEPT_PLAINTEXT";
const REPLICA_TLS_ENV_PREFIX: &str = "IGGY_CLUSTER_TLS_";
const POD_NAME_ENV: &str = "POD_NAME";
const TLS_VOLUME: &str = "tls";

/// The files of one broker's certificate in the mounted Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The Secret mounted at [`TLS_DIR`].
    pub secret: String,
    /// Keys of the certificate and key; `$(POD_NAME)` stands for the pod.
    pub cert_key: String,
    pub key_key: String,
}

/// The Secret the brokers mount and the keys they read, by mode: the
/// operator keeps one certificate per broker in one Secret (keys named
/// after the pods); cert-manager and the user's Secret hold one for all.
pub fn files(cluster: &IggyCluster, tls: &TlsSpec) -> TlsFiles {
    match tls.mode {
        TlsMode::Operator => TlsFiles {
            secret: names::broker_tls_secret(cluster),
            cert_key: "$(POD_NAME).crt".into(),
            key_key: "$(POD_NAME).key".into(),
        },
        TlsMode::CertManager => TlsFiles {
            secret: names::broker_tls_secret(cluster),
            cert_key: "tls.crt".into(),
            key_key: "tls.key".into(),
        },
        TlsMode::Secret => TlsFiles {
            secret: tls.secret_name.clone().unwrap_or_default(),
            cert_key: "tls.crt".into(),
            key_key: "tls.key".into(),
        },
    }
}

/// The pod's TLS environment: the pod's name first (the file names refer
/// to it), then each listener's settings.
pub fn env(cluster: &IggyCluster) -> Vec<EnvVar> {
    let Some(tls) = cluster.spec.tls() else {
        return Vec::new();
    };
    let files = files(cluster, tls);
    let cert = format!("{TLS_DIR}/{}", files.cert_key);
    let key = format!("{TLS_DIR}/{}", files.key_key);
    let value = |name: &str, value: &str| EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    };
    let mut env = vec![EnvVar {
        name: POD_NAME_ENV.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "metadata.name".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }];
    let l = &tls.listeners;
    for (on, section) in [
        (l.tcp, "TCP_TLS"),
        (l.websocket, "WEBSOCKET_TLS"),
        (l.http, "HTTP_TLS"),
        (l.inter_broker, "CLUSTER_TLS"),
    ] {
        if on {
            env.push(value(&format!("IGGY_{section}_ENABLED"), "true"));
            env.push(value(&format!("IGGY_{section}_CERT_FILE"), &cert));
            env.push(value(&format!("IGGY_{section}_KEY_FILE"), &key));
        }
    }
    if l.inter_broker {
        env.push(value(
            "IGGY_CLUSTER_TLS_CA_FILE",
            &format!("{TLS_DIR}/{CA_BUNDLE_KEY}"),
        ));
    }
    if l.quic {
        env.push(value("IGGY_QUIC_CERT_FILE", &cert));
        env.push(value("IGGY_QUIC_KEY_FILE", &key));
    }
    env
}

/// The volume and mount of the TLS Secret, when TLS is on.
pub fn volume(cluster: &IggyCluster) -> Option<(Volume, VolumeMount)> {
    let tls = cluster.spec.tls()?;
    let files = files(cluster, tls);
    Some((
        Volume {
            name: TLS_VOLUME.into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(files.secret),
                // Readable by the broker's group only (fsGroup).
                default_mode: Some(0o440),
                ..Default::default()
            }),
            ..Default::default()
        },
        VolumeMount {
            name: TLS_VOLUME.into(),
            mount_path: TLS_DIR.into(),
            read_only: Some(true),
            ..Default::default()
        },
    ))
}

/// Make `desired` run the brokers' replica port as `mode` says (see
/// `controller::replica_tls`). While switching, a broker keeps (or gets)
/// its certificate on the replica port and also accepts plain TCP: when
/// TLS is being turned off, the settings, the pod's name they refer to and
/// the certificate volume come from `previous`, which still has them.
pub fn set_replica_tls(
    desired: &mut StatefulSet,
    previous: Option<&StatefulSet>,
    mode: crate::controller::replica_tls::ReplicaTls,
) {
    if mode != crate::controller::replica_tls::ReplicaTls::Switching {
        return;
    }
    let Some(pod) = desired.spec.as_mut().and_then(|s| s.template.spec.as_mut()) else {
        return;
    };
    let previous_pod = previous
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.template.spec.as_ref());
    let previous_broker =
        previous_pod.and_then(|p| p.containers.iter().find(|c| c.name == "broker"));
    let Some(broker) = pod.containers.iter_mut().find(|c| c.name == "broker") else {
        return;
    };
    let env = broker.env.get_or_insert_with(Vec::new);
    let has = |env: &[EnvVar], name: &str| env.iter().any(|e| e.name == name);
    if !has(env, REPLICA_TLS_ENABLED_ENV) {
        let earlier = previous_broker
            .and_then(|c| c.env.clone())
            .unwrap_or_default();
        if !has(env, POD_NAME_ENV)
            && let Some(pod_name) = earlier.iter().find(|e| e.name == POD_NAME_ENV)
        {
            // First: the certificate's file names refer to it.
            env.insert(0, pod_name.clone());
        }
        env.extend(
            earlier
                .into_iter()
                .filter(|e| e.name.starts_with(REPLICA_TLS_ENV_PREFIX)),
        );
        keep_named(
            broker.volume_mounts.get_or_insert_with(Vec::new),
            previous_broker.and_then(|c| c.volume_mounts.as_ref()),
            |m| &m.name,
        );
        keep_named(
            pod.volumes.get_or_insert_with(Vec::new),
            previous_pod.and_then(|p| p.volumes.as_ref()),
            |v| &v.name,
        );
    }
    let env = broker.env.get_or_insert_with(Vec::new);
    env.retain(|e| e.name != REPLICA_TLS_PLAINTEXT_ENV);
    env.push(EnvVar {
        name: REPLICA_TLS_PLAINTEXT_ENV.into(),
        value: Some("true".into()),
        ..Default::default()
    });
}

/// Add `earlier`'s item named [`TLS_VOLUME`] to `items` unless it has one.
fn keep_named<T: Clone>(items: &mut Vec<T>, earlier: Option<&Vec<T>>, name: fn(&T) -> &String) {
    if !items.iter().any(|i| name(i) == TLS_VOLUME)
        && let Some(item) = earlier.and_then(|e| e.iter().find(|i| name(i) == TLS_VOLUME))
    {
        items.push(item.clone());
    }
}

/// Whether the HTTP listener (and so the probes) speaks HTTPS.
pub fn https(cluster: &IggyCluster) -> bool {
    cluster.spec.tls().is_some_and(|t| t.listeners.http)
}

/// The names broker `ordinal`'s certificate is valid for: its pod's DNS
/// names, the headless and client Services in all four forms, and the
/// spec's extra names.
pub fn broker_names(cluster: &IggyCluster, ordinal: i32) -> Vec<String> {
    let namespace = cluster.namespace().unwrap_or_default();
    let headless = names::headless_service(cluster);
    let pod = format!("{}-{ordinal}", names::statefulset(cluster));
    let forms = |name: &str| {
        vec![
            name.to_string(),
            format!("{name}.{namespace}"),
            format!("{name}.{namespace}.svc"),
            format!("{name}.{namespace}.svc.cluster.local"),
        ]
    };
    let mut all = forms(&format!("{pod}.{headless}"));
    all.extend(forms(&headless));
    all.extend(forms(&names::client_service(cluster)));
    if let Some(tls) = cluster.spec.tls() {
        all.extend(tls.extra_sans.iter().cloned());
    }
    all
}

/// The name applications verify the brokers by (`tls_domain`): the client
/// Service's, which every broker's certificate carries.
pub fn client_domain(cluster: &IggyCluster) -> String {
    format!(
        "{}.{}.svc",
        names::client_service(cluster),
        cluster.namespace().unwrap_or_default()
    )
}

/// The TLS part of an SDK connection string through the client Service.
pub fn connection_options(cluster: &IggyCluster) -> String {
    format!(
        "tls=true&tls_domain={}&tls_ca_file={CLIENT_CA_PATH}",
        client_domain(cluster)
    )
}

/// The CA bundle for applications, as a ConfigMap (readable by anyone
/// allowed to read ConfigMaps) under `ca.crt`.
pub fn build_bundle_config_map(cluster: &IggyCluster, bundle: &str) -> ConfigMap {
    ConfigMap {
        metadata: child_meta(cluster, names::ca_bundle(cluster)),
        data: Some(BTreeMap::from([(
            CA_BUNDLE_KEY.to_string(),
            bundle.to_string(),
        )])),
        ..Default::default()
    }
}

/// The same bundle as a Secret of the same name, for tools that read CAs
/// from Secrets only.
pub fn build_bundle_secret(cluster: &IggyCluster, bundle: &str) -> Secret {
    Secret {
        metadata: child_meta(cluster, names::ca_bundle(cluster)),
        data: Some(BTreeMap::from([(
            CA_BUNDLE_KEY.to_string(),
            ByteString(bundle.as_bytes().to_vec()),
        )])),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

pub const CERT_MANAGER_GROUP_VERSION: &str = "cert-manager.io/v1";

pub fn certificate_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cert-manager.io", "v1", "Certificate"),
        "certificates",
    )
}

/// The cert-manager `Certificate` of the brokers (`mode: CertManager`):
/// one for all `brokers`, naming every pod and both Services, written to
/// the Secret the brokers mount (with the issuer's CA as `ca.crt`), good
/// for serving and for authenticating to peers.
pub fn build_certificate(cluster: &IggyCluster, tls: &TlsSpec, brokers: i32) -> DynamicObject {
    let mut dns_names: Vec<String> = Vec::new();
    for ordinal in 0..brokers.max(1) {
        for name in broker_names(cluster, ordinal) {
            if !dns_names.contains(&name) {
                dns_names.push(name);
            }
        }
    }
    let (addresses, dns_names): (Vec<String>, Vec<String>) = dns_names
        .into_iter()
        .partition(|n| n.parse::<std::net::IpAddr>().is_ok());
    let issuer = tls
        .issuer_ref
        .clone()
        .unwrap_or_else(|| crate::crd::cluster::IssuerRef {
            name: String::new(),
            kind: "Issuer".into(),
            group: "cert-manager.io".into(),
        });
    let mut certificate =
        DynamicObject::new(&names::broker_certificate(cluster), &certificate_resource());
    certificate.metadata = child_meta(cluster, names::broker_certificate(cluster));
    certificate.data = serde_json::json!({
        "spec": {
            "secretName": names::broker_tls_secret(cluster),
            "commonName": client_domain(cluster),
            "dnsNames": dns_names,
            "ipAddresses": addresses,
            "duration": tls.validity,
            "renewBefore": tls.renew_before,
            "usages": ["digital signature", "key encipherment", "server auth", "client auth"],
            "privateKey": { "algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always" },
            "issuerRef": { "name": issuer.name, "kind": issuer.kind, "group": issuer.group },
        }
    });
    certificate
}

/// A cert-manager Certificate's status conditions with `Issuing` set to
/// True, as `cmctl renew` sets it: cert-manager then issues a new
/// certificate whatever the old one's expiry.
pub fn with_issuing_condition(
    mut conditions: Vec<serde_json::Value>,
    now_rfc3339: &str,
    generation: Option<i64>,
) -> Vec<serde_json::Value> {
    conditions.retain(|c| c["type"] != "Issuing");
    conditions.push(serde_json::json!({
        "type": "Issuing",
        "status": "True",
        "reason": "ManuallyTriggered",
        "message": "Certificate re-issuance manually triggered",
        "lastTransitionTime": now_rfc3339,
        "observedGeneration": generation,
    }));
    conditions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::fixtures::cluster;

    fn with_tls(tls: serde_json::Value) -> IggyCluster {
        let mut c = cluster(3);
        c.spec.tls = Some(serde_json::from_value(tls).unwrap());
        c
    }

    #[test]
    fn switching_keeps_the_replica_certificate_and_accepts_plain_peers() {
        use crate::controller::replica_tls::ReplicaTls;
        use crate::resources::statefulset::build_statefulset;
        let secure = with_tls(serde_json::json!({"enabled": true}));
        let running = build_statefulset(&secure, "10.96.0.20", 3, 3);
        assert_eq!(ReplicaTls::of(&running), ReplicaTls::Required);

        // Turning TLS off: the settings, the pod name and the volume come
        // from the running StatefulSet.
        let plain = cluster(3);
        let mut desired = build_statefulset(&plain, "10.96.0.20", 3, 3);
        assert_eq!(ReplicaTls::of(&desired), ReplicaTls::Off);
        set_replica_tls(&mut desired, Some(&running), ReplicaTls::Switching);
        assert_eq!(ReplicaTls::of(&desired), ReplicaTls::Switching);
        let pod = desired
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap();
        let broker = &pod.containers[0];
        let env = broker.env.as_ref().unwrap();
        let at = |name: &str| env.iter().position(|e| e.name == name).unwrap();
        assert!(at(POD_NAME_ENV) < at("IGGY_CLUSTER_TLS_CERT_FILE"));
        assert!(env.iter().any(|e| e.name == "IGGY_CLUSTER_TLS_CA_FILE"));
        assert!(!env.iter().any(|e| e.name == "IGGY_TCP_TLS_ENABLED"));
        assert!(
            pod.volumes
                .as_ref()
                .unwrap()
                .iter()
                .any(|v| v.name == TLS_VOLUME)
        );
        assert!(
            broker
                .volume_mounts
                .as_ref()
                .unwrap()
                .iter()
                .any(|m| m.name == TLS_VOLUME)
        );

        // Turning it on: the new settings, plus plain peers accepted, once.
        let mut desired = build_statefulset(&secure, "10.96.0.20", 3, 3);
        set_replica_tls(&mut desired, None, ReplicaTls::Switching);
        set_replica_tls(&mut desired, None, ReplicaTls::Switching);
        assert_eq!(ReplicaTls::of(&desired), ReplicaTls::Switching);
        let env = desired.spec.unwrap().template.spec.unwrap().containers[0]
            .env
            .clone()
            .unwrap();
        assert_eq!(
            env.iter()
                .filter(|e| e.name == REPLICA_TLS_PLAINTEXT_ENV)
                .count(),
            1
        );

        // Otherwise the StatefulSet is left as built.
        let mut desired = build_statefulset(&plain, "10.96.0.20", 3, 3);
        set_replica_tls(&mut desired, Some(&running), ReplicaTls::Off);
        assert_eq!(ReplicaTls::of(&desired), ReplicaTls::Off);
    }

    #[test]
    fn a_forced_renewal_sets_issuing_and_keeps_the_other_conditions() {
        let ready = serde_json::json!({"type": "Ready", "status": "True"});
        let stale = serde_json::json!({"type": "Issuing", "status": "False"});
        let conditions =
            with_issuing_condition(vec![ready.clone(), stale], "2026-12-03T00:00:00Z", Some(4));
        assert_eq!(conditions.len(), 2);
        assert_eq!(conditions[0], ready);
        assert_eq!(conditions[1]["type"], "Issuing");
        assert_eq!(conditions[1]["status"], "True");
        assert_eq!(conditions[1]["reason"], "ManuallyTriggered");
        assert_eq!(conditions[1]["observedGeneration"], 4);
    }

    #[test]
    fn a_broker_certificate_names_its_pod_and_both_services_in_every_form() {
        let c = with_tls(serde_json::json!({ "extraSans": ["iggy.example.com"] }));
        let names = broker_names(&c, 1);
        for expected in [
            "demo-1.demo-headless",
            "demo-1.demo-headless.iggy.svc.cluster.local",
            "demo-headless",
            "demo-headless.iggy",
            "demo-client.iggy.svc",
            "demo-client.iggy.svc.cluster.local",
            "iggy.example.com",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
        assert_eq!(names.len(), 13);
    }

    #[test]
    fn every_listener_gets_the_pods_own_files_and_peers_the_bundle() {
        let c = with_tls(serde_json::json!({}));
        let vars = env(&c);
        let get = |name: &str| {
            vars.iter()
                .find(|e| e.name == name)
                .and_then(|e| e.value.clone())
        };
        assert_eq!(vars[0].name, "POD_NAME", "defined before it is referred to");
        for section in ["TCP_TLS", "WEBSOCKET_TLS", "HTTP_TLS", "CLUSTER_TLS"] {
            assert_eq!(
                get(&format!("IGGY_{section}_ENABLED")).as_deref(),
                Some("true")
            );
            assert_eq!(
                get(&format!("IGGY_{section}_CERT_FILE")).as_deref(),
                Some("/etc/iggy/tls/$(POD_NAME).crt")
            );
        }
        assert_eq!(
            get("IGGY_CLUSTER_TLS_CA_FILE").as_deref(),
            Some("/etc/iggy/tls/ca.crt")
        );
        assert_eq!(
            get("IGGY_QUIC_KEY_FILE").as_deref(),
            Some("/etc/iggy/tls/$(POD_NAME).key")
        );
        assert!(https(&c));

        // The user's Secret: one certificate for all, HTTP left plain.
        let c = with_tls(serde_json::json!({
            "mode": "Secret", "secretName": "mine", "listeners": { "http": false }
        }));
        let vars = env(&c);
        assert!(!vars.iter().any(|e| e.name == "IGGY_HTTP_TLS_ENABLED"));
        assert!(
            vars.iter()
                .any(|e| e.value.as_deref() == Some("/etc/iggy/tls/tls.crt"))
        );
        assert!(!https(&c));
        let (mounted, mount) = volume(&c).unwrap();
        assert_eq!(mounted.secret.unwrap().secret_name.as_deref(), Some("mine"));
        assert_eq!(mount.sub_path, None, "a subPath mount never sees renewals");

        let off = with_tls(serde_json::json!({ "enabled": false }));
        assert!(!https(&off));
        assert!(super::env(&off).is_empty() && volume(&off).is_none());
    }
}

#[cfg(test)]
mod certificate_tests {
    use super::*;
    use crate::resources::fixtures::cluster;

    #[test]
    fn the_cert_manager_certificate_names_every_broker_and_the_issuer() {
        let mut c = cluster(3);
        c.spec.tls = Some(
            serde_json::from_value(serde_json::json!({
                "mode": "CertManager",
                "issuerRef": { "name": "corp-ca", "kind": "ClusterIssuer" },
                "extraSans": ["10.1.2.3"]
            }))
            .unwrap(),
        );
        let tls = c.spec.tls.clone().unwrap();
        let certificate = build_certificate(&c, &tls, 3);
        let spec = &certificate.data["spec"];
        assert_eq!(spec["secretName"], "demo-broker-tls");
        assert_eq!(spec["issuerRef"]["kind"], "ClusterIssuer");
        assert_eq!(spec["issuerRef"]["name"], "corp-ca");
        let dns: Vec<&str> = spec["dnsNames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert!(dns.contains(&"demo-2.demo-headless.iggy.svc.cluster.local"));
        assert!(dns.contains(&"demo-client.iggy.svc"));
        assert_eq!(spec["ipAddresses"], serde_json::json!(["10.1.2.3"]));
        assert!(
            spec["usages"]
                .as_array()
                .unwrap()
                .contains(&"client auth".into())
        );
        assert_eq!(certificate.metadata.owner_references.unwrap().len(), 1);
    }
}
