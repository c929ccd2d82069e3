//! Turning the paths a user gave into the list of inputs to read.

use globset::{Glob, GlobSet, GlobSetBuilder};
use jackstop_core::InputError;
use std::path::{Path, PathBuf};

/// One input to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    File(PathBuf),
    Stdin,
}

impl Input {
    /// The name used in findings and errors.
    pub fn display(&self) -> String {
        match self {
            Input::File(p) => p.display().to_string(),
            Input::Stdin => "<stdin>".to_string(),
        }
    }
}

/// Directories never worth descending into: version control and build output.
const SKIPPED_DIRS: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    "target",
    "node_modules",
    ".terraform",
];
/// What a directory walk reads; a file named explicitly is read whatever its name.
const MANIFEST_EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// Expands `paths` (files, directories, `-`) into inputs, in a stable order. Paths that do not
/// exist, and bad `exclude` globs, become errors; the rest goes on.
pub fn collect_inputs(paths: &[String], exclude: &[String]) -> (Vec<Input>, Vec<InputError>) {
    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    let excludes = build_excludes(exclude, &mut errors);
    for p in paths {
        if p == "-" {
            if !inputs.contains(&Input::Stdin) {
                inputs.push(Input::Stdin);
            }
            continue;
        }
        let path = Path::new(p);
        match std::fs::metadata(path) {
            Err(e) => errors.push(InputError {
                path: p.clone(),
                line: None,
                column: None,
                message: format!("cannot read: {e}"),
            }),
            Ok(m) if m.is_dir() => walk_dir(path, &excludes, &mut inputs, &mut errors),
            Ok(_) => inputs.push(Input::File(path.to_path_buf())),
        }
    }
    (inputs, errors)
}

fn build_excludes(globs: &[String], errors: &mut Vec<InputError>) -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        match Glob::new(g) {
            Ok(glob) => {
                b.add(glob);
            }
            Err(e) => errors.push(InputError {
                path: g.clone(),
                line: None,
                column: None,
                message: format!("bad --exclude pattern: {e}"),
            }),
        }
    }
    b.build().unwrap_or_else(|_| GlobSet::empty())
}

fn walk_dir(
    root: &Path,
    excludes: &GlobSet,
    inputs: &mut Vec<Input>,
    errors: &mut Vec<InputError>,
) {
    let walker = ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(|e| {
            let is_dir = e.file_type().is_some_and(|t| t.is_dir());
            !(is_dir && e.depth() > 0 && SKIPPED_DIRS.iter().any(|d| e.file_name() == *d))
        })
        .build();
    for entry in walker {
        match entry {
            Ok(e) => {
                if !e.file_type().is_some_and(|t| t.is_file()) {
                    continue;
                }
                let path = e.path();
                let wanted = path.extension().and_then(|x| x.to_str()).is_some_and(|x| {
                    MANIFEST_EXTENSIONS.contains(&x.to_ascii_lowercase().as_str())
                });
                if wanted && !excludes.is_match(path) {
                    inputs.push(Input::File(path.to_path_buf()));
                }
            }
            Err(e) => errors.push(InputError {
                path: root.display().to_string(),
                line: None,
                column: None,
                message: format!("cannot walk: {e}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_manifests_and_skips_build_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join(".git")).unwrap();
        std::fs::create_dir_all(d.join("target")).unwrap();
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join(".git/x.yaml"), "a: 1").unwrap();
        std::fs::write(d.join("target/x.yaml"), "a: 1").unwrap();
        std::fs::write(d.join("sub/b.yml"), "a: 1").unwrap();
        std::fs::write(d.join("a.json"), "{}").unwrap();
        std::fs::write(d.join("notes.txt"), "x").unwrap();
        std::fs::write(d.join("skip.yaml"), "x").unwrap();
        let (inputs, errors) = collect_inputs(
            &[
                d.display().to_string(),
                d.join("missing").display().to_string(),
            ],
            &["**/skip.yaml".to_string()],
        );
        let names: Vec<String> = inputs
            .iter()
            .map(|i| {
                i.display()
                    .trim_start_matches(&d.display().to_string())
                    .to_string()
            })
            .collect();
        assert_eq!(names, vec!["/a.json", "/sub/b.yml"]);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.starts_with("cannot read"));
    }
}
