//! The cluster as the webhook knows it: the objects the exposure analysis reads (ways in,
//! what authenticates them, the workloads behind them) and the namespaces' labels, with the
//! exposure findings they make now. Rebuilt from a watch when the cluster changes; shared,
//! read-only, by every request.

use jackstop_analysers::exposure::{ExposureAnalyser, Prepared};
use jackstop_analysers::Analyser;
use jackstop_catalogue::Catalogue;
use jackstop_core::{Finding, Object};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

pub struct ClusterState {
    pub(crate) objects: Vec<Object>,
    /// What the exposure analysis read from each object (same order as `objects`): a review
    /// of a Service walks the whole view, and must not reread every workload to do it.
    pub(crate) prepared: Vec<Prepared>,
    namespaces: HashMap<String, Map<String, Value>>,
    /// The exposure findings now, by [`key`].
    pub(crate) baseline: HashSet<String>,
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
        }
    }

    /// The kinds a view keeps: those the exposure analysis reads, and Namespaces (their labels
    /// decide exemptions). What a watch or a reader of manifests needs to fetch, no more.
    pub fn kinds() -> Vec<&'static str> {
        let mut k: Vec<&'static str> = ExposureAnalyser.kinds().to_vec();
        k.push("Namespace");
        k
    }

    /// From objects of any kinds; those the exposure analysis does not read are dropped.
    pub fn new(objects: impl IntoIterator<Item = Object>, catalogue: &Catalogue) -> ClusterState {
        let exposure = ExposureAnalyser;
        let kinds = exposure.kinds();
        let mut namespaces = HashMap::new();
        let mut kept = Vec::new();
        for o in objects {
            if o.kind == "Namespace" && o.api_version == "v1" {
                let labels = o.labels().cloned().unwrap_or_default();
                namespaces.insert(o.name.clone(), labels);
            } else if kinds.contains(&o.kind.as_str()) {
                // Lines of fields are for reports on files, and the exposure analysis reads
                // neither status nor managed fields (which a live cluster's objects carry
                // and manifests do not): the view holds without them.
                let mut o = o;
                o.fields = Default::default();
                if let Some(body) = o.body.as_object_mut() {
                    body.remove("status");
                    if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
                        meta.remove("managedFields");
                    }
                }
                kept.push(o);
            }
        }
        let prepared: Vec<Prepared> = kept.iter().map(Prepared::of).collect();
        let baseline = exposure
            .analyse_prepared(kept.iter().zip(prepared.iter().map(Some)), catalogue)
            .iter()
            .map(key)
            .collect();
        ClusterState {
            objects: kept,
            prepared,
            namespaces,
            baseline,
        }
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
