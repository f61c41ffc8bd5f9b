//! What trailhound reports: findings, their levels, grouping, known reasons that explain them,
//! and their triage state.
//!
//! A [`Finding`] is the one output type of every detector: a Sigma rule matching an event, a
//! correlation window closing, an inventory audit check. Plain data with a stable JSON shape
//! (the field names are a contract with users' scripts), plus the pure operations on findings
//! that every front door shares: grouping repeated ones and matching the known-reasons file.
//! This crate reads no files and depends on no rule engine, store, runtime or AWS crate.

mod finding;
mod level;
pub mod reasons;
mod triage;

pub use finding::{
    CorrelationInfo, CorrelationKind, Finding, GroupInfo, ItemRef, MAX_EVENT_IDS, RuleInfo, Subject, group_findings,
    origin_of,
};
pub use level::Level;
pub use reasons::{Explanation, Reasons, ReasonsError};
pub use triage::{Status, StoredFinding};
