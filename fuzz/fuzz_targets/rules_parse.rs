//! A rule file's text through the Sigma loader (YAML documents, detections, conditions, modifiers,
//! regexes, correlations), optionally with a tests file after a `#~tests~` line. What loads is
//! compiled into a rule set, its tests are run, and it is evaluated on real records with the
//! correlation state saved and restored.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use trailhound_event::Record;
use trailhound_fuzz::sample_records;
use trailhound_rules::{Evaluator, RuleFile, RuleSet, parse_rules, testcase};

/// The line that separates a rule file from its tests file in an input.
const TESTS_MARK: &str = "\n#~tests~\n";

static RECORDS: LazyLock<Vec<Record<'static>>> = LazyLock::new(sample_records);

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (rules_text, tests) = match text.split_once(TESTS_MARK) {
        Some((rules, tests)) => (rules, Some(("fuzz.tests.yml".to_string(), tests.to_string()))),
        None => (&text[..], None),
    };
    let file = RuleFile {
        path: "fuzz.yml".to_string(),
        text: rules_text.to_string(),
        tests,
    };
    let (rules, errors) = parse_rules(&file);
    for error in &errors {
        let _ = error.to_string();
    }
    if rules.is_empty() {
        return;
    }
    let (set, _errors) = RuleSet::new(rules);
    for rule in set.rules() {
        let _ = rule.info();
        let _ = rule.techniques().count();
        let _ = testcase::run(&set, rule);
    }
    let mut evaluator = Evaluator::new(&set, true);
    for record in RECORDS.iter() {
        evaluator.observe(record, "fuzz");
    }
    let saved = evaluator.save();
    let mut again = Evaluator::new(&set, true);
    if let Err(err) = again.restore(&saved) {
        panic!("a saved correlation state does not restore: {err}");
    }
    if let Some(last) = RECORDS.iter().map(|r| r.time).max() {
        evaluator.advance(last);
    }
    let evaluated = evaluator.finish();
    for finding in &evaluated.findings {
        let _ = serde_json_len(finding);
    }
    let _ = again.finish();
});

fn serde_json_len(finding: &trailhound_finding::Finding) -> usize {
    format!("{finding:?}").len()
}
