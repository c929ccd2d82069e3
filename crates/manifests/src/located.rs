//! A YAML tree that remembers the line of every key, parsed by serde-saphyr, and its
//! conversion into JSON plus a field-to-line table.

use jackstop_core::FieldLines;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::Spanned;
use std::fmt;

/// A YAML node. Mapping keys keep their own location, so that a finding on `spec.type` can
/// point at the line that says `type:`.
#[derive(Debug)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML node")
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Node, E> {
                Ok(Node::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Node, E> {
                Ok(Node::Int(n))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Node, E> {
                Ok(Node::Uint(n))
            }
            fn visit_i128<E>(self, n: i128) -> Result<Node, E> {
                Ok(Node::Str(n.to_string()))
            }
            fn visit_u128<E>(self, n: u128) -> Result<Node, E> {
                Ok(Node::Str(n.to_string()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Node, E> {
                Ok(Node::Float(n))
            }
            fn visit_str<E>(self, s: &str) -> Result<Node, E> {
                Ok(Node::Str(s.to_owned()))
            }
            fn visit_string<E>(self, s: String) -> Result<Node, E> {
                Ok(Node::Str(s))
            }
            fn visit_bytes<E>(self, b: &[u8]) -> Result<Node, E> {
                Ok(Node::Str(String::from_utf8_lossy(b).into_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut items = Vec::with_capacity(a.size_hint().unwrap_or(0).min(64));
                while let Some(item) = a.next_element()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut entries = Vec::with_capacity(a.size_hint().unwrap_or(0).min(64));
                while let Some(key) = a.next_key::<Spanned<KeyText>>()? {
                    let value = a.next_value()?;
                    let key = Spanned {
                        value: key.value.0,
                        referenced: key.referenced,
                        defined: key.defined,
                    };
                    entries.push((key, value));
                }
                Ok(Node::Map(entries))
            }
        }
        d.deserialize_any(NodeVisitor)
    }
}

/// A mapping key as text, whatever scalar it was written as (`80: x`, `true: y`).
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let node = Node::deserialize(d)?;
        Ok(KeyText(match node {
            Node::Str(s) => s,
            Node::Null => "null".into(),
            Node::Bool(b) => b.to_string(),
            Node::Int(n) => n.to_string(),
            Node::Uint(n) => n.to_string(),
            Node::Float(n) => n.to_string(),
            Node::Seq(_) | Node::Map(_) => "<complex key>".into(),
        }))
    }
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Spanned<Node>> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k.value == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// `root.kind` when this is a mapping with a string `kind`.
    pub fn kind(&self) -> Option<&str> {
        self.get("kind")?.value.as_str()
    }
}

/// Converts a located tree into JSON, recording the line of each field under `prefix`.
/// `line_offset` turns document-relative lines into file lines.
pub fn to_json(
    node: &Node,
    prefix: &mut String,
    line_offset: u32,
    lines: &mut FieldLines,
) -> Value {
    match node {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(*b),
        Node::Int(n) => Value::Number((*n).into()),
        Node::Uint(n) => Value::Number((*n).into()),
        Node::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Node::Str(s) => Value::String(s.clone()),
        Node::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let len = prefix.len();
                use std::fmt::Write;
                let _ = write!(prefix, "[{i}]");
                lines.insert(
                    prefix.clone(),
                    (item.referenced.line() as u32) + line_offset,
                );
                out.push(to_json(&item.value, prefix, line_offset, lines));
                prefix.truncate(len);
            }
            Value::Array(out)
        }
        Node::Map(entries) => {
            let mut out = Map::with_capacity(entries.len());
            for (k, v) in entries {
                let len = prefix.len();
                push_key(prefix, &k.value);
                lines.insert(prefix.clone(), (k.referenced.line() as u32) + line_offset);
                out.insert(
                    k.value.clone(),
                    to_json(&v.value, prefix, line_offset, lines),
                );
                prefix.truncate(len);
            }
            Value::Object(out)
        }
    }
}

pub use jackstop_core::object::push_key;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_their_lines() {
        let text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  annotations:\n    a.b/c: \"1\"\nspec:\n  type: LoadBalancer\n  ports:\n  - port: 80\n";
        let node: Node = serde_saphyr::from_str(text).unwrap();
        let mut lines = FieldLines::default();
        let v = to_json(&node, &mut String::new(), 0, &mut lines);
        assert_eq!(v["spec"]["ports"][0]["port"], 80);
        assert_eq!(lines.line_of("spec.type"), Some(8));
        assert_eq!(lines.line_of("spec.ports[0].port"), Some(10));
        assert_eq!(lines.line_of("metadata.annotations[\"a.b/c\"]"), Some(6));
        assert_eq!(node.kind(), Some("Service"));
    }

    #[test]
    fn unknown_tags_are_tolerated() {
        let node: Node = serde_saphyr::from_str("a: !GetAtt X.Y\nb: !Sub 'x'\n").unwrap();
        assert_eq!(node.get("a").unwrap().value.as_str(), Some("X.Y"));
    }
}
