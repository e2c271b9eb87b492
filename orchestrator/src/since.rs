//! "Since when" as people and agents write it: an RFC 3339 timestamp or an age like `90m`.

use crate::execution::TimestampMicros;

/// Why a `since` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot read `{0}` as a time: use an RFC 3339 timestamp (2026-01-31T12:00:00Z) or an age \
     such as 30s, 15m, 2h or 7d"
)]
pub struct InvalidSince(pub String);

/// The instant `text` names, relative ages counted back from `now`.
pub fn parse_since(text: &str, now: TimestampMicros) -> Result<TimestampMicros, InvalidSince> {
    let text = text.trim();
    let invalid = || InvalidSince(text.to_owned());
    if let Ok(timestamp) = text.parse::<jiff::Timestamp>() {
        return Ok(timestamp.as_microsecond());
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(invalid)?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().map_err(|_| invalid())?;
    let seconds_per_unit: i64 = match unit.trim() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        _ => return Err(invalid()),
    };
    let micros = number
        .checked_mul(seconds_per_unit)
        .and_then(|s| s.checked_mul(1_000_000))
        .ok_or_else(invalid)?;
    Ok(now.saturating_sub(micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: TimestampMicros = 1_800_000_000_000_000;

    #[test]
    fn ages_count_back_from_now() {
        assert_eq!(parse_since("90s", NOW), Ok(NOW - 90_000_000));
        assert_eq!(parse_since("2h", NOW), Ok(NOW - 7_200_000_000));
        assert_eq!(parse_since("1d", NOW), Ok(NOW - 86_400_000_000));
        assert_eq!(parse_since(" 15 min ", NOW), Ok(NOW - 900_000_000));
    }

    #[test]
    fn timestamps_are_absolute() {
        assert_eq!(parse_since("1970-01-01T00:00:01Z", NOW), Ok(1_000_000));
        assert_eq!(parse_since("1970-01-01T01:00:01+01:00", NOW), Ok(1_000_000));
    }

    #[test]
    fn nonsense_is_refused_with_the_accepted_forms() {
        for text in [
            "",
            "h",
            "5",
            "5 fortnights",
            "yesterday",
            "99999999999999999999d",
        ] {
            let error = parse_since(text, NOW).unwrap_err();
            assert!(error.to_string().contains("RFC 3339"), "{text}: {error}");
        }
    }
}
