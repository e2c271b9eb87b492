//! Step logs: one append-only file per step with a fixed-width line index beside it, so that tail,
//! head and line ranges cost the same on a 1 GB log as on a 1 MB one.
//!
//! (Stub: being written.)

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::execution::TimestampMicros;

/// What can go wrong with a log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O failure on a log or its index.
    #[error("failed to access log {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No log was written for that step.
    #[error("no log for step `{step}` of execution {execution}")]
    NotFound { execution: String, step: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One stored line; `number` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    pub number: u64,
    pub timestamp: TimestampMicros,
    pub text: String,
}

/// The logs of all executions under one directory.
#[derive(Debug, Clone)]
pub struct LogStore {
    root: PathBuf,
}

impl LogStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Opens the log of a step for appending, creating it if needed.
    pub fn writer(&self, _execution: &str, _step: &str) -> Result<LogWriter> {
        unimplemented!()
    }

    /// Opens the log of a step for reading.
    pub fn reader(&self, _execution: &str, _step: &str) -> Result<LogReader> {
        unimplemented!()
    }
}

/// Appends lines to one step's log.
pub struct LogWriter {}

impl LogWriter {
    /// Appends one line (without its newline).
    pub fn append(&mut self, _timestamp: TimestampMicros, _line: &[u8]) -> Result<()> {
        unimplemented!()
    }

    /// Hands buffered lines to the operating system, so that they survive the process.
    pub fn flush(&mut self) -> Result<()> {
        unimplemented!()
    }

    pub fn line_count(&self) -> u64 {
        unimplemented!()
    }
}

/// Reads one step's log.
pub struct LogReader {}

impl LogReader {
    pub fn line_count(&self) -> u64 {
        unimplemented!()
    }

    /// Lines whose 1-based numbers fall in `range` (clamped to what exists).
    pub fn lines(&self, _range: Range<u64>) -> Result<Vec<LogLine>> {
        unimplemented!()
    }

    /// The last `n` lines.
    pub fn tail(&self, _n: u64) -> Result<Vec<LogLine>> {
        unimplemented!()
    }
}
