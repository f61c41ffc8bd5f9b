//! Inventory of an AWS account: the snapshot model, diffs between snapshots, the audit that
//! turns unexplained items and risky settings into findings, and (feature `aws`) the collectors
//! that fill a snapshot from the AWS APIs.
//!
//! Without the `aws` feature this crate never calls AWS, reads no files and reads no clock, so
//! the model, the diff and the audit are tested on plain values. A snapshot is versioned JSON
//! ([`FORMAT_VERSION`]); [`diff`] compares two of them item by item; [`audit`] checks one
//! against a reasons file and returns [`trailhound_finding::Finding`]s about items, the shape
//! a hunt produces, so the store, the output formats and the alerts treat them alike.

mod audit;
#[cfg(feature = "aws")]
pub mod collect;
mod diff;
mod kind;
mod snapshot;

pub use audit::{ADMIN_PORTS, AuditOptions, EXPLAINED_KINDS, audit, explain_item, item_field};
pub use diff::{ACTIVITY_FIELDS, Change, Diff, FieldChange, diff, diff_with_activity};
pub use kind::{Kind, Table};
pub use snapshot::{CollectError, FORMAT_VERSION, Item, Snapshot, SnapshotError};
