//! `trailhound rules sql`: each detection rule's query over the Athena CloudTrail table, in
//! Athena's or DuckDB's SQL; the rules with no exact SQL form listed with the reason.

use std::io::{self, Write};

use anyhow::Result;
use trailhound_event::printable;
use trailhound_rules::Rule;
use trailhound_rules::sql::{self, Dialect};

use crate::args::{RulesSqlArgs, SqlDialect};
use crate::commands::Outcome;
use crate::settings::rule_selection;
use crate::write::finish;

pub fn dialect(dialect: SqlDialect) -> Dialect {
    match dialect {
        SqlDialect::Athena => Dialect::Athena,
        SqlDialect::Duckdb => Dialect::Duckdb,
    }
}

/// A rule's text for a SQL comment line: no control characters, nothing that ends a line.
fn comment(text: &str) -> String {
    printable(text).replace(['\u{2028}', '\u{2029}', '\u{85}'], " ")
}

pub fn run(args: &RulesSqlArgs) -> Result<Outcome> {
    let mut selection = rule_selection(&args.rules)?;
    selection.only.extend(args.ids.iter().cloned());
    let (set, errors) = selection.load()?;
    for error in &errors {
        tracing::warn!("{}", printable(&error.to_string()));
    }
    let dialect = dialect(args.dialect);
    let detections: Vec<&Rule> = set
        .rules()
        .iter()
        .filter(|r| !r.is_filter() && !r.is_correlation())
        .collect();
    let compiled = sql::where_clauses(detections.iter().copied(), dialect);
    let mut out = io::BufWriter::new(io::stdout().lock());
    let result = (|| -> io::Result<()> {
        writeln!(
            out,
            "-- trailhound rules sql ({}): {} of {} detection rules compiled over {}",
            match dialect {
                Dialect::Athena => "athena",
                Dialect::Duckdb => "duckdb",
            },
            compiled.rules.len(),
            detections.len(),
            comment(&args.table)
        )?;
        for (rule, condition) in &compiled.rules {
            writeln!(out)?;
            writeln!(
                out,
                "-- {} ({}): {}",
                comment(&rule.id),
                rule.level,
                comment(&rule.title)
            )?;
            writeln!(out, "SELECT * FROM {} WHERE {condition};", args.table)?;
        }
        let correlations: Vec<&Rule> = set.rules().iter().filter(|r| r.is_correlation()).collect();
        if !correlations.is_empty() {
            writeln!(out)?;
            writeln!(
                out,
                "-- Correlations: trailhound evaluates them over the rows their rules select."
            )?;
            for rule in correlations {
                writeln!(
                    out,
                    "--   {}: {}",
                    comment(&rule.id),
                    comment(&rule.references().join(", "))
                )?;
            }
        }
        if !compiled.refused.is_empty() {
            writeln!(out)?;
            writeln!(out, "-- Not compiled (no exact SQL form; left to the local engine):")?;
            for (rule, reason) in &compiled.refused {
                writeln!(out, "--   {}: {}", comment(&rule.id), comment(&reason.0))?;
            }
        }
        Ok(())
    })();
    finish(result, &mut out)?;
    for (rule, reason) in &compiled.refused {
        tracing::warn!("not compiled: {}: {}", printable(&rule.id), printable(&reason.0));
    }
    Ok(Outcome::Clean)
}
