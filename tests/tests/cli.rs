//! The `testloop` CLI as a user runs it: real binary, real data directory, real processes.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use testloop_tests::{execution_id, repo_root, run, testloop};

#[test]
fn the_readme_example_runs_and_passes() {
    let data = tempfile::tempdir().unwrap();
    let ran = run(data.path(), &["run", "examples/workflows/hello.yaml"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stdout.contains("Read the greeting"), "{ran:?}");
    assert!(
        ran.stdout.contains("[passed] 1 Read the greeting"),
        "{ran:?}"
    );
    assert!(
        ran.stdout.contains("[passed] after/1 Show the workspace"),
        "{ran:?}"
    );
    assert!(ran.stdout.contains("PASSED in"), "{ran:?}");
    let id = execution_id(&ran);

    let logs = run(data.path(), &["logs", &id, "--step", "1"]);
    assert_eq!(logs.code, Some(0), "{logs:?}");
    assert_eq!(logs.stdout.trim(), "hello from testloop");

    let listed = run(data.path(), &["executions"]);
    assert!(listed.stdout.contains(&id), "{listed:?}");
    assert!(listed.stdout.contains("hello@v1"), "{listed:?}");
    assert!(listed.stdout.contains("passed"), "{listed:?}");

    // Running it again by name uses the saved version.
    let again = run(data.path(), &["run", "hello"]);
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_ne!(execution_id(&again), id);
}

#[test]
fn a_failing_run_exits_non_zero_and_prints_the_failing_steps_last_lines() {
    let data = tempfile::tempdir().unwrap();
    let ran = run(data.path(), &["run", "examples/workflows/failing.yaml"]);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(ran.stdout.contains("[failed] 1 Unit tests"), "{ran:?}");
    assert!(ran.stdout.contains("exited with code 101"), "{ran:?}");
    assert!(ran.stdout.contains("[skipped] 2 Not reached"), "{ran:?}");
    assert!(
        ran.stdout.contains("[passed] after/1 Cleanup always runs"),
        "{ran:?}"
    );
    assert!(ran.stdout.contains("FAILED in"), "{ran:?}");
    let tail_start = ran.stdout.find("── last").expect("failure tail");
    let tail = &ran.stdout[tail_start..];
    assert!(tail.contains("assertion failed: left == right"), "{ran:?}");
    assert!(tail.contains("testloop logs"), "{ran:?}");

    let id = execution_id(&ran);
    let grep = run(
        data.path(),
        &[
            "logs",
            &id[..10],
            "--grep",
            "FAILED|assertion",
            "--context",
            "0",
        ],
    );
    assert_eq!(grep.code, Some(0), "{grep:?}");
    assert!(
        grep.stdout.contains("2: test parse_body ... FAILED"),
        "{grep:?}"
    );
    assert!(grep.stdout.contains("3: assertion failed"), "{grep:?}");
    assert!(!grep.stdout.contains("parse_header"), "{grep:?}");

    let failed = run(data.path(), &["executions", "--status", "failed"]);
    assert!(failed.stdout.contains(&id), "{failed:?}");
    let passed = run(data.path(), &["executions", "--status", "passed"]);
    assert!(!passed.stdout.contains(&id), "{passed:?}");
}

#[test]
fn every_example_workflow_validates_and_runs_as_documented() {
    let data = tempfile::tempdir().unwrap();
    for (file, expected) in [
        ("hello.yaml", 0),
        ("greet.yaml", 0),
        ("controls.yaml", 0),
        ("failing.yaml", 1),
    ] {
        let path = format!("examples/workflows/{file}");
        let valid = run(data.path(), &["validate", &path]);
        assert_eq!(valid.code, Some(0), "{file}: {valid:?}");
        let ran = run(data.path(), &["run", &path]);
        assert_eq!(ran.code, Some(expected), "{file}: {ran:?}");
    }
    let greeted = run(
        data.path(),
        &[
            "run",
            "examples/workflows/greet.yaml",
            "--set",
            "name=O'Brien; id",
            "--set",
            "times=2",
        ],
    );
    assert_eq!(greeted.code, Some(0), "{greeted:?}");
    let id = execution_id(&greeted);
    let logs = run(data.path(), &["logs", &id, "--step", "1"]);
    assert_eq!(logs.stdout, "Hello, O'Brien; id!\nHello, O'Brien; id!\n");
}

#[test]
fn the_testkube_reference_files_validate() {
    let examples = repo_root().join("../shared/examples/testkube");
    let data = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(&examples).expect("../shared/examples/testkube") {
        let path = entry.unwrap().path();
        let ran = run(data.path(), &["validate", path.to_str().unwrap()]);
        assert_eq!(ran.code, Some(0), "{}: {ran:?}", path.display());
        checked += 1;
    }
    assert_eq!(checked, 6);
}

#[test]
fn validate_reports_every_problem_with_its_place() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: Bad_Name\nspec:\n  steps:\n  - shell: echo hi\n    timeout: soon\n    colour: red\n",
    )
    .unwrap();
    let ran = run(data.path(), &["validate", file.to_str().unwrap()]);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    let shown = file.display().to_string();
    assert!(
        ran.stderr.contains(&format!("{shown}:4:9: metadata.name")),
        "{ran:?}"
    );
    assert!(
        ran.stderr
            .contains(&format!("{shown}:8:14: spec.steps[0].timeout")),
        "{ran:?}"
    );
    assert!(
        ran.stderr
            .contains(&format!("{shown}:9:5: spec.steps[0].colour")),
        "{ran:?}"
    );
    assert!(ran.stderr.contains("3 problem(s)"), "{ran:?}");

    let refused = run(data.path(), &["run", file.to_str().unwrap()]);
    assert_eq!(refused.code, Some(2), "{refused:?}");
}

#[test]
fn bad_arguments_get_clear_errors() {
    let data = tempfile::tempdir().unwrap();
    let missing = run(data.path(), &["run", "no-such-workflow"]);
    assert_eq!(missing.code, Some(2));
    assert!(
        missing
            .stderr
            .contains("no workflow named `no-such-workflow`"),
        "{missing:?}"
    );

    let bad_set = run(
        data.path(),
        &["run", "examples/workflows/greet.yaml", "--set", "oops"],
    );
    assert_eq!(bad_set.code, Some(2));
    assert!(bad_set.stderr.contains("expected KEY=VALUE"), "{bad_set:?}");

    let unknown = run(
        data.path(),
        &["run", "examples/workflows/greet.yaml", "--set", "nmae=x"],
    );
    assert_eq!(unknown.code, Some(2));
    assert!(
        unknown.stderr.contains("config.nmae: unknown parameter"),
        "{unknown:?}"
    );

    let no_execution = run(data.path(), &["logs", "01XYZ"]);
    assert_eq!(no_execution.code, Some(2));
    assert!(no_execution.stderr.contains("01XYZ"), "{no_execution:?}");
}

fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const LONG_RUNNING: &str = "apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata:
  name: long-running
spec:
  steps:
  - name: quick
    shell: echo first step done
  - name: slow
    shell: |
      i=0
      while true; do i=$((i+1)); echo \"line $i\"; sleep 0.02; done
";

fn log_lines(data_dir: &Path) -> usize {
    let logs = data_dir.join("logs");
    std::fs::read_dir(&logs)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|execution| {
            std::fs::read_dir(execution.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter(|file| file.path().extension().is_some_and(|ext| ext == "log"))
        .map(|file| {
            std::fs::read_to_string(file.path())
                .unwrap_or_default()
                .matches("line ")
                .count()
        })
        .sum()
}

#[test]
fn a_killed_runner_leaves_an_interrupted_execution_with_its_logs_intact() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("long.yaml");
    std::fs::write(&file, LONG_RUNNING).unwrap();
    let mut child = testloop(data.path())
        .args(["run", file.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        "log lines of the slow step",
        Duration::from_secs(30),
        || log_lines(data.path()) >= 20,
    );
    // SIGKILL: no chance to clean up.
    child.kill().unwrap();
    child.wait().unwrap();
    let flushed_before_restart = log_lines(data.path());

    let listed = run(data.path(), &["executions"]);
    assert!(listed.stdout.contains("interrupted"), "{listed:?}");
    let id = listed
        .stdout
        .lines()
        .nth(1)
        .and_then(|line| line.split_whitespace().next())
        .unwrap()
        .to_owned();

    let first = run(data.path(), &["logs", &id, "--step", "1"]);
    assert_eq!(first.stdout.trim(), "first step done", "{first:?}");
    let slow = run(data.path(), &["logs", &id, "--step", "2", "--all"]);
    let lines: Vec<&str> = slow.stdout.lines().collect();
    assert!(lines.len() >= 20, "{slow:?}");
    assert!(lines.len() >= flushed_before_restart);
    for (index, line) in lines.iter().enumerate() {
        assert_eq!(
            *line,
            format!("line {}", index + 1),
            "line {} of {slow:?}",
            index + 1
        );
    }

    let db = rusqlite::Connection::open(data.path().join("testloop.db")).unwrap();
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let statuses: Vec<(String, String)> = db
        .prepare("SELECT path, status FROM steps WHERE execution_id = ?1 ORDER BY path")
        .unwrap()
        .query_map([&id], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        statuses,
        vec![
            ("1".to_owned(), "passed".to_owned()),
            ("2".to_owned(), "interrupted".to_owned())
        ]
    );
}

#[test]
fn ctrl_c_aborts_the_execution_and_records_it() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("long.yaml");
    std::fs::write(&file, LONG_RUNNING).unwrap();
    let child = testloop(data.path())
        .args(["run", file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the slow step", Duration::from_secs(30), || {
        log_lines(data.path()) >= 5
    });
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let ran: testloop_tests::Ran = child.wait_with_output().unwrap().into();
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(ran.stdout.contains("ABORTED"), "{ran:?}");
    assert!(ran.stdout.contains("[aborted] 2 slow"), "{ran:?}");
    let listed = run(data.path(), &["executions", "--status", "aborted"]);
    assert!(listed.stdout.contains("long-running"), "{listed:?}");
}

#[test]
fn logs_reads_heads_ranges_and_tails_of_a_step() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("count.yaml");
    std::fs::write(
        &file,
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: count\nspec:\n  steps:\n  - shell: seq 1 250\n",
    )
    .unwrap();
    let ran = run(data.path(), &["run", file.to_str().unwrap()]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let id = execution_id(&ran);
    let lines = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["logs", id.as_str(), "--step", "1"];
        all.extend_from_slice(args);
        run(data.path(), &all)
            .stdout
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let tail = lines(&[]);
    assert_eq!(tail.len(), 101, "a note and the default 100 lines");
    assert!(tail[0].contains("150 earlier line(s)"), "{tail:?}");
    assert_eq!(tail[1], "151");
    assert_eq!(tail[100], "250");
    assert_eq!(
        lines(&["--tail", "2"]),
        vec![
            "[testloop] … 248 earlier line(s); use --all, --head or --lines to read them",
            "249",
            "250"
        ]
    );
    assert_eq!(lines(&["--head", "3"]), vec!["1", "2", "3"]);
    assert_eq!(lines(&["--lines", "10:12"]), vec!["10", "11", "12"]);
    assert_eq!(lines(&["--all"]).len(), 250);
    let grep = lines(&["--grep", "^12[0-9]$", "--max-matches", "3"]);
    assert_eq!(grep[..3], ["120: 120", "121: 121", "122: 122"]);
    assert!(grep[3].contains("stopped after 3 matches"), "{grep:?}");
    let stamped = lines(&["--head", "1", "--timestamps"]);
    assert!(
        stamped[0].ends_with(" 1") && stamped[0].starts_with("20"),
        "{stamped:?}"
    );

    let bad_range = run(data.path(), &["logs", &id, "--lines", "5:2"]);
    assert_eq!(bad_range.code, Some(2));
    assert!(bad_range.stderr.contains("FROM:TO"), "{bad_range:?}");
    let silent = run(data.path(), &["run", "examples/workflows/controls.yaml"]);
    let silent_id = execution_id(&silent);
    let quiet = run(data.path(), &["logs", &silent_id, "--step", "6"]);
    assert_eq!(
        quiet.stdout.trim(),
        format!("step 6 of execution {silent_id} wrote no output"),
        "{quiet:?}"
    );

    let bad_step = run(data.path(), &["logs", &id, "--step", "9"]);
    assert!(
        bad_step.stderr.contains("has no step `9`; its steps: 1"),
        "{bad_step:?}"
    );
}

#[test]
fn the_failure_tail_shows_the_step_that_failed_the_run_not_an_optional_one() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("two-failures.yaml");
    std::fs::write(
        &file,
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: two-failures\nspec:\n  steps:\n  - name: lint\n    optional: true\n    shell: echo lint-warning; exit 1\n  - name: tests\n    steps:\n    - name: unit\n      shell: echo unit-assertion-failed; exit 1\n",
    )
    .unwrap();
    let ran = run(
        data.path(),
        &["run", file.to_str().unwrap(), "--failure-lines", "5"],
    );
    assert_eq!(ran.code, Some(1), "{ran:?}");
    let tail = &ran.stdout[ran.stdout.find("── last").expect("a failure tail")..];
    assert!(
        tail.starts_with("── last 1 of 1 line(s) of step 2/1 (unit) ──"),
        "{tail}"
    );
    assert!(tail.contains("unit-assertion-failed"), "{tail}");
    assert!(!tail.contains("lint-warning"), "{tail}");
}

/// The README's tour of the example project: test results, a diff, a re-run of only what failed
/// and flaky tests, through the real binary.
#[test]
fn the_calc_example_shows_tests_diffs_reruns_and_flaky_tests() {
    let data = tempfile::tempdir().unwrap();
    let counter = data.path().join("flaky.count");
    let counter = format!("counter={}", counter.display());
    let calc = |extra: &[&str]| {
        let mut args = vec!["run", "examples/workflows/calc.yaml", "--set", &counter];
        args.extend_from_slice(extra);
        run(data.path(), &args)
    };
    let first = calc(&[]);
    assert_eq!(first.code, Some(1), "{first:?}");
    assert!(
        first
            .stdout
            .contains("6 tests: 3 passed, 2 failed, 1 skipped"),
        "{first:?}"
    );
    assert!(
        first.stdout.contains(
            "FAIL tests.test_calc::test_percent_rounds (tests/test_calc.py:22): assert 66.66 == 66.67"
        ),
        "{first:?}"
    );
    let first_id = execution_id(&first);
    let second = calc(&[]);
    let second_id = execution_id(&second);

    let tests = run(data.path(), &["tests", &first_id, "--failed"]);
    assert_eq!(tests.code, Some(0), "{tests:?}");
    assert!(
        tests.stdout.contains("(from data/reports/junit.xml)"),
        "{tests:?}"
    );
    assert_eq!(tests.stdout.matches("\nfailed ").count(), 2, "{tests:?}");

    let diff = run(data.path(), &["diff", &first_id, &second_id]);
    assert_eq!(diff.code, Some(0), "{diff:?}");
    assert!(
        diff.stdout.starts_with(
            "still failing: 1 fixed: test_remote_quote; 1 still failing: test_percent_rounds"
        ),
        "{diff:?}"
    );
    assert!(diff.stdout.contains("log of step 2"), "{diff:?}");
    let no_baseline = run(data.path(), &["diff", &second_id]);
    assert_eq!(no_baseline.code, Some(2), "{no_baseline:?}");
    assert!(
        no_baseline
            .stderr
            .contains("no execution of `calc` passed before"),
        "{no_baseline:?}"
    );

    let third = calc(&["--set", "fixed=true"]);
    assert_eq!(
        third.code,
        Some(1),
        "the flaky test fails on its third run: {third:?}"
    );
    let third_id = execution_id(&third);
    let rerun = run(data.path(), &["rerun", &third_id, "--only-failed"]);
    assert_eq!(rerun.code, Some(0), "{rerun:?}");
    assert!(rerun.stdout.contains("[skipped] 1 Lint"), "{rerun:?}");
    let rerun_id = execution_id(&rerun);
    let fixed = run(data.path(), &["diff", &first_id, &rerun_id]);
    assert!(
        fixed
            .stdout
            .starts_with("fixed: 1 fixed: test_remote_quote"),
        "{fixed:?}"
    );

    let flaky = run(data.path(), &["flaky", "calc"]);
    assert_eq!(flaky.code, Some(0), "{flaky:?}");
    assert!(
        flaky
            .stdout
            .contains("pytest :: tests.test_calc :: test_remote_quote [fp|fp] flips 2"),
        "{flaky:?}"
    );
    let none = run(data.path(), &["flaky", "nope"]);
    assert_eq!(none.code, Some(2), "{none:?}");
}

#[test]
fn prune_deletes_old_executions_and_says_what_it_deleted() {
    let data = tempfile::tempdir().unwrap();
    let mut failed = Vec::new();
    for _ in 0..3 {
        let ran = run(data.path(), &["run", "examples/workflows/failing.yaml"]);
        assert_eq!(ran.code, Some(1), "{ran:?}");
        failed.push(execution_id(&ran));
    }
    let passed = execution_id(&run(data.path(), &["run", "examples/workflows/hello.yaml"]));

    let planned = run(
        data.path(),
        &["prune", "--keep-executions", "1", "--dry-run"],
    );
    assert_eq!(planned.code, Some(0), "{planned:?}");
    assert!(
        planned.stdout.starts_with("would delete 2 execution(s), "),
        "{planned:?}"
    );
    assert!(planned.stdout.contains(&failed[0]) && planned.stdout.contains(&failed[1]));
    let listed = run(data.path(), &["executions"]).stdout;
    assert!(
        listed.contains(&failed[0]),
        "a dry run deletes nothing: {listed}"
    );

    let pruned = run(data.path(), &["prune", "--keep-executions", "1"]);
    assert_eq!(pruned.code, Some(0), "{pruned:?}");
    assert!(
        pruned.stdout.starts_with("deleted 2 execution(s), "),
        "{pruned:?}"
    );
    let listed = run(data.path(), &["executions"]).stdout;
    for id in &failed[..2] {
        assert!(!listed.contains(id.as_str()), "{listed}");
    }
    assert!(
        listed.contains(&failed[2]) && listed.contains(&passed),
        "{listed}"
    );
    let logs = run(data.path(), &["logs", &failed[0]]);
    assert_ne!(logs.code, Some(0), "{logs:?}");

    // The same limit on `run` applies after the run, through the environment too.
    let mut command = testloop(data.path());
    command
        .env("TESTLOOP_KEEP_EXECUTIONS", "1")
        .args(["run", "examples/workflows/failing.yaml"]);
    let ran: testloop_tests::Ran = command.output().unwrap().into();
    let newest = execution_id(&ran);
    let listed = run(data.path(), &["executions"]).stdout;
    assert!(!listed.contains(&failed[2]), "{listed}");
    assert!(
        listed.contains(&newest) && listed.contains(&passed),
        "{listed}"
    );

    // Bad limits are refused, naming the flag and what was expected.
    let nothing = run(data.path(), &["prune"]);
    assert_eq!(nothing.code, Some(2), "{nothing:?}");
    assert!(
        nothing
            .stderr
            .contains("--keep-days, --keep-executions or --keep-bytes"),
        "{nothing:?}"
    );
    let zero = run(data.path(), &["prune", "--keep-executions", "0"]);
    assert_ne!(zero.code, Some(0), "{zero:?}");
    assert!(zero.stderr.contains("--keep-executions"), "{zero:?}");
    let unit = run(data.path(), &["prune", "--keep-bytes", "5X"]);
    assert_ne!(unit.code, Some(0), "{unit:?}");
    assert!(unit.stderr.contains("unknown size unit `X`"), "{unit:?}");
}

#[test]
fn artifacts_lists_an_executions_files_and_prints_one() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("saves.yaml");
    std::fs::write(
        &file,
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: saves\nspec:\n  steps:\n  - shell: |\n      mkdir -p /data/out\n      printf 'line one\\nline two\\n' > /data/out/report.txt\n      printf '\\000\\001\\002\\377' > /data/out/blob.bin\n    artifacts:\n      paths: [/data/out/*]\n",
    )
    .unwrap();
    let ran = run(data.path(), &["run", file.to_str().unwrap()]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let id = execution_id(&ran);

    let listed = run(data.path(), &["artifacts", &id]);
    assert_eq!(listed.code, Some(0), "{listed:?}");
    let lines: Vec<&str> = listed.stdout.lines().collect();
    assert_eq!(lines[0], "2 file(s), 22 B", "{listed:?}");
    assert!(lines[1].ends_with("  binary  out/blob.bin"), "{listed:?}");
    assert!(lines[2].ends_with("  text    out/report.txt"), "{listed:?}");

    let text = run(data.path(), &["artifacts", &id, "out/report.txt"]);
    assert_eq!(text.code, Some(0), "{text:?}");
    assert_eq!(text.stdout, "line one\nline two\n");
    // Not a terminal here: a binary file comes through byte for byte.
    let binary = testloop(data.path())
        .args(["artifacts", &id, "out/blob.bin"])
        .output()
        .unwrap();
    assert_eq!(binary.stdout, [0u8, 1, 2, 0xff]);

    let under = run(data.path(), &["artifacts", &id, "--under", "out"]);
    assert!(under.stdout.starts_with("2 file(s)"), "{under:?}");
    let missing = run(data.path(), &["artifacts", &id, "out/nope.txt"]);
    assert_eq!(missing.code, Some(2), "{missing:?}");
    assert!(
        missing.stderr.contains("no artifact `out/nope.txt`"),
        "{missing:?}"
    );
    let escape = run(data.path(), &["artifacts", &id, "../testloop.db"]);
    assert_eq!(escape.code, Some(2), "{escape:?}");
    assert!(escape.stderr.contains("`..`"), "{escape:?}");

    let none = run(data.path(), &["run", "examples/workflows/hello.yaml"]);
    let none_id = execution_id(&none);
    let empty = run(data.path(), &["artifacts", &none_id]);
    assert_eq!(
        empty.stdout.trim(),
        format!("execution {none_id} saved no artifacts")
    );
}
