//! `jackstop webhook`: the validating admission webhook over HTTPS. The API server POSTs an
//! AdmissionReview (admission.k8s.io/v1) for each change the ValidatingWebhookConfiguration
//! sends it; the answer is jackstop-admission's verdict.
//!
//! What can go wrong, and what is answered:
//! - a body that is not an AdmissionReview v1 (not JSON, another version or kind, no
//!   request): 400 with the reason; a body over the limit: 413; not JSON: 415; a body not sent
//!   within the request timeout: 408; more requests at once than allowed for longer than the
//!   timeout: 503;
//! - an internal error (the analysis panicked): 500. Never an answer that allows: the API
//!   server then applies the webhook's `failurePolicy` (`Fail` in deploy/webhook: denied), so
//!   a bug cannot let a miner through in enforce mode.
//!
//! The cluster view and the policy are swapped whole by their reloaders; each request reads
//! the current ones without waiting for a rebuild.

use crate::request;
use crate::status::refuse;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use jackstop_admission::{
    operation_name, parse_review, response, ClusterState, Engine, Policy, Verdict,
};
use kube::core::admission::AdmissionRequest;
use kube::core::DynamicObject;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Limits of the webhook.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// A larger body is refused (413). An object is at most 1.5 MiB in etcd, and a review of
    /// an update carries it twice.
    pub max_body_bytes: usize,
    /// Reading the body and judging it must end within this (the API server's own timeout is
    /// the webhook's `timeoutSeconds`, 10 s by default).
    pub request_timeout: Duration,
    /// Requests judged at once, their bodies read; more wait for a turn, up to the request
    /// timeout (then 503).
    pub max_in_flight: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            max_body_bytes: 8 << 20,
            request_timeout: Duration::from_secs(10),
            max_in_flight: 64,
        }
    }
}

/// What each decision is told to (the log of decisions).
pub trait DecisionLog: Send + Sync + 'static {
    fn decided(&self, req: &AdmissionRequest<DynamicObject>, verdict: &Verdict, seconds: f64);
}

/// Labels from fixed sets: counting a review allocates nothing.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub operation: &'static str,
    pub decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: String,
    pub mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: u16,
}

/// What the webhook tells Prometheus.
#[derive(Clone)]
pub struct WebhookMetrics {
    /// Reviews answered, by operation and decision (allowed, warned, denied, exempt).
    pub decisions: Family<DecisionLabels, Counter>,
    /// Findings acted on, by rule and mode.
    pub findings: Family<RuleLabels, Counter>,
    /// Requests refused before a review (400, 408, 413, 415, 503) or failed (500).
    pub refused: Family<CodeLabels, Counter>,
    /// Time from the request's first byte to the answer.
    pub seconds: Histogram,
    /// Objects in the cluster view.
    pub objects: Gauge,
    /// Cluster view rebuilds.
    pub rebuilds: Counter,
}

impl Default for WebhookMetrics {
    fn default() -> Self {
        WebhookMetrics::new()
    }
}

impl WebhookMetrics {
    pub fn new() -> WebhookMetrics {
        WebhookMetrics {
            decisions: Family::default(),
            findings: Family::default(),
            refused: Family::default(),
            seconds: Histogram::new(exponential_buckets(0.00005, 2.0, 16)),
            objects: Gauge::default(),
            rebuilds: Counter::default(),
        }
    }

    pub fn register(&self, r: &mut Registry) {
        let r = r.sub_registry_with_prefix("admission");
        r.register(
            "decisions",
            "Reviews answered, by operation and decision",
            self.decisions.clone(),
        );
        r.register(
            "findings",
            "Findings acted on, by rule and mode",
            self.findings.clone(),
        );
        r.register(
            "refused",
            "Requests refused before a review, or failed, by HTTP status",
            self.refused.clone(),
        );
        r.register(
            "request_seconds",
            "Time from the request to the answer",
            self.seconds.clone(),
        );
        r.register(
            "cluster_objects",
            "Objects in the cluster view",
            self.objects.clone(),
        );
        r.register(
            "cluster_rebuilds",
            "Cluster view rebuilds",
            self.rebuilds.clone(),
        );
    }
}

/// Everything a request needs; cheap to clone.
#[derive(Clone)]
pub struct Webhook {
    pub engine: Arc<Engine>,
    pub policy: Arc<RwLock<Arc<Policy>>>,
    pub state: Arc<RwLock<Arc<ClusterState>>>,
    pub metrics: WebhookMetrics,
    pub log: Arc<dyn DecisionLog>,
    pub settings: Arc<WebhookSettings>,
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl Webhook {
    pub fn new(
        engine: Engine,
        policy: Policy,
        state: ClusterState,
        metrics: WebhookMetrics,
        log: Arc<dyn DecisionLog>,
        settings: WebhookSettings,
    ) -> Webhook {
        metrics.objects.set(state.len() as i64);
        Webhook {
            engine: Arc::new(engine),
            policy: Arc::new(RwLock::new(Arc::new(policy))),
            state: Arc::new(RwLock::new(Arc::new(state))),
            metrics,
            log,
            in_flight: Arc::new(tokio::sync::Semaphore::new(settings.max_in_flight.max(1))),
            settings: Arc::new(settings),
        }
    }

    /// Puts a new cluster view in place.
    pub fn set_state(&self, state: ClusterState) {
        self.metrics.objects.set(state.len() as i64);
        self.metrics.rebuilds.inc();
        if let Ok(mut s) = self.state.write() {
            *s = Arc::new(state);
        }
    }

    /// Puts a new policy in place.
    pub fn set_policy(&self, policy: Policy) {
        if let Ok(mut p) = self.policy.write() {
            *p = Arc::new(policy);
        }
    }

    fn current(&self) -> Option<(Arc<Policy>, Arc<ClusterState>)> {
        let p = self.policy.read().ok()?.clone();
        let s = self.state.read().ok()?.clone();
        Some((p, s))
    }
}

/// POST on any path judges a review.
pub fn router(webhook: Webhook) -> Router {
    Router::new()
        .route("/", post(validate))
        .route("/{*path}", post(validate))
        .with_state(webhook)
}

/// Takes the request whole (axum's `HeaderMap` extractor would copy the headers of every
/// review).
async fn validate(State(w): State<Webhook>, request: axum::extract::Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let r = judge(&w, &parts.headers, body, started).await;
    let status = r.status();
    if status != StatusCode::OK {
        w.metrics
            .refused
            .get_or_create(&CodeLabels {
                code: status.as_u16(),
            })
            .inc();
    }
    w.metrics.seconds.observe(started.elapsed().as_secs_f64());
    r
}

async fn judge(w: &Webhook, headers: &HeaderMap, body: Body, started: Instant) -> Response {
    const WHAT: &str = "an AdmissionReview";
    if let Some(r) = request::not_json(headers, WHAT) {
        return r;
    }
    let max = w.settings.max_body_bytes;
    if let Some(r) = request::declared_too_large(headers, max, WHAT) {
        return r;
    }
    let deadline = tokio::time::Instant::from_std(started + w.settings.request_timeout);
    // The body first, then a turn: a client that sends its body slowly holds no turn, so slow
    // or stalled clients cannot keep the API server's reviews out (which, with failurePolicy
    // Fail, would refuse every change). A body being read costs only the bytes sent so far.
    let bytes = match request::read_body(body, max, deadline, WHAT).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let _permit = match tokio::time::timeout_at(deadline, w.in_flight.acquire()).await {
        Ok(Ok(p)) => p,
        _ => {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many reviews at once; retry",
            )
        }
    };
    let req = match parse_review(&bytes) {
        Ok(r) => r,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let Some((policy, state)) = w.current() else {
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the webhook's state is unreadable",
        );
    };
    // A panic in the analysis is a 500, never an allow.
    let engine = w.engine.clone();
    let verdict = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        engine.review(&req, &policy, &state)
    })) {
        Ok(v) => v,
        Err(_) => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "jackstop could not judge this request (internal error); failurePolicy applies",
            )
        }
    };
    count(w, &req, &verdict);
    w.log
        .decided(&req, &verdict, started.elapsed().as_secs_f64());
    let review = response(&req, &verdict).into_review();
    axum::Json(review).into_response()
}

fn count(w: &Webhook, req: &AdmissionRequest<DynamicObject>, v: &Verdict) {
    w.metrics
        .decisions
        .get_or_create(&DecisionLabels {
            operation: operation_name(&req.operation),
            decision: v.decision(),
        })
        .inc();
    for (f, mode) in &v.findings {
        w.metrics
            .findings
            .get_or_create(&RuleLabels {
                rule: f.rule.clone(),
                mode: mode.as_str(),
            })
            .inc();
    }
}
