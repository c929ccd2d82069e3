//! The real Kubeflow platform install (../shared/corpus, rendered from kubeflow/manifests) is
//! secure by default; variants derived from it must be caught, each at its severity.

mod common;

use common::{is_doc, kubeflow_documents, scan_json, summary};
use serde_json::Value;
use std::path::PathBuf;

const GATEWAY_POLICIES: [&str; 2] = [
    "istio-ingressgateway-oauth2-proxy",
    "istio-ingressgateway-require-jwt",
];

/// Writes a variant of the install: `gateway_type` for istio-ingressgateway, optional extra
/// annotation on it, and the gateway's auth policies kept or removed.
fn variant(
    dir: &tempfile::TempDir,
    gateway_type: &str,
    annotation: Option<&str>,
    keep_auth: bool,
) -> PathBuf {
    let docs: Vec<String> = kubeflow_documents()
        .into_iter()
        .filter(|d| keep_auth || !GATEWAY_POLICIES.iter().any(|p| is_doc(d, "AuthorizationPolicy", "istio-system", p)))
        .map(|d| {
            if !is_doc(&d, "Service", "istio-system", "istio-ingressgateway") {
                return d;
            }
            assert!(d.contains("\n  type: ClusterIP"), "the real gateway Service is ClusterIP");
            let mut d = d.replace("\n  type: ClusterIP", &format!("\n  type: {gateway_type}"));
            if let Some(a) = annotation {
                d = d.replace(
                    "  name: istio-ingressgateway\n  namespace: istio-system\n",
                    &format!("  name: istio-ingressgateway\n  namespace: istio-system\n  annotations:\n    {a}\n"),
                );
            }
            d
        })
        .collect();
    let path = dir
        .path()
        .join(format!("kubeflow-{gateway_type}-{keep_auth}.yaml"));
    std::fs::write(&path, docs.join("\n---\n")).unwrap();
    path
}

fn severities(doc: &Value) -> Vec<String> {
    summary(doc).into_iter().map(|(_, s, _)| s).collect()
}

#[test]
fn secure_default_install_has_no_high_exposure() {
    let path = common::corpus().join("kubeflow-platform/kubeflow-example.yaml");
    let doc = scan_json(&[path.to_str().unwrap()]);
    assert_eq!(doc["summary"]["inputs"]["objects"], 657);
    assert_eq!(doc["errors"], serde_json::json!([]));
    assert!(
        !severities(&doc)
            .iter()
            .any(|s| s == "critical" || s == "high"),
        "{:#?}",
        summary(&doc)
    );
}

#[test]
fn load_balancer_without_auth_policies_is_critical() {
    let dir = tempfile::tempdir().unwrap();
    let doc = scan_json(&[variant(&dir, "LoadBalancer", None, false).to_str().unwrap()]);
    let found = common::findings(&doc);
    let dashboard = found
        .iter()
        .find(|f| f["detail"]["interface"] == "kubeflow-central-dashboard")
        .expect("the central dashboard is reported");
    assert_eq!(dashboard["rule"], "JS-EXP-001");
    assert_eq!(dashboard["severity"], "critical");
    assert_eq!(dashboard["resource"]["kind"], "Service");
    assert_eq!(dashboard["resource"]["namespace"], "istio-system");
    assert_eq!(dashboard["resource"]["name"], "istio-ingressgateway");
    assert_eq!(dashboard["location"]["field"], "spec.type");
    let path = dashboard["evidence"][0].as_str().unwrap();
    for hop in [
        "Internet -> Service istio-system/istio-ingressgateway (LoadBalancer)",
        "Gateway kubeflow/kubeflow-gateway",
        "VirtualService kubeflow/centraldashboard",
        "Deployment kubeflow/centraldashboard container centraldashboard",
    ] {
        assert!(path.contains(hop), "{hop:?} missing from {path}");
    }
    // The Pipelines UI, through which the 2021 wave started its miners, is reported too.
    assert!(found
        .iter()
        .any(|f| f["rule"] == "JS-EXP-002" && f["severity"] == "critical"));
    // Every finding is on the gateway Service, the object that opened the door.
    assert!(found
        .iter()
        .all(|f| f["resource"]["name"] == "istio-ingressgateway"));
}

#[test]
fn node_port_without_auth_is_high_not_critical() {
    let dir = tempfile::tempdir().unwrap();
    let doc = scan_json(&[variant(&dir, "NodePort", None, false).to_str().unwrap()]);
    let s = severities(&doc);
    assert!(s.iter().any(|s| s == "high"), "{s:?}");
    assert!(!s.iter().any(|s| s == "critical"), "{s:?}");
}

#[test]
fn load_balancer_with_auth_kept_is_not_high() {
    let dir = tempfile::tempdir().unwrap();
    let doc = scan_json(&[variant(&dir, "LoadBalancer", None, true).to_str().unwrap()]);
    let found = common::findings(&doc);
    assert!(!found.is_empty(), "the exposure is still known");
    for f in &found {
        assert_eq!(f["rule"], "JS-EXP-009", "{f:#}");
        assert_eq!(f["severity"], "low");
        let auth = f["evidence"][1].as_str().unwrap();
        assert!(
            auth.contains("oauth2-proxy") && auth.contains("JWT required"),
            "{auth}"
        );
    }
}

#[test]
fn internal_load_balancer_is_not_high() {
    let dir = tempfile::tempdir().unwrap();
    for annotation in [
        "service.beta.kubernetes.io/azure-load-balancer-internal: \"true\"",
        "service.beta.kubernetes.io/aws-load-balancer-scheme: internal",
        "networking.gke.io/load-balancer-type: Internal",
        "service.beta.kubernetes.io/oci-load-balancer-internal: \"true\"",
    ] {
        let doc = scan_json(&[variant(&dir, "LoadBalancer", Some(annotation), false)
            .to_str()
            .unwrap()]);
        let s = severities(&doc);
        assert!(
            !s.is_empty(),
            "{annotation}: the private exposure is still reported"
        );
        assert!(
            !s.iter().any(|s| s == "critical" || s == "high"),
            "{annotation}: {s:?}"
        );
    }
}

#[test]
fn source_ranges_narrow_but_do_not_silence() {
    let dir = tempfile::tempdir().unwrap();
    let path = variant(&dir, "LoadBalancer", None, false);
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "\n  type: LoadBalancer",
        "\n  type: LoadBalancer\n  loadBalancerSourceRanges:\n  - 203.0.113.0/24",
    );
    std::fs::write(&path, text).unwrap();
    let doc = scan_json(&[path.to_str().unwrap()]);
    let s = severities(&doc);
    assert!(
        s.iter().any(|s| s == "high") && !s.iter().any(|s| s == "critical"),
        "{s:?}"
    );
    let f = &common::findings(&doc)[0];
    assert_eq!(f["location"]["field"], "spec.loadBalancerSourceRanges");
}
