//! `jackstop webhook --cluster`, the real binary, with its cluster view fed by a watch on the
//! test API server (the real Kubeflow install, its gateway's authentication removed, as in
//! the operators' clusters), and reviews sent by the real kubectl (client-go over TLS, as the
//! API server calls a webhook): the seed patch is denied; once the authentication objects are
//! created in the cluster, the watch brings them into the view and the same patch is allowed;
//! the campaign's miner is denied; the policy file is re-read when it changes (a broken one
//! keeps the one in force); SIGTERM exits 0.

mod common;
use common::{certificate, http_get, kubectl, webhook_kubeconfig};

#[path = "../../cluster/tests/support/mod.rs"]
mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{kubeconfig, objects_from, ApiServer, ServerConfig};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const AUTH: [&str; 3] = [
    "istio-ingressgateway-require-jwt",
    "istio-ingressgateway-oauth2-proxy",
    "dex-jwt",
];

fn is_auth(o: &Value) -> bool {
    o["metadata"]["namespace"] == "istio-system"
        && AUTH.contains(&o["metadata"]["name"].as_str().unwrap_or(""))
        && o["kind"] != "Service"
}

struct Webhook {
    child: Child,
    url: String,
    metrics: String,
    /// What it said on stderr until it listened.
    said: Vec<String>,
    /// What it says after.
    lines: std::sync::mpsc::Receiver<String>,
}

/// A failed test must not leave the server running.
impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Webhook {
    /// Sends it SIGTERM, as the kubelet does.
    fn terminate(&self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
    }
}

/// `jackstop webhook` on loopback (both ports chosen by the system) with the certificate and
/// `args`, once it has said where it listens.
fn launch(cert: &Path, key: &Path, args: &[&std::ffi::OsStr]) -> Webhook {
    let mut child = Command::new(env!("CARGO_BIN_EXE_jackstop"))
        .args(["webhook", "--listen", "127.0.0.1:0"])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            eprintln!("webhook: {line}");
            let _ = tx.send(line);
        }
    });
    let (mut url, mut metrics, mut said) = (String::new(), String::new(), Vec::new());
    let started = Instant::now();
    while url.is_empty() || metrics.is_empty() {
        let line = rx
            .recv_timeout(Duration::from_secs(60).saturating_sub(started.elapsed()))
            .expect("the webhook says where it listens");
        if let Some(rest) = line.strip_prefix("jackstop: admission webhook on ") {
            url = rest.trim().trim_end_matches('/').to_string();
        }
        if let Some(rest) = line.strip_prefix("jackstop: metrics on ") {
            metrics = rest.split(',').next().unwrap().to_string();
        }
        said.push(line);
    }
    Webhook {
        child,
        url,
        metrics,
        said,
        lines: rx,
    }
}

fn start(dir: &Path, server: &ApiServer, cert: &Path, key: &Path) -> Webhook {
    let kc = kubeconfig(&server.url, dir);
    std::fs::write(dir.join("policy.yaml"), "mode: enforce\n").unwrap();
    let (decisions, policy) = (dir.join("decisions.jsonl"), dir.join("policy.yaml"));
    let args: [&std::ffi::OsStr; 9] = [
        "--cluster".as_ref(),
        "-f".as_ref(),
        "jsonl".as_ref(),
        "-o".as_ref(),
        decisions.as_os_str(),
        "--kubeconfig".as_ref(),
        kc.as_os_str(),
        "--policy".as_ref(),
        policy.as_os_str(),
    ];
    launch(cert, key, &args)
}

/// Sends a review with the real kubectl; the AdmissionReview answered.
fn review(config: &Path, name: &str) -> Value {
    let body = repo().join(format!("tests/fixtures/admission/reviews/{name}.json"));
    let out = kubectl(&[
        "--kubeconfig".as_ref(),
        config.as_os_str(),
        "create".as_ref(),
        "--raw".as_ref(),
        "/validate".as_ref(),
        "-f".as_ref(),
        body.as_os_str(),
    ]);
    serde_json::from_slice(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_patch_is_judged_on_the_watched_cluster() {
    let install = repo().join("../shared/corpus/kubeflow-platform/kubeflow-example.yaml");
    // The install has Istio objects in several versions (v1alpha3, v1beta1, v1); a real API
    // server serves each in every version by conversion, the stand-in only in the one it was
    // given: they are given as v1, the version Istio 1.22+ stores.
    let everything = objects_from(&[install.as_path()])
        .into_iter()
        .map(|mut o| {
            let api = o["apiVersion"].as_str().unwrap_or("").to_string();
            if let Some((group, _)) = api.split_once('/').filter(|(g, _)| g.ends_with("istio.io")) {
                o["apiVersion"] = format!("{group}/v1").into();
            }
            o
        })
        .collect::<Vec<Value>>();
    let (auth, rest): (Vec<Value>, Vec<Value>) = everything.into_iter().partition(is_auth);
    assert_eq!(auth.len(), 3);
    let server = ApiServer::start(ServerConfig {
        objects: rest,
        ..ServerConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let mut w = start(dir.path(), &server, &cert, &key);

    // Ready once the view is built.
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready_url = w.metrics.replace("/metrics", "/readyz");
    while !http_get(&ready_url).starts_with("HTTP/1.1 200") {
        assert!(Instant::now() < deadline, "the view never became ready");
        std::thread::sleep(Duration::from_millis(100));
    }

    // No token is checked by the webhook; kubectl only needs one so as not to prompt.
    let config = webhook_kubeconfig(dir.path(), "webhook.kubeconfig", &w.url, &cert, "unused");

    let denied = review(&config, "seed-gateway-loadbalancer");
    assert_eq!(denied["response"]["allowed"], false, "{denied}");
    let m = denied["response"]["status"]["message"].as_str().unwrap();
    assert!(m.contains("JS-EXP-001"), "{m}");
    let miner = review(&config, "miner-deployment-cpu");
    assert_eq!(miner["response"]["allowed"], false);

    // The authentication arrives in the cluster; the watch brings it into the view.
    for o in auth {
        server.apply(o);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let again = review(&config, "seed-gateway-loadbalancer");
        if again["response"]["allowed"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the view never saw the auth: {again}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The policy file changes: audit everywhere. The miner is now allowed (and logged).
    std::fs::write(dir.path().join("policy.yaml"), "mode: audit\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let again = review(&config, "miner-deployment-cpu");
        if again["response"]["allowed"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the policy was never reloaded: {again}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // A broken policy keeps the one in force.
    std::fs::write(dir.path().join("policy.yaml"), "mode: maybe\n").unwrap();
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        review(&config, "miner-deployment-cpu")["response"]["allowed"],
        true
    );

    let metrics = http_get(&w.metrics);
    assert!(
        metrics.contains("jackstop_admission_cluster_rebuilds_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"jackstop_admission_decisions_total{operation="CREATE",decision="denied"} 1"#
        ),
        "{metrics}"
    );

    w.terminate();
    assert_eq!(w.child.wait().unwrap().code(), Some(0));
    server.stop();

    // The decision log, written in full before the process ended: a line per decision with
    // findings (the allowed patch had none), each finding as the reports write it and with its
    // mode last.
    let log = std::fs::read_to_string(dir.path().join("decisions.jsonl")).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let denied: Vec<&Value> = lines.iter().filter(|l| l["decision"] == "denied").collect();
    assert!(denied.len() >= 2, "{log}");
    for l in &lines {
        assert_eq!(l["event"], "admission");
        assert!(l["observedAt"].is_string() && l["uid"].is_string(), "{l}");
        for f in l["findings"].as_array().unwrap() {
            let keys: Vec<&String> = f.as_object().unwrap().keys().collect();
            assert_eq!(keys.last().map(|k| k.as_str()), Some("mode"), "{f}");
            assert!(f["rule"].is_string() && f["severity"].is_string(), "{f}");
        }
    }
    assert!(
        denied.iter().any(|l| l["resource"]["kind"] == "Deployment"
            && l["findings"][0]["mode"] == "enforce"),
        "{log}"
    );
}

/// Without a cluster view, a policy that exempts namespaces by label is told to apply to none
/// (no namespace's labels are known), rather than silently doing nothing.
#[test]
fn label_exemptions_without_a_view_are_called_out() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "exempt:\n  namespaceLabels: {jackstop.dev/exempt: 'true'}\n",
    )
    .unwrap();
    let w = launch(&cert, &key, &["--policy".as_ref(), policy.as_os_str()]);
    let said = &w.said;
    assert!(
        said.iter()
            .any(|l| l.contains("exempts namespaces by label") && l.contains("applies to none")),
        "{said:#?}"
    );
}

/// SIGTERM with a review in flight (its body half sent, by the real `openssl s_client`): the
/// review is still answered once its body is in, and then the process exits 0; `/healthz` and
/// `/readyz` answer 200 before.
#[test]
fn sigterm_answers_the_review_in_flight_then_exits() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let mut w = launch(&cert, &key, &[]);
    let (url, metrics, rx) = (w.url.clone(), w.metrics.clone(), &w.lines);
    let base = metrics.trim_end_matches("/metrics");
    for path in ["healthz", "readyz"] {
        let answer = http_get(&format!("{base}/{path}"));
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
    }
    let addr = url.trim_start_matches("https://");
    let body =
        std::fs::read(repo().join("tests/fixtures/admission/reviews/benign-deployment.json"))
            .unwrap();
    let mut client = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-connect",
            addr,
            "-servername",
            "localhost",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut to = client.stdin.take().unwrap();
    write!(
        to,
        "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    let half = body.len() / 2;
    to.write_all(&body[..half]).unwrap();
    to.flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    w.terminate();
    let started = Instant::now();
    loop {
        let line = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        if line.contains("SIGTERM") {
            break;
        }
    }
    assert!(
        w.child.try_wait().unwrap().is_none(),
        "it waits for the review in flight"
    );
    to.write_all(&body[half..]).unwrap();
    to.flush().unwrap();
    let mut answer = String::new();
    client
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut answer)
        .unwrap();
    drop(to);
    let _ = client.wait();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"allowed\":true"), "{answer}");
    assert_eq!(w.child.wait().unwrap().code(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
