//! JUnit reports: real producers' fixtures (tests/fixtures/junit, see its README), limits at their
//! edges, and broken or hostile documents.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use testloop_orchestrator::results::junit::{
    self, JunitError, MAX_CASES, MAX_DEPTH, MAX_DETAILS_BYTES, MAX_FIND_DEPTH, MAX_FIND_ENTRIES,
    MAX_MESSAGE_BYTES, MAX_REPORT_BYTES, Report, SNIFF_BYTES,
};
use testloop_orchestrator::results::{TestCase, TestStatus};

use TestStatus::{Error, Failed, Passed, Skipped};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/junit")
}

fn fixture(name: &str) -> Report {
    let report =
        junit::parse_file(&fixtures().join(name)).unwrap_or_else(|error| panic!("{name}: {error}"));
    assert_eq!(report.truncated, None, "{name}");
    assert_eq!(report.problem, None, "{name}");
    report
}

/// (suite, class, name, status) of every case, in document order.
fn identities(report: &Report) -> Vec<(&str, Option<&str>, &str, TestStatus)> {
    report
        .cases
        .iter()
        .map(|c| {
            (
                c.suite.as_str(),
                c.class.as_deref(),
                c.name.as_str(),
                c.status,
            )
        })
        .collect()
}

fn case<'r>(report: &'r Report, name: &str) -> &'r TestCase {
    report
        .cases
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case {name} in {:#?}", report.cases))
}

/// Asserts a case's message, failure type, file and line.
fn assert_failure(
    case: &TestCase,
    message: Option<&str>,
    failure_type: Option<&str>,
    file: Option<&str>,
    line: Option<u32>,
) {
    assert_eq!(case.message.as_deref(), message, "message of {}", case.name);
    assert_eq!(
        case.failure_type.as_deref(),
        failure_type,
        "type of {}",
        case.name
    );
    assert_eq!(case.file.as_deref(), file, "file of {}", case.name);
    assert_eq!(case.line, line, "line of {}", case.name);
}

fn suite_of(cases: &str) -> Vec<u8> {
    format!("<?xml version=\"1.0\"?>\n<testsuites>\n<testsuite name=\"s\">\n{cases}</testsuite>\n</testsuites>\n")
        .into_bytes()
}

#[test]
fn pytest_report() {
    let report = fixture("pytest.xml");
    let module = Some("tests.test_calc");
    let class = Some("tests.test_calc.TestStorage");
    assert_eq!(
        identities(&report),
        [
            ("calc", module, "test_add", Passed),
            ("calc", module, "test_add_negative", Failed),
            ("calc", module, "test_divide_by_zero", Failed),
            ("calc", module, "test_multiply", Skipped),
            ("calc", class, "test_save", Passed),
            ("calc", class, "test_load", Error),
        ]
    );
    let file = Some("tests/test_calc.py");
    assert_failure(
        case(&report, "test_add_negative"),
        Some("assert -3 == -4\n +  where -3 = add(-1, -2)"),
        None,
        file,
        Some(11),
    );
    // The exception is raised in calc.py; the test's own line is the one in its module.
    assert_failure(
        case(&report, "test_divide_by_zero"),
        Some("ZeroDivisionError: division by zero"),
        None,
        file,
        Some(15),
    );
    assert_failure(
        case(&report, "test_load"),
        Some("failed on setup with \"ConnectionError: database is unreachable\""),
        None,
        file,
        Some(25),
    );
    assert_failure(
        case(&report, "test_multiply"),
        Some("multiplication is not implemented"),
        Some("pytest.skip"),
        Some("/tmp/app/py/tests/test_calc.py"),
        Some(18),
    );
    assert_eq!(case(&report, "test_add").duration_ms, Some(1));
    let details = case(&report, "test_add_negative").details.as_deref();
    assert!(
        details.is_some_and(|d| d.starts_with("def test_add_negative():")),
        "{details:?}"
    );
}

#[test]
fn pytest_xunit1_report_locates_cases_by_attribute_and_failures_by_text() {
    let report = fixture("pytest-xunit1.xml");
    assert_eq!(report.cases.len(), 6);
    let file = Some("tests/test_calc.py");
    // A passing case has only the attributes: pytest's line, as pytest gives it.
    assert_failure(case(&report, "test_add"), None, None, file, Some(5));
    assert_failure(case(&report, "test_save"), None, None, file, Some(28));
    // A failure's text names a line in the same file: that line wins over the definition's.
    assert_failure(
        case(&report, "test_add_negative"),
        Some("assert -3 == -4\n +  where -3 = add(-1, -2)"),
        None,
        file,
        Some(11),
    );
    assert_failure(
        case(&report, "test_multiply"),
        Some("multiplication is not implemented"),
        Some("pytest.skip"),
        file,
        Some(18),
    );
}

#[test]
fn jest_report() {
    let report = fixture("jest.xml");
    assert_eq!(
        identities(&report),
        [
            (
                "calc",
                Some("calc adds two numbers"),
                "calc adds two numbers",
                Passed
            ),
            (
                "calc",
                Some("calc adds negative numbers"),
                "calc adds negative numbers",
                Failed
            ),
            (
                "calc",
                Some("calc divides by zero"),
                "calc divides by zero",
                Failed
            ),
            ("calc", Some("calc multiplies"), "calc multiplies", Skipped),
        ]
    );
    let file = Some("/tmp/app/jest/calc.test.js");
    // jest-junit gives no message attribute: the text's first line is the message.
    assert_failure(
        case(&report, "calc adds negative numbers"),
        Some("Error: expect(received).toBe(expected) // Object.is equality"),
        None,
        file,
        Some(9),
    );
    // The error is thrown in src/calc.js; the frame in the test file is preferred.
    assert_failure(
        case(&report, "calc divides by zero"),
        Some("RangeError: division by zero"),
        None,
        file,
        Some(13),
    );
    assert_eq!(case(&report, "calc multiplies").message, None);
}

#[test]
fn vitest_report() {
    let report = fixture("vitest.xml");
    let file = "vitest/calc.test.js";
    assert_eq!(
        identities(&report),
        [
            (file, Some(file), "calc > adds two numbers", Passed),
            (file, Some(file), "calc > adds negative numbers", Failed),
            (file, Some(file), "calc > divides by zero", Failed),
            (file, Some(file), "calc > multiplies", Skipped),
        ]
    );
    assert_failure(
        case(&report, "calc > adds negative numbers"),
        Some("expected -3 to be -4 // Object.is equality"),
        Some("AssertionError"),
        Some(file),
        Some(10),
    );
    assert_failure(
        case(&report, "calc > divides by zero"),
        Some("division by zero"),
        Some("RangeError"),
        Some(file),
        Some(14),
    );
    assert_eq!(
        case(&report, "calc > adds negative numbers").duration_ms,
        Some(7)
    );
}

#[test]
fn playwright_report() {
    let report = fixture("playwright.xml");
    let file = "calc.spec.js";
    assert_eq!(
        identities(&report),
        [
            (file, Some(file), "calc › adds two numbers", Passed),
            (file, Some(file), "calc › adds negative numbers", Failed),
            (file, Some(file), "calc › divides by zero", Error),
            (file, Some(file), "calc › multiplies", Skipped),
        ]
    );
    assert_failure(
        case(&report, "calc › adds negative numbers"),
        Some("expect(received).toBe(expected) // Object.is equality"),
        Some("expect.toBe"),
        Some("/tmp/app/pw/calc.spec.js"),
        Some(10),
    );
    assert_failure(
        case(&report, "calc › divides by zero"),
        Some("division by zero"),
        Some("RangeError"),
        Some("/tmp/app/pw/calc.spec.js"),
        Some(14),
    );
    // The skipped case has no time attribute.
    assert_eq!(case(&report, "calc › multiplies").duration_ms, None);
}

#[test]
fn nextest_report() {
    let report = fixture("nextest.xml");
    let c = Some("calc");
    assert_eq!(
        identities(&report),
        [
            ("calc", c, "tests::adds_two_numbers", Passed),
            ("calc", c, "tests::adds_negative_numbers", Failed),
            ("calc", c, "tests::divides_by_zero", Failed),
            ("calc", c, "tests::flaky_counter", Passed),
            ("calc", c, "tests::sleeps_past_the_timeout", Failed),
        ]
    );
    let exit = Some("test failure with exit code 101");
    // The message attribute is the panic's header; the panic message follows it in the text.
    let negative = case(&report, "tests::adds_negative_numbers");
    assert_failure(
        negative,
        Some("assertion `left == right` failed\n  left: -3\n right: -4"),
        exit,
        Some("src/lib.rs"),
        Some(20),
    );
    assert!(
        negative
            .details
            .as_deref()
            .is_some_and(|d| d.starts_with("failed on 1 rerun(s) as well\nthread ")),
        "{:?}",
        negative.details
    );
    assert_failure(
        case(&report, "tests::divides_by_zero"),
        Some("attempt to divide by zero"),
        exit,
        Some("src/lib.rs"),
        Some(6),
    );
    let timeout = case(&report, "tests::sleeps_past_the_timeout");
    assert_failure(timeout, None, Some("test timeout"), None, None);
    assert_eq!(timeout.duration_ms, Some(1002));

    let flaky = case(&report, "tests::flaky_counter");
    assert_failure(flaky, None, None, None, None);
    assert_eq!(
        flaky.details.as_deref(),
        Some(
            "passed on a rerun after 1 failed attempt(s); the first failed with: first attempt fails"
        )
    );
}

#[test]
fn go_junit_report() {
    let report = fixture("go-junit-report.xml");
    let calc = "example.com/calc";
    let store = "example.com/calc/store";
    assert_eq!(
        identities(&report),
        [
            (calc, Some(calc), "TestAdd", Passed),
            (calc, Some(calc), "TestAddNegative", Failed),
            (calc, Some(calc), "TestDivide", Failed),
            (calc, Some(calc), "TestDivide/by_one", Passed),
            (calc, Some(calc), "TestDivide/by_zero", Failed),
            (calc, Some(calc), "TestMultiply", Skipped),
            (store, Some(store), "[build failed]", Error),
        ]
    );
    let file = Some("calc_test.go");
    // "Failed" only restates the status: the text's first line (less its location) says more.
    assert_failure(
        case(&report, "TestAddNegative"),
        Some("Add(-1, -2) = -3; want -4"),
        None,
        file,
        Some(14),
    );
    // A parent of failing subtests has no text: the placeholder is all there is.
    assert_failure(
        case(&report, "TestDivide"),
        Some("Failed"),
        None,
        None,
        None,
    );
    assert_failure(
        case(&report, "TestDivide/by_zero"),
        Some("Divide(1, 0) returned no error"),
        None,
        file,
        Some(27),
    );
    assert_failure(
        case(&report, "TestMultiply"),
        Some("multiplication is not implemented"),
        None,
        file,
        Some(33),
    );
    assert_failure(
        case(&report, "[build failed]"),
        Some("undefined: Open"),
        None,
        Some("store/store_test.go"),
        Some(9),
    );
}

#[test]
fn surefire_report() {
    let report = fixture("TEST-com.example.calc.CalculatorTest.xml");
    let suite = "com.example.calc.CalculatorTest";
    let class = Some(suite);
    assert_eq!(
        identities(&report),
        [
            (suite, class, "addsTwoNumbers", Passed),
            (suite, class, "addsNegativeNumbers", Failed),
            (suite, class, "dividesByZero", Error),
            (suite, class, "multiplies", Skipped),
            (suite, class, "cachesResults", Passed),
        ]
    );
    let negative = case(&report, "addsNegativeNumbers");
    // Six assertion-library frames come first; the test class's frame is the location.
    assert_failure(
        negative,
        Some("expected: <-4> but was: <-3>"),
        Some("org.opentest4j.AssertionFailedError"),
        Some("CalculatorTest.java"),
        Some(21),
    );
    assert!(
        negative.details.as_deref().is_some_and(|d| d.starts_with(
            "failed on 2 rerun(s) as well\norg.opentest4j.AssertionFailedError: expected: <-4>"
        )),
        "{:?}",
        negative.details
    );
    // Thrown in Calculator.java, located in the test.
    assert_failure(
        case(&report, "dividesByZero"),
        Some("/ by zero"),
        Some("java.lang.ArithmeticException"),
        Some("CalculatorTest.java"),
        Some(27),
    );
    assert_failure(
        case(&report, "multiplies"),
        Some("multiplication is not implemented"),
        None,
        None,
        None,
    );
    let flaky = case(&report, "cachesResults");
    assert_failure(flaky, None, None, None, None);
    assert_eq!(
        flaky.details.as_deref(),
        Some(
            "passed on a rerun after 1 failed attempt(s); the first failed with: cache miss ==> \
             expected: <true> but was: <false>"
        )
    );
    assert_eq!(flaky.duration_ms, Some(11));
}

#[test]
fn every_fixture_is_found_and_every_truncation_is_reported() {
    let found = junit::find_reports(&fixtures());
    let names: Vec<_> = found
        .iter()
        .filter_map(|p| p.file_name()?.to_str())
        .collect();
    assert_eq!(
        names,
        [
            "TEST-com.example.calc.CalculatorTest.xml",
            "go-junit-report.xml",
            "jest.xml",
            "nextest.xml",
            "playwright.xml",
            "pytest-xunit1.xml",
            "pytest.xml",
            "vitest.xml",
        ]
    );
    for path in found {
        let xml = fs::read(&path).expect("fixture");
        let complete = junit::parse(&xml).expect("fixture parses").cases.len();
        // Past the root's closing tag only whitespace remains.
        let root_end = xml.trim_ascii_end().len();
        for cut in 0..xml.len() {
            match junit::parse(&xml[..cut]) {
                Ok(report) => {
                    assert!(report.cases.len() <= complete, "{path:?} cut at {cut}");
                    if cut < root_end {
                        assert!(
                            report.problem.is_some(),
                            "{path:?} cut at {cut} parsed without a problem"
                        );
                    }
                }
                Err(JunitError::Io { .. } | JunitError::TooLarge { .. }) => {
                    panic!("{path:?} cut at {cut}: unexpected error kind")
                }
                Err(_) => {}
            }
        }
    }
}

#[test]
fn malformed_xml_before_any_case_is_an_error_naming_line_and_column() {
    let xml =
        b"<testsuites>\n  <testsuite name=\"a\">\n    <testcase name=\"x\">\n  </testsuite>\n";
    match junit::parse(xml) {
        Err(JunitError::Malformed {
            line,
            column,
            message,
        }) => {
            assert_eq!((line, column), (4, 3), "{message}");
            assert!(message.contains("testcase"), "{message}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn malformed_xml_after_cases_keeps_them_and_records_where() {
    let xml = b"<testsuite name=\"s\">\n<testcase name=\"a\"/>\n<testcase name=\"b\"><failure message=\"m\"/></testcase>\n<testcase name=\"c\"></tests>\n</testsuite>\n";
    let report = junit::parse(xml).expect("partial report");
    assert_eq!(
        identities(&report),
        [("s", None, "a", Passed), ("s", None, "b", Failed)]
    );
    let problem = report.problem.expect("problem");
    assert!(problem.starts_with("line 4, column "), "{problem}");
    assert!(problem.contains("malformed XML"), "{problem}");
}

#[test]
fn a_document_cut_short_keeps_the_cases_before_the_cut() {
    let full = suite_of(
        "<testcase name=\"a\"/>\n<testcase name=\"b\"><failure message=\"boom\">trace</failure></testcase>\n<testcase name=\"c\"/>\n",
    );
    let text = String::from_utf8(full).expect("utf-8");
    // Cut inside the third case: two complete cases, the third is lost.
    let cut = text.find("<testcase name=\"c\"").expect("third case") + 10;
    let report = junit::parse(&text.as_bytes()[..cut]).expect("partial report");
    assert_eq!(
        identities(&report),
        [("s", None, "a", Passed), ("s", None, "b", Failed)]
    );
    assert!(report.problem.is_some());

    // Cut after the cases but before the closing tags.
    let cut = text.find("</testsuite>").expect("end");
    let report = junit::parse(&text.as_bytes()[..cut]).expect("partial report");
    assert_eq!(report.cases.len(), 3);
    let problem = report.problem.expect("problem");
    assert!(problem.contains("ends before </testsuite>"), "{problem}");

    // Cut before any case is complete: nothing to keep.
    let cut = text.find("<testcase name=\"a\"").expect("first case") + 5;
    assert!(matches!(
        junit::parse(&text.as_bytes()[..cut]),
        Err(JunitError::Malformed { .. })
    ));
    let cut = text.find("<testcase name=\"b\"").expect("second case");
    match junit::parse(&text.as_bytes()[..cut]) {
        Ok(report) => assert_eq!(report.cases.len(), 1),
        other => panic!("expected one case, got {other:?}"),
    }
}

fn many_cases(count: usize, failing_last: bool) -> Vec<u8> {
    let mut cases = String::with_capacity(count * 48);
    for i in 0..count {
        if failing_last && i + 1 == count {
            let _ = writeln!(
                cases,
                "<testcase classname=\"c\" name=\"t{i}\"><failure message=\"late\"/></testcase>"
            );
        } else {
            let _ = writeln!(
                cases,
                "<testcase classname=\"c\" name=\"t{i}\" time=\"0.001\"/>"
            );
        }
    }
    suite_of(&cases)
}

#[test]
fn the_case_limit_keeps_exactly_max_cases() {
    let report = junit::parse(&many_cases(MAX_CASES, false)).expect("report");
    assert_eq!(report.cases.len(), MAX_CASES);
    assert_eq!(report.truncated, None);
    assert_eq!(report.problem, None);

    let report = junit::parse(&many_cases(MAX_CASES + 1, true)).expect("report");
    assert_eq!(report.cases.len(), MAX_CASES);
    let last = report.cases.last().expect("cases");
    assert_eq!(last.name, format!("t{}", MAX_CASES - 1));
    let truncated = report.truncated.expect("truncated");
    assert!(
        truncated.contains(&format!("{} test cases", MAX_CASES + 1))
            && truncated.contains(&format!("first {MAX_CASES} were kept"))
            && truncated.contains("1 of the 1 left out failed"),
        "{truncated}"
    );
}

/// A document of exactly `size` bytes holding one case: the rest is a comment.
fn document_of_size(size: usize) -> Vec<u8> {
    let head = b"<testsuite name=\"s\"><testcase name=\"a\"/><!--";
    let tail = b"--></testsuite>";
    let mut xml = Vec::with_capacity(size);
    xml.extend_from_slice(head);
    xml.resize(size - tail.len(), b' ');
    xml.extend_from_slice(tail);
    xml
}

#[test]
fn the_size_limit_accepts_max_report_bytes_and_refuses_one_more() {
    let limit = usize::try_from(MAX_REPORT_BYTES).expect("fits");
    let report = junit::parse(&document_of_size(limit)).expect("at the limit");
    assert_eq!(report.cases.len(), 1);

    match junit::parse(&document_of_size(limit + 1)) {
        Err(JunitError::TooLarge { size, limit }) => {
            assert_eq!((size, limit), (MAX_REPORT_BYTES + 1, MAX_REPORT_BYTES));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn parse_file_refuses_an_oversized_file_before_reading_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("huge.xml");
    // Sparse: reading it would take seconds and 128 MiB; the size check needs neither.
    let file = fs::File::create(&path).expect("create");
    file.set_len(MAX_REPORT_BYTES + 1).expect("set_len");
    let start = Instant::now();
    assert!(matches!(
        junit::parse_file(&path),
        Err(JunitError::TooLarge { size, .. }) if size == MAX_REPORT_BYTES + 1
    ));
    assert!(start.elapsed() < Duration::from_millis(500));

    assert!(matches!(
        junit::parse_file(&dir.path().join("missing.xml")),
        Err(JunitError::Io { .. })
    ));
}

fn nested(depth: usize, with_case_first: bool) -> Vec<u8> {
    // testsuites, then testsuites down to `depth` elements in all, the innermost holding a case.
    let mut xml = String::from("<testsuites>");
    if with_case_first {
        xml.push_str("<testsuite name=\"first\"><testcase name=\"early\"/></testsuite>");
    }
    for level in 1..depth - 1 {
        let _ = write!(xml, "<testsuite name=\"level{level}\">");
    }
    xml.push_str("<testcase name=\"deep\"/>");
    for _ in 1..depth - 1 {
        xml.push_str("</testsuite>");
    }
    xml.push_str("</testsuites>");
    xml.into_bytes()
}

#[test]
fn nesting_is_read_to_max_depth_and_refused_past_it() {
    let report = junit::parse(&nested(MAX_DEPTH, false)).expect("at the limit");
    assert_eq!(
        identities(&report),
        [(
            format!("level{}", MAX_DEPTH - 2).as_str(),
            None,
            "deep",
            Passed
        )]
    );

    match junit::parse(&nested(MAX_DEPTH + 1, false)) {
        Err(JunitError::TooDeep { line, limit, .. }) => {
            assert_eq!((line, limit), (1, MAX_DEPTH));
        }
        other => panic!("expected TooDeep, got {other:?}"),
    }

    let report = junit::parse(&nested(MAX_DEPTH + 1, true)).expect("partial report");
    assert_eq!(identities(&report), [("first", None, "early", Passed)]);
    let problem = report.problem.expect("problem");
    assert!(problem.contains("nest deeper than"), "{problem}");
}

#[test]
fn nested_suites_name_their_cases_and_the_file_name_is_the_fallback() {
    let xml = br#"<testsuites name="all">
  <testcase name="orphan"/>
  <testsuite name="outer">
    <testcase name="a"/>
    <testsuite name="inner"><testcase name="b"/></testsuite>
    <testsuite><testcase name="c"/></testsuite>
    <testcase name="d"/>
  </testsuite>
</testsuites>"#;
    let report = junit::parse_named(xml, "report.xml").expect("report");
    assert_eq!(
        identities(&report),
        [
            ("report.xml", None, "orphan", Passed),
            ("outer", None, "a", Passed),
            ("inner", None, "b", Passed),
            ("outer", None, "c", Passed),
            ("outer", None, "d", Passed),
        ]
    );
    assert_eq!(junit::parse(xml).expect("report").cases[0].suite, "");

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("unnamed.xml");
    fs::write(&path, "<testsuite><testcase name=\"x\"/></testsuite>").expect("write");
    let report = junit::parse_file(&path).expect("report");
    assert_eq!(report.cases[0].suite, "unnamed.xml");
}

#[test]
fn the_first_failure_decides_and_the_others_are_noted() {
    let xml = suite_of(
        r#"<testcase name="fail-then-error"><failure message="assert 1 == 2"/><error message="teardown broke"/></testcase>
<testcase name="error-then-fail"><error message="crashed" type="OSError"/><failure message="later"/></testcase>
<testcase name="skipped-and-failed"><skipped message="skip"/><failure message="but failed"/></testcase>
<testcase name="skipped-with-text"><skipped>  
  needs a GPU
</skipped></testcase>
"#,
    );
    let report = junit::parse(&xml).expect("report");
    let first = case(&report, "fail-then-error");
    assert_eq!(first.status, Failed);
    assert_eq!(first.message.as_deref(), Some("assert 1 == 2"));
    assert_eq!(
        first.details.as_deref(),
        Some("1 more <failure>/<error> element(s) in this case")
    );
    let second = case(&report, "error-then-fail");
    assert_eq!(second.status, Error);
    assert_eq!(second.failure_type.as_deref(), Some("OSError"));
    assert_eq!(case(&report, "skipped-and-failed").status, Failed);
    let skipped = case(&report, "skipped-with-text");
    assert_eq!(skipped.status, Skipped);
    assert_eq!(skipped.message.as_deref(), Some("needs a GPU"));
}

#[test]
fn times_tolerate_grouping_decimal_commas_and_garbage() {
    let xml = suite_of(
        r#"<testcase name="grouped" time="1,234.5"/>
<testcase name="comma" time="0,25"/>
<testcase name="empty" time=""/>
<testcase name="words" time="fast"/>
<testcase name="none"/>
"#,
    );
    let report = junit::parse(&xml).expect("report");
    let durations: Vec<_> = report.cases.iter().map(|c| c.duration_ms).collect();
    assert_eq!(durations, [Some(1_234_500), Some(250), None, None, None]);
}

#[test]
fn messages_and_details_are_bounded_at_their_limits() {
    let exact = "m".repeat(MAX_MESSAGE_BYTES);
    let over = format!("{}é", "m".repeat(MAX_MESSAGE_BYTES - 1));
    let body_exact = "d".repeat(MAX_DETAILS_BYTES);
    let body_over = "d".repeat(MAX_DETAILS_BYTES + 1);
    let xml = suite_of(&format!(
        "<testcase name=\"exact\"><failure message=\"{exact}\">{body_exact}</failure></testcase>\n\
         <testcase name=\"over\"><failure message=\"{over}\">{body_over}</failure></testcase>\n"
    ));
    let report = junit::parse(&xml).expect("report");

    let kept = case(&report, "exact");
    assert_eq!(kept.message.as_deref(), Some(exact.as_str()));
    assert_eq!(kept.details.as_deref(), Some(body_exact.as_str()));

    let cut = case(&report, "over");
    let message = cut.message.as_deref().expect("message");
    assert!(message.len() <= MAX_MESSAGE_BYTES, "{}", message.len());
    // The two-byte é straddles the limit: the cut falls before it.
    assert_eq!(message, format!("{}…", "m".repeat(MAX_MESSAGE_BYTES - 3)));
    let details = cut.details.as_deref().expect("details");
    assert!(details.len() <= MAX_DETAILS_BYTES);
    assert!(details.ends_with('…') && details.starts_with("ddd"));
}

#[test]
fn a_location_far_down_the_text_is_not_looked_for() {
    // The frame line ends exactly at the end of the text kept; one more byte of filler pushes
    // its closing parenthesis out.
    let frame = "\tat com.example.FooTest.bar(FooTest.java:7)";
    let case_for = |filler: usize| {
        format!(
            "<testcase classname=\"com.example.FooTest\" name=\"bar\"><failure message=\"m\">{}\n{frame}\n</failure></testcase>\n",
            "x".repeat(filler)
        )
    };
    let room = junit::MAX_BODY_BYTES - frame.len() - 1;
    let xml = suite_of(&(case_for(room) + &case_for(room + 1).replace("\"bar\"", "\"baz\"")));
    let report = junit::parse(&xml).expect("report");
    assert_eq!(case(&report, "bar").line, Some(7));
    assert_eq!(case(&report, "baz").line, None);
}

#[test]
fn a_billion_laughs_document_is_inert_and_fast() {
    let xml = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<testsuite name="&lol9;">
  <testcase name="laugh &lol9;"><failure message="&lol9;">&lol9;&lol9; &amp; &#x41;</failure></testcase>
</testsuite>"#;
    let start = Instant::now();
    let report = junit::parse(xml).expect("report");
    assert!(start.elapsed() < Duration::from_secs(1));
    let laugh = &report.cases[0];
    assert_eq!(laugh.suite, "&lol9;");
    assert_eq!(laugh.name, "laugh &lol9;");
    assert_eq!(laugh.message.as_deref(), Some("&lol9;"));
    assert_eq!(laugh.details.as_deref(), Some("&lol9;&lol9; & A"));
}

#[test]
fn bytes_that_are_not_utf8_become_replacement_characters() {
    let xml = b"<testsuite name=\"caf\xE9\"><testcase name=\"t\xFF\xFE\"><failure message=\"bad \xC3\"/></testcase></testsuite>";
    let report = junit::parse(xml).expect("report");
    let only = &report.cases[0];
    assert_eq!(only.suite, "caf\u{FFFD}");
    assert_eq!(only.name, "t\u{FFFD}\u{FFFD}");
    assert_eq!(only.message.as_deref(), Some("bad \u{FFFD}"));
}

#[test]
fn empty_and_foreign_documents_are_errors() {
    for empty in [
        &b""[..],
        b"  \n",
        b"<?xml version=\"1.0\"?>\n<!-- nothing -->\n",
    ] {
        assert!(
            matches!(junit::parse(empty), Err(JunitError::Empty)),
            "{empty:?}"
        );
    }
    match junit::parse(b"<project><testsuite/></project>") {
        Err(JunitError::NotJunit { root }) => assert_eq!(root, "project"),
        other => panic!("expected NotJunit, got {other:?}"),
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("empty.xml");
    fs::write(&path, "").expect("write");
    assert!(matches!(junit::parse_file(&path), Err(JunitError::Empty)));
    // An empty suite is a report with no cases, not an error.
    assert!(
        junit::parse(b"<testsuites/>")
            .expect("report")
            .cases
            .is_empty()
    );
}

const REPORT: &str =
    "<?xml version=\"1.0\"?>\n<testsuite name=\"s\"><testcase name=\"t\"/></testsuite>\n";

#[test]
fn find_reports_lists_reports_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    fs::create_dir_all(root.join("module/target/surefire-reports")).expect("dirs");
    fs::create_dir_all(root.join("node_modules/pkg")).expect("dirs");
    fs::write(root.join("report.xml"), REPORT).expect("write");
    fs::write(root.join("UPPER.XML"), REPORT).expect("write");
    fs::write(root.join("pom.xml"), "<project><testsuite/></project>").expect("write");
    fs::write(root.join("report.txt"), REPORT).expect("write");
    fs::write(root.join("empty.xml"), "").expect("write");
    fs::write(
        root.join("module/target/surefire-reports/TEST-a.xml"),
        "\u{feff}<!-- generated -->\n<testsuites>",
    )
    .expect("write");
    fs::write(root.join("node_modules/pkg/junit.xml"), REPORT).expect("write");
    std::os::unix::fs::symlink(root.join("report.xml"), root.join("link.xml")).expect("symlink");
    std::os::unix::fs::symlink(root, root.join("module/loop")).expect("symlink");

    assert_eq!(
        junit::find_reports(root),
        [
            root.join("UPPER.XML"),
            root.join("module/target/surefire-reports/TEST-a.xml"),
            root.join("report.xml"),
        ]
    );
    assert_eq!(
        junit::find_reports(&root.join("missing")),
        Vec::<PathBuf>::new()
    );
}

#[test]
fn find_reports_reads_only_the_first_sniff_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tag = "<testsuite>";
    // The root's name and the character after it end exactly at SNIFF_BYTES.
    let padding = |extra: usize| {
        let comment_room = SNIFF_BYTES - tag.len() - "<!---->".len() + extra;
        format!("<!--{}-->{tag}</testsuite>", " ".repeat(comment_room))
    };
    fs::write(dir.path().join("edge.xml"), padding(0)).expect("write");
    fs::write(dir.path().join("past.xml"), padding(1)).expect("write");
    assert_eq!(
        junit::find_reports(dir.path()),
        [dir.path().join("edge.xml")]
    );
}

#[test]
fn find_reports_descends_max_find_depth_levels() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut deepest = dir.path().to_path_buf();
    for level in 1..=MAX_FIND_DEPTH + 1 {
        deepest.push(format!("d{level}"));
        fs::create_dir(&deepest).expect("dir");
        fs::write(deepest.join("report.xml"), REPORT).expect("write");
    }
    let found = junit::find_reports(dir.path());
    assert_eq!(found.len(), MAX_FIND_DEPTH);
    let last = found.iter().max_by_key(|p| p.components().count());
    assert_eq!(
        last.and_then(|p| p.parent()?.file_name()?.to_str()),
        Some(format!("d{MAX_FIND_DEPTH}").as_str())
    );
}

#[test]
fn find_reports_stops_after_max_find_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    // Entries: the fillers, `sub`, and `sub/report.xml`, which breadth-first order visits last.
    let fill = |count: usize| {
        for i in 0..count {
            fs::write(root.join(format!("f{i}")), "").expect("filler");
        }
    };
    fs::create_dir(root.join("sub")).expect("dir");
    fs::write(root.join("sub/report.xml"), REPORT).expect("write");
    fill(MAX_FIND_ENTRIES - 2);
    assert_eq!(junit::find_reports(root), [root.join("sub/report.xml")]);
    fs::write(root.join("one-more"), "").expect("filler");
    assert_eq!(junit::find_reports(root), Vec::<PathBuf>::new());
}
