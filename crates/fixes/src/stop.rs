//! Stopping a miner: scale to zero, suspend or terminate, in the way each kind's controller
//! understands, so that its pods go and are not recreated. The object itself stays, for the
//! investigation (who created it, and how), and so does the finding, until it is deleted.

use crate::{Effect, Fix, FixOptions, Method};
use jackstop_core::{Finding, Object};
use serde_json::{json, Value};

/// The annotation that stops an InferenceService (its Deployments go, the object stays).
const KSERVE_STOP: &str = "serving.kserve.io/stop";

/// How a kind is stopped: the merge patch, what it changes, and what to know.
struct Stop {
    action: &'static str,
    patch: Value,
    changes: String,
    note: Option<&'static str>,
}

fn stop_for(o: &Object, opts: &FixOptions) -> Result<Stop, String> {
    let replicas = |o: &Object| {
        let was = o
            .at("spec.replicas")
            .map(Value::to_string)
            .unwrap_or_else(|| "1, the default".into());
        Stop {
            action: "scale-to-zero",
            patch: json!({"spec": {"replicas": 0}}),
            changes: format!("spec.replicas -> 0 (was {was}): its pods are deleted and not recreated; undo by setting it back"),
            note: None,
        }
    };
    let suspend = |path: &str, note: Option<&'static str>| {
        let mut patch = json!(true);
        for seg in path.rsplit('.') {
            patch = json!({ seg: patch });
        }
        Stop {
            action: "suspend",
            patch,
            changes: format!("{path} -> true: its running pods are stopped and no new ones start; undo by setting it to false"),
            note,
        }
    };
    Ok(match (o.group(), o.kind.as_str()) {
        ("apps", "Deployment" | "StatefulSet" | "ReplicaSet") | ("", "ReplicationController") => replicas(o),
        ("apps", "DaemonSet") => Stop {
            action: "no-nodes",
            patch: json!({"spec": {"template": {"spec": {"nodeSelector": {"jackstop.dev/stopped": "true"}}}}}),
            changes: "spec.template.spec.nodeSelector gets jackstop.dev/stopped=true, which no node has: its pods are removed from every node (a DaemonSet cannot be scaled)".into(),
            note: Some("Undo by removing the jackstop.dev/stopped node selector."),
        },
        ("batch", "Job") => suspend("spec.suspend", None),
        ("batch", "CronJob") => suspend(
            "spec.suspend",
            Some("A suspended CronJob starts no new Job, but Jobs it already started keep running: list them with `kubectl get jobs -n NAMESPACE` and suspend or delete them too."),
        ),
        ("kubeflow.org", "Notebook") => Stop {
            action: "stop-notebook",
            patch: json!({"metadata": {"annotations": {"kubeflow-resource-stopped": opts.now}}}),
            changes: "annotation kubeflow-resource-stopped set (what the Jupyter web app's STOP button does): the notebook controller scales its StatefulSet to zero; undo by removing the annotation".into(),
            note: None,
        },
        ("kubeflow.org", "TFJob" | "PyTorchJob" | "MPIJob" | "XGBoostJob" | "PaddleJob" | "JAXJob") => suspend(
            "spec.runPolicy.suspend",
            Some("Needs the Kubeflow training operator 1.7 or later (runPolicy.suspend); with an older one, delete the job."),
        ),
        ("trainer.kubeflow.org", "TrainJob") => suspend("spec.suspend", None),
        ("argoproj.io", "Workflow") => Stop {
            action: "terminate",
            patch: json!({"spec": {"shutdown": "Terminate"}}),
            changes: "spec.shutdown -> Terminate (what `argo terminate` does): the workflow controller stops every running step at once, exit handlers skipped".into(),
            note: None,
        },
        ("argoproj.io", "CronWorkflow") => suspend(
            "spec.suspend",
            Some("Workflows it already started keep running: terminate them too (`argo terminate`, or their own jackstop fix)."),
        ),
        ("kubeflow.org", "ScheduledWorkflow") => Stop {
            action: "disable",
            patch: json!({"spec": {"enabled": false}}),
            changes: "spec.enabled -> false: Kubeflow Pipelines starts no more runs of it".into(),
            note: Some("Runs it already started keep running: terminate their Workflows too."),
        },
        ("ray.io", "RayCluster" | "RayJob") => suspend(
            "spec.suspend",
            Some("Needs KubeRay 1.1 or later (spec.suspend); with an older operator, delete it."),
        ),
        ("jobset.x-k8s.io", "JobSet") => suspend("spec.suspend", None),
        ("sparkoperator.k8s.io", "ScheduledSparkApplication") => suspend(
            "spec.suspend",
            Some("SparkApplications it already started keep running: list them with `kubectl get sparkapplications -n NAMESPACE` and delete them (a SparkApplication cannot be suspended)."),
        ),
        ("serving.kserve.io", "InferenceService") => Stop {
            action: "stop-inferenceservice",
            patch: json!({"metadata": {"annotations": {KSERVE_STOP: "true"}}}),
            changes: format!("annotation {KSERVE_STOP}: \"true\": the KServe controller deletes the Deployments (or Knative Services) and Services that serve it; undo by removing the annotation"),
            note: Some("Needs KServe 0.14 or later, which knows the stop annotation; an older controller ignores it. Check that the InferenceService's Stopped condition turns True (`kubectl get inferenceservice -n NAMESPACE NAME -o jsonpath='{.status.conditions}'`), or delete it."),
        },
        ("tekton.dev", "PipelineRun") => Stop {
            action: "cancel",
            patch: json!({"spec": {"status": "Cancelled"}}),
            changes: "spec.status -> Cancelled (what `tkn pipelinerun cancel` does): Tekton cancels its running TaskRuns and deletes their pods, pending finally tasks not run".into(),
            note: Some("A cancelled run cannot be resumed: to undo, start a new run. A Tekton old enough to know only the deprecated value wants PipelineRunCancelled instead."),
        },
        ("tekton.dev", "TaskRun") => Stop {
            action: "cancel",
            patch: json!({"spec": {"status": "TaskRunCancelled"}}),
            changes: "spec.status -> TaskRunCancelled (what `tkn taskrun cancel` does): Tekton deletes its pod".into(),
            note: Some("A cancelled run cannot be resumed: to undo, start a new run."),
        },
        ("tekton.dev", "Task" | "Pipeline" | "ClusterTask") => {
            return Err(format!(
                "a {} runs nothing until a run refers to it: delete it (`kubectl delete {} {} -n {}`), and cancel the PipelineRuns and TaskRuns made from it (their own jackstop fixes)",
                o.kind,
                crate::kubectl_resource(&o.resource()),
                o.name,
                o.effective_namespace()
            ))
        }
        ("sparkoperator.k8s.io", "SparkApplication") => {
            let ns = o.effective_namespace();
            return Err(format!(
                "the Spark operator has no way to suspend a SparkApplication, only to delete it (which deletes its driver and executors). First collect what the investigation needs: `kubectl get sparkapplication.sparkoperator.k8s.io {name} -n {ns} -o yaml` and the driver's logs (`kubectl logs -n {ns} {driver}`); then `kubectl delete sparkapplication.sparkoperator.k8s.io {name} -n {ns}`",
                name = o.name,
                driver = o
                    .str_at("status.driverInfo.podName")
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{}-driver", o.name)),
            ));
        }
        ("ray.io", "RayService") => {
            let ns = o.effective_namespace();
            return Err(format!(
                "KubeRay has no way to suspend a RayService (spec.suspend is RayCluster's and RayJob's), only to delete it (which deletes its Ray clusters). First collect what the investigation needs: `kubectl get rayservice.ray.io {name} -n {ns} -o yaml` and the logs of the Ray heads in the namespace (`kubectl logs -n {ns} -l ray.io/node-type=head --all-containers`); then `kubectl delete rayservice.ray.io {name} -n {ns}`",
                name = o.name
            ));
        }
        ("", "Pod") => {
            return Err(format!(
                "a bare Pod cannot be scaled or suspended, only deleted: `kubectl delete pod {} -n {}` (after collecting what the investigation needs: `kubectl get pod -o yaml`, its logs)",
                o.name,
                o.effective_namespace()
            ))
        }
        ("argoproj.io", "WorkflowTemplate" | "ClusterWorkflowTemplate") => {
            return Err("a template runs nothing until it is submitted: delete it, and stop the Workflows made from it".into())
        }
        _ => {
            return Err(format!(
                "jackstop knows no way to stop a {} ({}) short of deleting it: see its remediation",
                o.kind, o.api_version
            ))
        }
    })
}

pub fn fixes(f: &Finding, object: Option<&Object>, opts: &FixOptions) -> Result<Vec<Fix>, String> {
    let Some(o) = object else {
        return Err(format!(
            "{} is not a Kubernetes object that can be patched (a file, a pipeline spec): remove the miner from it",
            f.resource
        ));
    };
    let stop = stop_for(o, opts)?;
    let mut notes = vec![
        "Stopping is not cleaning up: find who created it (audit log: `jackstop audit`) and how (an exposed dashboard: `jackstop scan`), then delete it; the finding stays until then.".to_string(),
    ];
    notes.extend(stop.note.map(str::to_string));
    Ok(vec![Fix {
        action: stop.action,
        method: Method::MergePatch,
        target: o.resource(),
        documents: vec![stop.patch],
        findings: vec![f.into()],
        effect: Effect::Stops,
        changes: stop.changes,
        breaks: format!(
            "{} itself: if it is legitimate work that was misjudged, undo as said above",
            o.display()
        ),
        notes,
        needs_input: false,
        requires: Vec::new(),
    }])
}
