//! Rules: the catalogue entries findings cite. The catalogue itself is data (see the
//! `jackstop-catalogue` crate); this is only its shape.

use crate::{Category, Severity};
use serde::{Deserialize, Serialize};

/// A pointer to outside documentation: a Threat Matrix technique, a CWE, an advisory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// `ms-threat-matrix`, `mitre-attack`, `cwe` or `url`.
    pub kind: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable identifier (`JS-EXP-001`); never reused for another meaning.
    pub id: String,
    pub title: String,
    pub category: Category,
    /// The severity the rule's findings usually carry; an analyser may raise or lower it
    /// for one finding and says why in the evidence.
    pub severity: Severity,
    pub description: String,
    pub remediation: String,
    #[serde(default)]
    pub references: Vec<Reference>,
    #[serde(default)]
    pub tags: Vec<String>,
}
