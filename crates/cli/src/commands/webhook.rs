//! `jackstop webhook`: the validating admission webhook. Flags, files, the cluster watch that
//! keeps the view current, the decision log and signals are here; the HTTPS side is
//! jackstop-serve's and the decisions jackstop-admission's.

use crate::cli::{StreamFormat, WebhookArgs};
use crate::commands::analysis::{cluster_options, read_manifests};
use crate::commands::serving::{line_sink, serve_until_signal, RELOAD_EVERY};
use crate::EXIT_CLEAN;
use anyhow::Context;
use jackstop_admission::{operation_name, ClusterState, Engine, Policy, Verdict};
use jackstop_catalogue::Catalogue;
use jackstop_cluster::watch::{ClusterWatch, Update};
use jackstop_core::Object;
use jackstop_manifests::{KindFilter, ReadOptions};
use jackstop_report::table::paint;
use jackstop_serve::admission::{
    self as hook, DecisionLog, Webhook, WebhookMetrics, WebhookSettings,
};
use jackstop_serve::health;
use jackstop_serve::tls::{self, TlsFiles};
use kube::core::admission::AdmissionRequest;
use kube::core::DynamicObject;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// After a change in the cluster, wait this long for more before rebuilding the view.
const SETTLE: Duration = Duration::from_millis(250);

pub fn run(args: WebhookArgs) -> anyhow::Result<u8> {
    // One thread: the runtime on the calling thread, with no hand-offs between workers (a
    // review is a fraction of a millisecond of CPU; replicas, not threads, add capacity).
    let mut rt = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(args.threads);
        b
    };
    let rt = rt
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(args))
}

/// The decision log: one line per decision worth telling, written by a thread of its own so
/// that a slow disk or pipe never holds a review (lines wait in a bounded queue; past it they
/// are counted and dropped, never the review). Dropped last (with the runtime), it writes what
/// is still queued before the process ends.
struct Log {
    out: Option<std::sync::mpsc::SyncSender<String>>,
    writer: Option<std::thread::JoinHandle<()>>,
    dropped: std::sync::atomic::AtomicU64,
    format: StreamFormat,
    color: bool,
    all: bool,
}

impl Drop for Log {
    fn drop(&mut self) {
        // Disconnected, the writer writes what is queued and ends.
        self.out = None;
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// One line of the JSON decision log, serialised as it is built (no JSON values in between).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct DecisionLine<'a> {
    event: &'static str,
    observed_at: String,
    uid: &'a str,
    operation: &'static str,
    resource: LineResource<'a>,
    user: &'a str,
    dry_run: bool,
    decision: &'static str,
    exempt: &'a Option<String>,
    message: &'a Option<String>,
    warnings: &'a [String],
    findings: Vec<LineFinding<'a>>,
    seconds: f64,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct LineResource<'a> {
    api_version: String,
    kind: &'a str,
    namespace: &'a str,
    name: &'a str,
}

/// A finding as the reports write it, with what the policy did with it.
#[derive(serde::Serialize)]
struct LineFinding<'a> {
    #[serde(flatten)]
    finding: &'a jackstop_core::Finding,
    mode: &'static str,
}

impl DecisionLog for Log {
    fn decided(&self, req: &AdmissionRequest<DynamicObject>, v: &Verdict, seconds: f64) {
        if !self.all && v.findings.is_empty() && v.exempt.is_none() {
            return;
        }
        let decision = v.decision();
        let ns = req.namespace.as_deref().unwrap_or("");
        let user = req.user_info.username.as_deref().unwrap_or("");
        let line = match self.format {
            StreamFormat::Jsonl => {
                let mut line = serde_json::to_string(&DecisionLine {
                    event: "admission",
                    observed_at: jiff::Timestamp::now().to_string(),
                    uid: &req.uid,
                    operation: operation_name(&req.operation),
                    resource: LineResource {
                        api_version: req.kind.api_version(),
                        kind: &req.kind.kind,
                        namespace: ns,
                        name: &req.name,
                    },
                    user,
                    dry_run: req.dry_run,
                    decision,
                    exempt: &v.exempt,
                    message: &v.message,
                    warnings: &v.warnings,
                    findings: v
                        .findings
                        .iter()
                        .map(|(f, mode)| LineFinding {
                            finding: f,
                            mode: mode.as_str(),
                        })
                        .collect(),
                    seconds,
                })
                .unwrap_or_default();
                line.push('\n');
                line
            }
            StreamFormat::Table => {
                let worst = v.findings.iter().map(|(f, _)| f.severity).max();
                let tag = format!("{decision:<7}");
                let tag = match worst {
                    Some(s) if !v.allowed => paint(&tag, s, self.color),
                    _ => tag,
                };
                let mut line = format!(
                    "{} {tag} {} {} {}{}{} by {user}{}\n",
                    jiff::Timestamp::now().strftime("%H:%M:%S"),
                    operation_name(&req.operation),
                    req.kind.kind,
                    if ns.is_empty() {
                        String::new()
                    } else {
                        format!("{ns}/")
                    },
                    req.name,
                    if req.dry_run { " (dry run)" } else { "" },
                    v.exempt
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default(),
                );
                for (f, mode) in &v.findings {
                    line.push_str(&format!(
                        "         {:<7} {} {}: {}\n",
                        mode.as_str(),
                        f.rule,
                        f.severity.as_str(),
                        f.title
                    ));
                }
                line
            }
        };
        if self.out.as_ref().is_none_or(|o| o.try_send(line).is_err()) {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                eprintln!("jackstop: the decision log is behind; {n} lines dropped so far");
            }
        }
    }
}

/// How often the decision log's writer wakes to write what came in meanwhile. Woken for each
/// line instead, it cost a review that logs about as much CPU as judging it (the wake-up, the
/// thread switch and a write each); a line is at most this late.
const LOG_EVERY: Duration = Duration::from_millis(20);

/// Where the decision log's lines are written: every [`LOG_EVERY`], all that came in, in one
/// write. Ends, having written the rest, when the log is dropped.
fn log_writer(
    sink: Box<dyn Write + Send>,
) -> (
    std::sync::mpsc::SyncSender<String>,
    std::thread::JoinHandle<()>,
) {
    use std::sync::mpsc::TryRecvError;
    let (tx, rx) = std::sync::mpsc::sync_channel::<String>(4096);
    let writer = std::thread::spawn(move || {
        let mut sink = std::io::BufWriter::with_capacity(64 << 10, sink);
        loop {
            std::thread::sleep(LOG_EVERY);
            let ended = loop {
                match rx.try_recv() {
                    Ok(line) => {
                        let _ = sink.write_all(line.as_bytes());
                    }
                    Err(TryRecvError::Empty) => break false,
                    Err(TryRecvError::Disconnected) => break true,
                }
            };
            let _ = sink.flush();
            if ended {
                return;
            }
        }
    });
    (tx, writer)
}

fn known_rule(rule: &str) -> bool {
    Catalogue::builtin().rules.get(rule).is_some()
}

fn load_policy(path: Option<&PathBuf>) -> anyhow::Result<Policy> {
    match path {
        None => Ok(Policy::default()),
        Some(p) => Ok(Policy::from_file(p, known_rule)?),
    }
}

async fn serve(args: WebhookArgs) -> anyhow::Result<u8> {
    let catalogue = Catalogue::builtin();
    let files = TlsFiles {
        cert: args.tls_cert.clone(),
        key: args.tls_key.clone(),
        client_ca: args.client_ca.clone(),
    };
    let config = tls::server_config(&files)?;
    let policy = load_policy(args.policy.as_ref())?;
    let engine = Engine::new(catalogue);

    let (sink, format, color) = line_sink(args.output.as_ref(), args.format, args.no_color)?;
    let (out, writer) = log_writer(sink);
    let log = Arc::new(Log {
        out: Some(out),
        writer: Some(writer),
        dropped: Default::default(),
        format,
        color,
        all: args.log_all,
    });

    // The cluster view: fixed, watched, or none.
    let ready = Arc::new(AtomicBool::new(false));
    let (initial, watch) = if args.cluster {
        // Only what the view keeps: miner kinds are judged from the request alone.
        let kinds = ClusterState::kinds()
            .into_iter()
            .map(str::to_string)
            .collect();
        let opts = cluster_options(&args.live, kinds);
        let mut watch = ClusterWatch::<Arc<Object>>::start(&opts).await?;
        watch.trim_with(ClusterState::trim);
        for w in &watch.warnings {
            eprintln!("jackstop: {}: {}", w.path, w.message);
        }
        (ClusterState::empty(), Some(watch))
    } else if !args.objects.is_empty() {
        let (set, errors) = read_manifests(
            &args.objects,
            &[],
            ReadOptions::default().max_file_bytes,
            // Other kinds (CRDs, ConfigMaps: most of an install's bytes) are skimmed, not kept.
            KindFilter::Kinds(
                ClusterState::kinds()
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
            ),
        )?;
        for e in &errors {
            let pos = e.line.map(|l| format!(":{l}")).unwrap_or_default();
            eprintln!("jackstop: {}{pos}: {}", e.path, e.message);
        }
        let objects = set.objects;
        let state = ClusterState::new(objects, catalogue);
        eprintln!(
            "jackstop: cluster view from --objects: {} objects, {} exposures now",
            state.len(),
            state.exposures()
        );
        release_freed_memory();
        ready.store(true, Ordering::Release);
        (state, None)
    } else {
        eprintln!(
            "jackstop: no cluster view (--cluster or --objects): changes are judged by what \
             they carry alone; a Service opened to outside is not"
        );
        if !policy.exempt_namespace_labels.is_empty() {
            eprintln!(
                "jackstop: the policy exempts namespaces by label, but without a cluster view no \
                 namespace's labels are known: that exemption applies to none"
            );
        }
        ready.store(true, Ordering::Release);
        (ClusterState::empty(), None)
    };

    let listener = std::net::TcpListener::bind(&args.listen)
        .with_context(|| format!("cannot listen on {} (--listen)", args.listen))?;
    let addr = listener.local_addr()?;
    let metrics = WebhookMetrics::new();
    let mut registry = prometheus_client::registry::Registry::with_prefix("jackstop");
    metrics.register(&mut registry);
    let side = health::serve_plain(
        &args.metrics_listen,
        health::router(registry, ready.clone(), "the cluster view is not built yet"),
    )
    .await
    .with_context(|| {
        format!(
            "cannot listen on {} (--metrics-listen)",
            args.metrics_listen
        )
    })?;

    let webhook = Webhook::new(
        engine,
        policy,
        initial,
        metrics,
        log,
        WebhookSettings {
            max_body_bytes: args.max_body_size,
            request_timeout: args.review_timeout,
            max_in_flight: args.max_in_flight,
        },
    );
    if let Some(watch) = watch {
        tokio::spawn(keep_view(watch, webhook.clone(), ready.clone()));
    }
    if let Some(p) = args.policy.clone() {
        tokio::spawn(reload_policy(p, webhook.clone()));
    }

    let router = hook::router(webhook);
    eprintln!("jackstop: admission webhook on https://{addr}/");
    if let Some((side_addr, _)) = &side {
        eprintln!(
            "jackstop: metrics on http://{side_addr}/metrics, health on /healthz and /readyz"
        );
    }
    serve_until_signal(
        listener,
        config,
        files,
        router,
        "finishing the reviews in flight",
    )
    .await?;
    Ok(EXIT_CLEAN)
}

/// Keeps the webhook's cluster view current: rebuilt once listed, then shortly after changes.
async fn keep_view(mut watch: ClusterWatch<Arc<Object>>, webhook: Webhook, ready: Arc<AtomicBool>) {
    let catalogue = Catalogue::builtin();
    let mut dirty = false;
    loop {
        let synced = watch.is_synced();
        tokio::select! {
            _ = tokio::time::sleep(SETTLE), if dirty && synced => {
                dirty = false;
                rebuild(watch.objects().to_vec(), &webhook, catalogue).await;
            }
            u = watch.next() => match u {
                None => {
                    eprintln!("jackstop: every watch ended; the cluster view stays as it was");
                    return;
                }
                Some(Update::Objects { changed, .. }) => dirty |= changed,
                Some(Update::Synced) => {
                    rebuild(watch.objects().to_vec(), &webhook, catalogue).await;
                    dirty = false;
                    if !ready.swap(true, Ordering::AcqRel) {
                        eprintln!("jackstop: cluster view ready ({} objects)", watch.objects().len());
                    }
                }
                Some(Update::Warning { error, .. }) => {
                    eprintln!("jackstop: {}: {}", error.path, error.message);
                }
                Some(_) => {}
            },
        }
    }
}

/// Builds the new view off the serving thread (its exposure analysis takes milliseconds on a
/// large cluster, and reviews go on against the old view meanwhile), then swaps it in. The
/// objects are the watch's own, shared; what was read from those the old view holds too is
/// taken from it.
async fn rebuild(objects: Vec<Arc<Object>>, webhook: &Webhook, catalogue: &'static Catalogue) {
    let previous = webhook.state.read().map(|s| s.clone()).ok();
    let built = tokio::task::spawn_blocking(move || {
        let empty = ClusterState::empty();
        let state =
            ClusterState::shared(&objects, previous.as_deref().unwrap_or(&empty), catalogue);
        drop(previous);
        release_freed_memory();
        state
    })
    .await;
    match built {
        Ok(state) => webhook.set_state(state),
        Err(e) => eprintln!("jackstop: the cluster view was not rebuilt (the old one stays): {e}"),
    }
}

/// Gives the memory freed after reading manifests or rebuilding the view back to the system
/// now: a webhook's resident size is what a memory limit and an operator see.
fn release_freed_memory() {
    // SAFETY: mi_collect only frees the allocator's own unused pages; it takes no pointer and
    // may be called at any time from any thread.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// Reads the policy again when its file changes; a bad new file keeps the old policy.
async fn reload_policy(path: PathBuf, webhook: Webhook) {
    jackstop_serve::on_change(vec![path.clone()], RELOAD_EVERY, || {
        match load_policy(Some(&path)) {
            Ok(p) => {
                let mode = p.mode;
                webhook.set_policy(p);
                eprintln!(
                    "jackstop: policy reloaded from {} (default mode {})",
                    path.display(),
                    mode.as_str()
                );
            }
            Err(e) => eprintln!("jackstop: policy not reloaded (the old one stays): {e:#}"),
        }
    })
    .await
}
