//! `jackstop fix PATH... --out DIR` (or `--cluster`): read and analyse as `scan` does, then
//! write one reviewable file per fix into DIR, and a summary on stdout. Nothing is sent to a
//! cluster unless `--apply` is given (with `--cluster`): then every fix is first sent as a
//! server-side dry run, and only when all of them pass are they applied for real.

use crate::cli::{FixArgs, FixFormat};
use crate::commands::analysis::{cluster_options, read_manifests, Analysis};
use crate::progress::ListProgress;
use crate::{EXIT_CLEAN, EXIT_FAILED, EXIT_FINDINGS};
use anyhow::{bail, Context};
use jackstop_cluster::apply::{Change, Sent};
use jackstop_core::{InputError, Object, Severity};
use jackstop_fixes::{Fix, FixOptions, Method, Oidc, OidcClient, Plan};
use jackstop_manifests::KindFilter;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// Kinds a fix reads besides the analysers' own: an egress policy already in place, and
/// what makes a namespace an ML namespace.
const FIX_KINDS: &[&str] = &["NetworkPolicy", "Namespace", "Profile"];

/// What happened to one fix with `--apply`.
#[derive(Default, Clone)]
struct Applied {
    dry_run: Option<Result<String, String>>,
    applied: Option<Result<String, String>>,
    skipped: Option<String>,
}

pub fn run(args: FixArgs) -> anyhow::Result<u8> {
    if !args.cluster {
        let stray = [
            ("--apply", args.apply),
            ("--kubeconfig", args.live.kubeconfig.is_some()),
            ("--context", args.live.context.is_some()),
            ("--namespace", args.live.namespace.is_some()),
        ];
        if let Some((flag, _)) = stray.iter().find(|(_, given)| *given) {
            bail!("{flag} works on a live cluster: add --cluster (and no paths)");
        }
    }
    let fail_on: Option<Severity> = match args.fail_on.as_str() {
        "none" => None,
        s => Some(s.parse()?),
    };
    let opts = FixOptions {
        allow_cidrs: args.allow_cidr.clone(),
        oidc: args.oidc_issuer.as_ref().map(|issuer| Oidc {
            issuer: issuer.clone(),
            jwks_uri: args.oidc_jwks_uri.clone(),
            audiences: args.oidc_audience.clone(),
            client: args
                .oidc_client_id
                .clone()
                .zip(args.oidc_client_secret.clone())
                .map(|(id, secret)| OidcClient { id, secret }),
        }),
        ingress_auth_url: args.ingress_auth_url.clone(),
        ingress_auth_signin: args.ingress_auth_signin.clone(),
        network_policy_all_ml: args.network_policy,
        stop_suspicious: args.stop_suspicious,
        now: jiff::Timestamp::now()
            .round(jiff::Unit::Second)?
            .to_string(),
    };
    opts.validate()?;
    // Fail before reading anything when the files cannot be written.
    prepare_out(&args.out)?;

    let analysis = Analysis::from_args(&args.analysis)?;
    let mut kinds = analysis.kinds();
    kinds.extend(FIX_KINDS.iter().map(|k| k.to_string()));
    let (objects, mut errors) = if args.cluster {
        read_cluster(&args, kinds)?
    } else {
        {
            let (set, errors) = read_manifests(
                &args.paths,
                &args.exclude,
                args.max_file_size,
                KindFilter::Kinds(kinds),
            )?;
            (set.objects, errors)
        }
    };
    let analysed = analysis.run(&objects);
    errors.extend(analysed.notes);
    let findings = analysed.findings;
    // Suppressed findings get no fix, but are counted (never silently dropped).
    let suppressed = analysed.suppressed.len();
    let plan = jackstop_fixes::plan(&findings, &objects, &opts);

    let files = write_files(&args.out, &plan)?;
    let mut applied = vec![Applied::default(); plan.fixes.len()];
    let mut apply_failed = false;
    if args.apply {
        apply_failed = apply(&args, &plan, &objects, &mut applied)?;
    }

    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        FixFormat::Table
    } else {
        FixFormat::Json
    });
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    let written = match format {
        FixFormat::Json => write_json(
            &mut w,
            &plan,
            &files,
            &applied,
            &errors,
            (findings.len(), suppressed),
        ),
        FixFormat::Table => write_table(
            &mut w, &args.out, &plan, &files, &applied, &errors, suppressed,
        ),
    };
    match written.and_then(|_| w.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r.context("cannot write to stdout")?,
    }
    if format != FixFormat::Table {
        for e in &errors {
            let pos = e.line.map(|l| format!(":{l}")).unwrap_or_default();
            eprintln!("jackstop: {}{pos}: {}", e.path, e.message);
        }
    }
    if apply_failed {
        return Ok(EXIT_FAILED);
    }
    let failed = fail_on.is_some_and(|t| findings.iter().any(|f| f.severity >= t));
    Ok(if failed { EXIT_FINDINGS } else { EXIT_CLEAN })
}

/// The live cluster, read-only, as `scan --cluster` reads it.
fn read_cluster(
    args: &FixArgs,
    kinds: HashSet<String>,
) -> anyhow::Result<(Vec<Object>, Vec<InputError>)> {
    let opts = cluster_options(&args.live, kinds);
    let progress = ListProgress::new();
    let read = jackstop_cluster::read_cluster_blocking(&opts, &progress)?;
    progress.finish();
    Ok((read.objects, read.errors))
}

/// Whether a file in the output directory is one an earlier `jackstop fix` wrote.
fn earlier_fix_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let numbered =
        name.len() > 4 && name[..3].bytes().all(|b| b.is_ascii_digit()) && &name[3..4] == "-";
    if !numbered || !name.ends_with(".yaml") {
        return false;
    }
    std::fs::read_to_string(path).is_ok_and(|t| t.starts_with("# jackstop fix:"))
}

/// Creates the output directory and checks that it takes files.
fn prepare_out(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--out {}: cannot create the directory", dir.display()))?;
    let probe = dir.join(".jackstop-write-test");
    std::fs::write(&probe, b"")
        .with_context(|| format!("--out {}: cannot write into the directory", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Removes the files of an earlier run, so that DIR holds exactly this run's fixes (once this
/// run has something to replace them with: a run that fails to read leaves them).
fn remove_earlier(dir: &Path) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("--out {}: cannot list the directory", dir.display()))?;
    for e in entries.flatten() {
        let p = e.path();
        if p.is_file() && earlier_fix_file(&p) {
            std::fs::remove_file(&p).with_context(|| format!("cannot replace {}", p.display()))?;
        }
    }
    Ok(())
}

/// Writes every fix; returns the paths, in the plan's order.
fn write_files(dir: &Path, plan: &Plan) -> anyhow::Result<Vec<PathBuf>> {
    remove_earlier(dir)?;
    let mut paths = Vec::new();
    for (i, fix) in plan.fixes.iter().enumerate() {
        let path = dir.join(fix.file_name(i + 1));
        let text = fix.render(&path.display().to_string());
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        paths.push(path);
    }
    Ok(paths)
}

fn changes_of(fix: &Fix) -> Vec<Change> {
    match fix.method {
        Method::MergePatch => fix
            .documents
            .iter()
            .map(|d| Change::Merge {
                api_version: fix.target.api_version.clone(),
                kind: fix.target.kind.clone(),
                namespace: fix.target.namespace.clone(),
                name: fix.target.name.clone(),
                patch: d.clone(),
            })
            .collect(),
        Method::JsonPatch => fix
            .documents
            .iter()
            .map(|d| Change::Json {
                api_version: fix.target.api_version.clone(),
                kind: fix.target.kind.clone(),
                namespace: fix.target.namespace.clone(),
                name: fix.target.name.clone(),
                ops: d.clone(),
            })
            .collect(),
        Method::Apply => fix.documents.iter().cloned().map(Change::Apply).collect(),
    }
}

/// Why a fix cannot go because of what it requires: the fix of the plan that creates a
/// required object is not applied (`skipped`), or failed (`failed`).
fn unmet_requirement(
    plan: &Plan,
    fix: &Fix,
    out: &[Applied],
    failed: impl Fn(&Applied) -> bool,
    what: &str,
) -> Option<String> {
    fix.requires.iter().find_map(|r| match plan.creator_of(r) {
        None => Some(format!(
            "not applied: it names {r}, which no fix of this run creates"
        )),
        Some(j) if out[j].skipped.is_some() || failed(&out[j]) => Some(format!(
            "not applied: it names {r}, which fix {:03} creates, and that fix {what}",
            j + 1
        )),
        Some(_) => None,
    })
}

/// Dry run of every fix; then, when all passed, the real thing, in the plan's order. A fix
/// that requires what another creates goes only when that one does, and after it has been
/// applied. Returns whether anything failed (exit 2).
fn apply(
    args: &FixArgs,
    plan: &Plan,
    objects: &[Object],
    out: &mut [Applied],
) -> anyhow::Result<bool> {
    let opts = cluster_options(&args.live, HashSet::new());
    let mut wanted: Vec<(usize, Vec<Change>)> = Vec::new();
    for (i, fix) in plan.fixes.iter().enumerate() {
        if fix.needs_input {
            out[i].skipped =
                Some("has placeholders to fill in (its file says which): not applied".into());
        } else if let Some(why) = unmet_requirement(plan, fix, out, |_| false, "is not applied") {
            out[i].skipped = Some(why);
        } else {
            wanted.push((i, changes_of(fix)));
        }
    }
    // Dry runs of patches that name an object not created yet pass: the object patched
    // exists, and the reference is not checked by the API server.
    let all: Vec<Change> = wanted.iter().flat_map(|(_, c)| c.clone()).collect();
    let session = jackstop_cluster::apply::Session::open(&opts)?;
    let dry = session.send(&all, true);
    let mut results = dry.into_iter();
    let mut every_dry_run_passed = true;
    for (i, changes) in &wanted {
        let mine: Vec<Result<String, String>> = results
            .by_ref()
            .take(changes.len())
            .map(|r| r.map(|sent| describe(&sent, objects, "would")))
            .collect();
        let r = combine(mine);
        every_dry_run_passed &= r.is_ok();
        out[*i].dry_run = Some(r);
    }
    if !every_dry_run_passed {
        for (i, _) in &wanted {
            if out[*i].dry_run.as_ref().is_some_and(Result::is_ok) {
                let failed = |a: &Applied| a.dry_run.as_ref().is_some_and(Result::is_err);
                out[*i].skipped = Some(
                    unmet_requirement(plan, &plan.fixes[*i], out, failed, "failed its dry run")
                        .unwrap_or_else(|| "not applied: another fix failed its dry run".into()),
                );
            }
        }
        eprintln!("jackstop: a server-side dry run failed: nothing was applied");
        return Ok(true);
    }
    // In the plan's order, one fix at a time, on the dry run's connection: a fix that
    // requires what another creates goes only once that one has been applied.
    let mut failed = false;
    let not_applied = |a: &Applied| !a.applied.as_ref().is_some_and(Result::is_ok);
    for (i, changes) in &wanted {
        if let Some(why) =
            unmet_requirement(plan, &plan.fixes[*i], out, not_applied, "was not applied")
        {
            out[*i].skipped = Some(why);
            failed = true;
            continue;
        }
        let mine: Vec<Result<String, String>> = session
            .send(changes, false)
            .into_iter()
            .map(|r| r.map(|sent| describe(&sent, objects, "did")))
            .collect();
        let r = combine(mine);
        failed |= r.is_err();
        out[*i].applied = Some(r);
    }
    Ok(failed)
}

/// What the server made of a change, against the object as it was read: `Kind ns/name:
/// spec.type LoadBalancer -> ClusterIP; ...`, or that it is new.
fn describe(sent: &Sent, objects: &[Object], verb: &str) -> String {
    let o = &sent.object;
    let s = |p: &str| o.pointer(p).and_then(Value::as_str);
    let before = objects.iter().find(|b| {
        Some(b.api_version.as_str()) == s("/apiVersion")
            && Some(b.kind.as_str()) == s("/kind")
            && Some(b.name.as_str()) == s("/metadata/name")
            && b.namespace.as_deref() == s("/metadata/namespace")
    });
    let Some(before) = before else {
        return format!("{}: {verb} create it", sent.name);
    };
    let mut changes = Vec::new();
    diff("", &before.body, o, &mut changes);
    if changes.is_empty() {
        return format!("{}: {verb} change nothing", sent.name);
    }
    let more = changes.len().saturating_sub(8);
    changes.truncate(8);
    if more > 0 {
        changes.push(format!("{more} more"));
    }
    format!("{}: {verb} change {}", sent.name, changes.join("; "))
}

/// Fields the server keeps for itself, not worth telling.
const SERVER_FIELDS: &[&str] = &[
    "metadata.resourceVersion",
    "metadata.managedFields",
    "metadata.generation",
    "metadata.uid",
    "metadata.creationTimestamp",
    "status",
];

fn short(v: &Value) -> String {
    let t = v.to_string();
    if t.chars().count() > 60 {
        format!("{}...", t.chars().take(57).collect::<String>())
    } else {
        t
    }
}

/// The leaves where `a` and `b` differ, as `path a -> b`, `path removed`, `path b (new)`.
fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    if SERVER_FIELDS.contains(&path) {
        return;
    }
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, av) in x {
                match y.get(k) {
                    Some(bv) => diff(&join(k), av, bv, out),
                    None if !SERVER_FIELDS.contains(&join(k).as_str()) => {
                        out.push(format!("{} removed", join(k)))
                    }
                    None => {}
                }
            }
            for (k, bv) in y {
                let p = join(k);
                if !x.contains_key(k) && !SERVER_FIELDS.contains(&p.as_str()) {
                    out.push(format!("{p} {} (new)", short(bv)));
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (av, bv)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}[{i}]"), av, bv, out);
            }
        }
        _ if a != b => out.push(format!("{path} {} -> {}", short(a), short(b))),
        _ => {}
    }
}

fn combine(results: Vec<Result<String, String>>) -> Result<String, String> {
    let (ok, err): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    if err.is_empty() {
        Ok(ok
            .into_iter()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
            .join(", "))
    } else {
        Err(err
            .into_iter()
            .map(|e| e.unwrap_err())
            .collect::<Vec<_>>()
            .join("; "))
    }
}

fn result_json(r: &Option<Result<String, String>>) -> Value {
    match r {
        None => Value::Null,
        Some(Ok(m)) => json!({"ok": true, "message": m}),
        Some(Err(m)) => json!({"ok": false, "message": m}),
    }
}

fn write_json(
    w: &mut dyn Write,
    plan: &Plan,
    files: &[PathBuf],
    applied: &[Applied],
    errors: &[InputError],
    (findings, suppressed): (usize, usize),
) -> std::io::Result<()> {
    let fixes: Vec<Value> = plan
        .fixes
        .iter()
        .zip(files)
        .zip(applied)
        .map(|((fix, path), a)| {
            let file = path.display().to_string();
            let mut v = json!({
                "file": file,
                "action": fix.action,
                "effect": fix.effect,
                "method": fix.method,
                "target": fix.target,
                "findings": fix.findings,
                "changes": fix.changes,
                "breaks": fix.breaks,
                "command": fix.command(&file),
                "needsInput": fix.needs_input,
            });
            if !fix.requires.is_empty() {
                v["requires"] = json!(fix.requires);
            }
            if a.dry_run.is_some() || a.skipped.is_some() {
                v["dryRun"] = result_json(&a.dry_run);
                v["applied"] = result_json(&a.applied);
                if let Some(s) = &a.skipped {
                    v["skipped"] = json!(s);
                }
            }
            v
        })
        .collect();
    let doc = json!({
        "fixes": fixes,
        "unfixed": plan.unfixed,
        "errors": errors,
        "summary": {"findings": findings, "fixes": plan.fixes.len(), "unfixed": plan.unfixed.len(), "suppressed": suppressed},
    });
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    writeln!(w)
}

fn write_table(
    w: &mut dyn Write,
    dir: &Path,
    plan: &Plan,
    files: &[PathBuf],
    applied: &[Applied],
    errors: &[InputError],
    suppressed: usize,
) -> std::io::Result<()> {
    if plan.fixes.is_empty() {
        writeln!(w, "No fix to write: nothing found that jackstop can fix.")?;
    } else {
        writeln!(
            w,
            "Wrote {} fix file(s) to {}:",
            plan.fixes.len(),
            dir.display()
        )?;
    }
    for ((fix, path), a) in plan.fixes.iter().zip(files).zip(applied) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        writeln!(w, "  {name}")?;
        let rules: Vec<&str> = fix.findings.iter().map(|f| f.rule.as_str()).collect();
        let mut rules_words = rules.clone();
        rules_words.dedup();
        writeln!(
            w,
            "      {} {}{}: {}",
            fix.effect.as_str(),
            fix.target,
            if rules_words.is_empty() {
                String::new()
            } else {
                format!(" [{}]", rules_words.join(", "))
            },
            fix.changes
        )?;
        if fix.needs_input {
            writeln!(
                w,
                "      TODO: placeholders to fill in before applying (see the file)"
            )?;
        }
        for r in &fix.requires {
            writeln!(w, "      requires: apply the file that creates {r} first")?;
        }
        writeln!(
            w,
            "      apply: {}",
            fix.command(&path.display().to_string())
        )?;
        for (label, r) in [("dry run", &a.dry_run), ("applied", &a.applied)] {
            match r {
                Some(Ok(m)) => writeln!(w, "      {label}: ok ({m})")?,
                Some(Err(m)) => writeln!(w, "      {label}: FAILED: {m}")?,
                None => {}
            }
        }
        if let Some(s) = &a.skipped {
            writeln!(w, "      {s}")?;
        }
    }
    if !plan.unfixed.is_empty() {
        writeln!(w, "No fix for {} finding(s):", plan.unfixed.len())?;
        for u in &plan.unfixed {
            writeln!(
                w,
                "  {} {} {}: {}",
                u.finding.rule, u.finding.severity, u.finding.resource, u.reason
            )?;
        }
    }
    if suppressed > 0 {
        writeln!(
            w,
            "{suppressed} finding(s) suppressed (jackstop.dev/ignore or the ignore file): no fix written for them"
        )?;
    }
    for e in errors {
        let pos = e.line.map(|l| format!(":{l}")).unwrap_or_default();
        writeln!(w, "error: {}{pos}: {}", e.path, e.message)?;
    }
    Ok(())
}
