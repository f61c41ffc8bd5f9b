//! The commands. Each takes resolved settings and returns how the process should exit.

pub mod alerts;
pub mod athena;
pub mod context;
pub mod events;
pub mod findings;
pub mod hunt;
pub mod inventory;
pub mod rules;
pub mod sql;
pub mod summary;
pub mod timeline;
pub mod verify;

/// How a command ended, as the process exit status (see `--help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 0: done, nothing at or above `--fail-on`.
    Clean,
    /// 1: findings at or above `--fail-on`, or a rule test failed.
    Findings,
    /// 2: an error the user must fix.
    Error,
}

/// A read's counters as the run summary shows them.
pub fn figures(stats: &trailhound_source::ScanStats) -> trailhound_output::ReadFigures {
    trailhound_output::ReadFigures {
        files_read: stats.files_read,
        bytes_read: stats.bytes_read,
        bytes_inflated: stats.bytes_inflated,
        records_read: stats.records_read,
        records_in_window: stats.records_in_window,
        files_pruned: stats.files_pruned,
        digests_skipped: stats.digests_skipped,
        other_logs_skipped: stats.other_logs_skipped,
        files_foreign: stats.files_foreign,
        files_failed: stats.files_failed,
        files_damaged: stats.files_damaged,
        records_invalid: stats.records_invalid,
        records_repeated_key: stats.records_repeated_key,
        elapsed: stats.elapsed,
    }
}
