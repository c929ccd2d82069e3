//! Burst detection: many workloads created at once.
//!
//! The 2021 Kubeflow wave scanned its victims first and then created TensorFlow-image miners
//! everywhere at the same moment. In one cluster that shows as workloads whose creation times
//! (`metadata.creationTimestamp`, else the earliest `managedFields[].time`) fall in one short
//! window and spread over several namespaces, or as many workloads of one image at once.
//!
//! Installers and GitOps rollouts also create many objects at once, in their own namespaces:
//! platform namespaces (kube-system, istio-system, kubeflow, ...) are not counted, and objects
//! owned by another object (a ReplicaSet's pods) count once, through their owner.

use jackstop_core::{Finding, Location, Object, Severity};
use jiff::Timestamp;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

pub const RULE: &str = "JS-BUR-001";

/// Most members listed in one finding's `detail` (the evidence lists a dozen).
const MAX_DETAIL_MEMBERS: usize = 50;

/// When a set of creations is a burst. Every figure is a setting (`jackstop scan --burst-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BurstSettings {
    /// Creations this close together (seconds) belong to one burst.
    pub window_secs: i64,
    /// A burst across namespaces needs at least this many workloads...
    pub min_workloads: usize,
    /// ... spread over at least this many namespaces.
    pub min_namespaces: usize,
    /// Or this many workloads of one image repository (any tag), in at least two namespaces:
    /// one namespace alone is a Helm install or a sweep, not a burst.
    pub min_same_image: usize,
    /// Namespaces whose workloads are the platform's own and never count.
    pub ignore_namespaces: Vec<String>,
}

impl Default for BurstSettings {
    fn default() -> Self {
        BurstSettings {
            window_secs: 5 * 60,
            min_workloads: 4,
            min_namespaces: 2,
            min_same_image: 3,
            ignore_namespaces: [
                "kube-system",
                "kube-public",
                "kube-node-lease",
                "istio-system",
                "kubeflow",
                "kubeflow-system",
                "cert-manager",
                "auth",
                "oauth2-proxy",
                "knative-serving",
                "knative-eventing",
                "argo",
                "ray-system",
                "kuberay-system",
                "gpu-operator",
                "monitoring",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        }
    }
}

/// A window given as `5m`, `90s`, `1h 30m` or ISO 8601 (`PT5M`), in seconds.
pub fn parse_window(s: &str) -> Result<i64, String> {
    let d: jiff::SignedDuration = s
        .trim()
        .parse()
        .map_err(|e| format!("not a duration (try 5m, 90s or 1h): {e}"))?;
    if d.is_negative() || d.is_zero() {
        return Err("the window must be positive".into());
    }
    Ok(d.as_secs())
}

/// A workload that may belong to a burst.
#[derive(Debug, Clone)]
pub struct Member<'a> {
    pub owner: &'a Object,
    pub images: Vec<String>,
    /// A miner finding was made on it (raises the burst's severity).
    pub miner: bool,
    /// It runs an ML image with a mutable tag (`tensorflow/tensorflow:latest`).
    pub ml_latest: bool,
}

/// When an object was created: its creationTimestamp, else the earliest managedFields time.
pub fn created_at(o: &Object) -> Option<(Timestamp, &'static str)> {
    if let Some(t) = o
        .str_at("metadata.creationTimestamp")
        .and_then(|s| s.parse::<Timestamp>().ok())
    {
        return Some((t, "metadata.creationTimestamp"));
    }
    o.at("metadata.managedFields")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(|m| m.get("time")?.as_str()?.parse::<Timestamp>().ok())
        .min()
        .map(|t| (t, "metadata.managedFields"))
}

/// Whether another object owns this one (it is counted through its owner).
fn owned(o: &Object) -> bool {
    o.at("metadata.ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

struct Timed<'m, 'a> {
    m: &'m Member<'a>,
    t: Timestamp,
    field: &'static str,
}

/// The burst findings over all members: one on each member of a burst.
pub fn detect(members: &[Member<'_>], settings: &BurstSettings) -> Vec<Finding> {
    let mut timed: Vec<Timed<'_, '_>> = members
        .iter()
        .filter(|m| !owned(m.owner))
        .filter(|m| {
            !settings
                .ignore_namespaces
                .iter()
                .any(|n| n == m.owner.effective_namespace())
        })
        .filter_map(|m| created_at(m.owner).map(|(t, field)| Timed { m, t, field }))
        .collect();
    timed.sort_by_key(|x| x.t);

    // For each member, the largest qualifying group it belongs to. Groups are the windows
    // [t_i, t_i + window]; a window is only considered when it reaches a member the previous
    // one did not (otherwise it is a subset of it), so the work stays near-linear even when
    // thousands of workloads share one timestamp.
    let mut groups: Vec<Group> = Vec::new();
    let mut best: BTreeMap<usize, usize> = BTreeMap::new();
    let window = jiff::SignedDuration::from_secs(settings.window_secs.max(0));
    let mut end = 0;
    let mut last_end: Option<usize> = None;
    for start in 0..timed.len() {
        end = end.max(start);
        while end + 1 < timed.len() && timed[end + 1].t.duration_since(timed[start].t) <= window {
            end += 1;
        }
        if last_end == Some(end) {
            continue;
        }
        last_end = Some(end);
        let slice = start..=end;
        let namespaces: BTreeSet<&str> = timed[slice.clone()]
            .iter()
            .map(|x| x.m.owner.effective_namespace())
            .collect();
        let count = end - start + 1;
        if count >= settings.min_workloads && namespaces.len() >= settings.min_namespaces {
            let g = Group {
                members: slice.clone().collect(),
                why: format!(
                    "{count} workloads created within {} across {} namespaces ({})",
                    span(&timed, start, end),
                    namespaces.len(),
                    namespaces.iter().copied().collect::<Vec<_>>().join(", ")
                ),
            };
            offer(&mut groups, &mut best, g);
        }
        // Many of one image repository in the same window, in more than one namespace.
        let mut by_image: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for i in slice.clone() {
            let repos: BTreeSet<&str> = timed[i].m.images.iter().map(|i| repository(i)).collect();
            for r in repos {
                by_image.entry(r).or_default().push(i);
            }
        }
        for (repo, idx) in by_image {
            let spread: BTreeSet<&str> = idx
                .iter()
                .map(|&i| timed[i].m.owner.effective_namespace())
                .collect();
            if idx.len() >= settings.min_same_image.max(2) && spread.len() >= 2 {
                let g = Group {
                    why: format!(
                        "{} workloads of image {repo} created within {} in {} namespaces",
                        idx.len(),
                        span(&timed, idx[0], *idx.last().unwrap_or(&idx[0])),
                        spread.len()
                    ),
                    members: idx,
                };
                offer(&mut groups, &mut best, g);
            }
        }
    }

    best.into_iter()
        .map(|(i, g)| finding(&timed, i, &groups[g]))
        .collect()
}

/// An image without its tag or digest: `tensorflow/tensorflow:latest-gpu` is
/// `tensorflow/tensorflow`.
fn repository(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rfind(':') {
        Some(c) if !no_digest[c..].contains('/') => &no_digest[..c],
        _ => no_digest,
    }
}

struct Group {
    members: Vec<usize>,
    why: String,
}

/// Records a group, and makes it the best of each member it is larger for.
fn offer(groups: &mut Vec<Group>, best: &mut BTreeMap<usize, usize>, g: Group) {
    let id = groups.len();
    let len = g.members.len();
    let mut used = false;
    for &i in &g.members {
        match best.get(&i) {
            Some(&prev) if groups[prev].members.len() >= len => {}
            _ => {
                best.insert(i, id);
                used = true;
            }
        }
    }
    if used {
        groups.push(g);
    }
}

fn span(timed: &[Timed<'_, '_>], a: usize, b: usize) -> String {
    let secs = timed[b].t.duration_since(timed[a].t).as_secs();
    if secs < 600 {
        format!("{secs} s")
    } else {
        format!("{} min", secs / 60)
    }
}

fn finding(timed: &[Timed<'_, '_>], i: usize, g: &Group) -> Finding {
    let me = &timed[i];
    let o = me.m.owner;
    let members: Vec<&Timed<'_, '_>> = g.members.iter().map(|&j| &timed[j]).collect();
    let miners = members.iter().filter(|x| x.m.miner).count();
    let ml_latest = members.iter().filter(|x| x.m.ml_latest).count();
    let (severity, raised) = if miners > 0 {
        (
            Severity::High,
            Some(format!("{miners} member(s) of the burst run a cryptominer")),
        )
    } else if ml_latest > 0 {
        (
            Severity::High,
            Some(format!(
                "{ml_latest} member(s) run an ML image with a mutable tag, as the 2021 Kubeflow wave did"
            )),
        )
    } else {
        (Severity::Medium, None)
    };
    let mut evidence = vec![
        format!("Burst: {}", g.why),
        format!("This workload: {} created {}", o.display(), me.t),
    ];
    let listed: Vec<String> = members
        .iter()
        .take(12)
        .map(|x| format!("{} at {}", x.m.owner.display(), x.t))
        .collect();
    evidence.push(format!(
        "Members: {}{}",
        listed.join("; "),
        if members.len() > 12 {
            format!("; and {} more", members.len() - 12)
        } else {
            String::new()
        }
    ));
    if let Some(r) = raised {
        evidence.push(format!("Severity raised: {r}"));
    }
    Finding {
        rule: RULE.into(),
        category: jackstop_core::Category::Burst,
        severity,
        title: "Many workloads created at once".into(),
        resource: o.resource(),
        location: Location {
            path: o.source.path.to_string(),
            line: o.line_of(me.field),
            field: Some(me.field.to_string()),
            template: o.source.template.as_deref().map(str::to_string),
        },
        evidence,
        remediation: format!(
            "kubectl get {} {} -n {} -o yaml   # check managedFields and the audit log for who created it; delete it if it is not a known rollout",
            o.kind.to_ascii_lowercase(),
            o.name,
            o.effective_namespace()
        ),
        detail: Some(json!({
            "burst": {
                "size": members.len(),
                "members": members.iter().take(MAX_DETAIL_MEMBERS).map(|x| json!({
                    "resource": x.m.owner.resource(),
                    "created": x.t.to_string(),
                })).collect::<Vec<_>>(),
            }
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jackstop_core::{FieldLines, Source};

    fn obj(
        kind: &str,
        ns: &str,
        name: &str,
        created: Option<&str>,
        managed: Option<&str>,
    ) -> Object {
        let mut meta = json!({"name": name, "namespace": ns});
        if let Some(c) = created {
            meta["creationTimestamp"] = json!(c);
        }
        if let Some(m) = managed {
            meta["managedFields"] = json!([{"manager": "x", "time": m}, {"manager": "y", "time": "2030-01-01T00:00:00Z"}]);
        }
        Object::from_value(
            json!({"apiVersion": "apps/v1", "kind": kind, "metadata": meta}),
            Source::default(),
            FieldLines::default(),
        )
        .unwrap()
    }

    fn at(ns: &str, name: &str, t: &str) -> Object {
        obj("Deployment", ns, name, Some(t), None)
    }

    fn member<'a>(o: &'a Object, image: &str) -> Member<'a> {
        Member {
            owner: o,
            images: vec![image.to_string()],
            miner: false,
            ml_latest: false,
        }
    }

    #[test]
    fn windows_parse() {
        assert_eq!(parse_window("5m"), Ok(300));
        assert_eq!(parse_window("90s"), Ok(90));
        assert_eq!(parse_window("1h 30m"), Ok(5400));
        assert_eq!(parse_window("PT2M"), Ok(120));
        assert!(parse_window("soon").is_err());
        assert!(parse_window("-5m").is_err());
    }

    #[test]
    fn spread_across_namespaces_in_one_window() {
        let objs = [
            at("team-a", "a", "2021-06-08T10:00:00Z"),
            obj(
                "Deployment",
                "team-b",
                "b",
                None,
                Some("2021-06-08T10:01:00Z"),
            ),
            obj(
                "Notebook",
                "team-c",
                "c",
                Some("2021-06-08T10:02:30Z"),
                None,
            ),
            at("team-c", "c2", "2021-06-08T10:02:31Z"),
            // Long after: not part of it.
            at("team-d", "d", "2021-06-08T12:00:00Z"),
        ];
        let members: Vec<Member<'_>> = objs
            .iter()
            .enumerate()
            .map(|(i, o)| member(o, &format!("app-{i}:1")))
            .collect();
        let f = detect(&members, &BurstSettings::default());
        let names: Vec<&str> = f.iter().map(|f| f.resource.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "c2"]);
        assert!(f.iter().all(|f| f.severity == Severity::Medium));
        assert!(
            f[1].evidence[0].contains("4 workloads created within 151 s across 3 namespaces"),
            "{:?}",
            f[1].evidence
        );
        assert_eq!(
            f[1].location.field.as_deref(),
            Some("metadata.managedFields")
        );
    }

    #[test]
    fn near_misses_stay_quiet() {
        // Same namespace only; platform namespaces; owned objects; no timestamps; too slow.
        let objs = [
            at("team-a", "a1", "2021-06-08T10:00:00Z"),
            at("team-a", "a2", "2021-06-08T10:00:10Z"),
            at("kubeflow", "k", "2021-06-08T10:00:20Z"),
            at("istio-system", "i", "2021-06-08T10:00:30Z"),
            obj("Deployment", "team-b", "none", None, None),
            at("team-c", "late", "2021-06-08T10:30:00Z"),
        ];
        let members: Vec<Member<'_>> = objs.iter().map(|o| member(o, "app:1")).collect();
        assert!(detect(&members, &BurstSettings::default()).is_empty());
        let mut owned = at("team-b", "p", "2021-06-08T10:00:05Z");
        owned.body["metadata"]["ownerReferences"] = json!([{"kind": "ReplicaSet", "name": "x"}]);
        let mut members: Vec<Member<'_>> = objs.iter().map(|o| member(o, "app:1")).collect();
        members.push(member(&owned, "app:1"));
        assert!(detect(&members, &BurstSettings::default()).is_empty());
    }

    #[test]
    fn many_of_one_image_and_raised_severity() {
        // Three: below the spread rule's four, so the image is what makes the burst.
        let objs: Vec<Object> = (0..3)
            .map(|i| {
                let ns = if i % 2 == 0 { "team-a" } else { "team-b" };
                at(ns, &format!("tf-{i}"), &format!("2021-06-08T10:00:0{i}Z"))
            })
            .collect();
        let mut members: Vec<Member<'_>> = objs
            .iter()
            .map(|o| member(o, "tensorflow/tensorflow:latest"))
            .collect();
        members[1].images = vec!["tensorflow/tensorflow:latest-gpu".into()];
        members[0].ml_latest = true;
        let f = detect(&members, &BurstSettings::default());
        assert_eq!(f.len(), 3);
        assert!(
            f[0].evidence[0].contains(
                "3 workloads of image tensorflow/tensorflow created within 2 s in 2 namespaces"
            ),
            "{:?}",
            f[0].evidence
        );
        assert!(f.iter().all(|f| f.severity == Severity::High));
        // A stricter setting makes it quiet.
        let strict = BurstSettings {
            min_same_image: 4,
            ..BurstSettings::default()
        };
        assert!(detect(&members, &strict).is_empty());
    }

    #[test]
    fn one_namespace_of_one_image_is_an_install_or_a_sweep() {
        let objs: Vec<Object> = (0..6)
            .map(|i| {
                obj(
                    "TFJob",
                    "research",
                    &format!("lr-{i}"),
                    Some("2021-06-08T10:00:00Z"),
                    None,
                )
            })
            .collect();
        let members: Vec<Member<'_>> = objs
            .iter()
            .map(|o| Member {
                ml_latest: true,
                ..member(o, "tensorflow/tensorflow:latest-gpu")
            })
            .collect();
        assert!(detect(&members, &BurstSettings::default()).is_empty());
    }

    #[test]
    fn thousands_at_one_moment_stay_cheap() {
        let objs: Vec<Object> = (0..3000)
            .map(|i| {
                at(
                    &format!("ns-{}", i % 3),
                    &format!("d-{i}"),
                    "2021-06-08T10:00:00Z",
                )
            })
            .collect();
        let members: Vec<Member<'_>> = objs.iter().map(|o| member(o, "x/y:1")).collect();
        let f = detect(&members, &BurstSettings::default());
        assert_eq!(f.len(), 3000);
        let detail = f[0].detail.as_ref().unwrap();
        assert_eq!(detail["burst"]["size"], 3000);
        assert_eq!(
            detail["burst"]["members"].as_array().unwrap().len(),
            MAX_DETAIL_MEMBERS
        );
        assert!(
            f[0].evidence[2].ends_with("and 2988 more"),
            "{}",
            f[0].evidence[2]
        );
    }

    #[test]
    fn repositories_drop_tags_and_digests() {
        assert_eq!(
            repository("tensorflow/tensorflow:latest-gpu"),
            "tensorflow/tensorflow"
        );
        assert_eq!(
            repository("registry:5000/team/app"),
            "registry:5000/team/app"
        );
        assert_eq!(
            repository("registry:5000/team/app:1.0@sha256:abc"),
            "registry:5000/team/app"
        );
    }
}
