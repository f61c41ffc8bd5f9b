//! The versioned snapshot: what the collectors saw in an account at one time.
//!
//! A snapshot is plain data, written as JSON to a file or a store row and read back by `diff`,
//! `audit` and `show`. This module owns the format and its version check; it does no I/O.
//!
//! An item is identified by (kind, region, id); global items (IAM, the account) have no region.
//! Its `attributes` follow these conventions, which the collectors fill and the audit relies on
//! (times are RFC 3339 strings, "or null" means the JSON null when unknown or absent):
//!
//! - `iam_user`: `path`, `password_last_used` (or null), `login_profile` (bool), `mfa_devices`
//!   (array of serials), `groups` (array of names), `attached_policies` (array of policy ARNs),
//!   `inline_policies` (array of names).
//! - `access_key`: id and name are the key id; `user` (user name), `status` ("Active" or
//!   "Inactive"), `last_used` (or null), `last_used_service`, `last_used_region`; `created` set.
//! - `iam_group`: `members` (array of user names), `attached_policies`, `inline_policies`.
//! - `iam_role`: `path`, `trust_policy` (the document as JSON, already URL-decoded), `last_used`
//!   (or null), `last_used_region`, `attached_policies`, `inline_policies`.
//! - `iam_policy` (customer-managed only): `default_version` ("v2"), `document` (JSON),
//!   `attachment_count`.
//! - `vpc`: `cidr`, `is_default` (bool), `state`. `subnet`: `vpc_id`, `cidr`,
//!   `availability_zone`, `map_public_ip` (bool).
//! - `vpn_gateway`, `customer_gateway`, `internet_gateway`, `nat_gateway`: `state`, `vpc_ids`
//!   (array), and `ip_address`, `bgp_asn` where they apply.
//! - `route_table`: `vpc_id`, `routes` (array of `{destination, target}`).
//! - `network_acl`: `vpc_id`, `is_default`, `entries` (array of `{rule_number, egress, protocol,
//!   action, cidr, from_port, to_port}`).
//! - `security_group`: `vpc_id`, `description`, `ingress` and `egress` (arrays of `{protocol,
//!   from_port, to_port, cidr, group, description}`: protocol "-1" is all traffic; ports are numbers
//!   or null; `cidr` is an IPv4 or IPv6 range, or `group` a source security group id).
//! - `vpc_peering`: `requester_vpc`, `accepter_vpc`, `accepter_account`, `status`.
//! - `flow_log`: `resource_id`, `status`, `destination`.
//! - `s3_bucket`: region is the bucket's region; `public_access_block` (object of the four bools,
//!   or null when none is set), `policy_public` (bool, or null with no policy or unknown),
//!   `versioning` ("Enabled", "Suspended" or null).
//! - `trail`: region is the home region; `multi_region` (bool), `is_logging` (bool, or null when
//!   the status could not be read), `latest_delivery_time`, `latest_delivery_error`, `s3_bucket`,
//!   `event_selectors` (JSON), `organization_trail` (bool).
//! - `account`: `aliases` (array), `password_policy` (object or null).
//!
//! A call that failed is a [`CollectError`]: `service` is the short service name (`iam`, `ec2`,
//! `s3`, `cloudtrail`, `sts`) and `operation` the API action (`ListUsers`). A failed trail listing
//! is recorded as service `cloudtrail`, operation `DescribeTrails`: the audit then knows trail
//! coverage is unknown rather than missing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::kind::Kind;

/// The snapshot format this crate writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// One collection run over one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub format_version: u32,
    pub collected_at: DateTime<Utc>,
    pub account_id: Option<String>,
    /// Who collected it (sts:GetCallerIdentity).
    pub caller_arn: Option<String>,
    /// The regions the regional collectors visited.
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub items: Vec<Item>,
    /// Calls that failed: what the snapshot may be missing.
    #[serde(default)]
    pub errors: Vec<CollectError>,
    /// How long collection took, in milliseconds.
    #[serde(default)]
    pub elapsed_ms: u64,
}

/// One resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub kind: Kind,
    pub id: String,
    pub name: String,
    /// None for global resources (IAM, the account).
    pub region: Option<String>,
    pub arn: Option<String>,
    pub created: Option<DateTime<Utc>>,
    /// Kind-specific values; see the module documentation for the names.
    #[serde(default)]
    pub attributes: BTreeMap<String, Value>,
}

/// A collector call that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectError {
    /// Short service name: `iam`, `ec2`, `s3`, `cloudtrail`, `sts`.
    pub service: String,
    pub region: Option<String>,
    /// The API action, e.g. `ListUsers`.
    pub operation: String,
    /// The AWS error code, e.g. `AccessDenied`.
    pub code: Option<String>,
    pub message: String,
}

/// A snapshot that cannot be read. The caller adds the file name or store id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("not a trailhound inventory snapshot: it has no format_version")]
    NoVersion,
    #[error("snapshot format version {found} is newer than this trailhound reads (up to {known}); upgrade trailhound")]
    Newer { found: u32, known: u32 },
    #[error("unknown snapshot format version {found} (this trailhound reads 1 to {known})")]
    Unknown { found: u32, known: u32 },
}

impl SnapshotError {
    fn json(err: &serde_json::Error) -> SnapshotError {
        let text = err.to_string();
        // serde_json appends " at line L column C"; the variant carries them as fields.
        let message = match text.rfind(" at line ") {
            Some(at) => text[..at].to_string(),
            None => text,
        };
        SnapshotError::Json {
            line: err.line(),
            column: err.column(),
            message,
        }
    }
}

/// Just the version, read before the rest so a newer format is refused by name rather than by
/// whatever field it renamed.
#[derive(Deserialize)]
struct Probe {
    format_version: Option<u32>,
}

impl Snapshot {
    /// An empty snapshot of the current format.
    pub fn new(collected_at: DateTime<Utc>) -> Snapshot {
        Snapshot {
            format_version: FORMAT_VERSION,
            collected_at,
            account_id: None,
            caller_arn: None,
            regions: Vec::new(),
            items: Vec::new(),
            errors: Vec::new(),
            elapsed_ms: 0,
        }
    }

    /// Parses a snapshot, refusing a format version this crate does not know.
    pub fn from_json(text: &str) -> Result<Snapshot, SnapshotError> {
        let probe: Probe = serde_json::from_str(text).map_err(|e| SnapshotError::json(&e))?;
        match probe.format_version {
            None => return Err(SnapshotError::NoVersion),
            Some(found) if found > FORMAT_VERSION => {
                return Err(SnapshotError::Newer {
                    found,
                    known: FORMAT_VERSION,
                });
            }
            Some(0) => {
                return Err(SnapshotError::Unknown {
                    found: 0,
                    known: FORMAT_VERSION,
                });
            }
            Some(_) => {}
        }
        serde_json::from_str(text).map_err(|e| SnapshotError::json(&e))
    }

    /// The snapshot as indented JSON.
    pub fn to_json_pretty(&self) -> String {
        // A snapshot is strings, numbers and JSON values with string keys: it always serializes.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Puts items in (kind, region, id) order, errors in (service, region, operation) order and
    /// regions in name order, so two collections of the same account read the same.
    pub fn sort(&mut self) {
        self.items
            .sort_by(|a, b| a.key().cmp(&b.key()).then_with(|| a.name.cmp(&b.name)));
        self.errors.sort_by(|a, b| {
            (&a.service, &a.region, &a.operation, &a.message).cmp(&(&b.service, &b.region, &b.operation, &b.message))
        });
        self.regions.sort();
        self.regions.dedup();
    }

    /// The items of one kind, in snapshot order.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(move |i| i.kind == kind)
    }
}

impl Item {
    /// An item with no region, ARN, creation time or attributes yet.
    pub fn new(kind: Kind, id: impl Into<String>, name: impl Into<String>) -> Item {
        Item {
            kind,
            id: id.into(),
            name: name.into(),
            region: None,
            arn: None,
            created: None,
            attributes: BTreeMap::new(),
        }
    }

    /// Sets an attribute; returns the item, for building one in an expression.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Item {
        self.attributes.insert(key.to_string(), value.into());
        self
    }

    /// What identifies the item across snapshots.
    pub fn key(&self) -> (Kind, Option<&str>, &str) {
        (self.kind, self.region.as_deref(), &self.id)
    }

    /// The identity as one string, `kind:region:id` with `global` for no region, e.g.
    /// `iam_user:global:backup-svc`.
    pub fn stable_id(&self) -> String {
        format!(
            "{}:{}:{}",
            self.kind.as_str(),
            self.region.as_deref().unwrap_or("global"),
            self.id
        )
    }

    /// An attribute, None when absent or null.
    pub fn attr(&self, key: &str) -> Option<&Value> {
        self.attributes.get(key).filter(|v| !v.is_null())
    }

    /// A string attribute.
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        self.attr(key).and_then(Value::as_str)
    }

    /// A boolean attribute.
    pub fn attr_bool(&self, key: &str) -> Option<bool> {
        self.attr(key).and_then(Value::as_bool)
    }

    /// An array attribute; empty when absent or not an array.
    pub fn attr_array(&self, key: &str) -> &[Value] {
        self.attr(key).and_then(Value::as_array).map_or(&[], Vec::as_slice)
    }

    /// A time attribute (RFC 3339 string).
    pub fn attr_time(&self, key: &str) -> Option<DateTime<Utc>> {
        let text = self.attr_str(key)?;
        DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("time").with_timezone(&Utc)
    }

    fn sample() -> Snapshot {
        let mut snapshot = Snapshot::new(time("2026-12-02T05:00:00Z"));
        snapshot.account_id = Some("111122223333".into());
        snapshot.regions = vec!["us-east-1".into(), "eu-west-1".into(), "us-east-1".into()];
        let mut vpc = Item::new(Kind::Vpc, "vpc-2", "main").with("is_default", false);
        vpc.region = Some("us-east-1".into());
        let mut other = Item::new(Kind::Vpc, "vpc-1", "eu");
        other.region = Some("eu-west-1".into());
        let user = Item::new(Kind::IamUser, "AIDA1", "alice").with("groups", serde_json::json!(["Dev"]));
        snapshot.items = vec![vpc, user, other];
        snapshot
    }

    #[test]
    fn round_trips_and_sorts() {
        let mut snapshot = sample();
        snapshot.sort();
        let ids: Vec<&str> = snapshot.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["AIDA1", "vpc-1", "vpc-2"], "kind, then region, then id");
        assert_eq!(snapshot.regions, ["eu-west-1", "us-east-1"]);
        let text = snapshot.to_json_pretty();
        assert!(text.contains("\"kind\": \"iam_user\""), "{text}");
        assert_eq!(Snapshot::from_json(&text), Ok(snapshot.clone()));
        assert_eq!(snapshot.items[0].stable_id(), "iam_user:global:AIDA1");
        assert_eq!(snapshot.items[2].stable_id(), "vpc:us-east-1:vpc-2");
    }

    #[test]
    fn attribute_accessors_treat_null_as_absent() {
        let item = Item::new(Kind::IamUser, "u", "u")
            .with("password_last_used", Value::Null)
            .with("login_profile", true)
            .with("mfa_devices", serde_json::json!(["arn:mfa"]))
            .with("created_text", "2026-01-02T03:04:05Z");
        assert_eq!(item.attr("password_last_used"), None);
        assert_eq!(item.attr_bool("login_profile"), Some(true));
        assert_eq!(item.attr_array("mfa_devices").len(), 1);
        assert!(item.attr_array("groups").is_empty());
        assert_eq!(item.attr_time("created_text"), Some(time("2026-01-02T03:04:05Z")));
    }

    #[test]
    fn newer_unknown_and_missing_versions_are_refused() {
        let newer = r#"{"format_version": 2, "collected_at": "x", "renamed": []}"#;
        let err = Snapshot::from_json(newer).expect_err("newer");
        assert_eq!(err, SnapshotError::Newer { found: 2, known: 1 });
        assert!(err.to_string().contains("upgrade trailhound"), "{err}");
        assert!(matches!(
            Snapshot::from_json(r#"{"format_version": 0}"#),
            Err(SnapshotError::Unknown { found: 0, .. })
        ));
        assert_eq!(Snapshot::from_json(r#"{"items": []}"#), Err(SnapshotError::NoVersion));
    }

    #[test]
    fn json_errors_carry_line_and_column() {
        let bad = "{\n  \"format_version\": 1,\n  \"collected_at\": \"2026-12-02T05:00:00Z\",\n  \"items\": [{\"kind\": \"dragon\"}]\n}";
        match Snapshot::from_json(bad) {
            Err(SnapshotError::Json { line, message, .. }) => {
                assert_eq!(line, 4);
                assert!(message.contains("dragon"), "{message}");
                assert!(!message.contains(" at line "), "{message}");
            }
            other => panic!("expected a JSON error, got {other:?}"),
        }
        let truncated = Snapshot::from_json("{\"format_version\": 1,\n").expect_err("truncated");
        assert!(truncated.to_string().starts_with("line 2, column"), "{truncated}");
    }
}
