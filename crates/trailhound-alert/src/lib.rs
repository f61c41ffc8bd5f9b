//! Alerts: the messages a run's findings make (Slack Block Kit, a JSON webhook payload, an SNS
//! text), where they go (targets read from the environment, secrets from Secrets Manager or
//! Parameter Store) and their delivery (spaced, retried, bounded).
//!
//! Slack and webhooks need only HTTPS; SNS and secret references need the `aws` feature.
//! Without it, [`Aws`] is a type with no values, so the signatures are the same in both builds
//! and an AWS target is refused with a clear message before anything is sent.

mod deliver;
mod payload;
mod targets;
#[cfg(test)]
mod testserver;

pub use deliver::{AlertError, AlertSettings, Delivered, Secret, Target, resolve_secret, send};
pub use payload::{
    AlertRun, SLACK_FINDINGS_PER_MESSAGE, level_counts, mrkdwn, plain, slack_messages, sns_message, webhook_payload,
};
pub use targets::{AlertKind, needs_aws, references, resolve};

/// The AWS connection alerts use for SNS and secrets.
#[cfg(feature = "aws")]
pub use trailhound_aws::Aws;

/// Without the `aws` feature there is no AWS connection.
#[cfg(not(feature = "aws"))]
#[derive(Debug)]
pub enum Aws {}
