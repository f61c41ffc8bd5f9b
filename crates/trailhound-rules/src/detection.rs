//! A rule's `detection` block: named selections plus the condition over them.

use std::collections::BTreeSet;

use serde_yaml_ng::Value as Yaml;
use trailhound_event::{FieldPath, Record};

use crate::condition::{self, Cond};
use crate::correlation::{Correlation, parse_timespan};
use crate::error::CompileError;
use crate::matcher::FieldMatcher;

mod sql;

/// One named selection.
#[derive(Debug, Clone)]
enum Selection {
    /// A map: every entry must match.
    All(Vec<FieldMatcher>),
    /// A list of maps (or of keyword lists): any item matches.
    Any(Vec<Vec<FieldMatcher>>),
}

impl Selection {
    fn compile(name: &str, value: &Yaml) -> Result<Selection, CompileError> {
        match value {
            Yaml::Mapping(map) => Ok(Selection::All(compile_map(name, map)?)),
            Yaml::Sequence(items) if items.iter().all(|i| matches!(i, Yaml::Mapping(_))) && !items.is_empty() => {
                let mut any = Vec::new();
                for item in items {
                    if let Yaml::Mapping(map) = item {
                        any.push(compile_map(name, map)?);
                    }
                }
                Ok(Selection::Any(any))
            }
            Yaml::Sequence(items) if items.iter().any(|i| matches!(i, Yaml::Mapping(_))) => Err(CompileError::at(
                name,
                format!("selection {name:?} mixes maps and plain values"),
            )),
            Yaml::Sequence(_) | Yaml::String(_) | Yaml::Number(_) => {
                Ok(Selection::All(vec![FieldMatcher::compile("", value)?]))
            }
            _ => Err(CompileError::at(
                name,
                format!("selection {name:?} must be a map, a list of maps or a list of keywords"),
            )),
        }
    }

    fn cost(&self) -> u8 {
        match self {
            Selection::All(matchers) => matchers.iter().map(FieldMatcher::cost).max().unwrap_or(0),
            Selection::Any(maps) => maps.iter().flatten().map(FieldMatcher::cost).max().unwrap_or(0),
        }
    }

    fn matches(&self, record: &Record<'_>) -> bool {
        match self {
            Selection::All(matchers) => matchers.iter().all(|m| m.matches(record)),
            Selection::Any(maps) => maps.iter().any(|map| map.iter().all(|m| m.matches(record))),
        }
    }

    /// Exact values the selection requires of `field`; `None` when it does not pin it down.
    fn required(&self, field: &str) -> Option<BTreeSet<String>> {
        let of_map = |matchers: &[FieldMatcher]| -> Option<BTreeSet<String>> {
            matchers
                .iter()
                .filter(|m| m.field().is_some_and(|f| f.as_str() == field))
                .filter_map(|m| m.literals().map(|l| l.iter().cloned().collect::<BTreeSet<_>>()))
                .reduce(|a, b| a.intersection(&b).cloned().collect())
        };
        match self {
            Selection::All(matchers) => of_map(matchers),
            Selection::Any(maps) => maps
                .iter()
                .map(|m| of_map(m))
                .try_fold(BTreeSet::new(), |mut acc, set| {
                    acc.extend(set?);
                    Some(acc)
                }),
        }
    }
}

fn compile_map(selection: &str, map: &serde_yaml_ng::Mapping) -> Result<Vec<FieldMatcher>, CompileError> {
    if map.is_empty() {
        return Err(CompileError::at(selection, format!("selection {selection:?} is empty")));
    }
    let mut matchers = map
        .iter()
        .map(|(key, value)| match key {
            Yaml::String(spec) => FieldMatcher::compile(spec, value),
            other => Err(CompileError::at(
                selection,
                format!("selection {selection:?}: field name {other:?} is not a string"),
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    // All entries must match, in any order: test the cheap ones first so most records are
    // rejected before their JSON tree is built.
    matchers.sort_by_key(FieldMatcher::cost);
    Ok(matchers)
}

/// What a `detection` block compiles to.
pub(crate) enum Compiled {
    Detection(Detection),
    /// Legacy aggregation: detections, one per part, feeding a correlation.
    Aggregation {
        parts: Vec<Detection>,
        correlation: Correlation,
    },
}

/// Compiles a `detection` block, recognising the legacy aggregation forms:
/// `sel | count() [by F] > N`, `a | near b`, and `a and b` under a `timeframe` (a pair of events
/// no single record can satisfy, which older rules wrote to mean "both within the timeframe").
pub(crate) fn compile_body(detection: &Yaml) -> Result<Compiled, CompileError> {
    let Yaml::Mapping(map) = detection else {
        return Err(CompileError::at(
            "detection",
            "detection must be a map of selections and a condition",
        ));
    };
    let mut names = Vec::new();
    let mut selections = Vec::new();
    let mut condition_text = None;
    let mut timeframe = None;
    for (key, value) in map {
        let Some(key) = key.as_str() else {
            return Err(CompileError::at(
                "detection",
                format!("detection key {key:?} is not a string"),
            ));
        };
        match key {
            "condition" => condition_text = Some(value),
            "timeframe" => {
                let text = value.as_str().unwrap_or_default();
                timeframe = Some(parse_timespan(text).ok_or_else(|| {
                    CompileError::at(
                        "timeframe",
                        format!("timeframe {text:?} is not a duration (30s, 10m, 1h)"),
                    )
                })?);
            }
            _ => {
                selections.push(Selection::compile(key, value)?);
                names.push(key.to_string());
            }
        }
    }
    let text = match condition_text {
        None => return Err(CompileError::at("detection", "detection has no condition")),
        Some(Yaml::String(text)) => text.clone(),
        // A list of conditions means any of them.
        Some(Yaml::Sequence(items)) if !items.is_empty() => {
            let mut any = Vec::new();
            for item in items {
                let text = item
                    .as_str()
                    .ok_or_else(|| CompileError::at("condition", "each condition must be a string"))?;
                if text.contains('|') {
                    return Err(CompileError::at(
                        "condition",
                        "an aggregation cannot be one of several conditions",
                    ));
                }
                any.push(condition::parse(text, &names)?);
            }
            return Ok(Compiled::Detection(Detection::new(selections, Cond::Or(any))));
        }
        Some(_) => {
            return Err(CompileError::at(
                "condition",
                "condition must be a string or a list of strings",
            ));
        }
    };
    if let Some((left, aggregation)) = text.split_once('|') {
        let aggregation = aggregation.trim();
        if let Some(right) = aggregation.strip_prefix("near ") {
            let mut parts = vec![Detection::new(selections.clone(), condition::parse(left, &names)?)];
            for part in right.split(" and ") {
                parts.push(Detection::new(selections.clone(), condition::parse(part, &names)?));
            }
            return Ok(Compiled::Aggregation {
                parts,
                correlation: Correlation::legacy_temporal(timeframe),
            });
        }
        let correlation = Correlation::legacy_count(aggregation, timeframe)?;
        let part = Detection::new(selections, condition::parse(left, &names)?);
        return Ok(Compiled::Aggregation {
            parts: vec![part],
            correlation,
        });
    }
    let condition = condition::parse(&text, &names)?;
    if timeframe.is_some()
        && let Cond::And(items) = &condition
        && items.len() >= 2
        && items.iter().all(|c| matches!(c, Cond::Selection(_)))
    {
        let parts = items
            .iter()
            .map(|c| Detection::new(selections.clone(), c.clone()))
            .collect();
        return Ok(Compiled::Aggregation {
            parts,
            correlation: Correlation::legacy_temporal(timeframe),
        });
    }
    Ok(Compiled::Detection(Detection::new(selections, condition)))
}

/// A compiled detection.
#[derive(Debug, Clone)]
pub(crate) struct Detection {
    selections: Vec<Selection>,
    condition: Cond,
    /// Sigma filters applied to this rule: each must match too (their conditions say what to
    /// keep, usually `not selection`).
    filters: Vec<Detection>,
}

impl Detection {
    #[cfg(test)]
    pub fn compile(detection: &Yaml) -> Result<Detection, CompileError> {
        match compile_body(detection)? {
            Compiled::Detection(detection) => Ok(detection),
            Compiled::Aggregation { .. } => {
                Err(CompileError::at("condition", "an aggregation is not a plain detection"))
            }
        }
    }

    /// A detection over `selections` with `condition`.
    fn new(selections: Vec<Selection>, condition: Cond) -> Detection {
        let mut detection = Detection {
            selections,
            condition,
            filters: Vec::new(),
        };
        detection.condition = detection.cheapest_first(detection.condition.clone());
        detection
    }

    /// `and` and `or` do not depend on their operands' order: evaluate cheap operands first.
    fn cheapest_first(&self, cond: Cond) -> Cond {
        match cond {
            Cond::And(items) => Cond::And(self.sorted(items)),
            Cond::Or(items) => Cond::Or(self.sorted(items)),
            Cond::Not(inner) => Cond::Not(Box::new(self.cheapest_first(*inner))),
            leaf => leaf,
        }
    }

    fn sorted(&self, items: Vec<Cond>) -> Vec<Cond> {
        let mut items: Vec<Cond> = items.into_iter().map(|c| self.cheapest_first(c)).collect();
        items.sort_by_key(|c| self.cost(c));
        items
    }

    fn cost(&self, cond: &Cond) -> u8 {
        match cond {
            Cond::Selection(index) => self.selections.get(*index).map_or(0, Selection::cost),
            Cond::Not(inner) => self.cost(inner),
            Cond::And(items) | Cond::Or(items) => items.iter().map(|c| self.cost(c)).max().unwrap_or(0),
        }
    }

    pub fn matches(&self, record: &Record<'_>) -> bool {
        self.condition
            .eval(&mut |index| self.selections.get(index).is_some_and(|s| s.matches(record)))
            && self.filters.iter().all(|f| f.matches(record))
    }

    /// Every field the detection (and the filters applied to it) tests.
    pub fn fields(&self) -> Vec<&str> {
        let mut fields: Vec<&str> = self.field_paths().into_iter().map(FieldPath::as_str).collect();
        for filter in &self.filters {
            fields.extend(filter.fields());
        }
        fields
    }

    /// Applies a Sigma filter: the rule matches only records the filter's condition also holds for.
    pub fn add_filter(&mut self, filter: Detection) {
        self.filters.push(filter);
    }

    /// The paths the detection's own selections name (keywords have none), in order, once each.
    pub fn field_paths(&self) -> Vec<&FieldPath> {
        let mut fields: Vec<&FieldPath> = Vec::new();
        for selection in &self.selections {
            let matchers: Vec<&FieldMatcher> = match selection {
                Selection::All(matchers) => matchers.iter().collect(),
                Selection::Any(maps) => maps.iter().flatten().collect(),
            };
            for field in matchers.into_iter().filter_map(FieldMatcher::field) {
                if !fields.contains(&field) {
                    fields.push(field);
                }
            }
        }
        fields
    }

    /// Lower-cased values of `field` (eventName, eventSource) without which the rule cannot
    /// match; `None` when any value might.
    pub fn required(&self, field: &str) -> Option<BTreeSet<String>> {
        self.required_in(&self.condition, field)
    }

    fn required_in(&self, cond: &Cond, field: &str) -> Option<BTreeSet<String>> {
        match cond {
            Cond::Selection(index) => self.selections.get(*index)?.required(field),
            Cond::Not(_) => None,
            Cond::And(items) => items
                .iter()
                .filter_map(|c| self.required_in(c, field))
                .min_by_key(BTreeSet::len),
            Cond::Or(items) => {
                items
                    .iter()
                    .map(|c| self.required_in(c, field))
                    .try_fold(BTreeSet::new(), |mut acc, set| {
                        acc.extend(set?);
                        Some(acc)
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detection(yaml: &str) -> Detection {
        Detection::compile(&serde_yaml_ng::from_str(yaml).expect("yaml")).unwrap_or_else(|e| panic!("{}", e.message))
    }

    fn names(d: &Detection) -> Option<Vec<String>> {
        d.required("eventName").map(|s| s.into_iter().collect())
    }

    #[test]
    fn index_keys_follow_the_condition() {
        let d = detection("sel: {eventName: [A, B]}\nfilter: {userAgent: x}\ncondition: sel and not filter");
        assert_eq!(names(&d), Some(vec!["a".into(), "b".into()]));
        let d = detection("sel: {eventName: A}\nother: {eventName: B*}\ncondition: sel or other");
        assert_eq!(names(&d), None, "a wildcard cannot be indexed");
        let d = detection("sel:\n  - {eventName: A}\n  - {eventName: C}\ncondition: sel");
        assert_eq!(names(&d), Some(vec!["a".into(), "c".into()]));
        let d = detection("sel:\n  - {eventName: A}\n  - {userAgent: C}\ncondition: sel");
        assert_eq!(names(&d), None);
        let d = detection("s1: {eventSource: iam.amazonaws.com}\ns2: {eventName: [X, Y, Z]}\ncondition: s1 and s2");
        assert_eq!(names(&d), Some(vec!["x".into(), "y".into(), "z".into()]));
        assert_eq!(d.required("eventSource").map(|s| s.len()), Some(1));
        let d = detection("sel: {eventName: A}\ncondition: not sel");
        assert_eq!(names(&d), None);
    }

    #[test]
    fn bad_detections() {
        for bad in [
            "condition: x",
            "sel: {a: 1}",
            "sel: {}\ncondition: sel",
            "sel: [{a: 1}, b]\ncondition: sel",
            "sel: {a: 1}\ncondition: {x: 1}",
            "- a",
        ] {
            let yaml: Yaml = serde_yaml_ng::from_str(bad).expect("yaml");
            assert!(Detection::compile(&yaml).is_err(), "{bad}");
        }
    }
}
