//! OpenShift Routes (`route.openshift.io`): ways in from the internet through the cluster's
//! HAProxy router, narrowed by the router's source allow list when the Route has one. Read by
//! the exposure analysis, and by the fix that writes the allow list.
//!
//! The router reads the list from an annotation: a space-separated list of addresses and
//! CIDRs (a bare address is one host). Two names: `ip_whitelist`, read by every router since
//! OpenShift 3.6, and `ip_allowlist`, read by routers since openshift/router#564 (2024), which
//! use it instead of `ip_whitelist` when both are set. A list the router cannot read (leading
//! or trailing spaces, commas, a word that is no address) is ignored without a warning: the
//! Route is then open to everyone, and the analysis says so rather than trust the list.

use super::graph::Index;
use super::path::{Exposure, Reach, Trail};
use super::ways_in::{reach_of_ranges, RangeSyntax};
use crate::pods::PortRef;
use jackstop_core::Object;
use serde_json::Value;

/// The API group of OpenShift Routes (Knative's `Route` is another kind of thing).
pub const ROUTE_GROUP: &str = "route.openshift.io";

/// The allow list annotation of routers since openshift/router#564 (2024); it wins over
/// [`WHITELIST`] where both are set.
pub const ALLOWLIST: &str = "haproxy.router.openshift.io/ip_allowlist";

/// The allow list annotation every router reads (the only one before 2024).
pub const WHITELIST: &str = "haproxy.router.openshift.io/ip_whitelist";

pub fn is_openshift_route(o: &Object) -> bool {
    o.kind == "Route" && o.group() == ROUTE_GROUP
}

/// The entries of an allow list annotation as the router reads them, or why it ignores the
/// whole list. Stricter than the newest routers, which drop an entry they cannot read and keep
/// the others: older ones ignore the whole list then, and the analysis takes the wider reach.
pub fn allowlist_entries(value: &str) -> Result<Vec<String>, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err("it is empty".into());
    }
    if trimmed != value {
        return Err("it has leading or trailing spaces, and the router then ignores it".into());
    }
    let entries: Vec<String> = value.split_whitespace().map(str::to_string).collect();
    if let Some(bad) = entries.iter().find(|e| !RangeSyntax::Addresses.parses(e)) {
        return Err(format!(
            "{bad:?} is not an IP address or CIDR (entries are separated by spaces, not commas)"
        ));
    }
    Ok(entries)
}

/// The reach of a Route and what to say about its allow list.
fn route_reach(r: &Object) -> (Reach, Vec<String>) {
    let mut notes = Vec::new();
    let mut read = |key: &str| -> Option<Reach> {
        let value = r.annotation(key)?;
        match allowlist_entries(value) {
            Ok(entries) => Some(reach_of_ranges(
                &entries,
                &format!("OpenShift router {}", short(key)),
                RangeSyntax::Addresses,
            )),
            Err(why) => {
                notes.push(format!(
                    "{key} is set but the router ignores it: {why}; the Route is open to every address"
                ));
                Some(Reach::Internet)
            }
        }
    };
    let allow = read(ALLOWLIST);
    let white = read(WHITELIST);
    let reach = match (allow, white) {
        (None, None) => Reach::Internet,
        (None, Some(w)) => w,
        (Some(a), None) => {
            if a != Reach::Internet {
                notes.push(format!(
                    "only {ALLOWLIST} is set: routers older than openshift/router#564 (2024) read {WHITELIST} only, and serve this Route to every address"
                ));
            }
            a
        }
        (Some(a), Some(w)) if a == w => a,
        (Some(a), Some(w)) => {
            notes.push(format!(
                "{ALLOWLIST} and {WHITELIST} differ: current routers read the first, older ones the second; the wider is reported"
            ));
            if width(&w) > width(&a) {
                w
            } else {
                a
            }
        }
    };
    if reach != Reach::Internet {
        notes.push("the router checks the address it sees: where the load balancer in front of it hides the client's (no PROXY protocol, or externalTrafficPolicy Cluster), the list is checked against the load balancer's or a node's address instead".into());
    }
    (reach, notes)
}

/// `ip_allowlist` of the annotation, for the evidence.
fn short(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// How many can use a reach, in order: the private network, some ranges, everyone.
fn width(r: &Reach) -> u8 {
    match r {
        Reach::PrivateNetwork(_) => 0,
        Reach::Narrowed(_) | Reach::ExternalIps(_) | Reach::Nodes(_) => 1,
        Reach::Internet => 2,
    }
}

impl<'a> Index<'a> {
    /// A Route: its Service and alternate backends, at the reach its allow list leaves.
    pub fn openshift_route_way_in(&self, r: &'a Object, out: &mut Vec<Exposure<'a>>) {
        let ns = r.effective_namespace();
        let port = r.at("spec.port.targetPort").and_then(PortRef::from_value);
        let host = r.str_at("spec.host").unwrap_or("(generated host)");
        let (reach, notes) = route_reach(r);
        let mut names: Vec<(String, String)> = Vec::new();
        if let Some(n) = r.str_at("spec.to.name") {
            names.push((n.to_string(), "spec.to".into()));
        }
        for (i, b) in r
            .at("spec.alternateBackends")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(n) = b.get("name").and_then(Value::as_str) {
                names.push((n.to_string(), format!("spec.alternateBackends[{i}]")));
            }
        }
        for (name, field) in names {
            let mut head = Trail::hop(format!("{} (host {host})", r.display()), r.resource());
            head.notes = notes.clone();
            let resolved = self.resolve_service(ns, &name, port.as_ref(), 0);
            self.push_resolved(r, &field, &reach, &head, resolved, false, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlists_as_the_router_reads_them() {
        assert_eq!(
            allowlist_entries("192.168.1.10 10.0.0.0/8  2001:db8::/32"),
            Ok(vec![
                "192.168.1.10".to_string(),
                "10.0.0.0/8".to_string(),
                "2001:db8::/32".to_string()
            ])
        );
        assert!(allowlist_entries("").is_err());
        assert!(allowlist_entries("   ").is_err());
        assert!(allowlist_entries(" 10.0.0.0/8").is_err());
        assert!(allowlist_entries("10.0.0.0/8 ").is_err());
        assert!(allowlist_entries("10.0.0.0/8,192.168.0.0/16").is_err());
        assert!(allowlist_entries("10.0.0.0/8 office").is_err());
        assert!(allowlist_entries("10.0.0.300").is_err());
    }
}
