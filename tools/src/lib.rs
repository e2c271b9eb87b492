//! MCP tool handlers for testloop.
//!
//! One module per tool group ([`workflows`], [`executions`], [`logs`], [`artifacts`], [`results`],
//! [`diff`]), each a named router and a thin translation from schemars-described tool arguments
//! to [`Orchestrator`] calls and back to compact output written for a reader with a small context
//! window: the verdict first, then the one thing to look at, then the next call to make. Every
//! tool returns structured content (described by its output schema) and a short text rendering of
//! the same facts ([`Reply`]); errors the agent can act on come back as tool results with
//! `isError` and a message saying what to do ([`ToolError`]). Tools that read lines of text (step
//! logs, text artifacts) share their arguments, cuts and rendering through [`lines`]. The tool
//! surface is listed in DESIGN.md section 6. The CLI calls the same orchestrator API, so that no
//! logic lives in only one of them.

pub mod artifacts;
pub mod diff;
pub mod executions;
pub mod lines;
pub mod logs;
mod output;
pub use output::format_bytes;
pub mod results;
pub mod workflows;

pub mod resources;
pub mod subscriptions;

use std::collections::BTreeMap;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    ErrorData, GetPromptRequestParams, GetPromptResponse, GetPromptResult, Implementation,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
    Prompt, PromptArgument, PromptMessage, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
    ResourceUpdatedNotificationParam, Role, ServerCapabilities, ServerConfig,
    SubscribeRequestParams, SubscriptionFilter, UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{RoleServer, ServerHandler, tool_handler};
use testloop_orchestrator::Orchestrator;

pub use output::{NextCall, Reply, ToolError};

/// The testloop MCP server: every tool, resource and prompt, over one orchestrator.
#[derive(Clone)]
pub struct TestloopServer {
    orchestrator: Orchestrator,
    tool_router: ToolRouter<Self>,
    legacy_subscriptions: subscriptions::LegacySubscriptions,
}

impl TestloopServer {
    pub fn new(orchestrator: Orchestrator) -> Self {
        Self {
            orchestrator,
            tool_router: Self::workflow_tools()
                + Self::execution_tools()
                + Self::log_tools()
                + Self::artifact_tools()
                + Self::result_tools()
                + Self::diff_tools(),
            legacy_subscriptions: subscriptions::LegacySubscriptions::default(),
        }
    }

    /// The orchestrator the tools call.
    pub fn orchestrator(&self) -> &Orchestrator {
        &self.orchestrator
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for TestloopServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_prompts()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("testloop", env!("CARGO_PKG_VERSION")))
            .with_instructions(
            "testloop runs Testkube-compatible test workflows (TestWorkflow YAML) on this machine \
             and keeps every execution's status, step results and logs. Typical loop: \
             create_workflow (or list_workflows), run_workflow with wait_seconds, then on failure \
             get_execution for the failure summary and get_logs for the failing step, \
             list_artifacts and read_artifact for the reports and files the steps saved; \
             rerun_execution after a fix.",
        )
    }
    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let listed = resources::list(&self.orchestrator)
            .map_err(|message| ErrorData::internal_error(message, None))?;
        Ok(ListResourcesResult::with_all_items(
            listed
                .into_iter()
                .map(|resource| {
                    Resource::new(resource.uri, resource.name)
                        .with_description(resource.description)
                        .with_mime_type(resource.mime_type)
                })
                .collect(),
        ))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let templates = [
            (
                "testloop://workflows/{name}",
                "workflow",
                "The latest saved YAML of a workflow.",
                "application/yaml",
            ),
            (
                "testloop://executions/{id}",
                "execution",
                "An execution's status and step tree, as JSON (an id prefix is enough).",
                "application/json",
            ),
            (
                "testloop://executions/{id}/logs/{step}",
                "step log",
                "The last lines of a step's log; step is a step path such as 2 or 2/1.",
                "text/plain",
            ),
        ];
        Ok(ListResourceTemplatesResult::with_all_items(
            templates
                .into_iter()
                .map(|(uri, name, description, mime)| {
                    ResourceTemplate::new(uri, name)
                        .with_description(description)
                        .with_mime_type(mime)
                })
                .collect(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        match resources::read(&self.orchestrator, &request.uri) {
            Ok(read) => Ok(ReadResourceResult::new(vec![
                ResourceContents::text(read.text, read.uri).with_mime_type(read.mime_type),
            ])
            .into()),
            Err(resources::ResourceError::BadUri(uri)) => Err(ErrorData::invalid_params(
                resources::ResourceError::BadUri(uri).to_string(),
                None,
            )),
            Err(resources::ResourceError::NotFound(message)) => {
                Err(ErrorData::resource_not_found(message, None))
            }
        }
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(
            testloop_prompts::all()
                .iter()
                .map(|prompt| {
                    let arguments = prompt
                        .arguments
                        .iter()
                        .map(|argument| {
                            PromptArgument::new(&argument.name)
                                .with_description(&argument.description)
                                .with_required(argument.required)
                        })
                        .collect();
                    Prompt::new(&prompt.name, Some(&prompt.description), Some(arguments))
                })
                .collect(),
        ))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let invalid =
            |error: testloop_prompts::Error| ErrorData::invalid_params(error.to_string(), None);
        let prompt = testloop_prompts::get(&request.name).map_err(invalid)?;
        let arguments: BTreeMap<String, String> = request
            .arguments
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| {
                let text = match value {
                    serde_json::Value::String(text) => text,
                    other => other.to_string(),
                };
                (name, text)
            })
            .collect();
        let text = prompt.render(&arguments).map_err(invalid)?;
        let mut result = GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]);
        result.description = Some(prompt.description.clone());
        Ok(result.into())
    }
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.supported_by(&self.get_info().capabilities))
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let watches = context
            .accepted()
            .resource_subscriptions
            .iter()
            .flatten()
            .map(|uri| subscriptions::Watch::resolve(&self.orchestrator, uri))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| ErrorData::invalid_params(error.to_string(), None))?;
        let sink = context.sink().clone();
        subscriptions::forward(&self.orchestrator, watches, context.cancelled(), |uri| {
            let sink = sink.clone();
            async move { sink.notify_resource_updated(uri).await.is_ok() }
        })
        .await;
        Ok(())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let watch = subscriptions::Watch::resolve(&self.orchestrator, &request.uri)
            .map_err(|error| ErrorData::invalid_params(error.to_string(), None))?;
        let Some(stop) = self
            .legacy_subscriptions
            .add(&request.uri)
            .map_err(|message| ErrorData::invalid_params(message, None))?
        else {
            return Ok(());
        };
        let orchestrator = self.orchestrator.clone();
        let peer = context.peer.clone();
        tokio::spawn(async move {
            subscriptions::forward(&orchestrator, vec![watch], stop.cancelled(), |uri| {
                let peer = peer.clone();
                async move {
                    peer.notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                        .await
                        .is_ok()
                }
            })
            .await;
        });
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.legacy_subscriptions.remove(&request.uri);
        Ok(())
    }
}
