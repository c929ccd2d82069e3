//! The API server stand-in of `tests/support` checked against the real `kubectl`: whatever
//! kubectl accepts from it (discovery, lists, pagination, errors) a real client sees the
//! same way from a real API server.

mod support;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::{objects_from, plural, ApiServer, Kubectl, ServerConfig};

/// Every YAML file under examples/kubeflow-incident, in a stable order.
fn example_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("read examples dir") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                out.push(p);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kubeflow-incident");
    let mut out = Vec::new();
    walk(&root, &mut out);
    out.sort();
    assert!(
        !out.is_empty(),
        "no example manifests under {}",
        root.display()
    );
    out
}

fn pod(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {"containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"]}]}
    })
}

/// The example objects plus five Pods (so that `--chunk-size=2` needs three pages).
fn objects() -> Vec<Value> {
    let files = example_files();
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let mut objects = objects_from(&paths);
    objects.extend([
        pod("kubeflow", "ml-pipeline-ui-7d9c"),
        pod("kubeflow-user-example-com", "analysis-0"),
        pod("kubeflow", "centraldashboard-5f8b"),
        pod("istio-system", "istio-ingressgateway-6c5d"),
        pod("kubeflow-user-team-b", "tf-train-gpu-0"),
    ]);
    objects
}

fn config() -> ServerConfig {
    ServerConfig {
        objects: objects(),
        ..ServerConfig::default()
    }
}

/// The served objects of a kind, in the order the server lists them (namespace, then name).
fn expected(objects: &[Value], kind: &str) -> Vec<Value> {
    let mut v: Vec<Value> = objects
        .iter()
        .filter(|o| o["kind"] == kind)
        .cloned()
        .collect();
    let key = |o: &Value| {
        (
            o.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            o.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        )
    };
    v.sort_by_key(key);
    v
}

impl Kubectl {
    /// Runs kubectl, which must succeed, and parses its standard output as JSON.
    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(out.status.success(), "kubectl {args:?} failed");
        serde_json::from_slice(&out.stdout).expect("kubectl printed JSON")
    }

    /// Runs kubectl, which must fail, and returns its standard error.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "kubectl {args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

fn items(list: &Value) -> Vec<Value> {
    assert_eq!(list["kind"], "List", "{list}");
    list["items"].as_array().expect("items").clone()
}

#[test]
fn plural_names_follow_kubernetes() {
    for (kind, p) in [
        ("Ingress", "ingresses"),
        ("NetworkPolicy", "networkpolicies"),
        ("AuthorizationPolicy", "authorizationpolicies"),
        ("Service", "services"),
        ("Endpoints", "endpoints"),
        ("Gateway", "gateways"),
        ("Notebook", "notebooks"),
        ("ClusterWorkflowTemplate", "clusterworkflowtemplates"),
        ("StorageClass", "storageclasses"),
        ("Pod", "pods"),
    ] {
        assert_eq!(plural(kind), p, "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_gets_pods_and_deployments_across_namespaces() {
    let cfg = config();
    let objects = cfg.objects.clone();
    let server = ApiServer::start(cfg).await;
    let k = Kubectl::new(&server);

    let list = k.json(&["get", "pods,deployments", "-A", "-o", "json"]);
    let mut want = expected(&objects, "Pod");
    want.extend(expected(&objects, "Deployment"));
    assert_eq!(want.len(), 5 + 6);
    assert_eq!(items(&list), want);

    let log = server.requests();
    assert!(
        log.contains(&"GET /api/v1/pods?limit=500".to_string()),
        "{log:?}"
    );
    assert!(
        log.contains(&"GET /apis/apps/v1/deployments?limit=500".to_string()),
        "{log:?}"
    );
    // kubectl discovered the API the legacy way after asking for aggregated discovery.
    // (client-go adds `?timeout=32s` to discovery requests.)
    for path in [
        "GET /api?",
        "GET /apis?",
        "GET /api/v1?",
        "GET /apis/apps/v1?",
    ] {
        assert!(
            log.iter().any(|l| l.starts_with(path)),
            "{path} not in {log:?}"
        );
    }
    // One namespace only, through the namespaced path.
    let list = k.json(&["get", "deploy", "-n", "kubeflow", "-o", "json"]);
    let want: Vec<Value> = expected(&objects, "Deployment")
        .into_iter()
        .filter(|o| o["metadata"]["namespace"] == "kubeflow")
        .collect();
    assert_eq!(want.len(), 3);
    assert_eq!(items(&list), want);
    assert!(server
        .requests()
        .contains(&"GET /apis/apps/v1/namespaces/kubeflow/deployments?limit=500".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_accepts_legacy_answers_to_aggregated_discovery() {
    let server = ApiServer::start(config()).await;
    let k = Kubectl::new(&server);
    // At -v=7 kubectl logs the Accept header of every request: it asks for aggregated
    // discovery (apidiscovery.k8s.io v2) and must fall back on the plain JSON it gets.
    let out = k.run(&["get", "pods", "-A", "-o", "name", "-v=7"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("as=APIGroupDiscoveryList"),
        "kubectl did not ask for aggregated discovery"
    );
    let names = String::from_utf8_lossy(&out.stdout);
    assert_eq!(names.lines().count(), 5, "{names}");
    assert!(names.lines().all(|l| l.starts_with("pod/")), "{names}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_reads_discovery() {
    let server = ApiServer::start(config()).await;
    let k = Kubectl::new(&server);

    let apis = k.json(&["get", "--raw", "/apis"]);
    assert_eq!(apis["kind"], "APIGroupList");
    let groups: Vec<&str> = apis["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    for g in [
        "apps",
        "argoproj.io",
        "batch",
        "kubeflow.org",
        "networking.istio.io",
        "networking.k8s.io",
        "security.istio.io",
    ] {
        assert!(groups.contains(&g), "{g} missing from {groups:?}");
    }
    let istio = apis["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "security.istio.io")
        .unwrap();
    assert_eq!(
        istio["preferredVersion"],
        json!({"groupVersion": "security.istio.io/v1beta1", "version": "v1beta1"})
    );

    let api = k.json(&["get", "--raw", "/api"]);
    assert_eq!(api["versions"], json!(["v1"]));
    let version = k.json(&["version", "-o", "json"]);
    assert_eq!(version["serverVersion"]["gitVersion"], "v1.33.1");

    let core = k.json(&["get", "--raw", "/api/v1"]);
    assert_eq!(core["groupVersion"], "v1");
    let names: Vec<&str> = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for r in ["configmaps", "namespaces", "pods", "secrets", "services"] {
        assert!(names.contains(&r), "{r} missing from {names:?}");
    }

    // kubectl's own view of discovery: every resource, with its scope.
    let out = k.run(&["api-resources", "--no-headers", "-o", "wide"]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    let row = |name: &str| -> Vec<String> {
        table
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .find(|cols| cols[0] == name)
            .unwrap_or_else(|| panic!("{name} missing from\n{table}"))
    };
    // NAME SHORTNAMES APIVERSION NAMESPACED KIND VERBS (no short names: one column less)
    assert_eq!(
        row("secrets")[1..],
        ["v1", "true", "Secret", "get,list,watch"]
    );
    assert_eq!(
        row("namespaces")[1..],
        ["ns", "v1", "false", "Namespace", "get,list,watch"]
    );
    assert_eq!(
        row("profiles")[1..],
        ["kubeflow.org/v1", "false", "Profile", "get,list,watch"]
    );
    assert_eq!(row("notebooks")[2], "true");
    assert_eq!(
        row("ingresses")[1..4],
        ["ing", "networking.k8s.io/v1", "true"]
    );
    assert_eq!(row("cronjobs")[2..4], ["batch/v1", "true"]);
    assert_eq!(row("authorizationpolicies")[1], "security.istio.io/v1beta1");
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_gets_custom_resources() {
    let cfg = config();
    let objects = cfg.objects.clone();
    let server = ApiServer::start(cfg).await;
    let k = Kubectl::new(&server);

    let list = k.json(&["get", "notebooks.kubeflow.org", "-A", "-o", "json"]);
    let want = expected(&objects, "Notebook");
    assert_eq!(want.len(), 1);
    assert_eq!(items(&list), want);

    // A cluster-scoped custom resource, and a single object by name.
    let list = k.json(&["get", "profiles", "-o", "json"]);
    assert_eq!(items(&list), expected(&objects, "Profile"));
    let one = k.json(&[
        "get",
        "notebook",
        "analysis",
        "-n",
        "kubeflow-user-example-com",
        "-o",
        "json",
    ]);
    assert_eq!(one, want[0]);
    let log = server.requests();
    assert!(log.contains(&"GET /apis/kubeflow.org/v1/notebooks?limit=500".to_string()));
    assert!(log.contains(&"GET /apis/kubeflow.org/v1/profiles?limit=500".to_string()));
    assert!(log.contains(
        &"GET /apis/kubeflow.org/v1/namespaces/kubeflow-user-example-com/notebooks/analysis"
            .to_string()
    ));

    let err = k.fails(&["get", "pod", "nope", "-n", "kubeflow"]);
    assert!(
        err.contains("Error from server (NotFound): pods \"nope\" not found"),
        "{err}"
    );
    // kubectl checks the namespace of an object it did not find: every namespace in use
    // exists, as a Namespace object (plus "default"), unless the objects bring their own.
    assert!(server
        .requests()
        .contains(&"GET /api/v1/namespaces/kubeflow".to_string()));
    let err = k.fails(&["get", "pod", "nope", "-n", "elsewhere"]);
    assert!(
        err.contains("Error from server (NotFound): namespaces \"elsewhere\" not found"),
        "{err}"
    );
    let list = k.json(&["get", "namespaces", "-o", "json"]);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "default",
            "istio-system",
            "kubeflow",
            "kubeflow-user-example-com",
            "kubeflow-user-team-b"
        ]
    );
    assert_eq!(list["items"][0], support::namespace_object("default"));
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_pages_through_lists() {
    let cfg = config();
    let objects = cfg.objects.clone();
    let server = ApiServer::start(cfg).await;
    let k = Kubectl::new(&server);

    let list = k.json(&["get", "pods", "-A", "-o", "json", "--chunk-size=2"]);
    assert_eq!(items(&list), expected(&objects, "Pod"));
    let pages: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|l| l.starts_with("GET /api/v1/pods?"))
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert_eq!(pages[0], "GET /api/v1/pods?limit=2");
    assert!(
        pages[1..].iter().all(|p| p.contains("continue=")),
        "{pages:?}"
    );

    // What a page looks like on the wire.
    let page = k.json(&["get", "--raw", "/api/v1/pods?limit=2"]);
    assert_eq!(page["kind"], "PodList");
    assert_eq!(page["apiVersion"], "v1");
    assert_eq!(page["metadata"]["remainingItemCount"], 3);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let token = page["metadata"]["continue"].as_str().unwrap();
    let last = k.json(&[
        "get",
        "--raw",
        &format!("/api/v1/pods?limit=10&continue={token}"),
    ]);
    assert_eq!(last["items"].as_array().unwrap().len(), 3);
    assert!(last["metadata"].get("continue").is_none(), "{last}");
    assert!(last["metadata"].get("remainingItemCount").is_none());

    let err = k.fails(&["get", "--raw", "/api/v1/pods?limit=2&continue=bogus"]);
    assert!(err.contains("Error from server (Expired)"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_reports_forbidden_kinds() {
    let mut cfg = config();
    cfg.forbidden = vec!["workflows".into()];
    let server = ApiServer::start(cfg).await;
    let k = Kubectl::new(&server);

    let err = k.fails(&["get", "workflows.argoproj.io", "-A", "-o", "json"]);
    assert!(
        err.contains(
            "Error from server (Forbidden): workflows.argoproj.io is forbidden: User \"test\" \
             cannot list resource \"workflows\" in API group \"argoproj.io\" at the cluster scope"
        ),
        "{err}"
    );
    let err = k.fails(&["get", "workflows", "-n", "kubeflow-user-team-b"]);
    assert!(
        err.contains("in the namespace \"kubeflow-user-team-b\""),
        "{err}"
    );
    // Still in discovery, as RBAC does not hide resources.
    let out = k.run(&["api-resources", "--api-group=argoproj.io", "-o", "name"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "workflows.argoproj.io"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_times_out_on_slow_kinds_and_rejects_garbage() {
    let mut cfg = config();
    cfg.slow = vec![("deployments".into(), Duration::from_secs(3))];
    cfg.garbage = vec!["services".into()];
    let server = ApiServer::start(cfg).await;
    let k = Kubectl::new(&server);

    let start = Instant::now();
    let err = k.fails(&["get", "deployments", "-A", "--request-timeout=1s"]);
    assert!(start.elapsed() < Duration::from_millis(2900));
    assert!(
        err.contains("Client.Timeout") || err.contains("context deadline exceeded"),
        "{err}"
    );
    let err = k.fails(&["get", "services", "-A", "-o", "json"]);
    assert!(err.contains("invalid character"), "{err}");
    // Pods are unaffected.
    let list = k.json(&["get", "pods", "-A", "-o", "json"]);
    assert_eq!(items(&list).len(), 5);
}

/// One HTTP/1.1 GET with the given extra header lines; (status code, body).
fn raw_get(server: &ApiServer, path: &str, headers: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = server.url.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    let code = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.to_string();
    (code, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_credentials_are_unauthorized_and_kubectl_sends_none_over_http() {
    let server = ApiServer::start(config()).await;

    let (code, body) = raw_get(&server, "/api/v1/pods", "Authorization: Basic dTpw\r\n");
    assert_eq!(code, 401);
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Unauthorized");
    assert_eq!(status["code"], 401);
    let (code, _) = raw_get(&server, "/api/v1/pods", "Authorization: Bearer \r\n");
    assert_eq!(code, 401);
    let (code, body) = raw_get(&server, "/api/v1/pods", "Authorization: Bearer abc\r\n");
    assert_eq!(code, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["kind"],
        "PodList"
    );

    // kubectl drops the kubeconfig's token on a plain-http server (client-go reads a user's
    // credentials only for TLS transports): every request it makes is anonymous.
    let k = Kubectl::new(&server);
    let before = server.requests().len();
    let list = k.json(&["get", "pods", "-A", "-o", "json"]);
    assert_eq!(items(&list).len(), 5);
    let by_kubectl = server.requests()[before..].to_vec();
    assert!(by_kubectl.contains(&"GET /api/v1/pods?limit=500".to_string()));
    let anonymous = server.unauthenticated();
    assert!(
        by_kubectl.iter().all(|r| anonymous.contains(r)),
        "{by_kubectl:?}"
    );
    // kubectl's error for a 401, through --raw with a bad credential it cannot send: checked
    // on the wire above; a kubeconfig with a Basic user still sends nothing over http.
    let (code, _) = raw_get(&server, "/version", "");
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn stopped_server_refuses_connections() {
    let server = ApiServer::start(config()).await;
    let k = Kubectl::new(&server);
    let list = k.json(&["get", "pods", "-A", "-o", "json"]);
    assert_eq!(items(&list).len(), 5);
    let addr = server.url.trim_start_matches("http://").to_string();
    server.stop();
    assert!(std::net::TcpStream::connect(&addr).is_err());
    let err = k.fails(&["get", "pods", "-A", "-o", "json"]);
    assert!(err.contains("refused"), "{err}");
}
