//! Inventory collection: reads what exists in an account (IAM, EC2 per region, S3, CloudTrail)
//! into a [`Snapshot`], following the attribute conventions of `trailhound_inventory`.
//!
//! Every collector has the same shape: `collect(&Scope) -> Found`, the items it saw and the calls
//! that failed. A failed call is a [`CollectError`] in the snapshot and collection goes on (a
//! region that is not enabled does not stop the others); only errors that every later call would
//! repeat (no credentials, expired token) end the collection. Calls run concurrently, at most
//! `concurrency` at a time, through one semaphore shared by all collectors.
//!
//! Read-only: only List/Get/Describe calls, every one of them in `deploy/iam-policy.json` (the
//! policy test in trailhound-aws walks this folder to prove it). Nothing here compares or judges items:
//! that is the inventory crate's diff and audit.

mod cloudtrail;
mod ec2;
mod iam;
mod s3;

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::DateTime as AwsTime;
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use trailhound_aws::{Aws, AwsError, classify, iam_action};

use crate::snapshot::{CollectError, Item, Snapshot};

/// What to collect.
#[derive(Debug, Clone)]
pub struct CollectOptions {
    /// The regions of the regional collectors; None: every region enabled for the account.
    pub regions: Option<Vec<String>>,
    /// API calls in flight at once, across all services.
    pub concurrency: usize,
}

impl Default for CollectOptions {
    fn default() -> CollectOptions {
        CollectOptions {
            regions: None,
            concurrency: 8,
        }
    }
}

/// Collects a snapshot of the account. Failed calls are recorded in it; the error is returned
/// only when the credentials themselves fail (missing, expired), since nothing could be read.
pub async fn collect(aws: &Aws, options: &CollectOptions) -> Result<Snapshot, AwsError> {
    let started = Instant::now();
    // Whole seconds: the time names the snapshot in messages and findings.
    let mut snapshot = Snapshot::new(Utc::now().trunc_subsecs(0));
    let mut found = Found::default();
    // The identity first: it fails fast and clearly when the credentials are bad.
    match aws.identity().await {
        Ok(identity) => {
            snapshot.account_id = Some(identity.account).filter(|a| !a.is_empty());
            snapshot.caller_arn = Some(identity.arn).filter(|a| !a.is_empty());
        }
        Err(error) if error.is_fatal() => return Err(error),
        Err(error) => found
            .errors
            .push(record(&error, "sts", None, "GetCallerIdentity", None)),
    }
    let regions = match &options.regions {
        Some(regions) => regions.clone(),
        None => match aws.enabled_regions().await {
            Ok(regions) => regions,
            Err(error) if error.is_fatal() => return Err(error),
            Err(error) => {
                // The default region is still worth collecting.
                found.errors.push(record(&error, "ec2", None, "DescribeRegions", None));
                vec![aws.region().to_string()]
            }
        },
    };
    let scope = Scope {
        aws: aws.clone(),
        limit: Arc::new(Semaphore::new(options.concurrency.max(1))),
        regions: Arc::new(regions.clone()),
        account_id: snapshot.account_id.clone(),
    };
    let (iam, ec2, s3, trails) = tokio::join!(
        iam::collect(&scope),
        ec2::collect(&scope),
        s3::collect(&scope),
        cloudtrail::collect(&scope)
    );
    for part in [iam, ec2, s3, trails] {
        found.merge(part);
    }
    if let Some(fatal) = found.fatal {
        return Err(fatal);
    }
    snapshot.regions = regions;
    snapshot.items = found.items;
    snapshot.errors = found.errors;
    snapshot.sort();
    snapshot.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(snapshot)
}

/// What every collector works with: the clients' setup, the shared limit on calls in flight,
/// the regions to visit and the account (from STS, when known).
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub aws: Aws,
    pub limit: Arc<Semaphore>,
    pub regions: Arc<Vec<String>>,
    pub account_id: Option<String>,
}

impl Scope {
    /// A permit to make one call; held while the call runs. The semaphore is never closed, so
    /// None does not happen in practice (and then the call simply runs unthrottled).
    pub async fn permit(&self) -> Option<OwnedSemaphorePermit> {
        self.limit.clone().acquire_owned().await.ok()
    }

    /// Makes one call (a request's `send()`, or a whole paginated listing) under a permit.
    pub async fn call<T, E, R>(
        &self,
        call: Call<'_>,
        request: impl Future<Output = Result<T, SdkError<E, R>>>,
    ) -> Result<T, Failure>
    where
        E: ProvideErrorMetadata + StdError + 'static,
        R: std::fmt::Debug + 'static,
    {
        let _permit = self.permit().await;
        request.await.map_err(|err| call.failure(&err))
    }

    /// [`Scope::call`] for a setting that may not be set: an error with one of the `absent`
    /// codes (`NoSuchEntity`) is `Ok(None)`, not a failure.
    pub async fn call_allowing<T, E, R>(
        &self,
        call: Call<'_>,
        absent: &[&str],
        request: impl Future<Output = Result<T, SdkError<E, R>>>,
    ) -> Result<Option<T>, Failure>
    where
        E: ProvideErrorMetadata + StdError + 'static,
        R: std::fmt::Debug + 'static,
    {
        let _permit = self.permit().await;
        match request.await {
            Ok(value) => Ok(Some(value)),
            Err(err) if err.code().is_some_and(|code| absent.contains(&code)) => Ok(None),
            Err(err) => Err(call.failure(&err)),
        }
    }
}

/// What a collector found: items, the calls that failed, and an error that ends collection.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub items: Vec<Item>,
    pub errors: Vec<CollectError>,
    pub fatal: Option<AwsError>,
}

impl Found {
    /// Records a failed call, or keeps it as the fatal error when it is one.
    pub fn fail(&mut self, failure: Failure) {
        if failure.error.is_fatal() {
            self.fatal.get_or_insert(failure.error);
        } else {
            self.errors.push(failure.record);
        }
    }

    /// The value of a call that succeeded; a failure is recorded and gives None.
    pub fn take<T>(&mut self, result: Result<T, Failure>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(failure) => {
                self.fail(failure);
                None
            }
        }
    }

    pub fn merge(&mut self, other: Found) {
        self.items.extend(other.items);
        self.errors.extend(other.errors);
        if let Some(fatal) = other.fatal {
            self.fatal.get_or_insert(fatal);
        }
    }

    /// Waits for every task of `tasks` and merges what each found; a task that panicked is
    /// recorded as a failed `operation` of `service`.
    pub async fn join(&mut self, mut tasks: JoinSet<Found>, service: &str, operation: &str) {
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(part) => self.merge(part),
                Err(err) => self.errors.push(CollectError {
                    service: service.to_string(),
                    region: None,
                    operation: operation.to_string(),
                    code: None,
                    message: format!("collector task failed: {err}"),
                }),
            }
        }
    }
}

/// A failed call: the classified error, and how the snapshot records it.
#[derive(Debug)]
pub(crate) struct Failure {
    pub error: AwsError,
    pub record: CollectError,
}

/// Which call failed: `service` as in IAM actions (`iam`), `operation` as AWS names it
/// (`ListUsers`), `region` for regional calls, `resource` what it was about (for the message).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call<'a> {
    pub service: &'a str,
    pub operation: &'a str,
    pub region: Option<&'a str>,
    pub resource: &'a str,
}

impl Call<'_> {
    /// Classifies an SDK error of this call.
    pub fn failure<E, R>(&self, err: &SdkError<E, R>) -> Failure
    where
        E: ProvideErrorMetadata + StdError + 'static,
        R: std::fmt::Debug + 'static,
    {
        let action = iam_action(self.service, self.operation);
        // Global services sign in us-east-1; the region only words the message.
        let error = classify(err, self.resource, &action, self.region.unwrap_or("us-east-1"));
        let raw = err.code().filter(|c| !c.is_empty());
        let record = record(&error, self.service, self.region, self.operation, raw);
        Failure { error, record }
    }
}

/// The snapshot's record of a failed call; `raw_code` is the code AWS sent, when known.
fn record(
    error: &AwsError,
    service: &str,
    region: Option<&str>,
    operation: &str,
    raw_code: Option<&str>,
) -> CollectError {
    CollectError {
        service: service.to_string(),
        region: region.map(str::to_string),
        operation: operation.to_string(),
        code: raw_code.or_else(|| error.code()).map(str::to_string),
        message: error.to_string(),
    }
}

/// Drains a paginator's stream (`into_paginator().send()`) into its pages, stopping at the
/// first failed page.
macro_rules! all_pages {
    ($stream:expr) => {{
        let mut stream = $stream;
        let mut pages = Vec::new();
        loop {
            match stream.next().await {
                None => break Ok(pages),
                Some(Ok(page)) => pages.push(page),
                Some(Err(err)) => break Err(err),
            }
        }
    }};
}
pub(crate) use all_pages;

/// An SDK time as chrono's, to the second (the APIs' precision; emulators add microseconds).
pub(crate) fn time(value: &AwsTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(value.secs(), 0)
}

/// An SDK time as the snapshot writes attribute times: RFC 3339, or null.
pub(crate) fn time_value(value: Option<&AwsTime>) -> Value {
    value.and_then(time).map_or(Value::Null, |t| {
        Value::String(t.to_rfc3339_opts(SecondsFormat::Secs, true))
    })
}

/// A string attribute, null when absent or empty.
pub(crate) fn text(value: Option<&str>) -> Value {
    value
        .filter(|v| !v.is_empty())
        .map_or(Value::Null, |v| Value::String(v.to_string()))
}

/// Strings as a JSON array, sorted (the APIs promise no order; sorted reads the same each night).
pub(crate) fn names<'a>(values: impl IntoIterator<Item = &'a str>) -> Value {
    let mut list: Vec<&str> = values.into_iter().collect();
    list.sort_unstable();
    list.dedup();
    Value::Array(list.into_iter().map(|v| Value::String(v.to_string())).collect())
}

/// A policy document as IAM returns it (percent-encoded JSON) parsed into JSON; text that is
/// not JSON once decoded is kept as a string, so nothing is lost.
pub(crate) fn policy_document(raw: &str) -> Value {
    let trimmed = raw.trim_start();
    let decoded = if trimmed.starts_with('{') {
        raw.to_string()
    } else {
        percent_decode(raw)
    };
    serde_json::from_str(&decoded).unwrap_or(Value::String(decoded))
}

/// Decodes `%XX` escapes (RFC 3986, as IAM encodes documents; `+` stays `+`). Malformed
/// escapes are kept as they are; invalid UTF-8 is replaced.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(high), Some(low)) = (
                bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16)),
                bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16)),
            )
        {
            // Two hex digits make at most 255.
            out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_documents_are_decoded_once() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22AWS%22%3A%22arn%3Aaws%3Aiam%3A%3A999988887777%3Aroot%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D";
        let doc = policy_document(encoded);
        assert_eq!(
            doc["Statement"][0]["Principal"]["AWS"],
            "arn:aws:iam::999988887777:root"
        );
        // Already decoded (some emulators): parsed as is, a literal % untouched.
        let plain = r#"{"Statement": [{"Condition": {"StringLike": {"s3:prefix": "100%25"}}}]}"#;
        assert_eq!(
            policy_document(plain)["Statement"][0]["Condition"]["StringLike"]["s3:prefix"],
            "100%25"
        );
        assert_eq!(policy_document("not%20json"), Value::String("not json".into()));
        assert_eq!(percent_decode("a+b%2Bc%zz%4"), "a+b+c%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }

    #[test]
    fn times_and_lists_are_normalised() {
        let t = AwsTime::from_secs_and_nanos(1_796_000_000, 123_456_000);
        assert_eq!(time_value(Some(&t)), Value::String("2026-11-30T00:53:20Z".into()));
        assert_eq!(time_value(None), Value::Null);
        assert_eq!(names(["b", "a", "b"]), serde_json::json!(["a", "b"]));
        assert_eq!(text(Some("")), Value::Null);
    }
}
