//! Golden tests: every rule of the catalogue has `tests/rules/<ID>/{hit,miss}.yaml` (manifests,
//! for `jackstop scan`) or `{hit,miss}.jsonl` (audit events, for `jackstop audit`); the hit
//! produces exactly `expected.json`, the near miss produces nothing of the rule.
//! `JACKSTOP_BLESS=1` rewrites `expected.json` for review.

mod common;

use common::{jackstop, repo_root, scan_json};
use serde_json::{json, Value};

/// The stable part of a finding, for golden comparison.
fn projection(f: &Value) -> Value {
    json!({
        "rule": f["rule"],
        "severity": f["severity"],
        "category": f["category"],
        "title": f["title"],
        "resource": f["resource"],
        "line": f["location"]["line"],
        "field": f["location"]["field"],
        "evidence": f["evidence"],
    })
}

#[test]
fn every_rule_has_a_hit_and_a_near_miss() {
    let rules = jackstop(&["rules", "-f", "json"], None).json();
    let bless = std::env::var_os("JACKSTOP_BLESS").is_some();
    let mut checked = 0;
    for rule in rules.as_array().unwrap() {
        let id = rule["id"].as_str().unwrap();
        let dir = repo_root().join("tests/rules").join(id);
        let ext = if dir.join("hit.jsonl").is_file() {
            "jsonl"
        } else {
            "yaml"
        };
        assert!(
            dir.join(format!("hit.{ext}")).is_file(),
            "{id}: tests/rules/{id}/hit.yaml (or hit.jsonl) is missing"
        );
        assert!(
            dir.join(format!("miss.{ext}")).is_file(),
            "{id}: tests/rules/{id}/miss.{ext} is missing"
        );
        let run = |stem: &str| {
            let path = dir.join(format!("{stem}.{ext}"));
            let path = path.to_str().unwrap();
            if ext == "jsonl" {
                jackstop(&["audit", path, "-f", "json", "--fail-on", "none"], None).json()
            } else {
                scan_json(&[path])
            }
        };

        let hit = run("hit");
        assert_eq!(hit["errors"], json!([]), "{id}: hit.yaml has input errors");
        let got: Vec<Value> = hit["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == id)
            .map(projection)
            .collect();
        assert!(
            !got.is_empty(),
            "{id}: hit.yaml produced no {id} finding: {hit:#}"
        );
        let expected_path = dir.join("expected.json");
        let got = Value::Array(got);
        if bless {
            std::fs::write(
                &expected_path,
                serde_json::to_string_pretty(&got).unwrap() + "\n",
            )
            .unwrap();
        } else {
            let expected: Value =
                serde_json::from_str(&std::fs::read_to_string(&expected_path).unwrap_or_else(
                    |_| panic!("{id}: expected.json missing; run with JACKSTOP_BLESS=1"),
                ))
                .unwrap();
            assert_eq!(
                got, expected,
                "{id}: hit.yaml findings differ from expected.json"
            );
        }

        let miss = run("miss");
        assert_eq!(
            miss["errors"],
            json!([]),
            "{id}: miss.yaml has input errors"
        );
        let wrong: Vec<&Value> = miss["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == id)
            .collect();
        assert!(wrong.is_empty(), "{id}: the near miss produced {wrong:#?}");
        checked += 1;
    }
    assert!(checked >= 9, "only {checked} rules checked");
}
