//! Exceptions: findings a user has decided to accept, by resource annotation or ignore file.
//! Suppressed findings are returned, not dropped, so every report can count them.

use crate::{Finding, ResourceRef, Suppressed};
use globset::{Glob, GlobMatcher};

/// The annotation that lists rule ids to ignore on a resource (`*` for all).
pub const IGNORE_ANNOTATION: &str = "jackstop.dev/ignore";
/// The annotation that says why.
pub const IGNORE_REASON_ANNOTATION: &str = "jackstop.dev/ignore-reason";

/// A line of an ignore file that cannot be understood.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct IgnoreFileError {
    pub line: u32,
    pub message: String,
}

#[derive(Debug)]
enum Scope {
    All,
    /// `Kind/namespace/name` or `Kind/name`, each segment a glob.
    Resource(Vec<GlobMatcher>),
    /// `path:GLOB` against the finding's file.
    Path(GlobMatcher),
}

#[derive(Debug)]
struct Entry {
    rule: GlobMatcher,
    scope: Scope,
    reason: Option<String>,
    line: u32,
}

/// A parsed ignore file (`.jackstopignore`). One exception per line:
///
/// ```text
/// # RULE-ID   [RESOURCE | path:GLOB]   [# reason]
/// JS-EXP-009                                   # authenticated exposures are known
/// JS-EXP-008  Service/monitoring/tensorboard   # demo data only
/// JS-EXP-*    path:vendor/**
/// ```
#[derive(Debug, Default)]
pub struct IgnoreFile {
    entries: Vec<Entry>,
}

fn glob(text: &str, line: u32) -> Result<GlobMatcher, IgnoreFileError> {
    Glob::new(text)
        .map(|g| g.compile_matcher())
        .map_err(|e| IgnoreFileError {
            line,
            message: format!("bad pattern {text:?}: {e}"),
        })
}

impl IgnoreFile {
    pub fn parse(text: &str) -> Result<IgnoreFile, IgnoreFileError> {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i as u32 + 1;
            let (body, reason) = match raw.split_once('#') {
                Some((b, r)) => (b, Some(r.trim().to_string()).filter(|r| !r.is_empty())),
                None => (raw, None),
            };
            let words: Vec<&str> = body.split_whitespace().collect();
            let (rule, scope) = match words.as_slice() {
                [] => continue,
                [rule] => (*rule, Scope::All),
                [rule, scope] => {
                    let scope = if let Some(p) = scope.strip_prefix("path:") {
                        Scope::Path(glob(p, line)?)
                    } else {
                        let segs: Vec<&str> = scope.split('/').collect();
                        if !(2..=3).contains(&segs.len()) {
                            return Err(IgnoreFileError {
                                line,
                                message: format!("resource {scope:?} is not Kind/namespace/name, Kind/name or path:GLOB"),
                            });
                        }
                        Scope::Resource(
                            segs.iter()
                                .map(|s| glob(s, line))
                                .collect::<Result<_, _>>()?,
                        )
                    };
                    (*rule, scope)
                }
                _ => {
                    return Err(IgnoreFileError {
                        line,
                        message: "expected `RULE-ID [RESOURCE|path:GLOB] [# reason]`".into(),
                    })
                }
            };
            entries.push(Entry {
                rule: glob(&rule.to_ascii_uppercase(), line)?,
                scope,
                reason,
                line,
            });
        }
        Ok(IgnoreFile { entries })
    }

    fn matching(&self, f: &Finding) -> Option<&Entry> {
        self.entries.iter().find(|e| {
            e.rule.is_match(f.rule.to_ascii_uppercase())
                && match &e.scope {
                    Scope::All => true,
                    Scope::Path(p) => p.is_match(&f.location.path),
                    Scope::Resource(segs) => resource_matches(segs, &f.resource),
                }
        })
    }
}

fn resource_matches(segs: &[GlobMatcher], r: &ResourceRef) -> bool {
    match segs {
        [kind, ns, name] => {
            kind.is_match(&r.kind)
                && ns.is_match(r.namespace.as_deref().unwrap_or(""))
                && name.is_match(&r.name)
        }
        [kind, name] => kind.is_match(&r.kind) && r.namespace.is_none() && name.is_match(&r.name),
        _ => false,
    }
}

/// Whether an annotation value (`JS-EXP-001, JS-EXP-009`, `*`) covers a rule.
pub fn annotation_covers(value: &str, rule: &str) -> bool {
    value
        .split(',')
        .map(str::trim)
        .any(|v| v == "*" || v.eq_ignore_ascii_case("all") || v.eq_ignore_ascii_case(rule))
}

/// Splits findings into kept and suppressed. `annotations` gives a resource's
/// (`jackstop.dev/ignore`, `jackstop.dev/ignore-reason`) values.
pub fn apply<'a>(
    findings: Vec<Finding>,
    ignore: &IgnoreFile,
    ignore_path: &str,
    annotations: impl Fn(&ResourceRef) -> Option<(&'a str, Option<&'a str>)>,
) -> (Vec<Finding>, Vec<Suppressed>) {
    let mut kept = Vec::new();
    let mut suppressed = Vec::new();
    for f in findings {
        if let Some((value, reason)) = annotations(&f.resource) {
            if annotation_covers(value, &f.rule) {
                suppressed.push(Suppressed {
                    finding: f,
                    by: format!("annotation {IGNORE_ANNOTATION}"),
                    reason: reason.map(str::to_string),
                });
                continue;
            }
        }
        if let Some(e) = ignore.matching(&f) {
            let by = format!("{ignore_path}:{}", e.line);
            let reason = e.reason.clone();
            suppressed.push(Suppressed {
                finding: f,
                by,
                reason,
            });
            continue;
        }
        kept.push(f);
    }
    (kept, suppressed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Category, Location, Severity};

    fn finding(rule: &str, kind: &str, ns: Option<&str>, name: &str, path: &str) -> Finding {
        Finding {
            rule: rule.into(),
            category: Category::Exposure,
            severity: Severity::High,
            title: "t".into(),
            resource: ResourceRef {
                api_version: "v1".into(),
                kind: kind.into(),
                namespace: ns.map(str::to_string),
                name: name.into(),
            },
            location: Location {
                path: path.into(),
                line: 1,
                field: None,
                template: None,
            },
            evidence: vec![],
            remediation: String::new(),
            detail: None,
        }
    }

    #[test]
    fn ignore_file_scopes() {
        let f = IgnoreFile::parse(
            "# c\nJS-EXP-008 Service/monitoring/tb* # demo\njs-exp-00[12] path:vendor/**\n",
        )
        .unwrap();
        let findings = vec![
            finding(
                "JS-EXP-008",
                "Service",
                Some("monitoring"),
                "tb-1",
                "a.yaml",
            ),
            finding("JS-EXP-008", "Service", Some("prod"), "tb-1", "a.yaml"),
            finding("JS-EXP-001", "Ingress", Some("x"), "y", "vendor/x/a.yaml"),
        ];
        let (kept, sup) = apply(findings, &f, ".jackstopignore", |_| None);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].resource.namespace.as_deref(), Some("prod"));
        assert_eq!(sup[0].by, ".jackstopignore:2");
        assert_eq!(sup[0].reason.as_deref(), Some("demo"));
    }

    #[test]
    fn bad_lines_name_the_line() {
        let e = IgnoreFile::parse("JS-EXP-001\nJS-EXP-001 a b c\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(IgnoreFile::parse("JS-EXP-001 Service").is_err());
    }

    #[test]
    fn annotations() {
        assert!(annotation_covers("JS-EXP-001, JS-EXP-009", "JS-EXP-009"));
        assert!(annotation_covers("*", "JS-EXP-009"));
        assert!(!annotation_covers("JS-EXP-001", "JS-EXP-009"));
        let f = IgnoreFile::default();
        let (kept, sup) = apply(
            vec![finding("JS-EXP-001", "Service", None, "a", "x")],
            &f,
            "",
            |_| Some(("js-exp-001", Some("accepted"))),
        );
        assert!(kept.is_empty());
        assert_eq!(sup[0].reason.as_deref(), Some("accepted"));
    }
}
