//! The function's state in S3, under `TRAILHOUND_STATE`: one marker object per finding alerted
//! (so a retried or duplicated invocation never alerts twice), the case store of scheduled runs
//! (`store.db`), inventory snapshots (`inventory/`) and the correlation windows per-object
//! invocations leave open (`correlations.json`, written with a conditional put so concurrent
//! invocations merge rather than overwrite). The only writes the function makes.

use anyhow::{Context, Result};
use aws_sdk_s3::error::ProvideErrorMetadata;
use trailhound_finding::Finding;

use crate::config::S3Location;

pub struct State {
    pub client: aws_sdk_s3::Client,
    pub location: S3Location,
}

impl State {
    pub fn uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.location.bucket)
    }

    /// The marker of a finding: `alerted/RULE/HASH` of what makes it the same finding.
    pub fn marker(&self, finding: &Finding) -> String {
        let identity = trailhound_store::finding_key(finding);
        self.location.child(&format!(
            "alerted/{}/{:016x}",
            finding.rule_id,
            fnv1a(identity.as_bytes())
        ))
    }

    /// Whether `key` exists.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        match self
            .client
            .head_object()
            .bucket(&self.location.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if err.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(false),
            Err(err) => Err(anyhow::anyhow!(
                "{}: {}",
                self.uri(key),
                err.code().map_or_else(|| err.to_string(), str::to_string)
            )),
        }
    }

    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.location.bucket)
            .key(key)
            .body(bytes.into())
            .send()
            .await
            .with_context(|| format!("writing {}", self.uri(key)))?;
        Ok(())
    }

    /// The object's bytes and ETag, or `None` when there is none yet.
    pub async fn get_tagged(&self, key: &str) -> Result<Option<(Vec<u8>, String)>> {
        let bucket = &self.location.bucket;
        match self.client.get_object().bucket(bucket).key(key).send().await {
            Ok(out) => {
                let etag = out.e_tag().unwrap_or_default().to_string();
                let body = out
                    .body
                    .collect()
                    .await
                    .with_context(|| format!("reading {}", self.uri(key)))?;
                Ok(Some((body.into_bytes().to_vec(), etag)))
            }
            Err(err) if err.code() == Some("NoSuchKey") => Ok(None),
            Err(err) => Err(anyhow::anyhow!(
                "{}: {}",
                self.uri(key),
                err.code().map_or_else(|| err.to_string(), str::to_string)
            )),
        }
    }

    /// Writes `key` only if it is still what was read (`etag`), or still absent (`None`).
    /// Returns false when another writer got there first.
    pub async fn put_if(&self, key: &str, bytes: Vec<u8>, etag: Option<&str>) -> Result<bool> {
        let request = self
            .client
            .put_object()
            .bucket(&self.location.bucket)
            .key(key)
            .body(bytes.into());
        let request = match etag {
            Some(etag) => request.if_match(etag),
            None => request.if_none_match("*"),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .raw_response()
                    .is_some_and(|r| matches!(r.status().as_u16(), 409 | 412)) =>
            {
                Ok(false)
            }
            Err(err) => Err(anyhow::anyhow!(
                "writing {}: {}",
                self.uri(key),
                err.code().map_or_else(|| err.to_string(), str::to_string)
            )),
        }
    }

    /// The object's bytes, or `None` when there is none yet.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        get(&self.client, &self.location.bucket, key).await
    }
}

/// An object's bytes, or `None` when it does not exist.
pub async fn get(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
    match client.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => {
            let body = out
                .body
                .collect()
                .await
                .with_context(|| format!("reading s3://{bucket}/{key}"))?;
            Ok(Some(body.into_bytes().to_vec()))
        }
        Err(err) if err.code() == Some("NoSuchKey") => Ok(None),
        Err(err) => Err(anyhow::anyhow!(
            "s3://{bucket}/{key}: {}",
            err.code().map_or_else(|| err.to_string(), str::to_string)
        )),
    }
}

/// Every key under `prefix`.
pub async fn list(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.with_context(|| format!("listing s3://{bucket}/{prefix}"))?;
        keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
    }
    Ok(keys)
}

/// FNV-1a, 64 bits: a short stable name for a finding's identity (not a security boundary).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
