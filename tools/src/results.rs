//! Test result tools: the test cases of an execution (`get_test_results`) and the flaky ones of a
//! workflow (`find_flaky_tests`).

use std::fmt::Write as _;

use rmcp::handler::server::tool::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use testloop_orchestrator::flaky::{self, FlakyReport};
use testloop_orchestrator::results::{TestCase, TestStatus};
use testloop_orchestrator::store::{StoredTestCase, TestCaseFilter, TestCounts, TestReport};

use crate::TestloopServer;
use crate::output::{NextCall, Reply, ToolError};

/// Test cases per page when the caller does not say.
pub const DEFAULT_TEST_PAGE: usize = 20;

/// Most test cases per page.
pub const MAX_TEST_PAGE: usize = 200;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetTestResultsArgs {
    /// The execution: its id or a unique prefix.
    pub execution: String,
    /// Only cases with these statuses: passed, failed, error, skipped. `failed` includes
    /// `error` (a test that crashed rather than failed an assertion). Default: all, failed
    /// first.
    #[serde(default)]
    pub status: Vec<String>,
    /// Only cases whose suite, class or name contains this text (case-insensitive).
    #[serde(default)]
    pub name: Option<String>,
    /// Cases per page (default 20, at most 200).
    #[serde(default)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// One test case.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TestRow {
    /// Class and name (or suite and name): what the test runner calls it.
    pub test: String,
    pub suite: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    pub name: String,
    pub status: TestStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The assertion or error message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The exception or failure type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_type: Option<String>,
    /// `file:line` of the failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The start of the stack trace or failure output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// The JUnit report it came from, or `log:<step>` when recognised in a step's log.
    pub source: String,
}

/// A page of an execution's test cases.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TestResults {
    pub execution: String,
    /// Counts over all its cases, whatever the filter.
    pub counts: TestCounts,
    /// Where the cases came from, with any problem reading them.
    pub sources: Vec<TestReport>,
    pub cases: Vec<TestRow>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<NextCall>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FindFlakyArgs {
    /// The workflow's name.
    pub workflow: String,
    /// How many of its latest finished executions to look at (default 20, at most 200).
    #[serde(default)]
    pub last: Option<usize>,
}

/// `file:line`, `file`, or nothing.
pub fn location(case: &TestCase) -> Option<String> {
    let file = case.file.as_deref()?;
    Some(match case.line {
        Some(line) => format!("{file}:{line}"),
        None => file.to_owned(),
    })
}

/// What a test runner calls a case: `class::name`, or `suite::name`, or the name alone.
pub fn display_name(case: &TestCase) -> String {
    match (&case.class, case.suite.as_str()) {
        (Some(class), _) if !class.is_empty() && !case.name.starts_with(class.as_str()) => {
            format!("{class}::{}", case.name)
        }
        (_, suite) if !suite.is_empty() && !case.name.contains(suite) && case.class.is_none() => {
            format!("{suite}::{}", case.name)
        }
        _ => case.name.clone(),
    }
}

fn row(stored: StoredTestCase) -> TestRow {
    let case = stored.case;
    TestRow {
        test: display_name(&case),
        location: location(&case),
        suite: case.suite,
        class: case.class,
        name: case.name,
        status: case.status,
        duration_ms: case.duration_ms,
        message: case.message,
        failure_type: case.failure_type,
        details: case.details,
        source: stored.source,
    }
}

fn parse_statuses(texts: &[String]) -> Result<Vec<TestStatus>, ToolError> {
    let mut statuses = Vec::new();
    for text in texts {
        let status = text
            .trim()
            .to_ascii_lowercase()
            .parse::<TestStatus>()
            .map_err(|_| {
                ToolError::new(format!(
                    "unknown test status `{text}` in `status`: use passed, failed, error or skipped"
                ))
            })?;
        statuses.push(status);
        if status == TestStatus::Failed {
            statuses.push(TestStatus::Error);
        }
    }
    statuses.sort_unstable();
    statuses.dedup();
    Ok(statuses)
}

/// One line for a case: `✗ name (file:line): message`.
pub fn render_case(text: &mut String, row: &TestRow) {
    let mark = match row.status {
        TestStatus::Passed => "ok",
        TestStatus::Failed => "FAIL",
        TestStatus::Error => "ERROR",
        TestStatus::Skipped => "skip",
    };
    let _ = write!(text, "  {mark} {}", row.test);
    if let Some(location) = &row.location {
        let _ = write!(text, " ({location})");
    }
    if let Some(message) = &row.message {
        let first = message.lines().next().unwrap_or_default();
        let _ = write!(text, ": {first}");
    }
    text.push('\n');
}

/// `12 tests: 9 passed, 2 failed, 1 skipped`.
pub fn render_counts(counts: &TestCounts) -> String {
    let mut parts = vec![format!("{} passed", counts.passed)];
    if counts.failed > 0 {
        parts.push(format!("{} failed", counts.failed));
    }
    if counts.error > 0 {
        parts.push(format!("{} errors", counts.error));
    }
    if counts.skipped > 0 {
        parts.push(format!("{} skipped", counts.skipped));
    }
    format!("{} tests: {}", counts.total, parts.join(", "))
}

/// The text rendering of a flaky-test report, shared with `testloop flaky`.
pub fn render_flaky(report: &FlakyReport) -> String {
    let mut text = format!(
        "{}: {} executions, pass rate {:.0}%, flip rate {:.0}%; {} flaky of {} tests\n",
        report.workflow,
        report.executions,
        report.pass_rate * 100.0,
        report.flip_rate * 100.0,
        report.tests.len() + report.more,
        report.tests_seen
    );
    if let Some(note) = &report.note {
        let _ = writeln!(text, "note: {note}");
    }
    for test in &report.tests {
        let _ = write!(
            text,
            "  {} [{}] flips {} ({:.0}%), failed {}/{}",
            test.test,
            test.history,
            test.flips,
            test.flip_rate * 100.0,
            test.failures,
            test.runs
        );
        if let Some(last) = test.failed_in.first() {
            let _ = write!(text, ", last in {last}");
        }
        if let Some(message) = &test.last_message {
            let _ = write!(text, ": {}", message.lines().next().unwrap_or_default());
        }
        text.push('\n');
    }
    if report.more > 0 {
        let _ = writeln!(text, "  … {} more", report.more);
    }
    text
}

#[tool_router(router = result_tools, vis = "pub(crate)")]
impl TestloopServer {
    /// The test cases of an execution: parsed from the JUnit XML reports among its artifacts
    /// (pytest, Jest, Vitest, Go, Maven Surefire, Playwright, cargo-nextest and any other JUnit
    /// producer), or, when it has none, the failing tests recognised in its failed steps' logs.
    /// Failed and errored cases come first, each with its message, type and file:line. Filter by
    /// status or name; page with `cursor`.
    #[tool(
        output_schema = schema_for_output::<TestResults>(),
        annotations(
            title = "Get an execution's test results",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn get_test_results(
        &self,
        Parameters(args): Parameters<GetTestResultsArgs>,
    ) -> Result<Reply<TestResults>, ToolError> {
        let (record, _) = self.orchestrator.execution(&args.execution)?;
        let statuses = parse_statuses(&args.status)?;
        let limit = args
            .limit
            .unwrap_or(DEFAULT_TEST_PAGE)
            .clamp(1, MAX_TEST_PAGE);
        let offset = match args.cursor.as_deref().map(str::trim) {
            None | Some("") => 0,
            Some(cursor) => cursor.parse::<usize>().map_err(|_| {
                ToolError::new(format!(
                    "`cursor` must be the next_cursor of a previous page (a number), got `{cursor}`"
                ))
            })?,
        };
        let store = self.orchestrator.store();
        let map = |error| ToolError::from(testloop_orchestrator::run::Error::Store(error));
        let counts = store.test_counts(&record.id).map_err(map)?;
        let sources = store.test_reports(&record.id).map_err(map)?;
        let mut stored = store
            .test_cases(
                &record.id,
                &TestCaseFilter {
                    statuses,
                    name_contains: args.name.clone().filter(|name| !name.trim().is_empty()),
                    limit: limit + 1,
                    offset,
                },
            )
            .map_err(map)?;
        let more = stored.len() > limit;
        stored.truncate(limit);
        let cases: Vec<TestRow> = stored.into_iter().map(row).collect();
        let next_cursor = more.then(|| (offset + cases.len()).to_string());

        let mut text = format!("execution {}: {}\n", record.id, render_counts(&counts));
        if sources.is_empty() {
            text.push_str(if record.status.is_terminal() {
                "no test results: no JUnit report among its artifacts and no failing test \
                 recognised in its logs\n"
            } else {
                "no test results yet: they are read when the execution finishes\n"
            });
        }
        for source in &sources {
            if let Some(problem) = &source.problem {
                let _ = writeln!(text, "{}: {problem}", source.source);
            }
        }
        for case in &cases {
            render_case(&mut text, case);
        }
        if let Some(cursor) = &next_cursor {
            let _ = writeln!(text, "more: call again with cursor {cursor}");
        }
        let next = cases
            .iter()
            .find(|case| case.status.is_failure())
            .map(|case| {
                NextCall::new(
                    "get_logs",
                    json!({"execution": record.id, "grep": regex::escape(&case.name), "context": 5}),
                    "see the failing test's output in the log",
                )
            });
        Ok(Reply::new(
            TestResults {
                execution: record.id,
                counts,
                sources,
                cases,
                next_cursor,
                next,
            },
            text,
        ))
    }

    /// Flaky tests of a workflow: test cases whose outcome flipped between its recent executions
    /// of the same workflow version and config (so neither the workflow nor its inputs changed),
    /// with their flip rate, an outcome history (`p` passed, `f` failed, `.` absent, `|` where the
    /// workflow version or config changed) and the
    /// executions where they failed. Also the workflow's pass rate and flip rate.
    #[tool(
        output_schema = schema_for_output::<FlakyReport>(),
        annotations(
            title = "Find flaky tests",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn find_flaky_tests(
        &self,
        Parameters(args): Parameters<FindFlakyArgs>,
    ) -> Result<Reply<FlakyReport>, ToolError> {
        let window = args.last.unwrap_or(flaky::DEFAULT_WINDOW);
        if window == 0 || window > flaky::MAX_WINDOW {
            return Err(ToolError::new(format!(
                "`last` must be between 1 and {}, got {window}",
                flaky::MAX_WINDOW
            )));
        }
        let report = self.orchestrator.flaky_tests(&args.workflow, window)?;
        if report.executions == 0 {
            return Err(ToolError::new(format!(
                "workflow `{}` has no finished executions: run it (run_workflow) a few times \
                 first, or call list_workflows to check the name",
                args.workflow
            )));
        }
        let text = render_flaky(&report);
        Ok(Reply::new(report, text))
    }
}
