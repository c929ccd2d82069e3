//! The plain-HTTP side port every long-running jackstop command offers: `/metrics`
//! (OpenMetrics text, for Prometheus), `/healthz` (alive: the process answers) and `/readyz`
//! (ready: the command has done what it must before it is useful). It is separate from the
//! TLS port on purpose: kubelet probes and Prometheus need no client certificate or token.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

struct Shared {
    registry: Registry,
    ready: Arc<AtomicBool>,
    not_ready: &'static str,
}

/// The three endpoints; `not_ready` is what `/readyz` says until `ready` is set.
pub fn router(registry: Registry, ready: Arc<AtomicBool>, not_ready: &'static str) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(Arc::new(Shared {
            registry,
            ready,
            not_ready,
        }))
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &s.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn readyz(State(s): State<Arc<Shared>>) -> Response {
    if s.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", s.not_ready),
        )
            .into_response()
    }
}

/// Binds `listen` (or nothing for `none`) and serves `router` there in a task; the bound
/// address is returned with the task, for logs and tests (port 0 picks one).
pub async fn serve_plain(
    listen: &str,
    router: Router,
) -> std::io::Result<Option<(std::net::SocketAddr, tokio::task::JoinHandle<()>)>> {
    if listen == "none" {
        return Ok(None);
    }
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            eprintln!("jackstop: the metrics endpoint stopped: {e}");
        }
    });
    Ok(Some((addr, task)))
}
