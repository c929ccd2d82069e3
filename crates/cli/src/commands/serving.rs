//! What `audit serve` and `webhook` share at the edge: where their lines go, and serving a
//! router over TLS (the certificate re-read when its files change) until SIGTERM or Ctrl-C.

use crate::cli::StreamFormat;
use crate::commands::watch::shutdown_signal;
use anyhow::Context;
use jackstop_serve::tls::{self, TlsFiles};
use jackstop_serve::ConnectionLimits;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How often certificate, key, CA, token and policy files are looked at.
pub const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// In-flight requests get this long to be answered after SIGTERM.
const DRAIN: Duration = Duration::from_secs(10);

/// Where the lines go (`-o FILE`, appended, or stdout), in which format (table on a terminal,
/// JSON lines otherwise, unless asked), and whether in colour.
pub fn line_sink(
    output: Option<&PathBuf>,
    format: Option<StreamFormat>,
    no_color: bool,
) -> anyhow::Result<(Box<dyn Write + Send>, StreamFormat, bool)> {
    let to_terminal = output.is_none() && std::io::stdout().is_terminal();
    let format = format.unwrap_or(if to_terminal {
        StreamFormat::Table
    } else {
        StreamFormat::Jsonl
    });
    let color =
        to_terminal && !no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let sink: Box<dyn Write + Send> = match output {
        Some(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open {} (--output)", p.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    Ok((sink, format, color))
}

/// Serves `router` over TLS on `listener` until a signal (then `draining` is said and the
/// requests in flight get up to 10 s) or until the server fails.
pub async fn serve_until_signal(
    listener: std::net::TcpListener,
    config: Arc<tls::ServerConfig>,
    files: TlsFiles,
    router: axum::Router,
    draining: &str,
) -> anyhow::Result<()> {
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
    let handle = axum_server::Handle::new();
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
    let result = tokio::select! {
        sig = shutdown_signal() => {
            eprintln!("jackstop: {sig}: {draining}");
            handle.graceful_shutdown(Some(DRAIN));
            server.await
        }
        r = &mut server => r,
    };
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(anyhow::Error::new(e).context("the HTTPS server stopped")),
        Err(e) => Err(anyhow::Error::new(e).context("the HTTPS server failed")),
    }
}
