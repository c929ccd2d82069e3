//! The texts of one Kubernetes-shaped container: its command line (with `$(VAR)` expanded),
//! env (with ConfigMap lookups, never Secrets), mounted ConfigMaps, hooks, probes, script.

use super::walk::{join_index, join_key};
use super::{Extractor, RunText, Runnable, TextRole};
use jackstop_core::object::scalar_text;
use jackstop_core::Object;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// A volume in scope of a container: its field path and its value.
pub type Volume<'v> = (String, &'v Value);

/// The volumes of a list (`spec.volumes`), with their field paths.
pub fn volumes_of<'v>(list: Option<&'v Value>, field: &str) -> Vec<Volume<'v>> {
    list.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .enumerate()
                .map(|(i, v)| (join_index(field, i), v))
                .collect()
        })
        .unwrap_or_default()
}

fn str_of<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// Expands `$(VAR)` the way the kubelet does: `$$` is an escaped `$`, unknown variables and
/// incomplete references stay as they are.
pub fn expand(input: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(input.len());
    expand_into(&mut out, input, vars);
    out
}

/// [`expand`], appended to `out` (a command line is built part by part into one text).
fn expand_into(out: &mut String, input: &str, vars: &HashMap<String, String>) {
    if !input.contains('$') {
        out.push_str(input);
        return;
    }
    let b = input.as_bytes();
    let mut checkpoint = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            out.push_str(&input[checkpoint..i]);
            match b[i + 1] {
                b'$' => {
                    out.push('$');
                    i += 2;
                }
                b'(' => match input[i + 2..].find(')') {
                    Some(end) => {
                        let name = &input[i + 2..i + 2 + end];
                        match vars.get(name) {
                            Some(v) => out.push_str(v),
                            None => {
                                out.push_str("$(");
                                out.push_str(name);
                                out.push(')');
                            }
                        }
                        i += 2 + end + 1;
                    }
                    None => {
                        out.push_str("$(");
                        i += 2;
                    }
                },
                _ => {
                    out.push('$');
                    i += 1;
                }
            }
            checkpoint = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&input[checkpoint..]);
}

/// The elements of a string list (a lone string counts as one element at the list's own
/// path); non-scalars are skipped, keeping the indices of the others.
fn elements(v: Option<&Value>, field: &str) -> Vec<(String, String)> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .filter_map(|(i, e)| scalar_text(e).map(|t| (join_index(field, i), t)))
            .collect(),
        Some(s @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => scalar_text(s)
            .map(|t| vec![(field.to_string(), t)])
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The elements of the string list at `key` of `v` (whose path is `field`); the list's path is
/// made only when there is one.
fn list_at(v: &Value, field: &str, key: &str) -> Vec<(String, String)> {
    match v.get(key) {
        None => Vec::new(),
        list => elements(list, &join_key(field, key)),
    }
}

/// Joins parts with single spaces, recording where each starts. `None` when there are none.
pub fn joined(
    role: TextRole,
    label: &str,
    parts: Vec<(String, String)>,
    vars: &HashMap<String, String>,
) -> Option<RunText> {
    let first = parts.first()?.0.clone();
    let mut text = String::with_capacity(parts.iter().map(|(_, p)| p.len() + 1).sum());
    let mut offsets = Vec::with_capacity(parts.len());
    for (field, part) in parts {
        if !offsets.is_empty() {
            text.push(' ');
        }
        offsets.push((text.len(), field));
        expand_into(&mut text, &part, vars);
    }
    Some(RunText {
        role,
        field: first,
        text,
        parts: offsets,
        label: label.to_string(),
    })
}

/// Whether a resource quantity asks for something (absent, unparsable or positive).
fn positive(v: &Value) -> bool {
    match scalar_text(v) {
        Some(t) => t
            .trim()
            .parse::<f64>()
            .map_or(!t.trim().is_empty(), |n| n > 0.0),
        None => !v.is_null(),
    }
}

/// Whether a resource name is a GPU.
pub fn gpu_resource(name: &str) -> bool {
    name.contains("nvidia.com/gpu")
        || name.contains("amd.com/gpu")
        || name.contains("gpu.intel.com/")
        || name.contains("nvidia.com/mig-")
}

/// GPU requests in a `resources` block: Kubernetes limits/requests, or a KFP accelerator.
pub fn resources_gpu(r: Option<&Value>) -> bool {
    let Some(r) = r else { return false };
    let k8s = ["limits", "requests"].iter().any(|k| {
        r.get(k)
            .and_then(Value::as_object)
            .is_some_and(|m| m.iter().any(|(n, q)| gpu_resource(n) && positive(q)))
    });
    k8s || r.get("accelerator").is_some_and(kfp_accelerator)
}

fn kfp_accelerator(a: &Value) -> bool {
    match a {
        Value::String(s) => !s.trim().is_empty(),
        Value::Object(m) => {
            let count = ["count", "resourceCount"]
                .iter()
                .filter_map(|k| m.get(*k))
                .next();
            if count.is_some_and(|c| !positive(c)) {
                return false;
            }
            ["type", "resourceType"].iter().any(|k| {
                m.get(*k)
                    .and_then(scalar_text)
                    .is_some_and(|t| !t.is_empty())
            }) || count.is_some()
        }
        _ => false,
    }
}

fn single(role: TextRole, field: String, text: String, label: String) -> RunText {
    RunText {
        role,
        parts: vec![(0, field.clone())],
        field,
        text,
        label,
    }
}

impl<'a> Extractor<'a> {
    /// The ConfigMap `name` in the owner's namespace, or a note that it is not in the input.
    fn configmap(&mut self, owner: &'a Object, name: &str, from: &str) -> Option<&'a Object> {
        let ns = owner.effective_namespace();
        let mut found = self
            .configmaps
            .get(&(ns.to_string(), name.to_string()))
            .copied();
        // A workload without a namespace is applied with `-n`: the one ConfigMap of that name
        // in the input is the one it will read.
        if found.is_none() && owner.namespace.is_none() {
            let mut same_name = self.configmaps.iter().filter(|((_, n), _)| n == name);
            if let (Some((_, cm)), None) = (same_name.next(), same_name.next()) {
                found = Some(*cm);
            }
        }
        if found.is_none() {
            self.notes.push((
                owner,
                format!("{from}: ConfigMap {ns}/{name} is not in the input; its data was not read"),
            ));
        }
        found
    }

    /// One runnable from a Kubernetes-shaped container at `field`.
    pub(super) fn container(
        &mut self,
        owner: &'a Object,
        c: &Value,
        field: &str,
        name: &str,
        volumes: &[Volume<'_>],
    ) -> Runnable<'a> {
        let mut texts = Vec::new();
        let mut vars: HashMap<String, String> = HashMap::new();
        let mut env_texts = Vec::new();

        // envFrom first: env entries override what it brings.
        if let Some(list) = c.get("envFrom").and_then(Value::as_array) {
            let base = join_key(field, "envFrom");
            for (i, e) in list.iter().enumerate() {
                let Some(cm) = e.get("configMapRef").and_then(|r| str_of(r, "name")) else {
                    continue; // secretRef and anything else: never read
                };
                let prefix = str_of(e, "prefix").unwrap_or_default();
                let reff = join_key(&join_index(&base, i), "configMapRef");
                if let Some(o) = self.configmap(owner, cm, &reff) {
                    for (k, v) in data_of(o) {
                        let var = format!("{prefix}{k}");
                        vars.insert(var.clone(), v.clone());
                        env_texts.push(single(
                            TextRole::Env,
                            reff.clone(),
                            v,
                            format!("env {var} from ConfigMap {}", cm_key(o, &k)),
                        ));
                    }
                }
            }
        }
        if let Some(list) = c.get("env").and_then(Value::as_array) {
            let base = join_key(field, "env");
            for (i, e) in list.iter().enumerate() {
                let ef = join_index(&base, i);
                let var = str_of(e, "name").unwrap_or_default().to_string();
                if let Some(v) = e.get("value").and_then(scalar_text) {
                    vars.insert(var.clone(), expand(&v, &vars));
                    env_texts.push(single(
                        TextRole::Env,
                        join_key(&ef, "value"),
                        v,
                        format!("env {var}"),
                    ));
                    continue;
                }
                let Some(r) = e.get("valueFrom").and_then(|f| f.get("configMapKeyRef")) else {
                    continue; // secretKeyRef, fieldRef, resourceFieldRef: nothing to read
                };
                let (Some(cm), Some(key)) = (str_of(r, "name"), str_of(r, "key")) else {
                    continue;
                };
                let reff = join_key(&join_key(&ef, "valueFrom"), "configMapKeyRef");
                if let Some(o) = self.configmap(owner, cm, &reff) {
                    if let Some(v) = o
                        .body
                        .get("data")
                        .and_then(|d| d.get(key))
                        .and_then(scalar_text)
                    {
                        vars.insert(var.clone(), v.clone());
                        env_texts.push(single(
                            TextRole::Env,
                            reff,
                            v,
                            format!("env {var} from ConfigMap {}", cm_key(o, key)),
                        ));
                    }
                }
            }
        }

        let mut words = list_at(c, field, "command");
        words.extend(list_at(c, field, "args"));
        texts.extend(joined(
            TextRole::CommandLine,
            "command and args",
            words,
            &vars,
        ));
        for key in ["source", "script"] {
            if let Some(s) = c.get(key).and_then(scalar_text) {
                texts.push(single(
                    TextRole::Script,
                    join_key(field, key),
                    s,
                    "script source".into(),
                ));
            }
        }
        texts.extend(env_texts);

        // ConfigMaps mounted as volumes.
        let mounted: HashSet<&str> = c
            .get("volumeMounts")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|m| str_of(m, "name")).collect())
            .unwrap_or_default();
        for (vf, vol) in volumes {
            let Some(vname) = str_of(vol, "name") else {
                continue;
            };
            if !mounted.contains(vname) {
                continue;
            }
            let mut refs = Vec::new();
            if let Some(cm) = vol.get("configMap").and_then(|m| str_of(m, "name")) {
                refs.push((join_key(&join_key(vf, "configMap"), "name"), cm));
            }
            if let Some(sources) = vol
                .get("projected")
                .and_then(|p| p.get("sources"))
                .and_then(Value::as_array)
            {
                let base = join_key(&join_key(vf, "projected"), "sources");
                for (j, s) in sources.iter().enumerate() {
                    if let Some(cm) = s.get("configMap").and_then(|m| str_of(m, "name")) {
                        let f = join_key(&join_key(&join_index(&base, j), "configMap"), "name");
                        refs.push((f, cm));
                    }
                }
            }
            for (f, cm) in refs {
                if let Some(o) = self.configmap(owner, cm, &f) {
                    texts.extend(config_map_texts(o, &f));
                }
            }
        }

        // Hooks and probes (their paths and labels made only for those there).
        for hook in ["postStart", "preStop"] {
            let Some(exec) = c
                .get("lifecycle")
                .and_then(|l| l.get(hook))
                .and_then(|h| h.get("exec"))
            else {
                continue;
            };
            let hf = join_key(&join_key(&join_key(field, "lifecycle"), hook), "exec");
            let parts = list_at(exec, &hf, "command");
            texts.extend(joined(
                TextRole::Hook,
                &format!("{hook} hook"),
                parts,
                &vars,
            ));
        }
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
            let Some(exec) = c.get(probe).and_then(|p| p.get("exec")) else {
                continue;
            };
            let pf = join_key(&join_key(field, probe), "exec");
            let parts = list_at(exec, &pf, "command");
            texts.extend(joined(
                TextRole::Probe,
                &format!("{probe} command"),
                parts,
                &vars,
            ));
        }

        let gpu = resources_gpu(c.get("resources")) || resources_gpu(c.get("resourcesPerNode"));
        Runnable {
            owner,
            field: field.to_string(),
            name: name.to_string(),
            image: c.get("image").and_then(scalar_text),
            texts,
            gpu,
            namespace: owner.effective_namespace().to_string(),
        }
    }

    /// ConfigMaps named in a Spark role's `configMaps: [{name, path}]`.
    pub(super) fn named_configmaps(
        &mut self,
        owner: &'a Object,
        list: Option<&Value>,
        field: &str,
    ) -> Vec<RunText> {
        let mut texts = Vec::new();
        let Some(a) = list.and_then(Value::as_array) else {
            return texts;
        };
        for (i, e) in a.iter().enumerate() {
            let Some(cm) = str_of(e, "name") else {
                continue;
            };
            let f = join_key(&join_index(field, i), "name");
            if let Some(o) = self.configmap(owner, cm, &f) {
                texts.extend(config_map_texts(o, &f));
            }
        }
        texts
    }
}

/// `ns/name key K` for labels.
/// Every data value of a ConfigMap a runnable reads, as texts at the field that references it.
fn config_map_texts(o: &Object, field: &str) -> Vec<RunText> {
    data_of(o)
        .into_iter()
        .map(|(k, v)| {
            single(
                TextRole::ConfigMap,
                field.to_string(),
                v,
                format!("ConfigMap {}", cm_key(o, &k)),
            )
        })
        .collect()
}

fn cm_key(o: &Object, key: &str) -> String {
    format!("{}/{} key {key}", o.effective_namespace(), o.name)
}

/// A ConfigMap's `data` (never `binaryData`) as (key, value).
fn data_of(o: &Object) -> Vec<(String, String)> {
    o.body
        .get("data")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| scalar_text(v).map(|t| (k.clone(), t)))
                .collect()
        })
        .unwrap_or_default()
}

/// A single-field text.
pub fn text(role: TextRole, field: String, text: String, label: String) -> RunText {
    single(role, field, text, label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_the_kubelet() {
        let vars: HashMap<String, String> =
            [("A".to_string(), "x".to_string())].into_iter().collect();
        assert_eq!(expand("$(A)-$(B)", &vars), "x-$(B)");
        assert_eq!(expand("$$(A) $$ $ $x $(", &vars), "$(A) $ $ $x $(");
        assert_eq!(expand("end$", &vars), "end$");
        assert_eq!(expand("é$(A)é", &vars), "éxé");
    }
}
