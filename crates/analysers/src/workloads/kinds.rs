//! Where each kind hides the things it will run. A new kind is one entry in [`TABLE`].

use super::TextRole;

/// What a path pattern points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A Kubernetes PodSpec (or anything PodSpec-like: a KServe predictor, a ServingRuntime's
    /// spec): `initContainers`, `containers`, `ephemeralContainers`, with `volumes` for lookups.
    PodSpec,
    /// One Kubernetes Container (a KServe model block, a Tekton step, a Katib collector).
    /// Named by its `name`, else by the last key of its path.
    Container,
    /// A KubeRay group (`headGroupSpec`, `workerGroupSpecs[i]`): its `template.spec` as a
    /// PodSpec, with `rayStartParams.num-gpus` for the GPU flag.
    RayGroup,
    /// An Argo workflow spec: its `templates` (container, script, containerSet, init
    /// containers, sidecars, podSpecPatch, resource manifest, inputs) and its own
    /// `podSpecPatch`, `arguments` and `volumes`.
    ArgoTemplates,
    /// A Kubeflow Pipelines v2 `deploymentSpec.executors` map: each executor's `container`,
    /// named by the executor key.
    KfpExecutors,
    /// A Kubeflow Trainer TrainJob's `trainer` (or initializer): a container without a name,
    /// with `resourcesPerNode`.
    TrainJobTrainer,
    /// A SparkApplication's `driver` or `executor`: image from the role or `spec.image`, the
    /// application (`mainClass`, `mainApplicationFile`, `arguments`) as the driver's command line.
    SparkRole,
    /// A string run or read as it is, yielded as a runnable of its own. `{name}` in the label is
    /// the `name` field next to the text (a parameter's name).
    Text(TextRole, &'static str),
    /// A Ray job entrypoint: run with the image found at the pattern given (relative to the
    /// object, or to the embedded object that holds it).
    Entrypoint(&'static str),
    /// A whole object embedded in this one (a Katib trial spec), extracted as its own kind.
    EmbeddedObject,
}

use Shape::*;

pub type Entry = (&'static str, &'static [(&'static str, Shape)]);

const POD_TEMPLATE: &[(&str, Shape)] = &[("spec.template.spec", PodSpec)];

const ARGO: &[(&str, Shape)] = &[("spec", ArgoTemplates)];

const RAY_CLUSTER: &[(&str, Shape)] = &[
    ("spec.headGroupSpec", RayGroup),
    ("spec.workerGroupSpecs[*]", RayGroup),
];

const RAY_JOB: &[(&str, Shape)] = &[
    ("spec.rayClusterSpec.headGroupSpec", RayGroup),
    ("spec.rayClusterSpec.workerGroupSpecs[*]", RayGroup),
    ("spec.submitterPodTemplate.spec", PodSpec),
    (
        "spec.entrypoint",
        Entrypoint("spec.rayClusterSpec.headGroupSpec.template.spec.containers[0].image"),
    ),
    (
        "spec.runtimeEnvYAML",
        Text(TextRole::RuntimeEnv, "Ray runtime environment"),
    ),
];

const RAY_CRON_JOB: &[(&str, Shape)] = &[
    ("spec.jobTemplate.rayClusterSpec.headGroupSpec", RayGroup),
    (
        "spec.jobTemplate.rayClusterSpec.workerGroupSpecs[*]",
        RayGroup,
    ),
    ("spec.jobTemplate.submitterPodTemplate.spec", PodSpec),
    (
        "spec.jobTemplate.entrypoint",
        Entrypoint(
            "spec.jobTemplate.rayClusterSpec.headGroupSpec.template.spec.containers[0].image",
        ),
    ),
    (
        "spec.jobTemplate.runtimeEnvYAML",
        Text(TextRole::RuntimeEnv, "Ray runtime environment"),
    ),
];

const RAY_SERVICE: &[(&str, Shape)] = &[
    ("spec.rayClusterConfig.headGroupSpec", RayGroup),
    ("spec.rayClusterConfig.workerGroupSpecs[*]", RayGroup),
    (
        "spec.serveConfigV2",
        Text(TextRole::RuntimeEnv, "Ray Serve config"),
    ),
];

const INFERENCE_SERVICE: &[(&str, Shape)] = &[
    ("spec.predictor", PodSpec),
    ("spec.predictor.model", Container),
    ("spec.predictor.tensorflow", Container),
    ("spec.predictor.pytorch", Container),
    ("spec.predictor.sklearn", Container),
    ("spec.predictor.xgboost", Container),
    ("spec.predictor.onnx", Container),
    ("spec.predictor.triton", Container),
    ("spec.predictor.huggingface", Container),
    ("spec.predictor.lightgbm", Container),
    ("spec.predictor.paddle", Container),
    ("spec.predictor.pmml", Container),
    ("spec.predictor.workerSpec", PodSpec),
    ("spec.transformer", PodSpec),
    ("spec.explainer", PodSpec),
    ("spec.explainer.alibi", Container),
    ("spec.explainer.art", Container),
];

const SERVING_RUNTIME: &[(&str, Shape)] = &[("spec", PodSpec), ("spec.workerSpec", PodSpec)];

/// An LLMInferenceService, and an LLMInferenceServiceConfig (a part of one, merged in through
/// `spec.baseRefs`): the same spec (KServe v0.16 CRDs).
const LLM_INFERENCE_SERVICE: &[(&str, Shape)] = &[
    ("spec.template", PodSpec),
    ("spec.worker", PodSpec),
    ("spec.prefill.template", PodSpec),
    ("spec.prefill.worker", PodSpec),
    // The endpoint picker (llm-d inference scheduler) the router runs.
    ("spec.router.scheduler.template", PodSpec),
];

const TRAINING_RUNTIME: &[(&str, Shape)] = &[(
    "spec.template.spec.replicatedJobs[*].template.spec.template.spec",
    PodSpec,
)];

const TEKTON_STEPS: &[(&str, Shape)] = &[
    ("spec.steps[*]", Container),
    ("spec.sidecars[*]", Container),
    ("spec.tasks[*].taskSpec.steps[*]", Container),
    ("spec.tasks[*].taskSpec.sidecars[*]", Container),
    ("spec.finally[*].taskSpec.steps[*]", Container),
    ("spec.taskSpec.steps[*]", Container),
    ("spec.taskSpec.sidecars[*]", Container),
    ("spec.pipelineSpec.tasks[*].taskSpec.steps[*]", Container),
    ("spec.pipelineSpec.tasks[*].taskSpec.sidecars[*]", Container),
    ("spec.pipelineSpec.finally[*].taskSpec.steps[*]", Container),
    // Parameters reach steps through `$(params.x)`: defaults of a Task or Pipeline, values
    // of a run.
    (
        "spec.params[*].default",
        Text(TextRole::Other, "Tekton parameter default"),
    ),
    (
        "spec.params[*].value",
        Text(TextRole::Other, "Tekton parameter value"),
    ),
    (
        "spec.taskSpec.params[*].default",
        Text(TextRole::Other, "Tekton parameter default"),
    ),
];

/// Every kind read, with where its runnables sit.
pub const TABLE: &[Entry] = &[
    ("Pod", &[("spec", PodSpec)]),
    ("PodTemplate", &[("template.spec", PodSpec)]),
    ("Deployment", POD_TEMPLATE),
    ("ReplicaSet", POD_TEMPLATE),
    ("StatefulSet", POD_TEMPLATE),
    ("DaemonSet", POD_TEMPLATE),
    ("Job", POD_TEMPLATE),
    ("ReplicationController", POD_TEMPLATE),
    (
        "CronJob",
        &[("spec.jobTemplate.spec.template.spec", PodSpec)],
    ),
    // Kubeflow notebooks (v1 and v1beta1 alike).
    ("Notebook", POD_TEMPLATE),
    // Argo Workflows, and Kubeflow Pipelines v1 ScheduledWorkflows that wrap one.
    ("Workflow", ARGO),
    ("WorkflowTemplate", ARGO),
    ("ClusterWorkflowTemplate", ARGO),
    ("CronWorkflow", &[("spec.workflowSpec", ArgoTemplates)]),
    (
        "ScheduledWorkflow",
        &[
            ("spec.workflow.spec", ArgoTemplates),
            (
                "spec.workflow.parameters[*].value",
                Text(TextRole::Other, "workflow parameter {name}"),
            ),
        ],
    ),
    // Kubeflow Pipelines v2: a pipeline spec, or a PipelineJob holding one.
    (
        "PipelineSpec",
        &[
            ("deploymentSpec.executors", KfpExecutors),
            ("pipelineSpec.deploymentSpec.executors", KfpExecutors),
            // Parameters reach executors' `{{$.inputs.parameters[...]}}` placeholders at run
            // time: constants of tasks, defaults of components, values of a job.
            (
                "root.dag.tasks.*.inputs.parameters.*.runtimeValue.constant",
                Text(TextRole::Other, "pipeline task parameter"),
            ),
            (
                "pipelineSpec.root.dag.tasks.*.inputs.parameters.*.runtimeValue.constant",
                Text(TextRole::Other, "pipeline task parameter"),
            ),
            (
                "components.*.inputDefinitions.parameters.*.defaultValue",
                Text(TextRole::Other, "component parameter default"),
            ),
            (
                "pipelineSpec.components.*.inputDefinitions.parameters.*.defaultValue",
                Text(TextRole::Other, "component parameter default"),
            ),
            (
                "runtimeConfig.parameterValues.*",
                Text(TextRole::Other, "pipeline job parameter"),
            ),
            (
                "runtimeConfig.parameters.*.stringValue",
                Text(TextRole::Other, "pipeline job parameter"),
            ),
        ],
    ),
    // Kubeflow training operator v1 (and MPIJob v2beta1).
    ("TFJob", &[("spec.tfReplicaSpecs.*.template.spec", PodSpec)]),
    (
        "PyTorchJob",
        &[("spec.pytorchReplicaSpecs.*.template.spec", PodSpec)],
    ),
    (
        "MPIJob",
        &[("spec.mpiReplicaSpecs.*.template.spec", PodSpec)],
    ),
    (
        "XGBoostJob",
        &[("spec.xgbReplicaSpecs.*.template.spec", PodSpec)],
    ),
    (
        "PaddleJob",
        &[("spec.paddleReplicaSpecs.*.template.spec", PodSpec)],
    ),
    (
        "JAXJob",
        &[("spec.jaxReplicaSpecs.*.template.spec", PodSpec)],
    ),
    // Kubeflow Trainer v2 (the v2.2 CRD): the initializers are the two the CRD has (it prunes
    // any other key); a runtime patch's pod spec holds containers' env, never a command or an
    // image.
    (
        "TrainJob",
        &[
            ("spec.trainer", TrainJobTrainer),
            ("spec.initializer.dataset", TrainJobTrainer),
            ("spec.initializer.model", TrainJobTrainer),
            (
                "spec.runtimePatches[*].trainingRuntimeSpec.template.spec.replicatedJobs[*].template.spec.template.spec",
                PodSpec,
            ),
        ],
    ),
    ("TrainingRuntime", TRAINING_RUNTIME),
    ("ClusterTrainingRuntime", TRAINING_RUNTIME),
    (
        "JobSet",
        &[(
            "spec.replicatedJobs[*].template.spec.template.spec",
            PodSpec,
        )],
    ),
    // Katib.
    (
        "Experiment",
        &[
            ("spec.trialTemplate.trialSpec", EmbeddedObject),
            (
                "spec.metricsCollectorSpec.collector.customCollector",
                Container,
            ),
        ],
    ),
    // KubeRay.
    ("RayCluster", RAY_CLUSTER),
    ("RayJob", RAY_JOB),
    ("RayCronJob", RAY_CRON_JOB),
    ("RayService", RAY_SERVICE),
    // KServe.
    ("InferenceService", INFERENCE_SERVICE),
    ("ServingRuntime", SERVING_RUNTIME),
    ("ClusterServingRuntime", SERVING_RUNTIME),
    ("LLMInferenceService", LLM_INFERENCE_SERVICE),
    ("LLMInferenceServiceConfig", LLM_INFERENCE_SERVICE),
    // Spark operator.
    (
        "SparkApplication",
        &[("spec.driver", SparkRole), ("spec.executor", SparkRole)],
    ),
    (
        "ScheduledSparkApplication",
        &[
            ("spec.template.driver", SparkRole),
            ("spec.template.executor", SparkRole),
        ],
    ),
    // Tekton (Katib trials may be PipelineRuns).
    ("Task", TEKTON_STEPS),
    ("TaskRun", TEKTON_STEPS),
    ("Pipeline", TEKTON_STEPS),
    ("PipelineRun", TEKTON_STEPS),
];

/// The entry of a kind, if it is read.
pub fn entry(kind: &str) -> Option<&'static [(&'static str, Shape)]> {
    TABLE.iter().find(|(k, _)| *k == kind).map(|(_, e)| *e)
}
