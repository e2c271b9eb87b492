//! The workflow format: Testkube's TestWorkflow YAML, parsed leniently into [`model`] so that every
//! problem in a file is reported at once, each with its path, line and column.
//!
//! (Stub: the parser, validation and expression engine are being written.)

pub mod duration;
pub mod expr;
pub mod limits;
pub mod model;

use std::fmt;

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
pub fn parse(_text: &str) -> Result<Vec<ParsedWorkflow>, Vec<Problem>> {
    unimplemented!("spec::parse")
}
