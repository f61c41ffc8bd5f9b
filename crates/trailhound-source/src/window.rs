//! The time window of a hunt: `--since` / `--until` as durations back from now or RFC 3339 times.

use chrono::{DateTime, Utc};
use trailhound_event::parse_event_time;

/// A half-open window `[since, until)`; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeWindow {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("{0:?} is neither a duration (90m, 24h, 7d, 2w) nor an RFC 3339 time (2024-03-01T12:00:00Z)")]
    Bad(String),
    #[error("{0:?} is not a delivery lag: a duration from 0s up to 30d (30m, 2h)")]
    Lag(String),
    #[error("the window is empty: --since {since} is not before --until {until}")]
    Empty { since: DateTime<Utc>, until: DateTime<Utc> },
}

impl TimeWindow {
    pub fn new(since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> Result<TimeWindow, WindowError> {
        if let (Some(since), Some(until)) = (since, until)
            && since >= until
        {
            return Err(WindowError::Empty { since, until });
        }
        Ok(TimeWindow { since, until })
    }

    pub fn contains(&self, time: DateTime<Utc>) -> bool {
        self.since.is_none_or(|since| time >= since) && self.until.is_none_or(|until| time < until)
    }

    /// Whether events between `earliest` and `latest` could fall inside the window.
    pub fn overlaps(&self, earliest: DateTime<Utc>, latest: DateTime<Utc>) -> bool {
        self.since.is_none_or(|since| latest >= since) && self.until.is_none_or(|until| earliest < until)
    }

    pub fn is_unbounded(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }
}

/// Parses a window bound: a duration before `now`, or an absolute time.
pub fn parse_bound(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, WindowError> {
    if let Some(duration) = parse_duration(text) {
        return now
            .checked_sub_signed(duration)
            .ok_or_else(|| WindowError::Bad(text.to_string()));
    }
    if let Some(time) = parse_event_time(text) {
        return Ok(time);
    }
    // A bare date means its midnight UTC.
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| WindowError::Bad(text.to_string()))
}

pub use trailhound_event::parse_duration;

/// The longest delivery lag accepted. CloudTrail delivers within minutes; a longer lag would
/// only widen every file's pruning window and, near the ends of the calendar, overflow it.
pub const MAX_DELIVERY_LAG: chrono::Duration = chrono::Duration::days(30);

/// Parses `--delivery-lag` (and the Lambda's setting): a duration up to [`MAX_DELIVERY_LAG`].
pub fn parse_delivery_lag(text: &str) -> Result<chrono::Duration, WindowError> {
    parse_duration(text)
        .filter(|lag| *lag <= MAX_DELIVERY_LAG)
        .ok_or_else(|| WindowError::Lag(text.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn delivery_lag_beyond_thirty_days_is_refused_not_overflowed() {
        assert_eq!(super::parse_delivery_lag("2h"), Ok(chrono::Duration::hours(2)));
        assert_eq!(super::parse_delivery_lag("30d"), Ok(super::MAX_DELIVERY_LAG));
        for text in ["31d", "100000000w", "-1h", "h"] {
            assert!(
                matches!(super::parse_delivery_lag(text), Err(super::WindowError::Lag(_))),
                "{text}"
            );
        }
    }

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        parse_event_time(text).expect("time")
    }

    #[test]
    fn bounds() {
        let now = at("2024-03-08T12:00:00Z");
        assert_eq!(parse_bound("7d", now), Ok(at("2024-03-01T12:00:00Z")));
        assert_eq!(parse_bound("90m", now), Ok(at("2024-03-08T10:30:00Z")));
        assert_eq!(parse_bound("24h", now), Ok(at("2024-03-07T12:00:00Z")));
        assert_eq!(parse_bound("2024-03-01T00:00:00Z", now), Ok(at("2024-03-01T00:00:00Z")));
        assert_eq!(parse_bound("2024-03-01", now), Ok(at("2024-03-01T00:00:00Z")));
        for bad in ["", "7", "d", "-5d", "7y", "tomorrow", "99999999999999999w"] {
            assert!(parse_bound(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn window_edges() {
        let w = TimeWindow::new(Some(at("2024-03-01T00:00:00Z")), Some(at("2024-03-02T00:00:00Z"))).expect("window");
        assert!(w.contains(at("2024-03-01T00:00:00Z")));
        assert!(!w.contains(at("2024-03-02T00:00:00Z")));
        assert!(!w.contains(at("2024-02-29T23:59:59Z")));
        assert!(TimeWindow::new(Some(at("2024-03-02T00:00:00Z")), Some(at("2024-03-01T00:00:00Z"))).is_err());
    }
}
