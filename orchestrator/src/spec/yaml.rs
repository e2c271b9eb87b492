//! A YAML tree that remembers where each node was written.
//!
//! `saphyr-parser` gives a stream of events with positions; this module folds them into one
//! [`Node`] tree per document, resolving scalars with the YAML 1.2 core schema (so `yes`/`no`/`on`/
//! `off` stay strings), expanding aliases within a budget, bounding nesting depth, and refusing
//! duplicate keys. Problems that leave the rest of the document meaningful are collected and the
//! build goes on; a syntax error ends the stream, because the parser cannot resume after one.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};

use super::Problem;
use super::limits::{MAX_YAML_DEPTH, MAX_YAML_NODES};

/// What a node holds.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string; `quoted` is true for quoted and block (`|`, `>`) scalars and for `!!str`, i.e.
    /// whenever the writer made it a string on purpose.
    String {
        value: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// Entries in the order written; keys are unique (duplicates are reported and dropped).
    Map(Vec<(Node, Node)>),
}

/// A YAML node and where it starts (1-based line and column, in characters).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    /// The scalar's text as written (after YAML unescaping), whatever type it resolved to, so that
    /// a string field can take `1` as `"1"`; empty for collections.
    pub raw: String,
    pub line: usize,
    pub column: usize,
}

impl Node {
    /// The text of a scalar node, `None` for collections.
    pub fn scalar_text(&self) -> Option<&str> {
        match self.kind {
            NodeKind::Seq(_) | NodeKind::Map(_) => None,
            NodeKind::Null => Some(""),
            _ => Some(&self.raw),
        }
    }

    /// A short description for "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            NodeKind::Null => "null".to_owned(),
            NodeKind::Bool(b) => format!("boolean `{b}`"),
            NodeKind::Int(_) => format!("integer `{}`", self.raw),
            NodeKind::Float(_) => format!("number `{}`", self.raw),
            NodeKind::String { value, .. } => format!("string {}", quote_for_message(value)),
            NodeKind::Seq(_) => "a list".to_owned(),
            NodeKind::Map(_) => "a map".to_owned(),
        }
    }

    fn null_at(line: usize, column: usize) -> Node {
        Node {
            kind: NodeKind::Null,
            raw: String::new(),
            line,
            column,
        }
    }

    /// Nodes in this subtree, itself included.
    fn size(&self) -> usize {
        match &self.kind {
            NodeKind::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            NodeKind::Map(entries) => {
                1 + entries
                    .iter()
                    .map(|(k, v)| k.size() + v.size())
                    .sum::<usize>()
            }
            _ => 1,
        }
    }

    /// Collection levels in this subtree: 0 for a scalar, 1 for a flat list or map.
    fn height(&self) -> usize {
        match &self.kind {
            NodeKind::Seq(items) => 1 + items.iter().map(Node::height).max().unwrap_or(0),
            NodeKind::Map(entries) => {
                1 + entries
                    .iter()
                    .map(|(k, v)| k.height().max(v.height()))
                    .max()
                    .unwrap_or(0)
            }
            _ => 0,
        }
    }
}

/// A value quoted for an error message, shortened so one huge scalar cannot flood the report.
pub(crate) fn quote_for_message(value: &str) -> String {
    const MAX: usize = 60;
    let mut shown: String = value.chars().take(MAX).collect();
    if value.chars().count() > MAX {
        shown.push('…');
    }
    format!("{shown:?}")
}

/// One YAML document of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// 0-based index of the document in the file.
    pub index: usize,
    pub root: Node,
    /// Byte range of the document's text in the file, without its `---` / `...` markers.
    pub start: usize,
    pub end: usize,
}

/// The documents of a file that could be built, and every problem met on the way. A document with
/// a problem that makes its tree meaningless (alias budget, syntax error) is left out of `documents`.
#[derive(Debug, Default)]
pub struct Stream {
    pub documents: Vec<Document>,
    pub problems: Vec<Problem>,
    /// Documents seen, including any left out of `documents` and a skipped trailing empty one.
    pub document_count: usize,
}

/// Joins a map key onto a path: `spec.steps`, or `metadata.labels["testkube.io/icon"]` for keys
/// that are not plain words.
pub fn join_key(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{key:?}]"),
    }
}

/// Joins a list index onto a path: `spec.steps[2]`.
pub fn join_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// Builds the trees of every document in `text`.
///
/// `max_documents` bounds the work: once more documents than that are seen, one problem is
/// reported and the rest of the file is not read.
pub fn parse_stream(text: &str, max_documents: usize) -> Stream {
    let offsets = CharOffsets::new(text);
    let mut stream = Stream::default();
    let mut parser = Parser::new_from_str(text);
    let mut builder: Option<Builder> = None;
    loop {
        let (event, span) = match parser.next_event() {
            None => break,
            Some(Ok(next)) => next,
            Some(Err(error)) => {
                stream
                    .problems
                    .push(scan_problem(&error, stream.document_count));
                break;
            }
        };
        match event {
            Event::StreamStart | Event::Nothing => {}
            Event::StreamEnd => break,
            Event::DocumentStart(explicit) => {
                let index = stream.document_count;
                stream.document_count += 1;
                if index >= max_documents {
                    stream.problems.push(Problem {
                        document: index,
                        path: String::new(),
                        line: Some(span.start.line()),
                        column: Some(span.start.col() + 1),
                        message: format!(
                            "the file has more than {max_documents} documents; the limit is \
                             {max_documents}"
                        ),
                    });
                    break;
                }
                let start = if explicit {
                    after_document_marker(text, offsets.byte(span.end.index()))
                } else if index == 0 {
                    // Leading comments belong to the first document.
                    0
                } else {
                    offsets.byte(span.start.index())
                };
                builder = Some(Builder::new(index, start));
            }
            Event::DocumentEnd => {
                if let Some(done) = builder.take() {
                    let end = offsets.byte(span.start.index()).max(done.start);
                    done.finish(end, &mut stream);
                }
            }
            other => {
                if let Some(b) = builder.as_mut() {
                    b.event(other, span);
                }
            }
        }
    }
    // A final `---` followed by nothing is a common way to end a file; it is not a document.
    if stream.document_count > 1
        && let Some(last) = stream.documents.last()
        && last.index + 1 == stream.document_count
        && is_empty_document(&last.root)
    {
        stream.documents.pop();
        stream.document_count -= 1;
    }
    stream
}

/// Whether a document's root is the empty scalar the parser produces for a document with no
/// content.
pub fn is_empty_document(root: &Node) -> bool {
    root.kind == NodeKind::Null && root.raw.is_empty()
}

/// After `---`: where the document's own text starts. The rest of the marker's line is skipped when
/// it holds nothing but blanks or a comment.
fn after_document_marker(text: &str, after: usize) -> usize {
    let rest = &text[after.min(text.len())..];
    let line_end = rest.find('\n').map_or(rest.len(), |i| i + 1);
    let line = rest[..line_end].trim();
    if line.is_empty() || line.starts_with('#') {
        after + line_end
    } else {
        after + rest.len() - rest.trim_start_matches([' ', '\t']).len()
    }
}

fn scan_problem(error: &ScanError, document: usize) -> Problem {
    let mark = error.marker();
    Problem {
        document: document.saturating_sub(1),
        path: String::new(),
        line: Some(mark.line()),
        column: Some(mark.col() + 1),
        message: format!("invalid YAML: {}", error.info()),
    }
}

/// Converts the parser's character indexes into byte offsets.
struct CharOffsets {
    /// Byte offset of every character; empty when the text is ASCII and the two coincide.
    bytes: Vec<usize>,
    len: usize,
}

impl CharOffsets {
    fn new(text: &str) -> CharOffsets {
        let bytes = if text.is_ascii() {
            Vec::new()
        } else {
            text.char_indices().map(|(i, _)| i).collect()
        };
        CharOffsets {
            bytes,
            len: text.len(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        if self.bytes.is_empty() {
            char_index.min(self.len)
        } else {
            self.bytes.get(char_index).copied().unwrap_or(self.len)
        }
    }
}

/// A collection being built.
enum Frame {
    Seq {
        node: Node,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        node: Node,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        /// The key waiting for its value, and whether it repeats an earlier key (then the value
        /// is dropped).
        pending: Option<(Node, bool)>,
        /// Where each key was first written, for the duplicate-key message.
        seen: HashMap<String, usize>,
        /// Maps named by `<<` merge keys, applied when the map ends.
        merges: Vec<Node>,
    },
}

struct AnchoredNode {
    node: Node,
    size: usize,
    height: usize,
}

/// Folds one document's events into a tree.
struct Builder {
    index: usize,
    start: usize,
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: HashMap<usize, AnchoredNode>,
    /// Nodes built so far, aliases counted in full.
    nodes: usize,
    /// Nodes copied into `anchors`.
    anchored_nodes: usize,
    /// While > 0, events are being skipped: a collection nested too deeply, counted in levels.
    skipping: usize,
    /// Set when the document can no longer be built (alias budget); its events are drained.
    abandoned: bool,
    problems: Vec<Problem>,
}

impl Builder {
    fn new(index: usize, start: usize) -> Builder {
        Builder {
            index,
            start,
            stack: Vec::new(),
            root: None,
            anchors: HashMap::new(),
            nodes: 0,
            anchored_nodes: 0,
            skipping: 0,
            abandoned: false,
            problems: Vec::new(),
        }
    }

    fn finish(self, end: usize, stream: &mut Stream) {
        stream.problems.extend(self.problems);
        if self.abandoned {
            return;
        }
        let root = self.root.unwrap_or_else(|| Node::null_at(1, 1));
        stream.documents.push(Document {
            index: self.index,
            root,
            start: self.start,
            end,
        });
    }

    fn problem(&mut self, path: String, line: usize, column: usize, message: String) {
        self.problems.push(Problem {
            document: self.index,
            path,
            line: Some(line),
            column: Some(column),
            message,
        });
    }

    /// The path of the node about to be completed at the top of the stack.
    fn current_path(&self) -> String {
        let mut path = String::new();
        for frame in &self.stack {
            match frame {
                Frame::Seq { items, .. } => path = join_index(&path, items.len()),
                Frame::Map { pending, .. } => {
                    if let Some((key, _)) = pending {
                        path = join_key(&path, key.scalar_text().unwrap_or("?"));
                    }
                }
            }
        }
        path
    }

    fn event(&mut self, event: Event<'_>, span: Span) {
        if self.abandoned {
            return;
        }
        let line = span.start.line();
        let column = span.start.col() + 1;
        if self.skipping > 0 {
            match event {
                Event::SequenceStart(..) | Event::MappingStart(..) => self.skipping += 1,
                Event::SequenceEnd | Event::MappingEnd => {
                    self.skipping -= 1;
                    if self.skipping == 0 {
                        self.complete(Node::null_at(line, column), 0);
                    }
                }
                _ => {}
            }
            return;
        }
        let is_map = matches!(event, Event::MappingStart(..));
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let node = self.scalar(&text, style, tag.as_deref(), line, column);
                self.count(1, line, column);
                self.complete(node, anchor);
            }
            Event::Alias(id) => self.alias(id, line, column),
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag) => {
                if self.stack.len() >= MAX_YAML_DEPTH {
                    let path = self.current_path();
                    self.problem(
                        path,
                        line,
                        column,
                        format!(
                            "YAML nested more than {MAX_YAML_DEPTH} levels deep; the limit is \
                             {MAX_YAML_DEPTH}"
                        ),
                    );
                    self.skipping = 1;
                    return;
                }
                self.collection_tag(tag.as_deref(), is_map, line, column);
                if !self.count(1, line, column) {
                    return;
                }
                let node = Node::null_at(line, column);
                self.stack.push(if is_map {
                    Frame::Map {
                        node,
                        anchor,
                        entries: Vec::new(),
                        pending: None,
                        seen: HashMap::new(),
                        merges: Vec::new(),
                    }
                } else {
                    Frame::Seq {
                        node,
                        anchor,
                        items: Vec::new(),
                    }
                });
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq {
                    mut node,
                    anchor,
                    items,
                }) => {
                    node.kind = NodeKind::Seq(items);
                    self.complete(node, anchor);
                }
                Some(Frame::Map {
                    mut node,
                    anchor,
                    mut entries,
                    merges,
                    ..
                }) => {
                    apply_merges(&mut entries, merges);
                    node.kind = NodeKind::Map(entries);
                    self.complete(node, anchor);
                }
                None => {}
            },
            _ => {}
        }
    }

    /// Counts nodes against [`MAX_YAML_NODES`]; past it, the document is abandoned.
    fn count(&mut self, nodes: usize, line: usize, column: usize) -> bool {
        self.nodes = self.nodes.saturating_add(nodes);
        if self.nodes > MAX_YAML_NODES {
            let path = self.current_path();
            self.problem(
                path,
                line,
                column,
                format!(
                    "the document expands to more than {MAX_YAML_NODES} YAML nodes (aliases count \
                     in full); the limit is {MAX_YAML_NODES}"
                ),
            );
            self.abandoned = true;
            self.stack.clear();
            self.anchors.clear();
            return false;
        }
        true
    }

    fn alias(&mut self, id: usize, line: usize, column: usize) {
        let Some(anchored) = self.anchors.get(&id) else {
            let path = self.current_path();
            self.problem(path, line, column, "alias to an unknown anchor".to_owned());
            self.complete(Node::null_at(line, column), 0);
            return;
        };
        let (size, height) = (anchored.size, anchored.height);
        if self.stack.len() + height > MAX_YAML_DEPTH {
            let path = self.current_path();
            self.problem(
                path,
                line,
                column,
                format!(
                    "YAML nested more than {MAX_YAML_DEPTH} levels deep once the alias is \
                     expanded; the limit is {MAX_YAML_DEPTH}"
                ),
            );
            self.complete(Node::null_at(line, column), 0);
            return;
        }
        // Counted before cloning, so that a "billion laughs" file is refused before it allocates.
        if !self.count(size, line, column) {
            return;
        }
        if let Some(anchored) = self.anchors.get(&id) {
            let node = anchored.node.clone();
            self.complete(node, 0);
        }
    }

    /// Hands a finished node to its parent (or makes it the root), remembering it under its anchor.
    fn complete(&mut self, node: Node, anchor: usize) {
        if self.abandoned {
            return;
        }
        if anchor != 0 {
            let size = node.size();
            // Each anchor keeps a copy of its node. Nested anchors copy the same nodes again, so
            // the copies get a budget of their own, or anchors on every level of a deep tree
            // would multiply memory the alias budget never sees.
            self.anchored_nodes = self.anchored_nodes.saturating_add(size);
            if self.anchored_nodes > MAX_YAML_NODES {
                let path = self.current_path();
                let (line, column) = (node.line, node.column);
                self.problem(
                    path,
                    line,
                    column,
                    format!(
                        "anchors (`&name`) in this document hold more than {MAX_YAML_NODES} YAML \
                         nodes; the limit is {MAX_YAML_NODES}"
                    ),
                );
                self.abandoned = true;
                self.stack.clear();
                self.anchors.clear();
                return;
            }
            let anchored = AnchoredNode {
                size,
                height: node.height(),
                node: node.clone(),
            };
            self.anchors.insert(anchor, anchored);
        }
        let duplicate = match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                return;
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                return;
            }
            Some(Frame::Map {
                entries,
                pending,
                seen,
                merges,
                ..
            }) => match pending.take() {
                Some((key, is_duplicate)) => {
                    if !is_duplicate {
                        if key.kind
                            == (NodeKind::String {
                                value: "<<".to_owned(),
                                quoted: false,
                            })
                        {
                            merges.push(node);
                        } else {
                            entries.push((key, node));
                        }
                    }
                    return;
                }
                None => {
                    let text = match &node.kind {
                        NodeKind::Seq(_) | NodeKind::Map(_) => None,
                        _ => Some(node.raw.clone()),
                    };
                    let first = text.as_ref().and_then(|t| seen.get(t).copied());
                    if first.is_none()
                        && let Some(t) = text
                    {
                        seen.insert(t, node.line);
                    }
                    *pending = Some((node, first.is_some()));
                    first
                }
            },
        };
        if let Some(first_line) = duplicate {
            let path = self.current_path();
            if let Some(Frame::Map {
                pending: Some((key, _)),
                ..
            }) = self.stack.last()
            {
                let (line, column) = (key.line, key.column);
                let name = key.raw.clone();
                self.problem(
                    path,
                    line,
                    column,
                    format!("duplicate key `{name}` (first written on line {first_line})"),
                );
            }
        }
    }

    fn collection_tag(&mut self, tag: Option<&Tag>, is_map: bool, line: usize, column: usize) {
        let Some(tag) = tag else { return };
        let expected = if is_map { "map" } else { "seq" };
        if !(tag.is_yaml_core_schema() && tag.suffix == expected) {
            let path = self.current_path();
            self.problem(
                path,
                line,
                column,
                format!("unsupported tag `{}` on a {expected}", show_tag(tag)),
            );
        }
    }

    fn scalar(
        &mut self,
        text: &str,
        style: ScalarStyle,
        tag: Option<&Tag>,
        line: usize,
        column: usize,
    ) -> Node {
        let raw = text.to_owned();
        let plain = style == ScalarStyle::Plain;
        let kind = match tag {
            None if plain => resolve_plain(text),
            None => NodeKind::String {
                value: raw.clone(),
                quoted: true,
            },
            Some(tag) => match self.tagged(text, tag) {
                Ok(kind) => kind,
                Err(message) => {
                    let path = self.current_path();
                    self.problem(path, line, column, message);
                    if plain {
                        resolve_plain(text)
                    } else {
                        NodeKind::String {
                            value: raw.clone(),
                            quoted: true,
                        }
                    }
                }
            },
        };
        Node {
            kind,
            raw,
            line,
            column,
        }
    }

    /// A scalar with an explicit tag: `!!str 0755`, `!!int "8"`.
    fn tagged(&self, text: &str, tag: &Tag) -> Result<NodeKind, String> {
        // `!` alone is the non-specific tag: "a string, do not resolve".
        if tag.handle == "!" && tag.suffix.is_empty() {
            return Ok(NodeKind::String {
                value: text.to_owned(),
                quoted: true,
            });
        }
        if !tag.is_yaml_core_schema() {
            return Err(format!("unsupported tag `{}`", show_tag(tag)));
        }
        let resolved = resolve_plain(text);
        let ok = match (tag.suffix.as_str(), &resolved) {
            ("str", _) => {
                return Ok(NodeKind::String {
                    value: text.to_owned(),
                    quoted: true,
                });
            }
            ("int", NodeKind::Int(_))
            | ("float", NodeKind::Float(_))
            | ("bool", NodeKind::Bool(_))
            | ("null", NodeKind::Null) => true,
            ("float", NodeKind::Int(i)) => {
                #[allow(clippy::cast_precision_loss)]
                return Ok(NodeKind::Float(*i as f64));
            }
            ("int" | "float" | "bool" | "null", _) => false,
            _ => return Err(format!("unsupported tag `{}` on a scalar", show_tag(tag))),
        };
        if ok {
            Ok(resolved)
        } else {
            Err(format!(
                "`{}` is not a valid `!!{}`",
                text.chars().take(60).collect::<String>(),
                tag.suffix
            ))
        }
    }
}

/// A tag as its writer spelt it: `!!int` rather than the resolved `tag:yaml.org,2002:int`.
fn show_tag(tag: &Tag) -> String {
    if tag.is_yaml_core_schema() {
        format!("!!{}", tag.suffix)
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    }
}

/// `<<: *base` (or a list of them) adds the entries of the merged maps that the map does not set
/// itself; earlier merged maps win over later ones, as in YAML 1.1.
fn apply_merges(entries: &mut Vec<(Node, Node)>, merges: Vec<Node>) {
    for merged in merges {
        let sources = match merged.kind {
            NodeKind::Map(map) => vec![map],
            NodeKind::Seq(items) => items
                .into_iter()
                .filter_map(|item| match item.kind {
                    NodeKind::Map(map) => Some(map),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        for map in sources {
            for (key, value) in map {
                if !entries.iter().any(|(k, _)| k.raw == key.raw) {
                    entries.push((key, value));
                }
            }
        }
    }
}

static FLOAT: LazyLock<Regex> = LazyLock::new(|| {
    // YAML 1.2 core schema floats.
    #[allow(clippy::unwrap_used)]
    Regex::new(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$").unwrap()
});

/// Types a plain scalar with the YAML 1.2 core schema, plus octal for a leading zero (`0755`),
/// since file modes are written that way.
fn resolve_plain(text: &str) -> NodeKind {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return NodeKind::Null,
        "true" | "True" | "TRUE" => return NodeKind::Bool(true),
        "false" | "False" | "FALSE" => return NodeKind::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return NodeKind::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return NodeKind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return NodeKind::Float(f64::NAN),
        _ => {}
    }
    if let Some(int) = parse_int(text) {
        return NodeKind::Int(int);
    }
    if FLOAT.is_match(text)
        && let Ok(float) = text.parse::<f64>()
    {
        return NodeKind::Float(float);
    }
    NodeKind::String {
        value: text.to_owned(),
        quoted: false,
    }
}

fn parse_int(text: &str) -> Option<i64> {
    if let Some(hex) = text.strip_prefix("0x") {
        return digits_only(hex, 16).and_then(|d| i64::from_str_radix(d, 16).ok());
    }
    if let Some(oct) = text.strip_prefix("0o") {
        return digits_only(oct, 8).and_then(|d| i64::from_str_radix(d, 8).ok());
    }
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let digits = digits_only(digits, 10)?;
    let value = if digits.len() > 1 && digits.starts_with('0') && digits_only(digits, 8).is_some() {
        i64::from_str_radix(digits, 8).ok()?
    } else {
        digits.parse::<i64>().ok()?
    };
    Some(if negative { -value } else { value })
}

fn digits_only(text: &str, radix: u32) -> Option<&str> {
    (!text.is_empty() && text.chars().all(|c| c.is_digit(radix))).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Node {
        let stream = parse_stream(text, 64);
        assert!(stream.problems.is_empty(), "{:?}", stream.problems);
        stream.documents[0].root.clone()
    }

    #[test]
    fn scalars_follow_the_core_schema() {
        for (text, kind) in [
            ("1", NodeKind::Int(1)),
            ("-12", NodeKind::Int(-12)),
            ("0x1F", NodeKind::Int(31)),
            ("0o17", NodeKind::Int(15)),
            ("0755", NodeKind::Int(0o755)),
            ("1.5", NodeKind::Float(1.5)),
            ("1e3", NodeKind::Float(1000.0)),
            ("true", NodeKind::Bool(true)),
            ("FALSE", NodeKind::Bool(false)),
            ("~", NodeKind::Null),
            ("null", NodeKind::Null),
        ] {
            assert_eq!(root(&format!("v: {text}\n")).kind, {
                let key = Node {
                    kind: NodeKind::String {
                        value: "v".into(),
                        quoted: false,
                    },
                    raw: "v".into(),
                    line: 1,
                    column: 1,
                };
                NodeKind::Map(vec![(
                    key,
                    Node {
                        kind,
                        raw: text.into(),
                        line: 1,
                        column: 4,
                    },
                )])
            });
        }
        for text in ["yes", "no", "on", "off", "1.1.0", "2s", "1_000"] {
            let NodeKind::Map(entries) = root(&format!("v: {text}\n")).kind else {
                panic!()
            };
            assert_eq!(
                entries[0].1.kind,
                NodeKind::String {
                    value: text.into(),
                    quoted: false
                },
                "{text}"
            );
        }
    }

    #[test]
    fn quoted_and_tagged_scalars_are_strings() {
        let NodeKind::Map(entries) = root("a: '1'\nb: !!str 0755\nc: |\n  x\n").kind else {
            panic!()
        };
        for (_, value) in entries {
            assert!(matches!(value.kind, NodeKind::String { quoted: true, .. }));
        }
    }

    #[test]
    fn documents_keep_their_own_text() {
        let text = "# head\na: 1\n---\nb: 2\n--- # c\nc: 3\n...\n---\n";
        let stream = parse_stream(text, 64);
        assert!(stream.problems.is_empty(), "{:?}", stream.problems);
        let sources: Vec<&str> = stream
            .documents
            .iter()
            .map(|d| &text[d.start..d.end])
            .collect();
        assert_eq!(sources, ["# head\na: 1\n", "b: 2\n", "c: 3\n"]);
    }

    #[test]
    fn merge_keys_fill_missing_entries() {
        let NodeKind::Map(entries) = root("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n").kind
        else {
            panic!()
        };
        let NodeKind::Map(m) = &entries[1].1.kind else {
            panic!()
        };
        let pairs: Vec<(&str, &str)> = m.iter().map(|(k, v)| (&*k.raw, &*v.raw)).collect();
        assert_eq!(pairs, [("y", "3"), ("x", "1")]);
    }

    #[test]
    fn non_ascii_text_keeps_byte_ranges() {
        let text = "a: é\n---\nb: ü\n";
        let stream = parse_stream(text, 64);
        assert_eq!(
            &text[stream.documents[1].start..stream.documents[1].end],
            "b: ü\n"
        );
    }
}
