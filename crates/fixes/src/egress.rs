//! An egress NetworkPolicy for ML namespaces: an allowlist (DNS, in-cluster traffic, the API
//! server, HTTP and HTTPS out) rather than a list of pool ports to block, because pools move
//! ports at will; every pool port of the indicator catalogue is outside the allowlist, and a
//! test checks it.

use crate::{Effect, FindingRef, Fix, FixOptions, Method, MANAGED_BY};
use jackstop_core::{Category, Finding, Object};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// The name of the policy, one per namespace.
pub const EGRESS_POLICY_NAME: &str = "jackstop-egress-allowlist";

/// Ports allowed to leave the cluster: HTTP and HTTPS (package indexes, model hubs, object
/// stores, the API server's Service) and the API server's own port behind that Service.
pub const OUTBOUND_PORTS: &[u16] = &[80, 443, 6443];

/// The pool ports of the built-in indicator catalogue.
pub fn pool_ports() -> &'static [u16] {
    static PORTS: OnceLock<Vec<u16>> = OnceLock::new();
    PORTS.get_or_init(|| {
        #[derive(serde::Deserialize)]
        struct Catalogue {
            pool_ports: PoolPorts,
        }
        #[derive(serde::Deserialize)]
        struct PoolPorts {
            ports: Vec<u16>,
        }
        // The catalogue's data file, read as data: the same list the miner analysis matches.
        let text = include_str!("../../catalogue/data/indicators.yaml");
        serde_saphyr::from_str::<Catalogue>(text)
            .map(|c| c.pool_ports.ports)
            .unwrap_or_default()
    })
}

/// Kinds that make a namespace an ML namespace (besides Kubeflow profiles).
const ML_KINDS: &[&str] = &[
    "Notebook",
    "Workflow",
    "CronWorkflow",
    "ScheduledWorkflow",
    "TFJob",
    "PyTorchJob",
    "MPIJob",
    "XGBoostJob",
    "PaddleJob",
    "JAXJob",
    "TrainJob",
    "Experiment",
    "RayCluster",
    "RayJob",
    "RayService",
    "InferenceService",
    "SparkApplication",
    "PipelineJob",
];

/// Kubeflow profile namespaces and namespaces holding ML custom resources.
fn ml_namespaces(objects: &[Object]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for o in objects {
        match o.kind.as_str() {
            "Profile" if o.group() == "kubeflow.org" => {
                out.insert(o.name.clone());
            }
            "Namespace"
                if o.labels().is_some_and(|l| {
                    l.get("app.kubernetes.io/part-of").and_then(Value::as_str)
                        == Some("kubeflow-profile")
                }) =>
            {
                out.insert(o.name.clone());
            }
            k if ML_KINDS.contains(&k) && o.namespace.is_some() => {
                out.insert(o.effective_namespace().to_string());
            }
            _ => {}
        }
    }
    out
}

pub fn fixes(findings: &[Finding], objects: &[Object], opts: &FixOptions) -> Vec<Fix> {
    // Namespaces with a miner, with its findings; then, when asked, every ML namespace.
    let mut wanted: BTreeMap<String, Vec<FindingRef>> = BTreeMap::new();
    for f in findings.iter().filter(|f| f.category == Category::Miner) {
        if let Some(ns) = &f.resource.namespace {
            wanted.entry(ns.clone()).or_default().push(f.into());
        }
    }
    if opts.network_policy_all_ml {
        for ns in ml_namespaces(objects) {
            wanted.entry(ns).or_default();
        }
    }
    let existing: BTreeSet<&str> = objects
        .iter()
        .filter(|o| o.kind == "NetworkPolicy" && o.name == EGRESS_POLICY_NAME)
        .map(|o| o.effective_namespace())
        .collect();
    wanted
        .into_iter()
        .filter(|(ns, _)| !existing.contains(ns.as_str()))
        .map(|(ns, found)| {
            let mut fix = policy(&ns, found);
            let open: Vec<String> = objects
                .iter()
                .filter(|o| {
                    o.kind == "NetworkPolicy"
                        && o.effective_namespace() == ns
                        && o.name != EGRESS_POLICY_NAME
                        && allows_all_egress(o)
                })
                .map(|o| o.name.clone())
                .collect();
            if !open.is_empty() {
                fix.notes.insert(
                    0,
                    format!(
                        "WARNING: NetworkPolicy {} in {ns} already lets its pods send anything anywhere, and policies add up: this one blocks nothing for those pods until that rule is narrowed.",
                        open.join(", ")
                    ),
                );
            }
            fix
        })
        .collect()
}

/// Whether a NetworkPolicy has an egress rule that allows every port to every address (no
/// `to`, or an ipBlock of everything, and no `ports`).
fn allows_all_egress(o: &Object) -> bool {
    let types: Vec<&str> = o
        .at("spec.policyTypes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let egress = o.at("spec.egress").and_then(Value::as_array);
    if !types.contains(&"Egress") && egress.is_none() {
        return false;
    }
    egress.into_iter().flatten().any(|rule| {
        let any_port = rule
            .get("ports")
            .and_then(Value::as_array)
            .is_none_or(|p| p.is_empty());
        let anywhere = match rule.get("to").and_then(Value::as_array) {
            None => true,
            Some(to) => {
                to.is_empty()
                    || to.iter().any(|peer| {
                        peer.get("ipBlock")
                            .and_then(|b| b.get("cidr"))
                            .and_then(Value::as_str)
                            .is_some_and(|c| c == "0.0.0.0/0" || c == "::/0")
                    })
            }
        };
        any_port && anywhere
    })
}

/// The policy object for `ns`.
pub fn policy_object(ns: &str) -> Value {
    let outbound: Vec<Value> = OUTBOUND_PORTS
        .iter()
        .map(|p| json!({"protocol": "TCP", "port": p}))
        .collect();
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": EGRESS_POLICY_NAME,
            "namespace": ns,
            "labels": {MANAGED_BY.0: MANAGED_BY.1},
        },
        "spec": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [{
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}
                    }],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
                },
                {"to": [{"namespaceSelector": {}}]},
                {"ports": outbound}
            ]
        }
    })
}

fn policy(ns: &str, found: Vec<FindingRef>) -> Fix {
    let ports: Vec<String> = pool_ports().iter().map(u16::to_string).collect();
    let why = if found.is_empty() {
        "an ML namespace (asked with --network-policy)".to_string()
    } else {
        format!("{} miner finding(s) in it", found.len())
    };
    Fix {
        action: "egress-allowlist",
        method: Method::Apply,
        target: jackstop_core::ResourceRef {
            api_version: "networking.k8s.io/v1".into(),
            kind: "NetworkPolicy".into(),
            namespace: Some(ns.to_string()),
            name: EGRESS_POLICY_NAME.into(),
        },
        documents: vec![policy_object(ns)],
        findings: found,
        effect: Effect::Contains,
        changes: format!(
            "creates NetworkPolicy {ns}/{EGRESS_POLICY_NAME} ({why}): pods in {ns} may send only DNS to kube-dns, anything to pods inside the cluster, and TCP {} out; everything else leaving the cluster is dropped, the mining pool ports jackstop knows among it ({})",
            OUTBOUND_PORTS.iter().map(u16::to_string).collect::<Vec<_>>().join("/"),
            ports.join(", ")
        ),
        breaks: format!(
            "outbound connections of pods in {ns} on any other port (SSH to git hosts on 22, databases outside the cluster, custom ports): add a rule for each one you need. It takes effect only where the network plugin enforces NetworkPolicy (Calico, Cilium, ...)."
        ),
        notes: vec![
            "A pool reached on 443 (stratum over TLS on 443, or a pool behind a web proxy) is not blocked by port: an egress proxy or an FQDN policy (Cilium, Calico) is the next layer.".into(),
            "In Kubeflow profile namespaces the Istio sidecar carries the pods' traffic; the policy applies to it the same way.".into(),
        ],
        needs_input: false,
        requires: Vec::new(),
    }
}
