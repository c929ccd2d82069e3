//! Facts about clouds, ingress controllers and auth layers (`data/exposure.yaml`).

use crate::{parse_yaml, CatalogueError};
use regex::Regex;
use serde::Deserialize;
use std::collections::BTreeMap;

/// An annotation that means something when it has one of `values` (case-insensitive), or
/// contains one of `contains`, or, with neither given, whenever it is set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnotationMarker {
    pub key: String,
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub contains: Vec<String>,
    pub provider: Option<String>,
    pub what: Option<String>,
}

impl AnnotationMarker {
    pub fn holds(&self, value: &str) -> bool {
        let v = value.trim().to_ascii_lowercase();
        if !self.values.is_empty() {
            return self.values.iter().any(|x| x.to_ascii_lowercase() == v);
        }
        if !self.contains.is_empty() {
            return self
                .contains
                .iter()
                .any(|x| v.contains(&x.to_ascii_lowercase()));
        }
        !v.is_empty()
    }

    /// The first marker whose annotation is set on `annotations` with a meaningful value.
    pub fn find<'a>(
        markers: &'a [AnnotationMarker],
        annotations: &BTreeMap<String, String>,
    ) -> Option<&'a AnnotationMarker> {
        markers
            .iter()
            .find(|m| annotations.get(&m.key).is_some_and(|v| m.holds(v)))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthProxy {
    pub image: String,
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExposureFile {
    #[allow(dead_code)]
    version: u32,
    internal_load_balancer: Vec<AnnotationMarker>,
    internal_ingress: Vec<AnnotationMarker>,
    internal_class_markers: Vec<String>,
    ingress_auth: Vec<AnnotationMarker>,
    auth_proxies: Vec<AuthProxy>,
    proxy_upstreams: Vec<String>,
}

#[derive(Debug)]
pub struct ExposureData {
    pub internal_load_balancer: Vec<AnnotationMarker>,
    pub internal_ingress: Vec<AnnotationMarker>,
    pub internal_class_markers: Vec<String>,
    pub ingress_auth: Vec<AnnotationMarker>,
    pub auth_proxies: Vec<AuthProxy>,
    pub proxy_upstreams: Vec<Regex>,
}

impl ExposureData {
    pub fn parse(text: &str) -> Result<ExposureData, CatalogueError> {
        let f: ExposureFile = parse_yaml("exposure.yaml", text)?;
        let proxy_upstreams = f
            .proxy_upstreams
            .into_iter()
            .map(|p| {
                Regex::new(&p).map_err(|e| CatalogueError::Regex {
                    file: "exposure.yaml",
                    id: "proxy_upstreams".into(),
                    pattern: p.clone(),
                    message: e.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(ExposureData {
            internal_load_balancer: f.internal_load_balancer,
            internal_ingress: f.internal_ingress,
            internal_class_markers: f.internal_class_markers,
            ingress_auth: f.ingress_auth,
            auth_proxies: f.auth_proxies,
            proxy_upstreams,
        })
    }

    /// The auth proxy an image is, if any.
    pub fn auth_proxy(&self, image: &str) -> Option<&AuthProxy> {
        let image = image.to_ascii_lowercase();
        self.auth_proxies.iter().find(|p| image.contains(&p.image))
    }

    /// Whether an ingress or gateway class name marks it private.
    pub fn is_internal_class(&self, class: &str) -> bool {
        let c = class.to_ascii_lowercase();
        self.internal_class_markers
            .iter()
            .any(|m| c.contains(m.as_str()))
    }
}
