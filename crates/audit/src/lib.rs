//! Kubernetes audit logs: the API server's own record of every request. The Kubeflow
//! campaign is all in there: who switched the ingress gateway to LoadBalancer, the requests
//! that followed without credentials, the burst of Deployments created in many namespaces
//! within seconds, the notebooks that were changed.
//!
//! [`reader`] turns logs (JSON lines, EventList documents, plain or gzip) into borrowed
//! [`event::Event`]s, streaming; [`rules`] finds the attack's steps in them, with the same
//! miner analysis as manifests and live clusters on the objects the requests carried.

pub mod event;
pub mod reader;
pub mod rules;

pub use event::Event;
pub use reader::{AuditReader, AuditStats, EventSink, Position, ReadOptions};
