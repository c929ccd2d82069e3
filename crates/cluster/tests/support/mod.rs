//! An in-process stand-in for a Kubernetes API server, for tests: JSON only, with legacy
//! discovery, paginated lists, single GETs, WATCH streams, mutation from the test side, and
//! injectable faults.
//!
//! What it serves:
//! - Discovery (`/api`, `/apis`, `/api/v1`, `/apis/{group}[/{version}]`, `/version`) of the
//!   built-in resources plus every apiVersion and kind among the objects; applying an object of
//!   a new kind adds that resource (and its group) to discovery.
//! - Lists (cluster-wide or namespaced) with `limit` and `continue`, in etcd key order
//!   (namespace, then name), `fieldSelector` on `metadata.name` / `metadata.namespace` and
//!   equality / existence `labelSelector`s. `metadata.resourceVersion` of a list is the
//!   current resourceVersion; a continue page keeps that of its first page, and goes 410
//!   `Expired` once that resource changed (or the history was compacted) after it, as with a
//!   compacted etcd.
//! - Watches (`watch=true` or `watch=1` on a list path, or the old `/watch/` paths): a chunked
//!   `application/json` stream, one `{"type":..,"object":..}` per line, with the real server's
//!   semantics for `resourceVersion` (absent or "0": the current objects as ADDED, then live
//!   events; else every retained event after it, then live ones; older than the compaction
//!   point: one `ERROR` event with a 410 `Expired` Status, then the end), `sendInitialEvents`
//!   (ADDED for every object, then a BOOKMARK annotated `k8s.io/initial-events-end`),
//!   `allowWatchBookmarks` (a BOOKMARK every [`ApiServer::set_bookmark_interval`], 1 s by
//!   default) and `timeoutSeconds` (a clean end after that long).
//! - Mutation from the test ([`ApiServer::apply`], [`ApiServer::delete`]): a global
//!   resourceVersion counter (decimal strings from 1000, strictly increasing); an applied
//!   object gets `metadata.resourceVersion`, and `uid` and `creationTimestamp` when it has
//!   none; every change is an event for the matching watches and is kept in a history until
//!   [`ApiServer::compact`].
//!
//! The objects of [`ServerConfig::objects`] are served as given, byte for byte (the older tests
//! compare them so), hence maybe without a resourceVersion: lists and GETs show them so, and
//! watch events give them the first resourceVersion (1000), as watch clients (kube-runtime's
//! `watcher`) refuse an event without one.
//!
//! Faults: forbidden plurals (403 on get, list and watch, with the verb in the message), slow
//! ones (every request waits first, watches too), garbage ones (200 with a body that is not
//! JSON), a list that vanishes after some pages ([`ApiServer::vanish_after_pages`]: the
//! response starts, then the connection is closed mid-body; kubectl prints the pages it had
//! and fails with "unexpected error when reading response body ... unexpected EOF", and
//! kube-runtime's `watcher` reports `InitialListFailed` and lists again), and watches ended at
//! once, cleanly ([`ApiServer::drop_watches`]: clients watch again from their last
//! resourceVersion) or by cutting the connection ([`ApiServer::sever_watches`]: an I/O error,
//! then the same).
//!
//! Writes over HTTP, for `jackstop fix --apply` and `kubectl patch|apply|create`: PATCH of
//! one object as a JSON merge patch (`application/merge-patch+json`), a JSON patch
//! (`application/json-patch+json`: all of it or nothing, 422 when an operation fails, as its
//! `test` does when the object moved on), a strategic merge patch
//! (built-in kinds only, applied as a merge patch: lists are replaced, not merged by key; a
//! custom resource gets 415 as from a real server) or a server-side apply
//! (`application/apply-patch+yaml`, JSON body, `fieldManager` required: creates the object, or
//! merges the applied configuration into it; managed fields are not tracked), and POST of a
//! new object (409 when it exists, 404 when its namespace does not). `dryRun=All` runs it all
//! (validation included) and stores nothing; any other `dryRun` is refused (400). What is
//! validated (422 `Invalid`, with the field in the message as a real server words it): a
//! Service's type and the fields only a NodePort or LoadBalancer may have (node ports, source
//! ranges, external traffic policy), a workload's `spec.replicas`, `spec.suspend` of Jobs and
//! CronJobs, a NetworkPolicy's policy types, protocols and ports; renaming an object by a
//! patch is refused. As API servers 1.20 and later do, a Service update that changes its
//! type clears what no longer applies when the update left it as it was (node ports, health
//! check node port, `allocateLoadBalancerNodePorts`, `loadBalancerClass`,
//! `externalTrafficPolicy`); source ranges are not cleared, and refused. PUT and DELETE are
//! not modelled (405). Discovery
//! still lists the verbs get, list and watch only (tests check kubectl's view of it); neither
//! kubectl nor kube-rs looks at verbs before a write.
//!
//! Not modelled: Table and protobuf answers, a
//! MODIFIED that takes an object out of a watch's selector (a real server sends DELETED; this
//! one sends nothing), and the server-chosen timeout of watches without `timeoutSeconds`.
//!
//! Its behaviour is checked against the real `kubectl` in `tests/apiserver.rs` (discovery,
//! lists, pages, errors) and `tests/watch_server.rs`: `kubectl get -w` and `kubectl get --raw`
//! of watch streams, the vanishing list, kube-rs's watch decoding and kube-runtime's
//! `watcher` (list then watch, and watch-list streaming; resumed after a drop or a cut,
//! relisted after a 410), and a hand-written HTTP/1.1 client for the wire format of watches,
//! bookmarks and their two ends.
//!
//! The server runs on its own thread with its own tokio runtime, so a test may block (run
//! `kubectl` with `std::process::Command`, say) on any runtime flavour without starving it,
//! and stopping it is synchronous: once [`ApiServer::stop`] (or drop) returns, the listener
//! and every open connection are closed and new connections are refused. The mutation methods
//! are synchronous too (a std `Mutex`), callable from any thread or async test.
#![allow(dead_code)]

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use futures::StreamExt;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{broadcast, mpsc};

/// What the stand-in serves at start. (More knobs are methods of [`ApiServer`], so that this
/// struct keeps the four fields that tests spell out in full.)
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
    shared: Arc<Shared>,
}

/// One request: `"GET /path?query"` and whether it carried a bearer token.
type Logged = (String, bool);

/// The resourceVersion of the objects of [`ServerConfig::objects`]; every change adds one.
pub const FIRST_RESOURCE_VERSION: u64 = 1000;

/// How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK, unless set otherwise.
pub const DEFAULT_BOOKMARK_INTERVAL: Duration = Duration::from_secs(1);

/// Live messages a watch may lag behind before it is ended (as a real server drops a watcher
/// that does not keep up).
const LIVE_CAPACITY: usize = 4096;

impl ApiServer {
    /// Binds 127.0.0.1:0 and serves on a tokio runtime of its own thread.
    pub async fn start(cfg: ServerConfig) -> ApiServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let (live, _) = broadcast::channel(LIVE_CAPACITY);
        let shared = Arc::new(Shared {
            state: Mutex::new(Store {
                cluster: Cluster::new(&cfg.objects),
                rv: FIRST_RESOURCE_VERSION,
                history: Vec::new(),
                compacted: FIRST_RESOURCE_VERSION,
                live,
                bookmark_interval: Some(DEFAULT_BOOKMARK_INTERVAL),
                vanish: BTreeMap::new(),
                pages: BTreeMap::new(),
            }),
            cfg,
            log: Mutex::new(Vec::new()),
            watchers: AtomicUsize::new(0),
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = shared.clone();
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
                    let app = Router::new().fallback(handle).with_state(served);
                    tokio::select! {
                        r = axum::serve(listener, app) => r.expect("serve"),
                        _ = rx => {}
                    }
                });
                // Dropping the runtime cancels every connection task (and every watch): sockets
                // close at once.
                rt.shutdown_background();
            })
            .expect("server thread");
        ApiServer {
            url,
            shutdown: Some(tx),
            thread: Some(thread),
            shared,
        }
    }

    /// Every request so far, in arrival order, as `"GET /api/v1/pods?limit=500"` (watches
    /// too, with their query: `"GET /api/v1/pods?resourceVersion=1003&watch=true"`).
    pub fn requests(&self) -> Vec<String> {
        self.shared
            .log
            .lock()
            .unwrap()
            .iter()
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// The requests that came without any `Authorization` header (see [`handle`] on auth),
    /// as [`ApiServer::requests`] writes them.
    pub fn unauthenticated(&self) -> Vec<String> {
        let log = self.shared.log.lock().unwrap();
        log.iter()
            .filter(|(_, t)| !t)
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// Creates or replaces the object with the same apiVersion, kind, namespace and name, and
    /// tells the watches (ADDED or MODIFIED). The object needs `apiVersion`, `kind` and
    /// `metadata.name`; a namespaced kind without a namespace goes to "default", and a
    /// namespace not yet there is created first (ADDED on namespaces). It gets a new
    /// `metadata.resourceVersion`, and keeps (or else gets) `uid` and `creationTimestamp`.
    /// A new kind or group version joins discovery. Returns the object as stored.
    pub fn apply(&self, obj: Value) -> Value {
        let mut st = self.shared.lock();
        st.apply(obj)
    }

    /// Deletes an object and tells the watches (DELETED, with a new resourceVersion); false if
    /// there was none. `namespace` None for a namespaced kind means "default".
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> bool {
        let mut st = self.shared.lock();
        st.delete(api_version, kind, namespace, name)
    }

    /// The object as served now, if any.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let st = self.shared.lock();
        let r = st.cluster.versions.get(api_version)?.get(&plural(kind))?;
        let key = object_key(r.namespaced, namespace, name);
        r.position(&key).ok().map(|i| r.items[i].clone())
    }

    /// The current resourceVersion (that of the last change), as lists report it.
    pub fn resource_version(&self) -> String {
        self.shared.lock().rv.to_string()
    }

    /// Forgets the history of changes up to now: a watch that resumes from an older
    /// resourceVersion gets a 410 `Expired` ERROR event, and older continue tokens expire.
    pub fn compact(&self) {
        let mut st = self.shared.lock();
        st.compacted = st.rv;
        st.history.clear();
    }

    /// Ends every open watch stream now, cleanly (the chunked body ends, as when the real
    /// server ends a watch): clients see the stream end and watch again from the last
    /// resourceVersion they saw. [`ApiServer::watchers`] falls to 0 shortly after.
    pub fn drop_watches(&self) {
        let st = self.shared.lock();
        let _ = st.live.send(Live::End);
    }

    /// Cuts the connection of every open watch stream (no end of the chunked body, as when
    /// the server dies): clients see an I/O error ("unexpected EOF"), then watch again.
    pub fn sever_watches(&self) {
        let st = self.shared.lock();
        let _ = st.live.send(Live::Sever);
    }

    /// Compacts (as [`ApiServer::compact`]) and tells every open watch stream, in the stream,
    /// that its resourceVersion is too old (an ERROR event with a 410 Expired Status), then
    /// ends it, as the real server does when a watcher falls behind its watch cache: clients
    /// must list again.
    pub fn expire_watches(&self) {
        let mut st = self.shared.lock();
        st.compacted = st.rv;
        st.history.clear();
        let rv = st.rv;
        let _ = st.live.send(Live::Expire(rv));
    }

    /// How many watch streams are open now.
    pub fn watchers(&self) -> usize {
        self.shared.watchers.load(Ordering::SeqCst)
    }

    /// Waits (blocking, polling) until at least `n` watch streams are open; false if that
    /// did not happen `within`.
    pub fn wait_for_watchers(&self, n: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while self.watchers() < n {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK (None: never); for
    /// the watches that start after the call. Default [`DEFAULT_BOOKMARK_INTERVAL`].
    pub fn set_bookmark_interval(&self, every: Option<Duration>) {
        self.shared.lock().bookmark_interval = every;
    }

    /// From now on, after `pages` more list pages (responses to a list request, cluster-wide
    /// or namespaced, first or continued) of `plural`, every list request of it vanishes: the
    /// response starts (200, a few bytes of JSON) and then the connection is closed without
    /// the end of the body. kubectl then fails with `unexpected EOF`; kube-rs with a body
    /// error. Watches and GETs of one object are not affected.
    pub fn vanish_after_pages(&self, plural: &str, pages: usize) {
        let mut st = self.shared.lock();
        st.vanish.insert(plural.to_string(), pages);
        st.pages.insert(plural.to_string(), 0);
    }

    /// Undoes [`ApiServer::vanish_after_pages`]: lists of `plural` are served again.
    pub fn stop_vanishing(&self, plural: &str) {
        self.shared.lock().vanish.remove(plural);
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
/// The real kubectl wired to one stand-in: its own kubeconfig and discovery cache, nothing
/// from $HOME.
pub struct Kubectl {
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl Kubectl {
    pub fn new(server: &ApiServer) -> Kubectl {
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = kubeconfig(&server.url, dir.path());
        Kubectl { dir, kubeconfig }
    }

    /// `kubectl ARGS`, not started.
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new("kubectl");
        c.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .env("HOME", self.dir.path());
        c
    }

    /// Runs kubectl to its end, telling on stderr what it did and how long it took.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        let start = Instant::now();
        let out = self.command(args).output().expect("kubectl runs");
        eprintln!(
            "kubectl {} -> {} in {:?}\nstderr: {}",
            args.join(" "),
            out.status,
            start.elapsed(),
            String::from_utf8_lossy(&out.stderr)
        );
        out
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
        // The AWS Load Balancer Controller's CRD names its plural as its kind.
        "endpoints" | "ingressclassparams" => return k,
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
    /// The resourceVersion of its last change (continue tokens older than that expire).
    changed: u64,
}

/// (namespace, name) of a stored object: the order of [`Resource::items`].
type ObjectKey = (String, String);

fn key_of(o: &Value) -> ObjectKey {
    let field = |f: &str| {
        o.get("metadata")
            .and_then(|m| m.get(f))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (field("namespace"), field("name"))
}

/// The key of an object named by a test: a namespaced kind without a namespace is in
/// "default"; a cluster-scoped one has none.
fn object_key(namespaced: bool, namespace: Option<&str>, name: &str) -> ObjectKey {
    let ns = match (namespaced, namespace) {
        (true, Some(ns)) => ns,
        (true, None) => "default",
        (false, _) => "",
    };
    (ns.to_string(), name.to_string())
}

impl Resource {
    fn position(&self, key: &ObjectKey) -> Result<usize, usize> {
        self.items.binary_search_by(|o| key_of(o).cmp(key))
    }
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
            r.items.sort_by_key(key_of);
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
                changed: FIRST_RESOURCE_VERSION,
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

/// One change of the served data, as watches see it.
#[derive(Debug)]
struct Change {
    rv: u64,
    gv: String,
    plural: String,
    /// "ADDED", "MODIFIED" or "DELETED".
    kind: &'static str,
    object: Value,
}

/// What open watches are told, in order.
#[derive(Debug, Clone)]
enum Live {
    Change(Arc<Change>),
    /// [`ApiServer::drop_watches`]
    End,
    /// [`ApiServer::sever_watches`]
    Sever,
    /// [`ApiServer::expire_watches`]: a 410 ERROR event, then the end.
    Expire(u64),
}

/// The mutable state, behind [`Shared::state`].
struct Store {
    cluster: Cluster,
    /// The current resourceVersion: that of the last change.
    rv: u64,
    /// The changes after `compacted`, oldest first.
    history: Vec<Arc<Change>>,
    /// Watches from before this resourceVersion get 410; so do older continue tokens.
    compacted: u64,
    /// Every change, drop and sever goes here, under the lock, so watches see them in order.
    live: broadcast::Sender<Live>,
    bookmark_interval: Option<Duration>,
    /// plural -> pages served before its lists vanish.
    vanish: BTreeMap<String, usize>,
    /// plural -> list pages served since [`ApiServer::vanish_after_pages`].
    pages: BTreeMap<String, usize>,
}

fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    let o = obj.as_object_mut().expect("an object is a JSON object");
    let m = o.entry("metadata").or_insert_with(|| json!({}));
    if !m.is_object() {
        *m = json!({});
    }
    m.as_object_mut().unwrap()
}

/// `obj` with `metadata.resourceVersion` set to `rv` where it has none.
fn with_resource_version(obj: &Value, rv: u64) -> Value {
    let mut o = obj.clone();
    metadata_mut(&mut o)
        .entry("resourceVersion")
        .or_insert_with(|| json!(rv.to_string()));
    o
}

/// A fresh UUID-shaped uid, unique in the process.
fn new_uid() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "6a6b7374-0000-4000-8000-{:012x}",
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// `t` as Kubernetes writes times: RFC 3339, UTC, whole seconds ("2026-11-26T18:00:00Z").
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days to a civil date (Howard Hinnant's algorithm), for days since 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

impl Store {
    /// Records a change: a new resourceVersion, the history, the watches.
    fn record(&mut self, gv: &str, plural: &str, kind: &'static str, object: Value) {
        let change = Arc::new(Change {
            rv: self.rv,
            gv: gv.to_string(),
            plural: plural.to_string(),
            kind,
            object,
        });
        self.history.push(change.clone());
        // No receiver (no watch open) is not an error.
        let _ = self.live.send(Live::Change(change));
    }

    fn apply(&mut self, mut obj: Value) -> Value {
        let gv = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .expect("applied object has an apiVersion")
            .to_string();
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .expect("applied object has a kind")
            .to_string();
        assert!(
            obj.pointer("/metadata/name")
                .and_then(Value::as_str)
                .is_some(),
            "applied object has no metadata.name: {obj}"
        );
        let is_namespaced = namespaced(&kind);
        let meta = metadata_mut(&mut obj);
        if is_namespaced {
            if meta.get("namespace").and_then(Value::as_str).is_none() {
                meta.insert("namespace".into(), json!("default"));
            }
            let ns = meta["namespace"].as_str().unwrap().to_string();
            let key = object_key(false, None, &ns);
            if self
                .cluster
                .resource("v1", "Namespace")
                .position(&key)
                .is_err()
            {
                self.apply(namespace_object(&ns));
            }
        } else {
            meta.remove("namespace");
        }

        self.rv += 1;
        let rv = self.rv;
        let r = self.cluster.resource(&gv, &kind);
        let plural = r.plural.clone();
        let key = key_of(&obj);
        let meta = metadata_mut(&mut obj);
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        let event = match r.position(&key) {
            Ok(i) => {
                let old = r.items[i].get("metadata").cloned().unwrap_or_default();
                for f in ["uid", "creationTimestamp"] {
                    if !meta.contains_key(f) {
                        if let Some(v) = old.get(f) {
                            meta.insert(f.into(), v.clone());
                        }
                    }
                }
                r.items[i] = obj.clone();
                "MODIFIED"
            }
            Err(i) => {
                meta.entry("uid").or_insert_with(|| json!(new_uid()));
                meta.entry("creationTimestamp")
                    .or_insert_with(|| json!(rfc3339(SystemTime::now())));
                r.items.insert(i, obj.clone());
                "ADDED"
            }
        };
        r.changed = rv;
        self.record(&gv, &plural, event, obj.clone());
        obj
    }

    fn delete(&mut self, gv: &str, kind: &str, namespace: Option<&str>, name: &str) -> bool {
        let Some(r) = self
            .cluster
            .versions
            .get_mut(gv)
            .and_then(|m| m.get_mut(&plural(kind)))
        else {
            return false;
        };
        let Ok(i) = r.position(&object_key(r.namespaced, namespace, name)) else {
            return false;
        };
        let mut obj = r.items.remove(i);
        self.rv += 1;
        r.changed = self.rv;
        let plural = r.plural.clone();
        metadata_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.record(gv, &plural, "DELETED", obj);
        true
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
    state: Mutex<Store>,
    log: Mutex<Vec<Logged>>,
    /// Open watch streams.
    watchers: AtomicUsize,
}

impl Shared {
    /// The state; a test that panicked while holding it does not poison the others.
    fn lock(&self) -> MutexGuard<'_, Store> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn respond(code: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("response")
}

fn status_body(code: StatusCode, reason: &str, message: &str, details: Option<Value>) -> Value {
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
    body
}

fn status(code: StatusCode, reason: &str, message: &str, details: Option<Value>) -> Response {
    respond(code, &status_body(code, reason, message, details))
}

fn not_found_path() -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        "the server could not find the requested resource",
        Some(json!({})),
    )
}

fn bad_request(message: &str) -> Response {
    status(StatusCode::BAD_REQUEST, "BadRequest", message, None)
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

/// Continue tokens: hex of `{"v":"meta.k8s.io/v1","rv":..,"start":OFFSET}`, opaque to
/// clients; `rv` is the resourceVersion of the first page.
fn continue_token(rv: u64, offset: usize) -> String {
    let raw = json!({"v": "meta.k8s.io/v1", "rv": rv.to_string(), "start": offset}).to_string();
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

/// (resourceVersion, offset) of a continue token.
fn parse_continue(token: &str) -> Option<(u64, usize)> {
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
    if v.get("v")?.as_str()? != "meta.k8s.io/v1" {
        return None;
    }
    let rv = v.get("rv")?.as_str()?.parse().ok()?;
    Some((rv, usize::try_from(v.get("start")?.as_u64()?).ok()?))
}

/// Which objects a request is about: its namespace, and its field and label selectors.
#[derive(Debug, Clone, Default)]
struct Filter {
    namespace: Option<String>,
    /// (field, equal?, value) on `metadata.name` or `metadata.namespace`.
    fields: Vec<(String, bool, String)>,
    labels: Vec<LabelRequirement>,
}

#[derive(Debug, Clone)]
enum LabelRequirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    Absent(String),
}

impl Filter {
    /// The filter of a request, or the message of a 400 Bad Request.
    fn parse(
        namespace: Option<&str>,
        name: Option<&str>,
        q: &BTreeMap<String, String>,
    ) -> Result<Filter, String> {
        let mut f = Filter {
            namespace: namespace.map(str::to_string),
            ..Filter::default()
        };
        if let Some(name) = name {
            f.fields
                .push(("metadata.name".into(), true, name.to_string()));
        }
        let parts = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()
        };
        for part in parts(q.get("fieldSelector").map_or("", String::as_str)) {
            let (k, eq, v) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (k, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                ));
            };
            let k = k.trim();
            if k != "metadata.name" && k != "metadata.namespace" {
                return Err(format!("field label not supported: {k}"));
            }
            f.fields.push((k.to_string(), eq, v.trim().to_string()));
        }
        for part in parts(q.get("labelSelector").map_or("", String::as_str)) {
            if part.contains(['(', ')', ' ', '<', '>']) {
                return Err(format!(
                    "unable to parse requirement: the stand-in API server supports only =, ==, != and existence in label selectors, not '{part}'"
                ));
            }
            let req = if let Some((k, v)) = part.split_once("!=") {
                LabelRequirement::NotEquals(k.into(), v.into())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                LabelRequirement::Equals(k.into(), v.into())
            } else if let Some(k) = part.strip_prefix('!') {
                LabelRequirement::Absent(k.into())
            } else {
                LabelRequirement::Exists(part)
            };
            f.labels.push(req);
        }
        Ok(f)
    }

    fn matches(&self, o: &Value) -> bool {
        let meta = |f: &str| o.pointer(&format!("/metadata/{f}")).and_then(Value::as_str);
        if let Some(ns) = &self.namespace {
            if meta("namespace") != Some(ns.as_str()) {
                return false;
            }
        }
        let fields_ok = self.fields.iter().all(|(k, eq, v)| {
            let have = meta(k.trim_start_matches("metadata.")).unwrap_or_default();
            (have == v) == *eq
        });
        let label = |k: &str| {
            o.pointer("/metadata/labels")
                .and_then(|l| l.get(k))
                .and_then(Value::as_str)
        };
        fields_ok
            && self.labels.iter().all(|r| match r {
                LabelRequirement::Equals(k, v) => label(k) == Some(v.as_str()),
                LabelRequirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
                LabelRequirement::Exists(k) => label(k).is_some(),
                LabelRequirement::Absent(k) => label(k).is_none(),
            })
    }
}

async fn handle(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pq = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string());
    let auth = headers.get(header::AUTHORIZATION);
    s.log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
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
    if method == Method::PATCH || method == Method::POST {
        let path = uri.path().trim_end_matches('/');
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let (gv, rest) = match segs.as_slice() {
            ["api", "v1", rest @ ..] => ("v1".to_string(), rest),
            ["apis", group, version, rest @ ..] => (format!("{group}/{version}"), rest),
            _ => return not_found_path(),
        };
        return write(&s, &method, &gv, rest, &query(&uri), &headers, &body);
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
        ["apis"] => respond(StatusCode::OK, &group_list(&s.lock().cluster)),
        ["api", "v1", rest @ ..] => resources(&s, "v1", rest, &query(&uri)).await,
        ["apis", group, version, rest @ ..] => {
            resources(&s, &format!("{group}/{version}"), rest, &query(&uri)).await
        }
        ["apis", group] => {
            let versions = s.lock().cluster.groups().get(*group).cloned();
            match versions {
                Some(versions) => respond(StatusCode::OK, &api_group(group, &versions)),
                None => not_found_path(),
            }
        }
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

/// The resource a request is about, as it was when the request came.
struct Target {
    gv: String,
    kind: String,
    plural: String,
    namespaced: bool,
}

/// Everything under `/api/v1` or `/apis/{group}/{version}`; `rest` is what follows.
async fn resources(
    s: &Arc<Shared>,
    gv: &str,
    rest: &[&str],
    q: &BTreeMap<String, String>,
) -> Response {
    // The old watch paths (`/api/v1/watch/pods`), which real servers still serve.
    let (rest, watch_path) = match rest {
        ["watch", rest @ ..] if !rest.is_empty() => (rest, true),
        _ => (rest, false),
    };
    let watch = watch_path || matches!(q.get("watch").map(String::as_str), Some("true" | "1"));
    // (plural, namespace, name)
    let (plural, ns, name): (&str, Option<&str>, Option<&str>) = match rest {
        [] => {
            let st = s.lock();
            return match st.cluster.versions.get(gv) {
                Some(rs) => respond(StatusCode::OK, &resource_list(gv, rs)),
                None => not_found_path(),
            };
        }
        [p] => (p, None, None),
        ["namespaces", ns, p] => (p, Some(ns), None),
        ["namespaces", ns, p, n] => (p, Some(ns), Some(n)),
        [p, n] => (p, None, Some(n)),
        _ => return not_found_path(),
    };
    let target = {
        let st = s.lock();
        st.cluster
            .versions
            .get(gv)
            .and_then(|rs| rs.get(plural))
            .map(|r| Target {
                gv: gv.to_string(),
                kind: r.kind.clone(),
                plural: r.plural.clone(),
                namespaced: r.namespaced,
            })
    };
    let Some(target) = target else {
        return not_found_path();
    };
    if ns.is_some() && !target.namespaced {
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
        let verb = if watch {
            "watch"
        } else if name.is_some() {
            "get"
        } else {
            "list"
        };
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

    if watch {
        // A watch of one name is a watch of the list with a field selector.
        let filter = match Filter::parse(ns, name, q) {
            Ok(f) => f,
            Err(m) => return bad_request(&m),
        };
        return start_watch(s, target, filter, q);
    }
    if let Some(name) = name {
        // `/api/v1/namespaces/{name}` is a GET of a Namespace, not a namespaced list.
        let st = s.lock();
        let in_ns = |o: &&Value| match ns {
            None => true,
            Some(ns) => o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns),
        };
        let found = st.cluster.versions[gv][plural]
            .items
            .iter()
            .filter(in_ns)
            .find(|o| o.pointer("/metadata/name").and_then(Value::as_str) == Some(name));
        return match found {
            Some(o) => respond(StatusCode::OK, o),
            None => status(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("{qualified} \"{name}\" not found"),
                Some(json!({"name": name, "group": group, "kind": plural})),
            ),
        };
    }
    match Filter::parse(ns, None, q) {
        Ok(filter) => list(s, &target, &filter, q),
        Err(m) => bad_request(&m),
    }
}

fn list(s: &Shared, t: &Target, filter: &Filter, q: &BTreeMap<String, String>) -> Response {
    let mut st = s.lock();
    let st = &mut *st;
    if let Some(&after) = st.vanish.get(&t.plural) {
        if st.pages.get(&t.plural).copied().unwrap_or(0) >= after {
            return vanishing(t);
        }
    }
    let Some(r) = st
        .cluster
        .versions
        .get(&t.gv)
        .and_then(|rs| rs.get(&t.plural))
    else {
        return not_found_path();
    };
    let items: Vec<&Value> = r.items.iter().filter(|o| filter.matches(o)).collect();
    let (rv, start) = match q.get("continue").filter(|c| !c.is_empty()) {
        None => (st.rv, 0),
        Some(token) => match parse_continue(token) {
            Some((rv, offset))
                if offset <= items.len() && rv >= st.compacted && r.changed <= rv =>
            {
                (rv, offset)
            }
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
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if end < items.len() {
        metadata["continue"] = json!(continue_token(rv, end));
        metadata["remainingItemCount"] = json!(items.len() - end);
    }
    let body = json!({
        "apiVersion": t.gv,
        "kind": format!("{}List", r.kind),
        "metadata": metadata,
        "items": &items[start..end],
    });
    *st.pages.entry(t.plural.clone()).or_default() += 1;
    respond(StatusCode::OK, &body)
}

/// A list response that starts and never ends: 200, the first bytes of the JSON, then (after
/// a moment, so that they are on the wire) an error that makes hyper close the connection
/// without the last chunk.
fn vanishing(t: &Target) -> Response {
    let start = format!(
        "{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":{{\"resourceVersion\":\"",
        t.kind, t.gv
    );
    let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(start))]).chain(
        futures::stream::once(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "the stand-in API server vanished mid-list",
            ))
        }),
    );
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(body))
        .expect("response")
}

/// One watch event, as a line of the stream.
fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

/// The body of a BOOKMARK event.
fn bookmark(t: &Target, rv: u64, initial_events_end: bool) -> Value {
    let mut b = json!({
        "kind": t.kind,
        "apiVersion": t.gv,
        "metadata": {"resourceVersion": rv.to_string()},
    });
    if initial_events_end {
        b["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    b
}

/// A 200 chunked stream of these lines, then its end.
fn finite_stream(lines: Vec<Bytes>) -> Response {
    let body = futures::stream::iter(lines.into_iter().map(Ok::<_, std::io::Error>));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(body))
        .expect("response")
}

/// Counts an open watch while it lives.
struct WatcherGuard(Arc<Shared>);

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.0.watchers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a watch stream sends after its first lines.
struct WatchPlan {
    target: Target,
    filter: Filter,
    /// Live changes at or before this resourceVersion are not sent.
    after: u64,
    bookmarks: Option<Duration>,
    timeout: Option<Duration>,
}

/// Answers a watch request: the first events (current objects, or the retained history, or a
/// 410), then a task that streams live changes until the client goes, the timeout, or a drop.
fn start_watch(
    s: &Arc<Shared>,
    target: Target,
    filter: Filter,
    q: &BTreeMap<String, String>,
) -> Response {
    let flag = |k: &str| q.get(k).map(String::as_str);
    let since: Option<u64> = match flag("resourceVersion") {
        None | Some("") | Some("0") => None,
        Some(v) => match v.parse() {
            Ok(v) => Some(v),
            Err(_) => {
                return bad_request(&format!(
                    "resourceVersion: Invalid value: \"{v}\": must be a decimal number"
                ))
            }
        },
    };
    let timeout = match flag("timeoutSeconds").map(str::parse::<u64>) {
        None => None,
        Some(Ok(n)) => Some(Duration::from_secs(n)),
        Some(Err(_)) => return bad_request("timeoutSeconds: Invalid value: must be a number"),
    };
    let allow_bookmarks = flag("allowWatchBookmarks") == Some("true");
    let initial_events = flag("sendInitialEvents");

    let st = s.lock();
    let of_target = |c: &Change| c.gv == target.gv && c.plural == target.plural;
    let current = || -> Vec<Bytes> {
        st.cluster
            .versions
            .get(&target.gv)
            .and_then(|rs| rs.get(&target.plural))
            .map(|r| {
                r.items
                    .iter()
                    .filter(|o| filter.matches(o))
                    .map(|o| event_line("ADDED", &with_resource_version(o, FIRST_RESOURCE_VERSION)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (first, after) = if initial_events == Some("true") {
        // Watch-list streaming: the state as ADDED events, then a bookmark that marks its end.
        let mut lines = current();
        lines.push(event_line("BOOKMARK", &bookmark(&target, st.rv, true)));
        (lines, st.rv)
    } else if let Some(v) = since {
        if v < st.compacted {
            let gone = status_body(
                StatusCode::GONE,
                "Expired",
                &format!("too old resource version: {v} ({})", st.compacted),
                None,
            );
            return finite_stream(vec![event_line("ERROR", &gone)]);
        }
        let lines = st
            .history
            .iter()
            .filter(|c| c.rv > v && of_target(c) && filter.matches(&c.object))
            .map(|c| event_line(c.kind, &c.object))
            .collect();
        (lines, v.max(st.rv))
    } else if initial_events == Some("false") {
        (Vec::new(), st.rv)
    } else {
        // "Get State and Start at Most Recent".
        (current(), st.rv)
    };
    let live = st.live.subscribe();
    let plan = WatchPlan {
        target,
        filter,
        after,
        bookmarks: st.bookmark_interval.filter(|_| allow_bookmarks),
        timeout,
    };
    s.watchers.fetch_add(1, Ordering::SeqCst);
    let guard = WatcherGuard(s.clone());
    drop(st);

    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::spawn(pump(guard, tx, first, live, plan));
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(body))
        .expect("response")
}

/// Feeds one watch stream; its end (dropping `tx`) ends the response body cleanly, an `Err`
/// sent on `tx` makes hyper cut the connection.
async fn pump(
    _guard: WatcherGuard,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    first: Vec<Bytes>,
    mut live: broadcast::Receiver<Live>,
    plan: WatchPlan,
) {
    let deadline = plan.timeout.map(|t| tokio::time::Instant::now() + t);
    for line in first {
        if tx.send(Ok(line)).await.is_err() {
            return;
        }
    }
    // The resourceVersion up to which this stream has seen (and sent, where it matched) every
    // change: what its bookmarks say.
    let mut seen = plan.after;
    let mut ticks = plan.bookmarks.map(|every| {
        let mut i = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    loop {
        let line = tokio::select! {
            m = live.recv() => match m {
                Ok(Live::Change(c)) => {
                    seen = seen.max(c.rv);
                    let wanted = c.rv > plan.after
                        && c.gv == plan.target.gv
                        && c.plural == plan.target.plural
                        && plan.filter.matches(&c.object);
                    if !wanted {
                        continue;
                    }
                    Ok(event_line(c.kind, &c.object))
                }
                Ok(Live::End) => return,
                Ok(Live::Expire(now)) => {
                    let gone = status_body(
                        StatusCode::GONE,
                        "Expired",
                        &format!("too old resource version: {seen} ({now})"),
                        None,
                    );
                    let _ = tx.send(Ok(event_line("ERROR", &gone))).await;
                    return;
                }
                Ok(Live::Sever) => Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "the stand-in API server cut its watches",
                )),
                // Lagged too far behind (or the server is going): end, the client re-watches.
                Err(_) => return,
            },
            _ = async { ticks.as_mut().unwrap().tick().await }, if ticks.is_some() => {
                Ok(event_line("BOOKMARK", &bookmark(&plan.target, seen, false)))
            }
            _ = async { tokio::time::sleep_until(deadline.unwrap()).await }, if deadline.is_some() => return,
            _ = tx.closed() => return,
        };
        let cut = line.is_err();
        if tx.send(line).await.is_err() || cut {
            if cut {
                // Let hyper take the error before the channel closes.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            return;
        }
    }
}

/// What a write request may do, and the resource it is about.
struct WriteTarget {
    target: Target,
    qualified: String,
    group: String,
}

/// PATCH and POST (see the module's documentation).
fn write(
    s: &Arc<Shared>,
    method: &Method,
    gv: &str,
    rest: &[&str],
    q: &BTreeMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let (plural, ns, name): (&str, Option<&str>, Option<&str>) = match rest {
        [p] => (p, None, None),
        ["namespaces", ns, p] => (p, Some(ns), None),
        ["namespaces", ns, p, n] => (p, Some(ns), Some(n)),
        [p, n] => (p, None, Some(n)),
        _ => return not_found_path(),
    };
    let wt = {
        let st = s.lock();
        let Some(r) = st.cluster.versions.get(gv).and_then(|rs| rs.get(plural)) else {
            return not_found_path();
        };
        let group = gv.split_once('/').map(|(g, _)| g).unwrap_or("").to_string();
        WriteTarget {
            qualified: if group.is_empty() {
                plural.to_string()
            } else {
                format!("{plural}.{group}")
            },
            group,
            target: Target {
                gv: gv.to_string(),
                kind: r.kind.clone(),
                plural: r.plural.clone(),
                namespaced: r.namespaced,
            },
        }
    };
    if ns.is_some() != wt.target.namespaced {
        return not_found_path();
    }
    let verb = if *method == Method::POST {
        "create"
    } else {
        "patch"
    };
    if s.cfg.forbidden.iter().any(|p| p == plural) {
        return status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!(
                "{}{} is forbidden: User \"test\" cannot {verb} resource \"{plural}\" in API group \"{}\"{}",
                wt.qualified,
                name.map(|n| format!(" \"{n}\"")).unwrap_or_default(),
                wt.group,
                ns.map(|n| format!(" in the namespace \"{n}\"")).unwrap_or_default()
            ),
            Some(json!({"group": wt.group, "kind": plural})),
        );
    }
    let dry_run = match q.get("dryRun").map(String::as_str) {
        None => false,
        Some("All") => true,
        Some(v) => {
            return bad_request(&format!(
                "dryRun: Unsupported value: \"{v}\": supported values: \"All\""
            ))
        }
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let Ok(sent) = serde_json::from_slice::<Value>(body) else {
        return bad_request("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml");
    };
    let builtin = BUILTINS
        .iter()
        .any(|(g, k)| *g == gv && *k == wt.target.kind)
        || !gv.contains('/')
        || gv.contains(".k8s.io/")
        || gv.starts_with("apps/")
        || gv.starts_with("batch/");
    let key = object_key(wt.target.namespaced, ns, name.unwrap_or_default());
    let current = {
        let st = s.lock();
        let r = &st.cluster.versions[gv][plural];
        name.and_then(|_| r.position(&key).ok().map(|i| r.items[i].clone()))
    };
    let not_found = |n: &str| {
        status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("{} \"{n}\" not found", wt.qualified),
            Some(json!({"name": n, "group": wt.group, "kind": plural})),
        )
    };

    // The object as it would be stored, and whether it is new.
    let (mut new, created) = if *method == Method::POST {
        if name.is_some() {
            return status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource (post)",
                Some(json!({})),
            );
        }
        let Some(n) = sent.pointer("/metadata/name").and_then(Value::as_str) else {
            return invalid(
                &wt,
                "",
                "metadata.name: Required value: name or generateName is required",
            );
        };
        let key = object_key(wt.target.namespaced, ns, n);
        let exists = {
            let st = s.lock();
            st.cluster.versions[gv][plural].position(&key).is_ok()
        };
        if exists {
            return status(
                StatusCode::CONFLICT,
                "AlreadyExists",
                &format!("{} \"{n}\" already exists", wt.qualified),
                Some(json!({"name": n, "group": wt.group, "kind": plural})),
            );
        }
        (sent.clone(), true)
    } else {
        let Some(name) = name else {
            return status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource (patch)",
                Some(json!({})),
            );
        };
        match content_type.as_str() {
            "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                if content_type.starts_with("application/strategic") && !builtin {
                    return status(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "UnsupportedMediaType",
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                        None,
                    );
                }
                let Some(mut obj) = current.clone() else {
                    return not_found(name);
                };
                json_merge(&mut obj, &sent);
                (obj, false)
            }
            "application/json-patch+json" => {
                // As the API server: a body that is not a list of operations is a bad
                // request; one that does not apply (a failed test, a missing path) is 422,
                // and nothing of it is kept.
                let ops: json_patch::Patch = match serde_json::from_value(sent.clone()) {
                    Ok(ops) => ops,
                    Err(e) => return bad_request(&e.to_string()),
                };
                let Some(mut obj) = current.clone() else {
                    return not_found(name);
                };
                if let Err(e) = json_patch::patch(&mut obj, &ops) {
                    return status(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Invalid",
                        "the server rejected our request due to an error in our request",
                        Some(
                            json!({"causes": [{"reason": "UnexpectedServerResponse", "message": e.to_string()}]}),
                        ),
                    );
                }
                (obj, false)
            }
            "application/apply-patch+yaml" => {
                if q.get("fieldManager").is_none_or(|m| m.is_empty()) {
                    return invalid_named(
                        "PatchOptions.meta.k8s.io",
                        "",
                        "fieldManager: Required value: is required for apply patch",
                    );
                }
                for f in ["apiVersion", "kind"] {
                    if sent.get(f).and_then(Value::as_str).is_none() {
                        return bad_request(&format!("Object '{f}' is missing in '{sent}'"));
                    }
                }
                if sent.pointer("/metadata/name").and_then(Value::as_str) != Some(name) {
                    return bad_request(&format!(
                        "the name of the object ({}) does not match the name on the URL ({name})",
                        sent.pointer("/metadata/name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                    ));
                }
                match current.clone() {
                    Some(mut obj) => {
                        json_merge(&mut obj, &sent);
                        (obj, false)
                    }
                    None => (sent.clone(), true),
                }
            }
            _ => {
                return status(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UnsupportedMediaType",
                    &format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (the stand-in does not model {content_type:?})"),
                    None,
                );
            }
        }
    };
    // What the URL says wins where the object says nothing; a contradiction is refused.
    if let Some(ns) = ns {
        let meta = metadata_mut(&mut new);
        match meta.get("namespace").and_then(Value::as_str) {
            None => {
                meta.insert("namespace".into(), json!(ns));
            }
            Some(n) if n != ns => {
                return bad_request("the namespace of the provided object does not match the namespace sent on the request");
            }
            Some(_) => {}
        }
    }
    for f in ["apiVersion", "kind"] {
        if new.get(f).and_then(Value::as_str).is_none() {
            new[f] = json!(if f == "kind" {
                wt.target.kind.as_str()
            } else {
                gv
            });
        }
    }
    if new["apiVersion"] != json!(gv) || new["kind"] != json!(wt.target.kind) {
        return bad_request(&format!(
            "the API version in the data ({}) does not match the expected API version ({gv})",
            new["apiVersion"]
        ));
    }
    let new_name = new
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Some(n) = name {
        if new_name != n {
            return invalid(
                &wt,
                n,
                &format!("metadata.name: Invalid value: \"{new_name}\": field is immutable"),
            );
        }
    }
    if created && wt.target.namespaced {
        let ns = new
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        let exists = s
            .lock()
            .cluster
            .resource("v1", "Namespace")
            .position(&object_key(false, None, &ns))
            .is_ok();
        if !exists {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("namespaces \"{ns}\" not found"),
                Some(json!({"name": ns, "kind": "namespaces"})),
            );
        }
    }
    if let (false, "Service", Some(old)) = (created, wt.target.kind.as_str(), &current) {
        drop_type_dependent_fields(old, &mut new);
    }
    if let Err(m) = validate(&wt.target.kind, &new) {
        return invalid(&wt, &new_name, &m);
    }
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    if dry_run {
        // As a real server answers a dry run: the object as it would be, nothing stored.
        let meta = metadata_mut(&mut new);
        if created {
            meta.entry("uid").or_insert_with(|| json!(new_uid()));
            meta.entry("creationTimestamp")
                .or_insert_with(|| json!(rfc3339(SystemTime::now())));
        }
        return respond(code, &new);
    }
    let stored = s.lock().apply(new);
    respond(code, &stored)
}

/// What an API server (1.20 and later) clears by itself when a Service's type changes so
/// that a field no longer applies, provided the update left that field as it was
/// (`dropTypeDependentFields` in the Service registry): node ports, the health check node
/// port, `allocateLoadBalancerNodePorts`, `loadBalancerClass`, `externalTrafficPolicy`.
/// `loadBalancerSourceRanges` and `loadBalancerIP` are not cleared: validation refuses them.
fn drop_type_dependent_fields(old: &Value, new: &mut Value) {
    let ty = |o: &Value| {
        o.pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string()
    };
    let (old_ty, new_ty) = (ty(old), ty(new));
    let node_ports = |t: &str| t == "NodePort" || t == "LoadBalancer";
    let external = |o: &Value, t: &str| {
        node_ports(t)
            || (t == "ClusterIP"
                && o.pointer("/spec/externalIPs")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty()))
    };
    let same = |p: &str, new: &Value| old.pointer(p) == new.pointer(p);
    let ports_of = |o: &Value| -> Vec<Option<Value>> {
        o.pointer("/spec/ports")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|p| p.get("nodePort").cloned()).collect())
            .unwrap_or_default()
    };
    let old_external = external(old, &old_ty);
    let new_external = external(new, &new_ty);
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let new_view = json!({"spec": spec.clone()});
    if node_ports(&old_ty) && !node_ports(&new_ty) && ports_of(old) == ports_of(&new_view) {
        for p in spec
            .get_mut("ports")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(p) = p.as_object_mut() {
                p.remove("nodePort");
            }
        }
    }
    let lb = |t: &str| t == "LoadBalancer";
    if lb(&old_ty) && !lb(&new_ty) {
        for f in [
            "healthCheckNodePort",
            "allocateLoadBalancerNodePorts",
            "loadBalancerClass",
        ] {
            if same(&format!("/spec/{f}"), &new_view) {
                spec.remove(f);
            }
        }
    }
    if old_external && !new_external && same("/spec/externalTrafficPolicy", &new_view) {
        spec.remove("externalTrafficPolicy");
    }
}

/// RFC 7386.
fn json_merge(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

fn invalid(wt: &WriteTarget, name: &str, message: &str) -> Response {
    let kind = &wt.target.kind;
    invalid_named(kind, name, message)
}

/// 422 as a real server words it: `Kind "name" is invalid: field: reason`.
fn invalid_named(kind: &str, name: &str, message: &str) -> Response {
    let field = message.split(':').next().unwrap_or("");
    status(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
        &format!("{kind} \"{name}\" is invalid: {message}"),
        Some(
            json!({"name": name, "kind": kind, "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}]}),
        ),
    )
}

/// The validation of the fields jackstop's fixes touch (see the module's documentation).
fn validate(kind: &str, o: &Value) -> Result<(), String> {
    let at = |p: &str| o.pointer(p);
    match kind {
        "Service" => {
            let ty = at("/spec/type")
                .and_then(Value::as_str)
                .unwrap_or("ClusterIP");
            if !["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].contains(&ty) {
                return Err(format!("spec.type: Unsupported value: \"{ty}\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""));
            }
            let outside = ty == "NodePort" || ty == "LoadBalancer";
            if !outside {
                for (i, p) in at("/spec/ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    if p.get("nodePort").is_some_and(|n| n.as_u64() != Some(0)) {
                        return Err(format!("spec.ports[{i}].nodePort: Forbidden: may not be used when `type` is '{ty}'"));
                    }
                }
                let external_ips = at("/spec/externalIPs")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty());
                let etp = at("/spec/externalTrafficPolicy")
                    .and_then(Value::as_str)
                    .filter(|_| !external_ips);
                if let Some(etp) = etp {
                    return Err(format!("spec.externalTrafficPolicy: Invalid value: \"{etp}\": may only be set for externally-accessible services"));
                }
                if at("/spec/healthCheckNodePort").is_some() {
                    return Err("spec.healthCheckNodePort: Invalid value: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'".into());
                }
            }
            if ty != "LoadBalancer" {
                if at("/spec/loadBalancerSourceRanges")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty())
                {
                    return Err("spec.loadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'".into());
                }
                if at("/spec/loadBalancerClass").is_some() {
                    return Err("spec.loadBalancerClass: Forbidden: may only be used when `type` is 'LoadBalancer'".into());
                }
            }
            for (i, r) in at("/spec/loadBalancerSourceRanges")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let ok = r.as_str().is_some_and(|c| {
                    c.split_once('/').is_some_and(|(ip, len)| {
                        ip.parse::<std::net::IpAddr>().is_ok() && len.parse::<u8>().is_ok()
                    })
                });
                if !ok {
                    return Err(format!("spec.loadBalancerSourceRanges[{i}]: Invalid value: {r}: must be a list of IP ranges. For example, 10.240.0.0/24,10.250.0.0/24"));
                }
            }
        }
        "Deployment" | "StatefulSet" | "ReplicaSet" | "ReplicationController" => {
            if let Some(r) = at("/spec/replicas") {
                if r.as_i64().is_none_or(|n| n < 0) {
                    return Err(format!(
                        "spec.replicas: Invalid value: {r}: must be greater than or equal to 0"
                    ));
                }
            }
        }
        "Job" | "CronJob" => {
            if let Some(v) = at("/spec/suspend") {
                if !v.is_boolean() {
                    return Err(format!(
                        "spec.suspend: Invalid value: {v}: must be a boolean"
                    ));
                }
            }
        }
        "NetworkPolicy" => {
            for (i, t) in at("/spec/policyTypes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                if !matches!(t.as_str(), Some("Ingress" | "Egress")) {
                    return Err(format!("spec.policyTypes[{i}]: Unsupported value: {t}: supported values: \"Egress\", \"Ingress\""));
                }
            }
            for dir in ["ingress", "egress"] {
                for (i, rule) in at(&format!("/spec/{dir}"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    for (j, p) in rule
                        .get("ports")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .enumerate()
                    {
                        if let Some(proto) = p.get("protocol") {
                            if !matches!(proto.as_str(), Some("TCP" | "UDP" | "SCTP")) {
                                return Err(format!("spec.{dir}[{i}].ports[{j}].protocol: Unsupported value: {proto}: supported values: \"SCTP\", \"TCP\", \"UDP\""));
                            }
                        }
                        if let Some(n) = p.get("port").and_then(Value::as_i64) {
                            if !(1..=65535).contains(&n) {
                                return Err(format!("spec.{dir}[{i}].ports[{j}].port: Invalid value: {n}: must be between 1 and 65535, inclusive"));
                            }
                        }
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}
