//! The `jackstop` command. It owns flags, files and exit codes; everything it reports comes
//! from the library crates.

mod cli;
mod commands;
mod output;
mod progress;

use clap::Parser;
use std::process::ExitCode;

/// The contract's exit codes.
pub const EXIT_CLEAN: u8 = 0;
pub const EXIT_FINDINGS: u8 = 1;
pub const EXIT_FAILED: u8 = 2;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                EXIT_FAILED
            } else {
                EXIT_CLEAN
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        cli::Command::Scan(args) => commands::scan::run(*args),
        cli::Command::Rules(args) => commands::rules::run(args),
        cli::Command::Explain(args) => commands::explain::run(args),
        cli::Command::Watch(args) => commands::watch::run(*args),
        cli::Command::Audit(args) => commands::audit::run(*args),
        cli::Command::Fix(args) => commands::fix::run(*args),
        cli::Command::Webhook(args) => commands::webhook::run(*args),
        cli::Command::Policy(args) => commands::policy::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("jackstop: error: {e:#}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}
