#!/usr/bin/env bash
# Admission webhook benchmark (a benchmark, not a test): `jackstop webhook` with the real
# Kubeflow install as its cluster view, loaded over TLS on loopback at RATE requests/s for
# SECONDS by crates/serve/examples/load.rs (keep-alive connections, as the API server keeps
# them), with a mix of AdmissionReviews from tests/fixtures/admission, sent as the API server
# sends them (JSON without whitespace; objects with their managedFields, the API server's
# defaults and, for Pods, what the admission plugins before webhooks add: a ReplicaSet's Pod is
# 3.7 KB; before 2026-11-27 the fixtures had none of it and were about a third as long, so
# earlier figures are not comparable): Pods a ReplicaSet makes (5 in 11), Deployments benign
# and mining (3), a miner Pod (1), and changes to the centraldashboard Service (2), one to its
# spec, one to its labels only (no way in, and no walk of this view looks for it: neither walks
# the view). Reports latency
# percentiles (overall and per second; as the generator sees each call, and as the network does,
# by kernel timestamps), errors and the server's memory and CPU, with how
# steady the machine's CPU was just before and after (scripts/cpu-steadiness.py): on a shared
# 2-core machine, episodes in which the CPU runs at half speed or less make the tail.
# Where the calls over 2 ms were is told too: in stalls (three or more slow calls in a row, as
# when the machine's CPU slows down for a while and the server falls behind) or alone.
# FLOOR: unless FLOOR=0, the same load is then sent to two floors, each printed beside the
# webhook's figures with their ratio: jackstop's own HTTPS stack answering a fixed review without
# judging it (crates/serve/examples/floor.rs: what the stack costs, and so what judging costs),
# and nginx (when installed: apt-get install nginx-light) on the same certificate, one worker
# process, answering every review with a fixed "allowed" AdmissionReview and reading nothing: the
# floor this machine sets for any TLS server at this rate.
# Usage: [THREADS=N] [PIN=1] [FLOOR=0] scripts/bench-webhook.sh [RATE=1000] [SECONDS=60] [CONNECTIONS=8]
# BODIES="a.json b.json": another mix of reviews. THREADS: the webhook's --threads (its default when unset). PIN=1: the webhook on CPU 0 and
# the generator on CPU 1 (taskset), so that neither preempts the other.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rate="${1:-1000}"; seconds="${2:-60}"; conns="${3:-8}"
command -v openssl >/dev/null || { echo "openssl is required" >&2; exit 2; }
# One build for both: built apart, each rebuilds the crates they share for the other's features.
# The dist profile (Cargo.toml: fat LTO), as the webhook is built to run in production.
cargo build --profile dist -p jackstop -p jackstop-serve --bins --example load --example floor >&2
target="${CARGO_TARGET_DIR:-$PWD/target}/dist"
work=$(mktemp -d); npid=""
trap 'kill "$pid" $npid 2>/dev/null || true; rm -rf "$work"' EXIT
# A CA and a serving certificate it signs, as cert-manager makes them in deploy/webhook.
ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
openssl req -x509 $ec -days 1 -subj /CN=bench-ca -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
openssl req $ec -subj /CN=localhost -keyout "$work/tls.key" -out "$work/tls.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$work/ext"
openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial -days 1 \
  -extfile "$work/ext" -out "$work/tls.crt" 2>/dev/null
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free); mport=$(free)
server_cpu=(); gen_cpu=()
if [[ "${PIN:-0}" == 1 ]]; then server_cpu=(taskset -c 0); gen_cpu=(taskset -c 1); fi
threads=(); [[ -n "${THREADS:-}" ]] && threads=(--threads "$THREADS")
"${server_cpu[@]}" "$target/jackstop" webhook "${threads[@]}" --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$mport" \
  --tls-cert "$work/tls.crt" --tls-key "$work/tls.key" \
  --objects ../shared/corpus/kubeflow-platform -f jsonl -o "$work/decisions.jsonl" 2>"$work/stderr" &
pid=$!
for _ in $(seq 100); do grep -q "admission webhook on" "$work/stderr" 2>/dev/null && break; sleep 0.1; done
grep -q "admission webhook on" "$work/stderr" || { cat "$work/stderr" >&2; exit 1; }
r=tests/fixtures/admission/reviews
bodies=("$r/benign-pod.json" "$r/benign-deployment.json" "$r/benign-pod.json" "$r/miner-deployment-cpu.json"
        "$r/benign-pod.json" "$r/service-port-added.json" "$r/service-label-update.json" "$r/benign-pod.json"
        "$r/benign-deployment.json" "$r/miner-pod.json" "$r/benign-pod.json")
[[ -n "${BODIES:-}" ]] && read -r -a bodies <<< "$BODIES"
steady_before=$(python3 scripts/cpu-steadiness.py 5)
idle_kb=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
idle_cpu=$(awk '{print ($14+$15)/100}' "/proc/$pid/stat")
"${gen_cpu[@]}" "$target/examples/load" --url "https://localhost:$port/validate" --ca "$work/ca.crt" \
  --rate "$rate" --seconds "$seconds" --connections "$conns" "${bodies[@]}" > "$work/load.json"
steady_after=$(python3 scripts/cpu-steadiness.py 5)
peak_kb=$(awk '/VmHWM/{print $2}' "/proc/$pid/status")
end_kb=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
curl -s "http://127.0.0.1:$mport/metrics" > "$work/metrics.txt"
cpu=$(awk '{print ($14+$15)/100}' "/proc/$pid/stat")
IDLE_CPU="$idle_cpu" STEADY_BEFORE="$steady_before" STEADY_AFTER="$steady_after" python3 - "$work/load.json" "$idle_kb" "$peak_kb" "$cpu" "$rate" "$seconds" "$work/decisions.jsonl" "$end_kb" "$work/metrics.txt" <<'PY'
import json, os, sys, re
load = json.load(open(sys.argv[1])); idle, peak, cpu = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
rate, secs, end = sys.argv[5], sys.argv[6], int(sys.argv[8])
# Server-side time (first byte of the request to the answer), from the histogram's buckets.
buckets = [(float(m.group(1)), int(m.group(2))) for m in re.finditer(r'jackstop_admission_request_seconds_bucket\{le="([0-9.e+-]+)"\} (\d+)', open(sys.argv[9]).read())]
total = buckets[-1][1] if buckets else 0
def q(p):
    for le, n in buckets:
        if n >= p * total:
            return le * 1000
    return float("nan")
l = load["latencyMs"]; sv = load["serviceMs"]
ok = load["answered"].get("200", 0)
denied = sum(v["denied"] for v in load["deniedByBody"].values())
decisions = sum(1 for _ in open(sys.argv[7]))
print(f"load                : {load['sent']} reviews at {rate}/s for {secs} s over TLS (achieved {load['ratePerSecond']:.0f}/s)")
print(f"answers             : {load['answered']} , transport errors {load['transportErrors']}")
print(f"latency ms (call)   : p50 {sv['p50']:.3f}  p90 {sv['p90']:.3f}  p99 {sv['p99']:.3f}  p99.9 {sv['p999']:.3f}  max {sv['max']:.3f} (written to the connection -> answer; target p99 < 2 ms)")
print(f"latency ms (due)    : p50 {l['p50']:.3f}  p90 {l['p90']:.3f}  p99 {l['p99']:.3f}  p99.9 {l['p999']:.3f}  max {l['max']:.3f} (from when it was due: queueing and the generator's delays included)")
w = load["wireMs"]
print(f"latency ms (wire)   : p50 {w['p50']:.3f}  p90 {w['p90']:.3f}  p99 {w['p99']:.3f}  p99.9 {w['p999']:.3f}  max {w['max']:.3f} (write system call -> the answer's arrival in the generator's socket, kernel timestamps: the call without the generator's delays in reading it; {w['timed']} calls timed)")
ws = load["wireP99BySecondMs"]
print(f"seconds at wire p99 < 2ms: {sum(1 for x in ws if x < 2.0)} of {len(ws)} (worst {max(ws):.2f} ms)")
secs = load["p99BySecondMs"]
print(f"seconds at p99 < 2ms: {sum(1 for x in secs if x < 2.0)} of {len(secs)} (the call p99 of each second; worst {max(secs):.2f} ms)")
st = load["stalls"]
print(f"calls over {st['slowMs']:g} ms     : {st['slowCallsInStalls'] + st['slowCallsAlone']} (wire), {st['slowCallsInStalls']} of them in {st['stalls']} stalls ({st['runOfAtLeast']} or more in a row, by send time; the longest {st['longestMs']:.0f} ms from its first call to its last answer), {st['slowCallsAlone']} alone")
print(f"server-side time ms : p50 <= {q(0.5):.3f}  p99 <= {q(0.99):.3f}  p99.9 <= {q(0.999):.3f} (histogram bucket bounds)")
print(f"server memory       : {idle/1024:.0f} MB before the load, {end/1024:.0f} MB after it, high-water {peak/1024:.0f} MB (reading the 12 MB install at start) (target < 50 MB)")
busy = cpu - float(os.environ["IDLE_CPU"])
print(f"server CPU          : {busy:.1f} s under the load ({busy / max(load['sent'], 1) * 1e6:.0f} us a review; {cpu:.1f} s with the start)")
print(f"denied              : {denied} (the miner Deployments and Pods), {decisions} decisions logged")
print(os.environ["STEADY_BEFORE"]); print(os.environ["STEADY_AFTER"].replace("cpu steadiness     ", "  after the load    "))
for body, v in sorted(load["deniedByBody"].items()):
    c = load["serviceMsByBody"].get(body, {})
    print(f"  {body.split('/')[-1]:<28} sent {v['sent']:>6} denied {v['denied']:>6}  call p50 {c.get('p50', 0):.3f} p99 {c.get('p99', 0):.3f} ms")
PY

[[ "${FLOOR:-1}" == 0 ]] && exit 0
kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true

# The stack's own floor: jackstop's HTTPS server (the same rustls, hyper, axum and tokio
# thread) answering a fixed review without judging it (crates/serve/examples/floor.rs). Its
# CPU beside the webhook's says what the stack costs a review and what judging does.
sport=$(free)
"${server_cpu[@]}" "$target/examples/floor" --listen "127.0.0.1:$sport" --tls-cert "$work/tls.crt" --tls-key "$work/tls.key" 2>"$work/floor.stderr" &
npid=$!
for _ in $(seq 50); do grep -q "floor on" "$work/floor.stderr" 2>/dev/null && break; sleep 0.1; done
grep -q "floor on" "$work/floor.stderr" || { echo "stack floor         : did not start:"; cat "$work/floor.stderr"; exit 0; }
"${gen_cpu[@]}" "$target/examples/load" --url "https://localhost:$sport/validate" --ca "$work/ca.crt" \
  --rate "$rate" --seconds "$seconds" --connections "$conns" "${bodies[@]}" > "$work/stack.json"
scpu=$(awk '{print ($14+$15)/100}' "/proc/$npid/stat")
steady_stack=$(python3 scripts/cpu-steadiness.py 5)
wus=$(awk -v c="$cpu" -v i="$idle_cpu" -v n="$((rate * seconds))" 'BEGIN {print (c - i) / n * 1e6}')
python3 scripts/floor-report.py "$work/load.json" "$work/stack.json" \
  "stack floor (jackstop's HTTPS server, fixed answer, same load)" webhook/stack "$scpu" "$wus"
echo "${steady_stack/cpu steadiness     /  after the stack   }"
kill "$npid" 2>/dev/null || true; wait "$npid" 2>/dev/null || true; npid=""

# The floor: nginx on the same certificate and machine, under the same load, doing no work.
command -v nginx >/dev/null || { echo "floor               : nginx not installed (apt-get install nginx-light), not measured"; exit 0; }
nport=$(free)
mkdir -p "$work/ngx"
cat > "$work/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $work/ngx/nginx.pid;
error_log $work/ngx/error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $work/ngx/body; proxy_temp_path $work/ngx/proxy;
  fastcgi_temp_path $work/ngx/fcgi; uwsgi_temp_path $work/ngx/uwsgi; scgi_temp_path $work/ngx/scgi;
  server {
    listen 127.0.0.1:$nport ssl;
    ssl_certificate $work/tls.crt; ssl_certificate_key $work/tls.key;
    ssl_protocols TLSv1.3;
    keepalive_requests 10000000; keepalive_timeout 300s;
    client_max_body_size 4m;
    location = /validate {
      default_type application/json;
      return 200 '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"","allowed":true}}';
    }
  }
}
NGX
"${server_cpu[@]}" nginx -c "$work/nginx.conf" -e "$work/ngx/error.log" 2>"$work/ngx/stderr" &
npid=$!
for _ in $(seq 50); do curl -sk -o /dev/null "https://127.0.0.1:$nport/validate" -d '{}' && break; sleep 0.1; done
curl -sk -o /dev/null "https://127.0.0.1:$nport/validate" -d '{}' || { echo "floor               : nginx did not start:"; cat "$work/ngx/stderr" "$work/ngx/error.log" 2>/dev/null; exit 0; }
"${gen_cpu[@]}" "$target/examples/load" --url "https://localhost:$nport/validate" --ca "$work/ca.crt" \
  --rate "$rate" --seconds "$seconds" --connections "$conns" "${bodies[@]}" > "$work/floor.json"
ncpu=$(for c in $(pgrep -P "$npid"); do awk '{print ($14+$15)/100}' "/proc/$c/stat"; done | awk '{s+=$1} END {print s+0}')
steady_floor=$(python3 scripts/cpu-steadiness.py 5)
python3 scripts/floor-report.py "$work/load.json" "$work/floor.json" \
  "floor (nginx, fixed answer, same load; its worker process)" jackstop/nginx "$ncpu"
echo "${steady_floor/cpu steadiness     /  after the floor   }"
