//! SQLite state (WAL): workflows with every version kept, executions, step results.
//!
//! (Stub: being written.)
