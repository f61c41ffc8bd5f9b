//! `trailhound context ranges | show`: install AWS's address ranges, and describe what a hunt's
//! `trailhound.` fields are derived from. Nothing here calls AWS.

use std::io::{self, Read, Write};

use anyhow::{Context as _, Result};
use trailhound_context::{AwsRanges, Baselines};
use trailhound_event::printable;

use crate::args::{ContextArgs, ContextCommand};
use crate::commands::Outcome;
use crate::settings::{installed_ranges_path, store_path};

/// Ranges older than this are called stale (AWS publishes changes several times a week).
const STALE_DAYS: i64 = 30;

pub fn run(command: &ContextCommand) -> Result<Outcome> {
    match command {
        ContextCommand::Ranges { file } => install(file),
        ContextCommand::Show { context, store } => show(context, store.as_deref()),
    }
}

fn install(file: &std::path::Path) -> Result<Outcome> {
    let text = if file.as_os_str() == "-" {
        let mut text = String::new();
        io::stdin()
            .take(trailhound_context::ranges::FILE_LIMIT)
            .read_to_string(&mut text)
            .context("reading stdin")?;
        text
    } else {
        let bytes = fs_err::read(file)?;
        String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8 text", file.display()))?
    };
    let ranges = AwsRanges::parse(&text).with_context(|| format!("{}: not AWS's ip-ranges.json", file.display()))?;
    let target = installed_ranges_path().context("no data directory to keep the ranges in; use --aws-ranges FILE")?;
    if let Some(parent) = target.parent() {
        fs_err::create_dir_all(parent)?;
    }
    // Written beside, then renamed: a hunt never reads half a file.
    let partial = target.with_extension("json.partial");
    fs_err::write(&partial, text.as_bytes())?;
    fs_err::rename(&partial, &target)?;
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "installed {} ({} prefixes, published {}) as {}",
        file.display(),
        ranges.len(),
        published(&ranges),
        target.display()
    )?;
    Ok(Outcome::Clean)
}

fn published(ranges: &AwsRanges) -> String {
    match ranges.created() {
        Some(created) => {
            let days = (chrono::Utc::now().naive_utc() - created).num_days();
            let stale = if days > STALE_DAYS {
                "; stale, refresh it with `trailhound context ranges FILE`"
            } else {
                ""
            };
            format!("{} UTC, {days} days ago{stale}", created.format("%Y-%m-%d %H:%M"))
        }
        None => "at an unknown date".to_string(),
    }
}

fn show(args: &ContextArgs, store: Option<&std::path::Path>) -> Result<Outcome> {
    let mut out = io::stdout().lock();
    let scan = crate::args::ContextArgs {
        no_context: false,
        ..args.clone()
    };
    let options = crate::settings::context_options(&scan)?.context("context")?;
    if options.ranges.is_empty() {
        writeln!(
            out,
            "AWS ranges: none (no --aws-ranges, and none installed): trailhound.src.aws is known only for service names, AWS Internal and VPC endpoints"
        )?;
    } else {
        writeln!(
            out,
            "AWS ranges: {} prefixes, published {}",
            options.ranges.len(),
            published(&options.ranges)
        )?;
    }
    match &options.geoip {
        Some(geoip) => {
            for line in geoip.describe() {
                writeln!(out, "GeoIP: {}", printable(&line))?;
            }
        }
        None => writeln!(
            out,
            "GeoIP: none (--geoip MMDB): no ASN or country; networks are /16 (IPv4) and /48 (IPv6) prefixes"
        )?,
    }
    let path = store_path(store)?;
    if !path.is_file() {
        writeln!(
            out,
            "baselines: no store at {} (hunts with --store keep them)",
            path.display()
        )?;
        return Ok(Outcome::Clean);
    }
    let store = trailhound_store::Store::open_read_only(&path)?;
    match store.state("baselines")? {
        None => writeln!(out, "baselines: none yet in {}", path.display())?,
        Some(bytes) => match Baselines::load(&bytes) {
            Ok(baselines) => {
                let (principals, keys, roles) = baselines.sizes();
                let history = baselines.history().num_days();
                let needed = options.baselines.min_history.num_days();
                let state = if baselines.trained(&options.baselines) {
                    "trained".to_string()
                } else {
                    format!("learning ({history} of {needed} days)")
                };
                writeln!(
                    out,
                    "baselines: {state}; {history} days of history; {principals} principals, {keys} access keys, {roles} roles; {} bytes in {}",
                    bytes.len(),
                    path.display()
                )?;
            }
            Err(err) => writeln!(out, "baselines: {err} (the next hunt with this store starts afresh)")?,
        },
    }
    Ok(Outcome::Clean)
}
