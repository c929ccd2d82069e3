//! Writing to a live cluster, for `jackstop fix --apply` only: JSON merge patches and JSON
//! patches of existing objects and server-side apply of new ones, each first as a server-side dry run
//! (`dryRun=All`), which runs admission and validation without persisting anything.

use crate::{client, ClusterError, ClusterOptions};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::Value;

/// The field manager jackstop's writes are recorded under (`metadata.managedFields`).
pub const FIELD_MANAGER: &str = "jackstop";

/// One change to send.
#[derive(Debug, Clone)]
pub enum Change {
    /// A JSON merge patch of the object named by `apiVersion`, `kind`, `namespace`, `name`.
    Merge {
        api_version: String,
        kind: String,
        namespace: Option<String>,
        name: String,
        patch: Value,
    },
    /// A JSON patch (RFC 6902: a list of operations) of the object named the same way.
    Json {
        api_version: String,
        kind: String,
        namespace: Option<String>,
        name: String,
        ops: Value,
    },
    /// A whole object, server-side applied (created, or updated in the fields jackstop owns).
    Apply(Value),
}

impl Change {
    fn target(&self) -> (String, String, Option<String>, String) {
        match self {
            Change::Merge {
                api_version,
                kind,
                namespace,
                name,
                ..
            }
            | Change::Json {
                api_version,
                kind,
                namespace,
                name,
                ..
            } => (
                api_version.clone(),
                kind.clone(),
                namespace.clone(),
                name.clone(),
            ),
            Change::Apply(v) => {
                let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
                (
                    s("/apiVersion").unwrap_or_default(),
                    s("/kind").unwrap_or_default(),
                    s("/metadata/namespace"),
                    s("/metadata/name").unwrap_or_default(),
                )
            }
        }
    }
}

/// What the server answered to one change.
#[derive(Debug, Clone)]
pub struct Sent {
    /// `Kind namespace/name`.
    pub name: String,
    /// The object as the server stored it, or would store it (dry run).
    pub object: Value,
}

/// A connection to the cluster for a run of sends: one runtime and one client (the kubeconfig
/// read and any credential plugin run once, connections kept), for `--apply`'s dry run and the
/// writes that follow it fix by fix. The CLI is synchronous.
pub struct Session {
    rt: tokio::runtime::Runtime,
    client: kube::Client,
    timeout: std::time::Duration,
}

impl Session {
    pub fn open(opts: &ClusterOptions) -> Result<Session, ClusterError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ClusterError::Runtime)?;
        let (client, _server) = rt.block_on(client(opts, opts.timeout))?;
        Ok(Session {
            rt,
            client,
            timeout: opts.timeout,
        })
    }

    /// Sends each change (as a dry run when `dry_run`); one result per change, in order: what
    /// the server answered, or why it refused.
    pub fn send(&self, changes: &[Change], dry_run: bool) -> Vec<Result<Sent, String>> {
        self.rt.block_on(async {
            let mut out = Vec::new();
            for change in changes {
                out.push(send_one(&self.client, change, dry_run, self.timeout).await);
            }
            out
        })
    }
}

async fn send_one(
    client: &kube::Client,
    change: &Change,
    dry_run: bool,
    timeout: std::time::Duration,
) -> Result<Sent, String> {
    let (api_version, kind, namespace, name) = change.target();
    let (group, version) = match api_version.rsplit_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), api_version.clone()),
    };
    let gvk = GroupVersionKind::gvk(&group, &version, &kind);
    let work = async {
        let (ar, caps) = kube::discovery::pinned_kind(client, &gvk)
            .await
            .map_err(|e| format!("the cluster does not serve {kind} ({api_version}): {e}"))?;
        let api: Api<DynamicObject> = match (&namespace, caps.scope) {
            (Some(ns), kube::discovery::Scope::Namespaced) => {
                Api::namespaced_with(client.clone(), ns, &ar)
            }
            _ => Api::all_with(client.clone(), &ar),
        };
        let result = match change {
            Change::Merge { patch, .. } => {
                let pp = PatchParams {
                    dry_run,
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..PatchParams::default()
                };
                api.patch(&name, &pp, &Patch::Merge(patch)).await
            }
            Change::Json { ops, .. } => {
                let ops: json_patch::Patch = serde_json::from_value(ops.clone())
                    .map_err(|e| format!("not a JSON patch: {e}"))?;
                let pp = PatchParams {
                    dry_run,
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..PatchParams::default()
                };
                api.patch(&name, &pp, &Patch::<()>::Json(ops)).await
            }
            Change::Apply(obj) => {
                let mut pp = PatchParams::apply(FIELD_MANAGER);
                pp.dry_run = dry_run;
                api.patch(&name, &pp, &Patch::Apply(obj)).await
            }
        };
        match result {
            Ok(o) => Ok(Sent {
                name: format!(
                    "{kind} {}{name}",
                    o.metadata
                        .namespace
                        .as_deref()
                        .map(|n| format!("{n}/"))
                        .unwrap_or_default()
                ),
                object: serde_json::to_value(&o).unwrap_or(Value::Null),
            }),
            Err(kube::Error::Api(s)) => Err(format!("{} ({} {})", s.message, s.code, s.reason)),
            Err(e) => Err(e.to_string()),
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", timeout.as_secs())))
}
