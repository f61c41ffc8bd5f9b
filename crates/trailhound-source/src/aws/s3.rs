//! Reading a trail bucket: discover accounts and regions in the CloudTrail layout, list only the
//! day prefixes inside the time window, fetch objects concurrently.
//!
//! The layout is `[PREFIX/]AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/file.json.gz`.
//! Accounts, organizations and regions are found by listing with a `/` delimiter (one request
//! per level), never by listing the bucket. CloudTrail Insights folders (`CloudTrail-Insight/`)
//! are read beside the trail's; digest folders (`CloudTrail-Digest/`) are never entered. A prefix
//! with no `AWSLogs/` under it is listed flat and pruned by file names. This module lists and
//! fetches; scanning is `crate::scan`'s.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::cursor::{Cursor, MAX_SEEN, OVERLAP};
use crate::discover::{FileTime, file_time};
use crate::scan::Fetched;
use crate::window::TimeWindow;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use tokio::sync::{Semaphore, mpsc};

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use trailhound_aws::Aws;
use trailhound_aws::{AwsError, classify};

/// Requests made and bytes fetched, for the run summary and the tests' pruning checks.
#[derive(Debug, Default)]
pub struct Counters {
    pub list_requests: AtomicU64,
    pub get_requests: AtomicU64,
    pub objects_fetched: AtomicU64,
    pub objects_failed: AtomicU64,
    pub bytes_fetched: AtomicU64,
    /// Objects fetched again after a transient failure.
    pub retries: AtomicU64,
    /// Objects given up on after transient failures (worth retrying the whole run).
    pub transient_failures: AtomicU64,
}

/// One account and region of the layout: `base` is the prefix ending in `REGION/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub account: String,
    pub region: String,
    pub organization: Option<String>,
    pub base: String,
    /// Deeper path the user gave (`2024/03/`), which days must start with.
    pub narrowed: String,
    /// A `CloudTrail-Insight/` folder (CloudTrail Insights events) rather than the trail's.
    pub insights: bool,
}

impl Scope {
    /// The cursor key of this scope: `ACCOUNT/REGION` (`ACCOUNT/REGION/insights` for an
    /// Insights folder).
    pub fn cursor_key(&self) -> String {
        if self.insights {
            format!("{}/{}/insights", self.account, self.region)
        } else {
            format!("{}/{}", self.account, self.region)
        }
    }
}

/// The folders after an account that hold events: the trail's, and CloudTrail Insights'.
const EVENT_FOLDERS: [&str; 2] = ["CloudTrail", "CloudTrail-Insight"];

/// A listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub key: String,
    pub size: u64,
    /// Index of its scope in [`Listing::scopes`] (flat listings have one scope).
    pub scope: usize,
}

/// What discovery found.
#[derive(Debug, Clone)]
pub struct Listing {
    pub scopes: Vec<Scope>,
    /// False when the prefix holds no `AWSLogs/` layout and is read flat.
    pub layout: bool,
}

/// How to narrow the read.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    pub window: TimeWindow,
    pub delivery_lag: Duration,
    /// Only these accounts / regions (empty: all).
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    /// Objects fetched at once.
    pub concurrency: usize,
    /// Incremental reads: per scope (`ACCOUNT/REGION`, or `flat`) the cursor text of the last
    /// run ([`Cursor`]: the last key listed, and the keys read in the overlap before it).
    pub cursors: BTreeMap<String, String>,
}

/// One scope's read, for its next cursor.
#[derive(Debug, Default)]
struct ScopeProgress {
    /// The greatest key listed.
    greatest: String,
    /// The least key that failed to fetch.
    failed: Option<String>,
    /// Keys read (or skipped as read by the last run) with their delivery times, within the
    /// overlap before the greatest one.
    read: Vec<(DateTime<Utc>, String)>,
}

/// Where a scope's listing starts again after `cursor`: [`OVERLAP`] before the delivery time of
/// the last key listed, as a `start-after` key for the folder of `day`; `None` lists the whole
/// folder (a day after the restart's). A key with no delivery time in its name (a flat
/// listing) restarts right after itself.
fn restart_after(position: &str, prefix: &str, day: Option<NaiveDate>) -> Option<String> {
    let FileTime::Delivered(at) = file_time(Path::new(position)) else {
        return position.starts_with(prefix).then(|| position.to_string());
    };
    let restart = at.checked_sub_signed(OVERLAP)?;
    let name = position.rsplit('/').next()?;
    let stem = &name[..name.find(&at.format("%Y%m%dT%H%MZ").to_string())?];
    match day {
        Some(day) if day > restart.date_naive() => None,
        _ => Some(format!("{prefix}{stem}{}", restart.format("%Y%m%dT%H%M"))),
    }
}

/// The day a scope's listing starts again from after `cursor`.
fn restart_day(cursor: &str) -> Option<NaiveDate> {
    match file_time(Path::new(&Cursor::parse(cursor).position)) {
        FileTime::Delivered(t) => Some(t.checked_sub_signed(OVERLAP).unwrap_or(t).date_naive()),
        FileTime::Day(d) => Some(d),
        FileTime::Unknown => None,
    }
}

/// A trail bucket opened for reading.
#[derive(Debug, Clone)]
pub struct TrailBucket {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    region: String,
    pub counters: Arc<Counters>,
    /// Per scope: the greatest key listed, and the least key that failed to fetch.
    progress: Arc<Mutex<BTreeMap<String, ScopeProgress>>>,
}

impl TrailBucket {
    /// Finds the bucket's region (GetBucketLocation) and checks it can be listed.
    pub async fn open(aws: &Aws, bucket: &str, prefix: &str) -> Result<TrailBucket, AwsError> {
        let uri = format!("s3://{bucket}");
        let probe = aws.s3(None);
        let region = match probe.get_bucket_location().bucket(bucket).send().await {
            Ok(out) => match out.location_constraint().map(|c| c.as_str().to_string()) {
                None => "us-east-1".to_string(),
                Some(c) if c.is_empty() => "us-east-1".to_string(),
                Some(c) if c == "EU" => "eu-west-1".to_string(),
                Some(c) => c,
            },
            Err(err) => match classify(&err, &uri, "s3:GetBucketLocation", aws.region()) {
                // Without GetBucketLocation, try the configured region; listing will tell.
                AwsError::AccessDenied { .. } => aws.region().to_string(),
                other => return Err(other),
            },
        };
        let mut prefix = prefix.trim_start_matches('/').to_string();
        if !prefix.is_empty() && !prefix.ends_with('/') && !looks_like_file(&prefix) {
            prefix.push('/');
        }
        Ok(TrailBucket {
            client: aws.s3(Some(&region)),
            bucket: bucket.to_string(),
            prefix,
            region,
            counters: Arc::default(),
            progress: Arc::default(),
        })
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// Whether the prefix names one object (`....json.gz`) rather than a folder.
    pub fn is_object(&self) -> bool {
        looks_like_file(&self.prefix)
    }

    pub fn uri(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, key)
    }

    /// The whole prefix as one scope, read without the layout.
    fn flat(&self) -> Listing {
        Listing {
            scopes: vec![Scope {
                account: String::new(),
                region: String::new(),
                organization: None,
                base: self.prefix.clone(),
                narrowed: String::new(),
                insights: false,
            }],
            layout: false,
        }
    }

    /// Discovers the accounts and regions under the prefix, narrowed by `options`.
    pub async fn discover(&self, options: &S3Options) -> Result<Listing, AwsError> {
        // One object (a Lambda's S3 notification): list just its key.
        if self.is_object() {
            return Ok(self.flat());
        }
        let parts: Vec<&str> = self.prefix.split('/').filter(|p| !p.is_empty()).collect();
        let (root, rest) = match parts.iter().position(|p| *p == "AWSLogs") {
            Some(i) => (format!("{}/", parts[..=i].join("/")), parts[i + 1..].to_vec()),
            None => {
                let children = self.list_folders(&self.prefix).await?;
                if children.iter().any(|c| c == "AWSLogs") {
                    (format!("{}AWSLogs/", self.prefix), Vec::new())
                } else {
                    return Ok(self.flat());
                }
            }
        };
        let mut accounts: Vec<(Option<String>, String, String)> = Vec::new(); // (org, account, prefix)
        let level1 = match rest.first() {
            Some(first) => vec![first.to_string()],
            None => self.list_folders(&root).await?,
        };
        let mut rest_after_account = &rest[rest.len().min(1)..];
        for name in level1 {
            if name.starts_with("o-") {
                let org_prefix = format!("{root}{name}/");
                let listed = match rest.get(1) {
                    Some(account) => {
                        rest_after_account = &rest[2..];
                        vec![account.to_string()]
                    }
                    None => self.list_folders(&org_prefix).await?,
                };
                for account in listed.into_iter().filter(|a| is_account_id(a)) {
                    let prefix = format!("{org_prefix}{account}/");
                    accounts.push((Some(name.clone()), account, prefix));
                }
            } else if is_account_id(&name) {
                let prefix = format!("{root}{name}/");
                accounts.push((None, name, prefix));
            }
        }
        accounts.retain(|(_, account, _)| options.accounts.is_empty() || options.accounts.contains(account));
        // After the account: CloudTrail/REGION/YYYY/MM/DD, and CloudTrail-Insight/ beside it
        // (one listing more an account; digests are never entered).
        let folders: Vec<&str> = match rest_after_account.first().copied() {
            None => EVENT_FOLDERS.to_vec(),
            Some(folder) if EVENT_FOLDERS.contains(&folder) => vec![folder],
            Some(_) => {
                return Ok(Listing {
                    scopes: Vec::new(),
                    layout: true,
                });
            }
        };
        let given_region = rest_after_account.get(1).map(|r| r.to_string());
        let narrowed = rest_after_account.get(2..).map(|p| p.join("/")).unwrap_or_default();
        let mut scopes = Vec::new();
        for (organization, account, prefix) in accounts {
            for folder in &folders {
                let trail_prefix = format!("{prefix}{folder}/");
                let regions = match &given_region {
                    Some(region) => vec![region.clone()],
                    None => self.list_folders(&trail_prefix).await?,
                };
                for region in regions {
                    if !options.regions.is_empty() && !options.regions.contains(&region) {
                        continue;
                    }
                    scopes.push(Scope {
                        account: account.clone(),
                        region: region.clone(),
                        organization: organization.clone(),
                        base: format!("{trail_prefix}{region}/"),
                        narrowed: if narrowed.is_empty() {
                            String::new()
                        } else {
                            format!("{narrowed}/")
                        },
                        insights: *folder != "CloudTrail",
                    });
                }
            }
        }
        Ok(Listing { scopes, layout: true })
    }

    /// The day folders of `scope` that may hold events in the window (and at or after the
    /// scope's cursor), in time order. A bounded window is turned into dates without listing;
    /// an open start is found by listing years, months and days.
    pub async fn days(&self, scope: &Scope, options: &S3Options) -> Result<Vec<NaiveDate>, AwsError> {
        let window = options.window;
        let lag = options.delivery_lag;
        let from_cursor = options
            .cursors
            .get(&scope.cursor_key())
            .and_then(|cursor| restart_day(cursor));
        let overlaps = |day: NaiveDate| {
            FileTime::Day(day).may_overlap(&window, lag)
                && from_cursor.is_none_or(|c| day >= c)
                && day_path(day).starts_with(&scope.narrowed)
        };
        let start = match (window.since, from_cursor) {
            (Some(since), cursor) => Some(cursor.map_or(since.date_naive(), |c| c.max(since.date_naive()))),
            (None, Some(cursor)) => Some(cursor),
            (None, None) => None,
        };
        let mut days = Vec::new();
        match start {
            Some(start) => {
                let end = window.until.unwrap_or_else(Utc::now) + Duration::days(1);
                let mut day = start - Duration::days(1);
                while day <= end.date_naive() {
                    if overlaps(day) {
                        days.push(day);
                    }
                    day += Duration::days(1);
                }
            }
            None => {
                for year in self.list_folders(&scope.base).await? {
                    let Ok(y) = year.parse::<i32>() else { continue };
                    if !dated_possible(&window, NaiveDate::from_ymd_opt(y, 12, 31)) {
                        continue;
                    }
                    for month in self.list_folders(&format!("{}{year}/", scope.base)).await? {
                        let Ok(m) = month.parse::<u32>() else { continue };
                        for day in self.list_folders(&format!("{}{year}/{month}/", scope.base)).await? {
                            if let Ok(d) = day.parse::<u32>()
                                && let Some(date) = NaiveDate::from_ymd_opt(y, m, d)
                                && overlaps(date)
                            {
                                days.push(date);
                            }
                        }
                    }
                }
            }
        }
        days.sort();
        Ok(days)
    }

    /// Lists one scope's objects of `day` (or the whole flat prefix when `day` is `None`),
    /// after the scope's cursor, dropping digests and objects named outside the window.
    /// Returns the objects kept and how many were found, pruned and digests.
    pub async fn list_day(
        &self,
        scopes: &[Scope],
        scope_index: usize,
        day: Option<NaiveDate>,
        options: &S3Options,
    ) -> Result<(Vec<ObjectRef>, ListCounts), AwsError> {
        let Some(scope) = scopes.get(scope_index) else {
            return Ok((Vec::new(), ListCounts::default()));
        };
        let prefix = match day {
            Some(day) => format!("{}{}", scope.base, day_path(day)),
            None => scope.base.clone(),
        };
        let cursor_key = if day.is_some() {
            scope.cursor_key()
        } else {
            "flat".to_string()
        };
        let cursor = options.cursors.get(&cursor_key).map(|text| Cursor::parse(text));
        let start_after = cursor
            .as_ref()
            .and_then(|cursor| restart_after(&cursor.position, &prefix, day));
        let mut kept = Vec::new();
        let mut counts = ListCounts::default();
        let mut greatest: Option<String> = None;
        let mut read = Vec::new();
        self.list_pages(&prefix, None, start_after, &mut |out| {
            for object in out.contents() {
                let Some(key) = object.key() else { continue };
                counts.found += 1;
                if greatest.as_deref().is_none_or(|g| key > g) {
                    greatest = Some(key.to_string());
                }
                let delivered = match file_time(Path::new(key)) {
                    FileTime::Delivered(at) => Some(at),
                    _ => None,
                };
                if key.contains("CloudTrail-Digest/") || key.ends_with('/') {
                    counts.digests += 1;
                } else if cursor.as_ref().is_some_and(|c| c.seen.contains(key)) {
                    // In the overlap, and read by the last run.
                    counts.already_read += 1;
                    read.extend(delivered.map(|at| (at, key.to_string())));
                } else if !file_time(Path::new(key)).may_overlap(&options.window, options.delivery_lag) {
                    counts.pruned += 1;
                } else {
                    read.extend(delivered.map(|at| (at, key.to_string())));
                    kept.push(ObjectRef {
                        key: key.to_string(),
                        size: object.size().unwrap_or(0).max(0) as u64,
                        scope: scope_index,
                    });
                }
            }
        })
        .await?;
        if let Some(greatest) = greatest
            && let Ok(mut progress) = self.progress.lock()
        {
            let entry = progress.entry(cursor_key).or_default();
            if greatest > entry.greatest {
                entry.greatest = greatest;
            }
            entry.read.extend(read);
            // Only the overlap before the greatest key is remembered.
            if let FileTime::Delivered(at) = file_time(Path::new(&entry.greatest)) {
                let cut = at.checked_sub_signed(OVERLAP).unwrap_or(at);
                entry.read.retain(|(time, _)| *time >= cut);
            }
        }
        Ok((kept, counts))
    }

    /// Fetches `objects` with at most `concurrency` requests in flight, sending each (or its
    /// failure) to the returned channel as it completes. Runs on `runtime`; the receiver may
    /// be drained from any thread outside it.
    pub fn fetch(
        &self,
        runtime: &tokio::runtime::Handle,
        objects: Vec<ObjectRef>,
        scopes: &[Scope],
        concurrency: usize,
        attempts: u32,
    ) -> mpsc::Receiver<Fetched> {
        let concurrency = concurrency.max(1);
        let (tx, rx) = mpsc::channel(concurrency);
        let this = self.clone();
        let scope_keys: Vec<String> = scopes.iter().map(Scope::cursor_key).collect();
        let layout = scopes.first().is_some_and(|s| !s.account.is_empty());
        runtime.spawn(async move {
            let permits = Arc::new(Semaphore::new(concurrency));
            for object in objects {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let tx = tx.clone();
                let this = this.clone();
                let cursor_key = if layout {
                    scope_keys.get(object.scope).cloned().unwrap_or_default()
                } else {
                    "flat".to_string()
                };
                tokio::spawn(async move {
                    let fetched = this.get(&object, attempts).await;
                    if let Fetched::Failed { .. } = &fetched {
                        this.counters.objects_failed.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut progress) = this.progress.lock() {
                            let entry = progress.entry(cursor_key).or_default();
                            if entry.failed.as_deref().is_none_or(|least| object.key.as_str() < least) {
                                entry.failed = Some(object.key.clone());
                            }
                        }
                    }
                    let _ = tx.send(fetched).await;
                    drop(permit);
                });
            }
        });
        rx
    }

    /// One object, whole; retried on transient errors (network, throttling, a broken body).
    async fn get(&self, object: &ObjectRef, attempts: u32) -> Fetched {
        let name = self.uri(&object.key);
        let attempts = attempts.max(1);
        let mut last = String::new();
        for attempt in 0..attempts {
            if attempt > 0 {
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_millis(200 << attempt.min(6))).await;
            }
            self.counters.get_requests.fetch_add(1, Ordering::Relaxed);
            let response = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&object.key)
                .send()
                .await;
            let output = match response {
                Ok(output) => output,
                Err(err) => {
                    let error = classify(&err, &name, "s3:GetObject", &self.region);
                    let error = match (&error, err.code()) {
                        (_, Some("InvalidObjectState")) => {
                            return Fetched::Failed {
                                name,
                                message: "the object is archived (Glacier / Deep Archive): restore it first".into(),
                            };
                        }
                        _ => error,
                    };
                    if !error.is_transient() {
                        return Fetched::Failed {
                            name,
                            message: error.to_string(),
                        };
                    }
                    last = error.to_string();
                    continue;
                }
            };
            match output.body.collect().await {
                Ok(body) => {
                    // The collected body's buffer, not a copy of it (when it is the only owner).
                    let bytes = Vec::<u8>::from(body.into_bytes());
                    self.counters.objects_fetched.fetch_add(1, Ordering::Relaxed);
                    self.counters
                        .bytes_fetched
                        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    return Fetched::Object { name, bytes };
                }
                Err(err) => last = format!("reading the object failed: {err}"),
            }
        }
        self.counters.transient_failures.fetch_add(1, Ordering::Relaxed);
        Fetched::Failed {
            name,
            message: format!("{last} (after {attempts} attempts)"),
        }
    }

    /// The cursors to remember after the run: per scope, the greatest key listed with the keys
    /// read in the overlap before it, or, when an object failed, the key just before the least
    /// failed one (so it is read again next time, with the overlap before it).
    pub fn cursors(&self) -> BTreeMap<String, String> {
        let Ok(progress) = self.progress.lock() else {
            return BTreeMap::new();
        };
        progress
            .iter()
            .filter_map(|(scope, progress)| {
                let cursor = match &progress.failed {
                    None => Cursor {
                        position: progress.greatest.clone(),
                        seen: progress.read.iter().map(|(_, key)| key.clone()).collect(),
                    },
                    // ListObjectsV2 start-after is exclusive: a key sorting just before the
                    // failed one makes the next run start with it. What was read after it is
                    // read again (the case store reports each finding once).
                    Some(failed) => Cursor {
                        position: just_before(failed)?,
                        seen: Default::default(),
                    },
                };
                let cursor = if cursor.seen.len() > MAX_SEEN {
                    Cursor {
                        seen: Default::default(),
                        ..cursor
                    }
                } else {
                    cursor
                };
                (!cursor.position.is_empty()).then(|| (scope.clone(), cursor.to_text()))
            })
            .collect()
    }

    /// Lists the folder names (common prefixes) right under `prefix`.
    /// Every key under `prefix`.
    pub(crate) async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, AwsError> {
        let mut keys = Vec::new();
        self.list_pages(prefix, None, None, &mut |out| {
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .filter(|k| !k.ends_with('/'))
                    .map(str::to_string),
            );
        })
        .await?;
        Ok(keys)
    }

    /// The object at `key`, whole, with its user metadata (`x-amz-meta-*`, by name without
    /// the prefix); the SDK retries transient errors.
    pub(crate) async fn get_with_metadata(
        &self,
        key: &str,
    ) -> Result<(Vec<u8>, std::collections::HashMap<String, String>), String> {
        self.counters.get_requests.fetch_add(1, Ordering::Relaxed);
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify(&e, &self.uri(key), "s3:GetObject", &self.region).to_string())?;
        let metadata = output.metadata().cloned().unwrap_or_default();
        let body = output
            .body
            .collect()
            .await
            .map_err(|e| format!("reading the object failed: {e}"))?;
        let bytes = Vec::<u8>::from(body.into_bytes());
        self.counters.objects_fetched.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes_fetched
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok((bytes, metadata))
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn list_folders(&self, prefix: &str) -> Result<Vec<String>, AwsError> {
        let mut names = Vec::new();
        self.list_pages(prefix, Some("/"), None, &mut |out| {
            for common in out.common_prefixes() {
                if let Some(p) = common.prefix() {
                    let name = p[prefix.len().min(p.len())..].trim_end_matches('/');
                    if !name.is_empty() {
                        names.push(name.to_string());
                    }
                }
            }
        })
        .await?;
        Ok(names)
    }

    /// Lists `prefix` (with `delimiter`, after `start_after`) page by page, counting the
    /// requests, and hands each page to `page`.
    async fn list_pages(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        start_after: Option<String>,
        page: &mut (dyn FnMut(&ListObjectsV2Output) + Send),
    ) -> Result<(), AwsError> {
        let mut token: Option<String> = None;
        loop {
            self.counters.list_requests.fetch_add(1, Ordering::Relaxed);
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_delimiter(delimiter.map(str::to_string))
                .set_start_after(start_after.clone())
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| classify(&e, &self.uri(prefix), "s3:ListBucket", &self.region))?;
            page(&out);
            match out.next_continuation_token() {
                Some(next) if out.is_truncated().unwrap_or(false) => token = Some(next.to_string()),
                _ => return Ok(()),
            }
        }
    }
}

/// Objects found by listing, and why some are not read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListCounts {
    pub found: u64,
    pub pruned: u64,
    pub digests: u64,
    /// Listed again in the overlap before the cursor, and read by the last run.
    pub already_read: u64,
}

impl ListCounts {
    pub fn add(&mut self, other: ListCounts) {
        self.found += other.found;
        self.pruned += other.pruned;
        self.digests += other.digests;
        self.already_read += other.already_read;
    }
}

/// `YYYY/MM/DD/`.
fn day_path(day: NaiveDate) -> String {
    format!("{:04}/{:02}/{:02}/", day.year(), day.month(), day.day())
}

/// Whether a year ending on `last` could hold events of the window (its end is open or later).
fn dated_possible(window: &TimeWindow, last: Option<NaiveDate>) -> bool {
    match (window.since, last.and_then(|d| d.and_hms_opt(23, 59, 59))) {
        (Some(since), Some(last)) => last.and_utc() + Duration::days(1) >= since,
        _ => true,
    }
}

fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

fn looks_like_file(prefix: &str) -> bool {
    let name = prefix.rsplit('/').next().unwrap_or_default();
    name.ends_with(".gz") || name.ends_with(".json")
}

/// A key sorting immediately before `key` among keys that share its prefix, for ListObjectsV2
/// `start-after` (exclusive): `key` with its last byte decremented. `None` for an empty key.
fn just_before(key: &str) -> Option<String> {
    let mut bytes = key.as_bytes().to_vec();
    let last = bytes.pop()?;
    if last > 0 {
        bytes.push(last - 1);
        // Decrementing a byte can split a UTF-8 sequence; keep only valid text.
        String::from_utf8(bytes)
            .ok()
            .or_else(|| Some(key[..key.len() - 1].to_string()))
    } else {
        String::from_utf8(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn just_before_sorts_before() {
        let key = "AWSLogs/1/CloudTrail/us-east-1/2024/03/01/a_b.json.gz";
        let before = just_before(key).unwrap_or_default();
        assert!(before.as_str() < key);
        assert!(before.starts_with("AWSLogs/1/CloudTrail/us-east-1/2024/03/01/a_b.json."));
    }

    #[test]
    fn day_paths_and_accounts() {
        let day = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap_or_default();
        assert_eq!(day_path(day), "2024/03/01/");
        assert!(is_account_id("111122223333"));
        assert!(!is_account_id("o-abc"));
    }
}
