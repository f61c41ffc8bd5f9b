//! One hunt: read the sources into evaluators, let correlations sweep as time moves on, explain
//! with known reasons, group, remember in the case store, and return the findings with the
//! figures of the run.

use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use trailhound_event::Record;
use trailhound_finding::{Finding, Level, Reasons, group_findings};
use trailhound_rules::{Evaluator, MAX_ENTRIES, RuleSet};
use trailhound_source::{Progress, ReadOptions, ScanStats, Sink, read};
use trailhound_store::{RunStart, Store};

use crate::HuntError;
use crate::activity::Activity;
use crate::remember::remember;

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
}

/// One worker's evaluator, plus the activity figures when asked for.
struct Worker<'s> {
    evaluator: Evaluator<'s>,
    activity: Option<Activity>,
}

impl Sink for Worker<'_> {
    fn record(&mut self, source: &str, record: &Record<'_>) {
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
    let mut read_options = options.read.clone();
    if let Some(store) = options.store.as_ref().filter(|s| s.since_last_run) {
        read_options.since = Some(Store::open(&store.path)?.cursors()?);
    }
    let make = || Worker {
        evaluator: Evaluator::new(rules, options.with_event),
        activity: options.activity.then(Activity::default),
    };
    let mut evaluator = Evaluator::new(rules, options.with_event);
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
    let evaluated = evaluator.finish();
    if evaluated.late > 0 {
        tracing::warn!(
            "{} correlation matches came from files delivered more than --delivery-lag after their events; they were counted late",
            evaluated.late
        );
    }
    if evaluated.dropped > 0 {
        tracing::warn!(
            "{} matches were not counted by correlations: more than {MAX_ENTRIES} were kept (narrow the window or the rules)",
            evaluated.dropped
        );
    }
    let mut findings = evaluated.findings;
    // Rules kept only because a correlation counts them may still report (generate: true).
    if let Some(min) = options.min_level {
        findings.retain(|f| f.level >= min);
    }
    findings.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let mut explained = 0;
    if let Some(reasons) = &options.reasons {
        let today = Utc::now().date_naive();
        for finding in &mut findings {
            finding.explanation = reasons.explain_finding(finding, today).cloned();
        }
        explained = findings.iter().filter(|f| f.explanation.is_some()).count();
    }
    let before_grouping = findings.len();
    if let Some(bucket) = options.group {
        findings = group_findings(findings, bucket);
    }
    let mut new_findings = findings.len();
    if let Some(store_options) = &options.store {
        let mut store = Store::open(&store_options.path)?;
        let run = RunStart {
            rules: rules.len(),
            ..store_options.run.clone()
        };
        let remembered = remember(
            &mut store,
            &run,
            findings,
            report.stats.records_in_window,
            store_options.new_only,
        )?;
        for ((source, key), value) in &report.cursors {
            store.set_cursor(source, key, value)?;
        }
        new_findings = remembered.new;
        findings = remembered.findings;
    }
    Ok(Hunted {
        findings,
        stats: report.stats,
        problems_total: report.problems_total,
        notes: report.notes,
        activity,
        explained,
        before_grouping,
        new_findings,
        transient_failures: report.transient_failures,
        rules: rules.len(),
        rules_unindexed: rules.unindexed(),
        correlations: rules.correlations(),
    })
}
