//! `jackstop fix`, the real binary: the files it writes for the bundled incident are what the
//! real kubectl accepts and do what they say once applied (the scan after them no longer finds
//! the exposure); benign input gets no fix; bad input exits 2 with a message; `--apply`
//! against the stand-in API server dry-runs every fix first, applies only when all pass, and
//! the cluster it leaves has no open door and no running miner.

mod common;
#[path = "../../cluster/tests/support/mod.rs"]
mod support;

use common::{corpus, jackstop, repo_root};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use support::{kubeconfig, objects_from, ApiServer, Kubectl, ServerConfig};

fn incident() -> String {
    repo_root()
        .join("examples/kubeflow-incident")
        .display()
        .to_string()
}

fn fix_json(args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["fix", "-f", "json"];
    all.extend_from_slice(args);
    let r = jackstop(&all, None);
    let doc = if r.stdout.trim().is_empty() {
        Value::Null
    } else {
        r.json()
    };
    (r.code, doc, r.stderr)
}

fn files(doc: &Value) -> Vec<PathBuf> {
    doc["fixes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| PathBuf::from(f["file"].as_str().unwrap()))
        .collect()
}

/// The incident's objects as JSON values, each with the file it came from.
fn incident_objects() -> Vec<Value> {
    let dir = repo_root().join("examples/kubeflow-incident");
    let mut paths = Vec::new();
    for sub in ["kubeflow", "attacker"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            paths.push(e.unwrap().path());
        }
    }
    paths.sort();
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    objects_from(&refs)
}

fn same(o: &Value, t: &Value) -> bool {
    o["apiVersion"] == t["apiVersion"]
        && o["kind"] == t["kind"]
        && o["metadata"]["name"] == t["name"]
        && o["metadata"]["namespace"] == t["namespace"]
}

#[test]
fn incident_files_are_what_kubectl_takes_and_close_the_door() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().display().to_string();
    let (code, doc, stderr) = fix_json(&[&incident(), "--out", &dir]);
    assert_eq!(code, 1, "criticals were found: exit 1; stderr {stderr}");
    let fixes = doc["fixes"].as_array().unwrap();
    let actions: Vec<(&str, &str)> = fixes
        .iter()
        .map(|f| {
            (
                f["action"].as_str().unwrap(),
                f["target"]["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("scale-to-zero", "Deployment"),
            ("scale-to-zero", "Deployment"),
            ("stop-notebook", "Notebook"),
            ("terminate", "Workflow"),
            ("clusterip", "Service"),
            ("require-oidc", "AuthorizationPolicy"),
            ("egress-allowlist", "NetworkPolicy"),
            ("egress-allowlist", "NetworkPolicy"),
        ]
    );
    assert_eq!(doc["unfixed"].as_array().unwrap().len(), 4, "the bursts");
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        8,
        "one file per fix, nothing else"
    );

    // Every merge patch, applied by the real kubectl (offline) to the object it targets.
    let mut objects = incident_objects();
    let work = tempfile::tempdir().unwrap();
    for (f, path) in fixes.iter().zip(files(&doc)) {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# jackstop fix:"), "{text}");
        let command = f["command"].as_str().unwrap();
        assert!(text.contains(&format!("# Apply: {command}")), "{text}");
        if f["method"] != "merge-patch" {
            continue;
        }
        let i = objects
            .iter()
            .position(|o| same(o, &f["target"]))
            .expect("target among the objects");
        let obj_file = work.path().join("object.json");
        std::fs::write(&obj_file, objects[i].to_string()).unwrap();
        let out = std::process::Command::new("kubectl")
            .args([
                "patch",
                "--local",
                "--dry-run=client",
                "--type",
                "merge",
                "-o",
                "json",
                "-f",
            ])
            .arg(&obj_file)
            .arg("--patch-file")
            .arg(&path)
            .env("KUBECONFIG", "/dev/null")
            .output()
            .expect("kubectl runs");
        assert!(
            out.status.success(),
            "kubectl patch {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        objects[i] = serde_json::from_slice(&out.stdout).unwrap();
    }
    let svc = objects
        .iter()
        .find(|o| o["kind"] == "Service" && o["metadata"]["name"] == "istio-ingressgateway")
        .unwrap();
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    for o in objects.iter().filter(|o| {
        o["kind"] == "Deployment"
            && o["metadata"]["namespace"]
                .as_str()
                .unwrap()
                .starts_with("kubeflow-user")
    }) {
        assert_eq!(o["spec"]["replicas"], 0, "{o}");
    }

    // The patched objects, scanned: the exposure is gone.
    let patched = work.path().join("patched.json");
    std::fs::write(
        &patched,
        json!({"apiVersion": "v1", "kind": "List", "items": objects}).to_string(),
    )
    .unwrap();
    let r = jackstop(
        &[
            "scan",
            "-f",
            "json",
            "--fail-on",
            "none",
            patched.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let after = r.json();
    let rules: Vec<&str> = after["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(rules.iter().all(|r| !r.starts_with("JS-EXP")), "{rules:?}");

    // A second run into the same directory replaces the files, and leaves the user's own.
    std::fs::write(out.path().join("README.txt"), "mine").unwrap();
    let (code, doc2, _) = fix_json(&[&incident(), "--out", &dir, "--allow-cidr", "203.0.113.0/24"]);
    assert_eq!(code, 1);
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 9);
    assert!(doc2["fixes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["action"] == "source-ranges"));
    // A run that cannot read its input leaves the earlier files as they were.
    let r = jackstop(&["fix", "missing.yaml", "--out", &dir], None);
    assert_eq!(r.code, 2);
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 9);
}

#[test]
fn benign_input_gets_no_fix() {
    for c in ["kubeflow-platform", "notebooks-training", "kfp"] {
        let out = tempfile::tempdir().unwrap();
        let (code, doc, stderr) = fix_json(&[
            corpus().join(c).to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{c}: {stderr}");
        assert_eq!(doc["fixes"], json!([]), "{c}");
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
    }
}

#[test]
fn bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let not_a_dir = file.join("sub").display().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![incident(), "--out".into(), not_a_dir], "--out"),
        (
            vec![incident(), "--out".into(), file.display().to_string()],
            "--out",
        ),
        (
            vec![
                incident(),
                "--out".into(),
                tmp.path().join("o").display().to_string(),
                "--apply".into(),
            ],
            "--apply works on a live cluster",
        ),
        (
            vec![
                incident(),
                "--out".into(),
                tmp.path().join("o").display().to_string(),
                "--allow-cidr".into(),
                "0.0.0.0/0".into(),
            ],
            "allows every address",
        ),
        (
            vec![
                incident(),
                "--out".into(),
                tmp.path().join("o").display().to_string(),
                "--oidc-issuer".into(),
                "http://login.example.com".into(),
            ],
            "https://",
        ),
        (
            vec![
                tmp.path().join("missing.yaml").display().to_string(),
                "--out".into(),
                tmp.path().join("o").display().to_string(),
            ],
            "no readable input",
        ),
        (vec![incident()], "--out"),
    ];
    for (args, said) in cases {
        let mut all = vec!["fix"];
        all.extend(args.iter().map(String::as_str));
        let r = jackstop(&all, None);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(said), "{args:?}: {}", r.stderr);
    }

    // A broken file among good ones is listed; the rest is still fixed.
    let input = tmp.path().join("input");
    std::fs::create_dir(&input).unwrap();
    std::fs::copy(
        repo_root().join("examples/kubeflow-incident/attacker/miners.yaml"),
        input.join("miners.yaml"),
    )
    .unwrap();
    std::fs::write(input.join("broken.yaml"), "kind: [unclosed\n").unwrap();
    let out = tmp.path().join("out");
    let (code, doc, stderr) = fix_json(&[input.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(doc["errors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["path"].as_str().unwrap().ends_with("broken.yaml")));
    assert!(stderr.contains("broken.yaml"));
    assert_eq!(
        doc["fixes"].as_array().unwrap().len(),
        4,
        "2 Deployments, 2 policies"
    );
}

/// The incident in the stand-in, plus objects that make the kinds the fixes create known to
/// its discovery (a real cluster with Istio serves them whether or not any exists).
fn incident_server_config() -> ServerConfig {
    let mut objects = incident_objects();
    objects.push(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": "other"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}
    }));
    for kind in ["RequestAuthentication", "AuthorizationPolicy"] {
        objects.push(json!({
            "apiVersion": "security.istio.io/v1", "kind": kind,
            "metadata": {"name": "unrelated", "namespace": "other"},
            "spec": {"selector": {"matchLabels": {"app": "unrelated"}}}
        }));
    }
    ServerConfig {
        objects,
        ..ServerConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_dry_runs_first_then_closes_the_door_in_the_cluster() {
    let server = ApiServer::start(incident_server_config()).await;
    let tmp = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&server.url, tmp.path());
    let out = tmp.path().join("fixes");
    let (code, doc, stderr) = fix_json(&[
        "--cluster",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--apply",
        "--oidc-issuer",
        "https://login.example.com",
    ]);
    assert_eq!(code, 1, "what was found before the fixes: exit 1; {stderr}");
    let fixes = doc["fixes"].as_array().unwrap();
    assert_eq!(fixes.len(), 8, "{doc:#}");
    for f in fixes {
        assert_eq!(f["dryRun"]["ok"], true, "{f:#}");
        assert_eq!(f["applied"]["ok"], true, "{f:#}");
    }
    // The summary tells what each dry run would do to the object as it was read.
    let said = |action: &str| {
        fixes
            .iter()
            .find(|f| f["action"] == action)
            .map(|f| f["dryRun"]["message"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert!(
        said("clusterip").contains(r#"would change spec.type "LoadBalancer" -> "ClusterIP""#),
        "{}",
        said("clusterip")
    );
    assert!(
        said("scale-to-zero").contains("spec.replicas 2 -> 0"),
        "{}",
        said("scale-to-zero")
    );
    assert!(
        said("egress-allowlist").ends_with("would create it"),
        "{}",
        said("egress-allowlist")
    );
    // Every write went as a dry run before any went for real.
    let writes: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("PATCH") || r.starts_with("POST"))
        .collect();
    let first_real = writes
        .iter()
        .position(|w| !w.contains("dryRun=All"))
        .unwrap();
    assert_eq!(first_real, writes.len() / 2, "{writes:#?}");
    assert!(writes[..first_real]
        .iter()
        .all(|w| w.contains("dryRun=All")));

    let svc = server
        .get(
            "v1",
            "Service",
            Some("istio-system"),
            "istio-ingressgateway",
        )
        .unwrap();
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    let d = server
        .get(
            "apps/v1",
            "Deployment",
            Some("kubeflow-user-team-b"),
            "tf-train-gpu",
        )
        .unwrap();
    assert_eq!(d["spec"]["replicas"], 0);
    let nb = server
        .get(
            "kubeflow.org/v1",
            "Notebook",
            Some("kubeflow-user-example-com"),
            "analysis",
        )
        .unwrap();
    assert!(nb["metadata"]["annotations"]["kubeflow-resource-stopped"].is_string());
    let wf = server
        .get(
            "argoproj.io/v1alpha1",
            "Workflow",
            Some("kubeflow-user-team-b"),
            "train-pipeline-x7k2p",
        )
        .unwrap();
    assert_eq!(wf["spec"]["shutdown"], "Terminate");
    for ns in ["kubeflow-user-example-com", "kubeflow-user-team-b"] {
        assert!(server
            .get(
                "networking.k8s.io/v1",
                "NetworkPolicy",
                Some(ns),
                "jackstop-egress-allowlist"
            )
            .is_some());
    }
    let ra = server
        .get(
            "security.istio.io/v1",
            "RequestAuthentication",
            Some("istio-system"),
            "jackstop-require-jwt",
        )
        .unwrap();
    assert_eq!(
        ra["spec"]["jwtRules"][0]["issuer"],
        "https://login.example.com"
    );

    // The cluster, scanned again: no door, and nothing left to fix but what stopping leaves.
    assert!(exposure_rules(&["--cluster", "--kubeconfig", kc.to_str().unwrap()]).is_empty());
    let (_, again, _) = fix_json(&[
        "--cluster",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let left: Vec<&str> = again["fixes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["action"].as_str().unwrap())
        .collect();
    assert!(
        left.iter()
            .all(|a| ["scale-to-zero", "stop-notebook", "terminate"].contains(a)),
        "{left:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_dry_run_applies_nothing() {
    let mut cfg = incident_server_config();
    cfg.forbidden = vec!["networkpolicies".into()];
    let server = ApiServer::start(cfg).await;
    let tmp = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&server.url, tmp.path());
    let out = tmp.path().join("fixes");
    let (code, doc, stderr) = fix_json(&[
        "--cluster",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--apply",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("nothing was applied"), "{stderr}");
    let fixes = doc["fixes"].as_array().unwrap();
    let refused: Vec<&Value> = fixes
        .iter()
        .filter(|f| f["dryRun"]["ok"] == false)
        .collect();
    assert_eq!(refused.len(), 2, "{doc:#}");
    assert!(refused[0]["dryRun"]["message"]
        .as_str()
        .unwrap()
        .contains("forbidden"));
    let placeholder = fixes
        .iter()
        .find(|f| f["action"] == "require-oidc")
        .unwrap();
    assert!(placeholder["skipped"]
        .as_str()
        .unwrap()
        .contains("placeholders"));
    assert!(fixes.iter().all(|f| f["applied"].is_null()));
    assert!(server
        .requests()
        .iter()
        .filter(|r| r.starts_with("PATCH") || r.starts_with("POST"))
        .all(|r| r.contains("dryRun=All")));
    let svc = server
        .get(
            "v1",
            "Service",
            Some("istio-system"),
            "istio-ingressgateway",
        )
        .unwrap();
    assert_eq!(svc["spec"]["type"], "LoadBalancer", "untouched");
    // The files are written all the same, for review.
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 8);
}

/// A fix's command as kubectl arguments. `kubectl apply` validates against the server's
/// OpenAPI document first, which the stand-in does not serve: that check is left out here.
fn kubectl_args(command: &str) -> Vec<&str> {
    let mut args: Vec<&str> = command.split(' ').skip(1).collect();
    if args[0] == "apply" {
        args.push("--validate=false");
    }
    args
}

/// The real kubectl, with the files as a user would use them, against the stand-in: a server
/// dry run changes nothing, the real patch does, and what a real server refuses is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_with_the_files_against_the_stand_in() {
    let server = ApiServer::start(incident_server_config()).await;
    let kubectl = Kubectl::new(&server);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fixes");
    let (_, doc, _) = fix_json(&[
        &incident(),
        "--out",
        out.to_str().unwrap(),
        "--oidc-issuer",
        "https://login.example.com",
    ]);
    for f in doc["fixes"].as_array().unwrap() {
        let command = f["command"].as_str().unwrap();
        let mut args = kubectl_args(command);
        args.push("--dry-run=server");
        let o = kubectl.run(&args);
        assert!(
            o.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let svc = server
        .get(
            "v1",
            "Service",
            Some("istio-system"),
            "istio-ingressgateway",
        )
        .unwrap();
    assert_eq!(
        svc["spec"]["type"], "LoadBalancer",
        "a dry run changes nothing"
    );
    assert!(server
        .get(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            Some("kubeflow-user-team-b"),
            "jackstop-egress-allowlist"
        )
        .is_none());

    for f in doc["fixes"].as_array().unwrap() {
        let command = f["command"].as_str().unwrap();
        let args = kubectl_args(command);
        let o = kubectl.run(&args);
        assert!(
            o.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let svc = server
        .get(
            "v1",
            "Service",
            Some("istio-system"),
            "istio-ingressgateway",
        )
        .unwrap();
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert!(server
        .get(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            Some("kubeflow-user-team-b"),
            "jackstop-egress-allowlist"
        )
        .is_some());

    // Refused as a real server refuses: a ClusterIP Service may not keep source ranges.
    let o = kubectl.run(&[
        "patch",
        "service",
        "istio-ingressgateway",
        "-n",
        "istio-system",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"loadBalancerSourceRanges":["10.0.0.0/8"]}}"#,
        "--dry-run=server",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("may only be used when `type` is 'LoadBalancer'"));
    // A strategic merge patch (kubectl's default) of a custom resource: 415, as from a real
    // server, which is why the files say --type merge.
    let o = kubectl.run(&[
        "patch",
        "notebook.kubeflow.org",
        "analysis",
        "-n",
        "kubeflow-user-example-com",
        "-p",
        r#"{"metadata":{"annotations":{"x":"y"}}}"#,
        "--dry-run=server",
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("application/strategic-merge-patch+json is not supported by kubeflow.org/v1, Kind=Notebook"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Server-side apply, as `kubectl apply --server-side` sends it.
    let np = out.join(files(&doc)[6].file_name().unwrap());
    let o = kubectl.run(&[
        "apply",
        "--server-side",
        "--validate=false",
        "--dry-run=server",
        "-f",
        np.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A live LoadBalancer as an API server holds it (node ports allocated, defaults filled in):
/// the stand-in clears and refuses what a real server (1.20 and later) clears and refuses when
/// it is turned into a ClusterIP, and the fix jackstop writes for it passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_load_balancer_turned_cluster_ip() {
    let mut cfg = incident_server_config();
    let svc = cfg
        .objects
        .iter_mut()
        .find(|o| o["kind"] == "Service" && o["metadata"]["name"] == "istio-ingressgateway")
        .unwrap();
    for (i, p) in svc["spec"]["ports"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        p["nodePort"] = json!(30000 + i);
    }
    svc["spec"]["externalTrafficPolicy"] = json!("Local");
    svc["spec"]["healthCheckNodePort"] = json!(32000);
    svc["spec"]["allocateLoadBalancerNodePorts"] = json!(true);
    svc["spec"]["loadBalancerSourceRanges"] = json!(["0.0.0.0/0"]);
    let server = ApiServer::start(cfg).await;
    let kubectl = Kubectl::new(&server);
    let patch = |p: &str| {
        kubectl.run(&[
            "patch",
            "service",
            "istio-ingressgateway",
            "-n",
            "istio-system",
            "--type",
            "merge",
            "-p",
            p,
            "--dry-run=server",
            "-o",
            "json",
        ])
    };
    // Source ranges are not cleared by the server: left in, the patch is refused...
    let o = patch(r#"{"spec":{"type":"ClusterIP"}}"#);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("spec.loadBalancerSourceRanges: Forbidden"));
    // ...taken out, the unchanged node ports, health check port and policy go by themselves.
    let o = patch(r#"{"spec":{"type":"ClusterIP","loadBalancerSourceRanges":null}}"#);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let after: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        after["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p.get("nodePort").is_none()),
        "{after:#}"
    );
    assert!(
        after["spec"].get("externalTrafficPolicy").is_none(),
        "{after:#}"
    );
    assert!(
        after["spec"].get("healthCheckNodePort").is_none(),
        "{after:#}"
    );
    // A node port the patch itself sets is the user's, and refused on a ClusterIP.
    let o = patch(
        r#"{"spec":{"type":"ClusterIP","loadBalancerSourceRanges":null,"ports":[{"name":"http2","port":80,"targetPort":8080,"nodePort":31999}]}}"#,
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"));

    // jackstop's own patch, read from the live Service.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fixes");
    let (_, doc, stderr) = fix_json(&[
        "--cluster",
        "--kubeconfig",
        kubectl.kubeconfig.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let fix = doc["fixes"]
        .as_array()
        .unwrap_or_else(|| panic!("{stderr}"))
        .iter()
        .find(|f| f["action"] == "clusterip")
        .unwrap();
    let mut args = kubectl_args(fix["command"].as_str().unwrap());
    args.extend(["--dry-run=server", "-o", "json"]);
    let o = kubectl.run(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let after: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(after["spec"]["type"], "ClusterIP");
    assert!(after["spec"].get("loadBalancerSourceRanges").is_none());
}

/// KubeRay's samples: the ingress-nginx Ingress gets authentication annotations that the real
/// kubectl applies, and the scan after them finds it behind authentication; the RayCluster
/// head goes back to ClusterIP; the ALB Ingress and the Gateway are listed without a fix.
#[test]
fn kuberay_ingress_gets_authentication() {
    let out = tempfile::tempdir().unwrap();
    let (code, doc, stderr) = fix_json(&[
        corpus().join("kuberay").to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--ingress-auth-url",
        "http://oauth2-proxy.auth.svc.cluster.local/oauth2/auth",
    ]);
    assert_eq!(code, 1, "{stderr}");
    let fixes = doc["fixes"].as_array().unwrap();
    let ing = fixes
        .iter()
        .find(|f| f["action"] == "ingress-auth")
        .unwrap();
    assert_eq!(ing["needsInput"], false);
    assert!(fixes
        .iter()
        .any(|f| f["action"] == "clusterip" && f["target"]["kind"] == "RayCluster"));
    let unfixed: Vec<&str> = doc["unfixed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["finding"]["resource"]["kind"].as_str().unwrap())
        .collect();
    assert!(
        unfixed.contains(&"Gateway") && unfixed.contains(&"Ingress"),
        "{unfixed:?}"
    );

    let src = corpus().join("kuberay/ray-cluster.separate-ingress.yaml");
    let objects = objects_from(&[src.as_path()]);
    let i = objects.iter().position(|o| o["kind"] == "Ingress").unwrap();
    let work = tempfile::tempdir().unwrap();
    let obj_file = work.path().join("ingress.json");
    std::fs::write(&obj_file, objects[i].to_string()).unwrap();
    let o = std::process::Command::new("kubectl")
        .args([
            "patch",
            "--local",
            "--dry-run=client",
            "--type",
            "merge",
            "-o",
            "json",
            "-f",
        ])
        .arg(&obj_file)
        .arg("--patch-file")
        .arg(ing["file"].as_str().unwrap())
        .env("KUBECONFIG", "/dev/null")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut patched = objects.clone();
    patched[i] = serde_json::from_slice(&o.stdout).unwrap();
    let list = work.path().join("patched.json");
    std::fs::write(
        &list,
        json!({"apiVersion": "v1", "kind": "List", "items": patched}).to_string(),
    )
    .unwrap();
    let r = jackstop(
        &[
            "scan",
            "-f",
            "json",
            "--fail-on",
            "none",
            list.to_str().unwrap(),
        ],
        None,
    );
    let after = r.json();
    let on_ingress: Vec<&str> = after["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["resource"]["kind"] == "Ingress")
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(on_ingress, ["JS-EXP-009"], "behind authentication now");
}

/// A DaemonSet that publishes JupyterLab, without a token, on every node's port 8888.
const HOST_PORT_DAEMONSET: &str = r#"{
  "apiVersion": "apps/v1", "kind": "DaemonSet",
  "metadata": {"name": "lab", "namespace": "ml"},
  "spec": {
    "selector": {"matchLabels": {"app": "lab"}},
    "template": {
      "metadata": {"labels": {"app": "lab"}},
      "spec": {"containers": [{
        "name": "lab", "image": "quay.io/jupyter/base-notebook",
        "args": ["start-notebook.py", "--IdentityProvider.token=''"],
        "ports": [{"containerPort": 9000}, {"containerPort": 8888, "hostPort": 8888}]
      }]}
    }
  }
}"#;

/// A hostPort is one field of a list entry: the fix is a JSON patch. The real kubectl applies
/// its file (offline, and against the stand-in, where a second run fails on the patch's test
/// instead of removing something else), and `--apply` sends it through kube-rs; the scan after
/// finds no exposure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_ports_are_removed_by_a_json_patch() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("lab.json");
    std::fs::write(&input, HOST_PORT_DAEMONSET).unwrap();
    let out = tmp.path().join("fixes");
    let (code, doc, stderr) = fix_json(&[input.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    let fixes = doc["fixes"].as_array().unwrap();
    assert_eq!(fixes.len(), 1, "{doc:#}");
    let f = &fixes[0];
    assert_eq!(f["action"], "no-host-port");
    assert_eq!(f["method"], "json-patch");
    let file = f["file"].as_str().unwrap();
    let command = f["command"].as_str().unwrap();
    assert_eq!(
        command,
        format!("kubectl patch daemonset.apps lab -n ml --type json --patch-file {file}")
    );

    // Offline: the real kubectl reads the file as a JSON patch.
    let o = std::process::Command::new("kubectl")
        .args([
            "patch",
            "--local",
            "--dry-run=client",
            "--type",
            "json",
            "-o",
            "json",
            "-f",
        ])
        .arg(&input)
        .arg("--patch-file")
        .arg(file)
        .env("KUBECONFIG", "/dev/null")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let patched: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        patched["spec"]["template"]["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 9000}, {"containerPort": 8888}])
    );

    // Against the stand-in, the command as the file gives it: once it applies, twice it is
    // refused (the hostPort it tests for is gone), and the object stays as the first left it.
    let objects = vec![
        support::namespace_object("ml"),
        serde_json::from_str::<Value>(HOST_PORT_DAEMONSET).unwrap(),
    ];
    let server = ApiServer::start(ServerConfig {
        objects: objects.clone(),
        ..ServerConfig::default()
    })
    .await;
    let kubectl = Kubectl::new(&server);
    let args = kubectl_args(command);
    let o = kubectl.run(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ds = server
        .get("apps/v1", "DaemonSet", Some("ml"), "lab")
        .unwrap();
    assert_eq!(
        ds["spec"]["template"]["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 9000}, {"containerPort": 8888}])
    );
    let o = kubectl.run(&args);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("The request is invalid"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    drop(server);

    // `--apply`: dry run, then the patch, through kube-rs.
    let server = ApiServer::start(ServerConfig {
        objects,
        ..ServerConfig::default()
    })
    .await;
    let kc = kubeconfig(&server.url, tmp.path());
    let (code, doc, stderr) = fix_json(&[
        "--cluster",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--apply",
    ]);
    assert_eq!(code, 1, "{stderr}");
    let f = &doc["fixes"][0];
    assert_eq!(f["dryRun"]["ok"], true, "{f:#}");
    assert_eq!(f["applied"]["ok"], true, "{f:#}");
    let ds = server
        .get("apps/v1", "DaemonSet", Some("ml"), "lab")
        .unwrap();
    assert!(ds["spec"]["template"]["spec"]["containers"][0]["ports"][1]
        .get("hostPort")
        .is_none());
    let r = jackstop(
        &[
            "scan",
            "--cluster",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "-f",
            "json",
            "--fail-on",
            "none",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.json()["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["category"] != "exposure"),
        "{}",
        r.stdout
    );
}

/// JupyterLab without a token behind Traefik: an Ingress that names a Middleware already, and
/// an IngressRoute with a route without middlewares and one with a stripPrefix.
const TRAEFIK: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: ml}
---
apiVersion: v1
kind: Service
metadata: {name: lab, namespace: ml}
spec:
  selector: {app: lab}
  ports: [{port: 80, targetPort: 8888}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: lab, namespace: ml}
spec:
  selector: {matchLabels: {app: lab}}
  template:
    metadata: {labels: {app: lab}}
    spec:
      containers:
      - name: lab
        image: quay.io/jupyter/base-notebook
        args: [start-notebook.py, "--IdentityProvider.token=''"]
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: strip, namespace: ml}
spec:
  stripPrefix: {prefixes: [/lab]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: lab
  namespace: ml
  annotations: {traefik.ingress.kubernetes.io/router.middlewares: ml-strip@kubernetescrd}
spec:
  ingressClassName: traefik
  rules: [{http: {paths: [{path: /lab, pathType: Prefix, backend: {service: {name: lab, port: {number: 80}}}}]}}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: lab, namespace: ml}
spec:
  entryPoints: [websecure]
  routes:
  - match: Host(`lab.example.com`)
    kind: Rule
    services: [{name: lab, port: 80}]
  - match: Host(`lab.example.com`) && PathPrefix(`/lab`)
    kind: Rule
    middlewares: [{name: strip}]
    services: [{name: lab, port: 80}]
"#;

const AUTH_URL: &str = "http://oauth2-proxy.auth.svc.cluster.local/oauth2/auth";

/// The rules of the exposures a scan of `paths` finds, by the kind of their object.
fn exposure_rules(paths: &[&str]) -> Vec<(String, String)> {
    let mut args = vec!["scan", "-f", "json", "--fail-on", "none"];
    args.extend_from_slice(paths);
    let r = jackstop(&args, None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut out: Vec<(String, String)> = r.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["category"] == "exposure")
        .map(|f| {
            (
                f["resource"]["kind"].as_str().unwrap().to_string(),
                f["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Traefik: the Middleware file and the two patches, as the real kubectl applies them offline
/// (`--type merge` for the Ingress, `--type json` for the IngressRoute); the scan of what they
/// leave finds the interface behind authentication (JS-EXP-009) on both ways in.
#[test]
fn traefik_files_are_what_kubectl_takes_and_put_the_login_in_front() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("traefik.yaml");
    std::fs::write(&input, TRAEFIK).unwrap();
    let before = exposure_rules(&[input.to_str().unwrap()]);
    assert_eq!(before.len(), 2, "{before:?}");
    assert!(before.iter().all(|(_, rule)| rule != "JS-EXP-009"));
    let out = tmp.path().join("fixes");
    let (code, doc, stderr) = fix_json(&[
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--ingress-auth-url",
        AUTH_URL,
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(doc["unfixed"].as_array().unwrap().is_empty(), "{doc:#}");
    let fixes = doc["fixes"].as_array().unwrap();
    let summary: Vec<(&str, &str, &str, &str)> = fixes
        .iter()
        .map(|f| {
            (
                f["action"].as_str().unwrap(),
                f["effect"].as_str().unwrap(),
                f["method"].as_str().unwrap(),
                f["target"]["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("traefik-forward-auth", "prepares", "apply", "Middleware"),
            ("traefik-auth", "closes", "merge-patch", "Ingress"),
            ("traefik-auth", "closes", "json-patch", "IngressRoute"),
        ]
    );
    let middleware = json!({
        "apiVersion": "traefik.io/v1alpha1", "kind": "Middleware",
        "namespace": "ml", "name": "jackstop-forward-auth"
    });
    assert!(fixes[0].get("requires").is_none());
    for f in &fixes[1..] {
        assert_eq!(f["requires"], json!([middleware]), "{f:#}");
        assert_eq!(f["needsInput"], false);
    }

    // The patches, by the real kubectl, offline, to the objects as they were read.
    let mut objects = objects_from(&[input.as_path()]);
    let work = tempfile::tempdir().unwrap();
    for f in &fixes[1..] {
        let ty = if f["method"] == "json-patch" {
            "json"
        } else {
            "merge"
        };
        let command = f["command"].as_str().unwrap();
        assert!(
            command.contains(&format!("--type {ty} --patch-file")),
            "{command}"
        );
        let i = objects
            .iter()
            .position(|o| same(o, &f["target"]))
            .expect("target among the objects");
        let obj_file = work.path().join("object.json");
        std::fs::write(&obj_file, objects[i].to_string()).unwrap();
        let o = std::process::Command::new("kubectl")
            .args([
                "patch",
                "--local",
                "--dry-run=client",
                "--type",
                ty,
                "-o",
                "json",
                "-f",
            ])
            .arg(&obj_file)
            .arg("--patch-file")
            .arg(f["file"].as_str().unwrap())
            .env("KUBECONFIG", "/dev/null")
            .output()
            .expect("kubectl runs");
        assert!(
            o.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        objects[i] = serde_json::from_slice(&o.stdout).unwrap();
    }
    let ing = objects.iter().find(|o| o["kind"] == "Ingress").unwrap();
    assert_eq!(
        ing["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.middlewares"],
        "ml-jackstop-forward-auth@kubernetescrd,ml-strip@kubernetescrd"
    );
    let ir = objects
        .iter()
        .find(|o| o["kind"] == "IngressRoute")
        .unwrap();
    assert_eq!(
        ir["spec"]["routes"][0]["middlewares"],
        json!([{"name": "jackstop-forward-auth"}])
    );
    assert_eq!(
        ir["spec"]["routes"][1]["middlewares"],
        json!([{"name": "jackstop-forward-auth"}, {"name": "strip"}])
    );
    let patched = work.path().join("patched.json");
    std::fs::write(
        &patched,
        json!({"apiVersion": "v1", "kind": "List", "items": objects}).to_string(),
    )
    .unwrap();
    // The patches alone: Traefik would not find the Middleware; still open as jackstop reads it.
    let alone = exposure_rules(&[patched.to_str().unwrap()]);
    assert!(
        alone.iter().all(|(_, rule)| rule != "JS-EXP-009"),
        "{alone:?}"
    );
    // With the Middleware file (read as kubectl apply reads it): behind authentication.
    let after = exposure_rules(&[
        patched.to_str().unwrap(),
        fixes[0]["file"].as_str().unwrap(),
    ]);
    assert_eq!(
        after,
        [
            ("Ingress".to_string(), "JS-EXP-009".to_string()),
            ("IngressRoute".to_string(), "JS-EXP-009".to_string()),
        ]
    );
    // The table says what to apply first.
    let r = jackstop(
        &[
            "fix",
            "-f",
            "table",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        r.stdout.contains(
            "requires: apply the file that creates Middleware ml/jackstop-forward-auth first"
        ),
        "{}",
        r.stdout
    );
}

/// `--apply` against the stand-in: without an auth URL the Middleware has a placeholder and
/// nothing is sent, the patches that name it included; with one, the Middleware is created
/// before the patches that name it are sent, and the cluster scanned again has the interface
/// behind authentication.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_apply_creates_the_middleware_before_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("traefik.yaml");
    std::fs::write(&input, TRAEFIK).unwrap();
    let server = ApiServer::start(ServerConfig {
        objects: objects_from(&[input.as_path()]),
        ..ServerConfig::default()
    })
    .await;
    let kc = kubeconfig(&server.url, tmp.path());
    let out = tmp.path().join("fixes");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "--cluster",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--apply",
        ];
        args.extend_from_slice(extra);
        fix_json(&args)
    };

    let (code, doc, stderr) = run(&[]);
    assert_eq!(code, 1, "{stderr}");
    let fixes = doc["fixes"].as_array().unwrap();
    assert_eq!(fixes.len(), 3, "{doc:#}");
    assert!(fixes[0]["skipped"]
        .as_str()
        .unwrap()
        .contains("placeholders"));
    for f in &fixes[1..] {
        assert_eq!(
            f["skipped"],
            "not applied: it names Middleware ml/jackstop-forward-auth, which fix 001 creates, and that fix is not applied",
            "{f:#}"
        );
        assert!(f["dryRun"].is_null() && f["applied"].is_null());
    }
    let writes = |server: &ApiServer| -> Vec<String> {
        server
            .requests()
            .into_iter()
            .filter(|r| r.starts_with("PATCH") || r.starts_with("POST"))
            .collect()
    };
    assert!(writes(&server).is_empty(), "{:#?}", writes(&server));

    let (code, doc, stderr) = run(&["--ingress-auth-url", AUTH_URL]);
    assert_eq!(code, 1, "{stderr}");
    let fixes = doc["fixes"].as_array().unwrap();
    for f in fixes {
        assert_eq!(f["dryRun"]["ok"], true, "{f:#}");
        assert_eq!(f["applied"]["ok"], true, "{f:#}");
    }
    assert!(fixes[0]["dryRun"]["message"]
        .as_str()
        .unwrap()
        .ends_with("would create it"));
    // Dry runs of the patches pass before the Middleware exists: only the reference is new.
    let ir_said = fixes[2]["dryRun"]["message"].as_str().unwrap();
    assert!(ir_said.contains("spec.routes[0].middlewares"), "{ir_said}");
    // Every dry run first; then the Middleware, then the patches that name it.
    let w = writes(&server);
    assert_eq!(w.len(), 6, "{w:#?}");
    assert!(w[..3].iter().all(|r| r.contains("dryRun=All")), "{w:#?}");
    assert!(
        w[3].contains("/middlewares/jackstop-forward-auth"),
        "{w:#?}"
    );
    assert!(
        w[4].contains("/ingresses/lab") && w[5].contains("/ingressroutes/lab"),
        "{w:#?}"
    );
    let mw = server
        .get(
            "traefik.io/v1alpha1",
            "Middleware",
            Some("ml"),
            "jackstop-forward-auth",
        )
        .unwrap();
    assert_eq!(mw["spec"]["forwardAuth"]["address"], AUTH_URL);
    let ir = server
        .get("traefik.io/v1alpha1", "IngressRoute", Some("ml"), "lab")
        .unwrap();
    assert_eq!(
        ir["spec"]["routes"][1]["middlewares"],
        json!([{"name": "jackstop-forward-auth"}, {"name": "strip"}])
    );
    let rules = exposure_rules(&["--cluster", "--kubeconfig", kc.to_str().unwrap()]);
    let rule = |kind: &str| (kind.to_string(), "JS-EXP-009".to_string());
    assert_eq!(rules, [rule("Ingress"), rule("IngressRoute")]);
    // Run again: nothing left to fix for Traefik.
    let (_, again, _) = run(&["--ingress-auth-url", AUTH_URL]);
    assert!(again["fixes"].as_array().unwrap().is_empty(), "{again:#}");
    drop(server);

    // The Middleware refused at its dry run: the patches that name it passed theirs, and are
    // not applied, for that reason.
    let server = ApiServer::start(ServerConfig {
        objects: objects_from(&[input.as_path()]),
        forbidden: vec!["middlewares".into()],
        ..ServerConfig::default()
    })
    .await;
    let kc = kubeconfig(&server.url, tmp.path());
    let (code, doc, stderr) = fix_json(&[
        "--cluster",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--apply",
        "--ingress-auth-url",
        AUTH_URL,
    ]);
    assert_eq!(code, 2, "{stderr}");
    let fixes = doc["fixes"].as_array().unwrap();
    assert_eq!(fixes.len(), 3, "{doc:#}");
    assert_eq!(fixes[0]["dryRun"]["ok"], false, "{doc:#}");
    for f in &fixes[1..] {
        assert_eq!(f["dryRun"]["ok"], true, "{f:#}");
        assert_eq!(
            f["skipped"],
            "not applied: it names Middleware ml/jackstop-forward-auth, which fix 001 creates, and that fix failed its dry run",
            "{f:#}"
        );
    }
    assert!(writes(&server).iter().all(|r| r.contains("dryRun=All")));
}

/// A finding suppressed by `jackstop.dev/ignore` gets no fix, and is counted in the summary
/// (JSON and table), never silently dropped.
#[test]
fn suppressed_findings_get_no_fix_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let hit = repo_root().join("tests/rules/JS-EXP-003/hit.yaml");
    let text = std::fs::read_to_string(&hit).unwrap();
    let ignored = text.replace(
        "  name: lab\n  namespace: research\nspec:\n  type: LoadBalancer",
        "  name: lab\n  namespace: research\n  annotations:\n    jackstop.dev/ignore: JS-EXP-003\nspec:\n  type: LoadBalancer",
    );
    assert_ne!(ignored, text, "the annotation was added");
    std::fs::write(dir.path().join("lab.yaml"), &ignored).unwrap();
    let out = tempfile::tempdir().unwrap();
    let (code, doc, stderr) = fix_json(&[
        dir.path().to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(doc["fixes"], json!([]));
    assert_eq!(doc["summary"]["suppressed"], 1, "{doc}");
    let r = jackstop(
        &[
            "fix",
            "-f",
            "table",
            dir.path().to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
        ],
        None,
    );
    assert!(r.stdout.contains("1 finding(s) suppressed"), "{}", r.stdout);
    // Without the annotation, the same Service gets its fix.
    std::fs::write(dir.path().join("lab.yaml"), &text).unwrap();
    let (_, doc, _) = fix_json(&[
        dir.path().to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(doc["summary"]["suppressed"], 0);
    assert_eq!(doc["fixes"].as_array().unwrap().len(), 1, "{doc}");
}
