//! `find_flaky_tests` over real stored executions and test results.

use testloop_orchestrator::execution::{ExecutionRecord, ExecutionStatus, Trigger};
use testloop_orchestrator::flaky::{MAX_FLAKY_LISTED, find_flaky_tests};
use testloop_orchestrator::results::{TestCase, TestStatus};
use testloop_orchestrator::store::{ReportKind, SourcedTestCase, Store, TestReport};

struct History {
    _dir: tempfile::TempDir,
    store: Store,
    next: u32,
    /// The config the next recorded executions ran with.
    config: serde_json::Map<String, serde_json::Value>,
}

impl History {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("testloop.db")).unwrap();
        Self {
            _dir: dir,
            store,
            next: 0,
            config: serde_json::Map::new(),
        }
    }

    /// Records an execution of workflow `w` at `version` with `status` and these test outcomes
    /// (`None`: no JUnit report, the given cases came from a log).
    fn record(
        &mut self,
        version: u32,
        status: ExecutionStatus,
        cases: &[(&str, TestStatus)],
        junit: bool,
    ) -> String {
        self.next += 1;
        let id = format!("01J{:023}", self.next);
        self.store
            .insert_execution(&ExecutionRecord {
                id: id.clone(),
                workflow: "w".into(),
                workflow_version: version,
                snapshot: String::new(),
                config: self.config.clone(),
                trigger: Trigger::Cli,
                status,
                created_at: i64::from(self.next),
                started_at: None,
                finished_at: None,
                error: None,
                rerun_of: None,
                only_failed: false,
                executor: Default::default(),
            })
            .unwrap();
        let source = if junit { "junit.xml" } else { "log:1" };
        let cases: Vec<SourcedTestCase> = cases
            .iter()
            .map(|(name, status)| SourcedTestCase {
                source: source.into(),
                case: TestCase {
                    suite: "s".into(),
                    class: None,
                    name: (*name).into(),
                    status: *status,
                    duration_ms: None,
                    message: status
                        .is_failure()
                        .then(|| format!("{name} failed in {id}")),
                    failure_type: None,
                    file: None,
                    line: None,
                    details: None,
                },
            })
            .collect();
        let report = TestReport {
            source: source.into(),
            kind: if junit {
                ReportKind::Junit
            } else {
                ReportKind::Log
            },
            runner: None,
            cases: cases.len(),
            problem: None,
            runner_counts: None,
        };
        self.store
            .record_test_results(&id, &[report], &cases)
            .unwrap();
        id
    }
}

use ExecutionStatus::{Aborted, Failed, Passed};
use TestStatus::{Failed as F, Passed as P, Skipped as S};

#[test]
fn a_test_that_flips_within_one_version_is_flaky_and_a_steady_one_is_not() {
    let mut h = History::new();
    let outcomes = [P, F, P, P, F];
    let mut ids = Vec::new();
    for outcome in outcomes {
        let status = if outcome == F { Failed } else { Passed };
        ids.push(h.record(
            1,
            status,
            &[("steady", P), ("flaky", outcome), ("skip", S)],
            true,
        ));
    }
    let report = find_flaky_tests(&h.store, "w", 20).unwrap();
    assert_eq!(report.executions, 5);
    assert_eq!(report.execution_ids, ids);
    assert_eq!(report.tests_seen, 3);
    assert_eq!(report.pass_rate, 0.6);
    assert_eq!(report.flip_rate, 0.75, "3 status flips over 4 pairs");
    assert_eq!(report.tests.len(), 1, "{report:#?}");
    let flaky = &report.tests[0];
    assert_eq!(flaky.test, "s :: flaky");
    assert_eq!(flaky.history, "pfppf");
    assert_eq!((flaky.runs, flaky.failures, flaky.flips), (5, 2, 3));
    assert_eq!(flaky.flip_rate, 0.75);
    assert_eq!(flaky.failed_in, [ids[4].clone(), ids[1].clone()]);
    assert_eq!(
        flaky.last_message.as_deref(),
        Some(format!("flaky failed in {}", ids[4]).as_str())
    );
    assert!(report.note.is_none());
}

#[test]
fn a_flip_across_a_workflow_version_change_is_not_flakiness() {
    let mut h = History::new();
    h.record(1, Passed, &[("t", P)], true);
    h.record(1, Passed, &[("t", P)], true);
    h.record(2, Failed, &[("t", F)], true);
    h.record(2, Failed, &[("t", F)], true);
    let report = find_flaky_tests(&h.store, "w", 20).unwrap();
    assert!(report.tests.is_empty(), "{report:#?}");
    assert_eq!(report.flip_rate, 0.0, "the status flip is across versions");
    h.record(2, Passed, &[("t", P)], true);
    let report = find_flaky_tests(&h.store, "w", 20).unwrap();
    assert_eq!(report.tests[0].history, "pp|ffp");
    assert_eq!(report.tests[0].flips, 1);
}

#[test]
fn aborted_runs_are_ignored_and_the_window_counts_finished_runs() {
    let mut h = History::new();
    h.record(1, Passed, &[("t", P)], true);
    h.record(1, Failed, &[("t", F)], true);
    h.record(1, Aborted, &[("t", P)], true);
    h.record(1, Passed, &[("t", P)], true);
    let report = find_flaky_tests(&h.store, "w", 2).unwrap();
    assert_eq!(report.executions, 2);
    assert_eq!(report.tests[0].history, "fp");
    let report = find_flaky_tests(&h.store, "w", 0).unwrap();
    assert_eq!(report.executions, 1, "the window is at least one");
    assert!(report.note.unwrap().contains("only 1 finished execution"));
}

#[test]
fn failures_recognised_in_logs_count_as_passed_in_runs_that_passed() {
    let mut h = History::new();
    h.record(1, Failed, &[("t", F)], false);
    h.record(1, Passed, &[], false);
    h.record(1, Failed, &[("t", F)], false);
    let report = find_flaky_tests(&h.store, "w", 20).unwrap();
    assert_eq!(report.tests[0].history, "fpf");
    assert_eq!(report.tests[0].flips, 2);
}

#[test]
fn no_test_results_is_said_plainly() {
    let mut h = History::new();
    h.record(1, Passed, &[], false);
    h.record(1, Failed, &[], false);
    let report = find_flaky_tests(&h.store, "w", 20).unwrap();
    assert!(report.tests.is_empty());
    assert_eq!(report.flip_rate, 1.0);
    assert!(report.note.unwrap().contains("no test results"));
}

#[test]
fn the_list_is_capped_and_counts_the_rest() {
    let mut h = History::new();
    let names: Vec<String> = (0..MAX_FLAKY_LISTED + 3)
        .map(|i| format!("t{i:03}"))
        .collect();
    for round in 0..3 {
        let outcome = if round == 1 { F } else { P };
        let cases: Vec<(&str, TestStatus)> =
            names.iter().map(|name| (name.as_str(), outcome)).collect();
        h.record(1, if round == 1 { Failed } else { Passed }, &cases, true);
    }
    let report = find_flaky_tests(&h.store, "w", 20).unwrap();
    assert_eq!(report.tests.len(), MAX_FLAKY_LISTED);
    assert_eq!(report.more, 3);
    assert_eq!(
        report.tests[0].test, "s :: t000",
        "ties are ordered by name"
    );
}

#[test]
fn a_flip_after_a_config_change_is_not_flakiness() {
    let mut h = History::new();
    h.record(1, Failed, &[("t", F)], true);
    h.config.insert("fixed".into(), serde_json::json!(true));
    h.record(1, Passed, &[("t", P)], true);
    h.record(1, Passed, &[("t", P)], true);
    let report = find_flaky_tests(&h.store, "w", 20).unwrap();
    assert!(report.tests.is_empty(), "{report:#?}");
    assert_eq!(report.flip_rate, 0.0);
    h.record(1, Failed, &[("t", F)], true);
    let report = find_flaky_tests(&h.store, "w", 20).unwrap();
    assert_eq!(report.tests[0].history, "f|ppf");
    assert_eq!(report.tests[0].flips, 1);
}
