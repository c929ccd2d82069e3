//! `jackstop policy export`: the YAML a user applies. Read back into the Kubernetes types (so
//! the shape is the API's), checked for structure, flags and bad input, compared with a golden
//! file (`tests/fixtures/policy/export.yaml`; `JACKSTOP_UPDATE_GOLDEN=1` rewrites it), and, when
//! the real kubectl is installed, parsed by kubectl itself (`kubectl kustomize`, which needs no
//! server: `kubectl apply --dry-run=client` needs API discovery).

mod common;

use common::{jackstop, kubectl, repo_root};
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use serde_json::Value;

fn documents(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(yaml).expect("multi-document YAML")
}

fn export(
    args: &[&str],
) -> (
    Vec<ValidatingAdmissionPolicy>,
    Vec<ValidatingAdmissionPolicyBinding>,
) {
    let mut a = vec!["policy", "export"];
    a.extend_from_slice(args);
    let run = jackstop(&a, None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut policies = Vec::new();
    let mut bindings = Vec::new();
    for d in documents(&run.stdout) {
        assert_eq!(d["apiVersion"], "admissionregistration.k8s.io/v1", "{d}");
        match d["kind"].as_str().unwrap() {
            "ValidatingAdmissionPolicy" => policies.push(serde_json::from_value(d).unwrap()),
            "ValidatingAdmissionPolicyBinding" => bindings.push(serde_json::from_value(d).unwrap()),
            k => panic!("unexpected kind {k}"),
        }
    }
    (policies, bindings)
}

#[test]
fn every_policy_has_its_binding_and_the_shape_of_the_api() {
    let (policies, bindings) = export(&[]);
    assert_eq!(policies.len(), 4);
    assert_eq!(bindings.len(), policies.len());
    for (p, b) in policies.iter().zip(&bindings) {
        let name = p.metadata.name.as_deref().unwrap();
        assert!(name.starts_with("jackstop-"), "{name}");
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.failure_policy.as_deref(), Some("Fail"));
        let validations = spec.validations.as_ref().unwrap();
        assert!(!validations.is_empty());
        for v in validations {
            assert!(!v.expression.is_empty());
            assert!(v
                .message
                .as_deref()
                .is_some_and(|m| m.starts_with("jackstop JS-")));
            assert!(v.message_expression.is_some());
            assert_eq!(v.reason.as_deref(), Some("Forbidden"));
        }
        let rules = spec
            .match_constraints
            .as_ref()
            .unwrap()
            .resource_rules
            .as_ref()
            .unwrap();
        assert!(rules
            .iter()
            .all(|r| r.operations.as_ref().is_some_and(|o| !o.is_empty())));
        let bs = b.spec.as_ref().unwrap();
        assert_eq!(bs.policy_name.as_deref(), Some(name));
        assert_eq!(bs.validation_actions.as_ref().unwrap(), &["Deny"]);
        let sel = bs
            .match_resources
            .as_ref()
            .unwrap()
            .namespace_selector
            .as_ref()
            .unwrap();
        let req = &sel.match_expressions.as_ref().unwrap()[0];
        assert_eq!(req.key, "kubernetes.io/metadata.name");
        assert_eq!(req.operator, "NotIn");
        assert_eq!(req.values.as_ref().unwrap(), &["kube-system"]);
    }
    let names: Vec<&str> = policies
        .iter()
        .map(|p| p.metadata.name.as_deref().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "jackstop-miner-commands",
            "jackstop-miner-images",
            "jackstop-exposed-dashboards",
            "jackstop-gateway-authentication"
        ]
    );
}

#[test]
fn flags_pick_rules_actions_and_namespaces() {
    let (p, b) = export(&["--rules", "JS-MIN-003", "--action", "warn"]);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].metadata.name.as_deref(), Some("jackstop-miner-images"));
    assert_eq!(
        b[0].spec
            .as_ref()
            .unwrap()
            .validation_actions
            .as_ref()
            .unwrap(),
        &["Warn"]
    );
    // Lower case, repeated, and a rule that shares a policy: only its validations.
    let (p, _) = export(&[
        "--rules",
        "js-exp-004",
        "--rules",
        "JS-MIN-001",
        "--action",
        "audit",
    ]);
    assert_eq!(p.len(), 2);
    let exposure = p[1].spec.as_ref().unwrap().validations.as_ref().unwrap();
    assert_eq!(exposure.len(), 1, "only the Argo server's Service check");
    assert!(exposure[0]
        .message
        .as_deref()
        .unwrap()
        .contains("JS-EXP-004"));
    let (_, b) = export(&[
        "--exclude-namespace",
        "sandbox",
        "--exclude-namespace",
        "ci-runners",
    ]);
    for b in &b {
        let spec = b.spec.as_ref().unwrap();
        let sel = spec
            .match_resources
            .as_ref()
            .unwrap()
            .namespace_selector
            .as_ref()
            .unwrap();
        assert_eq!(
            sel.match_expressions.as_ref().unwrap()[0]
                .values
                .as_ref()
                .unwrap(),
            &["kube-system", "sandbox", "ci-runners"]
        );
    }
    // -o FILE: the same YAML, nothing on stdout.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policies.yaml");
    let run = jackstop(&["policy", "export", "-o", file.to_str().unwrap()], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        jackstop(&["policy", "export"], None).stdout
    );
}

#[test]
fn bad_input_is_refused_with_exit_2() {
    for (args, says) in [
        (vec!["--rules", "JS-NOPE-9"], "unknown rule JS-NOPE-9"),
        (vec!["--rules", "JS-SUS-001"], "only the webhook"),
        (vec!["--rules", "JS-BUR-001"], "only the webhook"),
        (vec!["--action", "block"], "invalid value 'block'"),
        (
            vec!["--exclude-namespace", "Not_A_Namespace"],
            "is not a namespace name",
        ),
        (vec!["--exclude-namespace", ""], "is not a namespace name"),
        (
            vec!["-o", "/nonexistent-dir/x.yaml"],
            "cannot write /nonexistent-dir/x.yaml",
        ),
    ] {
        let mut a = vec!["policy", "export"];
        a.extend(args.iter().copied());
        let run = jackstop(&a, None);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}");
    }
    let run = jackstop(&["policy"], None);
    assert_eq!(run.code, 2);
}

#[test]
fn the_export_matches_its_golden_file() {
    let run = jackstop(&["policy", "export"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let golden = repo_root().join("tests/fixtures/policy/export.yaml");
    if std::env::var_os("JACKSTOP_UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &run.stdout).unwrap();
    }
    let want = std::fs::read_to_string(&golden)
        .expect("tests/fixtures/policy/export.yaml (JACKSTOP_UPDATE_GOLDEN=1 writes it)");
    if want != run.stdout {
        let line = want
            .lines()
            .zip(run.stdout.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(run.stdout.lines().count()));
        panic!(
            "the export differs from tests/fixtures/policy/export.yaml from line {}:\n  golden: {:?}\n  now:    {:?}\n(if the change is meant, rerun with JACKSTOP_UPDATE_GOLDEN=1 and review the diff)",
            line + 1,
            want.lines().nth(line),
            run.stdout.lines().nth(line)
        );
    }
}

/// The real kubectl reads the export: `kubectl kustomize` parses every document into its
/// resource model (apiVersion, kind, name) without a server.
#[test]
fn kubectl_reads_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let run = jackstop(&["policy", "export"], None);
    std::fs::write(dir.path().join("policies.yaml"), &run.stdout).unwrap();
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        "resources:\n- policies.yaml\n",
    )
    .unwrap();
    let out = kubectl(&[std::ffi::OsStr::new("kustomize"), dir.path().as_os_str()]);
    let docs = documents(&String::from_utf8(out).unwrap());
    assert_eq!(docs.len(), 8);
    // kubectl kept every expression byte for byte.
    let ours = documents(&run.stdout);
    for d in &docs {
        let same = ours
            .iter()
            .find(|o| o["kind"] == d["kind"] && o["metadata"]["name"] == d["metadata"]["name"])
            .unwrap();
        assert_eq!(same["spec"], d["spec"]);
    }
}
