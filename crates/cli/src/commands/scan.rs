//! `jackstop scan PATH...`: read manifests, run the analysers, apply exceptions, report.

use crate::cli::{Format, ScanArgs};
use crate::output;
use crate::{EXIT_CLEAN, EXIT_FAILED, EXIT_FINDINGS};
use anyhow::{bail, Context};
use jackstop_analysers::burst::BurstSettings;
use jackstop_analysers::miners::MinerSettings;
use jackstop_catalogue::Catalogue;
use jackstop_cluster::ClusterOptions;
use jackstop_core::exceptions::{self, IgnoreFile, IGNORE_ANNOTATION, IGNORE_REASON_ANNOTATION};
use jackstop_core::InputError;
use jackstop_core::{ResourceRef, ScanOutcome, Severity};
use jackstop_manifests::{collect_inputs, read_inputs, KindFilter, ManifestSet, ReadOptions};
use jackstop_report::json::JsonWriter;
use jackstop_report::sarif::SarifWriter;
use jackstop_report::table::TableWriter;
use jackstop_report::{ReportContext, ReportWriter};
use std::collections::HashMap;
use std::path::PathBuf;

const DEFAULT_IGNORE_FILE: &str = ".jackstopignore";

fn load_ignore_file(asked: Option<&PathBuf>) -> anyhow::Result<(IgnoreFile, String)> {
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

/// The manifests named on the command line.
fn read_files(
    args: &ScanArgs,
    kinds: std::collections::HashSet<String>,
) -> anyhow::Result<(ManifestSet, Vec<InputError>)> {
    let (inputs, mut errors) = collect_inputs(&args.paths, &args.exclude);
    if inputs.is_empty() {
        for e in &errors {
            eprintln!("jackstop: {}: {}", e.path, e.message);
        }
        bail!("no readable input among {}", args.paths.join(", "));
    }
    let opts = ReadOptions {
        max_file_bytes: args.max_file_size,
        kinds: KindFilter::Kinds(kinds),
        ..ReadOptions::default()
    };
    let mut set = read_inputs(&inputs, &opts);
    errors.append(&mut set.errors);
    if set.stats.files == 0 {
        for e in &errors {
            eprintln!("jackstop: {}: {}", e.path, e.message);
        }
        bail!("no readable input: every input failed to read");
    }
    Ok((set, errors))
}

/// The live cluster (`--cluster`): the analysers' kinds, listed read-only.
fn read_cluster(
    args: &ScanArgs,
    kinds: std::collections::HashSet<String>,
) -> anyhow::Result<(ManifestSet, Vec<InputError>)> {
    let opts = ClusterOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        namespace: args.namespace.clone(),
        kinds,
        timeout: std::time::Duration::from_secs(args.request_timeout.max(1)),
        ..ClusterOptions::default()
    };
    let read = jackstop_cluster::read_cluster_blocking(&opts)?;
    if let Some(path) = &args.save {
        jackstop_cluster::snapshot::save(&read.objects, path)
            .with_context(|| format!("cannot write the snapshot {}", path.display()))?;
    }
    let set = ManifestSet {
        objects: read.objects,
        errors: Vec::new(),
        stats: read.stats,
    };
    Ok((set, read.errors))
}

pub fn run(args: ScanArgs) -> anyhow::Result<u8> {
    // clap's `requires` counts the default `false` of a flag as given.
    if !args.cluster {
        let stray = [
            ("--kubeconfig", args.kubeconfig.is_some()),
            ("--context", args.context.is_some()),
            ("--namespace", args.namespace.is_some()),
            ("--save", args.save.is_some()),
        ];
        if let Some((flag, _)) = stray.iter().find(|(_, given)| *given) {
            bail!("{flag} reads a live cluster: add --cluster (and no paths)");
        }
    }
    let fail_on: Option<Severity> = match args.fail_on.as_str() {
        "none" => None,
        s => Some(s.parse()?),
    };
    let min_severity: Option<Severity> =
        args.min_severity.as_deref().map(str::parse).transpose()?;
    let (ignore, ignore_name) = load_ignore_file(args.ignore_file.as_ref())?;
    let catalogue = Catalogue::builtin();
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

    let kinds: std::collections::HashSet<String> = analysers
        .iter()
        .flat_map(|a| a.kinds().iter().map(|k| k.to_string()))
        .collect();
    let (set, mut errors) = if args.cluster {
        read_cluster(&args, kinds)?
    } else {
        read_files(&args, kinds)?
    };

    let (findings, notes) = jackstop_analysers::run_noted(&analysers, &set.objects, catalogue);
    errors.extend(notes);
    let annotations: HashMap<ResourceRef, (&str, Option<&str>)> = set
        .objects
        .iter()
        .filter_map(|o| {
            let v = o.annotation(IGNORE_ANNOTATION)?;
            Some((o.resource(), (v, o.annotation(IGNORE_REASON_ANNOTATION))))
        })
        .collect();
    let (mut findings, suppressed) = exceptions::apply(findings, &ignore, &ignore_name, |r| {
        annotations.get(r).copied()
    });
    if let Some(min) = min_severity {
        findings.retain(|f| f.severity >= min);
    }
    let outcome = ScanOutcome {
        findings,
        suppressed,
        errors,
        stats: set.stats,
    };

    let format = output::format(args.output.format, args.output.output.is_some());
    let ctx = ReportContext {
        rules: &catalogue.rules,
        fail_on,
        color: output::color(&args.output),
        tool_version: env!("CARGO_PKG_VERSION"),
    };
    let writer: Box<dyn ReportWriter> = match format {
        Format::Table => Box::new(TableWriter),
        Format::Json => Box::new(JsonWriter),
        Format::Sarif => Box::new(SarifWriter),
    };
    output::write_to(&args.output, |w| writer.write(&outcome, &ctx, w))?;
    if format != Format::Table {
        // Machine formats carry errors in the document; say them on stderr too.
        for e in &outcome.errors {
            let pos = e.line.map(|l| format!(":{l}")).unwrap_or_default();
            eprintln!("jackstop: {}{pos}: {}", e.path, e.message);
        }
    }
    let failed = fail_on.is_some_and(|t| outcome.findings.iter().any(|f| f.severity >= t));
    let _ = EXIT_FAILED;
    Ok(if failed { EXIT_FINDINGS } else { EXIT_CLEAN })
}
