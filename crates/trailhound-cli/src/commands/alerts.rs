//! `--alert`: deliver a run's findings to Slack, a webhook or SNS, targets from the environment
//! (see `trailhound_alert::targets`), on the process's runtime.

use anyhow::Result;
use trailhound_alert::{AlertKind, AlertRun, AlertSettings};
use trailhound_finding::{Finding, Level};

use crate::process::Process;
use crate::settings::AwsOptions;

/// Sends the unexplained findings at or above `min` to `kinds`' targets.
pub fn send(
    process: &Process,
    kinds: &[AlertKind],
    min: Level,
    aws: &AwsOptions,
    what: &str,
    findings: &[Finding],
) -> Result<()> {
    let selected: Vec<Finding> = findings
        .iter()
        .filter(|f| f.explanation.is_none() && f.level >= min)
        .cloned()
        .collect();
    if selected.is_empty() {
        tracing::info!("alert: no finding at or above {min}; nothing sent");
        return Ok(());
    }
    let references = trailhound_alert::references(kinds).map_err(|e| anyhow::anyhow!("--alert {e}"))?;
    let run = AlertRun {
        what: what.to_string(),
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let delivered = deliver(process, references, aws, &run, &selected)?;
    tracing::info!(
        "alert: {} findings sent in {} messages ({} retries)",
        selected.len(),
        delivered.messages,
        delivered.retries
    );
    Ok(())
}

#[cfg(feature = "aws")]
fn deliver(
    process: &Process,
    references: Vec<(AlertKind, String)>,
    aws: &AwsOptions,
    run: &AlertRun,
    findings: &[Finding],
) -> Result<trailhound_alert::Delivered> {
    let aws = if trailhound_alert::needs_aws(&references) {
        Some(process.aws(aws)?)
    } else {
        None
    };
    process.runtime()?.block_on(async {
        let targets = trailhound_alert::resolve(references, aws).await?;
        Ok(trailhound_alert::send(aws, &targets, run, findings, &AlertSettings::default()).await?)
    })
}

#[cfg(not(feature = "aws"))]
fn deliver(
    _: &Process,
    references: Vec<(AlertKind, String)>,
    _: &AwsOptions,
    run: &AlertRun,
    findings: &[Finding],
) -> Result<trailhound_alert::Delivered> {
    if trailhound_alert::needs_aws(&references) {
        anyhow::bail!(
            "--alert: SNS and secret references need AWS support (this trailhound was built without the `aws` feature)"
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("starting the alert runtime: {e}"))?;
    runtime.block_on(async {
        let targets = trailhound_alert::resolve(references, None).await?;
        Ok(trailhound_alert::send(None, &targets, run, findings, &AlertSettings::default()).await?)
    })
}
