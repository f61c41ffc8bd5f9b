//! `trailhound summary`: who uses the console, the most active principals, regions, error rates,
//! access keys and source networks (the engine's [`Activity`]). The same figures feed the HTML report.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Result;
use chrono::{DateTime, Utc};
use trailhound_context::{Cache, Context};
use trailhound_event::Record;
use trailhound_hunt::activity::{Activity, Summarizer, time};
use trailhound_output::{RowFormat, write_rows};
use trailhound_source::Sink;

use crate::args::{SummaryArgs, TableOrJson};
use crate::commands::Outcome;
use crate::process::Process;
use crate::settings::ScanSettings;
use crate::write::{finish, output};

/// A summarising sink that derives the `trailhound.` fields first.
struct Enriched<'a> {
    context: Option<&'a Context>,
    cache: Cache,
    summarizer: Summarizer,
}

impl Sink for Enriched<'_> {
    fn record(&mut self, source: &str, record: &Record<'_>) {
        if let Some(context) = self.context {
            record.set_derived(context.derive(record, &mut self.cache));
        }
        self.summarizer.record(source, record);
    }
}

/// Everything `summary` needs, resolved from its arguments.
pub struct SummarySettings {
    pub scan: ScanSettings,
    json: bool,
    /// Rows per table (0: all).
    top: usize,
    output: Option<PathBuf>,
}

impl SummarySettings {
    pub fn resolve(args: &SummaryArgs, quiet: bool, now: DateTime<Utc>) -> Result<SummarySettings> {
        Ok(SummarySettings {
            scan: ScanSettings::resolve(&args.scan, quiet, now)?,
            json: args.format == TableOrJson::Json,
            top: args.top,
            output: args.output.clone(),
        })
    }
}

pub fn run(process: &Process, settings: &SummarySettings) -> Result<Outcome> {
    let (scan, json) = (&settings.scan, settings.json);
    // The address fields (network, AS, country, AWS or not) are derived for the networks table.
    let context = scan
        .context
        .as_ref()
        .map(|c| Context::new(c.ranges.clone(), c.geoip.clone()));
    let make = || Enriched {
        context: context.as_ref(),
        cache: Cache::default(),
        summarizer: Summarizer(Activity::default()),
    };
    let (sinks, report) = process.read_all(scan, None, &make)?;
    let mut activity = Activity::default();
    for sink in sinks {
        activity.merge(sink.summarizer.0);
    }
    let networks = activity.networks();
    let top = |n: usize| if settings.top == 0 { n } else { settings.top.min(n) };
    let console = activity.console();
    let principals = activity.principals();
    let mut by_errors = principals.clone();
    by_errors.retain(|p| p.errors > 0);
    by_errors.sort_by(|a, b| b.errors.cmp(&a.errors).then_with(|| a.principal.cmp(&b.principal)));
    let regions = activity.regions();
    let keys = activity.keys();
    let mut out = output(settings.output.as_deref())?;
    let written = if json {
        let document = serde_json::json!({
            "records": report.stats.records_in_window,
            "console_logins": &console[..top(console.len())],
            "top_principals": &principals[..top(principals.len())],
            "errors_by_principal": &by_errors[..top(by_errors.len())],
            "regions": regions.iter().map(|(r, n)| serde_json::json!({"region": r, "events": n})).collect::<Vec<_>>(),
            "access_keys": &keys[..top(keys.len())],
            "networks": &networks[..top(networks.len())],
        });
        trailhound_output::write_json(&mut out, &document, true).and_then(|()| writeln!(out))
    } else {
        (|| -> std::io::Result<()> {
            let ips = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>().join(" ");
            writeln!(out, "Console logins")?;
            let rows: Vec<Vec<String>> = console[..top(console.len())]
                .iter()
                .map(|c| {
                    vec![
                        c.principal.clone(),
                        c.success_with_mfa.to_string(),
                        c.success_without_mfa.to_string(),
                        c.failures.to_string(),
                        ips(&c.source_ips),
                        time(c.first),
                        time(c.last),
                    ]
                })
                .collect();
            write_rows(
                &mut out,
                RowFormat::Table,
                &[
                    "principal",
                    "with_mfa",
                    "without_mfa",
                    "failures",
                    "source_ips",
                    "first",
                    "last",
                ],
                &rows,
                60,
            )?;
            writeln!(out, "\nMost active principals")?;
            let rows: Vec<Vec<String>> = principals[..top(principals.len())]
                .iter()
                .map(|p| {
                    vec![
                        p.principal.clone(),
                        p.events.to_string(),
                        p.errors.to_string(),
                        time(p.first),
                        time(p.last),
                    ]
                })
                .collect();
            write_rows(
                &mut out,
                RowFormat::Table,
                &["principal", "events", "errors", "first", "last"],
                &rows,
                60,
            )?;
            writeln!(out, "\nErrors by principal")?;
            let rows: Vec<Vec<String>> = by_errors[..top(by_errors.len())]
                .iter()
                .map(|p| {
                    vec![
                        p.principal.clone(),
                        p.errors.to_string(),
                        p.events.to_string(),
                        format!("{:.1}%", 100.0 * p.errors as f64 / p.events.max(1) as f64),
                    ]
                })
                .collect();
            write_rows(
                &mut out,
                RowFormat::Table,
                &["principal", "errors", "events", "error_rate"],
                &rows,
                60,
            )?;
            writeln!(out, "\nRegions")?;
            let rows: Vec<Vec<String>> = regions.iter().map(|(r, n)| vec![r.clone(), n.to_string()]).collect();
            write_rows(&mut out, RowFormat::Table, &["region", "events"], &rows, 60)?;
            writeln!(out, "\nAccess keys")?;
            let rows: Vec<Vec<String>> = keys[..top(keys.len())]
                .iter()
                .map(|k| {
                    vec![
                        k.access_key_id.clone(),
                        k.principal.clone(),
                        k.events.to_string(),
                        ips(&k.source_ips),
                        time(k.first),
                        time(k.last),
                    ]
                })
                .collect();
            write_rows(
                &mut out,
                RowFormat::Table,
                &["access_key_id", "principal", "events", "source_ips", "first", "last"],
                &rows,
                60,
            )?;
            if networks.is_empty() {
                return Ok(());
            }
            writeln!(out, "\nSource networks")?;
            let rows: Vec<Vec<String>> = networks[..top(networks.len())]
                .iter()
                .map(|n| {
                    vec![
                        n.network.clone(),
                        n.from.clone().unwrap_or_else(|| "-".into()),
                        n.aws
                            .map_or_else(|| "-".into(), |aws| if aws { "yes" } else { "no" }.to_string()),
                        n.events.to_string(),
                        n.principals.to_string(),
                        time(n.first),
                        time(n.last),
                    ]
                })
                .collect();
            write_rows(
                &mut out,
                RowFormat::Table,
                &["network", "from", "aws", "events", "principals", "first", "last"],
                &rows,
                60,
            )
        })()
    };
    finish(written, &mut out)?;
    Ok(Outcome::Clean)
}
