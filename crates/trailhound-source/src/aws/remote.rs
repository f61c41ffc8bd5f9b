//! Reading trail buckets, LookupEvents and Athena tables for [`crate::read`]: discover, list the
//! window's day folders, fetch concurrently on the caller's runtime (or run the Athena plan's
//! queries), scan on rayon as objects arrive.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use super::athena::{self, Pacing};
use super::lookup::{self, LookupOptions};
use super::s3::{ListCounts, ObjectRef, S3Options, Scope, TrailBucket};
use crate::cursor::Cursor;
use crate::input::{AthenaTable, Input, LookupRegions};
use crate::read::{Progress, ReadError, ReadOptions, ReadReport, Remote};
use crate::scan::{Fetched, ProblemBudget, ScanReport, Sink, delivery_batches, scan_objects};

type Absorb<'a, S> = dyn FnMut(ScanReport<S>, Option<DateTime<Utc>>, &mut ReadReport) + 'a;

/// Reads the remote sources of one read.
pub(crate) struct Reader<'a, S> {
    pub options: &'a ReadOptions,
    pub remote: &'a Remote<'a>,
    pub make: &'a (dyn Fn() -> S + Sync),
    pub progress: &'a dyn Progress,
    pub budget: &'a ProblemBudget,
}

impl<S: Sink> Reader<'_, S> {
    /// Reads one remote input into `absorb`.
    pub fn input(
        &self,
        input: &Input,
        width: chrono::Duration,
        absorb: &mut Absorb<'_, S>,
        report: &mut ReadReport,
    ) -> Result<(), ReadError> {
        match input {
            Input::S3 { bucket, prefix } => self.bucket(bucket, prefix, width, absorb, report),
            Input::Lookup(regions) => {
                let scanned = self.lookup(regions, report)?;
                absorb(scanned, None, report);
                Ok(())
            }
            Input::Athena(table) => self.athena(table, absorb, report),
            Input::Path(_) | Input::Stdin => Ok(()),
        }
    }

    /// Scans what arrives on `objects` until its sender is done.
    fn scan(&self, mut objects: tokio::sync::mpsc::Receiver<Fetched>) -> ScanReport<S> {
        scan_objects(
            std::iter::from_fn(move || objects.blocking_recv()),
            &self.options.scan,
            self.make,
            &|_| self.progress.read(),
            self.budget,
        )
    }

    /// The cursors of `source` from the last run, keyed by their scope.
    fn cursors_of(&self, source: &str) -> BTreeMap<String, String> {
        self.options
            .since
            .as_ref()
            .map(|all| {
                all.iter()
                    .filter(|((s, _), _)| s == source)
                    .map(|((_, key), value)| (key.clone(), value.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A trail bucket: discover, then day by day (in time order, across accounts and regions)
    /// list, batch by delivery hour, fetch and scan.
    fn bucket(
        &self,
        bucket: &str,
        prefix: &str,
        width: chrono::Duration,
        absorb: &mut Absorb<'_, S>,
        driven: &mut ReadReport,
    ) -> Result<(), ReadError> {
        let source = source_name(bucket, prefix);
        let remote = &self.options.remote;
        let options = S3Options {
            window: self.options.scan.window,
            delivery_lag: self.options.scan.delivery_lag,
            accounts: remote.accounts.clone(),
            regions: remote.regions.clone(),
            concurrency: remote.concurrency,
            cursors: self.cursors_of(&source),
        };
        let rt = self.remote.runtime;
        let trail = rt.block_on(TrailBucket::open(self.remote.aws, bucket, prefix))?;
        let listing = rt.block_on(trail.discover(&options))?;
        if listing.scopes.is_empty() {
            tracing::warn!("{source}: no CloudTrail logs here (no AWSLogs/ACCOUNT/CloudTrail/REGION/ folder matches)");
        }
        if !listing.layout && !trail.is_object() {
            tracing::warn!(
                "{source}: no AWSLogs/ folder under this prefix: listing it whole and pruning by file names"
            );
        }
        let scopes = Arc::new(listing.scopes);
        // Day folders to read, each with the scopes that have it.
        let mut days: BTreeMap<Option<NaiveDate>, Vec<usize>> = BTreeMap::new();
        if listing.layout {
            for (index, scope) in scopes.iter().enumerate() {
                for day in rt.block_on(trail.days(scope, &options))? {
                    days.entry(Some(day)).or_default().push(index);
                }
            }
        } else {
            days.insert(None, vec![0]);
        }
        let options = Arc::new(options);
        let lag = self.options.scan.delivery_lag;
        let day_list: Vec<(Option<NaiveDate>, Vec<usize>)> = days.into_iter().collect();
        let mut already_read = 0;
        for (position, (day, indexes)) in day_list.iter().enumerate() {
            let objects = rt.block_on(list_concurrently(&trail, &scopes, indexes, *day, &options))?;
            let mut kept = Vec::new();
            for (objects, counts) in objects {
                driven.stats.files_found += counts.found;
                driven.stats.files_pruned += counts.pruned;
                driven.stats.digests_skipped += counts.digests;
                already_read += counts.already_read;
                kept.extend(objects);
            }
            let (undated, dated) = delivery_batches(kept, |o| Path::new(&o.key), lag, width);
            // The next day folder holds nothing delivered before its midnight.
            let next_day = day_list
                .get(position + 1)
                .and_then(|(d, _)| *d)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc() - lag);
            let count = dated.len();
            let mut batches = std::iter::once((undated, None))
                .chain(
                    dated
                        .into_iter()
                        .enumerate()
                        .map(|(i, (objects, watermark))| (objects, if i + 1 == count { next_day } else { watermark })),
                )
                .filter(|(objects, _)| !objects.is_empty());
            // The next two batches are fetched while this one is scanned and absorbed (their objects
            // wait in their channels, at most `concurrency` each, until their turn): without it
            // the fetches stop at each hour's end, and a read from S3 is mostly waiting.
            let fetch = |objects: Vec<_>| {
                self.progress.planned(objects.len() as u64);
                trail.fetch(rt, objects, &scopes, remote.concurrency, 2)
            };
            let mut ahead = std::collections::VecDeque::new();
            loop {
                while ahead.len() < FETCH_AHEAD
                    && let Some((objects, watermark)) = batches.next()
                {
                    ahead.push_back((fetch(objects), watermark));
                }
                let Some((fetching, watermark)) = ahead.pop_front() else {
                    break;
                };
                let report = self.scan(fetching);
                absorb(report, watermark, driven);
            }
        }
        let c = &trail.counters;
        let get = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
        let again = if already_read > 0 {
            format!(", {already_read} read by the last run skipped")
        } else {
            String::new()
        };
        driven.notes.push(format!(
            "{source}: {} accounts/regions, {} day folders; {} list requests, {} objects fetched ({:.1} MB){again}, {} failed, {} retried",
            scopes.len(),
            day_list.len(),
            get(&c.list_requests),
            get(&c.objects_fetched),
            get(&c.bytes_fetched) as f64 / 1e6,
            get(&c.objects_failed),
            get(&c.retries),
        ));
        driven.transient_failures += get(&c.transient_failures);
        for (key, value) in trail.cursors() {
            driven.cursors.insert((source.clone(), key), value);
        }
        Ok(())
    }

    /// LookupEvents in the regions asked for.
    fn lookup(&self, regions: &LookupRegions, driven: &mut ReadReport) -> Result<ScanReport<S>, ReadError> {
        let rt = self.remote.runtime;
        let regions = match regions {
            LookupRegions::Default => vec![self.remote.aws.region().to_string()],
            LookupRegions::All => rt.block_on(self.remote.aws.enabled_regions())?,
            LookupRegions::List(list) => list.clone(),
        };
        let window = self.options.scan.window;
        let oldest = Utc::now() - chrono::Duration::days(lookup::RETENTION_DAYS);
        if window.since.is_none_or(|since| since < oldest) {
            tracing::info!("lookup: LookupEvents keeps management events of the last 90 days only");
        }
        let mut cursors = BTreeMap::new();
        let mut seen = BTreeMap::new();
        for (region, text) in self.cursors_of("lookup") {
            let cursor = Cursor::parse(&text);
            if let Some(time) = trailhound_event::parse_event_time(&cursor.position) {
                cursors.insert(region.clone(), time);
                seen.insert(region, cursor.seen);
            }
        }
        let read = lookup::read(
            self.remote.aws,
            rt,
            regions.clone(),
            LookupOptions {
                window,
                cursors,
                seen,
                ..LookupOptions::default()
            },
        );
        let report = self.scan(read.events);
        let latest = rt
            .block_on(read.latest)
            .map_err(|e| ReadError::Remote(format!("LookupEvents reader: {e}")))?;
        let c = &read.counters;
        let get = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
        driven.notes.push(format!(
            "lookup: {} regions; {} requests ({} throttled), {} events, {} read by the last run skipped",
            regions.len(),
            get(&c.requests),
            get(&c.throttled),
            get(&c.events),
            get(&c.already_read),
        ));
        for (region, (time, seen)) in latest {
            let cursor = Cursor {
                position: time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                seen,
            };
            driven.cursors.insert(("lookup".to_string(), region), cursor.to_text());
        }
        Ok(report)
    }
}

impl<S: Sink> Reader<'_, S> {
    /// An Athena table: the plan's queries, their rows merged in event-time order and scanned
    /// batch by batch, each with its watermark.
    fn athena(
        &self,
        table: &AthenaTable,
        absorb: &mut Absorb<'_, S>,
        driven: &mut ReadReport,
    ) -> Result<(), ReadError> {
        let name = Input::Athena(table.clone()).describe();
        let options = &self.options.athena;
        let Some(plan) = options.plans.get(&name) else {
            return Err(ReadError::Remote(format!(
                "{name}: no query plan was made for this source"
            )));
        };
        driven.notes.extend(plan.notes.iter().cloned());
        let rt = self.remote.runtime;
        let started = std::time::Instant::now();
        let mut read = athena::read(
            self.remote.aws,
            rt,
            table,
            plan,
            options.output.clone(),
            Pacing::default(),
            self.budget.shown.clone(),
        );
        while let Some(batch) = read.batches.blocking_recv() {
            self.progress.planned(batch.objects.len() as u64);
            let report = self.scan_batch(batch.objects);
            absorb(report, batch.watermark, driven);
        }
        let done = rt
            .block_on(read.done)
            .map_err(|e| ReadError::Remote(format!("{name}: Athena reader: {e}")))?;
        let c = &read.counters;
        let get = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
        let bad = get(&c.bad_rows);
        driven.problems_total += bad;
        driven.stats.records_invalid += bad;
        let scanned = get(&c.bytes_scanned) as f64;
        let finished = done.map_err(|message| {
            // What the queries that finished cost is billed all the same: say so.
            ReadError::Remote(if scanned > 0.0 {
                format!(
                    "{message}; Athena had scanned {} (${:.4})",
                    crate::decimal_size(scanned),
                    athena::cost(scanned)
                )
            } else {
                message
            })
        })?;
        let ids = finished.queries;
        driven
            .cursors
            .insert((name.clone(), plan.cursor.key.clone()), finished.cursor.to_text());
        let again = match get(&c.already_read) {
            0 => String::new(),
            n => format!(", {n} read by the last run skipped"),
        };
        let unmeasured = match get(&c.unmeasured) {
            0 => String::new(),
            n => format!(" ({n} queries gave no statistics)"),
        };
        driven.notes.push(format!(
            "{name}: {} queries ({}); {} rows in {} pages ({bad} bad, {} returned by two queries{again}); {} requests ({} throttled); {:.1} s",
            ids.len(),
            ids.join(", "),
            get(&c.rows),
            get(&c.pages),
            get(&c.duplicates),
            get(&c.requests),
            get(&c.throttled),
            started.elapsed().as_secs_f64(),
        ));
        driven.notes.push(format!(
            "{name}: Athena scanned {}{unmeasured}: ${:.4} at ${} per TB",
            crate::decimal_size(scanned),
            athena::cost(scanned),
            crate::ATHENA_PRICE_PER_TB
        ));
        Ok(())
    }

    /// Scans one batch of objects (already in memory).
    fn scan_batch(&self, objects: Vec<Fetched>) -> ScanReport<S> {
        scan_objects(
            objects.into_iter(),
            &self.options.scan,
            self.make,
            &|_| self.progress.read(),
            self.budget,
        )
    }
}

/// Batches of a trail bucket being fetched at once: the one scanned and the next two. Each holds
/// at most `2 x concurrency` objects (in flight, and fetched but not yet scanned).
const FETCH_AHEAD: usize = 3;

/// Lists the day folder of several scopes at once.
async fn list_concurrently(
    trail: &TrailBucket,
    scopes: &Arc<Vec<Scope>>,
    indexes: &[usize],
    day: Option<NaiveDate>,
    options: &Arc<S3Options>,
) -> Result<Vec<(Vec<ObjectRef>, ListCounts)>, ReadError> {
    let permits = Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (order, &index) in indexes.iter().enumerate() {
        let (trail, scopes, options, permits) = (trail.clone(), scopes.clone(), options.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (order, trail.list_day(&scopes, index, day, &options).await)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (order, listed) = joined.map_err(|e| ReadError::Remote(format!("listing task: {e}")))?;
        results.push((order, listed?));
    }
    results.sort_by_key(|(order, _)| *order);
    Ok(results.into_iter().map(|(_, r)| r).collect())
}

/// How cursors name an S3 source: `s3://bucket/prefix`.
pub fn source_name(bucket: &str, prefix: &str) -> String {
    format!("s3://{bucket}/{}", prefix.trim_start_matches('/'))
}
