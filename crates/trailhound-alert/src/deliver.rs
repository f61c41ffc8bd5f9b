//! Sending alerts: Slack incoming webhooks, generic JSON webhooks and (feature `aws`) SNS
//! topics. The messages are built by [`crate::payload`]; this module delivers them.
//!
//! Webhook URLs are secrets (anyone holding one can post to the channel): they come from the
//! environment, Secrets Manager or SSM Parameter Store, live in [`Secret`] (whose `Debug` and
//! `Display` print nothing of them) and never appear in logs or errors. Messages to one target
//! are spaced at least [`AlertSettings::interval`] apart (Slack allows one a second); a 429 is
//! retried after its `Retry-After`, a 5xx or network error with backoff.
//!
//! A receiver cannot hold a run: one attempt, from connecting to the last byte of the response,
//! lasts at most [`AlertSettings::deadline`] (15 s), one message with its retries and waits at
//! most [`AlertSettings::budget`] (120 s), and at most [`AlertSettings::max_body`] (64 KiB) of a
//! response body is read before the connection is dropped. A 2xx whose body does not arrive
//! whole is an error and is not retried, since the message may have been delivered.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::time::Instant;
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
    Sns {
        topic_arn: String,
    },
    /// Security Hub's BatchImportFindings; without a product ARN, the account's own
    /// (`arn:aws:securityhub:REGION:ACCOUNT:product/ACCOUNT/default`).
    SecurityHub {
        product_arn: Option<String>,
    },
}

impl Target {
    pub fn name(&self) -> &'static str {
        match self {
            Target::Slack(_) => "slack",
            Target::Webhook(_) => "webhook",
            Target::Sns { .. } => "sns",
            Target::SecurityHub { .. } => "securityhub",
        }
    }
}

/// How delivery is spaced and bounded.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// Least time between two messages to one target.
    pub interval: Duration,
    /// Attempts per message (429, 5xx, network errors).
    pub attempts: u32,
    /// Longest `Retry-After` honoured.
    pub max_retry_after: Duration,
    /// Longest one attempt takes, all of it: connecting, TLS, sending, the response's headers
    /// and its body.
    pub deadline: Duration,
    /// Longest one message takes: every attempt and every wait between them. A retry that
    /// could not start within it is not made.
    pub budget: Duration,
    /// Most bytes of a response body read; past it the connection is dropped.
    pub max_body: usize,
}

impl Default for AlertSettings {
    fn default() -> AlertSettings {
        AlertSettings {
            interval: Duration::from_secs(1),
            attempts: 5,
            max_retry_after: Duration::from_secs(60),
            deadline: Duration::from_secs(15),
            budget: Duration::from_secs(120),
            max_body: 64 * 1024,
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
                tokio::time::timeout(settings.budget, publish(aws, topic_arn, run, findings))
                    .await
                    .map_err(|_| failure("sns", format!("timed out after {}", seconds(settings.budget)), true))??;
                delivered.messages += 1;
            }
            Target::SecurityHub { product_arn } => {
                let aws = aws.ok_or_else(|| failure("securityhub", "needs AWS access", false))?;
                let calls = tokio::time::timeout(settings.budget, import(aws, product_arn.as_deref(), findings))
                    .await
                    .map_err(|_| {
                        failure(
                            "securityhub",
                            format!("timed out after {}", seconds(settings.budget)),
                            true,
                        )
                    })??;
                delivered.messages += calls.0;
                delivered.retries += calls.1;
            }
        }
    }
    Ok(delivered)
}

/// Imports the findings into Security Hub, [`crate::payload::SECURITY_HUB_BATCH`] a call, each
/// with its stable id (a finding imported again updates the one Security Hub holds). Findings
/// Security Hub reports as failed with a transient error are sent again (twice at most, after a
/// pause); any still failed make the delivery fail. Returns (calls, retried calls).
#[cfg(feature = "aws")]
async fn import(aws: &Aws, product_arn: Option<&str>, findings: &[Finding]) -> Result<(usize, usize), AlertError> {
    use aws_sdk_securityhub::types as sh;
    let (product_arn, account) = match product_arn {
        Some(arn) => {
            // arn:PARTITION:securityhub:REGION:ACCOUNT:product/...: the importing account.
            let account = arn.split(':').nth(4).unwrap_or_default().to_string();
            (arn.to_string(), account)
        }
        None => {
            let identity = aws
                .identity()
                .await
                .map_err(|e| failure("securityhub", e.to_string(), e.is_transient()))?;
            let account = identity.account;
            (
                format!(
                    "arn:aws:securityhub:{}:{account}:product/{account}/default",
                    aws.region()
                ),
                account,
            )
        }
    };
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut built = Vec::with_capacity(findings.len());
    for finding in findings {
        let a = crate::payload::asff(finding, &account);
        let mut resources = Vec::new();
        for (kind, id, region) in &a.resources {
            resources.push(
                sh::Resource::builder()
                    .r#type(kind)
                    .id(id)
                    .partition(sh::Partition::Aws)
                    .set_region(region.clone())
                    .build(),
            );
        }
        let mut builder = sh::AwsSecurityFinding::builder()
            .schema_version("2018-10-08")
            .id(&a.id)
            .product_arn(&product_arn)
            .generator_id(&a.generator_id)
            .aws_account_id(&account)
            .set_types(Some(a.types.clone()))
            .created_at(&a.first_observed)
            .updated_at(&now)
            .first_observed_at(&a.first_observed)
            .last_observed_at(&a.last_observed)
            .severity(
                sh::Severity::builder()
                    .label(sh::SeverityLabel::from(a.severity))
                    .build(),
            )
            .title(&a.title)
            .description(&a.description)
            .set_resources(Some(resources))
            .record_state(sh::RecordState::Active)
            .set_product_fields(Some(a.fields.iter().cloned().collect()));
        if let Some((api, service, ip)) = &a.api_call {
            let mut call = sh::AwsApiCallAction::builder()
                .api(api)
                .service_name(service)
                .caller_type(if ip.is_some() { "remoteip" } else { "domain" });
            if let Some(ip) = ip {
                call = call.remote_ip_details(sh::ActionRemoteIpDetails::builder().ip_address_v4(ip).build());
            }
            builder = builder.action(
                sh::Action::builder()
                    .action_type("AWS_API_CALL")
                    .aws_api_call_action(call.build())
                    .build(),
            );
        }
        built.push(builder.build());
    }
    let client = aws.securityhub();
    let (mut calls, mut retried) = (0, 0);
    for batch in built.chunks(crate::payload::SECURITY_HUB_BATCH) {
        let mut pending: Vec<sh::AwsSecurityFinding> = batch.to_vec();
        for attempt in 0..3 {
            if attempt > 0 {
                retried += 1;
                tokio::time::sleep(std::time::Duration::from_secs(1 << attempt)).await;
            }
            calls += 1;
            let out = client
                .batch_import_findings()
                .set_findings(Some(pending.clone()))
                .send()
                .await
                .map_err(|e| {
                    let error =
                        trailhound_aws::classify(&e, &product_arn, "securityhub:BatchImportFindings", aws.region());
                    failure(
                        "securityhub",
                        error.to_string(),
                        error.is_transient() || error.is_fatal(),
                    )
                })?;
            let failed = out.failed_findings();
            if failed.is_empty() {
                pending.clear();
                break;
            }
            // Only what failed for a passing reason is sent again.
            let transient = |code: &str| {
                code.contains("Throttl") || code.contains("Internal") || code.contains("ServiceUnavailable")
            };
            if let Some(f) = failed.iter().find(|f| !transient(f.error_code().unwrap_or_default())) {
                return Err(failure(
                    "securityhub",
                    format!(
                        "{} of {} findings not imported: {}: {}",
                        failed.len(),
                        pending.len(),
                        f.error_code().unwrap_or("error"),
                        f.error_message().unwrap_or_default()
                    ),
                    false,
                ));
            }
            let again: std::collections::HashSet<&str> = failed.iter().filter_map(|f| f.id()).collect();
            pending.retain(|f| f.id().is_some_and(|id| again.contains(id)));
        }
        if !pending.is_empty() {
            return Err(failure(
                "securityhub",
                format!("{} findings not imported after 3 attempts (throttled)", pending.len()),
                true,
            ));
        }
    }
    Ok((calls, retried))
}

#[cfg(not(feature = "aws"))]
async fn import(aws: &Aws, _: Option<&str>, _: &[Finding]) -> Result<(usize, usize), AlertError> {
    match *aws {}
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

/// hyper's read buffer for one connection: the most of a response held at once, headers included.
const BUFFER: usize = 16 * 1024;

/// A client for one target, its read buffer bounded.
type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

fn client(target: &str) -> Result<HttpClient, AlertError> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| failure(target, format!("no TLS root certificates: {e}"), false))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new())
        .http1_max_buf_size(BUFFER)
        .build(connector))
}

/// POSTs `body` as JSON; returns how many retries it took. Every attempt is bounded by
/// [`AlertSettings::deadline`], all of them and the waits between them by
/// [`AlertSettings::budget`].
async fn post(url: &Secret, target: &str, body: &Value, settings: &AlertSettings) -> Result<usize, AlertError> {
    let client = client(target)?;
    let payload = Bytes::from(body.to_string());
    let end = Instant::now() + settings.budget;
    let attempts = settings.attempts.max(1);
    let mut tried: u32 = 0;
    let last = loop {
        let request = http::Request::post(url.expose())
            .header("content-type", "application/json")
            .header("user-agent", concat!("trailhound/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(payload.clone()))
            .map_err(|_| failure(target, "the URL is not valid", false))?;
        let limit = settings.deadline.min(end.saturating_duration_since(Instant::now()));
        let (outcome, _) = exchange(&client, request, limit, settings.max_body).await;
        tried += 1;
        let (last, wait) = match outcome {
            Exchange::Answered { status, .. } if (200..300).contains(&status) => return Ok(tried as usize - 1),
            Exchange::Unfinished { status, why } if (200..300).contains(&status) => {
                let message = format!("HTTP {status} but {why} (not retried: the message may have arrived)");
                return Err(failure(target, scrub(&message, url), false));
            }
            Exchange::Answered { status, retry_after } => {
                let wait = retry_wait(status, retry_after, tried, settings);
                (format!("HTTP {status}"), wait)
            }
            Exchange::Unfinished { status, why } => (
                format!("HTTP {status}, {why}"),
                retry_wait(status, None, tried, settings),
            ),
            Exchange::Failed(why) => (why, Some(backoff(tried))),
        };
        let Some(wait) = wait else {
            return Err(failure(target, scrub(&format!("{last} (not retried)"), url), false));
        };
        if tried >= attempts {
            break last;
        }
        if wait >= end.saturating_duration_since(Instant::now()) {
            break format!("{last}; no time left in {}", seconds(settings.budget));
        }
        tracing::debug!("alert to {target}: {}; retrying in {wait:?}", scrub(&last, url));
        tokio::time::sleep(wait).await;
    };
    Err(failure(
        target,
        scrub(&format!("{last} after {tried} attempts"), url),
        true,
    ))
}

/// How long to wait before retrying a `status`, or `None` if it is not worth retrying.
fn retry_wait(status: u16, retry_after: Option<Duration>, tried: u32, settings: &AlertSettings) -> Option<Duration> {
    match status {
        429 => Some(
            retry_after
                .unwrap_or(Duration::from_secs(1))
                .min(settings.max_retry_after),
        ),
        500..=599 => Some(backoff(tried)),
        _ => None,
    }
}

/// 0.5 s, 1 s, 2 s, … 16 s.
fn backoff(tried: u32) -> Duration {
    Duration::from_millis(500 << tried.saturating_sub(1).min(5))
}

fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

/// How one exchange ended.
#[derive(Debug, PartialEq, Eq)]
enum Exchange {
    /// The whole response arrived in time.
    Answered { status: u16, retry_after: Option<Duration> },
    /// The status arrived, the body did not (too slow or too large): the connection was dropped.
    Unfinished { status: u16, why: String },
    /// No response: no connection, an error, or no status in time.
    Failed(String),
}

/// Sends `request` and reads the response, all within `limit`, reading at most `max_body` bytes
/// of body (then the connection is dropped). Returns how it ended and how many body bytes were read.
async fn exchange(
    client: &HttpClient,
    request: http::Request<Full<Bytes>>,
    limit: Duration,
    max_body: usize,
) -> (Exchange, usize) {
    let mut head = None;
    let mut read = 0;
    let outcome = tokio::time::timeout(limit, async {
        let response = client
            .request(request)
            .await
            .map_err(|e| format!("no answer: {}", connector_error(&e)))?;
        head = Some((response.status().as_u16(), retry_after(response.headers())));
        read_body(response.into_body(), max_body, &mut read).await
    })
    .await
    .unwrap_or_else(|_| Err(format!("timed out after {}", seconds(limit))));
    let exchange = match (head, outcome) {
        (Some((status, retry_after)), Ok(())) => Exchange::Answered { status, retry_after },
        (Some((status, _)), Err(why)) => Exchange::Unfinished { status, why },
        (None, Err(why)) => Exchange::Failed(why),
        (None, Ok(())) => Exchange::Failed("no answer".into()),
    };
    (exchange, read)
}

/// A `Retry-After` in seconds.
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Reads and drops the body (so the connection can be reused) up to `max` bytes, counting them
/// in `read`. Its text is never kept nor logged: a misconfigured endpoint could echo the URL.
async fn read_body(mut body: hyper::body::Incoming, max: usize, read: &mut usize) -> Result<(), String> {
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("reading the response: {e}"))?;
        if let Some(data) = frame.data_ref() {
            *read += data.len();
            if *read > max {
                return Err(format!("the response body exceeds {} KiB", max / 1024));
            }
        }
    }
    Ok(())
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

/// `text` without the URL's host, path or query, should an error ever quote them.
fn scrub(text: &str, url: &Secret) -> String {
    let url = url.expose();
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let mut text = text.replace(url, "<the URL>");
    for part in [path, authority, host] {
        if part.len() > 1 {
            text = text.replace(part, "<the URL>");
        }
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

    use crate::testserver::{self, Behaviour};

    /// A failure detector only: a delivery still running after this has no bound.
    const GUARD: Duration = Duration::from_secs(40);

    /// Small bounds, so a misbehaving receiver costs the tests little.
    fn fast() -> AlertSettings {
        AlertSettings {
            interval: Duration::ZERO,
            deadline: Duration::from_millis(500),
            budget: Duration::from_secs(3),
            ..AlertSettings::default()
        }
    }

    async fn deliver(url: &str, settings: &AlertSettings) -> Result<Delivered, AlertError> {
        let targets = [Target::Webhook(Secret::new(url))];
        let findings = [testserver::finding("arn:aws:iam::1:user/x")];
        let run = AlertRun {
            what: "hunt".into(),
            at: "2026-11-20T22:05:00Z".into(),
        };
        tokio::time::timeout(GUARD, send(None, &targets, &run, &findings, settings))
            .await
            .expect("the delivery is unbounded")
    }

    #[tokio::test]
    async fn a_stalling_receiver_fails_within_the_deadline() {
        let receiver = testserver::start(Behaviour::Stall);
        let error = deliver(&receiver.url, &fast()).await.expect_err("no answer");
        assert!(error.message.contains("timed out"), "{error}");
        assert!(error.transient, "{error}");
    }

    #[tokio::test]
    async fn a_trickling_body_fails_within_the_deadline() {
        let receiver = testserver::start(Behaviour::Trickle);
        let error = deliver(&receiver.url, &fast()).await.expect_err("the body never ends");
        assert!(error.message.contains("timed out"), "{error}");
        assert_eq!(receiver.connections(), 1, "an accepted message is not sent twice");
    }

    #[tokio::test]
    async fn an_endless_body_is_cut_at_the_size_cap() {
        let receiver = testserver::start(Behaviour::Endless);
        let settings = AlertSettings {
            deadline: Duration::from_secs(30),
            ..fast()
        };
        let error = deliver(&receiver.url, &settings)
            .await
            .expect_err("the body never ends");
        assert!(error.message.contains("64 KiB"), "{error}");
        // What the receiver got out before the connection dropped: the cap plus what the
        // kernel's socket buffers hold, far from the receiver's own limit.
        let sent = receiver.body_sent();
        assert!(sent < testserver::ENDLESS_LIMIT / 4, "{sent} bytes sent");
    }

    #[tokio::test]
    async fn retries_stop_at_the_total_budget() {
        let receiver = testserver::start(Behaviour::Status(503, ""));
        let settings = AlertSettings {
            attempts: 1000,
            ..fast()
        };
        let error = deliver(&receiver.url, &settings).await.expect_err("always 503");
        assert!(error.message.contains("HTTP 503"), "{error}");
        let tries = receiver.connections();
        assert!((2..=8).contains(&tries), "{tries} attempts");
    }

    #[tokio::test]
    async fn a_retry_after_beyond_the_budget_gives_up_at_once() {
        let receiver = testserver::start(Behaviour::Status(429, "retry-after: 3600"));
        let error = deliver(&receiver.url, &fast()).await.expect_err("always 429");
        assert!(error.message.contains("HTTP 429"), "{error}");
        assert_eq!(receiver.connections(), 1);
    }

    #[tokio::test]
    async fn an_endless_body_is_read_no_further_than_the_cap() {
        let receiver = testserver::start(Behaviour::Endless);
        let request = http::Request::post(&receiver.url)
            .body(Full::new(Bytes::from_static(b"{}")))
            .expect("request");
        let client = client("test").expect("client");
        let cap = 64 * 1024;
        let (outcome, read) = exchange(&client, request, Duration::from_secs(30), cap).await;
        assert!(
            matches!(outcome, Exchange::Unfinished { status: 200, .. }),
            "{outcome:?}"
        );
        assert!(read > cap && read <= cap + BUFFER, "{read} bytes read");
    }

    #[test]
    fn scrubbing_removes_every_part_of_the_url() {
        let url = Secret::new("https://user:pw@hooks.example.com:8443/services/T0/B0/xyz?k=v");
        let text = "error for hooks.example.com:8443 at /services/T0/B0/xyz?k=v via user:pw@hooks.example.com:8443";
        let scrubbed = scrub(text, &url);
        for part in ["hooks.example.com", "xyz", "pw@"] {
            assert!(!scrubbed.contains(part), "{scrubbed}");
        }
    }
}
