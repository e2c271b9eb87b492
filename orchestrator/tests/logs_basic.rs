//! Log store behaviour on healthy logs: appends, reads, limits, grep, listing.

use testloop_orchestrator::logs::{
    Error, GrepOptions, GrepResult, LogLine, LogStore, MAX_LINE_BYTES, decode_step_path,
    encode_step_path,
};

const EXEC: &str = "01JABCDEF0123456789ABCDEFG";

fn store() -> (tempfile::TempDir, LogStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LogStore::new(dir.path().join("logs"));
    (dir, store)
}

fn write_lines(store: &LogStore, step: &str, lines: impl IntoIterator<Item = String>) {
    let mut w = store.writer(EXEC, step).expect("writer");
    for (i, line) in lines.into_iter().enumerate() {
        w.append(1_000 + i as i64, line.as_bytes()).expect("append");
    }
    w.flush().expect("flush");
}

fn texts(lines: &[LogLine]) -> Vec<&str> {
    lines.iter().map(|l| l.text.as_str()).collect()
}

fn numbers(lines: &[LogLine]) -> Vec<u64> {
    lines.iter().map(|l| l.number).collect()
}

#[test]
fn data_file_is_the_plain_log_and_index_has_16_bytes_per_line() {
    let (_d, store) = store();
    write_lines(&store, "2/1", ["alpha".into(), "".into(), "gamma".into()]);
    let (data, index) = store.step_paths(EXEC, "2/1").unwrap();
    assert_eq!(std::fs::read(&data).unwrap(), b"alpha\n\ngamma\n");
    let idx = std::fs::read(&index).unwrap();
    assert_eq!(idx.len(), 3 * 16);
    let offset = |i: usize| u64::from_le_bytes(idx[i * 16..i * 16 + 8].try_into().unwrap());
    let ts = |i: usize| i64::from_le_bytes(idx[i * 16 + 8..i * 16 + 16].try_into().unwrap());
    assert_eq!([offset(0), offset(1), offset(2)], [0, 6, 7]);
    assert_eq!([ts(0), ts(1), ts(2)], [1000, 1001, 1002]);
}

#[test]
fn ranges_head_and_tail_are_one_based_and_clamped() {
    let (_d, store) = store();
    write_lines(&store, "1", (1..=10).map(|i| format!("line {i}")));
    let r = store.reader(EXEC, "1").unwrap();
    assert_eq!(r.line_count(), 10);
    assert_eq!(
        texts(&r.lines(3..6).unwrap()),
        ["line 3", "line 4", "line 5"]
    );
    assert_eq!(numbers(&r.lines(0..3).unwrap()), [1, 2]);
    assert_eq!(numbers(&r.lines(9..100).unwrap()), [9, 10]);
    assert!(r.lines(11..20).unwrap().is_empty());
    assert!(r.lines(5..5).unwrap().is_empty());
    assert_eq!(numbers(&r.head(3).unwrap()), [1, 2, 3]);
    assert_eq!(numbers(&r.tail(3).unwrap()), [8, 9, 10]);
    assert_eq!(r.tail(100).unwrap().len(), 10);
    assert_eq!(r.head(u64::MAX).unwrap().len(), 10);
    assert!(r.tail(0).unwrap().is_empty());
    assert_eq!(r.tail(1).unwrap()[0].timestamp, 1009);
}

#[test]
fn empty_log_reads_as_no_lines() {
    let (_d, store) = store();
    drop(store.writer(EXEC, "1").unwrap());
    let r = store.reader(EXEC, "1").unwrap();
    assert_eq!(r.line_count(), 0);
    assert!(r.tail(5).unwrap().is_empty());
    assert!(r.head(5).unwrap().is_empty());
    let g = r
        .grep(&regex::Regex::new("x").unwrap(), GrepOptions::default())
        .unwrap();
    assert_eq!(g, GrepResult::default());
}

#[test]
fn reopening_a_writer_appends() {
    let (_d, store) = store();
    write_lines(&store, "3", ["attempt 1".into()]);
    write_lines(&store, "3", ["attempt 2".into()]);
    let r = store.reader(EXEC, "3").unwrap();
    assert_eq!(texts(&r.head(10).unwrap()), ["attempt 1", "attempt 2"]);
}

#[test]
fn a_second_writer_on_the_same_log_is_refused() {
    let (_d, store) = store();
    let _w = store.writer(EXEC, "1").unwrap();
    assert!(matches!(store.writer(EXEC, "1"), Err(Error::Busy { .. })));
    // Other steps are independent.
    store.writer(EXEC, "2").unwrap();
}

#[test]
fn lines_at_the_limit_stay_whole_and_longer_ones_are_split() {
    let (_d, store) = store();
    let exact = vec![b'a'; MAX_LINE_BYTES];
    let over = vec![b'b'; MAX_LINE_BYTES + 1];
    let triple = vec![b'c'; MAX_LINE_BYTES * 3];
    let mut w = store.writer(EXEC, "1").unwrap();
    w.append(1, &exact).unwrap();
    w.append(2, &over).unwrap();
    w.append(3, &triple).unwrap();
    assert_eq!(w.line_count(), 1 + 2 + 3);
    w.flush().unwrap();
    let r = store.reader(EXEC, "1").unwrap();
    let lines = r.head(10).unwrap();
    let lens: Vec<usize> = lines.iter().map(|l| l.text.len()).collect();
    assert_eq!(
        lens,
        [
            MAX_LINE_BYTES,
            MAX_LINE_BYTES,
            1,
            MAX_LINE_BYTES,
            MAX_LINE_BYTES,
            MAX_LINE_BYTES
        ]
    );
    assert_eq!(
        lines[2].timestamp, 2,
        "split pieces keep the line's timestamp"
    );
}

#[test]
fn splitting_does_not_cut_a_utf8_character() {
    let (_d, store) = store();
    // 'é' is two bytes; an odd prefix makes a character straddle the limit.
    let mut line = vec![b'x'];
    while line.len() < MAX_LINE_BYTES + 10 {
        line.extend_from_slice("é".as_bytes());
    }
    let mut w = store.writer(EXEC, "1").unwrap();
    w.append(1, &line).unwrap();
    w.flush().unwrap();
    let r = store.reader(EXEC, "1").unwrap();
    let lines = r.head(10).unwrap();
    assert_eq!(lines.len(), 2);
    assert!(!lines.iter().any(|l| l.text.contains('\u{FFFD}')));
    assert_eq!(lines[0].text.len(), MAX_LINE_BYTES - 1);
    assert_eq!(
        format!("{}{}", lines[0].text, lines[1].text).as_bytes(),
        &line[..]
    );
}

#[test]
fn embedded_newlines_make_lines_and_a_trailing_one_is_the_terminator() {
    let (_d, store) = store();
    let mut w = store.writer(EXEC, "1").unwrap();
    w.append(1, b"one\ntwo\n").unwrap();
    w.append(2, b"\n").unwrap();
    w.append(3, b"three").unwrap();
    w.flush().unwrap();
    let r = store.reader(EXEC, "1").unwrap();
    assert_eq!(texts(&r.head(10).unwrap()), ["one", "two", "", "three"]);
}

#[test]
fn raw_bytes_are_kept_and_decoded_lossily() {
    let (_d, store) = store();
    let mut w = store.writer(EXEC, "1").unwrap();
    w.append(1, b"ok \xff\xfe end\r").unwrap();
    w.flush().unwrap();
    let (data, _) = store.step_paths(EXEC, "1").unwrap();
    assert_eq!(std::fs::read(data).unwrap(), b"ok \xff\xfe end\r\n");
    let r = store.reader(EXEC, "1").unwrap();
    assert_eq!(r.head(1).unwrap()[0].text, "ok \u{FFFD}\u{FFFD} end\r");
}

#[test]
fn reader_sees_flushed_lines_of_a_live_writer() {
    let (_d, store) = store();
    let mut w = store.writer(EXEC, "1").unwrap();
    w.append(1, b"first").unwrap();
    w.flush().unwrap();
    w.append(2, b"buffered").unwrap();
    let mut r = store.reader(EXEC, "1").unwrap();
    assert_eq!(r.line_count(), 1, "unflushed lines are not visible");
    w.flush().unwrap();
    assert_eq!(r.line_count(), 1, "a reader is a snapshot");
    assert_eq!(r.refresh().unwrap(), 2);
    assert_eq!(texts(&r.tail(1).unwrap()), ["buffered"]);
}

#[test]
fn writer_flushes_on_its_own_when_its_buffer_fills() {
    let (_d, store) = store();
    let mut w = store.writer(EXEC, "1").unwrap();
    let line = vec![b'z'; 1000];
    for i in 0..1000 {
        w.append(i, &line).unwrap();
    }
    let r = store.reader(EXEC, "1").unwrap();
    assert!(r.line_count() > 0, "a full buffer reaches the file");
    assert!(r.line_count() <= 1000);
    drop(w);
    assert_eq!(store.reader(EXEC, "1").unwrap().line_count(), 1000);
}

fn grep(store: &LogStore, pattern: &str, options: GrepOptions) -> GrepResult {
    store
        .reader(EXEC, "g")
        .unwrap()
        .grep(&regex::Regex::new(pattern).unwrap(), options)
        .unwrap()
}

fn blocks(result: &GrepResult) -> Vec<Vec<(u64, bool)>> {
    result
        .blocks
        .iter()
        .map(|b| b.lines.iter().map(|l| (l.number, l.is_match)).collect())
        .collect()
}

#[test]
fn grep_merges_overlapping_and_adjacent_context_into_blocks() {
    let (_d, store) = store();
    // Matches on lines 3, 5, 12 and 20.
    write_lines(
        &store,
        "g",
        (1..=20).map(|i| {
            if [3, 5, 12, 20].contains(&i) {
                format!("{i} ERROR")
            } else {
                format!("{i} ok")
            }
        }),
    );
    let r = grep(
        &store,
        "ERROR",
        GrepOptions {
            context: 2,
            max_matches: 10,
            invert: false,
        },
    );
    assert_eq!(
        blocks(&r),
        vec![
            vec![
                (1, false),
                (2, false),
                (3, true),
                (4, false),
                (5, true),
                (6, false),
                (7, false)
            ],
            vec![
                (10, false),
                (11, false),
                (12, true),
                (13, false),
                (14, false)
            ],
            vec![(18, false), (19, false), (20, true)],
        ]
    );
    assert_eq!(r.total_matches_seen, 4);
    assert_eq!(r.matches_returned, 4);
    assert!(!r.truncated);
    assert_eq!(r.blocks[1].lines[2].text, "12 ERROR");

    // Context 2 after line 5 ends at 7 and context before 10 starts at 10: blocks that would
    // touch (7 and 8) are merged, here with matches at 5 and 10 and context 2.
    let (_d2, store2) = self::store();
    write_lines(
        &store2,
        "g",
        (1..=12).map(|i| format!("{i} {}", if i == 5 || i == 10 { "hit" } else { "." })),
    );
    let r = grep(
        &store2,
        "hit",
        GrepOptions {
            context: 2,
            max_matches: 10,
            invert: false,
        },
    );
    assert_eq!(r.blocks.len(), 1);
    let nums: Vec<u64> = r.blocks[0].lines.iter().map(|l| l.number).collect();
    assert_eq!(nums, (3..=12).collect::<Vec<_>>());
}

#[test]
fn grep_counts_all_matches_but_returns_at_most_max() {
    let (_d, store) = store();
    write_lines(&store, "g", (1..=100).map(|i| format!("row {i}")));
    let r = grep(
        &store,
        r"row \d*7$",
        GrepOptions {
            context: 1,
            max_matches: 3,
            invert: false,
        },
    );
    assert_eq!(r.matches_returned, 3);
    assert_eq!(r.total_matches_seen, 10);
    assert!(r.truncated);
    assert_eq!(
        blocks(&r),
        vec![
            vec![(6, false), (7, true), (8, false)],
            vec![(16, false), (17, true), (18, false)],
            vec![(26, false), (27, true), (28, false)],
        ]
    );

    let exact = grep(
        &store,
        r"row \d*7$",
        GrepOptions {
            context: 0,
            max_matches: 10,
            invert: false,
        },
    );
    assert!(!exact.truncated, "exactly max matches is not truncated");
    assert_eq!(exact.matches_returned, 10);

    let none = grep(
        &store,
        "row",
        GrepOptions {
            context: 0,
            max_matches: 0,
            invert: false,
        },
    );
    assert!(none.blocks.is_empty());
    assert_eq!(none.total_matches_seen, 100);
    assert!(none.truncated);
}

#[test]
fn grep_invert_selects_non_matching_lines() {
    let (_d, store) = store();
    write_lines(
        &store,
        "g",
        ["a".into(), "b".into(), "a".into(), "c".into()],
    );
    let r = grep(
        &store,
        "a",
        GrepOptions {
            context: 0,
            max_matches: 10,
            invert: true,
        },
    );
    assert_eq!(blocks(&r), vec![vec![(2, true)], vec![(4, true)]]);
}

#[test]
fn grep_sees_split_lines_as_separate_lines() {
    let (_d, store) = store();
    let mut long = vec![b'x'; MAX_LINE_BYTES];
    long.extend_from_slice(b"NEEDLE");
    let mut w = store.writer(EXEC, "g").unwrap();
    w.append(1, b"before").unwrap();
    w.append(2, &long).unwrap();
    w.append(3, b"after").unwrap();
    w.flush().unwrap();
    drop(w);
    let r = grep(&store, "NEEDLE", GrepOptions::default());
    assert_eq!(blocks(&r), vec![vec![(3, true)]]);
    assert_eq!(r.blocks[0].lines[0].text, "NEEDLE");
}

#[test]
fn steps_are_listed_in_tree_order_and_paths_round_trip() {
    let (_d, store) = store();
    for step in [
        "10",
        "2/1",
        "1",
        "2",
        "2/shard-10",
        "2/shard-2",
        "odd name~%/x",
    ] {
        write_lines(&store, step, [step.to_string()]);
    }
    assert_eq!(
        store.steps(EXEC).unwrap(),
        [
            "1",
            "2",
            "2/1",
            "2/shard-2",
            "2/shard-10",
            "10",
            "odd name~%/x"
        ]
    );
    for step in ["a/b", "~", "%41", ".", "..", "é/ü", " "] {
        let encoded = encode_step_path(step);
        assert!(
            !encoded.contains('/') && !encoded.starts_with('.'),
            "{encoded}"
        );
        assert_eq!(decode_step_path(&encoded).as_deref(), Some(step));
    }
    assert!(store.steps("01UNKNOWN").unwrap().is_empty());
}

#[test]
fn remove_execution_deletes_its_logs() {
    let (_d, store) = store();
    write_lines(&store, "1", ["x".into()]);
    assert!(store.remove_execution(EXEC).unwrap());
    assert!(!store.remove_execution(EXEC).unwrap());
    assert!(matches!(
        store.reader(EXEC, "1"),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn unsafe_names_are_refused() {
    let (_d, store) = store();
    for bad in ["", ".", "..", "a/b", "../x"] {
        assert!(
            matches!(store.writer(bad, "1"), Err(Error::InvalidExecution(_))),
            "{bad:?}"
        );
    }
    assert!(matches!(store.writer(EXEC, ""), Err(Error::InvalidStep(_))));
    assert!(matches!(
        store.reader(EXEC, "nope"),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn one_reader_serves_concurrent_searches_and_reads() {
    let (_d, store) = store();
    write_lines(&store, "g", (1..=5000).map(|i| format!("row {i}")));
    let reader = std::sync::Arc::new(store.reader(EXEC, "g").unwrap());
    let handles: Vec<_> =
        (0..4)
            .map(|t| {
                let reader = std::sync::Arc::clone(&reader);
                std::thread::spawn(move || {
                    let re = regex::Regex::new(&format!(r"^row \d*{t}$")).unwrap();
                    for _ in 0..5 {
                        let r = reader
                            .grep(
                                &re,
                                GrepOptions {
                                    context: 0,
                                    max_matches: 10_000,
                                    invert: false,
                                },
                            )
                            .unwrap();
                        assert_eq!(r.total_matches_seen, 500);
                        assert!(r.blocks.iter().flat_map(|b| &b.lines).all(|l| {
                            l.text == format!("row {}", l.number) && l.number % 10 == t
                        }));
                        assert_eq!(reader.tail(1).unwrap()[0].text, "row 5000");
                    }
                })
            })
            .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn streamed_output_is_cut_into_lines_across_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::new(dir.path());
    let mut writer = store.writer("01STREAM", "1").unwrap();
    writer.write_output(1, b"one\ntw").unwrap();
    writer.write_output(2, b"o\r\nthr").unwrap();
    writer.write_output(3, b"ee\n\nlast").unwrap();
    assert_eq!(writer.line_count(), 4, "the unfinished line waits");
    writer.finish_output(4).unwrap();
    let reader = store.reader("01STREAM", "1").unwrap();
    let lines = reader.lines(1..10).unwrap();
    let texts: Vec<&str> = lines.iter().map(|line| line.text.as_str()).collect();
    assert_eq!(texts, vec!["one", "two", "three", "", "last"]);
    let stamps: Vec<i64> = lines.iter().map(|line| line.timestamp).collect();
    assert_eq!(stamps, vec![1, 2, 3, 3, 4]);
}

#[test]
fn a_streamed_line_that_never_ends_is_stored_in_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::new(dir.path());
    let mut writer = store.writer("01STREAM", "1").unwrap();
    let chunk = vec![b'x'; 1000];
    for _ in 0..(2 * MAX_LINE_BYTES / 1000 + 1) {
        writer.write_output(1, &chunk).unwrap();
    }
    assert_eq!(
        writer.line_count(),
        2,
        "two full pieces stored while streaming"
    );
    writer.finish_output(2).unwrap();
    let reader = store.reader("01STREAM", "1").unwrap();
    let lines = reader.lines(1..10).unwrap();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[..2]
            .iter()
            .all(|line| line.text.len() == MAX_LINE_BYTES)
    );
    assert_eq!(
        lines.iter().map(|line| line.text.len()).sum::<usize>(),
        (2 * MAX_LINE_BYTES / 1000 + 1) * 1000
    );
}
