//! Judging reviews in a loop, without the server, for scripts/bench-judge.sh: what a review
//! costs jackstop-admission (reading it, the engine's verdict, the answer) as the server pays
//! it, with the core's caches cold. Between reviews the server's thread sleeps, and on a shared
//! machine its code and data are then evicted from the core's caches; a review judged in a
//! tight loop cost 2 to 5 times less than one in the server (26 to 57 µs against 124 to 142). So each review here is preceded
//! by writing a buffer larger than the core's cache (`--flush-mb`, default 4).
//!
//! ```sh
//! cargo run --release -p jackstop --example judge -- [--rounds N] [--timed] [REVIEW.json ...]
//! ```
//!
//! Without `--timed` it judges `--rounds` rounds of the reviews and prints nothing: run it
//! under `valgrind --tool=callgrind --cache-sim=yes --toggle-collect='*judge_one*'` to count
//! instructions and cache misses of the judging alone (deterministic, unlike times on a shared
//! machine). With `--timed` it prints each review's time to read and to judge, cold and hot.
//! The reviews default to the mix of scripts/bench-webhook.sh, and the cluster view is the
//! Kubeflow install, as there. (jackstop-admission's `review_cost` example times each fixture hot,
//! on views of growing size; this one is about the caches.)
//!
//! Without `--timed` it prints how many reviews it judged, for the script's per-review figures.

/// mimalloc, as the binary has it, counting allocations and reallocations (the table's `allocs`
/// column: each touches memory the caches may not hold, so their number is a cost of its own).
struct Counting;

static ALLOCATIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: forwarded as given.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: forwarded as given.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: forwarded as given.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed)
}

use jackstop_admission::{parse_review, response, ClusterState, Engine, Policy};
use jackstop_catalogue::Catalogue;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MIX: &[&str] = &[
    "benign-pod",
    "benign-deployment",
    "benign-pod",
    "miner-deployment-cpu",
    "benign-pod",
    "service-port-added",
    "service-label-update",
    "benign-pod",
    "benign-deployment",
    "miner-pod",
    "benign-pod",
];

/// One review as the server judges it: read, judged, answered.
#[inline(never)]
fn judge_one(body: &[u8], engine: &Engine, policy: &Policy, state: &ClusterState) {
    judge(body, engine, policy, state)
}

/// Judging a review before the counted rounds: what the first reviews build once in a
/// server's life (patterns compiled on first use, the regex set's lazy DFA states) is built
/// here, outside `judge_one`, so that the counts are those of a server that has run a while.
#[inline(never)]
fn warm_one(body: &[u8], engine: &Engine, policy: &Policy, state: &ClusterState) -> usize {
    judge(body, engine, policy, state);
    // Not the same code as judge_one, which the linker would otherwise fold into this.
    body.len()
}

#[inline(always)]
fn judge(body: &[u8], engine: &Engine, policy: &Policy, state: &ClusterState) {
    let req = parse_review(body).expect("a review");
    let verdict = engine.review(&req, policy, state);
    let answer = serde_json::to_vec(&response(&req, &verdict).into_review()).expect("JSON");
    std::hint::black_box((verdict, answer));
}

/// Writes every cache line of `junk`: what the core's caches held before is evicted.
fn flush(junk: &mut [u8], round: usize) {
    let mut i = round % 64;
    while i < junk.len() {
        junk[i] = junk[i].wrapping_add(1);
        i += 64;
    }
    std::hint::black_box(&*junk);
}

fn main() {
    let mut rounds = 20usize;
    let mut flush_mb = 4usize;
    let mut timed = false;
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--rounds N")
            }
            "--flush-mb" => {
                flush_mb = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--flush-mb M")
            }
            "--timed" => timed = true,
            _ => paths.push(a.into()),
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if paths.is_empty() {
        let dir = root.join("tests/fixtures/admission/reviews");
        paths = MIX.iter().map(|n| dir.join(format!("{n}.json"))).collect();
    }
    // As the API server sends them: JSON without whitespace.
    let bodies: Vec<(String, Vec<u8>)> = paths
        .iter()
        .map(|p| {
            let v: serde_json::Value = serde_json::from_slice(
                &std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let name = p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (name, serde_json::to_vec(&v).expect("JSON"))
        })
        .collect();
    let install = root
        .join("../shared/corpus/kubeflow-platform")
        .display()
        .to_string();
    let (inputs, _) = jackstop_manifests::collect_inputs(&[install], &[]);
    let objects = jackstop_manifests::read_inputs(&inputs, &Default::default()).objects;
    let catalogue = Catalogue::builtin();
    let state = ClusterState::new(objects, catalogue);
    let engine = Engine::new(catalogue);
    let policy = Policy::default();
    let mut junk = vec![0u8; flush_mb << 20];
    for (_, body) in &bodies {
        std::hint::black_box(warm_one(body, &engine, &policy, &state));
    }
    if !timed {
        for round in 0..rounds {
            for (_, body) in &bodies {
                flush(&mut junk, round);
                judge_one(body, &engine, &policy, &state);
            }
        }
        println!("{}", rounds * bodies.len());
        return;
    }
    // Each review alone: read and judged with the caches cold, then again at once (hot).
    println!(
        "review                   bytes   read cold  judge cold    read hot   judge hot  allocs read+judge"
    );
    let mut seen = std::collections::BTreeSet::new();
    for (name, body) in &bodies {
        if !seen.insert(name) {
            continue;
        }
        let mut t = [Duration::ZERO; 4];
        let mut allocs = [0usize; 2];
        for round in 0..rounds {
            flush(&mut junk, round);
            for hot in [0, 2] {
                let (a, start) = (allocations(), Instant::now());
                let req = parse_review(body).expect("a review");
                t[hot] += start.elapsed();
                let (b, start) = (allocations(), Instant::now());
                std::hint::black_box(engine.review(&req, &policy, &state));
                t[hot + 1] += start.elapsed();
                allocs = [b - a, allocations() - b];
            }
        }
        let per = |d: Duration| d.as_secs_f64() * 1e6 / rounds as f64;
        println!(
            "{name:<24} {:>5} {:>8.1} us {:>8.1} us {:>8.1} us {:>8.1} us  {:>6} + {}",
            body.len(),
            per(t[0]),
            per(t[1]),
            per(t[2]),
            per(t[3]),
            allocs[0],
            allocs[1]
        );
    }
}
