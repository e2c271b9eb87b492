//! What changed between two executions, most telling first: the verdict, test cases that changed
//! outcome, steps that changed status, exit code or duration, config and workflow-version
//! differences, and the normalised log diff of the step that failed.
//!
//! Built from stored records only, so it works on any two executions, of any age, on either
//! backend; the MCP tool `diff_executions` and `testloop diff` both render an [`ExecutionDiff`].

use std::collections::{BTreeMap, HashMap};

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::logdiff::{self, DiffOptions};
use crate::execution::{ExecutionRecord, ExecutionStatus, StepRecord, StepStatus};
use crate::logs::{LogReader, LogStore};
use crate::results::TestStatus;
use crate::store::{Store, StoredTestCase, TestCaseFilter, TestCounts};
use crate::summary;

/// Test cases listed per group (newly failing, fixed, ...); the counts are always complete.
pub const MAX_CASES_PER_GROUP: usize = 20;

/// Steps listed; the rest are counted.
pub const MAX_STEP_CHANGES: usize = 30;

/// Bytes of the log diff shown.
pub const MAX_LOG_DIFF_SHOWN_BYTES: usize = 4096;

/// Bytes of the workflow YAML diff shown.
pub const MAX_WORKFLOW_DIFF_BYTES: usize = 2048;

/// A step's duration counts as changed when it grew or shrank by at least this factor...
pub const DURATION_CHANGE_FACTOR: f64 = 2.0;

/// ...and by at least this many milliseconds (so that 2 ms → 5 ms is not news).
pub const DURATION_CHANGE_MIN_MS: u64 = 1000;

/// The overall judgement, in the order a reader cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Something that passed in the base fails in the head.
    Regressed,
    /// The base failed and the head passed, with nothing newly failing.
    Fixed,
    /// Both failed, on the same tests or steps.
    StillFailing,
    /// Both passed and no test changed outcome.
    Unchanged,
    /// Anything else: test cases or steps changed without a clear direction.
    Changed,
}

/// One side of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Side {
    pub id: String,
    pub status: ExecutionStatus,
    pub workflow_version: u32,
    /// Milliseconds from start to end, when it ended.
    pub duration_ms: Option<u64>,
    /// Its test cases per status (all zero when it produced no test results).
    pub tests: TestCounts,
    /// True for a re-run of only the failed steps of another execution.
    pub only_failed: bool,
}

/// A test case whose outcome differs, or that exists on one side only.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct CaseChange {
    /// `suite :: class :: name`, the identity of a test across executions.
    pub test: String,
    pub before: Option<TestStatus>,
    pub after: Option<TestStatus>,
    /// The failure message on the side where it failed (the head's when both did).
    pub message: Option<String>,
    /// `file:line` of the failure, when known.
    pub location: Option<String>,
}

/// One group of changed test cases: how many, and the first [`MAX_CASES_PER_GROUP`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct CaseGroup {
    pub count: usize,
    pub cases: Vec<CaseChange>,
}

impl CaseGroup {
    fn push(&mut self, change: CaseChange) {
        self.count += 1;
        if self.cases.len() < MAX_CASES_PER_GROUP {
            self.cases.push(change);
        }
    }
}

/// Test cases by how their outcome changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct TestChanges {
    /// Passed (or skipped) in the base, failed in the head.
    pub newly_failing: CaseGroup,
    /// Failed in the base, passed in the head.
    pub fixed: CaseGroup,
    /// Failed in both.
    pub still_failing: CaseGroup,
    /// Only in the head.
    pub added: CaseGroup,
    /// Only in the base. Empty when the head re-ran only failed steps: its absent cases did not
    /// run, they were not removed.
    pub removed: CaseGroup,
}

/// A step's outcome on one side.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct StepState {
    pub status: StepStatus,
    pub exit_code: Option<i32>,
    pub duration_ms: Option<u64>,
}

/// A step whose status, exit code or duration changed, or that exists on one side only.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct StepChange {
    pub path: String,
    pub name: String,
    pub before: Option<StepState>,
    pub after: Option<StepState>,
    /// What changed, in words: `passed → failed`, `exit 1 → 2`, `1.2s → 9.8s`, `only in head`.
    pub change: String,
}

/// A config value that differs (sensitive values masked on both sides).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ConfigChange {
    pub name: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// The workflows differ: other versions, or the same version number of a workflow saved again.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct WorkflowChange {
    pub before_version: u32,
    pub after_version: u32,
    /// Unified diff of the two YAML snapshots, capped.
    pub diff: String,
}

/// The normalised log diff of one step.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct LogChange {
    /// The step path: the head's failed step, or the base's when only it failed.
    pub step: String,
    /// Unified diff of changed hunks with a little context; timestamps, durations, ids,
    /// addresses, temp paths and ports are normalised before comparing.
    pub diff: String,
    /// Lines only in the head / only in the base, over the whole diff.
    pub added: usize,
    pub removed: usize,
    /// What was left out, when the diff was capped or cut short.
    pub truncated: Option<String>,
}

/// Everything [`diff_executions`] found.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ExecutionDiff {
    pub verdict: Verdict,
    /// One line saying what regressed or changed.
    pub summary: String,
    pub base: Side,
    pub head: Side,
    pub tests: TestChanges,
    pub steps: Vec<StepChange>,
    /// Steps that changed beyond the [`MAX_STEP_CHANGES`] listed.
    pub more_steps: usize,
    pub config: Vec<ConfigChange>,
    pub workflow: Option<WorkflowChange>,
    pub log: Option<LogChange>,
}

/// What can stop a diff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Logs(#[from] crate::logs::Error),
    #[error(transparent)]
    LogDiff(#[from] logdiff::Error),
}

/// Compares `head` against `base` (each an execution with its steps in tree order).
pub fn diff_executions(
    store: &Store,
    logs: &LogStore,
    (base, base_steps): (&ExecutionRecord, &[StepRecord]),
    (head, head_steps): (&ExecutionRecord, &[StepRecord]),
) -> Result<ExecutionDiff, Error> {
    let base_cases = store.test_cases(&base.id, &TestCaseFilter::default())?;
    let head_cases = store.test_cases(&head.id, &TestCaseFilter::default())?;
    let tests = compare_tests(&base_cases, &head_cases, head.only_failed);
    let (steps, more_steps) = compare_steps(base_steps, head_steps);
    let config = compare_config(base, head);
    let workflow = compare_workflows(base, head);
    let log = compare_failed_logs(logs, (base, base_steps), (head, head_steps))?;
    let base_side = side(store, base)?;
    let head_side = side(store, head)?;
    let verdict = verdict(&base_side, &head_side, &tests);
    let summary = summary_line(verdict, &tests, &steps, &config, workflow.as_ref());
    Ok(ExecutionDiff {
        verdict,
        summary,
        base: base_side,
        head: head_side,
        tests,
        steps,
        more_steps,
        config,
        workflow,
        log,
    })
}

fn side(store: &Store, execution: &ExecutionRecord) -> Result<Side, Error> {
    Ok(Side {
        id: execution.id.clone(),
        status: execution.status,
        workflow_version: execution.workflow_version,
        duration_ms: span_ms(execution.started_at, execution.finished_at),
        tests: store.test_counts(&execution.id)?,
        only_failed: execution.only_failed,
    })
}

fn span_ms(start: Option<i64>, end: Option<i64>) -> Option<u64> {
    let (start, end) = (start?, end?);
    u64::try_from(end.saturating_sub(start) / 1000).ok()
}

fn location(case: &StoredTestCase) -> Option<String> {
    let file = case.case.file.as_deref()?;
    Some(match case.case.line {
        Some(line) => format!("{file}:{line}"),
        None => file.to_owned(),
    })
}

fn compare_tests(
    base: &[StoredTestCase],
    head: &[StoredTestCase],
    head_only_failed: bool,
) -> TestChanges {
    // A test reported twice (two reports, or a retried case) counts by its last outcome.
    let by_key = |cases: &[StoredTestCase]| -> HashMap<String, usize> {
        let mut map = HashMap::new();
        for (index, case) in cases.iter().enumerate() {
            map.insert(case.case.key(), index);
        }
        map
    };
    let base_keys = by_key(base);
    let head_keys = by_key(head);
    let change = |key: &str, before: Option<&StoredTestCase>, after: Option<&StoredTestCase>| {
        let failing = after
            .filter(|case| case.case.status.is_failure())
            .or(before.filter(|case| case.case.status.is_failure()));
        CaseChange {
            test: key.to_owned(),
            before: before.map(|case| case.case.status),
            after: after.map(|case| case.case.status),
            message: failing.and_then(|case| case.case.message.clone()),
            location: failing.and_then(location),
        }
    };
    let mut changes = TestChanges::default();
    // Head order (failures first, as stored) is the order a reader wants them in.
    let mut seen = std::collections::HashSet::new();
    for case in head {
        let key = case.case.key();
        if !seen.insert(key.clone()) {
            continue;
        }
        let after = &head[head_keys[&key]];
        let before = base_keys.get(&key).map(|&index| &base[index]);
        let after_failed = after.case.status.is_failure();
        match before {
            None => changes.added.push(change(&key, None, Some(after))),
            Some(before) => {
                let before_failed = before.case.status.is_failure();
                match (before_failed, after_failed) {
                    (false, true) => {
                        changes
                            .newly_failing
                            .push(change(&key, Some(before), Some(after)))
                    }
                    (true, false) if after.case.status == TestStatus::Passed => {
                        changes.fixed.push(change(&key, Some(before), Some(after)))
                    }
                    (true, true) => {
                        changes
                            .still_failing
                            .push(change(&key, Some(before), Some(after)))
                    }
                    _ => {}
                }
            }
        }
    }
    if !head_only_failed {
        let mut seen = std::collections::HashSet::new();
        for case in base {
            let key = case.case.key();
            if seen.insert(key.clone()) && !head_keys.contains_key(&key) {
                changes.removed.push(change(&key, Some(case), None));
            }
        }
    }
    changes
}

fn state(step: &StepRecord) -> StepState {
    StepState {
        status: step.status,
        exit_code: step.exit_code,
        duration_ms: span_ms(step.started_at, step.finished_at),
    }
}

fn describe_change(before: &StepState, after: &StepState) -> Option<String> {
    let mut parts = Vec::new();
    if before.status != after.status {
        parts.push(format!("{} → {}", before.status, after.status));
    }
    if before.exit_code != after.exit_code
        && let (Some(b), Some(a)) = (before.exit_code, after.exit_code)
    {
        parts.push(format!("exit {b} → {a}"));
    }
    if let (Some(b), Some(a)) = (before.duration_ms, after.duration_ms) {
        let (low, high) = (b.min(a), b.max(a));
        #[allow(clippy::cast_precision_loss)]
        let factor = high as f64 / low.max(1) as f64;
        if high - low >= DURATION_CHANGE_MIN_MS && factor >= DURATION_CHANGE_FACTOR {
            parts.push(format!(
                "{} → {}",
                crate::run::format_duration(std::time::Duration::from_millis(b)),
                crate::run::format_duration(std::time::Duration::from_millis(a))
            ));
        }
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn compare_steps(base: &[StepRecord], head: &[StepRecord]) -> (Vec<StepChange>, usize) {
    let base_by_path: BTreeMap<&str, &StepRecord> =
        base.iter().map(|step| (step.path.as_str(), step)).collect();
    let head_paths: std::collections::HashSet<&str> =
        head.iter().map(|step| step.path.as_str()).collect();
    let mut changes = Vec::new();
    for step in head {
        let after = state(step);
        let change = match base_by_path.get(step.path.as_str()) {
            None => Some((None, "only in head".to_owned())),
            Some(before) => {
                let before = state(before);
                describe_change(&before, &after).map(|text| (Some(before), text))
            }
        };
        if let Some((before, change)) = change {
            changes.push(StepChange {
                path: step.path.clone(),
                name: step.name.clone(),
                before,
                after: Some(after),
                change,
            });
        }
    }
    for step in base {
        if !head_paths.contains(step.path.as_str()) {
            changes.push(StepChange {
                path: step.path.clone(),
                name: step.name.clone(),
                before: Some(state(step)),
                after: None,
                change: "only in base".to_owned(),
            });
        }
    }
    // Status changes before duration-only ones: they explain a regression.
    changes.sort_by_key(|change| {
        let status_changed = match (&change.before, &change.after) {
            (Some(b), Some(a)) => b.status != a.status,
            _ => true,
        };
        !status_changed
    });
    let more = changes.len().saturating_sub(MAX_STEP_CHANGES);
    changes.truncate(MAX_STEP_CHANGES);
    (changes, more)
}

fn compare_config(base: &ExecutionRecord, head: &ExecutionRecord) -> Vec<ConfigChange> {
    let before = summary::masked_config(base);
    let after = summary::masked_config(head);
    let names: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    names
        .into_iter()
        .filter(|name| before.get(*name) != after.get(*name))
        .map(|name| ConfigChange {
            name: name.clone(),
            before: before.get(name).cloned(),
            after: after.get(name).cloned(),
        })
        .collect()
}

fn compare_workflows(base: &ExecutionRecord, head: &ExecutionRecord) -> Option<WorkflowChange> {
    if base.snapshot == head.snapshot {
        return None;
    }
    let old: Vec<&str> = base.snapshot.lines().collect();
    let new: Vec<&str> = head.snapshot.lines().collect();
    let options = DiffOptions {
        max_bytes: MAX_WORKFLOW_DIFF_BYTES,
        ..DiffOptions::default()
    };
    Some(WorkflowChange {
        before_version: base.workflow_version,
        after_version: head.workflow_version,
        diff: logdiff::diff_lines(&old, &new, &options).to_unified(),
    })
}

/// The step whose log to compare: the head's failed step; else the base's (a fix shows what
/// stopped failing).
fn compare_failed_logs(
    logs: &LogStore,
    (base, base_steps): (&ExecutionRecord, &[StepRecord]),
    (head, head_steps): (&ExecutionRecord, &[StepRecord]),
) -> Result<Option<LogChange>, Error> {
    let path = match summary::failed_step(head, head_steps) {
        Some((step, _)) => step.path.clone(),
        None => match summary::failed_step(base, base_steps) {
            Some((step, _)) => step.path.clone(),
            None => return Ok(None),
        },
    };
    let read = |execution: &ExecutionRecord| -> Result<Option<LogReader>, Error> {
        match logs.reader(&execution.id, &path) {
            Ok(reader) => Ok(Some(reader)),
            Err(crate::logs::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(error.into()),
        }
    };
    let (Some(old), Some(new)) = (read(base)?, read(head)?) else {
        return Ok(None);
    };
    let options = DiffOptions {
        max_bytes: MAX_LOG_DIFF_SHOWN_BYTES,
        ..DiffOptions::default()
    };
    let compared = logdiff::diff_step_logs(&old, &new, &options)?;
    let diff = compared.diff;
    let skipped = compared.old.skipped.max(compared.new.skipped);
    let truncated = match (diff.truncated.clone(), skipped) {
        (note, 0) => note,
        (None, skipped) => Some(format!(
            "the first {skipped} lines of the longer log were not compared"
        )),
        (Some(note), skipped) => Some(format!(
            "{note}; the first {skipped} lines of the longer log were not compared"
        )),
    };
    Ok(Some(LogChange {
        step: path,
        diff: diff.to_unified(),
        added: diff.added,
        removed: diff.removed,
        truncated,
    }))
}

fn verdict(base: &Side, head: &Side, tests: &TestChanges) -> Verdict {
    let failed = |side: &Side| side.status.is_terminal() && side.status != ExecutionStatus::Passed;
    let added_failing = tests
        .added
        .cases
        .iter()
        .any(|case| case.after.is_some_and(TestStatus::is_failure));
    if tests.newly_failing.count > 0 || added_failing || (!failed(base) && failed(head)) {
        Verdict::Regressed
    } else if failed(base) && !failed(head) {
        Verdict::Fixed
    } else if failed(base) && failed(head) {
        Verdict::StillFailing
    } else if tests.fixed.count == 0 && tests.added.count == 0 && tests.removed.count == 0 {
        Verdict::Unchanged
    } else {
        Verdict::Changed
    }
}

fn names(group: &CaseGroup, limit: usize) -> String {
    let shown: Vec<&str> = group
        .cases
        .iter()
        .take(limit)
        .map(|case| case.test.rsplit(" :: ").next().unwrap_or(&case.test))
        .collect();
    let more = group.count.saturating_sub(shown.len());
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

fn summary_line(
    verdict: Verdict,
    tests: &TestChanges,
    steps: &[StepChange],
    config: &[ConfigChange],
    workflow: Option<&WorkflowChange>,
) -> String {
    let mut parts = Vec::new();
    if tests.newly_failing.count > 0 {
        parts.push(format!(
            "{} test(s) newly failing: {}",
            tests.newly_failing.count,
            names(&tests.newly_failing, 3)
        ));
    }
    if tests.fixed.count > 0 {
        parts.push(format!(
            "{} fixed: {}",
            tests.fixed.count,
            names(&tests.fixed, 3)
        ));
    }
    if tests.still_failing.count > 0 {
        parts.push(format!(
            "{} still failing: {}",
            tests.still_failing.count,
            names(&tests.still_failing, 3)
        ));
    }
    if let Some(step) = steps.iter().find(
        |step| matches!((&step.before, &step.after), (Some(b), Some(a)) if b.status != a.status),
    ) {
        parts.push(format!(
            "step {} `{}` {}",
            step.path, step.name, step.change
        ));
    }
    if !config.is_empty() {
        let changed: Vec<&str> = config.iter().map(|change| change.name.as_str()).collect();
        parts.push(format!("config changed: {}", changed.join(", ")));
    }
    if let Some(workflow) = workflow {
        parts.push(if workflow.before_version == workflow.after_version {
            "workflow YAML differs".to_owned()
        } else {
            format!(
                "workflow v{} → v{}",
                workflow.before_version, workflow.after_version
            )
        });
    }
    let verdict_text = match verdict {
        Verdict::Regressed => "regressed",
        Verdict::Fixed => "fixed",
        Verdict::StillFailing => "still failing",
        Verdict::Unchanged => "unchanged",
        Verdict::Changed => "changed",
    };
    if parts.is_empty() {
        verdict_text.to_owned()
    } else {
        format!("{verdict_text}: {}", parts.join("; "))
    }
}
