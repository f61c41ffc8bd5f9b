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

/// PASS/FAIL per rule; returns the number of failures: failed tests, plus each rule without a
/// matching case or without a near-miss (a `match: false` case). The last line gives the
/// near-miss match rate: how many of the `match: false` cases the rules matched.
pub fn write_test_report(out: &mut dyn Write, results: &[(&Rule, Vec<Outcome>)]) -> io::Result<usize> {
    let mut failed = 0;
    let mut untested = 0;
    let mut tests = 0;
    let mut negatives = 0;
    let mut near_misses_matched = 0;
    let mut incomplete = 0;
    for (rule, outcomes) in results {
        tests += outcomes.len();
        if outcomes.is_empty() {
            untested += 1;
            writeln!(out, "NO TESTS {}", terminal(&rule.id))?;
            continue;
        }
        for outcome in outcomes.iter().filter(|o| !o.expect) {
            negatives += 1;
            if outcome.result == Ok(true) {
                near_misses_matched += 1;
            }
        }
        let has_positive = outcomes.iter().any(|o| o.expect);
        let has_negative = outcomes.iter().any(|o| !o.expect);
        let bad: Vec<&Outcome> = outcomes.iter().filter(|o| !o.passed()).collect();
        if !has_positive || !has_negative {
            incomplete += 1;
            let missing = if has_positive {
                "no near-miss case (match: false)"
            } else {
                "no matching case (match: true)"
            };
            writeln!(out, "INCOMPLETE {}: {missing}", terminal(&rule.id))?;
        }
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
    let rate = if negatives == 0 {
        0.0
    } else {
        100.0 * near_misses_matched as f64 / negatives as f64
    };
    writeln!(
        out,
        "{} rules, {tests} tests, {failed} failed, {untested} rules without tests, {incomplete} without both a matching and a near-miss case; near misses matched: {near_misses_matched} of {negatives} ({rate:.1}%)",
        results.len()
    )?;
    Ok(failed + incomplete + untested)
}

/// Tactics in matrix order, each with its techniques and the rule ids under them.
pub type CoverageMatrix = Vec<(String, Vec<(String, Vec<String>)>)>;

/// tactic -> technique -> rule ids, from the rules' ATT&CK tags. A rule with several tactics and
/// techniques sits under each technique of each of its tactics; a rule with techniques but no
/// tactic sits under `(no tactic)`.
pub fn coverage_matrix(rules: &[&Rule]) -> CoverageMatrix {
    use std::collections::BTreeMap;
    let mut matrix: BTreeMap<(usize, String), BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for rule in rules {
        let techniques: Vec<String> = rule.techniques().collect();
        if techniques.is_empty() {
            continue;
        }
        let mut tactics: Vec<(usize, String)> = rule
            .tags
            .iter()
            .filter_map(|t| t.strip_prefix("attack."))
            .filter_map(|t| {
                crate::ocsf::TACTICS
                    .iter()
                    .position(|(tag, _, _)| *tag == t)
                    .map(|i| (i, t.to_string()))
            })
            .collect();
        if tactics.is_empty() {
            tactics.push((crate::ocsf::TACTICS.len(), "(no tactic)".to_string()));
        }
        for tactic in tactics {
            let cell = matrix.entry(tactic).or_default();
            for technique in &techniques {
                cell.entry(technique.clone()).or_default().push(rule.id.clone());
            }
        }
    }
    matrix
        .into_iter()
        .map(|((_, tactic), techniques)| {
            let techniques = techniques
                .into_iter()
                .map(|(t, mut ids)| {
                    ids.sort();
                    ids.dedup();
                    (t, ids)
                })
                .collect();
            (tactic, techniques)
        })
        .collect()
}

#[derive(Serialize)]
struct CoverageCell<'a> {
    tactic: &'a str,
    technique: &'a str,
    rules: &'a [String],
}

/// The ATT&CK coverage of `rules`: per tactic, each technique and the rules under it (`json`:
/// one array of `{tactic, technique, rules}`).
pub fn write_coverage(out: &mut dyn Write, rules: &[&Rule], json: bool) -> io::Result<()> {
    let matrix = coverage_matrix(rules);
    if json {
        let cells: Vec<CoverageCell<'_>> = matrix
            .iter()
            .flat_map(|(tactic, techniques)| {
                techniques.iter().map(move |(technique, rules)| CoverageCell {
                    tactic,
                    technique,
                    rules,
                })
            })
            .collect();
        write_json(out, &cells, true)?;
        return writeln!(out);
    }
    let mut cells = 0;
    for (tactic, techniques) in &matrix {
        let rule_count: usize = techniques.iter().map(|(_, r)| r.len()).sum();
        writeln!(
            out,
            "{} ({} techniques, {} rules)",
            terminal(tactic),
            techniques.len(),
            rule_count
        )?;
        for (technique, ids) in techniques {
            cells += 1;
            writeln!(out, "  {:<10} {}", terminal(technique), terminal(&ids.join(", ")))?;
        }
    }
    let covered: std::collections::BTreeSet<&str> = matrix
        .iter()
        .flat_map(|(_, t)| t.iter().map(|(id, _)| id.as_str()))
        .collect();
    writeln!(
        out,
        "{} tactics, {} techniques, {cells} tactic x technique cells, {} rules",
        matrix.len(),
        covered.len(),
        rules.len()
    )?;
    Ok(())
}
