//! The AWS connection every AWS-facing stage shares: client setup (the credential chain,
//! profiles, assumed roles, endpoints, one HTTPS stack), service clients, and the
//! classification of SDK errors into one-line messages that name the resource and the fix.
//!
//! Deliberately small: what reads trail buckets and LookupEvents lives with the other sources
//! (trailhound-source, feature `aws`), the inventory collectors with the inventory
//! (trailhound-inventory, feature `aws`), alert delivery with the alerts (trailhound-alert).
//! Nothing here knows CloudTrail records, rules, findings or output.

mod client;
mod error;
#[cfg(test)]
mod policy_test;

pub use client::{Aws, AwsSettings, Identity};
pub use error::{AwsError, classify, iam_action, is_throttling_code};
