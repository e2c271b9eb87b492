//! Normalisation of log lines before two runs are compared: what differs on every run (clock
//! times, durations, generated ids, addresses, temp directories, ephemeral ports, pids) becomes a
//! placeholder, so that a diff shows what the code did differently rather than when it did it.
//!
//! # What is replaced
//!
//! | placeholder | matches | deliberately left alone |
//! | --- | --- | --- |
//! | [`TIME`] | `2026-11-23T19:53:21.123+02:00`, `2026-11-23 19:53:21,123`, `2026/11/23 19:53:21`, a date alone, `19:53:21(.fff)(Z\|±hh:mm)`, `Nov 23 19:53:21` (with an optional weekday before) | `12:34` (two groups: line:column), out-of-range fields (`25:61:00`, `2026-13-01`), dates glued to a word or after `-` / `.` / `_` (`nightly-2026-11-23`, `v2026.11.23`) |
//! | [`DURATION`] | a number with a unit (`ns us µs ms s sec(s) second(s) m min(s) minute(s) h hr(s) hour(s)`): `0.123s`, `12ms`, `1.5 s`, `1m2s`, `(0.00s)`, `in 3.20s`, `Time elapsed: 0.01 s` | numbers without a unit (`3 passed`, `left: 1`), `m`/`h` after a space (`3 m`), numbers glued to a word or after `_` / `.` (`test_10s`, `v1.5s`, `1.2.5s`) |
//! | [`ID`] | UUIDs (any case), ULIDs (26 Crockford characters, first `0`–`7`, with a letter), words of at least [`MIN_HEX_ID_LEN`] hex digits holding both a digit and a letter (SHAs, container ids) | shorter hex (abbreviated commits), all-digit numbers of any length (counts, assertion values), all-letter words |
//! | [`ADDR`] | `0x` and at least [`MIN_ADDR_HEX_DIGITS`] hex digits | short hex literals (`0x1`, `0xff`, `0x1f4`) |
//! | [`TMP`] | `/tmp/` and its first component (`/tmp/.tmpAbC123/out.txt` → `<tmp>/out.txt`), pytest's `/tmp/pytest-of-USER/pytest-N`, macOS `/var/folders/xx/yyy/T/<first>` (also under `/private`), `tmp.XXXXXX` names (at least [`MIN_MKTEMP_SUFFIX`] characters mixing case or digits) | the rest of the path (file names stay comparable), `/tmp` inside another path (`/home/x/tmp/a`), `tmp.backup` (one character class) |
//! | [`PORT`] | the port of `127.0.0.1:38211`, `localhost:5432`, `[::1]:8080`, `http://host:8080`, and `port 38211` / `port=…` / `port: …` | `file.rs:10`, `host.name:80` without a scheme (indistinguishable from `lib.rs:10`), numbers above 65535 |
//! | [`PID`] | `pid 1234`, `pid=1234`, `PID: 1234` | unlabelled numbers (`[1234]`), labels glued to a word (`rapid 3`) |
//!
//! ANSI escapes and other control characters are removed first ([`strip_ansi`]).
//!
//! Normalising is idempotent: placeholders hold nothing that matches again, and a word right after
//! a replacement is judged as if the placeholder's `>` stood before it.
//!
//! # How
//!
//! One left-to-right pass over the bytes, with a class table instead of regexes: diffs normalise
//! every line of both logs, so this is on the hot path. Every replacement holds a digit, `/`, `-`
//! or `.`; the scan jumps between those bytes (skipping the letters and spaces between them many
//! at a time) and judges the word (run of ASCII letters and digits) around each. A line with
//! nothing to replace comes back borrowed.

use std::borrow::Cow;

use crate::summary::strip_ansi;

/// Replaces clock times and dates.
pub const TIME: &str = "<time>";
/// Replaces durations.
pub const DURATION: &str = "<duration>";
/// Replaces UUIDs, ULIDs and long hex ids.
pub const ID: &str = "<id>";
/// Replaces `0x` addresses.
pub const ADDR: &str = "<addr>";
/// Replaces the random part of temp paths.
pub const TMP: &str = "<tmp>";
/// Replaces ports.
pub const PORT: &str = "<port>";
/// Replaces labelled process ids.
pub const PID: &str = "<pid>";

/// Hex digits a word needs to count as an id: SHAs and container ids (12 or 64) are longer, while
/// 7-character abbreviated commits and short hex values that may mean something stay.
pub const MIN_HEX_ID_LEN: usize = 12;

/// Hex digits after `0x` for an address: pointers print 8 or more, while flags and status codes
/// (`0x1`, `0xff`) are usually shorter and meaningful.
pub const MIN_ADDR_HEX_DIGITS: usize = 8;

/// Characters after `tmp.` for a `mktemp` name (its default template has 10), so that words like
/// `tmp.log` stay.
pub const MIN_MKTEMP_SUFFIX: usize = 6;

/// Digits of a labelled pid at most (Linux pids fit in 7; more is something else).
const MAX_PID_DIGITS: usize = 10;

const ALNUM: u8 = 1;
const DIGIT: u8 = 2;
const HEX: u8 = 4;
/// Characters of a ULID: digits and upper-case Crockford base32 letters.
const ULID_CHAR: u8 = 8;
const LETTER: u8 = 16;
const UPPER: u8 = 32;
const LOWER: u8 = 64;
/// Characters a temp path component is made of; anything else (space, quotes, `:`, `,`,
/// brackets…) ends it.
const PATH: u8 = 128;

const fn classes() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut c = 0;
        if b.is_ascii_digit() {
            c |= ALNUM | DIGIT | HEX | ULID_CHAR | PATH;
        }
        if b.is_ascii_uppercase() {
            c |= ALNUM | LETTER | UPPER | PATH;
            if !matches!(b, b'I' | b'L' | b'O' | b'U') {
                c |= ULID_CHAR;
            }
        }
        if b.is_ascii_lowercase() {
            c |= ALNUM | LETTER | LOWER | PATH;
        }
        if matches!(b, b'a'..=b'f' | b'A'..=b'F') {
            c |= HEX;
        }
        if matches!(
            b,
            b'.' | b'_' | b'-' | b'+' | b'~' | b'@' | b'%' | b'#' | b'$'
        ) || b >= 0x80
        {
            c |= PATH;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CLASS: [u8; 256] = classes();

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];
const WEEKDAYS: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];

/// Duration units, longest first so that `ms` wins over `m` and `min` over `m`. The flag says
/// whether the unit may follow the number after a space: lone `m` and `h` there are too often
/// something else (`3 m`).
const UNITS: [(&[u8], bool); 20] = [
    (b"seconds", true),
    (b"second", true),
    (b"minutes", true),
    (b"minute", true),
    (b"hours", true),
    (b"hour", true),
    (b"secs", true),
    (b"mins", true),
    (b"sec", true),
    (b"min", true),
    (b"hrs", true),
    (b"hr", true),
    (b"ms", true),
    (b"us", true),
    ("µs".as_bytes(), true),
    ("μs".as_bytes(), true),
    (b"ns", true),
    (b"s", true),
    (b"m", false),
    (b"h", false),
];

/// `line` with ANSI escapes removed and run-specific values replaced by placeholders (see the
/// module documentation); borrowed when nothing changed.
pub fn normalize(line: &str) -> Cow<'_, str> {
    match clean(line) {
        Cow::Borrowed(text) => replace(text),
        Cow::Owned(text) => Cow::Owned(replace(&text).into_owned()),
    }
}

/// Appends the normalised `line` to `out`: [`normalize`] without an allocation per line, for
/// callers that normalise many lines into one buffer.
pub fn normalize_into(line: &str, out: &mut Vec<u8>) {
    let clean = clean(line);
    let bytes = clean.as_bytes();
    let mut copied = 0;
    replacements(bytes, |start, end, placeholder| {
        out.extend_from_slice(&bytes[copied..start]);
        out.extend_from_slice(placeholder.as_bytes());
        copied = end;
    });
    out.extend_from_slice(&bytes[copied..]);
}

fn clean(line: &str) -> Cow<'_, str> {
    if may_have_controls(line.as_bytes()) {
        strip_ansi(line)
    } else {
        Cow::Borrowed(line)
    }
}

/// Whether `bytes` may hold a control character for [`strip_ansi`] to remove: C0 controls but tab,
/// DEL, and the lead byte of the C1 controls (U+0080–U+009F). `strip_ansi`'s own check decodes
/// characters one by one; this one is a branch-free fold that vectorises, and most lines pass it.
fn may_have_controls(bytes: &[u8]) -> bool {
    let flag = |c: u8| (c < 0x20 && c != b'\t') | (c == 0x7f) | (c == 0xc2);
    let any = |chunk: &[u8]| chunk.iter().fold(false, |acc, &c| acc | flag(c));
    if bytes.len() < 16 {
        return bytes.iter().any(|&c| flag(c));
    }
    // The remainder is tested as the last 16 bytes, overlapping the chunks, to stay vectorised.
    bytes.chunks_exact(16).any(any) || any(&bytes[bytes.len() - 16..])
}

fn replace(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    replacements(bytes, |start, end, placeholder| {
        let out = out.get_or_insert_with(|| Vec::with_capacity(bytes.len() + 16));
        out.extend_from_slice(&bytes[copied..start]);
        out.extend_from_slice(placeholder.as_bytes());
        copied = end;
    });
    match out {
        None => Cow::Borrowed(text),
        Some(mut out) => {
            out.extend_from_slice(&bytes[copied..]);
            // Replacements start and end next to ASCII bytes, so the result is UTF-8; the lossy
            // path only guards against a bug in that reasoning.
            Cow::Owned(
                String::from_utf8(out)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            )
        }
    }
}

fn is_alnum(c: u8) -> bool {
    CLASS[c as usize] & ALNUM != 0
}

/// Whether a number may start after `prev`: not inside a word, an identifier (`test_10s`) or a
/// dotted version (`1.2.5s`).
fn numeric_boundary(prev: u8) -> bool {
    !is_alnum(prev) && prev != b'_' && prev != b'.'
}

/// A run of ASCII letters and digits, with the AND and the OR of its bytes' classes.
#[derive(Clone, Copy)]
struct Word {
    start: usize,
    end: usize,
    all: u8,
    any: u8,
}

impl Word {
    fn len(&self) -> usize {
        self.end - self.start
    }
}

/// Calls `f(start, end, placeholder)` for each replacement of `bytes`, in order and without
/// overlap; every `start` and `end` is next to an ASCII byte or at an end of `bytes`.
///
/// Every replacement holds a digit, a `/` (temp roots), a `-` (after a UUID's first group, which
/// may be all letters) or a `.` (after `tmp`), so the scan jumps from one such byte to the next and
/// looks around it; the words in between are never visited one by one.
fn replacements(bytes: &[u8], mut f: impl FnMut(usize, usize, &'static str)) {
    let mut scan = Scanner { b: bytes, done: 0 };
    let n = bytes.len();
    // Everything before `i` is settled: replaced, or part of no replacement.
    let mut i = 0;
    loop {
        let p = next_trigger(bytes, i);
        if p >= n {
            break;
        }
        let found = match bytes[p] {
            b'/' => scan.temp_path(p).map(|end| (p, end, TMP)),
            b'-' => scan.uuid_before_dash(i, p),
            b'.' => scan.mktemp_before_dot(i, p),
            _ => {
                // A digit: judge the whole word around it, which starts after `i` (words before
                // `i` were judged already).
                let mut start = p;
                while start > i && is_alnum(bytes[start - 1]) {
                    start -= 1;
                }
                let mut all = 0xff;
                let mut any = 0;
                let mut end = start;
                while end < n {
                    let k = CLASS[bytes[end] as usize];
                    if k & ALNUM == 0 {
                        break;
                    }
                    all &= k;
                    any |= k;
                    end += 1;
                }
                let word = Word {
                    start,
                    end,
                    all,
                    any,
                };
                match scan.word(word) {
                    Some(found) => Some(found),
                    None => {
                        i = end;
                        continue;
                    }
                }
            }
        };
        match found {
            Some((from, to, placeholder)) => {
                f(from, to, placeholder);
                scan.done = to;
                i = to;
            }
            None => i = p + 1,
        }
    }
}

/// The first position from `i` holding a digit, `/`, `-` or `.`, or `bytes.len()`.
fn next_trigger(bytes: &[u8], mut i: usize) -> usize {
    let is_trigger = |c: u8| (c.wrapping_sub(b'0') < 10) | (c == b'/') | (c == b'-') | (c == b'.');
    // Whole chunks are tested with a branch-free fold, which vectorises; most bytes are letters
    // and spaces and are skipped sixteen at a time.
    while let Some(chunk) = bytes.get(i..i + 16) {
        if chunk.iter().fold(false, |acc, &c| acc | is_trigger(c)) {
            break;
        }
        i += 16;
    }
    while i < bytes.len() && !is_trigger(bytes[i]) {
        i += 1;
    }
    i
}

struct Scanner<'a> {
    b: &'a [u8],
    /// End of the last replacement: look-behinds stop there, seeing what a second pass would see.
    done: usize,
}

impl Scanner<'_> {
    /// The byte at `i`, or 0 (a non-word byte, never left in a cleaned line) past the end.
    fn at(&self, i: usize) -> u8 {
        self.b.get(i).copied().unwrap_or(0)
    }

    /// The byte before `i` as a second pass would see it: `>` right after a placeholder.
    fn prev(&self, i: usize) -> u8 {
        if i == 0 {
            0
        } else if i == self.done {
            b'>'
        } else {
            self.b[i - 1]
        }
    }

    fn boundary_before(&self, i: usize) -> bool {
        !is_alnum(self.prev(i))
    }

    fn digit(&self, i: usize) -> Option<u32> {
        let c = self.at(i);
        c.is_ascii_digit().then(|| u32::from(c - b'0'))
    }

    fn two_digits(&self, i: usize) -> Option<u32> {
        Some(self.digit(i)? * 10 + self.digit(i + 1)?)
    }

    /// Whether a number may end at `i`: not glued to a word. (Looking further, say for `.5`, would
    /// see text that a replacement may change, and break idempotence.)
    fn number_ends(&self, i: usize) -> bool {
        !is_alnum(self.at(i))
    }

    fn word(&self, w: Word) -> Option<(usize, usize, &'static str)> {
        let first = self.b[w.start];
        let prev = self.prev(w.start);
        if w.all & DIGIT != 0 {
            // The common case of a number inside a name or a dotted sequence (`test_12`,
            // `127.0.0.1`), where only a UUID's first group could start.
            if matches!(prev, b'_' | b'.') && !(w.len() == 8 && self.at(w.end) == b'-') {
                return None;
            }
            if let Some(placeholder) = self.labelled(w) {
                return Some((w.start, w.end, placeholder));
            }
            if prev == b':' && self.host_before(w.start - 1) && self.is_port(w) {
                return Some((w.start, w.end, PORT));
            }
        }
        let starts_with_digit = first.is_ascii_digit();
        if starts_with_digit && let Some(end) = self.address(w) {
            return Some((w.start, end, ADDR));
        }
        if w.len() == 8
            && w.all & HEX != 0
            && let Some(end) = self.uuid(w.start)
        {
            return Some((w.start, end, ID));
        }
        if starts_with_digit && numeric_boundary(prev) && prev != b'-' {
            if let Some(end) = self.date(w) {
                return Some((w.start, end, TIME));
            }
            if let Some((start, end)) = self.clock(w) {
                return Some((start, end, TIME));
            }
        }
        let hex_id = w.all & HEX != 0 && w.len() >= MIN_HEX_ID_LEN && w.any & LETTER != 0;
        let ulid = w.len() == 26
            && w.all & ULID_CHAR != 0
            && w.any & LETTER != 0
            && matches!(first, b'0'..=b'7');
        if hex_id || ulid {
            return Some((w.start, w.end, ID));
        }
        if starts_with_digit
            && numeric_boundary(prev)
            && let Some(end) = self.duration(w.start)
        {
            return Some((w.start, end, DURATION));
        }
        None
    }

    /// A UUID whose first group is the all-letter word of 8 hex digits before the `-` at `dash`
    /// (a first group with a digit is found from that digit), not reaching back before `from`.
    fn uuid_before_dash(&self, from: usize, dash: usize) -> Option<(usize, usize, &'static str)> {
        let start = dash.checked_sub(8).filter(|&s| s >= from)?;
        let ok =
            self.b[start..dash].iter().all(u8::is_ascii_hexdigit) && self.boundary_before(start);
        ok.then(|| self.uuid(start))?.map(|end| (start, end, ID))
    }

    /// A `tmp.XXXXXX` name whose `tmp` word ends at the `.` at `dot`, not reaching back before
    /// `from`.
    fn mktemp_before_dot(&self, from: usize, dot: usize) -> Option<(usize, usize, &'static str)> {
        let start = dot.checked_sub(3).filter(|&s| s >= from)?;
        let ok = &self.b[start..dot] == b"tmp" && self.boundary_before(start);
        ok.then(|| self.mktemp(dot))?.map(|end| (start, end, TMP))
    }

    /// `pid 1234`, `port=8080`, `PID: 42`: an all-digit word after a label and a separator.
    fn labelled(&self, w: Word) -> Option<&'static str> {
        let b = self.b;
        let mut q = w.start;
        if q > self.done && b[q - 1] == b' ' {
            q -= 1;
        }
        if q > self.done && matches!(b[q - 1], b'=' | b':') {
            q -= 1;
        }
        if q == w.start || !self.number_ends(w.end) {
            return None;
        }
        for (label, placeholder) in [(&b"port"[..], PORT), (&b"pid"[..], PID)] {
            let l = label.len();
            if q < self.done + l || !b[q - l..q].eq_ignore_ascii_case(label) {
                continue;
            }
            // `_` may precede (`listen_port=`), a letter may not (`export 3`, `rapid 3`).
            if CLASS[self.prev(q - l) as usize] & LETTER != 0 {
                return None;
            }
            let ok = if placeholder == PORT {
                self.is_port(w)
            } else {
                w.len() <= MAX_PID_DIGITS
            };
            return ok.then_some(placeholder);
        }
        None
    }

    fn is_port(&self, w: Word) -> bool {
        if w.len() > 5 || !self.number_ends(w.end) {
            return false;
        }
        let value = self.b[w.start..w.end]
            .iter()
            .fold(0u32, |v, &c| v * 10 + u32::from(c - b'0'));
        value <= 65535
    }

    /// Whether what ends at the `:` at `colon` is a host whose number is a port: an IPv4 literal,
    /// `localhost`, a bracketed IPv6 literal or the host of a URL with a scheme. Other `name:123`
    /// look the same as `lib.rs:10`.
    fn host_before(&self, colon: usize) -> bool {
        if colon <= self.done {
            return false;
        }
        let h = &self.b[self.done..colon];
        let n = h.len();
        if h.ends_with(b"]") {
            let window = &h[n.saturating_sub(48)..n - 1];
            return window.iter().rposition(|&c| c == b'[').is_some_and(|open| {
                let inside = &window[open + 1..];
                inside.contains(&b':')
                    && inside
                        .iter()
                        .all(|&c| c.is_ascii_hexdigit() || matches!(c, b':' | b'.' | b'%'))
            });
        }
        if n >= 9 && h[n - 9..].eq_ignore_ascii_case(b"localhost") {
            return n == 9 || !is_alnum(h[n - 10]) && h[n - 10] != b'.';
        }
        // IPv4: up to 15 digits and dots, four octets.
        let dotted = h
            .iter()
            .rev()
            .take(16)
            .take_while(|&&c| c.is_ascii_digit() || c == b'.')
            .count();
        if (7..=15).contains(&dotted) {
            let ip = &h[n - dotted..];
            let before = if n == dotted { 0 } else { h[n - dotted - 1] };
            let octets_ok = ip.split(|&c| c == b'.').all(|o| {
                !o.is_empty()
                    && o.len() <= 3
                    && o.iter().fold(0u32, |v, &c| v * 10 + u32::from(c - b'0')) <= 255
            });
            if octets_ok && ip.iter().filter(|&&c| c == b'.').count() == 3 && !is_alnum(before) {
                return true;
            }
        }
        let host = h
            .iter()
            .rev()
            .take(254)
            .take_while(|&&c| is_alnum(c) || c == b'.' || c == b'-')
            .count();
        host > 0 && host <= 253 && h[..n - host].ends_with(b"://")
    }

    /// `0x` followed by [`MIN_ADDR_HEX_DIGITS`] or more hex digits, the whole word.
    fn address(&self, w: Word) -> Option<usize> {
        let b = &self.b[w.start..w.end];
        let ok = b.len() >= 2 + MIN_ADDR_HEX_DIGITS
            && b[0] == b'0'
            && matches!(b[1], b'x' | b'X')
            && b[2..].iter().all(u8::is_ascii_hexdigit);
        ok.then_some(w.end)
    }

    /// A UUID (`8-4-4-4-12` hex digits) starting at `s`, whose first group is a whole word.
    fn uuid(&self, s: usize) -> Option<usize> {
        let mut i = s + 8;
        for group in [4, 4, 4, 12] {
            if self.at(i) != b'-' {
                return None;
            }
            i += 1;
            for _ in 0..group {
                if !self.at(i).is_ascii_hexdigit() {
                    return None;
                }
                i += 1;
            }
        }
        (!is_alnum(self.at(i))).then_some(i)
    }

    /// `tmp.` and a random suffix, after the word `tmp` ending at `dot`.
    fn mktemp(&self, dot: usize) -> Option<usize> {
        if self.at(dot) != b'.' {
            return None;
        }
        let mut i = dot + 1;
        let mut any = 0;
        while is_alnum(self.at(i)) {
            any |= CLASS[self.at(i) as usize];
            i += 1;
        }
        let kinds = [UPPER, LOWER, DIGIT]
            .iter()
            .filter(|&&k| any & k != 0)
            .count();
        let suffix = i - (dot + 1);
        (suffix >= MIN_MKTEMP_SUFFIX && kinds >= 2).then_some(i)
    }

    /// A date (`YYYY-MM-DD` or `YYYY/MM/DD`), with an optional time after `T` or a space.
    fn date(&self, w: Word) -> Option<usize> {
        let s = w.start;
        let sep = self.at(s + 4);
        if w.len() != 4 || !matches!(sep, b'-' | b'/') || self.at(s + 7) != sep {
            return None;
        }
        let month = self.two_digits(s + 5)?;
        let day = self.two_digits(s + 8)?;
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return None;
        }
        let mut end = s + 10;
        if matches!(self.at(end), b'T' | b' ')
            && let Some(t) = self.time(end + 1, false)
        {
            end = t;
        }
        (!is_alnum(self.at(end))).then_some(end)
    }

    /// A time of day `H:MM:SS` starting with this word, with a syslog date before it taken along.
    fn clock(&self, w: Word) -> Option<(usize, usize)> {
        if w.len() > 2 || self.at(w.end) != b':' {
            return None;
        }
        let end = self.time(w.start, true)?;
        Some((self.syslog_date_before(w.start).unwrap_or(w.start), end))
    }

    /// `H:MM[:SS[.fff]][Z|±hh[:]mm]` at `i`; seconds may be left out only after a date.
    fn time(&self, i: usize, require_seconds: bool) -> Option<usize> {
        let hour_digits = match (self.digit(i), self.digit(i + 1)) {
            (Some(_), Some(_)) => 2,
            (Some(_), None) => 1,
            _ => return None,
        };
        let hour = if hour_digits == 2 {
            self.two_digits(i)?
        } else {
            self.digit(i)?
        };
        let mut i = i + hour_digits;
        if hour > 23 || self.at(i) != b':' {
            return None;
        }
        if self.two_digits(i + 1)? > 59 {
            return None;
        }
        i += 3;
        if self.at(i) == b':'
            && let Some(seconds) = self.two_digits(i + 1)
        {
            if seconds > 60 {
                return None;
            }
            let s = i + 3;
            if matches!(self.at(s), b'.' | b',') && self.at(s + 1).is_ascii_digit() {
                let mut j = s + 1;
                while self.at(j).is_ascii_digit() {
                    j += 1;
                }
                if let Some(end) = self.zone_end(j) {
                    return Some(end);
                }
            }
            // Each optional part that leaves the time glued to a word is given up rather than
            // the whole time: `19:53:21,01ab` is a time, a comma and a word, as the second pass
            // sees it in `<time>,<id>`.
            if let Some(end) = self.zone_end(s) {
                return Some(end);
            }
            if require_seconds {
                return None;
            }
        } else if require_seconds {
            return None;
        }
        self.zone_end(i)
    }

    /// The end of a time at `i`, taking an attached zone (`Z`, `+02:00`, `-0800`) along when the
    /// time then still ends at a word boundary.
    fn zone_end(&self, i: usize) -> Option<usize> {
        let mut with_zone = None;
        if self.at(i) == b'Z' {
            with_zone = Some(i + 1);
        } else if matches!(self.at(i), b'+' | b'-') && self.two_digits(i + 1).is_some() {
            let mut j = i + 3;
            if self.at(j) == b':' && self.two_digits(j + 1).is_some() {
                j += 3;
            } else if self.two_digits(j).is_some() {
                j += 2;
            }
            with_zone = Some(j);
        }
        if let Some(j) = with_zone
            && !is_alnum(self.at(j))
        {
            return Some(j);
        }
        (!is_alnum(self.at(i))).then_some(i)
    }

    /// Where a syslog-style date (`Nov 23 `, `Nov  3 `, `Mon Nov 23 `) ending at `t` starts.
    fn syslog_date_before(&self, t: usize) -> Option<usize> {
        let b = self.b;
        let lo = self.done;
        let mut i = t;
        if i <= lo || b[i - 1] != b' ' {
            return None;
        }
        i -= 1;
        let mut digits = 0;
        while digits < 2 && i > lo && b[i - 1].is_ascii_digit() {
            i -= 1;
            digits += 1;
        }
        if digits == 0 || i <= lo || b[i - 1] != b' ' {
            return None;
        }
        i -= 1;
        if digits == 1 && i > lo && b[i - 1] == b' ' {
            i -= 1;
        }
        if i < lo + 3 || !MONTHS.iter().any(|m| &b[i - 3..i] == *m) {
            return None;
        }
        i -= 3;
        if !self.boundary_before(i) {
            return None;
        }
        if i >= lo + 4
            && b[i - 1] == b' '
            && WEEKDAYS.iter().any(|d| &b[i - 4..i - 1] == *d)
            && self.boundary_before(i - 4)
        {
            i -= 4;
        }
        Some(i)
    }

    /// A duration at `s`: number and unit, one space allowed between them, or several
    /// number-unit pairs glued together (`1h2m3.5s`).
    fn duration(&self, s: usize) -> Option<usize> {
        let mut i = s;
        let mut first = true;
        loop {
            let digits = i;
            while self.at(i).is_ascii_digit() {
                i += 1;
            }
            if i == digits {
                return None;
            }
            if self.at(i) == b'.' && self.at(i + 1).is_ascii_digit() {
                i += 1;
                while self.at(i).is_ascii_digit() {
                    i += 1;
                }
            }
            if let Some(end) = self.unit(i, false) {
                i = end;
                if self.at(i).is_ascii_digit() {
                    first = false;
                    continue;
                }
            } else if first && self.at(i) == b' ' {
                i = self.unit(i + 1, true)?;
            } else {
                return None;
            }
            break;
        }
        let c = self.at(i);
        (!is_alnum(c) && c != b'_').then_some(i)
    }

    /// The end of a duration unit at `i` that is not followed by a letter.
    fn unit(&self, i: usize, spaced: bool) -> Option<usize> {
        // Most numbers have no unit: settle those on the first byte.
        if !matches!(self.at(i), b's' | b'm' | b'h' | b'u' | b'n' | 0xc2 | 0xce) {
            return None;
        }
        let rest = self.b.get(i..)?;
        UNITS.iter().find_map(|&(unit, after_space)| {
            let ok = rest.starts_with(unit)
                && (!spaced || after_space)
                && CLASS[self.at(i + unit.len()) as usize] & LETTER == 0;
            ok.then_some(i + unit.len())
        })
    }

    /// A temp path at the `/` at `i`: the end of its random part.
    fn temp_path(&self, i: usize) -> Option<usize> {
        let p = self.prev(i);
        if is_alnum(p) || matches!(p, b'.' | b'_' | b'-' | b'~') {
            return None;
        }
        let rest = &self.b[i..];
        if rest.starts_with(b"/tmp/") {
            let root = i + 5;
            let first = self.component(root);
            if first == root {
                return None;
            }
            if self.b[root..first].starts_with(b"pytest-of-") && self.at(first) == b'/' {
                let run = self.component(first + 1);
                if self.b[first + 1..run].starts_with(b"pytest-") {
                    return Some(run);
                }
            }
            return Some(first);
        }
        let root = if rest.starts_with(b"/var/folders/") {
            i + 13
        } else if rest.starts_with(b"/private/var/folders/") {
            i + 21
        } else {
            return None;
        };
        // macOS: /var/folders/<2 chars>/<random>/T/<first>.
        let a = self.component(root);
        if a == root || self.at(a) != b'/' {
            return None;
        }
        let mut e = self.component(a + 1);
        if e == a + 1 {
            return None;
        }
        if self.at(e) == b'/'
            && matches!(self.at(e + 1), b'T' | b'C' | b'X')
            && self.component(e + 1) == e + 2
        {
            e += 2;
            if self.at(e) == b'/' {
                let first = self.component(e + 1);
                if first > e + 1 {
                    e = first;
                }
            }
        }
        Some(e)
    }

    fn component(&self, mut i: usize) -> usize {
        while CLASS[self.at(i) as usize] & PATH != 0 {
            i += 1;
        }
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cases: &[(&str, &str)]) {
        for (input, expected) in cases {
            let once = normalize(input);
            assert_eq!(&once, expected, "normalising {input:?}");
            assert_eq!(normalize(&once), once, "normalising {input:?} twice");
            let mut buf = Vec::new();
            normalize_into(input, &mut buf);
            assert_eq!(
                String::from_utf8_lossy(&buf),
                *expected,
                "normalize_into {input:?}"
            );
        }
    }

    #[test]
    fn timestamps() {
        check(&[
            ("2026-11-23T19:53:21Z start", "<time> start"),
            ("2026-11-23T19:53:21.123456789Z", "<time>"),
            ("2026-11-23T19:53:21+02:00 x", "<time> x"),
            ("2026-11-23T19:53:21-0800 x", "<time> x"),
            ("2026-11-23 19:53:21,123 INFO", "<time> INFO"),
            ("2026-11-23 19:53:21.5 INFO", "<time> INFO"),
            ("2026-11-23T19:53 x", "<time> x"),
            ("2026/11/23 19:53:21 go log", "<time> go log"),
            ("built on 2026-11-23.", "built on <time>."),
            ("[19:53:21] step", "[<time>] step"),
            ("19:53:21.042 step", "<time> step"),
            ("at 7:05:09Z", "at <time>"),
            ("Nov 23 19:53:21 host sshd", "<time> host sshd"),
            ("Nov  3 09:53:21 host", "<time> host"),
            ("Mon Nov 23 19:53:21 UTC 2026", "<time> UTC 2026"),
            ("I1123 19:53:21.123 glog", "I1123 <time> glog"),
            ("\u{1b}[2m2026-11-23T19:53:21Z\u{1b}[0m ok", "<time> ok"),
        ]);
    }

    #[test]
    fn not_timestamps() {
        check(&[
            ("src/lib.rs:10:5", "src/lib.rs:10:5"),
            ("12:34 ratio", "12:34 ratio"),
            ("25:00:00", "25:00:00"),
            ("12:61:00", "12:61:00"),
            ("2026-13-01", "2026-13-01"),
            ("2026-11-32", "2026-11-32"),
            ("nightly-2026-11-23", "nightly-2026-11-23"),
            ("v2026.11.23", "v2026.11.23"),
            ("12:34:56abc", "12:34:56abc"),
            ("20261123", "20261123"),
            ("Novel 23 19:53:21", "Novel 23 <time>"),
        ]);
    }

    #[test]
    fn durations() {
        check(&[
            ("took 0.123s", "took <duration>"),
            ("took 12ms.", "took <duration>."),
            ("Time elapsed: 0.01 s", "Time elapsed: <duration>"),
            ("1.5 s", "<duration>"),
            ("1m2s", "<duration>"),
            ("1h2m3.5s", "<duration>"),
            (
                "--- PASS: TestFoo (0.00s)",
                "--- PASS: TestFoo (<duration>)",
            ),
            ("finished in 0.52s", "finished in <duration>"),
            (
                "== 3 passed, 1 failed in 3.20s ==",
                "== 3 passed, 1 failed in <duration> ==",
            ),
            ("12µs 3ns 4us", "<duration> <duration> <duration>"),
            ("retry in 2 seconds", "retry in <duration>"),
            ("5min 10 min", "<duration> <duration>"),
            ("ok  \tpkg\t0.012s", "ok  \tpkg\t<duration>"),
        ]);
    }

    #[test]
    fn meaningful_numbers_stay() {
        check(&[
            ("left: 1", "left: 1"),
            ("  right: 2", "  right: 2"),
            ("expected 3 but was 4", "expected 3 but was 4"),
            ("src/lib.rs:10:5", "src/lib.rs:10:5"),
            (
                "test result: FAILED. 3 passed; 1 failed; 0 ignored",
                "test result: FAILED. 3 passed; 1 failed; 0 ignored",
            ),
            ("test_10s ... ok", "test_10s ... ok"),
            ("v1.5s", "v1.5s"),
            ("1.2.5s", "1.2.5s"),
            ("3 m away, 2 h", "3 m away, 2 h"),
            ("5 sets", "5 sets"),
            ("5msg", "5msg"),
            ("assert 123456789012345 == 3", "assert 123456789012345 == 3"),
            ("exit code 0x1, flags 0xff", "exit code 0x1, flags 0xff"),
            ("x86_64 i686", "x86_64 i686"),
            ("HTTP 404 after 3 retries", "HTTP 404 after 3 retries"),
            ("at line 42, column 7", "at line 42, column 7"),
        ]);
    }

    #[test]
    fn ids() {
        check(&[
            (
                "req 550e8400-e29b-41d4-a716-446655440000 done",
                "req <id> done",
            ),
            ("REQ 550E8400-E29B-41D4-A716-446655440000", "REQ <id>"),
            ("deadbeef-e29b-41d4-a716-446655440000", "<id>"),
            (
                "exec 01JD3QX0ZKQ9V8W6T5R4P3N2M1 started",
                "exec <id> started",
            ),
            (
                "commit 3f2a9c1b7e4d8a6f5c3b2a1d9e8f7a6b5c4d3e2f",
                "commit <id>",
            ),
            ("container a1b2c3d4e5f6", "container <id>"),
            (
                "image@sha256:9f86d081884c7d659a2feaa0c55ad015",
                "image@sha256:<id>",
            ),
            ("object at 0x7ffd5c3a", "object at <addr>"),
            ("<Foo object at 0x7f3b2c1d0e50>", "<Foo object at <addr>>"),
        ]);
    }

    #[test]
    fn not_ids() {
        check(&[
            ("commit 3f2a9c1", "commit 3f2a9c1"),
            ("a1b2c3d4e5f", "a1b2c3d4e5f"),
            ("deadbeefcafebabe", "deadbeefcafebabe"),
            ("ABCDEFGHJKMNPQRSTVWXYZABCD", "ABCDEFGHJKMNPQRSTVWXYZABCD"),
            ("91JD3QX0ZKQ9V8W6T5R4P3N2M1", "91JD3QX0ZKQ9V8W6T5R4P3N2M1"),
            (
                "550e8400-e29b-41d4-a716-44665544000",
                "550e8400-e29b-41d4-a716-44665544000",
            ),
            ("0x7ffd5c3", "0x7ffd5c3"),
            ("0x7ffd5c3g", "0x7ffd5c3g"),
        ]);
    }

    #[test]
    fn temp_paths() {
        check(&[
            ("wrote /tmp/.tmpAbC123/out.txt", "wrote <tmp>/out.txt"),
            ("cd /tmp/tmp.Xy12Ab9Qz", "cd <tmp>"),
            ("'/tmp/tmpk2j3x9ab': ok", "'<tmp>': ok"),
            (
                "/tmp/pytest-of-ci/pytest-12/test_foo0/data.txt",
                "<tmp>/test_foo0/data.txt",
            ),
            ("/tmp/TestFoo123456/001/x", "<tmp>/001/x"),
            ("/tmp/foo.txt:12: error", "<tmp>:12: error"),
            ("/var/folders/x1/abc123_n/T/tmpq1w2e3/f", "<tmp>/f"),
            ("/private/var/folders/x1/abc123_n/T/", "<tmp>/"),
            ("file:///tmp/abc/x", "file://<tmp>/x"),
            ("out tmp.Ab3dE9xQ", "out <tmp>"),
            ("/work/tmp.AbC123x/y", "/work/<tmp>/y"),
        ]);
    }

    #[test]
    fn not_temp_paths() {
        check(&[
            ("/home/ci/tmp/x", "/home/ci/tmp/x"),
            ("/tmp/", "/tmp/"),
            ("/tmpfs/x", "/tmpfs/x"),
            (
                "tmp.backup tmp.README tmp.log",
                "tmp.backup tmp.README tmp.log",
            ),
            ("a/tmp/x", "a/tmp/x"),
        ]);
    }

    #[test]
    fn ports_and_pids() {
        check(&[
            (
                "listening on 127.0.0.1:38211",
                "listening on 127.0.0.1:<port>",
            ),
            (
                "connect localhost:5432 failed",
                "connect localhost:<port> failed",
            ),
            ("bind [::1]:8080", "bind [::1]:<port>"),
            (
                "GET http://example.test:8080/x",
                "GET http://example.test:<port>/x",
            ),
            ("0.0.0.0:80.", "0.0.0.0:<port>."),
            ("on port 38211", "on port <port>"),
            ("port=38211, Port: 9", "port=<port>, Port: <port>"),
            ("listen_port=1234", "listen_port=<port>"),
            ("child pid 1234 exited", "child pid <pid> exited"),
            ("pid=1234 PID: 77", "pid=<pid> PID: <pid>"),
        ]);
    }

    #[test]
    fn not_ports_or_pids() {
        check(&[
            ("lib.rs:10", "lib.rs:10"),
            ("db.internal:5432", "db.internal:5432"),
            ("127.0.0.1:70000", "127.0.0.1:70000"),
            ("1.2.3:8080", "1.2.3:8080"),
            ("export 3", "export 3"),
            ("rapid 3 times", "rapid 3 times"),
            ("port 8080x", "port 8080x"),
            ("pid 12345678901", "pid 12345678901"),
            ("sshd[1234]: ok", "sshd[1234]: ok"),
            ("pid", "pid"),
            ("port:", "port:"),
        ]);
    }

    #[test]
    fn limits_at_their_edges() {
        let hex = |n: usize| "a1".repeat(n).chars().take(n).collect::<String>();
        assert_eq!(normalize(&hex(MIN_HEX_ID_LEN)), ID);
        assert_eq!(normalize(&hex(MIN_HEX_ID_LEN - 1)), hex(MIN_HEX_ID_LEN - 1));
        let addr = |n: usize| format!("0x{}", "7f".repeat(n).chars().take(n).collect::<String>());
        assert_eq!(normalize(&addr(MIN_ADDR_HEX_DIGITS)), ADDR);
        assert_eq!(
            normalize(&addr(MIN_ADDR_HEX_DIGITS - 1)),
            addr(MIN_ADDR_HEX_DIGITS - 1)
        );
        let mktemp =
            |n: usize| format!("tmp.{}", "a1".repeat(n).chars().take(n).collect::<String>());
        assert_eq!(normalize(&mktemp(MIN_MKTEMP_SUFFIX)), TMP);
        assert_eq!(
            normalize(&mktemp(MIN_MKTEMP_SUFFIX - 1)),
            mktemp(MIN_MKTEMP_SUFFIX - 1)
        );
        assert_eq!(normalize("port 65535"), "port <port>");
        assert_eq!(normalize("port 65536"), "port 65536");
        assert_eq!(normalize("pid 1234567890"), "pid <pid>");
        assert_eq!(normalize("pid 12345678901"), "pid 12345678901");
    }

    #[test]
    fn unchanged_lines_are_borrowed() {
        for line in ["plain text", "test foo ... ok", "3 passed; 1 failed", ""] {
            assert!(matches!(normalize(line), Cow::Borrowed(_)), "{line:?}");
        }
        assert!(matches!(normalize("at 19:53:21"), Cow::Owned(_)));
    }

    #[test]
    fn non_ascii_text_survives() {
        check(&[
            ("→ 12ms ✓ Größe", "→ <duration> ✓ Größe"),
            ("/tmp/ünï/x ok", "<tmp>/x ok"),
            ("日本 19:53:21 語", "日本 <time> 語"),
        ]);
    }

    /// Random lines made of pieces that do and do not normalise, glued in every way, must
    /// normalise the same once and twice.
    #[test]
    fn idempotent_on_glued_pieces() {
        let pieces = [
            "2026-11-23",
            "T",
            "19:53:21",
            "Z",
            ".5",
            "s",
            "ms",
            " ",
            "1",
            "0x7ffd5c3a12",
            "/tmp/",
            "a",
            "-",
            ":",
            "8080",
            "port",
            "pid",
            "=",
            "550e8400",
            "-e29b-41d4-a716-446655440000",
            "127.0.0.1",
            "localhost",
            "[::1]",
            "]",
            "tmp",
            ".Ab3dE9x",
            "Nov",
            "23",
            "_",
            "deadbeef",
            "0123456789ab",
            "01JD3QX0ZKQ9V8W6T5R4P3N2M1",
            "(",
            ")",
            "µs",
            "http://h",
            "/",
            ",",
            "+02:00",
            "+0200",
            "12",
            "3",
            "pytest-of-u/pytest-3",
            "/var/folders/x1/ab/T/",
            "Mon",
            "[",
            "://",
            "h",
            "m",
            "sec",
            "0x",
            "\u{1b}[1m",
            "é",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let n = 1 + (next() % 8) as usize;
            let line: String = (0..n)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect();
            let once = normalize(&line).into_owned();
            assert_eq!(normalize(&once), once, "line {line:?}");
        }
    }
}
