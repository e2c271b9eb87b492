//! An execution's artifact store: the files its steps saved, listed and read without ever leaving
//! it.
//!
//! The store is one directory per execution ([`crate::Orchestrator::artifacts_dir`]). As in
//! Testkube, the local executor copies each saved file relative to the working directory of the
//! step that saved it (`/data/artifacts/report.xml` saved from `/data` is `artifacts/report.xml`),
//! and a file outside that directory at the path the step saw without its leading `/`
//! (`data/artifacts/report.xml` when saved from `/data/project`). Readers name files by their
//! relative path in the store, and every such path goes through [`resolve`], which refuses whatever could reach outside the store: absolute paths,
//! `..` components, NUL bytes, and symbolic links (a linked file, or a linked directory anywhere in
//! the path) whose target lies outside. Listings never follow symbolic links.
//!
//! A file is text when its first [`SNIFF_BYTES`] hold no NUL byte and are valid UTF-8; anything
//! else is binary, and is described (size, media type, first bytes) rather than dumped. Text is
//! read by line number, like a step log: [`TextReader`] has the same `lines` and `grep` as
//! [`crate::logs::LogReader`]. It streams: one pass counts the lines and remembers where every
//! `CHECKPOINT_LINES`th line starts, so that memory stays small whatever the size of the file,
//! and only the first [`MAX_SCAN_BYTES`] of a file are read at all.

use std::collections::BinaryHeap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::ops::Range;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use crate::execution::TimestampMicros;
use crate::logs::{AtReader, GrepCollector, GrepOptions, GrepResult, LogLine};

/// Files one listing returns at most (the first in path order); the listing still counts them all.
pub const MAX_LIST_ENTRIES: usize = 200;

/// Bytes read from the start of a file to tell text from binary.
pub const SNIFF_BYTES: usize = 8 * 1024;

/// Bytes of a text file that line reads (counting, ranges, tail, grep) cover, from its start. A
/// larger file is read as its first `MAX_SCAN_BYTES`, and [`TextReader::readable_bytes`] says so.
pub const MAX_SCAN_BYTES: u64 = 256 * 1024 * 1024;

/// Bytes of one line kept when reading a text file; the rest of a longer line is skipped, and the
/// line keeps its number. Grep sees the kept part only.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Bytes of a binary file shown (as hex) in its description.
pub const PREVIEW_BYTES: usize = 32;

/// Length of an artifact path, in bytes, at most (Linux's `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;

/// Lines between two remembered line starts: a read of line `n` scans at most this many lines
/// before it.
const CHECKPOINT_LINES: u64 = 1024;

/// Size of the reads made while scanning a file.
const SCAN_CHUNK_BYTES: usize = 64 * 1024;

/// What a path must look like, for error messages.
const EXPECTED: &str =
    "a path must be relative to the execution's artifact store, like data/artifacts/report.xml";

/// What can go wrong with an artifact.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the artifact path is empty: {expected}", expected = EXPECTED)]
    EmptyPath,
    #[error("the artifact path is {len} bytes long; the limit is {max}", max = MAX_PATH_BYTES)]
    PathTooLong { len: usize },
    #[error("the artifact path contains a NUL byte: {expected}", expected = EXPECTED)]
    NulByte,
    #[error("`{0}` is absolute: {expected}", expected = EXPECTED)]
    AbsolutePath(String),
    #[error("`{0}` contains a `..` component, which could leave the artifact store: {expected}", expected = EXPECTED)]
    ParentComponent(String),
    /// The path resolves, through a symbolic link, to a place outside the store.
    #[error(
        "`{0}` leads outside the execution's artifact store through a symbolic link; only files \
         inside the store can be read"
    )]
    OutsideStore(String),
    #[error("no artifact `{0}` in the execution's artifact store")]
    NotFound(String),
    #[error("`{0}` is a directory, not a file")]
    IsDirectory(String),
    #[error("`{0}` is not a regular file (a device, socket or pipe)")]
    NotAFile(String),
    /// Line access was asked of a binary file.
    #[error("`{0}` is binary: it has no lines to read")]
    Binary(String),
    #[error("failed to read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// Whether an error means that the path names nothing (rather than that it could not be read).
fn is_missing(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// Whether a file holds text or bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Text,
    Binary,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Binary => "binary",
        })
    }
}

/// Checks the rules a requested path must follow on its own, before the file system is asked,
/// and returns it as a relative path.
fn relative_path(requested: &str) -> Result<&Path> {
    if requested.is_empty() {
        return Err(Error::EmptyPath);
    }
    if requested.len() > MAX_PATH_BYTES {
        return Err(Error::PathTooLong {
            len: requested.len(),
        });
    }
    if requested.contains('\0') {
        return Err(Error::NulByte);
    }
    let path = Path::new(requested);
    for component in path.components() {
        match component {
            Component::Normal(_) | Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(Error::AbsolutePath(requested.to_owned()));
            }
            // Refused even when it would stay inside: `..` after a symbolic link climbs from the
            // link's target, not from where the path seems to be.
            Component::ParentDir => return Err(Error::ParentComponent(requested.to_owned())),
        }
    }
    Ok(path)
}

/// The canonical form of `root` (every symbolic link resolved), or `None` when the execution has
/// no store (it saved no artifacts).
fn canonical_root(root: &Path) -> Result<Option<PathBuf>> {
    match fs::canonicalize(root) {
        Ok(path) => Ok(Some(path)),
        Err(error) if is_missing(&error) => Ok(None),
        Err(error) => Err(io_err(root)(error)),
    }
}

/// [`resolve`] under a root already canonical.
fn resolve_in(root: &Path, requested: &str) -> Result<PathBuf> {
    let relative = relative_path(requested)?;
    let joined = root.join(relative);
    let path = fs::canonicalize(&joined).map_err(|error| {
        if is_missing(&error) {
            Error::NotFound(requested.to_owned())
        } else {
            io_err(&joined)(error)
        }
    })?;
    if !path.starts_with(root) {
        return Err(Error::OutsideStore(requested.to_owned()));
    }
    Ok(path)
}

/// The file or directory `requested` names inside the store at `root`, as a canonical path that
/// is inside the canonical root. Refuses empty paths, paths longer than [`MAX_PATH_BYTES`], NUL
/// bytes, absolute paths, any `..` component, and paths whose target (after every symbolic link,
/// wherever it is in the path) is outside the store; a path that names nothing is
/// [`Error::NotFound`].
///
/// The store is written by testloop itself and holds no symbolic links of its own making; the
/// check is made when the path is resolved, so a link swapped in afterwards by another process
/// could still be followed in the middle of the path (the last component never is: files are
/// opened with `O_NOFOLLOW`).
pub fn resolve(root: &Path, requested: &str) -> Result<PathBuf> {
    locate(root, requested).map(|(_, path)| path)
}

/// The canonical root and [`resolve`]d path.
fn locate(root: &Path, requested: &str) -> Result<(PathBuf, PathBuf)> {
    // The syntax is checked first, so that a bad path is refused the same way whether or not the
    // store exists.
    relative_path(requested)?;
    let root = canonical_root(root)?.ok_or_else(|| Error::NotFound(requested.to_owned()))?;
    let path = resolve_in(&root, requested)?;
    Ok((root, path))
}

/// A path relative to the store's root, `/`-separated.
fn relative_to(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// One file of a listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ListEntry {
    /// Relative to the store, `/`-separated: what [`resolve`] and [`open`] take.
    pub path: String,
    pub size: u64,
    pub kind: Kind,
    /// A guess from the file name's extension (and the kind when the extension says nothing).
    pub media_type: &'static str,
}

/// The files of a store, or of a directory in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Listing {
    /// The first [`MAX_LIST_ENTRIES`] files in path order.
    pub entries: Vec<ListEntry>,
    /// Files under the listed directory, listed or not.
    pub total_files: u64,
    /// Their bytes.
    pub total_bytes: u64,
    /// Whether files were left out of `entries`.
    pub truncated: bool,
    /// Symbolic links and special files found and not listed (links are never followed).
    pub skipped: u64,
}

/// The regular files of the store at `root`, or of the directory `under` in it (a file given as
/// `under` lists that file), in path order: the first [`MAX_LIST_ENTRIES`], with the count and
/// size of them all. A store that does not exist is empty: the execution saved no artifacts.
pub fn list(root: &Path, under: Option<&str>) -> Result<Listing> {
    let Some(root) = canonical_root(root)? else {
        if let Some(under) = under {
            relative_path(under)?;
            return Err(Error::NotFound(under.to_owned()));
        }
        return Ok(Listing::default());
    };
    let start = match under {
        Some(under) => resolve_in(&root, under)?,
        None => root.clone(),
    };
    let mut listing = Listing::default();
    // The entries that sort first, largest on top, so that memory stays bounded by the limit
    // however many files there are.
    let mut kept: BinaryHeap<(String, u64, PathBuf)> = BinaryHeap::new();
    let mut keep = |listing: &mut Listing, path: &Path, size: u64| {
        listing.total_files += 1;
        listing.total_bytes += size;
        kept.push((relative_to(&root, path), size, path.to_owned()));
        if kept.len() > MAX_LIST_ENTRIES {
            kept.pop();
            listing.truncated = true;
        }
    };
    let start_meta = fs::symlink_metadata(&start).map_err(io_err(&start))?;
    if start_meta.is_file() {
        keep(&mut listing, &start, start_meta.len());
    }
    let mut pending = if start_meta.is_dir() {
        vec![start]
    } else {
        Vec::new()
    };
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let path = entry.path();
            // The entry's own type: a symbolic link is a link here, never its target.
            let file_type = entry.file_type().map_err(io_err(&path))?;
            if file_type.is_dir() {
                pending.push(path);
            } else if file_type.is_file() {
                let size = entry.metadata().map_err(io_err(&path))?.len();
                keep(&mut listing, &path, size);
            } else {
                listing.skipped += 1;
            }
        }
    }
    for (path, size, absolute) in kept.into_sorted_vec() {
        let file = open_regular(&absolute).map_err(io_err(&absolute))?;
        let kind = sniff(&file, size).map_err(io_err(&absolute))?;
        listing.entries.push(ListEntry {
            media_type: media_type(&path, kind),
            path,
            size,
            kind,
        });
    }
    Ok(listing)
}

/// Opens a file for reading without following a symbolic link in its last component and without
/// blocking on a pipe, so that nothing swapped in after a check can make a read hang or escape.
fn open_regular(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

/// Reads up to `buf.len()` bytes from `offset`; fewer only at the end of the file.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Text or binary, from the first [`SNIFF_BYTES`] of a file of `size` bytes.
fn sniff(file: &File, size: u64) -> io::Result<Kind> {
    let mut head = vec![0u8; SNIFF_BYTES];
    let n = read_full_at(file, &mut head, 0)?;
    Ok(classify(&head[..n], (n as u64) < size))
}

/// Text or binary, from the first bytes of a file; `cut` says whether more bytes follow.
fn classify(head: &[u8], cut: bool) -> Kind {
    if head.contains(&0) {
        return Kind::Binary;
    }
    match std::str::from_utf8(head) {
        Ok(_) => Kind::Text,
        // A character cut in two by the end of the sniffed bytes is not a sign of binary.
        Err(error) if cut && error.error_len().is_none() => Kind::Text,
        Err(_) => Kind::Binary,
    }
}

/// The media type of a file, guessed from its extension; for an unknown one, plain text or
/// `application/octet-stream` by kind.
pub fn media_type(path: &str, kind: Kind) -> &'static str {
    let extension = Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match extension.as_str() {
        "xml" => "application/xml",
        "json" => "application/json",
        "html" | "htm" => "text/html",
        "txt" | "log" | "out" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "yaml" | "yml" => "application/yaml",
        "js" | "mjs" => "text/javascript",
        "css" => "text/css",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "zip" | "jar" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        _ => match kind {
            Kind::Text => "text/plain",
            Kind::Binary => "application/octet-stream",
        },
    }
}

/// An artifact opened for reading.
#[derive(Debug)]
pub struct Artifact {
    path: String,
    size: u64,
    kind: Kind,
    modified: TimestampMicros,
    file: File,
}

/// Opens the artifact `requested` (a path as [`list`] gives it) in the store at `root`, after
/// [`resolve`] has checked it.
pub fn open(root: &Path, requested: &str) -> Result<Artifact> {
    let (root, path) = locate(root, requested)?;
    let file = open_regular(&path).map_err(io_err(&path))?;
    let meta = file.metadata().map_err(io_err(&path))?;
    if meta.is_dir() {
        return Err(Error::IsDirectory(requested.to_owned()));
    }
    if !meta.is_file() {
        return Err(Error::NotAFile(requested.to_owned()));
    }
    let size = meta.len();
    let kind = sniff(&file, size).map_err(io_err(&path))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_micros()).ok())
        .unwrap_or(0);
    Ok(Artifact {
        path: relative_to(&root, &path),
        size,
        kind,
        modified,
        file,
    })
}

impl Artifact {
    /// The path relative to the store, `/`-separated, with symbolic links inside the store
    /// resolved.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Bytes in the file when it was opened.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn media_type(&self) -> &'static str {
        media_type(&self.path, self.kind)
    }

    /// Copies the file's bytes, as many as it had when opened, to `out`; how many were copied.
    pub fn copy_to(&self, out: &mut dyn io::Write) -> Result<u64> {
        let path = Path::new(&self.path);
        let mut buffer = vec![0u8; 256 * 1024];
        let mut offset = 0u64;
        while offset < self.size {
            let want = usize::try_from(self.size - offset)
                .unwrap_or(usize::MAX)
                .min(buffer.len());
            let read =
                read_full_at(&self.file, &mut buffer[..want], offset).map_err(io_err(path))?;
            if read == 0 {
                break;
            }
            out.write_all(&buffer[..read]).map_err(io_err(path))?;
            offset += read as u64;
        }
        out.flush().map_err(io_err(path))?;
        Ok(offset)
    }

    /// The first [`PREVIEW_BYTES`] bytes as hex pairs separated by spaces (`89 50 4e 47`).
    pub fn preview_hex(&self) -> Result<String> {
        let mut head = [0u8; PREVIEW_BYTES];
        let n = read_full_at(&self.file, &mut head, 0).map_err(io_err(Path::new(&self.path)))?;
        Ok(head[..n]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" "))
    }

    /// Line access to a text file: one pass over its first [`MAX_SCAN_BYTES`] counts the lines.
    pub fn text(&self) -> Result<TextReader<'_>> {
        self.text_within(MAX_SCAN_BYTES)
    }

    fn text_within(&self, scan_limit: u64) -> Result<TextReader<'_>> {
        if self.kind == Kind::Binary {
            return Err(Error::Binary(self.path.clone()));
        }
        TextReader::scan(self, self.size.min(scan_limit))
    }
}

/// Reads a text artifact by line number. Lines end with `\n` (a `\r` before it is dropped); a last
/// line without one counts. Bytes that are not UTF-8 are decoded lossily. Every line carries the
/// file's modification time as its timestamp.
#[derive(Debug)]
pub struct TextReader<'a> {
    artifact: &'a Artifact,
    readable: u64,
    line_count: u64,
    /// Where line `k * CHECKPOINT_LINES + 1` starts, for every `k` up to the last line.
    checkpoints: Vec<u64>,
}

impl<'a> TextReader<'a> {
    fn scan(artifact: &'a Artifact, readable: u64) -> Result<Self> {
        let mut checkpoints = Vec::new();
        if readable > 0 {
            checkpoints.push(0);
        }
        let mut newlines = 0u64;
        let mut last_byte = b'\n';
        let mut buf = vec![0u8; SCAN_CHUNK_BYTES];
        let mut pos = 0u64;
        while pos < readable {
            let want = usize::try_from((readable - pos).min(SCAN_CHUNK_BYTES as u64))
                .unwrap_or(SCAN_CHUNK_BYTES);
            let n = read_full_at(&artifact.file, &mut buf[..want], pos)
                .map_err(io_err(Path::new(&artifact.path)))?;
            let chunk = &buf[..n];
            for i in memchr::memchr_iter(b'\n', chunk) {
                newlines += 1;
                let next = pos + i as u64 + 1;
                if newlines.is_multiple_of(CHECKPOINT_LINES) && next < readable {
                    checkpoints.push(next);
                }
            }
            if let Some(&b) = chunk.last() {
                last_byte = b;
            }
            pos += n as u64;
            if n < want {
                // The file shrank since it was opened: read what is there.
                break;
            }
        }
        let readable = pos;
        let line_count = newlines + u64::from(last_byte != b'\n');
        Ok(Self {
            artifact,
            readable,
            line_count,
            checkpoints,
        })
    }

    pub fn line_count(&self) -> u64 {
        self.line_count
    }

    /// Bytes the lines cover: the file's size, or [`MAX_SCAN_BYTES`] for a larger file.
    pub fn readable_bytes(&self) -> u64 {
        self.readable
    }

    /// Lines whose 1-based numbers fall in `range` (clamped to what exists), each cut to
    /// [`MAX_LINE_BYTES`]. Reads from the nearest remembered line start before them; memory grows
    /// with the lines returned, so callers bound the range.
    pub fn lines(&self, range: Range<u64>) -> Result<Vec<LogLine>> {
        let start = range.start.max(1);
        let end = range.end.min(self.line_count.saturating_add(1));
        if start >= end {
            return Ok(Vec::new());
        }
        let index = (start - 1) / CHECKPOINT_LINES;
        let (mut number, offset) = match usize::try_from(index)
            .ok()
            .and_then(|i| self.checkpoints.get(i))
        {
            Some(&offset) => (index * CHECKPOINT_LINES + 1, offset),
            None => (1, 0),
        };
        let mut stream = self.stream(offset);
        let mut out = Vec::new();
        while number < end {
            let Some(bytes) = stream.next_line().map_err(self.io())? else {
                break;
            };
            if number >= start {
                out.push(LogLine {
                    number,
                    timestamp: self.artifact.modified,
                    text: String::from_utf8_lossy(bytes).into_owned(),
                });
            }
            number += 1;
        }
        Ok(out)
    }

    /// Searches the lines in one streaming pass: memory stays bounded by the context and the
    /// matches returned.
    pub fn grep(&self, regex: &regex::Regex, options: GrepOptions) -> Result<GrepResult> {
        let mut collector = GrepCollector::new(regex, options);
        let mut stream = self.stream(0);
        while let Some(bytes) = stream.next_line().map_err(self.io())? {
            collector.push(self.artifact.modified, &String::from_utf8_lossy(bytes));
        }
        Ok(collector.finish())
    }

    fn stream(&self, offset: u64) -> LineStream<'a> {
        LineStream {
            reader: BufReader::with_capacity(
                SCAN_CHUNK_BYTES,
                AtReader::at(&self.artifact.file, offset)
                    .take(self.readable.saturating_sub(offset)),
            ),
            line: Vec::new(),
        }
    }

    fn io(&self) -> impl FnOnce(io::Error) -> Error + '_ {
        io_err(Path::new(&self.artifact.path))
    }
}

/// The lines of a file from some line start on, each cut to [`MAX_LINE_BYTES`].
struct LineStream<'a> {
    reader: BufReader<io::Take<AtReader<'a>>>,
    line: Vec<u8>,
}

impl LineStream<'_> {
    /// The next line without its `\n` (nor a `\r` before it); `None` at the end.
    fn next_line(&mut self) -> io::Result<Option<&[u8]>> {
        self.line.clear();
        let mut any = false;
        loop {
            let chunk = self.reader.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            any = true;
            let (body, used, ended) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (&chunk[..i], i + 1, true),
                None => (chunk, chunk.len(), false),
            };
            let room = MAX_LINE_BYTES.saturating_sub(self.line.len());
            self.line.extend_from_slice(&body[..body.len().min(room)]);
            self.reader.consume(used);
            if ended {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        let line = &self.line[..];
        Ok(Some(line.strip_suffix(b"\r").unwrap_or(line)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("store");
        fs::create_dir_all(&root).expect("store");
        (dir, root)
    }

    fn write(root: &Path, path: &str, bytes: &[u8]) {
        let path = root.join(path);
        fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
        fs::write(path, bytes).expect("write");
    }

    #[test]
    fn a_character_cut_by_the_sniff_window_is_still_text() {
        let text = "é".repeat(SNIFF_BYTES);
        let head = &text.as_bytes()[..SNIFF_BYTES - 1];
        assert_eq!(classify(head, true), Kind::Text);
        // The same bytes as a whole file end in half a character: not UTF-8.
        assert_eq!(classify(head, false), Kind::Binary);
        assert_eq!(classify(b"ok\xff", true), Kind::Binary);
        assert_eq!(classify(b"", false), Kind::Text);
    }

    #[test]
    fn the_scan_limit_bounds_the_lines_read_at_its_edge() {
        let (_dir, root) = store();
        write(&root, "a.txt", b"one\ntwo\nthree\n");
        let artifact = open(&root, "a.txt").expect("open");
        // Exactly the file: every line.
        let whole = artifact.text_within(14).expect("text");
        assert_eq!((whole.line_count(), whole.readable_bytes()), (3, 14));
        // One byte short: the last line loses its newline but is still a line.
        let short = artifact.text_within(13).expect("text");
        assert_eq!((short.line_count(), short.readable_bytes()), (3, 13));
        assert_eq!(short.lines(3..4).expect("lines")[0].text, "three");
        // Up to the middle of the second line.
        let cut = artifact.text_within(6).expect("text");
        assert_eq!(cut.line_count(), 2);
        assert_eq!(cut.lines(1..10).expect("lines")[1].text, "tw");
        assert!(
            cut.grep(
                &regex::Regex::new("three").expect("re"),
                GrepOptions::default()
            )
            .expect("grep")
            .blocks
            .is_empty()
        );
    }

    #[test]
    fn lines_are_found_from_every_checkpoint() {
        let (_dir, root) = store();
        let total = CHECKPOINT_LINES * 3 + 5;
        let text: String = (1..=total).map(|n| format!("line {n}\n")).collect();
        write(&root, "big.log", text.as_bytes());
        let artifact = open(&root, "big.log").expect("open");
        let reader = artifact.text().expect("text");
        assert_eq!(reader.line_count(), total);
        assert_eq!(reader.checkpoints.len(), 4);
        for n in [
            1,
            CHECKPOINT_LINES - 1,
            CHECKPOINT_LINES,
            CHECKPOINT_LINES + 1,
            CHECKPOINT_LINES * 3 + 1,
            total,
        ] {
            let lines = reader.lines(n..n + 1).expect("lines");
            assert_eq!(lines.len(), 1, "line {n}");
            assert_eq!(lines[0].number, n);
            assert_eq!(lines[0].text, format!("line {n}"));
        }
        assert!(
            reader
                .lines(total + 1..total + 5)
                .expect("lines")
                .is_empty()
        );
    }

    #[test]
    fn a_file_ending_exactly_at_a_checkpoint_has_no_extra_line() {
        let (_dir, root) = store();
        let text = "x\n".repeat(usize::try_from(CHECKPOINT_LINES).expect("fits"));
        write(&root, "exact.txt", text.as_bytes());
        let artifact = open(&root, "exact.txt").expect("open");
        let reader = artifact.text().expect("text");
        assert_eq!(reader.line_count(), CHECKPOINT_LINES);
        assert_eq!(reader.checkpoints, [0]);
        let last = reader
            .lines(CHECKPOINT_LINES..CHECKPOINT_LINES + 2)
            .expect("lines");
        assert_eq!(last.len(), 1);
    }
}
