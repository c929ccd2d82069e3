//! One AdmissionReview request in, one verdict out.

use crate::policy::{Mode, Policy};
use crate::state::{key, ClusterState, UNREAD, UNREAD_METADATA};
use jackstop_analysers::exposure::{on_a_path_alone, ExposureAnalyser, Prepared, ROUTING_KINDS};
use jackstop_analysers::miners::MinerAnalyser;
use jackstop_analysers::Analyser;
use jackstop_catalogue::Catalogue;
use jackstop_core::{FieldLines, Finding, Object, Source};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use kube::core::DynamicObject;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

/// Admission warnings longer than this are cut (the API server keeps them short too).
const MAX_WARNING: usize = 256;

/// The most rules named in one denial message.
const MAX_DENIED: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("not an AdmissionReview: {0}")]
    Json(#[from] serde_json::Error),
    #[error("apiVersion {0:?}: only admission.k8s.io/v1 AdmissionReview is served (admissionReviewVersions: [v1])")]
    Version(String),
    #[error("kind {0:?}: expected AdmissionReview")]
    Kind(String),
    #[error("an AdmissionReview without a request")]
    NoRequest,
    #[error("not an AdmissionReview: {0}")]
    Object(String),
}

/// A review as read: the request, and the objects it carries, read once into jackstop's
/// objects. Derefs to the request.
#[derive(Debug)]
pub struct Review {
    pub request: AdmissionRequest<DynamicObject>,
    object: Option<Object>,
    old_object: Option<Object>,
}

impl std::ops::Deref for Review {
    type Target = AdmissionRequest<DynamicObject>;

    fn deref(&self) -> &Self::Target {
        &self.request
    }
}

/// An object of a review as JSON values, read in the same pass as kube's `AdmissionRequest`
/// (whose objects must be a `Resource`) and made one of jackstop's objects afterwards. Only
/// carried: it is never sent to an API server, so its `Resource` answers are empty.
///
/// `metadata.managedFields` and `status` are read past, not kept: the API server sends
/// managed fields with every object (one entry per field manager, each as long as the fields it
/// owns, often as long as the spec) and the status with every update; no rule reads either
/// (a review says what will run and what will be reachable, which the spec says), and building
/// them as values was the largest part of reading a real Pod. The cluster view drops the same
/// two ([`crate::state::UNREAD`]).
///
/// Its `ObjectMeta` (only there for the `Resource` trait; never read) is boxed and made only if
/// asked for: held inline, it made the request about 700 bytes longer, moved by value at each
/// level of the parse. With the caches cold, as they are between reviews, boxing it cut the
/// data lines a review misses on writes by 18% (scripts/bench-judge.sh's cache simulation).
#[derive(Debug, Clone)]
struct ObjectValue(Value, Option<Box<ObjectMeta>>);

impl<'de> Deserialize<'de> for ObjectValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = d.deserialize_any(Trimmed::Object)?;
        Ok(ObjectValue(v, None))
    }
}

/// Reads a value as `Value` does, leaving out at an object's top level its `status` (and
/// reading its `metadata` as [`Trimmed::Metadata`]), and in its metadata `managedFields`.
#[derive(Clone, Copy)]
enum Trimmed {
    Object,
    Metadata,
}

impl<'de> serde::de::DeserializeSeed<'de> for Trimmed {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Trimmed {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Kubernetes object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        let left_out = match self {
            Trimmed::Object => UNREAD,
            Trimmed::Metadata => UNREAD_METADATA,
        };
        let mut map = serde_json::Map::new();
        while let Some(key) = a.next_key::<String>()? {
            if key == left_out {
                a.next_value::<serde::de::IgnoredAny>()?;
                continue;
            }
            let value = match self {
                Trimmed::Object if key == "metadata" => a.next_value_seed(Trimmed::Metadata)?,
                _ => a.next_value::<Value>()?,
            };
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = a.next_element::<Value>()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
}

impl kube::Resource for ObjectValue {
    type DynamicType = ();
    type Scope = kube::core::DynamicResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn meta(&self) -> &ObjectMeta {
        static NONE: std::sync::OnceLock<ObjectMeta> = std::sync::OnceLock::new();
        self.1
            .as_deref()
            .unwrap_or_else(|| NONE.get_or_init(ObjectMeta::default))
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.1.get_or_insert_with(Default::default)
    }
}

/// Reads a request body.
///
/// One pass over the body: kube's own `AdmissionRequest`, with its objects read as JSON values
/// (and made jackstop's objects). Building values for the whole review and converting the
/// request from them, as before, cost about a third more: a review's bookkeeping (its kinds,
/// resources, user and options) is as long as a small object. A body that does not read so is
/// read again, leniently, to say what is wrong with it (another version or kind, no request).
/// The objects are checked as `DynamicObject` checks them: a map, with `metadata` an
/// `ObjectMeta`; one that is not is a bad request, never an object judged without them.
pub fn parse_review(body: &[u8]) -> Result<Review, ReviewError> {
    #[derive(Deserialize)]
    struct Envelope<R> {
        #[serde(default, rename = "apiVersion")]
        api_version: String,
        #[serde(default)]
        kind: String,
        request: Option<R>,
    }
    let check = |api_version: &str, kind: &str| {
        if api_version != "admission.k8s.io/v1" {
            return Err(ReviewError::Version(api_version.to_string()));
        }
        if kind != "AdmissionReview" {
            return Err(ReviewError::Kind(kind.to_string()));
        }
        Ok(())
    };
    // Checked as UTF-8 once, whole, rather than string by string as the parser does with bytes
    // (a twentieth of the parse); a body that is not UTF-8 is parsed as bytes for the error.
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(e) => {
            return Err(match serde_json::from_slice::<Value>(body) {
                Err(json) => ReviewError::Json(json),
                Ok(_) => ReviewError::Object(format!("the body is not UTF-8: {e}")),
            })
        }
    };
    let envelope: Envelope<AdmissionRequest<ObjectValue>> = match serde_json::from_str(text) {
        Ok(e) => e,
        Err(e) => {
            // Said in the order a reader of the review would: its version and kind first.
            let lenient: Envelope<&RawValue> = serde_json::from_str(text)?;
            check(&lenient.api_version, &lenient.kind)?;
            if lenient.request.is_none() {
                return Err(ReviewError::NoRequest);
            }
            return Err(ReviewError::Json(e));
        }
    };
    check(&envelope.api_version, &envelope.kind)?;
    let Some(mut wire) = envelope.request else {
        return Err(ReviewError::NoRequest);
    };
    // What the request says the object is, for an object that does not say it itself (the
    // API server always sends both; a body that leaves them out is judged all the same).
    let gvk = &wire.kind;
    let api_version = gvk.api_version();
    let take = |key: &str, v: Option<ObjectValue>| -> Result<Option<Object>, ReviewError> {
        let mut map = match v.map(|v| v.0) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(map)) => map,
            Some(_) => {
                return Err(ReviewError::Object(format!(
                    "request.{key} is not an object"
                )))
            }
        };
        ObjectMeta::deserialize(map.get("metadata").unwrap_or(&Value::Null))
            .map_err(|e| ReviewError::Object(format!("request.{key}.metadata: {e}")))?;
        if !map.get("kind").is_some_and(Value::is_string) {
            map.insert("kind".into(), Value::String(gvk.kind.clone()));
        }
        if !map.get("apiVersion").is_some_and(Value::is_string) {
            map.insert("apiVersion".into(), Value::String(api_version.clone()));
        }
        Object::from_value(
            Value::Object(map),
            Source {
                path: Arc::from("admission"),
                line: 0,
                template: None,
            },
            FieldLines::default(),
        )
        .map(Some)
        .ok_or_else(|| ReviewError::Object(format!("request.{key} has no kind")))
    };
    let object = take("object", wire.object.take())?;
    let old_object = take("oldObject", wire.old_object.take())?;
    let request = AdmissionRequest::<DynamicObject> {
        // Copied from the review, as kube does: the answer is of the same apiVersion and kind.
        types: kube::core::TypeMeta {
            api_version: envelope.api_version,
            kind: envelope.kind,
        },
        uid: wire.uid,
        kind: wire.kind,
        resource: wire.resource,
        sub_resource: wire.sub_resource,
        request_kind: wire.request_kind,
        request_resource: wire.request_resource,
        request_sub_resource: wire.request_sub_resource,
        name: wire.name,
        namespace: wire.namespace,
        operation: wire.operation,
        user_info: wire.user_info,
        object: None,
        old_object: None,
        dry_run: wire.dry_run,
        options: wire.options,
    };
    Ok(Review {
        request,
        object,
        old_object,
    })
}

/// What was decided, and why.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub allowed: bool,
    /// Why it was denied: what was found and how to do it safely.
    pub message: Option<String>,
    /// Admission warnings (kubectl prints them).
    pub warnings: Vec<String>,
    /// Every finding the change makes, with what the policy did with it (`off` ones left out).
    pub findings: Vec<(Finding, Mode)>,
    /// Why nothing was looked at (an exempt namespace or user), when so.
    pub exempt: Option<String>,
}

impl Verdict {
    /// What was decided, as the metrics and the decision log name it: `exempt`, `denied`,
    /// `warned` or `allowed`.
    pub fn decision(&self) -> &'static str {
        if self.exempt.is_some() {
            "exempt"
        } else if !self.allowed {
            "denied"
        } else if !self.warnings.is_empty() {
            "warned"
        } else {
            "allowed"
        }
    }

    fn allow() -> Verdict {
        Verdict {
            allowed: true,
            message: None,
            warnings: Vec::new(),
            findings: Vec::new(),
            exempt: None,
        }
    }
}

/// An operation as the API server names it (`CREATE`, `UPDATE`, `DELETE`, `CONNECT`).
pub fn operation_name(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

/// The response to send back for a verdict.
pub fn response(req: &AdmissionRequest<DynamicObject>, v: &Verdict) -> AdmissionResponse {
    let mut r = AdmissionResponse::from(req);
    if !v.allowed {
        r = r.deny(v.message.as_deref().unwrap_or("denied by jackstop"));
        r.result.code = 403;
        r.result.reason = "Forbidden".into();
    }
    if !v.warnings.is_empty() {
        r.warnings = Some(v.warnings.clone());
    }
    r
}

/// The analysers, built once.
pub struct Engine {
    catalogue: &'static Catalogue,
    miners: MinerAnalyser,
    exposure: ExposureAnalyser,
    /// Walk the whole view for every Service and every workload not made by a controller,
    /// even one that is on no path ([`ClusterState`] knows which are), and analyse every
    /// controller-made workload alone, even one without host ports: for tests that check the
    /// shortcuts change no verdict.
    walk_always: bool,
}

/// Whether two versions of an object say the same to the analysers: every top-level field but
/// `status`, and of `metadata` only the labels and annotations.
fn same_content(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let content = |k: &String| k != "status" && k != "metadata";
    fn meta<'v>(
        m: &'v serde_json::Map<String, serde_json::Value>,
        key: &str,
    ) -> Option<&'v serde_json::Value> {
        m.get("metadata").and_then(|x| x.get(key))
    }
    a.keys().filter(|k| content(k)).count() == b.keys().filter(|k| content(k)).count()
        && a.iter()
            .filter(|(k, _)| content(k))
            .all(|(k, v)| b.get(k) == Some(v))
        && meta(a, "labels") == meta(b, "labels")
        && meta(a, "annotations") == meta(b, "annotations")
}

/// The findings in `after` that `before` does not have.
fn added(after: Vec<Finding>, before: &HashSet<String>) -> Vec<Finding> {
    after
        .into_iter()
        .filter(|f| !before.contains(&key(f)))
        .collect()
}

fn keys(findings: &[Finding]) -> HashSet<String> {
    findings.iter().map(key).collect()
}

fn same(a: &Object, kind: &str, ns: Option<&str>, name: &str) -> bool {
    a.kind == kind && a.namespace.as_deref() == ns && a.name == name
}

impl Engine {
    pub fn new(catalogue: &'static Catalogue) -> Engine {
        Engine {
            catalogue,
            miners: MinerAnalyser::default(),
            exposure: ExposureAnalyser,
            walk_always: false,
        }
    }

    /// The same engine without the shortcut for Services and workloads on no path: each is
    /// judged by walking the whole view. Slower, and never of another verdict (the tests compare).
    pub fn walking_always(mut self) -> Engine {
        self.walk_always = true;
        self
    }

    /// The kinds a webhook should be sent (the ValidatingWebhookConfiguration's rules).
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut k: Vec<&'static str> = self.miners.kinds().to_vec();
        for x in self.exposure.kinds() {
            if !k.contains(x) {
                k.push(x);
            }
        }
        k.retain(|k| {
            *k != jackstop_core::object::DOCUMENT_KIND && *k != "Namespace" && *k != "Profile"
        });
        k
    }

    /// Judges one request against the cluster as `state` holds it.
    pub fn review(&self, review: &Review, policy: &Policy, state: &ClusterState) -> Verdict {
        let req = &review.request;
        let kind = req.kind.kind.as_str();
        let ns = req.namespace.as_deref().filter(|n| !n.is_empty());
        let user = req.user_info.username.as_deref().unwrap_or("");
        if matches!(req.operation, Operation::Connect) {
            return Verdict::allow();
        }
        // Status and scale say nothing about what runs; ephemeral containers do.
        match req.sub_resource.as_deref() {
            None | Some("") | Some("ephemeralcontainers") => {}
            Some(_) => return Verdict::allow(),
        }
        if let Some(why) = policy.exemption(ns, ns.and_then(|n| state.namespace_labels(n)), user) {
            return Verdict {
                exempt: Some(why),
                ..Verdict::allow()
            };
        }
        let object = review.object.as_ref();
        let old = review.old_object.as_ref();
        // An update that changes only status or bookkeeping (resourceVersion, managed fields,
        // finalizers, owner references) adds nothing any analyser reads: removing the last
        // finalizer of a miner being deleted is allowed, so that it can go. An object being
        // deleted is judged like any other when its content changes (the API server still takes
        // such changes while finalizers hold it: a ConfigMap could be rewritten with a miner's
        // configuration).
        if let (Operation::Update, Some(o), Some(p)) = (&req.operation, &object, &old) {
            if same_content(&o.body, &p.body) {
                return Verdict::allow();
            }
        }

        let mut found: Vec<Finding> = Vec::new();
        if let Some(o) = &object {
            if self.miners.kinds().contains(&kind) {
                let before = old
                    .as_ref()
                    .map(|o| keys(&self.miners.analyse(std::slice::from_ref(o), self.catalogue)))
                    .unwrap_or_default();
                found.extend(added(
                    self.miners.analyse(std::slice::from_ref(o), self.catalogue),
                    &before,
                ));
            }
        }
        // A forged controller reference does not last: the garbage collector deletes what it
        // finds no owner for.
        let controlled = object.is_some_and(|o| o.controller_ref().is_some());
        if kind == "Service" && req.kind.group.is_empty() {
            // Judged on the cluster as the change would leave it, unless it is no way in and
            // no walk looks for it (most Services of a large cluster): then nothing changes.
            let name = object
                .or(old)
                .map(|o| o.name.as_str())
                .unwrap_or(req.name.as_str());
            let svc_ns = object
                .or(old)
                .map(Object::effective_namespace)
                .or(ns)
                .unwrap_or("default");
            if self.walk_always
                || state.service_may_change_exposure(svc_ns, name, object, self.catalogue)
            {
                found.extend(self.exposure_change(req, kind, ns, object, None, state));
            }
        } else if ROUTING_KINDS.contains(&kind) {
            // A way in: judged on the cluster as the change would leave it.
            found.extend(self.exposure_change(req, kind, ns, object, None, state));
        } else if self.exposure.kinds().contains(&kind) {
            if !controlled {
                let prepared = object.map(Prepared::of);
                let now = object.zip(prepared.as_ref());
                // A workload a Service may already route to: judged on the cluster as the
                // change would leave it, unless it is on no path, as the request has it or as
                // the view holds it (then the exposures stay as they are, and walking the whole
                // view would find nothing new).
                let name = object.map(|o| o.name.as_str()).unwrap_or(req.name.as_str());
                if self.walk_always || state.may_change_exposure(kind, ns, name, now) {
                    found.extend(self.exposure_change(
                        req,
                        kind,
                        ns,
                        object,
                        prepared.as_ref(),
                        state,
                    ));
                }
            } else if let Some(o) = object.filter(|o| self.walk_always || on_a_path_alone(o)) {
                // What a controller makes (a ReplicaSet's Pods, a Deployment's ReplicaSets)
                // was judged as the controller's template: judged on the view, a replica of a
                // workload exposed already would add a finding of its own and be refused,
                // breaking what runs without closing anything. Alone, it can still be a way in
                // (hostPort, hostNetwork: on a path with no Service at all); one with neither
                // is not analysed, nor its templates read.
                let before = old
                    .as_ref()
                    .map(|o| {
                        keys(
                            &self
                                .exposure
                                .analyse(std::slice::from_ref(o), self.catalogue),
                        )
                    })
                    .unwrap_or_default();
                found.extend(added(
                    self.exposure
                        .analyse_prepared([(o, Some(&Prepared::of(o)))], self.catalogue),
                    &before,
                ));
            }
        }
        self.decide(req, policy, found)
    }

    /// The exposures the cluster would have after this change that it does not have now.
    fn exposure_change(
        &self,
        req: &AdmissionRequest<DynamicObject>,
        kind: &str,
        ns: Option<&str>,
        object: Option<&Object>,
        prepared: Option<&Prepared>,
        state: &ClusterState,
    ) -> Vec<Finding> {
        let name = object.map(|o| o.name.as_str()).unwrap_or(req.name.as_str());
        let mut after: Vec<(&Object, Option<&Prepared>)> = state
            .objects
            .iter()
            .map(|o| &**o)
            .zip(state.prepared.iter().map(Some))
            .filter(|(o, _)| !same(o, kind, ns, name))
            .collect();
        if !matches!(req.operation, Operation::Delete) {
            if let Some(o) = object {
                after.push((o, prepared));
            }
        }
        added(
            self.exposure.analyse_prepared(after, self.catalogue),
            &state.baseline,
        )
    }

    fn decide(
        &self,
        req: &AdmissionRequest<DynamicObject>,
        policy: &Policy,
        found: Vec<Finding>,
    ) -> Verdict {
        let mut v = Verdict::allow();
        let mut denied: Vec<&Finding> = Vec::new();
        let mut judged = Vec::new();
        // The request's namespace, as for exemptions: what is allowed or denied is the change
        // (a VirtualService in team-x that opens a door in istio-system goes by team-x).
        let request_ns = req.namespace.as_deref().filter(|n| !n.is_empty());
        for f in found {
            let ns = request_ns.or(f.resource.namespace.as_deref());
            let mode = policy.mode_for(&f.rule, f.severity, ns);
            if mode != Mode::Off {
                judged.push((f, mode));
            }
        }
        judged.sort_by_key(|(f, _)| std::cmp::Reverse(f.severity));
        for (f, mode) in &judged {
            match mode {
                Mode::Enforce => denied.push(f),
                Mode::Warn => v.warnings.push(cut(
                    format!(
                        "jackstop {} ({}): {}{}",
                        f.rule,
                        f.severity.as_str(),
                        f.title,
                        f.location
                            .field
                            .as_deref()
                            .map(|x| format!(" at {x}"))
                            .unwrap_or_default()
                    ),
                    MAX_WARNING,
                )),
                _ => {}
            }
        }
        if !denied.is_empty() {
            v.allowed = false;
            v.message = Some(denial(req, &denied));
        }
        v.findings = judged;
        v
    }
}

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut at = max - 3;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
        s.push_str("...");
    }
    s
}

/// What was found and how to do it safely, for the person whose request was denied.
fn denial(req: &AdmissionRequest<DynamicObject>, denied: &[&Finding]) -> String {
    let op = match req.operation {
        Operation::Create => "creating",
        Operation::Update => "changing",
        Operation::Delete => "deleting",
        Operation::Connect => "connecting to",
    };
    let what = match req.namespace.as_deref().filter(|n| !n.is_empty()) {
        Some(ns) => format!("{} {ns}/{}", req.kind.kind, req.name),
        None => format!("{} {}", req.kind.kind, req.name),
    };
    // One part per rule: the findings of a rule share their remediation.
    let mut rules: Vec<&str> = Vec::new();
    for f in denied {
        if !rules.contains(&f.rule.as_str()) {
            rules.push(&f.rule);
        }
    }
    let mut parts = Vec::new();
    for rule in rules.iter().take(MAX_DENIED) {
        let of_rule: Vec<&&Finding> = denied.iter().filter(|f| f.rule == *rule).collect();
        let first = of_rule[0];
        let field = first
            .location
            .field
            .as_deref()
            .map(|x| format!(" at {x}"))
            .unwrap_or_default();
        let on = if first.resource.name == req.name && first.resource.kind == req.kind.kind {
            String::new()
        } else {
            format!(" (on {})", first.resource)
        };
        let more = match of_rule.len() {
            1 => String::new(),
            n => format!(" and {} more like it", n - 1),
        };
        let evidence = first
            .evidence
            .first()
            .map(|e| format!(" Evidence: {}.", cut(e.clone(), 300)))
            .unwrap_or_default();
        parts.push(format!(
            "{} [{}] {}{field}{on}{more}.{evidence} Safe way: {}",
            first.rule,
            first.severity.as_str(),
            first.title,
            cut(first.remediation.trim().replace('\n', " "), 400)
        ));
    }
    if rules.len() > MAX_DENIED {
        parts.push(format!(
            "and findings of {} more rules",
            rules.len() - MAX_DENIED
        ));
    }
    format!(
        "jackstop denied {op} {what}: {} (to let this through, an administrator can exempt it in the webhook's policy)",
        parts.join(" | ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_status_and_bookkeeping_are_not_content() {
        let a = serde_json::json!({"kind": "Pod", "metadata": {"name": "p", "resourceVersion": "1", "labels": {"a": "1"}}, "spec": {"x": 1}, "status": {"phase": "Pending"}});
        let mut b = a.clone();
        b["metadata"]["resourceVersion"] = "2".into();
        b["metadata"]["finalizers"] = serde_json::json!(["f"]);
        b["status"]["phase"] = "Running".into();
        assert!(same_content(&a, &b));
        let mut c = b.clone();
        c["metadata"]["labels"]["a"] = "2".into();
        assert!(!same_content(&a, &c), "labels select pods");
        let mut d = b.clone();
        d["spec"]["x"] = 2.into();
        assert!(!same_content(&a, &d));
        let mut e = b.clone();
        e["data"] = serde_json::json!({"config.json": "{}"});
        assert!(!same_content(&a, &e), "a field added beside spec");
    }

    /// A body that is not UTF-8 is refused with the parser's own error (line and column),
    /// whether the stray byte is in a string or between tokens.
    #[test]
    fn a_body_that_is_not_utf8_is_refused() {
        let good = br#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "resource": {"group": "", "version": "v1", "resource": "pods"}, "name": "p", "operation": "DELETE", "userInfo": {}}}"#;
        assert!(parse_review(good).is_ok());
        for (at, byte) in [(2usize, 0xffu8), (1, 0xc3)] {
            let mut body = good.to_vec();
            body.insert(at, byte);
            match parse_review(&body) {
                Err(ReviewError::Json(e)) => assert!(e.line() == 1 && e.column() > 0, "{e}"),
                other => panic!("{other:?}"),
            }
        }
        let mut in_string = good.to_vec();
        let name = in_string.windows(3).position(|w| w == b"\"p\"").unwrap();
        in_string.insert(name + 2, 0xfe);
        assert!(matches!(
            parse_review(&in_string),
            Err(ReviewError::Json(_))
        ));
    }

    /// The objects of a review are checked as kube's `DynamicObject` checks them; one that
    /// says not what it is is taken for what the request says.
    #[test]
    fn objects_are_read_once_and_checked() {
        let review = |object: Value| {
            serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "request": {"uid": "u1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "resource": {"group": "", "version": "v1", "resource": "pods"},
                    "name": "p", "namespace": "ml", "operation": "CREATE",
                    "userInfo": {"username": "alice"}, "object": object}})
            .to_string()
        };
        let miner = serde_json::json!({"metadata": {"name": "p", "namespace": "ml"},
            "spec": {"containers": [{"name": "c", "image": "alpine",
                "command": ["xmrig", "-o", "stratum+tcp://pool.example.invalid:3333", "--donate-level", "1"]}]}});
        // No kind or apiVersion: a Pod, as the request says, and judged as one.
        let r = parse_review(review(miner.clone()).as_bytes()).unwrap();
        assert_eq!(r.types.api_version, "admission.k8s.io/v1");
        let o = r.object.as_ref().unwrap();
        assert_eq!((o.api_version.as_str(), o.kind.as_str()), ("v1", "Pod"));
        let v = Engine::new(Catalogue::builtin()).review(
            &r,
            &Policy::default(),
            &ClusterState::empty(),
        );
        assert!(!v.allowed, "{v:?}");
        // Not an object, or metadata that is not ObjectMeta: a bad request.
        for bad in [
            serde_json::json!("a string"),
            serde_json::json!(7),
            serde_json::json!(true),
            serde_json::json!([{"metadata": {}}]),
            serde_json::json!({"metadata": {"name": "p", "labels": ["a"]}, "spec": {}}),
            serde_json::json!({"metadata": ["a"], "spec": {}}),
            serde_json::json!({"metadata": "p", "spec": {}}),
        ] {
            let e = parse_review(review(bad.clone()).as_bytes()).unwrap_err();
            assert!(matches!(e, ReviewError::Object(_)), "{bad}: {e}");
        }
        // A null object is no object (a DELETE's).
        assert!(parse_review(review(Value::Null).as_bytes())
            .unwrap()
            .object
            .is_none());
    }

    /// The objects of the request as read hold a value and a pointer, not an `ObjectMeta`
    /// (360 bytes inline, copied at each level of the parse).
    #[test]
    fn objects_as_read_are_small() {
        assert!(
            std::mem::size_of::<ObjectValue>()
                <= std::mem::size_of::<Value>() + std::mem::size_of::<usize>()
        );
        let mut o = ObjectValue(Value::Null, None);
        use kube::Resource;
        assert!(o.meta().name.is_none());
        o.meta_mut().name = Some("p".into());
        assert_eq!(o.meta().name.as_deref(), Some("p"));
    }

    /// `metadata.managedFields`, which the API server sends with every object, and `status`
    /// are read past: the object is the same without them, its other metadata kept (labels, a
    /// later duplicate key winning as with any JSON value), and they are never checked (no
    /// rule reads them).
    #[test]
    fn managed_fields_are_read_past() {
        let review = |object: &str| {
            format!(
                r#"{{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "request": {{"uid": "u1", "kind": {{"group": "", "version": "v1", "kind": "Pod"}},
                    "resource": {{"group": "", "version": "v1", "resource": "pods"}},
                    "name": "p", "namespace": "ml", "operation": "CREATE",
                    "userInfo": {{"username": "alice"}}, "object": {object}}}}}"#
            )
        };
        let spec = serde_json::json!({"containers": [
            {"name": "c", "image": "alpine", "args": ["a", 1, null, {"x": [true]}]}]});
        let plain = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ml", "labels": {"app": "a"}}, "spec": spec})
        .to_string();
        let entry = serde_json::json!({"manager": "kubectl", "operation": "Update",
            "apiVersion": "v1", "time": "2021-06-01T09:00:00Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}}}}}});
        // With managedFields, and labels given twice (the later ones count).
        let managed = plain.replace(
            r#""namespace":"ml","#,
            &format!(r#""managedFields":[{entry}],"labels":{{"app":"b"}},"namespace":"ml","#),
        );
        assert!(managed.contains("managedFields") && managed.contains(r#""app":"b""#));
        // Not ObjectMeta's managedFields at all: never looked at.
        let odd = plain.replace(r#""name":"p","#, r#""name":"p","managedFields":"x","#);
        assert!(odd.contains("managedFields"));
        let with_status = plain.replace(
            r#""spec":"#,
            r#""status":{"phase":"Pending","conditions":[{"type":"PodScheduled"}]},"spec":"#,
        );
        let odd_status = plain.replace(r#""spec":"#, r#""status":"x","spec":"#);
        assert!(with_status.contains("Pending") && odd_status.contains(r#""status":"x""#));
        let read = |o: &str| parse_review(review(o).as_bytes()).unwrap().object.unwrap();
        let want = read(&plain);
        assert!(want.at("metadata.labels.app").is_some());
        for o in [&managed, &odd, &with_status, &odd_status] {
            let got = read(o);
            assert_eq!(got.body, want.body, "{o}");
            assert!(got.at("metadata.managedFields").is_none() && got.at("status").is_none());
        }
        // The metadata of an oldObject too.
        let update = review(&managed).replace(
            r#""operation": "CREATE""#,
            &format!(r#""operation": "UPDATE", "oldObject": {managed}"#),
        );
        let r = parse_review(update.as_bytes()).unwrap();
        assert_eq!(r.old_object.unwrap().body, want.body);
    }

    /// A body that does not read as a review says why in a reader's order: its version and
    /// kind first, then a missing request, then what is wrong inside the request.
    #[test]
    fn a_review_that_does_not_read_says_why() {
        let body = |api: &str, kind: &str, request: &str| {
            format!(r#"{{"apiVersion": "{api}", "kind": "{kind}", "request": {request}}}"#)
        };
        let good = r#"{"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "resource": {"group": "", "version": "v1", "resource": "pods"}, "name": "p", "operation": "DELETE", "userInfo": {}}"#;
        let no_uid = good.replace(r#""uid": "u", "#, "");
        type Expected = fn(&ReviewError) -> bool;
        let cases: [(String, Expected); 7] = [
            (body("admission.k8s.io/v1", "AdmissionReview", good), |_| {
                false
            }),
            (
                body("admission.k8s.io/v1beta1", "AdmissionReview", good),
                |e| matches!(e, ReviewError::Version(v) if v == "admission.k8s.io/v1beta1"),
            ),
            (
                body("admission.k8s.io/v1beta1", "AdmissionReview", &no_uid),
                |e| matches!(e, ReviewError::Version(_)),
            ),
            (
                body("admission.k8s.io/v1", "Pod", &no_uid),
                |e| matches!(e, ReviewError::Kind(k) if k == "Pod"),
            ),
            (
                body("admission.k8s.io/v1", "AdmissionReview", "null"),
                |e| matches!(e, ReviewError::NoRequest),
            ),
            (
                r#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}"#.to_string(),
                |e| matches!(e, ReviewError::NoRequest),
            ),
            (
                body("admission.k8s.io/v1", "AdmissionReview", &no_uid),
                |e| matches!(e, ReviewError::Json(j) if j.to_string().contains("uid")),
            ),
        ];
        for (i, (b, expected)) in cases.iter().enumerate() {
            match parse_review(b.as_bytes()) {
                Ok(r) => assert!(i == 0 && r.uid == "u" && r.object.is_none(), "case {i}"),
                Err(e) => assert!(expected(&e), "case {i}: {e}"),
            }
        }
        // Not JSON, or a request that is not an object: the parser's error.
        for b in [
            "{",
            r#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": "x"}"#,
        ] {
            assert!(
                matches!(parse_review(b.as_bytes()), Err(ReviewError::Json(_))),
                "{b}"
            );
        }
    }

    #[test]
    fn warnings_are_cut_on_a_char_boundary() {
        let s = cut("é".repeat(200), 256);
        assert!(s.len() <= 256);
        assert!(s.ends_with("..."));
    }
}
