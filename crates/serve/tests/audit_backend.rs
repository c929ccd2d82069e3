//! The audit webhook backend over real TLS on loopback: a load test that every event is
//! analysed exactly once (none lost, none doubled, retries recognised), the refusals (401,
//! 405, 408, 413, 415, 400) that change nothing, client certificates, no SNI, certificate
//! reload, and bursts closed by the clock when no later event comes.

mod support;

use axum_server::tls_rustls::RustlsConfig;
use jackstop_audit::rules::{AuditAnalyser, AuditSettings};
use jackstop_audit::{AuditReader, AuditStats, ReadOptions};
use jackstop_catalogue::Catalogue;
use jackstop_core::{Finding, InputError};
use jackstop_serve::audit::{self, AuditMetrics, BackendSettings, Output};
use jackstop_serve::auth::TokenFile;
use jackstop_serve::tls;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{Client, Pki};

const TOKEN: &str = "audit-webhook-token-0123456789";

#[derive(Clone, Default)]
struct Collected {
    findings: Arc<Mutex<Vec<Finding>>>,
    errors: Arc<Mutex<Vec<InputError>>>,
}

impl Output for Collected {
    fn findings(&mut self, f: Vec<Finding>) {
        self.findings.lock().unwrap().extend(f);
    }
    fn errors(&mut self, e: Vec<InputError>) {
        self.errors.lock().unwrap().extend(e);
    }
}

struct Running {
    addr: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    worker: audit::Worker,
    out: Collected,
    metrics: AuditMetrics,
    rustls: RustlsConfig,
}

impl Running {
    /// Stops the server and waits for the worker to close what is open.
    async fn stop(self) -> (AuditStats, Collected, AuditMetrics) {
        self.handle.graceful_shutdown(Some(Duration::from_secs(5)));
        self.server.await.unwrap().unwrap();
        let worker = self.worker;
        let stats = tokio::task::spawn_blocking(move || worker.join())
            .await
            .unwrap();
        (stats, self.out, self.metrics)
    }
}

struct Setup {
    client_ca: bool,
    tokens: bool,
    settings: BackendSettings,
    rules: AuditSettings,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            client_ca: false,
            tokens: true,
            settings: BackendSettings::default(),
            rules: AuditSettings::default(),
        }
    }
}

async fn start(pki: &Pki, setup: Setup) -> Running {
    let rustls =
        RustlsConfig::from_config(tls::server_config(&pki.tls_files(setup.client_ca)).unwrap());
    let tokens = setup.tokens.then(|| {
        let p = pki.dir.path().join("tokens");
        std::fs::write(&p, format!("{TOKEN}\n")).unwrap();
        TokenFile::open(&p).unwrap()
    });
    let out = Collected::default();
    let metrics = AuditMetrics::new();
    let max = setup.settings.max_body_bytes;
    let (backend, worker) = audit::start(
        AuditReader::new(ReadOptions {
            max_event_bytes: max,
            ..ReadOptions::default()
        }),
        AuditAnalyser::new(Catalogue::builtin(), setup.rules),
        out.clone(),
        tokens,
        metrics.clone(),
        setup.settings,
    )
    .unwrap();
    let (addr, handle, server) = support::serve(audit::router(backend), rustls.clone());
    Running {
        addr,
        handle,
        server,
        worker,
        out,
        metrics,
        rustls,
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

fn bearer() -> String {
    format!("Authorization: Bearer {TOKEN}")
}

fn time(secs: i64) -> String {
    jiff::Timestamp::from_second(1_623_121_200 + secs)
        .unwrap()
        .to_string()
}

/// A controller's lease renewal: background.
fn lease(id: &str, t: i64) -> Value {
    json!({"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":id,
        "stage":"ResponseComplete","requestURI":"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-1",
        "verb":"update","user":{"username":"system:node:node-1","groups":["system:nodes","system:authenticated"]},
        "sourceIPs":["10.240.0.7"],"objectRef":{"resource":"leases","namespace":"kube-node-lease","name":"node-1","apiGroup":"coordination.k8s.io","apiVersion":"v1"},
        "responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":time(t),"stageTimestamp":time(t)})
}

/// A Deployment created by `user` in `ns`, mining or not.
fn deployment(id: &str, user: &str, ns: &str, name: &str, miner: bool, t: i64) -> Value {
    let args = if miner {
        "/tmp/xmrig -o stratum+tcp://pool.example-xmr.invalid:3333 -u 4SYNTHETICWALLET -a rx/0"
    } else {
        "python train.py --epochs 10"
    };
    let obj = json!({"kind":"Deployment","apiVersion":"apps/v1",
        "metadata":{"name":name,"namespace":ns},
        "spec":{"replicas":1,"selector":{"matchLabels":{"app":name}},
            "template":{"metadata":{"labels":{"app":name}},
                "spec":{"containers":[{"name":"main","image":"tensorflow/tensorflow:2.4.1","command":["/bin/sh","-c"],"args":[args]}]}}}});
    json!({"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":id,
        "stage":"ResponseComplete","requestURI":format!("/apis/apps/v1/namespaces/{ns}/deployments"),
        "verb":"create","user":{"username":user,"groups":["system:authenticated"]},
        "sourceIPs":["10.244.1.23"],"objectRef":{"resource":"deployments","namespace":ns,"name":name,"apiGroup":"apps","apiVersion":"v1"},
        "responseStatus":{"metadata":{},"code":201},"requestObject":obj,
        "requestReceivedTimestamp":time(t),"stageTimestamp":time(t)})
}

fn batch(items: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":items}),
    )
    .unwrap()
}

fn miners(findings: &[Finding]) -> Vec<String> {
    findings
        .iter()
        .filter(|f| f.rule == "JS-MIN-001")
        .map(|f| f.resource.name.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_test_every_event_is_analysed_once() {
    let pki = Pki::new();
    let run = start(&pki, Setup::default()).await;
    let addr = run.addr;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut clients = Vec::new();
    for c in 0..6 {
        let cl = client(&pki);
        clients.push(tokio::spawn(async move {
            // Per client: events sent in batches analysed, miners created, retries answered.
            let (mut events, mut miners, mut retries) = (0u64, Vec::new(), 0u64);
            let mut b = 0;
            while tokio::time::Instant::now() < deadline {
                let mut items = Vec::new();
                let mut made = Vec::new();
                for i in 0..40 {
                    let id = format!("c{c}-b{b}-e{i}");
                    if i % 10 == 3 {
                        let name = format!("miner-{c}-{b}-{i}");
                        items.push(deployment(
                            &id,
                            &format!("user-{c}"),
                            &format!("ns-{c}"),
                            &name,
                            true,
                            b,
                        ));
                        made.push(name);
                    } else if i % 10 == 7 {
                        let name = format!("train-{c}-{b}-{i}");
                        items.push(deployment(
                            &id,
                            &format!("user-{c}"),
                            &format!("ns-{c}"),
                            &name,
                            false,
                            b,
                        ));
                    } else {
                        items.push(lease(&id, b));
                    }
                }
                let body = batch(items);
                let r = cl
                    .request(addr, "POST", "/audit", &[JSON, &bearer()], &body)
                    .await
                    .unwrap();
                assert_eq!(r.status, 200, "{}", r.body);
                let o: Value = serde_json::from_str(&r.body).unwrap();
                assert_eq!(o["events"], 40);
                assert_eq!(o["duplicate"], false);
                events += 40;
                miners.extend(made);
                // Every fourth batch is sent again, as the API server retries one whose
                // answer it did not get.
                if b % 4 == 0 {
                    let r = cl
                        .request(addr, "POST", "/audit", &[JSON, &bearer()], &body)
                        .await
                        .unwrap();
                    assert_eq!(r.status, 200);
                    let o: Value = serde_json::from_str(&r.body).unwrap();
                    assert_eq!(o["duplicate"], true, "a retry is recognised");
                    assert_eq!(o["events"], 0);
                    retries += 1;
                }
                b += 1;
            }
            (events, miners, retries)
        }));
    }
    let (mut sent, mut made, mut retries) = (0u64, Vec::new(), 0u64);
    for c in clients {
        let (e, m, r) = c.await.unwrap();
        sent += e;
        made.extend(m);
        retries += r;
    }
    let (stats, out, metrics) = run.stop().await;
    assert!(sent >= 6 * 40, "the load ran: {sent} events");
    assert_eq!(stats.events, sent, "every event read once");
    assert_eq!(stats.bad_lines, 0);
    assert_eq!(metrics.duplicate_batches.get(), retries);
    assert_eq!(metrics.events.get(), sent);
    let mut found = miners(&out.findings.lock().unwrap());
    found.sort();
    made.sort();
    assert_eq!(found.len(), made.len(), "no miner lost or doubled");
    assert_eq!(found, made);
    // The benign training Deployments are quiet.
    assert!(out
        .findings
        .lock()
        .unwrap()
        .iter()
        .all(|f| !f.resource.name.starts_with("train-") || f.rule == "JS-AUD-005"));
    eprintln!(
        "load test: {sent} events, {} miners, {retries} retries",
        made.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_change_nothing() {
    let pki = Pki::new();
    let run = start(
        &pki,
        Setup {
            settings: BackendSettings {
                max_body_bytes: 64 << 10,
                request_timeout: Duration::from_secs(1),
                ..BackendSettings::default()
            },
            ..Setup::default()
        },
    )
    .await;
    let (addr, cl) = (run.addr, client(&pki));
    let good = batch(vec![deployment("m1", "u", "ns", "miner-a", true, 0)]);
    let auth = bearer();

    let r = cl.request(addr, "POST", "/", &[JSON], &good).await.unwrap();
    assert_eq!(r.status, 401, "no token");
    assert!(r
        .headers
        .to_ascii_lowercase()
        .contains("www-authenticate: bearer"));
    let r = cl
        .request(
            addr,
            "POST",
            "/",
            &[JSON, "Authorization: Bearer nope"],
            &good,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 401, "wrong token");
    let status: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Unauthorized");

    let r = cl
        .request(
            addr,
            "POST",
            "/",
            &["Content-Type: text/plain", &auth],
            &good,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 415);

    let cut = &good[..good.len() / 2];
    let r = cl
        .request(addr, "POST", "/", &[JSON, &auth], cut)
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("not a JSON object"), "{}", r.body);

    let old = br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1beta1","items":[]}"#;
    let r = cl
        .request(addr, "POST", "/", &[JSON, &auth], old)
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert!(r.body.contains("v1beta1"), "{}", r.body);

    let r = cl
        .request(addr, "POST", "/", &[JSON, &auth], b"")
        .await
        .unwrap();
    assert_eq!(r.status, 400);

    // 10 MB, declared: refused from the header; chunked: refused as it outgrows the limit.
    let big = vec![b' '; 10 << 20];
    let r = cl
        .request(addr, "POST", "/", &[JSON, &auth], &big)
        .await
        .unwrap();
    assert_eq!(r.status, 413);
    let r = cl
        .request(
            addr,
            "POST",
            "/",
            &[JSON, &auth, "Transfer-Encoding: chunked"],
            &big,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 413);

    let r = cl.request(addr, "GET", "/", &[&auth], b"").await.unwrap();
    assert_eq!(r.status, 405);

    // A body that never finishes: 408 once the request timeout (1 s) has passed.
    let started = std::time::Instant::now();
    let r = cl
        .request(
            addr,
            "POST",
            "/",
            &[JSON, &auth, "Content-Length: 5000"],
            &good[..100],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 408, "{}", r.body);
    assert!(started.elapsed() < Duration::from_secs(5));

    // Still serving, and only the good batch was analysed.
    let r = cl
        .request(addr, "POST", "/", &[JSON, &auth], &good)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let (stats, out, metrics) = run.stop().await;
    assert_eq!(stats.events, 1);
    assert_eq!(miners(&out.findings.lock().unwrap()), vec!["miner-a"]);
    let code = |c: u16| {
        metrics
            .requests
            .get_or_create(&audit::CodeLabels { code: c })
            .get()
    };
    assert_eq!(code(401), 2);
    assert_eq!(code(400), 3);
    assert_eq!(code(413), 2);
    assert_eq!(code(408), 1);
    assert_eq!(code(200), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_items_inside_a_good_batch_are_reported_and_the_rest_analysed() {
    let pki = Pki::new();
    let run = start(&pki, Setup::default()).await;
    let items = vec![
        // A Kubernetes Event (core/v1), not an audit event.
        json!({"kind":"Event","apiVersion":"v1","metadata":{"name":"x"},"reason":"Pulled"}),
        json!(42),
        deployment("m1", "u", "ns", "miner-b", true, 0),
    ];
    let r = client(&pki)
        .request(run.addr, "POST", "/", &[JSON, &bearer()], &batch(items))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let o: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(o["badEvents"], 2, "{o}");
    let (_, out, _) = run.stop().await;
    assert_eq!(miners(&out.findings.lock().unwrap()), vec!["miner-b"]);
    let errors = out.errors.lock().unwrap();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].path.starts_with("batch 1 from 127.0.0.1:"),
        "{errors:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_from_the_ca_only() {
    let pki = Pki::new();
    let run = start(
        &pki,
        Setup {
            client_ca: true,
            tokens: false,
            ..Setup::default()
        },
    )
    .await;
    let good = batch(vec![lease("l1", 0)]);
    let with = |cert: &std::path::Path, key: &std::path::Path| Client {
        identity: Some((cert.to_path_buf(), key.to_path_buf())),
        ..client(&pki)
    };
    let ok = with(&pki.client_cert, &pki.client_key)
        .request(run.addr, "POST", "/", &[JSON], &good)
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
    // No certificate, or one from another CA: no HTTP answer at all.
    let none = client(&pki)
        .request(run.addr, "POST", "/", &[JSON], &good)
        .await;
    assert!(none.is_err(), "{none:?}");
    let rogue = with(&pki.rogue_cert, &pki.rogue_key)
        .request(run.addr, "POST", "/", &[JSON], &good)
        .await;
    assert!(rogue.is_err(), "{rogue:?}");
    let (stats, _, _) = run.stop().await;
    assert_eq!(stats.events, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sni_and_certificate_reload() {
    let pki = Pki::new();
    let run = start(&pki, Setup::default()).await;
    // By IP: rustls sends no SNI; the certificate's IP address matches.
    let by_ip = Client {
        sni: false,
        ..client(&pki)
    };
    let body = batch(vec![lease("l1", 0)]);
    let before = by_ip
        .request(run.addr, "POST", "/", &[JSON, &bearer()], &body)
        .await
        .unwrap();
    assert_eq!(before.status, 200);

    let files = pki.tls_files(false);
    let reloads = Arc::new(Mutex::new(Vec::new()));
    let seen = reloads.clone();
    let poller = tokio::spawn(tls::reload_on_change(
        run.rustls.clone(),
        files,
        Duration::from_millis(50),
        move |r| seen.lock().unwrap().push(r.map_err(|e| e.to_string())),
    ));
    tokio::time::sleep(Duration::from_millis(120)).await;
    let rotated = pki.rotate_server_cert();
    let mut after = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = by_ip
            .request(run.addr, "POST", "/", &[JSON, &bearer()], &batch(vec![]))
            .await
            .unwrap();
        if r.server_cert == rotated {
            after = Some(r);
            break;
        }
    }
    assert!(
        after.is_some(),
        "the new certificate is served: {:?}",
        reloads.lock().unwrap()
    );
    assert_ne!(before.server_cert, rotated);
    // A broken file keeps the current certificate serving.
    std::fs::write(&pki.server_cert, "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = by_ip
        .request(run.addr, "POST", "/", &[JSON, &bearer()], &body)
        .await
        .unwrap();
    assert_eq!(r.server_cert, rotated);
    assert!(reloads.lock().unwrap().iter().any(|r| r.is_err()));
    poller.abort();
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_reported_by_the_clock_without_a_later_event() {
    let pki = Pki::new();
    let run = start(
        &pki,
        Setup {
            settings: BackendSettings {
                flush_every: Duration::from_millis(50),
                flush_grace: Duration::from_millis(0),
                ..BackendSettings::default()
            },
            rules: AuditSettings {
                burst_window_secs: 1,
                ..AuditSettings::default()
            },
            ..Setup::default()
        },
    )
    .await;
    // Six Deployments in three namespaces within a second, stamped 10 s ago.
    let now = jiff::Timestamp::now().as_second() - 1_623_121_200 - 10;
    let items = (0..6)
        .map(|i| {
            deployment(
                &format!("d{i}"),
                "system:serviceaccount:kubeflow:jupyter-web-app-service-account",
                &format!("team-{}", i % 3),
                &format!("train-{i}"),
                false,
                now,
            )
        })
        .collect();
    let r = client(&pki)
        .request(run.addr, "POST", "/", &[JSON, &bearer()], &batch(items))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let mut bursts = 0;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        bursts = run
            .out
            .findings
            .lock()
            .unwrap()
            .iter()
            .filter(|f| f.rule == "JS-AUD-005")
            .count();
        if bursts > 0 {
            break;
        }
    }
    assert_eq!(bursts, 1, "reported while the server runs");
    let (_, out, _) = run.stop().await;
    let by_rule: BTreeMap<String, usize> =
        out.findings
            .lock()
            .unwrap()
            .iter()
            .fold(BTreeMap::new(), |mut m, f| {
                *m.entry(f.rule.clone()).or_default() += 1;
                m
            });
    assert_eq!(
        by_rule.get("JS-AUD-005"),
        Some(&1),
        "not again at the end: {by_rule:?}"
    );
}
