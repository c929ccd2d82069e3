//! How long one review takes (reading the request included, and alone), per fixture, on the
//! real Kubeflow install's view, and the same with `Engine::walking_always`: Services and
//! workloads no controller made walk the whole view even where they are on no path (for other
//! reviews the two columns run the same code). The cost of a review of a workload or Service on
//! no path does not grow with the cluster. COPIES > 1 adds copies of the install's namespaced
//! objects in namespaces of their own, for a larger view:
//! `cargo run --release -p jackstop-admission --example review_cost [N=200] [COPIES=1] [NAME]`
//! (NAME: only the fixtures whose names contain it).

use jackstop_admission::{parse_review, ClusterState, Engine, Policy};
use jackstop_catalogue::Catalogue;
use std::time::{Duration, Instant};

fn main() {
    let arg = |i: usize, default: u32| -> u32 {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let (n, copies) = (arg(1, 200), arg(2, 1));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let corpus = root
        .join("../shared/corpus/kubeflow-platform")
        .display()
        .to_string();
    let (inputs, _) = jackstop_manifests::collect_inputs(&[corpus], &[]);
    let t = Instant::now();
    let install = jackstop_manifests::read_inputs(&inputs, &Default::default()).objects;
    let mut objects = install.clone();
    for k in 1..copies {
        for o in install.iter().filter(|o| o.namespace.is_some()) {
            let mut o = o.clone();
            let ns = format!("{}-copy{k}", o.effective_namespace());
            o.body["metadata"]["namespace"] = ns.clone().into();
            o.namespace = Some(ns);
            objects.push(o);
        }
    }
    let cat = Catalogue::builtin();
    let state = ClusterState::new(objects, cat);
    println!("view: {} objects, built in {:?}", state.len(), t.elapsed());
    let engine = Engine::new(cat);
    let walking = Engine::new(cat).walking_always();
    let policy = Policy::default();
    let dir = root.join("tests/fixtures/admission/reviews");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    // A third argument keeps only the fixtures whose names contain it (to profile one).
    if let Some(only) = std::env::args().nth(3) {
        names.retain(|p| p.file_name().unwrap().to_string_lossy().contains(&only));
    }
    let time = |body: &[u8], engine: &Engine| -> Duration {
        // Warmed up first: lazily built matchers and caches are not the review's cost.
        for _ in 0..n.min(20) {
            let req = parse_review(body).unwrap();
            std::hint::black_box(engine.review(&req, &policy, &state));
        }
        let t = Instant::now();
        for _ in 0..n {
            let req = parse_review(body).unwrap();
            std::hint::black_box(engine.review(&req, &policy, &state));
        }
        t.elapsed() / n
    };
    println!(
        "{:<40} {:>10} {:>16} {:>22}",
        "review", "ms", "reading it (ms)", "walking_always (ms)"
    );
    for p in names {
        let body = std::fs::read(&p).unwrap();
        let per = time(&body, &engine);
        let whole = time(&body, &walking);
        // The share of it that is reading the request.
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(parse_review(&body).unwrap());
        }
        let parse = t.elapsed() / n;
        println!(
            "{:<40} {:>10.3} {:>16.3} {:>22.3}",
            p.file_name().unwrap().to_string_lossy(),
            per.as_secs_f64() * 1e3,
            parse.as_secs_f64() * 1e3,
            whole.as_secs_f64() * 1e3
        );
    }
}
