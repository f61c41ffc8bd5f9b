//! Everything that talks to AWS: client setup (credential chain, profiles, assumed roles,
//! endpoints), the trail-bucket and LookupEvents readers, and inventory collection.
//!
//! This is the only crate that depends on the AWS SDK, so the pure crates build and test
//! without it. It is read-only against AWS. Readers hand fetched bytes to trailhound-source's
//! scanner through channels; nothing here parses CloudTrail records or runs rules.

pub mod alert;
mod client;
mod error;
pub mod inventory;
pub mod lookup;
pub mod s3_trail;

pub use client::{Aws, AwsSettings, Identity};
pub use error::{AwsError, classify};
pub use inventory::CollectOptions;
pub use lookup::{LookupCounters, LookupOptions, LookupRead, RETENTION_DAYS};
pub use s3_trail::{Counters, ListCounts, Listing, ObjectRef, S3Options, Scope, TrailBucket};
