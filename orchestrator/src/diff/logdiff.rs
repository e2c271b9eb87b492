//! A unified diff of two logs over their normalised lines ([`mod@super::normalize`]): two runs that
//! differ only in times, ids or ports compare equal, and what is left shows the lines the runs
//! really disagree on, in their original text, with a little context and within a size budget an
//! agent can afford to read.
//!
//! # Algorithm
//!
//! Lines are normalised (the two sides on two threads when they are long) and interned to
//! integer ids: equal normalised lines share one id, so the diff compares integers. Lines found
//! exactly once in each log are matched first, keeping the longest run of them in the same order
//! on both sides (patience diff's first step): in logs most lines are such, so this cuts the diff
//! into small gaps in O(n log n). Each gap with lines on both sides is diffed with [`similar`]'s
//! Histogram algorithm. Histogram anchors on the rarest common lines, which in logs are the
//! meaningful ones (test names, messages), instead of the frequent noise (`ok`, blank and
//! separator lines) that Myers happily aligns, and it needs no unique lines, which repeated log
//! lines often lack (where Patience alone falls back to Myers).
//!
//! The algorithm runs under [`DiffOptions::deadline`]: past it, similar stops searching for the
//! best alignment and finishes with a cheaper, coarser one (whole remaining ranges replaced), so a
//! pathological pair (say, long runs of the same few lines shuffled) still answers in bounded
//! time. Such a diff is still correct (applying it to old gives new), only larger than needed,
//! and [`LogDiff::timed_out`] says so.

use std::fmt;
use std::fs::File;
use std::hash::BuildHasher;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hashbrown::HashTable;
use similar::DiffOp;
use similar::algorithms::{Algorithm, Capture, DiffHook, diff_deadline};

use super::normalize::normalize_into;
use crate::logs::{self, LogReader};
use crate::summary::{cut_line, strip_ansi};

/// Unchanged lines shown around each change, by default (as `diff -u`).
pub const DEFAULT_CONTEXT: usize = 3;

/// Hunks shown at most, by default; the totals still count every change.
pub const DEFAULT_MAX_HUNKS: usize = 50;

/// Bytes of unified diff text shown at most, by default: a reader with little room gets the first
/// changes and the totals rather than all of them.
pub const DEFAULT_MAX_BYTES: usize = 4 * 1024;

/// Bytes of one shown line at most, by default; a longer line is cut and marked with `…`.
pub const DEFAULT_MAX_LINE_BYTES: usize = 400;

/// Time the diff algorithm may take before settling for a coarser diff, by default. Generous for
/// real logs (200,000 lines with a few thousand changes take a few milliseconds) and short enough
/// for an interactive answer.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(1);

/// Lines (old and new together) from which [`diff_lines`] normalises the two sides on two
/// threads; below it, a thread costs more than it saves.
pub const PARALLEL_MIN_LINES: usize = 20_000;

/// Lines of each step log compared at most by [`diff_step_logs`]: beyond it, only the last ones
/// (where a failure usually is). Bounds the memory and time of one diff.
pub const MAX_LOG_DIFF_LINES: usize = 1_000_000;

/// Bytes of each step log read at most by [`diff_step_logs`] (the last ones, in whole lines):
/// [`MAX_LOG_DIFF_LINES`] alone would allow 64 GiB of 64 KiB lines.
pub const MAX_LOG_DIFF_BYTES: u64 = 128 * 1024 * 1024;

/// What can go wrong when diffing step logs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A log could not be opened or read through its reader.
    #[error(transparent)]
    Log(#[from] logs::Error),
    /// A log's data file could not be read.
    #[error("failed to read log {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How a diff is computed and how much of it is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffOptions {
    /// Unchanged lines shown before and after each change; changes closer than twice this share
    /// a hunk.
    pub context: usize,
    /// Hunks shown at most.
    pub max_hunks: usize,
    /// Bytes of unified text (what [`LogDiff::to_unified`] returns) at most; the last hunk shown
    /// may be cut short to fit, with its header counting only the lines shown.
    pub max_bytes: usize,
    /// Bytes of one shown line at most (cut with `…`); lines are compared whole.
    pub max_line_bytes: usize,
    /// Time the diff algorithm may take (normalising and reading are linear and not counted).
    pub deadline: Duration,
}

impl Default for DiffOptions {
    fn default() -> Self {
        Self {
            context: DEFAULT_CONTEXT,
            max_hunks: DEFAULT_MAX_HUNKS,
            max_bytes: DEFAULT_MAX_BYTES,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            deadline: DEFAULT_DEADLINE,
        }
    }
}

/// What a diff line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tag {
    /// In both logs (equal once normalised); the text is the new log's.
    Equal,
    /// Only in the old log.
    Delete,
    /// Only in the new log.
    Insert,
}

impl Tag {
    fn prefix(self) -> char {
        match self {
            Tag::Equal => ' ',
            Tag::Delete => '-',
            Tag::Insert => '+',
        }
    }
}

/// One line of a hunk: its original text (ANSI escapes removed, cut to
/// [`DiffOptions::max_line_bytes`]), not the normalised text it was compared by.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DiffLine {
    pub tag: Tag,
    pub text: String,
}

/// Changed lines with their context. Line numbers are 1-based and follow unified diff: when a
/// side has no lines in the hunk, its start is the line after which the other side's lines go
/// (0 at the top).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hunk {
    pub old_start: usize,
    pub old_len: usize,
    pub new_start: usize,
    pub new_len: usize,
    pub lines: Vec<DiffLine>,
}

/// The differences between two logs.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct LogDiff {
    /// The hunks shown, within [`DiffOptions::max_hunks`] and [`DiffOptions::max_bytes`].
    pub hunks: Vec<Hunk>,
    /// Lines only in the new log, over the whole diff (shown or not).
    pub added: usize,
    /// Lines only in the old log, over the whole diff (shown or not).
    pub removed: usize,
    /// Why and how much was left out of `hunks`; `None` when everything is shown.
    pub truncated: Option<String>,
    /// Whether the deadline passed before the alignment was finished: the diff is correct but may
    /// show more lines as changed than a minimal one would.
    pub timed_out: bool,
}

impl LogDiff {
    /// Whether the logs are equal once normalised.
    pub fn is_empty(&self) -> bool {
        self.added == 0 && self.removed == 0
    }

    /// The hunks as unified diff text (`@@ -a,b +c,d @@` headers, then lines prefixed with ` `,
    /// `-` or `+`), without file headers; empty when there is no hunk.
    pub fn to_unified(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for LogDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for hunk in &self.hunks {
            write!(f, "{hunk}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Hunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "@@ -{} +{} @@",
            UnifiedRange(self.old_start, self.old_len),
            UnifiedRange(self.new_start, self.new_len)
        )?;
        for line in &self.lines {
            writeln!(f, "{}{}", line.tag.prefix(), line.text)?;
        }
        Ok(())
    }
}

/// `start,len`, or `start` alone when `len` is 1, as `diff -u` writes them.
struct UnifiedRange(usize, usize);

impl fmt::Display for UnifiedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.1 == 1 {
            write!(f, "{}", self.0)
        } else {
            write!(f, "{},{}", self.0, self.1)
        }
    }
}

/// Diffs two logs given as lines (without their newlines), comparing normalised lines and showing
/// original ones (see the module documentation).
pub fn diff_lines<O, N>(old: &[O], new: &[N], options: &DiffOptions) -> LogDiff
where
    O: AsRef<str> + Sync,
    N: AsRef<str> + Sync,
{
    let (old_normalized, new_normalized) = normalize_both(old, new);
    let (old_ids, new_ids, distinct) = intern(&old_normalized, &new_normalized);
    drop((old_normalized, new_normalized));

    let deadline = Instant::now().checked_add(options.deadline);
    let ops = align(&old_ids, &new_ids, distinct, deadline);
    let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
    let segments = segments(ops);
    let mut diff = render(&segments, old, new, options);
    diff.timed_out = timed_out;
    diff
}

/// The diff of two id sequences (ids below `distinct`) as similar's ops, in order.
///
/// Lines that occur exactly once in each log's changed middle are matched first, keeping the
/// longest run of them that is in the same order in both (as patience diff does); in a log most
/// lines are such (test names, messages with their values), so this cuts the diff into small
/// gaps between anchors in O(n log n). Only the gaps where both sides have lines go to the
/// Histogram algorithm, which on one whole 200,000-line log spends its time re-indexing the range
/// around every change and reading the clock for its deadline on every line.
fn align(old: &[usize], new: &[usize], distinct: usize, deadline: Option<Instant>) -> Vec<DiffOp> {
    let mut capture = Capture::new();
    let prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..]
        .iter()
        .rev()
        .zip(new[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let old_mid = prefix..old.len() - suffix;
    let new_mid = prefix..new.len() - suffix;
    let Ok(()) = capture.equal(0, 0, prefix);
    let (mut o, mut n) = (old_mid.start, new_mid.start);
    for (anchor_old, anchor_new) in unique_anchors(old, &old_mid, new, &new_mid, distinct) {
        gap(
            &mut capture,
            old,
            o..anchor_old,
            new,
            n..anchor_new,
            deadline,
        );
        let Ok(()) = capture.equal(anchor_old, anchor_new, 1);
        (o, n) = (anchor_old + 1, anchor_new + 1);
    }
    gap(
        &mut capture,
        old,
        o..old_mid.end,
        new,
        n..new_mid.end,
        deadline,
    );
    let Ok(()) = capture.equal(old_mid.end, new_mid.end, suffix);
    capture.into_ops()
}

fn gap(
    capture: &mut Capture,
    old: &[usize],
    old_range: Range<usize>,
    new: &[usize],
    new_range: Range<usize>,
    deadline: Option<Instant>,
) {
    let Ok(()) = if new_range.is_empty() {
        capture.delete(old_range.start, old_range.len(), new_range.start)
    } else if old_range.is_empty() {
        capture.insert(old_range.start, new_range.start, new_range.len())
    } else {
        diff_deadline(
            Algorithm::Histogram,
            capture,
            old,
            old_range,
            new,
            new_range,
            deadline,
        )
    };
}

/// Pairs of (old, new) positions of the lines that occur once in each middle, the longest
/// sequence of them increasing on both sides.
fn unique_anchors(
    old: &[usize],
    old_mid: &Range<usize>,
    new: &[usize],
    new_mid: &Range<usize>,
    distinct: usize,
) -> Vec<(usize, usize)> {
    // Counts saturate at 2: only "once" matters.
    let mut old_count = vec![0u8; distinct];
    let mut new_count = vec![0u8; distinct];
    let mut old_pos = vec![0usize; distinct];
    for i in old_mid.clone() {
        let id = old[i];
        old_count[id] = old_count[id].saturating_add(1).min(2);
        old_pos[id] = i;
    }
    for &id in &new[new_mid.clone()] {
        new_count[id] = new_count[id].saturating_add(1).min(2);
    }
    let pairs: Vec<(usize, usize)> = new_mid
        .clone()
        .filter_map(|j| {
            let id = new[j];
            (old_count[id] == 1 && new_count[id] == 1).then(|| (old_pos[id], j))
        })
        .collect();

    // Longest increasing subsequence of the old positions (new ones increase already):
    // `tails[k]` is the pair ending the best sequence of length k + 1 found so far.
    let mut tails: Vec<usize> = Vec::new();
    let mut prev = vec![usize::MAX; pairs.len()];
    for (i, &(o, _)) in pairs.iter().enumerate() {
        let k = tails.partition_point(|&t| pairs[t].0 < o);
        if k > 0 {
            prev[i] = tails[k - 1];
        }
        if k == tails.len() {
            tails.push(i);
        } else {
            tails[k] = i;
        }
    }
    let mut anchors = Vec::with_capacity(tails.len());
    let mut at = tails.last().copied().unwrap_or(usize::MAX);
    while let Some(&pair) = pairs.get(at) {
        anchors.push(pair);
        at = prev[at];
    }
    anchors.reverse();
    anchors
}

/// One side's normalised lines, back to back.
struct Normalized {
    text: Vec<u8>,
    /// Where each line ends in `text` (and the next begins).
    ends: Vec<usize>,
}

impl Normalized {
    fn new<L: AsRef<str>>(lines: &[L]) -> Self {
        let mut text = Vec::with_capacity(lines.iter().map(|l| l.as_ref().len()).sum());
        let mut ends = Vec::with_capacity(lines.len());
        for line in lines {
            normalize_into(line.as_ref(), &mut text);
            ends.push(text.len());
        }
        Self { text, ends }
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn line(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }
}

/// Both sides normalised, the new one on a second thread when there are enough lines for that to
/// pay: normalising is most of a diff's time, and the two sides are independent.
fn normalize_both<O, N>(old: &[O], new: &[N]) -> (Normalized, Normalized)
where
    O: AsRef<str> + Sync,
    N: AsRef<str> + Sync,
{
    if old.len() + new.len() < PARALLEL_MIN_LINES {
        return (Normalized::new(old), Normalized::new(new));
    }
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("log-diff-normalize".into())
            .spawn_scoped(scope, || Normalized::new(new));
        let old = Normalized::new(old);
        let new = match spawned {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // No thread to be had: do it here.
            Err(_) => Normalized::new(new),
        };
        (old, new)
    })
}

/// Distinct normalised lines, numbered in order of appearance.
struct Interner<'a> {
    texts: Vec<&'a [u8]>,
    table: HashTable<usize>,
    /// Random keys: logs are printed by the code under test, so their content is not trusted to
    /// spread evenly over a fixed hash.
    hasher: foldhash::fast::RandomState,
}

impl<'a> Interner<'a> {
    fn id(&mut self, text: &'a [u8]) -> usize {
        let hash = self.hasher.hash_one(text);
        let (texts, hasher) = (&self.texts, &self.hasher);
        match self.table.entry(
            hash,
            |&id| texts[id] == text,
            |&id| hasher.hash_one(texts[id]),
        ) {
            hashbrown::hash_table::Entry::Occupied(entry) => *entry.get(),
            hashbrown::hash_table::Entry::Vacant(entry) => {
                let id = self.texts.len();
                entry.insert(id);
                self.texts.push(text);
                id
            }
        }
    }
}

/// The ids of both sides' lines (equal normalised lines share one), and how many distinct ones
/// there are.
///
/// A new line is first compared with the old line after the one the previous new line matched:
/// runs of a log mostly agree line by line, and that comparison reads both sides in order, where a
/// hash table probe costs a few cache misses per line.
fn intern(old: &Normalized, new: &Normalized) -> (Vec<usize>, Vec<usize>, usize) {
    let mut interner = Interner {
        texts: Vec::new(),
        table: HashTable::with_capacity(old.len() + new.len()),
        hasher: foldhash::fast::RandomState::default(),
    };
    let old_ids: Vec<usize> = (0..old.len()).map(|i| interner.id(old.line(i))).collect();
    let mut first_old_pos = vec![usize::MAX; interner.texts.len()];
    for (i, &id) in old_ids.iter().enumerate().rev() {
        first_old_pos[id] = i;
    }
    let mut guess = 0;
    let new_ids = (0..new.len())
        .map(|j| {
            let text = new.line(j);
            if guess < old.len() && old.line(guess) == text {
                guess += 1;
                return old_ids[guess - 1];
            }
            let id = interner.id(text);
            if let Some(&pos) = first_old_pos.get(id)
                && pos != usize::MAX
            {
                guess = pos + 1;
            }
            id
        })
        .collect();
    (old_ids, new_ids, interner.texts.len())
}

/// A run of the diff: equal lines, or a change (lines deleted from old and/or inserted from new
/// at the same place).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Equal {
        old: usize,
        new: usize,
        len: usize,
    },
    Change {
        old: Range<usize>,
        new: Range<usize>,
    },
}

/// The diff's ops with adjacent equal runs merged, adjacent deletes and inserts merged into one
/// change, and empty ops dropped, so that equal runs and changes alternate.
fn segments(ops: Vec<DiffOp>) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    for op in ops {
        let (tag, old, new) = op.as_tag_tuple();
        if old.is_empty() && new.is_empty() {
            continue;
        }
        match (tag, out.last_mut()) {
            (similar::DiffTag::Equal, Some(Segment::Equal { len, .. })) => *len += old.len(),
            (similar::DiffTag::Equal, _) => out.push(Segment::Equal {
                old: old.start,
                new: new.start,
                len: old.len(),
            }),
            (_, Some(Segment::Change { old: o, new: n })) => {
                o.end = o.end.max(old.end);
                n.end = n.end.max(new.end);
            }
            (_, _) => out.push(Segment::Change { old, new }),
        }
    }
    out
}

/// A hunk to be: the segments from its first change to its last, and the context around them.
struct Plan {
    segments: Range<usize>,
    lead: usize,
    trail: usize,
}

fn plans(segments: &[Segment], context: usize) -> Vec<Plan> {
    let mut plans: Vec<Plan> = Vec::new();
    let equal_len = |i: usize| match segments.get(i) {
        Some(Segment::Equal { len, .. }) => *len,
        _ => 0,
    };
    for (i, segment) in segments.iter().enumerate() {
        if !matches!(segment, Segment::Change { .. }) {
            continue;
        }
        let before = if i > 0 { equal_len(i - 1) } else { 0 };
        match plans.last_mut() {
            // The equal run between this change and the previous hunk's last one is short
            // enough that their contexts would touch or overlap: one hunk.
            Some(plan) if plan.segments.end + 1 == i && before <= context.saturating_mul(2) => {
                plan.segments.end = i + 1;
            }
            _ => plans.push(Plan {
                segments: i..i + 1,
                lead: before.min(context),
                trail: 0,
            }),
        }
        if let Some(plan) = plans.last_mut() {
            plan.trail = equal_len(i + 1).min(context);
        }
    }
    plans
}

/// A segment's ranges on each side.
fn segment_ranges(segment: &Segment) -> (Range<usize>, Range<usize>) {
    match segment {
        Segment::Equal { old, new, len } => (*old..old + len, *new..new + len),
        Segment::Change { old, new } => (old.clone(), new.clone()),
    }
}

/// The lines a plan covers on each side (0-based), context included.
fn plan_ranges(segments: &[Segment], plan: &Plan) -> (Range<usize>, Range<usize>) {
    // Segments are contiguous on both sides: the plan spans from its first one to its last.
    let (first_old, first_new) = segment_ranges(&segments[plan.segments.start]);
    let (last_old, last_new) = segment_ranges(&segments[plan.segments.end - 1]);
    (
        first_old.start.saturating_sub(plan.lead)..last_old.end + plan.trail,
        first_new.start.saturating_sub(plan.lead)..last_new.end + plan.trail,
    )
}

/// Calls `f` with each line of a plan in order (tag and index on its side: new for equal and
/// insert, old for delete) until it returns `false`.
fn walk(segments: &[Segment], plan: &Plan, mut f: impl FnMut(Tag, usize) -> bool) {
    let (_, new) = plan_ranges(segments, plan);
    let mut lead = new.start..new.start + plan.lead;
    if !lead.all(|n| f(Tag::Equal, n)) {
        return;
    }
    let mut last_new_end = new.start + plan.lead;
    for segment in &segments[plan.segments.clone()] {
        match segment {
            Segment::Equal { new, len, .. } => {
                if !(*new..new + len).all(|n| f(Tag::Equal, n)) {
                    return;
                }
                last_new_end = new + len;
            }
            Segment::Change { old, new } => {
                if !old.clone().all(|o| f(Tag::Delete, o))
                    || !new.clone().all(|n| f(Tag::Insert, n))
                {
                    return;
                }
                last_new_end = new.end;
            }
        }
    }
    let _ = (last_new_end..last_new_end + plan.trail).all(|n| f(Tag::Equal, n));
}

fn shown_text(line: &str, max: usize) -> String {
    cut_line(&strip_ansi(line), max).into_owned()
}

/// A hunk's header line, newline included, as [`Hunk`]'s `Display` writes it.
fn header_len(old: &Range<usize>, new: &Range<usize>) -> usize {
    let (o, n) = (unified(old), unified(new));
    format!(
        "@@ -{} +{} @@\n",
        UnifiedRange(o.0, o.1),
        UnifiedRange(n.0, n.1)
    )
    .len()
}

/// A 0-based range as unified diff's (start, len).
fn unified(range: &Range<usize>) -> (usize, usize) {
    let len = range.len();
    (
        if len == 0 {
            range.start
        } else {
            range.start + 1
        },
        len,
    )
}

fn render<O: AsRef<str>, N: AsRef<str>>(
    segments: &[Segment],
    old: &[O],
    new: &[N],
    options: &DiffOptions,
) -> LogDiff {
    let mut diff = LogDiff::default();
    for segment in segments {
        if let Segment::Change { old, new } = segment {
            diff.removed += old.len();
            diff.added += new.len();
        }
    }
    let plans = plans(segments, options.context);
    let text = |tag: Tag, i: usize| -> &str {
        match tag {
            Tag::Delete => old.get(i).map_or("", AsRef::as_ref),
            _ => new.get(i).map_or("", AsRef::as_ref),
        }
    };

    let mut used = 0usize;
    let mut shown_added = 0usize;
    let mut shown_removed = 0usize;
    let mut cut_short = false;
    let mut stopped_by = None;
    for plan in &plans {
        if diff.hunks.len() >= options.max_hunks {
            stopped_by = Some(format!("max_hunks {}", options.max_hunks));
            break;
        }
        let (old_range, new_range) = plan_ranges(segments, plan);
        let budget = options.max_bytes.saturating_sub(used);
        let mut lines: Vec<(Tag, usize, String)> = Vec::new();
        let mut bytes = header_len(&old_range, &new_range);
        let mut complete = true;
        walk(segments, plan, |tag, i| {
            let shown = shown_text(text(tag, i), options.max_line_bytes);
            let line_bytes = 2 + shown.len();
            if bytes + line_bytes > budget {
                complete = false;
                return false;
            }
            bytes += line_bytes;
            lines.push((tag, i, shown));
            true
        });
        if !complete {
            // Keep what fits of this hunk, with a header for just those lines; a partial header
            // can be a byte or two longer than the full one (`-7` becomes `-6,0`), hence the loop.
            loop {
                if !lines.iter().any(|(tag, ..)| *tag != Tag::Equal) {
                    lines.clear();
                    break;
                }
                let (o, n) = partial_ranges(&old_range, &new_range, &lines);
                let size = header_len(&o, &n) + lines.iter().map(|l| 2 + l.2.len()).sum::<usize>();
                if size <= budget {
                    break;
                }
                lines.pop();
            }
            if !lines.is_empty() {
                cut_short = true;
            }
        }
        if !lines.is_empty() {
            let (o, n) = partial_ranges(&old_range, &new_range, &lines);
            let hunk = hunk(&o, &n, lines);
            for line in &hunk.lines {
                match line.tag {
                    Tag::Insert => shown_added += 1,
                    Tag::Delete => shown_removed += 1,
                    Tag::Equal => {}
                }
            }
            used += hunk.to_string().len();
            diff.hunks.push(hunk);
        }
        if !complete {
            stopped_by = Some(format!("max_bytes {}", options.max_bytes));
            break;
        }
    }
    if let Some(limit) = stopped_by {
        let cut = if cut_short {
            " (the last one cut short)"
        } else {
            ""
        };
        diff.truncated = Some(format!(
            "showing {} of {} hunks{cut} to stay within {limit}; not shown: {} added and {} \
             removed lines",
            diff.hunks.len(),
            plans.len(),
            diff.added - shown_added,
            diff.removed - shown_removed,
        ));
    }
    diff
}

/// The ranges covered by the first lines of a hunk whose full ranges are given.
fn partial_ranges(
    old: &Range<usize>,
    new: &Range<usize>,
    lines: &[(Tag, usize, String)],
) -> (Range<usize>, Range<usize>) {
    let old_len = lines.iter().filter(|l| l.0 != Tag::Insert).count();
    let new_len = lines.iter().filter(|l| l.0 != Tag::Delete).count();
    (
        old.start..old.start + old_len,
        new.start..new.start + new_len,
    )
}

fn hunk(old: &Range<usize>, new: &Range<usize>, lines: Vec<(Tag, usize, String)>) -> Hunk {
    let (old_start, old_len) = unified(old);
    let (new_start, new_len) = unified(new);
    Hunk {
        old_start,
        old_len,
        new_start,
        new_len,
        lines: lines
            .into_iter()
            .map(|(tag, _, text)| DiffLine { tag, text })
            .collect(),
    }
}

/// Which lines of a step log were compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LogWindow {
    /// Lines in the log.
    pub lines: u64,
    /// First lines left out (beyond [`MAX_LOG_DIFF_LINES`] or [`MAX_LOG_DIFF_BYTES`]); only the
    /// lines after them were compared, and hunk line numbers still count from the log's first.
    pub skipped: u64,
}

/// The diff of two step logs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StepLogDiff {
    pub diff: LogDiff,
    pub old: LogWindow,
    pub new: LogWindow,
}

/// Diffs two step logs: at most the last [`MAX_LOG_DIFF_LINES`] lines and [`MAX_LOG_DIFF_BYTES`]
/// bytes of each (whole lines), numbered as in the logs.
pub fn diff_step_logs(
    old: &LogReader,
    new: &LogReader,
    options: &DiffOptions,
) -> Result<StepLogDiff, Error> {
    let old_tail = read_tail(old, MAX_LOG_DIFF_LINES, MAX_LOG_DIFF_BYTES)?;
    let new_tail = read_tail(new, MAX_LOG_DIFF_LINES, MAX_LOG_DIFF_BYTES)?;
    let old_lines = old_tail.lines();
    let new_lines = new_tail.lines();
    let mut diff = diff_lines(&old_lines, &new_lines, options);
    let old_window = LogWindow {
        lines: old.line_count(),
        skipped: old.line_count().saturating_sub(old_lines.len() as u64),
    };
    let new_window = LogWindow {
        lines: new.line_count(),
        skipped: new.line_count().saturating_sub(new_lines.len() as u64),
    };
    for hunk in &mut diff.hunks {
        hunk.old_start += to_usize(old_window.skipped);
        hunk.new_start += to_usize(new_window.skipped);
    }
    Ok(StepLogDiff {
        diff,
        old: old_window,
        new: new_window,
    })
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The last whole lines of a log, decoded lossily.
struct Tail {
    /// The lines, separated by `\n`, without the last line's newline; `None` for no line.
    text: Option<String>,
}

impl Tail {
    fn lines(&self) -> Vec<&str> {
        match &self.text {
            Some(text) => text.split('\n').collect(),
            None => Vec::new(),
        }
    }
}

/// The last `max_lines` lines of a log within its last `max_bytes` bytes, whole lines only: a line
/// the byte window begins inside is left out. Reads the data file directly (the reader's snapshot
/// length bounds it), which avoids a `String` per line; the log's lines are exactly its
/// newline-separated pieces, a last one without newline included.
fn read_tail(reader: &LogReader, max_lines: usize, max_bytes: u64) -> Result<Tail, Error> {
    let path = reader.data_path();
    let io_err = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let len = reader.byte_len();
    let from = len.saturating_sub(max_bytes);
    // One byte more before the window tells whether it starts at a line's start.
    let read_from = from.saturating_sub(1);
    let size = usize::try_from(len - read_from)
        .map_err(|_| io_err(std::io::Error::other("log window too large to read")))?;
    let mut buf = vec![0u8; size];
    if size > 0 {
        File::open(path)
            .and_then(|file| file.read_exact_at(&mut buf, read_from))
            .map_err(io_err)?;
    }
    let start = if from == 0 {
        0
    } else {
        memchr::memchr(b'\n', &buf).map_or(buf.len(), |p| p + 1)
    };
    let content = &buf[start..];
    if content.is_empty() || max_lines == 0 {
        return Ok(Tail { text: None });
    }
    let body = content.strip_suffix(b"\n").unwrap_or(content);
    let first = memchr::memrchr_iter(b'\n', body)
        .nth(max_lines - 1)
        .map_or(0, |p| p + 1);
    Ok(Tail {
        text: Some(String::from_utf8_lossy(&body[first..]).into_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::LogStore;

    fn write_log(store: &LogStore, execution: &str, lines: impl IntoIterator<Item = Vec<u8>>) {
        let mut writer = store.writer(execution, "1").expect("writer");
        for (i, line) in lines.into_iter().enumerate() {
            writer.append(i as i64, &line).expect("append");
        }
        writer.flush().expect("flush");
    }

    #[test]
    fn tail_keeps_whole_lines_within_the_byte_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LogStore::new(dir.path());
        let line = vec![b'x'; logs::MAX_LINE_BYTES - 1];
        let lines_at_limit = MAX_LOG_DIFF_BYTES as usize / logs::MAX_LINE_BYTES;
        write_log(
            &store,
            "A",
            std::iter::repeat_n(line.clone(), lines_at_limit),
        );
        let reader = store.reader("A", "1").expect("reader");
        assert_eq!(reader.byte_len(), MAX_LOG_DIFF_BYTES);
        let tail = read_tail(&reader, MAX_LOG_DIFF_LINES, MAX_LOG_DIFF_BYTES).expect("tail");
        assert_eq!(tail.lines().len(), lines_at_limit);

        // One byte over: the first line no longer fits whole and is left out.
        write_log(&store, "A", [Vec::new()]);
        let reader = store.reader("A", "1").expect("reader");
        assert_eq!(reader.byte_len(), MAX_LOG_DIFF_BYTES + 1);
        let tail = read_tail(&reader, MAX_LOG_DIFF_LINES, MAX_LOG_DIFF_BYTES).expect("tail");
        let lines = tail.lines();
        assert_eq!(lines.len(), lines_at_limit);
        assert_eq!(lines.last(), Some(&""));
    }

    #[test]
    fn tail_of_small_logs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LogStore::new(dir.path());
        write_log(&store, "E", [b"".to_vec()]);
        let reader = store.reader("E", "1").expect("reader");
        assert_eq!(read_tail(&reader, 10, 100).expect("tail").lines(), [""]);

        write_log(&store, "F", [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        let reader = store.reader("F", "1").expect("reader");
        assert_eq!(
            read_tail(&reader, 2, 100).expect("tail").lines(),
            ["b", "c"]
        );
        assert_eq!(
            read_tail(&reader, 3, 100).expect("tail").lines(),
            ["a", "b", "c"]
        );
        // "a\nb\nc\n": the window of the last 4 bytes starts at "b"'s start.
        assert_eq!(read_tail(&reader, 10, 4).expect("tail").lines(), ["b", "c"]);
        assert_eq!(read_tail(&reader, 10, 5).expect("tail").lines(), ["b", "c"]);
        assert_eq!(
            read_tail(&reader, 10, 6).expect("tail").lines(),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn plans_merge_when_contexts_touch() {
        let change = |o: usize, n: usize| Segment::Change {
            old: o..o + 1,
            new: n..n + 1,
        };
        let equal = |o: usize, len: usize| Segment::Equal {
            old: o,
            new: o,
            len,
        };
        // change at 0, 6 equal, change at 7, 7 equal, change at 15.
        let segments = [
            change(0, 0),
            equal(1, 6),
            change(7, 7),
            equal(8, 7),
            change(15, 15),
        ];
        let plans = plans(&segments, 3);
        assert_eq!(plans.len(), 2);
        assert_eq!(plans[0].segments, 0..3);
        assert_eq!((plans[0].lead, plans[0].trail), (0, 3));
        assert_eq!(plans[1].segments, 4..5);
        assert_eq!((plans[1].lead, plans[1].trail), (3, 0));
    }
}
