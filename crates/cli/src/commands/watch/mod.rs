//! `jackstop watch --cluster`: keeps the cluster's objects current with watchers, analyses
//! them again shortly after they change, and reports each finding once when it appears, when
//! what it says changes and when it goes; serves metrics and health on a local port; stops
//! cleanly on SIGTERM or Ctrl-C.
//!
//! Every analysis reads the whole object set, as a scan does: exposures and bursts span
//! objects, and it costs about a second per 20,000 objects on one core. Analysis waits for
//! changes to settle (`--settle-ms`) but never longer than 5 s while they keep coming, so a
//! burst of Deployments is reported within seconds of its creation, and an idle cluster costs
//! nothing: no change, no analysis.

pub(crate) mod lines;
mod metrics;

use crate::cli::{StreamFormat, WatchArgs};
use crate::commands::analysis::{cluster_options, Analysis};
use crate::EXIT_CLEAN;
use anyhow::{bail, Context};
use jackstop_cluster::watch::{ClusterWatch, Update};
use jackstop_core::changes::Tracker;
use jackstop_core::InputError;
use lines::Lines;
use metrics::{ChangeLabels, EventLabels, FindingLabels, Metrics, ResourceLabels};
use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::time::Duration;
use tokio::time::Instant;

/// The longest analysis waits while changes keep coming.
const MAX_DELAY: Duration = Duration::from_secs(5);

pub fn run(args: WatchArgs) -> anyhow::Result<u8> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(watch(args))
}

async fn watch(args: WatchArgs) -> anyhow::Result<u8> {
    let analysis = Analysis::from_args(&args.analysis)?;
    let opts = cluster_options(&args.live, analysis.kinds());
    let stdout = std::io::stdout();
    let terminal = stdout.is_terminal();
    let format = args.format.unwrap_or(if terminal {
        StreamFormat::Table
    } else {
        StreamFormat::Jsonl
    });
    let color =
        terminal && !args.no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut out = Lines::new(stdout.lock(), format, color);

    let metrics = Metrics::new();
    let server = serve(&args.listen, &metrics).await?;
    let mut stop = std::pin::pin!(shutdown_signal());

    let mut watch = tokio::select! {
        w = ClusterWatch::<jackstop_core::Object>::start(&opts) => w?,
        why = &mut stop => {
            eprintln!("jackstop: {why} before the watch started; stopping");
            return Ok(EXIT_CLEAN);
        }
    };
    if watch.resources.is_empty() {
        bail!(
            "nothing to watch: {} serves none of the kinds jackstop reads",
            watch.server
        );
    }
    for w in std::mem::take(&mut watch.warnings) {
        say(&mut out, &w)?;
    }

    let settle = Duration::from_millis(args.settle_ms);
    let mut tracker = Tracker::default();
    let mut notes_said: HashSet<String> = HashSet::new();
    // When the first unanalysed change came, and the latest.
    let mut dirty: Option<(Instant, Instant)> = None;
    loop {
        let due = dirty.map(|(first, last)| (last + settle).min(first + MAX_DELAY));
        let synced = watch.is_synced();
        tokio::select! {
            biased;
            why = &mut stop => {
                eprintln!("jackstop: {why}; stopping");
                break;
            }
            _ = sleep_until(due), if due.is_some() && synced => {
                dirty = None;
                if !analyse(&analysis, &watch, &mut tracker, &mut out, &metrics, &mut notes_said)? {
                    break;
                }
            }
            u = watch.next() => {
                let Some(u) = u else {
                    bail!("every watch on {} ended", watch.server);
                };
                match u {
                    Update::Objects { resource, changed, applied, deleted } => {
                        let name = watch.resources[resource].display();
                        count(&metrics, &name, "applied", applied);
                        count(&metrics, &name, "deleted", deleted);
                        metrics.objects.set(watch.objects().len() as i64);
                        if changed {
                            let now = Instant::now();
                            dirty = Some((dirty.map_or(now, |(first, _)| first), now));
                        }
                    }
                    Update::Relisting { resource } => {
                        let name = watch.resources[resource].display();
                        metrics.relists.get_or_create(&ResourceLabels { resource: name }).inc();
                    }
                    Update::Interrupted { resource } => {
                        let name = watch.resources[resource].display();
                        metrics.watch_errors.get_or_create(&ResourceLabels { resource: name }).inc();
                    }
                    Update::Warning { resource, error } => {
                        let name = watch.resources[resource].display();
                        metrics.watch_errors.get_or_create(&ResourceLabels { resource: name }).inc();
                        say(&mut out, &error)?;
                    }
                    Update::Synced => {
                        dirty = None;
                        if !analyse(&analysis, &watch, &mut tracker, &mut out, &metrics, &mut notes_said)? {
                            break;
                        }
                        metrics.set_ready();
                        let ready = out.ready(watch.objects().len(), watch.resources.len(), tracker.len());
                        if !written(ready)? {
                            break;
                        }
                    }
                }
            }
        }
    }
    if let Some(server) = server {
        server.abort();
    }
    Ok(EXIT_CLEAN)
}

/// Sleeps until `due`, or forever when there is nothing due.
async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

fn count(metrics: &Metrics, resource: &str, change: &str, n: usize) {
    if n > 0 {
        metrics
            .object_changes
            .get_or_create(&ChangeLabels {
                resource: resource.to_string(),
                change: change.to_string(),
            })
            .inc_by(n as u64);
    }
}

/// Analyses the objects as they are now and reports what changed; `false` when the reader
/// of the output has gone (a closed pipe), which ends the watch.
fn analyse<W: Write>(
    analysis: &Analysis,
    watch: &ClusterWatch,
    tracker: &mut Tracker,
    out: &mut Lines<W>,
    metrics: &Metrics,
    notes_said: &mut HashSet<String>,
) -> anyhow::Result<bool> {
    let started = std::time::Instant::now();
    // The analysers use threads of their own; the runtime's other worker keeps the watches
    // and the metrics endpoint going meanwhile.
    let analysed = tokio::task::block_in_place(|| analysis.run(watch.objects()));
    metrics
        .analysis_seconds
        .observe(started.elapsed().as_secs_f64());
    metrics.analyses.inc();
    for n in analysed.notes {
        if notes_said.insert(n.message.clone()) && !written(out.warning(&n))? {
            return Ok(false);
        }
    }
    let changes = tracker.update(analysed.findings);
    metrics.findings.clear();
    for f in tracker.current() {
        metrics
            .findings
            .get_or_create(&FindingLabels {
                severity: f.severity.to_string(),
                category: f.category.to_string(),
            })
            .inc();
    }
    for (change, f) in &changes {
        metrics
            .finding_events
            .get_or_create(&EventLabels {
                event: change.as_str().to_string(),
            })
            .inc();
        if !written(out.finding(*change, f))? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn say<W: Write>(out: &mut Lines<W>, e: &InputError) -> anyhow::Result<bool> {
    written(out.warning(e))
}

/// Whether a line was written: `false` on a closed pipe (the reader left), an error otherwise.
fn written(r: std::io::Result<()>) -> anyhow::Result<bool> {
    match r {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}

/// Starts the metrics and health endpoints (`none`: none).
async fn serve(
    listen: &str,
    metrics: &Metrics,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let served = jackstop_serve::health::serve_plain(listen, metrics.router())
        .await
        .with_context(|| format!("cannot listen on {listen} (--listen)"))?;
    Ok(served.map(|(addr, task)| {
        eprintln!("jackstop: metrics on http://{addr}/metrics, health on /healthz and /readyz");
        task
    }))
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C), naming which.
pub(crate) async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
