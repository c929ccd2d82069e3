//! `jackstop audit serve`: the API server's audit webhook backend. Flags, files, signals and
//! output are here; the server itself is jackstop-serve's.
//!
//! It will not start without authentication (a client CA, a token file, or both): an audit
//! backend that takes events from anyone could be fed a made-up story, or be flooded.

use crate::cli::{AuditServeArgs, StreamFormat};
use crate::commands::analysis::load_ignore_file;
use crate::commands::audit::settings;
use crate::commands::watch::lines::Lines;
use crate::commands::watch::shutdown_signal;
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
use jackstop_serve::tls::{self, TlsFiles};
use jackstop_serve::{health, ConnectionLimits};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the certificate, key, CA and token files are looked at.
const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// In-flight requests get this long to finish after SIGTERM.
const DRAIN: Duration = Duration::from_secs(10);

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

    let to_terminal = args.output.is_none() && std::io::stdout().is_terminal();
    let format = args.format.unwrap_or(if to_terminal {
        StreamFormat::Table
    } else {
        StreamFormat::Jsonl
    });
    let color =
        to_terminal && !args.no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let sink: Box<dyn Write + Send> = match &args.output {
        Some(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open {} (--output)", p.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };

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

    let rustls = axum_server::tls_rustls::RustlsConfig::from_config(config);
    tokio::spawn(tls::reload_on_change(
        rustls.clone(),
        files,
        RELOAD_EVERY,
        |r| match r {
            Ok(()) => eprintln!("jackstop: TLS certificate reloaded"),
            Err(e) => {
                eprintln!("jackstop: TLS files changed but not reloaded (the old ones stay): {e}")
            }
        },
    ));
    if let Some(tokens) = tokens {
        tokio::spawn(reload_tokens(tokens));
    }

    let handle = axum_server::Handle::new();
    let router = backend::router(backend);
    let mut server = {
        let handle = handle.clone();
        tokio::spawn(async move {
            jackstop_serve::serve_tls(
                listener,
                rustls,
                router,
                handle,
                &ConnectionLimits::default(),
            )
            .await
        })
    };
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

    let server = tokio::select! {
        sig = shutdown_signal() => {
            eprintln!("jackstop: {sig}: finishing the batches in flight");
            handle.graceful_shutdown(Some(DRAIN));
            server.await
        }
        r = &mut server => r,
    };
    let stopped = match server {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(anyhow::Error::new(e).context("the HTTPS server stopped")),
        Err(e) => Err(anyhow::Error::new(e).context("the HTTPS server failed")),
    };
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
    let paths = [tokens.path.clone()];
    let mut last = tls::stamp(&paths);
    let mut tick = tokio::time::interval(RELOAD_EVERY);
    loop {
        tick.tick().await;
        let now = tls::stamp(&paths);
        if now == last {
            continue;
        }
        last = now;
        match tokens.reload() {
            Ok(()) => eprintln!("jackstop: tokens reloaded from {}", tokens.path.display()),
            Err(e) => eprintln!("jackstop: tokens not reloaded (the old ones stay): {e}"),
        }
    }
}
