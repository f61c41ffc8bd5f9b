//! `events --where` conditions: the first line of an input is a condition (`FIELD=VALUE`,
//! `FIELD!=VALUE`, `FIELD~GLOB`, `FIELD>=N`, ...), the rest a log file whose records it is tested
//! on, as the `events` command does. Globs are also matched against the condition's own text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use trailhound_event::query::{Condition, glob};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (condition, document) = text.split_once('\n').unwrap_or((&text, ""));
    let parsed = Condition::parse(condition);
    let Ok(condition_parsed) = parsed else {
        return;
    };
    let _ = glob(condition, document);
    let _ = trailhound_event::for_each_record(document, &mut |slot| {
        if let Ok(record) = slot.record {
            let _ = condition_parsed.matches(&record);
        }
    });
});
