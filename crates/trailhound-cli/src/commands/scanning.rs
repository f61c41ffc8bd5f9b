//! Running a scan for a command: check the sources, size the thread pool, read local files,
//! trail buckets and LookupEvents in delivery-time batches, show progress.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDate, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use trailhound_aws::{Aws, LookupOptions, S3Options, TrailBucket, lookup};
use trailhound_source::{
    Input, LookupRegions, Plan, ProblemBudget, ScanReport, ScanStats, Sink, delivery_batches, scan_objects, scan_part,
};

use crate::settings::ScanSettings;

/// Width of a correlation batch, in delivery time.
const BATCH_WIDTH_HOURS: i64 = 1;

/// Where an incremental read stopped, per source: `(source, key) -> value`, as the store keeps
/// them. Remote sources read with `since_last_run` start there; every read reports new ones.
pub type Cursors = BTreeMap<(String, String), String>;

/// What a whole read produced besides the sinks.
#[derive(Debug, Default)]
pub struct Driven {
    pub stats: ScanStats,
    pub problems_total: u64,
    /// Lines for the run summary about remote sources (requests made, objects fetched).
    pub notes: Vec<String>,
    /// Cursors to keep for the next incremental run.
    pub cursors: Cursors,
    /// Remote objects given up on after transient errors (throttling, the network).
    pub transient_failures: u64,
}

/// Reads every source of `settings`. `on_batch` gets each batch's sinks and, when `batched`
/// and the read is one source, the time before which every event has been read (so
/// correlations can sweep). `since` holds the cursors of an incremental run.
pub fn drive<S: Sink>(
    settings: &ScanSettings,
    since: Option<&Cursors>,
    make: &(dyn Fn() -> S + Sync),
    batched: bool,
    on_batch: &mut dyn FnMut(Vec<S>, Option<DateTime<Utc>>),
) -> Result<Driven> {
    let plan = plan(settings)?;
    let remote: Vec<&Input> = settings.inputs.iter().filter(|i| i.is_remote()).collect();
    let local = remote.is_empty() || settings.inputs.iter().any(|i| !i.is_remote());
    // Watermarks only hold within one source: with several, correlations are swept at the end.
    let watermarks = batched && usize::from(local) + remote.len() <= 1;
    let width = chrono::Duration::hours(BATCH_WIDTH_HOURS);
    let bar = progress_bar(settings.progress, plan.len() as u64);
    let budget = ProblemBudget::default();
    let mut driven = Driven::default();
    let started = std::time::Instant::now();
    let mut absorb = |report: ScanReport<S>, watermark: Option<DateTime<Utc>>, driven: &mut Driven| {
        driven.stats.add(&report.stats);
        driven.problems_total += report.problems_total;
        on_batch(report.sinks, watermark.filter(|_| watermarks));
    };
    if local {
        let batches = if batched {
            plan.into_batches(settings.options.delivery_lag, width)
        } else {
            vec![(plan, None)]
        };
        for (batch, watermark) in batches {
            let report = scan_part(batch, &settings.options, make, &|_| bar.inc(1), &budget);
            absorb(report, watermark, &mut driven);
        }
    }
    if !remote.is_empty() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the AWS client runtime")?;
        let aws = runtime.block_on(Aws::connect(&settings.remote.aws))?;
        let reader = Remote {
            settings,
            runtime: &runtime,
            aws: &aws,
            since,
            make,
            bar: &bar,
            budget: &budget,
        };
        for input in remote {
            match input {
                Input::S3 { bucket, prefix } => reader.bucket(
                    bucket,
                    prefix,
                    width,
                    &mut |report, watermark, driven: &mut Driven| absorb(report, watermark, driven),
                    &mut driven,
                )?,
                Input::Lookup(regions) => {
                    let report = reader.lookup(regions, &mut driven)?;
                    absorb(report, None, &mut driven);
                }
                Input::Path(_) | Input::Stdin => {}
            }
        }
    }
    bar.finish_and_clear();
    budget.finish();
    driven.stats.elapsed = started.elapsed();
    Ok(driven)
}

type Absorb<'a, S> = dyn FnMut(ScanReport<S>, Option<DateTime<Utc>>, &mut Driven) + 'a;

/// Reads the remote sources of one command.
struct Remote<'a, S> {
    settings: &'a ScanSettings,
    runtime: &'a tokio::runtime::Runtime,
    aws: &'a Aws,
    since: Option<&'a Cursors>,
    make: &'a (dyn Fn() -> S + Sync),
    bar: &'a ProgressBar,
    budget: &'a ProblemBudget,
}

impl<S: Sink> Remote<'_, S> {
    /// Scans what arrives on `objects` until its sender is done.
    fn scan(&self, mut objects: tokio::sync::mpsc::Receiver<trailhound_source::Fetched>) -> ScanReport<S> {
        scan_objects(
            std::iter::from_fn(move || objects.blocking_recv()),
            &self.settings.options,
            self.make,
            &|_| self.bar.inc(1),
            self.budget,
        )
    }

    /// The cursors of `source` from the last run, keyed by their scope.
    fn cursors_of(&self, source: &str) -> BTreeMap<String, String> {
        self.since
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
        driven: &mut Driven,
    ) -> Result<()> {
        let source = source_name(bucket, prefix);
        let remote = &self.settings.remote;
        let options = S3Options {
            window: self.settings.options.window,
            delivery_lag: self.settings.options.delivery_lag,
            accounts: remote.accounts.clone(),
            regions: remote.regions.clone(),
            concurrency: remote.concurrency,
            cursors: self.cursors_of(&source),
        };
        let rt = self.runtime;
        let trail = rt.block_on(TrailBucket::open(self.aws, bucket, prefix))?;
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
        let lag = self.settings.options.delivery_lag;
        let day_list: Vec<(Option<NaiveDate>, Vec<usize>)> = days.into_iter().collect();
        for (position, (day, indexes)) in day_list.iter().enumerate() {
            let objects = rt.block_on(list_concurrently(&trail, &scopes, indexes, *day, &options))?;
            let mut kept = Vec::new();
            for (objects, counts) in objects {
                driven.stats.files_found += counts.found;
                driven.stats.files_pruned += counts.pruned;
                driven.stats.digests_skipped += counts.digests;
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
            let batches = std::iter::once((undated, None))
                .chain(
                    dated
                        .into_iter()
                        .enumerate()
                        .map(|(i, (objects, watermark))| (objects, if i + 1 == count { next_day } else { watermark })),
                )
                .filter(|(objects, _)| !objects.is_empty());
            for (objects, watermark) in batches {
                self.bar.inc_length(objects.len() as u64);
                let report = self.scan(trail.fetch(rt.handle(), objects, &scopes, remote.concurrency, 2));
                absorb(report, watermark, driven);
            }
        }
        let c = &trail.counters;
        let get = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
        driven.notes.push(format!(
            "{source}: {} accounts/regions, {} day folders; {} list requests, {} objects fetched ({:.1} MB), {} failed, {} retried",
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
    fn lookup(&self, regions: &LookupRegions, driven: &mut Driven) -> Result<ScanReport<S>> {
        let rt = self.runtime;
        let regions = match regions {
            LookupRegions::Default => vec![self.aws.region().to_string()],
            LookupRegions::All => rt.block_on(self.aws.enabled_regions())?,
            LookupRegions::List(list) => list.clone(),
        };
        let window = self.settings.options.window;
        let oldest = Utc::now() - chrono::Duration::days(trailhound_aws::RETENTION_DAYS);
        if window.since.is_none_or(|since| since < oldest) {
            tracing::info!("lookup: LookupEvents keeps management events of the last 90 days only");
        }
        let cursors = self
            .cursors_of("lookup")
            .into_iter()
            .filter_map(|(region, time)| Some((region, trailhound_event::parse_event_time(&time)?)))
            .collect();
        let read = lookup::read(
            self.aws,
            rt.handle(),
            regions.clone(),
            LookupOptions {
                window,
                cursors,
                ..LookupOptions::default()
            },
        );
        let report = self.scan(read.events);
        let latest = rt.block_on(read.latest).context("LookupEvents reader")?;
        let c = &read.counters;
        let get = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
        driven.notes.push(format!(
            "lookup: {} regions; {} requests ({} throttled), {} events",
            regions.len(),
            get(&c.requests),
            get(&c.throttled),
            get(&c.events),
        ));
        for (region, time) in latest {
            driven.cursors.insert(
                ("lookup".to_string(), region),
                time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            );
        }
        Ok(report)
    }
}

/// Lists the day folder of several scopes at once.
async fn list_concurrently(
    trail: &TrailBucket,
    scopes: &Arc<Vec<trailhound_aws::Scope>>,
    indexes: &[usize],
    day: Option<NaiveDate>,
    options: &Arc<S3Options>,
) -> Result<Vec<(Vec<trailhound_aws::ObjectRef>, trailhound_aws::ListCounts)>> {
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
        let (order, listed) = joined.context("listing task")?;
        results.push((order, listed?));
    }
    results.sort_by_key(|(order, _)| *order);
    Ok(results.into_iter().map(|(_, r)| r).collect())
}

/// How cursors name an S3 source: `s3://bucket/prefix`.
pub fn source_name(bucket: &str, prefix: &str) -> String {
    format!("s3://{bucket}/{}", prefix.trim_start_matches('/'))
}

/// Scans `settings`' sources, one sink per worker (no correlation batches).
pub fn run<S: Sink>(settings: &ScanSettings, make: &(dyn Fn() -> S + Sync)) -> Result<ScanReport<S>> {
    let mut sinks = Vec::new();
    let driven = drive(settings, None, make, false, &mut |more, _| sinks.extend(more))?;
    for note in &driven.notes {
        tracing::info!("{note}");
    }
    Ok(ScanReport {
        sinks,
        stats: driven.stats,
        problems: Vec::new(),
        problems_total: driven.problems_total,
    })
}

/// The local files a scan of `settings` will read, after checking the sources exist.
pub fn plan(settings: &ScanSettings) -> Result<Plan> {
    for input in &settings.inputs {
        if let Input::Path(path) = input
            && !path.exists()
        {
            bail!("{}: no such file or folder", path.display());
        }
    }
    if let Some(threads) = settings.threads {
        // A second command in the same process (tests) finds the pool already built: fine.
        let _ = rayon::ThreadPoolBuilder::new().num_threads(threads).build_global();
    }
    Ok(Plan::new(&settings.inputs, &settings.options))
}

pub fn progress_bar(enabled: bool, files: u64) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(files), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} files ({per_sec}, eta {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Where a command writes its results: `-o FILE` or stdout.
pub fn output(path: Option<&std::path::Path>) -> Result<Box<dyn std::io::Write>> {
    Ok(match path {
        Some(path) => Box::new(std::io::BufWriter::new(
            fs_err::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    })
}

/// Finishes writing; a closed pipe (`| head`) is not an error.
pub fn finish(result: std::io::Result<()>, out: &mut dyn std::io::Write) -> Result<()> {
    match result.and_then(|()| out.flush()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing results"),
    }
}
