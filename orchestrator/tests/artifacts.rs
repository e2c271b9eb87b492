//! The artifact store: confinement of requested paths, listings, text and binary reads.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use testloop_orchestrator::artifacts::{
    self, Error, Kind, MAX_LINE_BYTES, MAX_LIST_ENTRIES, MAX_PATH_BYTES, MAX_SCAN_BYTES,
    PREVIEW_BYTES, SNIFF_BYTES,
};
use testloop_orchestrator::logs::GrepOptions;

/// A store at `<tmp>/store` beside a secret at `<tmp>/outside/secret.txt`.
struct Fixture {
    dir: tempfile::TempDir,
    root: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("store");
        fs::create_dir_all(&root).expect("store");
        let outside = dir.path().join("outside");
        fs::create_dir_all(&outside).expect("outside");
        fs::write(outside.join("secret.txt"), "secret\n").expect("secret");
        Self { dir, root }
    }

    fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    fn write(&self, path: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.root.join(path);
        fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
        fs::write(&path, bytes).expect("write");
        path
    }

    fn resolve(&self, requested: &str) -> Result<PathBuf, Error> {
        artifacts::resolve(&self.root, requested)
    }
}

fn paths(listing: &artifacts::Listing) -> Vec<&str> {
    listing.entries.iter().map(|e| e.path.as_str()).collect()
}

#[test]
fn paths_that_climb_out_or_are_absolute_are_refused_with_the_rule_they_break() {
    let f = Fixture::new();
    f.write("data/artifacts/report.xml", "<xml/>");
    for requested in [
        "../x",
        "a/../../x",
        "data/../..",
        "data/..",
        "../store/data",
    ] {
        let error = f.resolve(requested).unwrap_err();
        assert!(
            matches!(error, Error::ParentComponent(_)),
            "{requested}: {error:?}"
        );
        let message = error.to_string();
        assert!(message.contains("`..`"), "{message}");
        assert!(message.contains("data/artifacts/report.xml"), "{message}");
    }
    let error = f.resolve("/etc/passwd").unwrap_err();
    assert!(matches!(error, Error::AbsolutePath(_)), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("relative to the execution's artifact store, like data/artifacts/report.xml"),
        "{error}"
    );
    assert!(matches!(f.resolve("").unwrap_err(), Error::EmptyPath));
    assert!(matches!(
        f.resolve("data/a\0rtifacts").unwrap_err(),
        Error::NulByte
    ));
    // The same rules hold for an execution that saved nothing.
    let none = f.dir.path().join("no-store");
    assert!(matches!(
        artifacts::resolve(&none, "/etc/passwd").unwrap_err(),
        Error::AbsolutePath(_)
    ));
    assert!(matches!(
        artifacts::resolve(&none, "data/x").unwrap_err(),
        Error::NotFound(_)
    ));
}

#[test]
fn symbolic_links_may_not_lead_outside_the_store() {
    let f = Fixture::new();
    f.write("data/artifacts/report.xml", "<xml/>");
    symlink(
        f.outside().join("secret.txt"),
        f.root.join("data/secret.txt"),
    )
    .expect("link");
    symlink(f.outside(), f.root.join("data/linked")).expect("link");
    symlink("/", f.root.join("slash")).expect("link");
    for requested in [
        "data/secret.txt",
        "data/linked/secret.txt",
        "data/linked",
        "slash/etc/passwd",
    ] {
        let error = f.resolve(requested).unwrap_err();
        assert!(
            matches!(error, Error::OutsideStore(_)),
            "{requested}: {error:?}"
        );
        assert!(error.to_string().contains("outside"), "{error}");
    }
    assert!(matches!(
        artifacts::open(&f.root, "data/linked/secret.txt").unwrap_err(),
        Error::OutsideStore(_)
    ));
    assert!(matches!(
        artifacts::list(&f.root, Some("data/linked")).unwrap_err(),
        Error::OutsideStore(_)
    ));
    // A link that stays inside is followed.
    symlink("artifacts", f.root.join("data/alias")).expect("link");
    let resolved = f.resolve("data/alias/report.xml").expect("inside");
    assert!(
        resolved.ends_with("data/artifacts/report.xml"),
        "{resolved:?}"
    );
    // A store that is itself reached through a link still confines.
    let linked_root = f.dir.path().join("root-link");
    symlink(&f.root, &linked_root).expect("link");
    assert!(artifacts::resolve(&linked_root, "data/artifacts/report.xml").is_ok());
    assert!(matches!(
        artifacts::resolve(&linked_root, "data/linked/secret.txt").unwrap_err(),
        Error::OutsideStore(_)
    ));
}

#[test]
fn the_path_length_limit_is_checked_at_its_edge() {
    let f = Fixture::new();
    let at_limit = "a/".repeat(MAX_PATH_BYTES / 2);
    assert_eq!(at_limit.len(), MAX_PATH_BYTES);
    assert!(matches!(
        f.resolve(&at_limit).unwrap_err(),
        Error::NotFound(_)
    ));
    let over = format!("{at_limit}b");
    assert!(matches!(
        f.resolve(&over).unwrap_err(),
        Error::PathTooLong { len } if len == MAX_PATH_BYTES + 1
    ));
}

#[test]
fn missing_files_directories_and_special_files_are_told_apart() {
    let f = Fixture::new();
    f.write("data/artifacts/report.xml", "<xml/>");
    assert!(matches!(
        artifacts::open(&f.root, "data/artifacts/nope.xml").unwrap_err(),
        Error::NotFound(_)
    ));
    // A file used as a directory names nothing.
    assert!(matches!(
        artifacts::open(&f.root, "data/artifacts/report.xml/x").unwrap_err(),
        Error::NotFound(_)
    ));
    assert!(matches!(
        artifacts::open(&f.root, "data/artifacts").unwrap_err(),
        Error::IsDirectory(_)
    ));
    // A pipe is refused without blocking on it.
    let status = std::process::Command::new("mkfifo")
        .arg(f.root.join("data/pipe"))
        .status()
        .expect("mkfifo");
    assert!(status.success());
    assert!(matches!(
        artifacts::open(&f.root, "data/pipe").unwrap_err(),
        Error::NotAFile(_)
    ));
}

#[test]
fn a_listing_is_sorted_typed_and_skips_links() {
    let f = Fixture::new();
    f.write("data/artifacts/report.xml", "<testsuite/>\n");
    f.write("data/artifacts/nested/deep/notes.txt", "hello\n");
    f.write("data/artifacts/shot.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    f.write("data/artifacts/blob", b"\xff\xfe\x00\x01");
    f.write("data/artifacts/results.JSON", "{}");
    symlink(f.outside(), f.root.join("data/artifacts/outside")).expect("link");
    symlink(
        f.outside().join("secret.txt"),
        f.root.join("data/secret.txt"),
    )
    .expect("link");

    let listing = artifacts::list(&f.root, None).expect("list");
    assert_eq!(
        paths(&listing),
        [
            "data/artifacts/blob",
            "data/artifacts/nested/deep/notes.txt",
            "data/artifacts/report.xml",
            "data/artifacts/results.JSON",
            "data/artifacts/shot.png",
        ]
    );
    assert_eq!(listing.total_files, 5);
    assert_eq!(listing.skipped, 2);
    assert!(!listing.truncated);
    let entry = |path: &str| {
        listing
            .entries
            .iter()
            .find(|e| e.path == path)
            .expect("listed")
    };
    let report = entry("data/artifacts/report.xml");
    assert_eq!(
        (report.size, report.kind, report.media_type),
        (13, Kind::Text, "application/xml")
    );
    let png = entry("data/artifacts/shot.png");
    assert_eq!((png.kind, png.media_type), (Kind::Binary, "image/png"));
    let blob = entry("data/artifacts/blob");
    assert_eq!(
        (blob.kind, blob.media_type),
        (Kind::Binary, "application/octet-stream")
    );
    assert_eq!(
        entry("data/artifacts/results.JSON").media_type,
        "application/json"
    );
    assert_eq!(
        entry("data/artifacts/nested/deep/notes.txt").media_type,
        "text/plain"
    );
    assert_eq!(
        listing.total_bytes,
        listing.entries.iter().map(|e| e.size).sum::<u64>()
    );

    let nested = artifacts::list(&f.root, Some("data/artifacts/nested")).expect("list");
    assert_eq!(paths(&nested), ["data/artifacts/nested/deep/notes.txt"]);
    let one = artifacts::list(&f.root, Some("data/artifacts/report.xml")).expect("list");
    assert_eq!(paths(&one), ["data/artifacts/report.xml"]);
    assert!(matches!(
        artifacts::list(&f.root, Some("data/nothing")).unwrap_err(),
        Error::NotFound(_)
    ));
    assert!(matches!(
        artifacts::list(&f.root, Some("../outside")).unwrap_err(),
        Error::ParentComponent(_)
    ));
}

#[test]
fn an_execution_without_a_store_lists_nothing() {
    let f = Fixture::new();
    let none = f.dir.path().join("no-store");
    assert_eq!(
        artifacts::list(&none, None).expect("list"),
        artifacts::Listing::default()
    );
    assert!(matches!(
        artifacts::list(&none, Some("data")).unwrap_err(),
        Error::NotFound(_)
    ));
}

#[test]
fn listings_stop_at_the_entry_limit_and_still_count_everything() {
    let f = Fixture::new();
    for n in 0..MAX_LIST_ENTRIES {
        f.write(&format!("files/f{n:04}.txt"), "x");
    }
    let full = artifacts::list(&f.root, None).expect("list");
    assert_eq!(full.entries.len(), MAX_LIST_ENTRIES);
    assert!(!full.truncated);

    f.write("files/f9999.txt", "yy");
    f.write("aaa.txt", "z");
    let over = artifacts::list(&f.root, None).expect("list");
    assert_eq!(over.entries.len(), MAX_LIST_ENTRIES);
    assert!(over.truncated);
    assert_eq!(over.total_files, MAX_LIST_ENTRIES as u64 + 2);
    assert_eq!(over.total_bytes, MAX_LIST_ENTRIES as u64 + 3);
    // The first in path order are kept.
    assert_eq!(over.entries[0].path, "aaa.txt");
    assert_eq!(
        over.entries.last().expect("entries").path,
        format!("files/f{:04}.txt", MAX_LIST_ENTRIES - 2)
    );
}

#[test]
fn text_is_told_from_binary_by_its_first_bytes_at_the_sniff_edge() {
    let f = Fixture::new();
    let mut late_nul = vec![b'a'; SNIFF_BYTES + 10];
    late_nul[SNIFF_BYTES] = 0;
    f.write("late.txt", &late_nul);
    let mut edge_nul = vec![b'a'; SNIFF_BYTES + 10];
    edge_nul[SNIFF_BYTES - 1] = 0;
    f.write("edge.txt", &edge_nul);
    f.write("latin1.txt", b"caf\xe9\n");
    f.write("utf8.txt", "café ☕\n");
    f.write("empty.txt", "");
    let kind = |path: &str| artifacts::open(&f.root, path).expect("open").kind();
    assert_eq!(kind("late.txt"), Kind::Text);
    assert_eq!(kind("edge.txt"), Kind::Binary);
    assert_eq!(kind("latin1.txt"), Kind::Binary);
    assert_eq!(kind("utf8.txt"), Kind::Text);
    assert_eq!(kind("empty.txt"), Kind::Text);
}

#[test]
fn binary_files_are_described_not_read() {
    let f = Fixture::new();
    let bytes: Vec<u8> = (0..=PREVIEW_BYTES as u8).collect();
    f.write("data/blob.bin", &bytes);
    let artifact = artifacts::open(&f.root, "data/blob.bin").expect("open");
    assert_eq!(artifact.kind(), Kind::Binary);
    assert_eq!(artifact.size(), PREVIEW_BYTES as u64 + 1);
    assert_eq!(artifact.media_type(), "application/octet-stream");
    let hex = artifact.preview_hex().expect("preview");
    assert_eq!(hex.split(' ').count(), PREVIEW_BYTES);
    assert!(hex.starts_with("00 01 02"), "{hex}");
    assert!(matches!(artifact.text().unwrap_err(), Error::Binary(_)));
    f.write("data/short.bin", b"\0\x01");
    let short = artifacts::open(&f.root, "data/short.bin").expect("open");
    assert_eq!(short.preview_hex().expect("preview"), "00 01");
}

#[test]
fn text_lines_are_numbered_with_crlf_and_a_last_line_without_newline() {
    let f = Fixture::new();
    f.write("a.txt", "one\r\ntwo\n\nfour");
    let artifact = artifacts::open(&f.root, "a.txt").expect("open");
    let reader = artifact.text().expect("text");
    assert_eq!(reader.line_count(), 4);
    let lines: Vec<(u64, String)> = reader
        .lines(1..10)
        .expect("lines")
        .into_iter()
        .map(|l| (l.number, l.text))
        .collect();
    assert_eq!(
        lines,
        [
            (1, "one".to_owned()),
            (2, "two".to_owned()),
            (3, String::new()),
            (4, "four".to_owned())
        ]
    );
    assert_eq!(reader.lines(2..3).expect("lines")[0].text, "two");
    assert!(reader.lines(5..9).expect("lines").is_empty());
    f.write("empty.txt", "");
    let empty = artifacts::open(&f.root, "empty.txt").expect("open");
    assert_eq!(empty.text().expect("text").line_count(), 0);
}

#[test]
fn long_lines_are_cut_at_the_limit_and_keep_their_numbers() {
    let f = Fixture::new();
    let exact = "e".repeat(MAX_LINE_BYTES);
    let over = "o".repeat(MAX_LINE_BYTES + 1);
    f.write("long.txt", format!("{exact}\n{over}\nafter\n"));
    let artifact = artifacts::open(&f.root, "long.txt").expect("open");
    let reader = artifact.text().expect("text");
    let lines = reader.lines(1..4).expect("lines");
    assert_eq!(lines[0].text.len(), MAX_LINE_BYTES);
    assert_eq!(lines[1].text.len(), MAX_LINE_BYTES);
    assert_eq!((lines[2].number, lines[2].text.as_str()), (3, "after"));
}

#[test]
fn grep_finds_matches_with_their_context() {
    let f = Fixture::new();
    let text: String = (1..=50)
        .map(|n| {
            if n % 20 == 0 {
                format!("FAIL case {n}\n")
            } else {
                format!("ok case {n}\n")
            }
        })
        .collect();
    f.write("report.txt", text);
    let artifact = artifacts::open(&f.root, "report.txt").expect("open");
    let reader = artifact.text().expect("text");
    let regex = regex::Regex::new("FAIL").expect("regex");
    let found = reader
        .grep(
            &regex,
            GrepOptions {
                context: 2,
                max_matches: 10,
                invert: false,
            },
        )
        .expect("grep");
    let blocks: Vec<Vec<(u64, bool)>> = found
        .blocks
        .iter()
        .map(|b| b.lines.iter().map(|l| (l.number, l.is_match)).collect())
        .collect();
    assert_eq!(
        blocks,
        [
            vec![
                (18, false),
                (19, false),
                (20, true),
                (21, false),
                (22, false)
            ],
            vec![
                (38, false),
                (39, false),
                (40, true),
                (41, false),
                (42, false)
            ],
        ]
    );
    assert_eq!(found.total_matches_seen, 2);
    let one = reader
        .grep(
            &regex,
            GrepOptions {
                context: 0,
                max_matches: 1,
                invert: false,
            },
        )
        .expect("grep");
    assert_eq!((one.matches_returned, one.total_matches_seen), (1, 2));
    assert!(one.truncated);
}

#[test]
fn the_tail_of_a_large_file_is_read_by_line_number() {
    let f = Fixture::new();
    let total = 300_000u64;
    let mut text = String::with_capacity(4 << 20);
    for n in 1..=total {
        text.push_str(&format!("line {n}\n"));
    }
    f.write("big.log", text);
    let artifact = artifacts::open(&f.root, "big.log").expect("open");
    let reader = artifact.text().expect("text");
    assert_eq!(reader.line_count(), total);
    let tail = reader.lines(total - 2..total + 1).expect("lines");
    let tail: Vec<(u64, &str)> = tail.iter().map(|l| (l.number, l.text.as_str())).collect();
    assert_eq!(
        tail,
        [
            (total - 2, "line 299998"),
            (total - 1, "line 299999"),
            (total, "line 300000")
        ]
    );
}

#[test]
fn only_the_first_scan_limit_bytes_of_a_huge_file_are_read() {
    let f = Fixture::new();
    let head: String = (1..=1000).map(|n| format!("line {n:05}\n")).collect();
    let path = f.write("huge.log", &head);
    // Sparse: the rest of the file is a hole of zero bytes after the text.
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    file.set_len(MAX_SCAN_BYTES + 1).expect("grow");
    let artifact = artifacts::open(&f.root, "huge.log").expect("open");
    assert_eq!(artifact.kind(), Kind::Text);
    assert_eq!(artifact.size(), MAX_SCAN_BYTES + 1);
    let reader = artifact.text().expect("text");
    assert_eq!(reader.readable_bytes(), MAX_SCAN_BYTES);
    // The text, then the zeros up to the limit as one last line.
    assert_eq!(reader.line_count(), 1001);
    assert_eq!(
        reader.lines(1000..1001).expect("lines")[0].text,
        "line 01000"
    );
}

#[test]
fn an_existing_file_is_resolved_to_its_place_in_the_store() {
    let f = Fixture::new();
    let written = f.write("data/artifacts/report.xml", "<xml/>");
    let resolved = f.resolve("./data//artifacts/report.xml").expect("resolve");
    assert_eq!(resolved, fs::canonicalize(&written).expect("canonical"));
    let artifact = artifacts::open(&f.root, "./data//artifacts/report.xml").expect("open");
    assert_eq!(artifact.path(), "data/artifacts/report.xml");
    assert!(Path::new(&resolved).is_file());
}
