//! A scheduled run's inventory part: collect, keep the snapshot (in the case store and as
//! `inventory/latest.json` under the state prefix, the previous one as `previous.json`), audit,
//! and return the findings no earlier run recorded.

use std::path::Path;

use anyhow::{Context, Result};
use trailhound_aws::Aws;
use trailhound_aws::inventory::{CollectOptions, collect};
use trailhound_inventory::{AuditOptions, audit};
use trailhound_rules::{Finding, Reasons};
use trailhound_store::{RunStart, Store};

use crate::state::State;

pub async fn run(
    aws: &Aws,
    regions: Option<Vec<String>>,
    reasons: Option<&Path>,
    store_path: &Path,
    state: Option<&State>,
) -> Result<Vec<Finding>> {
    let options = CollectOptions {
        regions,
        ..CollectOptions::default()
    };
    let snapshot = collect(aws, &options).await?;
    for error in &snapshot.errors {
        tracing::warn!(
            "inventory: {} {} {}: {}",
            error.service,
            error.region.as_deref().unwrap_or("global"),
            error.operation,
            error.message
        );
    }
    let json = snapshot.to_json_pretty();
    if let Some(state) = state {
        let latest = state.location.child("inventory/latest.json");
        if let Some(previous) = state.get(&latest).await? {
            state
                .put(&state.location.child("inventory/previous.json"), previous)
                .await?;
        }
        state.put(&latest, json.clone().into_bytes()).await?;
    }
    let reasons = match reasons {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            Some(Reasons::parse(&path.display().to_string(), &text)?)
        }
        None => None,
    };
    let collected_at = snapshot.collected_at.to_rfc3339();
    let findings = audit(
        &snapshot,
        reasons.as_ref(),
        &AuditOptions::new(chrono::Utc::now(), format!("inventory:{collected_at}")),
    );
    let mut store = Store::open(store_path)?;
    store.save_snapshot(&collected_at, snapshot.account_id.as_deref(), &json)?;
    let run = store.begin_run(&RunStart {
        command: "inventory audit".into(),
        sources: vec![format!("inventory:{collected_at}")],
        since: None,
        until: None,
        rules: 0,
    })?;
    let recorded = store.record_findings(run, &findings)?;
    let new: Vec<Finding> = findings
        .into_iter()
        .zip(&recorded)
        .filter(|(_, r)| r.new)
        .map(|(f, _)| f)
        .collect();
    store.finish_run(run, snapshot.items.len() as u64, recorded.len(), new.len())?;
    Ok(new)
}
