//! Report writers. Each turns a [`ScanOutcome`] into one output format; the binary picks one.
//! Writers never decide what is found, only how it reads.

pub mod json;
pub mod sarif;
pub mod table;

use jackstop_catalogue::RuleSet;
use jackstop_core::{ScanOutcome, Severity};
use std::io::{self, Write};

/// What every writer needs besides the outcome.
pub struct ReportContext<'a> {
    pub rules: &'a RuleSet,
    /// The threshold the run fails at, shown in summaries (`None`: never fails).
    pub fail_on: Option<Severity>,
    /// Colour the output (a terminal that did not ask for NO_COLOR).
    pub color: bool,
    pub tool_version: &'a str,
}

/// One output format.
pub trait ReportWriter {
    fn write(
        &self,
        outcome: &ScanOutcome,
        ctx: &ReportContext<'_>,
        out: &mut dyn Write,
    ) -> io::Result<()>;
}

/// Counts of findings by severity, most severe first.
pub fn severity_counts(outcome: &ScanOutcome) -> Vec<(Severity, usize)> {
    Severity::ALL
        .iter()
        .map(|s| {
            (
                *s,
                outcome.findings.iter().filter(|f| f.severity == *s).count(),
            )
        })
        .collect()
}
