//! A tiny path-pattern walker: `spec.templates[*].container`, `spec.tfReplicaSpecs.*.template`.
//!
//! Segments are separated by dots. A segment is a map key, `*` (every array element or every
//! map value), or a key followed by `[*]` or `[N]` (every element, or element N, of the array at
//! that key). Matches come back with their field path in the form the manifest reader records
//! lines under (`spec.templates[2].container`, `metadata.annotations["a.b/c"]`), so that a
//! finding can point at the exact line.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step<'p> {
    Key(&'p str),
    Index(usize),
    Any,
}

fn steps(pattern: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for seg in pattern.split('.').filter(|s| !s.is_empty()) {
        if seg == "*" {
            out.push(Step::Any);
            continue;
        }
        let (key, mut rest) = match seg.find('[') {
            Some(i) => (&seg[..i], &seg[i..]),
            None => (seg, ""),
        };
        if !key.is_empty() {
            out.push(Step::Key(key));
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let Some(end) = inner.find(']') else { break };
            let idx = &inner[..end];
            out.push(match idx.parse() {
                Ok(n) => Step::Index(n),
                Err(_) => Step::Any,
            });
            rest = &inner[end + 1..];
        }
    }
    out
}

/// Appends a map key to a field path the way the manifest reader does: plain keys after a dot,
/// others (dots, slashes, empty) as `["key"]`.
pub use jackstop_core::object::push_key;

/// `path` with a key appended. (Sized once: paths are built for every container a review
/// reads, and growing them was a tenth of reading one.)
pub fn join_key(path: &str, key: &str) -> String {
    let mut p = String::with_capacity(path.len() + key.len() + 5);
    p.push_str(path);
    push_key(&mut p, key);
    p
}

/// `path` with an array index appended.
pub fn join_index(path: &str, i: usize) -> String {
    use std::fmt::Write;
    let mut p = String::with_capacity(path.len() + 8);
    p.push_str(path);
    let _ = write!(p, "[{i}]");
    p
}

/// Every (field path, value) that `pattern` matches under `root`, whose own path is `prefix`.
/// Never fails: a step that does not fit the value's type simply matches nothing.
pub fn walk<'v>(root: &'v Value, prefix: &str, pattern: &str) -> Vec<(String, &'v Value)> {
    let mut out = Vec::new();
    go(root, &mut prefix.to_string(), &steps(pattern), &mut out);
    out
}

fn go<'v>(v: &'v Value, path: &mut String, steps: &[Step<'_>], out: &mut Vec<(String, &'v Value)>) {
    let Some((first, rest)) = steps.split_first() else {
        out.push((path.clone(), v));
        return;
    };
    let len = path.len();
    match (first, v) {
        (Step::Key(k), Value::Object(m)) => {
            if let Some(child) = m.get(*k) {
                push_key(path, k);
                go(child, path, rest, out);
            }
        }
        (Step::Index(i), Value::Array(a)) => {
            if let Some(child) = a.get(*i) {
                path.push_str(&format!("[{i}]"));
                go(child, path, rest, out);
            }
        }
        (Step::Any, Value::Array(a)) => {
            for (i, child) in a.iter().enumerate() {
                path.push_str(&format!("[{i}]"));
                go(child, path, rest, out);
                path.truncate(len);
            }
        }
        (Step::Any, Value::Object(m)) => {
            for (k, child) in m {
                push_key(path, k);
                go(child, path, rest, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
    path.truncate(len);
}

/// The last map key in a field path (`spec.predictor.pytorch` -> `pytorch`), if the path ends
/// in a plain key.
pub fn last_key(path: &str) -> &str {
    if path.ends_with(']') {
        return "";
    }
    path.rsplit('.').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patterns_match_arrays_maps_and_odd_keys() {
        let v = json!({"spec": {"templates": [{"name": "a"}, {"name": "b"}],
            "m": {"x": {"v": 1}, "a.b/c": {"v": 2}}, "s": "oops"}});
        let got: Vec<String> = walk(&v, "", "spec.templates[*].name")
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(got, ["spec.templates[0].name", "spec.templates[1].name"]);
        let got: Vec<String> = walk(&v, "pre", "spec.m.*.v")
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(got, ["pre.spec.m.x.v", "pre.spec.m[\"a.b/c\"].v"]);
        assert_eq!(walk(&v, "", "spec.templates[1].name")[0].1, "b");
        assert!(walk(&v, "", "spec.s[*].x").is_empty());
        assert!(walk(&v, "", "spec.s.*").is_empty());
        assert_eq!(last_key("spec.predictor.pytorch"), "pytorch");
        assert_eq!(last_key("spec.x[0]"), "");
    }
}
