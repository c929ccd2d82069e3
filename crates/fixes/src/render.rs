//! A fix as a file a user reads before applying: a comment that says which findings it is
//! for, what it changes, what it may break and the exact command, then YAML that `kubectl
//! patch --patch-file` or `kubectl apply -f` reads.

use crate::{Effect, Fix, Method};
use jackstop_core::ResourceRef;
use std::fmt::Write;

/// The name kubectl knows a resource's kind by: `service`, `deployment.apps`,
/// `notebook.kubeflow.org`.
pub fn kubectl_resource(r: &ResourceRef) -> String {
    let kind = r.kind.to_ascii_lowercase();
    match r.group() {
        "" => kind,
        group => format!("{kind}.{group}"),
    }
}

/// Characters a file name may keep.
fn file_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

impl Fix {
    /// `001-JS-EXP-001-istio-system-istio-ingressgateway-clusterip.patch.yaml`: the order, the
    /// first finding's rule and object (or `egress` and the namespace for a policy), and what.
    pub fn file_name(&self, index: usize) -> String {
        let rule = match self.effect {
            Effect::Contains => "egress".to_string(),
            _ => self
                .findings
                .first()
                .map(|f| f.rule.clone())
                .unwrap_or_else(|| "fix".into()),
        };
        // Named after what it is about: the object of the first finding (the gateway Service
        // for the policies that guard it), or the namespace of a policy.
        let about = match (self.effect, self.findings.first()) {
            (Effect::Contains, _) | (_, None) => &self.target,
            (_, Some(f)) => &f.resource,
        };
        let ns = about
            .namespace
            .as_deref()
            .map(|n| format!("{n}-"))
            .unwrap_or_default();
        let what = match self.effect {
            Effect::Contains => String::new(),
            _ => format!("{}-", about.name),
        };
        let ext = match self.method {
            Method::MergePatch | Method::JsonPatch => "patch.yaml",
            Method::Apply => "yaml",
        };
        file_part(&format!(
            "{index:03}-{rule}-{ns}{what}{}.{ext}",
            self.action
        ))
    }

    /// The command that applies the file at `path`.
    pub fn command(&self, path: &str) -> String {
        match self.method {
            Method::MergePatch | Method::JsonPatch => {
                let ty = if self.method == Method::JsonPatch {
                    "json"
                } else {
                    "merge"
                };
                let ns = self
                    .target
                    .namespace
                    .as_deref()
                    .map(|n| format!(" -n {n}"))
                    .unwrap_or_default();
                format!(
                    "kubectl patch {} {}{ns} --type {ty} --patch-file {path}",
                    kubectl_resource(&self.target),
                    self.target.name
                )
            }
            Method::Apply => format!("kubectl apply -f {path}"),
        }
    }

    /// The file's text; `path` is how the command names it.
    pub fn render(&self, path: &str) -> String {
        let mut out = String::new();
        let verb = match self.effect {
            Effect::Closes => "Closes",
            Effect::Narrows => "Narrows",
            Effect::Stops => "Stops (the finding stays until the object is deleted)",
            Effect::Contains => "Contains",
            Effect::Prepares => {
                "Prepares (closes nothing by itself; the file that names what it creates closes)"
            }
        };
        let _ = writeln!(out, "# jackstop fix: {} {}", self.action, self.target);
        if self.findings.is_empty() {
            let _ = writeln!(
                out,
                "# {verb}: no finding (a safeguard asked for with --network-policy)"
            );
        } else {
            let _ = writeln!(out, "# {verb}:");
            for f in &self.findings {
                let _ = writeln!(
                    out,
                    "#   {} {} {} ({})",
                    f.rule, f.severity, f.title, f.resource
                );
            }
        }
        comment(&mut out, "Changes", &self.changes);
        comment(&mut out, "May break", &self.breaks);
        for n in &self.notes {
            comment(&mut out, "Note", n);
        }
        for r in &self.requires {
            comment(
                &mut out,
                "Requires",
                &format!("apply the file that creates {r} first"),
            );
        }
        let _ = writeln!(out, "# Apply: {}", self.command(path));
        if self.method != Method::Apply {
            let _ = writeln!(
                out,
                "#   (check first: add --dry-run=server to see what the API server makes of it)"
            );
        } else {
            let _ = writeln!(out, "#   (check first: add --dry-run=server)");
        }
        for (i, d) in self.documents.iter().enumerate() {
            if i > 0 || self.method == Method::Apply {
                out.push_str("---\n");
            }
            out.push_str(
                &serde_saphyr::to_string(d).unwrap_or_else(|e| format!("# cannot write: {e}\n")),
            );
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
        out
    }
}

/// `# Label: text`, wrapped at about 100 columns.
fn comment(out: &mut String, label: &str, text: &str) {
    let mut line = format!("# {label}:");
    for word in text.split_whitespace() {
        if line.len() + word.len() + 1 > 100 && line.len() > label.len() + 3 {
            out.push_str(&line);
            out.push('\n');
            line = "#   ".to_string();
            line.push_str(word);
        } else {
            line.push(' ');
            line.push_str(word);
        }
    }
    out.push_str(&line);
    out.push('\n');
}
