//! The log tool: bounded reads of step logs (tail, head, line ranges, grep with context).

use std::fmt::Write as _;

use rmcp::handler::server::tool::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use testloop_orchestrator::execution::StepRecord;
use testloop_orchestrator::logs::{self, GrepOptions, LogLine, LogReader};
use testloop_orchestrator::run;
use testloop_orchestrator::summary::{self, cut_line, strip_ansi};

use crate::TestloopServer;
use crate::output::{NextCall, Reply, ToolError};

/// Bytes of log text one get_logs response carries at most, counted as rendered in the text
/// content (line number prefix included); the structured content carries the same lines. What
/// does not fit is cut, and the last line of the text says which lines and how to get them.
pub const MAX_LOG_RESPONSE_BYTES: usize = 16 * 1024;

/// Lines of a step's end returned when neither `tail`, `head`, a range nor `grep` is given.
pub const DEFAULT_TAIL: u64 = 100;

/// Lines of each step's end returned when no step is given and no step failed.
pub const DEFAULT_TAIL_PER_STEP: u64 = 20;

/// Lines one read asks for at most (`tail`, `head`, `from`..`to` are clamped to it).
pub const MAX_LINES: u64 = 2000;

/// Bytes of one log line shown; a longer line is cut and marked with `…`.
pub const MAX_LOG_LINE_BYTES: usize = 2048;

/// Context lines around a grep match when `context` is not given.
pub const DEFAULT_CONTEXT: usize = 2;

/// Context lines around a grep match at most.
pub const MAX_CONTEXT: usize = 20;

/// Grep matches returned when `max_matches` is not given.
pub const DEFAULT_MAX_MATCHES: usize = 50;

/// Grep matches returned at most.
pub const MAX_MATCHES: usize = 500;

/// Length of a grep pattern, in bytes, at most.
pub const MAX_PATTERN_BYTES: usize = 1024;

/// Memory a compiled grep pattern may use (the regex crate's size limit).
pub const MAX_REGEX_SIZE: usize = 1 << 20;

/// Lines read from a log at a time while filling a response.
const READ_CHUNK: u64 = 64;

/// Bytes kept back from [`MAX_LOG_RESPONSE_BYTES`] for section headers and the closing line.
const RESERVE_BYTES: usize = 1024;

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct GetLogsArgs {
    /// The execution id, or a unique prefix of it.
    pub execution: String,
    /// A step path as get_execution shows it (`2`, `2/1`, `setup/1`, `after/1`). Default: the
    /// first failed step; when nothing failed, the last lines of every step.
    #[serde(default)]
    pub step: Option<String>,
    /// The last N lines (default 100 when nothing else is asked).
    #[serde(default)]
    pub tail: Option<u64>,
    /// The first N lines.
    #[serde(default)]
    pub head: Option<u64>,
    /// First line of a range (1-based, inclusive).
    #[serde(default)]
    pub from: Option<u64>,
    /// Last line of a range (inclusive).
    #[serde(default)]
    pub to: Option<u64>,
    /// A regular expression (Rust regex syntax; `(?i)` for case-insensitive): only matching lines,
    /// with `context` lines around each. Without `step`, searches every step.
    #[serde(default)]
    pub grep: Option<String>,
    /// Lines shown before and after each grep match (default 2, at most 20).
    #[serde(default)]
    pub context: Option<usize>,
    /// Grep matches returned at most (default 50, at most 500); the total is still counted.
    #[serde(default)]
    pub max_matches: Option<usize>,
}

/// One line of a log.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LogLineOut {
    /// 1-based line number in the step's log.
    pub number: u64,
    /// The text, ANSI escapes stripped, long lines cut.
    pub text: String,
    /// For grep: `true` for a matching line, `false` for context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_match: Option<bool>,
}

/// What was read from one step's log.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LogSection {
    pub step: String,
    pub name: String,
    pub status: String,
    /// Lines in the whole log.
    pub total_lines: u64,
    pub lines: Vec<LogLineOut>,
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

/// What to read from each selected log.
enum Mode {
    Tail(u64),
    Head(u64),
    Range(u64, Option<u64>),
    Grep {
        regex: regex::Regex,
        pattern: String,
        options: GrepOptions,
    },
}

/// Bytes left for log text in this response.
struct Budget(usize);

impl Budget {
    fn take(&mut self, bytes: usize) -> bool {
        if bytes > self.0 {
            self.0 = 0;
            false
        } else {
            self.0 -= bytes;
            true
        }
    }
}

fn rendered_len(line: &LogLineOut) -> usize {
    // `{number}| {text}\n`
    line.number.to_string().len() + 3 + line.text.len()
}

fn clean(line: LogLine) -> LogLineOut {
    LogLineOut {
        number: line.number,
        text: cut_line(strip_ansi(&line.text).trim_end(), MAX_LOG_LINE_BYTES).into_owned(),
        is_match: None,
    }
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
        let mode = mode(&args)?;
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
            Mode::Tail(_) if all_steps && args.tail.is_none() => Mode::Tail(DEFAULT_TAIL_PER_STEP),
            other => other,
        };

        let mut budget = Budget(MAX_LOG_RESPONSE_BYTES - RESERVE_BYTES);
        let mut sections = Vec::new();
        let mut next: Option<NextCall> = None;
        let mut cut_note: Option<String> = None;
        let mut skipped_steps: Vec<String> = Vec::new();
        for step in selected {
            if budget.0 == 0 {
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
            let read = read_section(&reader, &mode, &mut budget).map_err(run::Error::from)?;
            let more_args = |extra: serde_json::Value| {
                let mut arguments = json!({"execution": record.id, "step": step.path});
                if let (Some(obj), Some(extra)) = (arguments.as_object_mut(), extra.as_object()) {
                    obj.extend(extra.clone());
                }
                arguments
            };
            let mut note = None;
            if let Some((from, to)) = read.left_out {
                let text = format!(
                    "lines {from}-{to} of {total} not shown (size cap {} KiB)",
                    MAX_LOG_RESPONSE_BYTES / 1024
                );
                let call = NextCall::new(
                    "get_logs",
                    more_args(json!({"from": from, "to": to.min(from + MAX_LINES - 1)})),
                    format!("the lines left out of step {}", step.path),
                );
                note = Some(text.clone());
                if next.is_none() {
                    cut_note = Some(format!("{text}; get them with: {call}"));
                    next = Some(call);
                }
            }
            if let Some(grep_cut) = &read.grep_cut {
                note = Some(grep_cut.clone());
                if next.is_none() {
                    let call = NextCall::new(
                        "get_logs",
                        more_args(json!({"from": read.grep_resume_from, "to": total})),
                        "read the rest of the log from where the shown matches end, or narrow \
                         the regex or raise max_matches",
                    );
                    cut_note = Some(format!("{grep_cut}; continue with: {call}"));
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
                "steps not shown (size cap {} KiB): {}; get each with: {call}",
                MAX_LOG_RESPONSE_BYTES / 1024,
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
            match (s.lines.first(), s.lines.last()) {
                (Some(first), Some(last)) => {
                    let _ = write!(
                        text,
                        "lines {}-{} of {}",
                        first.number, last.number, s.total_lines
                    );
                }
                _ => {
                    let _ = write!(text, "{} lines, none shown", s.total_lines);
                }
            }
            if let Some(matches) = s.total_matches {
                let _ = write!(text, ", {matches} match(es)");
            }
            text.push('\n');
            let mut previous: Option<u64> = None;
            for line in &s.lines {
                if s.total_matches.is_some() && previous.is_some_and(|p| line.number > p + 1) {
                    text.push_str("--\n");
                }
                let mark = match line.is_match {
                    Some(true) => ':',
                    Some(false) => '-',
                    None => '|',
                };
                let _ = writeln!(text, "{}{mark} {}", line.number, line.text);
                previous = Some(line.number);
            }
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
    lines: Vec<LogLineOut>,
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

fn mode(args: &GetLogsArgs) -> Result<Mode, ToolError> {
    let asked = [
        args.tail.is_some(),
        args.head.is_some(),
        args.from.is_some() || args.to.is_some(),
        args.grep.is_some(),
    ];
    if asked.iter().filter(|a| **a).count() > 1 {
        return Err(ToolError::new(
            "choose one of `tail`, `head`, `from`/`to` or `grep` per call",
        ));
    }
    if let Some(pattern) = &args.grep {
        if pattern.len() > MAX_PATTERN_BYTES {
            return Err(ToolError::new(format!(
                "the grep pattern is {} bytes; the limit is {MAX_PATTERN_BYTES}",
                pattern.len()
            )));
        }
        let regex = regex::RegexBuilder::new(pattern)
            .size_limit(MAX_REGEX_SIZE)
            .build()
            .map_err(|error| {
                ToolError::new(format!(
                    "`{pattern}` is not a valid regular expression (Rust regex syntax; escape \
                     literal characters such as `(` or `[` with `\\`): {error}"
                ))
            })?;
        return Ok(Mode::Grep {
            regex,
            pattern: pattern.clone(),
            options: GrepOptions {
                context: args.context.unwrap_or(DEFAULT_CONTEXT).min(MAX_CONTEXT),
                max_matches: args
                    .max_matches
                    .unwrap_or(DEFAULT_MAX_MATCHES)
                    .clamp(1, MAX_MATCHES),
                invert: false,
            },
        });
    }
    if let Some(n) = args.head {
        return Ok(Mode::Head(n.min(MAX_LINES)));
    }
    if args.from.is_some() || args.to.is_some() {
        let from = args.from.unwrap_or(1).max(1);
        if let Some(to) = args.to
            && to < from
        {
            return Err(ToolError::new(format!(
                "`to` ({to}) is before `from` ({from}): lines are numbered from 1"
            )));
        }
        return Ok(Mode::Range(from, args.to));
    }
    Ok(Mode::Tail(args.tail.unwrap_or(DEFAULT_TAIL).min(MAX_LINES)))
}

/// What one log gave within the budget.
struct SectionRead {
    lines: Vec<LogLineOut>,
    /// Lines asked for but left out by the size cap (inclusive range).
    left_out: Option<(u64, u64)>,
    total_matches: Option<u64>,
    /// For grep: what was cut, and the line from which the log was not searched in the output.
    grep_cut: Option<String>,
    grep_resume_from: u64,
}

fn read_section(reader: &LogReader, mode: &Mode, budget: &mut Budget) -> logs::Result<SectionRead> {
    let total = reader.line_count();
    let mut read = SectionRead {
        lines: Vec::new(),
        left_out: None,
        total_matches: None,
        grep_cut: None,
        grep_resume_from: 1,
    };
    match mode {
        Mode::Tail(n) => {
            let first = total.saturating_sub(*n) + 1;
            // From the end backwards, so the lines nearest the end survive the cap.
            let mut end = total + 1;
            let mut kept = Vec::new();
            'chunks: while end > first {
                let start = end.saturating_sub(READ_CHUNK).max(first);
                for line in reader.lines(start..end)?.into_iter().rev() {
                    let line = clean(line);
                    if !budget.take(rendered_len(&line)) {
                        read.left_out = Some((first, line.number));
                        break 'chunks;
                    }
                    kept.push(line);
                }
                end = start;
            }
            kept.reverse();
            read.lines = kept;
        }
        Mode::Head(_) | Mode::Range(..) => {
            let (first, last) = match mode {
                Mode::Head(n) => (1, (*n).min(total)),
                Mode::Range(from, to) => {
                    let last = to.unwrap_or(u64::MAX).min(total);
                    (*from, last.min(from.saturating_add(MAX_LINES - 1)))
                }
                _ => unreachable!("matched above"),
            };
            let mut start = first;
            'chunks: while start <= last {
                let end = (start + READ_CHUNK).min(last + 1);
                for line in reader.lines(start..end)? {
                    let line = clean(line);
                    if !budget.take(rendered_len(&line)) {
                        read.left_out = Some((line.number, last));
                        break 'chunks;
                    }
                    read.lines.push(line);
                }
                start = end;
            }
        }
        Mode::Grep {
            regex,
            pattern,
            options,
        } => {
            let result = reader.grep(regex, *options)?;
            read.total_matches = Some(result.total_matches_seen);
            let mut shown_matches = 0usize;
            'blocks: for block in result.blocks {
                for line in block.lines {
                    let is_match = line.is_match;
                    let mut out = clean(LogLine {
                        number: line.number,
                        timestamp: line.timestamp,
                        text: line.text,
                    });
                    out.is_match = Some(is_match);
                    if !budget.take(rendered_len(&out) + 3) {
                        read.grep_cut = Some(format!(
                            "{shown_matches} of {} matches of `{pattern}` shown before the size \
                             cap ({} KiB), up to line {}",
                            result.total_matches_seen,
                            MAX_LOG_RESPONSE_BYTES / 1024,
                            read.grep_resume_from.saturating_sub(1)
                        ));
                        break 'blocks;
                    }
                    if is_match {
                        shown_matches += 1;
                    }
                    read.grep_resume_from = out.number + 1;
                    read.lines.push(out);
                }
            }
            if read.grep_cut.is_none() && result.truncated {
                read.grep_cut = Some(format!(
                    "{} of {} matches of `{pattern}` shown (max_matches), up to line {}",
                    result.matches_returned,
                    result.total_matches_seen,
                    read.grep_resume_from.saturating_sub(1)
                ));
            }
        }
    }
    Ok(read)
}
