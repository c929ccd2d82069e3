//! The cluster as the webhook knows it: the objects the exposure analysis reads (ways in,
//! what authenticates them, the workloads behind them) and the namespaces' labels, with the
//! exposure findings they make now. Rebuilt from a watch when the cluster changes; shared,
//! read-only, by every request.

use jackstop_analysers::exposure::{
    is_way_in, ExposureAnalyser, Prepared, Selectors, ROUTING_KINDS,
};
use jackstop_analysers::Analyser;
use jackstop_catalogue::Catalogue;
use jackstop_core::{Finding, Object};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub struct ClusterState {
    /// Shared with the watch that feeds the view, and with the view before and after it: a
    /// rebuild copies pointers, not objects.
    pub(crate) objects: Vec<Arc<Object>>,
    /// What the exposure analysis read from each object (same order as `objects`): a review
    /// of a Service walks the whole view, and must not reread every workload to do it.
    pub(crate) prepared: Vec<Prepared>,
    namespaces: HashMap<String, Map<String, Value>>,
    /// The exposure findings now, by [`key`].
    pub(crate) baseline: HashSet<String>,
    /// What routes to workloads: a workload no Service selects (and with no host port) is on
    /// no path, and a change to it cannot change an exposure.
    pub(crate) selectors: Selectors,
    /// The workloads of the view that are on a path ([`Prepared::on_a_path`]), as (kind,
    /// namespace, name): removing or changing one can change what its Services lead to.
    pub(crate) on_a_path: HashSet<(String, Option<String>, String)>,
    /// The Services the walk of the view looks for, found or not, as (namespace, name).
    pub(crate) looked_up: HashSet<(String, String)>,
}

/// What neither the view nor a review keeps of an object: this top-level field, and this
/// field of its metadata (no rule reads them; a live cluster sends both with every object).
pub(crate) const UNREAD: &str = "status";
pub(crate) const UNREAD_METADATA: &str = "managedFields";

/// The controllers whose pod template is what their Pods run (the API server and the
/// controller keep them equal, labels aside: a template hash, a revision, a Pod's own name).
const TEMPLATED_BY: &[(&str, &str)] = &[
    ("apps/v1", "ReplicaSet"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("batch/v1", "Job"),
    ("v1", "ReplicationController"),
];

/// Whether a Pod's controller is one whose template describes it.
fn templated(pod: &Object) -> bool {
    pod.controller_ref().is_some_and(|r| {
        let field = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
        TEMPLATED_BY.contains(&(field("apiVersion"), field("kind")))
    })
}

/// What makes two findings the same finding (before and after a change).
pub(crate) fn key(f: &Finding) -> String {
    format!("{}\u{1f}{}\u{1f}{}", f.rule, f.resource, f.title)
}

impl ClusterState {
    /// No cluster: only what a request carries is judged.
    pub fn empty() -> ClusterState {
        ClusterState {
            objects: Vec::new(),
            prepared: Vec::new(),
            namespaces: HashMap::new(),
            baseline: HashSet::new(),
            selectors: Selectors::default(),
            on_a_path: HashSet::new(),
            looked_up: HashSet::new(),
        }
    }

    /// The kinds a view keeps: those the exposure analysis reads, and Namespaces (their labels
    /// decide exemptions). What a watch or a reader of manifests needs to fetch, no more.
    pub fn kinds() -> Vec<&'static str> {
        let mut k: Vec<&'static str> = ExposureAnalyser.kinds().to_vec();
        k.push("Namespace");
        k
    }

    /// Drops what the view never reads from an object: the lines of its fields (for reports on
    /// files), and `status` and `metadata.managedFields`, which a live cluster's objects carry
    /// (often half of a Pod) and the exposure analysis does not read. Whether the object is
    /// worth holding at all: a Pod that a ReplicaSet, StatefulSet, DaemonSet, Job or
    /// ReplicationController controls is described by that controller's template, which the
    /// view holds (those kinds are among [`ClusterState::kinds`]); in a large cluster such
    /// Pods are nearly all of the objects. A watch that feeds the view trims each object as it
    /// arrives (`jackstop_cluster::watch::ClusterWatch::trim_with`).
    pub fn trim(o: &mut Object) -> bool {
        if o.kind == "Pod" && o.api_version == "v1" && templated(o) {
            return false;
        }
        o.fields = Default::default();
        if let Some(body) = o.body.as_object_mut() {
            body.remove(UNREAD);
            if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove(UNREAD_METADATA);
            }
        }
        true
    }

    /// From objects of any kinds; those the exposure analysis does not read are dropped.
    pub fn new(objects: impl IntoIterator<Item = Object>, catalogue: &Catalogue) -> ClusterState {
        let shared: Vec<Arc<Object>> = objects
            .into_iter()
            .filter_map(|mut o| ClusterState::trim(&mut o).then(|| Arc::new(o)))
            .collect();
        ClusterState::shared(&shared, &ClusterState::empty(), catalogue)
    }

    /// From objects held elsewhere (trimmed already, by [`ClusterState::trim`]), sharing them.
    /// What was read from an object that `previous` holds too (the same allocation: a watch
    /// replaces an object only when it changes) is taken from `previous`, not read again.
    pub fn shared(
        objects: &[Arc<Object>],
        previous: &ClusterState,
        catalogue: &Catalogue,
    ) -> ClusterState {
        let exposure = ExposureAnalyser;
        let kinds = exposure.kinds();
        let before: HashMap<*const Object, &Prepared> = previous
            .objects
            .iter()
            .map(Arc::as_ptr)
            .zip(previous.prepared.iter())
            .collect();
        let mut namespaces = HashMap::new();
        let mut kept = Vec::new();
        let mut prepared = Vec::new();
        for o in objects {
            if o.kind == "Namespace" && o.api_version == "v1" {
                let labels = o.labels().cloned().unwrap_or_default();
                namespaces.insert(o.name.clone(), labels);
            } else if kinds.contains(&o.kind.as_str()) {
                prepared.push(match before.get(&Arc::as_ptr(o)) {
                    Some(p) => (*p).clone(),
                    None => Prepared::of(o),
                });
                kept.push(o.clone());
            }
        }
        let (found, looked_up) = exposure.analyse_noting_services(
            kept.iter().map(|o| &**o).zip(prepared.iter().map(Some)),
            catalogue,
        );
        let baseline = found.iter().map(key).collect();
        let selectors = Selectors::of(kept.iter().map(|o| &**o));
        let on_a_path = kept
            .iter()
            .zip(&prepared)
            .filter(|(o, p)| {
                !ROUTING_KINDS.contains(&o.kind.as_str()) && p.on_a_path(o, &selectors)
            })
            .map(|(o, _)| (o.kind.clone(), o.namespace.clone(), o.name.clone()))
            .collect();
        ClusterState {
            objects: kept,
            prepared,
            namespaces,
            baseline,
            selectors,
            on_a_path,
            looked_up,
        }
    }

    /// Whether a change to this Service can change an exposure of the view: as the request has
    /// it, it is a way in itself, or the walk looks for a Service of its namespace and name (a
    /// route, a gateway, a proxy's upstream names it; the view's own copy, when a way in, looks
    /// for itself). How the request says it was does not matter: the change is judged on the
    /// view, without the view's copy.
    pub(crate) fn service_may_change_exposure(
        &self,
        ns: &str,
        name: &str,
        now: Option<&Object>,
        catalogue: &Catalogue,
    ) -> bool {
        now.is_some_and(|o| is_way_in(o, catalogue))
            || self.looked_up.contains(&(ns.to_string(), name.to_string()))
    }

    /// Whether a change to this workload can change an exposure of the view: as the request
    /// has it, or as the view holds it, it is on a path.
    pub(crate) fn may_change_exposure(
        &self,
        kind: &str,
        ns: Option<&str>,
        name: &str,
        now: Option<(&Object, &Prepared)>,
    ) -> bool {
        now.is_some_and(|(o, p)| p.on_a_path(o, &self.selectors))
            || self.on_a_path.contains(&(
                kind.to_string(),
                ns.map(str::to_string),
                name.to_string(),
            ))
    }

    /// Objects held (namespaces aside).
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The labels of a namespace, when it is known.
    pub fn namespace_labels(&self, ns: &str) -> Option<&Map<String, Value>> {
        self.namespaces.get(ns)
    }

    /// Exposure findings now.
    pub fn exposures(&self) -> usize {
        self.baseline.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jackstop_core::{FieldLines, Source};
    use serde_json::json;
    use std::sync::Arc;

    fn object(body: Value) -> Object {
        let source = Source {
            path: Arc::from("cluster"),
            line: 0,
            template: None,
        };
        Object::from_value(body, source, FieldLines::default()).unwrap()
    }

    /// A view built from shared objects judges as one built from copies, and reads again only
    /// the objects it did not hold before.
    #[test]
    fn a_shared_view_reuses_what_it_read_before() {
        let install = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/kubeflow-incident");
        let (inputs, _) = jackstop_manifests::collect_inputs(&[install.display().to_string()], &[]);
        let read = jackstop_manifests::read_inputs(&inputs, &Default::default());
        let catalogue = Catalogue::builtin();
        let copied = ClusterState::new(read.objects.clone(), catalogue);
        assert!(copied.exposures() > 0, "the fixture must expose something");
        let shared: Vec<Arc<Object>> = read
            .objects
            .into_iter()
            .filter_map(|mut o| ClusterState::trim(&mut o).then(|| Arc::new(o)))
            .collect();
        let first = ClusterState::shared(&shared, &ClusterState::empty(), catalogue);
        assert_eq!(first.baseline, copied.baseline);
        // The same objects again: every one is the previous view's, and so is what was read.
        let again = ClusterState::shared(&shared, &first, catalogue);
        assert_eq!(again.baseline, first.baseline);
        for (a, b) in again.objects.iter().zip(&first.objects) {
            assert!(Arc::ptr_eq(a, b));
        }
        for (a, b) in again.prepared.iter().zip(&first.prepared) {
            assert!(a.same_as(b), "read again");
        }
    }

    /// Pods their controller's template describes are not held; the exposure through them is
    /// still found, through the template. Pods of other controllers, and bare Pods, are held.
    #[test]
    fn pods_a_held_template_describes_are_not_held() {
        let container = json!([{"name": "lab", "image": "quay.io/jupyter/base-notebook",
            "args": ["start-notebook.py", "--IdentityProvider.token=''"]}]);
        let pod = |name: &str, owner: Option<(&str, &str)>| {
            let mut p = json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "ml", "labels": {"app": "lab"}},
                "spec": {"containers": container}, "status": {"phase": "Running"}});
            if let Some((api, kind)) = owner {
                p["metadata"]["ownerReferences"] = json!([{"apiVersion": api, "kind": kind, "name": "x", "uid": "u", "controller": true}]);
            }
            object(p)
        };
        let svc = object(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lab", "namespace": "ml"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "lab"}, "ports": [{"port": 80, "targetPort": 8888}]}}),
        );
        let rs = object(
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "x", "namespace": "ml", "uid": "u"},
            "spec": {"selector": {"matchLabels": {"app": "lab"}}, "template": {"metadata": {"labels": {"app": "lab"}}, "spec": {"containers": container}}}}),
        );
        let state = ClusterState::new(
            vec![
                svc.clone(),
                rs,
                pod("rs-pod", Some(("apps/v1", "ReplicaSet"))),
                pod("job-pod", Some(("batch/v1", "Job"))),
                pod("wf-pod", Some(("argoproj.io/v1alpha1", "Workflow"))),
                pod("bare", None),
            ],
            Catalogue::builtin(),
        );
        let held: Vec<&str> = state.objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(held, ["lab", "x", "wf-pod", "bare"]);
        // The ReplicaSet alone exposes JupyterLab: found through its template.
        let only_rs = ClusterState::new(
            vec![svc, pod("rs-pod", Some(("apps/v1", "ReplicaSet")))],
            Catalogue::builtin(),
        );
        assert_eq!(only_rs.exposures(), 0, "no template held, no Pod held");
        assert!(state.exposures() >= 1);
    }

    /// What a live cluster's objects carry beyond their spec is not held, and judges the same.
    #[test]
    fn the_view_holds_no_status_or_managed_fields() {
        let gateway = |extra: bool| {
            let mut svc = json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "ray", "namespace": "ml"},
                "spec": {"type": "LoadBalancer", "selector": {"app": "ray"}, "ports": [{"port": 8265}]},
            });
            let ray = json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "ray", "namespace": "ml"},
                "spec": {"template": {"metadata": {"labels": {"app": "ray"}}, "spec": {"containers": [
                    {"name": "head", "image": "rayproject/ray:2.9.0", "command": ["ray", "start", "--head", "--dashboard-host=0.0.0.0"], "ports": [{"containerPort": 8265}]}
                ]}}},
            });
            let mut objects = vec![svc.clone(), ray];
            if extra {
                svc["status"] = json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}});
                svc["metadata"]["managedFields"] =
                    json!([{"manager": "kubectl", "operation": "Update"}]);
                objects[0] = svc;
            }
            ClusterState::new(objects.into_iter().map(object), Catalogue::builtin())
        };
        let (plain, live) = (gateway(false), gateway(true));
        assert!(live.exposures() > 0, "the fixture must expose something");
        assert_eq!(live.baseline, plain.baseline);
        for o in &live.objects {
            assert!(o.at("status").is_none(), "{}", o.display());
            assert!(o.at("metadata.managedFields").is_none(), "{}", o.display());
        }
    }
}
