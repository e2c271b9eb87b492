//! Failures recognised in a step's log, for when a test runner wrote no JUnit report.
//!
//! [`LogScanner`] reads a log one line at a time and keeps only what it may still report: the
//! failures found so far (at most [`MAX_FAILURES`], each bounded), the failure whose body it is
//! reading, and a few words of state per runner. Memory therefore does not grow with the log.
//!
//! Runners recognised: cargo test and cargo-nextest (`cargo`), pytest (`pytest`), Jest (`jest`),
//! Vitest (`vitest`), go test (`go`), Maven Surefire and the JUnit Platform console launcher
//! (`maven`), Playwright's list, line and dot reporters (`playwright`). When none of them printed
//! anything, a fallback (`generic`) reports `FAIL`/`FAILED`/`ERROR` lines, `Error:` lines, Rust
//! panics and Python tracebacks.
//!
//! Most lines of a big log are noise. A line is looked at closely only when its first non-blank
//! byte could start something a runner prints, or while the body of a failure is being read; ANSI
//! escapes are stripped only from those lines.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};

use serde::Serialize;

use super::{TestCase, TestStatus};
use crate::logs::{self, LogReader};
use crate::summary::{NOTE_PREFIX, cut_line, is_meaningful, strip_ansi};

/// Failures a scan keeps, at most; more set [`Scan::truncated`]. A failure reported twice (cargo
/// and pytest name each failure in two places) counts once.
pub const MAX_FAILURES: usize = 50;

/// Bytes of one failure's message, at most (its lines joined by `\n`); the line that would go
/// past the limit is cut and marked with `…`.
pub const MAX_MESSAGE_BYTES: usize = 600;

/// Lines of one failure's message, at most.
pub const MAX_MESSAGE_LINES: usize = 8;

/// Bytes of a log line looked at, at most: the rest of a longer line is ignored, so a runner's
/// marker that ends past this point (`test x ... FAILED`) is not seen.
pub const MAX_LINE_BYTES: usize = 4096;

/// Bytes of a test name (or, for a failure without one, of the line that names it), at most.
pub const MAX_NAME_BYTES: usize = 256;

/// Go tests whose output (`go test -v` prints it before the test's result line) is kept until
/// their result, at most; past this the output of the test that started first is dropped, and
/// that test, if it fails, is reported without a message.
pub const MAX_GO_PENDING: usize = 64;

/// Bytes read at a time by [`scan_log`].
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Pass, fail and skip counts, as the runner's own summary line gives them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Counts {
    pub passed: u64,
    /// Failed and errored tests (pytest's errors, Surefire's errors, nextest's timeouts).
    pub failed: u64,
    /// Skipped, ignored, todo and expected-failure tests.
    pub skipped: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }
}

/// What a scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Scan {
    /// Failed and errored tests (status [`TestStatus::Failed`] or [`TestStatus::Error`]), in the
    /// order the log first names them, each test once.
    pub failures: Vec<TestCase>,
    /// The runner whose output was recognised: that of the first failure, else the first runner
    /// seen. One of `cargo`, `pytest`, `jest`, `vitest`, `go`, `maven`, `playwright`, `generic`.
    pub runner: Option<&'static str>,
    /// The runner's summed summary lines (`test result: …`, `=== 1 failed … ===`, `Tests: …`),
    /// when it printed any. Go prints none.
    pub counts: Option<Counts>,
    /// Whether failures past [`MAX_FAILURES`] were left out.
    pub truncated: bool,
}

/// Scans a stored step log from its first line to its last, reading it in bounded chunks.
pub fn scan_log(reader: &LogReader) -> logs::Result<Scan> {
    let path = reader.data_path();
    let io_error = |source| logs::Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_error)?;
    // Only the bytes of the reader's lines: a writer may be appending past them.
    let mut data = BufReader::with_capacity(READ_BUFFER_BYTES, file.take(reader.byte_len()));
    let mut scanner = LogScanner::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if data.read_until(b'\n', &mut line).map_err(io_error)? == 0 {
            break;
        }
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        // testloop's own notes (`[testloop] exited with code 1`) are not the runner's output.
        if !body.starts_with(NOTE_PREFIX.as_bytes()) {
            scanner.feed(&String::from_utf8_lossy(body));
        }
    }
    Ok(scanner.finish())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Runner {
    Cargo,
    Pytest,
    Jest,
    Vitest,
    Go,
    Maven,
    Playwright,
    Generic,
}

const RUNNERS: usize = 8;

impl Runner {
    fn as_str(self) -> &'static str {
        match self {
            Runner::Cargo => "cargo",
            Runner::Pytest => "pytest",
            Runner::Jest => "jest",
            Runner::Vitest => "vitest",
            Runner::Go => "go",
            Runner::Maven => "maven",
            Runner::Playwright => "playwright",
            Runner::Generic => "generic",
        }
    }
}

/// A failure's message lines, bounded as it grows.
#[derive(Debug, Clone, Default)]
struct Message {
    text: String,
    lines: usize,
    full: bool,
}

impl Message {
    fn push(&mut self, line: &str) {
        let line = line.trim();
        if self.full || !is_meaningful(line) {
            return;
        }
        if self.lines == MAX_MESSAGE_LINES {
            self.full = true;
            return;
        }
        let separator = usize::from(!self.text.is_empty());
        let room = MAX_MESSAGE_BYTES.saturating_sub(self.text.len() + separator);
        // Room for at least one character and the `…` that marks the cut.
        if line.len() > room && room <= '…'.len_utf8() {
            self.full = true;
            return;
        }
        if separator == 1 {
            self.text.push('\n');
        }
        self.text.push_str(&cut_line(line, room));
        self.lines += 1;
        if line.len() > room {
            self.full = true;
        }
    }

    fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// Which of two messages says more: more lines, then more text.
    fn richness(&self) -> (usize, usize) {
        (self.lines, self.text.len())
    }
}

/// A failure being read or kept, with the runner that printed it.
#[derive(Debug, Clone)]
struct Failure {
    runner: Runner,
    case: TestCase,
    message: Message,
}

impl Failure {
    fn new(runner: Runner, name: &str, status: TestStatus) -> Self {
        Failure {
            runner,
            case: TestCase {
                suite: String::new(),
                class: None,
                name: cut_line(name.trim(), MAX_NAME_BYTES).into_owned(),
                status,
                duration_ms: None,
                message: None,
                failure_type: None,
                file: None,
                line: None,
                details: None,
            },
            message: Message::default(),
        }
    }

    fn in_suite(mut self, suite: &str) -> Self {
        self.case.suite = cut_line(suite.trim(), MAX_NAME_BYTES).into_owned();
        self
    }

    fn with_duration(mut self, duration_ms: Option<u64>) -> Self {
        self.case.duration_ms = duration_ms;
        self
    }

    /// Records where the failure happened, unless a place is already known.
    fn locate(&mut self, file: &str, line: u32) {
        if self.case.file.is_none() {
            self.set_location(file, line);
        }
    }

    fn set_location(&mut self, file: &str, line: u32) {
        self.case.file = Some(cut_line(file, MAX_NAME_BYTES).into_owned());
        self.case.line = Some(line);
    }

    fn set_type(&mut self, failure_type: &str) {
        if self.case.failure_type.is_none() && !failure_type.is_empty() {
            self.case.failure_type = Some(cut_line(failure_type, MAX_NAME_BYTES).into_owned());
        }
    }

    fn into_case(self) -> TestCase {
        let mut case = self.case;
        if !self.message.is_empty() {
            case.message = Some(self.message.text);
        }
        case
    }

    /// Whether `self` and `other` are the same test named in two places of one log.
    fn same_test(&self, other: &Failure) -> bool {
        fn compatible(a: &str, b: &str) -> bool {
            a.is_empty() || b.is_empty() || a == b
        }
        let (a, b) = (&self.case, &other.case);
        self.runner == other.runner
            && compatible(&a.suite, &b.suite)
            && compatible(
                a.class.as_deref().unwrap_or(""),
                b.class.as_deref().unwrap_or(""),
            )
            && (a.name == b.name
                || (self.runner == Runner::Pytest && pytest_same_node(&a.name, &b.name)))
    }

    /// Folds what `other` knows into `self`: the richer message, and whatever `self` lacks.
    fn merge(&mut self, other: Failure) {
        if other.message.richness() > self.message.richness() {
            self.message = other.message;
        }
        let (a, b) = (&mut self.case, other.case);
        // pytest's node id (`path::test`) says more than a section's `test`.
        if b.name.len() > a.name.len() {
            a.name = b.name;
        }
        if a.suite.is_empty() {
            a.suite = b.suite;
        }
        if a.class.is_none() {
            a.class = b.class;
        }
        let better_place =
            a.file.is_none() || (a.line.is_none() && a.file == b.file && b.line.is_some());
        if better_place && b.file.is_some() {
            a.file = b.file;
            a.line = b.line;
        }
        if a.failure_type.is_none() {
            a.failure_type = b.failure_type;
        }
        if a.duration_ms.is_none() {
            a.duration_ms = b.duration_ms;
        }
    }
}

/// Failures, deduplicated and bounded.
#[derive(Debug, Default)]
struct Found {
    failures: Vec<Failure>,
    truncated: bool,
}

impl Found {
    fn record(&mut self, failure: Failure) {
        if let Some(known) = self.failures.iter_mut().find(|f| f.same_test(&failure)) {
            known.merge(failure);
        } else if self.failures.len() == MAX_FAILURES {
            self.truncated = true;
        } else {
            self.failures.push(failure);
        }
    }

    /// Forgets a failure the runner later reports as passed (a retry that passed: flaky).
    fn forget(&mut self, passed: &Failure) {
        self.failures.retain(|f| !f.same_test(passed));
    }
}

/// What a line means to the failure being read.
enum Step {
    /// The line belongs to it.
    Take,
    /// The line belongs to it and ends it.
    End,
    /// The line ends it and must be read again as a line of its own.
    Pass,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// cargo test's `---- name stdout ----` section.
    CargoSection,
    /// The output nextest prints under a `FAIL [ …s] binary name` line.
    Nextest,
    /// pytest's `____ name ____` section.
    Pytest,
    /// Jest's `● Suite › name` block.
    Jest,
    /// Vitest's `FAIL  file > suite > name` block.
    Vitest,
    /// Lines under go test's `--- FAIL: name`, indented deeper than it.
    Go { indent: usize },
    /// A Go panic and its goroutine dump.
    GoPanic,
    /// Surefire's `name  Time elapsed: … <<< FAILURE!` and its stack trace.
    Maven,
    /// An entry of the JUnit console launcher's `Failures (n):` list.
    JUnitConsole,
    /// Playwright's `1) [project] › file:line:col › title` block.
    Playwright,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Before the message (cargo: captured output before the panic).
    Before,
    /// Reading message lines.
    Message,
    /// Past the message: stack frames, code frames.
    Frames,
    /// Nothing more to take.
    Done,
}

/// The failure whose body is being read.
#[derive(Debug)]
struct Block {
    kind: Kind,
    failure: Failure,
    stage: Stage,
    /// Whether the location came from a frame in the test's own file, which later frames (in
    /// helpers or libraries) must not replace.
    preferred: bool,
}

impl Block {
    fn new(kind: Kind, failure: Failure) -> Self {
        Block {
            kind,
            failure,
            stage: Stage::Before,
            preferred: false,
        }
    }

    /// Offers a stack frame's location: the first frame in the test's own file (its suite) wins,
    /// else the first frame.
    fn offer_location(&mut self, file: &str, line: u32) {
        if self.preferred {
            return;
        }
        let suite = self.failure.case.suite.as_str();
        let own = !suite.is_empty()
            && (file == suite
                || file
                    .strip_suffix(suite)
                    .is_some_and(|head| head.ends_with('/')));
        if own {
            // A relative path that names the suite reads better than the runner's absolute one.
            let suite = suite.to_owned();
            self.failure.set_location(&suite, line);
            self.preferred = true;
        } else {
            self.failure.locate(file, line);
        }
    }

    fn push_first_line(&mut self, trimmed: &str) {
        if self.failure.message.is_empty()
            && let Some(kind) = error_type(trimmed)
        {
            self.failure.set_type(kind);
        }
        self.failure.message.push(trimmed);
    }
}

/// The Go test whose output is streaming, and the output of tests not finished yet.
#[derive(Debug, Default)]
struct GoState {
    current: Option<String>,
    pending: VecDeque<Failure>,
    /// Failures from this index on were reported since the last package line, which names their
    /// package.
    package_from: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListKind {
    Failed,
    Flaky,
    Other,
}

/// The fallback: failures recognised without a runner, kept aside until the end, when they are
/// reported only if no runner was seen.
#[derive(Debug, Default)]
struct Generic {
    found: Found,
    open: Option<GenericBlock>,
    /// A Python "During handling of the above exception" note: the next traceback continues the
    /// last failure.
    chained: bool,
    /// Whether the last failure closed was named by its exception line.
    last_named_by_exception: bool,
}

#[derive(Debug)]
struct GenericBlock {
    failure: Failure,
    traceback: bool,
    /// Whether the name is the exception line, to be replaced by that of a chained exception.
    named_by_exception: bool,
}

/// Recognises test failures in a log fed to it one line at a time.
#[derive(Debug, Default)]
pub struct LogScanner {
    found: Found,
    block: Option<Block>,
    first_runner: Option<Runner>,
    seen: [bool; RUNNERS],
    counts: [Option<Counts>; RUNNERS],
    /// nextest's `Summary` line, which wins over the libtest lines nextest echoes.
    nextest_counts: Option<Counts>,
    /// The binary cargo test is running (`Running unittests src/lib.rs (…/calc-0123abcd)`).
    cargo_suite: String,
    /// Reading the names under libtest's second `failures:` line.
    cargo_list: bool,
    /// The file of the last `FAIL file` line (Jest names tests relative to it).
    jest_file: Option<String>,
    go: GoState,
    /// The class Surefire is running (`Running com.example.CalculatorTest`).
    maven_class: String,
    /// Inside Surefire's `Results:` `Failures:` / `Errors:` / `Flakes:` lists.
    maven_results: Option<ListKind>,
    /// Inside the JUnit console launcher's `Failures (n):` list.
    junit_failures: bool,
    /// Under Playwright's `n failed` / `n flaky` summary lines.
    playwright_list: Option<ListKind>,
    generic: Generic,
}

impl LogScanner {
    /// A scanner that has read nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads one line of the log (without its newline; ANSI escapes allowed).
    pub fn feed(&mut self, line: &str) {
        let line = cut_at_boundary(line, MAX_LINE_BYTES);
        if !self.wants_every_line() && !self.may_matter(line.as_bytes()) {
            return;
        }
        let text = clean(line);
        self.process(&text);
    }

    /// The failures found, the runner and its counts.
    pub fn finish(mut self) -> Scan {
        self.close_block();
        if let Some(open) = self.generic.open.take() {
            self.generic.found.record(open.failure);
        }
        let runner_seen = self.first_runner.is_some();
        let found = if runner_seen {
            self.found
        } else {
            self.generic.found
        };
        let runner = match (found.failures.first(), self.first_runner) {
            (Some(failure), _) => Some(failure.runner),
            (None, Some(runner)) => Some(runner),
            (None, None) => None,
        };
        let counts = runner.and_then(|runner| match runner {
            Runner::Cargo => self.nextest_counts.or(self.counts[Runner::Cargo as usize]),
            other => self.counts[other as usize],
        });
        Scan {
            failures: found.failures.into_iter().map(Failure::into_case).collect(),
            runner: runner.map(Runner::as_str),
            counts,
            truncated: found.truncated,
        }
    }

    /// Whether every line must be read: a failure's body or a list is being read.
    fn wants_every_line(&self) -> bool {
        self.block.is_some()
            || self.generic.open.is_some()
            || self.cargo_list
            || self.maven_results.is_some()
            || self.junit_failures
            || self.playwright_list.is_some()
    }

    /// A cheap look at the raw line: whether it could start something a runner prints.
    fn may_matter(&self, raw: &[u8]) -> bool {
        if self.go.current.is_some() && raw.starts_with(b"    ") {
            return true;
        }
        let Some(&first) = raw.iter().find(|&&b| b != b' ' && b != b'\t') else {
            return false;
        };
        match first {
            // Escapes and carriage returns: the line must be cleaned to be judged.
            0..=0x1f | 0x7f => true,
            // `test `, `thread '`, `---- `/`--- FAIL:`, `failures:`, `Running `, `Doc-tests`,
            // `FAIL`, `PASS`, `SIGSEGV`/`Summary`, `TIMEOUT`/`Tests`/`Traceback`/`The above`,
            // `ABORT`, `LEAK`, `____`, `E   `, `Error:`/`ERROR`, `error:`, `===`, `[INFO]`,
            // `ok`, `panic:`, `During handling`.
            b't' | b'-' | b'f' | b'R' | b'D' | b'F' | b'P' | b'S' | b'T' | b'A' | b'L' | b'_'
            | b'E' | b'e' | b'=' | b'[' | b'o' | b'p' => true,
            // Playwright's `1) [project] › …` and `2 failed`.
            b'0'..=b'9' => {
                let rest = raw.iter().skip_while(|b| **b == b' ' || **b == b'\t');
                let mut rest = rest.skip_while(|b| b.is_ascii_digit());
                matches!(rest.next(), Some(b')' | b' '))
            }
            // `●` (Jest), `⎯` and `❯` (Vitest), `─` (nextest) all start with this byte.
            0xe2 => true,
            // `JUnit Jupiter:…` entries are read as a list; `MethodSource` only inside one.
            _ => false,
        }
    }

    fn seen(&mut self, runner: Runner) {
        self.seen[runner as usize] = true;
        if self.first_runner.is_none() {
            self.first_runner = Some(runner);
        }
    }

    fn has_seen(&self, runner: Runner) -> bool {
        self.seen[runner as usize]
    }

    fn add_counts(&mut self, runner: Runner, counts: Counts) {
        self.seen(runner);
        self.counts[runner as usize]
            .get_or_insert_with(Counts::default)
            .add(counts);
    }

    fn process(&mut self, text: &str) {
        if let Some(block) = self.block.as_mut() {
            match block_line(block, text) {
                Step::Take => return,
                Step::End => {
                    self.close_block();
                    return;
                }
                Step::Pass => self.close_block(),
            }
        }
        let recognised = self.runner_line(text);
        if !recognised && self.first_runner.is_none() {
            self.generic_line(text);
        }
    }

    fn open(&mut self, kind: Kind, failure: Failure) {
        self.close_block();
        self.seen(failure.runner);
        self.block = Some(Block::new(kind, failure));
    }

    fn close_block(&mut self) {
        let Some(block) = self.block.take() else {
            return;
        };
        let mut failure = block.failure;
        match block.kind {
            Kind::Pytest => finish_pytest_section(&mut failure),
            // The console launcher says "failed" of all; Surefire's rule tells errors apart: an
            // exception that is not an assertion's.
            Kind::JUnitConsole
                if failure
                    .case
                    .failure_type
                    .as_deref()
                    .is_some_and(|t| !is_assertion_type(t)) =>
            {
                failure.case.status = TestStatus::Error;
            }
            _ => {}
        }
        self.record(failure);
    }

    fn record(&mut self, failure: Failure) {
        if failure.runner == Runner::Go && failure.case.name.contains('/') {
            // A Go test fails when one of its subtests does; the subtest is the failure to read,
            // so a parent that said nothing of its own is dropped for it.
            let from = self.go.package_from.min(self.found.failures.len());
            let name = failure.case.name.as_str();
            let mut index = from;
            while index < self.found.failures.len() {
                let known = &self.found.failures[index];
                let is_parent = known.runner == Runner::Go
                    && known.message.is_empty()
                    && name
                        .strip_prefix(known.case.name.as_str())
                        .is_some_and(|rest| rest.starts_with('/'));
                if is_parent {
                    self.found.failures.remove(index);
                } else {
                    index += 1;
                }
            }
        }
        self.found.record(failure);
    }

    /// Lines a runner prints outside a failure's body. Returns whether the line was recognised.
    fn runner_line(&mut self, text: &str) -> bool {
        let trimmed = text.trim();
        let indent = text.len() - text.trim_start().len();
        if self.list_line(text, trimmed, indent) {
            return true;
        }
        let Some(first) = trimmed.chars().next() else {
            return false;
        };
        match first {
            't' => self.cargo_line(text, trimmed),
            '-' => self.cargo_section(text) || self.go_result(trimmed, indent),
            'f' => self.cargo_line(text, trimmed),
            'R' => self.running_line(trimmed),
            'D' => self.cargo_line(text, trimmed),
            'S' => self.nextest_line(trimmed) || self.nextest_summary(trimmed),
            'F' => {
                self.nextest_line(trimmed)
                    || self.pytest_short(trimmed)
                    || self.js_file_line(trimmed)
                    || self.go_package(text)
                    || self.junit_failures_header(trimmed)
            }
            'P' | 'A' | 'L' => self.nextest_line(trimmed) || self.js_file_line(trimmed),
            'T' => {
                self.nextest_line(trimmed)
                    || self.js_counts(trimmed)
                    || self.junit_console_marker(trimmed)
            }
            'E' => self.pytest_short(trimmed),
            '_' => self.pytest_section(text),
            '=' => self.pytest_rule(trimmed) || self.go_run(trimmed),
            '[' => self.maven_line(text) || self.junit_counts(trimmed),
            'o' => self.go_package(text),
            'p' => self.go_idle_panic(text),
            '0'..='9' => self.playwright_header(trimmed) || self.playwright_counts(trimmed),
            '●' => self.jest_block(trimmed),
            // Vitest's rules (`⎯⎯⎯ Failed Tests 2 ⎯⎯⎯`); its `❯` is also many a shell's prompt.
            '⎯' => {
                self.seen(Runner::Vitest);
                true
            }
            '─' => true,
            _ => false,
        }
    }

    /// Lines of a list the scanner is inside: libtest's `failures:` names, Surefire's results,
    /// the JUnit console's failures, Playwright's failed and flaky tests. Lines that end a list
    /// end it and are read as usual.
    fn list_line(&mut self, text: &str, trimmed: &str, indent: usize) -> bool {
        if self.go.current.is_some() && indent >= 4 && !trimmed.starts_with("--- ") {
            self.go_output(text, trimmed);
            return true;
        }
        if self.cargo_list {
            if trimmed.is_empty() {
                return true;
            }
            if indent >= 4 {
                let failure = Failure::new(Runner::Cargo, trimmed, TestStatus::Failed)
                    .in_suite(&self.cargo_suite);
                self.record(failure);
                return true;
            }
            self.cargo_list = false;
        }
        if let Some(kind) = self.maven_results {
            if let Some((_, body)) = maven_body(text)
                && body.starts_with(' ')
                && !body.trim().is_empty()
            {
                self.maven_result_entry(kind, body.trim());
                return true;
            }
            self.maven_results = None;
        }
        if self.junit_failures {
            if indent == 2 && !trimmed.is_empty() {
                let name = junit_console_name(trimmed);
                let failure = Failure::new(Runner::Maven, &name, TestStatus::Failed);
                self.open(Kind::JUnitConsole, failure);
                return true;
            }
            self.junit_failures = false;
            if trimmed.is_empty() {
                return true;
            }
        }
        if let Some(kind) = self.playwright_list {
            if indent >= 4
                && let Some(title) = playwright_title(trimmed)
            {
                let failure = title.failure(TestStatus::Failed);
                match kind {
                    ListKind::Failed => self.record(failure),
                    ListKind::Flaky => self.found.forget(&failure),
                    ListKind::Other => {}
                }
                return true;
            }
            self.playwright_list = None;
        }
        false
    }

    // cargo test

    fn cargo_line(&mut self, text: &str, trimmed: &str) -> bool {
        if text == "failures:" {
            self.seen(Runner::Cargo);
            self.cargo_list = true;
            return true;
        }
        if let Some(rest) = text.strip_prefix("test result: ") {
            let counts = rest
                .split_once(". ")
                .and_then(|(_, items)| parse_counts(items.split("; ")));
            if let Some(counts) = counts {
                self.add_counts(Runner::Cargo, counts);
                return true;
            }
            return false;
        }
        if let Some(rest) = text.strip_prefix("test ")
            && let Some((name, result)) = rest.rsplit_once(" ... ")
            && !name.is_empty()
        {
            self.seen(Runner::Cargo);
            if result == "FAILED" {
                let failure = Failure::new(Runner::Cargo, name, TestStatus::Failed)
                    .in_suite(&self.cargo_suite);
                self.record(failure);
            }
            return true;
        }
        if let Some(crate_name) = trimmed.strip_prefix("Doc-tests ") {
            self.seen(Runner::Cargo);
            self.cargo_suite = crate_name.trim().to_owned();
            return true;
        }
        false
    }

    fn cargo_section(&mut self, text: &str) -> bool {
        let Some(name) = cargo_section_name(text) else {
            return false;
        };
        let failure =
            Failure::new(Runner::Cargo, name, TestStatus::Failed).in_suite(&self.cargo_suite);
        self.open(Kind::CargoSection, failure);
        true
    }

    /// cargo's `Running unittests src/lib.rs (target/debug/deps/calc-0123abcd)` and
    /// Playwright's `Running 5 tests using 1 worker`.
    fn running_line(&mut self, trimmed: &str) -> bool {
        let Some(rest) = trimmed.strip_prefix("Running ") else {
            return false;
        };
        if rest.contains(" tests using ") || rest.contains(" test using ") {
            self.seen(Runner::Playwright);
            return true;
        }
        if let Some(binary) = rest
            .strip_suffix(')')
            .and_then(|r| r.rsplit_once(" ("))
            .map(|(_, path)| path)
        {
            let file = binary.rsplit('/').next().unwrap_or(binary);
            // Test binaries are named `crate-<16 hex digits>`.
            let name = match file.rsplit_once('-') {
                Some((name, hash)) if hash.bytes().all(|b| b.is_ascii_hexdigit()) => name,
                _ => file,
            };
            self.seen(Runner::Cargo);
            self.cargo_suite = name.to_owned();
            return true;
        }
        false
    }

    // cargo-nextest

    fn nextest_line(&mut self, trimmed: &str) -> bool {
        let Some(status) = NextestStatus::parse(trimmed) else {
            return false;
        };
        let Some(outcome) = status.outcome() else {
            return false;
        };
        let failure = Failure::new(
            Runner::Cargo,
            status.name,
            outcome.unwrap_or(TestStatus::Failed),
        )
        .in_suite(status.binary)
        .with_duration(status.duration_ms);
        match outcome {
            Some(_) => self.open(Kind::Nextest, failure),
            // A retry that passed: the test is flaky, not failed.
            None => {
                self.seen(Runner::Cargo);
                self.found.forget(&failure);
            }
        }
        true
    }

    fn nextest_summary(&mut self, trimmed: &str) -> bool {
        let Some(counts) = trimmed
            .strip_prefix("Summary [")
            .and_then(|rest| rest.split_once("] "))
            .and_then(|(_, rest)| rest.split_once("run: "))
            .and_then(|(_, items)| parse_counts(items.split(", ")))
        else {
            return false;
        };
        self.seen(Runner::Cargo);
        self.nextest_counts
            .get_or_insert_with(Counts::default)
            .add(counts);
        true
    }

    // pytest

    fn pytest_section(&mut self, text: &str) -> bool {
        let Some(name) = pytest_section_name(text) else {
            return false;
        };
        self.open(
            Kind::Pytest,
            Failure::new(Runner::Pytest, name, TestStatus::Failed),
        );
        true
    }

    /// `=== test session starts ===`, `=== 1 failed, 3 passed in 0.12s ===` and other rules.
    fn pytest_rule(&mut self, trimmed: &str) -> bool {
        if !(trimmed.starts_with("==") && trimmed.ends_with("==")) {
            return false;
        }
        let inner = trimmed.trim_matches('=').trim();
        if inner == "test session starts" {
            self.seen(Runner::Pytest);
        } else if let Some(counts) = pytest_counts(inner) {
            self.add_counts(Runner::Pytest, counts);
        }
        true
    }

    /// The short test summary: `FAILED tests/test_x.py::test_y - message`, `ERROR …`.
    fn pytest_short(&mut self, trimmed: &str) -> bool {
        let (status, rest) = if let Some(rest) = trimmed.strip_prefix("FAILED ") {
            (TestStatus::Failed, rest)
        } else if let Some(rest) = trimmed.strip_prefix("ERROR ") {
            (TestStatus::Error, rest)
        } else {
            return false;
        };
        let (node, message) = match rest.split_once(" - ") {
            Some((node, message)) => (node, Some(message)),
            None => (rest, None),
        };
        let node = node.trim();
        let file = node.split("::").next().unwrap_or(node);
        if node.contains(' ') || !file.contains(".py") {
            return false;
        }
        let mut failure = Failure::new(Runner::Pytest, node, status).in_suite(file);
        if let Some(message) = message {
            failure.message.push(message);
        }
        self.seen(Runner::Pytest);
        self.record(failure);
        true
    }

    // Jest and Vitest

    /// Jest's `FAIL src/x.test.js` / `PASS …`, Vitest's `FAIL  src/x.test.ts > suite > name`.
    fn js_file_line(&mut self, trimmed: &str) -> bool {
        let (failed, rest) = if let Some(rest) = trimmed.strip_prefix("FAIL ") {
            (true, rest.trim())
        } else if let Some(rest) = trimmed.strip_prefix("PASS ") {
            (false, rest.trim())
        } else {
            return false;
        };
        if rest.is_empty() || rest.starts_with('[') {
            return false;
        }
        if failed && let Some((file, name)) = rest.split_once(" > ") {
            let failure = Failure::new(Runner::Vitest, name, TestStatus::Failed).in_suite(file);
            self.open(Kind::Vitest, failure);
            return true;
        }
        if failed
            && let Some((file, _)) = rest.split_once(" [ ")
            && rest.ends_with(" ]")
        {
            // A test file that failed to load: no test ran.
            let failure = Failure::new(Runner::Vitest, file, TestStatus::Error).in_suite(file);
            self.open(Kind::Vitest, failure);
            return true;
        }
        // Jest adds the time of a slow file: `FAIL src/x.test.js (5.2 s)`.
        let file = match rest.rsplit_once(" (") {
            Some((file, time)) if time.ends_with(')') => file,
            _ => rest,
        };
        // A bare `FAIL something` is too common to mean Jest; Jest's are test files.
        let script = [".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".mts", ".cts"]
            .iter()
            .any(|extension| file.ends_with(extension));
        if file.contains(' ') || !script {
            return false;
        }
        self.seen(Runner::Jest);
        self.jest_file = failed.then(|| file.to_owned());
        true
    }

    fn jest_block(&mut self, trimmed: &str) -> bool {
        let Some(name) = trimmed.strip_prefix("● ") else {
            return false;
        };
        // Jest also prints `● Validation Warning` and the like outside any test file.
        let Some(file) = self.jest_file.clone() else {
            return false;
        };
        if name.trim() == "Console" {
            // What the file's tests logged, not a failure.
            self.close_block();
            return true;
        }
        // The file could not even be loaded: no test reached an assertion.
        let status = if name.trim() == "Test suite failed to run" {
            TestStatus::Error
        } else {
            TestStatus::Failed
        };
        let failure = Failure::new(Runner::Jest, name, status).in_suite(&file);
        self.open(Kind::Jest, failure);
        true
    }

    /// Jest's `Tests: 1 failed, 3 passed, 4 total`, Vitest's `Tests  1 failed | 3 passed (4)`.
    fn js_counts(&mut self, trimmed: &str) -> bool {
        if let Some(items) = trimmed.strip_prefix("Tests:") {
            if let Some(counts) = parse_counts(items.split(", ")) {
                self.add_counts(Runner::Jest, counts);
                return true;
            }
            return false;
        }
        if let Some(items) = trimmed.strip_prefix("Tests ")
            && let Some((items, _total)) = items.trim().rsplit_once(" (")
            && let Some(counts) = parse_counts(items.split(" | "))
        {
            self.add_counts(Runner::Vitest, counts);
            return true;
        }
        if trimmed.starts_with("Test Files ") {
            self.seen(Runner::Vitest);
            return true;
        }
        false
    }

    // go test

    fn go_run(&mut self, trimmed: &str) -> bool {
        let Some(rest) = trimmed.strip_prefix("=== ") else {
            return false;
        };
        let Some((verb, name)) = rest.split_once(' ') else {
            return false;
        };
        let name = name.trim();
        match verb {
            "RUN" | "CONT" | "NAME" => self.go.current = Some(name.to_owned()),
            "PAUSE" => self.go.current = None,
            _ => return false,
        }
        self.seen(Runner::Go);
        true
    }

    /// Output of the running test (`go test -v` streams it before the test's result line).
    fn go_output(&mut self, text: &str, trimmed: &str) {
        let Some(current) = self.go.current.as_deref() else {
            return;
        };
        let index = self.go.pending.iter().position(|f| f.case.name == current);
        let index = match index {
            Some(index) => index,
            // Output that does not start with `file.go:line:` continues a test's earlier line.
            None if go_location(trimmed).is_some() => {
                if self.go.pending.len() == MAX_GO_PENDING {
                    self.go.pending.pop_front();
                }
                self.go
                    .pending
                    .push_back(Failure::new(Runner::Go, current, TestStatus::Failed));
                self.go.pending.len() - 1
            }
            None => return,
        };
        if let Some(failure) = self.go.pending.get_mut(index) {
            go_message_line(failure, text);
        }
    }

    /// `--- FAIL: TestX (0.00s)`, `--- PASS: …`, `--- SKIP: …`.
    fn go_result(&mut self, trimmed: &str, indent: usize) -> bool {
        let Some(rest) = trimmed.strip_prefix("--- ") else {
            return false;
        };
        let Some((verb, rest)) = rest.split_once(": ") else {
            return false;
        };
        let (name, duration_ms) = match rest.rsplit_once(" (") {
            Some((name, time)) => (name.trim(), time.strip_suffix(')').and_then(parse_seconds)),
            None => (rest.trim(), None),
        };
        let pending = self
            .go
            .pending
            .iter()
            .position(|f| f.case.name == name)
            .and_then(|index| self.go.pending.remove(index));
        if self.go.current.as_deref() == Some(name) {
            self.go.current = None;
        }
        match verb {
            "FAIL" => {
                let failure = pending
                    .unwrap_or_else(|| Failure::new(Runner::Go, name, TestStatus::Failed))
                    .with_duration(duration_ms);
                self.open(Kind::Go { indent }, failure);
            }
            "PASS" | "SKIP" => self.seen(Runner::Go),
            _ => return false,
        }
        true
    }

    /// `FAIL\tpkg\t0.01s`, `ok  \tpkg\t0.01s`, `FAIL\tpkg [build failed]`, and the bare `FAIL` go
    /// test ends with.
    fn go_package(&mut self, text: &str) -> bool {
        if text == "FAIL" || text == "PASS" {
            return self.has_seen(Runner::Go);
        }
        let Some((verb, rest)) = text.split_once('\t') else {
            return false;
        };
        if verb != "FAIL" && verb.trim_end() != "ok" {
            return false;
        }
        let package = rest.split(['\t', ' ']).next().unwrap_or(rest);
        if package.is_empty() {
            return false;
        }
        self.go.current = None;
        self.go.pending.clear();
        if let Some(reason) = ["[build failed]", "[setup failed]"]
            .into_iter()
            .find(|reason| rest.contains(reason))
        {
            let mut failure =
                Failure::new(Runner::Go, package, TestStatus::Error).in_suite(package);
            failure.message.push(reason.trim_matches(['[', ']']));
            self.seen(Runner::Go);
            self.record(failure);
        }
        let from = self.go.package_from.min(self.found.failures.len());
        for failure in &mut self.found.failures[from..] {
            if failure.runner == Runner::Go && failure.case.suite.is_empty() {
                failure.case.suite = package.to_owned();
            }
        }
        self.go.package_from = self.found.failures.len();
        self.seen(Runner::Go);
        true
    }

    /// A `panic:` outside a `--- FAIL` block, as when the test binary's timeout fires.
    fn go_idle_panic(&mut self, text: &str) -> bool {
        if !text.starts_with("panic: ") || !self.has_seen(Runner::Go) {
            return false;
        }
        let name = self.go.current.clone().unwrap_or_else(|| text.to_owned());
        let mut failure = Failure::new(Runner::Go, &name, TestStatus::Error);
        failure.message.push(text);
        self.open(Kind::GoPanic, failure);
        true
    }

    // Maven Surefire and the JUnit console launcher

    fn maven_line(&mut self, text: &str) -> bool {
        let Some((_, body)) = maven_body(text) else {
            return false;
        };
        let body_trimmed = body.trim();
        if body_trimmed == "T E S T S" || body_trimmed == "Results:" {
            self.seen(Runner::Maven);
            return true;
        }
        if let Some(class) = body_trimmed.strip_prefix("Running ") {
            if !class.contains(' ') {
                self.seen(Runner::Maven);
                self.maven_class = class.to_owned();
                return true;
            }
            return false;
        }
        if let Some(kind) = match body_trimmed {
            "Failures:" => Some(ListKind::Failed),
            "Errors:" => Some(ListKind::Other),
            "Flakes:" => Some(ListKind::Flaky),
            _ => None,
        } {
            self.seen(Runner::Maven);
            self.maven_results = Some(kind);
            return true;
        }
        if let Some(numbers) = body_trimmed.strip_prefix("Tests run: ") {
            self.seen(Runner::Maven);
            if body_trimmed.contains("Time elapsed") {
                // A class's line: `… Time elapsed: 0.1 s <<< FAILURE! - in com.example.XTest`.
                if let Some((_, class)) = body_trimmed.rsplit_once(" in ") {
                    self.maven_class = class.trim().to_owned();
                }
            } else if let Some(counts) = surefire_counts(numbers) {
                self.add_counts(Runner::Maven, counts);
            }
            return true;
        }
        let status = if body_trimmed.ends_with("<<< FAILURE!") {
            TestStatus::Failed
        } else if body_trimmed.ends_with("<<< ERROR!") {
            TestStatus::Error
        } else {
            return false;
        };
        let Some((id, timing)) = body_trimmed.split_once("Time elapsed") else {
            return false;
        };
        let id = id.trim().trim_end_matches('-').trim();
        let duration_ms = timing
            .trim_start_matches(':')
            .split_whitespace()
            .next()
            .and_then(parse_seconds);
        // `testAdd`, `testAdd(com.example.XTest)` (Surefire 2 with JUnit 4) or
        // `com.example.XTest.testAdd` (Surefire 3).
        let (class, method) = if let Some((method, class)) = id
            .strip_suffix(')')
            .and_then(|id| id.split_once('('))
            .filter(|(_, class)| !class.contains(' ') && !class.is_empty())
        {
            (class.to_owned(), method)
        } else if !self.maven_class.is_empty()
            && let Some(method) = id
                .strip_prefix(self.maven_class.as_str())
                .and_then(|m| m.strip_prefix('.'))
        {
            (self.maven_class.clone(), method)
        } else {
            (self.maven_class.clone(), id)
        };
        let simple = class.rsplit('.').next().unwrap_or(&class);
        let name = if simple.is_empty() {
            method.to_owned()
        } else {
            format!("{simple}.{method}")
        };
        let failure = Failure::new(Runner::Maven, &name, status)
            .in_suite(&class)
            .with_duration(duration_ms);
        self.open(Kind::Maven, failure);
        true
    }

    /// An entry of Surefire's results: `CalculatorTest.testAdd:12 expected: <3> but was: <4>`.
    fn maven_result_entry(&mut self, kind: ListKind, entry: &str) {
        let (id, message) = entry.split_once(' ').unwrap_or((entry, ""));
        let (name, line) = match id.rsplit_once(':') {
            Some((name, line)) if !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit()) => {
                (name, line.parse().ok())
            }
            _ => (id, None),
        };
        // Continuation lines (`Run 1: …`, a stack frame) do not start with `SimpleClass.method`.
        let simple_class = name.split('.').next().unwrap_or("");
        if !name.contains('.') || !simple_class.starts_with(|c: char| c.is_ascii_uppercase()) {
            return;
        }
        let status = match kind {
            ListKind::Other => TestStatus::Error,
            _ => TestStatus::Failed,
        };
        let mut failure = Failure::new(Runner::Maven, name, status);
        failure.case.line = line;
        failure
            .message
            .push(message.trim().trim_start_matches('»').trim());
        match kind {
            ListKind::Flaky => self.found.forget(&failure),
            _ => self.record(failure),
        }
    }

    fn junit_failures_header(&mut self, trimmed: &str) -> bool {
        if trimmed.starts_with("Failures (") && trimmed.ends_with("):") {
            self.seen(Runner::Maven);
            self.junit_failures = true;
            return true;
        }
        false
    }

    fn junit_console_marker(&mut self, trimmed: &str) -> bool {
        if trimmed.starts_with("Test run finished after ") {
            self.seen(Runner::Maven);
            return true;
        }
        false
    }

    /// The JUnit console launcher's `[         2 tests successful      ]`.
    fn junit_counts(&mut self, trimmed: &str) -> bool {
        let Some(inner) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) else {
            return false;
        };
        let mut words = inner.split_whitespace();
        let (Some(number), Some("tests"), Some(what), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return false;
        };
        let Ok(number) = number.parse::<u64>() else {
            return false;
        };
        let mut counts = Counts::default();
        match what {
            "successful" => counts.passed = number,
            "failed" => counts.failed = number,
            "skipped" | "aborted" => counts.skipped = number,
            _ => {
                self.seen(Runner::Maven);
                return true;
            }
        }
        self.add_counts(Runner::Maven, counts);
        true
    }

    // Playwright

    fn playwright_header(&mut self, trimmed: &str) -> bool {
        let Some((number, rest)) = trimmed.split_once(") ") else {
            return false;
        };
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        let Some(title) = playwright_title(rest) else {
            return false;
        };
        self.open(Kind::Playwright, title.failure(TestStatus::Failed));
        true
    }

    /// `2 failed`, `3 passed (4.9s)`, `1 skipped`, `1 flaky`, printed once Playwright ran.
    fn playwright_counts(&mut self, trimmed: &str) -> bool {
        if !self.has_seen(Runner::Playwright) {
            return false;
        }
        let Some((number, rest)) = trimmed.split_once(' ') else {
            return false;
        };
        let Ok(number) = number.parse::<u64>() else {
            return false;
        };
        let word = rest.split_whitespace().next().unwrap_or("");
        let mut counts = Counts::default();
        let list = match word {
            "failed" => {
                counts.failed = number;
                ListKind::Failed
            }
            "flaky" => {
                counts.passed = number;
                ListKind::Flaky
            }
            "passed" => {
                counts.passed = number;
                ListKind::Other
            }
            "skipped" => {
                counts.skipped = number;
                ListKind::Other
            }
            "did" | "interrupted" | "error" | "errors" => ListKind::Other,
            _ => return false,
        };
        self.add_counts(Runner::Playwright, counts);
        self.playwright_list = Some(list);
        true
    }

    // The generic fallback

    fn generic_line(&mut self, text: &str) {
        let trimmed = text.trim();
        if let Some(open) = self.generic.open.as_mut() {
            match generic_block_line(open, text, trimmed) {
                Step::Take => return,
                Step::End => {
                    self.close_generic();
                    return;
                }
                Step::Pass => self.close_generic(),
            }
        }
        if trimmed.starts_with("During handling of the above exception")
            || trimmed.starts_with("The above exception was the direct cause")
        {
            self.generic.chained = true;
            return;
        }
        if trimmed == "Traceback (most recent call last):" {
            let chained = std::mem::take(&mut self.generic.chained);
            let previous = if chained {
                self.generic.found.failures.pop()
            } else {
                None
            };
            let (failure, named_by_exception) = match previous {
                // The exception that escaped is the one to report; the earlier one was its cause.
                Some(mut failure) => {
                    failure.message = Message::default();
                    failure.case.failure_type = None;
                    (failure, self.generic.last_named_by_exception)
                }
                None => (
                    Failure::new(Runner::Generic, trimmed, TestStatus::Error),
                    true,
                ),
            };
            self.generic.open = Some(GenericBlock {
                failure,
                traceback: true,
                named_by_exception,
            });
            return;
        }
        if !trimmed.is_empty() {
            self.generic.chained = false;
        }
        let Some((name, status)) = generic_header(trimmed) else {
            return;
        };
        let mut failure = Failure::new(Runner::Generic, name, status);
        if let Some(after) = trimmed.split_once(" panicked at ").map(|(_, after)| after)
            && let Some(panic) = parse_panic_location(after)
        {
            if let Some((file, line)) = panic.location {
                failure.locate(file, line);
            }
            if let Some(message) = panic.inline {
                failure.message.push(message);
            }
        } else if name == trimmed {
            // `Error: connection refused` is its own message.
            failure.message.push(trimmed);
        }
        self.generic.open = Some(GenericBlock {
            failure,
            traceback: false,
            named_by_exception: false,
        });
    }

    fn close_generic(&mut self) {
        if let Some(open) = self.generic.open.take() {
            self.generic.last_named_by_exception = open.named_by_exception;
            self.generic.found.record(open.failure);
        }
    }
}

/// `FAIL: name`, `FAILED name`, `ERROR: name` (unittest and many tools) name a test; `Error: …`,
/// `error: …`, `error[E0425]: …` and Rust panics name nothing, so the line is the name.
fn generic_header(trimmed: &str) -> Option<(&str, TestStatus)> {
    for (word, status) in [
        ("FAILED", TestStatus::Failed),
        ("FAIL", TestStatus::Failed),
        ("ERROR", TestStatus::Error),
    ] {
        if let Some(rest) = trimmed.strip_prefix(word) {
            if rest.starts_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = rest.trim_start_matches(':').trim();
            // unittest's closing `FAILED (failures=1, errors=1)` counts, it names no test.
            if rest.starts_with('(') {
                return None;
            }
            let name = if rest.is_empty() { trimmed } else { rest };
            return Some((name, status));
        }
    }
    let error = trimmed.starts_with("Error:")
        || trimmed.starts_with("error:")
        || trimmed.starts_with("error[")
        || (trimmed.starts_with("thread '") && trimmed.contains(" panicked at "));
    error.then_some((trimmed, TestStatus::Error))
}

fn generic_block_line(open: &mut GenericBlock, text: &str, trimmed: &str) -> Step {
    if open.traceback {
        if trimmed == "Traceback (most recent call last):" {
            return Step::Take;
        }
        if let Some(frame) = trimmed.strip_prefix("File \"")
            && let Some((file, rest)) = frame.split_once("\", line ")
        {
            let line = rest.split(',').next().and_then(|n| n.trim().parse().ok());
            if let Some(line) = line {
                // The innermost frame, printed last, is where the exception was raised.
                open.failure.set_location(file, line);
            }
            return Step::Take;
        }
        if text.starts_with([' ', '\t']) || trimmed.is_empty() {
            return Step::Take;
        }
        // The exception: `KeyError: 'qty'`.
        if let Some(kind) = error_type(trimmed).or_else(|| is_type_name(trimmed).then_some(trimmed))
        {
            open.failure.set_type(kind);
        }
        open.failure.message.push(trimmed);
        if open.named_by_exception {
            open.failure.case.name = cut_line(trimmed, MAX_NAME_BYTES).into_owned();
        }
        return Step::End;
    }
    if trimmed == "Traceback (most recent call last):" {
        // unittest: `FAIL: test_x (module.Class.test_x)`, a rule, then the traceback.
        open.traceback = true;
        open.failure.message = Message::default();
        return Step::Take;
    }
    if trimmed.is_empty() {
        return Step::End;
    }
    // Rules under unittest's headers, and the empty gutter lines of rustc's code frames.
    if trimmed.bytes().all(|b| matches!(b, b'-' | b'=' | b'|')) {
        return Step::Take;
    }
    if generic_header(trimmed).is_some() {
        return Step::Pass;
    }
    if let Some(location) = trimmed.strip_prefix("--> ") {
        // rustc's ` --> src/lib.rs:5:9` under `error[E0308]: …`.
        if let Some((file, line)) = trailing_location(location.trim()) {
            open.failure.locate(file, line);
        }
        return Step::Take;
    }
    if trimmed.starts_with("note: ") || trimmed == "stack backtrace:" {
        return Step::End;
    }
    open.failure.message.push(trimmed);
    if open.failure.message.full {
        return Step::End;
    }
    Step::Take
}

/// The line as it applies to the failure being read.
fn block_line(block: &mut Block, text: &str) -> Step {
    let trimmed = text.trim();
    match block.kind {
        Kind::CargoSection => {
            if cargo_section_name(text).is_some()
                || text == "failures:"
                || text == "successes:"
                || text.starts_with("test result: ")
            {
                return Step::Pass;
            }
            rust_panic_line(block, trimmed);
            Step::Take
        }
        Kind::Nextest => {
            if NextestStatus::parse(trimmed).is_some_and(|s| s.outcome().is_some())
                || trimmed.starts_with("Summary [")
                || trimmed.starts_with('─')
            {
                return Step::Pass;
            }
            rust_panic_line(block, trimmed);
            Step::Take
        }
        Kind::Pytest => pytest_block_line(block, text),
        Kind::Jest => {
            if trimmed.starts_with("● ")
                || trimmed.starts_with("FAIL ")
                || trimmed.starts_with("PASS ")
                || trimmed.starts_with("Test Suites:")
                || trimmed.starts_with("Tests:")
                || trimmed.starts_with("Summary of all failing tests")
            {
                return Step::Pass;
            }
            js_block_line(block, trimmed);
            Step::Take
        }
        Kind::Vitest => {
            if trimmed.starts_with('⎯')
                || trimmed.starts_with("FAIL ")
                || trimmed.starts_with("Test Files ")
                || trimmed.starts_with("Tests ")
            {
                return Step::Pass;
            }
            js_block_line(block, trimmed);
            Step::Take
        }
        Kind::Playwright => {
            let next_header = trimmed.split_once(") ").is_some_and(|(n, rest)| {
                !n.is_empty()
                    && n.bytes().all(|b| b.is_ascii_digit())
                    && playwright_title(rest).is_some()
            });
            let counts = trimmed.split_once(' ').is_some_and(|(n, word)| {
                n.parse::<u64>().is_ok()
                    && matches!(
                        word.split_whitespace().next(),
                        Some("failed" | "passed" | "skipped" | "flaky" | "did" | "interrupted")
                    )
            });
            if next_header || counts {
                return Step::Pass;
            }
            if trimmed.starts_with("Retry #")
                || trimmed.starts_with("attachment #")
                || trimmed.starts_with("Error Context:")
            {
                // Later attempts repeat the error; the first one is kept.
                block.stage = Stage::Done;
            }
            js_block_line(block, trimmed);
            Step::Take
        }
        Kind::Go { indent } => {
            if trimmed.starts_with("--- ") || trimmed.starts_with("=== ") {
                return Step::Pass;
            }
            if text.starts_with("panic: ") {
                block.kind = Kind::GoPanic;
                block.failure.case.status = TestStatus::Error;
                block.failure.message = Message::default();
                block.failure.message.push(trimmed);
                return Step::Take;
            }
            let line_indent = text.len() - text.trim_start().len();
            if line_indent > indent && !trimmed.is_empty() {
                go_message_line(&mut block.failure, text);
                return Step::Take;
            }
            Step::Pass
        }
        Kind::GoPanic => {
            if text.starts_with("FAIL")
                || text.starts_with("ok ")
                || trimmed.starts_with("=== ")
                || trimmed.starts_with("--- ")
            {
                return Step::Pass;
            }
            if text.starts_with("exit status ") {
                return Step::End;
            }
            // Frames: `\t/path/calc_test.go:9 +0x1d`; the test's own is the one to read.
            if text.starts_with('\t') {
                let frame = trimmed.split(" +0x").next().unwrap_or(trimmed);
                if let Some((file, line)) = trailing_location(frame)
                    && file.ends_with("_test.go")
                    && !block.preferred
                {
                    block.failure.set_location(file, line);
                    block.preferred = true;
                }
            }
            Step::Take
        }
        Kind::Maven => maven_block_line(block, text, trimmed),
        Kind::JUnitConsole => junit_block_line(block, text, trimmed),
    }
}

/// A panic inside cargo's or nextest's captured output: its location, then its message lines.
fn rust_panic_line(block: &mut Block, trimmed: &str) {
    match block.stage {
        Stage::Before => {
            if let Some(after) = trimmed
                .strip_prefix("thread '")
                .and_then(|rest| rest.split_once(" panicked at "))
                .map(|(_, after)| after)
            {
                if let Some(panic) = parse_panic_location(after) {
                    if let Some((file, line)) = panic.location {
                        block.failure.set_location(file, line);
                    }
                    if let Some(message) = panic.inline {
                        block.failure.message.push(message);
                    }
                }
                block.stage = Stage::Message;
            } else if trimmed.starts_with("Error: ") && block.failure.message.is_empty() {
                // A test returning `Err` prints it before libtest's generic panic.
                block.failure.message.push(trimmed);
            }
        }
        Stage::Message => {
            if trimmed.is_empty() || trimmed.starts_with("note: ") || trimmed == "stack backtrace:"
            {
                block.stage = Stage::Done;
            } else if block.failure.case.file.is_none()
                && let Some((message, location)) = trimmed.rsplit_once("', ")
                && let Some((file, line)) = trailing_location(location)
            {
                // The last line of a message quoted over several lines (before Rust 1.73).
                block.failure.message.push(message);
                block.failure.set_location(file, line);
                block.stage = Stage::Done;
            } else {
                block.failure.message.push(trimmed);
            }
        }
        Stage::Frames | Stage::Done => {}
    }
}

struct PanicLocation<'a> {
    location: Option<(&'a str, u32)>,
    inline: Option<&'a str>,
}

/// What follows `panicked at `: `src/lib.rs:10:5:` (Rust 1.73 and later, message on the next
/// lines) or `'message', src/lib.rs:10:5` (before).
fn parse_panic_location(after: &str) -> Option<PanicLocation<'_>> {
    if let Some(location) = after.strip_suffix(':')
        && let Some(location) = trailing_location(location)
    {
        return Some(PanicLocation {
            location: Some(location),
            inline: None,
        });
    }
    if let Some((message, location)) = after.rsplit_once("', ") {
        return Some(PanicLocation {
            location: trailing_location(location.trim()),
            inline: Some(message.strip_prefix('\'').unwrap_or(message)),
        });
    }
    // A quoted message that goes on over the next lines, the location after its end.
    after.strip_prefix('\'').map(|message| PanicLocation {
        location: None,
        inline: Some(message),
    })
}

fn cargo_section_name(text: &str) -> Option<&str> {
    let name = text.strip_prefix("---- ")?.strip_suffix(" stdout ----")?;
    (!name.is_empty()).then_some(name)
}

/// A nextest status line: `FAIL [   0.003s] (1/6) crate tests::x`.
struct NextestStatus<'a> {
    status: &'a str,
    duration_ms: Option<u64>,
    binary: &'a str,
    name: &'a str,
}

impl<'a> NextestStatus<'a> {
    fn parse(trimmed: &'a str) -> Option<Self> {
        let (status, rest) = trimmed.split_once(" [")?;
        let status = status.trim();
        let status_chars =
            |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ' || b == b'-';
        if status.is_empty() || !status.bytes().all(status_chars) {
            return None;
        }
        let (time, rest) = rest.split_once("] ")?;
        let rest = rest.trim_start();
        // The counter `(1/6)` of recent versions.
        let rest = match rest.strip_prefix('(') {
            Some(counter) => counter.split_once(") ")?.1,
            None => rest,
        };
        let (binary, name) = rest.split_once(' ')?;
        Some(NextestStatus {
            status,
            duration_ms: parse_seconds(time.trim()),
            binary,
            name: name.trim(),
        })
    }

    /// `Some(Some(status))` for a failure, `Some(None)` for a pass, `None` for anything else.
    fn outcome(&self) -> Option<Option<TestStatus>> {
        // Retries read `TRY 2 FAIL`; the last word is the outcome.
        let last = self.status.rsplit(' ').next().unwrap_or(self.status);
        match last {
            "FAIL" | "LEAK-FAIL" => Some(Some(TestStatus::Failed)),
            "TIMEOUT" | "ABORT" => Some(Some(TestStatus::Error)),
            signal if signal.starts_with("SIG") => Some(Some(TestStatus::Error)),
            "PASS" | "FLAKY" | "LEAK" => Some(None),
            _ => None,
        }
    }
}

fn pytest_section_name(text: &str) -> Option<&str> {
    if !(text.starts_with("___") && text.ends_with("___")) {
        return None;
    }
    let name = text.trim_matches('_').trim();
    (!name.is_empty()).then_some(name)
}

fn pytest_block_line(block: &mut Block, text: &str) -> Step {
    if pytest_section_name(text).is_some() || (text.starts_with("==") && text.ends_with("==")) {
        return Step::Pass;
    }
    if text.starts_with("---") && text.contains(" Captured ") {
        // What the test printed: not the failure.
        block.stage = Stage::Done;
        return Step::Take;
    }
    if block.stage == Stage::Done {
        return Step::Take;
    }
    if let Some(line) = text.strip_prefix('E')
        && (line.is_empty() || line.starts_with(' '))
    {
        block.failure.message.push(line);
        return Step::Take;
    }
    // `tests/test_calc.py:12: AssertionError`, or `tests/test_calc.py:12: in test_x` (--tb=short).
    if !text.starts_with([' ', '\t'])
        && let Some((file, line, rest)) = py_location(text)
    {
        let suite = &block.failure.case.suite;
        if suite.is_empty() {
            // The first location is in the test's own file.
            block.failure.case.suite = file.to_owned();
        }
        if block.failure.case.suite == file {
            block.failure.set_location(file, line);
        }
        if is_type_name(rest) {
            block.failure.case.failure_type = Some(rest.to_owned());
        }
    }
    Step::Take
}

/// `path:line: rest` where the path has no spaces.
fn py_location(text: &str) -> Option<(&str, u32, &str)> {
    let mut search = 0;
    while let Some(found) = text[search..].find(':') {
        let colon = search + found;
        let path = &text[..colon];
        if path.contains(' ') || path.is_empty() {
            return None;
        }
        let after = &text[colon + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(':') {
            let line = after[..digits].parse().ok()?;
            return Some((path, line, after[digits + 1..].trim()));
        }
        search = colon + 1;
    }
    None
}

/// A section names `test_x` or `TestClass.test_x`; the node id the short summary prints is
/// `path::test_x` or `path::TestClass::test_x`.
fn finish_pytest_section(failure: &mut Failure) {
    let header = failure.case.name.clone();
    let (status, name) = if let Some(name) = header
        .strip_prefix("ERROR at setup of ")
        .or_else(|| header.strip_prefix("ERROR at teardown of "))
    {
        (TestStatus::Error, name)
    } else if let Some(path) = header.strip_prefix("ERROR collecting ") {
        failure.case.status = TestStatus::Error;
        failure.case.suite = path.to_owned();
        failure.case.name = path.to_owned();
        return;
    } else {
        (failure.case.status, header.as_str())
    };
    failure.case.status = status;
    failure.case.name = if failure.case.suite.is_empty() || name.contains("::") {
        name.to_owned()
    } else {
        format!("{}::{}", failure.case.suite, pytest_node_tail(name))
    };
}

/// `TestClass.test_x[1.5]` → `TestClass::test_x[1.5]`: dots in parameters stay.
fn pytest_node_tail(name: &str) -> String {
    let (head, params) = match name.find('[') {
        Some(at) => name.split_at(at),
        None => (name, ""),
    };
    format!("{}{params}", head.replace('.', "::"))
}

/// Whether a section named without its file (no location line in it) is the node id's test.
fn pytest_same_node(a: &str, b: &str) -> bool {
    let (long, short) = match (a.contains("::"), b.contains("::")) {
        (true, false) => (a, b),
        (false, true) => (b, a),
        _ => return false,
    };
    long.strip_suffix(pytest_node_tail(short).as_str())
        .is_some_and(|head| head.ends_with("::"))
}

fn pytest_counts(inner: &str) -> Option<Counts> {
    let (items, time) = inner.rsplit_once(" in ")?;
    if !time.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    if items.starts_with("no tests ran") {
        return Some(Counts::default());
    }
    parse_counts(items.split(", "))
}

/// Jest, Vitest and Playwright bodies: the message, then code frames and `at` frames.
fn js_block_line(block: &mut Block, trimmed: &str) {
    if block.stage == Stage::Done {
        return;
    }
    let frame = trimmed.starts_with("at ") || trimmed.starts_with("❯ ");
    if block.stage != Stage::Frames && (frame || is_code_frame(trimmed)) {
        block.stage = Stage::Frames;
    }
    if block.stage == Stage::Frames {
        if let Some((file, line)) = js_frame_location(trimmed)
            && !file.contains("node_modules")
            && !file.starts_with("node:")
        {
            block.offer_location(file, line);
        }
        return;
    }
    block.push_first_line(trimmed);
}

/// `> 10 |     expect(x)`, `   9 | …`, `   |  ^` (Jest, Playwright) and `  9|` (Vitest).
fn is_code_frame(trimmed: &str) -> bool {
    let rest = trimmed.strip_prefix('>').unwrap_or(trimmed).trim_start();
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    rest.trim_start().starts_with('|')
}

/// `at Object.<anonymous> (src/x.test.js:10:5)`, `at /abs/tests/x.spec.ts:5:20`,
/// `❯ src/x.test.ts:10:5`, `❯ fn src/x.ts:3:9`.
fn js_frame_location(trimmed: &str) -> Option<(&str, u32)> {
    let location = if let Some(rest) = trimmed.strip_prefix("at ") {
        match (rest.strip_suffix(')'), rest.rfind(" (")) {
            (Some(inner), Some(open)) if open + 2 <= inner.len() => &inner[open + 2..],
            _ => rest,
        }
    } else {
        trimmed.strip_prefix("❯ ")?.rsplit(' ').next()?
    };
    let location = location.strip_prefix("file://").unwrap_or(location);
    trailing_location(location)
}

fn go_message_line(failure: &mut Failure, text: &str) {
    let trimmed = text.trim();
    if let Some((file, line, message)) = go_location(trimmed) {
        failure.locate(file, line);
        failure.message.push(message);
        return;
    }
    // testify's labels: where and which test, already known.
    let collapsed = trimmed.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.starts_with("Error Trace:") || collapsed.starts_with("Test:") {
        return;
    }
    failure.message.push(&collapsed);
}

/// `calc_test.go:12: message`.
fn go_location(trimmed: &str) -> Option<(&str, u32, &str)> {
    let (file, rest) = trimmed.split_once(".go:")?;
    if file.is_empty() || file.contains(' ') {
        return None;
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let message = rest[digits..].strip_prefix(':')?;
    let line = rest[..digits].parse().ok()?;
    Some((&trimmed[..file.len() + 3], line, message.trim()))
}

/// A Maven log line's level and body: `[ERROR] body`.
fn maven_body(text: &str) -> Option<(&str, &str)> {
    for level in ["[ERROR]", "[INFO]", "[WARNING]", "[WARN]"] {
        if let Some(body) = text.strip_prefix(level) {
            let body = body.strip_prefix(' ').unwrap_or(body);
            return Some((level, body));
        }
    }
    None
}

/// `Tests run: 5, Failures: 1, Errors: 1, Skipped: 1`.
fn surefire_counts(numbers: &str) -> Option<Counts> {
    let (mut failures, mut errors, mut skipped) = (0u64, 0u64, 0u64);
    let mut items = numbers.split(", ");
    let run: u64 = items.next()?.trim().parse().ok()?;
    for item in items {
        let (label, value) = item.split_once(": ")?;
        let value: u64 = value.trim().parse().ok()?;
        match label.trim() {
            "Failures" => failures = value,
            "Errors" => errors = value,
            "Skipped" => skipped = value,
            _ => {}
        }
    }
    Some(Counts {
        passed: run.saturating_sub(failures + errors + skipped),
        failed: failures + errors,
        skipped,
    })
}

fn maven_block_line(block: &mut Block, text: &str, trimmed: &str) -> Step {
    if text.starts_with('[') {
        return Step::Pass;
    }
    if let Some(frame) = trimmed.strip_prefix("at ") {
        block.stage = Stage::Frames;
        java_frame(block, frame);
        return Step::Take;
    }
    match block.stage {
        Stage::Before => {
            if !trimmed.is_empty() {
                exception_line(block, trimmed);
                block.stage = Stage::Message;
            }
            Step::Take
        }
        Stage::Message => {
            block.failure.message.push(trimmed);
            Step::Take
        }
        Stage::Frames | Stage::Done => {
            if trimmed.is_empty() {
                return Step::End;
            }
            Step::Take
        }
    }
}

fn junit_block_line(block: &mut Block, text: &str, trimmed: &str) -> Step {
    let indent = text.len() - text.trim_start().len();
    if trimmed.is_empty() || indent <= 2 {
        return Step::Pass;
    }
    if let Some(source) = trimmed
        .strip_prefix("MethodSource [")
        .or_else(|| trimmed.strip_prefix("ClassSource ["))
    {
        if let Some((_, rest)) = source.split_once("className = '")
            && let Some((class, _)) = rest.split_once('\'')
        {
            block.failure.case.suite = class.to_owned();
        }
        return Step::Take;
    }
    if let Some(exception) = trimmed.strip_prefix("=> ") {
        exception_line(block, exception);
        block.stage = Stage::Message;
        return Step::Take;
    }
    if trimmed == "[...]" || trimmed.starts_with("Caused by:") {
        block.stage = Stage::Done;
        return Step::Take;
    }
    if matches!(block.stage, Stage::Message | Stage::Frames) {
        if trimmed.ends_with(')') && trimmed.contains('(') && !trimmed.contains(' ') {
            block.stage = Stage::Frames;
            java_frame(block, trimmed);
        } else if block.stage == Stage::Message {
            block.failure.message.push(trimmed);
        }
    }
    Step::Take
}

/// `org.opentest4j.AssertionFailedError: expected: <3> but was: <4>`.
fn exception_line(block: &mut Block, line: &str) {
    match line.split_once(": ") {
        Some((kind, message)) if is_type_name(kind) => {
            block.failure.set_type(kind);
            block.failure.message.push(message);
        }
        _ if is_type_name(line) => block.failure.set_type(line),
        _ => block.failure.message.push(line),
    }
}

/// `com.example.CalculatorTest.testAdd(CalculatorTest.java:12)`: the frame in the test's class
/// (the suite) wins, else the first outside the JDK and the test framework.
fn java_frame(block: &mut Block, frame: &str) {
    let Some((method, location)) = frame
        .strip_suffix(')')
        .and_then(|frame| frame.split_once('('))
    else {
        return;
    };
    let Some((file, line)) = trailing_location(location) else {
        return;
    };
    if block.preferred {
        return;
    }
    let suite = block.failure.case.suite.as_str();
    let own = !suite.is_empty()
        && method
            .strip_prefix(suite)
            .is_some_and(|rest| rest.starts_with(['.', '$']));
    if own {
        block.failure.set_location(file, line);
        block.preferred = true;
        return;
    }
    let framework = [
        "java.",
        "javax.",
        "jdk.",
        "sun.",
        "org.junit.",
        "org.opentest4j.",
    ]
    .iter()
    .any(|prefix| method.starts_with(prefix));
    if !framework {
        block.failure.locate(file, line);
    }
}

fn is_assertion_type(kind: &str) -> bool {
    let simple = kind.rsplit('.').next().unwrap_or(kind);
    simple.contains("Assertion") || simple == "ComparisonFailure" || simple.contains("Multiple")
}

/// `JUnit Jupiter:CalculatorTest:testAdd()` → `CalculatorTest.testAdd`, as Surefire names it.
fn junit_console_name(entry: &str) -> String {
    let mut parts: Vec<&str> = entry.split(':').collect();
    if parts.len() > 1 {
        parts.remove(0);
    }
    if let Some(last) = parts.last_mut() {
        *last = last.strip_suffix("()").unwrap_or(last);
    }
    parts.join(".")
}

/// A Playwright test title: `[chromium] › tests/x.spec.ts:3:5 › suite › name ───`.
struct PlaywrightTitle<'a> {
    project: Option<&'a str>,
    file: &'a str,
    name: String,
}

impl PlaywrightTitle<'_> {
    fn failure(&self, status: TestStatus) -> Failure {
        let mut failure = Failure::new(Runner::Playwright, &self.name, status).in_suite(self.file);
        failure.case.class = self.project.map(str::to_owned);
        failure
    }
}

fn playwright_title(text: &str) -> Option<PlaywrightTitle<'_>> {
    let text = text.trim_end_matches(['─', ' ']);
    let mut parts = text.split(" › ");
    let first = parts.next()?;
    let (project, location) = match first.strip_prefix('[').and_then(|p| p.strip_suffix(']')) {
        Some(project) => (Some(project), parts.next()?),
        None => (None, first),
    };
    let (file, _line) = trailing_location(location)?;
    let titles: Vec<&str> = parts.collect();
    if titles.is_empty() || file.contains(' ') {
        return None;
    }
    Some(PlaywrightTitle {
        project,
        file,
        name: titles.join(" › "),
    })
}

/// `path:line` or `path:line:column` → the path and the line.
fn trailing_location(text: &str) -> Option<(&str, u32)> {
    let (head, last) = text.rsplit_once(':')?;
    let last: u32 = last.parse().ok()?;
    let (path, line) = match head.rsplit_once(':') {
        Some((path, line)) if let Ok(line) = line.parse::<u32>() => (path, line),
        _ => (head, last),
    };
    (!path.is_empty()).then_some((path, line))
}

/// `AssertionError: …` → `AssertionError`; `Error: …` → `Error`.
fn error_type(line: &str) -> Option<&str> {
    let (kind, _) = line.split_once(':')?;
    let simple = kind.rsplit('.').next().unwrap_or(kind);
    let named = simple.ends_with("Error") || simple.ends_with("Exception");
    (named && is_type_name(kind)).then_some(kind)
}

/// `ValueError`, `java.lang.ArithmeticException`, `Foo$Bar`.
fn is_type_name(text: &str) -> bool {
    !text.is_empty()
        && text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'$'))
        && text
            .rsplit('.')
            .next()
            .is_some_and(|simple| simple.starts_with(|c: char| c.is_ascii_uppercase()))
}

/// `0.027s`, `0.074`, `51ms` → milliseconds.
fn parse_seconds(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.trim().parse::<f64>().ok().map(|ms| ms.round() as u64);
    }
    let seconds: f64 = text.strip_suffix('s').unwrap_or(text).trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| (seconds * 1000.0).round() as u64)
}

/// Counts from items such as `3 passed`, `1 failed`, `2 ignored`, `1 timed out`; `None` when no
/// item is a count.
fn parse_counts<'a>(items: impl Iterator<Item = &'a str>) -> Option<Counts> {
    let mut counts = Counts::default();
    let mut any = false;
    for item in items {
        let mut words = item.split_whitespace();
        let (Some(number), Some(word)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(number) = number.parse::<u64>() else {
            continue;
        };
        match word.trim_end_matches([',', ';', '.']) {
            "passed" | "xpassed" | "flaky" => counts.passed += number,
            "failed" | "error" | "errors" | "timed" => counts.failed += number,
            "skipped" | "ignored" | "xfailed" | "todo" | "pending" => counts.skipped += number,
            _ => continue,
        }
        any = true;
    }
    any.then_some(counts)
}

/// `text` cut to at most `max` bytes at a character boundary.
fn cut_at_boundary(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The line without ANSI escapes and control characters.
fn clean(line: &str) -> Cow<'_, str> {
    if !line.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Cow::Borrowed(line);
    }
    Cow::Owned(strip_ansi(line).into_owned())
}
