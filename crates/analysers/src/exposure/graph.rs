//! The object index the exposure analysis walks, and how a Service resolves to what serves it.

use super::ingress_class::is_ingress_class;
use super::path::{service_ref, Target, Trail};
use super::traefik::is_traefik;
use super::Prepared;
use crate::pods::{template_facts, Container, PodTemplate, PortRef};
use jackstop_catalogue::interfaces::{ContainerFacts, Interface};
use jackstop_catalogue::Catalogue;
use jackstop_core::labels::{labels_from, selects, Labels};
use jackstop_core::object::port_number;
use jackstop_core::{Object, ResourceRef};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

/// How deep a chain of auth proxies and gateways is followed before giving up (cycles).
pub const MAX_DEPTH: usize = 4;

/// Istio's default root namespace: policies there without a selector apply mesh-wide.
pub const ISTIO_ROOT_NAMESPACE: &str = "istio-system";

/// Everything the exposure analysis looks up, by kind.
pub struct Index<'a> {
    pub catalogue: &'a Catalogue,
    pub services: HashMap<(&'a str, &'a str), &'a Object>,
    pub pods: Vec<PodTemplate<'a>>,
    /// The indices in `pods` of each namespace's templates, built when the walk first resolves
    /// a Service: a Service selects only in its own namespace, and the walk resolves one per
    /// route.
    pods_by_namespace: std::cell::OnceCell<HashMap<&'a str, Vec<usize>>>,
    pub istio_gateways: Vec<&'a Object>,
    /// Their selectors, in the same order, read when the walk first looks for a Gateway: each
    /// Service the walk resolves is matched against every Gateway (on a 4,050-object view,
    /// reading the selectors at each match was 40% of judging a change to the ingress
    /// gateway's Service; reading them all for every walk made short walks 10% slower).
    istio_gateway_selectors: std::cell::OnceCell<Vec<Labels>>,
    pub virtual_services: Vec<&'a Object>,
    /// The VirtualServices bound to each Istio Gateway, by its (namespace, name), in input
    /// order: looked up per Gateway rather than every VirtualService read per Gateway.
    virtual_services_by_gateway: std::cell::OnceCell<HashMap<(&'a str, &'a str), Vec<&'a Object>>>,
    pub authorization_policies: Vec<&'a Object>,
    pub request_authentications: Vec<&'a Object>,
    pub envoy_filters: Vec<&'a Object>,
    pub gateways: Vec<&'a Object>,
    pub routes: Vec<&'a Object>,
    pub security_policies: Vec<&'a Object>,
    pub ingresses: Vec<&'a Object>,
    pub openshift_routes: Vec<&'a Object>,
    pub ingress_routes: Vec<&'a Object>,
    pub ingress_classes: Vec<&'a Object>,
    pub traefik_middlewares: Vec<&'a Object>,
    /// The AWS Load Balancer Controller's IngressClassParams (cluster-scoped).
    pub ingress_class_params: Vec<&'a Object>,
    pub ray_clusters: Vec<&'a Object>,
    /// The Services the walk looked for, found or not, as (namespace, name): kept only when
    /// asked for ([`Index::recording_lookups`]).
    pub service_lookups: Option<RefCell<HashSet<(String, String)>>>,
}

fn is_istio(o: &Object) -> bool {
    o.group().ends_with("istio.io")
}

fn is_gateway_api(o: &Object) -> bool {
    o.group() == "gateway.networking.k8s.io"
}

impl<'a> Index<'a> {
    /// The index of `objects`, each with what was read from it before when there is that.
    pub fn build(
        objects: impl IntoIterator<Item = (&'a Object, Option<&'a Prepared>)>,
        catalogue: &'a Catalogue,
    ) -> Index<'a> {
        let mut ix = Index {
            catalogue,
            services: HashMap::new(),
            pods: Vec::new(),
            pods_by_namespace: std::cell::OnceCell::new(),
            istio_gateways: Vec::new(),
            istio_gateway_selectors: std::cell::OnceCell::new(),
            virtual_services: Vec::new(),
            virtual_services_by_gateway: std::cell::OnceCell::new(),
            authorization_policies: Vec::new(),
            request_authentications: Vec::new(),
            envoy_filters: Vec::new(),
            gateways: Vec::new(),
            routes: Vec::new(),
            security_policies: Vec::new(),
            ingresses: Vec::new(),
            openshift_routes: Vec::new(),
            ingress_routes: Vec::new(),
            ingress_classes: Vec::new(),
            traefik_middlewares: Vec::new(),
            ingress_class_params: Vec::new(),
            ray_clusters: Vec::new(),
            service_lookups: None,
        };
        for (o, prepared) in objects {
            match o.kind.as_str() {
                "Service" if o.group().is_empty() => {
                    ix.services
                        .insert((o.effective_namespace(), o.name.as_str()), o);
                }
                "Gateway" if is_istio(o) => ix.istio_gateways.push(o),
                "Gateway" if is_gateway_api(o) => ix.gateways.push(o),
                "VirtualService" if is_istio(o) => ix.virtual_services.push(o),
                "AuthorizationPolicy" if is_istio(o) => ix.authorization_policies.push(o),
                "RequestAuthentication" if is_istio(o) => ix.request_authentications.push(o),
                "EnvoyFilter" if is_istio(o) => ix.envoy_filters.push(o),
                "HTTPRoute" | "GRPCRoute" | "TLSRoute" | "TCPRoute" if is_gateway_api(o) => {
                    ix.routes.push(o)
                }
                "SecurityPolicy" if o.group() == "gateway.envoyproxy.io" => {
                    ix.security_policies.push(o)
                }
                "Ingress" => ix.ingresses.push(o),
                "Route" if super::openshift::is_openshift_route(o) => ix.openshift_routes.push(o),
                "IngressRoute" if is_traefik(o) => ix.ingress_routes.push(o),
                "IngressClass" if is_ingress_class(o) => ix.ingress_classes.push(o),
                "Middleware" if is_traefik(o) => ix.traefik_middlewares.push(o),
                "IngressClassParams" if o.group() == "elbv2.k8s.aws" => {
                    ix.ingress_class_params.push(o)
                }
                k if super::RAY_KINDS.contains(&k) => ix.ray_clusters.push(o),
                _ => {}
            }
            let templates = match prepared {
                Some(p) => p.templates.clone(),
                None => template_facts(o),
            };
            ix.pods.extend(
                templates
                    .into_iter()
                    .map(|facts| PodTemplate { owner: o, facts }),
            );
        }
        ix
    }

    /// The VirtualServices bound to an Istio Gateway, in input order.
    pub fn virtual_services_of(&self, gateway: &'a Object) -> &[&'a Object] {
        self.virtual_services_by_gateway
            .get_or_init(|| {
                let mut by_gateway: HashMap<(&'a str, &'a str), Vec<&'a Object>> = HashMap::new();
                for &vs in &self.virtual_services {
                    let vs_ns = vs.effective_namespace();
                    for g in vs
                        .at("spec.gateways")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                    {
                        // `ns/name`, or `name` in the VirtualService's namespace.
                        let key = g.split_once('/').unwrap_or((vs_ns, g));
                        let bound = by_gateway.entry(key).or_default();
                        if !bound.last().is_some_and(|b| std::ptr::eq(*b, vs)) {
                            bound.push(vs);
                        }
                    }
                }
                by_gateway
            })
            .get(&(gateway.effective_namespace(), gateway.name.as_str()))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The pod templates in namespace `ns` that `keep` keeps, in input order.
    pub fn pods_in(
        &self,
        ns: &str,
        keep: impl Fn(&PodTemplate<'a>) -> bool,
    ) -> Vec<&PodTemplate<'a>> {
        self.pods_by_namespace
            .get_or_init(|| {
                // A template's namespace is its owner's.
                let mut by_namespace: HashMap<&'a str, Vec<usize>> = HashMap::new();
                for (i, p) in self.pods.iter().enumerate() {
                    by_namespace
                        .entry(p.owner.effective_namespace())
                        .or_default()
                        .push(i);
                }
                by_namespace
            })
            .get(ns)
            .into_iter()
            .flatten()
            .map(|&i| &self.pods[i])
            .filter(|p| keep(p))
            .collect()
    }

    /// The same index, noting each Service the walk looks for: a Service that no walk looks
    /// for and that is no way in itself is on no path.
    pub fn recording_lookups(mut self) -> Index<'a> {
        self.service_lookups = Some(RefCell::new(HashSet::new()));
        self
    }

    /// The catalogue interface a container runs. The answer is kept on the container, for
    /// views whose templates outlive one analysis.
    pub fn interface_of(&self, c: &Container) -> Option<&'a Interface> {
        let set = &self.catalogue.interfaces;
        let facts = ContainerFacts {
            image: &c.image,
            command_line: &c.command_line,
        };
        let &(k, at) = c
            .interface
            .get_or_init(|| (set.id(), set.position_for_container(&facts)));
        if k == set.id() {
            at.and_then(|i| set.nth(i))
        } else {
            // Looked up in another catalogue's set: not this one's answer.
            set.for_container(&facts)
        }
    }

    /// Istio Gateways whose selector picks workloads with `labels`.
    pub fn istio_gateways_for(&self, labels: &Labels) -> Vec<&'a Object> {
        let selectors = self.istio_gateway_selectors.get_or_init(|| {
            self.istio_gateways
                .iter()
                .map(|g| labels_from(g.at("spec.selector").and_then(Value::as_object)))
                .collect()
        });
        self.istio_gateways
            .iter()
            .zip(selectors)
            .filter(|(_, sel)| selects(sel, labels))
            .map(|(g, _)| *g)
            .collect()
    }

    /// A cluster-local host name (`svc`, `svc.ns`, `svc.ns.svc.cluster.local`) as (ns, name).
    pub fn service_host(host: &str, default_ns: &str) -> Option<(String, String)> {
        let host = host.trim_end_matches('.');
        let parts: Vec<&str> = host.split('.').collect();
        match parts.as_slice() {
            [name] => Some((default_ns.to_string(), name.to_string())),
            [name, ns] => Some((ns.to_string(), name.to_string())),
            [name, ns, "svc", ..] => Some((ns.to_string(), name.to_string())),
            _ => None,
        }
    }

    /// What a Service leads to: sensitive interfaces (through auth proxies too) and Istio
    /// ingress gateways. `port` narrows to one Service port.
    pub fn resolve_service(
        &self,
        ns: &str,
        name: &str,
        port: Option<&PortRef>,
        depth: usize,
    ) -> Resolved<'a> {
        if let Some(l) = &self.service_lookups {
            l.borrow_mut().insert((ns.to_string(), name.to_string()));
        }
        let mut out = Resolved::default();
        if depth > MAX_DEPTH {
            return out;
        }
        let Some(svc) = self.services.get(&(ns, name)).copied() else {
            // KubeRay creates `<cluster>-head-svc` for each RayCluster and RayService.
            for rc in &self.ray_clusters {
                if rc.effective_namespace() == ns
                    && name.strip_suffix("-head-svc") == Some(rc.name.as_str())
                {
                    if let Some(head) = self.ray_head(rc, port) {
                        let mut trail = Trail::hop(
                            format!(
                                "Service {ns}/{name} (created by KubeRay for {})",
                                rc.display()
                            ),
                            service_ref(ns, name),
                        );
                        trail.push(head.hop, rc.resource());
                        out.targets.push((trail, head.target));
                        return out;
                    }
                }
            }
            // The Service is not in the input; the catalogue may still know it by name.
            if let Some(i) = self
                .catalogue
                .interfaces
                .iter()
                .find(|i| i.matches_service_name(name))
            {
                out.targets.push((
                    Trail::hop(
                        format!(
                            "Service {ns}/{name} (not in the input; {} by its name)",
                            i.name
                        ),
                        service_ref(ns, name),
                    ),
                    Target {
                        interface: i,
                        own_login: i.own_login(""),
                        workload: None,
                        field: None,
                    },
                ));
            }
            return out;
        };
        let selector = labels_from(svc.at("spec.selector").and_then(Value::as_object));
        let all_ports: Vec<&Value> = svc
            .at("spec.ports")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let chosen: Vec<&Value> = match port {
            Some(p) => {
                let hit: Vec<&Value> = all_ports
                    .iter()
                    .copied()
                    .filter(|sp| match p {
                        PortRef::Number(n) => sp.get("port").and_then(port_number) == Some(*n),
                        PortRef::Name(s) => {
                            sp.get("name").and_then(Value::as_str) == Some(s.as_str())
                        }
                    })
                    .collect();
                if hit.is_empty() {
                    all_ports.clone()
                } else {
                    hit
                }
            }
            None => all_ports.clone(),
        };
        let target_ports: Vec<PortRef> = chosen
            .iter()
            .filter_map(|sp| {
                sp.get("targetPort")
                    .and_then(PortRef::from_value)
                    .or_else(|| sp.get("port").and_then(PortRef::from_value))
            })
            .collect();
        let port_words: Vec<String> = chosen
            .iter()
            .filter_map(|sp| sp.get("port").and_then(port_number).map(|n| n.to_string()))
            .collect();
        let svc_hop = ServiceHop {
            words: if port_words.is_empty() {
                format!("Service {}", svc_name(svc))
            } else {
                format!("Service {}:{}", svc_name(svc), port_words.join(","))
            },
            object: svc.resource(),
        };

        if !self.istio_gateways_for(&selector).is_empty() {
            out.istio_gateways.push(GatewayWorkload {
                service: svc,
                labels: selector.clone(),
            });
        }
        let pods = self.pods_in(ns, |p| selects(&selector, &p.labels));
        if pods.is_empty() {
            if let Some(i) = self
                .catalogue
                .interfaces
                .iter()
                .find(|i| i.matches_labels(&selector) || i.matches_service_name(name))
            {
                out.targets.push((
                    Trail::hop(
                        format!(
                            "{} (workload not in the input; {} by its selector)",
                            svc_hop.words, i.name
                        ),
                        svc.resource(),
                    ),
                    Target {
                        interface: i,
                        own_login: i.own_login(""),
                        workload: None,
                        field: None,
                    },
                ));
            }
            return out;
        }
        for pod in pods {
            let mut served: Vec<&Container> = pod
                .containers
                .iter()
                .filter(|c| target_ports.iter().any(|p| c.serves(p)))
                .collect();
            if served.is_empty() {
                // Containers need not declare the ports they listen on.
                served = pod.containers.iter().collect();
            }
            for c in served {
                self.container_targets(pod, c, &svc_hop, depth, &mut out);
            }
        }
        out
    }

    /// What one container that receives traffic is: an interface, an auth proxy in front of
    /// something, or neither.
    fn container_targets(
        &self,
        pod: &PodTemplate<'a>,
        c: &Container,
        svc_hop: &ServiceHop,
        depth: usize,
        out: &mut Resolved<'a>,
    ) {
        let workload_hop = format!("{} container {}", pod.owner.display(), c.name);
        if matches!(
            pod.owner.kind.as_str(),
            "RayCluster" | "RayService" | "RayJob"
        ) {
            if let Some(head) = self
                .ray_head(pod.owner, None)
                .filter(|h| h.target.field.as_ref() == Some(&c.field))
            {
                let mut trail = svc_hop.trail();
                trail.push(head.hop, pod.owner.resource());
                out.targets.push((trail, head.target));
                return;
            }
        }
        if let Some(proxy) = self.catalogue.exposure.auth_proxy(&c.image) {
            let auth = format!("{} ({workload_hop})", proxy.name);
            for upstream in self.proxy_upstreams(c) {
                let local = upstream.contains("localhost") || upstream.contains("127.0.0.1");
                if local {
                    for other in pod.containers.iter().filter(|o| o.name != c.name) {
                        let mut inner = Resolved::default();
                        self.container_targets(pod, other, svc_hop, depth + 1, &mut inner);
                        out.extend_behind(inner, svc_hop, &auth, pod.owner);
                    }
                } else if let Some(u) = upstream_host(&upstream) {
                    if let Some((ns, name)) = Index::service_host(&u.0, &pod.namespace) {
                        let inner = self.resolve_service(&ns, &name, u.1.as_ref(), depth + 1);
                        out.extend_behind(inner, svc_hop, &auth, pod.owner);
                    }
                }
            }
            return;
        }
        let interface = self.interface_of(c).or_else(|| {
            self.catalogue
                .interfaces
                .iter()
                .find(|i| i.matches_labels(&pod.labels))
        });
        if let Some(i) = interface {
            let mut trail = svc_hop.trail();
            trail.push(format!("{workload_hop} ({})", i.name), pod.owner.resource());
            out.targets.push((
                trail,
                Target {
                    interface: i,
                    own_login: i.own_login(&c.command_line),
                    workload: Some(pod.owner),
                    field: Some(c.field.clone()),
                },
            ));
        }
    }

    fn proxy_upstreams(&self, c: &Container) -> Vec<String> {
        let mut ups = Vec::new();
        for re in &self.catalogue.exposure.proxy_upstreams {
            for cap in re.captures_iter(&c.command_line) {
                if let Some(m) = cap.get(1) {
                    ups.extend(
                        m.as_str()
                            .split(',')
                            .map(|s| s.trim_matches(['"', '\'']).to_string()),
                    );
                }
            }
        }
        ups
    }
}

/// The head of a KubeRay resource, as a sensitive interface.
pub struct RayHead<'a> {
    pub target: Target<'a>,
    pub hop: String,
    /// Where the cluster spec sits in the resource (`spec`, `spec.rayClusterConfig`, ...).
    pub base: &'static str,
}

impl<'a> Index<'a> {
    /// The Ray head of a RayCluster, RayService or RayJob: its Ray container, with KubeRay's
    /// `authOptions.mode` taken into account as Ray's own login.
    ///
    /// `port` is the head port the path reaches, when known: Ray's TLS (`RAY_USE_TLS=1`) is
    /// mutual and guards its gRPC client port (10001), not the dashboard.
    pub fn ray_head(&self, rc: &'a Object, port: Option<&PortRef>) -> Option<RayHead<'a>> {
        let base = match rc.kind.as_str() {
            "RayService" => "spec.rayClusterConfig",
            "RayJob" => "spec.rayClusterSpec",
            _ => "spec",
        };
        let ray = self.catalogue.interfaces.get("ray-head")?;
        let head = self.pods.iter().find(|p| std::ptr::eq(p.owner, rc));
        // The head's main container: not an init container, preferably the one running Ray.
        let container = head.and_then(|p| {
            let main: Vec<&Container> = p
                .containers
                .iter()
                .filter(|c| c.field.contains(".containers["))
                .collect();
            main.iter()
                .find(|c| c.image.contains("ray"))
                .or(main.first())
                .copied()
        });
        let mut command_line = container
            .map(|c| c.command_line.clone())
            .unwrap_or_default();
        if let Some(mode) = rc.str_at(&format!("{base}.authOptions.mode")) {
            command_line.push_str(&format!("\nRAY_AUTH_MODE={mode}"));
        }
        let mut own_login = ray.own_login(&command_line);
        let client_port = matches!(port, Some(PortRef::Number(10001)))
            || matches!(port, Some(PortRef::Name(n)) if n == "client");
        if client_port
            && !own_login.required
            && command_line
                .lines()
                .any(|l| l == "RAY_USE_TLS=1" || l == "RAY_USE_TLS=true")
        {
            own_login = jackstop_catalogue::interfaces::OwnLogin {
                required: true,
                why: "the Ray client port requires mutual TLS (RAY_USE_TLS=1): clients need a certificate of the cluster's CA".into(),
            };
        }
        Some(RayHead {
            hop: format!(
                "{} head container {} ({})",
                rc.display(),
                container.map(|c| c.name.as_str()).unwrap_or("(none)"),
                ray.name
            ),
            target: Target {
                interface: ray,
                own_login,
                workload: Some(rc),
                field: container.map(|c| c.field.clone()),
            },
            base,
        })
    }
}

/// `http://host:port/path` as (host, port).
fn upstream_host(url: &str) -> Option<(String, Option<PortRef>)> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let hostport = rest.split(['/', '?']).next()?;
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().ok().map(PortRef::Number)),
        None => (hostport, None),
    };
    (!host.is_empty()).then(|| (host.to_string(), port))
}

fn svc_name(o: &Object) -> String {
    format!("{}/{}", o.effective_namespace(), o.name)
}

/// The hop to a Service in the input: the words, with the ports the path uses, and the Service.
pub struct ServiceHop {
    pub words: String,
    pub object: ResourceRef,
}

impl ServiceHop {
    fn trail(&self) -> Trail {
        Trail::hop(self.words.clone(), self.object.clone())
    }
}

/// Istio ingress gateway workloads a Service fronts.
#[derive(Debug, Clone)]
pub struct GatewayWorkload<'a> {
    pub service: &'a Object,
    pub labels: Labels,
}

/// What a Service leads to.
#[derive(Debug, Default)]
pub struct Resolved<'a> {
    pub targets: Vec<(Trail, Target<'a>)>,
    pub istio_gateways: Vec<GatewayWorkload<'a>>,
}

impl<'a> Resolved<'a> {
    /// Adds what lies behind an auth proxy (in `proxy`): the hop to the proxy, then its
    /// targets, with the proxy as an auth layer.
    fn extend_behind(
        &mut self,
        inner: Resolved<'a>,
        svc_hop: &ServiceHop,
        auth: &str,
        proxy: &Object,
    ) {
        for (mut trail, target) in inner.targets {
            // The proxy's upstream in its own pod: the trail behind it starts at the same
            // Service again.
            if trail.via.first() == Some(&svc_hop.object) {
                trail.drop_first();
            }
            let mut t = svc_hop.trail();
            t.push(auth.to_string(), proxy.resource());
            t.auth.push(auth.to_string());
            self.targets.push((t.then(&trail), target));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_upstreams() {
        assert_eq!(
            Index::service_host("centraldashboard.kubeflow.svc.cluster.local", "x"),
            Some(("kubeflow".into(), "centraldashboard".into()))
        );
        assert_eq!(
            Index::service_host("web", "ns"),
            Some(("ns".into(), "web".into()))
        );
        assert_eq!(Index::service_host("example.com.evil.org", "ns"), None);
        assert_eq!(
            upstream_host("http://jupyter.lab.svc:8888/"),
            Some(("jupyter.lab.svc".into(), Some(PortRef::Number(8888))))
        );
    }
}
