#!/usr/bin/env bash
# Scan-speed benchmark for jackstop (a benchmark, not a test: it always exits 0
# unless something breaks, or BENCH_STRICT=1 and a target is missed).
#
# It measures, in one run and on the same machine:
#   1. the real Kubeflow install (one 12 MB file, 657 YAML documents): median wall time;
#   2. a tree of N renamed copies of that file (~600 MB for N=50): wall time with all
#      analysers and with the exposure analysis alone (the ratio is the miner analysis cost),
#      throughput (MB/s, MB = 10^6 bytes) and peak RSS, also as a ratio of the input size;
#   3. checkov vs jackstop on the Kubeflow file split into one file per document
#      (checkov silently scans nothing in a single multi-document 12 MB file, so a
#      per-document tree is the only fair common ground).
#
# Usage (from the repository root):   scripts/bench-scan.sh
# Environment knobs:
#   BENCH_CORPUS=PATH        source manifest (default: the shared Kubeflow example)
#   BENCH_COPIES=N           copies in the big tree (default 50)
#   BENCH_RUNS=N             timed runs for the small cases (default 10)
#   BENCH_TREE_RUNS=N        timed runs for the big tree (default 3)
#   BENCH_SKIP_CHECKOV=1     skip part 3
#   BENCH_STRICT=1           exit 1 when a target is missed
# Everything generated lives under bench-data/ (git-ignored) and is reused when still valid.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CORPUS="${BENCH_CORPUS:-/work/shared/corpus/kubeflow-platform/kubeflow-example.yaml}"
COPIES="${BENCH_COPIES:-50}"
RUNS="${BENCH_RUNS:-10}"
TREE_RUNS="${BENCH_TREE_RUNS:-3}"
SKIP_CHECKOV="${BENCH_SKIP_CHECKOV:-0}"
STRICT="${BENCH_STRICT:-0}"

DATA="$ROOT/bench-data"
TREE="$DATA/tree"
SPLIT="$DATA/split"
VENV="$DATA/venv"
OUT="$DATA/out"        # reports, timing JSON, logs of this run
JACKSTOP="${CARGO_TARGET_DIR:-$ROOT/target}/release/jackstop"

# Targets (see the project brief).
TARGET_SINGLE_S=1.0      # "well under a second" for the 12 MB install
TARGET_MBPS=50           # throughput on the big tree
TARGET_RSS_RATIO=2.0     # peak RSS / input bytes on the big tree
TARGET_SPEEDUP=50        # checkov time / jackstop time on the split tree
TARGET_ALL_RATIO=0.70    # all analysers' throughput / exposure-only throughput on the big tree

SCRIPT_START=$(date +%s.%N)
# Wall times are only meaningful on an idle machine: remember how busy it was when we
# started (other builds or tests on this 2-core box easily double every figure).
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench-scan: error: %s\n' "$*" >&2; exit 2; }

# Floating-point helpers (bash has integers only).
calc() { awk "BEGIN { printf \"%.${2:-3}f\", $1 }"; }
# pass_fail EXPR -> PASS when the awk expression is true.
pass_fail() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo FAIL; fi; }

# Sum of file sizes under a path (what jackstop reads, and what throughput is computed on).
tree_bytes() { find "$1" -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) -printf '%s\n' | awk '{ s += $1 } END { printf "%d", s }'; }

# median_time NAME RUNS CMD... -> prints the median wall time in seconds.
# Uses hyperfine when available (one warm-up run, output discarded, no shell in
# between so the shell's start-up is not timed); otherwise a plain loop.
# The command must exit 0 (hyperfine aborts otherwise, and so do we).
median_time() {
    local name=$1 runs=$2; shift 2
    if command -v hyperfine >/dev/null 2>&1; then
        local cmd; cmd=$(printf '%q ' "$@")
        hyperfine -N --style basic --warmup 1 --runs "$runs" \
            --export-json "$OUT/$name.hyperfine.json" -- "$cmd" >"$OUT/$name.hyperfine.log" 2>&1 \
            || { cat "$OUT/$name.hyperfine.log" >&2; die "timing '$name' failed"; }
        jq -r '.results[0].median' "$OUT/$name.hyperfine.json"
    else
        local i t0 t1
        "$@" >/dev/null # warm-up
        for ((i = 0; i < runs; i++)); do
            t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N)
            awk "BEGIN { print $t1 - $t0 }"
        done | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
    fi
}

# cpu_of NAME -> mean user+sys seconds per run from hyperfine's JSON, or n/a.
cpu_of() {
    local f="$OUT/$1.hyperfine.json"
    if [[ -r $f ]]; then jq -r '.results[0] | ((.user + .system) * 1000 | round / 1000)' "$f"; else echo n/a; fi
}

# ---------------------------------------------------------------------------
# Preconditions
# ---------------------------------------------------------------------------
[[ -r "$CORPUS" ]] || die "corpus not found: $CORPUS (set BENCH_CORPUS)"
[[ "$COPIES" =~ ^[1-9][0-9]*$ ]] || die "BENCH_COPIES must be a positive integer, got '$COPIES'"
command -v jq >/dev/null || die "jq is required (apt-get install -y jq)"
command -v cargo >/dev/null || die "cargo is required"
rm -rf "$OUT"   # no stale figures from an earlier run
mkdir -p "$DATA" "$OUT"

TIMER="loop of date +%s.%N"
command -v hyperfine >/dev/null && TIMER="hyperfine $(hyperfine --version | awk '{print $2}')"

# Peak RSS needs GNU time (the shell keyword `time` cannot report memory).
GNU_TIME=/usr/bin/time
if [[ ! -x $GNU_TIME ]] && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    log "installing GNU time (for peak RSS)"
    apt-get install -y time >/dev/null 2>&1 || true
fi
[[ -x $GNU_TIME ]] || { log "GNU time not available: peak RSS will be reported as n/a"; GNU_TIME=""; }

# ---------------------------------------------------------------------------
# Build first, so compile time never leaks into a measurement.
# ---------------------------------------------------------------------------
log "building jackstop (release)"
cargo build --release -p jackstop >&2
[[ -x "$JACKSTOP" ]] || die "binary not found at $JACKSTOP"
REV="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null || REV="$REV+dirty"

SRC_BYTES=$(stat -c %s "$CORPUS")
SRC_STAMP="$(stat -c '%s %Y' "$CORPUS") $CORPUS"

# ---------------------------------------------------------------------------
# Data sets (rebuilt only when the source file or BENCH_COPIES changed)
# ---------------------------------------------------------------------------
# Big tree: bench-data/tree/copy-01/kubeflow-copy-01.yaml ... Real copies, not hard
# links, so the kernel caches N distinct files as a real repository would.
if [[ "$(cat "$DATA/tree.stamp" 2>/dev/null)" != "$COPIES $SRC_STAMP" ]]; then
    log "creating $COPIES copies of $(basename "$CORPUS") under $TREE"
    rm -rf "$TREE" "$DATA/tree.stamp"
    width=$(( ${#COPIES} < 2 ? 2 : ${#COPIES} ))
    for ((i = 1; i <= COPIES; i++)); do
        n=$(printf "%0${width}d" "$i")
        mkdir -p "$TREE/copy-$n"
        cp "$CORPUS" "$TREE/copy-$n/kubeflow-copy-$n.yaml"
    done
    echo "$COPIES $SRC_STAMP" >"$DATA/tree.stamp"
fi

# Split tree: one file per YAML document, splitting on lines that are exactly `---`
# (the separator lines themselves are dropped; empty documents are not written).
if [[ "$(cat "$DATA/split.stamp" 2>/dev/null)" != "$SRC_STAMP" ]]; then
    log "splitting $(basename "$CORPUS") into one file per document under $SPLIT"
    rm -rf "$SPLIT" "$DATA/split.stamp"
    mkdir -p "$SPLIT"
    awk -v dir="$SPLIT" '
        function flush() { if (buf != "") { printf "%s", buf > sprintf("%s/doc-%04d.yaml", dir, ++n); close(sprintf("%s/doc-%04d.yaml", dir, n)) } buf = "" }
        /^---$/ { flush(); next }
        { buf = buf $0 "\n" }
        END { flush() }' "$CORPUS"
    echo "$SRC_STAMP" >"$DATA/split.stamp"
fi
SPLIT_FILES=$(find "$SPLIT" -type f -name '*.yaml' | wc -l)
TREE_BYTES=$(tree_bytes "$TREE")
SPLIT_BYTES=$(tree_bytes "$SPLIT")

# Warm the page cache for all inputs so every tool reads from memory and the
# figures measure parsing/analysis, not the disk.
cat "$CORPUS" "$TREE"/*/*.yaml "$SPLIT"/*.yaml >/dev/null

# ---------------------------------------------------------------------------
# 1. Single Kubeflow file
# ---------------------------------------------------------------------------
log "1/3 single file: $RUNS runs"
"$JACKSTOP" scan "$CORPUS" -f json --fail-on none >"$OUT/single.json"
SINGLE_OBJECTS=$(jq '.summary.inputs.objects' "$OUT/single.json")
SINGLE_FINDINGS=$(jq '.summary.findings' "$OUT/single.json")
SINGLE_S=$(median_time single "$RUNS" "$JACKSTOP" scan "$CORPUS" -f json --fail-on none)

# ---------------------------------------------------------------------------
# 2. Big tree of N copies
# ---------------------------------------------------------------------------
# One run under GNU time for peak RSS (it also checks the object count and serves
# as warm-up), then the timed runs.
log "2/3 tree of $COPIES copies ($(calc "$TREE_BYTES / 1e6" 0) MB): 1 RSS run + $TREE_RUNS timed runs"
if [[ -n $GNU_TIME ]]; then
    "$GNU_TIME" -f '%M %e %U %S' -o "$OUT/tree.time" "$JACKSTOP" scan "$TREE" -f json --fail-on none >"$OUT/tree.json"
    TREE_RSS_KB=$(awk '{ print $1 }' "$OUT/tree.time")
    # CPU time says how much work the scan is, independent of other load on the
    # machine; CPU / wall is the parallelism actually achieved (at most nproc).
    TREE_CPU_S=$(awk '{ printf "%.2f", $3 + $4 }' "$OUT/tree.time")
    TREE_PAR=$(awk '{ printf "%.2f", ($3 + $4) / $2 }' "$OUT/tree.time")
    TREE_MB_PER_CPU_S=$(calc "$TREE_BYTES / 1e6 / $TREE_CPU_S" 1)
    TREE_RSS_MB=$(calc "$TREE_RSS_KB * 1024 / 1e6" 1)
    TREE_RSS_RATIO=$(calc "$TREE_RSS_KB * 1024 / $TREE_BYTES" 3)
    RSS_VERDICT=$(pass_fail "$TREE_RSS_RATIO < $TARGET_RSS_RATIO")
else
    "$JACKSTOP" scan "$TREE" -f json --fail-on none >"$OUT/tree.json"
    TREE_RSS_MB=n/a TREE_RSS_RATIO=n/a RSS_VERDICT=n/a TREE_CPU_S=n/a TREE_PAR=n/a TREE_MB_PER_CPU_S=n/a
fi
TREE_OBJECTS=$(jq '.summary.inputs.objects' "$OUT/tree.json")
TREE_FILES=$(jq '.summary.inputs.files' "$OUT/tree.json")
[[ $TREE_OBJECTS == $((SINGLE_OBJECTS * COPIES)) ]] \
    || log "WARNING: tree scan saw $TREE_OBJECTS objects, expected $((SINGLE_OBJECTS * COPIES))"
TREE_S=$(median_time tree "$TREE_RUNS" "$JACKSTOP" scan "$TREE" -f json --fail-on none)
TREE_MBPS=$(calc "$TREE_BYTES / 1e6 / $TREE_S" 1)
# The foundation's job alone (exposure analysis only), for the cost of the miner analysis.
log "2/3 tree, exposure analysis only: $TREE_RUNS timed runs"
TREE_EXPO_S=$(median_time tree-exposure "$TREE_RUNS" "$JACKSTOP" scan "$TREE" -f json --fail-on none --analyser exposure)
TREE_EXPO_MBPS=$(calc "$TREE_BYTES / 1e6 / $TREE_EXPO_S" 1)
ALL_VS_EXPO=$(calc "$TREE_EXPO_S / $TREE_S" 2)
ALL_VS_EXPO_VERDICT=$(pass_fail "$ALL_VS_EXPO >= $TARGET_ALL_RATIO")

# ---------------------------------------------------------------------------
# 3. checkov vs jackstop on the split tree
# ---------------------------------------------------------------------------
log "3/3 split tree ($SPLIT_FILES files): jackstop $RUNS runs"
"$JACKSTOP" scan "$SPLIT" -f json --fail-on none >"$OUT/split.json"
SPLIT_OBJECTS=$(jq '.summary.inputs.objects' "$OUT/split.json")
SPLIT_S=$(median_time split "$RUNS" "$JACKSTOP" scan "$SPLIT" -f json --fail-on none)

CHECKOV_S=n/a CHECKOV_RESOURCES=n/a CHECKOV_FAILED=n/a SPEEDUP=n/a SPEEDUP_VERDICT=SKIPPED
CHECKOV_NOTE=""
setup_checkov() {
    # Reuse an existing venv if its checkov runs; otherwise create one.
    if "$VENV/bin/checkov" --version >/dev/null 2>&1; then return 0; fi
    command -v python3 >/dev/null || { CHECKOV_NOTE="python3 not found"; return 1; }
    log "creating $VENV and installing checkov from PyPI (one-off, ~30 s)"
    rm -rf "$VENV"
    python3 -m venv "$VENV" >"$OUT/venv.log" 2>&1 \
        || { CHECKOV_NOTE="python3 -m venv failed (see $OUT/venv.log)"; return 1; }
    "$VENV/bin/pip" install -q checkov >"$OUT/pip.log" 2>&1 \
        || { CHECKOV_NOTE="pip install checkov failed (see $OUT/pip.log)"; return 1; }
    "$VENV/bin/checkov" --version >/dev/null 2>&1 || { CHECKOV_NOTE="checkov does not start"; return 1; }
}
if [[ $SKIP_CHECKOV == 1 ]]; then
    CHECKOV_NOTE="skipped: BENCH_SKIP_CHECKOV=1"
elif ! setup_checkov; then
    CHECKOV_NOTE="skipped: $CHECKOV_NOTE"
fi
if [[ -z $CHECKOV_NOTE ]]; then
    CHECKOV_VERSION=$("$VENV/bin/checkov" --version 2>/dev/null | tail -1)
    log "3/3 split tree: checkov $CHECKOV_VERSION, 1 run (~20-30 s)"
    # One run; -o json adds only the report rendering and gives the resource count.
    # checkov exits 1 when it has findings, which is expected here.
    ck_rc=0
    t0=$(date +%s.%N)
    "$VENV/bin/checkov" -d "$SPLIT" --framework kubernetes --compact --quiet --skip-download -o json \
        >"$OUT/checkov.json" 2>"$OUT/checkov.stderr" || ck_rc=$?
    t1=$(date +%s.%N)
    # The report may be one object or a list of them (one per framework).
    if [[ $ck_rc -le 1 ]] && jq -e . "$OUT/checkov.json" >/dev/null 2>&1; then
        CHECKOV_S=$(calc "$t1 - $t0" 2)
        CHECKOV_RESOURCES=$(jq '[if type == "array" then .[] else . end | .summary.resource_count // 0] | add' "$OUT/checkov.json")
        CHECKOV_FAILED=$(jq '[if type == "array" then .[] else . end | .summary.failed // 0] | add' "$OUT/checkov.json")
        SPEEDUP=$(calc "$CHECKOV_S / $SPLIT_S" 1)
        SPEEDUP_VERDICT=$(pass_fail "$SPEEDUP >= $TARGET_SPEEDUP")
    else
        CHECKOV_NOTE="checkov failed (exit $ck_rc, see $OUT/checkov.stderr)"
        SPEEDUP_VERDICT=ERROR
    fi
else
    log "checkov $CHECKOV_NOTE"
fi

# ---------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------
SINGLE_MBPS=$(calc "$SRC_BYTES / 1e6 / $SINGLE_S" 1)
SPLIT_MBPS=$(calc "$SPLIT_BYTES / 1e6 / $SPLIT_S" 1)
SINGLE_VERDICT=$(pass_fail "$SINGLE_S < $TARGET_SINGLE_S")
MBPS_VERDICT=$(pass_fail "$TREE_MBPS >= $TARGET_MBPS")
TOTAL_S=$(calc "$(date +%s.%N) - $SCRIPT_START" 0)

{
    echo
    echo "================ jackstop scan benchmark ================"
    printf 'machine   : %s cores, %s, %s GiB RAM; timer: %s; warm page cache\n' \
        "$(nproc)" "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)" \
        "$(awk '/MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)" "$TIMER"
    if awk "BEGIN { exit !($LOAD_START > 0.5) }"; then
        printf 'WARNING   : load average was %s when the benchmark started: the machine was busy,\n' "$LOAD_START"
        printf '            wall times (and MB/s) are inflated; CPU time below is the steadier figure\n'
    else
        printf 'load      : %s at start (idle)\n' "$LOAD_START"
    fi
    printf 'jackstop  : %s (rev %s)\n' "$("$JACKSTOP" --version)" "$REV"
    printf 'corpus    : %s (%s MB, %s objects, %s findings)\n' \
        "$CORPUS" "$(calc "$SRC_BYTES / 1e6" 1)" "$SINGLE_OBJECTS" "$SINGLE_FINDINGS"
    echo
    echo "[1] single Kubeflow file"
    printf '    jackstop median of %s : %8.3f s  (%s MB/s; CPU %s s) target < %s s   %s\n' \
        "$RUNS" "$SINGLE_S" "$SINGLE_MBPS" "$(cpu_of single)" "$TARGET_SINGLE_S" "$SINGLE_VERDICT"
    echo "[2] tree of $COPIES copies: $TREE_FILES files, $(calc "$TREE_BYTES / 1e6" 1) MB, $TREE_OBJECTS objects"
    printf '    jackstop median of %s  : %8.3f s\n' "$TREE_RUNS" "$TREE_S"
    printf '    throughput           : %8s MB/s              target >= %s MB/s  %s\n' "$TREE_MBPS" "$TARGET_MBPS" "$MBPS_VERDICT"
    printf '    exposure only        : %8.3f s = %s MB/s; all analysers / exposure only = %s  target >= %s  %s\n' "$TREE_EXPO_S" "$TREE_EXPO_MBPS" "$ALL_VS_EXPO" "$TARGET_ALL_RATIO" "$ALL_VS_EXPO_VERDICT"
    printf '    CPU (user+sys, 1 run): %8s s = %s MB per CPU-second; parallelism %s of %s cores\n' "$TREE_CPU_S" "$TREE_MB_PER_CPU_S" "$TREE_PAR" "$(nproc)"
    printf '    peak RSS             : %8s MB = %sx input   target < %sx     %s\n' "$TREE_RSS_MB" "$TREE_RSS_RATIO" "$TARGET_RSS_RATIO" "$RSS_VERDICT"
    echo "[3] split tree: $SPLIT_FILES files, $(calc "$SPLIT_BYTES / 1e6" 1) MB"
    printf '    jackstop median of %s : %8.3f s  (%s MB/s; CPU %s s; %s objects)\n' "$RUNS" "$SPLIT_S" "$SPLIT_MBPS" "$(cpu_of split)" "$SPLIT_OBJECTS"
    if [[ $CHECKOV_S != n/a ]]; then
        printf '    checkov %s (1 run) : %8.2f s  (%s resources, %s failed checks)\n' \
            "$CHECKOV_VERSION" "$CHECKOV_S" "$CHECKOV_RESOURCES" "$CHECKOV_FAILED"
        printf '    checkov / jackstop   : %8sx                  target >= %sx     %s\n' "$SPEEDUP" "$TARGET_SPEEDUP" "$SPEEDUP_VERDICT"
    else
        printf '    checkov              : %s\n' "$CHECKOV_NOTE"
    fi
    echo
    printf 'total script time: %s s; details in %s\n' "$TOTAL_S" "$OUT"
    echo "========================================================="
} | tee "$OUT/summary.txt"

if [[ $STRICT == 1 ]]; then
    for v in "$SINGLE_VERDICT" "$MBPS_VERDICT" "$RSS_VERDICT" "$SPEEDUP_VERDICT" "$ALL_VS_EXPO_VERDICT"; do
        [[ $v == FAIL || $v == ERROR ]] && exit 1
    done
fi
exit 0
