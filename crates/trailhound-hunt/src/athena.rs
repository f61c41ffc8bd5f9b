//! The plan of each `athena://` source of a read: the rule set's detections compiled to SQL and
//! OR-ed into as few queries as fit (`trailhound_rules::sql::plan::hunt`), pruned to the
//! window's days and the accounts and regions asked for, with the scan they are expected to
//! cost. The source crate runs the plan; it is made here because the rules are here.

use chrono::{DateTime, Utc};
use trailhound_rules::RuleSet;
use trailhound_rules::sql::plan::{self, DEFAULT_REGIONS, Scope};
use trailhound_rules::sql::table::record_from_text;
use trailhound_source::cursor::{ATHENA_OVERLAP, Cursor};
use trailhound_source::{ATHENA_PRICE_PER_TB, AthenaCursor, AthenaPlan, Input, ReadOptions, decimal_size};

use crate::HuntError;

/// Compressed MB of one account-region-day when `--mb-per-partition` is not given.
pub const DEFAULT_MB_PER_PARTITION: f64 = 1.0;

/// The key of an `athena://` read's cursor under its source: the accounts and regions it reads.
pub fn cursor_key(accounts: &[String], regions: &[String]) -> String {
    let list = |items: &[String]| {
        let mut items = items.to_vec();
        items.sort();
        if items.is_empty() {
            "all".to_string()
        } else {
            items.join(",")
        }
    };
    format!("accounts={};regions={}", list(accounts), list(regions))
}

/// Plans every `athena://` input of `read` for `rules` (none: every event of the window, as
/// `summary` reads; `events` and `timeline` give their filters as rules). The window must have
/// a start, or the read a cursor (`read.since`, an incremental hunt): it chooses the day
/// partitions. With a cursor the window starts [`ATHENA_OVERLAP`] before where the last run
/// stopped, if that is later.
pub fn plan_athena(read: &mut ReadOptions, rules: Option<&RuleSet>, now: DateTime<Utc>) -> Result<(), HuntError> {
    for input in &read.inputs {
        let Input::Athena(table) = input else { continue };
        let name = input.describe();
        let window = read.scan.window;
        let key = cursor_key(&read.remote.accounts, &read.remote.regions);
        let resume = read
            .since
            .as_ref()
            .and_then(|cursors| cursors.get(&(name.clone(), key.clone())))
            .map(|text| Cursor::parse(text))
            .and_then(|cursor| trailhound_event::parse_event_time(&cursor.position).map(|at| (at, cursor.seen)));
        let resumed = resume.as_ref().map(|(at, _)| *at - ATHENA_OVERLAP);
        let since = match (window.since, resumed) {
            (Some(since), Some(resumed)) => since.max(resumed),
            (since, resumed) => match since.or(resumed) {
                Some(since) => since,
                None => {
                    return Err(HuntError::Plan(format!(
                        "{name}: give --since: an Athena hunt reads the day partitions of its window"
                    )));
                }
            },
        };
        let until = window.until.unwrap_or(now);
        if since >= until {
            return Err(HuntError::Plan(format!(
                "{name}: nothing to read: the window starts at {} (where the last run stopped, less {} minutes) and ends at {}",
                since.to_rfc3339(),
                ATHENA_OVERLAP.num_minutes(),
                until.to_rfc3339()
            )));
        }
        let scope = Scope {
            since,
            until,
            accounts: read.remote.accounts.clone(),
            regions: read.remote.regions.clone(),
        };
        // Rules on the fields trailhound derives (context, baselines) or on Insights events
        // have no SQL form: the table has no such columns. Pushed down, they would make every
        // plan read every row; they are left out of the SQL and see the rows the other rules
        // select (see `plan::kept_local`).
        let all = rules.map_or(&[][..], RuleSet::rules);
        let (derived, pushed): (Vec<&trailhound_rules::Rule>, Vec<&trailhound_rules::Rule>) =
            all.iter().partition(|r| plan::kept_local(r).is_some());
        let hunt = plan::hunt(&table.qualified(), &scope, pushed.iter().copied());
        let mb = read.athena.mb_per_partition.unwrap_or(DEFAULT_MB_PER_PARTITION);
        let expected = hunt.expected_scan(&scope, mb);
        let mut notes = Vec::new();
        if !derived.is_empty() {
            notes.push(format!(
                "{name}: {} rules on fields the table has no columns for (trailhound.*: context, baselines; insightDetails) are not pushed down: they see only the rows the other rules select",
                derived.len()
            ));
        }
        notes.push(match &hunt.every_row {
            None => format!(
                "{name}: {} detection rules pushed down as SQL in {} queries (ordered by event time); the engine evaluates the rows again, and correlations over the rows of the rules they count",
                hunt.compiled,
                hunt.queries.len()
            ),
            Some(reason) => format!("{name}: one query for every row: {reason}"),
        });
        let accounts = if scope.accounts.is_empty() {
            "every account".to_string()
        } else {
            format!("{} accounts", scope.accounts.len())
        };
        let regions = if scope.regions.is_empty() {
            format!("every region (the table's; {} by default)", DEFAULT_REGIONS.len())
        } else {
            format!("{} regions", scope.regions.len())
        };
        let days = scope.days().len();
        let scan = match expected {
            Some(bytes) => format!(
                "expected scan {} (${:.2}) at {mb} MB per account-region-day (--mb-per-partition)",
                decimal_size(bytes),
                bytes / 1e12 * ATHENA_PRICE_PER_TB
            ),
            None => "expected scan unknown (name the accounts with --accounts to estimate it)".to_string(),
        };
        notes.push(format!(
            "{name}: partitions {days} days x {accounts} x {regions}; {scan}"
        ));
        if let Some((at, _)) = &resume {
            notes.push(format!(
                "{name}: from {} ({} minutes before where the last run stopped, {})",
                since.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                ATHENA_OVERLAP.num_minutes(),
                at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            ));
        }
        let plan = AthenaPlan {
            queries: hunt.queries.into_iter().map(|q| q.sql).collect(),
            expected_scan: expected.map(|bytes| bytes as u64).ok_or_else(|| {
                "the accounts are not named (--accounts), so the partitions cannot be counted".to_string()
            }),
            notes,
            to_record: record_from_text,
            every_row: hunt.every_row.is_some(),
            cursor: AthenaCursor { key, until, resume },
        };
        read.athena.plans.insert(name, plan);
    }
    Ok(())
}
