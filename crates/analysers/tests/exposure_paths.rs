//! Exposure paths beyond the golden rule cases: each kind of auth layer, each way in, and the
//! look-alikes that must stay quiet.

use jackstop_analysers::{all, run};
use jackstop_catalogue::Catalogue;
use jackstop_core::{Finding, ResourceRef, Severity};
use jackstop_manifests::reader::{parse_text, ManifestSet, ReadOptions};

fn scan(yaml: &str) -> Vec<Finding> {
    let mut set = ManifestSet::default();
    parse_text(yaml, "t.yaml", &ReadOptions::default(), &mut set);
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    run(&all(), &set.objects, Catalogue::builtin())
}

/// Whether a line of the finding's evidence says `words`.
fn says(f: &Finding, words: &str) -> bool {
    f.evidence.iter().any(|e| e.contains(words))
}

fn brief(f: &[Finding]) -> Vec<(String, Severity)> {
    f.iter().map(|f| (f.rule.clone(), f.severity)).collect()
}

/// istio-ingressgateway as a public LoadBalancer routing / to an Argo server in server mode.
const GATEWAY_TO_ARGO: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  type: LoadBalancer
  selector: {app: istio-ingressgateway, istio: ingressgateway}
  ports: [{name: http2, port: 80, targetPort: 8080}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{hosts: ["*"], port: {number: 80, name: http, protocol: HTTP}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: argo, namespace: argo}
spec:
  gateways: [istio-system/public]
  hosts: ["*"]
  http:
  - route: [{destination: {host: argo-server.argo.svc.cluster.local, port: {number: 2746}}}]
---
apiVersion: v1
kind: Service
metadata: {name: argo-server, namespace: argo}
spec:
  selector: {app: argo-server}
  ports: [{port: 2746}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: argo-server, namespace: argo}
spec:
  template:
    metadata: {labels: {app: argo-server}}
    spec:
      containers:
      - name: argo-server
        image: quay.io/argoproj/argocli:v3.5.5
        args: [server, --auth-mode=server]
"#;

#[test]
fn istio_gateway_without_policies_is_critical() {
    assert_eq!(
        brief(&scan(GATEWAY_TO_ARGO)),
        vec![("JS-EXP-004".into(), Severity::Critical)]
    );
}

#[test]
fn envoy_filter_ext_authz_authenticates() {
    let yaml = format!(
        "{GATEWAY_TO_ARGO}---\n{}",
        r#"apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: authn-filter, namespace: istio-system}
spec:
  workloadSelector:
    labels: {istio: ingressgateway}
  configPatches:
  - applyTo: HTTP_FILTER
    match: {context: GATEWAY}
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.ext_authz
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
          http_service:
            server_uri: {uri: "http://authservice.istio-system.svc.cluster.local", cluster: outbound|8080||authservice.istio-system.svc.cluster.local, timeout: 10s}
"#
    );
    let f = scan(&yaml);
    assert_eq!(brief(&f), vec![("JS-EXP-009".into(), Severity::Low)]);
    assert!(f[0].evidence[1].contains("EnvoyFilter istio-system/authn-filter"));
}

#[test]
fn request_authentication_alone_does_not_authenticate() {
    let yaml = format!(
        "{GATEWAY_TO_ARGO}---\n{}",
        r#"apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  jwtRules: [{issuer: "https://accounts.example.com"}]
"#
    );
    let f = scan(&yaml);
    assert_eq!(brief(&f), vec![("JS-EXP-004".into(), Severity::Critical)]);
    assert!(
        f[0].evidence
            .iter()
            .any(|e| e.contains("no AuthorizationPolicy requires one")),
        "{:#?}",
        f[0].evidence
    );
}

#[test]
fn allow_only_with_request_principals_authenticates() {
    let yaml = format!(
        "{GATEWAY_TO_ARGO}---\n{}",
        r#"apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  jwtRules: [{issuer: "https://accounts.example.com"}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: require-jwt, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: ALLOW
  rules:
  - from: [{source: {requestPrincipals: ["https://accounts.example.com/*"]}}]
"#
    );
    assert_eq!(
        brief(&scan(&yaml)),
        vec![("JS-EXP-009".into(), Severity::Low)]
    );
}

#[test]
fn deny_all_at_the_gateway_closes_the_door() {
    let yaml = format!(
        "{GATEWAY_TO_ARGO}---\n{}",
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-all, namespace: istio-system}\nspec: {}\n"
    );
    assert_eq!(brief(&scan(&yaml)), vec![]);
}

#[test]
fn custom_policy_that_excludes_the_route_does_not_authenticate_it() {
    let yaml = format!(
        "{GATEWAY_TO_ARGO}---\n{}",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: oauth2, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: CUSTOM
  provider: {name: oauth2-proxy}
  rules: [{to: [{operation: {paths: ["/grafana/*"]}}]}]
"#
    );
    assert_eq!(
        brief(&scan(&yaml)),
        vec![("JS-EXP-004".into(), Severity::Critical)]
    );
}

#[test]
fn virtual_service_bound_to_the_mesh_only_is_not_a_way_in() {
    let yaml = GATEWAY_TO_ARGO.replace("gateways: [istio-system/public]", "gateways: [mesh]");
    assert_eq!(brief(&scan(&yaml)), vec![]);
}

/// A Jupyter server with its token turned off, behind the Service `lab/lab` (port 8888).
const LAB: &str = r#"---
apiVersion: v1
kind: Service
metadata: {name: lab, namespace: lab}
spec:
  selector: {app: lab}
  ports: [{port: 8888}]
---
apiVersion: v1
kind: Pod
metadata: {name: lab, namespace: lab, labels: {app: lab}}
spec:
  containers:
  - name: lab
    image: jupyter/base-notebook:latest
    args: [start-notebook.sh, --NotebookApp.token=]
"#;

#[test]
fn ingress_auth_annotations_and_internal_classes() {
    let base = &format!(
        "{}{LAB}",
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: lab
  namespace: lab
  annotations: ANNOTATIONS
spec:
  ingressClassName: CLASS
  rules:
  - http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: lab, port: {number: 8888}}}}
"#
    );
    let case = |ann: &str, class: &str| {
        brief(&scan(
            &base.replace("ANNOTATIONS", ann).replace("CLASS", class),
        ))
    };
    assert_eq!(
        case("{}", "nginx"),
        vec![("JS-EXP-003".into(), Severity::Critical)]
    );
    assert_eq!(
        case(
            "{nginx.ingress.kubernetes.io/auth-url: 'https://auth.example.com/oauth2/auth'}",
            "nginx"
        ),
        vec![("JS-EXP-009".into(), Severity::Low)]
    );
    assert_eq!(
        case("{}", "nginx-internal"),
        vec![("JS-EXP-003".into(), Severity::Medium)]
    );
    assert_eq!(
        case("{alb.ingress.kubernetes.io/scheme: internal}", "alb"),
        vec![("JS-EXP-003".into(), Severity::Medium)]
    );
    // Another controller's annotation: a Traefik or ALB Ingress ignores ingress-nginx's
    // auth-url; a class that names no controller may be ingress-nginx, and is trusted.
    let nginx_auth =
        "{nginx.ingress.kubernetes.io/auth-url: 'https://auth.example.com/oauth2/auth'}";
    for class in ["traefik", "alb"] {
        // (An ALB faces the internet only when asked to.)
        let ann = nginx_auth.replace('}', ", alb.ingress.kubernetes.io/scheme: internet-facing}");
        let f = scan(&base.replace("ANNOTATIONS", &ann).replace("CLASS", class));
        assert_eq!(
            brief(&f),
            vec![("JS-EXP-003".into(), Severity::Critical)],
            "{class}"
        );
        assert!(
            f[0].evidence
                .iter()
                .any(|e| e.contains("it is ingress-nginx's annotation")),
            "{:#?}",
            f[0].evidence
        );
    }
    assert_eq!(
        case(nginx_auth, "public"),
        vec![("JS-EXP-009".into(), Severity::Low)]
    );
    // The IngressClass says who serves the Ingress: the default one for an Ingress of no
    // class, the named one otherwise; its controller, not the class's name, decides.
    let ingress_class = |name: &str, controller: &str, default: bool| {
        format!(
            "---\napiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: {name}\n  annotations: {{ingressclass.kubernetes.io/is-default-class: '{default}'}}\nspec: {{controller: {controller}}}\n"
        )
    };
    let no_class = base.replace("  ingressClassName: CLASS\n", "");
    let with = |yaml: &str, classes: &str| {
        brief(&scan(&format!(
            "{}{classes}",
            yaml.replace("ANNOTATIONS", nginx_auth)
        )))
    };
    // k3s: Traefik is the default; ingress-nginx's annotation on a class-less Ingress is ignored,
    // and the remediation is Traefik's.
    let k3s = ingress_class("traefik", "traefik.io/ingress-controller", true);
    assert_eq!(
        with(&no_class, &k3s),
        vec![("JS-EXP-003".into(), Severity::Critical)]
    );
    let f = scan(&format!("{}{k3s}", no_class.replace("ANNOTATIONS", "{}")));
    assert!(
        f[0].remediation
            .starts_with("jackstop fix --ingress-auth-url"),
        "{}",
        f[0].remediation
    );
    // The default is ingress-nginx: it reads it.
    assert_eq!(
        with(
            &no_class,
            &ingress_class("public", "k8s.io/ingress-nginx", true)
        ),
        vec![("JS-EXP-009".into(), Severity::Low)]
    );
    // A class named nginx that F5 NGINX's controller serves: it reads nginx.org/ annotations.
    assert_eq!(
        with(
            &base.replace("CLASS", "nginx"),
            &ingress_class("nginx", "nginx.org/ingress-controller", false)
        ),
        vec![("JS-EXP-003".into(), Severity::Critical)]
    );
    // A class of a name that says nothing, served by ingress-nginx.
    assert_eq!(
        with(
            &base.replace("CLASS", "edge"),
            &format!(
                "{}{}",
                ingress_class("edge", "k8s.io/ingress-nginx", false),
                ingress_class("traefik", "traefik.io/ingress-controller", true)
            )
        ),
        vec![("JS-EXP-009".into(), Severity::Low)]
    );
    // The ALB authenticates on HTTPS listeners only.
    let oidc = "alb.ingress.kubernetes.io/scheme: internet-facing, alb.ingress.kubernetes.io/auth-type: oidc, alb.ingress.kubernetes.io/auth-idp-oidc: '{}'";
    let alb = |more: &str| {
        let ann = format!("{{{oidc}{more}}}");
        let f = scan(&base.replace("ANNOTATIONS", &ann).replace("CLASS", "alb"));
        (brief(&f), f)
    };
    // On plain HTTP (the controller's default without a certificate): open, and said why.
    let (b, f) = alb("");
    assert_eq!(b, vec![("JS-EXP-003".into(), Severity::Critical)]);
    assert!(
        f[0].evidence.iter().any(|e| e.contains(
            "AWS ALB OIDC/Cognito authentication (alb.ingress.kubernetes.io/auth-type) is set, but the Ingress has no HTTPS listener"
        )),
        "{:#?}",
        f[0].evidence
    );
    // HTTPS by its certificate (the default listener is then HTTPS:443): authenticated.
    let (b, _) = alb(", alb.ingress.kubernetes.io/certificate-arn: 'arn:aws:acm:eu-west-1:111122223333:certificate/abc'");
    assert_eq!(b, vec![("JS-EXP-009".into(), Severity::Low)]);
    // HTTP and HTTPS: HTTP passes without authentication unless it redirects.
    let both = ", alb.ingress.kubernetes.io/listen-ports: '[{\"HTTP\": 80}, {\"HTTPS\": 443}]'";
    let (b, f) = alb(both);
    assert_eq!(b, vec![("JS-EXP-003".into(), Severity::Critical)]);
    assert!(
        f[0].evidence
            .iter()
            .any(|e| e.contains("its HTTP listener (80) does not redirect to HTTPS")),
        "{:#?}",
        f[0].evidence
    );
    let (b, _) = alb(&format!(
        "{both}, alb.ingress.kubernetes.io/ssl-redirect: '443'"
    ));
    assert_eq!(b, vec![("JS-EXP-009".into(), Severity::Low)]);
}

/// The AWS Load Balancer Controller makes internal ALBs unless asked for `internet-facing`
/// (by the Ingress, by another Ingress of its IngressGroup, or by its class's
/// IngressClassParams, which win); where its IngressClass or IngressClassParams were not read,
/// the ALB may face the internet; `inbound-cidrs` narrows an internet-facing one;
/// `ssl-redirect` set on another member of the group redirects this Ingress's plain HTTP too.
/// An Ingress that another controller serves is in no ALB's group.
#[test]
fn an_alb_faces_the_internet_only_when_asked_to() {
    let ingress = |name: &str, ns: &str, ann: &str, class: &str| {
        format!(
            "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n  namespace: {ns}\n  annotations: {{{ann}}}\nspec:\n  ingressClassName: {class}\n  rules:\n  - http:\n      paths:\n      - {{path: /{name}, pathType: Prefix, backend: {{service: {{name: lab, port: {{number: 8888}}}}}}}}\n"
        )
    };
    // The cluster's IngressClass `alb`, the controller's, with no IngressClassParams.
    let alb_class =
        "---\napiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: alb}\nspec: {controller: ingress.k8s.aws/alb}\n";
    let bare = |docs: &str| {
        let f = scan(&format!("{docs}\n{LAB}"));
        (brief(&f), f)
    };
    let run = |docs: &str| bare(&format!("{alb_class}{docs}"));
    let critical = vec![("JS-EXP-003".to_string(), Severity::Critical)];
    let medium = vec![("JS-EXP-003".to_string(), Severity::Medium)];
    // No scheme: the controller's default, internal.
    let (b, f) = run(&ingress("lab", "lab", "", "alb"));
    assert_eq!(b, medium);
    assert!(says(&f[0], "internal ALB"), "{:#?}", f[0].evidence);
    // Without the IngressClass, its IngressClassParams may set the scheme: open, and said why.
    let (b, f) = bare(&ingress("lab", "lab", "", "alb"));
    assert_eq!(b, critical);
    assert!(
        says(&f[0], "the IngressClass was not read"),
        "{:#?}",
        f[0].evidence
    );
    // Its remediation is the ALB's own login, not another controller's annotation.
    assert!(
        f[0].remediation.starts_with("jackstop fix --oidc-issuer"),
        "{}",
        f[0].remediation
    );
    // Near miss: the same Ingress for ingress-nginx faces the internet.
    assert_eq!(run(&ingress("lab", "lab", "", "nginx")).0, critical);
    let facing = "alb.ingress.kubernetes.io/scheme: internet-facing";
    assert_eq!(run(&ingress("lab", "lab", facing, "alb")).0, critical);
    // Another Ingress of its group (in another namespace) asks for it: one ALB, internet-facing.
    let grouped = "alb.ingress.kubernetes.io/group.name: shared";
    let other = ingress("other", "web", &format!("{grouped}, {facing}"), "alb");
    assert_eq!(
        run(&format!("{}{other}", ingress("lab", "lab", grouped, "alb"))).0,
        critical
    );
    // Near misses: the same other Ingress in a group of its own, or served by ingress-nginx
    // (in no ALB's group, whatever its annotations).
    let alone = ingress("other", "web", facing, "alb");
    assert_eq!(
        run(&format!("{}{alone}", ingress("lab", "lab", grouped, "alb"))).0,
        medium
    );
    let nginx_member = ingress("other", "web", &format!("{grouped}, {facing}"), "nginx");
    assert_eq!(
        run(&format!(
            "{}{nginx_member}",
            ingress("lab", "lab", grouped, "alb")
        ))
        .0,
        medium
    );
    // inbound-cidrs: a private range keeps it in the network; everyone is the internet.
    let cidrs = |c: &str| {
        run(&ingress(
            "lab",
            "lab",
            &format!("{facing}, alb.ingress.kubernetes.io/inbound-cidrs: '{c}'"),
            "alb",
        ))
        .0
    };
    assert_eq!(cidrs("10.0.0.0/8, 192.168.0.0/16"), medium);
    assert_eq!(cidrs("10.0.0.0/8, 0.0.0.0/0"), critical);
    // The class's IngressClassParams decides over the annotations.
    let class = "---\napiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: public-alb}\nspec:\n  controller: ingress.k8s.aws/alb\n  parameters: {apiGroup: elbv2.k8s.aws, kind: IngressClassParams, name: public}\n";
    let params = |scheme: &str| {
        format!("---\napiVersion: elbv2.k8s.aws/v1beta1\nkind: IngressClassParams\nmetadata: {{name: public}}\nspec: {{scheme: {scheme}}}\n")
    };
    let with_class = ingress("lab", "lab", "", "public-alb");
    assert_eq!(
        run(&format!("{class}{}{with_class}", params("internet-facing"))).0,
        critical
    );
    assert_eq!(
        run(&format!("{class}{}{with_class}", params("internal"))).0,
        medium
    );
    // Even over the Ingress's own `scheme: internal`.
    let says_internal = ingress(
        "lab",
        "lab",
        "alb.ingress.kubernetes.io/scheme: internal",
        "public-alb",
    );
    assert_eq!(
        run(&format!(
            "{class}{}{says_internal}",
            params("internet-facing")
        ))
        .0,
        critical
    );
    // Params named but not read: it may face the internet, and the finding says why.
    let (b, f) = run(&format!("{class}{with_class}"));
    assert_eq!(b, critical);
    assert!(
        says(&f[0], "IngressClassParams public, which was not read"),
        "{:#?}",
        f[0].evidence
    );
    // ssl-redirect is the group's: another member's redirects this Ingress's HTTP listener.
    let oidc = "alb.ingress.kubernetes.io/auth-type: oidc, alb.ingress.kubernetes.io/auth-idp-oidc: '{}', alb.ingress.kubernetes.io/listen-ports: '[{\"HTTP\": 80}, {\"HTTPS\": 443}]'";
    let lab_oidc = ingress("lab", "lab", &format!("{grouped}, {facing}, {oidc}"), "alb");
    assert_eq!(run(&lab_oidc).0, critical);
    let redirecting = ingress(
        "other",
        "web",
        &format!("{grouped}, alb.ingress.kubernetes.io/ssl-redirect: '443'"),
        "alb",
    );
    assert_eq!(
        run(&format!("{lab_oidc}{redirecting}")).0,
        vec![("JS-EXP-009".to_string(), Severity::Low)]
    );
    // Near miss: the same redirect on an Ingress ingress-nginx serves redirects nothing here.
    let nginx_redirecting = ingress(
        "other",
        "web",
        &format!("{grouped}, alb.ingress.kubernetes.io/ssl-redirect: '443'"),
        "nginx",
    );
    assert_eq!(run(&format!("{lab_oidc}{nginx_redirecting}")).0, critical);
}

#[test]
fn oauth2_proxy_in_front_is_followed_to_its_upstream() {
    let yaml = r#"
apiVersion: v1
kind: Service
metadata: {name: auth, namespace: ml}
spec:
  type: LoadBalancer
  selector: {app: oauth2-proxy}
  ports: [{port: 443, targetPort: 4180}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: oauth2-proxy, namespace: ml}
spec:
  template:
    metadata: {labels: {app: oauth2-proxy}}
    spec:
      containers:
      - name: oauth2-proxy
        image: quay.io/oauth2-proxy/oauth2-proxy:v7.6.0
        args: [--provider=oidc, --upstream=http://mlflow.ml.svc.cluster.local:5000/, --http-address=0.0.0.0:4180]
        ports: [{containerPort: 4180}]
---
apiVersion: v1
kind: Service
metadata: {name: mlflow, namespace: ml}
spec:
  selector: {app: mlflow}
  ports: [{port: 5000}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: mlflow, namespace: ml}
spec:
  template:
    metadata: {labels: {app: mlflow}}
    spec:
      containers:
      - {name: mlflow, image: ghcr.io/mlflow/mlflow:v2.12.1, command: [mlflow, server, --host, 0.0.0.0]}
"#;
    let f = scan(yaml);
    assert_eq!(brief(&f), vec![("JS-EXP-009".into(), Severity::Low)]);
    assert!(
        f[0].evidence[0]
            .contains("oauth2-proxy (Deployment ml/oauth2-proxy container oauth2-proxy)"),
        "{}",
        f[0].evidence[0]
    );
    // The same MLflow Service made a LoadBalancer itself bypasses the proxy.
    let bypass = yaml.replace(
        "metadata: {name: mlflow, namespace: ml}\nspec:\n  selector",
        "metadata: {name: mlflow, namespace: ml}\nspec:\n  type: LoadBalancer\n  selector",
    );
    assert!(brief(&scan(&bypass)).contains(&("JS-EXP-007".into(), Severity::High)));
}

/// Envoy Gateway routing to a Ray dashboard.
const GATEWAY_API_TO_RAY: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: eg, namespace: ml}
spec:
  gatewayClassName: eg
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ray, namespace: ml}
spec:
  parentRefs: [{name: eg}]
  rules: [{backendRefs: [{name: ray-head-svc, port: 8265}]}]
---
apiVersion: v1
kind: Service
metadata: {name: ray-head-svc, namespace: ml}
spec:
  selector: {ray.io/cluster: rc, ray.io/node-type: head}
  ports: [{name: dashboard, port: 8265}]
---
apiVersion: ray.io/v1
kind: RayCluster
metadata: {name: rc, namespace: ml}
spec:
  headGroupSpec:
    rayStartParams: {}
    template:
      spec:
        containers: [{name: ray-head, image: "rayproject/ray:2.9.0", ports: [{containerPort: 8265, name: dashboard}]}]
"#;

#[test]
fn gateway_api_security_policy_authenticates() {
    let yaml = GATEWAY_API_TO_RAY;
    assert_eq!(
        brief(&scan(yaml)),
        vec![("JS-EXP-006".into(), Severity::Critical)]
    );
    let with_policy = format!(
        "{yaml}---\n{}",
        "apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: SecurityPolicy\nmetadata: {name: oidc, namespace: ml}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: ray}]\n  oidc: {provider: {issuer: 'https://accounts.example.com'}, clientID: ray}\n"
    );
    assert_eq!(
        brief(&scan(&with_policy)),
        vec![("JS-EXP-009".into(), Severity::Low)]
    );
    let waypoint = yaml.replace("gatewayClassName: eg", "gatewayClassName: istio-waypoint");
    assert_eq!(brief(&scan(&waypoint)), vec![]);
}

#[test]
fn host_ports_and_external_ips() {
    let yaml = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: lab, namespace: ml}
spec:
  template:
    metadata: {labels: {app: lab}}
    spec:
      containers:
      - name: lab
        image: quay.io/jupyter/base-notebook
        args: [start-notebook.py, "--IdentityProvider.token=''"]
        ports: [{containerPort: 8888, hostPort: 8888}]
---
apiVersion: v1
kind: Service
metadata: {name: tb, namespace: ml}
spec:
  externalIPs: [198.51.100.10]
  selector: {app: tb}
  ports: [{port: 6006}]
---
apiVersion: v1
kind: Pod
metadata: {name: tb, namespace: ml, labels: {app: tb}}
spec:
  containers: [{name: tb, image: "tensorflow/tensorflow:2.15.0", command: [tensorboard, --logdir, /logs]}]
"#;
    let f = scan(yaml);
    let mut b = brief(&f);
    b.sort();
    assert_eq!(
        b,
        vec![
            ("JS-EXP-003".into(), Severity::High),
            ("JS-EXP-008".into(), Severity::High)
        ]
    );
    let lab = f.iter().find(|f| f.rule == "JS-EXP-003").unwrap();
    assert_eq!(lab.resource.kind, "DaemonSet");
    assert_eq!(
        lab.location.field.as_deref(),
        Some("spec.template.spec.containers[0].ports")
    );
}

/// Look-alikes: ML images and dashboards that are not reachable, and reachable things that are
/// not dashboards.
#[test]
fn look_alikes_stay_quiet() {
    let yaml = r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.27", ports: [{containerPort: 8080}]}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: train, namespace: ml}
spec:
  template:
    spec:
      hostNetwork: true
      containers:
      - {name: train, image: "tensorflow/tensorflow:2.15.0-gpu", command: [python, train.py, --log-dir, /logs/tensorboard]}
      - {name: submit, image: "quay.io/argoproj/argocli:v3.5.5", args: [submit, --watch, wf.yaml]}
---
apiVersion: v1
kind: Service
metadata: {name: notebook, namespace: ml}
spec:
  type: ClusterIP
  selector: {app: notebook}
  ports: [{port: 8888}]
---
apiVersion: v1
kind: Pod
metadata: {name: notebook, namespace: ml, labels: {app: notebook}}
spec:
  containers: [{name: nb, image: "jupyter/base-notebook", args: [start-notebook.sh, --NotebookApp.token=]}]
"#;
    assert_eq!(brief(&scan(yaml)), vec![]);
}

/// KubeRay creates `<cluster>-head-svc` itself, so a route to it reaches the head even though
/// the Service is not in the manifests; Ray's mutual TLS guards the client port only.
#[test]
fn route_to_the_kuberay_created_head_service() {
    let yaml = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: eg, namespace: ml}
spec:
  gatewayClassName: eg
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ray, namespace: ml}
spec:
  parentRefs: [{name: eg}]
  rules: [{backendRefs: [{name: rc-head-svc, port: PORT}]}]
---
apiVersion: ray.io/v1
kind: RayCluster
metadata: {name: rc, namespace: ml}
spec:
  headGroupSpec:
    rayStartParams: {}
    template:
      spec:
        containers:
        - name: ray-head
          image: "rayproject/ray:2.9.0"
          env: [{name: RAY_USE_TLS, value: "1"}]
"#;
    let dashboard = scan(&yaml.replace("PORT", "8265"));
    assert_eq!(
        brief(&dashboard),
        vec![("JS-EXP-006".into(), Severity::Critical)]
    );
    assert!(
        dashboard[0].evidence[0]
            .contains("Service ml/rc-head-svc (created by KubeRay for RayCluster ml/rc)"),
        "{:?}",
        dashboard[0].evidence
    );
    // The client port with mutual TLS asks for a certificate: exposed but authenticated.
    let client = scan(&yaml.replace("PORT", "10001"));
    assert_eq!(
        brief(&client),
        vec![("JS-EXP-009".into(), Severity::Medium)]
    );
    // A route to another cluster's head Service reaches nothing known.
    let other = scan(
        &yaml
            .replace("rc-head-svc", "other-head-svc")
            .replace("PORT", "8265"),
    );
    assert!(
        other
            .iter()
            .all(|f| !f.evidence[0].contains("created by KubeRay")),
        "{other:?}"
    );
}

/// A view that keeps what it read across analyses (the admission webhook's cluster view) finds
/// exactly what a fresh analysis finds, the second time too, when each container's interface
/// comes from memory; and a container remembered under one catalogue is looked up again under
/// another.
#[test]
fn a_prepared_view_finds_what_a_fresh_analysis_finds() {
    use jackstop_analysers::exposure::{ExposureAnalyser, Prepared};
    use jackstop_analysers::Analyser;
    let mut argo = ManifestSet::default();
    parse_text(
        GATEWAY_TO_ARGO,
        "argo.yaml",
        &ReadOptions::default(),
        &mut argo,
    );
    // The real Kubeflow install with its gateway opened (its auth layers in front).
    let corpus = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus/kubeflow-platform"
    );
    let (inputs, _) = jackstop_manifests::collect_inputs(&[corpus.to_string()], &[]);
    let mut kubeflow = jackstop_manifests::read_inputs(&inputs, &ReadOptions::default()).objects;
    let gateway = kubeflow
        .iter_mut()
        .find(|o| o.kind == "Service" && o.name == "istio-ingressgateway")
        .expect("the install has the gateway Service");
    gateway.body["spec"]["type"] = "LoadBalancer".into();
    let cat = Catalogue::builtin();
    let as_json = |f: &[Finding]| serde_json::to_string(f).unwrap();
    for objects in [argo.objects, kubeflow] {
        let fresh = ExposureAnalyser.analyse(&objects, cat);
        assert!(!fresh.is_empty());
        let prepared: Vec<Prepared> = objects.iter().map(Prepared::of).collect();
        let view = || objects.iter().zip(prepared.iter().map(Some));
        for _ in 0..2 {
            assert_eq!(
                as_json(&ExposureAnalyser.analyse_prepared(view(), cat)),
                as_json(&fresh)
            );
        }
        // The same catalogue less its first interface: every position is one off, and what
        // the view remembers under the built-in catalogue must not be read under this one.
        let text = include_str!("../../catalogue/data/interfaces.yaml");
        let (head, rest) = text.split_once("\n  - id: ").unwrap();
        let (_, rest) = rest.split_once("\n  - id: ").unwrap();
        let mut shifted = Catalogue::load().unwrap();
        shifted.interfaces =
            jackstop_catalogue::interfaces::InterfaceSet::parse(&format!("{head}\n  - id: {rest}"))
                .unwrap();
        assert_eq!(
            as_json(&ExposureAnalyser.analyse_prepared(view(), &shifted)),
            as_json(&ExposureAnalyser.analyse(&objects, &shifted))
        );
    }
}

/// JupyterLab without a token behind a Service, and a Traefik Ingress to it (k3s's default
/// controller: no class needed).
const TRAEFIK_INGRESS_TO_JUPYTER: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: lab, namespace: ml}
spec:
  selector: {app: lab}
  ports: [{port: 80, targetPort: 8888}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: lab, namespace: ml}
spec:
  template:
    metadata: {labels: {app: lab}}
    spec:
      containers:
      - name: lab
        image: quay.io/jupyter/base-notebook
        args: [start-notebook.py, "--IdentityProvider.token=''"]
        ports: [{containerPort: 8888}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: lab
  namespace: ml
  annotations: {}
spec:
  rules:
  - host: lab.example.com
    http:
      paths: [{path: /, pathType: Prefix, backend: {service: {name: lab, port: {number: 80}}}}]
"#;

const TRAEFIK_MIDDLEWARES: &str = r#"
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: sso, namespace: auth-system}
spec:
  forwardAuth:
    address: http://oauth2-proxy.auth-system.svc.cluster.local/oauth2/auth
    trustForwardHeader: true
---
apiVersion: traefik.containo.us/v1alpha1
kind: Middleware
metadata: {name: team-chain, namespace: ml}
spec:
  chain:
    middlewares: [{name: compress}, {name: users}]
---
apiVersion: traefik.containo.us/v1alpha1
kind: Middleware
metadata: {name: compress, namespace: ml}
spec:
  compress: {}
---
apiVersion: traefik.containo.us/v1alpha1
kind: Middleware
metadata: {name: users, namespace: ml}
spec:
  basicAuth: {secret: lab-users}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: office-only, namespace: ml}
spec:
  ipAllowList: {sourceRange: [10.20.0.0/16, 192.168.1.0/24]}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: strip, namespace: ml}
spec:
  stripPrefix: {prefixes: [/lab]}
"#;

fn with_middlewares(annotation: &str) -> String {
    format!(
        "{}---\n{TRAEFIK_MIDDLEWARES}",
        TRAEFIK_INGRESS_TO_JUPYTER.replace(
            "annotations: {}",
            &format!(
                "annotations: {{traefik.ingress.kubernetes.io/router.middlewares: '{annotation}'}}"
            )
        )
    )
}

#[test]
fn traefik_middlewares_on_ingresses() {
    let open = scan(TRAEFIK_INGRESS_TO_JUPYTER);
    assert_eq!(
        brief(&open),
        vec![("JS-EXP-003".into(), Severity::Critical)]
    );
    // forwardAuth in another namespace (`<namespace>-<name>@kubernetescrd`).
    let f = scan(&with_middlewares("auth-system-sso@kubernetescrd"));
    assert_eq!(brief(&f), vec![("JS-EXP-009".into(), Severity::Low)]);
    assert!(
        f[0].evidence.iter().any(|e| e.contains(
            "Traefik forwardAuth to http://oauth2-proxy.auth-system.svc.cluster.local/oauth2/auth (Middleware auth-system/sso)"
        )),
        "{:#?}",
        f[0].evidence
    );
    // basicAuth at the end of a chain of the v2 API group.
    assert_eq!(
        brief(&scan(&with_middlewares(
            "ml-strip@kubernetescrd,ml-team-chain@kubernetescrd"
        ))),
        vec![("JS-EXP-009".into(), Severity::Low)]
    );
    // Middlewares that do not authenticate, one not read, one of the file provider: open,
    // and the evidence says what was not seen.
    let f = scan(&with_middlewares(
        "ml-strip@kubernetescrd,ml-sso@kubernetescrd,auth@file",
    ));
    assert_eq!(brief(&f), vec![("JS-EXP-003".into(), Severity::Critical)]);
    let notes = f[0].evidence.join("\n");
    assert!(
        notes.contains("Traefik middleware ml-sso@kubernetescrd is not among the objects read"),
        "{notes}"
    );
    assert!(
        notes.contains("auth@file comes from the file provider"),
        "{notes}"
    );
    // An IP allow list of private ranges: the private network only.
    let f = scan(&with_middlewares("ml-office-only@kubernetescrd"));
    assert_eq!(brief(&f), vec![("JS-EXP-003".into(), Severity::Medium)]);
    assert_eq!(f[0].detail.as_ref().unwrap()["reach"], "private-network");
    // Near miss: another controller's Ingress does not run Traefik's middlewares.
    let nginx = with_middlewares("auth-system-sso@kubernetescrd").replace(
        "spec:\n  rules:",
        "spec:\n  ingressClassName: nginx\n  rules:",
    );
    assert_eq!(
        brief(&scan(&nginx)),
        vec![("JS-EXP-003".into(), Severity::Critical)]
    );
}

const INGRESS_ROUTE: &str = r#"
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: lab, namespace: ml}
spec:
  entryPoints: [websecure]
  routes:
  - match: Host(`lab.example.com`)
    kind: Rule
    middlewares: []
    services: [{name: lab, port: 80}]
  tls: {certResolver: le}
"#;

#[test]
fn traefik_ingress_routes_are_ways_in() {
    let base = TRAEFIK_INGRESS_TO_JUPYTER
        .split("---\napiVersion: networking.k8s.io/v1\nkind: Ingress")
        .next()
        .unwrap()
        .to_string();
    let open = format!("{base}---\n{INGRESS_ROUTE}---\n{TRAEFIK_MIDDLEWARES}");
    let f = scan(&open);
    assert_eq!(brief(&f), vec![("JS-EXP-003".into(), Severity::Critical)]);
    assert_eq!(f[0].resource.kind, "IngressRoute");
    assert_eq!(
        f[0].location.field.as_deref(),
        Some("spec.routes[0].services[0]")
    );
    assert!(
        f[0].detail.as_ref().unwrap()["path"][1]
            .as_str()
            .unwrap()
            .starts_with("IngressRoute ml/lab (Host(`lab.example.com`), entry points websecure)"),
        "{:#?}",
        f[0].detail
    );
    // Middlewares by name and namespace, as IngressRoutes name them.
    let sso = open.replace(
        "middlewares: []",
        "middlewares: [{name: strip}, {name: sso, namespace: auth-system}]",
    );
    assert_eq!(
        brief(&scan(&sso)),
        vec![("JS-EXP-009".into(), Severity::Low)]
    );
    let chain = open.replace("middlewares: []", "middlewares: [{name: team-chain}]");
    assert_eq!(
        brief(&scan(&chain)),
        vec![("JS-EXP-009".into(), Severity::Low)]
    );
    // A public range in the allow list leaves it open to the internet.
    let public = format!(
        "{open}---\napiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata: {{name: anyone, namespace: ml}}\nspec:\n  ipAllowList: {{sourceRange: [0.0.0.0/0]}}\n"
    )
    .replace("middlewares: []", "middlewares: [{name: anyone}]");
    assert_eq!(
        brief(&scan(&public)),
        vec![("JS-EXP-003".into(), Severity::Critical)]
    );
    // Near misses: a route to a Service that is no interface, and a Middleware of another
    // API group with the same name.
    let benign = open.replace(
        "services: [{name: lab, port: 80}]",
        "services: [{name: model-api, port: 80}]",
    );
    let benign = format!("{benign}---\napiVersion: v1\nkind: Service\nmetadata: {{name: model-api, namespace: ml}}\nspec:\n  selector: {{app: model-api}}\n  ports: [{{port: 80, targetPort: 8080}}]\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: model-api, namespace: ml}}\nspec:\n  template:\n    metadata: {{labels: {{app: model-api}}}}\n    spec:\n      containers: [{{name: api, image: 'registry.example.com/fraud-model:1.4', ports: [{{containerPort: 8080}}]}}]\n");
    assert_eq!(
        brief(&scan(&benign))
            .into_iter()
            .filter(|(r, _)| r.starts_with("JS-EXP"))
            .collect::<Vec<_>>(),
        vec![],
        "a route to a model API is no exposure"
    );
}

/// MLflow published by an OpenShift Route, with no login in front.
const ROUTE_TO_MLFLOW: &str = r#"
apiVersion: route.openshift.io/v1
kind: Route
metadata:
  name: mlflow
  namespace: mlops
  annotations: {}
spec:
  host: mlflow.apps.example.com
  to: {kind: Service, name: mlflow}
  port: {targetPort: 5000}
---
apiVersion: v1
kind: Service
metadata: {name: mlflow, namespace: mlops}
spec:
  selector: {app: mlflow}
  ports: [{port: 5000}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: mlflow, namespace: mlops}
spec:
  template:
    metadata: {labels: {app: mlflow}}
    spec:
      containers:
      - name: mlflow
        image: ghcr.io/mlflow/mlflow:v2.12.1
        command: [mlflow, server, --host, 0.0.0.0, --port, "5000"]
        ports: [{containerPort: 5000}]
"#;

fn route_with(annotations: &str) -> Vec<Finding> {
    scan(&ROUTE_TO_MLFLOW.replace(
        "annotations: {}",
        &format!("annotations: {{{annotations}}}"),
    ))
}

fn reach(f: &Finding) -> &str {
    f.detail.as_ref().unwrap()["reach"].as_str().unwrap()
}

#[test]
fn openshift_route_allow_lists_narrow_the_reach() {
    // Open: anyone on the internet.
    let open = route_with("");
    assert_eq!(brief(&open), vec![("JS-EXP-007".into(), Severity::High)]);
    assert_eq!(open[0].resource.kind, "Route");
    assert_eq!(reach(&open[0]), "internet");
    let open_severity = open[0].severity;

    // Private addresses only, a bare one among them (one host): the private network.
    let private = route_with(
        "haproxy.router.openshift.io/ip_allowlist: '10.0.0.0/8 192.168.1.10', haproxy.router.openshift.io/ip_whitelist: '10.0.0.0/8 192.168.1.10'",
    );
    assert_eq!(reach(&private[0]), "private-network");
    assert!(private[0].severity < open_severity, "{:?}", private[0]);
    assert!(
        private[0]
            .evidence
            .iter()
            .any(|e| e == "Reach limited: OpenShift router ip_allowlist 10.0.0.0/8, 192.168.1.10"),
        "{:#?}",
        private[0].evidence
    );
    // The older name alone: every router reads it, and no note says otherwise.
    let whitelist = route_with("haproxy.router.openshift.io/ip_whitelist: '10.0.0.0/8'");
    assert_eq!(reach(&whitelist[0]), "private-network");
    assert!(!whitelist[0].evidence.join("\n").contains("older than"));
    // The newer name alone: narrowed, and a note that older routers do not read it.
    let allowlist = route_with("haproxy.router.openshift.io/ip_allowlist: '10.0.0.0/8'");
    assert_eq!(reach(&allowlist[0]), "private-network");
    assert!(
        allowlist[0]
            .evidence
            .iter()
            .any(|e| e.contains("routers older than openshift/router#564")),
        "{:#?}",
        allowlist[0].evidence
    );

    // A public address: narrowed, still high (nothing asks who the caller is).
    let public = route_with("haproxy.router.openshift.io/ip_whitelist: 203.0.113.7");
    assert_eq!(brief(&public), vec![("JS-EXP-007".into(), Severity::High)]);
    assert_eq!(reach(&public[0]), "narrowed");
    assert!(
        public[0].title.contains("source ranges 203.0.113.7"),
        "{}",
        public[0].title
    );
    // Private and public mixed: narrowed, not private.
    let mixed = route_with("haproxy.router.openshift.io/ip_whitelist: '10.0.0.0/8 203.0.113.0/24'");
    assert_eq!(reach(&mixed[0]), "narrowed");
    // Every address: the internet.
    let everyone = route_with("haproxy.router.openshift.io/ip_whitelist: '0.0.0.0/0 ::/0'");
    assert_eq!(reach(&everyone[0]), "internet");
    // The two names differ: the wider reach (older routers read the second).
    let differ = route_with(
        "haproxy.router.openshift.io/ip_allowlist: '10.0.0.0/8', haproxy.router.openshift.io/ip_whitelist: '203.0.113.0/24'",
    );
    assert_eq!(reach(&differ[0]), "narrowed");

    // Lists the router ignores leave the Route open, and the evidence says why.
    for (value, why) in [
        ("'10.0.0.0/8,192.168.0.0/16'", "not an IP address or CIDR"),
        ("'10.0.0.0/8 '", "leading or trailing spaces"),
        ("'10.0.0.0/8 office'", "\"office\" is not an IP address"),
        ("''", "it is empty"),
    ] {
        let f = route_with(&format!(
            "haproxy.router.openshift.io/ip_whitelist: {value}"
        ));
        assert_eq!(reach(&f[0]), "internet", "{value}");
        assert!(
            f[0].evidence.iter().any(|e| e.contains(why)),
            "{value}: {:#?}",
            f[0].evidence
        );
    }
}

/// Knative Serving's `Route` (serving.knative.dev) is no OpenShift Route: the router's
/// annotation on it means nothing, and it is no way in of its own.
#[test]
fn a_knative_route_is_not_an_openshift_route() {
    let knative = ROUTE_TO_MLFLOW
        .replace(
            "apiVersion: route.openshift.io/v1",
            "apiVersion: serving.knative.dev/v1",
        )
        .replace(
            "annotations: {}",
            "annotations: {haproxy.router.openshift.io/ip_allowlist: '10.0.0.0/8'}",
        );
    assert_eq!(brief(&scan(&knative)), vec![]);
}

/// `detail.via` as (apiVersion, kind, namespace, name) strings.
fn via(f: &Finding) -> Vec<String> {
    let via = f.detail.as_ref().unwrap()["via"].as_array().unwrap();
    via.iter()
        .map(|r| {
            let r: ResourceRef = serde_json::from_value(r.clone()).unwrap();
            format!(
                "{} {} {}/{}",
                r.api_version,
                r.kind,
                r.namespace.unwrap_or_default(),
                r.name
            )
        })
        .collect()
}

/// `detail.via` names the objects a path passes through, in order, for whatever reads a path
/// without parsing its words (the fixes); `detail.path` keeps the words.
#[test]
fn paths_name_the_objects_they_pass_through() {
    // Gateway API: the Gateway (the way in), the route, the Service, the workload.
    let f = scan(GATEWAY_API_TO_RAY);
    assert_eq!(
        via(&f[0]),
        [
            "gateway.networking.k8s.io/v1 Gateway ml/eg",
            "gateway.networking.k8s.io/v1 HTTPRoute ml/ray",
            "v1 Service ml/ray-head-svc",
            "ray.io/v1 RayCluster ml/rc",
        ]
    );
    // One object a hop: the words and the objects go together.
    let path = f[0].detail.as_ref().unwrap()["path"].as_array().unwrap();
    assert_eq!(
        path.len(),
        1 + 4,
        "the origin, then a hop an object: {path:#?}"
    );

    // Istio: the ingress gateway's Service (the way in), the Gateway, the VirtualService, the
    // Service, the workload.
    let f = scan(GATEWAY_TO_ARGO);
    assert_eq!(
        via(&f[0]),
        [
            "v1 Service istio-system/istio-ingressgateway",
            "networking.istio.io/v1 Gateway istio-system/public",
            "networking.istio.io/v1 VirtualService argo/argo",
            "v1 Service argo/argo-server",
            "apps/v1 Deployment argo/argo-server",
        ]
    );

    // A Service the route names that is not in the input: a v1 Service by its name.
    let missing: String = GATEWAY_API_TO_RAY
        .split("\n---\n")
        .filter(|d| !d.contains("kind: Service"))
        .collect::<Vec<_>>()
        .join("\n---\n")
        .replace("name: ray-head-svc", "name: rc-head-svc");
    let f = scan(&missing);
    assert_eq!(
        via(&f[0])[2..],
        ["v1 Service ml/rc-head-svc", "ray.io/v1 RayCluster ml/rc"]
    );

    // An auth proxy in front: its workload, then the Service it sends to.
    let proxied = r#"
apiVersion: v1
kind: Service
metadata: {name: auth, namespace: ml}
spec:
  type: LoadBalancer
  selector: {app: oauth2-proxy}
  ports: [{port: 443, targetPort: 4180}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: oauth2-proxy, namespace: ml}
spec:
  template:
    metadata: {labels: {app: oauth2-proxy}}
    spec:
      containers:
      - name: oauth2-proxy
        image: quay.io/oauth2-proxy/oauth2-proxy:v7.6.0
        args: [--provider=oidc, --upstream=http://mlflow.ml.svc.cluster.local:5000/]
---
apiVersion: v1
kind: Service
metadata: {name: mlflow, namespace: ml}
spec:
  selector: {app: mlflow}
  ports: [{port: 5000}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: mlflow, namespace: ml}
spec:
  template:
    metadata: {labels: {app: mlflow}}
    spec:
      containers:
      - {name: mlflow, image: ghcr.io/mlflow/mlflow:v2.12.1, command: [mlflow, server]}
"#;
    let f = scan(proxied);
    assert_eq!(
        via(&f[0]),
        [
            "v1 Service ml/auth",
            "apps/v1 Deployment ml/oauth2-proxy",
            "v1 Service ml/mlflow",
            "apps/v1 Deployment ml/mlflow",
        ]
    );
    // The proxy and the interface in one pod: the workload once.
    let sidecar = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/rules/JS-EXP-009/hit.yaml"),
    )
    .unwrap();
    let f = scan(&sidecar);
    let notebook = f
        .iter()
        .find(|f| f.resource.kind == "Route")
        .expect("the Route's finding");
    assert_eq!(
        via(notebook),
        [
            "route.openshift.io/v1 Route team-a/notebook",
            "v1 Service team-a/notebook",
            "apps/v1 StatefulSet team-a/notebook",
        ]
    );
}

/// Whether a workload publishes a host port or the host network, read from the object alone
/// (`pods::publishes_host`, what the webhook judges a controller's replica by), says what its
/// templates' facts say: for every object of the corpora, and for near misses of each way in.
#[test]
fn host_ways_in_read_from_the_object_agree_with_its_templates() {
    use jackstop_analysers::pods::{publishes_host, template_facts};
    let from_facts = |o: &jackstop_core::Object| {
        template_facts(o).iter().any(|t| {
            t.host_network
                || t.containers
                    .iter()
                    .any(|c| c.ports.iter().any(|p| p.host_port.is_some()))
        })
    };
    let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");
    let (inputs, _) = jackstop_manifests::collect_inputs(&[corpus.to_string()], &[]);
    let objects = jackstop_manifests::read_inputs(&inputs, &ReadOptions::default()).objects;
    for o in &objects {
        assert_eq!(publishes_host(o), from_facts(o), "{}", o.display());
    }
    let pod = |spec: serde_json::Value| {
        jackstop_core::Object::from_value(
            serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}),
            Default::default(),
            Default::default(),
        )
        .unwrap()
    };
    let deployment = |spec: serde_json::Value| {
        jackstop_core::Object::from_value(
            serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                "spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": spec}}}),
            Default::default(),
            Default::default(),
        )
        .unwrap()
    };
    let c = |ports: serde_json::Value| serde_json::json!({"containers": [{"name": "c", "ports": ports}]});
    let cases = [
        (
            c(serde_json::json!([{"containerPort": 8888, "hostPort": 8888}])),
            true,
        ),
        (
            c(serde_json::json!([{"containerPort": 8888, "hostPort": "8888"}])),
            true,
        ),
        (c(serde_json::json!([{"containerPort": 8888}])), false),
        (
            c(serde_json::json!([{"containerPort": 8888, "hostPort": "none"}])),
            false,
        ),
        (
            serde_json::json!({"initContainers": [{"name": "i", "ports": [{"hostPort": 80}]}], "containers": []}),
            true,
        ),
        (
            serde_json::json!({"hostNetwork": true, "containers": [{"name": "c"}]}),
            true,
        ),
        (
            serde_json::json!({"hostNetwork": false, "containers": [{"name": "c"}]}),
            false,
        ),
        (
            serde_json::json!({"hostNetwork": "true", "containers": [{"name": "c"}]}),
            false,
        ),
        (
            serde_json::json!({"ephemeralContainers": [{"name": "e", "ports": [{"hostPort": 80}]}]}),
            false,
        ),
    ];
    for (spec, expected) in cases {
        for o in [pod(spec.clone()), deployment(spec.clone())] {
            assert_eq!(publishes_host(&o), expected, "{spec}");
            assert_eq!(from_facts(&o), expected, "{spec}");
        }
    }
    assert!(objects.len() > 1000, "{}", objects.len());
}
