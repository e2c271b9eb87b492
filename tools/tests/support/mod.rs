//! A real rmcp client joined to a real `TestloopServer` over an in-memory duplex pipe, with a real
//! orchestrator on a temp data directory.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult, ProgressNotificationParam};
use rmcp::service::{NotificationContext, RunningService, ServiceError};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;
use testloop_orchestrator::Orchestrator;
use testloop_orchestrator::executor::sandbox::SandboxMode;
use testloop_orchestrator::run::OrchestratorConfig;
use testloop_tools::TestloopServer;

/// Records the progress notifications the server sends.
#[derive(Clone, Default)]
pub struct Recorder {
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub orchestrator: Orchestrator,
    pub client: RunningService<RoleClient, Recorder>,
    pub recorder: Recorder,
}

/// A tool result, split into what tests look at.
#[derive(Debug)]
pub struct Answer {
    pub text: String,
    pub data: Value,
    pub is_error: bool,
}

impl Harness {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let orchestrator = Orchestrator::open(OrchestratorConfig::local(
            dir.path().to_path_buf(),
            SandboxMode::Auto,
        ))
        .expect("open orchestrator");
        let server = TestloopServer::new(orchestrator.clone());
        let (server_io, client_io) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let service = server.serve(server_io).await.expect("server starts");
            let _ = service.waiting().await;
        });
        let recorder = Recorder::default();
        let client = recorder
            .clone()
            .serve(client_io)
            .await
            .expect("client connects");
        Self {
            dir,
            orchestrator,
            client,
            recorder,
        }
    }

    pub async fn try_call(
        &self,
        tool: &str,
        arguments: Value,
    ) -> Result<CallToolResult, ServiceError> {
        let arguments = arguments.as_object().cloned().unwrap_or_default();
        self.client
            .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
            .await
    }

    pub async fn call(&self, tool: &str, arguments: Value) -> Answer {
        let result = self
            .try_call(tool, arguments)
            .await
            .unwrap_or_else(|error| panic!("{tool} failed at the protocol level: {error}"));
        answer(result)
    }

    /// Calls a tool that must succeed.
    pub async fn ok(&self, tool: &str, arguments: Value) -> Answer {
        let answer = self.call(tool, arguments).await;
        assert!(!answer.is_error, "{tool} failed: {}", answer.text);
        answer
    }

    /// Calls a tool that must fail with a tool error.
    pub async fn err(&self, tool: &str, arguments: Value) -> String {
        let answer = self.call(tool, arguments).await;
        assert!(
            answer.is_error,
            "{tool} should have failed: {}",
            answer.text
        );
        answer.text
    }

    pub async fn create(&self, yaml: &str) {
        self.ok("create_workflow", serde_json::json!({ "yaml": yaml }))
            .await;
    }

    /// Runs a workflow to completion and returns the report.
    pub async fn run_to_end(&self, name: &str) -> Answer {
        let answer = self
            .ok(
                "run_workflow",
                serde_json::json!({"name": name, "wait_seconds": 60}),
            )
            .await;
        assert_eq!(answer.data["finished"], true, "{}", answer.text);
        answer
    }

    /// Polls get_execution until the execution is finished.
    pub async fn wait_finished(&self, id: &str) -> Answer {
        for _ in 0..600 {
            let answer = self
                .ok("get_execution", serde_json::json!({ "id": id }))
                .await;
            if answer.data["finished"] == true {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("execution {id} did not finish");
    }
}

pub fn answer(result: CallToolResult) -> Answer {
    let text = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n");
    Answer {
        text,
        data: result.structured_content.unwrap_or(Value::Null),
        is_error: result.is_error == Some(true),
    }
}

/// A TestWorkflow document with `body` (indented under `spec:`).
pub fn workflow(name: &str, body: &str) -> String {
    let body: String = body.lines().map(|l| format!("  {l}\n")).collect();
    format!(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: {name}\nspec:\n{body}"
    )
}

/// A workflow whose second step prints 1000 lines (about 20 KB), then a coloured assertion failure, then
/// blank lines, and fails; its config has a sensitive token.
pub fn failing_workflow() -> String {
    workflow(
        "unit",
        r#"config:
  token:
    type: string
    sensitive: true
    default: s3cret-token-value
  expected:
    type: integer
    default: 2
steps:
- name: build
  shell: echo building
- name: unit tests
  shell: |
    for i in $(seq 1 1000); do echo "test case $i ok"; done
    printf '\033[31massertion failed: expected 2, got 3\033[0m\n'
    echo ""
    echo "   "
    exit 1
- name: deploy
  shell: echo never"#,
    )
}

/// A workflow that passes after about `seconds`.
pub fn slow_workflow(name: &str, seconds: u32) -> String {
    workflow(
        name,
        &format!(
            "steps:\n- name: first\n  shell: echo one\n- name: slow\n  shell: sleep {seconds}; echo done"
        ),
    )
}
