//! A set of compiled rules, indexed by the eventName or eventSource each detection requires, with
//! correlations wired to the detections they count.
//!
//! Most detections pin the eventName (`eventName: StopLogging`); some only the eventSource; some
//! only another core or derived field (`userIdentity.type: Root`); a few (user-agent rules) look
//! at every record. A record is shown to the detections under its eventName, under its
//! eventSource, under its values of those other fields, and to the catch-all list: nothing else. A detection
//! that a correlation refers to feeds that correlation's state when it matches, and reports its own
//! findings only if the correlation says `generate: true`.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap as HashMap;
use trailhound_event::{DerivedField, FieldPath, Record};

use std::sync::Arc;

use crate::correlation::{Budget, Chain, Correlation, CorrelationState, Kind, Resolved};
use crate::detection::Detection;
use crate::error::RuleError;
use crate::rule::{Body, Rule};
use trailhound_finding::Finding;

/// Detections under the lower-cased values they require of a field.
type Index = HashMap<Box<str>, Vec<usize>>;

/// The fields a detection requires values of, with those values.
type Required = Vec<(FieldPath, BTreeSet<String>)>;

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
    /// Whether calls AWS makes itself reach it ([`Rule::sees_aws_calls`]).
    aws_calls: bool,
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
    by_name: Index,
    by_source: Index,
    /// Detections neither index takes, under the values they require of a core or derived
    /// field (`userIdentity.type: Root`, `trailhound.baseline.new_country: true`), with the
    /// lengths of those values (see [`Lengths`]).
    by_field: Vec<(FieldPath, Index, Lengths)>,
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
        set.apply_filters();
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
                        aws_calls: set.rules[index].sees_aws_calls(),
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
                        condition: correlation.condition.clone(),
                        parts: parts.len(),
                        group_names: correlation.group_by.clone(),
                        group_paths: vec![paths; parts.len()],
                        value_paths: vec![value; parts.len()],
                        chained: vec![None; parts.len()],
                        feeds: Vec::new(),
                        report: true,
                        rank: 0,
                    });
                    for part in 0..parts.len() {
                        set.targets.push(Target {
                            rule: index,
                            part,
                            generate: false,
                            feeds: vec![(correlation_index, part)],
                            aws_calls: set.rules[index].sees_aws_calls(),
                        });
                    }
                }
                Body::Correlation(_) | Body::Filter { .. } => {}
            }
        }
        let mut dropped = BTreeSet::new();
        // Correlation rules get their indices up front, so that one may refer to another
        // defined after it (a chain).
        let first = set.correlations.len();
        let by_correlation: HashMap<usize, usize> = (0..set.rules.len())
            .filter(|&i| matches!(set.rules[i].body, Body::Correlation(_)))
            .enumerate()
            .map(|(n, i)| (i, first + n))
            .collect();
        let mut links = Vec::new();
        for index in 0..set.rules.len() {
            let Body::Correlation(correlation) = &set.rules[index].body else {
                continue;
            };
            match set.resolve(index, correlation, &by_rule, &by_correlation) {
                Ok((resolved, parts)) => {
                    let correlation_index = set.correlations.len();
                    let generate = correlation.generate;
                    set.correlations.push(resolved);
                    for (position, part) in parts.into_iter().enumerate() {
                        match part {
                            Part::Detection(target) => {
                                let target = &mut set.targets[target];
                                target.feeds.push((correlation_index, position));
                                // Referenced rules report their own matches only when asked to.
                                if target.feeds.len() == 1 {
                                    target.generate = generate;
                                } else {
                                    target.generate |= generate;
                                }
                            }
                            Part::Correlation(inner) => links.push((inner, correlation_index, position, generate)),
                        }
                    }
                }
                Err(message) => {
                    errors.push(error(&set.rules[index], message));
                    dropped.insert(index);
                }
            }
        }
        if dropped.is_empty() {
            let mut referenced = BTreeSet::new();
            for &(inner, outer, position, generate) in &links {
                if let Some(c) = set.correlations.get_mut(inner) {
                    c.feeds.push((outer, position));
                    if referenced.insert(inner) {
                        c.report = generate;
                    } else {
                        c.report |= generate;
                    }
                }
            }
            if let Err(rule) = set.rank_chains() {
                errors.push(error(
                    &set.rules[rule],
                    "correlation chain refers back to itself (a cycle)".to_string(),
                ));
                dropped.insert(rule);
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
        set.index_by_other_fields();
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

    /// Finds the detections (or correlations) a correlation refers to and the paths of its
    /// group-by fields.
    fn resolve(
        &self,
        index: usize,
        correlation: &Correlation,
        by_rule: &HashMap<usize, usize>,
        by_correlation: &HashMap<usize, usize>,
    ) -> Result<(Resolved, Vec<Part>), String> {
        let mut parts = Vec::new();
        let mut group_paths = Vec::new();
        let mut value_paths = Vec::new();
        let mut chained = Vec::new();
        for reference in &correlation.rules {
            let Some(found) = self
                .rules
                .iter()
                .position(|r| r.id == *reference || r.uuid.as_deref() == Some(reference.as_str()))
            else {
                return Err(format!("correlation refers to rule {reference:?}, which is not loaded"));
            };
            let rule = &self.rules[found];
            // The field name (alias resolved) this correlation reads from `rule`'s matches.
            let field_of = |name: &str| -> Result<String, String> {
                match correlation.aliases.get(name) {
                    Some(per_rule) => per_rule
                        .get(reference)
                        .or_else(|| per_rule.get(&rule.id))
                        .or_else(|| rule.uuid.as_ref().and_then(|u| per_rule.get(u)))
                        .cloned()
                        .ok_or_else(|| format!("alias {name:?} names no field for rule {reference:?}")),
                    None => Ok(name.to_string()),
                }
            };
            if let Some(&target) = by_rule.get(&found) {
                parts.push(Part::Detection(target));
                group_paths.push(
                    correlation
                        .group_by
                        .iter()
                        .map(|name| field_of(name).map(|f| FieldPath::new(&f)))
                        .collect::<Result<Vec<_>, _>>()?,
                );
                value_paths.push(
                    correlation
                        .field
                        .as_deref()
                        .map(|name| field_of(name).map(|f| FieldPath::new(&f)))
                        .transpose()?,
                );
                chained.push(None);
                continue;
            }
            let (Some(&inner), Body::Correlation(inner_correlation)) = (by_correlation.get(&found), &rule.body) else {
                return Err(format!(
                    "correlation refers to {reference:?}, which is neither a detection nor a correlation rule"
                ));
            };
            if found == index {
                return Err("correlation refers to itself".to_string());
            }
            // A chained correlation sees the inner one's windows: it can group and count only
            // by what the inner one groups by.
            let position = |name: &str| -> Result<usize, String> {
                let field = field_of(name)?;
                inner_correlation
                    .group_by
                    .iter()
                    .position(|g| *g == field)
                    .ok_or_else(|| {
                        format!(
                            "{field:?} is not among the group-by fields of the correlation {reference:?} this one refers to ({})",
                            inner_correlation.group_by.join(", ")
                        )
                    })
            };
            let group = correlation
                .group_by
                .iter()
                .map(|name| position(name))
                .collect::<Result<Vec<_>, _>>()?;
            let value = match (correlation.kind, correlation.field.as_deref()) {
                (Kind::ValueSum | Kind::ValueAvg, Some(_)) => {
                    return Err(format!(
                        "{} cannot sum the windows of the correlation {reference:?} (they have no numbers)",
                        correlation.kind.name()
                    ));
                }
                (_, Some(name)) => Some(position(name)?),
                (_, None) => None,
            };
            parts.push(Part::Correlation(inner));
            group_paths.push(Vec::new());
            value_paths.push(None);
            chained.push(Some(Chain { group, value }));
        }
        let resolved = Resolved {
            rule: index,
            kind: correlation.kind,
            timespan: correlation.timespan,
            condition: correlation.condition.clone(),
            parts: parts.len(),
            group_names: correlation.group_by.clone(),
            group_paths,
            value_paths,
            chained,
            feeds: Vec::new(),
            report: true,
            rank: 0,
        };
        Ok((resolved, parts))
    }

    /// Adds each filter's detection to the detection rules it names that this set holds (a
    /// filter naming rules the set does not hold applies to nothing; [`crate::Selection`]
    /// reports names that no loaded rule has).
    fn apply_filters(&mut self) {
        let filters: Vec<(Vec<String>, Detection)> = self
            .rules
            .iter()
            .filter_map(|r| match &r.body {
                Body::Filter { rules, detection } => Some((rules.clone(), detection.clone())),
                _ => None,
            })
            .collect();
        for (names, filter) in filters {
            for rule in &mut self.rules {
                let named = names
                    .iter()
                    .any(|n| *n == rule.id || rule.uuid.as_deref() == Some(n.as_str()));
                if let (true, Body::Detection(detection)) = (named, &mut rule.body) {
                    detection.add_filter(filter.clone());
                }
            }
        }
    }

    /// Ranks correlations by chain depth; `Err(rule)` names a rule on a cycle.
    fn rank_chains(&mut self) -> Result<(), usize> {
        let n = self.correlations.len();
        // The inner correlations of each one.
        let mut inner: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, c) in self.correlations.iter().enumerate() {
            for &(outer, _) in &c.feeds {
                if let Some(list) = inner.get_mut(outer) {
                    list.push(i);
                }
            }
        }
        let mut rank: Vec<Option<usize>> = vec![None; n];
        // At most n rounds: each settles at least one correlation unless there is a cycle.
        for _ in 0..=n {
            let mut changed = false;
            for i in 0..n {
                if rank[i].is_some() {
                    continue;
                }
                if let Some(deepest) = inner[i].iter().map(|&j| rank[j]).collect::<Option<Vec<_>>>() {
                    rank[i] = Some(deepest.into_iter().map(|r| r + 1).max().unwrap_or(0));
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        for (i, r) in rank.iter().enumerate() {
            match r {
                Some(r) => self.correlations[i].rank = *r,
                None => return Err(self.correlations[i].rule),
            }
        }
        Ok(())
    }

    /// Moves the detections that look at every record under a field whose values they require,
    /// when the field is read for every record anyway (core) or derived by the context, and the
    /// values are ASCII (so lower-casing the record's value is exactly the matcher's ASCII case
    /// folding). Each detection goes under the field most of them share, so a record costs one
    /// lookup per field, not one test per detection.
    fn index_by_other_fields(&mut self) {
        let mut candidates: Vec<(usize, Required)> = Vec::new();
        for &index in &self.always {
            let Some(detection) = self
                .targets
                .get(index)
                .and_then(|t| detection_of(&self.rules[t.rule], t.part))
            else {
                continue;
            };
            let fields: Required = detection
                .field_paths()
                .into_iter()
                .filter(|f| f.is_core() || f.derived().is_some())
                .filter_map(|f| {
                    let values = detection.required(f.as_str())?;
                    (!values.is_empty() && values.iter().all(|v| v.is_ascii())).then(|| (f.clone(), values))
                })
                .collect();
            if !fields.is_empty() {
                candidates.push((index, fields));
            }
        }
        let mut shared: HashMap<&str, usize> = HashMap::default();
        for (_, fields) in &candidates {
            for (field, _) in fields {
                *shared.entry(field.as_str()).or_default() += 1;
            }
        }
        let mut moved = BTreeSet::new();
        let mut by_field: Vec<(FieldPath, Index)> = Vec::new();
        for (index, fields) in &candidates {
            // The most shared field, then the fewest values, then the name: a fixed choice.
            let Some((field, values)) = fields.iter().min_by(|(a, va), (b, vb)| {
                let count = |f: &FieldPath| shared.get(f.as_str()).copied().unwrap_or(0);
                count(b)
                    .cmp(&count(a))
                    .then(va.len().cmp(&vb.len()))
                    .then(a.as_str().cmp(b.as_str()))
            }) else {
                continue;
            };
            let at = match by_field.iter().position(|(f, _)| f == field) {
                Some(at) => at,
                None => {
                    by_field.push((field.clone(), HashMap::default()));
                    by_field.len() - 1
                }
            };
            for value in values {
                by_field[at].1.entry(value.as_str().into()).or_default().push(*index);
            }
            moved.insert(*index);
        }
        by_field.sort_by(|(a, _), (b, _)| a.as_str().cmp(b.as_str()));
        self.by_field = by_field
            .into_iter()
            .map(|(field, map)| {
                let lengths = Lengths::of(&map);
                (field, map, lengths)
            })
            .collect();
        self.always.retain(|index| !moved.contains(index));
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
        // Calls AWS makes itself reach only the rules that ask about them.
        let by_aws = record
            .derived()
            .and_then(|d| d.flag(DerivedField::PrincipalByAws))
            .unwrap_or(false);
        // A core or derived field has one value; should a path reach more, each is looked up.
        let mut by_field: &[usize] = &[];
        let mut more: Vec<usize> = Vec::new();
        for (path, map, lengths) in &self.by_field {
            record.visit(path, &mut |value| {
                if let Some(text) = value.text()
                    && lengths.may_hold(&text)
                {
                    let found = lookup(map, &text, scratch);
                    if by_field.is_empty() {
                        by_field = found;
                    } else {
                        more.extend_from_slice(found);
                    }
                }
                false
            });
        }
        if !more.is_empty() {
            more.extend_from_slice(by_field);
            more.sort_unstable();
            more.dedup();
            by_field = &[];
        }
        let by_field = by_field.iter().chain(&more);
        for &index in by_name.iter().chain(by_source).chain(by_field).chain(&self.always) {
            let target = &self.targets[index];
            if by_aws && !target.aws_calls {
                continue;
            }
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

/// What a correlation refers to: a detection target, or another correlation (by index).
enum Part {
    Detection(usize),
    Correlation(usize),
}

fn detection_of(rule: &Rule, part: usize) -> Option<&Detection> {
    match &rule.body {
        Body::Detection(detection) => Some(detection),
        Body::Aggregation { parts, .. } => parts.get(part),
        Body::Correlation(_) | Body::Filter { .. } => None,
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

/// The byte lengths of an index's keys, one bit each (the last bit: 63 bytes or more), to pass
/// over most values without lower-casing and hashing them: `eventType` is `AwsApiCall` on most
/// records, and the only rule indexed under it asks for `AwsCloudTrailInsight`. Keys of the field
/// index are ASCII, and an ASCII value keeps its length when lower-cased; a value that is not
/// ASCII may not (the KELVIN SIGN lowers to `k`), so it is always looked up.
#[derive(Debug, Clone, Copy, Default)]
struct Lengths(u64);

impl Lengths {
    fn of(map: &Index) -> Lengths {
        Lengths(map.keys().fold(0, |mask, key| mask | Lengths::bit(key.len())))
    }

    fn bit(len: usize) -> u64 {
        1 << len.min(63)
    }

    fn may_hold(self, value: &str) -> bool {
        self.0 & Lengths::bit(value.len()) != 0 || !value.is_ascii()
    }
}

fn lookup<'m>(map: &'m Index, key: &str, scratch: &mut String) -> &'m [usize] {
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
        all.extend(rule("by-type", "  s: {userIdentity.type: IAMUser}\n  condition: s"));
        all.extend(rule("always", "  s: {userAgent|contains: tool}\n  condition: s"));
        all.extend(rule("by-name", "  s: {eventName: X}\n  condition: s"));
        let (set, errors) = RuleSet::new(all);
        assert_eq!(errors.len(), 1, "duplicate id reported");
        assert_eq!((set.len(), set.unindexed()), (4, 1));
        let tool = r#","userAgent":"Tool/1.0""#;
        let stop = record("stoplogging", "cloudtrail.amazonaws.com", "2024-01-01T00:00:00Z", tool);
        assert_eq!(run(&set, &[stop]).0, ["by-name", "by-type", "always"]);
        let list = record("ListUsers", "iam.amazonaws.com", "2024-01-01T00:00:00Z", "");
        assert_eq!(run(&set, &[list]).0, ["by-source", "by-type"]);
        let root = record("ListUsers", "s", "2024-01-01T00:00:00Z", "").replace("IAMUser", "ROOT");
        assert!(run(&set, &[root]).0.is_empty());
    }

    /// Detections that pin no eventName or eventSource go under another core or derived field
    /// they require, when its values are ASCII; the others still see every record.
    #[test]
    fn detections_without_a_name_are_indexed_by_the_field_they_require() {
        let mut all = rule("root", "  s: {userIdentity.type: Root}\n  condition: s");
        all.extend(rule(
            "keys",
            "  s: {userIdentity.type: [IAMUser, Root], userIdentity.accessKeyId|startswith: AKIA}\n  condition: s",
        ));
        all.extend(rule(
            "country",
            "  s: {trailhound.baseline.new_country: true}\n  condition: s",
        ));
        all.extend(rule(
            "either",
            "  a: {userIdentity.type: Root}\n  b: {errorCode: Denied}\n  condition: a or b",
        ));
        all.extend(rule("not-ascii", "  s: {userIdentity.type: Rööt}\n  condition: s"));
        all.extend(rule("negated", "  s: {userIdentity.type: Root}\n  condition: not s"));
        let (set, errors) = RuleSet::new(all);
        assert!(errors.is_empty(), "{errors:?}");
        let fields: Vec<&str> = set.by_field.iter().map(|(f, _, _)| f.as_str()).collect();
        assert_eq!(fields, ["trailhound.baseline.new_country", "userIdentity.type"]);
        // "either" requires no single field; the others' values are not ASCII or not required.
        assert_eq!(set.unindexed(), 3);
        let key = r#","userIdentity":{"type":"Root","accessKeyId":"AKIAEXAMPLE"}"#;
        let root = record("GetCallerIdentity", "sts.amazonaws.com", "2024-01-01T00:00:00Z", "").replace(
            r#","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/u"}"#,
            key,
        );
        assert_eq!(run(&set, &[root]).0, ["root", "keys", "either"]);
        let user = record("GetCallerIdentity", "sts.amazonaws.com", "2024-01-01T00:00:00Z", "");
        assert_eq!(run(&set, &[user]).0, ["negated"]);
    }

    #[test]
    fn field_index_passes_over_values_of_other_lengths_but_never_misses_one() {
        let (set, errors) = RuleSet::new(rule(
            "insight",
            "  s: {eventType: AwsCloudTrailInsight}\n  condition: s",
        ));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(set.unindexed(), 0);
        let lengths = set.by_field[0].2;
        assert!(!lengths.may_hold("AwsApiCall"));
        assert!(lengths.may_hold("awscloudtrailinsight"));
        let typed = |value: &str| {
            let extra = format!(r#","eventType":"{value}""#);
            run(&set, &[record("X", "s", "2024-01-01T00:00:00Z", &extra)]).0
        };
        assert!(typed("AwsApiCall").is_empty());
        assert_eq!(typed("AWSCLOUDTRAILINSIGHT"), ["insight"]);
        // A value that is not ASCII may change length when lowered: always looked up.
        let (set, _) = RuleSet::new(rule("kelvin", "  s: {eventType: keys}\n  condition: s"));
        assert!(set.by_field[0].2.may_hold("\u{212A}eys"));
        for value in ["\\u212Aeys", "KEYS", "\\u017Fkeys", "key"] {
            let json = record("X", "s", "2024-01-01T00:00:00Z", &format!(r#","eventType":"{value}""#));
            let parsed = Record::parse(&json).expect("record");
            // Whatever the matcher decides, the index decides the same.
            let direct = detection_of(&set.rules[0], 0).is_some_and(|d| d.matches(&parsed));
            assert_eq!(run(&set, &[json]).0 == ["kelvin"], direct, "{value}");
        }
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

    /// Sigma 2.1: a condition with two comparisons is a range (both must hold).
    #[test]
    fn a_condition_with_two_comparisons_is_a_range() {
        let text = format!(
            "{FAILED_LOGIN}---\ntitle: some\nname: some\ncorrelation:\n  type: event_count\n  rules: [failed-login]\n  group-by: [sourceIPAddress]\n  timespan: 10m\n  condition: {{gt: 2, lte: 3}}\n"
        );
        let (set, errors) = RuleSet::new(rules(&text));
        assert!(errors.is_empty(), "{errors:?}");
        let three: Vec<String> = (0..3)
            .map(|m| failed(&format!("2024-01-01T00:0{m}:00Z"), "203.0.113.1"))
            .collect();
        assert_eq!(run(&set, &three).1, ["some"], "3 is in (2, 3]");
        let two = &three[..2];
        assert!(run(&set, two).1.is_empty(), "2 is not above 2");
    }

    fn transfer(time: &str, user: &str, bytes: u64) -> String {
        format!(
            r#"{{"eventTime":"{time}","eventName":"GetObject","eventSource":"s3.amazonaws.com","eventID":"{user}-{time}","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/{user}"}},"additionalEventData":{{"bytesTransferredOut":{bytes}}},"requestParameters":{{"bucketName":"b"}}}}"#
        )
    }

    const GET_OBJECT: &str =
        "title: get\nname: get\nlogsource: {product: aws}\ndetection:\n  s: {eventName: GetObject}\n  condition: s\n";

    /// Sigma 2.1 value_sum and value_avg: the spec's "bytes sent by one user" examples.
    #[test]
    fn value_sum_and_value_avg_measure_a_numeric_field() {
        let text = format!(
            "{GET_OBJECT}---\ntitle: sum\nname: sum\ncorrelation:\n  type: value_sum\n  rules: [get]\n  group-by: [userIdentity.arn]\n  timespan: 1h\n  condition: {{field: additionalEventData.bytesTransferredOut, gte: 1000000}}\n---\ntitle: avg\nname: avg\ncorrelation:\n  type: value_avg\n  rules: [get]\n  group-by: [userIdentity.arn]\n  timespan: 1h\n  condition: {{field: additionalEventData.bytesTransferredOut, gt: 600000}}\n"
        );
        let (set, errors) = RuleSet::new(rules(&text));
        assert!(errors.is_empty(), "{errors:?}");
        let big = [
            transfer("2024-01-01T00:00:00Z", "mallory", 400_000),
            transfer("2024-01-01T00:10:00Z", "mallory", 700_000),
        ];
        let mut found = run(&set, &big).1;
        found.sort();
        assert_eq!(found, ["sum"], "1.1 MB in an hour; average 550 kB is not above 600 kB");
        let spread = [
            transfer("2024-01-01T00:00:00Z", "mallory", 700_000),
            transfer("2024-01-01T03:00:00Z", "mallory", 400_000),
        ];
        assert_eq!(
            run(&set, &spread).1,
            ["avg"],
            "three hours apart: no sum; the first window averages 700 kB"
        );
        let mut state = CorrelationState::default();
        let mut scratch = String::new();
        for json in &big {
            let record = Record::parse(json).expect("record");
            set.matches(&record, &mut scratch, &mut |hit| {
                if let Hit::Correlation { index, part } = hit {
                    set.collect(&mut state, index, part, &record, "t");
                }
            });
        }
        let findings = set.evaluate(state);
        let info = findings[0].correlation.as_ref().expect("correlation");
        assert_eq!((info.count, info.value), (1_100_000, Some(1_100_000.0)));
    }

    /// Sigma 2.1 value_percentile: a value rare within its group (the spec's rare-process example).
    #[test]
    fn value_percentile_finds_a_rare_value_in_a_busy_group() {
        let text = format!(
            "{GET_OBJECT}---\ntitle: rare\nname: rare\ncorrelation:\n  type: value_percentile\n  rules: [get]\n  group-by: [requestParameters.bucketName]\n  timespan: 1d\n  condition: {{field: userIdentity.arn, lte: 5}}\n"
        );
        let (set, errors) = RuleSet::new(rules(&text));
        assert!(errors.is_empty(), "{errors:?}");
        let mut records: Vec<String> = (0..40)
            .map(|i| transfer(&format!("2024-01-01T00:{:02}:00Z", i), "app", 10))
            .collect();
        assert!(run(&set, &records).1.is_empty(), "one principal: 100 %");
        records.push(transfer("2024-01-01T00:45:00Z", "intruder", 10));
        assert_eq!(run(&set, &records).1, ["rare"], "1 of 41 events: 2.4 %");
    }

    /// Sigma 2.1 chained correlations: the spec's "many failed logins, then a success" example.
    #[test]
    fn a_correlation_of_a_correlation() {
        let text = format!(
            "{FAILED_LOGIN}---\ntitle: ok\nname: ok-login\nlogsource: {{product: aws}}\ndetection:\n  s: {{eventName: ConsoleLogin, responseElements.ConsoleLogin: Success}}\n  condition: s\n---\ntitle: many\nname: many-failed\ncorrelation:\n  type: event_count\n  rules: [failed-login]\n  group-by: [sourceIPAddress]\n  timespan: 10m\n  condition: {{gte: 3}}\n---\ntitle: then ok\nname: brute-force-then-login\ncorrelation:\n  type: temporal_ordered\n  rules: [many-failed, ok-login]\n  group-by: [sourceIPAddress]\n  timespan: 30m\n"
        );
        let (set, errors) = RuleSet::new(rules(&text));
        assert!(errors.is_empty(), "{errors:?}");
        let success = |time: &str, ip: &str| {
            record(
                "ConsoleLogin",
                "signin.amazonaws.com",
                time,
                &format!(r#","responseElements":{{"ConsoleLogin":"Success"}},"sourceIPAddress":"{ip}""#),
            )
        };
        let attack = vec![
            failed("2024-01-01T00:00:00Z", "203.0.113.1"),
            failed("2024-01-01T00:01:00Z", "203.0.113.1"),
            failed("2024-01-01T00:02:00Z", "203.0.113.1"),
            success("2024-01-01T00:05:00Z", "203.0.113.1"),
        ];
        let (direct, correlated) = run(&set, &attack);
        assert!(direct.is_empty(), "{direct:?}");
        assert_eq!(
            correlated,
            ["brute-force-then-login"],
            "the inner correlation reports nothing of its own"
        );
        let success_first = vec![
            success("2024-01-01T00:00:00Z", "203.0.113.1"),
            failed("2024-01-01T00:01:00Z", "203.0.113.1"),
            failed("2024-01-01T00:02:00Z", "203.0.113.1"),
            failed("2024-01-01T00:03:00Z", "203.0.113.1"),
        ];
        assert!(run(&set, &success_first).1.is_empty(), "out of order");
        let other_address = vec![
            failed("2024-01-01T00:00:00Z", "203.0.113.1"),
            failed("2024-01-01T00:01:00Z", "203.0.113.1"),
            failed("2024-01-01T00:02:00Z", "203.0.113.1"),
            success("2024-01-01T00:05:00Z", "198.51.100.2"),
        ];
        assert!(run(&set, &other_address).1.is_empty(), "grouped by address");
    }

    #[test]
    fn chains_that_cannot_work_are_refused() {
        let cycle = "title: a\nname: a\ncorrelation:\n  type: event_count\n  rules: [b]\n  group-by: [x]\n  timespan: 1m\n  condition: {gte: 1}\n---\ntitle: b\nname: b\ncorrelation:\n  type: event_count\n  rules: [a]\n  group-by: [x]\n  timespan: 1m\n  condition: {gte: 1}\n";
        let (set, errors) = RuleSet::new(rules(cycle));
        assert!(!errors.is_empty() && set.correlations() == 0, "{errors:?}");
        let text = format!(
            "{FAILED_LOGIN}---\ntitle: many\nname: many-failed\ncorrelation:\n  type: event_count\n  rules: [failed-login]\n  group-by: [sourceIPAddress]\n  timespan: 10m\n  condition: {{gte: 3}}\n---\ntitle: by user\nname: by-user\ncorrelation:\n  type: event_count\n  rules: [many-failed]\n  group-by: [userIdentity.arn]\n  timespan: 1h\n  condition: {{gte: 2}}\n"
        );
        let (_, errors) = RuleSet::new(rules(&text));
        assert!(
            errors
                .iter()
                .any(|e| e.message.contains("not among the group-by fields")),
            "{errors:?}"
        );
    }

    /// Sigma filters (meta rules): the filter's condition must hold too.
    #[test]
    fn filters_apply_to_the_rules_they_name() {
        let text = "title: stop\nname: stop\nid: 6f3e2987-db24-4c78-a860-b4f4095a7095\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s: {eventName: StopLogging}\n  condition: s\n---\ntitle: other\nname: other\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s: {eventName: StopLogging}\n  condition: s\n---\ntitle: lab account\nlogsource: {product: aws, service: cloudtrail}\nfilter:\n  rules: [6f3e2987-db24-4c78-a860-b4f4095a7095]\n  selection:\n    userIdentity.arn|startswith: 'arn:aws:iam::1:user/lab-'\n  condition: not selection\n";
        let (set, errors) = RuleSet::new(rules(text));
        assert!(errors.is_empty(), "{errors:?}");
        let by = |user: &str| {
            format!(
                r#"{{"eventTime":"2024-01-01T00:00:00Z","eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/{user}"}}}}"#
            )
        };
        let mut lab = run(&set, &[by("lab-robot")]).0;
        lab.sort();
        assert_eq!(lab, ["other"], "filtered for the rule named by id only");
        let mut alice = run(&set, &[by("alice")]).0;
        alice.sort();
        assert_eq!(alice, ["other", "stop"]);
    }
}
