//! `testloop serve` over stdio, driven as an IDE would: the real binary as a child process.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use testloop_tests::{run, testloop, testloop_bin};

/// `MAX_MESSAGE_BYTES` in `server/src/serve/limits.rs`.
const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// How long any one answer may take.
const ANSWER: Duration = Duration::from_secs(20);

/// `testloop serve` on `data` as a child process, with an rmcp client connected to its stdio.
async fn connect_stdio(
    data: &std::path::Path,
) -> rmcp::service::RunningService<rmcp::RoleClient, ()> {
    let mut command = tokio::process::Command::new(testloop_bin());
    command
        .arg("serve")
        .env("TESTLOOP_HOME", data)
        .env_remove("TESTLOOP_SANDBOX");
    let transport = TokioChildProcess::new(command).expect("spawn testloop serve");
    tokio::time::timeout(ANSWER, ().serve(transport))
        .await
        .expect("initialize in time")
        .expect("initialize")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_rmcp_client_lists_and_calls_tools_over_stdio() {
    let data = tempfile::tempdir().unwrap();
    let ran = run(data.path(), &["run", "examples/workflows/hello.yaml"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");

    let client = connect_stdio(data.path()).await;

    let info = client.peer_info().expect("the server introduced itself");
    assert_eq!(
        info.server_info.as_ref().map(|server| server.name.as_str()),
        Some("testloop")
    );

    let tools = tokio::time::timeout(ANSWER, client.list_all_tools())
        .await
        .unwrap()
        .expect("tools/list");
    assert!(
        tools.iter().any(|tool| tool.name == "list_workflows"),
        "{tools:?}"
    );

    let listed = tokio::time::timeout(
        ANSWER,
        client.call_tool(CallToolRequestParams::new("list_workflows")),
    )
    .await
    .unwrap()
    .expect("tools/call list_workflows");
    assert_ne!(listed.is_error, Some(true), "{listed:?}");
    let structured = listed.structured_content.expect("structured output");
    assert_eq!(
        structured["workflows"][0]["name"],
        json!("hello"),
        "{structured}"
    );
    assert_eq!(
        structured["workflows"][0]["version"],
        json!(1),
        "{structured}"
    );

    // A tool that does not exist fails cleanly, and the server keeps serving.
    let missing = tokio::time::timeout(
        ANSWER,
        client.call_tool(CallToolRequestParams::new("no_such_tool")),
    )
    .await
    .unwrap();
    assert!(
        missing.is_err() || missing.as_ref().is_ok_and(|r| r.is_error == Some(true)),
        "{missing:?}"
    );
    let again = tokio::time::timeout(ANSWER, client.list_all_tools())
        .await
        .unwrap();
    assert!(again.is_ok(), "{again:?}");

    tokio::time::timeout(ANSWER, client.cancel())
        .await
        .unwrap()
        .unwrap();
}

/// A line-level client: lines in, lines out, every wait bounded.
struct Lines {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: std::path::PathBuf,
}

impl Lines {
    fn start(data: &std::path::Path) -> Self {
        let stderr = data.join("serve.stderr");
        let mut child = testloop(data)
            .arg("serve")
            .env("TESTLOOP_LOG", "debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("spawn testloop serve");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stdin,
            lines,
            stderr,
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next line on stdout, which must be a JSON-RPC message.
    fn next(&self) -> Value {
        let line = self.lines.recv_timeout(ANSWER).expect("an answer in time");
        let message: Value = serde_json::from_str(&line)
            .unwrap_or_else(|error| panic!("stdout carried a non-JSON line ({error}): {line}"));
        assert_eq!(message["jsonrpc"], "2.0", "{line}");
        message
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn stdout_carries_only_protocol_and_bad_lines_do_not_stop_serving() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Lines::start(data.path());
    server.send(
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"lines","version":"1"}}}"#,
    );
    let initialized = server.next();
    assert_eq!(initialized["id"], 1, "{initialized}");
    assert!(initialized["result"]["protocolVersion"].is_string());
    server.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);

    // Not JSON at all: ignored (there is no id to answer). JSON that is no valid message: an
    // `Invalid request` error. Then serving goes on.
    server.send("this is not json {");
    server.send(r#"{"jsonrpc":"2.0","id":5,"method":42}"#);
    let invalid = server.next();
    assert_eq!(invalid["error"]["code"], -32600, "{invalid}");

    server.send(
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_workflows","arguments":{}}}"#,
    );
    let listed = server.next();
    assert_eq!(listed["id"], 2, "{listed}");
    assert_eq!(
        listed["result"]["structuredContent"]["workflows"],
        json!([]),
        "{listed}"
    );

    // A message of MAX_MESSAGE_BYTES is read; one byte more is discarded unanswered.
    let padded = |id: u64, size: usize| {
        let mut line = json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"}).to_string();
        line.push_str(&" ".repeat(size - line.len()));
        line
    };
    server.send(&padded(3, MAX_MESSAGE_BYTES));
    let at_limit = server.next();
    assert_eq!(at_limit["id"], 3, "{at_limit}");
    server.send(&padded(4, MAX_MESSAGE_BYTES + 1));
    server.send(r#"{"jsonrpc":"2.0","id":6,"method":"tools/list"}"#);
    let after = server.next();
    assert_eq!(
        after["id"], 6,
        "the oversized message was answered: {after}"
    );

    // Closing stdin ends serving, with status 0, and nothing else was written to stdout.
    drop(server.stdin.take());
    let deadline = std::time::Instant::now() + ANSWER;
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not end after stdin closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    while let Ok(line) = server.lines.recv_timeout(Duration::from_millis(200)) {
        let message: Value = serde_json::from_str(&line).expect("only JSON-RPC on stdout");
        assert_eq!(message["jsonrpc"], "2.0", "{line}");
    }
    let stderr = std::fs::read_to_string(&server.stderr).unwrap();
    assert!(
        !stderr.contains('\u{1b}'),
        "no colour codes on stderr: {stderr}"
    );
}

/// The status of the one execution in the data directory, read without opening it as testloop
/// would (which could mark it interrupted).
fn only_execution_status(data: &std::path::Path) -> Option<String> {
    let db = rusqlite::Connection::open(data.join("testloop.db")).ok()?;
    db.query_row("SELECT status FROM executions", [], |row| row.get(0))
        .ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn closing_stdin_aborts_running_executions_and_records_them() {
    let data = tempfile::tempdir().unwrap();
    let client = connect_stdio(data.path()).await;
    let yaml = "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: sleepy\nspec:\n  steps:\n  - shell: sleep 60\n";
    let arguments = |value: Value| value.as_object().cloned().unwrap_or_default();
    client
        .call_tool(
            CallToolRequestParams::new("create_workflow")
                .with_arguments(arguments(json!({ "yaml": yaml }))),
        )
        .await
        .expect("create_workflow");
    let started = client
        .call_tool(
            CallToolRequestParams::new("run_workflow")
                .with_arguments(arguments(json!({ "name": "sleepy" }))),
        )
        .await
        .expect("run_workflow");
    assert_eq!(
        started.structured_content.expect("report")["status"],
        json!("running")
    );
    // Closing the connection closes the server's stdin.
    tokio::time::timeout(ANSWER, client.cancel())
        .await
        .unwrap()
        .unwrap();
    let deadline = std::time::Instant::now() + ANSWER;
    loop {
        let status = only_execution_status(data.path());
        if status.as_deref() == Some("aborted") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the execution was not recorded as aborted: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
