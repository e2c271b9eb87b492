//! Bounded reads of numbered text lines, shared by get_logs (step logs) and read_artifact (text
//! artifacts), so that both take the same arguments, cut at the same places and say the same
//! things: which lines to read (tail, head, a range, or grep with context), the byte budget of a
//! response, and how numbered lines are rendered.

use std::fmt::Write as _;
use std::ops::Range;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use testloop_orchestrator::artifacts::{self, TextReader};
use testloop_orchestrator::logs::{self, GrepOptions, GrepResult, LogLine, LogReader};
use testloop_orchestrator::summary::{cut_line, strip_ansi};

use crate::output::{ToolError, format_bytes};

/// Lines one read asks for at most (`tail`, `head`, `from`..`to` are clamped to it).
pub const MAX_LINES: u64 = 2000;

/// Bytes of one line shown; a longer line is cut and marked with `…`.
pub const MAX_SHOWN_LINE_BYTES: usize = 2048;

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

/// Lines read at a time while filling a response.
const READ_CHUNK: u64 = 64;

/// Which lines to read: at most one of `tail`, `head`, `from`/`to` and `grep`. Flattened into the
/// arguments of the tools that read lines.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct LineArgs {
    /// The last N lines (at most 2000).
    #[serde(default)]
    pub tail: Option<u64>,
    /// The first N lines (at most 2000).
    #[serde(default)]
    pub head: Option<u64>,
    /// First line of a range (1-based, inclusive).
    #[serde(default)]
    pub from: Option<u64>,
    /// Last line of a range (inclusive); one call reads at most 2000 lines of it.
    #[serde(default)]
    pub to: Option<u64>,
    /// A regular expression (Rust regex syntax; `(?i)` for case-insensitive): only matching lines,
    /// with `context` lines around each.
    #[serde(default)]
    pub grep: Option<String>,
    /// Lines shown before and after each grep match (default 2, at most 20).
    #[serde(default)]
    pub context: Option<usize>,
    /// Grep matches returned at most (default 50, at most 500); the total is still counted.
    #[serde(default)]
    pub max_matches: Option<usize>,
}

/// What to read from a text.
pub(crate) enum Mode {
    Tail(u64),
    Head(u64),
    Range(u64, Option<u64>),
    Grep {
        regex: regex::Regex,
        pattern: String,
        options: GrepOptions,
    },
}

impl LineArgs {
    /// The mode asked for, or `None` when nothing was (each tool has its own default).
    pub(crate) fn mode(&self) -> Result<Option<Mode>, ToolError> {
        let asked = [
            self.tail.is_some(),
            self.head.is_some(),
            self.from.is_some() || self.to.is_some(),
            self.grep.is_some(),
        ];
        if asked.iter().filter(|a| **a).count() > 1 {
            return Err(ToolError::new(
                "choose one of `tail`, `head`, `from`/`to` or `grep` per call",
            ));
        }
        if let Some(pattern) = &self.grep {
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
            return Ok(Some(Mode::Grep {
                regex,
                pattern: pattern.clone(),
                options: GrepOptions {
                    context: self.context.unwrap_or(DEFAULT_CONTEXT).min(MAX_CONTEXT),
                    max_matches: self
                        .max_matches
                        .unwrap_or(DEFAULT_MAX_MATCHES)
                        .clamp(1, MAX_MATCHES),
                    invert: false,
                },
            }));
        }
        if let Some(n) = self.head {
            return Ok(Some(Mode::Head(n.min(MAX_LINES))));
        }
        if self.from.is_some() || self.to.is_some() {
            let from = self.from.unwrap_or(1).max(1);
            if let Some(to) = self.to
                && to < from
            {
                return Err(ToolError::new(format!(
                    "`to` ({to}) is before `from` ({from}): lines are numbered from 1"
                )));
            }
            return Ok(Some(Mode::Range(from, self.to)));
        }
        Ok(self.tail.map(|n| Mode::Tail(n.min(MAX_LINES))))
    }
}

/// A text read by line number: a step log or a text artifact.
pub(crate) trait LineSource {
    type Error;
    fn line_count(&self) -> u64;
    fn lines(&self, range: Range<u64>) -> Result<Vec<LogLine>, Self::Error>;
    fn grep(&self, regex: &regex::Regex, options: GrepOptions) -> Result<GrepResult, Self::Error>;
}

impl LineSource for LogReader {
    type Error = logs::Error;
    fn line_count(&self) -> u64 {
        LogReader::line_count(self)
    }
    fn lines(&self, range: Range<u64>) -> logs::Result<Vec<LogLine>> {
        LogReader::lines(self, range)
    }
    fn grep(&self, regex: &regex::Regex, options: GrepOptions) -> logs::Result<GrepResult> {
        LogReader::grep(self, regex, options)
    }
}

impl LineSource for TextReader<'_> {
    type Error = artifacts::Error;
    fn line_count(&self) -> u64 {
        TextReader::line_count(self)
    }
    fn lines(&self, range: Range<u64>) -> artifacts::Result<Vec<LogLine>> {
        TextReader::lines(self, range)
    }
    fn grep(&self, regex: &regex::Regex, options: GrepOptions) -> artifacts::Result<GrepResult> {
        TextReader::grep(self, regex, options)
    }
}

/// One numbered line of a log or a text artifact.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct NumberedLine {
    /// 1-based line number.
    pub number: u64,
    /// The text, ANSI escapes stripped, long lines cut.
    pub text: String,
    /// For grep: `true` for a matching line, `false` for context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_match: Option<bool>,
}

fn clean(number: u64, text: &str) -> NumberedLine {
    NumberedLine {
        number,
        text: cut_line(strip_ansi(text).trim_end(), MAX_SHOWN_LINE_BYTES).into_owned(),
        is_match: None,
    }
}

/// Bytes a line takes in the text rendering ([`render_lines`]).
fn rendered_len(line: &NumberedLine) -> usize {
    // `{number}| {text}\n`
    line.number.to_string().len() + 3 + line.text.len()
}

/// Bytes left for text in one response, and the cap they came from (named in notes).
pub(crate) struct Budget {
    left: usize,
    cap: usize,
}

impl Budget {
    /// `left` bytes for lines, out of a response capped at `cap`.
    pub(crate) fn new(left: usize, cap: usize) -> Self {
        Self { left, cap }
    }

    fn take(&mut self, bytes: usize) -> bool {
        if bytes > self.left {
            self.left = 0;
            false
        } else {
            self.left -= bytes;
            true
        }
    }

    pub(crate) fn is_spent(&self) -> bool {
        self.left == 0
    }

    /// The cap, as notes name it (`16 KiB`).
    pub(crate) fn cap(&self) -> String {
        format_bytes(self.cap as u64)
    }
}

/// What one text gave within the budget.
pub(crate) struct SectionRead {
    pub(crate) lines: Vec<NumberedLine>,
    /// Lines asked for but left out by the size cap or [`MAX_LINES`] (inclusive range).
    left_out: Option<(u64, u64)>,
    pub(crate) total_matches: Option<u64>,
    /// For grep: what was cut, and the line from which the rest was not shown.
    grep_cut: Option<String>,
    grep_resume_from: u64,
}

/// What a read left out, and the lines to read next to get it.
pub(crate) struct Continuation {
    /// What was left out, in a few words.
    pub(crate) note: String,
    /// The `from` and `to` that read what was left out.
    from: u64,
    to: u64,
    /// Whether grep matches were left out (rather than lines of a read).
    pub(crate) grep: bool,
}

impl Continuation {
    /// The arguments of the call that reads what was left out: `base` (what names the text)
    /// with `from` and `to`.
    pub(crate) fn arguments(&self, mut base: serde_json::Value) -> serde_json::Value {
        if let Some(arguments) = base.as_object_mut() {
            arguments.insert("from".to_owned(), self.from.into());
            arguments.insert("to".to_owned(), self.to.into());
        }
        base
    }

    /// The words before the call in a truncation line.
    pub(crate) fn lead(&self) -> &'static str {
        if self.grep {
            "continue with"
        } else {
            "get them with"
        }
    }
}

impl SectionRead {
    /// What was left out of a text of `total` lines, if anything.
    pub(crate) fn continuation(&self, total: u64, budget: &Budget) -> Option<Continuation> {
        if let Some((from, to)) = self.left_out {
            return Some(Continuation {
                note: format!(
                    "lines {from}-{to} of {total} not shown (size cap {})",
                    budget.cap()
                ),
                from,
                to: to.min(from + MAX_LINES - 1),
                grep: false,
            });
        }
        self.grep_cut.as_ref().map(|cut| Continuation {
            note: cut.clone(),
            from: self.grep_resume_from,
            to: total,
            grep: true,
        })
    }
}

/// Reads what `mode` asks from `source`, line by line until the budget is spent.
pub(crate) fn read_section<S: LineSource>(
    source: &S,
    mode: &Mode,
    budget: &mut Budget,
) -> Result<SectionRead, S::Error> {
    let total = source.line_count();
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
                for line in source.lines(start..end)?.into_iter().rev() {
                    let line = clean(line.number, &line.text);
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
            let (first, asked_last) = match mode {
                Mode::Head(n) => (1, (*n).min(total)),
                Mode::Range(from, to) => (*from, to.unwrap_or(u64::MAX).min(total)),
                _ => unreachable!("matched above"),
            };
            let last = asked_last.min(first.saturating_add(MAX_LINES - 1));
            let mut start = first;
            'chunks: while start <= last {
                let end = (start + READ_CHUNK).min(last + 1);
                for line in source.lines(start..end)? {
                    let line = clean(line.number, &line.text);
                    if !budget.take(rendered_len(&line)) {
                        read.left_out = Some((line.number, asked_last));
                        break 'chunks;
                    }
                    read.lines.push(line);
                }
                start = end;
            }
            if read.left_out.is_none() && last < asked_last {
                read.left_out = Some((last + 1, asked_last));
            }
        }
        Mode::Grep {
            regex,
            pattern,
            options,
        } => {
            let result = source.grep(regex, *options)?;
            read.total_matches = Some(result.total_matches_seen);
            let mut shown_matches = 0usize;
            'blocks: for block in result.blocks {
                for line in block.lines {
                    let mut out = clean(line.number, &line.text);
                    out.is_match = Some(line.is_match);
                    // `--\n` may come before it.
                    if !budget.take(rendered_len(&out) + 3) {
                        read.grep_cut = Some(format!(
                            "{shown_matches} of {} matches of `{pattern}` shown before the size \
                             cap ({}), up to line {}",
                            result.total_matches_seen,
                            budget.cap(),
                            read.grep_resume_from.saturating_sub(1)
                        ));
                        break 'blocks;
                    }
                    if line.is_match {
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

/// Appends numbered lines, one per line: `12| text`; for grep, `12: match` and `11- context`,
/// with `--` between blocks that do not touch.
pub(crate) fn render_lines(out: &mut String, lines: &[NumberedLine], grep: bool) {
    let mut previous: Option<u64> = None;
    for line in lines {
        if grep && previous.is_some_and(|p| line.number > p + 1) {
            out.push_str("--\n");
        }
        let mark = match line.is_match {
            Some(true) => ':',
            Some(false) => '-',
            None => '|',
        };
        let _ = writeln!(out, "{}{mark} {}", line.number, line.text);
        previous = Some(line.number);
    }
}

/// `lines 3-7 of 40`, or `40 lines, none shown`.
pub(crate) fn shown_range(lines: &[NumberedLine], total: u64) -> String {
    match (lines.first(), lines.last()) {
        (Some(first), Some(last)) => format!("lines {}-{} of {total}", first.number, last.number),
        _ => format!("{total} lines, none shown"),
    }
}
