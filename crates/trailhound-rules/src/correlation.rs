//! Sigma correlation rules: counts, distinct values and sequences over time windows.
//!
//! A correlation refers to base rules. While records stream past, every base-rule match that
//! feeds a correlation is kept as a compact [`Entry`] under its correlation and group key. Once the
//! scan is over, each group's entries are sorted by event time and swept with a sliding window.
//! Sorting at the end is what makes the result independent of the order files arrive in (workers
//! read files in parallel, so events reach the state out of time order); the sweep evicts entries
//! as the window moves on, and the state in between holds only base-rule matches, not records.
//!
//! The state is bounded in memory, not in entries: every evaluator over one rule set charges an
//! estimate of what it holds (entries, groups and their keys, interned strings) to the set's
//! [`Budget`] (default [`DEFAULT_CORRELATION_MEMORY`]). An evaluator that finds the budget
//! exceeded forgets its own oldest groups (those whose latest match is oldest) until the total is
//! back under three quarters of the limit; the matches forgotten are counted and reported, never
//! lost silently. Interned strings no live match uses are released as well.
//!
//! Also here: the legacy aggregation form (`condition: sel | count() by F > 5` with `timeframe`)
//! that older SigmaHQ rules use, compiled into the same correlation machinery.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use serde_yaml_ng::Value as Yaml;
use trailhound_event::{FieldPath, Record};

use crate::error::CompileError;
use crate::rule::Rule;
use trailhound_finding::{CorrelationInfo, Finding, MAX_EVENT_IDS};

pub use trailhound_finding::CorrelationKind as Kind;

/// A comparison against a count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
    Neq,
}

impl Op {
    fn holds(self, count: f64, limit: f64) -> bool {
        match self {
            Op::Gt => count > limit,
            Op::Gte => count >= limit,
            Op::Lt => count < limit,
            Op::Lte => count <= limit,
            Op::Eq => count == limit,
            Op::Neq => count != limit,
        }
    }

    fn parse(text: &str) -> Option<Op> {
        Some(match text {
            "gt" | ">" => Op::Gt,
            "gte" | ">=" => Op::Gte,
            "lt" | "<" => Op::Lt,
            "lte" | "<=" => Op::Lte,
            "eq" | "=" | "==" => Op::Eq,
            "neq" | "!=" => Op::Neq,
            _ => return None,
        })
    }
}

/// Every comparison of a condition must hold (`gt: 100, lte: 200` is a range).
pub(crate) fn holds(condition: &[(Op, f64)], value: f64) -> bool {
    condition.iter().all(|(op, limit)| op.holds(value, *limit))
}

/// A compiled correlation, before its rule references are resolved by the rule set.
#[derive(Debug, Clone)]
pub struct Correlation {
    pub kind: Kind,
    /// Referenced rules by name or id; empty for legacy aggregations (their bases are inline).
    pub rules: Vec<String>,
    /// Group-by field names (aliases or paths).
    pub group_by: Vec<String>,
    /// `alias -> (rule reference -> path)`.
    pub aliases: BTreeMap<String, BTreeMap<String, String>>,
    /// `None`: the whole scan is one window.
    pub timespan: Option<Duration>,
    /// Comparisons that must all hold; empty for temporal kinds without a condition (every
    /// referenced rule must match).
    pub condition: Vec<(Op, f64)>,
    /// For value_count and the value kinds: the field whose values are counted or summed.
    pub field: Option<String>,
    /// Whether the referenced rules also report their own matches.
    pub generate: bool,
}

impl Correlation {
    /// Parses the `correlation:` block of a correlation rule.
    pub fn parse(block: &Yaml) -> Result<Correlation, CompileError> {
        let kind = match block.get("type").and_then(Yaml::as_str) {
            Some("event_count") => Kind::EventCount,
            Some("value_count") => Kind::ValueCount,
            Some("temporal") => Kind::Temporal,
            Some("temporal_ordered") => Kind::TemporalOrdered,
            Some("value_sum") => Kind::ValueSum,
            Some("value_avg") => Kind::ValueAvg,
            Some("value_percentile") => Kind::ValuePercentile,
            Some(other) => {
                return Err(CompileError::at(
                    "type",
                    format!(
                        "correlation type {other:?} is not supported (event_count, value_count, value_sum, value_avg, value_percentile, temporal, temporal_ordered)"
                    ),
                ));
            }
            None => return Err(CompileError::at("correlation", "correlation has no type")),
        };
        let strings = |key: &str| -> Vec<String> {
            match block.get(key) {
                Some(Yaml::Sequence(items)) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
                Some(Yaml::String(s)) => vec![s.clone()],
                _ => Vec::new(),
            }
        };
        let rules = strings("rules");
        if rules.is_empty() {
            return Err(CompileError::at("rules", "correlation refers to no rules"));
        }
        let timespan = match block.get("timespan") {
            Some(Yaml::String(text)) => Some(parse_timespan(text).ok_or_else(|| {
                CompileError::at(
                    "timespan",
                    format!("timespan {text:?} is not a duration (30s, 10m, 1h, 1d)"),
                )
            })?),
            Some(_) => return Err(CompileError::at("timespan", "timespan must be a duration such as 10m")),
            None => return Err(CompileError::at("correlation", "correlation has no timespan")),
        };
        let mut condition = Vec::new();
        let mut field = None;
        match block.get("condition") {
            None => {}
            Some(Yaml::Mapping(map)) => {
                for (key, value) in map {
                    let key = key.as_str().unwrap_or_default();
                    if key == "field" {
                        field = Some(
                            value
                                .as_str()
                                .map(str::to_string)
                                .ok_or_else(|| CompileError::at("field", "condition.field must be a field name"))?,
                        );
                        continue;
                    }
                    let op = Op::parse(key)
                        .ok_or_else(|| CompileError::at("condition", format!("unknown condition operator {key:?}")))?;
                    let limit = value.as_f64().filter(|l| l.is_finite()).ok_or_else(|| {
                        CompileError::at("condition", format!("condition {key}: {value:?} is not a number"))
                    })?;
                    if kind.counts() && (limit < 0.0 || limit.fract() != 0.0) {
                        return Err(CompileError::at(
                            "condition",
                            format!("condition {key}: {limit} is not a count (a whole number)"),
                        ));
                    }
                    condition.push((op, limit));
                }
            }
            Some(_) => {
                return Err(CompileError::at(
                    "condition",
                    "condition must be a map such as {gte: 10}",
                ));
            }
        }
        let needs_field = matches!(
            kind,
            Kind::ValueCount | Kind::ValueSum | Kind::ValueAvg | Kind::ValuePercentile
        );
        if condition.is_empty() && !matches!(kind, Kind::Temporal | Kind::TemporalOrdered) {
            return Err(CompileError::at(
                "condition",
                format!("{} needs a condition such as gte: 10", kind.name()),
            ));
        }
        if needs_field && field.is_none() {
            return Err(CompileError::at(
                "condition",
                format!("{} needs condition.field", kind.name()),
            ));
        }
        if !needs_field && field.is_some() {
            return Err(CompileError::at(
                "field",
                format!("{} counts no field: condition.field is not allowed", kind.name()),
            ));
        }
        if kind == Kind::ValuePercentile && condition.iter().any(|(_, l)| !(0.0..=100.0).contains(l)) {
            return Err(CompileError::at(
                "condition",
                "value_percentile compares a percentage: limits between 0 and 100",
            ));
        }
        let mut aliases = BTreeMap::new();
        if let Some(Yaml::Mapping(map)) = block.get("aliases") {
            for (alias, per_rule) in map {
                let alias = alias.as_str().unwrap_or_default().to_string();
                let Yaml::Mapping(per_rule) = per_rule else {
                    return Err(CompileError::at(
                        "aliases",
                        format!("alias {alias:?} must map rule names to fields"),
                    ));
                };
                let fields = per_rule
                    .iter()
                    .filter_map(|(r, f)| Some((r.as_str()?.to_string(), f.as_str()?.to_string())))
                    .collect();
                aliases.insert(alias, fields);
            }
        }
        let generate = block.get("generate").and_then(Yaml::as_bool).unwrap_or(false);
        Ok(Correlation {
            kind,
            rules,
            group_by: strings("group-by"),
            aliases,
            timespan,
            condition,
            field,
            generate,
        })
    }

    /// The legacy `| count(field) by a, b > 5` aggregation.
    pub fn legacy_count(text: &str, timeframe: Option<Duration>) -> Result<Correlation, CompileError> {
        let fail = || {
            CompileError::at(
                "condition",
                format!("cannot read aggregation {text:?} (expected count() [by FIELD] > N)"),
            )
        };
        let rest = text.trim().strip_prefix("count(").ok_or_else(fail)?;
        let (field, rest) = rest.split_once(')').ok_or_else(fail)?;
        let rest = rest.trim();
        let (group_by, rest) = match rest.strip_prefix("by ") {
            Some(rest) => {
                let at = rest.find(['<', '>', '=', '!']).ok_or_else(fail)?;
                let fields: Vec<String> = rest[..at]
                    .split(',')
                    .map(|f| f.trim().to_string())
                    .filter(|f| !f.is_empty())
                    .collect();
                if fields.is_empty() {
                    return Err(fail());
                }
                (fields, &rest[at..])
            }
            None => (Vec::new(), rest),
        };
        let at = rest.find(|c: char| c.is_ascii_digit()).ok_or_else(fail)?;
        let op = Op::parse(rest[..at].trim()).ok_or_else(fail)?;
        let limit: u64 = rest[at..].trim().parse().map_err(|_| fail())?;
        let field = Some(field.trim()).filter(|f| !f.is_empty()).map(str::to_string);
        Ok(Correlation {
            kind: if field.is_some() {
                Kind::ValueCount
            } else {
                Kind::EventCount
            },
            rules: Vec::new(),
            group_by,
            aliases: BTreeMap::new(),
            timespan: timeframe,
            condition: vec![(op, limit as f64)],
            field,
            generate: false,
        })
    }

    /// The legacy `a | near b` or timeframe-bound `a and b` sequence.
    pub fn legacy_temporal(timeframe: Option<Duration>) -> Correlation {
        Correlation {
            kind: Kind::Temporal,
            rules: Vec::new(),
            group_by: Vec::new(),
            aliases: BTreeMap::new(),
            timespan: timeframe,
            condition: Vec::new(),
            field: None,
            generate: false,
        }
    }
}

/// `30s`, `10m`, `1h`, `2d`, `1w`.
pub fn parse_timespan(text: &str) -> Option<Duration> {
    trailhound_event::parse_duration(text).filter(|d| *d > Duration::zero())
}

/// A correlation resolved against a rule set: what the sweep needs.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// Index of the correlation rule in the rule set.
    pub rule: usize,
    pub kind: Kind,
    pub timespan: Option<Duration>,
    pub condition: Vec<(Op, f64)>,
    /// Number of referenced rules (for temporal kinds).
    pub parts: usize,
    /// Group-by names, and per referenced rule the path of each.
    pub group_names: Vec<String>,
    pub group_paths: Vec<Vec<FieldPath>>,
    /// For value_count, per referenced rule.
    pub value_paths: Vec<Option<FieldPath>>,
    /// Per referenced rule that is itself a correlation (a chain): where each of this
    /// correlation's group-by values sits in the inner correlation's group key, and, for the
    /// value kinds, where the counted value sits.
    pub chained: Vec<Option<Chain>>,
    /// Correlations that refer to this one: (outer correlation, position among its rules).
    pub feeds: Vec<(usize, usize)>,
    /// Whether a window that fires is reported (false for a correlation another one refers
    /// to, unless it says `generate: true`).
    pub report: bool,
    /// 0 for correlations over detections; one more than the deepest correlation it refers to.
    pub rank: usize,
}

/// How an outer correlation reads an inner correlation's findings.
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    pub group: Vec<usize>,
    pub value: Option<usize>,
}

/// Strings many entries share (principals, regions, agents, files) are kept once.
#[derive(Debug, Default)]
struct Interner {
    ids: FxHashMap<Arc<str>, u32>,
    strings: Vec<Arc<str>>,
    /// Estimated bytes held (see [`STRING_OVERHEAD`]).
    bytes: usize,
}

/// Estimated bytes an interned string costs beyond its text: the shared allocation's counts and
/// the allocator's rounding, a map slot and a list slot, at the maps' worst load.
const STRING_OVERHEAD: usize = 144;

impl Interner {
    /// 0 stands for "no value".
    fn id(&mut self, text: Option<&str>) -> u32 {
        let Some(text) = text else { return 0 };
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        let text: Arc<str> = Arc::from(text);
        self.bytes += text.len() + STRING_OVERHEAD;
        self.strings.push(text.clone());
        let id = self.strings.len() as u32;
        self.ids.insert(text, id);
        id
    }

    /// The id of an interned string from another interner, sharing its text.
    fn shared(&mut self, text: &Arc<str>) -> u32 {
        if let Some(&id) = self.ids.get(&**text) {
            return id;
        }
        self.bytes += text.len() + STRING_OVERHEAD;
        self.strings.push(text.clone());
        let id = self.strings.len() as u32;
        self.ids.insert(text.clone(), id);
        id
    }

    fn get(&self, id: u32) -> Option<&str> {
        id.checked_sub(1)
            .and_then(|i| self.strings.get(i as usize))
            .map(|s| &**s)
    }
}

/// The finding fields of an entry's event, as interned strings.
const EVENT_FIELDS: usize = 11;

/// The value of a UUID in the canonical lower-case 8-4-4-4-12 form, the only form that
/// round-trips through a number (read without allocating: this runs for every event a
/// correlation counts).
fn uuid(id: &str) -> Option<u128> {
    let bytes = id.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let mut value: u128 = 0;
    for (at, &b) in bytes.iter().enumerate() {
        let digit = match b {
            b'-' if matches!(at, 8 | 13 | 18 | 23) => continue,
            _ if matches!(at, 8 | 13 | 18 | 23) => return None,
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        value = (value << 4) | u128::from(digit);
    }
    Some(value)
}

/// An event id: CloudTrail's are UUIDs, kept as 16 bytes; anything else is interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
enum EventId {
    None,
    Uuid(u128),
    Other(u32),
}

impl EventId {
    fn new(id: Option<&str>, strings: &mut Interner) -> EventId {
        let Some(id) = id else { return EventId::None };
        match uuid(id) {
            Some(value) => EventId::Uuid(value),
            None => EventId::Other(strings.id(Some(id))),
        }
    }

    fn text(self, strings: &Interner) -> Option<String> {
        match self {
            EventId::None => None,
            EventId::Uuid(value) => {
                let hex = format!("{value:032x}");
                Some(format!(
                    "{}-{}-{}-{}-{}",
                    &hex[..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..]
                ))
            }
            EventId::Other(id) => strings.get(id).map(str::to_string),
        }
    }
}

/// One base-rule match kept for a correlation: about 90 bytes, whatever the record's size.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Entry {
    time: DateTime<Utc>,
    /// value_count: hash of the counted value; temporal: which referenced rule matched.
    aux: u64,
    event_id: EventId,
    /// event_name, event_source, aws_region, account_id, principal_arn, principal_type,
    /// access_key_id, source_ip, user_agent, error_code, source_file.
    event: [u32; EVENT_FIELDS],
}

impl Entry {
    /// What orders matches of the same time: event id, source file, counted value.
    #[cfg(test)]
    fn tie_key<'s>(&self, strings: &'s Interner) -> (Option<String>, Option<&'s str>, u64) {
        (
            self.event_id.text(strings),
            strings.get(self.event[EVENT_FIELDS - 1]),
            self.aux,
        )
    }

    /// The order of [`Entry::tie_key`], without writing event ids out: two UUIDs' texts
    /// (fixed-width lower-case hex, dashes in the same places) order as their values.
    fn tie_cmp(&self, other: &Entry, strings: &Interner) -> std::cmp::Ordering {
        let ids = match (self.event_id, other.event_id) {
            (EventId::Uuid(a), EventId::Uuid(b)) => a.cmp(&b),
            (a, b) if a == b => std::cmp::Ordering::Equal,
            (a, b) => a.text(strings).cmp(&b.text(strings)),
        };
        ids.then_with(|| {
            strings
                .get(self.event[EVENT_FIELDS - 1])
                .cmp(&strings.get(other.event[EVENT_FIELDS - 1]))
        })
        .then_with(|| self.aux.cmp(&other.aux))
    }
}

/// The memory every evaluator over one rule set may hold for correlations, shared between them
/// (scan workers and the evaluator they merge into).
#[derive(Debug)]
pub struct Budget {
    limit: AtomicUsize,
    used: AtomicUsize,
}

/// The default bound on correlation state: 2 GiB for all evaluators of a rule set together.
pub const DEFAULT_CORRELATION_MEMORY: usize = 2 << 30;

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            limit: AtomicUsize::new(DEFAULT_CORRELATION_MEMORY),
            used: AtomicUsize::new(0),
        }
    }
}

impl Budget {
    /// The bound, in bytes.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Sets the bound, in bytes (at least 1 MiB); applies from the next match on.
    pub fn set_limit(&self, bytes: usize) {
        self.limit.store(bytes.max(MIN_CORRELATION_MEMORY), Ordering::Relaxed);
    }

    /// Estimated bytes held by all evaluators now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// The smallest bound accepted.
pub const MIN_CORRELATION_MEMORY: usize = 1 << 20;

/// Base-rule matches collected for correlations, per (correlation, group).
#[derive(Debug)]
pub struct CorrelationState {
    /// correlation -> group key -> entries.
    groups: FxHashMap<usize, FxHashMap<Box<str>, Group>>,
    strings: Interner,
    /// Entries held (pending and in windows).
    entries: usize,
    /// Estimated bytes of the groups (entries, keys, maps); strings are counted by the interner.
    group_bytes: usize,
    /// What this state has charged to the budget.
    charged: usize,
    budget: Arc<Budget>,
    /// Matches forgotten to stay within the budget, and the groups they were in.
    evicted: u64,
    evicted_groups: u64,
    /// Interned strings after the last compaction (see [`CorrelationState::compact`]).
    compacted_at: usize,
    /// Every event before this time has been seen (see [`CorrelationState::advance`]).
    swept_to: Option<DateTime<Utc>>,
    /// Matches that arrived after the sweep had passed their time.
    late: u64,
    /// Reused buffers: this runs for every base-rule match.
    key: String,
    values: Vec<u64>,
    /// The record being observed (see [`CorrelationState::next_record`]) and, once a match of
    /// it was added, its event id and interned fields: a record that several correlations count
    /// is interned once. Cleared whenever ids change meaning (compaction, merge).
    record: u64,
    interned: Option<(u64, EventId, EventFields)>,
}

/// The interned fields every entry keeps of its event.
type EventFields = [u32; 11];

/// One group of one correlation: matches not swept yet (in any order), and the sweep's window.
#[derive(Debug, Default)]
struct Group {
    pending: Vec<Entry>,
    window: VecDeque<Entry>,
    /// Counts of each `aux` in the window (distinct values, or rules seen).
    distinct: FxHashMap<u64, u32>,
    /// value_sum and value_avg: the sum of the window's values.
    sum: f64,
    /// What only long or unordered windows need (most groups hold a few matches: one pointer).
    long: Option<Box<Long>>,
}

/// What a window keeps once it is long (past [`SCAN`] matches) or out of time order; dropped
/// when the window empties.
#[derive(Debug, Default)]
struct Long {
    /// What tells the window's matches apart ([`Group::seen`]), once checking a match against
    /// them one by one would have meant looking at more than [`SCAN`] of them; kept up to date
    /// from then on.
    index: Option<FxHashSet<Seen>>,
    /// temporal_ordered: the window's ordered prefix, kept up to date as matches come and go.
    ordered: Option<Ordered>,
    /// Whether the window holds a match earlier than one before it (a late or merged match):
    /// then a copy of a match may be anywhere in it, not only among the last ones.
    unsorted: bool,
}

/// What makes two matches of a group copies of one another: the same time, event and counted
/// value.
type Seen = (DateTime<Utc>, EventId, u64);

/// The most matches of a window a new match is compared with one by one before the window is
/// indexed, and the longest temporal_ordered window measured in a pass: a burst of thousands
/// of events in one second (or many matches delivered late) would otherwise cost a look at each
/// of the others, for each of them.
const SCAN: usize = 32;

/// Estimated bytes a group costs beyond its key's text and its entries: the map slot (at the
/// map's worst load) and the allocator's rounding of its four allocations.
const GROUP_OVERHEAD: usize = 2 * std::mem::size_of::<(Box<str>, Group)>() + 128;

impl Group {
    /// Estimated bytes held by the group under `key`.
    fn bytes(&self, key: &str) -> usize {
        GROUP_OVERHEAD
            + key.len()
            + (self.pending.capacity() + self.window.capacity()) * std::mem::size_of::<Entry>()
            + self.distinct.capacity() * (std::mem::size_of::<(u64, u32)>() + 1)
            + self.long.as_deref().map_or(0, |long| {
                std::mem::size_of::<Long>()
                    + long
                        .index
                        .as_ref()
                        .map_or(0, |index| index.capacity() * (std::mem::size_of::<Seen>() + 1))
                    + long.ordered.as_ref().map_or(0, Ordered::bytes)
            })
    }

    fn long(&mut self) -> &mut Long {
        self.long.get_or_insert_with(Box::default)
    }

    /// The time of its latest match.
    fn latest(&self) -> Option<DateTime<Utc>> {
        self.pending.iter().chain(&self.window).map(|e| e.time).max()
    }
}

/// At most this many entries are kept at once, whatever the memory bound; beyond, the oldest
/// groups are forgotten as for the memory bound.
pub const MAX_ENTRIES: usize = 20_000_000;

impl Default for CorrelationState {
    fn default() -> CorrelationState {
        CorrelationState::new(Arc::default())
    }
}

impl Drop for CorrelationState {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.charged, Ordering::Relaxed);
    }
}

impl CorrelationState {
    /// Records that referenced rule `part` of correlation `index` matched `record`; false once
    /// the state is full.
    pub(crate) fn add(
        &mut self,
        index: usize,
        resolved: &Resolved,
        part: usize,
        record: &Record<'_>,
        source: &str,
    ) -> bool {
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        for (i, path) in resolved.group_paths.get(part).into_iter().flatten().enumerate() {
            if i > 0 {
                key.push('\u{1f}');
            }
            record.visit(path, &mut |value| {
                if let Some(text) = value.text() {
                    key.push_str(&text);
                }
                true
            });
        }
        let (event_id, event) = match self.interned {
            Some((seen, event_id, event)) if seen == self.record && self.record != 0 => (event_id, event),
            _ => {
                let event_id = EventId::new(record.event_id.as_deref(), &mut self.strings);
                // Records one after another mostly share their source file, account, region,
                // caller and user agent: a field equal to the last interned record's takes its id
                // without hashing.
                let previous = self.interned.map(|(_, _, event)| event);
                let identity = &record.identity;
                let texts: [Option<&str>; EVENT_FIELDS] = [
                    Some(&record.event_name),
                    Some(&record.event_source),
                    record.aws_region.as_deref(),
                    record.account_id(),
                    identity.arn.as_deref(),
                    identity.kind.as_deref(),
                    identity.access_key_id.as_deref(),
                    record.source_ip.as_deref(),
                    record.user_agent.as_deref(),
                    record.error_code.as_deref(),
                    Some(source),
                ];
                let strings = &mut self.strings;
                let event = std::array::from_fn(|at| {
                    let known = previous.map_or(0, |p| p[at]);
                    match texts[at] {
                        Some(text) if known != 0 && strings.get(known) == Some(text) => known,
                        text => strings.id(text),
                    }
                });
                self.interned = Some((self.record, event_id, event));
                (event_id, event)
            }
        };
        let mut values = std::mem::take(&mut self.values);
        values.clear();
        match resolved.kind {
            Kind::ValueCount | Kind::ValuePercentile => {
                // Every value counts: a list (GetParameters' names) adds each of its elements.
                if let Some(Some(path)) = resolved.value_paths.get(part) {
                    record.visit(path, &mut |v| {
                        if let Some(text) = v.text() {
                            values.push(hash(&text));
                        }
                        false
                    });
                }
                values.sort_unstable();
                values.dedup();
            }
            Kind::ValueSum | Kind::ValueAvg => {
                // Each number of the field (a list adds each element); text that is not a number
                // adds nothing, as a missing field adds nothing to value_count.
                if let Some(Some(path)) = resolved.value_paths.get(part) {
                    record.visit(path, &mut |v| {
                        let number = v
                            .number()
                            .or_else(|| v.text().and_then(|t| t.trim().parse::<f64>().ok()));
                        if let Some(n) = number.filter(|n| n.is_finite()) {
                            values.push(n.to_bits());
                        }
                        false
                    });
                }
            }
            _ => values.push(part as u64),
        }
        if self.swept_to.is_some_and(|w| record.time < w) {
            self.late += 1;
        }
        let groups = self.groups.entry(index).or_default();
        let (group, before) = match groups.get_mut(key.as_str()) {
            Some(group) => {
                let before = group.bytes(&key);
                (group, before)
            }
            None => (groups.entry(key.as_str().into()).or_default(), 0),
        };
        for &aux in &values {
            group.pending.push(Entry {
                time: record.time,
                aux,
                event_id,
                event,
            });
        }
        self.group_bytes = self.group_bytes.saturating_sub(before) + group.bytes(&key);
        self.entries += values.len();
        self.key = key;
        self.values = values;
        self.charge();
        true
    }

    /// Folds another worker's state into this one.
    pub fn merge(&mut self, mut other: CorrelationState) {
        self.interned = None;
        let groups = std::mem::take(&mut other.groups);
        let strings = std::mem::take(&mut other.strings);
        let (entries, late) = (other.entries, other.late);
        self.evicted += other.evicted;
        self.evicted_groups += other.evicted_groups;
        // The other state's charge moves here with its groups.
        drop(other);
        let remap: Vec<u32> = strings.strings.iter().map(|s| self.strings.id(Some(s))).collect();
        let map = |id: u32| {
            id.checked_sub(1)
                .and_then(|i| remap.get(i as usize))
                .copied()
                .unwrap_or(0)
        };
        for (index, by_key) in groups {
            for (key, group) in by_key {
                let target = self.groups.entry(index).or_default().entry(key).or_default();
                target
                    .pending
                    .extend(group.pending.into_iter().chain(group.window).map(|mut entry| {
                        for id in &mut entry.event {
                            *id = map(*id);
                        }
                        if let EventId::Other(id) = entry.event_id {
                            entry.event_id = EventId::Other(map(id));
                        }
                        entry
                    }));
            }
        }
        self.entries += entries;
        self.late += late;
        self.recount();
    }

    /// An empty state charging `budget`.
    pub(crate) fn new(budget: Arc<Budget>) -> CorrelationState {
        CorrelationState {
            groups: FxHashMap::default(),
            strings: Interner::default(),
            entries: 0,
            group_bytes: 0,
            charged: 0,
            budget,
            evicted: 0,
            evicted_groups: 0,
            compacted_at: 0,
            swept_to: None,
            late: 0,
            key: String::new(),
            values: Vec::new(),
            record: 0,
            interned: None,
        }
    }

    /// The matches added from now on are of another record (the evaluator calls this before
    /// each record it observes).
    pub(crate) fn next_record(&mut self) {
        self.record = self.record.wrapping_add(1);
    }

    /// Estimated bytes held.
    pub fn bytes(&self) -> usize {
        self.group_bytes + self.strings.bytes
    }

    /// Matches forgotten to stay within the memory bound, and the groups they were in.
    pub fn evicted(&self) -> (u64, u64) {
        (self.evicted, self.evicted_groups)
    }

    /// Counts entries and bytes afresh (after a sweep or a merge), then charges the budget.
    fn recount(&mut self) {
        self.measure();
        self.charge();
    }

    /// Counts entries and group bytes afresh.
    fn measure(&mut self) {
        let (mut entries, mut bytes) = (0, 0);
        for group_map in self.groups.values() {
            for (key, group) in group_map {
                entries += group.pending.len() + group.window.len();
                bytes += group.bytes(key);
            }
        }
        self.entries = entries;
        self.group_bytes = bytes;
    }

    /// Brings this state's charge to the budget up to date, and keeps within the bound.
    fn charge(&mut self) {
        self.recharge();
        if self.budget.used() > self.budget.limit() || self.entries > MAX_ENTRIES {
            self.shrink();
        }
    }

    /// Brings this state's charge to the budget up to date.
    fn recharge(&mut self) {
        let now = self.bytes();
        if now >= self.charged {
            self.budget.used.fetch_add(now - self.charged, Ordering::Relaxed);
        } else {
            self.budget.used.fetch_sub(self.charged - now, Ordering::Relaxed);
        }
        self.charged = now;
    }

    /// Forgets this state's oldest groups (by their latest match) until all evaluators together
    /// hold at most three quarters of the bound, or (when others hold most of it) until this one
    /// has halved and all are within the bound, or this one holds nothing more. Counted.
    fn shrink(&mut self) {
        // The strings' share is projected (see `evict_oldest`): when that was optimistic, another
        // round finishes the job.
        for _ in 0..3 {
            self.evict_oldest();
            let over = self.budget.used() > self.budget.limit() || self.entries > MAX_ENTRIES;
            if !over || self.groups.is_empty() {
                break;
            }
        }
    }

    /// One round of [`CorrelationState::shrink`].
    fn evict_oldest(&mut self) {
        let limit = self.budget.limit();
        let (target, margin) = (limit - limit / 4, limit - limit / 16);
        let cap = MAX_ENTRIES - MAX_ENTRIES / 4;
        let others = self.budget.used().saturating_sub(self.charged);
        let half = self.charged / 2;
        let fits = |own: usize, entries: usize| {
            (others + own <= target || (own <= half && others + own <= margin)) && entries <= cap
        };
        // Strings go when no entry uses them any more: project them as shrinking with the
        // entries, and compact once the groups are gone.
        let (entries, strings) = (self.entries.max(1) as u128, self.strings.bytes as u128);
        let mut ages: Vec<(Option<DateTime<Utc>>, usize, usize)> = self
            .groups
            .values()
            .flat_map(|by_key| {
                by_key
                    .iter()
                    .map(|(key, g)| (g.latest(), g.bytes(key), g.pending.len() + g.window.len()))
            })
            .collect();
        ages.sort_unstable_by_key(|age| age.0);
        let (mut group_bytes, mut left) = (self.group_bytes, self.entries);
        let mut cutoff = None;
        for (latest, bytes, held) in ages {
            let own = group_bytes + (strings * left as u128 / entries) as usize;
            if fits(own, left) {
                break;
            }
            group_bytes = group_bytes.saturating_sub(bytes);
            left = left.saturating_sub(held);
            cutoff = Some(latest);
        }
        if let Some(cutoff) = cutoff {
            let (mut evicted, mut groups) = (0, 0);
            for by_key in self.groups.values_mut() {
                by_key.retain(|_, g| {
                    let keep = g.latest() > cutoff;
                    if !keep {
                        evicted += (g.pending.len() + g.window.len()) as u64;
                        groups += 1;
                    }
                    keep
                });
            }
            self.groups.retain(|_, by_key| !by_key.is_empty());
            self.evicted += evicted;
            self.evicted_groups += groups;
        }
        self.compact();
        self.measure();
        self.recharge();
    }

    /// Keeps only the interned strings live entries still use (the interner otherwise keeps every
    /// string it ever saw, for the whole run).
    fn compact(&mut self) {
        self.interned = None;
        // The old map goes first: the texts are shared, so only the new map and list are extra.
        let Interner { ids, strings: old, .. } = std::mem::take(&mut self.strings);
        drop(ids);
        // Old id -> new id (0: not seen yet; ids start at 1).
        let mut remap = vec![0u32; old.len() + 1];
        let strings = &mut self.strings;
        let mut map = |id: u32| -> u32 {
            let Some(slot) = remap.get_mut(id as usize).filter(|_| id != 0) else {
                return 0;
            };
            if *slot == 0 {
                *slot = old.get(id as usize - 1).map_or(0, |text| strings.shared(text));
            }
            *slot
        };
        for by_key in self.groups.values_mut() {
            for group in by_key.values_mut() {
                for entry in group.pending.iter_mut().chain(group.window.iter_mut()) {
                    for id in &mut entry.event {
                        *id = map(*id);
                    }
                    if let EventId::Other(id) = entry.event_id {
                        entry.event_id = EventId::Other(map(id));
                    }
                }
            }
        }
        self.compacted_at = self.strings.strings.len();
    }

    /// Matches held (not swept yet, or in an open window).
    pub fn held(&self) -> usize {
        self.entries
    }

    /// Matches that arrived after the sweep had passed their time (reported by callers: they
    /// mean CloudTrail delivered a file later than the delivery lag allows for).
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Sweeps every match before `watermark`, in time order, and forgets what no later window
    /// can use. Call it when every event before `watermark` has been seen; matches still pending
    /// wait for a later call. Returns the findings of the windows that fired.
    pub(crate) fn advance(
        &mut self,
        watermark: DateTime<Utc>,
        correlations: &[Resolved],
        rules: &[Rule],
    ) -> Vec<Finding> {
        let mut findings = Vec::new();
        // Inner correlations before the ones that refer to them: a window an inner one closes
        // is a match of the outer one, swept in the same call.
        let deepest = correlations.iter().map(|c| c.rank).max().unwrap_or(0);
        for rank in 0..=deepest {
            // Only groups with new matches can fire (a group gains matches from lower ranks
            // only, swept before its own rank's keys are listed).
            let mut keys: Vec<(usize, Box<str>)> = self
                .groups
                .iter()
                .filter(|(index, _)| correlations.get(**index).is_some_and(|c| c.rank == rank))
                .flat_map(|(index, by_key)| {
                    by_key
                        .iter()
                        .filter(|(_, g)| !g.pending.is_empty())
                        .map(move |(k, _)| (*index, k.clone()))
                })
                .collect();
            keys.sort();
            self.sweep(keys, watermark, correlations, rules, &mut findings);
        }
        // Every window ages (swept ones were trimmed already: trimming is idempotent); what is
        // left empty is forgotten.
        self.groups.retain(|index, by_key| {
            let span = correlations.get(*index).and_then(|c| c.timespan);
            by_key.retain(|_, g| {
                if let Some(span) = span {
                    g.trim(watermark, span);
                }
                !g.pending.is_empty() || !g.window.is_empty()
            });
            !by_key.is_empty()
        });
        self.swept_to = Some(self.swept_to.map_or(watermark, |w| w.max(watermark)));
        if self.strings.strings.len() > 2 * self.compacted_at.max(1024) {
            self.compact();
        }
        self.recount();
        findings
    }

    /// Sweeps the groups `keys` up to `watermark` (see [`CorrelationState::advance`]).
    fn sweep(
        &mut self,
        keys: Vec<(usize, Box<str>)>,
        watermark: DateTime<Utc>,
        correlations: &[Resolved],
        rules: &[Rule],
        findings: &mut Vec<Finding>,
    ) {
        for (index, key) in keys {
            let (Some(resolved), Some(group)) = (
                correlations.get(index),
                self.groups.get_mut(&index).and_then(|g| g.get_mut(&key)),
            ) else {
                continue;
            };
            let Some(rule) = rules.get(resolved.rule) else { continue };
            // Same-time matches in a fixed order, whatever order files were read in: the same
            // event delivered in two files (organization trails) completes a window the same way.
            // (The stable sort keeps the order of the matches before the watermark that a
            // partition would, and those after it wait, sorted, for a later sweep.)
            let strings = &self.strings;
            let mut ready = std::mem::take(&mut group.pending);
            ready.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.tie_cmp(b, strings)));
            group.pending = ready.split_off(ready.partition_point(|e| e.time < watermark));
            // One event counts once, however many files delivered it (an organization trail
            // and an account trail, a file read twice, a state continued by two runs); the
            // copy kept is the first in that fixed order. Copies are neighbours in it: same
            // time and event id, told apart by the counted value.
            let mut run: Option<(DateTime<Utc>, EventId)> = None;
            let mut run_values: Vec<u64> = Vec::new();
            let mut fired = Vec::new();
            for entry in ready {
                if entry.event_id != EventId::None {
                    if run != Some((entry.time, entry.event_id)) {
                        run = Some((entry.time, entry.event_id));
                        run_values.clear();
                    }
                    if run_values.contains(&entry.aux) {
                        continue;
                    }
                    run_values.push(entry.aux);
                }
                if let Some((measure, window)) = group.feed(resolved, entry) {
                    if resolved.report {
                        findings.push(correlation_finding(
                            rule,
                            resolved,
                            &key,
                            &window,
                            measure,
                            &self.strings,
                        ));
                    }
                    if let Some(last) = window.last() {
                        fired.push(*last);
                    }
                }
            }
            // Later matches are at or after the watermark: what is older than one timespan
            // before it can join no window.
            if let Some(span) = resolved.timespan {
                group.trim(watermark, span);
            }
            // A closed window is one match of each correlation that refers to this one, at the
            // time (and with the event) of its last match.
            for last in fired {
                for &(outer, part) in &resolved.feeds {
                    let Some(chain) = correlations
                        .get(outer)
                        .and_then(|c| c.chained.get(part))
                        .and_then(Option::as_ref)
                    else {
                        continue;
                    };
                    let values: Vec<&str> = key.split('\u{1f}').collect();
                    let outer_key: Vec<&str> = chain
                        .group
                        .iter()
                        .map(|&i| values.get(i).copied().unwrap_or_default())
                        .collect();
                    let aux = match chain.value {
                        Some(i) => hash(values.get(i).copied().unwrap_or_default()),
                        None => part as u64,
                    };
                    let target = self
                        .groups
                        .entry(outer)
                        .or_default()
                        .entry(outer_key.join("\u{1f}").into_boxed_str())
                        .or_default();
                    target.pending.push(Entry { aux, ..last });
                    self.entries += 1;
                }
            }
        }
    }

    /// Sweeps everything: the findings of every correlation, once all records have been seen.
    /// (Dropping the state afterwards returns its charge to the budget.)
    pub(crate) fn evaluate(mut self, correlations: &[Resolved], rules: &[Rule]) -> Vec<Finding> {
        self.advance(DateTime::<Utc>::MAX_UTC, correlations, rules)
    }
}

/// The saved form of a [`CorrelationState`]: groups name their correlation by rule id, so a
/// state saved by one run can be restored into a rule set that gained or lost rules.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    version: u32,
    strings: Vec<String>,
    swept_to: Option<DateTime<Utc>>,
    late: u64,
    groups: Vec<SavedGroup>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SavedGroup {
    correlation: String,
    key: String,
    pending: Vec<Entry>,
    window: Vec<Entry>,
}

const SAVED_VERSION: u32 = 1;

impl CorrelationState {
    /// The state as bytes (JSON), to be given back to [`CorrelationState::restore`].
    /// `ids` names each correlation index (the rule id of correlation `i` at `ids[i]`).
    pub(crate) fn save(&self, ids: &[&str]) -> Vec<u8> {
        let mut groups = Vec::new();
        for (index, by_key) in &self.groups {
            let Some(id) = ids.get(*index) else { continue };
            for (key, group) in by_key {
                groups.push(SavedGroup {
                    correlation: id.to_string(),
                    key: key.to_string(),
                    pending: group.pending.clone(),
                    window: group.window.iter().copied().collect(),
                });
            }
        }
        groups.sort_by(|a, b| (&a.correlation, &a.key).cmp(&(&b.correlation, &b.key)));
        let saved = Saved {
            version: SAVED_VERSION,
            strings: self.strings.strings.iter().map(|s| s.to_string()).collect(),
            swept_to: self.swept_to,
            late: self.late,
            groups,
        };
        serde_json::to_vec(&saved).unwrap_or_default()
    }

    /// A state from [`CorrelationState::save`]'s bytes. Groups of correlations `ids` no longer
    /// has are dropped (and counted in the second value).
    pub(crate) fn restore(
        bytes: &[u8],
        ids: &[&str],
        budget: Arc<Budget>,
    ) -> Result<(CorrelationState, usize), String> {
        let saved: Saved = serde_json::from_slice(bytes).map_err(|e| format!("not a saved correlation state: {e}"))?;
        if saved.version != SAVED_VERSION {
            return Err(format!(
                "saved correlation state version {} (this build reads {SAVED_VERSION})",
                saved.version
            ));
        }
        let mut state = CorrelationState::new(budget);
        state.swept_to = saved.swept_to;
        state.late = saved.late;
        for text in &saved.strings {
            state.strings.id(Some(text));
        }
        let limit = state.strings.strings.len() as u32;
        let valid = |entry: &Entry| {
            entry.event.iter().all(|&id| id <= limit) && !matches!(entry.event_id, EventId::Other(id) if id > limit)
        };
        let mut dropped = 0;
        for group in saved.groups {
            let Some(index) = ids.iter().position(|id| *id == group.correlation) else {
                dropped += 1;
                continue;
            };
            if !group.pending.iter().chain(&group.window).all(valid) {
                return Err(format!(
                    "saved group {} refers to strings it does not hold",
                    group.correlation
                ));
            }
            let target = state
                .groups
                .entry(index)
                .or_default()
                .entry(group.key.into_boxed_str())
                .or_default();
            for entry in &group.window {
                *target.distinct.entry(entry.aux).or_default() += 1;
                target.sum += f64::from_bits(entry.aux);
            }
            state.entries += group.pending.len() + group.window.len();
            target.pending.extend(group.pending);
            target.window.extend(group.window);
            if target
                .window
                .iter()
                .zip(target.window.iter().skip(1))
                .any(|(a, b)| a.time > b.time)
            {
                target.long().unsorted = true;
            }
        }
        // A state saved under a larger bound is brought within this one (and the loss counted).
        state.recount();
        Ok((state, dropped))
    }
}

impl Group {
    /// Forgets the matches more than `span` before `watermark`: every later match is at or
    /// after the watermark, so no window can hold them again.
    fn trim(&mut self, watermark: DateTime<Utc>, span: Duration) {
        // `watermark - time > span`, with the subtraction done once.
        let Some(cutoff) = watermark.checked_sub_signed(span) else {
            return;
        };
        while self.window.front().is_some_and(|e| e.time < cutoff) {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        let Some(old) = self.window.pop_front() else { return };
        self.sum -= f64::from_bits(old.aux);
        if self.window.is_empty() {
            // No drift from adding and subtracting floats: an empty window sums to zero.
            self.sum = 0.0;
            self.long = None;
        } else if let Some(long) = &mut self.long {
            if let Some(index) = &mut long.index {
                index.remove(&seen(&old));
            }
            if let Some(ordered) = &mut long.ordered {
                ordered.pop(old.aux);
            }
        }
        if let Some(n) = self.distinct.get_mut(&old.aux) {
            *n -= 1;
            if *n == 0 {
                self.distinct.remove(&old.aux);
            }
        }
    }

    /// Adds the next match in time order. When the window then meets the condition, returns the
    /// count and the window, and starts afresh: a burst is reported once, not once per event.
    fn feed(&mut self, resolved: &Resolved, entry: Entry) -> Option<(f64, Vec<Entry>)> {
        // The same event already in the window (delivered again in a later file, or held by
        // both of two merged states) counts once.
        if entry.event_id != EventId::None && self.seen(&entry) {
            return None;
        }
        let within = |start: &Entry| resolved.timespan.is_none_or(|span| entry.time - start.time <= span);
        *self.distinct.entry(entry.aux).or_default() += 1;
        self.sum += f64::from_bits(entry.aux);
        if let Some(long) = &mut self.long {
            if let Some(index) = long.index.as_mut().filter(|_| entry.event_id != EventId::None) {
                index.insert(seen(&entry));
            }
            if let Some(ordered) = &mut long.ordered {
                ordered.push(entry.time, entry.aux);
            }
        }
        if self.window.back().is_some_and(|back| back.time > entry.time) {
            self.long().unsorted = true;
        }
        self.window.push_back(entry);
        while self.window.len() > 1 && self.window.front().is_some_and(|e| !within(e)) {
            self.pop_front();
        }
        let measure = match resolved.kind {
            Kind::EventCount => self.window.len() as f64,
            Kind::ValueCount | Kind::Temporal => self.distinct.len() as f64,
            // A short window is measured in one pass; a long one is kept measured.
            Kind::TemporalOrdered => match self.long.as_deref().and_then(|long| long.ordered.as_ref()) {
                Some(ordered) => ordered.prefix() as f64,
                None if self.window.len() <= SCAN => ordered_prefix(self.window.make_contiguous()) as f64,
                None => {
                    let ordered = Ordered::new(resolved.parts, &self.window);
                    let prefix = ordered.prefix();
                    self.long().ordered = Some(ordered);
                    prefix as f64
                }
            },
            Kind::ValueSum => self.sum,
            Kind::ValueAvg => self.sum / self.window.len() as f64,
            Kind::ValuePercentile => {
                let same = self.distinct.get(&entry.aux).copied().unwrap_or(0);
                100.0 * f64::from(same) / self.window.len() as f64
            }
        };
        let met = if resolved.condition.is_empty() {
            measure >= resolved.parts as f64
        } else {
            holds(&resolved.condition, measure)
        };
        if !met {
            return None;
        }
        self.distinct.clear();
        self.sum = 0.0;
        self.long = None;
        Some((measure, self.window.drain(..).collect()))
    }

    /// Whether the window holds a copy of `entry`. A window in time order holds copies only
    /// among its last matches, those of the same time; one that took a late or merged match
    /// (or a late match itself) needs a look at every match. Up to [`SCAN`] matches are
    /// compared one by one; past that the window is indexed, so a check costs the same however
    /// many matches share a second.
    fn seen(&mut self, entry: &Entry) -> bool {
        if let Some(index) = self.long.as_deref().and_then(|long| long.index.as_ref()) {
            return index.contains(&seen(entry));
        }
        let same = |e: &Entry| e.time == entry.time && e.event_id == entry.event_id && e.aux == entry.aux;
        let late = self.long.as_deref().is_some_and(|long| long.unsorted)
            || self.window.back().is_some_and(|back| back.time > entry.time);
        let mut looked = 0;
        let found = if late {
            self.window.iter().take(SCAN + 1).inspect(|_| looked += 1).any(same)
        } else {
            self.window
                .iter()
                .rev()
                .take_while(|e| e.time == entry.time)
                .take(SCAN + 1)
                .inspect(|_| looked += 1)
                .any(same)
        };
        if found || looked <= SCAN {
            return found;
        }
        let index: FxHashSet<Seen> = self
            .window
            .iter()
            .filter(|e| e.event_id != EventId::None)
            .map(seen)
            .collect();
        let found = index.contains(&seen(entry));
        self.long().index = Some(index);
        found
    }
}

fn seen(entry: &Entry) -> Seen {
    (entry.time, entry.event_id, entry.aux)
}

/// [`ordered_prefix`] of a window, kept up to date as matches join it at the back and leave it
/// at the front, so that a match costs a few steps over the rules instead of a pass over the
/// window (a window of a hundred thousand matches that never completes the sequence would cost
/// a pass for each of them).
///
/// The window is a queue of runs of one time ([`Run`]). The sequence's progress over one run is
/// a step function (how far `next` gets from each starting point), and over the window the
/// composition of the runs' steps, kept as a two-stack queue: the runs at the front, front-most
/// on top, each with the composition of itself and those below it (later ones); the runs at the
/// back, in order, with the composition of all but the last. A run leaving the front changes the
/// top only; a match joining the last run changes that run only; when the front stack is empty,
/// all runs but the last move to it, each once.
#[derive(Debug)]
struct Ordered {
    parts: usize,
    front: Vec<(Run, Vec<u32>)>,
    back: Vec<Run>,
    /// The composition of the back runs but the last (the identity when there is one or none).
    back_rest: Vec<u32>,
}

/// The matches of one time in a row of the window: how many of each rule (those of a rule the
/// correlation does not have are counted in `len` only).
#[derive(Debug)]
struct Run {
    time: DateTime<Utc>,
    counts: Vec<u32>,
    len: u32,
}

impl Run {
    fn new(time: DateTime<Utc>, parts: usize) -> Run {
        Run {
            time,
            counts: vec![0; parts],
            len: 0,
        }
    }

    /// How far the sequence gets over this run from `next`.
    fn step(&self, mut next: u32) -> u32 {
        while self.counts.get(next as usize).is_some_and(|&n| n > 0) {
            next += 1;
        }
        next
    }

    /// [`Run::step`] from every starting point.
    fn steps(&self) -> Vec<u32> {
        (0..=self.counts.len() as u32).map(|next| self.step(next)).collect()
    }

    fn add(&mut self, aux: u64) {
        if let Some(n) = usize::try_from(aux).ok().and_then(|at| self.counts.get_mut(at)) {
            *n += 1;
        }
        self.len += 1;
    }

    fn remove(&mut self, aux: u64) {
        if let Some(n) = usize::try_from(aux).ok().and_then(|at| self.counts.get_mut(at)) {
            *n = n.saturating_sub(1);
        }
        self.len = self.len.saturating_sub(1);
    }
}

/// `first`, then `then`.
fn compose(first: &[u32], then: &[u32]) -> Vec<u32> {
    first
        .iter()
        .map(|&next| then.get(next as usize).copied().unwrap_or(next))
        .collect()
}

impl Ordered {
    fn new(parts: usize, window: &VecDeque<Entry>) -> Ordered {
        let mut ordered = Ordered {
            parts,
            front: Vec::new(),
            back: Vec::new(),
            back_rest: Ordered::identity(parts),
        };
        for entry in window {
            ordered.push(entry.time, entry.aux);
        }
        ordered
    }

    fn identity(parts: usize) -> Vec<u32> {
        (0..=parts as u32).collect()
    }

    /// A match at the back of the window.
    fn push(&mut self, time: DateTime<Utc>, aux: u64) {
        match self.back.last_mut() {
            Some(last) if last.time == time => last.add(aux),
            _ => {
                if let Some(last) = self.back.last() {
                    self.back_rest = compose(&self.back_rest, &last.steps());
                }
                let mut run = Run::new(time, self.parts);
                run.add(aux);
                self.back.push(run);
            }
        }
    }

    /// The match at the front of the window leaves it.
    fn pop(&mut self, aux: u64) {
        if self.front.is_empty() && self.back.len() > 1 {
            let last = self.back.pop();
            for run in self.back.drain(..).rev() {
                let steps = match self.front.last() {
                    Some((_, later)) => compose(&run.steps(), later),
                    None => run.steps(),
                };
                self.front.push((run, steps));
            }
            self.back.extend(last);
            self.back_rest = Ordered::identity(self.parts);
        }
        if let Some((top, _)) = self.front.last_mut() {
            top.remove(aux);
            if top.len == 0 {
                self.front.pop();
            } else {
                let steps = top.steps();
                let at = self.front.len() - 1;
                let steps = match at.checked_sub(1).and_then(|below| self.front.get(below)) {
                    Some((_, later)) => compose(&steps, later),
                    None => steps,
                };
                if let Some(top) = self.front.last_mut() {
                    top.1 = steps;
                }
            }
        } else if let Some(only) = self.back.first_mut() {
            only.remove(aux);
            if only.len == 0 {
                self.back.clear();
            }
        }
    }

    /// [`ordered_prefix`] of the window.
    fn prefix(&self) -> u64 {
        let next = self
            .front
            .last()
            .map_or(0, |(_, steps)| steps.first().copied().unwrap_or(0));
        let next = self.back_rest.get(next as usize).copied().unwrap_or(next);
        let next = self.back.last().map_or(next, |last| last.step(next));
        u64::from(next)
    }

    /// Estimated bytes held.
    fn bytes(&self) -> usize {
        let run = std::mem::size_of::<Run>() + 4 * self.parts;
        std::mem::size_of::<Ordered>()
            + self.front.capacity() * (run + std::mem::size_of::<Vec<u32>>() + 4 * (self.parts + 1))
            + self.back.capacity() * run
            + 4 * (self.parts + 1)
    }
}

fn hash(text: &str) -> u64 {
    use std::hash::Hasher;
    let mut hasher = FxHasher::default();
    hasher.write(text.as_bytes());
    hasher.finish()
}

/// How many of the rules, in their order, occur in sequence in the window. Events of the same
/// second are unordered (scripts make several calls a second, and records of one second come in
/// no particular order), so each second is taken as a set. (What [`Ordered`] keeps up to date.)
fn ordered_prefix(window: &[Entry]) -> u64 {
    let mut next = 0u64;
    for same_time in window.chunk_by(|a, b| a.time == b.time) {
        while same_time.iter().any(|e| e.aux == next) {
            next += 1;
        }
    }
    next
}

/// The ids of a window's events (see [`CorrelationInfo::event_ids`]): events without one are
/// passed over, and a window of more than [`MAX_EVENT_IDS`] gives its first and last halves.
fn window_event_ids(window: &[Entry], strings: &Interner) -> Vec<String> {
    let ids = || window.iter().filter(|e| e.event_id != EventId::None);
    let count = ids().count();
    let half = MAX_EVENT_IDS / 2;
    let picked: Vec<&Entry> = if count <= MAX_EVENT_IDS {
        ids().collect()
    } else {
        ids().take(half).chain(ids().skip(count - half)).collect()
    };
    picked.into_iter().filter_map(|e| e.event_id.text(strings)).collect()
}

fn correlation_finding(
    rule: &Rule,
    resolved: &Resolved,
    key: &str,
    window: &[Entry],
    measure: f64,
    strings: &Interner,
) -> Finding {
    let last = &window[window.len() - 1];
    let text = |i: usize| strings.get(last.event[i]).map(str::to_string);
    let values: Vec<&str> = if resolved.group_names.is_empty() {
        Vec::new()
    } else {
        key.split('\u{1f}').collect()
    };
    let group = resolved
        .group_names
        .iter()
        .cloned()
        .zip(values.iter().map(|v| v.to_string()))
        .collect();
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    Finding {
        rule_id: rule.id.clone(),
        rule_title: rule.title.clone(),
        level: rule.level,
        tags: rule.tags.clone(),
        event_id: last.event_id.text(strings),
        event_time: time(last.time),
        event_name: text(0).unwrap_or_default(),
        event_source: text(1).unwrap_or_default(),
        aws_region: text(2),
        account_id: text(3),
        principal_arn: text(4),
        principal_type: text(5),
        access_key_id: text(6),
        source_ip: text(7),
        user_agent: text(8),
        error_code: text(9),
        source_file: text(10).unwrap_or_default(),
        store_id: None,
        explanation: None,
        group: None,
        correlation: Some(Box::new(CorrelationInfo {
            kind: resolved.kind,
            count: if measure.is_finite() && measure > 0.0 {
                measure as u64
            } else {
                0
            },
            value: (!resolved.kind.counts()).then_some(measure),
            group,
            first_time: time(window[0].time),
            last_time: time(last.time),
            events: window.len() as u64,
            event_ids: window_event_ids(window, strings),
        })),
        item: None,
        context: None,
        event: None,
        time: last.time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Yaml {
        serde_yaml_ng::from_str(text).expect("yaml")
    }

    #[test]
    fn parses_the_spec_forms() {
        let c = Correlation::parse(&yaml(
            "type: event_count\nrules: [a]\ngroup-by: [userIdentity.arn]\ntimespan: 10m\ncondition: {gte: 10}",
        ))
        .expect("ok");
        assert_eq!(
            (c.kind, c.condition, c.timespan),
            (Kind::EventCount, vec![(Op::Gte, 10.0)], Duration::try_minutes(10))
        );
        let c = Correlation::parse(&yaml(
            "type: value_count\nrules: a\ntimespan: 1h\ncondition: {field: eventName, gt: 20}\ngenerate: true",
        ))
        .expect("ok");
        assert_eq!((c.field.as_deref(), c.generate), (Some("eventName"), true));
        let c = Correlation::parse(&yaml("type: temporal_ordered\nrules: [a, b]\ntimespan: 5m\naliases: {who: {a: userIdentity.arn, b: requestParameters.userName}}\ngroup-by: [who]")).expect("ok");
        assert_eq!(c.aliases["who"]["b"], "requestParameters.userName");
        let c = Correlation::parse(&yaml(
            "type: value_avg\nrules: [a]\ntimespan: 1h\ncondition: {field: bytes, gt: 0.5, lte: 200}",
        ))
        .expect("ok");
        assert_eq!(
            (c.kind, c.condition),
            (Kind::ValueAvg, vec![(Op::Gt, 0.5), (Op::Lte, 200.0)])
        );
        for bad in [
            "type: nope\nrules: [a]\ntimespan: 1m",
            "type: event_count\nrules: [a]\ntimespan: 1m",
            "type: event_count\ntimespan: 1m\ncondition: {gt: 1}",
            "type: value_count\nrules: [a]\ntimespan: 1m\ncondition: {gt: 1}",
            "type: event_count\nrules: [a]\ntimespan: soon\ncondition: {gt: 1}",
            "type: event_count\nrules: [a]\ntimespan: 1m\ncondition: {about: 1}",
            "type: event_count\nrules: [a]\ntimespan: 1m\ncondition: {gte: 1.5}",
            "type: value_sum\nrules: [a]\ntimespan: 1m\ncondition: {gte: 10}",
            "type: value_percentile\nrules: [a]\ntimespan: 1m\ncondition: {field: x, lte: 101}",
            "type: event_count\nrules: [a]\ntimespan: 1m\ncondition: {field: x, gte: 1}",
        ] {
            assert!(Correlation::parse(&yaml(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn event_ids_round_trip() {
        let mut strings = Interner::default();
        for id in [
            "8d3105d2-deb7-429c-b618-ce433350ee38",
            "00000000-0000-0000-0000-000000000000",
            "8D3105D2-DEB7-429C-B618-CE433350EE38",
            "test-rule-1-0",
            "8d3105d2deb7429cb618ce433350ee38abcd",
            // 32 hex digits and four dashes, not where a UUID has them: kept as written.
            "8d3105d2d-eb7-429c-b618-ce433350ee38",
        ] {
            assert_eq!(EventId::new(Some(id), &mut strings).text(&strings).as_deref(), Some(id));
        }
        assert!(EventId::new(None, &mut strings).text(&strings).is_none());
    }

    #[test]
    fn a_finding_lists_its_window_event_ids_bounded() {
        let mut strings = Interner::default();
        let entry = |id: Option<String>, strings: &mut Interner| Entry {
            time: DateTime::<Utc>::UNIX_EPOCH,
            aux: 0,
            event_id: EventId::new(id.as_deref(), strings),
            event: [0; EVENT_FIELDS],
        };
        let id = |i: usize| format!("00000000-0000-0000-0000-{i:012}");
        // Events without an id are passed over.
        let window: Vec<Entry> = (0..5).map(|i| entry((i != 2).then(|| id(i)), &mut strings)).collect();
        assert_eq!(window_event_ids(&window, &strings), [id(0), id(1), id(3), id(4)]);
        // A long window gives its first and last halves, in order.
        let window: Vec<Entry> = (0..MAX_EVENT_IDS + 50)
            .map(|i| entry(Some(id(i)), &mut strings))
            .collect();
        let ids = window_event_ids(&window, &strings);
        let half = MAX_EVENT_IDS / 2;
        let expected: Vec<String> = (0..half).chain(100..MAX_EVENT_IDS + 50).map(id).collect();
        assert_eq!((ids.len(), ids), (MAX_EVENT_IDS, expected));
    }

    #[test]
    fn ties_order_as_their_written_keys() {
        let mut strings = Interner::default();
        let ids = [
            None,
            Some("8d3105d2-deb7-429c-b618-ce433350ee38"),
            Some("8d3105d2-deb7-429c-b618-ce433350ee39"),
            Some("00000000-0000-0000-0000-000000000000"),
            Some("ffffffff-ffff-ffff-ffff-ffffffffffff"),
            Some("8D3105D2-DEB7-429C-B618-CE433350EE38"),
            Some("8d3105d2-deb7-429c-b618-ce433350ee38-x"),
            Some("8d3105d2"),
            Some("test-rule-1-0"),
            Some(""),
        ];
        let files = [None, Some("a.json.gz"), Some("b.json.gz")];
        let mut entries = Vec::new();
        for id in ids {
            for file in files {
                for aux in [0, 7] {
                    let mut event = [0; EVENT_FIELDS];
                    event[EVENT_FIELDS - 1] = strings.id(file);
                    entries.push(Entry {
                        time: DateTime::<Utc>::UNIX_EPOCH,
                        aux,
                        event_id: EventId::new(id, &mut strings),
                        event,
                    });
                }
            }
        }
        assert!(entries.iter().any(|e| matches!(e.event_id, EventId::Uuid(_))));
        assert!(entries.iter().any(|e| matches!(e.event_id, EventId::Other(_))));
        for a in &entries {
            for b in &entries {
                assert_eq!(
                    a.tie_cmp(b, &strings),
                    a.tie_key(&strings).cmp(&b.tie_key(&strings)),
                    "{a:?} against {b:?}"
                );
            }
        }
    }

    #[test]
    fn parses_legacy_aggregations() {
        let c = Correlation::legacy_count("count() > 10", Duration::try_minutes(30)).expect("ok");
        assert_eq!(
            (c.kind, c.condition, c.group_by.len()),
            (Kind::EventCount, vec![(Op::Gt, 10.0)], 0)
        );
        let c = Correlation::legacy_count("count() by sourceIPAddress > 5", None).expect("ok");
        assert_eq!(c.group_by, ["sourceIPAddress"]);
        let c = Correlation::legacy_count("count(eventName) by userIdentity.arn, awsRegion >= 3", None).expect("ok");
        assert_eq!(
            (c.kind, c.field.as_deref(), c.group_by.len(), c.condition),
            (Kind::ValueCount, Some("eventName"), 2, vec![(Op::Gte, 3.0)])
        );
        for bad in ["count > 5", "sum(x) > 5", "count() > many", "count() by > 5"] {
            assert!(Correlation::legacy_count(bad, None).is_err(), "{bad}");
        }
    }

    fn at(second: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(second)
    }

    fn entry(second: i64, id: u128, aux: u64) -> Entry {
        Entry {
            time: at(second),
            aux,
            event_id: EventId::Uuid(id),
            event: [0; EVENT_FIELDS],
        }
    }

    fn resolved(kind: Kind, parts: usize, timespan: i64, condition: Vec<(Op, f64)>) -> Resolved {
        Resolved {
            rule: 0,
            kind,
            timespan: Some(Duration::seconds(timespan)),
            condition,
            parts,
            group_names: Vec::new(),
            group_paths: Vec::new(),
            value_paths: Vec::new(),
            chained: Vec::new(),
            feeds: Vec::new(),
            report: true,
            rank: 0,
        }
    }

    /// [`Group::feed`] as passes over the window: a copy looked for among every match, every
    /// temporal_ordered measure a pass.
    fn naive_feed(window: &mut VecDeque<Entry>, resolved: &Resolved, entry: Entry) -> Option<f64> {
        let same = |e: &Entry| e.time == entry.time && e.event_id == entry.event_id && e.aux == entry.aux;
        if window.iter().any(same) {
            return None;
        }
        window.push_back(entry);
        let span = resolved.timespan.unwrap_or(Duration::MAX);
        while window.len() > 1 && window.front().is_some_and(|e| entry.time - e.time > span) {
            window.pop_front();
        }
        let measure = match resolved.kind {
            Kind::EventCount => window.len() as f64,
            _ => ordered_prefix(window.make_contiguous()) as f64,
        };
        let met = if resolved.condition.is_empty() {
            measure >= resolved.parts as f64
        } else {
            holds(&resolved.condition, measure)
        };
        met.then(|| {
            window.clear();
            measure
        })
    }

    proptest::proptest! {
        /// The kept-up-to-date prefix is the pass over the window's, whatever comes and goes,
        /// times out of order included.
        #[test]
        fn ordered_prefix_kept_up_to_date_is_the_pass(
            parts in 1usize..5,
            ops in proptest::collection::vec((0u8..4, 0i64..6, 0u64..6), 0..120),
        ) {
            let mut window: VecDeque<Entry> = VecDeque::new();
            let mut ordered = Ordered::new(parts, &window);
            for (i, (op, second, aux)) in ops.into_iter().enumerate() {
                if op == 0 {
                    if let Some(old) = window.pop_front() {
                        ordered.pop(old.aux);
                    }
                } else {
                    let e = entry(second, i as u128, aux % parts as u64);
                    window.push_back(e);
                    ordered.push(e.time, e.aux);
                }
                proptest::prop_assert_eq!(ordered.prefix(), ordered_prefix(window.make_contiguous()));
                let rebuilt = Ordered::new(parts, &window);
                proptest::prop_assert_eq!(rebuilt.prefix(), ordered.prefix());
            }
        }

        /// A group finds copies and fires as the passes over its window did, past the point
        /// where it indexes the window too (the copies' times and ids come from few values, so
        /// runs of one time are long and copies frequent).
        #[test]
        fn feeding_a_group_is_the_passes(
            ordered in proptest::bool::ANY,
            seconds in proptest::collection::vec((0i64..4, 0u128..80, 0u64..3), 0..300),
        ) {
            let resolved = if ordered {
                resolved(Kind::TemporalOrdered, 3, 2, Vec::new())
            } else {
                resolved(Kind::EventCount, 1, 2, vec![(Op::Gte, 150.0)])
            };
            let mut group = Group::default();
            let mut naive = VecDeque::new();
            let mut second = 0;
            for (step, id, aux) in seconds {
                // Mostly forward in time, sometimes back (late matches).
                second = if step == 3 { (second - 2).max(0) } else { second + i64::from(step == 2) };
                let e = entry(second, id, aux);
                let fired = group.feed(&resolved, e).map(|(measure, _)| measure);
                proptest::prop_assert_eq!(fired, naive_feed(&mut naive, &resolved, e));
                proptest::prop_assert_eq!(group.window.len(), naive.len());
            }
        }
    }

    /// A hundred thousand matches of one second, none a copy and none completing the window:
    /// each is checked against the others through the index, not one by one (the passes took
    /// minutes for this).
    #[test]
    fn a_burst_of_one_second_is_linear() {
        for kind in [Kind::TemporalOrdered, Kind::EventCount] {
            let resolved = resolved(
                kind,
                2,
                600,
                if kind == Kind::EventCount {
                    vec![(Op::Gt, 1e9)]
                } else {
                    Vec::new()
                },
            );
            let mut group = Group::default();
            for id in 0..100_000u128 {
                assert!(group.feed(&resolved, entry(0, id, 0)).is_none());
            }
            // Copies of any of them are refused.
            assert!(group.feed(&resolved, entry(0, 5, 0)).is_none());
            assert!(group.feed(&resolved, entry(0, 99_999, 0)).is_none());
            assert_eq!(group.window.len(), 100_000);
            assert!(group.long.as_ref().is_some_and(|long| long.index.is_some()));
            // The second rule of the sequence completes it.
            if kind == Kind::TemporalOrdered {
                let fired = group
                    .feed(&resolved, entry(1, 100_000, 1))
                    .map(|(measure, window)| (measure, window.len()));
                assert_eq!(fired, Some((2.0, 100_001)));
                assert!(group.long.is_none() && group.window.is_empty());
            }
        }
    }
}
