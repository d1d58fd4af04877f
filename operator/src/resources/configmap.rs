//! The broker configuration file (`broker.toml`), mounted into every pod.

use super::{child_meta, names};
use crate::crd::IggyCluster;
use crate::crd::cluster::FsyncMode;
use k8s_openapi::api::core::v1::ConfigMap;
use std::collections::BTreeMap;
use std::fmt::Write;

pub const CONFIG_FILE: &str = "broker.toml";
pub const CONFIG_DIR: &str = "/etc/iggy";
pub const DATA_DIR: &str = "/data";

/// The broker's TOML configuration for this cluster.
pub fn broker_toml(cluster: &IggyCluster) -> String {
    let spec = &cluster.spec;
    let mut toml = String::new();
    let _ = writeln!(
        toml,
        "[system]\npath = \"{DATA_DIR}\"\nlog_format = \"json\"\n"
    );
    let _ = writeln!(
        toml,
        "[tcp]\nenabled = true\naddress = \"0.0.0.0:{}\"\n",
        spec.listeners.tcp_port
    );
    // QUIC's certificate: the cluster's with spec.tls (set in the pod's
    // environment), else the broker's in-memory one.
    let _ = writeln!(
        toml,
        "[quic]\nenabled = true\naddress = \"0.0.0.0:{}\"\n",
        spec.listeners.quic_port
    );
    let _ = writeln!(
        toml,
        "[http]\nenabled = true\naddress = \"0.0.0.0:{}\"\n",
        spec.listeners.http_port
    );
    // One cluster, even of one broker: a data directory made standalone
    // could not join a cluster later. Node id, peers and the secret come
    // from the pod's environment (they differ per pod or are secret).
    let l = &spec.listeners;
    let _ = writeln!(
        toml,
        "[cluster]\nenabled = true\nname = {}\nreplica_address = \"0.0.0.0:{}\"\n",
        toml_escape(&cluster_name(cluster)),
        l.replica_port
    );
    let replication = &spec.replication;
    let _ = writeln!(
        toml,
        "default_replication_factor = {}\nmin_in_sync_replicas = {}\n",
        replication.default_factor,
        // 0: a majority of each topic's factor.
        replication.min_in_sync.unwrap_or(0)
    );
    let _ = writeln!(
        toml,
        "[cluster.advertised]\ntcp = {}\nquic = {}\nhttp = {}\n",
        l.tcp_port, l.quic_port, l.http_port
    );
    let _ = writeln!(toml, "[topic]");
    if let Some(size) = &spec.config.segment_size {
        let _ = writeln!(toml, "segment_size = {}", toml_escape(size));
    }
    if let Some(mode) = spec.config.fsync {
        let mode = match mode {
            FsyncMode::Always => "always",
            FsyncMode::Interval => "interval",
            FsyncMode::Never => "never",
        };
        let _ = writeln!(toml, "fsync = \"{mode}\"");
    }
    if let Some(interval) = &spec.config.fsync_interval {
        let _ = writeln!(toml, "fsync_interval = {}", toml_escape(interval));
    }
    toml
}

/// The name brokers of this cluster share (a peer with another is refused).
pub fn cluster_name(cluster: &IggyCluster) -> String {
    use kube::ResourceExt;
    format!(
        "{}.{}",
        cluster.name_any(),
        cluster.namespace().unwrap_or_default()
    )
}

fn toml_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn build_config_map(cluster: &IggyCluster) -> ConfigMap {
    ConfigMap {
        metadata: child_meta(cluster, names::config_map(cluster)),
        data: Some(BTreeMap::from([(
            CONFIG_FILE.to_string(),
            broker_toml(cluster),
        )])),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::fixtures::cluster;

    #[test]
    fn config_carries_listeners_and_storage_settings() {
        let mut c = cluster(3);
        c.spec.config.segment_size = Some("512MiB".into());
        c.spec.config.fsync = Some(FsyncMode::Interval);
        c.spec.config.fsync_interval = Some("2s".into());
        let toml = broker_toml(&c);
        assert!(toml.contains("address = \"0.0.0.0:8090\""));
        assert!(toml.contains("[quic]\nenabled = true\naddress = \"0.0.0.0:8080\""));
        assert!(toml.contains("path = \"/data\""));
        assert!(toml.contains("segment_size = \"512MiB\""));
        assert!(toml.contains("fsync = \"interval\""));
        assert!(toml.contains("fsync_interval = \"2s\""));
        let parsed: toml_check::Table = toml_check::parse(&toml);
        assert!(parsed.contains("topic"));
    }

    #[test]
    fn replication_defaults_reach_the_brokers_cluster_section() {
        let mut c = cluster(3);
        let toml = broker_toml(&c);
        // Unset minimum: the broker's own default, a majority.
        assert!(toml.contains("default_replication_factor = 1\nmin_in_sync_replicas = 0"));
        c.spec.replication = crate::crd::cluster::ReplicationSpec {
            default_factor: 3,
            min_in_sync: Some(2),
        };
        let toml = broker_toml(&c);
        let cluster_section = toml.split("[cluster]").nth(1).unwrap();
        let cluster_section = cluster_section.split("\n[").next().unwrap();
        assert!(
            cluster_section.contains("default_replication_factor = 3"),
            "{toml}"
        );
        assert!(
            cluster_section.contains("min_in_sync_replicas = 2"),
            "{toml}"
        );
    }

    #[test]
    fn values_are_escaped() {
        assert_eq!(toml_escape("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }

    /// Minimal TOML sanity check without a TOML dependency: every line is a
    /// section header, a `key = value` pair or blank.
    mod toml_check {
        pub type Table = std::collections::BTreeSet<String>;
        pub fn parse(text: &str) -> Table {
            let mut sections = Table::new();
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                    sections.insert(name.to_string());
                } else {
                    assert!(line.contains(" = "), "not a key/value line: {line}");
                }
            }
            sections
        }
    }
}
