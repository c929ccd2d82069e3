//! The command-line contract: formats, exit codes, stdin, exceptions, cross-file analysis,
//! and the real `kubectl` as a producer of input.

mod common;

use common::{jackstop, jackstop_in, repo_root, scan_json, summary};
use serde_json::Value;

fn rule_file(id: &str, which: &str) -> String {
    repo_root()
        .join(format!("tests/rules/{id}/{which}.yaml"))
        .display()
        .to_string()
}

#[test]
fn exit_codes_follow_fail_on() {
    let hit = rule_file("JS-EXP-004", "hit");
    assert_eq!(
        jackstop(&["scan", &hit, "-f", "json"], None).code,
        1,
        "critical >= default high"
    );
    assert_eq!(
        jackstop(&["scan", &hit, "-f", "json", "--fail-on", "none"], None).code,
        0
    );
    let miss = rule_file("JS-EXP-004", "miss");
    // The near miss is a medium (authenticated exposure): below high, at medium.
    assert_eq!(jackstop(&["scan", &miss, "-f", "json"], None).code, 0);
    assert_eq!(
        jackstop(&["scan", &miss, "-f", "json", "--fail-on", "medium"], None).code,
        1
    );
    assert_eq!(
        jackstop(&["scan", &hit, "--fail-on", "bogus"], None).code,
        2
    );
    assert_eq!(jackstop(&["scan"], None).code, 2);
    assert_eq!(jackstop(&["bogus"], None).code, 2);
}

#[test]
fn json_has_the_contract_fields() {
    let doc = scan_json(&[&rule_file("JS-EXP-001", "hit")]);
    let f = &doc["findings"][0];
    for key in [
        "rule",
        "category",
        "severity",
        "title",
        "resource",
        "location",
        "evidence",
        "remediation",
    ] {
        assert!(!f[key].is_null(), "finding lacks {key}: {f:#}");
    }
    assert_eq!(f["category"], "exposure");
    for key in ["apiVersion", "kind", "namespace", "name"] {
        assert!(f["resource"][key].is_string(), "resource lacks {key}");
    }
    for key in ["path", "line", "field"] {
        assert!(!f["location"][key].is_null(), "location lacks {key}");
    }
    assert!(doc["errors"].is_array());
    // The remediation starts with a command that can be pasted.
    assert!(f["remediation"]
        .as_str()
        .unwrap()
        .starts_with("kubectl -n istio-system patch service istio-ingressgateway"));
}

#[test]
fn sarif_is_valid_against_the_official_schema() {
    let mut schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/data/sarif-schema-2.1.0.json")).unwrap(),
    )
    .unwrap();
    // The official schema's `language` pattern has an unbalanced `]`, which strict regex
    // engines refuse; jackstop never writes `language`, so that pattern is dropped.
    fn drop_bad_pattern(v: &mut Value) {
        match v {
            Value::Object(m) => {
                if m.get("pattern").and_then(Value::as_str)
                    == Some("^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$")
                {
                    m.remove("pattern");
                }
                m.values_mut().for_each(drop_bad_pattern);
            }
            Value::Array(a) => a.iter_mut().for_each(drop_bad_pattern),
            _ => {}
        }
    }
    drop_bad_pattern(&mut schema);
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(rule_file("JS-EXP-001", "hit"), dir.path().join("a.yaml")).unwrap();
    std::fs::copy(rule_file("JS-EXP-009", "hit"), dir.path().join("b.yaml")).unwrap();
    std::fs::write(dir.path().join("bad.yaml"), "a: [").unwrap();
    let r = jackstop(
        &[
            "scan",
            dir.path().to_str().unwrap(),
            "-f",
            "sarif",
            "--fail-on",
            "none",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let sarif = r.json();
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let run = &sarif["runs"][0];
    assert_eq!(run["results"].as_array().unwrap().len(), 2);
    assert_eq!(
        run["tool"]["driver"]["rules"].as_array().unwrap().len(),
        2,
        "one entry per rule used"
    );
    let result = &run["results"][0];
    assert_eq!(result["level"], "error");
    assert!(
        result["locations"][0]["physicalLocation"]["region"]["startLine"]
            .as_u64()
            .unwrap()
            > 1
    );
    // Input errors travel as tool notifications.
    assert_eq!(
        run["invocations"][0]["toolExecutionNotifications"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn table_is_readable_and_uncoloured_off_a_terminal() {
    let r = jackstop(
        &[
            "scan",
            &rule_file("JS-EXP-001", "hit"),
            "-f",
            "table",
            "--fail-on",
            "none",
        ],
        None,
    );
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("CRITICAL"), "{}", r.stdout);
    assert!(r
        .stdout
        .contains("evidence: Internet -> Service istio-system/istio-ingressgateway"));
    assert!(
        !r.stdout.contains('\x1b'),
        "no colour when not on a terminal"
    );
    // Not a terminal and no --format: JSON.
    let r = jackstop(
        &["scan", &rule_file("JS-EXP-001", "hit"), "--fail-on", "none"],
        None,
    );
    assert!(r.stdout.trim_start().starts_with('{'));
}

#[test]
fn stdin_is_read_with_dash() {
    let text = std::fs::read(rule_file("JS-EXP-003", "hit")).unwrap();
    let r = jackstop(
        &["scan", "-", "-f", "json", "--fail-on", "none"],
        Some(&text),
    );
    let doc = r.json();
    let f = &doc["findings"][0];
    assert_eq!(f["rule"], "JS-EXP-003");
    assert_eq!(f["location"]["path"], "<stdin>");
}

/// The Service, the Gateway and VirtualService, and the workload in three files: the exposure
/// spans them.
#[test]
fn exposure_spans_files() {
    let text = std::fs::read_to_string(rule_file("JS-EXP-001", "hit")).unwrap();
    let docs: Vec<&str> = text.split("\n---\n").collect();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("istio")).unwrap();
    std::fs::create_dir_all(dir.path().join("apps/dashboard")).unwrap();
    std::fs::write(dir.path().join("istio/gateway-svc.yaml"), docs[0]).unwrap();
    std::fs::write(
        dir.path().join("istio/routing.yaml"),
        [docs[1], docs[2]].join("\n---\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("apps/dashboard/all.yaml"),
        [docs[3], docs[4]].join("\n---\n"),
    )
    .unwrap();
    let doc = scan_json(&[dir.path().to_str().unwrap()]);
    assert_eq!(
        summary(&doc),
        vec![(
            "JS-EXP-001".into(),
            "critical".into(),
            "istio-ingressgateway".into()
        )]
    );
    assert!(doc["findings"][0]["location"]["path"]
        .as_str()
        .unwrap()
        .ends_with("gateway-svc.yaml"));
}

#[test]
fn exceptions_by_annotation_and_ignore_file_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(rule_file("JS-EXP-003", "hit")).unwrap().replace(
        "  name: lab\n  namespace: research\nspec:\n  type: LoadBalancer",
        "  name: lab\n  namespace: research\n  annotations:\n    jackstop.dev/ignore: JS-EXP-003\n    jackstop.dev/ignore-reason: demo cluster, torn down nightly\nspec:\n  type: LoadBalancer",
    );
    assert!(text.contains("jackstop.dev/ignore"));
    std::fs::write(dir.path().join("lab.yaml"), text).unwrap();
    std::fs::copy(rule_file("JS-EXP-004", "hit"), dir.path().join("argo.yaml")).unwrap();
    let r = jackstop_in(dir.path(), &["scan", ".", "-f", "json"], None);
    assert_eq!(r.code, 1, "argo is still there");
    let doc = r.json();
    assert_eq!(doc["summary"]["suppressed"], 1);
    assert_eq!(
        doc["suppressed"][0]["reason"],
        "demo cluster, torn down nightly"
    );
    // The default ignore file in the working directory.
    std::fs::write(
        dir.path().join(".jackstopignore"),
        "JS-EXP-004 Ingress/argo/* # fronted by the VPN\n",
    )
    .unwrap();
    let r = jackstop_in(dir.path(), &["scan", ".", "-f", "json"], None);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let doc = r.json();
    assert_eq!(doc["summary"]["suppressed"], 2);
    assert_eq!(doc["findings"].as_array().unwrap().len(), 0);
    assert!(doc["suppressed"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["by"].as_str().unwrap().ends_with(".jackstopignore:1")));
    // A broken ignore file is a usage error that names the line.
    std::fs::write(dir.path().join(".jackstopignore"), "JS-EXP-004 a b c\n").unwrap();
    let r = jackstop_in(dir.path(), &["scan", ".", "-f", "json"], None);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("line 1"), "{}", r.stderr);
}

#[test]
fn rules_and_explain() {
    let r = jackstop(&["rules"], None);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("JS-EXP-001") && r.stdout.contains("critical"));
    let r = jackstop(&["explain", "js-exp-004"], None);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("--auth-mode=server") && r.stdout.contains("MS-TA9005"),
        "{}",
        r.stdout
    );
    let r = jackstop(&["explain", "JS-NOPE-1"], None);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("known rules"));
}

/// What `kubectl get ... -o json` prints: a `kind: List` (tests/data/kubectl-get-list.json is
/// the JS-EXP-005 hit in that shape, with the fields the API server adds).
#[test]
fn kubectl_json_list() {
    let path = repo_root().join("tests/data/kubectl-get-list.json");
    let doc = scan_json(&[path.to_str().unwrap()]);
    assert_eq!(
        summary(&doc),
        vec![(
            "JS-EXP-005".into(),
            "high".into(),
            "kubernetes-dashboard".into()
        )]
    );
    let line = doc["findings"][0]["location"]["line"].as_u64().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text.lines().nth(line as usize - 1).unwrap();
    assert!(
        at.contains("\"type\": \"NodePort\""),
        "line {line} points at the Service type: {at}"
    );
}

/// Helm/kustomize rendered output, produced here by the real `kubectl kustomize`.
#[test]
fn kubectl_kustomize_output_through_stdin() {
    let Ok(out) = std::process::Command::new("kubectl")
        .args([
            "kustomize",
            repo_root()
                .join("tests/data/kustomize-dashboard")
                .to_str()
                .unwrap(),
        ])
        .output()
    else {
        panic!("kubectl is installed on every machine of this project (see ../shared/docs/environment.md)");
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = jackstop(
        &["scan", "-", "-f", "json", "--fail-on", "none"],
        Some(&out.stdout),
    );
    let doc = r.json();
    assert_eq!(doc["errors"], serde_json::json!([]));
    let s = summary(&doc);
    assert_eq!(
        s,
        vec![(
            "JS-EXP-005".into(),
            "critical".into(),
            "prod-dashboard".into()
        )],
        "{doc:#}"
    );
    // kustomize's namePrefix and namespace are what the finding names.
    assert_eq!(doc["findings"][0]["resource"]["namespace"], "ops");
}

#[test]
fn helm_source_comments_are_kept() {
    let text = format!(
        "---\n# Source: argo/templates/server-deployment.yaml\n{}",
        std::fs::read_to_string(rule_file("JS-EXP-004", "hit"))
            .unwrap()
            .replace("\n---\n", "\n---\n# Source: argo/templates/other.yaml\n")
    );
    let r = jackstop(
        &["scan", "-", "-f", "json", "--fail-on", "none"],
        Some(text.as_bytes()),
    );
    let doc = r.json();
    assert_eq!(
        doc["findings"][0]["location"]["template"],
        "argo/templates/other.yaml"
    );
}

/// `--cluster` needs a reachable API server: a missing kubeconfig or a server that refuses
/// connections is exit code 2 with a message; files and `--cluster` are one or the other.
#[test]
fn cluster_scan_failures_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"http://127.0.0.1:9\"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
    )
    .unwrap();
    let r = jackstop(
        &[
            "scan",
            "--cluster",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--request-timeout",
            "3",
        ],
        None,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("does not answer discovery"),
        "{}",
        r.stderr
    );
    let r = jackstop(
        &[
            "scan",
            "--cluster",
            "--kubeconfig",
            dir.path().join("none").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("cannot load the kubeconfig"),
        "{}",
        r.stderr
    );
    let r = jackstop(&["scan", "--cluster", "examples"], None);
    assert_eq!(r.code, 2);
    let r = jackstop(&["scan", "--namespace", "x", "examples"], None);
    assert_eq!(r.code, 2, "--namespace needs --cluster");
}
