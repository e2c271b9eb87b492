//! Many agents at once: 50 streamable HTTP clients, each creating a workflow, running it to the end
//! and reading all of its log back, against one `testloop serve`. No error, nothing lost.

use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use testloop_tests::HttpServer;

const CLIENTS: usize = 50;
const LINES: usize = 200;
const TOKEN: &str = "load-test-token-0123456789";
const DEADLINE: Duration = Duration::from_secs(240);

fn arguments(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

async fn one_agent(url: String, index: usize) -> Result<(), String> {
    let transport = StreamableHttpClientTransport::with_client(
        reqwest::Client::new(),
        StreamableHttpClientTransportConfig::with_uri(url).auth_header(TOKEN),
    );
    let client = ()
        .serve(transport)
        .await
        .map_err(|error| format!("client {index}: connect: {error}"))?;
    let call = |tool: &'static str, args: Value| {
        let client = &client;
        async move {
            let result = client
                .call_tool(CallToolRequestParams::new(tool).with_arguments(arguments(args)))
                .await
                .map_err(|error| format!("client {index}: {tool}: {error}"))?;
            if result.is_error == Some(true) {
                return Err(format!(
                    "client {index}: {tool} failed: {:?}",
                    result.content
                ));
            }
            result
                .structured_content
                .ok_or_else(|| format!("client {index}: {tool}: no structured content"))
        }
    };
    let yaml = format!(
        "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: load-{index}\nspec:\n  steps:\n  - name: print\n    shell: seq 1 {LINES} | sed 's/^/agent-{index} line /'\n"
    );
    call("create_workflow", json!({ "yaml": yaml })).await?;
    let report = call(
        "run_workflow",
        json!({ "name": format!("load-{index}"), "wait_seconds": 200 }),
    )
    .await?;
    if report["status"] != "passed" {
        return Err(format!("client {index}: run ended {report}"));
    }
    let id = report["id"].as_str().unwrap_or_default().to_owned();
    let logs = call(
        "get_logs",
        json!({ "execution": id, "step": "1", "from": 1, "to": LINES }),
    )
    .await?;
    let section = &logs["sections"][0];
    let lines: Vec<&str> = section["lines"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .filter_map(|line| line["text"].as_str())
                .collect()
        })
        .unwrap_or_default();
    let expected: Vec<String> = (1..=LINES)
        .map(|n| format!("agent-{index} line {n}"))
        .collect();
    if section["total_lines"] != json!(LINES) || lines != expected {
        return Err(format!(
            "client {index}: log has {} of {LINES} expected lines (total {})",
            lines.len(),
            section["total_lines"]
        ));
    }
    let _ = client.cancel().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_agents_run_workflows_and_read_their_logs_at_once() {
    let data = tempfile::tempdir().unwrap();
    let server = HttpServer::start(data.path(), Some(TOKEN), &[]);
    let url = server.url("/mcp");
    let agents: Vec<_> = (0..CLIENTS)
        .map(|index| tokio::spawn(one_agent(url.clone(), index)))
        .collect();
    let mut failures = Vec::new();
    for agent in agents {
        match tokio::time::timeout(DEADLINE, agent).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(failure))) => failures.push(failure),
            Ok(Err(panic)) => failures.push(format!("agent panicked: {panic}")),
            Err(_) => failures.push("agent timed out".to_owned()),
        }
    }
    assert!(
        failures.is_empty(),
        "{failures:#?}\n--- server stderr\n{}",
        server.stderr()
    );

    let db = rusqlite::Connection::open(data.path().join("testloop.db")).unwrap();
    let passed: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM executions WHERE status = 'passed'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(passed, CLIENTS as i64);
}
