//! Remote sources (the `aws` feature): trail buckets in S3, the LookupEvents API and the
//! CloudTrail table in Amazon Athena.
//!
//! Listers and fetchers run on the caller's tokio runtime and hand fetched bytes to the same
//! parallel scanner local files go through ([`crate::scan_objects`]), over bounded channels.
//! Read-only: every SDK call here is in `deploy/iam-policy.json`, but for Athena's, which are in
//! `deploy/iam-policy-athena.json` (trailhound-aws's policy test reads this folder to prove it).

pub mod athena;
pub mod lookup;
mod remote;
pub mod s3;
pub mod verify;

pub(crate) use remote::Reader;
pub use remote::source_name;
