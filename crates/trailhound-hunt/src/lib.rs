//! The hunt engine: one run = read → evaluate → explain → group → remember → findings and
//! figures. Every front door (the CLI, the Lambda) runs hunts through [`hunt`] with options in
//! plain types; none of them knows how correlations sweep or how the store merges.
//!
//! The engine starts no runtime and opens no AWS connection: with the `aws` feature a caller
//! that reads remote sources hands in its own [`Remote`] (a tokio runtime handle and an AWS
//! connection), so a process keeps one of each however many hunts it runs. Progress is
//! reported through [`Progress`], which the CLI draws as a bar and the Lambda ignores.

pub mod activity;
mod athena;
mod engine;
mod reasons;
mod remember;

pub use activity::Activity;
pub use athena::{DEFAULT_MB_PER_PARTITION, plan_athena};
pub use engine::{BaselineStatus, ContextOptions, HuntOptions, Hunted, StoreOptions, hunt, merge_correlation_states};
pub use reasons::load_reasons;
pub use remember::{Remembered, remember};
pub use trailhound_source::{Progress, Remote, Silent};

use std::path::PathBuf;

/// What stops a hunt (a bad file or record never does: it is counted).
#[derive(Debug, thiserror::Error)]
pub enum HuntError {
    #[error("no rules to run: the selection (--no-builtin, --rules, --min-level, --rule, --tag) left none")]
    NoRules,
    #[error(transparent)]
    Read(#[from] trailhound_source::ReadError),
    #[error(transparent)]
    Store(#[from] trailhound_store::StoreError),
    #[error(transparent)]
    Reasons(#[from] trailhound_finding::ReasonsError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A source that cannot be planned (an Athena hunt without a window start).
    #[error("{0}")]
    Plan(String),
}
