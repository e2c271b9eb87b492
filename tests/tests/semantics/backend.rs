#![allow(dead_code)] // Shared by the semantic suite and the Kubernetes-only tests, which use different parts.
//! The backends the semantic suite runs on: the local executor, the Kubernetes executor talking to
//! the API double through a real kubeconfig, and the Kubernetes executor on a real cluster when
//! one is configured.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams};
use testloop_kube_double::KubeDouble;
use testloop_orchestrator::execution::ExecutorKind;
use testloop_orchestrator::executor::kubernetes::cluster::{ClusterOptions, connect};
use testloop_orchestrator::executor::kubernetes::executor::{
    KubernetesExecutor, KubernetesOptions, MANAGED_SELECTOR,
};
use testloop_orchestrator::executor::kubernetes::manifest::PodOptions;

use testloop_orchestrator::Orchestrator;
use testloop_orchestrator::execution::{ExecutionRecord, StepRecord, StepStatus};
use testloop_orchestrator::executor::sandbox::{self, SandboxMode};
use testloop_orchestrator::run::OrchestratorConfig;
#[path = "../../../orchestrator/tests/support/workflows.rs"]
mod workflows;
// Each suite that includes this file uses some of them.
#[allow(unused_imports)]
pub use workflows::{process_is_gone, save, start, workflow};

/// Where a test's workflow runs.
pub enum Backend {
    Local,
    /// The Kubernetes executor, through kube-rs and a generated kubeconfig, against the API
    /// double; the pods' runner is the `testloop` binary built with these tests.
    Kubernetes(Cluster),
    /// The Kubernetes executor against the real cluster of `TESTLOOP_E2E_KUBECONFIG` (see
    /// README, "Tests against a real cluster").
    RealCluster(RealCluster),
}

/// An API double and a kubeconfig pointing at it.
pub struct Cluster {
    pub double: KubeDouble,
    pub kubeconfig: tempfile::NamedTempFile,
}

/// A real cluster, as the environment describes it.
pub struct RealCluster {
    pub kubeconfig: PathBuf,
    pub context: Option<String>,
    pub namespace: String,
    /// The toolkit image built from the Dockerfile and loaded into the cluster.
    pub toolkit_image: String,
    /// Where the toolkit image holds the runner; set (`TESTLOOP_E2E_TOOLKIT_BINARY`) only when the
    /// "cluster" is the API double run as a process, whose kubelet runs host paths: that checks
    /// this harness without a cluster.
    pub runner_source: Option<String>,
}

/// The namespace test pods go to on the double.
pub const NAMESPACE: &str = "tests";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

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

    /// The cluster of `TESTLOOP_E2E_KUBECONFIG` (context `TESTLOOP_E2E_CONTEXT`, namespace
    /// `TESTLOOP_E2E_NAMESPACE`, default `testloop-e2e`; toolkit image `TESTLOOP_E2E_TOOLKIT_IMAGE`,
    /// default `testloop:e2e`).
    pub fn real_cluster() -> Self {
        let kubeconfig = env("TESTLOOP_E2E_KUBECONFIG").unwrap_or_else(|| {
            panic!(
                "this test runs against a real cluster: set TESTLOOP_E2E_KUBECONFIG (see README)"
            )
        });
        Backend::RealCluster(RealCluster {
            kubeconfig: kubeconfig.into(),
            context: env("TESTLOOP_E2E_CONTEXT"),
            namespace: env("TESTLOOP_E2E_NAMESPACE").unwrap_or_else(|| "testloop-e2e".to_owned()),
            toolkit_image: env("TESTLOOP_E2E_TOOLKIT_IMAGE")
                .unwrap_or_else(|| "testloop:e2e".to_owned()),
            runner_source: env("TESTLOOP_E2E_TOOLKIT_BINARY"),
        })
    }

    /// The double, on the Kubernetes backend.
    pub fn double(&self) -> Option<&KubeDouble> {
        match self {
            Backend::Kubernetes(cluster) => Some(&cluster.double),
            Backend::Local | Backend::RealCluster(_) => None,
        }
    }

    /// Where test pods go.
    pub fn namespace(&self) -> &str {
        match self {
            Backend::RealCluster(cluster) => &cluster.namespace,
            Backend::Local | Backend::Kubernetes(_) => NAMESPACE,
        }
    }

    /// How the Kubernetes executor reaches this backend's cluster; `None` for the local one.
    pub fn kubernetes_options(&self) -> Option<KubernetesOptions> {
        let (cluster, pod) = match self {
            Backend::Local => return None,
            Backend::Kubernetes(cluster) => (
                ClusterOptions {
                    kubeconfig: Some(cluster.kubeconfig.path().to_path_buf()),
                    context: None,
                    namespace: None,
                },
                PodOptions {
                    runner_source: testloop_tests::testloop_bin().display().to_string(),
                    ..PodOptions::default()
                },
            ),
            Backend::RealCluster(cluster) => (
                ClusterOptions {
                    kubeconfig: Some(cluster.kubeconfig.clone()),
                    context: cluster.context.clone(),
                    namespace: Some(cluster.namespace.clone()),
                },
                PodOptions {
                    toolkit_image: cluster.toolkit_image.clone(),
                    runner_source: cluster
                        .runner_source
                        .clone()
                        .unwrap_or_else(|| PodOptions::default().runner_source),
                    ..PodOptions::default()
                },
            ),
        };
        Some(KubernetesOptions {
            cluster,
            pod,
            keep_failed_pods: false,
            // Short on the double, whose scheduler answers at once; a real one may take a moment.
            schedule_timeout: Duration::from_secs(if self.double().is_some() { 3 } else { 20 }),
        })
    }

    /// Points a `testloop` command at this backend's cluster, as a user's environment would.
    pub fn cli_env(&self, command: &mut std::process::Command) {
        match self {
            Backend::Local => {}
            Backend::Kubernetes(cluster) => {
                command
                    .env("TESTLOOP_KUBECONFIG", cluster.kubeconfig.path())
                    .env("TESTLOOP_TOOLKIT_BINARY", testloop_tests::testloop_bin());
            }
            Backend::RealCluster(cluster) => {
                command
                    .env("TESTLOOP_KUBECONFIG", &cluster.kubeconfig)
                    .env("TESTLOOP_NAMESPACE", &cluster.namespace)
                    .env("TESTLOOP_TOOLKIT_IMAGE", &cluster.toolkit_image);
                if let Some(source) = &cluster.runner_source {
                    command.env("TESTLOOP_TOOLKIT_BINARY", source);
                }
                if let Some(context) = &cluster.context {
                    command.args(["--context", context]);
                }
            }
        }
    }

    /// A client of the cluster, for what a test checks behind testloop's back.
    pub async fn client(&self) -> kube::Client {
        let options = self.kubernetes_options().expect("a Kubernetes backend");
        connect(&options.cluster)
            .await
            .expect("connect to the cluster")
            .0
    }

    /// The testloop pods in the namespace, as JSON.
    pub async fn pods(&self) -> Vec<serde_json::Value> {
        self.managed::<Pod>("pods").await
    }

    /// The testloop ConfigMaps in the namespace, as JSON.
    pub async fn config_maps(&self) -> Vec<serde_json::Value> {
        self.managed::<ConfigMap>("configmaps").await
    }

    async fn managed<K>(&self, resource: &str) -> Vec<serde_json::Value>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        if let Some(double) = self.double() {
            return double.objects(resource, NAMESPACE);
        }
        let api: Api<K> = Api::namespaced(self.client().await, self.namespace());
        api.list(&ListParams::default().labels(MANAGED_SELECTOR))
            .await
            .expect("list")
            .items
            .iter()
            .map(|object| serde_json::to_value(object).expect("as JSON"))
            .collect()
    }

    /// Waits until nothing of testloop's is left in the namespace: no pod, no ConfigMap (a real
    /// cluster's garbage collector takes a moment for those the pods owned) and, on the double, no
    /// process.
    pub async fn settled(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (pods, config_maps) = (self.pods().await, self.config_maps().await);
            if pods.is_empty() && config_maps.is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "left behind: {pods:#?} {config_maps:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if let Some(double) = self.double() {
            eventually(
                "the pods' processes to end",
                Duration::from_secs(10),
                || double.running_processes() == 0,
            )
            .await;
        }
    }

    /// Deletes a pod through the API, as `kubectl delete pod` would.
    pub async fn delete_pod(&self, name: &str) {
        let api: Api<Pod> = Api::namespaced(self.client().await, self.namespace());
        api.delete(name, &DeleteParams::default())
            .await
            .expect("delete the pod");
    }

    /// Opens an orchestrator on `dir` that runs executions on this backend.
    pub async fn open(&self, dir: &tempfile::TempDir) -> Orchestrator {
        let mut config = OrchestratorConfig::local(dir.path().to_path_buf(), SandboxMode::Auto);
        if let Some(options) = self.kubernetes_options() {
            let executor = KubernetesExecutor::connect(options)
                .await
                .expect("connect to the cluster");
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

/// Waits until `done` holds, failing after `limit`.
pub async fn eventually(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
