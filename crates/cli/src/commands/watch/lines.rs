//! How `jackstop watch` writes: one JSON object per line (`jsonl`), or one readable line per
//! event on a terminal (`table`). Each finding line is the contract's finding with two more
//! fields: `event` (existing, new, changed, resolved) and `observedAt`.

use crate::cli::StreamFormat;
use jackstop_core::changes::Change;
use jackstop_core::{Finding, InputError};
use jackstop_report::table::paint;
use serde_json::{json, Value};
use std::io::Write;

/// Where lines go; every line is flushed at once (a watch is read as it happens).
pub struct Lines<W: Write> {
    out: W,
    format: StreamFormat,
    color: bool,
}

impl<W: Write> Lines<W> {
    pub fn new(out: W, format: StreamFormat, color: bool) -> Self {
        Lines { out, format, color }
    }

    pub fn finding(&mut self, change: Change, f: &Finding) -> std::io::Result<()> {
        let now = now();
        match self.format {
            StreamFormat::Jsonl => {
                let mut v = serde_json::to_value(f).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.insert("event".into(), json!(change.as_str()));
                    m.insert("observedAt".into(), json!(now));
                }
                self.json(&v)
            }
            StreamFormat::Table => {
                let sev = paint(
                    &format!("{:<8}", f.severity.as_str()),
                    f.severity,
                    self.color,
                );
                let field = f
                    .location
                    .field
                    .as_deref()
                    .map(|x| format!(" ({x})"))
                    .unwrap_or_default();
                writeln!(
                    self.out,
                    "{} {:<8} {sev} {} {}{field}: {}",
                    clock(&now),
                    change.as_str(),
                    f.rule,
                    f.resource,
                    f.title
                )?;
                if change != Change::Resolved {
                    for e in f.evidence.iter().take(3) {
                        writeln!(self.out, "           {e}")?;
                    }
                }
                self.out.flush()
            }
        }
    }

    /// The first analysis is done: how much was read and found.
    pub fn ready(
        &mut self,
        objects: usize,
        resources: usize,
        findings: usize,
    ) -> std::io::Result<()> {
        let now = now();
        match self.format {
            StreamFormat::Jsonl => self.json(&json!({
                "event": "ready",
                "observedAt": now,
                "objects": objects,
                "resources": resources,
                "findings": findings,
            })),
            StreamFormat::Table => {
                writeln!(
                    self.out,
                    "{} watching {resources} kinds, {objects} objects, {findings} findings",
                    clock(&now)
                )?;
                self.out.flush()
            }
        }
    }

    /// A warning: in `jsonl` also a line (`event: error`), so that a log pipeline sees it.
    pub fn warning(&mut self, e: &InputError) -> std::io::Result<()> {
        eprintln!("jackstop: {}: {}", e.path, e.message);
        match self.format {
            StreamFormat::Jsonl => self.json(&json!({
                "event": "error",
                "observedAt": now(),
                "path": e.path,
                "message": e.message,
            })),
            StreamFormat::Table => Ok(()),
        }
    }

    fn json(&mut self, v: &Value) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, v)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
}

/// Now, RFC 3339 in UTC to the millisecond.
fn now() -> String {
    let t = jiff::Timestamp::now();
    let ms = t.as_millisecond();
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// `HH:MM:SS` of an RFC 3339 time, for terminal lines.
fn clock(rfc3339: &str) -> &str {
    rfc3339.get(11..19).unwrap_or(rfc3339)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jackstop_core::{Category, Location, ResourceRef, Severity};

    fn finding() -> Finding {
        Finding {
            rule: "JS-MIN-001".into(),
            category: Category::Miner,
            severity: Severity::Critical,
            title: "A workload runs a cryptominer".into(),
            resource: ResourceRef {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: Some("team-a".into()),
                name: "tf-train".into(),
            },
            location: Location {
                path: "cluster".into(),
                line: 0,
                field: Some("spec.template.spec.containers[0].command".into()),
                template: None,
            },
            evidence: vec!["xmrig".into()],
            remediation: "delete it".into(),
            detail: None,
        }
    }

    #[test]
    fn a_jsonl_line_is_the_finding_with_its_event() {
        let mut buf = Vec::new();
        Lines::new(&mut buf, StreamFormat::Jsonl, false)
            .finding(Change::New, &finding())
            .unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(text.lines().count(), 1);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["event"], "new");
        assert_eq!(v["rule"], "JS-MIN-001");
        assert_eq!(v["resource"]["name"], "tf-train");
        assert!(v["observedAt"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn a_table_line_names_rule_resource_and_field() {
        let mut buf = Vec::new();
        Lines::new(&mut buf, StreamFormat::Table, false)
            .finding(Change::Resolved, &finding())
            .unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.contains("resolved"), "{text}");
        assert!(
            text.contains("JS-MIN-001 Deployment team-a/tf-train (spec.template"),
            "{text}"
        );
        assert!(
            !text.contains("xmrig"),
            "no evidence for a resolved finding: {text}"
        );
    }
}
