//! Splitting a CloudTrail document into records.
//!
//! Accepted shapes: the delivery envelope `{"Records":[...]}`, a JSON array of records, NDJSON (one
//! record, or one envelope, per line), a single record, and digest files (recognised and skipped).
//! Records also arrive wrapped by the other AWS services that carry them, and are unwrapped:
//! - a LookupEvents response (`aws cloudtrail lookup-events`: `{"Events":[...]}`, each result's
//!   record the JSON text of its `CloudTrailEvent`), or its results one a line or in an array;
//! - EventBridge events (`AWS API Call via CloudTrail`...), the record their `detail`;
//! - CloudWatch Logs: a subscription's message (`{"logEvents":[...]}`, through Firehose or
//!   Lambda), FilterLogEvents and GetLogEvents output (`{"events":[...]}`), each record the
//!   text of an event's `message`; and an export to S3, one `TIMESTAMP RECORD` a line;
//! - search exports: Splunk's (a line `{"result":{"_raw":"RECORD",...}}` per event, or REST
//!   results `{"results":[{"_raw":...}]}`), Elasticsearch's and OpenSearch's (a `_search`
//!   response `{"hits":{"hits":[{"_source":RECORD}]}}`, or one hit a line), the `_source`
//!   either the record (Logstash) or an ECS document whose `event.original` is its text.
//!
//! Wrappers nest (a search hit's record can be an ECS document's text), at most
//! [`MAX_WRAPS`] deep.
//!
//! One validating pass over the text both splits it and reads each record's core fields (see
//! `scanner`). Records are handed out as the scan reaches them, so a syntax error late in a file
//! loses nothing read before it. In NDJSON a bad line is a record error and the scan resumes at
//! the next line that starts with `{`.

use crate::record::{CoreReader, Holder, Record, RecordError};
use crate::scanner::{Cursor, kind};

/// Most wrappers opened one inside the other: an Elasticsearch response's `hits`, its list of
/// hits, a hit's `_source`, an ECS document's `event` and its `original` text make four.
/// Each wrapped text is an unescaped copy, so the bound is also one on memory.
const MAX_WRAPS: u8 = 4;

/// What a buffer turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    /// One or more `{"Records":[...]}` envelopes, or lists of wrapped events (LookupEvents,
    /// CloudWatch Logs).
    Envelope,
    /// A JSON array of records.
    Array,
    /// Several top-level values, one a line.
    Lines,
    /// One record object (or one wrapped record).
    Single,
    /// A CloudTrail digest file: no event records.
    Digest,
    /// One JSON object that is not a CloudTrail record (no eventName, eventSource or eventTime),
    /// such as a manifest lying beside the logs.
    Other,
    /// Nothing but whitespace.
    Empty,
}

/// One record as the scan reached it.
#[derive(Debug)]
pub struct RecordSlot<'a> {
    /// Position of the record in the file, counting from 0.
    pub index: usize,
    /// 1-based line, for line-oriented files.
    pub line: Option<usize>,
    /// The record, or why this slot holds no usable record.
    pub record: Result<Record<'a>, RecordError>,
}

/// A whole-document error: the file is not JSON of a known shape. Records before the error have
/// already been handed out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at line {line} column {column} (after {records_before} records)")]
pub struct DocumentError {
    pub message: String,
    pub line: usize,
    pub column: usize,
    pub records_before: usize,
}

/// Hands every record in `text` to `visit`, in file order. A record borrows from `text`, or,
/// when it was wrapped as JSON text (LookupEvents, CloudWatch Logs), from its unescaped text,
/// which lives only for the call: `visit` takes records of any lifetime.
pub fn for_each_record(text: &str, visit: &mut dyn FnMut(RecordSlot<'_>)) -> Result<Document, DocumentError> {
    let mut splitter = Splitter {
        visit,
        index: 0,
        foreign: None,
        streaming: false,
        salvaged: false,
        list: None,
        depth: 0,
        foreign_payload: false,
        junk_first: false,
    };
    // A UTF-8 byte order mark is no part of the JSON.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut cursor = Cursor::new(text);
    match cursor.peek() {
        None => Ok(Document::Empty),
        Some(b'[') => {
            // A top-level array of records (`jq .Records`) is read on past damage as a
            // `Records` list is.
            let outcome = cursor.array(&mut |c| splitter.element(c, None));
            let outcome = splitter.read_on(&mut cursor, outcome, 1);
            outcome.map_err(|err| splitter.document_error(text, &err))?;
            if cursor.at_end() {
                return Ok(Document::Array);
            }
            // More values follow: one array a line (`jq -c .Records` over delivered files),
            // read on as lines, as a stream of them is.
            splitter.values(text, &mut cursor).map(|_| Document::Lines)
        }
        Some(b'{') => splitter.values(text, &mut cursor),
        Some(b'0'..=b'9') if timestamp_prefix(text.as_bytes(), cursor.at()).is_some() => {
            splitter.values(text, &mut cursor)
        }
        // Lines of records under a first line that is not JSON (a title, a tool's banner, a
        // CSV header): that line is named, the records after it are read.
        Some(_) if next_line_start(text, cursor.at()) < text.len() => {
            splitter.junk_first = true;
            splitter.values(text, &mut cursor).map(|_| Document::Lines)
        }
        Some(_) => {
            let err = DocumentError {
                message: format!(
                    "not JSON: the document starts with {:?}",
                    text[cursor.at()..].chars().next().unwrap_or_default()
                ),
                line: line_and_column(text, cursor.at()).0,
                column: 1,
                records_before: 0,
            };
            // What is left of a list after damage (a stream cut it there): its records are
            // read as the rest of a list, the bytes before them named.
            let junk = RecordError::Syntax {
                at: cursor.at(),
                message: "not JSON: bytes before the next record",
            };
            match splitter.salvage(&mut cursor, junk) {
                Ok(()) => {
                    splitter.salvaged = true;
                    splitter.values(text, &mut cursor).map(|_| Document::Envelope)
                }
                Err(_) => Err(err),
            }
        }
    }
}

struct Splitter<'v> {
    visit: &'v mut dyn FnMut(RecordSlot<'_>),
    index: usize,
    /// A line-oriented value that is not a CloudTrail record: an error if other values follow,
    /// the whole story if it is the only one.
    foreign: Option<usize>,
    /// Inside an envelope's `Records` or a top-level list of wrapped events: a syntax error
    /// there ends the file.
    streaming: bool,
    /// Records were found after damage that ended the document's first value: later damage is
    /// the same document's too, not a line's.
    salvaged: bool,
    /// Reading the elements of a list of wrapped events (see [`List`]).
    list: Option<List>,
    /// How many wrappers the value being read is inside. Objects that hold records are opened
    /// below [`MAX_WRAPS`].
    depth: u8,
    /// What a wrapper held was not CloudTrail (see [`Splitter::wrapped`]).
    foreign_payload: bool,
    /// The document's first line is not JSON but lines of records follow it: its error is a
    /// record's, not the document's.
    junk_first: bool,
}

/// The state of a list of wrapped events (LookupEvents' `Events`, CloudWatch Logs' `events` or
/// `logEvents`). Elements that hold no record are held back until one element shows the list
/// holds CloudTrail, then reported as not CloudTrail; a list none of whose elements holds a
/// record is a foreign document that happens to have such a member, and says nothing.
#[derive(Default, Clone, Copy)]
struct List {
    /// The wrapper depth of the list's elements.
    depth: u8,
    held: usize,
    proven: bool,
    /// Some element was known noise.
    dropped: bool,
}

/// What an object that holds records gave.
#[derive(Debug, PartialEq, Eq)]
enum Opened {
    /// Records, or errors about them, were handed out.
    Handed,
    /// Nothing that is CloudTrail.
    Foreign,
    /// Known noise: CloudWatch Logs' control messages.
    Dropped,
}

impl Splitter<'_> {
    fn emit(&mut self, line: Option<usize>, record: Result<Record<'_>, RecordError>) {
        (self.visit)(RecordSlot {
            index: self.index,
            line,
            record,
        });
        self.index += 1;
    }

    fn document_error(&self, text: &str, err: &RecordError) -> DocumentError {
        let (at, message) = match err {
            RecordError::Syntax { at, message } => (*at, message.to_string()),
            other => (0, other.to_string()),
        };
        // Input that ended early ends where its last value does, not on the blank line after.
        let at = at.min(text.trim_end_matches([' ', '\t', '\r', '\n']).len());
        let (line, column) = line_and_column(text, at);
        DocumentError {
            message: format!("invalid JSON: {message}"),
            line,
            column,
            records_before: self.index,
        }
    }

    /// One element of a records array (or of a list of wrapped events). A record counts its
    /// nesting from itself. An element that cannot be read (nested too deeply, a bad escape) is
    /// a record error, and the scan passes over it to the next one when its brackets balance;
    /// when they do not, the error ends the array. An element that is an envelope (`jq -s .`
    /// over delivered files makes an array of them) gives its records, and one that wraps a
    /// record gives it.
    fn element(&mut self, c: &mut Cursor<'_>, line: Option<usize>) -> Result<(), RecordError> {
        let start = c.at();
        let outer = c.depth();
        c.set_depth(0);
        // Read in place, then made the slot's record in one step: a record is large (its core
        // fields and the index of its members), and each layer of nested results copied it.
        // `Ok(Some(_))`: a whole value that is not an object.
        let mut reader = CoreReader::default();
        let read = match c.peek() {
            Some(b'{') => c.object(&mut |c, key| reader.member(c, key)).map(|()| None),
            Some(byte) => c.skip().map(|()| Some(RecordError::NotAnObject(kind(byte)))),
            None => Err(c.error("unexpected end of input")),
        };
        let holder = reader
            .holder()
            .filter(|_| self.depth < MAX_WRAPS && matches!(read, Ok(None)));
        let in_list = self.list.is_some_and(|list| list.depth == self.depth);
        match holder {
            Some((Holder::Records, at)) if self.list.is_none() => {
                // No CloudTrail record has a `Records` member: an envelope, read again from
                // there (the object was read whole, so its text is sound). Also inside a
                // wrapper: a Splunk `_raw` or an ECS `event.original` may hold a whole file.
                c.set_depth(outer);
                let mut records = Cursor::new(c.text());
                records.seek(at);
                match records.peek() {
                    Some(b'[') => self.records(&mut records)?,
                    Some(b'n') | None => {}
                    Some(byte) => self.emit(line, Err(records_not_a_list(byte))),
                }
                return Ok(());
            }
            Some((holder, at)) if !reader.looks_like_an_event() || reader.holds_strongly() => {
                c.set_depth(outer);
                match self.open(c.text(), holder, at, line) {
                    // An ECS document (Elastic's AWS integration) without the record's text.
                    Opened::Foreign if self.rebuilt(c.text().get(start..c.at()).unwrap_or_default(), line) => {}
                    // Inside a wrapper, the wrapper's reader says it.
                    Opened::Foreign if self.depth > 0 && !in_list => self.foreign_payload = true,
                    Opened::Foreign => self.foreign_element(line),
                    Opened::Dropped => {
                        if let Some(list) = &mut self.list {
                            list.dropped = true;
                        }
                    }
                    Opened::Handed => {}
                }
                return Ok(());
            }
            _ => {}
        }
        let foreign = match &read {
            Ok(None) => !reader.looks_like_an_event(),
            Ok(Some(_)) => true,
            Err(_) => false,
        };
        // An ECS document whose fields are all dotted (no `event` object to open).
        if foreign && matches!(read, Ok(None)) && self.rebuilt(c.text().get(start..c.at()).unwrap_or_default(), line) {
            c.set_depth(outer);
            return Ok(());
        }
        if foreign && (self.depth > 0 || in_list) {
            c.set_depth(outer);
            if in_list {
                self.foreign_element(line);
            } else {
                // What a wrapper holds is not CloudTrail: said by the wrapper's reader.
                self.foreign_payload = true;
            }
            return Ok(());
        }
        let record = match read {
            Ok(None) => reader.finish(c.text().get(start..c.at()).unwrap_or_default()),
            Ok(Some(not_an_object)) => Err(not_an_object),
            Err(err) => {
                // Passed over by its brackets (a record nested too deeply, a bad escape), unless
                // they balance only past the start of a later record: a quote lost or added
                // turns the strings after it inside out, and the count would swallow records
                // up to where another quote turns them back. Then the damage ends the list's
                // reading here, and the list is read on from that record.
                // A record that starts inside the broken one (its closing bytes lost) is found
                // the same way; the list is read on from it.
                if !c.pass_over(start) {
                    if let Some(next) = next_record(c.text(), start + 1, outer) {
                        c.seek(next);
                    }
                    return Err(err);
                }
                if let Some(next) = next_record_before(c.text(), start + 1, outer, c.at(), PASS_OVER_TRIES) {
                    c.seek(next);
                    return Err(err);
                }
                Err(err)
            }
        };
        c.set_depth(outer);
        self.prove();
        self.emit(line, record);
        Ok(())
    }

    /// An element that holds no CloudTrail record: in a list, held back until the list shows
    /// it is CloudTrail's; elsewhere, said at once.
    fn foreign_element(&mut self, line: Option<usize>) {
        match &mut self.list {
            Some(List {
                proven: false, held, ..
            }) => *held += 1,
            _ => self.emit(line, Err(RecordError::NotCloudTrail)),
        }
    }

    /// A record is about to be handed out: in a list not yet known to be CloudTrail's, the
    /// elements held back are reported first.
    fn prove(&mut self) {
        if let Some(list) = &mut self.list
            && !list.proven
        {
            let held = std::mem::take(&mut list.held);
            list.proven = true;
            for _ in 0..held {
                self.emit(None, Err(RecordError::NotCloudTrail));
            }
        }
    }

    /// What the member at `at` of an object that is not a record holds: the elements of a
    /// list, or one wrapped record.
    fn open(&mut self, text: &str, holder: Holder, at: usize, line: Option<usize>) -> Opened {
        let mut c = Cursor::new(text);
        c.seek(at);
        match holder {
            // A list in a list is not a shape any AWS service or search export writes.
            Holder::List if self.list.is_none() => self.list(&mut c).unwrap_or(Opened::Foreign),
            Holder::Detail => self.wrapped(&mut c, line),
            Holder::Text => match c.string() {
                Ok(body) => self.wrapped_text(&body, line),
                Err(_) => Opened::Foreign,
            },
            _ => Opened::Foreign,
        }
    }

    /// The elements of a list of wrapped events at the cursor, and what they gave: records,
    /// only noise, or nothing that is CloudTrail.
    fn list(&mut self, c: &mut Cursor<'_>) -> Result<Opened, RecordError> {
        let outer = self.list.replace(List {
            depth: self.depth,
            ..List::default()
        });
        let outcome = c.array(&mut |c| self.element(c, None));
        let list = std::mem::replace(&mut self.list, outer).unwrap_or_default();
        outcome.map(|()| match list {
            List { proven: true, .. } => Opened::Handed,
            List {
                held: 0, dropped: true, ..
            } => Opened::Dropped,
            _ => Opened::Foreign,
        })
    }

    /// The record an object wraps (an EventBridge event's `detail`, or a wrapped text), at the
    /// cursor, read as a record whatever its members; an object without event fields is not
    /// CloudTrail (another EventBridge event, a log line of JSON).
    fn wrapped(&mut self, c: &mut Cursor<'_>, line: Option<usize>) -> Opened {
        self.depth += 1;
        self.foreign_payload = false;
        if let Err(err) = self.element(c, line) {
            self.prove();
            self.emit(line, Err(err));
        }
        self.depth -= 1;
        if std::mem::take(&mut self.foreign_payload) {
            Opened::Foreign
        } else {
            Opened::Handed
        }
    }

    /// An envelope's `Records` list. Damage inside it (a zeroed block, bytes overwritten, a
    /// value that is no JSON) breaks the list's grammar: the damage is named as a bad record
    /// and the list is read on from the next record after it, instead of ending the file there.
    fn records(&mut self, c: &mut Cursor<'_>) -> Result<(), RecordError> {
        let depth = c.depth() + 1;
        let outcome = c.array(&mut |c| self.element(c, None));
        self.read_on(c, outcome, depth)
    }

    /// After damage in a list of records at `depth` (`outcome` its error): the damage named as
    /// a bad record and the list read on from the next record after it, as often as damage
    /// comes; the error when no record follows it.
    fn read_on(
        &mut self,
        c: &mut Cursor<'_>,
        mut outcome: Result<(), RecordError>,
        depth: usize,
    ) -> Result<(), RecordError> {
        while let Err(err) = outcome {
            let Some(next) = next_record(c.text(), c.at(), depth) else {
                return Err(err);
            };
            self.emit(None, Err(err));
            c.seek(next);
            c.set_depth(depth);
            outcome = c.array_rest(&mut |c| self.element(c, None));
        }
        Ok(())
    }

    /// The record held as JSON text (a LookupEvents result's `CloudTrailEvent`, a CloudWatch
    /// Logs event's `message`), unescaped. Text that is no JSON object is not CloudTrail;
    /// CloudWatch Logs' control messages are dropped.
    fn wrapped_text(&mut self, body: &str, line: Option<usize>) -> Opened {
        let body = body.trim_start();
        if body.starts_with('{') {
            self.wrapped(&mut Cursor::new(body), line)
        } else if body.starts_with("CWL CONTROL MESSAGE") {
            Opened::Dropped
        } else {
            Opened::Foreign
        }
    }

    /// The record an ECS or OCSF document stands for, rebuilt from its fields (see `foreign`)
    /// and handed out; false when `text` is no CloudTrail event's ECS or OCSF document.
    fn rebuilt(&mut self, text: &str, line: Option<usize>) -> bool {
        if self.depth >= MAX_WRAPS {
            return false;
        }
        match crate::foreign::rebuild(text) {
            Some(record) => self.wrapped(&mut Cursor::new(&record), line) == Opened::Handed,
            None => false,
        }
    }

    /// Top-level values one after another: one envelope or record, or NDJSON. A line may start
    /// with a timestamp and a space before its value (a CloudWatch Logs export).
    fn values(&mut self, text: &str, cursor: &mut Cursor<'_>) -> Result<Document, DocumentError> {
        let mut lines = LineCursor { pos: 0, line: 1 };
        let mut values = 0;
        // What the values read whole were: the first one's kind, how many, and whether all
        // were envelopes (not a list of them: a file may hold millions of values).
        let (mut first, mut read, mut envelopes) = (None, 0usize, true);
        while !cursor.at_end() {
            let start = cursor.at();
            if let Some(skip) = timestamp_prefix(text.as_bytes(), start) {
                cursor.seek(start + skip);
            }
            let line = lines.line_at(text, start);
            values += 1;
            let handed = self.index;
            match self.value(cursor, line) {
                Ok(kind) => {
                    first.get_or_insert(kind);
                    read += 1;
                    envelopes &= kind == Document::Envelope;
                }
                Err(mut err) => {
                    let streaming = std::mem::take(&mut self.streaming);
                    if streaming || self.salvaged || (!self.junk_first && !looks_line_oriented(text)) {
                        // A document (an envelope) damaged where no list was being read: bytes
                        // that closed its list early, a broken key. Records after the damage
                        // are read on as the list's.
                        match self.salvage(cursor, err) {
                            Ok(()) => {
                                self.salvaged = true;
                                first.get_or_insert(Document::Envelope);
                                read += 1;
                                continue;
                            }
                            Err(unsalvaged) if streaming || self.salvaged || values == 1 => {
                                return Err(self.document_error(text, &unsalvaged));
                            }
                            Err(unsalvaged) => err = unsalvaged,
                        }
                    }
                    self.flush_foreign();
                    self.emit(Some(line), Err(err));
                    // Lines are read on after the broken value's start, or, when it handed out
                    // records (an envelope over many lines that broke at its end), after where
                    // it broke: its records are not read twice.
                    let from = if self.index > handed + 1 {
                        cursor.at().max(start)
                    } else {
                        start
                    };
                    cursor.seek(next_line_start(text, from));
                }
            }
        }
        if values > 1 {
            self.flush_foreign();
        }
        Ok(match first {
            None if values == 0 => Document::Empty,
            Some(one) if values == 1 && read == 1 => one,
            Some(_) if envelopes && values == read => Document::Envelope,
            _ => Document::Lines,
        })
    }

    /// Damage in a document (`err`, with the cursor where it stopped) that no list's reading
    /// could pass: when a record follows it, the damage is named as a bad record and the
    /// records from there are read as the rest of a list, with the envelope's `}` that closes
    /// it; else `err`.
    fn salvage(&mut self, c: &mut Cursor<'_>, err: RecordError) -> Result<(), RecordError> {
        let Some(next) = next_record(c.text(), c.at(), SALVAGE_DEPTH) else {
            return Err(err);
        };
        self.flush_foreign();
        self.emit(None, Err(err));
        c.seek(next);
        c.set_depth(SALVAGE_DEPTH);
        let outcome = c.array_rest(&mut |c| self.element(c, None));
        self.read_on(c, outcome, SALVAGE_DEPTH)?;
        c.eat(b'}');
        Ok(())
    }

    /// One top-level value: an envelope, a list of wrapped events, a digest, a record, a
    /// wrapped record, or something else.
    fn value(&mut self, c: &mut Cursor<'_>, line: usize) -> Result<Document, RecordError> {
        let start = c.at();
        let Some(b'{') = c.peek() else {
            self.flush_foreign();
            if c.peek() == Some(b'[') {
                // An array of records on its own line (`jq -c .Records`).
                return c.array(&mut |c| self.element(c, None)).map(|()| Document::Array);
            }
            // A scalar, or a line that is no JSON: never passed over by its brackets, which
            // would swallow the record on the next line; a broken one is the caller's to skip.
            let byte = c.peek().unwrap_or_default();
            c.skip()?;
            self.emit(Some(line), Err(RecordError::NotAnObject(kind(byte))));
            return Ok(Document::Lines);
        };
        let mut reader = CoreReader::default();
        let mut envelope = false;
        // A list of wrapped events was read, and whether it held records.
        let mut listed = None;
        let mut digest_keys = 0;
        c.object(&mut |c, key| match key {
            "Records" => {
                envelope = true;
                match c.peek() {
                    Some(b'[') => {
                        self.flush_foreign();
                        self.streaming = true;
                        self.records(c)?;
                        self.streaming = false;
                        Ok(())
                    }
                    Some(b'n') => c.skip(),
                    // Not a list of records: said, not taken for an empty envelope.
                    Some(byte) => {
                        c.skip()?;
                        self.flush_foreign();
                        self.emit(Some(line), Err(records_not_a_list(byte)));
                        Ok(())
                    }
                    None => c.skip(),
                }
            }
            "Events" | "events" | "logEvents" if listed.is_none() && c.peek() == Some(b'[') => {
                self.flush_foreign();
                self.streaming = true;
                listed = Some(self.list(c)?);
                self.streaming = false;
                Ok(())
            }
            "digestStartTime" | "digestS3Object" => {
                digest_keys += 1;
                c.skip()
            }
            _ => reader.member(c, key),
        })?;
        let wrapper = reader
            .holder()
            .filter(|_| (!reader.looks_like_an_event() || reader.holds_strongly()) && !envelope);
        if envelope || listed == Some(Opened::Handed) {
            Ok(Document::Envelope)
        } else if listed == Some(Opened::Dropped) {
            Ok(Document::Other)
        } else if digest_keys == 2 {
            Ok(Document::Digest)
        } else if let wrapper = wrapper.filter(|(holder, _)| *holder != Holder::Records)
            && (wrapper.is_some() || !reader.looks_like_an_event())
        {
            // What a wrapper holds, else an ECS document's record (its `event` object opened
            // to nothing, or all its fields dotted), else a foreign value.
            self.flush_foreign();
            let opened =
                wrapper.is_some_and(|(holder, at)| self.open(c.text(), holder, at, Some(line)) == Opened::Handed);
            if opened || self.rebuilt(c.text().get(start..c.at()).unwrap_or_default(), Some(line)) {
                return Ok(Document::Single);
            }
            self.foreign = Some(line);
            Ok(Document::Other)
        } else {
            self.flush_foreign();
            let raw = c.text().get(start..c.at()).unwrap_or_default();
            self.emit(Some(line), reader.finish(raw));
            Ok(Document::Single)
        }
    }

    /// Reports a held-back foreign value once it is clear the file holds more than it.
    fn flush_foreign(&mut self) {
        if let Some(line) = self.foreign.take() {
            self.emit(Some(line), Err(RecordError::NotCloudTrail));
        }
    }
}

/// An envelope's `Records` that is neither a list nor null (whose value starts with `byte`).
fn records_not_a_list(byte: u8) -> RecordError {
    RecordError::WrongType {
        field: "Records",
        found: kind(byte),
        expected: "an array",
    }
}

fn count_lines(text: &str) -> usize {
    memchr::memchr_iter(b'\n', text.as_bytes()).count()
}

/// 1-based line and column (in bytes) of a byte offset.
fn line_and_column(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = &text.as_bytes()[..at];
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
    (1 + count_lines(&text[..line_start]), 1 + at - line_start)
}

/// Turns byte offsets into 1-based line numbers, counting each newline once for forward moves.
struct LineCursor {
    pos: usize,
    line: usize,
}

impl LineCursor {
    fn line_at(&mut self, text: &str, pos: usize) -> usize {
        let pos = pos.min(text.len());
        if pos < self.pos {
            return 1 + count_lines(&text[..pos]);
        }
        self.line += count_lines(&text[self.pos..pos]);
        self.pos = pos;
        self.line
    }
}

/// A file whose second line starts with `{` is taken to be NDJSON, so a broken line in it is a
/// record error rather than the end of the file.
fn looks_line_oriented(text: &str) -> bool {
    let text = text.trim_start();
    text.split_once('\n').is_some_and(|(_, rest)| {
        rest.starts_with('{') || timestamp_prefix(text.as_bytes(), text.len() - rest.len()).is_some()
    })
}

/// Byte offset of the next line after `from` that starts with `{` (or with a timestamp before
/// one), or the end.
fn next_line_start(text: &str, from: usize) -> usize {
    let bytes = text.as_bytes();
    let mut at = from.min(bytes.len());
    while let Some(newline) = memchr::memchr(b'\n', &bytes[at..]) {
        at += newline + 1;
        if bytes.get(at) == Some(&b'{') || timestamp_prefix(bytes, at).is_some() {
            return at;
        }
    }
    bytes.len()
}

/// Where a list's next record starts after damage at `from`: the first `{` that opens an
/// object read whole, with the fields of an event, and followed by `,` or `]` (so not an object
/// inside a record). At most [`RESYNC_TRIES`] objects are tried; `None` when none is found.
fn next_record(text: &str, from: usize, depth: usize) -> Option<usize> {
    next_record_before(text, from, depth, text.len(), RESYNC_TRIES)
}

/// [`next_record`] starting before `end`, trying at most `tries` objects.
fn next_record_before(text: &str, from: usize, depth: usize, end: usize, tries: usize) -> Option<usize> {
    let bytes = text.as_bytes().get(..end)?;
    let mut at = from;
    for _ in 0..tries {
        // From the damage itself: a missing comma leaves the cursor on the next record.
        at += memchr::memchr(b'{', bytes.get(at..)?)?;
        let mut probe = Cursor::new(text);
        probe.seek(at);
        probe.set_depth(depth);
        let mut reader = CoreReader::default();
        let read = probe.object(&mut |c, key| reader.member(c, key));
        if read.is_ok() && reader.is_surely_a_record() && matches!(probe.peek(), Some(b',' | b']')) {
            return Some(at);
        }
        at += 1;
    }
    None
}

/// Objects tried, inside what a broken record's brackets would pass over, for a record that
/// starts there (the objects of the broken record itself come first: a few).
const PASS_OVER_TRIES: usize = 64;

/// The depth of an envelope's records: in its object, in its list.
const SALVAGE_DEPTH: usize = 2;

/// Objects tried, after damage in a list, to find the next record: enough for the nested
/// objects of a few broken records, bounded against files made of nothing but braces.
const RESYNC_TRIES: usize = 10_000;

/// Whether `rest`, where a read stopped, is the start of a value the bytes end in the middle
/// of: nothing, an escape, a literal or a number cut short.
fn cut_at_end(rest: &[u8]) -> bool {
    rest.is_empty()
        || (rest.first() == Some(&b'\\') && rest.len() < 6)
        || [&b"true"[..], b"false", b"null"]
            .iter()
            .any(|word| rest.len() < word.len() && word.starts_with(rest))
        || (rest.len() < 24
            && rest
                .iter()
                .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E')))
}

/// What [`next_record_in`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextRecord {
    /// A record starts at this offset.
    At(usize),
    /// The object at this offset may be a record, but the bytes end before telling: call
    /// again from there with more.
    More(usize),
    /// No record starts in the bytes before this offset (nor, with `tries` at 0, anywhere).
    Not(usize),
}

/// Bytes after a candidate `{` read at first to tell whether it opens a record; a candidate
/// that runs past them is read again with [`RESYNC_RECORD_BYTES`].
const RESYNC_FIRST_BYTES: usize = 64 << 10;

/// The largest record found after damage (CloudTrail's are 256 KB at most).
pub const RESYNC_RECORD_BYTES: usize = 1 << 20;

/// [`next_record`] over bytes that are part of a stream (and may hold anything: the damage,
/// bytes that are no UTF-8, a last character cut in two): where, from `from`, the next record
/// of a list at `depth` starts. Each `{` tried uses one of `tries`; a record is at most
/// [`RESYNC_RECORD_BYTES`].
pub fn next_record_in(bytes: &[u8], from: usize, depth: usize, tries: &mut usize) -> NextRecord {
    let mut at = from;
    loop {
        let Some(found) = bytes.get(at..).and_then(|rest| memchr::memchr(b'{', rest)) else {
            return NextRecord::Not(bytes.len());
        };
        at += found;
        if *tries == 0 {
            return NextRecord::Not(at);
        }
        *tries -= 1;
        for window in [RESYNC_FIRST_BYTES, RESYNC_RECORD_BYTES] {
            let end = at.saturating_add(window).min(bytes.len());
            let slice = bytes.get(at..end).unwrap_or_default();
            // The valid UTF-8 from the candidate on: a record holds none that is not.
            let (text, cut_short) = match std::str::from_utf8(slice) {
                Ok(text) => (text, false),
                Err(e) => (
                    std::str::from_utf8(slice.get(..e.valid_up_to()).unwrap_or_default()).unwrap_or_default(),
                    // A character cut in two at the end of the bytes is no damage.
                    e.error_len().is_some(),
                ),
            };
            let mut probe = Cursor::new(text);
            probe.set_depth(depth);
            let mut reader = CoreReader::default();
            let read = probe.object(&mut |c, key| reader.member(c, key));
            let after = probe.peek();
            if read.is_ok() && after.is_some() {
                if reader.is_surely_a_record() && matches!(after, Some(b',' | b']')) {
                    return NextRecord::At(at);
                }
                break;
            }
            // Stopped short of the end of the bytes read: no record starts here.
            if !cut_at_end(text.as_bytes().get(probe.at()..).unwrap_or_default()) || cut_short {
                break;
            }
            if end == bytes.len() {
                return NextRecord::More(at);
            }
            // Ran to the end of the window: read on with the larger one (or give up on it).
        }
        at += 1;
    }
}

/// The length of the `TIMESTAMP ` that starts a line of a CloudWatch Logs export to S3
/// (`2026-12-01T10:00:00.000Z {...}`) at `at`, when one does and a JSON object follows it.
fn timestamp_prefix(bytes: &[u8], at: usize) -> Option<usize> {
    let head = bytes.get(at..at + 11)?;
    let date = head.iter().enumerate().all(|(i, b)| match i {
        4 | 7 => *b == b'-',
        10 => *b == b'T',
        _ => b.is_ascii_digit(),
    });
    if !date {
        return None;
    }
    // The rest of the time: digits and `:.+-Z`, up to a space (at most 40 bytes in all).
    let rest = bytes.get(at + 11..)?;
    let end = rest
        .iter()
        .take(40)
        .position(|b| !(b.is_ascii_digit() || matches!(b, b':' | b'.' | b'+' | b'-' | b'Z')))?;
    (rest.get(end) == Some(&b' ') && rest.get(end + 1) == Some(&b'{')).then_some(11 + end + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_record_after_damage_is_found_in_bytes_or_more_are_asked_for() {
        let a = rec("A");
        let b = rec("B");
        // A record's nested objects are no records; the damage (zeros, bytes no UTF-8) is passed.
        let nested = r#"{"eventTime":"2024-01-01T00:00:00Z","userIdentity":{"sessionContext":{"attributes":{}}},"#;
        let mut bytes = vec![0u8; 40];
        bytes.extend_from_slice(&[0xff, 0xfe, b'{']);
        bytes.extend_from_slice(nested.as_bytes());
        let start = bytes.len();
        bytes.extend_from_slice(format!("{b},{a}]}}").as_bytes());
        let mut tries = 100;
        assert_eq!(next_record_in(&bytes, 0, 2, &mut tries), NextRecord::At(start));
        assert!(tries < 100);
        // Cut inside the record, inside a string, after an escape, or before the comma.
        for cut in [start + 5, start + 30, start + b.len() - 1, start + b.len()] {
            let mut tries = 100;
            assert_eq!(
                next_record_in(&bytes[..cut], 0, 2, &mut tries),
                NextRecord::More(start),
                "cut at {cut}"
            );
        }
        let escaped = r#"{"eventName":"x\"y","eventTime":"2024-01-01T00:00:00Z"},"#;
        let cut = escaped.find('\\').expect("escape") + 1;
        assert_eq!(
            next_record_in(&escaped.as_bytes()[..cut], 0, 1, &mut 10),
            NextRecord::More(0)
        );
        // A multi-byte character cut in two at the end is no damage.
        let accent = r#"{"eventName":"é","eventTime":"2024-01-01T00:00:00Z"},"#;
        let cut = accent.find('é').expect("accent") + 1;
        assert_eq!(
            next_record_in(&accent.as_bytes()[..cut], 0, 1, &mut 10),
            NextRecord::More(0)
        );
        // Nothing to find, or no tries left.
        assert_eq!(next_record_in(b"\0\0\0", 0, 1, &mut 10), NextRecord::Not(3));
        let braces = vec![b'{'; 50];
        let mut tries = 10;
        assert_eq!(next_record_in(&braces, 0, 1, &mut tries), NextRecord::Not(10));
        assert_eq!(tries, 0);
        // A record followed by anything but `,` or `]` is inside another object.
        let inside = format!("{a}}}");
        assert_eq!(
            next_record_in(inside.as_bytes(), 0, 1, &mut 10),
            NextRecord::Not(inside.len())
        );
    }

    /// A minimal valid record named `name`.
    fn rec(name: &str) -> String {
        format!(r#"{{"eventTime":"2024-01-01T00:00:00Z","eventName":"{name}","eventSource":"s","userIdentity":{{}}}}"#)
    }

    /// (shape, one string per slot: `@line NAME` or `@line ERR message`)
    fn split(text: &str) -> (Result<Document, DocumentError>, Vec<String>) {
        let mut out = Vec::new();
        let result = for_each_record(text, &mut |slot| {
            let line = slot.line.map(|l| format!("@{l} ")).unwrap_or_default();
            out.push(match slot.record {
                Ok(record) => format!("{line}{}", record.event_name),
                Err(err) => format!("{line}ERR {err}"),
            });
        });
        (result, out)
    }

    #[test]
    fn envelope() {
        let (kind, records) = split(&format!(r#" {{ "Records" : [{}, {}], "x": 3 }}"#, rec("A"), rec("B")));
        assert_eq!(kind, Ok(Document::Envelope));
        assert_eq!(records, ["A", "B"]);
        let (kind, records) = split(r#"{"Records":null}"#);
        assert_eq!((kind, records.len()), (Ok(Document::Envelope), 0));
        let (kind, records) = split(r#"{"Records":[]}"#);
        assert_eq!((kind, records.len()), (Ok(Document::Envelope), 0));
        // Records that are not a list are said to be, not read as an empty envelope.
        for (records, found) in [
            (r#"{"a":1}"#, "an object"),
            (r#""x""#, "a string"),
            ("3", "a number"),
            ("true", "a boolean"),
        ] {
            let (kind, out) = split(&format!(r#"{{"Records":{records}}}"#));
            assert_eq!(kind, Ok(Document::Envelope));
            assert_eq!(out, [format!("@1 ERR Records is {found}, expected an array")]);
        }
    }

    #[test]
    fn raw_text_is_the_record_exactly() {
        let text = format!("{{\"Records\":[ {} ,\n{}]}}", rec("A"), rec("B"));
        let mut raws = Vec::new();
        for_each_record(&text, &mut |slot| {
            raws.push(slot.record.expect("valid").raw().to_string())
        })
        .expect("ok");
        assert_eq!(raws, [rec("A"), rec("B")]);
    }

    #[test]
    fn envelope_with_records_not_first() {
        let (kind, records) = split(&format!(r#"{{"version":1,"Records":[{}]}}"#, rec("A")));
        assert_eq!((kind, records), (Ok(Document::Envelope), vec!["A".to_string()]));
    }

    #[test]
    fn concatenated_envelopes() {
        let (kind, records) = split(&format!(
            "{{\"Records\":[{}]}}\n{{\"Records\":[{}]}}\n",
            rec("A"),
            rec("B")
        ));
        assert_eq!(kind, Ok(Document::Envelope));
        assert_eq!(records, ["A", "B"]);
    }

    #[test]
    fn array_and_non_objects() {
        let (kind, records) = split(&format!(r#"[{}, 5, "s", {{"eventName": 7}}, {}]"#, rec("A"), rec("B")));
        assert_eq!(kind, Ok(Document::Array));
        assert_eq!(records[0], "A");
        assert_eq!(records[1], "ERR record is a number, not an object");
        assert_eq!(records[2], "ERR record is a string, not an object");
        assert_eq!(records[3], "ERR eventName is a number, expected a string");
        assert_eq!(records[4], "B", "a wrong-typed record does not stop the array");
    }

    #[test]
    fn ndjson_with_a_bad_line_keeps_going() {
        let text = format!("{}\n{{\"b\":\n{}\n\n{}\n", rec("A"), rec("C"), rec("D"));
        let (kind, records) = split(&text);
        assert_eq!(kind, Ok(Document::Lines));
        assert_eq!(records.len(), 4, "{records:?}");
        assert_eq!(records[0], "@1 A");
        assert!(records[1].starts_with("@2 ERR invalid JSON"), "{records:?}");
        assert_eq!(records[2], "@3 C");
        assert_eq!(records[3], "@5 D");
    }

    #[test]
    fn single_record_and_digest() {
        let (kind, records) = split(&format!("\n{}\n", rec("A")));
        assert_eq!((kind, records), (Ok(Document::Single), vec!["@2 A".to_string()]));
        let (kind, records) = split(
            r#"{"awsAccountId":"1","digestStartTime":"t","digestEndTime":"t","digestS3Object":"k","logFiles":[]}"#,
        );
        assert_eq!((kind, records.len()), (Ok(Document::Digest), 0));
    }

    #[test]
    fn foreign_json() {
        let (kind, records) = split(r#"{"events": 3000, "files": 260}"#);
        assert_eq!((kind, records.len()), (Ok(Document::Other), 0));
        let (kind, records) = split(&format!("{}\n{{\"other\":1}}\n{}\n", rec("A"), rec("B")));
        assert_eq!(kind, Ok(Document::Lines));
        assert_eq!(records.len(), 3);
        assert!(records[1].starts_with("@2 ERR not a CloudTrail record"), "{records:?}");
        let (_, records) = split(&format!("{}\n{{\"other\":1}}\n", rec("A")));
        assert!(records[1].starts_with("@2 ERR not a CloudTrail record"), "{records:?}");
    }

    #[test]
    fn truncated_envelope_keeps_earlier_records() {
        let (kind, records) = split(&format!(
            "{{\"Records\":[{},\n{},\n{{\"eventName\":",
            rec("A"),
            rec("B")
        ));
        let err = kind.expect_err("truncated");
        assert_eq!(records, ["A", "B"]);
        assert_eq!(err.records_before, 2);
        assert_eq!(err.line, 3);
    }

    /// `depth` nested arrays around a value, inside a record's requestParameters.
    fn deep(name: &str, depth: usize) -> String {
        format!(
            r#"{{"eventTime":"2024-01-01T00:00:00Z","eventName":"{name}","eventSource":"s","userIdentity":{{}},"requestParameters":{}1{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    }

    #[test]
    fn lone_surrogate_in_core_field_keeps_later_records_of_envelope() {
        let bad = r#"{"eventTime":"2024-01-01T00:00:00Z","eventName":"\ud800","eventSource":"s","userIdentity":{}}"#;
        let (kind, records) = split(&format!(r#"{{"Records":[{},{bad},{}]}}"#, rec("A"), rec("B")));
        assert_eq!(kind, Ok(Document::Envelope));
        assert_eq!(records, ["A", "\u{fffd}", "B"]);
    }

    #[test]
    fn lone_surrogate_in_key_keeps_later_records_of_envelope() {
        let bad = r#"{"eventTime":"2024-01-01T00:00:00Z","eventName":"K","eventSource":"s","userIdentity":{"\udc01":"x"},"\ud800":2}"#;
        let (kind, records) = split(&format!(r#"{{"Records":[{},{bad},{}]}}"#, rec("A"), rec("B")));
        assert_eq!(kind, Ok(Document::Envelope));
        assert_eq!(records, ["A", "K", "B"]);
    }

    #[test]
    fn deeply_nested_record_is_named_and_later_records_are_read() {
        let text = format!(r#"{{"Records":[{},{},{}]}}"#, rec("A"), deep("D", 200), rec("B"));
        let (kind, records) = split(&text);
        assert_eq!(kind, Ok(Document::Envelope));
        assert_eq!(records.len(), 3, "{records:?}");
        assert_eq!(records[0], "A");
        assert_eq!(records[1], "ERR invalid JSON: nested too deeply");
        assert_eq!(records[2], "B");
        // The same in a plain array.
        let (kind, records) = split(&format!("[{},{}]", deep("D", 300), rec("B")));
        assert_eq!(kind, Ok(Document::Array));
        assert_eq!(records, ["ERR invalid JSON: nested too deeply", "B"]);
    }

    #[test]
    fn record_nesting_limit_is_the_same_in_any_container() {
        // A record may nest MAX_DEPTH levels whether it stands alone or sits in an envelope.
        let ok = deep("D", crate::MAX_DEPTH - 1);
        assert!(Record::parse(&ok).is_ok());
        let (_, records) = split(&format!(r#"{{"Records":[{ok}]}}"#));
        assert_eq!(records, ["D"]);
        let too_deep = deep("D", crate::MAX_DEPTH);
        assert!(Record::parse(&too_deep).is_err());
        let (_, records) = split(&format!(r#"{{"Records":[{too_deep}]}}"#));
        assert_eq!(records, ["ERR invalid JSON: nested too deeply"]);
    }

    #[test]
    fn broken_record_in_envelope_is_named_and_later_records_are_read() {
        let bad =
            r#"{"eventTime":"2024-01-01T00:00:00Z","eventName":"\x","eventSource":"s","userIdentity":{"a":[1,]}}"#;
        let (kind, records) = split(&format!(r#"{{"Records":[{},{bad},{}]}}"#, rec("A"), rec("B")));
        assert_eq!(kind, Ok(Document::Envelope));
        assert_eq!(records.len(), 3, "{records:?}");
        assert!(records[1].starts_with("ERR invalid JSON"), "{records:?}");
        assert_eq!(records[2], "B");
    }

    #[test]
    fn byte_order_mark_is_accepted() {
        let (kind, records) = split(&format!("\u{feff}{{\"Records\":[{}]}}", rec("A")));
        assert_eq!((kind, records), (Ok(Document::Envelope), vec!["A".to_string()]));
    }

    #[test]
    fn damage_inside_an_envelope_does_not_lose_the_records_after_it() {
        let recs: Vec<String> = (0..6).map(|i| rec(&format!("R{i}"))).collect();
        // A zeroed block over the end of one record and the start of the next; a value that
        // is no JSON between two records; a number with junk after it.
        let text = format!("{{\"Records\":[{}]}}", recs.join(","));
        let cut = text.find("R2").expect("R2");
        let zeroed = format!("{}{}{}", &text[..cut], "\0".repeat(40), &text[cut + 40..]);
        let (kind, records) = split(&zeroed);
        assert_eq!(kind, Ok(Document::Envelope));
        let read: Vec<&String> = records.iter().filter(|r| !r.contains("ERR")).collect();
        assert_eq!(read, ["R0", "R1", "R3", "R4", "R5"], "{records:?}");
        let junk = format!("{{\"Records\":[{}, junk, {}, 12x, {}]}}", recs[0], recs[1], recs[2]);
        let (kind, records) = split(&junk);
        assert_eq!(kind, Ok(Document::Envelope));
        let read: Vec<&String> = records.iter().filter(|r| !r.contains("ERR")).collect();
        assert_eq!(read, ["R0", "R1", "R2"], "{records:?}");
        // Named: the junk, and `12x` twice (a number is no record, and `x` breaks the list).
        assert_eq!(records.len(), 6, "{records:?}");
        // A comma lost between two records: the error is named, both records read.
        let (kind, records) = split(&format!("{{\"Records\":[{} {}, {}]}}", recs[0], recs[1], recs[2]));
        assert_eq!(kind, Ok(Document::Envelope));
        let read: Vec<&String> = records.iter().filter(|r| !r.contains("ERR")).collect();
        assert_eq!(read, ["R0", "R1", "R2"], "{records:?}");
        // Damage with no record after it still ends the file, keeping what was read.
        let (kind, records) = split(&format!("{{\"Records\":[{}, junk", recs[0]));
        assert!(kind.is_err());
        assert_eq!(records, ["R0"]);
    }

    #[test]
    fn damage_that_closes_the_list_or_breaks_the_envelope_does_not_lose_the_records_after_it() {
        let recs: Vec<String> = (0..4).map(|i| rec(&format!("R{i}"))).collect();
        let read = |text: &str| {
            let (kind, records) = split(text);
            let good: Vec<String> = records.iter().filter(|r| !r.contains("ERR")).cloned().collect();
            (kind, good, records.len())
        };
        // Bytes overwritten inside a record with brackets that close the list and the envelope.
        let text = format!(
            "{{\"Records\":[{}, {{\"eventName\": xx}}]]}}{{, {}, {}]}}",
            recs[0], recs[2], recs[3]
        );
        let (kind, good, all) = read(&text);
        assert_eq!(kind, Ok(Document::Envelope));
        assert_eq!(good, ["R0", "R2", "R3"]);
        // Named: the broken record, and the damage after the list closed.
        assert_eq!(all, 5, "{:?}", split(&text).1);
        // The envelope closed, then records again (a write cut short, then appended to).
        let text = format!("{{\"Records\":[{}]}}, {}, {}]}}", recs[0], recs[1], recs[2]);
        let (kind, good, all) = read(&text);
        assert_eq!(kind, Ok(Document::Envelope));
        assert_eq!((good, all), (vec!["R0".to_string(), "R1".into(), "R2".into()], 4));
        // A key of the envelope broken: the list's records are found.
        let text = format!("{{\"Rec\u{1}ords\":[{}, {}]}}", recs[0], recs[1]);
        let (kind, good, all) = read(&text);
        assert_eq!(kind, Ok(Document::Envelope));
        assert_eq!((good, all), (vec!["R0".to_string(), "R1".into()], 3));
        // Damage twice: each named, every record read.
        let text = format!(
            "{{\"Records\":[{}]]}}, {}]]}}, {}, {}]}}",
            recs[0], recs[1], recs[2], recs[3]
        );
        let (kind, good, _) = read(&text);
        assert_eq!(kind, Ok(Document::Envelope));
        assert_eq!(good, ["R0", "R1", "R2", "R3"]);
        // A record cut short by bytes that are no JSON: its brackets balance only with the
        // list's `]`, which closes no object, so the records after it are found.
        let text = format!(
            "{{\"Records\":[{}, {{\"eventName\": xx, {}, {}]}}",
            recs[0], recs[2], recs[3]
        );
        let (kind, good, _) = read(&text);
        assert_eq!(kind, Ok(Document::Envelope));
        assert_eq!(good, ["R0", "R2", "R3"]);
        // A quote added in one record and lost in a later one: between them the strings are
        // inside out, and the broken record's brackets balance only far on. The records in
        // between are found, not passed over with it.
        let many: Vec<String> = (0..8).map(|i| rec(&format!("Q{i}"))).collect();
        let text = format!("{{\"Records\":[{}]}}", many.join(","))
            .replacen("\"Q1\"", "\"Q\"1\"", 1)
            .replacen("\"Q6\"", "Q6\"", 1);
        let (kind, good, _) = read(&text);
        assert_eq!(kind, Ok(Document::Envelope));
        assert_eq!(good, ["Q0", "Q2", "Q3", "Q4", "Q5", "Q7"]);
        // A record whose closing bytes were lost holds the records after it, to the end of the
        // file: they are found inside it. The same in a top-level array.
        let cut = format!(
            "{{\"Records\":[{}, {}, {}]}}",
            recs[0],
            &recs[1][..recs[1].len() - 1],
            recs[2]
        );
        let (kind, good, _) = read(&cut);
        assert_eq!(
            (kind, good),
            (Ok(Document::Envelope), vec!["R0".to_string(), "R2".into()])
        );
        let array = format!("[{}, {{\"eventName\": xx, {}, {}]", recs[0], recs[2], recs[3]);
        assert_eq!(read(&array).1, ["R0", "R2", "R3"]);
        // An envelope over many lines whose end is cut off (a stream's value cut before its
        // `}`): its records once, and the break named, not each line read again.
        let text = format!("{{\"Records\":[\n{},\n{},\n{}\n]", recs[0], recs[1], recs[2]);
        let (_, good, all) = read(&text);
        assert_eq!((good, all), (vec!["R0".to_string(), "R1".into(), "R2".into()], 4));
        // What a stream leaves of a list after damage it took for the end of a value: bytes,
        // then records of the list.
        let text = format!("x x {{ersion\": 1, {}, {}]}}", recs[2], recs[3]);
        let (kind, good, all) = read(&text);
        assert_eq!(
            (kind, good, all),
            (Ok(Document::Envelope), vec!["R2".to_string(), "R3".into()], 3)
        );
        assert!(split("x x no record").0.is_err());
        // Damage with no record after it still ends the document, keeping what was read.
        let (kind, good, _) = read(&format!("{{\"Records\":[{}]]]]}}", recs[0]));
        assert!(kind.is_err());
        assert_eq!(good, ["R0"]);
    }

    #[test]
    fn garbage_and_empty() {
        assert_eq!(split("   \n").0, Ok(Document::Empty));
        let err = split("\n\nhello").0.expect_err("garbage");
        assert_eq!(err.line, 3);
        assert!(err.message.contains("not JSON"), "{err}");
        // Lines of records under lines that are not JSON (a banner, a header, a stray line):
        // those lines are named, the records read, as a stream of the same bytes reads them.
        let (kind, records) = split(&format!("# exported by tool\n\n{}\n\0\0\n{}\n", rec("A"), rec("B")));
        assert_eq!(kind, Ok(Document::Lines));
        assert_eq!(records.iter().filter(|r| !r.contains("ERR")).count(), 2, "{records:?}");
        assert!(records.first().is_some_and(|r| r.starts_with("@1 ERR")), "{records:?}");
        assert!(records.iter().any(|r| r.starts_with("@4 ERR")), "{records:?}");
        // A pretty-printed object broken in the middle is a document error, not a line flood.
        let err = split("{\n  \"a\": 1,\n  \"b\": }\n").0.expect_err("broken");
        assert_eq!((err.line, err.column), (3, 8));
        let (err, records) = split(&format!("[{}] x", rec("A")));
        let err = err.expect_err("trailing");
        assert!(err.message.contains("expected a value"), "{err}");
        assert_eq!(records, ["A"], "the array before the garbage is read");
    }

    #[test]
    fn one_array_a_line() {
        // `jq -c .Records` over delivered files: every line's records, as a stream reads them.
        let text = format!("[{}, {}]\n[{}]\n\n[]\n[{}]\n", rec("A"), rec("B"), rec("C"), rec("D"));
        let (kind, records) = split(&text);
        assert_eq!(kind, Ok(Document::Lines));
        assert_eq!(records, ["A", "B", "C", "D"]);
        // After an envelope or a record too, and a bad line among them is one error.
        let text = format!(
            "{{\"Records\":[{}]}}\n[{}, 3]\n[{{\"b\":\n{}\n",
            rec("A"),
            rec("B"),
            rec("C")
        );
        let (kind, records) = split(&text);
        assert_eq!(kind, Ok(Document::Lines));
        assert_eq!(records[..3], ["A", "B", "ERR record is a number, not an object"]);
        assert!(records[3].starts_with("@3 ERR invalid JSON"), "{records:?}");
        assert_eq!(records[4], "@4 C");
    }

    #[test]
    fn envelopes_in_an_array() {
        // `jq -s .` over delivered files: an array of envelopes, records among them too.
        let text = format!(
            r#"[{{"Records":[{}]}}, {{"Records":[{}, {}]}}, {}, {{"Records":[]}}]"#,
            rec("A"),
            rec("B"),
            rec("C"),
            rec("D")
        );
        let (kind, records) = split(&text);
        assert_eq!(kind, Ok(Document::Array));
        assert_eq!(records, ["A", "B", "C", "D"]);
        // One whose Records is not a list is said to be, as at the top.
        let (_, records) = split(r#"[{"Records":5}, {"Records":null}]"#);
        assert_eq!(records, ["ERR Records is a number, expected an array"]);
    }

    /// `record` as JSON text inside a JSON string.
    fn quoted(record: &str) -> String {
        serde_json::to_string(record).expect("quote")
    }

    #[test]
    fn splunk_exports() {
        // Splunk's JSON export (`output_mode=json`, Splunk Web's Export): one line a result, the
        // record as text in `_raw`, beside fields Splunk extracted (flattened, and here made to
        // disagree with the record: `_raw` is what is read).
        let line = |r: &str, last: bool| {
            format!(
                r#"{{"preview":false,"offset":0,{}"result":{{"_bkt":"main~1","_raw":{},"_time":"2024-01-01T00:00:00.000+00:00","eventName":"Extracted","userIdentity.type":"IAMUser","sourcetype":"aws:cloudtrail"}}}}"#,
                if last { r#""lastrow":true,"# } else { "" },
                quoted(r)
            )
        };
        let (kind, records) = split(&format!("{}\n{}\n", line(&rec("A"), false), line(&rec("B"), true)));
        assert_eq!(
            (kind, records),
            (Ok(Document::Lines), vec!["@1 A".to_string(), "@2 B".into()])
        );
        // REST results (`/results?output_mode=json`).
        let results = format!(
            r#"{{"preview":false,"init_offset":0,"messages":[],"fields":[{{"name":"_raw"}}],"results":[{{"_raw":{}}},{{"_raw":{}}}],"highlighted":{{}}}}"#,
            quoted(&rec("A")),
            quoted(&rec("B"))
        );
        let (kind, records) = split(&results);
        assert_eq!(
            (kind, records),
            (Ok(Document::Single), vec!["A".to_string(), "B".into()])
        );
        // A `_raw` that is a whole delivered file (an envelope) gives its records.
        let envelope = format!(r#"{{"Records":[{},{}]}}"#, rec("A"), rec("B"));
        let (kind, records) = split(&format!(
            r#"{{"preview":false,"result":{{"_raw":{}}}}}"#,
            quoted(&envelope)
        ));
        assert_eq!(
            (kind, records),
            (Ok(Document::Single), vec!["A".to_string(), "B".into()])
        );
        // Results whose `_raw` is some other log line are not CloudTrail.
        let (kind, records) = split(r#"{"preview":false,"result":{"_raw":"Jan  1 host sshd[1]: Accepted"}}"#);
        assert_eq!((kind, records.len()), (Ok(Document::Other), 0));
    }

    #[test]
    fn elasticsearch_and_opensearch_exports() {
        // A `_search` response; the `_source` is the record (Logstash's CloudTrail codec moves
        // `eventTime` to `@timestamp`).
        let logstash = rec("A").replace(r#""eventTime""#, r#""@timestamp""#);
        let hit =
            |source: &str| format!(r#"{{"_index":"cloudtrail-2024.01.01","_id":"x","_score":1.0,"_source":{source}}}"#);
        let response = format!(
            r#"{{"took":3,"timed_out":false,"_shards":{{"total":1}},"hits":{{"total":{{"value":2,"relation":"eq"}},"max_score":1.0,"hits":[{},{}]}}}}"#,
            hit(&logstash),
            hit(&rec("B"))
        );
        let (kind, records) = split(&response);
        assert_eq!(
            (kind, records),
            (Ok(Document::Single), vec!["A".to_string(), "B".into()])
        );
        // One hit a line (elasticdump, a scroll saved with `jq -c '.hits.hits[]'`); an ECS
        // document (Elastic's AWS integration) with the record's text kept in `event.original`.
        let ecs = format!(
            r#"{{"@timestamp":"2024-01-01T00:00:00Z","event":{{"action":"Extracted","provider":"s","original":{}}},"aws":{{"cloudtrail":{{}}}}}}"#,
            quoted(&rec("C"))
        );
        let (kind, records) = split(&format!("{}\n{}\n", hit(&rec("B")), hit(&ecs)));
        assert_eq!(
            (kind, records),
            (Ok(Document::Lines), vec!["@1 B".to_string(), "@2 C".into()])
        );
        // An ECS document without the original text: the record is rebuilt from its fields,
        // in a hit, on a line of its own, or in an array.
        let fields = r#"{"@timestamp":"2024-01-01T00:00:00Z","event":{"action":"D","provider":"iam.amazonaws.com","dataset":"aws.cloudtrail"},"aws":{"cloudtrail":{"user_identity":{"type":"Root"}}}}"#;
        let (kind, records) = split(&format!("{}\n{fields}\n", hit(fields)));
        assert_eq!(
            (kind, records),
            (Ok(Document::Lines), vec!["@1 D".to_string(), "@2 D".into()])
        );
        let (kind, records) = split(&format!("[{fields},{fields}]"));
        assert_eq!(
            (kind, records),
            (Ok(Document::Array), vec!["D".to_string(), "D".into()])
        );
        // All its fields dotted (no `event` object): on a line, in an array, in a hit.
        let dotted = r#"{"@timestamp":"2024-01-01T00:00:00Z","event.action":"E","event.provider":"iam.amazonaws.com","aws.cloudtrail.user_identity.type":"Root"}"#;
        let (kind, records) = split(&format!("{dotted}\n[{dotted}]\n{}\n", hit(dotted)));
        assert_eq!(
            (kind, records),
            (Ok(Document::Lines), vec!["@1 E".to_string(), "E".into(), "@3 E".into()])
        );
        // One that is not an AWS service's event, or has too little to tell, is not CloudTrail;
        // among hits that are, it is named.
        let bare = r#"{"@timestamp":"2024-01-01T00:00:00Z","event":{"action":"CreateUser"}}"#;
        let (kind, records) = split(&hit(bare));
        assert_eq!((kind, records.len()), (Ok(Document::Other), 0));
        let (kind, records) = split(&format!(r#"{{"hits":{{"hits":[{},{}]}}}}"#, hit(bare), hit(&rec("B"))));
        let not = "ERR not a CloudTrail record (it has no eventName, eventSource or eventTime)";
        assert_eq!(
            (kind, records),
            (Ok(Document::Single), vec![not.to_string(), "B".into()])
        );
        // A search response of other documents says nothing.
        let (kind, records) = split(r#"{"hits":{"hits":[{"_source":{"msg":"x"}},{"_source":{"msg":"y"}}]}}"#);
        assert_eq!((kind, records.len()), (Ok(Document::Other), 0));
    }

    #[test]
    fn ocsf_events_give_their_records() {
        // Amazon Security Lake's CloudTrail events (OCSF), as an Athena UNLOAD or a data-lake
        // job writes them: one a line, in an array, or behind a message text that is no record.
        let event = |name: &str| {
            format!(
                r#"{{"class_uid":6003,"time":1709294400000,"message":"{name} call","metadata":{{"product":{{"name":"CloudTrail","vendor_name":"AWS"}}}},"api":{{"operation":"{name}","service":{{"name":"iam.amazonaws.com"}}}},"actor":{{"user":{{"type":"IAMUser","uid":"arn:aws:iam::111122223333:user/alice"}}}}}}"#
            )
        };
        let (kind, records) = split(&format!("{}\n{}\n", event("A"), event("B")));
        assert_eq!(
            (kind, records),
            (Ok(Document::Lines), vec!["@1 A".to_string(), "@2 B".into()])
        );
        let (kind, records) = split(&format!("[{},{}]", event("C"), event("D")));
        assert_eq!(
            (kind, records),
            (Ok(Document::Array), vec!["C".to_string(), "D".into()])
        );
        // In a search hit (OpenSearch holds Security Lake data too).
        let (kind, records) = split(&format!(r#"{{"_index":"ocsf","_source":{}}}"#, event("E")));
        assert_eq!((kind, records), (Ok(Document::Single), vec!["@1 E".to_string()]));
        // Another product's OCSF events are not CloudTrail.
        let other = r#"{"class_uid":6003,"time":1,"metadata":{"product":{"name":"Okta"}},"api":{"operation":"x","service":{"name":"okta"}}}"#;
        let (kind, records) = split(&format!("{other}\n"));
        assert_eq!((kind, records.len()), (Ok(Document::Other), 0));
    }

    #[test]
    fn lookup_events_output() {
        // `aws cloudtrail lookup-events` as the CLI prints it.
        let result = |r: &str| {
            format!(
                "{{\"EventId\": \"1\", \"EventName\": \"X\", \"EventTime\": \"2024-01-01T00:00:00+00:00\", \"Resources\": [], \"CloudTrailEvent\": {}}}",
                quoted(r)
            )
        };
        let text = format!(
            "{{\n  \"Events\": [\n    {},\n    {}\n  ],\n  \"NextToken\": \"abc\"\n}}\n",
            result(&rec("A")),
            result(&rec("B"))
        );
        let (kind, records) = split(&text);
        assert_eq!(
            (kind, records),
            (Ok(Document::Envelope), vec!["A".to_string(), "B".to_string()])
        );
        // The record handed on is the event's own text, unescaped.
        let mut raws = Vec::new();
        for_each_record(&text, &mut |slot| {
            raws.push(slot.record.expect("valid").raw().to_string())
        })
        .expect("ok");
        assert_eq!(raws, [rec("A"), rec("B")]);
        // Its results one a line (`jq -c '.Events[]'`), or as an array (`jq .Events`).
        let (kind, records) = split(&format!("{}\n{}\n", result(&rec("A")), result(&rec("B"))));
        assert_eq!(
            (kind, records),
            (Ok(Document::Lines), vec!["@1 A".to_string(), "@2 B".to_string()])
        );
        let (kind, records) = split(&format!("[{}, {}]", result(&rec("A")), result(&rec("B"))));
        assert_eq!(
            (kind, records),
            (Ok(Document::Array), vec!["A".to_string(), "B".to_string()])
        );
        // A broken record inside is an error about that record; the next is read.
        let (kind, records) = split(&format!(
            r#"{{"Events":[{}, {}, {{"EventId":"3"}}]}}"#,
            result(r#"{"eventName":"#),
            result(&rec("B"))
        ));
        assert_eq!(kind, Ok(Document::Envelope));
        assert!(records[0].starts_with("ERR invalid JSON"), "{records:?}");
        assert_eq!(records[1], "B");
        assert_eq!(
            records[2],
            "ERR not a CloudTrail record (it has no eventName, eventSource or eventTime)"
        );
    }

    #[test]
    fn eventbridge_events() {
        let event = |r: &str| {
            format!(
                r#"{{"version":"0","id":"x","detail-type":"AWS API Call via CloudTrail","source":"aws.iam","account":"1","time":"2024-01-01T00:00:00Z","region":"us-east-1","resources":[],"detail":{r}}}"#
            )
        };
        let (kind, records) = split(&format!("{}\n{}\n", event(&rec("A")), event(&rec("B"))));
        assert_eq!(
            (kind, records),
            (Ok(Document::Lines), vec!["@1 A".to_string(), "@2 B".to_string()])
        );
        let text = event(&rec("A"));
        let mut raws = Vec::new();
        let kind = for_each_record(&text, &mut |slot| {
            raws.push(slot.record.expect("valid").raw().to_string())
        });
        assert_eq!((kind, raws), (Ok(Document::Single), vec![rec("A")]));
        // Other EventBridge events are not CloudTrail: alone, a foreign file; among records,
        // named as such.
        let s3 = r#"{"source":"aws.s3","detail-type":"Object Created","detail":{"bucket":{}}}"#;
        let (kind, records) = split(s3);
        assert_eq!((kind, records.len()), (Ok(Document::Other), 0));
        let (_, records) = split(&format!("{s3}\n{}\n", event(&rec("A"))));
        assert_eq!(
            records,
            [
                "@1 ERR not a CloudTrail record (it has no eventName, eventSource or eventTime)",
                "@2 A"
            ]
        );
        // A wrapped record that is broken is an error about it.
        let (_, records) = split(&event(
            r#"{"eventName":"A","eventTime":"later","eventSource":"s","userIdentity":{}}"#,
        ));
        assert_eq!(records, ["@1 ERR eventTime \"later\" is not a time"]);
        // A record's detail is not unwrapped: the record is the event.
        let inner = rec("A").replace("}}", r#"},"detail":{"eventName":"B"}}"#);
        let (_, records) = split(&inner);
        assert_eq!(records, ["@1 A"]);
    }

    #[test]
    fn cloudwatch_logs_shapes() {
        let event = |r: &str| format!(r#"{{"id":"1","timestamp":1704067200000,"message":{}}}"#, quoted(r));
        // A subscription's messages, one after another as Firehose writes them, control
        // messages among them.
        let control = r#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}"#;
        let data = format!(
            r#"{{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"trail","logStream":"1_CloudTrail_us-east-1","subscriptionFilters":["f"],"logEvents":[{},{}]}}"#,
            event(&rec("A")),
            event(&rec("B"))
        );
        let (kind, records) = split(&format!("{control}{data}{data}"));
        assert_eq!(kind, Ok(Document::Lines));
        assert_eq!(records, ["A", "B", "A", "B"]);
        let (kind, records) = split(control);
        assert_eq!((kind, records.len()), (Ok(Document::Other), 0));
        // FilterLogEvents output.
        let (kind, records) = split(&format!(
            r#"{{"events":[{}],"searchedLogStreams":[]}}"#,
            event(&rec("A"))
        ));
        assert_eq!((kind, records), (Ok(Document::Envelope), vec!["A".to_string()]));
        // An export to S3: a timestamp, a space and the record, a line.
        let text = format!(
            "2024-01-01T00:00:00.000Z {}\n2024-01-01T00:00:01.000Z {{\"broken\":\n2024-01-01T00:00:02.000Z {}\n",
            rec("A"),
            rec("B")
        );
        let (kind, records) = split(&text);
        assert_eq!(kind, Ok(Document::Lines));
        assert_eq!(records[0], "@1 A");
        assert!(records[1].starts_with("@2 ERR invalid JSON"), "{records:?}");
        assert_eq!(records[2], "@3 B");
        assert_eq!(timestamp_prefix(b"2024-01-01T00:00:00Z {", 0), Some(21));
        assert_eq!(timestamp_prefix(b"2024-01-01T00:00:00Z hello", 0), None);
        assert_eq!(timestamp_prefix(b"2024-01-01 00:00:00Z {", 0), None);
    }

    #[test]
    fn foreign_lists_say_nothing_and_mixed_ones_say_what_is_not_cloudtrail() {
        // A document that happens to have an `events` list of something else is foreign.
        let (kind, records) = split(r#"{"events":[{"name":"deploy"},{"name":"rollback"}],"count":2}"#);
        assert_eq!((kind, records.len()), (Ok(Document::Other), 0));
        let (kind, records) = split(r#"{"events":[1,2],"logEvents":[]}"#);
        assert_eq!((kind, records.len()), (Ok(Document::Other), 0));
        // Among CloudTrail results, the others are named, in place.
        let text = format!(
            r#"{{"Events":[{{"EventId":"1"}}, {{"CloudTrailEvent":{}}}, 5, {{"message":"plain text"}}]}}"#,
            quoted(&rec("A"))
        );
        let (kind, records) = split(&text);
        assert_eq!(kind, Ok(Document::Envelope));
        let not = "ERR not a CloudTrail record (it has no eventName, eventSource or eventTime)";
        assert_eq!(records, [not, "A", not, not]);
        // Wrappers inside wrappers are opened, MAX_WRAPS deep and no deeper.
        let nested = |wraps: u8| {
            (0..wraps).fold(rec("A"), |inner, _| {
                format!(r#"{{"CloudTrailEvent":{}}}"#, quoted(&inner))
            })
        };
        let (kind, records) = split(&nested(MAX_WRAPS));
        assert_eq!((kind, records), (Ok(Document::Single), vec!["@1 A".to_string()]));
        let (kind, records) = split(&nested(MAX_WRAPS + 1));
        assert_eq!((kind, records.len()), (Ok(Document::Other), 0));
        // Results saved with their record parsed to an object.
        let (kind, records) = split(&format!(
            r#"{{"Events":[{{"EventId":"1","CloudTrailEvent":{}}}]}}"#,
            rec("A")
        ));
        assert_eq!((kind, records), (Ok(Document::Envelope), vec!["A".to_string()]));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in ".{0,200}") {
            let _ = split(&text);
        }

        #[test]
        fn never_panics_on_json_like(text in "[\\[\\]{}\":,0-9a-zRecordsevntNam \\n]{0,160}") {
            let _ = split(&text);
        }
    }
}
