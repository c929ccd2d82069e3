//! An in-process stand-in for a Kubernetes API server, for tests: read-only, JSON only, with
//! legacy discovery, paginated lists, single GETs and injectable faults (403, delays, garbage).
//!
//! Its behaviour is checked against the real `kubectl` in `tests/apiserver.rs`.
//!
//! The server runs on its own thread with its own tokio runtime, so a test may block (run
//! `kubectl` with `std::process::Command`, say) on any runtime flavour without starving it,
//! and stopping it is synchronous: once [`ApiServer::stop`] (or drop) returns, the listener
//! and every open connection are closed and new connections are refused.
#![allow(dead_code)]

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the stand-in serves.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// Full objects, each WITH `apiVersion` and `kind`.
    pub objects: Vec<Value>,
    /// Resource plurals answered 403 Forbidden (e.g. "workflows").
    pub forbidden: Vec<String>,
    /// Resource plurals answered only after a delay.
    pub slow: Vec<(String, Duration)>,
    /// Resource plurals answered 200 with a body that is not JSON.
    pub garbage: Vec<String>,
}

/// A running stand-in; stops serving when stopped or dropped.
pub struct ApiServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    log: Arc<Mutex<Vec<Logged>>>,
}

/// One request: `"GET /path?query"` and whether it carried a bearer token.
type Logged = (String, bool);

/// The resourceVersion of every list (the data never changes).
const RESOURCE_VERSION: &str = "4242";

impl ApiServer {
    /// Binds 127.0.0.1:0 and serves on a tokio runtime of its own thread.
    pub async fn start(cfg: ServerConfig) -> ApiServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            cluster: Cluster::new(&cfg.objects),
            cfg,
            log: log.clone(),
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("fake-apiserver".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("server runtime");
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    let app = Router::new().fallback(handle).with_state(shared);
                    tokio::select! {
                        r = axum::serve(listener, app) => r.expect("serve"),
                        _ = rx => {}
                    }
                });
                // Dropping the runtime cancels every connection task: sockets close at once.
                rt.shutdown_background();
            })
            .expect("server thread");
        ApiServer {
            url,
            shutdown: Some(tx),
            thread: Some(thread),
            log,
        }
    }

    /// Every request so far, in arrival order, as `"GET /api/v1/pods?limit=500"`.
    pub fn requests(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// The requests that came without any `Authorization` header (see [`handle`] on auth),
    /// as [`ApiServer::requests`] writes them.
    pub fn unauthenticated(&self) -> Vec<String> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|(_, t)| !t)
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// Stops serving; later connections are refused.
    pub fn stop(self) {
        drop(self)
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A kubeconfig file (in `dir`) with one cluster at `url`, a token user and a context named
/// "test" (the current context).
pub fn kubeconfig(url: &str, dir: &Path) -> PathBuf {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: \"{url}\"
users:
- name: test
  user:
    token: test-token
contexts:
- name: test
  context:
    cluster: test
    user: test
    namespace: default
current-context: test
preferences: {{}}
"
    );
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

/// The objects of manifest files (YAML, multi-doc), for [`ServerConfig::objects`].
pub fn objects_from(paths: &[&Path]) -> Vec<Value> {
    use jackstop_manifests::reader::{parse_text, ManifestSet, ReadOptions};
    let mut set = ManifestSet::default();
    for p in paths {
        let text = std::fs::read_to_string(p)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
        parse_text(
            &text,
            &p.display().to_string(),
            &ReadOptions::default(),
            &mut set,
        );
    }
    assert!(set.errors.is_empty(), "manifest errors: {:?}", set.errors);
    set.objects.into_iter().map(|o| o.body).collect()
}

/// The REST plural of a kind as Kubernetes names it (Ingress -> ingresses, NetworkPolicy ->
/// networkpolicies, Service -> services, Endpoints -> endpoints, Gateway -> gateways).
pub fn plural(kind: &str) -> String {
    let k = kind.to_ascii_lowercase();
    match k.as_str() {
        "endpoints" => return k,
        "prometheus" => return "prometheuses".into(),
        _ => {}
    }
    if k.ends_with('s') || k.ends_with('x') || k.ends_with("ch") || k.ends_with("sh") {
        format!("{k}es")
    } else if let Some(stem) = k.strip_suffix('y') {
        if stem.ends_with(['a', 'e', 'i', 'o', 'u']) {
            format!("{k}s")
        } else {
            format!("{stem}ies")
        }
    } else {
        format!("{k}s")
    }
}

/// Kinds that are cluster-scoped (besides every `Cluster*` kind).
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "Node",
    "PersistentVolume",
    "ComponentStatus",
    "CustomResourceDefinition",
    "APIService",
    "StorageClass",
    "CSIDriver",
    "CSINode",
    "VolumeAttachment",
    "PriorityClass",
    "RuntimeClass",
    "IngressClass",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "PodSecurityPolicy",
    "CertificateSigningRequest",
    "FlowSchema",
    "PriorityLevelConfiguration",
    "Profile",
];

fn namespaced(kind: &str) -> bool {
    !(kind.starts_with("Cluster") || CLUSTER_SCOPED.contains(&kind))
}

/// Resources present in every cluster, listed even when no object has them.
const BUILTINS: &[(&str, &str)] = &[
    ("v1", "Pod"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("v1", "Namespace"),
    ("v1", "Secret"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "ReplicaSet"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("networking.k8s.io/v1", "Ingress"),
];

fn short_names(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &["po"],
        "Service" => &["svc"],
        "ConfigMap" => &["cm"],
        "Namespace" => &["ns"],
        "Node" => &["no"],
        "ServiceAccount" => &["sa"],
        "Endpoints" => &["ep"],
        "PersistentVolumeClaim" => &["pvc"],
        "PersistentVolume" => &["pv"],
        "Deployment" => &["deploy"],
        "ReplicaSet" => &["rs"],
        "StatefulSet" => &["sts"],
        "DaemonSet" => &["ds"],
        "CronJob" => &["cj"],
        "Ingress" => &["ing"],
        "NetworkPolicy" => &["netpol"],
        _ => &[],
    }
}

/// One resource of one group version.
#[derive(Debug, Clone)]
struct Resource {
    kind: String,
    plural: String,
    namespaced: bool,
    /// Objects of this kind and apiVersion, ordered as etcd keys are: by namespace, then name.
    items: Vec<Value>,
}

/// The served data, indexed by group version.
#[derive(Debug, Default)]
struct Cluster {
    /// "v1", "apps/v1", ... -> plural -> resource.
    versions: BTreeMap<String, BTreeMap<String, Resource>>,
}

impl Cluster {
    fn new(objects: &[Value]) -> Cluster {
        let mut c = Cluster::default();
        for (gv, kind) in BUILTINS {
            c.resource(gv, kind);
        }
        for o in objects {
            let kind = o.get("kind").and_then(Value::as_str).expect("object kind");
            let gv = o
                .get("apiVersion")
                .and_then(Value::as_str)
                .expect("object apiVersion");
            c.resource(gv, kind).items.push(o.clone());
        }
        // Every namespace in use exists, as in a real cluster (kubectl asks for it when an
        // object is not found), and so does "default".
        let namespaces = c.resource("v1", "Namespace");
        let mut wanted: Vec<String> = vec!["default".into()];
        wanted.extend(
            objects
                .iter()
                .filter_map(|o| o.pointer("/metadata/namespace").and_then(Value::as_str))
                .map(str::to_string),
        );
        for ns in wanted {
            let exists = namespaces
                .items
                .iter()
                .any(|n| n.pointer("/metadata/name").and_then(Value::as_str) == Some(&ns));
            if !exists {
                namespaces.items.push(namespace_object(&ns));
            }
        }
        for r in c.versions.values_mut().flat_map(|m| m.values_mut()) {
            r.items.sort_by_key(|o| {
                let meta = o.get("metadata");
                let field = |f: &str| {
                    meta.and_then(|m| m.get(f))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                (field("namespace"), field("name"))
            });
        }
        c
    }

    fn resource(&mut self, gv: &str, kind: &str) -> &mut Resource {
        let p = plural(kind);
        self.versions
            .entry(gv.to_string())
            .or_default()
            .entry(p.clone())
            .or_insert_with(|| Resource {
                kind: kind.to_string(),
                plural: p,
                namespaced: namespaced(kind),
                items: Vec::new(),
            })
    }

    /// group -> versions, preferred first.
    fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut g: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for gv in self.versions.keys() {
            if let Some((group, version)) = gv.split_once('/') {
                g.entry(group.to_string())
                    .or_default()
                    .push(version.to_string());
            }
        }
        for versions in g.values_mut() {
            versions.sort_by_key(|v| version_priority(v));
        }
        g
    }
}

/// The Namespace object a real cluster would hold for `name`.
pub fn namespace_object(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"}
    })
}

/// Sort key of a Kubernetes version, highest priority first: GA before beta before alpha,
/// then the higher major, then the higher minor; anything else last, alphabetically.
fn version_priority(v: &str) -> (u8, std::cmp::Reverse<u64>, std::cmp::Reverse<u64>, String) {
    let parse = || -> Option<(u8, u64, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: u64 = rest[..digits].parse().ok()?;
        let tail = &rest[digits..];
        if tail.is_empty() {
            return Some((0, major, 0));
        }
        let (rank, minor) = if let Some(m) = tail.strip_prefix("beta") {
            (1, m)
        } else if let Some(m) = tail.strip_prefix("alpha") {
            (2, m)
        } else {
            return None;
        };
        Some((rank, major, minor.parse().ok()?))
    };
    match parse() {
        Some((rank, major, minor)) => (
            rank,
            std::cmp::Reverse(major),
            std::cmp::Reverse(minor),
            String::new(),
        ),
        None => (3, std::cmp::Reverse(0), std::cmp::Reverse(0), v.to_string()),
    }
}

struct Shared {
    cfg: ServerConfig,
    cluster: Cluster,
    log: Arc<Mutex<Vec<Logged>>>,
}

fn respond(code: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("response")
}

fn status(code: StatusCode, reason: &str, message: &str, details: Option<Value>) -> Response {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    if let Some(d) = details {
        body["details"] = d;
    }
    respond(code, &body)
}

fn not_found_path() -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        "the server could not find the requested resource",
        Some(json!({})),
    )
}

/// The query parameters, percent-decoded.
fn query(uri: &Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Continue tokens: hex of `{"v":"meta.k8s.io/v1","rv":..,"start":OFFSET}`, opaque to clients.
fn continue_token(offset: usize) -> String {
    let raw = json!({"v": "meta.k8s.io/v1", "rv": RESOURCE_VERSION, "start": offset}).to_string();
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

fn parse_continue(token: &str) -> Option<usize> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let bytes: Vec<u8> = token
        .as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [h, l] => Some(digit(*h)? * 16 + digit(*l)?),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    if v.get("v")?.as_str()? != "meta.k8s.io/v1" || v.get("rv")?.as_str()? != RESOURCE_VERSION {
        return None;
    }
    usize::try_from(v.get("start")?.as_u64()?).ok()
}

async fn handle(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let pq = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string());
    let auth = headers.get(header::AUTHORIZATION);
    s.log
        .lock()
        .unwrap()
        .push((format!("{method} {pq}"), auth.is_some()));

    // Any non-empty bearer token is accepted; any other credential (Basic, an empty token) is
    // refused with 401. A request without credentials is served, as to an anonymous user with
    // read access: real kubectl (client-go's clientcmd) never sends the kubeconfig's token over
    // plain http, only over https, so refusing anonymous requests would lock kubectl out.
    // `ApiServer::unauthenticated` tells which requests came without a token.
    if let Some(auth) = auth {
        let bearer = auth
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| !t.trim().is_empty());
        if !bearer {
            return status(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "Unauthorized",
                None,
            );
        }
    }
    if method != Method::GET {
        return status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!("the server does not allow this method on the requested resource ({method})"),
            Some(json!({})),
        );
    }

    let path = uri.path().trim_end_matches('/');
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["version"] => respond(
            StatusCode::OK,
            &json!({
                "major": "1",
                "minor": "33",
                "emulationMajor": "1",
                "emulationMinor": "33",
                "minCompatibilityMajor": "1",
                "minCompatibilityMinor": "32",
                "gitVersion": "v1.33.1",
                "gitCommit": "8adc0f041b8e7ad1d30e29cc59c6ae7a15e19828",
                "gitTreeState": "clean",
                "buildDate": "2025-05-15T08:19:08Z",
                "goVersion": "go1.24.2",
                "compiler": "gc",
                "platform": "linux/amd64"
            }),
        ),
        ["api"] => respond(
            StatusCode::OK,
            &json!({
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}
                ]
            }),
        ),
        ["apis"] => respond(StatusCode::OK, &group_list(&s.cluster)),
        ["api", "v1", rest @ ..] => resources(&s, "v1", rest, &query(&uri)).await,
        ["apis", group, version, rest @ ..] => {
            resources(&s, &format!("{group}/{version}"), rest, &query(&uri)).await
        }
        ["apis", group] => match s.cluster.groups().get(*group) {
            Some(versions) => respond(StatusCode::OK, &api_group(group, versions)),
            None => not_found_path(),
        },
        _ => not_found_path(),
    }
}

fn api_group(name: &str, versions: &[String]) -> Value {
    let gv = |v: &String| json!({"groupVersion": format!("{name}/{v}"), "version": v});
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": name,
        "versions": versions.iter().map(gv).collect::<Vec<_>>(),
        "preferredVersion": gv(&versions[0]),
    })
}

fn group_list(c: &Cluster) -> Value {
    let groups: Vec<Value> = c
        .groups()
        .iter()
        .map(|(name, versions)| {
            let mut g = api_group(name, versions);
            let o = g.as_object_mut().unwrap();
            o.remove("kind");
            o.remove("apiVersion");
            g
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn resource_list(gv: &str, rs: &BTreeMap<String, Resource>) -> Value {
    let resources: Vec<Value> = rs
        .values()
        .map(|r| {
            let mut v = json!({
                "name": r.plural,
                "singularName": r.kind.to_ascii_lowercase(),
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "list", "watch"],
            });
            let short = short_names(&r.kind);
            if !short.is_empty() {
                v["shortNames"] = json!(short);
            }
            v
        })
        .collect();
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    })
}

/// Everything under `/api/v1` or `/apis/{group}/{version}`; `rest` is what follows.
async fn resources(s: &Shared, gv: &str, rest: &[&str], q: &BTreeMap<String, String>) -> Response {
    let Some(rs) = s.cluster.versions.get(gv) else {
        return not_found_path();
    };
    // (plural, namespace, name)
    let (plural, ns, name): (&str, Option<&str>, Option<&str>) = match rest {
        [] => return respond(StatusCode::OK, &resource_list(gv, rs)),
        [p] => (p, None, None),
        ["namespaces", ns, p] => (p, Some(ns), None),
        ["namespaces", ns, p, n] => (p, Some(ns), Some(n)),
        [p, n] => (p, None, Some(n)),
        _ => return not_found_path(),
    };
    let Some(r) = rs.get(plural) else {
        return not_found_path();
    };
    if ns.is_some() && !r.namespaced {
        return not_found_path();
    }
    let group = gv.split_once('/').map(|(g, _)| g).unwrap_or("");
    let qualified = if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    };

    if let Some((_, delay)) = s.cfg.slow.iter().find(|(p, _)| p == plural) {
        tokio::time::sleep(*delay).await;
    }
    if s.cfg.forbidden.iter().any(|p| p == plural) {
        let verb = if name.is_some() { "get" } else { "list" };
        let scope = match ns {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        let named = name.map(|n| format!(" \"{n}\"")).unwrap_or_default();
        let mut details = json!({"group": group, "kind": plural});
        if let Some(n) = name {
            details["name"] = json!(n);
        }
        return status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!(
                "{qualified}{named} is forbidden: User \"test\" cannot {verb} resource \"{plural}\" in API group \"{group}\" {scope}"
            ),
            Some(details),
        );
    }
    if s.cfg.garbage.iter().any(|p| p == plural) {
        return Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("not json{"))
            .expect("response");
    }

    let in_ns = |o: &&Value| match ns {
        None => true,
        Some(ns) => o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns),
    };
    if let Some(name) = name {
        // `/api/v1/namespaces/{name}` is a GET of a Namespace, not a namespaced list.
        return match r
            .items
            .iter()
            .filter(in_ns)
            .find(|o| o.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
        {
            Some(o) => respond(StatusCode::OK, o),
            None => status(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("{qualified} \"{name}\" not found"),
                Some(json!({"name": name, "group": group, "kind": plural})),
            ),
        };
    }

    let items: Vec<&Value> = r.items.iter().filter(in_ns).collect();
    let start = match q.get("continue").filter(|c| !c.is_empty()) {
        None => 0,
        Some(token) => match parse_continue(token) {
            Some(offset) if offset <= items.len() => offset,
            _ => {
                return status(
                    StatusCode::GONE,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                    None,
                )
            }
        },
    };
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let end = limit.map_or(items.len(), |l| (start + l).min(items.len()));
    let mut metadata = json!({"resourceVersion": RESOURCE_VERSION});
    if end < items.len() {
        metadata["continue"] = json!(continue_token(end));
        metadata["remainingItemCount"] = json!(items.len() - end);
    }
    respond(
        StatusCode::OK,
        &json!({
            "apiVersion": gv,
            "kind": format!("{}List", r.kind),
            "metadata": metadata,
            "items": &items[start..end],
        }),
    )
}
