//! Step logs: one append-only file per step with a fixed-width line index beside it, so that tail,
//! head and line ranges cost the same on a 1 GB log as on a 1 MB one.
//!
//! # Layout
//!
//! ```text
//! <root>/<execution>/<encoded step path>.log   the lines, each ending in `\n`; `cat` shows the log
//! <root>/<execution>/<encoded step path>.idx   one 16-byte entry per line:
//!                                              u64 LE byte offset of the line's start in `.log`,
//!                                              i64 LE timestamp (microseconds since the epoch)
//! ```
//!
//! The step path is encoded into one file name by [`encode_step_path`]: `/` becomes `~`, and every
//! byte outside `[A-Za-z0-9._-]` (including `~` and `%` themselves) becomes `%XX`.
//!
//! # Durability
//!
//! A writer buffers in memory and, on [`LogWriter::flush`], writes the data first and the index
//! second. A process killed at any point therefore leaves either an index that is behind the data
//! (some lines unindexed) or, after a torn write, an index entry or a line cut short. Opening a log
//! (reader or writer) reconciles the two: entries pointing at or past the end of the data are
//! ignored, lines after the last indexed one are indexed by scanning from that line only, and a
//! trailing line without its newline counts as a line. A writer also writes the repair to disk.
//! Bytes are stored raw; readers decode them lossily as UTF-8.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::execution::TimestampMicros;

/// The longest line stored, in bytes (without its newline). A longer line is split into several
/// lines of at most this many bytes (at a UTF-8 character boundary when there is one within the
/// last few bytes), so that no single read of a line can grow without bound.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Size of one index entry: a u64 byte offset and an i64 timestamp, both little-endian.
pub const INDEX_ENTRY_BYTES: u64 = 16;

/// How many bytes a writer buffers before it writes them to the files on its own, without a
/// [`LogWriter::flush`].
pub const WRITE_BUFFER_BYTES: usize = 256 * 1024;

/// Size of the reads made while scanning a log (grep, crash recovery).
const SCAN_CHUNK_BYTES: usize = 64 * 1024;

/// What can go wrong with a log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O failure on a log or its index.
    #[error("failed to access log {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No log was written for that step.
    #[error("no log for step `{step}` of execution {execution}")]
    NotFound { execution: String, step: String },
    /// An execution id that cannot name a directory (empty, `.`/`..`, or with a separator).
    #[error("invalid execution id `{0}` for a log")]
    InvalidExecution(String),
    /// A step path that cannot name a log (empty).
    #[error("invalid step path `{0}` for a log")]
    InvalidStep(String),
    /// Another writer (in this process or another) has the log open.
    #[error("log {path} is already open for writing")]
    Busy { path: PathBuf },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// One stored line; `number` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    pub number: u64,
    pub timestamp: TimestampMicros,
    pub text: String,
}

/// The logs of all executions under one directory.
#[derive(Debug, Clone)]
pub struct LogStore {
    root: PathBuf,
}

impl LogStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Opens the log of a step for appending, creating it if needed. Reopening an existing log
    /// appends to it (a retried step shares one log). Only one writer may hold a log at a time.
    pub fn writer(&self, execution: &str, step: &str) -> Result<LogWriter> {
        let dir = self.execution_dir(execution)?;
        let (data_path, index_path) = self.step_paths(execution, step)?;
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        LogWriter::open(data_path, index_path)
    }

    /// Opens the log of a step for reading. The reader sees the lines flushed before it was
    /// opened; [`LogReader::refresh`] picks up later ones.
    pub fn reader(&self, execution: &str, step: &str) -> Result<LogReader> {
        let (data_path, index_path) = self.step_paths(execution, step)?;
        match LogReader::open(data_path, index_path) {
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Err(Error::NotFound {
                    execution: execution.to_owned(),
                    step: step.to_owned(),
                })
            }
            other => other,
        }
    }

    /// The step paths of an execution that have a log, in tree order (`1`, `2`, `2/1`, `10`).
    pub fn steps(&self, execution: &str) -> Result<Vec<String>> {
        let dir = self.execution_dir(execution)?;
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        let mut steps = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&dir))?;
            let name = entry.file_name();
            // Names we did not write (not UTF-8, no `.log`, bad escapes) are not step logs.
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".log")) else {
                continue;
            };
            if let Some(step) = decode_step_path(stem) {
                steps.push(step);
            }
        }
        steps.sort_by(|a, b| crate::store::compare_step_paths(a, b));
        Ok(steps)
    }

    /// Deletes every log of an execution. Returns whether there was anything to delete.
    pub fn remove_execution(&self, execution: &str) -> Result<bool> {
        let dir = self.execution_dir(execution)?;
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(&dir)(e)),
        }
    }

    /// The data (`.log`) and index (`.idx`) files of a step's log.
    pub fn step_paths(&self, execution: &str, step: &str) -> Result<(PathBuf, PathBuf)> {
        let dir = self.execution_dir(execution)?;
        if step.is_empty() {
            return Err(Error::InvalidStep(step.to_owned()));
        }
        let stem = encode_step_path(step);
        Ok((
            dir.join(format!("{stem}.log")),
            dir.join(format!("{stem}.idx")),
        ))
    }

    /// The directory holding an execution's logs.
    pub fn execution_dir(&self, execution: &str) -> Result<PathBuf> {
        let valid = !execution.is_empty()
            && !execution.starts_with('.')
            && execution
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !valid {
            return Err(Error::InvalidExecution(execution.to_owned()));
        }
        Ok(self.root.join(execution))
    }
}

/// Encodes a step path as one file name: `/` becomes `~`; bytes outside `[A-Za-z0-9._-]` become
/// `%XX`. A leading `.` is escaped too, so that no name is hidden, `.` or `..`.
pub fn encode_step_path(step: &str) -> String {
    let mut out = String::with_capacity(step.len());
    for (i, b) in step.bytes().enumerate() {
        match b {
            b'/' => out.push('~'),
            b'.' if i == 0 => out.push_str("%2E"),
            b if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') => {
                out.push(char::from(b))
            }
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The inverse of [`encode_step_path`]; `None` for a name it could not have produced.
pub fn decode_step_path(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'~' => out.push(b'/'),
            b'%' => {
                let hex = name.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    let step = String::from_utf8(out).ok()?;
    (!step.is_empty()).then_some(step)
}

/// One index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    offset: u64,
    timestamp: TimestampMicros,
}

impl Entry {
    fn to_bytes(self) -> [u8; INDEX_ENTRY_BYTES as usize] {
        let mut b = [0u8; INDEX_ENTRY_BYTES as usize];
        b[..8].copy_from_slice(&self.offset.to_le_bytes());
        b[8..].copy_from_slice(&self.timestamp.to_le_bytes());
        b
    }

    fn from_bytes(b: &[u8]) -> Self {
        let mut offset = [0u8; 8];
        let mut timestamp = [0u8; 8];
        offset.copy_from_slice(&b[..8]);
        timestamp.copy_from_slice(&b[8..16]);
        Self {
            offset: u64::from_le_bytes(offset),
            timestamp: i64::from_le_bytes(timestamp),
        }
    }
}

/// A consistent view of a log: the first `indexed` entries of the index file are valid, `extra`
/// holds the lines found in the data beyond them, and `data_len` is where the last line ends.
#[derive(Debug, Default)]
struct View {
    indexed: u64,
    extra: Vec<Entry>,
    data_len: u64,
    /// Whether the index file holds more bytes than the `indexed` entries (to be cut by a writer).
    index_has_excess: bool,
    /// Whether the data ends without a newline (a torn or cut last line).
    partial_last_line: bool,
}

impl View {
    fn line_count(&self) -> u64 {
        self.indexed + self.extra.len() as u64
    }
}

/// The files of one log, opened for reading.
#[derive(Debug)]
struct Files {
    data_path: PathBuf,
    index_path: PathBuf,
    data: File,
    /// `None` while no index was written yet (a writer killed before its first index write).
    index: Option<File>,
}

impl Files {
    fn refs(&self) -> FileRefs<'_> {
        FileRefs {
            data_path: &self.data_path,
            index_path: &self.index_path,
            data: &self.data,
            index: self.index.as_ref(),
        }
    }
}

/// Borrowed view of a log's files, shared by readers and writers.
#[derive(Clone, Copy)]
struct FileRefs<'a> {
    data_path: &'a Path,
    index_path: &'a Path,
    data: &'a File,
    index: Option<&'a File>,
}

impl FileRefs<'_> {
    fn read_entries(&self, first: u64, count: u64) -> Result<Vec<Entry>> {
        let mut entries = Vec::new();
        if count == 0 {
            return Ok(entries);
        }
        let Some(index) = self.index else {
            return Ok(entries);
        };
        let len = usize::try_from(count * INDEX_ENTRY_BYTES).map_err(|_| {
            io_err(self.index_path)(io::Error::other("index range too large to read"))
        })?;
        let mut buf = vec![0u8; len];
        index
            .read_exact_at(&mut buf, first * INDEX_ENTRY_BYTES)
            .map_err(io_err(self.index_path))?;
        entries.extend(
            buf.chunks_exact(INDEX_ENTRY_BYTES as usize)
                .map(Entry::from_bytes),
        );
        Ok(entries)
    }

    fn read_entry(&self, n: u64) -> Result<Entry> {
        self.read_entries(n, 1)?
            .pop()
            .ok_or_else(|| io_err(self.index_path)(io::ErrorKind::UnexpectedEof.into()))
    }

    fn data_byte(&self, offset: u64) -> Result<u8> {
        let mut b = [0u8; 1];
        self.data
            .read_exact_at(&mut b, offset)
            .map_err(io_err(self.data_path))?;
        Ok(b[0])
    }

    /// Reconciles index and data as they are on disk now (see the module documentation).
    fn reconcile(&self) -> Result<View> {
        // The index is measured before the data: a live writer writes data before index, so the
        // data measured second covers every entry measured first.
        let index_len = match self.index {
            Some(index) => index.metadata().map_err(io_err(self.index_path))?.len(),
            None => 0,
        };
        let data_meta = self.data.metadata().map_err(io_err(self.data_path))?;
        let data_len = data_meta.len();
        let whole = index_len / INDEX_ENTRY_BYTES;

        // Entries are in increasing offset order, so those inside the data are a prefix: find its
        // length by binary search (usually a single read: the last entry is fine).
        let mut lo = 0u64;
        let mut hi = whole;
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if self.read_entry(mid - 1)?.offset < data_len {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let mut indexed = lo;
        // An entry that does not start a line (out of order, or not after a newline) cannot have
        // been written by a writer; drop such entries from the end until the index is sane.
        while indexed > 0 {
            let last = self.read_entry(indexed - 1)?;
            let prev_ok = if indexed >= 2 {
                self.read_entry(indexed - 2)?.offset < last.offset
            } else {
                last.offset == 0
            };
            if prev_ok && (last.offset == 0 || self.data_byte(last.offset - 1)? == b'\n') {
                break;
            }
            indexed -= 1;
        }

        let (scan_from, timestamp) = if indexed > 0 {
            let last = self.read_entry(indexed - 1)?;
            (last.offset, last.timestamp)
        } else {
            let mtime = data_meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .and_then(|d| i64::try_from(d.as_micros()).ok())
                .unwrap_or(0);
            (0, mtime)
        };

        let mut extra = Vec::new();
        if indexed == 0 && data_len > 0 {
            extra.push(Entry {
                offset: 0,
                timestamp,
            });
        }
        // Index the lines after the last indexed one: every newline that is not the data's last
        // byte starts a line.
        let mut pos = scan_from;
        let mut buf = vec![0u8; SCAN_CHUNK_BYTES];
        while pos < data_len {
            let want = usize::try_from((data_len - pos).min(SCAN_CHUNK_BYTES as u64))
                .unwrap_or(SCAN_CHUNK_BYTES);
            let chunk = &mut buf[..want];
            self.data
                .read_exact_at(chunk, pos)
                .map_err(io_err(self.data_path))?;
            for i in memchr::memchr_iter(b'\n', chunk) {
                let start = pos + i as u64 + 1;
                if start < data_len {
                    extra.push(Entry {
                        offset: start,
                        timestamp,
                    });
                }
            }
            pos += want as u64;
        }

        let partial_last_line = data_len > 0 && self.data_byte(data_len - 1)? != b'\n';
        Ok(View {
            indexed,
            extra,
            data_len,
            index_has_excess: index_len != indexed * INDEX_ENTRY_BYTES,
            partial_last_line,
        })
    }
}

/// Appends lines to one step's log.
#[derive(Debug)]
pub struct LogWriter {
    data_path: PathBuf,
    index_path: PathBuf,
    data: File,
    index: File,
    data_buf: Vec<u8>,
    index_buf: Vec<u8>,
    /// The unfinished last line of a stream fed through [`LogWriter::write_output`].
    pending: LineSplitter,
    /// Length of the data including what is still buffered: the offset of the next line.
    data_len: u64,
    lines: u64,
}

impl LogWriter {
    fn open(data_path: PathBuf, index_path: PathBuf) -> Result<Self> {
        let data = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&data_path)
            .map_err(io_err(&data_path))?;
        // The lock is advisory and dies with the process, so a crashed writer never blocks the
        // retry that reopens its log.
        match data.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Error::Busy { path: data_path });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&data_path)(e)),
        }
        let index = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&index_path)
            .map_err(io_err(&index_path))?;
        let view = FileRefs {
            data_path: &data_path,
            index_path: &index_path,
            data: &data,
            index: Some(&index),
        }
        .reconcile()?;
        let mut writer = Self {
            data_path,
            index_path,
            data,
            index,
            data_buf: Vec::new(),
            index_buf: Vec::new(),
            pending: LineSplitter::default(),
            data_len: view.data_len,
            lines: view.line_count(),
        };
        writer.repair(&view)?;
        Ok(writer)
    }

    /// Makes the files agree with `view` on disk, so that later appends extend a sane log.
    fn repair(&mut self, view: &View) -> Result<()> {
        if view.partial_last_line {
            // Terminate the cut line so that the next line does not run into it.
            self.data_buf.push(b'\n');
            self.data_len += 1;
        }
        if view.index_has_excess {
            self.index
                .set_len(view.indexed * INDEX_ENTRY_BYTES)
                .map_err(io_err(&self.index_path))?;
        }
        for entry in &view.extra {
            self.index_buf.extend_from_slice(&entry.to_bytes());
        }
        self.flush()
    }

    /// Appends one line. The line is stored as given, except that an embedded `\n` ends a line
    /// (a single trailing one is taken as the terminator, not as an empty line) and a line
    /// longer than [`MAX_LINE_BYTES`] is split. Bytes need not be UTF-8.
    pub fn append(&mut self, timestamp: TimestampMicros, line: &[u8]) -> Result<()> {
        LineSplitter::append(line, |piece| self.push_line(timestamp, piece));
        if self.data_buf.len() >= WRITE_BUFFER_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Appends a chunk of a process's output as it was read: every complete line is stored (a
    /// trailing `\r` dropped), and an unfinished last line waits for the next chunk or for
    /// [`LogWriter::finish_output`]. This is the fast path for streams: one scan of the chunk.
    pub fn write_output(&mut self, timestamp: TimestampMicros, chunk: &[u8]) -> Result<()> {
        // Taken out for the call so that the closure may borrow the rest of the writer (moving a
        // `Vec` costs nothing, and its buffer is kept).
        let mut pending = std::mem::take(&mut self.pending);
        pending.write_output(chunk, |line| self.push_line(timestamp, line));
        self.pending = pending;
        if self.data_buf.len() >= WRITE_BUFFER_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Stores the unfinished last line of the stream, if any.
    pub fn finish_output(&mut self, timestamp: TimestampMicros) -> Result<()> {
        let mut pending = std::mem::take(&mut self.pending);
        pending.finish_output(|line| self.push_line(timestamp, line));
        self.pending = pending;
        self.flush()
    }

    fn push_line(&mut self, timestamp: TimestampMicros, bytes: &[u8]) {
        let entry = Entry {
            offset: self.data_len,
            timestamp,
        };
        self.index_buf.extend_from_slice(&entry.to_bytes());
        self.data_buf.extend_from_slice(bytes);
        self.data_buf.push(b'\n');
        self.data_len += bytes.len() as u64 + 1;
        self.lines += 1;
    }

    /// Hands buffered lines to the operating system, so that they survive the process (not a
    /// machine crash: see [`LogWriter::sync`]). Data is written before index, which is what
    /// crash recovery relies on.
    pub fn flush(&mut self) -> Result<()> {
        write_out(&mut self.data, &mut self.data_buf).map_err(io_err(&self.data_path))?;
        write_out(&mut self.index, &mut self.index_buf).map_err(io_err(&self.index_path))?;
        Ok(())
    }

    /// Flushes and asks the operating system to put both files on disk.
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        self.data.sync_data().map_err(io_err(&self.data_path))?;
        self.index.sync_data().map_err(io_err(&self.index_path))
    }

    /// Lines in the log, including those not flushed yet.
    pub fn line_count(&self) -> u64 {
        self.lines
    }

    /// Bytes in the log, including those not flushed yet.
    pub fn byte_len(&self) -> u64 {
        self.data_len
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        // Best effort: a caller that cares about errors calls `flush` itself.
        let _ = self.flush();
    }
}

/// Writes `buf` to `file` and empties it. On error the bytes not yet written stay in `buf`, so a
/// later flush continues where this one stopped instead of writing anything twice.
fn write_out(file: &mut File, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut done = 0;
    let result = loop {
        if done == buf.len() {
            break Ok(());
        }
        match file.write(&buf[done..]) {
            Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    buf.drain(..done);
    result
}

/// The line rules of step output, wherever it is stored (a [`LogWriter`], or a pod's container
/// output): lines end at `\n`, a line longer than [`MAX_LINE_BYTES`] is cut into several, and a
/// process's output keeps its unfinished last line until more comes or the stream ends.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    /// The unfinished last line of the stream.
    pending: Vec<u8>,
}

impl LineSplitter {
    /// The lines of `line` as [`LogWriter::append`] stores them, each handed to `emit`.
    #[inline]
    pub(crate) fn append(line: &[u8], mut emit: impl FnMut(&[u8])) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        for piece in line.split(|&b| b == b'\n') {
            emit_cut(piece, &mut emit);
        }
    }

    /// Hands every complete line of `chunk` (after what is pending) to `emit`, without a trailing
    /// `\r`, and keeps the unfinished rest (see [`LogWriter::write_output`]).
    #[inline]
    pub(crate) fn write_output(&mut self, chunk: &[u8], mut emit: impl FnMut(&[u8])) {
        let mut start = 0;
        for newline in memchr::memchr_iter(b'\n', chunk) {
            let line = &chunk[start..newline];
            start = newline + 1;
            if self.pending.is_empty() {
                emit_output_line(line, &mut emit);
            } else {
                self.pending.extend_from_slice(line);
                emit_output_line(&self.pending, &mut emit);
                self.pending.clear();
            }
        }
        self.pending.extend_from_slice(&chunk[start..]);
        // A line that never ends is handed on in pieces rather than held in memory.
        while self.pending.len() > MAX_LINE_BYTES {
            let cut = split_point(&self.pending);
            emit(&self.pending[..cut]);
            self.pending.drain(..cut);
        }
    }

    /// Hands the unfinished last line, if any, to `emit`.
    #[inline]
    pub(crate) fn finish_output(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            emit_output_line(&self.pending, &mut emit);
            self.pending.clear();
        }
    }
}

fn emit_output_line(line: &[u8], emit: &mut impl FnMut(&[u8])) {
    emit_cut(line.strip_suffix(b"\r").unwrap_or(line), emit);
}

/// Hands `line` to `emit` in pieces of at most [`MAX_LINE_BYTES`].
fn emit_cut(mut rest: &[u8], emit: &mut impl FnMut(&[u8])) {
    loop {
        let cut = split_point(rest);
        emit(&rest[..cut]);
        rest = &rest[cut..];
        if rest.is_empty() {
            break;
        }
    }
}

/// Where to cut `bytes` so that the first part fits in a line: all of it when it fits, else at
/// [`MAX_LINE_BYTES`], moved back to the start of a UTF-8 character if one begins in the last
/// three bytes.
fn split_point(bytes: &[u8]) -> usize {
    if bytes.len() <= MAX_LINE_BYTES {
        return bytes.len();
    }
    let is_continuation = |b: u8| b & 0xC0 == 0x80;
    (MAX_LINE_BYTES - 3..=MAX_LINE_BYTES)
        .rev()
        .find(|&i| !is_continuation(bytes[i]))
        .filter(|&i| i > 0)
        .unwrap_or(MAX_LINE_BYTES)
}

/// Options of [`LogReader::grep`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrepOptions {
    /// Lines shown before and after each match.
    pub context: usize,
    /// Matches returned at most; the scan goes on to count the rest.
    pub max_matches: usize,
    /// Select the lines that do not match.
    pub invert: bool,
}

impl Default for GrepOptions {
    fn default() -> Self {
        Self {
            context: 0,
            max_matches: 100,
            invert: false,
        }
    }
}

/// One line of a grep result.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GrepLine {
    pub number: u64,
    pub timestamp: TimestampMicros,
    pub text: String,
    /// `true` for a selected line, `false` for context.
    pub is_match: bool,
}

/// Consecutive lines: matches with their context. Blocks never overlap or touch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GrepBlock {
    pub lines: Vec<GrepLine>,
}

/// What [`LogReader::grep`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct GrepResult {
    pub blocks: Vec<GrepBlock>,
    /// Matches returned in `blocks` (at most `max_matches`).
    pub matches_returned: usize,
    /// Matches in the whole log, returned or not.
    pub total_matches_seen: u64,
    /// Whether matches were left out because of `max_matches`.
    pub truncated: bool,
}

/// Builds a [`GrepResult`] from lines fed in order, one at a time: the search of a step log and
/// of a text artifact. Memory stays bounded by the context and the matches returned.
pub(crate) struct GrepCollector<'r> {
    regex: &'r regex::Regex,
    options: GrepOptions,
    result: GrepResult,
    /// Number of the last line fed.
    number: u64,
    /// Lines just before the current one that belong to no block yet: the context of a match
    /// that may come next.
    before: VecDeque<GrepLine>,
    after_left: usize,
    last_in_block: u64,
}

impl<'r> GrepCollector<'r> {
    pub(crate) fn new(regex: &'r regex::Regex, options: GrepOptions) -> Self {
        Self {
            regex,
            options,
            result: GrepResult::default(),
            number: 0,
            before: VecDeque::with_capacity(options.context),
            after_left: 0,
            last_in_block: 0,
        }
    }

    /// Feeds the next line (numbered one after the previous).
    pub(crate) fn push(&mut self, timestamp: TimestampMicros, text: &str) {
        self.number += 1;
        let number = self.number;
        let options = self.options;
        let result = &mut self.result;
        let selected = self.regex.is_match(text) != options.invert;
        if selected {
            result.total_matches_seen += 1;
        }
        let accepted = selected && result.matches_returned < options.max_matches;
        if selected && !accepted {
            result.truncated = true;
        }
        if accepted {
            result.matches_returned += 1;
            let first_needed = number - self.before.len() as u64;
            let joins = !result.blocks.is_empty() && self.last_in_block + 1 >= first_needed;
            if !joins {
                result.blocks.push(GrepBlock { lines: Vec::new() });
            }
            if let Some(block) = result.blocks.last_mut() {
                block.lines.extend(self.before.drain(..));
                block.lines.push(GrepLine {
                    number,
                    timestamp,
                    text: text.to_owned(),
                    is_match: true,
                });
            }
            self.last_in_block = number;
            self.after_left = options.context;
        } else if self.after_left > 0 {
            self.after_left -= 1;
            if let Some(block) = result.blocks.last_mut() {
                block.lines.push(GrepLine {
                    number,
                    timestamp,
                    text: text.to_owned(),
                    is_match: selected,
                });
            }
            self.last_in_block = number;
        } else if options.context > 0 && result.matches_returned < options.max_matches {
            if self.before.len() == options.context {
                self.before.pop_front();
            }
            self.before.push_back(GrepLine {
                number,
                timestamp,
                text: text.to_owned(),
                is_match: false,
            });
        }
    }

    pub(crate) fn finish(self) -> GrepResult {
        self.result
    }
}

/// Reads one step's log: a snapshot of the lines flushed when it was opened or last refreshed.
/// Readers never write: the repairs they infer (see the module documentation) stay in memory
/// until the next writer makes them on disk. A reader opened while a writer is in the middle of
/// a write may see that write's last line cut short; the next reader sees it whole.
#[derive(Debug)]
pub struct LogReader {
    files: Files,
    view: View,
}

impl LogReader {
    fn open(data_path: PathBuf, index_path: PathBuf) -> Result<Self> {
        let data = File::open(&data_path).map_err(io_err(&data_path))?;
        let index = match File::open(&index_path) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&index_path)(e)),
        };
        let files = Files {
            data_path,
            index_path,
            data,
            index,
        };
        let view = files.refs().reconcile()?;
        Ok(Self { files, view })
    }

    /// Picks up lines flushed since the reader was opened; returns the new line count.
    pub fn refresh(&mut self) -> Result<u64> {
        if self.files.index.is_none() {
            match File::open(&self.files.index_path) {
                Ok(f) => self.files.index = Some(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&self.files.index_path)(e)),
            }
        }
        self.view = self.files.refs().reconcile()?;
        Ok(self.line_count())
    }

    pub fn line_count(&self) -> u64 {
        self.view.line_count()
    }

    /// Bytes in the log (the end of its last line).
    pub fn byte_len(&self) -> u64 {
        self.view.data_len
    }

    /// The data file (`.log`): the plain text of the log.
    pub fn data_path(&self) -> &Path {
        &self.files.data_path
    }

    /// Lines whose 1-based numbers fall in `range` (clamped to what exists). Costs one read of
    /// their index entries and one of their bytes, whatever the size of the log; memory grows
    /// with the lines returned, so callers bound the range.
    pub fn lines(&self, range: Range<u64>) -> Result<Vec<LogLine>> {
        let count = self.line_count();
        let start = range.start.max(1);
        let end = range.end.min(count + 1);
        if start >= end {
            return Ok(Vec::new());
        }
        // Entries of the wanted lines, plus the one after them, whose offset ends the last line.
        let first = start - 1;
        let n = end - start;
        let mut entries = self.entries(first, n + 1)?;
        let data_end = match entries.get(n as usize) {
            Some(next) => next.offset,
            None => self.view.data_len,
        };
        entries.truncate(n as usize);
        let Some(data_start) = entries.first().map(|e| e.offset) else {
            return Ok(Vec::new());
        };
        let len = usize::try_from(data_end.saturating_sub(data_start)).map_err(|_| {
            io_err(&self.files.data_path)(io::Error::other("line range too large to read"))
        })?;
        let mut bytes = vec![0u8; len];
        self.files
            .data
            .read_exact_at(&mut bytes, data_start)
            .map_err(io_err(&self.files.data_path))?;

        let mut out = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let from = to_index(entry.offset.saturating_sub(data_start), len);
            let to = match entries.get(i + 1) {
                Some(next) => to_index(next.offset.saturating_sub(data_start), len),
                None => len,
            };
            out.push(LogLine {
                number: start + i as u64,
                timestamp: entry.timestamp,
                text: decode_line(&bytes[from.min(to)..to]),
            });
        }
        Ok(out)
    }

    /// The first `n` lines.
    pub fn head(&self, n: u64) -> Result<Vec<LogLine>> {
        self.lines(1..n.saturating_add(1))
    }

    /// The last `n` lines.
    pub fn tail(&self, n: u64) -> Result<Vec<LogLine>> {
        let count = self.line_count();
        self.lines(count.saturating_sub(n) + 1..count + 1)
    }

    /// Searches the log line by line, streaming: memory stays bounded by the context and the
    /// matches returned, whatever the size of the log.
    pub fn grep(&self, regex: &regex::Regex, options: GrepOptions) -> Result<GrepResult> {
        let mut collector = GrepCollector::new(regex, options);
        let mut data = BufReader::with_capacity(SCAN_CHUNK_BYTES, AtReader::new(&self.files.data));
        let mut entries = EntryStream::new(self);
        let mut line = Vec::new();
        let mut current = entries.next_entry()?;
        let mut pos = 0u64;
        while let Some(entry) = current {
            let next = entries.next_entry()?;
            let end = next.map_or(self.view.data_len, |e| e.offset);
            // Entries are increasing and start after a newline (see `reconcile`), so `pos` is
            // already at this line's start; the skip only matters for a damaged index.
            if entry.offset > pos {
                data.seek_relative(to_i64(entry.offset - pos))
                    .map_err(io_err(&self.files.data_path))?;
                pos = entry.offset;
            }
            let len = end.saturating_sub(pos);
            let keep = len.min(MAX_LINE_BYTES as u64 + 1);
            line.clear();
            (&mut data)
                .take(keep)
                .read_to_end(&mut line)
                .map_err(io_err(&self.files.data_path))?;
            if len > keep {
                data.seek_relative(to_i64(len - keep))
                    .map_err(io_err(&self.files.data_path))?;
            }
            pos = end.max(pos);
            current = next;

            let body = line.strip_suffix(b"\n").unwrap_or(&line);
            collector.push(entry.timestamp, &String::from_utf8_lossy(body));
        }
        Ok(collector.finish())
    }

    /// `count` entries from the `first` (0-based), fewer past the end.
    fn entries(&self, first: u64, count: u64) -> Result<Vec<Entry>> {
        let total = self.line_count();
        let end = first.saturating_add(count).min(total);
        if first >= end {
            return Ok(Vec::new());
        }
        let from_file_end = end.min(self.view.indexed);
        let mut entries = if first < from_file_end {
            self.files
                .refs()
                .read_entries(first, from_file_end - first)?
        } else {
            Vec::new()
        };
        let extra_from = first.max(self.view.indexed) - self.view.indexed;
        let extra_to = end.max(self.view.indexed) - self.view.indexed;
        let extra = &self.view.extra;
        let extra_to = to_index(extra_to, extra.len());
        entries.extend_from_slice(&extra[to_index(extra_from, extra_to)..extra_to]);
        Ok(entries)
    }
}

/// Streams the entries of a reader's view in order: the index file, then the recovered extras.
struct EntryStream<'a> {
    reader: &'a LogReader,
    index: Option<BufReader<AtReader<'a>>>,
    next: u64,
}

impl<'a> EntryStream<'a> {
    fn new(reader: &'a LogReader) -> Self {
        Self {
            reader,
            index: reader
                .files
                .index
                .as_ref()
                .map(|f| BufReader::with_capacity(SCAN_CHUNK_BYTES, AtReader::new(f))),
            next: 0,
        }
    }

    fn next_entry(&mut self) -> Result<Option<Entry>> {
        let view = &self.reader.view;
        let n = self.next;
        if n >= view.line_count() {
            return Ok(None);
        }
        self.next += 1;
        if n < view.indexed {
            let path = &self.reader.files.index_path;
            let index = self.index.as_mut().ok_or_else(|| {
                io_err(path)(io::Error::other("index entries without an index file"))
            })?;
            let mut b = [0u8; INDEX_ENTRY_BYTES as usize];
            index.read_exact(&mut b).map_err(io_err(path))?;
            return Ok(Some(Entry::from_bytes(&b)));
        }
        Ok(view
            .extra
            .get(to_index(n - view.indexed, usize::MAX))
            .copied())
    }
}

/// Reads a file from its own position with positioned reads, leaving the file's shared cursor
/// alone: several searches may run on one reader at once.
pub(crate) struct AtReader<'a> {
    file: &'a File,
    pos: u64,
}

impl<'a> AtReader<'a> {
    pub(crate) fn new(file: &'a File) -> Self {
        Self::at(file, 0)
    }

    /// A reader starting at byte `pos`.
    pub(crate) fn at(file: &'a File, pos: u64) -> Self {
        Self { file, pos }
    }
}

impl Read for AtReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for AtReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(_) => None,
        };
        self.pos = pos.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(self.pos)
    }
}

/// A line's text without its newline, cut to [`MAX_LINE_BYTES`] (only a damaged or foreign file
/// has longer lines), decoded lossily.
fn decode_line(bytes: &[u8]) -> String {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let body = &body[..body.len().min(MAX_LINE_BYTES)];
    String::from_utf8_lossy(body).into_owned()
}

/// `n` as an index no larger than `max` (offsets inside an in-memory buffer always fit).
fn to_index(n: u64, max: usize) -> usize {
    usize::try_from(n).map_or(max, |n| n.min(max))
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
