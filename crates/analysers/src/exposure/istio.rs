//! Istio: routing from an ingress gateway through Gateways and VirtualServices, and the
//! authentication that gateway enforces (RequestAuthentication, AuthorizationPolicy, CUSTOM
//! ext-authz providers, EnvoyFilter ext_authz).

use super::graph::{GatewayWorkload, Index, ISTIO_ROOT_NAMESPACE};
use super::path::{Target, Trail};
use crate::pods::PortRef;
use jackstop_core::labels::{labels_from, Labels};
use jackstop_core::Object;
use serde_json::Value;
use std::collections::HashMap;

/// Authentication a gateway enforces on one route path.
#[derive(Debug, Default, Clone)]
pub struct GatewayAuth {
    pub layers: Vec<String>,
    pub notes: Vec<String>,
    /// Nothing from outside passes at all (an ALLOW policy set that no rule of matches).
    pub blocked: Option<String>,
}

impl<'a> Index<'a> {
    /// The interfaces an ingress gateway workload routes to, each with its trail.
    pub fn route_istio(&self, gw: &GatewayWorkload<'a>, depth: usize) -> Vec<(Trail, Target<'a>)> {
        let mut out = Vec::new();
        let gw_ns = gw.service.effective_namespace();
        // The gateway's policies, looked up once; what they make of each path, once a path.
        let mut policies = None;
        let mut by_path: HashMap<String, GatewayAuth> = HashMap::new();
        for gateway in self.istio_gateways_for(&gw.labels) {
            let gw_hop = format!("{} ({})", gateway.display(), servers_words(gateway));
            for vs in self.virtual_services_of(gateway) {
                let vs_ns = vs.effective_namespace();
                for (prefix, dest_host, dest_port) in vs_routes(vs) {
                    let Some((ns, name)) = Index::service_host(&dest_host, vs_ns) else {
                        continue;
                    };
                    let auth = by_path.entry(prefix.clone()).or_insert_with(|| {
                        policies
                            .get_or_insert_with(|| self.gateway_policies(gw_ns, &gw.labels))
                            .auth(&prefix)
                    });
                    if auth.blocked.is_some() {
                        continue;
                    }
                    let mut head = Trail::hop(gw_hop.clone(), gateway.resource());
                    head.push(format!("{} ({prefix})", vs.display()), vs.resource());
                    head.auth = auth.layers.clone();
                    head.notes = auth.notes.clone();
                    let resolved = self.resolve_service(&ns, &name, dest_port.as_ref(), depth + 1);
                    for (trail, target) in resolved.targets {
                        out.push((head.then(&trail), target));
                    }
                }
            }
        }
        out
    }

    /// Policies of `kind` that apply to a workload with `labels` in `ns`.
    fn istio_policies_for(
        &self,
        list: &[&'a Object],
        ns: &str,
        labels: &Labels,
    ) -> Vec<&'a Object> {
        list.iter()
            .copied()
            .filter(|p| {
                let pns = p.effective_namespace();
                if pns != ns && pns != ISTIO_ROOT_NAMESPACE {
                    return false;
                }
                match p.at("spec.selector.matchLabels").and_then(Value::as_object) {
                    None => true,
                    Some(m) => {
                        let sel = labels_from(Some(m));
                        sel.iter().all(|(k, v)| labels.get(k) == Some(v))
                    }
                }
            })
            .collect()
    }

    /// The Istio policies that apply to the gateway workload with `labels` in `ns`: looked up
    /// once for all the paths of its routes.
    fn gateway_policies<'n>(&self, ns: &'n str, labels: &Labels) -> GatewayPolicies<'a, 'n> {
        GatewayPolicies {
            ns,
            policies: self.istio_policies_for(&self.authorization_policies, ns, labels),
            request_auths: self.istio_policies_for(&self.request_authentications, ns, labels),
            envoy_filters: self.istio_policies_for(&self.envoy_filters, ns, labels),
        }
    }
}

/// The Istio policies that apply to one gateway workload.
struct GatewayPolicies<'a, 'n> {
    ns: &'n str,
    policies: Vec<&'a Object>,
    request_auths: Vec<&'a Object>,
    envoy_filters: Vec<&'a Object>,
}

impl GatewayPolicies<'_, '_> {
    /// What authenticates requests for `path`.
    fn auth(&self, path: &str) -> GatewayAuth {
        let (ns, policies, request_auths) = (self.ns, &self.policies, &self.request_auths);
        let mut auth = GatewayAuth::default();
        let mut allow_policies = 0;
        let mut anonymous_allowed = false;
        let mut jwt_required_by: Vec<String> = Vec::new();
        for p in policies {
            let action = p.str_at("spec.action").unwrap_or("ALLOW");
            let rules: Vec<&Value> = p
                .at("spec.rules")
                .and_then(Value::as_array)
                .map(|r| r.iter().collect())
                .unwrap_or_default();
            let covering: Vec<&Value> = rules
                .iter()
                .copied()
                .filter(|r| rule_covers(r, path))
                .collect();
            match action {
                "CUSTOM" if !covering.is_empty() => {
                    let provider = p.str_at("spec.provider.name").unwrap_or("ext-authz");
                    auth.layers.push(format!(
                        "Istio CUSTOM ext-authz provider {provider} (AuthorizationPolicy {})",
                        p.display()
                    ));
                }
                "DENY" if covering.iter().any(|r| requires_principal_by_deny(r)) => {
                    jwt_required_by.push(format!(
                        "AuthorizationPolicy {} (DENY without request principal)",
                        p.display()
                    ));
                }
                "ALLOW" => {
                    allow_policies += 1;
                    for r in covering {
                        if allows_external(r) {
                            if requires_principal_by_allow(r) {
                                jwt_required_by.push(format!(
                                    "AuthorizationPolicy {} (ALLOW only with a request principal)",
                                    p.display()
                                ));
                            } else {
                                anonymous_allowed = true;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        let allow_jwt = jwt_required_by.iter().any(|s| s.contains("ALLOW"));
        if allow_policies > 0 && !anonymous_allowed && !allow_jwt {
            auth.blocked = Some(format!(
                "no ALLOW AuthorizationPolicy at the gateway matches {path}"
            ));
        }
        // An ALLOW rule that admits anonymous requests does not undo a DENY that requires a
        // principal; only DENY-based requirements, or ALLOW-only ones without an anonymous rule,
        // hold.
        let deny_jwt: Vec<&String> = jwt_required_by
            .iter()
            .filter(|s| s.contains("DENY"))
            .collect();
        let effective: Vec<&String> = if anonymous_allowed {
            deny_jwt
        } else {
            jwt_required_by.iter().collect()
        };
        if !effective.is_empty() {
            if request_auths.is_empty() {
                auth.notes.push("request principals are required but no RequestAuthentication applies: every request is denied".into());
            }
            let ra = request_auths
                .iter()
                .map(|r| r.display())
                .collect::<Vec<_>>()
                .join(", ");
            auth.layers.push(format!(
                "JWT required: {}{}",
                effective
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
                if ra.is_empty() {
                    String::new()
                } else {
                    format!(" with RequestAuthentication {ra}")
                }
            ));
        } else if !request_auths.is_empty() {
            auth.notes.push(format!(
                "RequestAuthentication {} validates tokens when present but no AuthorizationPolicy requires one, so anonymous requests pass",
                request_auths.iter().map(|r| r.display()).collect::<Vec<_>>().join(", ")
            ));
        }
        for f in &self.envoy_filters {
            let selected = match f
                .at("spec.workloadSelector.labels")
                .and_then(Value::as_object)
            {
                Some(_) => true,
                None => {
                    f.effective_namespace() == ns || f.effective_namespace() == ISTIO_ROOT_NAMESPACE
                }
            };
            let text = f
                .at("spec.configPatches")
                .map(Value::to_string)
                .unwrap_or_default();
            if selected && text.contains("ext_authz") {
                auth.layers
                    .push(format!("EnvoyFilter {} (ext_authz filter)", f.display()));
            }
        }
        auth
    }
}

/// (path, destination host, destination port) for each route of a VirtualService.
fn vs_routes(vs: &Object) -> Vec<(String, String, Option<PortRef>)> {
    let mut out = Vec::new();
    for section in ["http", "tcp", "tls"] {
        for route in vs
            .at(&format!("spec.{section}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let paths: Vec<String> = route
                .get("match")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|m| {
                    let uri = m.get("uri")?;
                    uri.get("prefix")
                        .or_else(|| uri.get("exact"))
                        .or_else(|| uri.get("regex"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .collect();
            let paths = if paths.is_empty() {
                vec!["/".to_string()]
            } else {
                paths
            };
            for dest in route
                .get("route")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(host) = dest
                    .get("destination")
                    .and_then(|d| d.get("host"))
                    .and_then(Value::as_str)
                else {
                    continue;
                };
                let port = dest
                    .get("destination")
                    .and_then(|d| d.get("port"))
                    .and_then(|p| p.get("number"))
                    .and_then(PortRef::from_value);
                for p in &paths {
                    out.push((p.clone(), host.to_string(), port.clone()));
                }
            }
        }
    }
    out
}

fn servers_words(g: &Object) -> String {
    let servers: Vec<String> = g
        .at("spec.servers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| {
            let hosts: Vec<&str> = s
                .get("hosts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let port = s
                .get("port")
                .and_then(|p| p.get("number"))
                .map(Value::to_string)
                .unwrap_or_default();
            let proto = s
                .get("port")
                .and_then(|p| p.get("protocol"))
                .and_then(Value::as_str)
                .unwrap_or("");
            format!("hosts {} port {port} {proto}", hosts.join(","))
                .trim()
                .to_string()
        })
        .collect();
    servers.join("; ")
}

/// An Istio path pattern (`/dex/*`, `*.js`, `/exact`, `*`) against a request path.
pub fn path_matches(pattern: &str, path: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if let Some(prefix) = pattern
        .strip_suffix("/**")
        .or_else(|| pattern.strip_suffix("/*"))
    {
        return path == prefix || path.starts_with(&format!("{prefix}/"));
    }
    if let Some(prefix) = pattern.strip_suffix('*') {
        return path.starts_with(prefix);
    }
    if let Some(suffix) = pattern.strip_prefix('*') {
        return path.ends_with(suffix);
    }
    pattern == path
}

fn strs(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether an AuthorizationPolicy rule's `to` covers requests for `path` (its `when`
/// conditions are not evaluated: they narrow, they do not authenticate).
pub fn rule_covers(rule: &Value, path: &str) -> bool {
    let tos = rule.get("to").and_then(Value::as_array);
    match tos {
        None => true,
        Some(tos) if tos.is_empty() => true,
        Some(tos) => tos.iter().any(|to| {
            let op = to.get("operation");
            let paths = strs(op.and_then(|o| o.get("paths")));
            let not_paths = strs(op.and_then(|o| o.get("notPaths")));
            (paths.is_empty() || paths.iter().any(|p| path_matches(p, path)))
                && !not_paths.iter().any(|p| path_matches(p, path))
        }),
    }
}

fn sources(rule: &Value) -> Vec<&Value> {
    rule.get("from")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(|x| x.get("source")).collect())
        .unwrap_or_default()
}

/// A DENY rule that fires for requests without a verified JWT.
fn requires_principal_by_deny(rule: &Value) -> bool {
    sources(rule)
        .iter()
        .any(|s| strs(s.get("notRequestPrincipals")).contains(&"*"))
}

/// An ALLOW rule that admits only requests with a verified JWT.
fn requires_principal_by_allow(rule: &Value) -> bool {
    let srcs = sources(rule);
    !srcs.is_empty()
        && srcs
            .iter()
            .all(|s| !strs(s.get("requestPrincipals")).is_empty())
}

/// Whether an ALLOW rule can admit a client from outside the mesh: rules that name peer
/// identities (`principals`, `namespaces`) only admit mesh workloads.
fn allows_external(rule: &Value) -> bool {
    let srcs = sources(rule);
    srcs.is_empty()
        || srcs
            .iter()
            .any(|s| strs(s.get("principals")).is_empty() && strs(s.get("namespaces")).is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn istio_paths() {
        assert!(path_matches("/dex/*", "/dex/"));
        assert!(path_matches("/dex/*", "/dex/auth"));
        assert!(!path_matches("/dex/*", "/"));
        assert!(path_matches("*", "/anything"));
        assert!(path_matches("/api*", "/api/v1"));
        assert!(path_matches("*.js", "/x/app.js"));
    }

    #[test]
    fn kubeflow_rules() {
        let oauth =
            json!({"to": [{"operation": {"notPaths": ["/dex/*", "/dex/**", "/oauth2/*"]}}]});
        assert!(rule_covers(&oauth, "/"));
        assert!(rule_covers(&oauth, "/pipeline"));
        assert!(!rule_covers(&oauth, "/dex/"));
        let jwt = json!({"from": [{"source": {"notRequestPrincipals": ["*"]}}]});
        assert!(requires_principal_by_deny(&jwt));
        assert!(allows_external(&json!({})));
        assert!(!allows_external(
            &json!({"from": [{"source": {"principals": ["cluster.local/ns/x/sa/y"]}}]})
        ));
    }
}
