//! What `jackstop watch` tells Prometheus, and its health endpoints: `/metrics` (OpenMetrics
//! text), `/healthz` (alive: the process answers) and `/readyz` (ready: the cluster has been
//! listed and analysed once).

use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FindingLabels {
    pub severity: String,
    pub category: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChangeLabels {
    pub resource: String,
    pub change: String,
}

/// Every metric; cheap to clone (each is shared).
#[derive(Clone)]
pub struct Metrics {
    /// Findings of the latest analysis, by severity and category.
    pub findings: Family<FindingLabels, Gauge>,
    /// Findings reported, by event (existing, new, changed, resolved).
    pub finding_events: Family<EventLabels, Counter>,
    /// Object changes received from the API server, by resource and change.
    pub object_changes: Family<ChangeLabels, Counter>,
    /// Watch and list failures (each retried with backoff), by resource.
    pub watch_errors: Family<ResourceLabels, Counter>,
    /// Relists after the server expired a watch (410 Gone), by resource.
    pub relists: Family<ResourceLabels, Counter>,
    /// Objects held.
    pub objects: Gauge,
    /// Analyses run.
    pub analyses: Counter,
    /// How long each analysis took.
    pub analysis_seconds: Histogram,
    ready: Arc<AtomicBool>,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            findings: Family::default(),
            finding_events: Family::default(),
            object_changes: Family::default(),
            watch_errors: Family::default(),
            relists: Family::default(),
            objects: Gauge::default(),
            analyses: Counter::default(),
            analysis_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            ready: Arc::default(),
        }
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("jackstop");
        r.register(
            "findings",
            "Findings of the latest analysis",
            self.findings.clone(),
        );
        r.register(
            "finding_events",
            "Findings reported, by event",
            self.finding_events.clone(),
        );
        r.register(
            "object_changes",
            "Object changes received from the API server",
            self.object_changes.clone(),
        );
        r.register(
            "watch_errors",
            "Watch and list failures, retried with backoff",
            self.watch_errors.clone(),
        );
        r.register(
            "relists",
            "Relists after the API server expired a watch (410 Gone)",
            self.relists.clone(),
        );
        r.register("objects", "Objects held", self.objects.clone());
        r.register("analyses", "Analyses run", self.analyses.clone());
        r.register(
            "analysis_seconds",
            "How long each analysis took",
            self.analysis_seconds.clone(),
        );
        r
    }

    /// The endpoints, ready to serve.
    pub fn router(&self) -> Router {
        jackstop_serve::health::router(
            self.registry(),
            self.ready.clone(),
            "the cluster is still being listed",
        )
    }
}
