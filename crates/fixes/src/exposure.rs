//! Exposure fixes: close the way in (a Service back to ClusterIP, a Ray head without a public
//! Service, a workload off the node's network), narrow it
//! (load balancer source ranges, an OpenShift Route's router allow list), or authenticate it (an Istio ingress gateway that requires a
//! token from an OIDC provider, Envoy Gateway SecurityPolicies on Gateway API routes, a Traefik
//! forwardAuth Middleware named by the Ingress or IngressRoute).

use crate::{Effect, FindingRef, Fix, FixOptions, Method, MANAGED_BY};
use jackstop_analysers::exposure::alb::{self, Listeners};
use jackstop_analysers::exposure::ingress_class::{class_name, served, Controller, Served};
use jackstop_analysers::exposure::openshift;
use jackstop_analysers::exposure::traefik::{
    find_middleware, route_middlewares, MiddlewareEffect, MIDDLEWARES_ANNOTATION, TRAEFIK_GROUPS,
};
use jackstop_core::labels::{labels_from, selects};
use jackstop_core::{Finding, Object, ResourceRef};
use serde_json::{json, Map, Value};

/// The rule of exposures that are behind authentication already.
const AUTHENTICATED_RULE: &str = "JS-EXP-009";

/// The issuer written where the user gave none (`--oidc-issuer`): a TODO that cannot resolve.
const ISSUER_PLACEHOLDER: &str = "https://oidc.example.invalid/TODO-your-issuer";

/// The Middleware the Traefik fixes create in the way in's namespace and name.
pub const TRAEFIK_MIDDLEWARE: &str = "jackstop-forward-auth";

/// The forwardAuth address written where the user gave none (`--ingress-auth-url`):
/// oauth2-proxy's auth endpoint, at a Service whose namespace is a TODO that cannot resolve.
const TRAEFIK_AUTH_PLACEHOLDER: &str =
    "http://oauth2-proxy.TODO-namespace.svc.cluster.local/oauth2/auth";

/// A merge patch of `o`'s annotations for finding `f` (what it changes and breaks to be said).
fn annotations_patch(
    action: &'static str,
    o: &Object,
    annotations: Map<String, Value>,
    f: &Finding,
) -> Fix {
    Fix {
        action,
        method: Method::MergePatch,
        target: o.resource(),
        documents: vec![json!({"metadata": {"annotations": annotations}})],
        findings: vec![f.into()],
        effect: Effect::Closes,
        changes: String::new(),
        breaks: String::new(),
        notes: Vec::new(),
        needs_input: false,
        requires: Vec::new(),
    }
}

/// The Gateway API group.
const GATEWAY_API: &str = "gateway.networking.k8s.io";

/// The controller of Envoy Gateway's GatewayClasses: only it reads SecurityPolicies.
const ENVOY_GATEWAY_CONTROLLER: &str = "gateway.envoyproxy.io/gatewayclass-controller";

/// The Secret the OIDC fixes name when `--oidc-client-secret` is not given: key
/// `client-secret` for Envoy Gateway, keys `clientID` and `clientSecret` for the ALB.
pub const OIDC_CLIENT_SECRET: &str = "jackstop-oidc-client";

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
    findings: &[Finding],
    opts: &FixOptions,
) -> Result<Vec<Fix>, String> {
    if f.rule == AUTHENTICATED_RULE {
        return Err("behind authentication already; if it should not be reachable from outside at all, the ClusterIP patch of an unauthenticated exposure applies".into());
    }
    let Some(o) = object else {
        return Err(format!("{} is not among the objects read", f.resource));
    };
    // hostNetwork and hostPort (NodePort Services reach nodes too, through the Service).
    let field = f.location.field.as_deref().unwrap_or("");
    if detail_str(f, "reach") == Some("nodes")
        && o.kind != "Service"
        && (field.ends_with(".hostNetwork") || field.ends_with(".ports"))
    {
        return node_fix(f, o);
    }
    match (o.group(), o.kind.as_str()) {
        ("", "Service") => service_fixes(f, o, objects, opts),
        ("ray.io", "RayCluster") => ray_fix(f, o),
        ("networking.k8s.io" | "extensions", "Ingress") => ingress_fix(f, o, objects, opts),
        (GATEWAY_API, "Gateway" | "HTTPRoute" | "GRPCRoute") => {
            gateway_api_fix(f, o, objects, opts).map(|fix| vec![fix])
        }
        ("traefik.io" | "traefik.containo.us", "IngressRoute") => {
            traefik_fixes(f, o, objects, findings, opts)
        }
        (openshift::ROUTE_GROUP, "Route") => route_fix(f, o, opts).map(|fix| vec![fix]),
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
        requires: Vec::new(),
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
        requires: Vec::new(),
    }
}

/// An OpenShift Route, with `--allow-cidr`: the router's source allow list. Both annotation
/// names carry the same list, so that every router reads it: those since openshift/router#564
/// (2024) read `ip_allowlist` and then ignore `ip_whitelist`, older ones read `ip_whitelist`
/// only. Without `--allow-cidr` there is no change to write: a Route has no field that
/// authenticates.
fn route_fix(f: &Finding, r: &Object, opts: &FixOptions) -> Result<Fix, String> {
    let ns = r.effective_namespace();
    let name = &r.name;
    let (allow, white) = (openshift::ALLOWLIST, openshift::WHITELIST);
    if opts.allow_cidrs.is_empty() {
        return Err(format!(
            "a Route has no field that authenticates. Limit it to your clients' addresses: `oc -n {ns} annotate route {name} --overwrite {allow}='TODO-CIDR' {white}='TODO-CIDR'` (CIDRs separated by spaces; or rerun with --allow-cidr CIDR), or publish the interface through an oauth-proxy sidecar (OpenShift's oauth-proxy, the Route to its port), or delete the Route: `oc -n {ns} delete route {name}`"
        ));
    }
    let existing: Vec<String> = [allow, white]
        .iter()
        .filter_map(|k| r.annotation(k).map(|v| format!("{k}: {v:?}")))
        .collect();
    if detail_str(f, "reach") == Some("private-network") {
        return Err(format!(
            "{} is limited to private addresses already ({}): --allow-cidr would replace that list; change the annotations yourself if it should be narrower",
            r.display(),
            existing.join(", ")
        ));
    }
    let list = opts
        .allow_cidrs
        .iter()
        .map(|c| c.trim())
        .collect::<Vec<_>>()
        .join(" ");
    let mut annotations = Map::new();
    annotations.insert(allow.into(), json!(list));
    annotations.insert(white.into(), json!(list));
    let mut changes = format!(
        "annotations {allow} and {white}: {list} (the Route stays; the router serves it to these addresses only)"
    );
    if !existing.is_empty() {
        changes.push_str(&format!("; replaces {}", existing.join(", ")));
    }
    Ok(Fix {
        effect: Effect::Narrows,
        changes,
        breaks: format!(
            "clients outside these ranges: the router drops their connections to {}. The interface still has no login: the finding stays, at a narrower reach. Remove both annotations to undo.",
            r.display()
        ),
        notes: vec![
            format!("Both names carry the same list: OpenShift routers since openshift/router#564 (2024) read {allow} and ignore {white} when both are set; older routers (OpenShift 3.6 on) read {white} only. Routers of other vendors that serve Routes may read neither: check yours."),
            "The router checks the address it sees: where the load balancer in front of it hides the client's (no PROXY protocol, or externalTrafficPolicy Cluster), it sees the load balancer's or a node's address, and the list does not hold as written.".into(),
            MANAGED_ELSEWHERE.into(),
        ],
        ..annotations_patch("route-allowlist", r, annotations, f)
    })
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
    let through_gateway = detail_via(f)
        .iter()
        .any(|r| r.kind == "Gateway" && r.group() == "networking.istio.io");
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
            ISSUER_PLACEHOLDER.to_string(),
            Some(format!("{ISSUER_PLACEHOLDER}/keys")),
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
        requires: Vec::new(),
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
        requires: Vec::new(),
    }])
}

/// An ingress-nginx Ingress: external authentication annotations (oauth2-proxy's pattern by
/// default), which make the controller ask the auth service before every request.
fn ingress_fix(
    f: &Finding,
    ing: &Object,
    objects: &[Object],
    opts: &FixOptions,
) -> Result<Vec<Fix>, String> {
    // By its IngressClass (or the default one) when read, else by its class name.
    let class = class_name(ing);
    match served(ing, objects) {
        Served::By(Controller::AwsAlb) => {
            return alb_fix(f, ing, objects, opts).map(|fix| vec![fix])
        }
        Served::By(Controller::Traefik) => return traefik_fixes(f, ing, objects, &[], opts),
        // No class, or one that names no controller, with Traefik's middleware annotation:
        // Traefik serves Ingresses of no class when it is the default controller (k3s).
        Served::Unknown if ing.annotation(MIDDLEWARES_ANNOTATION).is_some() => {
            return traefik_fixes(f, ing, objects, &[], opts)
        }
        Served::By(Controller::IngressNginx) => {}
        Served::Unknown if class.is_empty() => {}
        other => {
            let class = if class.is_empty() { "(default)" } else { class };
            return Err(format!(
                "ingress class {class}, served by {}: jackstop writes authentication for ingress-nginx, Traefik and the AWS ALB only; put an authenticating proxy in front of the interface (see its remediation)",
                other.words()
            ));
        }
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
        changes: format!(
            "annotation nginx.ingress.kubernetes.io/auth-url: {url}{}: every request through {} must pass the auth service first",
            signin.map(|s| format!(", auth-signin: {s}")).unwrap_or_default(),
            ing.display()
        ),
        breaks: "clients that cannot log in (scripts, API clients without a session cookie or token the auth service accepts); remove the annotations to undo".into(),
        notes,
        needs_input,
        ..annotations_patch("ingress-auth", ing, annotations, f)
    }])
}

/// An AWS Load Balancer Controller Ingress: the ALB's own OIDC authentication
/// (`auth-type: oidc`), which logs every request in before it reaches a backend. The provider's
/// endpoints are not in the options: always placeholders, taken from the issuer's discovery
/// document by the user.
fn alb_fix(
    f: &Finding,
    ing: &Object,
    objects: &[Object],
    opts: &FixOptions,
) -> Result<Fix, String> {
    let issuer = opts.oidc.as_ref().map(|o| o.issuer.clone());
    let secret = opts
        .oidc
        .as_ref()
        .and_then(|o| o.client.as_ref())
        .map_or(OIDC_CLIENT_SECRET.to_string(), |c| c.secret.clone());
    let idp = json!({
        "issuer": issuer.clone().unwrap_or_else(|| ISSUER_PLACEHOLDER.into()),
        "authorizationEndpoint": "https://oidc.example.invalid/TODO-authorization_endpoint",
        "tokenEndpoint": "https://oidc.example.invalid/TODO-token_endpoint",
        "userInfoEndpoint": "https://oidc.example.invalid/TODO-userinfo_endpoint",
        "secretName": secret,
    });
    let a = "alb.ingress.kubernetes.io";
    let mut annotations = Map::new();
    annotations.insert(format!("{a}/auth-type"), json!("oidc"));
    annotations.insert(format!("{a}/auth-idp-oidc"), json!(idp.to_string()));
    annotations.insert(
        format!("{a}/auth-on-unauthenticated-request"),
        json!("authenticate"),
    );
    annotations.insert(format!("{a}/auth-scope"), json!("openid"));
    // Its IngressGroup's `ssl-redirect` counts: the analysis reads it so.
    let everything: Vec<&Object> = objects.iter().collect();
    let ingresses: Vec<&Object> = objects.iter().filter(|o| o.kind == "Ingress").collect();
    let group = alb::group(ing, &ingresses, &everything);
    let Some(listeners) = Listeners::of(ing, &group) else {
        return Err(format!(
            "{a}/listen-ports is not a JSON list of listeners: the controller does not serve this Ingress as it is; fix the annotation first"
        ));
    };
    let mut notes = vec![format!(
        "TODO: {}the authorizationEndpoint, tokenEndpoint and userInfoEndpoint placeholders: the authorization_endpoint, token_endpoint and userinfo_endpoint of ISSUER/.well-known/openid-configuration. Create the Secret {secret} in namespace {} with keys clientID and clientSecret (the client registered with your provider), and let the load balancer controller read it (a Role with get on that Secret). `jackstop fix --apply` does not apply this file while it has placeholders.",
        if issuer.is_none() { "replace the issuer (or rerun with --oidc-issuer URL) and " } else { "replace " },
        ing.effective_namespace()
    )];
    // The ALB authenticates on HTTPS listeners only: one is added where there is none, and
    // plain HTTP is redirected to it.
    let mut listen = Vec::new();
    if listeners.https.is_empty() {
        let mut ports: Vec<Value> = listeners
            .http
            .iter()
            .map(|p| json!({"HTTP": p.parse::<u16>().map_or(json!(p), |n| json!(n))}))
            .collect();
        ports.push(json!({"HTTPS": 443}));
        annotations.insert(
            format!("{a}/listen-ports"),
            json!(Value::Array(ports).to_string()),
        );
        listen.push("listen-ports with HTTPS:443".to_string());
        if !listeners.certificate {
            annotations.insert(
                format!("{a}/certificate-arn"),
                json!("arn:aws:acm:TODO-region:TODO-account:certificate/TODO-certificate-id"),
            );
            notes.push("TODO: the certificate-arn placeholder: the ARN of an ACM certificate for the Ingress's hosts. The ALB authenticates on HTTPS listeners only, and this Ingress had none: the file adds HTTPS:443 and redirects HTTP to it.".into());
            listen.push("certificate-arn".into());
        }
    }
    if listeners.https.is_empty() || (!listeners.http.is_empty() && listeners.redirect.is_none()) {
        let to = listeners
            .https
            .first()
            .cloned()
            .unwrap_or_else(|| "443".into());
        annotations.insert(format!("{a}/ssl-redirect"), json!(to));
        listen.push(format!(
            "ssl-redirect: {to} (plain HTTP would pass without authentication)"
        ));
    }
    Ok(Fix {
        changes: format!(
            "annotations {a}/auth-type: oidc, auth-idp-oidc, auth-on-unauthenticated-request: authenticate, auth-scope: openid{}: the ALB logs every request through {} in before it reaches a backend",
            listen.iter().map(|l| format!(", {l}")).collect::<String>(),
            ing.display()
        ),
        breaks: "clients that cannot follow a browser login (scripts, API clients): they get a redirect instead of an answer; remove the annotations to undo".into(),
        notes,
        needs_input: true,
        ..annotations_patch("alb-oidc", ing, annotations, f)
    })
}

/// Traefik authenticates through Middlewares, which takes changes of two objects: the
/// forwardAuth Middleware `jackstop-forward-auth` in the way in's namespace (it prepares:
/// nothing names it yet), then the reference to it, first among the way in's middlewares (it
/// closes, and requires the Middleware). Where the way in names it already (and it was not
/// read), the Middleware alone closes.
fn traefik_fixes(
    f: &Finding,
    way_in: &Object,
    objects: &[Object],
    findings: &[Finding],
    opts: &FixOptions,
) -> Result<Vec<Fix>, String> {
    let reference = if way_in.kind == "Ingress" {
        traefik_ingress_reference(f, way_in)
    } else {
        traefik_route_reference(f, way_in, objects, findings)?
    };
    let mut middleware = traefik_middleware(f, way_in, objects, opts);
    match reference {
        Some(mut r) => {
            r.requires = vec![middleware.target.clone()];
            Ok(vec![middleware, r])
        }
        None => {
            middleware.effect = Effect::Closes;
            middleware.changes = format!(
                "{}; {} names it already, so this closes",
                middleware.changes,
                way_in.display()
            );
            Ok(vec![middleware])
        }
    }
}

/// The apiVersion of the Middleware: that of the IngressRoute that names it; for an Ingress,
/// traefik.io/v1alpha1 (Traefik 2.10 and later) unless the Traefik objects read are all of
/// the older group.
fn traefik_api_version(way_in: &Object, objects: &[Object]) -> (String, Option<String>) {
    if way_in.kind == "IngressRoute" {
        return (way_in.api_version.clone(), None);
    }
    let groups: Vec<&str> = objects
        .iter()
        .map(Object::group)
        .filter(|g| TRAEFIK_GROUPS.contains(g))
        .collect();
    if groups.is_empty() {
        return (
            "traefik.io/v1alpha1".into(),
            Some("No Traefik object was read: traefik.io/v1alpha1 is the group of Traefik 2.10 and later (v3 knows no other); before 2.10, change the apiVersion to traefik.containo.us/v1alpha1.".into()),
        );
    }
    if groups.contains(&"traefik.io") {
        ("traefik.io/v1alpha1".into(), None)
    } else {
        ("traefik.containo.us/v1alpha1".into(), None)
    }
}

/// The forwardAuth Middleware: `--ingress-auth-url`, or oauth2-proxy's auth endpoint at a
/// placeholder namespace (a TODO).
fn traefik_middleware(f: &Finding, way_in: &Object, objects: &[Object], opts: &FixOptions) -> Fix {
    let ns = way_in.effective_namespace();
    let (api_version, version_note) = traefik_api_version(way_in, objects);
    let address = opts
        .ingress_auth_url
        .clone()
        .unwrap_or_else(|| TRAEFIK_AUTH_PLACEHOLDER.to_string());
    let mut notes = Vec::new();
    let mut needs_input = false;
    match &opts.ingress_auth_url {
        None => {
            needs_input = true;
            notes.push("TODO: this is oauth2-proxy's pattern: it needs oauth2-proxy (configured for your OIDC provider, with --reverse-proxy and --set-xauthrequest) answering at this address: put its namespace in place of TODO-namespace (and its port, when its Service is not on 80), or rerun with --ingress-auth-url URL. Until it is there, the auth request fails and Traefik answers 500: it fails closed. `jackstop fix --apply` applies neither this file nor the one that names the Middleware while it has placeholders.".into());
        }
        Some(u) if u.contains('$') => {
            needs_input = true;
            notes.push(format!("TODO: the address {u} holds a variable, which ingress-nginx expands and Traefik does not: give the auth service's address as Traefik reaches it (http://oauth2-proxy.NAMESPACE.svc.cluster.local/oauth2/auth, say). `jackstop fix --apply` applies neither this file nor the one that names the Middleware until then."));
        }
        Some(_) => {}
    }
    notes.push("oauth2-proxy's /oauth2/auth answers 202 or 401 and sends no one to the login: browsers get the 401 until you add an errors middleware that turns 401s into its /oauth2/sign_in (oauth2-proxy's Traefik guide), or point the address at oauth2-proxy itself with --upstream=static://202, which redirects to the login. Traefik's forwardAuth has no sign-in URL of its own (--ingress-auth-signin is ingress-nginx's).".into());
    notes.push("authResponseHeaders copies the user and email from the auth service's answer (oauth2-proxy sends them with --set-xauthrequest) onto the request, replacing what a client sent. trustForwardHeader passes on the X-Forwarded-* headers the entry point kept: by default Traefik removes a client's own, and keeps those of the proxies in its forwardedHeaders.trustedIPs; set it to false if the entry point has forwardedHeaders.insecure.".into());
    notes.push(format!("If {ns} has a Middleware {TRAEFIK_MIDDLEWARE} already, applying this sets forwardAuth in it; delete the Middleware, after what names it, to undo."));
    notes.extend(version_note);
    let doc = json!({
        "apiVersion": api_version,
        "kind": "Middleware",
        "metadata": {
            "name": TRAEFIK_MIDDLEWARE,
            "namespace": ns,
            "labels": {MANAGED_BY.0: MANAGED_BY.1},
        },
        "spec": {
            "forwardAuth": {
                "address": address,
                "trustForwardHeader": true,
                "authResponseHeaders": ["X-Auth-Request-User", "X-Auth-Request-Email"],
            }
        }
    });
    Fix {
        action: "traefik-forward-auth",
        method: Method::Apply,
        target: ResourceRef {
            api_version,
            kind: "Middleware".into(),
            namespace: Some(ns.to_string()),
            name: TRAEFIK_MIDDLEWARE.into(),
        },
        documents: vec![doc],
        findings: vec![f.into()],
        effect: Effect::Prepares,
        changes: format!(
            "creates Traefik Middleware {ns}/{TRAEFIK_MIDDLEWARE}: forwardAuth to {address}, which Traefik asks before every request of a router that names it; it closes nothing until one does (the files that require it)"
        ),
        breaks: "nothing by itself".into(),
        notes,
        needs_input,
        requires: Vec::new(),
    }
}

/// Whether the Traefik Middlewares `refs` authenticate (forwardAuth, basicAuth, digestAuth,
/// directly or through a chain), as the analysis reads them.
fn traefik_authenticates(objects: &[Object], refs: &[(String, String)]) -> bool {
    let find = |ns: &str, name: &str| find_middleware(objects, ns, name);
    !MiddlewareEffect::of(refs, &find).auth.is_empty()
}

/// The Services a route of an IngressRoute in `ns` sends to, as (namespace, name).
fn route_services(route: &Value, ns: &str) -> Vec<(String, String)> {
    route
        .get("services")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|s| s.get("kind").and_then(Value::as_str).unwrap_or("Service") == "Service")
        .filter_map(|s| {
            let name = s.get("name")?.as_str()?;
            let sns = s.get("namespace").and_then(Value::as_str).unwrap_or(ns);
            Some((sns.to_string(), name.to_string()))
        })
        .collect()
}

/// `spec.routes[3].services[0]` -> 3.
fn route_index(field: &str) -> Option<usize> {
    field
        .strip_prefix("spec.routes[")?
        .split_once(']')?
        .0
        .parse()
        .ok()
}

/// An Ingress that Traefik serves: jackstop's Middleware first in the router.middlewares
/// annotation, the value as scanned after it. None when it names it already.
fn traefik_ingress_reference(f: &Finding, ing: &Object) -> Option<Fix> {
    let ns = ing.effective_namespace();
    let ann = MIDDLEWARES_ANNOTATION;
    let ours = format!("{ns}-{TRAEFIK_MIDDLEWARE}@kubernetescrd");
    let existing = ing.annotation(ann).map(str::trim).unwrap_or("");
    let bare = format!("{ns}-{TRAEFIK_MIDDLEWARE}");
    if existing
        .split(',')
        .map(str::trim)
        .any(|r| r == ours || r == bare)
    {
        return None;
    }
    let value = if existing.is_empty() {
        ours.clone()
    } else {
        format!("{ours},{existing}")
    };
    let mut notes = vec![MANAGED_ELSEWHERE.to_string()];
    if !existing.is_empty() {
        notes.insert(0, format!("A merge patch writes the annotation whole: the middlewares as scanned ({existing}) stay, after jackstop's. If the annotation changed since the scan, run jackstop fix again first."));
    }
    let mut annotations = Map::new();
    annotations.insert(ann.into(), json!(value));
    Some(Fix {
        changes: format!(
            "annotation {ann}: {value} (Middleware {ns}/{TRAEFIK_MIDDLEWARE} first): every request through {} must pass its forwardAuth first",
            ing.display()
        ),
        breaks: "clients that cannot log in (scripts, API clients without a session cookie or token the auth service accepts); the auth service is asked before the other middlewares (a redirect to HTTPS, an allow list). Until the Middleware exists Traefik does not serve the Ingress (404): it fails closed. Take the entry out of the annotation to undo.".into(),
        notes,
        ..annotations_patch("traefik-auth", ing, annotations, f)
    })
}

/// An IngressRoute: jackstop's Middleware first in the middlewares of every route that leads
/// to an interface found through it (the routes of its findings, and the others to the same
/// Service or the same pods that no Middleware authenticates), as a JSON patch that tests each
/// route as scanned. One patch for all the findings of the IngressRoute, so that it is the
/// same whichever finding it is written for. None when every such route names it already.
fn traefik_route_reference(
    f: &Finding,
    ir: &Object,
    objects: &[Object],
    findings: &[Finding],
) -> Result<Option<Fix>, String> {
    let ns = ir.effective_namespace();
    let Some(routes) = ir.at("spec.routes").and_then(Value::as_array) else {
        return Err(format!("{} has no spec.routes as read", ir.display()));
    };
    let mut wanted = std::collections::BTreeSet::new();
    let same_way_in = findings.iter().filter(|g| {
        !std::ptr::eq(*g, f)
            && g.resource == f.resource
            && g.category == jackstop_core::Category::Exposure
            && g.rule != AUTHENTICATED_RULE
    });
    // What each route leads to, and whether it authenticates, read once.
    let read: Vec<(Vec<(String, String)>, bool)> = routes
        .iter()
        .map(|route| {
            (
                route_services(route, ns),
                traefik_authenticates(objects, &route_middlewares(route, ns)),
            )
        })
        .collect();
    for g in std::iter::once(f).chain(same_way_in) {
        let field = g.location.field.as_deref().unwrap_or("");
        match route_index(field).filter(|i| *i < routes.len()) {
            Some(i) => wanted.insert(i),
            None => {
                return Err(format!(
                    "{field:?} is not a route of {} as read: name a forwardAuth Middleware in the middlewares of the route to the interface",
                    ir.display()
                ))
            }
        };
        let svc = detail_via(g)
            .into_iter()
            .find(|r| r.kind == "Service" && r.group().is_empty())
            .map(|r| (r.namespace.unwrap_or_else(|| "default".into()), r.name));
        for (j, (services, authenticated)) in read.iter().enumerate() {
            let leads = services.iter().any(|(sns, name)| {
                svc.as_ref().is_some_and(|(a, b)| a == sns && b == name)
                    || selects_workload(g, (sns, name), objects)
            });
            if leads && !authenticated {
                wanted.insert(j);
            }
        }
    }
    let mut ops = Vec::new();
    let mut words = Vec::new();
    for i in wanted {
        let route = &routes[i];
        if route_middlewares(route, ns)
            .iter()
            .any(|(mns, name)| mns == ns && name == TRAEFIK_MIDDLEWARE)
        {
            continue;
        }
        let path = format!("/spec/routes/{i}");
        let rule = route.get("match").and_then(Value::as_str).unwrap_or("?");
        ops.push(json!({"op": "test", "path": path, "value": route}));
        match route.get("middlewares") {
            Some(Value::Array(_)) => {
                ops.push(json!({"op": "add", "path": format!("{path}/middlewares/0"), "value": {"name": TRAEFIK_MIDDLEWARE}}));
                words.push(format!("spec.routes[{i}] ({rule})"));
            }
            None | Some(Value::Null) => {
                ops.push(json!({"op": "add", "path": format!("{path}/middlewares"), "value": [{"name": TRAEFIK_MIDDLEWARE}]}));
                words.push(format!("spec.routes[{i}] ({rule}; a list of its own)"));
            }
            Some(_) => {
                return Err(format!(
                    "spec.routes[{i}].middlewares of {} is not a list: Traefik does not take the IngressRoute as it is; fix it first",
                    ir.display()
                ))
            }
        }
    }
    if ops.is_empty() {
        return Ok(None);
    }
    Ok(Some(Fix {
        action: "traefik-auth",
        method: Method::JsonPatch,
        target: ir.resource(),
        documents: vec![Value::Array(ops)],
        findings: vec![f.into()],
        effect: Effect::Closes,
        changes: format!(
            "Middleware {ns}/{TRAEFIK_MIDDLEWARE} first in the middlewares of {}: every request through them must pass its forwardAuth first. Each route is tested as scanned: the patch fails, changing nothing, on an IngressRoute that moved on",
            words.join(", ")
        ),
        breaks: "clients of these routes that cannot log in (scripts, API clients without a session cookie or token the auth service accepts); the auth service is asked before the routes' other middlewares. Until the Middleware exists Traefik does not serve these routes (404): they fail closed. Other routes of the IngressRoute are not changed. Take the entries out to undo.".into(),
        notes: vec![MANAGED_ELSEWHERE.into()],
        needs_input: false,
        requires: Vec::new(),
    }))
}

fn detail_str<'a>(f: &'a Finding, key: &str) -> Option<&'a str> {
    f.detail.as_ref()?.get(key)?.as_str()
}

/// The objects the finding's path passes through, in order (`detail.via`).
fn detail_via(f: &Finding) -> Vec<ResourceRef> {
    f.detail
        .as_ref()
        .and_then(|d| d.get("via"))
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// The Services a route sends to, as (namespace, name).
fn backend_services(route: &Object) -> Vec<(String, String)> {
    let rns = route.effective_namespace();
    route
        .at("spec.rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("backendRefs").and_then(Value::as_array))
        .flatten()
        .filter(|b| b.get("kind").and_then(Value::as_str).unwrap_or("Service") == "Service")
        .filter_map(|b| {
            Some((
                b.get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(rns)
                    .to_string(),
                b.get("name")?.as_str()?.to_string(),
            ))
        })
        .collect()
}

/// Whether the Service `(ns, name)` selects the pods of the finding's workload.
fn selects_workload(f: &Finding, svc: (&str, &str), objects: &[Object]) -> bool {
    let Some(w) = f
        .detail
        .as_ref()
        .and_then(|d| d.get("workload"))
        .and_then(|w| serde_json::from_value::<jackstop_core::ResourceRef>(w.clone()).ok())
    else {
        return false;
    };
    let Some(workload) = objects.iter().find(|o| o.resource() == w) else {
        return false;
    };
    let labels = if workload.kind == "Pod" {
        workload.labels()
    } else {
        workload
            .at("spec.template.metadata.labels")
            .and_then(Value::as_object)
    };
    let selector = objects
        .iter()
        .find(|o| {
            o.kind == "Service"
                && o.group().is_empty()
                && o.effective_namespace() == svc.0
                && o.name == svc.1
        })
        .and_then(|s| s.at("spec.selector"))
        .and_then(Value::as_object);
    workload.effective_namespace() == svc.0 && selects(&labels_from(selector), &labels_from(labels))
}

/// Whether the Gateway is Envoy Gateway's: by its GatewayClass when it was read, else by the
/// class name (with a note that says to check). Refuses other implementations, which ignore
/// SecurityPolicies: a policy there would close nothing.
fn envoy_gateway_class(gw: &Object, objects: &[Object]) -> Result<Option<String>, String> {
    let class = gw.str_at("spec.gatewayClassName").unwrap_or("");
    let read = objects
        .iter()
        .find(|o| o.kind == "GatewayClass" && o.group() == GATEWAY_API && o.name == class);
    match read.map(|c| c.str_at("spec.controllerName").unwrap_or("")) {
        Some(ENVOY_GATEWAY_CONTROLLER) => Ok(None),
        Some(controller) => Err(format!(
            "gateway class {class} is run by {controller}, not Envoy Gateway ({ENVOY_GATEWAY_CONTROLLER}): jackstop writes gateway authentication as Envoy Gateway SecurityPolicies only; attach your implementation's authentication to the route, or detach the route (see its remediation)"
        )),
        None if class == "eg" || class.to_ascii_lowercase().contains("envoy") => Ok(Some(format!(
            "GatewayClass {class} was not among the objects read; its name says Envoy Gateway. Check: `kubectl get gatewayclass {class} -o jsonpath='{{.spec.controllerName}}'` must print {ENVOY_GATEWAY_CONTROLLER}; any other gateway ignores this policy."
        ))),
        None => Err(format!(
            "gateway class {class}: its GatewayClass is not among the objects read and its name does not say Envoy Gateway, the only implementation jackstop writes authentication for; scan it too (`kubectl get gatewayclass {class} -o yaml`), or attach your implementation's authentication to the route (see its remediation)"
        )),
    }
}

/// Envoy Gateway SecurityPolicies on every route of the Gateway that leads to the finding's
/// interface (one finding per Gateway and interface: one route left open keeps it): `oidc`
/// (a login flow, for browsers) on HTTPRoutes, `jwt` (bearer tokens) on GRPCRoutes, which
/// cannot follow a login redirect and which Envoy Gateway's OIDC does not support.
fn gateway_api_fix(
    f: &Finding,
    o: &Object,
    objects: &[Object],
    opts: &FixOptions,
) -> Result<Fix, String> {
    let via = detail_via(f);
    let is_route = |k: &str| matches!(k, "HTTPRoute" | "GRPCRoute" | "TLSRoute" | "TCPRoute");
    let read = |r: &ResourceRef| objects.iter().find(|o| o.resource() == *r);
    // The route and Service of the finding's path.
    let at = via
        .iter()
        .position(|r| r.group() == GATEWAY_API && is_route(&r.kind));
    let (route, svc) = match at {
        Some(i) => {
            let svc = via[i + 1..]
                .iter()
                .find(|r| r.kind == "Service" && r.group().is_empty())
                .map(|r| {
                    (
                        r.namespace.clone().unwrap_or_else(|| "default".into()),
                        r.name.clone(),
                    )
                });
            (read(&via[i]), svc)
        }
        None if o.kind != "Gateway" => (Some(o), None),
        None => (None, None),
    };
    let Some(route) = route else {
        return Err(format!(
            "the route from {} to the interface is not among the objects read: attach authentication to it (see its remediation)",
            o.display()
        ));
    };
    let gw = if o.kind == "Gateway" {
        Some(o)
    } else {
        via.iter()
            .find(|r| r.kind == "Gateway" && r.group() == GATEWAY_API)
            .and_then(read)
    };
    let Some(gw) = gw else {
        return Err(format!(
            "the Gateway of {} is not among the objects read: jackstop cannot tell whether it is Envoy Gateway's",
            route.display()
        ));
    };
    let class_note = envoy_gateway_class(gw, objects)?;
    // Every route of this Gateway to the same Service, or to a Service of the same pods.
    let mut routes: Vec<&Object> = vec![route];
    for r in objects
        .iter()
        .filter(|r| r.group() == GATEWAY_API && is_route(&r.kind) && r.attached_to(gw))
    {
        let same = backend_services(r).iter().any(|(ns, name)| {
            svc.as_ref()
                .is_some_and(|(sns, sname)| sns == ns && sname == name)
                || selects_workload(f, (ns, name), objects)
        });
        if same && !routes.iter().any(|x| x.resource() == r.resource()) {
            routes.push(r);
        }
    }
    if let Some(r) = routes
        .iter()
        .find(|r| matches!(r.kind.as_str(), "TLSRoute" | "TCPRoute"))
    {
        return Err(format!(
            "{} leads to the interface too: a TLS or TCP route passes bytes the gateway cannot authenticate (SecurityPolicies act on HTTP); remove that route, or put an authenticating proxy in front of the interface",
            r.display()
        ));
    }
    for r in &routes {
        let existing = objects.iter().find(|p| {
            p.kind == "SecurityPolicy"
                && p.group() == "gateway.envoyproxy.io"
                && p.effective_namespace() == r.effective_namespace()
                && p.target_refs()
                    .iter()
                    .any(|(k, n)| *k == r.kind && *n == r.name)
        });
        if let Some(p) = existing {
            return Err(format!(
                "{} already targets {}: a second policy on the same route conflicts with it (Envoy Gateway keeps the older one); add an oidc (or jwt) section to {}",
                p.display(),
                r.display(),
                p.display()
            ));
        }
    }

    let (issuer, jwks, audiences, have_provider) = match &opts.oidc {
        Some(p) => (
            p.issuer.clone(),
            p.jwks_uri.clone(),
            p.audiences.clone(),
            true,
        ),
        None => (ISSUER_PLACEHOLDER.to_string(), None, Vec::new(), false),
    };
    let client = opts.oidc.as_ref().and_then(|o| o.client.as_ref());
    let labels = json!({MANAGED_BY.0: MANAGED_BY.1});
    let mut documents = Vec::new();
    let mut needs_input = !have_provider;
    let mut todo = Vec::new();
    let mut http_routes = Vec::new();
    for r in &routes {
        let ns = r.effective_namespace();
        let target = json!([{"group": GATEWAY_API, "kind": r.kind, "name": r.name}]);
        let (name, section) = if r.kind == "GRPCRoute" {
            let uri = jwks.clone().unwrap_or_else(|| {
                needs_input = true;
                format!("{ISSUER_PLACEHOLDER}/keys")
            });
            let mut provider =
                json!({"name": "jackstop", "issuer": issuer, "remoteJWKS": {"uri": uri}});
            if !audiences.is_empty() {
                provider["audiences"] = json!(audiences);
            }
            (
                format!("jackstop-jwt-{}", r.name),
                json!({"jwt": {"providers": [provider]}}),
            )
        } else {
            // The client is registered with the provider by the user: a placeholder unless
            // given (--oidc-client-id and --oidc-client-secret).
            needs_input |= client.is_none();
            http_routes.push(r.display());
            let mut oidc = json!({
                "provider": {"issuer": issuer},
                "clientID": client.map_or("TODO-your-client-id", |c| c.id.as_str()),
                "clientSecret": {"name": client.map_or(OIDC_CLIENT_SECRET, |c| c.secret.as_str())},
            });
            // A route under a path prefix: the login callback must be under it too, or it
            // does not reach the route that has the OIDC filter.
            if let Some(prefix) = route_prefix(r) {
                let host = r
                    .at("spec.hostnames")
                    .and_then(Value::as_array)
                    .and_then(|h| h.first())
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| {
                        needs_input = true;
                        todo.push(format!(
                            "put the host {} is reached by in its redirectURL (the route names none)",
                            r.display()
                        ));
                        "TODO-your-host"
                    });
                oidc["redirectURL"] = json!(format!("https://{host}{prefix}/oauth2/callback"));
                oidc["logoutPath"] = json!(format!("{prefix}/logout"));
            }
            (format!("jackstop-oidc-{}", r.name), json!({"oidc": oidc}))
        };
        let mut spec = json!({"targetRefs": target});
        if let (Some(spec), Some(section)) = (spec.as_object_mut(), section.as_object()) {
            spec.extend(section.clone());
        }
        documents.push(json!({
            "apiVersion": "gateway.envoyproxy.io/v1alpha1",
            "kind": "SecurityPolicy",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": spec,
        }));
    }
    if !have_provider {
        todo.push(
            "replace the issuer placeholder with your provider's (or rerun with --oidc-issuer URL)"
                .to_string(),
        );
    }
    if routes.iter().any(|r| r.kind == "GRPCRoute") && jwks.is_none() {
        todo.push("give the jwt provider's remoteJWKS uri (--oidc-jwks-uri URL): Envoy Gateway does not find the keys from the issuer".to_string());
    }
    if !http_routes.is_empty() && client.is_none() {
        todo.push(format!(
            "register an OIDC client with your provider (redirect URL: https://HOST/oauth2/callback, or the redirectURL written here), put its ID in clientID, and create its secret: `kubectl -n NAMESPACE create secret generic {OIDC_CLIENT_SECRET} --from-literal=client-secret=...` in the namespace of each policy"
        ));
    }
    let mut notes = Vec::new();
    if needs_input {
        notes.push(format!(
            "TODO: {}. Until you do, the login fails and the route answers with an error: it fails closed. `jackstop fix --apply` does not apply this file while it has placeholders.",
            todo.join("; ")
        ));
    }
    notes.extend(class_note);
    if !http_routes.is_empty() {
        notes.push("Envoy Gateway's OIDC needs an HTTPS listener on the Gateway (its cookies are Secure and providers want an https redirect URL). Clients without a browser (scripts, API clients) get the login redirect instead of an answer: give them a token and a jwt section, or a route of their own with one.".into());
    }
    notes.push("A route-level SecurityPolicy takes precedence over one on the whole Gateway; other routes of the Gateway are not changed.".into());
    Ok(Fix {
        action: if http_routes.is_empty() {
            "require-jwt"
        } else {
            "require-oidc"
        },
        method: Method::Apply,
        target: jackstop_core::ResourceRef {
            api_version: "gateway.envoyproxy.io/v1alpha1".into(),
            kind: "SecurityPolicy".into(),
            namespace: Some(route.effective_namespace().to_string()),
            name: documents[0]["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        },
        findings: vec![FindingRef::from(f)],
        effect: Effect::Closes,
        changes: format!(
            "creates Envoy Gateway SecurityPolicies for {}: requests through {} must log in with {issuer} (HTTPRoutes: OIDC login; GRPCRoutes: a bearer token) before they reach the interface",
            routes.iter().map(|r| r.display()).collect::<Vec<_>>().join(", "),
            gw.display()
        ),
        breaks: "every client of these routes that cannot log in or send a token (scripts, health checks through the gateway, machine clients); delete the SecurityPolicies to undo".into(),
        documents,
        notes,
        needs_input,
        requires: Vec::new(),
    })
}

/// The path prefix every rule of a route matches under, when it is not `/`.
fn route_prefix(r: &Object) -> Option<String> {
    let prefixes: Vec<String> = r
        .at("spec.rules")?
        .as_array()?
        .iter()
        .map(|rule| {
            rule.get("matches")
                .and_then(Value::as_array)
                .and_then(|m| m.first())
                .and_then(|m| m.get("path"))
                .and_then(|p| p.get("value"))
                .and_then(Value::as_str)
                .unwrap_or("/")
                .trim_end_matches('/')
                .to_string()
        })
        .collect();
    let first = prefixes.first()?;
    (!first.is_empty() && prefixes.iter().all(|p| p == first)).then(|| first.clone())
}

/// `spec.template.spec.containers[0].ports` as a JSON pointer.
fn pointer(field: &str) -> String {
    let mut out = String::new();
    for seg in field.split('.') {
        let (key, index) = match seg.split_once('[') {
            Some((k, i)) => (k, Some(i.trim_end_matches(']'))),
            None => (seg, None),
        };
        out.push('/');
        out.push_str(&key.replace('~', "~0").replace('/', "~1"));
        if let Some(i) = index {
            out.push('/');
            out.push_str(i);
        }
    }
    out
}

/// Kinds whose controller replaces running pods when their pod template changes.
fn rolls_out(o: &Object) -> bool {
    matches!(
        (o.group(), o.kind.as_str()),
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet")
            | ("batch", "CronJob")
            | ("kubeflow.org", "Notebook")
    )
}

/// An interface on node addresses. hostNetwork is one field: a merge patch turns it off. A
/// hostPort sits in a list entry, which a merge patch can only replace whole (every container
/// as scanned, stale if it changed since): a JSON patch removes just it, after a test of the
/// value scanned. Kinds whose controller does not replace running pods are refused with the
/// command, and what to do after it.
fn node_fix(f: &Finding, o: &Object) -> Result<Vec<Fix>, String> {
    let field = f.location.field.as_deref().unwrap_or("");
    let ns = o.effective_namespace();
    let res = crate::kubectl_resource(&o.resource());
    let json_patch = |ops: &[Value]| {
        format!(
            "kubectl -n {ns} patch {res} {} --type json -p '{}'",
            o.name,
            Value::Array(ops.to_vec())
        )
    };
    // The hostPort removals of a container's ports at `ports_field`, each after a test of
    // the value scanned, so that the patch fails rather than removes something else.
    let host_ports = |ports_field: &str| -> Vec<(usize, Value)> {
        o.body
            .pointer(&pointer(ports_field))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
            .filter_map(|(j, p)| Some((j, p.get("hostPort")?.clone())))
            .collect()
    };
    let host_port_ops = |ports_field: &str| -> Vec<Value> {
        host_ports(ports_field)
            .into_iter()
            .flat_map(|(j, hp)| {
                let path = format!("{}/{j}/hostPort", pointer(ports_field));
                [
                    json!({"op": "test", "path": path, "value": hp}),
                    json!({"op": "remove", "path": path}),
                ]
            })
            .collect()
    };
    let host_port_words = |ports_field: &str| {
        host_ports(ports_field)
            .iter()
            .map(|(j, hp)| format!("{ports_field}[{j}].hostPort {hp}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let immutable = matches!((o.group(), o.kind.as_str()), ("", "Pod") | ("batch", "Job"));
    let reach_instead = format!(
        "whatever reaches {} on a node's address; reach it with `kubectl port-forward` or through a ClusterIP Service",
        o.display()
    );
    if let Some(spec) = field.strip_suffix(".hostNetwork") {
        let container_ports = detail_str(f, "workloadField").map(|c| format!("{c}.ports"));
        let port_ops = container_ports
            .as_deref()
            .map(host_port_ops)
            .unwrap_or_default();
        if immutable {
            return Err(format!(
                "{field} of a {} cannot be changed: collect what the investigation needs, delete it (`kubectl -n {ns} delete {res} {}`) and create it again without {field}",
                o.kind, o.name
            ));
        }
        let mut ops = vec![
            json!({"op": "test", "path": pointer(field), "value": true}),
            json!({"op": "replace", "path": pointer(field), "value": false}),
        ];
        ops.extend(port_ops.iter().cloned());
        if !rolls_out(o) {
            return Err(format!(
                "the {} controller does not replace running pods when {spec} changes. Turn {field} off{} with a JSON patch, then delete its pods: `{}`",
                o.kind,
                if port_ops.is_empty() { "" } else { " and remove the host ports" },
                json_patch(&ops)
            ));
        }
        let breaks = format!(
            "{reach_instead}. A dnsPolicy of ClusterFirstWithHostNet acts as ClusterFirst; ports the pods bind no longer clash between them."
        );
        let notes = vec![
            MANAGED_ELSEWHERE.into(),
            "A StatefulSet with the OnDelete update strategy keeps its pods until you delete them."
                .into(),
        ];
        if port_ops.is_empty() {
            let mut patch = json!({"hostNetwork": false});
            for seg in spec.rsplit('.') {
                patch = json!({ seg: patch });
            }
            return Ok(vec![Fix {
                action: "no-host-network",
                method: Method::MergePatch,
                target: o.resource(),
                documents: vec![patch],
                findings: vec![f.into()],
                effect: Effect::Closes,
                changes: format!(
                    "{field} -> false: its pods get addresses of their own, and the interface is no longer on every node's address; the controller replaces the running pods"
                ),
                breaks,
                notes,
                needs_input: false,
                requires: Vec::new(),
            }]);
        }
        // Its container publishes host ports too (the API server defaults them on
        // hostNetwork pods): off the node's network, they would still publish it.
        return Ok(vec![Fix {
            action: "no-host-network",
            method: Method::JsonPatch,
            target: o.resource(),
            documents: vec![Value::Array(ops)],
            findings: vec![f.into()],
            effect: Effect::Closes,
            changes: format!(
                "{field} -> false, and {} removed: its pods get addresses of their own, and the interface is no longer on every node's address; the controller replaces the running pods",
                host_port_words(container_ports.as_deref().unwrap_or_default())
            ),
            breaks,
            notes,
            needs_input: false,
            requires: Vec::new(),
        }]);
    }
    if let Some(container) = field.strip_suffix(".ports") {
        let ops = host_port_ops(field);
        if ops.is_empty() {
            return Err(format!(
                "{field} has no hostPort as read: see its remediation"
            ));
        }
        if immutable {
            return Err(format!(
                "the ports of a {} cannot be changed: collect what the investigation needs, delete it (`kubectl -n {ns} delete {res} {}`) and create it again without hostPort in {field}",
                o.kind, o.name
            ));
        }
        if !rolls_out(o) {
            return Err(format!(
                "the {} controller does not replace running pods when {container} changes. Remove {} with a JSON patch, then delete its pods: `{}`",
                o.kind,
                host_port_words(field),
                json_patch(&ops)
            ));
        }
        return Ok(vec![Fix {
            action: "no-host-port",
            method: Method::JsonPatch,
            target: o.resource(),
            documents: vec![Value::Array(ops)],
            findings: vec![f.into()],
            effect: Effect::Closes,
            changes: format!(
                "{} removed: the container keeps its port inside the pod, no longer on every node's address; the controller replaces the running pods",
                host_port_words(field)
            ),
            breaks: format!("{reach_instead}."),
            notes: vec![MANAGED_ELSEWHERE.into()],
            needs_input: false,
            requires: Vec::new(),
        }]);
    }
    Err(format!(
        "an interface on node addresses through {field}: see its remediation"
    ))
}
