//! Workloads created or changed with miner or suspicious content: the miner analysis of
//! manifests and live clusters, run on the object the request produced (a Notebook whose image
//! was patched to a miner is found through its patch). What the cluster creates in response
//! (a ReplicaSet for a Deployment, its Pods) is left out: its owner's creation is the step.

use super::{object_field, Ctx};
use jackstop_analysers::miners::MinerAnalyser;
use jackstop_analysers::Analyser;
use jackstop_core::{Category, FieldLines, InputError, Object, Source};
use serde_json::Value;
use std::sync::Arc;

/// Analyses the request's object (lent to the analysis, not copied: it is back in `after`
/// when this returns); whether a miner was found.
pub fn event(
    miners: &MinerAnalyser,
    ctx: &mut Ctx<'_, '_, '_>,
    after: &mut Option<Value>,
    notes: &mut Vec<InputError>,
) -> bool {
    let e = ctx.e;
    if !matches!(e.verb(), "create" | "update" | "patch") {
        return false;
    }
    if !matches!(e.subresource(), "" | "ephemeralcontainers") {
        return false;
    }
    let Some(obj) = after.as_ref() else {
        return false;
    };
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    if !miners.kinds().contains(&kind)
        || controlled(obj)
        || ctx.cat.audit.is_controller(e.username())
    {
        return false;
    }
    if e.verb() != "create" && ctx.cat.audit.is_reconciler(e.username()) {
        return false;
    }
    let source = Source {
        path: Arc::from(ctx.at.path),
        line: ctx.at.line as u32,
        template: None,
    };
    // Its kind is one the miner analysis reads: a string, which is all `from_value` asks.
    let body = after.take().expect("checked above");
    let Some(object) = Object::from_value(body, source, FieldLines::default()) else {
        return false;
    };
    let (found, n) = miners.analyse_noted(std::slice::from_ref(&object), ctx.cat);
    *after = Some(object.body);
    notes.extend(n);
    let prefix = object_field(e);
    let mut miner = false;
    for mut f in found {
        if f.category == Category::Burst {
            continue;
        }
        miner |= f.category == Category::Miner;
        f.location.path = ctx.at.path.to_string();
        f.location.line = ctx.at.line as u32;
        f.location.field = Some(match f.location.field.take() {
            Some(field) => format!("{prefix}.{field}"),
            None => prefix.to_string(),
        });
        f.evidence.insert(0, e.who_line());
        let mut detail = e.detail();
        if let (Some(Value::Object(d)), Value::Object(extra)) = (f.detail.take(), &mut detail) {
            for (k, v) in d {
                extra.entry(k).or_insert(v);
            }
        }
        f.detail = Some(detail);
        ctx.out.push(f);
    }
    miner
}

/// Whether another object controls this one (it is the cluster's reaction, not a request).
pub fn controlled(obj: &Value) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        })
}
