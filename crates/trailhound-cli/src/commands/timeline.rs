//! `trailhound timeline`: everything one access key, principal or address did, in time order.
//!
//! The first question after a leak is "what did this key do?", and the answer includes what was
//! done with the credentials it obtained: an `AssumeRole` or `GetSessionToken` by the key returns
//! a temporary key (`responseElements.credentials.accessKeyId`) whose calls belong to the same
//! story, and so on, hop after hop; a `CreateAccessKey` by a followed identity adds the new key. Records arrive in no particular order (files are read in
//! parallel), so this takes two passes: the first collects every credential hand-out, from which
//! the set of keys to follow is closed; the second collects those keys' events and runs the rules
//! over them to mark findings inline.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Result, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use trailhound_context::{Cache, Context};
use trailhound_event::query::first_text;
use trailhound_event::{DerivedField, FieldPath, Record};
use trailhound_output::{Cell, RowFormat, write_rows};
use trailhound_rules::{RuleSet, Selection};
use trailhound_source::Sink;

use crate::args::TimelineArgs;
use crate::commands::Outcome;
use crate::process::Process;
use crate::settings::{ScanSettings, rule_selection};
use crate::write::{finish, output};

/// API calls that hand out credentials: temporary ones, and `CreateAccessKey`, which an attacker
/// holding a key uses to mint a second, long-lived one.
const ISSUERS: [&str; 7] = [
    "AssumeRole",
    "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
    "GetSessionToken",
    "GetFederationToken",
    "GetRoleCredentials",
    "CreateAccessKey",
];

/// One credential hand-out.
#[derive(Debug, Clone)]
struct Issue {
    caller_key: Option<String>,
    caller_arn: Option<String>,
    source_ip: Option<String>,
    issued_key: String,
    event_name: String,
}

/// First pass: every hand-out.
struct Issues {
    /// `responseElements.credentials.accessKeyId` (STS) and `responseElements.accessKey.accessKeyId` (IAM).
    keys: [FieldPath; 2],
    found: Vec<Issue>,
}

impl Sink for Issues {
    fn record(&mut self, _source: &str, record: &Record<'_>) {
        if !ISSUERS.contains(&record.event_name.as_ref()) || record.error_code.is_some() {
            return;
        }
        let Some(issued) = self.keys.iter().map(|path| first_text(record, path)).find(|k| k != "-") else {
            return;
        };
        self.found.push(Issue {
            caller_key: record.identity.access_key_id.as_deref().map(str::to_string),
            caller_arn: record.identity.arn.as_deref().map(str::to_string),
            source_ip: record.source_ip.as_deref().map(str::to_string),
            issued_key: issued,
            event_name: record.event_name.to_string(),
        });
    }
}

/// Who to follow.
#[derive(Debug, Default, Clone)]
struct Follow {
    /// Access key -> how it was reached ("" for the starting key).
    keys: BTreeMap<String, String>,
    arns: BTreeSet<String>,
    ips: BTreeSet<String>,
}

impl Follow {
    fn wants(&self, key: Option<&str>, arn: Option<&str>, ip: Option<&str>) -> bool {
        key.is_some_and(|k| self.keys.contains_key(k))
            || arn.is_some_and(|a| self.arns.contains(a))
            || ip.is_some_and(|i| self.ips.contains(i))
    }

    /// Adds every key handed out to someone followed, and the keys handed out to those keys'
    /// holders, hop after hop. Each hand-out is looked at once per key that reaches it, so a
    /// chain of n hops costs O(n log n), whatever order its records were read in.
    fn close_over(&mut self, issues: &[Issue]) {
        let mut by_caller_key: BTreeMap<&str, Vec<&Issue>> = BTreeMap::new();
        let mut pending: Vec<&Issue> = Vec::new();
        for issue in issues {
            if let Some(key) = issue.caller_key.as_deref() {
                by_caller_key.entry(key).or_default().push(issue);
            }
            if self.wants(
                issue.caller_key.as_deref(),
                issue.caller_arn.as_deref(),
                issue.source_ip.as_deref(),
            ) {
                pending.push(issue);
            }
        }
        while let Some(issue) = pending.pop() {
            if self.keys.contains_key(&issue.issued_key) {
                continue;
            }
            let via = issue
                .caller_key
                .clone()
                .or_else(|| issue.caller_arn.clone())
                .unwrap_or_default();
            self.keys
                .insert(issue.issued_key.clone(), format!("{} by {via}", issue.event_name));
            if let Some(next) = by_caller_key.get(issue.issued_key.as_str()) {
                pending.extend(next.iter().copied());
            }
        }
    }
}

/// Second pass: the followed identity's events, with the rules that match them.
struct Events<'a> {
    follow: &'a Follow,
    rules: &'a RuleSet,
    scratch: String,
    /// Time, the row, and the network the call came from (`trailhound.src.network`).
    rows: Vec<(DateTime<Utc>, Vec<Cell>, Option<String>)>,
    /// The `trailhound.` fields, so that rules see what a hunt's rules see.
    context: Option<&'a Context>,
    cache: Cache,
}

impl Sink for Events<'_> {
    fn record(&mut self, _source: &str, record: &Record<'_>) {
        let key = record.identity.access_key_id.as_deref();
        if !self
            .follow
            .wants(key, record.identity.arn.as_deref(), record.source_ip.as_deref())
        {
            return;
        }
        if let Some(context) = self.context {
            record.set_derived(context.derive(record, &mut self.cache));
        }
        let mut findings = Vec::new();
        self.rules.detections(record, &mut self.scratch, &mut |rule| {
            findings.push(format!("{} ({})", rule.id, rule.level));
        });
        let text = |v: Option<&str>| Cell::from(v.map(str::to_string));
        let via = key
            .and_then(|k| self.follow.keys.get(k))
            .filter(|v| !v.is_empty())
            .cloned()
            .unwrap_or_default();
        let derived = record.derived();
        let network = derived
            .and_then(|d| d.text(DerivedField::SrcNetwork))
            .map(str::to_string);
        let from = derived
            .and_then(trailhound_finding::origin_of)
            .or_else(|| network.clone());
        self.rows.push((
            record.time,
            vec![
                Cell::Text(record.time.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
                Cell::Text(record.event_name.to_string()),
                Cell::Text(record.event_source.to_string()),
                text(record.event_id.as_deref()),
                text(record.account_id()),
                text(record.identity.arn.as_deref()),
                text(key),
                text(record.source_ip.as_deref()),
                Cell::from(from),
                text(record.aws_region.as_deref()),
                text(record.error_code.as_deref()),
                Cell::Text(findings.join(", ")),
                Cell::Text(via),
            ],
            network,
        ));
    }
}

/// The position of `from` in a row.
const FROM_COLUMN: usize = 8;

/// Everything `timeline` needs, resolved from its arguments.
pub struct TimelineSettings {
    pub scan: ScanSettings,
    /// Who to follow, before the credentials they obtained are added.
    follow: Follow,
    /// Follow the credentials obtained along the way.
    hops: bool,
    rules: Selection,
    format: RowFormat,
    output: Option<PathBuf>,
    max_width: usize,
}

impl TimelineSettings {
    pub fn resolve(args: &TimelineArgs, quiet: bool, now: DateTime<Utc>) -> Result<TimelineSettings> {
        let format = match args.format {
            Some(format) => format.into(),
            None if args.output.is_none() && std::io::stdout().is_terminal() => RowFormat::Table,
            None => RowFormat::Jsonl,
        };
        let mut follow = Follow::default();
        if let Some(key) = &args.access_key {
            follow.keys.insert(key.clone(), String::new());
        }
        if let Some(arn) = &args.principal {
            follow.arns.insert(arn.clone());
        }
        if let Some(ip) = &args.ip {
            follow.ips.insert(ip.clone());
        }
        if follow.keys.is_empty() && follow.arns.is_empty() && follow.ips.is_empty() {
            bail!("give --access-key, --principal or --ip");
        }
        Ok(TimelineSettings {
            scan: ScanSettings::resolve(&args.scan, quiet, now)?,
            follow,
            hops: !args.no_follow,
            rules: rule_selection(&args.rules)?,
            format,
            output: args.output.clone(),
            max_width: args.max_width,
        })
    }
}

pub fn run(process: &Process, settings: &TimelineSettings) -> Result<Outcome> {
    let scan = &settings.scan;
    let mut follow = settings.follow.clone();
    if settings.hops {
        let make = || Issues {
            keys: [
                FieldPath::new("responseElements.credentials.accessKeyId"),
                FieldPath::new("responseElements.accessKey.accessKeyId"),
            ],
            found: Vec::new(),
        };
        let arns: Vec<&str> = follow.arns.iter().map(String::as_str).collect();
        let ips: Vec<&str> = follow.ips.iter().map(String::as_str).collect();
        let filter = crate::pushdown::timeline_issuers(&ISSUERS, &arns, &ips);
        let issues: Vec<Issue> = process
            .read_all(scan, filter.as_ref(), &make)?
            .0
            .into_iter()
            .flat_map(|s| s.found)
            .collect();
        follow.close_over(&issues);
        if follow.keys.len() > 1 {
            tracing::info!("following {} keys obtained along the way", follow.keys.len() - 1);
        }
    }
    let (rules, errors) = settings.rules.load()?;
    for error in &errors {
        tracing::warn!("rule skipped: {error}");
    }
    let context = settings
        .scan
        .context
        .as_ref()
        .map(|c| Context::new(c.ranges.clone(), c.geoip.clone()));
    let make = || Events {
        follow: &follow,
        rules: &rules,
        scratch: String::new(),
        rows: Vec::new(),
        context: context.as_ref(),
        cache: Cache::default(),
    };
    let keys: Vec<&str> = follow.keys.keys().map(String::as_str).collect();
    let arns: Vec<&str> = follow.arns.iter().map(String::as_str).collect();
    let ips: Vec<&str> = follow.ips.iter().map(String::as_str).collect();
    let filter = crate::pushdown::timeline_events(&keys, &arns, &ips);
    let mut rows: Vec<(DateTime<Utc>, Vec<Cell>, Option<String>)> = process
        .read_all(scan, filter.as_ref(), &make)?
        .0
        .into_iter()
        .flat_map(|s| s.rows)
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    // A network the timeline had not shown before (after its first one) is marked: a key that
    // switches networks is what a reader of a timeline looks for.
    let mut seen = std::collections::HashSet::new();
    let mut rows: Vec<Vec<Cell>> = rows
        .into_iter()
        .map(|(_, mut row, network)| {
            if let Some(network) = network {
                let first = seen.is_empty();
                if seen.insert(network)
                    && !first
                    && let Some(Cell::Text(from)) = row.get_mut(FROM_COLUMN)
                {
                    from.push_str(" (new network)");
                }
            }
            row
        })
        .collect();
    let mut columns = vec![
        "time",
        "event_name",
        "event_source",
        "event_id",
        "account_id",
        "principal_arn",
        "access_key_id",
        "source_ip",
        "from",
        "aws_region",
        "error_code",
        "findings",
        "via",
    ];
    // The event id and account tie a line back to its record; a table for reading leaves them
    // out for width.
    if settings.format == RowFormat::Table {
        columns.drain(3..5);
        for row in &mut rows {
            row.drain(3..5);
        }
    }
    let mut out = output(settings.output.as_deref())?;
    let written = write_rows(&mut out, settings.format, &columns, &rows, settings.max_width);
    finish(written, &mut out)?;
    Ok(Outcome::Clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(from: usize, to: usize) -> Issue {
        Issue {
            caller_key: Some(format!("ASIA{from:012}")),
            caller_arn: Some(format!("arn:aws:sts::1:assumed-role/r/s{from}")),
            source_ip: Some("203.0.113.9".into()),
            issued_key: format!("ASIA{to:012}"),
            event_name: "AssumeRole".into(),
        }
    }

    /// A chain of AssumeRole hops listed last hop first (the order that made the fixed point
    /// loop once per hop) is followed to its end, and each hop says how it was reached.
    #[test]
    fn a_long_assume_role_chain_is_followed_in_one_pass() {
        let hops = 20_000;
        let issues: Vec<Issue> = (0..hops).rev().map(|i| hop(i, i + 1)).collect();
        // Unrelated hand-outs to someone not followed stay out.
        let mut issues = issues;
        issues.push(Issue {
            caller_key: Some("AKIAOTHER".into()),
            source_ip: Some("198.51.100.1".into()),
            ..hop(0, 0)
        });
        issues.last_mut().expect("pushed").issued_key = "ASIAOTHERS".into();
        let mut follow = Follow::default();
        follow.keys.insert(format!("ASIA{:012}", 0), String::new());
        follow.close_over(&issues);
        assert_eq!(follow.keys.len(), hops + 1);
        assert!(!follow.keys.contains_key("ASIAOTHERS"));
        assert_eq!(
            follow.keys.get(&format!("ASIA{hops:012}")).map(String::as_str),
            Some(format!("AssumeRole by ASIA{:012}", hops - 1).as_str())
        );
    }

    /// A followed address or principal reaches the keys it was handed, and on from there.
    #[test]
    fn hand_outs_to_a_followed_address_are_followed_on() {
        let mut follow = Follow::default();
        follow.ips.insert("203.0.113.9".into());
        let mut first = hop(1, 2);
        first.caller_key = None;
        let mut second = hop(2, 3);
        second.source_ip = Some("198.51.100.7".into());
        follow.close_over(&[second, first]);
        assert_eq!(follow.keys.len(), 2);
        assert!(follow.keys.contains_key(&format!("ASIA{:012}", 3)));
    }
}
