//! Running a unit as a pod, from the server's side: create it, follow its containers' output into
//! the log store, report its steps, explain what went wrong in plain words, clean up.
//!
//! The steps' semantics are decided inside the pod, by the runner (see [`super::runner`]), with
//! the same walker the local executor uses; it reports through its container's output as control
//! lines ([`super::protocol`]). This side turns those into step records and logs, and covers what
//! the runner cannot report because it never ran or was killed: image pull failures, an
//! unschedulable pod, OOM kills, evictions, the deadline, aborts.

use std::collections::{BTreeSet, HashMap};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use futures::AsyncBufReadExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, LogParams, PostParams};
use kube::{Api, Client};
use tokio::sync::{OnceCell, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::cluster::{ClusterOptions, ConnectError, connect};
use super::manifest::{self, PodOptions};
use super::podplan::{PLAN_KEY, PodPlan};
use super::pods::{PodView, PodWatch};
use super::protocol::{Decoded, Decoder, Event};
use super::status::{self, ContainerState};
use crate::execution::{StepRecord, StepStatus, TimestampMicros, now_micros};
use crate::executor::{
    Executor, ExecutorError, PlannedStep, StartedUnit, StepOutput, Unit, UnitOutcome, UnitSink,
};

/// How long a pod may stay unschedulable before its unit fails, unless configured otherwise. A
/// cluster autoscaler usually adds a node within a few minutes.
pub const DEFAULT_SCHEDULE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long an aborted or failed pod may take to go away before the unit ends without it.
const DELETE_WAIT: Duration = Duration::from_secs(15);
/// Grace period given to an aborted pod's containers before they are killed: longer than the
/// runner's own grace for a step ([`crate::executor::local::TERMINATE_GRACE`]), so that the runner
/// outlives a step that ignores SIGTERM and reports it.
const ABORT_GRACE_SECONDS: u32 = 5;
/// How long the output of a container that has terminated may still take to arrive.
const OUTPUT_AFTER_END: Duration = Duration::from_secs(10);
/// Attempts of one API call that fails with a retryable error (429, 5xx, connection).
const API_ATTEMPTS: u32 = 6;
/// Reconnections of one container's log stream that ended before the container did.
const LOG_RECONNECTS: u32 = 20;
/// The label every testloop pod carries: the shared watch selects on it.
pub const MANAGED_SELECTOR: &str = "testloop.dev/managed-by=testloop";

/// How to run units on a cluster.
#[derive(Debug, Clone)]
pub struct KubernetesOptions {
    pub cluster: ClusterOptions,
    pub pod: PodOptions,
    /// Keep the pods of units that did not pass, for `kubectl describe`/`logs`.
    pub keep_failed_pods: bool,
    /// How long a pod may stay unschedulable before its unit fails.
    pub schedule_timeout: Duration,
}

/// Runs each unit as a pod.
pub struct KubernetesExecutor {
    client: Client,
    /// Which cluster and namespace, for telling whether a unit started elsewhere can be found.
    location: String,
    pod_options: PodOptions,
    keep_failed_pods: bool,
    schedule_timeout: Duration,
    watch: OnceCell<PodWatch>,
}

impl std::fmt::Debug for KubernetesExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesExecutor")
            .field("namespace", &self.pod_options.namespace)
            .finish_non_exhaustive()
    }
}

impl KubernetesExecutor {
    /// Connects to the cluster (no request is made until a unit runs).
    pub async fn connect(mut options: KubernetesOptions) -> Result<Self, ConnectError> {
        let (client, namespace, cluster_url) = connect(&options.cluster).await?;
        let location = format!(
            "{} namespace {namespace}",
            cluster_url.trim_end_matches('/')
        );
        options.pod.namespace = namespace;
        Ok(Self {
            client,
            location,
            pod_options: options.pod,
            keep_failed_pods: options.keep_failed_pods,
            schedule_timeout: options.schedule_timeout,
            watch: OnceCell::new(),
        })
    }

    /// Where test pods run.
    pub fn namespace(&self) -> &str {
        &self.pod_options.namespace
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.pod_options.namespace)
    }

    async fn watch(&self) -> &PodWatch {
        self.watch
            .get_or_init(|| async { PodWatch::start(self.pods(), MANAGED_SELECTOR) })
            .await
    }

    /// Creates the unit's pod, then its ConfigMap owned by the pod (so that deleting the pod
    /// deletes it: one request fewer per unit, and nothing left behind if testloop dies).
    async fn create(&self, pod: &Pod, config_map: ConfigMap) -> Result<Pod, String> {
        let pods = self.pods();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let created = with_retries(|| async {
            match pods.create(&PostParams::default(), pod).await {
                // A retry of a create whose answer was lost finds its own pod.
                Err(kube::Error::Api(status)) if status.code == 409 => pods.get(&name).await,
                other => other,
            }
        })
        .await
        .map_err(|error| format!("cannot create pod {name}: {}", describe(&error)))?;
        let mut config_map = config_map;
        config_map.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "v1".to_owned(),
            kind: "Pod".to_owned(),
            name: name.clone(),
            uid: created.metadata.uid.clone().unwrap_or_default(),
            ..OwnerReference::default()
        }]);
        let config_maps: Api<ConfigMap> =
            Api::namespaced(self.client.clone(), &self.pod_options.namespace);
        let cm_name = config_map.metadata.name.clone().unwrap_or_default();
        let result = with_retries(|| async {
            match config_maps
                .create(&PostParams::default(), &config_map)
                .await
            {
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    config_maps.get(&cm_name).await
                }
                other => other,
            }
        })
        .await;
        if let Err(error) = result {
            self.delete_pod(&name, Some(0)).await;
            return Err(format!(
                "cannot create ConfigMap {cm_name}: {}",
                describe(&error)
            ));
        }
        Ok(created)
    }

    async fn delete_pod(&self, name: &str, grace_seconds: Option<u32>) {
        let pods = self.pods();
        let params = DeleteParams {
            grace_period_seconds: grace_seconds,
            ..DeleteParams::default()
        };
        let result = with_retries(|| async {
            match pods.delete(name, &params).await {
                Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
                other => other.map(|_| ()),
            }
        })
        .await;
        if let Err(error) = result {
            tracing::warn!(pod = name, error = %describe(&error), "cannot delete pod");
        }
    }
}

#[async_trait]
impl Executor for KubernetesExecutor {
    async fn run(
        &self,
        unit: Unit,
        sink: &dyn UnitSink,
        cancel: CancellationToken,
    ) -> Result<UnitOutcome, ExecutorError> {
        let nonce = format!("{:016x}", ulid::Ulid::new().random() as u64);
        let objects = manifest::build(&unit, &self.pod_options, &nonce)
            .map_err(|error| ExecutorError::Kubernetes(error.to_string()))?;
        let name = objects.pod.metadata.name.clone().unwrap_or_default();
        let watch = self.watch().await;
        let view = watch.subscribe(&name);
        if let Err(message) = self.create(&objects.pod, objects.config_map).await {
            watch.forget(&name);
            return Err(ExecutorError::Kubernetes(message));
        }
        Ok(self
            .follow(&unit, &objects.plan, &objects.pod, view, sink, &cancel)
            .await)
    }

    /// Finds the unit's pod and its plan (the ConfigMap holds the nonce that marks the runner's
    /// control lines), then reads every container's output again from its start: the kubelet
    /// keeps it until the pod is deleted, so the logs come out whole, not stitched.
    async fn reattach(
        &self,
        started: StartedUnit,
        sink: &dyn UnitSink,
        cancel: CancellationToken,
    ) -> Result<UnitOutcome, ExecutorError> {
        let name = manifest::object_name(&started.execution_id, &started.path);
        let namespace = &self.pod_options.namespace;
        let watch = self.watch().await;
        // Subscribed before the read, so that no change after it is missed.
        let view = watch.subscribe(&name);
        let found = self.find_unit(&name).await;
        let (pod, plan) = match found {
            Ok(found) => found,
            Err(error) => {
                watch.forget(&name);
                return Err(error);
            }
        };
        watch.seed(&name, pod.clone());
        tracing::info!(pod = %name, %namespace, "re-attached to a unit's pod");
        if let Err(error) = sink.restart_output() {
            tracing::warn!(%error, "cannot clear the logs recorded before the restart");
        }
        let mut unit = plan.unit.clone();
        unit.execution_id = started.execution_id;
        unit.artifacts_dir = started.artifacts_dir;
        Ok(self.follow(&unit, &plan, &pod, view, sink, &cancel).await)
    }

    fn location(&self) -> Option<String> {
        Some(self.location.clone())
    }

    fn name(&self) -> &'static str {
        "kubernetes"
    }
}

impl KubernetesExecutor {
    /// Drives a created pod to its end, then deletes it unless it is to be kept.
    async fn follow(
        &self,
        unit: &Unit,
        plan: &PodPlan,
        pod: &Pod,
        view: watch::Receiver<PodView>,
        sink: &dyn UnitSink,
        cancel: &CancellationToken,
    ) -> UnitOutcome {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let mut driver = Driver::new(unit, plan, pod, sink, self);
        let outcome = driver.drive(view, cancel).await;
        let keep = self.keep_failed_pods && outcome != UnitOutcome::Passed;
        if keep {
            tracing::info!(pod = %name, "keeping the failed unit's pod (--keep-failed-pods)");
        } else if !driver.pod_gone {
            self.delete_pod(&name, Some(0)).await;
        }
        self.watch().await.forget(&name);
        outcome
    }

    /// A unit's pod and the plan it runs, read back from the cluster.
    async fn find_unit(&self, name: &str) -> Result<(Pod, PodPlan), ExecutorError> {
        let namespace = &self.pod_options.namespace;
        let pods = self.pods();
        let pod = with_retries(|| pods.get_opt(name))
            .await
            .map_err(|error| {
                ExecutorError::Kubernetes(format!("cannot read pod {name}: {}", describe(&error)))
            })?
            .ok_or_else(|| {
                ExecutorError::Gone(format!(
                    "its pod {name} is gone from namespace {namespace}: it was deleted while no \
                     testloop process followed it"
                ))
            })?;
        let config_maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let plan = with_retries(|| config_maps.get_opt(name))
            .await
            .map_err(|error| {
                ExecutorError::Kubernetes(format!(
                    "cannot read ConfigMap {name}: {}",
                    describe(&error)
                ))
            })?
            .and_then(|config_map| config_map.data?.remove(PLAN_KEY))
            .and_then(|json| serde_json::from_str::<PodPlan>(&json).ok());
        match plan {
            Some(plan) => Ok((pod, plan)),
            None => {
                // Without the plan its output cannot be told apart from the runner's reports.
                self.delete_pod(name, Some(0)).await;
                Err(ExecutorError::Gone(format!(
                    "the plan of pod {name} (ConfigMap {name}, key {PLAN_KEY}) is gone or \
                     unreadable, so its output cannot be followed; the pod was deleted"
                )))
            }
        }
    }
}

/// Retries `call` on errors that say "try again": throttling, server errors, lost connections.
async fn with_retries<T, F, Fut>(mut call: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match call().await {
            Err(error) if attempt < API_ATTEMPTS && retryable(&error) => {
                tracing::debug!(error = %describe(&error), attempt, "retrying a Kubernetes API call");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn retryable(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// An API error in a sentence.
fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            format!("{} ({} {})", status.message, status.code, status.reason)
        }
        other => other.to_string(),
    }
}

/// What a container's output follower tells the driver.
enum Message {
    Event(usize, Event),
    Output {
        step: Option<String>,
        line: Vec<u8>,
        /// When the container printed it, from the kubelet's timestamp.
        at: Option<TimestampMicros>,
    },
    /// The follower is done: it saw the runner's `Done`, or the container ended without one.
    Ended(usize),
}

struct Slot {
    name: String,
    image: String,
    memory_limit: Option<String>,
    following: bool,
    ended: bool,
    done: Option<UnitOutcome>,
    error: Option<String>,
    /// The step whose output came last, where the runner's own problems are noted.
    last_step: Option<String>,
}

struct Driver<'a, 'e> {
    unit: &'a Unit,
    plan: &'a PodPlan,
    sink: &'a dyn UnitSink,
    executor: &'e KubernetesExecutor,
    pod_name: String,
    deadline_seconds: Option<i64>,
    slots: Vec<Slot>,
    messages: (mpsc::Sender<Message>, mpsc::Receiver<Message>),
    logs: HashMap<String, Box<dyn StepOutput>>,
    /// Steps whose start was reported and whose end was not.
    running: BTreeSet<String>,
    /// Steps whose end was reported.
    finished: BTreeSet<String>,
    /// Why the pod will not finish normally, once known.
    failure: Option<String>,
    aborting: bool,
    timed_out: bool,
    pod_gone: bool,
    pod_ended: bool,
    unschedulable_since: Option<Instant>,
    /// Output that belongs to no step (a runner that failed to start says why there).
    stray: Vec<String>,
    /// Steps the runner ended as aborted without testloop aborting: the kubelet stopped the pod
    /// (deadline, eviction). Reported at the end, once the pod's status says why.
    stopped: Vec<StepRecord>,
}

impl<'a, 'e> Driver<'a, 'e> {
    fn new(
        unit: &'a Unit,
        plan: &'a PodPlan,
        pod: &Pod,
        sink: &'a dyn UnitSink,
        executor: &'e KubernetesExecutor,
    ) -> Self {
        let spec = pod.spec.clone().unwrap_or_default();
        let slots = spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
            .map(|container| Slot {
                name: container.name.clone(),
                image: container.image.clone().unwrap_or_default(),
                memory_limit: container
                    .resources
                    .as_ref()
                    .and_then(|resources| resources.limits.as_ref())
                    .and_then(|limits| limits.get("memory"))
                    .map(|quantity| quantity.0.clone()),
                following: false,
                ended: false,
                done: None,
                error: None,
                last_step: None,
            })
            .collect();
        Self {
            unit,
            plan,
            sink,
            executor,
            pod_name: pod.metadata.name.clone().unwrap_or_default(),
            deadline_seconds: spec.active_deadline_seconds,
            slots,
            messages: mpsc::channel(1024),
            logs: HashMap::new(),
            running: BTreeSet::new(),
            finished: BTreeSet::new(),
            failure: None,
            aborting: false,
            timed_out: false,
            pod_gone: false,
            pod_ended: false,
            unschedulable_since: None,
            stray: Vec::new(),
            stopped: Vec::new(),
        }
    }

    async fn drive(
        &mut self,
        mut view: watch::Receiver<PodView>,
        cancel: &CancellationToken,
    ) -> UnitOutcome {
        // Set when the pod is being deleted (abort, stuck): the unit ends when it is gone or
        // after DELETE_WAIT.
        let mut give_up_at: Option<Instant> = None;
        let mut output_deadline: Option<Instant> = None;
        // When a failure that stops the pod was found: its earlier containers' output is read to
        // the end (for at most OUTPUT_AFTER_END) before the pod is deleted, so that what their
        // steps reported is not lost.
        let mut failed_at: Option<Instant> = None;
        loop {
            if self.pod_gone
                || (self.pod_ended && self.slots.iter().all(|s| !s.following || s.ended))
            {
                break;
            }
            let schedule_deadline = self
                .unschedulable_since
                .map(|since| since + self.executor.schedule_timeout);
            let output_wait = failed_at
                .filter(|_| give_up_at.is_none())
                .map(|at| at + OUTPUT_AFTER_END);
            let wake = [give_up_at, output_deadline, schedule_deadline, output_wait]
                .into_iter()
                .flatten()
                .min();
            tokio::select! {
                _ = cancel.cancelled(), if !self.aborting => {
                    self.aborting = true;
                    self.executor.delete_pod(&self.pod_name, Some(ABORT_GRACE_SECONDS)).await;
                    give_up_at.get_or_insert(Instant::now() + DELETE_WAIT);
                }
                changed = view.changed() => {
                    if changed.is_err() {
                        // The watch is gone (the server is shutting down).
                        self.failure.get_or_insert_with(|| "lost the watch of the pod".to_owned());
                        break;
                    }
                    let current = view.borrow_and_update().clone();
                    self.on_pod(current, &view);
                    if self.pod_ended && output_deadline.is_none() {
                        output_deadline = Some(Instant::now() + OUTPUT_AFTER_END);
                    }
                }
                Some(message) = self.messages.1.recv() => self.on_message(message),
                _ = sleep_until(wake), if wake.is_some() => {
                    let now = Instant::now();
                    if give_up_at.is_some_and(|at| at <= now) || output_deadline.is_some_and(|at| at <= now) {
                        break;
                    }
                    if schedule_deadline.is_some_and(|at| at <= now) && self.failure.is_none() {
                        let reason = match &*view.borrow() {
                            PodView::Present(pod) => status::unschedulable(pod),
                            _ => None,
                        };
                        self.failure = Some(format!(
                            "{} (still pending after {}s)",
                            reason.unwrap_or_else(|| "unschedulable".to_owned()),
                            self.executor.schedule_timeout.as_secs()
                        ));
                        self.unschedulable_since = None;
                    }
                }
            }
            if self.failure.is_some() && give_up_at.is_none() && !self.pod_ended && !self.aborting {
                let now = Instant::now();
                let since = *failed_at.get_or_insert(now);
                let output_in = self.slots.iter().all(|slot| !slot.following || slot.ended);
                if output_in || since + OUTPUT_AFTER_END <= now {
                    self.executor.delete_pod(&self.pod_name, Some(0)).await;
                    give_up_at = Some(now + DELETE_WAIT);
                }
            }
        }
        // Whatever the followers still hold has arrived by now or never will.
        while let Ok(message) = self.messages.1.try_recv() {
            self.on_message(message);
        }
        self.finish()
    }

    fn on_pod(&mut self, current: PodView, view: &watch::Receiver<PodView>) {
        let pod = match current {
            PodView::Unknown => return,
            PodView::Gone => {
                self.pod_gone = true;
                if !self.aborting && !self.pod_ended && self.failure.is_none() {
                    self.failure = Some("the pod was deleted before it finished".to_owned());
                }
                return;
            }
            PodView::Present(pod) => pod,
        };
        match status::unschedulable(&pod) {
            Some(_) => {
                self.unschedulable_since.get_or_insert_with(Instant::now);
            }
            None => self.unschedulable_since = None,
        }
        for index in 0..self.slots.len() {
            let slot = &self.slots[index];
            let state = status::container_state(&pod, &slot.name);
            if state.started() && !slot.following {
                self.slots[index].following = true;
                self.spawn_follower(index, view.clone());
            } else if self.failure.is_none()
                && !self.aborting
                && let Some(reason) = status::stuck_reason(&pod, &slot.name, &slot.image)
            {
                self.failure = Some(reason);
            }
        }
        if let Some(end) = status::pod_end(&pod) {
            self.pod_ended = true;
            if status::deadline_exceeded(&pod) && !self.aborting {
                self.timed_out = true;
                self.failure.get_or_insert_with(|| {
                    status::killed_reason(&pod, "", None, self.deadline_seconds)
                });
            }
            if let status::PodEnd::Failed { .. } = end
                && self.failure.is_none()
                && !self.aborting
            {
                // Which container was killed: the first that did not report `Done`.
                let killed = self
                    .slots
                    .iter()
                    .find(|slot| {
                        slot.done.is_none()
                            && matches!(
                                status::container_state(&pod, &slot.name),
                                ContainerState::Terminated { .. }
                            )
                    })
                    .or_else(|| self.slots.iter().find(|slot| slot.done.is_none()));
                if let Some(slot) = killed {
                    self.failure = Some(status::killed_reason(
                        &pod,
                        &slot.name,
                        slot.memory_limit.as_deref(),
                        self.deadline_seconds,
                    ));
                }
            }
        }
    }

    fn spawn_follower(&self, index: usize, view: watch::Receiver<PodView>) {
        let follower = Follower {
            pods: self.executor.pods(),
            pod: self.pod_name.clone(),
            container: self.slots[index].name.clone(),
            index,
            nonce: self.plan.nonce.clone(),
            messages: self.messages.0.clone(),
            view,
        };
        tokio::spawn(follower.run());
    }

    fn on_message(&mut self, message: Message) {
        match message {
            Message::Output { step, line, at } => match step {
                Some(step) => {
                    let now = at.unwrap_or_else(now_micros);
                    let output = match self.logs.entry(step) {
                        std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                        std::collections::hash_map::Entry::Vacant(entry) => {
                            match self.sink.log(entry.key()) {
                                Ok(output) => entry.insert(output),
                                Err(error) => {
                                    tracing::warn!(%error, "cannot open a step's log");
                                    return;
                                }
                            }
                        }
                    };
                    if let Err(error) = output.append(now, &line) {
                        tracing::warn!(%error, "cannot write a step's log");
                    }
                }
                None => {
                    let text = String::from_utf8_lossy(&line).into_owned();
                    tracing::debug!(pod = %self.pod_name, line = %text, "output outside any step");
                    if self.stray.len() < 20 {
                        self.stray.push(text);
                    }
                }
            },
            Message::Event(index, event) => self.on_event(index, event),
            Message::Ended(index) => self.slots[index].ended = true,
        }
    }

    fn on_event(&mut self, index: usize, event: Event) {
        match event {
            Event::Log { step } => self.slots[index].last_step = Some(step),
            Event::Started { record } => {
                self.running.insert(record.path.clone());
                self.sink.step_started(&record);
            }
            Event::Finished { record } => {
                if let Some(mut output) = self.logs.remove(&record.path) {
                    let _ = output.finish_output(now_micros());
                    let _ = output.flush();
                }
                self.running.remove(&record.path);
                self.finished.insert(record.path.clone());
                if record.status == StepStatus::Aborted && !self.aborting {
                    self.stopped.push(record);
                } else {
                    self.sink.step_finished(&record);
                }
            }
            Event::ArtifactChunk { path, offset, data } => {
                if let Err(problem) = self.write_artifact(&path, offset, &data) {
                    tracing::warn!(artifact = %path, %problem, "cannot store an artifact");
                    self.slots[index].error.get_or_insert(problem);
                }
            }
            Event::Done { outcome } => self.slots[index].done = Some(outcome),
            Event::Error { message } => {
                // Said where a reader of the logs will see it, whatever happens next.
                if let Some(step) = self.slots[index].last_step.clone()
                    && let Ok(mut output) = self.sink.log(&step)
                {
                    let line = format!("[testloop] {message}");
                    let _ = output.append(now_micros(), line.as_bytes());
                    let _ = output.flush();
                }
                self.slots[index].error.get_or_insert(message);
            }
        }
    }

    fn write_artifact(&self, path: &str, offset: u64, data: &str) -> Result<(), String> {
        let relative = Path::new(path);
        if relative.as_os_str().is_empty()
            || !relative
                .components()
                .all(|part| matches!(part, Component::Normal(_)))
        {
            return Err(format!(
                "refused artifact path {path:?}: not a relative path inside the artifacts"
            ));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|error| format!("artifact {path}: {error}"))?;
        let target: PathBuf = self.unit.artifacts_dir.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|error| error.to_string())?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(offset == 0)
            .open(&target)
            .map_err(|error| format!("{}: {error}", target.display()))?;
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.write_all(&bytes))
            .map_err(|error| format!("{}: {error}", target.display()))
    }

    /// Closes the logs and reports every step the runner did not: the running ones end with the
    /// reason the pod stopped, the rest are skipped.
    fn finish(&mut self) -> UnitOutcome {
        let now = now_micros();
        for (_, mut output) in self.logs.drain() {
            let _ = output.finish_output(now);
            let _ = output.flush();
        }
        let runner_problem = self
            .slots
            .iter()
            .find_map(|slot| slot.error.clone())
            .or_else(|| self.stray.last().cloned());
        let last_done = self.slots.last().and_then(|slot| slot.done);
        let complete = last_done.is_some() && self.failure.is_none() && !self.aborting;
        let reason = if self.aborting {
            "execution aborted".to_owned()
        } else if let Some(failure) = &self.failure {
            failure.clone()
        } else if complete {
            String::new()
        } else {
            match runner_problem {
                Some(problem) => format!("the pod's runner failed: {problem}"),
                None => "the pod ended before its steps finished".to_owned(),
            }
        };
        // Steps the kubelet stopped: their status and message say why, now that it is known.
        for mut record in std::mem::take(&mut self.stopped) {
            if self.timed_out {
                record.status = StepStatus::TimedOut;
            } else if self.failure.is_some() {
                record.status = StepStatus::Failed;
            }
            if !reason.is_empty() {
                record.message = Some(reason.clone());
            }
            self.sink.step_finished(&record);
        }
        let (running_status, outcome) = if self.aborting {
            (StepStatus::Aborted, UnitOutcome::Aborted)
        } else if self.timed_out {
            (StepStatus::TimedOut, UnitOutcome::TimedOut)
        } else if let (true, Some(outcome)) = (complete, last_done) {
            (StepStatus::Failed, outcome)
        } else {
            (StepStatus::Failed, UnitOutcome::Failed)
        };
        if !complete {
            // The first step that did not start is where the failure shows when nothing was
            // running (an image that cannot be pulled, an unschedulable pod).
            let mut blamed = !self.running.is_empty();
            let steps = self.unit.steps.clone();
            self.close_unreported(&steps, &reason, running_status, &mut blamed, now);
        }
        outcome
    }

    fn close_unreported(
        &mut self,
        steps: &[PlannedStep],
        reason: &str,
        running_status: StepStatus,
        blamed: &mut bool,
        now: i64,
    ) {
        for step in steps {
            if self.finished.contains(&step.path) {
                continue;
            }
            let started = self.running.contains(&step.path);
            if started {
                // Its nested steps end first, as they would have.
                self.close_unreported(&step.children, reason, running_status, blamed, now);
            }
            let mut record = self.not_run(step, reason, now);
            if started {
                record.status = running_status;
                record.attempts = 1;
                record.message = Some(reason.to_owned());
                self.running.remove(&step.path);
            } else if !*blamed && step.action.is_some() && running_status != StepStatus::Aborted {
                *blamed = true;
                record.status = StepStatus::Failed;
                record.message = Some(reason.to_owned());
            } else if !started {
                self.close_unreported_children(step, reason, now);
            }
            self.finished.insert(step.path.clone());
            self.sink.step_finished(&record);
        }
    }

    fn close_unreported_children(&mut self, step: &PlannedStep, reason: &str, now: i64) {
        for child in &step.children {
            if self.finished.insert(child.path.clone()) {
                self.close_unreported_children(child, reason, now);
                self.sink.step_finished(&self.not_run(child, reason, now));
            }
        }
    }

    /// `step` skipped because the pod stopped for `reason`.
    fn not_run(&self, step: &PlannedStep, reason: &str, now: i64) -> StepRecord {
        StepRecord {
            execution_id: self.unit.execution_id.clone(),
            path: step.path.clone(),
            name: step.name.clone(),
            status: StepStatus::Skipped,
            exit_code: None,
            attempts: 0,
            started_at: None,
            finished_at: Some(now),
            message: Some(format!("not run: {reason}")),
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The kubelet's timestamp leading a line of `pods/log?timestamps=true` (RFC 3339, then a space),
/// and the line after it; no timestamp when the line does not start with one.
fn split_timestamp(line: &[u8]) -> (Option<TimestampMicros>, &[u8]) {
    let Some(space) = line.iter().take(40).position(|byte| *byte == b' ') else {
        return (None, line);
    };
    let stamp = std::str::from_utf8(&line[..space])
        .ok()
        .and_then(|text| text.parse::<jiff::Timestamp>().ok());
    match stamp {
        Some(stamp) => (Some(stamp.as_microsecond()), &line[space + 1..]),
        None => (None, line),
    }
}

/// Follows one container's output from its start to its end, across dropped connections.
struct Follower {
    pods: Api<Pod>,
    pod: String,
    container: String,
    index: usize,
    nonce: String,
    messages: mpsc::Sender<Message>,
    view: watch::Receiver<PodView>,
}

impl Follower {
    async fn run(self) {
        let mut decoder = Decoder::new(&self.nonce);
        // Lines already handed on: a reconnection reads the log from the start again and skips
        // them (the kubelet keeps a container's log until its pod is deleted).
        let mut seen: u64 = 0;
        let mut reconnects = 0;
        let mut done = false;
        while !done {
            let terminated_before = self.terminated();
            // With the kubelet's timestamps, lines read again after a restart keep when they were
            // printed rather than when they were read.
            let params = LogParams {
                container: Some(self.container.clone()),
                follow: !terminated_before,
                timestamps: true,
                ..LogParams::default()
            };
            match self.pods.log_stream(&self.pod, &params).await {
                Ok(stream) => {
                    let mut stream = Box::pin(stream);
                    let mut line = Vec::new();
                    let mut index: u64 = 0;
                    loop {
                        line.clear();
                        match stream.read_until(b'\n', &mut line).await {
                            Ok(0) => break,
                            Ok(_) => {}
                            Err(error) => {
                                tracing::debug!(%error, container = %self.container, "log stream broke");
                                break;
                            }
                        }
                        // A cut line (the connection dropped mid-line) comes whole on the next
                        // read, unless this is the last read of a finished container.
                        if !line.ends_with(b"\n") && !terminated_before {
                            break;
                        }
                        index += 1;
                        if index <= seen {
                            continue;
                        }
                        seen = index;
                        if !self.hand_on(&mut decoder, &line, &mut done).await {
                            return;
                        }
                        if done {
                            break;
                        }
                    }
                }
                Err(error) => {
                    tracing::debug!(error = %describe(&error), container = %self.container, "cannot read the container's log");
                }
            }
            // After a full read of a terminated container's log there is nothing more to wait for.
            if done || terminated_before || self.gone() {
                break;
            }
            if reconnects >= LOG_RECONNECTS {
                tracing::warn!(container = %self.container, "giving up reading the container's log");
                break;
            }
            reconnects += 1;
            tokio::time::sleep(Duration::from_millis(100 * u64::from(reconnects.min(10)))).await;
        }
        let _ = self.messages.send(Message::Ended(self.index)).await;
    }

    /// Sends one line on; false when the driver is gone.
    async fn hand_on(&self, decoder: &mut Decoder, line: &[u8], done: &mut bool) -> bool {
        let (at, line) = split_timestamp(line);
        let message = match decoder.decode(line) {
            Decoded::Event(event) => {
                if matches!(event, Event::Done { .. }) {
                    *done = true;
                }
                Message::Event(self.index, event)
            }
            Decoded::Output { step, line } => Message::Output {
                step,
                line: line.to_vec(),
                at,
            },
            Decoded::Malformed { reason } => {
                tracing::warn!(container = %self.container, %reason, "malformed control line");
                return true;
            }
        };
        self.messages.send(message).await.is_ok()
    }

    fn terminated(&self) -> bool {
        match &*self.view.borrow() {
            PodView::Present(pod) => matches!(
                status::container_state(pod, &self.container),
                ContainerState::Terminated { .. }
            ),
            PodView::Gone => true,
            PodView::Unknown => false,
        }
    }

    fn gone(&self) -> bool {
        matches!(&*self.view.borrow(), PodView::Gone)
    }
}
