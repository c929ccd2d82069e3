//! `--format json`: the contract's document, plus a summary.

use crate::{severity_counts, ReportContext, ReportWriter};
use jackstop_core::ScanOutcome;
use serde_json::{json, Map, Value};
use std::io::{self, Write};

pub struct JsonWriter;

impl ReportWriter for JsonWriter {
    fn write(
        &self,
        outcome: &ScanOutcome,
        ctx: &ReportContext<'_>,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let by_severity: Map<String, Value> = severity_counts(outcome)
            .into_iter()
            .map(|(s, n)| (s.to_string(), json!(n)))
            .collect();
        let doc = json!({
            "findings": outcome.findings,
            "errors": outcome.errors,
            "suppressed": outcome.suppressed,
            "summary": {
                "findings": outcome.findings.len(),
                "bySeverity": by_severity,
                "suppressed": outcome.suppressed.len(),
                "errors": outcome.errors.len(),
                "failOn": ctx.fail_on.map(|s| s.to_string()).unwrap_or_else(|| "none".into()),
                "inputs": outcome.stats,
            },
            "tool": {"name": "jackstop", "version": ctx.tool_version},
        });
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)
    }
}
