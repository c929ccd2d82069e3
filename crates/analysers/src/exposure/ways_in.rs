//! Ways in from outside the cluster, and the exposures behind each.

use super::alb::{Facing, Params};
use super::graph::{GatewayWorkload, Index};
use super::ingress_class::{class_name, class_of, served, Controller, Served};
use super::path::{Exposure, Reach, Target, Trail};
use crate::pods::PortRef;
use ipnet::IpNet;
use jackstop_catalogue::exposure::AnnotationMarker;
use jackstop_core::labels::labels_from;
use jackstop_core::object::scalar_text;
use jackstop_core::Object;
use serde_json::Value;
use std::collections::BTreeMap;

fn annotations(o: &Object) -> BTreeMap<String, String> {
    labels_from(o.at("metadata.annotations").and_then(Value::as_object))
}

fn strings_at(o: &Object, path: &str) -> Vec<String> {
    o.at(path)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(scalar_text).collect())
        .unwrap_or_default()
}

/// What a list of source ranges may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSyntax {
    /// CIDRs only: Kubernetes validates `loadBalancerSourceRanges` (and cloud providers the
    /// source-ranges annotation) as CIDRs, and a bare address there is invalid.
    Cidrs,
    /// CIDRs and bare addresses (one host, /32 or /128), as Traefik's `ipAllowList` and
    /// OpenShift's router allow list read them.
    Addresses,
}

impl RangeSyntax {
    /// A range as this syntax reads it.
    pub fn parse(self, range: &str) -> Option<IpNet> {
        let range = range.trim();
        if let Ok(net) = range.parse::<IpNet>() {
            return Some(net);
        }
        match self {
            RangeSyntax::Cidrs => None,
            RangeSyntax::Addresses => range.parse::<std::net::IpAddr>().ok().map(IpNet::from),
        }
    }

    pub fn parses(self, range: &str) -> bool {
        self.parse(range).is_some()
    }
}

/// Whether every range is private (RFC 1918, CGNAT, loopback, link-local, ULA); `None` when
/// one is not a range in `syntax`.
fn all_private(ranges: &[String], syntax: RangeSyntax) -> Option<bool> {
    let nets: Vec<IpNet> = ranges.iter().filter_map(|r| syntax.parse(r)).collect();
    if nets.is_empty() || nets.len() != ranges.len() {
        return None;
    }
    let private: [IpNet; 8] = [
        "10.0.0.0/8".parse().expect("static"),
        "172.16.0.0/12".parse().expect("static"),
        "192.168.0.0/16".parse().expect("static"),
        "100.64.0.0/10".parse().expect("static"),
        "127.0.0.0/8".parse().expect("static"),
        "169.254.0.0/16".parse().expect("static"),
        "fc00::/7".parse().expect("static"),
        "fe80::/10".parse().expect("static"),
    ];
    Some(nets.iter().all(|n| private.iter().any(|p| p.contains(n))))
}

/// The reach of a way in that only `ranges` may use (`what` says what limits it): from
/// anywhere when one is all addresses (0.0.0.0/0, ::/0), the private network when all are
/// private.
pub(super) fn reach_of_ranges(ranges: &[String], what: &str, syntax: RangeSyntax) -> Reach {
    if ranges
        .iter()
        .filter_map(|r| syntax.parse(r))
        .any(|n| n.prefix_len() == 0)
    {
        return Reach::Internet;
    }
    let words = ranges.join(", ");
    match all_private(ranges, syntax) {
        Some(true) => Reach::PrivateNetwork(format!("{what} {words}")),
        _ => Reach::Narrowed(words),
    }
}

impl<'a> Index<'a> {
    /// Every exposure of every way in.
    pub fn exposures(&self) -> Vec<Exposure<'a>> {
        let mut out = Vec::new();
        for svc in self.services.values() {
            self.service_way_in(svc, &mut out);
        }
        for ing in &self.ingresses {
            self.ingress_way_in(ing, &mut out);
        }
        for gw in &self.gateways {
            self.gateway_api_way_in(gw, &mut out);
        }
        for r in &self.openshift_routes {
            self.openshift_route_way_in(r, &mut out);
        }
        for r in &self.ingress_routes {
            self.traefik_way_in(r, &mut out);
        }
        self.host_port_ways_in(&mut out);
        for rc in &self.ray_clusters {
            self.ray_way_in(rc, &mut out);
        }
        out
    }

    /// The reach of a Service, if it has one from outside the cluster.
    pub(super) fn service_reach(&self, svc: &Object) -> Option<(Reach, String)> {
        let ty = svc.str_at("spec.type").unwrap_or("ClusterIP");
        let ann = annotations(svc);
        if ty == "LoadBalancer" {
            if let Some(m) =
                AnnotationMarker::find(&self.catalogue.exposure.internal_load_balancer, &ann)
            {
                let why = format!(
                    "{} internal load balancer: {}",
                    m.provider.as_deref().unwrap_or("cloud"),
                    m.key
                );
                return Some((Reach::PrivateNetwork(why), "spec.type".into()));
            }
            let mut ranges = strings_at(svc, "spec.loadBalancerSourceRanges");
            let mut field = "spec.loadBalancerSourceRanges";
            if ranges.is_empty() {
                if let Some(a) = ann.get("service.beta.kubernetes.io/load-balancer-source-ranges") {
                    ranges = a
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect();
                    field = "metadata.annotations";
                }
            }
            let reach = if ranges.is_empty() {
                Reach::Internet
            } else {
                reach_of_ranges(&ranges, "source ranges", RangeSyntax::Cidrs)
            };
            if reach == Reach::Internet {
                return Some((Reach::Internet, "spec.type".into()));
            }
            return Some((reach, field.into()));
        }
        if ty == "NodePort" {
            return Some((Reach::Nodes("NodePort"), "spec.type".into()));
        }
        let ips = strings_at(svc, "spec.externalIPs");
        if !ips.is_empty() {
            return Some((
                Reach::ExternalIps(ips.join(", ")),
                "spec.externalIPs".into(),
            ));
        }
        None
    }

    fn service_way_in(&self, svc: &'a Object, out: &mut Vec<Exposure<'a>>) {
        let Some((reach, field)) = self.service_reach(svc) else {
            return;
        };
        let ty = svc.str_at("spec.type").unwrap_or("ClusterIP");
        let resolved = self.resolve_service(svc.effective_namespace(), &svc.name, None, 0);
        let head = Trail::hop(format!("{} ({ty})", svc.display()), svc.resource());
        self.push_resolved(svc, &field, &reach, &head, resolved, true, out);
    }

    /// Adds the exposures of a resolved Service under a way in. The Service's own hop is
    /// dropped when the way in is that Service (the head has it already).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn push_resolved(
        &self,
        way_in: &'a Object,
        field: &str,
        reach: &Reach,
        head: &Trail,
        resolved: super::graph::Resolved<'a>,
        way_in_is_service: bool,
        out: &mut Vec<Exposure<'a>>,
    ) {
        for (mut trail, target) in resolved.targets {
            if way_in_is_service && trail.via.first() == Some(&way_in.resource()) {
                trail.drop_first();
            }
            out.push(Exposure {
                way_in,
                field: field.to_string(),
                reach: reach.clone(),
                trail: head.then(&trail),
                target,
            });
        }
        for gw in resolved.istio_gateways {
            self.push_istio(way_in, field, reach, head, &gw, out);
        }
    }

    fn push_istio(
        &self,
        way_in: &'a Object,
        field: &str,
        reach: &Reach,
        head: &Trail,
        gw: &GatewayWorkload<'a>,
        out: &mut Vec<Exposure<'a>>,
    ) {
        for (trail, target) in self.route_istio(gw, 0) {
            out.push(Exposure {
                way_in,
                field: field.to_string(),
                reach: reach.clone(),
                trail: head.then(&trail),
                target,
            });
        }
    }

    /// The reach the catalogue's markers give a way in: private where one of `markers` is set
    /// among `ann` or `class` is an internal class (`said` names each in the reason), else the
    /// internet.
    fn marked_reach(
        &self,
        markers: &[AnnotationMarker],
        ann: &BTreeMap<String, String>,
        said: (&str, &str),
        class: &str,
    ) -> Reach {
        if let Some(m) = AnnotationMarker::find(markers, ann) {
            Reach::PrivateNetwork(format!("{}: {}", said.0, m.key))
        } else if self.catalogue.exposure.is_internal_class(class) {
            Reach::PrivateNetwork(format!("{} {class}", said.1))
        } else {
            Reach::Internet
        }
    }

    /// What is known of the IngressClassParams of an Ingress's class (`spec.parameters` of its
    /// IngressClass).
    fn alb_params(&self, ing: &Object) -> Params<'a> {
        let Some(class) = class_of(ing, self.ingress_classes.iter().copied()) else {
            return Params::NotRead(format!(
                "the IngressClassParams of its class {:?} (the IngressClass was not read)",
                class_name(ing)
            ));
        };
        let named = class
            .at("spec.parameters")
            .filter(|p| p.get("kind").and_then(Value::as_str) == Some("IngressClassParams"))
            .and_then(|p| p.get("name").and_then(Value::as_str));
        match named {
            None => Params::None,
            Some(name) => self
                .ingress_class_params
                .iter()
                .copied()
                .find(|p| p.name == name)
                .map_or_else(
                    || Params::NotRead(format!("IngressClassParams {name}")),
                    Params::Read,
                ),
        }
    }

    fn ingress_way_in(&self, ing: &'a Object, out: &mut Vec<Exposure<'a>>) {
        let ann = annotations(ing);
        let class = class_name(ing);
        let mut auth = Vec::new();
        let mut notes = Vec::new();
        // Who serves it: Traefik serves Ingresses of its class, and those of none when it is
        // the default; one ALB serves an IngressGroup.
        let served = served(ing, self.ingress_classes.iter().copied());
        let alb_group = served
            .may_be(Controller::AwsAlb)
            .then(|| super::alb::group(ing, &self.ingresses, &self.ingress_classes));
        let mut reach = match alb_group
            .as_ref()
            .filter(|_| served == Served::By(Controller::AwsAlb))
        {
            // The controller's scheme, not the markers, decides.
            Some(group) => match super::alb::facing(group, self.alb_params(ing)) {
                Facing::Internal(why) => Reach::PrivateNetwork(why),
                Facing::Internet { cidrs } if !cidrs.is_empty() => {
                    reach_of_ranges(&cidrs, "inbound-cidrs", RangeSyntax::Cidrs)
                }
                Facing::Internet { .. } => Reach::Internet,
                Facing::Unknown(note) => {
                    notes.push(note);
                    Reach::Internet
                }
            },
            None => self.marked_reach(
                &self.catalogue.exposure.internal_ingress,
                &ann,
                ("internal ingress", "internal ingress class"),
                class,
            ),
        };
        if served.may_be(Controller::Traefik) {
            let (refs, missing) = self.ingress_middlewares(ing);
            let effect = self.middleware_effect(&refs);
            reach = effect.narrow(reach);
            auth.extend(effect.auth);
            notes.extend(missing);
            notes.extend(effect.notes);
        }
        for m in &self.catalogue.exposure.ingress_auth {
            if ann.get(&m.key).is_some_and(|v| m.holds(v)) {
                if let Some(c) = Controller::of_annotation(&m.key).filter(|c| !served.may_be(*c)) {
                    notes.push(format!(
                        "{} ({}) is set, but it is {}'s annotation and the Ingress is served by {}, which ignores it",
                        m.what.as_deref().unwrap_or(&m.key),
                        m.key,
                        c.name(),
                        served.words()
                    ));
                    continue;
                }
                if m.key.starts_with(super::alb::PREFIX) {
                    let group = alb_group.as_deref().unwrap_or(&[]);
                    let listeners = super::alb::Listeners::of(ing, group);
                    if let Some(why) = listeners.as_ref().and_then(super::alb::Listeners::gap) {
                        notes.push(format!(
                            "{} ({}) is set, but {why}: the ALB authenticates on HTTPS listeners only",
                            m.what.as_deref().unwrap_or(&m.key),
                            m.key
                        ));
                        continue;
                    }
                }
                auth.push(format!(
                    "{} ({})",
                    m.what.as_deref().unwrap_or(&m.key),
                    m.key
                ));
            }
        }
        let ns = ing.effective_namespace();
        let mut backends: Vec<(String, String, Option<PortRef>, String)> = Vec::new();
        let mut push_backend = |b: &Value, path: String, field: String| {
            let (name, port) = if let Some(s) = b.get("service") {
                let port = s.get("port").and_then(|p| {
                    p.get("number")
                        .and_then(PortRef::from_value)
                        .or_else(|| p.get("name").and_then(PortRef::from_value))
                });
                (s.get("name").and_then(Value::as_str), port)
            } else {
                (
                    b.get("serviceName").and_then(Value::as_str),
                    b.get("servicePort").and_then(PortRef::from_value),
                )
            };
            if let Some(name) = name {
                backends.push((name.to_string(), path, port, field));
            }
        };
        for key in ["spec.defaultBackend", "spec.backend"] {
            if let Some(b) = ing.at(key) {
                push_backend(b, "default backend".into(), key.into());
            }
        }
        for (ri, rule) in ing
            .at("spec.rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let host = rule.get("host").and_then(Value::as_str).unwrap_or("*");
            let paths = rule
                .get("http")
                .and_then(|h| h.get("paths"))
                .and_then(Value::as_array);
            for (pi, p) in paths.into_iter().flatten().enumerate() {
                let path = p.get("path").and_then(Value::as_str).unwrap_or("/");
                if let Some(b) = p.get("backend") {
                    push_backend(
                        b,
                        format!("{host}{path}"),
                        format!("spec.rules[{ri}].http.paths[{pi}].backend"),
                    );
                }
            }
        }
        for (name, path, port, field) in backends {
            let mut head = Trail::hop(
                format!(
                    "{} ({path}{})",
                    ing.display(),
                    if class.is_empty() {
                        String::new()
                    } else {
                        format!(", class {class}")
                    }
                ),
                ing.resource(),
            );
            head.auth = auth.clone();
            head.notes = notes.clone();
            let resolved = self.resolve_service(ns, &name, port.as_ref(), 0);
            self.push_resolved(ing, &field, &reach, &head, resolved, false, out);
        }
    }

    fn gateway_api_way_in(&self, gw: &'a Object, out: &mut Vec<Exposure<'a>>) {
        let class = gw.str_at("spec.gatewayClassName").unwrap_or("");
        let lc = class.to_ascii_lowercase();
        // Mesh-internal gateway classes (waypoints, east-west) are not ways in from outside.
        if ["waypoint", "east-west", "eastwest", "mesh"]
            .iter()
            .any(|m| lc.contains(m))
        {
            return;
        }
        let mut ann = annotations(gw);
        ann.extend(labels_from(
            gw.at("spec.infrastructure.annotations")
                .and_then(Value::as_object),
        ));
        let reach = self.marked_reach(
            &self.catalogue.exposure.internal_load_balancer,
            &ann,
            ("internal load balancer", "internal gateway class"),
            class,
        );
        for route in &self.routes {
            if !route.attached_to(gw) {
                continue;
            }
            let rns = route.effective_namespace();
            let auth = self.gateway_api_auth(gw, route);
            for (ri, rule) in route
                .at("spec.rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let path = rule
                    .get("matches")
                    .and_then(Value::as_array)
                    .and_then(|m| m.first())
                    .and_then(|m| m.get("path"))
                    .and_then(|p| p.get("value"))
                    .and_then(Value::as_str)
                    .unwrap_or("/");
                for b in rule
                    .get("backendRefs")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if b.get("kind")
                        .and_then(Value::as_str)
                        .is_some_and(|k| k != "Service")
                    {
                        continue;
                    }
                    let Some(name) = b.get("name").and_then(Value::as_str) else {
                        continue;
                    };
                    let ns = b.get("namespace").and_then(Value::as_str).unwrap_or(rns);
                    let port = b.get("port").and_then(PortRef::from_value);
                    let mut head =
                        Trail::hop(format!("{} (class {class})", gw.display()), gw.resource());
                    head.push(
                        format!("{} ({path}, rule {ri})", route.display()),
                        route.resource(),
                    );
                    head.auth = auth.clone();
                    let resolved = self.resolve_service(ns, name, port.as_ref(), 0);
                    self.push_resolved(gw, "spec.listeners", &reach, &head, resolved, false, out);
                }
            }
        }
    }

    /// Auth attached to a Gateway API gateway or route: Envoy Gateway SecurityPolicies and
    /// Istio AuthorizationPolicies that target them.
    fn gateway_api_auth(&self, gw: &Object, route: &Object) -> Vec<String> {
        let hits = |p: &Object| {
            p.target_refs().iter().any(|(k, n)| {
                (k == "Gateway"
                    && *n == gw.name
                    && p.effective_namespace() == gw.effective_namespace())
                    || (*k == route.kind
                        && *n == route.name
                        && p.effective_namespace() == route.effective_namespace())
            })
        };
        let mut auth = Vec::new();
        for p in self.security_policies.iter().filter(|p| hits(p)) {
            let kinds: Vec<&str> = ["oidc", "jwt", "extAuth", "basicAuth", "apiKeyAuth"]
                .into_iter()
                .filter(|k| p.at(&format!("spec.{k}")).is_some())
                .collect();
            if !kinds.is_empty() {
                auth.push(format!(
                    "Envoy Gateway SecurityPolicy {} ({})",
                    p.display(),
                    kinds.join(", ")
                ));
            }
        }
        for p in self.authorization_policies.iter().filter(|p| hits(p)) {
            if p.str_at("spec.action") == Some("CUSTOM") {
                let provider = p.str_at("spec.provider.name").unwrap_or("ext-authz");
                auth.push(format!(
                    "Istio CUSTOM ext-authz provider {provider} (AuthorizationPolicy {})",
                    p.display()
                ));
            }
        }
        auth
    }

    /// Interfaces published on node addresses by `hostNetwork` or `hostPort`.
    fn host_port_ways_in(&self, out: &mut Vec<Exposure<'a>>) {
        for pod in &self.pods {
            for c in &pod.containers {
                let Some(i) = self.interface_of(c) else {
                    continue;
                };
                let host_ports: Vec<u16> = c.ports.iter().filter_map(|p| p.host_port).collect();
                let (how, field) = if pod.host_network {
                    ("hostNetwork", format!("{}.hostNetwork", pod.spec_field))
                } else if !host_ports.is_empty() {
                    ("hostPort", format!("{}.ports", c.field))
                } else {
                    continue;
                };
                let ports = if host_ports.is_empty() {
                    c.ports
                        .iter()
                        .filter_map(|p| p.container_port)
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                } else {
                    host_ports.iter().map(|p| p.to_string()).collect()
                };
                out.push(Exposure {
                    way_in: pod.owner,
                    field,
                    reach: Reach::Nodes(how),
                    trail: Trail::hop(
                        format!(
                            "{} container {} ({how}{}) ({})",
                            pod.owner.display(),
                            c.name,
                            if ports.is_empty() {
                                String::new()
                            } else {
                                format!(" port {}", ports.join(","))
                            },
                            i.name
                        ),
                        pod.owner.resource(),
                    ),
                    target: Target {
                        interface: i,
                        own_login: i.own_login(&c.command_line),
                        workload: Some(pod.owner),
                        field: Some(c.field.clone()),
                    },
                });
            }
        }
    }

    /// KubeRay resources that ask the operator for an outside-facing head Service or Ingress.
    fn ray_way_in(&self, rc: &'a Object, out: &mut Vec<Exposure<'a>>) {
        let Some(head) = self.ray_head(rc, None) else {
            return;
        };
        let base = head.base;
        let target = head.target.clone();
        let container = self
            .pods
            .iter()
            .find(|p| std::ptr::eq(p.owner, rc))
            .and_then(|p| {
                p.containers
                    .iter()
                    .find(|c| Some(&c.field) == head.target.field.as_ref())
            });
        let service_type = rc
            .str_at(&format!("{base}.headGroupSpec.serviceType"))
            .unwrap_or("ClusterIP");
        let ports: Vec<String> = container
            .map(|c| {
                c.ports
                    .iter()
                    .filter_map(|p| p.container_port)
                    .map(|p| p.to_string())
                    .collect()
            })
            .unwrap_or_default();
        let ports = if ports.is_empty() {
            "8265,10001".to_string()
        } else {
            ports.join(",")
        };
        let head_hop = head.hop;
        let reach = match service_type {
            "LoadBalancer" => Some(Reach::Internet),
            "NodePort" => Some(Reach::Nodes("NodePort")),
            _ => None,
        };
        if let Some(reach) = reach {
            out.push(Exposure {
                way_in: rc,
                field: format!("{base}.headGroupSpec.serviceType"),
                reach,
                trail: ray_trail(
                    format!(
                        "{} head Service ({service_type}, ports {ports})",
                        rc.display()
                    ),
                    head_hop.clone(),
                    rc,
                ),
                target: target.clone(),
            });
        }
        let ingress = rc
            .at(&format!("{base}.headGroupSpec.enableIngress"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if ingress {
            out.push(Exposure {
                way_in: rc,
                field: format!("{base}.headGroupSpec.enableIngress"),
                reach: Reach::Internet,
                trail: ray_trail(
                    format!(
                        "{} head Ingress (enableIngress, dashboard port)",
                        rc.display()
                    ),
                    head_hop,
                    rc,
                ),
                target,
            });
        }
    }
}

/// The way from a KubeRay resource's head Service or Ingress, which the operator creates (under
/// a name that a RayJob's generated cluster makes unknown), to its head: both through the
/// resource.
fn ray_trail(way: String, head: String, rc: &Object) -> Trail {
    let mut t = Trail::hop(way, rc.resource());
    t.push(head, rc.resource());
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges() {
        let cidrs = RangeSyntax::Cidrs;
        assert_eq!(
            all_private(&["10.0.0.0/8".into(), "192.168.1.0/24".into()], cidrs),
            Some(true)
        );
        assert_eq!(all_private(&["203.0.113.0/24".into()], cidrs), Some(false));
        assert_eq!(all_private(&["garbage".into()], cidrs), None);
        // A bare address is no CIDR for a load balancer, and one host for a router.
        assert_eq!(all_private(&["10.1.2.3".into()], cidrs), None);
        let addresses = RangeSyntax::Addresses;
        assert_eq!(
            all_private(&["10.1.2.3".into(), "fd00::1".into()], addresses),
            Some(true)
        );
        assert_eq!(
            all_private(&["10.1.2.3".into(), "198.51.100.7".into()], addresses),
            Some(false)
        );
        assert_eq!(
            reach_of_ranges(&["10.1.2.3".into()], "allow list", cidrs),
            Reach::Narrowed("10.1.2.3".into())
        );
        assert_eq!(
            reach_of_ranges(&["10.1.2.3".into()], "allow list", addresses),
            Reach::PrivateNetwork("allow list 10.1.2.3".into())
        );
        // Every address, however it is written.
        for all in ["0.0.0.0/0", "::/0", "10.0.0.0/0"] {
            assert_eq!(
                reach_of_ranges(&["10.0.0.0/8".into(), all.into()], "x", cidrs),
                Reach::Internet
            );
        }
    }
}
