//! The door: Services in front of gateways and dashboards opened to outside the cluster
//! (JS-AUD-001), routes made to dashboards (JS-AUD-002), and the gateway's authentication
//! removed or weakened (JS-AUD-003).

use super::{after_object, object_field, Ctx};
use crate::event::kind_of;
use jackstop_catalogue::exposure::AnnotationMarker;
use jackstop_core::Severity;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

/// What was already reported, so that an object updated ten times is reported once per
/// change of what it exposes.
#[derive(Default)]
pub struct DoorState {
    said: HashSet<String>,
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

impl DoorState {
    pub fn event(&mut self, ctx: &mut Ctx<'_, '_, '_>, after: Option<&Value>) {
        let e = ctx.e;
        if !e.subresource().is_empty() {
            // `kubectl scale`: a patch or update of the scale subresource, whose Scale the
            // rules do not otherwise decode; decoded here for the login service only.
            if e.subresource() == "scale"
                && matches!(e.resource(), "deployments" | "statefulsets")
                && matches!(e.verb(), "patch" | "update")
                && Self::is_auth_workload(ctx)
            {
                let scale = after_object(e);
                self.auth_workload(ctx, scale.as_ref());
            }
            return;
        }
        match (e.resource(), e.verb()) {
            ("services", "create" | "update" | "patch") => self.service(ctx, after),
            ("ingresses" | "httproutes" | "virtualservices", "create" | "update" | "patch") => {
                self.route(ctx, after)
            }
            ("requestauthentications" | "authorizationpolicies" | "envoyfilters", verb) => {
                self.policy(ctx, after, verb)
            }
            ("deployments" | "statefulsets" | "services", "delete")
            | ("deployments" | "statefulsets", "patch" | "update")
                if Self::is_auth_workload(ctx) =>
            {
                self.auth_workload(ctx, after)
            }
            _ => {}
        }
    }

    /// What the Service is the door to, if it is one.
    fn door_of(
        ctx: &Ctx<'_, '_, '_>,
        name: &str,
        selector: &BTreeMap<String, String>,
    ) -> Option<String> {
        let audit = &ctx.cat.audit;
        for g in &audit.gateways {
            let by_name = g.name.as_deref() == Some(name);
            let by_selector = !g.selector.is_empty()
                && g.selector.iter().all(|(k, v)| selector.get(k) == Some(v));
            if by_name || by_selector {
                return Some(g.what.clone());
            }
        }
        ctx.cat
            .interfaces
            .iter()
            .find(|i| {
                i.matches_service_name(name) || (!selector.is_empty() && i.matches_labels(selector))
            })
            .map(|i| i.name.clone())
    }

    fn service(&mut self, ctx: &mut Ctx<'_, '_, '_>, after: Option<&Value>) {
        let Some(svc) = after else { return };
        let name = ctx
            .e
            .name()
            .or_else(|| svc.pointer("/metadata/name").and_then(Value::as_str))
            .unwrap_or("");
        let spec = svc.get("spec");
        let typ = spec
            .and_then(|s| s.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let external_ips: Vec<&str> = spec
            .and_then(|s| s.get("externalIPs"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let opened = match typ {
            "LoadBalancer" => "type LoadBalancer",
            "NodePort" => "type NodePort",
            _ if !external_ips.is_empty() => "externalIPs",
            _ => return,
        };
        let selector = string_map(spec.and_then(|s| s.get("selector")));
        let Some(what) = Self::door_of(ctx, name, &selector) else {
            return;
        };
        let key = format!("svc {} {} {opened}", ctx.e.namespace().unwrap_or(""), name);
        if !self.said.insert(key) {
            return;
        }
        let annotations = string_map(svc.pointer("/metadata/annotations"));
        let ranges: Vec<&str> = spec
            .and_then(|s| s.get("loadBalancerSourceRanges"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let internal =
            AnnotationMarker::find(&ctx.cat.exposure.internal_load_balancer, &annotations);
        let narrowed = !ranges.is_empty() && !ranges.iter().any(|r| r.ends_with("/0"));
        let mut evidence = vec![format!(
            "{what}: Service {name} made {opened}{}",
            if external_ips.is_empty() {
                String::new()
            } else {
                format!(" ({})", external_ips.join(", "))
            }
        )];
        let severity = if typ == "LoadBalancer" && (internal.is_some() || narrowed) {
            if let Some(m) = internal {
                evidence.push(format!(
                    "internal load balancer ({}={})",
                    m.key,
                    annotations.get(&m.key).map(String::as_str).unwrap_or("")
                ));
            }
            if narrowed {
                evidence.push(format!("loadBalancerSourceRanges {}", ranges.join(", ")));
            }
            Severity::Medium
        } else if typ == "LoadBalancer" {
            Severity::Critical
        } else {
            Severity::High
        };
        let title = format!("{what} opened to outside the cluster ({opened})");
        let field = format!(
            "{}.spec.{}",
            object_field(ctx.e),
            if opened == "externalIPs" {
                "externalIPs"
            } else {
                "type"
            }
        );
        let resource = ctx.e.resource_ref(Some("Service"));
        ctx.report(
            "JS-AUD-001",
            severity,
            title,
            resource,
            Some(field),
            evidence,
        );
    }

    fn route(&mut self, ctx: &mut Ctx<'_, '_, '_>, after: Option<&Value>) {
        let Some(obj) = after else { return };
        let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
        let mut backends: Vec<String> = Vec::new();
        let mut push = |v: Option<&Value>| {
            if let Some(s) = v.and_then(Value::as_str) {
                // A mesh host "svc.ns.svc.cluster.local" names the Service first.
                backends.push(s.split('.').next().unwrap_or(s).to_string());
            }
        };
        match ctx.e.resource() {
            "ingresses" => {
                push(spec.pointer("/defaultBackend/service/name"));
                for rule in spec
                    .get("rules")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    for p in rule
                        .pointer("/http/paths")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        push(p.pointer("/backend/service/name"));
                    }
                }
            }
            "httproutes" => {
                for rule in spec
                    .get("rules")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    for b in rule
                        .get("backendRefs")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        push(b.get("name"));
                    }
                }
            }
            _ => {
                for h in spec
                    .get("http")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    for r in h
                        .get("route")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        push(r.pointer("/destination/host"));
                    }
                }
            }
        }
        let empty = BTreeMap::new();
        let mut doors: Vec<(String, String)> = backends
            .iter()
            .filter_map(|b| Some((b.clone(), Self::door_of(ctx, b, &empty)?)))
            .collect();
        doors.sort();
        doors.dedup();
        if doors.is_empty() {
            return;
        }
        let kind = obj.get("kind").and_then(Value::as_str).map(str::to_string);
        let resource = ctx.e.resource_ref(kind.as_deref());
        let key = format!("route {resource} {doors:?}");
        if !self.said.insert(key) {
            return;
        }
        let names: Vec<String> = doors
            .iter()
            .map(|(b, w)| format!("{w} (Service {b})"))
            .collect();
        let title = format!(
            "{} {} now routes to {}",
            resource.kind,
            resource.name,
            names.join(", ")
        );
        let evidence = vec![format!(
            "{} {} routes to {}",
            resource.kind,
            resource.name,
            names.join(", ")
        )];
        ctx.report(
            "JS-AUD-002",
            Severity::High,
            title,
            resource,
            Some(format!("{}.spec", object_field(ctx.e))),
            evidence,
        );
    }

    /// Whether a policy guards the gateway: by its namespace or its name.
    fn guards_gateway(ctx: &Ctx<'_, '_, '_>, name: &str) -> bool {
        let a = &ctx.cat.audit;
        let ns = ctx.e.namespace().unwrap_or("");
        let lower = name.to_ascii_lowercase();
        a.gateway_auth_namespaces.iter().any(|n| n == ns)
            || a.gateway_auth_words
                .iter()
                .any(|w| lower.contains(w.as_str()))
    }

    fn policy(&mut self, ctx: &mut Ctx<'_, '_, '_>, after: Option<&Value>, verb: &str) {
        let name = ctx.e.name().unwrap_or("").to_string();
        let istio = ctx.e.api_group().starts_with("security.istio.io")
            || (ctx.e.resource() == "envoyfilters"
                && ctx.e.api_group().starts_with("networking.istio.io"));
        if !istio || !Self::guards_gateway(ctx, &name) {
            return;
        }
        let kind = kind_of(ctx.e.resource());
        let why = match verb {
            "delete" => format!("{kind} {name} deleted"),
            "update" | "patch" => {
                let Some(p) = after else { return };
                let spec = p.get("spec");
                match Self::weakness(&kind, spec) {
                    Some(w) => format!("{kind} {name} changed: {w}"),
                    None => return,
                }
            }
            _ => return,
        };
        auth_removed(ctx, &kind, why, None);
    }

    /// What makes a policy guard nothing, if anything does.
    fn weakness(kind: &str, spec: Option<&Value>) -> Option<String> {
        let rules = spec.and_then(|s| s.get("rules")).and_then(Value::as_array);
        if kind == "EnvoyFilter" {
            return None;
        }
        if kind == "RequestAuthentication" {
            let jwt = spec
                .and_then(|s| s.get("jwtRules"))
                .and_then(Value::as_array);
            return jwt
                .is_none_or(|j| j.is_empty())
                .then(|| "no jwtRules left: it checks no token".to_string());
        }
        let action = spec
            .and_then(|s| s.get("action"))
            .and_then(Value::as_str)
            .unwrap_or("ALLOW");
        match action {
            "ALLOW"
                if rules.is_some_and(|r| {
                    r.iter()
                        .any(|x| x.as_object().is_some_and(|m| m.is_empty()))
                }) =>
            {
                Some("an ALLOW rule `{}` allows every request".to_string())
            }
            "DENY" | "CUSTOM" if rules.is_none_or(|r| r.is_empty()) => Some(format!(
                "a {action} policy without rules applies to no request"
            )),
            _ => None,
        }
    }

    /// Whether the event's object is the gateway's login service, by its name.
    fn is_auth_workload(ctx: &Ctx<'_, '_, '_>) -> bool {
        let name = ctx.e.name().unwrap_or("");
        ctx.cat.audit.auth_workloads.iter().any(|w| {
            name.strip_prefix(w.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
        })
    }

    /// The gateway's login service (oauth2-proxy, authservice, Dex) deleted, or its
    /// Deployment or StatefulSet scaled to zero (`after`: the object, or the Scale, the
    /// request left).
    fn auth_workload(&mut self, ctx: &mut Ctx<'_, '_, '_>, after: Option<&Value>) {
        let name = ctx.e.name().unwrap_or("");
        let kind = kind_of(ctx.e.resource());
        let (why, field) = if ctx.e.verb() == "delete" {
            (format!("{kind} {name}, the gateway's login, deleted"), None)
        } else if after
            .and_then(|a| a.pointer("/spec/replicas"))
            .and_then(Value::as_u64)
            == Some(0)
        {
            (
                format!("{kind} {name}, the gateway's login, scaled to zero"),
                Some(format!("{}.spec.replicas", object_field(ctx.e))),
            )
        } else {
            return;
        };
        auth_removed(ctx, &kind, why, field);
    }
}

/// A JS-AUD-003 finding: what guarded the gateway, and how it went.
fn auth_removed(ctx: &mut Ctx<'_, '_, '_>, kind: &str, why: String, field: Option<String>) {
    let resource = ctx.e.resource_ref(Some(kind));
    ctx.report(
        "JS-AUD-003",
        Severity::Critical,
        format!("Gateway authentication removed: {why}"),
        resource,
        field,
        vec![why],
    );
}
