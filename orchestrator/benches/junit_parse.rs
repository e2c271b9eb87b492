//! `parse_file` on a ~50 MB JUnit report shaped like a big Java build's: hundreds of suites,
//! 90 000 cases, 1% failures with 40-frame stack traces, captured output on 40% of the cases
//! (which is what makes real reports this large).
//!
//! `cargo bench -p testloop-orchestrator --bench junit_parse`

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use testloop_orchestrator::results::TestStatus;
use testloop_orchestrator::results::junit;

const SUITES: usize = 450;
const CASES_PER_SUITE: usize = 200;
/// One case in this many fails.
const FAILURE_EVERY: usize = 100;
/// One case in this many is skipped.
const SKIP_EVERY: usize = 250;
/// Four cases in ten carry `<system-out>`.
const OUTPUT_EVERY: [usize; 4] = [0, 3, 5, 8];
const REPEATS: usize = 7;

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("TEST-big.xml");
    let start = Instant::now();
    let xml = generate();
    std::fs::write(&path, &xml).expect("write report");
    let bytes = xml.len();
    drop(xml);
    println!(
        "generated {:.1} MB, {} suites, {} cases in {:.2} s",
        bytes as f64 / 1e6,
        SUITES,
        SUITES * CASES_PER_SUITE,
        start.elapsed().as_secs_f64()
    );

    let mut times = Vec::with_capacity(REPEATS);
    let mut cases = 0;
    let mut failures = 0;
    for _ in 0..REPEATS {
        let start = Instant::now();
        let report = junit::parse_file(&path).expect("parse");
        times.push(start.elapsed());
        assert_eq!(report.truncated, None);
        assert_eq!(report.problem, None);
        cases = report.cases.len();
        failures = report
            .cases
            .iter()
            .filter(|c| c.status == TestStatus::Failed && c.line.is_some())
            .count();
    }
    assert_eq!(cases, SUITES * CASES_PER_SUITE);
    assert_eq!(failures, SUITES * CASES_PER_SUITE / FAILURE_EVERY);
    times.sort();
    let median = times[REPEATS / 2];
    let seconds = median.as_secs_f64();
    println!(
        "{:>10} | {:>10} | {:>10} | {:>12} | {:>14}",
        "repeats", "min", "median", "MB/s", "cases/s"
    );
    println!("{}", "-".repeat(66));
    println!(
        "{REPEATS:>10} | {:>10} | {:>10} | {:>12.0} | {:>14.0}",
        fmt(times[0]),
        fmt(median),
        bytes as f64 / 1e6 / seconds,
        cases as f64 / seconds,
    );
    println!("({failures} failures, each located by its stack trace)");
}

fn generate() -> Vec<u8> {
    let mut xml = String::with_capacity(56_000_000);
    xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"build\">\n");
    let mut n = 0usize;
    for suite in 0..SUITES {
        let class = format!(
            "com.example.module{}.service.Component{suite}ServiceTest",
            suite % 17
        );
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{class}\" tests=\"{CASES_PER_SUITE}\" time=\"12.5\">"
        );
        xml.push_str(
            "    <properties><property name=\"java.version\" value=\"21.0.5\"/></properties>\n",
        );
        for case in 0..CASES_PER_SUITE {
            n += 1;
            let name = format!("shouldHandleRequestVariant{case}WhenInputIsValid");
            let time = format!("{}.{:03}", n % 3, n % 1000);
            let _ = write!(
                xml,
                "    <testcase name=\"{name}\" classname=\"{class}\" time=\"{time}\">"
            );
            if n.is_multiple_of(FAILURE_EVERY) {
                failure(&mut xml, &class, &name, case);
            } else if n.is_multiple_of(SKIP_EVERY) {
                xml.push_str("<skipped message=\"disabled until the fixture is fixed\"/>");
            }
            if OUTPUT_EVERY.contains(&(n % 10)) {
                xml.push_str("\n      <system-out><![CDATA[");
                for line in 0..6 {
                    let _ = writeln!(
                        xml,
                        "2026-01-15 09:30:{:02}.{:03} INFO  [main] {class} - step {line} of request {n} handled in {} ms",
                        line,
                        n % 1000,
                        (n * 7 + line) % 97
                    );
                }
                xml.push_str("]]></system-out>\n    ");
            }
            xml.push_str("</testcase>\n");
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml.into_bytes()
}

fn failure(xml: &mut String, class: &str, method: &str, case: usize) {
    let _ = write!(
        xml,
        "\n      <failure message=\"expected: &lt;{case}&gt; but was: &lt;{}&gt;\" type=\"org.opentest4j.AssertionFailedError\"><![CDATA[org.opentest4j.AssertionFailedError: expected: <{case}> but was: <{}>\n",
        case + 1,
        case + 1
    );
    for frame in [
        "org.junit.jupiter.api.AssertionFailureBuilder.build(AssertionFailureBuilder.java:151)",
        "org.junit.jupiter.api.AssertionFailureBuilder.buildAndThrow(AssertionFailureBuilder.java:132)",
        "org.junit.jupiter.api.AssertEquals.failNotEqual(AssertEquals.java:197)",
        "org.junit.jupiter.api.AssertEquals.assertEquals(AssertEquals.java:150)",
        "org.junit.jupiter.api.Assertions.assertEquals(Assertions.java:531)",
    ] {
        let _ = writeln!(xml, "\tat {frame}");
    }
    let file = class.rsplit('.').next().unwrap_or(class);
    let _ = writeln!(xml, "\tat {class}.{method}({file}.java:{})", 40 + case);
    for depth in 0..34 {
        let _ = writeln!(
            xml,
            "\tat org.junit.platform.engine.support.hierarchical.NodeTestTask.executeRecursively{depth}(NodeTestTask.java:{})",
            100 + depth
        );
    }
    xml.push_str("]]></failure>");
}

fn fmt(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}
