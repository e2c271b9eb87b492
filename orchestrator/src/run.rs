//! Drives a plan through an executor and persists what happens.

/// The orchestrator API that the CLI and the MCP tools share.
pub struct Orchestrator {}

/// What happens during a run, for the store, progress displays and MCP notifications.
#[derive(Debug, Clone)]
pub enum RunEvent {}
