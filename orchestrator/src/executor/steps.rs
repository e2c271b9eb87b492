//! What a step's controls mean, decided once for every backend.
//!
//! Testkube's semantics, as testloop runs them:
//! - `condition` (default `passed`) is evaluated just before the step. `passed` is true while no
//!   non-optional step has failed so far in the step's own group and in every enclosing group;
//!   `failed` is its negation; `always` is true.
//! - A step does its own action first, then its nested steps; nested steps see the step's own
//!   failure. Its `artifacts` are collected last, whatever happened.
//! - `negative` turns an exit into its opposite (a timeout or an abort stays a failure).
//! - `optional`: the step's failure is recorded but does not fail its group or the execution.
//! - `retry.count` more attempts of the whole step while it fails, until `retry.until` (default
//!   `passed`) holds.
//! - `timeout` bounds one attempt, nested steps included; the unit's deadline bounds everything.
//! - After an abort or the unit's deadline nothing else starts; what did not run is `skipped`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Action, ArtifactRule, PlannedStep, StepOutput, Unit, UnitOutcome, UnitSink};
use crate::execution::{StepRecord, StepStatus, now_micros};
use crate::plan::PlanScope;
use crate::spec::expr::{self, Scope};

/// How a step's process ended. Serializable, because the runner in a pod keeps what its steps did
/// for the containers after it (see [`super::kubernetes::runner`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ended {
    Exited(i32),
    Signaled(i32),
    /// Killed by the kernel's OOM killer: the step's process died of SIGKILL (`exit_code` none),
    /// or exited with 137 as a shell does when its child died so, while the cgroup's OOM kill
    /// count went up. `limit` is the cgroup's memory limit (`64Mi`), when it has one.
    OutOfMemory {
        limit: Option<String>,
        exit_code: Option<i32>,
    },
    TimedOut,
    Aborted,
    FailedToStart(String),
}

/// Starts processes for one backend.
#[async_trait]
pub trait Launcher: Send + Sync {
    /// Runs `action` to its end, streaming its output into `log`. The process is stopped at
    /// `deadline` ([`Ended::TimedOut`]) or when `cancel` fires ([`Ended::Aborted`]).
    async fn launch(
        &self,
        action: &Action,
        log: &mut StepLog<'_>,
        deadline: Option<Instant>,
        cancel: &CancellationToken,
    ) -> Ended;

    /// Copies the files matched by `rule` into the execution's artifacts, saying what it did in
    /// `log`. Returns a problem worth failing the step for, if any.
    async fn collect_artifacts(&self, rule: &ArtifactRule, log: &mut StepLog<'_>)
    -> Option<String>;

    /// How much of the `delay` of the step at `step_path` to wait before it starts: all of it,
    /// unless the backend replays a step that already waited elsewhere (the runner of a later
    /// container in a pod).
    fn delay(&self, _step_path: &str, delay: Duration) -> Duration {
        delay
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Aborted,
    DeadlineExceeded,
}

/// Runs every step of `unit` through `launcher`, reporting to `sink`.
pub async fn run_unit(
    unit: &Unit,
    launcher: &dyn Launcher,
    sink: &dyn UnitSink,
    cancel: &CancellationToken,
) -> UnitOutcome {
    let mut walker = Walker {
        unit,
        launcher,
        sink,
        cancel,
        unit_deadline: unit.deadline.map(|limit| Instant::now() + limit),
        stop: None,
    };
    let failed = walker.walk(&unit.steps, false, None).await;
    match walker.stop {
        Some(Stop::Aborted) => UnitOutcome::Aborted,
        Some(Stop::DeadlineExceeded) => UnitOutcome::TimedOut,
        None if failed => UnitOutcome::Failed,
        None => UnitOutcome::Passed,
    }
}

struct Walker<'a> {
    unit: &'a Unit,
    launcher: &'a dyn Launcher,
    sink: &'a dyn UnitSink,
    cancel: &'a CancellationToken,
    unit_deadline: Option<Instant>,
    stop: Option<Stop>,
}

struct ConditionScope<'a> {
    passed: bool,
    variables: &'a std::collections::BTreeMap<String, Value>,
}

impl Scope for ConditionScope<'_> {
    fn resolve(&self, name: &str) -> Option<Value> {
        match name {
            "passed" => Some(Value::Bool(self.passed)),
            "failed" => Some(Value::Bool(!self.passed)),
            "always" => Some(Value::Bool(true)),
            "never" => Some(Value::Bool(false)),
            _ => PlanScope {
                variables: self.variables,
            }
            .resolve(name),
        }
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A step's result, before it is recorded.
struct Attempt {
    status: StepStatus,
    exit_code: Option<i32>,
    message: Option<String>,
}

impl<'a> Walker<'a> {
    /// Runs a group of sibling steps; true when a non-optional one failed.
    fn walk<'s>(
        &'s mut self,
        steps: &'a [PlannedStep],
        failed_before: bool,
        deadline: Option<Instant>,
    ) -> BoxFuture<'s, bool>
    where
        'a: 's,
    {
        Box::pin(async move {
            let mut failed_here = false;
            for step in steps {
                let status = self
                    .step(step, failed_before || failed_here, deadline)
                    .await;
                if status.is_failure() && !step.optional {
                    failed_here = true;
                }
            }
            failed_here
        })
    }

    fn record(&self, step: &PlannedStep, status: StepStatus) -> StepRecord {
        StepRecord {
            execution_id: self.unit.execution_id.clone(),
            path: step.path.clone(),
            name: step.name.clone(),
            status,
            exit_code: None,
            attempts: 0,
            started_at: None,
            finished_at: None,
            message: None,
        }
    }

    fn skip(&self, step: &PlannedStep, message: &str) {
        let mut record = self.record(step, StepStatus::Skipped);
        record.message = Some(message.to_owned());
        self.sink.step_finished(&record);
        for child in &step.children {
            self.skip(child, message);
        }
    }

    fn condition_holds(&self, expression: &expr::Expr, passed: bool) -> Result<bool, String> {
        let scope = ConditionScope {
            passed,
            variables: &self.unit.variables,
        };
        expression
            .eval(&scope)
            .map(|value| expr::truthy(&value))
            .map_err(|error| format!("condition `{}`: {error}", expression.source()))
    }

    async fn step(
        &mut self,
        step: &'a PlannedStep,
        failed_before: bool,
        deadline: Option<Instant>,
    ) -> StepStatus {
        if let Some(stop) = self.stop {
            self.skip(step, stop_reason(stop));
            return StepStatus::Skipped;
        }
        if let Some(reason) = &step.skip {
            self.skip(step, reason);
            return StepStatus::Skipped;
        }
        match self.condition_holds(&step.condition, !failed_before) {
            Ok(true) => {}
            Ok(false) => {
                let reason = format!("condition `{}` was false", step.condition.source());
                self.skip(step, &reason);
                return StepStatus::Skipped;
            }
            Err(message) => {
                let mut record = self.record(step, StepStatus::Failed);
                record.message = Some(message);
                self.sink.step_finished(&record);
                return StepStatus::Failed;
            }
        }

        let mut record = self.record(step, StepStatus::Running);
        record.started_at = Some(now_micros());
        let mut log = (step.action.is_some() || step.artifacts.is_some())
            .then(|| StepLog::new(self.sink, &step.path));

        if let Some(delay) = step.delay {
            self.sink.step_started(&record);
            let delay = self.launcher.delay(&step.path, delay);
            if !self.pause(delay).await {
                return self.finish_stopped(step, record);
            }
        }

        let attempts = 1 + step.retry.as_ref().map_or(0, |retry| retry.count);
        let mut outcome = Attempt {
            status: StepStatus::Passed,
            exit_code: None,
            message: None,
        };
        for attempt in 1..=attempts {
            record.attempts = attempt;
            record.status = StepStatus::Running;
            self.sink.step_started(&record);
            if attempt > 1
                && let Some(log) = log.as_mut()
            {
                note(log, &format!("retrying: attempt {attempt} of {attempts}"));
            }
            outcome = self
                .attempt(step, log.as_mut(), failed_before, deadline)
                .await;
            let retryable = outcome.status.is_failure()
                && !matches!(outcome.status, StepStatus::Aborted)
                && self.stop.is_none();
            if !retryable || attempt == attempts {
                break;
            }
            let until_holds = step
                .retry
                .as_ref()
                .map(|retry| self.condition_holds(&retry.until, false))
                .unwrap_or(Ok(false));
            if until_holds.unwrap_or(true) {
                break;
            }
        }

        if let Some(log) = log.as_mut() {
            log.flush();
            if let Some(problem) = log.problem()
                && outcome.status == StepStatus::Passed
            {
                outcome.status = StepStatus::Failed;
                outcome.message = Some(problem.to_owned());
            }
        }
        record.status = outcome.status;
        record.exit_code = outcome.exit_code;
        record.message = outcome.message;
        record.finished_at = Some(now_micros());
        self.sink.step_finished(&record);
        outcome.status
    }

    fn finish_stopped(&self, step: &PlannedStep, mut record: StepRecord) -> StepStatus {
        let stop = self.stop.unwrap_or(Stop::Aborted);
        record.status = match stop {
            Stop::Aborted => StepStatus::Aborted,
            Stop::DeadlineExceeded => StepStatus::TimedOut,
        };
        record.message = Some(stop_reason(stop).to_owned());
        record.finished_at = Some(now_micros());
        self.sink.step_finished(&record);
        for child in &step.children {
            self.skip(child, stop_reason(stop));
        }
        record.status
    }

    /// Waits, unless the unit is aborted or runs out of time first.
    async fn pause(&mut self, delay: Duration) -> bool {
        let until = Instant::now() + delay;
        let limit = self
            .unit_deadline
            .map_or(until, |deadline| deadline.min(until));
        tokio::select! {
            _ = self.cancel.cancelled() => { self.stop = Some(Stop::Aborted); false }
            _ = tokio::time::sleep_until(limit) => {
                if limit < until { self.stop = Some(Stop::DeadlineExceeded); false } else { true }
            }
        }
    }

    async fn attempt(
        &mut self,
        step: &'a PlannedStep,
        mut log: Option<&mut StepLog<'_>>,
        failed_before: bool,
        inherited_deadline: Option<Instant>,
    ) -> Attempt {
        let step_deadline = step.timeout.map(|limit| Instant::now() + limit);
        let deadline = [inherited_deadline, step_deadline, self.unit_deadline]
            .into_iter()
            .flatten()
            .min();

        let mut own = Attempt {
            status: StepStatus::Passed,
            exit_code: None,
            message: None,
        };
        if let (Some(action), Some(log)) = (&step.action, log.as_deref_mut()) {
            let ended = self
                .launcher
                .launch(action, log, deadline, self.cancel)
                .await;
            own = self.judge(step, ended, deadline, step_deadline);
        }

        let mut children_failed = false;
        if !step.children.is_empty() {
            children_failed = self
                .walk(
                    &step.children,
                    failed_before || own.status.is_failure(),
                    deadline,
                )
                .await;
        }

        let mut result = own;
        if result.status == StepStatus::Passed && children_failed {
            result.status = StepStatus::Failed;
            result.message = Some("a nested step failed".to_owned());
        }
        if step.negative && step.action.is_none() {
            result = invert(result);
        }

        if let (Some(rule), Some(log)) = (&step.artifacts, log)
            && let Some(problem) = self.launcher.collect_artifacts(rule, log).await
            && result.status == StepStatus::Passed
        {
            result.status = StepStatus::Failed;
            result.message = Some(problem);
        }
        result
    }

    /// Turns how the process ended into the step's own result.
    fn judge(
        &mut self,
        step: &PlannedStep,
        ended: Ended,
        deadline: Option<Instant>,
        step_deadline: Option<Instant>,
    ) -> Attempt {
        let attempt = match ended {
            Ended::Exited(0) => Attempt {
                status: StepStatus::Passed,
                exit_code: Some(0),
                message: None,
            },
            Ended::Exited(code) => Attempt {
                status: StepStatus::Failed,
                exit_code: Some(code),
                message: Some(format!("exited with code {code}")),
            },
            Ended::Signaled(signal) => Attempt {
                status: StepStatus::Failed,
                exit_code: None,
                message: Some(format!(
                    "killed by signal {signal} ({})",
                    signal_name(signal)
                )),
            },
            Ended::OutOfMemory { limit, exit_code } => Attempt {
                status: StepStatus::Failed,
                exit_code,
                message: Some(format!(
                    "OOMKilled: the step ran out of memory{}; the kernel's OOM killer killed {}",
                    limit
                        .map(|limit| format!(" (memory limit {limit})"))
                        .unwrap_or_default(),
                    match exit_code {
                        Some(code) => format!("one of its processes (exit code {code})"),
                        None => "it (SIGKILL)".to_owned(),
                    }
                )),
            },
            Ended::FailedToStart(reason) => Attempt {
                status: StepStatus::Failed,
                exit_code: None,
                message: Some(reason),
            },
            Ended::Aborted => {
                self.stop = Some(Stop::Aborted);
                return Attempt {
                    status: StepStatus::Aborted,
                    exit_code: None,
                    message: Some(stop_reason(Stop::Aborted).to_owned()),
                };
            }
            Ended::TimedOut => {
                let unit_deadline_hit =
                    self.unit_deadline.is_some() && deadline == self.unit_deadline;
                let message = if unit_deadline_hit {
                    self.stop = Some(Stop::DeadlineExceeded);
                    stop_reason(Stop::DeadlineExceeded).to_owned()
                } else if step_deadline.is_some() && deadline == step_deadline {
                    let limit = step.timeout.unwrap_or_default();
                    format!("timed out after {}", crate::run::format_duration(limit))
                } else {
                    "the enclosing step's timeout passed".to_owned()
                };
                return Attempt {
                    status: StepStatus::TimedOut,
                    exit_code: None,
                    message: Some(message),
                };
            }
        };
        if step.negative {
            invert(attempt)
        } else {
            attempt
        }
    }
}

fn invert(attempt: Attempt) -> Attempt {
    match attempt.status {
        StepStatus::Passed => Attempt {
            status: StepStatus::Failed,
            message: Some("expected to fail (negative), but passed".to_owned()),
            ..attempt
        },
        StepStatus::Failed => Attempt {
            status: StepStatus::Passed,
            message: Some(format!(
                "failed as expected (negative){}",
                attempt
                    .message
                    .map(|message| format!(": {message}"))
                    .unwrap_or_default()
            )),
            ..attempt
        },
        _ => attempt,
    }
}

fn stop_reason(stop: Stop) -> &'static str {
    match stop {
        Stop::Aborted => "execution aborted",
        Stop::DeadlineExceeded => "execution deadline (job.activeDeadlineSeconds) exceeded",
    }
}

/// A line of testloop's own in a step's log, marked so that readers can tell it from output.
pub fn note(log: &mut StepLog<'_>, text: &str) {
    log.append(now_micros(), format!("[testloop] {text}").as_bytes());
}

/// A step's log, opened when its first line comes: a step that prints nothing leaves no files
/// (two fewer files to create per silent step). Write errors are kept for the step's result
/// rather than interrupting the step.
pub struct StepLog<'a> {
    sink: &'a dyn UnitSink,
    path: &'a str,
    writer: Option<Box<dyn StepOutput>>,
    problem: Option<String>,
}

impl<'a> StepLog<'a> {
    pub fn new(sink: &'a dyn UnitSink, path: &'a str) -> Self {
        Self {
            sink,
            path,
            writer: None,
            problem: None,
        }
    }

    fn writer(&mut self) -> Option<&mut Box<dyn StepOutput>> {
        if self.writer.is_none() && self.problem.is_none() {
            match self.sink.log(self.path) {
                Ok(writer) => self.writer = Some(writer),
                Err(error) => self.problem = Some(format!("cannot open the step's log: {error}")),
            }
        }
        self.writer.as_mut()
    }

    fn keep(&mut self, result: crate::logs::Result<()>) {
        if let Err(error) = result
            && self.problem.is_none()
        {
            self.problem = Some(format!("cannot write the step's log: {error}"));
        }
    }

    /// Appends one whole line.
    pub fn append(&mut self, timestamp: crate::execution::TimestampMicros, line: &[u8]) {
        if let Some(writer) = self.writer() {
            let result = writer.append(timestamp, line);
            self.keep(result);
        }
    }

    /// Appends a chunk of output as read (see [`crate::logs::LogWriter::write_output`]).
    pub fn write_output(&mut self, timestamp: crate::execution::TimestampMicros, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        if let Some(writer) = self.writer() {
            let result = writer.write_output(timestamp, chunk);
            self.keep(result);
        }
    }

    /// Stores an unfinished last line, if the stream left one.
    pub fn finish_output(&mut self, timestamp: crate::execution::TimestampMicros) {
        if let Some(writer) = self.writer.as_mut() {
            let result = writer.finish_output(timestamp);
            self.keep(result);
        }
    }

    /// Hands what is buffered to the operating system.
    pub fn flush(&mut self) {
        if let Some(writer) = self.writer.as_mut() {
            let result = writer.flush();
            self.keep(result);
        }
    }

    /// The path of the step this log belongs to.
    pub fn path(&self) -> &str {
        self.path
    }

    /// The first thing that went wrong opening or writing the log.
    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGHUP => "SIGHUP",
        _ => "signal",
    }
}
