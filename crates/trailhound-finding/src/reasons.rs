//! Known reasons: the `reasons.yml` file that explains expected findings and inventory items.
//!
//! Every entry has a `match` map (every key given must match; values are globs with `*` and `?`),
//! a `reason`, usually a `ticket`, and optionally an `expires` date after which it stops matching.
//! Hunts use the entries of `kind: finding`; inventory audits use the others. This module only
//! parses and matches: it reads no files and prints nothing.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value as Yaml;

use crate::finding::Finding;

/// The inventory kinds an entry may name, plus `finding`.
pub const KINDS: [&str; 19] = [
    "finding",
    "iam_user",
    "iam_group",
    "iam_role",
    "access_key",
    "iam_policy",
    "vpc",
    "subnet",
    "vpn_gateway",
    "customer_gateway",
    "internet_gateway",
    "nat_gateway",
    "route_table",
    "network_acl",
    "security_group",
    "vpc_peering",
    "flow_log",
    "s3_bucket",
    "trail",
];

/// Finding fields an entry may match on: the contract fields but the lists, and `rule` as short
/// for `rule_id`.
fn finding_field_allowed(key: &str) -> bool {
    key == "rule" || (key != "tags" && Finding::FIELDS.contains(&key))
}

/// A known reason, as attached to what it explains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub reason: String,
    pub ticket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<NaiveDate>,
}

/// One entry of the file.
#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: String,
    /// (key, glob) pairs, all of which must match.
    pub conditions: Vec<(String, String)>,
    pub explanation: Explanation,
    /// 1-based line of the entry in the file.
    pub line: usize,
}

/// A parsed reasons file.
#[derive(Debug, Clone, Default)]
pub struct Reasons {
    pub entries: Vec<Entry>,
}

/// A reasons file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ReasonsError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    #[serde(rename = "match")]
    conditions: serde_yaml_ng::Mapping,
    reason: String,
    #[serde(default)]
    ticket: Option<Yaml>,
    #[serde(default)]
    expires: Option<Yaml>,
}

/// How deep `[` and `{` may nest in a reasons file (real ones nest two or three levels).
const MAX_NESTING: usize = 128;

impl Reasons {
    /// Parses the text of a reasons file named `file`.
    pub fn parse(file: &str, text: &str) -> Result<Reasons, ReasonsError> {
        let fail = |line: usize, message: String| ReasonsError {
            file: file.to_string(),
            line,
            message,
        };
        // Before the YAML reader, whose scanner is quadratic in flow nesting.
        if let Some(line) = trailhound_event::flow_nesting_beyond(text, MAX_NESTING) {
            return Err(fail(line, format!("nested deeper than {MAX_NESTING} levels")));
        }
        let raw: Vec<Yaml> = match serde_yaml_ng::from_str::<Option<Vec<Yaml>>>(text) {
            Ok(list) => list.unwrap_or_default(),
            Err(err) => {
                let line = err.location().map_or(1, |l| l.line());
                return Err(fail(
                    line,
                    format!("not a list of reasons: {}", strip_location(&err.to_string())),
                ));
            }
        };
        let starts = entry_lines(text);
        let mut entries = Vec::new();
        for (index, value) in raw.into_iter().enumerate() {
            let line = starts.get(index).copied().unwrap_or(1);
            let entry: RawEntry = serde_yaml_ng::from_value(value).map_err(|err| {
                fail(
                    line,
                    format!("entry {}: {}", index + 1, strip_location(&err.to_string())),
                )
            })?;
            let mut kind = None;
            let mut conditions = Vec::new();
            for (key, value) in &entry.conditions {
                let key = key
                    .as_str()
                    .ok_or_else(|| fail(line, "match keys must be strings".into()))?;
                let value = scalar(value).ok_or_else(|| fail(line, format!("match.{key} must be a single value")))?;
                if key == "kind" {
                    kind = Some(value);
                } else {
                    conditions.push((key.to_string(), value));
                }
            }
            let kind =
                kind.ok_or_else(|| fail(line, "match has no kind (finding, iam_user, access_key, ...)".into()))?;
            if !KINDS.contains(&kind.as_str()) {
                return Err(fail(
                    line,
                    format!("unknown kind {kind:?} (one of {})", KINDS.join(", ")),
                ));
            }
            if kind == "finding"
                && let Some((key, _)) = conditions.iter().find(|(k, _)| !finding_field_allowed(k))
            {
                let fields: Vec<&str> = Finding::FIELDS
                    .iter()
                    .copied()
                    .filter(|f| finding_field_allowed(f))
                    .collect();
                return Err(fail(
                    line,
                    format!("a finding has no field {key:?} (rule, {})", fields.join(", ")),
                ));
            }
            if conditions.is_empty() {
                return Err(fail(line, "match must name something besides the kind".into()));
            }
            let expires = match &entry.expires {
                None => None,
                Some(value) => {
                    let text = scalar(value).unwrap_or_default();
                    Some(
                        NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                            .map_err(|_| fail(line, format!("expires {text:?} is not a date (YYYY-MM-DD)")))?,
                    )
                }
            };
            let ticket = entry.ticket.as_ref().and_then(scalar);
            entries.push(Entry {
                kind,
                conditions,
                explanation: Explanation {
                    reason: entry.reason,
                    ticket,
                    expires,
                },
                line,
            });
        }
        Ok(Reasons { entries })
    }

    /// Entries whose `expires` date is before `today`: they explain nothing any more.
    pub fn expired(&self, today: NaiveDate) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(move |e| e.explanation.expires.is_some_and(|d| d < today))
    }

    /// The first live entry of `kind` whose conditions all hold; `field` gives an item's values.
    pub fn explain(
        &self,
        kind: &str,
        today: NaiveDate,
        field: &dyn Fn(&str) -> Option<String>,
    ) -> Option<&Explanation> {
        self.entries
            .iter()
            .filter(|e| e.kind == kind && e.explanation.expires.is_none_or(|d| d >= today))
            .find(|e| {
                e.conditions
                    .iter()
                    .all(|(key, pattern)| field(key).is_some_and(|value| glob(pattern, &value)))
            })
            .map(|e| &e.explanation)
    }

    /// The explanation for a finding, if any.
    pub fn explain_finding(&self, finding: &Finding, today: NaiveDate) -> Option<&Explanation> {
        self.explain("finding", today, &|key| finding_field(finding, key))
    }
}

fn finding_field(f: &Finding, key: &str) -> Option<String> {
    let text = |v: &Option<String>| v.clone();
    match key {
        "rule" | "rule_id" => Some(f.rule_id.clone()),
        "rule_title" => Some(f.rule_title.clone()),
        "level" => Some(f.level.to_string()),
        "event_id" => text(&f.event_id),
        "event_name" => Some(f.event_name.clone()),
        "event_source" => Some(f.event_source.clone()),
        "aws_region" => text(&f.aws_region),
        "account_id" => text(&f.account_id),
        "principal_arn" => text(&f.principal_arn),
        "principal_type" => text(&f.principal_type),
        "access_key_id" => text(&f.access_key_id),
        "source_ip" => text(&f.source_ip),
        "user_agent" => text(&f.user_agent),
        "error_code" => text(&f.error_code),
        "source_file" => Some(f.source_file.clone()),
        _ => None,
    }
}

/// A YAML error message without serde_yaml's " at line L column C" (the line is reported apart).
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

fn scalar(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        Yaml::Tagged(t) => scalar(&t.value),
        _ => None,
    }
}

/// 1-based lines where top-level list items start (`- ` in column 0).
fn entry_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("- ") || *l == "-")
        .map(|(i, _)| i + 1)
        .collect()
}

pub use trailhound_event::query::glob;

#[cfg(test)]
mod tests {
    use super::*;

    /// A reasons entry with 100,000 levels of brackets (minutes in the YAML scanner) is refused
    /// at once with its line.
    #[test]
    fn deeply_nested_brackets_are_refused_before_the_yaml_reader() {
        let text = format!("- match: {}{}\n  reason: r\n", "[".repeat(100_000), "]".repeat(100_000));
        let err = Reasons::parse("reasons.yml", &text).expect_err("refused");
        assert_eq!(err.line, 1);
        assert!(err.to_string().contains("nested deeper than 128 levels"), "{err}");
    }

    const FILE: &str = r#"# known reasons
- match:
    kind: iam_user
    name: "ci-deploy-*"
  reason: CI deploy users
  ticket: OPS-123
  expires: 2027-01-31
- match:
    kind: finding
    rule: aws-signin-console-login
    principal_arn: "arn:aws:iam::*:user/alice"
  reason: alice uses the console for billing
  ticket: SEC-9
- match:
    kind: finding
    rule: aws-iam-user-created
  reason: old onboarding
  expires: 2020-01-01
"#;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn parses_and_matches_with_globs_and_expiry() {
        let reasons = Reasons::parse("reasons.yml", FILE).expect("valid");
        assert_eq!(reasons.entries.len(), 3);
        assert_eq!(reasons.entries.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 8, 14]);
        let today = day("2026-11-28");
        let user = |name: &'static str| move |key: &str| (key == "name").then(|| name.to_string());
        assert_eq!(
            reasons
                .explain("iam_user", today, &user("ci-deploy-prod"))
                .map(|e| e.ticket.clone()),
            Some(Some("OPS-123".into()))
        );
        assert!(reasons.explain("iam_user", today, &user("backup-svc")).is_none());
        assert!(
            reasons
                .explain("iam_user", day("2027-02-01"), &user("ci-deploy-prod"))
                .is_none(),
            "expired"
        );
        assert_eq!(reasons.expired(today).count(), 1);
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            (
                "- match: {kind: finding, rule: x}\n  reason: r\n- match: {kind: finding, who: x}\n  reason: r\n",
                3,
                "no field \"who\"",
            ),
            ("- match: {kind: dragon, name: x}\n  reason: r\n", 1, "unknown kind"),
            ("- match: {rule: x}\n  reason: r\n", 1, "no kind"),
            ("- match: {kind: finding, rule: x}\n", 1, "reason"),
            (
                "- match: {kind: finding, rule: x}\n  reason: r\n  expires: soon\n",
                1,
                "not a date",
            ),
            (
                "- match: {kind: finding, rule: x}\n  reason: r\n  tikcet: T\n",
                1,
                "tikcet",
            ),
            ("- match: [unclosed\n", 2, "not a list"),
            ("just text", 1, "not a list"),
        ];
        for (text, line, message) in cases {
            let err = Reasons::parse("r.yml", text).expect_err(text);
            assert_eq!(err.line, line, "{text}: {err}");
            assert!(err.message.contains(message), "{text}: {err}");
            assert!(err.to_string().starts_with(&format!("r.yml:{line}: ")));
        }
        assert!(Reasons::parse("r.yml", "").expect("empty is fine").entries.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn hostile_reasons_files_never_panic(text in "[-a-z:{}\\[\\]\"'*?,\n 0-9]{0,160}") {
            let _ = Reasons::parse("r.yml", &text);
            let _ = Reasons::parse("r.yml", &format!("{FILE}{text}"));
        }
    }

    #[test]
    fn globs() {
        assert!(glob(
            "arn:aws:iam::*:user/alice",
            "arn:aws:iam::111122223333:user/alice"
        ));
        assert!(!glob(
            "arn:aws:iam::*:user/alice",
            "arn:aws:iam::111122223333:user/alice2"
        ));
        assert!(glob("ci-?", "ci-1") && !glob("ci-?", "ci-12"));
        assert!(glob("*", "") && glob("a*b*c", "aXbYc") && !glob("a*b*c", "aXbY"));
        let long = "a".repeat(2000);
        assert!(!glob(&"*a".repeat(50).to_string().replace("*a*a", "*a*b"), &long));
    }
}
