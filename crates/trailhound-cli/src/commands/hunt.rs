//! `trailhound hunt`: scan sources, run the rule set, write findings and a summary.

use std::io::{self, BufWriter, Write};

use anyhow::{Context, Result, bail};
use trailhound_event::Record;
use trailhound_output::{Format, Options, Report, Summary, Window, write_findings, write_html, write_summary};
use trailhound_rules::{CorrelationState, Explanation, Finding, Hit, MAX_ENTRIES, Reasons, RuleSet, group_findings};
use trailhound_source::Sink;
use trailhound_store::{RunStart, Status, Store};

use crate::commands::summary::Activity;
use crate::commands::{Outcome, load_rules, scanning};
use crate::settings::HuntSettings;

/// Collects the findings, and the matches correlations will count, of one worker.
struct Hunter<'r> {
    rules: &'r RuleSet,
    findings: Vec<Finding>,
    correlations: CorrelationState,
    /// Correlation matches dropped because the state was full.
    dropped: u64,
    scratch: String,
    with_event: bool,
    /// Activity figures, for the HTML report.
    activity: Option<Activity>,
}

impl Sink for Hunter<'_> {
    fn record(&mut self, source: &str, record: &Record<'_>) {
        let Hunter {
            rules,
            findings,
            correlations,
            dropped,
            scratch,
            with_event,
            activity,
        } = self;
        if let Some(activity) = activity {
            activity.add(record);
        }
        rules.matches(record, scratch, &mut |hit| match hit {
            Hit::Rule(rule) => findings.push(Finding::new(rule, record, source, *with_event)),
            Hit::Correlation { index, part } => {
                if !rules.collect(correlations, index, part, record, source) {
                    *dropped += 1;
                }
            }
        });
    }
}

/// What a hunt found, before it is written out.
pub struct Hunted {
    /// Sorted by time; explained ones included (with their explanation); with a store, only
    /// one per stored finding, and only new ones with `new_only`.
    pub findings: Vec<Finding>,
    pub stats: trailhound_source::ScanStats,
    pub problems_total: u64,
    /// Lines about remote sources for the summary.
    pub notes: Vec<String>,
    pub rules: usize,
    pub rules_unindexed: usize,
    pub correlations: usize,
    pub activity: Activity,
    pub explained: usize,
    pub before_grouping: usize,
    pub new_findings: usize,
    pub reasons_used: bool,
    /// Remote objects given up on after transient errors.
    pub transient_failures: u64,
}

/// Runs a hunt: rules over the sources, correlations, known reasons, grouping, the store.
pub fn execute(settings: &HuntSettings) -> Result<Hunted> {
    let reasons = settings.reasons.as_deref().map(load_reasons).transpose()?;
    // A long-lived caller (the Lambda) loads the rules once and hands them in.
    let loaded;
    let rules: &RuleSet = match &settings.loaded_rules {
        Some(rules) => rules,
        None => {
            let (set, rule_errors) = load_rules(&settings.rules)?;
            for error in &rule_errors {
                tracing::warn!("rule skipped: {error}");
            }
            if settings.strict && !rule_errors.is_empty() {
                bail!("{} rules failed to load (--strict)", rule_errors.len());
            }
            loaded = set;
            &loaded
        }
    };
    if rules.is_empty() {
        bail!("no rules to run: the selection (--no-builtin, --rules, --min-level, --rule, --tag) left none");
    }

    let make = || Hunter {
        rules,
        findings: Vec::new(),
        correlations: CorrelationState::default(),
        dropped: 0,
        scratch: String::new(),
        with_event: settings.with_event,
        activity: (settings.format == Format::Html).then(Activity::default),
    };
    // Incremental runs start where the store's cursors say the last run stopped.
    let since = match (&settings.store, settings.since_last_run) {
        (Some(path), true) => Some(Store::open(path)?.cursors()?),
        _ => None,
    };
    let mut findings = Vec::new();
    let mut correlations = CorrelationState::default();
    let mut dropped = 0;
    let mut activity = Activity::default();
    // With correlations, read in delivery-time batches and sweep after each one, so their
    // state only holds what a later window can still use.
    let driven = scanning::drive(
        &settings.scan,
        since.as_ref(),
        &make,
        rules.correlations() > 0,
        &mut |hunters, watermark| {
            for hunter in hunters {
                findings.extend(hunter.findings);
                correlations.merge(hunter.correlations);
                dropped += hunter.dropped;
                if let Some(more) = hunter.activity {
                    activity.merge(more);
                }
            }
            if let Some(watermark) = watermark {
                findings.extend(rules.advance(&mut correlations, watermark));
            }
        },
    )?;
    let stats = driven.stats.clone();
    let problems_total = driven.problems_total;
    if correlations.late() > 0 {
        tracing::warn!(
            "{} correlation matches came from files delivered more than --delivery-lag after their events; they were counted late",
            correlations.late()
        );
    }
    if dropped > 0 {
        tracing::warn!(
            "{dropped} matches were not counted by correlations: more than {MAX_ENTRIES} were kept (narrow the window or the rules)"
        );
    }
    findings.extend(rules.evaluate(correlations));
    // Rules kept only because a correlation counts them may still report (generate: true).
    if let Some(min) = settings.rules.min_level {
        findings.retain(|f| f.level >= min);
    }
    findings.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let mut explained = 0;
    if let Some(reasons) = &reasons {
        let today = chrono::Utc::now().date_naive();
        for finding in &mut findings {
            finding.explanation = reasons.explain_finding(finding, today).cloned();
        }
        explained = findings.iter().filter(|f| f.explanation.is_some()).count();
    }
    let before_grouping = findings.len();
    if let Some(bucket) = settings.group {
        findings = group_findings(findings, bucket);
    }
    let mut new_findings = findings.len();
    if let Some(path) = &settings.store {
        let mut store = Store::open(path)?;
        let run = store.begin_run(&RunStart {
            command: "hunt".into(),
            sources: settings.sources_text.clone(),
            since: settings.since_text.clone(),
            until: settings.until_text.clone(),
            rules: rules.len(),
        })?;
        let states = store.record_findings(run, &findings)?;
        new_findings = states.iter().filter(|r| r.new).count();
        store.finish_run(run, stats.records_in_window, findings.len(), new_findings)?;
        for ((source, key), value) in &driven.cursors {
            store.set_cursor(source, key, value)?;
        }
        findings = crate::commands::keep_recorded(findings, states, settings.new_only);
    }
    Ok(Hunted {
        findings,
        stats,
        problems_total,
        notes: driven.notes,
        rules: rules.len(),
        rules_unindexed: rules.unindexed(),
        correlations: rules.correlations(),
        activity,
        explained,
        before_grouping,
        new_findings,
        reasons_used: reasons.is_some(),
        transient_failures: driven.transient_failures,
    })
}

pub fn run(settings: &HuntSettings) -> Result<Outcome> {
    let Hunted {
        mut findings,
        stats,
        problems_total,
        notes,
        rules,
        rules_unindexed,
        correlations,
        activity,
        explained,
        before_grouping,
        new_findings,
        reasons_used,
        ..
    } = execute(settings)?;
    // An alert that cannot be delivered fails the run (exit 2), after the findings are written.
    let alert_failed = !settings.alerts.is_empty()
        && crate::commands::alerts::send(
            &settings.alerts,
            settings.alert_min_level,
            &settings.scan.remote.aws,
            &format!("hunt {}", settings.sources_text.join(" ")),
            &findings,
        )
        .inspect_err(|err| tracing::error!("{err:#}"))
        .is_err();
    // Explained findings do not fail a run, even when shown; with --new-only, only new ones do.
    let unexplained_at_fail_level = settings
        .fail_on
        .is_some_and(|level| findings.iter().any(|f| f.level >= level && f.explanation.is_none()));
    if !settings.show_explained {
        findings.retain(|f| f.explanation.is_none());
    }
    let options = Options {
        color: settings.color,
        max_width: settings.max_width,
    };
    let write = |out: &mut dyn Write| -> std::io::Result<()> {
        if settings.format == Format::Html {
            let report = Report {
                generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                window: Window {
                    since: settings.since_text.clone(),
                    until: settings.until_text.clone(),
                },
                sources: &settings.sources_text,
                stats: serde_json::json!({
                    "files_read": stats.files_read,
                    "records_read": stats.records_read,
                    "records_in_window": stats.records_in_window,
                    "digests_skipped": stats.digests_skipped,
                    "files_failed": stats.files_failed,
                    "records_invalid": stats.records_invalid,
                    "rules": rules,
                }),
                findings: &findings,
                console_logins: serde_json::to_value(activity.console()).unwrap_or_default(),
                top_principals: serde_json::to_value(activity.principals().into_iter().take(25).collect::<Vec<_>>())
                    .unwrap_or_default(),
            };
            write_html(out, &report)
        } else {
            write_findings(out, settings.format, &findings, &options)
        }
    };
    let written = match &settings.output {
        Some(path) => {
            let file = fs_err::File::create(path)?;
            let mut out = BufWriter::new(file);
            write(&mut out)
                .and_then(|()| out.flush())
                .with_context(|| format!("writing {}", path.display()))
        }
        None => {
            let mut out = BufWriter::new(io::stdout().lock());
            match write(&mut out).and_then(|()| out.flush()) {
                // The reader went away (`| head`): not an error.
                Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
                other => other.context("writing findings"),
            }
        }
    };
    written?;

    if settings.summary {
        let summary = Summary {
            stats: stats.clone(),
            rules,
            rules_unindexed,
            correlations,
        };
        let mut err = io::stderr().lock();
        // A closed stderr is no reason to fail the run.
        let _ = write_summary(&mut err, &summary, &findings);
        if reasons_used {
            let shown = if settings.show_explained {
                "shown"
            } else {
                "hidden; --show-explained to see them"
            };
            let _ = writeln!(err, "  explained by known reasons: {explained} ({shown})");
        }
        if let Some(path) = &settings.store {
            let only = if settings.new_only {
                "; only those are printed"
            } else {
                ""
            };
            let _ = writeln!(err, "  store: {new_findings} new findings in {}{only}", path.display());
        }
        if settings.group.is_some() {
            let _ = writeln!(err, "  grouped: {before_grouping} findings into {}", findings.len());
        }
        for note in &notes {
            let _ = writeln!(err, "  {}", trailhound_event::printable(note));
        }
    }
    if alert_failed {
        return Ok(Outcome::Error);
    }
    if settings.strict && problems_total > 0 {
        tracing::error!("{problems_total} bad files or records (--strict)");
        return Ok(Outcome::Error);
    }
    // Explained findings do not fail a run, even when shown.
    Ok(if unexplained_at_fail_level {
        Outcome::Findings
    } else {
        Outcome::Clean
    })
}

/// Reads the known-reasons file and warns about entries past their expiry date.
pub(crate) fn load_reasons(path: &std::path::Path) -> Result<Reasons> {
    let text = fs_err::read_to_string(path)?;
    let reasons = Reasons::parse(&path.display().to_string(), &text)?;
    let today = chrono::Utc::now().date_naive();
    for entry in reasons.expired(today) {
        tracing::warn!(
            "{}:{}: reason {:?} ({}) expired on {}; it no longer explains anything",
            path.display(),
            entry.line,
            entry.explanation.reason,
            entry.explanation.ticket.as_deref().unwrap_or("no ticket"),
            entry.explanation.expires.map(|d| d.to_string()).unwrap_or_default()
        );
    }
    Ok(reasons)
}
