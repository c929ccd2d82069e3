//! Kubernetes-native admission policies generated from jackstop's catalogue
//! (`jackstop policy export`), for clusters that will not run the webhook.
//!
//! A ValidatingAdmissionPolicy is CEL that the API server evaluates itself: no server to run,
//! but it sees one object (`object`, `oldObject`, `request`), never the rest of the cluster, and
//! it cannot decode payloads. So this crate exports what is exact per object, and says what is
//! not:
//!
//! - **miners** ([`miners`]): the strong indicators of `indicators.yaml` that are one regular
//!   expression (or one substring) over what a container runs, generated from the data, so that
//!   a new indicator flows into the policy. A CEL hit is a strong hit of the same indicator for
//!   the webhook too: CEL denies only what the webhook denies. The webhook finds more (decoded
//!   payloads, combinations of weak signals, other kinds): [`miners::WEBHOOK_ONLY`].
//! - **exposure** ([`exposure`]): a conservative per-object stand-in for the webhook's path
//!   analysis, stricter by design (it cannot see what authenticates in front).
//!
//! Every expression is guarded with `has()` so that an absent field never makes an error (with
//! `failurePolicy: Fail` an error denies). An UPDATE is judged by what it adds, as the webhook
//! does: a check that already held for `oldObject` does not deny (scaling a miner to zero, or
//! removing a finalizer, passes). The cost of the regexes is estimated by [`CostModel`], with
//! the API server's own formula.

pub mod exposure;
pub mod miners;
pub mod pattern;

use k8s_openapi::api::admissionregistration::v1::{
    MatchCondition, MatchResources, NamedRuleWithOperations, ValidatingAdmissionPolicy,
    ValidatingAdmissionPolicyBinding, ValidatingAdmissionPolicyBindingSpec,
    ValidatingAdmissionPolicySpec, Validation as K8sValidation, Variable,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use miners::{Matcher, Target};
use std::collections::BTreeMap;

pub use jackstop_catalogue::Catalogue;

/// What a binding does with a failed validation (`--action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    #[default]
    Deny,
    Warn,
    Audit,
}

impl Action {
    pub fn validation_action(self) -> &'static str {
        match self {
            Action::Deny => "Deny",
            Action::Warn => "Warn",
            Action::Audit => "Audit",
        }
    }
}

/// What to export.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only these rules (`JS-MIN-001`...); all exportable rules when empty.
    pub rules: Vec<String>,
    pub action: Action,
    /// Namespaces the bindings leave out (kube-system always).
    pub exclude_namespaces: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rules: Vec::new(),
            action: Action::Deny,
            exclude_namespaces: Vec::new(),
        }
    }
}

/// Why an export cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("unknown rule {0} (see `jackstop rules`)")]
    UnknownRule(String),
    #[error("{0} cannot be expressed as a per-object admission policy; only the webhook (`jackstop webhook`) enforces it. Exportable rules: {1}")]
    NotExportable(String, String),
    #[error("--exclude-namespace {0:?} is not a namespace name")]
    BadNamespace(String),
    #[error("cannot write YAML: {0}")]
    Yaml(String),
}

/// One CEL validation of a policy.
#[derive(Debug, Clone)]
pub struct Validation {
    /// What it checks (an indicator id, an interface id).
    pub id: String,
    /// The rules a denial stands for.
    pub rules: Vec<String>,
    pub expression: String,
    pub message: String,
    pub message_expression: Option<String>,
}

/// One policy (a family of rules) before it becomes Kubernetes objects.
#[derive(Debug, Clone)]
pub struct PolicyDef {
    pub name: String,
    pub description: String,
    pub resource_rules: Vec<NamedRuleWithOperations>,
    pub match_conditions: Vec<(String, String)>,
    pub variables: Vec<(String, String)>,
    pub validations: Vec<Validation>,
}

impl PolicyDef {
    pub fn rules(&self) -> Vec<String> {
        let mut r: Vec<String> = self
            .validations
            .iter()
            .flat_map(|v| v.rules.iter().cloned())
            .collect();
        r.sort();
        r.dedup();
        r
    }
}

/// A CEL string literal.
pub fn cel_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn rule(groups: &[&str], resources: &[&str], operations: &[&str]) -> NamedRuleWithOperations {
    NamedRuleWithOperations {
        api_groups: Some(groups.iter().map(|s| s.to_string()).collect()),
        api_versions: Some(vec!["*".into()]),
        operations: Some(operations.iter().map(|s| s.to_string()).collect()),
        resources: Some(resources.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    }
}

/// Where each kind keeps its pod specs: `.field`, `*` for every value of a map, `[*]` for every
/// element of a list (the same places as the webhook's workload table).
const POD_SPECS: &[(&[&str], &[&str])] = &[
    (&["Pod"], &["spec"]),
    (&["PodTemplate"], &["template.spec"]),
    (
        &[
            "Deployment",
            "ReplicaSet",
            "StatefulSet",
            "DaemonSet",
            "Job",
            "ReplicationController",
            "Notebook",
        ],
        &["spec.template.spec"],
    ),
    (&["CronJob"], &["spec.jobTemplate.spec.template.spec"]),
    (&["TFJob"], &["spec.tfReplicaSpecs.*.template.spec"]),
    (
        &["PyTorchJob"],
        &["spec.pytorchReplicaSpecs.*.template.spec"],
    ),
    (&["MPIJob"], &["spec.mpiReplicaSpecs.*.template.spec"]),
    (&["XGBoostJob"], &["spec.xgbReplicaSpecs.*.template.spec"]),
    (&["PaddleJob"], &["spec.paddleReplicaSpecs.*.template.spec"]),
    (&["JAXJob"], &["spec.jaxReplicaSpecs.*.template.spec"]),
    (
        &["JobSet"],
        &["spec.replicatedJobs[*].template.spec.template.spec"],
    ),
    (
        &["RayCluster"],
        &[
            "spec.headGroupSpec.template.spec",
            "spec.workerGroupSpecs[*].template.spec",
        ],
    ),
    (
        &["RayJob"],
        &[
            "spec.rayClusterSpec.headGroupSpec.template.spec",
            "spec.rayClusterSpec.workerGroupSpecs[*].template.spec",
            "spec.submitterPodTemplate.spec",
        ],
    ),
    (
        &["RayCronJob"],
        &[
            "spec.jobTemplate.rayClusterSpec.headGroupSpec.template.spec",
            "spec.jobTemplate.rayClusterSpec.workerGroupSpecs[*].template.spec",
            "spec.jobTemplate.submitterPodTemplate.spec",
        ],
    ),
    (
        &["RayService"],
        &[
            "spec.rayClusterConfig.headGroupSpec.template.spec",
            "spec.rayClusterConfig.workerGroupSpecs[*].template.spec",
        ],
    ),
    (
        &["TrainingRuntime", "ClusterTrainingRuntime"],
        &["spec.template.spec.replicatedJobs[*].template.spec.template.spec"],
    ),
    // KServe: a predictor, transformer or explainer is PodSpec-like (its own `containers`).
    (
        &["InferenceService"],
        &[
            "spec.predictor",
            "spec.predictor.workerSpec",
            "spec.transformer",
            "spec.explainer",
        ],
    ),
    (
        &["ServingRuntime", "ClusterServingRuntime"],
        &["spec", "spec.workerSpec"],
    ),
    (
        &["LLMInferenceService", "LLMInferenceServiceConfig"],
        &[
            "spec.template",
            "spec.worker",
            "spec.prefill.template",
            "spec.prefill.worker",
            "spec.router.scheduler.template",
        ],
    ),
];
/// Where each kind keeps single containers: a KServe predictor's model or framework block, an
/// explainer's, a Kubeflow Trainer TrainJob's trainer and initializers, each a map with a
/// container's fields (the webhook's `Container` and `TrainJobTrainer` places). The
/// initializers are named one by one: a schema's object with fixed properties is not a map
/// that CEL may iterate.
const CONTAINERS: &[(&[&str], &[&str])] = &[
    (
        &["InferenceService"],
        &[
            "spec.predictor.model",
            "spec.predictor.tensorflow",
            "spec.predictor.pytorch",
            "spec.predictor.sklearn",
            "spec.predictor.xgboost",
            "spec.predictor.onnx",
            "spec.predictor.triton",
            "spec.predictor.huggingface",
            "spec.predictor.lightgbm",
            "spec.predictor.paddle",
            "spec.predictor.pmml",
            "spec.explainer.alibi",
            "spec.explainer.art",
        ],
    ),
    (
        &["TrainJob"],
        &[
            "spec.trainer",
            "spec.initializer.dataset",
            "spec.initializer.model",
        ],
    ),
];
const ARGO_TEMPLATES: &[(&[&str], &str)] = &[
    (
        &["Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate"],
        "spec.templates",
    ),
    (&["CronWorkflow"], "spec.workflowSpec.templates"),
];
/// Texts that are command lines of their own.
const COMMAND_TEXTS: &[(&str, &str)] = &[
    ("RayJob", "spec.entrypoint"),
    ("RayCronJob", "spec.jobTemplate.entrypoint"),
];

/// `has(r.a) && has(r.a.b) && ...` for every step of `path` under `root`.
fn guard(root: &str, path: &str) -> String {
    let mut at = root.to_string();
    let mut parts = Vec::new();
    for p in path.split('.') {
        at = format!("{at}.{p}");
        parts.push(format!("has({at})"));
    }
    parts.join(" && ")
}

fn kinds_in(kinds: &[&str]) -> String {
    if kinds.len() == 1 {
        format!("request.kind.kind == {}", cel_str(kinds[0]))
    } else {
        format!(
            "request.kind.kind in [{}]",
            kinds
                .iter()
                .map(|k| cel_str(k))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// The list of values at `path` under `root` (see [`POD_SPECS`]), never an error: absent
/// fields give an empty list. At most one `*` or `[*]` (no list of lists).
fn values_at(root: &str, path: &str) -> String {
    let mut guards: Vec<String> = Vec::new();
    let mut single = root.to_string();
    let mut list: Option<String> = None;
    for (i, seg) in path.split('.').enumerate() {
        let (field, each) = match seg {
            "*" => ("", Some(false)),
            s => match s.strip_suffix("[*]") {
                Some(f) => (f, Some(true)),
                None => (s, None),
            },
        };
        if !field.is_empty() {
            match &mut list {
                None => {
                    single = format!("{single}.{field}");
                    guards.push(format!("has({single})"));
                }
                Some(l) => {
                    let v = format!("e{i}");
                    *l = format!("{l}.filter({v}, has({v}.{field})).map({v}, {v}.{field})");
                }
            }
        }
        match each {
            None => {}
            Some(_) if list.is_some() => panic!("{path}: one `*` or `[*]` at most"),
            Some(true) => list = Some(single.clone()),
            Some(false) => list = Some(format!("{single}.map(k{i}, {single}[k{i}])")),
        }
    }
    let value = match list {
        Some(l) => l,
        None => format!("[{single}]"),
    };
    format!("({} ? {value} : [])", guards.join(" && "))
}

/// Every pod spec of `root` (`object` or `oldObject`), by kind.
fn pod_specs(root: &str) -> String {
    let mut parts = Vec::new();
    for (kinds, paths) in POD_SPECS {
        let lists: Vec<String> = paths.iter().map(|p| values_at(root, p)).collect();
        parts.push(format!(
            "({} ? {} : [])",
            kinds_in(kinds),
            lists.join(" + ")
        ));
    }
    let all = parts.join(" + ");
    if root == "object" {
        all
    } else {
        format!("({root} == null ? [] : {all})")
    }
}

/// The container-like maps outside pod specs: Argo templates' `container` and `script`, and
/// the single containers of [`CONTAINERS`].
fn containers(root: &str) -> String {
    let mut parts = Vec::new();
    for (kinds, paths) in CONTAINERS {
        let lists: Vec<String> = paths.iter().map(|p| values_at(root, p)).collect();
        parts.push(format!(
            "({} ? {} : [])",
            kinds_in(kinds),
            lists.join(" + ")
        ));
    }
    for (kinds, path) in ARGO_TEMPLATES {
        let t = format!("{root}.{path}");
        parts.push(format!(
            "({} && {} ? {t}.filter(t, has(t.container)).map(t, t.container) + {t}.filter(t, has(t.script)).map(t, t.script) : [])",
            kinds_in(kinds),
            guard(root, path)
        ));
    }
    let all = parts.join(" + ");
    if root == "object" {
        all
    } else {
        format!("({root} == null ? [] : {all})")
    }
}

/// Command lines that are fields of their own (a RayJob's entrypoint).
fn command_texts(root: &str) -> String {
    let parts: Vec<String> = COMMAND_TEXTS
        .iter()
        .map(|(kind, path)| {
            format!(
                "({} && {} ? [{root}.{path}] : [])",
                kinds_in(&[kind]),
                guard(root, path)
            )
        })
        .collect();
    let all = parts.join(" + ");
    if root == "object" {
        all
    } else {
        format!("({root} == null ? [] : {all})")
    }
}

/// Every container, init and ephemeral container of the pod spec `s`.
const ALL_OF_SPEC: &str = "((has(s.containers) ? s.containers : []) + (has(s.initContainers) ? s.initContainers : []) + (has(s.ephemeralContainers) ? s.ephemeralContainers : []))";

/// One text per container: command and args joined with spaces (as the container will run
/// them, and as the webhook reads them), each env value, and an Argo script's source, on
/// lines of their own.
const TEXT_OF: &str = "((has(c.command) ? c.command : []) + (has(c.args) ? c.args : [])).join(' ') + '\\n' + (has(c.env) ? c.env.filter(e, has(e.value)).map(e, e.value) : []).join('\\n') + (has(c.source) ? '\\n' + c.source : '')";

/// The miner policy's variables: one text per pod spec (its containers' texts, a line
/// apart), per container outside pod specs (Argo, KServe) and per command-line field; one
/// line of images per pod spec.
fn miner_variables() -> Vec<(String, String)> {
    let mut v = Vec::new();
    for (prefix, root) in [("", "object"), ("old", "oldObject")] {
        let name = |n: &str| {
            if prefix.is_empty() {
                n.to_string()
            } else {
                format!("old{}{}", n[..1].to_ascii_uppercase(), &n[1..])
            }
        };
        v.push((name("podSpecs"), pod_specs(root)));
        v.push((name("containers"), containers(root)));
        v.push((
            name("texts"),
            format!(
                "variables.{}.map(s, {ALL_OF_SPEC}.map(c, {TEXT_OF}).join('\\n')) + variables.{}.map(c, {TEXT_OF}) + {}",
                name("podSpecs"),
                name("containers"),
                command_texts(root)
            ),
        ));
        v.push((
            name("images"),
            format!(
                "variables.{}.map(s, {ALL_OF_SPEC}.filter(c, has(c.image)).map(c, c.image).join('\\n')) + variables.{}.filter(c, has(c.image)).map(c, c.image)",
                name("podSpecs"),
                name("containers"),
            ),
        ));
    }
    v
}

fn miner_resource_rules() -> Vec<NamedRuleWithOperations> {
    let ops = &["CREATE", "UPDATE"];
    vec![
        rule(
            &[""],
            &[
                "pods",
                "pods/ephemeralcontainers",
                "podtemplates",
                "replicationcontrollers",
            ],
            ops,
        ),
        rule(
            &["apps"],
            &["deployments", "replicasets", "statefulsets", "daemonsets"],
            ops,
        ),
        rule(&["batch"], &["jobs", "cronjobs"], ops),
        rule(
            &["kubeflow.org"],
            &[
                "notebooks",
                "tfjobs",
                "pytorchjobs",
                "mpijobs",
                "xgboostjobs",
                "paddlejobs",
                "jaxjobs",
            ],
            ops,
        ),
        rule(
            &["trainer.kubeflow.org"],
            &["trainjobs", "trainingruntimes", "clustertrainingruntimes"],
            ops,
        ),
        rule(&["jobset.x-k8s.io"], &["jobsets"], ops),
        rule(
            &["ray.io"],
            &["rayclusters", "rayjobs", "raycronjobs", "rayservices"],
            ops,
        ),
        rule(
            &["serving.kserve.io"],
            &[
                "inferenceservices",
                "servingruntimes",
                "clusterservingruntimes",
                "llminferenceservices",
                "llminferenceserviceconfigs",
            ],
            ops,
        ),
        rule(
            &["argoproj.io"],
            &[
                "workflows",
                "workflowtemplates",
                "clusterworkflowtemplates",
                "cronworkflows",
            ],
            ops,
        ),
    ]
}

/// A run of base64 characters long enough to hide a payload: a base64 check's own regex runs
/// on these runs only (most texts have none, and a script's cost stays that of this scan).
pub const B64_RUN: &str = "[A-Za-z0-9+/]{20,}";

fn check_validation(c: &miners::Check) -> Validation {
    let (list, old) = match c.target {
        Target::Text => ("variables.texts", "variables.oldTexts"),
        Target::Image => ("variables.images", "variables.oldImages"),
    };
    let test = |v: &str| match &c.matcher {
        Matcher::Regex(re) => format!("{v}.matches({})", cel_str(re)),
        Matcher::Base64(re) => format!(
            "{v}.findAll({}).exists(r, r.matches({}))",
            cel_str(B64_RUN),
            cel_str(re)
        ),
    };
    let title = match c.rule {
        "JS-MIN-003" => "Workload runs a known cryptomining image",
        _ => "Workload runs a cryptominer",
    };
    let message = format!(
        "jackstop {} ({title}): {} [{}]. Delete the workload, then find who created it (audit log) and how (jackstop scan for exposed dashboards).",
        c.rule, c.what, c.id
    );
    let shown = match &c.matcher {
        Matcher::Regex(re) => format!(
            "' `' + {list}.filter(x, {t}).map(x, x.find({re}))[0] + '`'",
            t = test("x"),
            re = cel_str(re)
        ),
        Matcher::Base64(_) => "' (in a base64 payload)'".to_string(),
    };
    let message_expression = format!(
        "'jackstop {rule} ({title}): {what}' + {shown} + ' in ' + request.kind.kind + ' ' + (request.namespace != '' ? request.namespace + '/' : '') + request.name + ' [{id}]. Delete the workload, then find who created it (audit log) and how (jackstop scan for exposed dashboards).'",
        rule = c.rule,
        what = c.what.replace('\\', "\\\\").replace('\'', "\\'"),
        id = c.id,
    );
    Validation {
        id: c.id.clone(),
        rules: vec![c.rule.to_string()],
        expression: format!(
            "!{list}.exists(x, {}) || {old}.exists(x, {})",
            test("x"),
            test("x")
        ),
        message,
        message_expression: Some(message_expression),
    }
}

/// Every policy the catalogue makes, before `--rules` narrows them.
pub fn policies(cat: &Catalogue) -> Vec<PolicyDef> {
    let (checks, _) = miners::checks(cat);
    // Objects being deleted are judged too, as the webhook judges them: each validation denies
    // only what the change adds (what oldObject already had passes), so removing the
    // finalizers of a miner being deleted passes, and rewriting a held object does not.
    let mut out = Vec::new();
    for (name, rule, description) in [
        (
            "jackstop-miner-commands",
            "JS-MIN-001",
            "JS-MIN-001: containers, init and ephemeral containers, Argo script templates whose command, args, env values or script run a cryptominer (strong indicators of the jackstop catalogue)",
        ),
        (
            "jackstop-miner-images",
            "JS-MIN-003",
            "JS-MIN-003: containers whose image is a reported cryptojacking image or is named for a miner program or for mining",
        ),
    ] {
        out.push(PolicyDef {
            name: name.into(),
            description: description.into(),
            resource_rules: miner_resource_rules(),
            match_conditions: Vec::new(),
            variables: miner_variables(),
            validations: checks
                .iter()
                .filter(|c| c.rule == rule)
                .map(check_validation)
                .collect(),
        });
    }
    out.push(PolicyDef {
        name: "jackstop-exposed-dashboards".into(),
        description: "JS-EXP-001..007 (stricter than the webhook): a Service in front of a sensitive ML interface or the Istio ingress gateway may not become a LoadBalancer, NodePort or externalIPs Service unless annotated jackstop.dev/authenticated-by".into(),
        resource_rules: vec![rule(&[""], &["services"], &["CREATE", "UPDATE"])],
        match_conditions: Vec::new(),
        variables: Vec::new(),
        validations: exposure::service_validations(cat),
    });
    out.push(PolicyDef {
        name: "jackstop-gateway-authentication".into(),
        description: "JS-EXP-001/002 (stricter than the webhook): the Istio RequestAuthentications and AuthorizationPolicies that authenticate the ingress gateway may not be deleted unless annotated jackstop.dev/allow-delete=true".into(),
        resource_rules: vec![rule(
            &["security.istio.io"],
            &["requestauthentications", "authorizationpolicies"],
            &["DELETE"],
        )],
        match_conditions: Vec::new(),
        variables: Vec::new(),
        validations: exposure::auth_delete_validations(),
    });
    out
}

/// The rules some exported policy enforces.
pub fn exportable_rules(cat: &Catalogue) -> Vec<String> {
    let mut r: Vec<String> = policies(cat).iter().flat_map(|p| p.rules()).collect();
    r.sort();
    r.dedup();
    r
}

/// The policies `options` asks for (validations of other rules left out).
pub fn select(cat: &Catalogue, options: &Options) -> Result<Vec<PolicyDef>, ExportError> {
    for ns in &options.exclude_namespaces {
        if !jackstop_core::names::is_dns_label(ns) {
            return Err(ExportError::BadNamespace(ns.clone()));
        }
    }
    let exportable = exportable_rules(cat);
    let mut wanted: Vec<String> = Vec::new();
    for r in &options.rules {
        let r = r.trim().to_ascii_uppercase();
        if r.is_empty() {
            continue;
        }
        if cat.rules.get(&r).is_none() {
            return Err(ExportError::UnknownRule(r));
        }
        if !exportable.contains(&r) {
            return Err(ExportError::NotExportable(r, exportable.join(", ")));
        }
        wanted.push(r);
    }
    let mut out = Vec::new();
    for mut p in policies(cat) {
        if !wanted.is_empty() {
            p.validations
                .retain(|v| v.rules.iter().any(|r| wanted.contains(r)));
        }
        if !p.validations.is_empty() {
            out.push(p);
        }
    }
    Ok(out)
}

fn meta(name: &str, p: &PolicyDef, cat: &Catalogue) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        labels: Some(BTreeMap::from([(
            "app.kubernetes.io/managed-by".to_string(),
            "jackstop".to_string(),
        )])),
        annotations: Some(BTreeMap::from([
            ("jackstop.dev/rules".to_string(), p.rules().join(",")),
            (
                "jackstop.dev/description".to_string(),
                p.description.clone(),
            ),
            (
                "jackstop.dev/indicators-version".to_string(),
                cat.indicators.version().to_string(),
            ),
        ])),
        ..Default::default()
    }
}

/// The Kubernetes objects of one policy: the policy and its binding.
pub fn objects(
    p: &PolicyDef,
    cat: &Catalogue,
    options: &Options,
) -> (ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding) {
    let policy = ValidatingAdmissionPolicy {
        metadata: meta(&p.name, p, cat),
        spec: Some(ValidatingAdmissionPolicySpec {
            failure_policy: Some("Fail".into()),
            match_constraints: Some(MatchResources {
                resource_rules: Some(p.resource_rules.clone()),
                ..Default::default()
            }),
            match_conditions: (!p.match_conditions.is_empty()).then(|| {
                p.match_conditions
                    .iter()
                    .map(|(name, expression)| MatchCondition {
                        name: name.clone(),
                        expression: expression.clone(),
                    })
                    .collect()
            }),
            variables: (!p.variables.is_empty()).then(|| {
                p.variables
                    .iter()
                    .map(|(name, expression)| Variable {
                        name: name.clone(),
                        expression: expression.clone(),
                    })
                    .collect()
            }),
            validations: Some(
                p.validations
                    .iter()
                    .map(|v| K8sValidation {
                        expression: v.expression.clone(),
                        message: Some(v.message.clone()),
                        message_expression: v.message_expression.clone(),
                        reason: Some("Forbidden".into()),
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        status: None,
    };
    let mut excluded = vec!["kube-system".to_string()];
    for ns in &options.exclude_namespaces {
        if !excluded.contains(ns) {
            excluded.push(ns.clone());
        }
    }
    let binding = ValidatingAdmissionPolicyBinding {
        metadata: meta(&p.name, p, cat),
        spec: Some(ValidatingAdmissionPolicyBindingSpec {
            policy_name: Some(p.name.clone()),
            validation_actions: Some(vec![options.action.validation_action().into()]),
            match_resources: Some(MatchResources {
                namespace_selector: Some(LabelSelector {
                    match_expressions: Some(vec![LabelSelectorRequirement {
                        key: "kubernetes.io/metadata.name".into(),
                        operator: "NotIn".into(),
                        values: Some(excluded),
                    }]),
                    match_labels: None,
                }),
                ..Default::default()
            }),
            param_ref: None,
        }),
    };
    (policy, binding)
}

/// The API server's cost estimate for the regexes of a policy, per KiB of container text:
/// `matches()` and `findAll()` cost ceil(0.1 x (1 + string length)) x ceil(0.25 x pattern
/// length) (cel-go's runtime cost). A request's text is scanned once per validation, and again
/// (for `oldObject`) only where a check holds; a base64 check's regex runs only on the runs of
/// base64 characters.
#[derive(Debug, Clone, Copy, Default)]
pub struct CostModel {
    /// Every validation over one KiB of text without base64 runs.
    pub plain_per_kib: u64,
    /// Every validation over one KiB of text that is all base64.
    pub base64_per_kib: u64,
    /// The costliest single validation over one KiB of text (all base64).
    pub max_validation_per_kib: u64,
    /// The costliest single validation over one KiB of text without base64 runs.
    pub max_plain_validation_per_kib: u64,
}

/// The API server's limits: per expression, and per policy evaluation.
pub const PER_EXPRESSION_LIMIT: u64 = 1_000_000;
pub const PER_POLICY_BUDGET: u64 = 10_000_000;

fn per_kib(pattern_len: usize) -> u64 {
    103 * (pattern_len as u64).div_ceil(4)
}

impl CostModel {
    pub fn of(p: &PolicyDef, cat: &Catalogue) -> CostModel {
        let (checks, _) = miners::checks(cat);
        let mut m = CostModel::default();
        for v in &p.validations {
            let c = checks.iter().find(|c| c.id == v.id);
            let (plain, b64) = match c.filter(|c| c.target == Target::Text).map(|c| &c.matcher) {
                Some(Matcher::Regex(re)) => (per_kib(re.len()), per_kib(re.len())),
                Some(Matcher::Base64(re)) => (
                    per_kib(B64_RUN.len()),
                    per_kib(B64_RUN.len()) + per_kib(re.len()),
                ),
                None => (0, 0),
            };
            m.plain_per_kib += plain;
            m.base64_per_kib += b64;
            m.max_validation_per_kib = m.max_validation_per_kib.max(b64);
            m.max_plain_validation_per_kib = m.max_plain_validation_per_kib.max(plain);
        }
        m
    }

    /// How many KiB of text (all containers together) a request may carry before the API
    /// server stops the evaluation (and, with failurePolicy Fail, denies): text without base64
    /// runs, and text that is all base64.
    pub fn max_kib(&self) -> (u64, u64) {
        let bound = |total: u64, one: u64| {
            PER_POLICY_BUDGET
                .checked_div(total)
                .map_or(u64::MAX, |b| b.min(PER_EXPRESSION_LIMIT / one.max(1)))
        };
        (
            bound(self.plain_per_kib, self.max_plain_validation_per_kib),
            bound(self.base64_per_kib, self.max_validation_per_kib),
        )
    }
}

/// The multi-document YAML of the policies and their bindings, with a header that says what
/// is in it and what is not.
pub fn to_yaml(cat: &Catalogue, options: &Options) -> Result<String, ExportError> {
    let selected = select(cat, options)?;
    let mut out = String::new();
    out.push_str(
        "# jackstop policy export: ValidatingAdmissionPolicies (admissionregistration.k8s.io/v1,\n",
    );
    out.push_str("# Kubernetes 1.30+) generated from the jackstop catalogue");
    out.push_str(&format!(
        " (indicators version {}).\n",
        cat.indicators.version()
    ));
    out.push_str(&format!(
        "# Bindings: validationActions [{}], namespaces left out: {}.\n",
        options.action.validation_action(),
        std::iter::once("kube-system".to_string())
            .chain(options.exclude_namespaces.iter().cloned())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out.push_str(
        "# Per-object only: the webhook (`jackstop webhook`) also decodes payloads, weighs weak\n",
    );
    out.push_str(
        "# signals together and sees the cluster; the exposure policies are stricter than it.\n",
    );
    for p in &selected {
        let cost = CostModel::of(p, cat);
        if cost.plain_per_kib > 0 {
            let (plain, b64) = cost.max_kib();
            out.push_str(&format!(
                "# {}: CEL cost (the API server's formula) {} per KiB of container text ({} where it is all\n#   base64); over about {plain} KiB of command, args, env and script per object ({b64} KiB of base64)\n#   the API server stops evaluating and, with failurePolicy Fail, denies.\n",
                p.name, cost.plain_per_kib, cost.base64_per_kib
            ));
        }
    }
    for p in &selected {
        let (policy, binding) = objects(p, cat, options);
        for doc in [
            serde_saphyr::to_string(&policy),
            serde_saphyr::to_string(&binding),
        ] {
            out.push_str("---\n");
            out.push_str(&doc.map_err(|e| ExportError::Yaml(e.to_string()))?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod places {
    use super::{ARGO_TEMPLATES, COMMAND_TEXTS, CONTAINERS, POD_SPECS};
    use jackstop_analysers::workloads::{Shape, TABLE};
    use std::collections::BTreeSet;

    /// What a place holds, as the policies read it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Holds {
        PodSpec,
        Container,
        CommandText,
        ArgoTemplates,
    }

    type Place = (String, String, Holds);

    /// The places the workload extractor (and so the webhook) reads, as (kind, path, what) in
    /// the form of this crate's tables (a KubeRay group's `template.spec`, an Argo spec's
    /// `templates`); and, as (kind, path), the places no per-object CEL reads (texts that are
    /// parsed or templated, KFP executors, Spark roles, embedded objects).
    fn extractor() -> (BTreeSet<Place>, BTreeSet<(String, String)>) {
        let mut read = BTreeSet::new();
        let mut other = BTreeSet::new();
        for (kind, entries) in TABLE {
            for (path, shape) in *entries {
                let k = kind.to_string();
                match shape {
                    Shape::PodSpec => read.insert((k, path.to_string(), Holds::PodSpec)),
                    Shape::RayGroup => {
                        read.insert((k, format!("{path}.template.spec"), Holds::PodSpec))
                    }
                    Shape::Container | Shape::TrainJobTrainer => {
                        read.insert((k, path.to_string(), Holds::Container))
                    }
                    Shape::Entrypoint(_) => read.insert((k, path.to_string(), Holds::CommandText)),
                    Shape::ArgoTemplates => {
                        read.insert((k, format!("{path}.templates"), Holds::ArgoTemplates))
                    }
                    _ => other.insert((k, path.to_string())),
                };
            }
        }
        (read, other)
    }

    /// Every place the exported policies read.
    fn exported() -> BTreeSet<Place> {
        let mut out = BTreeSet::new();
        for (table, holds) in [(POD_SPECS, Holds::PodSpec), (CONTAINERS, Holds::Container)] {
            for (kinds, paths) in table {
                for kind in *kinds {
                    for path in *paths {
                        out.insert((kind.to_string(), path.to_string(), holds));
                    }
                }
            }
        }
        for (kinds, path) in ARGO_TEMPLATES {
            for kind in *kinds {
                out.insert((kind.to_string(), path.to_string(), Holds::ArgoTemplates));
            }
        }
        for (kind, path) in COMMAND_TEXTS {
            out.insert((kind.to_string(), path.to_string(), Holds::CommandText));
        }
        out
    }

    /// The exported policies look where the webhook looks: every place they read is one the
    /// workload table names for that kind, holding the same thing, so the two cannot drift
    /// apart unseen; and what only the webhook reads is named here (and in the README).
    #[test]
    fn every_exported_place_is_one_the_webhook_reads() {
        let (read, other) = extractor();
        let exported = exported();
        for p in &exported {
            assert!(
                read.contains(p),
                "{p:?}: exported but not in the workload table; the table has {:?}",
                read.iter()
                    .filter(|(k, _, _)| *k == p.0)
                    .collect::<Vec<_>>()
            );
        }
        // A kind added to the table must be exported or named here.
        let exported_kinds: BTreeSet<&str> = exported.iter().map(|(k, _, _)| k.as_str()).collect();
        let webhook_only_kinds: BTreeSet<&str> = TABLE
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !exported_kinds.contains(k))
            .collect();
        assert_eq!(
            webhook_only_kinds,
            BTreeSet::from([
                // Kubeflow Pipelines (executors, parameters), Katib (trials are embedded
                // objects), Spark, Tekton (steps in lists of lists).
                "Experiment",
                "Pipeline",
                "PipelineRun",
                "PipelineSpec",
                "ScheduledSparkApplication",
                "ScheduledWorkflow",
                "SparkApplication",
                "Task",
                "TaskRun",
            ])
        );
        // The places of exported kinds that only the webhook reads.
        let mut left: Vec<String> = read
            .iter()
            .filter(|p| !exported.contains(*p))
            .map(|(k, p, _)| (k.clone(), p.clone()))
            .chain(other.iter().cloned())
            .filter(|(k, _)| exported_kinds.contains(k.as_str()))
            .map(|(k, p)| format!("{k} {p}"))
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "RayCronJob spec.jobTemplate.runtimeEnvYAML",
                "RayJob spec.runtimeEnvYAML",
                "RayService spec.serveConfigV2",
                // A list of lists (runtime patches, each with replicated jobs): only env.
                "TrainJob spec.runtimePatches[*].trainingRuntimeSpec.template.spec.replicatedJobs[*].template.spec.template.spec",
            ]
        );
    }
}
