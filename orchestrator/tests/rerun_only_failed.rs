//! `rerun(..., only_failed = true)`: steps that passed are skipped, setup and after still run,
//! failed and never-run steps run again.

mod support;

use std::time::Duration;

use support::*;
use testloop_orchestrator::execution::{ExecutionStatus, StepStatus, Trigger};

async fn finish(
    orchestrator: &testloop_orchestrator::Orchestrator,
    handle: testloop_orchestrator::run::RunHandle,
) -> (
    testloop_orchestrator::execution::ExecutionRecord,
    Vec<testloop_orchestrator::execution::StepRecord>,
) {
    let record = tokio::time::timeout(Duration::from_secs(60), handle.done)
        .await
        .expect("finished in time")
        .expect("execution task");
    orchestrator.execution(&record.id).expect("read back")
}

#[tokio::test]
async fn only_failed_reruns_what_did_not_pass() {
    let dir = tempfile::tempdir().unwrap();
    let counters = tempfile::tempdir().unwrap();
    let orchestrator = open(
        &dir,
        testloop_orchestrator::executor::sandbox::SandboxMode::Auto,
    );
    // `flaky` fails on its first run and passes after; every step counts its runs in a file.
    let yaml = workflow(
        "partial",
        &format!(
            r#"config:
  counters:
    type: string
    default: {counters}
setup:
- name: prepare
  shell: echo x >> {{{{ config.counters }}}}/setup
steps:
- name: build
  shell: echo x >> {{{{ config.counters }}}}/build
- name: flaky
  shell: |
    echo x >> {{{{ config.counters }}}}/flaky
    test "$(wc -l < {{{{ config.counters }}}}/flaky)" -gt 1
- name: later
  shell: echo x >> {{{{ config.counters }}}}/later
after:
- name: cleanup
  shell: echo x >> {{{{ config.counters }}}}/after"#,
            counters = counters.path().display()
        ),
    );
    let name = save(&orchestrator, &yaml);
    let first = start(&orchestrator, &name, &[]).unwrap();
    let (first, steps) = finish(&orchestrator, first).await;
    assert_eq!(first.status, ExecutionStatus::Failed);
    let status = |steps: &[testloop_orchestrator::execution::StepRecord], path: &str| {
        steps.iter().find(|s| s.path == path).unwrap().status
    };
    assert_eq!(status(&steps, "1"), StepStatus::Passed);
    assert_eq!(status(&steps, "2"), StepStatus::Failed);
    assert_eq!(status(&steps, "3"), StepStatus::Skipped);

    let again = orchestrator.rerun(&first.id, Trigger::Cli, true).unwrap();
    let (again, steps) = finish(&orchestrator, again).await;
    assert_eq!(again.status, ExecutionStatus::Passed, "{steps:#?}");
    assert!(again.only_failed);
    assert_eq!(again.rerun_of.as_deref(), Some(first.id.as_str()));
    let build = steps.iter().find(|s| s.path == "1").unwrap();
    assert_eq!(build.status, StepStatus::Skipped);
    assert!(
        build.message.as_deref().unwrap().contains(&first.id),
        "{build:?}"
    );
    assert_eq!(status(&steps, "2"), StepStatus::Passed);
    assert_eq!(status(&steps, "3"), StepStatus::Passed);

    let runs = |file: &str| {
        std::fs::read_to_string(counters.path().join(file))
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert_eq!(runs("setup"), 2, "setup runs in the re-run too");
    assert_eq!(runs("build"), 1, "a passed step is not run again");
    assert_eq!(runs("flaky"), 2);
    assert_eq!(runs("later"), 1, "a step that never ran runs in the re-run");
    assert_eq!(runs("after"), 2);

    // A full re-run runs everything.
    let full = orchestrator.rerun(&again.id, Trigger::Cli, false).unwrap();
    let (full, _) = finish(&orchestrator, full).await;
    assert!(!full.only_failed);
    assert_eq!(runs("build"), 2);
}

#[tokio::test]
async fn only_failed_refuses_a_running_execution() {
    let dir = tempfile::tempdir().unwrap();
    let orchestrator = open(
        &dir,
        testloop_orchestrator::executor::sandbox::SandboxMode::Auto,
    );
    let name = save(
        &orchestrator,
        &workflow("slow", "steps:\n- name: wait\n  shell: sleep 30"),
    );
    let handle = start(&orchestrator, &name, &[]).unwrap();
    let error = match orchestrator.rerun(&handle.id, Trigger::Cli, true) {
        Ok(_) => panic!("a running execution was re-run with only_failed"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("still running"), "{error}");
    assert!(orchestrator.abort(&handle.id));
    let _ = handle.done.await;
}

#[test]
fn failed_tests_reach_a_shell_script_as_separately_quoted_words() {
    use testloop_orchestrator::executor::Command;
    use testloop_orchestrator::plan::{ExecutionVars, plan};
    let yaml = workflow(
        "names",
        "steps:\n- name: retest\n  shell: pytest {{ shellquote(execution.failed_tests) }} -k \"{{ join(execution.failed_tests, ' or ') }}\"",
    );
    let parsed = testloop_orchestrator::spec::parse(&yaml).unwrap();
    let workflow = &parsed[0].workflow;
    let failed = vec!["tests/a.py::test_x".to_owned(), "it's; rm -rf ~".to_owned()];
    let planned = plan(
        workflow,
        &Default::default(),
        ExecutionVars {
            id: "X",
            failed_tests: &failed,
            executor: Default::default(),
        },
    )
    .unwrap();
    let Some(action) = &planned.steps[0].action else {
        panic!("no action")
    };
    let Command::Shell(script) = &action.command else {
        panic!("not a shell step")
    };
    assert_eq!(
        script,
        r#"pytest tests/a.py::test_x 'it'\''s; rm -rf ~' -k "tests/a.py::test_x or it's; rm -rf ~""#
    );

    // Not a re-run: the list is empty and the command runs every test.
    let planned = plan(workflow, &Default::default(), ExecutionVars::new("X")).unwrap();
    let Some(action) = &planned.steps[0].action else {
        panic!("no action")
    };
    assert_eq!(action.command, Command::Shell("pytest  -k \"\"".to_owned()));
}
