//! What every executor must do the same way: the behaviours of a workflow's steps, written once
//! and run on each backend (see `semantics.rs`).

use std::path::Path;
use std::time::Duration;

use testloop_orchestrator::execution::{ExecutionStatus, StepStatus};

use super::backend::{self, Backend, process_is_gone, workflow};

pub async fn a_passing_step_records_exit_code_output_and_timestamps(b: &Backend) {
    let done = b
        .run(&workflow(
            "pass",
            "steps:\n- name: Say hi\n  shell: echo hi; echo there",
        ))
        .await;
    assert_eq!(done.record.status, ExecutionStatus::Passed);
    let step = done.step("1");
    assert_eq!(step.name, "Say hi");
    assert_eq!(step.status, StepStatus::Passed);
    assert_eq!(step.exit_code, Some(0));
    assert_eq!(step.attempts, 1);
    assert!(step.started_at.is_some() && step.finished_at >= step.started_at);
    assert_eq!(done.output("1"), vec!["hi", "there"]);
    let reader = done
        .orchestrator
        .logs()
        .reader(&done.record.id, "1")
        .unwrap();
    let lines = reader.lines(1..3).unwrap();
    assert!(lines[0].timestamp >= step.started_at.unwrap());
    assert_eq!(lines[1].number, 2);
}

pub async fn a_failing_step_skips_what_follows_but_not_after_steps(b: &Backend) {
    let done = b.run(&workflow(
        "fail",
        "steps:\n- shell: exit 7\n- name: next\n  shell: echo never\nafter:\n- name: cleanup\n  shell: echo cleaned",
    ))
    .await;
    assert_eq!(done.record.status, ExecutionStatus::Failed);
    assert_eq!(done.step("1").status, StepStatus::Failed);
    assert_eq!(done.step("1").exit_code, Some(7));
    assert_eq!(
        done.step("1").message.as_deref(),
        Some("exited with code 7")
    );
    assert_eq!(done.status("2"), StepStatus::Skipped);
    assert!(
        done.step("2")
            .message
            .as_deref()
            .unwrap()
            .contains("passed")
    );
    assert_eq!(done.status("after/1"), StepStatus::Passed);
    assert_eq!(done.output("after/1"), vec!["cleaned"]);
}

pub async fn conditions_see_whether_anything_failed_so_far(b: &Backend) {
    let done = b
        .run(&workflow(
            "conditions",
            "config:\n  mode: {type: string, default: ci}\nsteps:\n\
- shell: echo ok\n\
- condition: failed\n  shell: echo not-yet\n\
- shell: exit 1\n\
- condition: always\n  shell: echo always\n\
- condition: failed\n  shell: echo on-failure\n\
- condition: passed\n  shell: echo never\n\
- condition: \"failed && config.mode == 'ci'\"\n  shell: echo ci-failure\n\
- condition: \"failed && config.mode == 'local'\"\n  shell: echo local-failure",
        ))
        .await;
    let statuses: Vec<StepStatus> = (1..=8).map(|i| done.status(&i.to_string())).collect();
    use StepStatus::*;
    assert_eq!(
        statuses,
        vec![
            Passed, Skipped, Failed, Passed, Passed, Skipped, Passed, Skipped
        ]
    );
    assert_eq!(done.output("7"), vec!["ci-failure"]);
}

pub async fn optional_failures_do_not_fail_the_execution(b: &Backend) {
    let done = b
        .run(&workflow(
            "optional",
            "steps:\n- optional: true\n  shell: exit 3\n- shell: echo still-running",
        ))
        .await;
    assert_eq!(done.record.status, ExecutionStatus::Passed);
    assert_eq!(done.status("1"), StepStatus::Failed);
    assert_eq!(done.status("2"), StepStatus::Passed);
}

pub async fn negative_steps_pass_on_failure_and_fail_on_success(b: &Backend) {
    let done = b.run(&workflow(
        "negative",
        "steps:\n- negative: true\n  shell: exit 2\n- negative: true\n  optional: true\n  shell: \"true\"",
    ))
    .await;
    assert_eq!(done.status("1"), StepStatus::Passed);
    assert_eq!(done.step("1").exit_code, Some(2));
    assert_eq!(done.status("2"), StepStatus::Failed);
    assert!(
        done.step("2")
            .message
            .as_deref()
            .unwrap()
            .contains("negative")
    );
    assert_eq!(done.record.status, ExecutionStatus::Passed);
}

pub async fn retry_runs_again_until_the_step_passes(b: &Backend) {
    let done = b.run(&workflow(
        "retry",
        "steps:\n- retry: {count: 5}\n  shell: |\n    n=$(cat /data/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/n\n    echo attempt $n\n    [ $n -ge 3 ]",
    ))
    .await;
    assert_eq!(done.record.status, ExecutionStatus::Passed);
    assert_eq!(done.step("1").attempts, 3);
    assert_eq!(
        done.output("1"),
        vec!["attempt 1", "attempt 2", "attempt 3"]
    );
    assert!(
        done.log("1")
            .iter()
            .any(|line| line.contains("attempt 2 of 6"))
    );
}

pub async fn retry_gives_up_after_count_more_attempts(b: &Backend) {
    let done = b
        .run(&workflow(
            "retry-exhausted",
            "steps:\n- retry: {count: 2}\n  shell: echo try; exit 4",
        ))
        .await;
    assert_eq!(done.status("1"), StepStatus::Failed);
    assert_eq!(done.step("1").attempts, 3);
    assert_eq!(done.output("1"), vec!["try", "try", "try"]);
}

pub async fn retry_stops_when_until_holds(b: &Backend) {
    // `until: failed` stops retrying at once: the first failure satisfies it.
    let done = b
        .run(&workflow(
            "retry-until",
            "steps:\n- retry: {count: 4, until: failed}\n  shell: echo try; exit 1",
        ))
        .await;
    assert_eq!(done.step("1").attempts, 1);
}

pub async fn timeout_kills_the_whole_process_group(b: &Backend) {
    let done = b.run(&workflow(
        "timeout",
        "steps:\n- timeout: 1s\n  shell: |\n    sleep 60 &\n    echo $! > /data/grandchild\n    echo started\n    sleep 60\nafter:\n- shell: cat /data/grandchild",
    ))
    .await;
    assert_eq!(done.record.status, ExecutionStatus::Failed);
    let step = done.step("1");
    assert_eq!(step.status, StepStatus::TimedOut);
    assert_eq!(step.message.as_deref(), Some("timed out after 1.0s"));
    let elapsed = step.finished_at.unwrap() - step.started_at.unwrap();
    assert!(elapsed < 10_000_000, "took {elapsed}µs");
    assert_eq!(done.output("1"), vec!["started"]);
    let pid: i32 = done.output("after/1")[0].trim().parse().unwrap();
    if b.shares_pids() {
        assert!(
            process_is_gone(pid),
            "grandchild {pid} survived the timeout"
        );
    }
}

pub async fn abort_stops_the_running_step_and_skips_the_rest(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let orchestrator = b.open(&dir).await;
    let name = backend::save(
        &orchestrator,
        &workflow(
            "abort",
            "steps:\n- shell: |\n    sleep 60 &\n    echo $! > /data/grandchild\n    cp /data/grandchild /tmp/testloop-abort-$TESTLOOP_TEST_ID\n    sleep 60\n  run:\n    env:\n    - {name: TESTLOOP_TEST_ID, value: \"{{ execution.id }}\"}\n- shell: echo never\nafter:\n- shell: echo never-either",
        ),
    );
    let handle = backend::start(&orchestrator, &name, &[]).unwrap();
    let marker = format!("/tmp/testloop-abort-{}", handle.id);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !Path::new(&marker).exists() {
        assert!(std::time::Instant::now() < deadline, "step never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid: i32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = std::fs::remove_file(&marker);
    assert!(orchestrator.abort(&handle.id));
    let record = tokio::time::timeout(Duration::from_secs(20), handle.done)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, ExecutionStatus::Aborted);
    let (_, steps) = orchestrator.execution(&record.id).unwrap();
    let status = |path: &str| steps.iter().find(|s| s.path == path).unwrap().status;
    assert_eq!(status("1"), StepStatus::Aborted);
    assert_eq!(status("2"), StepStatus::Skipped);
    assert_eq!(status("after/1"), StepStatus::Skipped);
    if b.shares_pids() {
        assert!(process_is_gone(pid), "grandchild {pid} survived the abort");
    }
    assert!(
        !orchestrator.abort(&record.id),
        "a finished execution cannot be aborted"
    );
}

pub async fn the_execution_deadline_times_the_execution_out(b: &Backend) {
    let done = b
        .run(&workflow(
            "deadline",
            "job:\n  activeDeadlineSeconds: 1\nsteps:\n- shell: sleep 30\n- shell: echo never",
        ))
        .await;
    assert_eq!(done.record.status, ExecutionStatus::TimedOut);
    assert_eq!(done.status("1"), StepStatus::TimedOut);
    assert_eq!(done.status("2"), StepStatus::Skipped);
}

pub async fn content_files_are_written_under_data_before_the_steps(b: &Backend) {
    let host_data_existed = Path::new("/data").exists();
    let done = b.run(&workflow(
        "files",
        "content:\n  files:\n  - path: /data/scripts/check.sh\n    content: |\n      echo from-script\n    mode: 0755\n  - path: notes.txt\n    content: relative to /data\nsteps:\n- shell: /data/scripts/check.sh && cat /data/notes.txt && echo && pwd",
    ))
    .await;
    assert_eq!(
        done.record.status,
        ExecutionStatus::Passed,
        "{:?}",
        done.log("1")
    );
    assert_eq!(
        done.output("1"),
        vec![
            "from-script".to_owned(),
            "relative to /data".to_owned(),
            done.data_path.clone()
        ]
    );
    if !host_data_existed {
        assert!(!Path::new("/data").exists(), "the host's /data was created");
    }
}

pub async fn workspaces_are_private_to_each_execution(b: &Backend) {
    let yaml = workflow(
        "private",
        "steps:\n- shell: |\n    [ ! -e /data/marker ]\n    touch /data/marker",
    );
    let first = b.run(&yaml).await;
    let second = b.run(&yaml).await;
    assert_eq!(first.record.status, ExecutionStatus::Passed);
    assert_eq!(second.record.status, ExecutionStatus::Passed);
}

pub async fn environment_layers_override_in_order(b: &Backend) {
    let done = b.run(&workflow(
        "env",
        "container:\n  env:\n  - {name: A, value: spec}\n  - {name: B, value: spec}\n  - {name: C, value: spec}\nsteps:\n- container:\n    env:\n    - {name: B, value: step}\n    - {name: C, value: step}\n  run:\n    env:\n    - {name: C, value: run}\n    shell: echo $A $B $C; echo \"$HOME\" | grep -q / && echo home-inherited",
    ))
    .await;
    assert_eq!(done.output("1"), vec!["spec step run", "home-inherited"]);
}

pub async fn stdout_and_stderr_keep_their_order(b: &Backend) {
    let done = b.run(&workflow(
        "order",
        "steps:\n- shell: |\n    echo out1\n    echo err1 >&2\n    echo out2\n    echo err2 >&2\n    printf 'no-newline'",
    ))
    .await;
    assert_eq!(
        done.output("1"),
        vec!["out1", "err1", "out2", "err2", "no-newline"]
    );
}

pub async fn nested_steps_see_their_parent_fail(b: &Backend) {
    let done = b.run(&workflow(
        "nested",
        "steps:\n- name: group\n  shell: exit 1\n  steps:\n  - shell: echo child\n  - condition: always\n    shell: echo child-always\n- name: group2\n  steps:\n  - shell: echo a\n  - optional: true\n    shell: exit 5\n  - shell: exit 6",
    ))
    .await;
    assert_eq!(done.status("1"), StepStatus::Failed);
    assert_eq!(done.status("1/1"), StepStatus::Skipped);
    assert_eq!(done.status("1/2"), StepStatus::Passed);
    // group2 keeps the default condition `passed`: step 1 failed, so it and its children are skipped.
    assert_eq!(done.status("2"), StepStatus::Skipped);
    assert_eq!(done.status("2/3"), StepStatus::Skipped);

    let done = b.run(&workflow(
        "nested2",
        "steps:\n- name: group\n  steps:\n  - shell: echo a\n  - optional: true\n    shell: exit 5\n  - shell: exit 6\n  - shell: echo never",
    ))
    .await;
    assert_eq!(done.status("1/1"), StepStatus::Passed);
    assert_eq!(done.status("1/2"), StepStatus::Failed);
    assert_eq!(done.status("1/3"), StepStatus::Failed);
    assert_eq!(done.status("1/4"), StepStatus::Skipped);
    assert_eq!(done.status("1"), StepStatus::Failed);
    assert_eq!(
        done.step("1").message.as_deref(),
        Some("a nested step failed")
    );
}

pub async fn artifacts_matching_the_paths_are_kept(b: &Backend) {
    let done = b.run(&workflow(
        "artifacts",
        "steps:\n- workingDir: /data/project\n  shell: |\n    mkdir -p target/reports/nested /data/artifacts\n    echo '<xml/>' > target/reports/a.xml\n    echo '<xml/>' > target/reports/nested/b.xml\n    echo log > target/reports/c.log\n    echo top > /data/artifacts/summary.json\n    exit 1\n  artifacts:\n    paths:\n    - 'target/reports/**/*.xml'\n    - /data/artifacts/*\n- name: save\n  condition: always\n  workingDir: /data/artifacts\n  artifacts:\n    paths: ['*']",
    ))
    .await;
    let store = done.orchestrator.artifacts_dir(&done.record.id);
    assert!(store.join("target/reports/a.xml").is_file());
    assert!(store.join("target/reports/nested/b.xml").is_file());
    assert!(!store.join("target/reports/c.log").exists());
    assert!(store.join("data/artifacts/summary.json").is_file());
    assert!(store.join("summary.json").is_file());
    assert!(
        done.log("1")
            .iter()
            .any(|line| line.contains("artifacts: 3 file(s)"))
    );
    assert_eq!(done.status("2"), StepStatus::Passed);
}

pub async fn exec_form_commands_run_without_a_shell(b: &Backend) {
    let done = b.run(&workflow(
        "exec",
        "config:\n  word: {type: string, default: \"$HOME; echo injected\"}\nsteps:\n- run:\n    command: [printf]\n    args: ['%s|', '{{ config.word }}', two]",
    ))
    .await;
    assert_eq!(done.output("1"), vec!["$HOME; echo injected|two|"]);
}

pub async fn config_values_stay_inert_in_every_shell_context(b: &Backend) {
    let value = "a'; touch /data/pwned; echo \"$(touch /data/pwned2)\" `touch /data/pwned3` #";
    let done = b.run_with(
        &workflow(
            "inert",
            "config:\n  v: {type: string}\nsteps:\n- shell: |\n    echo {{ config.v }}\n    echo '{{ config.v }}'\n    echo \"{{ config.v }}\"\n    ls /data",
        ),
        &[("v", value)],
    )
    .await;
    assert_eq!(
        done.record.status,
        ExecutionStatus::Passed,
        "{:?}",
        done.log("1")
    );
    // Without namespaces, `/data` inside values is rewritten like everywhere else: still text.
    let seen = value.replace("/data", &done.data_path);
    assert_eq!(done.output("1"), vec![seen.clone(), seen.clone(), seen]);
}

pub async fn a_process_killed_by_a_signal_fails_with_the_signal_named(b: &Backend) {
    let done = b
        .run(&workflow("signal", "steps:\n- shell: kill -KILL $$"))
        .await;
    assert_eq!(done.status("1"), StepStatus::Failed);
    assert_eq!(done.step("1").exit_code, None);
    assert_eq!(
        done.step("1").message.as_deref(),
        Some("killed by signal 9 (SIGKILL)")
    );
}

pub async fn a_missing_program_fails_the_step_with_the_reason(b: &Backend) {
    let done = b
        .run(&workflow(
            "missing",
            "steps:\n- run:\n    command: [/nonexistent/tool]\n    image: example/tool:1",
        ))
        .await;
    assert_eq!(done.status("1"), StepStatus::Failed);
    let log = done.log("1");
    if matches!(b, Backend::Local) {
        assert!(
            log.iter()
                .any(|line| line.contains("image example/tool:1 is not applied"))
        );
    }
    assert!(
        log.iter().any(|line| line.contains("/nonexistent/tool")),
        "{log:?}"
    );
}

pub async fn delay_waits_before_the_step(b: &Backend) {
    let done = b
        .run(&workflow(
            "delay",
            "steps:\n- delay: 300ms\n  shell: echo late",
        ))
        .await;
    let step = done.step("1");
    assert!(step.finished_at.unwrap() - step.started_at.unwrap() >= 300_000);
    assert_eq!(done.output("1"), vec!["late"]);
}
