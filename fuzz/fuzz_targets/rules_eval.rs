//! The built-in rule pack evaluated on a fuzzed log file: every record the scanner reads goes
//! through the rule index, detections (field paths, modifiers, regexes, CIDRs, numbers) and
//! correlation state, which is then swept, saved and restored.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use trailhound_fuzz::LIMIT;
use trailhound_rules::{Evaluator, RuleSet, builtin_rules};
use trailhound_source::decode;

static BUILTIN: LazyLock<RuleSet> = LazyLock::new(|| {
    let (rules, errors) = builtin_rules();
    assert!(errors.is_empty(), "the built-in pack has errors: {errors:?}");
    RuleSet::new(rules).0
});

fuzz_target!(|data: &[u8]| {
    let mut scratch = Vec::new();
    let Ok(decoded) = decode(data, &mut scratch, LIMIT) else {
        return;
    };
    let mut evaluator = Evaluator::new(&BUILTIN, true);
    let mut latest = None;
    let _ = trailhound_event::for_each_record(&decoded.text, &mut |slot| {
        if let Ok(record) = slot.record {
            evaluator.observe(&record, "fuzz");
            latest = latest.max(Some(record.time));
        }
    });
    let saved = evaluator.save();
    let mut again = Evaluator::new(&BUILTIN, true);
    if let Err(err) = again.restore(&saved) {
        panic!("a saved correlation state does not restore: {err}");
    }
    if let Some(latest) = latest {
        evaluator.advance(latest);
    }
    let _ = evaluator.finish();
    let _ = again.finish();
});
