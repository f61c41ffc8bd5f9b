//! A set of compiled rules, indexed by the eventName or eventSource each one requires.
//!
//! Most rules pin the eventName (`eventName: StopLogging`); some only the eventSource; a few
//! (root activity, user-agent rules) look at every record. A record is shown to the rules under
//! its eventName, under its eventSource, and to the catch-all list: nothing else.

use rustc_hash::FxHashMap as HashMap;

use trailhound_event::Record;

use crate::error::RuleError;
use crate::rule::Rule;

/// Compiled rules plus their index.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    by_name: HashMap<Box<str>, Vec<usize>>,
    by_source: HashMap<Box<str>, Vec<usize>>,
    always: Vec<usize>,
}

impl RuleSet {
    /// Builds the set. A rule whose id is already taken is left out and reported.
    pub fn new(rules: Vec<Rule>) -> (RuleSet, Vec<RuleError>) {
        let mut set = RuleSet::default();
        let mut errors = Vec::new();
        for rule in rules {
            if let Some(first) = set.rules.iter().find(|r| r.id == rule.id) {
                errors.push(RuleError {
                    file: rule.file.clone(),
                    rule: Some(rule.id.clone()),
                    line: None,
                    message: format!("duplicate rule id; already loaded from {}", first.file),
                });
                continue;
            }
            let index = set.rules.len();
            if let Some(names) = rule.detection.required("eventName") {
                for name in names {
                    set.by_name.entry(name.into()).or_default().push(index);
                }
            } else if let Some(sources) = rule.detection.required("eventSource") {
                for source in sources {
                    set.by_source.entry(source.into()).or_default().push(index);
                }
            } else {
                set.always.push(index);
            }
            set.rules.push(rule);
        }
        (set, errors)
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// How many rules look at every record (they defeat the index).
    pub fn unindexed(&self) -> usize {
        self.always.len()
    }

    /// Calls `hit` for every rule matching `record`. `scratch` is a reusable buffer.
    pub fn matches<'s>(&'s self, record: &Record<'_>, scratch: &mut String, hit: &mut dyn FnMut(&'s Rule)) {
        let by_name = lookup(&self.by_name, &record.event_name, scratch);
        let by_source = lookup(&self.by_source, &record.event_source, scratch);
        for &index in by_name.iter().chain(by_source).chain(&self.always) {
            let rule = &self.rules[index];
            if rule.matches(record) {
                hit(rule);
            }
        }
    }
}

fn lookup<'m>(map: &'m HashMap<Box<str>, Vec<usize>>, key: &str, scratch: &mut String) -> &'m [usize] {
    if map.is_empty() {
        return &[];
    }
    scratch.clear();
    scratch.extend(key.chars().flat_map(char::to_lowercase));
    map.get(scratch.as_str()).map_or(&[], Vec::as_slice)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{RuleFile, parse_rules};

    fn rule(name: &str, detection: &str) -> Rule {
        let text = format!("title: {name}\nname: {name}\nlogsource: {{product: aws}}\ndetection:\n{detection}");
        let (mut rules, errors) = parse_rules(&RuleFile {
            path: format!("{name}.yml"),
            text,
            tests: None,
        });
        assert!(errors.is_empty(), "{errors:?}");
        rules.remove(0)
    }

    #[test]
    fn routes_records_to_indexed_rules() {
        let rules = vec![
            rule("by-name", "  s: {eventName: StopLogging}\n  condition: s"),
            rule("by-source", "  s: {eventSource: iam.amazonaws.com}\n  condition: s"),
            rule("always", "  s: {userIdentity.type: Root}\n  condition: s"),
            rule("by-name", "  s: {eventName: X}\n  condition: s"),
        ];
        let (set, errors) = RuleSet::new(rules);
        assert_eq!(errors.len(), 1, "duplicate id reported");
        assert_eq!((set.len(), set.unindexed()), (3, 1));
        let mut scratch = String::new();
        let mut hits = |json: &str| {
            let record = Record::parse(json).expect("record");
            let mut found = Vec::new();
            set.matches(&record, &mut scratch, &mut |r| found.push(r.id.clone()));
            found
        };
        assert_eq!(
            hits(
                r#"{"eventTime":"2024-01-01T00:00:00Z","eventName":"stoplogging","eventSource":"cloudtrail.amazonaws.com","userIdentity":{"type":"Root"}}"#
            ),
            ["by-name", "always"]
        );
        assert_eq!(
            hits(
                r#"{"eventTime":"2024-01-01T00:00:00Z","eventName":"ListUsers","eventSource":"iam.amazonaws.com","userIdentity":{"type":"IAMUser"}}"#
            ),
            ["by-source"]
        );
    }
}
