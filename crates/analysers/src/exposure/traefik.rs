//! Traefik (v2 and v3): IngressRoutes as ways in, and the Middlewares that authenticate
//! (`forwardAuth`, `basicAuth`, `digestAuth`) or narrow (`ipAllowList`, v2's `ipWhiteList`) what
//! passes them, attached to IngressRoutes or, by annotation, to Ingresses that Traefik serves.
//!
//! Traefik is k3s's default ingress controller, and a common way to publish notebooks and
//! dashboards; an Ingress whose authentication sits in a Middleware would otherwise look open,
//! and an IngressRoute would not be seen at all.

use super::path::{Reach, Trail};
use super::ways_in::{reach_of_ranges, RangeSyntax};
use super::{graph::Index, path::Exposure};
use crate::pods::PortRef;
use jackstop_core::Object;
use serde_json::Value;

/// The API groups of Traefik's custom resources: v3 and v2.10+, and v2's older one.
pub const TRAEFIK_GROUPS: &[&str] = &["traefik.io", "traefik.containo.us"];

/// The Ingress annotation that attaches Middlewares: `<namespace>-<name>@kubernetescrd`,
/// comma-separated.
pub const MIDDLEWARES_ANNOTATION: &str = "traefik.ingress.kubernetes.io/router.middlewares";

/// How deep `chain` Middlewares are followed.
const MAX_CHAIN: usize = 8;

pub fn is_traefik(o: &Object) -> bool {
    TRAEFIK_GROUPS.contains(&o.group())
}

/// What the Middlewares on a router do to what passes them.
#[derive(Debug, Default, Clone)]
pub struct MiddlewareEffect {
    /// Authentication layers, in words.
    pub auth: Vec<String>,
    /// Source ranges of IP allow lists (every list must pass: the ranges of the last one
    /// stand for them, which is exact when there is one).
    pub ranges: Option<Vec<String>>,
    pub notes: Vec<String>,
}

impl MiddlewareEffect {
    /// The reach of a router these Middlewares are on, from `reach` without them: an IP allow
    /// list narrows a router open to the internet.
    pub fn narrow(&self, reach: Reach) -> Reach {
        match (&reach, &self.ranges) {
            (Reach::Internet, Some(r)) => {
                reach_of_ranges(r, "Traefik ipAllowList", RangeSyntax::Addresses)
            }
            _ => reach,
        }
    }

    /// What the Middlewares named `(namespace, name)` do, in order, each found by `find`;
    /// `chain`s are followed. Read by the analysis and by the fix that adds authentication,
    /// so that both agree on what authenticates.
    pub fn of<'o>(
        refs: &[(String, String)],
        find: &dyn Fn(&str, &str) -> Option<&'o Object>,
    ) -> MiddlewareEffect {
        let mut effect = MiddlewareEffect::default();
        for (ns, name) in refs {
            effect.add(ns, name, 0, find);
        }
        effect
    }

    fn add<'o>(
        &mut self,
        ns: &str,
        name: &str,
        depth: usize,
        find: &dyn Fn(&str, &str) -> Option<&'o Object>,
    ) {
        let Some(m) = find(ns, name) else {
            self.notes.push(format!(
                "Traefik Middleware {ns}/{name} is not among the objects read: if it authenticates, scan it too"
            ));
            return;
        };
        let spec = m.at("spec");
        let has = |k: &str| spec.and_then(|s| s.get(k)).is_some();
        if has("forwardAuth") {
            let address = m.str_at("spec.forwardAuth.address").unwrap_or("?");
            self.auth.push(format!(
                "Traefik forwardAuth to {address} ({})",
                m.display()
            ));
        }
        for (k, what) in [("basicAuth", "basic"), ("digestAuth", "digest")] {
            if has(k) {
                self.auth
                    .push(format!("Traefik {what} authentication ({})", m.display()));
            }
        }
        for k in ["ipAllowList", "ipWhiteList"] {
            if let Some(r) = spec
                .and_then(|s| s.get(k))
                .and_then(|l| l.get("sourceRange"))
                .and_then(Value::as_array)
            {
                let ranges: Vec<String> = r
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect();
                if !ranges.is_empty() {
                    self.ranges = Some(ranges);
                }
            }
        }
        if let Some(chain) = spec
            .and_then(|s| s.get("chain"))
            .and_then(|c| c.get("middlewares"))
            .and_then(Value::as_array)
        {
            if depth >= MAX_CHAIN {
                self.notes.push(format!(
                    "Traefik chain {} is nested deeper than {MAX_CHAIN}: not followed",
                    m.display()
                ));
                return;
            }
            for r in chain {
                if let Some(n) = r.get("name").and_then(Value::as_str) {
                    let cns = r.get("namespace").and_then(Value::as_str).unwrap_or(ns);
                    self.add(cns, n, depth + 1, find);
                }
            }
        }
        if let Some(plugins) = spec
            .and_then(|s| s.get("plugin"))
            .and_then(Value::as_object)
        {
            let names: Vec<&str> = plugins.keys().map(String::as_str).collect();
            self.notes.push(format!(
                "Traefik {} runs the plugin {}, which jackstop does not judge: if it authenticates, record an exception",
                m.display(),
                names.join(", ")
            ));
        }
    }
}

/// The Middleware `ns/name` among `objects`.
pub fn find_middleware<'o>(objects: &'o [Object], ns: &str, name: &str) -> Option<&'o Object> {
    objects.iter().find(|m| {
        m.kind == "Middleware" && is_traefik(m) && m.effective_namespace() == ns && m.name == name
    })
}

/// The Middlewares a route of an IngressRoute in `ns` names, as (namespace, name).
pub fn route_middlewares(route: &Value, ns: &str) -> Vec<(String, String)> {
    route
        .get("middlewares")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let name = m.get("name")?.as_str()?;
            let mns = m.get("namespace").and_then(Value::as_str).unwrap_or(ns);
            Some((mns.to_string(), name.to_string()))
        })
        .collect()
}

impl<'a> Index<'a> {
    /// What the Middlewares named `(namespace, name)` do, in order; `chain`s are followed.
    pub fn middleware_effect(&self, refs: &[(String, String)]) -> MiddlewareEffect {
        let find = |ns: &str, name: &str| -> Option<&'a Object> {
            self.traefik_middlewares
                .iter()
                .copied()
                .find(|m| m.effective_namespace() == ns && m.name == name)
        };
        MiddlewareEffect::of(refs, &find)
    }

    /// The Middlewares an Ingress attaches by annotation, when Traefik serves it: those of
    /// the Kubernetes CRD provider (`<namespace>-<name>@kubernetescrd`), as (namespace, name);
    /// others (`@file`, `@docker`) are notes.
    pub fn ingress_middlewares(&self, ing: &Object) -> (Vec<(String, String)>, Vec<String>) {
        let mut refs = Vec::new();
        let mut notes = Vec::new();
        let Some(value) = ing.annotation(MIDDLEWARES_ANNOTATION) else {
            return (refs, notes);
        };
        for r in value.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            let (id, provider) = r.split_once('@').unwrap_or((r, "kubernetescrd"));
            if provider != "kubernetescrd" {
                notes.push(format!(
                    "Traefik middleware {r} comes from the {provider} provider, which jackstop cannot read: if it authenticates, record an exception"
                ));
                continue;
            }
            // `<namespace>-<name>`: both may hold dashes, so it is matched against what was read.
            match self
                .traefik_middlewares
                .iter()
                .find(|m| format!("{}-{}", m.effective_namespace(), m.name) == id)
            {
                Some(m) => refs.push((m.effective_namespace().to_string(), m.name.clone())),
                None => notes.push(format!(
                    "Traefik middleware {r} is not among the objects read: if it authenticates, scan it too"
                )),
            }
        }
        (refs, notes)
    }

    /// An IngressRoute: each route's services, behind the route's Middlewares.
    pub fn traefik_way_in(&self, ir: &'a Object, out: &mut Vec<Exposure<'a>>) {
        let ns = ir.effective_namespace();
        let entry_points: Vec<&str> = ir
            .at("spec.entryPoints")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let class = ir.annotation("kubernetes.io/ingress.class").unwrap_or("");
        let base_reach = if !class.is_empty() && self.catalogue.exposure.is_internal_class(class) {
            Reach::PrivateNetwork(format!("internal ingress class {class}"))
        } else {
            Reach::Internet
        };
        for (ri, route) in ir
            .at("spec.routes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let rule = route.get("match").and_then(Value::as_str).unwrap_or("?");
            let refs = route_middlewares(route, ns);
            let effect = self.middleware_effect(&refs);
            let reach = effect.narrow(base_reach.clone());
            for (si, svc) in route
                .get("services")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                // TraefikService (weighted, mirroring) is not followed.
                if svc
                    .get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k != "Service")
                {
                    continue;
                }
                let Some(name) = svc.get("name").and_then(Value::as_str) else {
                    continue;
                };
                let sns = svc.get("namespace").and_then(Value::as_str).unwrap_or(ns);
                let port = svc.get("port").and_then(PortRef::from_value);
                let mut head = Trail::hop(
                    format!(
                        "{} ({rule}{})",
                        ir.display(),
                        if entry_points.is_empty() {
                            String::new()
                        } else {
                            format!(", entry points {}", entry_points.join(", "))
                        }
                    ),
                    ir.resource(),
                );
                head.auth = effect.auth.clone();
                head.notes = effect.notes.clone();
                let resolved = self.resolve_service(sns, name, port.as_ref(), 0);
                let field = format!("spec.routes[{ri}].services[{si}]");
                self.push_resolved(ir, &field, &reach, &head, resolved, false, out);
            }
        }
    }
}
