//! What a whole run produced: findings, suppressed findings and input errors.

use crate::Finding;
use serde::Serialize;

/// A problem with one input that did not stop the run (contract: `errors[]`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct InputError {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    pub message: String,
}

/// A finding an exception matched, kept so that it is counted, never silently dropped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suppressed {
    pub finding: Finding,
    /// `annotation` or `ignore-file:LINE`.
    pub by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Counts of what the inputs held.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InputStats {
    pub files: usize,
    pub bytes: u64,
    pub documents: usize,
    pub objects: usize,
    /// Documents that are valid YAML/JSON but not Kubernetes objects.
    pub skipped_non_kubernetes: usize,
}

/// Everything one scan produced, before it is written out.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanOutcome {
    pub findings: Vec<Finding>,
    pub suppressed: Vec<Suppressed>,
    pub errors: Vec<InputError>,
    pub stats: InputStats,
}
