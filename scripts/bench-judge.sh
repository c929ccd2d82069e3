#!/usr/bin/env bash
# What judging a review costs, without the server (a benchmark, not a test): crates/cli/examples/
# judge.rs reads, judges and answers the reviews of scripts/bench-webhook.sh's mix (or those
# given), each after evicting the core's caches, as the server's thread finds them between
# reviews on a shared machine. Prints each review's time to read and to judge, cold and hot;
# then, when valgrind is installed (apt-get install valgrind), what a review costs in
# instructions and in cache lines missed (callgrind's cache simulation with a 2 MB last level,
# this machine's per-core L2; code and data apart), counts that, unlike times on a shared machine,
# are the same from run to run: the figures to compare a change by.
# Usage: scripts/bench-judge.sh [ROUNDS=20] [REVIEW.json ...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds="${1:-20}"; shift || true
cargo build --release -p jackstop --example judge >&2
judge="${CARGO_TARGET_DIR:-$PWD/target}/release/examples/judge"
"$judge" --timed --rounds 300 "$@"
command -v valgrind >/dev/null || { echo "valgrind not installed: no instruction and cache-miss counts"; exit 0; }
out=$(mktemp); trap 'rm -f "$out" "$out.log"' EXIT
# The example prints how many reviews it judged.
n=$(valgrind --tool=callgrind --cache-sim=yes --LL=2097152,16,64 --I1=32768,8,64 --D1=49152,12,64 \
  --collect-atstart=no --toggle-collect='*judge_one*' --callgrind-out-file="$out" --log-file="$out.log" \
  "$judge" --rounds "$rounds" "$@")
grep -q "Collected" "$out.log" || { echo "callgrind failed:" >&2; cat "$out.log" >&2; exit 1; }
callgrind_annotate --show=Ir,ILmr,DLmr,DLmw "$out" 2>/dev/null | awk -v n="$n" '/PROGRAM TOTALS/ {
  gsub(",", ""); printf "per review (%d judged, cache simulation): %.0f instructions; last-level misses %.0f (code %.0f, data read %.0f, data written %.0f)\n", n, $1/n, ($3+$5+$7)/n, $3/n, $5/n, $7/n }'
