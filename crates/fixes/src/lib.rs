//! Fixes: from the findings of a scan, and the objects they are about, to patches a user can
//! review and apply with `kubectl`.
//!
//! Fixes sit after findings in jackstop's pipeline (inputs -> objects -> analysers ->
//! findings -> fixes -> reports). This crate does no I/O: the CLI writes the files, and applies
//! them (server-side dry run first) only when asked.
//!
//! Why it is built this way:
//! - A fix is data ([`Fix`]): the documents to send (a JSON merge patch, or whole objects to
//!   apply), the findings it is for, and what it does to them ([`Effect`]). Tests apply every
//!   fix to the objects it targets ([`merge_patch`]) and analyse again: a fix that claims to
//!   close a finding must make it go.
//! - Claims are honest. Turning a Service back to ClusterIP, or requiring a token at the Istio
//!   gateway, *closes* an exposure. Scaling a miner to zero *stops* it but leaves the finding
//!   (the spec still names the miner) until the object is deleted, after the investigation. An
//!   egress NetworkPolicy *contains*: it closes no finding, it keeps miners from reaching their
//!   pools.
//! - Merge patches (`kubectl patch --type merge`) rather than strategic ones: their meaning is
//!   the same for built-in kinds and custom resources, and what they replace is plain to read.
//!   Where a change is one field of a list entry (a container's hostPort, a route's
//!   middlewares), a JSON patch (`--type json`) that tests what it changes first.
//! - One fix may answer several findings (three dashboards behind one gateway Service: one
//!   patch), and one finding may have alternatives (ClusterIP, or a token at the gateway).
//! - Where closing takes changes of two objects (a Traefik Middleware, and the Ingress or
//!   IngressRoute that names it), they are two fixes in order: the first *prepares* (it closes
//!   nothing by itself), the second closes and `requires` what the first creates, which the
//!   render, the tests and `--apply` honour.

mod egress;
mod exposure;
mod render;
mod stop;

use jackstop_core::{Finding, Object, ResourceRef, Severity};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;

pub use egress::{pool_ports, EGRESS_POLICY_NAME};
pub use render::kubectl_resource;

/// How a fix's documents reach the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// One JSON merge patch (RFC 7386) of the target: `kubectl patch --type merge`.
    MergePatch,
    /// Whole objects to create or update: `kubectl apply -f` (server-side apply with `--apply`).
    Apply,
    /// One JSON patch (RFC 6902) of the target, its one document a list of operations:
    /// `kubectl patch --type json`. For what a merge patch cannot say: one field of a list
    /// entry (a merge patch replaces a list whole). Each change is preceded by a `test` of the
    /// value scanned, so that it fails rather than changes an object that moved on.
    JsonPatch,
}

/// What a fix does to the findings it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// The findings are gone once it is applied.
    Closes,
    /// The findings stay, at a lower reach (a load balancer limited to source ranges).
    Narrows,
    /// The workload stops running; the findings stay until the object is deleted.
    Stops,
    /// No finding closes: what it guards against (a miner reaching its pool) is blocked.
    Contains,
    /// Closes nothing by itself: it creates what another fix of the plan names (a Traefik
    /// Middleware), and that fix, which `requires` it, closes the findings.
    Prepares,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Closes => "closes",
            Effect::Narrows => "narrows",
            Effect::Stops => "stops",
            Effect::Contains => "contains",
            Effect::Prepares => "prepares",
        }
    }
}

/// A finding, as a fix names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FindingRef {
    pub rule: String,
    pub severity: Severity,
    pub title: String,
    pub resource: ResourceRef,
}

impl From<&Finding> for FindingRef {
    fn from(f: &Finding) -> Self {
        FindingRef {
            rule: f.rule.clone(),
            severity: f.severity,
            title: f.title.clone(),
            resource: f.resource.clone(),
        }
    }
}

/// One reviewable change.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fix {
    /// A short name of what it does (`clusterip`, `scale-to-zero`), used in file names.
    pub action: &'static str,
    pub method: Method,
    /// The object patched, or the first object applied.
    pub target: ResourceRef,
    /// The merge patch (one document), or the objects to apply.
    pub documents: Vec<Value>,
    /// The findings it is for.
    pub findings: Vec<FindingRef>,
    pub effect: Effect,
    /// What it changes, in words.
    pub changes: String,
    /// What it may break.
    pub breaks: String,
    /// What to check or fill in before applying (placeholders, alternatives).
    pub notes: Vec<String>,
    /// A placeholder must be replaced before it is applied: never applied by `--apply`.
    pub needs_input: bool,
    /// Objects that another fix of the plan creates, to be applied before this one (a Traefik
    /// Middleware that this fix names): not applied by `--apply` unless that fix is.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<ResourceRef>,
}

impl Fix {
    /// Whether it creates (or server-side applies) the object `r`.
    pub fn creates(&self, r: &ResourceRef) -> bool {
        self.method == Method::Apply
            && self.documents.iter().any(|d| {
                let s = |p: &str| d.pointer(p).and_then(Value::as_str);
                s("/apiVersion") == Some(r.api_version.as_str())
                    && s("/kind") == Some(r.kind.as_str())
                    && s("/metadata/name") == Some(r.name.as_str())
                    && s("/metadata/namespace") == r.namespace.as_deref()
            })
    }
}

impl Plan {
    /// The index of the fix that creates `r`: the first in the plan's order.
    pub fn creator_of(&self, r: &ResourceRef) -> Option<usize> {
        self.fixes.iter().position(|f| f.creates(r))
    }
}

/// A finding no fix is written for, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Unfixed {
    pub finding: FindingRef,
    pub reason: String,
}

/// Every fix for a set of findings, and the findings left without one.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Plan {
    pub fixes: Vec<Fix>,
    pub unfixed: Vec<Unfixed>,
}

/// An OpenID Connect provider the Istio gateway should require tokens from.
#[derive(Debug, Clone, Default)]
pub struct Oidc {
    pub issuer: String,
    /// Where its signing keys are; default: from the issuer's discovery document.
    pub jwks_uri: Option<String>,
    pub audiences: Vec<String>,
    /// The client registered with the provider, for fixes that log browsers in (Envoy
    /// Gateway's OIDC); without it those files have placeholders.
    pub client: Option<OidcClient>,
}

/// A client registered with an OpenID Connect provider.
#[derive(Debug, Clone, Default)]
pub struct OidcClient {
    pub id: String,
    /// The Secret holding its secret, in the namespace of each route or Ingress (key
    /// `client-secret` for Envoy Gateway; `clientID` and `clientSecret` for the ALB).
    pub secret: String,
}

/// What the user chose.
#[derive(Debug, Clone, Default)]
pub struct FixOptions {
    /// Keep LoadBalancer Services, limited to these source ranges, instead of ClusterIP.
    pub allow_cidrs: Vec<String>,
    /// The provider for the Istio gateway fix (placeholders and a TODO when absent).
    pub oidc: Option<Oidc>,
    /// The external authentication URL for ingress-nginx Ingresses (oauth2-proxy's
    /// `https://$host/oauth2/auth` with a TODO when absent), and the forwardAuth address of
    /// the Traefik Middleware (oauth2-proxy's `/oauth2/auth` at a TODO namespace when absent;
    /// a TODO too when it holds an nginx variable, which Traefik does not expand).
    pub ingress_auth_url: Option<String>,
    /// Where ingress-nginx sends browsers to sign in.
    pub ingress_auth_signin: Option<String>,
    /// An egress NetworkPolicy for every ML namespace, not only those with a miner.
    pub network_policy_all_ml: bool,
    /// Stop workloads with suspicious findings (download-and-execute, hidden payloads) at
    /// high or above too, not only proven miners.
    pub stop_suspicious: bool,
    /// The time stamp of a stopped Kubeflow Notebook (`kubeflow-resource-stopped`), RFC 3339.
    pub now: String,
}

/// Options that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionError(pub String);

impl std::fmt::Display for OptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OptionError {}

impl FixOptions {
    /// Refuses source ranges that are not CIDRs or open to everyone, and non-HTTPS providers.
    pub fn validate(&self) -> Result<(), OptionError> {
        for c in &self.allow_cidrs {
            let net: ipnet::IpNet = c.trim().parse().map_err(|_| {
                OptionError(format!(
                    "--allow-cidr {c}: not a CIDR (e.g. 203.0.113.0/24)"
                ))
            })?;
            if net.prefix_len() == 0 {
                return Err(OptionError(format!(
                    "--allow-cidr {c}: allows every address; that is the exposure itself"
                )));
            }
        }
        if let Some(c) = self.oidc.as_ref().and_then(|o| o.client.as_ref()) {
            if c.id.trim().is_empty() {
                return Err(OptionError("--oidc-client-id: empty".into()));
            }
            if !jackstop_core::names::is_dns_subdomain(&c.secret) {
                return Err(OptionError(format!(
                    "--oidc-client-secret {}: not a Secret name (lowercase letters, digits, '-' and '.')",
                    c.secret
                )));
            }
        }
        if let Some(o) = &self.oidc {
            for (flag, url) in [
                ("--oidc-issuer", Some(&o.issuer)),
                ("--oidc-jwks-uri", o.jwks_uri.as_ref()),
            ] {
                if let Some(u) = url {
                    if !u.starts_with("https://") || u.len() <= "https://".len() {
                        return Err(OptionError(format!(
                            "{flag} {u}: must be an https:// URL (Istio fetches keys over TLS)"
                        )));
                    }
                }
            }
        }
        for (flag, url) in [
            ("--ingress-auth-url", &self.ingress_auth_url),
            ("--ingress-auth-signin", &self.ingress_auth_signin),
        ] {
            if let Some(u) = url {
                let rest = u
                    .strip_prefix("https://")
                    .or_else(|| u.strip_prefix("http://"))
                    .unwrap_or("");
                if rest.is_empty() || u.contains(char::is_whitespace) {
                    return Err(OptionError(format!(
                        "{flag} {u}: must be an http:// or https:// URL"
                    )));
                }
            }
        }
        if self.ingress_auth_signin.is_some() && self.ingress_auth_url.is_none() {
            return Err(OptionError(
                "--ingress-auth-signin needs --ingress-auth-url".into(),
            ));
        }
        Ok(())
    }
}

/// The fixes for `findings`, which an analysis of `objects` produced.
pub fn plan(findings: &[Finding], objects: &[Object], opts: &FixOptions) -> Plan {
    let mut plan = Plan::default();
    let find = |r: &ResourceRef| {
        objects.iter().find(|o| {
            o.kind == r.kind
                && o.name == r.name
                && o.namespace == r.namespace
                && o.api_version == r.api_version
        })
    };
    for f in findings {
        let object = find(&f.resource);
        let outcome = match f.category {
            jackstop_core::Category::Exposure => {
                exposure::fixes(f, object, objects, findings, opts)
            }
            jackstop_core::Category::Miner => stop::fixes(f, object, opts),
            jackstop_core::Category::Suspicious
                if opts.stop_suspicious && f.severity >= Severity::High =>
            {
                stop::fixes(f, object, opts)
            }
            jackstop_core::Category::Suspicious => Err(
                "suspicious, not a proven miner: review it (see its remediation); jackstop stops it only with --stop-suspicious (high and above)".into(),
            ),
            jackstop_core::Category::Burst => Err(
                "a burst is evidence about its members: their miner findings carry the fixes".into(),
            ),
            _ => Err("no automatic fix for this kind of finding: see its remediation".into()),
        };
        match outcome {
            Ok(fixes) => {
                for fix in fixes {
                    add(&mut plan.fixes, fix);
                }
            }
            Err(reason) => plan.unfixed.push(Unfixed {
                finding: f.into(),
                reason,
            }),
        }
    }
    for fix in egress::fixes(findings, objects, opts) {
        add(&mut plan.fixes, fix);
    }
    plan
}

/// Adds a fix, or the findings of an identical one to it (the same change of the same
/// object, with the same claim: a Middleware that one Ingress already names closes, the same
/// Middleware for an Ingress that does not name it yet only prepares).
fn add(fixes: &mut Vec<Fix>, fix: Fix) {
    if let Some(same) = fixes.iter_mut().find(|f| {
        f.action == fix.action
            && f.target == fix.target
            && f.documents == fix.documents
            && f.effect == fix.effect
            && f.requires == fix.requires
    }) {
        let have: BTreeSet<FindingRef> = same.findings.iter().cloned().collect();
        same.findings
            .extend(fix.findings.into_iter().filter(|f| !have.contains(f)));
        return;
    }
    fixes.push(fix);
}

/// Applies a JSON merge patch (RFC 7386) to `target`: objects merge key by key, `null`
/// removes a key, anything else (arrays included) replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Applies a JSON patch (RFC 6902, a list of operations) to `target`, all or nothing, as the
/// API server does: a failed `test` or a missing path leaves `target` as it was.
pub fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    let ops: json_patch::Patch =
        serde_json::from_value(ops.clone()).map_err(|e| format!("not a JSON patch: {e}"))?;
    json_patch::patch(target, &ops).map_err(|e| e.to_string())
}

/// Label that marks what jackstop created.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "jackstop");
