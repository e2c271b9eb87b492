//! Failure recognition over a generated 50 MB cargo test log (timestamps, passing tests, progress
//! and coloured lines, one failure in the middle): the scanner alone over lines in memory, and
//! `scan_log` over the same log in a `LogStore` (reading and decoding included).
//!
//! `cargo bench -p testloop-orchestrator --bench log_scan`

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use testloop_orchestrator::logs::LogStore;
use testloop_orchestrator::results::logscan::{LogScanner, scan_log};

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

const FAILING_TEST: &str = "checkout::tests::applies_discount";
/// Lines of one test binary's output.
const BINARY_LINES: u64 = 5_000;

/// The same generator as the 50 MB test in `tests/logscan.rs`: cargo test output from many test
/// binaries, interleaved with application logs, build progress and coloured lines; the binary in
/// the middle has one failure.
fn generate(target: usize, mut emit: impl FnMut(&str)) {
    let mut written = 0usize;
    let mut line = String::with_capacity(256);
    let mut n = 0u64;
    let mut binary = 0u64;
    let mut failure_written = false;
    while written < target {
        binary += 1;
        let failing = !failure_written && written >= target / 2;
        let name = if failing {
            "checkout".to_owned()
        } else {
            format!("module_{binary}")
        };
        let mut out = |text: &str| {
            written += text.len() + 1;
            emit(text);
        };
        out(&format!(
            "     Running unittests src/lib.rs (target/debug/deps/{name}-{:016x})",
            binary * 0x9e37_79b9
        ));
        out("");
        out(&format!("running {BINARY_LINES} tests"));
        let mut passed = 0u64;
        for i in 0..BINARY_LINES {
            n += 1;
            line.clear();
            if failing && i == BINARY_LINES / 2 {
                let _ = write!(line, "test {FAILING_TEST} ... FAILED");
            } else {
                match n % 10 {
                    0..=2 => {
                        passed += 1;
                        let _ = write!(line, "test module_{}::case_{n} ... ok", n % 97);
                    }
                    3..=5 => {
                        let _ = write!(
                            line,
                            "2026-03-01T12:{:02}:{:02}.{:06}Z INFO  worker-{}: processed job {n} in {}ms (queue depth {})",
                            n / 60 % 60,
                            n % 60,
                            n % 1_000_000,
                            n % 8,
                            n % 250,
                            n % 17
                        );
                    }
                    6 => {
                        let _ = write!(
                            line,
                            "[{:>3}%] Building CXX object src/CMakeFiles/core.dir/file_{n}.cpp.o",
                            n % 101
                        );
                    }
                    7 => {
                        let _ = write!(
                            line,
                            "\u{1b}[2m2026-03-01T12:00:00Z\u{1b}[0m \u{1b}[33mWARN\u{1b}[0m retrying after error: connection reset (attempt {})",
                            n % 5
                        );
                    }
                    8 => {
                        let _ = write!(
                            line,
                            "    at com.example.service.Handler.process(Handler.java:{}) sending batch {n} of {} records",
                            n % 400,
                            n % 1000
                        );
                    }
                    _ => {
                        let _ = write!(
                            line,
                            "Downloaded crate-{} v1.{}.{} ({} KB) Error counters: 0",
                            n % 300,
                            n % 40,
                            n % 9,
                            n % 900
                        );
                    }
                }
            }
            out(&line);
        }
        out("");
        if failing {
            failure_written = true;
            for text in [
                "failures:",
                "",
                &format!("---- {FAILING_TEST} stdout ----"),
                "computing total for cart 42",
                "",
                &format!("thread '{FAILING_TEST}' (4242) panicked at src/checkout.rs:118:9:"),
                "assertion `left == right` failed: discount must apply",
                "  left: 90",
                " right: 81",
                "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
                "",
                "",
                "failures:",
                &format!("    {FAILING_TEST}"),
                "",
                &format!(
                    "test result: FAILED. {passed} passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.02s"
                ),
            ] {
                out(text);
            }
        } else {
            out(&format!(
                "test result: ok. {passed} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.52s"
            ));
        }
        out("");
    }
}
