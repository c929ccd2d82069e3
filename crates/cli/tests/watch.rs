//! `jackstop watch --cluster`, the real binary against the test API server: findings of the
//! cluster as it was are reported once as `existing`; miners created while watching arrive
//! once each, in order, as `new`, and so does the burst they make; a dropped connection and an
//! expired watch (410 Gone, then a relist) report nothing twice; a deletion resolves; metrics
//! and health answer; SIGTERM stops it cleanly.

#[path = "../../cluster/tests/support/mod.rs"]
mod support;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};
use support::{kubeconfig, objects_from, ApiServer, ServerConfig};

fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Kubeflow door of the bundled incident, without the attacker's objects.
fn open_door() -> Vec<Value> {
    let dir = repo().join("examples/kubeflow-incident/kubeflow");
    let files = [
        dir.join("dashboard-apps.yaml"),
        dir.join("istio-ingressgateway.yaml"),
        dir.join("kubeflow-gateway.yaml"),
        dir.join("profiles.yaml"),
    ];
    let paths: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    objects_from(&paths)
}

/// A TensorFlow Deployment that mines (synthetic pool and wallet).
fn miner(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "tensorflow",
                    "image": "tensorflow/tensorflow:latest",
                    "command": ["/tmp/xmrig"],
                    "args": ["-o", "stratum+tcp://pool.example-xmr.invalid:3333",
                             "-u", "4SYNTHETICWALLETxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                             "-a", "rx/0", "--donate-level", "1"]
                }]}
            }
        }
    })
}

/// A benign training Deployment (a near miss: TensorFlow, no miner).
fn trainer(ns: &str, name: &str) -> Value {
    let mut d = miner(ns, name);
    d["spec"]["template"]["spec"]["containers"][0]["command"] = json!(["python"]);
    d["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["train.py", "--epochs", "10"]);
    d
}

struct Watching {
    child: Child,
    lines: Receiver<Value>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    seen: Vec<Value>,
}

impl Watching {
    fn start(server: &ApiServer, dir: &Path) -> Watching {
        let kc = kubeconfig(&server.url, dir);
        let mut child = Command::new(env!("CARGO_BIN_EXE_jackstop"))
            .args(["watch", "--cluster", "--kubeconfig"])
            .arg(&kc)
            .args(["--listen", "127.0.0.1:0", "--settle-ms", "200"])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn jackstop watch");
        let (tx, rx) = channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
        Watching {
            child,
            lines: rx,
            stderr,
            seen: Vec::new(),
        }
    }

    /// Lines until one satisfies `done` (returned), failing after `within`.
    fn until(&mut self, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if done(&v) {
                        return v;
                    }
                }
                Err(_) => panic!(
                    "no such line within {within:?}; lines so far:\n{}\nstderr:\n{}",
                    self.seen
                        .iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join("\n"),
                    self.stderr.lock().unwrap()
                ),
            }
        }
    }

    /// Every line that arrives within `quiet`.
    fn drain(&mut self, quiet: Duration) -> Vec<Value> {
        let mut got = Vec::new();
        while let Ok(v) = self.lines.recv_timeout(quiet) {
            self.seen.push(v.clone());
            got.push(v);
        }
        got
    }

    fn metrics_url(&self) -> String {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let err = self.stderr.lock().unwrap().clone();
            if let Some(at) = err.find("metrics on http://") {
                let rest = &err[at + "metrics on http://".len()..];
                let addr = rest.split('/').next().unwrap();
                return addr.to_string();
            }
            assert!(Instant::now() < end, "no metrics address on stderr:\n{err}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A failed test must not leave its watcher running.
impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET on loopback: (status, body).
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the metrics port");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (code, body.to_string())
}

fn is_finding(v: &Value, event: &str, rule: &str, name: &str) -> bool {
    v["event"] == event && v["rule"] == rule && v["resource"]["name"] == name
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -TERM failed");
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let end = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("jackstop watch did not stop within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miners_created_while_watching_arrive_once_each_in_order() {
    let server = ApiServer::start(ServerConfig {
        objects: open_door(),
        ..ServerConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut w = Watching::start(&server, dir.path());

    // The cluster as it was: the open door, reported as existing, then `ready`.
    let ready = w.until(Duration::from_secs(30), |v| v["event"] == "ready");
    let existing: Vec<&Value> = w.seen.iter().filter(|v| v["event"] == "existing").collect();
    assert!(
        existing
            .iter()
            .any(|v| v["rule"] == "JS-EXP-001" && v["resource"]["name"] == "istio-ingressgateway"),
        "the open gateway is an existing finding: {existing:?}"
    );
    assert!(
        existing.iter().all(|v| v["category"] == "exposure"),
        "nothing but the door before the attack: {existing:?}"
    );
    assert_eq!(ready["findings"].as_u64().unwrap() as usize, existing.len());

    let addr = w.metrics_url();
    assert_eq!(get(&addr, "/healthz").0, 200);
    assert_eq!(get(&addr, "/readyz").0, 200);

    // A benign trainer: nothing.
    server.apply(trainer("kubeflow-user-example-com", "resnet"));
    let quiet = w.drain(Duration::from_millis(1500));
    assert!(quiet.is_empty(), "a benign trainer is quiet: {quiet:?}");

    // The campaign: miners one after another in two profile namespaces.
    let miners = [
        ("kubeflow-user-example-com", "tf-train-1"),
        ("kubeflow-user-team-b", "tf-train-2"),
        ("kubeflow-user-example-com", "tf-train-3"),
    ];
    for (ns, name) in miners {
        server.apply(miner(ns, name));
        w.until(Duration::from_secs(15), |v| {
            is_finding(v, "new", "JS-MIN-001", name)
        });
    }
    // The connections drop, cleanly then cut: the watch resumes where it was, and the next
    // miner still arrives.
    let watches = server.watchers();
    assert!(watches > 0, "jackstop is watching");
    server.drop_watches();
    assert!(server.wait_for_watchers(watches, Duration::from_secs(10)));
    server.sever_watches();
    server.apply(miner("kubeflow-user-team-b", "tf-train-4"));
    w.until(Duration::from_secs(20), |v| {
        is_finding(v, "new", "JS-MIN-001", "tf-train-4")
    });
    // Four workloads in two namespaces within minutes: the burst.
    w.until(Duration::from_secs(15), |v| {
        v["event"] == "new" && v["rule"] == "JS-BUR-001"
    });

    // The watch expires (410 Gone): jackstop lists again, and reports nothing twice.
    server.expire_watches();
    server.apply(miner("kubeflow-user-team-b", "tf-train-5"));
    w.until(Duration::from_secs(20), |v| {
        is_finding(v, "new", "JS-MIN-001", "tf-train-5")
    });
    assert!(
        server
            .requests()
            .iter()
            .filter(|r| r.contains("/deployments?") && !r.contains("watch="))
            .count()
            >= 2,
        "the deployments were listed again after 410: {:?}",
        server.requests()
    );

    // A miner deleted: resolved.
    assert!(server.delete(
        "apps/v1",
        "Deployment",
        Some("kubeflow-user-example-com"),
        "tf-train-1"
    ));
    w.until(Duration::from_secs(15), |v| {
        is_finding(v, "resolved", "JS-MIN-001", "tf-train-1")
    });
    w.drain(Duration::from_millis(1500));

    // Each finding was reported new (or existing) once; a growing burst is told through its
    // new members, not by sending the earlier ones again.
    assert!(
        !w.seen
            .iter()
            .any(|v| v["event"] == "changed" && v["rule"] == "JS-BUR-001"),
        "{:?}",
        w.seen
    );
    let mut reported = std::collections::HashMap::new();
    for v in w
        .seen
        .iter()
        .filter(|v| v["event"] == "new" || v["event"] == "existing")
    {
        let key = format!(
            "{} {} {} {}",
            v["rule"], v["resource"], v["location"]["field"], v["title"]
        );
        *reported.entry(key).or_insert(0) += 1;
    }
    let twice: Vec<_> = reported.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "reported twice: {twice:?}\n{}",
        w.seen
            .iter()
            .map(|v| format!(
                "{} {} {} {}",
                v["event"], v["rule"], v["resource"]["name"], v["message"]
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let news: Vec<&str> = w
        .seen
        .iter()
        .filter(|v| v["event"] == "new" && v["rule"] == "JS-MIN-001")
        .map(|v| v["resource"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        news,
        [
            "tf-train-1",
            "tf-train-2",
            "tf-train-3",
            "tf-train-4",
            "tf-train-5"
        ],
        "in the order they were created"
    );

    let errors: Vec<&Value> = w.seen.iter().filter(|v| v["event"] == "error").collect();
    assert!(
        errors.is_empty(),
        "one broken connection is not an error: {errors:?}"
    );

    // The metrics say the same.
    let (code, metrics) = get(&addr, "/metrics");
    assert_eq!(code, 200);
    assert!(
        // the deleted miner, and its place in the burst
        metrics.contains("jackstop_finding_events_total{event=\"resolved\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("jackstop_relists_total{resource=\"deployments.apps\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("jackstop_findings{"), "{metrics}");

    // SIGTERM: a clean stop.
    sigterm(&w.child);
    let status = wait_exit(&mut w.child, Duration::from_secs(10));
    assert_eq!(
        status.code(),
        Some(0),
        "stderr:\n{}",
        w.stderr.lock().unwrap()
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_kind_is_a_warning_and_the_rest_is_watched() {
    let server = ApiServer::start(ServerConfig {
        objects: open_door(),
        forbidden: vec!["configmaps".into()],
        ..ServerConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut w = Watching::start(&server, dir.path());
    w.until(Duration::from_secs(30), |v| v["event"] == "ready");
    let errors: Vec<&Value> = w.seen.iter().filter(|v| v["event"] == "error").collect();
    assert!(
        errors
            .iter()
            .any(|e| e["message"].as_str().unwrap().contains("forbidden")),
        "{errors:?}"
    );
    server.apply(miner("kubeflow-user-team-b", "tf-train-9"));
    w.until(Duration::from_secs(15), |v| {
        is_finding(v, "new", "JS-MIN-001", "tf-train-9")
    });
    sigterm(&w.child);
    assert_eq!(
        wait_exit(&mut w.child, Duration::from_secs(10)).code(),
        Some(0)
    );
}

#[test]
fn an_unreachable_cluster_exits_2_with_a_message() {
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&format!("http://127.0.0.1:{port}"), dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_jackstop"))
        .args([
            "watch",
            "--cluster",
            "--listen",
            "none",
            "--request-timeout",
            "3",
            "--kubeconfig",
        ])
        .arg(&kc)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("does not answer discovery"), "{stderr}");
}

#[test]
fn watch_needs_cluster() {
    let out = Command::new(env!("CARGO_BIN_EXE_jackstop"))
        .args(["watch"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cluster"));
}
