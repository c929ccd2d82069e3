//! `jackstop audit serve`: the API server's audit webhook backend. Flags, files, signals and
//! output are here; the server itself is jackstop-serve's.
//!
//! It will not start without authentication (a client CA, a token file, or both): an audit
//! backend that takes events from anyone could be fed a made-up story, or be flooded.

use crate::cli::AuditServeArgs;
use crate::commands::analysis::load_ignore_file;
use crate::commands::audit::settings;
use crate::commands::serving::{line_sink, serve_until_signal, RELOAD_EVERY};
use crate::commands::watch::lines::Lines;
use crate::EXIT_CLEAN;
use anyhow::{bail, Context};
use jackstop_audit::rules::AuditAnalyser;
use jackstop_audit::{AuditReader, ReadOptions};
use jackstop_catalogue::Catalogue;
use jackstop_core::changes::Change;
use jackstop_core::exceptions::{self, IgnoreFile};
use jackstop_core::{Finding, InputError, Severity};
use jackstop_serve::audit::{self as backend, AuditMetrics, BackendSettings, Output};
use jackstop_serve::auth::TokenFile;
use jackstop_serve::health;
use jackstop_serve::tls::{self, TlsFiles};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub fn run(args: AuditServeArgs) -> anyhow::Result<u8> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(args))
}

/// Findings and bad events, as lines.
struct LineOutput {
    lines: Lines<Box<dyn Write + Send>>,
    ignore: IgnoreFile,
    ignore_name: String,
    min_severity: Option<Severity>,
    suppressed: usize,
}

impl Output for LineOutput {
    fn findings(&mut self, findings: Vec<Finding>) {
        let (kept, suppressed) =
            exceptions::apply(findings, &self.ignore, &self.ignore_name, |_| None);
        self.suppressed += suppressed.len();
        for f in kept {
            if self.min_severity.is_none_or(|m| f.severity >= m) {
                if let Err(e) = self.lines.finding(Change::New, &f) {
                    eprintln!("jackstop: cannot write a finding: {e}");
                }
            }
        }
    }

    fn errors(&mut self, errors: Vec<InputError>) {
        for e in &errors {
            let _ = self.lines.warning(e);
        }
    }
}

async fn serve(args: AuditServeArgs) -> anyhow::Result<u8> {
    if args.client_ca.is_none() && args.token_file.is_none() {
        bail!(
            "audit serve needs authentication: --client-ca FILE (client certificates), \
             --token-file FILE (bearer tokens), or both"
        );
    }
    let files = TlsFiles {
        cert: args.tls_cert.clone(),
        key: args.tls_key.clone(),
        client_ca: args.client_ca.clone(),
    };
    let config = tls::server_config(&files)?;
    let tokens = args
        .token_file
        .as_deref()
        .map(TokenFile::open)
        .transpose()?;
    let min_severity: Option<Severity> =
        args.min_severity.as_deref().map(str::parse).transpose()?;
    let (ignore, ignore_name) = load_ignore_file(args.ignore_file.as_ref())?;

    let (sink, format, color) = line_sink(args.output.as_ref(), args.format, args.no_color)?;

    let listener = std::net::TcpListener::bind(&args.listen)
        .with_context(|| format!("cannot listen on {} (--listen)", args.listen))?;
    let addr = listener.local_addr()?;

    let metrics = AuditMetrics::new();
    let mut registry = prometheus_client::registry::Registry::with_prefix("jackstop");
    metrics.register(&mut registry);
    let ready = Arc::new(AtomicBool::new(false));
    let side = health::serve_plain(
        &args.metrics_listen,
        health::router(registry, ready.clone(), "starting"),
    )
    .await
    .with_context(|| {
        format!(
            "cannot listen on {} (--metrics-listen)",
            args.metrics_listen
        )
    })?;

    let reader = AuditReader::new(ReadOptions {
        // A batch is one line; the body limit is the bound.
        max_event_bytes: args.max_body_size,
        ..ReadOptions::default()
    });
    let analyser = AuditAnalyser::new(Catalogue::builtin(), settings(&args.burst));
    let output = LineOutput {
        lines: Lines::new(sink, format, color),
        ignore,
        ignore_name,
        min_severity,
        suppressed: 0,
    };
    let (backend, worker) = backend::start(
        reader,
        analyser,
        output,
        tokens.clone(),
        metrics,
        BackendSettings {
            max_body_bytes: args.max_body_size,
            request_timeout: args.request_timeout,
            max_in_flight: args.max_in_flight,
            flush_grace: args.flush_grace,
            ..BackendSettings::default()
        },
    )?;

    if let Some(tokens) = tokens {
        tokio::spawn(reload_tokens(tokens));
    }

    let router = backend::router(backend);
    let auth = match (&args.client_ca, &args.token_file) {
        (Some(_), Some(_)) => "client certificate and bearer token",
        (Some(_), None) => "client certificate",
        _ => "bearer token",
    };
    eprintln!("jackstop: audit webhook backend on https://{addr}/ ({auth} required)");
    if let Some((side_addr, _)) = &side {
        eprintln!(
            "jackstop: metrics on http://{side_addr}/metrics, health on /healthz and /readyz"
        );
    }
    ready.store(true, Ordering::Release);

    let stopped = serve_until_signal(
        listener,
        config,
        files,
        router,
        "finishing the batches in flight",
    )
    .await;
    // The router and every Backend in it are gone: the worker drains and closes what is open.
    let stats = tokio::task::spawn_blocking(move || worker.join())
        .await
        .unwrap_or_default();
    eprintln!(
        "jackstop: {} batches, {} events read, {} analysed, {} bad",
        stats.files, stats.events, stats.analysed, stats.bad_lines
    );
    stopped?;
    Ok(EXIT_CLEAN)
}

/// Reads the token file again when it changes; a bad new file keeps the old tokens.
async fn reload_tokens(tokens: TokenFile) {
    let path = tokens.path.clone();
    jackstop_serve::on_change(vec![path.clone()], RELOAD_EVERY, || match tokens.reload() {
        Ok(()) => eprintln!("jackstop: tokens reloaded from {}", path.display()),
        Err(e) => eprintln!("jackstop: tokens not reloaded (the old ones stay): {e}"),
    })
    .await
}
