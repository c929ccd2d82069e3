//! The AdmissionReview fixtures (tests/fixtures/admission/reviews, shaped as the API server
//! sends them) judged against cluster states built from the real Kubeflow install: the seed
//! patch is denied only where nothing authenticates in front of the gateway, removing the
//! gateway's authentication is denied only where the gateway is reachable from outside, the
//! campaign's miners are denied, scaling them to zero or finishing their deletion is not, and
//! every object of the benign corpora is admitted.

use jackstop_admission::{parse_review, ClusterState, Engine, Policy};
use jackstop_catalogue::Catalogue;
use jackstop_core::Object;
use jackstop_manifests::{collect_inputs, read_inputs, ReadOptions};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpus(name: &str) -> String {
    repo()
        .join("../shared/corpus")
        .join(name)
        .display()
        .to_string()
}

fn objects(paths: &[String]) -> Vec<Object> {
    let (inputs, errors) = collect_inputs(paths, &[]);
    assert!(errors.is_empty(), "{errors:?}");
    read_inputs(&inputs, &ReadOptions::default()).objects
}

/// The states the fixtures name.
fn states(cat: &'static Catalogue) -> BTreeMap<&'static str, ClusterState> {
    let kubeflow = objects(&[corpus("kubeflow-platform")]);
    // Kubeflow's two layers in front of the gateway: oauth2-proxy (ext-authz) and a JWT
    // required by Istio. The allow-all policy for the gateway stays.
    let is_gateway_auth = |o: &Object| {
        o.namespace.as_deref() == Some("istio-system")
            && matches!(
                o.name.as_str(),
                "istio-ingressgateway-require-jwt"
                    | "istio-ingressgateway-oauth2-proxy"
                    | "dex-jwt"
            )
    };
    let no_auth: Vec<Object> = kubeflow
        .iter()
        .filter(|o| !is_gateway_auth(o))
        .cloned()
        .collect();
    let open: Vec<Object> = kubeflow
        .iter()
        .cloned()
        .map(|mut o| {
            if o.kind == "Service" && o.name == "istio-ingressgateway" {
                o.body["spec"]["type"] = "LoadBalancer".into();
            }
            o
        })
        .collect();
    // Open, with one layer only: the JWT (the oauth2-proxy policy gone).
    let one_layer: Vec<Object> = open
        .iter()
        .filter(|o| {
            !(o.kind == "AuthorizationPolicy" && o.name == "istio-ingressgateway-oauth2-proxy")
        })
        .cloned()
        .collect();
    BTreeMap::from([
        ("kubeflow-open-one-layer", ClusterState::new(one_layer, cat)),
        ("none", ClusterState::empty()),
        ("kubeflow", ClusterState::new(kubeflow, cat)),
        ("kubeflow-no-auth", ClusterState::new(no_auth, cat)),
        ("kubeflow-open", ClusterState::new(open, cat)),
    ])
}

fn review(name: &str) -> Vec<u8> {
    std::fs::read(
        repo()
            .join("tests/fixtures/admission/reviews")
            .join(format!("{name}.json")),
    )
    .unwrap()
}

#[test]
fn every_fixture_is_judged_as_expected() {
    let cat = Catalogue::builtin();
    let engine = Engine::new(cat);
    let policy = Policy::default();
    let states = states(cat);
    assert_eq!(
        states["kubeflow"].exposures(),
        0,
        "the real install is quiet"
    );
    assert!(
        states["kubeflow-open"].exposures() > 0,
        "an open door with auth is noted"
    );
    let expected: Value = serde_json::from_slice(
        &std::fs::read(repo().join("tests/fixtures/admission/expected.json")).unwrap(),
    )
    .unwrap();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for case in expected["cases"].as_array().unwrap() {
        let name = case["review"].as_str().unwrap();
        let req = parse_review(&review(name)).unwrap();
        for (state, want) in case["states"].as_object().unwrap() {
            let v = engine.review(&req, &policy, &states[state.as_str()]);
            let mut rules: Vec<String> = v
                .findings
                .iter()
                .filter(|(f, _)| f.severity >= policy.deny_at_or_above)
                .map(|(f, _)| f.rule.clone())
                .collect();
            rules.sort();
            rules.dedup();
            let want_rules: Vec<String> = want["rules"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
                .collect();
            if v.allowed != want["allowed"].as_bool().unwrap() || rules != want_rules {
                wrong.push(format!(
                    "{name} in {state}: allowed {} {rules:?}, expected {want}: {:?}",
                    v.allowed, v.message
                ));
            }
            if !v.allowed {
                let m = v.message.as_deref().unwrap();
                assert!(m.starts_with("jackstop denied "), "{m}");
                assert!(m.contains("Safe way: "), "{m}");
            }
            checked += 1;
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(checked >= 20, "{checked}");
}

/// The benign corpora, each object created on the real Kubeflow install where the rest of its
/// corpus already is: nothing denied, except what `jackstop scan` finds there too (the KubeRay
/// samples publish Ray dashboards through Ingresses without authentication: true exposures,
/// the same ones).
#[test]
fn the_benign_corpora_are_admitted_without_a_denial() {
    let cat = Catalogue::builtin();
    let engine = Engine::new(cat);
    let policy = Policy::default();
    let base = objects(&[corpus("kubeflow-platform")]);
    let routing = jackstop_analysers::exposure::ROUTING_KINDS;
    let mut admitted = 0;
    for dir in [
        "kubeflow-platform",
        "kfp",
        "argo-examples",
        "kuberay",
        "notebooks-training",
    ] {
        let objs = objects(&[corpus(dir)]);
        let mut all: Vec<Object> = if dir == "kubeflow-platform" {
            Vec::new()
        } else {
            base.clone()
        };
        all.extend(objs.iter().cloned());
        let everything = ClusterState::new(all.clone(), cat);
        let scanned: std::collections::HashSet<(String, String, String)> =
            jackstop_analysers::run(&jackstop_analysers::all(), &all, cat)
                .into_iter()
                .map(|f| (f.rule, f.resource.kind, f.resource.name))
                .collect();
        let mut denied = 0;
        for o in objs {
            let (group, version) = match o.api_version.split_once('/') {
                Some((g, v)) => (g.to_string(), v.to_string()),
                None => (String::new(), o.api_version.clone()),
            };
            let body = serde_json::json!({
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {
                    "uid": "0",
                    "kind": {"group": group, "version": version, "kind": o.kind},
                    "resource": {"group": group, "version": version, "resource": format!("{}s", o.kind.to_ascii_lowercase())},
                    "name": o.name,
                    "namespace": o.namespace.clone().unwrap_or_default(),
                    "operation": "CREATE",
                    "userInfo": {"username": "kubernetes-admin", "groups": ["system:authenticated"]},
                    "object": o.body,
                    "dryRun": false
                }
            });
            let req = match parse_review(&serde_json::to_vec(&body).unwrap()) {
                Ok(r) => r,
                // Not an object the API server would accept (no name, say): not a review.
                Err(_) => continue,
            };
            // A way in is judged on the cluster without it, as when it is created.
            let without;
            let state = if routing.contains(&o.kind.as_str()) {
                without = ClusterState::new(
                    all.iter()
                        .filter(|x| {
                            !(x.kind == o.kind && x.namespace == o.namespace && x.name == o.name)
                        })
                        .cloned(),
                    cat,
                );
                &without
            } else {
                &everything
            };
            let v = engine.review(&req, &policy, state);
            admitted += 1;
            if v.allowed {
                continue;
            }
            denied += 1;
            for (f, _) in v
                .findings
                .iter()
                .filter(|(_, m)| *m == jackstop_admission::Mode::Enforce)
            {
                let key = (
                    f.rule.clone(),
                    f.resource.kind.clone(),
                    f.resource.name.clone(),
                );
                assert!(
                    scanned.contains(&key),
                    "{dir}: {} {:?}/{} denied for {key:?}, which a scan of {dir} does not find: {:?}",
                    o.kind, o.namespace, o.name, v.message
                );
            }
        }
        if dir != "kuberay" {
            assert_eq!(denied, 0, "{dir}");
        }
        eprintln!("{dir}: {denied} denied");
    }
    assert!(admitted > 500, "{admitted}");
}

/// A live cluster's view holds a Deployment and its ReplicaSet (its Pods, described by the
/// ReplicaSet's template, are not held). A new Pod of a ReplicaSet whose exposure is already
/// there (a replica restarted, a scale-up) is admitted: refusing it would break a running
/// workload without closing anything, also where the view has not caught up with its
/// controller yet. A Pod of its own is judged on the view: behind a public
/// Service that exposed nothing sensitive, a notebook is refused.
#[test]
fn a_new_replica_of_an_exposed_workload_adds_nothing() {
    use jackstop_core::{FieldLines, Source};
    use serde_json::json;
    let obj = |v: Value| Object::from_value(v, Source::default(), FieldLines::default()).unwrap();
    let container = json!([{"name": "lab", "image": "quay.io/jupyter/base-notebook",
        "args": ["start-notebook.py", "--IdentityProvider.token=''"]}]);
    let pod = |name: &str, owned: bool| {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "ml", "uid": format!("uid-{name}"),
                "labels": {"app": "lab", "pod-template-hash": "7d9f"}},
            "spec": {"containers": container}});
        if owned {
            p["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": "lab-7d9f", "uid": "uid-rs", "controller": true}]);
        }
        p
    };
    let view = vec![
        obj(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lab", "namespace": "ml"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "lab"}, "ports": [{"port": 80, "targetPort": 8888}]}}),
        ),
        obj(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "lab", "namespace": "ml", "uid": "uid-d"},
            "spec": {"selector": {"matchLabels": {"app": "lab"}}, "template": {"metadata": {"labels": {"app": "lab"}}, "spec": {"containers": container}}}}),
        ),
        obj(
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "lab-7d9f", "namespace": "ml", "uid": "uid-rs",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "lab", "uid": "uid-d", "controller": true}]},
            "spec": {"selector": {"matchLabels": {"app": "lab", "pod-template-hash": "7d9f"}},
                "template": {"metadata": {"labels": {"app": "lab", "pod-template-hash": "7d9f"}}, "spec": {"containers": container}}}}),
        ),
        obj(pod("lab-7d9f-aaaaa", true)),
        // A public model API: an open door to nothing sensitive.
        obj(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "ml"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "api"}, "ports": [{"port": 80, "targetPort": 8080}]}}),
        ),
        obj(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "ml"},
            "spec": {"selector": {"matchLabels": {"app": "api"}}, "template": {"metadata": {"labels": {"app": "api"}},
                "spec": {"containers": [{"name": "api", "image": "registry.example.com/fraud-model:1.4"}]}}}}),
        ),
    ];
    let cat = Catalogue::builtin();
    // The same cluster as a view that has not caught up with the Deployment and its
    // ReplicaSet yet (the watch lags their creation): only the open Service.
    let lagging = ClusterState::new(view[..1].to_vec(), cat);
    let state = ClusterState::new(view, cat);
    assert!(state.exposures() > 0);
    let engine = Engine::new(cat);
    let review_in = |p: Value, state: &ClusterState| {
        let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "name": p["metadata"]["name"], "namespace": "ml", "operation": "CREATE",
                "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
                "object": p, "dryRun": false}});
        let req = parse_review(body.to_string().as_bytes()).unwrap();
        engine.review(&req, &Policy::default(), state)
    };
    let create = |p: Value| review_in(p, &state);
    let v = create(pod("lab-7d9f-bbbbb", true));
    assert!(v.allowed, "a replica of what runs already: {:?}", v.message);
    // Where the view lags, a replica judged on it would open a door of its own: it is
    // judged alone, and admitted; the same Pod that no controller made is not.
    let v = review_in(pod("lab-7d9f-ccccc", true), &lagging);
    assert!(
        v.allowed,
        "a replica the view has no template for: {:?}",
        v.message
    );
    let v = review_in(pod("lab-unowned", false), &lagging);
    assert!(!v.allowed, "the same Pod of its own");
    // A notebook of its own that the model API's public Service routes to: a new door.
    let mut stray = pod("stray", false);
    stray["metadata"]["labels"] = json!({"app": "api"});
    let v = create(stray);
    assert!(!v.allowed, "a Pod behind the open Service");
    assert!(
        v.message.as_deref().unwrap().contains("JS-EXP-003"),
        "{:?}",
        v.message
    );
    // The same Pod where no Service routes to it: nothing to judge.
    let mut elsewhere = pod("stray", false);
    elsewhere["metadata"]["labels"] = json!({"app": "other"});
    // Another Jupyter behind the Service that exposes one already adds no door (the finding
    // is the Service's, and it is there).
    let v = create(pod("another", false));
    assert!(v.allowed, "{:?}", v.message);
    let v = create(elsewhere);
    assert!(v.allowed, "{:?}", v.message);
}

/// A review of `o`'s kind: `op` with `object` and `oldObject` as given.
fn review_of(
    o: &Object,
    op: &str,
    object: Option<&Value>,
    old: Option<&Value>,
) -> Option<jackstop_admission::Review> {
    let (group, version) = match o.api_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), o.api_version.clone()),
    };
    let name = object
        .or(old)
        .and_then(|b| b["metadata"]["name"].as_str())
        .unwrap_or("");
    let body = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "0", "kind": {"group": group, "version": version, "kind": o.kind},
            "resource": {"group": group, "version": version, "resource": format!("{}s", o.kind.to_ascii_lowercase())},
            "name": name, "namespace": o.namespace.clone().unwrap_or_default(), "operation": op,
            "userInfo": {"username": "kubernetes-admin"},
            "object": object, "oldObject": old, "dryRun": false}});
    parse_review(&serde_json::to_vec(&body).unwrap()).ok()
}

/// A verdict as the shortcut tests compare it: allowed, and each finding with its mode.
fn verdict_of(v: &jackstop_admission::Verdict) -> (bool, Vec<String>) {
    let mut f: Vec<String> = v
        .findings
        .iter()
        .map(|(f, m)| format!("{} {} {} {m:?}", f.rule, f.resource, f.title))
        .collect();
    f.sort();
    (v.allowed, f)
}

/// Judges `req` with the shortcut and with the whole walk, asserts both verdicts are the same,
/// and gives the exposure findings of the walk.
fn judged_both_ways(req: &jackstop_admission::Review, state: &ClusterState, what: &str) -> usize {
    let cat = Catalogue::builtin();
    let policy = Policy::default();
    let walked = Engine::new(cat)
        .walking_always()
        .review(req, &policy, state);
    assert_eq!(
        verdict_of(&Engine::new(cat).review(req, &policy, state)),
        verdict_of(&walked),
        "{what}"
    );
    walked
        .findings
        .iter()
        .filter(|(f, _)| f.rule.starts_with("JS-EXP"))
        .count()
}

fn object_of(v: Value) -> Option<Object> {
    Object::from_value(v, Default::default(), Default::default())
}

/// The corpora with the Kubeflow install, its gateway opened to the internet (so that paths
/// from outside lead behind it), and in each namespace of the corpus a public Service for the
/// labels `jackstop-test: on-a-path` and a Jupyter server no Service selects yet (labels
/// `jackstop-test: target`): a Service or workload moved onto them opens a door.
fn shortcut_views() -> Vec<(&'static str, Vec<Object>, Vec<Object>)> {
    use serde_json::json;
    let base = objects(&[corpus("kubeflow-platform")]);
    [
        "kubeflow-platform",
        "kfp",
        "argo-examples",
        "kuberay",
        "notebooks-training",
        "miners",
    ]
    .into_iter()
    .map(|dir| {
        let objs = objects(&[corpus(dir)]);
        let mut all: Vec<Object> = base.clone();
        if dir != "kubeflow-platform" {
            all.extend(objs.iter().cloned());
        }
        for o in all.iter_mut() {
            if o.kind == "Service" && o.name == "istio-ingressgateway" {
                o.body["spec"]["type"] = "LoadBalancer".into();
            }
        }
        let namespaces: std::collections::BTreeSet<String> = objs
            .iter()
            .map(|o| o.effective_namespace().to_string())
            .collect();
        for ns in namespaces {
            all.extend(object_of(json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "jackstop-test-public", "namespace": ns},
                "spec": {"type": "LoadBalancer", "selector": {"jackstop-test": "on-a-path"},
                    "ports": [{"port": 80}]}})));
            all.extend(object_of(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "jackstop-test-lab", "namespace": ns},
                "spec": {"selector": {"matchLabels": {"jackstop-test": "target"}},
                    "template": {"metadata": {"labels": {"jackstop-test": "target"}},
                        "spec": {"containers": [{"name": "lab", "image": "quay.io/jupyter/base-notebook",
                            "args": ["start-notebook.py", "--IdentityProvider.token=''"],
                            "ports": [{"containerPort": 8888}]}]}}}})));
        }
        (dir, objs, all)
    })
    .collect()
}

/// A workload on no path (no Service selects it, no host port, not KubeRay's) is judged
/// without walking the whole view: the shortcut must never change a verdict. Every workload
/// of the corpora (the miners' too) is judged both ways, created as it is under a new name,
/// created and changed with labels that a public Service of its namespace selects, and with
/// labels nothing selects, and deleted, and as a controller's replica (judged alone) without
/// and with a host port; the verdicts and findings must agree.
#[test]
fn workloads_on_no_path_are_judged_as_the_whole_walk_judges_them() {
    use jackstop_analysers::exposure::{Prepared, Selectors, ROUTING_KINDS};
    use jackstop_analysers::Analyser;
    use serde_json::json;
    let cat = Catalogue::builtin();
    let workload_kinds = jackstop_analysers::exposure::ExposureAnalyser.kinds();
    // Every `labels` map of every `metadata`: the object's own and its pod templates'.
    fn relabel(v: &mut Value, to: &str) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if k == "metadata" {
                        if let Some(l) = x.get_mut("labels") {
                            *l = json!({"jackstop-test": to});
                        }
                    }
                    relabel(x, to);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| relabel(x, to)),
            _ => {}
        }
    }
    // The first container of each `containers` list publishes its ports on the node.
    fn host_port(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    match x.as_array_mut().and_then(|a| a.first_mut()) {
                        Some(c) if k == "containers" && c.is_object() => {
                            c["ports"] = json!([{"containerPort": 8888, "hostPort": 8888}]);
                        }
                        _ => host_port(x),
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(host_port),
            _ => {}
        }
    }
    let (mut judged, mut on_no_path, mut new_doors) = (0, 0, 0);
    for (dir, objs, all) in shortcut_views() {
        let state = ClusterState::new(all.clone(), cat);
        let selectors = Selectors::of(all.iter());
        for o in objs.iter().filter(|o| {
            workload_kinds.contains(&o.kind.as_str()) && !ROUTING_KINDS.contains(&o.kind.as_str())
        }) {
            let named = |v: &Value, suffix: &str| {
                let mut v = v.clone();
                v["metadata"]["name"] = format!("{}-{suffix}", o.name).into();
                v
            };
            let labelled = |to: &str| {
                let mut v = o.body.clone();
                relabel(&mut v, to);
                v
            };
            let (public, nowhere) = (labelled("on-a-path"), labelled("on-no-path"));
            // Made by a controller (judged alone), without and with a host port.
            let mut controlled = named(&o.body, "replica");
            controlled["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1",
                "kind": "ReplicaSet", "name": "rs", "uid": "uid-rs", "controller": true}]);
            let mut on_host = controlled.clone();
            host_port(&mut on_host);
            let cases = [
                ("CREATE", Some(named(&o.body, "copy")), None),
                ("CREATE", Some(named(&public, "public")), None),
                ("CREATE", Some(named(&nowhere, "nowhere")), None),
                ("UPDATE", Some(public.clone()), Some(&o.body)),
                ("UPDATE", Some(nowhere.clone()), Some(&o.body)),
                ("UPDATE", Some(nowhere), Some(&public)),
                ("DELETE", None, Some(&o.body)),
                ("CREATE", Some(controlled), None),
                ("CREATE", Some(on_host), None),
            ];
            for (op, object, old) in cases {
                let Some(req) = review_of(o, op, object.as_ref(), old) else {
                    continue;
                };
                if let Some(x) = object.and_then(object_of) {
                    if !Prepared::of(&x).on_a_path(&x, &selectors) {
                        on_no_path += 1;
                    }
                }
                let what = format!("{dir}: {op} of {} {:?}/{}", o.kind, o.namespace, o.name);
                new_doors += judged_both_ways(&req, &state, &what);
                judged += 1;
            }
        }
    }
    // Both ways are exercised: workloads on no path, and workloads that open a door.
    assert!(judged > 600, "{judged}");
    assert!(
        on_no_path > 100 && on_no_path < judged,
        "{on_no_path} of {judged}"
    );
    assert!(new_doors > 20, "{new_doors}");
    eprintln!("{judged} reviews judged both ways: {on_no_path} of objects on no path, {new_doors} exposure findings");
}

/// A Service that is no way in and that no walk looks for is judged without walking the whole
/// view: the shortcut must never change a verdict. Every Service of the corpora is judged both
/// ways: created as it is under a new name, changed to select the Jupyter server no Service
/// selected, changed to a LoadBalancer, and deleted.
#[test]
fn services_on_no_path_are_judged_as_the_whole_walk_judges_them() {
    let cat = Catalogue::builtin();
    let (mut judged, mut new_doors) = (0, 0);
    for (dir, objs, all) in shortcut_views() {
        let state = ClusterState::new(all, cat);
        for o in objs
            .iter()
            .filter(|o| o.kind == "Service" && o.api_version == "v1")
        {
            let mut copy = o.body.clone();
            copy["metadata"]["name"] = format!("{}-copy", o.name).into();
            let mut retargeted = o.body.clone();
            retargeted["spec"]["selector"] = serde_json::json!({"jackstop-test": "target"});
            let mut public = retargeted.clone();
            public["spec"]["type"] = "LoadBalancer".into();
            let cases = [
                ("CREATE", Some(copy), None),
                ("UPDATE", Some(retargeted), Some(&o.body)),
                ("UPDATE", Some(public), Some(&o.body)),
                ("DELETE", None, Some(&o.body)),
            ];
            for (op, object, old) in cases {
                let Some(req) = review_of(o, op, object.as_ref(), old) else {
                    continue;
                };
                let what = format!("{dir}: {op} of Service {:?}/{}", o.namespace, o.name);
                new_doors += judged_both_ways(&req, &state, &what);
                judged += 1;
            }
        }
    }
    assert!(judged > 150, "{judged}");
    assert!(new_doors > 20, "{new_doors}");
    eprintln!("{judged} Service reviews judged both ways, {new_doors} exposure findings");
}

/// The view's half of the workload check: where the view still holds a workload on a path
/// (a public Service selects it) while the request's `oldObject`, newer than the view, shows
/// it off that path, the change is walked all the same. Here the walk finds a door: without
/// its workload, the public Service `argo-server` is taken by its name for an Argo server.
#[test]
fn a_workload_the_view_holds_on_a_path_is_walked_even_when_the_request_has_it_off() {
    use jackstop_core::{FieldLines, Source};
    use serde_json::json;
    let obj = |v: Value| Object::from_value(v, Source::default(), FieldLines::default()).unwrap();
    let deployment = |app: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "ci"},
            "spec": {"selector": {"matchLabels": {"app": app}}, "template": {"metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}})
    };
    let view = vec![
        obj(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "argo-server", "namespace": "ci"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        ),
        obj(deployment("web")),
    ];
    let state = ClusterState::new(view.clone(), Catalogue::builtin());
    let req = review_of(
        &view[1],
        "UPDATE",
        Some(&deployment("moved-again")),
        Some(&deployment("moved")),
    )
    .unwrap();
    let doors = judged_both_ways(&req, &state, "the Deployment moved off the Service");
    assert!(
        doors > 0,
        "the walk finds the door the shortcut must not skip"
    );
}

/// An object being deleted is still judged when its content changes (finalizers hold it, and
/// the API server takes the change); removing its finalizers alone is allowed, so it can go.
#[test]
fn a_terminating_object_is_judged_when_its_content_changes() {
    let cat = Catalogue::builtin();
    let state = ClusterState::new(objects(&[corpus("kubeflow-platform")]), cat);
    let miner: Value = serde_json::from_slice::<Value>(&review("miner-deployment-cpu")).unwrap()
        ["request"]["object"]
        .clone();
    let mut held = miner.clone();
    held["metadata"]["deletionTimestamp"] = "2021-06-08T04:00:00Z".into();
    held["metadata"]["finalizers"] = serde_json::json!(["example.com/cleanup"]);
    let mut benign = held.clone();
    benign["spec"]["template"]["spec"]["containers"][0]["args"] =
        serde_json::json!(["python train.py --epochs 10"]);
    let o = object_of(miner).unwrap();
    let engine = Engine::new(cat);
    let policy = Policy::default();
    // The miner written into a Deployment that finalizers hold: denied.
    let req = review_of(&o, "UPDATE", Some(&held), Some(&benign)).unwrap();
    let v = engine.review(&req, &policy, &state);
    assert!(!v.allowed, "{:?}", v.findings);
    // Its finalizer removed, nothing else changed: allowed.
    let mut gone = held.clone();
    gone["metadata"]["finalizers"] = serde_json::json!([]);
    let req = review_of(&o, "UPDATE", Some(&gone), Some(&held)).unwrap();
    assert!(engine.review(&req, &policy, &state).allowed);
}
