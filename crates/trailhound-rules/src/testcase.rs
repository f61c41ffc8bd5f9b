//! Rule test events: the `.tests.yml` file beside a rule, and running them.
//!
//! A test gives a partial CloudTrail record and whether the rule must match it. The partial
//! record is deep-merged over [`default_record`] so tests only spell out what matters.

use serde::Deserialize;
use trailhound_event::Record;

use crate::correlation::CorrelationState;
use crate::rule::Rule;
use crate::ruleset::{Hit, RuleSet};

/// One test: an event (for detection rules) or a sequence of events (for correlations).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    pub name: String,
    /// Whether the rule must fire.
    #[serde(rename = "match")]
    pub expect: bool,
    /// The partial record.
    #[serde(default)]
    pub event: serde_json::Value,
    /// Partial records, in any order (correlation tests).
    #[serde(default)]
    pub events: Vec<serde_json::Value>,
}

/// Parses a tests file: a YAML list of `{name, match, event}` or `{name, match, events: [...]}`.
pub fn parse(text: &str) -> Result<Vec<TestCase>, String> {
    if let Some(line) = trailhound_event::flow_nesting_beyond(text, crate::load::MAX_YAML_DEPTH) {
        return Err(format!(
            "invalid test file: line {line}: nested deeper than {} levels",
            crate::load::MAX_YAML_DEPTH
        ));
    }
    let cases: Vec<TestCase> = serde_yaml_ng::from_str(text).map_err(|err| format!("invalid test file: {err}"))?;
    for case in &cases {
        let events = if case.events.is_empty() {
            std::slice::from_ref(&case.event)
        } else {
            &case.events[..]
        };
        if !case.event.is_null() && !case.events.is_empty() {
            return Err(format!("test {:?}: give event or events, not both", case.name));
        }
        if events.iter().any(|e| !e.is_object()) {
            return Err(format!("test {:?}: each event must be a map", case.name));
        }
    }
    Ok(cases)
}

/// The record every test event is merged over.
pub fn default_record() -> serde_json::Value {
    serde_json::json!({
        "eventVersion": "1.09",
        "eventTime": "2024-03-01T12:00:00Z",
        "eventType": "AwsApiCall",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64",
        "recipientAccountId": "111122223333",
        "readOnly": false,
        "managementEvent": true,
        "eventCategory": "Management",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLEPRINCIPAL",
            "arn": "arn:aws:iam::111122223333:user/alice",
            "accountId": "111122223333",
            "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
            "userName": "alice"
        },
        "requestParameters": null,
        "responseElements": null
    })
}

/// Deep-merges `patch` into `base`: maps merge key by key, anything else replaces.
pub fn merge(base: &mut serde_json::Value, patch: &serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(base), serde_json::Value::Object(patch)) => {
            for (key, value) in patch {
                match base.get_mut(key) {
                    Some(slot) if value.is_object() && slot.is_object() => merge(slot, value),
                    _ => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, patch) => *base = patch.clone(),
    }
}

impl TestCase {
    /// The full record this test feeds the rule (the first, for sequences).
    pub fn record_json(&self, rule_id: &str, index: usize) -> String {
        self.records_json(rule_id, index).into_iter().next().unwrap_or_default()
    }

    /// The full records this test feeds the rule.
    pub fn records_json(&self, rule_id: &str, index: usize) -> Vec<String> {
        let events = if self.events.is_empty() {
            std::slice::from_ref(&self.event)
        } else {
            &self.events[..]
        };
        events
            .iter()
            .enumerate()
            .map(|(n, event)| {
                let mut record = default_record();
                if let serde_json::Value::Object(map) = &mut record {
                    map.insert("eventID".into(), format!("test-{rule_id}-{index}-{n}").into());
                }
                merge(&mut record, event);
                record.to_string()
            })
            .collect()
    }
}

/// How one test went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub name: String,
    pub expect: bool,
    /// Whether the rule matched; `Err` when the event is not a valid record.
    pub result: Result<bool, String>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.result.as_ref().is_ok_and(|matched| *matched == self.expect)
    }
}

/// Runs every test of `rule`, a member of `set` (correlations need the rules they refer to).
pub fn run(set: &RuleSet, rule: &Rule) -> Vec<Outcome> {
    rule.tests
        .iter()
        .enumerate()
        .map(|(index, case)| Outcome {
            name: case.name.clone(),
            expect: case.expect,
            result: fires(set, rule, &case.records_json(&rule.id, index)),
        })
        .collect()
}

/// Whether `rule` fires on `records` (full JSON texts). A detection rule is tested on its own
/// (even one that only feeds correlations); a correlation through the whole set.
fn fires(set: &RuleSet, rule: &Rule, records: &[String]) -> Result<bool, String> {
    let mut parsed = Vec::with_capacity(records.len());
    for (n, json) in records.iter().enumerate() {
        let record = Record::parse(json).map_err(|e| {
            if records.len() > 1 {
                format!("event {n}: {e}")
            } else {
                e.to_string()
            }
        })?;
        parsed.push(record);
    }
    if !rule.is_correlation() {
        return Ok(parsed.iter().any(|record| rule.matches(record)));
    }
    let mut state = CorrelationState::default();
    let mut scratch = String::new();
    for record in &parsed {
        set.matches(record, &mut scratch, &mut |hit| {
            if let Hit::Correlation { index, part } = hit {
                set.collect(&mut state, index, part, record, "test");
            }
        });
    }
    Ok(set.evaluate(state).iter().any(|f| f.rule_id == rule.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_is_deep_for_maps_only() {
        let mut base = serde_json::json!({"a": {"b": 1, "c": 2}, "l": [1, 2], "n": 1});
        merge(&mut base, &serde_json::json!({"a": {"c": 3}, "l": [9], "n": null}));
        assert_eq!(base, serde_json::json!({"a": {"b": 1, "c": 3}, "l": [9], "n": null}));
    }

    #[test]
    fn parse_rejects_bad_files() {
        assert!(parse("- name: x\n  match: true\n  event: {eventName: A}\n").is_ok());
        assert!(
            parse("- name: x\n  event: {eventName: A}\n").is_err(),
            "match is required"
        );
        assert!(parse("- name: x\n  match: true\n  event: [1]\n").is_err());
        assert!(parse("- name: x\n  match: true\n  events: [{eventName: A}, {eventName: B}]\n").is_ok());
        assert!(parse("- name: x\n  match: true\n  event: {eventName: A}\n  events: [{eventName: B}]\n").is_err());
        assert!(
            parse("- name: x\n  match: true\n  evnt: {eventName: A}\n").is_err(),
            "typos are caught"
        );
        assert!(parse("nope").is_err());
    }
}
