//! The exposure rules as per-object CEL. A ValidatingAdmissionPolicy sees one object, never
//! the cluster, so it cannot ask the webhook's question (does anything authenticate on the
//! path from outside to this dashboard?). It asks a stricter one instead:
//!
//! - a Service that fronts a sensitive interface (by the interface catalogue's Service names
//!   and pod labels) or the Istio ingress gateway may not BECOME reachable from outside
//!   (`type: LoadBalancer` or `NodePort`, or `externalIPs`) unless an administrator says what
//!   authenticates in front of it with the annotation `jackstop.dev/authenticated-by`;
//! - the Istio RequestAuthentications, and the CUSTOM/DENY (or principal-requiring ALLOW)
//!   AuthorizationPolicies, that select the ingress gateway (or, in `istio-system`, the whole
//!   mesh) may not be deleted unless annotated `jackstop.dev/allow-delete: "true"` first.
//!
//! Both deny where the webhook, which knows the cluster, may allow (a gateway with
//! authentication in front, a second layer that remains): stricter, never laxer.

use crate::{cel_str, Validation};
use jackstop_catalogue::Catalogue;

/// The annotation that records what authenticates in front of an exposed Service.
pub const AUTHENTICATED_BY: &str = "jackstop.dev/authenticated-by";
/// The annotation that lets a gateway authentication policy be deleted.
pub const ALLOW_DELETE: &str = "jackstop.dev/allow-delete";

/// The Istio ingress gateway: what the 2020-2021 Kubeflow campaign came through.
const GATEWAY_NAMES: &[&str] = &["istio-ingressgateway"];
const GATEWAY_LABELS: &[(&str, &str)] =
    &[("istio", "ingressgateway"), ("app", "istio-ingressgateway")];
/// The rules an open gateway is reported under (the Kubeflow dashboards and Pipelines behind it).
const GATEWAY_RULES: &[&str] = &["JS-EXP-001", "JS-EXP-002"];

fn open(root: &str) -> String {
    format!(
        "(has({root}.spec) && ((has({root}.spec.type) && {root}.spec.type in ['LoadBalancer', 'NodePort']) || (has({root}.spec.externalIPs) && size({root}.spec.externalIPs) > 0)))"
    )
}

fn selector_has(root: &str, key: &str, value: &str) -> String {
    let sel = format!("{root}.spec.selector");
    if value == "*" {
        format!("{} in {sel}", cel_str(key))
    } else {
        format!(
            "({k} in {sel} && {sel}[{k}] == {v})",
            k = cel_str(key),
            v = cel_str(value)
        )
    }
}

/// Whether the Service `root` fronts what these names and label sets identify.
fn fronts(root: &str, names: &[String], label_sets: &[Vec<(String, String)>]) -> String {
    let mut any = Vec::new();
    for n in names {
        match n.strip_prefix('*') {
            Some(suffix) => any.push(format!(
                "({root}.metadata.name.endsWith({s}) && size({root}.metadata.name) > {n})",
                s = cel_str(suffix),
                n = suffix.len()
            )),
            None => any.push(format!("{root}.metadata.name == {}", cel_str(n))),
        }
    }
    let sets: Vec<String> = label_sets
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.iter()
                .map(|(k, v)| selector_has(root, k, v))
                .collect::<Vec<_>>()
                .join(" && ")
        })
        .collect();
    if !sets.is_empty() {
        any.push(format!(
            "(has({root}.spec) && has({root}.spec.selector) && ({}))",
            sets.join(" || ")
        ));
    }
    format!("({})", any.join(" || "))
}

/// One validation per sensitive interface (and one for the gateway).
pub fn service_validations(cat: &Catalogue) -> Vec<Validation> {
    let annotated = format!(
        "(has(object.metadata.annotations) && {a} in object.metadata.annotations && object.metadata.annotations[{a}] != '')",
        a = cel_str(AUTHENTICATED_BY)
    );
    let mut out = Vec::new();
    // Denied: it fronts the interface and is open now, and was not both before (an update that
    // changes neither passes; one that points an open Service at the interface does not).
    let mut push = |id: &str, name: &str, rules: Vec<String>, front: &dyn Fn(&str) -> String| {
        let expression = format!(
            "!({} && {} && !(oldObject != null && {} && {})) || {annotated}",
            front("object"),
            open("object"),
            front("oldObject"),
            open("oldObject")
        );
        let message = format!(
            "jackstop {}: this Service fronts {name} and would make it reachable from outside the cluster (LoadBalancer, NodePort or externalIPs). Keep it ClusterIP and publish it through an authenticating gateway; if something does authenticate in front of it, say what with the annotation {AUTHENTICATED_BY}.",
            rules.join("/")
        );
        out.push(Validation {
            id: id.to_string(),
            rules,
            expression,
            message_expression: Some(format!(
                "{} + ' (Service ' + object.metadata.namespace + '/' + object.metadata.name + ', type ' + (has(object.spec.type) ? object.spec.type : 'ClusterIP') + ')'",
                cel_str(&message)
            )),
            message,
        });
    };
    let gateway_names: Vec<String> = GATEWAY_NAMES.iter().map(|s| s.to_string()).collect();
    let gateway_labels: Vec<Vec<(String, String)>> = GATEWAY_LABELS
        .iter()
        .map(|(k, v)| vec![(k.to_string(), v.to_string())])
        .collect();
    push(
        "istio-ingressgateway",
        "the Istio ingress gateway (the Kubeflow dashboards behind it)",
        GATEWAY_RULES.iter().map(|s| s.to_string()).collect(),
        &|root| fronts(root, &gateway_names, &gateway_labels),
    );
    for i in cat.interfaces.iter() {
        let sets: Vec<Vec<(String, String)>> = i
            .labels
            .iter()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .collect();
        if i.services.is_empty() && sets.iter().all(|s| s.is_empty()) {
            continue;
        }
        push(&i.id, &i.name, vec![i.rule.clone()], &|root| {
            fronts(root, &i.services, &sets)
        });
    }
    out
}

/// Deleting the gateway's authentication.
pub fn auth_delete_validations() -> Vec<Validation> {
    let o = "oldObject";
    let labels = GATEWAY_LABELS
        .iter()
        .map(|(k, v)| {
            format!(
                "({k} in {o}.spec.selector.matchLabels && {o}.spec.selector.matchLabels[{k}] == {v})",
                k = cel_str(k),
                v = cel_str(v)
            )
        })
        .collect::<Vec<_>>()
        .join(" || ");
    let names = GATEWAY_NAMES
        .iter()
        .map(|n| cel_str(n))
        .collect::<Vec<_>>()
        .join(", ");
    let selects = format!(
        "(has({o}.spec) && ((has({o}.spec.selector) && has({o}.spec.selector.matchLabels) && ({labels})) || (has({o}.spec.targetRefs) && {o}.spec.targetRefs.exists(r, has(r.name) && r.name in [{names}])) || ({o}.metadata.namespace == 'istio-system' && !has({o}.spec.selector) && !has({o}.spec.targetRefs))))"
    );
    // What authenticates: a RequestAuthentication; an AuthorizationPolicy that calls an
    // external authorizer, denies, or allows only request principals.
    let authenticates = format!(
        "(request.kind.kind == 'RequestAuthentication' || (has({o}.spec) && has({o}.spec.action) && {o}.spec.action in ['CUSTOM', 'DENY']) || (has({o}.spec) && has({o}.spec.rules) && {o}.spec.rules.exists(r, has(r.from) && r.from.exists(f, has(f.source) && (has(f.source.requestPrincipals) || has(f.source.principals))))))"
    );
    let allowed = format!(
        "(has({o}.metadata.annotations) && {a} in {o}.metadata.annotations && {o}.metadata.annotations[{a}] == 'true')",
        a = cel_str(ALLOW_DELETE)
    );
    let message = format!(
        "jackstop JS-EXP-001/JS-EXP-002: this policy authenticates requests through the Istio ingress gateway; deleting it can leave the Kubeflow dashboards open to whoever reaches the gateway. Replace it first; to delete it on purpose, annotate it {ALLOW_DELETE}=true."
    );
    vec![Validation {
        id: "gateway-authentication".into(),
        rules: GATEWAY_RULES.iter().map(|s| s.to_string()).collect(),
        expression: format!("!({selects} && {authenticates}) || {allowed}"),
        message_expression: Some(format!(
            "{} + ' (' + request.kind.kind + ' ' + request.namespace + '/' + request.name + ')'",
            cel_str(&message)
        )),
        message,
    }]
}
