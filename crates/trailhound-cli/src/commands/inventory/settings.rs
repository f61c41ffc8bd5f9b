//! The inventory commands' arguments resolved into plain settings: regions, snapshot origins,
//! tables, formats, levels and times parsed, store paths decided.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use trailhound_finding::Level;
use trailhound_inventory::{Kind, Table};
use trailhound_output::{Format, RowFormat};
use trailhound_source::parse_bound;

use crate::args::{DiffFormat, InventoryAuditArgs, InventoryCollectArgs, InventoryDiffArgs, InventoryShowArgs};
use crate::settings::{AwsOptions, color_allowed, store_path};

/// Where a snapshot comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    /// A snapshot id in the case store.
    Stored(i64),
}

impl Origin {
    /// A path when such a file exists, else a store id when the text is a number, else a path
    /// (whose absence is then reported by name).
    pub fn parse(text: &str) -> Origin {
        let path = PathBuf::from(text);
        if !path.exists()
            && let Ok(id) = text.parse::<i64>()
        {
            return Origin::Stored(id);
        }
        Origin::File(path)
    }
}

/// `inventory collect`.
#[derive(Debug, Clone)]
pub struct CollectSettings {
    pub aws: AwsOptions,
    /// None: every enabled region.
    pub regions: Option<Vec<String>>,
    /// `-` is stdout.
    pub out: Option<PathBuf>,
    pub store: Option<PathBuf>,
    pub concurrency: usize,
    pub summary: bool,
}

impl CollectSettings {
    pub fn resolve(args: &InventoryCollectArgs, quiet: bool) -> Result<CollectSettings> {
        if args.concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        let regions = match args.regions.trim() {
            "" | "all" => None,
            list => {
                let regions: Vec<String> = list.split(',').map(|r| r.trim().to_string()).collect();
                if let Some(bad) = regions
                    .iter()
                    .find(|r| r.is_empty() || !r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
                {
                    bail!("--regions: {bad:?} is not a region name (us-east-1); give all or a comma-separated list");
                }
                Some(regions)
            }
        };
        Ok(CollectSettings {
            aws: AwsOptions::resolve(&args.aws),
            regions,
            out: args.out.clone(),
            store: match &args.store {
                Some(path) if !path.as_os_str().is_empty() => Some(path.clone()),
                Some(_) => Some(store_path(None)?),
                None => None,
            },
            concurrency: args.concurrency,
            summary: !quiet,
        })
    }
}

/// `inventory show`.
#[derive(Debug, Clone)]
pub struct ShowSettings {
    /// None: a count per table.
    pub table: Option<Table>,
    pub from: Option<Origin>,
    pub store: Option<PathBuf>,
    pub format: RowFormat,
    pub max_width: usize,
    pub quiet: bool,
}

impl ShowSettings {
    pub fn resolve(args: &InventoryShowArgs, quiet: bool) -> Result<ShowSettings> {
        let table = args
            .table
            .as_deref()
            .map(|text| {
                // A kind names its table too (`iam_user` for users).
                text.parse::<Table>()
                    .or_else(|err| text.parse::<Kind>().map(Kind::table).map_err(|_| err))
                    .map_err(anyhow::Error::msg)
            })
            .transpose()?;
        Ok(ShowSettings {
            table,
            from: args.from.as_deref().map(Origin::parse),
            store: args.store.clone().filter(|p| !p.as_os_str().is_empty()),
            format: args.format.into(),
            max_width: args.max_width,
            quiet,
        })
    }
}

/// `inventory diff`.
#[derive(Debug, Clone)]
pub struct DiffSettings {
    pub from: Option<Origin>,
    pub to: Option<Origin>,
    pub store: Option<PathBuf>,
    pub json: bool,
    pub explain: Option<PathBuf>,
    pub quiet: bool,
    pub with_activity: bool,
}

impl DiffSettings {
    pub fn resolve(args: &InventoryDiffArgs, quiet: bool) -> Result<DiffSettings> {
        let json = args.format == DiffFormat::Json;
        if args.to.is_some() && args.from.is_none() {
            bail!("--to needs --from: which snapshot should it be compared with?");
        }
        Ok(DiffSettings {
            from: args.from.as_deref().map(Origin::parse),
            to: args.to.as_deref().map(Origin::parse),
            store: args.store.clone().filter(|p| !p.as_os_str().is_empty()),
            json,
            explain: args.explain.clone(),
            quiet,
            with_activity: args.with_activity,
        })
    }
}

/// `inventory audit`.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub from: Option<Origin>,
    /// Where snapshots are read from (None: the default store).
    pub store: Option<PathBuf>,
    /// Where findings are remembered, when they are.
    pub record: Option<PathBuf>,
    pub new_only: bool,
    pub reasons: Option<PathBuf>,
    pub since: Option<DateTime<Utc>>,
    pub min_level: Option<Level>,
    pub fail_on: Option<Level>,
    pub format: Format,
    pub show_explained: bool,
    pub max_key_age_days: i64,
    pub max_unused_days: i64,
    pub color: bool,
    pub max_width: usize,
    pub summary: bool,
}

impl AuditSettings {
    pub fn resolve(args: &InventoryAuditArgs, quiet: bool, now: DateTime<Utc>) -> Result<AuditSettings> {
        let terminal = std::io::stdout().is_terminal();
        let format = match args.format {
            Some(format) => format.into(),
            None if terminal => Format::Table,
            None => Format::Jsonl,
        };
        let level = |text: &Option<String>, flag: &str| {
            text.as_deref()
                .map(|t| t.parse::<Level>().map_err(anyhow::Error::msg))
                .transpose()
                .with_context(|| flag.to_string())
        };
        if args.max_key_age < 1 || args.max_unused < 1 {
            bail!("--max-key-age and --max-unused must be at least 1 day");
        }
        let given_store = args.store.clone().filter(|p| !p.as_os_str().is_empty());
        Ok(AuditSettings {
            from: args.from.as_deref().map(Origin::parse),
            store: given_store.clone(),
            record: match (&args.store, args.new_only) {
                (Some(_), _) | (None, true) => Some(match given_store {
                    Some(path) => path,
                    None => store_path(None)?,
                }),
                (None, false) => None,
            },
            new_only: args.new_only,
            reasons: args.reasons.clone(),
            since: args
                .since
                .as_deref()
                .map(|t| parse_bound(t, now))
                .transpose()
                .context("--since")?,
            min_level: level(&args.min_level, "--min-level")?,
            fail_on: level(&args.fail_on, "--fail-on")?,
            format,
            show_explained: args.show_explained,
            max_key_age_days: args.max_key_age,
            max_unused_days: args.max_unused,
            color: terminal && color_allowed(),
            max_width: args.max_width,
            summary: !quiet,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_files_when_they_exist_and_ids_when_numbers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("7");
        assert_eq!(Origin::parse("7"), Origin::Stored(7));
        std::fs::write(&file, "{}").expect("write");
        let text = file.display().to_string();
        assert_eq!(Origin::parse(&text), Origin::File(file));
        assert_eq!(Origin::parse("snap.json"), Origin::File("snap.json".into()));
    }
}
