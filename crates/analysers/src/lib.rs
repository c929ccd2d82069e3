//! Analysers turn objects into findings. Each one declares the kinds it reads, so that input
//! readers hold only those, and reads all of them at once: an exposure spans objects (the
//! Service in one file, the VirtualService in another).

pub mod burst;
pub mod exposure;
pub mod miners;
pub mod pods;
pub mod workloads;

use jackstop_catalogue::Catalogue;
use jackstop_core::{Finding, Object};

/// One analysis over the whole object set.
pub trait Analyser: Sync {
    /// A short name for logs and benchmarks.
    fn name(&self) -> &'static str;
    /// The kinds this analyser reads; objects of other kinds need not be kept for it.
    fn kinds(&self) -> &'static [&'static str];
    fn analyse(&self, objects: &[Object], catalogue: &Catalogue) -> Vec<Finding>;
}

/// Every analyser jackstop runs, in order.
pub fn all() -> Vec<Box<dyn Analyser>> {
    vec![Box::new(exposure::ExposureAnalyser)]
}

/// Runs analysers and returns their findings in a stable order (severity first, then file).
pub fn run(
    analysers: &[Box<dyn Analyser>],
    objects: &[Object],
    catalogue: &Catalogue,
) -> Vec<Finding> {
    let mut findings: Vec<Finding> = analysers
        .iter()
        .flat_map(|a| a.analyse(objects, catalogue))
        .collect();
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.location.path.cmp(&b.location.path))
            .then_with(|| a.location.line.cmp(&b.location.line))
            .then_with(|| a.rule.cmp(&b.rule))
            .then_with(|| a.title.cmp(&b.title))
            .then_with(|| a.resource.cmp(&b.resource))
            .then_with(|| a.evidence.cmp(&b.evidence))
    });
    findings
}
