//! The audit: a snapshot in, findings out, each item or setting a person should look at.
//!
//! Two sorts of finding come out. `inventory-unexplained-<kind>`: an item of a kind that should
//! have a reason on file (users, keys, roles, policies, VPCs and gateways, buckets) and matches no
//! `reasons.yml` entry of its kind; items a reason explains come out too, with the explanation
//! set, so a report can show them as explained. And the checks of [`checks`]: old or unused keys,
//! console users without MFA, roles trusting other accounts, security groups open to the world,
//! trails not logging, public buckets, failed collector calls; those are explained by
//! `kind: finding` entries like any hunt finding.
//!
//! Findings use the hunt's [`Finding`] shape. `event_id` is the resource's stable id
//! (`iam_user:global:backup-svc`), so the store recognises the same finding night after night;
//! `event_time` is the resource's creation time when known, else the collection time. The audit
//! reads no clock: "now" comes in [`AuditOptions`].

mod checks;

pub use checks::ADMIN_PORTS;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::Value;
use trailhound_finding::{Explanation, Finding, ItemRef, Level, Reasons};

use crate::kind::Kind;
use crate::snapshot::{Item, Snapshot};

/// What the audit needs besides the snapshot.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// The time ages are measured at; its date decides which reasons have expired.
    pub now: DateTime<Utc>,
    /// With `--since`: keys created at or after it are reported.
    pub since: Option<DateTime<Utc>>,
    /// An active key older than this many days is reported.
    pub max_key_age_days: i64,
    /// An active key not used for this many days is reported.
    pub max_unused_days: i64,
    /// The findings' `source_file`: the snapshot's path, or `inventory:COLLECTED_AT`.
    pub source: String,
}

impl AuditOptions {
    /// Options with the default limits (90 days for key age and for disuse) and no `since`.
    pub fn new(now: DateTime<Utc>, source: impl Into<String>) -> AuditOptions {
        AuditOptions {
            now,
            since: None,
            max_key_age_days: 90,
            max_unused_days: 90,
            source: source.into(),
        }
    }
}

/// The kinds every item of which needs a reason on file.
pub const EXPLAINED_KINDS: [Kind; 10] = [
    Kind::IamUser,
    Kind::AccessKey,
    Kind::IamRole,
    Kind::IamPolicy,
    Kind::Vpc,
    Kind::VpnGateway,
    Kind::CustomerGateway,
    Kind::InternetGateway,
    Kind::NatGateway,
    Kind::S3Bucket,
];

/// Audits `snapshot`: every finding, explained or not, sorted by [`Finding::sort_key`].
pub fn audit(snapshot: &Snapshot, reasons: Option<&Reasons>, options: &AuditOptions) -> Vec<Finding> {
    let today = options.now.date_naive();
    let mut findings = unexplained(snapshot, reasons, today, options);
    let mut checked = checks::run(snapshot, options);
    if let Some(reasons) = reasons {
        for finding in &mut checked {
            finding.explanation = reasons.explain_finding(finding, today).cloned().map(Box::new);
        }
    }
    findings.append(&mut checked);
    findings.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    findings
}

/// The reasons entry of the item's kind that explains it. `name` in an entry matches the item's
/// name or its id (the reasons file: "name or id of the item").
pub fn explain_item<'r>(reasons: &'r Reasons, item: &Item, today: NaiveDate) -> Option<&'r Explanation> {
    let kind = item.kind.as_str();
    reasons.explain(kind, today, &|key| item_field(item, key)).or_else(|| {
        if item.id == item.name {
            return None;
        }
        reasons.explain(kind, today, &|key| match key {
            "name" => Some(item.id.clone()),
            _ => item_field(item, key),
        })
    })
}

/// An item's value for a reasons `match` key: `name`, `id`, `arn`, `region`, `created`, or an
/// attribute. Strings are as they are, numbers and booleans as text, arrays and objects as their
/// JSON text (so a glob like `*"Admins"*` matches a group list); null is no value.
pub fn item_field(item: &Item, key: &str) -> Option<String> {
    match key {
        "name" => Some(item.name.clone()),
        "id" => Some(item.id.clone()),
        "arn" => item.arn.clone(),
        "region" => item.region.clone(),
        "created" => item.created.map(rfc3339),
        _ => match item.attributes.get(key)? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        },
    }
}

fn unexplained(
    snapshot: &Snapshot,
    reasons: Option<&Reasons>,
    today: NaiveDate,
    options: &AuditOptions,
) -> Vec<Finding> {
    let default_vpcs: Vec<(Option<&str>, &str)> = snapshot
        .of_kind(Kind::Vpc)
        .filter(|v| v.attr_bool("is_default") == Some(true))
        .map(|v| (v.region.as_deref(), v.id.as_str()))
        .collect();
    let mut out = Vec::new();
    for item in snapshot.items.iter().filter(|i| EXPLAINED_KINDS.contains(&i.kind)) {
        if item.kind == Kind::IamRole
            && item
                .attr_str("path")
                .is_some_and(|p| p.starts_with("/aws-service-role/"))
        {
            continue;
        }
        let level = match item.kind {
            Kind::Vpc if item.attr_bool("is_default") == Some(true) => Level::Informational,
            Kind::InternetGateway
                if item
                    .attr_array("vpc_ids")
                    .iter()
                    .any(|id| default_vpcs.contains(&(item.region.as_deref(), id.as_str().unwrap_or_default()))) =>
            {
                Level::Informational
            }
            Kind::VpnGateway | Kind::CustomerGateway => Level::Medium,
            _ => Level::Low,
        };
        let tags: &[&str] = match item.kind {
            Kind::IamUser => &["attack.persistence", "attack.t1136.003"],
            Kind::AccessKey => &["attack.persistence", "attack.t1098.001"],
            Kind::IamRole | Kind::IamPolicy => &["attack.persistence", "attack.t1098"],
            _ => &[],
        };
        let explanation = reasons.and_then(|r| explain_item(r, item, today)).cloned();
        let what = format!("{} {} exists", item.kind.noun(), label(item));
        let title = match explanation {
            Some(_) => what,
            None => format!("{what}; no reason on file"),
        };
        let rule_id = format!("inventory-unexplained-{}", item.kind.as_str().replace('_', "-"));
        let mut finding = Subject::item(snapshot, item).finding(snapshot, rule_id, title, level, tags, options);
        finding.explanation = explanation.map(Box::new);
        out.push(finding);
    }
    out
}

/// How a finding names an item: its id, the name when it differs, the region, and a key's user.
pub(crate) fn label(item: &Item) -> String {
    let mut text = if item.name.is_empty() || item.name == item.id {
        item.id.clone()
    } else if item.kind.service() == "ec2.amazonaws.com" {
        // EC2 ids are what people search for; the Name tag is a hint.
        format!("{} ({})", item.id, item.name)
    } else {
        item.name.clone()
    };
    if let Some(user) = item.attr_str("user").filter(|_| item.kind == Kind::AccessKey) {
        text.push_str(&format!(" of user {user}"));
    }
    if let Some(region) = &item.region {
        text.push_str(&format!(" in {region}"));
    }
    text
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// What a finding is about: the fields of [`Finding`] that describe the resource.
pub(crate) struct Subject {
    /// The item (or the account or region) the finding is about; none for a failed call.
    pub item: Option<ItemRef>,
    pub event_id: String,
    pub time: DateTime<Utc>,
    pub event_name: String,
    pub event_source: String,
    pub region: Option<String>,
    pub principal_arn: Option<String>,
    pub access_key_id: Option<String>,
    pub error_code: Option<String>,
}

impl Subject {
    /// A finding about one item.
    pub fn item(snapshot: &Snapshot, item: &Item) -> Subject {
        let principal_arn = match item.kind {
            Kind::S3Bucket => item.arn.clone().or_else(|| Some(format!("arn:aws:s3:::{}", item.id))),
            // A key has no ARN; its user's ARN lets a reasons entry match on principal_arn.
            Kind::AccessKey => item.attr_str("user").and_then(|user| {
                snapshot
                    .of_kind(Kind::IamUser)
                    .find(|u| u.name == user)
                    .and_then(|u| u.arn.clone())
            }),
            _ => item.arn.clone(),
        };
        Subject {
            item: Some(ItemRef {
                kind: item.kind.as_str().to_string(),
                id: item.id.clone(),
                name: item.name.clone(),
            }),
            event_id: item.stable_id(),
            time: item.created.unwrap_or(snapshot.collected_at),
            event_name: String::new(),
            event_source: item.kind.service().to_string(),
            region: item.region.clone(),
            principal_arn,
            access_key_id: (item.kind == Kind::AccessKey).then(|| item.id.clone()),
            error_code: None,
        }
    }

    /// A finding about the account or a region rather than one item.
    pub fn account(snapshot: &Snapshot, event_id: String, kind: Kind, region: Option<&str>) -> Subject {
        Subject {
            item: Some(ItemRef {
                kind: kind.as_str().to_string(),
                id: region.unwrap_or("account").to_string(),
                name: String::new(),
            }),
            event_id,
            time: snapshot.collected_at,
            event_name: String::new(),
            event_source: kind.service().to_string(),
            region: region.map(str::to_string),
            principal_arn: None,
            access_key_id: None,
            error_code: None,
        }
    }

    pub fn finding(
        self,
        snapshot: &Snapshot,
        rule_id: String,
        rule_title: String,
        level: Level,
        tags: &[&str],
        options: &AuditOptions,
    ) -> Finding {
        Finding {
            rule_id,
            rule_title,
            level,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            event_id: Some(self.event_id),
            event_time: rfc3339(self.time),
            event_name: self.event_name,
            event_source: self.event_source,
            aws_region: self.region,
            account_id: snapshot.account_id.clone(),
            principal_arn: self.principal_arn,
            principal_type: None,
            access_key_id: self.access_key_id,
            source_ip: None,
            user_agent: None,
            error_code: self.error_code,
            source_file: options.source.clone(),
            store_id: None,
            explanation: None,
            group: None,
            correlation: None,
            item: self.item.map(Box::new),
            context: None,
            event: None,
            time: self.time,
        }
    }
}

#[cfg(test)]
mod tests;
