//! Crash test: a child process writes executions, steps and log lines in a loop and is killed with
//! SIGKILL mid-way. Reopening must find an intact database holding every committed row, and logs
//! holding every flushed line with an index that agrees with the data.
//!
//! This is a `harness = false` test: the same binary is the parent and, re-executed with
//! `CHILD_ENV` set, the child. The child reports progress on stdout only after the matching commit
//! or flush returned, so every report the parent reads is a promise the files must keep.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testloop_orchestrator::execution::{
    ExecutionRecord, ExecutionStatus, StepRecord, StepStatus, Trigger, now_micros,
};
use testloop_orchestrator::logs::LogStore;
use testloop_orchestrator::store::Store;

const CHILD_ENV: &str = "TESTLOOP_CRASH_CHILD_DIR";
const LOG_EXECUTION: &str = "01JCRASHLOG000000000000000";
/// Log lines appended per loop iteration: several writer buffers' worth, so that the writer also
/// spills on its own between flushes.
const LINES_PER_ROUND: u64 = 3000;
const ROUNDS: u32 = 5;

fn main() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
    }
    // Several kills at different moments.
    for round in 0..ROUNDS {
        parent(round);
    }
    println!("store_crash: ok");
}

fn execution_id(i: u64) -> String {
    format!("01JCRASH{i:018}")
}

/// The text of the `n`th (1-based) line of the shared log: lengths vary so that writes end at
/// every kind of place, and every ~500th line is big.
fn line_text(n: u64) -> String {
    let pad = if n.is_multiple_of(500) {
        20_000
    } else {
        (n % 300) as usize
    };
    format!("line {n:08} {}", "x".repeat(pad))
}

fn child(dir: &Path) -> ! {
    let store = Store::open(dir.join("testloop.db")).expect("child: open store");
    let logs = LogStore::new(dir.join("logs"));
    let mut shared = logs.writer(LOG_EXECUTION, "1").expect("child: log writer");
    let mut next_line = 1u64;
    for i in 0.. {
        let id = execution_id(i);
        store
            .insert_execution(&ExecutionRecord {
                id: id.clone(),
                workflow: "crash".into(),
                workflow_version: 1,
                snapshot: "kind: TestWorkflow".into(),
                config: serde_json::Map::new(),
                trigger: Trigger::Cli,
                status: ExecutionStatus::Running,
                created_at: now_micros(),
                started_at: Some(now_micros()),
                finished_at: None,
                error: None,
                rerun_of: None,
                only_failed: false,
                executor: Default::default(),
            })
            .expect("child: insert");
        for s in 1..=3 {
            store
                .upsert_step(&StepRecord {
                    execution_id: id.clone(),
                    path: format!("{s}"),
                    name: format!("step {s}"),
                    status: StepStatus::Passed,
                    exit_code: Some(0),
                    attempts: 1,
                    started_at: Some(now_micros()),
                    finished_at: Some(now_micros()),
                    message: None,
                })
                .expect("child: step");
        }
        // Lines appended without a flush: the writer spills them on its own when its buffer
        // fills, so a kill may land between its data and index writes.
        for _ in 0..LINES_PER_ROUND {
            shared
                .append(now_micros(), line_text(next_line).as_bytes())
                .expect("child: append");
            next_line += 1;
        }
        shared.flush().expect("child: flush");
        println!("FLUSHED {}", next_line - 1);
        store
            .update_execution(&id, ExecutionStatus::Passed, None, Some(now_micros()), None)
            .expect("child: update");
        println!("COMMITTED {i}");
    }
    unreachable!("the loop only ends when the process is killed")
}

fn parent(round: u32) {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let mut reports = BufReader::new(stdout).lines();

    let mut committed: Option<u64> = None;
    let mut flushed = 0u64;
    let record = |line: &str, committed: &mut Option<u64>, flushed: &mut u64| {
        if let Some(n) = line.strip_prefix("COMMITTED ") {
            *committed = Some(n.parse().expect("committed count"));
        } else if let Some(n) = line.strip_prefix("FLUSHED ") {
            *flushed = n.parse().expect("flushed count");
        }
    };
    // Kill at a different amount of progress each round, while the child is busy.
    let kill_after = 3 + u64::from(round) * 4;
    let deadline = Instant::now() + Duration::from_secs(120);
    for line in reports.by_ref() {
        let line = line.expect("read child stdout");
        record(&line, &mut committed, &mut flushed);
        if committed.is_some_and(|c| c >= kill_after) {
            // Land the kill at a different point of the next iteration each round.
            std::thread::sleep(Duration::from_micros(u64::from(round) * 1700));
            break;
        }
        assert!(Instant::now() < deadline, "child made too little progress");
    }
    child.kill().expect("SIGKILL the child");
    // Reports printed before the kill still count.
    for line in reports {
        let line = line.expect("read child stdout");
        record(&line, &mut committed, &mut flushed);
    }
    let status = child.wait().expect("wait for child");
    assert!(!status.success(), "the child was killed");
    let committed = committed.expect("the child committed something");

    check_database(dir.path(), committed);
    check_log(dir.path(), flushed);
}

fn check_database(dir: &Path, committed: u64) {
    let db = dir.join("testloop.db");
    let conn = rusqlite::Connection::open(&db).expect("open raw");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
    drop(conn);

    let store = Store::open(&db).expect("reopen store");
    for i in 0..=committed {
        let e = store
            .get_execution(&execution_id(i))
            .expect("read execution")
            .unwrap_or_else(|| panic!("committed execution {i} lost"));
        assert_eq!(e.status, ExecutionStatus::Passed);
        assert_eq!(store.steps(&e.id).expect("steps").len(), 3);
    }
    // What was in flight is found and can be marked, as a restarted server does.
    for e in store.active_executions().expect("active") {
        assert!(store.mark_interrupted(&e.id, "killed").expect("mark"));
    }
    assert!(store.active_executions().expect("active").is_empty());
}

fn check_log(dir: &Path, flushed: u64) {
    let logs = LogStore::new(dir.join("logs"));
    let reader = logs.reader(LOG_EXECUTION, "1").expect("reader");
    let count = reader.line_count();
    assert!(count >= flushed, "{count} lines, {flushed} were flushed");
    let lines = reader.head(u64::MAX).expect("read log");
    for line in &lines {
        let expected = line_text(line.number);
        if line.number <= flushed {
            assert_eq!(line.text, expected, "flushed line {} intact", line.number);
        } else if line.number < count {
            assert_eq!(
                line.text, expected,
                "whole line {} after the last flush",
                line.number
            );
        } else {
            // The last line may have been cut by the kill.
            assert!(expected.starts_with(&line.text), "line {}", line.number);
        }
    }
    assert_eq!(
        reader.tail(1).expect("tail").first().map(|l| l.number),
        (count > 0).then_some(count)
    );

    // The reader's view is the data split at newlines.
    let (data_path, index_path) = logs.step_paths(LOG_EXECUTION, "1").expect("paths");
    let data = std::fs::read(&data_path).expect("read data");
    let mut pieces: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    if data.last() == Some(&b'\n') {
        pieces.pop();
    }
    assert_eq!(pieces.len() as u64, count);

    // A writer repairs the files on disk: one index entry per line start, nothing more.
    let mut writer = logs.writer(LOG_EXECUTION, "1").expect("writer reopens");
    writer
        .append(now_micros(), b"after the crash")
        .expect("append");
    writer.flush().expect("flush");
    drop(writer);
    let data = std::fs::read(&data_path).expect("read data");
    let mut starts = vec![0u64];
    starts.extend(
        data.iter()
            .enumerate()
            .filter(|&(i, b)| *b == b'\n' && i + 1 < data.len())
            .map(|(i, _)| i as u64 + 1),
    );
    let index: Vec<u64> = std::fs::read(&index_path)
        .expect("read index")
        .chunks_exact(16)
        .map(|c| u64::from_le_bytes(c[..8].try_into().expect("8 bytes")))
        .collect();
    assert_eq!(index, starts, "index agrees with data after repair");
    let reader = logs.reader(LOG_EXECUTION, "1").expect("reader");
    assert_eq!(reader.line_count(), count + 1);
    assert_eq!(reader.tail(1).expect("tail")[0].text, "after the crash");
}
