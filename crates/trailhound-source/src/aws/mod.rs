//! Remote sources (the `aws` feature): trail buckets in S3 and the LookupEvents API.
//!
//! Listers and fetchers run on the caller's tokio runtime and hand fetched bytes to the same
//! parallel scanner local files go through ([`crate::scan_objects`]), over bounded channels.
//! Read-only: every SDK call here is in `deploy/iam-policy.json` (trailhound-aws's policy test
//! reads this folder to prove it).

pub mod cursor;
pub mod lookup;
mod remote;
pub mod s3;

pub(crate) use remote::Reader;
pub use remote::source_name;
