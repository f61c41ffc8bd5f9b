//! `trailhound inventory diff`: what was added, removed and changed between two snapshots,
//! with `--explain` the known reasons of the added and changed items.
//!
//! The listing is trailhound-output's; the explanations follow it (text: one line each; JSON:
//! an `explained` array beside `added`, `removed` and `changed`).

use std::io::Write;

use anyhow::Result;
use serde_json::{Value, json};
use trailhound_inventory::{Diff, Item, Snapshot, diff, diff_with_activity, explain_item};
use trailhound_output::terminal;

use super::view::write_diff;
use trailhound_finding::{Explanation, Reasons};
use trailhound_hunt::load_reasons;

use super::{DiffSettings, Loaded, latest, load, to_stdout};
use crate::commands::Outcome;

pub fn run(settings: &DiffSettings) -> Result<Outcome> {
    let store = settings.store.as_deref();
    let (from, to) = match (&settings.from, &settings.to) {
        (Some(from), Some(to)) => (load(from, store)?, load(to, store)?),
        (Some(from), None) => {
            let from = load(from, store)?;
            let to = latest(store, 1, "inventory diff without --to")?.remove(0);
            (from, to)
        }
        // Settings refuse --to without --from.
        (None, _) => {
            let mut two = latest(store, 2, "inventory diff without --from")?;
            let older = two.remove(1);
            (older, two.remove(0))
        }
    };
    if from.snapshot.account_id != to.snapshot.account_id {
        tracing::warn!(
            "comparing snapshots of different accounts ({} and {})",
            from.snapshot.account_id.as_deref().unwrap_or("unknown"),
            to.snapshot.account_id.as_deref().unwrap_or("unknown")
        );
    }
    let changes = if settings.with_activity {
        diff_with_activity(&from.snapshot, &to.snapshot)
    } else {
        diff(&from.snapshot, &to.snapshot)
    };
    let reasons = settings.explain.as_deref().map(load_reasons).transpose()?;
    let explained = match &reasons {
        Some(reasons) => explanations(reasons, &changes, &to.snapshot),
        None => Vec::new(),
    };
    if !settings.quiet && !settings.json {
        let _ = writeln!(std::io::stderr().lock(), "{} -> {}", heading(&from), heading(&to));
    }
    to_stdout("the diff", |out| {
        if settings.json {
            let mut value = serde_json::to_value(&changes).unwrap_or(Value::Null);
            if reasons.is_some()
                && let Value::Object(map) = &mut value
            {
                let list = explained
                    .iter()
                    .map(|(item, why)| {
                        json!({
                            "id": item.stable_id(),
                            "kind": item.kind,
                            "name": item.name,
                            "reason": why.reason,
                            "ticket": why.ticket,
                        })
                    })
                    .collect();
                map.insert("explained".into(), Value::Array(list));
            }
            trailhound_output::write_json(&mut *out, &value, true)?;
            return writeln!(out);
        }
        write_diff(out, &changes, false)?;
        if reasons.is_some() {
            writeln!(out, "explained by known reasons: {}", explained.len())?;
            for (item, why) in &explained {
                let ticket = why.ticket.as_deref().map(|t| format!(" ({t})")).unwrap_or_default();
                writeln!(
                    out,
                    "  {} {}: {}{}",
                    item.kind,
                    terminal(&item.stable_id()),
                    terminal(&why.reason),
                    terminal(&ticket)
                )?;
            }
        }
        Ok(())
    })?;
    Ok(Outcome::Clean)
}

fn heading(loaded: &Loaded) -> String {
    let collected = loaded
        .snapshot
        .collected_at
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    format!("{} (collected {collected})", loaded.label)
}

/// The added and changed items (as they are in `to`) that a reason explains.
fn explanations<'s>(reasons: &'s Reasons, changes: &Diff, to: &'s Snapshot) -> Vec<(&'s Item, &'s Explanation)> {
    let today = chrono::Utc::now().date_naive();
    let changed = changes.changed.iter().filter_map(|change| {
        to.items
            .iter()
            .find(|i| i.kind == change.kind && i.region == change.region && i.id == change.id)
    });
    let added = changes
        .added
        .iter()
        .filter_map(|added| to.items.iter().find(|i| i.key() == added.key()));
    added
        .chain(changed)
        .filter_map(|item| explain_item(reasons, item, today).map(|why| (item, why)))
        .collect()
}
