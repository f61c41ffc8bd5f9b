//! Sending alerts: Slack incoming webhooks, generic JSON webhooks and (feature `aws`) SNS
//! topics. The messages are built by [`crate::payload`]; this module delivers them.
//!
//! Webhook URLs are secrets (anyone holding one can post to the channel): they come from the
//! environment, Secrets Manager or SSM Parameter Store, live in [`Secret`] (whose `Debug` and
//! `Display` print nothing of them) and never appear in logs or errors. Messages to one target
//! are spaced at least [`AlertSettings::interval`] apart (Slack allows one a second); a 429 is
//! retried after its `Retry-After`, a 5xx or network error with backoff.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use trailhound_finding::Finding;

use crate::Aws;
use crate::payload::{AlertRun, slack_messages, webhook_payload};

/// A secret value (a webhook URL). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where alerts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Slack(Secret),
    Webhook(Secret),
    Sns { topic_arn: String },
}

impl Target {
    pub fn name(&self) -> &'static str {
        match self {
            Target::Slack(_) => "slack",
            Target::Webhook(_) => "webhook",
            Target::Sns { .. } => "sns",
        }
    }
}

#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// Least time between two messages to one target.
    pub interval: Duration,
    /// Attempts per message (429, 5xx, network errors).
    pub attempts: u32,
    /// Longest `Retry-After` honoured.
    pub max_retry_after: Duration,
}

impl Default for AlertSettings {
    fn default() -> AlertSettings {
        AlertSettings {
            interval: Duration::from_secs(1),
            attempts: 5,
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// An alert that could not be delivered; names the target, never its URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("alert to {target}: {message}")]
pub struct AlertError {
    pub target: String,
    pub message: String,
    /// Worth retrying later (the whole invocation, for the Lambda).
    pub transient: bool,
}

fn failure(target: &str, message: impl Into<String>, transient: bool) -> AlertError {
    AlertError {
        target: target.to_string(),
        message: message.into(),
        transient,
    }
}

/// Resolves a secret reference: `secretsmanager:SECRET_ID`, `ssm:/PARAMETER/NAME`, or the value
/// itself. `what` names it in errors (`TRAILHOUND_SLACK_WEBHOOK_URL`).
pub async fn resolve_secret(aws: Option<&Aws>, reference: &str, what: &str) -> Result<Secret, AlertError> {
    let need_aws = || failure(what, "needs AWS access to read the secret", false);
    if reference.starts_with("secretsmanager:") || reference.starts_with("ssm:") {
        let aws = aws.ok_or_else(need_aws)?;
        return secret_from_aws(aws, reference, what).await;
    }
    if !(reference.starts_with("https://") || reference.starts_with("http://")) {
        return Err(failure(
            what,
            "is neither a URL nor secretsmanager:ID nor ssm:NAME",
            false,
        ));
    }
    Ok(Secret::new(reference))
}

/// A secret from Secrets Manager (`secretsmanager:ID`) or Parameter Store (`ssm:NAME`).
#[cfg(feature = "aws")]
async fn secret_from_aws(aws: &Aws, reference: &str, what: &str) -> Result<Secret, AlertError> {
    use trailhound_aws::classify;
    if let Some(id) = reference.strip_prefix("secretsmanager:") {
        let out = aws
            .secrets_manager()
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| {
                let error = classify(
                    &e,
                    &format!("secret {id}"),
                    "secretsmanager:GetSecretValue",
                    aws.region(),
                );
                failure(what, error.to_string(), error.is_transient())
            })?;
        let value = out
            .secret_string()
            .ok_or_else(|| failure(what, format!("secret {id} has no string value"), false))?;
        return Ok(Secret::new(value.trim()));
    }
    if let Some(name) = reference.strip_prefix("ssm:") {
        let out = aws
            .ssm()
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| {
                let error = classify(&e, &format!("parameter {name}"), "ssm:GetParameter", aws.region());
                failure(what, error.to_string(), error.is_transient())
            })?;
        let value = out
            .parameter()
            .and_then(|p| p.value())
            .ok_or_else(|| failure(what, format!("parameter {name} has no value"), false))?;
        return Ok(Secret::new(value.trim()));
    }
    Err(failure(what, "is not a secret reference", false))
}

#[cfg(not(feature = "aws"))]
async fn secret_from_aws(aws: &Aws, _: &str, _: &str) -> Result<Secret, AlertError> {
    match *aws {}
}

/// What was delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    pub messages: usize,
    pub retries: usize,
}

/// Sends the findings of one run to every target. Stops at the first target that fails.
pub async fn send(
    aws: Option<&Aws>,
    targets: &[Target],
    run: &AlertRun,
    findings: &[Finding],
    settings: &AlertSettings,
) -> Result<Delivered, AlertError> {
    let mut delivered = Delivered::default();
    if findings.is_empty() {
        return Ok(delivered);
    }
    for target in targets {
        match target {
            Target::Slack(url) => {
                for (i, message) in slack_messages(run, findings).iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(settings.interval).await;
                    }
                    delivered.retries += post(url, "slack", message, settings).await?;
                    delivered.messages += 1;
                }
            }
            Target::Webhook(url) => {
                delivered.retries += post(url, "webhook", &webhook_payload(run, findings), settings).await?;
                delivered.messages += 1;
            }
            Target::Sns { topic_arn } => {
                let aws = aws.ok_or_else(|| failure("sns", "needs AWS access", false))?;
                publish(aws, topic_arn, run, findings).await?;
                delivered.messages += 1;
            }
        }
    }
    Ok(delivered)
}

/// Publishes the run's findings to an SNS topic.
#[cfg(feature = "aws")]
async fn publish(aws: &Aws, topic_arn: &str, run: &AlertRun, findings: &[Finding]) -> Result<(), AlertError> {
    let (subject, message) = crate::payload::sns_message(run, findings);
    aws.sns()
        .publish()
        .topic_arn(topic_arn)
        .subject(subject)
        .message(message)
        .send()
        .await
        .map_err(|e| {
            let error = trailhound_aws::classify(&e, topic_arn, "sns:Publish", aws.region());
            failure("sns", error.to_string(), error.is_transient() || error.is_fatal())
        })?;
    Ok(())
}

#[cfg(not(feature = "aws"))]
async fn publish(aws: &Aws, _: &str, _: &AlertRun, _: &[Finding]) -> Result<(), AlertError> {
    match *aws {}
}

/// POSTs `body` as JSON; returns how many retries it took.
async fn post(url: &Secret, target: &str, body: &Value, settings: &AlertSettings) -> Result<usize, AlertError> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| failure(target, format!("no TLS root certificates: {e}"), false))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let payload = Bytes::from(body.to_string());
    let mut last = String::new();
    for attempt in 0..settings.attempts.max(1) {
        let request = http::Request::post(url.expose())
            .header("content-type", "application/json")
            .header("user-agent", concat!("trailhound/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(payload.clone()))
            .map_err(|_| failure(target, "the URL is not valid", false))?;
        let response = tokio::time::timeout(Duration::from_secs(15), client.request(request)).await;
        let wait = match response {
            Ok(Ok(response)) => {
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                // Read the body so the connection can be reused; its text is not logged
                // (a misconfigured endpoint could echo the URL).
                let _ = response.into_body().collect().await;
                if status.is_success() {
                    return Ok(attempt as usize);
                }
                last = format!("HTTP {}", status.as_u16());
                if status.as_u16() == 429 {
                    retry_after
                        .unwrap_or(Duration::from_secs(1))
                        .min(settings.max_retry_after)
                } else if status.is_server_error() {
                    Duration::from_millis(500 << attempt.min(5))
                } else {
                    return Err(failure(target, format!("{last} (not retried)"), false));
                }
            }
            Ok(Err(err)) => {
                last = format!("cannot connect: {}", connector_error(&err));
                Duration::from_millis(500 << attempt.min(5))
            }
            Err(_) => {
                last = "timed out after 15 s".into();
                Duration::from_millis(500 << attempt.min(5))
            }
        };
        tracing::debug!("alert to {target}: {last}; retrying in {wait:?}");
        tokio::time::sleep(wait).await;
    }
    Err(failure(
        target,
        format!("{last} after {} attempts", settings.attempts.max(1)),
        true,
    ))
}

/// A connection error's cause, without the URL (hyper's messages do not carry it).
fn connector_error(err: &hyper_util::client::legacy::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        text = format!("{text}: {e}");
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let target = Target::Slack(Secret::new("https://hooks.slack.com/services/T000/B000/XXXX"));
        assert!(!format!("{target:?}").contains("hooks.slack.com"));
    }

    #[tokio::test]
    async fn literal_references_must_be_urls() {
        assert!(resolve_secret(None, "https://example.invalid/x", "X").await.is_ok());
        let error = resolve_secret(None, "not-a-url", "TRAILHOUND_WEBHOOK_URL").await;
        assert!(error.is_err_and(|e| e.to_string().starts_with("alert to TRAILHOUND_WEBHOOK_URL")));
        assert!(resolve_secret(None, "ssm:/x", "X").await.is_err(), "needs AWS");
    }
}
