//! What only a real cluster can show: a real kubelet pulling (or failing to pull) images, a real
//! scheduler, the kernel's OOM killer, Pod Security admission, garbage collection. Runs when
//! `TESTLOOP_E2E_KUBECONFIG` names a cluster and is ignored otherwise (see README, "Tests against a
//! real cluster"); the same situations are played by the API double in `kubernetes.rs`.

#[path = "semantics/backend.rs"]
mod backend;

use std::time::Duration;

use backend::{Backend, workflow};
use testloop_orchestrator::execution::{ExecutionStatus, StepStatus};

/// Named so that `cargo test real_cluster` picks these with the other real-cluster tests.
mod real_cluster {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(e2e_cluster),
        ignore = "needs a cluster: set TESTLOOP_E2E_KUBECONFIG"
    )]
    async fn a_workflow_runs_as_a_restricted_pod_and_leaves_nothing_behind() {
        let b = Backend::real_cluster();
        // The README has the namespace enforce the restricted Pod Security profile, so admission
        // itself checks the pods' security settings.
        let done = b
            .run(&workflow(
                "e2e-basics",
                "content:\n  files:\n  - path: /data/input.txt\n    content: from a ConfigMap\nsteps:\n- shell: cat /data/input.txt; echo written > /data/shared.txt\n- shell: cat /data/shared.txt; id -u\n- shell: exit 3\n  optional: true\nafter:\n- condition: always\n  shell: echo cleanup",
            ))
            .await;
        assert_eq!(
            done.record.status,
            ExecutionStatus::Passed,
            "{:#?}",
            done.steps
        );
        assert_eq!(done.output("1"), ["from a ConfigMap"]);
        assert_eq!(done.output("2"), ["written", "65532"]);
        assert_eq!(done.status("3"), StepStatus::Failed);
        assert_eq!(done.step("3").exit_code, Some(3));
        assert_eq!(done.output("after/1"), ["cleanup"]);
        b.settled().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(e2e_cluster),
        ignore = "needs a cluster: set TESTLOOP_E2E_KUBECONFIG"
    )]
    async fn an_image_that_cannot_be_pulled_fails_naming_the_image() {
        let b = Backend::real_cluster();
        let image = "registry.invalid/testloop/missing:0";
        let done = b
            .run(&workflow(
                "e2e-pull",
                &format!(
                    "steps:\n- shell: echo first\n- run:\n    image: {image}\n    shell: echo never"
                ),
            ))
            .await;
        assert_eq!(done.record.status, ExecutionStatus::Failed);
        assert_eq!(done.status("1"), StepStatus::Passed);
        let message = done.step("2").message.clone().unwrap_or_default();
        assert!(
            message.starts_with("image pull failed") && message.contains(image),
            "{message}"
        );
        b.settled().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(e2e_cluster),
        ignore = "needs a cluster: set TESTLOOP_E2E_KUBECONFIG"
    )]
    async fn a_pod_no_node_can_take_fails_with_the_schedulers_reason() {
        let b = Backend::real_cluster();
        let done = b
            .run(&workflow(
                "e2e-unschedulable",
                "pod:\n  nodeSelector:\n    testloop.dev/e2e-no-such-node: \"true\"\nsteps:\n- shell: echo never",
            ))
            .await;
        assert_eq!(done.record.status, ExecutionStatus::Failed);
        let message = done.step("1").message.clone().unwrap_or_default();
        assert!(
            message.starts_with("unschedulable: 0/") && message.contains("node"),
            "{message}"
        );
        b.settled().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(e2e_cluster),
        ignore = "needs a cluster: set TESTLOOP_E2E_KUBECONFIG"
    )]
    async fn a_step_over_its_memory_limit_is_reported_oom_killed() {
        let b = Backend::real_cluster();
        if let Backend::RealCluster(cluster) = &b {
            // The double enforces no memory limit: there `tail` would take the machine's memory.
            assert!(
                cluster.runner_source.is_none(),
                "needs a real cluster's memory limits, not the API double"
            );
        }
        // `tail` keeps the last lines in memory; /dev/zero has no line end, so it grows until killed.
        let done = b
            .run(&workflow(
                "e2e-oom",
                "container:\n  resources:\n    limits: {memory: 32Mi}\nsteps:\n- shell: echo fine\n- shell: tail /dev/zero\n- shell: echo never",
            ))
            .await;
        assert_eq!(done.record.status, ExecutionStatus::Failed);
        assert_eq!(done.status("1"), StepStatus::Passed);
        let step = done.step("2");
        assert_eq!(step.status, StepStatus::Failed, "{step:?}");
        let message = step.message.clone().unwrap_or_default();
        // The OOM killer takes the biggest process of the container, the step's: the runner
        // sees the count of its cgroup go up and says so.
        assert!(
            message.starts_with("OOMKilled: the step ran out of memory (memory limit 32Mi)"),
            "{message}"
        );
        assert_eq!(done.status("3"), StepStatus::Skipped);
        b.settled().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(e2e_cluster),
        ignore = "needs a cluster: set TESTLOOP_E2E_KUBECONFIG"
    )]
    async fn abort_deletes_the_pod_on_a_real_cluster() {
        let b = Backend::real_cluster();
        let dir = tempfile::tempdir().unwrap();
        let orchestrator = b.open(&dir).await;
        let name = backend::save(
            &orchestrator,
            &workflow("e2e-abort", "steps:\n- shell: echo started; sleep 600"),
        );
        let handle = backend::start(&orchestrator, &name, &[]).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !orchestrator
            .execution(&handle.id)
            .unwrap()
            .1
            .iter()
            .any(|step| step.status == StepStatus::Running)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the step never started"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(orchestrator.abort(&handle.id));
        let record = tokio::time::timeout(Duration::from_secs(60), handle.done)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.status, ExecutionStatus::Aborted);
        b.settled().await;
    }
}
