//! The floor of jackstop's own HTTPS stack, for scripts/bench-webhook.sh: the webhook's server
//! (jackstop-serve's `serve_tls`: rustls with the same configuration, hyper, axum, one tokio
//! thread) answering every POST with a fixed "allowed" AdmissionReview once it has read the
//! body, judging nothing. Beside the webhook's figures under the same load, it tells what the
//! stack costs and what judging costs.
//!
//! ```sh
//! cargo run --release -p jackstop-serve --example floor -- --listen 127.0.0.1:8443 \
//!   --tls-cert tls.crt --tls-key tls.key
//! ```

use axum::body::Bytes;
use axum::routing::post;
use jackstop_serve::tls::{server_config, TlsFiles};
use std::net::SocketAddr;

const ANSWER: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"","allowed":true}}"#;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| -> String {
        match args
            .iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
        {
            Some(v) => v.clone(),
            None => {
                eprintln!(
                    "usage: floor --listen ADDR --tls-cert PEM --tls-key PEM ({name} missing)"
                );
                std::process::exit(2);
            }
        }
    };
    let (listen, cert, key) = (flag("--listen"), flag("--tls-cert"), flag("--tls-key"));
    let files = TlsFiles {
        cert: cert.into(),
        key: key.into(),
        client_ca: None,
    };
    let config = server_config(&files).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let listener = std::net::TcpListener::bind(&listen).unwrap_or_else(|e| {
        eprintln!("{listen}: {e}");
        std::process::exit(1)
    });
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    // As `jackstop webhook` runs by default: the runtime on this one thread.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async move {
        let router = axum::Router::new().route(
            "/{*path}",
            post(|body: Bytes| async move {
                std::hint::black_box(&body);
                ([("content-type", "application/json")], ANSWER)
            }),
        );
        eprintln!("floor on {listen}");
        let rustls = axum_server::tls_rustls::RustlsConfig::from_config(config);
        let handle = axum_server::Handle::<SocketAddr>::new();
        if let Err(e) =
            jackstop_serve::serve_tls(listener, rustls, router, handle, &Default::default()).await
        {
            eprintln!("{e}");
            std::process::exit(1);
        }
    });
}
