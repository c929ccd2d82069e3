//! `deploy/rbac.yaml` lets jackstop read every kind its analysers read, and nothing else:
//! get/list/watch only, never Secrets.

mod support;

use jackstop_manifests::reader::{parse_text, ManifestSet, ReadOptions};
use std::collections::HashSet;

#[test]
fn the_cluster_role_covers_every_kind_read_and_nothing_more() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/rbac.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut set = ManifestSet::default();
    parse_text(&text, "rbac.yaml", &ReadOptions::default(), &mut set);
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    let role = set
        .objects
        .iter()
        .find(|o| o.kind == "ClusterRole")
        .unwrap();
    let mut granted = HashSet::new();
    for rule in role.at("rules").unwrap().as_array().unwrap() {
        let verbs: Vec<&str> = rule["verbs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(verbs, ["get", "list", "watch"], "read-only: {rule}");
        for r in rule["resources"].as_array().unwrap() {
            let r = r.as_str().unwrap();
            assert_ne!(r, "secrets");
            assert_ne!(r, "*");
            granted.insert(r.to_string());
        }
    }
    let not_api = ["Document", "PipelineSpec", "Secret"];
    let missing: Vec<String> = jackstop_analysers::all()
        .iter()
        .flat_map(|a| a.kinds().iter())
        .filter(|k| !not_api.contains(k))
        .map(|k| support::plural(k))
        .filter(|p| !granted.contains(p))
        .collect();
    assert!(missing.is_empty(), "deploy/rbac.yaml lacks {missing:?}");
}
