//! JUnit XML reports: the test cases that pytest, Jest, Vitest, Playwright, cargo-nextest,
//! go-junit-report, Maven Surefire and most other runners write.
//!
//! The reader streams through the document's events and builds no tree: a 50 MB report costs
//! its bytes and the cases it holds, not a node per element.
//!
//! # What a case becomes
//!
//! - **Suite**: the nearest enclosing `<testsuite name>`; the name given to [`parse_named`] (a file
//!   name, for [`parse_file`]) when no enclosing suite has one.
//! - **Status**: the first `<failure>` or `<error>` of a case decides ([`TestStatus::Failed`] or
//!   [`TestStatus::Error`]), even when `<skipped>` is present too; otherwise `<skipped>` makes it
//!   skipped, and no outcome element makes it passed. Further `<failure>`/`<error>` elements (pytest
//!   adds an `<error>` for a teardown that fails after the test did) are counted in `details`.
//! - **Reruns** (Surefire's and nextest's `<flakyFailure>`, `<flakyError>`, `<rerunFailure>`,
//!   `<rerunError>`): they never decide the status. A case with only flaky elements passed on a
//!   rerun, so it is passed, and `details` says after how many failed attempts and what the first
//!   one said. A case with `<failure>` and rerun elements failed every attempt; `details` says so.
//! - **Message**: the `message` attribute, else the first meaningful line of the element's text.
//!   Attributes that say nothing beyond the status (go-junit-report's `Failed`, `Skipped`, `Build
//!   error`) give way to the text's first line, and nextest's `thread '…' panicked at …` header
//!   gives way to the panic message that follows it in the text.
//! - **Location**: a `file`/`line` attribute on `<testcase>` (pytest's xunit1 family and others
//!   that write them) as given, refined to the failure's line when the text names
//!   a line in that file; otherwise the first location found in the text, trying in turn: Rust
//!   panics, Java/Kotlin stack frames (the frame of the test's own class first), Python
//!   (`file.py:12:` as pytest writes it, and tracebacks; the test's module first), Go (`file.go:12:`
//!   and goroutine frames; `_test.go` files first), JavaScript (`at … (file.js:10:5)` and Vitest's
//!   `❯ file.ts:10:5`; the test's file first, never `node_modules`).
//! - **Time**: seconds as a decimal number; `1,234.5` (Surefire's grouping) and `0,5` (a decimal
//!   comma) are both read; anything else unreadable is no duration.
//!
//! `<system-out>` and `<system-err>` are skipped: they repeat the failure (nextest) or hold logs
//! the step log already has.
//!
//! # Hostile and broken input
//!
//! Bytes that are not UTF-8 become U+FFFD (a report is read as UTF-8 whatever its declaration
//! says). Only the five predefined entities and character references are expanded; a DTD is
//! skipped and references to the entities it declares stay as written (`&lol9;`), so an entity
//! bomb costs its own size. A report that is malformed or cut short after some cases were read
//! yields those cases with [`Report::problem`] saying where it broke; before any case, an error.
//! Every limit below is a `pub const`.

use std::borrow::Cow;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{TestCase, TestStatus};

/// The largest report read, in bytes. Big suites write reports of tens of megabytes (50 MB must
/// be read); past this a file is more likely a runaway `<system-out>` than test results, and
/// reading it would cost that much memory.
pub const MAX_REPORT_BYTES: u64 = 128 * 1024 * 1024;

/// The most test cases kept from one report. Further cases are still read to the end, counted
/// and named in [`Report::truncated`], but not kept, so that a generated suite of millions of
/// cases cannot grow a result without bound.
pub const MAX_CASES: usize = 100_000;

/// The longest [`TestCase::message`] kept, in bytes, `…` included: an assertion message, not a
/// dump of the objects compared.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// The longest [`TestCase::details`] kept, in bytes, `…` included: the start of a stack trace,
/// which is where the test's own frames are.
pub const MAX_DETAILS_BYTES: usize = 2048;

/// The deepest element nesting read. Real reports nest five or six levels (suites in suites, a
/// case, a failure, a stack trace); a document nested deeper is not a test report.
pub const MAX_DEPTH: usize = 64;

/// How much of a failure's text is kept while reading, in bytes, to find its message, its
/// location and its details. Java traces name the test's frame within the first few kilobytes;
/// a location further down is not looked for.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How much of a file [`find_reports`] reads to decide whether it is a JUnit report.
pub const SNIFF_BYTES: usize = 4096;

/// How many directory levels below its starting directory [`find_reports`] descends: reports sit
/// a few levels down (`target/surefire-reports`, `build/test-results/test`, `packages/x/…`).
pub const MAX_FIND_DEPTH: usize = 12;

/// How many directory entries [`find_reports`] looks at in all, so that pointing it at a huge
/// tree costs a bounded time. Directories are walked breadth first, so shallow reports are found
/// before the budget runs out.
pub const MAX_FIND_ENTRIES: usize = 20_000;

/// Directories [`find_reports`] does not enter: they hold thousands of files and no report of
/// this run.
const SKIPPED_DIRS: [&str; 2] = ["node_modules", ".git"];

/// The test cases of one report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The cases in document order, at most [`MAX_CASES`].
    pub cases: Vec<TestCase>,
    /// Why cases were left out (the report has more than [`MAX_CASES`]), with how many and how
    /// many of those failed.
    pub truncated: Option<String>,
    /// Where and how the document broke, when it is malformed or cut short after some cases
    /// were read: the cases after that point are missing.
    pub problem: Option<String>,
}

/// Why a report could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JunitError {
    /// The report is larger than [`MAX_REPORT_BYTES`].
    #[error("the report is {size} bytes, more than the {limit} bytes a report may have")]
    TooLarge { size: u64, limit: u64 },
    /// The document has no element at all (an empty file, only whitespace or comments).
    #[error("the report is empty: it holds no XML element")]
    Empty,
    /// The document is XML, but its root is not `<testsuites>` or `<testsuite>`.
    #[error("not a JUnit report: the root element is <{root}>, not <testsuites> or <testsuite>")]
    NotJunit { root: String },
    /// The document is not well-formed XML (or is cut short) before any test case.
    #[error("malformed XML at line {line}, column {column}: {message}")]
    Malformed {
        line: u64,
        column: u64,
        message: String,
    },
    /// Elements nest deeper than [`MAX_DEPTH`] before any test case.
    #[error("elements nest deeper than {limit} levels at line {line}, column {column}")]
    TooDeep {
        line: u64,
        column: u64,
        limit: usize,
    },
    /// The report file could not be read.
    #[error("cannot read report {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Reads a JUnit report held in memory. Cases outside any named `<testsuite>` get an empty suite;
/// see [`parse_named`].
pub fn parse(xml: &[u8]) -> Result<Report, JunitError> {
    parse_named(xml, "")
}

/// Reads a JUnit report held in memory; `fallback_suite` (typically the report's file name) is
/// the suite of cases that no enclosing `<testsuite name>` names.
pub fn parse_named(xml: &[u8], fallback_suite: &str) -> Result<Report, JunitError> {
    let size = xml.len() as u64;
    if size > MAX_REPORT_BYTES {
        return Err(JunitError::TooLarge {
            size,
            limit: MAX_REPORT_BYTES,
        });
    }
    // Validating first is several times faster than the lossy conversion, which only invalid
    // input needs.
    let text = match std::str::from_utf8(xml) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(xml),
    };
    Parser::new(&text, fallback_suite).run()
}

/// Reads a JUnit report file, checking its size before reading it. The file's name is the suite
/// of cases that no `<testsuite name>` names.
pub fn parse_file(path: &Path) -> Result<Report, JunitError> {
    let io_error = |source| JunitError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_error)?;
    let size = file.metadata().map_err(io_error)?.len();
    if size > MAX_REPORT_BYTES {
        return Err(JunitError::TooLarge {
            size,
            limit: MAX_REPORT_BYTES,
        });
    }
    let mut xml = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // One byte more than allowed, so that a file that grew since its size was read is still
    // caught without reading all of it.
    file.take(MAX_REPORT_BYTES + 1)
        .read_to_end(&mut xml)
        .map_err(io_error)?;
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default();
    parse_named(&xml, &name)
}

/// The JUnit reports under `dir`: files whose name ends in `.xml` and whose first
/// [`SNIFF_BYTES`] bytes, after an optional byte order mark, XML declaration, comments and
/// doctype, start a `<testsuites>` or `<testsuite>` element. Sorted.
///
/// Symbolic links are neither followed nor listed (a report is a file the run wrote, and a link
/// could lead out of `dir` or round in a loop). The walk stops [`MAX_FIND_DEPTH`] levels down and
/// after [`MAX_FIND_ENTRIES`] entries; it skips `node_modules` and `.git`. Unreadable directories
/// and files are skipped.
pub fn find_reports(dir: &Path) -> Vec<PathBuf> {
    let mut reports = Vec::new();
    let mut budget = MAX_FIND_ENTRIES;
    // Breadth first, so that a budget cut loses the deepest entries, not a whole early subtree.
    let mut pending = std::collections::VecDeque::from([(dir.to_path_buf(), 0usize)]);
    'walk: while let Some((current, depth)) = pending.pop_front() {
        let Ok(entries) = fs::read_dir(&current) else {
            continue;
        };
        for entry in entries {
            if budget == 0 {
                break 'walk;
            }
            budget -= 1;
            let Ok(entry) = entry else { continue };
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if file_type.is_dir() {
                let skipped = SKIPPED_DIRS.iter().any(|name| entry.file_name() == *name);
                if depth < MAX_FIND_DEPTH && !skipped {
                    pending.push_back((path, depth + 1));
                }
            } else if file_type.is_file()
                && entry
                    .file_name()
                    .to_string_lossy()
                    .to_ascii_lowercase()
                    .ends_with(".xml")
                && looks_like_report(&path)
            {
                reports.push(path);
            }
        }
    }
    reports.sort();
    reports
}

/// Whether the file at `path` starts like a JUnit report (see [`find_reports`]).
fn looks_like_report(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    if file
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .is_err()
    {
        return false;
    }
    starts_like_report(&head)
}

fn starts_like_report(head: &[u8]) -> bool {
    let mut rest = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    loop {
        rest = rest.trim_ascii_start();
        let end = if rest.starts_with(b"<?") {
            find(rest, b"?>").map(|i| i + 2)
        } else if rest.starts_with(b"<!--") {
            find(rest, b"-->").map(|i| i + 3)
        } else if rest.starts_with(b"<!DOCTYPE") {
            // An internal subset holds `>` of its own: the doctype ends at `]>` then.
            match (find(rest, b"["), find(rest, b">")) {
                (Some(open), Some(close)) if open < close => find(rest, b"]>").map(|i| i + 2),
                (_, close) => close.map(|i| i + 1),
            }
        } else {
            break;
        };
        match end {
            Some(end) => rest = &rest[end..],
            None => return false,
        }
    }
    ["<testsuites".as_bytes(), b"<testsuite"].iter().any(|tag| {
        rest.strip_prefix(*tag)
            .and_then(|after| after.first())
            .is_some_and(|next| next.is_ascii_whitespace() || *next == b'>' || *next == b'/')
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// What an open element is to the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Suites,
    Suite,
    Case,
    Outcome,
    /// Surefire's `<stackTrace>` inside a rerun or flaky element: its text is the outcome's.
    StackTrace,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutcomeKind {
    Failure,
    Error,
    Skipped,
    /// A failed attempt of a case that then passed.
    Flaky,
    /// A failed rerun of a case that failed every attempt.
    Rerun,
}

#[derive(Debug)]
struct Outcome {
    kind: OutcomeKind,
    message: Option<String>,
    failure_type: Option<String>,
    /// The element's text, at most [`MAX_BODY_BYTES`].
    body: String,
    /// Whether the text is kept at all: only the outcome that describes the case needs it.
    collect: bool,
}

#[derive(Debug)]
struct CaseBuilder {
    suite: String,
    class: Option<String>,
    name: String,
    duration_ms: Option<u64>,
    file: Option<String>,
    line: Option<u32>,
    /// The first `<failure>` or `<error>`.
    failure: Option<Outcome>,
    more_failures: u32,
    skipped: Option<Outcome>,
    flaky_attempts: u32,
    first_flaky: Option<Outcome>,
    reruns: u32,
}

/// Where the reader stopped before the end of the document.
enum Stop {
    Malformed(String),
    TooDeep,
}

struct Parser<'t> {
    text: &'t str,
    reader: Reader<&'t [u8]>,
    fallback_suite: &'t str,
    stack: Vec<Kind>,
    /// The suite name in force inside each open `<testsuite>`.
    suites: Vec<String>,
    case: Option<CaseBuilder>,
    outcome: Option<Outcome>,
    cases: Vec<TestCase>,
    /// Cases read, kept or not.
    seen: u64,
    /// Failed or errored cases among those not kept.
    left_out_failures: u64,
    root_seen: bool,
}

impl<'t> Parser<'t> {
    fn new(text: &'t str, fallback_suite: &'t str) -> Self {
        let mut reader = Reader::from_str(text);
        // A lone `&` in a message is a producer's escaping bug, not a reason to lose the report.
        reader.config_mut().allow_dangling_amp = true;
        Parser {
            text,
            reader,
            fallback_suite,
            stack: Vec::new(),
            suites: Vec::new(),
            case: None,
            outcome: None,
            cases: Vec::new(),
            seen: 0,
            left_out_failures: 0,
            root_seen: false,
        }
    }

    fn run(mut self) -> Result<Report, JunitError> {
        loop {
            let start = self.reader.buffer_position();
            let event = match self.reader.read_event() {
                Ok(event) => event,
                Err(error) => {
                    let at = self.reader.error_position();
                    return self.stop(at, Stop::Malformed(error.to_string()));
                }
            };
            match event {
                Event::Start(element) => {
                    if self.stack.len() >= MAX_DEPTH {
                        return self.stop(start, Stop::TooDeep);
                    }
                    self.open(&element)?;
                }
                Event::Empty(element) => {
                    if self.stack.len() >= MAX_DEPTH {
                        return self.stop(start, Stop::TooDeep);
                    }
                    self.open(&element)?;
                    self.close();
                }
                Event::End(_) => self.close(),
                Event::Text(text) => {
                    if let Some(outcome) = self.collecting() {
                        push_bounded(&mut outcome.body, &text.xml10_content());
                    }
                }
                Event::CData(text) => {
                    if let Some(outcome) = self.collecting() {
                        push_bounded(&mut outcome.body, &text.xml10_content());
                    }
                }
                Event::GeneralRef(reference) => {
                    if let Some(outcome) = self.collecting() {
                        let mut resolved = String::new();
                        push_named_reference(&mut resolved, &reference);
                        push_bounded(&mut outcome.body, &resolved);
                    }
                }
                Event::Eof => break,
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            }
        }
        if !self.root_seen {
            return Err(JunitError::Empty);
        }
        if let Some(open) = self.stack.last() {
            let name = match open {
                Kind::Suites => "</testsuites>",
                Kind::Suite => "</testsuite>",
                Kind::Case => "</testcase>",
                _ => "its closing tags",
            };
            let message = format!("the document ends before {name}: it was cut short");
            let end = self.text.len() as u64;
            return self.stop(end, Stop::Malformed(message));
        }
        Ok(self.finish(None))
    }

    /// The outcome whose text is being read, when the innermost element is one.
    fn collecting(&mut self) -> Option<&mut Outcome> {
        match self.stack.last() {
            Some(Kind::Outcome | Kind::StackTrace) => self.outcome.as_mut().filter(|o| o.collect),
            _ => None,
        }
    }

    fn open(&mut self, element: &BytesStart<'_>) -> Result<(), JunitError> {
        let qname = element.name();
        let name = qname.local_name().into_inner();
        if !self.root_seen {
            self.root_seen = true;
            if name != "testsuites" && name != "testsuite" {
                return Err(JunitError::NotJunit {
                    root: name.to_owned(),
                });
            }
        }
        let in_case = self.case.is_some();
        let kind = match (self.stack.last(), name) {
            (_, "testsuites") if !in_case => Kind::Suites,
            (_, "testsuite") if !in_case => Kind::Suite,
            (_, "testcase") if !in_case => Kind::Case,
            (Some(Kind::Case), _) if outcome_kind(name).is_some() => Kind::Outcome,
            (Some(Kind::Outcome), "stackTrace") => Kind::StackTrace,
            _ => Kind::Other,
        };
        match kind {
            Kind::Suite => {
                let own = attribute(element, "name").filter(|n| !n.trim().is_empty());
                let suite = match own {
                    Some(own) => own.into_owned(),
                    None => self
                        .suites
                        .last()
                        .map_or_else(|| self.fallback_suite.to_owned(), Clone::clone),
                };
                self.suites.push(suite);
            }
            Kind::Case => self.case = Some(self.start_case(element)),
            Kind::Outcome => {
                if let Some(kind) = outcome_kind(name) {
                    self.outcome = Some(self.start_outcome(kind, element));
                }
            }
            Kind::Suites | Kind::StackTrace | Kind::Other => {}
        }
        self.stack.push(kind);
        Ok(())
    }

    fn close(&mut self) {
        match self.stack.pop() {
            Some(Kind::Suite) => {
                self.suites.pop();
            }
            Some(Kind::Case) => {
                if let Some(case) = self.case.take() {
                    self.finish_case(case);
                }
            }
            Some(Kind::Outcome) => {
                if let (Some(outcome), Some(case)) = (self.outcome.take(), self.case.as_mut()) {
                    record_outcome(case, outcome);
                }
            }
            _ => {}
        }
    }

    fn start_case(&self, element: &BytesStart<'_>) -> CaseBuilder {
        let mut case = CaseBuilder {
            suite: self
                .suites
                .last()
                .map_or_else(|| self.fallback_suite.to_owned(), Clone::clone),
            class: None,
            name: String::new(),
            duration_ms: None,
            file: None,
            line: None,
            failure: None,
            more_failures: 0,
            skipped: None,
            flaky_attempts: 0,
            first_flaky: None,
            reruns: 0,
        };
        for attr in element.attributes().with_checks(false) {
            let Ok(attr) = attr else { break };
            let value = || unescape_attribute(&attr.value).into_owned();
            match attr.key.local_name().into_inner() {
                "name" => case.name = value(),
                "classname" => case.class = Some(value()).filter(|c| !c.trim().is_empty()),
                "time" => case.duration_ms = parse_duration_ms(&unescape_attribute(&attr.value)),
                "file" => case.file = Some(value()).filter(|f| !f.trim().is_empty()),
                "line" => case.line = unescape_attribute(&attr.value).trim().parse().ok(),
                _ => {}
            }
        }
        case
    }

    fn start_outcome(&self, kind: OutcomeKind, element: &BytesStart<'_>) -> Outcome {
        let keeping = self.cases.len() < MAX_CASES;
        let collect = keeping
            && self.case.as_ref().is_some_and(|case| match kind {
                OutcomeKind::Failure | OutcomeKind::Error => case.failure.is_none(),
                OutcomeKind::Skipped => case.skipped.is_none(),
                OutcomeKind::Flaky => case.first_flaky.is_none(),
                OutcomeKind::Rerun => false,
            });
        let mut outcome = Outcome {
            kind,
            message: None,
            failure_type: None,
            body: String::new(),
            collect,
        };
        if collect {
            for attr in element.attributes().with_checks(false) {
                let Ok(attr) = attr else { break };
                match attr.key.local_name().into_inner() {
                    "message" => {
                        let mut message = String::new();
                        push_bounded(&mut message, &unescape_attribute(&attr.value));
                        outcome.message = Some(message);
                    }
                    "type" => {
                        outcome.failure_type = Some(bounded(
                            unescape_attribute(&attr.value).trim(),
                            MAX_MESSAGE_BYTES,
                        ))
                        .filter(|t| !t.is_empty());
                    }
                    _ => {}
                }
            }
        }
        outcome
    }

    fn finish_case(&mut self, case: CaseBuilder) {
        let status = match (&case.failure, &case.skipped) {
            (Some(failure), _) if failure.kind == OutcomeKind::Error => TestStatus::Error,
            (Some(_), _) => TestStatus::Failed,
            (None, Some(_)) => TestStatus::Skipped,
            (None, None) => TestStatus::Passed,
        };
        self.seen += 1;
        if self.cases.len() >= MAX_CASES {
            if status.is_failure() {
                self.left_out_failures += 1;
            }
            return;
        }
        self.cases.push(build_case(case, status));
    }

    fn finish(self, problem: Option<String>) -> Report {
        let kept = self.cases.len() as u64;
        let truncated = (self.seen > kept).then(|| {
            format!(
                "the report has {} test cases; only the first {MAX_CASES} were kept, and {} of \
                 the {} left out failed or errored",
                self.seen,
                self.left_out_failures,
                self.seen - kept,
            )
        });
        Report {
            cases: self.cases,
            truncated,
            problem,
        }
    }

    /// Ends the reading at byte `at`: a partial report when cases were read, an error otherwise.
    fn stop(self, at: u64, why: Stop) -> Result<Report, JunitError> {
        let (line, column) = line_column(self.text, at);
        if self.cases.is_empty() {
            return Err(match why {
                Stop::Malformed(message) => JunitError::Malformed {
                    line,
                    column,
                    message,
                },
                Stop::TooDeep => JunitError::TooDeep {
                    line,
                    column,
                    limit: MAX_DEPTH,
                },
            });
        }
        let what = match why {
            Stop::Malformed(message) => format!("malformed XML: {message}"),
            Stop::TooDeep => format!("elements nest deeper than {MAX_DEPTH} levels"),
        };
        let problem = format!(
            "line {line}, column {column}: {what}; the {} test cases read before it are kept",
            self.cases.len()
        );
        Ok(self.finish(Some(problem)))
    }
}

fn outcome_kind(name: &str) -> Option<OutcomeKind> {
    Some(match name {
        "failure" => OutcomeKind::Failure,
        "error" => OutcomeKind::Error,
        "skipped" => OutcomeKind::Skipped,
        "flakyFailure" | "flakyError" => OutcomeKind::Flaky,
        "rerunFailure" | "rerunError" => OutcomeKind::Rerun,
        _ => return None,
    })
}

fn record_outcome(case: &mut CaseBuilder, outcome: Outcome) {
    match outcome.kind {
        OutcomeKind::Failure | OutcomeKind::Error => {
            if case.failure.is_none() {
                case.failure = Some(outcome);
            } else {
                case.more_failures += 1;
            }
        }
        OutcomeKind::Skipped => {
            if case.skipped.is_none() {
                case.skipped = Some(outcome);
            }
        }
        OutcomeKind::Flaky => {
            case.flaky_attempts += 1;
            if case.first_flaky.is_none() {
                case.first_flaky = Some(outcome);
            }
        }
        OutcomeKind::Rerun => case.reruns += 1,
    }
}

fn build_case(case: CaseBuilder, status: TestStatus) -> TestCase {
    let chosen = case.failure.as_ref().or(case.skipped.as_ref());
    let body = chosen.map_or("", |outcome| outcome.body.trim());
    let message = chosen.and_then(message_of);
    let failure_type = chosen.and_then(|outcome| outcome.failure_type.clone());

    let found = locate(body, case.class.as_deref());
    let (file, line) = match (case.file, found) {
        (Some(file), Some(found)) if same_file(&file, &found.file) => {
            (Some(file), Some(found.line))
        }
        (Some(file), _) => (Some(file), case.line),
        (None, Some(found)) => (Some(found.file), Some(found.line)),
        (None, None) => (None, case.line),
    };

    let mut notes = Vec::new();
    if status == TestStatus::Passed && case.flaky_attempts > 0 {
        let first = case
            .first_flaky
            .as_ref()
            .and_then(message_of)
            .map(|message| format!("; the first failed with: {message}"))
            .unwrap_or_default();
        notes.push(format!(
            "passed on a rerun after {} failed attempt(s){first}",
            case.flaky_attempts
        ));
    }
    if status.is_failure() && case.reruns > 0 {
        notes.push(format!("failed on {} rerun(s) as well", case.reruns));
    }
    if case.more_failures > 0 {
        notes.push(format!(
            "{} more <failure>/<error> element(s) in this case",
            case.more_failures
        ));
    }
    if !body.is_empty() {
        notes.push(body.to_owned());
    }
    let details = (!notes.is_empty()).then(|| bounded(&notes.join("\n"), MAX_DETAILS_BYTES));

    TestCase {
        suite: case.suite,
        class: case.class,
        name: case.name,
        status,
        duration_ms: case.duration_ms,
        message,
        failure_type,
        file,
        line,
        details,
    }
}

/// Attribute values that only restate the status: the text says more.
fn is_placeholder(message: &str) -> bool {
    const PLACEHOLDERS: [&str; 9] = [
        "failed",
        "failure",
        "error",
        "skipped",
        "skip",
        "test failure",
        "runtime error",
        "build error",
        "no test result found",
    ];
    PLACEHOLDERS
        .iter()
        .any(|placeholder| message.eq_ignore_ascii_case(placeholder))
}

fn message_of(outcome: &Outcome) -> Option<String> {
    let attribute = outcome
        .message
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty());
    let message = match attribute {
        Some(message) if !is_placeholder(message) => Some(message),
        Some(placeholder) => first_meaningful_line(&outcome.body).or(Some(placeholder)),
        None => first_meaningful_line(&outcome.body),
    }?;
    // nextest's message is the panic's header line; what the test said follows it in the text.
    let message = if RUST_PANIC_HEADER.is_match(message) {
        panic_payload(&outcome.body).unwrap_or(message)
    } else {
        message
    };
    Some(bounded(message, MAX_MESSAGE_BYTES))
}

/// The first line of `body` that says something: not blank, not a rule of punctuation, not a
/// traceback's header; a Go `file.go:12:` prefix is dropped (the location is kept apart).
fn first_meaningful_line(body: &str) -> Option<&str> {
    body.lines()
        .map(str::trim)
        .filter(|line| line.chars().any(char::is_alphanumeric))
        .find(|line| !line.starts_with("Traceback (most recent call last)"))
        .map(|line| match GO_LINE_PREFIX.captures(line) {
            Some(captures) => captures.get(1).map_or(line, |rest| rest.as_str()),
            None => line,
        })
}

/// The message of a Rust panic in `body`: the lines after `thread '…' panicked at …:` up to the
/// backtrace or note that follows.
fn panic_payload(body: &str) -> Option<&str> {
    let mut lines = body.lines();
    let mut start = 0;
    for line in lines.by_ref() {
        start += line.len() + 1;
        if RUST_PANIC_HEADER.is_match(line.trim()) {
            break;
        }
    }
    let rest = body.get(start..)?;
    let mut end = 0;
    for line in rest.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("stack backtrace:")
            || trimmed.starts_with("note: ")
            || RUST_PANIC_HEADER.is_match(trimmed)
        {
            break;
        }
        end += line.len() + 1;
    }
    let payload = rest.get(..end.min(rest.len()))?.trim();
    (!payload.is_empty()).then_some(payload)
}

// The patterns are constants: compiling them cannot fail on any input.
#[allow(clippy::unwrap_used)]
fn pattern(source: &str) -> Regex {
    Regex::new(source).unwrap()
}

static RUST_PANIC_HEADER: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"^thread '[^']*'(?: \(\d+\))? panicked at \S+:\d+:\d+:?$"));
static RUST_LOCATION: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"panicked at (?:'.*', )?(\S+?):(\d+):\d+"));
// The location patterns below are matched against one trimmed line each, and only against lines
// that a cheap test picked out: a regex searching a whole stack trace costs far more.
static JS_FRAME: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"^at (?:.*? \()?((?:[A-Za-z]:)?[^\s():]+):(\d+):\d+\)?$"));
static VITEST_FRAME: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"^❯ (?:\S+ )?([^\s:]+):(\d+):\d+$"));
static PYTHON_LOCATION: LazyLock<Regex> =
    LazyLock::new(|| pattern(r#"^(?:(\S+\.py):(\d+):|File "([^"]+\.py)", line (\d+))"#));
static GO_LINE_PREFIX: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"^[A-Za-z0-9_./-]+\.go:\d+(?::\d+)?: (.+)$"));
static GO_LOCATION: LazyLock<Regex> = LazyLock::new(|| {
    pattern(r"^(?:([A-Za-z0-9_./-]+\.go):(\d+)(?::\d+)?: |(\S+\.go):(\d+)(?: \+0x[0-9a-f]+)?$)")
});

/// Stack frames of these packages are the test framework's or the JDK's, never the test's.
const JAVA_FRAMEWORK_PREFIXES: [&str; 20] = [
    "java.",
    "javax.",
    "jdk.",
    "sun.",
    "com.sun.",
    "kotlin.",
    "scala.",
    "groovy.",
    "org.codehaus.groovy.",
    "org.junit.",
    "junit.",
    "org.opentest4j.",
    "org.testng.",
    "org.apache.maven.",
    "org.gradle.",
    "worker.org.gradle.",
    "org.hamcrest.",
    "org.assertj.",
    "org.mockito.",
    "org.spockframework.",
];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Location {
    file: String,
    line: u32,
}

fn location(file: &str, line: &str) -> Option<Location> {
    Some(Location {
        file: file.to_owned(),
        line: line.parse().ok()?,
    })
}

/// The failure's location in `body`, by the first of the producer families whose pattern
/// matches (see the module documentation).
fn locate(body: &str, class: Option<&str>) -> Option<Location> {
    if body.is_empty() {
        return None;
    }
    let panic = body.lines().find(|line| line.contains("panicked at "));
    if let Some((file, line)) = panic
        .and_then(|line| RUST_LOCATION.captures(line))
        .and_then(|captures| pair(captures, 1))
    {
        return location(file, line);
    }

    // (class or path, line) candidates of each family, in the order the text gives them.
    let mut java = Vec::new();
    let mut python = Vec::new();
    let mut go = Vec::new();
    let mut js = Vec::new();
    for line in body.lines() {
        let line = line.trim();
        if line.starts_with("at ") {
            if let Some(frame) = java_frame(line) {
                java.push(frame);
            } else if let Some(found) = JS_FRAME.captures(line).and_then(|c| pair(c, 1)) {
                js.push(found);
            }
        } else if line.starts_with("❯ ") {
            js.extend(VITEST_FRAME.captures(line).and_then(|c| pair(c, 1)));
        } else if line.contains(".py") {
            python.extend(PYTHON_LOCATION.captures(line).and_then(|c| pair(c, 1)));
        } else if line.contains(".go:") {
            go.extend(GO_LOCATION.captures(line).and_then(|c| pair(c, 1)));
        }
    }

    if !java.is_empty() {
        let own = class.and_then(|class| {
            java.iter().find(|(frame, _, _)| {
                *frame == class
                    || frame
                        .strip_prefix(class)
                        .is_some_and(|rest| rest.starts_with('$'))
            })
        });
        let not_framework = || {
            java.iter().find(|(frame, _, _)| {
                !JAVA_FRAMEWORK_PREFIXES
                    .iter()
                    .any(|prefix| frame.starts_with(prefix))
            })
        };
        let (_, file, line) = own.or_else(not_framework)?;
        return location(file, line);
    }
    if !python.is_empty() {
        let own = class.and_then(|class| python.iter().find(|(file, _)| is_module_of(file, class)));
        let (file, line) = own.or(python.first())?;
        return location(file, line);
    }
    if !go.is_empty() {
        let test = go.iter().find(|(file, _)| file.ends_with("_test.go"));
        let (file, line) = test.or(go.first())?;
        return location(file, line);
    }
    js.retain(|(file, _)| !file.contains("node_modules/") && !file.contains("node_modules\\"));
    let own = class.and_then(|class| js.iter().find(|(file, _)| same_file(file, class)));
    let test = || {
        js.iter().find(|(file, _)| {
            [".test.", ".spec.", "__tests__", "_test.", "_spec."]
                .iter()
                .any(|marker| file.contains(marker))
        })
    };
    let (file, line) = own.or_else(test).or(js.first())?;
    location(file, line)
}

/// The (class, file, line) of a JVM stack frame such as `at com.example.FooTest.bar(FooTest.java:7)`
/// (also with a module or class loader prefix: `at java.base/java.lang.Thread.run(…)`, `at
/// app//com.example.Foo.bar(…)`). Parsed by hand: traces have dozens of frames.
fn java_frame(line: &str) -> Option<(&str, &str, &str)> {
    let rest = line.strip_prefix("at ")?.trim_start();
    let open = rest.find('(')?;
    let close = open + rest[open..].find(')')?;
    let qualified = &rest[..open];
    // A JavaScript frame has a space before its parenthesis (`at Object.toBe (file.js:9:25)`).
    if qualified.is_empty() || qualified.contains(char::is_whitespace) {
        return None;
    }
    let qualified = qualified.rsplit('/').next().unwrap_or(qualified);
    let (class, method) = qualified.rsplit_once('.')?;
    let (file, number) = rest[open + 1..close].rsplit_once(':')?;
    let plausible = !class.is_empty()
        && !method.is_empty()
        && file.contains('.')
        && !file.contains(['/', '\\', ':'])
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit());
    plausible.then_some((class, file, number))
}

/// The (file, line) pair of a location pattern whose two alternatives capture them as groups
/// `first`, `first + 1` and `first + 2`, `first + 3`.
fn pair<'h>(captures: regex::Captures<'h>, first: usize) -> Option<(&'h str, &'h str)> {
    let file = captures.get(first).or_else(|| captures.get(first + 2))?;
    let line = captures
        .get(first + 1)
        .or_else(|| captures.get(first + 3))?;
    Some((file.as_str(), line.as_str()))
}

/// Whether two paths name the same file as far as can be told: equal, or one ends with the
/// other at a path separator (a relative path and an absolute one).
fn same_file(a: &str, b: &str) -> bool {
    let a = a.trim_start_matches("./");
    let b = b.trim_start_matches("./");
    let (long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    !short.is_empty()
        && long
            .strip_suffix(short)
            .is_some_and(|head| head.is_empty() || head.ends_with('/') || head.ends_with('\\'))
}

/// Whether the Python file `path` is the module of the test class `class` (`tests.test_calc`
/// or `tests.test_calc.TestStorage` for `tests/test_calc.py` or `/src/app/tests/test_calc.py`).
fn is_module_of(path: &str, class: &str) -> bool {
    let dotted = path
        .trim_end_matches(".py")
        .trim_start_matches("./")
        .replace(['/', '\\'], ".");
    let mut module = class;
    loop {
        if dotted == module
            || dotted
                .strip_suffix(module)
                .is_some_and(|head| head.ends_with('.'))
        {
            return true;
        }
        match module.rfind('.') {
            Some(dot) => module = &module[..dot],
            None => return false,
        }
    }
}

/// Milliseconds from a JUnit `time` in seconds. Commas are Surefire's thousands separators
/// (`1,234.5`, its XSD's pattern) when they group digits by three after a non-zero lead, and a
/// decimal comma otherwise (`0,5`, some locales' formatters).
fn parse_duration_ms(time: &str) -> Option<u64> {
    let time = time.trim();
    let normalized: Cow<'_, str> = if time.contains(',') {
        let integer = time.split('.').next().unwrap_or(time);
        let mut groups = integer.split(',');
        let lead = groups.next().unwrap_or("");
        let grouped = (1..=3).contains(&lead.len())
            && !lead.starts_with('0')
            && lead.bytes().all(|b| b.is_ascii_digit())
            && groups.all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()));
        if grouped {
            Cow::Owned(time.replace(',', ""))
        } else if time.matches(',').count() == 1 && !time.contains('.') {
            Cow::Owned(time.replace(',', "."))
        } else {
            return None;
        }
    } else {
        Cow::Borrowed(time)
    };
    let seconds: f64 = normalized.parse().ok()?;
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    // A float-to-integer cast saturates, so an absurd duration becomes u64::MAX, not a wrap.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some((seconds * 1000.0).round() as u64)
}

/// An attribute value with the predefined entities and character references expanded and its
/// whitespace normalized as XML says; an unknown entity reference is kept as written.
fn unescape_attribute(raw: &str) -> Cow<'_, str> {
    if !raw
        .bytes()
        .any(|b| matches!(b, b'&' | b'\t' | b'\n' | b'\r'))
    {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find(['&', '\t', '\n', '\r']) {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if rest[at..].starts_with('&') {
            // An entity name is short; a `;` far away belongs to something else.
            match after.find(';').filter(|end| *end <= 32) {
                Some(end) => {
                    push_named_reference(&mut out, &after[..end]);
                    rest = &after[end + 1..];
                }
                None => {
                    out.push('&');
                    rest = after;
                }
            }
        } else {
            out.push(' ');
            rest = if rest[at..].starts_with("\r\n") {
                &rest[at + 2..]
            } else {
                after
            };
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Appends what `&name;` stands for: a character reference or a predefined entity; anything else
/// (an entity a DTD declares) as written, unexpanded.
fn push_named_reference(out: &mut String, name: &str) {
    let character = if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
        u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)
    } else if let Some(decimal) = name.strip_prefix('#') {
        decimal.parse().ok().and_then(char::from_u32)
    } else {
        None
    };
    match (character, resolve_predefined_entity(name)) {
        (Some(c), _) if c != '\0' => out.push(c),
        (_, Some(text)) => out.push_str(text),
        _ => {
            out.push('&');
            out.push_str(name);
            out.push(';');
        }
    }
}

fn attribute<'a>(element: &'a BytesStart<'_>, name: &str) -> Option<Cow<'a, str>> {
    element
        .attributes()
        .with_checks(false)
        .map_while(Result::ok)
        .find(|attr| attr.key.local_name().into_inner() == name)
        .map(|attr| match attr.value {
            Cow::Borrowed(raw) => unescape_attribute(raw),
            Cow::Owned(raw) => Cow::Owned(unescape_attribute(&raw).into_owned()),
        })
}

/// Appends `text` to a body, stopping at [`MAX_BODY_BYTES`] on a character boundary.
fn push_bounded(body: &mut String, text: &str) {
    let room = MAX_BODY_BYTES.saturating_sub(body.len());
    if text.len() <= room {
        body.push_str(text);
    } else {
        body.push_str(&text[..floor_char_boundary(text, room)]);
    }
}

/// `text` cut to at most `max` bytes on a character boundary, ending in `…` when cut.
fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let ellipsis = '…';
    let cut = floor_char_boundary(text, max.saturating_sub(ellipsis.len_utf8()));
    let mut out = String::with_capacity(cut + ellipsis.len_utf8());
    out.push_str(&text[..cut]);
    out.push(ellipsis);
    out
}

fn floor_char_boundary(text: &str, index: usize) -> usize {
    let mut index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// The 1-based line and column (in characters) of byte `offset` of `text`.
fn line_column(text: &str, offset: u64) -> (u64, u64) {
    let offset = floor_char_boundary(text, usize::try_from(offset).unwrap_or(usize::MAX));
    let before = &text[..offset];
    let line = memchr::memchr_iter(b'\n', before.as_bytes()).count() as u64 + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before[line_start..].chars().count() as u64 + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_surefire_grouping_and_decimal_commas() {
        assert_eq!(parse_duration_ms("0.002335268"), Some(2));
        assert_eq!(parse_duration_ms(" 1.5 "), Some(1500));
        assert_eq!(parse_duration_ms("1,234.5"), Some(1_234_500));
        assert_eq!(parse_duration_ms("1,234"), Some(1_234_000));
        assert_eq!(parse_duration_ms("12,345,678"), Some(12_345_678_000));
        assert_eq!(parse_duration_ms("0,5"), Some(500));
        assert_eq!(parse_duration_ms("12,5"), Some(12_500));
        assert_eq!(parse_duration_ms(""), None);
        assert_eq!(parse_duration_ms("1,2,3"), None);
        assert_eq!(parse_duration_ms("-1"), None);
        assert_eq!(parse_duration_ms("NaN"), None);
        assert_eq!(parse_duration_ms("inf"), None);
        assert_eq!(parse_duration_ms("soon"), None);
        assert_eq!(parse_duration_ms("1e300"), Some(u64::MAX));
    }

    #[test]
    fn attributes_expand_only_predefined_entities_and_character_references() {
        assert_eq!(unescape_attribute("a &lt; b"), "a < b");
        assert_eq!(unescape_attribute("x&#10;y&#x41;"), "x\nyA");
        assert_eq!(unescape_attribute("&lol9; & more"), "&lol9; & more");
        assert_eq!(unescape_attribute("two\r\nlines\tand"), "two lines and");
        assert_eq!(unescape_attribute("&#0;"), "&#0;");
        assert!(matches!(
            unescape_attribute("plain"),
            Cow::Borrowed("plain")
        ));
    }

    #[test]
    fn bounded_cuts_on_a_character_boundary_within_the_limit() {
        assert_eq!(bounded("abc", 3), "abc");
        assert_eq!(bounded("abcd", 3), "…");
        let cut = bounded("ééééé", 8);
        assert_eq!(cut, "éé…");
        assert!(cut.len() <= 8);
    }

    #[test]
    fn line_column_counts_characters_from_one() {
        let text = "ab\nçd\nef";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 3), (2, 1));
        assert_eq!(line_column(text, 5), (2, 2));
        assert_eq!(line_column(text, 100), (3, 3));
    }

    #[test]
    fn sniffing_skips_declarations_comments_and_doctypes() {
        assert!(starts_like_report(b"<testsuites>"));
        assert!(starts_like_report(b"<testsuite name='x'/>"));
        assert!(starts_like_report(
            b"\xEF\xBB\xBF<?xml version='1.0'?>\n<!-- hi -->\n<!DOCTYPE t [<!ENTITY a 'b'>]>\n<testsuite>"
        ));
        assert!(!starts_like_report(b"<testsuitex>"));
        assert!(!starts_like_report(b"<project><testsuite>"));
        assert!(!starts_like_report(b"<!-- never closed <testsuite>"));
        assert!(!starts_like_report(b"<testsuite"));
    }

    #[test]
    fn java_frames_are_read_with_any_prefix_and_javascript_frames_are_not() {
        assert_eq!(
            java_frame("at com.example.FooTest.bar(FooTest.java:7)"),
            Some(("com.example.FooTest", "FooTest.java", "7"))
        );
        assert_eq!(
            java_frame("at java.base/java.lang.Thread.run(Thread.java:1583)"),
            Some(("java.lang.Thread", "Thread.java", "1583"))
        );
        assert_eq!(
            java_frame("at app//com.example.FooTest$Inner.lambda$bar$0(FooTest.kt:12) ~[test/:?]"),
            Some(("com.example.FooTest$Inner", "FooTest.kt", "12"))
        );
        assert_eq!(java_frame("at Object.toBe (/src/calc.test.js:9:25)"), None);
        assert_eq!(java_frame("at /src/calc.spec.js:14:12"), None);
        assert_eq!(java_frame("at Native.method(Native Method)"), None);
        assert_eq!(java_frame("at x.Y.z(Unknown Source)"), None);
    }

    #[test]
    fn python_modules_match_their_test_classes() {
        assert!(is_module_of("tests/test_calc.py", "tests.test_calc"));
        assert!(is_module_of(
            "tests/test_calc.py",
            "tests.test_calc.TestStorage"
        ));
        assert!(is_module_of(
            "/src/app/tests/test_calc.py",
            "tests.test_calc"
        ));
        assert!(!is_module_of("calc.py", "tests.test_calc"));
        assert!(!is_module_of("other_test_calc.py", "test_calc"));
    }
}
