//! A finding: what a rule or a check found, with the fields people slice on, and what it is
//! about (an event, a correlation window, an inventory item).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use trailhound_event::{Derived, Record};

use crate::level::Level;
use crate::reasons::Explanation;

/// What the finding's rule is, as a finding carries it.
#[derive(Debug, Clone, Copy)]
pub struct RuleInfo<'r> {
    pub id: &'r str,
    pub title: &'r str,
    pub level: Level,
    pub tags: &'r [String],
}

/// What a finding is about. An event finding's fields describe its record; a correlation
/// finding's fields describe the event that completed its window (see `correlation`); an item
/// finding (an inventory audit) is about a resource, not an event: its `event_name` is empty
/// (null in JSON) and `item` names the resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Subject {
    Event,
    Window,
    Item(ItemRef),
}

/// The inventory item an audit finding is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemRef {
    /// The inventory kind (`access_key`, `s3_bucket`, ...).
    pub kind: String,
    pub id: String,
    pub name: String,
}

/// The correlation types of the Sigma specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrelationKind {
    /// At least/most N matching events in the window.
    EventCount,
    /// At least/most N distinct values of a field in the window.
    ValueCount,
    /// All (or N of) the referenced rules match in the window, in any order.
    Temporal,
    /// All the referenced rules match in the window, in the order listed.
    TemporalOrdered,
    /// The sum of a numeric field over the window meets the condition.
    ValueSum,
    /// The average of a numeric field over the window meets the condition.
    ValueAvg,
    /// The share (in percent) of the window's events that carry the newest event's value of a
    /// field meets the condition: `lte: 1` finds a value seen in at most 1 % of the group's events.
    ValuePercentile,
}

impl CorrelationKind {
    /// The Sigma name (`event_count`, ...).
    pub fn name(self) -> &'static str {
        match self {
            CorrelationKind::EventCount => "event_count",
            CorrelationKind::ValueCount => "value_count",
            CorrelationKind::Temporal => "temporal",
            CorrelationKind::TemporalOrdered => "temporal_ordered",
            CorrelationKind::ValueSum => "value_sum",
            CorrelationKind::ValueAvg => "value_avg",
            CorrelationKind::ValuePercentile => "value_percentile",
        }
    }

    /// Whether the condition compares a count (a whole number) rather than a measure.
    pub fn counts(self) -> bool {
        !matches!(
            self,
            CorrelationKind::ValueSum | CorrelationKind::ValueAvg | CorrelationKind::ValuePercentile
        )
    }
}

/// Extra facts a correlation finding carries.
#[derive(Debug, Clone, Serialize)]
pub struct CorrelationInfo {
    #[serde(rename = "type")]
    pub kind: CorrelationKind,
    /// The count that met the condition (events, distinct values, or rules seen); for the value
    /// kinds, the measure rounded down.
    pub count: u64,
    /// For value_sum, value_avg and value_percentile: the measure that met the condition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Group-by field -> value.
    pub group: BTreeMap<String, String>,
    pub first_time: String,
    pub last_time: String,
    /// Events in the window.
    pub events: u64,
    /// The `eventID`s of the window's events, in time order: all of them up to
    /// [`MAX_EVENT_IDS`], else the first and the last halves of that many (the last is the
    /// event that completed the window). What `events --where eventID=...` pivots on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub event_ids: Vec<String>,
}

/// Most event ids a correlation finding lists (see [`CorrelationInfo::event_ids`]).
pub const MAX_EVENT_IDS: usize = 100;

/// The stable finding shape of the README, "Output". Field names are a contract with users' scripts.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub rule_id: String,
    pub rule_title: String,
    pub level: Level,
    pub tags: Vec<String>,
    pub event_id: Option<String>,
    pub event_time: String,
    /// Empty for a finding about an inventory item (written as null).
    #[serde(serialize_with = "empty_as_null")]
    pub event_name: String,
    pub event_source: String,
    pub aws_region: Option<String>,
    pub account_id: Option<String>,
    pub principal_arn: Option<String>,
    pub principal_type: Option<String>,
    pub access_key_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub error_code: Option<String>,
    pub source_file: String,
    /// With `--store`: the finding's id in the case store (for `findings ack ID`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_id: Option<i64>,
    /// When a known reason explains the finding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Box<Explanation>>,
    /// With `--group`: how many findings this one stands for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<Box<GroupInfo>>,
    /// For a correlation: what was counted, in which group and window. The other fields then
    /// describe the event that completed the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation: Option<Box<CorrelationInfo>>,
    /// For an inventory audit: the item the finding is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<Box<ItemRef>>,
    /// The `trailhound.` fields derived for the event (where the call came from, who made it,
    /// what was new for them), written as one nested object: `{"src": {...}, "principal":
    /// {...}, "baseline": {...}}`.
    #[serde(
        rename = "trailhound",
        skip_serializing_if = "Option::is_none",
        serialize_with = "derived_json"
    )]
    pub context: Option<Box<Derived>>,
    /// The whole record, with `--with-event`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<Box<RawValue>>,
    /// The event time, for sorting.
    #[serde(skip)]
    pub time: DateTime<Utc>,
}

impl Finding {
    /// The contract fields, in order (the README, "Output").
    pub const FIELDS: [&'static str; 17] = [
        "rule_id",
        "rule_title",
        "level",
        "tags",
        "event_id",
        "event_time",
        "event_name",
        "event_source",
        "aws_region",
        "account_id",
        "principal_arn",
        "principal_type",
        "access_key_id",
        "source_ip",
        "user_agent",
        "error_code",
        "source_file",
    ];

    /// A finding of `rule` about one record.
    pub fn new(rule: RuleInfo<'_>, record: &Record<'_>, source_file: &str, with_event: bool) -> Finding {
        let owned = |v: &Option<std::borrow::Cow<'_, str>>| v.as_deref().map(str::to_string);
        // A CloudTrail Insights event names the call it is about in its details only.
        let (event_name, event_source) = record
            .insight_subject()
            .unwrap_or_else(|| (record.event_name.to_string(), record.event_source.to_string()));
        Finding {
            rule_id: rule.id.to_string(),
            rule_title: rule.title.to_string(),
            level: rule.level,
            tags: rule.tags.to_vec(),
            event_id: owned(&record.event_id),
            event_time: record.time.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            event_name,
            event_source,
            aws_region: owned(&record.aws_region),
            account_id: record.account_id().map(str::to_string),
            principal_arn: owned(&record.identity.arn),
            principal_type: owned(&record.identity.kind),
            access_key_id: owned(&record.identity.access_key_id),
            source_ip: owned(&record.source_ip),
            user_agent: owned(&record.user_agent),
            error_code: owned(&record.error_code),
            source_file: source_file.to_string(),
            store_id: None,
            explanation: None,
            group: None,
            correlation: None,
            item: None,
            context: record.derived().filter(|d| !d.is_empty()).map(|d| Box::new(d.clone())),
            event: with_event.then(|| compact(record.raw())),
            time: record.time,
        }
    }

    /// What the finding is about.
    pub fn subject(&self) -> Subject {
        match (&self.item, &self.correlation) {
            (Some(item), _) => Subject::Item(ItemRef::clone(item)),
            (None, Some(_)) => Subject::Window,
            (None, None) => Subject::Event,
        }
    }

    /// What a person reads in an EVENT column: the event name, or the item's kind and id.
    pub fn what(&self) -> String {
        match &self.item {
            Some(item) => format!("{} {}", item.kind, item.id),
            None => self.event_name.clone(),
        }
    }

    /// Where the call came from, in words, from the derived fields: `AS64500 Example Net, DE`,
    /// `AWS EC2 us-east-1`, `AWS service ec2.amazonaws.com`, `VPC endpoint`, `private address`.
    /// `None` when nothing is known beyond the address itself.
    pub fn origin(&self) -> Option<String> {
        origin_of(self.context.as_deref()?)
    }

    /// What baselines found new for the principal or key, in words (`new network, new
    /// country`, `key idle 120 days`); `None` when nothing was.
    pub fn novelty(&self) -> Option<String> {
        use trailhound_event::DerivedField as F;
        let d = self.context.as_deref()?;
        let mut parts: Vec<String> = [
            (F::BaselineNewNetwork, "new network"),
            (F::BaselineNewCountry, "new country"),
            (F::BaselineKeyNewNetwork, "key from a new network"),
            (F::BaselineKeyNewCountry, "key from a new country"),
            (F::BaselineNewRegion, "new region"),
            (F::BaselineNewService, "new service"),
        ]
        .iter()
        .filter(|(field, _)| d.flag(*field) == Some(true))
        .map(|(_, words)| words.to_string())
        .collect();
        for (field, what) in [(F::BaselineKeyIdleDays, "key"), (F::BaselineRoleIdleDays, "role")] {
            if let Some(days) = d.number(field).filter(|&days| days >= 30) {
                parts.push(format!("{what} idle {days} days"));
            }
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// What was normal for the principal or key (`trailhound.baseline.normal`), when something
    /// was new.
    pub fn normal(&self) -> Option<&str> {
        self.context
            .as_deref()?
            .text(trailhound_event::DerivedField::BaselineNormal)
    }

    /// What makes two findings the same finding across runs (and deliveries): the rule with the
    /// event id; for a correlation, its group and the window's first time; for a grouped finding,
    /// who and the group's first time; without an event id, the event's time, name, caller and
    /// file stand in for it.
    pub fn key(&self) -> String {
        if let Some(c) = &self.correlation {
            let group: Vec<String> = c.group.iter().map(|(k, v)| format!("{k}={v}")).collect();
            return format!(
                "{}\u{1f}correlation\u{1f}{}\u{1f}{}",
                self.rule_id,
                group.join(","),
                c.first_time
            );
        }
        if let Some(g) = &self.group {
            let who = self
                .principal_arn
                .as_deref()
                .or(self.access_key_id.as_deref())
                .or(self.source_ip.as_deref())
                .unwrap_or("");
            return format!("{}\u{1f}group\u{1f}{who}\u{1f}{}", self.rule_id, g.first_time);
        }
        match &self.event_id {
            Some(id) => format!("{}\u{1f}{id}", self.rule_id),
            None => format!(
                "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
                self.rule_id,
                self.event_time,
                self.event_name,
                self.principal_arn.as_deref().unwrap_or(""),
                self.source_file
            ),
        }
    }

    /// A stable identifier of [`Finding::key`]: 32 hex digits of its SHA-256, the same for the
    /// same finding in every run (OCSF `finding_info.uid`, Security Hub finding ids).
    pub fn uid(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.key().as_bytes());
        digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }

    /// Sort key: time, then rule, then event id, so output is stable across runs.
    pub fn sort_key(&self) -> (DateTime<Utc>, &str, Option<&str>) {
        (self.time, &self.rule_id, self.event_id.as_deref())
    }
}

/// Where a call came from, in words, from its derived fields (see [`Finding::origin`]).
pub fn origin_of(d: &Derived) -> Option<String> {
    use trailhound_event::DerivedField as F;
    if d.flag(F::SrcAws) == Some(true) {
        let service = d.text(F::SrcAwsService);
        return Some(match (d.text(F::SrcNetwork), service, d.text(F::SrcAwsRegion)) {
            (Some("vpc"), _, _) => "VPC endpoint".to_string(),
            (_, Some(service), _) if service.contains('.') => format!("AWS service {service}"),
            (_, Some(service), Some(region)) => format!("AWS {service} {region}"),
            (_, Some(service), None) => format!("AWS {service}"),
            _ => "AWS".to_string(),
        });
    }
    if d.flag(F::SrcPrivate) == Some(true) {
        return Some("private address".to_string());
    }
    let mut parts = Vec::new();
    match (d.number(F::SrcAsn), d.text(F::SrcAsOrg)) {
        (Some(asn), Some(org)) => parts.push(format!("AS{asn} {org}")),
        (Some(asn), None) => parts.push(format!("AS{asn}")),
        _ => {}
    }
    if let Some(country) = d.text(F::SrcCountry) {
        parts.push(country.to_string());
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn derived_json<S: serde::Serializer>(derived: &Option<Box<Derived>>, serializer: S) -> Result<S::Ok, S::Error> {
    match derived {
        Some(derived) => derived_object(derived).serialize(serializer),
        None => serializer.serialize_none(),
    }
}

/// Derived fields as one nested object, `trailhound.` left out: `{"src": {"asn": 64500}}`.
pub fn derived_object(derived: &Derived) -> serde_json::Value {
    let mut object = serde_json::Map::new();
    for (field, value) in derived.iter() {
        let name = field.name().strip_prefix("trailhound.").unwrap_or(field.name());
        let (group, key) = name.split_once('.').unwrap_or(("", name));
        let slot = object
            .entry(group.to_string())
            .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
        if let serde_json::Value::Object(map) = slot {
            map.insert(key.to_string(), value.to_json());
        }
    }
    serde_json::Value::Object(object)
}

fn empty_as_null<S: serde::Serializer>(text: &str, serializer: S) -> Result<S::Ok, S::Error> {
    if text.is_empty() {
        serializer.serialize_none()
    } else {
        serializer.serialize_str(text)
    }
}

/// The record on one line, whatever its layout in the file.
fn compact(raw: &str) -> Box<RawValue> {
    let text = trailhound_event::compact_json(raw);
    // The scanner checked the record is JSON; should that ever be wrong, carry it as a string.
    RawValue::from_string(text)
        .or_else(|_| serde_json::value::to_raw_value(raw))
        .unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// What a grouped finding stands for.
#[derive(Debug, Clone, Serialize)]
pub struct GroupInfo {
    pub count: u64,
    pub first_time: String,
    pub last_time: String,
    /// The `eventID`s of the findings folded into this one, in time order, as
    /// [`CorrelationInfo::event_ids`] lists a window's: all up to [`MAX_EVENT_IDS`], else the
    /// first and the last halves of that many.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub event_ids: Vec<String>,
}

/// Folds the findings of one rule by one principal within one time bucket into the first of
/// them, with a count and the first and last times: 500 AuthorizeSecurityGroupIngress calls by
/// one role in an hour read as one finding. `findings` must be sorted by time; so is the result.
pub fn group_findings(findings: Vec<Finding>, bucket: Duration) -> Vec<Finding> {
    let seconds = bucket.num_seconds().max(1);
    let mut groups: BTreeMap<(String, String, i64), usize> = BTreeMap::new();
    let mut out: Vec<Finding> = Vec::new();
    // The latest event ids of each group past its first half (`out`'s index -> ring).
    let mut tails: BTreeMap<usize, std::collections::VecDeque<String>> = BTreeMap::new();
    let half = MAX_EVENT_IDS / 2;
    for finding in findings {
        let who = finding
            .principal_arn
            .clone()
            .or_else(|| finding.access_key_id.clone())
            .or_else(|| finding.source_ip.clone())
            .unwrap_or_default();
        let key = (
            finding.rule_id.clone(),
            who,
            finding.time.timestamp().div_euclid(seconds),
        );
        match groups.get(&key) {
            Some(&index) => {
                let first = &mut out[index];
                if let Some(group) = first.group.as_mut() {
                    group.count += 1;
                    group.last_time = finding.event_time.clone();
                    if let Some(id) = finding.event_id {
                        if group.event_ids.len() < half {
                            group.event_ids.push(id);
                        } else {
                            let tail = tails.entry(index).or_default();
                            if tail.len() == MAX_EVENT_IDS - half {
                                tail.pop_front();
                            }
                            tail.push_back(id);
                        }
                    }
                }
            }
            None => {
                groups.insert(key, out.len());
                let mut first = finding;
                first.group = Some(Box::new(GroupInfo {
                    count: 1,
                    first_time: first.event_time.clone(),
                    last_time: first.event_time.clone(),
                    event_ids: first.event_id.iter().cloned().collect(),
                }));
                out.push(first);
            }
        }
    }
    for (index, tail) in tails {
        if let Some(group) = out.get_mut(index).and_then(|f| f.group.as_mut()) {
            group.event_ids.extend(tail);
        }
    }
    out
}
