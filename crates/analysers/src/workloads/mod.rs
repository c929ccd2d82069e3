//! Every container-like thing a resource will run.
//!
//! One extractor, [`extract`], reads every kind in [`kinds::TABLE`] and yields a [`Runnable`]
//! for each container, init/ephemeral container, Argo script step, KFP executor, Ray job
//! entrypoint, TrainJob trainer, Spark driver... with every text it will run or read (command
//! line, env, mounted ConfigMaps, hooks, probes, scripts, patches). Analysers look for miners
//! in those texts instead of each knowing where every kind hides its containers.
//!
//! A new kind is one entry in [`kinds::TABLE`]. Secrets are never read: a Secret reference
//! yields no text.

mod container;
pub mod kinds;
pub mod walk;

pub use container::{expand, gpu_resource};
pub use kinds::{Shape, TABLE};

use container::{joined, text, volumes_of, Volume};
use jackstop_core::object::scalar_text;
use jackstop_core::Object;
use serde_json::Value;
use std::collections::HashMap;
use walk::{join_index, join_key, last_key, walk};

/// One container-like thing a resource will run: a container, an init/ephemeral container, an
/// Argo script step, a KFP executor, a Ray job entrypoint, a TrainJob trainer, a Spark driver...
#[derive(Debug, Clone)]
pub struct Runnable<'a> {
    /// The top-level resource (a Workflow, not its template; a Notebook, not its pod; a Katib
    /// Experiment, not its trial).
    pub owner: &'a Object,
    /// Where it sits inside `owner` (`spec.templates[2].script`,
    /// `spec.template.spec.containers[0]`, `deploymentSpec.executors.exec-train.container`).
    pub field: String,
    /// Container, template or executor name (`""` if none).
    pub name: String,
    pub image: Option<String>,
    /// Every string it will run or read.
    pub texts: Vec<RunText>,
    /// Whether it asks for a GPU (resources, a KFP accelerator, Ray `num-gpus`, Spark `gpu`).
    pub gpu: bool,
    /// `owner.effective_namespace()`.
    pub namespace: String,
}

/// What a text is to the thing that runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextRole {
    CommandLine,
    Env,
    Script,
    ConfigMap,
    Hook,
    Probe,
    Entrypoint,
    PodSpecPatch,
    Manifest,
    RuntimeEnv,
    Other,
}

/// One string a runnable will run or read.
#[derive(Debug, Clone)]
pub struct RunText {
    pub role: TextRole,
    /// Field path of the text (for a command line: of its first part).
    pub field: String,
    pub text: String,
    /// For texts built from several fields (command + args joined with spaces): (byte offset in
    /// `text`, field path) of each part, so that a match position maps back to its exact field.
    /// One entry for single-field texts.
    pub parts: Vec<(usize, String)>,
    /// Human label for evidence: `command and args`, `env MINER_POOL`,
    /// `ConfigMap ml/xmrig-config key config.json`, `script source`, `postStart hook`...
    pub label: String,
}

impl RunText {
    /// The field path of the part that holds byte `offset` of `text`.
    pub fn field_at(&self, offset: usize) -> &str {
        self.parts
            .iter()
            .take_while(|(start, _)| *start <= offset)
            .last()
            .map_or(self.field.as_str(), |(_, f)| f.as_str())
    }
}

/// What [`extract`] found.
#[derive(Debug, Default)]
pub struct Extraction<'a> {
    pub runnables: Vec<Runnable<'a>>,
    /// Things it could not read, per object: a ConfigMap not in the input, a malformed list,
    /// an embedded object too deep.
    pub notes: Vec<(&'a Object, String)>,
}

/// Kinds the extractor reads: every kind of [`kinds::TABLE`], and ConfigMap for env and volume
/// lookups. Never Secret.
pub const KINDS: &[&str] = &[
    "ConfigMap",
    "Pod",
    "PodTemplate",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "ReplicationController",
    "CronJob",
    "Notebook",
    "Workflow",
    "WorkflowTemplate",
    "ClusterWorkflowTemplate",
    "CronWorkflow",
    "ScheduledWorkflow",
    "PipelineSpec",
    "TFJob",
    "PyTorchJob",
    "MPIJob",
    "XGBoostJob",
    "PaddleJob",
    "JAXJob",
    "TrainJob",
    "TrainingRuntime",
    "ClusterTrainingRuntime",
    "JobSet",
    "Experiment",
    "RayCluster",
    "RayJob",
    "RayCronJob",
    "RayService",
    "InferenceService",
    "ServingRuntime",
    "ClusterServingRuntime",
    "LLMInferenceService",
    "LLMInferenceServiceConfig",
    "SparkApplication",
    "ScheduledSparkApplication",
    "Task",
    "TaskRun",
    "Pipeline",
    "PipelineRun",
];

/// Embedded objects (a Katib trial spec) are read this many levels deep at most.
const MAX_DEPTH: usize = 2;

/// Argo inline templates (a step's or DAG task's `inline`) are read this many levels deep at most.
const MAX_INLINE: usize = 3;

/// Every runnable of every object of a kind in [`KINDS`]; other kinds yield nothing.
pub fn extract(objects: &[Object]) -> Extraction<'_> {
    let mut x = Extractor {
        configmaps: HashMap::new(),
        runnables: Vec::new(),
        notes: Vec::new(),
    };
    for o in objects.iter().filter(|o| o.kind == "ConfigMap") {
        x.configmaps
            .insert((o.effective_namespace().to_string(), o.name.clone()), o);
    }
    for o in objects {
        if let Some(entry) = kinds::entry(&o.kind) {
            x.object(o, &o.body, entry, "", 0);
        }
    }
    Extraction {
        runnables: x.runnables,
        notes: x.notes,
    }
}

pub(crate) struct Extractor<'a> {
    configmaps: HashMap<(String, String), &'a Object>,
    runnables: Vec<Runnable<'a>>,
    notes: Vec<(&'a Object, String)>,
}

fn str_of<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// The pattern without its last segment, and that segment (`spec.driver` -> `spec`, `driver`).
fn split_last(pattern: &str) -> (&str, &str) {
    match pattern.rsplit_once('.') {
        Some((p, l)) => (p, l),
        None => ("", pattern),
    }
}

fn plain_key(seg: &str) -> bool {
    !seg.is_empty() && seg != "*" && !seg.contains('[')
}

impl<'a> Extractor<'a> {
    fn note(&mut self, owner: &'a Object, msg: String) {
        self.notes.push((owner, msg));
    }

    /// Reads `root` (the owner's body, or an object embedded in it at `prefix`) as the kind
    /// whose table entry is `entry`.
    fn object(
        &mut self,
        owner: &'a Object,
        root: &'a Value,
        entry: &[(&str, Shape)],
        prefix: &str,
        depth: usize,
    ) {
        for (pattern, shape) in entry {
            if let Shape::Text(role, label) = shape {
                self.texts(owner, root, prefix, pattern, *role, label);
                continue;
            }
            for (field, v) in walk(root, prefix, pattern) {
                self.shape(owner, root, prefix, pattern, *shape, &field, v, depth);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn shape(
        &mut self,
        owner: &'a Object,
        root: &'a Value,
        prefix: &str,
        pattern: &str,
        shape: Shape,
        field: &str,
        v: &'a Value,
        depth: usize,
    ) {
        if v.is_null() {
            return;
        }
        match shape {
            Shape::PodSpec => self.pod_spec(owner, v, field, false),
            Shape::RayGroup => {
                let gpu = v
                    .get("rayStartParams")
                    .and_then(|p| p.get("num-gpus"))
                    .and_then(scalar_text)
                    .and_then(|t| t.trim().trim_matches('"').parse::<f64>().ok())
                    .is_some_and(|n| n > 0.0);
                if let Some(spec) = v.get("template").and_then(|t| t.get("spec")) {
                    let f = join_key(&join_key(field, "template"), "spec");
                    self.pod_spec(owner, spec, &f, gpu);
                }
            }
            Shape::Container | Shape::TrainJobTrainer => {
                if !v.is_object() {
                    self.note(owner, format!("{field} is not a container"));
                    return;
                }
                let name = str_of(v, "name").unwrap_or_else(|| last_key(field));
                let r = self.container(owner, v, field, name, &[]);
                self.runnables.push(r);
            }
            Shape::ArgoTemplates => self.argo(owner, v, field),
            Shape::KfpExecutors => {
                let Some(m) = v.as_object() else {
                    self.note(owner, format!("{field} is not a map of executors"));
                    return;
                };
                for (k, ex) in m {
                    if let Some(c) = ex.get("container").filter(|c| c.is_object()) {
                        let f = join_key(&join_key(field, k), "container");
                        let r = self.container(owner, c, &f, k, &[]);
                        self.runnables.push(r);
                    }
                }
            }
            Shape::SparkRole => self.spark(owner, root, prefix, pattern, v, field),
            Shape::Entrypoint(image_pattern) => {
                let Some(t) = scalar_text(v) else { return };
                let image = walk(root, prefix, image_pattern)
                    .first()
                    .and_then(|(_, i)| scalar_text(i));
                self.runnables.push(Runnable {
                    owner,
                    field: field.to_string(),
                    name: "entrypoint".into(),
                    image,
                    texts: vec![text(
                        TextRole::Entrypoint,
                        field.to_string(),
                        t,
                        "Ray job entrypoint".into(),
                    )],
                    gpu: false,
                    namespace: owner.effective_namespace().to_string(),
                });
            }
            Shape::EmbeddedObject => {
                let Some(kind) = str_of(v, "kind") else {
                    self.note(owner, format!("{field} has no kind; not read"));
                    return;
                };
                let Some(entry) = kinds::entry(kind) else {
                    self.note(owner, format!("{field} is a {kind}, a kind not read"));
                    return;
                };
                if depth >= MAX_DEPTH {
                    self.note(owner, format!("{field} is embedded too deep; not read"));
                    return;
                }
                self.object(owner, v, entry, field, depth + 1);
            }
            Shape::Text(role, label) => {
                if let Some(t) = scalar_text(v) {
                    self.text_runnable(owner, field, "", text(role, field.into(), t, label.into()));
                }
            }
        }
    }

    fn text_runnable(&mut self, owner: &'a Object, field: &str, name: &str, t: RunText) {
        self.runnables.push(Runnable {
            owner,
            field: field.to_string(),
            name: name.to_string(),
            image: None,
            texts: vec![t],
            gpu: false,
            namespace: owner.effective_namespace().to_string(),
        });
    }

    /// Text patterns: each match is a runnable of its own, named by the `name` beside it.
    fn texts(
        &mut self,
        owner: &'a Object,
        root: &'a Value,
        prefix: &str,
        pattern: &str,
        role: TextRole,
        label: &str,
    ) {
        let (parent, last) = split_last(pattern);
        let matches: Vec<(String, &Value, &str)> = if plain_key(last) && !parent.is_empty() {
            walk(root, prefix, parent)
                .into_iter()
                .filter_map(|(pf, pv)| {
                    let v = pv.as_object()?.get(last)?;
                    Some((
                        join_key(&pf, last),
                        v,
                        str_of(pv, "name").unwrap_or_default(),
                    ))
                })
                .collect()
        } else {
            walk(root, prefix, pattern)
                .into_iter()
                .map(|(f, v)| (f, v, ""))
                .collect()
        };
        for (field, v, name) in matches {
            if let Some(t) = scalar_text(v) {
                let label = label.replace("{name}", name);
                self.text_runnable(owner, &field, name, text(role, field.clone(), t, label));
            }
        }
    }

    /// The containers of a PodSpec-like value at `field`.
    fn pod_spec(&mut self, owner: &'a Object, spec: &'a Value, field: &str, ray_gpu: bool) {
        if !spec.is_object() {
            self.note(owner, format!("{field} is not a pod spec"));
            return;
        }
        let volumes = match spec.get("volumes") {
            None => Vec::new(),
            v => volumes_of(v, &join_key(field, "volumes")),
        };
        for list in ["initContainers", "containers", "ephemeralContainers"] {
            let Some(containers) = spec.get(list) else {
                continue;
            };
            let lf = join_key(field, list);
            for (f, c) in self.list(owner, Some(containers), &lf) {
                let name = str_of(c, "name").unwrap_or_default();
                let mut r = self.container(owner, c, &f, name, &volumes);
                r.gpu |= ray_gpu && list == "containers";
                self.runnables.push(r);
            }
        }
    }

    /// The objects of a list at `field`; a value of another type is noted and yields none.
    fn list(
        &mut self,
        owner: &'a Object,
        v: Option<&'a Value>,
        field: &str,
    ) -> Vec<(String, &'a Value)> {
        match v {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => {
                let mut out = Vec::new();
                for (i, c) in a.iter().enumerate() {
                    let f = join_index(field, i);
                    if c.is_object() {
                        out.push((f, c));
                    } else if !c.is_null() {
                        self.note(owner, format!("{f} is not an object; not read"));
                    }
                }
                out
            }
            Some(_) => {
                self.note(owner, format!("{field} is not a list; not read"));
                Vec::new()
            }
        }
    }

    /// An Argo workflow spec at `field`.
    fn argo(&mut self, owner: &'a Object, spec: &'a Value, field: &str) {
        if !spec.is_object() {
            self.note(owner, format!("{field} is not a workflow spec"));
            return;
        }
        let wf_volumes = volumes_of(spec.get("volumes"), &join_key(field, "volumes"));
        let tlf = join_key(field, "templates");
        for (tf, t) in self.list(owner, spec.get("templates"), &tlf) {
            let name = str_of(t, "name").unwrap_or_default();
            self.argo_template(owner, t, &tf, name, &wf_volumes, 0);
        }
        let mut texts = Vec::new();
        if let Some(p) = spec.get("podSpecPatch").and_then(scalar_text) {
            let f = join_key(field, "podSpecPatch");
            texts.push(text(
                TextRole::PodSpecPatch,
                f,
                p,
                "workflow podSpecPatch".into(),
            ));
        }
        let args = join_key(field, "arguments");
        argo_inputs(spec.get("arguments"), &args, "workflow", &mut texts);
        if !texts.is_empty() {
            self.runnables.push(Runnable {
                owner,
                field: field.to_string(),
                name: String::new(),
                image: None,
                texts,
                gpu: false,
                namespace: owner.effective_namespace().to_string(),
            });
        }
    }

    /// One Argo template at `tf`, and the inline templates of its steps and DAG tasks (read
    /// [`MAX_INLINE`] levels deep at most).
    fn argo_template(
        &mut self,
        owner: &'a Object,
        t: &'a Value,
        tf: &str,
        tname: &str,
        wf_volumes: &[Volume<'a>],
        depth: usize,
    ) {
        self.argo_template_own(owner, t, tf, tname, wf_volumes);
        let mut steps = walk(t, tf, "steps[*][*]");
        steps.extend(walk(t, tf, "dag.tasks[*]"));
        for (f, step) in steps {
            let Some(it) = step.get("inline").filter(|i| i.is_object()) else {
                continue;
            };
            let itf = join_key(&f, "inline");
            if depth >= MAX_INLINE {
                self.note(owner, format!("{itf} is nested too deep; not read"));
                continue;
            }
            // An inline template usually has no name of its own: it goes by its step's.
            let name = str_of(it, "name").or_else(|| str_of(step, "name"));
            self.argo_template(
                owner,
                it,
                &itf,
                name.unwrap_or_default(),
                wf_volumes,
                depth + 1,
            );
        }
    }

    /// The runnables of one Argo template itself (not of its inline templates).
    fn argo_template_own(
        &mut self,
        owner: &'a Object,
        t: &'a Value,
        tf: &str,
        tname: &str,
        wf_volumes: &[Volume<'a>],
    ) {
        let mut volumes = volumes_of(t.get("volumes"), &join_key(tf, "volumes"));
        volumes.extend(wf_volumes.iter().cloned());
        for key in ["container", "script"] {
            if let Some(c) = t.get(key).filter(|c| c.is_object()) {
                let r = self.container(owner, c, &join_key(tf, key), tname, &volumes);
                self.runnables.push(r);
            }
        }
        let mut lists = Vec::new();
        if let Some(set) = t.get("containerSet").filter(|s| s.is_object()) {
            let f = join_key(&join_key(tf, "containerSet"), "containers");
            lists.push((set.get("containers"), f));
        }
        for key in ["initContainers", "sidecars"] {
            lists.push((t.get(key), join_key(tf, key)));
        }
        for (list, lf) in lists {
            for (f, c) in self.list(owner, list, &lf) {
                let name = str_of(c, "name").unwrap_or_default();
                let r = self.container(owner, c, &f, name, &volumes);
                self.runnables.push(r);
            }
        }
        let mut texts = Vec::new();
        if let Some(p) = t.get("podSpecPatch").and_then(scalar_text) {
            let f = join_key(tf, "podSpecPatch");
            texts.push(text(
                TextRole::PodSpecPatch,
                f,
                p,
                "template podSpecPatch".into(),
            ));
        }
        if let Some(m) = t
            .get("resource")
            .and_then(|r| r.get("manifest"))
            .and_then(scalar_text)
        {
            let f = join_key(&join_key(tf, "resource"), "manifest");
            texts.push(text(TextRole::Manifest, f, m, "resource manifest".into()));
        }
        argo_inputs(
            t.get("inputs"),
            &join_key(tf, "inputs"),
            "input",
            &mut texts,
        );
        if !texts.is_empty() {
            self.runnables.push(Runnable {
                owner,
                field: tf.to_string(),
                name: tname.to_string(),
                image: None,
                texts,
                gpu: false,
                namespace: owner.effective_namespace().to_string(),
            });
        }
    }

    /// A SparkApplication role (`driver`, `executor`) at `field`; the application's own fields
    /// sit beside it.
    fn spark(
        &mut self,
        owner: &'a Object,
        root: &'a Value,
        prefix: &str,
        pattern: &str,
        role: &'a Value,
        field: &str,
    ) {
        if !role.is_object() {
            self.note(owner, format!("{field} is not a Spark role"));
            return;
        }
        let (app_pattern, role_name) = split_last(pattern);
        let Some((app_field, app)) = walk(root, prefix, app_pattern).into_iter().next() else {
            return;
        };
        let volumes = volumes_of(app.get("volumes"), &join_key(&app_field, "volumes"));
        let mut r = self.container(owner, role, field, role_name, &volumes);
        if r.image.is_none() {
            r.image = app.get("image").and_then(scalar_text);
        }
        if let Some(g) = role.get("gpu").filter(|g| g.is_object()) {
            let named = str_of(g, "name").is_some_and(|n| n.contains("gpu"));
            let quantity = g
                .get("quantity")
                .and_then(scalar_text)
                .and_then(|q| q.trim().parse::<f64>().ok())
                .is_none_or(|q| q > 0.0);
            r.gpu |= named && quantity;
        }
        let cms = join_key(field, "configMaps");
        let cm_texts = self.named_configmaps(owner, role.get("configMaps"), &cms);
        r.texts.extend(cm_texts);
        if let Some(j) = role.get("javaOptions").and_then(scalar_text) {
            let f = join_key(field, "javaOptions");
            r.texts
                .push(text(TextRole::CommandLine, f, j, "Java options".into()));
        }
        if role_name == "driver" {
            let mut parts = Vec::new();
            for key in ["mainClass", "mainApplicationFile"] {
                if let Some(t) = app.get(key).and_then(scalar_text) {
                    parts.push((join_key(&app_field, key), t));
                }
            }
            if let Some(a) = app.get("arguments").and_then(Value::as_array) {
                let af = join_key(&app_field, "arguments");
                for (i, e) in a.iter().enumerate() {
                    if let Some(t) = scalar_text(e) {
                        parts.push((join_index(&af, i), t));
                    }
                }
            }
            let label = "Spark application and arguments";
            if let Some(t) = joined(TextRole::CommandLine, label, parts, &HashMap::new()) {
                r.texts.insert(0, t);
            }
        }
        self.runnables.push(r);
    }
}

/// Argo `parameters[*].value|default` and `artifacts[*].raw.data` of an `inputs` or
/// `arguments` block: attackers put payloads there.
fn argo_inputs(block: Option<&Value>, field: &str, what: &str, texts: &mut Vec<RunText>) {
    let Some(block) = block else { return };
    if let Some(ps) = block.get("parameters").and_then(Value::as_array) {
        let pf = join_key(field, "parameters");
        for (i, p) in ps.iter().enumerate() {
            let name = str_of(p, "name").unwrap_or_default();
            for key in ["value", "default"] {
                if let Some(v) = p.get(key).and_then(scalar_text) {
                    let f = join_key(&join_index(&pf, i), key);
                    let label = format!("{what} parameter {name}");
                    texts.push(text(TextRole::Other, f, v, label));
                }
            }
        }
    }
    if let Some(arts) = block.get("artifacts").and_then(Value::as_array) {
        let af = join_key(field, "artifacts");
        for (i, a) in arts.iter().enumerate() {
            let name = str_of(a, "name").unwrap_or_default();
            if let Some(d) = a
                .get("raw")
                .and_then(|r| r.get("data"))
                .and_then(scalar_text)
            {
                let f = join_key(&join_key(&join_index(&af, i), "raw"), "data");
                let label = format!("{what} artifact {name}");
                texts.push(text(TextRole::Other, f, d, label));
            }
            // An artifact fetched from a URL lands in the container as a file, possibly as an
            // executable on the PATH: the URL and the path are what the step will run.
            if let Some(url) = a
                .get("http")
                .and_then(|h| h.get("url"))
                .and_then(scalar_text)
            {
                let f = join_key(&join_key(&join_index(&af, i), "http"), "url");
                let path = str_of(a, "path").unwrap_or_default();
                let label = format!("{what} artifact {name} downloaded to {path}");
                texts.push(text(TextRole::Other, f, url, label));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_kind_is_read_and_secrets_never() {
        for (k, _) in TABLE {
            assert!(KINDS.contains(k), "{k} missing from KINDS");
        }
        assert_eq!(KINDS.len(), TABLE.len() + 1);
        assert!(KINDS.contains(&"ConfigMap"));
        assert!(!KINDS.contains(&"Secret"));
    }

    #[test]
    fn field_at_maps_offsets_to_parts() {
        let t = RunText {
            role: TextRole::CommandLine,
            field: "c.command[0]".into(),
            text: "sh -c x".into(),
            parts: vec![
                (0, "c.command[0]".into()),
                (3, "c.command[1]".into()),
                (6, "c.args[0]".into()),
            ],
            label: String::new(),
        };
        assert_eq!(t.field_at(0), "c.command[0]");
        assert_eq!(t.field_at(2), "c.command[0]");
        assert_eq!(t.field_at(4), "c.command[1]");
        assert_eq!(t.field_at(6), "c.args[0]");
        assert_eq!(t.field_at(100), "c.args[0]");
    }
}
