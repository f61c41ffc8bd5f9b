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
use crate::process::Process;
use crate::write::{finish, output};

pub fn run(process: &Process, args: &VerifyArgs) -> Result<Outcome> {
    let now = Utc::now();
    let bound = |text: &Option<String>| text.as_deref().map(|t| parse_bound(t, now)).transpose();
    let window = TimeWindow::new(bound(&args.since)?, bound(&args.until)?)?;
    let remote = args.paths.iter().any(|p| p.to_string_lossy().starts_with("s3://"));
    let result = if remote {
        let [path] = args.paths.as_slice() else {
            bail!("verify s3://... takes one bucket and no other paths");
        };
        in_bucket(process, args, &path.to_string_lossy(), window)?
    } else {
        if !args.public_keys.is_empty() {
            bail!(
                "--public-keys is for s3://: a copy of the files keeps no signatures (S3 keeps them in each digest's \
                 metadata)"
            );
        }
        let (result, errors) = verify(&args.paths, window);
        for error in &errors {
            tracing::warn!("{}", trailhound_event::printable(error));
        }
        result
    };
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

/// The bucket at `uri` checked where it is, with its digests' signatures.
#[cfg(feature = "aws")]
fn in_bucket(process: &Process, args: &VerifyArgs, uri: &str, window: TimeWindow) -> Result<Verification> {
    use anyhow::Context as _;
    use trailhound_source::aws::{s3::TrailBucket, verify as bucket};
    use trailhound_source::integrity::{PublicKeys, verify_store};
    let trailhound_source::Input::S3 { bucket: name, prefix } = trailhound_source::Input::parse(uri)? else {
        bail!("{uri}: an S3 source is s3://BUCKET or s3://BUCKET/PREFIX");
    };
    let runtime = process.runtime()?;
    let aws = process.aws(&crate::settings::AwsOptions::resolve(&args.aws))?;
    let trail = runtime.block_on(TrailBucket::open(aws, &name, &prefix))?;
    let keys = runtime.block_on(bucket::keys(&trail, window))?;
    let mut unchecked = None;
    let public = if args.public_keys.is_empty() {
        match runtime.block_on(bucket::public_keys(aws, &keys)) {
            Ok(found) if found.is_empty() => {
                unchecked = Some("CloudTrail returned no public keys (ListPublicKeys)".to_string());
                None
            }
            Ok(found) => Some(found),
            Err(err) => {
                unchecked = Some(format!("CloudTrail's public keys could not be had: {err}"));
                None
            }
        }
    } else {
        let mut found = PublicKeys::default();
        for file in &args.public_keys {
            let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
            found
                .add_cli_json(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        }
        Some(found)
    };
    if let Some(why) = &unchecked {
        tracing::warn!(
            "{}; digest signatures are not checked",
            trailhound_event::printable(why)
        );
    }
    let store = bucket::BucketStore {
        bucket: &trail,
        runtime: runtime.handle(),
    };
    let mut result = verify_store(store.names(&keys), &store, public.as_ref(), window);
    if unchecked.is_some() {
        result.signatures_unchecked_because = unchecked;
    }
    Ok(result)
}

#[cfg(not(feature = "aws"))]
fn in_bucket(_: &Process, _: &VerifyArgs, uri: &str, _: TimeWindow) -> Result<Verification> {
    bail!("{uri}: this trailhound was built without AWS support (the `aws` feature)")
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
    if d.signatures_valid + d.signatures_invalid + d.unsigned > 0 {
        writeln!(
            out,
            "signatures: {} valid; {} invalid, {} missing",
            d.signatures_valid, d.signatures_invalid, d.unsigned
        )?;
    }
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
    let signed = result.signatures_unchecked_because.is_none();
    let rows: Vec<Vec<Cell>> = result
        .chains
        .iter()
        .map(|c| {
            let mut row = vec![
                Cell::Text(c.account.clone()),
                Cell::Text(c.region.clone()),
                Cell::Text(c.trail.clone()),
                Cell::Text(c.home_region.clone()),
                Cell::Count(c.digests),
                Cell::Text(time(c.from)),
                Cell::Text(time(c.to)),
            ];
            // Whether the newest digest's signature holds: shown when signatures were checked.
            if signed {
                row.push(Cell::Text(if c.newest_signed { "yes" } else { "no" }.to_string()));
            }
            row
        })
        .collect();
    let header = [
        "account",
        "region",
        "trail",
        "home_region",
        "digests",
        "from",
        "to",
        "newest signed",
    ];
    write_rows(
        out,
        RowFormat::Table,
        header.get(..if signed { 8 } else { 7 }).unwrap_or(&header),
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
    match &result.signatures_unchecked_because {
        Some(why) => writeln!(
            out,
            "\nSignatures not checked: {}. The newest digest of each chain is vouched for only by its signature.",
            trailhound_output::terminal(why)
        ),
        None => writeln!(
            out,
            "\nEvery digest's signature was checked against CloudTrail's public keys."
        ),
    }
}
