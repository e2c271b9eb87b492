//! Live progress of a run: colours and a spinner on a terminal, plain lines when piped.

use std::io::Write;
use std::time::Duration;

use testloop_orchestrator::execution::{ExecutionRecord, StepRecord, StepStatus};
use testloop_orchestrator::run::format_duration;

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// Writes progress to stdout.
///
/// Lines gather in a buffer until [`Progress::flush`]: the caller flushes once it has shown the
/// events that arrived together, so a burst of quick steps costs one write rather than two per
/// step.
pub struct Progress {
    terminal: bool,
    /// Steps running now, outermost first: a group and then its running nested step.
    running: Vec<StepRecord>,
    frame: usize,
    pending: Vec<u8>,
}

impl Progress {
    pub fn new(terminal: bool) -> Self {
        Self {
            terminal,
            running: Vec::new(),
            frame: 0,
            pending: Vec::new(),
        }
    }

    /// Writes what is buffered to stdout.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&self.pending);
        let _ = out.flush();
        self.pending.clear();
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.terminal {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn clear_spinner(&self, out: &mut impl Write) {
        if self.terminal && !self.running.is_empty() {
            let _ = write!(out, "\r\x1b[2K");
        }
    }

    pub fn header(&self, text: &str) {
        println!("{}", self.paint("1", text));
    }

    pub fn step_started(&mut self, step: &StepRecord) {
        let mut out = std::mem::take(&mut self.pending);
        self.clear_spinner(&mut out);
        if self.terminal {
            self.running.retain(|running| running.path != step.path);
            if let Some(group) = self.running.last() {
                // A nested step starts: its group keeps a line of its own above it.
                let _ = writeln!(
                    out,
                    "{}{} {} {}",
                    indent(&group.path),
                    self.paint("36", "▸"),
                    group.path,
                    group.name
                );
            }
            self.running.push(step.clone());
            self.draw_spinner(&mut out);
        } else if step.attempts <= 1 {
            let _ = writeln!(
                out,
                "{}[running] {} {}",
                indent(&step.path),
                step.path,
                step.name
            );
        } else {
            let _ = writeln!(
                out,
                "{}[retry {}] {} {}",
                indent(&step.path),
                step.attempts,
                step.path,
                step.name
            );
        }
        self.pending = out;
    }

    pub fn step_finished(&mut self, step: &StepRecord) {
        let mut out = std::mem::take(&mut self.pending);
        self.clear_spinner(&mut out);
        let (mark, colour) = match step.status {
            StepStatus::Passed => ("✔", "32"),
            StepStatus::Skipped => ("↷", "2"),
            StepStatus::Failed | StepStatus::TimedOut | StepStatus::Interrupted => ("✖", "31"),
            StepStatus::Aborted => ("■", "33"),
            StepStatus::Queued | StepStatus::Running => ("…", "0"),
        };
        let duration = step_duration(step).map(format_duration).unwrap_or_default();
        let message = step.message.as_deref().unwrap_or_default();
        let status = if self.terminal {
            format!("{} ", self.paint(colour, mark))
        } else {
            format!("[{}] ", step.status)
        };
        let detail = [duration.as_str(), message]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("  ");
        let _ = writeln!(
            out,
            "{}{status}{} {}  {}",
            indent(&step.path),
            step.path,
            step.name,
            self.paint("2", &detail)
        );
        self.running.retain(|running| running.path != step.path);
        self.draw_spinner(&mut out);
        self.pending = out;
    }

    /// Advances the spinner (terminal only).
    pub fn tick(&mut self) {
        if !self.terminal || self.running.is_empty() {
            return;
        }
        self.frame = (self.frame + 1) % SPINNER.len();
        let mut out = std::mem::take(&mut self.pending);
        self.clear_spinner(&mut out);
        self.draw_spinner(&mut out);
        self.pending = out;
        self.flush();
    }

    fn draw_spinner(&self, out: &mut impl Write) {
        if let Some(step) = self.running.last() {
            let elapsed = step
                .started_at
                .map(|start| {
                    let micros = testloop_orchestrator::execution::now_micros() - start;
                    format_duration(Duration::from_micros(micros.max(0) as u64))
                })
                .unwrap_or_default();
            let attempt = if step.attempts > 1 {
                format!(" (attempt {})", step.attempts)
            } else {
                String::new()
            };
            let _ = write!(
                out,
                "{}{} {} {}{attempt}  {}",
                indent(&step.path),
                self.paint("36", SPINNER[self.frame]),
                step.path,
                step.name,
                self.paint("2", &elapsed)
            );
        }
    }

    pub fn finished(&mut self, execution: &ExecutionRecord, steps: &[StepRecord]) {
        self.flush();
        let mut out = std::io::stdout().lock();
        self.clear_spinner(&mut out);
        self.running.clear();
        let total = execution
            .finished_at
            .zip(execution.started_at)
            .map(|(end, start)| format_duration(Duration::from_micros((end - start).max(0) as u64)))
            .unwrap_or_default();
        let failed = steps.iter().filter(|step| step.status.is_failure()).count();
        let verdict = execution.status.as_str().to_uppercase();
        let colour =
            if execution.status == testloop_orchestrator::execution::ExecutionStatus::Passed {
                "1;32"
            } else {
                "1;31"
            };
        let mut summary = format!(
            "{} in {total}: {} step(s)",
            self.paint(colour, &verdict),
            steps.len()
        );
        if failed > 0 {
            summary.push_str(&format!(", {failed} failed"));
        }
        if let Some(error) = &execution.error {
            summary.push_str(&format!(" ({error})"));
        }
        let _ = writeln!(out, "{summary}");
        let _ = out.flush();
    }
}

fn indent(path: &str) -> String {
    "  ".repeat(
        path.matches('/').count().saturating_sub(usize::from(
            path.starts_with("setup/") || path.starts_with("after/"),
        )) + 1,
    )
}

fn step_duration(step: &StepRecord) -> Option<Duration> {
    let (start, end) = (step.started_at?, step.finished_at?);
    Some(Duration::from_micros((end - start).max(0) as u64))
}
