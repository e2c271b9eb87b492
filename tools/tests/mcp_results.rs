//! Test results, run-to-run diffs, flaky tests and re-runs of only what failed, through a real
//! MCP client, on real runs of the example project `examples/workflows/calc.yaml` (Python and
//! pytest: passing, failing, skipped and deterministically flaky tests).

mod support;

use serde_json::{Value, json};
use support::*;

const CALC: &str = include_str!("../../examples/workflows/calc.yaml");

/// The calc workflow with its flaky test counting runs in `counter`.
async fn calc(h: &Harness) -> tempfile::TempDir {
    let python = std::process::Command::new("python3")
        .args(["-m", "pytest", "--version"])
        .output();
    assert!(
        python.is_ok_and(|out| out.status.success()),
        "these tests run the example project with pytest: install it (python3 -m pip install pytest)"
    );
    h.create(CALC).await;
    tempfile::tempdir().unwrap()
}

async fn run_calc(h: &Harness, state: &tempfile::TempDir, config: Value) -> Answer {
    let mut config = config.as_object().cloned().unwrap_or_default();
    config.insert(
        "counter".into(),
        json!(state.path().join("flaky.count").display().to_string()),
    );
    let answer = h
        .ok(
            "run_workflow",
            json!({"name": "calc", "config": config, "wait_seconds": 120}),
        )
        .await;
    assert_eq!(answer.data["finished"], true, "{}", answer.text);
    answer
}

fn names(cases: &Value) -> Vec<String> {
    cases
        .as_array()
        .unwrap()
        .iter()
        .map(|case| case["test"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn junit_results_name_the_failed_tests_in_get_execution_and_get_test_results() {
    let h = Harness::start().await;
    let state = calc(&h).await;
    let first = run_calc(&h, &state, json!({})).await;
    assert_eq!(first.data["status"], "failed");
    let tests = &first.data["tests"];
    assert_eq!(
        tests["counts"],
        json!({"total": 6, "passed": 3, "failed": 2, "error": 0, "skipped": 1}),
        "{}",
        first.text
    );
    assert_eq!(tests["sources"], json!(["data/reports/junit.xml"]));
    assert_eq!(
        names(&tests["failed"]),
        [
            "tests.test_calc::test_percent_rounds",
            "tests.test_calc::test_remote_quote"
        ]
    );
    let percent = &tests["failed"][0];
    assert!(
        percent["message"].as_str().unwrap().contains("66.66"),
        "{percent}"
    );
    assert!(
        percent["location"]
            .as_str()
            .unwrap()
            .starts_with("tests/test_calc.py:"),
        "{percent}"
    );
    assert!(
        first
            .text
            .contains("6 tests: 3 passed, 2 failed, 1 skipped"),
        "{}",
        first.text
    );
    assert!(
        first
            .text
            .contains("FAIL tests.test_calc::test_percent_rounds"),
        "{}",
        first.text
    );
    assert_eq!(first.data["next"]["tool"], "get_logs");
    assert_eq!(
        first.data["next"]["arguments"]["grep"],
        "test_percent_rounds"
    );

    let id = first.data["id"].as_str().unwrap();
    let failed = h
        .ok(
            "get_test_results",
            json!({"execution": id, "status": ["failed"], "limit": 1}),
        )
        .await;
    assert_eq!(
        names(&failed.data["cases"]),
        ["tests.test_calc::test_percent_rounds"]
    );
    assert_eq!(failed.data["next_cursor"], "1");
    let rest = h
        .ok(
            "get_test_results",
            json!({"execution": id, "status": ["failed"], "cursor": "1"}),
        )
        .await;
    assert_eq!(
        names(&rest.data["cases"]),
        ["tests.test_calc::test_remote_quote"]
    );
    assert!(rest.data.get("next_cursor").is_none());

    let all = h.ok("get_test_results", json!({"execution": id})).await;
    let statuses: Vec<&str> = all.data["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| case["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["failed", "failed", "passed", "passed", "passed", "skipped"],
        "failed first"
    );
    let by_name = h
        .ok(
            "get_test_results",
            json!({"execution": id, "name": "DIVIDE"}),
        )
        .await;
    assert_eq!(by_name.data["cases"].as_array().unwrap().len(), 2);

    let error = h
        .err(
            "get_test_results",
            json!({"execution": id, "status": ["broken"]}),
        )
        .await;
    assert!(
        error.contains("`broken`") && error.contains("skipped"),
        "{error}"
    );
    let error = h
        .err("get_test_results", json!({"execution": id, "cursor": "x"}))
        .await;
    assert!(error.contains("next_cursor"), "{error}");
}

#[tokio::test]
async fn without_a_report_failures_are_read_from_the_log() {
    let h = Harness::start().await;
    let state = calc(&h).await;
    let run = run_calc(&h, &state, json!({"junit": false})).await;
    assert_eq!(run.data["status"], "failed");
    let tests = &run.data["tests"];
    assert_eq!(tests["sources"], json!(["log:2"]), "{}", run.text);
    let failed = names(&tests["failed"]);
    assert!(
        failed
            .iter()
            .any(|name| name.contains("test_percent_rounds"))
            && failed.iter().any(|name| name.contains("test_remote_quote")),
        "{failed:?}"
    );
    let percent = tests["failed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|case| {
            case["test"]
                .as_str()
                .unwrap()
                .contains("test_percent_rounds")
        })
        .unwrap();
    assert!(
        percent["message"].as_str().unwrap().contains("66.66"),
        "{percent}"
    );
}

#[tokio::test]
async fn diffs_flaky_tests_and_reruns_of_only_what_failed_on_real_runs() {
    let h = Harness::start().await;
    let state = calc(&h).await;
    // Run 1: the percent bug and the flaky test fail. Run 2: the flaky test passes.
    let first = run_calc(&h, &state, json!({})).await;
    let first_id = first.data["id"].as_str().unwrap().to_owned();
    let second = run_calc(&h, &state, json!({})).await;
    let second_id = second.data["id"].as_str().unwrap().to_owned();
    assert_eq!(second.data["status"], "failed");

    let diff = h
        .ok(
            "diff_executions",
            json!({"execution": second_id, "baseline": first_id}),
        )
        .await;
    assert_eq!(diff.data["verdict"], "still_failing", "{}", diff.text);
    assert_eq!(
        names(&diff.data["tests"]["fixed"]["cases"]),
        ["pytest :: tests.test_calc :: test_remote_quote"]
    );
    assert_eq!(diff.data["tests"]["still_failing"]["count"], 1);
    assert_eq!(diff.data["tests"]["newly_failing"]["count"], 0);
    assert!(diff.data["config"].as_array().unwrap().is_empty());
    assert!(diff.data["workflow"].is_null());
    // The log diff of the failing step shows the flaky test's lines going away, and little
    // else: what differs on every run is normalised.
    let log = diff.data["log"]["diff"].as_str().unwrap();
    assert_eq!(diff.data["log"]["step"], "2");
    assert!(
        log.lines()
            .any(|line| line.starts_with('-') && line.contains("quote service timed out")),
        "{log}"
    );
    let changed =
        diff.data["log"]["added"].as_u64().unwrap() + diff.data["log"]["removed"].as_u64().unwrap();
    assert!(changed < 60, "{changed} changed lines: {log}");

    // No passed execution yet: last_passed has nothing to compare with.
    let error = h
        .err("diff_executions", json!({"execution": second_id}))
        .await;
    assert!(error.contains("baseline"), "{error}");

    // Run 3 fixes the bug: the flaky test fails again (odd run). A re-run of only what failed
    // skips the lint step and runs just the failed test, which passes now.
    let third = run_calc(&h, &state, json!({"fixed": true})).await;
    let third_id = third.data["id"].as_str().unwrap().to_owned();
    assert_eq!(third.data["status"], "failed");
    assert_eq!(
        names(&third.data["tests"]["failed"]),
        ["tests.test_calc::test_remote_quote"]
    );
    let rerun = h
        .ok(
            "rerun_execution",
            json!({"id": third_id, "only_failed": true, "wait_seconds": 120}),
        )
        .await;
    assert_eq!(rerun.data["status"], "passed", "{}", rerun.text);
    assert_eq!(rerun.data["steps"][0]["status"], "skipped");
    assert_eq!(
        rerun.data["tests"]["counts"],
        json!({"total": 1, "passed": 1, "failed": 0, "error": 0, "skipped": 0}),
        "only the failed test ran (pytest deselects the others)"
    );
    let rerun_id = rerun.data["id"].as_str().unwrap().to_owned();

    let fixed = h
        .ok(
            "diff_executions",
            json!({"execution": rerun_id, "baseline": first_id}),
        )
        .await;
    assert_eq!(fixed.data["verdict"], "fixed", "{}", fixed.text);
    assert_eq!(fixed.data["config"][0]["name"], "fixed");
    assert_eq!(fixed.data["config"][0]["before"], false);
    assert_eq!(fixed.data["config"][0]["after"], true);
    assert_eq!(
        fixed.data["tests"]["removed"]["count"], 0,
        "tests a re-run of only failed steps did not run are not `removed`"
    );
    assert!(fixed.text.starts_with("fixed: "), "{}", fixed.text);

    // Run 5 (full, fixed): the flaky test fails again on its odd run; against the last passed
    // execution (the re-run) that is a regression.
    let fifth = run_calc(&h, &state, json!({"fixed": true})).await;
    let fifth_id = fifth.data["id"].as_str().unwrap().to_owned();
    let regressed = h
        .ok("diff_executions", json!({"execution": fifth_id}))
        .await;
    assert_eq!(regressed.data["base"]["id"], rerun_id.as_str());
    assert_eq!(regressed.data["verdict"], "regressed", "{}", regressed.text);
    assert_eq!(
        names(&regressed.data["tests"]["newly_failing"]["cases"]),
        ["pytest :: tests.test_calc :: test_remote_quote"]
    );

    let flaky = h.ok("find_flaky_tests", json!({"workflow": "calc"})).await;
    assert_eq!(flaky.data["executions"], 5);
    let tests = flaky.data["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 1, "{}", flaky.text);
    assert_eq!(
        tests[0]["test"],
        "pytest :: tests.test_calc :: test_remote_quote"
    );
    assert_eq!(tests[0]["history"], "fp|fpf");
    assert_eq!(tests[0]["flips"], 3);
    assert_eq!(tests[0]["failed_in"][0], fifth_id.as_str());
    assert!(
        flaky.text.contains("test_remote_quote [fp|fpf] flips 3"),
        "{}",
        flaky.text
    );
    let error = h
        .err("find_flaky_tests", json!({"workflow": "calc", "last": 0}))
        .await;
    assert!(error.contains("between 1 and 200"), "{error}");
    let error = h.err("find_flaky_tests", json!({"workflow": "nope"})).await;
    assert!(error.contains("no finished executions"), "{error}");
}

/// A workflow whose test step prints about 50 MB: two test binaries of 300,000 passing tests
/// each, with one failure in the first, so that it sits in the middle of the log.
fn big_log_workflow() -> String {
    workflow(
        "big-log",
        r#"steps:
- name: cargo test
  shell: |
    awk 'BEGIN {
      print "     Running unittests src/lib.rs (target/debug/deps/parser-3f2a1b)"
      print "running 300000 tests"
      for (i = 1; i <= 300000; i++) {
        if (i == 150000) print "test parser::tests::parses_nested_headers ... FAILED"
        else printf "test parser::tests::case_%06d ... ok   [worker %d, 2026-11-23T19:53:21.%03dZ, rss 18432 KiB]\n", i, i % 8, i % 1000
      }
      print ""
      print "failures:"
      print ""
      print "---- parser::tests::parses_nested_headers stdout ----"
      print "thread '\''parser::tests::parses_nested_headers'\'' panicked at src/parser.rs:211:9:"
      print "assertion `left == right` failed: nested header depth"
      print "  left: 3"
      print " right: 4"
      print "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace"
      print ""
      print "failures:"
      print "    parser::tests::parses_nested_headers"
      print ""
      print "test result: FAILED. 299999 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 41.20s"
      print ""
      print "     Running tests/roundtrip.rs (target/debug/deps/roundtrip-9c8d7e)"
      print "running 300000 tests"
      for (i = 1; i <= 300000; i++) printf "test roundtrip::case_%06d ... ok   [worker %d, 2026-11-23T19:54:02.%03dZ, rss 18432 KiB]\n", i, i % 8, i % 1000
      print ""
      print "test result: ok. 300000 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 40.90s"
      print "error: 1 target failed:"
      print "    `--lib`"
      exit 101
    }'"#,
    )
}

#[tokio::test]
async fn get_execution_names_a_failure_in_the_middle_of_a_50_mb_log_in_2_kb() {
    let h = Harness::start().await;
    h.create(&big_log_workflow()).await;
    let report = h
        .ok(
            "run_workflow",
            json!({"name": "big-log", "wait_seconds": 300}),
        )
        .await;
    assert_eq!(report.data["finished"], true, "{}", report.text);
    let id = report.data["id"].as_str().unwrap();
    let log_bytes: u64 = std::fs::read_dir(h.dir.path().join("logs").join(id))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .map(|path| std::fs::metadata(path).unwrap().len())
        .sum();
    assert!(log_bytes > 50_000_000, "the log is {log_bytes} bytes");

    let answer = h.ok("get_execution", json!({"id": id})).await;
    let structured = serde_json::to_string(&answer.data).unwrap();
    // Recorded in BENCHMARKS.md: run with --nocapture to see it.
    println!(
        "get_execution on a {log_bytes}-byte log: text {} bytes, structured content {} bytes",
        answer.text.len(),
        structured.len()
    );
    assert!(
        answer.text.len() <= 2048,
        "text is {} bytes:\n{}",
        answer.text.len(),
        answer.text
    );
    assert!(
        structured.len() <= 2048,
        "structured content is {} bytes: {structured}",
        structured.len()
    );
    assert_eq!(
        answer.data["tests"]["counts"],
        json!({"total": 600_000, "passed": 599_999, "failed": 1, "error": 0, "skipped": 0}),
        "passed tests are counted from the runner's summary lines"
    );
    let failed = &answer.data["tests"]["failed"][0];
    assert_eq!(
        failed["test"], "parser::tests::parses_nested_headers",
        "{}",
        answer.text
    );
    assert_eq!(failed["location"], "src/parser.rs:211");
    let message = failed["message"].as_str().unwrap();
    assert!(
        message.contains("nested header depth") && message.contains("left: 3"),
        "{message}"
    );
    assert!(answer.text.contains("parses_nested_headers"));
    assert!(answer.text.contains("nested header depth"));
}
