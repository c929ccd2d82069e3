//! `jackstop scan PATH...`: read manifests, run the analysers, apply exceptions, report.

use crate::cli::{Format, ScanArgs};
use crate::commands::analysis::{cluster_options, read_manifests, Analysis};
use crate::output;
use crate::progress::ListProgress;
use crate::{EXIT_CLEAN, EXIT_FAILED, EXIT_FINDINGS};
use anyhow::{bail, Context};
use jackstop_core::InputError;
use jackstop_core::{ScanOutcome, Severity};
use jackstop_manifests::{KindFilter, ManifestSet};
use jackstop_report::json::JsonWriter;
use jackstop_report::sarif::SarifWriter;
use jackstop_report::table::TableWriter;
use jackstop_report::{ReportContext, ReportWriter};

/// The live cluster (`--cluster`): the analysers' kinds, listed read-only.
fn read_cluster(
    args: &ScanArgs,
    kinds: std::collections::HashSet<String>,
) -> anyhow::Result<(ManifestSet, Vec<InputError>)> {
    let opts = cluster_options(&args.live, kinds);
    let progress = ListProgress::new();
    let read = jackstop_cluster::read_cluster_blocking(&opts, &progress)?;
    progress.finish();
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
            ("--kubeconfig", args.live.kubeconfig.is_some()),
            ("--context", args.live.context.is_some()),
            ("--namespace", args.live.namespace.is_some()),
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
    let analysis = Analysis::from_args(&args.analysis)?;
    let kinds = analysis.kinds();
    let (set, mut errors) = if args.cluster {
        read_cluster(&args, kinds)?
    } else {
        read_manifests(
            &args.paths,
            &args.exclude,
            args.max_file_size,
            KindFilter::Kinds(kinds),
        )?
    };
    let analysed = analysis.run(&set.objects);
    errors.extend(analysed.notes);
    let outcome = ScanOutcome {
        findings: analysed.findings,
        suppressed: analysed.suppressed,
        errors,
        stats: set.stats,
    };
    let catalogue = analysis.catalogue;

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
