//! Where and how a report is written: format defaults, colour, the output file.

use crate::cli::{Format, OutputArgs};
use anyhow::Context;
use std::io::{IsTerminal, Write};

/// The format asked for, or the contract's default: table on a terminal, JSON otherwise.
pub fn format(asked: Option<Format>, to_file: bool) -> Format {
    asked.unwrap_or(if !to_file && std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Json
    })
}

/// Colour only on a terminal, and never when NO_COLOR is set or --no-color given.
pub fn color(args: &OutputArgs) -> bool {
    !args.no_color
        && args.output.is_none()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::stdout().is_terminal()
}

/// Writes to the output file or stdout, reporting which failed.
pub fn write_to(
    args: &OutputArgs,
    f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut w = std::io::BufWriter::new(file);
            f(&mut w)
                .and_then(|_| w.flush())
                .with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::new(stdout.lock());
            match f(&mut w).and_then(|_| w.flush()) {
                // A closed pipe (`| head`) is the reader's choice, not our failure.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                r => r.context("cannot write to stdout"),
            }
        }
    }
}
