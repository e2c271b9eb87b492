//! The status vocabulary and the records of an execution, shared by the runner, the store and
//! every reader.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where an execution is in its life. Terminal states never change again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutionStatus {
    Queued,
    Running,
    Passed,
    Failed,
    Aborted,
    TimedOut,
    /// The process that ran it died (killed, crashed, machine restarted) before it finished.
    Interrupted,
}

/// What happened to one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    Queued,
    Running,
    Passed,
    Failed,
    /// Its condition did not hold, so it never ran.
    Skipped,
    Aborted,
    TimedOut,
    Interrupted,
}

macro_rules! status_text {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// The stable lowercase name used in the database, the CLI and tool output.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $ty {
            type Err = UnknownStatus;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(UnknownStatus(s.to_owned())),
                }
            }
        }
    };
}

status_text!(ExecutionStatus {
    Queued => "queued",
    Running => "running",
    Passed => "passed",
    Failed => "failed",
    Aborted => "aborted",
    TimedOut => "timed-out",
    Interrupted => "interrupted",
});

status_text!(StepStatus {
    Queued => "queued",
    Running => "running",
    Passed => "passed",
    Failed => "failed",
    Skipped => "skipped",
    Aborted => "aborted",
    TimedOut => "timed-out",
    Interrupted => "interrupted",
});

/// A status name that is not in the vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status `{0}`")]
pub struct UnknownStatus(pub String);

impl ExecutionStatus {
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }
}

impl StepStatus {
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }

    /// Whether this outcome counts against the parent (before `optional` is considered).
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Self::Failed | Self::Aborted | Self::TimedOut | Self::Interrupted
        )
    }
}

/// Who started an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    Cli,
    Mcp,
    Cron,
    Webhook,
    KubernetesEvent,
}

status_text!(Trigger {
    Cli => "cli",
    Mcp => "mcp",
    Cron => "cron",
    Webhook => "webhook",
    KubernetesEvent => "kubernetes-event",
});

/// Microseconds since the Unix epoch, the one time unit stored anywhere.
pub type TimestampMicros = i64;

/// The current time in [`TimestampMicros`].
pub fn now_micros() -> TimestampMicros {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_micros()).unwrap_or(i64::MAX)
}

/// An execution as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    /// A ULID: sortable by creation time.
    pub id: String,
    pub workflow: String,
    pub workflow_version: u32,
    /// The workflow YAML exactly as it ran.
    pub snapshot: String,
    /// The resolved config values, by name (sensitive ones included: mask when showing).
    pub config: serde_json::Map<String, serde_json::Value>,
    pub trigger: Trigger,
    pub status: ExecutionStatus,
    pub created_at: TimestampMicros,
    pub started_at: Option<TimestampMicros>,
    pub finished_at: Option<TimestampMicros>,
    /// Why it ended the way it did, when that is not just "a step failed" (abort, deadline, crash,
    /// unsupported feature).
    pub error: Option<String>,
    /// The execution this one re-runs, if any.
    pub rerun_of: Option<String>,
    /// A re-run of only the steps that did not pass in `rerun_of`; the others are skipped.
    #[serde(default)]
    pub only_failed: bool,
    /// Where it ran.
    #[serde(default)]
    pub executor: ExecutorKind,
}

/// Which backend runs an execution's units.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutorKind {
    /// Child processes on the machine testloop runs on.
    #[default]
    Local,
    /// One pod per unit in the configured cluster.
    Kubernetes,
}

status_text!(ExecutorKind {
    Local => "local",
    Kubernetes => "kubernetes",
});

/// One step's result as stored. `path` is the step's place in the tree (`2`, `2/1`); the log of a
/// step is addressed by the same path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub execution_id: String,
    pub path: String,
    pub name: String,
    pub status: StepStatus,
    pub exit_code: Option<i32>,
    /// 1 for a step that ran once; more when `retry` ran it again.
    pub attempts: u32,
    pub started_at: Option<TimestampMicros>,
    pub finished_at: Option<TimestampMicros>,
    /// A one-line reason for statuses a bare exit code does not explain (timeout, skipped,
    /// failed to start, signal).
    pub message: Option<String>,
}
