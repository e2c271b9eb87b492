//! Failures recognised in step logs: one fixture log per runner (real output wherever this machine
//! could produce it; `tests/fixtures/logs/README.md` says how each was made), the generic fallback,
//! deduplication, every limit at its edge, and a 50 MB log with one failure in the middle.

use std::fmt::Write as _;
use std::path::PathBuf;

use testloop_orchestrator::logs::LogStore;
use testloop_orchestrator::results::logscan::{
    Counts, LogScanner, MAX_FAILURES, MAX_GO_PENDING, MAX_LINE_BYTES, MAX_MESSAGE_BYTES,
    MAX_MESSAGE_LINES, MAX_NAME_BYTES, Scan, scan_log,
};
use testloop_orchestrator::results::{TestCase, TestStatus};

#[path = "support/cargo_log.rs"]
mod cargo_log;
use cargo_log::{FAILING_TEST, generate};

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/logs")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    String::from_utf8_lossy(&bytes).into_owned()
}

fn scan_text(text: &str) -> Scan {
    let mut scanner = LogScanner::new();
    for line in text.lines() {
        scanner.feed(line);
    }
    scanner.finish()
}

fn scan_fixture(name: &str) -> Scan {
    scan_text(&fixture(name))
}

fn names(scan: &Scan) -> Vec<&str> {
    scan.failures.iter().map(|f| f.name.as_str()).collect()
}

fn failure<'a>(scan: &'a Scan, name: &str) -> &'a TestCase {
    scan.failures
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no failure {name:?} in {:?}", names(scan)))
}

fn counts(passed: u64, failed: u64, skipped: u64) -> Option<Counts> {
    Some(Counts {
        passed,
        failed,
        skipped,
    })
}

/// Where a failure happened: `(file, line)`.
fn place(case: &TestCase) -> (Option<&str>, Option<u32>) {
    (case.file.as_deref(), case.line)
}

// cargo test and cargo-nextest

#[test]
fn cargo_test_failures_carry_their_panic_message_and_place() {
    let scan = scan_text(&fixture("cargo_test.log"));
    assert_eq!(scan.runner, Some("cargo"));
    // Each failure is named three times (progress line, stdout section, `failures:` list).
    assert_eq!(names(&scan), ["tests::adds", "tests::divides"]);
    let adds = failure(&scan, "tests::adds");
    assert_eq!(adds.suite, "calc");
    assert_eq!(adds.status, TestStatus::Failed);
    assert_eq!(
        adds.message.as_deref(),
        Some("assertion `left == right` failed\nleft: 2\nright: 3")
    );
    assert_eq!(place(adds), (Some("src/lib.rs"), Some(15)));
    let divides = failure(&scan, "tests::divides");
    // What the test printed before panicking is not the message.
    assert_eq!(
        divides.message.as_deref(),
        Some("six over three should be three, got 2")
    );
    assert_eq!(place(divides), (Some("src/lib.rs"), Some(26)));
    // Summed over the unit tests, the integration tests and the doc tests.
    assert_eq!(scan.counts, counts(4, 2, 1));
    assert!(!scan.truncated);
}

#[test]
fn ansi_colours_are_stripped_before_reading() {
    let coloured = fixture("cargo_test_ansi.log");
    assert!(coloured.contains("\u{1b}[31mFAILED\u{1b}(B\u{1b}[m"));
    let scan = scan_text(&coloured);
    assert_eq!(names(&scan), ["tests::divides", "tests::adds"]);
    let adds = failure(&scan, "tests::adds");
    assert_eq!(
        adds.message.as_deref(),
        Some("assertion `left == right` failed\nleft: 2\nright: 3")
    );
    assert_eq!(place(adds), (Some("src/lib.rs"), Some(15)));
    // The backtrace after the message is not part of it.
    assert_eq!(
        failure(&scan, "tests::divides").message.as_deref(),
        Some("six over three should be three, got 2")
    );
    assert_eq!(scan.counts, counts(2, 2, 1));

    let jest = scan_fixture("jest.log");
    let jest_coloured = fixture("jest_ansi.log");
    assert!(jest_coloured.contains('\u{1b}'));
    assert_eq!(scan_text(&jest_coloured), jest);
}

#[test]
fn nextest_failures_come_from_its_status_lines_and_captured_output() {
    let scan = scan_fixture("cargo_nextest.log");
    assert_eq!(scan.runner, Some("cargo"));
    assert_eq!(names(&scan), ["tests::divides", "tests::adds"]);
    let adds = failure(&scan, "tests::adds");
    assert_eq!(adds.suite, "calc");
    assert_eq!(adds.duration_ms, Some(45));
    assert_eq!(
        adds.message.as_deref(),
        Some("assertion `left == right` failed\nleft: 2\nright: 3")
    );
    assert_eq!(place(adds), (Some("src/lib.rs"), Some(15)));
    let divides = failure(&scan, "tests::divides");
    assert_eq!(
        divides.message.as_deref(),
        Some("six over three should be three, got 2")
    );
    assert_eq!(place(divides), (Some("src/lib.rs"), Some(26)));
    // From `Summary`, not from the libtest lines nextest echoes ("0 passed; 1 failed").
    assert_eq!(scan.counts, counts(4, 2, 1));
}

#[test]
fn nextest_older_sections_and_retries_are_understood() {
    let older = "        FAIL [   0.003s] calc tests::x\n\n--- STDOUT:              calc tests::x ---\n\nrunning 1 test\ntest tests::x ... FAILED\n\n--- STDERR:              calc tests::x ---\nthread 'tests::x' panicked at src/lib.rs:9:5:\nassertion failed: false\n\n        PASS [   0.003s] calc tests::y\n     Summary [   0.005s] 2 tests run: 1 passed, 1 failed, 0 skipped\n        FAIL [   0.003s] calc tests::x\nerror: test run failed\n";
    let scan = scan_text(older);
    assert_eq!(names(&scan), ["tests::x"]);
    assert_eq!(
        scan.failures[0].message.as_deref(),
        Some("assertion failed: false")
    );
    assert_eq!(place(&scan.failures[0]), (Some("src/lib.rs"), Some(9)));
    assert_eq!(scan.counts, counts(1, 1, 0));

    let flaky = "   TRY 1 FAIL [   0.010s] calc tests::flaky\n  stderr ───\n    thread 'tests::flaky' (1) panicked at src/lib.rs:3:5:\n    boom\n   TRY 2 PASS [   0.010s] calc tests::flaky\n     Summary [   0.020s] 1 test run: 1 passed (1 flaky), 0 skipped\n";
    let scan = scan_text(flaky);
    assert!(scan.failures.is_empty(), "{:?}", scan.failures);
    assert_eq!(scan.counts, counts(1, 0, 0));

    let crashed = "     SIGSEGV [   0.100s] calc tests::unsafe_read\n     Summary [   0.100s] 1 test run: 0 passed, 1 failed, 0 skipped\n";
    let scan = scan_text(crashed);
    assert_eq!(names(&scan), ["tests::unsafe_read"]);
    assert_eq!(scan.failures[0].status, TestStatus::Error);
}

#[test]
fn rust_panics_from_before_1_73_quote_the_message_before_the_place() {
    let log = "running 1 test\ntest tests::old ... FAILED\n\nfailures:\n\n---- tests::old stdout ----\nthread 'tests::old' panicked at 'assertion failed: `(left == right)`\n  left: `1`,\n right: `2`', src/lib.rs:10:5\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n\n\nfailures:\n    tests::old\n\ntest result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n";
    let scan = scan_text(log);
    assert_eq!(names(&scan), ["tests::old"]);
    assert_eq!(
        scan.failures[0].message.as_deref(),
        Some("assertion failed: `(left == right)`\nleft: `1`,\nright: `2`")
    );
    assert_eq!(place(&scan.failures[0]), (Some("src/lib.rs"), Some(10)));
}

// pytest and Python

#[test]
fn pytest_sections_and_the_short_summary_make_one_failure_each() {
    let scan = scan_fixture("pytest.log");
    assert_eq!(scan.runner, Some("pytest"));
    assert_eq!(
        names(&scan),
        [
            "tests/test_calc.py::test_uses_broken",
            "tests/test_calc.py::test_add_wrong",
            "tests/test_calc.py::test_div_zero",
            "tests/test_calc.py::TestCalc::test_message",
        ]
    );
    let broken = failure(&scan, "tests/test_calc.py::test_uses_broken");
    assert_eq!(broken.status, TestStatus::Error);
    assert_eq!(
        broken.message.as_deref(),
        Some("RuntimeError: database unavailable")
    );
    assert_eq!(place(broken), (Some("tests/test_calc.py"), Some(38)));

    let wrong = failure(&scan, "tests/test_calc.py::test_add_wrong");
    assert_eq!(wrong.suite, "tests/test_calc.py");
    assert_eq!(wrong.status, TestStatus::Failed);
    assert_eq!(
        wrong.message.as_deref(),
        Some("assert 3 == 4\n+  where 3 = add(1, 2)")
    );
    assert_eq!(wrong.failure_type.as_deref(), Some("AssertionError"));
    assert_eq!(place(wrong), (Some("tests/test_calc.py"), Some(11)));

    // Raised in calc.py, called from the test's line 19: the test's line is the one given.
    let zero = failure(&scan, "tests/test_calc.py::test_div_zero");
    assert_eq!(
        zero.message.as_deref(),
        Some("ZeroDivisionError: division by zero")
    );
    assert_eq!(zero.failure_type.as_deref(), Some("ZeroDivisionError"));
    assert_eq!(place(zero), (Some("tests/test_calc.py"), Some(19)));

    // The short summary cuts this message ("two and t..."); the section's whole one is kept.
    let message = failure(&scan, "tests/test_calc.py::TestCalc::test_message");
    assert_eq!(
        message.message.as_deref(),
        Some("AssertionError: two and two should make five\nassert 4 == 5")
    );
    assert_eq!(place(message), (Some("tests/test_calc.py"), Some(28)));

    // pytest's errors count as failures.
    assert_eq!(scan.counts, counts(3, 4, 1));
}

#[test]
fn a_passing_log_has_no_failures() {
    let scan = scan_fixture("pytest_pass.log");
    assert!(scan.failures.is_empty(), "{:?}", scan.failures);
    assert_eq!(scan.runner, Some("pytest"));
    assert_eq!(scan.counts, counts(3, 0, 1));

    let scan = scan_fixture("cargo_test_pass.log");
    assert!(scan.failures.is_empty(), "{:?}", scan.failures);
    assert_eq!(scan.runner, Some("cargo"));
    assert_eq!(scan.counts, counts(4, 0, 1));

    let scan = scan_fixture("vitest_pass.log");
    assert!(scan.failures.is_empty(), "{:?}", scan.failures);
    assert_eq!(scan.runner, Some("vitest"));
    assert_eq!(scan.counts, counts(3, 0, 0));
}

#[test]
fn the_richer_of_two_messages_for_one_test_is_kept() {
    // A section without `E` lines (its message is in the captured output) and a short summary
    // that has one: the summary's message fills in.
    let log = "___________ test_quiet ___________\n\ntests/test_q.py:7: in test_quiet\n    check()\n=========================== short test summary info ============================\nFAILED tests/test_q.py::test_quiet - ValueError: bad input\n=== 1 failed in 0.1s ===\n";
    let scan = scan_text(log);
    assert_eq!(names(&scan), ["tests/test_q.py::test_quiet"]);
    assert_eq!(
        scan.failures[0].message.as_deref(),
        Some("ValueError: bad input")
    );
    assert_eq!(place(&scan.failures[0]), (Some("tests/test_q.py"), Some(7)));

    // A section whose file is unknown still merges with the summary's node id.
    let log = "___________ TestA.test_x[1.5] ___________\nE   assert 0\n=========================== short test summary info ============================\nFAILED tests/test_a.py::TestA::test_x[1.5] - assert 0\n";
    let scan = scan_text(log);
    assert_eq!(names(&scan), ["tests/test_a.py::TestA::test_x[1.5]"]);
    assert_eq!(scan.failures[0].message.as_deref(), Some("assert 0"));
}

#[test]
fn a_plain_python_traceback_is_a_generic_failure_named_by_its_exception() {
    let scan = scan_fixture("python_traceback.log");
    assert_eq!(scan.runner, Some("generic"));
    assert_eq!(names(&scan), ["KeyError: 'qty'"]);
    let error = &scan.failures[0];
    assert_eq!(error.status, TestStatus::Error);
    assert_eq!(error.message.as_deref(), Some("KeyError: 'qty'"));
    assert_eq!(error.failure_type.as_deref(), Some("KeyError"));
    // The innermost frame.
    assert_eq!(
        place(error),
        (Some("/home/runner/app/inventory.py"), Some(10))
    );
    assert_eq!(scan.counts, None);

    // A chained exception: the one that escaped is reported, once.
    let chained = "Traceback (most recent call last):\n  File \"app.py\", line 3, in load\n    return d['x']\nKeyError: 'x'\n\nDuring handling of the above exception, another exception occurred:\n\nTraceback (most recent call last):\n  File \"app.py\", line 8, in <module>\n    load()\n  File \"app.py\", line 5, in load\n    raise ValueError('no x')\nValueError: no x\n";
    let scan = scan_text(chained);
    assert_eq!(names(&scan), ["ValueError: no x"]);
    assert_eq!(place(&scan.failures[0]), (Some("app.py"), Some(5)));
}

// Jest, Vitest, Playwright

#[test]
fn jest_failures_carry_expected_and_received() {
    let scan = scan_fixture("jest.log");
    assert_eq!(scan.runner, Some("jest"));
    assert_eq!(
        names(&scan),
        [
            "Calculator › adds",
            "Calculator › division › rejects zero",
            "compares objects"
        ]
    );
    let adds = failure(&scan, "Calculator › adds");
    assert_eq!(adds.suite, "jest/calc.test.js");
    assert_eq!(
        adds.message.as_deref(),
        Some("expect(received).toBe(expected) // Object.is equality\nExpected: 4\nReceived: 3")
    );
    assert_eq!(place(adds), (Some("jest/calc.test.js"), Some(5)));
    // Thrown in src/calc.js; the test file's frame is the place given.
    let zero = failure(&scan, "Calculator › division › rejects zero");
    assert_eq!(zero.message.as_deref(), Some("division by zero"));
    assert_eq!(place(zero), (Some("jest/calc.test.js"), Some(18)));
    let objects = failure(&scan, "compares objects");
    assert_eq!(objects.suite, "jest/strings.test.js");
    let message = objects.message.as_deref().unwrap_or_default();
    assert!(
        message.starts_with(
            "expect(received).toEqual(expected) // deep equality\n- Expected  - 1\n+ Received  + 1"
        ),
        "{message}"
    );
    assert!(
        message.contains("-   \"version\": 3,\n+   \"version\": 2,"),
        "{message}"
    );
    assert_eq!(place(objects), (Some("jest/strings.test.js"), Some(6)));
    assert_eq!(scan.counts, counts(3, 3, 1));
}

#[test]
fn jest_console_output_is_not_a_failure() {
    let log = "FAIL src/x.test.js\n  ● Console\n\n    console.log\n      hello\n\n      at Object.log (src/x.test.js:3:11)\n\n  ● greets\n\n    expect(received).toBe(expected) // Object.is equality\n\n      at Object.toBe (src/x.test.js:4:20)\n\nTests:       1 failed, 1 total\n";
    let scan = scan_text(log);
    assert_eq!(names(&scan), ["greets"]);
    assert_eq!(place(&scan.failures[0]), (Some("src/x.test.js"), Some(4)));
}

#[test]
fn a_jest_file_that_does_not_load_is_an_error() {
    let log = "FAIL src/bad.test.js\n  ● Test suite failed to run\n\n    Cannot find module './missing' from 'src/bad.test.js'\n\n      at Resolver.resolveModule (node_modules/jest-resolve/build/resolver.js:324:11)\n      at Object.<anonymous> (src/bad.test.js:1:1)\n\nTest Suites: 1 failed, 1 total\nTests:       0 total\n";
    let scan = scan_text(log);
    assert_eq!(names(&scan), ["Test suite failed to run"]);
    assert_eq!(scan.failures[0].status, TestStatus::Error);
    assert_eq!(place(&scan.failures[0]), (Some("src/bad.test.js"), Some(1)));
}

#[test]
fn vitest_failures_carry_the_assertion_and_place() {
    let scan = scan_fixture("vitest.log");
    assert_eq!(scan.runner, Some("vitest"));
    assert_eq!(
        names(&scan),
        ["calculator > adds", "calculator > objects > merges"]
    );
    let adds = failure(&scan, "calculator > adds");
    assert_eq!(adds.suite, "vt/calc.test.ts");
    assert_eq!(
        adds.message.as_deref(),
        Some(
            "AssertionError: expected 3 to be 4 // Object.is equality\n- Expected\n+ Received\n- 4\n+ 3"
        )
    );
    assert_eq!(adds.failure_type.as_deref(), Some("AssertionError"));
    assert_eq!(place(adds), (Some("vt/calc.test.ts"), Some(9)));
    let merges = failure(&scan, "calculator > objects > merges");
    assert!(
        merges
            .message
            .as_deref()
            .unwrap_or_default()
            .starts_with("AssertionError: expected { a: 1, b: 2 } to deeply equal { a: 1, b: 3 }")
    );
    assert_eq!(place(merges), (Some("vt/calc.test.ts"), Some(18)));
    assert_eq!(scan.counts, counts(2, 2, 1));
}

#[test]
fn playwright_failures_carry_project_title_and_place() {
    let scan = scan_fixture("playwright.log");
    assert_eq!(scan.runner, Some("playwright"));
    // Each is named again under `2 failed`.
    assert_eq!(names(&scan), ["cart › sums prices", "cart › shows a title"]);
    let sums = failure(&scan, "cart › sums prices");
    assert_eq!(sums.suite, "tests/cart.spec.ts");
    assert_eq!(sums.class.as_deref(), Some("chromium"));
    assert_eq!(
        sums.message.as_deref(),
        Some(
            "Error: expect(received).toBe(expected) // Object.is equality\nExpected: 4\nReceived: 3"
        )
    );
    // `at /home/runner/app/tests/cart.spec.ts:9:27`, given relative to the project as the title is.
    assert_eq!(place(sums), (Some("tests/cart.spec.ts"), Some(9)));
    let title = failure(&scan, "cart › shows a title");
    assert_eq!(
        title.message.as_deref(),
        Some(
            "Error: title should name the item count\nexpect(received).toContain(expected) // indexOf\nExpected substring: \"3 items\"\nReceived string:    \"Cart (2 items)\""
        )
    );
    assert_eq!(place(title), (Some("tests/cart.spec.ts"), Some(18)));
    assert_eq!(scan.counts, counts(2, 2, 1));
}

#[test]
fn a_playwright_test_that_passed_on_retry_is_not_a_failure() {
    let log = "Running 2 tests using 1 worker\n  1) [chromium] › tests/a.spec.ts:3:5 › flaky one ─────\n\n    Error: expect(received).toBe(expected)\n\n        at /app/tests/a.spec.ts:4:13\n\n    Retry #1 ───────\n\n    Error: boom again\n\n  1 flaky\n    [chromium] › tests/a.spec.ts:3:5 › flaky one ──────\n  1 passed (1.2s)\n";
    let scan = scan_text(log);
    assert!(scan.failures.is_empty(), "{:?}", scan.failures);
    assert_eq!(scan.counts, counts(2, 0, 0));
}

// go test

#[test]
fn go_failures_are_the_failing_leaves_with_their_package() {
    let scan = scan_fixture("go_test.log");
    assert_eq!(scan.runner, Some("go"));
    // TestDiv failed only through its subtest, which is the failure given.
    assert_eq!(names(&scan), ["TestSub", "TestDiv/by_zero", "TestMul"]);
    let sub = failure(&scan, "TestSub");
    assert_eq!(sub.suite, "example.com/calc");
    assert_eq!(sub.message.as_deref(), Some("Sub(5, 3) = 1; want 2"));
    assert_eq!(place(sub), (Some("calc_test.go"), Some(15)));
    let by_zero = failure(&scan, "TestDiv/by_zero");
    assert_eq!(
        by_zero.message.as_deref(),
        Some("Div(1, 0): expected an error, got none")
    );
    assert_eq!(place(by_zero), (Some("calc_test.go"), Some(31)));
    // testify: its labels for the place and the test are dropped.
    let mul = failure(&scan, "TestMul");
    assert_eq!(
        mul.message.as_deref(),
        Some("Error: Not equal:\nexpected: 6\nactual : 5")
    );
    assert_eq!(place(mul), (Some("calc_test.go"), Some(44)));
    // go test prints no counts.
    assert_eq!(scan.counts, None);
}

#[test]
fn go_panics_and_build_failures_are_errors() {
    let scan = scan_fixture("go_test_panic.log");
    assert_eq!(
        names(&scan),
        ["TestParse", "example.com/calc/broken", "TestFormat"]
    );
    let parse = failure(&scan, "TestParse");
    assert_eq!(parse.status, TestStatus::Error);
    assert_eq!(parse.suite, "example.com/calc/parse");
    assert_eq!(
        parse.message.as_deref(),
        Some("panic: runtime error: index out of range [3] with length 3 [recovered]")
    );
    // The test's own frame in the goroutine dump, not the library's.
    assert_eq!(
        place(parse),
        (Some("/home/runner/app/parse/parse_test.go"), Some(9))
    );
    let broken = failure(&scan, "example.com/calc/broken");
    assert_eq!(broken.status, TestStatus::Error);
    assert_eq!(broken.message.as_deref(), Some("build failed"));
    // Non-verbose output: the message after the result line, continued on a deeper line.
    let format = failure(&scan, "TestFormat");
    assert_eq!(format.suite, "example.com/calc/format");
    assert_eq!(
        format.message.as_deref(),
        Some("Format(3.5) = \"3.50\"\nwant \"3.5\"")
    );
    assert_eq!(place(format), (Some("format_test.go"), Some(21)));
}

#[test]
fn go_output_is_kept_for_at_most_max_go_pending_unfinished_tests() {
    fn interleaved(tests: usize) -> String {
        let mut log = String::new();
        for i in 0..tests {
            let _ = writeln!(log, "=== RUN   TestP{i}\n=== PAUSE TestP{i}");
        }
        for i in 0..tests {
            let _ = writeln!(
                log,
                "=== CONT  TestP{i}\n    p_test.go:{}: wrong {i}",
                i + 1
            );
        }
        log.push_str("--- FAIL: TestP0 (0.00s)\nFAIL\nFAIL\texample.com/p\t0.01s\n");
        log
    }
    let scan = scan_text(&interleaved(MAX_GO_PENDING));
    assert_eq!(scan.failures[0].message.as_deref(), Some("wrong 0"));
    assert_eq!(place(&scan.failures[0]), (Some("p_test.go"), Some(1)));
    let scan = scan_text(&interleaved(MAX_GO_PENDING + 1));
    assert_eq!(names(&scan), ["TestP0"]);
    assert_eq!(scan.failures[0].message, None);
}

// Maven Surefire and the JUnit console launcher

#[test]
fn surefire_failures_merge_the_report_and_the_results_list() {
    let scan = scan_fixture("maven_surefire.log");
    assert_eq!(scan.runner, Some("maven"));
    assert_eq!(
        names(&scan),
        ["CalculatorTest.testAdd", "CalculatorTest.testDiv"]
    );
    let add = failure(&scan, "CalculatorTest.testAdd");
    assert_eq!(add.suite, "com.example.CalculatorTest");
    assert_eq!(add.status, TestStatus::Failed);
    assert_eq!(add.message.as_deref(), Some("expected: <3> but was: <4>"));
    assert_eq!(
        add.failure_type.as_deref(),
        Some("org.opentest4j.AssertionFailedError")
    );
    assert_eq!(place(add), (Some("CalculatorTest.java"), Some(13)));
    assert_eq!(add.duration_ms, Some(74));
    let div = failure(&scan, "CalculatorTest.testDiv");
    assert_eq!(div.status, TestStatus::Error);
    assert!(
        div.message
            .as_deref()
            .unwrap_or_default()
            .contains("/ by zero"),
        "{div:?}"
    );
    assert_eq!(
        div.failure_type.as_deref(),
        Some("java.lang.ArithmeticException")
    );
    assert_eq!(place(div), (Some("CalculatorTest.java"), Some(23)));
    assert_eq!(scan.counts, counts(2, 2, 1));
}

#[test]
fn surefire_3_names_tests_with_their_class() {
    let log = "[INFO] Running com.example.CalculatorTest\n[ERROR] Tests run: 2, Failures: 1, Errors: 0, Skipped: 0, Time elapsed: 0.05 s <<< FAILURE! -- in com.example.CalculatorTest\n[ERROR] com.example.CalculatorTest.testAdd -- Time elapsed: 0.012 s <<< FAILURE!\norg.opentest4j.AssertionFailedError: expected: <3> but was: <4>\n\tat org.junit.jupiter.api.AssertionFailureBuilder.build(AssertionFailureBuilder.java:151)\n\tat com.example.CalculatorTest.testAdd(CalculatorTest.java:12)\n\n[INFO] Results:\n[INFO] \n[ERROR] Failures: \n[ERROR]   CalculatorTest.testAdd:12 expected: <3> but was: <4>\n[INFO] \n[ERROR] Tests run: 2, Failures: 1, Errors: 0, Skipped: 0\n";
    let scan = scan_text(log);
    assert_eq!(names(&scan), ["CalculatorTest.testAdd"]);
    assert_eq!(scan.failures[0].suite, "com.example.CalculatorTest");
    assert_eq!(
        place(&scan.failures[0]),
        (Some("CalculatorTest.java"), Some(12))
    );
    assert_eq!(scan.counts, counts(1, 1, 0));
}

#[test]
fn the_junit_console_launcher_reads_like_surefire() {
    let scan = scan_fixture("junit_console.log");
    assert_eq!(scan.runner, Some("maven"));
    assert_eq!(
        names(&scan),
        ["CalculatorTest.testAdd", "CalculatorTest.testDiv"]
    );
    let add = failure(&scan, "CalculatorTest.testAdd");
    assert_eq!(add.suite, "com.example.CalculatorTest");
    assert_eq!(add.status, TestStatus::Failed);
    assert_eq!(add.message.as_deref(), Some("expected: <3> but was: <4>"));
    assert_eq!(place(add), (Some("CalculatorTest.java"), Some(13)));
    // Not an assertion: an error, as Surefire would say.
    let div = failure(&scan, "CalculatorTest.testDiv");
    assert_eq!(div.status, TestStatus::Error);
    assert_eq!(div.message.as_deref(), Some("/ by zero"));
    // The frame in the test class, below the one in Calculator.java.
    assert_eq!(place(div), (Some("CalculatorTest.java"), Some(23)));
    assert_eq!(scan.counts, counts(2, 2, 1));
}

// The generic fallback

#[test]
fn without_a_runner_failure_lines_errors_and_panics_are_reported() {
    let scan = scan_fixture("generic_unittest.log");
    assert_eq!(scan.runner, Some("generic"));
    assert_eq!(
        names(&scan),
        [
            "test_lookup (test_calc.CalcTest.test_lookup)",
            "test_add (test_calc.CalcTest.test_add)"
        ]
    );
    let lookup = &scan.failures[0];
    assert_eq!(lookup.status, TestStatus::Error);
    assert_eq!(lookup.message.as_deref(), Some("KeyError: 'pear'"));
    assert_eq!(
        place(lookup),
        (Some("/home/runner/app/test_calc.py"), Some(17))
    );
    let add = &scan.failures[1];
    assert_eq!(add.status, TestStatus::Failed);
    assert_eq!(add.message.as_deref(), Some("AssertionError: 2 != 3"));
    assert_eq!(add.failure_type.as_deref(), Some("AssertionError"));
    assert_eq!(
        place(add),
        (Some("/home/runner/app/test_calc.py"), Some(10))
    );

    let log = "deploying\nError: connection refused\n  while calling http://db:5432\n\nFAIL some/check\nthread 'main' panicked at src/main.rs:4:5:\ncalled `Option::unwrap()` on a `None` value\nnote: run with `RUST_BACKTRACE=1`\n";
    let scan = scan_text(log);
    assert_eq!(scan.runner, Some("generic"));
    assert_eq!(
        names(&scan),
        [
            "Error: connection refused",
            "some/check",
            "thread 'main' panicked at src/main.rs:4:5:"
        ]
    );
    assert_eq!(
        scan.failures[0].message.as_deref(),
        Some("Error: connection refused\nwhile calling http://db:5432")
    );
    assert_eq!(scan.failures[1].status, TestStatus::Failed);
    assert_eq!(
        scan.failures[2].message.as_deref(),
        Some("called `Option::unwrap()` on a `None` value")
    );
    assert_eq!(place(&scan.failures[2]), (Some("src/main.rs"), Some(4)));

    let compile = "   Compiling calc v0.1.0\nerror[E0308]: mismatched types\n --> src/lib.rs:5:9\n  |\n5 |         \"x\"\n  |         ^^^ expected `i32`, found `&str`\n";
    let scan = scan_text(compile);
    assert_eq!(names(&scan), ["error[E0308]: mismatched types"]);
    assert_eq!(place(&scan.failures[0]), (Some("src/lib.rs"), Some(5)));
}

#[test]
fn the_fallback_is_silent_once_a_runner_is_recognised() {
    let log = "Error: could not reach the cache\nFAILED to upload\ntest tests::a ... ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n";
    let scan = scan_text(log);
    assert_eq!(scan.runner, Some("cargo"));
    assert!(scan.failures.is_empty(), "{:?}", scan.failures);
    assert_eq!(scan.counts, counts(1, 0, 0));

    // A shell prompt that looks like Vitest's `❯` does not make the log Vitest's.
    let prompt = scan_text("❯ npm test\n\nFAIL: test_x (t.T.test_x)\n");
    assert_eq!(prompt.runner, Some("generic"));
    assert_eq!(names(&prompt), ["test_x (t.T.test_x)"]);

    let nothing = scan_text("hello\nworld\n");
    assert_eq!(nothing, Scan::default());
}

// Limits

fn cargo_failures(count: usize) -> String {
    let mut log = String::from("running tests\n");
    for i in 0..count {
        let _ = writeln!(log, "test tests::t{i:03} ... FAILED");
    }
    log
}

#[test]
fn at_most_max_failures_are_kept() {
    let scan = scan_text(&cargo_failures(MAX_FAILURES));
    assert_eq!(scan.failures.len(), MAX_FAILURES);
    assert!(!scan.truncated);

    let scan = scan_text(&cargo_failures(MAX_FAILURES + 1));
    assert_eq!(scan.failures.len(), MAX_FAILURES);
    assert!(scan.truncated);
    assert_eq!(
        scan.failures.last().map(|f| f.name.as_str()),
        Some(format!("tests::t{:03}", MAX_FAILURES - 1).as_str())
    );

    // A failure named again once the list is full is the same failure, not one more.
    let mut log = cargo_failures(MAX_FAILURES);
    log.push_str("\nfailures:\n\n---- tests::t000 stdout ----\nthread 'tests::t000' panicked at src/lib.rs:1:1:\nboom\n\n");
    let scan = scan_text(&log);
    assert!(!scan.truncated);
    assert_eq!(scan.failures[0].message.as_deref(), Some("boom"));
}

fn panic_with_message(lines: &[String]) -> String {
    let mut log = String::from(
        "---- tests::long stdout ----\nthread 'tests::long' panicked at src/lib.rs:1:1:\n",
    );
    for line in lines {
        log.push_str(line);
        log.push('\n');
    }
    log.push_str("note: run with `RUST_BACKTRACE=1`\n");
    log
}

#[test]
fn a_message_is_cut_at_max_message_bytes() {
    let exact = "x".repeat(MAX_MESSAGE_BYTES);
    let scan = scan_text(&panic_with_message(std::slice::from_ref(&exact)));
    assert_eq!(scan.failures[0].message.as_deref(), Some(exact.as_str()));

    // Two lines filling the limit exactly, the newline between them included.
    let half = "y".repeat(MAX_MESSAGE_BYTES / 2 - 1);
    let two = [half.clone(), format!("{half}z")];
    let scan = scan_text(&panic_with_message(&two));
    let message = scan.failures[0].message.clone().unwrap_or_default();
    assert_eq!(message.len(), MAX_MESSAGE_BYTES);
    assert!(message.ends_with('z'));

    let over = "é".repeat(MAX_MESSAGE_BYTES / 2 + 1);
    let scan = scan_text(&panic_with_message(&[over]));
    let message = scan.failures[0].message.clone().unwrap_or_default();
    assert!(message.len() <= MAX_MESSAGE_BYTES, "{}", message.len());
    assert!(message.ends_with('…'));
}

#[test]
fn a_message_keeps_at_most_max_message_lines() {
    let lines: Vec<String> = (1..=MAX_MESSAGE_LINES + 1)
        .map(|n| format!("line {n}"))
        .collect();
    let scan = scan_text(&panic_with_message(&lines[..MAX_MESSAGE_LINES]));
    let message = scan.failures[0].message.clone().unwrap_or_default();
    assert_eq!(message.lines().count(), MAX_MESSAGE_LINES);

    let scan = scan_text(&panic_with_message(&lines));
    let message = scan.failures[0].message.clone().unwrap_or_default();
    assert_eq!(message.lines().count(), MAX_MESSAGE_LINES);
    assert_eq!(
        message.lines().last(),
        Some(format!("line {MAX_MESSAGE_LINES}").as_str())
    );
}

#[test]
fn only_the_first_max_line_bytes_of_a_line_are_read() {
    // `test <name> ... FAILED` padded to exactly the limit is read; one byte more and its end,
    // which says FAILED, is past what is read.
    let line = |length: usize| {
        let frame = "test  ... FAILED".len();
        format!("test {} ... FAILED", "n".repeat(length - frame))
    };
    let at_limit = line(MAX_LINE_BYTES);
    assert_eq!(at_limit.len(), MAX_LINE_BYTES);
    let scan = scan_text(&at_limit);
    assert_eq!(scan.failures.len(), 1);
    // Names are bounded too.
    let name = &scan.failures[0].name;
    assert!(
        name.len() <= MAX_NAME_BYTES && name.ends_with('…'),
        "{name}"
    );

    let scan = scan_text(&line(MAX_LINE_BYTES + 1));
    assert!(scan.failures.is_empty());
}

#[test]
fn names_are_cut_at_max_name_bytes_at_a_character_boundary() {
    let exact = "n".repeat(MAX_NAME_BYTES);
    let scan = scan_text(&format!("test {exact} ... FAILED"));
    assert_eq!(scan.failures[0].name, exact);

    let long = "é".repeat(MAX_NAME_BYTES);
    let scan = scan_text(&format!("test {long} ... FAILED"));
    let name = &scan.failures[0].name;
    assert!(name.len() <= MAX_NAME_BYTES, "{}", name.len());
    assert!(name.ends_with('…'));
}

// Reading a stored log

#[test]
fn scan_log_reads_a_stored_step_log_as_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LogStore::new(dir.path());
    let text = fixture("jest_ansi.log");
    let mut writer = store.writer("E1", "2/1").expect("writer");
    for (n, line) in text.lines().enumerate() {
        writer.append(n as i64, line.as_bytes()).expect("append");
    }
    writer.flush().expect("flush");
    let reader = store.reader("E1", "2/1").expect("reader");
    let stored = scan_log(&reader).expect("scan");
    assert_eq!(stored, scan_text(&text));
    assert_eq!(stored.failures.len(), 3);
}

// A big log

#[test]
fn one_failure_in_the_middle_of_50_mb_is_found() {
    let mut scanner = LogScanner::new();
    let mut bytes = 0usize;
    let totals = generate(50_000_000, |line| {
        bytes += line.len() + 1;
        scanner.feed(line);
    });
    assert!(bytes >= 50_000_000);
    let scan = scanner.finish();
    assert_eq!(scan.runner, Some("cargo"));
    assert_eq!(names(&scan), [FAILING_TEST]);
    let case = &scan.failures[0];
    assert_eq!(case.suite, "checkout");
    assert_eq!(case.status, TestStatus::Failed);
    assert_eq!(
        case.message.as_deref(),
        Some("assertion `left == right` failed: discount must apply\nleft: 90\nright: 81")
    );
    assert_eq!(place(case), (Some("src/checkout.rs"), Some(118)));
    assert_eq!(scan.counts, Some(totals));
    assert_eq!(totals.failed, 1);
    assert!(!scan.truncated);
}
