//! The rule list (`data/rules.yaml`).

use crate::{parse_yaml, CatalogueError};
use jackstop_core::Rule;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[allow(dead_code)]
    version: u32,
    rules: Vec<Rule>,
}

#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    pub fn parse(text: &str) -> Result<RuleSet, CatalogueError> {
        let file: RulesFile = parse_yaml("rules.yaml", text)?;
        let id_shape = regex::Regex::new(r"^JS-[A-Z]{3}-\d{3}$").expect("static regex");
        let mut seen = std::collections::HashSet::new();
        for r in &file.rules {
            if !id_shape.is_match(&r.id) || !seen.insert(r.id.clone()) {
                return Err(CatalogueError::Invalid {
                    file: "rules.yaml",
                    message: format!("rule id {:?} is malformed or repeated", r.id),
                });
            }
            if r.references.is_empty() || r.remediation.trim().is_empty() {
                return Err(CatalogueError::Invalid {
                    file: "rules.yaml",
                    message: format!("{} needs a remediation and at least one reference", r.id),
                });
            }
        }
        Ok(RuleSet { rules: file.rules })
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id.eq_ignore_ascii_case(id))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter()
    }
}
