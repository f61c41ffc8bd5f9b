//! Splitting a CloudTrail document into records.
//!
//! Accepted shapes: the delivery envelope `{"Records":[...]}`, a JSON array of records, NDJSON (one
//! record, or one envelope, per line), a single record, and digest files (recognised and skipped).
//! One validating pass over the text both splits it and reads each record's core fields (see
//! `scanner`). Records are handed out as the scan reaches them, so a syntax error late in a file
//! loses nothing read before it. In NDJSON a bad line is a record error and the scan resumes at
//! the next line that starts with `{`.

use crate::record::{CoreReader, Record, RecordError};
use crate::scanner::{Cursor, kind};

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

/// Hands every record in `text` to `visit`, in file order.
pub fn for_each_record<'a>(text: &'a str, visit: &mut dyn FnMut(RecordSlot<'a>)) -> Result<Document, DocumentError> {
    let mut splitter = Splitter {
        visit,
        index: 0,
        foreign: None,
        streaming: false,
    };
    // A UTF-8 byte order mark is no part of the JSON.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut cursor = Cursor::new(text);
    match cursor.peek() {
        None => Ok(Document::Empty),
        Some(b'[') => {
            let outcome = cursor.array(&mut |c| splitter.element(c, None));
            outcome.map_err(|err| splitter.document_error(text, &err))?;
            if cursor.at_end() {
                return Ok(Document::Array);
            }
            // More values follow: one array a line (`jq -c .Records` over delivered files),
            // read on as lines, as a stream of them is.
            splitter.values(text, &mut cursor).map(|_| Document::Lines)
        }
        Some(b'{') => splitter.values(text, &mut cursor),
        Some(_) => Err(DocumentError {
            message: format!(
                "not JSON: the document starts with {:?}",
                text[cursor.at()..].chars().next().unwrap_or_default()
            ),
            line: line_and_column(text, cursor.at()).0,
            column: 1,
            records_before: 0,
        }),
    }
}

struct Splitter<'v, 'a> {
    visit: &'v mut dyn FnMut(RecordSlot<'a>),
    index: usize,
    /// A line-oriented value that is not a CloudTrail record: an error if other values follow,
    /// the whole story if it is the only one.
    foreign: Option<usize>,
    /// Inside an envelope's `Records`: a syntax error there ends the file.
    streaming: bool,
}

impl<'a> Splitter<'_, 'a> {
    fn emit(&mut self, line: Option<usize>, record: Result<Record<'a>, RecordError>) {
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
        let (line, column) = line_and_column(text, at);
        DocumentError {
            message: format!("invalid JSON: {message}"),
            line,
            column,
            records_before: self.index,
        }
    }

    /// One element of a records array. A record counts its nesting from itself. An element
    /// that cannot be read (nested too deeply, a bad escape) is a record error, and the scan
    /// passes over it to the next one when its brackets balance; when they do not, the error
    /// ends the array. An element that is an envelope (`jq -s .` over delivered files makes an
    /// array of them) gives its records.
    fn element(&mut self, c: &mut Cursor<'a>, line: Option<usize>) -> Result<(), RecordError> {
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
        if let (Ok(None), Some(at)) = (&read, reader.records_at()) {
            // No CloudTrail record has a `Records` member: an envelope, read again from there
            // (the object was read whole, so its text is sound).
            c.set_depth(outer);
            let mut records = Cursor::new(c.text());
            records.seek(at);
            match records.peek() {
                Some(b'[') => records.array(&mut |c| self.element(c, None))?,
                Some(b'n') | None => {}
                Some(byte) => self.emit(line, Err(records_not_a_list(byte))),
            }
            return Ok(());
        }
        let record = match read {
            Ok(None) => reader.finish(c.text().get(start..c.at()).unwrap_or_default()),
            Ok(Some(not_an_object)) => Err(not_an_object),
            Err(err) if c.pass_over(start) => Err(err),
            Err(err) => return Err(err),
        };
        c.set_depth(outer);
        self.emit(line, record);
        Ok(())
    }

    /// Top-level values one after another: one envelope or record, or NDJSON.
    fn values(&mut self, text: &'a str, cursor: &mut Cursor<'a>) -> Result<Document, DocumentError> {
        let mut lines = LineCursor { pos: 0, line: 1 };
        let mut values = 0;
        let mut kinds = Vec::new();
        while !cursor.at_end() {
            let start = cursor.at();
            let line = lines.line_at(text, start);
            values += 1;
            match self.value(cursor, line) {
                Ok(kind) => kinds.push(kind),
                Err(err) => {
                    if self.streaming || (values == 1 && !looks_line_oriented(text)) {
                        return Err(self.document_error(text, &err));
                    }
                    self.flush_foreign();
                    self.emit(Some(line), Err(err));
                    cursor.seek(next_line_start(text, start));
                }
            }
        }
        if values > 1 {
            self.flush_foreign();
        }
        Ok(match kinds.as_slice() {
            [] if values == 0 => Document::Empty,
            [one] if values == 1 => *one,
            many if many.iter().all(|k| *k == Document::Envelope) && values == many.len() => Document::Envelope,
            _ => Document::Lines,
        })
    }

    /// One top-level value: an envelope, a digest, a record, or something else.
    fn value(&mut self, c: &mut Cursor<'a>, line: usize) -> Result<Document, RecordError> {
        let start = c.at();
        let Some(b'{') = c.peek() else {
            self.flush_foreign();
            if c.peek() == Some(b'[') {
                // An array of records on its own line (`jq -c .Records`).
                return c.array(&mut |c| self.element(c, None)).map(|()| Document::Array);
            }
            return self.element(c, Some(line)).map(|()| Document::Lines);
        };
        let mut reader = CoreReader::default();
        let mut envelope = false;
        let mut digest_keys = 0;
        c.object(&mut |c, key| match key {
            "Records" => {
                envelope = true;
                match c.peek() {
                    Some(b'[') => {
                        self.flush_foreign();
                        self.streaming = true;
                        c.array(&mut |c| self.element(c, None))?;
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
            "digestStartTime" | "digestS3Object" => {
                digest_keys += 1;
                c.skip()
            }
            _ => reader.member(c, key),
        })?;
        if envelope {
            Ok(Document::Envelope)
        } else if digest_keys == 2 {
            Ok(Document::Digest)
        } else if !reader.looks_like_an_event() {
            self.flush_foreign();
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
    text.trim_start()
        .split_once('\n')
        .is_some_and(|(_, rest)| rest.starts_with('{'))
}

/// Byte offset of the next line after `from` that starts with `{`, or the end.
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn garbage_and_empty() {
        assert_eq!(split("   \n").0, Ok(Document::Empty));
        let err = split("\n\nhello").0.expect_err("garbage");
        assert_eq!(err.line, 3);
        assert!(err.message.contains("not JSON"), "{err}");
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
