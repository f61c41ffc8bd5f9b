//! `trailhound inventory audit`: the findings of one snapshot, in the hunt's formats, and with
//! `--store` remembered like hunt findings so `--new-only` prints only what is new.

use std::cmp::Reverse;
use std::io::{self, Write};

use anyhow::Result;
use trailhound_finding::Finding;
use trailhound_hunt::{load_reasons, remember};
use trailhound_inventory::{AuditOptions, audit};
use trailhound_output::{Format, Options, RowFormat, write_findings, write_rows};
use trailhound_store::{RunStart, Store};

use super::{AuditSettings, load_or_latest, to_stdout};
use crate::commands::Outcome;

pub fn run(settings: &AuditSettings) -> Result<Outcome> {
    let loaded = load_or_latest(settings.from.as_ref(), settings.store.as_deref(), "inventory audit")?;
    let snapshot = &loaded.snapshot;
    let reasons = settings.reasons.as_deref().map(load_reasons).transpose()?;
    let mut options = AuditOptions::new(chrono::Utc::now(), loaded.source.clone());
    options.since = settings.since;
    options.max_key_age_days = settings.max_key_age_days;
    options.max_unused_days = settings.max_unused_days;
    let mut findings = audit(snapshot, reasons.as_ref(), &options);
    if let Some(min) = settings.min_level {
        findings.retain(|f| f.level >= min);
    }
    let explained = findings.iter().filter(|f| f.explanation.is_some()).count();
    let total = findings.len();
    let mut new_findings = None;
    if let Some(path) = &settings.record {
        let mut store = Store::open(path)?;
        let start = RunStart {
            command: "inventory audit".into(),
            sources: vec![loaded.label.clone()],
            since: settings.since.map(|t| t.to_rfc3339()),
            until: None,
            rules: 0,
        };
        let items = u64::try_from(snapshot.items.len()).unwrap_or(u64::MAX);
        let remembered = remember(&mut store, &start, findings, items, settings.new_only)?;
        new_findings = Some(remembered.new);
        findings = remembered.findings;
    }
    // Explained findings never fail an audit, even when shown.
    let failing = settings
        .fail_on
        .is_some_and(|level| findings.iter().any(|f| f.level >= level && f.explanation.is_none()));
    if !settings.show_explained {
        findings.retain(|f| f.explanation.is_none());
    }
    let output = Options {
        color: settings.color,
        max_width: settings.max_width,
    };
    to_stdout("findings", |out| match settings.format {
        // The hunt's table is about events; an audit's is about resources, so it shows titles.
        Format::Table => write_table(out, &findings, settings.max_width),
        format => write_findings(out, format, &findings, &output),
    })?;
    if settings.summary {
        let collected = snapshot.collected_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let shown = if settings.show_explained { "shown" } else { "hidden" };
        let mut line = format!(
            "audit of {} (collected {collected}): {total} findings, {explained} explained by known reasons ({shown})",
            loaded.label
        );
        if let (Some(new), Some(path)) = (new_findings, &settings.record) {
            line.push_str(&format!("; {new} new in {}", path.display()));
            if settings.new_only {
                line.push_str(", only those printed");
            }
        }
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
    Ok(if failing { Outcome::Findings } else { Outcome::Clean })
}

/// Findings as a table for a person: the most urgent first, each with its title and, when
/// explained, the ticket and reason; the store id when findings were recorded.
fn write_table(out: &mut dyn Write, findings: &[Finding], max_width: usize) -> io::Result<()> {
    if findings.is_empty() {
        return Ok(());
    }
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by_key(|f| (Reverse(f.level), f.rule_id.as_str(), f.rule_title.as_str()));
    let stored = sorted.iter().any(|f| f.store_id.is_some());
    let rows: Vec<Vec<String>> = sorted
        .iter()
        .map(|f| {
            let explained = f.explanation.as_ref().map_or_else(
                || "-".to_string(),
                |e| match &e.ticket {
                    Some(ticket) => format!("{ticket}: {}", e.reason),
                    None => e.reason.clone(),
                },
            );
            let mut row = vec![f.level.to_string(), f.rule_id.clone(), f.rule_title.clone(), explained];
            if stored {
                row.insert(0, f.store_id.map_or_else(|| "-".into(), |id| id.to_string()));
            }
            row
        })
        .collect();
    let columns: &[&str] = if stored {
        &["id", "level", "check", "finding", "explained"]
    } else {
        &["level", "check", "finding", "explained"]
    };
    write_rows(out, RowFormat::Table, columns, &rows, max_width)
}
