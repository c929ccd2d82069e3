//! What `scan`, `watch`, `fix` and `webhook` share: the manifests read from the command
//! line, the analysers chosen by the flags, the exceptions, the severity floor, and how a live
//! cluster is reached.

use crate::cli::{AnalysisArgs, ClusterArgs};
use anyhow::Context;
use jackstop_analysers::burst::BurstSettings;
use jackstop_analysers::miners::MinerSettings;
use jackstop_analysers::Analyser;
use jackstop_catalogue::Catalogue;
use jackstop_cluster::ClusterOptions;
use jackstop_core::exceptions::{self, IgnoreFile, IGNORE_ANNOTATION, IGNORE_REASON_ANNOTATION};
use jackstop_core::{Finding, InputError, Object, ResourceRef, Severity, Suppressed};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

const DEFAULT_IGNORE_FILE: &str = ".jackstopignore";

/// The analysis the flags ask for.
pub struct Analysis {
    analysers: Vec<Box<dyn Analyser>>,
    pub catalogue: &'static Catalogue,
    ignore: IgnoreFile,
    ignore_name: String,
    min_severity: Option<Severity>,
}

/// One analysis's result.
pub struct Analysed {
    pub findings: Vec<Finding>,
    pub suppressed: Vec<Suppressed>,
    /// Limits the analysis hit (listed under `errors`).
    pub notes: Vec<InputError>,
}

impl Analysis {
    pub fn from_args(args: &AnalysisArgs) -> anyhow::Result<Analysis> {
        let min_severity: Option<Severity> =
            args.min_severity.as_deref().map(str::parse).transpose()?;
        let (ignore, ignore_name) = load_ignore_file(args.ignore_file.as_ref())?;
        let mut burst = BurstSettings {
            window_secs: args.burst_window,
            min_workloads: args.burst_min_workloads,
            min_namespaces: args.burst_min_namespaces,
            min_same_image: args.burst_min_same_image,
            ..BurstSettings::default()
        };
        burst
            .ignore_namespaces
            .extend(args.burst_ignore_namespace.iter().cloned());
        let mut analysers = jackstop_analysers::all_with(MinerSettings {
            burst,
            ..MinerSettings::default()
        });
        if !args.analysers.is_empty() {
            analysers.retain(|a| args.analysers.iter().any(|n| n == a.name()));
        }
        Ok(Analysis {
            analysers,
            catalogue: Catalogue::builtin(),
            ignore,
            ignore_name,
            min_severity,
        })
    }

    /// The kinds the chosen analysers read: inputs keep only those.
    pub fn kinds(&self) -> HashSet<String> {
        self.analysers
            .iter()
            .flat_map(|a| a.kinds().iter().map(|k| k.to_string()))
            .collect()
    }

    /// Runs the analysers, then the exceptions and the severity floor.
    pub fn run(&self, objects: &[Object]) -> Analysed {
        let (findings, notes) =
            jackstop_analysers::run_noted(&self.analysers, objects, self.catalogue);
        let annotations: HashMap<ResourceRef, (&str, Option<&str>)> = objects
            .iter()
            .filter_map(|o| {
                let v = o.annotation(IGNORE_ANNOTATION)?;
                Some((o.resource(), (v, o.annotation(IGNORE_REASON_ANNOTATION))))
            })
            .collect();
        let (mut findings, suppressed) =
            exceptions::apply(findings, &self.ignore, &self.ignore_name, |r| {
                annotations.get(r).copied()
            });
        if let Some(min) = self.min_severity {
            findings.retain(|f| f.severity >= min);
        }
        Analysed {
            findings,
            suppressed,
            notes,
        }
    }
}

pub fn load_ignore_file(asked: Option<&PathBuf>) -> anyhow::Result<(IgnoreFile, String)> {
    let (path, required) = match asked {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_IGNORE_FILE), false),
    };
    let name = path.display().to_string();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let f = IgnoreFile::parse(&text).with_context(|| format!("ignore file {name}"))?;
            Ok((f, name))
        }
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            Ok((IgnoreFile::default(), name))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read ignore file {name}")),
    }
}

/// How to reach the cluster the flags name, reading `kinds`.
pub fn cluster_options(args: &ClusterArgs, kinds: HashSet<String>) -> ClusterOptions {
    ClusterOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        namespace: args.namespace.clone(),
        kinds,
        timeout: std::time::Duration::from_secs(args.request_timeout.max(1)),
        ..ClusterOptions::default()
    }
}

/// The manifests named on the command line, read as `scan` reads them: files that cannot be
/// read are listed with the other input errors; none readable at all is an error.
pub fn read_manifests(
    paths: &[String],
    exclude: &[String],
    max_file_bytes: u64,
    kinds: jackstop_manifests::KindFilter,
) -> anyhow::Result<(jackstop_manifests::ManifestSet, Vec<InputError>)> {
    let (inputs, mut errors) = jackstop_manifests::collect_inputs(paths, exclude);
    if inputs.is_empty() {
        for e in &errors {
            eprintln!("jackstop: {}: {}", e.path, e.message);
        }
        anyhow::bail!("no readable input among {}", paths.join(", "));
    }
    let opts = jackstop_manifests::ReadOptions {
        max_file_bytes,
        kinds,
        ..jackstop_manifests::ReadOptions::default()
    };
    let mut set = jackstop_manifests::read_inputs(&inputs, &opts);
    errors.append(&mut set.errors);
    if set.stats.files == 0 {
        for e in &errors {
            eprintln!("jackstop: {}: {}", e.path, e.message);
        }
        anyhow::bail!("no readable input: every input failed to read");
    }
    Ok((set, errors))
}
