//! One audit event, borrowed from the line it was read from: only the fields the rules read
//! are decoded, and the request and response objects stay raw JSON text until a rule needs
//! them (most events never do).

use jackstop_core::ResourceRef;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// `audit.k8s.io/v1` Event (and `v1beta1`, whose shape the rules read is the same).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event<'a> {
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub level: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow", rename = "auditID")]
    pub audit_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub stage: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow", rename = "requestURI")]
    pub request_uri: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub verb: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub user: User<'a>,
    #[serde(borrow, default)]
    pub impersonated_user: Option<User<'a>>,
    #[serde(borrow, default, rename = "sourceIPs")]
    pub source_ips: Vec<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub user_agent: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub object_ref: Option<ObjectRef<'a>>,
    #[serde(borrow, default)]
    pub response_status: Option<ResponseStatus<'a>>,
    #[serde(borrow, default)]
    pub request_object: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub response_object: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub request_received_timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub stage_timestamp: Option<Cow<'a, str>>,
    /// `v1beta1` only.
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub timestamp: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct User<'a> {
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub username: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub groups: Vec<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef<'a> {
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub resource: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub namespace: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub api_group: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub subresource: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ResponseStatus<'a> {
    #[serde(default)]
    pub code: Option<u16>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    pub reason: Option<Cow<'a, str>>,
}

/// An optional string borrowed from the line when it has no escapes (serde borrows a `Cow`
/// only when it is not inside an `Option`).
fn opt_cow<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Option::<Borrowed>::deserialize(d).map(|o| o.map(|b| b.0))
}

/// Who made a request, as a finding tells it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Actor {
    pub username: String,
    pub impersonated: Option<String>,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.impersonated {
            Some(i) => write!(f, "{} (as {i})", self.username),
            None => f.write_str(&self.username),
        }
    }
}

impl<'a> Event<'a> {
    pub fn verb(&self) -> &str {
        self.verb.as_deref().unwrap_or("")
    }

    pub fn username(&self) -> &str {
        self.user.username.as_deref().unwrap_or("")
    }

    /// The identity the request acted as: the impersonated user when there is one.
    pub fn effective_user(&self) -> &User<'a> {
        self.impersonated_user.as_ref().unwrap_or(&self.user)
    }

    pub fn actor(&self) -> Actor {
        Actor {
            username: self.username().to_string(),
            impersonated: self
                .impersonated_user
                .as_ref()
                .and_then(|u| u.username.as_deref())
                .map(str::to_string),
        }
    }

    /// Whether the request was made without credentials (anonymous), as the effective user.
    pub fn is_unauthenticated(&self) -> bool {
        let u = self.effective_user();
        u.username.as_deref() == Some("system:anonymous")
            || u.groups.iter().any(|g| g == "system:unauthenticated")
    }

    /// The response code; `None` when the event has none (RequestReceived).
    pub fn code(&self) -> Option<u16> {
        self.response_status.as_ref().and_then(|s| s.code)
    }

    /// Whether the request succeeded (2xx, or a 101 protocol switch for exec over websockets).
    pub fn succeeded(&self) -> bool {
        self.code()
            .is_some_and(|c| (200..300).contains(&c) || c == 101)
    }

    /// When the event was recorded (its stage), RFC 3339.
    pub fn time(&self) -> Option<&str> {
        self.stage_timestamp
            .as_deref()
            .or(self.request_received_timestamp.as_deref())
            .or(self.timestamp.as_deref())
    }

    pub fn timestamp(&self) -> Option<jiff::Timestamp> {
        self.time().and_then(|t| t.parse().ok())
    }

    pub fn resource(&self) -> &str {
        self.object_ref
            .as_ref()
            .and_then(|o| o.resource.as_deref())
            .unwrap_or("")
    }

    pub fn subresource(&self) -> &str {
        self.object_ref
            .as_ref()
            .and_then(|o| o.subresource.as_deref())
            .unwrap_or("")
    }

    pub fn namespace(&self) -> Option<&str> {
        self.object_ref
            .as_ref()
            .and_then(|o| o.namespace.as_deref())
    }

    pub fn name(&self) -> Option<&str> {
        self.object_ref.as_ref().and_then(|o| o.name.as_deref())
    }

    pub fn api_group(&self) -> &str {
        self.object_ref
            .as_ref()
            .and_then(|o| o.api_group.as_deref())
            .unwrap_or("")
    }

    /// The object the request acted on, as a finding names it. `kind` comes from the object
    /// when the event carries one, else from the resource's plural.
    pub fn resource_ref(&self, kind: Option<&str>) -> ResourceRef {
        let o = self.object_ref.as_ref();
        let group = self.api_group();
        let version = o.and_then(|o| o.api_version.as_deref()).unwrap_or("v1");
        ResourceRef {
            api_version: if group.is_empty() {
                version.to_string()
            } else {
                format!("{group}/{version}")
            },
            kind: kind
                .map(str::to_string)
                .unwrap_or_else(|| kind_of(self.resource())),
            namespace: self.namespace().map(str::to_string),
            name: self.name().unwrap_or_default().to_string(),
        }
    }

    /// The evidence line that says who did what, when, from where.
    pub fn who_line(&self) -> String {
        let ips: Vec<&str> = self.source_ips.iter().map(|s| s.as_ref()).collect();
        format!(
            "{} {} {} by {} from {}{}{}",
            self.time().unwrap_or("(no time)"),
            self.verb().to_uppercase(),
            self.request_uri.as_deref().unwrap_or(""),
            self.actor(),
            if ips.is_empty() {
                "(no source IP)".to_string()
            } else {
                ips.join(", ")
            },
            self.user_agent
                .as_deref()
                .map(|a| format!(" ({a})"))
                .unwrap_or_default(),
            self.code().map(|c| format!(" -> {c}")).unwrap_or_default(),
        )
    }

    /// Machine detail every audit finding carries.
    pub fn detail(&self) -> serde_json::Value {
        serde_json::json!({
            "auditID": self.audit_id,
            "time": self.time(),
            "verb": self.verb,
            "requestURI": self.request_uri,
            "user": self.user.username,
            "groups": self.user.groups,
            "impersonatedUser": self.impersonated_user.as_ref().and_then(|u| u.username.as_deref()),
            "sourceIPs": self.source_ips,
            "userAgent": self.user_agent,
            "responseCode": self.code(),
        })
    }
}

/// The kind of a resource plural, for the kinds audit rules name (others: the plural itself,
/// capitalised and singular).
pub fn kind_of(plural: &str) -> String {
    let known = [
        ("pods", "Pod"),
        ("services", "Service"),
        ("deployments", "Deployment"),
        ("replicasets", "ReplicaSet"),
        ("statefulsets", "StatefulSet"),
        ("daemonsets", "DaemonSet"),
        ("jobs", "Job"),
        ("cronjobs", "CronJob"),
        ("configmaps", "ConfigMap"),
        ("secrets", "Secret"),
        ("namespaces", "Namespace"),
        ("ingresses", "Ingress"),
        ("httproutes", "HTTPRoute"),
        ("virtualservices", "VirtualService"),
        ("gateways", "Gateway"),
        ("authorizationpolicies", "AuthorizationPolicy"),
        ("requestauthentications", "RequestAuthentication"),
        ("clusterrolebindings", "ClusterRoleBinding"),
        ("rolebindings", "RoleBinding"),
        ("clusterroles", "ClusterRole"),
        ("roles", "Role"),
        ("notebooks", "Notebook"),
        ("workflows", "Workflow"),
        ("tfjobs", "TFJob"),
        ("pytorchjobs", "PyTorchJob"),
        ("rayclusters", "RayCluster"),
        ("rayjobs", "RayJob"),
        ("nodes", "Node"),
        ("leases", "Lease"),
        ("envoyfilters", "EnvoyFilter"),
        ("serviceaccounts", "ServiceAccount"),
    ];
    if let Some((_, k)) = known.iter().find(|(p, _)| *p == plural) {
        return k.to_string();
    }
    let singular = plural.strip_suffix('s').unwrap_or(plural);
    let mut c = singular.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_event_decodes_borrowed() {
        let line = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"create","user":{"username":"system:anonymous","groups":["system:unauthenticated"]},"sourceIPs":["10.0.0.1"],"userAgent":"curl/7.68.0","objectRef":{"resource":"pods","namespace":"default","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":201},"requestObject":{"kind":"Pod","spec":{}},"requestReceivedTimestamp":"2021-06-08T03:14:07.123456Z","stageTimestamp":"2021-06-08T03:14:07.223456Z"}"#;
        let e: Event = serde_json::from_str(line).unwrap();
        assert!(matches!(e.verb, Some(Cow::Borrowed("create"))));
        assert!(e.is_unauthenticated());
        assert!(e.succeeded());
        assert_eq!(
            e.request_object.unwrap().get(),
            r#"{"kind":"Pod","spec":{}}"#
        );
        assert_eq!(e.resource_ref(None).kind, "Pod");
        assert_eq!(
            e.timestamp().unwrap().to_string(),
            "2021-06-08T03:14:07.223456Z"
        );
        assert!(e.who_line().contains("CREATE /api/v1/namespaces/default/pods by system:anonymous from 10.0.0.1 (curl/7.68.0) -> 201"));
    }

    #[test]
    fn kinds_of_plurals() {
        assert_eq!(kind_of("notebooks"), "Notebook");
        assert_eq!(kind_of("scheduledworkflows"), "Scheduledworkflow");
        assert_eq!(kind_of(""), "");
    }
}
