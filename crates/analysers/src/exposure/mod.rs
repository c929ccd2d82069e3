//! The exposure graph: which sensitive interfaces are reachable from outside the cluster,
//! through which path, and with what authentication in front.
//!
//! The graph is walked from the outside in. Ways in are Services of type LoadBalancer or
//! NodePort or with externalIPs, Ingresses, Gateway API Gateways with their routes, Traefik
//! IngressRoutes (and Middlewares, on them and on Ingresses), OpenShift Routes (and the
//! router's source allow list), hostNetwork/hostPort pods and KubeRay clusters that ask for an outside-facing head.
//! From each, Services resolve to the pods they select, pods to the container the port lands
//! on, and a container is a sensitive interface (catalogue), an auth proxy (followed to its
//! upstream), or an Istio ingress gateway (followed through Gateways and VirtualServices, with
//! the gateway's policies deciding what authenticates).

pub mod alb;
mod graph;
pub mod ingress_class;
mod istio;
pub mod openshift;
mod path;
pub mod traefik;
mod ways_in;

pub use path::{Exposure, Reach};

use crate::pods::{template_facts, TemplateFacts};
use crate::Analyser;
use graph::Index;
use ingress_class::{served, Controller, Served};
use jackstop_catalogue::Catalogue;
use jackstop_core::labels::{labels_from, selects, Labels};
use jackstop_core::{Finding, Location, Object};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The exposure rule for authenticated exposures.
pub const AUTHENTICATED_RULE: &str = "JS-EXP-009";

pub struct ExposureAnalyser;

/// The kinds of ways in and of what authenticates them; workloads come from [`crate::pods`].
pub const ROUTING_KINDS: &[&str] = &[
    "Service",
    "Ingress",
    "Gateway",
    "HTTPRoute",
    "GRPCRoute",
    "TLSRoute",
    "TCPRoute",
    "VirtualService",
    "AuthorizationPolicy",
    "RequestAuthentication",
    "EnvoyFilter",
    "SecurityPolicy",
    "Route",
    "IngressRoute",
    "Middleware",
    "IngressClass",
    "IngressClassParams",
];

/// Routing kinds and the kinds that carry pod templates.
fn kinds() -> &'static [&'static str] {
    static KINDS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    KINDS.get_or_init(|| {
        ROUTING_KINDS
            .iter()
            .chain(crate::pods::KINDS)
            .copied()
            .collect()
    })
}

impl Analyser for ExposureAnalyser {
    fn name(&self) -> &'static str {
        "exposure"
    }

    fn kinds(&self) -> &'static [&'static str] {
        kinds()
    }

    fn analyse(&self, objects: &[Object], catalogue: &Catalogue) -> Vec<Finding> {
        self.analyse_prepared(objects.iter().map(|o| (o, None)), catalogue)
    }
}

/// What the analysis reads from an object before any walk (its pod templates, and then which
/// interface each container runs), kept by a view that is analysed again and again: the
/// admission webhook judges each change on the whole cluster view, and rereading every
/// workload's templates was most of a review's time.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    templates: Vec<Arc<TemplateFacts>>,
}

impl Prepared {
    pub fn of(o: &Object) -> Prepared {
        Prepared {
            templates: template_facts(o),
        }
    }

    /// Whether both hold the very same reading (not only an equal one): a view that took it
    /// over from the view before did not read the object again.
    pub fn same_as(&self, other: &Prepared) -> bool {
        self.templates.len() == other.templates.len()
            && self
                .templates
                .iter()
                .zip(&other.templates)
                .all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

/// The Service selectors of a view, by namespace: all that can route to a workload.
#[derive(Debug, Clone, Default)]
pub struct Selectors(HashMap<String, Vec<Labels>>);

impl Selectors {
    /// The selectors of the core Services among `objects` (as the walk reads them).
    pub fn of<'a>(objects: impl IntoIterator<Item = &'a Object>) -> Selectors {
        let mut by_ns: HashMap<String, Vec<Labels>> = HashMap::new();
        for o in objects {
            if o.kind == "Service" && o.group().is_empty() {
                let sel = labels_from(o.at("spec.selector").and_then(serde_json::Value::as_object));
                if !sel.is_empty() {
                    by_ns
                        .entry(o.effective_namespace().to_string())
                        .or_default()
                        .push(sel);
                }
            }
        }
        Selectors(by_ns)
    }
}

/// KubeRay's kinds: the walk reaches them by name, without a selector (KubeRay makes the head
/// Service).
const RAY_KINDS: &[&str] = &["RayCluster", "RayService", "RayJob"];

impl Prepared {
    /// Whether this workload can be on a path the walk follows in a view with `selectors`:
    /// a Service selects one of its pod templates, it publishes a host port or the host
    /// network, or KubeRay makes a Service for it. The walk reaches workloads in no other way,
    /// so one that is on no path can be added, changed or removed without changing any
    /// exposure: the admission webhook then need not walk the whole view again.
    pub fn on_a_path(&self, o: &Object, selectors: &Selectors) -> bool {
        on_a_path_alone(o)
            || self.templates.iter().any(|t| {
                selectors
                    .0
                    .get(&t.namespace)
                    .is_some_and(|sels| sels.iter().any(|s| selects(s, &t.labels)))
            })
    }
}

/// Whether this workload is on a path with no Service at all: it publishes a host port or the
/// host network, or KubeRay makes a Service for it. (What [`Prepared::on_a_path`] says in a
/// view without Services, read from the object alone.)
pub fn on_a_path_alone(o: &Object) -> bool {
    RAY_KINDS.contains(&o.kind.as_str()) || crate::pods::publishes_host(o)
}

impl ExposureAnalyser {
    /// The analysis over objects held elsewhere, each with what was read from it before when
    /// there is that ([`Prepared`]): the admission webhook judges the cluster as it would be
    /// after a change without copying or rereading every object it holds.
    pub fn analyse_prepared<'a>(
        &self,
        objects: impl IntoIterator<Item = (&'a Object, Option<&'a Prepared>)>,
        catalogue: &'a Catalogue,
    ) -> Vec<Finding> {
        findings(&Index::build(objects, catalogue), catalogue)
    }

    /// [`ExposureAnalyser::analyse_prepared`], with the Services the walk looked for (found
    /// or not) as (namespace, name). A Service among none of them, and no way in itself
    /// ([`is_way_in`]), is on no path: creating, changing or deleting it changes no exposure.
    pub fn analyse_noting_services<'a>(
        &self,
        objects: impl IntoIterator<Item = (&'a Object, Option<&'a Prepared>)>,
        catalogue: &'a Catalogue,
    ) -> (Vec<Finding>, HashSet<(String, String)>) {
        let index = Index::build(objects, catalogue).recording_lookups();
        let found = findings(&index, catalogue);
        let looked_up = index
            .service_lookups
            .map(|l| l.into_inner())
            .unwrap_or_default();
        (found, looked_up)
    }
}

/// Whether a Service is a way in itself (of type LoadBalancer or NodePort, or with external
/// addresses), whatever is behind it.
pub fn is_way_in(svc: &Object, catalogue: &Catalogue) -> bool {
    Index::build(std::iter::empty(), catalogue)
        .service_reach(svc)
        .is_some()
}

/// One finding per way in and interface instance, from a built index.
fn findings(index: &Index<'_>, catalogue: &Catalogue) -> Vec<Finding> {
    let mut best: HashMap<(usize, &str, String), Exposure<'_>> = HashMap::new();
    let mut order = Vec::new();
    for e in index.exposures() {
        // One finding per way in and interface instance: the worst path wins.
        let key = (
            e.way_in as *const Object as usize,
            e.target.interface.id.as_str(),
            e.target.workload.map(Object::display).unwrap_or_default(),
        );
        match best.get(&key) {
            Some(prev) if prev.severity() >= e.severity() => {}
            Some(_) => {
                best.insert(key, e);
            }
            None => {
                order.push(key.clone());
                best.insert(key, e);
            }
        }
    }
    order
        .into_iter()
        .filter_map(|k| best.remove(&k))
        .filter_map(|e| finding(&e, &index.ingress_classes, catalogue))
        .collect()
}

/// The finding of an exposure; `classes` (the IngressClasses read) say which controller's
/// remediation an Ingress gets.
fn finding(e: &Exposure<'_>, classes: &[&Object], catalogue: &Catalogue) -> Option<Finding> {
    let authenticated = e.authenticated();
    let rule_id = if authenticated {
        AUTHENTICATED_RULE
    } else {
        e.target.interface.rule.as_str()
    };
    let rule = catalogue.rules.get(rule_id)?;
    let name = &e.target.interface.name;
    let title = if authenticated {
        format!("{name} exposed {} behind authentication", e.reach.phrase())
    } else {
        let t = rule.title.replace("from the internet", &e.reach.phrase());
        format!("{t} ({name})")
    };
    let mut path = vec![e.reach.origin()];
    path.extend(e.trail.hops.iter().cloned());
    let mut evidence = vec![path.join(" -> ")];
    if e.trail.auth.is_empty() {
        evidence.push("Authentication in front: none found (no ext-authz, JWT requirement, auth proxy or ingress auth on the path)".into());
    } else {
        evidence.push(format!(
            "Authentication in front: {}",
            e.trail.auth.join("; ")
        ));
    }
    evidence.push(format!("Own login: {}", e.target.own_login.why));
    evidence.extend(e.trail.notes.iter().map(|n| format!("Note: {n}")));
    if let Reach::PrivateNetwork(why) | Reach::Narrowed(why) = &e.reach {
        evidence.push(format!("Reach limited: {why}"));
    }
    let severity = e.severity();
    let o = e.way_in;
    let mut remediation = specific_remediation(e, classes);
    remediation.push_str(rule.remediation.trim());
    Some(Finding {
        rule: rule.id.clone(),
        category: rule.category,
        severity,
        title,
        resource: o.resource(),
        location: Location {
            path: o.source.path.to_string(),
            line: o.line_of(&e.field),
            field: Some(e.field.clone()),
            template: o.source.template.as_deref().map(str::to_string),
        },
        evidence,
        remediation,
        detail: Some(json!({
            "interface": e.target.interface.id,
            "reach": e.reach.label(),
            "authenticated": authenticated,
            "path": path,
            "via": e.trail.via,
            "auth": e.trail.auth,
            "ownLogin": e.target.own_login.required,
            "workload": e.target.workload.map(|w| w.resource()),
            "workloadField": e.target.field,
        })),
    })
}

/// A command a user can paste to close this way in (first line of the remediation).
fn specific_remediation(e: &Exposure<'_>, classes: &[&Object]) -> String {
    let o = e.way_in;
    let ns = o.effective_namespace();
    let name = &o.name;
    // An Ingress's is its controller's.
    let controller = match o.kind.as_str() {
        "Ingress" => served(o, classes.iter().copied()),
        _ => Served::Unknown,
    };
    let cmd = match (o.kind.as_str(), e.field.as_str()) {
        ("Service", _) => format!(
            "kubectl -n {ns} patch service {name} --type merge -p '{{\"spec\":{{\"type\":\"ClusterIP\",\"externalIPs\":null}}}}'"
        ),
        ("Ingress", _) if controller == Served::By(Controller::Traefik) => format!(
            "jackstop fix --ingress-auth-url URL  # writes a forwardAuth Middleware and names it in traefik.ingress.kubernetes.io/router.middlewares of Ingress {ns}/{name}"
        ),
        ("Ingress", _) if controller == Served::By(Controller::AwsAlb) => format!(
            "jackstop fix --oidc-issuer URL  # the ALB's own OIDC login (alb.ingress.kubernetes.io/auth-type: oidc) on HTTPS for Ingress {ns}/{name}"
        ),
        ("Ingress", _) => format!(
            "kubectl -n {ns} annotate ingress {name} nginx.ingress.kubernetes.io/auth-url='https://$host/oauth2/auth' nginx.ingress.kubernetes.io/auth-signin='https://$host/oauth2/start?rd=$escaped_request_uri'  # with oauth2-proxy serving /oauth2"
        ),
        ("Route", _) => format!(
            "oc -n {ns} annotate route {name} --overwrite {a}='CIDR' {w}='CIDR'  # only your clients' addresses; or publish it through an oauth-proxy sidecar, or `oc -n {ns} delete route {name}`",
            a = openshift::ALLOWLIST,
            w = openshift::WHITELIST
        ),
        ("IngressRoute", f) => format!(
            "jackstop fix --ingress-auth-url URL  # writes a forwardAuth Middleware and names it in the middlewares of {f} in IngressRoute {ns}/{name}"
        ),
        ("Gateway", _) => format!(
            "# attach authentication to Gateway {ns}/{name}, for example an Envoy Gateway SecurityPolicy with oidc, or detach the routes to the interface"
        ),
        ("RayCluster" | "RayService" | "RayJob", f) if f.ends_with("enableIngress") => format!(
            "kubectl -n {ns} patch {} {name} --type json -p '[{{\"op\":\"replace\",\"path\":\"/{}\",\"value\":false}}]'",
            o.kind.to_ascii_lowercase(),
            f.replace('.', "/")
        ),
        ("RayCluster" | "RayService" | "RayJob", f) => format!(
            "kubectl -n {ns} patch {} {name} --type json -p '[{{\"op\":\"replace\",\"path\":\"/{}\",\"value\":\"ClusterIP\"}}]'",
            o.kind.to_ascii_lowercase(),
            f.replace('.', "/")
        ),
        (kind, f) => format!(
            "kubectl -n {ns} edit {} {name}  # remove {f}",
            kind.to_ascii_lowercase()
        ),
    };
    format!("{cmd}\n")
}
