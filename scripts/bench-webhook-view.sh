#!/usr/bin/env bash
# Memory of the webhook's cluster view (a benchmark, not a test): `jackstop webhook --cluster`
# against the in-process test API server holding N Pods as a live cluster returns them, with
# their Deployments and Services; resident size and high-water mark once the view is ready and
# after waves of changes that rebuild it. Usage: scripts/bench-webhook-view.sh [PODS=20000]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v openssl >/dev/null || { echo "openssl is required (a test certificate)" >&2; exit 2; }
cargo build --release -p jackstop >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$tmp/tls.key" -out "$tmp/tls.crt" 2>/dev/null
cargo run --release -q -p jackstop-cluster --example bench_webhook_view -- \
  "${CARGO_TARGET_DIR:-$PWD/target}/release/jackstop" "$tmp/tls.crt" "$tmp/tls.key" "${1:-20000}"
