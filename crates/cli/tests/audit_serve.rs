//! `jackstop audit serve`, the real binary, fed by the real kubectl: kubectl reads the same
//! kind of kubeconfig the API server's `--audit-webhook-config-file` is (server URL, CA, token)
//! and POSTs with client-go, as the API server's webhook does. The whole campaign fixture,
//! sent in EventList batches, gives the findings `jackstop audit FILE` gives; a wrong token,
//! an old API version and missing flags are refused with a clear message; metrics count what
//! came; SIGTERM ends it with exit 0 after the last findings.

mod common;
use common::{certificate, http_get, webhook_kubeconfig};

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture() -> PathBuf {
    repo().join("tests/fixtures/audit/kubeflow-campaign.jsonl")
}

struct Serve {
    child: Child,
    url: String,
    metrics: String,
    stderr: std::sync::mpsc::Receiver<String>,
}

/// A failed test must not leave the server running.
impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn jackstop() -> Command {
    Command::new(env!("CARGO_BIN_EXE_jackstop"))
}

/// Starts the server on free ports and waits for it to say where it is.
fn serve(dir: &Path, cert: &Path, key: &Path, tokens: &Path) -> Serve {
    let mut child = jackstop()
        .args([
            "audit",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "-f",
            "jsonl",
        ])
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .arg("--token-file")
        .arg(tokens)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            eprintln!("jackstop: {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut url, mut metrics) = (String::new(), String::new());
    let started = Instant::now();
    while url.is_empty() || metrics.is_empty() {
        let line = rx
            .recv_timeout(Duration::from_secs(30).saturating_sub(started.elapsed()))
            .expect("the server says where it listens");
        if let Some(rest) = line.strip_prefix("jackstop: audit webhook backend on ") {
            url = rest
                .split(' ')
                .next()
                .unwrap()
                .trim_end_matches('/')
                .to_string();
        }
        if let Some(rest) = line.strip_prefix("jackstop: metrics on ") {
            metrics = rest.split(',').next().unwrap().to_string();
        }
    }
    Serve {
        child,
        url,
        metrics,
        stderr: rx,
    }
}

fn kubectl(kubeconfig: &Path, path: &str, body: &Path) -> std::process::Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["create", "--raw", path, "-f"])
        .arg(body)
        .output()
        .expect("kubectl runs")
}

/// Findings counted by rule and resource name.
fn tally(findings: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for f in findings {
        let key = format!(
            "{} {}/{}",
            f["rule"].as_str().unwrap(),
            f["resource"]["kind"].as_str().unwrap_or(""),
            f["resource"]["name"].as_str().unwrap_or("")
        );
        *m.entry(key).or_default() += 1;
    }
    m
}

#[test]
fn kubectl_posts_the_campaign_and_the_findings_match_the_file_reading() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "webhook-token-1\n").unwrap();
    let mut s = serve(dir.path(), &cert, &key, &tokens);
    assert!(s.url.starts_with("https://127.0.0.1:"), "{}", s.url);

    let config = webhook_kubeconfig(
        dir.path(),
        "webhook.kubeconfig",
        &s.url,
        &cert,
        "webhook-token-1",
    );
    let text = std::fs::read_to_string(fixture()).unwrap();
    let items: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut sent = 0;
    for (i, chunk) in items.chunks(120).enumerate() {
        let body = dir.path().join(format!("batch-{i}.json"));
        let list =
            json!({"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":chunk});
        std::fs::write(&body, serde_json::to_vec(&list).unwrap()).unwrap();
        let out = kubectl(&config, "/audit", &body);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let o: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(o["events"], chunk.len());
        sent += chunk.len();
    }
    assert_eq!(sent, 750);

    // A wrong token: kubectl says it is not logged in; an old version: the server's reason.
    let wrong = webhook_kubeconfig(dir.path(), "wrong.kubeconfig", &s.url, &cert, "guess");
    let out = kubectl(&wrong, "/audit", &dir.path().join("batch-0.json"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a valid bearer token is required"), "{err}");
    let old = dir.path().join("old.json");
    std::fs::write(
        &old,
        r#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1beta1","items":[]}"#,
    )
    .unwrap();
    let out = kubectl(&config, "/audit", &old);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("BadRequest") && err.contains("v1beta1"),
        "{err}"
    );

    let metrics = http_get(&s.metrics);
    assert!(
        metrics.contains("jackstop_audit_events_total 750"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"jackstop_audit_requests_total{code="401"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"jackstop_audit_requests_total{code="400"} 1"#),
        "{metrics}"
    );
    let ready = http_get(&s.metrics.replace("/metrics", "/readyz"));
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");

    // SIGTERM: the open rules close, the last findings come, exit 0.
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut stdout = String::new();
    s.child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = s.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let summary: Vec<String> = s.stderr.try_iter().collect();
    assert!(
        summary.iter().any(|l| l.contains("750 events read")),
        "{summary:?}"
    );

    let served: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v.get("rule").is_some())
        .collect();
    let file = jackstop()
        .args(["audit", "-f", "json", "--fail-on", "none"])
        .arg(fixture())
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&file.stdout).unwrap();
    let read = report["findings"].as_array().unwrap();
    assert!(!read.is_empty());
    assert_eq!(tally(&served), tally(read), "serve and file reading agree");
}

#[test]
fn refuses_to_start_without_authentication_or_with_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let out = jackstop()
        .args(["audit", "serve", "--listen", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs authentication"), "{err}");

    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "t\n").unwrap();
    let out = jackstop()
        .args(["audit", "serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&key)
        .arg("--tls-key")
        .arg(&key)
        .arg("--token-file")
        .arg(&tokens)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tls.key: no CERTIFICATE"), "{err}");

    let empty = dir.path().join("empty-tokens");
    std::fs::write(&empty, "\n").unwrap();
    let out = jackstop()
        .args(["audit", "serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .arg("--token-file")
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("empty-tokens: no token in it"), "{err}");
}
