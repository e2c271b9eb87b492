//! list_artifacts and read_artifact through a real MCP client, on the files a real run saved.

mod support;

use std::os::unix::fs::symlink;

use serde_json::{Value, json};
use support::{Harness, workflow};
use testloop_orchestrator::artifacts::MAX_SCAN_BYTES;
use testloop_tools::artifacts::{MAX_ARTIFACT_RESPONSE_BYTES, MIN_ARTIFACT_RESPONSE_BYTES};
use testloop_tools::lines::MAX_LINES;

/// Lines in the report: a declaration, the suite, 2000 passing cases, the failing one, the end.
const REPORT_LINES: u64 = 2004;

/// A run whose step writes a long JUnit-like report, a PNG header, 2500 empty lines and a nested
/// note under
/// `/data/artifacts`, and keeps them all: from the default working directory `/data`, they are
/// stored under `artifacts/`.
fn reporting_workflow() -> String {
    workflow(
        "reports",
        r#"steps:
- name: test
  shell: |
    mkdir -p /data/artifacts/nested/deep
    {
      echo '<?xml version="1.0"?>'
      echo '<testsuite name="unit" tests="2001" failures="1">'
      for i in $(seq 1 2000); do echo "  <testcase name=\"case $i\"/>"; done
      echo '  <testcase name="broken"><failure message="expected 2, got 3"/></testcase>'
      echo '</testsuite>'
    } > /data/artifacts/report.xml
    printf '\211PNG\r\n\032\n\000\000\000\rIHDR' > /data/artifacts/shot.png
    echo 'nested hello' > /data/artifacts/nested/deep/notes.txt
    yes '' | head -n 2500 > /data/artifacts/blank.txt
  artifacts:
    paths: ["/data/artifacts/**"]"#,
    )
}

/// A harness with one finished run of [`reporting_workflow`]; returns its id.
async fn ran() -> (Harness, String) {
    let h = Harness::start().await;
    h.create(&reporting_workflow()).await;
    let report = h.run_to_end("reports").await;
    assert_eq!(report.data["status"], "passed", "{}", report.text);
    let id = report.data["id"].as_str().expect("id").to_owned();
    (h, id)
}

fn numbers(answer: &Value) -> Vec<u64> {
    answer["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|line| line["number"].as_u64().expect("number"))
        .collect()
}

/// Bytes the lines take as rendered: `{number}| {text}\n`.
fn rendered_bytes(answer: &Value) -> usize {
    answer["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|line| line["number"].to_string().len() + 3 + line["text"].as_str().unwrap().len())
        .sum()
}

#[tokio::test]
async fn the_saved_files_are_listed_with_kinds_types_and_the_next_call() {
    let (h, id) = ran().await;
    let listed = h.ok("list_artifacts", json!({ "execution": id })).await;
    let paths: Vec<&str> = listed.data["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .map(|a| a["path"].as_str().expect("path"))
        .collect();
    assert_eq!(
        paths,
        [
            "artifacts/blank.txt",
            "artifacts/nested/deep/notes.txt",
            "artifacts/report.xml",
            "artifacts/shot.png"
        ]
    );
    assert_eq!(listed.data["total_files"], 4);
    assert_eq!(listed.data["truncated"], false);
    let report = &listed.data["artifacts"][2];
    assert_eq!(report["kind"], "text");
    assert_eq!(report["media_type"], "application/xml");
    let png = &listed.data["artifacts"][3];
    assert_eq!(
        (&png["kind"], &png["media_type"]),
        (&json!("binary"), &json!("image/png"))
    );
    assert_eq!(png["size"], 16);
    // The JUnit report is the likeliest next read.
    assert_eq!(listed.data["next"]["tool"], "read_artifact");
    assert_eq!(
        listed.data["next"]["arguments"],
        json!({"execution": id, "path": "artifacts/report.xml"})
    );
    assert!(
        listed
            .text
            .contains("artifacts/shot.png  16 B  binary  image/png"),
        "{}",
        listed.text
    );
    assert!(listed.text.contains("4 file(s)"), "{}", listed.text);

    // An id prefix and `under` narrow it down.
    let nested = h
        .ok(
            "list_artifacts",
            json!({ "execution": &id[..12], "under": "artifacts/nested" }),
        )
        .await;
    assert_eq!(nested.data["total_files"], 1);
    assert_eq!(
        nested.data["artifacts"][0]["path"],
        "artifacts/nested/deep/notes.txt"
    );
    assert_eq!(
        nested.data["next"]["arguments"]["path"],
        nested.data["artifacts"][0]["path"]
    );
}

#[tokio::test]
async fn text_is_read_from_the_start_and_cut_with_the_call_that_reads_on() {
    let (h, id) = ran().await;
    let first = h
        .ok(
            "read_artifact",
            json!({ "execution": id, "path": "artifacts/report.xml" }),
        )
        .await;
    assert_eq!(first.data["kind"], "text");
    assert_eq!(first.data["total_lines"], REPORT_LINES);
    assert_eq!(first.data["truncated"], true);
    let shown = numbers(&first.data);
    assert_eq!(shown[0], 1);
    assert!(rendered_bytes(&first.data) <= MAX_ARTIFACT_RESPONSE_BYTES);
    assert!(first.text.starts_with(&format!(
        "== execution {id} artifact artifacts/report.xml (text, application/xml"
    )));
    assert!(
        first.text.contains("1| <?xml version=\"1.0\"?>"),
        "{}",
        first.text
    );
    let last_line = first.text.lines().last().expect("lines");
    assert!(
        last_line.starts_with(&format!("[truncated: lines {}-", shown.len() + 1)),
        "{last_line}"
    );
    // The next call reads on where this one stopped.
    let next = first.data["next"]["arguments"].clone();
    assert_eq!(next["from"], shown.len() + 1);
    assert_eq!(next["path"], "artifacts/report.xml");
    let more = h.ok("read_artifact", next).await;
    assert_eq!(numbers(&more.data)[0], shown.len() as u64 + 1);

    // Tail, head, a range, and grep with context, as get_logs takes them.
    let tail = h
        .ok(
            "read_artifact",
            json!({ "execution": id, "path": "artifacts/report.xml", "tail": 2 }),
        )
        .await;
    assert_eq!(numbers(&tail.data), [REPORT_LINES - 1, REPORT_LINES]);
    assert_eq!(tail.data["lines"][1]["text"], "</testsuite>");
    assert_eq!(tail.data["truncated"], false);
    assert!(tail.data.get("next").is_none());
    let head = h
        .ok(
            "read_artifact",
            json!({ "execution": id, "path": "artifacts/report.xml", "head": 2 }),
        )
        .await;
    assert_eq!(numbers(&head.data), [1, 2]);
    let range = h
        .ok(
            "read_artifact",
            json!({ "execution": id, "path": "artifacts/report.xml", "from": 3, "to": 4 }),
        )
        .await;
    assert!(
        range
            .text
            .contains("3|   <testcase name=\"case 1\"/>\n4|   <testcase name=\"case 2\"/>"),
        "{}",
        range.text
    );
    let grep = h
        .ok(
            "read_artifact",
            json!({
                "execution": id,
                "path": "artifacts/report.xml",
                "grep": "<failure",
                "context": 1
            }),
        )
        .await;
    assert_eq!(grep.data["total_matches"], 1);
    assert_eq!(
        numbers(&grep.data),
        [REPORT_LINES - 2, REPORT_LINES - 1, REPORT_LINES]
    );
    assert!(
        grep.text.contains(&format!(
            "{}:   <testcase name=\"broken\"><failure message=\"expected 2, got 3\"/></testcase>",
            REPORT_LINES - 1
        )),
        "{}",
        grep.text
    );
    let many = h
        .ok(
            "read_artifact",
            json!({
                "execution": id,
                "path": "artifacts/report.xml",
                "grep": "case \\d+",
                "max_matches": 3,
                "context": 0
            }),
        )
        .await;
    assert_eq!(many.data["truncated"], true);
    assert_eq!(many.data["total_matches"], 2000);
    assert!(many.text.contains("3 of 2000 matches"), "{}", many.text);
    assert_eq!(many.data["next"]["arguments"]["from"], 6);
}

#[tokio::test]
async fn one_read_stops_at_the_line_limit_and_says_where_to_go_on() {
    let (h, id) = ran().await;
    // 2500 empty lines fit in the size cap; the line limit cuts them.
    let blank = h
        .ok(
            "read_artifact",
            json!({ "execution": id, "path": "artifacts/blank.txt" }),
        )
        .await;
    let shown = numbers(&blank.data);
    assert_eq!(shown.len() as u64, MAX_LINES);
    assert_eq!(shown.last(), Some(&MAX_LINES));
    assert_eq!(blank.data["truncated"], true);
    assert_eq!(blank.data["next"]["arguments"]["from"], MAX_LINES + 1);
    assert_eq!(blank.data["next"]["arguments"]["to"], 2500);
    let rest = h
        .ok("read_artifact", blank.data["next"]["arguments"].clone())
        .await;
    assert_eq!(numbers(&rest.data).len(), 500);
    assert_eq!(rest.data["truncated"], false);
    // A range of exactly the limit is read whole.
    let exact = h
        .ok(
            "read_artifact",
            json!({ "execution": id, "path": "artifacts/blank.txt", "from": 501, "to": 500 + MAX_LINES }),
        )
        .await;
    assert_eq!(numbers(&exact.data).len() as u64, MAX_LINES);
    assert_eq!(exact.data["truncated"], false);
}

#[tokio::test]
async fn max_bytes_is_honoured_within_its_bounds() {
    let (h, id) = ran().await;
    let read = |max_bytes: usize| {
        h.ok(
            "read_artifact",
            json!({ "execution": id, "path": "artifacts/report.xml", "max_bytes": max_bytes }),
        )
    };
    let at_min = read(MIN_ARTIFACT_RESPONSE_BYTES).await;
    assert!(rendered_bytes(&at_min.data) <= MIN_ARTIFACT_RESPONSE_BYTES);
    assert!(!numbers(&at_min.data).is_empty());
    // Less than the minimum reads as much as the minimum.
    let below = read(MIN_ARTIFACT_RESPONSE_BYTES - 1).await;
    assert_eq!(numbers(&below.data), numbers(&at_min.data));
    let zero = read(0).await;
    assert_eq!(numbers(&zero.data), numbers(&at_min.data));
    // The next call keeps the smaller size.
    assert_eq!(
        at_min.data["next"]["arguments"]["max_bytes"],
        MIN_ARTIFACT_RESPONSE_BYTES
    );
    let at_max = read(MAX_ARTIFACT_RESPONSE_BYTES).await;
    let above = read(MAX_ARTIFACT_RESPONSE_BYTES + 1).await;
    assert_eq!(numbers(&above.data), numbers(&at_max.data));
    assert!(rendered_bytes(&at_max.data) <= MAX_ARTIFACT_RESPONSE_BYTES);
    // The cap is reached: the first line left out would not have fitted.
    for at_edge in [&at_min, &at_max] {
        let left_out = numbers(&at_edge.data).len() as u64 + 1;
        let line = h
            .ok(
                "read_artifact",
                json!({
                    "execution": id,
                    "path": "artifacts/report.xml",
                    "from": left_out,
                    "to": left_out
                }),
            )
            .await;
        let cap = at_edge.data["next"]["arguments"]["max_bytes"]
            .as_u64()
            .map_or(MAX_ARTIFACT_RESPONSE_BYTES, |b| b as usize);
        assert!(rendered_bytes(&at_edge.data) + rendered_bytes(&line.data) > cap);
    }
}

#[tokio::test]
async fn binary_files_are_described_not_dumped() {
    let (h, id) = ran().await;
    let png = h
        .ok(
            "read_artifact",
            json!({ "execution": id, "path": "artifacts/shot.png" }),
        )
        .await;
    assert_eq!(png.data["kind"], "binary");
    assert_eq!(png.data["media_type"], "image/png");
    assert_eq!(png.data["size"], 16);
    assert_eq!(
        png.data["first_bytes"],
        "89 50 4e 47 0d 0a 1a 0a 00 00 00 0d 49 48 44 52"
    );
    assert_eq!(png.data["lines"], json!([]));
    assert!(
        png.text.contains("first 16 bytes: 89 50 4e 47"),
        "{}",
        png.text
    );
    assert!(png.text.contains("described, not shown"), "{}", png.text);
    let grep = h
        .ok(
            "read_artifact",
            json!({ "execution": id, "path": "artifacts/shot.png", "grep": "PNG" }),
        )
        .await;
    assert!(
        grep.text.contains("line arguments do not apply"),
        "{}",
        grep.text
    );
}

#[tokio::test]
async fn paths_outside_the_store_are_refused_and_the_server_keeps_serving() {
    let (h, id) = ran().await;
    let store = h.orchestrator.artifacts_dir(&id);
    let outside = h.dir.path().join("outside");
    std::fs::create_dir_all(&outside).expect("outside");
    std::fs::write(outside.join("secret.txt"), "top secret\n").expect("secret");
    symlink(outside.join("secret.txt"), store.join("artifacts/leak.txt")).expect("link");
    symlink(&outside, store.join("artifacts/linked")).expect("link");

    let refused = [
        ("../x", "`..`"),
        ("a/../../x", "`..`"),
        ("data/../..", "`..`"),
        ("/etc/passwd", "relative to the execution's artifact store"),
        ("", "empty"),
        ("data/a\u{0}b", "NUL"),
        ("artifacts/leak.txt", "outside"),
        ("artifacts/linked/secret.txt", "outside"),
    ];
    for (path, says) in refused {
        let error = h
            .err("read_artifact", json!({ "execution": id, "path": path }))
            .await;
        assert!(error.contains(says), "{path:?}: {error}");
        assert!(!error.contains("top secret"), "{error}");
    }
    // The path a step wrote is refused, and the stored file it most likely means is named.
    let error = h
        .err(
            "read_artifact",
            json!({ "execution": id, "path": "/data/artifacts/report.xml" }),
        )
        .await;
    assert!(
        error.contains("is absolute") && error.contains("the store holds `artifacts/report.xml`"),
        "{error}"
    );
    let error = h
        .err(
            "list_artifacts",
            json!({ "execution": id, "under": "artifacts/linked" }),
        )
        .await;
    assert!(error.contains("outside"), "{error}");
    let error = h
        .err(
            "list_artifacts",
            json!({ "execution": id, "under": "../.." }),
        )
        .await;
    assert!(error.contains("`..`"), "{error}");

    // Links are neither followed nor listed.
    let listed = h.ok("list_artifacts", json!({ "execution": id })).await;
    assert_eq!(listed.data["total_files"], 4);
    assert!(
        listed.data["note"]
            .as_str()
            .is_some_and(|note| note.contains("2 symbolic link(s)")),
        "{}",
        listed.text
    );
    // Still serving.
    h.ok(
        "read_artifact",
        json!({ "execution": id, "path": "artifacts/nested/deep/notes.txt" }),
    )
    .await;
}

#[tokio::test]
async fn unknown_executions_missing_files_and_directories_say_what_to_call() {
    let (h, id) = ran().await;
    for tool in ["list_artifacts", "read_artifact"] {
        let error = h
            .err(tool, json!({ "execution": "01ZZZZ", "path": "x" }))
            .await;
        assert!(
            error.contains("no execution id starts with `01ZZZZ`")
                && error.contains("list_executions"),
            "{tool}: {error}"
        );
    }
    let error = h
        .err(
            "read_artifact",
            json!({ "execution": id, "path": "artifacts/nope.xml" }),
        )
        .await;
    assert!(
        error.contains("no artifact `artifacts/nope.xml`") && error.contains("list_artifacts"),
        "{error}"
    );
    let error = h
        .err(
            "read_artifact",
            json!({ "execution": id, "path": "artifacts/nested" }),
        )
        .await;
    assert!(
        error.contains("is a directory") && error.contains("under=\"artifacts/nested\""),
        "{error}"
    );
    let error = h
        .err(
            "read_artifact",
            json!({ "execution": id, "path": "artifacts/report.xml", "tail": 1, "head": 1 }),
        )
        .await;
    assert!(error.contains("choose one"), "{error}");
    let error = h
        .err(
            "list_artifacts",
            json!({ "execution": id, "under": "data/nothing" }),
        )
        .await;
    assert!(error.contains("no artifact `data/nothing`"), "{error}");
}

#[tokio::test]
async fn an_execution_that_saved_nothing_says_how_to_save_files() {
    let h = Harness::start().await;
    h.create(&workflow("plain", "steps:\n- shell: echo hi"))
        .await;
    let report = h.run_to_end("plain").await;
    let id = report.data["id"].as_str().expect("id");
    let listed = h.ok("list_artifacts", json!({ "execution": id })).await;
    assert_eq!(listed.data["total_files"], 0);
    assert_eq!(listed.data["artifacts"], json!([]));
    assert!(listed.data.get("next").is_none());
    assert!(
        listed.text.contains("saved no artifacts") && listed.text.contains("artifacts: {paths:"),
        "{}",
        listed.text
    );
    let error = h
        .err(
            "read_artifact",
            json!({ "execution": id, "path": "artifacts/report.xml" }),
        )
        .await;
    assert!(error.contains("no artifact"), "{error}");
}

#[tokio::test]
async fn a_file_beyond_the_scan_limit_is_read_in_part_and_says_so() {
    let (h, id) = ran().await;
    let path = h.orchestrator.artifacts_dir(&id).join("artifacts/huge.log");
    let text: String = (1..=1000).map(|n| format!("line {n:05}\n")).collect();
    std::fs::write(&path, text).expect("write");
    // Sparse: zero bytes after the text, past the limit.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    file.set_len(MAX_SCAN_BYTES + 1).expect("grow");
    let read = h
        .ok(
            "read_artifact",
            json!({ "execution": id, "path": "artifacts/huge.log", "head": 1 }),
        )
        .await;
    assert_eq!(read.data["lines"][0]["text"], "line 00001");
    assert!(
        read.data["note"]
            .as_str()
            .is_some_and(|note| note.contains("only its first 256 MiB are read (1001 lines)")),
        "{}",
        read.text
    );
    assert!(
        read.text.contains("tail and grep cover that part"),
        "{}",
        read.text
    );
}
