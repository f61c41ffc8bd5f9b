//! The CloudTrail record model.
//!
//! This crate turns bytes into records and answers field lookups on them. It owns the shapes a
//! CloudTrail document can take (delivery envelope, array, NDJSON, single record, digest), the typed
//! core fields every rule and finding needs, and dotted field paths. It does no I/O and no
//! decompression: callers hand it a buffer.

pub mod derived;
pub mod document;
mod ecs;
mod foreign;
mod ocsf;
pub mod path;
pub mod printable;
pub mod query;
pub mod record;
mod scanner;
pub mod time;
pub mod yaml_guard;

pub use derived::{Derived, DerivedField, DerivedValue};
pub use document::{
    Document, DocumentError, NextRecord, RESYNC_RECORD_BYTES, RecordSlot, for_each_record, next_record_in,
};
pub use path::{FieldPath, Value};
pub use printable::printable;
pub use record::{Identity, Record, RecordError, compact_json};
pub use scanner::MAX_DEPTH;
pub use time::{parse_duration, parse_event_time};
pub use yaml_guard::flow_nesting_beyond;
