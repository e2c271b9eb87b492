//! The SQLite store against a real database file: workflows, executions, steps, migrations,
//! concurrent access.

use std::collections::BTreeMap;
use std::sync::Arc;

use testloop_orchestrator::execution::{
    ExecutionRecord, ExecutionStatus, StepRecord, StepStatus, Trigger,
};
use testloop_orchestrator::results::{TestCase, TestStatus};
use testloop_orchestrator::store::{
    Error, ExecutionFilter, MIGRATIONS, ReportKind, SCHEMA_VERSION, SourcedTestCase, Store,
    TestCaseFilter, TestReport, compare_step_paths,
};

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("nested/dir/testloop.db")).expect("open");
    (dir, store)
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn execution(id: &str, workflow: &str, status: ExecutionStatus) -> ExecutionRecord {
    let mut config = serde_json::Map::new();
    config.insert("threads".into(), serde_json::json!(4));
    config.insert("name".into(), serde_json::json!("x y"));
    ExecutionRecord {
        id: id.into(),
        workflow: workflow.into(),
        workflow_version: 2,
        snapshot: format!("kind: TestWorkflow\nmetadata:\n  name: {workflow}\n"),
        config,
        trigger: Trigger::Mcp,
        status,
        created_at: 1_700_000_000_000_000,
        started_at: None,
        finished_at: None,
        error: None,
        rerun_of: None,
        only_failed: false,
        executor: Default::default(),
    }
}

fn step(execution: &str, path: &str, status: StepStatus) -> StepRecord {
    StepRecord {
        execution_id: execution.into(),
        path: path.into(),
        name: format!("step {path}"),
        status,
        exit_code: None,
        attempts: 1,
        started_at: Some(10),
        finished_at: None,
        message: None,
    }
}

/// Sortable ids in the shape of ULIDs: `n` sets the order.
fn id(n: u32) -> String {
    format!("01J{n:06}ZZZZZZZZZZZZZZZZZ")
}

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Store>();
}

#[test]
fn open_sets_wal_and_current_schema() {
    let (dir, store) = open();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let conn = rusqlite::Connection::open(dir.path().join("nested/dir/testloop.db")).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // Reopening an up-to-date database is a no-op.
    drop(store);
    let again = Store::open(dir.path().join("nested/dir/testloop.db")).unwrap();
    assert_eq!(again.schema_version().unwrap(), SCHEMA_VERSION);
}

#[test]
fn workflow_versions_are_kept_and_identical_saves_do_not_add_one() {
    let (_d, store) = open();
    let l = labels(&[("team", "core")]);
    let v1 = store
        .save_workflow("smoke", "a: 1", Some("first"), &l)
        .unwrap();
    assert_eq!((v1.version, v1.created), (1, true));
    let same = store
        .save_workflow("smoke", "a: 1", Some("first"), &l)
        .unwrap();
    assert_eq!((same.version, same.created), (1, false));
    let v2 = store
        .save_workflow("smoke", "a: 2", None, &BTreeMap::new())
        .unwrap();
    assert_eq!((v2.version, v2.created), (2, true));
    // Going back to old content is a new version, not a rewind.
    let v3 = store
        .save_workflow("smoke", "a: 1", Some("first"), &l)
        .unwrap();
    assert_eq!((v3.version, v3.created), (3, true));

    let latest = store.get_workflow("smoke", None).unwrap().unwrap();
    assert_eq!(latest.version, 3);
    assert_eq!(latest.yaml, "a: 1");
    assert_eq!(latest.description.as_deref(), Some("first"));
    assert_eq!(latest.labels, l);
    let old = store.get_workflow("smoke", Some(2)).unwrap().unwrap();
    assert_eq!(old.yaml, "a: 2");
    assert_eq!(old.description, None);
    assert!(old.labels.is_empty());
    assert!(store.get_workflow("smoke", Some(4)).unwrap().is_none());
    assert!(store.get_workflow("other", None).unwrap().is_none());
}

#[test]
fn list_and_delete_workflows() {
    let (_d, store) = open();
    store
        .save_workflow("b-flow", "b", Some("bee"), &labels(&[("k", "v")]))
        .unwrap();
    store
        .save_workflow("a-flow", "a", None, &BTreeMap::new())
        .unwrap();
    store
        .save_workflow("a-flow", "a2", Some("second"), &BTreeMap::new())
        .unwrap();
    let list = store.list_workflows().unwrap();
    let names: Vec<_> = list
        .iter()
        .map(|w| (w.name.as_str(), w.latest_version))
        .collect();
    assert_eq!(names, [("a-flow", 2), ("b-flow", 1)]);
    assert_eq!(list[0].description.as_deref(), Some("second"));
    assert_eq!(list[1].labels, labels(&[("k", "v")]));
    assert!(list[0].updated_at >= list[0].created_at);

    // Deleting keeps executions.
    store
        .insert_execution(&execution(&id(1), "a-flow", ExecutionStatus::Passed))
        .unwrap();
    assert!(store.delete_workflow("a-flow").unwrap());
    assert!(!store.delete_workflow("a-flow").unwrap());
    assert!(!store.delete_workflow("never").unwrap());
    assert!(store.get_workflow("a-flow", None).unwrap().is_none());
    assert_eq!(store.list_workflows().unwrap().len(), 1);
    assert!(store.get_execution(&id(1)).unwrap().is_some());

    // Saving again brings it back, numbering on.
    let back = store
        .save_workflow("a-flow", "a3", None, &BTreeMap::new())
        .unwrap();
    assert_eq!((back.version, back.created), (3, true));
    assert_eq!(store.list_workflows().unwrap().len(), 2);
    // ...and identical content revives without a new version.
    store.delete_workflow("a-flow").unwrap();
    let revived = store
        .save_workflow("a-flow", "a3", None, &BTreeMap::new())
        .unwrap();
    assert_eq!((revived.version, revived.created), (3, false));
    assert!(store.get_workflow("a-flow", None).unwrap().is_some());
}

#[test]
fn executions_round_trip_and_update() {
    let (_d, store) = open();
    let mut record = execution(&id(1), "smoke", ExecutionStatus::Queued);
    record.rerun_of = Some(id(0));
    record.trigger = Trigger::KubernetesEvent;
    store.insert_execution(&record).unwrap();
    assert_eq!(store.get_execution(&id(1)).unwrap().as_ref(), Some(&record));
    assert!(store.get_execution("nope").unwrap().is_none());

    store
        .update_execution(&id(1), ExecutionStatus::Running, Some(50), None, None)
        .unwrap();
    store
        .update_execution(
            &id(1),
            ExecutionStatus::TimedOut,
            None,
            Some(90),
            Some("deadline of 1m passed"),
        )
        .unwrap();
    let got = store.get_execution(&id(1)).unwrap().unwrap();
    assert_eq!(got.status, ExecutionStatus::TimedOut);
    assert_eq!(got.started_at, Some(50), "None leaves a field as it was");
    assert_eq!(got.finished_at, Some(90));
    assert_eq!(got.error.as_deref(), Some("deadline of 1m passed"));
    assert!(matches!(
        store.update_execution("nope", ExecutionStatus::Failed, None, None, None),
        Err(Error::ExecutionNotFound { .. })
    ));
    // Duplicate ids are refused.
    assert!(store.insert_execution(&record).is_err());
}

#[test]
fn list_executions_filters_newest_first_with_a_cursor() {
    let (_d, store) = open();
    for n in 1..=25 {
        let workflow = if n % 2 == 0 { "even" } else { "odd" };
        let status = if n % 5 == 0 {
            ExecutionStatus::Failed
        } else {
            ExecutionStatus::Passed
        };
        store
            .insert_execution(&execution(&id(n), workflow, status))
            .unwrap();
    }
    let ids = |v: Vec<ExecutionRecord>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();

    // Page through everything, 10 at a time.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_executions(&ExecutionFilter {
                limit: 10,
                before_id: cursor.clone(),
                ..Default::default()
            })
            .unwrap();
        if page.is_empty() {
            break;
        }
        cursor = page.last().map(|e| e.id.clone());
        seen.extend(ids(page));
    }
    assert_eq!(seen, (1..=25).rev().map(id).collect::<Vec<_>>());

    let odd_failed = store
        .list_executions(&ExecutionFilter {
            workflow: Some("odd".into()),
            status: Some(ExecutionStatus::Failed),
            limit: 100,
            before_id: None,
        })
        .unwrap();
    assert_eq!(ids(odd_failed), [id(25), id(15), id(5)]);

    let even_page = store
        .list_executions(&ExecutionFilter {
            workflow: Some("even".into()),
            limit: 2,
            before_id: Some(id(20)),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(ids(even_page), [id(18), id(16)]);
    assert!(
        store
            .list_executions(&ExecutionFilter {
                limit: 0,
                ..Default::default()
            })
            .unwrap()
            .is_empty()
    );
}

#[test]
fn execution_id_prefixes_resolve_case_insensitively() {
    let (_d, store) = open();
    for full in [
        "01JAAAAAAAAAAAAAAAAAAAAAAA",
        "01JAAAAAAAAAAAAAAAAAAAAAAB",
        "01JBBBBBBBBBBBBBBBBBBBBBBB",
    ] {
        store
            .insert_execution(&execution(full, "w", ExecutionStatus::Passed))
            .unwrap();
    }
    assert_eq!(
        store.resolve_execution_id("01jb").unwrap(),
        "01JBBBBBBBBBBBBBBBBBBBBBBB"
    );
    assert_eq!(
        store
            .resolve_execution_id("01JAAAAAAAAAAAAAAAAAAAAAAB")
            .unwrap(),
        "01JAAAAAAAAAAAAAAAAAAAAAAB"
    );
    match store.resolve_execution_id("01ja") {
        Err(Error::AmbiguousExecutionId { prefix, candidates }) => {
            assert_eq!(prefix, "01ja");
            assert_eq!(candidates.len(), 2);
        }
        other => panic!("expected ambiguity, got {other:?}"),
    }
    let err = store.resolve_execution_id("01JC").unwrap_err();
    assert!(matches!(err, Error::NoSuchExecution { .. }));
    assert_eq!(err.to_string(), "no execution id starts with `01JC`");
    assert!(matches!(
        store.resolve_execution_id(""),
        Err(Error::EmptyExecutionId)
    ));
}

#[test]
fn steps_upsert_and_come_back_in_tree_order() {
    let (_d, store) = open();
    store
        .insert_execution(&execution(&id(1), "w", ExecutionStatus::Running))
        .unwrap();
    for path in [
        "10",
        "2/2",
        "1",
        "2",
        "2/10",
        "2/1",
        "3",
        "2/shard-10",
        "2/shard-9",
    ] {
        store
            .upsert_step(&step(&id(1), path, StepStatus::Running))
            .unwrap();
    }
    let mut done = step(&id(1), "2/1", StepStatus::Failed);
    done.exit_code = Some(3);
    done.attempts = 2;
    done.finished_at = Some(99);
    done.message = Some("exit code 3".into());
    store.upsert_step(&done).unwrap();

    let steps = store.steps(&id(1)).unwrap();
    let paths: Vec<_> = steps.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "1",
            "2",
            "2/1",
            "2/2",
            "2/10",
            "2/shard-9",
            "2/shard-10",
            "3",
            "10"
        ]
    );
    assert_eq!(steps[2], done);
    assert!(store.steps(&id(2)).unwrap().is_empty());
    // A step needs its execution.
    assert!(
        store
            .upsert_step(&step(&id(2), "1", StepStatus::Queued))
            .is_err()
    );
}

#[test]
fn step_path_ordering_is_numeric_by_segment() {
    use std::cmp::Ordering::*;
    assert_eq!(compare_step_paths("2", "10"), Less);
    assert_eq!(compare_step_paths("2", "2/1"), Less);
    assert_eq!(compare_step_paths("2/9", "10"), Less);
    assert_eq!(compare_step_paths("a2b", "a10a"), Less);
    assert_eq!(
        compare_step_paths("99999999999999999999999", "100000000000000000000000"),
        Less
    );
    assert_eq!(compare_step_paths("01", "1"), Less, "a total order");
    assert_eq!(compare_step_paths("1/2", "1/2"), Equal);
}

#[test]
fn mark_interrupted_touches_only_unfinished_work() {
    let (_d, store) = open();
    store
        .insert_execution(&execution(&id(1), "w", ExecutionStatus::Running))
        .unwrap();
    store
        .insert_execution(&execution(&id(2), "w", ExecutionStatus::Queued))
        .unwrap();
    store
        .insert_execution(&execution(&id(3), "w", ExecutionStatus::Passed))
        .unwrap();
    store
        .upsert_step(&step(&id(1), "1", StepStatus::Passed))
        .unwrap();
    store
        .upsert_step(&step(&id(1), "2", StepStatus::Running))
        .unwrap();
    store
        .upsert_step(&step(&id(1), "3", StepStatus::Queued))
        .unwrap();

    let active: Vec<_> = store
        .active_executions()
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(active, [id(1), id(2)]);

    assert!(store.mark_interrupted(&id(1), "server restarted").unwrap());
    let e = store.get_execution(&id(1)).unwrap().unwrap();
    assert_eq!(e.status, ExecutionStatus::Interrupted);
    assert_eq!(e.error.as_deref(), Some("server restarted"));
    assert!(e.finished_at.is_some());
    let statuses: Vec<_> = store
        .steps(&id(1))
        .unwrap()
        .into_iter()
        .map(|s| (s.status, s.message))
        .collect();
    assert_eq!(
        statuses,
        [
            (StepStatus::Passed, None),
            (StepStatus::Interrupted, Some("server restarted".into())),
            (StepStatus::Interrupted, Some("server restarted".into())),
        ]
    );

    assert!(!store.mark_interrupted(&id(3), "late").unwrap());
    assert_eq!(
        store.get_execution(&id(3)).unwrap().unwrap().status,
        ExecutionStatus::Passed
    );
    assert!(matches!(
        store.mark_interrupted("nope", "x"),
        Err(Error::ExecutionNotFound { .. })
    ));
    assert_eq!(
        store
            .active_executions()
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        [id(2)]
    );
}

#[test]
fn two_stores_on_one_file_write_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let path = Arc::new(dir.path().join("shared.db"));
    let per_thread = 150u32;
    let handles: Vec<_> = (0..2u32)
        .map(|t| {
            let path = Arc::clone(&path);
            std::thread::spawn(move || {
                let store = Store::open(path.as_path()).expect("open");
                for n in 0..per_thread {
                    let eid = id(t * 10_000 + n);
                    store
                        .insert_execution(&execution(&eid, "w", ExecutionStatus::Running))
                        .expect("insert");
                    store
                        .upsert_step(&step(&eid, "1", StepStatus::Passed))
                        .expect("step");
                    store
                        .save_workflow("shared", &format!("t{t} n{n}"), None, &BTreeMap::new())
                        .expect("save");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    let store = Store::open(path.as_path()).unwrap();
    let all = store
        .list_executions(&ExecutionFilter {
            limit: 1000,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.len(), 2 * per_thread as usize);
    for e in &all {
        assert_eq!(store.steps(&e.id).unwrap().len(), 1);
    }
    // Every save made a distinct version: no two writers took the same number.
    let latest = store.get_workflow("shared", None).unwrap().unwrap();
    assert_eq!(latest.version, 2 * per_thread);
}

#[test]
fn an_older_schema_is_upgraded_keeping_its_data() {
    for from in 0..SCHEMA_VERSION {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            for m in &MIGRATIONS[..from as usize] {
                conn.execute_batch(m.sql).unwrap();
            }
            conn.pragma_update(None, "user_version", from).unwrap();
            if from >= 1 {
                conn.execute(
                    "INSERT INTO executions (id, workflow, workflow_version, snapshot, config,
                         trigger, status, created_at)
                     VALUES ('01JOLD', 'w', 1, 'yaml', '{}', 'cli', 'running', 5)",
                    [],
                )
                .unwrap();
            }
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.schema_version().unwrap(),
            SCHEMA_VERSION,
            "from {from}"
        );
        if from >= 1 {
            let old = store.get_execution("01JOLD").unwrap().unwrap();
            assert_eq!(old.status, ExecutionStatus::Running);
            assert_eq!(old.trigger, Trigger::Cli);
        }
        // The upgraded database works in full.
        store
            .insert_execution(&execution(&id(1), "w", ExecutionStatus::Queued))
            .unwrap();
        assert_eq!(
            store.active_executions().unwrap().len(),
            1 + usize::from(from >= 1)
        );
    }
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    let err = Store::open(&path).unwrap_err();
    match &err {
        Error::SchemaTooNew { found, supported } => {
            assert_eq!((*found, *supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    assert!(err.to_string().contains("upgrade testloop"), "{err}");
    // Refusing changed nothing.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION + 1);
}

#[test]
fn corrupt_stored_values_are_reported_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = Store::open(&path).unwrap();
    store
        .insert_execution(&execution(&id(1), "w", ExecutionStatus::Queued))
        .unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE executions SET status = 'exploded'", [])
        .unwrap();
    let err = store.get_execution(&id(1)).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("status"), "{err}");
}

#[test]
fn listing_is_capped_at_the_list_limit() {
    use testloop_orchestrator::store::MAX_LIST_LIMIT;
    let (_dir, store) = open();
    for i in 0..=MAX_LIST_LIMIT {
        let id = format!("01LIMIT{i:019}");
        store
            .insert_execution(&execution(&id, "many", ExecutionStatus::Passed))
            .unwrap();
    }
    let at_limit = store
        .list_executions(&ExecutionFilter {
            limit: MAX_LIST_LIMIT,
            ..ExecutionFilter::default()
        })
        .unwrap();
    assert_eq!(at_limit.len(), MAX_LIST_LIMIT);
    let over = store
        .list_executions(&ExecutionFilter {
            limit: MAX_LIST_LIMIT + 1,
            ..ExecutionFilter::default()
        })
        .unwrap();
    assert_eq!(over.len(), MAX_LIST_LIMIT, "a larger limit is clamped");
}

#[test]
fn a_write_waits_for_another_process_holding_the_database() {
    let (dir, store) = open();
    let path = dir.path().join("nested/dir/testloop.db");
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let released = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        other.execute_batch("COMMIT").unwrap();
    });
    let started = std::time::Instant::now();
    store
        .insert_execution(&execution("01WAIT", "w", ExecutionStatus::Running))
        .expect("the write succeeds once the other writer is done");
    assert!(started.elapsed() >= std::time::Duration::from_millis(250));
    released.join().unwrap();
}

fn case(suite: &str, name: &str, status: TestStatus) -> TestCase {
    TestCase {
        suite: suite.into(),
        class: None,
        name: name.into(),
        status,
        duration_ms: Some(12),
        message: status.is_failure().then(|| format!("{name} broke")),
        failure_type: None,
        file: status.is_failure().then(|| "src/lib.rs".to_owned()),
        line: status.is_failure().then_some(10),
        details: None,
    }
}

#[test]
fn test_results_are_recorded_counted_and_listed_failures_first() {
    let (_dir, store) = open();
    let id = "01JTEST0000000000000000000";
    store
        .insert_execution(&execution(id, "w", ExecutionStatus::Failed))
        .unwrap();
    let source = |case: TestCase| SourcedTestCase {
        source: "data/junit.xml".into(),
        case,
    };
    let cases = vec![
        source(case("s", "a", TestStatus::Passed)),
        source(case("s", "b", TestStatus::Failed)),
        source(case("s", "c", TestStatus::Skipped)),
        source(case("t", "d", TestStatus::Error)),
        source(case("t", "e", TestStatus::Passed)),
    ];
    let reports = vec![TestReport {
        source: "data/junit.xml".into(),
        kind: ReportKind::Junit,
        runner: None,
        cases: cases.len(),
        problem: None,
        runner_counts: None,
    }];
    store.record_test_results(id, &reports, &cases).unwrap();
    assert_eq!(store.test_reports(id).unwrap(), reports);
    let counts = store.test_counts(id).unwrap();
    assert_eq!(
        (
            counts.total,
            counts.passed,
            counts.failed,
            counts.error,
            counts.skipped
        ),
        (5, 2, 1, 1, 1)
    );
    let names = |filter: &TestCaseFilter| {
        store
            .test_cases(id, filter)
            .unwrap()
            .into_iter()
            .map(|stored| stored.case.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&TestCaseFilter::default()), ["b", "d", "a", "c", "e"]);
    let page = TestCaseFilter {
        limit: 2,
        offset: 1,
        ..Default::default()
    };
    assert_eq!(names(&page), ["d", "a"]);
    let failed = TestCaseFilter {
        statuses: vec![TestStatus::Failed, TestStatus::Error],
        ..Default::default()
    };
    assert_eq!(names(&failed), ["b", "d"]);
    let by_name = TestCaseFilter {
        name_contains: Some("T :: E".into()),
        ..Default::default()
    };
    assert_eq!(names(&by_name), ["e"]);
    let stored = store.test_cases(id, &failed).unwrap();
    assert_eq!(stored[0].case, cases[1].case, "every field round-trips");
    assert_eq!(stored[0].seq, 1);

    // Recording again replaces.
    store
        .record_test_results(id, &reports[..0], &cases[..1])
        .unwrap();
    assert_eq!(store.test_counts(id).unwrap().total, 1);
    assert!(store.test_reports(id).unwrap().is_empty());
}

#[test]
fn a_scanned_log_counts_passed_and_skipped_tests_from_its_runner_summary() {
    let (_dir, store) = open();
    let id = "01JTEST0000000000000000001";
    store
        .insert_execution(&execution(id, "w", ExecutionStatus::Failed))
        .unwrap();
    let cases = vec![SourcedTestCase {
        source: "log:1".into(),
        case: case("s", "broken", TestStatus::Failed),
    }];
    let report = TestReport {
        source: "log:1".into(),
        kind: ReportKind::Log,
        runner: Some("cargo".into()),
        cases: 1,
        problem: None,
        runner_counts: Some(testloop_orchestrator::results::logscan::Counts {
            passed: 41,
            failed: 1,
            skipped: 2,
        }),
    };
    store
        .record_test_results(id, std::slice::from_ref(&report), &cases)
        .unwrap();
    assert_eq!(store.test_reports(id).unwrap(), [report]);
    let counts = store.test_counts(id).unwrap();
    assert_eq!(
        (
            counts.total,
            counts.passed,
            counts.failed,
            counts.error,
            counts.skipped
        ),
        (44, 41, 1, 0, 2)
    );
}
