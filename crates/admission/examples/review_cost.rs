//! How long one review takes (reading the request included, and alone), per fixture, on the real Kubeflow install's view:
//! `cargo run --release -p jackstop-admission --example review_cost [N]`.

use jackstop_admission::{parse_review, ClusterState, Engine, Policy};
use jackstop_catalogue::Catalogue;
use std::time::Instant;

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let corpus = root
        .join("../shared/corpus/kubeflow-platform")
        .display()
        .to_string();
    let (inputs, _) = jackstop_manifests::collect_inputs(&[corpus], &[]);
    let t = Instant::now();
    let objects = jackstop_manifests::read_inputs(&inputs, &Default::default()).objects;
    let cat = Catalogue::builtin();
    let state = ClusterState::new(objects, cat);
    println!("view: {} objects, built in {:?}", state.len(), t.elapsed());
    let engine = Engine::new(cat);
    let policy = Policy::default();
    let dir = root.join("tests/fixtures/admission/reviews");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        let body = std::fs::read(&p).unwrap();
        let t = Instant::now();
        for _ in 0..n {
            let req = parse_review(&body).unwrap();
            std::hint::black_box(engine.review(&req, &policy, &state));
        }
        let per = t.elapsed() / n;
        // The share of it that is reading the request.
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(parse_review(&body).unwrap());
        }
        let parse = t.elapsed() / n;
        println!(
            "{:<40} {:>10.3} ms (reading the request {:.3} ms)",
            p.file_name().unwrap().to_string_lossy(),
            per.as_secs_f64() * 1e3,
            parse.as_secs_f64() * 1e3
        );
    }
}
