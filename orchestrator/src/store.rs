//! SQLite state (WAL): workflows with every version kept, executions, step results.
//!
//! (Stub: being written.)

// Interim signatures for the runner while the store is being written; replaced by the real module.
use std::collections::BTreeMap;
use std::path::Path;

use crate::execution::{ExecutionRecord, ExecutionStatus, StepRecord, TimestampMicros};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no execution `{0}`")]
    ExecutionNotFound(String),
}
pub type Result<T, E = Error> = std::result::Result<T, E>;
pub struct Store;
#[derive(Debug, Clone)]
pub struct WorkflowVersion {
    pub name: String,
    pub version: u32,
    pub created: bool,
}
#[derive(Debug, Clone)]
pub struct StoredWorkflow {
    pub name: String,
    pub version: u32,
    pub yaml: String,
}
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    pub workflow: Option<String>,
    pub status: Option<ExecutionStatus>,
    pub limit: usize,
    pub before_id: Option<String>,
}
#[allow(unused_variables)]
impl Store {
    pub fn open(path: impl AsRef<Path>) -> Result<Store> { unimplemented!() }
    pub fn save_workflow(&self, name: &str, yaml: &str, description: Option<&str>, labels: &BTreeMap<String, String>) -> Result<WorkflowVersion> { unimplemented!() }
    pub fn get_workflow(&self, name: &str, version: Option<u32>) -> Result<Option<StoredWorkflow>> { unimplemented!() }
    pub fn insert_execution(&self, record: &ExecutionRecord) -> Result<()> { unimplemented!() }
    pub fn finish_execution(&self, id: &str, status: ExecutionStatus, finished_at: TimestampMicros, error: Option<&str>) -> Result<()> { unimplemented!() }
    pub fn get_execution(&self, id: &str) -> Result<Option<ExecutionRecord>> { unimplemented!() }
    pub fn resolve_execution_id(&self, prefix: &str) -> Result<String> { unimplemented!() }
    pub fn list_executions(&self, filter: &ExecutionFilter) -> Result<Vec<ExecutionRecord>> { unimplemented!() }
    pub fn active_executions(&self) -> Result<Vec<ExecutionRecord>> { unimplemented!() }
    pub fn mark_interrupted(&self, id: &str, reason: &str) -> Result<()> { unimplemented!() }
    pub fn upsert_step(&self, record: &StepRecord) -> Result<()> { unimplemented!() }
    pub fn steps(&self, id: &str) -> Result<Vec<StepRecord>> { unimplemented!() }
}
