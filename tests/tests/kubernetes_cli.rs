//! The Kubernetes executor from the real binary: `testloop run --executor kubernetes` and the MCP
//! server choosing the executor per run, against the API double through a kubeconfig file.

use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use serde_json::json;
use testloop_kube_double::KubeDouble;
use testloop_tests::{Ran, testloop, testloop_bin};

const NAMESPACE: &str = "tests";
const ANSWER: Duration = Duration::from_secs(30);

/// The cluster flags, through the environment as a deployment would set them.
fn kube_env(command: &mut std::process::Command, kubeconfig: &std::path::Path) {
    command
        .env("TESTLOOP_KUBECONFIG", kubeconfig)
        .env("TESTLOOP_TOOLKIT_BINARY", testloop_bin());
}

async fn run(data: &std::path::Path, kubeconfig: &std::path::Path, args: &[&str]) -> Ran {
    let mut command = testloop(data);
    kube_env(&mut command, kubeconfig);
    command.args(args);
    tokio::task::spawn_blocking(move || command.output().expect("run testloop").into())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testloop_run_executes_an_example_on_kubernetes() {
    let double = KubeDouble::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    double.write_kubeconfig(&kubeconfig, NAMESPACE).unwrap();
    let data = dir.path().join("data");

    let ran = run(
        &data,
        &kubeconfig,
        &[
            "run",
            "examples/workflows/hello.yaml",
            "--executor",
            "kubernetes",
        ],
    )
    .await;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stdout.contains("passed"), "{ran:?}");
    let id = testloop_tests::execution_id(&ran);
    let logs = run(&data, &kubeconfig, &["logs", &id, "--step", "1"]).await;
    assert!(logs.stdout.contains("hello from testloop"), "{logs:?}");
    let listed = run(&data, &kubeconfig, &["executions"]).await;
    let row = listed
        .stdout
        .lines()
        .find(|line| line.contains(&id))
        .unwrap_or_else(|| panic!("{listed:?}"));
    assert!(row.ends_with("kubernetes"), "{row}");
    assert!(
        double.objects("pods", NAMESPACE).is_empty() || {
            tokio::time::sleep(Duration::from_secs(3)).await;
            double.objects("pods", NAMESPACE).is_empty()
        }
    );

    // A failing run exits 1, and --keep-failed-pods keeps its pod for inspection.
    let ran = run(
        &data,
        &kubeconfig,
        &[
            "run",
            "examples/workflows/failing.yaml",
            "--executor",
            "kubernetes",
            "--keep-failed-pods",
        ],
    )
    .await;
    assert_eq!(ran.code, Some(1), "{ran:?}");
    let pods = double.objects("pods", NAMESPACE);
    assert_eq!(pods.len(), 1, "the failed unit's pod is kept: {pods:?}");
    assert_eq!(
        pods[0]["metadata"]["labels"]["testloop.dev/workflow"],
        json!("failing")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_a_cluster_runs_where_each_call_asks() {
    let double = KubeDouble::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    double.write_kubeconfig(&kubeconfig, NAMESPACE).unwrap();
    let data = dir.path().join("data");
    let saved = run(
        &data,
        &kubeconfig,
        &["run", "examples/workflows/hello.yaml"],
    )
    .await;
    assert_eq!(saved.code, Some(0), "{saved:?}");
    assert_eq!(
        double.requests().get("create", "pods"),
        0,
        "local by default"
    );

    let mut command = tokio::process::Command::new(testloop_bin());
    command
        .arg("serve")
        .env("TESTLOOP_HOME", &data)
        .env("TESTLOOP_KUBECONFIG", &kubeconfig)
        .env("TESTLOOP_TOOLKIT_BINARY", testloop_bin());
    let client = tokio::time::timeout(ANSWER, ().serve(TokioChildProcess::new(command).unwrap()))
        .await
        .unwrap()
        .unwrap();
    let arguments = json!({"name": "hello", "wait_seconds": 60, "executor": "kubernetes"});
    let result = tokio::time::timeout(
        ANSWER,
        client.call_tool(
            CallToolRequestParams::new("run_workflow")
                .with_arguments(arguments.as_object().unwrap().clone()),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let report = result.structured_content.unwrap();
    assert_eq!(report["status"], json!("passed"), "{report}");
    assert_eq!(report["executor"], json!("kubernetes"), "{report}");
    assert_eq!(double.requests().get("create", "pods"), 1);
    tokio::time::timeout(ANSWER, client.cancel())
        .await
        .unwrap()
        .unwrap();
}
