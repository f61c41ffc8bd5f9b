//! A compiled rule and its metadata.

use trailhound_event::Record;

use crate::correlation::Correlation;
use crate::detection::Detection;
use crate::testcase::TestCase;
use trailhound_finding::Level;

/// Fields that, named in a rule's detection, show it asks about calls AWS makes itself (see
/// [`Rule::sees_aws_calls`]).
pub const AWS_CALL_FIELDS: [&str; 4] = [
    "userIdentity.type",
    "userIdentity.invokedBy",
    "trailhound.principal.kind",
    "trailhound.principal.by_aws",
];

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
    /// The rule's YAML document as written (its own document only, in a file of several).
    pub text: String,
    /// Test events from the rule's `.tests.yml` sibling.
    pub tests: Vec<TestCase>,
    pub(crate) body: Body,
}

/// What a rule does.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// A detection: one record at a time.
    Detection(Detection),
    /// A Sigma correlation rule over other rules.
    Correlation(Correlation),
    /// A legacy aggregation (`sel | count() > 5`, `a | near b`): inline detections, one per
    /// part, feeding a correlation.
    Aggregation {
        parts: Vec<Detection>,
        correlation: Correlation,
    },
    /// A Sigma filter (meta rule): its detection is applied to the rules it names, which then
    /// match only where the filter's condition holds too. It reports nothing itself.
    Filter { rules: Vec<String>, detection: Detection },
}

impl Rule {
    /// Whether the record matches the rule's detection (never, for correlations: they look at
    /// groups of records, see `RuleSet`).
    pub fn matches(&self, record: &Record<'_>) -> bool {
        match &self.body {
            Body::Detection(detection) => detection.matches(record),
            Body::Correlation(_) | Body::Aggregation { .. } | Body::Filter { .. } => false,
        }
    }

    /// Every field the rule's detections test (none for a correlation rule: its inputs are
    /// other rules).
    pub fn fields(&self) -> Vec<&str> {
        match &self.body {
            Body::Detection(detection) | Body::Filter { detection, .. } => detection.fields(),
            Body::Aggregation { parts, .. } => parts.iter().flat_map(Detection::fields).collect(),
            Body::Correlation(_) => Vec::new(),
        }
    }

    /// Whether the rule asks about baselines (tests a `trailhound.baseline.` field): the hunt
    /// then reports the first deviation per principal, not every event showing it.
    pub fn tests_baseline(&self) -> bool {
        self.fields().iter().any(|f| f.starts_with("trailhound.baseline."))
    }

    /// Whether calls AWS makes itself (`trailhound.principal.by_aws`) reach the rule. Rules are
    /// written for what people and their workloads do; a rule that names who made the call
    /// (`userIdentity.type`, `userIdentity.invokedBy`, `trailhound.principal.kind` or
    /// `trailhound.principal.by_aws`) asks for AWS's own calls and sees them too.
    pub fn sees_aws_calls(&self) -> bool {
        self.fields().iter().any(|f| AWS_CALL_FIELDS.contains(f))
    }

    /// The rules a correlation rule refers to (names or ids); empty for other rules.
    pub fn references(&self) -> &[String] {
        match &self.body {
            Body::Correlation(correlation) => &correlation.rules,
            _ => &[],
        }
    }

    /// The rules a filter applies to (names or ids); empty for other rules.
    pub fn filtered(&self) -> &[String] {
        match &self.body {
            Body::Filter { rules, .. } => rules,
            _ => &[],
        }
    }

    /// Whether this is a Sigma filter (it reports nothing itself).
    pub fn is_filter(&self) -> bool {
        matches!(self.body, Body::Filter { .. })
    }

    /// The rule as findings carry it.
    pub fn info(&self) -> trailhound_finding::RuleInfo<'_> {
        trailhound_finding::RuleInfo {
            id: &self.id,
            title: &self.title,
            level: self.level,
            tags: &self.tags,
        }
    }

    /// Whether this is a correlation (Sigma correlation rule or legacy aggregation).
    pub fn is_correlation(&self) -> bool {
        matches!(self.body, Body::Correlation(_) | Body::Aggregation { .. })
    }

    /// ATT&CK technique ids among the tags (`attack.t1078.004` -> `T1078.004`).
    pub fn techniques(&self) -> impl Iterator<Item = String> + '_ {
        self.tags.iter().filter_map(|tag| {
            let id = tag.strip_prefix("attack.")?;
            (id.starts_with('t') && id[1..].starts_with(|c: char| c.is_ascii_digit())).then(|| id.to_uppercase())
        })
    }
}
