//! testloop's domain: everything an execution is, independent of how an agent or a person asks
//! for it.
//!
//! - [`spec`]: the TestWorkflow format: parse, validate, expressions.
//! - [`plan`]: a validated workflow and a config become units of steps ready to run.
//! - [`run`]: drives a plan through an executor, persists what happens, emits [`run::RunEvent`]s.
//! - [`executor`]: the [`executor::Executor`] contract and its backends (`local` today).
//! - [`store`]: SQLite state: workflows and their versions, executions, step results.
//! - [`flaky`]: test cases whose outcome flips between runs of the same workflow version.
//! - [`logs`]: append-only step logs with a line index for tail, head, ranges and grep.
//! - [`artifacts`]: an execution's artifact store: listing and confined, capped reading.
//! - [`diff`]: run-to-run comparison: normalised log diffs, test case and step changes.
//! - [`execution`]: the status vocabulary and records shared by all of the above.
//! - [`summary`]: failure summaries, masked config and clean log text for readers with little room.
//! - [`results`]: test cases from JUnit reports and from failures recognised in logs.
//! - [`since`]: "since when" filters: RFC 3339 timestamps or ages like `2h`.
//!
//! The orchestrator knows nothing of MCP or of the terminal: the CLI and the MCP tools both call
//! [`Orchestrator`].

pub mod artifacts;
pub mod diff;
pub mod execution;
pub mod executor;
pub mod flaky;
pub mod logs;
pub mod plan;
pub mod results;
pub mod retention;
pub mod run;
pub mod since;
pub mod spec;
pub mod store;
pub mod summary;

pub use run::Orchestrator;
