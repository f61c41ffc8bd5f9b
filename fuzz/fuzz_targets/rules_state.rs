//! A saved correlation state (the store's, or the Lambda's `correlations.json`, which a later run
//! reads back and which may be damaged) restored into an evaluator of the built-in pack; what
//! restores goes on observing real records, is saved and restored again, swept and finished.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use trailhound_event::Record;
use trailhound_fuzz::sample_records;
use trailhound_rules::{Evaluator, RuleSet, builtin_rules};

static BUILTIN: LazyLock<RuleSet> = LazyLock::new(|| RuleSet::new(builtin_rules().0).0);
static RECORDS: LazyLock<Vec<Record<'static>>> = LazyLock::new(sample_records);

fuzz_target!(|data: &[u8]| {
    let mut evaluator = Evaluator::new(&BUILTIN, false);
    if evaluator.restore(data).is_err() {
        return;
    }
    let _ = (evaluator.held(), evaluator.held_bytes());
    for record in RECORDS.iter().take(16) {
        evaluator.observe(record, "fuzz");
    }
    let saved = evaluator.save();
    let mut again = Evaluator::new(&BUILTIN, false);
    if let Err(err) = again.restore(&saved) {
        panic!("a state saved after a restore does not restore: {err}");
    }
    if let Some(latest) = RECORDS.iter().map(|r| r.time).max() {
        evaluator.advance(latest);
    }
    let _ = evaluator.finish();
    let _ = again.finish();
});
