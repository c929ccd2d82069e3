//! Benchmark (not a test): `jackstop scan --cluster` against the test API server holding N
//! objects (pods, deployments, Argo workflows, Kubeflow notebooks), side by side with the real
//! `kubectl get ... -A -o json` on the same server. Run through `scripts/bench-cluster.sh`.
//!
//! Usage: bench_cluster JACKSTOP_BINARY [OBJECTS=20000] [RUNS=5]

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::{json, Value};
use std::process::Command;
use std::time::Instant;
use support::{kubeconfig, ApiServer, ServerConfig};

fn objects(n: usize) -> Vec<Value> {
    let ns = |i: usize| format!("team-{}", i % 40);
    let container = |i: usize| {
        json!([{"name": "main", "image": format!("registry.example.com/app-{}:1.{}", i % 50, i % 7),
            "command": ["python", "train.py", "--epochs", "10"], "env": [{"name": "MODE", "value": "train"}],
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}])
    };
    (0..n)
        .map(|i| match i % 10 {
            0..=4 => json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("pod-{i}"), "namespace": ns(i), "labels": {"app": format!("a{}", i % 100)}},
                "spec": {"containers": container(i), "nodeName": "node-1"}, "status": {"phase": "Running"}}),
            5..=7 => json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": format!("deploy-{i}"), "namespace": ns(i)},
                "spec": {"selector": {"matchLabels": {"app": format!("d{i}")}},
                    "template": {"metadata": {"labels": {"app": format!("d{i}")}}, "spec": {"containers": container(i)}}}}),
            8 => json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                "metadata": {"name": format!("wf-{i}"), "namespace": ns(i)},
                "spec": {"entrypoint": "main", "templates": [{"name": "main", "container": container(i)[0].clone()}]}}),
            _ => json!({"apiVersion": "kubeflow.org/v1", "kind": "Notebook",
                "metadata": {"name": format!("nb-{i}"), "namespace": ns(i)},
                "spec": {"template": {"spec": {"containers": container(i)}}}}),
        })
        .collect()
}

/// (median wall seconds, peak RSS in MB of the last run) of a command, via GNU time.
fn measure(runs: usize, cmd: &[&str]) -> (f64, f64) {
    let mut walls = Vec::new();
    let mut rss = 0.0;
    for _ in 0..runs {
        let t0 = Instant::now();
        let out = Command::new("/usr/bin/time")
            .args(["-f", "%M"])
            .args(cmd)
            .output()
            .expect("GNU time (apt-get install time)");
        walls.push(t0.elapsed().as_secs_f64());
        assert!(
            out.status.code().is_some_and(|c| c <= 1),
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        rss = err
            .lines()
            .last()
            .and_then(|l| l.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0;
    }
    walls.sort_by(f64::total_cmp);
    (walls[walls.len() / 2], rss)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let jackstop = args
        .get(1)
        .expect("usage: bench_cluster JACKSTOP [OBJECTS] [RUNS]")
        .clone();
    let n: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let runs: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(5);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(ApiServer::start(ServerConfig {
        objects: objects(n),
        ..ServerConfig::default()
    }));
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&server.url, dir.path());
    let kc = kc.to_str().unwrap();
    let cache = dir.path().join("kubectl-cache");
    let cache = cache.to_str().unwrap();

    let (js, js_rss) = measure(
        runs,
        &[
            &jackstop,
            "scan",
            "--cluster",
            "--kubeconfig",
            kc,
            "-f",
            "json",
            "--fail-on",
            "none",
            "-o",
            "/dev/null",
        ],
    );
    let kinds = "pods,deployments,workflows.argoproj.io,notebooks.kubeflow.org";
    let (kc_s, kc_rss) = measure(
        runs,
        &[
            "kubectl",
            "--kubeconfig",
            kc,
            "--cache-dir",
            cache,
            "get",
            kinds,
            "-A",
            "-o",
            "json",
        ],
    );
    println!(
        "objects served      : {n} (pods, deployments, workflows, notebooks in 40 namespaces)"
    );
    println!("jackstop --cluster  : {js:.3} s median of {runs}, peak RSS {js_rss:.0} MB (target < 3 s, < 300 MB)");
    println!("kubectl get -o json : {kc_s:.3} s median of {runs}, peak RSS {kc_rss:.0} MB (only reads; no analysis)");
    println!("kubectl / jackstop  : {:.2}x", kc_s / js);
    server.stop();
}
