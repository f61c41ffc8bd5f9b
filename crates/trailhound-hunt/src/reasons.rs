//! Reading the known-reasons file for a run, and saying which entries have expired.

use std::path::Path;

use trailhound_finding::Reasons;

use crate::HuntError;

/// Reads and parses `path`, and warns about entries past their expiry date (they explain
/// nothing any more, which a person should hear about before findings reappear).
pub fn load_reasons(path: &Path) -> Result<Reasons, HuntError> {
    let text = std::fs::read_to_string(path).map_err(|source| HuntError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reasons = Reasons::parse(&path.display().to_string(), &text)?;
    let today = chrono::Utc::now().date_naive();
    for entry in reasons.expired(today) {
        tracing::warn!(
            "{}:{}: reason {:?} ({}) expired on {}; it no longer explains anything",
            path.display(),
            entry.line,
            entry.explanation.reason,
            entry.explanation.ticket.as_deref().unwrap_or("no ticket"),
            entry.explanation.expires.map(|d| d.to_string()).unwrap_or_default()
        );
    }
    Ok(reasons)
}
