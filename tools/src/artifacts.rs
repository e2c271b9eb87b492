//! The artifact tools: which files an execution's steps saved, and bounded reads of them. Text is
//! read by line number with the same arguments, cuts and notes as get_logs ([`crate::lines`]);
//! binary files are described, never dumped. Paths are confined to the execution's store by
//! [`testloop_orchestrator::artifacts`].

use std::fmt::Write as _;
use std::path::Path;

use rmcp::handler::server::tool::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use testloop_orchestrator::artifacts::{self, Kind, ListEntry, MAX_LIST_ENTRIES, MAX_SCAN_BYTES};
use testloop_orchestrator::execution::ExecutionRecord;

use crate::TestloopServer;
use crate::lines::{self, Budget, LineArgs, Mode, NumberedLine};
use crate::output::{NextCall, Reply, ToolError, format_bytes};

/// Bytes of file text one read_artifact response carries at most, counted as rendered in the text
/// content (line number prefix included), when `max_bytes` does not ask for less; a header line
/// and a closing note come on top. What does not fit is cut, and the closing note says which
/// lines and how to get them.
pub const MAX_ARTIFACT_RESPONSE_BYTES: usize = 16 * 1024;

/// The smallest `max_bytes` honoured (a smaller one reads this much), so that a read always
/// shows some lines.
pub const MIN_ARTIFACT_RESPONSE_BYTES: usize = 1024;

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ListArtifactsArgs {
    /// The execution id, or a unique prefix of it.
    pub execution: String,
    /// Only the files under this directory of the store (`artifacts`), or this one file; relative
    /// to the store, as list_artifacts shows paths (no leading `/`). Default: all.
    #[serde(default)]
    pub under: Option<String>,
}

/// One saved file.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ArtifactOut {
    /// Its path in the execution's artifact store: what read_artifact takes.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// `text` (read_artifact shows its lines) or `binary` (read_artifact describes it).
    pub kind: String,
    /// Guessed from the extension (`application/xml`, `image/png`, …).
    pub media_type: String,
}

/// The files an execution saved.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ArtifactList {
    pub execution: String,
    /// The execution's status: a running one may still save more.
    pub status: String,
    /// The first files in path order (at most 200).
    pub artifacts: Vec<ArtifactOut>,
    /// Files in the store (or under `under`), listed or not.
    pub total_files: u64,
    /// Their bytes.
    pub total_bytes: u64,
    /// Whether files were left out of `artifacts`.
    pub truncated: bool,
    /// Anything to know (nothing saved, files left out, links not listed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The call to make next: reading the likeliest report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<NextCall>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ReadArtifactArgs {
    /// The execution id, or a unique prefix of it.
    pub execution: String,
    /// The file's path in the execution's artifact store, exactly as list_artifacts shows it
    /// (relative, no leading `/`: `artifacts/report.xml`).
    pub path: String,
    #[serde(flatten)]
    pub lines: LineArgs,
    /// Bytes of file text in this response at most, counted as rendered with line numbers
    /// (default and at most 16384, at least 1024).
    #[serde(default)]
    pub max_bytes: Option<usize>,
}

/// What was read from one artifact.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ArtifactView {
    pub execution: String,
    /// The file's path in the store.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// `text` or `binary`.
    pub kind: String,
    pub media_type: String,
    /// Text: lines in the file (in its first 256 MiB, for a larger file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_lines: Option<u64>,
    /// Text: the lines read, numbered from 1.
    pub lines: Vec<NumberedLine>,
    /// Grep: matches in the whole file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_matches: Option<u64>,
    /// Binary: the first bytes, as hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bytes: Option<String>,
    /// Anything to know about this read (binary, only part of a huge file read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Whether lines asked for were left out (size cap, line limit or `max_matches`).
    pub truncated: bool,
    /// The call that gets what was left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<NextCall>,
}

#[tool_router(router = artifact_tools, vis = "pub(crate)")]
impl TestloopServer {
    /// List the files an execution's steps saved (a step keeps files with `artifacts: {paths:
    /// [...]}`): each file's path in the execution's artifact store, size, kind (text or binary)
    /// and media type, in path order, at most 200 per call with the total count and size. As in
    /// Testkube, a file is stored relative to the working directory of the step that saved it
    /// (`/data/artifacts/report.xml` saved from `/data` is `artifacts/report.xml`), and a file
    /// outside it at the path the step saw without the leading `/`. `under` narrows to a
    /// directory. Read a file with read_artifact.
    #[tool(
        output_schema = schema_for_output::<ArtifactList>(),
        annotations(
            title = "List artifacts",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn list_artifacts(
        &self,
        Parameters(args): Parameters<ListArtifactsArgs>,
    ) -> Result<Reply<ArtifactList>, ToolError> {
        let (record, root) = self.orchestrator.artifact_store(&args.execution)?;
        blocking(move || list(&record, &root, args.under.as_deref())).await
    }

    /// Read a file an execution saved (paths from list_artifacts) without flooding the context,
    /// the way get_logs reads a step's log: text from its first line by default, or `tail`,
    /// `head`, a line range `from`..`to`, or `grep` (regex) with `context` lines around each
    /// match. Lines are numbered, ANSI colour codes stripped, long lines cut, and the text is
    /// capped at 16 KiB (`max_bytes` asks for less); when something is cut, the last line says
    /// which lines were left out and the exact call that gets them. A binary file (screenshot,
    /// archive) is described: size, media type and its first bytes as hex.
    #[tool(
        output_schema = schema_for_output::<ArtifactView>(),
        annotations(
            title = "Read an artifact",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn read_artifact(
        &self,
        Parameters(args): Parameters<ReadArtifactArgs>,
    ) -> Result<Reply<ArtifactView>, ToolError> {
        let (record, root) = self.orchestrator.artifact_store(&args.execution)?;
        let mode = args.lines.mode()?;
        blocking(move || read(&record.id, &root, &args, mode)).await
    }
}

/// Runs file work off the async workers: a scan of a large artifact takes a while.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ToolError::new(format!("internal error: the read failed: {error}")))?
}

fn list(
    record: &ExecutionRecord,
    root: &Path,
    under: Option<&str>,
) -> Result<Reply<ArtifactList>, ToolError> {
    let under = under.map(str::trim).filter(|under| !under.is_empty());
    let listing = artifacts::list(root, under)
        .map_err(|error| path_error(root, under.unwrap_or_default(), error))?;
    let place = under
        .map(|under| format!(" under {under}"))
        .unwrap_or_default();
    let mut notes = Vec::new();
    if listing.total_files == 0 {
        notes.push(if under.is_some() {
            format!("no files{place}")
        } else if record.status.is_terminal() {
            "the execution saved no artifacts: a step keeps files with `artifacts: {paths: \
             ['/data/artifacts/**']}`"
                .to_owned()
        } else {
            "no artifacts yet: the execution is still running, and steps save files as they \
             finish"
                .to_owned()
        });
    }
    if listing.truncated {
        notes.push(format!(
            "{} of {} files listed (the first in path order, at most {MAX_LIST_ENTRIES}): narrow \
             with `under`",
            listing.entries.len(),
            listing.total_files
        ));
    }
    if listing.skipped > 0 {
        notes.push(format!(
            "{} symbolic link(s) or special file(s) not listed",
            listing.skipped
        ));
    }
    let next = likeliest_report(&listing.entries).map(|entry| {
        NextCall::new(
            "read_artifact",
            json!({"execution": record.id, "path": entry.path}),
            if entry.kind == Kind::Text {
                "read the likeliest report (text: `grep` searches it)"
            } else {
                "describe it"
            },
        )
    });

    let mut text = format!(
        "execution {} ({}): {} file(s), {}{place}\n",
        record.id,
        record.status,
        listing.total_files,
        format_bytes(listing.total_bytes)
    );
    for entry in &listing.entries {
        let _ = writeln!(
            text,
            "{}  {}  {}  {}",
            entry.path,
            format_bytes(entry.size),
            entry.kind,
            entry.media_type
        );
    }
    let note = (!notes.is_empty()).then(|| notes.join("; "));
    if let Some(note) = &note {
        let _ = writeln!(text, "({note})");
    }
    if let Some(next) = &next {
        let _ = write!(text, "next: {next}");
    }
    Ok(Reply::new(
        ArtifactList {
            execution: record.id.clone(),
            status: record.status.to_string(),
            artifacts: listing
                .entries
                .into_iter()
                .map(|entry| ArtifactOut {
                    path: entry.path,
                    size: entry.size,
                    kind: entry.kind.to_string(),
                    media_type: entry.media_type.to_owned(),
                })
                .collect(),
            total_files: listing.total_files,
            total_bytes: listing.total_bytes,
            truncated: listing.truncated,
            note,
            next,
        },
        text.trim_end(),
    ))
}

/// A refused or missing path as a tool error. An absolute path is most likely the path a step
/// wrote; the store keeps that file relative to the step's working directory, so the longest tail
/// of it that names a stored file is offered (`/data/artifacts/report.xml` written from `/data`
/// is stored as `artifacts/report.xml`).
fn path_error(root: &Path, requested: &str, error: artifacts::Error) -> ToolError {
    let absolute = matches!(error, artifacts::Error::AbsolutePath(_));
    let message = ToolError::from(error);
    if !absolute {
        return message;
    }
    let mut tail = requested.trim_start_matches('/');
    loop {
        if artifacts::resolve(root, tail).is_ok_and(|path| path.is_file()) {
            return ToolError::new(format!("{message}; the store holds `{tail}`: pass that"));
        }
        match tail.split_once('/') {
            Some((_, rest)) => tail = rest,
            None => return message,
        }
    }
}

/// The file an agent most likely wants first: an XML report (JUnit), else any text, else the first
/// file.
fn likeliest_report(entries: &[ListEntry]) -> Option<&ListEntry> {
    entries
        .iter()
        .find(|e| e.kind == Kind::Text && e.media_type == "application/xml")
        .or_else(|| entries.iter().find(|e| e.kind == Kind::Text))
        .or_else(|| entries.first())
}

fn read(
    execution: &str,
    root: &Path,
    args: &ReadArtifactArgs,
    mode: Option<Mode>,
) -> Result<Reply<ArtifactView>, ToolError> {
    let requested = args.path.trim();
    let artifact =
        artifacts::open(root, requested).map_err(|error| path_error(root, requested, error))?;
    let mut view = ArtifactView {
        execution: execution.to_owned(),
        path: artifact.path().to_owned(),
        size: artifact.size(),
        kind: artifact.kind().to_string(),
        media_type: artifact.media_type().to_owned(),
        total_lines: None,
        lines: Vec::new(),
        total_matches: None,
        first_bytes: None,
        note: None,
        truncated: false,
        next: None,
    };
    let heading = format!(
        "execution {execution} artifact {} ({}, {}, {})",
        view.path,
        view.kind,
        view.media_type,
        format_bytes(view.size)
    );

    if artifact.kind() == Kind::Binary {
        let hex = artifact.preview_hex()?;
        let asked = if mode.is_some() {
            "; line arguments do not apply"
        } else {
            ""
        };
        let note = format!("a binary file is described, not shown{asked}");
        let text = format!(
            "{heading}\nfirst {} bytes: {hex}\n({note})",
            view.size.min(artifacts::PREVIEW_BYTES as u64)
        );
        view.first_bytes = Some(hex);
        view.note = Some(note);
        return Ok(Reply::new(view, text));
    }

    let reader = artifact.text()?;
    let total = reader.line_count();
    let mode = mode.unwrap_or(Mode::Range(1, None));
    let cap = args
        .max_bytes
        .unwrap_or(MAX_ARTIFACT_RESPONSE_BYTES)
        .clamp(MIN_ARTIFACT_RESPONSE_BYTES, MAX_ARTIFACT_RESPONSE_BYTES);
    let mut budget = Budget::new(cap, cap);
    let read = lines::read_section(&reader, &mode, &mut budget)?;
    let partial = (reader.readable_bytes() < view.size).then(|| {
        let limit = format_bytes(MAX_SCAN_BYTES);
        format!(
            "the file is larger than {limit}: only its first {limit} are read ({total} lines), \
             and tail and grep cover that part"
        )
    });
    let mut notes: Vec<String> = partial.iter().cloned().collect();
    let mut cut = None;
    if let Some(more) = read.continuation(total, &budget) {
        let mut base = json!({"execution": execution, "path": view.path});
        if let (Some(max_bytes), Some(arguments)) = (args.max_bytes, base.as_object_mut()) {
            arguments.insert("max_bytes".to_owned(), max_bytes.into());
        }
        let why = if more.grep {
            "read on from where the shown matches end, or narrow the regex or raise max_matches"
        } else {
            "the lines left out"
        };
        let call = NextCall::new("read_artifact", more.arguments(base), why);
        cut = Some(format!("{}; {}: {call}", more.note, more.lead()));
        notes.push(more.note);
        view.next = Some(call);
    }

    let mut text = format!("== {heading}: {}", lines::shown_range(&read.lines, total));
    if let Some(matches) = read.total_matches {
        let _ = write!(text, ", {matches} match(es) of `{}`", grep_pattern(&mode));
    }
    text.push('\n');
    lines::render_lines(&mut text, &read.lines, read.total_matches.is_some());
    if let Some(partial) = &partial {
        let _ = writeln!(text, "({partial})");
    }
    if let Some(cut) = &cut {
        let _ = write!(text, "[truncated: {cut}]");
    }
    view.truncated = cut.is_some();
    view.total_lines = Some(total);
    view.total_matches = read.total_matches;
    view.lines = read.lines;
    view.note = (!notes.is_empty()).then(|| notes.join("; "));
    Ok(Reply::new(view, text.trim_end()))
}

fn grep_pattern(mode: &Mode) -> &str {
    match mode {
        Mode::Grep { pattern, .. } => pattern,
        _ => "",
    }
}
