//! The executor contract: run one unit (a sequence of steps sharing a workspace) to completion.
//!
//! A backend only knows how to start a step's command somewhere and report how it ended; what a
//! step's `condition`, `optional`, `negative`, `retry` and `timeout` mean is decided once, in
//! [`steps`], so that every backend behaves the same.

pub mod kubernetes;
pub mod local;
mod mountns;
pub mod oom;
pub mod sandbox;
pub mod settings;
pub mod spawn;
pub mod steps;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::execution::{StepRecord, TimestampMicros};
use crate::logs::{self, LogWriter};
use crate::spec::expr::Expr;

pub use settings::{ContainerSettings, PodSettings};

/// The path, inside every unit, where its workspace appears (Testkube's convention).
pub const WORKSPACE_MOUNT: &str = "/data";

/// What shares a workspace: the steps of a workflow, or one parallel worker.
///
/// Serializable, because the Kubernetes executor hands a unit to the runner inside its pod.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unit {
    pub execution_id: String,
    /// Empty for a workflow's only unit.
    pub path: String,
    /// The host directory that appears as [`WORKSPACE_MOUNT`] to the steps.
    pub workspace: PathBuf,
    /// Where collected artifacts are copied.
    pub artifacts_dir: PathBuf,
    /// `content.files`, written before the first step.
    pub files: Vec<UnitFile>,
    /// `setup`, `steps` and `after`, in that order, as one tree.
    pub steps: Vec<PlannedStep>,
    /// The whole unit's wall-clock limit (`job.activeDeadlineSeconds`).
    pub deadline: Option<Duration>,
    /// What conditions can read besides `passed`/`failed`: `config.x`, `execution.id`, `env.X`.
    pub variables: BTreeMap<String, serde_json::Value>,
    /// The workflow's `pod` and `job` settings, applied where the backend has pods.
    #[serde(default)]
    pub pod: PodSettings,
}

/// A file to write into the workspace before the steps run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitFile {
    /// Absolute path as the steps see it (under [`WORKSPACE_MOUNT`]).
    pub path: String,
    pub content: String,
    pub mode: Option<u32>,
}

/// A step with everything resolved except its condition, which depends on how earlier steps went.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedStep {
    /// Place in the tree: `1`, `2/1`, `setup/1`, `after/1`.
    pub path: String,
    pub name: String,
    pub action: Option<Action>,
    pub children: Vec<PlannedStep>,
    /// Evaluated with `passed`, `failed`, `always` (and the config) just before the step.
    pub condition: Expr,
    pub optional: bool,
    pub negative: bool,
    pub retry: Option<RetryPolicy>,
    /// Limit for the step including its nested steps and retries' single attempt.
    pub timeout: Option<Duration>,
    pub delay: Option<Duration>,
    pub artifacts: Option<ArtifactRule>,
    /// Why this step is not run at all, whatever its condition (a re-run of only failed steps
    /// skips those that passed). A skipped step counts as neither passed nor failed.
    pub skip: Option<String>,
}

/// How to start a step's process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub command: Command,
    /// Absolute, as the step sees it.
    pub working_dir: String,
    /// Added to (and overriding) the executor's own environment, in order.
    pub env: Vec<(String, String)>,
    /// The container image the workflow asks for; recorded, and applied where the backend can.
    pub image: Option<String>,
    /// The rest of the step's container settings, applied where the backend has containers.
    #[serde(default)]
    pub container: ContainerSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// A script for `/bin/sh -c`, run with `set -e` first as Testkube does.
    Shell(String),
    /// A program and its arguments, no shell involved.
    Exec { program: String, args: Vec<String> },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub count: u32,
    /// Stop retrying once this holds (`passed` unless the workflow says otherwise).
    pub until: Expr,
}

/// `artifacts`: glob patterns relative to `working_dir` (or absolute).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactRule {
    pub working_dir: String,
    pub patterns: Vec<String>,
}

/// How a unit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnitOutcome {
    Passed,
    Failed,
    Aborted,
    /// The unit's deadline passed.
    TimedOut,
}

/// Where a step's output goes: the log store ([`LogWriter`]) on the server, the container's
/// output inside a Kubernetes pod.
pub trait StepOutput: Send {
    /// Appends one whole line (see [`LogWriter::append`]).
    fn append(&mut self, timestamp: TimestampMicros, line: &[u8]) -> logs::Result<()>;
    /// Appends a chunk of a process's output as read (see [`LogWriter::write_output`]).
    fn write_output(&mut self, timestamp: TimestampMicros, chunk: &[u8]) -> logs::Result<()>;
    /// Ends an unfinished last line, if the stream left one.
    fn finish_output(&mut self, timestamp: TimestampMicros) -> logs::Result<()>;
    /// Hands what is buffered on.
    fn flush(&mut self) -> logs::Result<()>;
}

impl StepOutput for LogWriter {
    fn append(&mut self, timestamp: TimestampMicros, line: &[u8]) -> logs::Result<()> {
        LogWriter::append(self, timestamp, line)
    }
    fn write_output(&mut self, timestamp: TimestampMicros, chunk: &[u8]) -> logs::Result<()> {
        LogWriter::write_output(self, timestamp, chunk)
    }
    fn finish_output(&mut self, timestamp: TimestampMicros) -> logs::Result<()> {
        LogWriter::finish_output(self, timestamp)
    }
    fn flush(&mut self) -> logs::Result<()> {
        LogWriter::flush(self)
    }
}

/// Where a backend reports what happens to the steps of a unit.
pub trait UnitSink: Send + Sync {
    /// Opens (or reopens, for a retry) the log of a step.
    fn log(&self, step_path: &str) -> logs::Result<Box<dyn StepOutput>>;
    /// A step began (or began another attempt).
    fn step_started(&self, record: &StepRecord);
    /// A step reached a terminal status, or was skipped.
    fn step_finished(&self, record: &StepRecord);
    /// Forgets every step's output recorded so far: a re-attached unit's output is about to be
    /// read again from its start.
    fn restart_output(&self) -> logs::Result<()> {
        Ok(())
    }
}

/// A unit that a testloop process which has since stopped had started: enough to find it again.
#[derive(Debug, Clone)]
pub struct StartedUnit {
    pub execution_id: String,
    /// Empty for a workflow's only unit.
    pub path: String,
    /// Where collected artifacts are copied.
    pub artifacts_dir: PathBuf,
}

/// What stops a unit from running at all.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The workspace could not be prepared.
    #[error("failed to prepare the workspace {path}: {source}")]
    Workspace {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The sandbox that maps the workspace to `/data` could not be started.
    #[error("failed to start the sandbox: {0}")]
    Sandbox(String),
    /// A `content.files` entry could not be written.
    #[error("failed to write content file {path}: {reason}")]
    ContentFile { path: String, reason: String },
    /// The unit's pod could not be built or created.
    #[error("{0}")]
    Kubernetes(String),
    /// A unit to re-attach to is no longer there to follow.
    #[error("{0}")]
    Gone(String),
}

/// A backend that runs units.
#[async_trait]
pub trait Executor: Send + Sync {
    /// Runs one unit to completion, streaming each step's output into `sink`'s logs and reporting
    /// each step's outcome. Cancelling `cancel` aborts the unit.
    async fn run(
        &self,
        unit: Unit,
        sink: &dyn UnitSink,
        cancel: CancellationToken,
    ) -> Result<UnitOutcome, ExecutorError>;

    /// Follows, to its end, a unit that another testloop process started and stopped following
    /// (it was restarted or killed), reporting into `sink` as [`Executor::run`] would have.
    /// [`ExecutorError::Gone`] when the unit is no longer there, which is all a backend whose
    /// units die with the process that runs them can say.
    async fn reattach(
        &self,
        unit: StartedUnit,
        sink: &dyn UnitSink,
        cancel: CancellationToken,
    ) -> Result<UnitOutcome, ExecutorError> {
        let _ = (unit, sink, cancel);
        Err(ExecutorError::Gone(format!(
            "its {} processes ended with the testloop process that ran them",
            self.name()
        )))
    }

    /// Where this backend runs units, when that can differ between two configurations of it
    /// (a cluster and namespace): a unit started at one location is looked for only there.
    fn location(&self) -> Option<String> {
        None
    }

    /// A short name for messages (`local`, `kubernetes`).
    fn name(&self) -> &'static str;
}
