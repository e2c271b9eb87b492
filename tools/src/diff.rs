//! The run-to-run diff tool: `diff_executions`.

use std::fmt::Write as _;

use rmcp::handler::server::tool::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use testloop_orchestrator::diff::executions::{CaseGroup, ExecutionDiff, Side};
use testloop_orchestrator::run::Baseline;

use crate::TestloopServer;
use crate::output::{Reply, ToolError, format_millis};

/// The `baseline` value meaning "the latest passing execution of the same workflow before it".
pub const LAST_PASSED: &str = "last_passed";

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DiffArgs {
    /// The execution to explain (an id or unique prefix), usually the newer one.
    pub execution: String,
    /// What to compare it with: another execution's id (or prefix), or `last_passed` (the
    /// default) for the latest execution of the same workflow that passed before it.
    #[serde(default)]
    pub baseline: Option<String>,
}

fn render_side(label: &str, side: &Side) -> String {
    let mut text = format!(
        "{label} {} v{} {}",
        side.id,
        side.workflow_version,
        side.status.to_string().to_uppercase()
    );
    if let Some(ms) = side.duration_ms {
        let _ = write!(text, " in {}", format_millis(ms));
    }
    if side.tests.total > 0 {
        let _ = write!(
            text,
            ", {} tests ({} failed)",
            side.tests.total,
            side.tests.failed + side.tests.error
        );
    }
    if side.only_failed {
        text.push_str(", re-ran only failed steps");
    }
    text
}

fn render_group(text: &mut String, title: &str, group: &CaseGroup) {
    if group.count == 0 {
        return;
    }
    let _ = writeln!(text, "{title} ({}):", group.count);
    for case in &group.cases {
        let _ = write!(text, "  {}", case.test);
        if let Some(location) = &case.location {
            let _ = write!(text, " ({location})");
        }
        if let Some(message) = &case.message {
            let _ = write!(text, ": {}", message.lines().next().unwrap_or_default());
        }
        text.push('\n');
    }
    if group.count > group.cases.len() {
        let _ = writeln!(text, "  … {} more", group.count - group.cases.len());
    }
}

/// The text rendering of a diff, shared with `testloop diff`.
pub fn render_diff(diff: &ExecutionDiff) -> String {
    let mut text = format!("{}\n", diff.summary);
    let _ = writeln!(text, "{}", render_side("base", &diff.base));
    let _ = writeln!(text, "{}", render_side("head", &diff.head));
    render_group(&mut text, "newly failing", &diff.tests.newly_failing);
    render_group(&mut text, "fixed", &diff.tests.fixed);
    render_group(&mut text, "still failing", &diff.tests.still_failing);
    render_group(&mut text, "added", &diff.tests.added);
    render_group(&mut text, "removed", &diff.tests.removed);
    if !diff.steps.is_empty() {
        text.push_str("steps:\n");
        for step in &diff.steps {
            let _ = writeln!(text, "  {} {}: {}", step.path, step.name, step.change);
        }
        if diff.more_steps > 0 {
            let _ = writeln!(text, "  … {} more", diff.more_steps);
        }
    }
    for change in &diff.config {
        let show = |value: &Option<serde_json::Value>| match value {
            None => "(unset)".to_owned(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        let _ = writeln!(
            text,
            "config {}: {} → {}",
            change.name,
            show(&change.before),
            show(&change.after)
        );
    }
    if let Some(workflow) = &diff.workflow {
        let _ = writeln!(
            text,
            "workflow v{} → v{}:\n{}",
            workflow.before_version,
            workflow.after_version,
            workflow.diff.trim_end()
        );
    }
    if let Some(log) = &diff.log {
        let _ = writeln!(
            text,
            "log of step {} (+{} -{} lines, normalised):",
            log.step, log.added, log.removed
        );
        if log.diff.is_empty() {
            text.push_str("  (no differences after normalising)\n");
        } else {
            text.push_str(log.diff.trim_end());
            text.push('\n');
        }
        if let Some(truncated) = &log.truncated {
            let _ = writeln!(text, "  ({truncated})");
        }
    }
    text
}

#[tool_router(router = diff_tools, vis = "pub(crate)")]
impl TestloopServer {
    /// What changed between two executions, or between one and the last passing run of its
    /// workflow (`baseline: last_passed`, the default). In order: the verdict (regressed, fixed,
    /// still failing, unchanged, changed) with a one-line summary; test cases newly failing,
    /// fixed, still failing, added and removed; steps whose status, exit code or duration
    /// changed; config and workflow-version differences; and a diff of the failing step's log
    /// after normalising what differs on every run (timestamps, durations, ids, addresses, temp
    /// paths, ports), changed hunks only, capped.
    #[tool(
        output_schema = schema_for_output::<ExecutionDiff>(),
        annotations(
            title = "Diff two executions",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn diff_executions(
        &self,
        Parameters(args): Parameters<DiffArgs>,
    ) -> Result<Reply<ExecutionDiff>, ToolError> {
        let baseline = match args.baseline.as_deref().map(str::trim) {
            None | Some("") => Baseline::LastPassed,
            Some(text) if text.eq_ignore_ascii_case(LAST_PASSED) => Baseline::LastPassed,
            Some(id) => Baseline::Execution(id),
        };
        let orchestrator = self.orchestrator.clone();
        let execution = args.execution.clone();
        let baseline_owned = match baseline {
            Baseline::Execution(id) => Some(id.to_owned()),
            Baseline::LastPassed => None,
        };
        // Reading two long logs and diffing them is blocking work.
        let diff = tokio::task::spawn_blocking(move || {
            let baseline = match &baseline_owned {
                Some(id) => Baseline::Execution(id),
                None => Baseline::LastPassed,
            };
            orchestrator.diff(&execution, baseline)
        })
        .await
        .map_err(|error| ToolError::new(format!("internal error: the diff crashed: {error}")))??;
        let text = render_diff(&diff);
        Ok(Reply::new(diff, text))
    }
}
