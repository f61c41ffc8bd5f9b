//! Rule test events: the `.tests.yml` file beside a rule, and running them.
//!
//! A test gives a partial CloudTrail record and whether the rule must match it. The partial
//! record is deep-merged over [`default_record`] so tests only spell out what matters.

use serde::Deserialize;
use trailhound_event::Record;

use crate::rule::Rule;

/// One test event.
#[derive(Debug, Clone, Deserialize)]
pub struct TestCase {
    pub name: String,
    /// Whether the rule must fire.
    #[serde(rename = "match")]
    pub expect: bool,
    /// The partial record.
    pub event: serde_json::Value,
}

/// Parses a tests file: a YAML list of `{name, match, event}`.
pub fn parse(text: &str) -> Result<Vec<TestCase>, String> {
    let cases: Vec<TestCase> = serde_yaml_ng::from_str(text).map_err(|err| format!("invalid test file: {err}"))?;
    if let Some(bad) = cases.iter().find(|c| !c.event.is_object()) {
        return Err(format!("test {:?}: event must be a map", bad.name));
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
    /// The full record this test feeds the rule.
    pub fn record_json(&self, rule_id: &str, index: usize) -> String {
        let mut record = default_record();
        if let serde_json::Value::Object(map) = &mut record {
            map.insert("eventID".into(), format!("test-{rule_id}-{index}").into());
        }
        merge(&mut record, &self.event);
        record.to_string()
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

/// Runs every test of `rule`.
pub fn run(rule: &Rule) -> Vec<Outcome> {
    rule.tests
        .iter()
        .enumerate()
        .map(|(index, case)| {
            let json = case.record_json(&rule.id, index);
            let result = Record::parse(&json)
                .map(|record| rule.matches(&record))
                .map_err(|e| e.to_string());
            Outcome {
                name: case.name.clone(),
                expect: case.expect,
                result,
            }
        })
        .collect()
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
        assert!(parse("nope").is_err());
    }
}
