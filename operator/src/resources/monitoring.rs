//! How Prometheus finds the brokers: a Prometheus Operator `PodMonitor`
//! when its CRDs are installed, `prometheus.io/*` annotations otherwise.
//!
//! A PodMonitor rather than a ServiceMonitor: the headless and the client
//! Service select the same pods, so a ServiceMonitor matching on the
//! cluster's labels would scrape every broker twice.

use super::{child_meta, labels, names};
use crate::crd::IggyCluster;
use crate::crd::cluster::MonitorMode;
use kube::ResourceExt;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::json;
use std::collections::BTreeMap;

pub const MONITORING_GROUP_VERSION: &str = "monitoring.coreos.com/v1";
/// The `job` label every scrape of a broker gets, whichever way it is found;
/// the dashboard and the alerts select on it.
pub const BROKER_JOB: &str = "iggy-broker";
pub const METRICS_PATH: &str = "/metrics";

/// What the operator does for a cluster once it knows whether the
/// PodMonitor CRD is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scrape {
    PodMonitor,
    Annotations,
    Nothing,
}

/// Resolve the spec's mode; `None` when `PodMonitor` is asked for but the
/// CRD is missing.
pub fn resolve(mode: MonitorMode, pod_monitor_crd: bool) -> Option<Scrape> {
    match (mode, pod_monitor_crd) {
        (MonitorMode::Auto, true) | (MonitorMode::PodMonitor, true) => Some(Scrape::PodMonitor),
        (MonitorMode::Auto, false) | (MonitorMode::Annotations, _) => Some(Scrape::Annotations),
        (MonitorMode::None, _) => Some(Scrape::Nothing),
        (MonitorMode::PodMonitor, false) => None,
    }
}

pub fn pod_monitor_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "PodMonitor"),
        "podmonitors",
    )
}

pub fn build_pod_monitor(cluster: &IggyCluster) -> DynamicObject {
    let metrics = &cluster.spec.metrics;
    let mut meta = child_meta(cluster, names::pod_monitor(cluster));
    let mut monitor_labels = metrics.labels.clone();
    monitor_labels.extend(labels::labels(cluster));
    meta.labels = Some(monitor_labels);

    let mut endpoint = json!({
        "port": "http",
        "path": METRICS_PATH,
        "interval": metrics.interval,
        "relabelings": [
            {"action": "replace", "targetLabel": "job", "replacement": BROKER_JOB},
            {
                "action": "replace",
                "sourceLabels": [format!("__meta_kubernetes_pod_label_{}", prometheus_label(labels::INSTANCE))],
                "targetLabel": "iggy_cluster",
            },
        ],
    });
    if let Some(token) = &metrics.token_secret {
        endpoint["authorization"] = json!({
            "type": "Bearer",
            "credentials": {"name": token.name, "key": token.key},
        });
    }
    let mut monitor = DynamicObject::new(&names::pod_monitor(cluster), &pod_monitor_resource())
        .within(&cluster.namespace().unwrap_or_default());
    monitor.metadata = meta;
    monitor.data = json!({
        "spec": {
            "selector": {"matchLabels": labels::selector(cluster)},
            "podMetricsEndpoints": [endpoint],
        }
    });
    monitor
}

/// The annotations the community Prometheus chart's
/// `kubernetes-service-endpoints` job understands, for the headless Service
/// (which lists every broker pod).
pub fn scrape_annotations(cluster: &IggyCluster) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("prometheus.io/scrape".into(), "true".into()),
        (
            "prometheus.io/port".into(),
            cluster.spec.listeners.http_port.to_string(),
        ),
        ("prometheus.io/path".into(), METRICS_PATH.into()),
    ])
}

/// `app.kubernetes.io/instance` → `app_kubernetes_io_instance`, as
/// Prometheus' Kubernetes discovery names label meta labels.
fn prometheus_label(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::cluster::SecretKeyRef;
    use crate::resources::fixtures::cluster;

    #[test]
    fn auto_prefers_a_pod_monitor_and_falls_back_to_annotations() {
        assert_eq!(resolve(MonitorMode::Auto, true), Some(Scrape::PodMonitor));
        assert_eq!(resolve(MonitorMode::Auto, false), Some(Scrape::Annotations));
        assert_eq!(
            resolve(MonitorMode::Annotations, true),
            Some(Scrape::Annotations)
        );
        assert_eq!(resolve(MonitorMode::None, true), Some(Scrape::Nothing));
        assert_eq!(resolve(MonitorMode::PodMonitor, false), None);
    }

    #[test]
    fn the_pod_monitor_selects_the_brokers_and_presents_the_token() {
        let mut c = cluster(3);
        c.spec
            .metrics
            .labels
            .insert("release".into(), "prom".into());
        c.spec.metrics.token_secret = Some(SecretKeyRef {
            name: "metrics".into(),
            key: "token".into(),
        });
        let m = build_pod_monitor(&c);
        assert_eq!(m.metadata.name.as_deref(), Some("demo-brokers"));
        assert_eq!(m.metadata.labels.as_ref().unwrap()["release"], "prom");
        assert!(m.metadata.owner_references.is_some());
        let spec = &m.data["spec"];
        assert_eq!(
            spec["selector"]["matchLabels"]["app.kubernetes.io/instance"],
            "demo"
        );
        let endpoint = &spec["podMetricsEndpoints"][0];
        assert_eq!(endpoint["port"], "http");
        assert_eq!(endpoint["interval"], "30s");
        assert_eq!(endpoint["authorization"]["credentials"]["name"], "metrics");
        assert_eq!(
            endpoint["relabelings"][1]["sourceLabels"][0],
            "__meta_kubernetes_pod_label_app_kubernetes_io_instance"
        );
    }

    #[test]
    fn annotations_name_the_http_port() {
        let a = scrape_annotations(&cluster(1));
        assert_eq!(a["prometheus.io/port"], "3000");
        assert_eq!(a["prometheus.io/path"], "/metrics");
    }
}
