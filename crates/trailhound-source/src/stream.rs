//! Standard input (or any reader) scanned as a stream: records are handed on as they arrive,
//! and memory is one top-level JSON value at a time (a line of NDJSON, one delivery envelope),
//! never the whole input.
//!
//! The stream is cut into top-level values by counting brackets outside strings; each value is
//! split into records like a file. A line that breaks off (NDJSON) ends where the next line
//! starts with `{`, as in a file. A value larger than the size limit is named, counted and passed
//! over; the values after it are read. Gzip (one or many members), a UTF-8 byte order mark and
//! invalid UTF-8 are handled as for files; UTF-16 is refused by name.

use std::io::{BufRead, BufReader, Read};

use trailhound_event::{Document, RecordError};

use crate::decode::{SMALL_BYTES, Turn, unmarked};
use crate::scan::{Problem, ProblemBudget, ProblemKind, ScanOptions, ScanReport, Sink, Worker, scan_text};

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
    scan_reader(&mut worker, name, reader, options);
    let mut stats = worker.stats.clone();
    stats.elapsed = started.elapsed();
    ScanReport {
        stats,
        problems_total: worker.problems_total,
        sinks: vec![worker.sink],
    }
}

/// [`scan_stream`] into a worker of a scan.
pub(crate) fn scan_reader<S: Sink>(worker: &mut Worker<'_, S>, name: &str, reader: impl Read, options: &ScanOptions) {
    let mut stream = Stream::new(worker, name, options);
    stream.run(reader);
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
}

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
    records: usize,
    lines: usize,
    /// Values seen that were not whitespace.
    values: usize,
    /// A foreign (non-CloudTrail) value, held back: an error if other values follow.
    foreign: Option<usize>,
    damaged: bool,
    invalid_utf8: bool,
    turn: Turn,
    /// The most bytes held at once (for the tests).
    peak: usize,
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
            records: 0,
            lines: 0,
            values: 0,
            foreign: None,
            damaged: false,
            invalid_utf8: false,
            turn: Turn::default(),
            peak: 0,
        }
    }

    fn problem(&mut self, line: Option<usize>, kind: ProblemKind, message: String) {
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
            Err(Refused::Utf16(err)) => {
                self.worker.stats.files_failed += 1;
                self.problem(None, ProblemKind::Decode, err.to_string());
            }
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
            self.buf.extend_from_slice(chunk.get(..got).unwrap_or_default());
            self.worker.stats.bytes_inflated += got as u64;
            if !started && (self.buf.len() >= 4 || got == 0) {
                started = true;
                let marked = self.buf.len() - unmarked(&self.buf).map_err(Refused::Utf16)?.len();
                self.buf.drain(..marked);
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

    /// Cuts the complete values out of the buffer and scans them.
    fn cut(&mut self) {
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
            if let Some(end) = self.brackets.step(byte, at) {
                self.value(start, end);
                start = end;
                if end < at {
                    // Cut before this byte: count it again as the start of the next value.
                    at = end;
                }
            }
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
    }

    /// The bytes at the end of the stream: the last value, if any.
    fn finish(&mut self) {
        self.cut();
        let len = self.buf.len();
        if len > 0 && !self.oversize {
            self.value(0, len);
        }
        self.buf.clear();
        self.scanned = 0;
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
            self.scan_value(bytes);
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

    fn scan_value(&mut self, bytes: &[u8]) {
        let lines = newlines(bytes);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            self.lines += lines;
            return;
        }
        self.values += 1;
        if let Some(line) = self.foreign.take() {
            self.flush_foreign(line);
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => std::borrow::Cow::Owned(String::from_utf8_lossy(bytes).into_owned()),
        };
        if matches!(text, std::borrow::Cow::Owned(_)) && !std::mem::replace(&mut self.invalid_utf8, true) {
            self.damaged = true;
            self.worker.report(Problem {
                file: self.name.to_string(),
                record: None,
                line: Some(self.lines + 1),
                kind: ProblemKind::Damaged,
                message: "invalid UTF-8 replaced with U+FFFD".to_string(),
            });
        }
        let window = self.options.window;
        let (outcome, records) = scan_text(self.worker, self.name, &text, window, (self.records, self.lines));
        self.records += records;
        match outcome {
            Ok(Document::Digest) => self.worker.stats.digests_skipped += 1,
            Ok(Document::Other) => self.foreign = Some(self.lines + 1),
            Ok(_) => {}
            Err(err) => {
                self.damaged = true;
                let message = format!("{}; {} records before it were read", err.message, err.records_before);
                self.problem(Some(self.lines + err.line), ProblemKind::Damaged, message);
            }
        }
        self.lines += lines;
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
                if !self.multiline {
                    self.broken_at = Some(at);
                }
                self.multiline = true;
            }
            _ => {}
        }
        None
    }
}

fn newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// Why a stream was not read to its end.
enum Refused {
    Utf16(crate::decode::DecodeError),
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
        let huge = format!(r#"{{"Records":[{}]}}"#, vec![rec("H"); 100].join(","));
        let input = format!("{}\n{huge}\n{}\n", rec("A"), rec("B"));
        let (stats, names, problems) = scan(input.as_bytes(), 4096);
        assert_eq!(names, ["A", "B"]);
        assert_eq!((stats.files_damaged, problems), (1, 1));
        // Within the limit, the same value is read.
        let (_, names, problems) = scan(input.as_bytes(), 1 << 20);
        assert_eq!((names.len(), problems), (102, 0));
    }

    /// Hands out its bytes a few at a time, as a pipe does.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(1000);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn stdin_value_larger_than_the_limit_arriving_in_pieces_is_passed_over() {
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
            Trickle(input.as_bytes()),
            "<stdin>",
            &options(1 << 20),
            sink,
            &ProblemBudget::default(),
        );
        let names: Vec<String> = report.sinks.into_iter().flat_map(|s| s.names).collect();
        assert!(huge.len() > 4 << 20);
        assert_eq!(names, ["A", "B", "C"]);
        assert_eq!((report.stats.files_damaged, report.problems_total), (1, 1));
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
    fn stdin_in_utf16_is_named_as_utf16() {
        let data: Vec<u8> = format!("\u{feff}{}", rec("A"))
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let (stats, names, problems) = scan(&data, 1 << 20);
        assert!(names.is_empty());
        assert_eq!((stats.files_failed, problems), (1, 1));
    }

    #[test]
    fn stdin_broken_line_resumes_at_the_next_line() {
        let input = format!("{}\n{{\"b\": \"open\n{}\n  \n{}", rec("A"), rec("C"), rec("D"));
        let (stats, names, problems) = scan(input.as_bytes(), 1 << 20);
        assert_eq!(names, ["A", "C", "D"]);
        assert_eq!((stats.files_damaged, problems), (1, 1));
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
}
