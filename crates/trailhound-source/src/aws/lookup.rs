//! Reading management events with CloudTrail LookupEvents, region by region.
//!
//! LookupEvents keeps only management events, and only for 90 days. It allows 2 requests per
//! second per account and region: each region's reader spaces its requests (retries included)
//! at least [`LookupOptions::interval`] apart, and backs off on ThrottlingException. Each page's
//! `CloudTrailEvent` strings go to the scanner as NDJSON named `lookup:REGION`.
//!
//! An incremental read asks again for the [`OVERLAP`] before the region's cursor (events are
//! indexed minutes late) and skips the events the last run read there, by `eventID`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration as StdDuration;

use crate::cursor::{MAX_SEEN, OVERLAP};
use crate::scan::Fetched;
use crate::window::TimeWindow;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_smithy_types::DateTime as AwsTime;
use chrono::{DateTime, Duration, Utc};
use tokio::sync::mpsc;

use trailhound_aws::Aws;
use trailhound_aws::{AwsError, classify, is_throttling_code};

/// How far back LookupEvents reaches.
pub const RETENTION_DAYS: i64 = 90;

#[derive(Debug, Clone)]
pub struct LookupOptions {
    pub window: TimeWindow,
    /// Least time between two requests to one region (500 ms: 2 per second).
    pub interval: StdDuration,
    /// Attempts per page when throttled or unreachable.
    pub attempts: u32,
    /// First backoff after a throttle; doubled each time.
    pub backoff: StdDuration,
    /// Incremental reads: per region, the latest event time read before.
    pub cursors: BTreeMap<String, DateTime<Utc>>,
    /// Per region, the event ids the last run read in the overlap before its cursor.
    pub seen: BTreeMap<String, BTreeSet<String>>,
}

impl Default for LookupOptions {
    fn default() -> LookupOptions {
        LookupOptions {
            window: TimeWindow::default(),
            interval: StdDuration::from_millis(500),
            attempts: 8,
            backoff: StdDuration::from_secs(1),
            cursors: BTreeMap::new(),
            seen: BTreeMap::new(),
        }
    }
}

/// Requests and events, for the run summary.
#[derive(Debug, Default)]
pub struct LookupCounters {
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
    pub events: AtomicU64,
    /// Results without a CloudTrailEvent document.
    pub without_document: AtomicU64,
    /// Events in the overlap that the last run read, skipped.
    pub already_read: AtomicU64,
}

/// What a region's read ends with: the latest event time read, and the ids of the events read
/// in the overlap before it.
pub type RegionRead = (DateTime<Utc>, BTreeSet<String>);

/// A running read of several regions.
pub struct LookupRead {
    pub events: mpsc::Receiver<Fetched>,
    pub counters: Arc<LookupCounters>,
    /// Per region: the latest event time read and the ids of the events read in the overlap
    /// before it, once the read ends (for cursors); regions that failed are absent.
    pub latest: tokio::task::JoinHandle<BTreeMap<String, RegionRead>>,
}

/// The window LookupEvents is asked for in `region`: the hunt's window, starting [`OVERLAP`]
/// before the region's cursor, and never older than the retention.
pub fn request_window(
    options: &LookupOptions,
    region: &str,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, Option<DateTime<Utc>>) {
    let oldest = now - Duration::days(RETENTION_DAYS);
    let mut start = options.window.since.unwrap_or(oldest).max(oldest);
    if let Some(cursor) = options.cursors.get(region) {
        start = start.max(cursor.checked_sub_signed(OVERLAP).unwrap_or(*cursor));
    }
    (start, options.window.until)
}

/// Starts reading `regions` on `runtime`; pages arrive on the returned channel.
pub fn read(aws: &Aws, runtime: &tokio::runtime::Handle, regions: Vec<String>, options: LookupOptions) -> LookupRead {
    let (tx, rx) = mpsc::channel(16);
    let counters = Arc::new(LookupCounters::default());
    let mut tasks = Vec::new();
    for region in regions {
        let client = aws.cloudtrail(&region, false);
        let tx = tx.clone();
        let counters = counters.clone();
        let options = options.clone();
        tasks.push(runtime.spawn(async move {
            let latest = read_region(&client, &region, &options, &tx, &counters).await;
            (region, latest)
        }));
    }
    let latest = runtime.spawn(async move {
        let mut latest = BTreeMap::new();
        for task in tasks {
            if let Ok((region, Some(read))) = task.await {
                latest.insert(region, read);
            }
        }
        latest
    });
    LookupRead {
        events: rx,
        counters,
        latest,
    }
}

/// Pages through one region. Returns the latest event time read with the ids read in the
/// overlap before it, or `None` if the read failed (reported on the channel) or found nothing.
async fn read_region(
    client: &aws_sdk_cloudtrail::Client,
    region: &str,
    options: &LookupOptions,
    tx: &mpsc::Sender<Fetched>,
    counters: &LookupCounters,
) -> Option<(DateTime<Utc>, BTreeSet<String>)> {
    let empty = BTreeSet::new();
    let seen = options.seen.get(region).unwrap_or(&empty);
    let mut read: Vec<(DateTime<Utc>, String)> = Vec::new();
    let name = format!("lookup:{region}");
    let (start, end) = request_window(options, region, Utc::now());
    let mut ticker = tokio::time::interval(options.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut token: Option<String> = None;
    let mut latest: Option<DateTime<Utc>> = options.cursors.get(region).copied();
    loop {
        let mut attempt = 0;
        let page = loop {
            ticker.tick().await;
            counters.requests.fetch_add(1, Ordering::Relaxed);
            let result = client
                .lookup_events()
                .start_time(AwsTime::from_secs(start.timestamp()))
                .set_end_time(end.map(|e| AwsTime::from_secs(e.timestamp())))
                .max_results(50)
                .set_next_token(token.clone())
                .send()
                .await;
            match result {
                Ok(page) => break page,
                Err(err) => {
                    let throttled = err.code().is_some_and(is_throttling_code)
                        || err.raw_response().is_some_and(|r| r.status().as_u16() == 429);
                    let error = classify(&err, &name, "cloudtrail:LookupEvents", region);
                    attempt += 1;
                    if (throttled || error.is_transient()) && attempt < options.attempts {
                        if throttled {
                            counters.throttled.fetch_add(1, Ordering::Relaxed);
                        }
                        let wait = options.backoff.saturating_mul(1 << (attempt - 1).min(5));
                        tracing::debug!("{name}: throttled, waiting {wait:?}");
                        tokio::time::sleep(wait.min(StdDuration::from_secs(30))).await;
                        continue;
                    }
                    let message = if throttled {
                        AwsError::Throttled {
                            resource: name.clone(),
                            action: "cloudtrail:LookupEvents".into(),
                        }
                        .to_string()
                    } else {
                        error.to_string()
                    };
                    let _ = tx
                        .send(Fetched::Failed {
                            name: name.clone(),
                            message,
                        })
                        .await;
                    return None;
                }
            }
        };
        let mut bytes = Vec::new();
        for event in page.events() {
            let time = event.event_time().and_then(to_chrono);
            if let Some(time) = time {
                latest = Some(latest.map_or(time, |l| l.max(time)));
            }
            if let Some(id) = event.event_id() {
                if seen.contains(id) {
                    counters.already_read.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                read.extend(time.map(|t| (t, id.to_string())));
            }
            match event.cloud_trail_event() {
                Some(document) => {
                    counters.events.fetch_add(1, Ordering::Relaxed);
                    bytes.extend_from_slice(document.trim().as_bytes());
                    bytes.push(b'\n');
                }
                None => {
                    counters.without_document.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if !bytes.is_empty()
            && tx
                .send(Fetched::Object {
                    name: name.clone(),
                    bytes,
                })
                .await
                .is_err()
        {
            return None;
        }
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => {
                let latest = latest?;
                let cut = latest.checked_sub_signed(OVERLAP).unwrap_or(latest);
                // The last run's ids still in the overlap are remembered with this run's.
                let mut ids: BTreeSet<String> = read
                    .into_iter()
                    .filter(|(time, _)| *time >= cut)
                    .map(|(_, id)| id)
                    .collect();
                if options.cursors.get(region).is_some_and(|c| *c >= cut) {
                    ids.extend(seen.iter().cloned());
                }
                if ids.len() > MAX_SEEN {
                    ids.clear();
                }
                return Some((latest, ids));
            }
        }
    }
}

fn to_chrono(time: &AwsTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(time.secs(), time.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_starts_after_the_cursor_and_within_retention() {
        let now = trailhound_event::parse_event_time("2026-12-01T00:00:00Z").unwrap_or_default();
        let mut options = LookupOptions::default();
        let (start, end) = request_window(&options, "us-east-1", now);
        assert_eq!(start, now - Duration::days(90));
        assert_eq!(end, None);
        options.window.since = Some(now - Duration::days(400));
        assert_eq!(request_window(&options, "us-east-1", now).0, now - Duration::days(90));
        options.window.since = Some(now - Duration::days(1));
        options.cursors.insert("us-east-1".into(), now - Duration::days(2));
        assert_eq!(
            request_window(&options, "us-east-1", now).0,
            now - Duration::days(1),
            "a cursor before the window"
        );
        options.cursors.insert("us-east-1".into(), now - Duration::hours(1));
        options.window.since = Some(now - Duration::days(1));
        let (start, _) = request_window(&options, "us-east-1", now);
        assert_eq!(
            start,
            now - Duration::hours(1) - OVERLAP,
            "the overlap before the cursor"
        );
        assert_eq!(request_window(&options, "eu-west-1", now).0, now - Duration::days(1));
    }
}
