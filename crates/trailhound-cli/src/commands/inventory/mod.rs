//! `trailhound inventory collect | show | diff | audit`: snapshots of an account, what changed
//! between two, and the findings of one.
//!
//! This module resolves the arguments and finds snapshots (a JSON file, a store id, or the
//! latest ones in the store); collecting, comparing and judging are trailhound-inventory's,
//! turning snapshots and diffs into rows and lines is [`view`]'s, and printing
//! trailhound-output's.

mod audit;
#[cfg(feature = "aws")]
mod collect;
mod diff;
mod settings;
mod show;
mod view;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use trailhound_inventory::Snapshot;
use trailhound_store::Store;

use crate::args::InventoryCommand;
use crate::commands::Outcome;
use crate::settings::store_path;

pub use settings::{AuditSettings, CollectSettings, DiffSettings, Origin, ShowSettings};

pub fn run(process: &crate::process::Process, command: &InventoryCommand, quiet: bool) -> Result<Outcome> {
    match command {
        #[cfg(feature = "aws")]
        InventoryCommand::Collect(args) => collect::run(process, &CollectSettings::resolve(args, quiet)?),
        #[cfg(not(feature = "aws"))]
        InventoryCommand::Collect(_) => {
            let _ = process;
            bail!("inventory collect needs AWS support (this trailhound was built without the `aws` feature)")
        }
        InventoryCommand::Show(args) => show::run(&ShowSettings::resolve(args, quiet)?),
        InventoryCommand::Diff(args) => diff::run(&DiffSettings::resolve(args, quiet)?),
        InventoryCommand::Audit(args) => audit::run(&AuditSettings::resolve(args, quiet, chrono::Utc::now())?),
    }
}

/// A snapshot and how to name it in messages and findings.
pub struct Loaded {
    pub snapshot: Snapshot,
    /// `snapshot.json`, or `snapshot 3 in trailhound.db`.
    pub label: String,
    /// The audit findings' `source_file`: the file's path, or `inventory:COLLECTED_AT`.
    pub source: String,
}

/// Opens the store to read snapshots from; a store that does not exist is an error, not an
/// empty store created on the spot.
fn open_store(given: Option<&Path>) -> Result<(Store, PathBuf)> {
    let path = store_path(given)?;
    if !path.exists() {
        bail!(
            "no case store at {}: run `trailhound inventory collect --store {}` first, or give --from FILE",
            path.display(),
            path.display()
        );
    }
    Ok((Store::open_read_only(&path)?, path))
}

fn read_file(path: &Path) -> Result<Loaded> {
    let text = fs_err::read_to_string(path)?;
    let snapshot = Snapshot::from_json(&text).with_context(|| format!("{}", path.display()))?;
    Ok(Loaded {
        snapshot,
        label: path.display().to_string(),
        source: path.display().to_string(),
    })
}

fn read_stored(store: &Store, path: &Path, id: i64) -> Result<Loaded> {
    let Some(text) = store.snapshot(id)? else {
        bail!(
            "no snapshot {id} in {} (see `trailhound inventory show --store {}`)",
            path.display(),
            path.display()
        );
    };
    let snapshot = Snapshot::from_json(&text).with_context(|| format!("snapshot {id} in {}", path.display()))?;
    let collected = snapshot.collected_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Ok(Loaded {
        label: format!("snapshot {id} in {}", path.display()),
        source: format!("inventory:{collected}"),
        snapshot,
    })
}

/// Loads the snapshot `origin` names.
fn load(origin: &Origin, store: Option<&Path>) -> Result<Loaded> {
    match origin {
        Origin::File(path) => read_file(path),
        Origin::Stored(id) => {
            let (store, path) = open_store(store)?;
            read_stored(&store, &path, *id)
        }
    }
}

/// The `n` latest snapshots in the store, newest first; fewer than `n` is an error that says
/// how to get them.
fn latest(store: Option<&Path>, n: usize, needed_by: &str) -> Result<Vec<Loaded>> {
    let (store, path) = open_store(store)?;
    let ids = store.latest_snapshots(n)?;
    if ids.len() < n {
        bail!(
            "{needed_by} needs {n} snapshots and {} holds {}: run `trailhound inventory collect --store {}`",
            path.display(),
            ids.len(),
            path.display()
        );
    }
    ids.iter().map(|(id, _, _)| read_stored(&store, &path, *id)).collect()
}

/// Loads `origin`, or the latest snapshot in the store.
fn load_or_latest(origin: Option<&Origin>, store: Option<&Path>, needed_by: &str) -> Result<Loaded> {
    match origin {
        Some(origin) => load(origin, store),
        None => latest(store, 1, needed_by)?
            .pop()
            .context("the store returned no snapshot"),
    }
}

/// Writes to stdout through `write`; a reader that went away (`| head`) is not an error.
fn to_stdout(what: &str, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<()> {
    let mut out = crate::write::output(None)?;
    let result = write(&mut out);
    crate::write::finish(result, &mut out).with_context(|| format!("writing {what}"))
}
