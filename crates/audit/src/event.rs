//! One audit event, borrowed from the line it was read from: only the fields the rules read
//! are decoded, and the request and response objects stay raw JSON text until a rule needs
//! them (most events never do).

use jackstop_core::ResourceRef;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// `audit.k8s.io/v1` Event (and `v1beta1`, whose shape the rules read is the same).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event<'a> {
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub level: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow", rename = "auditID")]
    pub audit_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub stage: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow", rename = "requestURI")]
    pub request_uri: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub verb: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub user: User<'a>,
    #[serde(borrow, default)]
    pub impersonated_user: Option<User<'a>>,
    #[serde(borrow, default, rename = "sourceIPs")]
    pub source_ips: Vec<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub user_agent: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub object_ref: Option<ObjectRef<'a>>,
    #[serde(borrow, default)]
    pub response_status: Option<ResponseStatus<'a>>,
    #[serde(borrow, default)]
    pub request_object: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub response_object: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub request_received_timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub stage_timestamp: Option<Cow<'a, str>>,
    /// `v1beta1` only.
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub timestamp: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct User<'a> {
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub username: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub groups: Vec<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef<'a> {
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub resource: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub namespace: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub api_group: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub subresource: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ResponseStatus<'a> {
    #[serde(default)]
    pub code: Option<u16>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub reason: Option<Cow<'a, str>>,
}

/// An optional string borrowed from the line when it has no escapes (serde borrows a `Cow`
/// only when it is not inside an `Option`).
fn opt_cow<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Option::<Borrowed>::deserialize(d).map(|o| o.map(|b| b.0))
}

/// What the reader tells of an event from its line, without decoding it: enough for a sink to
/// say whether it wants the event decoded (most events of a busy cluster are reads, lease
/// renewals and status updates that no rule reads).
///
/// Read from the line's own top-level keys, whatever their order (a key inside the request or
/// response object, or inside a string, is never taken for the event's), by a scan that stops
/// once it has them. A line it cannot vouch for (not one object, a key or value with escapes,
/// a repeated key, a value of an unexpected type, not an `audit.k8s.io` Event) has no head and
/// is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventHead<'a> {
    pub stage: &'a str,
    pub verb: &'a str,
    /// The requestURI, when it is there and has no escapes.
    pub request_uri: Option<&'a str>,
    /// The objectRef's resource and subresource; empty when absent.
    pub resource: &'a str,
    pub subresource: &'a str,
    /// The line names `system:anonymous` or `system:unauthenticated` anywhere, or may under
    /// an escape (set by the reader).
    pub unauthenticated: bool,
    line: &'a [u8],
    /// Where the walk stopped (after the value of the last key it needed), `None` when it
    /// went to the end; and whether it passed a time key on its way.
    resume: Option<usize>,
    passed_time: bool,
}

impl<'a> EventHead<'a> {
    /// The head of one JSON line (trimmed), or `None` when the line must be decoded to tell.
    pub fn read(line: &'a [u8]) -> Option<EventHead<'a>> {
        if line.last() != Some(&b'}') {
            return None;
        }
        let (mut kind, mut api_version, mut stage, mut verb) = (None, None, None, None);
        let mut object_ref: Option<(&str, &str)> = None;
        let mut request_uri: Option<Option<&str>> = None;
        let (mut resume, mut passed_time) = (None, false);
        // The loop of `walk_object`, by hand (the closure costs): the reader's hottest code.
        let mut c = Scan { s: line, i: 0 };
        c.ws();
        c.eat(b'{')?;
        loop {
            c.ws();
            let key = c.plain_string()?;
            c.ws();
            c.eat(b':')?;
            c.ws();
            let slot = match key {
                b"kind" => Some(&mut kind),
                b"apiVersion" => Some(&mut api_version),
                b"stage" => Some(&mut stage),
                b"verb" => Some(&mut verb),
                b"objectRef" => {
                    if object_ref.is_some() {
                        return None;
                    }
                    object_ref = Some(c.object_ref()?);
                    None
                }
                b"requestURI" => {
                    if request_uri.is_some() {
                        return None;
                    }
                    let uri = c.maybe_plain_string()?;
                    request_uri = Some(uri.and_then(|u| std::str::from_utf8(u).ok()));
                    None
                }
                _ => {
                    passed_time |= matches!(
                        key,
                        b"stageTimestamp" | b"requestReceivedTimestamp" | b"timestamp"
                    );
                    c.skip_value()?;
                    None
                }
            };
            if let Some(slot) = slot {
                if slot.is_some() {
                    return None;
                }
                *slot = Some(std::str::from_utf8(c.plain_string()?).ok()?);
            }
            // The rest of the line is not needed.
            let done = kind.is_some()
                && api_version.is_some()
                && stage.is_some()
                && verb.is_some()
                && object_ref.is_some();
            if done {
                resume = Some(c.i);
                break;
            }
            c.ws();
            match c.next()? {
                b',' => continue,
                b'}' => {
                    c.at_end()?;
                    break;
                }
                _ => return None,
            }
        }
        // What the reader would refuse or could not place is decoded, to be reported.
        if kind != Some("Event")
            || !matches!(
                api_version,
                None | Some("audit.k8s.io/v1") | Some("audit.k8s.io/v1beta1")
            )
        {
            return None;
        }
        let (resource, subresource) = object_ref.unwrap_or(("", ""));
        Some(EventHead {
            stage: stage?,
            verb: verb?,
            request_uri: request_uri.flatten(),
            resource,
            subresource,
            unauthenticated: false,
            line,
            resume,
            passed_time,
        })
    }

    /// The text of the event's time, as [`Event::time`] tells it (the first of stageTimestamp,
    /// requestReceivedTimestamp and timestamp that is there): `Some(None)` when it has none,
    /// `None` when the line cannot tell (an escape, a value of another type). Read from the
    /// rest of the line (past where [`EventHead::read`] stopped, or from the start when the
    /// time keys came before), so not cheap: for the few events whose time matters.
    pub fn time(&self) -> Option<Option<&'a str>> {
        let from = match (self.passed_time, self.resume) {
            (true, _) => 0,
            (false, Some(at)) => at,
            (false, None) => return Some(None),
        };
        let mut times: [Option<&str>; 3] = [None; 3];
        walk_object(self.line, from, |key, c| {
            let at = match key {
                b"stageTimestamp" => 0,
                b"requestReceivedTimestamp" => 1,
                b"timestamp" => 2,
                _ => {
                    c.skip_value()?;
                    return Some(true);
                }
            };
            if c.peek() == Some(b'n') {
                // null, as if it were not there
                c.skip_value()?;
                return Some(true);
            }
            times[at] = Some(std::str::from_utf8(c.plain_string()?).ok()?);
            // The first in order is all it needs.
            Some(at != 0)
        })?;
        Some(times.into_iter().flatten().next())
    }

    /// A read (get, list, watch).
    pub fn is_read(&self) -> bool {
        matches!(self.verb, "get" | "list" | "watch")
    }
}

/// Walks the keys of the JSON object that `text` is, in order, from its start (`from` 0) or
/// from just after a value of it (`from`): `visit` is given each key (a key with escapes ends
/// the walk with `None`) and the scan at its value, reads or skips the value, and says whether
/// to go on. `None` when the text is not shaped as expected (what follows the keys visited is
/// not checked when the walk stops early).
fn walk_object<'a>(
    text: &'a [u8],
    from: usize,
    mut visit: impl FnMut(&'a [u8], &mut Scan<'a>) -> Option<bool>,
) -> Option<()> {
    let mut c = Scan { s: text, i: from };
    c.ws();
    if from == 0 {
        c.eat(b'{')?;
        c.ws();
        if c.peek() == Some(b'}') {
            c.i += 1;
            return c.at_end();
        }
    } else {
        match c.next()? {
            b',' => {}
            b'}' => return c.at_end(),
            _ => return None,
        }
    }
    loop {
        c.ws();
        let key = c.plain_string()?;
        c.ws();
        c.eat(b':')?;
        c.ws();
        if !visit(key, &mut c)? {
            return Some(());
        }
        c.ws();
        match c.next()? {
            b',' => continue,
            b'}' => return c.at_end(),
            _ => return None,
        }
    }
}

/// A forward scan over JSON text that checks only what it needs: string bounds, nesting and
/// separators. Values it skips are checked by nothing (a malformed skipped value is the
/// decoder's to report, where the line is decoded).
struct Scan<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        Some(b)
    }

    #[inline]
    fn eat(&mut self, b: u8) -> Option<()> {
        (self.next()? == b).then_some(())
    }

    /// Nothing but whitespace left.
    fn at_end(&mut self) -> Option<()> {
        self.ws();
        (self.i == self.s.len()).then_some(())
    }

    #[inline]
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// A string without escapes, its content; `None` for anything else.
    #[inline]
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let rest = &self.s[self.i..];
        let end = quote_or_backslash(rest)?;
        if rest[end] != b'"' {
            return None;
        }
        self.i += end + 1;
        Some(&rest[..end])
    }

    /// A string's content when it has no escapes; `Some(None)` when it has (it is skipped).
    fn maybe_plain_string(&mut self) -> Option<Option<&'a [u8]>> {
        let start = self.i;
        if let Some(s) = self.plain_string() {
            return Some(Some(s));
        }
        self.i = start;
        self.eat(b'"')?;
        self.skip_string_rest()?;
        Some(None)
    }

    /// Past the rest of a string whose opening quote was read, escapes and all.
    #[inline]
    fn skip_string_rest(&mut self) -> Option<()> {
        loop {
            let rest = self.s.get(self.i..)?;
            let at = quote_or_backslash(rest)?;
            if rest[at] == b'"' {
                self.i += at + 1;
                return Some(());
            }
            // A backslash and the byte it escapes.
            self.i += at + 2;
        }
    }

    /// Past one value of any type.
    fn skip_value(&mut self) -> Option<()> {
        match self.next()? {
            b'"' => self.skip_string_rest(),
            b'{' | b'[' => {
                let mut depth = 1usize;
                while depth > 0 {
                    match self.next()? {
                        b'"' => self.skip_string_rest()?,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => depth -= 1,
                        _ => {}
                    }
                }
                Some(())
            }
            _ => {
                while !matches!(
                    self.peek()?,
                    b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'
                ) {
                    self.i += 1;
                }
                Some(())
            }
        }
    }

    /// An objectRef object: its resource and subresource (empty when absent).
    fn object_ref(&mut self) -> Option<(&'a str, &'a str)> {
        self.eat(b'{')?;
        let (mut resource, mut subresource) = (None, None);
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Some(("", ""));
        }
        loop {
            self.ws();
            let key = self.plain_string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            let slot = match key {
                b"resource" => Some(&mut resource),
                b"subresource" => Some(&mut subresource),
                _ => {
                    self.skip_value()?;
                    None
                }
            };
            if let Some(slot) = slot {
                if slot.is_some() {
                    return None;
                }
                *slot = Some(std::str::from_utf8(self.plain_string()?).ok()?);
            }
            self.ws();
            match self.next()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
        Some((resource.unwrap_or(""), subresource.unwrap_or("")))
    }
}

/// Where the first quote or backslash of `s` is. Eight bytes at a time: the strings of an event's
/// head are short, too short for a vectorised search to pay for its start.
#[inline]
fn quote_or_backslash(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte of `w` that is zero (exact for the lowest such byte).
    let zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGH;
    let mut chunks = s.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("eight bytes"));
        let hit = zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\')));
        if hit != 0 {
            return Some(at + hit.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let tail = chunks.remainder();
    tail.iter()
        .position(|&b| b == b'"' || b == b'\\')
        .map(|p| at + p)
}

/// Who made a request, as a finding tells it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Actor {
    pub username: String,
    pub impersonated: Option<String>,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.impersonated {
            Some(i) => write!(f, "{} (as {i})", self.username),
            None => f.write_str(&self.username),
        }
    }
}

impl<'a> Event<'a> {
    pub fn verb(&self) -> &str {
        self.verb.as_deref().unwrap_or("")
    }

    pub fn username(&self) -> &str {
        self.user.username.as_deref().unwrap_or("")
    }

    /// The identity the request acted as: the impersonated user when there is one.
    pub fn effective_user(&self) -> &User<'a> {
        self.impersonated_user.as_ref().unwrap_or(&self.user)
    }

    pub fn actor(&self) -> Actor {
        Actor {
            username: self.username().to_string(),
            impersonated: self
                .impersonated_user
                .as_ref()
                .and_then(|u| u.username.as_deref())
                .map(str::to_string),
        }
    }

    /// Whether the request was made without credentials (anonymous), as the effective user.
    pub fn is_unauthenticated(&self) -> bool {
        let u = self.effective_user();
        u.username.as_deref() == Some("system:anonymous")
            || u.groups.iter().any(|g| g == "system:unauthenticated")
    }

    /// The response code; `None` when the event has none (RequestReceived).
    pub fn code(&self) -> Option<u16> {
        self.response_status.as_ref().and_then(|s| s.code)
    }

    /// Whether the request succeeded (2xx, or a 101 protocol switch for exec over websockets).
    pub fn succeeded(&self) -> bool {
        self.code()
            .is_some_and(|c| (200..300).contains(&c) || c == 101)
    }

    /// When the event was recorded (its stage), RFC 3339.
    pub fn time(&self) -> Option<&str> {
        self.stage_timestamp
            .as_deref()
            .or(self.request_received_timestamp.as_deref())
            .or(self.timestamp.as_deref())
    }

    pub fn timestamp(&self) -> Option<jiff::Timestamp> {
        self.time().and_then(|t| t.parse().ok())
    }

    pub fn resource(&self) -> &str {
        self.object_ref
            .as_ref()
            .and_then(|o| o.resource.as_deref())
            .unwrap_or("")
    }

    pub fn subresource(&self) -> &str {
        self.object_ref
            .as_ref()
            .and_then(|o| o.subresource.as_deref())
            .unwrap_or("")
    }

    pub fn namespace(&self) -> Option<&str> {
        self.object_ref
            .as_ref()
            .and_then(|o| o.namespace.as_deref())
    }

    pub fn name(&self) -> Option<&str> {
        self.object_ref.as_ref().and_then(|o| o.name.as_deref())
    }

    pub fn api_group(&self) -> &str {
        self.object_ref
            .as_ref()
            .and_then(|o| o.api_group.as_deref())
            .unwrap_or("")
    }

    /// The object the request acted on, as a finding names it. `kind` comes from the object
    /// when the event carries one, else from the resource's plural.
    pub fn resource_ref(&self, kind: Option<&str>) -> ResourceRef {
        let o = self.object_ref.as_ref();
        let group = self.api_group();
        let version = o.and_then(|o| o.api_version.as_deref()).unwrap_or("v1");
        ResourceRef {
            api_version: if group.is_empty() {
                version.to_string()
            } else {
                format!("{group}/{version}")
            },
            kind: kind
                .map(str::to_string)
                .unwrap_or_else(|| kind_of(self.resource())),
            namespace: self.namespace().map(str::to_string),
            name: self.name().unwrap_or_default().to_string(),
        }
    }

    /// The evidence line that says who did what, when, from where.
    pub fn who_line(&self) -> String {
        let ips: Vec<&str> = self.source_ips.iter().map(|s| s.as_ref()).collect();
        format!(
            "{} {} {} by {} from {}{}{}",
            self.time().unwrap_or("(no time)"),
            self.verb().to_uppercase(),
            self.request_uri.as_deref().unwrap_or(""),
            self.actor(),
            if ips.is_empty() {
                "(no source IP)".to_string()
            } else {
                ips.join(", ")
            },
            self.user_agent
                .as_deref()
                .map(|a| format!(" ({a})"))
                .unwrap_or_default(),
            self.code().map(|c| format!(" -> {c}")).unwrap_or_default(),
        )
    }

    /// Machine detail every audit finding carries.
    pub fn detail(&self) -> serde_json::Value {
        serde_json::json!({
            "auditID": self.audit_id,
            "time": self.time(),
            "verb": self.verb,
            "requestURI": self.request_uri,
            "user": self.user.username,
            "groups": self.user.groups,
            "impersonatedUser": self.impersonated_user.as_ref().and_then(|u| u.username.as_deref()),
            "sourceIPs": self.source_ips,
            "userAgent": self.user_agent,
            "responseCode": self.code(),
        })
    }
}

/// The kind of a resource plural, for the kinds audit rules name (others: the plural itself,
/// capitalised and singular).
pub fn kind_of(plural: &str) -> String {
    let known = [
        ("pods", "Pod"),
        ("services", "Service"),
        ("deployments", "Deployment"),
        ("replicasets", "ReplicaSet"),
        ("statefulsets", "StatefulSet"),
        ("daemonsets", "DaemonSet"),
        ("jobs", "Job"),
        ("cronjobs", "CronJob"),
        ("configmaps", "ConfigMap"),
        ("secrets", "Secret"),
        ("namespaces", "Namespace"),
        ("ingresses", "Ingress"),
        ("httproutes", "HTTPRoute"),
        ("virtualservices", "VirtualService"),
        ("gateways", "Gateway"),
        ("authorizationpolicies", "AuthorizationPolicy"),
        ("requestauthentications", "RequestAuthentication"),
        ("clusterrolebindings", "ClusterRoleBinding"),
        ("rolebindings", "RoleBinding"),
        ("clusterroles", "ClusterRole"),
        ("roles", "Role"),
        ("notebooks", "Notebook"),
        ("workflows", "Workflow"),
        ("tfjobs", "TFJob"),
        ("pytorchjobs", "PyTorchJob"),
        ("rayclusters", "RayCluster"),
        ("rayjobs", "RayJob"),
        ("nodes", "Node"),
        ("leases", "Lease"),
        ("envoyfilters", "EnvoyFilter"),
        ("serviceaccounts", "ServiceAccount"),
    ];
    if let Some((_, k)) = known.iter().find(|(p, _)| *p == plural) {
        return k.to_string();
    }
    let singular = plural.strip_suffix('s').unwrap_or(plural);
    let mut c = singular.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_event_decodes_borrowed() {
        let line = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"create","user":{"username":"system:anonymous","groups":["system:unauthenticated"]},"sourceIPs":["10.0.0.1"],"userAgent":"curl/7.68.0","objectRef":{"resource":"pods","namespace":"default","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":201},"requestObject":{"kind":"Pod","spec":{}},"requestReceivedTimestamp":"2021-06-08T03:14:07.123456Z","stageTimestamp":"2021-06-08T03:14:07.223456Z"}"#;
        let e: Event = serde_json::from_str(line).unwrap();
        assert!(matches!(e.verb, Some(Cow::Borrowed("create"))));
        assert!(e.is_unauthenticated());
        assert!(e.succeeded());
        assert_eq!(
            e.request_object.unwrap().get(),
            r#"{"kind":"Pod","spec":{}}"#
        );
        assert_eq!(e.resource_ref(None).kind, "Pod");
        assert_eq!(
            e.timestamp().unwrap().to_string(),
            "2021-06-08T03:14:07.223456Z"
        );
        assert!(e.who_line().contains("CREATE /api/v1/namespaces/default/pods by system:anonymous from 10.0.0.1 (curl/7.68.0) -> 201"));
    }

    const LEASE: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete","requestURI":"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/x?timeout=10s","verb":"update","user":{"username":"system:kube-scheduler","groups":["system:authenticated"]},"sourceIPs":["172.31.11.4"],"objectRef":{"resource":"leases","namespace":"kube-system","name":"x","apiGroup":"coordination.k8s.io","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2021-06-08T00:00:00.252875Z","stageTimestamp":"2021-06-08T00:00:00.256132Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: \"x\""}}"#;

    fn head(line: &str) -> Option<EventHead<'_>> {
        EventHead::read(line.as_bytes())
    }

    #[test]
    fn a_head_is_read_from_the_events_own_keys() {
        let h = head(LEASE).unwrap();
        assert_eq!(
            (h.stage, h.verb, h.resource, h.subresource),
            ("ResponseComplete", "update", "leases", "")
        );
        assert_eq!(
            h.request_uri,
            Some("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/x?timeout=10s")
        );
        assert!(!h.is_read());
        // A requestURI with escapes is not told; the rest is.
        let line = LEASE.replacen("?timeout=10s", r#"?a=1\u0026b=2"#, 1);
        let h = head(&line).unwrap();
        assert_eq!((h.request_uri, h.resource), (None, "leases"));
        // Any order, spaces, and keys inside other values (strings with braces, quotes and
        // backslashes, a request object with its own objectRef and verb) are not the event's.
        let line = r#" { "requestObject" : {"objectRef":{"resource":"leases"},"verb":"get","s":"}\"{[\\"} , "user":{"username":"u\"verb\":\"get"}, "objectRef" : { "subresource" : "status" , "resource" : "pods" } , "verb" : "patch", "stage":"ResponseComplete", "apiVersion":"audit.k8s.io/v1beta1", "kind":"Event", "n": -1.5e3, "b": true, "z": null }"#;
        let h = head(line.trim()).unwrap();
        assert_eq!(
            (h.stage, h.verb, h.resource, h.subresource),
            ("ResponseComplete", "patch", "pods", "status")
        );
        // No objectRef: a non-resource request.
        let h = head(r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","stage":"ResponseComplete","requestURI":"/healthz","verb":"get"}"#).unwrap();
        assert_eq!(
            (h.resource, h.subresource, h.request_uri),
            ("", "", Some("/healthz"))
        );
        // The head agrees with the decoded event.
        let e: Event = serde_json::from_str(LEASE).unwrap();
        let h = head(LEASE).unwrap();
        assert_eq!(
            (Some(h.stage), h.verb, h.resource, h.subresource),
            (e.stage.as_deref(), e.verb(), e.resource(), e.subresource())
        );
    }

    #[test]
    fn the_time_is_read_as_the_decoded_event_tells_it() {
        fn time(line: &str) -> Option<Option<&str>> {
            head(line).unwrap().time()
        }
        assert_eq!(time(LEASE), Some(Some("2021-06-08T00:00:00.256132Z")));
        let e: Event = serde_json::from_str(LEASE).unwrap();
        assert_eq!(time(LEASE), Some(e.time()));
        // The next one when the first is missing or null; none at all.
        let no_stage = LEASE.replacen(
            r#""stageTimestamp":"2021-06-08T00:00:00.256132Z""#,
            r#""stageTimestamp":null"#,
            1,
        );
        assert_eq!(time(&no_stage), Some(Some("2021-06-08T00:00:00.252875Z")));
        let none = no_stage.replacen(
            r#""requestReceivedTimestamp":"2021-06-08T00:00:00.252875Z","#,
            "",
            1,
        );
        assert_eq!(time(&none), Some(None));
        let beta = none.replacen(
            r#""annotations""#,
            r#""timestamp":"2021-06-08T00:00:01Z","annotations""#,
            1,
        );
        assert_eq!(time(&beta), Some(Some("2021-06-08T00:00:01Z")));
        // Time keys before the keys the head needs, or no objectRef (a walk to the end).
        let first = LEASE.replacen(
            r#""kind":"Event","#,
            r#""kind":"Event","stageTimestamp":"2021-06-08T00:00:02Z","#,
            1,
        );
        let first = first.replacen(r#","stageTimestamp":"2021-06-08T00:00:00.256132Z""#, "", 1);
        assert_eq!(time(&first), Some(Some("2021-06-08T00:00:02Z")));
        let no_ref = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","stage":"ResponseComplete","verb":"get","requestReceivedTimestamp":"2021-06-08T00:00:03Z"}"#;
        assert_eq!(time(no_ref), Some(Some("2021-06-08T00:00:03Z")));
        let no_ref = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","stage":"ResponseComplete","verb":"get"}"#;
        assert_eq!(time(no_ref), Some(None));
        // An escape, another type: cannot tell.
        let escaped = LEASE.replacen("00.256132Z", r#"00.256132\u005a"#, 1);
        assert_eq!(time(&escaped), None);
        let number = LEASE.replacen(r#""2021-06-08T00:00:00.256132Z""#, "1623110400", 1);
        assert_eq!(time(&number), None);
    }

    #[test]
    fn a_line_the_head_cannot_vouch_for_is_decoded() {
        for line in [
            // escapes in a key or a value read, a repeated key, null, another type
            LEASE.replacen(r#""verb""#, r#""v\u0065rb""#, 1),
            LEASE.replacen(r#""update""#, r#""upd\u0061te""#, 1),
            LEASE.replacen(r#""resource":"leases""#, r#""resource":"le\u0061ses""#, 1),
            LEASE.replacen(r#""verb":"update""#, r#""verb":"update","verb":"get""#, 1),
            LEASE.replacen(r#""verb":"update""#, r#""verb":null"#, 1),
            LEASE.replacen(
                r#""requestURI":"/apis"#,
                r#""requestURI":"x","requestURI":"/apis"#,
                1,
            ),
            LEASE.replacen(r#""objectRef":{"#, r#""objectRef":null,"x":{"#, 1),
            LEASE.replacen(r#""resource":"leases""#, r#""resource":["leases"]"#, 1),
            // not an audit event of a version jackstop reads, or not one at all
            LEASE.replacen(r#""kind":"Event""#, r#""kind":"EventList""#, 1),
            LEASE.replacen("audit.k8s.io/v1", "audit.k8s.io/v2", 1),
            LEASE.replacen(
                r#""apiVersion":"audit.k8s.io/v1""#,
                r#""apiVersion":"v1""#,
                1,
            ),
            LEASE.replacen(r#""kind":"Event","#, "", 1),
            LEASE.replacen(r#""stage":"ResponseComplete","#, "", 1),
            // not one object (what follows the keys read is the decoder's to check: a skipped
            // line is counted, not checked)
            LEASE[..LEASE.find(r#","sourceIPs""#).unwrap()].to_string(),
            format!("[{LEASE}]"),
            LEASE.replacen(r#""verb":"update","#, r#""verb":"update" "#, 1),
            "{}".to_string(),
            r#"{"kind":"Event","x":"\"#.to_string() + "}",
            r#"{"kind":"Event","x":"a\"#.to_string(),
            "{\"kind\":\"Event\"".to_string(),
        ] {
            assert_eq!(head(&line), None, "{line}");
        }
    }

    #[test]
    fn quotes_and_backslashes_are_found_where_they_are() {
        let text = b"abcdefghijklmnopqrstuvwxyz0123456789";
        for at in 0..text.len() {
            for b in [b'"', b'\\'] {
                let mut t = text.to_vec();
                t[at] = b;
                if at + 3 < t.len() {
                    t[at + 3] = b'"';
                }
                assert_eq!(quote_or_backslash(&t), Some(at), "{at}");
                assert_eq!(quote_or_backslash(&t[..at]), None);
            }
        }
        assert_eq!(quote_or_backslash(b""), None);
        // Bytes just above and below, and non-ASCII, are not taken for either.
        assert_eq!(quote_or_backslash("#!][é\u{1}\u{ff}".as_bytes()), None);
    }

    #[test]
    fn kinds_of_plurals() {
        assert_eq!(kind_of("notebooks"), "Notebook");
        assert_eq!(kind_of("scheduledworkflows"), "Scheduledworkflow");
        assert_eq!(kind_of(""), "");
    }
}
