//! The ALB of an AWS Load Balancer Controller Ingress: where it faces, and what it listens on.
//! The controller makes an internal ALB unless its scheme is `internet-facing`; one ALB serves
//! every Ingress of an IngressGroup (`group.name`), so the scheme and `ssl-redirect`, which
//! are exclusive to a group, may come from another member. The ALB runs `auth-type`
//! authentication on HTTPS listeners only: a plain HTTP listener that does not redirect to
//! HTTPS (`ssl-redirect`) serves the backends without it. Read by the exposure analysis, and by
//! the fix that turns the ALB's authentication on.

use super::ingress_class::{served, Controller};
use jackstop_core::object::scalar_text;
use jackstop_core::Object;
use serde_json::Value;
use std::collections::BTreeMap;

/// The controller's annotation prefix.
pub const PREFIX: &str = "alb.ingress.kubernetes.io/";

/// The controller's annotation `key` on `o`, trimmed.
fn annotation<'o>(o: &'o Object, key: &str) -> Option<&'o str> {
    o.annotation(&format!("{PREFIX}{key}")).map(str::trim)
}

/// The Ingresses one ALB serves with `ing`: those of its IngressGroup (`group.name`, across
/// namespaces) that the controller may serve (by the IngressClasses among `classes`; an
/// Ingress another controller serves is in no ALB's group), itself included. An Ingress of no
/// group is a group of its own.
pub fn group<'o>(
    ing: &'o Object,
    ingresses: &[&'o Object],
    classes: &[&Object],
) -> Vec<&'o Object> {
    let Some(name) = annotation(ing, "group.name").filter(|g| !g.is_empty()) else {
        return vec![ing];
    };
    let mut members: Vec<&Object> = ingresses
        .iter()
        .copied()
        .filter(|o| {
            annotation(o, "group.name") == Some(name)
                && served(o, classes.iter().copied()).may_be(Controller::AwsAlb)
        })
        .collect();
    if !members.iter().any(|o| std::ptr::eq(*o, ing)) {
        members.push(ing);
    }
    members
}

/// What is known of the IngressClassParams of an Ingress's class.
#[derive(Debug, Clone)]
pub enum Params<'o> {
    /// Its IngressClass was read, and names none.
    None,
    /// The IngressClassParams its IngressClass names.
    Read(&'o Object),
    /// Not known (the words say what was not read): they may set the scheme.
    NotRead(String),
}

/// Where the controller puts an ALB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Facing {
    /// Internet-facing, open to `cidrs` when any are given (else to everyone).
    Internet { cidrs: Vec<String> },
    /// Internal: reachable from its VPC only (as the words say).
    Internal(String),
    /// Not known: the words say why.
    Unknown(String),
}

/// Where the ALB of `group` (see [`group`]) faces, as the controller decides: the scheme of the
/// class's IngressClassParams wins; else the `scheme` annotation of any member (it is
/// exclusive to a group); else internal, the controller's default, when the params are known
/// to set none, and not known otherwise. `inbound-cidrs` of every member (merged) and the
/// params' `inboundCIDRs` say who may reach an internet-facing one.
pub fn facing(group: &[&Object], params: Params<'_>) -> Facing {
    let mut cidrs: Vec<String> = group
        .iter()
        .filter_map(|o| annotation(o, "inbound-cidrs"))
        .flat_map(|c| c.split(','))
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    let mut scheme = None;
    if let Params::Read(p) = &params {
        cidrs.extend(
            p.at("spec.inboundCIDRs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|c| c.trim().to_string()),
        );
        scheme = p
            .at("spec.scheme")
            .and_then(Value::as_str)
            .map(|s| (s.trim(), format!("IngressClassParams {}", p.name)));
    }
    let scheme = scheme.or_else(|| {
        group.iter().find_map(|o| {
            annotation(o, "scheme").map(|s| (s, format!("{PREFIX}scheme on {}", o.display())))
        })
    });
    match (scheme, params) {
        (Some(("internet-facing", _)), _) => Facing::Internet { cidrs },
        (Some((other, by)), _) => Facing::Internal(format!("internal ALB: scheme {other} ({by})")),
        (None, Params::NotRead(what)) => Facing::Unknown(format!(
            "the ALB's scheme may be set by {what}, which was not read (without it, the controller makes internal ALBs)"
        )),
        (None, _) => Facing::Internal(format!(
            "internal ALB: no {PREFIX}scheme: internet-facing, and the AWS Load Balancer Controller's default is internal"
        )),
    }
}

/// What an ALB Ingress listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listeners {
    /// Plain HTTP ports.
    pub http: Vec<String>,
    /// HTTPS ports.
    pub https: Vec<String>,
    /// `ssl-redirect`: the HTTPS port every HTTP request is redirected to.
    pub redirect: Option<String>,
    /// `listen-ports` was given (else the controller's defaults).
    pub declared: bool,
    /// A certificate is given (`certificate-arn`, or `spec.tls` for discovery).
    pub certificate: bool,
}

impl Listeners {
    /// As the controller reads them, for an Ingress of `group` (see [`group`]): `listen-ports`,
    /// a JSON list of `{"HTTP": 80}` maps; without it, HTTPS:443 when a certificate is given,
    /// else HTTP:80; `ssl-redirect` its own or its group's. `None` when `listen-ports` is
    /// not readable: the controller refuses the Ingress, and nothing is served.
    pub fn of(ing: &Object, group: &[&Object]) -> Option<Listeners> {
        let ann = |k: &str| annotation(ing, k);
        let certificate = ann("certificate-arn").is_some() || ing.at("spec.tls").is_some();
        // Exclusive to the IngressGroup: any member's is the ALB's.
        let redirect = ann("ssl-redirect")
            .or_else(|| group.iter().find_map(|o| annotation(o, "ssl-redirect")))
            .map(str::to_string);
        let (http, https, declared) = match ann("listen-ports") {
            Some(p) => {
                let list: Vec<BTreeMap<String, Value>> = serde_json::from_str(p).ok()?;
                let mut http = Vec::new();
                let mut https = Vec::new();
                for (proto, port) in list.iter().flatten() {
                    let port = scalar_text(port).unwrap_or_default();
                    match proto.to_ascii_uppercase().as_str() {
                        "HTTP" => http.push(port),
                        "HTTPS" => https.push(port),
                        _ => {}
                    }
                }
                (http, https, true)
            }
            None if certificate => (Vec::new(), vec!["443".to_string()], false),
            None => (vec!["80".to_string()], Vec::new(), false),
        };
        Some(Listeners {
            http,
            https,
            redirect,
            declared,
            certificate,
        })
    }

    /// Why the ALB's authentication leaves a way around it, if it does.
    pub fn gap(&self) -> Option<String> {
        if self.https.is_empty() {
            return Some("the Ingress has no HTTPS listener".into());
        }
        if !self.http.is_empty() && self.redirect.is_none() {
            return Some(format!(
                "its HTTP listener ({}) does not redirect to HTTPS (no {PREFIX}ssl-redirect)",
                self.http.join(", ")
            ));
        }
        None
    }
}
