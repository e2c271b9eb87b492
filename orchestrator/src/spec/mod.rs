//! The workflow format: Testkube's TestWorkflow YAML, parsed leniently into [`model`] so that every
//! problem in a file is reported at once, each with its path, line and column.
//!
//! [`parse`] runs the stages in order: the file size limit, the positioned YAML tree ([`yaml`]),
//! the lenient deserializer into [`model`] (which records every type problem and unknown field and
//! keeps going), then semantic validation ([`validate`]). Every problem of every document comes
//! back at once, sorted by document and line.

mod de;
pub mod duration;
pub mod expr;
pub mod limits;
pub mod model;
pub mod validate;
pub mod yaml;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::Serialize;

pub use model::Workflow;

/// One thing wrong with a workflow file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 0-based index of the YAML document in the file.
    pub document: usize,
    /// Where in the document, as `spec.steps[2].timeout`; empty for the file as a whole.
    pub path: String,
    /// 1-based line and column in the file, when the problem has a place.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// What was found and what was expected.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, "{line}:{column}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// A workflow that parsed and validated, with the text of its own document.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedWorkflow {
    pub workflow: Workflow,
    /// The YAML of this document alone, as written (comments kept).
    pub source: String,
}

/// Parses and validates every document of a workflow file.
pub fn parse(text: &str) -> Result<Vec<ParsedWorkflow>, Vec<Problem>> {
    if text.len() > limits::MAX_FILE_BYTES {
        return Err(vec![file_problem(format!(
            "the file is {} bytes; the limit is {} bytes (1 MiB)",
            text.len(),
            limits::MAX_FILE_BYTES
        ))]);
    }
    let stream = yaml::parse_stream(text, limits::MAX_DOCUMENTS);
    let mut problems = stream.problems;
    if stream.documents.is_empty() && problems.is_empty() {
        problems.push(file_problem(
            "the file is empty: expected at least one TestWorkflow document".to_owned(),
        ));
    }
    let mut parsed = Vec::new();
    // Name → document that first used it.
    let mut names: HashMap<String, usize> = HashMap::new();
    for document in stream.documents {
        let root = &document.root;
        let at = |message: String| Problem {
            document: document.index,
            path: String::new(),
            line: Some(root.line),
            column: Some(root.column),
            message,
        };
        if yaml::is_empty_document(root) {
            problems.push(at(
                "the document is empty: expected a TestWorkflow".to_owned()
            ));
            continue;
        }
        if !matches!(root.kind, yaml::NodeKind::Map(_)) {
            problems.push(at(format!(
                "expected a TestWorkflow (a map with apiVersion, kind, metadata and spec), found {}",
                root.describe()
            )));
            continue;
        }
        let collector = de::Collector::new(document.index);
        let workflow: Option<Workflow> = de::from_node(root, &collector);
        let (mut found, positions) = collector.into_parts();
        let Some(workflow) = workflow else {
            problems.extend(found);
            continue;
        };
        // A value the deserializer refused was replaced by a neutral one (0, "", empty); checks of
        // that stand-in would only repeat the problem in other words.
        let refused: Vec<String> = found.iter().map(|p| p.path.clone()).collect();
        found.extend(
            validate::validate_at(document.index, &workflow, Some(&positions))
                .into_iter()
                .filter(|problem| !refused.iter().any(|r| is_within(&problem.path, r))),
        );
        let name = &workflow.metadata.name;
        if !name.is_empty() {
            if let Some(first) = names.get(name) {
                let (line, column) = positions.value("metadata.name").unzip();
                found.push(Problem {
                    document: document.index,
                    path: "metadata.name".to_owned(),
                    line,
                    column,
                    message: format!(
                        "duplicate workflow name `{name}`: document {} of this file already uses it",
                        first + 1
                    ),
                });
            } else {
                names.insert(name.clone(), document.index);
            }
        }
        if found.is_empty() {
            parsed.push(ParsedWorkflow {
                workflow,
                source: text[document.start..document.end].to_owned(),
            });
        }
        problems.extend(found);
    }
    if problems.is_empty() {
        Ok(parsed)
    } else {
        // Stable, so problems on one line keep the order they were found in.
        problems.sort_by_key(|p| (p.document, p.line, p.column));
        Err(problems)
    }
}

/// Reads and parses a workflow file; a read error is reported as a problem of the file.
pub fn parse_file(path: &Path) -> Result<Vec<ParsedWorkflow>, Vec<Problem>> {
    // Checked before reading so that a huge file is not loaded into memory just to be refused.
    if let Ok(metadata) = std::fs::metadata(path)
        && metadata.len() > limits::MAX_FILE_BYTES as u64
    {
        return Err(vec![file_problem(format!(
            "the file is {} bytes; the limit is {} bytes (1 MiB)",
            metadata.len(),
            limits::MAX_FILE_BYTES
        ))]);
    }
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text),
        Err(error) => Err(vec![file_problem(format!(
            "cannot read {}: {error}",
            path.display()
        ))]),
    }
}

/// Whether `path` is `ancestor` or lies below it.
fn is_within(path: &str, ancestor: &str) -> bool {
    path.strip_prefix(ancestor)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

fn file_problem(message: String) -> Problem {
    Problem {
        document: 0,
        path: String::new(),
        line: None,
        column: None,
        message,
    }
}
