//! The case store's part of a run: record the run and its findings, and keep what the run
//! prints. One function for every kind of run (hunts, inventory audits, the Lambda's schedule),
//! so "new", duplicates and an analyst's triage mean the same everywhere.

use trailhound_finding::{Explanation, Finding, Status};
use trailhound_store::{Recorded, RunStart, Store, StoreError};

/// What the store made of a run's findings.
#[derive(Debug, Default)]
pub struct Remembered {
    /// One per stored finding (a record delivered twice is one finding), each with its store
    /// id and an analyst's `findings explain` carried onto it; only new ones with `new_only`.
    pub findings: Vec<Finding>,
    /// Findings no earlier run recorded.
    pub new: usize,
}

/// Records a run of `start` that read `records` records and found `findings`.
pub fn remember(
    store: &mut Store,
    start: &RunStart,
    findings: Vec<Finding>,
    records: u64,
    new_only: bool,
) -> Result<Remembered, StoreError> {
    let states = record(store, start, &findings, records)?;
    Ok(keep(findings, states, new_only))
}

/// The store's half of [`remember`]: the run and its findings, with what the store made of
/// each. The findings stay the caller's, whatever the store does.
pub(crate) fn record(
    store: &mut Store,
    start: &RunStart,
    findings: &[Finding],
    records: u64,
) -> Result<Vec<Recorded>, StoreError> {
    let run = store.begin_run(start)?;
    let states = store.record_findings(run, findings)?;
    let new = states.iter().filter(|r| r.new).count();
    store.finish_run(run, records, findings.len(), new)?;
    Ok(states)
}

/// The findings half of [`remember`]: one per stored finding, with its store id and triage.
pub(crate) fn keep(findings: Vec<Finding>, states: Vec<Recorded>, new_only: bool) -> Remembered {
    let new = states.iter().filter(|r| r.new).count();
    let mut seen = std::collections::HashSet::new();
    let mut kept = Vec::with_capacity(findings.len());
    for (mut finding, recorded) in findings.into_iter().zip(states) {
        if !seen.insert(recorded.id) || (new_only && !recorded.new) {
            continue;
        }
        finding.store_id = Some(recorded.id);
        if recorded.status == Status::Explained && finding.explanation.is_none() {
            finding.explanation = Some(Box::new(Explanation {
                reason: recorded.reason.unwrap_or_default(),
                ticket: recorded.ticket,
                expires: None,
            }));
        }
        kept.push(finding);
    }
    Remembered { findings: kept, new }
}
