//! Crash recovery: logs whose data and index disagree, as a killed writer leaves them, are read
//! sanely and repaired by the next writer.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use testloop_orchestrator::logs::{LogStore, MAX_LINE_BYTES};

const EXEC: &str = "01JRECOVERY00000000000000";

struct Log {
    _dir: tempfile::TempDir,
    store: LogStore,
    data: PathBuf,
    index: PathBuf,
}

/// A log of `lines` written and flushed normally.
fn log_with(lines: &[&str]) -> Log {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LogStore::new(dir.path());
    let mut w = store.writer(EXEC, "1").unwrap();
    for (i, l) in lines.iter().enumerate() {
        w.append(100 + i as i64, l.as_bytes()).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let (data, index) = store.step_paths(EXEC, "1").unwrap();
    Log {
        _dir: dir,
        store,
        data,
        index,
    }
}

impl Log {
    fn read_all(&self) -> Vec<(u64, i64, String)> {
        let r = self.store.reader(EXEC, "1").unwrap();
        let lines = r.head(u64::MAX).unwrap();
        assert_eq!(lines.len() as u64, r.line_count());
        lines
            .into_iter()
            .map(|l| (l.number, l.timestamp, l.text))
            .collect()
    }

    fn texts(&self) -> Vec<String> {
        self.read_all().into_iter().map(|(_, _, t)| t).collect()
    }

    fn truncate_data(&self, len: u64) {
        OpenOptions::new()
            .write(true)
            .open(&self.data)
            .unwrap()
            .set_len(len)
            .unwrap();
    }

    fn truncate_index(&self, len: u64) {
        OpenOptions::new()
            .write(true)
            .open(&self.index)
            .unwrap()
            .set_len(len)
            .unwrap();
    }

    fn append_raw_data(&self, bytes: &[u8]) {
        OpenOptions::new()
            .append(true)
            .open(&self.data)
            .unwrap()
            .write_all(bytes)
            .unwrap();
    }

    fn index_offsets(&self) -> Vec<u64> {
        fs::read(&self.index)
            .unwrap()
            .chunks_exact(16)
            .map(|c| u64::from_le_bytes(c[..8].try_into().unwrap()))
            .collect()
    }

    /// Reopens a writer (which repairs), appends one line, and checks that the index on disk
    /// now has one entry per line of the data file, each at a line start.
    fn repair_and_append(&self, line: &str) {
        let mut w = self.store.writer(EXEC, "1").unwrap();
        w.append(999, line.as_bytes()).unwrap();
        w.flush().unwrap();
        drop(w);
        let data = fs::read(&self.data).unwrap();
        assert_eq!(data.last(), Some(&b'\n'));
        let mut starts = vec![0u64];
        for (i, b) in data.iter().enumerate() {
            if *b == b'\n' && i + 1 < data.len() {
                starts.push(i as u64 + 1);
            }
        }
        assert_eq!(self.index_offsets(), starts, "index agrees with data");
    }
}

#[test]
fn data_cut_mid_line_keeps_the_partial_line() {
    let log = log_with(&["first", "second", "third"]);
    // "first\nsecond\nthi"
    log.truncate_data(16);
    assert_eq!(log.texts(), ["first", "second", "thi"]);
    log.repair_and_append("fourth");
    assert_eq!(log.texts(), ["first", "second", "thi", "fourth"]);
}

#[test]
fn data_cut_right_after_a_newline_drops_the_lines_after() {
    let log = log_with(&["first", "second", "third"]);
    log.truncate_data(13);
    assert_eq!(log.texts(), ["first", "second"]);
    log.repair_and_append("next");
    assert_eq!(log.texts(), ["first", "second", "next"]);
}

#[test]
fn data_cut_to_nothing_leaves_an_empty_log() {
    let log = log_with(&["first", "second"]);
    log.truncate_data(0);
    assert!(log.texts().is_empty());
    log.repair_and_append("again");
    assert_eq!(log.texts(), ["again"]);
}

#[test]
fn data_cut_before_a_lines_first_byte_after_its_newline() {
    // The newline of "second" survives but nothing of "third": exactly two lines.
    let log = log_with(&["first", "second", "third"]);
    log.truncate_data(13);
    let lines = log.read_all();
    assert_eq!(lines.last().unwrap().2, "second");
}

#[test]
fn index_cut_mid_entry_is_completed_from_the_data() {
    let log = log_with(&["a", "bb", "ccc", "dddd"]);
    log.truncate_index(16 * 2 + 7);
    let lines = log.read_all();
    assert_eq!(
        lines.iter().map(|l| l.2.as_str()).collect::<Vec<_>>(),
        ["a", "bb", "ccc", "dddd"]
    );
    // Recovered lines take the last known timestamp.
    assert_eq!(
        lines.iter().map(|l| l.1).collect::<Vec<_>>(),
        [100, 101, 101, 101]
    );
    log.repair_and_append("e");
    assert_eq!(log.texts(), ["a", "bb", "ccc", "dddd", "e"]);
}

#[test]
fn missing_index_is_rebuilt_from_the_data() {
    let log = log_with(&["one", "two", "three"]);
    fs::remove_file(&log.index).unwrap();
    assert_eq!(log.texts(), ["one", "two", "three"]);
    log.repair_and_append("four");
    assert_eq!(log.texts(), ["one", "two", "three", "four"]);
}

#[test]
fn data_written_after_the_last_index_entry_is_indexed() {
    // A writer killed between writing data and writing index.
    let log = log_with(&["one", "two"]);
    log.append_raw_data(b"three\nfour\nfiv");
    assert_eq!(log.texts(), ["one", "two", "three", "four", "fiv"]);
    log.repair_and_append("six");
    assert_eq!(log.texts(), ["one", "two", "three", "four", "fiv", "six"]);
}

#[test]
fn index_entries_past_the_data_are_dropped() {
    let log = log_with(&["one", "two", "three"]);
    // Index says 3 lines; data keeps 1 complete line.
    log.truncate_data(4);
    assert_eq!(log.texts(), ["one"]);
    log.repair_and_append("again");
    assert_eq!(log.texts(), ["one", "again"]);
}

#[test]
fn an_index_entry_that_does_not_start_a_line_is_dropped() {
    let log = log_with(&["one", "two"]);
    // A bogus last entry pointing into the middle of "two".
    let mut f = OpenOptions::new().append(true).open(&log.index).unwrap();
    f.write_all(&5u64.to_le_bytes()).unwrap();
    f.write_all(&7i64.to_le_bytes()).unwrap();
    drop(f);
    assert_eq!(log.texts(), ["one", "two"]);
    log.repair_and_append("three");
    assert_eq!(log.texts(), ["one", "two", "three"]);
}

#[test]
fn recovery_of_long_lines_cut_at_every_awkward_place() {
    // Long lines so that cuts land inside a line, at a newline, and in the next line.
    let long_a = "a".repeat(MAX_LINE_BYTES);
    let long_b = "b".repeat(1000);
    let lines = [long_a.as_str(), "x", long_b.as_str(), "", "tail"];
    let full = log_with(&lines);
    let data_len = fs::metadata(&full.data).unwrap().len();
    let index_len = fs::metadata(&full.index).unwrap().len();
    let full_data = fs::read(&full.data).unwrap();
    for cut in [
        1,
        MAX_LINE_BYTES as u64 - 1,
        MAX_LINE_BYTES as u64,
        MAX_LINE_BYTES as u64 + 1,
        MAX_LINE_BYTES as u64 + 2,
        data_len - 6,
        data_len - 5,
        data_len - 1,
    ] {
        for index_cut in [0, 1, 16, 17, index_len - 1, index_len] {
            let log = log_with(&lines);
            log.truncate_data(cut);
            log.truncate_index(index_cut);
            // Expected: the data's bytes split at newlines, a last unterminated piece included.
            let kept = &full_data[..cut as usize];
            let mut expected: Vec<String> = kept
                .split(|b| *b == b'\n')
                .map(|s| String::from_utf8(s.to_vec()).unwrap())
                .collect();
            if kept.last() == Some(&b'\n') {
                expected.pop();
            }
            assert_eq!(log.texts(), expected, "cut data {cut}, index {index_cut}");
            log.repair_and_append("z");
            expected.push("z".into());
            assert_eq!(log.texts(), expected, "after repair: {cut}, {index_cut}");
        }
    }
}
