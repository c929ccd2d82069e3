//! Miner analysis.
