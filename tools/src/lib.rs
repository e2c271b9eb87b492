//! MCP tool handlers for testloop.
//!
//! One module per tool group (`workflows`, `executions`, `logs`, `diff`, `artifacts`), each a thin
//! translation from schemars-described tool arguments to orchestrator calls and back to compact,
//! structured output written for a reader with a small context window. The tool surface is listed in
//! DESIGN.md section 6; it is filled in by the MCP server work, on top of the orchestrator API that
//! the CLI already uses, so that no logic lives in only one of them.
