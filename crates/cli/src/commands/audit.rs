//! `jackstop audit PATH...`: read audit logs, streaming, run the audit rules, report; in table
//! mode a timeline of the findings follows the table.

use crate::cli::{AuditArgs, AuditCommand, AuditFormat};
use crate::commands::analysis::load_ignore_file;
use crate::{EXIT_CLEAN, EXIT_FINDINGS};
use anyhow::{bail, Context};
use jackstop_audit::rules::{AuditAnalyser, AuditSettings};
use jackstop_audit::{AuditReader, ReadOptions};
use jackstop_catalogue::Catalogue;
use jackstop_core::exceptions;
use jackstop_core::{Finding, InputStats, ScanOutcome, Severity};
use jackstop_report::json::JsonWriter;
use jackstop_report::sarif::SarifWriter;
use jackstop_report::table::TableWriter;
use jackstop_report::{ReportContext, ReportWriter};
use std::io::{IsTerminal, Write};

/// The burst settings of the flags.
pub(crate) fn settings(b: &crate::cli::AuditBurstArgs) -> AuditSettings {
    AuditSettings {
        burst_window_secs: b.burst_window,
        burst_min_workloads: b.burst_min_workloads,
        burst_min_namespaces: b.burst_min_namespaces,
    }
}

/// A time flag: RFC 3339, or a duration before now.
fn parse_time(flag: &str, s: &str) -> anyhow::Result<jiff::Timestamp> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    let d: jiff::SignedDuration = s.parse().with_context(|| {
        format!("{flag} {s:?}: not an RFC 3339 time (2021-06-08T03:00:00Z) nor a duration (24h)")
    })?;
    Ok(jiff::Timestamp::now() - d)
}

pub fn run(args: AuditArgs) -> anyhow::Result<u8> {
    if let Some(AuditCommand::Serve(serve)) = args.command {
        return super::audit_serve::run(*serve);
    }
    let fail_on: Option<Severity> = match args.fail_on.as_str() {
        "none" => None,
        s => Some(s.parse()?),
    };
    let min_severity: Option<Severity> =
        args.min_severity.as_deref().map(str::parse).transpose()?;
    let (ignore, ignore_name) = load_ignore_file(args.ignore_file.as_ref())?;
    let since = args
        .since
        .as_deref()
        .map(|s| parse_time("--since", s))
        .transpose()?;
    let until = args
        .until
        .as_deref()
        .map(|s| parse_time("--until", s))
        .transpose()?;
    let to_terminal = args.output.is_none() && std::io::stdout().is_terminal();
    let format = args.format.unwrap_or(if to_terminal {
        AuditFormat::Table
    } else {
        AuditFormat::Json
    });
    let catalogue = Catalogue::builtin();
    let mut reader = AuditReader::new(ReadOptions {
        max_event_bytes: args.max_event_size,
        since,
        until,
        ..ReadOptions::default()
    });
    let mut analyser = AuditAnalyser::new(catalogue, settings(&args.burst));

    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let keep = |f: &Finding| min_severity.is_none_or(|m| f.severity >= m);
    let mut findings: Vec<Finding> = Vec::new();
    let mut suppressed = Vec::new();
    let mut failed = false;
    let mut emit = |batch: Vec<Finding>, out: &mut dyn Write| -> anyhow::Result<()> {
        let (kept, s) = exceptions::apply(batch, &ignore, &ignore_name, |_| None);
        suppressed.extend(s);
        for f in kept.into_iter().filter(keep) {
            failed |= fail_on.is_some_and(|t| f.severity >= t);
            if format == AuditFormat::Jsonl {
                serde_json::to_writer(&mut *out, &f)?;
                out.write_all(b"\n")?;
            } else {
                findings.push(f);
            }
        }
        Ok(())
    };
    let mut unreadable = 0;
    for path in &args.paths {
        let before = reader.stats.files;
        let errors_before = reader.errors.len();
        reader.read_path(path, &mut analyser);
        if reader.stats.files == before && reader.errors.len() > errors_before {
            unreadable += 1;
        }
        if format == AuditFormat::Jsonl {
            emit(analyser.take_findings(), &mut *out)?;
            out.flush().ok();
        }
    }
    if unreadable == args.paths.len() {
        for e in &reader.errors {
            eprintln!("jackstop: {}: {}", e.path, e.message);
        }
        bail!("no readable input among {}", args.paths.join(", "));
    }
    let (rest, notes) = analyser.finish();
    emit(rest, &mut *out)?;
    let stats = reader.stats.clone();
    let mut errors = std::mem::take(&mut reader.errors);
    errors.extend(notes);

    let color =
        to_terminal && !args.no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let ctx = ReportContext {
        rules: &catalogue.rules,
        fail_on,
        color,
        tool_version: env!("CARGO_PKG_VERSION"),
    };
    // Chronological: the story of the attack.
    findings.sort_by(|a, b| {
        time_of(a)
            .cmp(&time_of(b))
            .then(b.severity.cmp(&a.severity))
    });
    let outcome = ScanOutcome {
        findings,
        suppressed,
        errors,
        stats: InputStats {
            files: stats.files,
            bytes: stats.bytes,
            documents: stats.events as usize,
            objects: stats.analysed as usize,
            skipped_non_kubernetes: stats.bad_lines as usize,
        },
    };
    let written = match format {
        AuditFormat::Jsonl => Ok(()),
        AuditFormat::Json => JsonWriter.write(&outcome, &ctx, &mut *out),
        AuditFormat::Sarif => SarifWriter.write(&outcome, &ctx, &mut *out),
        AuditFormat::Table => TableWriter
            .write(&outcome, &ctx, &mut *out)
            .and_then(|_| timeline(&outcome.findings, &stats, &mut *out)),
    };
    match written.and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r.context("cannot write the report")?,
    }
    if format != AuditFormat::Table {
        for e in &outcome.errors {
            let pos = e.line.map(|l| format!(":{l}")).unwrap_or_default();
            eprintln!("jackstop: {}{pos}: {}", e.path, e.message);
        }
    }
    Ok(if failed { EXIT_FINDINGS } else { EXIT_CLEAN })
}

fn time_of(f: &Finding) -> String {
    f.detail
        .as_ref()
        .and_then(|d| d.get("time"))
        .and_then(|t| t.as_str())
        .unwrap_or("")
        .to_string()
}

/// The findings as a story: when, who, what.
fn timeline(
    findings: &[Finding],
    stats: &jackstop_audit::AuditStats,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "\n{} events read ({} analysed, {} reads and {} writes no rule looks at counted without decoding, {} out of range, {} bad lines)",
        stats.events,
        stats.analysed,
        stats.reads_skipped,
        stats.writes_skipped,
        stats.out_of_range,
        stats.bad_lines
    )?;
    if findings.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nTimeline:")?;
    for f in findings {
        let who = f
            .detail
            .as_ref()
            .and_then(|d| d.get("user"))
            .and_then(|u| u.as_str())
            .unwrap_or("");
        writeln!(
            out,
            "  {:<27} {:<9} {:<11} {:<45} {}",
            time_of(f),
            f.severity.as_str(),
            f.rule,
            who,
            f.title
        )?;
    }
    Ok(())
}
