//! Event time parsing.
//!
//! CloudTrail writes `2024-03-01T12:05:09Z`; CloudTrail Lake and Athena exports write
//! `2024-03-01 12:05:09.000000000`; some exports drop the `Z`. All are UTC. The fixed shape is parsed by hand because it is
//! on the hot path of every record; anything else falls back to a full RFC 3339 parser.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// Parses a CloudTrail `eventTime`. Returns `None` for anything that is not a time.
pub fn parse_event_time(text: &str) -> Option<DateTime<Utc>> {
    if let Some(time) = parse_fixed(text.as_bytes()) {
        return Some(time);
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    // Without a zone (some exports drop the `Z`): UTC, as CloudTrail's times all are.
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()
        .map(|naive| naive.and_utc())
}

/// A duration written `30s`, `90m`, `24h`, `7d` or `2w` (windows, timespans, buckets).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let number: i64 = text[..text.len() - unit.len_utf8()]
        .trim()
        .parse()
        .ok()
        .filter(|n| *n >= 0)?;
    match unit {
        's' => Duration::try_seconds(number),
        'm' => Duration::try_minutes(number),
        'h' => Duration::try_hours(number),
        'd' => Duration::try_days(number),
        'w' => Duration::try_weeks(number),
        _ => None,
    }
}

/// `YYYY-MM-DDTHH:MM:SS` followed by `Z`, or by a space-separated form with optional fraction.
fn parse_fixed(bytes: &[u8]) -> Option<DateTime<Utc>> {
    if bytes.len() < 19 {
        return None;
    }
    let tail = &bytes[19..];
    let utc_suffix = tail == b"Z" || (bytes[10] == b' ' && (tail.is_empty() || tail[0] == b'.'));
    if !utc_suffix || bytes[4] != b'-' || bytes[7] != b'-' || bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    if bytes[10] != b'T' && bytes[10] != b' ' {
        return None;
    }
    let nanos = if tail.first() == Some(&b'.') {
        fraction_nanos(&tail[1..])?
    } else {
        0
    };
    let date = NaiveDate::from_ymd_opt(
        digits(&bytes[0..4])? as i32,
        digits(&bytes[5..7])?,
        digits(&bytes[8..10])?,
    )?;
    let time = NaiveTime::from_hms_nano_opt(
        digits(&bytes[11..13])?,
        digits(&bytes[14..16])?,
        digits(&bytes[17..19])?,
        nanos,
    )?;
    Some(date.and_time(time).and_utc())
}

fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

fn fraction_nanos(bytes: &[u8]) -> Option<u32> {
    if bytes.is_empty() || bytes.len() > 9 {
        return None;
    }
    let value = digits(bytes)?;
    Some(value * 10u32.pow(9 - bytes.len() as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc(text: &str) -> String {
        parse_event_time(text).map(|t| t.to_rfc3339()).unwrap_or_default()
    }

    #[test]
    fn parses_cloudtrail_forms() {
        assert_eq!(rfc("2024-03-01T12:05:09Z"), "2024-03-01T12:05:09+00:00");
        assert_eq!(rfc("2025-03-26 16:43:57.000000000"), "2025-03-26T16:43:57+00:00");
        assert_eq!(rfc("2025-03-26 16:43:57"), "2025-03-26T16:43:57+00:00");
        assert_eq!(rfc("2024-03-01T12:05:09.250+02:00"), "2024-03-01T10:05:09.250+00:00");
        // An export that dropped the zone: UTC.
        assert_eq!(rfc("2024-03-01T12:05:09"), "2024-03-01T12:05:09+00:00");
        assert_eq!(rfc("2024-03-01T12:05:09.5"), "2024-03-01T12:05:09.500+00:00");
    }

    #[test]
    fn rejects_non_times() {
        for bad in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2024-02-30T00:00:00Z",
            "2024-03-01T25:00:00Z",
            "2024-03-01T12:05",
            "１２３４-03-01T12:05:09Z",
        ] {
            assert!(parse_event_time(bad).is_none(), "{bad}");
        }
    }
}
