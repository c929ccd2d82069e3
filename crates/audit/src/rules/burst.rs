//! One identity creating many workloads across namespaces within seconds (JS-AUD-005): the
//! campaign's simultaneous Deployments in every profile namespace. Creations are grouped per
//! identity while each follows the previous within the window; a group closes when time moves
//! past the window (or the log ends), and becomes a finding if it is large and spread enough.

use super::{finding, workloads::controlled, AuditSettings, Ctx};
use jackstop_catalogue::Catalogue;
use jackstop_core::{Finding, Location, ResourceRef, Severity};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};

/// Most members listed in evidence, and in `detail`.
const MAX_EVIDENCE: usize = 12;
const MAX_DETAIL: usize = 50;

struct Member {
    time: jiff::Timestamp,
    resource: ResourceRef,
    location: Location,
    audit_id: String,
    miner: bool,
}

struct Group {
    members: Vec<Member>,
    who: String,
    detail: Value,
}

pub struct BurstState {
    settings: AuditSettings,
    open: HashMap<String, Group>,
    /// Groups closed, waiting to be reported.
    closed: Vec<Group>,
}

impl BurstState {
    pub fn new(settings: AuditSettings) -> BurstState {
        BurstState {
            settings,
            open: HashMap::new(),
            closed: Vec::new(),
        }
    }

    pub fn window(&self) -> jiff::SignedDuration {
        jiff::SignedDuration::from_secs(self.settings.burst_window_secs)
    }

    /// The time past which an event closes some open group (`tick`); `None` while none is
    /// open.
    pub fn open_until(&self) -> Option<jiff::Timestamp> {
        let window = self.window();
        self.open
            .values()
            .filter_map(|g| g.members.last())
            .filter_map(|m| m.time.checked_add(window).ok())
            .min()
    }

    /// Closes the groups whose last creation is older than the window, in the log's time.
    pub fn tick(&mut self, e: &crate::Event<'_>, ctx: &mut Ctx<'_, '_, '_>) {
        let Some(now) = e.timestamp() else { return };
        self.close_before(now, ctx.cat, ctx.out);
    }

    /// Closes and judges the groups whose last creation is more than the window before `now`.
    pub fn close_before(&mut self, now: jiff::Timestamp, cat: &Catalogue, out: &mut Vec<Finding>) {
        let window = jiff::SignedDuration::from_secs(self.settings.burst_window_secs);
        let stale: Vec<String> = self
            .open
            .iter()
            .filter(|(_, g)| {
                g.members
                    .last()
                    .is_some_and(|m| now.duration_since(m.time) > window)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            if let Some(g) = self.open.remove(&k) {
                self.closed.push(g);
            }
        }
        let closed = std::mem::take(&mut self.closed);
        for g in closed {
            if let Some(f) = self.judge(g, cat) {
                out.push(f);
            }
        }
    }

    pub fn event(&mut self, ctx: &mut Ctx<'_, '_, '_>, after: Option<&Value>, miner: bool) {
        let e = ctx.e;
        if e.verb() != "create" || !e.subresource().is_empty() {
            return;
        }
        let Some(obj) = after else { return };
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        if !jackstop_analysers::workloads::KINDS.contains(&kind)
            || kind == "ConfigMap"
            || controlled(obj)
        {
            return;
        }
        if ctx.cat.audit.is_controller(e.username()) {
            return;
        }
        let Some(time) = e.timestamp() else { return };
        let mut resource = e.resource_ref(Some(kind));
        if resource.name.is_empty() {
            // generateName: the name is in the response only.
            resource.name = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
        }
        let actor = e.actor().to_string();
        let member = Member {
            time,
            resource,
            location: Location {
                path: ctx.at.path.to_string(),
                line: ctx.at.line as u32,
                field: None,
                template: None,
            },
            audit_id: e.audit_id.as_deref().unwrap_or("").to_string(),
            miner,
        };
        let window = jiff::SignedDuration::from_secs(self.settings.burst_window_secs);
        if let Some(g) = self.open.get(&actor) {
            if g.members
                .last()
                .is_some_and(|m| time.duration_since(m.time) > window)
            {
                let g = self.open.remove(&actor).expect("present");
                if let Some(f) = self.judge(g, ctx.cat) {
                    ctx.out.push(f);
                }
            }
        }
        self.open
            .entry(actor)
            .or_insert_with(|| Group {
                members: Vec::new(),
                who: e.who_line(),
                detail: e.detail(),
            })
            .members
            .push(member);
    }

    /// The groups still open, judged.
    pub fn finish(mut self, cat: &Catalogue) -> Vec<Finding> {
        let mut groups: Vec<Group> = self.open.drain().map(|(_, g)| g).collect();
        groups.extend(std::mem::take(&mut self.closed));
        groups.sort_by_key(|g| g.members.first().map(|m| m.time));
        groups
            .into_iter()
            .filter_map(|g| self.judge(g, cat))
            .collect()
    }

    fn judge(&self, g: Group, cat: &Catalogue) -> Option<Finding> {
        let namespaces: BTreeSet<&str> = g
            .members
            .iter()
            .filter_map(|m| m.resource.namespace.as_deref())
            .collect();
        if g.members.len() < self.settings.burst_min_workloads
            || namespaces.len() < self.settings.burst_min_namespaces
        {
            return None;
        }
        let first = g.members.first()?;
        let last = g.members.last()?;
        let span = last.time.duration_since(first.time).as_secs_f64();
        let miners = g.members.iter().filter(|m| m.miner).count();
        let actor = g
            .detail
            .get("impersonatedUser")
            .and_then(Value::as_str)
            .or_else(|| g.detail.get("user").and_then(Value::as_str))
            .unwrap_or("")
            .to_string();
        let mut evidence = vec![
            g.who.clone(),
            format!(
                "{} workloads created by {actor} within {span:.1} s across {} namespaces ({}) from {} to {}",
                g.members.len(),
                namespaces.len(),
                namespaces.iter().copied().collect::<Vec<_>>().join(", "),
                first.time,
                last.time
            ),
        ];
        if miners > 0 {
            evidence.push(format!("{miners} of them run a miner"));
        }
        for m in g.members.iter().take(MAX_EVIDENCE) {
            let at = if m.location.path == first.location.path {
                format!("line {}", m.location.line)
            } else {
                format!("{}:{}", m.location.path, m.location.line)
            };
            evidence.push(format!("{} {} ({at})", m.time, m.resource));
        }
        if g.members.len() > MAX_EVIDENCE {
            evidence.push(format!("and {} more", g.members.len() - MAX_EVIDENCE));
        }
        let mut detail = g.detail.clone();
        detail["members"] = json!(g
            .members
            .iter()
            .take(MAX_DETAIL)
            .map(|m| json!({"resource": m.resource, "time": m.time.to_string(), "auditID": m.audit_id, "line": m.location.line, "miner": m.miner}))
            .collect::<Vec<_>>());
        let severity = if miners > 0 {
            Severity::Critical
        } else {
            Severity::High
        };
        Some(finding(
            cat,
            "JS-AUD-005",
            severity,
            format!(
                "{actor} created {} workloads across {} namespaces within {span:.0} s",
                g.members.len(),
                namespaces.len()
            ),
            first.resource.clone(),
            first.location.clone(),
            evidence,
            Some(detail),
        ))
    }
}
