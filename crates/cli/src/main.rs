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

/// mimalloc rather than glibc's malloc. A review allocates and frees a few hundred small
/// blocks (a request's JSON values, the texts the miner rules read); under glibc that was about
/// a quarter of the webhook's CPU (malloc, free and their consolidation, in a profile at 1,000
/// reviews/s), and it is the CPU per review that sets the webhook's latency tail on a busy node.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option (its index in `mi_option_t`, the same in mimalloc 2 and 3).
const MI_OPTION_PURGE_DELAY: i32 = 15;

/// Freed memory goes back to the system at once, not after mimalloc's default delay: the
/// webhook's resident size then follows what it holds (its cluster view) instead of its peak
/// while reading the manifests or a rebuild. Unless the user set `MIMALLOC_PURGE_DELAY`.
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set only stores an option's value; any thread, any time.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
}

fn main() -> ExitCode {
    tune_allocator();
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
