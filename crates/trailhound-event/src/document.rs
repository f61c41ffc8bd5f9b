//! Splitting a CloudTrail document into records.
//!
//! Accepted shapes: the delivery envelope `{"Records":[...]}`, a JSON array of records, NDJSON (one
//! record, or one envelope, per line), a single record, and digest files (recognised and skipped).
//! Records are handed out as borrowed raw JSON as the parser reaches them, so a syntax error late in
//! a file loses nothing read before it. In NDJSON a bad line is a record error and the scan resumes
//! at the next line that starts with `{`.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::record::RecordError;

/// What a buffer turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    /// One or more `{"Records":[...]}` envelopes.
    Envelope,
    /// A JSON array of records.
    Array,
    /// Several top-level values, one a line.
    Lines,
    /// One record object.
    Single,
    /// A CloudTrail digest file: no event records.
    Digest,
    /// One JSON object that is not a CloudTrail record (no eventName, eventSource or eventTime),
    /// such as a manifest lying beside the logs.
    Other,
    /// Nothing but whitespace.
    Empty,
}

/// One record as the parser reached it.
#[derive(Debug)]
pub struct RecordSlot<'a> {
    /// Position of the record in the file, counting from 0.
    pub index: usize,
    /// 1-based line, for line-oriented files.
    pub line: Option<usize>,
    /// The record's JSON, or why this slot holds no usable JSON object.
    pub raw: Result<&'a RawValue, RecordError>,
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

/// Hands every record in `text` to `visit`, in file order.
pub fn for_each_record<'a>(text: &'a str, visit: &mut dyn FnMut(RecordSlot<'a>)) -> Result<Document, DocumentError> {
    let mut splitter = Splitter {
        visit,
        index: 0,
        foreign: None,
    };
    let start = text.len() - text.trim_start().len();
    match text.as_bytes().get(start) {
        None => Ok(Document::Empty),
        Some(b'[') => splitter.array(text),
        Some(b'{') if is_envelope_start(&text[start..]) => splitter.envelope(text),
        Some(b'{') => splitter.values(text, 0),
        Some(&other) => Err(DocumentError {
            message: format!("not JSON: the document starts with {:?}", char::from(other)),
            line: 1 + memchr::memchr_iter(b'\n', &text.as_bytes()[..start]).count(),
            column: 1,
            records_before: 0,
        }),
    }
}

/// `{ "Records" :` with optional whitespace: the shape every delivered log file has.
fn is_envelope_start(text: &str) -> bool {
    let rest = text[1..].trim_start();
    rest.strip_prefix("\"Records\"")
        .is_some_and(|rest| rest.trim_start().starts_with(':'))
}

struct Splitter<'v, 'a> {
    visit: &'v mut dyn FnMut(RecordSlot<'a>),
    index: usize,
    /// A line-oriented value that is not a CloudTrail record: an error if other values follow,
    /// the whole story if it is the only one.
    foreign: Option<usize>,
}

impl<'a> Splitter<'_, 'a> {
    fn emit(&mut self, line: Option<usize>, raw: Result<&'a RawValue, RecordError>) {
        let raw = raw.and_then(|raw| {
            if raw.get().starts_with('{') {
                Ok(raw)
            } else {
                Err(RecordError::NotAnObject(json_kind(raw.get())))
            }
        });
        (self.visit)(RecordSlot {
            index: self.index,
            line,
            raw,
        });
        self.index += 1;
    }

    fn error(&self, err: &serde_json::Error) -> DocumentError {
        DocumentError {
            message: describe(err),
            line: err.line(),
            column: err.column(),
            records_before: self.index,
        }
    }

    fn array(&mut self, text: &'a str) -> Result<Document, DocumentError> {
        let mut de = serde_json::Deserializer::from_str(text);
        RecordsSeed { splitter: self }
            .deserialize(&mut de)
            .and_then(|()| de.end())
            .map_err(|err| self.error(&err))?;
        Ok(Document::Array)
    }

    fn envelope(&mut self, text: &'a str) -> Result<Document, DocumentError> {
        let mut de = serde_json::Deserializer::from_str(text);
        de.deserialize_map_envelope(self).map_err(|err| self.error(&err))?;
        match de.end() {
            Ok(()) => Ok(Document::Envelope),
            // More values follow the first envelope: treat the file as line-oriented from the
            // second value on.
            Err(_) => self.values(text, 1).map(|_| Document::Envelope),
        }
    }

    /// Top-level values one after another (NDJSON or concatenated envelopes). `skip` values at the
    /// start were already handled.
    fn values(&mut self, text: &'a str, mut skip: usize) -> Result<Document, DocumentError> {
        let mut lines = LineCursor { pos: 0, line: 1 };
        let mut offset = 0;
        let mut values = 0;
        let mut kind = None;
        'outer: while offset < text.len() {
            let base_line = lines.line_at(text, offset);
            let mut stream = serde_json::Deserializer::from_str(&text[offset..]).into_iter::<&'a RawValue>();
            loop {
                let before = offset + stream.byte_offset();
                let value_start = before + (text[before..].len() - text[before..].trim_start().len());
                match stream.next() {
                    None => break 'outer,
                    Some(Ok(raw)) => {
                        let line = lines.line_at(text, value_start);
                        values += 1;
                        if skip > 0 {
                            skip -= 1;
                            continue;
                        }
                        kind = Some(self.value(raw, line)?);
                    }
                    Some(Err(err)) => {
                        if values == 0 && !looks_line_oriented(text) {
                            let line = base_line + err.line().saturating_sub(1);
                            return Err(DocumentError {
                                line,
                                ..self.error(&err)
                            });
                        }
                        values += 1;
                        self.flush_foreign();
                        let line = lines.line_at(text, value_start);
                        self.emit(Some(line), Err(RecordError::Json(describe(&err))));
                        // Resume at the next line that starts a new top-level object.
                        offset = next_line_start(text, value_start);
                        continue 'outer;
                    }
                }
            }
        }
        if values > 1 {
            self.flush_foreign();
        }
        Ok(finish(kind, values))
    }

    /// Reports a held-back foreign value once it is clear the file holds more than it.
    fn flush_foreign(&mut self) {
        if let Some(line) = self.foreign.take() {
            self.emit(Some(line), Err(RecordError::NotCloudTrail));
        }
    }

    /// One top-level value of a line-oriented file.
    fn value(&mut self, raw: &'a RawValue, line: usize) -> Result<Document, DocumentError> {
        #[derive(Deserialize)]
        struct Probe<'a> {
            #[serde(rename = "Records", borrow)]
            records: Option<&'a RawValue>,
            #[serde(rename = "digestStartTime")]
            digest_start: Option<IgnoredAny>,
            #[serde(rename = "digestS3Object")]
            digest_object: Option<IgnoredAny>,
            #[serde(rename = "eventName")]
            event_name: Option<IgnoredAny>,
            #[serde(rename = "eventSource")]
            event_source: Option<IgnoredAny>,
            #[serde(rename = "eventTime")]
            event_time: Option<IgnoredAny>,
        }
        self.flush_foreign();
        if !raw.get().starts_with('{') {
            self.emit(Some(line), Ok(raw));
            return Ok(Document::Lines);
        }
        let probe: Probe<'a> = match serde_json::from_str(raw.get()) {
            Ok(probe) => probe,
            Err(err) => {
                self.emit(Some(line), Err(RecordError::Json(describe(&err))));
                return Ok(Document::Lines);
            }
        };
        if let Some(records) = probe.records {
            let mut de = serde_json::Deserializer::from_str(records.get());
            RecordsSeed { splitter: self }
                .deserialize(&mut de)
                .map_err(|err| DocumentError {
                    line: line + err.line() - 1,
                    ..self.error(&err)
                })?;
            Ok(Document::Envelope)
        } else if probe.digest_start.is_some() && probe.digest_object.is_some() {
            Ok(Document::Digest)
        } else if probe.event_name.is_none() && probe.event_source.is_none() && probe.event_time.is_none() {
            self.foreign = Some(line);
            Ok(Document::Other)
        } else {
            self.emit(Some(line), Ok(raw));
            Ok(Document::Single)
        }
    }
}

fn finish(kind: Option<Document>, values: usize) -> Document {
    match kind {
        Some(Document::Single | Document::Other) if values > 1 => Document::Lines,
        Some(kind) => kind,
        None if values > 0 => Document::Lines,
        None => Document::Empty,
    }
}

fn count_lines(text: &str) -> usize {
    memchr::memchr_iter(b'\n', text.as_bytes()).count()
}

/// Turns byte offsets into 1-based line numbers, counting each newline once for forward moves.
struct LineCursor {
    pos: usize,
    line: usize,
}

impl LineCursor {
    fn line_at(&mut self, text: &str, pos: usize) -> usize {
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
    text.trim_start()
        .split_once('\n')
        .is_some_and(|(_, rest)| rest.starts_with('{'))
}

/// Byte offset of the next line at or after `from` that starts with `{`, or the end.
fn next_line_start(text: &str, from: usize) -> usize {
    let bytes = text.as_bytes();
    let mut at = from.min(bytes.len());
    while let Some(newline) = memchr::memchr(b'\n', &bytes[at..]) {
        at += newline + 1;
        if bytes.get(at) == Some(&b'{') {
            return at;
        }
    }
    bytes.len()
}

fn json_kind(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// serde_json's message without its own " at line L column C" suffix (we add ours).
fn describe(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// Streams the elements of a JSON array to the splitter; `null` counts as no records.
struct RecordsSeed<'s, 'v, 'a> {
    splitter: &'s mut Splitter<'v, 'a>,
}

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of CloudTrail records")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            self.splitter.emit(None, Ok(raw));
        }
        Ok(())
    }
}

/// Walks the envelope object: streams `Records`, ignores every other key.
struct EnvelopeVisitor<'s, 'v, 'a> {
    splitter: &'s mut Splitter<'v, 'a>,
}

impl<'de> Visitor<'de> for EnvelopeVisitor<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CloudTrail envelope object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "Records" {
                map.next_value_seed(RecordsSeed {
                    splitter: self.splitter,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

trait EnvelopeExt<'de> {
    fn deserialize_map_envelope(&mut self, splitter: &mut Splitter<'_, 'de>) -> Result<(), serde_json::Error>;
}

impl<'de> EnvelopeExt<'de> for serde_json::Deserializer<serde_json::de::StrRead<'de>> {
    fn deserialize_map_envelope(&mut self, splitter: &mut Splitter<'_, 'de>) -> Result<(), serde_json::Error> {
        de::Deserializer::deserialize_map(self, EnvelopeVisitor { splitter })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (shape, records as text or error, per-slot line)
    fn split(text: &str) -> (Result<Document, DocumentError>, Vec<String>) {
        let mut out = Vec::new();
        let result = for_each_record(text, &mut |slot| {
            let line = slot.line.map(|l| format!("@{l} ")).unwrap_or_default();
            out.push(match slot.raw {
                Ok(raw) => format!("{line}{}", raw.get()),
                Err(err) => format!("{line}ERR {err}"),
            });
        });
        (result, out)
    }

    #[test]
    fn envelope() {
        let (kind, records) = split(r#" { "Records" : [{"a":1}, {"b":2}], "x": 3 }"#);
        assert_eq!(kind, Ok(Document::Envelope));
        assert_eq!(records, [r#"{"a":1}"#, r#"{"b":2}"#]);
        let (kind, records) = split(r#"{"Records":null}"#);
        assert_eq!((kind, records.len()), (Ok(Document::Envelope), 0));
    }

    #[test]
    fn envelope_with_records_not_first() {
        let (kind, records) = split(r#"{"version":1,"Records":[{"a":1}]}"#);
        assert_eq!(kind, Ok(Document::Envelope));
        assert_eq!(records, [r#"{"a":1}"#]);
    }

    #[test]
    fn concatenated_envelopes() {
        let (kind, records) = split("{\"Records\":[{\"a\":1}]}\n{\"Records\":[{\"b\":2}]}\n");
        assert_eq!(kind, Ok(Document::Envelope));
        assert_eq!(records, [r#"{"a":1}"#, r#"{"b":2}"#]);
    }

    #[test]
    fn array_and_non_objects() {
        let (kind, records) = split(r#"[{"a":1}, 5, "s"]"#);
        assert_eq!(kind, Ok(Document::Array));
        assert_eq!(records[0], r#"{"a":1}"#);
        assert_eq!(records[1], "ERR record is a number, not an object");
        assert_eq!(records[2], "ERR record is a string, not an object");
    }

    #[test]
    fn ndjson_with_a_bad_line_keeps_going() {
        let text = "{\"eventName\":1}\n{\"b\":\n{\"eventName\":3}\n\n{\"eventName\":4}\n";
        let (kind, records) = split(text);
        assert_eq!(kind, Ok(Document::Lines));
        assert_eq!(records.len(), 4, "{records:?}");
        assert_eq!(records[0], "@1 {\"eventName\":1}");
        assert!(records[1].starts_with("@2 ERR"), "{records:?}");
        assert_eq!(records[2], "@3 {\"eventName\":3}");
        assert_eq!(records[3], "@5 {\"eventName\":4}");
    }

    #[test]
    fn single_record_and_digest() {
        let (kind, records) = split("{\n  \"eventName\": \"X\"\n}\n");
        assert_eq!(kind, Ok(Document::Single));
        assert_eq!(records.len(), 1);
        let (kind, records) = split(
            r#"{"awsAccountId":"1","digestStartTime":"t","digestEndTime":"t","digestS3Object":"k","logFiles":[]}"#,
        );
        assert_eq!((kind, records.len()), (Ok(Document::Digest), 0));
    }

    #[test]
    fn foreign_json() {
        let (kind, records) = split(r#"{"events": 3000, "files": 260}"#);
        assert_eq!((kind, records.len()), (Ok(Document::Other), 0));
        let (kind, records) = split("{\"eventName\":\"A\"}\n{\"other\":1}\n{\"eventName\":\"B\"}\n");
        assert_eq!(kind, Ok(Document::Lines));
        assert_eq!(records.len(), 3);
        assert!(records[1].starts_with("@2 ERR not a CloudTrail record"), "{records:?}");
        let (_, records) = split("{\"eventName\":\"A\"}\n{\"other\":1}\n");
        assert!(records[1].starts_with("@2 ERR not a CloudTrail record"), "{records:?}");
    }

    #[test]
    fn truncated_envelope_keeps_earlier_records() {
        let (kind, records) = split("{\"Records\":[{\"a\":1},\n{\"b\":2},\n{\"c\":");
        let err = kind.expect_err("truncated");
        assert_eq!(records, [r#"{"a":1}"#, r#"{"b":2}"#]);
        assert_eq!(err.records_before, 2);
        assert_eq!(err.line, 3);
    }

    #[test]
    fn garbage_and_empty() {
        assert_eq!(split("   \n").0, Ok(Document::Empty));
        let err = split("\n\nhello").0.expect_err("garbage");
        assert_eq!(err.line, 3);
        assert!(err.message.contains("not JSON"), "{err}");
        // A pretty-printed object broken in the middle is a document error, not a line flood.
        let err = split("{\n  \"a\": 1,\n  \"b\": }\n").0.expect_err("broken");
        assert_eq!(err.line, 3);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in ".{0,200}") {
            let _ = split(&text);
        }

        #[test]
        fn never_panics_on_json_like(text in "[\\[\\]{}\":,0-9a-zRecords \\n]{0,120}") {
            let _ = split(&text);
        }
    }
}
