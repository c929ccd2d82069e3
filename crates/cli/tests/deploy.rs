//! deploy/: the install renders with the real kubectl (kustomize), jackstop finds nothing at
//! medium or above in its own manifests, the ValidatingWebhookConfiguration sends every kind
//! the webhook judges, the reader role lets it watch what its cluster view needs, and the
//! shipped policy is valid.

mod common;
#[path = "../../cluster/tests/support/mod.rs"]
mod support;

use common::kubectl;
use jackstop_admission::{Engine, Policy};
use jackstop_catalogue::Catalogue;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::plural;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// deploy/ as `kubectl apply -k` would send it, rendered by the real kubectl.
fn rendered_text() -> Vec<u8> {
    kubectl(&[
        std::ffi::OsStr::new("kustomize"),
        repo().join("deploy").as_os_str(),
    ])
}

fn rendered() -> Vec<Value> {
    let text = String::from_utf8(rendered_text()).unwrap();
    text.split("\n---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_saphyr::from_str::<Value>(d).unwrap())
        .collect()
}

#[test]
fn jackstop_finds_nothing_at_medium_or_above_in_its_own_install() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("install.yaml");
    std::fs::write(&file, rendered_text()).unwrap();
    for target in [file.as_path(), &repo().join("deploy")] {
        let scan = Command::new(env!("CARGO_BIN_EXE_jackstop"))
            .args(["scan", "-f", "json", "--fail-on", "medium"])
            .arg(target)
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&scan.stdout).unwrap();
        assert_eq!(
            scan.status.code(),
            Some(0),
            "{}: {report:#}",
            target.display()
        );
        assert_eq!(
            report["errors"],
            serde_json::json!([]),
            "{}",
            target.display()
        );
    }
}

#[test]
fn the_webhook_configuration_sends_every_kind_the_webhook_judges() {
    let docs = rendered();
    let vwc = docs
        .iter()
        .find(|d| d["kind"] == "ValidatingWebhookConfiguration")
        .unwrap();
    let mut covered = Vec::new();
    for w in vwc["webhooks"].as_array().unwrap() {
        assert_eq!(w["failurePolicy"], "Fail");
        assert_eq!(w["sideEffects"], "None");
        assert_eq!(w["admissionReviewVersions"], serde_json::json!(["v1"]));
        assert!(w["timeoutSeconds"].as_u64().unwrap() <= 10);
        assert_eq!(w["clientConfig"]["service"]["namespace"], "jackstop");
        let excluded = w["namespaceSelector"]["matchExpressions"][0]["values"].clone();
        assert_eq!(excluded, serde_json::json!(["kube-system", "jackstop"]));
        for r in w["rules"].as_array().unwrap() {
            for res in r["resources"].as_array().unwrap() {
                covered.push(res.as_str().unwrap().to_string());
            }
        }
    }
    let engine = Engine::new(Catalogue::builtin());
    // Not resources: a KFP pipeline spec is a document, never an API object.
    for kind in engine.kinds().into_iter().filter(|k| *k != "PipelineSpec") {
        let p = plural(kind);
        assert!(
            covered.contains(&p),
            "{kind} ({p}) is judged but never sent"
        );
    }

    // The reader role covers what the cluster view watches.
    let role = docs
        .iter()
        .find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == "jackstop-reader")
        .unwrap();
    let readable: Vec<String> = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["resources"].as_array().unwrap().clone())
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    for kind in jackstop_admission::ClusterState::kinds() {
        let p = plural(kind);
        assert!(
            readable.contains(&p),
            "the view needs {p}, the role cannot read it"
        );
    }

    // Two replicas that a drain cannot take both of.
    let deploy = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert_eq!(deploy["spec"]["replicas"], 2);
    let pdb = docs
        .iter()
        .find(|d| d["kind"] == "PodDisruptionBudget")
        .unwrap();
    assert_eq!(pdb["spec"]["minAvailable"], 1);
}

#[test]
fn the_shipped_policy_is_valid() {
    let known = |r: &str| Catalogue::builtin().rules.get(r).is_some();
    let p = Policy::from_file(&repo().join("deploy/webhook/policy.yaml"), known).unwrap();
    assert!(p.exemption(Some("kube-system"), None, "x").is_some());
}

/// deploy/webhook/self-signed.sh: deploy/ without cert-manager renders with the real kubectl,
/// with no cert-manager object left, the serving certificate in the Secret the Deployment
/// mounts, and its CA in every webhook's caBundle; the certificate verifies against that CA
/// for the Service's name (openssl), and jackstop still finds nothing at medium or above.
#[test]
fn the_self_signed_install_renders_and_its_certificate_verifies() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("install");
    let run = Command::new(repo().join("deploy/webhook/self-signed.sh"))
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = kubectl(&[std::ffi::OsStr::new("kustomize"), out.as_os_str()]);
    let docs: Vec<Value> = String::from_utf8(text.clone())
        .unwrap()
        .split("\n---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_saphyr::from_str::<Value>(d).unwrap())
        .collect();
    assert!(
        !docs.iter().any(|d| d["apiVersion"]
            .as_str()
            .unwrap()
            .starts_with("cert-manager.io")),
        "no cert-manager object left"
    );
    let ca = std::fs::read(out.join("ca.crt")).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&ca);
    let secret = docs
        .iter()
        .find(|d| d["kind"] == "Secret" && d["metadata"]["name"] == "jackstop-webhook-tls")
        .expect("the serving Secret");
    assert_eq!(secret["metadata"]["namespace"], "jackstop");
    assert_eq!(secret["type"], "kubernetes.io/tls");
    let cert = base64::engine::general_purpose::STANDARD
        .decode(
            // kustomize folds long data over lines.
            secret["data"]["tls.crt"]
                .as_str()
                .unwrap()
                .split_whitespace()
                .collect::<String>(),
        )
        .unwrap();
    assert_eq!(cert, std::fs::read(out.join("tls.crt")).unwrap());
    assert!(secret["data"]["tls.key"].is_string());
    let mounted = docs.iter().find(|d| d["kind"] == "Deployment").unwrap()["spec"]["template"]
        ["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["secret"]["secretName"] == "jackstop-webhook-tls");
    assert!(mounted, "the Deployment mounts the Secret");
    let vwc = docs
        .iter()
        .find(|d| d["kind"] == "ValidatingWebhookConfiguration")
        .unwrap();
    assert!(vwc["metadata"]["annotations"]
        .get("cert-manager.io/inject-ca-from")
        .is_none());
    let hooks = vwc["webhooks"].as_array().unwrap();
    assert!(hooks.len() >= 2);
    for h in hooks {
        assert_eq!(h["clientConfig"]["caBundle"], b64.as_str(), "{}", h["name"]);
    }
    let verify = Command::new("openssl")
        .args([
            "verify",
            "-verify_hostname",
            "jackstop-webhook.jackstop.svc",
            "-CAfile",
        ])
        .arg(out.join("ca.crt"))
        .arg(out.join("tls.crt"))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let file = dir.path().join("install.yaml");
    std::fs::write(&file, text).unwrap();
    let scan = Command::new(env!("CARGO_BIN_EXE_jackstop"))
        .args(["scan", "-f", "json", "--fail-on", "medium"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        scan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&scan.stdout)
    );
}
