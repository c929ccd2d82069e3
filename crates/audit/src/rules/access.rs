//! Who acted without authorisation or beyond it: requests that succeeded without
//! authentication (JS-AUD-004), exec and attach into pods (JS-AUD-006), and bindings that
//! give dashboards and pipelines cluster-wide power (JS-AUD-007).

use super::{finding, object_field, Ctx};
use jackstop_catalogue::Catalogue;
use jackstop_core::{Location, ResourceRef, Severity};
use serde_json::Value;
use std::collections::BTreeMap;

/// Most request URIs listed for one source of anonymous reads.
const MAX_SAMPLES: usize = 5;

/// Anonymous reads, counted per source address until the end (of a file), or until the
/// source has been quiet for a while (a live stream, [`AccessState::flush_idle`]).
#[derive(Default)]
pub struct AccessState {
    reads: BTreeMap<String, AnonymousReads>,
}

struct AnonymousReads {
    count: u64,
    first: String,
    last: String,
    /// When the latest read arrived, by the wall clock (for a live stream).
    seen: std::time::Instant,
    samples: Vec<String>,
    location: Location,
    resource: ResourceRef,
    detail: Value,
    who: String,
    ids: Vec<String>,
}

/// Most audit IDs listed for one source of anonymous reads.
const MAX_IDS: usize = 50;

impl AccessState {
    pub fn event(&mut self, ctx: &mut Ctx<'_, '_, '_>, after: Option<&Value>) {
        let e = ctx.e;
        if e.is_unauthenticated() {
            self.anonymous(ctx);
        }
        if e.resource() == "pods" && matches!(e.subresource(), "exec" | "attach" | "portforward") {
            exec(ctx);
        }
        if matches!(e.resource(), "clusterrolebindings" | "rolebindings")
            && matches!(e.verb(), "create" | "update" | "patch")
            && e.subresource().is_empty()
        {
            binding(ctx, after);
        }
    }

    fn anonymous(&mut self, ctx: &mut Ctx<'_, '_, '_>) {
        let e = ctx.e;
        let uri = e.request_uri.as_deref().unwrap_or("");
        let resource_request = !e.resource().is_empty();
        if !resource_request && ctx.cat.audit.anonymous_may(uri) {
            return;
        }
        let change = matches!(
            e.verb(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        ) || !e.subresource().is_empty()
            && matches!(e.subresource(), "exec" | "attach" | "portforward" | "proxy");
        let resource = if resource_request {
            e.resource_ref(None)
        } else {
            ResourceRef {
                api_version: String::new(),
                kind: "NonResourceURL".into(),
                namespace: None,
                name: uri.split('?').next().unwrap_or(uri).to_string(),
            }
        };
        if change {
            let title = format!(
                "{} {} without authentication succeeded",
                e.verb(),
                if resource_request {
                    resource.to_string()
                } else {
                    uri.to_string()
                }
            );
            let evidence = vec![format!(
                "user {} (groups {})",
                e.username(),
                e.effective_user().groups.join(", ")
            )];
            ctx.report(
                "JS-AUD-004",
                Severity::Critical,
                title,
                resource,
                None,
                evidence,
            );
            return;
        }
        let source = e
            .source_ips
            .first()
            .map(|s| s.to_string())
            .unwrap_or_else(|| "(no source IP)".into());
        let time = e.time().unwrap_or("").to_string();
        let r = self.reads.entry(source).or_insert_with(|| AnonymousReads {
            count: 0,
            first: time.clone(),
            last: time.clone(),
            seen: std::time::Instant::now(),
            samples: Vec::new(),
            location: Location {
                path: ctx.at.path.to_string(),
                line: ctx.at.line as u32,
                field: None,
                template: None,
            },
            resource,
            detail: e.detail(),
            who: e.who_line(),
            ids: Vec::new(),
        });
        r.count += 1;
        r.seen = std::time::Instant::now();
        if r.ids.len() < MAX_IDS {
            r.ids.push(e.audit_id.as_deref().unwrap_or("").to_string());
        }
        r.last = time;
        let sample = format!("{} {}", e.verb().to_uppercase(), uri);
        if r.samples.len() < MAX_SAMPLES && !r.samples.contains(&sample) {
            r.samples.push(sample);
        }
    }

    /// One finding per source of anonymous reads.
    pub fn finish(self, cat: &Catalogue) -> Vec<jackstop_core::Finding> {
        self.reads
            .into_iter()
            .map(|(source, r)| r.judge(&source, cat))
            .collect()
    }

    /// One finding per source that has read nothing for `quiet`; a later read from it starts
    /// a new count.
    pub fn flush_idle(
        &mut self,
        quiet: std::time::Duration,
        cat: &Catalogue,
    ) -> Vec<jackstop_core::Finding> {
        let idle: Vec<String> = self
            .reads
            .iter()
            .filter(|(_, r)| r.seen.elapsed() >= quiet)
            .map(|(s, _)| s.clone())
            .collect();
        idle.into_iter()
            .filter_map(|s| self.reads.remove(&s).map(|r| r.judge(&s, cat)))
            .collect()
    }
}

impl AnonymousReads {
    fn judge(mut self, source: &str, cat: &Catalogue) -> jackstop_core::Finding {
        self.detail["auditIDs"] = serde_json::json!(self.ids);
        let mut evidence = vec![
            self.who,
            format!(
                "{} read(s) without authentication succeeded from {source} between {} and {}",
                self.count, self.first, self.last
            ),
        ];
        evidence.extend(self.samples.iter().map(|s| format!("e.g. {s}")));
        finding(
            cat,
            "JS-AUD-004",
            Severity::High,
            format!(
                "{} read(s) without authentication succeeded from {source}",
                self.count
            ),
            self.resource,
            self.location,
            evidence,
            Some(self.detail),
        )
    }
}

fn exec(ctx: &mut Ctx<'_, '_, '_>) {
    let e = ctx.e;
    let u = e.effective_user();
    let machine = u
        .username
        .as_deref()
        .is_some_and(|n| n.starts_with("system:serviceaccount:"))
        || e.is_unauthenticated();
    let severity = if machine {
        Severity::High
    } else {
        Severity::Medium
    };
    let uri = e.request_uri.as_deref().unwrap_or("");
    let query = uri.split_once('?').map(|(_, q)| q).unwrap_or("");
    let commands: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.into_owned())
        .collect();
    let resource = e.resource_ref(Some("Pod"));
    let title = format!(
        "{} into Pod {} by {}",
        e.subresource(),
        resource.name,
        e.actor()
    );
    let mut evidence = Vec::new();
    if !commands.is_empty() {
        evidence.push(format!("command: {}", commands.join(" ")));
    }
    ctx.report("JS-AUD-006", severity, title, resource, None, evidence);
}

fn binding(ctx: &mut Ctx<'_, '_, '_>, after: Option<&Value>) {
    let Some(b) = after else { return };
    let role = b
        .pointer("/roleRef/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let audit = &ctx.cat.audit;
    if !audit.privileged_roles.iter().any(|r| r == role) {
        return;
    }
    let binding_ns = b
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut worst: Option<(Severity, String)> = None;
    for s in b
        .get("subjects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let kind = s.get("kind").and_then(Value::as_str).unwrap_or("");
        let name = s.get("name").and_then(Value::as_str).unwrap_or("");
        let (sev, who) = match kind {
            "ServiceAccount" => {
                let ns = s
                    .get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(binding_ns);
                let id = format!("{ns}/{name}");
                if audit.is_ml_service_account(&id) {
                    (
                        Severity::Critical,
                        format!("the dashboard/pipeline service account {id}"),
                    )
                } else if role == "cluster-admin" {
                    (Severity::High, format!("the service account {id}"))
                } else {
                    continue;
                }
            }
            "Group" | "User" if audit.open_groups.iter().any(|g| g == name) => {
                (Severity::Critical, format!("{kind} {name} (everyone)"))
            }
            _ => continue,
        };
        if worst.as_ref().is_none_or(|(w, _)| sev > *w) {
            worst = Some((sev, who));
        }
    }
    let Some((severity, who)) = worst else { return };
    let kind = b
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("ClusterRoleBinding")
        .to_string();
    let resource = ctx.e.resource_ref(Some(&kind));
    let scope = if kind == "ClusterRoleBinding" {
        "cluster-wide"
    } else {
        "in its namespace"
    };
    let title = format!("{kind} {} gives {role} {scope} to {who}", resource.name);
    let field = format!("{}.subjects", object_field(ctx.e));
    ctx.report(
        "JS-AUD-007",
        severity,
        title,
        resource,
        Some(field),
        vec![format!("roleRef {role}; subject {who}")],
    );
}
