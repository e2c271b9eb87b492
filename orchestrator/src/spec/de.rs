//! A serde `Deserializer` over a [`Node`] tree that records every problem and keeps going.
//!
//! serde's derived visitors stop at the first error, which would report one problem per run. So
//! this deserializer never hands a visitor something it would reject: when a node does not fit
//! what the type asks for, it records the problem (with path, line and column) and hands over a
//! neutral value of the asked type instead (empty map or list, `false`, `0`, `""`, the first enum
//! variant, `None`). Unknown struct fields are recorded and skipped before the visitor sees them.
//! The model gives every field a default, so skipping never leads to "missing field".

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::Problem;
use super::yaml::{Node, NodeKind, join_index, join_key};

/// Where each path of a document was written, recorded while deserializing so that validation of
/// the typed model can point at the file.
#[derive(Debug, Default)]
pub struct Positions {
    values: HashMap<String, (usize, usize)>,
    keys: HashMap<String, (usize, usize)>,
}

impl Positions {
    /// Where the value at `path` starts, or failing that where its closest recorded ancestor does.
    pub fn value(&self, path: &str) -> Option<(usize, usize)> {
        let mut path = path;
        loop {
            if let Some(at) = self.values.get(path) {
                return Some(*at);
            }
            path = parent_path(path)?;
        }
    }

    /// Where the key naming `path` is written (for problems about the key itself), or the value's
    /// position when the path has no key (a list item).
    pub fn key(&self, path: &str) -> Option<(usize, usize)> {
        self.keys.get(path).copied().or_else(|| self.value(path))
    }
}

/// `spec.steps[2].name` → `spec.steps[2]`; `labels["a.b/c"]` → `labels`; `""` → `None`.
pub fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    // Segments quoted as `["..."]` may contain dots and brackets, so scan rather than rfind.
    let mut cut = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in path.char_indices() {
        if in_quotes {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_quotes = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_quotes = true,
            '.' | '[' => cut = i,
            _ => {}
        }
    }
    Some(&path[..cut])
}

/// The shared state of one document's deserialization.
pub struct Collector {
    document: usize,
    problems: RefCell<Vec<Problem>>,
    positions: RefCell<Positions>,
}

impl Collector {
    pub fn new(document: usize) -> Collector {
        Collector {
            document,
            problems: RefCell::new(Vec::new()),
            positions: RefCell::new(Positions::default()),
        }
    }

    pub fn into_parts(self) -> (Vec<Problem>, Positions) {
        (self.problems.into_inner(), self.positions.into_inner())
    }

    fn report(&self, path: &str, at: &Node, message: String) {
        self.problems.borrow_mut().push(Problem {
            document: self.document,
            path: path.to_owned(),
            line: Some(at.line),
            column: Some(at.column),
            message,
        });
    }

    fn record(&self, path: &str, value: &Node, key: Option<&Node>) {
        let mut positions = self.positions.borrow_mut();
        positions
            .values
            .insert(path.to_owned(), (value.line, value.column));
        if let Some(key) = key {
            positions
                .keys
                .insert(path.to_owned(), (key.line, key.column));
        }
    }
}

/// Deserializes `T` from `root`, recording problems in `collector`. Returns `None` only if a
/// visitor refused a value anyway (which would be a bug here); that is recorded as a problem too.
pub fn from_node<'de, T: de::Deserialize<'de>>(root: &Node, collector: &Collector) -> Option<T> {
    collector.record("", root, None);
    match T::deserialize(NodeDe {
        node: root,
        path: String::new(),
        c: collector,
    }) {
        Ok(value) => Some(value),
        Err(error) => {
            collector.report("", root, error.0);
            None
        }
    }
}

/// The error type serde needs; it only escapes when a visitor rejects a value, which the
/// deserializer is written to avoid.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DeError(String);

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError(msg.to_string())
    }
}

struct NodeDe<'a> {
    node: &'a Node,
    path: String,
    c: &'a Collector,
}

impl NodeDe<'_> {
    fn mismatch(&self, expected: &str) {
        self.c.report(
            &self.path,
            self.node,
            format!("expected {expected}, found {}", self.node.describe()),
        );
    }
}

macro_rules! integer {
    ($method:ident, $visit:ident, $ty:ty) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            match self.node.kind {
                NodeKind::Int(value) => match <$ty>::try_from(value) {
                    Ok(value) => visitor.$visit(value),
                    Err(_) => {
                        self.mismatch(&format!("an integer from {} to {}", <$ty>::MIN, <$ty>::MAX));
                        visitor.$visit(0)
                    }
                },
                _ => {
                    self.mismatch("an integer");
                    visitor.$visit(0)
                }
            }
        }
    };
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Null => visitor.visit_unit(),
            NodeKind::Bool(b) => visitor.visit_bool(*b),
            NodeKind::Int(i) => visitor.visit_i64(*i),
            NodeKind::Float(f) => visitor.visit_f64(*f),
            NodeKind::String { value, .. } => visitor.visit_str(value),
            NodeKind::Seq(items) => visitor.visit_seq(SeqAccess::new(&self, items)),
            NodeKind::Map(entries) => visitor.visit_map(MapAccess::new(&self, entries, None)),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.kind {
            NodeKind::Bool(b) => visitor.visit_bool(b),
            _ => {
                self.mismatch("a boolean (true or false)");
                visitor.visit_bool(false)
            }
        }
    }

    integer!(deserialize_i8, visit_i8, i8);
    integer!(deserialize_i16, visit_i16, i16);
    integer!(deserialize_i32, visit_i32, i32);
    integer!(deserialize_i64, visit_i64, i64);
    integer!(deserialize_u8, visit_u8, u8);
    integer!(deserialize_u16, visit_u16, u16);
    integer!(deserialize_u32, visit_u32, u32);
    integer!(deserialize_u64, visit_u64, u64);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.kind {
            #[allow(clippy::cast_precision_loss)]
            NodeKind::Int(i) => visitor.visit_f64(i as f64),
            NodeKind::Float(f) => visitor.visit_f64(f),
            _ => {
                self.mismatch("a number");
                visitor.visit_f64(0.0)
            }
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let mut chars = self.node.scalar_text().unwrap_or("").chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => visitor.visit_char(c),
            _ => {
                self.mismatch("a single character");
                visitor.visit_char(' ')
            }
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // Any scalar is taken as written (`value: 1` is "1"), as Kubernetes tools do for string
        // fields; null (`name:` with nothing after it) is the empty string.
        match self.node.scalar_text() {
            Some(text) => visitor.visit_str(text),
            None => {
                self.mismatch("a string");
                visitor.visit_str("")
            }
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.scalar_text() {
            Some(text) => visitor.visit_bytes(text.as_bytes()),
            None => {
                self.mismatch("a string");
                visitor.visit_bytes(b"")
            }
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.kind {
            NodeKind::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.kind != NodeKind::Null {
            self.mismatch("null");
        }
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Seq(items) => visitor.visit_seq(SeqAccess::new(&self, items)),
            // `steps:` with nothing after it is an empty list, as in Go's YAML decoding.
            NodeKind::Null => visitor.visit_seq(SeqAccess::new(&self, &[])),
            _ => {
                self.mismatch("a list");
                visitor.visit_seq(SeqAccess::new(&self, &[]))
            }
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Map(entries) => visitor.visit_map(MapAccess::new(&self, entries, None)),
            NodeKind::Null => visitor.visit_map(MapAccess::new(&self, &[], None)),
            _ => {
                self.mismatch("a map");
                visitor.visit_map(MapAccess::new(&self, &[], None))
            }
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Map(entries) => {
                visitor.visit_map(MapAccess::new(&self, entries, Some(fields)))
            }
            NodeKind::Null => visitor.visit_map(MapAccess::new(&self, &[], Some(fields))),
            _ => {
                self.mismatch("a map");
                visitor.visit_map(MapAccess::new(&self, &[], Some(fields)))
            }
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let text = match &self.node.kind {
            NodeKind::String { value, .. } => Some(value.as_str()),
            _ => None,
        };
        let variant = match text {
            Some(text) if variants.contains(&text) => text,
            _ => {
                self.mismatch(&format!("one of: {}", variants.join(", ")));
                variants.first().copied().unwrap_or_default()
            }
        };
        let access: StrDeserializer<'_, DeError> = variant.into_deserializer();
        visitor.visit_enum(access)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

struct SeqAccess<'a> {
    items: std::slice::Iter<'a, Node>,
    index: usize,
    path: String,
    c: &'a Collector,
}

impl<'a> SeqAccess<'a> {
    fn new(parent: &NodeDe<'a>, items: &'a [Node]) -> SeqAccess<'a> {
        SeqAccess {
            items: items.iter(),
            index: 0,
            path: parent.path.clone(),
            c: parent.c,
        }
    }
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        let path = join_index(&self.path, self.index);
        self.index += 1;
        self.c.record(&path, item, None);
        seed.deserialize(NodeDe {
            node: item,
            path,
            c: self.c,
        })
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// Entries of a map, or of a struct when `fields` is known: then keys that are not fields are
/// reported and skipped.
struct MapAccess<'a> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    fields: Option<&'static [&'static str]>,
    path: String,
    c: &'a Collector,
    value: Option<(&'a Node, String)>,
}

impl<'a> MapAccess<'a> {
    fn new(
        parent: &NodeDe<'a>,
        entries: &'a [(Node, Node)],
        fields: Option<&'static [&'static str]>,
    ) -> MapAccess<'a> {
        MapAccess {
            entries: entries.iter(),
            fields,
            path: parent.path.clone(),
            c: parent.c,
            value: None,
        }
    }
}

impl<'de> de::MapAccess<'de> for MapAccess<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        for (key, value) in self.entries.by_ref() {
            let Some(text) = key.scalar_text() else {
                let path = self.path.clone();
                self.c.report(
                    &path,
                    key,
                    "a map key must be a scalar, found a collection".into(),
                );
                continue;
            };
            let path = join_key(&self.path, text);
            if let Some(fields) = self.fields {
                if !fields.contains(&text) {
                    self.c.report(&path, key, unknown_field(text, fields));
                    continue;
                }
                self.c.record(&path, value, Some(key));
                self.value = Some((value, path));
                let field: StrDeserializer<'_, DeError> = text.into_deserializer();
                return seed.deserialize(field).map(Some);
            }
            self.c.record(&path, value, Some(key));
            self.value = Some((value, path.clone()));
            return seed
                .deserialize(NodeDe {
                    node: key,
                    path,
                    c: self.c,
                })
                .map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some((node, path)) => seed.deserialize(NodeDe {
                node,
                path,
                c: self.c,
            }),
            // serde always asks for a key before its value; this is unreachable in practice.
            None => Err(DeError("value requested before its key".to_owned())),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

fn unknown_field(name: &str, fields: &[&str]) -> String {
    let mut message = format!("unknown field `{name}`");
    if let Some(close) = closest(name, fields) {
        message.push_str(&format!("; did you mean `{close}`?"));
    }
    message.push_str(&format!("; expected one of: {}", fields.join(", ")));
    message
}

/// The field a misspelt name most likely meant: same letters in another case, or within a few
/// edits (about a third of the name's length).
fn closest<'f>(name: &str, fields: &[&'f str]) -> Option<&'f str> {
    let lower = name.to_ascii_lowercase();
    let allowed = (name.chars().count() / 3).max(1);
    fields
        .iter()
        .map(|field| (levenshtein(&lower, &field.to_ascii_lowercase()), *field))
        .filter(|(distance, _)| *distance <= allowed)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, field)| field)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_paths_respect_quoted_keys() {
        assert_eq!(parent_path("spec.steps[2].name"), Some("spec.steps[2]"));
        assert_eq!(parent_path("spec.steps[2]"), Some("spec.steps"));
        assert_eq!(
            parent_path("metadata.labels[\"a.b/c[1]\"]"),
            Some("metadata.labels")
        );
        assert_eq!(parent_path("spec"), Some(""));
        assert_eq!(parent_path(""), None);
    }

    #[test]
    fn suggestions_are_close_names() {
        let fields = ["workingDir", "shell", "steps", "name"];
        assert_eq!(closest("workingdir", &fields), Some("workingDir"));
        assert_eq!(closest("shel", &fields), Some("shell"));
        assert_eq!(closest("image", &fields), None);
    }
}
