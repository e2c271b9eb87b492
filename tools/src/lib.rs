//! MCP tool handlers for testloop.
//!
//! One module per tool group ([`workflows`], [`executions`], [`logs`]; later `diff` and
//! `artifacts`), each a named router and a thin translation from schemars-described tool arguments
//! to [`Orchestrator`] calls and back to compact output written for a reader with a small context
//! window: the verdict first, then the one thing to look at, then the next call to make. Every
//! tool returns structured content (described by its output schema) and a short text rendering of
//! the same facts ([`Reply`]); errors the agent can act on come back as tool results with
//! `isError` and a message saying what to do ([`ToolError`]). The tool surface is listed in
//! DESIGN.md section 6. The CLI calls the same orchestrator API, so that no logic lives in only one
//! of them.

pub mod executions;
pub mod logs;
mod output;
pub mod workflows;

pub mod resources;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, tool_handler};
use testloop_orchestrator::Orchestrator;

pub use output::{NextCall, Reply, ToolError};

/// The testloop MCP server: every tool, resource and prompt, over one orchestrator.
#[derive(Clone)]
pub struct TestloopServer {
    orchestrator: Orchestrator,
    tool_router: ToolRouter<Self>,
}

impl TestloopServer {
    pub fn new(orchestrator: Orchestrator) -> Self {
        Self {
            orchestrator,
            tool_router: Self::workflow_tools() + Self::execution_tools() + Self::log_tools(),
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
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_instructions(
            "testloop runs Testkube-compatible test workflows (TestWorkflow YAML) on this machine \
             and keeps every execution's status, step results and logs. Typical loop: \
             create_workflow (or list_workflows), run_workflow with wait_seconds, then on failure \
             get_execution for the failure summary and get_logs for the failing step; \
             rerun_execution after a fix.",
        )
    }
}
