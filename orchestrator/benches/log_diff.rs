//! The normalised diff of two 200,000-line logs against `diff -u` on the same files.
//!
//! Two runs of the same test suite are generated: every line has a timestamp, and durations,
//! request ids, container ids, ports, pids and temp paths differ between the runs; 1% of the lines
//! really differ (a third changed, a third only in the old run, a third only in the new one).
//! Timed alternately in pairs, so that the drifts of a shared machine stay out of the ratio:
//! (a) our whole path: read both files, split lines, normalise, diff, render the capped unified
//! text; (b) `diff -u old new > /dev/null`. Reports the median of the per-pair ratios a/b.
//!
//! `cargo bench -p testloop-orchestrator --bench log_diff`; `TESTLOOP_BENCH_PAIRS` changes the
//! number of pairs (11).

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testloop_orchestrator::diff::{DiffOptions, LogDiff, diff_lines};

const LINES: usize = 200_000;
/// One line in this many really differs between the runs.
const CHANGE_EVERY: usize = 100;
const PAIRS: usize = 11;
const WARMUP_PAIRS: usize = 2;

fn main() {
    let pairs = std::env::var("TESTLOOP_BENCH_PAIRS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(PAIRS);
    let dir = tempfile::tempdir().expect("tempdir");
    let old_path = dir.path().join("old.log");
    let new_path = dir.path().join("new.log");
    let expected = generate(&old_path, &new_path);
    let old_bytes = std::fs::metadata(&old_path).expect("metadata").len();
    let new_bytes = std::fs::metadata(&new_path).expect("metadata").len();
    println!(
        "logs: {LINES} lines each; old {:.1} MB, new {:.1} MB; {} lines changed, {} only in old, \
         {} only in new",
        old_bytes as f64 / 1e6,
        new_bytes as f64 / 1e6,
        expected.changed,
        expected.deleted,
        expected.inserted,
    );

    let diff = ours(&old_path, &new_path).0;
    assert_eq!(
        (diff.removed, diff.added),
        (
            expected.changed + expected.deleted,
            expected.changed + expected.inserted
        ),
        "the diff found other changes than the generated ones"
    );
    assert!(!diff.timed_out, "the diff hit its deadline");
    println!(
        "ours: {} removed, {} added, {} hunks shown, {}",
        diff.removed,
        diff.added,
        diff.hunks.len(),
        diff.truncated.as_deref().unwrap_or("not truncated")
    );

    let mut ours_times = Vec::with_capacity(pairs);
    let mut diff_times = Vec::with_capacity(pairs);
    let mut ratios = Vec::with_capacity(pairs);
    for pair in 0..WARMUP_PAIRS + pairs {
        let (_, a) = ours(&old_path, &new_path);
        let b = diff_u(&old_path, &new_path);
        if pair >= WARMUP_PAIRS {
            ours_times.push(a);
            diff_times.push(b);
            ratios.push(a.as_secs_f64() / b.as_secs_f64());
        }
    }
    let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let max = ratios.iter().copied().fold(0.0, f64::max);
    println!(
        "{pairs} pairs: ours {} ms, diff -u {} ms (medians); ratio ours/diff median {:.2} (pairs \
         {min:.2}-{max:.2})",
        median_ms(&mut ours_times),
        median_ms(&mut diff_times),
        median(&mut ratios),
    );
}

/// Our whole path, returning the diff and the time it took.
fn ours(old: &Path, new: &Path) -> (LogDiff, Duration) {
    let start = Instant::now();
    let old_text = read_text(old);
    let new_text = read_text(new);
    let old_lines = split_lines(&old_text);
    let new_lines = split_lines(&new_text);
    let diff = diff_lines(&old_lines, &new_lines, &DiffOptions::default());
    let unified = diff.to_unified();
    let elapsed = start.elapsed();
    assert!(unified.len() <= DiffOptions::default().max_bytes);
    (diff, elapsed)
}

/// A log's text: UTF-8 as is (validating is faster than the lossy decoding that other bytes need).
fn read_text(path: &Path) -> String {
    let bytes = std::fs::read(path).expect("read log");
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn split_lines(text: &str) -> Vec<&str> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.is_empty() && text.is_empty() {
        return Vec::new();
    }
    body.split('\n').collect()
}

fn diff_u(old: &Path, new: &Path) -> Duration {
    let start = Instant::now();
    let status = Command::new("diff")
        .arg("-u")
        .arg(old)
        .arg(new)
        .stdout(Stdio::null())
        .status()
        .expect("run diff");
    let elapsed = start.elapsed();
    // 1: the files differ.
    assert_eq!(status.code(), Some(1), "diff -u failed");
    elapsed
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn median_ms(values: &mut [Duration]) -> String {
    values.sort();
    format!("{:.1}", values[values.len() / 2].as_secs_f64() * 1e3)
}

struct Expected {
    changed: usize,
    deleted: usize,
    inserted: usize,
}

/// A small xorshift generator: the logs are the same on every run of the benchmark.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn hex(&mut self, out: &mut String, digits: usize) {
        for _ in 0..digits {
            let d = self.below(16) as u32;
            out.push(char::from_digit(d, 16).unwrap_or('0'));
        }
    }

    fn alnum(&mut self, out: &mut String, n: usize) {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        for _ in 0..n {
            out.push(CHARS[self.below(CHARS.len() as u64) as usize] as char);
        }
    }
}

/// Writes the two runs' logs and returns the changes made between them.
fn generate(old_path: &Path, new_path: &Path) -> Expected {
    // The content of the suite (what each line says) comes from one generator, the run-specific
    // values (times, ids, ports…) from one per run, and the real changes from a third.
    let mut content = Rng(0x2545_f491_4f6c_dd1d);
    let mut runs = [Rng(0x9e37_79b9_7f4a_7c15), Rng(0xd1b5_4a32_d192_ed03)];
    let mut changes = Rng(0x94d0_49bb_1331_11eb);
    let mut clocks = [
        1_795_000_000_000_000u64, // µs since the epoch: 2026-11-19
        1_795_086_400_000_000u64, // a day later
    ];
    let mut out = [String::new(), String::new()];
    let mut expected = Expected {
        changed: 0,
        deleted: 0,
        inserted: 0,
    };
    let mut template = String::new();
    for n in 0..LINES {
        template.clear();
        let kind = content.below(10);
        let test = content.below(5000);
        let module = ["api", "store", "net", "auth", "cli"][content.below(5) as usize];
        match kind {
            0..=3 => write!(
                template,
                "INFO {module}::tests::test_case_{test} ... ok ({{dur}})"
            ),
            4 => write!(
                template,
                "DEBUG {module}: connecting to 127.0.0.1:{{port}} (pid={{pid}})"
            ),
            5 => write!(
                template,
                "INFO {module}: wrote {{tmp}}/out_{test}.json ({} bytes)",
                test * 7
            ),
            6 => write!(
                template,
                "INFO {module}: request {{uuid}} handled in {{ms}}"
            ),
            7 => write!(
                template,
                "WARN {module}: container {{container}} restarted, attempt {}",
                test % 4
            ),
            8 => write!(
                template,
                "INFO {module}: processing item {n} of {LINES} checksum {test:x}"
            ),
            _ => write!(
                template,
                "ERROR {module}: assertion failed: left: {}, right: {}",
                test % 7,
                test % 7
            ),
        }
        .expect("format");
        let roll = changes.below(CHANGE_EVERY as u64 * 3);
        // 0: changed line, 1: only in old, 2: only in new; each 1/3 of 1%.
        let change = if roll < 3 { Some(roll) } else { None };
        for (run, text) in out.iter_mut().enumerate() {
            let rng = &mut runs[run];
            clocks[run] += 100 + rng.below(5000);
            let line_template = match change {
                Some(0) if run == 1 && template.contains("... ok") => {
                    template.replace("... ok", "... FAILED")
                }
                Some(0) if run == 1 => format!("{template} (second attempt)"),
                Some(1) if run == 1 => continue,
                Some(2) if run == 0 => continue,
                _ => template.clone(),
            };
            timestamp(text, clocks[run]);
            text.push(' ');
            fill(text, &line_template, rng);
            if change == Some(2) && run == 1 {
                text.push_str(&format!(" [retry {n}]"));
            }
            text.push('\n');
        }
        match change {
            Some(0) => expected.changed += 1,
            Some(1) => expected.deleted += 1,
            Some(2) => expected.inserted += 1,
            _ => {}
        }
    }
    std::fs::write(old_path, &out[0]).expect("write old");
    std::fs::write(new_path, &out[1]).expect("write new");
    expected
}

/// `2026-11-19T08:53:20.123456Z` for `micros` since the epoch (days from 2026-11-19 on are
/// approximate: the month is not rolled over, which a benchmark does not need).
fn timestamp(out: &mut String, micros: u64) {
    let secs = micros / 1_000_000;
    let day = 19 + (secs / 86_400) % 10;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    write!(
        out,
        "2026-11-{day:02}T{h:02}:{m:02}:{s:02}.{:06}Z",
        micros % 1_000_000
    )
    .expect("format");
}

fn fill(out: &mut String, template: &str, rng: &mut Rng) {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        match &rest[open + 1..open + close] {
            "dur" => write!(out, "{}.{:03}s", rng.below(3), rng.below(1000)).expect("format"),
            "ms" => write!(out, "{}ms", 1 + rng.below(900)).expect("format"),
            "port" => write!(out, "{}", 32768 + rng.below(28000)).expect("format"),
            "pid" => write!(out, "{}", 1000 + rng.below(60000)).expect("format"),
            "tmp" => {
                out.push_str("/tmp/.tmp");
                rng.alnum(out, 6);
            }
            "uuid" => {
                rng.hex(out, 8);
                for digits in [4, 4, 4, 12] {
                    out.push('-');
                    rng.hex(out, digits);
                }
            }
            "container" => {
                // At least one letter, as container ids have in practice.
                out.push('c');
                rng.hex(out, 11);
            }
            other => out.push_str(other),
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
}
