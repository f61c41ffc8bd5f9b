//! Inventory of an AWS account, the pure part: the snapshot model, diffs between snapshots, and
//! the audit that turns unexplained items and risky settings into findings.
//!
//! Collectors (in `trailhound-aws`) fill a [`Snapshot`]; this crate never calls AWS, reads no
//! files and reads no clock, so every function here is tested on plain values. A snapshot is
//! versioned JSON ([`FORMAT_VERSION`]); [`diff`] compares two of them item by item; [`audit`]
//! checks one against a reasons file and returns [`trailhound_rules::Finding`]s, the same shape a
//! hunt produces, so the store, the output formats and the alerts treat them alike.

mod audit;
mod diff;
mod kind;
mod snapshot;

pub use audit::{ADMIN_PORTS, AuditOptions, EXPLAINED_KINDS, audit, explain_item, item_field};
pub use diff::{ACTIVITY_FIELDS, Change, Diff, FieldChange, diff, diff_with_activity};
pub use kind::{Kind, Table};
pub use snapshot::{CollectError, FORMAT_VERSION, Item, Snapshot, SnapshotError};
