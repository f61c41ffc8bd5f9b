//! A compiled rule and its metadata.

use trailhound_event::Record;

use crate::detection::Detection;
use crate::level::Level;
use crate::testcase::TestCase;

/// A Sigma rule, compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    /// What users see and type: the rule's `name`, else its `id`, else the file name.
    pub id: String,
    /// The Sigma `id` (a UUID), when the rule has one.
    pub uuid: Option<String>,
    pub title: String,
    pub level: Level,
    pub status: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub falsepositives: Vec<String>,
    pub references: Vec<String>,
    pub author: Option<String>,
    /// The file the rule came from (`builtin:PATH` for the built-in pack).
    pub file: String,
    /// The rule's YAML as written.
    pub text: String,
    /// Test events from the rule's `.tests.yml` sibling.
    pub tests: Vec<TestCase>,
    pub(crate) detection: Detection,
}

impl Rule {
    /// Whether the record matches the rule's detection.
    pub fn matches(&self, record: &Record<'_>) -> bool {
        self.detection.matches(record)
    }

    /// ATT&CK technique ids among the tags (`attack.t1078.004` -> `T1078.004`).
    pub fn techniques(&self) -> impl Iterator<Item = String> + '_ {
        self.tags.iter().filter_map(|tag| {
            let id = tag.strip_prefix("attack.")?;
            (id.starts_with('t') && id[1..].starts_with(|c: char| c.is_ascii_digit())).then(|| id.to_uppercase())
        })
    }
}
