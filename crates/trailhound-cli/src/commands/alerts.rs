//! `--alert`: deliver a run's findings to Slack, a webhook or SNS, targets from the environment.

use anyhow::{Context, Result, bail};
use trailhound_aws::alert::{self, AlertSettings, Target};
use trailhound_aws::{Aws, AwsSettings};
use trailhound_output::AlertRun;
use trailhound_rules::{Finding, Level};

use crate::settings::AlertKind;

/// Sends the unexplained findings at or above `min` to `kinds`' targets.
pub fn send(kinds: &[AlertKind], min: Level, aws: &AwsSettings, what: &str, findings: &[Finding]) -> Result<()> {
    let selected: Vec<Finding> = findings
        .iter()
        .filter(|f| f.explanation.is_none() && f.level >= min)
        .cloned()
        .collect();
    if selected.is_empty() {
        tracing::info!("alert: no finding at or above {min}; nothing sent");
        return Ok(());
    }
    let mut references = Vec::new();
    for kind in kinds {
        let Some(value) = std::env::var(kind.variable()).ok().filter(|v| !v.trim().is_empty()) else {
            bail!(
                "--alert {}: set {} (a URL, secretsmanager:SECRET_ID or ssm:PARAMETER{})",
                kind_name(*kind),
                kind.variable(),
                if *kind == AlertKind::Sns {
                    "; for sns the topic ARN"
                } else {
                    ""
                }
            );
        };
        references.push((*kind, value.trim().to_string()));
    }
    let needs_aws = references
        .iter()
        .any(|(kind, v)| *kind == AlertKind::Sns || v.starts_with("secretsmanager:") || v.starts_with("ssm:"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the alert runtime")?;
    runtime.block_on(async {
        let aws = if needs_aws {
            Some(Aws::connect(aws).await?)
        } else {
            None
        };
        let mut targets = Vec::new();
        for (kind, value) in references {
            targets.push(match kind {
                AlertKind::Slack => Target::Slack(alert::resolve_secret(aws.as_ref(), &value, kind.variable()).await?),
                AlertKind::Webhook => {
                    Target::Webhook(alert::resolve_secret(aws.as_ref(), &value, kind.variable()).await?)
                }
                AlertKind::Sns => Target::Sns { topic_arn: value },
            });
        }
        let run = AlertRun {
            what: what.to_string(),
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        let delivered = alert::send(aws.as_ref(), &targets, &run, &selected, &AlertSettings::default()).await?;
        tracing::info!(
            "alert: {} findings sent in {} messages ({} retries)",
            selected.len(),
            delivered.messages,
            delivered.retries
        );
        Ok(())
    })
}

fn kind_name(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::Slack => "slack",
        AlertKind::Webhook => "webhook",
        AlertKind::Sns => "sns",
    }
}
