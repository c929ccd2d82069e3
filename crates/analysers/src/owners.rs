//! Owner references: in a live cluster a Deployment's ReplicaSets and Pods are read too, and
//! each would repeat the Deployment's findings. Objects whose controller is also in the input are
//! analysed through it; what they add (that a pod runs, where, since when) becomes evidence on
//! the top-level object's findings.

use jackstop_core::{Finding, Object, ResourceRef};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;

/// Most live objects named in one finding's evidence.
const MAX_LISTED: usize = 5;

/// The input without the objects whose controller is in it, and for each top-level object the
/// live objects folded into it.
pub struct Folded<'a> {
    pub objects: Cow<'a, [Object]>,
    pub under: HashMap<ResourceRef, Vec<String>>,
}

/// The controller, else the first owner.
fn controller(o: &Object) -> Option<&Value> {
    o.controller_ref().or_else(|| {
        o.at("metadata.ownerReferences")
            .and_then(Value::as_array)?
            .first()
    })
}

/// Folds controlled objects into their top-level controllers (manifests, which rarely carry
/// owner references, come back borrowed and unchanged).
pub fn fold(objects: &[Object]) -> Folded<'_> {
    let mut by_uid: HashMap<&str, usize> = HashMap::new();
    let mut by_name: HashMap<(&str, &str, &str), usize> = HashMap::new();
    for (i, o) in objects.iter().enumerate() {
        if let Some(uid) = o.str_at("metadata.uid") {
            by_uid.insert(uid, i);
        }
        by_name.insert(
            (o.kind.as_str(), o.effective_namespace(), o.name.as_str()),
            i,
        );
    }
    let parent = |o: &Object| -> Option<usize> {
        let r = controller(o)?;
        if let Some(i) = r
            .get("uid")
            .and_then(Value::as_str)
            .and_then(|u| by_uid.get(u))
        {
            return Some(*i);
        }
        let kind = r.get("kind")?.as_str()?;
        let name = r.get("name")?.as_str()?;
        by_name.get(&(kind, o.effective_namespace(), name)).copied()
    };
    let parents: Vec<Option<usize>> = objects.iter().map(parent).collect();
    if parents.iter().all(Option::is_none) {
        return Folded {
            objects: Cow::Borrowed(objects),
            under: HashMap::new(),
        };
    }
    let mut under: HashMap<ResourceRef, Vec<String>> = HashMap::new();
    let mut keep = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        if parents[i].is_none() {
            keep.push(o.clone());
            continue;
        }
        // The top of the chain (bounded: owner cycles are malformed input).
        let mut top = i;
        for _ in 0..8 {
            match parents[top] {
                Some(p) if p != top => top = p,
                _ => break,
            }
        }
        if o.kind == "Pod" {
            under
                .entry(objects[top].resource())
                .or_default()
                .push(pod_summary(o));
        }
    }
    Folded {
        objects: Cow::Owned(keep),
        under,
    }
}

/// `Pod ns/name (Running on node-1, started 2021-06-08T03:14:09Z, 3 restarts)`.
fn pod_summary(p: &Object) -> String {
    let mut facts = Vec::new();
    if let Some(phase) = p.str_at("status.phase") {
        facts.push(phase.to_string());
    }
    if let Some(node) = p.str_at("spec.nodeName") {
        facts.push(format!("on {node}"));
    }
    if let Some(t) = p.str_at("status.startTime") {
        facts.push(format!("started {t}"));
    }
    let restarts: u64 = p
        .at("status.containerStatuses")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("restartCount").and_then(Value::as_u64))
                .sum()
        })
        .unwrap_or(0);
    if restarts > 0 {
        facts.push(format!("{restarts} restarts"));
    }
    if facts.is_empty() {
        p.display()
    } else {
        format!("{} ({})", p.display(), facts.join(", "))
    }
}

/// Adds to each finding on a top-level object the live pods it runs as.
pub fn annotate(findings: &mut [Finding], under: &HashMap<ResourceRef, Vec<String>>) {
    if under.is_empty() {
        return;
    }
    for f in findings {
        if let Some(pods) = under.get(&f.resource) {
            let listed: Vec<&str> = pods.iter().take(MAX_LISTED).map(String::as_str).collect();
            let more = pods.len().saturating_sub(MAX_LISTED);
            f.evidence.push(format!(
                "{}runs as {}{}",
                jackstop_core::changes::LIVE_EVIDENCE,
                listed.join("; "),
                if more > 0 {
                    format!("; and {more} more pod(s)")
                } else {
                    String::new()
                }
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jackstop_core::{FieldLines, Source};
    use serde_json::json;

    fn obj(v: Value) -> Object {
        Object::from_value(v, Source::default(), FieldLines::default()).unwrap()
    }

    #[test]
    fn pods_and_replica_sets_fold_into_their_deployment() {
        let objects = vec![
            obj(
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "a", "uid": "u-d"}}),
            ),
            obj(
                json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "d-1", "namespace": "a", "uid": "u-rs",
                "ownerReferences": [{"kind": "Deployment", "name": "d", "uid": "u-d", "controller": true}]}}),
            ),
            obj(
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "d-1-x", "namespace": "a",
                "ownerReferences": [{"kind": "ReplicaSet", "name": "d-1", "uid": "u-rs", "controller": true}]},
                "spec": {"nodeName": "node-1"}, "status": {"phase": "Running", "startTime": "2021-06-08T03:14:09Z",
                "containerStatuses": [{"restartCount": 3}]}}),
            ),
            // Owned by something not in the input: kept (it is all we have).
            obj(
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "orphan", "namespace": "a",
                "ownerReferences": [{"kind": "ReplicaSet", "name": "gone", "uid": "u-gone", "controller": true}]}}),
            ),
        ];
        let f = fold(&objects);
        let names: Vec<&str> = f.objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["d", "orphan"]);
        let pods = &f.under[&objects[0].resource()];
        assert_eq!(
            pods,
            &["Pod a/d-1-x (Running, on node-1, started 2021-06-08T03:14:09Z, 3 restarts)"]
        );
    }

    #[test]
    fn manifests_without_owners_are_borrowed() {
        let objects = vec![obj(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}),
        )];
        assert!(matches!(fold(&objects).objects, Cow::Borrowed(_)));
    }
}
