//! `--format table`: a findings table, then each finding's evidence and fix, then errors and a
//! summary. Colour only when asked (the binary asks on a terminal without NO_COLOR).

use crate::{severity_counts, ReportContext, ReportWriter};
use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{Attribute, Cell, Color, ContentArrangement, Table};
use jackstop_core::{ScanOutcome, Severity};
use std::io::{self, Write};

pub struct TableWriter;

fn color(s: Severity) -> Color {
    match s {
        Severity::Critical => Color::Magenta,
        Severity::High => Color::Red,
        Severity::Medium => Color::Yellow,
        Severity::Low => Color::Cyan,
        Severity::Info => Color::Grey,
    }
}

/// `text` in the colour of severity `s` (ANSI), when `on`.
pub fn paint(text: &str, s: Severity, on: bool) -> String {
    if !on {
        return text.to_string();
    }
    let code = match s {
        Severity::Critical => "1;35",
        Severity::High => "1;31",
        Severity::Medium => "33",
        Severity::Low => "36",
        Severity::Info => "90",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

impl ReportWriter for TableWriter {
    fn write(
        &self,
        outcome: &ScanOutcome,
        ctx: &ReportContext<'_>,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        if outcome.findings.is_empty() {
            writeln!(out, "No findings.")?;
        } else {
            let mut table = Table::new();
            table
                .load_preset(UTF8_BORDERS_ONLY)
                .set_content_arrangement(ContentArrangement::Dynamic);
            if ctx.color {
                table.enforce_styling();
            } else {
                table.force_no_tty();
            }
            table.set_width(160);
            table.set_header(vec![
                "#", "SEVERITY", "RULE", "RESOURCE", "LOCATION", "TITLE",
            ]);
            for (i, f) in outcome.findings.iter().enumerate() {
                let mut sev = Cell::new(f.severity.as_str().to_uppercase());
                if ctx.color {
                    sev = sev.fg(color(f.severity)).add_attribute(Attribute::Bold);
                }
                table.add_row(vec![
                    Cell::new(i + 1),
                    sev,
                    Cell::new(&f.rule),
                    Cell::new(f.resource.to_string()),
                    Cell::new(format!("{}:{}", f.location.path, f.location.line)),
                    Cell::new(&f.title),
                ]);
            }
            writeln!(out, "{table}")?;
            writeln!(out)?;
            for (i, f) in outcome.findings.iter().enumerate() {
                let head = format!(
                    "[{}] {} {}",
                    i + 1,
                    f.severity.as_str().to_uppercase(),
                    f.rule
                );
                writeln!(out, "{} {}", paint(&head, f.severity, ctx.color), f.title)?;
                let field = f
                    .location
                    .field
                    .as_deref()
                    .map(|x| format!(" ({x})"))
                    .unwrap_or_default();
                writeln!(out, "    resource: {}", f.resource)?;
                writeln!(
                    out,
                    "    at:       {}:{}{field}",
                    f.location.path, f.location.line
                )?;
                for e in &f.evidence {
                    writeln!(out, "    evidence: {e}")?;
                }
                for (n, line) in f.remediation.lines().enumerate() {
                    writeln!(
                        out,
                        "    {} {line}",
                        if n == 0 { "fix:     " } else { "         " }
                    )?;
                }
                writeln!(out)?;
            }
        }
        if !outcome.errors.is_empty() {
            writeln!(out, "Errors ({}):", outcome.errors.len())?;
            for e in &outcome.errors {
                let pos = match (e.line, e.column) {
                    (Some(l), Some(c)) => format!(":{l}:{c}"),
                    (Some(l), None) => format!(":{l}"),
                    _ => String::new(),
                };
                writeln!(out, "    {}{pos}: {}", e.path, e.message)?;
            }
            writeln!(out)?;
        }
        let counts: Vec<String> = severity_counts(outcome)
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| paint(&format!("{n} {s}"), s, ctx.color))
            .collect();
        let s = &outcome.stats;
        writeln!(
            out,
            "{} finding(s){}; {} suppressed; {} error(s). Read {} file(s), {} document(s), {} object(s); {} non-Kubernetes document(s) skipped.",
            outcome.findings.len(),
            if counts.is_empty() { String::new() } else { format!(" ({})", counts.join(", ")) },
            outcome.suppressed.len(),
            outcome.errors.len(),
            s.files,
            s.documents,
            s.objects,
            s.skipped_non_kubernetes
        )
    }
}
