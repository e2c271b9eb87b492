//! Go-style durations (`90s`, `5m`, `1h30m`, `250ms`), as Testkube writes timeouts.

use std::time::Duration;

/// Parses a Go-style duration; the error says what was expected.
pub fn parse_duration(_text: &str) -> Result<Duration, String> {
    unimplemented!("parse_duration")
}
