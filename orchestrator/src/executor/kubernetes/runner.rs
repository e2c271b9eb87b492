//! The runner inside a unit's pod: `testloop pod-init` prepares the pod, `testloop pod-run
//! --container N` runs container N's share of the unit's steps with the same walker and launcher
//! as the local executor (sandbox mode `none` with the workspace at `/data`, which in a pod is the
//! identity), reporting through the container's output in control lines ([`super::protocol`]).
//!
//! # One walk, several containers
//!
//! Steps with different images run in different containers, one after the other
//! ([`ContainerPlan`]). Every container walks the whole unit, so that conditions, `optional`,
//! `negative`, `retry` and the rest are decided by [`steps::run_unit`] exactly as in one process.
//! The walk passes three kinds of *work*: starting a step's action, collecting a step's
//! artifacts, and waiting for a step's `delay`. Each piece of work and each report (a step's
//! start, its end, its skip, its output) has an *owner*, a container, fixed by the plan alone:
//!
//! - an action is owned by the container whose [`ContainerPlan::steps`] lists it;
//! - a step whose subtree (itself and its nested steps) has actions is owned, at its start (its
//!   `Started` reports, its `delay`, its skip or a condition error, with those of its nested
//!   steps), by the container of the first of those actions, and at its end (its artifacts and
//!   `Finished`) by the container of the last;
//! - a step whose subtree has no action is owned, start and end, by the container of the last
//!   action before it in walk order (the first container when there is none);
//! - output belongs to the work or report being done when it is written.
//!
//! Owners never decrease along the walk order, and a retried step must lie in one container
//! (checked: its attempts go back in walk order), so every container reaches everything it owns
//! before anything a later container owns. Container N therefore:
//!
//! - **replays** work owned by an earlier container: the launcher returns what that container
//!   recorded in [`POD_DIR`]`/state/container-<i>.json` (how each action ended, what each
//!   artifact collection said, in call order per step), and waits no delay;
//! - **does** work it owns, and records it;
//! - **hands over** at the first work owned by a later container: nothing more is started or
//!   reported, the walk winds down, and the container ends;
//! - **reports** exactly what it owns, so that across containers every step is reported once.
//!   After an abort, it also reports what later containers own (they will never run).
//!
//! A container writes its state before it prints [`Event::Done`]; the unit's outcome is the last
//! container's. A container that hands over reports `passed` as its own outcome.
//!
//! # Deadline and abort
//!
//! Kubernetes enforces the unit's deadline (`activeDeadlineSeconds`), so the runner walks with
//! none: the walker's deadline is an instant of this process and would restart in every container,
//! and a replay would judge recorded timeouts against it. An abort (the pod deleted) reaches the
//! runner, PID 1 of its container, as SIGTERM: the binary cancels the walk, running steps get
//! SIGTERM (then SIGKILL after [`crate::executor::local::TERMINATE_GRACE`]) and are reported
//! aborted, and the runner ends after `Done`.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::podplan::{ContainerPlan, PLAN_DIR, PLAN_KEY, POD_DIR, PodPlan, RUNNER_PATH, file_key};
use super::protocol::{ARTIFACT_CHUNK_BYTES, Event, control_line};
use crate::execution::{StepRecord, TimestampMicros};
use crate::executor::local::{LocalLauncher, write_content_file};
use crate::executor::sandbox::{Sandbox, SandboxMode};
use crate::executor::steps::{self, Ended, Launcher, StepLog};
use crate::executor::{
    Action, ArtifactRule, ExecutorError, PlannedStep, StepOutput, UnitOutcome, UnitSink,
};
use crate::logs::{self, LineSplitter};

/// Most bytes of artifacts one container streams back. Control lines go through the kubelet's
/// log files and the API server: this keeps one pod's log within what they handle well. What is
/// over the limit is named in an [`Event::Error`] and not sent.
pub const MAX_STREAMED_ARTIFACT_BYTES: u64 = 64 << 20;

/// Where the runner finds the pod's volumes. In a pod, the constants of [`super::podplan`] and
/// `/data`; in tests, temporary directories (`TESTLOOP_POD_DIR`, `TESTLOOP_PLAN_DIR`,
/// `TESTLOOP_WORKSPACE`): the sandbox's `none` mode then rewrites `/data` to `workspace`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPaths {
    /// The `testloop` volume ([`POD_DIR`]).
    pub pod_dir: PathBuf,
    /// The plan's ConfigMap ([`PLAN_DIR`], in the init container only).
    pub plan_dir: PathBuf,
    /// The workspace, `/data`.
    pub workspace: PathBuf,
}

impl Default for PodPaths {
    fn default() -> Self {
        Self {
            pod_dir: PathBuf::from(POD_DIR),
            plan_dir: PathBuf::from(PLAN_DIR),
            workspace: PathBuf::from(crate::executor::WORKSPACE_MOUNT),
        }
    }
}

impl PodPaths {
    /// The pod's paths, each overridable by its environment variable.
    pub fn from_env() -> Self {
        let defaults = Self::default();
        let var = |name: &str, default: PathBuf| {
            std::env::var_os(name)
                .filter(|value| !value.is_empty())
                .map_or(default, PathBuf::from)
        };
        Self {
            pod_dir: var("TESTLOOP_POD_DIR", defaults.pod_dir),
            plan_dir: var("TESTLOOP_PLAN_DIR", defaults.plan_dir),
            workspace: var("TESTLOOP_WORKSPACE", defaults.workspace),
        }
    }

    /// Where the init container copies the runner ([`RUNNER_PATH`] in a pod).
    pub fn runner(&self) -> PathBuf {
        let inside = Path::new(RUNNER_PATH)
            .strip_prefix(POD_DIR)
            .unwrap_or(Path::new("bin/testloop"));
        self.pod_dir.join(inside)
    }

    /// The plan as every container reads it (the ConfigMap is mounted in the init container only).
    pub fn plan(&self) -> PathBuf {
        self.pod_dir.join(PLAN_KEY)
    }

    /// What each container did, for the containers after it.
    pub fn state_dir(&self) -> PathBuf {
        self.pod_dir.join("state")
    }

    /// Where steps' artifacts are collected before they are streamed.
    pub fn artifacts_dir(&self) -> PathBuf {
        self.pod_dir.join("artifacts")
    }

    fn container_state(&self, container: usize) -> PathBuf {
        self.state_dir().join(format!("container-{container}.json"))
    }
}

/// What stops the runner from doing its part.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The plan could not be read (without it, not even its nonce is known).
    #[error("cannot read the pod plan {path}: {reason}")]
    Plan { path: PathBuf, reason: String },
    /// The plan cannot be run as it is.
    #[error("the pod plan cannot run: {0}")]
    InvalidPlan(String),
    /// A file or directory of the pod could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The workspace or a content file could not be prepared.
    #[error(transparent)]
    Executor(#[from] ExecutorError),
    /// A replayed walk did not find what an earlier container recorded.
    #[error("cannot replay the earlier containers' steps: {0}")]
    Replay(String),
    /// The container's output cannot be written.
    #[error("cannot write the container's output: {0}")]
    Output(String),
}

fn io_error<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> RunnerError + 'a {
    move |source| RunnerError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// `testloop pod-init`: copies the runner and the plan into the `testloop` volume, writes the
/// content files into the workspace, then prints [`Event::Done`] (or [`Event::Error`] when the
/// plan's nonce is known). An error means the pod must fail.
pub fn pod_init(paths: &PodPaths, out: &mut dyn Write) -> Result<(), RunnerError> {
    let source = paths.plan_dir.join(PLAN_KEY);
    let text = std::fs::read(&source).map_err(|error| RunnerError::Plan {
        path: source.clone(),
        reason: error.to_string(),
    })?;
    let plan = parse_plan(&source, &text)?;
    let result = prepare(paths, &plan, &text);
    let event = match &result {
        Ok(()) => Event::Done {
            outcome: UnitOutcome::Passed,
        },
        Err(error) => Event::Error {
            message: error.to_string(),
        },
    };
    out.write_all(&control_line(&plan.nonce, &event))
        .and_then(|()| out.flush())
        .map_err(|error| RunnerError::Output(error.to_string()))?;
    result
}

fn parse_plan(path: &Path, text: &[u8]) -> Result<PodPlan, RunnerError> {
    serde_json::from_slice(text).map_err(|error| RunnerError::Plan {
        path: path.to_path_buf(),
        reason: error.to_string(),
    })
}

fn prepare(paths: &PodPaths, plan: &PodPlan, plan_text: &[u8]) -> Result<(), RunnerError> {
    // A plan the runner cannot walk fails here, before any step container starts.
    Ownership::new(plan)?;
    let exe = std::env::current_exe().map_err(io_error("find", Path::new("/proc/self/exe")))?;
    let runner = paths.runner();
    write_atomically(&runner, |temporary| {
        std::fs::copy(&exe, temporary)?;
        std::fs::set_permissions(temporary, std::fs::Permissions::from_mode(0o755))
    })?;
    write_atomically(&paths.plan(), |temporary| {
        std::fs::write(temporary, plan_text)
    })?;
    std::fs::create_dir_all(&paths.workspace).map_err(io_error("create", &paths.workspace))?;
    let sandbox = Sandbox::start(SandboxMode::None, &paths.workspace)?;
    for (index, file) in plan.unit.files.iter().enumerate() {
        let key = paths.plan_dir.join(file_key(index));
        let content = std::fs::read(&key).map_err(|error| ExecutorError::ContentFile {
            path: file.path.clone(),
            reason: format!("cannot read {}: {error}", key.display()),
        })?;
        write_content_file(&sandbox, &file.path, &content, file.mode)?;
    }
    for dir in [paths.state_dir(), paths.artifacts_dir()] {
        std::fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
    }
    Ok(())
}

/// Writes `path` through a temporary name beside it, so that a reader never sees half of it.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&Path) -> io::Result<()>,
) -> Result<(), RunnerError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_error("create", parent))?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    write(&temporary).map_err(io_error("write", &temporary))?;
    std::fs::rename(&temporary, path).map_err(io_error("write", path))
}

/// `testloop pod-run --container N`: runs container `container`'s share of the unit (see the
/// module documentation), writing step output and control lines to `out`, and ends with
/// [`Event::Done`]. Cancelling `cancel` (SIGTERM) aborts the walk. An error is printed as
/// [`Event::Error`] when the plan's nonce is known; the container should then fail.
pub async fn pod_run(
    paths: &PodPaths,
    container: usize,
    out: Box<dyn Write + Send>,
    cancel: CancellationToken,
) -> Result<UnitOutcome, RunnerError> {
    let source = paths.plan();
    let text = std::fs::read(&source).map_err(|error| RunnerError::Plan {
        path: source.clone(),
        reason: error.to_string(),
    })?;
    let plan = parse_plan(&source, &text)?;
    let reporter = Reporter::new(plan.nonce.clone(), out);
    let result = run_share(paths, plan, container, &reporter, cancel).await;
    match &result {
        Ok(outcome) => reporter.event(&Event::Done { outcome: *outcome }),
        Err(error) => reporter.event(&Event::Error {
            message: error.to_string(),
        }),
    }
    match reporter.problem() {
        Some(problem) if result.is_ok() => Err(RunnerError::Output(problem)),
        _ => result,
    }
}

async fn run_share(
    paths: &PodPaths,
    plan: PodPlan,
    container: usize,
    reporter: &Reporter,
    cancel: CancellationToken,
) -> Result<UnitOutcome, RunnerError> {
    if container >= plan.containers.len() {
        return Err(RunnerError::InvalidPlan(format!(
            "no container {container}: the plan has {}",
            plan.containers.len()
        )));
    }
    let owners = Ownership::new(&plan)?;
    let replay = read_states(paths, container)?;
    let mut unit = plan.unit;
    unit.workspace = paths.workspace.clone();
    unit.artifacts_dir = paths.artifacts_dir();
    unit.deadline = None;
    // The image is applied by the pod: the local launcher's note that it is not would be wrong.
    clear_images(&mut unit.steps);

    let sandbox = Sandbox::start(SandboxMode::None, &unit.workspace)?;
    let shared = Arc::new(Shared {
        container,
        owners,
        reporter: reporter.clone(),
        cancel: cancel.clone(),
        current: AtomicUsize::new(0),
        handed_over: AtomicBool::new(false),
    });
    let launcher = PodLauncher {
        local: LocalLauncher::new(&sandbox, &unit.artifacts_dir),
        shared: shared.clone(),
        replay: Mutex::new(replay),
        done: Mutex::new(Vec::new()),
        replay_problem: Mutex::new(None),
    };
    let sink = PodSink {
        shared: shared.clone(),
    };
    let outcome = steps::run_unit(&unit, &launcher, &sink, &cancel).await;
    if let Some(problem) = lock(&launcher.replay_problem).take() {
        return Err(RunnerError::Replay(problem));
    }
    let done = std::mem::take(&mut *lock(&launcher.done));
    let state = serde_json::to_vec(&done).map_err(|error| RunnerError::Io {
        action: "encode",
        path: paths.container_state(container),
        source: io::Error::other(error),
    })?;
    write_atomically(&paths.container_state(container), |temporary| {
        std::fs::write(temporary, &state)
    })?;
    stream_artifacts(
        &unit.artifacts_dir,
        reporter,
        &cancel,
        MAX_STREAMED_ARTIFACT_BYTES,
    );
    Ok(if shared.handed_over.load(Ordering::Relaxed) {
        UnitOutcome::Passed
    } else {
        outcome
    })
}

fn clear_images(steps: &mut [PlannedStep]) {
    for step in steps {
        if let Some(action) = step.action.as_mut() {
            action.image = None;
        }
        clear_images(&mut step.children);
    }
}

/// One piece of work a container did, as later containers replay it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "kebab-case")]
enum Call {
    Launch {
        step: String,
        ended: Ended,
    },
    Artifacts {
        step: String,
        problem: Option<String>,
    },
}

impl Call {
    fn step(&self) -> &str {
        match self {
            Call::Launch { step, .. } | Call::Artifacts { step, .. } => step,
        }
    }
}

/// What the containers before `container` did, per step in call order.
fn read_states(
    paths: &PodPaths,
    container: usize,
) -> Result<HashMap<String, VecDeque<Call>>, RunnerError> {
    let mut calls: HashMap<String, VecDeque<Call>> = HashMap::new();
    for earlier in 0..container {
        let path = paths.container_state(earlier);
        let text = std::fs::read(&path).map_err(|error| {
            RunnerError::Replay(format!(
                "container {earlier} left no state at {}: {error}",
                path.display()
            ))
        })?;
        let done: Vec<Call> = serde_json::from_slice(&text)
            .map_err(|error| RunnerError::Replay(format!("{}: {error}", path.display())))?;
        for call in done {
            calls
                .entry(call.step().to_owned())
                .or_default()
                .push_back(call);
        }
    }
    Ok(calls)
}

/// Which container owns each piece of work and each report (see the module documentation).
#[derive(Debug)]
struct Ownership {
    /// Step path → the container of its action.
    actions: HashMap<String, usize>,
    /// Step path → the owners of its start and of its end.
    steps: HashMap<String, (usize, usize)>,
}

impl Ownership {
    fn new(plan: &PodPlan) -> Result<Self, RunnerError> {
        let mut actions = HashMap::new();
        for (index, ContainerPlan { name, steps }) in plan.containers.iter().enumerate() {
            for step in steps {
                if actions.insert(step.clone(), index).is_some() {
                    return Err(RunnerError::InvalidPlan(format!(
                        "step {step} is in more than one container (again in {name})"
                    )));
                }
            }
        }
        let mut ownership = Self {
            actions,
            steps: HashMap::new(),
        };
        let mut previous = None;
        let mut seen = 0;
        for step in &plan.unit.steps {
            ownership.visit(step, &mut previous, &mut seen)?;
        }
        if seen != ownership.actions.len() {
            return Err(RunnerError::InvalidPlan(
                "the containers name steps that have no action in the unit".to_owned(),
            ));
        }
        Ok(ownership)
    }

    /// Assigns `step`'s subtree; returns the owners of its first and last actions.
    fn visit(
        &mut self,
        step: &PlannedStep,
        previous: &mut Option<usize>,
        seen: &mut usize,
    ) -> Result<Option<(usize, usize)>, RunnerError> {
        let before = *previous;
        let mut span: Option<(usize, usize)> = None;
        if step.action.is_some() {
            let Some(&owner) = self.actions.get(&step.path) else {
                return Err(RunnerError::InvalidPlan(format!(
                    "step {} has an action but no container",
                    step.path
                )));
            };
            if previous.is_some_and(|previous| owner < previous) {
                return Err(RunnerError::InvalidPlan(format!(
                    "step {} runs in container {owner}, before the steps that precede it",
                    step.path
                )));
            }
            *previous = Some(owner);
            *seen += 1;
            span = Some((owner, owner));
        }
        for child in &step.children {
            if let Some((first, last)) = self.visit(child, previous, seen)? {
                span = Some(span.map_or((first, last), |(own_first, _)| (own_first, last)));
            }
        }
        if let Some((first, last)) = span
            && first != last
            && step.retry.as_ref().is_some_and(|retry| retry.count > 0)
        {
            return Err(RunnerError::InvalidPlan(format!(
                "step {} is retried but its steps run in containers {first} to {last}: a retried \
                 step must run in one container",
                step.path
            )));
        }
        let live = before.unwrap_or(0);
        self.steps
            .insert(step.path.clone(), span.unwrap_or((live, live)));
        Ok(span)
    }

    fn action(&self, path: &str) -> Option<usize> {
        self.actions.get(path).copied()
    }

    fn start(&self, path: &str) -> usize {
        self.steps.get(path).map_or(0, |owners| owners.0)
    }

    fn end(&self, path: &str) -> usize {
        self.steps.get(path).map_or(0, |owners| owners.1)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The container's output: step lines and control lines through one buffered writer.
#[derive(Clone)]
struct Reporter(Arc<ReporterInner>);

struct ReporterInner {
    nonce: String,
    out: Mutex<Output>,
}

struct Output {
    writer: BufWriter<Box<dyn Write + Send>>,
    /// The step whose output the reader takes the next line for.
    current: Option<String>,
    /// The first write error, kept: the output cannot report its own failure.
    problem: Option<String>,
}

impl Output {
    fn keep(&mut self, result: io::Result<()>) {
        if let Err(error) = result {
            self.problem.get_or_insert_with(|| error.to_string());
        }
    }

    fn line(&mut self, nonce: &str, step: &str, line: &[u8]) {
        if self.current.as_deref() != Some(step) {
            let log = control_line(
                nonce,
                &Event::Log {
                    step: step.to_owned(),
                },
            );
            let result = self.writer.write_all(&log);
            self.keep(result);
            self.current = Some(step.to_owned());
        }
        let result = self
            .writer
            .write_all(line)
            .and_then(|()| self.writer.write_all(b"\n"));
        self.keep(result);
    }

    fn result(&self) -> logs::Result<()> {
        match &self.problem {
            None => Ok(()),
            Some(problem) => Err(logs::Error::Io {
                path: PathBuf::from("<container output>"),
                source: io::Error::other(problem.clone()),
            }),
        }
    }
}

impl Reporter {
    fn new(nonce: String, out: Box<dyn Write + Send>) -> Self {
        Self(Arc::new(ReporterInner {
            nonce,
            out: Mutex::new(Output {
                writer: BufWriter::with_capacity(128 * 1024, out),
                current: None,
                problem: None,
            }),
        }))
    }

    fn output(&self) -> MutexGuard<'_, Output> {
        lock(&self.0.out)
    }

    /// Writes and flushes a control line.
    fn event(&self, event: &Event) {
        let line = control_line(&self.0.nonce, event);
        let mut out = self.output();
        let result = out
            .writer
            .write_all(&line)
            .and_then(|()| out.writer.flush());
        out.keep(result);
    }

    fn problem(&self) -> Option<String> {
        self.output().problem.clone()
    }
}

/// What the sink, the launcher and the steps' outputs share.
struct Shared {
    container: usize,
    owners: Ownership,
    reporter: Reporter,
    cancel: CancellationToken,
    /// The owner of the work or report under way, which output belongs to.
    current: AtomicUsize,
    /// Set at the first work a later container owns: from then on nothing is done or reported.
    handed_over: AtomicBool,
}

impl Shared {
    fn reports(&self, owner: usize) -> bool {
        !self.handed_over.load(Ordering::Relaxed)
            && (owner == self.container || (owner > self.container && self.cancel.is_cancelled()))
    }

    fn output_is_live(&self) -> bool {
        self.reports(self.current.load(Ordering::Relaxed))
    }

    /// What to do with work owned by `owner`.
    fn turn(&self, owner: usize) -> Turn {
        self.current.store(owner, Ordering::Relaxed);
        if self.handed_over.load(Ordering::Relaxed) {
            return Turn::HandedOver;
        }
        match owner.cmp(&self.container) {
            std::cmp::Ordering::Less => Turn::Replay,
            std::cmp::Ordering::Equal => Turn::Do,
            std::cmp::Ordering::Greater => {
                self.handed_over.store(true, Ordering::Relaxed);
                Turn::HandedOver
            }
        }
    }
}

enum Turn {
    Replay,
    Do,
    HandedOver,
}

struct PodSink {
    shared: Arc<Shared>,
}

impl UnitSink for PodSink {
    fn log(&self, step_path: &str) -> logs::Result<Box<dyn StepOutput>> {
        Ok(Box::new(PodStepOutput {
            shared: self.shared.clone(),
            step: step_path.to_owned(),
            lines: LineSplitter::default(),
        }))
    }

    fn step_started(&self, record: &StepRecord) {
        let owner = self.shared.owners.start(&record.path);
        // What the step writes next (a retry's note) belongs to its start.
        self.shared.current.store(owner, Ordering::Relaxed);
        if self.shared.reports(owner) {
            self.shared.reporter.event(&Event::Started {
                record: record.clone(),
            });
        }
    }

    fn step_finished(&self, record: &StepRecord) {
        // A step that never started (skipped, or its condition failed) ends where it would have
        // started; the others where their subtree ends.
        let owner = if record.started_at.is_none() {
            self.shared.owners.start(&record.path)
        } else {
            self.shared.owners.end(&record.path)
        };
        if self.shared.reports(owner) {
            self.shared.reporter.event(&Event::Finished {
                record: record.clone(),
            });
        }
    }
}

/// A step's output in the container's output, under the log store's line rules. Output written
/// while replaying or after the hand-over is dropped. Timestamps are not sent: the server stamps
/// lines as they arrive.
struct PodStepOutput {
    shared: Arc<Shared>,
    step: String,
    lines: LineSplitter,
}

impl StepOutput for PodStepOutput {
    fn append(&mut self, _timestamp: TimestampMicros, line: &[u8]) -> logs::Result<()> {
        if !self.shared.output_is_live() {
            return Ok(());
        }
        let nonce = &self.shared.reporter.0.nonce;
        let mut out = self.shared.reporter.output();
        LineSplitter::append(line, |piece| out.line(nonce, &self.step, piece));
        // Whole lines are testloop's own notes (a timeout, a retry), rare and worth seeing at once:
        // the walker flushes after each chunk of output, not after a note.
        let result = out.writer.flush();
        out.keep(result);
        out.result()
    }

    fn write_output(&mut self, _timestamp: TimestampMicros, chunk: &[u8]) -> logs::Result<()> {
        if !self.shared.output_is_live() {
            return Ok(());
        }
        let nonce = &self.shared.reporter.0.nonce;
        let mut out = self.shared.reporter.output();
        let step = &self.step;
        self.lines
            .write_output(chunk, |line| out.line(nonce, step, line));
        out.result()
    }

    fn finish_output(&mut self, _timestamp: TimestampMicros) -> logs::Result<()> {
        if !self.shared.output_is_live() {
            return Ok(());
        }
        let nonce = &self.shared.reporter.0.nonce;
        let mut out = self.shared.reporter.output();
        let step = &self.step;
        self.lines.finish_output(|line| out.line(nonce, step, line));
        out.result()
    }

    fn flush(&mut self) -> logs::Result<()> {
        let mut out = self.shared.reporter.output();
        let result = out.writer.flush();
        out.keep(result);
        out.result()
    }
}

struct PodLauncher<'a> {
    local: LocalLauncher<'a>,
    shared: Arc<Shared>,
    /// What earlier containers did, per step, still to be replayed.
    replay: Mutex<HashMap<String, VecDeque<Call>>>,
    /// What this container did, in call order.
    done: Mutex<Vec<Call>>,
    /// The first replay that found no record of its own.
    replay_problem: Mutex<Option<String>>,
}

impl PodLauncher<'_> {
    fn replayed(&self, step: &str) -> Option<Call> {
        let call = lock(&self.replay)
            .get_mut(step)
            .and_then(VecDeque::pop_front);
        if call.is_none() {
            lock(&self.replay_problem).get_or_insert_with(|| {
                format!("no record of step {step} from the container that ran it")
            });
        }
        call
    }
}

#[async_trait]
impl Launcher for PodLauncher<'_> {
    async fn launch(
        &self,
        action: &Action,
        log: &mut StepLog<'_>,
        deadline: Option<Instant>,
        cancel: &CancellationToken,
    ) -> Ended {
        let step = log.path().to_owned();
        let Some(owner) = self.shared.owners.action(&step) else {
            // The plan was checked: every action has a container.
            return Ended::FailedToStart(format!("step {step} has no container"));
        };
        match self.shared.turn(owner) {
            Turn::HandedOver => Ended::Aborted,
            Turn::Replay => match self.replayed(&step) {
                Some(Call::Launch { ended, .. }) => ended,
                other => {
                    if other.is_some() {
                        lock(&self.replay_problem).get_or_insert_with(|| {
                            format!("step {step}: recorded calls out of order")
                        });
                    }
                    Ended::FailedToStart("cannot replay this step".to_owned())
                }
            },
            Turn::Do if cancel.is_cancelled() => Ended::Aborted,
            Turn::Do => {
                reap_orphans();
                let ended = self.local.launch(action, log, deadline, cancel).await;
                reap_orphans();
                lock(&self.done).push(Call::Launch {
                    step,
                    ended: ended.clone(),
                });
                ended
            }
        }
    }

    async fn collect_artifacts(
        &self,
        rule: &ArtifactRule,
        log: &mut StepLog<'_>,
    ) -> Option<String> {
        let step = log.path().to_owned();
        match self.shared.turn(self.shared.owners.end(&step)) {
            Turn::HandedOver => None,
            Turn::Replay => match self.replayed(&step) {
                Some(Call::Artifacts { problem, .. }) => problem,
                other => {
                    if other.is_some() {
                        lock(&self.replay_problem).get_or_insert_with(|| {
                            format!("step {step}: recorded calls out of order")
                        });
                    }
                    None
                }
            },
            Turn::Do => {
                let problem = self.local.collect_artifacts(rule, log).await;
                lock(&self.done).push(Call::Artifacts {
                    step,
                    problem: problem.clone(),
                });
                problem
            }
        }
    }

    fn delay(&self, step_path: &str, delay: Duration) -> Duration {
        match self.shared.turn(self.shared.owners.start(step_path)) {
            Turn::Do => delay,
            // Waited already by the container that owns the step's start, or to be waited by it.
            Turn::Replay | Turn::HandedOver => Duration::ZERO,
        }
    }
}

/// Reaps the processes a step left behind that ended since, when the runner is its container's
/// PID 1: they were handed to it as orphans, and nobody else would reap them. Called around each
/// step, when the runner has no child of its own (steps run one at a time, and the last one was
/// waited for), so that no step's exit status can be taken from the launcher. A process killed
/// with its step's process group may die just after: it is reaped around the next step.
fn reap_orphans() {
    // SAFETY: getpid has no preconditions.
    if unsafe { libc::getpid() } != 1 {
        return;
    }
    loop {
        let mut status = 0;
        // SAFETY: waiting for any child without blocking; `status` is ours.
        let reaped = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if reaped <= 0 {
            break;
        }
    }
}

/// Sends every file under `dir` as [`Event::ArtifactChunk`]s and removes it (the directory is
/// shared by the pod's containers: a later one sends only what it collected). Files beyond
/// `limit` bytes in all are named in an [`Event::Error`] instead.
fn stream_artifacts(dir: &Path, reporter: &Reporter, cancel: &CancellationToken, limit: u64) {
    let mut files = Vec::new();
    list_files(dir, &mut files);
    files.sort();
    let mut sent: u64 = 0;
    let mut left_out: Vec<String> = Vec::new();
    let mut left_out_bytes: u64 = 0;
    for file in files {
        let relative = file
            .strip_prefix(dir)
            .map(|relative| relative.to_string_lossy().into_owned())
            .unwrap_or_else(|_| file.display().to_string());
        let size = std::fs::metadata(&file).map_or(0, |meta| meta.len());
        if cancel.is_cancelled() || sent + size > limit || file.to_str().is_none() {
            left_out.push(relative);
            left_out_bytes += size;
        } else {
            match send_file(&file, &relative, reporter) {
                Ok(bytes) => sent += bytes,
                Err(error) => reporter.event(&Event::Error {
                    message: format!("artifact {relative} not sent completely: {error}"),
                }),
            }
        }
        let _ = std::fs::remove_file(&file);
    }
    if !left_out.is_empty() {
        let why = if cancel.is_cancelled() {
            "the execution was aborted".to_owned()
        } else {
            format!(
                "a container streams at most {} MiB of artifacts, or a name was not UTF-8",
                limit >> 20
            )
        };
        const NAMED: usize = 20;
        let mut names = left_out
            .iter()
            .take(NAMED)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if left_out.len() > NAMED {
            names.push_str(&format!(" and {} more", left_out.len() - NAMED));
        }
        reporter.event(&Event::Error {
            message: format!(
                "{} artifact file(s), {left_out_bytes} byte(s), not saved ({why}): {names}",
                left_out.len()
            ),
        });
    }
}

fn list_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            list_files(&entry.path(), files);
        } else if kind.is_file() {
            files.push(entry.path());
        }
    }
}

fn send_file(path: &Path, relative: &str, reporter: &Reporter) -> io::Result<u64> {
    let mut file = std::fs::File::open(path)?;
    let mut buffer = vec![0; ARTIFACT_CHUNK_BYTES];
    let mut offset: u64 = 0;
    loop {
        let mut filled = 0;
        while filled < buffer.len() {
            match file.read(&mut buffer[filled..]) {
                Ok(0) => break,
                Ok(read) => filled += read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        // An empty file is one empty chunk, so that the server creates it.
        if filled > 0 || offset == 0 {
            reporter.event(&Event::ArtifactChunk {
                path: relative.to_owned(),
                offset,
                data: base64::engine::general_purpose::STANDARD.encode(&buffer[..filled]),
            });
        }
        offset += filled as u64;
        if filled < buffer.len() {
            return Ok(offset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::Unit;
    use crate::spec::expr::Expr;

    fn step(path: &str, action: bool, children: Vec<PlannedStep>) -> PlannedStep {
        PlannedStep {
            path: path.to_owned(),
            name: path.to_owned(),
            action: action.then(|| Action {
                command: crate::executor::Command::Shell("true".to_owned()),
                working_dir: "/data".to_owned(),
                env: Vec::new(),
                image: None,
                container: Default::default(),
            }),
            children,
            condition: Expr::parse("passed").unwrap(),
            optional: false,
            negative: false,
            retry: None,
            timeout: None,
            delay: None,
            artifacts: None,
            skip: None,
        }
    }

    fn plan(steps: Vec<PlannedStep>, containers: &[&[&str]]) -> PodPlan {
        PodPlan {
            nonce: "n".to_owned(),
            unit: Unit {
                execution_id: "e".to_owned(),
                path: String::new(),
                workspace: "/data".into(),
                artifacts_dir: "/.testloop/artifacts".into(),
                files: Vec::new(),
                steps,
                deadline: None,
                variables: Default::default(),
                pod: Default::default(),
            },
            containers: containers
                .iter()
                .enumerate()
                .map(|(index, steps)| ContainerPlan {
                    name: format!("c{index}"),
                    steps: steps.iter().map(|s| (*s).to_owned()).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn groups_start_with_their_first_action_and_end_with_their_last() {
        let owners = Ownership::new(&plan(
            vec![
                step("1", true, vec![]),
                step("2", false, vec![]),
                step(
                    "3",
                    false,
                    vec![step("3/1", true, vec![]), step("3/2", true, vec![])],
                ),
                step("4", false, vec![]),
            ],
            &[&["1"], &["3/1"], &["3/2"]],
        ))
        .unwrap();
        assert_eq!(owners.steps["1"], (0, 0));
        assert_eq!(owners.steps["2"], (0, 0), "no action: the container before");
        assert_eq!(owners.steps["3"], (1, 2));
        assert_eq!(owners.steps["4"], (2, 2));
    }

    #[test]
    fn plans_the_walk_cannot_follow_are_refused() {
        let backwards = plan(
            vec![step("1", true, vec![]), step("2", true, vec![])],
            &[&["2"], &["1"]],
        );
        assert!(Ownership::new(&backwards).is_err());
        let missing = plan(vec![step("1", true, vec![])], &[&[]]);
        assert!(Ownership::new(&missing).is_err());
        let mut retried = step(
            "1",
            false,
            vec![step("1/1", true, vec![]), step("1/2", true, vec![])],
        );
        retried.retry = Some(crate::executor::RetryPolicy {
            count: 1,
            until: Expr::parse("passed").unwrap(),
        });
        assert!(Ownership::new(&plan(vec![retried], &[&["1/1"], &["1/2"]])).is_err());
    }
}
