//! What the audit-log rules match against (`data/audit.yaml`).

use crate::{parse_yaml, CatalogueError};
use regex::Regex;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A Service that is a door when opened.
#[derive(Debug, Deserialize)]
pub struct Gateway {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    pub what: String,
}

#[derive(Debug, Deserialize)]
struct Raw {
    gateways: Vec<Gateway>,
    anonymous_allowed: Vec<String>,
    anonymous_discovery: bool,
    controllers: Vec<String>,
    reconcilers: Vec<String>,
    privileged_roles: Vec<String>,
    ml_service_accounts: Vec<String>,
    open_groups: Vec<String>,
    gateway_auth_namespaces: Vec<String>,
    gateway_auth_words: Vec<String>,
    auth_workloads: Vec<String>,
}

/// The audit rules' data, regexes compiled.
#[derive(Debug)]
pub struct AuditData {
    pub gateways: Vec<Gateway>,
    pub anonymous_allowed: Vec<String>,
    pub anonymous_discovery: bool,
    pub controllers: Vec<String>,
    pub reconcilers: Vec<Regex>,
    pub privileged_roles: Vec<String>,
    pub ml_service_accounts: Vec<Regex>,
    pub open_groups: Vec<String>,
    pub gateway_auth_namespaces: Vec<String>,
    pub gateway_auth_words: Vec<String>,
    pub auth_workloads: Vec<String>,
}

impl AuditData {
    pub fn parse(text: &str) -> Result<AuditData, CatalogueError> {
        let raw: Raw = parse_yaml("audit.yaml", text)?;
        let compile = |id: &str, list: &[String]| {
            list.iter()
                .map(|p| {
                    Regex::new(p).map_err(|e| CatalogueError::Regex {
                        file: "audit.yaml",
                        id: id.into(),
                        pattern: p.clone(),
                        message: e.to_string(),
                    })
                })
                .collect::<Result<Vec<Regex>, _>>()
        };
        let ml_service_accounts = compile("ml_service_accounts", &raw.ml_service_accounts)?;
        let reconcilers = compile("reconcilers", &raw.reconcilers)?;
        Ok(AuditData {
            gateways: raw.gateways,
            anonymous_allowed: raw.anonymous_allowed,
            anonymous_discovery: raw.anonymous_discovery,
            controllers: raw.controllers,
            reconcilers,
            privileged_roles: raw.privileged_roles,
            ml_service_accounts,
            open_groups: raw.open_groups,
            gateway_auth_namespaces: raw.gateway_auth_namespaces,
            gateway_auth_words: raw.gateway_auth_words,
            auth_workloads: raw.auth_workloads,
        })
    }

    /// Whether a username is one of the cluster's own controllers.
    pub fn is_controller(&self, username: &str) -> bool {
        self.controllers
            .iter()
            .any(|c| username.starts_with(c.as_str()))
    }

    /// Whether a username is an operator that updates objects it did not author.
    pub fn is_reconciler(&self, username: &str) -> bool {
        self.reconcilers.iter().any(|r| r.is_match(username))
    }

    /// Whether a service account (`namespace/name`) is a dashboard, notebook or pipeline one.
    pub fn is_ml_service_account(&self, ns_name: &str) -> bool {
        self.ml_service_accounts.iter().any(|r| r.is_match(ns_name))
    }

    /// Whether an anonymous request to this non-resource path means nothing.
    pub fn anonymous_may(&self, path: &str) -> bool {
        let path = path.split('?').next().unwrap_or(path);
        if self
            .anonymous_allowed
            .iter()
            .any(|p| path.starts_with(p.as_str()))
        {
            return true;
        }
        if self.anonymous_discovery {
            let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            return matches!(
                segs.as_slice(),
                ["api"] | ["api", _] | ["apis"] | ["apis", _] | ["apis", _, _]
            );
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_and_answers() {
        let d = AuditData::parse(crate::AUDIT_YAML).unwrap();
        assert!(d.is_controller("system:serviceaccount:kube-system:deployment-controller"));
        assert!(!d.is_controller("system:serviceaccount:kubeflow:centraldashboard"));
        assert!(d.is_ml_service_account("kubeflow/pipeline-runner"));
        assert!(d.is_reconciler("system:serviceaccount:kubeflow:argo"));
        assert!(!d.is_reconciler("system:serviceaccount:kubeflow:argo-evil"));
        assert!(!d.is_reconciler("system:serviceaccount:kubeflow:jupyter-web-app-service-account"));
        assert!(d.is_ml_service_account("team-a/ml-pipeline-ui"));
        assert!(!d.is_ml_service_account("monitoring/prometheus"));
        assert!(d.anonymous_may("/healthz?verbose"));
        assert!(d.anonymous_may("/apis/apps/v1"));
        assert!(!d.anonymous_may("/apis/apps/v1/deployments"));
        assert!(!d.anonymous_may("/debug/pprof/"));
        assert!(!d.anonymous_may("/metrics"));
    }
}
