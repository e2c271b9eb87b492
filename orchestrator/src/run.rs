//! Drives a plan through an executor and persists what happens.
//!
//! [`Orchestrator`] is the one API the CLI and the MCP tools share. Every execution it starts runs
//! in the background, holds a lease (an exclusive lock on `runs/<id>.lock`) for as long as it runs,
//! and reports through [`RunEvent`]s. Whoever opens the data directory later and finds an active
//! execution whose lease nobody holds knows its process died mid-run: a local execution is marked
//! `interrupted` (its processes died too); a Kubernetes one is re-attached to its pods, which ran
//! on (see [`Orchestrator::open`]).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::diff::executions::ExecutionDiff;
use crate::execution::{
    ExecutionRecord, ExecutionStatus, ExecutorKind, StepRecord, Trigger, now_micros,
};
use crate::executor::local::LocalExecutor;
use crate::executor::sandbox::SandboxMode;
use crate::executor::{Executor, ExecutorError, StartedUnit, StepOutput, UnitOutcome, UnitSink};
use crate::flaky::FlakyReport;
use crate::logs::{self, LogStore};
use crate::plan::{self, PlanError};
use crate::results::TestStatus;
use crate::retention::{self, Pruned, Retention};
use crate::spec::{self, ParsedWorkflow, Problem};
use crate::store::{self, ExecutionFilter, Store, StoredWorkflow, WorkflowVersion};

mod recorder;
use recorder::Recorder;

/// Events kept for subscribers that fall behind before they lag.
pub const EVENT_BUFFER: usize = 4096;

/// What happens during a run, for progress displays and MCP notifications.
#[derive(Debug, Clone)]
pub enum RunEvent {
    StepStarted(StepRecord),
    StepFinished(StepRecord),
    ExecutionFinished(ExecutionRecord),
}

impl RunEvent {
    pub fn execution_id(&self) -> &str {
        match self {
            Self::StepStarted(step) | Self::StepFinished(step) => &step.execution_id,
            Self::ExecutionFinished(execution) => &execution.id,
        }
    }
}

/// What the orchestrator can fail at.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The state database failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// A log could not be read or written.
    #[error(transparent)]
    Logs(#[from] logs::Error),
    /// A workflow file has problems.
    #[error("the workflow has {} problem(s); the first: {}", .0.len(), .0.first().map(ToString::to_string).unwrap_or_default())]
    Invalid(Vec<Problem>),
    /// The workflow cannot run as asked.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The execution has not finished, so what failed in it is not known yet.
    #[error(
        "execution {0} is still running, so which steps failed is not known yet: wait for it to \
         finish, or abort it"
    )]
    StillRunning(String),
    /// A diff against the last passed execution found none.
    #[error(
        "no execution of `{workflow}` passed before {execution}, so there is no baseline to compare with"
    )]
    NoBaseline { execution: String, workflow: String },
    /// Comparing two executions failed.
    #[error(transparent)]
    Diff(#[from] crate::diff::executions::Error),
    /// No workflow by that name.
    #[error("no workflow named `{0}`")]
    WorkflowNotFound(String),
    /// The execution asks for an executor this server was not started with.
    #[error(
        "the {0} executor is not configured: start testloop with `--executor kubernetes` (and          `--kubeconfig`/`--context` unless it runs in the cluster)"
    )]
    ExecutorNotConfigured(ExecutorKind),
    /// A file or directory under the data directory could not be used.
    #[error("failed to use {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where state lives and how units run.
#[derive(Clone)]
pub struct OrchestratorConfig {
    pub data_dir: PathBuf,
    pub sandbox: SandboxMode,
    /// The Kubernetes executor, when a cluster is configured.
    pub kubernetes: Option<Arc<dyn Executor>>,
    /// Where executions run unless they ask otherwise.
    pub default_executor: ExecutorKind,
    /// How much history to keep; applied when the directory is opened and after every execution.
    pub retention: Retention,
}

impl OrchestratorConfig {
    /// Local execution only, the zero-setup default.
    pub fn local(data_dir: PathBuf, sandbox: SandboxMode) -> Self {
        Self {
            data_dir,
            sandbox,
            kubernetes: None,
            default_executor: ExecutorKind::Local,
            retention: Retention::default(),
        }
    }
}

/// A request to run a stored workflow.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub workflow: String,
    /// Config values as typed (`--set name=value`), typed by the workflow's parameters.
    pub config: BTreeMap<String, String>,
    pub trigger: Trigger,
    /// Where to run it; the server's default when `None`.
    pub executor: Option<ExecutorKind>,
}

/// What [`Orchestrator::launch`] starts: a parsed workflow and where it came from.
struct Launch<'a> {
    workflow: &'a spec::Workflow,
    name: String,
    version: u32,
    snapshot: String,
    config: &'a BTreeMap<String, String>,
    trigger: Trigger,
    rerun_of: Option<String>,
    /// For a re-run of only failed steps: the steps of the execution it re-runs.
    only_failed: Option<&'a [StepRecord]>,
    failed_tests: &'a [String],
    executor: Option<ExecutorKind>,
}

/// A started execution.
pub struct RunHandle {
    pub id: String,
    /// Events of every execution, subscribed before this one started (filter by id).
    pub events: broadcast::Receiver<RunEvent>,
    /// Resolves to the final record.
    pub done: tokio::task::JoinHandle<ExecutionRecord>,
}

/// The orchestrator API that the CLI and the MCP tools share. Cheap to clone.
#[derive(Clone)]
pub struct Orchestrator {
    inner: Arc<Inner>,
}

struct Inner {
    data_dir: PathBuf,
    store: Arc<Store>,
    logs: LogStore,
    local: Arc<dyn Executor>,
    kubernetes: Option<Arc<dyn Executor>>,
    default_executor: ExecutorKind,
    retention: Retention,
    /// One retention pass at a time: two executions ending together need only one.
    pruning: Mutex<()>,
    events: broadcast::Sender<RunEvent>,
    running: Mutex<HashMap<String, CancellationToken>>,
}

impl Orchestrator {
    /// Opens (creating if needed) the data directory, and recovers the executions whose process
    /// died: local ones are marked `interrupted`; Kubernetes ones are followed again, in the
    /// background, when the Kubernetes executor is configured (call this inside a Tokio runtime
    /// then), or else left `running` for a process that has it.
    pub fn open(config: OrchestratorConfig) -> Result<Self> {
        let data_dir = config.data_dir;
        for dir in ["runs", "logs", "artifacts", "workspaces"] {
            let path = data_dir.join(dir);
            std::fs::create_dir_all(&path).map_err(|source| Error::Io { path, source })?;
        }
        let store = Store::open(data_dir.join("testloop.db"))?;
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let orchestrator = Self {
            inner: Arc::new(Inner {
                logs: LogStore::new(data_dir.join("logs")),
                store: Arc::new(store),
                local: Arc::new(LocalExecutor::new(config.sandbox)),
                kubernetes: config.kubernetes,
                default_executor: config.default_executor,
                retention: config.retention,
                pruning: Mutex::new(()),
                events,
                running: Mutex::new(HashMap::new()),
                data_dir,
            }),
        };
        orchestrator.recover()?;
        orchestrator.prune()?;
        Ok(orchestrator)
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn logs(&self) -> &LogStore {
        &self.inner.logs
    }

    /// Where an execution's artifacts are kept.
    pub fn artifacts_dir(&self, execution: &str) -> PathBuf {
        self.inner.artifacts_dir(execution)
    }

    fn lease_path(&self, execution: &str) -> PathBuf {
        self.inner
            .data_dir
            .join("runs")
            .join(format!("{execution}.lock"))
    }

    /// Finds the executions whose process died mid-run (their lease is free). Local ones are
    /// marked `interrupted`: their processes died with it. Kubernetes ones are re-attached to their
    /// pods, which ran on, when this process has the Kubernetes executor and a runtime to follow
    /// them on; otherwise they are left `running` for one that has.
    fn recover(&self) -> Result<()> {
        let can_follow_pods =
            self.inner.kubernetes.is_some() && tokio::runtime::Handle::try_current().is_ok();
        for execution in self.inner.store.active_executions()? {
            let lease_path = self.lease_path(&execution.id);
            let Some(lease) = take_free_lease(&lease_path) else {
                continue;
            };
            match (execution.executor, &self.inner.kubernetes) {
                (ExecutorKind::Kubernetes, Some(kubernetes))
                    if can_follow_pods
                        && !self.ran_elsewhere(&execution.id, kubernetes.as_ref())? =>
                {
                    tracing::info!(execution = %execution.id, "re-attaching to an execution's pods");
                    let started = StartedUnit {
                        execution_id: execution.id.clone(),
                        path: String::new(),
                        artifacts_dir: self.artifacts_dir(&execution.id),
                    };
                    let executor = Arc::clone(kubernetes);
                    // Nobody waits for it here: its end reaches the store and the event channel.
                    drop(self.spawn_execution(
                        execution,
                        Leased(lease, lease_path),
                        move |sink, cancel| {
                            Box::pin(async move { executor.reattach(started, sink, cancel).await })
                        },
                    ));
                }
                (ExecutorKind::Kubernetes, _) => {
                    tracing::warn!(
                        execution = %execution.id,
                        ran_on = ?self.inner.store.execution_location(&execution.id).ok().flatten(),
                        "an execution on Kubernetes lost its testloop process; it stays running \
                         until a testloop with `--executor kubernetes` on its cluster and \
                         namespace re-attaches to its pods"
                    );
                }
                (ExecutorKind::Local, _) => {
                    tracing::warn!(execution = %execution.id, "marking an orphaned execution interrupted");
                    self.inner.store.mark_interrupted(
                        &execution.id,
                        "the testloop process running it stopped before it finished",
                    )?;
                    drop(lease);
                    let _ = std::fs::remove_file(&lease_path);
                }
            }
        }
        Ok(())
    }

    /// Whether `execution` ran somewhere `executor` does not look (another cluster or namespace):
    /// its pods are not to be looked for, nor the execution given up, from here.
    fn ran_elsewhere(&self, execution: &str, executor: &dyn Executor) -> Result<bool> {
        let recorded = self.inner.store.execution_location(execution)?;
        Ok(recorded.is_some() && recorded != executor.location())
    }

    /// Saves a parsed workflow; a new version only when its YAML changed.
    pub fn save_workflow(&self, parsed: &ParsedWorkflow) -> Result<WorkflowVersion> {
        let workflow = &parsed.workflow;
        let description = workflow
            .description
            .as_deref()
            .or(workflow.spec.description.as_deref());
        Ok(self.inner.store.save_workflow(
            &workflow.metadata.name,
            &parsed.source,
            description,
            &workflow.metadata.labels,
        )?)
    }

    /// The latest version of a stored workflow, parsed.
    pub fn workflow(&self, name: &str) -> Result<(StoredWorkflow, ParsedWorkflow)> {
        let stored = self
            .inner
            .store
            .get_workflow(name, None)?
            .ok_or_else(|| Error::WorkflowNotFound(name.to_owned()))?;
        let parsed = spec::parse(&stored.yaml)
            .map_err(Error::Invalid)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::WorkflowNotFound(name.to_owned()))?;
        Ok((stored, parsed))
    }

    /// Starts an execution of a stored workflow in the background.
    pub fn start(&self, request: RunRequest) -> Result<RunHandle> {
        let (stored, parsed) = self.workflow(&request.workflow)?;
        self.launch(Launch {
            workflow: &parsed.workflow,
            name: stored.name,
            version: stored.version,
            snapshot: stored.yaml,
            config: &request.config,
            trigger: request.trigger,
            rerun_of: None,
            only_failed: None,
            failed_tests: &[],
            executor: request.executor,
        })
    }

    /// Starts an execution again, in the background: the same workflow version (the snapshot the
    /// execution ran, even if the workflow changed or was deleted since) with the same config.
    /// The new execution records which one it re-runs. With `only_failed`, the top-level steps
    /// that passed are skipped (see [`plan::Plan::skip_steps_that_passed`]) and the test cases
    /// that failed are handed to the workflow as `execution.failed_tests`.
    pub fn rerun(&self, execution: &str, trigger: Trigger, only_failed: bool) -> Result<RunHandle> {
        let (record, steps) = self.execution(execution)?;
        if only_failed && !record.status.is_terminal() {
            return Err(Error::StillRunning(record.id));
        }
        let parsed = spec::parse(&record.snapshot)
            .map_err(Error::Invalid)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::WorkflowNotFound(record.workflow.clone()))?;
        let config = crate::summary::config_as_text(&record.config);
        let failed_tests = if only_failed {
            self.failed_test_names(&record.id)?
        } else {
            Vec::new()
        };
        self.launch(Launch {
            workflow: &parsed.workflow,
            name: record.workflow,
            version: record.workflow_version,
            snapshot: record.snapshot,
            config: &config,
            trigger,
            rerun_of: Some(record.id),
            only_failed: only_failed.then_some(steps.as_slice()),
            failed_tests: &failed_tests,
            executor: Some(record.executor),
        })
    }

    /// The distinct names of an execution's failed or errored test cases, in recorded order.
    pub fn failed_test_names(&self, execution_id: &str) -> Result<Vec<String>> {
        let filter = store::TestCaseFilter {
            statuses: vec![TestStatus::Failed, TestStatus::Error],
            ..Default::default()
        };
        let mut names = Vec::new();
        for stored in self.inner.store.test_cases(execution_id, &filter)? {
            if !names.contains(&stored.case.name) {
                names.push(stored.case.name);
            }
        }
        Ok(names)
    }

    /// Where executions run unless they ask otherwise, and whether Kubernetes is configured.
    pub fn executors(&self) -> (ExecutorKind, bool) {
        (self.inner.default_executor, self.inner.kubernetes.is_some())
    }

    fn executor(&self, kind: ExecutorKind) -> Result<Arc<dyn Executor>> {
        match kind {
            ExecutorKind::Local => Ok(Arc::clone(&self.inner.local)),
            ExecutorKind::Kubernetes => self
                .inner
                .kubernetes
                .clone()
                .ok_or(Error::ExecutorNotConfigured(kind)),
        }
    }

    fn launch(&self, launch: Launch<'_>) -> Result<RunHandle> {
        let executor_kind = launch.executor.unwrap_or(self.inner.default_executor);
        let executor = self.executor(executor_kind)?;
        let id = ulid::Ulid::new().to_string();
        let mut plan = plan::plan(
            launch.workflow,
            launch.config,
            plan::ExecutionVars {
                id: &id,
                failed_tests: launch.failed_tests,
                executor: executor_kind,
            },
        )?;
        if let (Some(previous), Some(previous_id)) = (launch.only_failed, &launch.rerun_of) {
            plan.skip_steps_that_passed(previous, previous_id);
        }

        // The lease is taken before the execution exists, so that no one can see it active and
        // unleased.
        let lease_path = self.lease_path(&id);
        let lease = File::create(&lease_path).map_err(|source| Error::Io {
            path: lease_path.clone(),
            source,
        })?;
        lease.lock().map_err(|source| Error::Io {
            path: lease_path.clone(),
            source,
        })?;

        let now = now_micros();
        let record = ExecutionRecord {
            id: id.clone(),
            workflow: launch.name,
            workflow_version: launch.version,
            snapshot: launch.snapshot,
            config: plan.config.clone(),
            trigger: launch.trigger,
            status: ExecutionStatus::Running,
            created_at: now,
            started_at: Some(now),
            finished_at: None,
            error: None,
            only_failed: launch.only_failed.is_some(),
            rerun_of: launch.rerun_of,
            executor: executor_kind,
        };
        self.inner.store.insert_execution(&record)?;
        if let Some(location) = executor.location() {
            self.inner.store.set_execution_location(&id, &location)?;
        }

        let unit = plan.into_unit(&id, self.inner.workspace_dir(&id), self.artifacts_dir(&id));
        Ok(
            self.spawn_execution(record, Leased(lease, lease_path), move |sink, cancel| {
                Box::pin(async move { executor.run(unit, sink, cancel).await })
            }),
        )
    }

    /// Runs `work` (the executor running or re-attaching to the execution's unit) in the
    /// background, abortable through [`Orchestrator::abort`], records what it reports, and then
    /// the execution's end.
    fn spawn_execution<W>(&self, mut record: ExecutionRecord, lease: Leased, work: W) -> RunHandle
    where
        W: for<'s> FnOnce(&'s dyn UnitSink, CancellationToken) -> UnitWork<'s> + Send + 'static,
    {
        let id = record.id.clone();
        let cancel = CancellationToken::new();
        lock(&self.inner.running).insert(id.clone(), cancel.clone());
        let events = self.inner.events.subscribe();
        let inner = Arc::clone(&self.inner);
        let done = tokio::spawn(async move {
            let sink = StoreSink {
                execution_id: record.id.clone(),
                logs: inner.logs.clone(),
                recorder: Recorder::start(Arc::clone(&inner.store), inner.events.clone()),
            };
            let outcome = work(&sink, cancel).await;
            // Every step record is written before the execution's final status.
            sink.recorder.finish();
            let (status, error) = match outcome {
                Ok(UnitOutcome::Passed) => (ExecutionStatus::Passed, None),
                Ok(UnitOutcome::Failed) => (ExecutionStatus::Failed, None),
                Ok(UnitOutcome::Aborted) => (
                    ExecutionStatus::Aborted,
                    Some("aborted on request".to_owned()),
                ),
                Ok(UnitOutcome::TimedOut) => (
                    ExecutionStatus::TimedOut,
                    Some("job.activeDeadlineSeconds exceeded".to_owned()),
                ),
                Err(ExecutorError::Gone(reason)) => (
                    ExecutionStatus::Interrupted,
                    Some(format!(
                        "could not re-attach after testloop restarted: {reason}"
                    )),
                ),
                Err(error) => (ExecutionStatus::Failed, Some(error.to_string())),
            };
            record.status = status;
            record.error = error;
            // Before the status is final, so that whoever sees it final sees the results too.
            collect_test_results(&inner, &record).await;
            record.finished_at = Some(now_micros());
            let recorded = if status == ExecutionStatus::Interrupted {
                // Its steps that were running end interrupted too.
                inner
                    .store
                    .mark_interrupted(&record.id, record.error.as_deref().unwrap_or_default())
                    .map(|_| ())
            } else {
                inner.store.update_execution(
                    &record.id,
                    record.status,
                    None,
                    record.finished_at,
                    record.error.as_deref(),
                )
            };
            if let Err(error) = recorded {
                tracing::error!(execution = %record.id, %error, "cannot record the end of an execution");
            }
            let _ = std::fs::remove_dir_all(inner.workspace_dir(&record.id));
            lock(&inner.running).remove(&record.id);
            let Leased(lease, lease_path) = lease;
            drop(lease);
            let _ = std::fs::remove_file(&lease_path);
            let _ = inner
                .events
                .send(RunEvent::ExecutionFinished(record.clone()));
            if !inner.retention.keeps_everything() {
                let orchestrator = Orchestrator {
                    inner: Arc::clone(&inner),
                };
                let pruned = tokio::task::spawn_blocking(move || orchestrator.prune()).await;
                if let Ok(Err(error)) = pruned {
                    tracing::error!(%error, "cannot apply the retention policy");
                }
            }
            record
        });
        RunHandle { id, events, done }
    }

    /// Events of every execution from now on (filter by [`RunEvent::execution_id`]).
    pub fn events(&self) -> broadcast::Receiver<RunEvent> {
        self.inner.events.subscribe()
    }

    /// Aborts an execution running in this process; false when it is not running here.
    pub fn abort(&self, execution: &str) -> bool {
        match lock(&self.inner.running).get(execution) {
            Some(cancel) => {
                cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// An execution and its steps in tree order, by id or unique id prefix.
    pub fn execution(&self, id_or_prefix: &str) -> Result<(ExecutionRecord, Vec<StepRecord>)> {
        let record = self.execution_record(id_or_prefix)?;
        let steps = self.inner.store.steps(&record.id)?;
        Ok((record, steps))
    }

    fn execution_record(&self, id_or_prefix: &str) -> Result<ExecutionRecord> {
        let id = self.inner.store.resolve_execution_id(id_or_prefix)?;
        let record = self.inner.store.get_execution(&id)?;
        Ok(record.ok_or(store::Error::ExecutionNotFound { id })?)
    }

    /// An execution and the directory of its artifact store (see [`crate::artifacts`]), by id or
    /// unique id prefix. The directory does not exist while the execution has saved nothing.
    pub fn artifact_store(&self, id_or_prefix: &str) -> Result<(ExecutionRecord, PathBuf)> {
        let record = self.execution_record(id_or_prefix)?;
        let dir = self.artifacts_dir(&record.id);
        Ok((record, dir))
    }

    /// Executions, newest first.
    pub fn executions(&self, filter: &ExecutionFilter) -> Result<Vec<ExecutionRecord>> {
        Ok(self.inner.store.list_executions(filter)?)
    }

    /// What changed from `baseline` to `execution` (an id or unique prefix).
    pub fn diff(&self, execution: &str, baseline: Baseline<'_>) -> Result<ExecutionDiff> {
        let (head, head_steps) = self.execution(execution)?;
        let (base, base_steps) = match baseline {
            Baseline::Execution(id) => self.execution(id)?,
            Baseline::LastPassed => {
                let previous = self.inner.store.list_executions(&ExecutionFilter {
                    workflow: Some(head.workflow.clone()),
                    status: Some(ExecutionStatus::Passed),
                    limit: 1,
                    before_id: Some(head.id.clone()),
                })?;
                let Some(previous) = previous.into_iter().next() else {
                    return Err(Error::NoBaseline {
                        execution: head.id,
                        workflow: head.workflow,
                    });
                };
                self.execution(&previous.id)?
            }
        };
        Ok(crate::diff::executions::diff_executions(
            &self.inner.store,
            &self.inner.logs,
            (&base, &base_steps),
            (&head, &head_steps),
        )?)
    }

    /// Deletes what the configured retention says to (see [`crate::retention`]).
    pub fn prune(&self) -> Result<Pruned> {
        self.prune_with(&self.inner.retention)
    }

    /// What `policy` would delete now, without deleting it.
    pub fn prune_plan(&self, policy: &Retention) -> Result<Pruned> {
        if policy.keeps_everything() {
            return Ok(Pruned::default());
        }
        let ended = self.inner.store.ended_executions()?;
        let size = |id: &str| {
            let logs = self.inner.logs.execution_dir(id).ok();
            logs.as_deref().map_or(0, retention::dir_size)
                + retention::dir_size(&self.artifacts_dir(id))
        };
        // Sizes are read only when bytes are limited, in one walk of the logs and artifacts:
        // reading every execution's files is the expensive part. Directories of executions
        // still running (or of none) count towards the total too: they take the disk as well.
        let sizes: HashMap<String, u64> = match policy.max_bytes {
            Some(_) => {
                let mut sizes = HashMap::new();
                let data = &self.inner.data_dir;
                for root in [data.join("logs"), data.join("artifacts")] {
                    for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
                        let id = entry.file_name().to_string_lossy().into_owned();
                        *sizes.entry(id).or_default() += retention::dir_size(&entry.path());
                    }
                }
                sizes
            }
            None => HashMap::new(),
        };
        let total = sizes.values().sum();
        let executions = retention::choose(&ended, policy, now_micros(), total, |id| {
            sizes.get(id).copied().unwrap_or(0)
        });
        let bytes = executions
            .iter()
            .map(|id| sizes.get(id).copied().unwrap_or_else(|| size(id)))
            .sum();
        Ok(Pruned { executions, bytes })
    }

    /// Deletes the executions `policy` says to, with their logs and artifacts.
    pub fn prune_with(&self, policy: &Retention) -> Result<Pruned> {
        let _one_at_a_time = lock(&self.inner.pruning);
        let pruned = self.prune_plan(policy)?;
        let doomed = &pruned.executions;
        if doomed.is_empty() {
            return Ok(pruned);
        }
        // Rows first: nothing then points at files that are going.
        self.inner.store.delete_ended_executions(doomed)?;
        for id in doomed {
            if let Err(error) = self.inner.logs.remove_execution(id) {
                tracing::warn!(execution = %id, %error, "cannot delete an execution's logs");
            }
            let artifacts = self.artifacts_dir(id);
            if let Err(error) = std::fs::remove_dir_all(&artifacts)
                && error.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(execution = %id, %error, "cannot delete an execution's artifacts");
            }
        }
        tracing::info!(
            executions = doomed.len(),
            bytes = pruned.bytes,
            "deleted old executions (retention)"
        );
        Ok(pruned)
    }

    /// Flaky tests of `workflow` over its last `window` finished executions.
    pub fn flaky_tests(&self, workflow: &str, window: usize) -> Result<FlakyReport> {
        Ok(crate::flaky::find_flaky_tests(
            &self.inner.store,
            workflow,
            window,
        )?)
    }
}

/// An execution's lease (an exclusive lock on `runs/<id>.lock`) and where it lives.
struct Leased(File, PathBuf);

/// What an execution's task awaits: the executor's work on its unit.
type UnitWork<'s> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<UnitOutcome, ExecutorError>> + Send + 's>,
>;

/// The lease at `path` when no live process holds it, locked by this one.
fn take_free_lease(path: &Path) -> Option<File> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .ok()?;
    file.try_lock().ok()?;
    Some(file)
}

/// What [`Orchestrator::diff`] compares an execution against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline<'a> {
    /// This execution (an id or unique prefix).
    Execution(&'a str),
    /// The latest execution of the same workflow that passed before it.
    LastPassed,
}

/// Reads the execution's test results off the async threads (a log scan can take a while); a
/// failure is logged, never fatal: the execution's own record matters more.
async fn collect_test_results(inner: &Arc<Inner>, record: &ExecutionRecord) {
    let store = Arc::clone(&inner.store);
    let logs = inner.logs.clone();
    let artifacts_dir = inner.artifacts_dir(&record.id);
    let record = record.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let steps = store.steps(&record.id)?;
        crate::results::collect::collect(&store, &logs, &artifacts_dir, &record, &steps).map_err(
            |error| match error {
                crate::results::collect::Error::Store(error) => Error::Store(error),
                crate::results::collect::Error::Logs(error) => Error::Logs(error),
            },
        )
    })
    .await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "cannot read the test results of an execution"),
        Err(error) => tracing::error!(%error, "reading test results crashed"),
    }
}

impl Inner {
    fn artifacts_dir(&self, execution: &str) -> PathBuf {
        self.data_dir.join("artifacts").join(execution)
    }

    /// Where a local execution's steps see `/data`, while it runs.
    fn workspace_dir(&self, execution: &str) -> PathBuf {
        self.data_dir.join("workspaces").join(execution)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How long a step may run before its start is written to the store. Most steps of a test
/// workflow are quick: writing only their end halves the database writes per step. A step that
/// runs longer is recorded as running after this time, so that a crash still leaves it marked
/// `interrupted`.
pub const START_RECORD_DELAY: Duration = Duration::from_millis(20);

/// Records what a unit reports and broadcasts it, through a [`Recorder`] thread.
struct StoreSink {
    execution_id: String,
    logs: LogStore,
    recorder: Recorder,
}

impl UnitSink for StoreSink {
    fn log(&self, step_path: &str) -> logs::Result<Box<dyn StepOutput>> {
        Ok(Box::new(self.logs.writer(&self.execution_id, step_path)?))
    }

    fn step_started(&self, record: &StepRecord) {
        self.recorder.started(record);
    }

    fn step_finished(&self, record: &StepRecord) {
        self.recorder.finished(record);
    }

    fn restart_output(&self) -> logs::Result<()> {
        self.logs.remove_execution(&self.execution_id).map(|_| ())
    }
}

/// `1.2s`, `350ms`, `2m05s`, `1h02m`.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let seconds = duration.as_secs();
    if seconds < 60 {
        return format!("{:.1}s", duration.as_secs_f64());
    }
    if seconds < 3600 {
        return format!("{}m{:02}s", seconds / 60, seconds % 60);
    }
    format!("{}h{:02}m", seconds / 3600, (seconds % 3600) / 60)
}
