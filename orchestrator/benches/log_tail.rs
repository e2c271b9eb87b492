//! `tail(100)` on logs of 1 MB, 100 MB and 1 GB: the line index should make it cost the same on
//! each. Also reports how fast the writer generated them.
//!
//! `cargo bench -p testloop-orchestrator --bench log_tail`; set `TESTLOOP_BENCH_MAX_BYTES` to cap
//! the largest log (e.g. `200000000`) on a small disk.

use std::time::{Duration, Instant};

use testloop_orchestrator::logs::LogStore;

const SIZES: [(&str, u64); 3] = [
    ("1 MB", 1_000_000),
    ("100 MB", 100_000_000),
    ("1 GB", 1_000_000_000),
];
const REPEATS: usize = 50;
const TAIL: u64 = 100;
/// Lines are written in chunks of this many, each followed by a flush, as the runner does after
/// each read from a pipe.
const LINES_PER_FLUSH: u64 = 64;

fn main() {
    let max_bytes = std::env::var("TESTLOOP_BENCH_MAX_BYTES")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LogStore::new(dir.path());

    println!(
        "{:>8} | {:>10} | {:>12} | {:>14} | {:>14} | {:>12}",
        "log", "lines", "write MB/s", "tail(100) p50", "tail(100) max", "open p50"
    );
    println!("{}", "-".repeat(86));
    for (i, (label, target)) in SIZES.iter().enumerate() {
        if *target > max_bytes {
            println!("{label:>8} | skipped (TESTLOOP_BENCH_MAX_BYTES={max_bytes})");
            continue;
        }
        let execution = format!("BENCH{i}");
        let (lines, write_rate) = generate(&store, &execution, *target);

        let mut tails = Vec::with_capacity(REPEATS);
        let mut opens = Vec::with_capacity(REPEATS);
        for _ in 0..REPEATS {
            let start = Instant::now();
            let reader = store.reader(&execution, "1").expect("reader");
            let opened = start.elapsed();
            let tail = reader.tail(TAIL).expect("tail");
            tails.push(start.elapsed());
            opens.push(opened);
            assert_eq!(tail.len() as u64, TAIL.min(lines));
            assert_eq!(tail.last().map(|l| l.number), Some(lines));
        }
        tails.sort();
        opens.sort();
        println!(
            "{label:>8} | {lines:>10} | {write_rate:>12.0} | {:>14} | {:>14} | {:>12}",
            fmt(tails[REPEATS / 2]),
            fmt(tails[REPEATS - 1]),
            fmt(opens[REPEATS / 2]),
        );
        store.remove_execution(&execution).expect("cleanup");
    }
}

/// Writes log lines of varied length until the log holds `target` bytes; returns the line count
/// and the write rate in MB/s.
fn generate(store: &LogStore, execution: &str, target: u64) -> (u64, f64) {
    let mut writer = store.writer(execution, "1").expect("writer");
    let start = Instant::now();
    let mut n = 0u64;
    let mut line = Vec::with_capacity(256);
    while writer.byte_len() < target {
        n += 1;
        line.clear();
        line.extend_from_slice(format!("2026-01-01T00:00:00.{n:06}Z INFO test_{n} ").as_bytes());
        line.resize(line.len() + (n % 160) as usize, b'.');
        writer.append(n as i64, &line).expect("append");
        if n.is_multiple_of(LINES_PER_FLUSH) {
            writer.flush().expect("flush");
        }
    }
    writer.flush().expect("flush");
    let elapsed = start.elapsed().as_secs_f64();
    let bytes = writer.byte_len() as f64;
    (writer.line_count(), bytes / 1e6 / elapsed)
}

fn fmt(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    }
}
