//! The normalised log diff: what counts as a change, how hunks are formed, how the output is
//! capped, and the step-log convenience.

use std::time::{Duration, Instant};

use testloop_orchestrator::diff::logdiff::{
    DEFAULT_CONTEXT, DEFAULT_DEADLINE, DEFAULT_MAX_BYTES, DEFAULT_MAX_HUNKS,
    DEFAULT_MAX_LINE_BYTES, MAX_LOG_DIFF_LINES, PARALLEL_MIN_LINES,
};
use testloop_orchestrator::diff::{DiffOptions, LogDiff, Tag, diff_lines, diff_step_logs};
use testloop_orchestrator::logs::LogStore;

/// Options that show everything.
fn all() -> DiffOptions {
    DiffOptions {
        max_hunks: usize::MAX,
        max_bytes: usize::MAX,
        ..DiffOptions::default()
    }
}

/// `n` lines of a run: a timestamp, a test name and a duration, all but the name differing with
/// `run`.
fn run_log(n: usize, run: u32) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "2026-11-2{run}T10:{:02}:{:02}.{:03}Z test case_{i} ... ok ({}.{:02}s) pid={}",
                i / 60 % 60,
                i % 60,
                (i * 7 + run as usize) % 1000,
                run,
                i % 100,
                4000 + run
            )
        })
        .collect()
}

/// Lines `a1`..`an`, unaffected by normalisation.
fn plain(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("line {i}")).collect()
}

/// Lines removed and added must account for the length difference, whatever was shown.
fn assert_consistent(diff: &LogDiff, old_len: usize, new_len: usize) {
    assert_eq!(old_len - diff.removed + diff.added, new_len, "{diff:?}");
}

#[test]
fn defaults_are_the_documented_constants() {
    let options = DiffOptions::default();
    assert_eq!(options.context, DEFAULT_CONTEXT);
    assert_eq!(options.max_hunks, DEFAULT_MAX_HUNKS);
    assert_eq!(options.max_bytes, DEFAULT_MAX_BYTES);
    assert_eq!(options.max_line_bytes, DEFAULT_MAX_LINE_BYTES);
    assert_eq!(options.deadline, DEFAULT_DEADLINE);
}

#[test]
fn runs_that_differ_only_in_run_specific_values_are_equal() {
    let old = run_log(2000, 1);
    let new = run_log(2000, 2);
    assert_ne!(old, new);
    let diff = diff_lines(&old, &new, &DiffOptions::default());
    assert!(diff.is_empty(), "{}", diff.to_unified());
    assert!(diff.hunks.is_empty());
    assert_eq!(diff.to_unified(), "");
    assert_eq!(diff.truncated, None);
    assert!(!diff.timed_out);
}

#[test]
fn empty_logs() {
    let none: [&str; 0] = [];
    assert!(diff_lines(&none, &none, &all()).is_empty());
    let diff = diff_lines(&none, &["a", "b"], &all());
    assert_eq!(diff.to_unified(), "@@ -0,0 +1,2 @@\n+a\n+b\n");
    let diff = diff_lines(&["a"], &none, &all());
    assert_eq!(diff.to_unified(), "@@ -1 +0,0 @@\n-a\n");
}

#[test]
fn one_changed_line_in_ten_thousand() {
    let old = run_log(10_000, 1);
    let mut new = run_log(10_000, 2);
    new[5000] = new[5000].replace("... ok", "... FAILED");
    let diff = diff_lines(&old, &new, &DiffOptions::default());
    assert_eq!((diff.removed, diff.added), (1, 1));
    assert_eq!(diff.hunks.len(), 1);
    let hunk = &diff.hunks[0];
    // Line 5001 with three lines of context on each side.
    assert_eq!(
        (hunk.old_start, hunk.old_len, hunk.new_start, hunk.new_len),
        (4998, 7, 4998, 7)
    );
    let tags: Vec<Tag> = hunk.lines.iter().map(|l| l.tag).collect();
    use Tag::{Delete, Equal, Insert};
    assert_eq!(
        tags,
        [Equal, Equal, Equal, Delete, Insert, Equal, Equal, Equal]
    );
    // Original text: the old side for the deleted line, the new side for the rest.
    assert_eq!(hunk.lines[3].text, old[5000]);
    assert_eq!(hunk.lines[4].text, new[5000]);
    assert_eq!(hunk.lines[0].text, new[4997]);
    assert!(diff.to_unified().starts_with("@@ -4998,7 +4998,7 @@\n "));
    assert_eq!(diff.truncated, None);
}

#[test]
fn inserted_and_deleted_blocks() {
    let old = plain(40);
    let mut new = old.clone();
    // Lines 6..=8 deleted, three lines inserted after line 29.
    new.splice(29..29, ["new A".into(), "new B".into(), "new C".into()]);
    new.drain(5..8);
    let diff = diff_lines(&old, &new, &all());
    assert_consistent(&diff, old.len(), new.len());
    assert_eq!((diff.removed, diff.added), (3, 3));
    assert_eq!(
        diff.to_unified(),
        "@@ -3,9 +3,6 @@\n line 3\n line 4\n line 5\n-line 6\n-line 7\n-line 8\n line 9\n \
         line 10\n line 11\n@@ -27,6 +24,9 @@\n line 27\n line 28\n line 29\n+new A\n+new B\n\
         +new C\n line 30\n line 31\n line 32\n"
    );
}

#[test]
fn changes_at_the_edges() {
    let old = plain(10);
    let mut new = old.clone();
    new.insert(0, "first".into());
    new.push("last".into());
    let diff = diff_lines(&old, &new, &all());
    assert_eq!(
        diff.to_unified(),
        "@@ -1,3 +1,4 @@\n+first\n line 1\n line 2\n line 3\n\
         @@ -8,3 +9,4 @@\n line 8\n line 9\n line 10\n+last\n"
    );
}

#[test]
fn hunks_merge_when_their_contexts_touch() {
    let context = 3;
    for gap in [2 * context - 1, 2 * context, 2 * context + 1] {
        let old = plain(40);
        let mut new = old.clone();
        new[10] = "changed".into();
        new[10 + gap + 1] = "changed too".into();
        let diff = diff_lines(&old, &new, &DiffOptions { context, ..all() });
        let expected = if gap <= 2 * context { 1 } else { 2 };
        assert_eq!(diff.hunks.len(), expected, "gap of {gap} equal lines");
        let equal_in_hunks = diff
            .hunks
            .iter()
            .flat_map(|h| &h.lines)
            .filter(|l| l.tag == Tag::Equal)
            .count();
        // Each side of each hunk has `context` lines, plus the gap when merged.
        let expected_equal = if expected == 1 {
            2 * context + gap
        } else {
            4 * context
        };
        assert_eq!(equal_in_hunks, expected_equal, "gap of {gap}");
    }
}

#[test]
fn context_at_its_edge() {
    let old = plain(20);
    let mut new = old.clone();
    new[10] = "changed".into();
    for context in [0, 1, 3, 10, 11, usize::MAX] {
        let diff = diff_lines(&old, &new, &DiffOptions { context, ..all() });
        let hunk = &diff.hunks[0];
        let before = hunk
            .lines
            .iter()
            .take_while(|l| l.tag == Tag::Equal)
            .count();
        let after = hunk
            .lines
            .iter()
            .rev()
            .take_while(|l| l.tag == Tag::Equal)
            .count();
        // Ten lines exist before the change and nine after it.
        assert_eq!(
            (before, after),
            (context.min(10), context.min(9)),
            "{context}"
        );
    }
}

/// Ten changes far apart: ten hunks.
fn ten_hunks() -> (Vec<String>, Vec<String>) {
    let old = plain(200);
    let mut new = old.clone();
    for k in 0..10 {
        new[k * 20 + 10] = format!("changed {k}");
    }
    (old, new)
}

#[test]
fn max_hunks_at_its_edge() {
    let (old, new) = ten_hunks();
    let full = diff_lines(&old, &new, &all());
    assert_eq!(full.hunks.len(), 10);

    let at = diff_lines(
        &old,
        &new,
        &DiffOptions {
            max_hunks: 10,
            ..all()
        },
    );
    assert_eq!(at, full);
    assert_eq!(at.truncated, None);

    let below = diff_lines(
        &old,
        &new,
        &DiffOptions {
            max_hunks: 9,
            ..all()
        },
    );
    assert_eq!(below.hunks, full.hunks[..9]);
    assert_eq!((below.removed, below.added), (10, 10));
    let why = below.truncated.expect("truncated");
    assert!(why.contains("9 of 10 hunks"), "{why}");
    assert!(why.contains("max_hunks 9"), "{why}");
    assert!(why.contains("1 added and 1 removed"), "{why}");
}

#[test]
fn max_bytes_at_its_edge() {
    let (old, new) = ten_hunks();
    let full = diff_lines(&old, &new, &all());
    let len = full.to_unified().len();

    let at = diff_lines(
        &old,
        &new,
        &DiffOptions {
            max_bytes: len,
            ..all()
        },
    );
    assert_eq!(at, full);

    let below = diff_lines(
        &old,
        &new,
        &DiffOptions {
            max_bytes: len - 1,
            ..all()
        },
    );
    assert!(below.to_unified().len() < len);
    assert_eq!(below.hunks.len(), 10);
    assert_eq!(below.hunks[..9], full.hunks[..9]);
    assert_eq!((below.removed, below.added), (10, 10));
    // The last hunk loses its trailing context, so it is shown cut short.
    let why = below.truncated.expect("truncated");
    assert!(why.contains("max_bytes"), "{why}");
    assert!(why.contains("cut short"), "{why}");
    assert!(why.contains("0 added and 0 removed"), "{why}");
    let last = below.hunks.last().expect("hunks");
    assert_eq!(
        last.old_len,
        last.lines.iter().filter(|l| l.tag != Tag::Insert).count()
    );
    assert_eq!(
        last.new_len,
        last.lines.iter().filter(|l| l.tag != Tag::Delete).count()
    );
}

#[test]
fn a_small_max_bytes_still_shows_the_first_change_and_all_totals() {
    let old = plain(1000);
    let new: Vec<String> = (1..=1000).map(|i| format!("other {i}")).collect();
    for max_bytes in [0, 10, 40, 100, 4096] {
        let diff = diff_lines(&old, &new, &DiffOptions { max_bytes, ..all() });
        assert!(diff.to_unified().len() <= max_bytes, "{max_bytes}");
        assert_eq!((diff.removed, diff.added), (1000, 1000));
        assert!(diff.truncated.is_some());
        for hunk in &diff.hunks {
            assert!(hunk.lines.iter().any(|l| l.tag != Tag::Equal));
        }
    }
}

#[test]
fn max_line_bytes_at_its_edge() {
    let max = 20;
    let exact = "x".repeat(max);
    let over = "y".repeat(max + 1);
    let diff = diff_lines(
        &["a"],
        &[exact.as_str(), over.as_str()],
        &DiffOptions {
            max_line_bytes: max,
            ..all()
        },
    );
    let texts: Vec<&str> = diff.hunks[0]
        .lines
        .iter()
        .filter(|l| l.tag == Tag::Insert)
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(texts[0], exact);
    assert!(
        texts[1].len() <= max && texts[1].ends_with('…'),
        "{}",
        texts[1]
    );
}

#[test]
fn lines_are_compared_whole_even_when_shown_cut() {
    let old = format!("{}a", "x".repeat(1000));
    let new = format!("{}b", "x".repeat(1000));
    let diff = diff_lines(&[old], &[new], &DiffOptions::default());
    assert_eq!((diff.removed, diff.added), (1, 1));
}

#[test]
fn shown_text_has_no_ansi_escapes() {
    let diff = diff_lines(
        &["\u{1b}[32mok\u{1b}[0m"],
        &["\u{1b}[31mFAILED\u{1b}[0m"],
        &all(),
    );
    assert_eq!(diff.to_unified(), "@@ -1 +1 @@\n-ok\n+FAILED\n");
}

#[test]
fn same_result_on_either_side_of_the_parallel_threshold() {
    for total in [PARALLEL_MIN_LINES - 1, PARALLEL_MIN_LINES] {
        let old = run_log(total / 2, 1);
        let mut new = run_log(total - total / 2, 2);
        new[100] = "replaced".into();
        let diff = diff_lines(&old, &new, &all());
        assert_consistent(&diff, old.len(), new.len());
        assert!(diff.added >= 1, "{total}");
        assert_eq!(diff.hunks[0].new_start, 98, "{total}");
    }
}

/// Long runs of a few repeated lines, shuffled: the worst case for aligning lines. The deadline
/// must bound it, and whatever comes out must still account for every line.
#[test]
fn pathological_input_finishes_thanks_to_the_deadline() {
    let n = 50_000;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let words = ["ok", "ok", "ok", ".", "..", "retry", "", "---"];
    let old: Vec<&str> = (0..n).map(|_| words[(next() % 8) as usize]).collect();
    let mut new = old.clone();
    for _ in 0..n / 10 {
        let (a, b) = ((next() % n as u64) as usize, (next() % n as u64) as usize);
        new.swap(a, b);
    }
    for deadline in [Duration::ZERO, Duration::from_millis(200)] {
        let start = Instant::now();
        let diff = diff_lines(
            &old,
            &new,
            &DiffOptions {
                deadline,
                ..DiffOptions::default()
            },
        );
        let elapsed = start.elapsed();
        assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
        assert_consistent(&diff, old.len(), new.len());
        assert!(diff.added > 0 && diff.to_unified().len() <= DEFAULT_MAX_BYTES);
        if deadline.is_zero() {
            assert!(diff.timed_out);
        }
    }
}

/// Same hunks as `diff -u` on a small case with unique lines, when `diff` is installed.
#[test]
fn hunks_match_diff_u() {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let old = plain(300);
    let mut new = old.clone();
    new[5] = "changed 6".into();
    new.drain(40..45);
    new.splice(100..100, ["ins 1".to_string(), "ins 2".to_string()]);
    new[150] = "changed".into();
    new[154] = "changed again".into();
    new.truncate(290);
    let old_path = dir.path().join("old");
    let new_path = dir.path().join("new");
    std::fs::write(&old_path, old.join("\n") + "\n").expect("write");
    std::fs::write(&new_path, new.join("\n") + "\n").expect("write");
    let Ok(output) = std::process::Command::new("diff")
        .arg("-u")
        .arg(&old_path)
        .arg(&new_path)
        .output()
    else {
        return;
    };
    let expected: String = String::from_utf8_lossy(&output.stdout)
        .lines()
        .skip(2)
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(diff_lines(&old, &new, &all()).to_unified(), expected);
}

fn write_log(store: &LogStore, execution: &str, lines: impl IntoIterator<Item = String>) {
    let mut writer = store.writer(execution, "1").expect("writer");
    for (i, line) in lines.into_iter().enumerate() {
        writer.append(i as i64, line.as_bytes()).expect("append");
    }
    writer.flush().expect("flush");
}

#[test]
fn step_logs_are_diffed_with_log_line_numbers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LogStore::new(dir.path());
    let old = run_log(500, 1);
    let mut new = run_log(500, 2);
    new[250] = "thread 'main' panicked at src/lib.rs:10:5".into();
    write_log(&store, "OLD", old);
    write_log(&store, "NEW", new);
    let old_reader = store.reader("OLD", "1").expect("reader");
    let new_reader = store.reader("NEW", "1").expect("reader");
    let result = diff_step_logs(&old_reader, &new_reader, &DiffOptions::default()).expect("diff");
    assert_eq!((result.old.lines, result.old.skipped), (500, 0));
    assert_eq!((result.new.lines, result.new.skipped), (500, 0));
    assert_eq!((result.diff.removed, result.diff.added), (1, 1));
    let hunk = &result.diff.hunks[0];
    assert_eq!((hunk.old_start, hunk.new_start), (248, 248));
    assert!(
        result
            .diff
            .to_unified()
            .contains("+thread 'main' panicked at src/lib.rs:10:5\n")
    );
}

#[test]
fn empty_step_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LogStore::new(dir.path());
    // A writer that wrote nothing leaves empty files.
    write_log(&store, "A", []);
    write_log(&store, "B", ["only".to_string()]);
    let a = store.reader("A", "1").expect("reader");
    let b = store.reader("B", "1").expect("reader");
    let result = diff_step_logs(&a, &b, &DiffOptions::default()).expect("diff");
    assert_eq!(result.diff.to_unified(), "@@ -0,0 +1 @@\n+only\n");
}

/// At most `MAX_LOG_DIFF_LINES` lines of each log are compared: the last ones, numbered as in
/// the log.
#[test]
fn max_log_diff_lines_at_its_edge() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LogStore::new(dir.path());
    let xs = |n: usize| std::iter::repeat_n("x".to_string(), n);
    write_log(&store, "AT", xs(MAX_LOG_DIFF_LINES));
    // One line more than the limit: its first line is not compared (it would read as added).
    write_log(
        &store,
        "OVER",
        std::iter::once("first".to_string())
            .chain(xs(MAX_LOG_DIFF_LINES - 1))
            .chain(["last".to_string()]),
    );
    let at = store.reader("AT", "1").expect("reader");
    let over = store.reader("OVER", "1").expect("reader");

    let result = diff_step_logs(&at, &at, &DiffOptions::default()).expect("diff");
    assert_eq!(
        (result.old.lines, result.old.skipped),
        (MAX_LOG_DIFF_LINES as u64, 0)
    );
    assert!(result.diff.is_empty());

    let result = diff_step_logs(&at, &over, &DiffOptions::default()).expect("diff");
    assert_eq!(result.old.skipped, 0);
    assert_eq!(
        (result.new.lines, result.new.skipped),
        (MAX_LOG_DIFF_LINES as u64 + 1, 1)
    );
    assert_eq!((result.diff.removed, result.diff.added), (1, 1));
    let hunk = &result.diff.hunks[0];
    // The last three lines as context, then the change; new lines numbered as in the log.
    assert_eq!(
        (hunk.old_start, hunk.old_len, hunk.new_start, hunk.new_len),
        (MAX_LOG_DIFF_LINES - 3, 4, MAX_LOG_DIFF_LINES - 2, 4)
    );
    assert_eq!(hunk.lines.last().map(|l| l.text.as_str()), Some("last"));
}
