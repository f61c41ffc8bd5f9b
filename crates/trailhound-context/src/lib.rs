//! Context for events: where a call came from and who made it, and what is normal for them.
//!
//! - [`ranges`]: AWS's published address ranges (`ip-ranges.json`): is an address AWS's, and
//!   which service and region.
//! - [`geoip`]: ASN, organisation and country from MaxMind-format databases the user points to.
//! - [`source`] and [`principal`]: what `sourceIPAddress` is, and who made the call.
//! - [`baseline`]: profiles of what each principal and access key normally does.
//! - [`Context`]: all of it together, deriving the `trailhound.` fields of each record
//!   (`trailhound_event::derived`).

pub mod baseline;
mod context;
pub mod geoip;
pub mod principal;
pub mod ranges;
pub mod source;
#[cfg(any(test, feature = "testing"))]
pub mod testdb;

pub use baseline::{BaselineOptions, Baselines};
pub use context::{Cache, Context};
pub use geoip::{GeoInfo, GeoIp, GeoIpError};
pub use ranges::{AwsRange, AwsRanges, RangesError};
