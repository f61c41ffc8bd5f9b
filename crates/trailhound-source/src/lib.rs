//! Where CloudTrail events come from, and the parallel scan over them.
//!
//! This crate finds the files a read must scan (pruning by the time window using the AWS
//! delivery layout), reads and inflates them, splits them into records and hands each record
//! inside the window to a caller-supplied [`Sink`]. Bad files and records are reported and
//! counted; the read goes on. With the `aws` feature it also reads trail buckets, the
//! LookupEvents API and Athena tables ([`aws`]) on a runtime and connection its caller owns.
//! It knows nothing of rules, findings or output formats: an Athena source's queries come from
//! its caller ([`AthenaPlan`]).

mod archive;
#[cfg(feature = "aws")]
pub mod aws;
pub mod cursor;
mod decode;
mod discover;
mod input;
pub mod integrity;
mod read;
mod scan;
mod stream;
mod window;

pub use decode::decode;
pub use discover::{FileTime, file_time, is_other_service_path};
pub use input::{AthenaTable, Input, InputError, LookupRegions};
pub use read::{
    ATHENA_PRICE_PER_TB, AthenaCursor, AthenaOptions, AthenaPlan, BATCH_WIDTH_HOURS, Cursors, Progress, ReadError,
    ReadOptions, ReadReport, Remote, RemoteOptions, RowToRecord, Silent, decimal_size, read, read_all,
};
pub use scan::{
    Fetched, Plan, Problem, ProblemBudget, ProblemKind, ScanOptions, ScanReport, ScanStats, Sink, delivery_batches,
    earliest_event, scan_objects, scan_part, scan_part_with,
};
pub use stream::{Checkpoints, scan_stream, scan_stream_in_blocks, scan_stream_split};
pub use window::{MAX_DELIVERY_LAG, TimeWindow, WindowError, parse_bound, parse_delivery_lag, parse_duration};
