//! The key property of fixes: applied to the objects they target, they do what they claim.
//! Each fix is applied alone (merge patch semantics, or the new objects added), the objects are
//! analysed again, and:
//! - `closes`: the findings it names are gone;
//! - `narrows`: they are still there, reached only from the allowed ranges;
//! - `stops`: the target is stopped in the way its controller understands (checked here
//!   independently of the fix code);
//! - `contains`: the policy lets no pool port of the catalogue out of the cluster;
//! - `prepares`: what it creates is required by another fix of the plan, and alone it closes
//!   none of its findings.
//!
//! A fix that `requires` objects another fix creates is applied after that fix (and checked
//! so); the other fix must come first in the plan.

use jackstop_core::{FieldLines, Finding, Object, ResourceRef, Source};
use jackstop_fixes::{merge_patch, plan, Effect, Fix, FixOptions, Method, Oidc, OidcClient, Plan};
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
        Method::JsonPatch => {
            assert_eq!(fix.documents.len(), 1);
            let o = out
                .iter_mut()
                .find(|o| same(o, &fix.target))
                .unwrap_or_else(|| panic!("target {} not among the objects", fix.target));
            let mut body = o.body.clone();
            jackstop_fixes::json_patch(&mut body, &fix.documents[0])
                .unwrap_or_else(|e| panic!("{} does not apply: {e}", fix.action));
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

/// The findings of `after` that are `f` again: the same rule on the same object, for the same
/// interface and workload. Not by title: a narrowed exposure's title names its new reach.
fn still_there<'a>(
    before: &[Finding],
    after: &'a [Finding],
    f: &jackstop_fixes::FindingRef,
) -> Vec<&'a Finding> {
    let key = |x: &Finding| {
        x.detail
            .as_ref()
            .map(|d| (d["interface"].clone(), d["workload"].clone()))
    };
    let was = before
        .iter()
        .find(|b| b.rule == f.rule && b.resource == f.resource && b.title == f.title)
        .unwrap_or_else(|| panic!("{} {} is not among the findings before", f.rule, f.resource));
    after
        .iter()
        .filter(|a| a.rule == f.rule && a.resource == f.resource && key(a) == key(was))
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
        "ScheduledSparkApplication" | "JobSet" => at("spec.suspend") == true,
        "InferenceService" => o.annotation("serving.kserve.io/stop") == Some("true"),
        "PipelineRun" => at("spec.status") == "Cancelled",
        "TaskRun" => at("spec.status") == "TaskRunCancelled",
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
/// The plan's fix of one action; the plan's unfixed findings when it has none.
fn the_fix<'a>(plan: &'a Plan, action: &str) -> &'a Fix {
    plan.fixes
        .iter()
        .find(|f| f.action == action)
        .unwrap_or_else(|| panic!("no {action} fix: {:#?}", plan.unfixed))
}

/// The objects after the fixes of the plan that create what `fix` requires; each such fix
/// must come before it in the plan (the order of the files, and of `--apply`).
fn with_required(objects: &[Object], plan: &Plan, fix: &Fix) -> Vec<Object> {
    let at = plan
        .fixes
        .iter()
        .position(|f| std::ptr::eq(f, fix))
        .expect("a fix of the plan");
    let mut out = objects.to_vec();
    for r in &fix.requires {
        let i = plan.creator_of(r).unwrap_or_else(|| {
            panic!(
                "{} requires {r}, which no fix of the plan creates",
                fix.action
            )
        });
        assert!(
            i < at,
            "{} requires {r}, created by a fix after it",
            fix.action
        );
        out = applied(&out, &plan.fixes[i]);
    }
    out
}

fn check_every_fix(objects: &[Object], opts: &FixOptions) -> Plan {
    let before = analyse(objects);
    let plan = plan(&before, objects, opts);
    for fix in &plan.fixes {
        let after_objects = applied(&with_required(objects, &plan, fix), fix);
        let after = analyse(&after_objects);
        match fix.effect {
            Effect::Closes => {
                for f in &fix.findings {
                    let left = still_there(&before, &after, f);
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
                    // The finding stays (its title names the new reach), narrowed.
                    let left = still_there(&before, &after, f);
                    assert!(
                        !left.is_empty(),
                        "{} claims to narrow {} {}, but it is gone: it closes",
                        fix.action,
                        f.rule,
                        f.resource
                    );
                    for a in left {
                        let reach = a
                            .detail
                            .as_ref()
                            .and_then(|d| d["reach"].as_str())
                            .unwrap_or("");
                        assert!(
                            reach == "narrowed" || reach == "private-network",
                            "{} {}: reach {reach} after {}",
                            f.rule,
                            f.resource,
                            fix.action
                        );
                        assert!(a.severity < jackstop_core::Severity::Critical);
                        assert!(a.severity <= f.severity);
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
            Effect::Prepares => {
                assert_eq!(fix.method, Method::Apply, "{}", fix.action);
                // Another fix names what it creates...
                for d in &fix.documents {
                    let s = |p: &str| d.pointer(p).and_then(Value::as_str).map(str::to_string);
                    let created = ResourceRef {
                        api_version: s("/apiVersion").unwrap(),
                        kind: s("/kind").unwrap(),
                        namespace: s("/metadata/namespace"),
                        name: s("/metadata/name").unwrap(),
                    };
                    assert!(
                        plan.fixes.iter().any(|g| g.requires.contains(&created)),
                        "{} prepares {created}, which no fix requires",
                        fix.action
                    );
                }
                // ...and alone it closes nothing.
                assert!(!fix.findings.is_empty());
                for f in &fix.findings {
                    assert!(
                        !still_there(&before, &after, f).is_empty(),
                        "{} claims to prepare, but alone it closes {} {}",
                        fix.action,
                        f.rule,
                        f.resource
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
            client: None,
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
    let oidc = the_fix(&plan, "require-oidc");
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
    let client = |id: &str, secret: &str| {
        FixOptions {
            oidc: Some(Oidc {
                issuer: "https://login.example.com".into(),
                client: Some(OidcClient {
                    id: id.into(),
                    secret: secret.into(),
                }),
                ..Oidc::default()
            }),
            ..opts()
        }
        .validate()
    };
    assert!(client("kubeflow", "kubeflow-oidc").is_ok());
    assert!(client(" ", "kubeflow-oidc").is_err());
    assert!(client("kubeflow", "Kubeflow_OIDC").is_err());
    assert!(client("kubeflow", "-oidc").is_err());
    assert!(client("kubeflow", "").is_err());
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
    // The ALB one gets the ALB's own OIDC, with the provider's endpoints to fill in.
    let alb = the_fix(&plan, "alb-oidc");
    assert!(alb.needs_input);
    assert_eq!(alb.effect, Effect::Closes);
    let annotations = &alb.documents[0]["metadata"]["annotations"];
    assert_eq!(annotations["alb.ingress.kubernetes.io/auth-type"], "oidc");
    let idp: Value = serde_json::from_str(
        annotations["alb.ingress.kubernetes.io/auth-idp-oidc"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    for k in [
        "issuer",
        "authorizationEndpoint",
        "tokenEndpoint",
        "userInfoEndpoint",
        "secretName",
    ] {
        assert!(idp[k].is_string(), "{k} in {idp}");
    }
    assert!(alb.notes[0].starts_with("TODO"));
    // The corpus's ALB listens on plain HTTP only, where the ALB does not authenticate: the
    // fix adds an HTTPS listener (its certificate a TODO) and redirects HTTP to it.
    assert_eq!(
        annotations["alb.ingress.kubernetes.io/listen-ports"],
        r#"[{"HTTP":80},{"HTTPS":443}]"#
    );
    assert_eq!(annotations["alb.ingress.kubernetes.io/ssl-redirect"], "443");
    assert!(annotations["alb.ingress.kubernetes.io/certificate-arn"]
        .as_str()
        .unwrap()
        .contains("TODO"));
    let with_url = FixOptions {
        ingress_auth_url: Some("http://oauth2-proxy.auth.svc.cluster.local/oauth2/auth".into()),
        ..opts()
    };
    with_url.validate().unwrap();
    let plan = check_every_fix(&objects, &with_url);
    let ing = the_fix(&plan, "ingress-auth");
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

/// The objects of a YAML stream.
fn parse(yaml: &str) -> Vec<Object> {
    let mut set = jackstop_manifests::reader::ManifestSet::default();
    jackstop_manifests::reader::parse_text(yaml, "t.yaml", &ReadOptions::default(), &mut set);
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    set.objects
}

/// MLflow behind an Envoy Gateway, by two routes (the UI and its API) to one Service.
const ENVOY_GATEWAY: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: eg}
spec: {controllerName: gateway.envoyproxy.io/gatewayclass-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: public, namespace: infra}
spec:
  gatewayClassName: eg
  listeners: [{name: https, port: 443, protocol: HTTPS, allowedRoutes: {namespaces: {from: All}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mlflow, namespace: mlops}
spec:
  parentRefs: [{name: public, namespace: infra}]
  hostnames: [ml.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /mlflow/}}]
    backendRefs: [{name: mlflow, port: 5000}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mlflow-api, namespace: mlops}
spec:
  parentRefs: [{name: public, namespace: infra}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /api/2.0/mlflow}}]
    backendRefs: [{name: mlflow, port: 5000}]
---
apiVersion: v1
kind: Service
metadata: {name: mlflow, namespace: mlops}
spec:
  selector: {app: mlflow}
  ports: [{port: 5000}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: mlflow, namespace: mlops}
spec:
  selector: {matchLabels: {app: mlflow}}
  template:
    metadata: {labels: {app: mlflow}}
    spec:
      containers:
      - name: mlflow
        image: ghcr.io/mlflow/mlflow:v2.12.1
        command: [mlflow, server, --host, 0.0.0.0, --port, "5000"]
        ports: [{containerPort: 5000}]
"#;

fn exposures(objects: &[Object]) -> Vec<(String, ResourceRef)> {
    analyse(objects)
        .into_iter()
        .filter(|f| f.category == jackstop_core::Category::Exposure)
        .map(|f| (f.rule, f.resource))
        .collect()
}

#[test]
fn envoy_gateway_routes_get_an_oidc_security_policy() {
    let objects = parse(ENVOY_GATEWAY);
    let before = exposures(&objects);
    assert_eq!(before.len(), 1, "{before:?}");
    assert_ne!(before[0].0, "JS-EXP-009", "unauthenticated before");
    let plan = check_every_fix(&objects, &opts());
    let fix = the_fix(&plan, "require-oidc");
    assert_eq!(fix.method, Method::Apply);
    assert_eq!(fix.effect, Effect::Closes);
    assert!(fix.needs_input, "the OIDC client is the user's to register");
    assert!(fix.notes[0].starts_with("TODO"));
    // One policy per route: both routes lead to the dashboard.
    let targets: Vec<&Value> = fix
        .documents
        .iter()
        .map(|d| &d["spec"]["targetRefs"][0])
        .collect();
    assert_eq!(targets.len(), 2, "{:#?}", fix.documents);
    for (t, name) in targets.iter().zip(["mlflow", "mlflow-api"]) {
        assert_eq!(t["group"], "gateway.networking.k8s.io");
        assert_eq!(t["kind"], "HTTPRoute");
        assert_eq!(t["name"], name);
    }
    let oidc = &fix.documents[0]["spec"]["oidc"];
    assert_eq!(fix.documents[0]["metadata"]["namespace"], "mlops");
    assert_eq!(
        oidc["redirectURL"],
        "https://ml.example.com/mlflow/oauth2/callback"
    );
    assert_eq!(oidc["clientSecret"]["name"], "jackstop-oidc-client");
    assert!(oidc["provider"]["issuer"]
        .as_str()
        .unwrap()
        .contains("TODO"));
    // The finding becomes the authenticated exposure.
    let after = exposures(&applied(&objects, fix));
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].0, "JS-EXP-009");
    // A policy on one of the two routes alone leaves the finding: both are needed.
    let mut one = fix.clone();
    one.documents.truncate(1);
    assert_eq!(exposures(&applied(&objects, &one)), before);

    // With a provider, its issuer; the client ID is still the user's.
    let with = FixOptions {
        oidc: Some(Oidc {
            issuer: "https://login.example.com".into(),
            jwks_uri: None,
            audiences: vec![],
            client: None,
        }),
        ..opts()
    };
    let plan = check_every_fix(&objects, &with);
    let fix = the_fix(&plan, "require-oidc");
    assert_eq!(
        fix.documents[0]["spec"]["oidc"]["provider"]["issuer"],
        "https://login.example.com"
    );
    assert!(fix.needs_input);

    // With the client too, nothing is left to fill in: the file can be applied as it is.
    let complete = FixOptions {
        oidc: Some(Oidc {
            issuer: "https://login.example.com".into(),
            jwks_uri: None,
            audiences: vec![],
            client: Some(OidcClient {
                id: "kubeflow".into(),
                secret: "kubeflow-oidc".into(),
            }),
        }),
        ..opts()
    };
    let plan = check_every_fix(&objects, &complete);
    let fix = the_fix(&plan, "require-oidc");
    for d in &fix.documents {
        assert_eq!(d["spec"]["oidc"]["clientID"], "kubeflow");
        assert_eq!(d["spec"]["oidc"]["clientSecret"]["name"], "kubeflow-oidc");
    }
    // A route under a path prefix with no host name still needs its host in the redirect
    // URL: a placeholder, and said so.
    let placeholders = |f: &Fix| f.documents.iter().any(|d| d.to_string().contains("TODO"));
    assert!(placeholders(fix) && fix.needs_input, "{:?}", fix.documents);
    assert!(fix.notes.iter().any(|n| n.contains("redirectURL")));
    // Given a host, nothing is left to fill in: the file can be applied as it is.
    let hosted = ENVOY_GATEWAY.replace(
        "kind: HTTPRoute\nmetadata: {name: mlflow-api, namespace: mlops}\nspec:\n",
        "kind: HTTPRoute\nmetadata: {name: mlflow-api, namespace: mlops}\nspec:\n  hostnames: [mlflow.example.com]\n",
    );
    assert_ne!(
        hosted, ENVOY_GATEWAY,
        "the fixture's route changed: update this test"
    );
    let objects = parse(&hosted);
    let plan = check_every_fix(&objects, &complete);
    let fix = the_fix(&plan, "require-oidc");
    assert!(
        !placeholders(fix) && !fix.needs_input,
        "{:?}",
        fix.documents
    );
}

#[test]
fn envoy_gateway_grpc_routes_get_jwt() {
    let yaml = ENVOY_GATEWAY
        .replace(
            "kind: HTTPRoute\nmetadata: {name: mlflow-api",
            "kind: GRPCRoute\nmetadata: {name: mlflow-api",
        )
        .replace(
            "  - matches: [{path: {type: PathPrefix, value: /api/2.0/mlflow}}]\n",
            "  - matches: [{method: {service: mlflow.Api}}]\n",
        );
    let objects = parse(&yaml);
    let provider = FixOptions {
        oidc: Some(Oidc {
            issuer: "https://login.example.com".into(),
            jwks_uri: Some("https://login.example.com/keys".into()),
            audiences: vec!["mlflow".into()],
            client: None,
        }),
        ..opts()
    };
    let plan = check_every_fix(&objects, &provider);
    let fix = the_fix(&plan, "require-oidc");
    let grpc = fix
        .documents
        .iter()
        .find(|d| d["spec"]["targetRefs"][0]["kind"] == "GRPCRoute")
        .expect("a policy for the GRPCRoute");
    let jwt = &grpc["spec"]["jwt"]["providers"][0];
    assert_eq!(jwt["issuer"], "https://login.example.com");
    assert_eq!(jwt["remoteJWKS"]["uri"], "https://login.example.com/keys");
    assert_eq!(jwt["audiences"][0], "mlflow");
    assert!(grpc["spec"].get("oidc").is_none());

    // The GRPCRoute alone, with every input given: nothing to fill in.
    let grpc_only: Vec<&str> = yaml
        .split("\n---\n")
        .filter(|d| !d.contains("name: mlflow, namespace: mlops}\nspec:\n  parentRefs"))
        .collect();
    assert_eq!(grpc_only.len(), 5);
    let grpc_only = grpc_only.join("\n---\n");
    let objects = parse(&grpc_only);
    let plan = check_every_fix(&objects, &provider);
    let fix = the_fix(&plan, "require-jwt");
    assert!(!fix.needs_input, "{:#?}", fix.notes);
    // Without the keys' address, a placeholder.
    let no_keys = FixOptions {
        oidc: Some(Oidc {
            issuer: "https://login.example.com".into(),
            ..Oidc::default()
        }),
        ..opts()
    };
    let plan = check_every_fix(&objects, &no_keys);
    let fix = the_fix(&plan, "require-jwt");
    assert!(fix.needs_input);
    assert!(fix.notes[0].contains("--oidc-jwks-uri"));
}

#[test]
fn gateways_that_are_not_envoy_gateway_are_refused() {
    let istio = ENVOY_GATEWAY.replace(
        "gateway.envoyproxy.io/gatewayclass-controller",
        "istio.io/gateway-controller",
    );
    let objects = parse(&istio);
    let plan = check_every_fix(&objects, &opts());
    assert!(plan.fixes.is_empty(), "{:#?}", plan.fixes);
    assert!(
        plan.unfixed[0]
            .reason
            .contains("run by istio.io/gateway-controller, not Envoy Gateway"),
        "{:#?}",
        plan.unfixed
    );
    // No GatewayClass read: by its name.
    let no_class = |class: &str| {
        let yaml = ENVOY_GATEWAY
            .split("\n---\n")
            .skip(1)
            .collect::<Vec<_>>()
            .join("\n---\n")
            .replace(
                "gatewayClassName: eg",
                &format!("gatewayClassName: {class}"),
            );
        let objects = parse(&yaml);
        check_every_fix(&objects, &opts())
    };
    let nginx = no_class("nginx");
    assert!(nginx.fixes.is_empty());
    assert!(nginx.unfixed[0]
        .reason
        .contains("kubectl get gatewayclass nginx"));
    let envoy = no_class("envoy-public");
    let fix = &envoy.fixes[0];
    assert!(fix
        .notes
        .iter()
        .any(|n| n.contains("kubectl get gatewayclass envoy-public")));
}

#[test]
fn a_route_with_a_security_policy_already_is_refused() {
    let yaml = format!(
        "{ENVOY_GATEWAY}---\n{}",
        "apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: SecurityPolicy\nmetadata: {name: cors, namespace: mlops}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: mlflow-api}]\n  cors: {allowOrigins: ['https://ml.example.com']}\n"
    );
    let objects = parse(&yaml);
    let plan = check_every_fix(&objects, &opts());
    assert!(plan.fixes.is_empty(), "{:#?}", plan.fixes);
    assert!(
        plan.unfixed[0]
            .reason
            .contains("SecurityPolicy mlops/cors already targets HTTPRoute mlops/mlflow-api"),
        "{:#?}",
        plan.unfixed
    );
}

/// The objects after the JSON patch of an `kubectl patch --type json -p '...'` command.
fn after_command(objects: &[Object], reason: &str) -> Vec<Object> {
    let cmd = reason
        .split('`')
        .find(|c| c.contains("--type json"))
        .unwrap_or_else(|| panic!("no JSON patch command in: {reason}"));
    let words: Vec<&str> = cmd.split_whitespace().collect();
    assert_eq!(&words[..2], ["kubectl", "-n"]);
    let (ns, kind_group, name) = (words[2], words[4], words[5]);
    let ops: Value = serde_json::from_str(cmd.split('\'').nth(1).unwrap()).unwrap();
    let mut out = objects.to_vec();
    let o = out
        .iter_mut()
        .find(|o| {
            jackstop_fixes::kubectl_resource(&o.resource()) == kind_group
                && o.name == name
                && o.effective_namespace() == ns
        })
        .unwrap_or_else(|| panic!("{kind_group} {ns}/{name}"));
    let mut body = o.body.clone();
    jackstop_fixes::json_patch(&mut body, &ops).unwrap_or_else(|e| panic!("{cmd}: {e}"));
    *o = Object::from_value(body, o.source.clone(), FieldLines::default()).unwrap();
    out
}

const HOST_NETWORK: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: lab, namespace: ml}
spec:
  selector: {matchLabels: {app: lab}}
  template:
    metadata: {labels: {app: lab}}
    spec:
      hostNetwork: true
      containers:
      - name: lab
        image: quay.io/jupyter/base-notebook
        args: [start-notebook.py, "--IdentityProvider.token=''"]
        ports: [{containerPort: 8888}]
"#;

#[test]
fn host_network_is_turned_off_by_a_merge_patch() {
    let objects = parse(HOST_NETWORK);
    assert_eq!(exposures(&objects).len(), 1);
    let plan = check_every_fix(&objects, &opts());
    assert_eq!(plan.fixes.len(), 1, "{:#?}", plan.unfixed);
    let fix = &plan.fixes[0];
    assert_eq!(fix.action, "no-host-network");
    assert_eq!(
        fix.documents[0],
        serde_json::json!({"spec": {"template": {"spec": {"hostNetwork": false}}}})
    );
    assert!(exposures(&applied(&objects, fix)).is_empty());
}

#[test]
fn host_ports_are_removed_by_a_json_patch() {
    // hostNetwork with a hostPort too (what the API server defaults on hostNetwork pods).
    let both = HOST_NETWORK.replace(
        "ports: [{containerPort: 8888}]",
        "ports: [{name: http, containerPort: 8888, hostPort: 8888}]",
    );
    // A DaemonSet with a hostPort only, on its second port.
    let host_port = HOST_NETWORK
        .replace("kind: Deployment", "kind: DaemonSet")
        .replace("      hostNetwork: true\n", "")
        .replace(
            "ports: [{containerPort: 8888}]",
            "ports: [{containerPort: 9000}, {containerPort: 8888, hostPort: 8888}]",
        );
    for (yaml, action, ops) in [
        (
            both,
            "no-host-network",
            serde_json::json!([
                {"op": "test", "path": "/spec/template/spec/hostNetwork", "value": true},
                {"op": "replace", "path": "/spec/template/spec/hostNetwork", "value": false},
                {"op": "test", "path": "/spec/template/spec/containers/0/ports/0/hostPort", "value": 8888},
                {"op": "remove", "path": "/spec/template/spec/containers/0/ports/0/hostPort"},
            ]),
        ),
        (
            host_port.clone(),
            "no-host-port",
            serde_json::json!([
                {"op": "test", "path": "/spec/template/spec/containers/0/ports/1/hostPort", "value": 8888},
                {"op": "remove", "path": "/spec/template/spec/containers/0/ports/1/hostPort"},
            ]),
        ),
    ] {
        let objects = parse(&yaml);
        assert_eq!(exposures(&objects).len(), 1);
        // check_every_fix applies it and analyses again: the finding must be gone.
        let plan = check_every_fix(&objects, &opts());
        assert_eq!(plan.fixes.len(), 1, "{:#?}", plan.unfixed);
        let fix = &plan.fixes[0];
        assert_eq!((fix.action, fix.method), (action, Method::JsonPatch));
        assert_eq!(fix.documents, [ops]);
        // The other container port is kept as it was.
        let after = applied(&objects, fix);
        assert!(exposures(&after).is_empty());
        // The test of the scanned value makes the patch fail on an object that moved on.
        let mut moved = objects[0].body.clone();
        let p = moved
            .pointer_mut("/spec/template/spec/containers/0/ports")
            .and_then(Value::as_array_mut)
            .unwrap();
        let last = p.last_mut().unwrap();
        last["hostPort"] = serde_json::json!(9999);
        let before = moved.clone();
        assert!(jackstop_fixes::json_patch(&mut moved, &fix.documents[0]).is_err());
        assert_eq!(moved, before, "a failed patch changes nothing");
    }
    // A ReplicaSet's controller does not replace running pods: refused, with the command
    // and what to do after it; the command closes the finding.
    let rs = host_port.replace("kind: DaemonSet", "kind: ReplicaSet");
    let objects = parse(&rs);
    let plan = check_every_fix(&objects, &opts());
    assert!(plan.fixes.is_empty(), "{:#?}", plan.fixes);
    let reason = &plan.unfixed[0].reason;
    assert!(reason.contains("then delete its pods"), "{reason}");
    assert!(
        reason.contains(r#"kubectl -n ml patch replicaset.apps lab --type json -p '[{"op":"test","path":"/spec/template/spec/containers/0/ports/1/hostPort","value":8888},{"op":"remove","path":"/spec/template/spec/containers/0/ports/1/hostPort"}]'"#),
        "{reason}"
    );
    assert!(exposures(&after_command(&objects, reason)).is_empty());
    // A bare Pod cannot be changed: deleted and created again.
    let pod = r#"
apiVersion: v1
kind: Pod
metadata: {name: lab, namespace: ml, labels: {app: lab}}
spec:
  containers:
  - name: lab
    image: quay.io/jupyter/base-notebook
    args: [start-notebook.py, "--IdentityProvider.token=''"]
    ports: [{containerPort: 8888, hostPort: 8888}]
"#;
    let objects = parse(pod);
    let plan = check_every_fix(&objects, &opts());
    assert!(plan.fixes.is_empty());
    assert!(
        plan.unfixed[0]
            .reason
            .contains("`kubectl -n ml delete pod lab`"),
        "{:#?}",
        plan.unfixed
    );
}

/// Miners in the kinds of KServe, the Spark operator, Tekton, JobSet and KubeRay.
const MINER_KINDS: &str = r#"
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: isvc, namespace: team}
spec:
  predictor:
    containers:
    - name: kserve-container
      image: registry.example.com/model:1.0
      args: ["--", "nanominer", "-c", "config.ini", "--coin", "monero"]
---
apiVersion: sparkoperator.k8s.io/v1beta2
kind: ScheduledSparkApplication
metadata: {name: nightly, namespace: team}
spec:
  schedule: "@daily"
  template:
    type: Python
    image: registry.example.com/spark:3.5
    mainApplicationFile: local:///opt/app/main.py
    arguments: ["--pool", "stratum+tcp://pool.example.invalid:3333", "--donate-level", "1"]
    driver: {cores: 1}
    executor: {instances: 2}
---
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: pr, namespace: ci}
spec:
  pipelineSpec:
    tasks:
    - name: t
      taskSpec:
        steps: [{name: s, image: alpine, script: "xmrig -o pool.example.invalid:3333 --donate-level 1"}]
---
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: tr, namespace: ci}
spec:
  taskSpec:
    steps: [{name: s, image: alpine, script: "xmrig -o pool.example.invalid:3333 --donate-level 1"}]
---
apiVersion: jobset.x-k8s.io/v1alpha2
kind: JobSet
metadata: {name: js, namespace: team}
spec:
  replicatedJobs:
  - name: w
    template:
      spec:
        template:
          spec:
            containers: [{name: w, image: alpine, command: [sh, -c, "xmrig -o pool.example.invalid:3333 --donate-level 1"]}]
"#;

#[test]
fn more_kinds_of_miner_are_stopped() {
    let objects = parse(MINER_KINDS);
    let plan = check_every_fix(&objects, &opts());
    let mut stops: Vec<(String, &str)> = plan
        .fixes
        .iter()
        .filter(|f| f.effect == Effect::Stops)
        .map(|f| (f.target.kind.clone(), f.action))
        .collect();
    stops.sort();
    assert_eq!(
        stops,
        [
            ("InferenceService".to_string(), "stop-inferenceservice"),
            ("JobSet".into(), "suspend"),
            ("PipelineRun".into(), "cancel"),
            ("ScheduledSparkApplication".into(), "suspend"),
            ("TaskRun".into(), "cancel"),
        ],
        "{:#?}",
        plan.unfixed
    );
    let isvc = plan
        .fixes
        .iter()
        .find(|f| f.target.kind == "InferenceService")
        .unwrap();
    assert!(isvc.notes.iter().any(|n| n.contains("KServe 0.14")));
}

#[test]
fn kinds_that_cannot_be_stopped_say_how_to_delete_them() {
    let yaml = r#"
apiVersion: sparkoperator.k8s.io/v1beta2
kind: SparkApplication
metadata: {name: spark, namespace: team}
spec:
  type: Python
  image: registry.example.com/spark:3.5
  mainApplicationFile: local:///opt/app/main.py
  arguments: ["--pool", "stratum+tcp://pool.example.invalid:3333", "--donate-level", "1"]
  driver: {cores: 1}
  executor: {instances: 2}
---
apiVersion: ray.io/v1
kind: RayService
metadata: {name: serve, namespace: team}
spec:
  rayClusterConfig:
    headGroupSpec:
      rayStartParams: {}
      template:
        spec:
          containers: [{name: ray-head, image: "rayproject/ray:2.9.0", command: [sh, -c, "xmrig -o pool.example.invalid:3333 --donate-level 1"]}]
---
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: t, namespace: ci}
spec:
  steps: [{name: s, image: alpine, script: "xmrig -o pool.example.invalid:3333 --donate-level 1"}]
---
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata: {name: llm, namespace: team}
spec:
  template:
    containers: [{name: main, image: alpine, command: [sh, -c, "xmrig -o pool.example.invalid:3333 --donate-level 1"]}]
"#;
    let objects = parse(yaml);
    let plan = check_every_fix(&objects, &opts());
    assert!(
        plan.fixes.iter().all(|f| f.effect != Effect::Stops),
        "{:#?}",
        plan.fixes
    );
    let reason = |kind: &str| {
        plan.unfixed
            .iter()
            .find(|u| u.finding.resource.kind == kind && u.finding.rule.starts_with("JS-MIN"))
            .unwrap_or_else(|| panic!("{kind}: {:#?}", plan.unfixed))
            .reason
            .clone()
    };
    let spark = reason("SparkApplication");
    assert!(spark.contains("`kubectl delete sparkapplication.sparkoperator.k8s.io spark -n team`"));
    assert!(spark.contains("`kubectl logs -n team spark-driver`"));
    assert!(spark.contains("-o yaml"));
    let ray = reason("RayService");
    assert!(ray.contains("`kubectl delete rayservice.ray.io serve -n team`"));
    assert!(reason("Task").contains("`kubectl delete task.tekton.dev t -n ci`"));
    // A kind next to the ones handled (same group as InferenceService): refused, not guessed.
    assert!(reason("LLMInferenceService").contains("knows no way to stop a LLMInferenceService"));
}

/// JupyterLab without a token behind Traefik: two Ingresses (one that names a Middleware
/// already) and an IngressRoute whose routes reach it with no middleware, with a stripPrefix,
/// with a basicAuth of its own, and a route to something else.
const TRAEFIK: &str = r#"
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
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: team-login, namespace: ml}
spec:
  basicAuth: {secret: team-users}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: lab, namespace: ml}
spec:
  ingressClassName: traefik
  rules: [{http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: lab, port: {number: 80}}}}]}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: lab-prefixed
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
  - match: Host(`lab.example.com`) && PathPrefix(`/team`)
    kind: Rule
    middlewares: [{name: team-login}]
    services: [{name: lab, port: 80}]
  - match: Host(`www.example.com`)
    kind: Rule
    services: [{name: www, port: 80}]
"#;

fn the_fix_of<'a>(plan: &'a Plan, action: &str, kind: &str, name: &str) -> &'a Fix {
    plan.fixes
        .iter()
        .find(|f| f.action == action && f.target.kind == kind && f.target.name == name)
        .unwrap_or_else(|| panic!("no {action} of {kind} {name}: {:#?}", plan.fixes))
}

#[test]
fn traefik_gets_a_forward_auth_middleware_and_the_reference_to_it() {
    let objects = parse(TRAEFIK);
    let before = exposures(&objects);
    assert_eq!(before.len(), 3, "{before:?}");
    assert!(before.iter().all(|(rule, _)| rule != "JS-EXP-009"));
    let opts = FixOptions {
        ingress_auth_url: Some("http://oauth2-proxy.auth.svc.cluster.local/oauth2/auth".into()),
        ..opts()
    };
    // Each fix, after what it requires, does what it claims.
    let plan = check_every_fix(&objects, &opts);
    assert!(plan.unfixed.is_empty(), "{:#?}", plan.unfixed);
    let actions: Vec<(&str, &str, &str)> = plan
        .fixes
        .iter()
        .map(|f| (f.action, f.target.kind.as_str(), f.target.name.as_str()))
        .collect();
    assert_eq!(actions.len(), 4, "{actions:#?}");
    // One Middleware for the namespace, first, for all three findings.
    let mw = &plan.fixes[0];
    assert_eq!(
        (mw.action, mw.method, mw.effect),
        ("traefik-forward-auth", Method::Apply, Effect::Prepares)
    );
    assert_eq!(mw.findings.len(), 3);
    assert!(!mw.needs_input);
    assert_eq!(
        mw.documents,
        [serde_json::json!({
            "apiVersion": "traefik.io/v1alpha1",
            "kind": "Middleware",
            "metadata": {
                "name": "jackstop-forward-auth",
                "namespace": "ml",
                "labels": {"app.kubernetes.io/managed-by": "jackstop"},
            },
            "spec": {"forwardAuth": {
                "address": "http://oauth2-proxy.auth.svc.cluster.local/oauth2/auth",
                "trustForwardHeader": true,
                "authResponseHeaders": ["X-Auth-Request-User", "X-Auth-Request-Email"],
            }}
        })]
    );
    for f in &plan.fixes[1..] {
        assert_eq!((f.action, f.effect), ("traefik-auth", Effect::Closes));
        assert_eq!(f.requires, std::slice::from_ref(&mw.target));
        assert!(
            f.render("F").contains(
                "# Requires: apply the file that creates Middleware ml/jackstop-forward-auth first"
            ),
            "{}",
            f.render("F")
        );
    }
    // The Ingress: the annotation, jackstop's first.
    let ing = the_fix_of(&plan, "traefik-auth", "Ingress", "lab");
    assert_eq!(ing.method, Method::MergePatch);
    assert_eq!(
        ing.documents,
        [serde_json::json!({"metadata": {"annotations": {
            "traefik.ingress.kubernetes.io/router.middlewares": "ml-jackstop-forward-auth@kubernetescrd"
        }}})]
    );
    // The Ingress that names a Middleware already: it stays, after jackstop's.
    let prefixed = the_fix_of(&plan, "traefik-auth", "Ingress", "lab-prefixed");
    assert_eq!(
        prefixed.documents,
        [serde_json::json!({"metadata": {"annotations": {
            "traefik.ingress.kubernetes.io/router.middlewares": "ml-jackstop-forward-auth@kubernetescrd,ml-strip@kubernetescrd"
        }}})]
    );
    // The IngressRoute: the routes to the interface that nothing authenticates (a list of
    // its own for the first, first in the second's), each tested as scanned; not the route
    // behind basicAuth, nor the route to something else.
    let ir = the_fix_of(&plan, "traefik-auth", "IngressRoute", "lab");
    assert_eq!(ir.method, Method::JsonPatch);
    let route = |i: usize| {
        objects
            .iter()
            .find(|o| o.kind == "IngressRoute")
            .unwrap()
            .body["spec"]["routes"][i]
            .clone()
    };
    assert_eq!(
        ir.documents,
        [serde_json::json!([
            {"op": "test", "path": "/spec/routes/0", "value": route(0)},
            {"op": "add", "path": "/spec/routes/0/middlewares", "value": [{"name": "jackstop-forward-auth"}]},
            {"op": "test", "path": "/spec/routes/1", "value": route(1)},
            {"op": "add", "path": "/spec/routes/1/middlewares/0", "value": {"name": "jackstop-forward-auth"}},
        ])]
    );
    // Without the Middleware, the reference closes nothing: it is required, not decoration.
    let alone = applied(&objects, ir);
    assert!(exposures(&alone)
        .iter()
        .any(|(rule, r)| r.kind == "IngressRoute" && rule != "JS-EXP-009"));
    // All of them, in the plan's order: every way in is behind authentication.
    let mut all = objects.clone();
    for f in &plan.fixes {
        all = applied(&all, f);
    }
    let after = exposures(&all);
    assert_eq!(after.len(), 3, "{after:?}");
    assert!(
        after.iter().all(|(rule, _)| rule == "JS-EXP-009"),
        "{after:?}"
    );
    // The routes as the patch leaves them.
    let patched = all.iter().find(|o| o.kind == "IngressRoute").unwrap();
    assert_eq!(
        patched.body["spec"]["routes"][1]["middlewares"],
        serde_json::json!([{"name": "jackstop-forward-auth"}, {"name": "strip"}])
    );
    assert!(patched.body["spec"]["routes"][3]
        .get("middlewares")
        .is_none());
    // An IngressRoute that moved on since the scan: the patch fails and changes nothing.
    let mut moved = objects
        .iter()
        .find(|o| o.kind == "IngressRoute")
        .unwrap()
        .body
        .clone();
    moved["spec"]["routes"][0]["middlewares"] = serde_json::json!([{"name": "strip"}]);
    let was = moved.clone();
    assert!(jackstop_fixes::json_patch(&mut moved, &ir.documents[0]).is_err());
    assert_eq!(moved, was);
    // Applied twice (the user ran the files again): the JSON patch fails its test instead of
    // adding a second entry.
    let mut again = patched.body.clone();
    assert!(jackstop_fixes::json_patch(&mut again, &ir.documents[0]).is_err());
}

#[test]
fn traefik_without_an_auth_url_has_a_placeholder() {
    let objects = parse(TRAEFIK);
    let plan = check_every_fix(&objects, &opts());
    let mw = &plan.fixes[0];
    assert!(mw.needs_input);
    assert_eq!(
        mw.documents[0]["spec"]["forwardAuth"]["address"],
        "http://oauth2-proxy.TODO-namespace.svc.cluster.local/oauth2/auth"
    );
    assert!(
        mw.notes[0].starts_with("TODO: this is oauth2-proxy's pattern"),
        "{:?}",
        mw.notes
    );
    assert!(plan.fixes[1..].iter().all(|f| !f.needs_input));
    // ingress-nginx's variables mean nothing to Traefik: written, but as a TODO.
    let nginx_style = FixOptions {
        ingress_auth_url: Some("https://$host/oauth2/auth".into()),
        ..opts()
    };
    nginx_style.validate().unwrap();
    let plan = check_every_fix(&objects, &nginx_style);
    assert!(plan.fixes[0].needs_input);
    assert!(
        plan.fixes[0].notes[0].contains("Traefik does not"),
        "{:?}",
        plan.fixes[0].notes
    );
}

#[test]
fn traefik_edge_cases() {
    let base = TRAEFIK
        .split("---\napiVersion: networking.k8s.io/v1\nkind: Ingress")
        .next()
        .unwrap();
    // An Ingress that names jackstop's Middleware, which was not read: the Middleware alone
    // closes. Of no class, the annotation says Traefik serves it.
    let named = format!(
        "{base}---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: lab\n  namespace: ml\n  annotations: {{traefik.ingress.kubernetes.io/router.middlewares: 'ml-jackstop-forward-auth@kubernetescrd'}}\nspec:\n  rules: [{{http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: lab, port: {{number: 80}}}}}}}}]}}}}]\n"
    );
    let objects = parse(&named);
    assert_eq!(exposures(&objects).len(), 1);
    let plan = check_every_fix(&objects, &opts());
    assert_eq!(plan.fixes.len(), 1, "{:#?}", plan.fixes);
    assert_eq!(
        (plan.fixes[0].action, plan.fixes[0].effect),
        ("traefik-forward-auth", Effect::Closes)
    );
    // An Ingress of no class without Traefik's annotation: ingress-nginx's fix, as before.
    let plain = named.replace(
        "  annotations: {traefik.ingress.kubernetes.io/router.middlewares: 'ml-jackstop-forward-auth@kubernetescrd'}\n",
        "",
    );
    let plan = check_every_fix(&parse(&plain), &opts());
    assert_eq!(plan.fixes[0].action, "ingress-auth");
    // ... unless the cluster's default IngressClass is Traefik's (k3s): then Traefik's fix.
    let default = |controller: &str| {
        format!(
            "{plain}---\napiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: default\n  annotations: {{ingressclass.kubernetes.io/is-default-class: 'true'}}\nspec: {{controller: {controller}}}\n"
        )
    };
    let plan = check_every_fix(&parse(&default("traefik.io/ingress-controller")), &opts());
    let actions: Vec<&str> = plan.fixes.iter().map(|f| f.action).collect();
    assert_eq!(
        actions,
        ["traefik-forward-auth", "traefik-auth"],
        "{:#?}",
        plan.unfixed
    );
    // A controller jackstop writes no authentication for: refused, naming it.
    let plan = check_every_fix(
        &parse(&default("haproxy.org/ingress-controller/haproxy")),
        &opts(),
    );
    assert!(plan.fixes.is_empty(), "{:#?}", plan.fixes);
    assert!(
        plan.unfixed[0]
            .reason
            .contains("served by the controller haproxy.org/ingress-controller/haproxy"),
        "{:#?}",
        plan.unfixed
    );
    // Traefik before 2.10: an IngressRoute of traefik.containo.us gets a Middleware of it.
    let old = format!(
        "{}---\napiVersion: traefik.containo.us/v1alpha1\nkind: IngressRoute\nmetadata: {{name: old, namespace: ml}}\nspec:\n  routes: [{{match: Host(`old.example.com`), kind: Rule, services: [{{name: lab, port: 80}}]}}]\n",
        base.split("---\napiVersion: traefik.io/v1alpha1\nkind: Middleware").next().unwrap()
    );
    let plan = check_every_fix(&parse(&old), &opts());
    assert_eq!(plan.fixes.len(), 2, "{:#?}", plan.unfixed);
    assert_eq!(
        plan.fixes[0].target.api_version,
        "traefik.containo.us/v1alpha1"
    );
    assert_eq!(
        plan.fixes[1].requires,
        std::slice::from_ref(&plan.fixes[0].target)
    );
    // A route whose middlewares is not a list: refused, not guessed.
    let broken = old.replace(
        "kind: Rule, services",
        "kind: Rule, middlewares: strip, services",
    );
    let plan = jackstop_fixes::plan(&analyse(&parse(&broken)), &parse(&broken), &opts());
    assert!(plan.fixes.is_empty(), "{:#?}", plan.fixes);
    assert!(
        plan.unfixed[0].reason.contains("is not a list"),
        "{:#?}",
        plan.unfixed
    );
}

/// MLflow published by an OpenShift Route, with no login in front.
const OPENSHIFT_ROUTE: &str = r#"
apiVersion: route.openshift.io/v1
kind: Route
metadata: {name: mlflow, namespace: mlops}
spec:
  host: mlflow.apps.example.com
  to: {kind: Service, name: mlflow}
  port: {targetPort: 5000}
---
apiVersion: v1
kind: Service
metadata: {name: mlflow, namespace: mlops}
spec:
  selector: {app: mlflow}
  ports: [{port: 5000}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: mlflow, namespace: mlops}
spec:
  selector: {matchLabels: {app: mlflow}}
  template:
    metadata: {labels: {app: mlflow}}
    spec:
      containers:
      - name: mlflow
        image: ghcr.io/mlflow/mlflow:v2.12.1
        command: [mlflow, server, --host, 0.0.0.0, --port, "5000"]
        ports: [{containerPort: 5000}]
"#;

fn reach_of(f: &Finding) -> &str {
    f.detail.as_ref().unwrap()["reach"].as_str().unwrap()
}

#[test]
fn openshift_routes_are_narrowed_by_the_router_allow_list() {
    let objects = parse(OPENSHIFT_ROUTE);
    let before = analyse(&objects);
    assert_eq!(before.len(), 1, "{before:#?}");
    assert_eq!(reach_of(&before[0]), "internet");

    // Without --allow-cidr: refused, with the command to run and the other ways.
    let plan = check_every_fix(&objects, &opts());
    assert!(plan.fixes.is_empty(), "{:#?}", plan.fixes);
    let reason = &plan.unfixed[0].reason;
    for part in [
        "`oc -n mlops annotate route mlflow --overwrite haproxy.router.openshift.io/ip_allowlist='TODO-CIDR' haproxy.router.openshift.io/ip_whitelist='TODO-CIDR'`",
        "--allow-cidr",
        "oauth-proxy sidecar",
        "`oc -n mlops delete route mlflow`",
    ] {
        assert!(reason.contains(part), "{part:?} missing from {reason}");
    }

    // With --allow-cidr: both annotation names, one list; the finding stays, narrowed.
    let public = FixOptions {
        allow_cidrs: vec!["203.0.113.0/24".into(), " 198.51.100.7/32".into()],
        ..opts()
    };
    public.validate().unwrap();
    let plan = check_every_fix(&objects, &public);
    let fix = the_fix(&plan, "route-allowlist");
    assert_eq!(fix.effect, Effect::Narrows);
    assert_eq!(fix.method, Method::MergePatch);
    assert!(!fix.needs_input);
    let annotations = &fix.documents[0]["metadata"]["annotations"];
    for key in [
        "haproxy.router.openshift.io/ip_allowlist",
        "haproxy.router.openshift.io/ip_whitelist",
    ] {
        assert_eq!(annotations[key], "203.0.113.0/24 198.51.100.7/32", "{key}");
    }
    assert!(fix
        .notes
        .iter()
        .any(|n| n.contains("openshift/router#564") && n.contains("older routers")));
    assert_eq!(
        fix.file_name(1),
        "001-JS-EXP-007-mlops-mlflow-route-allowlist.patch.yaml"
    );
    assert!(fix
        .command("F")
        .contains("patch route.route.openshift.io mlflow -n mlops --type merge"));
    let after = analyse(&applied(&objects, fix));
    assert_eq!(after.len(), 1, "{after:#?}");
    assert_eq!(reach_of(&after[0]), "narrowed");
    assert!(
        after[0].title.contains("203.0.113.0/24, 198.51.100.7/32"),
        "{}",
        after[0].title
    );

    // Private ranges: the private network only.
    let private = FixOptions {
        allow_cidrs: vec!["10.0.0.0/8".into()],
        ..opts()
    };
    let plan = check_every_fix(&objects, &private);
    let fix = the_fix(&plan, "route-allowlist");
    let narrowed = applied(&objects, fix);
    let after = analyse(&narrowed);
    assert_eq!(reach_of(&after[0]), "private-network");
    assert!(after[0].severity < before[0].severity);
    // A Route limited to private addresses already is not widened by another list.
    let plan = check_every_fix(&narrowed, &public);
    assert!(plan.fixes.is_empty(), "{:#?}", plan.fixes);
    assert!(
        plan.unfixed[0]
            .reason
            .contains("limited to private addresses already"),
        "{:#?}",
        plan.unfixed
    );
    // A list the router ignores (commas) is replaced, and the file says what it replaces.
    let ignored = OPENSHIFT_ROUTE.replace(
        "metadata: {name: mlflow, namespace: mlops}\nspec:\n  host",
        "metadata:\n  name: mlflow\n  namespace: mlops\n  annotations: {haproxy.router.openshift.io/ip_whitelist: '10.0.0.0/8,192.168.0.0/16'}\nspec:\n  host",
    );
    assert_ne!(ignored, OPENSHIFT_ROUTE);
    let objects = parse(&ignored);
    assert_eq!(reach_of(&analyse(&objects)[0]), "internet");
    let plan = check_every_fix(&objects, &public);
    let fix = the_fix(&plan, "route-allowlist");
    assert!(
        fix.changes
            .contains("replaces haproxy.router.openshift.io/ip_whitelist"),
        "{}",
        fix.changes
    );
}

/// Knative Serving's Route is no OpenShift Route: no way in, so nothing to fix.
#[test]
fn a_knative_route_gets_no_router_allow_list() {
    let knative = OPENSHIFT_ROUTE.replace(
        "apiVersion: route.openshift.io/v1",
        "apiVersion: serving.knative.dev/v1",
    );
    let objects = parse(&knative);
    let plan = check_every_fix(
        &objects,
        &FixOptions {
            allow_cidrs: vec!["203.0.113.0/24".into()],
            ..opts()
        },
    );
    assert!(
        plan.fixes.is_empty() && plan.unfixed.is_empty(),
        "{plan:#?}"
    );
}
