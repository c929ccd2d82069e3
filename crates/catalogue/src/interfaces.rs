//! Sensitive interfaces (`data/interfaces.yaml`): how to recognise each in a pod spec and how
//! it authenticates by itself.

use crate::{parse_yaml, CatalogueError};
use regex::Regex;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthDefault {
    /// No login at all unless configured.
    Open,
    /// A login (token, password, bearer token) unless configured off.
    Login,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchEntryRaw {
    image: Option<String>,
    command: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthRaw {
    default: AuthDefault,
    note: Option<String>,
    #[serde(default)]
    open_when: Vec<String>,
    #[serde(default)]
    open_unless: Vec<String>,
    #[serde(default)]
    login_when: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InterfaceRaw {
    id: String,
    name: String,
    rule: String,
    starts_workloads: bool,
    #[serde(rename = "match")]
    matches: Vec<MatchEntryRaw>,
    #[serde(default)]
    labels: Vec<BTreeMap<String, String>>,
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    ports: Vec<u16>,
    auth: AuthRaw,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InterfacesFile {
    #[allow(dead_code)]
    version: u32,
    interfaces: Vec<InterfaceRaw>,
}

/// One way to recognise an interface's container: all given conditions hold.
#[derive(Debug)]
pub struct MatchEntry {
    /// Lower-case substring of the image reference.
    pub image: Option<String>,
    pub command: Option<Regex>,
}

/// What the interface's own authentication looks like.
#[derive(Debug)]
pub struct OwnAuth {
    pub default: AuthDefault,
    pub note: Option<String>,
    pub open_when: Vec<Regex>,
    pub open_unless: Vec<Regex>,
    pub login_when: Vec<Regex>,
}

/// One sensitive interface of the catalogue.
#[derive(Debug)]
pub struct Interface {
    pub id: String,
    pub name: String,
    /// The rule an unauthenticated exposure of this interface is reported under.
    pub rule: String,
    /// Whether a caller can start workloads through it (makes an open exposure critical).
    pub starts_workloads: bool,
    pub matches: Vec<MatchEntry>,
    pub labels: Vec<BTreeMap<String, String>>,
    pub services: Vec<String>,
    pub ports: Vec<u16>,
    pub auth: OwnAuth,
}

/// The container facts interfaces are matched on.
pub struct ContainerFacts<'a> {
    pub image: &'a str,
    /// Command, args and `NAME=value` env lines, one text (see the data file's header).
    pub command_line: &'a str,
}

/// The verdict on an interface's own login for one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnLogin {
    pub required: bool,
    /// Why, in words, for the evidence.
    pub why: String,
}

impl Interface {
    pub fn matches_container(&self, c: &ContainerFacts<'_>) -> bool {
        let image = c.image.to_ascii_lowercase();
        self.matches.iter().any(|m| {
            m.image.as_ref().is_none_or(|i| image.contains(i.as_str()))
                && m.command
                    .as_ref()
                    .is_none_or(|r| r.is_match(c.command_line))
        })
    }

    /// Whether pods with these labels are this interface (`*` as a value: the key exists).
    pub fn matches_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels.iter().any(|set| {
            !set.is_empty()
                && set
                    .iter()
                    .all(|(k, v)| labels.get(k).is_some_and(|have| v == "*" || have == v))
        })
    }

    /// Whether a Service name is this interface's (`*-head-svc`: a suffix after `*`).
    pub fn matches_service_name(&self, name: &str) -> bool {
        self.services.iter().any(|s| match s.strip_prefix('*') {
            Some(suffix) => name.ends_with(suffix) && name.len() > suffix.len(),
            None => s == name,
        })
    }

    /// Decides whether the interface asks for a login, from its command line (empty when only
    /// its Service is known).
    pub fn own_login(&self, command_line: &str) -> OwnLogin {
        let found = |rs: &[Regex]| {
            rs.iter()
                .find(|r| r.is_match(command_line))
                .map(|r| r.as_str().to_string())
        };
        match self.auth.default {
            AuthDefault::Login => {
                match (found(&self.auth.open_when), found(&self.auth.open_unless)) {
                    (Some(flag), None) => OwnLogin {
                        required: false,
                        why: format!("{} login turned off (matches {flag})", self.name),
                    },
                    _ => OwnLogin {
                        required: true,
                        why: format!(
                            "{} asks for its own login{}",
                            self.name,
                            self.auth
                                .note
                                .as_ref()
                                .map(|n| format!(" ({n})"))
                                .unwrap_or_default()
                        ),
                    },
                }
            }
            AuthDefault::Open => match found(&self.auth.login_when) {
                Some(flag) => OwnLogin {
                    required: true,
                    why: format!("{} login turned on (matches {flag})", self.name),
                },
                None => OwnLogin {
                    required: false,
                    why: format!(
                        "{} has no login of its own{}",
                        self.name,
                        self.auth
                            .note
                            .as_ref()
                            .map(|n| format!(" ({n})"))
                            .unwrap_or_default()
                    ),
                },
            },
        }
    }
}

#[derive(Debug)]
pub struct InterfaceSet {
    interfaces: Vec<Interface>,
    /// Unique to this set among every set the process parses, for callers that remember a
    /// container's position in it (an address could be reused by a later set).
    id: u64,
}

fn compile(id: &str, patterns: Vec<String>) -> Result<Vec<Regex>, CatalogueError> {
    patterns
        .into_iter()
        .map(|p| {
            Regex::new(&p).map_err(|e| CatalogueError::Regex {
                file: "interfaces.yaml",
                id: id.to_string(),
                pattern: p.clone(),
                message: e.to_string(),
            })
        })
        .collect()
}

impl InterfaceSet {
    pub fn parse(text: &str) -> Result<InterfaceSet, CatalogueError> {
        let file: InterfacesFile = parse_yaml("interfaces.yaml", text)?;
        let mut interfaces = Vec::new();
        for raw in file.interfaces {
            let mut matches = Vec::new();
            for m in raw.matches {
                if m.image.is_none() && m.command.is_none() {
                    return Err(CatalogueError::Invalid {
                        file: "interfaces.yaml",
                        message: format!("{}: a match entry needs image or command", raw.id),
                    });
                }
                let command = compile(&raw.id, m.command.into_iter().collect())?.pop();
                matches.push(MatchEntry {
                    image: m.image.map(|i| i.to_ascii_lowercase()),
                    command,
                });
            }
            interfaces.push(Interface {
                auth: OwnAuth {
                    default: raw.auth.default,
                    note: raw.auth.note,
                    open_when: compile(&raw.id, raw.auth.open_when)?,
                    open_unless: compile(&raw.id, raw.auth.open_unless)?,
                    login_when: compile(&raw.id, raw.auth.login_when)?,
                },
                id: raw.id,
                name: raw.name,
                rule: raw.rule,
                starts_workloads: raw.starts_workloads,
                matches,
                labels: raw.labels,
                services: raw.services,
                ports: raw.ports,
            });
        }
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(InterfaceSet { interfaces, id })
    }

    /// What tells this set from every other the process parsed.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn iter(&self) -> impl Iterator<Item = &Interface> {
        self.interfaces.iter()
    }

    pub fn get(&self, id: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.id == id)
    }

    /// The first interface a container is.
    pub fn for_container(&self, c: &ContainerFacts<'_>) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.matches_container(c))
    }

    /// Where [`InterfaceSet::for_container`]'s answer sits in the set, for callers that
    /// remember it.
    pub fn position_for_container(&self, c: &ContainerFacts<'_>) -> Option<usize> {
        self.interfaces.iter().position(|i| i.matches_container(c))
    }

    /// The interface at a position [`InterfaceSet::position_for_container`] gave.
    pub fn nth(&self, i: usize) -> Option<&Interface> {
        self.interfaces.get(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> InterfaceSet {
        InterfaceSet::parse(crate::INTERFACES_YAML).unwrap()
    }

    #[test]
    fn recognises_real_images() {
        let s = set();
        let id = |image: &str, cmd: &str| {
            s.for_container(&ContainerFacts {
                image,
                command_line: cmd,
            })
            .map(|i| i.id.as_str())
        };
        assert_eq!(
            id("ghcr.io/kubeflow/kubeflow/central-dashboard:v1.10.0", ""),
            Some("kubeflow-central-dashboard")
        );
        assert_eq!(
            id(
                "quay.io/argoproj/argocli:v3.5.5",
                "server --auth-mode=server"
            ),
            Some("argo-server")
        );
        // argocli also runs workflow steps; only `argo server` is the server.
        assert_eq!(id("quay.io/argoproj/argocli:v3.5.5", "version"), None);
        assert_eq!(
            id("python:3.11", "mlflow server --host 0.0.0.0"),
            Some("mlflow")
        );
        assert_eq!(id("python:3.11", "python train.py --log-mlflow"), None);
        assert_eq!(
            id(
                "rayproject/ray:2.9.0",
                "ray start --head --dashboard-host=0.0.0.0"
            ),
            Some("ray-head")
        );
        assert_eq!(
            id("rayproject/ray:2.9.0", "ray start --address=head:6379"),
            None
        );
    }

    #[test]
    fn own_login_flags() {
        let s = set();
        let jupyter = s.get("jupyter").unwrap();
        assert!(jupyter.own_login("jupyter lab --ip=0.0.0.0").required);
        assert!(
            !jupyter
                .own_login("jupyter lab --ServerApp.token='' --ip=0.0.0.0")
                .required
        );
        assert!(
            jupyter
                .own_login("jupyter lab --ServerApp.token='' --ServerApp.password='argon2:x'")
                .required
        );
        let argo = s.get("argo-server").unwrap();
        assert!(argo.own_login("server --auth-mode=client").required);
        assert!(
            !argo
                .own_login("server --auth-mode=sso --auth-mode=server")
                .required
        );
        let dash = s.get("kubernetes-dashboard").unwrap();
        assert!(
            !dash
                .own_login("--auto-generate-certificates --enable-skip-login")
                .required
        );
        assert!(
            dash.own_login("--auto-generate-certificates --enable-skip-login=false")
                .required
        );
        let ray = s.get("ray-head").unwrap();
        assert!(!ray.own_login("ray start --head").required);
        assert!(
            ray.own_login("ray start --head\nRAY_AUTH_MODE=token")
                .required
        );
    }
}
