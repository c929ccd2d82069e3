//! JS-AUD-003, its other half: the gateway's login service (oauth2-proxy, Dex, authservice)
//! deleted or scaled to zero, the way an operator or an intruder with a stolen kubeconfig
//! would do it: `kubectl delete`, `kubectl scale` (a patch or an update of the `scale`
//! subresource) and `kubectl patch` of `spec.replicas` (merge and JSON patch), logged at the
//! Request and RequestResponse levels. The near misses (scaled to 2, an unrelated Deployment
//! deleted or scaled to zero, a delete refused with 403, the RequestReceived twin of a delete)
//! make no finding.
//!
//! Golden-style: one log, and the findings it must give, line by line.

use jackstop_audit::rules::{AuditAnalyser, AuditSettings};
use jackstop_audit::{AuditReader, ReadOptions};
use jackstop_catalogue::Catalogue;
use jackstop_core::Finding;
use serde_json::{json, Value};

const KUBECTL: &str = "kubectl/v1.29.3 (linux/amd64) kubernetes/6813625";
const OPS: &str = "ops-admin@example.com";

/// One ResponseComplete event as the API server's log backend writes it.
#[allow(clippy::too_many_arguments)]
fn event(
    id: &str,
    verb: &str,
    user: &str,
    object_ref: Value,
    code: u16,
    request: Option<Value>,
    response: Option<Value>,
    time: &str,
) -> Value {
    let group = object_ref["apiGroup"].as_str().unwrap_or("");
    let version = object_ref["apiVersion"].as_str().unwrap();
    let mut uri = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    uri += &format!(
        "/namespaces/{}/{}/{}",
        object_ref["namespace"].as_str().unwrap(),
        object_ref["resource"].as_str().unwrap(),
        object_ref["name"].as_str().unwrap()
    );
    if let Some(s) = object_ref["subresource"].as_str() {
        uri += &format!("/{s}");
    }
    let level = if response.is_some() {
        "RequestResponse"
    } else {
        "Request"
    };
    let mut e = json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": level,
        "auditID": id,
        "stage": "ResponseComplete",
        "requestURI": uri,
        "verb": verb,
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": ["203.0.113.77"],
        "userAgent": KUBECTL,
        "objectRef": object_ref,
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": time,
        "stageTimestamp": time,
        "annotations": {
            "authorization.k8s.io/decision": if code == 403 { "forbid" } else { "allow" },
            "authorization.k8s.io/reason": if code == 403 { "" } else { "RBAC: allowed by ClusterRoleBinding \"ops-admin-cluster-admin\" of ClusterRole \"cluster-admin\" to User \"ops-admin@example.com\"" }
        }
    });
    if code == 403 {
        e["responseStatus"] =
            json!({"metadata": {}, "status": "Failure", "reason": "Forbidden", "code": 403});
    }
    if let Some(r) = request {
        e["requestObject"] = r;
    }
    if let Some(r) = response {
        e["responseObject"] = r;
    }
    e
}

fn apps(resource: &str, ns: &str, name: &str, subresource: Option<&str>) -> Value {
    let mut r = json!({"resource": resource, "namespace": ns, "name": name, "apiGroup": "apps", "apiVersion": "v1"});
    if let Some(s) = subresource {
        r["subresource"] = json!(s);
    }
    r
}

fn delete_options() -> Value {
    json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1", "propagationPolicy": "Background"})
}

fn deleted(kind: &str, name: &str, uid: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
           "details": {"name": name, "group": "apps", "kind": kind, "uid": uid}})
}

/// The Scale the scale subresource answers with.
fn scale(ns: &str, name: &str, replicas: u64, was: u64, selector: &str) -> Value {
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
           "metadata": {"name": name, "namespace": ns, "uid": "4c1d7f0e-3b1a-4a51-9f0e-6a2f3c1d9b10", "resourceVersion": "1849302", "creationTimestamp": "2024-03-02T09:12:44Z"},
           "spec": {"replicas": replicas},
           "status": {"replicas": was, "selector": selector}})
}

/// The oauth2-proxy Deployment of Kubeflow 1.9 (common/oauth2-proxy), as a patch left it.
fn oauth2_proxy_deployment(replicas: u64) -> Value {
    json!({"kind": "Deployment", "apiVersion": "apps/v1",
           "metadata": {"name": "oauth2-proxy", "namespace": "oauth2-proxy", "uid": "9b8f0c52-0f3e-4a6e-b0f4-2f1d8e7c6a11", "resourceVersion": "1849377", "generation": 4,
                        "labels": {"app.kubernetes.io/name": "oauth2-proxy"}},
           "spec": {"replicas": replicas,
                    "selector": {"matchLabels": {"app.kubernetes.io/name": "oauth2-proxy"}},
                    "template": {"metadata": {"labels": {"app.kubernetes.io/name": "oauth2-proxy"}},
                                 "spec": {"containers": [{"name": "oauth2-proxy", "image": "quay.io/oauth2-proxy/oauth2-proxy:v7.5.1",
                                                          "args": ["--http-address=0.0.0.0:4180", "--config=/etc/oauth2_proxy/oauth2_proxy.cfg"],
                                                          "ports": [{"containerPort": 4180, "name": "http", "protocol": "TCP"}]}],
                                          "serviceAccountName": "oauth2-proxy"}}},
           "status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "observedGeneration": 3}})
}

/// The log, one event a line, and the findings each line must give (none for a near miss).
fn log_and_expected() -> (String, Vec<(usize, Option<Expected>)>) {
    let t = |s: u32| {
        format!(
            "2024-03-14T02:{:02}:{:02}.{:06}Z",
            10 + s / 60,
            s % 60,
            1000 + s
        )
    };
    let mut lines: Vec<(Value, Option<Expected>)> = Vec::new();

    // Hits.
    lines.push((
        event(
            "6f0b1d2e-1c51-4d6a-9a8e-0b6b9e1d7a01",
            "delete",
            OPS,
            apps("deployments", "oauth2-proxy", "oauth2-proxy", None),
            200,
            Some(delete_options()),
            Some(deleted(
                "deployments",
                "oauth2-proxy",
                "9b8f0c52-0f3e-4a6e-b0f4-2f1d8e7c6a11",
            )),
            &t(1),
        ),
        Some(Expected::new(
            "Deployment",
            "oauth2-proxy",
            "oauth2-proxy",
            "Gateway authentication removed: Deployment oauth2-proxy, the gateway's login, deleted",
            None,
        )),
    ));
    lines.push((
        event(
            "0c9e4a77-7f0e-4c9b-8d65-3e1f2a4b5c02",
            "delete",
            OPS,
            apps("deployments", "auth", "dex", None),
            200,
            Some(delete_options()),
            None,
            &t(2),
        ),
        Some(Expected::new(
            "Deployment",
            "auth",
            "dex",
            "Gateway authentication removed: Deployment dex, the gateway's login, deleted",
            None,
        )),
    ));
    // Kubeflow up to 1.8 runs authservice as a StatefulSet (common/oidc-client/oidc-authservice).
    lines.push((
        event(
            "a3d1c6e0-52f4-4b0b-9c1e-7d2a8f3e4b03",
            "delete",
            OPS,
            apps("statefulsets", "istio-system", "authservice", None),
            200,
            Some(delete_options()),
            Some(deleted(
                "statefulsets",
                "authservice",
                "1e7a9c3d-8b2f-4d6e-a5c0-3f9b1d2e4a77",
            )),
            &t(3),
        ),
        Some(Expected::new(
            "StatefulSet",
            "istio-system",
            "authservice",
            "Gateway authentication removed: StatefulSet authservice, the gateway's login, deleted",
            None,
        )),
    ));
    // `kubectl scale deployment oauth2-proxy --replicas=0`: a merge patch of the scale subresource.
    lines.push((
        event("5b2e8d14-9a3c-4f7e-b1d0-2c4e6f8a9b04", "patch", OPS,
              apps("deployments", "oauth2-proxy", "oauth2-proxy", Some("scale")), 200,
              Some(json!({"spec": {"replicas": 0}})),
              Some(scale("oauth2-proxy", "oauth2-proxy", 0, 1, "app.kubernetes.io/name=oauth2-proxy")), &t(4)),
        Some(Expected::new("Deployment", "oauth2-proxy", "oauth2-proxy",
             "Gateway authentication removed: Deployment oauth2-proxy, the gateway's login, scaled to zero",
             Some("responseObject.spec.replicas"))),
    ));
    // `kubectl scale --current-replicas=1 deployment dex --replicas=0`: a PUT of the Scale,
    // logged at the Request level.
    lines.push((
        event(
            "e81f3a5c-2d6b-4e9a-8c7f-1b3d5e7f9a05",
            "update",
            OPS,
            apps("deployments", "auth", "dex", Some("scale")),
            200,
            Some(scale("auth", "dex", 0, 1, "app=dex")),
            None,
            &t(5),
        ),
        Some(Expected::new(
            "Deployment",
            "auth",
            "dex",
            "Gateway authentication removed: Deployment dex, the gateway's login, scaled to zero",
            Some("requestObject.spec.replicas"),
        )),
    ));
    // `kubectl patch deployment dex -n auth -p '{"spec":{"replicas":0}}'` (Request level).
    lines.push((
        event(
            "c47d9b2a-6e1f-4a3c-9d8b-5f7a1c3e5b06",
            "patch",
            OPS,
            apps("deployments", "auth", "dex", None),
            200,
            Some(json!({"spec": {"replicas": 0}})),
            None,
            &t(6),
        ),
        Some(Expected::new(
            "Deployment",
            "auth",
            "dex",
            "Gateway authentication removed: Deployment dex, the gateway's login, scaled to zero",
            Some("requestObject.spec.replicas"),
        )),
    ));
    // A JSON patch of spec.replicas, logged with the Deployment it left.
    lines.push((
        event("19a6e3d7-4b8c-4f2e-a7d1-9c5b3e1f7a07", "patch", OPS,
              apps("deployments", "oauth2-proxy", "oauth2-proxy", None), 200,
              Some(json!([{"op": "replace", "path": "/spec/replicas", "value": 0}])),
              Some(oauth2_proxy_deployment(0)), &t(7)),
        Some(Expected::new("Deployment", "oauth2-proxy", "oauth2-proxy",
             "Gateway authentication removed: Deployment oauth2-proxy, the gateway's login, scaled to zero",
             Some("responseObject.spec.replicas"))),
    ));
    // The Service in front of Dex deleted: the gateway's OIDC issuer is gone.
    lines.push((
        event(
            "7d3c1b9e-8f2a-4e6d-b5c3-0a9e7f1d3b08",
            "delete",
            OPS,
            json!({"resource": "services", "namespace": "auth", "name": "dex", "apiVersion": "v1"}),
            200,
            Some(delete_options()),
            None,
            &t(8),
        ),
        Some(Expected::new(
            "Service",
            "auth",
            "dex",
            "Gateway authentication removed: Service dex, the gateway's login, deleted",
            None,
        )),
    ));

    // Near misses.
    // Scaled to 2 by the scale subresource, and by a patch.
    lines.push((
        event(
            "2e5f7a9c-1b3d-4f6a-8c0e-4d6f8a0b2c09",
            "patch",
            OPS,
            apps("deployments", "oauth2-proxy", "oauth2-proxy", Some("scale")),
            200,
            Some(json!({"spec": {"replicas": 2}})),
            Some(scale(
                "oauth2-proxy",
                "oauth2-proxy",
                2,
                1,
                "app.kubernetes.io/name=oauth2-proxy",
            )),
            &t(9),
        ),
        None,
    ));
    lines.push((
        event(
            "8a0c2e4f-6b8d-4a1c-9e3f-5b7d9f1a3c10",
            "patch",
            OPS,
            apps("deployments", "oauth2-proxy", "oauth2-proxy", None),
            200,
            Some(json!({"spec": {"replicas": 2}})),
            Some(oauth2_proxy_deployment(2)),
            &t(10),
        ),
        None,
    ));
    // An unrelated Deployment deleted, and another scaled to zero.
    lines.push((
        event(
            "3c5e7a9b-0d2f-4b4a-8c6e-1f3b5d7f9a11",
            "delete",
            OPS,
            apps(
                "deployments",
                "kubeflow-user-example-com",
                "training-metrics-exporter",
                None,
            ),
            200,
            Some(delete_options()),
            None,
            &t(11),
        ),
        None,
    ));
    lines.push((
        event(
            "d4f6a8c0-2e4b-4d6f-a8c1-3e5a7c9e1b12",
            "patch",
            OPS,
            apps(
                "deployments",
                "kubeflow",
                "ml-pipeline-visualizationserver",
                Some("scale"),
            ),
            200,
            Some(json!({"spec": {"replicas": 0}})),
            None,
            &t(12),
        ),
        None,
    ));
    // A notebook's service account may not delete the login: refused with 403.
    lines.push((
        event(
            "f1a3c5e7-9b2d-4f4a-b6c8-0e2a4c6e8a13",
            "delete",
            "system:serviceaccount:kubeflow-user-example-com:default-editor",
            apps("deployments", "oauth2-proxy", "oauth2-proxy", None),
            403,
            Some(delete_options()),
            None,
            &t(13),
        ),
        None,
    ));
    // The RequestReceived twin of a delete: no response yet, the ResponseComplete says.
    let mut received = event(
        "0b2d4f6a-8c0e-4a2c-b4d6-f8a0c2e4a614",
        "delete",
        OPS,
        apps("deployments", "auth", "dex", None),
        200,
        Some(delete_options()),
        None,
        &t(14),
    );
    received["stage"] = json!("RequestReceived");
    received.as_object_mut().unwrap().remove("responseStatus");
    lines.push((received, None));

    let text = lines
        .iter()
        .map(|(e, _)| serde_json::to_string(e).unwrap() + "\n")
        .collect();
    let expected = lines
        .into_iter()
        .enumerate()
        .map(|(i, (_, x))| (i + 1, x))
        .collect();
    (text, expected)
}

#[derive(Debug)]
struct Expected {
    kind: &'static str,
    namespace: &'static str,
    name: &'static str,
    title: &'static str,
    field: Option<&'static str>,
}

impl Expected {
    fn new(
        kind: &'static str,
        namespace: &'static str,
        name: &'static str,
        title: &'static str,
        field: Option<&'static str>,
    ) -> Expected {
        Expected {
            kind,
            namespace,
            name,
            title,
            field,
        }
    }
}

fn audit(text: &str) -> Vec<Finding> {
    let mut reader = AuditReader::new(ReadOptions::default());
    let mut analyser = AuditAnalyser::new(Catalogue::builtin(), AuditSettings::default());
    reader.read_stream(text.as_bytes(), "login-service.jsonl", &mut analyser);
    assert!(reader.errors.is_empty(), "{:?}", reader.errors);
    let (findings, notes) = analyser.finish();
    assert!(notes.is_empty(), "{notes:?}");
    findings
}

#[test]
fn the_login_service_deleted_or_scaled_to_zero_is_found_and_the_near_misses_are_not() {
    let (text, expected) = log_and_expected();
    let findings = audit(&text);
    for (line, want) in &expected {
        let got: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.location.line as usize == *line)
            .collect();
        let Some(want) = want else {
            assert!(got.is_empty(), "line {line} is a near miss: {got:#?}");
            continue;
        };
        assert_eq!(
            got.len(),
            1,
            "line {line}: want one finding, {want:?}: {got:#?}"
        );
        let f = got[0];
        assert_eq!(f.rule, "JS-AUD-003", "line {line}");
        assert_eq!(f.severity.as_str(), "critical", "line {line}");
        assert_eq!(f.title, want.title, "line {line}");
        assert_eq!(
            (
                f.resource.kind.as_str(),
                f.resource.namespace.as_deref(),
                f.resource.name.as_str()
            ),
            (want.kind, Some(want.namespace), want.name),
            "line {line}"
        );
        assert_eq!(f.location.path, "login-service.jsonl");
        assert_eq!(f.location.field.as_deref(), want.field, "line {line}");
        // Who, when, from where, and what came of it, first; then why.
        assert!(
            f.evidence[0].contains(&format!("by {OPS} from 203.0.113.77 ({KUBECTL}) -> 200")),
            "line {line}: {:?}",
            f.evidence
        );
        assert_eq!(
            f.evidence[1],
            want.title
                .trim_start_matches("Gateway authentication removed: "),
            "line {line}"
        );
    }
    let hits = expected.iter().filter(|(_, w)| w.is_some()).count();
    assert_eq!(findings.len(), hits, "{findings:#?}");
}

/// Each near miss alone, so that none of them hides behind a hit's line.
#[test]
fn each_near_miss_alone_makes_no_finding() {
    let (text, expected) = log_and_expected();
    for (line, (l, want)) in text.lines().zip(&expected) {
        if want.is_none() {
            let findings = audit(&format!("{line}\n"));
            assert!(findings.is_empty(), "line {l}: {findings:#?}");
        }
    }
}
