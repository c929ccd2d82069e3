//! Helpers for the end-to-end tests: run the real binary, parse its JSON, find test data.
#![allow(dead_code)]

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs the real kubectl (installed on every machine of this project, CI's included) and
/// returns its standard output, failing the test with its standard error when it fails.
pub fn kubectl<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Vec<u8> {
    let out = Command::new("kubectl")
        .args(args)
        .output()
        .expect("kubectl is installed (see ../shared/docs/environment.md)");
    assert!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `../shared/corpus` next to the repository, where the real third-party data lives.
pub fn corpus() -> PathBuf {
    repo_root().join("../shared/corpus")
}

pub fn jackstop(args: &[&str], stdin: Option<&[u8]>) -> Run {
    jackstop_in(&repo_root(), args, stdin)
}

pub fn jackstop_in(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_jackstop"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn jackstop");
    if let Some(data) = stdin {
        let mut s = child.stdin.take().unwrap();
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = s.write_all(&data);
        });
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `jackstop scan ARGS -f json --fail-on none`, parsed.
pub fn scan_json(args: &[&str]) -> Value {
    let mut all = vec!["scan", "-f", "json", "--fail-on", "none"];
    all.extend_from_slice(args);
    let r = jackstop(&all, None);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    r.json()
}

pub fn findings(doc: &Value) -> Vec<Value> {
    doc["findings"].as_array().cloned().unwrap_or_default()
}

/// (rule, severity, resource name) of each finding.
pub fn summary(doc: &Value) -> Vec<(String, String, String)> {
    findings(doc)
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
                f["resource"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The real Kubeflow install, split into documents (on the `---` lines kustomize prints).
pub fn kubeflow_documents() -> Vec<String> {
    let text = std::fs::read_to_string(corpus().join("kubeflow-platform/kubeflow-example.yaml"))
        .expect("the real Kubeflow install in ../shared/corpus");
    text.split("\n---\n").map(str::to_string).collect()
}

pub fn is_doc(doc: &str, kind: &str, ns: &str, name: &str) -> bool {
    doc.contains(&format!("\nkind: {kind}\n"))
        && doc.contains(&format!("  name: {name}\n  namespace: {ns}\n"))
}

/// A self-signed server certificate for 127.0.0.1 and localhost and its key, as files in `dir`.
pub fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let c =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert, c.cert.pem()).unwrap();
    std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

/// A kubeconfig of the shape the API server's webhook configurations are (server URL, CA,
/// bearer token), for the real kubectl to call a jackstop server with.
pub fn webhook_kubeconfig(dir: &Path, name: &str, url: &str, ca: &Path, token: &str) -> PathBuf {
    let p = dir.join(name);
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: jackstop\n  cluster:\n    server: {url}\n    certificate-authority: {}\nusers:\n- name: kube-apiserver\n  user:\n    token: {token}\ncontexts:\n- name: webhook\n  context:\n    cluster: jackstop\n    user: kube-apiserver\ncurrent-context: webhook\n",
        ca.display()
    );
    std::fs::write(&p, text).unwrap();
    p
}

/// A plain HTTP GET (a metrics or health endpoint): the whole answer, status line first.
pub fn http_get(url: &str) -> String {
    use std::io::Read;
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}
