//! Test results: the test cases an execution produced, whether they come from a JUnit XML report
//! ([`junit`]) or, when no report exists, from failures recognised in a step's log ([`logscan`]).
//!
//! One vocabulary ([`TestCase`], [`TestStatus`]) for both sources, so that the store, the diff of
//! two executions and the flaky-test finder never ask where a case came from.

use serde::{Deserialize, Serialize};

pub mod collect;
pub mod junit;
pub mod logscan;

/// The outcome of one test case, in JUnit's vocabulary.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TestStatus {
    Passed,
    /// An assertion failed (`<failure>`).
    Failed,
    /// The test could not run to an assertion: an unexpected exception, a crash (`<error>`).
    Error,
    Skipped,
}

impl TestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TestStatus::Passed => "passed",
            TestStatus::Failed => "failed",
            TestStatus::Error => "error",
            TestStatus::Skipped => "skipped",
        }
    }

    /// Failed or error: what a reader must look at.
    pub fn is_failure(self) -> bool {
        matches!(self, TestStatus::Failed | TestStatus::Error)
    }
}

impl std::str::FromStr for TestStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "passed" => Ok(TestStatus::Passed),
            "failed" => Ok(TestStatus::Failed),
            "error" => Ok(TestStatus::Error),
            "skipped" => Ok(TestStatus::Skipped),
            other => Err(format!(
                "unknown test status {other:?}: expected passed, failed, error or skipped"
            )),
        }
    }
}

/// One test case and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TestCase {
    /// The suite (JUnit `<testsuite name>`), or the file or package a log names; empty when unknown.
    pub suite: String,
    /// The class or module (JUnit `classname`), when the producer gives one.
    pub class: Option<String>,
    pub name: String,
    pub status: TestStatus,
    /// Duration in milliseconds, when known.
    pub duration_ms: Option<u64>,
    /// The failure, error or skip message (the assertion message), trimmed and bounded.
    pub message: Option<String>,
    /// The failure type (an exception class such as `AssertionError`), when given.
    pub failure_type: Option<String>,
    /// The source file of the failure, when the producer or the log names one.
    pub file: Option<String>,
    /// The line in `file`, when known.
    pub line: Option<u32>,
    /// Further detail (the start of a stack trace or failure body), bounded.
    pub details: Option<String>,
}

impl TestCase {
    /// The identity of a case across executions: suite, class and name. Two executions' cases
    /// with the same key are the same test.
    pub fn key(&self) -> String {
        match &self.class {
            Some(class) if !class.is_empty() => {
                format!("{} :: {class} :: {}", self.suite, self.name)
            }
            _ => format!("{} :: {}", self.suite, self.name),
        }
    }
}
