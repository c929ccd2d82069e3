//! What changed between one analysis of a live cluster and the next, so that `jackstop watch`
//! reports each finding once when it appears, again only when what it says changes, and once
//! more when it is gone.
//!
//! A finding is identified by its rule, its resource, the field it points at and its title
//! (and, should one resource carry several alike, their order). What it says is its severity
//! and evidence, except:
//! - evidence that only describes the live state of pods (phase, restarts): a pod restarting
//!   is not a new finding;
//! - the evidence of a burst, which lists its members: a burst that grows is told through its
//!   new members, each a new finding, not by sending every earlier member again.

use crate::{Category, Finding};
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// The prefix of evidence lines that describe live pods (`Live: runs as ...`); they change
/// with every restart, so they are left out of what a finding says.
pub const LIVE_EVIDENCE: &str = "Live: ";

/// How a finding relates to the previous analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// Present at the first analysis (the cluster as it was when watching began).
    Existing,
    /// Appeared since the previous analysis.
    New,
    /// Still there, but its severity, title or evidence changed.
    Changed,
    /// Gone: its resource was deleted or no longer matches.
    Resolved,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Existing => "existing",
            Change::New => "new",
            Change::Changed => "changed",
            Change::Resolved => "resolved",
        }
    }
}

type Key = (String, crate::ResourceRef, Option<String>, String, usize);

/// The findings of the previous analysis, by identity.
#[derive(Debug, Default)]
pub struct Tracker {
    known: HashMap<Key, (u64, Finding)>,
    primed: bool,
}

impl Tracker {
    /// Compares a new analysis with the previous one: what appeared (in the order given), what
    /// changed, then what is gone. The first call reports everything as [`Change::Existing`].
    pub fn update(&mut self, findings: Vec<Finding>) -> Vec<(Change, Finding)> {
        let first = !self.primed;
        self.primed = true;
        let mut seen: HashMap<(String, crate::ResourceRef, Option<String>, String), usize> =
            HashMap::new();
        let mut next: HashMap<Key, (u64, Finding)> = HashMap::with_capacity(findings.len());
        let mut out = Vec::new();
        for f in findings {
            let base = (
                f.rule.clone(),
                f.resource.clone(),
                f.location.field.clone(),
                f.title.clone(),
            );
            let n = seen.entry(base.clone()).or_insert(0);
            let key = (base.0, base.1, base.2, base.3, *n);
            *n += 1;
            let says = says(&f);
            match self.known.remove(&key) {
                None if first => out.push((Change::Existing, f.clone())),
                None => out.push((Change::New, f.clone())),
                Some((before, _)) if before != says => out.push((Change::Changed, f.clone())),
                Some(_) => {}
            }
            next.insert(key, (says, f));
        }
        let mut gone: Vec<Finding> = self.known.drain().map(|(_, (_, f))| f).collect();
        gone.sort_by(|a, b| {
            (&a.rule, &a.resource, &a.location.field).cmp(&(
                &b.rule,
                &b.resource,
                &b.location.field,
            ))
        });
        out.extend(gone.into_iter().map(|f| (Change::Resolved, f)));
        self.known = next;
        out
    }

    /// The findings of the latest analysis.
    pub fn current(&self) -> impl Iterator<Item = &Finding> {
        self.known.values().map(|(_, f)| f)
    }

    /// How many findings the latest analysis had.
    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }
}

/// A digest of what a finding says, without the live pods' state.
fn says(f: &Finding) -> u64 {
    let mut h = DefaultHasher::new();
    f.severity.hash(&mut h);
    if f.category == Category::Burst {
        return h.finish();
    }
    for e in f.evidence.iter().filter(|e| !e.starts_with(LIVE_EVIDENCE)) {
        e.hash(&mut h);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Location, ResourceRef, Severity};

    fn finding(rule: &str, name: &str, evidence: &[&str]) -> Finding {
        Finding {
            rule: rule.into(),
            category: Category::Miner,
            severity: Severity::Critical,
            title: "a miner".into(),
            resource: ResourceRef {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: Some("ns".into()),
                name: name.into(),
            },
            location: Location {
                path: "cluster".into(),
                line: 0,
                field: Some("spec.template.spec.containers[0].command".into()),
                template: None,
            },
            evidence: evidence.iter().map(|e| e.to_string()).collect(),
            remediation: String::new(),
            detail: None,
        }
    }

    fn changes(out: &[(Change, Finding)]) -> Vec<(Change, &str)> {
        out.iter()
            .map(|(c, f)| (*c, f.resource.name.as_str()))
            .collect()
    }

    #[test]
    fn first_analysis_is_existing_then_only_differences() {
        let mut t = Tracker::default();
        let a = finding("JS-MIN-001", "a", &["xmrig"]);
        let b = finding("JS-MIN-001", "b", &["xmrig"]);
        assert_eq!(
            changes(&t.update(vec![a.clone()])),
            vec![(Change::Existing, "a")]
        );
        assert!(t.update(vec![a.clone()]).is_empty(), "nothing changed");
        assert_eq!(
            changes(&t.update(vec![a.clone(), b.clone()])),
            vec![(Change::New, "b")]
        );
        let a2 = finding("JS-MIN-001", "a", &["ethminer"]);
        assert_eq!(
            changes(&t.update(vec![a2, b.clone()])),
            vec![(Change::Changed, "a")]
        );
        assert_eq!(changes(&t.update(vec![b])), vec![(Change::Resolved, "a")]);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn live_pod_state_is_not_a_change() {
        let mut t = Tracker::default();
        t.update(vec![finding(
            "JS-MIN-001",
            "a",
            &["xmrig", "Live: runs as p (Pending)"],
        )]);
        let out = t.update(vec![finding(
            "JS-MIN-001",
            "a",
            &["xmrig", "Live: runs as p (Running, 3 restarts)"],
        )]);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn a_growing_burst_is_not_a_change_of_its_earlier_members() {
        let mut t = Tracker::default();
        let mut a = finding("JS-BUR-001", "a", &["4 workloads created within 9 s"]);
        a.category = Category::Burst;
        t.update(vec![a.clone()]);
        let mut a5 = a.clone();
        a5.evidence = vec!["5 workloads created within 12 s".into()];
        let mut b = a5.clone();
        b.resource.name = "b".into();
        assert_eq!(
            changes(&t.update(vec![a5.clone(), b])),
            vec![(Change::New, "b")]
        );
        // Its severity rising is a change.
        a5.severity = Severity::High;
        let out = t.update(vec![a5]);
        assert_eq!(out[0].0, Change::Changed);
    }

    #[test]
    fn same_rule_and_field_with_another_title_is_another_finding() {
        let mut t = Tracker::default();
        let a = finding("JS-EXP-001", "gw", &["to the dashboard"]);
        let mut b = a.clone();
        b.title = "the pipelines UI".into();
        t.update(vec![a.clone(), b.clone()]);
        assert!(t.update(vec![b, a]).is_empty(), "order does not matter");
    }

    #[test]
    fn alike_findings_on_one_resource_are_counted_apart() {
        let mut t = Tracker::default();
        let a = finding("JS-SUS-001", "a", &["one"]);
        t.update(vec![a.clone()]);
        let out = t.update(vec![a.clone(), a.clone()]);
        assert_eq!(changes(&out), vec![(Change::New, "a")]);
        let out = t.update(vec![a]);
        assert_eq!(changes(&out), vec![(Change::Resolved, "a")]);
    }
}
