//! Exposure fixes: close the way in (a Service back to ClusterIP, a Ray head without a public
//! Service), narrow it (load balancer source ranges), or authenticate it (an Istio ingress
//! gateway that requires a token from an OIDC provider).

use crate::{Effect, FindingRef, Fix, FixOptions, Method, MANAGED_BY};
use jackstop_core::{Finding, Object};
use serde_json::{json, Map, Value};

/// The rule of exposures that are behind authentication already.
const AUTHENTICATED_RULE: &str = "JS-EXP-009";

/// The name of the policies of the gateway fix.
pub const GATEWAY_AUTHN_NAME: &str = "jackstop-require-jwt";

/// Fields a Service may have only as a NodePort or LoadBalancer (or that open it, as
/// externalIPs do): set to null by the ClusterIP patch, so that the API server accepts it
/// whatever its version (1.20 and later clear some of them by themselves).
const OUTSIDE_ONLY: &[&str] = &[
    "externalIPs",
    "loadBalancerSourceRanges",
    "loadBalancerIP",
    "loadBalancerClass",
    "externalTrafficPolicy",
    "healthCheckNodePort",
    "allocateLoadBalancerNodePorts",
];

pub fn fixes(
    f: &Finding,
    object: Option<&Object>,
    objects: &[Object],
    opts: &FixOptions,
) -> Result<Vec<Fix>, String> {
    if f.rule == AUTHENTICATED_RULE {
        return Err("behind authentication already; if it should not be reachable from outside at all, the ClusterIP patch of an unauthenticated exposure applies".into());
    }
    let Some(o) = object else {
        return Err(format!("{} is not among the objects read", f.resource));
    };
    match (o.group(), o.kind.as_str()) {
        ("", "Service") => service_fixes(f, o, objects, opts),
        ("ray.io", "RayCluster") => ray_fix(f, o),
        ("networking.k8s.io" | "extensions", "Ingress") => ingress_fix(f, o, opts),
        (_, "Route" | "HTTPRoute" | "Gateway" | "GRPCRoute") => Err(format!(
            "a {} has no safe one-field change: put an authenticating proxy in front of the interface or remove the route (see its remediation)",
            o.kind
        )),
        _ => Err(format!(
            "no automatic fix for an exposure through a {}: see its remediation",
            o.kind
        )),
    }
}

fn service_fixes(
    f: &Finding,
    svc: &Object,
    objects: &[Object],
    opts: &FixOptions,
) -> Result<Vec<Fix>, String> {
    let ty = svc.str_at("spec.type").unwrap_or("ClusterIP");
    let mut out = Vec::new();
    if ty == "LoadBalancer" && !opts.allow_cidrs.is_empty() {
        out.push(narrow(f, svc, opts));
    } else {
        out.push(cluster_ip(f, svc, ty));
    }
    if let Some(fix) = gateway_auth(f, svc, objects, opts) {
        out.push(fix);
    }
    Ok(out)
}

fn cluster_ip(f: &Finding, svc: &Object, ty: &str) -> Fix {
    let mut spec = Map::new();
    spec.insert("type".into(), json!("ClusterIP"));
    // A merge patch replaces lists whole: the ports as they are, less their node ports
    // (a ClusterIP Service may not have one).
    let ports = svc.at("spec.ports").and_then(Value::as_array);
    let had_node_ports = ports.is_some_and(|ps| ps.iter().any(|p| p.get("nodePort").is_some()));
    if let Some(ports) = ports {
        let ports: Vec<Value> = ports
            .iter()
            .map(|p| {
                let mut p = p.clone();
                if let Some(m) = p.as_object_mut() {
                    m.remove("nodePort");
                }
                p
            })
            .collect();
        spec.insert("ports".into(), Value::Array(ports));
    }
    for k in OUTSIDE_ONLY {
        spec.insert((*k).into(), Value::Null);
    }
    let mut changes = format!("spec.type {ty} -> ClusterIP");
    if had_node_ports {
        changes.push_str("; node ports removed from spec.ports");
    }
    let removed: Vec<&str> = OUTSIDE_ONLY
        .iter()
        .copied()
        .filter(|k| svc.at(&format!("spec.{k}")).is_some())
        .collect();
    if !removed.is_empty() {
        changes.push_str(&format!("; removed {}", removed.join(", ")));
    }
    Fix {
        action: "clusterip",
        method: Method::MergePatch,
        target: svc.resource(),
        documents: vec![json!({"spec": spec})],
        findings: vec![f.into()],
        effect: Effect::Closes,
        changes,
        breaks: format!(
            "everything that reaches {} from outside the cluster (its load balancer address, node ports and external IPs go away); reach it with `kubectl port-forward -n {} svc/{} 8080:{}` or behind an authenticating proxy. spec.ports is replaced by the ports as scanned.",
            svc.display(),
            svc.effective_namespace(),
            svc.name,
            first_port(svc).unwrap_or_else(|| "PORT".into())
        ),
        notes: vec![MANAGED_ELSEWHERE.into()],
        needs_input: false,
    }
}

/// Said of every patch of an object that an installer may own.
const MANAGED_ELSEWHERE: &str = "If Helm, Argo CD, Flux, the Istio operator or a kustomize overlay manages this object, make the same change there too, or the next sync sets it back.";

fn first_port(svc: &Object) -> Option<String> {
    svc.at("spec.ports")?
        .as_array()?
        .iter()
        .filter_map(|p| p.get("port"))
        .find(|p| p.as_u64() != Some(15021))
        .map(|p| p.to_string())
}

fn narrow(f: &Finding, svc: &Object, opts: &FixOptions) -> Fix {
    let cidrs: Vec<String> = opts
        .allow_cidrs
        .iter()
        .map(|c| c.trim().to_string())
        .collect();
    Fix {
        action: "source-ranges",
        method: Method::MergePatch,
        target: svc.resource(),
        documents: vec![json!({"spec": {"loadBalancerSourceRanges": cidrs}})],
        findings: vec![f.into()],
        effect: Effect::Narrows,
        changes: format!(
            "spec.loadBalancerSourceRanges -> [{}] (the load balancer stays; only these clients reach it)",
            cidrs.join(", ")
        ),
        breaks: "clients outside these ranges (the cloud load balancer, or kube-proxy where it does not, drops them). Not every load balancer honours source ranges: check your provider's. The interface still has no login: the finding stays, at a narrower reach.".into(),
        notes: vec![MANAGED_ELSEWHERE.into()],
        needs_input: false,
    }
}

/// Whether the Service fronts an Istio ingress gateway: an Istio Gateway selects its pods and
/// the finding's path goes through a Gateway.
fn istio_gateway_selector(
    f: &Finding,
    svc: &Object,
    objects: &[Object],
) -> Option<Map<String, Value>> {
    let selector = svc.at("spec.selector")?.as_object()?.clone();
    if selector.is_empty() {
        return None;
    }
    let through_gateway = f
        .detail
        .as_ref()
        .and_then(|d| d.get("path"))
        .and_then(Value::as_array)
        .is_some_and(|p| {
            p.iter()
                .filter_map(Value::as_str)
                .any(|h| h.starts_with("Gateway "))
        });
    let selected = objects.iter().any(|o| {
        o.kind == "Gateway"
            && o.group() == "networking.istio.io"
            && o.at("spec.selector")
                .and_then(Value::as_object)
                .is_some_and(|gs| {
                    !gs.is_empty() && gs.iter().all(|(k, v)| selector.get(k) == Some(v))
                })
    });
    (through_gateway && selected).then_some(selector)
}

/// RequestAuthentication + a DENY AuthorizationPolicy for requests without a verified token,
/// at the gateway workload.
fn gateway_auth(f: &Finding, svc: &Object, objects: &[Object], opts: &FixOptions) -> Option<Fix> {
    let selector = istio_gateway_selector(f, svc, objects)?;
    let ns = svc.effective_namespace();
    let (issuer, jwks, audiences, needs_input) = match &opts.oidc {
        Some(o) => (
            o.issuer.clone(),
            o.jwks_uri.clone(),
            o.audiences.clone(),
            false,
        ),
        None => (
            "https://oidc.example.invalid/TODO-your-issuer".to_string(),
            Some("https://oidc.example.invalid/TODO-your-issuer/keys".to_string()),
            Vec::new(),
            true,
        ),
    };
    let kubeflow = f
        .detail
        .as_ref()
        .and_then(|d| d.get("interface"))
        .and_then(Value::as_str)
        .is_some_and(|i| i.starts_with("kubeflow"));
    let mut rule = json!({"issuer": issuer, "forwardOriginalToken": true});
    if let Some(j) = jwks {
        rule["jwksUri"] = json!(j);
    }
    if !audiences.is_empty() {
        rule["audiences"] = json!(audiences);
    }
    if kubeflow {
        // What Kubeflow's own manifests do: the dashboard trusts kubeflow-userid, so the
        // gateway sets it from the verified token (and overwrites what a client sent).
        rule["outputClaimToHeaders"] = json!([{"header": "kubeflow-userid", "claim": "email"}]);
    }
    let labels = json!({MANAGED_BY.0: MANAGED_BY.1});
    let request_authn = json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "RequestAuthentication",
        "metadata": {"name": GATEWAY_AUTHN_NAME, "namespace": ns, "labels": labels},
        "spec": {"selector": {"matchLabels": selector}, "jwtRules": [rule]}
    });
    let policy = json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": GATEWAY_AUTHN_NAME, "namespace": ns, "labels": labels},
        "spec": {
            "selector": {"matchLabels": selector},
            "action": "DENY",
            "rules": [{
                "from": [{"source": {"notRequestPrincipals": ["*"]}}],
                "to": [{"operation": {"notPaths": ["/healthz/ready"]}}]
            }]
        }
    });
    let mut notes = vec![
        "DENY without a request principal, not ALLOW with one: ALLOW policies add up, so an existing allow-all policy at the gateway (Kubeflow installs one) would let anonymous requests through; a DENY holds whatever else allows.".to_string(),
        "security.istio.io/v1 needs Istio 1.22 or later; with an older Istio, change both apiVersions to security.istio.io/v1beta1.".to_string(),
        "Requests need `Authorization: Bearer <token>` from the issuer. Browsers do not send one by themselves: put oauth2-proxy (or Kubeflow's) in front and add its login paths (/oauth2/*, /dex/*) to notPaths.".to_string(),
    ];
    if needs_input {
        notes.insert(
            0,
            "TODO: replace the issuer and jwksUri placeholders with your provider's (or rerun with --oidc-issuer URL). Until you do, Istio cannot fetch the keys and every request is refused: the gateway fails closed. `jackstop fix --apply` does not apply this file while it has placeholders.".into(),
        );
    }
    Some(Fix {
        action: "require-oidc",
        method: Method::Apply,
        target: jackstop_core::ResourceRef {
            api_version: "security.istio.io/v1".into(),
            kind: "AuthorizationPolicy".into(),
            namespace: Some(ns.to_string()),
            name: GATEWAY_AUTHN_NAME.into(),
        },
        documents: vec![request_authn, policy],
        findings: vec![FindingRef::from(f)],
        effect: Effect::Closes,
        changes: format!(
            "creates RequestAuthentication and AuthorizationPolicy {ns}/{GATEWAY_AUTHN_NAME} on the gateway workload ({}): requests without a valid token from {issuer} are refused (403), except /healthz/ready",
            selector
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        ),
        breaks: "every client of the gateway that sends no token: browsers without a login proxy, health checks on other paths, machine clients. Another way to close the same findings; it can go with the ClusterIP patch, or be used instead of it when the gateway must stay public.".into(),
        notes,
        needs_input,
    })
}

/// A RayCluster whose head asks for a LoadBalancer or NodePort Service: ClusterIP instead.
fn ray_fix(f: &Finding, rc: &Object) -> Result<Vec<Fix>, String> {
    let ty = rc
        .str_at("spec.headGroupSpec.serviceType")
        .unwrap_or("ClusterIP");
    if ty == "ClusterIP" {
        return Err("the head Service is ClusterIP already: the way in is an Ingress or route (see its remediation)".into());
    }
    Ok(vec![Fix {
        action: "clusterip",
        method: Method::MergePatch,
        target: rc.resource(),
        documents: vec![json!({"spec": {"headGroupSpec": {"serviceType": "ClusterIP"}}})],
        findings: vec![f.into()],
        effect: Effect::Closes,
        changes: format!("spec.headGroupSpec.serviceType {ty} -> ClusterIP"),
        breaks: format!(
            "reaching the Ray dashboard and Jobs API from outside; use `kubectl port-forward -n {} svc/{}-head-svc 8265` instead. KubeRay recreates the head Service with the new type.",
            rc.effective_namespace(),
            rc.name
        ),
        notes: Vec::new(),
        needs_input: false,
    }])
}

/// An ingress-nginx Ingress: external authentication annotations (oauth2-proxy's pattern by
/// default), which make the controller ask the auth service before every request.
fn ingress_fix(f: &Finding, ing: &Object, opts: &FixOptions) -> Result<Vec<Fix>, String> {
    let class = ing
        .str_at("spec.ingressClassName")
        .or_else(|| ing.annotation("kubernetes.io/ingress.class"))
        .unwrap_or("");
    if !class.is_empty() && !class.to_ascii_lowercase().contains("nginx") {
        return Err(format!(
            "ingress class {class}: jackstop writes authentication for ingress-nginx only; put an authenticating proxy in front of the interface (see its remediation)"
        ));
    }
    let (url, signin, needs_input) = match &opts.ingress_auth_url {
        Some(u) => (u.clone(), opts.ingress_auth_signin.clone(), false),
        None => (
            "https://$host/oauth2/auth".to_string(),
            Some("https://$host/oauth2/start?rd=$escaped_request_uri".to_string()),
            true,
        ),
    };
    let mut annotations = serde_json::Map::new();
    annotations.insert("nginx.ingress.kubernetes.io/auth-url".into(), json!(url));
    if let Some(s) = &signin {
        annotations.insert("nginx.ingress.kubernetes.io/auth-signin".into(), json!(s));
    }
    let mut notes = vec![
        "ingress-nginx asks the auth URL about every request and lets it through only on a 2xx; a 401 sends browsers to the sign-in URL. Nothing else in the Ingress changes.".to_string(),
        "Some ingress-nginx installs refuse snippet-like annotations (allow-snippet-annotations, annotations-risk-level); auth-url and auth-signin are allowed at the default risk level.".to_string(),
    ];
    if needs_input {
        notes.insert(
            0,
            "TODO: this is oauth2-proxy's pattern: it needs oauth2-proxy served at /oauth2 on the same host (an Ingress of its own, configured for your OIDC provider), or rerun with --ingress-auth-url URL. Until it is there, the auth request fails and ingress-nginx answers 500: it fails closed. `jackstop fix --apply` does not apply this file while it has placeholders.".into(),
        );
    }
    Ok(vec![Fix {
        action: "ingress-auth",
        method: Method::MergePatch,
        target: ing.resource(),
        documents: vec![json!({"metadata": {"annotations": annotations}})],
        findings: vec![f.into()],
        effect: Effect::Closes,
        changes: format!(
            "annotation nginx.ingress.kubernetes.io/auth-url: {url}{}: every request through {} must pass the auth service first",
            signin.map(|s| format!(", auth-signin: {s}")).unwrap_or_default(),
            ing.display()
        ),
        breaks: "clients that cannot log in (scripts, API clients without a session cookie or token the auth service accepts); remove the annotations to undo".into(),
        notes,
        needs_input,
    }])
}
