//! The key property of fixes: applied to the objects they target, they do what they claim.
//! Each fix is applied alone (merge patch semantics, or the new objects added), the objects are
//! analysed again, and:
//! - `closes`: the findings it names are gone;
//! - `narrows`: they are still there, reached only from the allowed ranges;
//! - `stops`: the target is stopped in the way its controller understands (checked here
//!   independently of the fix code);
//! - `contains`: the policy lets no pool port of the catalogue out of the cluster.

use jackstop_core::{FieldLines, Finding, Object, ResourceRef, Source};
use jackstop_fixes::{merge_patch, plan, Effect, Fix, FixOptions, Method, Oidc, Plan};
use jackstop_manifests::{collect_inputs, read_inputs, ReadOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &Path) -> Vec<Object> {
    let (inputs, errors) = collect_inputs(&[path.display().to_string()], &[]);
    assert!(errors.is_empty(), "{errors:?}");
    // Corpora hold a few documents that are not valid objects (listed as errors, skipped).
    read_inputs(&inputs, &ReadOptions::default()).objects
}

fn analyse(objects: &[Object]) -> Vec<Finding> {
    jackstop_analysers::run(
        &jackstop_analysers::all(),
        objects,
        jackstop_catalogue::Catalogue::builtin(),
    )
}

fn opts() -> FixOptions {
    FixOptions {
        now: "2026-11-26T00:00:00Z".into(),
        ..FixOptions::default()
    }
}

fn same(o: &Object, r: &ResourceRef) -> bool {
    o.kind == r.kind
        && o.name == r.name
        && o.namespace == r.namespace
        && o.api_version == r.api_version
}

/// The objects after `fix`, as the API server would hold them.
fn applied(objects: &[Object], fix: &Fix) -> Vec<Object> {
    let mut out = objects.to_vec();
    let source = Source {
        path: "fix".into(),
        line: 1,
        template: None,
    };
    match fix.method {
        Method::MergePatch => {
            assert_eq!(fix.documents.len(), 1);
            let o = out
                .iter_mut()
                .find(|o| same(o, &fix.target))
                .unwrap_or_else(|| panic!("target {} not among the objects", fix.target));
            let mut body = o.body.clone();
            merge_patch(&mut body, &fix.documents[0]);
            *o = Object::from_value(body, o.source.clone(), FieldLines::default())
                .expect("an object");
        }
        Method::Apply => {
            for d in &fix.documents {
                let new = Object::from_value(d.clone(), source.clone(), FieldLines::default())
                    .expect("an object");
                out.retain(|o| !same(o, &new.resource()));
                out.push(new);
            }
        }
    }
    out
}

fn still_there<'a>(after: &'a [Finding], f: &jackstop_fixes::FindingRef) -> Vec<&'a Finding> {
    after
        .iter()
        .filter(|a| a.rule == f.rule && a.resource == f.resource && a.title == f.title)
        .collect()
}

/// Whether `o` is stopped, as its controller reads it.
fn stopped(o: &Object) -> bool {
    let at = |p: &str| o.at(p).cloned().unwrap_or(Value::Null);
    match o.kind.as_str() {
        "Deployment" | "StatefulSet" | "ReplicaSet" => at("spec.replicas") == 0,
        "Job" | "CronJob" | "CronWorkflow" | "RayCluster" | "RayJob" => at("spec.suspend") == true,
        "DaemonSet" => o
            .at("spec.template.spec.nodeSelector")
            .and_then(|s| s.get("jackstop.dev/stopped"))
            .is_some(),
        "Notebook" => o.annotation("kubeflow-resource-stopped").is_some(),
        "Workflow" => at("spec.shutdown") == "Terminate",
        k => panic!("no stop check for {k}"),
    }
}

/// Whether an egress NetworkPolicy lets TCP to an address outside the cluster on `port`.
fn lets_out(policy: &Value, port: u16) -> bool {
    policy["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .any(|rule| {
            // `to` that names only pods or namespaces does not reach outside the cluster.
            let anywhere = match rule.get("to").and_then(Value::as_array) {
                None => true,
                Some(to) => to.is_empty() || to.iter().any(|p| p.get("ipBlock").is_some()),
            };
            let port_ok = match rule.get("ports").and_then(Value::as_array) {
                None => true,
                Some(ps) => ps.iter().any(|p| {
                    p.get("protocol").and_then(Value::as_str).unwrap_or("TCP") == "TCP"
                        && (p.get("port").is_none() || p["port"].as_u64() == Some(u64::from(port)))
                }),
            };
            anywhere && port_ok
        })
}

/// Applies each fix alone and checks its claim; returns the plan.
fn check_every_fix(objects: &[Object], opts: &FixOptions) -> Plan {
    let before = analyse(objects);
    let plan = plan(&before, objects, opts);
    for fix in &plan.fixes {
        let after_objects = applied(objects, fix);
        let after = analyse(&after_objects);
        match fix.effect {
            Effect::Closes => {
                for f in &fix.findings {
                    let left = still_there(&after, f);
                    assert!(
                        left.is_empty(),
                        "{} claims to close {} {} but it is still found: {:#?}",
                        fix.action,
                        f.rule,
                        f.resource,
                        left
                    );
                }
            }
            Effect::Narrows => {
                for f in &fix.findings {
                    for a in still_there(&after, f) {
                        let reach = a
                            .detail
                            .as_ref()
                            .and_then(|d| d["reach"].as_str())
                            .unwrap_or("");
                        assert!(
                            reach == "narrowed" || reach == "private",
                            "{}: reach {reach}",
                            f.rule
                        );
                        assert!(a.severity < jackstop_core::Severity::Critical);
                    }
                }
            }
            Effect::Stops => {
                let t = after_objects.iter().find(|o| same(o, &fix.target)).unwrap();
                assert!(
                    stopped(t),
                    "{} is not stopped by {:?}",
                    fix.target,
                    fix.documents
                );
            }
            Effect::Contains => {
                for p in jackstop_fixes::pool_ports() {
                    assert!(
                        !lets_out(&fix.documents[0], *p),
                        "pool port {p} leaves the cluster"
                    );
                }
                for p in [443, 80] {
                    assert!(
                        lets_out(&fix.documents[0], p),
                        "port {p} is needed by ML work"
                    );
                }
            }
        }
        // The file is well-formed YAML that reads back as the same documents.
        let text = fix.render("F");
        let back: Vec<Value> = text
            .split("\n---\n")
            .flat_map(|chunk| {
                let chunk = chunk.trim_start_matches("---\n");
                serde_saphyr::from_str::<Option<Value>>(chunk)
                    .unwrap_or_else(|e| panic!("{e}:\n{text}"))
            })
            .collect();
        assert_eq!(back, fix.documents, "{text}");
    }
    plan
}

#[test]
fn kubeflow_incident() {
    let objects = read(&repo().join("examples/kubeflow-incident"));
    let plan = check_every_fix(&objects, &opts());
    let names: Vec<String> = plan
        .fixes
        .iter()
        .enumerate()
        .map(|(i, f)| f.file_name(i + 1))
        .collect();
    assert_eq!(
        names,
        [
            "001-JS-MIN-001-kubeflow-user-example-com-tf-train-cpu-scale-to-zero.patch.yaml",
            "002-JS-MIN-001-kubeflow-user-team-b-tf-train-gpu-scale-to-zero.patch.yaml",
            "003-JS-MIN-001-kubeflow-user-example-com-analysis-stop-notebook.patch.yaml",
            "004-JS-MIN-001-kubeflow-user-team-b-train-pipeline-x7k2p-terminate.patch.yaml",
            "005-JS-EXP-001-istio-system-istio-ingressgateway-clusterip.patch.yaml",
            "006-JS-EXP-001-istio-system-istio-ingressgateway-require-oidc.yaml",
            "007-egress-kubeflow-user-example-com-egress-allowlist.yaml",
            "008-egress-kubeflow-user-team-b-egress-allowlist.yaml",
        ],
        "{names:#?}"
    );
    // One gateway patch for the three dashboards behind it.
    assert_eq!(plan.fixes[4].findings.len(), 3);
    assert_eq!(plan.fixes[5].findings.len(), 3);
    assert!(
        plan.fixes[5].needs_input,
        "placeholders without --oidc-issuer"
    );
    // The bursts are listed, with why they have no fix of their own.
    assert_eq!(plan.unfixed.len(), 4);
    assert!(plan.unfixed.iter().all(|u| u.finding.rule == "JS-BUR-001"));

    // All the closing fixes together leave no exposure.
    let mut all = objects.clone();
    for f in plan.fixes.iter().filter(|f| f.effect == Effect::Closes) {
        all = applied(&all, f);
    }
    assert!(analyse(&all)
        .iter()
        .all(|f| f.category != jackstop_core::Category::Exposure));
    // Once the policies are there, they are not proposed again.
    let mut with_policies = objects.clone();
    for f in plan.fixes.iter().filter(|f| f.effect == Effect::Contains) {
        with_policies = applied(&with_policies, f);
    }
    let again = jackstop_fixes::plan(&analyse(&with_policies), &with_policies, &opts());
    assert!(again.fixes.iter().all(|f| f.effect != Effect::Contains));
}

#[test]
fn gateway_with_a_provider_and_source_ranges() {
    let objects = read(&repo().join("examples/kubeflow-incident"));
    let opts = FixOptions {
        allow_cidrs: vec!["203.0.113.0/24".into(), "10.0.0.0/8".into()],
        oidc: Some(Oidc {
            issuer: "https://login.example.com".into(),
            jwks_uri: None,
            audiences: vec!["kubeflow".into()],
        }),
        network_policy_all_ml: true,
        ..opts()
    };
    opts.validate().unwrap();
    let plan = check_every_fix(&objects, &opts);
    let narrow = plan
        .fixes
        .iter()
        .find(|f| f.action == "source-ranges")
        .expect("narrowed");
    assert_eq!(narrow.effect, Effect::Narrows);
    assert!(plan.fixes.iter().all(|f| f.action != "clusterip"));
    let oidc = plan
        .fixes
        .iter()
        .find(|f| f.action == "require-oidc")
        .unwrap();
    assert!(!oidc.needs_input);
    let rule = &oidc.documents[0]["spec"]["jwtRules"][0];
    assert_eq!(rule["issuer"], "https://login.example.com");
    assert!(
        rule.get("jwksUri").is_none(),
        "Istio finds the keys from the issuer"
    );
    assert_eq!(rule["audiences"][0], "kubeflow");
}

#[test]
fn options_refused() {
    let bad = |cidr: &str| {
        FixOptions {
            allow_cidrs: vec![cidr.into()],
            ..opts()
        }
        .validate()
    };
    assert!(bad("0.0.0.0/0").is_err());
    assert!(bad("::/0").is_err());
    assert!(bad("10.0.0.300/8").is_err());
    assert!(bad("203.0.113.0/24").is_ok());
    let oidc = FixOptions {
        oidc: Some(Oidc {
            issuer: "http://insecure".into(),
            ..Oidc::default()
        }),
        ..opts()
    };
    assert!(oidc.validate().is_err());
    let signin_alone = FixOptions {
        ingress_auth_signin: Some("https://login.example.com".into()),
        ..opts()
    };
    assert!(signin_alone.validate().is_err());
    let not_a_url = FixOptions {
        ingress_auth_url: Some("oauth2-proxy/auth".into()),
        ..opts()
    };
    assert!(not_a_url.validate().is_err());
}

#[test]
fn miner_corpus() {
    let objects = read(&repo().join("../shared/corpus/miners"));
    let plan = check_every_fix(&objects, &opts());
    assert!(plan.fixes.iter().any(|f| f.target.kind == "DaemonSet"));
    // Files that are not objects have no patch, and say why.
    assert!(plan
        .unfixed
        .iter()
        .filter(|u| u.finding.resource.kind == "Document")
        .all(|u| u.reason.contains("not a Kubernetes object")));
}

#[test]
fn kuberay_corpus() {
    let objects = read(&repo().join("../shared/corpus/kuberay"));
    let plan = check_every_fix(&objects, &opts());
    assert!(plan.fixes.iter().any(|f| f.target.kind == "RayCluster"));
    // The ingress-nginx Ingress gets the auth annotations; the ALB one is left, with why.
    let ing = plan
        .fixes
        .iter()
        .find(|f| f.action == "ingress-auth")
        .expect("nginx Ingress");
    assert_eq!(ing.target.name, "raycluster-ingress-head-ingress");
    assert!(ing.needs_input);
    assert!(plan
        .unfixed
        .iter()
        .any(|u| u.finding.resource.kind == "Ingress" && u.reason.contains("ingress class alb")));
    let with_url = FixOptions {
        ingress_auth_url: Some("http://oauth2-proxy.auth.svc.cluster.local/oauth2/auth".into()),
        ..opts()
    };
    with_url.validate().unwrap();
    let plan = check_every_fix(&objects, &with_url);
    let ing = plan
        .fixes
        .iter()
        .find(|f| f.action == "ingress-auth")
        .unwrap();
    assert!(!ing.needs_input);
}

#[test]
fn benign_corpora_get_no_fix() {
    for c in [
        "argo-examples",
        "kfp",
        "kubeflow-platform",
        "notebooks-training",
    ] {
        let objects = read(&repo().join("../shared/corpus").join(c));
        let plan = plan(&analyse(&objects), &objects, &opts());
        assert!(plan.fixes.is_empty(), "{c}: {:#?}", plan.fixes);
    }
}

#[test]
fn every_pool_port_is_known() {
    let ports = jackstop_fixes::pool_ports();
    assert!(ports.contains(&3333) && ports.contains(&45700), "{ports:?}");
}

#[test]
fn merge_patch_semantics() {
    let mut v = serde_json::json!({"a": {"b": 1, "c": [1, 2]}, "d": 1});
    merge_patch(
        &mut v,
        &serde_json::json!({"a": {"b": null, "c": [3]}, "e": {"f": 1}}),
    );
    assert_eq!(
        v,
        serde_json::json!({"a": {"c": [3]}, "d": 1, "e": {"f": 1}})
    );
}

#[test]
fn an_allow_all_egress_policy_is_pointed_out() {
    let mut objects = read(&repo().join("examples/kubeflow-incident"));
    let open = serde_json::json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "allow-all-egress", "namespace": "kubeflow-user-team-b"},
        "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]}
    });
    objects.push(
        Object::from_value(
            open,
            Source {
                path: "t".into(),
                line: 1,
                template: None,
            },
            FieldLines::default(),
        )
        .unwrap(),
    );
    let plan = plan(&analyse(&objects), &objects, &opts());
    let warned: Vec<&str> = plan
        .fixes
        .iter()
        .filter(|f| f.notes.iter().any(|n| n.contains("allow-all-egress")))
        .map(|f| f.target.namespace.as_deref().unwrap())
        .collect();
    assert_eq!(warned, ["kubeflow-user-team-b"]);
}

#[test]
fn suspicious_workloads_are_stopped_only_when_asked() {
    let objects = read(&repo().join("examples/kubeflow-incident"));
    let d = objects
        .iter()
        .find(|o| o.kind == "Deployment" && o.name == "tf-train-cpu")
        .unwrap();
    let mut f = analyse(&objects)
        .into_iter()
        .find(|f| f.resource == d.resource())
        .unwrap();
    f.rule = "JS-SUS-001".into();
    f.category = jackstop_core::Category::Suspicious;
    f.severity = jackstop_core::Severity::High;
    let without = plan(std::slice::from_ref(&f), &objects, &opts());
    assert!(without.fixes.is_empty());
    assert!(without.unfixed[0].reason.contains("--stop-suspicious"));
    let asked = FixOptions {
        stop_suspicious: true,
        ..opts()
    };
    let with = plan(std::slice::from_ref(&f), &objects, &asked);
    assert_eq!(
        with.fixes.len(),
        1,
        "a stop, and no egress policy: no miner"
    );
    assert_eq!(with.fixes[0].action, "scale-to-zero");
    f.severity = jackstop_core::Severity::Medium;
    assert!(
        plan(&[f], &objects, &asked).fixes.is_empty(),
        "medium: not stopped"
    );
}
