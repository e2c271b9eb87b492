//! What only the Kubernetes executor has to get right, through the API double's faults: failures
//! a user must understand in plain words, clean-up, API errors and broken streams.

#[path = "semantics/backend.rs"]
mod backend;

use std::time::Duration;

use backend::{Backend, Finished, NAMESPACE, eventually, workflow};
use testloop_orchestrator::execution::{ExecutionStatus, StepStatus};

fn double(b: &Backend) -> &testloop_kube_double::KubeDouble {
    b.double().expect("the kubernetes backend")
}

/// A workflow started on `b`, once its pod runs.
struct Started {
    orchestrator: testloop_orchestrator::Orchestrator,
    handle: testloop_orchestrator::run::RunHandle,
    dir: tempfile::TempDir,
}

async fn start_running(b: &Backend, name: &str, spec_body: &str) -> Started {
    let dir = tempfile::tempdir().unwrap();
    let orchestrator = b.open(&dir).await;
    let name = backend::save(&orchestrator, &workflow(name, spec_body));
    let handle = backend::start(&orchestrator, &name, &[]).unwrap();
    let double = double(b);
    eventually("the pod to run", Duration::from_secs(20), || {
        double
            .objects("pods", NAMESPACE)
            .iter()
            .any(|p| p["status"]["phase"] == "Running")
    })
    .await;
    Started {
        orchestrator,
        handle,
        dir,
    }
}

/// The execution's final record, within 30 s.
async fn finished(
    handle: testloop_orchestrator::run::RunHandle,
) -> testloop_orchestrator::execution::ExecutionRecord {
    tokio::time::timeout(Duration::from_secs(30), handle.done)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_leaves_nothing_behind_and_costs_few_requests() {
    let b = Backend::kubernetes().await;
    let done = b
        .run(&workflow(
            "tidy",
            "steps:\n- shell: echo one\n- shell: echo two",
        ))
        .await;
    assert_eq!(
        done.record.status,
        ExecutionStatus::Passed,
        "{:#?}",
        done.steps
    );
    b.settled().await;
    let requests = double(&b).requests();
    // Per unit: create the pod, create its ConfigMap, delete the pod; the watch (one list, one
    // watch) is shared by every unit the server runs.
    assert_eq!(requests.get("create", "pods"), 1, "{requests:?}");
    assert_eq!(requests.get("create", "configmaps"), 1, "{requests:?}");
    assert_eq!(requests.get("delete", "pods"), 1, "{requests:?}");
    assert_eq!(requests.get("list", "pods"), 1, "{requests:?}");
    assert_eq!(requests.get("watch", "pods"), 1, "{requests:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_cannot_be_pulled_fails_the_step_naming_the_image() {
    let b = Backend::kubernetes().await;
    double(&b)
        .faults()
        .fail_image_pull("registry.example/missing:1");
    let done = b
        .run(&workflow(
            "pull",
            "steps:\n- shell: echo first\n- run:\n    image: registry.example/missing:1\n    shell: echo never\n- shell: echo never-either\nafter:\n- run:\n    image: registry.example/missing:1\n    shell: echo cleanup",
        ))
        .await;
    assert_eq!(done.record.status, ExecutionStatus::Failed);
    assert_eq!(done.status("1"), StepStatus::Passed);
    let step = done.step("2");
    assert_eq!(step.status, StepStatus::Failed);
    let message = step.message.as_deref().unwrap();
    assert!(
        message.starts_with("image pull failed: cannot pull image \"registry.example/missing:1\""),
        "{message}"
    );
    assert_eq!(done.status("3"), StepStatus::Skipped);
    assert!(
        done.step("3")
            .message
            .as_deref()
            .unwrap()
            .starts_with("not run: image pull failed")
    );
    b.settled().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unschedulable_pod_fails_with_the_schedulers_reason() {
    let b = Backend::kubernetes().await;
    double(&b)
        .faults()
        .unschedulable(Some("0/3 nodes are available: 3 Insufficient memory."));
    let done = b
        .run(&workflow("unschedulable", "steps:\n- shell: echo never"))
        .await;
    assert_eq!(done.record.status, ExecutionStatus::Failed);
    let message = done.step("1").message.clone().unwrap();
    assert!(
        message.starts_with("unschedulable: 0/3 nodes are available: 3 Insufficient memory."),
        "{message}"
    );
    assert!(message.contains("still pending after 3s"), "{message}");
    b.settled().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oom_killed_container_fails_its_step_in_plain_words() {
    let b = Backend::kubernetes().await;
    // The trigger is assembled by the shell: the step's name (in the runner's control lines)
    // holds its script, which must not trigger the kill before the step runs.
    double(&b).faults().oom_kill_on_output("allocating a lot");
    let done = b
        .run(&workflow(
            "oom",
            "container:\n  resources:\n    limits: {memory: 64Mi}\nsteps:\n- shell: echo fine\n- shell: what=allocating; echo $what a lot; sleep 30\n- shell: echo never",
        ))
        .await;
    assert_eq!(done.record.status, ExecutionStatus::Failed);
    assert_eq!(done.status("1"), StepStatus::Passed);
    let step = done.step("2");
    assert_eq!(step.status, StepStatus::Failed);
    assert_eq!(
        step.message.as_deref(),
        Some("OOMKilled: the container ran out of memory (limit 64Mi); exit code 137")
    );
    assert_eq!(done.output("2"), vec!["allocating a lot"]);
    assert_eq!(done.status("3"), StepStatus::Skipped);
    b.settled().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_pod_fails_the_running_step_with_the_kubelets_reason() {
    let b = Backend::kubernetes().await;
    let Started {
        orchestrator,
        handle,
        dir: _dir,
    } = start_running(
        &b,
        "evict",
        "steps:\n- shell: echo started; sleep 30\n- shell: echo never",
    )
    .await;
    let double = double(&b);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pod = double.objects("pods", NAMESPACE)[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    double.faults().evict(NAMESPACE, &pod);
    let record = finished(handle).await;
    let (record, steps) = orchestrator.execution(&record.id).unwrap();
    assert_eq!(record.status, ExecutionStatus::Failed);
    let step = steps.iter().find(|s| s.path == "1").unwrap();
    assert_eq!(step.status, StepStatus::Failed);
    assert!(
        step.message
            .as_deref()
            .unwrap()
            .starts_with("evicted: The node was low on resource: memory."),
        "{step:?}"
    );
    let next = steps.iter().find(|s| s.path == "2").unwrap();
    assert_eq!(next.status, StepStatus::Skipped);
    b.settled().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_and_throttling_are_retried() {
    let b = Backend::kubernetes().await;
    let faults = double(&b).faults();
    faults.fail_requests("create", "pods", 500, 2);
    faults.fail_requests("create", "configmaps", 429, 1);
    faults.fail_requests("delete", "pods", 503, 1);
    let done = b
        .run(&workflow("flaky-api", "steps:\n- shell: echo through"))
        .await;
    assert_eq!(done.record.status, ExecutionStatus::Passed);
    assert_eq!(done.output("1"), vec!["through"]);
    b.settled().await;
    let requests = double(&b).requests();
    assert_eq!(requests.get("create", "pods"), 3);
    assert_eq!(requests.get("create", "configmaps"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_watch_and_dropped_streams_lose_nothing() {
    let b = Backend::kubernetes().await;
    let Started {
        orchestrator,
        handle,
        dir,
    } = start_running(
        &b,
        "streams",
        "steps:\n- shell: |\n    for i in 1 2 3 4 5 6 7 8 9 10; do echo line $i; sleep 0.1; done\n- shell: echo after",
    )
    .await;
    let double = double(&b);
    tokio::time::sleep(Duration::from_millis(250)).await;
    double.faults().expire_watches();
    double.faults().drop_connections();
    tokio::time::sleep(Duration::from_millis(250)).await;
    double.faults().drop_connections();
    let record = finished(handle).await;
    let (record, _) = orchestrator.execution(&record.id).unwrap();
    let done = Finished::read(orchestrator, record, dir);
    assert_eq!(done.record.status, ExecutionStatus::Passed);
    let expected: Vec<String> = (1..=10).map(|i| format!("line {i}")).collect();
    assert_eq!(done.output("1"), expected, "every line once, in order");
    assert_eq!(done.output("2"), vec!["after"]);
    assert!(
        double.requests().get("watch", "pods") >= 2,
        "the watch was resumed"
    );
    b.settled().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_deletes_the_pod() {
    let b = Backend::kubernetes().await;
    let Started {
        orchestrator,
        handle,
        dir: _dir,
    } = start_running(&b, "abort-pod", "steps:\n- shell: sleep 60").await;
    assert!(orchestrator.abort(&handle.id));
    let record = finished(handle).await;
    assert_eq!(record.status, ExecutionStatus::Aborted);
    b.settled().await;
}
