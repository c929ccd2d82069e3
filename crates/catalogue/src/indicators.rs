//! The miner indicator catalogue (`data/indicators.yaml`), compiled once into multi-pattern
//! automata.

use crate::CatalogueError;

#[derive(Debug)]
pub struct IndicatorSet {}

impl IndicatorSet {
    pub fn parse(_text: &str) -> Result<IndicatorSet, CatalogueError> {
        Ok(IndicatorSet {})
    }
}
