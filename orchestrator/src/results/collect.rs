//! Reads an execution's test results once it has run: the JUnit reports among its artifacts, or,
//! when there are none, the failures its failed steps' logs show. Done once, when the execution
//! ends, so that every reader (get_execution, diffs, flaky tests) reads stored rows.

use std::path::Path;

use super::junit;
use super::logscan;
use crate::execution::{ExecutionRecord, StepRecord};
use crate::logs::{self, LogStore};
use crate::store::{self, ReportKind, SourcedTestCase, Store, TestReport};

/// What can stop collection. A report that does not parse is not an error: it is recorded with
/// its problem.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Logs(#[from] logs::Error),
}

/// Reads and records the test results of a finished execution.
pub fn collect(
    store: &Store,
    logs: &LogStore,
    artifacts_dir: &Path,
    execution: &ExecutionRecord,
    steps: &[StepRecord],
) -> Result<(), Error> {
    let mut reports = Vec::new();
    let mut cases = Vec::new();
    for path in junit::find_reports(artifacts_dir) {
        let source = path
            .strip_prefix(artifacts_dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        match junit::parse_file(&path) {
            Ok(report) => {
                let problem = match (&report.problem, &report.truncated) {
                    (Some(problem), Some(truncated)) => Some(format!("{problem}; {truncated}")),
                    (Some(problem), None) => Some(problem.clone()),
                    (None, truncated) => truncated.clone(),
                };
                reports.push(TestReport {
                    source: source.clone(),
                    kind: ReportKind::Junit,
                    runner: None,
                    cases: report.cases.len(),
                    problem,
                    runner_counts: None,
                });
                cases.extend(report.cases.into_iter().map(|case| SourcedTestCase {
                    source: source.clone(),
                    case,
                }));
            }
            Err(error) => reports.push(TestReport {
                source,
                kind: ReportKind::Junit,
                runner: None,
                cases: 0,
                problem: Some(error.to_string()),
                runner_counts: None,
            }),
        }
    }
    if cases.is_empty() {
        scan_failed_logs(logs, execution, steps, &mut reports, &mut cases)?;
    }
    if !reports.is_empty() {
        store.record_test_results(&execution.id, &reports, &cases)?;
    }
    Ok(())
}

/// The failed steps that ran a command themselves (not only through nested steps), in tree
/// order.
fn failed_leaf_steps(steps: &[StepRecord]) -> Vec<&StepRecord> {
    let failed: Vec<&StepRecord> = steps.iter().filter(|s| s.status.is_failure()).collect();
    failed
        .iter()
        .copied()
        .filter(|step| {
            let prefix = format!("{}/", step.path);
            !failed.iter().any(|other| other.path.starts_with(&prefix))
        })
        .collect()
}

fn scan_failed_logs(
    logs: &LogStore,
    execution: &ExecutionRecord,
    steps: &[StepRecord],
    reports: &mut Vec<TestReport>,
    cases: &mut Vec<SourcedTestCase>,
) -> Result<(), Error> {
    for step in failed_leaf_steps(steps) {
        let reader = match logs.reader(&execution.id, &step.path) {
            Ok(reader) => reader,
            Err(logs::Error::NotFound { .. }) => continue,
            Err(error) => return Err(error.into()),
        };
        let scan = logscan::scan_log(&reader)?;
        if scan.failures.is_empty() {
            continue;
        }
        let source = format!("log:{}", step.path);
        reports.push(TestReport {
            source: source.clone(),
            kind: ReportKind::Log,
            runner: scan.runner.map(str::to_owned),
            cases: scan.failures.len(),
            problem: scan
                .truncated
                .then(|| "more failures than are kept from one log".to_owned()),
            runner_counts: scan.counts,
        });
        cases.extend(scan.failures.into_iter().map(|case| SourcedTestCase {
            source: source.clone(),
            case,
        }));
    }
    Ok(())
}
