//! The local executor's own behaviours: sandbox modes, signals, process groups, what a step leaves
//! on disk. What every backend must do alike is in `tests/tests/semantics` (run on each backend).

mod support;

use std::time::Duration;

use testloop_orchestrator::execution::{ExecutionStatus, StepStatus};
use testloop_orchestrator::executor::sandbox::SandboxMode;
use testloop_orchestrator::plan::PlanError;
use testloop_orchestrator::run::Error;

use support::{run, run_with, workflow};

#[tokio::test]
async fn the_rewrite_fallback_maps_data_without_namespaces() {
    let done = run_with(
        &workflow(
            "rewrite",
            "content:\n  files:\n  - {path: /data/in.txt, content: fallback}\nsteps:\n- workingDir: /data/sub\n  shell: cat /data/in.txt && echo && test \"$(pwd)\" = \"$TESTLOOP_WORKSPACE/sub\" && echo ok",
        ),
        &[],
        SandboxMode::None,
    )
    .await;
    assert_eq!(
        done.record.status,
        ExecutionStatus::Passed,
        "{:?}",
        done.log("1")
    );
    assert_eq!(done.output("1"), vec!["fallback", "ok"]);
}

#[tokio::test]
async fn the_per_step_bubblewrap_mode_maps_data() {
    if std::process::Command::new("bwrap")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("bubblewrap is not installed: .ci/run installs it; skipping this mode here");
        return;
    }
    let done = run_with(
        &workflow(
            "bwrap",
            "content:\n  files:\n  - {path: /data/in.txt, content: bwrap}\nsteps:\n- shell: cat /data/in.txt && echo && pwd",
        ),
        &[],
        SandboxMode::Bwrap,
    )
    .await;
    assert_eq!(
        done.record.status,
        ExecutionStatus::Passed,
        "{:?}",
        done.log("1")
    );
    assert_eq!(done.output("1"), vec!["bwrap", "/data"]);
}

#[tokio::test]
async fn unsupported_features_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let orchestrator = support::open(&dir, SandboxMode::Auto);
    let name = support::save(
        &orchestrator,
        &workflow(
            "parallel",
            "steps:\n- name: shards\n  parallel:\n    count: 2\n    shell: echo {{ index }}",
        ),
    );
    let error = support::start(&orchestrator, &name, &[])
        .err()
        .expect("refused");
    match error {
        Error::Plan(PlanError::Unsupported { path, .. }) => {
            assert_eq!(path, "spec.steps[0].parallel")
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(error_text(&orchestrator, "parallel").contains("not supported yet by this executor"));
    assert!(
        orchestrator
            .executions(&Default::default())
            .unwrap()
            .is_empty()
    );
}

fn error_text(orchestrator: &testloop_orchestrator::Orchestrator, workflow: &str) -> String {
    support::start(orchestrator, workflow, &[])
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn config_values_are_checked_against_their_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let orchestrator = support::open(&dir, SandboxMode::Auto);
    let name = support::save(
        &orchestrator,
        &workflow(
            "typed",
            "config:\n  workers: {type: integer, default: 2, minimum: 1, maximum: 8}\n  env: {type: string, enum: [dev, prod]}\nsteps:\n- shell: echo {{ config.workers }}",
        ),
    );
    let start = |pairs: &[(&str, &str)]| {
        support::start(&orchestrator, &name, pairs)
            .err()
            .map(|error| error.to_string())
    };
    assert_eq!(
        start(&[]).unwrap(),
        "config.env: required, and has no default: pass --set env=VALUE"
    );
    assert!(
        start(&[("env", "qa")])
            .unwrap()
            .contains("not one of the allowed values")
    );
    assert_eq!(
        start(&[("env", "dev"), ("workers", "two")]).unwrap(),
        "config.workers: expected an integer, got `two`"
    );
    assert!(
        start(&[("env", "dev"), ("workers", "9")])
            .unwrap()
            .contains("above maximum 8")
    );
    assert!(
        start(&[("env", "dev"), ("wrkers", "2")])
            .unwrap()
            .contains("unknown parameter; this workflow declares: env, workers")
    );
}

#[tokio::test]
async fn a_step_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let done = run(&workflow(
        "stubborn",
        "steps:\n- timeout: 500ms\n  shell: |\n    trap 'echo got-term' TERM\n    echo waiting\n    while true; do sleep 0.05 || true; done",
    ))
    .await;
    let step = done.step("1");
    assert_eq!(step.status, StepStatus::TimedOut);
    let elapsed =
        Duration::from_micros((step.finished_at.unwrap() - step.started_at.unwrap()) as u64);
    let grace = testloop_orchestrator::executor::local::TERMINATE_GRACE;
    assert!(
        elapsed >= grace,
        "killed before the grace period: {elapsed:?}"
    );
    assert!(elapsed < grace + Duration::from_secs(5), "took {elapsed:?}");
    let output = done.output("1");
    assert_eq!(output[0], "waiting");
    assert!(output.contains(&"got-term".to_owned()), "{output:?}");
}

#[tokio::test]
async fn a_polite_step_stops_on_sigterm_and_its_last_words_are_kept() {
    let done = run(&workflow(
        "polite",
        "steps:\n- timeout: 300ms\n  shell: |\n    trap 'echo cleaning-up; exit 143' TERM\n    while true; do sleep 0.05; done",
    ))
    .await;
    let step = done.step("1");
    assert_eq!(step.status, StepStatus::TimedOut);
    let elapsed =
        Duration::from_micros((step.finished_at.unwrap() - step.started_at.unwrap()) as u64);
    assert!(
        elapsed < testloop_orchestrator::executor::local::TERMINATE_GRACE,
        "{elapsed:?}"
    );
    // The shell reports its sleep's SIGTERM ("Terminated") before running the trap.
    assert_eq!(
        done.output("1").last().map(String::as_str),
        Some("cleaning-up")
    );
}

#[tokio::test]
async fn output_held_open_by_an_escaped_process_does_not_hang_the_step() {
    // setsid puts the background process in a session of its own, out of the step's process
    // group: it keeps the output pipe open after the step's shell exits.
    let done = run(&workflow(
        "escaped",
        "steps:\n- shell: |\n    setsid sh -c 'sleep 5' &\n    sleep 0.2\n    echo main-done",
    ))
    .await;
    let step = done.step("1");
    assert_eq!(step.status, StepStatus::Passed);
    let elapsed =
        Duration::from_micros((step.finished_at.unwrap() - step.started_at.unwrap()) as u64);
    let drain = testloop_orchestrator::executor::local::DRAIN_AFTER_EXIT;
    assert!(
        elapsed >= drain && elapsed < drain + Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_eq!(done.output("1"), vec!["main-done"]);
}

#[tokio::test]
async fn a_step_that_prints_nothing_leaves_no_log_files() {
    let done = run(&workflow(
        "silent",
        "steps:\n- name: quiet\n  shell: \"true\"\n- name: loud\n  shell: echo spoke",
    ))
    .await;
    assert_eq!(done.record.status, ExecutionStatus::Passed);
    let logs = done.orchestrator.logs();
    assert!(matches!(
        logs.reader(&done.record.id, "1"),
        Err(testloop_orchestrator::logs::Error::NotFound { .. })
    ));
    assert_eq!(logs.steps(&done.record.id).unwrap(), vec!["2".to_owned()]);
    assert_eq!(done.output("2"), vec!["spoke"]);
}

#[tokio::test]
async fn a_running_step_is_recorded_as_running_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let orchestrator = support::open(&dir, SandboxMode::Auto);
    let name = support::save(
        &orchestrator,
        &workflow("long", "steps:\n- name: long\n  shell: sleep 30"),
    );
    let handle = support::start(&orchestrator, &name, &[]).unwrap();
    // Its start is written within START_RECORD_DELAY, so a crash would leave it `interrupted`.
    let deadline = std::time::Instant::now()
        + testloop_orchestrator::run::START_RECORD_DELAY
        + Duration::from_secs(5);
    loop {
        let (_, steps) = orchestrator.execution(&handle.id).unwrap();
        if steps
            .first()
            .is_some_and(|step| step.status == StepStatus::Running)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never recorded as running: {steps:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    orchestrator.abort(&handle.id);
    let record = tokio::time::timeout(Duration::from_secs(20), handle.done)
        .await
        .unwrap()
        .unwrap();
    let (_, steps) = orchestrator.execution(&record.id).unwrap();
    assert_eq!(
        steps[0].status,
        StepStatus::Aborted,
        "the end replaced the start"
    );
}
