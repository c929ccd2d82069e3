//! What an exposure is: a way in, the hops from it to a sensitive interface, and what
//! authenticates on the way.

use jackstop_catalogue::interfaces::OwnLogin;
use jackstop_catalogue::Interface;
use jackstop_core::{Object, ResourceRef, Severity};

/// From where a way in can be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// A public load balancer, an Ingress, a Route: anyone on the internet.
    Internet,
    /// A public load balancer limited by source ranges (the ranges, in words).
    Narrowed(String),
    /// Every node's address: NodePort, hostPort, hostNetwork.
    Nodes(&'static str),
    /// Addresses the cluster does not own (`externalIPs`).
    ExternalIps(String),
    /// An internal load balancer or ingress: the private network only (why, in words).
    PrivateNetwork(String),
}

impl Reach {
    /// Words that finish "reachable ...".
    pub fn phrase(&self) -> String {
        match self {
            Reach::Internet => "from the internet".into(),
            Reach::Narrowed(r) => format!("from outside the cluster (source ranges {r})"),
            Reach::Nodes(how) => format!("from outside the cluster through {how} on every node"),
            Reach::ExternalIps(ips) => format!("from outside the cluster on external IPs {ips}"),
            Reach::PrivateNetwork(_) => "from the private network".into(),
        }
    }

    /// The short name in `detail.reach`.
    pub fn label(&self) -> &'static str {
        match self {
            Reach::Internet => "internet",
            Reach::Narrowed(_) => "narrowed",
            Reach::Nodes(_) => "nodes",
            Reach::ExternalIps(_) => "external-ips",
            Reach::PrivateNetwork(_) => "private-network",
        }
    }

    /// The evidence's first word.
    pub fn origin(&self) -> String {
        match self {
            Reach::Internet => "Internet".into(),
            Reach::Narrowed(r) => format!("Clients in {r}"),
            Reach::Nodes(_) => "Anyone who reaches a node".into(),
            Reach::ExternalIps(_) => "Anyone who reaches the external IPs".into(),
            Reach::PrivateNetwork(why) => format!("Private network ({why})"),
        }
    }
}

/// The way to an interface: hops in words, the objects they pass through, and what
/// authenticates along it.
#[derive(Debug, Clone, Default)]
pub struct Trail {
    pub hops: Vec<String>,
    /// The objects the hops pass through, in order (`detail.via`): each hop passes through one
    /// (a Service not in the input too, as `v1` Service), and an object that two hops in a row
    /// pass through (a proxy and the interface in one pod) is named once. What reads a path
    /// reads this, not the words of `hops`.
    pub via: Vec<ResourceRef>,
    /// Authentication layers in front of the interface (SSO, ext-authz, JWT, auth proxies).
    pub auth: Vec<String>,
    /// What was looked for and not found, or found but not enforcing, for the evidence.
    pub notes: Vec<String>,
}

impl Trail {
    /// A trail of one hop, through `object`.
    pub fn hop(words: String, object: ResourceRef) -> Trail {
        let mut t = Trail::default();
        t.push(words, object);
        t
    }

    /// Adds a hop through `object`.
    pub fn push(&mut self, words: String, object: ResourceRef) {
        self.hops.push(words);
        if self.via.last() != Some(&object) {
            self.via.push(object);
        }
    }

    /// Drops the first hop and the object it passes through (a way in's own Service, when the
    /// trail behind it starts there again).
    pub fn drop_first(&mut self) {
        if !self.hops.is_empty() {
            self.hops.remove(0);
        }
        if !self.via.is_empty() {
            self.via.remove(0);
        }
    }

    pub fn then(&self, other: &Trail) -> Trail {
        let mut t = self.clone();
        t.hops.extend(other.hops.iter().cloned());
        let mut via = other.via.iter();
        if let (Some(last), Some(first)) = (t.via.last(), other.via.first()) {
            if last == first {
                via.next();
            }
        }
        t.via.extend(via.cloned());
        t.auth.extend(other.auth.iter().cloned());
        t.notes.extend(other.notes.iter().cloned());
        t
    }
}

/// A Service by name, as a path names it when it is not among the objects read.
pub fn service_ref(namespace: &str, name: &str) -> ResourceRef {
    ResourceRef {
        api_version: "v1".into(),
        kind: "Service".into(),
        namespace: Some(namespace.to_string()),
        name: name.to_string(),
    }
}

/// A sensitive interface at the end of a trail.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub interface: &'a Interface,
    pub own_login: OwnLogin,
    /// The resource running it, when it was in the input.
    pub workload: Option<&'a Object>,
    /// The container's field path inside `workload`.
    pub field: Option<String>,
}

/// One sensitive interface reachable through one way in.
#[derive(Debug, Clone)]
pub struct Exposure<'a> {
    /// The object that opens the way in (the contract's `resource`).
    pub way_in: &'a Object,
    /// The field of `way_in` that opens it (`spec.type`).
    pub field: String,
    pub reach: Reach,
    pub trail: Trail,
    pub target: Target<'a>,
}

impl Exposure<'_> {
    pub fn authenticated(&self) -> bool {
        !self.trail.auth.is_empty() || self.target.own_login.required
    }

    /// The severity matrix of the exposure rules: what can be done through the interface,
    /// from where, and whether anything asks who the caller is.
    pub fn severity(&self) -> Severity {
        let starts = self.target.interface.starts_workloads;
        let front = !self.trail.auth.is_empty();
        match (&self.reach, self.authenticated()) {
            (Reach::Internet, false) if starts => Severity::Critical,
            (Reach::Internet, false) => Severity::High,
            (Reach::Narrowed(_) | Reach::Nodes(_) | Reach::ExternalIps(_), false) => Severity::High,
            (Reach::PrivateNetwork(_), false) if starts => Severity::Medium,
            (Reach::PrivateNetwork(_), false) => Severity::Low,
            (Reach::PrivateNetwork(_), true) => Severity::Info,
            (_, true) if front => Severity::Low,
            (_, true) => Severity::Medium,
        }
    }
}
