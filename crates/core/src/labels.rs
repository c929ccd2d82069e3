//! Label selectors, the glue of the exposure graph: Services select pods, Istio Gateways and
//! policies select gateway workloads.

use serde_json::{Map, Value};

/// Labels as string pairs (values that are not strings are printed).
pub type Labels = std::collections::BTreeMap<String, String>;

pub fn labels_from(map: Option<&Map<String, Value>>) -> Labels {
    map.into_iter()
        .flatten()
        .filter_map(|(k, v)| crate::object::scalar_text(v).map(|v| (k.clone(), v)))
        .collect()
}

/// Whether every `key: value` of `selector` is in `labels`. An empty selector selects
/// nothing here: a Service without a selector has hand-made endpoints, and an Istio policy
/// without a selector is handled by its caller as namespace-wide.
pub fn selects(selector: &Labels, labels: &Labels) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// A `LabelSelector` (`matchLabels` + `matchExpressions`) against labels.
pub fn label_selector_matches(selector: &Value, labels: &Labels) -> bool {
    let match_labels = labels_from(selector.get("matchLabels").and_then(Value::as_object));
    if !match_labels.iter().all(|(k, v)| labels.get(k) == Some(v)) {
        return false;
    }
    let exprs = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    exprs.iter().all(|e| {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match e
            .get("operator")
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            "In" => labels
                .get(key)
                .is_some_and(|v| values.contains(&v.as_str())),
            "NotIn" => labels
                .get(key)
                .is_none_or(|v| !values.contains(&v.as_str())),
            "Exists" => labels.contains_key(key),
            "DoesNotExist" => !labels.contains_key(key),
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selector_subset() {
        let pod = l(&[("app", "istio-ingressgateway"), ("istio", "ingressgateway")]);
        assert!(selects(&l(&[("istio", "ingressgateway")]), &pod));
        assert!(!selects(&l(&[("istio", "egressgateway")]), &pod));
        assert!(!selects(&Labels::new(), &pod));
    }

    #[test]
    fn expressions() {
        let pod = l(&[("app", "x")]);
        let sel =
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["x", "y"]}]});
        assert!(label_selector_matches(&sel, &pod));
        let sel = json!({"matchExpressions": [{"key": "tier", "operator": "Exists"}]});
        assert!(!label_selector_matches(&sel, &pod));
    }
}
