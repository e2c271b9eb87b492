//! Flaky tests: test cases whose outcome flipped between executions of the same workflow version
//! with the same config, so that neither the workflow nor its inputs explain the flip: the test
//! (or the code under test, if it changed in between) does.
//!
//! Looks at the last executions of a workflow that ran to a verdict (passed, failed or timed
//! out; aborted and interrupted runs say nothing about the tests), oldest first.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use crate::execution::{ExecutionRecord, ExecutionStatus};
use crate::results::TestStatus;
use crate::store::{self, ExecutionFilter, ReportKind, Store, TestCaseFilter};

/// Executions looked at when the caller does not say.
pub const DEFAULT_WINDOW: usize = 20;

/// Most executions looked at.
pub const MAX_WINDOW: usize = 200;

/// Flaky tests listed; the rest are counted.
pub const MAX_FLAKY_LISTED: usize = 50;

/// Failing executions named per flaky test; the rest are counted.
pub const MAX_FAILED_IN: usize = 10;

/// One flaky test case.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct FlakyTest {
    /// `suite :: class :: name`.
    pub test: String,
    /// Executions in the window where it ran (skips not counted).
    pub runs: usize,
    pub failures: usize,
    /// Outcome changes between consecutive runs of the same workflow version and config.
    pub flips: usize,
    /// `flips` over the consecutive comparable pairs it had: 1.0 alternates every run.
    pub flip_rate: f64,
    /// Its outcome per execution, oldest first: `p` passed, `f` failed, `s` skipped, `.` absent,
    /// `|` where the workflow version or the config changed.
    pub history: String,
    /// Executions where it failed, newest first (at most [`MAX_FAILED_IN`]).
    pub failed_in: Vec<String>,
    /// Its most recent failure message.
    pub last_message: Option<String>,
}

/// What [`find_flaky_tests`] found.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct FlakyReport {
    pub workflow: String,
    /// Executions looked at (oldest first in every `history`).
    pub executions: usize,
    /// Their ids, oldest first.
    pub execution_ids: Vec<String>,
    /// Share of those executions that passed, 0 to 1.
    pub pass_rate: f64,
    /// Share of consecutive executions (same workflow version and config) whose status
    /// differed, 0 to 1.
    pub flip_rate: f64,
    /// Flaky tests, most flips first.
    pub tests: Vec<FlakyTest>,
    /// Flaky tests beyond those listed.
    pub more: usize,
    /// Test cases seen in the window.
    pub tests_seen: usize,
    /// Why the answer may be thin (too few executions, no test results).
    pub note: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Passed,
    Failed,
    Skipped,
}

/// A test's outcome in one execution and its failure message; `None` when it did not run there.
type Slot = Option<(Outcome, Option<String>)>;

/// Looks at the last `window` executions of `workflow` (clamped to 1..=[`MAX_WINDOW`]).
pub fn find_flaky_tests(
    store: &Store,
    workflow: &str,
    window: usize,
) -> Result<FlakyReport, store::Error> {
    let window = window.clamp(1, MAX_WINDOW);
    // Fetch more than the window: aborted and interrupted runs are dropped after.
    let mut executions: Vec<ExecutionRecord> = store
        .list_executions(&ExecutionFilter {
            workflow: Some(workflow.to_owned()),
            limit: window * 2,
            ..ExecutionFilter::default()
        })?
        .into_iter()
        .filter(|execution| {
            matches!(
                execution.status,
                ExecutionStatus::Passed | ExecutionStatus::Failed | ExecutionStatus::TimedOut
            )
        })
        .take(window)
        .collect();
    executions.reverse();

    // key -> outcome per execution index
    let mut outcomes: BTreeMap<String, Vec<Slot>> = BTreeMap::new();
    let mut junit_backed = vec![false; executions.len()];
    for (index, execution) in executions.iter().enumerate() {
        junit_backed[index] = store
            .test_reports(&execution.id)?
            .iter()
            .any(|report| report.kind == ReportKind::Junit);
        for stored in store.test_cases(&execution.id, &TestCaseFilter::default())? {
            let outcome = match stored.case.status {
                TestStatus::Passed => Outcome::Passed,
                TestStatus::Failed | TestStatus::Error => Outcome::Failed,
                TestStatus::Skipped => Outcome::Skipped,
            };
            let slots = outcomes
                .entry(stored.case.key())
                .or_insert_with(|| vec![None; executions.len()]);
            slots[index] = Some((outcome, stored.case.message));
        }
    }
    // Failures recognised in logs name only failing tests. In an execution that passed and has
    // no JUnit report, a test known from other runs did not fail: count it as passed.
    for (index, execution) in executions.iter().enumerate() {
        if execution.status == ExecutionStatus::Passed && !junit_backed[index] {
            for slots in outcomes.values_mut() {
                slots[index].get_or_insert((Outcome::Passed, None));
            }
        }
    }

    let segments: Vec<Segment> = executions.iter().map(Segment::of).collect();
    let mut flaky = Vec::new();
    for (key, slots) in &outcomes {
        if let Some(test) = flaky_test(key, slots, &executions, &segments) {
            flaky.push(test);
        }
    }
    flaky.sort_by(|a, b| {
        b.flips
            .cmp(&a.flips)
            .then(b.flip_rate.total_cmp(&a.flip_rate))
            .then(a.test.cmp(&b.test))
    });
    let more = flaky.len().saturating_sub(MAX_FLAKY_LISTED);
    flaky.truncate(MAX_FLAKY_LISTED);

    let passed = executions
        .iter()
        .filter(|execution| execution.status == ExecutionStatus::Passed)
        .count();
    let (status_flips, pairs) = executions
        .windows(2)
        .zip(segments.windows(2))
        .filter(|(_, segment)| segment[0] == segment[1])
        .map(|(pair, _)| pair)
        .fold((0, 0), |(flips, pairs), pair| {
            (
                flips + usize::from(pair[0].status != pair[1].status),
                pairs + 1,
            )
        });
    let note = if executions.len() < 2 {
        Some(format!(
            "only {} finished execution(s) of `{workflow}`: run it a few more times (rerun_execution) to see flakiness",
            executions.len()
        ))
    } else if outcomes.is_empty() {
        Some(
            "no test results in these executions (no JUnit report among their artifacts and no \
             failing test recognised in their logs): only the execution-level rates are known"
                .to_owned(),
        )
    } else {
        None
    };
    Ok(FlakyReport {
        workflow: workflow.to_owned(),
        executions: executions.len(),
        execution_ids: executions.iter().map(|e| e.id.clone()).collect(),
        pass_rate: ratio(passed, executions.len()),
        flip_rate: ratio(status_flips, pairs),
        tests: flaky,
        more,
        tests_seen: outcomes.len(),
        note,
    })
}

#[allow(clippy::cast_precision_loss)]
fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        // Two decimals are all a reader needs, and they keep the output short.
        ((part as f64 / whole as f64) * 100.0).round() / 100.0
    }
}

/// What must stay the same between two runs for a flip to count: the workflow version and the
/// config values.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    version: u32,
    config: String,
}

impl Segment {
    fn of(execution: &ExecutionRecord) -> Self {
        Self {
            version: execution.workflow_version,
            config: serde_json::Value::Object(execution.config.clone()).to_string(),
        }
    }
}

fn flaky_test(
    key: &str,
    slots: &[Slot],
    executions: &[ExecutionRecord],
    segments: &[Segment],
) -> Option<FlakyTest> {
    let mut history = String::with_capacity(slots.len() * 2);
    let mut previous: Option<(Outcome, &Segment)> = None;
    let (mut flips, mut pairs, mut runs, mut failures) = (0, 0, 0, 0);
    let mut failed_in = Vec::new();
    let mut last_message = None;
    let mut last_segment: Option<&Segment> = None;
    for ((slot, execution), segment) in slots.iter().zip(executions).zip(segments) {
        if last_segment.is_some_and(|last| last != segment) {
            history.push('|');
        }
        last_segment = Some(segment);
        let Some((outcome, message)) = slot else {
            history.push('.');
            continue;
        };
        history.push(match outcome {
            Outcome::Passed => 'p',
            Outcome::Failed => 'f',
            Outcome::Skipped => 's',
        });
        if *outcome == Outcome::Skipped {
            continue;
        }
        runs += 1;
        if *outcome == Outcome::Failed {
            failures += 1;
            failed_in.push(execution.id.clone());
            if message.is_some() {
                last_message.clone_from(message);
            }
        }
        if let Some((before, before_segment)) = previous
            && before_segment == segment
        {
            pairs += 1;
            flips += usize::from(before != *outcome);
        }
        previous = Some((*outcome, segment));
    }
    if flips == 0 {
        return None;
    }
    failed_in.reverse();
    failed_in.truncate(MAX_FAILED_IN);
    Some(FlakyTest {
        test: key.to_owned(),
        runs,
        failures,
        flips,
        flip_rate: ratio(flips, pairs),
        history,
        failed_in,
        last_message,
    })
}
