//! Analysers turn objects into findings. Each one declares the kinds it reads, so that input
//! readers hold only those, and reads all of them at once: an exposure spans objects (the
//! Service in one file, the VirtualService in another).

pub mod burst;
pub mod exposure;
pub mod miners;
pub mod owners;
pub mod pods;
pub mod workloads;

use jackstop_catalogue::Catalogue;
use jackstop_core::{Finding, InputError, Object};

/// One analysis over the whole object set.
pub trait Analyser: Sync {
    /// A short name for logs and benchmarks.
    fn name(&self) -> &'static str;
    /// The kinds this analyser reads; objects of other kinds need not be kept for it.
    fn kinds(&self) -> &'static [&'static str];
    fn analyse(&self, objects: &[Object], catalogue: &Catalogue) -> Vec<Finding>;
    /// The findings and the limits the analysis hit on the way (a field too large to read
    /// whole, a payload nested deeper than decoding goes), which the CLI lists under `errors`.
    fn analyse_noted(
        &self,
        objects: &[Object],
        catalogue: &Catalogue,
    ) -> (Vec<Finding>, Vec<InputError>) {
        (self.analyse(objects, catalogue), Vec::new())
    }
}

/// Every analyser jackstop runs, in order, with default settings.
pub fn all() -> Vec<Box<dyn Analyser>> {
    all_with(miners::MinerSettings::default())
}

/// Every analyser, with the miner analysis's settings.
pub fn all_with(settings: miners::MinerSettings) -> Vec<Box<dyn Analyser>> {
    vec![
        Box::new(exposure::ExposureAnalyser),
        Box::new(miners::MinerAnalyser { settings }),
    ]
}

/// Runs analysers and returns their findings in a stable order (severity first, then file).
pub fn run(
    analysers: &[Box<dyn Analyser>],
    objects: &[Object],
    catalogue: &Catalogue,
) -> Vec<Finding> {
    run_noted(analysers, objects, catalogue).0
}

/// Like [`run`], with the analysis limits that were hit.
pub fn run_noted(
    analysers: &[Box<dyn Analyser>],
    objects: &[Object],
    catalogue: &Catalogue,
) -> (Vec<Finding>, Vec<InputError>) {
    // Live objects controlled by others in the input are analysed through their controller.
    let folded = owners::fold(objects);
    let objects: &[Object] = &folded.objects;
    // Analysers are independent: each runs on its own thread over the same objects.
    let results: Vec<(Vec<Finding>, Vec<InputError>)> = std::thread::scope(|s| {
        let handles: Vec<_> = analysers
            .iter()
            .map(|a| s.spawn(move || a.analyse_noted(objects, catalogue)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut findings = Vec::new();
    let mut notes = Vec::new();
    for (f, n) in results {
        findings.extend(f);
        notes.extend(n);
    }
    owners::annotate(&mut findings, &folded.under);
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
    (findings, notes)
}
