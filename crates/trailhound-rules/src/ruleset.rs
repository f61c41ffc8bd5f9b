//! A set of compiled rules, indexed by the eventName or eventSource each detection requires, with
//! correlations wired to the detections they count.
//!
//! Most detections pin the eventName (`eventName: StopLogging`); some only the eventSource; a few
//! (root activity, user-agent rules) look at every record. A record is shown to the detections
//! under its eventName, under its eventSource, and to the catch-all list: nothing else. A detection
//! that a correlation refers to feeds that correlation's state when it matches, and reports its own
//! findings only if the correlation says `generate: true`.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap as HashMap;
use trailhound_event::{FieldPath, Record};

use std::sync::Arc;

use crate::correlation::{Budget, Correlation, CorrelationState, Resolved};
use crate::detection::Detection;
use crate::error::RuleError;
use crate::rule::{Body, Rule};
use trailhound_finding::Finding;

/// One detection the index can send records to.
#[derive(Debug)]
struct Target {
    /// The rule it belongs to.
    rule: usize,
    /// Which of the rule's detections (legacy aggregations have one per part).
    part: usize,
    /// Whether a match is a finding of the rule itself.
    generate: bool,
    /// Correlations fed by a match: (correlation, position among its rules).
    feeds: Vec<(usize, usize)>,
}

/// What a record matched.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Hit<'s> {
    /// A detection rule matched: a finding.
    Rule(&'s Rule),
    /// A detection feeding correlation `index` (at position `part`) matched.
    Correlation { index: usize, part: usize },
}

/// Compiled rules plus their index.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    targets: Vec<Target>,
    correlations: Vec<Resolved>,
    by_name: HashMap<Box<str>, Vec<usize>>,
    by_source: HashMap<Box<str>, Vec<usize>>,
    always: Vec<usize>,
    /// The memory bound every evaluator over this set shares for correlation state.
    budget: Arc<Budget>,
}

impl RuleSet {
    /// Builds the set. A rule whose id is taken, or a correlation whose references cannot be
    /// resolved, is left out and reported.
    pub fn new(rules: Vec<Rule>) -> (RuleSet, Vec<RuleError>) {
        let mut set = RuleSet::default();
        let mut errors = Vec::new();
        for rule in rules {
            if let Some(first) = set.rules.iter().find(|r| r.id == rule.id) {
                errors.push(error(
                    &rule,
                    format!("duplicate rule id; already loaded from {}", first.file),
                ));
                continue;
            }
            set.rules.push(rule);
        }
        // Detections first, so correlations can find them by id.
        let mut by_rule: HashMap<usize, usize> = HashMap::default();
        for index in 0..set.rules.len() {
            match &set.rules[index].body {
                Body::Detection(_) => {
                    by_rule.insert(index, set.targets.len());
                    set.targets.push(Target {
                        rule: index,
                        part: 0,
                        generate: true,
                        feeds: Vec::new(),
                    });
                }
                Body::Aggregation { parts, correlation } => {
                    let correlation_index = set.correlations.len();
                    let paths: Vec<FieldPath> = correlation.group_by.iter().map(|f| FieldPath::new(f)).collect();
                    let value = correlation.field.as_deref().map(FieldPath::new);
                    set.correlations.push(Resolved {
                        rule: index,
                        kind: correlation.kind,
                        timespan: correlation.timespan,
                        condition: correlation.condition,
                        parts: parts.len(),
                        group_names: correlation.group_by.clone(),
                        group_paths: vec![paths; parts.len()],
                        value_paths: vec![value; parts.len()],
                    });
                    for part in 0..parts.len() {
                        set.targets.push(Target {
                            rule: index,
                            part,
                            generate: false,
                            feeds: vec![(correlation_index, part)],
                        });
                    }
                }
                Body::Correlation(_) => {}
            }
        }
        let mut dropped = BTreeSet::new();
        for index in 0..set.rules.len() {
            let Body::Correlation(correlation) = &set.rules[index].body else {
                continue;
            };
            match set.resolve(index, correlation, &by_rule) {
                Ok((resolved, targets)) => {
                    let correlation_index = set.correlations.len();
                    let generate = correlation.generate;
                    set.correlations.push(resolved);
                    for (position, target) in targets.into_iter().enumerate() {
                        let target = &mut set.targets[target];
                        target.feeds.push((correlation_index, position));
                        // Referenced rules report their own matches only when asked to.
                        if target.feeds.len() == 1 {
                            target.generate = generate;
                        } else {
                            target.generate |= generate;
                        }
                    }
                }
                Err(message) => {
                    errors.push(error(&set.rules[index], message));
                    dropped.insert(index);
                }
            }
        }
        for (target_index, target) in set.targets.iter().enumerate() {
            let Some(detection) = detection_of(&set.rules[target.rule], target.part) else {
                continue;
            };
            if let Some(names) = detection.required("eventName") {
                for name in names {
                    set.by_name.entry(name.into()).or_default().push(target_index);
                }
            } else if let Some(sources) = detection.required("eventSource") {
                for source in sources {
                    set.by_source.entry(source.into()).or_default().push(target_index);
                }
            } else {
                set.always.push(target_index);
            }
        }
        if !dropped.is_empty() {
            // Keep indices stable: a dropped correlation stays listed but never fires. Remove it
            // from the listing instead by rebuilding without it.
            let kept: Vec<Rule> = set
                .rules
                .into_iter()
                .enumerate()
                .filter(|(i, _)| !dropped.contains(i))
                .map(|(_, r)| r)
                .collect();
            let (rebuilt, more) = RuleSet::new(kept);
            errors.extend(more);
            return (rebuilt, errors);
        }
        (set, errors)
    }

    /// Finds the detections a correlation refers to and the paths of its group-by fields.
    fn resolve(
        &self,
        index: usize,
        correlation: &Correlation,
        by_rule: &HashMap<usize, usize>,
    ) -> Result<(Resolved, Vec<usize>), String> {
        let mut targets = Vec::new();
        let mut group_paths = Vec::new();
        let mut value_paths = Vec::new();
        for reference in &correlation.rules {
            let Some(found) = self
                .rules
                .iter()
                .position(|r| r.id == *reference || r.uuid.as_deref() == Some(reference.as_str()))
            else {
                return Err(format!("correlation refers to rule {reference:?}, which is not loaded"));
            };
            let Some(&target) = by_rule.get(&found) else {
                return Err(format!(
                    "correlation refers to {reference:?}, which is not a detection rule (chained correlations are not supported)"
                ));
            };
            targets.push(target);
            let path_of = |name: &str| -> Result<FieldPath, String> {
                match correlation.aliases.get(name) {
                    Some(per_rule) => {
                        let rule = &self.rules[found];
                        let field = per_rule
                            .get(reference)
                            .or_else(|| per_rule.get(&rule.id))
                            .or_else(|| rule.uuid.as_ref().and_then(|u| per_rule.get(u)))
                            .ok_or_else(|| format!("alias {name:?} names no field for rule {reference:?}"))?;
                        Ok(FieldPath::new(field))
                    }
                    None => Ok(FieldPath::new(name)),
                }
            };
            group_paths.push(
                correlation
                    .group_by
                    .iter()
                    .map(|name| path_of(name))
                    .collect::<Result<Vec<_>, _>>()?,
            );
            value_paths.push(correlation.field.as_deref().map(path_of).transpose()?);
        }
        let resolved = Resolved {
            rule: index,
            kind: correlation.kind,
            timespan: correlation.timespan,
            condition: correlation.condition,
            parts: targets.len(),
            group_names: correlation.group_by.clone(),
            group_paths,
            value_paths,
        };
        Ok((resolved, targets))
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

    /// How many detections look at every record (they defeat the index).
    pub fn unindexed(&self) -> usize {
        self.always.len()
    }

    /// Calls `found` for every detection rule (not correlation) that reports `record` as a
    /// finding of its own. For callers that mark records, not hunts (see [`crate::Evaluator`]).
    pub fn detections<'s>(&'s self, record: &Record<'_>, scratch: &mut String, found: &mut dyn FnMut(&'s Rule)) {
        self.matches(record, scratch, &mut |hit| {
            if let Hit::Rule(rule) = hit {
                found(rule);
            }
        });
    }

    /// The rule id of each correlation, by its index in the set.
    pub(crate) fn correlation_ids(&self) -> Vec<&str> {
        self.correlations
            .iter()
            .map(|c| self.rules.get(c.rule).map_or("", |r| r.id.as_str()))
            .collect()
    }

    /// The memory bound of correlation state, shared by every evaluator over this set (scan
    /// workers and the one they merge into): [`crate::DEFAULT_CORRELATION_MEMORY`] unless set.
    pub fn correlation_budget(&self) -> &Budget {
        &self.budget
    }

    /// Bounds the memory all evaluators over this set may hold for correlations, in bytes (at
    /// least [`crate::MIN_CORRELATION_MEMORY`]). Past it, each evaluator forgets its oldest
    /// groups and counts the matches lost (see [`crate::Evaluated::dropped`]).
    pub fn set_correlation_memory(&self, bytes: usize) {
        self.budget.set_limit(bytes);
    }

    pub(crate) fn budget(&self) -> Arc<Budget> {
        self.budget.clone()
    }

    /// How many correlations the set runs.
    pub fn correlations(&self) -> usize {
        self.correlations.len()
    }

    /// Calls `hit` for every detection matching `record`. `scratch` is a reusable buffer.
    pub(crate) fn matches<'s>(&'s self, record: &Record<'_>, scratch: &mut String, hit: &mut dyn FnMut(Hit<'s>)) {
        let by_name = lookup(&self.by_name, &record.event_name, scratch);
        let by_source = lookup(&self.by_source, &record.event_source, scratch);
        for &index in by_name.iter().chain(by_source).chain(&self.always) {
            let target = &self.targets[index];
            let rule = &self.rules[target.rule];
            if !detection_of(rule, target.part).is_some_and(|d| d.matches(record)) {
                continue;
            }
            if target.generate {
                hit(Hit::Rule(rule));
            }
            for &(index, part) in &target.feeds {
                hit(Hit::Correlation { index, part });
            }
        }
    }

    /// Keeps a correlation hit in `state`; returns false once the state is full. Correlation
    /// findings carry the fields of the event that completed their window, not the record.
    pub(crate) fn collect(
        &self,
        state: &mut CorrelationState,
        index: usize,
        part: usize,
        record: &Record<'_>,
        source: &str,
    ) -> bool {
        let Some(resolved) = self.correlations.get(index) else {
            return true;
        };
        state.add(index, resolved, part, record, source)
    }

    /// The findings of windows that closed before `watermark`, when every event before it has
    /// been seen; memory held for older matches is released.
    pub(crate) fn advance(
        &self,
        state: &mut CorrelationState,
        watermark: chrono::DateTime<chrono::Utc>,
    ) -> Vec<Finding> {
        state.advance(watermark, &self.correlations, &self.rules)
    }

    /// The findings of every correlation, once all records have been seen.
    pub(crate) fn evaluate(&self, state: CorrelationState) -> Vec<Finding> {
        state.evaluate(&self.correlations, &self.rules)
    }
}

fn detection_of(rule: &Rule, part: usize) -> Option<&Detection> {
    match &rule.body {
        Body::Detection(detection) => Some(detection),
        Body::Aggregation { parts, .. } => parts.get(part),
        Body::Correlation(_) => None,
    }
}

fn error(rule: &Rule, message: String) -> RuleError {
    RuleError {
        file: rule.file.clone(),
        rule: Some(rule.id.clone()),
        line: None,
        message,
    }
}

fn lookup<'m>(map: &'m HashMap<Box<str>, Vec<usize>>, key: &str, scratch: &mut String) -> &'m [usize] {
    if map.is_empty() {
        return &[];
    }
    scratch.clear();
    if key.is_ascii() {
        // Event names and sources are ASCII: skip the per-char Unicode lowering.
        scratch.push_str(key);
        scratch.make_ascii_lowercase();
    } else {
        scratch.extend(key.chars().flat_map(char::to_lowercase));
    }
    map.get(scratch.as_str()).map_or(&[], Vec::as_slice)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{RuleFile, parse_rules};

    fn rules(text: &str) -> Vec<Rule> {
        let (rules, errors) = parse_rules(&RuleFile {
            path: "r.yml".into(),
            text: text.into(),
            tests: None,
        });
        assert!(errors.is_empty(), "{errors:?}");
        rules
    }

    fn rule(name: &str, detection: &str) -> Vec<Rule> {
        rules(&format!(
            "title: {name}\nname: {name}\nlogsource: {{product: aws}}\ndetection:\n{detection}"
        ))
    }

    fn record(name: &str, source: &str, time: &str, extra: &str) -> String {
        format!(
            r#"{{"eventTime":"{time}","eventName":"{name}","eventSource":"{source}","eventID":"{name}-{time}","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/u"}}{extra}}}"#
        )
    }

    /// Runs records through the set: (rule ids of findings, correlation findings' rule ids).
    fn run(set: &RuleSet, records: &[String]) -> (Vec<String>, Vec<String>) {
        let mut direct = Vec::new();
        let mut state = CorrelationState::default();
        let mut scratch = String::new();
        for json in records {
            let record = Record::parse(json).expect("record");
            set.matches(&record, &mut scratch, &mut |hit| match hit {
                Hit::Rule(rule) => direct.push(rule.id.clone()),
                Hit::Correlation { index, part } => {
                    set.collect(&mut state, index, part, &record, "test");
                }
            });
        }
        let correlated = set.evaluate(state).into_iter().map(|f| f.rule_id).collect();
        (direct, correlated)
    }

    #[test]
    fn routes_records_to_indexed_rules() {
        let mut all = rule("by-name", "  s: {eventName: StopLogging}\n  condition: s");
        all.extend(rule(
            "by-source",
            "  s: {eventSource: iam.amazonaws.com}\n  condition: s",
        ));
        all.extend(rule("always", "  s: {userIdentity.type: IAMUser}\n  condition: s"));
        all.extend(rule("by-name", "  s: {eventName: X}\n  condition: s"));
        let (set, errors) = RuleSet::new(all);
        assert_eq!(errors.len(), 1, "duplicate id reported");
        assert_eq!((set.len(), set.unindexed()), (3, 1));
        let stop = record("stoplogging", "cloudtrail.amazonaws.com", "2024-01-01T00:00:00Z", "");
        assert_eq!(run(&set, &[stop]).0, ["by-name", "always"]);
        let list = record("ListUsers", "iam.amazonaws.com", "2024-01-01T00:00:00Z", "");
        assert_eq!(run(&set, &[list]).0, ["by-source", "always"]);
    }

    const FAILED_LOGIN: &str = "title: f\nname: failed-login\nlogsource: {product: aws}\ndetection:\n  s: {eventName: ConsoleLogin, errorMessage: Failed authentication}\n  condition: s\n";

    fn failed(time: &str, ip: &str) -> String {
        record(
            "ConsoleLogin",
            "signin.amazonaws.com",
            time,
            &format!(r#","errorMessage":"Failed authentication","sourceIPAddress":"{ip}""#),
        )
    }

    #[test]
    fn event_count_fires_once_per_burst_whatever_the_order() {
        let text = format!(
            "{FAILED_LOGIN}---\ntitle: burst\nname: burst\ncorrelation:\n  type: event_count\n  rules: [failed-login]\n  group-by: [sourceIPAddress]\n  timespan: 10m\n  condition: {{gte: 3}}\n"
        );
        let (set, errors) = RuleSet::new(rules(&text));
        assert!(errors.is_empty(), "{errors:?}");
        let mut records = vec![
            failed("2024-01-01T00:00:00Z", "203.0.113.1"),
            failed("2024-01-01T00:04:00Z", "203.0.113.1"),
            failed("2024-01-01T00:09:00Z", "203.0.113.1"),
            failed("2024-01-01T00:09:30Z", "203.0.113.1"),
            failed("2024-01-01T00:01:00Z", "198.51.100.9"),
            failed("2024-01-01T00:02:00Z", "198.51.100.9"),
            failed("2024-01-01T05:00:00Z", "198.51.100.9"),
        ];
        let (direct, correlated) = run(&set, &records);
        assert!(
            direct.is_empty(),
            "referenced rules do not report on their own: {direct:?}"
        );
        assert_eq!(
            correlated,
            ["burst"],
            "one burst from one address; the other never reaches 3 in 10 minutes"
        );
        records.reverse();
        assert_eq!(run(&set, &records).1, ["burst"], "arrival order does not matter");
    }

    #[test]
    fn sweeping_as_time_moves_on_finds_the_same_and_forgets_the_past() {
        let text = format!(
            "{FAILED_LOGIN}---\ntitle: burst\nname: burst\ncorrelation:\n  type: event_count\n  rules: [failed-login]\n  group-by: [sourceIPAddress]\n  timespan: 10m\n  condition: {{gte: 3}}\n"
        );
        let (set, _) = RuleSet::new(rules(&text));
        let hour = |h: u32| (0..4).map(move |m| failed(&format!("2024-01-01T{h:02}:0{m}:00Z"), "203.0.113.1"));
        let records: Vec<String> = (0..6).flat_map(hour).collect();
        let all_at_once = run(&set, &records).1;
        assert_eq!(all_at_once.len(), 6, "one burst an hour");
        let mut state = CorrelationState::default();
        let mut stepwise = Vec::new();
        let mut held = Vec::new();
        let mut scratch = String::new();
        for (i, json) in records.iter().enumerate() {
            let record = Record::parse(json).expect("record");
            set.matches(&record, &mut scratch, &mut |hit| {
                if let Hit::Correlation { index, part } = hit {
                    set.collect(&mut state, index, part, &record, "test");
                }
            });
            if i % 4 == 3 {
                // Each hour's events are all in: sweep up to the next hour.
                let next = record.time + chrono::Duration::minutes(57);
                stepwise.extend(set.advance(&mut state, next).into_iter().map(|f| f.rule_id));
                held.push(state.held());
            }
        }
        stepwise.extend(set.evaluate(state).into_iter().map(|f| f.rule_id));
        assert_eq!(stepwise, all_at_once);
        assert!(held.iter().all(|n| *n <= 4), "old matches are forgotten: {held:?}");
    }

    #[test]
    fn value_count_temporal_and_ordered() {
        let base = "title: a\nname: a\nlogsource: {product: aws}\ndetection:\n  s: {eventName: [GetUser, ListUsers, ListRoles, ListGroups]}\n  condition: s\n---\ntitle: c\nname: create\nlogsource: {product: aws}\ndetection:\n  s: {eventName: CreateUser}\n  condition: s\n";
        let text = format!(
            "{base}---\ntitle: v\nname: many-apis\ncorrelation:\n  type: value_count\n  rules: [a]\n  group-by: [userIdentity.arn]\n  timespan: 1h\n  condition: {{field: eventName, gte: 3}}\n---\ntitle: t\nname: recon-then-create\ncorrelation:\n  type: temporal_ordered\n  rules: [a, create]\n  group-by: [userIdentity.arn]\n  timespan: 30m\n  generate: true\n"
        );
        let (set, errors) = RuleSet::new(rules(&text));
        assert!(errors.is_empty(), "{errors:?}");
        let r = |name: &str, time: &str| record(name, "iam.amazonaws.com", time, "");
        let same_api = vec![
            r("ListUsers", "2024-01-01T00:00:00Z"),
            r("ListUsers", "2024-01-01T00:01:00Z"),
            r("ListUsers", "2024-01-01T00:02:00Z"),
        ];
        assert!(
            run(&set, &same_api).1.is_empty(),
            "one API three times is one distinct value"
        );
        let recon = vec![
            r("ListUsers", "2024-01-01T00:00:00Z"),
            r("ListRoles", "2024-01-01T00:01:00Z"),
            r("ListGroups", "2024-01-01T00:02:00Z"),
            r("CreateUser", "2024-01-01T00:10:00Z"),
        ];
        let (direct, correlated) = run(&set, &recon);
        assert_eq!(correlated, ["many-apis", "recon-then-create"]);
        assert!(
            direct.contains(&"create".to_string()),
            "generate: true keeps the base findings"
        );
        let backwards = vec![
            r("CreateUser", "2024-01-01T00:00:00Z"),
            r("ListUsers", "2024-01-01T00:05:00Z"),
        ];
        assert!(
            !run(&set, &backwards).1.contains(&"recon-then-create".to_string()),
            "order matters"
        );
    }

    #[test]
    fn legacy_aggregations_work() {
        let text = "title: l\nname: legacy\nlogsource: {product: aws}\ndetection:\n  s: {eventName: ListBuckets}\n  timeframe: 10m\n  condition: s | count() by sourceIPAddress > 2\n---\ntitle: p\nname: pair\nlogsource: {product: aws}\ndetection:\n  a: {eventName: UpdateAccountSendingEnabled}\n  b: {eventName: VerifyEmailIdentity}\n  timeframe: 5m\n  condition: a and b\n";
        let (set, errors) = RuleSet::new(rules(text));
        assert!(errors.is_empty(), "{errors:?}");
        let lb = |time: &str| {
            record(
                "ListBuckets",
                "s3.amazonaws.com",
                time,
                r#","sourceIPAddress":"1.2.3.4""#,
            )
        };
        let three = [
            lb("2024-01-01T00:00:00Z"),
            lb("2024-01-01T00:01:00Z"),
            lb("2024-01-01T00:02:00Z"),
        ];
        assert_eq!(run(&set, &three).1, ["legacy"]);
        assert!(run(&set, &three[..2]).1.is_empty());
        let ses = |name: &str, time: &str| record(name, "ses.amazonaws.com", time, "");
        assert_eq!(
            run(
                &set,
                &[
                    ses("VerifyEmailIdentity", "2024-01-01T00:03:00Z"),
                    ses("UpdateAccountSendingEnabled", "2024-01-01T00:00:00Z")
                ]
            )
            .1,
            ["pair"]
        );
        assert!(
            run(
                &set,
                &[
                    ses("VerifyEmailIdentity", "2024-01-01T00:30:00Z"),
                    ses("UpdateAccountSendingEnabled", "2024-01-01T00:00:00Z")
                ]
            )
            .1
            .is_empty()
        );
    }

    #[test]
    fn unresolved_references_are_reported() {
        let text = "title: c\nname: c\ncorrelation:\n  type: event_count\n  rules: [missing]\n  timespan: 1m\n  condition: {gte: 1}\n";
        let (set, errors) = RuleSet::new(rules(text));
        assert_eq!(set.len(), 0);
        assert!(errors[0].message.contains("\"missing\""), "{errors:?}");
    }
}
