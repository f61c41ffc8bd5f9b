//! A finding as the case store remembers it: its triage state and when it was seen. The store
//! reads and writes these; outputs render them. Plain data: no SQL here.

use serde::Serialize;

/// Triage state of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    New,
    Acked,
    Explained,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Acked => "acked",
            Status::Explained => "explained",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "new" => Some(Status::New),
            "acked" => Some(Status::Acked),
            "explained" => Some(Status::Explained),
            _ => None,
        }
    }
}

/// A stored finding with its triage state.
#[derive(Debug, Clone, Serialize)]
pub struct StoredFinding {
    pub id: i64,
    pub status: Status,
    pub reason: Option<String>,
    pub ticket: Option<String>,
    pub first_seen: String,
    pub last_seen: String,
    pub times_seen: i64,
    /// The finding as first recorded (its JSON).
    pub finding: serde_json::Value,
}
