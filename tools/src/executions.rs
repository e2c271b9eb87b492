//! Execution tools: run, watch, inspect, list, abort and re-run executions.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use rmcp::handler::server::tool::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::ProgressNotificationParam;
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use testloop_orchestrator::execution::{
    ExecutionRecord, ExecutionStatus, ExecutorKind, StepRecord, Trigger, now_micros,
};
use testloop_orchestrator::results::TestStatus;
use testloop_orchestrator::run::{RunEvent, RunRequest};
use testloop_orchestrator::store::{ExecutionFilter, TestCaseFilter, TestCounts};
use testloop_orchestrator::summary::{self, FailureSummary};
use tokio::sync::broadcast;

use crate::TestloopServer;
use crate::output::{
    ConfigValue, NextCall, Reply, ToolError, config_text, format_millis, millis_between, rfc3339,
};
use crate::results;

/// The longest `wait_seconds` honoured; longer waits are cut to this.
pub const MAX_WAIT_SECONDS: u64 = 600;

/// How long abort_execution waits for the execution to stop before it answers.
pub const ABORT_WAIT: Duration = Duration::from_secs(10);

/// Executions one `list_executions` call returns when no `limit` is given.
pub const DEFAULT_EXECUTION_PAGE: usize = 20;

/// Executions one `list_executions` call returns at most; larger limits are clamped.
pub const MAX_EXECUTION_PAGE: usize = 100;

/// Steps listed in one execution report; the rest are counted, not listed.
pub const MAX_STEPS_SHOWN: usize = 200;

/// Regex suggested for a failed step's log: the lines that usually say why.
/// Failed test cases named in get_execution; get_test_results lists them all.
pub const MAX_FAILED_TESTS_SHOWN: usize = 5;

/// Bytes of one failed test's message in get_execution.
pub const MAX_FAILED_TEST_MESSAGE_BYTES: usize = 300;

/// Lines of one failed test's message in get_execution.
pub const MAX_FAILED_TEST_MESSAGE_LINES: usize = 4;

/// When failed test cases are named, the failure summary keeps only this many of the failing
/// step's last lines: the cases already say what failed, and the answer stays small.
pub const SUMMARY_LINES_WITH_TESTS: usize = 3;

pub const FAILURE_GREP: &str = "(?i)error|fail|assert|panic|exception|expected";

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RunWorkflowArgs {
    /// The saved workflow's name (see list_workflows).
    pub name: String,
    /// Config values by parameter name (`{"env": "staging", "retries": 3, "fast": true}`;
    /// numbers and booleans may also be given as text); parameters not given take their
    /// defaults. get_workflow lists the parameters.
    #[serde(default)]
    pub config: BTreeMap<String, ConfigValue>,
    /// Seconds to wait for the execution to finish before answering (default 0: answer at once;
    /// at most 600). The execution goes on in the background whatever happens to this call;
    /// progress notifications report steps as they start and finish while waiting.
    #[serde(default)]
    pub wait_seconds: u64,
    /// Where to run it: `local` (processes on the server's machine) or `kubernetes` (one pod per
    /// unit in the server's cluster, when it was started with one). Default: the server's
    /// `--executor`.
    #[serde(default)]
    pub executor: Option<ExecutorKind>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExecutionIdArgs {
    /// The execution id, or a unique prefix of it (see list_executions).
    pub id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RerunArgs {
    /// The execution to run again: its id or a unique prefix.
    pub id: String,
    /// Seconds to wait for the new execution to finish (default 0; at most 600), as for
    /// run_workflow.
    #[serde(default)]
    pub wait_seconds: u64,
    /// Re-run only what did not pass (default false): top-level steps that passed are skipped
    /// (setup and after steps still run), and the names of the test cases that failed reach the
    /// workflow as `{{ execution.failed_tests }}` (a list: `{{ shellquote(execution.failed_tests)
    /// }}` passes them as arguments), so a test step can run just those.
    #[serde(default)]
    pub only_failed: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListExecutionsArgs {
    /// Only executions of this workflow.
    #[serde(default)]
    pub workflow: Option<String>,
    /// Only executions with this status: queued, running, passed, failed, aborted, timed-out,
    /// interrupted.
    #[serde(default)]
    pub status: Option<String>,
    /// Only executions started since then: an RFC 3339 timestamp or an age such as `30m`, `2h`,
    /// `7d`.
    #[serde(default)]
    pub since: Option<String>,
    /// Cursor: only executions older than this id (pass the previous page's `next_cursor`).
    #[serde(default)]
    pub before: Option<String>,
    /// Executions per page (default 20, at most 100).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One step's result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StepRow {
    /// `1`, `2/1`, `setup/1`, `after/1`: pass it to get_logs as `step`.
    pub path: String,
    pub name: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    pub attempts: u32,
    /// Why, when a status alone does not say (timeout, skipped, signal, failed to start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A log line.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SummaryLine {
    /// 1-based line number in the step's log.
    pub number: u64,
    pub text: String,
}

/// The first failure and what its log says.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Failure {
    /// The failed step's path.
    pub step: String,
    pub name: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Whether the step is optional (its failure did not fail the execution).
    pub optional: bool,
    /// Its last meaningful log lines (blank lines and testloop notes skipped), oldest first.
    pub last_lines: Vec<SummaryLine>,
    /// Lines in the step's whole log.
    pub total_lines: u64,
}

/// A failed test case, in brief.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FailedTest {
    /// What the test runner calls it.
    pub test: String,
    /// failed or error.
    pub status: TestStatus,
    /// The assertion or error message, cut to a few lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `file:line` of the failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// An execution's test results in brief (get_test_results has them all).
#[derive(Debug, Serialize, JsonSchema)]
pub struct TestsSummary {
    pub counts: TestCounts,
    /// The first failed cases, at most [`MAX_FAILED_TESTS_SHOWN`].
    pub failed: Vec<FailedTest>,
    /// Where they came from: JUnit reports among the artifacts, or `log:<step>` when recognised
    /// in a step's log.
    pub sources: Vec<String>,
    /// Problems reading a report (malformed, cut at a limit).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// An execution: verdict, timings, config, step tree and, when it failed, a failure summary.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ExecutionReport {
    pub id: String,
    pub workflow: String,
    pub workflow_version: u32,
    /// queued, running, passed, failed, aborted, timed-out or interrupted.
    pub status: String,
    /// Whether the status is final.
    pub finished: bool,
    pub trigger: String,
    /// RFC 3339.
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Run time so far, or in total when finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Why it ended this way, when not just "a step failed" (abort, deadline, crash).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The execution this one re-runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerun_of: Option<String>,
    /// Where it ran, when not on the server's machine: `kubernetes` (one pod per unit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
    /// Config values it ran with (sensitive ones masked).
    pub config: Map<String, Value>,
    /// Steps in tree order (a parent before its nested steps).
    pub steps: Vec<StepRow>,
    /// Steps left out of `steps` (over the listing limit).
    #[serde(skip_serializing_if = "is_zero")]
    pub steps_omitted: usize,
    /// Its test cases in brief, when it produced test results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestsSummary>,
    /// The first failed step and its last meaningful lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// The call to make next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<NextCall>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A compact execution row.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ExecutionRow {
    pub id: String,
    pub workflow: String,
    pub workflow_version: u32,
    pub status: String,
    pub trigger: String,
    /// RFC 3339.
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerun_of: Option<String>,
}

/// A page of executions, newest first.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ExecutionList {
    pub executions: Vec<ExecutionRow>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// What abort_execution did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AbortResult {
    pub id: String,
    /// Whether an abort was sent (false: the execution was not running).
    pub aborted: bool,
    /// The execution's status after the abort (or as it was, when not running).
    pub status: String,
    pub message: String,
}

#[tool_router(router = execution_tools, vis = "pub(crate)")]
impl TestloopServer {
    /// Run a saved workflow. The execution starts in the background and goes on whatever happens
    /// to this call. With `wait_seconds` (at most 600) the call waits for it to finish, sending
    /// progress notifications as steps start and finish, and returns the final report (status,
    /// steps, and a failure summary naming the failing step and its last lines); without it, or
    /// when the wait ends first, it returns the current status, the execution id and the call to
    /// make next (get_execution).
    #[tool(
        output_schema = schema_for_output::<ExecutionReport>(),
        annotations(
            title = "Run a workflow",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub async fn run_workflow(
        &self,
        Parameters(args): Parameters<RunWorkflowArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<Reply<ExecutionReport>, ToolError> {
        let handle = self.orchestrator.start(RunRequest {
            workflow: args.name,
            config: config_text(args.config),
            trigger: Trigger::Mcp,
            executor: args.executor,
        })?;
        // Dropping `handle.done` detaches the run: it finishes on its own.
        self.wait_and_report(&handle.id, handle.events, args.wait_seconds, &context)
            .await
    }

    /// Show an execution: status, timings, config (sensitive values masked), the step tree (path,
    /// name, status, exit code, duration, attempts, message) and, when something failed, a
    /// failure summary: the first failed step, its last meaningful log lines, and the get_logs
    /// call that shows more. Start here when a run failed.
    #[tool(
        output_schema = schema_for_output::<ExecutionReport>(),
        annotations(
            title = "Get an execution",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn get_execution(
        &self,
        Parameters(args): Parameters<ExecutionIdArgs>,
    ) -> Result<Reply<ExecutionReport>, ToolError> {
        self.report(&args.id, None)
    }

    /// List executions, newest first, as compact rows (id, workflow, version, status, trigger,
    /// start time, duration). Filter by workflow, status, or `since` (RFC 3339 or an age like
    /// `2h`); page with `before` = the previous page's `next_cursor`.
    #[tool(
        output_schema = schema_for_output::<ExecutionList>(),
        annotations(
            title = "List executions",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn list_executions(
        &self,
        Parameters(args): Parameters<ListExecutionsArgs>,
    ) -> Result<Reply<ExecutionList>, ToolError> {
        let status = match args.status.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(text.parse::<ExecutionStatus>().map_err(|_| {
                ToolError::new(format!(
                    "unknown status `{text}`: use one of queued, running, passed, failed, \
                     aborted, timed-out, interrupted"
                ))
            })?),
        };
        let since = args
            .since
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|text| testloop_orchestrator::since::parse_since(text, now_micros()))
            .transpose()
            .map_err(|error| ToolError::new(error.to_string()))?;
        let before = args
            .before
            .as_deref()
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(|b| {
                if b.len() == 26 && b.chars().all(|c| c.is_ascii_alphanumeric()) {
                    Ok(b.to_ascii_uppercase())
                } else {
                    Err(ToolError::new(format!(
                        "`before` must be an execution id (26 characters, as in next_cursor), \
                         got `{b}`"
                    )))
                }
            })
            .transpose()?;
        let limit = args
            .limit
            .unwrap_or(DEFAULT_EXECUTION_PAGE)
            .clamp(1, MAX_EXECUTION_PAGE);
        let mut records = self.orchestrator.executions(&ExecutionFilter {
            workflow: args.workflow.clone(),
            status,
            limit: limit + 1,
            before_id: before,
        })?;
        let mut more = records.len() > limit;
        if let Some(since) = since
            && let Some(cut) = records.iter().position(|r| r.created_at < since)
        {
            // Newest first: everything from the first older one on is older too.
            records.truncate(cut);
            more = false;
        }
        records.truncate(limit);
        let next_cursor = more.then(|| records.last().map(|r| r.id.clone())).flatten();
        let executions: Vec<ExecutionRow> = records
            .iter()
            .map(|r| ExecutionRow {
                id: r.id.clone(),
                workflow: r.workflow.clone(),
                workflow_version: r.workflow_version,
                status: r.status.to_string(),
                trigger: r.trigger.to_string(),
                created_at: rfc3339(r.created_at),
                duration_ms: duration_ms(r),
                rerun_of: r.rerun_of.clone(),
            })
            .collect();
        let mut text = if executions.is_empty() {
            let mut text = "no executions match".to_owned();
            if let Some(workflow) = &args.workflow {
                let _ = write!(
                    text,
                    " (workflow `{workflow}`: list_workflows shows the names)"
                );
            }
            text
        } else {
            format!("{} execution(s), newest first:\n", executions.len())
        };
        for row in &executions {
            let _ = write!(
                text,
                "{} {} v{} {} {}",
                row.id, row.workflow, row.workflow_version, row.status, row.created_at
            );
            if let Some(ms) = row.duration_ms {
                let _ = write!(text, " {}", format_millis(ms));
            }
            text.push('\n');
        }
        if let Some(cursor) = &next_cursor {
            let _ = write!(text, "more: list_executions with before=\"{cursor}\"");
        }
        Ok(Reply::new(
            ExecutionList {
                executions,
                next_cursor,
            },
            text.trim_end(),
        ))
    }

    /// Abort a running execution: its running step's process group gets SIGTERM, then SIGKILL
    /// after a grace period, and every step that has not started is skipped (`after` steps too:
    /// an abort stops everything). Waits up to 10 seconds for it to stop and returns its status. An
    /// execution that is not running is reported as such, not as an error.
    #[tool(
        output_schema = schema_for_output::<AbortResult>(),
        annotations(
            title = "Abort an execution",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn abort_execution(
        &self,
        Parameters(args): Parameters<ExecutionIdArgs>,
    ) -> Result<Reply<AbortResult>, ToolError> {
        let (record, _) = self.orchestrator.execution(&args.id)?;
        let mut events = self.orchestrator.events();
        if !self.orchestrator.abort(&record.id) {
            let message = if record.status.is_terminal() {
                format!(
                    "execution {} is not running (it is {}): nothing to abort",
                    record.id, record.status
                )
            } else {
                format!(
                    "execution {} is {} but not run by this testloop process: it cannot be \
                     aborted from here",
                    record.id, record.status
                )
            };
            return Ok(Reply::new(
                AbortResult {
                    id: record.id,
                    aborted: false,
                    status: record.status.to_string(),
                    message: message.clone(),
                },
                message,
            ));
        }
        let _ = tokio::time::timeout(ABORT_WAIT, async {
            loop {
                match events.recv().await {
                    Ok(RunEvent::ExecutionFinished(done)) if done.id == record.id => break,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        })
        .await;
        let (now, _) = self.orchestrator.execution(&record.id)?;
        let message = if now.status.is_terminal() {
            format!("aborted execution {}: it is now {}", now.id, now.status)
        } else {
            format!(
                "abort sent to execution {}; it is still stopping (get_execution shows when it \
                 has)",
                now.id
            )
        };
        Ok(Reply::new(
            AbortResult {
                id: now.id,
                aborted: true,
                status: now.status.to_string(),
                message: message.clone(),
            },
            message,
        ))
    }

    /// Run an execution again with the same workflow version (the YAML it ran, even if the
    /// workflow was edited or deleted since) and the same config. The new execution records
    /// which one it re-runs. `wait_seconds` works as for run_workflow. Use it to check a fix in
    /// the code under test, or whether a failure is flaky; `only_failed: true` re-runs only the
    /// steps (and, where the workflow uses `execution.failed_tests`, the tests) that failed.
    #[tool(
        output_schema = schema_for_output::<ExecutionReport>(),
        annotations(
            title = "Re-run an execution",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub async fn rerun_execution(
        &self,
        Parameters(args): Parameters<RerunArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<Reply<ExecutionReport>, ToolError> {
        let handle = self
            .orchestrator
            .rerun(&args.id, Trigger::Mcp, args.only_failed)?;
        self.wait_and_report(&handle.id, handle.events, args.wait_seconds, &context)
            .await
    }
}

/// How a wait ended.
enum WaitEnd {
    Finished,
    TimeUp,
    Cancelled,
}

impl TestloopServer {
    async fn wait_and_report(
        &self,
        id: &str,
        events: broadcast::Receiver<RunEvent>,
        wait_seconds: u64,
        context: &RequestContext<RoleServer>,
    ) -> Result<Reply<ExecutionReport>, ToolError> {
        let wait = wait_seconds.min(MAX_WAIT_SECONDS);
        let end = if wait == 0 {
            WaitEnd::TimeUp
        } else {
            wait_for(id, events, Duration::from_secs(wait), context).await
        };
        let note = match end {
            WaitEnd::Finished => None,
            WaitEnd::TimeUp if wait == 0 => Some("started; it runs in the background".to_owned()),
            WaitEnd::TimeUp => Some(format!(
                "still running after waiting {wait}s{}",
                if wait < wait_seconds {
                    format!(" (waits are capped at {MAX_WAIT_SECONDS}s)")
                } else {
                    String::new()
                }
            )),
            WaitEnd::Cancelled => Some("the wait was cancelled; the execution goes on".to_owned()),
        };
        self.report(id, note)
    }

    /// The report of an execution, with `note` (how a wait ended) leading its text.
    fn report(&self, id: &str, note: Option<String>) -> Result<Reply<ExecutionReport>, ToolError> {
        let (record, steps) = self.orchestrator.execution(id)?;
        let failure = summary::failure_summary(self.orchestrator.logs(), &record, &steps)
            .map_err(testloop_orchestrator::run::Error::from)?;
        let tests = self.tests_summary(&record.id)?;
        let report = build_report(&record, &steps, failure, tests);
        let mut text = String::new();
        if let Some(note) = note {
            let _ = writeln!(text, "{note}");
        }
        text.push_str(&render_report(&report));
        Ok(Reply::new(report, text))
    }
}

impl TestloopServer {
    fn tests_summary(&self, execution: &str) -> Result<Option<TestsSummary>, ToolError> {
        let store = self.orchestrator.store();
        let map = |error| ToolError::from(testloop_orchestrator::run::Error::Store(error));
        let reports = store.test_reports(execution).map_err(map)?;
        if reports.is_empty() {
            return Ok(None);
        }
        let counts = store.test_counts(execution).map_err(map)?;
        let failed = store
            .test_cases(
                execution,
                &TestCaseFilter {
                    statuses: vec![TestStatus::Failed, TestStatus::Error],
                    limit: MAX_FAILED_TESTS_SHOWN,
                    ..TestCaseFilter::default()
                },
            )
            .map_err(map)?
            .into_iter()
            .map(|stored| FailedTest {
                test: results::display_name(&stored.case),
                status: stored.case.status,
                location: results::location(&stored.case),
                message: stored.case.message.as_deref().map(brief_message),
            })
            .collect();
        Ok(Some(TestsSummary {
            counts,
            failed,
            problems: reports
                .iter()
                .filter_map(|report| {
                    report
                        .problem
                        .as_ref()
                        .map(|problem| format!("{}: {problem}", report.source))
                })
                .collect(),
            sources: reports.into_iter().map(|report| report.source).collect(),
        }))
    }
}

/// A failure message cut to [`MAX_FAILED_TEST_MESSAGE_LINES`] lines and
/// [`MAX_FAILED_TEST_MESSAGE_BYTES`] bytes.
fn brief_message(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim_end)
        .filter(|line| !line.trim().is_empty())
        .take(MAX_FAILED_TEST_MESSAGE_LINES)
        .collect();
    summary::cut_line(&lines.join("\n"), MAX_FAILED_TEST_MESSAGE_BYTES).into_owned()
}

/// Waits for `id` to finish, for `wait` at most, or until the request is cancelled; sends a
/// progress notification per step event when the client asked for progress.
async fn wait_for(
    id: &str,
    mut events: broadcast::Receiver<RunEvent>,
    wait: Duration,
    context: &RequestContext<RoleServer>,
) -> WaitEnd {
    let token = context.meta.get_progress_token();
    let deadline = tokio::time::sleep(wait);
    tokio::pin!(deadline);
    let mut progress = 0u32;
    loop {
        let event = tokio::select! {
            () = context.ct.cancelled() => return WaitEnd::Cancelled,
            () = &mut deadline => return WaitEnd::TimeUp,
            event = events.recv() => event,
        };
        let message = match event {
            Ok(event) if event.execution_id() != id => continue,
            Ok(RunEvent::ExecutionFinished(_)) => return WaitEnd::Finished,
            Ok(RunEvent::StepStarted(step)) => {
                format!("step {} `{}` started", step.path, step.name)
            }
            Ok(RunEvent::StepFinished(step)) => {
                let mut message = format!("step {} `{}` {}", step.path, step.name, step.status);
                if let Some(code) = step.exit_code.filter(|c| *c != 0) {
                    let _ = write!(message, " (exit {code})");
                }
                message
            }
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return WaitEnd::Finished,
        };
        if let Some(token) = &token {
            progress += 1;
            let _ = context
                .peer
                .notify_progress(
                    ProgressNotificationParam::new(token.clone(), f64::from(progress))
                        .with_message(message),
                )
                .await;
        }
    }
}

fn duration_ms(record: &ExecutionRecord) -> Option<u64> {
    let start = record.started_at?;
    let end = record.finished_at.unwrap_or_else(now_micros);
    Some(millis_between(start, end))
}

fn build_report(
    record: &ExecutionRecord,
    steps: &[StepRecord],
    failure: Option<FailureSummary>,
    tests: Option<TestsSummary>,
) -> ExecutionReport {
    let names_failed_tests = tests.as_ref().is_some_and(|t| !t.failed.is_empty());
    let rows: Vec<StepRow> = steps
        .iter()
        .take(MAX_STEPS_SHOWN)
        .map(|s| StepRow {
            path: s.path.clone(),
            name: s.name.clone(),
            status: s.status.to_string(),
            exit_code: s.exit_code,
            duration_ms: s
                .started_at
                .map(|start| millis_between(start, s.finished_at.unwrap_or_else(now_micros))),
            attempts: s.attempts,
            message: s.message.clone(),
        })
        .collect();
    let failure = failure.map(|f| Failure {
        step: f.step.path.clone(),
        name: f.step.name.clone(),
        status: f.step.status.to_string(),
        exit_code: f.step.exit_code,
        message: f.step.message.clone(),
        optional: f.optional,
        last_lines: f
            .lines
            .into_iter()
            .rev()
            .take(if names_failed_tests {
                SUMMARY_LINES_WITH_TESTS
            } else {
                usize::MAX
            })
            .rev()
            .map(|l| SummaryLine {
                number: l.number,
                text: l.text,
            })
            .collect(),
        total_lines: f.total_lines,
    });
    let first_failed_test = tests.as_ref().and_then(|t| t.failed.first());
    let next = if !record.status.is_terminal() {
        Some(NextCall::new(
            "get_execution",
            json!({"id": record.id}),
            "check on it later (or abort_execution to stop it)",
        ))
    } else if let (Some(t), Some(f)) = (first_failed_test, &failure) {
        let name = t.test.rsplit("::").next().unwrap_or(&t.test).trim();
        Some(NextCall::new(
            "get_logs",
            json!({"execution": record.id, "step": f.step, "grep": regex::escape(name), "context": 5}),
            "see the first failing test's output in context",
        ))
    } else if let Some(f) = &failure {
        Some(NextCall::new(
            "get_logs",
            json!({"execution": record.id, "step": f.step, "grep": FAILURE_GREP, "context": 3}),
            "see the failing step's errors in context",
        ))
    } else if record.status != ExecutionStatus::Passed {
        Some(NextCall::new(
            "get_logs",
            json!({"execution": record.id}),
            "see the steps' last lines",
        ))
    } else {
        None
    };
    ExecutionReport {
        id: record.id.clone(),
        workflow: record.workflow.clone(),
        workflow_version: record.workflow_version,
        status: record.status.to_string(),
        finished: record.status.is_terminal(),
        trigger: record.trigger.to_string(),
        created_at: rfc3339(record.created_at),
        finished_at: record.finished_at.map(rfc3339),
        duration_ms: duration_ms(record),
        error: record.error.clone(),
        rerun_of: record.rerun_of.clone(),
        executor: (record.executor != ExecutorKind::Local).then(|| record.executor.to_string()),
        config: summary::masked_config(record),
        steps: rows,
        steps_omitted: steps.len().saturating_sub(MAX_STEPS_SHOWN),
        tests,
        failure,
        next,
    }
}

fn render_report(report: &ExecutionReport) -> String {
    let mut text = format!(
        "execution {} of {} v{}: {}",
        report.id,
        report.workflow,
        report.workflow_version,
        report.status.to_uppercase()
    );
    if let Some(ms) = report.duration_ms {
        let verb = if report.finished { "in" } else { "for" };
        let _ = write!(text, " {verb} {}", format_millis(ms));
    }
    if let Some(rerun_of) = &report.rerun_of {
        let _ = write!(text, " (re-run of {rerun_of})");
    }
    if let Some(executor) = &report.executor {
        let _ = write!(text, " on {executor}");
    }
    text.push('\n');
    if let Some(error) = &report.error {
        let _ = writeln!(text, "why: {error}");
    }
    if !report.config.is_empty() {
        let values: Vec<String> = report
            .config
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect();
        let _ = writeln!(text, "config: {}", values.join(" "));
    }
    for step in &report.steps {
        let depth = step.path.matches('/').count()
            - usize::from(step.path.starts_with("setup/") || step.path.starts_with("after/"));
        let _ = write!(
            text,
            "{}{} {} {}",
            "  ".repeat(depth + 1),
            step.path,
            step.name,
            step.status
        );
        let says_code = |code: i32| {
            step.message
                .as_deref()
                .is_some_and(|m| m.contains(&format!("code {code}")))
        };
        if let Some(code) = step.exit_code.filter(|c| *c != 0 && !says_code(*c)) {
            let _ = write!(text, " exit {code}");
        }
        if let Some(ms) = step.duration_ms {
            let _ = write!(text, " {}", format_millis(ms));
        }
        if step.attempts > 1 {
            let _ = write!(text, " ({} attempts)", step.attempts);
        }
        if let Some(message) = &step.message {
            let _ = write!(text, ": {message}");
        }
        text.push('\n');
    }
    if report.steps_omitted > 0 {
        let _ = writeln!(text, "  … {} more steps", report.steps_omitted);
    }
    if let Some(tests) = &report.tests {
        let _ = writeln!(
            text,
            "{} (from {})",
            results::render_counts(&tests.counts),
            tests
                .sources
                .iter()
                .map(|source| match source.strip_prefix("log:") {
                    Some(step) => format!("the log of step {step}"),
                    None => source.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
        for case in &tests.failed {
            let mark = if case.status == TestStatus::Error {
                "ERROR"
            } else {
                "FAIL"
            };
            let _ = write!(text, "  {mark} {}", case.test);
            if let Some(location) = &case.location {
                let _ = write!(text, " ({location})");
            }
            match case.message.as_deref() {
                Some(message) if message.contains('\n') => {
                    text.push_str(":\n");
                    for line in message.lines() {
                        let _ = writeln!(text, "      {line}");
                    }
                }
                Some(message) => {
                    let _ = writeln!(text, ": {message}");
                }
                None => text.push('\n'),
            }
        }
        let shown = tests.failed.len();
        let failed = tests.counts.failed + tests.counts.error;
        if failed > shown {
            let _ = writeln!(
                text,
                "  … {} more failed: get_test_results with status [\"failed\"]",
                failed - shown
            );
        }
        for problem in &tests.problems {
            let _ = writeln!(text, "  note: {problem}");
        }
    }
    if let Some(f) = &report.failure {
        let _ = write!(text, "failed first: step {} `{}`", f.step, f.name);
        if f.optional {
            text.push_str(" (optional)");
        }
        if let Some(message) = &f.message {
            let _ = write!(text, ": {message}");
        }
        if f.last_lines.is_empty() {
            let _ = writeln!(text, "; it printed nothing");
        } else {
            let _ = writeln!(text, "; its last lines (of {}):", f.total_lines);
            for line in &f.last_lines {
                let _ = writeln!(text, "  {}| {}", line.number, line.text);
            }
        }
    }
    if let Some(next) = &report.next {
        let _ = write!(text, "next: {next}");
    }
    text.trim_end().to_owned()
}
