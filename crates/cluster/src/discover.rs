//! API discovery, group by group: which of the kinds jackstop reads this cluster serves, and
//! where (group, preferred version, plural, scope).

use crate::warning;
use jackstop_core::InputError;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;
use std::collections::HashSet;
use std::time::Duration;

/// One kind the cluster serves and jackstop reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
}

impl Resource {
    /// `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods` or `workflows.argoproj.io`, as kubectl names it.
    pub fn display(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// The resources of `wanted` kinds, each group's preferred version once (a kind served by two
/// groups, Istio's and Gateway API's `Gateway`, is read from both: analysers tell them apart by
/// group), and warnings for groups that could not be
/// read. `Err` only when the server answers no discovery at all.
pub async fn discover(
    client: &kube::Client,
    wanted: &HashSet<&str>,
    timeout: Duration,
) -> Result<(Vec<Resource>, Vec<InputError>), String> {
    let mut warnings = Vec::new();
    let mut lists: Vec<(String, String, APIResourceList)> = Vec::new();
    let core = tokio::time::timeout(timeout, client.list_core_api_resources("v1")).await;
    match core {
        Ok(Ok(l)) => lists.push((String::new(), "v1".into(), l)),
        Ok(Err(kube::Error::Api(s))) if s.code == 401 => {
            return Err(format!(
                "the credentials were refused (401 {}): the token may have expired; refresh the kubeconfig or log in again",
                s.message
            ))
        }
        Ok(Err(e)) => return Err(format!("GET /api/v1: {e}")),
        Err(_) => return Err(format!("GET /api/v1: no answer within {timeout:?}")),
    }
    let groups = match tokio::time::timeout(timeout, client.list_api_groups()).await {
        Ok(Ok(g)) => g.groups,
        Ok(Err(e)) => {
            warnings.push(warning(format!(
                "API groups not discovered (GET /apis: {e}); only core kinds were read"
            )));
            Vec::new()
        }
        Err(_) => {
            warnings.push(warning(format!("API groups not discovered (GET /apis: no answer within {timeout:?}); only core kinds were read")));
            Vec::new()
        }
    };
    let fetches = groups.into_iter().filter_map(|g| {
        let gv = g
            .preferred_version
            .map(|v| v.group_version)
            .or_else(|| g.versions.first().map(|v| v.group_version.clone()))?;
        Some(async move {
            let r = tokio::time::timeout(timeout, client.list_api_group_resources(&gv)).await;
            (g.name, gv, r)
        })
    });
    for (group, gv, r) in futures::future::join_all(fetches).await {
        let version = gv.rsplit('/').next().unwrap_or_default().to_string();
        match r {
            Ok(Ok(l)) => lists.push((group, version, l)),
            Ok(Err(e)) => warnings.push(warning(format!("API group {gv} not discovered: {e}"))),
            Err(_) => warnings.push(warning(format!(
                "API group {gv} not discovered: no answer within {timeout:?}"
            ))),
        }
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (group, version, list) in lists {
        for r in list.resources {
            let listable = r.verbs.iter().any(|v| v == "list");
            if r.name.contains('/') || !listable || !wanted.contains(r.kind.as_str()) {
                continue;
            }
            if !seen.insert((group.clone(), r.kind.clone())) {
                continue;
            }
            out.push(Resource {
                group: group.clone(),
                version: version.clone(),
                kind: r.kind,
                plural: r.name,
                namespaced: r.namespaced,
            });
        }
    }
    out.sort_by_key(Resource::display);
    Ok((out, warnings))
}
