//! What the webhook does with what it finds: a mode per rule and per namespace, and who is
//! exempt. Read from a YAML file (`--policy`), reloaded when it changes.
//!
//! ```yaml
//! apiVersion: jackstop.dev/v1alpha1   # optional, as are kind and metadata
//! kind: WebhookPolicy
//! mode: enforce          # the default: enforce | warn | audit | off
//! denyAtOrAbove: high    # in enforce, findings below this only warn
//! rules:
//!   JS-SUS-002: warn
//! namespaces:
//!   - match: "sandbox-*"
//!     mode: warn
//! exempt:
//!   namespaces: [kube-system]
//!   namespaceLabels: {jackstop.dev/exempt: "true"}
//!   users: ["system:serviceaccount:kube-system:*"]
//! ```
//!
//! A rule's mode and a namespace's mode each relax or tighten the default; when both are set
//! the less strict wins, so that `sandbox-*: audit` means what it says for every rule. The
//! namespace is the request's: the change is what is allowed or denied, and exemptions go by
//! it too (a cluster-scoped request goes by the namespace of what was found).
//!
//! `denyAtOrAbove` bounds what `enforce` denies when it comes from the default or from a
//! namespace: findings below it only warn. A rule set to `enforce` by name denies its findings
//! at any severity, unless a namespace relaxes it: naming a rule is asking for it to be enforced.
//!
//! There is no exemption by the object's own labels or annotations (and `jackstop.dev/ignore`
//! is not honoured here): whoever makes the request writes them, the attacker included.
//! Namespace labels are set by whoever may edit namespaces, and users are authenticated.

use globset::{Glob, GlobMatcher};
use jackstop_core::Severity;
use serde::Deserialize;
use std::collections::BTreeMap;

/// What happens to a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Nothing: not even logged.
    Off,
    /// Allowed, and logged.
    Audit,
    /// Allowed, with an admission warning (kubectl shows it), and logged.
    Warn,
    /// Denied, with the reason and the safe way; logged.
    Enforce,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Audit => "audit",
            Mode::Warn => "warn",
            Mode::Enforce => "enforce",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    /// Read and ignored: the file looks like an object so that tools that read manifests
    /// (jackstop scan, kustomize) take it as one.
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Option<serde_json::Value>,
    #[serde(default = "default_mode")]
    mode: Mode,
    #[serde(default = "default_threshold")]
    deny_at_or_above: Severity,
    #[serde(default)]
    rules: BTreeMap<String, Mode>,
    #[serde(default)]
    namespaces: Vec<NamespaceFile>,
    #[serde(default)]
    exempt: ExemptFile,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NamespaceFile {
    #[serde(rename = "match")]
    pattern: String,
    mode: Mode,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExemptFile {
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default)]
    namespace_labels: BTreeMap<String, String>,
    #[serde(default)]
    users: Vec<String>,
}

fn default_mode() -> Mode {
    Mode::Enforce
}

fn default_threshold() -> Severity {
    Severity::High
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: {what}")]
    Invalid { path: String, what: String },
}

/// The policy in force.
#[derive(Debug, Clone)]
pub struct Policy {
    pub mode: Mode,
    pub deny_at_or_above: Severity,
    rules: BTreeMap<String, Mode>,
    namespaces: Vec<(GlobMatcher, Mode)>,
    exempt_namespaces: Vec<GlobMatcher>,
    pub exempt_namespace_labels: BTreeMap<String, String>,
    exempt_users: Vec<GlobMatcher>,
}

impl Default for Policy {
    /// Enforce at high and above, warn below; nobody exempt.
    fn default() -> Self {
        Policy {
            mode: Mode::Enforce,
            deny_at_or_above: Severity::High,
            rules: BTreeMap::new(),
            namespaces: Vec::new(),
            exempt_namespaces: Vec::new(),
            exempt_namespace_labels: BTreeMap::new(),
            exempt_users: Vec::new(),
        }
    }
}

fn glob(pattern: &str, path: &str) -> Result<GlobMatcher, PolicyError> {
    Glob::new(pattern)
        .map(|g| g.compile_matcher())
        .map_err(|e| PolicyError::Invalid {
            path: path.to_string(),
            what: format!("{pattern:?} is not a pattern: {e}"),
        })
}

impl Policy {
    pub fn parse(
        text: &str,
        path: &str,
        known_rule: impl Fn(&str) -> bool,
    ) -> Result<Policy, PolicyError> {
        let f: PolicyFile = serde_saphyr::from_str(text).map_err(|e| PolicyError::Parse {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        if let Some(k) = f.kind.as_deref().filter(|k| *k != "WebhookPolicy") {
            return Err(PolicyError::Invalid {
                path: path.into(),
                what: format!("kind {k:?}: expected WebhookPolicy"),
            });
        }
        if let Some(v) = f
            .api_version
            .as_deref()
            .filter(|v| *v != "jackstop.dev/v1alpha1")
        {
            return Err(PolicyError::Invalid {
                path: path.into(),
                what: format!("apiVersion {v:?}: expected jackstop.dev/v1alpha1"),
            });
        }
        if let Some(r) = f.rules.keys().find(|r| !known_rule(r)) {
            return Err(PolicyError::Invalid {
                path: path.into(),
                what: format!("rules: {r} is not a rule (`jackstop rules` lists them)"),
            });
        }
        Ok(Policy {
            mode: f.mode,
            deny_at_or_above: f.deny_at_or_above,
            rules: f.rules,
            namespaces: f
                .namespaces
                .iter()
                .map(|n| Ok((glob(&n.pattern, path)?, n.mode)))
                .collect::<Result<_, PolicyError>>()?,
            exempt_namespaces: f
                .exempt
                .namespaces
                .iter()
                .map(|n| glob(n, path))
                .collect::<Result<_, _>>()?,
            exempt_namespace_labels: f.exempt.namespace_labels,
            exempt_users: f
                .exempt
                .users
                .iter()
                .map(|u| glob(u, path))
                .collect::<Result<_, _>>()?,
        })
    }

    pub fn from_file(
        path: &std::path::Path,
        known_rule: impl Fn(&str) -> bool,
    ) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Policy::parse(&text, &path.display().to_string(), known_rule)
    }

    /// The mode of `rule` for a request in `namespace` (cluster-scoped: none): the rule's and
    /// the namespace's, the less strict when both are set, the default when neither is.
    pub fn mode_of(&self, rule: &str, namespace: Option<&str>) -> Mode {
        self.resolve(rule, namespace).0
    }

    /// What happens to a finding of `rule` at `severity` for a request in `namespace`:
    /// [`Policy::mode_of`], with `enforce` below `denyAtOrAbove` made `warn` unless the rule
    /// itself was set to `enforce` and no namespace relaxed it.
    pub fn mode_for(&self, rule: &str, severity: Severity, namespace: Option<&str>) -> Mode {
        match self.resolve(rule, namespace) {
            (Mode::Enforce, false) if severity < self.deny_at_or_above => Mode::Warn,
            (m, _) => m,
        }
    }

    /// The mode, and whether it is the rule's own (set by name, and not relaxed).
    fn resolve(&self, rule: &str, namespace: Option<&str>) -> (Mode, bool) {
        let by_rule = self.rules.get(rule).copied();
        let by_namespace = namespace.and_then(|ns| {
            self.namespaces
                .iter()
                .find(|(g, _)| g.is_match(ns))
                .map(|(_, m)| *m)
        });
        match (by_rule, by_namespace) {
            (Some(r), Some(n)) if n < r => (n, false),
            (Some(r), _) => (r, true),
            (None, Some(n)) => (n, false),
            (None, None) => (self.mode, false),
        }
    }

    /// Why a request is exempt, if it is: its namespace by name or labels, or its user.
    pub fn exemption(
        &self,
        namespace: Option<&str>,
        namespace_labels: Option<&serde_json::Map<String, serde_json::Value>>,
        user: &str,
    ) -> Option<String> {
        if let Some(ns) = namespace {
            if self.exempt_namespaces.iter().any(|g| g.is_match(ns)) {
                return Some(format!("namespace {ns} is exempt"));
            }
            if !self.exempt_namespace_labels.is_empty() {
                if let Some(labels) = namespace_labels {
                    let all = self
                        .exempt_namespace_labels
                        .iter()
                        .all(|(k, v)| labels.get(k).and_then(|x| x.as_str()) == Some(v.as_str()));
                    if all {
                        return Some(format!("namespace {ns} has the exempt labels"));
                    }
                }
            }
        }
        if self.exempt_users.iter().any(|g| g.is_match(user)) {
            return Some(format!("user {user} is exempt"));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(r: &str) -> bool {
        r.starts_with("JS-")
    }

    #[test]
    fn the_less_strict_of_rule_and_namespace_wins() {
        let p = Policy::parse(
            "mode: enforce\nrules:\n  JS-SUS-002: warn\n  JS-MIN-001: enforce\nnamespaces:\n  - match: 'sandbox-*'\n    mode: audit\n  - match: 'team-*'\n    mode: warn\n",
            "p.yaml",
            known,
        )
        .unwrap();
        assert_eq!(p.mode_of("JS-MIN-001", Some("prod")), Mode::Enforce);
        assert_eq!(p.mode_of("JS-SUS-002", Some("prod")), Mode::Warn);
        assert_eq!(p.mode_of("JS-MIN-001", Some("sandbox-1")), Mode::Audit);
        assert_eq!(p.mode_of("JS-SUS-002", Some("team-a")), Mode::Warn);
        assert_eq!(p.mode_of("JS-EXP-001", None), Mode::Enforce);
    }

    #[test]
    fn a_namespace_tightens_a_relaxed_default() {
        let p = Policy::parse(
            "mode: audit
rules:
  JS-SUS-002: warn
namespaces:
  - match: prod
    mode: enforce
",
            "p.yaml",
            known,
        )
        .unwrap();
        assert_eq!(p.mode_of("JS-MIN-001", Some("prod")), Mode::Enforce);
        assert_eq!(p.mode_of("JS-MIN-001", Some("dev")), Mode::Audit);
        assert_eq!(p.mode_of("JS-MIN-001", None), Mode::Audit);
        // The rule's own mode and the namespace's: the less strict.
        assert_eq!(p.mode_of("JS-SUS-002", Some("prod")), Mode::Warn);
    }

    #[test]
    fn a_rule_enforced_by_name_denies_below_the_threshold() {
        let p = Policy::parse(
            "mode: enforce
denyAtOrAbove: high
rules:
  JS-SUS-002: enforce
namespaces:
  - match: 'sandbox-*'
    mode: warn
  - match: prod
    mode: enforce
",
            "p.yaml",
            known,
        )
        .unwrap();
        // By name: denied at medium.
        assert_eq!(
            p.mode_for("JS-SUS-002", Severity::Medium, Some("ml")),
            Mode::Enforce
        );
        // By default or by namespace: only at or above the threshold.
        assert_eq!(
            p.mode_for("JS-MIN-001", Severity::Medium, Some("ml")),
            Mode::Warn
        );
        assert_eq!(
            p.mode_for("JS-MIN-001", Severity::Medium, Some("prod")),
            Mode::Warn
        );
        assert_eq!(
            p.mode_for("JS-MIN-001", Severity::Critical, Some("prod")),
            Mode::Enforce
        );
        // A namespace that relaxes it wins.
        assert_eq!(
            p.mode_for("JS-SUS-002", Severity::Critical, Some("sandbox-1")),
            Mode::Warn
        );
    }

    #[test]
    fn exemptions_by_namespace_labels_and_user_only() {
        let p = Policy::parse(
            "exempt:\n  namespaces: [kube-system]\n  namespaceLabels: {jackstop.dev/exempt: 'true'}\n  users: ['system:serviceaccount:kube-system:*']\n",
            "p.yaml",
            known,
        )
        .unwrap();
        assert!(p.exemption(Some("kube-system"), None, "bob").is_some());
        let labels = serde_json::json!({"jackstop.dev/exempt": "true"});
        assert!(p.exemption(Some("ml"), labels.as_object(), "bob").is_some());
        let other = serde_json::json!({"jackstop.dev/exempt": "false"});
        assert!(p.exemption(Some("ml"), other.as_object(), "bob").is_none());
        assert!(p
            .exemption(
                Some("ml"),
                None,
                "system:serviceaccount:kube-system:replicaset-controller"
            )
            .is_some());
        assert!(p
            .exemption(Some("ml"), None, "system:serviceaccount:ml:default")
            .is_none());
    }

    #[test]
    fn bad_policies_say_where() {
        let e = Policy::parse("mode: block\n", "p.yaml", known).unwrap_err();
        assert!(e.to_string().starts_with("p.yaml: "), "{e}");
        let e = Policy::parse("rules: {XX-1: warn}\n", "p.yaml", known).unwrap_err();
        assert!(e.to_string().contains("XX-1 is not a rule"), "{e}");
        let e = Policy::parse("modes: warn\n", "p.yaml", known).unwrap_err();
        assert!(e.to_string().contains("modes"), "{e}");
        let e =
            Policy::parse("namespaces: [{match: '[', mode: warn}]\n", "p.yaml", known).unwrap_err();
        assert!(e.to_string().contains("not a pattern"), "{e}");
    }
}
