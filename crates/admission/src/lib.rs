//! Admission: the detection rules applied at the moment a change is made. An AdmissionReview
//! request is judged by the same analysers as a scan, one engine:
//!
//! - a workload (a Pod, a Deployment, a Notebook, a Workflow, a RayCluster...) or a ConfigMap
//!   by the miner analysis of the object itself;
//! - a way in or what authenticates it (a Service, an Ingress, a route, an Istio
//!   AuthorizationPolicy or RequestAuthentication) by the exposure analysis of the cluster as
//!   it would be after the change, against the cluster as it is: the change is judged by the
//!   exposures it opens. The cluster comes from a watch-fed [`ClusterState`], never from a
//!   call per request;
//! - a workload that no controller made, by that exposure analysis too (a Service may route to
//!   it already); one that a controller made, alone (its controller's template was judged).
//!
//! An update is judged by what it adds: scaling a miner to zero, or removing a finalizer from
//! a deleted object, is never denied. [`policy`] says what each finding does (enforce, warn,
//! audit) and who is exempt.

pub mod engine;
pub mod policy;
pub mod state;

pub use engine::{operation_name, parse_review, response, Engine, Review, ReviewError, Verdict};
pub use policy::{Mode, Policy, PolicyError};
pub use state::ClusterState;
