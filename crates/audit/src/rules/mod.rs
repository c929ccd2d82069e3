//! The audit rules: each audit event that reaches them is looked at once, in the order of the
//! log, by every rule; state is kept only where a rule spans events (bursts, the doors already
//! reported, anonymous reads counted per source), so memory does not grow with the log.
//!
//! The object a request produced is read from the event: the `responseObject` when the
//! policy logged it (level RequestResponse), else the `requestObject` of a create or update,
//! else a patch laid onto an empty object (a merge patch as it is; a JSON patch's values at
//! their paths), which is what the change says even without the object it changed.

mod access;
mod burst;
mod door;
mod workloads;

use crate::event::{Event, EventHead};
use crate::reader::{EventSink, Position};
use jackstop_analysers::miners::MinerAnalyser;
use jackstop_analysers::Analyser;
use jackstop_catalogue::Catalogue;
use jackstop_core::{Finding, InputError, Location, ResourceRef, Severity};
use serde_json::{Map, Value};
use std::collections::HashSet;

/// Thresholds a user may change.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// Creations by one identity this close together (seconds) belong to one burst.
    pub burst_window_secs: i64,
    /// A burst needs at least this many workloads...
    pub burst_min_workloads: usize,
    /// ... in at least this many namespaces.
    pub burst_min_namespaces: usize,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            burst_window_secs: 60,
            burst_min_workloads: 4,
            burst_min_namespaces: 2,
        }
    }
}

/// Runs every audit rule over the events it is given.
pub struct AuditAnalyser {
    catalogue: &'static Catalogue,
    miners: MinerAnalyser,
    door: door::DoorState,
    access: access::AccessState,
    burst: burst::BurstState,
    /// The resources (plurals) whose objects some rule reads.
    read_resources: HashSet<String>,
    findings: Vec<Finding>,
    notes: Vec<InputError>,
}

impl AuditAnalyser {
    pub fn new(catalogue: &'static Catalogue, settings: AuditSettings) -> AuditAnalyser {
        AuditAnalyser {
            catalogue,
            miners: MinerAnalyser::default(),
            door: door::DoorState::default(),
            access: access::AccessState::default(),
            burst: burst::BurstState::new(settings),
            read_resources: read_resources(),
            findings: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Whether some rule reads the object of this event: the object itself (not a status or
    /// scale subresource; ephemeral containers are code too) of a resource the rules know.
    fn reads(&self, e: &Event<'_>) -> bool {
        matches!(e.subresource(), "" | "ephemeralcontainers")
            && self.read_resources.contains(e.resource())
    }

    /// Whether some rule could use the object this event's request produced, which is then
    /// decoded. The miner and burst rules leave out what the cluster's own controllers make
    /// and what reconcilers update (workloads.rs, burst.rs), so for the resources only they
    /// read, those events' objects are not decoded.
    fn wants_object(&self, e: &Event<'_>) -> bool {
        if !self.reads(e) {
            return false;
        }
        if DOOR_AND_ACCESS_RESOURCES.contains(&e.resource()) {
            return true;
        }
        let audit = &self.catalogue.audit;
        let user = e.username();
        !(audit.is_controller(user) || e.verb() != "create" && audit.is_reconciler(user))
    }

    /// The findings made so far (for streaming output); those that span events (bursts,
    /// anonymous reads) come when they are complete, or from [`AuditAnalyser::finish`].
    pub fn take_findings(&mut self) -> Vec<Finding> {
        std::mem::take(&mut self.findings)
    }

    /// For a live stream, where no later event may come to close them: the bursts whose last
    /// creation is more than the window before `now`, and the anonymous reads of sources quiet
    /// for the burst window.
    pub fn flush(&mut self, now: jiff::Timestamp) -> Vec<Finding> {
        let mut out = std::mem::take(&mut self.findings);
        self.burst.close_before(now, self.catalogue, &mut out);
        let quiet = self.burst.window().unsigned_abs();
        out.extend(self.access.flush_idle(quiet, self.catalogue));
        out
    }

    /// Closes what is still open and returns the remaining findings and the analysis notes.
    pub fn finish(mut self) -> (Vec<Finding>, Vec<InputError>) {
        let mut out = std::mem::take(&mut self.findings);
        out.extend(self.burst.finish(self.catalogue));
        out.extend(self.access.finish(self.catalogue));
        (out, self.notes)
    }
}

impl EventSink for AuditAnalyser {
    /// The events some rule looks at, told from their heads; the others are counted without
    /// being decoded, but for the few that move the burst rule's clock past an open burst
    /// ([`EventSink::open_until`]).
    ///
    /// A rule that looks at another kind of event must be let in here: the fixtures and the
    /// golden cases are read both ways in the tests (`every_fixture_line_is_wanted_...`).
    fn wants(&self, h: &EventHead<'_>) -> bool {
        // JS-AUD-004: any request without credentials but to the health and discovery paths
        // anyone may read; JS-AUD-006: exec, attach, port-forward (over websockets, a get).
        if h.unauthenticated {
            let harmless = h.resource.is_empty()
                && h.request_uri
                    .is_some_and(|u| self.catalogue.audit.anonymous_may(u));
            return !harmless;
        }
        if matches!(h.subresource, "exec" | "attach" | "portforward") {
            return true;
        }
        // Reads change nothing, and the status subresource holds no code and no door; every
        // other change to a resource some rule reads is analysed (its object, a scale, a
        // deletion).
        self.read_resources.contains(h.resource) && !h.is_read() && h.subresource != "status"
    }

    /// Every event moves the burst rule's clock (`tick`): one past the window of an open burst
    /// closes it.
    fn open_until(&self) -> Option<jiff::Timestamp> {
        self.burst.open_until()
    }

    fn event(&mut self, e: &Event<'_>, at: Position<'_>) {
        let cat = self.catalogue;
        let reads = self.wants_object(e);
        let mut ctx = Ctx {
            cat,
            e,
            at,
            out: &mut self.findings,
        };
        // Bursts close as time moves on, whatever the event.
        self.burst.tick(e, &mut ctx);
        // Every rule is about what happened: refused requests are counted, not analysed.
        if !e.succeeded() {
            return;
        }
        // The request's object is decoded only where some rule could use it.
        let mut after = if reads { after_object(e) } else { None };
        self.access.event(&mut ctx, after.as_ref());
        self.door.event(&mut ctx, after.as_ref());
        let miner = workloads::event(&self.miners, &mut ctx, &mut after, &mut self.notes);
        self.burst.event(&mut ctx, after.as_ref(), miner);
    }
}

/// The door and access rules' resources, and the plural of every kind the miner analysis
/// reads (none of them is irregular: tested).
fn read_resources() -> HashSet<String> {
    let miners = MinerAnalyser::default();
    let mut set: HashSet<String> = DOOR_AND_ACCESS_RESOURCES
        .iter()
        .map(|r| r.to_string())
        .collect();
    set.extend(
        miners
            .kinds()
            .iter()
            .map(|k| format!("{}s", k.to_ascii_lowercase())),
    );
    set
}

/// What door.rs and access.rs read objects of.
const DOOR_AND_ACCESS_RESOURCES: &[&str] = &[
    "services",
    "ingresses",
    "httproutes",
    "virtualservices",
    "requestauthentications",
    "authorizationpolicies",
    "envoyfilters",
    "deployments",
    "statefulsets",
    "clusterrolebindings",
    "rolebindings",
];

/// What a rule needs to make a finding.
pub(crate) struct Ctx<'a, 'e, 'p> {
    pub cat: &'static Catalogue,
    pub e: &'a Event<'e>,
    pub at: Position<'p>,
    pub out: &'a mut Vec<Finding>,
}

impl Ctx<'_, '_, '_> {
    /// A finding of `rule` located at this event, with who/when/where as the first evidence.
    pub fn report(
        &mut self,
        rule: &str,
        severity: Severity,
        title: String,
        resource: ResourceRef,
        field: Option<String>,
        mut evidence: Vec<String>,
    ) {
        evidence.insert(0, self.e.who_line());
        self.out.push(finding(
            self.cat,
            rule,
            severity,
            title,
            resource,
            Location {
                path: self.at.path.to_string(),
                line: self.at.line as u32,
                field,
                template: None,
            },
            evidence,
            Some(self.e.detail()),
        ));
    }
}

/// A finding of a catalogue rule.
#[allow(clippy::too_many_arguments)]
pub(crate) fn finding(
    cat: &Catalogue,
    rule: &str,
    severity: Severity,
    title: String,
    resource: ResourceRef,
    location: Location,
    evidence: Vec<String>,
    detail: Option<Value>,
) -> Finding {
    let r = cat.rules.get(rule);
    Finding {
        rule: rule.to_string(),
        category: r
            .map(|r| r.category)
            .unwrap_or(jackstop_core::Category::Access),
        severity,
        title,
        resource,
        location,
        evidence,
        remediation: r.map(|r| r.remediation.clone()).unwrap_or_default(),
        detail,
    }
}

/// Where in the event the object was read, for `location.field`.
pub(crate) fn object_field(e: &Event<'_>) -> &'static str {
    if e.response_object.is_some_and(is_object) {
        "responseObject"
    } else {
        "requestObject"
    }
}

fn is_object(raw: &serde_json::value::RawValue) -> bool {
    let t = raw.get();
    t.starts_with('{') && !t.contains("\"kind\":\"Status\"")
}

/// The object a request produced, as well as the event tells it (see the module's doc), with
/// apiVersion, kind, name and namespace filled from the objectRef when missing.
pub(crate) fn after_object(e: &Event<'_>) -> Option<Value> {
    let verb = e.verb();
    if !matches!(verb, "create" | "update" | "patch" | "delete") {
        return None;
    }
    let mut v: Value = if let Some(raw) = e.response_object.filter(|r| is_object(r)) {
        serde_json::from_str(raw.get()).ok()?
    } else {
        let raw = e.request_object?;
        let body: Value = serde_json::from_str(raw.get()).ok()?;
        match (verb, body) {
            ("patch", Value::Array(ops)) => json_patch(&ops),
            (_, b @ Value::Object(_)) => b,
            _ => return None,
        }
    };
    // A DeleteOptions body, or a Status, says nothing of the object.
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    if matches!(kind, "DeleteOptions" | "Status") {
        return None;
    }
    let m = v.as_object_mut()?;
    let r = e.resource_ref(None);
    m.entry("apiVersion")
        .or_insert(Value::String(r.api_version));
    m.entry("kind").or_insert(Value::String(r.kind));
    let meta = m
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        if !r.name.is_empty() {
            meta.entry("name").or_insert(Value::String(r.name));
        }
        if let Some(ns) = r.namespace {
            meta.entry("namespace").or_insert(Value::String(ns));
        }
    }
    Some(v)
}

/// The values of a JSON patch (RFC 6902) laid at their paths on an empty object: `add` and
/// `replace` values; arrays are made where a path index is a number.
fn json_patch(ops: &[Value]) -> Value {
    let mut root = Value::Object(Map::new());
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
        if !matches!(kind, "add" | "replace") {
            continue;
        }
        let (Some(path), Some(value)) = (op.get("path").and_then(Value::as_str), op.get("value"))
        else {
            continue;
        };
        let parts: Vec<String> = path
            .split('/')
            .skip(1)
            .map(|p| p.replace("~1", "/").replace("~0", "~"))
            .collect();
        put(&mut root, &parts, value.clone());
    }
    root
}

fn put(at: &mut Value, parts: &[String], value: Value) {
    let Some((first, rest)) = parts.split_first() else {
        *at = value;
        return;
    };
    let next_is_index = rest
        .first()
        .is_some_and(|p| p == "-" || p.parse::<usize>().is_ok());
    let fresh = || {
        if next_is_index {
            Value::Array(Vec::new())
        } else {
            Value::Object(Map::new())
        }
    };
    match at {
        Value::Object(m) => {
            let child = m.entry(first.clone()).or_insert_with(fresh);
            put(child, rest, value);
        }
        Value::Array(a) => {
            let i = if first == "-" {
                a.len()
            } else {
                match first.parse::<usize>() {
                    Ok(i) if i <= 64 => i,
                    _ => return,
                }
            };
            while a.len() <= i {
                a.push(Value::Null);
            }
            if a[i].is_null() {
                a[i] = fresh();
            }
            put(&mut a[i], rest, value);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_read_has_a_regular_plural() {
        for k in MinerAnalyser::default().kinds() {
            let irregular = ["s", "x", "y", "ch", "sh"]
                .iter()
                .any(|end| k.to_ascii_lowercase().ends_with(end));
            assert!(!irregular, "{k}: its plural is not {k}s; list it by hand");
        }
        let set = read_resources();
        for r in [
            "notebooks",
            "pytorchjobs",
            "configmaps",
            "services",
            "rolebindings",
        ] {
            assert!(set.contains(r), "{r}");
        }
        assert!(!set.contains("leases") && !set.contains("nodes"));
    }

    /// The analyser, wanting every event decoded.
    struct Everything(AuditAnalyser);

    impl EventSink for Everything {
        fn event(&mut self, e: &Event<'_>, at: Position<'_>) {
            self.0.event(e, at)
        }
    }

    /// What the reader counted, and the errors it reported.
    fn read(path: &std::path::Path, sink: &mut dyn EventSink) -> (crate::AuditStats, String) {
        let mut reader = crate::AuditReader::new(crate::ReadOptions::default());
        reader.read_path(path.to_str().unwrap(), sink);
        (reader.stats, format!("{:?}", reader.errors))
    }

    /// Every audit input the tests have (fixtures, golden cases, the fuzz seeds, the real
    /// corpus when it is here) gives the same findings and notes whether the events no rule wants are skipped or
    /// decoded: what `wants` leaves out, no rule would have looked at.
    #[test]
    fn every_fixture_line_is_wanted_where_a_rule_would_look_at_it() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = Vec::new();
        let mut dirs = vec![
            root.join("tests/fixtures/audit"),
            root.join("tests/fixtures/audit/bad"),
            root.join("../shared/corpus/k8s-audit/falco-trace-files"),
            root.join("../shared/corpus/k8s-audit/audit2rbac"),
            root.join("fuzz/seeds/audit_reader"),
        ];
        for e in std::fs::read_dir(root.join("tests/rules")).unwrap() {
            let p = e.unwrap().path();
            if p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("JS-AUD-")
            {
                dirs.push(p);
            }
        }
        for d in dirs.iter().filter(|d| d.is_dir()) {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                let name = p.file_name().unwrap().to_string_lossy();
                let input = [".jsonl", ".log", ".gz", ".json"]
                    .iter()
                    .any(|x| name.ends_with(x));
                if input && !name.ends_with("expected.json") {
                    files.push(p);
                }
            }
        }
        assert!(files.len() >= 15, "{files:?}");
        let (mut skipped, mut events) = (0, 0);
        for f in &files {
            let cat = Catalogue::builtin();
            let mut some = AuditAnalyser::new(cat, AuditSettings::default());
            let mut all = Everything(AuditAnalyser::new(cat, AuditSettings::default()));
            let (s, s_errors) = read(f, &mut some);
            let (a, a_errors) = read(f, &mut all);
            skipped += s.reads_skipped + s.writes_skipped;
            events += s.events;
            assert_eq!((s.events, s.bad_lines), (a.events, a.bad_lines), "{f:?}");
            assert_eq!(s_errors, a_errors, "{f:?}");
            let (sf, sn) = some.finish();
            let (af, an) = all.0.finish();
            let json = |v: &[Finding]| serde_json::to_string_pretty(v).unwrap();
            assert_eq!(json(&sf), json(&af), "{f:?}");
            assert_eq!(format!("{sn:?}"), format!("{an:?}"), "{f:?}");
        }
        assert!(skipped * 2 > events, "{skipped} of {events} skipped");
    }

    /// One audit event line at `secs` past a fixed time.
    fn line(verb: &str, resource: &str, ns: &str, name: &str, user: &str, secs: i64) -> String {
        let t = jiff::Timestamp::from_second(1_623_110_400 + secs).unwrap();
        let mut e = json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
            "auditID": format!("{resource}-{name}-{secs}"), "stage": "ResponseComplete",
            "requestURI": format!("/apis/apps/v1/namespaces/{ns}/{resource}"), "verb": verb,
            "user": {"username": user, "groups": ["system:authenticated"]},
            "sourceIPs": ["10.0.0.1"],
            "objectRef": {"resource": resource, "namespace": ns, "name": name, "apiGroup": "apps", "apiVersion": "v1"},
            "responseStatus": {"metadata": {}, "code": 201},
            "requestReceivedTimestamp": t.to_string(), "stageTimestamp": t.to_string(),
        });
        if resource == "deployments" {
            e["requestObject"] = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
        }
        e.to_string()
    }

    /// Bursts close alike whether the events between them are decoded or not, even when the
    /// log's time goes back: a lease renewal far ahead closes the burst before the next
    /// creation, which then starts another.
    #[test]
    fn skipped_events_still_close_bursts() {
        let who = "system:serviceaccount:kubeflow:jupyter-web-app-service-account";
        let mut lines: Vec<String> = (0..4)
            .map(|i| {
                line(
                    "create",
                    "deployments",
                    &format!("team-{}", i % 2),
                    &format!("d{i}"),
                    who,
                    i,
                )
            })
            .collect();
        lines.push(line(
            "update",
            "leases",
            "kube-system",
            "x",
            "system:kube-scheduler",
            1000,
        ));
        lines.push(line(
            "get",
            "leases",
            "kube-system",
            "x",
            "system:kube-scheduler",
            1001,
        ));
        for i in 4..8 {
            lines.push(line(
                "create",
                "deployments",
                &format!("team-{}", i % 2),
                &format!("d{i}"),
                who,
                i,
            ));
        }
        let text = lines.join("\n");
        let run = |everything: bool| {
            let mut reader = crate::AuditReader::new(crate::ReadOptions::default());
            let analyser = AuditAnalyser::new(Catalogue::builtin(), AuditSettings::default());
            let (findings, _) = if everything {
                let mut sink = Everything(analyser);
                reader.read_stream(text.as_bytes(), "t", &mut sink);
                sink.0.finish()
            } else {
                let mut sink = analyser;
                reader.read_stream(text.as_bytes(), "t", &mut sink);
                sink.finish()
            };
            (findings, reader.stats)
        };
        let (some, stats) = run(false);
        let (all, _) = run(true);
        let titles = |f: &[Finding]| f.iter().map(|f| f.title.clone()).collect::<Vec<_>>();
        assert_eq!(titles(&some), titles(&all));
        assert_eq!(
            serde_json::to_string(&some).unwrap(),
            serde_json::to_string(&all).unwrap()
        );
        assert_eq!(some.len(), 2, "{:?}", titles(&some));
        assert!(some.iter().all(|f| f.title.contains("created 4 workloads")));
        // The renewal was decoded (it closes the burst), the read after it was not.
        assert_eq!(
            (stats.reads_skipped, stats.writes_skipped),
            (1, 0),
            "{stats:?}"
        );
    }

    /// An anonymous request is analysed however its line spells the name.
    #[test]
    fn an_escaped_anonymous_name_is_not_missed() {
        let text = line("create", "leases", "default", "x", "ANON", 0)
            .replace("ANON", r"system:anonymou\u0073");
        let mut reader = crate::AuditReader::new(crate::ReadOptions::default());
        let mut analyser = AuditAnalyser::new(Catalogue::builtin(), AuditSettings::default());
        reader.read_stream(text.as_bytes(), "t", &mut analyser);
        let (findings, _) = analyser.finish();
        assert_eq!(reader.stats.analysed, 1, "{:?}", reader.stats);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].rule, "JS-AUD-004");
    }

    #[test]
    fn a_json_patch_is_laid_on_an_empty_object() {
        let v = json_patch(
            json!([
                {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "xmrig/xmrig"},
                {"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "--donate-level=1"},
                {"op": "remove", "path": "/spec/replicas"},
                {"op": "add", "path": "/metadata/annotations/a~1b", "value": "x"}
            ])
            .as_array()
            .unwrap(),
        );
        assert_eq!(
            v,
            json!({"spec": {"template": {"spec": {"containers": [{"image": "xmrig/xmrig", "args": ["--donate-level=1"]}]}}},
                   "metadata": {"annotations": {"a/b": "x"}}})
        );
    }
}
