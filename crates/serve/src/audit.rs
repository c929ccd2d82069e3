//! `jackstop audit serve`: the audit webhook backend. The API server's
//! `--audit-webhook-config-file` (a kubeconfig) names this server; it POSTs `EventList`
//! batches of audit.k8s.io/v1 events to it, and retries a batch that failed.
//!
//! Each request is checked (token, content type, size, a whole JSON document of the right
//! kind) before anything is analysed, so a refused request changed nothing and the API
//! server's retry is safe. Accepted batches go, in arrival order, to one worker thread that
//! owns the reader and the rules (bursts and anonymous reads span batches). The answer is sent
//! once the batch has been analysed: the API server's own batching then waits on a slow
//! analysis instead of piling batches up in memory here. A batch that arrives again byte for
//! byte (a retry after a timeout) is recognised and not analysed twice.

use crate::auth::TokenFile;
use crate::request;
use crate::status::refuse;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use jackstop_audit::rules::AuditAnalyser;
use jackstop_audit::AuditReader;
use jackstop_core::{Finding, InputError};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Limits and timings of the backend.
#[derive(Debug, Clone)]
pub struct BackendSettings {
    /// A larger request body is refused with 413 (the API server's own batch limit,
    /// `--audit-webhook-truncate-max-batch-size`, is 10 MiB by default).
    pub max_body_bytes: usize,
    /// The whole request, from its headers to the answer: reading a slow body (408), waiting
    /// for the worker (503).
    pub request_timeout: Duration,
    /// Requests read, queued or being analysed at once; more wait for their turn (memory for
    /// bodies is bounded by this times `max_body_bytes`).
    pub max_in_flight: usize,
    /// How many recent batches are remembered to recognise a retry.
    pub recent_batches: usize,
    /// How often rules spanning events are looked at with no event coming (bursts that
    /// ended, anonymous reads that stopped).
    pub flush_every: Duration,
    /// How long after its window a burst is held open for late batches: the API server sends
    /// batches up to `--audit-webhook-batch-max-wait` (30 s by default) after their events.
    pub flush_grace: Duration,
}

impl Default for BackendSettings {
    fn default() -> Self {
        BackendSettings {
            max_body_bytes: 16 << 20,
            request_timeout: Duration::from_secs(30),
            max_in_flight: 4,
            recent_batches: 1024,
            flush_every: Duration::from_secs(1),
            flush_grace: Duration::from_secs(60),
        }
    }
}

/// Where findings and bad events go, from the worker thread.
pub trait Output: Send + 'static {
    fn findings(&mut self, findings: Vec<Finding>);
    fn errors(&mut self, errors: Vec<InputError>);
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FindingLabels {
    pub severity: String,
    pub category: String,
}

/// What the backend tells Prometheus.
#[derive(Clone)]
pub struct AuditMetrics {
    /// Requests answered, by HTTP status.
    pub requests: Family<CodeLabels, Counter>,
    /// Batches analysed.
    pub batches: Counter,
    /// Batches recognised as retries and not analysed again.
    pub duplicate_batches: Counter,
    /// Audit events read.
    pub events: Counter,
    /// Events handed to the rules (the rest: reads counted, other stages, out of range).
    pub analysed: Counter,
    /// Items of a batch that were not audit events.
    pub bad_events: Counter,
    /// Request bytes analysed.
    pub bytes: Counter,
    /// Findings made, by severity and category.
    pub findings: Family<FindingLabels, Counter>,
    /// Batches waiting for the worker.
    pub queued: Gauge,
    /// How long each batch took to analyse.
    pub batch_seconds: Histogram,
}

impl Default for AuditMetrics {
    fn default() -> Self {
        AuditMetrics::new()
    }
}

impl AuditMetrics {
    pub fn new() -> AuditMetrics {
        AuditMetrics {
            requests: Family::default(),
            batches: Counter::default(),
            duplicate_batches: Counter::default(),
            events: Counter::default(),
            analysed: Counter::default(),
            bad_events: Counter::default(),
            bytes: Counter::default(),
            findings: Family::default(),
            queued: Gauge::default(),
            batch_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
        }
    }

    pub fn register(&self, r: &mut Registry) {
        let r = r.sub_registry_with_prefix("audit");
        r.register(
            "requests",
            "Requests answered, by HTTP status",
            self.requests.clone(),
        );
        r.register("batches", "Batches analysed", self.batches.clone());
        r.register(
            "duplicate_batches",
            "Batches recognised as retries and not analysed again",
            self.duplicate_batches.clone(),
        );
        r.register("events", "Audit events read", self.events.clone());
        r.register(
            "events_analysed",
            "Events handed to the rules",
            self.analysed.clone(),
        );
        r.register(
            "bad_events",
            "Batch items that were not audit events",
            self.bad_events.clone(),
        );
        r.register("bytes", "Request bytes analysed", self.bytes.clone());
        r.register(
            "findings",
            "Findings made, by severity and category",
            self.findings.clone(),
        );
        r.register(
            "queued_batches",
            "Batches waiting for the worker",
            self.queued.clone(),
        );
        r.register(
            "batch_seconds",
            "How long each batch took to analyse",
            self.batch_seconds.clone(),
        );
    }
}

/// What became of one batch.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct BatchOutcome {
    pub events: u64,
    pub analysed: u64,
    #[serde(rename = "badEvents")]
    pub bad_events: u64,
    pub duplicate: bool,
}

struct Batch {
    body: Bytes,
    name: String,
    done: oneshot::Sender<BatchOutcome>,
}

/// The request side: cheap to clone into every connection.
#[derive(Clone)]
pub struct Backend {
    tx: mpsc::Sender<Batch>,
    tokens: Option<TokenFile>,
    metrics: AuditMetrics,
    settings: Arc<BackendSettings>,
    received: Arc<AtomicU64>,
    in_flight: Arc<tokio::sync::Semaphore>,
}

/// The worker thread; [`Worker::join`] waits for it to analyse what was accepted and close
/// what is still open, once every [`Backend`] clone is gone (the server stopped).
pub struct Worker {
    thread: std::thread::JoinHandle<jackstop_audit::AuditStats>,
}

impl Worker {
    /// The final counts, after the last findings went to the output.
    pub fn join(self) -> jackstop_audit::AuditStats {
        self.thread.join().unwrap_or_default()
    }
}

/// Starts the worker and returns the request side for [`router`].
pub fn start(
    reader: AuditReader,
    analyser: AuditAnalyser,
    output: impl Output,
    tokens: Option<TokenFile>,
    metrics: AuditMetrics,
    settings: BackendSettings,
) -> std::io::Result<(Backend, Worker)> {
    let (tx, rx) = mpsc::channel(settings.max_in_flight.max(1));
    let settings = Arc::new(settings);
    let state = WorkerState {
        reader,
        analyser,
        output,
        metrics: metrics.clone(),
        settings: settings.clone(),
        recent: Recent::new(settings.recent_batches),
    };
    let thread = std::thread::Builder::new()
        .name("audit-analysis".into())
        .spawn(move || state.run(rx))?;
    Ok((
        Backend {
            tx,
            tokens,
            metrics,
            in_flight: Arc::new(tokio::sync::Semaphore::new(settings.max_in_flight.max(1))),
            settings,
            received: Arc::default(),
        },
        Worker { thread },
    ))
}

/// POST on any path takes a batch (the kubeconfig's server URL may carry one); the rest 405.
pub fn router(backend: Backend) -> Router {
    Router::new()
        .route("/", post(ingest))
        .route("/{*path}", post(ingest))
        .with_state(backend)
}

async fn ingest(
    State(b): State<Backend>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let response = accept(&b, peer, &headers, body, started).await;
    b.metrics
        .requests
        .get_or_create(&CodeLabels {
            code: response.status().as_u16(),
        })
        .inc();
    response
}

/// The envelope of a batch: read whole (so the JSON is known to be complete and well formed)
/// without building the events.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "apiVersion")]
    api_version: Option<Cow<'a, str>>,
    #[serde(default)]
    items: Option<serde::de::IgnoredAny>,
}

async fn accept(
    b: &Backend,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Body,
    started: Instant,
) -> Response {
    if let Some(tokens) = &b.tokens {
        let auth = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
        if !tokens.allows(auth) {
            return refuse(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
        }
    }
    if let Some(r) = request::not_json(headers, "an audit.k8s.io/v1 EventList") {
        return r;
    }
    let max = b.settings.max_body_bytes;
    if let Some(r) = request::declared_too_large(headers, max, "a batch") {
        return r;
    }
    // Every step below shares one deadline: the request timeout from the first byte.
    let deadline = tokio::time::Instant::from_std(started + b.settings.request_timeout);
    let busy = || {
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the batch was not analysed in time; retry",
        )
    };
    let _permit = match tokio::time::timeout_at(deadline, b.in_flight.acquire()).await {
        Ok(Ok(p)) => p,
        Ok(Err(_)) => return refuse(StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
        Err(_) => return busy(),
    };
    let body = match request::read_body(body, max, deadline, "a batch").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(why) = check_envelope(&body) {
        return refuse(StatusCode::BAD_REQUEST, why);
    }
    let n = b.received.fetch_add(1, Ordering::Relaxed) + 1;
    let (done, outcome) = oneshot::channel();
    let batch = Batch {
        body,
        name: format!("batch {n} from {peer}"),
        done,
    };
    b.metrics.queued.inc();
    match tokio::time::timeout_at(deadline, b.tx.send(batch)).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => {
            b.metrics.queued.dec();
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
        }
        Err(_) => {
            b.metrics.queued.dec();
            return busy();
        }
    }
    // Once queued, the batch will be analysed even if this answer is late (a retry of it is
    // then recognised).
    match tokio::time::timeout_at(deadline, outcome).await {
        Err(_) => busy(),
        Ok(Ok(o)) => {
            let mut r = axum::Json(o).into_response();
            if let Ok(v) = format!("{:.6}", started.elapsed().as_secs_f64()).parse() {
                r.headers_mut().insert("x-jackstop-seconds", v);
            }
            r
        }
        Ok(Err(_)) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the analysis stopped before this batch",
        ),
    }
}

/// A whole JSON document that is an audit.k8s.io/v1 EventList (or a single Event).
fn check_envelope(body: &[u8]) -> Result<(), String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("an empty body: expected an audit.k8s.io/v1 EventList".into());
    }
    let env: Envelope<'_> = serde_json::from_slice(body).map_err(|e| {
        format!(
            "not a JSON object: {e} (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let kind = env.kind.as_deref().unwrap_or("");
    let version = env.api_version.as_deref().unwrap_or("");
    match (kind, version) {
        ("EventList", "audit.k8s.io/v1") if env.items.is_some() => Ok(()),
        ("EventList", "audit.k8s.io/v1") => Err("an EventList without items".into()),
        ("Event", "audit.k8s.io/v1") => Ok(()),
        _ => Err(format!(
            "kind {kind:?} apiVersion {version:?}: expected an audit.k8s.io/v1 EventList \
             (audit.k8s.io/v1beta1 was removed in Kubernetes 1.24)"
        )),
    }
}

/// The batches seen lately, by a keyed hash of their bytes.
struct Recent {
    keys: HashSet<u64>,
    order: VecDeque<u64>,
    cap: usize,
    hasher: std::collections::hash_map::RandomState,
}

impl Recent {
    fn new(cap: usize) -> Recent {
        Recent {
            keys: HashSet::new(),
            order: VecDeque::new(),
            cap,
            hasher: Default::default(),
        }
    }

    fn key(&self, body: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(body);
        h.finish()
    }

    /// Remembers a batch analysed; false when it was seen already.
    fn insert(&mut self, key: u64) -> bool {
        if self.cap == 0 {
            return true;
        }
        if !self.keys.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.keys.remove(&old);
            }
        }
        true
    }
}

struct WorkerState<O: Output> {
    reader: AuditReader,
    analyser: AuditAnalyser,
    output: O,
    metrics: AuditMetrics,
    settings: Arc<BackendSettings>,
    recent: Recent,
}

impl<O: Output> WorkerState<O> {
    /// Batches in order, and a look at the open rules every `flush_every`, until every sender
    /// is gone; then what is still open is closed.
    fn run(mut self, mut rx: mpsc::Receiver<Batch>) -> jackstop_audit::AuditStats {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        else {
            return self.reader.stats;
        };
        rt.block_on(async {
            let mut tick = tokio::time::interval(self.settings.flush_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    batch = rx.recv() => match batch {
                        Some(b) => self.batch(b),
                        None => break,
                    },
                    _ = tick.tick() => self.flush(),
                }
            }
        });
        let WorkerState {
            reader,
            analyser,
            mut output,
            metrics,
            ..
        } = self;
        let (rest, notes) = analyser.finish();
        emit(&metrics, &mut output, rest);
        if !notes.is_empty() {
            output.errors(notes);
        }
        reader.stats
    }

    fn batch(&mut self, b: Batch) {
        self.metrics.queued.dec();
        let started = Instant::now();
        let key = self.recent.key(&b.body);
        if self.recent.keys.contains(&key) {
            self.metrics.duplicate_batches.inc();
            let _ = b.done.send(BatchOutcome {
                events: 0,
                analysed: 0,
                bad_events: 0,
                duplicate: true,
            });
            return;
        }
        let before = self.reader.stats.clone();
        self.reader
            .read_stream(&b.body[..], &b.name, &mut self.analyser);
        self.recent.insert(key);
        let after = &self.reader.stats;
        let outcome = BatchOutcome {
            events: after.events - before.events,
            analysed: after.analysed - before.analysed,
            bad_events: after.bad_lines - before.bad_lines,
            duplicate: false,
        };
        self.metrics.batches.inc();
        self.metrics.events.inc_by(outcome.events);
        self.metrics.analysed.inc_by(outcome.analysed);
        self.metrics.bad_events.inc_by(outcome.bad_events);
        self.metrics.bytes.inc_by(b.body.len() as u64);
        let errors = std::mem::take(&mut self.reader.errors);
        if !errors.is_empty() {
            self.output.errors(errors);
        }
        let found = self.analyser.take_findings();
        self.emit(found);
        self.metrics
            .batch_seconds
            .observe(started.elapsed().as_secs_f64());
        let _ = b.done.send(outcome);
    }

    fn flush(&mut self) {
        let grace = jiff::SignedDuration::try_from(self.settings.flush_grace).unwrap_or_default();
        let found = self.analyser.flush(jiff::Timestamp::now() - grace);
        self.emit(found);
    }

    fn emit(&mut self, findings: Vec<Finding>) {
        emit(&self.metrics, &mut self.output, findings);
    }
}

/// Findings to the output, counted.
fn emit(metrics: &AuditMetrics, output: &mut impl Output, findings: Vec<Finding>) {
    if findings.is_empty() {
        return;
    }
    for f in &findings {
        metrics
            .findings
            .get_or_create(&FindingLabels {
                severity: f.severity.as_str().to_string(),
                category: f.category.as_str().to_string(),
            })
            .inc();
    }
    output.findings(findings);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        let ok = br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[]}"#;
        assert!(check_envelope(ok).is_ok());
        let cut = &ok[..ok.len() - 3];
        assert!(check_envelope(cut)
            .unwrap_err()
            .contains("not a JSON object"));
        let old = br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1beta1","items":[]}"#;
        assert!(check_envelope(old).unwrap_err().contains("v1beta1"));
        assert!(check_envelope(b"  \n").unwrap_err().contains("empty"));
        assert!(check_envelope(b"[1,2]").is_err());
        let two = br#"{"kind":"Event","apiVersion":"audit.k8s.io/v1"} {"kind":"Event"}"#;
        assert!(check_envelope(two).unwrap_err().contains("trailing"));
        let no_items = br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1"}"#;
        assert!(check_envelope(no_items)
            .unwrap_err()
            .contains("without items"));
    }

    #[test]
    fn recent_batches_are_bounded() {
        let mut r = Recent::new(2);
        let (a, b, c) = (r.key(b"a"), r.key(b"b"), r.key(b"c"));
        assert!(r.insert(a));
        assert!(!r.insert(a));
        assert!(r.insert(b));
        assert!(r.insert(c));
        // `a` was forgotten to make room.
        assert!(r.insert(a));
        assert_eq!(r.keys.len(), 2);
    }
}
