//! MCP tool handlers for testloop.
//!
//! One module per tool group (`workflows`, `executions`, `logs`, later `diff` and `artifacts`),
//! each a thin translation from schemars-described tool arguments to [`Orchestrator`] calls and back
//! to compact, structured output written for a reader with a small context window. The tool
//! surface is listed in DESIGN.md section 6. The CLI calls the same orchestrator API, so that no
//! logic lives in only one of them.
//!
//! (Skeleton: the tool groups are being written.)

pub mod resources;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::{Json, ServerHandler, tool, tool_handler, tool_router};
use serde::Serialize;
use testloop_orchestrator::Orchestrator;

/// The testloop MCP server: every tool, resource and prompt, over one orchestrator.
#[derive(Clone)]
pub struct TestloopServer {
    orchestrator: Orchestrator,
    tool_router: ToolRouter<Self>,
}

/// Saved workflows.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct WorkflowList {
    pub workflows: Vec<String>,
}

#[tool_router]
impl TestloopServer {
    pub fn new(orchestrator: Orchestrator) -> Self {
        Self {
            orchestrator,
            tool_router: Self::tool_router(),
        }
    }

    /// Lists the names of the saved workflows.
    #[tool(description = "List saved test workflows by name.")]
    async fn list_workflows(&self) -> Result<Json<WorkflowList>, String> {
        let workflows = self
            .orchestrator
            .store()
            .list_workflows()
            .map_err(|error| error.to_string())?;
        Ok(Json(WorkflowList {
            workflows: workflows.into_iter().map(|summary| summary.name).collect(),
        }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for TestloopServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_instructions("testloop runs test workflows and keeps their logs and results.")
    }
}
