//! Resources read from a real orchestrator after a real run.

use std::time::Duration;

use testloop_orchestrator::execution::Trigger;
use testloop_orchestrator::executor::sandbox::SandboxMode;
use testloop_orchestrator::run::{OrchestratorConfig, RunRequest};
use testloop_orchestrator::{Orchestrator, spec};
use testloop_tools::resources::{self, LOG_RESOURCE_BYTES, ResourceError};

const WORKFLOW: &str = "apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata:
  name: resourceful
description: Prints numbers
spec:
  steps:
  - name: count
    shell: seq 1 300
  - name: wide
    shell: for i in $(seq 1 100); do printf '%0300d\\n' $i; done
";

#[tokio::test]
async fn workflows_executions_and_logs_are_listed_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let orchestrator = Orchestrator::open(OrchestratorConfig::local(
        dir.path().to_path_buf(),
        SandboxMode::Auto,
    ))
    .unwrap();
    let parsed = spec::parse(WORKFLOW).unwrap().remove(0);
    orchestrator.save_workflow(&parsed).unwrap();
    let handle = orchestrator
        .start(RunRequest {
            workflow: "resourceful".into(),
            config: Default::default(),
            trigger: Trigger::Mcp,
            executor: None,
        })
        .unwrap();
    let record = tokio::time::timeout(Duration::from_secs(60), handle.done)
        .await
        .unwrap()
        .unwrap();

    let listed = resources::list(&orchestrator).unwrap();
    let uris: Vec<&str> = listed
        .iter()
        .map(|resource| resource.uri.as_str())
        .collect();
    let execution_uri = format!("testloop://executions/{}", record.id);
    assert_eq!(
        uris,
        vec!["testloop://workflows/resourceful", execution_uri.as_str()]
    );
    assert_eq!(listed[0].description, "Prints numbers");
    assert!(
        listed[1].description.ends_with(": passed"),
        "{:?}",
        listed[1]
    );

    let workflow = resources::read(&orchestrator, "testloop://workflows/resourceful").unwrap();
    assert_eq!(workflow.mime_type, "application/yaml");
    assert!(workflow.text.contains("shell: seq 1 300"));

    let prefix = &record.id[..12];
    let execution =
        resources::read(&orchestrator, &format!("testloop://executions/{prefix}")).unwrap();
    assert_eq!(
        execution.uri, execution_uri,
        "a prefix resolves to the full id"
    );
    let json: serde_json::Value = serde_json::from_str(&execution.text).unwrap();
    assert_eq!(json["status"], "passed");
    assert_eq!(json["steps"][1]["name"], "wide");

    let log = resources::read(&orchestrator, &format!("{execution_uri}/logs/1")).unwrap();
    let lines: Vec<&str> = log.text.lines().collect();
    assert_eq!(
        lines[0],
        "[testloop] showing lines 101-300 of 300; get_logs reads the rest"
    );
    assert_eq!(lines[1], "101");
    assert_eq!(*lines.last().unwrap(), "300");

    let wide = resources::read(&orchestrator, &format!("{execution_uri}/logs/2")).unwrap();
    assert!(
        wide.text.len() <= LOG_RESOURCE_BYTES + 200,
        "{}",
        wide.text.len()
    );
    assert!(
        wide.text.starts_with("[testloop] earlier lines cut at"),
        "{}",
        &wide.text[..200]
    );

    let missing = resources::read(&orchestrator, "testloop://workflows/nope").unwrap_err();
    assert!(
        matches!(missing, ResourceError::NotFound(ref message) if message.contains("list_workflows"))
    );
    let missing = resources::read(&orchestrator, "testloop://executions/01NOPE").unwrap_err();
    assert!(missing.to_string().contains("list_executions"), "{missing}");
    let missing_step =
        resources::read(&orchestrator, &format!("{execution_uri}/logs/9")).unwrap_err();
    assert!(
        missing_step.to_string().contains("no log for step `9`"),
        "{missing_step}"
    );
}
