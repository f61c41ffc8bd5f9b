//! A scheduled run's inventory part: collect, keep the snapshot (in the case store and as
//! `inventory/latest.json` under the state prefix, the previous one as `previous.json`), audit,
//! and return the findings no earlier run recorded.

use std::path::Path;

use anyhow::Result;
use trailhound_aws::Aws;
use trailhound_finding::{Finding, Reasons};
use trailhound_hunt::remember;
use trailhound_inventory::collect::{CollectOptions, collect};
use trailhound_inventory::{AuditOptions, audit};
use trailhound_store::{RunStart, Store};

use crate::state::State;

pub async fn run(
    aws: &Aws,
    regions: Option<Vec<String>>,
    reasons: Option<&Reasons>,
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
    let collected_at = snapshot.collected_at.to_rfc3339();
    let findings = audit(
        &snapshot,
        reasons,
        &AuditOptions::new(chrono::Utc::now(), format!("inventory:{collected_at}")),
    );
    let mut store = Store::open(store_path)?;
    store.save_snapshot(&collected_at, snapshot.account_id.as_deref(), &json)?;
    let start = RunStart {
        command: "inventory audit".into(),
        sources: vec![format!("inventory:{collected_at}")],
        since: None,
        until: None,
        rules: 0,
    };
    let items = u64::try_from(snapshot.items.len()).unwrap_or(u64::MAX);
    Ok(remember(&mut store, &start, findings, items, true)?.findings)
}
