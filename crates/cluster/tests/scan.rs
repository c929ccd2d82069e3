//! `jackstop scan --cluster` against the test API server: the findings equal those of scanning,
//! offline, what the real `kubectl` prints from the same server, and those of the saved
//! snapshot; a kind that is forbidden, slow or answers garbage is a warning, never the end.

mod support;

use jackstop_analysers::{all, run};
use jackstop_catalogue::Catalogue;
use jackstop_cluster::{read_cluster, ClusterOptions};
use jackstop_core::{Finding, Object};
use jackstop_manifests::reader::{parse_text, ManifestSet, ReadOptions};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{kubeconfig, objects_from, ApiServer, ServerConfig};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn incident() -> Vec<serde_json::Value> {
    let dir = repo().join("examples/kubeflow-incident");
    let files: Vec<PathBuf> = [
        "kubeflow/dashboard-apps.yaml",
        "kubeflow/istio-ingressgateway.yaml",
        "kubeflow/kubeflow-gateway.yaml",
        "kubeflow/profiles.yaml",
        "attacker/miners.yaml",
        "attacker/notebook.yaml",
        "attacker/pipeline-run.yaml",
    ]
    .iter()
    .map(|f| dir.join(f))
    .collect();
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    objects_from(&paths)
}

fn kinds() -> HashSet<String> {
    all()
        .iter()
        .flat_map(|a| a.kinds().iter().map(|k| k.to_string()))
        .collect()
}

fn options(kc: PathBuf) -> ClusterOptions {
    ClusterOptions {
        kubeconfig: Some(kc),
        kinds: kinds(),
        page_size: 2,
        timeout: Duration::from_secs(2),
        ..ClusterOptions::default()
    }
}

/// What a finding says, without where it was read from.
fn key(f: &Finding) -> String {
    format!(
        "{} {} {} {} {:?}",
        f.rule,
        f.severity,
        f.resource,
        f.location.field.as_deref().unwrap_or(""),
        f.evidence
    )
}

fn findings(objects: &[Object]) -> Vec<String> {
    let mut v: Vec<String> = run(&all(), objects, Catalogue::builtin())
        .iter()
        .map(key)
        .collect();
    v.sort();
    v
}

fn offline(text: &str) -> Vec<Object> {
    let mut set = ManifestSet::default();
    parse_text(text, "snapshot.json", &ReadOptions::default(), &mut set);
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    set.objects
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_findings_equal_kubectls_and_the_snapshots() {
    let server = ApiServer::start(ServerConfig {
        objects: incident(),
        forbidden: vec![],
        slow: vec![],
        garbage: vec![],
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&server.url, dir.path());
    let read = read_cluster(&options(kc.clone())).await.unwrap();
    assert!(read.errors.is_empty(), "{:?}", read.errors);
    let live = findings(&read.objects);
    assert!(live.iter().any(|f| f.starts_with("JS-EXP-001 critical Service istio-system/istio-ingressgateway")), "{live:#?}");
    assert!(
        live.iter().any(|f| f
            .starts_with("JS-MIN-001 critical Deployment kubeflow-user-example-com/tf-train-cpu")),
        "{live:#?}"
    );
    assert!(
        live.iter().any(|f| f.starts_with("JS-BUR-001")),
        "{live:#?}"
    );
    // Secrets are in discovery, and never asked for.
    assert!(
        server.requests().iter().all(|r| !r.contains("secrets")),
        "{:?}",
        server.requests()
    );
    // Pagination: pages of 2.
    assert!(
        server.requests().iter().any(|r| r.contains("continue=")),
        "{:?}",
        server.requests()
    );

    // The real kubectl, on the same server, for every resource jackstop read.
    let names: Vec<String> = read.resources.iter().map(|r| r.display()).collect();
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kc)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .args(["get", &names.join(","), "-A", "-o", "json"])
        .output()
        .expect("kubectl is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_kubectl = findings(&offline(&String::from_utf8_lossy(&out.stdout)));
    assert_eq!(live, from_kubectl);

    // The snapshot reads back into the same findings.
    let snap = dir.path().join("snap.json");
    jackstop_cluster::snapshot::save(&read.objects, &snap).unwrap();
    let from_snapshot = findings(&offline(&std::fs::read_to_string(&snap).unwrap()));
    assert_eq!(live, from_snapshot);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_slow_and_garbage_kinds_are_warnings() {
    let server = ApiServer::start(ServerConfig {
        objects: incident(),
        forbidden: vec!["workflows".into()],
        slow: vec![("notebooks".into(), Duration::from_secs(10))],
        garbage: vec!["profiles".into()],
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&server.url, dir.path());
    let read = read_cluster(&options(kc)).await.unwrap();
    let msgs: Vec<&str> = read.errors.iter().map(|e| e.message.as_str()).collect();
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("workflows.argoproj.io not read: forbidden")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("notebooks.kubeflow.org not read: no answer within")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("profiles.kubeflow.org not read")),
        "{msgs:?}"
    );
    assert!(read.errors.iter().all(|e| e.path == "cluster"));
    // The rest is still read and analysed: the door and the Deployments' miners.
    let live = findings(&read.objects);
    assert!(
        live.iter().any(|f| f.starts_with("JS-EXP-001")),
        "{live:#?}"
    );
    assert!(
        live.iter()
            .any(|f| f.starts_with("JS-MIN-001 critical Deployment")),
        "{live:#?}"
    );
    server.stop();
}

/// The server vanishes in the middle of a paginated list: that kind is a warning that keeps
/// the pages already read; every other kind is read and analysed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_vanishes_mid_list_costs_that_kind_only() {
    let server = ApiServer::start(ServerConfig {
        objects: incident(),
        forbidden: vec![],
        slow: vec![],
        garbage: vec![],
    })
    .await;
    // Pages of 2: the connection dies on the second page of namespaces.
    server.vanish_after_pages("namespaces", 1);
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&server.url, dir.path());
    let read = read_cluster(&options(kc)).await.unwrap();
    let msgs: Vec<&str> = read.errors.iter().map(|e| e.message.as_str()).collect();
    let ns: Vec<&&str> = msgs
        .iter()
        .filter(|m| m.starts_with("namespaces not read"))
        .collect();
    assert_eq!(ns.len(), 1, "{msgs:?}");
    assert!(
        ns[0].ends_with("(the 2 object(s) listed before are kept)"),
        "{msgs:?}"
    );
    assert_eq!(read.errors.len(), 1, "only that kind: {msgs:?}");
    let kept = read
        .objects
        .iter()
        .filter(|o| o.kind == "Namespace")
        .count();
    assert_eq!(kept, 2);
    let live = findings(&read.objects);
    assert!(
        live.iter().any(|f| f.starts_with("JS-EXP-001")),
        "{live:#?}"
    );
    assert!(
        live.iter()
            .any(|f| f.starts_with("JS-MIN-001 critical Deployment")),
        "{live:#?}"
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_gone_is_an_error() {
    let server = ApiServer::start(ServerConfig {
        objects: vec![],
        forbidden: vec![],
        slow: vec![],
        garbage: vec![],
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&server.url, dir.path());
    server.stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = read_cluster(&options(kc)).await.unwrap_err();
    assert!(
        err.to_string().contains("does not answer discovery"),
        "{err}"
    );
    // Refused credentials (an expired token): a clear message.
    let server = ApiServer::start(ServerConfig::default()).await;
    let refused = dir.path().join("refused");
    let kc = std::fs::read_to_string(kubeconfig(&server.url, dir.path())).unwrap();
    std::fs::write(
        &refused,
        kc.replace("    token: test-token", "    username: u\n    password: p"),
    )
    .unwrap();
    let err = read_cluster(&options(refused)).await.unwrap_err();
    assert!(
        err.to_string().contains("credentials were refused (401"),
        "{err}"
    );
    server.stop();
    // A broken kubeconfig.
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "clusters: [oops\n").unwrap();
    let err = read_cluster(&options(bad)).await.unwrap_err();
    assert!(
        err.to_string().contains("cannot load the kubeconfig"),
        "{err}"
    );
}

/// A live Deployment comes with its ReplicaSet and Pods: one finding, on the Deployment, with
/// the running pod (phase, node, start, restarts) as evidence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_pods_fold_into_their_deployment() {
    let template = serde_json::json!({
        "metadata": {"labels": {"app": "tf"}},
        "spec": {"containers": [{"name": "tf", "image": "tensorflow/tensorflow:latest",
            "command": ["sh", "-c", "/tmp/xmrig -o stratum+tcp://pool.example.invalid:3333 --donate-level 1"]}]}
    });
    let objects = vec![
        serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "tf", "namespace": "team", "uid": "u-d", "creationTimestamp": "2021-06-08T03:14:07Z"},
            "spec": {"selector": {"matchLabels": {"app": "tf"}}, "template": template}}),
        serde_json::json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "tf-5d8", "namespace": "team", "uid": "u-rs",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "tf", "uid": "u-d", "controller": true}]},
            "spec": {"selector": {"matchLabels": {"app": "tf"}}, "template": template}}),
        serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "tf-5d8-abcde", "namespace": "team", "labels": {"app": "tf"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "tf-5d8", "uid": "u-rs", "controller": true}]},
            "spec": {"nodeName": "gpu-node-1", "containers": template["spec"]["containers"].clone()},
            "status": {"phase": "Running", "startTime": "2021-06-08T03:14:09Z", "containerStatuses": [{"name": "tf", "restartCount": 2}]}}),
    ];
    let server = ApiServer::start(ServerConfig {
        objects,
        ..ServerConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let read = read_cluster(&options(kubeconfig(&server.url, dir.path())))
        .await
        .unwrap();
    let workloads = read
        .objects
        .iter()
        .filter(|o| o.kind != "Namespace")
        .count();
    assert_eq!(workloads, 3);
    let found = run(&all(), &read.objects, Catalogue::builtin());
    let miners: Vec<&Finding> = found.iter().filter(|f| f.rule == "JS-MIN-001").collect();
    assert_eq!(miners.len(), 1, "{found:#?}");
    assert_eq!(miners[0].resource.kind, "Deployment");
    assert!(
        miners[0].evidence.iter().any(|e| e == "Live: runs as Pod team/tf-5d8-abcde (Running, on gpu-node-1, started 2021-06-08T03:14:09Z, 2 restarts)"),
        "{:#?}",
        miners[0].evidence
    );
    server.stop();
}
