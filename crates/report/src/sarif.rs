//! `--format sarif`: SARIF 2.1.0 with one rule entry per rule used and one result per finding.

use crate::{ReportContext, ReportWriter};
use jackstop_core::{ScanOutcome, Severity};
use serde_sarif::sarif::{
    ArtifactLocation, Invocation, Location, Message, MultiformatMessageString, Notification,
    PhysicalLocation, PropertyBag, Region, ReportingDescriptor, Result as SarifResult, ResultLevel,
    Run, Sarif, Tool, ToolComponent, SCHEMA_URL,
};
use std::collections::BTreeMap;
use std::io::{self, Write};

pub struct SarifWriter;

fn level(s: Severity) -> ResultLevel {
    match s {
        Severity::Critical | Severity::High => ResultLevel::Error,
        Severity::Medium => ResultLevel::Warning,
        Severity::Low | Severity::Info => ResultLevel::Note,
    }
}

/// GitHub code scanning reads `security-severity` (0-10) to rank results.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.5",
    }
}

fn props(pairs: Vec<(&str, serde_json::Value)>) -> PropertyBag {
    let map: BTreeMap<String, serde_json::Value> =
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    PropertyBag::builder().additional_properties(map).build()
}

/// A relative URI for SARIF: forward slashes, no leading `./`.
fn uri(path: &str) -> String {
    path.replace('\\', "/").trim_start_matches("./").to_string()
}

impl ReportWriter for SarifWriter {
    fn write(
        &self,
        outcome: &ScanOutcome,
        ctx: &ReportContext<'_>,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let mut used: Vec<&str> = outcome.findings.iter().map(|f| f.rule.as_str()).collect();
        used.sort_unstable();
        used.dedup();
        let rules: Vec<ReportingDescriptor> = used
            .iter()
            .filter_map(|id| ctx.rules.get(id))
            .map(|r| {
                let help = format!(
                    "{}\n\nRemediation: {}",
                    r.description.trim(),
                    r.remediation.trim()
                );
                let mut tags: Vec<serde_json::Value> =
                    vec!["security".into(), r.category.as_str().into()];
                tags.extend(
                    r.references
                        .iter()
                        .map(|x| serde_json::Value::from(x.id.clone())),
                );
                ReportingDescriptor::builder()
                    .id(r.id.clone())
                    .name(r.title.clone())
                    .short_description(
                        MultiformatMessageString::builder()
                            .text(r.title.clone())
                            .build(),
                    )
                    .full_description(
                        MultiformatMessageString::builder()
                            .text(r.description.trim().to_string())
                            .build(),
                    )
                    .help(MultiformatMessageString::builder().text(help).build())
                    .help_uri(
                        r.references
                            .iter()
                            .find_map(|x| x.url.clone())
                            .unwrap_or_else(|| "https://github.com/jackstop/jackstop".into()),
                    )
                    .properties(props(vec![
                        ("tags", serde_json::Value::Array(tags)),
                        ("security-severity", security_severity(r.severity).into()),
                    ]))
                    .build()
            })
            .collect();
        let results: Vec<SarifResult> = outcome
            .findings
            .iter()
            .map(|f| {
                let region = Region::builder()
                    .start_line(i64::from(f.location.line.max(1)))
                    .build();
                let physical = PhysicalLocation::builder()
                    .artifact_location(
                        ArtifactLocation::builder()
                            .uri(uri(&f.location.path))
                            .build(),
                    )
                    .region(region)
                    .build();
                let text = format!(
                    "{}: {} ({})",
                    f.title,
                    f.resource,
                    f.evidence.first().cloned().unwrap_or_default()
                );
                SarifResult::builder()
                    .rule_id(f.rule.clone())
                    .rule_index(used.iter().position(|r| *r == f.rule).unwrap_or(0) as i64)
                    .level(level(f.severity))
                    .message(Message::builder().text(text).build())
                    .locations(vec![Location::builder()
                        .physical_location(physical)
                        .build()])
                    .properties(props(vec![
                        ("severity", f.severity.as_str().into()),
                        ("category", f.category.as_str().into()),
                        (
                            "resource",
                            serde_json::to_value(&f.resource).unwrap_or_default(),
                        ),
                        ("field", f.location.field.clone().into()),
                        ("evidence", f.evidence.clone().into()),
                        ("remediation", f.remediation.clone().into()),
                        ("security-severity", security_severity(f.severity).into()),
                    ]))
                    .build()
            })
            .collect();
        let notifications: Vec<Notification> = outcome
            .errors
            .iter()
            .map(|e| {
                let mut region = Region::builder().build();
                if let Some(l) = e.line {
                    region = Region::builder().start_line(i64::from(l.max(1))).build();
                }
                Notification::builder()
                    .message(Message::builder().text(e.message.clone()).build())
                    .level(serde_json::Value::from("error"))
                    .locations(vec![Location::builder()
                        .physical_location(
                            PhysicalLocation::builder()
                                .artifact_location(
                                    ArtifactLocation::builder().uri(uri(&e.path)).build(),
                                )
                                .region(region)
                                .build(),
                        )
                        .build()])
                    .build()
            })
            .collect();
        let invocation = Invocation::builder()
            .execution_successful(true)
            .tool_execution_notifications(notifications)
            .build();
        let driver = ToolComponent::builder()
            .name("jackstop")
            .version(ctx.tool_version.to_string())
            .semantic_version(ctx.tool_version.to_string())
            .information_uri("https://github.com/jackstop/jackstop")
            .rules(rules)
            .build();
        let run = Run::builder()
            .tool(Tool::builder().driver(driver).build())
            .results(results)
            .invocations(vec![invocation])
            .build();
        let sarif = Sarif::builder()
            .schema(SCHEMA_URL)
            .version(serde_json::Value::from("2.1.0"))
            .runs(vec![run])
            .build();
        serde_json::to_writer_pretty(&mut *out, &sarif)?;
        writeln!(out)
    }
}
