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
                // Lines of fields are for reports on files; a review never needs them.
                let mut o = o;
                o.fields = Default::default();
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
