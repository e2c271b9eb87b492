//! A large cargo test log, for the 50 MB log-scan test (`tests/logscan.rs`) and the log-scan
//! benchmark (`benches/log_scan.rs`), which include this file.

use std::fmt::Write as _;

use testloop_orchestrator::results::logscan::Counts;

pub const FAILING_TEST: &str = "checkout::tests::applies_discount";
/// Lines of one test binary's output.
const BINARY_LINES: u64 = 5_000;

/// Cargo test output from many test binaries, interleaved with application logs, build progress
/// and coloured lines; the binary in the middle has one failure. Returns the counts its
/// `test result:` lines add up to.
pub fn generate(target: usize, mut emit: impl FnMut(&str)) -> Counts {
    let mut totals = Counts::default();
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
        totals.passed += passed;
        if failing {
            failure_written = true;
            totals.failed += 1;
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
    totals
}
