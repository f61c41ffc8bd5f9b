//! What `events` and `timeline` ask of an `athena://` source: their filters as a Sigma rule, which
//! the hunt's planner compiles to SQL like any other rule, so that Athena returns only the rows
//! that can pass them instead of every row of the window.
//!
//! The SQL only narrows what comes back: the commands apply their own filters to every row
//! again. So a filter is pushed down only where the rule is sure to keep every row the command
//! keeps (a superset): a `--where` test on a field the table does not have (`trailhound.*`) or
//! with a value outside ASCII (whose case folding Sigma and `--where` may do differently) is left
//! out of the SQL, which can only make it keep more; an alternative (timeline's key, principal
//! or address) that cannot be written makes the whole filter stay local, since leaving out one
//! side of an OR would lose rows.

use serde_json::{Map, Value, json};
use trailhound_event::query::{Condition, Op};
use trailhound_rules::{RuleFile, RuleSet, parse_rules, sigma_literal, sql};

/// A `--where` glob in Sigma's string syntax: `*` and `?` kept, `\` (literal in a glob) escaped.
fn pattern(value: &str) -> String {
    value.replace('\\', "\\\\")
}

/// A rule set of one rule with `detection` (named selections and a condition). Written as JSON,
/// which is YAML, so every value is quoted as the loader reads it.
fn rule_set(id: &str, detection: Map<String, Value>) -> Option<RuleSet> {
    let rule = json!({
        "title": format!("pushed-down filter of {id}"),
        "id": id,
        "logsource": {"product": "aws", "service": "cloudtrail"},
        "level": "informational",
        "detection": detection,
    });
    let (rules, errors) = parse_rules(&RuleFile {
        path: format!("{id}.yml"),
        text: rule.to_string(),
        tests: None,
    });
    if !errors.is_empty() {
        tracing::debug!("filter not pushed down: {errors:?}");
        return None;
    }
    let (set, errors) = RuleSet::new(rules);
    (errors.is_empty() && !set.is_empty()).then_some(set)
}

/// Whether a detection of this one selection has a SQL form.
fn compiles(name: &str, selection: &Value) -> bool {
    let mut detection = Map::new();
    detection.insert(name.to_string(), selection.clone());
    detection.insert("condition".into(), json!(name));
    rule_set("trailhound-events-filter-part", detection).is_some_and(|set| {
        set.rules()
            .iter()
            .all(|rule| sql::where_clause(rule, sql::Dialect::Athena).is_ok())
    })
}

/// Whether a value can be pushed down (see the module's note on ASCII).
fn plain(value: &str) -> bool {
    value.is_ascii()
}

/// Most bytes of values one pushed-down filter carries: Athena refuses query text over 256 KB,
/// and a timeline that follows thousands of keys reads every row instead.
const MAX_FILTER_BYTES: usize = 100_000;

/// The rule for `events --name N... --where C...`: every condition and the names that can be
/// pushed down, AND-ed; `None` when none can (every row of the window is read).
pub fn events(conditions: &[Condition], names: &[String]) -> Option<RuleSet> {
    let mut detection = Map::new();
    let mut parts: Vec<String> = Vec::new();
    if !names.is_empty() && names.iter().all(|n| plain(n)) {
        let names: Vec<String> = names.iter().map(|n| sigma_literal(n)).collect();
        detection.insert("names".into(), json!({ "eventName": names }));
        parts.push("names".into());
    }
    for (n, condition) in conditions.iter().enumerate() {
        let field = condition.field().as_str();
        if !sql::in_table(field) || !plain(condition.value()) {
            continue;
        }
        let (key, value, negated) = match (condition.op(), condition.number()) {
            (Op::Eq, _) => (field.to_string(), json!(sigma_literal(condition.value())), false),
            (Op::Ne, _) => (field.to_string(), json!(sigma_literal(condition.value())), true),
            (Op::Glob, _) => (field.to_string(), json!(pattern(condition.value())), false),
            (Op::Gt, Some(limit)) => (format!("{field}|gt"), json!(limit), false),
            (Op::Gte, Some(limit)) => (format!("{field}|gte"), json!(limit), false),
            (Op::Lt, Some(limit)) => (format!("{field}|lt"), json!(limit), false),
            (Op::Lte, Some(limit)) => (format!("{field}|lte"), json!(limit), false),
            _ => continue,
        };
        let name = format!("where{n}");
        let mut selection = Map::new();
        selection.insert(key, value);
        let selection = Value::Object(selection);
        // A test the SQL cannot hold (a whole struct, say) stays local instead of making the
        // whole filter read every row.
        if !compiles(&name, &selection) {
            continue;
        }
        detection.insert(name.clone(), selection);
        parts.push(if negated { format!("not {name}") } else { name });
    }
    if parts.is_empty() {
        return None;
    }
    detection.insert("condition".into(), json!(parts.join(" and ")));
    rule_set("trailhound-events-filter", detection)
}

/// Adds a selection `followN` per field with values, N from `first`: a row passes one if the
/// field has one of the values. `false` when some value cannot be pushed down (leaving one
/// alternative out would lose rows).
fn alternatives(detection: &mut Map<String, Value>, first: usize, fields: &[(&str, &[&str])]) -> bool {
    let bytes: usize = fields
        .iter()
        .flat_map(|(_, values)| values.iter())
        .map(|v| v.len() + 4)
        .sum();
    if bytes > MAX_FILTER_BYTES {
        return false;
    }
    for (n, (field, values)) in fields.iter().enumerate() {
        if values.is_empty() {
            continue;
        }
        if !values.iter().all(|v| plain(v)) || !sql::in_table(field) {
            return false;
        }
        let values: Vec<String> = values.iter().map(|v| sigma_literal(v)).collect();
        detection.insert(format!("follow{}", first + n), json!({ *field: values }));
    }
    true
}

/// The rule for timeline's first pass: the calls in `issuers` (credential hand-outs) made with
/// an access key (a hop can only start from one) or by the principal or address followed.
pub fn timeline_issuers(issuers: &[&str], arns: &[&str], ips: &[&str]) -> Option<RuleSet> {
    let mut detection = Map::new();
    detection.insert("follow0".into(), json!({ "userIdentity.accessKeyId|exists": true }));
    if !alternatives(
        &mut detection,
        1,
        &[("userIdentity.arn", arns), ("sourceIPAddress", ips)],
    ) {
        return None;
    }
    let issuers: Vec<String> = issuers.iter().map(|n| sigma_literal(n)).collect();
    detection.insert("issuers".into(), json!({ "eventName": issuers }));
    detection.insert("condition".into(), json!("issuers and 1 of follow*"));
    rule_set("trailhound-timeline-issuers", detection)
}

/// The rule for timeline's second pass: the events of the keys, principals and addresses
/// followed.
pub fn timeline_events(keys: &[&str], arns: &[&str], ips: &[&str]) -> Option<RuleSet> {
    let mut detection = Map::new();
    let fields: [(&str, &[&str]); 3] = [
        ("userIdentity.accessKeyId", keys),
        ("userIdentity.arn", arns),
        ("sourceIPAddress", ips),
    ];
    if !alternatives(&mut detection, 0, &fields) || detection.is_empty() {
        return None;
    }
    detection.insert("condition".into(), json!("1 of follow*"));
    rule_set("trailhound-timeline-filter", detection)
}

#[cfg(test)]
mod tests {
    use super::*;
    use trailhound_event::Record;

    fn record(text: &str) -> Record<'_> {
        Record::parse(text).expect("record")
    }

    fn matches(set: &RuleSet, text: &str) -> bool {
        let record = record(text);
        let mut scratch = String::new();
        let mut found = false;
        set.detections(&record, &mut scratch, &mut |_| found = true);
        found
    }

    const EVENTS: [&str; 5] = [
        r#"{"eventTime":"2026-11-20T10:00:00Z","eventName":"CreateUser","eventSource":"iam.amazonaws.com","sourceIPAddress":"203.0.113.9","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/a*b","accessKeyId":"AKIAEXAMPLE1"},"requestParameters":{"userName":"x?y","maxItems":5}}"#,
        r#"{"eventTime":"2026-11-20T10:00:00Z","eventName":"createuser","eventSource":"iam.amazonaws.com","sourceIPAddress":"198.51.100.1","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/ab","accessKeyId":"AKIAEXAMPLE2"},"requestParameters":{"userName":"xzy","maxItems":"50"}}"#,
        r#"{"eventTime":"2026-11-20T10:00:00Z","eventName":"ListUsers","eventSource":"iam.amazonaws.com","sourceIPAddress":"203.0.113.9","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/r/s"},"errorCode":"AccessDenied"}"#,
        r#"{"eventTime":"2026-11-20T10:00:00Z","eventName":"AssumeRole","eventSource":"sts.amazonaws.com","sourceIPAddress":"lambda.amazonaws.com","userIdentity":{"type":"AWSService","invokedBy":"lambda.amazonaws.com"}}"#,
        r#"{"eventTime":"2026-11-20T10:00:00Z","eventName":"AssumeRole","eventSource":"sts.amazonaws.com","sourceIPAddress":"203.0.113.9","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/ab","accessKeyId":"AKIAEXAMPLE2"},"requestParameters":{"userName":"C:\\x"}}"#,
    ];

    /// The rule keeps every event the conditions keep (and, for pushable conditions, only those).
    fn same_as_where(wheres: &[&str], names: &[&str]) -> Vec<bool> {
        let conditions: Vec<Condition> = wheres.iter().map(|w| Condition::parse(w).expect("condition")).collect();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let set = events(&conditions, &names).expect("pushed down");
        EVENTS
            .iter()
            .map(|text| {
                let local = conditions.iter().all(|c| c.matches(&record(text)))
                    && (names.is_empty() || names.iter().any(|n| record(text).event_name.eq_ignore_ascii_case(n)));
                assert_eq!(matches(&set, text), local, "{wheres:?} {names:?} on {text}");
                local
            })
            .collect()
    }

    #[test]
    fn where_conditions_become_a_rule_that_keeps_exactly_their_events() {
        assert_eq!(
            same_as_where(&["eventName=createuser"], &[]),
            [true, true, false, false, false]
        );
        assert_eq!(
            same_as_where(&["userIdentity.arn=arn:aws:iam::1:user/a*b"], &[]),
            [true, false, false, false, false],
            "a * after = is a character, not a wildcard"
        );
        assert_eq!(
            same_as_where(&["requestParameters.userName~x?y"], &[]),
            [true, true, false, false, false]
        );
        assert_eq!(
            same_as_where(&["requestParameters.userName=c:\\x"], &[]),
            [false, false, false, false, true]
        );
        assert_eq!(
            same_as_where(&["errorCode!=accessdenied"], &[]),
            [true, true, false, true, true]
        );
        assert_eq!(
            same_as_where(&["requestParameters.maxItems>=6"], &[]),
            [false, true, false, false, false]
        );
        assert_eq!(
            same_as_where(
                &["sourceIPAddress~203.*", "requestParameters.maxItems<10"],
                &["CreateUser", "ListUsers"]
            ),
            [true, false, false, false, false]
        );
    }

    #[test]
    fn what_cannot_be_pushed_down_is_left_to_the_local_filter() {
        let derived = [Condition::parse("trailhound.src.country=DE").expect("c")];
        assert!(events(&derived, &[]).is_none(), "a derived field alone: every row");
        let mixed = [
            Condition::parse("trailhound.src.country=DE").expect("c"),
            Condition::parse("eventName=CreateUser").expect("c"),
            Condition::parse("requestParameters.userName=ÿ").expect("c"),
        ];
        let set = events(&mixed, &[]).expect("the plain condition is pushed down");
        assert!(matches(&set, EVENTS[0]) && matches(&set, EVENTS[1]) && !matches(&set, EVENTS[2]));
        assert!(events(&[], &[]).is_none());
        let whole = [
            Condition::parse("userIdentity=x").expect("c"),
            Condition::parse("eventName=CreateUser").expect("c"),
        ];
        let set = events(&whole, &[]).expect("the condition with a SQL form is pushed down");
        assert!(
            set.rules()
                .iter()
                .all(|r| sql::where_clause(r, sql::Dialect::Athena).is_ok()),
            "the whole struct stays local"
        );
        assert!(matches(&set, EVENTS[0]) && !matches(&set, EVENTS[2]));
        assert!(timeline_events(&["AKIAÿ"], &[], &[]).is_none());
        let many: Vec<String> = (0..5000).map(|n| format!("ASIA{n:016}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(
            timeline_events(&many, &[], &[]).is_none(),
            "too many keys for one query's text"
        );
        assert!(timeline_events(&many[..100], &[], &[]).is_some());
    }

    #[test]
    fn the_timeline_passes_keep_the_hand_outs_and_events_of_who_is_followed() {
        let issuers = timeline_issuers(&["AssumeRole", "CreateAccessKey"], &[], &["198.51.100.1"]).expect("rule");
        let kept: Vec<bool> = EVENTS.iter().map(|t| matches(&issuers, t)).collect();
        // An AssumeRole by a service (no key) cannot start a hop.
        assert_eq!(kept, [false, false, false, false, true]);
        let follow = timeline_events(&["AKIAEXAMPLE1"], &[], &["203.0.113.9"]).expect("rule");
        let kept: Vec<bool> = EVENTS.iter().map(|t| matches(&follow, t)).collect();
        assert_eq!(kept, [true, false, true, false, true]);
        let by_arn = timeline_events(&[], &["arn:aws:iam::1:user/a*b"], &[]).expect("rule");
        let kept: Vec<bool> = EVENTS.iter().map(|t| matches(&by_arn, t)).collect();
        assert_eq!(kept, [true, false, false, false, false]);
    }
}
