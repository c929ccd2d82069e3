//! The watch side of the API server stand-in of `tests/support`, checked against the real
//! `kubectl` (`get -w`, `get --raw` of watch streams, a list that vanishes), kube-rs's own
//! watch decoding, and a hand-written HTTP/1.1 client for what goes over the wire (chunks,
//! bookmarks, the two ways a stream ends).

mod support;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, WatchEvent, WatchParams};
use serde_json::{json, Value};

use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::{kubeconfig, rfc3339, ApiServer, Kubectl, ServerConfig, FIRST_RESOURCE_VERSION};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

fn pod(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {"containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"]}]}
    })
}

/// Three pods in two namespaces, served as given (no resourceVersion of their own).
fn config() -> ServerConfig {
    ServerConfig {
        objects: vec![
            pod("kubeflow", "centraldashboard-5f8b"),
            pod("kubeflow", "ml-pipeline-ui-7d9c"),
            pod("team-a", "notebook-0"),
        ],
        ..ServerConfig::default()
    }
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or_default()
}

fn rv(o: &Value) -> u64 {
    o["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no resourceVersion in {o}"))
}

impl Kubectl {
    /// Runs kubectl, which must succeed, and parses its standard output as JSON values.
    fn json_values(&self, args: &[&str]) -> Vec<Value> {
        let out = self.run(args);
        assert!(out.status.success(), "kubectl {args:?} failed");
        serde_json::Deserializer::from_slice(&out.stdout)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .expect("kubectl printed JSON")
    }

    /// Starts kubectl; each JSON value it prints comes out of the receiver as soon as it is
    /// complete.
    fn spawn(&self, args: &[&str]) -> (KillOnDrop, mpsc::Receiver<Value>) {
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("kubectl starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for v in serde_json::Deserializer::from_reader(stdout).into_iter::<Value>() {
                match v {
                    Ok(v) => {
                        if tx.send(v).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        eprintln!("kubectl output is not JSON: {e}");
                        return;
                    }
                }
            }
        });
        (KillOnDrop(child), rx)
    }
}

/// A child process killed (and reaped) when the test ends, even by a failed assertion.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The next `n` values, each within 5 s.
fn take(rx: &mpsc::Receiver<Value>, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            rx.recv_timeout(Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("value {i} of {n} did not come: {e}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_watch_prints_added_modified_deleted_in_order() {
    let server = ApiServer::start(config()).await;
    let k = Kubectl::new(&server);
    let (child, events) = k.spawn(&[
        "get",
        "pods",
        "-A",
        "--watch",
        "-o",
        "json",
        "--output-watch-events",
    ]);
    assert!(
        server.wait_for_watchers(1, Duration::from_secs(8)),
        "kubectl did not watch: {:?}",
        server.requests()
    );
    // What it listed first, as ADDED events, in list order.
    let listed = take(&events, 3);
    assert!(listed.iter().all(|e| e["type"] == "ADDED"), "{listed:?}");
    let names: Vec<&str> = listed.iter().map(|e| name(&e["object"])).collect();
    assert_eq!(
        names,
        ["centraldashboard-5f8b", "ml-pipeline-ui-7d9c", "notebook-0"]
    );

    let created = server.apply(pod("team-b", "miner"));
    let mut changed = pod("team-b", "miner");
    changed["metadata"]["labels"]["stage"] = json!("mining");
    let modified = server.apply(changed);
    assert!(server.delete("v1", "Pod", Some("team-b"), "miner"));
    assert!(!server.delete("v1", "Pod", Some("team-b"), "miner"));

    let seen = take(&events, 3);
    let types: Vec<&str> = seen.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["ADDED", "MODIFIED", "DELETED"], "{seen:#?}");
    assert!(seen.iter().all(|e| name(&e["object"]) == "miner"));
    assert_eq!(seen[0]["object"], created);
    assert_eq!(seen[1]["object"], modified);
    assert_eq!(seen[1]["object"]["metadata"]["labels"]["stage"], "mining");
    // One object: the same uid and creation time throughout, a new resourceVersion each time.
    let uid = &created["metadata"]["uid"];
    assert!(uid.as_str().is_some_and(|u| u.len() == 36), "{created}");
    assert!(seen.iter().all(|e| &e["object"]["metadata"]["uid"] == uid));
    assert!(seen
        .iter()
        .all(|e| e["object"]["metadata"]["creationTimestamp"]
            == created["metadata"]["creationTimestamp"]));
    let rvs: Vec<u64> = seen.iter().map(|e| rv(&e["object"])).collect();
    assert!(rvs.windows(2).all(|w| w[0] < w[1]), "{rvs:?}");
    assert_eq!(rvs[2].to_string(), server.resource_version());

    // kubectl listed, then watched from the list's resourceVersion (nothing had changed).
    let log = server.requests();
    assert!(
        log.contains(&"GET /api/v1/pods?limit=500".to_string()),
        "{log:?}"
    );
    let watch = format!("resourceVersion={FIRST_RESOURCE_VERSION}");
    assert!(
        log.iter().any(|r| r.starts_with("GET /api/v1/pods?")
            && r.contains("watch=true")
            && r.contains(&watch)),
        "{log:?}"
    );
    // The new namespace came first (kubectl does not watch namespaces: it is only served).
    assert_eq!(
        server.get("v1", "Namespace", None, "team-b").unwrap()["metadata"]["name"],
        "team-b"
    );

    // A client that goes is a watch less.
    drop(child);
    let deadline = Instant::now() + Duration::from_secs(3);
    while server.watchers() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.watchers(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_raw_watch_from_before_a_compaction_gets_410() {
    let server = ApiServer::start(config()).await;
    let k = Kubectl::new(&server);
    server.apply(pod("default", "a"));
    let old = server.resource_version();
    server.apply(pod("default", "b"));
    let compacted = server.resource_version();
    server.compact();
    let c = server.apply(pod("default", "c"));

    let start = Instant::now();
    let printed = k.json_values(&[
        "get",
        "--raw",
        &format!("/api/v1/pods?watch=true&resourceVersion={old}&timeoutSeconds=1"),
    ]);
    assert_eq!(
        printed,
        [json!({"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("too old resource version: {old} ({compacted})"),
            "reason": "Expired", "code": 410
        }})]
    );
    // The 410 ends the stream at once, not after timeoutSeconds.
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );

    // From the compaction point: what came after it, then the end after timeoutSeconds=1.
    let start = Instant::now();
    let printed = k.json_values(&[
        "get",
        "--raw",
        &format!("/api/v1/pods?watch=true&resourceVersion={compacted}&timeoutSeconds=1"),
    ]);
    assert_eq!(printed, [json!({"type": "ADDED", "object": c})]);
    assert!(start.elapsed() >= Duration::from_secs(1));
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        server.requests().contains(&format!(
            "GET /api/v1/pods?resourceVersion={compacted}&timeoutSeconds=1&watch=true"
        )),
        "{:?}",
        server.requests()
    );
    assert_eq!(server.watchers(), 0);
}

/// One line of a response head, within 5 s.
async fn head_line(conn: &mut BufReader<tokio::net::TcpStream>) -> String {
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_line(&mut line))
        .await
        .expect("response head within 5 s")
        .expect("read");
    line.trim_end().to_string()
}

/// What came next on a watch stream.
#[derive(Debug)]
enum Next {
    Event(Value),
    /// The chunked body ended (its last, empty chunk).
    End,
    /// The connection closed, or broke, before the body ended.
    Broken(String),
    /// Nothing within the time given (the stream is unusable afterwards).
    Quiet,
}

/// A watch over a hand-written HTTP/1.1 connection: the status, the headers, then the events
/// of the chunked body one by one.
struct RawWatch {
    conn: BufReader<tokio::net::TcpStream>,
    status: u16,
    headers: Vec<String>,
    pending: Vec<u8>,
}

impl RawWatch {
    async fn open(server: &ApiServer, path: &str) -> RawWatch {
        let addr = server.url.trim_start_matches("http://");
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut conn = BufReader::new(stream);
        conn.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let status_line = head_line(&mut conn).await;
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("status line: {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let h = head_line(&mut conn).await;
            if h.is_empty() {
                break;
            }
            headers.push(h.to_ascii_lowercase());
        }
        RawWatch {
            conn,
            status,
            headers,
            pending: Vec::new(),
        }
    }

    async fn chunk(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let mut line = String::new();
        if self.conn.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let size = usize::from_str_radix(line.trim(), 16)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let mut data = vec![0; size + 2];
        self.conn.read_exact(&mut data).await?;
        if size == 0 {
            return Ok(None);
        }
        data.truncate(size);
        Ok(Some(data))
    }

    async fn next(&mut self, within: Duration) -> Next {
        loop {
            if let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                return Next::Event(serde_json::from_slice(&line).unwrap_or_else(|e| {
                    panic!("not a JSON line ({e}): {}", String::from_utf8_lossy(&line))
                }));
            }
            match tokio::time::timeout(within, self.chunk()).await {
                Err(_) => return Next::Quiet,
                Ok(Ok(Some(data))) => self.pending.extend(data),
                Ok(Ok(None)) if self.pending.is_empty() => return Next::End,
                Ok(Ok(None)) => return Next::Broken("a partial line at the end".into()),
                Ok(Err(e)) => return Next::Broken(e.to_string()),
            }
        }
    }

    /// The next event, which must come within 3 s.
    async fn event(&mut self) -> Value {
        match self.next(Duration::from_secs(3)).await {
            Next::Event(e) => e,
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

fn bookmark(rv: &str) -> Value {
    json!({"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": rv}}})
}

#[tokio::test(flavor = "multi_thread")]
async fn bookmarks_arrive_and_drop_watches_ends_the_stream() {
    let server = ApiServer::start(config()).await;
    server.set_bookmark_interval(Some(Duration::from_millis(200)));
    let rv = server.resource_version();
    let mut w = RawWatch::open(
        &server,
        &format!("/api/v1/pods?allowWatchBookmarks=true&resourceVersion={rv}&watch=true"),
    )
    .await;
    assert_eq!(w.status, 200);
    assert!(
        w.headers.contains(&"content-type: application/json".into()),
        "{:?}",
        w.headers
    );
    assert!(
        w.headers.contains(&"transfer-encoding: chunked".into()),
        "{:?}",
        w.headers
    );
    assert_eq!(server.watchers(), 1);
    let start = Instant::now();
    assert_eq!(w.event().await, bookmark(&rv));
    assert_eq!(w.event().await, bookmark(&rv));
    assert!(start.elapsed() >= Duration::from_millis(350));

    // A change: its event, then bookmarks at its resourceVersion; other kinds are not sent.
    server.apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"}}));
    let stored = server.apply(pod("kubeflow", "new"));
    let mut next = w.event().await;
    while next["type"] == "BOOKMARK" {
        next = w.event().await;
    }
    assert_eq!(next, json!({"type": "ADDED", "object": stored}));
    assert_eq!(w.event().await, bookmark(&server.resource_version()));

    server.drop_watches();
    loop {
        match w.next(Duration::from_secs(3)).await {
            Next::Event(e) if e["type"] == "BOOKMARK" => continue,
            Next::End => break,
            other => panic!("expected the end of the stream, got {other:?}"),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while server.watchers() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.watchers(), 0);

    // Without allowWatchBookmarks, no bookmark.
    let mut w = RawWatch::open(
        &server,
        &format!("/api/v1/pods?resourceVersion={rv}&watch=true"),
    )
    .await;
    let next = w.next(Duration::from_millis(600)).await;
    assert!(
        matches!(next, Next::Event(ref e) if e["type"] == "ADDED"),
        "{next:?}"
    );
    assert!(matches!(
        w.next(Duration::from_millis(600)).await,
        Next::Quiet
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn sever_watches_cuts_the_connection() {
    let server = ApiServer::start(config()).await;
    let rv = server.resource_version();
    let mut a = RawWatch::open(
        &server,
        &format!("/api/v1/pods?watch=1&resourceVersion={rv}"),
    )
    .await;
    let mut b = RawWatch::open(&server, "/api/v1/namespaces/team-a/pods?watch=true").await;
    assert_eq!(b.event().await["object"]["metadata"]["name"], "notebook-0");
    assert!(server.wait_for_watchers(2, Duration::from_secs(3)));
    server.sever_watches();
    for w in [&mut a, &mut b] {
        match w.next(Duration::from_secs(3)).await {
            // The chunked body stopped short: the connection closed without its last chunk.
            Next::Broken(why) => assert!(why.contains("end of file"), "{why}"),
            other => panic!("expected a cut connection, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_without_resource_version_starts_with_the_current_objects() {
    let server = ApiServer::start(config()).await;
    let added = server.apply(pod("kubeflow", "katib-ui"));

    // Namespaced, from "now": the namespace's objects (those served as given get the first
    // resourceVersion), then the end after timeoutSeconds.
    let mut w = RawWatch::open(
        &server,
        "/api/v1/namespaces/kubeflow/pods?watch=true&timeoutSeconds=1",
    )
    .await;
    let mut first = vec![w.event().await, w.event().await, w.event().await];
    assert!(first.iter().all(|e| e["type"] == "ADDED"), "{first:?}");
    let names: Vec<&str> = first.iter().map(|e| name(&e["object"])).collect();
    assert_eq!(
        names,
        ["centraldashboard-5f8b", "katib-ui", "ml-pipeline-ui-7d9c"]
    );
    let katib = first.remove(1);
    assert_eq!(katib["object"], added);
    assert!(first
        .iter()
        .all(|e| rv(&e["object"]) == FIRST_RESOURCE_VERSION));
    let mut served = first[0]["object"].clone();
    served["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    assert_eq!(served, pod("kubeflow", "centraldashboard-5f8b"));
    let start = Instant::now();
    assert!(matches!(w.next(Duration::from_secs(3)).await, Next::End));
    assert!(start.elapsed() > Duration::from_millis(500));

    // Watch-list streaming: the state, then a bookmark marking its end, then live events.
    let mut w = RawWatch::open(
        &server,
        "/api/v1/pods?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan",
    )
    .await;
    for _ in 0..4 {
        assert_eq!(w.event().await["type"], "ADDED");
    }
    let now = server.resource_version();
    assert_eq!(
        w.event().await,
        json!({"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"resourceVersion": now, "annotations": {"k8s.io/initial-events-end": "true"}}}})
    );
    assert!(server.delete("v1", "Pod", Some("kubeflow"), "katib-ui"));
    let deleted = w.event().await;
    assert_eq!(deleted["type"], "DELETED");
    assert_eq!(name(&deleted["object"]), "katib-ui");
    assert_eq!(
        deleted["object"]["metadata"]["resourceVersion"].as_str(),
        Some(server.resource_version().as_str())
    );

    // Selectors: one name; one label.
    let mut by_name = RawWatch::open(
        &server,
        "/api/v1/pods?watch=true&resourceVersion=0&fieldSelector=metadata.name%3Dx",
    )
    .await;
    let mut by_label = RawWatch::open(
        &server,
        "/api/v1/pods?watch=true&sendInitialEvents=false&labelSelector=app%3Dy",
    )
    .await;
    assert!(server.wait_for_watchers(3, Duration::from_secs(3)));
    server.apply(pod("default", "y"));
    let x = server.apply(pod("default", "x"));
    assert_eq!(by_name.event().await, json!({"type": "ADDED", "object": x}));
    assert_eq!(name(&by_label.event().await["object"]), "y");
    // An unsupported selector is a 400, as a real server's.
    let bad = RawWatch::open(
        &server,
        "/api/v1/pods?watch=true&fieldSelector=spec.nodeName%3Dn1",
    )
    .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_apply_to_watches() {
    let mut cfg = config();
    cfg.forbidden = vec!["secrets".into()];
    cfg.slow = vec![("configmaps".into(), Duration::from_secs(1))];
    cfg.garbage = vec!["services".into()];
    let server = ApiServer::start(cfg).await;
    let k = Kubectl::new(&server);

    let out = k.run(&[
        "get",
        "--raw",
        "/api/v1/namespaces/team-a/secrets?watch=true",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Error from server (Forbidden): secrets is forbidden: User \"test\" cannot watch resource \"secrets\" in API group \"\" in the namespace \"team-a\""),
        "{err}"
    );
    let out = k.run(&["get", "--raw", "/api/v1/services?watch=true"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "not json{");
    let err = k.run(&["get", "services", "-A", "--watch", "-o", "json"]);
    assert!(!err.status.success());

    let start = Instant::now();
    let printed = k.json_values(&[
        "get",
        "--raw",
        "/api/v1/configmaps?watch=true&resourceVersion=1000&timeoutSeconds=1",
    ]);
    assert!(printed.is_empty(), "{printed:?}");
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_fails_when_the_server_vanishes_mid_list() {
    let server = ApiServer::start(config()).await;
    let k = Kubectl::new(&server);
    server.vanish_after_pages("pods", 1);
    let out = k.run(&["get", "pods", "-A", "-o", "json", "--chunk-size=1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error: unexpected error when reading response body. Please retry. Original error: unexpected EOF"),
        "{err}"
    );
    // kubectl prints what it had (the first page, as a List), then fails.
    let printed: Value = serde_json::from_slice(&out.stdout).expect("a List");
    let names: Vec<&str> = printed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(name)
        .collect();
    assert_eq!(names, ["centraldashboard-5f8b"]);
    let pages: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET /api/v1/pods?"))
        .collect();
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert!(pages[1].contains("continue="), "{pages:?}");

    // Healed: all three pods, one page each.
    server.stop_vanishing("pods");
    let list = k.json_values(&["get", "pods", "-A", "-o", "json", "--chunk-size=1"]);
    assert_eq!(list[0]["items"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_discovery_and_continue_tokens_follow_the_changes() {
    let server = ApiServer::start(config()).await;
    let before = rfc3339(SystemTime::now());
    let stored = server.apply(pod("team-c", "trainer"));
    let ray = server.apply(json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"name": "rc", "namespace": "team-c"}, "spec": {}}));
    let after = rfc3339(SystemTime::now());
    let k = Kubectl::new(&server);

    let list = &k.json_values(&["get", "pods", "-n", "team-c", "-o", "json"])[0];
    assert_eq!(list["items"], json!([stored]));
    let created = stored["metadata"]["creationTimestamp"].as_str().unwrap();
    assert!(
        before.as_str() <= created && created <= after.as_str(),
        "{created}"
    );
    assert_eq!(
        stored["metadata"]["resourceVersion"], "1002",
        "the namespace was 1001"
    );
    let ns = &k.json_values(&["get", "namespace", "team-c", "-o", "json"])[0];
    assert_eq!(ns["metadata"]["resourceVersion"], "1001");
    // A new kind is in discovery.
    let list = &k.json_values(&["get", "rayclusters.ray.io", "-A", "-o", "json"])[0];
    assert_eq!(list["items"], json!([ray]));

    // A list says the current resourceVersion; its continue pages keep the first page's, and
    // expire once that resource changed.
    let page = &k.json_values(&["get", "--raw", "/api/v1/pods?limit=2"])[0];
    assert_eq!(
        page["metadata"]["resourceVersion"],
        server.resource_version()
    );
    let token = page["metadata"]["continue"].as_str().unwrap().to_string();
    server.apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}));
    let next = &k.json_values(&[
        "get",
        "--raw",
        &format!("/api/v1/pods?limit=2&continue={token}"),
    ])[0];
    assert_eq!(
        next["metadata"]["resourceVersion"],
        page["metadata"]["resourceVersion"]
    );
    let names: Vec<&str> = next["items"].as_array().unwrap().iter().map(name).collect();
    assert_eq!(names, ["notebook-0", "trainer"]);
    server.apply(pod("default", "late"));
    let out = k.run(&[
        "get",
        "--raw",
        &format!("/api/v1/pods?limit=2&continue={token}"),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Error from server (Expired)"));
}

#[tokio::test(flavor = "multi_thread")]
async fn kube_rs_decodes_the_watch_events() {
    use futures::{StreamExt, TryStreamExt};
    let server = ApiServer::start(config()).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kube::config::Kubeconfig::read_from(kubeconfig(&server.url, dir.path())).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let pods: Api<Pod> = Api::all(kube::Client::try_from(cfg).unwrap());
    server.set_bookmark_interval(Some(Duration::from_millis(100)));

    let list = pods.list(&Default::default()).await.unwrap();
    let rv = list.metadata.resource_version.clone().unwrap();
    assert_eq!(rv, FIRST_RESOURCE_VERSION.to_string());
    let mut stream = pods
        .watch(&WatchParams::default().timeout(2), &rv)
        .await
        .unwrap()
        .boxed();
    server.apply(pod("kubeflow", "kube-rs"));
    let mut added = None;
    while let Some(e) = stream.try_next().await.unwrap() {
        match e {
            WatchEvent::Bookmark(b) => assert!(b.metadata.resource_version.parse::<u64>().is_ok()),
            WatchEvent::Added(p) => {
                added = Some(p);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    let added = added.expect("an ADDED event");
    assert_eq!(added.metadata.name.as_deref(), Some("kube-rs"));
    assert_eq!(
        added.metadata.resource_version,
        Some(server.resource_version())
    );
    // The stream ends after timeoutSeconds=2.
    let start = Instant::now();
    while stream.try_next().await.unwrap().is_some() {}
    assert!(start.elapsed() < Duration::from_secs(3));

    server.compact();
    let mut stream = pods
        .watch(&WatchParams::default().disable_bookmarks(), &rv)
        .await
        .unwrap()
        .boxed();
    match stream.next().await {
        Some(Ok(WatchEvent::Error(e))) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("{other:?}"),
    }
    assert!(stream.next().await.is_none());
}

#[test]
fn times_are_rfc3339_utc() {
    let at = |secs: u64| rfc3339(UNIX_EPOCH + Duration::from_secs(secs));
    assert_eq!(at(0), "1970-01-01T00:00:00Z");
    assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(at(1_795_716_000), "2026-11-26T18:00:00Z");
    assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59Z");
}

type PodEvents = futures::stream::BoxStream<
    'static,
    Result<kube::runtime::watcher::Event<Pod>, kube::runtime::watcher::Error>,
>;

/// The next item of a kube-runtime watcher, within 5 s.
async fn next_event(
    events: &mut PodEvents,
) -> Result<kube::runtime::watcher::Event<Pod>, kube::runtime::watcher::Error> {
    use futures::StreamExt;
    tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("a watcher event within 5 s")
        .expect("the watcher goes on")
}

/// What a watcher event says, shortly: "Init", "InitApply notebook-0", "Apply w1", "Err ...".
fn said(e: &Result<kube::runtime::watcher::Event<Pod>, kube::runtime::watcher::Error>) -> String {
    use kube::runtime::watcher::Event;
    let n = |p: &Pod| p.metadata.name.clone().unwrap_or_default();
    match e {
        Ok(Event::Init) => "Init".into(),
        Ok(Event::InitApply(p)) => format!("InitApply {}", n(p)),
        Ok(Event::InitDone) => "InitDone".into(),
        Ok(Event::Apply(p)) => format!("Apply {}", n(p)),
        Ok(Event::Delete(p)) => format!("Delete {}", n(p)),
        Err(e) => format!("Err {e}"),
    }
}

async fn said_next(events: &mut PodEvents, n: usize) -> Vec<String> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(said(&next_event(events).await));
    }
    v
}

async fn pods_api(server: &ApiServer, dir: &std::path::Path) -> Api<Pod> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig(&server.url, dir)).unwrap();
    let cfg = kube::config::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    Api::all(kube::Client::try_from(cfg).unwrap())
}

const LISTED: [&str; 5] = [
    "Init",
    "InitApply centraldashboard-5f8b",
    "InitApply ml-pipeline-ui-7d9c",
    "InitApply notebook-0",
    "InitDone",
];

/// kube-runtime's `watcher` (list then watch, as `jackstop watch` uses it) against the
/// stand-in: live changes, a dropped watch (resumed, no re-list), a cut one, a watch from
/// before a compaction (410: a re-list), and a list that vanishes (an error, then a re-list).
#[tokio::test(flavor = "multi_thread")]
async fn kube_runtime_watcher_resumes_relists_and_survives_faults() {
    use futures::StreamExt;
    use kube::runtime::watcher::{watcher, Config};
    let server = std::sync::Arc::new(ApiServer::start(config()).await);
    server.set_bookmark_interval(None);
    let dir = tempfile::tempdir().unwrap();
    let pods = pods_api(&server, dir.path()).await;
    let mut events: PodEvents = watcher(pods.clone(), Config::default().page_size(2)).boxed();
    assert_eq!(said_next(&mut events, 5).await, LISTED);

    // The watch starts when the stream is polled: apply once it is open.
    let s = server.clone();
    let applied = tokio::task::spawn_blocking(move || {
        assert!(s.wait_for_watchers(1, Duration::from_secs(5)));
        s.apply(pod("kubeflow", "w1"))
    });
    assert_eq!(said_next(&mut events, 1).await, ["Apply w1"]);
    let w1 = applied.await.unwrap();
    let w1_rv = w1["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let log = server.requests();
    assert!(
        log.iter().any(|r| r.starts_with("GET /api/v1/pods?")
            && r.contains(&format!("resourceVersion={FIRST_RESOURCE_VERSION}"))
            && r.contains("timeoutSeconds=290")
            && r.contains("watch=true")),
        "{log:?}"
    );

    // A dropped watch resumes from the last resourceVersion seen, without a list.
    server.drop_watches();
    server.apply(pod("kubeflow", "w2"));
    let lists_before = server
        .requests()
        .iter()
        .filter(|r| r.contains("limit="))
        .count();
    assert_eq!(said_next(&mut events, 1).await, ["Apply w2"]);
    assert!(server
        .requests()
        .iter()
        .any(|r| r.contains("watch=true") && r.contains(&format!("resourceVersion={w1_rv}"))));
    let lists_after = server
        .requests()
        .iter()
        .filter(|r| r.contains("limit="))
        .count();
    assert_eq!(lists_before, lists_after);

    // A cut watch: an error, maybe, then the watch again.
    server.sever_watches();
    server.apply(pod("kubeflow", "w3"));
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("Apply w3") {
        seen.push(said(&next_event(&mut events).await));
        assert!(seen.len() <= 3, "{seen:?}");
    }
    assert!(
        seen[..seen.len() - 1]
            .iter()
            .all(|s| s.starts_with("Err watch stream failed")),
        "{seen:?}"
    );

    // Resuming from before a compaction: 410, then a new list with everything.
    server.drop_watches();
    server.apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}));
    server.compact();
    let after = said_next(&mut events, 8).await;
    assert!(
        after[0].starts_with("Err error returned by apiserver during watch")
            && after[0].contains("Expired"),
        "{after:?}"
    );
    assert_eq!(
        after[1..],
        [
            "Init",
            "InitApply centraldashboard-5f8b",
            "InitApply ml-pipeline-ui-7d9c",
            "InitApply w1",
            "InitApply w2",
            "InitApply w3",
            "InitApply notebook-0",
        ]
    );
    assert_eq!(said_next(&mut events, 1).await, ["InitDone"]);

    // A list that vanishes on its second page: an error, and the watcher lists again.
    server.vanish_after_pages("pods", 1);
    server.drop_watches();
    server.compact();
    server.apply(pod("default", "w4"));
    server.compact();
    let err = said_next(&mut events, 4).await;
    assert!(err[0].contains("Expired"), "{err:?}");
    // The first page (default/w4, then kubeflow's first), and no more.
    assert_eq!(
        err[1..],
        ["Init", "InitApply w4", "InitApply centraldashboard-5f8b"]
    );
    let err = said(&next_event(&mut events).await);
    assert!(
        err.starts_with("Err failed to perform initial object list"),
        "{err}"
    );
    server.stop_vanishing("pods");
    let relisted = said_next(&mut events, 9).await;
    assert_eq!(relisted[0], "Init");
    assert_eq!(relisted[8], "InitDone");
    assert!(
        relisted.contains(&"InitApply w4".to_string()),
        "{relisted:?}"
    );
}

/// The watch-list strategy of kube-runtime's `watcher`: the state from one watch request with
/// `sendInitialEvents=true`, its end told by the annotated bookmark, then live changes.
#[tokio::test(flavor = "multi_thread")]
async fn kube_runtime_watcher_streams_the_initial_list() {
    use futures::StreamExt;
    use kube::runtime::watcher::{watcher, Config};
    let server = std::sync::Arc::new(ApiServer::start(config()).await);
    let dir = tempfile::tempdir().unwrap();
    let pods = pods_api(&server, dir.path()).await;
    let mut events: PodEvents = watcher(pods, Config::default().streaming_lists()).boxed();
    assert_eq!(said_next(&mut events, 5).await, LISTED);
    let log = server.requests();
    assert!(
        log.iter().all(|r| !r.contains("limit=")),
        "a list was made: {log:?}"
    );
    assert!(
        log.iter().any(|r| r.contains("sendInitialEvents=true")),
        "{log:?}"
    );
    let s = server.clone();
    tokio::task::spawn_blocking(move || {
        assert!(s.wait_for_watchers(1, Duration::from_secs(5)));
        assert!(s.delete("v1", "Pod", Some("team-a"), "notebook-0"));
    });
    assert_eq!(said_next(&mut events, 1).await, ["Delete notebook-0"]);
}
