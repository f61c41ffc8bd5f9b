//! `trailhound hunt`: scan sources, run the rule set, write findings and a summary.

use std::io::{self, BufWriter, Write};

use anyhow::{Context, Result, bail};
use trailhound_hunt::{HuntOptions, Hunted, StoreOptions, hunt, load_reasons};
use trailhound_output::{Format, Options, Report, Summary, Window, write_findings, write_html, write_summary};
use trailhound_rules::RuleSet;
use trailhound_store::RunStart;

use crate::commands::Outcome;
use crate::process::Process;
use crate::progress::Bar;
use crate::settings::HuntSettings;

/// Loads the rules of `settings`, warning about those that fail (an error with `--strict`).
pub fn load_rules(selection: &trailhound_rules::Selection, strict: bool) -> Result<RuleSet> {
    let (set, errors) = selection.load()?;
    for error in &errors {
        tracing::warn!("rule skipped: {error}");
    }
    if strict && !errors.is_empty() {
        bail!("{} rules failed to load (--strict)", errors.len());
    }
    Ok(set)
}

/// Runs the hunt of `settings` on the engine; returns what it found and the rules it ran.
pub fn execute(process: &Process, settings: &HuntSettings) -> Result<(Hunted, RuleSet)> {
    let rules = load_rules(&settings.rules, settings.strict)?;
    let options = HuntOptions {
        read: settings.scan.read.clone(),
        min_level: settings.rules.min_level,
        with_event: settings.with_event,
        group: settings.group,
        activity: settings.format == Format::Html,
        reasons: settings.reasons.as_deref().map(load_reasons).transpose()?,
        store: settings.store.as_ref().map(|path| StoreOptions {
            path: path.clone(),
            new_only: settings.new_only,
            since_last_run: settings.since_last_run,
            run: RunStart {
                command: "hunt".into(),
                sources: settings.sources_text.clone(),
                since: settings.since_text.clone(),
                until: settings.until_text.clone(),
                ..RunStart::default()
            },
        }),
        correlation_memory: Some(settings.correlation_memory),
        context: settings.scan.context.clone(),
        ..HuntOptions::default()
    };
    let remote = process.remote(&options.read.inputs, &settings.scan.aws)?;
    let bar = Bar::new(settings.scan.progress);
    let hunted = hunt(&rules, &options, remote.as_ref(), &bar)?;
    Ok((hunted, rules))
}

/// The ATT&CK matrix of the rules run, with the findings of each cell's rules, for the HTML report.
fn coverage(rule_set: &RuleSet, findings: &[trailhound_finding::Finding]) -> serde_json::Value {
    let mut per_rule: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for finding in findings {
        *per_rule.entry(finding.rule_id.as_str()).or_default() += 1;
    }
    let listed: Vec<&trailhound_rules::Rule> = rule_set.rules().iter().filter(|r| !r.is_filter()).collect();
    let cells: Vec<serde_json::Value> = trailhound_output::coverage_matrix(&listed)
        .into_iter()
        .flat_map(|(tactic, techniques)| {
            let per_rule = &per_rule;
            techniques.into_iter().map(move |(technique, rules)| {
                let found: usize = rules
                    .iter()
                    .map(|r| per_rule.get(r.as_str()).copied().unwrap_or(0))
                    .sum();
                serde_json::json!({"tactic": tactic, "technique": technique, "rules": rules, "findings": found})
            })
        })
        .collect();
    serde_json::Value::Array(cells)
}

/// How the baselines stood, for the summary: still learning (and why), or trained.
pub fn baseline_line(status: &trailhound_hunt::BaselineStatus, store: bool) -> String {
    let profiles = format!(
        "{} principals, {} access keys, {} roles profiled",
        status.principals, status.keys, status.roles
    );
    let dropped = if status.dropped > 0 {
        format!(
            " ({} least recently seen profiles forgotten at the bound)",
            status.dropped
        )
    } else {
        String::new()
    };
    if status.trained {
        format!(
            "judged against {} days of history; {profiles}{dropped}",
            status.history_days
        )
    } else if store {
        format!(
            "still learning ({} of the {} days of history they need); no baseline findings yet; {profiles}{dropped}",
            status.history_days, status.needed_days
        )
    } else {
        "still learning: baselines are kept in the case store (--store); without one, no baseline findings".to_string()
    }
}

pub fn run(process: &Process, settings: &HuntSettings) -> Result<Outcome> {
    let (hunted, rule_set) = execute(process, settings)?;
    let Hunted {
        mut findings,
        stats,
        problems_total,
        notes,
        activity,
        explained,
        before_grouping,
        new_findings,
        rules,
        rules_unindexed,
        correlations,
        store_error,
        baseline_status,
        ..
    } = hunted;
    let reasons_used = settings.reasons.is_some();
    // Findings are written first: an alert receiver that stalls or fails cannot lose them.
    let alert = |findings: &[trailhound_finding::Finding]| {
        !settings.alerts.is_empty()
            && crate::commands::alerts::send(
                process,
                &settings.alerts,
                settings.alert_min_level,
                &settings.scan.aws,
                &format!("hunt {}", settings.sources_text.join(" ")),
                findings,
            )
            .inspect_err(|err| tracing::error!("{err:#}"))
            .is_err()
    };
    let to_alert = (!settings.alerts.is_empty()).then(|| findings.clone());
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
                coverage: coverage(&rule_set, &findings),
                ocsf: trailhound_output::OcsfFindings(&findings),
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
    // An alert that cannot be delivered fails the run (exit 2), after the findings are written.
    let alert_failed = to_alert.as_deref().is_some_and(alert);

    if settings.summary {
        let summary = Summary {
            stats: crate::commands::figures(&stats),
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
        if let Some(status) = &baseline_status {
            let _ = writeln!(err, "  baselines: {}", baseline_line(status, settings.store.is_some()));
        }
        for note in &notes {
            let _ = writeln!(err, "  {}", trailhound_event::printable(note));
        }
    }
    if let Some(err) = &store_error {
        tracing::error!("the findings above were not remembered, and the next run starts where this one did: {err}");
        return Ok(Outcome::Error);
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
