//! Finding the miners, end to end, on real data: every real positive in
//! `../shared/corpus/miners` is found, and the real benign corpora (Argo examples, KFP
//! pipelines, notebooks and training jobs, KubeRay samples, the Kubeflow install) stay quiet.

mod common;

use common::{corpus, findings, jackstop, repo_root, scan_json};
use serde_json::Value;

fn rules_of(doc: &Value, path_suffix: &str) -> Vec<String> {
    findings(doc)
        .iter()
        .filter(|f| {
            f["location"]["path"]
                .as_str()
                .unwrap_or_default()
                .ends_with(path_suffix)
        })
        .map(|f| {
            format!(
                "{} {}",
                f["rule"].as_str().unwrap(),
                f["severity"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn every_real_positive_is_found() {
    let dir = corpus().join("miners");
    let doc = scan_json(&[dir.to_str().unwrap()]);
    assert_eq!(doc["errors"], serde_json::json!([]), "{:#}", doc["errors"]);
    // (file, the rule that must be among its findings)
    let expected = [
        ("k8s-manifests/lacework-k8s-crypto-miner.yaml", "JS-MIN-001"),
        ("k8s-manifests/cpfarhood-daemonset.yaml", "JS-MIN-001"),
        ("k8s-manifests/cpfarhood-deployment-old.yaml", "JS-MIN-001"),
        (
            "k8s-manifests/choukalos-mine_xmr_deployment.yml",
            "JS-MIN-001",
        ),
        ("k8s-manifests/rcmelendez-xmrig.yaml", "JS-MIN-001"),
        ("k8s-manifests/m3rc1ful-cryptominer.yaml", "JS-MIN-001"),
        ("k8s-manifests/zetneteork-xmrig.yaml", "JS-MIN-001"),
        ("xmrig-configs/xmrig-src-config.json", "JS-MIN-002"),
        ("xmrig-configs/xmrig-api-v1-config.json", "JS-MIN-002"),
        ("xmrig-configs/xmrig-api-v1-summary.json", "JS-MIN-002"),
        ("xmrig-configs/xmrig-api-v1-threads.json", "JS-MIN-002"),
        ("xmrig-configs/rcmelendez-config.json", "JS-MIN-002"),
        ("xmrig-configs/m3rc1ful-config.json", "JS-MIN-002"),
        ("xmrig-configs/zetneteork-config.json", "JS-MIN-002"),
        ("compose/m3rc1ful-docker-compose.yml", "JS-MIN-002"),
        ("compose/rcmelendez-docker-compose.yml", "JS-MIN-002"),
        ("compose/zetneteork-docker-compose.yml", "JS-MIN-002"),
        (
            "non-k8s/ashishgetbit-miner-cloudformation.yaml",
            "JS-MIN-002",
        ),
    ];
    let mut missed = Vec::new();
    for (file, rule) in expected {
        let got = rules_of(&doc, file);
        if !got.iter().any(|g| g.starts_with(rule)) {
            missed.push(format!("{file}: expected {rule}, got {got:?}"));
        }
    }
    assert!(
        missed.is_empty(),
        "missed real positives:\n{}",
        missed.join("\n")
    );
    // The companions of a miner are context, not miners: the NetworkPolicy and the kustomization.
    for file in [
        "cpfarhood-networkpolicy.yaml",
        "cpfarhood-kustomization.yaml",
    ] {
        assert!(
            rules_of(&doc, file).is_empty(),
            "{file}: {:?}",
            rules_of(&doc, file)
        );
    }
}

/// The benign corpora, each scanned as a whole: no miner finding, and nothing high or critical
/// from the workload analysis. (The KubeRay samples that publish the Ray dashboard through a
/// public Ingress or Gateway without authentication are real exposures, reported by the
/// exposure analysis and tested there.)
#[test]
fn real_benign_corpora_stay_quiet() {
    for name in [
        "argo-examples",
        "kfp",
        "notebooks-training",
        "kuberay",
        "kubeflow-platform",
    ] {
        let dir = corpus().join(name);
        let doc = scan_json(&[dir.to_str().unwrap()]);
        let loud: Vec<String> = findings(&doc)
            .iter()
            .filter(|f| {
                f["category"] == "miner"
                    || (f["category"] != "exposure"
                        && (f["severity"] == "high" || f["severity"] == "critical"))
            })
            .map(|f| {
                format!(
                    "{} {} {} {}:{} {}",
                    f["rule"],
                    f["severity"],
                    f["title"],
                    f["location"]["path"],
                    f["location"]["line"],
                    f["evidence"]
                )
            })
            .collect();
        assert!(
            loud.is_empty(),
            "{name}: false positives:\n{}",
            loud.join("\n")
        );
    }
}

#[test]
fn the_example_shows_the_whole_incident() {
    let r = jackstop(&["scan", "examples/kubeflow-incident", "-f", "json"], None);
    assert_eq!(r.code, 1, "criticals fail the run: {}", r.stderr);
    let doc = r.json();
    let got: Vec<(String, String, String)> = findings(&doc)
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
                f["resource"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (rule, sev, name) in [
        ("JS-EXP-001", "critical", "istio-ingressgateway"),
        ("JS-MIN-001", "critical", "tf-train-cpu"),
        ("JS-MIN-001", "critical", "tf-train-gpu"),
        ("JS-MIN-001", "critical", "analysis"),
        ("JS-MIN-001", "critical", "train-pipeline-x7k2p"),
        ("JS-BUR-001", "high", "tf-train-cpu"),
        ("JS-BUR-001", "high", "analysis"),
    ] {
        assert!(
            got.contains(&(rule.to_string(), sev.to_string(), name.to_string())),
            "missing {rule} {sev} {name} in {got:#?}"
        );
    }
    // Both miners are named, and the notebook's base64 payload is shown decoded.
    let text = r.stdout;
    assert!(
        text.contains("XMRig") && text.contains("Ethminer"),
        "{text}"
    );
    assert!(text.contains("decoded base64"), "{text}");
    // The table names both miners too (the README's quick start).
    let table = jackstop(&["scan", "examples/kubeflow-incident", "-f", "table"], None);
    assert!(table.stdout.contains("XMRig") && table.stdout.contains("Ethminer"));
}

/// Bad input for the miner analysis: a 10 MB single-line argument, base64 nested past the
/// decoding depth, deeply nested embedded objects. Each gets a clear entry in `errors` naming
/// the file; the miner in another file is still found.
#[test]
fn bad_input_is_bounded_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let big = "QUJDRGVmZ2gxMjM0".repeat(10 * 1024 * 1024 / 16);
    std::fs::write(
        dir.path().join("big.yaml"),
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: big, namespace: a}}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    args: [\"{big}\"]\n"
        ),
    )
    .unwrap();
    let mut nested = String::from("xmrig --donate-level 1");
    for _ in 0..12 {
        nested = base64_encode(&nested);
    }
    std::fs::write(
        dir.path().join("nested.yaml"),
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: nested, namespace: a}}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    command: [sh, -c, \"echo {nested} | base64 -d | sh\"]\n"
        ),
    )
    .unwrap();
    // A Katib Experiment whose trial is an Experiment whose trial is ... (embedded too deep).
    let mut trial = String::from("{apiVersion: batch/v1, kind: Job, spec: {template: {spec: {containers: [{name: c, image: busybox}]}}}}");
    for _ in 0..6 {
        trial = format!("{{apiVersion: kubeflow.org/v1beta1, kind: Experiment, spec: {{trialTemplate: {{trialSpec: {trial}}}}}}}");
    }
    std::fs::write(
        dir.path().join("deep.yaml"),
        format!("apiVersion: kubeflow.org/v1beta1\nkind: Experiment\nmetadata: {{name: deep, namespace: a}}\nspec: {{trialTemplate: {{trialSpec: {trial}}}}}\n"),
    )
    .unwrap();
    std::fs::copy(
        repo_root().join("tests/rules/JS-MIN-001/hit.yaml"),
        dir.path().join("miner.yaml"),
    )
    .unwrap();
    let doc = scan_json(&[dir.path().to_str().unwrap()]);
    let errors: Vec<String> = doc["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["path"].as_str().unwrap(),
                e["message"].as_str().unwrap()
            )
        })
        .collect();
    for file in ["big.yaml", "nested.yaml", "deep.yaml"] {
        assert!(
            errors
                .iter()
                .any(|e| e.contains(file) && e.contains("not fully analysed")),
            "{file}: {errors:#?}"
        );
    }
    let found: Vec<String> = findings(&doc)
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f["rule"].as_str().unwrap(),
                f["resource"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        found.contains(&"JS-MIN-001 tf-train".to_string()),
        "{found:?}"
    );
}

fn base64_encode(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// What a review of the miner analysis found: look-alikes that ML teams run every day (YOLO
/// classes named "excavator", Cisco TRex, crypto price forecasts, Falco rules that list miner
/// names, tool installers, Helm installs and sweeps) stay quiet or below `high`; the droppers it
/// wrote are found.
#[test]
fn review_fixtures() {
    // Each on its own: they are unrelated scenarios whose timestamps happen to coincide.
    let looks = repo_root().join("tests/fixtures/look-alikes");
    for entry in std::fs::read_dir(&looks).unwrap() {
        let path = entry.unwrap().path();
        let doc = scan_json(&[path.to_str().unwrap()]);
        let loud: Vec<String> = findings(&doc)
            .iter()
            .filter(|f| {
                f["category"] == "miner" || f["severity"] == "high" || f["severity"] == "critical"
            })
            .map(|f| format!("{} {} {}", f["rule"], f["severity"], f["resource"]["name"]))
            .collect();
        assert!(loud.is_empty(), "{}: {loud:#?}", path.display());
    }
    let drops = repo_root().join("tests/fixtures/droppers");
    let doc = scan_json(&[drops.to_str().unwrap()]);
    for (file, name, rule) in [
        ("argo-artifact.yaml", "fetch", "JS-MIN-001"),
        ("argo-artifact.yaml", "t", "JS-MIN-001"),
        ("cm-ns.yaml", "worker", "JS-MIN-001"),
        ("kfp-param.yaml", "train-pipeline", "JS-MIN-001"),
        ("misc.yaml", "kinsing", "JS-MIN-001"),
        ("misc.yaml", "proxy-miner", "JS-SUS-002"),
        ("misc.yaml", "envpipe", "JS-SUS-001"),
        ("misc.yaml", "minimal-cfg", "JS-MIN-001"),
        ("wallet-us.yaml", "w", "JS-MIN-001"),
        ("wrapped.yaml", "loader", "JS-MIN-001"),
        ("pos.yaml", "c3", "JS-MIN-001"),
        ("gzip.yaml", "nb", "JS-MIN-001"),
    ] {
        assert!(
            findings(&doc)
                .iter()
                .any(|f| f["location"]["path"].as_str().unwrap().ends_with(file)
                    && f["resource"]["name"] == name
                    && f["rule"] == rule),
            "{file} {name}: expected {rule}; got {:#?}",
            rules_of(&doc, file)
        );
    }
}
