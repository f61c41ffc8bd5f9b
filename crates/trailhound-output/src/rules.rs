//! Rule listings and rule test reports.

use std::io::{self, Write};

use serde::Serialize;
use trailhound_rules::Rule;
use trailhound_rules::testcase::Outcome;

use crate::escape::{terminal, write_json};

#[derive(Serialize)]
struct Listed<'a> {
    id: &'a str,
    level: &'a str,
    title: &'a str,
    tags: &'a [String],
    file: &'a str,
    tests: usize,
}

/// One line per rule (`json`: one array).
pub fn write_rule_list(out: &mut dyn Write, rules: &[&Rule], json: bool) -> io::Result<()> {
    if json {
        let listed: Vec<Listed<'_>> = rules
            .iter()
            .map(|r| Listed {
                id: &r.id,
                level: r.level.as_str(),
                title: &r.title,
                tags: &r.tags,
                file: &r.file,
                tests: r.tests.len(),
            })
            .collect();
        write_json(out, &listed, true)?;
        return writeln!(out);
    }
    let id_width = rules.iter().map(|r| r.id.len()).max().unwrap_or(2).max(2);
    writeln!(out, "{:<id_width$}  {:<13}  {:<60}  TAGS", "ID", "LEVEL", "TITLE")?;
    for rule in rules {
        writeln!(
            out,
            "{:<id_width$}  {:<13}  {:<60}  {}",
            terminal(&rule.id),
            rule.level,
            terminal(&rule.title),
            terminal(&rule.tags.join(" "))
        )?;
    }
    Ok(())
}

/// A rule's YAML and its test events.
pub fn write_rule(out: &mut dyn Write, rule: &Rule) -> io::Result<()> {
    writeln!(out, "# {} ({})", terminal(&rule.id), terminal(&rule.file))?;
    for line in rule.text.trim_end().lines() {
        writeln!(out, "{}", terminal(line))?;
    }
    if rule.tests.is_empty() {
        return writeln!(out, "\n# no test events");
    }
    writeln!(out, "\n# test events ({})", rule.tests.len())?;
    for (index, case) in rule.tests.iter().enumerate() {
        let verdict = if case.expect { "must match" } else { "must not match" };
        let records = case.records_json(&rule.id, index);
        match records.as_slice() {
            [one] => writeln!(out, "- {} [{verdict}]: {}", terminal(&case.name), terminal(one))?,
            many => {
                writeln!(out, "- {} [{verdict}], {} events:", terminal(&case.name), many.len())?;
                for record in many {
                    writeln!(out, "    {}", terminal(record))?;
                }
            }
        }
    }
    Ok(())
}

/// PASS/FAIL per rule; returns the number of failed tests.
pub fn write_test_report(out: &mut dyn Write, results: &[(&Rule, Vec<Outcome>)]) -> io::Result<usize> {
    let mut failed = 0;
    let mut untested = 0;
    let mut tests = 0;
    for (rule, outcomes) in results {
        tests += outcomes.len();
        if outcomes.is_empty() {
            untested += 1;
            writeln!(out, "NO TESTS {}", terminal(&rule.id))?;
            continue;
        }
        let bad: Vec<&Outcome> = outcomes.iter().filter(|o| !o.passed()).collect();
        if bad.is_empty() {
            writeln!(out, "PASS     {} ({} tests)", terminal(&rule.id), outcomes.len())?;
            continue;
        }
        failed += bad.len();
        writeln!(
            out,
            "FAIL     {} ({} of {} tests failed)",
            terminal(&rule.id),
            bad.len(),
            outcomes.len()
        )?;
        for outcome in bad {
            let why = match &outcome.result {
                Ok(true) => "matched but must not".to_string(),
                Ok(false) => "did not match but must".to_string(),
                Err(err) => format!("not a valid record: {err}"),
            };
            writeln!(out, "         - {}: {why}", terminal(&outcome.name))?;
        }
    }
    writeln!(
        out,
        "{} rules, {tests} tests, {failed} failed, {untested} rules without tests",
        results.len()
    )?;
    Ok(failed)
}
