//! `trailhound findings list | ack | explain | reopen`: triage of stored findings.

use std::io::{self, IsTerminal};
use std::path::PathBuf;

use anyhow::Result;
use chrono::{DateTime, Utc};
use trailhound_finding::Status;
use trailhound_output::StoredWriter;
use trailhound_source::parse_bound;
use trailhound_store::{Filter, Store};

use crate::args::{FindingsCommand, StoreArg, StoredFormat};
use crate::commands::Outcome;
use crate::settings::store_path;
use crate::write::{finish, output};

/// What a `findings` command does, resolved from its arguments.
pub enum FindingsSettings {
    List {
        store: PathBuf,
        filter: Filter,
        /// `table`, `json` or `jsonl`.
        format: &'static str,
    },
    Triage {
        store: PathBuf,
        ids: Vec<i64>,
        status: Status,
        reason: Option<String>,
        ticket: Option<String>,
    },
}

impl FindingsSettings {
    pub fn resolve(command: &FindingsCommand, now: DateTime<Utc>) -> Result<FindingsSettings> {
        let triage = |store: &StoreArg, ids: &[i64], status, reason: Option<&String>, ticket: Option<&String>| {
            Ok(FindingsSettings::Triage {
                store: store_path(store.store.as_deref())?,
                ids: ids.to_vec(),
                status,
                reason: reason.cloned(),
                ticket: ticket.cloned(),
            })
        };
        match command {
            FindingsCommand::List {
                store,
                status,
                rule,
                since,
                format,
            } => {
                let status = match status.as_deref() {
                    None => None,
                    Some(text) => Some(
                        Status::parse(text)
                            .ok_or_else(|| anyhow::anyhow!("--status: {text:?} is not new, acked or explained"))?,
                    ),
                };
                let since = since.as_deref().map(|t| parse_bound(t, now)).transpose()?;
                Ok(FindingsSettings::List {
                    store: store_path(store.store.as_deref())?,
                    filter: Filter {
                        status,
                        rule: rule.clone(),
                        since: since.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                        limit: None,
                    },
                    format: match format {
                        Some(StoredFormat::Table) => "table",
                        Some(StoredFormat::Json) => "json",
                        Some(StoredFormat::Jsonl) => "jsonl",
                        None if io::stdout().is_terminal() => "table",
                        None => "jsonl",
                    },
                })
            }
            FindingsCommand::Ack { store, ids } => triage(store, ids, Status::Acked, None, None),
            FindingsCommand::Reopen { store, ids } => triage(store, ids, Status::New, None, None),
            FindingsCommand::Explain {
                store,
                ids,
                reason,
                ticket,
            } => triage(store, ids, Status::Explained, Some(reason), ticket.as_ref()),
        }
    }
}

pub fn run(settings: &FindingsSettings) -> Result<Outcome> {
    match settings {
        FindingsSettings::List { store, filter, format } => {
            let store = Store::open_read_only(store)?;
            let mut out = output(None)?;
            // One finding at a time from the store to the output (a table keeps its cells).
            let mut writer = StoredWriter::new(format);
            let mut written = Ok(());
            store.each(filter, &mut |finding| {
                written = writer.push(&mut out, &finding);
                written.is_ok()
            })?;
            let written = written.and_then(|()| writer.finish(&mut out));
            finish(written, &mut out)?;
            Ok(Outcome::Clean)
        }
        FindingsSettings::Triage {
            store,
            ids,
            status,
            reason,
            ticket,
        } => triage(store, ids, *status, reason.as_deref(), ticket.as_deref()),
    }
}

fn triage(
    path: &std::path::Path,
    ids: &[i64],
    status: Status,
    reason: Option<&str>,
    ticket: Option<&str>,
) -> Result<Outcome> {
    let mut store = Store::open(path)?;
    let changed = store.set_status(ids, status, reason, ticket)?;
    tracing::info!("{changed} findings marked {}", status.as_str());
    Ok(Outcome::Clean)
}
