//! One module per subcommand.

pub mod analysis;
pub mod audit;
pub mod audit_serve;
pub mod explain;
pub mod fix;
pub mod policy;
pub mod rules;
pub mod scan;
pub mod serving;
pub mod watch;
pub mod webhook;
