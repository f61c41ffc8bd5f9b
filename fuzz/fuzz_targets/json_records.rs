//! A log file's bytes, read as the source crate reads a plain (not gzip) file: decoded (byte order
//! marks, UTF-16 refused, invalid UTF-8 repaired), split into records by the JSON scanner
//! (`{"Records":[...]}` envelopes, arrays, NDJSON, single records), each record's fields looked up
//! as rules look them up. The same bytes are then scanned as a stream, as stdin is.

#![no_main]

use libfuzzer_sys::fuzz_target;
use trailhound_fuzz::{LIMIT, look_up, scan_as_stream};
use trailhound_source::decode;

fuzz_target!(|data: &[u8]| {
    // The plain path: a gzip stream is gzip_decode's.
    if data.starts_with(&[0x1f, 0x8b]) {
        return;
    }
    let mut scratch = Vec::new();
    if let Ok(decoded) = decode(data, &mut scratch, LIMIT) {
        assert!(decoded.bytes <= LIMIT);
        let _ = trailhound_event::for_each_record(&decoded.text, &mut |slot| {
            if let Ok(record) = slot.record {
                look_up(&record);
                // A record's text, as the scanner handed it out, parses again on its own.
                let again = trailhound_event::Record::parse(record.raw());
                assert!(again.is_ok(), "a record the scanner read does not parse alone: {again:?}");
            }
        });
        // Each line on its own, as an NDJSON line or a `--where` record would be read.
        for line in decoded.text.lines().take(64) {
            if let Ok(record) = trailhound_event::Record::parse(line) {
                look_up(&record);
            }
        }
    }
    scan_as_stream(data);
});
