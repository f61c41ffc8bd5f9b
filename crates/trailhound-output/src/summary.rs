//! The run summary written to stderr after a hunt.

use std::collections::BTreeMap;
use std::io::{self, Write};

use trailhound_finding::{Finding, Level};

/// What a read went through, as the summary shows it.
#[derive(Debug, Clone, Default)]
pub struct ReadFigures {
    pub files_read: u64,
    /// Bytes read from disk or fetched.
    pub bytes_read: u64,
    /// Bytes of JSON after inflation.
    pub bytes_inflated: u64,
    pub records_read: u64,
    pub records_in_window: u64,
    /// Files left unopened because their delivery time is outside the window.
    pub files_pruned: u64,
    pub digests_skipped: u64,
    /// Files of other AWS services' logs found beside the trail's (VPC flow logs...).
    pub other_logs_skipped: u64,
    /// JSON files that are not CloudTrail.
    pub files_foreign: u64,
    pub files_failed: u64,
    pub files_damaged: u64,
    pub records_invalid: u64,
    /// Records read that hold a core field twice (altered, or not written by CloudTrail).
    pub records_repeated_key: u64,
    pub elapsed: std::time::Duration,
}

/// Figures of one run: the read's counters, and the rule set's size.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub stats: ReadFigures,
    pub rules: usize,
    pub rules_unindexed: usize,
    pub correlations: usize,
}

/// Writes the summary and the per-rule counts of `findings`.
pub fn write_summary(out: &mut dyn Write, summary: &Summary, findings: &[Finding]) -> io::Result<()> {
    let s = &summary.stats;
    writeln!(
        out,
        "trailhound: {} files read ({} on disk, {} of JSON), {} records, {} in the window",
        count(s.files_read),
        bytes(s.bytes_read),
        bytes(s.bytes_inflated),
        count(s.records_read),
        count(s.records_in_window)
    )?;
    let mut skipped = Vec::new();
    if s.files_pruned > 0 {
        skipped.push(format!("{} outside the window (not opened)", count(s.files_pruned)));
    }
    if s.digests_skipped > 0 {
        skipped.push(format!(
            "{} digest files (`trailhound verify` checks the logs against them)",
            count(s.digests_skipped)
        ));
    }
    if s.other_logs_skipped > 0 {
        skipped.push(format!(
            "{} {} of other AWS services' logs",
            count(s.other_logs_skipped),
            if s.other_logs_skipped == 1 { "file" } else { "files" }
        ));
    }
    if s.files_foreign > 0 {
        skipped.push(format!(
            "{} JSON {} not CloudTrail",
            count(s.files_foreign),
            if s.files_foreign == 1 { "file" } else { "files" }
        ));
    }
    if !skipped.is_empty() {
        writeln!(out, "  skipped: {}", skipped.join(", "))?;
    }
    if s.files_failed + s.files_damaged + s.records_invalid > 0 {
        writeln!(
            out,
            "  problems: {} files unreadable, {} files read in part, {} invalid records (details above)",
            count(s.files_failed),
            count(s.files_damaged),
            count(s.records_invalid)
        )?;
    }
    if s.records_repeated_key > 0 {
        writeln!(
            out,
            "  altered? {} {} with a field CloudTrail writes once written twice (read with the last value; details above)",
            count(s.records_repeated_key),
            if s.records_repeated_key == 1 {
                "record"
            } else {
                "records"
            }
        )?;
    }
    writeln!(
        out,
        "  rules: {} ({} correlations; {} look at every record)",
        summary.rules, summary.correlations, summary.rules_unindexed
    )?;
    let mut by_level: BTreeMap<Level, u64> = BTreeMap::new();
    let mut by_rule: BTreeMap<(&str, Level), u64> = BTreeMap::new();
    for f in findings {
        *by_level.entry(f.level).or_default() += 1;
        *by_rule.entry((&f.rule_id, f.level)).or_default() += 1;
    }
    let levels: Vec<String> = by_level.iter().rev().map(|(l, n)| format!("{l} {n}")).collect();
    if findings.is_empty() {
        writeln!(out, "  findings: none")?;
    } else {
        writeln!(
            out,
            "  findings: {} ({})",
            count(findings.len() as u64),
            levels.join(", ")
        )?;
    }
    let mut rules: Vec<_> = by_rule.into_iter().collect();
    rules.sort_by(|((a, la), na), ((b, lb), nb)| lb.cmp(la).then(nb.cmp(na)).then(a.cmp(b)));
    let rules: Vec<_> = rules
        .into_iter()
        .map(|((id, level), n)| (crate::escape::terminal(id), level, n))
        .collect();
    let width = rules.iter().map(|(id, _, _)| id.chars().count()).max().unwrap_or(0);
    for (id, level, n) in rules {
        writeln!(out, "    {id:<width$}  {:>7}  {level}", count(n))?;
    }
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    writeln!(
        out,
        "  time: {:.2} s, {} records/s, {}/s of JSON",
        s.elapsed.as_secs_f64(),
        count((s.records_read as f64 / secs) as u64),
        bytes((s.bytes_inflated as f64 / secs) as u64)
    )
}

/// `1234567` -> `1,234,567`.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2} GB", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} kB", n as f64 / 1e3),
        n => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(100), "100");
        assert_eq!(bytes(1_500_000), "1.5 MB");
    }
}
