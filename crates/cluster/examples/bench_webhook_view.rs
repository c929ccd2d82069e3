//! Benchmark (not a test): the memory of `jackstop webhook --cluster` holding the cluster view
//! of a large cluster, served by the test API server: N Pods as a live cluster returns them
//! (status, managed fields, owner references), with their ReplicaSets, Deployments and
//! Services. Run through `scripts/bench-webhook-view.sh`.
//!
//! It reports the resident size once the view is ready, the high-water mark, and both again
//! after a churn of Pod and Deployment changes that makes the webhook rebuild its view.
//!
//! Usage: bench_webhook_view JACKSTOP TLS_CERT TLS_KEY [PODS=20000]

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{kubeconfig, ApiServer, ServerConfig};

const NAMESPACES: usize = 50;

fn managed_fields() -> Value {
    json!([
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1", "time": "2026-11-20T10:00:00Z",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}},
            "f:ownerReferences": {".": {}, "k:{\"uid\":\"x\"}": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"main\"}": {".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:ports": {}, "f:resources": {}}},
                "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}}}},
        {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": "2026-11-20T10:00:05Z", "subresource": "status",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:conditions": {}, "f:containerStatuses": {}, "f:hostIP": {}, "f:phase": {}, "f:podIP": {}, "f:podIPs": {}, "f:startTime": {}}}}
    ])
}

fn pod(i: usize) -> Value {
    let ns = format!("team-{}", i % NAMESPACES);
    let app = format!("svc-{}", i % 400);
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("{app}-7d9f8c6b5-{i:05}"), "namespace": ns, "generateName": format!("{app}-7d9f8c6b5-"),
            "uid": format!("00000000-0000-0000-0000-{i:012}"),
            "labels": {"app": app, "pod-template-hash": "7d9f8c6b5"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{app}-7d9f8c6b5"), "uid": "x", "controller": true, "blockOwnerDeletion": true}],
            "managedFields": managed_fields(),
        },
        "spec": {
            "containers": [{
                "name": "main", "image": format!("registry.example.com/{app}:1.4.2"),
                "command": ["python", "-m", "service.main"], "args": ["--port", "8080", "--workers", "4"],
                "env": [{"name": "MODEL_DIR", "value": "/models"}, {"name": "LOG_LEVEL", "value": "info"}],
                "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
                "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}],
                "imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"
            }],
            "volumes": [{"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}}],
            "nodeName": format!("node-{}", i % 30), "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default", "schedulerName": "default-scheduler", "terminationGracePeriodSeconds": 30
        },
        "status": {
            "phase": "Running", "hostIP": "10.0.0.1", "podIP": format!("10.1.{}.{}", (i / 250) % 250, i % 250),
            "startTime": "2026-11-20T10:00:00Z",
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": "2026-11-20T10:00:00Z"},
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-20T10:00:05Z"},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": "2026-11-20T10:00:05Z"},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-11-20T10:00:00Z"}
            ],
            "containerStatuses": [{"name": "main", "ready": true, "restartCount": 0, "started": true,
                "image": format!("registry.example.com/{app}:1.4.2"), "imageID": "registry.example.com/app@sha256:0123456789abcdef",
                "containerID": format!("containerd://{i:064}"), "state": {"running": {"startedAt": "2026-11-20T10:00:04Z"}}}]
        }
    })
}

fn deployment(a: usize) -> Value {
    let app = format!("svc-{a}");
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": app, "namespace": format!("team-{}", a % NAMESPACES), "labels": {"app": app}, "managedFields": managed_fields()},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": app}},
            "template": {"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": "main", "image": format!("registry.example.com/{app}:1.4.2"),
                "command": ["python", "-m", "service.main"], "ports": [{"containerPort": 8080, "name": "http"}]}]}}},
        "status": {"replicas": 3, "readyReplicas": 3, "availableReplicas": 3, "observedGeneration": 4}
    })
}

fn replica_set(a: usize) -> Value {
    let mut rs = deployment(a);
    let app = format!("svc-{a}");
    rs["kind"] = json!("ReplicaSet");
    rs["metadata"]["name"] = json!(format!("{app}-7d9f8c6b5"));
    rs["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": app, "uid": "d", "controller": true}]);
    rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] = json!("7d9f8c6b5");
    rs
}

fn service(a: usize) -> Value {
    let app = format!("svc-{a}");
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": app, "namespace": format!("team-{}", a % NAMESPACES), "managedFields": managed_fields()},
        "spec": {"type": "ClusterIP", "selector": {"app": app}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    })
}

fn objects(pods: usize) -> Vec<Value> {
    let mut out: Vec<Value> = (0..NAMESPACES)
        .map(|n| support::namespace_object(&format!("team-{n}")))
        .collect();
    out.extend((0..400).map(deployment));
    out.extend((0..400).map(replica_set));
    out.extend((0..400).map(service));
    out.extend((0..pods).map(pod));
    out
}

/// VmRSS and VmHWM of a process, in MB.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: bench_webhook_view JACKSTOP TLS_CERT TLS_KEY [PODS]";
    let jackstop = args.get(1).expect(usage);
    let (cert, key) = (args.get(2).expect(usage), args.get(3).expect(usage));
    let pods: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let all = objects(pods);
    let bytes: usize = all.iter().map(|o| o.to_string().len()).sum();
    let server = rt.block_on(ApiServer::start(ServerConfig {
        objects: all,
        ..ServerConfig::default()
    }));
    server.set_bookmark_interval(Some(Duration::from_secs(60)));
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&server.url, dir.path());
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "mode: enforce\n").unwrap();
    let mut child = Command::new(jackstop)
        .args([
            "webhook",
            "--cluster",
            "--listen",
            "127.0.0.1:0",
            "-f",
            "jsonl",
        ])
        .arg("--kubeconfig")
        .arg(&kc)
        .args(["--tls-cert", cert, "--tls-key", key])
        .arg("--policy")
        .arg(&policy)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("jackstop webhook");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let t0 = Instant::now();
    let mut rebuilds_seen = 0;
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(300))
            .expect("the webhook says its view is ready");
        if line.contains("cluster view ready") {
            println!("view ready          : {line}");
            break;
        }
        if line.contains("error") {
            eprintln!("webhook: {line}");
        }
    }
    let ready = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(3));
    let (rss_ready, hwm_ready) = memory(pid);
    // Churn: Pods replaced (as a rollout does) and Deployments changed, in waves, each
    // followed by a rebuild of the view.
    for wave in 0..5 {
        for i in (wave * 200)..(wave * 200 + 200) {
            let mut p = pod(i % pods.max(1));
            p["metadata"]["labels"]["pod-template-hash"] = json!(format!("wave{wave}"));
            p["status"]["phase"] = json!("Running");
            server.apply(p);
        }
        for a in (wave * 20)..(wave * 20 + 20) {
            let mut d = deployment(a);
            d["spec"]["template"]["metadata"]["labels"]["wave"] = json!(wave.to_string());
            server.apply(d);
        }
        std::thread::sleep(Duration::from_secs(3));
        while let Ok(l) = rx.try_recv() {
            if l.contains("rebuilt") {
                rebuilds_seen += 1;
            }
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    let (rss_after, hwm_after) = memory(pid);
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "cluster served      : {pods} Pods, 400 Deployments, 400 ReplicaSets, 400 Services, {NAMESPACES} namespaces ({:.0} MB of JSON)",
        bytes as f64 / 1e6
    );
    println!("time to ready       : {ready:.2} s");
    println!("after ready         : RSS {rss_ready:.0} MB, high-water {hwm_ready:.0} MB");
    println!(
        "after 5 churn waves : RSS {rss_after:.0} MB, high-water {hwm_after:.0} MB (1,000 Pod and 100 Deployment changes){}",
        if rebuilds_seen > 0 {
            format!(", {rebuilds_seen} rebuilds said")
        } else {
            String::new()
        }
    );
}
