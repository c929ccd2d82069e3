//! Pod templates wherever a resource hides one, and the facts of their containers.
//!
//! A new workload kind is one entry in [`TEMPLATE_PATHS`].

use jackstop_core::labels::{labels_from, Labels};
use jackstop_core::object::{port_number, scalar_text, value_at};
use jackstop_core::Object;
use serde_json::Value;
use std::sync::{Arc, OnceLock};

/// Where each kind keeps the pod template(s) that may serve traffic: (kind, path to the
/// template, extra labels its controller adds). `{name}` in a label value is the object's name.
/// Labels a controller adds to the pods it creates from a template.
pub type ControllerLabels = &'static [(&'static str, &'static str)];

pub const TEMPLATE_PATHS: &[(&str, &str, ControllerLabels)] = &[
    ("Deployment", "spec.template", &[]),
    ("ReplicaSet", "spec.template", &[]),
    ("StatefulSet", "spec.template", &[]),
    ("DaemonSet", "spec.template", &[]),
    ("ReplicationController", "spec.template", &[]),
    ("Job", "spec.template", &[]),
    ("CronJob", "spec.jobTemplate.spec.template", &[]),
    (
        "Notebook",
        "spec.template",
        &[("notebook-name", "{name}"), ("statefulset", "{name}")],
    ),
    (
        "RayCluster",
        "spec.headGroupSpec.template",
        &[("ray.io/node-type", "head"), ("ray.io/cluster", "{name}")],
    ),
    (
        "RayService",
        "spec.rayClusterConfig.headGroupSpec.template",
        &[("ray.io/node-type", "head")],
    ),
    (
        "RayJob",
        "spec.rayClusterSpec.headGroupSpec.template",
        &[("ray.io/node-type", "head")],
    ),
];

/// The kinds that carry pod templates.
pub const KINDS: &[&str] = &[
    "Pod",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "ReplicationController",
    "Job",
    "CronJob",
    "Notebook",
    "RayCluster",
    "RayService",
    "RayJob",
];

#[derive(Debug, Clone)]
pub struct ContainerPort {
    pub name: Option<String>,
    pub container_port: Option<u16>,
    pub host_port: Option<u16>,
}

#[derive(Debug, Clone)]
pub struct Container {
    pub name: String,
    pub image: String,
    /// Command and args joined by spaces, then one `NAME=value` line per env entry.
    pub command_line: String,
    pub ports: Vec<ContainerPort>,
    /// Field path of the container inside its resource.
    pub field: String,
    /// The catalogue interface this container runs, once looked up: (the id of the
    /// interface set it was looked up in, its position there). A view that keeps its
    /// templates across analyses (the admission webhook's) looks each container up once.
    pub interface: OnceLock<(u64, Option<usize>)>,
}

/// What one pod template says, apart from the resource that owns it: read once from the
/// resource, and shareable by every analysis of a view that outlives one.
#[derive(Debug)]
pub struct TemplateFacts {
    pub namespace: String,
    pub labels: Labels,
    pub host_network: bool,
    pub containers: Vec<Container>,
    /// Field path of the pod spec inside the resource.
    pub spec_field: String,
}

/// One pod template with the resource that owns it.
#[derive(Debug, Clone)]
pub struct PodTemplate<'a> {
    pub owner: &'a Object,
    pub facts: Arc<TemplateFacts>,
}

impl std::ops::Deref for PodTemplate<'_> {
    type Target = TemplateFacts;
    fn deref(&self) -> &TemplateFacts {
        &self.facts
    }
}

/// The pod templates of one object (none for kinds without one).
pub fn templates_of(o: &Object) -> Vec<PodTemplate<'_>> {
    template_facts(o)
        .into_iter()
        .map(|facts| PodTemplate { owner: o, facts })
        .collect()
}

/// Where the pod templates of `o` are: (the template, its field path, the labels its
/// controller adds). A Pod is its own template, at the path "".
fn templates_in(o: &Object) -> Vec<(&Value, &'static str, ControllerLabels)> {
    if o.kind == "Pod" {
        return vec![(&o.body, "", &[])];
    }
    TEMPLATE_PATHS
        .iter()
        .filter(|(k, _, _)| *k == o.kind)
        .filter_map(|(_, path, extra)| Some((value_at(&o.body, path)?, *path, *extra)))
        .collect()
}

/// What the pod templates of one object say (none for kinds without one).
pub fn template_facts(o: &Object) -> Vec<Arc<TemplateFacts>> {
    templates_in(o)
        .into_iter()
        .filter_map(|(t, path, extra)| {
            let spec_field = if path.is_empty() {
                "spec".to_string()
            } else {
                format!("{path}.spec")
            };
            template_at(o, t, path, &spec_field, extra)
        })
        .collect()
}

/// Whether a pod template of `o` runs on the host's network or publishes a host port: a way in
/// that needs no Service. Read from the object itself, without reading its templates' other
/// facts, for the admission webhook's replicas (a ReplicaSet's Pods), which are judged for
/// this alone.
pub fn publishes_host(o: &Object) -> bool {
    let spec_publishes = |spec: &Value| {
        spec.get("hostNetwork").and_then(Value::as_bool) == Some(true)
            || ["initContainers", "containers"].iter().any(|list| {
                spec.get(*list).and_then(Value::as_array).is_some_and(|cs| {
                    cs.iter().any(|c| {
                        c.get("ports").and_then(Value::as_array).is_some_and(|ps| {
                            ps.iter()
                                .any(|p| p.get("hostPort").and_then(port_number).is_some())
                        })
                    })
                })
            })
    };
    templates_in(o)
        .into_iter()
        .filter_map(|(t, _, _)| t.get("spec"))
        .any(spec_publishes)
}

fn template_at(
    o: &Object,
    template: &Value,
    template_field: &str,
    spec_field: &str,
    extra: &[(&str, &str)],
) -> Option<Arc<TemplateFacts>> {
    let spec = template.get("spec")?;
    let mut labels = labels_from(
        template
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object),
    );
    if template_field.is_empty() {
        labels = labels_from(o.labels());
    }
    for (k, v) in extra {
        labels.insert(k.to_string(), v.replace("{name}", &o.name));
    }
    let mut containers = Vec::new();
    for list in ["initContainers", "containers"] {
        if let Some(items) = spec.get(list).and_then(Value::as_array) {
            for (i, c) in items.iter().enumerate() {
                containers.push(container(c, format!("{spec_field}.{list}[{i}]")));
            }
        }
    }
    Some(Arc::new(TemplateFacts {
        namespace: o.effective_namespace().to_string(),
        labels,
        host_network: spec
            .get("hostNetwork")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        containers,
        spec_field: spec_field.to_string(),
    }))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(scalar_text).collect())
        .unwrap_or_default()
}

fn container(c: &Value, field: String) -> Container {
    let mut words = strings(c.get("command"));
    words.extend(strings(c.get("args")));
    let mut command_line = words.join(" ");
    if let Some(env) = c.get("env").and_then(Value::as_array) {
        for e in env {
            let name = e.get("name").and_then(Value::as_str).unwrap_or_default();
            let value = e.get("value").and_then(scalar_text).unwrap_or_default();
            command_line.push('\n');
            command_line.push_str(name);
            command_line.push('=');
            command_line.push_str(&value);
        }
    }
    let ports = c
        .get("ports")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .map(|p| ContainerPort {
                    name: p.get("name").and_then(Value::as_str).map(str::to_string),
                    container_port: p.get("containerPort").and_then(port_number),
                    host_port: p.get("hostPort").and_then(port_number),
                })
                .collect()
        })
        .unwrap_or_default();
    Container {
        name: c
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        image: c.get("image").and_then(scalar_text).unwrap_or_default(),
        command_line,
        ports,
        field,
        interface: OnceLock::new(),
    }
}

impl Container {
    /// Whether this container declares `port` (a number or a port name).
    pub fn serves(&self, port: &PortRef) -> bool {
        self.ports.iter().any(|p| match port {
            PortRef::Number(n) => p.container_port == Some(*n),
            PortRef::Name(name) => p.name.as_deref() == Some(name.as_str()),
        })
    }
}

/// A port given by number or by name, as Services and routes may.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

impl PortRef {
    pub fn from_value(v: &Value) -> Option<PortRef> {
        match port_number(v) {
            Some(n) => Some(PortRef::Number(n)),
            None => v
                .as_str()
                .filter(|s| !s.is_empty())
                .map(|s| PortRef::Name(s.to_string())),
        }
    }
}

impl std::fmt::Display for PortRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(s) => f.write_str(s),
        }
    }
}
