//! `trailhound events`: the events themselves, filtered, as columns or counted by fields.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Result, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use trailhound_context::{Cache, Context};
use trailhound_event::query::{Condition, first_value};
use trailhound_event::{FieldPath, Record, compact_json};
use trailhound_output::{Cell, CellValue, RowFormat, write_rows};
use trailhound_source::Sink;

use crate::args::EventsArgs;
use crate::commands::Outcome;
use crate::process::Process;
use crate::settings::ScanSettings;
use crate::write::{finish, output};

/// Columns when `--fields` is not given.
const DEFAULT_FIELDS: [&str; 8] = [
    "eventTime",
    "eventName",
    "eventSource",
    "userIdentity.arn",
    "userIdentity.accessKeyId",
    "sourceIPAddress",
    "awsRegion",
    "errorCode",
];

/// What the command keeps of each matching event.
enum Keep {
    /// The record's JSON, on one line.
    Records,
    /// Values of these paths.
    Fields(Vec<FieldPath>),
    /// Counts by these paths.
    Counts(Vec<FieldPath>),
}

/// One worker's matches.
struct Collector<'a> {
    conditions: &'a [Condition],
    names: &'a [String],
    keep: &'a Keep,
    rows: Vec<(DateTime<Utc>, Vec<Cell>)>,
    counts: Counts,
    /// Derives the `trailhound.` fields `--where`, `--fields` and `--count-by` may name.
    context: Option<&'a Context>,
    cache: Cache,
}

/// Per group (the values of `--count-by`, `None` where missing): count, first and last time.
type Counts = HashMap<Vec<Option<String>>, (u64, DateTime<Utc>, DateTime<Utc>)>;

impl Sink for Collector<'_> {
    fn record(&mut self, _source: &str, record: &Record<'_>) {
        if let Some(context) = self.context {
            record.set_derived(context.derive(record, &mut self.cache));
        }
        if !self.names.is_empty() && !self.names.iter().any(|n| record.event_name.eq_ignore_ascii_case(n)) {
            return;
        }
        if !self.conditions.iter().all(|c| c.matches(record)) {
            return;
        }
        match self.keep {
            Keep::Records => self
                .rows
                .push((record.time, vec![Cell::Text(compact_json(record.raw()))])),
            Keep::Fields(paths) => self.rows.push((
                record.time,
                paths.iter().map(|p| Cell::from(first_value(record, p))).collect(),
            )),
            Keep::Counts(paths) => {
                let key: Vec<Option<String>> = paths.iter().map(|p| first_value(record, p)).collect();
                let entry = self.counts.entry(key).or_insert((0, record.time, record.time));
                entry.0 += 1;
                entry.1 = entry.1.min(record.time);
                entry.2 = entry.2.max(record.time);
            }
        }
    }
}

/// Everything `events` needs, resolved from its arguments.
pub struct EventsSettings {
    pub scan: ScanSettings,
    conditions: Vec<Condition>,
    names: Vec<String>,
    /// The columns' names (`--fields`, or the defaults).
    fields: Vec<String>,
    count_by: Vec<String>,
    keep: Keep,
    format: RowFormat,
    top: usize,
    output: Option<PathBuf>,
    max_width: usize,
    quiet: bool,
    /// Records as OCSF API Activity.
    ocsf: bool,
}

impl EventsSettings {
    pub fn resolve(args: &EventsArgs, quiet: bool, now: DateTime<Utc>) -> Result<EventsSettings> {
        let conditions = args
            .conditions
            .iter()
            .map(|c| Condition::parse(c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)?;
        let format = match args.format {
            Some(format) => format.into(),
            None if args.output.is_none() && std::io::stdout().is_terminal() => RowFormat::Table,
            None => RowFormat::Jsonl,
        };
        if args.count_by.iter().chain(&args.fields).any(|f| f.trim().is_empty()) {
            bail!("--fields and --count-by take comma-separated field paths");
        }
        let fields: Vec<String> = if args.fields.is_empty() {
            DEFAULT_FIELDS.map(String::from).to_vec()
        } else {
            args.fields.clone()
        };
        let ocsf = args.format == Some(crate::args::EventsFormat::Ocsf);
        if ocsf && (!args.count_by.is_empty() || !args.fields.is_empty()) {
            bail!("--format ocsf writes whole records: it does not go with --fields or --count-by");
        }
        let keep = if !args.count_by.is_empty() {
            Keep::Counts(args.count_by.iter().map(|f| FieldPath::new(f)).collect())
        } else if args.fields.is_empty() && matches!(format, RowFormat::Json | RowFormat::Jsonl) {
            Keep::Records
        } else {
            Keep::Fields(fields.iter().map(|f| FieldPath::new(f)).collect())
        };
        Ok(EventsSettings {
            scan: ScanSettings::resolve(&args.scan, quiet, now)?,
            conditions,
            names: args.name.clone(),
            fields,
            count_by: args.count_by.clone(),
            keep,
            format,
            top: args.top,
            output: args.output.clone(),
            max_width: args.max_width,
            quiet,
            ocsf,
        })
    }
}

pub fn run(process: &Process, settings: &EventsSettings) -> Result<Outcome> {
    let EventsSettings {
        scan,
        conditions,
        names,
        fields,
        count_by,
        keep,
        format,
        top,
        output: output_path,
        max_width,
        quiet,
        ocsf,
    } = settings;
    let (format, top, max_width) = (*format, *top, *max_width);
    // Baselines need a hunt with a store; here the fields of the event and its address are derived.
    let context = scan
        .context
        .as_ref()
        .map(|c| Context::new(c.ranges.clone(), c.geoip.clone()));
    let make = || Collector {
        conditions,
        names,
        keep,
        rows: Vec::new(),
        counts: HashMap::new(),
        context: context.as_ref(),
        cache: Cache::default(),
    };
    // On Athena, only the rows the filters may keep come back.
    let filter = crate::pushdown::events(conditions, names);
    let (sinks, report) = process.read_all(scan, filter.as_ref(), &make)?;
    let mut rows = Vec::new();
    let mut counts: Counts = HashMap::new();
    for collector in sinks {
        rows.extend(collector.rows);
        for (key, (n, first, last)) in collector.counts {
            let entry = counts.entry(key).or_insert((0, first, last));
            entry.0 += n;
            entry.1 = entry.1.min(first);
            entry.2 = entry.2.max(last);
        }
    }
    let mut out = output(output_path.as_deref())?;
    let written = match keep {
        Keep::Records => {
            sort_rows(&mut rows);
            let mut result = Ok(());
            if *ocsf {
                for (_, row) in &rows {
                    let activity = serde_json::from_str::<serde_json::Value>(&row[0].text())
                        .ok()
                        .and_then(|record| trailhound_output::ocsf::api_activity(&record));
                    let written = match activity {
                        Some(activity) => {
                            trailhound_output::write_json(&mut out, &activity, false).and_then(|()| writeln!(out))
                        }
                        None => Ok(()),
                    };
                    if let Err(err) = written {
                        result = Err(err);
                        break;
                    }
                }
            } else if format == RowFormat::Json {
                let items: Vec<std::borrow::Cow<'_, str>> = rows.iter().map(|(_, row)| row[0].text()).collect();
                result = writeln!(out, "[{}]", items.join(",\n"));
            } else {
                for (_, row) in &rows {
                    if let Err(err) = writeln!(out, "{}", row[0].text()) {
                        result = Err(err);
                        break;
                    }
                }
            }
            result
        }
        Keep::Fields(_) => {
            sort_rows(&mut rows);
            let columns: Vec<&str> = fields.iter().map(String::as_str).collect();
            let rows: Vec<Vec<Cell>> = rows.into_iter().map(|(_, row)| row).collect();
            write_rows(&mut out, format, &columns, &rows, max_width)
        }
        Keep::Counts(_) => {
            let mut counted: Vec<_> = counts.into_iter().collect();
            counted.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(&b.0)));
            if top > 0 {
                counted.truncate(top);
            }
            let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
            let rows: Vec<Vec<Cell>> = counted
                .into_iter()
                .map(|(key, (n, first, last))| {
                    let mut row: Vec<Cell> = key.into_iter().map(Cell::from).collect();
                    row.extend([Cell::Count(n), Cell::Text(time(first)), Cell::Text(time(last))]);
                    row
                })
                .collect();
            let mut columns: Vec<&str> = count_by.iter().map(String::as_str).collect();
            columns.extend(["count", "first_seen", "last_seen"]);
            write_rows(&mut out, format, &columns, &rows, max_width)
        }
    };
    finish(written, &mut out)?;
    if !*quiet {
        let s = &report.stats;
        tracing::info!("{} records read, {} in the window", s.records_read, s.records_in_window);
    }
    Ok(Outcome::Clean)
}

/// Rows in time order; rows of the same time by their cells, so the output does not depend on
/// which core read which record (files in parallel, a stream split over cores).
fn sort_rows(rows: &mut [(DateTime<Utc>, Vec<Cell>)]) {
    rows.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| a.1.iter().map(CellValue::text).cmp(b.1.iter().map(CellValue::text)))
    });
}
