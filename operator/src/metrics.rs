//! The operator's Prometheus metrics (`iggy_operator_*`).

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::time::Instant;

pub struct Metrics {
    registry: Registry,
    /// Reconcile runs by kind and result (`ok` / `error`).
    pub reconciliations: IntCounterVec,
    /// Failed reconciles by kind and reason (`Error::metric_label`).
    pub failures: IntCounterVec,
    /// Reconcile duration by kind.
    pub duration: HistogramVec,
    /// 1 while this replica holds the lease and reconciles.
    leader: IntGauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let reconciliations = IntCounterVec::new(
            Opts::new("iggy_operator_reconciliations_total", "Reconcile runs"),
            &["kind", "result"],
        )
        .expect("valid metric");
        let failures = IntCounterVec::new(
            Opts::new(
                "iggy_operator_reconcile_failures_total",
                "Failed reconciles by reason",
            ),
            &["kind", "reason"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "iggy_operator_reconcile_duration_seconds",
                "Reconcile duration",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["kind"],
        )
        .expect("valid metric");
        let leader = IntGauge::new(
            "iggy_operator_leader",
            "1 while this replica holds the leader Lease and reconciles",
        )
        .expect("valid metric");
        // Always present, so a scrape (and `helm test`) sees the operator's
        // metrics before its first reconcile.
        let build_info = IntGaugeVec::new(
            Opts::new("iggy_operator_build_info", "The operator's version"),
            &["version"],
        )
        .expect("valid metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for collector in [
            Box::new(reconciliations.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(failures.clone()),
            Box::new(duration.clone()),
            Box::new(leader.clone()),
            Box::new(build_info),
        ] {
            registry.register(collector).expect("unique metric names");
        }
        Self {
            registry,
            reconciliations,
            failures,
            duration,
            leader,
        }
    }
}

impl Metrics {
    /// Mark this replica as the reconciling leader until the guard drops
    /// (including when its task is aborted on lost leadership).
    pub fn leading(&self) -> LeadingGuard {
        self.leader.set(1);
        LeadingGuard(self.leader.clone())
    }

    /// Start timing a reconcile of `kind`; the run is recorded when the
    /// returned measurer is dropped.
    pub fn measure(&self, kind: &'static str) -> ReconcileMeasurer<'_> {
        ReconcileMeasurer {
            metrics: self,
            kind,
            start: Instant::now(),
            failed: None,
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

pub struct ReconcileMeasurer<'a> {
    metrics: &'a Metrics,
    kind: &'static str,
    start: Instant,
    failed: Option<&'static str>,
}

impl ReconcileMeasurer<'_> {
    pub fn fail(&mut self, reason: &'static str) {
        self.failed = Some(reason);
    }
}

impl Drop for ReconcileMeasurer<'_> {
    fn drop(&mut self) {
        let m = self.metrics;
        m.duration
            .with_label_values(&[self.kind])
            .observe(self.start.elapsed().as_secs_f64());
        let result = if self.failed.is_some() { "error" } else { "ok" };
        m.reconciliations
            .with_label_values(&[self.kind, result])
            .inc();
        if let Some(reason) = self.failed {
            m.failures.with_label_values(&[self.kind, reason]).inc();
        }
    }
}

pub struct LeadingGuard(IntGauge);

impl Drop for LeadingGuard {
    fn drop(&mut self) {
        self.0.set(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_measured_run_is_counted_by_result_and_reason() {
        let metrics = Metrics::default();
        drop(metrics.measure("iggycluster"));
        let mut failed = metrics.measure("iggycluster");
        failed.fail("api");
        drop(failed);
        let text = metrics.encode();
        assert!(
            text.contains(
                r#"iggy_operator_reconciliations_total{kind="iggycluster",result="ok"} 1"#
            )
        );
        assert!(text.contains(
            r#"iggy_operator_reconcile_failures_total{kind="iggycluster",reason="api"} 1"#
        ));
        assert!(text.contains("iggy_operator_reconcile_duration_seconds_count"));
    }

    #[test]
    fn the_leader_gauge_follows_the_guard() {
        let metrics = Metrics::default();
        assert!(metrics.encode().contains("iggy_operator_leader 0"));
        assert!(metrics.encode().contains(&format!(
            "iggy_operator_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )));
        let guard = metrics.leading();
        assert!(metrics.encode().contains("iggy_operator_leader 1"));
        drop(guard);
        assert!(metrics.encode().contains("iggy_operator_leader 0"));
    }
}
