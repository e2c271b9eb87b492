//! Go-style durations (`90s`, `5m`, `1h30m`, `250ms`), as Testkube writes timeouts.

use std::time::Duration;

/// Parses a Go-style duration; the error says what was expected.
///
/// Accepts what Go's `time.ParseDuration` accepts except negative values, which mean nothing for a
/// timeout or a delay: a sequence of decimal numbers (with an optional fraction), each followed by
/// a unit `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`. `0` alone needs no unit.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "expected a duration such as `90s`, `5m`, `1h30m` or `250ms` (units: \
                            ns, us, ms, s, m, h)";
    let shown = super::yaml::quote_for_message(text);
    let body = text.strip_prefix('+').unwrap_or(text);
    if body.starts_with('-') {
        return Err(format!("{shown} is negative; {EXPECTED}"));
    }
    if body == "0" {
        return Ok(Duration::ZERO);
    }
    if body.is_empty() {
        return Err(format!("empty duration; {EXPECTED}"));
    }
    let mut total = 0f64;
    let mut rest = body;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(format!("{shown} is not a duration; {EXPECTED}"));
        }
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let nanos_per_unit = match unit {
            "ns" => 1e0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("{shown} is missing a unit; {EXPECTED}")),
            other => {
                return Err(format!("{shown} has an unknown unit `{other}`; {EXPECTED}"));
            }
        };
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{shown} is not a duration; {EXPECTED}"))?;
        total += value * nanos_per_unit;
    }
    // Go limits durations to about 290 years (i64 nanoseconds); so does this.
    if !total.is_finite() || total > i64::MAX as f64 {
        return Err(format!(
            "{shown} is too long; durations are limited to about 290 years"
        ));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(Duration::from_nanos(total.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_go_durations() {
        for (text, millis) in [
            ("90s", 90_000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("250ms", 250),
            ("1.5h", 5_400_000),
            ("0", 0),
            ("1m0.5s", 60_500),
            ("2h45m30s", 9_930_000),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(millis)),
                "{text}"
            );
        }
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
    }

    #[test]
    fn refuses_what_go_refuses() {
        for (text, words) in [
            ("", "empty"),
            ("10", "missing a unit"),
            ("5 m", "unknown unit"),
            ("5min", "unknown unit `min`"),
            ("-5s", "negative"),
            ("s", "not a duration"),
            ("1..5s", "not a duration"),
            ("1.2.3s", "not a duration"),
            ("9999999999h", "too long"),
        ] {
            let error = parse_duration(text).expect_err(text);
            assert!(error.contains(words), "{text}: {error}");
        }
    }
}
