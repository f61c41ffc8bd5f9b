//! Reading every source of a command: local files in delivery-time batches, then trail buckets
//! and LookupEvents (with the `aws` feature), into the caller's sinks.
//!
//! A read reports each batch's sinks to the caller with a watermark (the time before which every
//! event has been read) when one can be given, so a stateful consumer (correlations) can sweep
//! and forget as time moves on; a read of one stream (standard input, one large file) reports its
//! sinks at checkpoints along the stream too (see [`Checkpoints`]). Progress goes through [`Progress`], which a terminal renders as
//! a bar and a Lambda ignores. This module starts no runtime and makes no AWS connection: the
//! caller hands in a [`Remote`] when it has one.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::input::Input;
use crate::scan::{Plan, ProblemBudget, ScanOptions, ScanReport, ScanStats, Sink, scan_part, scan_part_with};
use crate::stream::Checkpoints;

/// Width of a correlation batch, in delivery time.
pub const BATCH_WIDTH_HOURS: i64 = 1;

/// Where an incremental read stopped, per source: `(source, key) -> value`, as the case store
/// keeps them. Remote sources read with cursors start there; every read reports new ones.
pub type Cursors = BTreeMap<(String, String), String>;

/// How far a read has gone, for a progress bar. Called from many threads.
pub trait Progress: Sync {
    /// `files` more files (or objects) are planned.
    fn planned(&self, files: u64);
    /// One file (or object) is read.
    fn read(&self);
    /// The read is over.
    fn finish(&self) {}
}

/// No progress shown.
pub struct Silent;

impl Progress for Silent {
    fn planned(&self, _: u64) {}
    fn read(&self) {}
}

/// What to read and how.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub inputs: Vec<Input>,
    pub scan: ScanOptions,
    /// Worker threads (rayon's global pool); none: one per core.
    pub threads: Option<usize>,
    /// How trail buckets and LookupEvents are read.
    pub remote: RemoteOptions,
    /// Cursors of an incremental read (remote sources start after them).
    pub since: Option<Cursors>,
    /// How `athena://` sources are read.
    pub athena: AthenaOptions,
}

/// How `athena://` sources are read. Plain values: the queries come from the caller, which knows
/// the rules (`trailhound_hunt` plans them from `trailhound_rules::sql`).
#[derive(Debug, Clone, Default)]
pub struct AthenaOptions {
    /// Where Athena writes query results (`s3://...`); none: the workgroup's configured location.
    pub output: Option<String>,
    /// Refuse to start a plan expected to scan more bytes than this.
    pub max_scan_bytes: Option<u64>,
    /// Compressed MB of one account-region-day, for the expected scan (none: 1 MB).
    pub mb_per_partition: Option<f64>,
    /// The plan of each `athena://` source, by its text ([`crate::Input::describe`]).
    pub plans: BTreeMap<String, AthenaPlan>,
}

/// The record text of a result row: the column names and the row's values as Athena returns
/// them (text, `None` for null), or why the row is refused.
pub type RowToRecord = fn(&[String], &[Option<String>]) -> Result<String, String>;

/// What an `athena://` source runs.
#[derive(Debug, Clone)]
pub struct AthenaPlan {
    /// The queries' SQL, each ordered by `eventtime`: their rows are merged in time order.
    pub queries: Vec<String>,
    /// The bytes the queries are expected to scan, or why that cannot be estimated.
    pub expected_scan: Result<u64, String>,
    /// Lines for the run summary about the plan (what is pushed down, what is not).
    pub notes: Vec<String>,
    /// Turns a row back into the record the engine reads.
    pub to_record: RowToRecord,
    /// The queries return every row of the window (otherwise only rows some rule may match).
    pub every_row: bool,
    /// Where the read leaves its cursor, and where the last one left it.
    pub cursor: AthenaCursor,
}

/// The cursor of an `athena://` read: its key under the source (the accounts and regions read,
/// so that another scope has its own), the end of the window this read covers, and where the
/// last run stopped with the events it read in the [`crate::cursor::ATHENA_OVERLAP`] before
/// (read again, they are skipped).
#[derive(Debug, Clone)]
pub struct AthenaCursor {
    pub key: String,
    pub until: DateTime<Utc>,
    pub resume: Option<(DateTime<Utc>, std::collections::BTreeSet<String>)>,
}

/// Athena's price per TB scanned in most regions, in USD.
pub const ATHENA_PRICE_PER_TB: f64 = 5.0;

/// Bytes in a decimal unit, as Athena bills them (`1.23 GB`).
pub fn decimal_size(bytes: f64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.2} {}", units[unit])
}

/// How remote sources (`s3://`, `lookup:`) are read.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// Only these accounts of an organization trail (empty: all).
    pub accounts: Vec<String>,
    /// Only these regions (empty: all).
    pub regions: Vec<String>,
    /// Objects fetched at once.
    pub concurrency: usize,
}

impl Default for RemoteOptions {
    fn default() -> RemoteOptions {
        RemoteOptions {
            accounts: Vec::new(),
            regions: Vec::new(),
            concurrency: 16,
        }
    }
}

/// What a whole read produced besides the sinks.
#[derive(Debug, Default)]
pub struct ReadReport {
    pub stats: ScanStats,
    /// Bad files and records (each logged as it was met).
    pub problems_total: u64,
    /// Lines for the run summary about remote sources (requests made, objects fetched).
    pub notes: Vec<String>,
    /// Cursors to keep for the next incremental run.
    pub cursors: Cursors,
    /// Remote objects given up on after transient errors (throttling, the network).
    pub transient_failures: u64,
}

/// What a read fails with (a bad file or record never fails a read: it is counted).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}: no such file or folder")]
    NoSuchPath(std::path::PathBuf),
    #[error("{0}: this trailhound was built without AWS support (the `aws` feature)")]
    NoAws(String),
    #[cfg(feature = "aws")]
    #[error(transparent)]
    Aws(#[from] trailhound_aws::AwsError),
    #[error("{0}")]
    Remote(String),
}

/// The AWS side of a read: the caller's runtime and connection.
#[cfg(feature = "aws")]
pub struct Remote<'a> {
    pub runtime: &'a tokio::runtime::Handle,
    pub aws: &'a trailhound_aws::Aws,
}

/// Without the `aws` feature there is no remote side: remote sources are refused.
#[cfg(not(feature = "aws"))]
pub enum Remote<'a> {
    #[doc(hidden)]
    _Never(std::convert::Infallible, std::marker::PhantomData<&'a ()>),
}

/// Reads every source of `options`. `on_batch` gets each batch's sinks and, when `batched`
/// and the read is one source, the time before which every event has been read.
pub fn read<S: Sink>(
    options: &ReadOptions,
    remote: Option<&Remote<'_>>,
    progress: &dyn Progress,
    make: &(dyn Fn() -> S + Sync),
    batched: bool,
    on_batch: &mut dyn FnMut(Vec<S>, Option<DateTime<Utc>>),
) -> Result<ReadReport, ReadError> {
    check_scan_budget(&options.athena)?;
    let plan = plan(options)?;
    let remote_inputs: Vec<&Input> = options.inputs.iter().filter(|i| i.is_remote()).collect();
    let local = remote_inputs.is_empty() || options.inputs.iter().any(|i| !i.is_remote());
    // Watermarks only hold within one source: with several, correlations are swept at the end.
    let watermarks = batched && usize::from(local) + remote_inputs.len() <= 1;
    let width = chrono::Duration::hours(BATCH_WIDTH_HOURS);
    progress.planned(plan.len() as u64);
    let budget = ProblemBudget::default();
    let mut report = ReadReport::default();
    let started = std::time::Instant::now();
    let mut absorb = |scanned: ScanReport<S>, watermark: Option<DateTime<Utc>>, report: &mut ReadReport| {
        report.stats.add(&scanned.stats);
        report.problems_total += scanned.problems_total;
        on_batch(scanned.sinks, watermark.filter(|_| watermarks));
    };
    if local {
        // A read of one stream (standard input, one large file) sweeps as the stream goes.
        let alone = watermarks && plan.len() == 1;
        let batches = if batched {
            plan.into_batches(options.scan.delivery_lag, width)
        } else {
            vec![(plan, None)]
        };
        // Pipelined: while the caller takes in one batch (merging sinks, sweeping correlation
        // windows: work on one core), the next batch is already being scanned on the pool.
        // Batches still reach the caller one after the other, in order.
        let scan = &options.scan;
        let budget = &budget;
        let on_file = |_: u64| progress.read();
        let on_file = &on_file;
        let mut pending: Option<(ScanReport<S>, Option<DateTime<Utc>>)> = None;
        std::thread::scope(|scope| {
            for (batch, watermark) in batches {
                if alone {
                    let (to, checkpoints) = std::sync::mpsc::channel();
                    let lag = scan.delivery_lag;
                    let checkpoints_to = Checkpoints { to, lag };
                    let scanning =
                        scope.spawn(move || scan_part_with(batch, scan, make, on_file, budget, Some(checkpoints_to)));
                    // Until the scan ends (and drops the sender).
                    for (sinks, watermark) in checkpoints {
                        let part = ScanReport {
                            sinks,
                            stats: ScanStats::default(),
                            problems_total: 0,
                        };
                        absorb(part, Some(watermark), &mut report);
                    }
                    let scanned = scanning.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                    pending = Some((scanned, watermark));
                    continue;
                }
                let scanning = scope.spawn(move || scan_part(batch, scan, make, on_file, budget));
                if let Some((scanned, watermark)) = pending.take() {
                    absorb(scanned, watermark, &mut report);
                }
                let scanned = scanning.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                pending = Some((scanned, watermark));
            }
        });
        if let Some((scanned, watermark)) = pending {
            absorb(scanned, watermark, &mut report);
        }
    }
    if let Some(first) = remote_inputs.first() {
        #[cfg(feature = "aws")]
        {
            let Some(remote) = remote else {
                return Err(ReadError::Remote(format!(
                    "{}: no AWS connection was set up for this read",
                    first.describe()
                )));
            };
            let reader = crate::aws::Reader {
                options,
                remote,
                make,
                progress,
                budget: &budget,
            };
            for input in remote_inputs {
                reader.input(input, width, &mut absorb, &mut report)?;
            }
        }
        #[cfg(not(feature = "aws"))]
        {
            let _ = (remote, &mut absorb);
            return Err(ReadError::NoAws(first.describe()));
        }
    }
    progress.finish();
    budget.finish();
    report.stats.elapsed = started.elapsed();
    Ok(report)
}

/// Reads every source of `options` with one sink per worker and no batches: for commands that
/// look at records without state across them (events, timeline, summary).
pub fn read_all<S: Sink>(
    options: &ReadOptions,
    remote: Option<&Remote<'_>>,
    progress: &dyn Progress,
    make: &(dyn Fn() -> S + Sync),
) -> Result<(Vec<S>, ReadReport), ReadError> {
    let mut sinks = Vec::new();
    let report = read(options, remote, progress, make, false, &mut |more, _| {
        sinks.extend(more)
    })?;
    for note in &report.notes {
        tracing::info!("{note}");
    }
    Ok((sinks, report))
}

/// `--max-scan-gb`: a read whose Athena plans are expected to scan more than the budget is
/// refused before any query starts, and so is one whose scan cannot be estimated.
fn check_scan_budget(athena: &AthenaOptions) -> Result<(), ReadError> {
    let Some(max) = athena.max_scan_bytes else {
        return Ok(());
    };
    let mut total: u64 = 0;
    for (name, plan) in &athena.plans {
        match &plan.expected_scan {
            Ok(bytes) => total = total.saturating_add(*bytes),
            Err(why) => {
                return Err(ReadError::Remote(format!(
                    "{name}: the expected scan cannot be estimated ({why}), so --max-scan-gb cannot be checked: no query was started"
                )));
            }
        }
    }
    if total > max {
        return Err(ReadError::Remote(format!(
            "the Athena plan is expected to scan {:.2} GB, above --max-scan-gb {:.2}: no query was started (narrow --since, --accounts or --regions, or raise the budget)",
            total as f64 / 1e9,
            max as f64 / 1e9
        )));
    }
    Ok(())
}

/// The local files a read of `options` will scan, after checking the paths exist.
fn plan(options: &ReadOptions) -> Result<Plan, ReadError> {
    for input in &options.inputs {
        if let Input::Path(path) = input
            && !path.exists()
        {
            return Err(ReadError::NoSuchPath(path.clone()));
        }
    }
    if let Some(threads) = options.threads {
        // A second read in the same process (tests, a warm Lambda) finds the pool built: fine.
        let _ = rayon::ThreadPoolBuilder::new().num_threads(threads).build_global();
    }
    Ok(Plan::new(&options.inputs, &options.scan))
}
