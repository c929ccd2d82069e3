//! The listeners of an AWS Load Balancer Controller Ingress. The ALB runs `auth-type`
//! authentication on HTTPS listeners only: a plain HTTP listener that does not redirect to
//! HTTPS (`ssl-redirect`) serves the backends without it. Read by the exposure analysis, and by
//! the fix that turns the ALB's authentication on.

use jackstop_core::object::scalar_text;
use jackstop_core::Object;
use serde_json::Value;
use std::collections::BTreeMap;

/// The controller's annotation prefix.
pub const PREFIX: &str = "alb.ingress.kubernetes.io/";

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
    /// As the controller reads them: `listen-ports`, a JSON list of `{"HTTP": 80}` maps; without
    /// it, HTTPS:443 when a certificate is given, else HTTP:80. `None` when `listen-ports` is
    /// not readable: the controller refuses the Ingress, and nothing is served.
    pub fn of(ing: &Object) -> Option<Listeners> {
        let ann = |k: &str| ing.annotation(&format!("{PREFIX}{k}"));
        let certificate = ann("certificate-arn").is_some() || ing.at("spec.tls").is_some();
        let redirect = ann("ssl-redirect").map(|s| s.trim().to_string());
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
