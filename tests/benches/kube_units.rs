//! The Kubernetes executor's API cost and start-up speed, against the API double:
//!
//! - requests per unit, counted at the double, log streams aside (goal: at most 4);
//! - the time to create 100 single-step units (100 executions started at once, until the double
//!   has received all 100 pods; goal: at most 1 s), and until all 100 have finished.
//!
//! `bash bench/run.sh kube` builds the binary the pods run and runs this.

use std::sync::Arc;
use std::time::{Duration, Instant};

use testloop_kube_double::KubeDouble;
use testloop_orchestrator::Orchestrator;
use testloop_orchestrator::execution::{ExecutionRecord, ExecutionStatus, ExecutorKind, Trigger};
use testloop_orchestrator::executor::kubernetes::cluster::ClusterOptions;
use testloop_orchestrator::executor::kubernetes::executor::{
    KubernetesExecutor, KubernetesOptions,
};
use testloop_orchestrator::executor::kubernetes::manifest::PodOptions;
use testloop_orchestrator::executor::sandbox::SandboxMode;
use testloop_orchestrator::run::{OrchestratorConfig, RunRequest};
use testloop_orchestrator::spec;

const UNITS: usize = 100;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let double = KubeDouble::start().await.expect("double");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    double
        .write_kubeconfig(&kubeconfig, "bench")
        .expect("kubeconfig");
    let executor = KubernetesExecutor::connect(KubernetesOptions {
        cluster: ClusterOptions {
            kubeconfig: Some(kubeconfig),
            ..ClusterOptions::default()
        },
        pod: PodOptions {
            runner_source: testloop_tests::testloop_bin().display().to_string(),
            ..PodOptions::default()
        },
        keep_failed_pods: false,
        schedule_timeout: Duration::from_secs(60),
    })
    .await
    .expect("connect");
    let mut config = OrchestratorConfig::local(dir.path().join("data"), SandboxMode::Auto);
    config.kubernetes = Some(Arc::new(executor));
    config.default_executor = ExecutorKind::Kubernetes;
    let orchestrator = Orchestrator::open(config).expect("open");
    let yaml = "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: one-step\nspec:\n  steps:\n  - shell: echo hi\n";
    let parsed = spec::parse(yaml).expect("workflow");
    orchestrator.save_workflow(&parsed[0]).expect("save");

    // One unit first: what a unit costs on its own, the shared watch included.
    run(&orchestrator, 1).await;
    wait_for_cleanup(&double).await;
    let first = double.requests();
    println!(
        "one unit: {} requests besides log streams ({} in all): {:?}",
        first.without_logs(),
        first.total(),
        first.by_kind
    );

    double.reset_requests();
    let started = Instant::now();
    let handles: Vec<_> = (0..UNITS)
        .map(|_| {
            orchestrator
                .start(RunRequest {
                    workflow: "one-step".to_owned(),
                    config: Default::default(),
                    trigger: Trigger::Cli,
                    executor: None,
                })
                .expect("start")
        })
        .collect();
    while double.requests().get("create", "pods") < UNITS as u64 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let created = started.elapsed();
    let mut passed = 0;
    let mut reasons = std::collections::BTreeMap::<String, usize>::new();
    for handle in handles {
        let record = handle.done.await.expect("run");
        match why_not_passed(&orchestrator, &record) {
            None => passed += 1,
            Some(reason) => *reasons.entry(reason).or_default() += 1,
        }
    }
    let finished = started.elapsed();
    wait_for_cleanup(&double).await;
    let requests = double.requests();
    println!(
        "{UNITS} units: all pods created in {:.0} ms, all finished in {:.0} ms ({passed} passed); \
         {:.2} requests per unit besides log streams ({:?})",
        created.as_secs_f64() * 1000.0,
        finished.as_secs_f64() * 1000.0,
        requests.without_logs() as f64 / UNITS as f64,
        requests.by_kind
    );
    for (reason, count) in &reasons {
        println!("  did not pass ({count}): {reason}");
    }
}

async fn run(orchestrator: &Orchestrator, count: usize) {
    for _ in 0..count {
        let handle = orchestrator
            .start(RunRequest {
                workflow: "one-step".to_owned(),
                config: Default::default(),
                trigger: Trigger::Cli,
                executor: None,
            })
            .expect("start");
        let record = handle.done.await.expect("run");
        if let Some(reason) = why_not_passed(orchestrator, &record) {
            panic!("a lone unit did not pass: {reason}");
        }
    }
}

/// Why a unit did not pass, in the words of its first step that says: part of the result, since a
/// benchmark that hides failures measures nothing.
fn why_not_passed(orchestrator: &Orchestrator, record: &ExecutionRecord) -> Option<String> {
    if record.status == ExecutionStatus::Passed {
        return None;
    }
    let (_, steps) = orchestrator.execution(&record.id).expect("execution");
    let reason = steps
        .iter()
        .find_map(|step| step.message.clone())
        .or(record.error.clone())
        .unwrap_or_else(|| format!("{:?}", record.status));
    let log = steps
        .first()
        .and_then(|step| orchestrator.logs().reader(&record.id, &step.path).ok())
        .and_then(|reader| reader.tail(3).ok())
        .map(|lines| {
            lines
                .into_iter()
                .map(|line| line.text)
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .unwrap_or_default();
    Some(format!("{reason} (log: {log})"))
}

async fn wait_for_cleanup(double: &KubeDouble) {
    while !(double.objects("pods", "bench").is_empty()
        && double.objects("configmaps", "bench").is_empty())
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
