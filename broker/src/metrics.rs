//! The broker's Prometheus metrics (`iggy_broker_*`), served on the HTTP
//! listener at `/metrics`.
//!
//! Counters are updated once per request (never per message); gauges that
//! describe storage (partitions, segments, bytes on disk, free space) and
//! certificate expiry are computed when scraped. Labels are bounded: stream and topic names, command names,
//! error codes.

use crate::tls::Certificates;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub messages_in: IntCounterVec,
    pub bytes_in: IntCounterVec,
    pub messages_out: IntCounterVec,
    pub bytes_out: IntCounterVec,
    pub request_duration: HistogramVec,
    pub errors: IntCounterVec,
    /// Open connections by transport (`tcp`, `quic`, `websocket`).
    pub connections: IntGaugeVec,
    pub fsync_duration: Histogram,
    pub partitions: IntGauge,
    /// Partitions this broker leads.
    pub partition_leaders: IntGauge,
    /// Partitions led here with fewer in-sync replicas than replicas (or
    /// fewer replicas than their topic's replication factor).
    pub under_replicated: IntGauge,
    /// Messages the furthest-behind follower of any partition led here
    /// lacks.
    pub max_replica_lag: IntGauge,
    pub segments: IntGauge,
    pub disk_bytes: IntGauge,
    /// Space of the filesystem holding the data directory.
    pub filesystem_avail: IntGauge,
    pub filesystem_size: IntGauge,
    /// Space kept free: sends are refused below it.
    pub storage_reserved: IntGauge,
    /// 0 while the data directory refuses writes (read-only, I/O errors).
    pub storage_writable: IntGauge,
    /// 1 while the data directory runs low (`DataDirectory::is_low`).
    pub storage_low: IntGauge,
    /// Passes of the retention cleaner, and the segments it deleted.
    pub retention_runs: IntCounter,
    pub retention_deleted_segments: IntCounter,
    /// Expiry (Unix seconds) of the certificate each TLS listener serves.
    certificate_not_after: IntGaugeVec,
    /// The metadata group's leader as this broker sees it (-1: none).
    pub metadata_leader: IntGauge,
    pub metadata_term: IntGauge,
    /// Index of the last metadata log entry applied here.
    pub metadata_applied: IntGauge,
    /// 1 for a peer this broker heard from lately, by node id.
    pub peer_up: IntGaugeVec,
    /// Client requests sent on to the broker leading their partition.
    pub forwarded: IntCounterVec,
    /// Partition leaders elected by this broker, by reason: as metadata
    /// leader (`leader_down`, `reassignment`), or handing its own
    /// partitions on (`low_disk_space`).
    pub partition_elections: IntCounterVec,
    certificates: std::sync::Mutex<Vec<(&'static str, std::sync::Arc<Certificates>)>>,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

fn register<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    registry
        .register(Box::new(metric.clone()))
        .expect("unique metric");
    metric
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    register(registry, metric)
}

fn plain_counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    register(registry, IntCounter::new(name, help).expect("valid metric"))
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    register(registry, IntGauge::new(name, help).expect("valid metric"))
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let topic = &["stream", "topic"];
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "iggy_broker_request_duration_seconds",
                "Time from reading a request to having its reply, by command",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["command"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(request_duration.clone()))
            .expect("unique metric");
        let fsync_duration = Histogram::with_opts(
            HistogramOpts::new(
                "iggy_broker_fsync_duration_seconds",
                "fsync of appended batches",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        registry
            .register(Box::new(fsync_duration.clone()))
            .expect("unique metric");
        Self {
            messages_in: counter(
                &registry,
                "iggy_broker_messages_in_total",
                "Messages appended",
                topic,
            ),
            bytes_in: counter(
                &registry,
                "iggy_broker_bytes_in_total",
                "Bytes of batches appended",
                topic,
            ),
            messages_out: counter(
                &registry,
                "iggy_broker_messages_out_total",
                "Messages polled",
                topic,
            ),
            bytes_out: counter(
                &registry,
                "iggy_broker_bytes_out_total",
                "Bytes of batches polled",
                topic,
            ),
            errors: counter(
                &registry,
                "iggy_broker_errors_total",
                "Failed requests by error code",
                &["code"],
            ),
            connections: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "iggy_broker_connections",
                        "Open client connections by transport",
                    ),
                    &["transport"],
                )
                .expect("valid metric");
                registry
                    .register(Box::new(g.clone()))
                    .expect("unique metric");
                g
            },
            partitions: gauge(
                &registry,
                "iggy_broker_partitions",
                "Partitions on this broker",
            ),
            partition_leaders: gauge(
                &registry,
                "iggy_broker_partition_leaders",
                "Partitions this broker leads",
            ),
            under_replicated: gauge(
                &registry,
                "iggy_broker_under_replicated_partitions",
                "Partitions led here with fewer in-sync replicas than their replication factor",
            ),
            max_replica_lag: gauge(
                &registry,
                "iggy_broker_max_replica_lag_messages",
                "Messages the furthest-behind follower of a partition led here lacks",
            ),
            segments: gauge(&registry, "iggy_broker_segments", "Segments on this broker"),
            filesystem_avail: gauge(
                &registry,
                "iggy_broker_filesystem_avail_bytes",
                "Bytes available to the broker on the data directory's filesystem",
            ),
            filesystem_size: gauge(
                &registry,
                "iggy_broker_filesystem_size_bytes",
                "Size of the data directory's filesystem",
            ),
            storage_reserved: gauge(
                &registry,
                "iggy_broker_storage_reserved_bytes",
                "Space kept free on the data directory's filesystem; sends are refused when less is available",
            ),
            storage_writable: gauge(
                &registry,
                "iggy_broker_storage_writable",
                "1 while the data directory takes writes, 0 while it is read-only or failing",
            ),
            storage_low: gauge(
                &registry,
                "iggy_broker_storage_low",
                "1 while the data directory runs low (less than twice the reserve available, or failing): in a cluster the broker hands the leadership of its partitions to replicas with room",
            ),
            retention_runs: plain_counter(
                &registry,
                "iggy_broker_retention_runs_total",
                "Passes of the retention cleaner",
            ),
            retention_deleted_segments: plain_counter(
                &registry,
                "iggy_broker_retention_deleted_segments_total",
                "Segments deleted by retention (expiry or size cap)",
            ),
            certificate_not_after: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "iggy_broker_tls_certificate_not_after_seconds",
                        "Expiry (Unix time) of the certificate served, by listener",
                    ),
                    &["listener"],
                )
                .expect("valid metric");
                registry
                    .register(Box::new(g.clone()))
                    .expect("unique metric");
                g
            },
            certificates: Default::default(),
            metadata_leader: gauge(
                &registry,
                "iggy_broker_metadata_leader",
                "Node id of the metadata group's leader as this broker sees it (-1: none)",
            ),
            metadata_term: gauge(
                &registry,
                "iggy_broker_metadata_term",
                "Current term of the metadata group",
            ),
            metadata_applied: gauge(
                &registry,
                "iggy_broker_metadata_applied_index",
                "Index of the last metadata log entry applied on this broker",
            ),
            peer_up: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "iggy_broker_cluster_peer_up",
                        "1 when this broker heard from the peer lately, by node id",
                    ),
                    &["node"],
                )
                .expect("valid metric");
                registry
                    .register(Box::new(g.clone()))
                    .expect("unique metric");
                g
            },
            forwarded: counter(
                &registry,
                "iggy_broker_forwarded_requests_total",
                "Client requests served by another broker (the partition's leader), by command",
                &["command"],
            ),
            partition_elections: counter(
                &registry,
                "iggy_broker_partition_elections_total",
                "Partition leaders elected by this broker, by reason: leader_down and reassignment while it led the metadata group, low_disk_space for partitions it handed on",
                &["reason"],
            ),
            disk_bytes: gauge(
                &registry,
                "iggy_broker_disk_bytes",
                "Bytes of partition logs on disk",
            ),
            request_duration,
            fsync_duration,
            registry,
        }
    }
}

impl Metrics {
    /// Report the expiry of the certificate `listener` serves (re-read at
    /// every scrape, so a reloaded certificate shows up).
    pub fn watch_certificate(
        &self,
        listener: &'static str,
        certificates: std::sync::Arc<Certificates>,
    ) {
        self.certificates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((listener, certificates));
    }

    /// Every certificate a listener serves, by listener.
    pub fn certificates(&self) -> Vec<(&'static str, std::sync::Arc<Certificates>)> {
        self.certificates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Update the certificate gauges.
    pub fn refresh_certificates(&self) {
        for (listener, certificates) in self
            .certificates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            if let Some(not_after) = certificates.not_after() {
                self.certificate_not_after
                    .with_label_values(&[*listener])
                    .set(not_after);
            }
        }
    }

    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}
