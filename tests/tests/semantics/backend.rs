#![allow(dead_code)] // Shared by the semantic suite and the Kubernetes-only tests, which use different parts.
//! The backends the semantic suite runs on: the local executor, and the Kubernetes executor
//! talking to the API double through a real kubeconfig.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use testloop_kube_double::KubeDouble;
use testloop_orchestrator::execution::ExecutorKind;
use testloop_orchestrator::executor::kubernetes::cluster::ClusterOptions;
use testloop_orchestrator::executor::kubernetes::executor::{
    KubernetesExecutor, KubernetesOptions,
};
use testloop_orchestrator::executor::kubernetes::manifest::PodOptions;

use testloop_orchestrator::Orchestrator;
use testloop_orchestrator::execution::{ExecutionRecord, StepRecord, StepStatus, Trigger};
use testloop_orchestrator::executor::sandbox::{self, SandboxMode};
use testloop_orchestrator::run::{OrchestratorConfig, RunHandle, RunRequest};
use testloop_orchestrator::spec;

/// Where a test's workflow runs.
pub enum Backend {
    Local,
    /// The Kubernetes executor, through kube-rs and a generated kubeconfig, against the API
    /// double; the pods' runner is the `testloop` binary built with these tests.
    Kubernetes(Cluster),
}

/// An API double and a kubeconfig pointing at it.
pub struct Cluster {
    pub double: KubeDouble,
    pub kubeconfig: tempfile::NamedTempFile,
}

/// The namespace test pods go to.
pub const NAMESPACE: &str = "tests";

impl Backend {
    pub fn local() -> Self {
        Backend::Local
    }

    pub async fn kubernetes() -> Self {
        let double = KubeDouble::start().await.expect("start the API double");
        let kubeconfig = tempfile::NamedTempFile::new().expect("kubeconfig file");
        double
            .write_kubeconfig(kubeconfig.path(), NAMESPACE)
            .expect("write kubeconfig");
        Backend::Kubernetes(Cluster { double, kubeconfig })
    }

    /// The double, on the Kubernetes backend.
    pub fn double(&self) -> Option<&KubeDouble> {
        match self {
            Backend::Kubernetes(cluster) => Some(&cluster.double),
            Backend::Local => None,
        }
    }

    /// Opens an orchestrator on `dir` that runs executions on this backend.
    pub async fn open(&self, dir: &tempfile::TempDir) -> Orchestrator {
        let mut config = OrchestratorConfig::local(dir.path().to_path_buf(), SandboxMode::Auto);
        if let Backend::Kubernetes(cluster) = self {
            let executor = KubernetesExecutor::connect(KubernetesOptions {
                cluster: ClusterOptions {
                    kubeconfig: Some(cluster.kubeconfig.path().to_path_buf()),
                    context: None,
                    namespace: None,
                },
                pod: PodOptions {
                    runner_source: testloop_tests::testloop_bin().display().to_string(),
                    ..PodOptions::default()
                },
                keep_failed_pods: false,
                schedule_timeout: Duration::from_secs(3),
            })
            .await
            .expect("connect to the API double");
            config.kubernetes = Some(Arc::new(executor));
            config.default_executor = ExecutorKind::Kubernetes;
        }
        Orchestrator::open(config).expect("open orchestrator")
    }

    /// Whether a pid a step prints is a pid of this machine (not of a pod's PID namespace).
    pub fn shares_pids(&self) -> bool {
        matches!(self, Backend::Local)
    }

    /// How steps see their workspace: `/data`, or its host path when the local sandbox rewrites
    /// `/data` (no namespaces on this machine).
    pub fn data_path(&self, dir: &tempfile::TempDir, execution: &str) -> String {
        match self {
            Backend::Local if sandbox::resolved_mode(SandboxMode::Auto) == SandboxMode::None => dir
                .path()
                .join("workspaces")
                .join(execution)
                .display()
                .to_string(),
            _ => "/data".to_owned(),
        }
    }

    pub async fn run(&self, yaml: &str) -> Finished {
        self.run_with(yaml, &[]).await
    }

    pub async fn run_with(&self, yaml: &str, config: &[(&str, &str)]) -> Finished {
        let dir = tempfile::tempdir().expect("tempdir");
        let orchestrator = self.open(&dir).await;
        let name = save(&orchestrator, yaml);
        let handle = start(&orchestrator, &name, config).expect("start");
        let record = tokio::time::timeout(Duration::from_secs(120), handle.done)
            .await
            .expect("execution finished in time")
            .expect("execution task");
        let (record, steps) = orchestrator.execution(&record.id).expect("read back");
        let data_path = self.data_path(&dir, &record.id);
        Finished {
            orchestrator,
            record,
            steps,
            data_path,
            _dir: dir,
        }
    }
}

pub struct Finished {
    pub orchestrator: Orchestrator,
    pub record: ExecutionRecord,
    pub steps: Vec<StepRecord>,
    /// How the steps saw their workspace.
    pub data_path: String,
    /// Keeps the data directory alive as long as the result is read.
    pub _dir: tempfile::TempDir,
}

impl Finished {
    /// Reads back an execution that finished.
    pub fn read(
        orchestrator: Orchestrator,
        record: ExecutionRecord,
        dir: tempfile::TempDir,
    ) -> Self {
        let (record, steps) = orchestrator.execution(&record.id).expect("read back");
        Finished {
            orchestrator,
            record,
            steps,
            data_path: "/data".to_owned(),
            _dir: dir,
        }
    }

    pub fn step(&self, path: &str) -> &StepRecord {
        self.steps
            .iter()
            .find(|step| step.path == path)
            .unwrap_or_else(|| panic!("no step {path} in {:#?}", self.steps))
    }

    pub fn status(&self, path: &str) -> StepStatus {
        self.step(path).status
    }

    /// The whole log of a step, one string per line.
    pub fn log(&self, path: &str) -> Vec<String> {
        let reader = self
            .orchestrator
            .logs()
            .reader(&self.record.id, path)
            .unwrap_or_else(|error| panic!("no log for step {path}: {error}"));
        reader
            .lines(1..reader.line_count() + 1)
            .expect("read log")
            .into_iter()
            .map(|line| line.text)
            .collect()
    }

    /// The step's output without testloop's own `[testloop]` notes.
    pub fn output(&self, path: &str) -> Vec<String> {
        self.log(path)
            .into_iter()
            .filter(|line| !line.starts_with("[testloop]"))
            .collect()
    }
}

pub fn save(orchestrator: &Orchestrator, yaml: &str) -> String {
    let parsed = spec::parse(yaml).unwrap_or_else(|problems| {
        panic!(
            "invalid test workflow:\n{}",
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let first = parsed.into_iter().next().expect("one workflow");
    orchestrator.save_workflow(&first).expect("save workflow");
    first.workflow.metadata.name
}

pub fn start(
    orchestrator: &Orchestrator,
    name: &str,
    config: &[(&str, &str)],
) -> Result<RunHandle, testloop_orchestrator::run::Error> {
    orchestrator.start(RunRequest {
        workflow: name.to_owned(),
        config: config
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect::<BTreeMap<_, _>>(),
        trigger: Trigger::Cli,
        executor: None,
    })
}

/// A workflow document around the given `spec:` body (indented by two spaces).
pub fn workflow(name: &str, spec_body: &str) -> String {
    let mut yaml = format!(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: {name}\nspec:\n"
    );
    for line in spec_body.lines() {
        yaml.push_str("  ");
        yaml.push_str(line);
        yaml.push('\n');
    }
    yaml
}

/// Whether a process is gone (or a zombie waiting for a reaper that never comes).
pub fn process_is_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}
