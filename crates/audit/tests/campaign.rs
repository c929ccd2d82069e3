//! The campaign in an audit log (tests/fixtures/audit): every attack step is found, by its
//! audit ID, and the background (controllers, kubelets, leases, health checks, a data
//! scientist's own work) is quiet; bad inputs are counted and reported, the rest still read;
//! the real audit events of ../shared/corpus/k8s-audit read without an error.

use jackstop_audit::rules::{AuditAnalyser, AuditSettings};
use jackstop_audit::{AuditReader, AuditStats, ReadOptions};
use jackstop_catalogue::Catalogue;
use jackstop_core::{Finding, InputError};
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/audit")
}

fn audit_with(paths: &[PathBuf], opts: ReadOptions) -> (Vec<Finding>, Vec<InputError>, AuditStats) {
    let mut reader = AuditReader::new(opts);
    let mut analyser = AuditAnalyser::new(Catalogue::builtin(), AuditSettings::default());
    for p in paths {
        reader.read_path(p.to_str().unwrap(), &mut analyser);
    }
    let (findings, notes) = analyser.finish();
    let mut errors = reader.errors;
    errors.extend(notes);
    (findings, errors, reader.stats)
}

fn audit(paths: &[PathBuf]) -> (Vec<Finding>, Vec<InputError>, AuditStats) {
    audit_with(paths, ReadOptions::default())
}

/// The audit IDs a finding stands on: its event's, and a burst's members'.
fn ids(f: &Finding) -> Vec<String> {
    let d = f.detail.as_ref().unwrap();
    let mut out: Vec<String> = d["auditID"]
        .as_str()
        .map(str::to_string)
        .into_iter()
        .collect();
    for id in d
        .get("auditIDs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push(id.as_str().unwrap().to_string());
    }
    for m in d
        .get("members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push(m["auditID"].as_str().unwrap().to_string());
    }
    out
}

fn rule_of(step: &str) -> &'static [&'static str] {
    match step {
        "door" => &["JS-AUD-001", "JS-AUD-002", "JS-AUD-003"],
        "anonymous" => &["JS-AUD-004"],
        "miner" => &[
            "JS-MIN-001",
            "JS-MIN-002",
            "JS-MIN-003",
            "JS-SUS-001",
            "JS-SUS-002",
        ],
        "burst" => &["JS-AUD-005"],
        "exec" => &["JS-AUD-006"],
        "binding" => &["JS-AUD-007"],
        other => panic!("unknown step {other}"),
    }
}

/// Every expected step has a finding of its rule standing on its audit ID, and every finding
/// stands on an expected step: nothing from the background.
fn check(findings: &[Finding], expected_file: &str) {
    let expected: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join(expected_file)).unwrap())
            .unwrap();
    let wanted: HashSet<String> = expected
        .iter()
        .map(|e| e["auditID"].as_str().unwrap().to_string())
        .collect();
    for e in &expected {
        let id = e["auditID"].as_str().unwrap();
        let rules = rule_of(e["step"].as_str().unwrap());
        assert!(
            findings
                .iter()
                .any(|f| rules.contains(&f.rule.as_str()) && ids(f).iter().any(|x| x == id)),
            "step not found: {e}\nfindings: {:#?}",
            findings
                .iter()
                .map(|f| (&f.rule, &f.title, ids(f)))
                .collect::<Vec<_>>()
        );
    }
    for f in findings {
        assert!(
            ids(f).iter().any(|x| wanted.contains(x)),
            "a finding on the background: {} {} {:?}",
            f.rule,
            f.title,
            f.evidence
        );
    }
}

#[test]
fn every_step_of_the_campaign_is_found_and_the_background_is_quiet() {
    let (findings, errors, stats) = audit(&[fixtures().join("kubeflow-campaign.jsonl")]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(stats.events, 750);
    assert_eq!(stats.bad_lines, 0);
    assert!(
        stats.reads_skipped > 100,
        "the quick path was taken: {stats:?}"
    );
    check(&findings, "expected.json");
    // Who, when, from where, on every finding.
    for f in &findings {
        let d = f.detail.as_ref().unwrap();
        assert!(
            d["time"].is_string() && d["user"].is_string() && d["sourceIPs"].is_array(),
            "{d}"
        );
        assert!(f.location.path.ends_with("kubeflow-campaign.jsonl") && f.location.line > 0);
    }
    // The burst: one identity, six namespaces, the Workflow too.
    let burst: Vec<&Finding> = findings.iter().filter(|f| f.rule == "JS-AUD-005").collect();
    assert_eq!(burst.len(), 1, "{burst:#?}");
    assert!(
        burst[0].title.contains("across 6 namespaces"),
        "{}",
        burst[0].title
    );
    assert_eq!(burst[0].severity.as_str(), "critical");
}

#[test]
fn anonymous_access_is_found() {
    let (findings, errors, _) = audit(&[fixtures().join("anonymous-api.jsonl")]);
    assert!(errors.is_empty(), "{errors:?}");
    check(&findings, "anonymous-api.expected.json");
}

#[test]
fn gzip_and_plain_give_the_same_findings() {
    let (plain, _, a) = audit(&[fixtures().join("kubeflow-campaign.jsonl")]);
    let (gz, errors, b) = audit(&[fixtures().join("bad/campaign.jsonl.gz")]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(a.events, b.events);
    let key = |f: &Finding| (f.rule.clone(), f.title.clone(), f.location.line);
    assert_eq!(
        plain.iter().map(key).collect::<Vec<_>>(),
        gz.iter().map(key).collect::<Vec<_>>()
    );
}

fn lines_of(errors: &[InputError]) -> Vec<u32> {
    errors.iter().filter_map(|e| e.line).collect()
}

#[test]
fn bad_inputs_are_counted_and_reported_and_reading_goes_on() {
    let bad = fixtures().join("bad");
    let (_, errors, stats) = audit(&[bad.join("truncated-last-line.jsonl")]);
    assert_eq!((stats.events, stats.bad_lines), (5, 1));
    assert_eq!(lines_of(&errors), [6]);
    assert!(errors[0].message.contains("cut short"), "{errors:?}");

    let (_, errors, stats) = audit(&[bad.join("non-json-lines.jsonl")]);
    assert_eq!((stats.events, stats.bad_lines), (9, 6));
    assert_eq!(lines_of(&errors), [2, 4, 8, 12, 14, 16]);

    let (findings, errors, stats) = audit(&[bad.join("wrong-version.jsonl")]);
    assert_eq!((stats.events, stats.bad_lines), (5, 4));
    assert_eq!(lines_of(&errors), [4, 5, 7, 8]);
    assert!(
        findings.is_empty(),
        "a Pod line is not an audit event: {findings:?}"
    );

    let (findings, errors, stats) = audit(&[bad.join("eventlist.json")]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(stats.events, 5);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].rule, "JS-AUD-001");
    assert_eq!(ids(&findings[0]), ["dbdc85e4-94ad-49d2-8100-565927b9cc09"]);

    let (_, errors, stats) = audit(&[bad.join("truncated.jsonl.gz")]);
    assert_eq!(stats.events, 17);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].message.contains("gzip stream ends early"),
        "{errors:?}"
    );

    // A file that is not there, then a good one: the good one is still read.
    let (findings, errors, _) = audit(&[bad.join("nope.jsonl"), bad.join("eventlist.json")]);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.starts_with("cannot read"), "{errors:?}");
    assert_eq!(findings.len(), 1);
}

#[test]
fn a_line_longer_than_the_limit_is_skipped_and_the_next_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let door = std::fs::read_to_string(fixtures().join("kubeflow-campaign.jsonl"))
        .unwrap()
        .lines()
        .nth(145)
        .unwrap()
        .to_string();
    let huge = format!("{{\"kind\":\"Event\",\"x\":\"{}\"}}", "a".repeat(3 << 20));
    let path = dir.path().join("long.jsonl");
    std::fs::write(&path, format!("{huge}\n{door}\n{huge}")).unwrap();
    let (findings, errors, stats) = audit_with(
        &[path],
        ReadOptions {
            max_event_bytes: 1 << 20,
            ..ReadOptions::default()
        },
    );
    assert_eq!(lines_of(&errors), [1, 3], "{errors:?}");
    assert!(errors[0].message.contains("longer than 1048576 bytes"));
    assert_eq!(stats.bad_lines, 2);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].rule, "JS-AUD-001");
}

#[test]
fn since_and_until_cut_the_time_range() {
    // Only day 2: the attack without the door.
    let (findings, _, stats) = audit_with(
        &[fixtures().join("kubeflow-campaign.jsonl")],
        ReadOptions {
            since: Some("2021-06-08T00:00:00Z".parse().unwrap()),
            ..ReadOptions::default()
        },
    );
    assert!(stats.out_of_range > 0);
    let rules: BTreeSet<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
    assert!(
        !rules.contains("JS-AUD-001") && rules.contains("JS-AUD-005"),
        "{rules:?}"
    );
    // Only day 1: the door and nothing else.
    let (findings, _, _) = audit_with(
        &[fixtures().join("kubeflow-campaign.jsonl")],
        ReadOptions {
            until: Some("2021-06-08T00:00:00Z".parse().unwrap()),
            ..ReadOptions::default()
        },
    );
    let rules: BTreeSet<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(rules, BTreeSet::from(["JS-AUD-001", "JS-AUD-003"]));
}

#[test]
fn the_real_audit_corpus_reads_without_an_error() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/k8s-audit");
    if !corpus.is_dir() {
        eprintln!("skipped: {} is not here", corpus.display());
        return;
    }
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in ["falco-trace-files", "audit2rbac"] {
        for e in std::fs::read_dir(corpus.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if matches!(p.extension().and_then(|x| x.to_str()), Some("json" | "log")) {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 17, "{files:?}");
    let (findings, errors, stats) = audit(&files);
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(stats.events >= 50, "{stats:?}");
    // Falco's positives: anonymous namespace creation, exec, attach, a NodePort Service (not
    // a door: nginx), a cluster-admin binding.
    let rules: BTreeSet<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
    assert!(
        rules.contains("JS-AUD-004") && rules.contains("JS-AUD-006"),
        "{rules:?}"
    );
    assert!(
        !rules.contains("JS-AUD-001"),
        "nginx is not a door: {findings:#?}"
    );
    // The deliberately malformed event is one bad line, not a crash.
    let (_, errors, stats) = audit(&[corpus.join("malformed/fal_01_003.json")]);
    assert_eq!((stats.bad_lines, errors.len()), (1, 1));
}

/// The API server's log directory: rotated logs (gzip) before the current one, by name; hidden
/// files and subdirectories left out. The same story as the one file it was cut from.
#[test]
fn a_log_directory_is_read_in_the_order_it_was_written() {
    use std::io::Write;
    let whole = fixtures().join("kubeflow-campaign.jsonl");
    let text = std::fs::read_to_string(&whole).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    let dir = tempfile::tempdir().unwrap();
    // Rotated by the API server's lumberjack: `audit-<time>.log.gz`, then the live `audit.log`.
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(dir.path().join("audit-2021-06-08T03-14-09.000.log.gz")).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all((first.join("\n") + "\n").as_bytes()).unwrap();
    gz.finish().unwrap();
    std::fs::write(dir.path().join("audit.log"), second.join("\n") + "\n").unwrap();
    std::fs::write(dir.path().join(".audit.log.swp"), "not an audit event\n").unwrap();
    std::fs::create_dir(dir.path().join("archive")).unwrap();
    std::fs::write(dir.path().join("archive/other.log"), "not an audit event\n").unwrap();

    let (one, _, a) = audit(&[whole]);
    let (split, errors, b) = audit(&[dir.path().to_path_buf()]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(b.files, 2);
    assert_eq!(a.events, b.events);
    let key = |f: &Finding| (f.rule.clone(), f.title.clone());
    assert_eq!(
        one.iter().map(key).collect::<Vec<_>>(),
        split.iter().map(key).collect::<Vec<_>>()
    );

    // A directory with nothing to read says so.
    let empty = tempfile::tempdir().unwrap();
    let (_, errors, stats) = audit(&[empty.path().to_path_buf()]);
    assert_eq!(stats.files, 0);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].message.contains("no files"), "{errors:?}");
}
