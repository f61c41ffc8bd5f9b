//! Standard input (or any reader) scanned as a stream: records are handed on as they arrive,
//! and memory is one top-level JSON value at a time (a line of NDJSON, one delivery envelope),
//! never the whole input.
//!
//! The stream is cut into top-level values by counting brackets outside strings; each value is
//! split into records like a file. A line that breaks off (NDJSON) ends where the next line
//! starts with `{`, as in a file. A value larger than the size limit is named, counted and passed
//! over; the values after it are read. Gzip (one or many members), a UTF-8 byte order mark and
//! invalid UTF-8 are handled as for files; UTF-16 is converted to UTF-8 as it arrives.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, MutexGuard, PoisonError, mpsc};

use chrono::{DateTime, Utc};
use trailhound_event::{Document, DocumentError, NextRecord, RecordError};

use crate::decode::{Marked, SMALL_BYTES, Turn, Utf16, unmarked, utf8_text};
use crate::scan::{
    Problem, ProblemBudget, ProblemKind, ScanOptions, ScanReport, Sink, Worker, merge_workers, scan_text,
};
use crate::window::TimeWindow;

/// Bytes asked of the reader at a time.
const CHUNK: usize = 256 << 10;

/// Scans everything `reader` yields as one source called `name`, into `sink`. Memory is
/// bounded by the largest top-level value (at most `options.max_file_bytes`), not the input.
pub fn scan_stream<S: Sink>(
    reader: impl Read,
    name: &str,
    options: &ScanOptions,
    sink: S,
    budget: &ProblemBudget,
) -> ScanReport<S> {
    let started = std::time::Instant::now();
    let mut worker = Worker::new(sink, &budget.shown);
    scan_reader(&mut worker, name, reader, options, None, false);
    let mut stats = worker.stats.clone();
    stats.elapsed = started.elapsed();
    ScanReport {
        stats,
        problems_total: worker.problems_total,
        sinks: vec![worker.sink],
    }
}

/// [`scan_stream`] with the scanning spread over rayon's threads, each into a sink `make_sink`
/// makes: the stream is read and cut on this thread, its values scanned in blocks by all. The
/// counts and the problems (numbered and reported in stream order) are those of
/// [`scan_stream`]; the records are the same, shared out among the sinks.
pub fn scan_stream_split<S: Sink>(
    reader: impl Read,
    name: &str,
    options: &ScanOptions,
    make_sink: &(dyn Fn() -> S + Sync),
    budget: &ProblemBudget,
) -> ScanReport<S> {
    scan_stream_in_blocks(reader, name, options, make_sink, budget, BLOCK_BYTES)
}

/// [`scan_stream_split`] with blocks of about `block_bytes` (the fuzz targets use tiny ones).
#[doc(hidden)]
pub fn scan_stream_in_blocks<S: Sink>(
    reader: impl Read,
    name: &str,
    options: &ScanOptions,
    make_sink: &(dyn Fn() -> S + Sync),
    budget: &ProblemBudget,
    block_bytes: usize,
) -> ScanReport<S> {
    let started = std::time::Instant::now();
    let helpers = Helpers::new(make_sink, &budget.shown);
    let mut worker = Worker::new(make_sink(), &budget.shown);
    if rayon::current_num_threads() > 1 {
        split(&mut worker, name, reader, options, &helpers, block_bytes.max(1), false);
    } else {
        Stream::new(&mut worker, name, options).run(reader);
    }
    let mut workers = vec![worker];
    workers.extend(helpers.into_workers());
    merge_workers(workers, crate::ScanStats::default(), 0, started)
}

/// [`scan_stream`] into a worker of a scan. With `helpers` (and more than one thread in rayon's
/// pool), the values cut from the stream are gathered in blocks that the other cores scan into
/// sinks of their own: one reader, the scanning spread out (see [`Par`]). `sweep`: the stream
/// may hand its sinks on at checkpoints, if the helpers take them (see [`Checkpoints`]).
pub(crate) fn scan_reader<'s, S: Sink>(
    worker: &mut Worker<'s, S>,
    name: &str,
    reader: impl Read,
    options: &ScanOptions,
    helpers: Option<&Helpers<'_, 's, S>>,
    sweep: bool,
) {
    let sweep = sweep && helpers.is_some_and(|h| h.checkpoints.is_some());
    match helpers.filter(|_| rayon::current_num_threads() > 1 || sweep) {
        Some(helpers) => split(worker, name, reader, options, helpers, BLOCK_BYTES, sweep),
        None => Stream::new(worker, name, options).run(reader),
    }
}

/// Offsets of a large plain file [`sampled_in_order`] looks at.
const SAMPLES: u64 = 64;
/// Bytes read at each.
const SAMPLE_BYTES: usize = 16 << 10;

/// Whether a large plain (not gzip) file about to be streamed looks in time order within `lag`:
/// the first `eventTime` found at each of [`SAMPLES`] evenly spaced offsets is no earlier than
/// `lag` before one found at an offset before it. A file made of per-region or per-account
/// parts one after the other (what `zcat` of a trail's folders makes) goes back in time where
/// each part starts: it is not swept along the way, its correlation state is kept to the end
/// (exact, at the memory it takes). A gzip file cannot be sampled, and is not swept either.
/// Leaves the file at its start.
pub(crate) fn sampled_in_order(file: &mut std::fs::File, lag: chrono::Duration) -> std::io::Result<bool> {
    use std::io::{Seek, SeekFrom};
    let size = file.metadata()?.len();
    let mut buf = vec![0; SAMPLE_BYTES];
    let mut latest: Option<DateTime<Utc>> = None;
    let mut ordered = true;
    for i in 0..SAMPLES {
        file.seek(SeekFrom::Start(size / SAMPLES * i))?;
        let mut got = 0;
        while got < buf.len() {
            match file.read(buf.get_mut(got..).unwrap_or_default()) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        let bytes = buf.get(..got).unwrap_or_default();
        if i == 0 && bytes.starts_with(&[0x1f, 0x8b]) {
            ordered = false;
            break;
        }
        if let Some(time) = first_event_time(bytes) {
            if latest.is_some_and(|latest| time < latest - lag) {
                ordered = false;
                break;
            }
            latest = latest.max(Some(time));
        }
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(ordered)
}

/// The first `"eventTime": "..."` in `bytes` that holds an RFC 3339 time.
fn first_event_time(bytes: &[u8]) -> Option<DateTime<Utc>> {
    let key = b"\"eventTime\"";
    for at in memchr::memmem::find_iter(bytes, key) {
        let rest = bytes.get(at + key.len()..)?;
        let rest = rest.trim_ascii_start().strip_prefix(b":")?.trim_ascii_start();
        let Some(rest) = rest.strip_prefix(b"\"") else { continue };
        let Some(end) = memchr::memchr(b'"', rest) else {
            continue;
        };
        let text = std::str::from_utf8(rest.get(..end)?).ok()?;
        if let Ok(time) = DateTime::parse_from_rfc3339(text) {
            return Some(time.to_utc());
        }
    }
    None
}

/// Scans the stream with its values spread over rayon's threads in blocks of about `block_bytes`.
fn split<'s, S: Sink>(
    worker: &mut Worker<'s, S>,
    name: &str,
    reader: impl Read,
    options: &ScanOptions,
    helpers: &Helpers<'_, 's, S>,
    block_bytes: usize,
    sweep: bool,
) {
    let (done, arrived) = mpsc::channel();
    let shared = Shared {
        helpers,
        name,
        window: options.window,
        waiting: Mutex::new(VecDeque::new()),
        idle: Mutex::new(Vec::new()),
        spare: Mutex::new(Vec::new()),
        done,
    };
    // In place: the reader (standard input's lock, say) need not move to another thread.
    rayon::in_place_scope(|scope| {
        let spawn = || scope.spawn(|_| help(&shared));
        let mut stream = Stream::new(worker, name, options);
        stream.sweep = sweep;
        stream.par = Some(Par {
            spawn: &spawn,
            shared: &shared,
            arrived,
            block: Block::default(),
            block_bytes,
            next_seq: 0,
            next_apply: 0,
            in_flight: 0,
            ready: BTreeMap::new(),
        });
        stream.run(reader);
    });
    let idle = shared.idle.into_inner().unwrap_or_else(PoisonError::into_inner);
    lock(&helpers.made).extend(idle);
}

/// Values gathered for another core: about this many bytes of them.
const BLOCK_BYTES: usize = 256 << 10;

/// Values in a block, at most: what comes back for each (its counts, its problems) is kept
/// until applied, and a stream of tiny values (`{}` a line) would otherwise put a hundred
/// thousand of them in one block.
const BLOCK_VALUES: usize = 2048;

/// A value this large is scanned by the reading thread itself rather than copied into a block:
/// blocks stay under `BLOCK_BYTES + ALONE_BYTES`.
const ALONE_BYTES: usize = 1 << 20;

/// Blocks waiting for a core, at most; past this the reading thread scans the oldest itself
/// (so a reader faster than the scanning neither runs ahead nor idles).
const MAX_WAITING: usize = 2;

/// What a scan gives a stream to spread its values over other cores: sinks for them, and the
/// list the workers made for it join when the stream ends (their sinks are the scan's too).
pub(crate) struct Helpers<'h, 's, S> {
    pub(crate) make_sink: &'h (dyn Fn() -> S + Sync),
    pub(crate) shown: &'s AtomicUsize,
    pub(crate) made: Mutex<Vec<Worker<'s, S>>>,
    /// Where a stream that is the whole read hands its sinks as time moves on.
    pub(crate) checkpoints: Option<Checkpoints<S>>,
}

/// A stream that is all a read holds hands its sinks to the reader every
/// `ScanOptions::checkpoint_bytes` (64 MB), with the time before which every event has been read, so that
/// correlations sweep their windows as the stream goes, as they do between batches of files.
/// That time is the latest event read minus `lag`, and only while the stream keeps to time order
/// within `lag` (every event no earlier than `lag` before one that came before it): a stream out
/// of order keeps its sinks to the end, as before, and no event is ever late for a sweep.
pub struct Checkpoints<S> {
    pub to: mpsc::Sender<(Vec<S>, DateTime<Utc>)>,
    pub lag: chrono::Duration,
}

/// Bytes of a stream between two checkpoints, unless the scan options say otherwise.
pub(crate) const CHECKPOINT_BYTES: usize = 64 << 20;

/// When the events a stream has read (in window) happened, in stream order.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Times {
    pub(crate) latest: Option<DateTime<Utc>>,
    earliest: Option<DateTime<Utc>>,
    /// How far the most any event came after a later one.
    lateness: chrono::Duration,
}

impl Times {
    /// An event, after those seen.
    pub(crate) fn see(&mut self, time: DateTime<Utc>) {
        self.then(&Times {
            latest: Some(time),
            earliest: Some(time),
            lateness: chrono::Duration::zero(),
        });
    }

    /// The events of `next`, after those seen.
    fn then(&mut self, next: &Times) {
        if let (Some(latest), Some(earliest)) = (self.latest, next.earliest) {
            self.lateness = self.lateness.max(latest - earliest);
        }
        self.lateness = self.lateness.max(next.lateness);
        self.latest = self.latest.max(next.latest);
        self.earliest = match (self.earliest, next.earliest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

impl<'h, 's, S> Helpers<'h, 's, S> {
    pub(crate) fn new(make_sink: &'h (dyn Fn() -> S + Sync), shown: &'s AtomicUsize) -> Self {
        Helpers {
            make_sink,
            shown,
            made: Mutex::new(Vec::new()),
            checkpoints: None,
        }
    }

    /// The workers made for streams, to be merged with the scan's.
    pub(crate) fn into_workers(self) -> Vec<Worker<'s, S>> {
        self.made.into_inner().unwrap_or_else(PoisonError::into_inner)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One stream's state shared with the cores that scan its blocks.
struct Shared<'h, 's, S> {
    helpers: &'h Helpers<'h, 's, S>,
    name: &'h str,
    window: TimeWindow,
    /// Blocks cut and not yet taken, oldest first.
    waiting: Mutex<VecDeque<Block>>,
    /// Workers not scanning a block now (one per core that helped, at most).
    idle: Mutex<Vec<Worker<'s, S>>>,
    /// Buffers of scanned blocks, for the next ones.
    spare: Mutex<Vec<Vec<u8>>>,
    done: mpsc::Sender<Done>,
}

/// Values cut from a stream, scanned together.
#[derive(Default)]
struct Block {
    /// Its place in the stream: results are applied in this order.
    seq: u64,
    bytes: Vec<u8>,
    /// Where each value ends in `bytes`, and the stream's lines before it.
    values: Vec<(usize, usize)>,
}

/// A block scanned.
struct Done {
    seq: u64,
    values: Vec<Scanned>,
}

/// What scanning one value found, for the stream to apply in order: record indexes count from
/// the value's first record (the stream adds the records before it); lines are the stream's.
struct Scanned {
    /// Lines of the stream before the value.
    at_line: usize,
    records: usize,
    outcome: Result<Document, DocumentError>,
    rejected: Vec<Problem>,
    invalid_utf8: bool,
    times: Times,
}

/// Scans one value into the worker's sink.
fn scan_one<S: Sink>(
    worker: &mut Worker<'_, S>,
    name: &str,
    bytes: &[u8],
    window: TimeWindow,
    at_line: usize,
) -> Scanned {
    let text = utf8_text(bytes);
    let invalid_utf8 = matches!(text, std::borrow::Cow::Owned(_));
    let mut times = Times::default();
    let (outcome, records, rejected) = scan_text(worker, name, &text, window, at_line, Some(&mut times), true);
    Scanned {
        at_line,
        records,
        outcome,
        rejected,
        invalid_utf8,
        times,
    }
}

/// Scans a block's values into the worker's sink; its buffer goes back for the next block.
fn scan_block<S: Sink>(worker: &mut Worker<'_, S>, shared: &Shared<'_, '_, S>, block: Block) -> Done {
    let mut start = 0;
    let mut values = Vec::with_capacity(block.values.len());
    for &(end, at_line) in &block.values {
        let bytes = block.bytes.get(start..end).unwrap_or_default();
        values.push(scan_one(worker, shared.name, bytes, shared.window, at_line));
        start = end;
    }
    let mut bytes = block.bytes;
    bytes.clear();
    // Only buffers of about a block's size are kept: one that held a large value is dropped
    // rather than kept at that size for every later block.
    if bytes.capacity() <= 2 * BLOCK_BYTES {
        lock(&shared.spare).push(bytes);
    }
    Done { seq: block.seq, values }
}

/// Another core's share of a stream: scans the oldest waiting block, if any is left.
fn help<S: Sink>(shared: &Shared<'_, '_, S>) {
    let Some(block) = lock(&shared.waiting).pop_front() else {
        return;
    };
    // Should the scan panic, the stream still hears of the block (and the scope re-raises the
    // panic once the stream ends) instead of waiting for it for ever.
    let mut answer = Answer {
        done: &shared.done,
        seq: block.seq,
        values: None,
    };
    let helpers = shared.helpers;
    let popped = lock(&shared.idle).pop();
    let mut worker = popped.unwrap_or_else(|| Worker::new((helpers.make_sink)(), helpers.shown));
    let done = scan_block(&mut worker, shared, block);
    lock(&shared.idle).push(worker);
    answer.values = Some(done.values);
}

/// Sends a block's results when dropped: what was scanned, or nothing if the scan panicked.
struct Answer<'a> {
    done: &'a mpsc::Sender<Done>,
    seq: u64,
    values: Option<Vec<Scanned>>,
}

impl Drop for Answer<'_> {
    fn drop(&mut self) {
        let values = self.values.take().unwrap_or_default();
        // The stream holds the receiver until every block it sent has come back.
        let _ = self.done.send(Done { seq: self.seq, values });
    }
}

/// A stream's side of the split: the block being gathered, and the results not yet applied.
struct Par<'w, 's, S> {
    /// Asks rayon for a core to run [`help`].
    spawn: &'w dyn Fn(),
    shared: &'w Shared<'w, 's, S>,
    arrived: mpsc::Receiver<Done>,
    block: Block,
    block_bytes: usize,
    next_seq: u64,
    /// The next block whose results are applied.
    next_apply: u64,
    /// Blocks sent and not back.
    in_flight: usize,
    /// Results back before those of an earlier block.
    ready: BTreeMap<u64, Vec<Scanned>>,
}

/// Counts the bytes read from the source, before inflation.
struct Counted<R> {
    inner: R,
    bytes: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.bytes.set(self.bytes.get() + read as u64);
        Ok(read)
    }
}

/// Where the bracket count stands in the bytes not yet cut into values.
#[derive(Default)]
struct Brackets {
    open: usize,
    in_string: bool,
    escaped: bool,
    /// A newline was met inside the current value (it is not a one-line value).
    multiline: bool,
    /// The current one-line value broke off at a newline: cut there if the next line starts `{`.
    broken_at: Option<usize>,
    /// The first line's bytes outside whitespace and string contents (which the cutter skips),
    /// up to [`HEAD`]: a first line that only opens an array (`[`) or an envelope's array
    /// (`{"Records":[`, seen as `{"":[`) has not broken off; any other has.
    head: [u8; HEAD],
    head_len: usize,
}

/// First-line bytes [`Brackets`] keeps.
const HEAD: usize = 6;

/// First lines that only open an array: `[`, and `{"KEY":[` (string contents are not seen).
const OPENERS: [&[u8]; 2] = [b"[", b"{\"\":["];

struct Stream<'w, 's, S> {
    worker: &'w mut Worker<'s, S>,
    name: &'w str,
    options: &'w ScanOptions,
    /// Bytes of the current value (and what follows it, not yet scanned).
    buf: Vec<u8>,
    /// How far `buf` has been scanned.
    scanned: usize,
    brackets: Brackets,
    /// Passing over a value larger than the limit: its bytes are dropped as they come.
    oversize: bool,
    /// Reading a top-level array or `{"Records":[` envelope too large to hold, element by
    /// element (see [`Elements`]).
    elements: Option<Elements>,
    /// The value being cut grew past the size at which arrays are read element by element and
    /// was found not to be one.
    unwrap_checked: bool,
    records: usize,
    lines: usize,
    /// Values seen that were not whitespace.
    values: usize,
    /// A foreign (non-CloudTrail) value, held back: an error if other values follow.
    foreign: Option<usize>,
    damaged: bool,
    invalid_utf8: bool,
    /// The stream is UTF-16, converted as it arrives.
    utf16: Option<Utf16>,
    turn: Turn,
    /// The most bytes held at once (for the tests).
    peak: usize,
    /// Spreading the scanning over other cores (see [`scan_reader`]); none: scanned here.
    par: Option<Par<'w, 's, S>>,
    /// When the events applied so far happened.
    times: Times,
    /// Bytes cut since the last checkpoint (see [`Checkpoints`]).
    since_checkpoint: usize,
    /// Checkpoints may be taken (the stream is the whole read, and looked in order).
    sweep: bool,
}

impl<'w, 's, S: Sink> Stream<'w, 's, S> {
    fn new(worker: &'w mut Worker<'s, S>, name: &'w str, options: &'w ScanOptions) -> Self {
        Stream {
            worker,
            name,
            options,
            buf: Vec::new(),
            scanned: 0,
            brackets: Brackets::default(),
            oversize: false,
            elements: None,
            unwrap_checked: false,
            records: 0,
            lines: 0,
            values: 0,
            foreign: None,
            damaged: false,
            invalid_utf8: false,
            utf16: None,
            turn: Turn::default(),
            peak: 0,
            par: None,
            times: Times::default(),
            since_checkpoint: 0,
            sweep: false,
        }
    }

    /// Reports a problem of the stream itself, after those of the values before it.
    fn problem(&mut self, line: Option<usize>, kind: ProblemKind, message: String) {
        self.sync();
        self.report(line, kind, message);
    }

    fn report(&mut self, line: Option<usize>, kind: ProblemKind, message: String) {
        self.worker.report(Problem {
            file: self.name.to_string(),
            record: None,
            line,
            kind,
            message,
        });
    }

    fn run(&mut self, reader: impl Read) {
        self.worker.stats.files_read += 1;
        let raw = std::rc::Rc::new(std::cell::Cell::new(0));
        let mut input = BufReader::with_capacity(
            CHUNK,
            Counted {
                inner: reader,
                bytes: raw.clone(),
            },
        );
        let gzip = matches!(input.fill_buf(), Ok([0x1f, 0x8b, ..]));
        let mut source: Box<dyn Read + '_> = match gzip {
            true => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
            false => Box::new(input),
        };
        let outcome = self.read_all(&mut *source);
        self.worker.stats.bytes_read += raw.get();
        match outcome {
            Ok(()) => {}
            Err(Refused::Read(err)) if self.worker.stats.bytes_inflated == 0 => {
                self.worker.stats.files_failed += 1;
                let what = if gzip { "not a gzip stream" } else { "cannot read" };
                self.problem(None, ProblemKind::Unreadable, format!("{what}: {err}"));
            }
            Err(Refused::Read(err)) => {
                self.damaged = true;
                let inflated = self.worker.stats.bytes_inflated;
                let what = if gzip { "gzip stream" } else { "stream" };
                let message = format!("{what} broken after {inflated} bytes: {err}; reading what came before");
                self.problem(None, ProblemKind::Damaged, message);
            }
        }
        if self.damaged {
            self.worker.stats.files_damaged += 1;
        }
    }

    /// Reads to the end, handing on every complete value as soon as it is in.
    fn read_all(&mut self, source: &mut dyn Read) -> Result<(), Refused> {
        let mut started = false;
        let mut chunk = vec![0; CHUNK];
        loop {
            let read = source.read(&mut chunk);
            let got = (*read.as_ref().unwrap_or(&0)).min(CHUNK);
            let piece = chunk.get(..got).unwrap_or_default();
            let before = self.buf.len();
            match &mut self.utf16 {
                Some(converter) => converter.push(piece, &mut self.buf),
                None => self.buf.extend_from_slice(piece),
            }
            if !started && (self.buf.len() >= 4 || got == 0) {
                started = true;
                self.start_text();
            }
            self.worker.stats.bytes_inflated += self.buf.len().saturating_sub(before) as u64;
            if let (Ok(0), Some(mut converter)) = (&read, self.utf16.take_if(|_| got == 0)) {
                // What was left of the last code unit or surrogate pair.
                converter.finish(&mut self.buf);
                if converter.replaced {
                    self.damaged = true;
                    self.problem(None, ProblemKind::Damaged, "invalid UTF-16 replaced with U+FFFD".into());
                }
            }
            match read {
                Ok(0) => break,
                Ok(_) if started => self.cut(),
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => {
                    self.finish();
                    return Err(Refused::Read(err));
                }
            }
        }
        self.finish();
        Ok(())
    }

    /// The first bytes are in: a UTF-8 byte order mark is dropped, and UTF-16 (by its mark or
    /// its NULs) converted from here on.
    fn start_text(&mut self) {
        match unmarked(&self.buf) {
            Marked::Utf8(rest) => {
                let marked = self.buf.len() - rest.len();
                self.buf.drain(..marked);
            }
            Marked::Utf16 { rest, big_endian } => {
                let mut converter = Utf16::new(big_endian);
                let mut text = Vec::with_capacity(self.buf.capacity());
                converter.push(rest, &mut text);
                self.buf = text;
                self.utf16 = Some(converter);
            }
        }
    }

    /// Cuts the complete values out of the buffer and scans them.
    fn cut(&mut self) {
        // One mode after the other, as the buffer's values and arrays come (a loop, not
        // recursion: a buffer may hold many arrays).
        loop {
            let switched = if self.elements.is_some() {
                self.cut_elements()
            } else {
                self.cut_values()
            };
            if !switched {
                return;
            }
        }
    }

    /// Cuts the complete values out of the buffer and scans them; true when it stopped at an
    /// array to read element by element.
    fn cut_values(&mut self) -> bool {
        let mut start = 0;
        let mut at = self.scanned;
        loop {
            if self.brackets.in_string && !self.brackets.escaped {
                // Inside a string only a quote, a backslash or a newline matters: jump to it.
                let rest = self.buf.get(at..).unwrap_or_default();
                at += memchr::memchr3(b'"', b'\\', b'\n', rest).unwrap_or(rest.len());
            }
            let Some(&byte) = self.buf.get(at) else {
                break;
            };
            at += 1;
            if start + 1 == at
                && self.brackets.open == 0
                && !self.brackets.in_string
                && matches!(byte, b' ' | b'\t' | b'\r' | b',')
            {
                // Blanks before a value are no part of it: a stream of nothing but blanks holds
                // nothing (newlines end a value, so they are dropped anyway). So is a comma:
                // between top-level values it is what is left of a list whose brackets damage
                // broke (`{"Records":[...` cut short, then `,{record},{record}]}`), or objects
                // written comma-separated; each object after it is read as a value.
                start = at;
                continue;
            }
            if self.unwrap(start, at) {
                return true;
            }
            if let Some(end) = self.brackets.step(byte, at) {
                self.unwrap_checked = false;
                self.value(start, end);
                start = end;
                if end < at {
                    // Cut before this byte: count it again as the start of the next value.
                    at = end;
                }
            }
        }
        if self.unwrap(start, at) {
            return true;
        }
        self.buf.drain(..start);
        self.scanned = at - start;
        self.peak = self.peak.max(self.buf.capacity());
        let held = self.buf.len() as u64;
        if self.oversize {
            // Passing over: keep nothing of it.
            self.lines += newlines(&self.buf);
            self.buf.clear();
            self.scanned = 0;
        } else if held > self.options.max_file_bytes {
            self.too_large();
            self.oversize = true;
            self.lines += newlines(&self.buf);
            self.buf.clear();
            self.scanned = 0;
        } else if held > NOT_JSON_HOLD
            && let Some(&first) = self.buf.iter().find(|b| !b.is_ascii_whitespace())
            && !could_start_json(first)
        {
            // A long run of bytes that no JSON value starts like (a binary file, a stream of
            // zeros out of a gzip bomb): named now and passed over to the end of its line,
            // instead of held up to the size limit.
            let message = format!("not JSON: the value starts with {:?}; passed over", char::from(first));
            self.problem(Some(self.lines + 1), ProblemKind::Damaged, message);
            self.damaged = true;
            self.oversize = true;
            self.lines += newlines(&self.buf);
            self.buf.clear();
            self.scanned = 0;
        } else {
            self.turn.need(held);
        }
        // A large value is gone: give its memory and the large turn back.
        if self.buf.len() <= SMALL_BYTES / 2 && self.buf.capacity() > SMALL_BYTES {
            self.buf.shrink_to(CHUNK);
        }
        if self.buf.len() <= SMALL_BYTES {
            self.turn = Turn::default();
        }
        false
    }

    /// When the value being cut (from `start`, read up to `at`) has grown too large to hold
    /// and is an array or a `{"Records":[` envelope, goes on reading it element by element.
    fn unwrap(&mut self, start: usize, at: usize) -> bool {
        if self.unwrap_checked
            || self.oversize
            || self.brackets.open == 0
            || (at - start) as u64 <= self.options.max_file_bytes.min(UNWRAP_BYTES)
        {
            return false;
        }
        self.unwrap_checked = true;
        let Some((prefix, container)) = container_prefix(self.buf.get(start..).unwrap_or_default()) else {
            return false;
        };
        self.buf.drain(..start);
        self.lines += newlines(self.buf.get(..prefix).unwrap_or_default());
        self.buf.drain(..prefix);
        self.scanned = 0;
        self.brackets = Brackets::default();
        self.unwrap_checked = false;
        self.elements = Some(Elements::new(container));
        true
    }

    /// Cuts the complete elements of the array being read element by element and scans each
    /// as a value of its own; true once the array (and its envelope) closed: the rest of the
    /// buffer is values again.
    fn cut_elements(&mut self) -> bool {
        let Some(mut e) = self.elements.take() else {
            return false;
        };
        let mut at = self.scanned;
        let mut done = false;
        'read: loop {
            if e.lost || e.resync.is_some() {
                match self.resync(&mut e) {
                    Some(found) => at = found,
                    None => {
                        self.elements = Some(e);
                        return false;
                    }
                }
            }
            while let Some(&byte) = self.buf.get(at) {
                if e.in_string {
                    if e.escaped {
                        e.escaped = false;
                    } else if byte == b'\\' {
                        e.escaped = true;
                    } else if byte == b'"' {
                        e.in_string = false;
                    } else if byte == 0 {
                        self.damaged_list(&mut e, at, NUL_DAMAGE);
                        continue 'read;
                    } else {
                        // Only a quote, a backslash or a NUL (damage) matters in a string: jump
                        // to the next.
                        let rest = self.buf.get(at..).unwrap_or_default();
                        at += memchr::memchr3(b'"', b'\\', 0, rest).unwrap_or(rest.len());
                        continue;
                    }
                    at += 1;
                    continue;
                }
                let at_container = e.depth == e.container;
                if e.after_close != AfterClose::Any && !byte.is_ascii_whitespace() {
                    // What may follow the list in its envelope: the envelope's end, or another
                    // member. Anything else closed the list early: damage.
                    let fine = match e.after_close {
                        AfterClose::EndOrComma => matches!(byte, b'}' | b','),
                        AfterClose::Key => byte == b'"',
                        AfterClose::Any => true,
                    };
                    if !fine {
                        self.damaged_list(&mut e, at, "bytes that closed the list early");
                        continue 'read;
                    }
                    e.after_close = if byte == b',' { AfterClose::Key } else { AfterClose::Any };
                }
                match byte {
                    b'"' => {
                        e.begin(at, &self.buf, &mut self.lines);
                        e.in_string = true;
                    }
                    b'{' | b'[' => {
                        e.begin(at, &self.buf, &mut self.lines);
                        e.open(byte == b'{');
                        e.depth += 1;
                    }
                    // A list closed by a `}`: bytes overwritten.
                    b'}' if at_container && !e.closed => {
                        self.damaged_list(&mut e, at, "a `}` that closes no object");
                        continue 'read;
                    }
                    // A bracket closing the other kind inside an element: bytes overwritten or
                    // lost, or strings turned inside out.
                    b'}' | b']' if !e.closes(byte == b'}') => {
                        self.damaged_list(&mut e, at, "a bracket that closes the other kind");
                        continue 'read;
                    }
                    b'}' | b']' => {
                        if at_container && !e.closed && e.container > 1 {
                            e.after_close = AfterClose::EndOrComma;
                        }
                        if at_container {
                            // A scalar element ends where its container does.
                            if let Some(start) = e.start.take() {
                                self.element(&mut e, start, at);
                            }
                            e.closed = true;
                        }
                        e.depth = e.depth.saturating_sub(1);
                        if e.depth == e.container && !at_container {
                            if let Some(start) = e.start.take() {
                                self.element(&mut e, start, at + 1);
                            }
                        } else if e.depth == 0 {
                            done = true;
                            at += 1;
                            break;
                        }
                    }
                    b',' if at_container && !e.closed => {
                        if let Some(start) = e.start.take() {
                            self.element(&mut e, start, at);
                        }
                    }
                    b' ' | b'\t' | b'\r' | b'\n' => {}
                    // No JSON holds a NUL: a zeroed block, a crash's hole in the file.
                    0 => {
                        self.damaged_list(&mut e, at, NUL_DAMAGE);
                        continue 'read;
                    }
                    // A byte no JSON holds outside a string: bytes overwritten, or a quote
                    // lost or added, which turns the strings after it inside out (their text
                    // is then read as if outside one: `eventVersion`). Without this, the
                    // brackets in the strings would be counted and the list's end never found.
                    _ if !outside_a_string(byte) => {
                        self.damaged_list(&mut e, at, "a byte that is no JSON");
                        continue 'read;
                    }
                    _ if at_container => e.begin(at, &self.buf, &mut self.lines),
                    _ => {}
                }
                at += 1;
            }
            break;
        }
        if done {
            self.lines += newlines(self.buf.get(e.gap..at).unwrap_or_default());
            self.buf.drain(..at);
            self.scanned = 0;
            // What follows the array is read as values again.
            return true;
        }
        // Keep only the element being read (nothing when passing one over).
        let keep_from = match e.start {
            Some(start) if !e.skipping => start,
            _ => {
                self.lines += newlines(self.buf.get(e.gap..at).unwrap_or_default());
                e.gap = at;
                at
            }
        };
        self.buf.drain(..keep_from);
        e.shift(keep_from);
        self.scanned = at - keep_from;
        let held = self.buf.len() as u64;
        if let Some(start) = e
            .start
            .filter(|_| e.container > 1 && !e.skipping && held > trailhound_event::RESYNC_RECORD_BYTES as u64)
        {
            // A record of a `Records` list (at most 256 KB from CloudTrail) over 1 MB: its
            // closing bytes were lost, and the records after it are inside it. Read on from the
            // first of them.
            self.damaged_list(&mut e, start + 1, "a record over 1 MB (its end lost?)");
            self.elements = Some(e);
            return self.cut_elements();
        }
        if e.start.is_some() && !e.skipping && held > self.options.max_file_bytes {
            // One element larger than the limit: named, and its bytes dropped until it ends.
            self.too_large();
            e.skipping = true;
            self.lines += newlines(&self.buf);
            self.buf.clear();
            self.scanned = 0;
            e.gap = 0;
        }
        self.peak = self.peak.max(self.buf.capacity());
        if !e.skipping {
            self.turn.need(self.buf.len() as u64);
        }
        if self.buf.len() <= SMALL_BYTES / 2 && self.buf.capacity() > SMALL_BYTES {
            self.buf.shrink_to(CHUNK);
        }
        if self.buf.len() <= SMALL_BYTES {
            self.turn = Turn::default();
        }
        self.elements = Some(e);
        false
    }

    /// Damage at `at` inside the list (`what`: a NUL byte, a byte that is no JSON): named, the
    /// element it is in dropped, and the next record searched for from there.
    fn damaged_list(&mut self, e: &mut Elements, at: usize, what: &str) {
        let line = self.lines + newlines(self.buf.get(e.gap..at).unwrap_or_default()) + 1;
        let message = format!(
            "{what} inside the list: the element it is in is dropped, and the list read on from the next record \
             after it"
        );
        self.problem(Some(line), ProblemKind::Damaged, message);
        self.damaged = true;
        e.start = None;
        e.in_string = false;
        e.escaped = false;
        e.skipping = false;
        e.closed = false;
        e.after_close = AfterClose::Any;
        e.depth = e.container;
        e.resync = Some(at);
        e.tries = RESYNC_TRIES;
    }

    /// Searches the buffer for the record to read the list on from, after damage: where it
    /// starts, or `None` when more bytes are needed (what cannot hold it is dropped). With no
    /// record within [`RESYNC_TRIES`] objects, the rest of the stream is passed over.
    fn resync(&mut self, e: &mut Elements) -> Option<usize> {
        let from = match (e.lost, e.resync) {
            (false, Some(from)) => from,
            _ => self.buf.len(),
        };
        let keep = match trailhound_event::next_record_in(&self.buf, from, e.container, &mut e.tries) {
            _ if e.lost => self.buf.len(),
            NextRecord::At(found) => {
                e.resync = None;
                return Some(found);
            }
            NextRecord::More(found) => found,
            NextRecord::Not(found) => {
                if e.tries == 0 && found < self.buf.len() {
                    let line = self.lines + newlines(self.buf.get(e.gap..found).unwrap_or_default()) + 1;
                    let message = format!(
                        "no record found within {RESYNC_TRIES} objects after damage in the list: the rest is passed over"
                    );
                    self.problem(Some(line), ProblemKind::Damaged, message);
                    e.lost = true;
                    e.resync = None;
                    self.buf.len()
                } else {
                    found
                }
            }
        };
        // Drop what was searched; keep a candidate that may yet be a record.
        self.lines += newlines(self.buf.get(e.gap..keep).unwrap_or_default());
        self.buf.drain(..keep);
        e.gap = 0;
        if !e.lost {
            e.resync = Some(0);
        }
        self.scanned = 0;
        None
    }

    /// One element of the array, `buf[start..end]`, read as a value (or passed over).
    fn element(&mut self, e: &mut Elements, start: usize, end: usize) {
        if std::mem::take(&mut e.skipping) {
            self.lines += newlines(self.buf.get(e.gap..end).unwrap_or_default());
        } else {
            self.value(start, end);
        }
        e.gap = end;
    }

    /// The bytes at the end of the stream: the last value, if any.
    fn finish(&mut self) {
        self.cut();
        if let Some(elements) = self.elements.take() {
            // The stream ended inside the array: its last element, if whole, was read.
            let rest = self.buf.get(elements.gap..).unwrap_or_default();
            let lines = newlines(rest);
            let line = self.lines + 1;
            self.problem(
                Some(line),
                ProblemKind::Damaged,
                "the stream ended inside a top-level array; the elements before it were read".into(),
            );
            self.damaged = true;
            self.lines += lines;
            self.buf.clear();
            self.scanned = 0;
        }
        let len = self.buf.len();
        if len > 0 && !self.oversize {
            self.value(0, len);
        }
        self.buf.clear();
        self.scanned = 0;
        self.sync();
        if let Some(line) = self.foreign.take() {
            match self.values {
                1 => self.worker.stats.files_foreign += 1,
                _ => self.flush_foreign(line),
            }
        }
    }

    /// Scans the value in `buf[start..end]`.
    fn value(&mut self, start: usize, end: usize) {
        let buf = std::mem::take(&mut self.buf);
        let bytes = buf.get(start..end).unwrap_or_default();
        if std::mem::take(&mut self.oversize) {
            // The end of a value passed over.
            self.lines += newlines(bytes);
        } else if bytes.len() as u64 > self.options.max_file_bytes {
            self.too_large();
            self.lines += newlines(bytes);
        } else {
            self.hand_on(bytes);
        }
        self.buf = buf;
    }

    /// Names and counts a value larger than the limit, which is passed over.
    fn too_large(&mut self) {
        let message = format!(
            "a JSON value larger than the {}-byte limit (raise --max-file-size to read it); passed over",
            self.options.max_file_bytes
        );
        self.problem(Some(self.lines + 1), ProblemKind::Damaged, message);
        self.damaged = true;
    }

    /// Scans the value `bytes`, or gathers it for another core.
    fn hand_on(&mut self, bytes: &[u8]) {
        let at_line = self.lines;
        self.lines += newlines(bytes);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let window = self.options.window;
        let Some(par) = self.par.as_mut() else {
            let scanned = scan_one(self.worker, self.name, bytes, window, at_line);
            self.apply(scanned);
            return;
        };
        if bytes.len() < ALONE_BYTES {
            if par.block.bytes.capacity() == 0 {
                par.block.bytes.reserve(par.block_bytes.max(bytes.len()));
            }
            par.block.bytes.extend_from_slice(bytes);
            let end = par.block.bytes.len();
            par.block.values.push((end, at_line));
            if end >= par.block_bytes || par.block.values.len() >= BLOCK_VALUES {
                self.send_block();
            }
        } else {
            // Too large to copy: scanned here, in its place in the order.
            self.send_block();
            let seq = par_seq(&mut self.par);
            let scanned = scan_one(self.worker, self.name, bytes, window, at_line);
            self.arrived(Done {
                seq,
                values: vec![scanned],
            });
        }
        self.since_checkpoint += bytes.len();
        if self.since_checkpoint >= self.options.checkpoint_bytes {
            self.checkpoint();
        }
    }

    /// Hands the sinks to the reader with the time before which every event has been read,
    /// when the stream is the whole read and in time order so far (see [`Checkpoints`]).
    fn checkpoint(&mut self) {
        self.since_checkpoint = 0;
        if !self.sweep {
            return;
        }
        let Some(shared) = self.par.as_ref().map(|par| par.shared) else {
            return;
        };
        let helpers = shared.helpers;
        let Some(checkpoints) = &helpers.checkpoints else {
            return;
        };
        self.sync();
        let Some(latest) = self.times.latest else {
            return;
        };
        if self.times.lateness > checkpoints.lag {
            return;
        }
        // Every block is back (sync): every worker is idle, its sink has all it will get so far.
        let mut sinks = vec![std::mem::replace(&mut self.worker.sink, (helpers.make_sink)())];
        for worker in lock(&shared.idle).iter_mut() {
            sinks.push(std::mem::replace(&mut worker.sink, (helpers.make_sink)()));
        }
        // A reader gone (it stopped listening) takes nothing: the sinks are dropped with it.
        let _ = checkpoints.to.send((sinks, latest - checkpoints.lag));
    }

    /// Sends the block gathered so far to the other cores (or, when enough wait, scans the
    /// oldest waiting one here).
    fn send_block(&mut self) {
        let Some(par) = self.par.as_mut() else {
            return;
        };
        if par.block.values.is_empty() {
            return;
        }
        let spare = lock(&par.shared.spare).pop().unwrap_or_default();
        let mut block = std::mem::replace(
            &mut par.block,
            Block {
                bytes: spare,
                ..Block::default()
            },
        );
        block.seq = par_seq(&mut self.par);
        let Some(par) = self.par.as_ref() else {
            return;
        };
        let waiting = {
            let mut waiting = lock(&par.shared.waiting);
            waiting.push_back(block);
            waiting.len()
        };
        if waiting > MAX_WAITING {
            self.scan_waiting();
        } else {
            (par.spawn)();
        }
        self.collect();
    }

    /// Scans the oldest waiting block here; false when none waits.
    fn scan_waiting(&mut self) -> bool {
        let Some(shared) = self.par.as_ref().map(|par| par.shared) else {
            return false;
        };
        let Some(block) = lock(&shared.waiting).pop_front() else {
            return false;
        };
        let done = scan_block(self.worker, shared, block);
        self.arrived(done);
        true
    }

    /// Applies the results that came back, as far as the order allows.
    fn collect(&mut self) {
        while let Some(done) = self.par.as_ref().and_then(|par| par.arrived.try_recv().ok()) {
            self.arrived(done);
        }
    }

    /// A block's results: applied now if every earlier block's were, else kept until they are.
    fn arrived(&mut self, done: Done) {
        let Some(par) = self.par.as_mut() else {
            return;
        };
        par.in_flight = par.in_flight.saturating_sub(1);
        par.ready.insert(done.seq, done.values);
        loop {
            let next = self.par.as_mut().and_then(|par| {
                let values = par.ready.remove(&par.next_apply)?;
                par.next_apply += 1;
                Some(values)
            });
            let Some(values) = next else {
                return;
            };
            for scanned in values {
                self.apply(scanned);
            }
        }
    }

    /// Waits until every value cut so far is scanned and applied (scanning waiting blocks here
    /// meanwhile).
    fn sync(&mut self) {
        self.send_block();
        loop {
            self.collect();
            if self.par.as_ref().is_none_or(|par| par.in_flight == 0) {
                return;
            }
            if self.scan_waiting() {
                continue;
            }
            // None waits: every block not back is being scanned on another core.
            let done = self.par.as_ref().map(|par| par.arrived.recv());
            match done {
                Some(Ok(done)) => self.arrived(done),
                // No sender left (cannot happen while the stream holds the shared state).
                _ => return,
            }
        }
    }

    /// What scanning a value found, in stream order: counts, problems, the document's shape.
    fn apply(&mut self, scanned: Scanned) {
        self.values += 1;
        if let Some(line) = self.foreign.take() {
            self.flush_foreign(line);
        }
        if scanned.invalid_utf8 && !std::mem::replace(&mut self.invalid_utf8, true) {
            self.damaged = true;
            let message = "invalid UTF-8 replaced with U+FFFD".to_string();
            self.report(Some(scanned.at_line + 1), ProblemKind::Damaged, message);
        }
        for mut problem in scanned.rejected {
            problem.record = problem.record.map(|record| record + self.records);
            self.worker.report(problem);
        }
        self.records += scanned.records;
        self.times.then(&scanned.times);
        match scanned.outcome {
            Ok(Document::Digest) => self.worker.stats.digests_skipped += 1,
            Ok(Document::Other) => self.foreign = Some(scanned.at_line + 1),
            Ok(_) => {}
            Err(err) => {
                self.damaged = true;
                // Counted in the stream, not in the value (which may be one line of many).
                let message = format!("{}; {} records before it were read", err.message, self.records);
                self.report(Some(scanned.at_line + err.line), ProblemKind::Damaged, message);
            }
        }
    }

    /// A held-back foreign value, now that others follow it: a record error.
    fn flush_foreign(&mut self, line: usize) {
        self.worker.stats.records_read += 1;
        self.worker.stats.records_invalid += 1;
        let record = self.records;
        self.records += 1;
        self.worker.report(Problem {
            file: self.name.to_string(),
            record: Some(record),
            line: Some(line),
            kind: ProblemKind::Record,
            message: RecordError::NotCloudTrail.to_string(),
        });
    }
}

impl Brackets {
    /// Takes `byte` (which ends at offset `at`); returns where the current value ends, when it
    /// does: after a closing bracket or a newline at the top level, or before a line starting
    /// with `{` that follows a one-line value that broke off.
    fn step(&mut self, byte: u8, at: usize) -> Option<usize> {
        if let Some(cut) = self.broken_at.take()
            && byte == b'{'
        {
            *self = Brackets::default();
            return Some(cut);
        }
        if !self.multiline && !byte.is_ascii_whitespace() {
            if let Some(slot) = self.head.get_mut(self.head_len) {
                *slot = byte;
            }
            self.head_len = (self.head_len + 1).min(HEAD);
        }
        if self.in_string {
            match byte {
                _ if self.escaped => self.escaped = false,
                b'\\' => self.escaped = true,
                b'"' => self.in_string = false,
                // No JSON string holds a raw newline: the line broke off.
                b'\n' => self.in_string = false,
                _ => return None,
            }
            if byte != b'\n' {
                return None;
            }
        }
        match byte {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.open += 1,
            b'}' | b']' => {
                self.open = self.open.saturating_sub(1);
                if self.open == 0 {
                    *self = Brackets::default();
                    return Some(at);
                }
            }
            b'\n' if self.open == 0 => {
                *self = Brackets::default();
                return Some(at);
            }
            b'\n' => {
                let opens = self
                    .head
                    .get(..self.head_len)
                    .is_some_and(|head| OPENERS.contains(&head));
                if !self.multiline && !opens {
                    self.broken_at = Some(at);
                }
                self.multiline = true;
            }
            b' ' | b'\t' | b'\r' => {}
            _ => {}
        }
        None
    }
}

/// Bytes held of a value that does not start like JSON before it is passed over (below this,
/// it is scanned whole and named as a file's first line would be).
const NOT_JSON_HOLD: u64 = 1 << 20;

/// Whether a JSON value (or a CloudWatch Logs export's timestamped line, or a byte order mark)
/// can start with `byte`.
fn could_start_json(byte: u8) -> bool {
    matches!(
        byte,
        b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n' | 0xEF
    )
}

/// Values held whole up to this size; a larger top-level array or `{"Records":[` envelope is
/// read element by element, so memory is one record, whatever the array's size.
const UNWRAP_BYTES: u64 = 4 << 20;

/// Where the elements of a top-level array start: after `[`, or after `{"Records":[` (or
/// `{"Events":[`, `{"events":[`; spaces allowed between the tokens). Returns the prefix's
/// length and the elements' depth.
fn container_prefix(buf: &[u8]) -> Option<(usize, usize)> {
    let mut at = 0;
    let skip = |at: &mut usize| {
        while buf.get(*at).is_some_and(u8::is_ascii_whitespace) {
            *at += 1;
        }
    };
    skip(&mut at);
    match buf.get(at)? {
        b'[' => Some((at + 1, 1)),
        b'{' => {
            at += 1;
            skip(&mut at);
            // An envelope's records, or a list of wrapped events first (LookupEvents output,
            // CloudWatch Logs' FilterLogEvents): each element is read as a value.
            let key = [&b"\"Records\""[..], b"\"Events\"", b"\"events\""]
                .into_iter()
                .find(|key| buf.get(at..at + key.len()) == Some(*key))?;
            at += key.len();
            skip(&mut at);
            (buf.get(at)? == &b':').then_some(())?;
            at += 1;
            skip(&mut at);
            (buf.get(at)? == &b'[').then_some((at + 1, 2))
        }
        _ => None,
    }
}

/// The state of reading a top-level array element by element. Positions are in the stream's
/// buffer and move as it is drained.
#[derive(Debug)]
struct Elements {
    /// The elements' depth: 1 in an array, 2 in an envelope's `Records`.
    container: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// Where the element being read starts.
    start: Option<usize>,
    /// Where the bytes between elements (commas, spaces) start, for counting lines.
    gap: usize,
    /// Passing over an element larger than the limit.
    skipping: bool,
    /// The array closed (an envelope's other members may follow): no element starts.
    closed: bool,
    /// What may come next after the list closed in its envelope.
    after_close: AfterClose,
    /// The kinds of the brackets open inside the element being read, one bit a level (set:
    /// `{`), for the first [`KIND_LEVELS`] levels.
    kinds: [u64; KIND_LEVELS / 64],
    /// After damage: the next record is searched for from here.
    resync: Option<usize>,
    /// Objects the search may still try ([`RESYNC_TRIES`]).
    tries: usize,
    /// No record was found after damage: the rest of the stream is passed over.
    lost: bool,
}

/// What may come next in an envelope whose list has just closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterClose {
    /// Anything: the list is open, or what follows it was seen to be sound.
    Any,
    /// The envelope's `}`, or a `,` before another member.
    EndOrComma,
    /// The key of another member.
    Key,
}

/// Levels of brackets inside an element whose kinds are checked (records nest far less).
const KIND_LEVELS: usize = 256;

/// What a NUL byte in a list is taken for.
const NUL_DAMAGE: &str = "a NUL byte (a zeroed block?)";

/// Whether `byte` may stand outside a string in JSON: blanks, brackets and separators, the
/// start of a string, and the characters of numbers and of `true`, `false` and `null`.
fn outside_a_string(byte: u8) -> bool {
    matches!(
        byte,
        b' ' | b'\t' | b'\r' | b'\n' | b'{' | b'}' | b'[' | b']' | b',' | b':' | b'"' | b'0'
            ..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E' | b't' | b'r' | b'u' | b'f' | b'a' | b'l' | b's' | b'n'
    )
}

/// Objects tried, after damage in a streamed list, to find the next record (as in a file read
/// whole).
const RESYNC_TRIES: usize = 10_000;

impl Elements {
    fn new(container: usize) -> Elements {
        Elements {
            container,
            depth: container,
            in_string: false,
            escaped: false,
            start: None,
            gap: 0,
            skipping: false,
            closed: false,
            after_close: AfterClose::Any,
            kinds: [0; KIND_LEVELS / 64],
            resync: None,
            tries: 0,
            lost: false,
        }
    }

    /// An element starts at `at` unless one already has (only at the container's depth).
    fn begin(&mut self, at: usize, buf: &[u8], lines: &mut usize) {
        if self.depth == self.container && self.start.is_none() && !self.closed {
            *lines += newlines(buf.get(self.gap..at).unwrap_or_default());
            self.gap = at;
            self.start = Some(at);
        }
    }

    /// A bracket opens at the current depth (a `{` when `brace`).
    fn open(&mut self, brace: bool) {
        let level = self.depth.wrapping_sub(self.container);
        if let Some(word) = self.kinds.get_mut(level / 64) {
            let bit = 1u64 << (level % 64);
            *word = if brace { *word | bit } else { *word & !bit };
        }
    }

    /// Whether a closing bracket (a `}` when `brace`) closes the kind open at this depth (true
    /// where nothing is known: at the container's depth or below, past [`KIND_LEVELS`]).
    fn closes(&self, brace: bool) -> bool {
        let Some(level) = self.depth.checked_sub(self.container + 1) else {
            return true;
        };
        match self.kinds.get(level / 64) {
            Some(word) => ((word >> (level % 64)) & 1 == 1) == brace,
            None => true,
        }
    }

    /// The buffer lost its first `n` bytes.
    fn shift(&mut self, n: usize) {
        self.start = self.start.map(|s| s.saturating_sub(n));
        self.gap = self.gap.saturating_sub(n);
    }
}

/// The next block's place in the stream, counted in flight.
fn par_seq<S>(par: &mut Option<Par<'_, '_, S>>) -> u64 {
    let Some(par) = par.as_mut() else {
        return 0;
    };
    let seq = par.next_seq;
    par.next_seq += 1;
    par.in_flight += 1;
    seq
}

fn newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// Why a stream was not read to its end.
enum Refused {
    Read(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn rec(name: &str) -> String {
        format!(
            r#"{{"eventTime":"2024-01-01T00:00:00Z","eventName":"{name}","eventSource":"s","userIdentity":{{}},"requestParameters":{{"pad":"{}"}}}}"#,
            "x".repeat(100)
        )
    }

    /// [`rec`] as the body of a JSON string (how LookupEvents and CloudWatch Logs carry it).
    fn rec_text(name: &str) -> String {
        rec(name).replace('\\', "\\\\").replace('"', "\\\"")
    }

    /// Counts records; `seen` is shared with the reader.
    struct Count {
        names: Vec<String>,
        seen: Arc<AtomicU64>,
        keep: bool,
    }

    impl Sink for Count {
        fn record(&mut self, _: &str, record: &trailhound_event::Record<'_>) {
            self.seen.fetch_add(1, Ordering::SeqCst);
            if self.keep {
                self.names.push(record.event_name.to_string());
            }
        }
    }

    fn options(limit: u64) -> ScanOptions {
        ScanOptions {
            max_file_bytes: limit,
            ..ScanOptions::default()
        }
    }

    /// Scans `input`; returns the stats, the names read and the problems' count.
    fn scan(input: &[u8], limit: u64) -> (crate::ScanStats, Vec<String>, u64) {
        let sink = Count {
            names: Vec::new(),
            seen: Arc::default(),
            keep: true,
        };
        let report = scan_stream(input, "<stdin>", &options(limit), sink, &ProblemBudget::default());
        let names = report.sinks.into_iter().flat_map(|s| s.names).collect();
        (report.stats, names, report.problems_total)
    }

    /// NDJSON made as it is read: `total` records, checking at the half how many the sink had.
    struct Generated {
        made: usize,
        total: usize,
        pending: Vec<u8>,
        seen: Arc<AtomicU64>,
        seen_at_half: Arc<AtomicU64>,
    }

    impl Read for Generated {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.pending.is_empty() && self.made < self.total {
                if self.made == self.total / 2 {
                    self.seen_at_half
                        .store(self.seen.load(Ordering::SeqCst), Ordering::SeqCst);
                }
                self.pending = format!("{}\n", rec(&format!("E{}", self.made))).into_bytes();
                self.made += 1;
            }
            let n = self.pending.len().min(buf.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            Ok(n)
        }
    }

    #[test]
    fn stdin_larger_than_the_file_limit_is_streamed() {
        let seen = Arc::new(AtomicU64::new(0));
        let seen_at_half = Arc::new(AtomicU64::new(0));
        let total = 100_000;
        let reader = Generated {
            made: 0,
            total,
            pending: Vec::new(),
            seen: seen.clone(),
            seen_at_half: seen_at_half.clone(),
        };
        let sink = Count {
            names: Vec::new(),
            seen: seen.clone(),
            keep: false,
        };
        // About 20 MB of NDJSON through a 1 MB limit.
        let budget = ProblemBudget::default();
        let mut worker = Worker::new(sink, &budget.shown);
        let limit = options(1 << 20);
        let mut stream = Stream::new(&mut worker, "<stdin>", &limit);
        stream.run(reader);
        let peak = stream.peak;
        assert_eq!(worker.stats.records_read, total as u64);
        assert_eq!(worker.stats.records_in_window, total as u64);
        assert_eq!((worker.stats.records_invalid, worker.stats.files_failed), (0, 0));
        assert!(worker.stats.bytes_inflated > 15 << 20);
        assert!(peak <= 4 * CHUNK, "held {peak} bytes at once");
        let half = seen_at_half.load(Ordering::SeqCst);
        assert!(
            half > total as u64 / 3,
            "records go on as they arrive: {half} seen by the middle"
        );
    }

    #[test]
    fn stdin_value_larger_than_the_limit_is_named_and_the_rest_read() {
        // A record larger than the limit (not an array: it cannot be read in parts).
        let huge = rec("H").replace(&"x".repeat(100), &"x".repeat(8000));
        let input = format!("{}\n{huge}\n{}\n", rec("A"), rec("B"));
        let (stats, names, problems) = scan(input.as_bytes(), 4096);
        assert_eq!(names, ["A", "B"]);
        assert_eq!((stats.files_damaged, problems), (1, 1));
        // Within the limit, the same value is read.
        let (_, names, problems) = scan(input.as_bytes(), 1 << 20);
        assert_eq!((names.len(), problems), (3, 0));
    }

    #[test]
    fn a_long_run_of_bytes_no_json_starts_with_is_passed_over_without_holding_it() {
        // Zeros out of a gzip bomb, or a binary file, between records: named once, not held up
        // to the size limit, and the records after it are read.
        let mut input = format!("{}\n", rec("A")).into_bytes();
        input.extend(std::iter::repeat_n(0u8, 8 << 20));
        input.extend(format!("\n{}\n", rec("B")).into_bytes());
        let budget = ProblemBudget::default();
        let sink = Count {
            names: Vec::new(),
            seen: Arc::new(AtomicU64::new(0)),
            keep: true,
        };
        let mut worker = Worker::new(sink, &budget.shown);
        let limit = options(1 << 30);
        let mut stream = Stream::new(&mut worker, "<stdin>", &limit);
        stream.run(input.as_slice());
        let peak = stream.peak;
        assert!(peak < 4 << 20, "held {peak} bytes at once");
        assert_eq!(worker.sink.names, ["A", "B"]);
        assert_eq!((worker.stats.files_damaged, worker.problems_total), (1, 1));
        // A short line of the same kind is scanned whole and named as before.
        let short = format!("{}\n\0\0\0\n{}\n", rec("A"), rec("B"));
        let (_, names, problems) = scan(short.as_bytes(), 1 << 30);
        assert_eq!((names.len(), problems), (2, 1));
    }

    #[test]
    fn an_envelope_or_array_larger_than_the_limit_is_read_element_by_element() {
        let envelope = format!("{{ \"Records\" :\n[{}]}}", vec![rec("H"); 100].join(",\n"));
        let array = format!("[\n{}\n]", vec![rec("J"); 50].join(" , "));
        let input = format!("{}\n{envelope}\n{}\n{array}\n{}\n", rec("A"), rec("B"), rec("C"));
        let (stats, names, problems) = scan(input.as_bytes(), 4096);
        assert_eq!(problems, 0);
        assert_eq!(names.len(), 153);
        assert_eq!(
            (names[0].as_str(), names[1].as_str(), names[100].as_str()),
            ("A", "H", "H")
        );
        assert_eq!(
            (names[101].as_str(), names[102].as_str(), names[152].as_str()),
            ("B", "J", "C")
        );
        assert_eq!((stats.records_read, stats.files_damaged), (153, 0));
        // The same as read whole.
        let (_, whole, problems) = scan(input.as_bytes(), 1 << 20);
        assert_eq!((whole, problems), (names, 0));
    }

    /// Hands out its bytes `step` at a time, as a pipe does.
    struct Steps<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl Read for Steps<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_streamed_list_is_read_on_after_a_zeroed_block() {
        let names: Vec<String> = (0..300).map(|i| format!("E{i}")).collect();
        let records: Vec<String> = names.iter().map(|n| rec(n)).collect();
        let mut input = format!("{{\"Records\":[\n{}\n]}}\n{}\n", records.join(",\n"), rec("AFTER")).into_bytes();
        // 512 bytes zeroed from inside record 100 (in a string) to inside record 102, and 40 from
        // between the quotes and brackets of record 200.
        let at = input.windows(6).position(|w| w == b"\"E100\"").expect("E100");
        input[at + 20..at + 532].fill(0);
        let at = input.windows(6).position(|w| w == b"\"E200\"").expect("E200");
        input[at - 25..at + 15].fill(0);
        for step in [1 << 16, 1000, 7] {
            let sink = Count {
                names: Vec::new(),
                seen: Arc::default(),
                keep: true,
            };
            let reader = Steps { bytes: &input, step };
            let report = scan_stream(reader, "<stdin>", &options(4096), sink, &ProblemBudget::default());
            let read: Vec<String> = report.sinks.into_iter().flat_map(|s| s.names).collect();
            let mut expected: Vec<&str> = names.iter().map(String::as_str).collect();
            expected.retain(|n| !["E100", "E101", "E102", "E200"].contains(n));
            expected.push("AFTER");
            assert_eq!(read, expected, "step {step}");
            // Two damages named (no more: each is one problem).
            assert_eq!(
                (report.problems_total, report.stats.files_damaged),
                (2, 1),
                "step {step}"
            );
        }
        // The same records as the file read whole.
        let whole: Vec<String> = {
            let sink = Count {
                names: Vec::new(),
                seen: Arc::default(),
                keep: true,
            };
            let report = scan_stream(
                &input[..],
                "<stdin>",
                &options(1 << 20),
                sink,
                &ProblemBudget::default(),
            );
            report.sinks.into_iter().flat_map(|s| s.names).collect()
        };
        assert_eq!(whole.len(), 297);
    }

    #[test]
    fn a_streamed_list_is_read_on_after_a_lost_quote_or_bytes_that_close_it_early() {
        let names: Vec<String> = (0..300).map(|i| format!("E{i}")).collect();
        let records: Vec<String> = names.iter().map(|n| rec(n)).collect();
        for separator in [",", ",\n"] {
            let text = format!("{{\"Records\":[{}]}}\n{}\n", records.join(separator), rec("AFTER"));
            // A quote lost in record 100: the strings after it are read inside out. Record 200
            // given bytes that close it, the list and the envelope, all of them JSON's.
            let text = text.replacen("\"E100\"", "E100\"", 1).replacen(
                "\"eventName\":\"E200\",\"eventSource\":\"s\",\"userIdentity\":{}",
                "\"eventName\":\"E200\",\"eventSource\":\"s\",\"userIdentity\":1}]]}{",
                1,
            );
            let mut expected: Vec<&str> = names.iter().map(String::as_str).collect();
            expected.retain(|n| *n != "E100" && *n != "E200");
            expected.push("AFTER");
            // Record 200 is whole but its `userIdentity` is no object: a bad record.
            // Read whole (a value below the limit), and element by element in steps.
            let (_, whole, _) = scan(text.as_bytes(), 1 << 20);
            assert_eq!(whole, expected, "whole, separator {separator:?}");
            for step in [1 << 16, 1000, 7] {
                let sink = Count {
                    names: Vec::new(),
                    seen: Arc::default(),
                    keep: true,
                };
                let reader = Steps {
                    bytes: text.as_bytes(),
                    step,
                };
                let report = scan_stream(reader, "<stdin>", &options(4096), sink, &ProblemBudget::default());
                let read: Vec<String> = report.sinks.into_iter().flat_map(|s| s.names).collect();
                assert_eq!(read, expected, "step {step}, separator {separator:?}");
                assert_eq!(report.stats.files_damaged, 1, "step {step}");
            }
        }
    }

    #[test]
    fn a_streamed_record_that_lost_its_end_does_not_take_the_records_after_it() {
        // Record 20,000 of a 6 MB envelope loses its closing brackets: the records after it
        // are inside it, and its brackets never close. Past 1 MB it is damage, and the list
        // is read on from the first record inside it.
        let names: Vec<String> = (0..30_000).map(|i| format!("E{i}")).collect();
        let records: Vec<String> = names.iter().map(|n| rec(n)).collect();
        let mut broken = records.clone();
        let cut = broken[20_000].len() - 2;
        broken[20_000].truncate(cut);
        let input = format!("{{\"Records\":[{}]}}\n", broken.join(","));
        assert!(input.len() > 5 << 20);
        let sink = Count {
            names: Vec::new(),
            seen: Arc::default(),
            keep: true,
        };
        let reader = Steps {
            bytes: input.as_bytes(),
            step: 1 << 16,
        };
        let report = scan_stream(reader, "<stdin>", &options(8 << 20), sink, &ProblemBudget::default());
        let read: Vec<String> = report.sinks.into_iter().flat_map(|s| s.names).collect();
        let mut expected = names.clone();
        expected.remove(20_000);
        assert_eq!(read.len(), expected.len());
        assert!(read == expected, "the records read differ");
        assert_eq!(report.stats.files_damaged, 1);
    }

    #[test]
    fn a_bracket_closing_the_other_kind_in_a_streamed_list_is_damage() {
        let names: Vec<String> = (0..300).map(|i| format!("E{i}")).collect();
        let records: Vec<String> = names.iter().map(|n| rec(n)).collect();
        let text = format!("{{\"Records\":[{}]}}\n", records.join(","));
        // Inside record 100, `{}` becomes `{]`: with only the count of brackets the list would
        // close at the envelope's `]`, one level too early, and end there.
        let text = text.replacen(
            "\"eventName\":\"E100\",\"eventSource\":\"s\",\"userIdentity\":{}",
            "\"eventName\":\"E100\",\"eventSource\":\"s\",\"userIdentity\":{]",
            1,
        );
        let sink = Count {
            names: Vec::new(),
            seen: Arc::default(),
            keep: true,
        };
        let report = scan_stream(
            text.as_bytes(),
            "<stdin>",
            &options(4096),
            sink,
            &ProblemBudget::default(),
        );
        let read: Vec<String> = report.sinks.into_iter().flat_map(|s| s.names).collect();
        let mut expected: Vec<&str> = names.iter().map(String::as_str).collect();
        expected.retain(|n| *n != "E100");
        assert_eq!(read, expected);
    }

    #[test]
    fn damage_with_no_record_after_it_passes_the_rest_over() {
        // Braces and zeros after the damage: the search gives up and nothing more is read.
        let mut input = format!("[{},{},", rec("A"), rec("B")).into_bytes();
        input.extend(std::iter::repeat_n(0u8, 100));
        input.extend(std::iter::repeat_n(b'{', 30_000));
        let (stats, names, problems) = scan(&input, 512);
        assert_eq!(names, ["A", "B"]);
        // The damage, the search given up, the stream ending inside the list.
        assert_eq!(problems, 3);
        assert_eq!(stats.files_damaged, 1);
    }

    #[test]
    fn a_value_with_very_many_invalid_records_lists_a_bounded_number() {
        // A CloudWatch Logs message (its list is not its first member, so it is held whole)
        // with one record and 20,000 elements that are not CloudTrail.
        let quoted = rec_text("A");
        let input = format!(
            "{{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":[{{\"message\":\"{quoted}\"}}{}]}}\n{}\n",
            ",1".repeat(20_000),
            rec("B")
        );
        let (stats, names, problems) = scan(input.as_bytes(), 1 << 20);
        assert_eq!(names, ["A", "B"]);
        assert_eq!(stats.records_invalid, 20_000);
        // 10,000 named one by one, then one that counts the rest.
        assert_eq!(problems, crate::scan::MAX_LISTED_PER_TEXT as u64 + 1);
    }

    #[test]
    fn blanks_between_values_are_not_held() {
        // Megabytes of blanks before, between and after values, under a limit of 4 KB.
        let blanks = " \t\r".repeat(400_000);
        let input = format!("{blanks}{}{blanks}\n{blanks}{}{blanks}", rec("A"), rec("B"));
        let (stats, names, problems) = scan(input.as_bytes(), 4096);
        assert_eq!((names, problems), (vec!["A".to_string(), "B".to_string()], 0));
        assert_eq!((stats.records_read, stats.files_damaged), (2, 0));
    }

    #[test]
    fn lookup_events_output_larger_than_the_limit_is_read_result_by_result() {
        // `aws cloudtrail lookup-events` output: each result's record is JSON text.
        let result = |name: &str| {
            let quoted = rec_text(name);
            format!("{{\"EventId\": \"1\", \"Resources\": [], \"CloudTrailEvent\": \"{quoted}\"}}")
        };
        let results: Vec<String> = (0..60).map(|i| result(&format!("L{i}"))).collect();
        let input = format!("{{\n  \"Events\": [\n{}\n  ]\n}}\n{}\n", results.join(",\n"), rec("Z"));
        let (stats, names, problems) = scan(input.as_bytes(), 4096);
        assert_eq!(problems, 0);
        assert_eq!(names.len(), 61);
        assert_eq!(
            (names[0].as_str(), names[59].as_str(), names[60].as_str()),
            ("L0", "L59", "Z")
        );
        assert_eq!((stats.records_read, stats.files_damaged), (61, 0));
        let (_, whole, problems) = scan(input.as_bytes(), 1 << 20);
        assert_eq!((whole, problems), (names, 0));
    }

    #[test]
    fn elements_of_a_streamed_array_are_cut_by_json_not_by_bytes() {
        // Brackets, commas and escaped quotes inside strings; a member after Records; an element
        // over the limit passed over; a broken element named by its line.
        let tricky = rec("T").replace("\"pad\":\"", "\"pad\":\"],}{,\\\"\\\\");
        let big = rec("BIG").replace(&"x".repeat(100), &"x".repeat(9000));
        let broken =
            r#"{"eventTime":"2024-01-01T00:00:00Z","eventName":"Broken","eventSource":"s","userIdentity":{},"x":[1,}"#;
        let mut elements = vec![rec("E"); 40];
        elements.insert(3, tricky);
        elements.insert(10, big);
        elements.insert(20, format!("{broken}]"));
        let envelope = format!(
            "{{\"Records\":[\n{}\n], \"Other\": {{\"a\": [1]}}}}",
            elements.join(",\n")
        );
        let input = format!("{envelope}\n{}\n", rec("Z"));
        let sink = Count {
            names: Vec::new(),
            seen: Arc::default(),
            keep: true,
        };
        let budget = ProblemBudget::default();
        let mut worker = Worker::new(sink, &budget.shown);
        let limit = options(4096);
        let mut stream = Stream::new(&mut worker, "<stdin>", &limit);
        stream.run(Steps {
            bytes: input.as_bytes(),
            step: 1000,
        });
        let peak = stream.peak;
        let names = &worker.sink.names;
        assert_eq!(names.iter().filter(|n| *n == "T").count(), 1, "{names:?}");
        assert_eq!(names.iter().filter(|n| *n == "E").count(), 40);
        assert_eq!(names.last().map(String::as_str), Some("Z"));
        assert!(!names.iter().any(|n| n == "BIG" || n == "Broken"));
        assert!(peak < 64 << 10, "held {peak} bytes at once");
        // The element over the limit and the broken one, each named once.
        assert_eq!(worker.problems_total, 2, "{:?}", worker.stats);
        // The broken element is a damaged value, not a record.
        assert_eq!(worker.stats.records_read, 42);
    }

    #[test]
    fn many_arrays_in_one_buffer_with_no_size_to_spare() {
        // Every array is over a 1-byte limit: each is read element by element, one after the
        // other, without nesting calls.
        let input = format!("{}\n", "[]".repeat(200_000));
        let (stats, names, problems) = scan(input.as_bytes(), 1);
        assert!(names.is_empty());
        assert_eq!((stats.files_damaged, problems), (0, 0));
        let input = format!("[{}]\n[{}]", rec("A"), rec("B"));
        let (_, names, problems) = scan(input.as_bytes(), 1);
        // Elements over the limit are named and passed over; the arrays end cleanly.
        assert!(names.is_empty());
        assert_eq!(problems, 2);
    }

    #[test]
    fn a_stream_that_ends_inside_a_streamed_array_keeps_what_it_read() {
        let input = format!("[{},{},{}", rec("A"), rec("B"), &rec("C")[..50]);
        let (stats, names, problems) = scan(input.as_bytes(), 512);
        assert_eq!(names, ["A", "B"]);
        assert_eq!((stats.files_damaged, problems), (1, 1));
    }

    #[test]
    fn stdin_envelope_larger_than_the_limit_arriving_in_pieces_is_read() {
        let huge = format!(r#"{{"Records":[{}]}}"#, vec![rec("H"); 20_000].join(","));
        let input = format!(
            "{}
{huge}
{}
{}
",
            rec("A"),
            rec("B"),
            rec("C")
        );
        let sink = Count {
            names: Vec::new(),
            seen: Arc::default(),
            keep: true,
        };
        let report = scan_stream(
            Steps {
                bytes: input.as_bytes(),
                step: 1000,
            },
            "<stdin>",
            &options(1 << 20),
            sink,
            &ProblemBudget::default(),
        );
        let names: Vec<String> = report.sinks.into_iter().flat_map(|s| s.names).collect();
        assert!(huge.len() > 4 << 20);
        assert_eq!(names.len(), 20_003);
        assert_eq!(
            (names[0].as_str(), names[20_001].as_str(), names[20_002].as_str()),
            ("A", "B", "C")
        );
        assert_eq!((report.stats.files_damaged, report.problems_total), (0, 0));
    }

    #[test]
    fn stdin_gzip_envelopes_with_a_byte_order_mark() {
        let body = format!(
            "\u{feff}{{\"Records\":[{},{}]}}{{\"Records\":[{}]}}",
            rec("A"),
            rec("B"),
            rec("C")
        );
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(body.as_bytes()).expect("write");
        let data = enc.finish().expect("gzip");
        let (stats, names, problems) = scan(&data, 1 << 20);
        assert_eq!((names, problems), (vec!["A".to_string(), "B".into(), "C".into()], 0));
        assert_eq!(stats.bytes_read, data.len() as u64);
    }

    #[test]
    fn stdin_in_utf16_is_converted_as_it_arrives() {
        // Windows PowerShell 5 (`aws ... > file`, `Out-File`) writes UTF-16, with or without its
        // mark; more than one chunk, so code units and pairs are split between reads.
        let text = format!("{}\n{}\n", rec("A\u{1F600}"), rec(&"B".repeat(CHUNK)));
        for mark in ["\u{feff}", ""] {
            let le: Vec<u8> = format!("{mark}{text}")
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect();
            let be: Vec<u8> = format!("{mark}{text}")
                .encode_utf16()
                .flat_map(u16::to_be_bytes)
                .collect();
            for data in [le, be] {
                let (stats, names, problems) = scan(&data, 4 << 20);
                let lengths: Vec<usize> = names.iter().map(String::len).collect();
                assert_eq!(
                    (names.first().map(String::as_str), lengths),
                    (Some("A\u{1F600}"), vec![5, CHUNK])
                );
                assert_eq!((stats.files_failed, stats.files_damaged, problems), (0, 0, 0));
                assert_eq!(stats.bytes_inflated, text.len() as u64);
            }
        }
        // An odd byte at the end is damage, and what came before is read; the U+FFFD it
        // became is a value of its own, which is not JSON (the second problem).
        let mut data: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        data.push(b'x');
        let (stats, names, problems) = scan(&data, 4 << 20);
        assert_eq!((names.len(), stats.files_damaged, problems), (2, 1, 2));
    }

    #[test]
    fn stdin_broken_line_resumes_at_the_next_line() {
        let input = format!("{}\n{{\"b\": \"open\n{}\n  \n{}", rec("A"), rec("C"), rec("D"));
        let (stats, names, problems) = scan(input.as_bytes(), 1 << 20);
        assert_eq!(names, ["A", "C", "D"]);
        assert_eq!((stats.files_damaged, problems), (1, 1));
    }

    #[test]
    fn a_line_broken_right_after_an_opening_brace_still_resumes_at_the_next_line() {
        // Only a first line that opens an array (`[`, `{"Records":[`) goes on to the next line.
        let input = format!(
            "{{\"eventVersion\":\"1.08\",\"userIdentity\":{{\n{}\n{}\n",
            rec("B"),
            rec("C")
        );
        let (stats, names, problems) = scan(input.as_bytes(), 1 << 20);
        assert_eq!(names, ["B", "C"]);
        assert_eq!((stats.files_damaged, problems), (1, 1));
        let input = format!(
            "[\n{},\n{}\n]\n{{\"Records\":[\n{}\n]}}\n",
            rec("A"),
            rec("B"),
            rec("C")
        );
        let (_, names, problems) = scan(input.as_bytes(), 1 << 20);
        assert_eq!((names, problems), (vec!["A".to_string(), "B".into(), "C".into()], 0));
    }

    #[test]
    fn stdin_pretty_printed_envelope_and_foreign_values() {
        let pretty = format!("{{\n  \"Records\": [\n    {},\n    {}\n  ]\n}}\n", rec("A"), rec("B"));
        let (_, names, problems) = scan(pretty.as_bytes(), 1 << 20);
        assert_eq!((names, problems), (vec!["A".to_string(), "B".into()], 0));
        let (stats, names, _) = scan(b"{\"files\": 3}\n", 1 << 20);
        assert_eq!((stats.files_foreign, names.len()), (1, 0));
        let input = format!("{{\"files\": 3}}\n{}\n", rec("A"));
        let (stats, names, problems) = scan(input.as_bytes(), 1 << 20);
        assert_eq!((stats.records_invalid, names, problems), (1, vec!["A".to_string()], 1));
    }

    /// Scans `input` here, or split over a pool of `threads` in blocks of `block` bytes;
    /// returns the counts (time aside), the names read (sorted) and the problems in order.
    fn scan_split(
        input: &[u8],
        limit: u64,
        split_over: Option<(usize, usize)>,
    ) -> (crate::ScanStats, Vec<String>, Vec<Problem>, usize) {
        let make = || Count {
            names: Vec::new(),
            seen: Arc::default(),
            keep: true,
        };
        let budget = ProblemBudget::default();
        let options = options(limit);
        let mut worker = Worker::new(make(), &budget.shown);
        worker.kept = Some(Vec::new());
        let helpers = Helpers::new(&make, &budget.shown);
        match split_over {
            Some((threads, block)) => {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("pool");
                pool.install(|| split(&mut worker, "<stdin>", input, &options, &helpers, block, false));
            }
            None => Stream::new(&mut worker, "<stdin>", &options).run(input),
        }
        let problems = worker.kept.take().unwrap_or_default();
        let mut workers = vec![worker];
        workers.extend(helpers.into_workers());
        let sinks = workers.len();
        let mut report = merge_workers(workers, crate::ScanStats::default(), 0, std::time::Instant::now());
        report.stats.elapsed = std::time::Duration::ZERO;
        assert_eq!(report.problems_total, problems.len() as u64);
        let mut names: Vec<String> = report.sinks.into_iter().flat_map(|s| s.names).collect();
        names.sort();
        (report.stats, names, problems, sinks)
    }

    /// A stream with one of everything a stream can hold, `n` times over.
    fn everything(n: usize) -> Vec<u8> {
        let mut input = Vec::new();
        for i in 0..n {
            let lines = [
                rec(&format!("A{i}")),
                String::new(),
                // Rejected records: no eventTime, a time that is not one.
                r#"{"eventName":"NoTime","eventSource":"s"}"#.to_string(),
                rec(&format!("T{i}")).replace("2024-01-01T00:00:00Z", "yesterday"),
                format!(
                    r#"{{"Records":[{},{},{{"eventName":"X"}}]}}"#,
                    rec(&format!("E{i}")),
                    rec(&format!("F{i}"))
                ),
                // A foreign value among records, and a broken line.
                r#"{"files": 3}"#.to_string(),
                format!("{{\"b\": \"open\n{}", rec(&format!("B{i}"))),
                format!("[\n{},\n{}\n]", rec(&format!("P{i}")), rec(&format!("Q{i}"))),
                // Larger than the limit: named and passed over.
                rec(&format!("H{i}")).replace(&"x".repeat(100), &"x".repeat(3000)),
            ];
            input.extend_from_slice(lines.join("\n").as_bytes());
            input.push(b'\n');
            if i % 7 == 3 {
                // Invalid UTF-8 in a string.
                input.extend_from_slice(
                    b"{\"eventTime\":\"2024-01-01T00:00:00Z\",\"eventName\":\"U\xff\",\"eventSource\":\"s\"}\n",
                );
            }
        }
        // An array too large to hold, read element by element, and a stream ending inside one.
        let elements: Vec<String> = (0..40).map(|i| rec(&format!("R{i}"))).collect();
        input.extend_from_slice(format!("[{}]\n[{}", elements.join(","), elements.join(",")).as_bytes());
        input
    }

    #[test]
    fn a_stream_split_over_cores_reads_and_reports_as_one_core_does() {
        let input = everything(60);
        let (stats, names, problems, _) = scan_split(&input, 2048, None);
        assert!(stats.records_invalid >= 180, "{stats:?}");
        assert!(problems.len() > 300, "{} problems", problems.len());
        assert!(problems.iter().any(|p| p.message.contains("invalid UTF-8")));
        assert!(problems.iter().any(|p| p.message.contains("ended inside")));
        for (threads, block) in [(2, 1), (3, 300), (4, 5000), (2, 1 << 20)] {
            // Whether another thread takes a block depends on the scheduler: on a loaded machine
            // the reading thread can hunt every block itself before a helper wakes. Small blocks
            // must be shared out in some run (each run reading as one core does); a few tries
            // make a loaded test machine's run of bad luck unlikely, not a bug that never splits.
            let mut shared = false;
            for _ in 0..20 {
                let (split_stats, split_names, split_problems, sinks) =
                    scan_split(&input, 2048, Some((threads, block)));
                assert_eq!(split_stats, stats, "{threads} threads, blocks of {block}");
                assert_eq!(split_names, names, "{threads} threads, blocks of {block}");
                assert_eq!(split_problems, problems, "{threads} threads, blocks of {block}");
                shared = sinks > 1;
                if shared || block >= 5000 {
                    break;
                }
            }
            assert!(
                shared || block >= 5000,
                "{threads} threads, blocks of {block}: one sink in 20 runs"
            );
        }
    }

    #[test]
    fn a_split_stream_of_one_foreign_value_or_gzip_members_is_read_as_one_core_does() {
        let mut gz = Vec::new();
        for i in 0..30 {
            let mut member = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            member.write_all(&everything(1)).expect("write");
            member.write_all(rec(&format!("G{i}")).as_bytes()).expect("write");
            gz.extend(member.finish().expect("gzip"));
        }
        // Tiny values, many to a block (blocks hold at most BLOCK_VALUES of them).
        let mut tiny = "{}\n".repeat(3 * BLOCK_VALUES).into_bytes();
        tiny.extend(everything(1));
        let inputs: [&[u8]; 5] = [b"{\"files\": 3}\n", b"", b"\n\n  \n", &gz, &tiny];
        for input in inputs {
            let one = scan_split(input, 2048, None);
            for (threads, block) in [(3, 64), (2, 1 << 20)] {
                let split = scan_split(input, 2048, Some((threads, block)));
                assert_eq!((&split.0, &split.1, &split.2), (&one.0, &one.1, &one.2));
            }
        }
    }

    #[test]
    fn a_value_too_large_for_a_block_is_scanned_in_its_place() {
        let big = rec("Big").replace(&"x".repeat(100), &"x".repeat(ALONE_BYTES));
        let input = format!("{}\n{big}\n{{\"eventName\":\"X\"}}\n{}\n", rec("A"), rec("B"));
        let one = scan_split(input.as_bytes(), 64 << 20, None);
        let split = scan_split(input.as_bytes(), 64 << 20, Some((2, 16)));
        assert_eq!(one.1, ["A", "B", "Big"]);
        assert_eq!(one.2.len(), 1);
        assert_eq!(one.2[0].record, Some(2));
        assert_eq!((&split.0, &split.1, &split.2), (&one.0, &one.1, &one.2));
    }

    /// Keeps each record's time.
    struct Stamps(Vec<DateTime<Utc>>);

    impl Sink for Stamps {
        fn record(&mut self, _: &str, record: &trailhound_event::Record<'_>) {
            self.0.push(record.time);
        }
    }

    /// `n` records a minute apart from 2024-01-01, in the order of `minutes`.
    fn minutes_apart(minutes: impl Iterator<Item = usize>) -> Vec<u8> {
        let start = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .expect("time")
            .to_utc();
        let mut input = Vec::new();
        for minute in minutes {
            let time = (start + chrono::Duration::minutes(minute as i64)).format("%Y-%m-%dT%H:%M:%SZ");
            let line = rec("A").replace("2024-01-01T00:00:00Z", &time.to_string());
            input.extend_from_slice(line.as_bytes());
            input.push(b'\n');
        }
        input
    }

    /// Scans `input` split over 2 threads with checkpoints every `every` bytes and a lag of an
    /// hour; returns the checkpoints (sinks' times and watermark) and the times of the sinks
    /// left at the end.
    #[allow(clippy::type_complexity)]
    fn checkpointed(input: &[u8], every: usize) -> (Vec<(Vec<DateTime<Utc>>, DateTime<Utc>)>, Vec<DateTime<Utc>>) {
        let make = || Stamps(Vec::new());
        let budget = ProblemBudget::default();
        let options = ScanOptions {
            checkpoint_bytes: every,
            ..ScanOptions::default()
        };
        let (to, received) = mpsc::channel();
        let mut helpers = Helpers::new(&make, &budget.shown);
        helpers.checkpoints = Some(Checkpoints {
            to,
            lag: chrono::Duration::hours(1),
        });
        let mut worker = Worker::new(make(), &budget.shown);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("pool");
        pool.install(|| split(&mut worker, "<stdin>", input, &options, &helpers, 4096, true));
        drop(helpers.checkpoints.take());
        let checkpoints: Vec<_> = received
            .into_iter()
            .map(|(sinks, watermark)| (sinks.into_iter().flat_map(|s| s.0).collect(), watermark))
            .collect();
        let mut rest: Vec<DateTime<Utc>> = worker.sink.0;
        rest.extend(helpers.into_workers().into_iter().flat_map(|w| w.sink.0));
        (checkpoints, rest)
    }

    #[test]
    fn a_stream_in_time_order_hands_its_sinks_on_as_time_moves_on() {
        // 3,000 records a minute apart (about 600 KB): a checkpoint every 64 KB.
        let input = minutes_apart(0..3000);
        let (checkpoints, rest) = checkpointed(&input, 64 << 10);
        assert!(checkpoints.len() >= 8, "{} checkpoints", checkpoints.len());
        let mut all = rest.clone();
        let mut last = None;
        for (times, watermark) in &checkpoints {
            all.extend(times);
            assert!(last.is_none_or(|last| last <= *watermark), "watermarks move forward");
            last = Some(*watermark);
        }
        assert_eq!(all.len(), 3000, "every record once");
        // No record handed on after a checkpoint is before its watermark: none is late.
        for (i, (_, watermark)) in checkpoints.iter().enumerate() {
            let later = checkpoints[i + 1..].iter().flat_map(|(t, _)| t).chain(&rest);
            assert!(later.clone().all(|t| t >= watermark), "late after checkpoint {i}");
        }
        // The watermark is an hour before the latest record handed on.
        let (times, watermark) = &checkpoints[0];
        assert_eq!(
            *times.iter().max().expect("records"),
            *watermark + chrono::Duration::hours(1)
        );
    }

    #[test]
    fn a_stream_out_of_time_order_keeps_its_sinks_to_the_end() {
        // Newest first (as LookupEvents returns them).
        let input = minutes_apart((0..3000).rev());
        let (checkpoints, rest) = checkpointed(&input, 64 << 10);
        assert_eq!((checkpoints.len(), rest.len()), (0, 3000));
        // Shuffled by up to 50 minutes: within the hour's lag, so swept as it goes.
        let input = minutes_apart((0..3000).map(|m| if m % 2 == 0 { m + 50 } else { m }));
        let (checkpoints, rest) = checkpointed(&input, 64 << 10);
        assert!(checkpoints.len() >= 8);
        assert_eq!(rest.len() + checkpoints.iter().map(|c| c.0.len()).sum::<usize>(), 3000);
    }

    #[test]
    fn a_large_file_is_swept_along_the_way_only_if_its_samples_are_in_time_order() {
        let dir = tempfile::tempdir().expect("dir");
        let lag = chrono::Duration::hours(1);
        let check = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).expect("write");
            let mut file = std::fs::File::open(&path).expect("open");
            let ordered = sampled_in_order(&mut file, lag).expect("sampled");
            // Left at its start, for the stream.
            let mut first = [0; 1];
            file.read_exact(&mut first).expect("read");
            assert_eq!(first[0], bytes[0]);
            ordered
        };
        let ordered = minutes_apart(0..3000);
        assert!(check("ordered.json", &ordered));
        // Within the lag: still in order.
        assert!(check("near.json", &minutes_apart((0..3000).map(|m| m + (m % 2) * 50))));
        // Two parts one after the other, each in order (two regions' folders concatenated).
        let mut parts = minutes_apart(0..1500);
        parts.extend(minutes_apart(0..1500));
        assert!(!check("parts.json", &parts));
        assert!(!check("newest-first.json", &minutes_apart((0..3000).rev())));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&ordered).expect("gzip");
        assert!(!check("ordered.json.gz", &gz.finish().expect("gzip")));
        // Nothing to tell by: no reason not to sweep.
        assert!(check("foreign.json", b"{\"files\": 3}\n"));
        assert_eq!(
            first_event_time(br#"x "eventTime" : "nope", "eventTime":"2024-01-01T00:00:00Z""#).map(|t| t.to_rfc3339()),
            Some("2024-01-01T00:00:00+00:00".into())
        );
    }
}
