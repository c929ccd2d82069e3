//! jackstop's servers. Everything here is about HTTP and TLS; what is served comes from the
//! library crates ([`audit`] wraps jackstop-audit's reader and rules).
//!
//! - [`tls`]: rustls configuration from PEM files, client certificates, reload on change;
//! - [`auth`]: bearer tokens from a file, compared in constant time;
//! - [`health`]: the plain side port with `/metrics`, `/healthz` and `/readyz`;
//! - [`status`]: refusals as Kubernetes `Status` objects; [`request`]: the checks of a
//!   request's content type, length and body that both servers make;
//! - [`audit`]: the audit webhook backend of `jackstop audit serve`;
//! - [`admission`]: the validating admission webhook of `jackstop webhook`.

pub mod admission;
pub mod audit;
pub mod auth;
pub mod health;
pub mod request;
pub mod status;
pub mod tls;

use axum::Router;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use axum_server::Handle;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// Connection-level bounds, against clients that open connections and say nothing.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// The TLS handshake must be done within this.
    pub handshake: Duration,
    /// A new connection's first request (its headers) must arrive within this.
    pub first_request: Duration,
    /// The headers of each later request too.
    pub headers: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            handshake: Duration::from_secs(10),
            first_request: Duration::from_secs(10),
            headers: Duration::from_secs(10),
        }
    }
}

/// Serves `router` over TLS on an already bound listener until `handle` shuts it down; the
/// router's handlers see the peer address (`ConnectInfo<SocketAddr>`).
pub async fn serve_tls(
    listener: std::net::TcpListener,
    tls: RustlsConfig,
    router: Router,
    handle: Handle<SocketAddr>,
    limits: &ConnectionLimits,
) -> std::io::Result<()> {
    // TCP_NODELAY, as request/response servers set it: an answer can leave as more than one
    // TLS record, which Nagle's algorithm may hold back until the client acknowledges the
    // first. (On loopback here it changed no measured percentile; across a network it can.)
    let acceptor = RustlsAcceptor::new(tls)
        .handshake_timeout(limits.handshake)
        .acceptor(NoDelayAcceptor::new());
    let mut server = axum_server::from_tcp(listener)?
        .acceptor(acceptor)
        .handle(handle)
        .first_request_timeout(limits.first_request);
    server
        .http_builder()
        .http1()
        .header_read_timeout(limits.headers);
    server
        .serve(router.into_make_service_with_connect_info::<SocketAddr>())
        .await
}

/// What the files look like now (modification time and length of each), to tell a change.
fn stamp(paths: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    paths
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
}

/// Calls `changed` each time one of `paths` changes (its modification time or length), looked
/// at every `every`: how certificates, tokens and policies mounted from Secrets and
/// ConfigMaps (rewritten in place by the kubelet) are taken up without a restart.
pub async fn on_change(paths: Vec<PathBuf>, every: Duration, mut changed: impl FnMut()) {
    let mut last = stamp(&paths);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = stamp(&paths);
        if now != last {
            last = now;
            changed();
        }
    }
}
