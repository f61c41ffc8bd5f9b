//! `trailhound verify`: a copy of a trail's bucket checked against its digest files
//! ([`trailhound_source::integrity`]).

use std::io::Write;

use anyhow::{Result, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use trailhound_output::{Cell, RowFormat, write_rows};
use trailhound_source::integrity::{Verification, verify};
use trailhound_source::{TimeWindow, parse_bound};

use crate::args::{TableOrJson, VerifyArgs};
use crate::commands::Outcome;
use crate::write::{finish, output};

pub fn run(args: &VerifyArgs) -> Result<Outcome> {
    let now = Utc::now();
    let bound = |text: &Option<String>| text.as_deref().map(|t| parse_bound(t, now)).transpose();
    let window = TimeWindow::new(bound(&args.since)?, bound(&args.until)?)?;
    let (result, errors) = verify(&args.paths, window);
    for error in &errors {
        tracing::warn!("{}", trailhound_event::printable(error));
    }
    if result.digests.found == 0 {
        bail!(
            "no CloudTrail digest files (`*_CloudTrail-Digest_*.json.gz`) under the paths given: log file \
             validation may be off for the trail, or its CloudTrail-Digest/ folders were not copied"
        );
    }
    let mut out = output(args.output.as_deref())?;
    let written = match args.format {
        TableOrJson::Json => trailhound_output::write_json(&mut out, &result, true).and_then(|()| writeln!(out)),
        TableOrJson::Table => table(&mut out, &result),
    };
    finish(written, &mut out)?;
    Ok(if result.clean() {
        Outcome::Clean
    } else {
        Outcome::Findings
    })
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn table(out: &mut dyn Write, result: &Verification) -> std::io::Result<()> {
    let (d, l) = (&result.digests, &result.logs);
    writeln!(
        out,
        "digest files: {} found, {} links valid; {} modified, {} missing, {} unlinked, {} moved, {} unreadable, {} gaps",
        d.found, d.links_valid, d.modified, d.missing, d.unlinked, d.moved, d.unreadable, d.gaps
    )?;
    if d.outside_window > 0 {
        writeln!(
            out,
            "  {} of them outside the window (their links read, not judged)",
            d.outside_window
        )?;
    }
    writeln!(
        out,
        "log files: {} listed, {} valid; {} modified, {} missing, {} unreadable",
        l.listed, l.valid, l.modified, l.missing, l.unreadable
    )?;
    writeln!(
        out,
        "local log files: {} found; {} unlisted in time the digests cover, {} not judged (outside that time or the window)",
        l.local, l.unlisted, l.not_covered
    )?;
    writeln!(out, "\nChains")?;
    let rows: Vec<Vec<Cell>> = result
        .chains
        .iter()
        .map(|c| {
            vec![
                Cell::Text(c.account.clone()),
                Cell::Text(c.region.clone()),
                Cell::Text(c.trail.clone()),
                Cell::Text(c.home_region.clone()),
                Cell::Count(c.digests),
                Cell::Text(time(c.from)),
                Cell::Text(time(c.to)),
            ]
        })
        .collect();
    write_rows(
        out,
        RowFormat::Table,
        &["account", "region", "trail", "home_region", "digests", "from", "to"],
        &rows,
        60,
    )?;
    writeln!(out, "\nProblems")?;
    if result.problems.is_empty() {
        writeln!(out, "none")?;
    } else {
        let rows: Vec<Vec<Cell>> = result
            .problems
            .iter()
            .map(|p| {
                let what = p.file.clone().or_else(|| p.object.clone());
                let span = p
                    .from
                    .zip(p.to)
                    .map(|(from, to)| format!("{} to {}", time(from), time(to)));
                vec![
                    Cell::Text(p.kind.as_str().to_string()),
                    Cell::from(what),
                    Cell::from(span),
                    Cell::Text(p.detail.clone()),
                ]
            })
            .collect();
        write_rows(out, RowFormat::Table, &["kind", "file", "time", "detail"], &rows, 0)?;
    }
    writeln!(
        out,
        "\nThe newest digest of each chain is vouched for only by its signature, which S3 keeps in the \
         object's metadata and a copy does not hold."
    )
}
