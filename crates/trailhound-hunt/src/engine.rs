//! One hunt: read the sources into evaluators, let correlations sweep as time moves on, explain
//! with known reasons, group, remember in the case store, and return the findings with the
//! figures of the run.

use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;

use trailhound_context::geoip::GeoIp;
use trailhound_context::ranges::AwsRanges;
use trailhound_context::{BaselineOptions, Baselines, Cache, Context};
use trailhound_event::{DerivedField, Record};
use trailhound_finding::{Finding, Level, Reasons, group_findings};
use trailhound_rules::{Evaluator, MAX_ENTRIES, RuleSet};
use trailhound_source::{Progress, ReadOptions, ScanStats, Sink, read};
use trailhound_store::{RunStart, Store};

use crate::HuntError;
use crate::activity::Activity;
use crate::remember::{keep, record};

/// What to hunt and how, in plain values: the CLI resolves them from arguments, the Lambda
/// from its environment.
#[derive(Debug, Clone, Default)]
pub struct HuntOptions {
    /// What to read.
    pub read: ReadOptions,
    /// Findings below this level are dropped (rules a correlation needs may run below it).
    pub min_level: Option<Level>,
    /// Put the whole record into each finding.
    pub with_event: bool,
    /// Fold findings of one rule by one principal within this bucket into one.
    pub group: Option<Duration>,
    /// Known reasons: findings an entry matches carry its explanation.
    pub reasons: Option<Reasons>,
    /// Remember findings and cursors in the case store.
    pub store: Option<StoreOptions>,
    /// Keep the activity figures (console logins, principals) for a report.
    pub activity: bool,
    /// Correlation windows an earlier run left open ([`Hunted::correlation_state`]), continued
    /// by this run. An incremental run with a store continues the store's state instead.
    pub continue_correlations: Option<Vec<u8>>,
    /// Return the correlation state the run ends with in [`Hunted::correlation_state`].
    pub keep_correlations: bool,
    /// Bytes correlation state may hold (the rules' default, 2 GiB, when unset).
    pub correlation_memory: Option<usize>,
    /// Derive the `trailhound.` fields of each record (AWS ranges, GeoIP, principal kinds) and
    /// judge events against baselines; without it, rules see only the records.
    pub context: Option<ContextOptions>,
}

/// What the context of a hunt is made of.
#[derive(Debug, Clone, Default)]
pub struct ContextOptions {
    /// AWS's published ranges (empty: no address is known to be AWS's or not).
    pub ranges: Arc<AwsRanges>,
    /// GeoIP databases (ASN, organisation, country).
    pub geoip: Option<Arc<GeoIp>>,
    /// How baselines judge (lookback, history needed).
    pub baselines: BaselineOptions,
    /// Baselines an earlier run returned ([`Hunted::baselines`]), when there is no store (the
    /// Lambda keeps them in S3). With a store, the store's are used and saved.
    pub continue_baselines: Option<Vec<u8>>,
}

/// How a hunt uses the case store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub path: PathBuf,
    /// Return only findings no earlier run recorded.
    pub new_only: bool,
    /// Read remote sources from where the last run stopped (the store's cursors).
    pub since_last_run: bool,
    /// How the run is described in the store (the engine fills in the rule count).
    pub run: RunStart,
}

/// What a hunt found, before it is written out.
#[derive(Debug, Default)]
pub struct Hunted {
    /// Sorted by time; explained ones included (with their explanation); with a store, one per
    /// stored finding, and only new ones with `new_only`.
    pub findings: Vec<Finding>,
    pub stats: ScanStats,
    /// Bad files and records (each logged as met).
    pub problems_total: u64,
    /// Lines about remote sources for the summary.
    pub notes: Vec<String>,
    pub activity: Activity,
    /// Findings a known reason explains.
    pub explained: usize,
    /// Findings before grouping.
    pub before_grouping: usize,
    /// Findings no earlier run recorded (all of them without a store).
    pub new_findings: usize,
    /// Remote objects given up on after transient errors.
    pub transient_failures: u64,
    /// Rules run, those that look at every record, and correlations.
    pub rules: usize,
    pub rules_unindexed: usize,
    pub correlations: usize,
    /// The store failed after the scan: the findings above are whole but were not remembered
    /// (nor the cursors moved); the caller reports them, then fails.
    pub store_error: Option<trailhound_store::StoreError>,
    /// With [`HuntOptions::keep_correlations`]: what the correlation windows hold at the end,
    /// for a later run to continue (bounded by the rules' timespans).
    pub correlation_state: Option<Vec<u8>>,
    /// With a context: the baselines after this run (what earlier runs learned and this one
    /// added), for a later run to judge against; saved in the store when there is one.
    pub baselines: Option<Vec<u8>>,
    /// With a context: how the baselines stood when the run judged its events.
    pub baseline_status: Option<BaselineStatus>,
}

/// How the baselines a run judged against stood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineStatus {
    /// Enough history to judge (otherwise they were still learning).
    pub trained: bool,
    /// Days of history they held.
    pub history_days: i64,
    /// Days needed before they judge.
    pub needed_days: i64,
    /// Profiles after the run: principals, access keys, roles.
    pub principals: usize,
    pub keys: usize,
    pub roles: usize,
    /// Profiles forgotten to stay within the bound.
    pub dropped: usize,
}

/// One worker's evaluator, plus the activity figures when asked for.
struct Worker<'s> {
    evaluator: Evaluator<'s>,
    activity: Option<Activity>,
    /// The latest event time observed.
    latest: Option<DateTime<Utc>>,
    /// The context records are enriched with, and what this worker learned for baselines.
    context: Option<&'s Context>,
    cache: Cache,
    learned: Option<Baselines>,
}

impl Sink for Worker<'_> {
    fn record(&mut self, source: &str, record: &Record<'_>) {
        if self.latest.is_none_or(|latest| record.time > latest) {
            self.latest = Some(record.time);
        }
        if let Some(context) = self.context {
            let derived = context.derive(record, &mut self.cache);
            if let Some(learned) = &mut self.learned {
                learned.learn(record, &derived);
            }
            record.set_derived(derived);
        }
        if let Some(activity) = &mut self.activity {
            activity.add(record);
        }
        self.evaluator.observe(record, source);
    }
}

/// Runs a hunt of `rules` over `options`' sources. `remote` is the caller's runtime and AWS
/// connection, needed only for remote sources.
pub fn hunt(
    rules: &RuleSet,
    options: &HuntOptions,
    remote: Option<&trailhound_source::Remote<'_>>,
    progress: &dyn Progress,
) -> Result<Hunted, HuntError> {
    if rules.is_empty() {
        return Err(HuntError::NoRules);
    }
    if let Some(bytes) = options.correlation_memory {
        rules.set_correlation_memory(bytes);
    }
    let mut read_options = options.read.clone();
    // The store is opened before reading, so a store that cannot be opened costs no scan.
    let mut store = match &options.store {
        Some(store_options) => Some(Store::open(&store_options.path)?),
        None => None,
    };
    let incremental = options.store.as_ref().is_some_and(|s| s.since_last_run);
    let mut evaluator = Evaluator::new(rules, options.with_event);
    // Correlation windows reported by the run that left them are not reported again unless
    // this run adds to them: only findings completed after what that run had seen are kept.
    let mut reported_until = None;
    if let Some(store) = store.as_ref().filter(|_| incremental) {
        read_options.since = Some(store.cursors()?);
        if let Some(bytes) = store.state(CORRELATION_STATE)? {
            reported_until = restore_correlations(&bytes, &mut evaluator);
        }
    } else if let Some(bytes) = &options.continue_correlations {
        reported_until = restore_correlations(bytes, &mut evaluator);
    }
    // Planned once the cursors are known: an incremental Athena read starts where the last stopped.
    crate::athena::plan_athena(&mut read_options, Some(rules), Utc::now())?;
    // An Athena read pushed down returns only the rows some rule may match: baselines learned
    // from them would miss what the principals usually do, so they are left as they were.
    let partial = read_options.athena.plans.values().any(|plan| !plan.every_row);
    let mut latest = reported_until;
    // Baselines: judged as they were when the run started, learned from every event read.
    let mut notes = Vec::new();
    // Baselines live in the store (or, for the Lambda, in what the last run returned): without
    // either there is no history to judge against, and nothing learned would be kept.
    let context = options.context.as_ref().map(|c| {
        let context = Context::new(c.ranges.clone(), c.geoip.clone());
        let saved = match store.as_ref() {
            Some(store) => Some(store.state(BASELINES).unwrap_or_else(|err| {
                tracing::warn!("baselines could not be read from the store: {err}");
                None
            })),
            None => c.continue_baselines.clone().map(Some),
        };
        let Some(saved) = saved else {
            return context;
        };
        let snapshot = saved
            .and_then(|bytes| {
                Baselines::load(&bytes)
                    .inspect_err(|err| notes.push(format!("{err}: baselines start afresh")))
                    .ok()
            })
            .unwrap_or_else(Baselines::new);
        context.with_baselines(snapshot, c.baselines)
    });
    let mut learned = context
        .as_ref()
        .and_then(|c| c.baselines().cloned())
        .filter(|_| !partial);
    if partial && context.as_ref().is_some_and(|c| c.baselines().is_some()) {
        notes.push("baselines not updated: the Athena queries return only the rows the rules may match".to_string());
    }
    let make = || Worker {
        evaluator: Evaluator::new(rules, options.with_event),
        activity: options.activity.then(Activity::default),
        latest: None,
        context: context.as_ref(),
        cache: Cache::default(),
        learned: context
            .as_ref()
            .and_then(|c| c.baselines())
            .filter(|_| !partial)
            .map(|_| Baselines::new()),
    };
    let mut dropped_profiles = 0;
    let mut activity = Activity::default();
    // With correlations, read in delivery-time batches and sweep after each one, so their state
    // only holds what a later window can still use.
    let report = read(
        &read_options,
        remote,
        progress,
        &make,
        rules.correlations() > 0,
        &mut |workers, watermark: Option<DateTime<Utc>>| {
            for worker in workers {
                latest = latest.max(worker.latest);
                if let (Some(all), Some(more)) = (learned.as_mut(), worker.learned) {
                    dropped_profiles += all.merge(more);
                }
                evaluator.merge(worker.evaluator);
                if let Some(more) = worker.activity {
                    activity.merge(more);
                }
            }
            if let Some(watermark) = watermark {
                evaluator.advance(watermark);
            }
        },
    )?;
    // What correlation windows still hold goes to the next incremental run, which continues
    // them: a burst split across two runs (or two delivery files) is still one burst.
    let saved = ((incremental || options.keep_correlations) && rules.correlations() > 0)
        .then(|| carried_state(latest, &evaluator.save()));
    let evaluated = evaluator.finish();
    if evaluated.late > 0 {
        tracing::warn!(
            "{} correlation matches came after their windows had been swept (files delivered more than --delivery-lag after their events, or a stream that went back in time by more than that); they were counted late, so windows around them may differ from a read in time order",
            evaluated.late
        );
    }
    if evaluated.dropped > 0 {
        tracing::warn!(
            "{} correlation matches in {} groups were forgotten to stay within the correlation memory bound of {} MB or {MAX_ENTRIES} matches (oldest groups first): narrow the window or the rules, or raise --correlation-memory",
            evaluated.dropped,
            evaluated.evicted_groups,
            rules.correlation_budget().limit() >> 20
        );
    }
    let mut findings = evaluated.findings;
    if let Some(until) = reported_until {
        findings.retain(|f| f.correlation.is_none() || f.time > until);
    }
    // Rules kept only because a correlation counts them may still report (generate: true).
    if let Some(min) = options.min_level {
        findings.retain(|f| f.level >= min);
    }
    // The file is the last tie-breaker, so which copy of a duplicated event is kept does not
    // depend on the order files were read in.
    findings.sort_by(|a, b| {
        a.sort_key()
            .cmp(&b.sort_key())
            .then_with(|| a.source_file.cmp(&b.source_file))
    });
    // One event is one finding per rule, however many files delivered it (an organization
    // trail and an account trail both deliver every event of the account).
    let mut seen = std::collections::HashSet::new();
    findings.retain(|f| match (&f.correlation, &f.event_id) {
        (None, Some(id)) => seen.insert((f.rule_id.clone(), id.clone())),
        _ => true,
    });
    // A rule asking about baselines reports the first deviation, not every event showing it.
    let first_seen: std::collections::HashSet<&str> = rules
        .rules()
        .iter()
        .filter(|r| r.tests_baseline())
        .map(|r| r.id.as_str())
        .collect();
    if !first_seen.is_empty() {
        let mut seen = std::collections::HashSet::new();
        findings.retain(|f| !first_seen.contains(f.rule_id.as_str()) || seen.insert(deviation(f)));
    }
    let mut explained = 0;
    if let Some(reasons) = &options.reasons {
        let today = Utc::now().date_naive();
        for finding in &mut findings {
            finding.explanation = reasons.explain_finding(finding, today).cloned().map(Box::new);
        }
        explained = findings.iter().filter(|f| f.explanation.is_some()).count();
    }
    let before_grouping = findings.len();
    if let Some(bucket) = options.group {
        findings = group_findings(findings, bucket);
    }
    let baseline_status = context.as_ref().map(|c| {
        let judged = c.baselines();
        let (principals, keys, roles) = learned.as_ref().map_or((0, 0, 0), Baselines::sizes);
        BaselineStatus {
            trained: judged.is_some_and(|b| b.trained(c.baseline_options())),
            history_days: judged.map_or(0, |b| b.history().num_days()),
            needed_days: c.baseline_options().min_history.num_days(),
            principals,
            keys,
            roles,
            dropped: dropped_profiles,
        }
    });
    let baselines_saved = learned.as_ref().map(Baselines::save);
    let mut new_findings = findings.len();
    let mut store_error = None;
    if let (Some(store), Some(store_options)) = (store.as_mut(), &options.store) {
        let run = RunStart {
            rules: rules.len(),
            ..store_options.run.clone()
        };
        // Findings are kept whatever happens to the store: a store that fails now is reported
        // with them, never instead of them.
        let recorded = record(store, &run, &findings, report.stats.records_in_window).and_then(|states| {
            let cursors = report
                .cursors
                .iter()
                .map(|((source, key), value)| (source.as_str(), key.as_str(), value.as_str()));
            let states_saved = saved
                .as_deref()
                .filter(|_| incremental)
                .map(|bytes| (CORRELATION_STATE, bytes))
                .into_iter()
                .chain(baselines_saved.as_deref().map(|bytes| (BASELINES, bytes)));
            store.save_progress(cursors, states_saved)?;
            Ok(states)
        });
        match recorded {
            Ok(states) => {
                let remembered = keep(findings, states, store_options.new_only);
                new_findings = remembered.new;
                findings = remembered.findings;
            }
            Err(err) => store_error = Some(err),
        }
    }
    Ok(Hunted {
        findings,
        stats: report.stats,
        problems_total: report.problems_total,
        notes: report.notes.into_iter().chain(notes).collect(),
        activity,
        explained,
        before_grouping,
        new_findings,
        transient_failures: report.transient_failures,
        rules: rules.len(),
        rules_unindexed: rules.unindexed(),
        correlations: rules.correlations(),
        store_error,
        correlation_state: saved.filter(|_| options.keep_correlations),
        baselines: baselines_saved,
        baseline_status,
    })
}

/// The store's name for the correlation state an incremental run leaves to the next.
const CORRELATION_STATE: &str = "correlations";
/// The store's name for the baselines (see `trailhound_context::baseline`).
const BASELINES: &str = "baselines";

/// What makes a baseline finding the same deviation as another: the principal (or key), and
/// each new thing with its value. Findings are sorted by time, so the first deviation is kept.
fn deviation(finding: &Finding) -> String {
    use std::fmt::Write;
    let mut key = format!("{}\u{1f}", finding.rule_id);
    let Some(derived) = finding.context.as_deref() else {
        let _ = write!(key, "{}", finding.event_id.as_deref().unwrap_or(""));
        return key;
    };
    let text = |field| derived.text(field).unwrap_or("");
    let _ = write!(key, "{}", text(DerivedField::PrincipalId));
    let key_id = finding.access_key_id.as_deref().unwrap_or("");
    let flags = [
        (DerivedField::BaselineNewNetwork, text(DerivedField::SrcNetwork)),
        (DerivedField::BaselineNewCountry, text(DerivedField::SrcCountry)),
        (DerivedField::BaselineKeyNewNetwork, text(DerivedField::SrcNetwork)),
        (DerivedField::BaselineKeyNewCountry, text(DerivedField::SrcCountry)),
        (DerivedField::BaselineNewService, finding.event_source.as_str()),
        (
            DerivedField::BaselineNewRegion,
            finding.aws_region.as_deref().unwrap_or(""),
        ),
    ];
    for (flag, value) in flags {
        if derived.flag(flag) == Some(true) {
            let _ = write!(key, "\u{1f}{}={value}", flag.name());
            if flag.name().contains(".key_") {
                let _ = write!(key, "@{key_id}");
            }
        }
    }
    if derived.number(DerivedField::BaselineKeyIdleDays).is_some() {
        let _ = write!(key, "\u{1f}key={key_id}");
    }
    if derived.number(DerivedField::BaselineRoleIdleDays).is_some() {
        let _ = write!(key, "\u{1f}role={}", text(DerivedField::BaselineRole));
    }
    key
}

/// Continues the correlation windows the last incremental run left open. A state this build
/// cannot read (damaged, or from another version) is reported and the run starts afresh: it
/// costs at most the bursts that straddle this one boundary.
/// What a run leaves for the next one to continue: the latest event time it saw (its
/// correlation findings up to then are reported), a line break, and the evaluator's state.
fn carried_state(latest: Option<DateTime<Utc>>, state: &[u8]) -> Vec<u8> {
    let mut out = latest
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_default()
        .into_bytes();
    out.push(b'\n');
    out.extend_from_slice(state);
    out
}

/// The parts of [`carried_state`]'s bytes.
fn split_carried(bytes: &[u8]) -> (Option<DateTime<Utc>>, &[u8]) {
    let Some(newline) = bytes.iter().position(|b| *b == b'\n') else {
        return (None, bytes);
    };
    let time = std::str::from_utf8(&bytes[..newline])
        .ok()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|t| t.with_timezone(&Utc));
    (time, &bytes[newline + 1..])
}

/// Continues the correlation windows an earlier run left open; returns the latest event time
/// that run had seen. A state this build cannot read (damaged, or from another version) is
/// reported and the run starts afresh: it costs at most the bursts that straddle this one
/// boundary.
fn restore_correlations(bytes: &[u8], evaluator: &mut Evaluator<'_>) -> Option<DateTime<Utc>> {
    let (until, state) = split_carried(bytes);
    match evaluator.restore(state) {
        Ok(retired) => {
            tracing::debug!("continuing {} correlation matches from the last run", evaluator.held());
            if retired > 0 {
                tracing::info!("{retired} saved correlation windows belong to rules no longer run; dropped");
            }
            until
        }
        Err(err) => {
            tracing::warn!("the last run's correlation state cannot be continued ({err}); starting afresh");
            None
        }
    }
}

/// Two saved correlation states of one rule set as one: what either holds, a match both hold
/// (the same event) counted once. A state that cannot be read is left out, with a warning.
///
/// The merged state counts as reported up to the earlier of the two runs' latest times, so a
/// window that only the two together complete is still reported by the next run.
pub fn merge_correlation_states(rules: &RuleSet, a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut merged = Evaluator::new(rules, false);
    let until_a = restore_correlations(a, &mut merged);
    let mut other = Evaluator::new(rules, false);
    let until_b = restore_correlations(b, &mut other);
    merged.merge(other);
    let until = match (until_a, until_b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        _ => None,
    };
    carried_state(until, &merged.save())
}
