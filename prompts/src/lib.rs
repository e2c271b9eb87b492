//! MCP prompt texts for testloop (`debug_failed_execution`, `write_test_workflow`,
//! `triage_flaky_tests`, `compare_runs`), kept as Markdown files beside this crate, and the small code
//! that serves them with their arguments filled in. Filled in by the MCP server work.
