//! `diff_executions` over stored records: verdicts, caps and thresholds at their edges.

use testloop_orchestrator::diff::executions::{
    DURATION_CHANGE_MIN_MS, MAX_CASES_PER_GROUP, MAX_STEP_CHANGES, Verdict, diff_executions,
};
use testloop_orchestrator::execution::{
    ExecutionRecord, ExecutionStatus, StepRecord, StepStatus, Trigger,
};
use testloop_orchestrator::logs::LogStore;
use testloop_orchestrator::results::{TestCase, TestStatus};
use testloop_orchestrator::store::{ReportKind, SourcedTestCase, Store, TestReport};

const SNAPSHOT: &str = "apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata:
  name: w
spec:
  config:
    token:
      type: string
      sensitive: true
    level:
      type: string
  steps:
  - shell: 'true'
";

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    logs: LogStore,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("testloop.db")).unwrap();
    let logs = LogStore::new(dir.path().join("logs"));
    Fixture {
        _dir: dir,
        store,
        logs,
    }
}

fn execution(id: &str, status: ExecutionStatus, level: &str, snapshot: &str) -> ExecutionRecord {
    let mut config = serde_json::Map::new();
    config.insert("token".into(), serde_json::json!(format!("secret-{id}")));
    config.insert("level".into(), serde_json::json!(level));
    ExecutionRecord {
        id: id.into(),
        workflow: "w".into(),
        workflow_version: if snapshot == SNAPSHOT { 1 } else { 2 },
        snapshot: snapshot.into(),
        config,
        trigger: Trigger::Cli,
        status,
        created_at: 0,
        started_at: Some(0),
        finished_at: Some(1_000_000),
        error: None,
        rerun_of: None,
        only_failed: false,
        executor: Default::default(),
    }
}

fn step(execution: &str, path: &str, status: StepStatus, millis: i64) -> StepRecord {
    StepRecord {
        execution_id: execution.into(),
        path: path.into(),
        name: format!("step {path}"),
        status,
        exit_code: Some(i32::from(status == StepStatus::Failed)),
        attempts: 1,
        started_at: Some(0),
        finished_at: Some(millis * 1000),
        message: None,
    }
}

fn record_tests(store: &Store, id: &str, cases: &[(&str, TestStatus)]) {
    let cases: Vec<SourcedTestCase> = cases
        .iter()
        .map(|(name, status)| SourcedTestCase {
            source: "junit.xml".into(),
            case: TestCase {
                suite: "s".into(),
                class: None,
                name: (*name).into(),
                status: *status,
                duration_ms: None,
                message: status.is_failure().then(|| format!("{name} broke")),
                failure_type: None,
                file: Some("t.py".into()),
                line: Some(3),
                details: None,
            },
        })
        .collect();
    let report = TestReport {
        source: "junit.xml".into(),
        kind: ReportKind::Junit,
        runner: None,
        cases: cases.len(),
        problem: None,
        runner_counts: None,
    };
    store.record_test_results(id, &[report], &cases).unwrap();
}

#[test]
fn test_groups_are_capped_but_counted_and_the_verdict_says_regressed() {
    let f = fixture();
    let base = execution("B", ExecutionStatus::Passed, "info", SNAPSHOT);
    let head = execution("H", ExecutionStatus::Failed, "debug", SNAPSHOT);
    f.store.insert_execution(&base).unwrap();
    f.store.insert_execution(&head).unwrap();
    let names: Vec<String> = (0..MAX_CASES_PER_GROUP + 5)
        .map(|i| format!("t{i:02}"))
        .collect();
    let passing: Vec<(&str, TestStatus)> = names
        .iter()
        .map(|n| (n.as_str(), TestStatus::Passed))
        .collect();
    let failing: Vec<(&str, TestStatus)> = names
        .iter()
        .map(|n| (n.as_str(), TestStatus::Failed))
        .collect();
    record_tests(&f.store, "B", &passing);
    record_tests(&f.store, "H", &failing);
    let diff = diff_executions(&f.store, &f.logs, (&base, &[]), (&head, &[])).unwrap();
    assert_eq!(diff.verdict, Verdict::Regressed);
    assert_eq!(diff.tests.newly_failing.count, MAX_CASES_PER_GROUP + 5);
    assert_eq!(diff.tests.newly_failing.cases.len(), MAX_CASES_PER_GROUP);
    let first = &diff.tests.newly_failing.cases[0];
    assert_eq!(first.test, "s :: t00");
    assert_eq!(first.message.as_deref(), Some("t00 broke"));
    assert_eq!(first.location.as_deref(), Some("t.py:3"));
    assert!(
        diff.summary
            .starts_with("regressed: 25 test(s) newly failing: t00, t01, t02 and 22 more"),
        "{}",
        diff.summary
    );
    // The sensitive token differs too, but shows masked on both sides, so it is no change.
    assert_eq!(diff.config.len(), 1, "{:?}", diff.config);
    assert_eq!(diff.config[0].name, "level");
    assert!(diff.workflow.is_none());
    assert!(diff.log.is_none(), "no step failed");
}

#[test]
fn steps_change_on_status_exit_code_or_a_large_duration_change_only() {
    let f = fixture();
    let base = execution("B", ExecutionStatus::Failed, "info", SNAPSHOT);
    let head = execution(
        "H",
        ExecutionStatus::Passed,
        "info",
        &SNAPSHOT.replace("'true'", "'true; true'"),
    );
    let min = i64::try_from(DURATION_CHANGE_MIN_MS).unwrap();
    let base_steps = vec![
        step("B", "1", StepStatus::Failed, 10),
        step("B", "2", StepStatus::Passed, min), // doubles by exactly the minimum: a change
        step("B", "3", StepStatus::Passed, min - 1), // doubles, but by less than the minimum
        step("B", "4", StepStatus::Passed, 10 * min), // +90 %: not twice
        step("B", "5", StepStatus::Passed, 10),
    ];
    let head_steps = vec![
        step("H", "1", StepStatus::Passed, 10),
        step("H", "2", StepStatus::Passed, 2 * min),
        step("H", "3", StepStatus::Passed, 2 * (min - 1)),
        step("H", "4", StepStatus::Passed, 19 * min),
        step("H", "6", StepStatus::Passed, 10),
    ];
    let diff = diff_executions(
        &f.store,
        &f.logs,
        (&base, &base_steps),
        (&head, &head_steps),
    )
    .unwrap();
    assert_eq!(diff.verdict, Verdict::Fixed);
    let changes: Vec<(&str, &str)> = diff
        .steps
        .iter()
        .map(|c| (c.path.as_str(), c.change.as_str()))
        .collect();
    assert_eq!(
        changes,
        [
            ("1", "failed → passed, exit 1 → 0"),
            ("6", "only in head"),
            ("5", "only in base"),
            ("2", "1.0s → 2.0s"),
        ]
    );
    let workflow = diff.workflow.expect("the YAML differs");
    assert_eq!((workflow.before_version, workflow.after_version), (1, 2));
    assert!(
        workflow.diff.contains("-  - shell: 'true'"),
        "{}",
        workflow.diff
    );
    assert!(
        workflow.diff.contains("+  - shell: 'true; true'"),
        "{}",
        workflow.diff
    );
    assert!(
        diff.summary.contains("workflow v1 → v2"),
        "{}",
        diff.summary
    );
}

#[test]
fn step_changes_are_capped_and_counted() {
    let f = fixture();
    let base = execution("B", ExecutionStatus::Passed, "info", SNAPSHOT);
    let head = execution("H", ExecutionStatus::Failed, "info", SNAPSHOT);
    let total = MAX_STEP_CHANGES + 3;
    let base_steps: Vec<StepRecord> = (1..=total)
        .map(|i| step("B", &i.to_string(), StepStatus::Passed, 10))
        .collect();
    let head_steps: Vec<StepRecord> = (1..=total)
        .map(|i| step("H", &i.to_string(), StepStatus::Failed, 10))
        .collect();
    let diff = diff_executions(
        &f.store,
        &f.logs,
        (&base, &base_steps),
        (&head, &head_steps),
    )
    .unwrap();
    assert_eq!(diff.steps.len(), MAX_STEP_CHANGES);
    assert_eq!(diff.more_steps, 3);
    assert_eq!(diff.verdict, Verdict::Regressed);
    assert!(diff.log.is_none(), "the failed step wrote no log");
}
