//! The control-line protocol: how the runner in a pod reports to the server through its
//! container's output, the only channel the server reads (`pods/log?follow=true`).
//!
//! A container's output is a sequence of lines. A line that starts with [`MARKER`], the pod's
//! nonce and a space is a control line; the rest of it is one JSON [`Event`]:
//!
//! ```text
//! \x1etestloop:<nonce> {"event":"log","step":"2"}
//! npm test output, as the step printed it
//! \x1etestloop:<nonce> {"event":"finished","record":{...}}
//! ```
//!
//! Every other line is output of the step named by the last [`Event::Log`] (output before any is
//! the runner's own, attributed to no step). A step's output reaches the container's output under
//! the log store's line rules (no line longer than [`crate::logs::MAX_LINE_BYTES`], a trailing
//! `\r` dropped, an unfinished line ended), so a control line always starts a line. Output bytes
//! need not be UTF-8. The nonce is random per pod: a step that prints something looking like a
//! control line of another pod (or of testloop's own tests) prints plain output.

use serde::{Deserialize, Serialize};

use crate::execution::StepRecord;
use crate::executor::UnitOutcome;

/// What starts every control line, before the nonce: an ASCII record separator (never in a
/// line a person writes) and a name.
pub const MARKER: &[u8] = b"\x1etestloop:";

/// Most raw bytes of an artifact in one [`Event::ArtifactChunk`] (64 KiB once in base64, so a
/// chunk's line stays near the log store's line limit).
pub const ARTIFACT_CHUNK_BYTES: usize = 48 * 1024;

/// One thing the runner tells the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// The output lines that follow are the step's at `step` (its path).
    Log { step: String },
    /// A step began, or began another attempt ([`crate::executor::UnitSink::step_started`]).
    Started { record: StepRecord },
    /// A step reached a terminal status, or was skipped
    /// ([`crate::executor::UnitSink::step_finished`]).
    Finished { record: StepRecord },
    /// Part of a collected artifact: `data` (base64, standard alphabet with padding) belongs at
    /// byte `offset` of the file at `path`, relative to the execution's artifacts. A file comes
    /// in order from offset 0 (an empty file as one empty chunk).
    ArtifactChunk {
        path: String,
        offset: u64,
        data: String,
    },
    /// The container did its share. The unit's outcome is the last step container's; a
    /// container that hands over to the next one, and the init container, say `passed` when
    /// they did their share (see [`super::runner`]).
    Done { outcome: UnitOutcome },
    /// Something went wrong in the runner itself (not in a step), said for people.
    Error { message: String },
}

/// The control line carrying `event`, newline included.
pub fn control_line(nonce: &str, event: &Event) -> Vec<u8> {
    let mut line = Vec::with_capacity(MARKER.len() + nonce.len() + 64);
    line.extend_from_slice(MARKER);
    line.extend_from_slice(nonce.as_bytes());
    line.push(b' ');
    // Serializing these types into memory cannot fail: they are plain data with string keys.
    if serde_json::to_writer(&mut line, event).is_err() {
        line.truncate(MARKER.len() + nonce.len() + 1);
        line.extend_from_slice(br#"{"event":"error","message":"cannot encode an event"}"#);
    }
    line.push(b'\n');
    line
}

/// Reads one container's output, line by line.
#[derive(Debug)]
pub struct Decoder {
    /// [`MARKER`], the nonce and a space.
    prefix: Vec<u8>,
    /// The step the output lines belong to, from the last [`Event::Log`].
    current: Option<String>,
}

/// What one line of a container's output is.
#[derive(Debug, PartialEq)]
pub enum Decoded<'l> {
    /// A control line.
    Event(Event),
    /// Output of the step `step` (the current one), or of none when no step's output began yet.
    Output {
        step: Option<String>,
        line: &'l [u8],
    },
    /// A control line of this pod that cannot be read (truncated, or from another version).
    Malformed { reason: String },
}

impl Decoder {
    pub fn new(nonce: &str) -> Self {
        let mut prefix = Vec::with_capacity(MARKER.len() + nonce.len() + 1);
        prefix.extend_from_slice(MARKER);
        prefix.extend_from_slice(nonce.as_bytes());
        prefix.push(b' ');
        Self {
            prefix,
            current: None,
        }
    }

    /// Decodes one line, with or without its `\n`.
    pub fn decode<'l>(&mut self, line: &'l [u8]) -> Decoded<'l> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let Some(json) = line.strip_prefix(self.prefix.as_slice()) else {
            return Decoded::Output {
                step: self.current.clone(),
                line,
            };
        };
        match serde_json::from_slice::<Event>(json) {
            Ok(event) => {
                if let Event::Log { step } = &event {
                    self.current = Some(step.clone());
                }
                Decoded::Event(event)
            }
            Err(error) => Decoded::Malformed {
                reason: format!("{error} in a control line of {} bytes", line.len()),
            },
        }
    }

    /// The step the next output line belongs to.
    pub fn current_step(&self) -> Option<&str> {
        self.current.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::StepStatus;

    fn record(path: &str) -> StepRecord {
        StepRecord {
            execution_id: "01JEXEC".to_owned(),
            path: path.to_owned(),
            name: "a step".to_owned(),
            status: StepStatus::Failed,
            exit_code: Some(3),
            attempts: 2,
            started_at: Some(1),
            finished_at: Some(2),
            message: Some("exited with code 3 — ünïcode \"quoted\"\n".to_owned()),
        }
    }

    #[test]
    fn every_event_round_trips() {
        let events = [
            Event::Log {
                step: "setup/1".to_owned(),
            },
            Event::Started {
                record: record("1"),
            },
            Event::Finished {
                record: record("2/1"),
            },
            Event::ArtifactChunk {
                path: "reports/a b.xml".to_owned(),
                offset: 49152,
                data: "AAEC".to_owned(),
            },
            Event::Done {
                outcome: UnitOutcome::TimedOut,
            },
            Event::Error {
                message: "line one\nline two".to_owned(),
            },
        ];
        let mut decoder = Decoder::new("abc123");
        for event in events {
            let line = control_line("abc123", &event);
            assert!(line.ends_with(b"\n"));
            assert_eq!(
                line.iter().filter(|&&b| b == b'\n').count(),
                1,
                "one line: {line:?}"
            );
            assert_eq!(decoder.decode(&line), Decoded::Event(event));
        }
    }

    #[test]
    fn output_belongs_to_the_last_logged_step() {
        let mut decoder = Decoder::new("n1");
        assert_eq!(
            decoder.decode(b"before\n"),
            Decoded::Output {
                step: None,
                line: b"before"
            }
        );
        let log = control_line(
            "n1",
            &Event::Log {
                step: "3".to_owned(),
            },
        );
        assert!(matches!(
            decoder.decode(&log),
            Decoded::Event(Event::Log { .. })
        ));
        let done = control_line(
            "n1",
            &Event::Done {
                outcome: UnitOutcome::Passed,
            },
        );
        decoder.decode(&done);
        assert_eq!(
            decoder.decode(b"after"),
            Decoded::Output {
                step: Some("3".to_owned()),
                line: b"after"
            }
        );
        assert_eq!(decoder.current_step(), Some("3"));
    }

    #[test]
    fn lines_that_are_not_this_pods_control_lines_are_output() {
        let mut decoder = Decoder::new("right");
        let other = control_line(
            "wrong",
            &Event::Log {
                step: "9".to_owned(),
            },
        );
        let cases: [&[u8]; 7] = [
            &other,
            b"\x1etestloop:right",     // no space, no JSON
            b"\x1etestloop:rightX {}", // a longer nonce
            b" \x1etestloop:right {}", // not at the start
            b"testloop:right {\"event\":\"done\",\"outcome\":\"passed\"}",
            b"\xff\xfe not UTF-8 \x80",
            b"",
        ];
        for line in cases {
            assert_eq!(
                decoder.decode(line),
                Decoded::Output {
                    step: None,
                    line: line.strip_suffix(b"\n").unwrap_or(line)
                },
                "{line:?}"
            );
        }
    }

    #[test]
    fn broken_control_lines_are_malformed() {
        let mut decoder = Decoder::new("n");
        let cases: [&[u8]; 5] = [
            b"\x1etestloop:n ",
            b"\x1etestloop:n {\"event\":\"log\"",
            b"\x1etestloop:n {\"event\":\"no-such-event\"}",
            b"\x1etestloop:n {\"event\":\"log\",\"step\":7}",
            b"\x1etestloop:n \xff",
        ];
        for line in cases {
            assert!(
                matches!(decoder.decode(line), Decoded::Malformed { .. }),
                "{line:?}"
            );
        }
        assert_eq!(decoder.current_step(), None);
    }

    #[test]
    fn huge_lines_decode_whole() {
        let mut decoder = Decoder::new("n");
        let data = "A".repeat(4 * ARTIFACT_CHUNK_BYTES);
        let event = Event::ArtifactChunk {
            path: "big".to_owned(),
            offset: 0,
            data,
        };
        assert_eq!(
            decoder.decode(&control_line("n", &event)),
            Decoded::Event(event)
        );
        let output = vec![b'x'; 10 << 20];
        assert_eq!(
            decoder.decode(&output),
            Decoded::Output {
                step: None,
                line: &output[..]
            }
        );
    }
}
