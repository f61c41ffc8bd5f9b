//! `verify s3://`: a trail's bucket checked where it is, against its digests and their
//! signatures ([`crate::integrity`] does the checking; this module lists, fetches and asks
//! CloudTrail for its public keys).
//!
//! Only the days around the window are listed, for each account and region: the trail's folder
//! (and its Insights folder) and its `CloudTrail-Digest/` folder, a day more on each side so the
//! digests at the window's edges have their links. Digests keep their signatures in the
//! object's metadata (`x-amz-meta-signature`, `x-amz-meta-signature-algorithm`), read with
//! each digest; log files are fetched only when a digest of the window lists them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{Duration, NaiveDate, Utc};
use futures_util::StreamExt as _;
use sha2::{Digest as _, Sha256};
use trailhound_aws::{Aws, AwsError, classify};

use super::s3::{S3Options, TrailBucket};
use crate::discover::{FileTime, earlier, file_time, later};
use crate::integrity::{DIGEST_MAX_BYTES, LOG_MAX_BYTES, PublicKeys, ReadDigest, Signature, Store, hex, inflated_from};
use crate::window::TimeWindow;

/// Objects fetched at once.
const CONCURRENCY: usize = 16;

/// The keys under the bucket's prefix that a check of `window` needs: CloudTrail log files,
/// Insights files and digests of the days around it, for each account and region found. A
/// prefix without the `AWSLogs/` layout is listed whole.
pub async fn keys(bucket: &TrailBucket, window: TimeWindow) -> Result<Vec<String>, AwsError> {
    let day = Duration::days(1);
    let widened = TimeWindow {
        since: window.since.map(|t| earlier(t, day)),
        until: window.until.map(|t| later(t, day)),
    };
    let options = S3Options {
        window: widened,
        delivery_lag: Duration::hours(1),
        ..S3Options::default()
    };
    let listing = bucket.discover(&options).await?;
    if !listing.layout {
        return bucket
            .list_keys(listing.scopes.first().map_or("", |s| s.base.as_str()))
            .await;
    }
    let mut scopes = Vec::new();
    for scope in listing.scopes {
        if !scope.insights
            && let Some((before, region)) = scope.base.trim_end_matches('/').rsplit_once("/CloudTrail/")
        {
            let mut digests = scope.clone();
            digests.base = format!("{before}/CloudTrail-Digest/{region}/");
            scopes.push(digests);
        }
        scopes.push(scope);
    }
    let mut keys = Vec::new();
    for scope in &scopes {
        for day in bucket.days(scope, &options).await? {
            let prefix = format!("{}{}", scope.base, day.format("%Y/%m/%d/"));
            keys.extend(bucket.list_keys(&prefix).await?);
        }
    }
    keys.sort();
    keys.dedup();
    Ok(keys)
}

/// CloudTrail's public keys for the digests among `keys`: `ListPublicKeys` in each region that
/// has digests, over the days they were delivered (a day more on each side).
pub async fn public_keys(aws: &Aws, keys: &[String]) -> Result<PublicKeys, AwsError> {
    let mut regions: BTreeMap<String, BTreeSet<NaiveDate>> = BTreeMap::new();
    for key in keys {
        let Some((_, rest)) = key.split_once("/CloudTrail-Digest/") else {
            continue;
        };
        let Some((region, _)) = rest.split_once('/') else {
            continue;
        };
        let days = regions.entry(region.to_string()).or_default();
        if let FileTime::Day(day) = file_time(Path::new(key)) {
            days.insert(day);
        }
    }
    let mut found = PublicKeys::default();
    let now = Utc::now().timestamp();
    for (region, days) in regions {
        let (start, end) = key_span(&days, now);
        let client = aws.cloudtrail(&region, true);
        let mut token: Option<String> = None;
        loop {
            let out = client
                .list_public_keys()
                .start_time(aws_smithy_types::DateTime::from_secs(start))
                .end_time(aws_smithy_types::DateTime::from_secs(end))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| {
                    classify(
                        &e,
                        &format!("CloudTrail in {region}"),
                        "cloudtrail:ListPublicKeys",
                        &region,
                    )
                })?;
            for key in out.public_key_list() {
                if let (Some(fingerprint), Some(value)) = (key.fingerprint(), key.value()) {
                    found.add(fingerprint, value.as_ref().to_vec());
                }
            }
            match out.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => break,
            }
        }
    }
    Ok(found)
}

/// An object as fetched: its bytes, its user metadata and its key.
struct Fetched {
    bytes: Vec<u8>,
    metadata: std::collections::HashMap<String, String>,
    key: String,
}

/// The span (Unix seconds) to ask public keys for, for digests delivered on `days`: a day before
/// the first to two after the last, never ending after `now` nor starting after it ends (CloudTrail
/// refuses such a range).
fn key_span(days: &BTreeSet<NaiveDate>, now: i64) -> (i64, i64) {
    let midnight = |day: NaiveDate| day.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp());
    let end = days
        .last()
        .map_or(now, |&day| midnight(day + Duration::days(2)).min(now));
    let start = days
        .first()
        .map_or(end, |&day| midnight(day - Duration::days(1)))
        .min(end - 86_400);
    (start, end)
}

/// The bucket as a [`Store`]: files named `s3://BUCKET/KEY`, fetched on `runtime`, digests
/// with their signatures.
pub struct BucketStore<'a> {
    pub bucket: &'a TrailBucket,
    pub runtime: &'a tokio::runtime::Handle,
}

impl BucketStore<'_> {
    /// The names [`crate::integrity::verify_store`] takes for `keys`.
    pub fn names(&self, keys: &[String]) -> Vec<PathBuf> {
        keys.iter().map(|k| PathBuf::from(self.bucket.uri(k))).collect()
    }

    fn key<'p>(&self, path: &'p Path) -> &'p str {
        let text = path.to_str().unwrap_or_default();
        let root = self.bucket.uri("");
        text.strip_prefix(root.as_str()).unwrap_or(text)
    }

    /// Fetches each of `paths` (at most [`CONCURRENCY`] at once), in order, and makes what the
    /// check needs of it off the runtime's thread (inflating is CPU work).
    fn each<T: Send + 'static>(
        &self,
        paths: &[&Path],
        make: fn(Fetched) -> Result<T, String>,
    ) -> Vec<Result<T, String>> {
        let keys: Vec<String> = paths.iter().map(|p| self.key(p).to_string()).collect();
        let bucket = self.bucket;
        self.runtime.block_on(
            futures_util::stream::iter(keys)
                .map(|key| async move {
                    let (bytes, metadata) = bucket.get_with_metadata(&key).await?;
                    tokio::task::spawn_blocking(move || make(Fetched { bytes, metadata, key }))
                        .await
                        .map_err(|e| format!("reading the object failed: {e}"))?
                })
                .buffered(CONCURRENCY)
                .collect(),
        )
    }
}

impl Store for BucketStore<'_> {
    fn digests(&self, paths: &[&Path]) -> Vec<Result<ReadDigest, String>> {
        self.each(paths, |Fetched { bytes, metadata, key }| {
            let mut content = Vec::new();
            inflated_from(&bytes[..], DIGEST_MAX_BYTES, |chunk| content.extend_from_slice(chunk))?;
            let signature = metadata.get("signature").map(|hex| Signature {
                hex: hex.clone(),
                algorithm: metadata.get("signature-algorithm").cloned().unwrap_or_default(),
            });
            Ok(ReadDigest {
                content,
                signature,
                key: Some(key),
            })
        })
    }

    fn log_hashes(&self, paths: &[&Path]) -> Vec<Result<String, String>> {
        self.each(paths, |fetched| {
            let mut hasher = Sha256::new();
            inflated_from(&fetched.bytes[..], LOG_MAX_BYTES, |chunk| hasher.update(chunk))?;
            Ok(hex(&hasher.finalize()))
        })
    }

    fn keeps_signatures(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_keys_are_asked_for_a_span_cloudtrail_accepts() {
        let day = |d: u32| NaiveDate::from_ymd_opt(2024, 1, d).expect("date");
        let at = |d: u32| midnight_of(day(d));
        let days: BTreeSet<NaiveDate> = [day(10), day(12)].into();
        // Long ago: a day before the first digest to two after the last.
        assert_eq!(key_span(&days, at(30)), (at(9), at(14)));
        // Digests of today: the span ends now.
        assert_eq!(key_span(&days, at(13)), (at(9), at(13)));
        // Digests dated after now (a skewed clock): still a span that starts before it ends.
        let (start, end) = key_span(&days, at(5));
        assert!(start < end && end == at(5), "{start} {end}");
        let (start, end) = key_span(&BTreeSet::new(), at(5));
        assert_eq!((start, end), (at(4), at(5)));
    }

    fn midnight_of(day: NaiveDate) -> i64 {
        day.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp())
    }
}
