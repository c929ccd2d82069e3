//! Benchmark (not a test): `jackstop scan --cluster` against the test API server holding N
//! objects (pods, deployments, Argo workflows, Kubeflow notebooks), side by side with the real
//! `kubectl get ... -A -o json` on the same server. Run through `scripts/bench-cluster.sh`.
//!
//! Usage: bench_cluster JACKSTOP_BINARY [OBJECTS=20000] [RUNS=5]

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::{json, Value};
use std::process::{Command, Stdio};
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

    // The watch: time to ready, idle CPU, burst latency; kubectl's watch idles beside it.
    server.set_bookmark_interval(Some(std::time::Duration::from_secs(60)));
    let idle = std::time::Duration::from_secs(20);
    let mut watch = Command::new(&jackstop)
        .args([
            "watch",
            "--cluster",
            "--listen",
            "none",
            "-f",
            "jsonl",
            "--kubeconfig",
            kc,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("jackstop watch");
    let t0 = Instant::now();
    let lines = lines_of(watch.stdout.take().unwrap());
    wait_line(&lines, |v| v["event"] == "ready");
    let ready = t0.elapsed().as_secs_f64();
    // kubectl watches one kind per process: one each, side by side.
    let kbytes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut kubectls: Vec<std::process::Child> = kinds
        .split(',')
        .map(|kind| {
            let mut c = Command::new("kubectl")
                .args([
                    "--kubeconfig",
                    kc,
                    "--cache-dir",
                    cache,
                    "get",
                    kind,
                    "-A",
                    "-w",
                    "-o",
                    "json",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("kubectl get -w");
            let mut out = c.stdout.take().unwrap();
            let counter = kbytes.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                while let Ok(n) = std::io::Read::read(&mut out, &mut buf) {
                    if n == 0 {
                        break;
                    }
                    counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                }
            });
            c
        })
        .collect();
    // kubectl has listed when its output stops growing.
    let mut last = usize::MAX;
    while kbytes.load(std::sync::atomic::Ordering::Relaxed) != last {
        last = kbytes.load(std::sync::atomic::Ordering::Relaxed);
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
    for c in kubectls.iter_mut() {
        assert!(
            c.try_wait().unwrap().is_none(),
            "kubectl get -w exited early"
        );
    }
    let kc_cpu = |ks: &[std::process::Child]| ks.iter().map(|c| cpu_seconds(c.id())).sum::<f64>();
    let (js0, kc0) = (cpu_seconds(watch.id()), kc_cpu(&kubectls));
    std::thread::sleep(idle);
    let js_idle = (cpu_seconds(watch.id()) - js0) / idle.as_secs_f64() * 100.0;
    let kc_idle = (kc_cpu(&kubectls) - kc0) / idle.as_secs_f64() * 100.0;
    // The campaign's burst: six miner Deployments in six namespaces at once.
    let t1 = Instant::now();
    for i in 0..6 {
        server.apply(miner(&format!("team-{i}"), &format!("tf-train-{i}")));
    }
    wait_line(&lines, |v| v["event"] == "new" && v["rule"] == "JS-MIN-001");
    let first_miner = t1.elapsed().as_secs_f64();
    wait_line(&lines, |v| v["event"] == "new" && v["rule"] == "JS-BUR-001");
    let burst = t1.elapsed().as_secs_f64();
    let js_rss = peak_rss_mb(watch.id());
    let kc_rss: f64 = kubectls.iter().map(|c| peak_rss_mb(c.id())).sum();
    let _ = Command::new("kill")
        .args(["-TERM", &watch.id().to_string()])
        .status();
    let stopped = watch.wait().expect("jackstop watch exit");
    for mut c in kubectls {
        let _ = c.kill();
        let _ = c.wait();
    }
    println!("jackstop watch      : ready (listed and analysed) in {ready:.2} s; idle CPU {js_idle:.2}% of a core over {}s; peak RSS {js_rss:.0} MB (target idle < 1%)", idle.as_secs());
    println!("kubectl get -w (x4) : idle CPU {kc_idle:.2}% of a core over the same {}s; peak RSS {kc_rss:.0} MB summed (one process per kind; only prints)", idle.as_secs());
    println!("burst of 6 miners   : first miner reported after {first_miner:.2} s, the burst after {burst:.2} s");
    println!("SIGTERM             : exit code {:?}", stopped.code());
    server.stop();
}

fn miner(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{
                "name": "tensorflow", "image": "tensorflow/tensorflow:latest-gpu",
                "command": ["/tmp/xmrig", "-o", "stratum+tcp://pool.example-xmr.invalid:3333", "--donate-level", "1"]}]}}}})
}

/// Lines of JSON from a child's stdout, on a thread.
fn lines_of(out: std::process::ChildStdout) -> std::sync::mpsc::Receiver<Value> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(out)) {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str(&line) {
                if tx.send(v).is_err() {
                    break;
                }
            }
        }
    });
    rx
}

fn wait_line(rx: &std::sync::mpsc::Receiver<Value>, f: impl Fn(&Value) -> bool) {
    loop {
        let v = rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("a line from jackstop watch within 120 s");
        if f(&v) {
            return;
        }
    }
}

/// User + system CPU seconds of a process so far (/proc/PID/stat, in clock ticks of 1/100 s).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat (utime, stime) are the 12th and 13th after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident memory so far (VmHWM), in MB.
fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}
