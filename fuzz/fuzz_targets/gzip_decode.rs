//! A `.gz` log object's bytes through the source crate's decode path (libdeflate sized by a
//! plausible trailer, else flate2 growing as data arrives, multi-member and truncated streams),
//! never producing more than the size limit; the text is then split into records. The same bytes
//! are scanned as a gzip stream on stdin.

#![no_main]

use libfuzzer_sys::fuzz_target;
use trailhound_fuzz::{LIMIT, look_up, scan_as_stream};
use trailhound_source::decode;

fuzz_target!(|data: &[u8]| {
    // Every input is a gzip stream: the magic is added when the mutator lost it.
    let owned;
    let data = if data.starts_with(&[0x1f, 0x8b]) {
        data
    } else {
        owned = [&[0x1f, 0x8b][..], data].concat();
        &owned[..]
    };
    let mut scratch = Vec::new();
    if let Ok(decoded) = decode(data, &mut scratch, LIMIT) {
        assert!(decoded.compressed);
        assert!(decoded.bytes <= LIMIT, "inflated {} bytes past the limit", decoded.bytes);
        let _ = trailhound_event::for_each_record(&decoded.text, &mut |slot| {
            if let Ok(record) = slot.record {
                look_up(&record);
            }
        });
    }
    scan_as_stream(data);
});
