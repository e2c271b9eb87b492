//! The log tool: bounded reads of step logs (tail, head, line ranges, grep with context).

use std::fmt::Write as _;

use rmcp::handler::server::tool::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use testloop_orchestrator::execution::StepRecord;
use testloop_orchestrator::logs;
use testloop_orchestrator::run;
use testloop_orchestrator::summary;

use crate::TestloopServer;
use crate::lines::{self, Budget, LineArgs, Mode, NumberedLine};
use crate::output::{NextCall, Reply, ToolError};

/// Bytes of log text one get_logs response carries at most, counted as rendered in the text
/// content (line number prefix included); the structured content carries the same lines. What
/// does not fit is cut, and the last line of the text says which lines and how to get them.
pub const MAX_LOG_RESPONSE_BYTES: usize = 16 * 1024;

/// Lines of a step's end returned when neither `tail`, `head`, a range nor `grep` is given.
pub const DEFAULT_TAIL: u64 = 100;

/// Lines of each step's end returned when no step is given and no step failed.
pub const DEFAULT_TAIL_PER_STEP: u64 = 20;

/// Bytes kept back from [`MAX_LOG_RESPONSE_BYTES`] for section headers and the closing line.
const RESERVE_BYTES: usize = 1024;

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct GetLogsArgs {
    /// The execution id, or a unique prefix of it.
    pub execution: String,
    /// A step path as get_execution shows it (`2`, `2/1`, `setup/1`, `after/1`). Default: the
    /// first failed step; when nothing failed, the last lines of every step. Without it, `grep`
    /// searches every step.
    #[serde(default)]
    pub step: Option<String>,
    #[serde(flatten)]
    pub lines: LineArgs,
}

/// What was read from one step's log.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LogSection {
    pub step: String,
    pub name: String,
    pub status: String,
    /// Lines in the whole log.
    pub total_lines: u64,
    pub lines: Vec<NumberedLine>,
    /// For grep: matches in the whole log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_matches: Option<u64>,
    /// Anything to know about this section (no log written, lines left out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Lines of an execution's step logs.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LogView {
    pub execution: String,
    pub sections: Vec<LogSection>,
    /// Whether anything asked for was left out (size cap or `max_matches`).
    pub truncated: bool,
    /// The call that gets what was left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<NextCall>,
}

#[tool_router(router = log_tools, vis = "pub(crate)")]
impl TestloopServer {
    /// Read a step's log without flooding the context: the last lines by default (`tail`, 100),
    /// or `head`, a line range `from`..`to`, or `grep` (regex) with `context` lines around each
    /// match. Without `step` it reads the first failed step, or when nothing failed the last
    /// lines of every step. ANSI colour codes are stripped, long lines cut, and every response is
    /// capped at 16 KiB of log text; when something is cut, the last line says which lines were
    /// left out and the exact call that gets them. Use get_execution first to find the step.
    #[tool(
        output_schema = schema_for_output::<LogView>(),
        annotations(
            title = "Get step logs",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn get_logs(
        &self,
        Parameters(args): Parameters<GetLogsArgs>,
    ) -> Result<Reply<LogView>, ToolError> {
        let (record, steps) = self.orchestrator.execution(&args.execution)?;
        let mode = args
            .lines
            .mode()?
            .unwrap_or(Mode::Tail(DEFAULT_TAIL.min(lines::MAX_LINES)));
        let selected: Vec<&StepRecord> = match args.step.as_deref().map(str::trim) {
            Some(path) if !path.is_empty() => {
                let step = steps.iter().find(|s| s.path == path).ok_or_else(|| {
                    let known: Vec<&str> = steps.iter().take(30).map(|s| s.path.as_str()).collect();
                    ToolError::new(format!(
                        "execution {} has no step `{path}`; its steps: {} (get_execution shows \
                         their names)",
                        record.id,
                        if known.is_empty() {
                            "none yet".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ))
                })?;
                vec![step]
            }
            _ => {
                let failed = summary::failed_step(&record, &steps);
                match (&mode, failed) {
                    (Mode::Grep { .. }, _) => steps.iter().collect(),
                    (_, Some((step, _))) => vec![step],
                    (Mode::Tail(_), None) => steps.iter().collect(),
                    (_, None) => {
                        return Err(ToolError::new(format!(
                            "no step failed in execution {}: say which `step` to read (its \
                             steps: {})",
                            record.id,
                            steps
                                .iter()
                                .take(30)
                                .map(|s| s.path.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                }
            }
        };
        let all_steps = selected.len() > 1;
        let mode = match mode {
            Mode::Tail(_) if all_steps && args.lines.tail.is_none() => {
                Mode::Tail(DEFAULT_TAIL_PER_STEP)
            }
            other => other,
        };

        let mut budget = Budget::new(
            MAX_LOG_RESPONSE_BYTES - RESERVE_BYTES,
            MAX_LOG_RESPONSE_BYTES,
        );
        let mut sections = Vec::new();
        let mut next: Option<NextCall> = None;
        let mut cut_note: Option<String> = None;
        let mut skipped_steps: Vec<String> = Vec::new();
        for step in selected {
            if budget.is_spent() {
                skipped_steps.push(step.path.clone());
                continue;
            }
            let reader = match self.orchestrator.logs().reader(&record.id, &step.path) {
                Ok(reader) => reader,
                Err(logs::Error::NotFound { .. }) => {
                    if !all_steps {
                        sections.push(section(step, 0, Vec::new(), None, Some(no_log_note(step))));
                    }
                    continue;
                }
                Err(error) => return Err(run::Error::from(error).into()),
            };
            let total = reader.line_count();
            let read =
                lines::read_section(&reader, &mode, &mut budget).map_err(run::Error::from)?;
            let mut note = None;
            if let Some(more) = read.continuation(total, &budget) {
                note = Some(more.note.clone());
                if next.is_none() {
                    let why = if more.grep {
                        "read the rest of the log from where the shown matches end, or narrow \
                         the regex or raise max_matches"
                            .to_owned()
                    } else {
                        format!("the lines left out of step {}", step.path)
                    };
                    let arguments =
                        more.arguments(json!({"execution": record.id, "step": step.path}));
                    let call = NextCall::new("get_logs", arguments, why);
                    cut_note = Some(format!("{}; {}: {call}", more.note, more.lead()));
                    next = Some(call);
                }
            }
            if all_steps && read.lines.is_empty() && read.total_matches.is_none() {
                continue;
            }
            if matches!(mode, Mode::Grep { .. }) && all_steps && read.total_matches == Some(0) {
                continue;
            }
            sections.push(section(step, total, read.lines, read.total_matches, note));
        }
        if !skipped_steps.is_empty() {
            let call = NextCall::new(
                "get_logs",
                json!({"execution": record.id, "step": skipped_steps[0]}),
                "read the steps left out, one at a time",
            );
            let text = format!(
                "steps not shown (size cap {}): {}; get each with: {call}",
                budget.cap(),
                skipped_steps.join(", ")
            );
            cut_note = Some(match cut_note {
                Some(existing) => format!("{existing}\n{text}"),
                None => text,
            });
            next.get_or_insert(call);
        }
        let truncated = cut_note.is_some();

        let mut text = String::new();
        if sections.is_empty() {
            let _ = writeln!(
                text,
                "execution {} ({}): {}",
                record.id,
                record.status,
                if matches!(mode, Mode::Grep { .. }) {
                    "no line matches in any step"
                } else {
                    "no step has written a log yet"
                }
            );
        }
        for s in &sections {
            let _ = write!(
                text,
                "== execution {} step {} `{}` ({}): ",
                record.id, s.step, s.name, s.status
            );
            text.push_str(&lines::shown_range(&s.lines, s.total_lines));
            if let Some(matches) = s.total_matches {
                let _ = write!(text, ", {matches} match(es)");
            }
            text.push('\n');
            lines::render_lines(&mut text, &s.lines, s.total_matches.is_some());
            if let Some(note) = &s.note
                && s.lines.is_empty()
            {
                let _ = writeln!(text, "({note})");
            }
        }
        if let Some(cut) = &cut_note {
            let _ = write!(text, "[truncated: {cut}]");
        }
        Ok(Reply::new(
            LogView {
                execution: record.id.clone(),
                sections,
                truncated,
                next,
            },
            text.trim_end(),
        ))
    }
}

fn no_log_note(step: &StepRecord) -> String {
    match &step.message {
        Some(message) => format!("the step wrote no log ({}: {message})", step.status),
        None => format!("the step wrote no log ({})", step.status),
    }
}

fn section(
    step: &StepRecord,
    total_lines: u64,
    lines: Vec<NumberedLine>,
    total_matches: Option<u64>,
    note: Option<String>,
) -> LogSection {
    LogSection {
        step: step.path.clone(),
        name: step.name.clone(),
        status: step.status.to_string(),
        total_lines,
        lines,
        total_matches,
        note,
    }
}
