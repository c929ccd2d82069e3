//! Kubernetes objects as read from an input, with where each came from.
//!
//! The body is kept as untyped JSON on purpose: manifests in the wild are often slightly
//! wrong (a port given as a string, an unknown field), and a security scanner must still read
//! them. Analysers use the small accessors below instead of typed structs.

use crate::ResourceRef;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// The kind given to documents that are not Kubernetes objects (a docker-compose file, a miner's
/// `config.json`, a CloudFormation template) when an analyser asks for them: they are still
/// counted as skipped, but their text can carry the same indicators as a container spec.
pub const DOCUMENT_KIND: &str = "Document";

/// Where a document came from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Source {
    /// The path as the user gave it (or `-` for stdin, or `cluster` for live objects).
    pub path: Arc<str>,
    /// 1-based line of the document's (or list item's) first line; 0 when unknown.
    pub line: u32,
    /// Helm's `# Source: chart/templates/x.yaml` comment, when the document had one.
    pub template: Option<Arc<str>>,
}

/// The line of each field of an object, keyed by field path (`spec.ports[0].nodePort`).
/// Empty for inputs without lines (live objects).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldLines(HashMap<Box<str>, u32>);

impl FieldLines {
    pub fn insert(&mut self, path: String, line: u32) {
        self.0.insert(path.into_boxed_str(), line);
    }

    /// The line of `path`, or of its nearest recorded ancestor (`spec.ports[0]`, then `spec`).
    pub fn line_of(&self, path: &str) -> Option<u32> {
        let mut p = path;
        loop {
            if let Some(l) = self.0.get(p) {
                return Some(*l);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One Kubernetes (or Kubernetes-like) object.
#[derive(Debug, Clone)]
pub struct Object {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub body: Value,
    pub source: Source,
    pub fields: FieldLines,
}

impl Object {
    /// Builds an object from a JSON body. `None` when the body has no string `kind`.
    pub fn from_value(body: Value, source: Source, fields: FieldLines) -> Option<Object> {
        let kind = body.get("kind")?.as_str()?.to_string();
        let api_version = body
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let meta = body.get("metadata");
        let namespace = meta
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let name = meta
            .and_then(|m| m.get("name").or_else(|| m.get("generateName")))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Some(Object {
            api_version,
            kind,
            namespace,
            name,
            body,
            source,
            fields,
        })
    }

    pub fn resource(&self) -> ResourceRef {
        ResourceRef {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    /// The namespace used to resolve references: what the object says, else `default`
    /// (what `kubectl apply` without `-n` would use).
    pub fn effective_namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }

    /// The API group (`networking.istio.io`), empty for the core group.
    pub fn group(&self) -> &str {
        match self.api_version.rsplit_once('/') {
            Some((g, _)) => g,
            None => "",
        }
    }

    /// `kind namespace/name` for evidence lines.
    pub fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {}/{}", self.kind, ns, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }

    pub fn at(&self, path: &str) -> Option<&Value> {
        value_at(&self.body, path)
    }

    pub fn str_at(&self, path: &str) -> Option<&str> {
        self.at(path).and_then(Value::as_str)
    }

    /// The owner reference marked `controller: true`: the object that made this one from its
    /// template (a ReplicaSet for its Pods, a Deployment for its ReplicaSets).
    pub fn controller_ref(&self) -> Option<&Value> {
        self.at("metadata.ownerReferences")?
            .as_array()?
            .iter()
            .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
    }

    /// What a policy attaches to (Gateway API policy attachment: Envoy Gateway's
    /// SecurityPolicy, Istio's AuthorizationPolicy), as (kind, name): `spec.targetRefs` and the
    /// older single `spec.targetRef`.
    pub fn target_refs(&self) -> Vec<(String, String)> {
        let mut refs: Vec<&Value> = self
            .at("spec.targetRefs")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        refs.extend(self.at("spec.targetRef"));
        refs.iter()
            .filter_map(|r| {
                Some((
                    r.get("kind")?.as_str()?.to_string(),
                    r.get("name")?.as_str()?.to_string(),
                ))
            })
            .collect()
    }

    /// Whether this Gateway API route names `gateway` among its `spec.parentRefs` (kind
    /// Gateway by default, the route's namespace by default).
    pub fn attached_to(&self, gateway: &Object) -> bool {
        let own_ns = self.effective_namespace();
        self.at("spec.parentRefs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|p| {
                p.get("kind").and_then(Value::as_str).unwrap_or("Gateway") == "Gateway"
                    && p.get("namespace").and_then(Value::as_str).unwrap_or(own_ns)
                        == gateway.effective_namespace()
                    && p.get("name").and_then(Value::as_str) == Some(gateway.name.as_str())
            })
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.body
            .get("metadata")?
            .get("annotations")?
            .get(key)?
            .as_str()
    }

    pub fn labels(&self) -> Option<&serde_json::Map<String, Value>> {
        self.body.get("metadata")?.get("labels")?.as_object()
    }

    /// The line of a field path, falling back to the document's first line.
    pub fn line_of(&self, path: &str) -> u32 {
        self.fields.line_of(path).unwrap_or(self.source.line)
    }
}

/// Appends a key to a field path the way every jackstop field path is written: `.name` for
/// plain words, `["a.b/c"]` for keys that are not (so that `data["config.json"]` stays one key).
pub fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&serde_json::to_string(key).unwrap_or_default());
        path.push(']');
    }
}

/// Follows a dotted path (`spec.template.spec`; no indices) through maps.
pub fn value_at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        cur = cur.get(seg)?;
    }
    Some(cur)
}

/// A scalar as text: strings as they are, numbers and booleans printed. Manifests often give
/// numbers as strings and the reverse.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A port number given as a number or as a numeric string.
pub fn port_number(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn line_of_falls_back_to_ancestors() {
        let mut f = FieldLines::default();
        f.insert("spec".into(), 5);
        f.insert("spec.ports[0]".into(), 7);
        assert_eq!(f.line_of("spec.ports[0].nodePort"), Some(7));
        assert_eq!(f.line_of("spec.type"), Some(5));
        assert_eq!(f.line_of("metadata.name"), None);
    }

    #[test]
    fn object_without_kind_is_not_an_object() {
        assert!(
            Object::from_value(json!({"a": 1}), Source::default(), FieldLines::default()).is_none()
        );
        let o = Object::from_value(
            json!({"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"generateName": "g-"}}),
            Source::default(),
            FieldLines::default(),
        )
        .unwrap();
        assert_eq!(o.group(), "networking.istio.io");
        assert_eq!(o.name, "g-");
        assert_eq!(o.effective_namespace(), "default");
    }
}
