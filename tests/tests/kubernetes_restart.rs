//! A testloop process that dies while its pods run: the next one to open the data directory with
//! the Kubernetes executor re-attaches to them and finishes recording them, or marks the execution
//! `interrupted` when its pods vanished meanwhile. The process that dies is the real binary,
//! killed with SIGKILL; the pods run on, in the API double or, when `TESTLOOP_E2E_KUBECONFIG`
//! names one, in a real cluster.

#[path = "semantics/backend.rs"]
mod backend;

use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use backend::{Backend, eventually, workflow};
use testloop_orchestrator::Orchestrator;
use testloop_orchestrator::execution::ExecutorKind;
use testloop_orchestrator::execution::{ExecutionRecord, ExecutionStatus, StepRecord, StepStatus};
use testloop_orchestrator::executor::kubernetes::executor::KubernetesExecutor;
use testloop_orchestrator::executor::sandbox::SandboxMode;
use testloop_orchestrator::run::OrchestratorConfig;
use testloop_orchestrator::store::ExecutionFilter;
use testloop_tests::testloop;

/// Kills the child for good even when an assertion fails first.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const SLOW: &str = "steps:\n- shell: echo first\n- shell: echo started; sleep 2; echo finished\n- shell: echo third";

/// Starts `testloop run --executor kubernetes` of [`SLOW`] and kills it with SIGKILL while its
/// second step runs; returns the execution's id and when it was killed.
async fn killed_mid_run(b: &Backend, dir: &tempfile::TempDir) -> (String, i64) {
    let file = dir.path().join("slow.yaml");
    std::fs::write(&file, workflow("slow", SLOW)).unwrap();
    let mut command = testloop(dir.path());
    command.args(["run", "--executor", "kubernetes"]).arg(&file);
    b.cli_env(&mut command);
    command
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("run.stderr")).unwrap());
    let mut child = Killed(command.spawn().unwrap());
    // A local-only view of the same data directory: it leaves the live run alone.
    let observer = Orchestrator::open(testloop_orchestrator::run::OrchestratorConfig::local(
        dir.path().to_path_buf(),
        testloop_orchestrator::executor::sandbox::SandboxMode::Auto,
    ))
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let id = loop {
        let latest = observer
            .executions(&ExecutionFilter {
                limit: 1,
                ..ExecutionFilter::default()
            })
            .unwrap()
            .into_iter()
            .next();
        let mut seen = Vec::new();
        if let Some(execution) = latest {
            let (_, steps) = observer.execution(&execution.id).unwrap();
            if steps
                .iter()
                .any(|step| step.path == "2" && step.status == StepStatus::Running)
            {
                break execution.id;
            }
            seen = steps;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for the second step to start; steps: {seen:#?}\nstderr: {}",
            std::fs::read_to_string(dir.path().join("run.stderr")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let killed_at = testloop_orchestrator::execution::now_micros();
    let (record, _) = observer.execution(&id).unwrap();
    assert_eq!(
        record.status,
        ExecutionStatus::Running,
        "left running by its dead process"
    );
    (id, killed_at)
}

/// The execution once it has ended, as recorded.
async fn ended(orchestrator: &Orchestrator, id: &str) -> (ExecutionRecord, Vec<StepRecord>) {
    eventually("the execution to end", Duration::from_secs(120), || {
        orchestrator.execution(id).unwrap().0.status.is_terminal()
    })
    .await;
    orchestrator.execution(id).unwrap()
}

fn log(orchestrator: &Orchestrator, id: &str, step: &str) -> Vec<String> {
    let reader = orchestrator.logs().reader(id, step).unwrap();
    reader
        .lines(1..reader.line_count() + 1)
        .unwrap()
        .into_iter()
        .map(|line| line.text)
        .collect()
}

fn status(steps: &[StepRecord], path: &str) -> StepStatus {
    steps
        .iter()
        .find(|step| step.path == path)
        .unwrap_or_else(|| panic!("no step {path} in {steps:#?}"))
        .status
}

/// The one pod of the run, once `ready` holds for it.
async fn pod_when(b: &Backend, what: &str, ready: impl Fn(&serde_json::Value) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(pod) = b.pods().await.into_iter().find(&ready) {
            return pod["metadata"]["name"].as_str().unwrap().to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Declares each case on the API double and, ignored without one, on a real cluster.
macro_rules! on_both_clusters {
    ($($case:ident),+ $(,)?) => {
        mod double {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(&super::Backend::kubernetes().await).await;
                }
            )+
        }
        mod real_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(e2e_cluster), ignore = "needs a cluster: set TESTLOOP_E2E_KUBECONFIG")]
                async fn $case() {
                    super::$case(&super::Backend::real_cluster()).await;
                }
            )+
        }
    };
}

on_both_clusters!(
    a_restarted_server_re_attaches_to_a_running_pod_and_records_it_to_the_end,
    a_pod_that_finished_while_no_server_ran_is_recorded_from_its_logs,
    an_execution_whose_pod_vanished_is_marked_interrupted_with_the_reason,
    a_local_only_process_leaves_a_kubernetes_execution_for_one_that_can_follow_it,
    a_process_on_another_namespace_leaves_the_execution_for_one_on_its_own,
);

pub async fn a_restarted_server_re_attaches_to_a_running_pod_and_records_it_to_the_end(
    b: &Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    let (id, killed_at) = killed_mid_run(b, &dir).await;

    let orchestrator = b.open(&dir).await;
    let (record, steps) = ended(&orchestrator, &id).await;
    assert_eq!(
        record.status,
        ExecutionStatus::Passed,
        "{record:?} {steps:#?}"
    );
    for path in ["1", "2", "3"] {
        assert_eq!(status(&steps, path), StepStatus::Passed, "{steps:#?}");
    }
    // Read again from the pod, whole: nothing lost while no one followed it, nothing twice.
    assert_eq!(log(&orchestrator, &id, "1"), ["first"]);
    // And each line keeps when it was printed (the kubelet's timestamp), not when it was re-read.
    let reader = orchestrator.logs().reader(&id, "1").unwrap();
    let first = &reader.lines(1..2).unwrap()[0];
    assert!(
        first.timestamp < killed_at,
        "printed at {}, before the kill at {killed_at}",
        first.timestamp
    );
    assert_eq!(log(&orchestrator, &id, "2"), ["started", "finished"]);
    assert_eq!(log(&orchestrator, &id, "3"), ["third"]);
    if let Some(double) = b.double() {
        assert_eq!(
            double.requests().get("create", "pods"),
            1,
            "the pod is followed, not started again"
        );
    }
    b.settled().await;
    assert!(
        !dir.path().join("runs").join(format!("{id}.lock")).exists(),
        "the lease is released"
    );
}

pub async fn a_pod_that_finished_while_no_server_ran_is_recorded_from_its_logs(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (id, killed_at) = killed_mid_run(b, &dir).await;
    pod_when(b, "the pod to finish on its own", |pod| {
        pod["status"]["phase"] == "Succeeded"
    })
    .await;

    let reopened_at = testloop_orchestrator::execution::now_micros();
    let orchestrator = b.open(&dir).await;
    let (record, steps) = ended(&orchestrator, &id).await;
    assert_eq!(
        record.status,
        ExecutionStatus::Passed,
        "{record:?} {steps:#?}"
    );
    assert_eq!(log(&orchestrator, &id, "2"), ["started", "finished"]);
    assert_eq!(log(&orchestrator, &id, "3"), ["third"]);
    // Printed while no testloop ran, and recorded with that time.
    let reader = orchestrator.logs().reader(&id, "3").unwrap();
    let third = reader.lines(1..2).unwrap()[0].timestamp;
    assert!(
        killed_at < third && third < reopened_at,
        "{killed_at} < {third} < {reopened_at}"
    );
    b.settled().await;
}

pub async fn an_execution_whose_pod_vanished_is_marked_interrupted_with_the_reason(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (id, _) = killed_mid_run(b, &dir).await;
    let pod = pod_when(b, "the pod", |_| true).await;
    b.delete_pod(&pod).await;
    b.settled().await;

    let orchestrator = b.open(&dir).await;
    let (record, steps) = ended(&orchestrator, &id).await;
    assert_eq!(record.status, ExecutionStatus::Interrupted, "{record:?}");
    let error = record.error.as_deref().unwrap_or_default();
    assert!(
        error.contains(&format!(
            "its pod {pod} is gone from namespace {}",
            b.namespace()
        )),
        "{error}"
    );
    assert_eq!(status(&steps, "1"), StepStatus::Passed, "{steps:#?}");
    assert_eq!(status(&steps, "2"), StepStatus::Interrupted, "{steps:#?}");
    // What was recorded before the process died is kept.
    assert_eq!(log(&orchestrator, &id, "1"), ["first"]);
}

pub async fn a_local_only_process_leaves_a_kubernetes_execution_for_one_that_can_follow_it(
    b: &Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    let (id, _) = killed_mid_run(b, &dir).await;
    let local = Backend::Local.open(&dir).await;
    assert_eq!(
        local.execution(&id).unwrap().0.status,
        ExecutionStatus::Running,
        "not marked interrupted by a process that cannot see its pods"
    );
    drop(local);
    let orchestrator = b.open(&dir).await;
    let (record, _) = ended(&orchestrator, &id).await;
    assert_eq!(record.status, ExecutionStatus::Passed, "{record:?}");
    b.settled().await;
}

pub async fn a_process_on_another_namespace_leaves_the_execution_for_one_on_its_own(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (id, _) = killed_mid_run(b, &dir).await;
    let mut options = b.kubernetes_options().unwrap();
    options.cluster.namespace = Some("elsewhere".to_owned());
    let executor = KubernetesExecutor::connect(options).await.unwrap();
    let mut config = OrchestratorConfig::local(dir.path().to_path_buf(), SandboxMode::Auto);
    config.kubernetes = Some(Arc::new(executor));
    config.default_executor = ExecutorKind::Kubernetes;
    let elsewhere = Orchestrator::open(config).unwrap();
    // Looking for its pod there would find none and give the execution up at once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        elsewhere.execution(&id).unwrap().0.status,
        ExecutionStatus::Running,
        "not given up by a process that looks in another namespace"
    );
    drop(elsewhere);
    let orchestrator = b.open(&dir).await;
    let (record, _) = ended(&orchestrator, &id).await;
    assert_eq!(record.status, ExecutionStatus::Passed, "{record:?}");
    b.settled().await;
}
