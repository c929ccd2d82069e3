//! The built-in catalogue: rules, and the data analysers match against, kept as YAML files in
//! `data/` so that they read as documentation and change without touching analyser code.
//!
//! The catalogue is parsed and its regexes compiled once ([`Catalogue::builtin`]); analysers
//! borrow the immutable result, so a scan of many objects pays for compilation once.

pub mod audit;
pub mod exposure;
pub mod indicators;
pub mod interfaces;
pub mod rules;

pub use audit::AuditData;
pub use exposure::ExposureData;
pub use indicators::IndicatorSet;
pub use interfaces::{AuthDefault, Interface, InterfaceSet};
pub use rules::RuleSet;

use std::sync::OnceLock;
use thiserror::Error;

/// A catalogue file that does not load: a defect of the build, caught by this crate's tests.
#[derive(Debug, Error)]
pub enum CatalogueError {
    #[error("{file}: {message}")]
    Parse { file: &'static str, message: String },
    #[error("{file}: {id}: bad regex {pattern:?}: {message}")]
    Regex {
        file: &'static str,
        id: String,
        pattern: String,
        message: String,
    },
    #[error("{file}: {message}")]
    Invalid { file: &'static str, message: String },
}

/// Everything built in.
#[derive(Debug)]
pub struct Catalogue {
    pub rules: RuleSet,
    pub interfaces: InterfaceSet,
    pub exposure: ExposureData,
    pub indicators: IndicatorSet,
    pub audit: AuditData,
}

pub(crate) const RULES_YAML: &str = include_str!("../data/rules.yaml");
pub(crate) const INTERFACES_YAML: &str = include_str!("../data/interfaces.yaml");
pub(crate) const EXPOSURE_YAML: &str = include_str!("../data/exposure.yaml");
pub(crate) const INDICATORS_YAML: &str = include_str!("../data/indicators.yaml");
pub(crate) const AUDIT_YAML: &str = include_str!("../data/audit.yaml");

impl Catalogue {
    pub fn load() -> Result<Catalogue, CatalogueError> {
        let rules = RuleSet::parse(RULES_YAML)?;
        let interfaces = InterfaceSet::parse(INTERFACES_YAML)?;
        let exposure = ExposureData::parse(EXPOSURE_YAML)?;
        let indicators = IndicatorSet::parse(INDICATORS_YAML)?;
        let audit = AuditData::parse(AUDIT_YAML)?;
        for i in interfaces.iter() {
            if rules.get(&i.rule).is_none() {
                return Err(CatalogueError::Invalid {
                    file: "interfaces.yaml",
                    message: format!("{} cites unknown rule {}", i.id, i.rule),
                });
            }
        }
        Ok(Catalogue {
            rules,
            interfaces,
            exposure,
            indicators,
            audit,
        })
    }

    /// The built-in catalogue, loaded on first use. Its files are compiled in and tested, so
    /// a failure here is a build defect.
    pub fn builtin() -> &'static Catalogue {
        static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
        CATALOGUE.get_or_init(|| Catalogue::load().expect("built-in catalogue is valid (tested)"))
    }
}

pub(crate) fn parse_yaml<T: serde::de::DeserializeOwned>(
    file: &'static str,
    text: &str,
) -> Result<T, CatalogueError> {
    serde_saphyr::from_str(text).map_err(|e| CatalogueError::Parse {
        file,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_loads() {
        let c = Catalogue::load().unwrap();
        assert!(c.rules.iter().count() >= 9);
        assert!(c.interfaces.iter().count() >= 10);
    }
}
