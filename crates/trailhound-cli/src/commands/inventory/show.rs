//! `trailhound inventory show [TABLE]`: one table of a snapshot, or how many items each table
//! holds; which snapshot it is goes to stderr.

use std::io::Write;

use anyhow::Result;
use trailhound_inventory::Table;
use trailhound_output::{RowFormat, write_rows};

use super::view::write_inventory_table;

use super::{ShowSettings, load_or_latest, to_stdout};
use crate::commands::Outcome;

pub fn run(settings: &ShowSettings) -> Result<Outcome> {
    let loaded = load_or_latest(settings.from.as_ref(), settings.store.as_deref(), "inventory show")?;
    let snapshot = &loaded.snapshot;
    if !settings.quiet && settings.format == RowFormat::Table {
        let collected = snapshot.collected_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let account = snapshot.account_id.as_deref().unwrap_or("unknown");
        let _ = writeln!(
            std::io::stderr().lock(),
            "{}: account {account}, collected {collected}",
            loaded.label
        );
    }
    to_stdout("the inventory", |out| match settings.table {
        Some(table) => write_inventory_table(out, snapshot, table, settings.format, settings.max_width),
        None => {
            let rows: Vec<Vec<String>> = Table::ALL
                .iter()
                .map(|table| {
                    let count = snapshot
                        .items
                        .iter()
                        .filter(|i| table.kinds().contains(&i.kind))
                        .count();
                    vec![table.as_str().to_string(), count.to_string()]
                })
                .chain(std::iter::once(vec![
                    "collection-errors".to_string(),
                    snapshot.errors.len().to_string(),
                ]))
                .collect();
            write_rows(out, settings.format, &["table", "items"], &rows, settings.max_width)
        }
    })?;
    Ok(Outcome::Clean)
}
