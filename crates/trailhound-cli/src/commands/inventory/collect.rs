//! `trailhound inventory collect`: one snapshot of the account, to a file, the store or stdout,
//! and a one-line summary on stderr.
//!
//! Calls that fail are in the snapshot (and reported here); they do not fail the command. Only
//! an error that stops every call (no region, no or expired credentials) exits 2.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Context, Result};
use trailhound_inventory::Snapshot;
use trailhound_inventory::collect::{CollectOptions, collect};
use trailhound_store::Store;

use super::{CollectSettings, to_stdout};
use crate::commands::Outcome;

pub fn run(process: &crate::process::Process, settings: &CollectSettings) -> Result<Outcome> {
    let options = CollectOptions {
        regions: settings.regions.clone(),
        concurrency: settings.concurrency,
    };
    let aws = process.aws(&settings.aws)?;
    let snapshot = process.runtime()?.block_on(collect(aws, &options))?;
    let json = snapshot.to_json_pretty();
    let mut saved = Vec::new();
    let to_stdout_too = settings.out.as_ref().is_some_and(|p| p.as_os_str() == "-")
        || (settings.out.is_none() && settings.store.is_none());
    if let Some(path) = settings.out.as_ref().filter(|p| p.as_os_str() != "-") {
        fs_err::write(path, format!("{json}\n"))?;
        saved.push(format!("written to {}", path.display()));
    }
    if let Some(path) = &settings.store {
        let mut store = Store::open(path)?;
        let collected = snapshot
            .collected_at
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        let id = store
            .save_snapshot(&collected, snapshot.account_id.as_deref(), &json)
            .with_context(|| format!("saving the snapshot in {}", path.display()))?;
        saved.push(format!("saved as snapshot {id} in {}", path.display()));
    }
    if to_stdout_too {
        to_stdout("the snapshot", |out| writeln!(out, "{json}"))?;
    }
    for error in &snapshot.errors {
        let region = error.region.as_deref().map(|r| format!(" in {r}")).unwrap_or_default();
        tracing::warn!(
            "could not collect {} {}{region}: {}",
            error.service,
            error.operation,
            trailhound_event::printable(&error.message)
        );
    }
    if settings.summary {
        let mut err = std::io::stderr().lock();
        // A closed stderr is no reason to fail the run.
        let _ = writeln!(err, "{}", summary(&snapshot));
        for line in saved {
            let _ = writeln!(err, "  {line}");
        }
    }
    Ok(Outcome::Clean)
}

/// `inventory: 42 items (iam_user 3, ...) in 2 regions of account 123456789012; 1 collection
/// error; 0.8 s`.
pub fn summary(snapshot: &Snapshot) -> String {
    let mut per_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for item in &snapshot.items {
        *per_kind.entry(item.kind.as_str()).or_default() += 1;
    }
    // Kinds in the snapshot's order (IAM first), not alphabetically.
    let mut kinds: Vec<(usize, &str, usize)> = per_kind
        .into_iter()
        .map(|(name, count)| {
            let rank = trailhound_inventory::Kind::ALL
                .iter()
                .position(|k| k.as_str() == name)
                .unwrap_or(usize::MAX);
            (rank, name, count)
        })
        .collect();
    kinds.sort_unstable();
    let counts: Vec<String> = kinds.iter().map(|(_, name, count)| format!("{name} {count}")).collect();
    let errors = snapshot.errors.len();
    let account = snapshot.account_id.as_deref().unwrap_or("unknown");
    let regions = snapshot.regions.len();
    format!(
        "inventory: {} items ({}) in {regions} region{} of account {account}; {errors} collection error{}; {:.1} s",
        snapshot.items.len(),
        counts.join(", "),
        if regions == 1 { "" } else { "s" },
        if errors == 1 { "" } else { "s" },
        snapshot.elapsed_ms as f64 / 1000.0
    )
}
