//! Failure recognition over a generated 50 MB cargo test log (timestamps, passing tests, progress
//! and coloured lines, one failure in the middle): the scanner alone over lines in memory, and
//! `scan_log` over the same log in a `LogStore` (reading and decoding included).
//!
//! `cargo bench -p testloop-orchestrator --bench log_scan`

use std::time::{Duration, Instant};

use testloop_orchestrator::logs::LogStore;
use testloop_orchestrator::results::logscan::{LogScanner, scan_log};

#[path = "../tests/support/cargo_log.rs"]
mod cargo_log;
use cargo_log::{FAILING_TEST, generate};

const TARGET_BYTES: usize = 50_000_000;
const REPEATS: usize = 7;
/// Lines are written in chunks of this many, each followed by a flush, as the runner does after
/// each read from a pipe.
const LINES_PER_FLUSH: usize = 64;

fn main() {
    let mut log = String::with_capacity(TARGET_BYTES + 1024);
    generate(TARGET_BYTES, |line| {
        log.push_str(line);
        log.push('\n');
    });
    let megabytes = log.len() as f64 / 1e6;
    let lines = log.lines().count();
    println!("log: {megabytes:.1} MB, {lines} lines, {REPEATS} runs each");

    let in_memory = measure(|| {
        let mut scanner = LogScanner::new();
        for line in log.lines() {
            scanner.feed(line);
        }
        scanner.finish()
    });
    report("LogScanner::feed (lines in memory)", megabytes, in_memory);

    let dir = tempfile::tempdir().expect("tempdir");
    let store = LogStore::new(dir.path());
    let mut writer = store.writer("BENCH", "1").expect("writer");
    for (n, line) in log.lines().enumerate() {
        writer.append(n as i64, line.as_bytes()).expect("append");
        if (n + 1) % LINES_PER_FLUSH == 0 {
            writer.flush().expect("flush");
        }
    }
    writer.flush().expect("flush");
    drop(writer);
    let stored = measure(|| {
        let reader = store.reader("BENCH", "1").expect("reader");
        scan_log(&reader).expect("scan")
    });
    report("scan_log (stored log, read from disk)", megabytes, stored);
}

/// Runs `scan` [`REPEATS`] times, checking each result; returns the sorted durations.
fn measure(scan: impl Fn() -> testloop_orchestrator::results::logscan::Scan) -> Vec<Duration> {
    let mut times = Vec::with_capacity(REPEATS);
    for _ in 0..REPEATS {
        let start = Instant::now();
        let result = scan();
        times.push(start.elapsed());
        assert_eq!(result.failures.len(), 1, "{:?}", result.failures);
        assert_eq!(result.failures[0].name, FAILING_TEST);
    }
    times.sort();
    times
}

fn report(label: &str, megabytes: f64, times: Vec<Duration>) {
    let median = times[times.len() / 2];
    let best = times[0];
    println!(
        "{label:<40} median {:>8.1} ms ({:>6.0} MB/s)   best {:>8.1} ms ({:>6.0} MB/s)",
        median.as_secs_f64() * 1e3,
        megabytes / median.as_secs_f64(),
        best.as_secs_f64() * 1e3,
        megabytes / best.as_secs_f64(),
    );
}
