//! Incremental cursors with an overlap.
//!
//! A cursor alone (the last key listed, the latest event time read) misses what arrives out of
//! order: two objects of one region delivered in the same minute sort by their random suffix,
//! and LookupEvents indexes some events minutes late. So each run reads again the last
//! [`OVERLAP`] before its cursor and skips what the last run already read there, which the
//! cursor remembers (object keys, event ids).
//!
//! Stored as text in the case store's `cursors` table: a plain position (what earlier versions
//! wrote, still read), or `v2` followed by one line per value, each with `%` and line breaks
//! percent-escaped, so no value can pose as another.

use std::collections::BTreeSet;

use chrono::Duration;

/// How far before its cursor a run reads again. CloudTrail delivers a region's files about
/// every five minutes and LookupEvents shows most events within fifteen.
pub const OVERLAP: Duration = Duration::minutes(15);

/// How far before its cursor an `athena://` read reads again: an event is in the table once its
/// file is delivered, mostly within minutes but not always, and reading again costs nothing
/// within the day partition every run scans anyway.
pub const ATHENA_OVERLAP: Duration = Duration::hours(1);

/// Most values remembered as read; past it nothing is remembered and the overlap is read
/// again whole (the case store still reports each finding once).
pub const MAX_SEEN: usize = 50_000;

/// Where a run stopped, and what it read in the overlap before that.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    /// An object key, or an event time (RFC 3339).
    pub position: String,
    /// Object keys or event ids read at or after `position` minus [`OVERLAP`].
    pub seen: BTreeSet<String>,
}

impl Cursor {
    pub fn parse(text: &str) -> Cursor {
        let Some(rest) = text.strip_prefix("v2\n") else {
            return Cursor {
                position: text.to_string(),
                seen: BTreeSet::new(),
            };
        };
        let mut lines = rest.split('\n').map(unescape);
        let position = lines.next().unwrap_or_default();
        Cursor {
            position,
            seen: lines.filter(|l| !l.is_empty()).collect(),
        }
    }

    pub fn to_text(&self) -> String {
        if self.seen.is_empty() {
            return self.position.clone();
        }
        let mut out = String::from("v2\n");
        out.push_str(&escape(&self.position));
        for value in &self.seen {
            out.push('\n');
            out.push_str(&escape(value));
        }
        out
    }
}

fn escape(value: &str) -> String {
    value.replace('%', "%25").replace('\n', "%0A").replace('\r', "%0D")
}

fn unescape(value: &str) -> String {
    value.replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_cursor_of_an_earlier_version_is_read_as_its_position() {
        let cursor = Cursor::parse("AWSLogs/1/CloudTrail/us-east-1/2024/03/01/k.json.gz");
        assert_eq!(cursor.position, "AWSLogs/1/CloudTrail/us-east-1/2024/03/01/k.json.gz");
        assert!(cursor.seen.is_empty());
        assert_eq!(cursor.to_text(), "AWSLogs/1/CloudTrail/us-east-1/2024/03/01/k.json.gz");
    }

    /// A key holding a line break cannot add another key to what is remembered as read.
    #[test]
    fn a_hostile_key_cannot_pose_as_another_key() {
        let cursor = Cursor {
            position: "p%0Ax".into(),
            seen: ["a\nb".to_string(), "100%".to_string(), "c\r".to_string()].into(),
        };
        let back = Cursor::parse(&cursor.to_text());
        assert_eq!(back, cursor);
        assert!(!back.seen.contains("b"));
    }
}
