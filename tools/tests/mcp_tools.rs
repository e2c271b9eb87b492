//! Every tool through a real MCP client: success, bad input, and the promises of DESIGN.md §6.

mod support;

use std::time::Duration;

use rmcp::model::{CallToolRequestParams, ClientRequest, Request, ServerResult};
use rmcp::service::PeerRequestOptions;
use serde_json::json;
use support::{Harness, answer, failing_workflow, slow_workflow, workflow};
use testloop_tools::logs::MAX_LOG_RESPONSE_BYTES;

const TOOLS: [&str; 16] = [
    "abort_execution",
    "create_workflow",
    "delete_workflow",
    "diff_executions",
    "find_flaky_tests",
    "get_execution",
    "get_logs",
    "get_test_results",
    "get_workflow",
    "list_artifacts",
    "list_executions",
    "list_workflows",
    "read_artifact",
    "rerun_execution",
    "run_workflow",
    "validate_workflow",
];

#[tokio::test]
async fn every_tool_is_listed_with_description_schemas_and_annotations() {
    let h = Harness::start().await;
    let tools = h.client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(names, TOOLS);
    for tool in &tools {
        let description = tool.description.as_deref().unwrap_or_default();
        assert!(description.len() > 80, "{}: {description}", tool.name);
        assert_eq!(tool.input_schema["type"], "object", "{}", tool.name);
        let output = tool
            .output_schema
            .as_ref()
            .unwrap_or_else(|| panic!("{}", tool.name));
        assert_eq!(output["type"], "object", "{}", tool.name);
        let annotations = tool.annotations.as_ref().unwrap();
        for hint in [
            annotations.read_only_hint,
            annotations.destructive_hint,
            annotations.idempotent_hint,
            annotations.open_world_hint,
        ] {
            assert!(hint.is_some(), "{}: {annotations:?}", tool.name);
        }
        let read_only = tool.name.starts_with("get_")
            || tool.name.starts_with("list_")
            || tool.name.starts_with("read_")
            || tool.name.starts_with("find_")
            || tool.name.starts_with("diff_")
            || tool.name == "validate_workflow";
        assert_eq!(annotations.read_only_hint, Some(read_only), "{}", tool.name);
    }
    let destructive: Vec<&str> = tools
        .iter()
        .filter(|t| t.annotations.as_ref().unwrap().destructive_hint == Some(true))
        .map(|t| t.name.as_ref())
        .collect();
    assert_eq!(destructive, ["abort_execution", "delete_workflow"]);
    // Every argument is described for the agent, those shared through a flattened struct too.
    for tool in &tools {
        let properties = tool.input_schema["properties"].as_object().unwrap();
        for (name, schema) in properties {
            assert!(schema.get("description").is_some(), "{}.{name}", tool.name);
        }
    }
    let logs = tools.iter().find(|t| t.name == "get_logs").unwrap();
    for argument in [
        "tail",
        "head",
        "from",
        "to",
        "grep",
        "context",
        "max_matches",
    ] {
        assert!(
            logs.input_schema["properties"].get(argument).is_some(),
            "get_logs.{argument}"
        );
    }
}

#[tokio::test]
async fn workflows_are_created_listed_read_and_deleted() {
    let h = Harness::start().await;
    let yaml = workflow("alpha", "steps:\n- name: hello\n  shell: echo hi").replace(
        "metadata:\n",
        "description: checks the alpha service\nmetadata:\n  labels:\n    team: core\n",
    );
    let created = h.ok("create_workflow", json!({ "yaml": yaml })).await;
    assert_eq!(
        created.data["saved"][0],
        json!({"name": "alpha", "version": 1, "created": true})
    );
    assert!(
        created.text.contains("alpha saved as version 1"),
        "{}",
        created.text
    );
    let again = h.ok("create_workflow", json!({ "yaml": yaml })).await;
    assert_eq!(again.data["saved"][0]["created"], false);
    assert!(again.text.contains("unchanged at version 1"));
    for name in ["beta", "gamma"] {
        h.create(&workflow(name, "steps:\n- shell: echo x")).await;
    }

    let by_label = h
        .ok("list_workflows", json!({ "label": "team=core" }))
        .await;
    assert_eq!(by_label.data["workflows"].as_array().unwrap().len(), 1);
    assert_eq!(by_label.data["workflows"][0]["name"], "alpha");
    assert_eq!(by_label.data["workflows"][0]["labels"]["team"], "core");
    assert!(
        by_label
            .text
            .contains("alpha (v1): checks the alpha service [team=core]")
    );
    let by_text = h
        .ok("list_workflows", json!({ "search": "ALPHA serv" }))
        .await;
    assert_eq!(by_text.data["workflows"][0]["name"], "alpha");
    let page = h.ok("list_workflows", json!({ "limit": 2 })).await;
    assert_eq!(page.data["workflows"].as_array().unwrap().len(), 2);
    assert_eq!(page.data["next_cursor"], "beta");
    assert!(page.text.contains("cursor=\"beta\""));
    let rest = h
        .ok("list_workflows", json!({ "limit": 2, "cursor": "beta" }))
        .await;
    assert_eq!(rest.data["workflows"][0]["name"], "gamma");
    assert!(rest.data.get("next_cursor").is_none());

    let detail = h.ok("get_workflow", json!({ "name": "alpha" })).await;
    assert_eq!(detail.data["version"], 1);
    assert_eq!(
        detail.data["steps"][0],
        json!({"path": "1", "name": "hello"})
    );
    assert_eq!(detail.data["yaml"], yaml);
    assert!(detail.text.contains("- 1 hello"));

    let deleted = h.ok("delete_workflow", json!({ "name": "alpha" })).await;
    assert_eq!(deleted.data["deleted"], true);
    assert!(deleted.text.contains("deleted workflow alpha"));
    let error = h.err("get_workflow", json!({ "name": "alpha" })).await;
    assert!(error.contains("no workflow named `alpha`") && error.contains("list_workflows"));
}

#[tokio::test]
async fn workflow_tools_refuse_bad_input_with_what_to_do() {
    let h = Harness::start().await;
    let error = h.err("list_workflows", json!({ "label": "team" })).await;
    assert!(error.contains("`key=value`"), "{error}");
    let error = h.err("get_workflow", json!({ "name": "nope" })).await;
    assert!(error.contains("list_workflows"), "{error}");
    let error = h.err("delete_workflow", json!({ "name": "nope" })).await;
    assert!(error.contains("no workflow named `nope`"), "{error}");
    let bad = workflow("bad", "steps:\n- name: x\n  shell: echo\n  timeout: soon");
    let error = h.err("create_workflow", json!({ "yaml": bad })).await;
    assert!(error.contains("spec.steps[0].timeout"), "{error}");
    assert!(error.contains("invalid"), "{error}");
    // Arguments that do not fit the schema come back as tool errors naming the field (rmcp
    // follows the MCP rule that input validation errors are tool execution errors); an unknown
    // tool is a protocol error.
    let error = h.err("create_workflow", json!({})).await;
    assert!(error.contains("missing field `yaml`"), "{error}");
    let error = h.err("validate_workflow", json!({ "yaml": 3 })).await;
    assert!(
        error.contains("failed to deserialize parameters"),
        "{error}"
    );
    assert!(h.try_call("create_workflows", json!({})).await.is_err());
}

#[tokio::test]
async fn validate_reports_problems_with_places_and_the_resolved_plan() {
    let h = Harness::start().await;
    let bad = workflow(
        "bad",
        "steps:\n- name: x\n  shell: echo\n  timeout: soon\n  colour: red",
    );
    let invalid = h.ok("validate_workflow", json!({ "yaml": bad })).await;
    assert_eq!(invalid.data["valid"], false);
    let problems = invalid.data["problems"].as_array().unwrap();
    assert!(problems.len() >= 2, "{problems:?}");
    let timeout = problems
        .iter()
        .find(|p| p["path"] == "spec.steps[0].timeout")
        .expect("timeout problem");
    assert_eq!(timeout["line"], 9);
    assert!(timeout["column"].as_u64().unwrap() > 0);
    assert!(invalid.text.starts_with("invalid:"), "{}", invalid.text);
    assert!(
        invalid.text.contains("spec.steps[0].colour"),
        "{}",
        invalid.text
    );

    let good = workflow(
        "good",
        "config:\n  who:\n    type: string\n    default: world\n  key:\n    type: string\n    sensitive: true\n    default: hidden\nsteps:\n- name: greet\n  shell: echo hello {{ config.who }}\n  steps:\n  - run:\n      command: [printf, 'a b']\nafter:\n- name: cleanup\n  condition: always\n  shell: echo bye",
    );
    let valid = h
        .ok(
            "validate_workflow",
            json!({ "yaml": good, "config": {"who": "mars"} }),
        )
        .await;
    assert_eq!(valid.data["valid"], true, "{}", valid.text);
    let plan = &valid.data["workflows"][0];
    assert_eq!(plan["config"], json!({"who": "mars", "key": "********"}));
    let steps = plan["steps"].as_array().unwrap();
    let paths: Vec<&str> = steps.iter().map(|s| s["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["1", "1/1", "after/1"]);
    assert!(
        steps[0]["command"].as_str().unwrap().contains("mars"),
        "{steps:?}"
    );
    assert_eq!(steps[1]["command"], "printf 'a b'");
    assert_eq!(steps[2]["condition"], "always");
    assert!(
        valid.text.contains("after/1 cleanup [if always]"),
        "{}",
        valid.text
    );
    assert!(!valid.text.contains("hidden"));

    let unknown = h
        .ok(
            "validate_workflow",
            json!({ "yaml": good, "config": {"nope": "1"} }),
        )
        .await;
    let error = unknown.data["workflows"][0]["plan_error"].as_str().unwrap();
    assert!(error.contains("config.nope"), "{error}");
}

#[tokio::test]
async fn a_failed_run_reports_the_failing_step_and_its_assertion_line_compactly() {
    let h = Harness::start().await;
    h.create(&failing_workflow()).await;
    let report = h.run_to_end("unit").await;
    assert_eq!(report.data["status"], "failed");
    assert_eq!(report.data["steps"][1]["status"], "failed");
    assert_eq!(report.data["steps"][1]["exit_code"], 1);
    assert_eq!(report.data["steps"][2]["status"], "skipped");
    let failure = &report.data["failure"];
    assert_eq!(failure["step"], "2");
    assert_eq!(failure["name"], "unit tests");
    let last = failure["last_lines"].as_array().unwrap();
    assert_eq!(
        last.last().unwrap()["text"],
        "assertion failed: expected 2, got 3",
        "ANSI stripped, blank lines and notes skipped"
    );
    assert!(last.len() <= testloop_orchestrator::summary::SUMMARY_MAX_LINES);
    assert_eq!(report.data["next"]["tool"], "get_logs");
    assert_eq!(report.data["next"]["arguments"]["step"], "2");
    // Sensitive config is masked everywhere it is shown.
    assert_eq!(report.data["config"]["token"], "********");
    assert_eq!(report.data["config"]["expected"], 2);
    assert!(!report.text.contains("s3cret"));
    assert!(
        report.text.contains("failed first: step 2 `unit tests`"),
        "{}",
        report.text
    );
    assert!(report.text.contains("assertion failed: expected 2, got 3"));
    assert!(
        report.text.len() < 2500,
        "{} bytes:\n{}",
        report.text.len(),
        report.text
    );

    let id = report.data["id"].as_str().unwrap();
    let again = h.ok("get_execution", json!({ "id": &id[..20] })).await;
    assert_eq!(again.data["id"], id);
    assert_eq!(again.data["failure"]["step"], "2");
    assert!(
        !serde_json::to_string(&again.data)
            .unwrap()
            .contains("s3cret")
    );
}

#[tokio::test]
async fn execution_tools_refuse_unknown_ids_and_bad_input() {
    let h = Harness::start().await;
    for tool in ["get_execution", "abort_execution", "rerun_execution"] {
        let error = h.err(tool, json!({ "id": "01ZZZZ" })).await;
        assert!(
            error.contains("`01ZZZZ`") && error.contains("list_executions"),
            "{tool}: {error}"
        );
    }
    let error = h.err("get_logs", json!({ "execution": "01ZZZZ" })).await;
    assert!(error.contains("list_executions"), "{error}");
    let error = h.err("run_workflow", json!({ "name": "ghost" })).await;
    assert!(error.contains("no workflow named `ghost`") && error.contains("list_workflows"));
    h.create(&failing_workflow()).await;
    let error = h
        .err(
            "run_workflow",
            json!({ "name": "unit", "config": {"expected": "two"} }),
        )
        .await;
    assert!(
        error.contains("config.expected") && error.contains("integer"),
        "{error}"
    );
    let error = h
        .err(
            "run_workflow",
            json!({ "name": "unit", "config": {"expected": [2]} }),
        )
        .await;
    assert!(
        error.contains("a config value must be a string, a number or a boolean, got a list"),
        "{error}"
    );
    let typed = h
        .ok(
            "run_workflow",
            json!({ "name": "unit", "config": {"expected": 2} }),
        )
        .await;
    assert_eq!(typed.data["config"]["expected"], 2);
    let error = h
        .err("list_executions", json!({ "status": "broken" }))
        .await;
    assert!(error.contains("timed-out"), "{error}");
    let error = h
        .err("list_executions", json!({ "since": "last week" }))
        .await;
    assert!(error.contains("RFC 3339"), "{error}");
    let error = h.err("list_executions", json!({ "before": "x" })).await;
    assert!(error.contains("next_cursor"), "{error}");
}

#[tokio::test]
async fn run_without_wait_returns_at_once_and_the_run_goes_on() {
    let h = Harness::start().await;
    h.create(&slow_workflow("slow", 1)).await;
    let started = h.ok("run_workflow", json!({ "name": "slow" })).await;
    assert_eq!(started.data["finished"], false);
    assert_eq!(started.data["status"], "running");
    assert_eq!(started.data["next"]["tool"], "get_execution");
    assert!(
        started
            .text
            .starts_with("started; it runs in the background"),
        "{}",
        started.text
    );
    let id = started.data["id"].as_str().unwrap();
    let done = h.wait_finished(id).await;
    assert_eq!(done.data["status"], "passed");
    assert!(done.data.get("next").is_none());
}

#[tokio::test]
async fn waiting_sends_progress_for_each_step_and_returns_the_final_status() {
    let h = Harness::start().await;
    h.create(&slow_workflow("slow", 1)).await;
    let handle = h
        .client
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(
                CallToolRequestParams::new("run_workflow").with_arguments(
                    json!({"name": "slow", "wait_seconds": 30})
                        .as_object()
                        .cloned()
                        .unwrap(),
                ),
            )),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    let token = handle.progress_token.clone();
    let ServerResult::CallToolResult(result) = handle.await_response().await.unwrap() else {
        panic!("not a tool result");
    };
    let done = answer(result);
    assert_eq!(done.data["status"], "passed", "{}", done.text);
    assert_eq!(done.data["finished"], true);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let progress = h.recorder.progress.lock().unwrap().clone();
    let messages: Vec<String> = progress
        .iter()
        .filter(|p| p.progress_token == token)
        .map(|p| p.message.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        messages,
        [
            "step 1 `first` started",
            "step 1 `first` passed",
            "step 2 `slow` started",
            "step 2 `slow` passed"
        ]
    );
    let values: Vec<f64> = progress.iter().map(|p| p.progress).collect();
    assert!(values.windows(2).all(|w| w[0] < w[1]), "{values:?}");
}

#[tokio::test]
async fn a_wait_that_ends_or_is_cancelled_leaves_the_run_going_to_completion() {
    let h = Harness::start().await;
    h.create(&slow_workflow("slow", 2)).await;
    let short = h
        .ok("run_workflow", json!({ "name": "slow", "wait_seconds": 1 }))
        .await;
    assert_eq!(short.data["finished"], false);
    assert!(
        short.text.starts_with("still running after waiting 1s"),
        "{}",
        short.text
    );

    let handle = h
        .client
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(
                CallToolRequestParams::new("run_workflow").with_arguments(
                    json!({"name": "slow", "wait_seconds": 600})
                        .as_object()
                        .cloned()
                        .unwrap(),
                ),
            )),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    handle
        .cancel(Some("the user changed their mind".to_owned()))
        .await
        .unwrap();

    let list = h.ok("list_executions", json!({ "workflow": "slow" })).await;
    let rows = list.data["executions"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        let done = h.wait_finished(row["id"].as_str().unwrap()).await;
        assert_eq!(done.data["status"], "passed", "{}", done.text);
        assert_eq!(done.data["steps"][1]["status"], "passed");
    }
}

#[tokio::test]
async fn executions_are_listed_newest_first_with_filters_and_pages() {
    let h = Harness::start().await;
    h.create(&failing_workflow()).await;
    h.create(&workflow("ok", "steps:\n- shell: echo ok")).await;
    let mut ids = Vec::new();
    for name in ["unit", "ok", "ok"] {
        let report = h.run_to_end(name).await;
        ids.push(report.data["id"].as_str().unwrap().to_owned());
    }
    let all = h.ok("list_executions", json!({})).await;
    let listed: Vec<&str> = all.data["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [&ids[2], &ids[1], &ids[0]]);
    assert!(
        all.text.starts_with("3 execution(s), newest first"),
        "{}",
        all.text
    );
    assert!(
        all.text.contains(&format!("{} unit v1 failed", ids[0])),
        "{}",
        all.text
    );

    let failed = h.ok("list_executions", json!({ "status": "failed" })).await;
    assert_eq!(failed.data["executions"].as_array().unwrap().len(), 1);
    let ok = h
        .ok("list_executions", json!({ "workflow": "ok", "limit": 1 }))
        .await;
    assert_eq!(ok.data["executions"][0]["id"], ids[2].as_str());
    assert_eq!(ok.data["next_cursor"], ids[2].as_str());
    let older = h
        .ok(
            "list_executions",
            json!({ "workflow": "ok", "limit": 1, "before": ids[2] }),
        )
        .await;
    assert_eq!(older.data["executions"][0]["id"], ids[1].as_str());
    assert!(older.data.get("next_cursor").is_none());
    let recent = h.ok("list_executions", json!({ "since": "1h" })).await;
    assert_eq!(recent.data["executions"].as_array().unwrap().len(), 3);
    let future = h
        .ok(
            "list_executions",
            json!({ "since": "2999-01-01T00:00:00Z" }),
        )
        .await;
    assert!(future.data["executions"].as_array().unwrap().is_empty());
    assert!(future.text.contains("no executions match"));
}

#[tokio::test]
async fn abort_stops_a_running_execution_and_says_when_there_is_nothing_to_abort() {
    let h = Harness::start().await;
    h.create(&slow_workflow("slow", 30)).await;
    let started = h
        .ok("run_workflow", json!({ "name": "slow", "wait_seconds": 1 }))
        .await;
    let id = started.data["id"].as_str().unwrap().to_owned();
    let aborted = h.ok("abort_execution", json!({ "id": id })).await;
    assert_eq!(aborted.data["aborted"], true, "{}", aborted.text);
    assert_eq!(aborted.data["status"], "aborted");
    assert!(
        aborted.text.contains("it is now aborted"),
        "{}",
        aborted.text
    );

    let again = h.ok("abort_execution", json!({ "id": id })).await;
    assert_eq!(again.data["aborted"], false);
    assert!(
        again.text.contains("is not running (it is aborted)"),
        "{}",
        again.text
    );
}

#[tokio::test]
async fn rerun_uses_the_same_version_and_config() {
    let h = Harness::start().await;
    let v1 = workflow(
        "versioned",
        "config:\n  word:\n    type: string\n    default: first\nsteps:\n- name: say\n  shell: echo \"v1 {{ config.word }}\"",
    );
    h.create(&v1).await;
    let handle = h
        .orchestrator
        .start(testloop_orchestrator::run::RunRequest {
            workflow: "versioned".to_owned(),
            config: [("word".to_owned(), "custom".to_owned())].into(),
            trigger: testloop_orchestrator::execution::Trigger::Cli,
            executor: None,
        })
        .unwrap();
    let original = handle.id.clone();
    handle.done.await.unwrap();
    h.create(&v1.replace("v1 ", "v2 ")).await;

    let rerun = h
        .ok(
            "rerun_execution",
            json!({ "id": original, "wait_seconds": 30 }),
        )
        .await;
    assert_eq!(rerun.data["status"], "passed", "{}", rerun.text);
    assert_eq!(rerun.data["rerun_of"], original.as_str());
    assert_eq!(rerun.data["workflow_version"], 1);
    assert_eq!(rerun.data["config"]["word"], "custom");
    assert_ne!(rerun.data["id"], original.as_str());
    assert!(
        rerun.text.contains(&format!("re-run of {original}")),
        "{}",
        rerun.text
    );
    let logs = h
        .ok(
            "get_logs",
            json!({ "execution": rerun.data["id"], "step": "1" }),
        )
        .await;
    assert_eq!(logs.data["sections"][0]["lines"][0]["text"], "v1 custom");
}

#[tokio::test]
async fn logs_default_to_the_failed_step_and_cap_their_size_with_the_way_to_the_rest() {
    let h = Harness::start().await;
    h.create(&failing_workflow()).await;
    let report = h.run_to_end("unit").await;
    let id = report.data["id"].as_str().unwrap();

    // Default: the failed step's last 100 lines, ANSI stripped.
    let tail = h.ok("get_logs", json!({ "execution": id })).await;
    let section = &tail.data["sections"][0];
    assert_eq!(section["step"], "2");
    let lines = section["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 100);
    let total = section["total_lines"].as_u64().unwrap();
    assert_eq!(lines.last().unwrap()["number"], total);
    assert!(tail.text.contains("assertion failed: expected 2, got 3"));
    assert!(!tail.text.contains('\u{1b}'));
    assert_eq!(tail.data["truncated"], false);

    // A huge tail is cut at the cap, keeping the end, and says how to get the rest.
    let big = h
        .ok(
            "get_logs",
            json!({ "execution": id, "step": "2", "tail": 2000 }),
        )
        .await;
    assert!(
        big.text.len() <= MAX_LOG_RESPONSE_BYTES,
        "{} bytes",
        big.text.len()
    );
    assert_eq!(big.data["truncated"], true);
    let last_line = big.text.lines().last().unwrap();
    assert!(last_line.starts_with("[truncated: lines 1-"), "{last_line}");
    assert!(
        last_line.contains(&format!("of {total} not shown")),
        "{last_line}"
    );
    let next = &big.data["next"];
    assert_eq!(next["tool"], "get_logs");
    assert_eq!(next["arguments"]["from"], 1);
    let rest = h.ok("get_logs", next["arguments"].clone()).await;
    let first_shown = big.data["sections"][0]["lines"][0]["number"]
        .as_u64()
        .unwrap();
    let rest_lines = rest.data["sections"][0]["lines"].as_array().unwrap();
    assert_eq!(rest_lines[0]["number"], 1);
    assert_eq!(rest_lines.last().unwrap()["number"], first_shown - 1);

    // Head and ranges.
    let head = h
        .ok(
            "get_logs",
            json!({ "execution": id, "step": "2", "head": 2 }),
        )
        .await;
    assert_eq!(
        head.data["sections"][0]["lines"][1]["text"],
        "test case 2 ok"
    );
    let range = h
        .ok(
            "get_logs",
            json!({ "execution": id, "step": "2", "from": 10, "to": 12 }),
        )
        .await;
    assert!(
        range
            .text
            .contains("10| test case 10 ok\n11| test case 11 ok\n12| test case 12 ok")
    );

    // Grep with context and a match limit.
    let grep = h
        .ok(
            "get_logs",
            json!({ "execution": id, "grep": "assert", "context": 1 }),
        )
        .await;
    let section = &grep.data["sections"][0];
    assert_eq!(section["step"], "2");
    assert_eq!(section["total_matches"], 1);
    assert!(
        grep.text.contains("1001: assertion failed"),
        "{}",
        grep.text
    );
    assert!(
        grep.text.contains("1000- test case 1000 ok"),
        "{}",
        grep.text
    );
    let many = h
        .ok(
            "get_logs",
            json!({ "execution": id, "step": "2", "grep": "case", "max_matches": 3, "context": 0 }),
        )
        .await;
    assert_eq!(
        many.data["sections"][0]["lines"].as_array().unwrap().len(),
        3
    );
    assert_eq!(many.data["truncated"], true);
    assert!(many.text.contains("3 of 1000 matches"), "{}", many.text);
}

#[tokio::test]
async fn logs_of_a_passing_run_show_every_step_and_refuse_bad_input() {
    let h = Harness::start().await;
    h.create(&workflow(
        "ok",
        "steps:\n- name: a\n  shell: echo alpha\n- name: b\n  shell: printf '\\033[1mbold\\033[0m\\n'",
    ))
    .await;
    let report = h.run_to_end("ok").await;
    let id = report.data["id"].as_str().unwrap();
    let all = h.ok("get_logs", json!({ "execution": id })).await;
    let steps: Vec<&str> = all.data["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["1", "2"]);
    assert_eq!(all.data["sections"][1]["lines"][0]["text"], "bold");
    assert!(
        all.text.contains("1| alpha") && all.text.contains("1| bold"),
        "{}",
        all.text
    );

    let error = h
        .err("get_logs", json!({ "execution": id, "grep": "(" }))
        .await;
    assert!(error.contains("not a valid regular expression"), "{error}");
    let error = h
        .err("get_logs", json!({ "execution": id, "step": "9" }))
        .await;
    assert!(
        error.contains("no step `9`") && error.contains("1, 2"),
        "{error}"
    );
    let error = h
        .err("get_logs", json!({ "execution": id, "tail": 5, "head": 5 }))
        .await;
    assert!(error.contains("choose one"), "{error}");
    let error = h
        .err(
            "get_logs",
            json!({ "execution": id, "step": "1", "from": 5, "to": 2 }),
        )
        .await;
    assert!(error.contains("before `from`"), "{error}");
}
