//! Resources and prompts through a real MCP client.

mod support;

use rmcp::ServiceError;
use rmcp::model::{GetPromptRequestParams, ReadResourceRequestParams, ResourceContents};
use support::{Harness, workflow};

fn text_of(contents: &[ResourceContents]) -> String {
    contents
        .iter()
        .map(|content| match content {
            ResourceContents::TextResourceContents { text, .. } => text.clone(),
            other => panic!("not text: {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn resources_are_listed_templated_and_read() {
    let harness = Harness::start().await;
    harness
        .create(&workflow(
            "numbers",
            "steps:\n- name: count\n  shell: seq 1 5",
        ))
        .await;
    let report = harness.run_to_end("numbers").await;
    let id = report.data["id"].as_str().unwrap().to_owned();

    let listed = harness.client.list_all_resources().await.unwrap();
    let uris: Vec<&str> = listed
        .iter()
        .map(|resource| resource.uri.as_str())
        .collect();
    assert!(uris.contains(&"testloop://workflows/numbers"), "{uris:?}");
    assert!(
        uris.contains(&format!("testloop://executions/{id}").as_str()),
        "{uris:?}"
    );

    let templates = harness.client.list_all_resource_templates().await.unwrap();
    let patterns: Vec<&str> = templates.iter().map(|t| t.uri_template.as_str()).collect();
    assert_eq!(
        patterns,
        vec![
            "testloop://workflows/{name}",
            "testloop://executions/{id}",
            "testloop://executions/{id}/logs/{step}"
        ]
    );

    let read = |uri: String| {
        let client = &harness.client;
        async move {
            client
                .read_resource(ReadResourceRequestParams::new(uri))
                .await
        }
    };
    let workflow = read("testloop://workflows/numbers".into()).await.unwrap();
    assert!(text_of(&workflow.contents).contains("shell: seq 1 5"));
    let execution = read(format!("testloop://executions/{id}")).await.unwrap();
    let json: serde_json::Value = serde_json::from_str(&text_of(&execution.contents)).unwrap();
    assert_eq!(json["status"], "passed");
    let log = read(format!("testloop://executions/{id}/logs/1"))
        .await
        .unwrap();
    assert_eq!(text_of(&log.contents), "1\n2\n3\n4\n5\n");

    match read("testloop://workflows/absent".into()).await {
        Err(ServiceError::McpError(error)) => {
            assert!(error.message.contains("list_workflows"), "{error:?}")
        }
        other => panic!("expected an error, got {other:?}"),
    }
    match read("file:///etc/passwd".into()).await {
        Err(ServiceError::McpError(error)) => {
            assert!(
                error.message.contains("is not a testloop resource"),
                "{error:?}"
            )
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn prompts_are_listed_and_rendered_with_their_arguments() {
    let harness = Harness::start().await;
    let prompts = harness.client.list_all_prompts().await.unwrap();
    let names: Vec<&str> = prompts.iter().map(|prompt| prompt.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "debug_failed_execution",
            "write_test_workflow",
            "triage_flaky_tests",
            "compare_runs"
        ]
    );
    let compare = prompts[3].arguments.as_ref().unwrap();
    assert_eq!(compare[1].name, "baseline");
    assert_eq!(compare[1].required, Some(false));
    let arguments = prompts[0].arguments.as_ref().unwrap();
    assert_eq!(arguments[0].name, "execution_id");
    assert_eq!(arguments[0].required, Some(true));

    let mut request = GetPromptRequestParams::new("debug_failed_execution");
    request.arguments = Some(
        serde_json::json!({"execution_id": "01XYZ"})
            .as_object()
            .unwrap()
            .clone(),
    );
    let prompt = harness.client.get_prompt(request).await.unwrap();
    let text = prompt.messages[0].content.as_text().unwrap().text.clone();
    assert!(
        text.contains("Call `get_execution` with `id: \"01XYZ\"`"),
        "{text}"
    );

    let missing = harness
        .client
        .get_prompt(GetPromptRequestParams::new("debug_failed_execution"))
        .await;
    match missing {
        Err(ServiceError::McpError(error)) => assert_eq!(
            error.message,
            "prompt `debug_failed_execution` needs the argument `execution_id`"
        ),
        other => panic!("expected an error, got {other:?}"),
    }
    let unknown = harness
        .client
        .get_prompt(GetPromptRequestParams::new("nope"))
        .await;
    assert!(
        matches!(unknown, Err(ServiceError::McpError(error)) if error.message.contains("the prompts are: debug_failed_execution, write_test_workflow"))
    );
}
