//! Where CloudTrail events come from, and the parallel scan over them.
//!
//! This crate finds the files a hunt must read (pruning by the time window using the AWS delivery
//! layout), reads and inflates them, splits them into records and hands each record inside the
//! window to a caller-supplied [`Sink`]. Bad files and records are reported and counted; the scan
//! goes on. It knows nothing of rules or output formats. Remote sources (S3, LookupEvents) are
//! fetched by trailhound-aws and scanned here with [`scan_objects`]; this crate has no async
//! runtime and no AWS SDK.

mod decode;
mod discover;
mod input;
mod scan;
mod window;

pub use decode::decode;
pub use discover::{FileTime, file_time};
pub use input::{Input, InputError, LookupRegions};
pub use scan::{
    Fetched, MAX_PROBLEMS_KEPT, Plan, Problem, ProblemBudget, ProblemKind, ScanOptions, ScanReport, ScanStats, Sink,
    delivery_batches, earliest_event, scan, scan_objects, scan_part,
};
pub use window::{TimeWindow, WindowError, parse_bound, parse_duration};
