//! The exported CEL, run by a real CEL implementation (the `cel` crate with kube-rs's
//! Kubernetes CEL libraries), against what the webhook decides (`Engine::review`, the cluster
//! state "none": what one object shows, which is all a ValidatingAdmissionPolicy sees).
//!
//! - Miner rules (JS-MIN-001, JS-MIN-003): exact agreement on every review fixture; on the
//!   benign corpora not one denial; each exported indicator's `hit` example denied and its
//!   `miss` not, by CEL and by the webhook alike; and, over every string of the corpora and of
//!   the examples, a CEL match is a strong hit of the same indicator for the webhook (CEL never
//!   denies what the webhook allows).
//! - Kinds: a miner in each kind the policies read (at every place, for the KServe, Kubeflow
//!   Trainer and RayCronJob kinds) is denied by both, the same object with a benign command
//!   admitted by both; and the real-shaped objects of `tests/fixtures/kinds/{deny,allow}`
//!   (KServe, Kubeflow Trainer TrainJobs and runtimes, RayCronJob) are judged alike.
//! - Exposure rules: CEL is stricter by design. Wherever the webhook denies an exposure (in any
//!   cluster state of `expected.json`), CEL denies too; where CEL denies and the webhook does
//!   not, it is because the webhook saw authentication in front (or a second layer left), which
//!   CEL cannot see: the exact list is asserted.

mod common;

use common::*;
use jackstop_admission::{parse_review, ClusterState, Engine, Mode, Policy};
use jackstop_catalogue::indicators::Strength;
use jackstop_catalogue::Catalogue;
use jackstop_manifests::{collect_inputs, read_inputs, ReadOptions};
use jackstop_policy::miners::{self, Matcher, Target};
use serde_json::{json, Value as Json};
use std::collections::BTreeSet;

const MINER_RULES: &[&str] = &["JS-MIN-001", "JS-MIN-002", "JS-MIN-003"];

fn webhook(engine: &Engine, req: &Json) -> (bool, BTreeSet<String>) {
    try_webhook(engine, req).expect("a review the webhook reads")
}

/// None when the webhook would refuse the review itself (not an object the API server accepts).
fn try_webhook(engine: &Engine, req: &Json) -> Option<(bool, BTreeSet<String>)> {
    let body =
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req});
    let r = parse_review(&serde_json::to_vec(&body).unwrap()).ok()?;
    let v = engine.review(&r, &Policy::default(), &ClusterState::empty());
    let rules = v
        .findings
        .iter()
        .filter(|(_, m)| *m == Mode::Enforce)
        .map(|(f, _)| f.rule.clone())
        .collect();
    Some((v.allowed, rules))
}

fn is_miner(r: &str) -> bool {
    MINER_RULES.contains(&r)
}

#[test]
fn every_expression_compiles_and_the_fixtures_agree() {
    let cat = Catalogue::builtin();
    let engine = Engine::new(cat);
    let policies = compile_all(cat);
    let expressions: usize = policies
        .iter()
        .map(|p| {
            p.def.match_conditions.len()
                + p.def.variables.len()
                + p.def.validations.len()
                + p.def
                    .validations
                    .iter()
                    .filter(|v| v.message_expression.is_some())
                    .count()
        })
        .sum();
    assert!(expressions > 60, "{expressions}");
    let expected: Json = serde_json::from_slice(
        &std::fs::read(repo().join("tests/fixtures/admission/expected.json")).unwrap(),
    )
    .unwrap();
    let names = fixture_names();
    assert!(names.len() >= 16, "{names:?}");
    let mut stricter = Vec::new();
    let mut wrong = Vec::new();
    for name in &names {
        let req = fixture(name);
        let outcomes = evaluate_all(&policies, &req);
        for o in &outcomes {
            assert!(o.errors.is_empty(), "{name}: {:?}", o.errors);
            assert!(o.max_validation_cost <= jackstop_policy::PER_EXPRESSION_LIMIT);
            for (_, _, m) in &o.denied {
                assert!(m.starts_with("jackstop JS-"), "{name}: {m}");
                eprintln!("{name}: {m}");
            }
        }
        let cel: BTreeSet<String> = denied_rules(&outcomes).into_iter().collect();
        let (allowed, hook) = webhook(&engine, &req);
        // Miner rules: exact.
        let cel_miner = cel.iter().any(|r| is_miner(r));
        let hook_miner = hook.iter().any(|r| is_miner(r));
        if cel_miner != hook_miner {
            wrong.push(format!(
                "{name}: CEL {cel:?}, webhook {hook:?} (allowed {allowed})"
            ));
        }
        if cel.contains("JS-MIN-001") && !hook.contains("JS-MIN-001") {
            wrong.push(format!("{name}: CEL JS-MIN-001, webhook {hook:?}"));
        }
        // Exposure rules: CEL at least as strict in every state the fixtures were judged in.
        let cel_exposure = cel.iter().any(|r| r.starts_with("JS-EXP-"));
        let case = expected["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["review"] == name.as_str());
        if let Some(case) = case {
            for (state, want) in case["states"].as_object().unwrap() {
                let hook_exposure = want["rules"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r.as_str().unwrap().starts_with("JS-EXP-"));
                if hook_exposure && !cel_exposure {
                    wrong.push(format!(
                        "{name} in {state}: the webhook denies an exposure, CEL does not"
                    ));
                }
                if cel_exposure && !hook_exposure {
                    stricter.push(format!("{name}@{state}"));
                }
            }
        }
        if !cel_exposure && hook.iter().any(|r| r.starts_with("JS-EXP-")) {
            wrong.push(format!(
                "{name}: webhook exposure {hook:?} in state none, CEL allows"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Every exported regex is in the part of the syntax where Go's RE2 (the API server) and
    // Rust's regex (these tests) agree: translating it again changes nothing.
    let (checks, _) = miners::checks(cat);
    for c in &checks {
        let (Matcher::Regex(re) | Matcher::Base64(re)) = &c.matcher;
        assert_eq!(
            jackstop_policy::pattern::translate(re).as_deref(),
            Ok(re.as_str()),
            "{}",
            c.id
        );
    }
    // Where CEL is stricter: the seed patches where authentication is in front (the real
    // install) or unknown (no cluster), and the deletion of the gateway's authentication
    // where another layer remains or the gateway is not reachable from outside.
    stricter.sort();
    assert_eq!(
        stricter,
        [
            "delete-dex-jwt@kubeflow",
            "delete-dex-jwt@kubeflow-open",
            "delete-dex-jwt@kubeflow-open-one-layer",
            "delete-dex-jwt@none",
            "delete-oauth2-proxy-policy@kubeflow",
            "delete-oauth2-proxy-policy@kubeflow-open",
            "delete-oauth2-proxy-policy@kubeflow-open-one-layer",
            "delete-oauth2-proxy-policy@none",
            "delete-require-jwt@kubeflow",
            "delete-require-jwt@kubeflow-open",
            "delete-require-jwt@none",
            "seed-gateway-loadbalancer@kubeflow",
            "seed-gateway-loadbalancer@none",
            "seed-gateway-nodeport@kubeflow",
            "seed-gateway-nodeport@none",
        ]
    );
    eprintln!(
        "{} fixtures, {expressions} expressions; CEL stricter than the webhook in {} (fixture, state) pairs",
        names.len(),
        stricter.len()
    );
}

#[test]
fn the_annotations_let_an_administrator_through() {
    let cat = Catalogue::builtin();
    let policies = compile_all(cat);
    let mut req = fixture("seed-gateway-loadbalancer");
    assert!(!denied_rules(&evaluate_all(&policies, &req)).is_empty());
    req["object"]["metadata"]["annotations"] = json!({"jackstop.dev/authenticated-by": "oauth2-proxy ext-authz (AuthorizationPolicy istio-system/istio-ingressgateway-oauth2-proxy)"});
    assert!(denied_rules(&evaluate_all(&policies, &req)).is_empty());
    // Already open before the change: an unrelated update passes.
    let mut req = fixture("seed-gateway-loadbalancer");
    req["oldObject"]["spec"]["type"] = json!("LoadBalancer");
    assert!(denied_rules(&evaluate_all(&policies, &req)).is_empty());
    // An open Service pointed at the gateway: denied (it was not in front of it before).
    let mut req = fixture("seed-gateway-loadbalancer");
    req["oldObject"]["spec"]["type"] = json!("LoadBalancer");
    req["oldObject"]["metadata"]["name"] = json!("shop");
    req["oldObject"]["metadata"]["labels"] = json!({});
    req["oldObject"]["spec"]["selector"] = json!({"app": "shop"});
    req["object"]["metadata"]["name"] = json!("shop");
    req["object"]["metadata"]["labels"] = json!({});
    assert_eq!(
        denied_rules(&evaluate_all(&policies, &req)),
        ["JS-EXP-001", "JS-EXP-002"]
    );
    // externalIPs on a ClusterIP Service of the dashboard.
    let mut req = fixture("seed-gateway-loadbalancer");
    req["object"]["spec"]["type"] = json!("ClusterIP");
    req["object"]["spec"]["externalIPs"] = json!(["203.0.113.10"]);
    assert_eq!(
        denied_rules(&evaluate_all(&policies, &req)),
        ["JS-EXP-001", "JS-EXP-002"]
    );
    let mut req = fixture("delete-require-jwt");
    req["oldObject"]["metadata"]["annotations"] = json!({"jackstop.dev/allow-delete": "true"});
    assert!(denied_rules(&evaluate_all(&policies, &req)).is_empty());
    // An unrelated Service, and one with no spec at all: nothing, and no error.
    let mut req = fixture("seed-gateway-loadbalancer");
    req["object"]["metadata"]["name"] = json!("shop");
    req["object"]["metadata"]["labels"] = json!({});
    req["object"]["spec"]["selector"] = json!({"app": "shop"});
    assert!(denied_rules(&evaluate_all(&policies, &req)).is_empty());
    req["object"]["spec"] = json!(null);
    req["object"].as_object_mut().unwrap().remove("spec");
    assert!(denied_rules(&evaluate_all(&policies, &req)).is_empty());
}

/// Objects being deleted, as the webhook judges them: finalizers removed from a miner pass;
/// a miner written into a Deployment that finalizers hold is denied.
#[test]
fn objects_being_deleted_are_judged_by_what_the_change_adds() {
    let cat = Catalogue::builtin();
    let policies = compile_all(cat);
    let engine = Engine::new(cat);
    let req = fixture("miner-finalizer-removed");
    assert!(denied_rules(&evaluate_all(&policies, &req)).is_empty());
    assert!(webhook(&engine, &req).0);
    let mut req = fixture("miner-finalizer-removed");
    req["oldObject"]["spec"]["template"]["spec"]["containers"][0]["args"] =
        json!(["python train.py --epochs 10"]);
    req["oldObject"]["spec"]["template"]["spec"]["containers"][0]["command"] = json!(["sh", "-c"]);
    assert_eq!(denied_rules(&evaluate_all(&policies, &req)), ["JS-MIN-001"]);
    assert!(!webhook(&engine, &req).0);
}

fn pod_with(args: &[&str], image: &str) -> Json {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "team-a"},
        "spec": {"containers": [{"name": "c", "image": image, "args": args}]}
    })
}

/// Each exported indicator's golden examples, as a Pod's args (or image): the `hit` denied and
/// the `miss` not, by CEL and by the webhook alike. A base64 check's example is its indicator's
/// `hit` hidden in `echo ... | base64 -d | sh`.
#[test]
fn indicator_examples_are_judged_alike() {
    let cat = Catalogue::builtin();
    let engine = Engine::new(cat);
    let policies = compile_all(cat);
    let (checks, only) = miners::checks(cat);
    let mut judged = 0;
    let mut b64_caught = 0;
    let mut wrong = Vec::new();
    for c in &checks {
        for id in &c.indicators {
            let (hit, miss) = cat.indicators.examples(id).unwrap();
            for (text, want) in [(hit, true), (miss, false)] {
                let pod = match (c.target, &c.matcher) {
                    (Target::Image, _) => pod_with(&[], text),
                    (Target::Text, Matcher::Base64(_)) => {
                        use base64::Engine as _;
                        // Hidden in a command line, as a dropper would.
                        let b = base64::engine::general_purpose::STANDARD
                            .encode(format!("exec {text} "));
                        pod_with(
                            &["-c", &format!("echo {b} | base64 -d | sh")],
                            "busybox:1.36",
                        )
                    }
                    (Target::Text, _) => pod_with(&[text], "busybox:1.36"),
                };
                let req = create_request(&pod);
                let outcomes = evaluate_all(&policies, &req);
                // Denied by a check of this indicator (the program checks and the long base64
                // checks are split in parts, each with its own cost limit).
                let covering: Vec<&str> = checks
                    .iter()
                    .filter(|x| x.indicators.contains(id))
                    .map(|x| x.id.as_str())
                    .collect();
                let by_this = outcomes
                    .iter()
                    .flat_map(|o| o.denied.iter())
                    .any(|(v, _, _)| covering.contains(&v.as_str()));
                let cel = !denied_rules(&outcomes).is_empty();
                let (allowed, _) = webhook(&engine, &req);
                // The image examples of the miner-program check are image references that the
                // text check would read as a name only.
                // A base64 form holds the literal with a space before it and a space or `=`
                // after (`://` for a scheme): a hit example written otherwise
                // (`args: ["--randomx-1gb-pages"]`) is the webhook's only (it decodes).
                let b64 = matches!(c.matcher, Matcher::Base64(_));
                let bounded = format!("exec {text} ")
                    .split(' ')
                    .any(|w| w.starts_with("--") || w.contains("://"));
                if want && !by_this && (!b64 || bounded) {
                    wrong.push(format!("{} ({id}): hit {text:?} not denied by CEL", c.id));
                }
                if want && by_this && b64 {
                    b64_caught += 1;
                }
                if !want && cel && c.target == Target::Text {
                    wrong.push(format!("{} ({id}): miss {text:?} denied by CEL", c.id));
                }
                if cel && allowed {
                    wrong.push(format!(
                        "{} ({id}): {text:?} denied by CEL, allowed by the webhook",
                        c.id
                    ));
                }
                judged += 1;
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(judged > 80, "{judged}");
    assert!(b64_caught >= 10, "{b64_caught}");
    assert!(only.len() > 40);
    eprintln!(
        "{} checks ({} indicators) judged on {judged} examples; {} indicators left to the webhook",
        checks.len(),
        checks.iter().map(|c| c.indicators.len()).sum::<usize>(),
        only.len()
    );
}

fn corpus(name: &str) -> String {
    repo()
        .join("../shared/corpus")
        .join(name)
        .display()
        .to_string()
}

fn strings(v: &Json, out: &mut Vec<String>) {
    match v {
        Json::String(s) => out.push(s.clone()),
        Json::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Json::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// Every benign object created: no CEL denial of a workload, no evaluation error, within the
/// API server's cost budget; and every regex match over any of their strings (and over the
/// miner corpus and the indicator examples) is a strong hit of the same indicator for the
/// webhook's own matcher.
#[test]
fn benign_corpora_pass_and_every_cel_match_is_a_webhook_strong_hit() {
    let cat = Catalogue::builtin();
    let engine = Engine::new(cat);
    let policies = compile_all(cat);
    let (checks, _) = miners::checks(cat);
    let mut evaluated = 0;
    let mut workloads = 0;
    let mut exposure_denied = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    let mut images: Vec<String> = Vec::new();
    for dir in [
        "kubeflow-platform",
        "kfp",
        "argo-examples",
        "kuberay",
        "notebooks-training",
    ] {
        let (inputs, errors) = collect_inputs(&[corpus(dir)], &[]);
        assert!(errors.is_empty(), "{errors:?}");
        let objects = read_inputs(&inputs, &ReadOptions::default()).objects;
        for o in objects {
            strings(&o.body, &mut texts);
            let req = create_request(&o.body);
            // Not an object the API server would accept (no name, say): not a review.
            let Some((allowed, hook)) = try_webhook(&engine, &req) else {
                continue;
            };
            let outcomes = evaluate_all(&policies, &req);
            if !outcomes.iter().any(|x| x.matched) {
                continue;
            }
            evaluated += 1;
            for x in &outcomes {
                assert!(
                    x.errors.is_empty(),
                    "{dir} {} {}: {:?}",
                    o.kind,
                    o.name,
                    x.errors
                );
                assert!(
                    x.max_validation_cost <= jackstop_policy::PER_EXPRESSION_LIMIT
                        && x.cost <= jackstop_policy::PER_POLICY_BUDGET,
                    "{dir} {} {}: cost {} (max {})",
                    o.kind,
                    o.name,
                    x.cost,
                    x.max_validation_cost
                );
            }
            let denied = denied_rules(&outcomes);
            if o.kind == "Service" {
                if !denied.is_empty() {
                    exposure_denied.push(format!("{dir}: Service {:?}/{}", o.namespace, o.name));
                }
                continue;
            }
            workloads += 1;
            assert!(
                denied.is_empty(),
                "{dir}: {} {:?}/{} denied by CEL: {:?}",
                o.kind,
                o.namespace,
                o.name,
                outcomes
                    .iter()
                    .flat_map(|x| x.denied.iter())
                    .collect::<Vec<_>>()
            );
            assert!(
                allowed || !hook.iter().any(|r| is_miner(r)),
                "{dir} {}: {hook:?}",
                o.name
            );
        }
    }
    eprintln!("corpora: {evaluated} objects evaluated ({workloads} workloads), no denial");
    assert!(workloads > 150, "{workloads}");
    // The exposure policies are stricter than the webhook (they cannot see the cluster), but
    // no Service of the benign corpora opens a door they refuse.
    assert!(
        exposure_denied.is_empty(),
        "Services of the benign corpora denied by the exposure policies: {exposure_denied:?}"
    );

    // The miner corpus and the examples, for the soundness of each regex.
    let miners_dir = repo().join("../shared/corpus/miners");
    if miners_dir.is_dir() {
        let (inputs, _) = collect_inputs(&[miners_dir.display().to_string()], &[]);
        for o in read_inputs(&inputs, &ReadOptions::default()).objects {
            strings(&o.body, &mut texts);
        }
    }
    for id in cat.indicators.ids() {
        let (h, m) = cat.indicators.examples(id).unwrap();
        texts.push(h.to_string());
        texts.push(m.to_string());
        images.push(h.to_string());
        images.push(m.to_string());
    }
    let image_like = regex::Regex::new(r"^[a-z0-9][A-Za-z0-9._/:@-]{0,200}$").unwrap();
    images.extend(texts.iter().filter(|t| image_like.is_match(t)).cloned());
    texts.sort();
    texts.dedup();
    images.sort();
    images.dedup();
    let mut matched = 0;
    let mut unsound = Vec::new();
    for c in &checks {
        let Matcher::Regex(re) = &c.matcher else {
            continue;
        };
        let r = regex::Regex::new(re).unwrap();
        let on = if c.target == Target::Text {
            &texts
        } else {
            &images
        };
        for t in on {
            if !r.is_match(t) {
                continue;
            }
            matched += 1;
            let hits = if c.target == Target::Text {
                cat.indicators.scan_text(t)
            } else {
                cat.indicators.scan_image(t)
            };
            if !hits
                .iter()
                .any(|h| c.indicators.contains(&h.id) && h.strength == Strength::Strong)
            {
                unsound.push(format!(
                    "{}: {t:?}: webhook hits {:?}",
                    c.id,
                    hits.iter().map(|h| (&h.id, h.strength)).collect::<Vec<_>>()
                ));
            }
        }
    }
    assert!(unsound.is_empty(), "{}", unsound.join("\n"));
    eprintln!(
        "soundness: {} texts and {} image references, {matched} CEL matches, each a webhook strong hit",
        texts.len(),
        images.len()
    );
}

fn object(api: &str, kind: &str, spec: Json) -> Json {
    json!({"apiVersion": api, "kind": kind, "metadata": {"name": "x", "namespace": "team-a"}, "spec": spec})
}

/// A miner at every place the policy reads, in every kind: denied by CEL and by the webhook;
/// the same object with a benign command: admitted by both.
#[test]
fn every_kind_is_read_where_the_webhook_reads_it() {
    let cat = Catalogue::builtin();
    let engine = Engine::new(cat);
    let policies = compile_all(cat);
    let pod = |cmd: &str| json!({"containers": [{"name": "c", "image": "python:3.12", "command": ["/bin/sh", "-c", cmd]}]});
    let template = |cmd: &str| json!({"template": {"spec": pod(cmd)}});
    type Make<'a> = Box<dyn Fn(&str) -> Json + 'a>;
    let cases: Vec<(&str, Make)> = vec![
        ("Pod", Box::new(|c: &str| object("v1", "Pod", pod(c)))),
        (
            "Pod init",
            Box::new(|c: &str| {
                object(
                    "v1",
                    "Pod",
                    json!({"containers": [{"name": "a", "image": "busybox"}], "initContainers": pod(c)["containers"]}),
                )
            }),
        ),
        (
            "Pod env",
            Box::new(|c: &str| {
                object(
                    "v1",
                    "Pod",
                    json!({"containers": [{"name": "a", "image": "busybox", "env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}, {"name": "CMD", "value": c}]}]}),
                )
            }),
        ),
        (
            "Deployment",
            Box::new(|c: &str| object("apps/v1", "Deployment", template(c))),
        ),
        (
            "CronJob",
            Box::new(|c: &str| {
                object(
                    "batch/v1",
                    "CronJob",
                    json!({"schedule": "* * * * *", "jobTemplate": {"spec": template(c)}}),
                )
            }),
        ),
        (
            "Notebook",
            Box::new(|c: &str| object("kubeflow.org/v1", "Notebook", template(c))),
        ),
        (
            "Workflow container",
            Box::new(|c: &str| {
                object(
                    "argoproj.io/v1alpha1",
                    "Workflow",
                    json!({"templates": [{"name": "a", "dag": {}}, {"name": "b", "container": pod(c)["containers"][0]}]}),
                )
            }),
        ),
        (
            "Workflow script",
            Box::new(|c: &str| {
                object(
                    "argoproj.io/v1alpha1",
                    "Workflow",
                    json!({"templates": [{"name": "b", "script": {"image": "python:3.12", "command": ["sh"], "source": format!("set -e\n{c}\n")}}]}),
                )
            }),
        ),
        (
            "CronWorkflow",
            Box::new(|c: &str| {
                object(
                    "argoproj.io/v1alpha1",
                    "CronWorkflow",
                    json!({"schedule": "* * * * *", "workflowSpec": {"templates": [{"name": "b", "container": pod(c)["containers"][0]}]}}),
                )
            }),
        ),
        (
            "TFJob",
            Box::new(|c: &str| {
                object(
                    "kubeflow.org/v1",
                    "TFJob",
                    json!({"tfReplicaSpecs": {"Chief": {"replicas": 1, "template": {"spec": pod("python train.py")}}, "Worker": {"replicas": 2, "template": {"spec": pod(c)}}}}),
                )
            }),
        ),
        (
            "PyTorchJob",
            Box::new(|c: &str| {
                object(
                    "kubeflow.org/v1",
                    "PyTorchJob",
                    json!({"pytorchReplicaSpecs": {"Master": {"template": {"spec": pod(c)}}}}),
                )
            }),
        ),
        (
            "JobSet",
            Box::new(|c: &str| {
                object(
                    "jobset.x-k8s.io/v1alpha2",
                    "JobSet",
                    json!({"replicatedJobs": [{"name": "w", "template": {"spec": template(c)}}]}),
                )
            }),
        ),
        (
            "RayCluster worker",
            Box::new(|c: &str| {
                object(
                    "ray.io/v1",
                    "RayCluster",
                    json!({"headGroupSpec": {"template": {"spec": pod("ray start --head")}}, "workerGroupSpecs": [{"groupName": "g", "template": {"spec": pod(c)}}]}),
                )
            }),
        ),
        (
            "RayJob entrypoint",
            Box::new(|c: &str| {
                object(
                    "ray.io/v1",
                    "RayJob",
                    json!({"entrypoint": c, "rayClusterSpec": {"headGroupSpec": {"template": {"spec": pod("ray start --head")}}}}),
                )
            }),
        ),
        (
            "RayService",
            Box::new(|c: &str| {
                object(
                    "ray.io/v1",
                    "RayService",
                    json!({"rayClusterConfig": {"headGroupSpec": {"template": {"spec": pod(c)}}}}),
                )
            }),
        ),
    ];
    let mut cases: Vec<(String, Make)> = cases
        .into_iter()
        .map(|(what, make)| (what.to_string(), make))
        .collect();
    for (what, make) in kserve_trainer_and_ray_cron_cases() {
        cases.push((what, make));
    }
    let miner = "cd /tmp && ./xmrig -o stratum+tcp://pool.example.invalid:3333 --donate-level 1";
    for (what, make) in &cases {
        for (cmd, deny) in [(miner, true), ("python train.py --epochs 3", false)] {
            let req = create_request(&make(cmd));
            let outcomes = evaluate_all(&policies, &req);
            assert!(
                outcomes.iter().any(|o| o.matched),
                "{what}: no policy matched"
            );
            let cel = denied_rules(&outcomes);
            let (allowed, hook) = webhook(&engine, &req);
            assert_eq!(!cel.is_empty(), deny, "{what} {cmd}: CEL {cel:?}");
            assert_eq!(!allowed, deny, "{what} {cmd}: webhook {hook:?}");
            if deny {
                assert_eq!(cel, ["JS-MIN-001"], "{what}");
            }
        }
    }
}

/// An object with a command at one place.
type MakeObject = Box<dyn Fn(&str) -> Json>;

/// A pod spec whose one container runs `cmd` (`/bin/sh -c`).
fn pod_running(cmd: &str) -> Json {
    json!({"containers": [container_running(cmd)]})
}

fn container_running(cmd: &str) -> Json {
    json!({"name": "c", "image": "python:3.12", "command": ["/bin/sh", "-c", cmd]})
}

/// The main container of a vLLM server.
fn vllm_main() -> Json {
    json!({"containers": [{"name": "main", "image": "vllm/vllm-openai:v0.8.5"}]})
}

/// A benign KServe model block (the predictor that the other places sit next to).
fn sklearn_model() -> Json {
    json!({"modelFormat": {"name": "sklearn"}, "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model"})
}

/// One case per place of the KServe, Kubeflow Trainer and RayCronJob kinds, each path
/// written out here from the CRDs (not taken from the policy's tables, so that a wrong path
/// there fails): the command at that place only, the rest of the object benign.
fn kserve_trainer_and_ray_cron_cases() -> Vec<(String, MakeObject)> {
    const ISVC: &str = "serving.kserve.io/v1beta1";
    const KSERVE: &str = "serving.kserve.io/v1alpha1";
    const TRAINER: &str = "trainer.kubeflow.org/v1alpha1";
    let pod_places: Vec<(&str, MakeObject)> = vec![
        (
            "InferenceService predictor",
            Box::new(|c: &str| {
                object(
                    ISVC,
                    "InferenceService",
                    json!({"predictor": pod_running(c)}),
                )
            }),
        ),
        (
            "InferenceService predictor init",
            Box::new(|c: &str| {
                object(
                    ISVC,
                    "InferenceService",
                    json!({"predictor": {"model": sklearn_model(), "initContainers": [container_running(c)]}}),
                )
            }),
        ),
        (
            "InferenceService predictor workerSpec",
            Box::new(|c: &str| {
                let mut worker = pod_running(c);
                worker["pipelineParallelSize"] = json!(2);
                object(
                    ISVC,
                    "InferenceService",
                    json!({"predictor": {"model": sklearn_model(), "workerSpec": worker}}),
                )
            }),
        ),
        (
            "InferenceService transformer",
            Box::new(|c: &str| {
                object(
                    ISVC,
                    "InferenceService",
                    json!({"predictor": {"model": sklearn_model()}, "transformer": pod_running(c)}),
                )
            }),
        ),
        (
            "InferenceService explainer",
            Box::new(|c: &str| {
                object(
                    ISVC,
                    "InferenceService",
                    json!({"predictor": {"model": sklearn_model()}, "explainer": pod_running(c)}),
                )
            }),
        ),
    ];
    let mut cases: Vec<(String, MakeObject)> = pod_places
        .into_iter()
        .map(|(what, make)| (what.to_string(), make))
        .collect();
    // The single-container blocks: a predictor's model and framework blocks, an explainer's.
    for block in [
        "model",
        "tensorflow",
        "pytorch",
        "sklearn",
        "xgboost",
        "onnx",
        "triton",
        "huggingface",
        "lightgbm",
        "paddle",
        "pmml",
    ] {
        cases.push((
            format!("InferenceService predictor.{block}"),
            Box::new(move |c: &str| {
                let mut m = container_running(c);
                m["storageUri"] = json!("gs://kfserving-examples/models/x");
                object(ISVC, "InferenceService", json!({"predictor": {block: m}}))
            }),
        ));
    }
    for block in ["alibi", "art"] {
        cases.push((
            format!("InferenceService explainer.{block}"),
            Box::new(move |c: &str| {
                let mut e = container_running(c);
                e["type"] = json!("SquareAttack");
                object(
                    ISVC,
                    "InferenceService",
                    json!({"predictor": {"model": sklearn_model()}, "explainer": {block: e}}),
                )
            }),
        ));
    }
    for kind in ["ServingRuntime", "ClusterServingRuntime"] {
        let formats = json!([{"name": "sklearn", "version": "1", "autoSelect": true}]);
        let f = formats.clone();
        cases.push((
            format!("{kind} spec"),
            Box::new(move |c: &str| {
                let mut spec = pod_running(c);
                spec["supportedModelFormats"] = f.clone();
                object(KSERVE, kind, spec)
            }),
        ));
        cases.push((
            format!("{kind} workerSpec"),
            Box::new(move |c: &str| {
                object(
                    KSERVE,
                    kind,
                    json!({"supportedModelFormats": formats, "containers": [{"name": "kserve-container", "image": "kserve/huggingfaceserver:v0.16.0-gpu"}], "workerSpec": pod_running(c)}),
                )
            }),
        ));
    }
    // The spec of an LLMInferenceService (or of an LLMInferenceServiceConfig, the same spec)
    // with a given pod spec at one place.
    type WithPodAt = fn(Json) -> Json;
    let llm: [(&str, WithPodAt); 5] = [
        (
            "template",
            |p| json!({"model": {"uri": "hf://Qwen/Qwen2.5-7B-Instruct"}, "template": p}),
        ),
        (
            "worker",
            |p| json!({"model": {"uri": "hf://Qwen/Qwen2.5-7B-Instruct"}, "template": vllm_main(), "worker": p}),
        ),
        (
            "prefill.template",
            |p| json!({"model": {"uri": "hf://Qwen/Qwen2.5-7B-Instruct"}, "template": vllm_main(), "prefill": {"replicas": 1, "template": p}}),
        ),
        (
            "prefill.worker",
            |p| json!({"model": {"uri": "hf://Qwen/Qwen2.5-7B-Instruct"}, "template": vllm_main(), "prefill": {"template": vllm_main(), "worker": p}}),
        ),
        (
            "router.scheduler.template",
            |p| json!({"model": {"uri": "hf://Qwen/Qwen2.5-7B-Instruct"}, "template": vllm_main(), "router": {"route": {}, "gateway": {}, "scheduler": {"pool": {"spec": {"targetPortNumber": 8000}}, "template": p}}}),
        ),
    ];
    for kind in ["LLMInferenceService", "LLMInferenceServiceConfig"] {
        for (what, spec) in llm {
            cases.push((
                format!("{kind} {what}"),
                Box::new(move |c: &str| object(KSERVE, kind, spec(pod_running(c)))),
            ));
        }
    }
    // A TrainJob's trainer runs the command; its initializers only take env values.
    cases.push((
        "TrainJob trainer".to_string(),
        Box::new(|c: &str| {
            object(
                TRAINER,
                "TrainJob",
                json!({"runtimeRef": {"name": "torch-distributed"}, "trainer": {"image": "pytorch/pytorch:2.7.1-cuda12.8-cudnn9-runtime", "command": ["/bin/sh", "-c", c], "numNodes": 2, "resourcesPerNode": {"limits": {"nvidia.com/gpu": 1}}}}),
            )
        }),
    ));
    for initializer in ["dataset", "model"] {
        cases.push((
            format!("TrainJob initializer.{initializer}"),
            Box::new(move |c: &str| {
                object(
                    TRAINER,
                    "TrainJob",
                    json!({"runtimeRef": {"name": "torchtune-llama3.2-1b"}, "initializer": {
                        "dataset": {"storageUri": "hf://tatsu-lab/alpaca/data"},
                        "model": {"storageUri": "hf://meta-llama/Llama-3.2-1B-Instruct"},
                        initializer: {"storageUri": "hf://x/y", "env": [{"name": "HF_HUB_DISABLE_TELEMETRY", "value": "1"}, {"name": "CMD", "value": c}]}
                    }}),
                )
            }),
        ));
    }
    for kind in ["TrainingRuntime", "ClusterTrainingRuntime"] {
        cases.push((
            format!("{kind} replicatedJobs"),
            Box::new(move |c: &str| {
                object(
                    TRAINER,
                    kind,
                    json!({"mlPolicy": {"numNodes": 1, "torch": {}}, "template": {"spec": {"replicatedJobs": [
                        {"name": "dataset-initializer", "template": {"spec": {"template": {"spec": {"containers": [{"name": "dataset-initializer", "image": "ghcr.io/kubeflow/trainer/dataset-initializer:v2.2.0"}]}}}}},
                        {"name": "node", "template": {"spec": {"template": {"spec": pod_running(c)}}}}
                    ]}}}),
                )
            }),
        ));
    }
    let head = json!({"rayStartParams": {}, "template": {"spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.52.0"}]}}});
    let h = head.clone();
    cases.push((
        "RayCronJob entrypoint".to_string(),
        Box::new(move |c: &str| {
            object(
                "ray.io/v1",
                "RayCronJob",
                json!({"schedule": "* * * * *", "jobTemplate": {"entrypoint": c, "rayClusterSpec": {"headGroupSpec": h}}}),
            )
        }),
    ));
    cases.push((
        "RayCronJob head".to_string(),
        Box::new(|c: &str| {
            object(
                "ray.io/v1",
                "RayCronJob",
                json!({"schedule": "* * * * *", "jobTemplate": {"entrypoint": "python /home/ray/samples/sample_code.py", "rayClusterSpec": {"headGroupSpec": {"rayStartParams": {}, "template": {"spec": pod_running(c)}}}}}),
            )
        }),
    ));
    let h = head.clone();
    cases.push((
        "RayCronJob worker".to_string(),
        Box::new(move |c: &str| {
            object(
                "ray.io/v1",
                "RayCronJob",
                json!({"schedule": "* * * * *", "jobTemplate": {"entrypoint": "python /home/ray/samples/sample_code.py", "rayClusterSpec": {"headGroupSpec": h, "workerGroupSpecs": [{"groupName": "small-group", "replicas": 1, "rayStartParams": {}, "template": {"spec": pod_running(c)}}]}}}),
            )
        }),
    ));
    cases.push((
        "RayCronJob submitter".to_string(),
        Box::new(move |c: &str| {
            object(
                "ray.io/v1",
                "RayCronJob",
                json!({"schedule": "* * * * *", "jobTemplate": {"entrypoint": "python /home/ray/samples/sample_code.py", "rayClusterSpec": {"headGroupSpec": head}, "submitterPodTemplate": {"spec": pod_running(c)}}}),
            )
        }),
    ));
    cases
}

/// The kinds' fixtures (`tests/fixtures/kinds/{deny,allow}/*.yaml`, real shapes): every
/// object in `deny/` is denied by CEL and by the webhook for a miner rule, CEL's rules being
/// the webhook's too; every object in `allow/` is admitted by both. Each kind has both.
#[test]
fn kind_fixtures_are_judged_alike() {
    let cat = Catalogue::builtin();
    let engine = Engine::new(cat);
    let policies = compile_all(cat);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kinds");
    let mut seen: [BTreeSet<String>; 2] = Default::default();
    let mut wrong = Vec::new();
    let mut judged = 0;
    for (sub, deny) in [("deny", true), ("allow", false)] {
        let (inputs, errors) = collect_inputs(&[dir.join(sub).display().to_string()], &[]);
        assert!(errors.is_empty(), "{errors:?}");
        let objects = read_inputs(&inputs, &ReadOptions::default()).objects;
        for o in objects {
            let at = format!("{sub}: {} {}", o.kind, o.name);
            let req = create_request(&o.body);
            let outcomes = evaluate_all(&policies, &req);
            assert!(
                outcomes.iter().any(|x| x.matched),
                "{at}: no policy matched"
            );
            for x in &outcomes {
                assert!(x.errors.is_empty(), "{at}: {:?}", x.errors);
                assert!(
                    x.max_validation_cost <= jackstop_policy::PER_EXPRESSION_LIMIT
                        && x.cost <= jackstop_policy::PER_POLICY_BUDGET,
                    "{at}: cost {}",
                    x.cost
                );
            }
            let cel = denied_rules(&outcomes);
            let (allowed, hook) = webhook(&engine, &req);
            let cel_miner = cel.iter().any(|r| is_miner(r));
            let hook_miner = hook.iter().any(|r| is_miner(r));
            if cel_miner != deny || hook_miner != deny || allowed == deny {
                wrong.push(format!(
                    "{at}: CEL {cel:?}, webhook {hook:?} (allowed {allowed})"
                ));
            }
            if let Some(r) = cel.iter().find(|r| !hook.contains(*r)) {
                wrong.push(format!("{at}: CEL {r}, webhook {hook:?}"));
            }
            eprintln!("{at}: CEL {cel:?}, webhook {hook:?}");
            seen[deny as usize].insert(o.kind.clone());
            judged += 1;
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let kinds = [
        "InferenceService",
        "ServingRuntime",
        "ClusterServingRuntime",
        "LLMInferenceService",
        "LLMInferenceServiceConfig",
        "TrainJob",
        "TrainingRuntime",
        "ClusterTrainingRuntime",
        "RayCronJob",
    ];
    for set in &seen {
        assert_eq!(
            set,
            &kinds.iter().map(|k| k.to_string()).collect(),
            "{seen:?}"
        );
    }
    eprintln!("{judged} kind fixtures judged alike");
}

/// Odd shapes (absent, null or empty fields, entries without values) are never an error:
/// with failurePolicy Fail an error would deny.
#[test]
fn odd_shapes_are_not_errors() {
    let cat = Catalogue::builtin();
    let policies = compile_all(cat);
    for o in [
        object("v1", "Pod", json!({})),
        object("v1", "Pod", json!({"containers": []})),
        object("v1", "Pod", json!({"containers": [{}]})),
        object(
            "v1",
            "Pod",
            json!({"containers": [{"name": "a", "env": [{}, {"name": "X"}], "args": []}]}),
        ),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "namespace": "a"}}),
        object("apps/v1", "Deployment", json!({"template": {}})),
        object("apps/v1", "Deployment", json!({"replicas": 0})),
        object("batch/v1", "CronJob", json!({"jobTemplate": {"spec": {}}})),
        object("kubeflow.org/v1", "TFJob", json!({"tfReplicaSpecs": {}})),
        object(
            "kubeflow.org/v1",
            "TFJob",
            json!({"tfReplicaSpecs": {"Worker": {"replicas": 1}}}),
        ),
        object(
            "ray.io/v1",
            "RayCluster",
            json!({"workerGroupSpecs": [{}], "headGroupSpec": {}}),
        ),
        object("ray.io/v1", "RayJob", json!({"rayClusterSpec": {}})),
        object(
            "argoproj.io/v1alpha1",
            "Workflow",
            json!({"templates": [{}, {"name": "a", "steps": [[{"name": "s"}]]}]}),
        ),
        object(
            "argoproj.io/v1alpha1",
            "CronWorkflow",
            json!({"workflowSpec": {}}),
        ),
        object("ray.io/v1", "RayCronJob", json!({"jobTemplate": {}})),
        object(
            "ray.io/v1",
            "RayCronJob",
            json!({"jobTemplate": {"rayClusterSpec": {"workerGroupSpecs": [{}]}}}),
        ),
        object("serving.kserve.io/v1beta1", "InferenceService", json!({})),
        object(
            "serving.kserve.io/v1beta1",
            "InferenceService",
            json!({"predictor": {"model": {"modelFormat": {"name": "sklearn"}}}, "explainer": {}}),
        ),
        object("serving.kserve.io/v1alpha1", "ServingRuntime", json!({})),
        object(
            "serving.kserve.io/v1alpha1",
            "ClusterServingRuntime",
            json!({"supportedModelFormats": [], "workerSpec": {}}),
        ),
        object(
            "serving.kserve.io/v1alpha1",
            "LLMInferenceService",
            json!({"model": {"uri": "hf://x/y"}, "prefill": {}}),
        ),
        object(
            "serving.kserve.io/v1alpha1",
            "LLMInferenceServiceConfig",
            json!({"router": {"scheduler": {"pool": {"ref": {"name": "p"}}}}}),
        ),
        object(
            "serving.kserve.io/v1alpha1",
            "LLMInferenceService",
            json!({"router": {"scheduler": {"template": {}}}}),
        ),
        object("trainer.kubeflow.org/v1alpha1", "TrainJob", json!({})),
        object(
            "trainer.kubeflow.org/v1alpha1",
            "TrainJob",
            json!({"initializer": {"dataset": {"env": [{"name": "X"}]}}, "trainer": {}}),
        ),
        object(
            "trainer.kubeflow.org/v1alpha1",
            "TrainingRuntime",
            json!({}),
        ),
        object(
            "trainer.kubeflow.org/v1alpha1",
            "ClusterTrainingRuntime",
            json!({"template": {"spec": {"replicatedJobs": [{}, {"name": "node", "template": {}}]}}}),
        ),
        object("v1", "Service", json!({})),
        object(
            "v1",
            "Service",
            json!({"type": "ClusterIP", "selector": {}}),
        ),
    ] {
        let req = create_request(&o);
        let outcomes = evaluate_all(&policies, &req);
        assert!(outcomes.iter().any(|x| x.matched), "{o}");
        assert_eq!(denied_rules(&outcomes), Vec::<String>::new(), "{o}");
    }
    // An UPDATE from an odd old object, and a DELETE of a policy with no spec.
    let mut req = create_request(&object(
        "v1",
        "Pod",
        json!({"containers": [{"name": "a", "image": "busybox", "args": ["./xmrig"]}]}),
    ));
    req["operation"] = json!("UPDATE");
    req["oldObject"] = object("v1", "Pod", json!({"containers": [{}]}));
    assert_eq!(denied_rules(&evaluate_all(&policies, &req)), ["JS-MIN-001"]);
    let mut req = fixture("delete-require-jwt");
    req["oldObject"].as_object_mut().unwrap().remove("spec");
    assert_eq!(
        denied_rules(&evaluate_all(&policies, &req)),
        Vec::<String>::new()
    );
}
