#!/usr/bin/env bash
# Live-cluster benchmark (a benchmark, not a test): `jackstop scan --cluster` against the
# in-process test API server holding N objects, side by side with the real `kubectl get -o json`
# on the same server, in one run. Usage: scripts/bench-cluster.sh [OBJECTS=20000] [RUNS=5]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v kubectl >/dev/null || { echo "kubectl is required" >&2; exit 2; }
[[ -x /usr/bin/time ]] || apt-get install -y time >/dev/null 2>&1 || { echo "GNU time is required" >&2; exit 2; }
cargo build --release -p jackstop >&2
cargo run --release -q -p jackstop-cluster --example bench_cluster -- "${CARGO_TARGET_DIR:-$PWD/target}/release/jackstop" "${1:-20000}" "${2:-5}"
