//! Any bytes as an audit log (JSON lines, an EventList document, gzip) through the reader and
//! every audit rule: no panic, no hang, memory within the small limits; errors and findings
//! located in the input; the same counts, errors and findings whether the input arrives in
//! one read or a few bytes at a time (the reader's line carry across reads); and the same
//! findings when the sink takes every event (so the events the analyser declines undecoded,
//! told from their heads, are never ones a rule would have reported).
//!
//! From the repository root: `cargo +nightly fuzz run audit_reader fuzz/corpus/audit_reader
//! fuzz/seeds/audit_reader -- -dict=fuzz/audit.dict -rss_limit_mb=512`.
#![no_main]

use jackstop_audit::rules::{AuditAnalyser, AuditSettings};
use jackstop_audit::{AuditReader, AuditStats, Event, EventSink, Position, ReadOptions};
use jackstop_catalogue::Catalogue;
use jackstop_core::{Finding, InputError};
use libfuzzer_sys::fuzz_target;
use std::io::Read;

/// Small limits, so that the oversize paths are reached by small inputs. The time range
/// covers the fixtures' years, so that timestamps are parsed and most events still analysed.
fn options() -> ReadOptions {
    ReadOptions {
        max_event_bytes: 2048,
        max_document_bytes: 8192,
        since: Some("2000-01-01T00:00:00Z".parse().unwrap()),
        until: Some("2100-01-01T00:00:00Z".parse().unwrap()),
        max_errors_per_file: 8,
    }
}

/// The analyser, taking every event the reader decodes (the sink's default choice).
struct Everything(AuditAnalyser);

impl EventSink for Everything {
    fn event(&mut self, event: &Event<'_>, at: Position<'_>) {
        self.0.event(event, at)
    }
}

/// What the reader counted and reported, the analyser's notes, and the findings.
fn audit(
    input: impl Read,
    everything: bool,
) -> (AuditStats, Vec<InputError>, Vec<InputError>, Vec<Finding>) {
    let mut reader = AuditReader::new(options());
    let analyser = AuditAnalyser::new(Catalogue::builtin(), AuditSettings::default());
    let (findings, notes) = if everything {
        let mut sink = Everything(analyser);
        reader.read_stream(input, "fuzz", &mut sink);
        sink.0.finish()
    } else {
        let mut sink = analyser;
        reader.read_stream(input, "fuzz", &mut sink);
        sink.finish()
    };
    (reader.stats, reader.errors, notes, findings)
}

/// Findings in a stable order, for comparing runs whose bursts may close at other events.
fn sorted(findings: &[Finding]) -> Vec<String> {
    let mut v: Vec<String> = findings
        .iter()
        .map(|f| serde_json::to_string(f).unwrap())
        .collect();
    v.sort();
    v
}

/// A reader that hands out at most `n` bytes a read.
struct Trickle<'a> {
    data: &'a [u8],
    n: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.n.min(buf.len()).min(self.data.len());
        buf[..k].copy_from_slice(&self.data[..k]);
        self.data = &self.data[k..];
        Ok(k)
    }
}

fuzz_target!(|data: &[u8]| {
    let (stats, errors, notes, findings) = audit(data, false);

    assert_eq!(stats.files, 1);
    // An event is skimmed, left at another stage, out of range or analysed: at most one.
    assert!(
        stats.reads_skipped + stats.other_stages + stats.out_of_range + stats.analysed
            <= stats.events,
        "{stats:?}"
    );
    // The listed errors, and one line that counts the rest.
    assert!(
        errors.len() <= options().max_errors_per_file + 1,
        "{errors:?}"
    );
    let gzip = data.starts_with(&[0x1f, 0x8b]);
    if !gzip {
        assert_eq!(stats.bytes, data.len() as u64, "{stats:?}");
        let lines = data.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        for e in errors.iter().chain(&notes) {
            if let Some(l) = e.line {
                // Known: a multi-line document cut short in a file without a final newline is
                // reported on the line after its last (the reader adds a newline to the
                // document's first line).
                let last = lines + u64::from(e.message.starts_with("cut short"));
                assert!(
                    l >= 1 && l as u64 <= last,
                    "error line {l} outside 1..={last}: {e:?}"
                );
            }
        }
        for f in &findings {
            assert!(
                f.location.line >= 1 && f.location.line as u64 <= lines,
                "finding line outside 1..={lines}: {f:?}"
            );
        }
    }
    for e in errors.iter().chain(&notes) {
        assert_eq!(e.path, "fuzz");
    }
    for f in &findings {
        assert_eq!(f.location.path, "fuzz");
        assert!(!f.rule.is_empty() && !f.title.is_empty());
    }

    // Differential: the same input in reads of 3 bytes (enough for the gzip magic). Not for a
    // corrupt gzip stream: how much of it flate2 inflates before it tells of the corruption
    // depends on how its input came.
    let corrupt = errors
        .iter()
        .any(|e| e.message.contains("gzip stream is corrupt"));
    if !corrupt {
        let (t_stats, t_errors, t_notes, t_findings) = audit(Trickle { data, n: 3 }, false);
        assert_eq!(format!("{t_stats:?}"), format!("{stats:?}"));
        assert_eq!(t_errors, errors);
        assert_eq!(t_notes, notes);
        assert_eq!(t_findings, findings);
    }

    // Differential: a sink that takes every event finds the same.
    let (_, _, e_notes, e_findings) = audit(data, true);
    assert_eq!(sorted(&e_findings), sorted(&findings));
    assert_eq!(e_notes, notes);
});
