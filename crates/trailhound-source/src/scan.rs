//! The parallel scan: plan the files, read them on all cores, hand records to sinks.
//!
//! Each worker owns a sink (built by the caller's factory), so no locks sit on the record path;
//! the caller merges sinks at the end. Memory per worker is one file's bytes and text at a time.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use rayon::prelude::*;
use trailhound_event::{Document, DocumentError, Record, for_each_record, printable};

use crate::decode::{Damage, DecodeError, Decoded, Turn, decode_in_turn};
use crate::discover::{FileTime, file_time, is_digest_path, is_other_service_path, walk};
use crate::input::Input;
use crate::stream::{Checkpoints, Helpers};
use crate::window::TimeWindow;

/// Receives every record inside the window.
pub trait Sink: Send {
    fn record(&mut self, source: &str, record: &Record<'_>);
}

/// How to scan.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub window: TimeWindow,
    /// How long before its delivery time a file may hold events (for pruning by file name).
    pub delivery_lag: Duration,
    /// Largest file size, once inflated, that will be read.
    pub max_file_bytes: u64,
    /// Files larger than this on disk are streamed ([`STREAM_FILE_BYTES`]).
    pub stream_file_bytes: u64,
    /// Bytes of a stream that is the whole read between two checkpoints (see [`Checkpoints`]).
    pub checkpoint_bytes: usize,
}

impl ScanOptions {
    /// Most bytes of a file (or an archive's entry) read whole; a larger one is streamed, and
    /// then only one top-level value at a time must fit `max_file_bytes`.
    pub(crate) fn read_whole_bytes(&self) -> u64 {
        self.stream_file_bytes.min(self.max_file_bytes)
    }
}

impl Default for ScanOptions {
    fn default() -> ScanOptions {
        ScanOptions {
            window: TimeWindow::default(),
            delivery_lag: Duration::hours(1),
            max_file_bytes: 1 << 30,
            stream_file_bytes: STREAM_FILE_BYTES,
            checkpoint_bytes: crate::stream::CHECKPOINT_BYTES,
        }
    }
}

/// Counters of a scan. All counts are exact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Files named or found in folders.
    pub files_found: u64,
    /// Files left unopened because their delivery time is outside the window.
    pub files_pruned: u64,
    /// CloudTrail digest files (by path or content): no events.
    pub digests_skipped: u64,
    /// Files found in a folder under another AWS service's folder of the delivery layout
    /// (`AWSLogs/ACCOUNT/vpcflowlogs/...`): not opened.
    pub other_logs_skipped: u64,
    pub files_read: u64,
    /// JSON files that are not CloudTrail (a single object with no event fields).
    pub files_foreign: u64,
    /// Files that could not be read or decoded at all.
    pub files_failed: u64,
    /// Files read only in part (broken JSON, truncated gzip, invalid UTF-8).
    pub files_damaged: u64,
    /// Records seen, valid or not.
    pub records_read: u64,
    pub records_invalid: u64,
    /// Valid records holding a core field twice ([`Record::repeated_key`]): read, and named.
    pub records_repeated_key: u64,
    /// Valid records inside the window: what the sinks received.
    pub records_in_window: u64,
    /// Bytes read from disk.
    pub bytes_read: u64,
    /// Bytes of JSON after inflation.
    pub bytes_inflated: u64,
    pub elapsed: std::time::Duration,
}

impl ScanStats {
    /// Adds another scan's counts (all but the elapsed time).
    pub fn add(&mut self, other: &ScanStats) {
        self.files_found += other.files_found;
        self.files_pruned += other.files_pruned;
        self.digests_skipped += other.digests_skipped;
        self.other_logs_skipped += other.other_logs_skipped;
        self.files_read += other.files_read;
        self.files_foreign += other.files_foreign;
        self.files_failed += other.files_failed;
        self.files_damaged += other.files_damaged;
        self.records_read += other.records_read;
        self.records_invalid += other.records_invalid;
        self.records_repeated_key += other.records_repeated_key;
        self.records_in_window += other.records_in_window;
        self.bytes_read += other.bytes_read;
        self.bytes_inflated += other.bytes_inflated;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The file could not be opened or read.
    Unreadable,
    /// Not gzip, too large, or otherwise undecodable.
    Decode,
    /// Read in part: truncated gzip, invalid UTF-8, broken JSON.
    Damaged,
    /// One record was rejected.
    Record,
    /// One record was read, but is not as CloudTrail writes records (a key twice).
    Altered,
}

/// A bad file or record, as reported on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// 0-based index of the record in its file.
    pub record: Option<usize>,
    /// 1-based line, for line-oriented files.
    pub line: Option<usize>,
    pub kind: ProblemKind,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", printable(&self.file))?;
        match (self.record, self.line) {
            (Some(record), Some(line)) => write!(f, ": record {record} (line {line})")?,
            (Some(record), None) => write!(f, ": record {record}")?,
            (None, Some(line)) => write!(f, ": line {line}")?,
            (None, None) => {}
        }
        write!(f, ": {}", printable(&self.message))
    }
}

/// The files a scan will read, decided before reading any.
#[derive(Debug, Default)]
pub struct Plan {
    pub files: Vec<PathBuf>,
    pub stdin: bool,
    stats: ScanStats,
    /// Problems met while planning (unreadable folders), already reported.
    problems: u64,
}

impl Plan {
    /// Expands folders, drops digests and files wholly outside the window.
    pub fn new(inputs: &[Input], options: &ScanOptions) -> Plan {
        let mut plan = Plan::default();
        for input in inputs {
            match input {
                Input::Stdin => plan.stdin = true,
                // Read by trailhound-aws and scanned with `scan_objects`.
                Input::S3 { .. } | Input::Lookup(_) | Input::Athena(_) => {}
                Input::Path(path) => {
                    if !path.exists() {
                        plan.stats.files_failed += 1;
                        plan.report(Problem {
                            file: path.display().to_string(),
                            record: None,
                            line: None,
                            kind: ProblemKind::Unreadable,
                            message: "no such file or folder".into(),
                        });
                        continue;
                    }
                    let folder = path.is_dir();
                    let (files, errors) = walk(path);
                    for (path, message) in errors {
                        plan.stats.files_failed += 1;
                        plan.report(Problem {
                            file: path.display().to_string(),
                            record: None,
                            line: None,
                            kind: ProblemKind::Unreadable,
                            message,
                        });
                    }
                    for file in files {
                        plan.stats.files_found += 1;
                        if is_digest_path(&file) {
                            plan.stats.digests_skipped += 1;
                        } else if folder && is_other_service_path(&file) {
                            // Found in a folder, not named: a named file is read as given.
                            plan.stats.other_logs_skipped += 1;
                        } else if !file_time(&file).may_overlap(&options.window, options.delivery_lag) {
                            plan.stats.files_pruned += 1;
                        } else {
                            plan.files.push(file);
                        }
                    }
                }
            }
        }
        plan
    }

    fn report(&mut self, problem: Problem) {
        tracing::warn!("{problem}");
        self.problems += 1;
    }

    /// Splits the plan into batches of files in delivery-time order, `width` of delivery time
    /// each, with the time before which every event has been read once the batch is done (see
    /// [`delivery_batches`]). Correlations use this to sweep and forget as time moves on. Files
    /// whose name and folders give no time, and stdin, make up the first batch.
    pub fn into_batches(self, lag: Duration, width: Duration) -> Vec<(Plan, Option<DateTime<Utc>>)> {
        let Plan {
            files,
            stdin,
            stats,
            problems,
        } = self;
        let (undated, dated) = delivery_batches(files, |f: &PathBuf| f.as_path(), lag, width);
        let mut batches: Vec<(Plan, Option<DateTime<Utc>>)> = Vec::new();
        if !undated.is_empty() || stdin {
            let watermark = first_earliest(&dated, lag);
            batches.push((
                Plan {
                    files: undated,
                    ..Plan::default()
                },
                watermark,
            ));
        }
        batches.extend(dated.into_iter().map(|(files, watermark)| {
            (
                Plan {
                    files,
                    ..Plan::default()
                },
                watermark,
            )
        }));
        match batches.first_mut() {
            Some(first) => {
                first.0.stats = stats;
                first.0.problems = problems;
                first.0.stdin = stdin;
            }
            None => batches.push((
                Plan {
                    files: Vec::new(),
                    stdin,
                    stats,
                    problems,
                },
                None,
            )),
        }
        batches
    }

    /// Number of reads the scan will make (files, plus stdin).
    pub fn len(&self) -> usize {
        self.files.len() + usize::from(self.stdin)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The earliest time a file of the first dated batch may hold.
fn first_earliest(dated: &[(Vec<PathBuf>, Option<DateTime<Utc>>)], lag: Duration) -> Option<DateTime<Utc>> {
    dated.first()?.0.first().and_then(|f| earliest_event(f, lag))
}

/// The earliest event a file delivered under `path` may hold: its delivery time (or day) minus
/// `lag`; `None` when the path gives no time.
pub fn earliest_event(path: &Path, lag: Duration) -> Option<DateTime<Utc>> {
    match file_time(path) {
        FileTime::Delivered(at) => Some(at - lag),
        FileTime::Day(day) => day.and_hms_opt(0, 0, 0).map(|t| t.and_utc() - lag),
        FileTime::Unknown => None,
    }
}

/// Splits files (or S3 objects: anything with a delivery path) into batches of `width` of
/// delivery time, in time order, each with the time before which every event has been read once
/// the batch is done: with files delivered at most `lag` after their events, a later file holds
/// nothing earlier than its own time minus `lag`. The last batch has no such time. Items whose
/// path gives no time are returned apart, first.
#[allow(clippy::type_complexity)]
pub fn delivery_batches<T>(
    items: Vec<T>,
    path: impl Fn(&T) -> &Path,
    lag: Duration,
    width: Duration,
) -> (Vec<T>, Vec<(Vec<T>, Option<DateTime<Utc>>)>) {
    let mut undated = Vec::new();
    let mut dated: Vec<(DateTime<Utc>, T)> = Vec::new();
    for item in items {
        match earliest_event(path(&item), lag) {
            Some(time) => dated.push((time, item)),
            None => undated.push(item),
        }
    }
    // Stable: items of the same time keep their order (S3 keys, folder walks).
    dated.sort_by_key(|(time, _)| *time);
    let seconds = width.num_seconds().max(1);
    let mut batches: Vec<(Vec<T>, Option<DateTime<Utc>>)> = Vec::new();
    let mut current: Option<i64> = None;
    for (time, item) in dated {
        let bucket = time.timestamp().div_euclid(seconds);
        if current != Some(bucket) {
            // The previous batch is complete once this one's earliest time is reached.
            if let Some(last) = batches.last_mut() {
                last.1 = Some(time);
            }
            batches.push((Vec::new(), None));
            current = Some(bucket);
        }
        if let Some(last) = batches.last_mut() {
            last.0.push(item);
        }
    }
    (undated, batches)
}

/// What a scan produced.
#[derive(Debug)]
pub struct ScanReport<S> {
    pub sinks: Vec<S>,
    pub stats: ScanStats,
    /// Bad files and records met (each was logged as it happened).
    pub problems_total: u64,
}

/// Problems logged as warnings per scan; the rest are logged at debug level (`-v`) and counted.
pub const MAX_PROBLEMS_SHOWN: usize = 100;

pub(crate) struct Worker<'s, S> {
    pub(crate) sink: S,
    pub(crate) stats: ScanStats,
    pub(crate) problems_total: u64,
    shown: &'s AtomicUsize,
    /// Problems reported, in order, when asked for (the tests compare them).
    pub(crate) kept: Option<Vec<Problem>>,
}

/// Files larger than this on disk are streamed (see `crate::stream`): memory is one top-level
/// JSON value at a time (a line of NDJSON, one envelope), not the file, and the size limit
/// applies to each value, so a large NDJSON export needs no `--max-file-size`.
pub const STREAM_FILE_BYTES: u64 = 32 << 20;

/// Gzip files whose trailer says they inflate to more than this are streamed too.
pub const STREAM_INFLATED_BYTES: u64 = 64 << 20;

/// Buffers larger than this are given back after the file that needed them.
const KEEP_BUFFER_BYTES: usize = 64 << 20;

/// A file's bytes and its inflated bytes, reused from file to file. They are lent per file by
/// one pool for the process rather than owned by the scan's workers, which rayon makes many of
/// (one per piece of work it splits off, all alive until the batch ends): memory is then one
/// pair per file being read at once, not one per worker.
#[derive(Default)]
pub(crate) struct Buffers {
    pub(crate) file: Vec<u8>,
    pub(crate) inflated: Vec<u8>,
}

/// Pairs not lent now: at most [`KEPT_BUFFERS`].
static BUFFERS: std::sync::Mutex<Vec<Buffers>> = std::sync::Mutex::new(Vec::new());
const KEPT_BUFFERS: usize = 64;

impl Buffers {
    pub(crate) fn lend() -> Buffers {
        let mut pool = BUFFERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pool.pop().unwrap_or_default()
    }

    pub(crate) fn give_back(mut self) {
        // The inflated buffer keeps its length: inflating only zeroes what is new to it.
        self.file.clear();
        for buffer in [&mut self.file, &mut self.inflated] {
            if buffer.capacity() > KEEP_BUFFER_BYTES {
                *buffer = Vec::new();
            }
        }
        let mut pool = BUFFERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if pool.len() < KEPT_BUFFERS {
            pool.push(self);
        }
    }
}

impl<'s, S> Worker<'s, S> {
    pub(crate) fn new(sink: S, shown: &'s AtomicUsize) -> Worker<'s, S> {
        Worker {
            sink,
            stats: ScanStats::default(),
            problems_total: 0,
            shown,
            kept: None,
        }
    }

    /// A file that could not be read or decoded at all: counted and reported.
    pub(crate) fn failed(&mut self, file: String, kind: ProblemKind, message: String) {
        self.stats.files_failed += 1;
        self.report(Problem {
            file,
            record: None,
            line: None,
            kind,
            message,
        });
    }

    pub(crate) fn report(&mut self, problem: Problem) {
        report(self.shown, &mut self.problems_total, &mut self.kept, problem);
    }
}

/// [`Worker::report`] on the worker's parts, for a caller that holds its sink.
fn report(shown: &AtomicUsize, problems_total: &mut u64, kept: &mut Option<Vec<Problem>>, problem: Problem) {
    if shown.fetch_add(1, Ordering::Relaxed) < MAX_PROBLEMS_SHOWN {
        tracing::warn!("{problem}");
    } else {
        tracing::debug!("{problem}");
    }
    *problems_total += 1;
    if let Some(kept) = kept {
        kept.push(problem);
    }
}

/// Most rejected records of one scanned text listed one by one when they are handed back to be
/// reported later (a stream's values); the rest are counted in one problem. A 56 MB file of
/// invalid lines made 7 million problems of about 200 bytes each: 1.45 GB.
pub(crate) const MAX_LISTED_PER_TEXT: usize = 10_000;

/// How many problems a scan (of one or several batches) has printed, so the cap of
/// [`MAX_PROBLEMS_SHOWN`] holds across batches and the "not shown" line is said once.
#[derive(Debug, Default)]
pub struct ProblemBudget {
    pub(crate) shown: std::sync::Arc<AtomicUsize>,
}

impl ProblemBudget {
    /// Says how many problems were not shown, if any.
    pub fn finish(&self) {
        let hidden = self.shown.load(Ordering::Relaxed).saturating_sub(MAX_PROBLEMS_SHOWN);
        if hidden > 0 {
            tracing::warn!("{hidden} more bad files or records not shown (run with -v to see them all)");
        }
    }
}

/// Scans the planned files (one batch of a read) on rayon's pool; `on_file` is called after
/// each file with the bytes read (for progress). The caller calls [`ProblemBudget::finish`] at the end.
pub fn scan_part<S: Sink>(
    plan: Plan,
    options: &ScanOptions,
    make_sink: &(dyn Fn() -> S + Sync),
    on_file: &(dyn Fn(u64) + Sync),
    budget: &ProblemBudget,
) -> ScanReport<S> {
    scan_part_with(plan, options, make_sink, on_file, budget, None)
}

/// [`scan_part`] of a plan that is the whole read: a stream in it (standard input, a large
/// file) hands its sinks to `checkpoints` as time moves on (see [`Checkpoints`]), besides
/// the sinks of the report at the end.
pub fn scan_part_with<S: Sink>(
    plan: Plan,
    options: &ScanOptions,
    make_sink: &(dyn Fn() -> S + Sync),
    on_file: &(dyn Fn(u64) + Sync),
    budget: &ProblemBudget,
    checkpoints: Option<Checkpoints<S>>,
) -> ScanReport<S> {
    let started = Instant::now();
    let Plan {
        files,
        stdin,
        stats,
        problems,
    } = plan;
    budget
        .shown
        .fetch_add(usize::try_from(problems).unwrap_or(usize::MAX), Ordering::Relaxed);
    let shown: &AtomicUsize = &budget.shown;
    let new_worker = || Worker::new(make_sink(), shown);
    // Streamed files and stdin spread their scanning over the other cores, into sinks of theirs.
    let mut helpers = Helpers::new(make_sink, shown);
    helpers.checkpoints = checkpoints;
    let mut workers: Vec<Worker<'_, S>> = files
        .par_iter()
        .fold(new_worker, |mut worker, path| {
            let name = path.display().to_string();
            if let Some(kind) = crate::archive::kind(&name) {
                crate::archive::scan_archive(&mut worker, &name, path, kind, options, Some(&helpers));
                on_file(std::fs::metadata(path).map_or(0, |m| m.len()));
                return worker;
            }
            let mut buffers = Buffers::lend();
            let data = &mut buffers.file;
            let mut turn = Turn::default();
            let read = std::fs::File::open(path).and_then(|file| {
                let size = file.metadata().map_or(0, |m| m.len());
                if size > options.read_whole_bytes() {
                    // Streamed: one top-level value (an NDJSON line, an envelope) at a time,
                    // which is all `max_file_bytes` then bounds.
                    return Ok(Err(file));
                }
                // Read at most one byte past the limit: enough to know it is too large.
                let most = options.max_file_bytes.saturating_add(1);
                let size = size.min(most);
                turn.need(size);
                data.reserve_exact(usize::try_from(size).unwrap_or(0));
                file.take(most).read_to_end(data).map(Ok)
            });
            match read {
                Ok(Err(mut file)) => {
                    let before = worker.stats.bytes_read;
                    // Swept along the way only if it looks in time order (and is the whole read).
                    let sweep = match &helpers.checkpoints {
                        Some(checkpoints) => crate::stream::sampled_in_order(&mut file, checkpoints.lag),
                        None => Ok(false),
                    };
                    match sweep {
                        Ok(sweep) => {
                            crate::stream::scan_reader(&mut worker, &name, file, options, Some(&helpers), sweep)
                        }
                        Err(err) => {
                            worker.failed(name.clone(), ProblemKind::Unreadable, format!("cannot read: {err}"));
                        }
                    }
                    on_file(worker.stats.bytes_read - before);
                }
                Ok(Ok(read)) => {
                    let data = &buffers.file;
                    let inflated = &mut buffers.inflated;
                    scan_bytes(&mut worker, &name, data, inflated, options, &mut turn, Some(&helpers));
                    on_file(read as u64);
                }
                Err(err) => {
                    worker.failed(name, ProblemKind::Unreadable, format!("cannot read: {err}"));
                    on_file(0);
                }
            }
            buffers.give_back();
            drop(turn);
            worker
        })
        .collect();
    if stdin {
        // Streamed: records go on as they arrive, one top-level value in memory at a time.
        let mut worker = new_worker();
        let stdin = std::io::stdin().lock();
        // Swept along the way while it keeps to time order: it may never end.
        crate::stream::scan_reader(&mut worker, "<stdin>", stdin, options, Some(&helpers), true);
        on_file(0);
        workers.push(worker);
    }
    workers.extend(helpers.into_workers());
    merge_workers(workers, stats, problems, started)
}

/// The workers' sinks, counts and problems as one report.
pub(crate) fn merge_workers<S>(
    workers: Vec<Worker<'_, S>>,
    stats: ScanStats,
    problems: u64,
    started: Instant,
) -> ScanReport<S> {
    let mut report = ScanReport {
        sinks: Vec::with_capacity(workers.len()),
        stats,
        problems_total: problems,
    };
    for worker in workers {
        report.stats.add(&worker.stats);
        report.problems_total += worker.problems_total;
        report.sinks.push(worker.sink);
    }
    report.stats.elapsed = started.elapsed();
    report
}

/// One object of a remote source, fetched whole: an S3 object, or a page of LookupEvents
/// results as NDJSON.
#[derive(Debug)]
pub enum Fetched {
    /// `name` is what findings and problems name as the source (`s3://bucket/key`, `lookup:REGION`).
    Object { name: String, bytes: Vec<u8> },
    /// The object could not be fetched (after retries): reported, counted as a failed file.
    Failed { name: String, message: String },
}

/// Scans objects as they arrive (from a channel fed by concurrent downloads), on rayon's pool.
/// Memory is what the producer holds in flight plus one object per worker. Finding and pruning
/// objects is the lister's business: `files_found` is not counted here.
pub fn scan_objects<S: Sink, I>(
    objects: I,
    options: &ScanOptions,
    make_sink: &(dyn Fn() -> S + Sync),
    on_file: &(dyn Fn(u64) + Sync),
    budget: &ProblemBudget,
) -> ScanReport<S>
where
    I: Iterator<Item = Fetched> + Send,
{
    let started = Instant::now();
    let shown: &AtomicUsize = &budget.shown;
    let new_worker = || Worker::new(make_sink(), shown);
    let helpers = Helpers::new(make_sink, shown);
    let mut workers: Vec<Worker<'_, S>> = objects
        .par_bridge()
        .fold(new_worker, |mut worker, fetched| {
            match fetched {
                Fetched::Object { name, bytes } => {
                    if bytes.len() as u64 > options.max_file_bytes {
                        worker.failed(
                            name,
                            ProblemKind::Decode,
                            format!("larger than the {} MB limit", options.max_file_bytes >> 20),
                        );
                    } else {
                        let mut turn = Turn::default();
                        turn.need(bytes.len() as u64);
                        let mut buffers = Buffers::lend();
                        let inflated = &mut buffers.inflated;
                        scan_bytes(&mut worker, &name, &bytes, inflated, options, &mut turn, Some(&helpers));
                        buffers.give_back();
                    }
                    on_file(bytes.len() as u64);
                }
                Fetched::Failed { name, message } => {
                    worker.failed(name, ProblemKind::Unreadable, message);
                    on_file(0);
                }
            }
            worker
        })
        .collect();
    workers.extend(helpers.into_workers());
    merge_workers(workers, ScanStats::default(), 0, started)
}

/// Decodes one file's bytes and feeds its records to the worker's sink. `turn` is held (when
/// taken) until the records are scanned.
pub(crate) fn scan_bytes<'s, S: Sink>(
    worker: &mut Worker<'s, S>,
    name: &str,
    data: &[u8],
    inflated: &mut Vec<u8>,
    options: &ScanOptions,
    turn: &mut Turn,
    helpers: Option<&Helpers<'_, 's, S>>,
) {
    // Held whole up to this; past it, streamed (and then only one top-level value at a time
    // must fit `max_file_bytes`).
    let whole = STREAM_INFLATED_BYTES.min(options.max_file_bytes);
    // A gzip file's size is its trailer's; a plain file's, its length.
    if crate::decode::gzip_size(data).unwrap_or(data.len() as u64) > whole {
        // Inflating to more than this: streamed rather than inflated whole.
        crate::stream::scan_reader(worker, name, data, options, helpers, false);
        return;
    }
    let decoded = decode_in_turn(data, inflated, options.max_file_bytes, whole, turn);
    if let Err(DecodeError::Streamed { .. }) = decoded {
        // A gzip file whose trailer did not tell its size (several members, or a trailer that
        // lies) and that inflates past what is held whole: streamed too, from its start
        // (nothing of it was handed on). The large turn and the grown buffer are let go
        // first: the stream takes turns of its own.
        *turn = Turn::default();
        *inflated = Vec::new();
        crate::stream::scan_reader(worker, name, data, options, helpers, false);
        return;
    }
    worker.stats.files_read += 1;
    worker.stats.bytes_read += data.len() as u64;
    scan_decoded(worker, name, decoded, options);
}

fn scan_decoded<S: Sink>(
    worker: &mut Worker<'_, S>,
    name: &str,
    decoded: Result<Decoded<'_>, DecodeError>,
    options: &ScanOptions,
) {
    let decoded = match decoded {
        Ok(decoded) => decoded,
        Err(err) => {
            worker.failed(name.to_string(), ProblemKind::Decode, err.to_string());
            return;
        }
    };
    worker.stats.bytes_inflated += decoded.bytes;
    let mut damaged = false;
    for damage in &decoded.damage {
        damaged = true;
        let message = match damage {
            Damage::Truncated(message) => format!("{message}; reading what came before"),
            Damage::InvalidUtf8 => "invalid UTF-8 replaced with U+FFFD".to_string(),
            Damage::InvalidUtf16 => "invalid UTF-16 replaced with U+FFFD".to_string(),
        };
        worker.report(Problem {
            file: name.to_string(),
            record: None,
            line: None,
            kind: ProblemKind::Damaged,
            message,
        });
    }
    // Problems are reported as the scan meets them: none are held.
    let (outcome, _, _) = scan_text(worker, name, &decoded.text, options.window, 0, None, false);
    match outcome {
        Ok(Document::Digest) => worker.stats.digests_skipped += 1,
        Ok(Document::Other) => {
            worker.stats.files_foreign += 1;
            tracing::debug!("{}: not CloudTrail, skipped", printable(name));
        }
        Ok(_) => {}
        Err(err) => {
            damaged = true;
            worker.report(Problem {
                file: name.to_string(),
                record: None,
                line: Some(err.line),
                kind: ProblemKind::Damaged,
                message: format!("{}; {} records before it were read", err.message, err.records_before),
            });
        }
    }
    if damaged {
        worker.stats.files_damaged += 1;
    }
}

/// Hands the records of `text` to the worker's sink and counts them; returns the document's
/// shape, the number of records and, when `hand_back`, the records rejected, for the caller to
/// report (a stream reports them in stream order, whichever core scanned them, adding the
/// records before `text` to their indexes): at most [`MAX_LISTED_PER_TEXT`] one by one, then
/// one problem counting the rest. Otherwise they are reported as met. `lines_before` (in a
/// stream) offsets the lines problems name; `times`, when given, sees the time of every record
/// handed on.
pub(crate) fn scan_text<S: Sink>(
    worker: &mut Worker<'_, S>,
    name: &str,
    text: &str,
    window: TimeWindow,
    lines_before: usize,
    mut times: Option<&mut crate::stream::Times>,
    hand_back: bool,
) -> (Result<Document, DocumentError>, usize, Vec<Problem>) {
    let Worker {
        sink,
        stats,
        problems_total,
        shown,
        kept,
    } = worker;
    let mut record_problems = Vec::new();
    let mut unlisted = 0usize;
    let mut records = 0;
    let outcome = for_each_record(text, &mut |slot| {
        records += 1;
        stats.records_read += 1;
        // By reference: moving a record out of its slot copies it.
        match &slot.record {
            Ok(record) => {
                if let Some(key) = record.repeated_key() {
                    stats.records_repeated_key += 1;
                    let problem = Problem {
                        file: name.to_string(),
                        record: Some(slot.index),
                        line: slot.line.map(|line| lines_before + line),
                        kind: ProblemKind::Altered,
                        message: format!(
                            "`{key}` appears twice in the record; the last value is read (CloudTrail never writes a \
                             key twice: the record was altered, or not written by CloudTrail)"
                        ),
                    };
                    if !hand_back {
                        report(shown, problems_total, kept, problem);
                    } else if record_problems.len() < MAX_LISTED_PER_TEXT {
                        record_problems.push(problem);
                    }
                }
                if window.contains(record.time) {
                    stats.records_in_window += 1;
                    if let Some(times) = times.as_deref_mut() {
                        times.see(record.time);
                    }
                    sink.record(name, record);
                }
            }
            Err(err) => {
                stats.records_invalid += 1;
                if hand_back && record_problems.len() >= MAX_LISTED_PER_TEXT {
                    unlisted += 1;
                    return;
                }
                let problem = Problem {
                    file: name.to_string(),
                    record: Some(slot.index),
                    line: slot.line.map(|line| lines_before + line),
                    kind: ProblemKind::Record,
                    message: err.to_string(),
                };
                if hand_back {
                    record_problems.push(problem);
                } else {
                    report(shown, problems_total, kept, problem);
                }
            }
        }
    });
    if unlisted > 0 {
        record_problems.push(Problem {
            file: name.to_string(),
            record: None,
            line: None,
            kind: ProblemKind::Record,
            message: format!(
                "{unlisted} more invalid records after these in the same JSON value, not listed one by one"
            ),
        });
    }
    (outcome, records, record_problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    struct Names(Vec<String>);

    impl Sink for Names {
        fn record(&mut self, _: &str, record: &Record<'_>) {
            self.0.push(record.event_name.to_string());
        }
    }

    fn scan_folder(dir: &Path, options: &ScanOptions) -> ScanReport<Names> {
        let plan = Plan::new(&[Input::Path(dir.to_path_buf())], options);
        scan_part(plan, options, &|| Names(Vec::new()), &|_| {}, &ProblemBudget::default())
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).expect("write");
        enc.finish().expect("finish")
    }

    const RECORD: &str = r#"{"eventTime":"2024-01-01T00:00:00Z","eventName":"A","eventSource":"s","userIdentity":{}}"#;

    #[test]
    fn a_file_of_many_invalid_records_reports_each_as_met() {
        // Reported as the scan meets them (none held): every one is named, past the cap a
        // stream's values have.
        let dir = tempfile::tempdir().expect("dir");
        let lines = format!("{RECORD}\n{}", "{\"a\":1}\n".repeat(MAX_LISTED_PER_TEXT + 2_000));
        std::fs::write(dir.path().join("many.jsonl"), lines).expect("write");
        let report = scan_folder(dir.path(), &ScanOptions::default());
        assert_eq!(report.stats.records_invalid, MAX_LISTED_PER_TEXT as u64 + 2_000);
        assert_eq!(report.problems_total, MAX_LISTED_PER_TEXT as u64 + 2_000);
        assert_eq!(report.sinks.iter().map(|s| s.0.len()).sum::<usize>(), 1);
    }

    #[test]
    fn byte_order_mark_and_huge_size_limit_read_every_record() {
        let dir = tempfile::tempdir().expect("dir");
        let body = format!("\u{feff}{{\"Records\":[{RECORD}]}}");
        std::fs::write(dir.path().join("plain.json"), &body).expect("write");
        std::fs::write(dir.path().join("packed.json.gz"), gzip(body.as_bytes())).expect("write");
        for limit in [1 << 20, u64::MAX] {
            let options = ScanOptions {
                max_file_bytes: limit,
                ..ScanOptions::default()
            };
            let report = scan_folder(dir.path(), &options);
            assert_eq!(
                (report.stats.records_read, report.problems_total),
                (2, 0),
                "limit {limit}"
            );
        }
    }

    #[test]
    fn unreadable_record_in_envelope_is_named_and_later_records_are_read() {
        let dir = tempfile::tempdir().expect("dir");
        let deep = format!(
            r#"{{"eventTime":"2024-01-01T00:00:00Z","eventName":"D","eventSource":"s","userIdentity":{{}},"requestParameters":{}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let surrogate = RECORD.replace(r#""A""#, r#""\ud800""#);
        let body = format!(r#"{{"Records":[{RECORD},{deep},{surrogate},{RECORD}]}}"#);
        std::fs::write(dir.path().join("f.json"), body).expect("write");
        let report = scan_folder(dir.path(), &ScanOptions::default());
        assert_eq!(report.stats.records_read, 4);
        assert_eq!(report.stats.records_invalid, 1, "the record nested 200 deep");
        assert_eq!(report.stats.files_damaged, 0);
        let names: Vec<&str> = report
            .sinks
            .iter()
            .flat_map(|s| s.0.iter().map(String::as_str))
            .collect();
        assert_eq!(names, ["A", "\u{fffd}", "A"]);
    }

    /// NDJSON of `count` records, each about `pad` bytes long.
    /// Files read, records read and problems of a scan.
    fn read_counts<S>(report: &ScanReport<S>) -> (u64, u64, u64) {
        (
            report.stats.files_read,
            report.stats.records_read,
            report.problems_total,
        )
    }

    fn ndjson(count: usize, pad: usize) -> Vec<u8> {
        let filler = "x".repeat(pad);
        let mut out = Vec::new();
        for i in 0..count {
            let line = RECORD.replace(
                r#""userIdentity":{}"#,
                &format!(r#""userIdentity":{{}},"requestParameters":{{"n":{i},"f":"{filler}"}}"#),
            );
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        out
    }

    #[test]
    fn files_larger_than_the_stream_size_are_streamed_and_need_no_size_limit() {
        let dir = tempfile::tempdir().expect("dir");
        let count = usize::try_from(STREAM_FILE_BYTES).expect("size") / 4000 + 100;
        let body = ndjson(count, 4000);
        assert!(body.len() as u64 > STREAM_FILE_BYTES);
        std::fs::write(dir.path().join("export.json"), &body).expect("write");
        let options = ScanOptions {
            max_file_bytes: 1 << 20,
            ..ScanOptions::default()
        };
        let report = scan_folder(dir.path(), &options);
        assert_eq!(read_counts(&report), (1, count as u64, 0));
        assert_eq!(report.stats.bytes_read, body.len() as u64);
    }

    #[test]
    fn gzip_inflating_past_the_stream_size_is_streamed() {
        let dir = tempfile::tempdir().expect("dir");
        let count = usize::try_from(STREAM_INFLATED_BYTES).expect("size") / 8000 + 100;
        let body = ndjson(count, 8000);
        let mut packer = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(1).expect("level"));
        let mut packed = vec![0; packer.gzip_compress_bound(body.len())];
        let size = packer.gzip_compress(&body, &mut packed).expect("gzip");
        packed.truncate(size);
        assert!((packed.len() as u64) < STREAM_FILE_BYTES);
        std::fs::write(dir.path().join("export.json.gz"), &packed).expect("write");
        let options = ScanOptions {
            max_file_bytes: 1 << 20,
            ..ScanOptions::default()
        };
        let report = scan_folder(dir.path(), &options);
        assert_eq!(read_counts(&report), (1, count as u64, 0));
        assert_eq!(report.stats.bytes_inflated, body.len() as u64);
    }

    #[test]
    fn a_multi_member_gzip_past_the_whole_read_size_is_streamed() {
        // The trailer gives the last member's size only: the file is found to be large while
        // it is inflated, and streamed from its start instead of held whole up to the limit.
        let dir = tempfile::tempdir().expect("dir");
        let count = usize::try_from(STREAM_INFLATED_BYTES).expect("size") / 8000 + 100;
        let body = ndjson(count, 8000);
        let half = body[..body.len() / 2]
            .iter()
            .rposition(|&b| b == b'\n')
            .expect("a line")
            + 1;
        let mut packer = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(1).expect("level"));
        let mut packed = Vec::new();
        for part in [&body[..half], &body[half..]] {
            let mut member = vec![0; packer.gzip_compress_bound(part.len())];
            let size = packer.gzip_compress(part, &mut member).expect("gzip");
            packed.extend_from_slice(&member[..size]);
        }
        assert!(crate::decode::gzip_size(&packed).is_some_and(|size| size < STREAM_INFLATED_BYTES));
        std::fs::write(dir.path().join("export.json.gz"), &packed).expect("write");
        // With the default limit, and with one below the whole-read size: either way every
        // record is read, the limit applying to one line at a time.
        for max_file_bytes in [ScanOptions::default().max_file_bytes, 1 << 20] {
            let options = ScanOptions {
                max_file_bytes,
                ..ScanOptions::default()
            };
            let report = scan_folder(dir.path(), &options);
            assert_eq!(read_counts(&report), (1, count as u64, 0), "{max_file_bytes}");
            assert_eq!(report.stats.bytes_inflated, body.len() as u64);
        }
        // A plain file over a small limit is streamed too.
        let small = ndjson(400, 4000);
        std::fs::remove_file(dir.path().join("export.json.gz")).expect("rm");
        std::fs::write(dir.path().join("small.json"), &small).expect("write");
        let options = ScanOptions {
            max_file_bytes: 1 << 20,
            ..ScanOptions::default()
        };
        let report = scan_folder(dir.path(), &options);
        assert_eq!((report.stats.records_read, report.problems_total), (400, 0));
    }

    /// The entries of a test archive: (path inside it, bytes).
    fn archive_entries() -> Vec<(String, Vec<u8>)> {
        let record = |name: &str| RECORD.replace(r#""eventName":"A""#, &format!(r#""eventName":"{name}""#));
        let envelope = format!(r#"{{"Records":[{}]}}"#, record("Enveloped"));
        let trail = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/01";
        vec![
            (
                format!("{trail}/111122223333_CloudTrail_us-east-1_20240101T0000Z_a.json.gz"),
                gzip(envelope.as_bytes()),
            ),
            (
                "export/lines.jsonl".into(),
                format!("{}\n", record("Line")).into_bytes(),
            ),
            // Larger than a file held whole (the tests' limit is 1 MB): streamed.
            ("export/large.ndjson".into(), ndjson(400, 4000)),
            (
                "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/01/01/d.json.gz".into(),
                gzip(b"{}"),
            ),
            (
                "AWSLogs/111122223333/vpcflowlogs/us-east-1/2024/01/01/f.log.gz".into(),
                gzip(b"version account-id\n"),
            ),
            ("README.txt".into(), b"not an event file".to_vec()),
            ("nested.zip".into(), b"PK not opened".to_vec()),
            ("../../etc/escape.json".into(), record("Escaped").into_bytes()),
        ]
    }

    fn tar_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            if path.contains("..") {
                // Written as given (the tar crate refuses `..`): a name is only a name.
                let name = &mut header.as_old_mut().name;
                name[..path.len()].copy_from_slice(path.as_bytes());
                header.set_cksum();
                builder.append(&header, data.as_slice()).expect("append");
            } else {
                // Long names through the GNU extension.
                builder.append_data(&mut header, path, data.as_slice()).expect("append");
            }
        }
        builder.into_inner().expect("tar")
    }

    fn zip_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (path, data) in entries {
            writer.start_file(path.as_str(), options).expect("entry");
            writer.write_all(data).expect("write");
        }
        writer.finish().expect("zip").into_inner()
    }

    #[test]
    fn archives_are_read_entry_by_entry_like_a_folder() {
        let entries = archive_entries();
        let tar = tar_of(&entries);
        let options = ScanOptions {
            max_file_bytes: 1 << 20,
            ..ScanOptions::default()
        };
        for (name, data) in [
            ("logs.tar", tar.clone()),
            ("logs.tar.gz", gzip(&tar)),
            ("logs.TGZ", gzip(&tar)),
            ("logs.zip", zip_of(&entries)),
        ] {
            let dir = tempfile::tempdir().expect("dir");
            std::fs::write(dir.path().join(name), &data).expect("write");
            let report = scan_folder(dir.path(), &options);
            let mut names: Vec<String> = report.sinks.into_iter().flat_map(|s| s.0).collect();
            names.sort();
            names.dedup();
            assert_eq!(names, ["A", "Enveloped", "Escaped", "Line"], "{name}");
            let stats = &report.stats;
            assert_eq!(
                (
                    stats.files_read,
                    stats.records_read,
                    stats.digests_skipped,
                    stats.other_logs_skipped,
                    report.problems_total
                ),
                (4, 403, 1, 1, 0),
                "{name}"
            );
        }
    }

    #[test]
    fn a_broken_archive_keeps_the_entries_before_the_break() {
        let entries = archive_entries();
        let packed = gzip(&tar_of(&entries[..2]));
        let dir = tempfile::tempdir().expect("dir");
        // Cut inside the second entry's data.
        std::fs::write(dir.path().join("cut.tar.gz"), &packed[..packed.len() - 40]).expect("write");
        std::fs::write(dir.path().join("not.zip"), b"PK\x03\x04 but nothing else").expect("write");
        let report = scan_folder(dir.path(), &ScanOptions::default());
        let names: Vec<String> = report.sinks.into_iter().flat_map(|s| s.0).collect();
        // The cut entry's bytes are read as far as they go (its one line is broken), and both
        // the entry and the archive are named as broken; the file that is no zip as unreadable.
        assert_eq!(names, ["Enveloped"]);
        assert_eq!(
            (report.stats.files_damaged, report.stats.files_failed),
            (2, 1),
            "{:?}",
            report.stats
        );
    }

    #[test]
    fn large_inflations_take_turns_across_workers() {
        let dir = tempfile::tempdir().expect("dir");
        // Held whole: not an array nor an envelope whose `Records` come first (those are read
        // element by element).
        let mut body = b"{\"pad\":\"".to_vec();
        body.resize(crate::decode::SMALL_BYTES + (1 << 20), b'x');
        body.extend_from_slice(b"\",\"Records\":[]}");
        let packed = gzip(&body);
        for i in 0..4 {
            std::fs::write(dir.path().join(format!("{i}.json.gz")), &packed).expect("write");
        }
        let pool = rayon::ThreadPoolBuilder::new().num_threads(4).build().expect("pool");
        let report = pool.install(|| scan_folder(dir.path(), &ScanOptions::default()));
        assert_eq!((report.stats.files_read, report.problems_total), (4, 0));
        assert_eq!(
            crate::decode::most_large_at_once(),
            1,
            "one worker at a time holds more than SMALL_BYTES"
        );
    }

    #[test]
    fn batches_follow_delivery_time() {
        let name = |t: &str| {
            PathBuf::from(format!(
                "AWSLogs/1/CloudTrail/us-east-1/2024/03/01/1_CloudTrail_us-east-1_{t}_x.json.gz"
            ))
        };
        let plan = Plan {
            files: vec![
                name("20240301T1305Z"),
                name("20240301T1205Z"),
                name("20240301T1210Z"),
                name("20240301T1500Z"),
            ],
            ..Plan::default()
        };
        let batches = plan.into_batches(Duration::hours(1), Duration::hours(1));
        let sizes: Vec<usize> = batches.iter().map(|(p, _)| p.files.len()).collect();
        assert_eq!(sizes, [2, 1, 1]);
        let at = |t: &str| trailhound_event::parse_event_time(t).expect("time");
        assert_eq!(
            batches[0].1,
            Some(at("2024-03-01T12:05:00Z")),
            "the 13:05 file may hold events from 12:05"
        );
        assert_eq!(batches[1].1, Some(at("2024-03-01T14:00:00Z")));
        assert_eq!(batches[2].1, None);
        let unnamed = Plan {
            files: vec![name("20240301T1305Z"), PathBuf::from("x.json")],
            ..Plan::default()
        };
        let batches = unnamed.into_batches(Duration::hours(1), Duration::hours(1));
        assert_eq!(batches.len(), 2);
        assert_eq!(
            batches[0].0.files,
            [PathBuf::from("x.json")],
            "undated files come first"
        );
        assert_eq!(batches[0].1, Some(at("2024-03-01T12:05:00Z")));
    }
}
