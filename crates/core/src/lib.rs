//! The data model every part of jackstop shares: Kubernetes objects as they were read (with
//! where they came from), the findings analysers produce, and the rules those findings cite.
//!
//! This crate does no I/O and knows nothing of terminals, files or HTTP, so that readers (files,
//! the API server, audit logs) and writers (table, JSON, SARIF) can be combined freely and every
//! analyser can be tested on objects built in memory.

pub mod changes;
pub mod exceptions;
pub mod finding;
pub mod labels;
pub mod names;
pub mod object;
pub mod rule;
pub mod scan;

pub use finding::{Category, Finding, Location, ResourceRef, Severity};
pub use object::{FieldLines, Object, Source};
pub use rule::{Reference, Rule};
pub use scan::{InputError, InputStats, ScanOutcome, Suppressed};
