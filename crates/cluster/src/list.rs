//! Listing: every discovered resource, page by page, several at once.

use crate::discover::Resource;
use crate::{warning, ClusterOptions, Progress, CLUSTER_PATH};
use futures::StreamExt;
use jackstop_core::{FieldLines, InputError, Object, Source};
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::ApiResource;
use serde_json::Value;
use std::sync::Arc;

/// Every object of every resource; a resource that fails becomes a warning (what it listed
/// before failing is kept).
pub async fn list_all(
    client: &kube::Client,
    resources: &[Resource],
    opts: &ClusterOptions,
    progress: &dyn Progress,
) -> (Vec<Object>, Vec<InputError>) {
    let path: Arc<str> = Arc::from(CLUSTER_PATH);
    let results: Vec<(Vec<Object>, Option<InputError>)> =
        futures::stream::iter(resources.iter().map(|r| async {
            let got = list_one(client, r, opts, path.clone(), progress).await;
            progress.listed(r);
            got
        }))
        .buffered(opts.concurrency.max(1))
        .collect()
        .await;
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    for (o, e) in results {
        objects.extend(o);
        errors.extend(e);
    }
    (objects, errors)
}

pub(crate) fn api(
    client: &kube::Client,
    r: &Resource,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    let ar = ApiResource {
        group: r.group.clone(),
        version: r.version.clone(),
        api_version: r.api_version(),
        kind: r.kind.clone(),
        plural: r.plural.clone(),
    };
    match (namespace, r.namespaced) {
        (Some(ns), true) => Api::namespaced_with(client.clone(), ns, &ar),
        _ => Api::all_with(client.clone(), &ar),
    }
}

async fn list_one(
    client: &kube::Client,
    r: &Resource,
    opts: &ClusterOptions,
    path: Arc<str>,
    progress: &dyn Progress,
) -> (Vec<Object>, Option<InputError>) {
    let api = api(client, r, opts.namespace.as_deref());
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(opts.page_size.max(1));
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = match tokio::time::timeout(opts.timeout, api.list(&lp)).await {
            Ok(Ok(page)) => page,
            Ok(Err(e)) => {
                let why = match &e {
                    kube::Error::Api(s) if s.code == 403 => {
                        format!("{} not read: forbidden ({})", r.display(), s.message)
                    }
                    kube::Error::SerdeError(e) => {
                        format!(
                            "{} not read: the API server's answer is not JSON ({e})",
                            r.display()
                        )
                    }
                    _ => format!("{} not read: {e}", r.display()),
                };
                let w = warning(partial(why, out.len()));
                return (out, Some(w));
            }
            Err(_) => {
                let why = format!(
                    "{} not read: no answer within {:?}",
                    r.display(),
                    opts.timeout
                );
                let w = warning(partial(why, out.len()));
                return (out, Some(w));
            }
        };
        progress.page(r, page.items.len());
        for item in page.items {
            if let Some(o) = object(item, r, &path) {
                out.push(o);
            }
        }
        match page.metadata.continue_ {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => break,
        }
    }
    (out, None)
}

fn partial(why: String, got: usize) -> String {
    if got == 0 {
        why
    } else {
        format!("{why} (the {got} object(s) listed before are kept)")
    }
}

/// A listed item as an object: list items may lack `apiVersion` and `kind`, which the resource
/// supplies; the location is the cluster.
pub(crate) fn object(item: DynamicObject, r: &Resource, path: &Arc<str>) -> Option<Object> {
    let mut body = serde_json::to_value(&item).ok()?;
    if let Value::Object(m) = &mut body {
        m.insert("apiVersion".into(), Value::String(r.api_version()));
        m.insert("kind".into(), Value::String(r.kind.clone()));
    }
    Object::from_value(
        body,
        Source {
            path: path.clone(),
            line: 0,
            template: None,
        },
        FieldLines::default(),
    )
}
