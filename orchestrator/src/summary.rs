//! What a reader with little room needs to know about a finished execution: which step failed
//! first, the last lines it printed that mean something, and the config with its secrets masked.
//!
//! Plain synchronous functions over records and logs, shared by the MCP tools and the CLI.

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::execution::{ExecutionRecord, StepRecord};
use crate::logs::{self, LogLine, LogStore};
use crate::spec::{self, model::Step};

/// Lines of a failed step's log scanned from its end for meaningful lines.
pub const SUMMARY_SCAN_LINES: u64 = 200;

/// Meaningful lines a failure summary keeps, at most.
pub const SUMMARY_MAX_LINES: usize = 12;

/// Bytes of log text a failure summary keeps, at most (over all its lines).
pub const SUMMARY_MAX_BYTES: usize = 2048;

/// Bytes of one line a failure summary keeps; a longer line is cut and marked with `…`.
pub const SUMMARY_MAX_LINE_BYTES: usize = 400;

/// What masked config values are replaced with.
pub const MASK: &str = "********";

/// Prefix of the lines testloop itself writes into step logs.
pub const NOTE_PREFIX: &str = "[testloop]";

/// The first failure of an execution and what its log says about it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FailureSummary {
    /// The failed step: the first, in tree order, that failed without a failed child (its own
    /// command failed, not only something below it). Non-optional failures come first.
    pub step: StepRecord,
    /// Whether the step is `optional` (its failure did not fail the execution).
    pub optional: bool,
    /// Its last meaningful lines (ANSI stripped; blank lines and testloop notes skipped), oldest
    /// first.
    pub lines: Vec<LogLine>,
    /// Whether meaningful lines were left out to stay within the limits.
    pub truncated: bool,
    /// Lines in the step's whole log (0 when it wrote none).
    pub total_lines: u64,
}

/// Removes ANSI escape sequences (CSI such as colours, OSC such as titles, character-set
/// designations, and two-byte escapes) and other C0 control characters except tab.
pub fn strip_ansi(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            match chars.next() {
                // CSI: parameters and intermediates, then one final byte in `@`..=`~`.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // Character-set designation (`ESC ( B`, which terminfo's `sgr0` appends, as in
                // libtest's colours): one more character.
                Some('(' | ')' | '*' | '+') => {
                    chars.next();
                }
                // OSC: up to BEL or ST (ESC \).
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                _ => {}
            }
        } else if c == '\t' || !c.is_control() {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether a log line says something: not blank and not one of testloop's own notes.
pub fn is_meaningful(text: &str) -> bool {
    let text = text.trim();
    !text.is_empty() && !text.starts_with(NOTE_PREFIX)
}

/// Cuts `text` to at most `max` bytes at a character boundary, marking a cut with `…`.
pub fn cut_line(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &text[..end]))
}

/// The last meaningful lines of `lines` (ANSI stripped, each cut to [`SUMMARY_MAX_LINE_BYTES`]),
/// at most `max_lines` of them and `max_bytes` of text, oldest first; and whether any meaningful
/// line was left out.
pub fn meaningful_tail(
    lines: &[LogLine],
    max_lines: usize,
    max_bytes: usize,
) -> (Vec<LogLine>, bool) {
    let mut kept = Vec::new();
    let mut bytes = 0usize;
    let mut truncated = false;
    for line in lines.iter().rev() {
        let text = strip_ansi(&line.text);
        if !is_meaningful(&text) {
            continue;
        }
        let text = cut_line(text.trim_end(), SUMMARY_MAX_LINE_BYTES);
        if kept.len() == max_lines || bytes + text.len() > max_bytes {
            truncated = true;
            break;
        }
        bytes += text.len();
        kept.push(LogLine {
            number: line.number,
            timestamp: line.timestamp,
            text: text.into_owned(),
        });
    }
    kept.reverse();
    (kept, truncated)
}

/// The step paths marked `optional` in a workflow (`1`, `2/1`, `setup/1`, `after/2`), using the
/// same numbering as the plan.
pub fn optional_steps(workflow: &spec::Workflow) -> BTreeSet<String> {
    fn walk(steps: &[Step], prefix: &str, out: &mut BTreeSet<String>) {
        for (index, step) in steps.iter().enumerate() {
            let path = format!("{prefix}{}", index + 1);
            if step.optional {
                out.insert(path.clone());
            }
            walk(&step.steps, &format!("{path}/"), out);
        }
    }
    let mut out = BTreeSet::new();
    walk(&workflow.spec.setup, "setup/", &mut out);
    walk(&workflow.spec.steps, "", &mut out);
    walk(&workflow.spec.after, "after/", &mut out);
    out
}

/// Whether `path` is `ancestor` or below it.
fn is_under(path: &str, ancestor: &str) -> bool {
    path.strip_prefix(ancestor)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The first failed step in tree order that has no failed step below it, preferring steps that
/// are not `optional` (nor under an optional step). `steps` must be in tree order.
pub fn first_failed_step<'a>(
    steps: &'a [StepRecord],
    optional: &BTreeSet<String>,
) -> Option<(&'a StepRecord, bool)> {
    let failed: Vec<&StepRecord> = steps.iter().filter(|s| s.status.is_failure()).collect();
    let leaves = failed.iter().copied().filter(|step| {
        !failed
            .iter()
            .any(|other| other.path != step.path && is_under(&other.path, &step.path))
    });
    let is_optional = |step: &StepRecord| optional.iter().any(|o| is_under(&step.path, o));
    let mut first_optional = None;
    for step in leaves {
        if !is_optional(step) {
            return Some((step, false));
        }
        first_optional.get_or_insert(step);
    }
    first_optional.map(|step| (step, true))
}

/// [`first_failed_step`] of an execution, with the optional steps read from its snapshot.
pub fn failed_step<'a>(
    execution: &ExecutionRecord,
    steps: &'a [StepRecord],
) -> Option<(&'a StepRecord, bool)> {
    let optional = parsed_snapshot(&execution.snapshot)
        .map(|workflow| optional_steps(&workflow))
        .unwrap_or_default();
    first_failed_step(steps, &optional)
}

/// The failure summary of an execution: `None` when no step failed.
pub fn failure_summary(
    logs: &LogStore,
    execution: &ExecutionRecord,
    steps: &[StepRecord],
) -> logs::Result<Option<FailureSummary>> {
    let Some((step, optional)) = failed_step(execution, steps) else {
        return Ok(None);
    };
    let (lines, truncated, total_lines) = match logs.reader(&execution.id, &step.path) {
        Ok(reader) => {
            let tail = reader.tail(SUMMARY_SCAN_LINES)?;
            let (lines, truncated) = meaningful_tail(&tail, SUMMARY_MAX_LINES, SUMMARY_MAX_BYTES);
            (lines, truncated, reader.line_count())
        }
        Err(logs::Error::NotFound { .. }) => (Vec::new(), false, 0),
        Err(error) => return Err(error),
    };
    Ok(Some(FailureSummary {
        step: step.clone(),
        optional,
        lines,
        truncated,
        total_lines,
    }))
}

fn parsed_snapshot(snapshot: &str) -> Option<spec::Workflow> {
    spec::parse(snapshot)
        .ok()?
        .into_iter()
        .next()
        .map(|parsed| parsed.workflow)
}

/// The config of an execution for showing: values of parameters declared `sensitive` in the
/// workflow snapshot replaced by [`MASK`]. When the snapshot no longer parses, every value is
/// masked: showing a secret is worse than hiding a harmless value.
pub fn masked_config(execution: &ExecutionRecord) -> Map<String, Value> {
    let sensitive: Option<BTreeSet<String>> =
        parsed_snapshot(&execution.snapshot).map(|workflow| {
            workflow
                .spec
                .config
                .iter()
                .filter(|(_, parameter)| parameter.sensitive)
                .map(|(name, _)| name.clone())
                .collect()
        });
    execution
        .config
        .iter()
        .map(|(name, value)| {
            let hide = sensitive.as_ref().is_none_or(|names| names.contains(name));
            let shown = if hide {
                Value::String(MASK.to_owned())
            } else {
                value.clone()
            };
            (name.clone(), shown)
        })
        .collect()
}

/// Config values as text, the way a person types them (`--set name=value`): the inverse of the
/// plan's typed parsing, used to run an execution's config again.
pub fn config_as_text(config: &Map<String, Value>) -> std::collections::BTreeMap<String, String> {
    config
        .iter()
        .map(|(name, value)| {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (name.clone(), text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::{ExecutionStatus, StepStatus, Trigger};

    fn step(path: &str, status: StepStatus) -> StepRecord {
        StepRecord {
            execution_id: "E".to_owned(),
            path: path.to_owned(),
            name: format!("step {path}"),
            status,
            exit_code: None,
            attempts: 1,
            started_at: None,
            finished_at: None,
            message: None,
        }
    }

    fn line(number: u64, text: &str) -> LogLine {
        LogLine {
            number,
            timestamp: 0,
            text: text.to_owned(),
        }
    }

    fn execution(snapshot: &str, config: Value) -> ExecutionRecord {
        ExecutionRecord {
            id: "E".to_owned(),
            workflow: "w".to_owned(),
            workflow_version: 1,
            snapshot: snapshot.to_owned(),
            config: config.as_object().cloned().unwrap_or_default(),
            trigger: Trigger::Cli,
            status: ExecutionStatus::Failed,
            created_at: 0,
            started_at: None,
            finished_at: None,
            error: None,
            rerun_of: None,
            only_failed: false,
            executor: Default::default(),
        }
    }

    #[test]
    fn ansi_colours_titles_and_controls_are_stripped() {
        assert_eq!(strip_ansi("plain\ttext"), "plain\ttext");
        assert_eq!(strip_ansi("\u{1b}[31;1mFAIL\u{1b}[0m ok"), "FAIL ok");
        assert_eq!(strip_ansi("\u{1b}]0;title\u{7}after"), "after");
        assert_eq!(strip_ansi("\u{1b}]8;;url\u{1b}\\link"), "link");
        assert_eq!(strip_ansi("back\rspace\u{8}"), "backspace");
        assert_eq!(
            strip_ansi("\u{1b}[31mFAILED\u{1b}(B\u{1b}[m"),
            "FAILED",
            "character-set designations are three characters"
        );
    }

    #[test]
    fn the_first_failed_leaf_is_chosen_over_its_failed_parent() {
        let steps = [
            step("1", StepStatus::Passed),
            step("2", StepStatus::Failed),
            step("2/1", StepStatus::Passed),
            step("2/2", StepStatus::Failed),
            step("3", StepStatus::Failed),
        ];
        let (found, optional) = first_failed_step(&steps, &BTreeSet::new()).unwrap();
        assert_eq!((found.path.as_str(), optional), ("2/2", false));
    }

    #[test]
    fn optional_failures_come_after_required_ones() {
        let steps = [
            step("1", StepStatus::Failed),
            step("1/1", StepStatus::Failed),
            step("2", StepStatus::TimedOut),
        ];
        let optional = BTreeSet::from(["1".to_owned()]);
        let (found, is_optional) = first_failed_step(&steps, &optional).unwrap();
        assert_eq!((found.path.as_str(), is_optional), ("2", false));
        let only_optional = &steps[..2];
        let (found, is_optional) = first_failed_step(only_optional, &optional).unwrap();
        assert_eq!((found.path.as_str(), is_optional), ("1/1", true));
        assert!(first_failed_step(&[step("1", StepStatus::Passed)], &optional).is_none());
    }

    #[test]
    fn step_10_is_not_under_step_1() {
        let steps = [
            step("1", StepStatus::Failed),
            step("10", StepStatus::Failed),
        ];
        let (found, _) = first_failed_step(&steps, &BTreeSet::new()).unwrap();
        assert_eq!(found.path, "1");
    }

    #[test]
    fn the_tail_skips_blank_lines_and_notes_and_keeps_order() {
        let lines = [
            line(1, "early"),
            line(2, "\u{1b}[31mexpected 2, got 3\u{1b}[0m"),
            line(3, "   "),
            line(4, "[testloop] exited with code 1"),
            line(5, ""),
        ];
        let (kept, truncated) = meaningful_tail(&lines, 5, 1000);
        let texts: Vec<_> = kept.iter().map(|l| (l.number, l.text.as_str())).collect();
        assert_eq!(texts, [(1, "early"), (2, "expected 2, got 3")]);
        assert!(!truncated);
    }

    #[test]
    fn the_tail_stops_at_the_line_and_byte_limits() {
        let lines: Vec<LogLine> = (1..=50).map(|n| line(n, &format!("line {n:02}"))).collect();
        let (kept, truncated) = meaningful_tail(&lines, 3, 1000);
        assert_eq!(
            kept.iter().map(|l| l.number).collect::<Vec<_>>(),
            [48, 49, 50]
        );
        assert!(truncated);
        // "line NN" is 7 bytes: 20 bytes hold two lines.
        let (kept, truncated) = meaningful_tail(&lines, 10, 20);
        assert_eq!(kept.len(), 2);
        assert!(truncated);
        // Exactly at the limit: 3 lines of 7 bytes in 21.
        let (kept, _) = meaningful_tail(&lines, 10, 21);
        assert_eq!(kept.len(), 3);
    }

    #[test]
    fn long_lines_are_cut_at_a_character_boundary() {
        let long = "é".repeat(SUMMARY_MAX_LINE_BYTES);
        let (kept, _) = meaningful_tail(&[line(1, &long)], 1, SUMMARY_MAX_BYTES);
        assert!(kept[0].text.len() <= SUMMARY_MAX_LINE_BYTES);
        assert!(kept[0].text.ends_with('…'));
        assert_eq!(cut_line("short", 10), "short");
    }

    const SNAPSHOT: &str = "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata:\n  name: w\nspec:\n  config:\n    token:\n      type: string\n      sensitive: true\n    level:\n      type: integer\n      default: 2\n  setup:\n  - optional: true\n    shell: 'true'\n  steps:\n  - shell: 'true'\n    steps:\n    - optional: true\n      shell: 'false'\n";

    #[test]
    fn sensitive_values_are_masked_and_others_shown() {
        let record = execution(SNAPSHOT, serde_json::json!({"token": "s3cret", "level": 2}));
        let shown = masked_config(&record);
        assert_eq!(shown["token"], MASK);
        assert_eq!(shown["level"], 2);
    }

    #[test]
    fn an_unreadable_snapshot_masks_everything() {
        let record = execution("not: [a workflow", serde_json::json!({"level": 2}));
        assert_eq!(masked_config(&record)["level"], MASK);
    }

    #[test]
    fn optional_paths_follow_the_plan_numbering() {
        let workflow = parsed_snapshot(SNAPSHOT).expect("snapshot parses");
        assert_eq!(
            optional_steps(&workflow),
            BTreeSet::from(["setup/1".to_owned(), "1/1".to_owned()])
        );
    }

    #[test]
    fn config_text_round_trips_typed_values() {
        let config = serde_json::json!({"s": "a b", "n": 3, "b": true});
        let text = config_as_text(config.as_object().unwrap());
        assert_eq!(text["s"], "a b");
        assert_eq!(text["n"], "3");
        assert_eq!(text["b"], "true");
    }
}
