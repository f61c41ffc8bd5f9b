//! `trailhound findings list | ack | explain | reopen`: triage of stored findings.

use std::io::{self, IsTerminal, Write};

use anyhow::{Result, bail};
use trailhound_finding::Status;
use trailhound_output::write_stored;
use trailhound_source::parse_bound;
use trailhound_store::{Filter, Store};

use crate::args::FindingsCommand;
use crate::commands::Outcome;
use crate::settings::store_path;

pub fn run(command: &FindingsCommand) -> Result<Outcome> {
    match command {
        FindingsCommand::List {
            store,
            status,
            rule,
            since,
            format,
        } => {
            let store = Store::open(&store_path(store.store.as_deref())?)?;
            let status = match status.as_deref() {
                None => None,
                Some(text) => Some(
                    Status::parse(text)
                        .ok_or_else(|| anyhow::anyhow!("--status: {text:?} is not new, acked or explained"))?,
                ),
            };
            let since = since
                .as_deref()
                .map(|t| parse_bound(t, chrono::Utc::now()))
                .transpose()?;
            let filter = Filter {
                status,
                rule: rule.clone(),
                since: since.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                limit: None,
            };
            let listed = store.list(&filter)?;
            let format = match format.as_deref() {
                Some(f @ ("table" | "json" | "jsonl")) => f,
                Some(other) => bail!("--format: {other:?} is not table, json or jsonl"),
                None if io::stdout().is_terminal() => "table",
                None => "jsonl",
            };
            let mut out = io::BufWriter::new(io::stdout().lock());
            match write_stored(&mut out, format, &listed).and_then(|()| out.flush()) {
                Err(err) if err.kind() == io::ErrorKind::BrokenPipe => {}
                other => other?,
            }
            Ok(Outcome::Clean)
        }
        FindingsCommand::Ack { store, ids } => triage(store.store.as_deref(), ids, Status::Acked, None, None),
        FindingsCommand::Reopen { store, ids } => triage(store.store.as_deref(), ids, Status::New, None, None),
        FindingsCommand::Explain {
            store,
            ids,
            reason,
            ticket,
        } => triage(
            store.store.as_deref(),
            ids,
            Status::Explained,
            Some(reason),
            ticket.as_deref(),
        ),
    }
}

fn triage(
    path: Option<&std::path::Path>,
    ids: &[i64],
    status: Status,
    reason: Option<&str>,
    ticket: Option<&str>,
) -> Result<Outcome> {
    let mut store = Store::open(&store_path(path)?)?;
    let changed = store.set_status(ids, status, reason, ticket)?;
    tracing::info!("{changed} findings marked {}", status.as_str());
    Ok(Outcome::Clean)
}
