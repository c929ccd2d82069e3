//! `jackstop policy export`: the catalogue's per-object rules as ValidatingAdmissionPolicies
//! and Bindings (YAML). The policies are made by `jackstop-policy`; this only prints them.

use crate::cli::{PolicyAction, PolicyArgs, PolicyCommand, PolicyExportArgs};
use crate::EXIT_CLEAN;
use anyhow::Context;
use jackstop_catalogue::Catalogue;
use jackstop_policy::{Action, Options};
use std::io::Write;

pub fn run(args: PolicyArgs) -> anyhow::Result<u8> {
    match args.command {
        PolicyCommand::Export(a) => export(a),
    }
}

fn export(args: PolicyExportArgs) -> anyhow::Result<u8> {
    let options = Options {
        rules: args.rules,
        action: match args.action {
            PolicyAction::Deny => Action::Deny,
            PolicyAction::Warn => Action::Warn,
            PolicyAction::Audit => Action::Audit,
        },
        exclude_namespaces: args.exclude_namespaces,
    };
    let yaml = jackstop_policy::to_yaml(Catalogue::builtin(), &options)?;
    match &args.output {
        Some(path) => std::fs::write(path, yaml)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth a message.
            if let Err(e) = out.write_all(yaml.as_bytes()).and_then(|_| out.flush()) {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(e).context("cannot write to stdout");
                }
            }
        }
    }
    Ok(EXIT_CLEAN)
}
