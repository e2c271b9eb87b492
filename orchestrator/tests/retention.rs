//! Retention on real executions: what goes (rows, steps, test results, logs, artifacts), what
//! stays (running executions, each workflow's latest and latest passed), and when it applies.

mod support;

use std::time::Duration;

use support::{save, start, workflow};
use testloop_orchestrator::Orchestrator;
use testloop_orchestrator::execution::ExecutionStatus;
use testloop_orchestrator::executor::sandbox::SandboxMode;
use testloop_orchestrator::retention::Retention;
use testloop_orchestrator::run::OrchestratorConfig;
use testloop_orchestrator::store::ExecutionFilter;

fn open(dir: &tempfile::TempDir, retention: Retention) -> Orchestrator {
    let mut config = OrchestratorConfig::local(dir.path().to_path_buf(), SandboxMode::Auto);
    config.retention = retention;
    Orchestrator::open(config).expect("open")
}

/// Runs the saved workflow `name` with `config` to its end; its id.
async fn run(orchestrator: &Orchestrator, name: &str, config: &[(&str, &str)]) -> String {
    let handle = start(orchestrator, name, config).expect("start");
    let record = tokio::time::timeout(Duration::from_secs(60), handle.done)
        .await
        .expect("in time")
        .expect("task");
    record.id
}

/// Passes or fails as `config.outcome` says, leaving a log line and an artifact either way.
const FLIPPING: &str = "config:\n  outcome: {type: string, default: pass}\nsteps:\n- shell: |\n    echo run {{ config.outcome }}\n    mkdir -p /data/out && head -c 1000 /dev/zero > /data/out/blob\n    test {{ config.outcome }} = pass\n  artifacts:\n    paths: [/data/out/*]";

fn ids(orchestrator: &Orchestrator) -> Vec<String> {
    let mut ids: Vec<String> = orchestrator
        .executions(&ExecutionFilter {
            limit: 1000,
            ..ExecutionFilter::default()
        })
        .unwrap()
        .into_iter()
        .map(|execution| execution.id)
        .collect();
    ids.sort();
    ids
}

fn has_files(orchestrator: &Orchestrator, id: &str) -> (bool, bool) {
    (
        orchestrator.logs().execution_dir(id).unwrap().exists(),
        orchestrator.artifacts_dir(id).exists(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_limit_deletes_the_oldest_after_each_run_but_keeps_the_last_pass() {
    let dir = tempfile::tempdir().unwrap();
    let orchestrator = open(
        &dir,
        Retention {
            max_per_workflow: Some(2),
            ..Retention::default()
        },
    );
    let name = save(&orchestrator, &workflow("flipping", FLIPPING));
    let passed = run(&orchestrator, &name, &[]).await;
    assert_eq!(has_files(&orchestrator, &passed), (true, true));
    let mut failed = Vec::new();
    for _ in 0..3 {
        failed.push(run(&orchestrator, &name, &[("outcome", "fail")]).await);
    }
    // Two latest (the last two failures), plus the latest that passed.
    assert_eq!(
        ids(&orchestrator),
        vec![passed.clone(), failed[1].clone(), failed[2].clone()]
    );
    let gone = &failed[0];
    assert_eq!(has_files(&orchestrator, gone), (false, false));
    assert!(
        orchestrator.execution(gone).is_err(),
        "its row is gone with it"
    );
    // Its steps and test results went with the row (the foreign keys cascade).
    let steps = orchestrator.store().steps(gone).unwrap();
    assert!(steps.is_empty(), "{steps:?}");
    assert_eq!(has_files(&orchestrator, &passed), (true, true));
    assert_eq!(
        orchestrator.execution(&passed).unwrap().0.status,
        ExecutionStatus::Passed
    );
    // The last pass stays the baseline of a diff.
    let diff = orchestrator
        .diff(&failed[2], testloop_orchestrator::run::Baseline::LastPassed)
        .unwrap();
    assert_eq!(diff.base.id, passed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byte_limit_deletes_the_oldest_until_under_it_and_a_dry_run_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let orchestrator = open(&dir, Retention::default());
    let name = save(&orchestrator, &workflow("flipping", FLIPPING));
    let mut all = Vec::new();
    for _ in 0..4 {
        all.push(run(&orchestrator, &name, &[("outcome", "fail")]).await);
    }
    let sizes: Vec<u64> = all
        .iter()
        .map(|id| {
            testloop_orchestrator::retention::dir_size(
                &orchestrator.logs().execution_dir(id).unwrap(),
            ) + testloop_orchestrator::retention::dir_size(&orchestrator.artifacts_dir(id))
        })
        .collect();
    assert!(sizes.iter().all(|size| *size >= 1000), "{sizes:?}");
    // Room for the two newest only.
    let policy = Retention {
        max_bytes: Some(sizes[2] + sizes[3]),
        ..Retention::default()
    };
    let planned = orchestrator.prune_plan(&policy).unwrap();
    assert_eq!(planned.executions, all[..2]);
    assert_eq!(planned.bytes, sizes[0] + sizes[1]);
    assert_eq!(ids(&orchestrator), all, "a plan deletes nothing");
    let pruned = orchestrator.prune_with(&policy).unwrap();
    assert_eq!(pruned, planned);
    assert_eq!(ids(&orchestrator), all[2..]);
    assert_eq!(has_files(&orchestrator, &all[0]), (false, false));
    assert_eq!(has_files(&orchestrator, &all[3]), (true, true));
    // Nothing more to do: a second pass deletes nothing.
    assert!(
        orchestrator
            .prune_with(&policy)
            .unwrap()
            .executions
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_applies_the_limits_and_running_executions_are_never_touched() {
    let dir = tempfile::tempdir().unwrap();
    let orchestrator = open(&dir, Retention::default());
    let flipping = save(&orchestrator, &workflow("flipping", FLIPPING));
    let slow = save(
        &orchestrator,
        &workflow("slow", "steps:\n- shell: sleep 0.1\n- shell: sleep 30"),
    );
    let old = run(&orchestrator, &flipping, &[("outcome", "fail")]).await;
    let newest = run(&orchestrator, &flipping, &[("outcome", "fail")]).await;
    let running = start(&orchestrator, &slow, &[]).unwrap();
    // Another process opening the directory with a limit: what it applies at once.
    let limited = open(
        &dir,
        Retention {
            max_per_workflow: Some(1),
            max_age: Some(Duration::ZERO),
            ..Retention::default()
        },
    );
    let left = ids(&limited);
    assert!(!left.contains(&old), "{left:?}");
    assert!(
        left.contains(&newest),
        "a workflow's latest stays, however old"
    );
    assert!(left.contains(&running.id), "a running execution stays");
    assert!(orchestrator.abort(&running.id));
    let _ = running.done.await;
}
