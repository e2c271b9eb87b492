//! Clients watching a running execution are told when it changes: handshake-era clients through
//! `resources/subscribe`, current ones through `subscriptions/listen`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, ProtocolVersion, ResourceUpdatedNotificationParam, ServerNotification,
    SubscribeRequestParams, SubscriptionFilter,
};
use rmcp::service::NotificationContext;
use rmcp::{ClientHandler, ClientServiceExt, RoleClient, ServiceExt};
use testloop_orchestrator::Orchestrator;
use testloop_orchestrator::executor::sandbox::SandboxMode;
use testloop_orchestrator::run::OrchestratorConfig;
use testloop_tools::TestloopServer;

const SLOW: &str = "apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata:
  name: slow
spec:
  steps:
  - name: wait
    shell: sleep 0.5
  - name: second
    shell: echo done
";

#[derive(Clone, Default)]
struct Watcher {
    updated: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Watcher {
    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.updated.lock().unwrap().push(params.uri);
    }
}

fn orchestrator(dir: &tempfile::TempDir) -> Orchestrator {
    Orchestrator::open(OrchestratorConfig::local(
        dir.path().to_path_buf(),
        SandboxMode::Auto,
    ))
    .unwrap()
}

fn arguments(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    value.as_object().unwrap().clone()
}

/// Saves and starts the slow workflow without waiting for it; its execution id.
async fn start_slow_run(client: &rmcp::Peer<RoleClient>) -> String {
    client
        .call_tool(
            CallToolRequestParams::new("create_workflow")
                .with_arguments(arguments(serde_json::json!({"yaml": SLOW}))),
        )
        .await
        .unwrap();
    let started = client
        .call_tool(
            CallToolRequestParams::new("run_workflow")
                .with_arguments(arguments(serde_json::json!({"name": "slow"}))),
        )
        .await
        .unwrap();
    started.structured_content.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
// resources/subscribe is deprecated for new protocol versions; this test is about the clients
// that still use it.
#[allow(deprecated)]
async fn a_handshake_era_client_is_notified_of_a_subscribed_execution() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestloopServer::new(orchestrator(&dir));
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let service = server.serve(server_io).await.unwrap();
        let _ = service.waiting().await;
    });
    let watcher = Watcher::default();
    let client = watcher.clone().serve(client_io).await.unwrap();
    let id = start_slow_run(&client).await;
    // An id prefix is accepted; notifications carry the URI as subscribed.
    let uri = format!("testloop://executions/{}", &id[..16]);
    client
        .subscribe(SubscribeRequestParams::new(uri.clone()))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while watcher.updated.lock().unwrap().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no notifications");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        watcher
            .updated
            .lock()
            .unwrap()
            .iter()
            .all(|seen| seen == &uri)
    );

    let refused = client
        .subscribe(SubscribeRequestParams::new(
            "testloop://executions/01NOSUCH",
        ))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("list_executions"), "{refused}");
}

#[tokio::test]
async fn a_current_client_listening_to_an_execution_gets_its_updates() {
    let dir = tempfile::tempdir().unwrap();
    let orchestrator = orchestrator(&dir);
    let server = TestloopServer::new(orchestrator.clone());
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let service = server.serve(server_io).await.unwrap();
        let _ = service.waiting().await;
    });
    let client = ()
        .serve_with_lifecycle(
            client_io,
            rmcp::ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap();
    let id = start_slow_run(&client).await;
    let step_uri = format!("testloop://executions/{id}/logs/2");
    let mut filter = SubscriptionFilter::new();
    filter.resource_subscriptions = Some(vec![step_uri.clone()]);
    let mut subscription = client.listen(filter).await.unwrap();
    let notification = tokio::time::timeout(Duration::from_secs(20), subscription.next())
        .await
        .expect("a notification in time")
        .unwrap()
        .expect("the subscription is open");
    match notification {
        ServerNotification::ResourceUpdatedNotification(updated) => {
            assert_eq!(updated.params.uri, step_uri)
        }
        other => panic!("unexpected {other:?}"),
    }
}
