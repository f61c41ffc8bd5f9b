//! Turning input paths into the list of files to read, and dating files by their delivery names.
//!
//! CloudTrail names each object `<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<random>.json.gz`
//! under `.../<region>/YYYY/MM/DD/`: the time it was delivered. Events in it happened shortly
//! before. A file whose date puts it wholly outside the window is never opened.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};

use crate::window::TimeWindow;

/// What a file's path says about when its events happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileTime {
    /// Delivery time from the file name.
    Delivered(DateTime<Utc>),
    /// Delivery day from a `YYYY/MM/DD` folder.
    Day(NaiveDate),
    Unknown,
}

/// Dates a file from its name, else from its folders.
pub fn file_time(path: &Path) -> FileTime {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    for part in name.split('_') {
        if part.len() == 14
            && part.as_bytes()[8] == b'T'
            && part.ends_with('Z')
            && let Ok(time) = NaiveDateTime::parse_from_str(part, "%Y%m%dT%H%MZ")
        {
            return FileTime::Delivered(time.and_utc());
        }
    }
    let parts: Vec<&str> = path
        .parent()
        .into_iter()
        .flat_map(|p| p.iter())
        .filter_map(|p| p.to_str())
        .collect();
    for window in parts.windows(3).rev() {
        if let [y, m, d] = window
            && y.len() == 4
            && m.len() == 2
            && d.len() == 2
            && let (Ok(y), Ok(m), Ok(d)) = (y.parse(), m.parse(), d.parse())
            && let Some(date) = NaiveDate::from_ymd_opt(y, m, d)
        {
            return FileTime::Day(date);
        }
    }
    FileTime::Unknown
}

/// `at - by`, or the earliest time there is when that is before it (never an overflow).
pub(crate) fn earlier(at: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    at.checked_sub_signed(by).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// `at + by`, or the latest time there is when that is after it.
pub(crate) fn later(at: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    at.checked_add_signed(by).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl FileTime {
    /// Whether the file could hold events inside `window`, given that events reach a file up to
    /// `lag` before its delivery time (and a few minutes after, for clock skew).
    pub fn may_overlap(&self, window: &TimeWindow, lag: Duration) -> bool {
        let skew = Duration::minutes(15);
        match *self {
            FileTime::Delivered(at) => window.overlaps(earlier(at, lag), later(at, skew)),
            FileTime::Day(day) => {
                let start = day.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
                match start {
                    Some(start) => window.overlaps(earlier(start, lag), later(start, Duration::days(1) + skew)),
                    None => true,
                }
            }
            FileTime::Unknown => true,
        }
    }
}

/// CloudTrail digest files live under `CloudTrail-Digest/` and hold no events.
pub(crate) fn is_digest_path(path: &Path) -> bool {
    path.to_string_lossy().contains("CloudTrail-Digest")
}

/// Whether `path` lies in another AWS service's folder of the delivery layout:
/// `AWSLogs/[ORG-ID/]ACCOUNT/SERVICE/...` where SERVICE is not CloudTrail's (`CloudTrail`,
/// `CloudTrail-Insight`...): VPC flow logs, load balancer and S3 access logs, Config snapshots
/// and history share the bucket and the layout with a trail's logs.
pub fn is_other_service_path(path: &Path) -> bool {
    let parts: Vec<String> = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let Some(logs) = parts.iter().rposition(|p| p == "AWSLogs") else {
        return false;
    };
    let mut rest = parts.iter().skip(logs + 1);
    let mut next = rest.next();
    if next.is_some_and(|p| p.starts_with("o-")) {
        next = rest.next();
    }
    let is_account = next.is_some_and(|p| p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit()));
    // The service folder, when the file lies below it (not the file itself).
    let service = rest.next().filter(|_| rest.next().is_some());
    is_account && service.is_some_and(|s| !s.starts_with("CloudTrail"))
}

/// Files under `root` (or `root` itself), sorted so delivery order is roughly time order.
/// Errors walking a folder are returned beside the files found.
pub(crate) fn walk(root: &Path) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    if !root.is_dir() {
        return (vec![root.to_path_buf()], Vec::new());
    }
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for entry in walkdir::WalkDir::new(root).follow_links(true).sort_by_file_name() {
        match entry {
            Ok(entry) if entry.file_type().is_file() => {
                let name = entry.file_name().to_string_lossy();
                if is_event_file_name(&name) || crate::archive::kind(&name).is_some() {
                    files.push(entry.into_path());
                }
            }
            Ok(_) => {}
            Err(err) => {
                let path = err.path().map(Path::to_path_buf).unwrap_or_else(|| root.to_path_buf());
                errors.push((path, err.to_string()));
            }
        }
    }
    (files, errors)
}

/// In a folder, only JSON-ish files are read (`.json`, `.json.gz`, `.jsonl`, `.ndjson`, `.gz`).
/// A file named on the command line is always read.
pub(crate) fn is_event_file_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        ".json",
        ".json.gz",
        ".jsonl",
        ".jsonl.gz",
        ".ndjson",
        ".ndjson.gz",
        ".gz",
    ]
    .iter()
    .any(|ext| name.ends_with(ext))
}

#[cfg(test)]
mod tests {
    use super::*;
    use trailhound_event::parse_event_time;

    fn at(text: &str) -> DateTime<Utc> {
        parse_event_time(text).expect("time")
    }

    #[test]
    fn other_services_folders_are_told_from_cloudtrails() {
        let other = |p: &str| is_other_service_path(Path::new(p));
        for path in [
            "logs/AWSLogs/111122223333/vpcflowlogs/us-east-1/2024/01/01/x.log.gz",
            "AWSLogs/o-abc123def4/111122223333/elasticloadbalancing/us-east-1/2024/01/01/x.log.gz",
            "b/AWSLogs/111122223333/Config/us-east-1/2024/1/1/ConfigSnapshot/x.json.gz",
            "AWSLogs/111122223333/GuardDuty/us-east-1/2024/01/01/x.jsonl.gz",
        ] {
            assert!(other(path), "{path}");
        }
        for path in [
            "AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/01/x.json.gz",
            "AWSLogs/o-abc123def4/111122223333/CloudTrail-Insight/us-east-1/2024/01/01/x.json.gz",
            // Not the delivery layout: read as given.
            "AWSLogs/export/vpcflowlogs/x.json.gz",
            "AWSLogs/111122223333/x.json.gz",
            "vpcflowlogs/x.json.gz",
        ] {
            assert!(!other(path), "{path}");
        }
    }

    #[test]
    fn dates_from_names_and_folders() {
        let p = Path::new(
            "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T1205Z_abcDEF0123456789.json.gz",
        );
        assert_eq!(file_time(p), FileTime::Delivered(at("2024-03-01T12:05:00Z")));
        let p = Path::new("logs/2024/03/01/events.json");
        assert_eq!(
            file_time(p),
            FileTime::Day(NaiveDate::from_ymd_opt(2024, 3, 1).expect("date"))
        );
        assert_eq!(file_time(Path::new("logs/2024/13/01/x.json")), FileTime::Unknown);
        assert_eq!(file_time(Path::new("x.json")), FileTime::Unknown);
    }

    #[test]
    fn pruning_allows_for_delivery_lag() {
        let lag = Duration::hours(1);
        let window =
            TimeWindow::new(Some(at("2024-03-01T12:00:00Z")), Some(at("2024-03-01T13:00:00Z"))).expect("window");
        let delivered = |t: &str| FileTime::Delivered(at(t));
        assert!(delivered("2024-03-01T12:05:00Z").may_overlap(&window, lag));
        assert!(
            delivered("2024-03-01T13:55:00Z").may_overlap(&window, lag),
            "late delivery of events before 13:00"
        );
        assert!(!delivered("2024-03-01T14:05:00Z").may_overlap(&window, lag));
        assert!(!delivered("2024-03-01T11:40:00Z").may_overlap(&window, lag));
        assert!(
            delivered("2024-03-01T11:50:00Z").may_overlap(&window, lag),
            "clock skew"
        );
        let day = |d: u32| FileTime::Day(NaiveDate::from_ymd_opt(2024, 3, d).expect("date"));
        assert!(day(1).may_overlap(&window, lag));
        assert!(!day(3).may_overlap(&window, lag));
        assert!(!day(2).may_overlap(&window, lag));
        assert!(FileTime::Unknown.may_overlap(&window, lag));
    }
}
