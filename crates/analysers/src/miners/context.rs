//! ML context: what makes a miner worse. The Kubeflow campaigns hid XMRig and Ethminer in
//! TensorFlow images, GPU pods, notebooks and pipeline runs in profile namespaces, where an
//! operator expects heavy compute and does not look twice.

use crate::workloads::Runnable;
use jackstop_catalogue::indicators::IndicatorSet;
use jackstop_core::Object;
use std::collections::BTreeSet;

/// Kinds the extractor reads that are not ML platform resources: plain Kubernetes workloads,
/// generic CI (Tekton) and ConfigMaps. Every other kind it reads (notebooks, pipelines,
/// training jobs, Katib, Ray, KServe, Spark) only ML platforms create, so a miner in one is
/// disguised as ML work.
const PLAIN_KINDS: &[&str] = &[
    "Pod",
    "PodTemplate",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "ReplicationController",
    "Job",
    "CronJob",
    "JobSet",
    "Task",
    "TaskRun",
    "Pipeline",
    "PipelineRun",
    "ConfigMap",
];

fn is_ml_kind(kind: &str) -> bool {
    crate::workloads::KINDS.contains(&kind) && !PLAIN_KINDS.contains(&kind)
}

/// Kubeflow profile namespaces known from the input: Profiles, and Namespaces the profile
/// controller labelled or annotated.
#[derive(Debug, Default)]
pub struct ProfileNamespaces(BTreeSet<String>);

impl ProfileNamespaces {
    pub fn from_objects(objects: &[Object]) -> ProfileNamespaces {
        let mut set = BTreeSet::new();
        for o in objects {
            match o.kind.as_str() {
                "Profile" if o.group() == "kubeflow.org" => {
                    set.insert(o.name.clone());
                }
                "Namespace" => {
                    let labelled = o.labels().is_some_and(|l| {
                        l.get("app.kubernetes.io/part-of").and_then(|v| v.as_str())
                            == Some("kubeflow-profile")
                    });
                    // The profile controller owns its namespaces through a Profile.
                    let owned_by_profile = o
                        .at("metadata.ownerReferences")
                        .and_then(|v| v.as_array())
                        .is_some_and(|a| {
                            a.iter()
                                .any(|r| r.get("kind").and_then(|k| k.as_str()) == Some("Profile"))
                        });
                    if labelled || owned_by_profile {
                        set.insert(o.name.clone());
                    }
                }
                _ => {}
            }
        }
        ProfileNamespaces(set)
    }

    pub fn contains(&self, ns: &str) -> bool {
        self.0.contains(ns)
    }
}

/// Why a runnable is ML work, one reason per line; empty when it is not.
pub fn ml_reasons(
    r: &Runnable<'_>,
    set: &IndicatorSet,
    profiles: &ProfileNamespaces,
) -> Vec<String> {
    let mut why = Vec::new();
    if let Some(image) = &r.image {
        if let Some(family) = set.ml_image(image) {
            why.push(format!("runs in a {family} image ({image})"));
        }
    }
    if r.gpu {
        why.push("requests GPUs".into());
    }
    if is_ml_kind(&r.owner.kind) {
        why.push(format!("is a {} (an ML platform resource)", r.owner.kind));
    }
    if profiles.contains(&r.namespace) {
        why.push(format!(
            "runs in Kubeflow profile namespace {}",
            r.namespace
        ));
    }
    why
}

/// Whether an image is an ML image with a mutable tag (`:latest`, or no tag at all), as the
/// 2021 wave's `tensorflow/tensorflow:latest` and `:latest-gpu`.
pub fn ml_latest(image: &str, set: &IndicatorSet) -> bool {
    if set.ml_image(image).is_none() || image.contains('@') {
        return false;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        None => true,
        Some((_, tag)) => tag == "latest" || tag.starts_with("latest-"),
    }
}
