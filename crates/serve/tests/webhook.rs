//! The admission webhook over real TLS on loopback, with the AdmissionReview fixtures shaped
//! as the API server sends them: the seed patch and the campaign's miners denied (with the uid
//! echoed and a 403 the API server passes on), warn and audit modes, dry runs judged alike,
//! a policy swapped while serving, and the bad inputs (malformed JSON, another apiVersion, a
//! 10 MB object, a slow client, no SNI) refused with a clear 4xx and never allowed.

mod support;

use axum_server::tls_rustls::RustlsConfig;
use jackstop_admission::{ClusterState, Engine, Policy, Verdict};
use jackstop_catalogue::Catalogue;
use jackstop_serve::admission::{self, DecisionLog, Webhook, WebhookMetrics, WebhookSettings};
use jackstop_serve::tls;
use kube::core::admission::AdmissionRequest;
use kube::core::DynamicObject;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{Client, Pki};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn review(name: &str) -> Vec<u8> {
    std::fs::read(
        repo()
            .join("tests/fixtures/admission/reviews")
            .join(format!("{name}.json")),
    )
    .unwrap()
}

#[derive(Default)]
struct Decisions(Mutex<Vec<(String, bool)>>);

impl DecisionLog for Decisions {
    fn decided(&self, req: &AdmissionRequest<DynamicObject>, v: &Verdict, _: f64) {
        self.0.lock().unwrap().push((req.name.clone(), v.allowed));
    }
}

struct Running {
    addr: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    webhook: Webhook,
    log: Arc<Decisions>,
}

/// The real Kubeflow install's objects.
fn kubeflow_install() -> Vec<jackstop_core::Object> {
    corpus_objects("kubeflow-platform")
}

/// The Kubeflow install with nothing authenticating in front of its gateway (the operators'
/// clusters): the gateway Service itself is ClusterIP until the seed patch.
fn kubeflow_without_auth() -> ClusterState {
    let objects = kubeflow_install().into_iter().filter(|o| {
        !matches!(
            o.name.as_str(),
            "istio-ingressgateway-require-jwt" | "istio-ingressgateway-oauth2-proxy" | "dex-jwt"
        )
    });
    ClusterState::new(objects, Catalogue::builtin())
}

async fn start(pki: &Pki, state: ClusterState, settings: WebhookSettings) -> Running {
    let rustls = RustlsConfig::from_config(tls::server_config(&pki.tls_files(false)).unwrap());
    let log = Arc::new(Decisions::default());
    let webhook = Webhook::new(
        Engine::new(Catalogue::builtin()),
        Policy::default(),
        state,
        WebhookMetrics::new(),
        log.clone(),
        settings,
    );
    let (addr, handle, _) = support::serve(admission::router(webhook.clone()), rustls);
    Running {
        addr,
        handle,
        webhook,
        log,
    }
}

fn client(pki: &Pki) -> Client {
    Client {
        trust: Some(pki.ca.clone()),
        sni: true,
        ..Client::default()
    }
}

const JSON: &str = "Content-Type: application/json";

/// POSTs a review; the AdmissionReview answered.
async fn post(cl: &Client, addr: SocketAddr, body: &[u8]) -> (u16, Value) {
    let r = cl
        .request(addr, "POST", "/validate?timeout=10s", &[JSON], body)
        .await
        .unwrap();
    let v = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    (r.status, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_patch_and_the_miners_are_denied_over_tls() {
    let pki = Pki::new();
    let run = start(&pki, kubeflow_without_auth(), WebhookSettings::default()).await;
    let cl = client(&pki);
    for (name, allowed) in [
        ("seed-gateway-loadbalancer", false),
        ("seed-gateway-nodeport", false),
        ("miner-deployment-cpu", false),
        ("miner-deployment-gpu", false),
        ("miner-deployment-dry-run", false),
        ("miner-notebook", false),
        ("miner-workflow", false),
        ("notebook-command-changed", false),
        ("miner-scaled-to-zero", true),
        ("miner-finalizer-removed", true),
        ("miner-deployment-delete", true),
        ("benign-deployment", true),
    ] {
        let body = review(name);
        let sent: Value = serde_json::from_slice(&body).unwrap();
        let (status, answer) = post(&cl, run.addr, &body).await;
        assert_eq!(status, 200, "{name}: {answer}");
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(answer["kind"], "AdmissionReview");
        let r = &answer["response"];
        assert_eq!(
            r["uid"], sent["request"]["uid"],
            "{name}: the uid is echoed"
        );
        assert_eq!(r["allowed"], allowed, "{name}: {r}");
        if !allowed {
            assert_eq!(r["status"]["code"], 403, "{name}");
            let m = r["status"]["message"].as_str().unwrap();
            assert!(m.starts_with("jackstop denied"), "{m}");
            assert!(m.contains("Safe way: "), "{m}");
        }
    }
    let log = run.log.0.lock().unwrap().clone();
    assert_eq!(log.len(), 12);
    run.handle.shutdown();

    // The gateway already reachable from outside, one layer of authentication left (the JWT
    // the gateway requires, the oauth2-proxy policy gone): deleting that layer is denied;
    // deleting what is already gone, or the RequestAuthentication the policy still needs, is not.
    let run = start(&pki, kubeflow_open_one_layer(), WebhookSettings::default()).await;
    for (name, allowed) in [
        ("delete-require-jwt", false),
        ("delete-oauth2-proxy-policy", true),
        ("delete-dex-jwt", true),
    ] {
        let (status, answer) = post(&cl, run.addr, &review(name)).await;
        assert_eq!(status, 200, "{name}: {answer}");
        assert_eq!(answer["response"]["allowed"], allowed, "{name}: {answer}");
        if !allowed {
            let m = answer["response"]["status"]["message"].as_str().unwrap();
            assert!(m.contains("JS-EXP-"), "{m}");
        }
    }
    run.handle.shutdown();
}

/// The Kubeflow install with its gateway a LoadBalancer and only the JWT layer in front.
fn kubeflow_open_one_layer() -> ClusterState {
    let objects = kubeflow_install()
        .into_iter()
        .filter(|o| {
            !(o.kind == "AuthorizationPolicy" && o.name == "istio-ingressgateway-oauth2-proxy")
        })
        .map(|mut o| {
            if o.kind == "Service" && o.name == "istio-ingressgateway" {
                o.body["spec"]["type"] = "LoadBalancer".into();
            }
            o
        });
    ClusterState::new(objects, Catalogue::builtin())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warn_and_audit_modes_and_a_policy_swapped_while_serving() {
    let pki = Pki::new();
    let run = start(&pki, ClusterState::empty(), WebhookSettings::default()).await;
    let cl = client(&pki);
    let body = review("miner-deployment-cpu");
    let (_, a) = post(&cl, run.addr, &body).await;
    assert_eq!(a["response"]["allowed"], false);

    let known = |r: &str| Catalogue::builtin().rules.get(r).is_some();
    // The user's namespace in warn: allowed, with a warning kubectl prints.
    run.webhook.set_policy(
        Policy::parse(
            "namespaces:\n  - match: 'kubeflow-user-*'\n    mode: warn\n",
            "p.yaml",
            known,
        )
        .unwrap(),
    );
    let (_, a) = post(&cl, run.addr, &body).await;
    assert_eq!(a["response"]["allowed"], true, "{a}");
    let w = a["response"]["warnings"][0].as_str().unwrap();
    assert!(w.starts_with("jackstop JS-MIN-001 (critical): "), "{w}");
    assert!(w.len() <= 256);

    // Audit: allowed, silent to the user, logged.
    run.webhook
        .set_policy(Policy::parse("mode: audit\n", "p.yaml", known).unwrap());
    let (_, a) = post(&cl, run.addr, &body).await;
    assert_eq!(a["response"]["allowed"], true);
    assert!(
        a["response"].get("warnings").is_none_or(Value::is_null),
        "{a}"
    );

    // Exempt namespace: allowed without a look.
    run.webhook.set_policy(
        Policy::parse(
            "exempt:\n  namespaces: [kubeflow-user-example-com]\n",
            "p.yaml",
            known,
        )
        .unwrap(),
    );
    let (_, a) = post(&cl, run.addr, &body).await;
    assert_eq!(a["response"]["allowed"], true);
    run.handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_a_clear_4xx_and_never_an_allow() {
    let pki = Pki::new();
    let run = start(
        &pki,
        ClusterState::empty(),
        WebhookSettings {
            request_timeout: Duration::from_secs(1),
            ..WebhookSettings::default()
        },
    )
    .await;
    let cl = client(&pki);
    let check = |status: u16, body: &Value, want: u16, says: &str| {
        assert_eq!(status, want, "{body}");
        assert_eq!(body["kind"], "Status", "{body}");
        let m = body["message"].as_str().unwrap();
        assert!(m.contains(says), "{m}");
        assert!(
            body.get("response").is_none(),
            "no AdmissionReview, so no allow"
        );
    };
    let (s, b) = post(&cl, run.addr, b"{\"apiVersion\": \"admission.k8s.io/v1\", ").await;
    check(s, &b, 400, "not an AdmissionReview");
    let old =
        json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}});
    let (s, b) = post(&cl, run.addr, old.to_string().as_bytes()).await;
    check(s, &b, 400, "admission.k8s.io/v1beta1");
    let no_request = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"});
    let (s, b) = post(&cl, run.addr, no_request.to_string().as_bytes()).await;
    check(s, &b, 400, "without a request");

    // A 10 MB object (a miner's payload in an argument): over the 8 MiB limit, refused.
    let mut big: Value = serde_json::from_slice(&review("miner-deployment-cpu")).unwrap();
    big["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["args"] =
        json!(["x".repeat(10 << 20)]);
    let big = serde_json::to_vec(&big).unwrap();
    let (s, b) = post(&cl, run.addr, &big).await;
    check(s, &b, 413, "larger than");

    // Just under the limit, the miner in a 7 MB argument is still read and denied.
    let mut large: Value = serde_json::from_slice(&review("miner-deployment-cpu")).unwrap();
    let args = &mut large["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["args"];
    let miner = args[0].as_str().unwrap().to_string();
    args[0] = json!(format!("{}{miner}", " ".repeat(7 << 20)));
    let (s, b) = post(&cl, run.addr, &serde_json::to_vec(&large).unwrap()).await;
    assert_eq!(s, 200);
    assert_eq!(
        b["response"]["allowed"], false,
        "{}",
        b["response"]["status"]
    );

    // A slow client: the headers, a little of the body, then nothing.
    let r = cl
        .request(
            run.addr,
            "POST",
            "/validate",
            &[JSON, "Content-Length: 4000"],
            b"{\"apiVersion\"",
        )
        .await
        .unwrap();
    assert_eq!(r.status, 408, "{}", r.body);

    let r = cl
        .request(
            run.addr,
            "POST",
            "/validate",
            &["Content-Type: text/yaml"],
            b"a: b",
        )
        .await
        .unwrap();
    assert_eq!(r.status, 415);

    // No SNI (by IP) is served the same.
    let by_ip = Client {
        sni: false,
        ..client(&pki)
    };
    let (s, b) = post(&by_ip, run.addr, &review("benign-deployment")).await;
    assert_eq!(s, 200);
    assert_eq!(b["response"]["allowed"], true);

    // Plain HTTP on the TLS port: no answer at all, and the server goes on.
    let mut tcp = tokio::net::TcpStream::connect(run.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf)).await;
    assert!(!String::from_utf8_lossy(&buf).contains("\"allowed\":true"));
    let (s, _) = post(&cl, run.addr, &review("benign-deployment")).await;
    assert_eq!(s, 200);
    run.handle.shutdown();
}

/// Clients that send their bodies slowly hold no turn: with one review judged at a time and
/// three stalled clients, a whole review is still answered at once (the stalled ones get 408
/// at the timeout), and reviews over the limit wait for a turn rather than fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_clients_do_not_hold_the_reviews_turns() {
    use tokio::io::AsyncWriteExt;
    let pki = Pki::new();
    let run = start(
        &pki,
        kubeflow_without_auth(),
        WebhookSettings {
            request_timeout: Duration::from_secs(4),
            max_in_flight: 1,
            ..WebhookSettings::default()
        },
    )
    .await;
    let cl = client(&pki);
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let mut s = cl.connect(run.addr).await.unwrap();
        s.write_all(
            b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{\"apiVersion\"",
        )
        .await
        .unwrap();
        s.flush().await.unwrap();
        stalled.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = std::time::Instant::now();
    let (s, b) = post(&cl, run.addr, &review("miner-deployment-cpu")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["response"]["allowed"], false);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "answered after {:?}: a stalled client held the turn",
        t.elapsed()
    );
    // Several whole reviews at once, one turn: each waits for it and is answered.
    let addr = run.addr;
    let posts: Vec<_> = (0..6)
        .map(|_| {
            let cl = client(&pki);
            tokio::spawn(async move { post(&cl, addr, &review("benign-deployment")).await })
        })
        .collect();
    for p in posts {
        let (s, b) = p.await.unwrap();
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["response"]["allowed"], true);
    }
    for s in stalled {
        let r = support::read_reply(s).await.unwrap();
        assert_eq!(r.status, 408, "{}", r.body);
    }
    run.handle.shutdown();
}

/// Connections that say nothing are closed: one that never starts the TLS handshake, one that
/// completes it and sends no request, and one that sends half its headers (the limits are 2 s
/// in these tests, 10 s by default); a review on a new connection is answered meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pki = Pki::new();
    let run = start(&pki, ClusterState::empty(), WebhookSettings::default()).await;
    let cl = client(&pki);
    let t = std::time::Instant::now();
    let mut tcp = tokio::net::TcpStream::connect(run.addr).await.unwrap();
    let mut tls = cl.connect(run.addr).await.unwrap();
    let mut half = cl.connect(run.addr).await.unwrap();
    half.write_all(b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-")
        .await
        .unwrap();
    half.flush().await.unwrap();
    let (s, b) = post(&cl, run.addr, &review("benign-deployment")).await;
    assert_eq!(s, 200);
    assert_eq!(b["response"]["allowed"], true);
    let limit = Duration::from_secs(8);
    let mut buf = Vec::new();
    let r = tokio::time::timeout(limit, tcp.read_to_end(&mut buf)).await;
    assert!(r.is_ok(), "no handshake: still open after {limit:?}");
    let mut buf = Vec::new();
    let r = tokio::time::timeout(limit, tls.read_to_end(&mut buf)).await;
    assert!(r.is_ok(), "no request: still open after {limit:?}");
    let mut buf = Vec::new();
    let r = tokio::time::timeout(limit, half.read_to_end(&mut buf)).await;
    assert!(r.is_ok(), "half the headers: still open after {limit:?}");
    assert!(!String::from_utf8_lossy(&buf).contains("allowed"));
    assert!(t.elapsed() >= Duration::from_secs(2), "{:?}", t.elapsed());
    run.handle.shutdown();
}

/// The benign corpora in ../shared/corpus, every object sent over TLS as the API server would
/// send its creation, with the real Kubeflow install as the cluster view: nothing is denied,
/// except, among the KubeRay samples, the Ray dashboards they publish through Ingresses without
/// authentication (true exposures, which `jackstop scan` finds too; never a miner rule).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benign_corpora_are_admitted_over_tls() {
    let pki = Pki::new();
    let install = kubeflow_install();
    let run = start(
        &pki,
        ClusterState::new(install.clone(), Catalogue::builtin()),
        WebhookSettings::default(),
    )
    .await;
    // One keep-alive connection, as the API server keeps them.
    let mut conn = client(&pki).connect(run.addr).await.unwrap();
    let mut sent = 0;
    for dir in [
        "kubeflow-platform",
        "kfp",
        "argo-examples",
        "kuberay",
        "notebooks-training",
    ] {
        let objects = if dir == "kubeflow-platform" {
            install.clone()
        } else {
            corpus_objects(dir)
        };
        for o in objects {
            let (group, version) = match o.api_version.split_once('/') {
                Some((g, v)) => (g.to_string(), v.to_string()),
                None => (String::new(), o.api_version.clone()),
            };
            let gvk = json!({"group": group, "version": version, "kind": o.kind});
            let review = json!({
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {
                    "uid": format!("{dir}-{sent}"),
                    "kind": gvk,
                    "resource": {"group": group, "version": version, "resource": format!("{}s", o.kind.to_ascii_lowercase())},
                    "requestKind": gvk,
                    "name": o.name,
                    "namespace": o.namespace.clone().unwrap_or_default(),
                    "operation": "CREATE",
                    "userInfo": {"username": "kubernetes-admin", "groups": ["system:authenticated"]},
                    "object": o.body,
                    "dryRun": false,
                    "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
                }
            });
            let (s, b) = post_on(&mut conn, review.to_string().as_bytes()).await;
            if s == 400 {
                // Not an object the API server would take (no name, say): refused, not allowed.
                assert_eq!(b["kind"], "Status", "{dir} {} {}: {b}", o.kind, o.name);
                continue;
            }
            sent += 1;
            assert_eq!(s, 200, "{dir} {} {}: {b}", o.kind, o.name);
            assert_eq!(b["response"]["uid"], format!("{dir}-{}", sent - 1));
            if b["response"]["allowed"] == true {
                continue;
            }
            let message = b["response"]["status"]["message"].as_str().unwrap_or("");
            assert!(
                dir == "kuberay" && message.contains("JS-EXP-") && !message.contains("JS-MIN-"),
                "{dir}: {} {:?}/{} denied: {message}",
                o.kind,
                o.namespace,
                o.name
            );
        }
    }
    assert!(sent > 500, "{sent}");
    run.handle.shutdown();
}

/// POSTs a review on an open keep-alive connection; the status and the JSON answered.
async fn post_on(
    conn: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    body: &[u8],
) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let head = format!(
        "POST /validate HTTP/1.1\r\nHost: localhost\r\n{JSON}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(body).await.unwrap();
    conn.flush().await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 16 << 10];
    let end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "the connection closed before an answer");
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..end]).to_string();
    let status: u16 = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .expect("a Content-Length");
    while got.len() < end + length {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "the connection closed within an answer");
        got.extend_from_slice(&buf[..n]);
    }
    let v = serde_json::from_slice(&got[end..end + length]).unwrap_or(Value::Null);
    (status, v)
}

fn corpus_objects(dir: &str) -> Vec<jackstop_core::Object> {
    let path = repo()
        .join("../shared/corpus")
        .join(dir)
        .display()
        .to_string();
    let (inputs, errors) = jackstop_manifests::collect_inputs(&[path], &[]);
    assert!(errors.is_empty(), "{errors:?}");
    jackstop_manifests::read_inputs(&inputs, &Default::default()).objects
}
