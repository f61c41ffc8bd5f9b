//! Which targets a run alerts, from the environment: each kind of target reads one variable,
//! whose value is the target itself (a URL, a topic ARN) or a reference to a secret
//! (`secretsmanager:ID`, `ssm:NAME`). Shared by the CLI's `--alert` and the Lambda's
//! `TRAILHOUND_ALERTS`, so both read targets the same way.

use crate::Aws;
use crate::deliver::{AlertError, Target, resolve_secret};

/// Where alerts go. Closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    Slack,
    Webhook,
    Sns,
    /// AWS Security Hub, through BatchImportFindings.
    SecurityHub,
}

impl AlertKind {
    /// The environment variable that holds the target.
    pub fn variable(self) -> &'static str {
        match self {
            AlertKind::Slack => "TRAILHOUND_SLACK_WEBHOOK_URL",
            AlertKind::Webhook => "TRAILHOUND_WEBHOOK_URL",
            AlertKind::Sns => "TRAILHOUND_SNS_TOPIC_ARN",
            AlertKind::SecurityHub => "TRAILHOUND_SECURITYHUB_PRODUCT_ARN",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AlertKind::Slack => "slack",
            AlertKind::Webhook => "webhook",
            AlertKind::Sns => "sns",
            AlertKind::SecurityHub => "securityhub",
        }
    }
}

impl std::str::FromStr for AlertKind {
    type Err = String;
    fn from_str(text: &str) -> Result<AlertKind, String> {
        match text {
            "slack" => Ok(AlertKind::Slack),
            "webhook" => Ok(AlertKind::Webhook),
            "sns" => Ok(AlertKind::Sns),
            "securityhub" => Ok(AlertKind::SecurityHub),
            other => Err(format!("{other:?} is not slack, webhook, sns or securityhub")),
        }
    }
}

/// The target references of `kinds`, read from their variables (not resolved yet).
pub fn references(kinds: &[AlertKind]) -> Result<Vec<(AlertKind, String)>, AlertError> {
    kinds
        .iter()
        .map(|&kind| {
            let value = std::env::var(kind.variable())
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty());
            // Security Hub needs no target: the account's own product (`.../product/ACCOUNT/default`)
            // unless a product ARN is given.
            if kind == AlertKind::SecurityHub {
                return Ok((kind, value.unwrap_or_default()));
            }
            let Some(value) = value else {
                let sns = if kind == AlertKind::Sns {
                    "; for sns the topic ARN"
                } else {
                    ""
                };
                return Err(AlertError {
                    target: kind.name().to_string(),
                    message: format!(
                        "set {} (a URL, secretsmanager:SECRET_ID or ssm:PARAMETER{sns})",
                        kind.variable()
                    ),
                    transient: false,
                });
            };
            Ok((kind, value))
        })
        .collect()
}

/// Whether delivering to these references needs an AWS connection (SNS, or a secret kept in
/// Secrets Manager or Parameter Store).
pub fn needs_aws(references: &[(AlertKind, String)]) -> bool {
    references.iter().any(|(kind, v)| {
        matches!(kind, AlertKind::Sns | AlertKind::SecurityHub)
            || v.starts_with("secretsmanager:")
            || v.starts_with("ssm:")
    })
}

/// The targets of `references`, secrets read (once: callers keep the targets).
pub async fn resolve(references: Vec<(AlertKind, String)>, aws: Option<&Aws>) -> Result<Vec<Target>, AlertError> {
    let mut targets = Vec::new();
    for (kind, value) in references {
        targets.push(match kind {
            AlertKind::Slack => Target::Slack(resolve_secret(aws, &value, kind.variable()).await?),
            AlertKind::Webhook => Target::Webhook(resolve_secret(aws, &value, kind.variable()).await?),
            AlertKind::Sns => Target::Sns { topic_arn: value },
            AlertKind::SecurityHub => Target::SecurityHub {
                product_arn: Some(value).filter(|v| !v.is_empty()),
            },
        });
    }
    Ok(targets)
}
