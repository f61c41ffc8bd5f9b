//! The audit's checks of settings: keys, MFA, role trust, open security groups, trail coverage,
//! public buckets, failed collector calls. Each check reads attributes by the conventions of the
//! snapshot module and returns findings; none explains anything (the caller does).

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use trailhound_finding::{Finding, Level};

use super::{AuditOptions, Subject, label, rfc3339};
use crate::kind::Kind;
use crate::snapshot::{Item, Snapshot};

/// Ports whose exposure to the internet is an incident waiting to happen: remote shells and
/// desktops, file sharing, databases, caches, search, the Docker and etcd APIs.
pub const ADMIN_PORTS: [u16; 14] = [
    22, 23, 3389, 445, 1433, 3306, 5432, 5900, 6379, 9200, 11211, 27017, 2375, 2379,
];

/// A key must be this old before never having been used is worth saying.
const NEVER_USED_GRACE_DAYS: i64 = 7;

pub(crate) fn run(snapshot: &Snapshot, options: &AuditOptions) -> Vec<Finding> {
    let mut out = Vec::new();
    access_keys(snapshot, options, &mut out);
    console_without_mfa(snapshot, options, &mut out);
    role_trust(snapshot, options, &mut out);
    open_security_groups(snapshot, options, &mut out);
    trails(snapshot, options, &mut out);
    public_buckets(snapshot, options, &mut out);
    collection_errors(snapshot, options, &mut out);
    out
}

fn report(
    out: &mut Vec<Finding>,
    snapshot: &Snapshot,
    item: &Item,
    (rule, level, tags): (&str, Level, &[&str]),
    title: String,
    options: &AuditOptions,
) {
    let subject = Subject::item(snapshot, item);
    out.push(subject.finding(snapshot, rule.to_string(), title, level, tags, options));
}

const KEY_TAGS: &[&str] = &["attack.persistence", "attack.t1098.001"];
const STALE_KEY_TAGS: &[&str] = &["attack.initial_access", "attack.t1078.004"];

fn access_keys(snapshot: &Snapshot, options: &AuditOptions, out: &mut Vec<Finding>) {
    let now = options.now;
    let days_ago = |days: i64| now - Duration::days(days);
    let day = |t: DateTime<Utc>| t.format("%Y-%m-%d").to_string();
    for key in snapshot.of_kind(Kind::AccessKey) {
        let name = label(key);
        if let (Some(since), Some(created)) = (options.since, key.created)
            && created >= since
        {
            let check = ("inventory-access-key-created-recently", Level::Medium, KEY_TAGS);
            let title = format!("access key {name} was created {}", rfc3339(created));
            report(out, snapshot, key, check, title, options);
        }
        let active = key.attr_str("status").is_some_and(|s| s.eq_ignore_ascii_case("active"));
        if !active {
            continue;
        }
        match (key.attr("last_used"), key.created) {
            (None, Some(created)) if created < days_ago(NEVER_USED_GRACE_DAYS) => {
                let check = ("inventory-access-key-never-used", Level::Low, STALE_KEY_TAGS);
                let title = format!(
                    "active access key {name} (created {}) has never been used",
                    day(created)
                );
                report(out, snapshot, key, check, title, options);
            }
            (Some(_), _) => {
                if let Some(used) = key.attr_time("last_used")
                    && used < days_ago(options.max_unused_days)
                {
                    let check = ("inventory-access-key-unused", Level::Low, STALE_KEY_TAGS);
                    let days = (now - used).num_days();
                    let title = format!("active access key {name} last used {} ({days} days ago)", day(used));
                    report(out, snapshot, key, check, title, options);
                }
            }
            _ => {}
        }
        if let Some(created) = key.created
            && created < days_ago(options.max_key_age_days)
        {
            let check = ("inventory-access-key-old", Level::Low, STALE_KEY_TAGS);
            let days = (now - created).num_days();
            let title = format!(
                "active access key {name} is {days} days old (limit {})",
                options.max_key_age_days
            );
            report(out, snapshot, key, check, title, options);
        }
    }
}

fn console_without_mfa(snapshot: &Snapshot, options: &AuditOptions, out: &mut Vec<Finding>) {
    for user in snapshot.of_kind(Kind::IamUser) {
        if user.attr_bool("login_profile") == Some(true) && user.attr_array("mfa_devices").is_empty() {
            let check = (
                "inventory-console-user-without-mfa",
                Level::High,
                &["attack.initial_access", "attack.t1078.004"][..],
            );
            let title = format!("user {} can sign in to the console without MFA", label(user));
            report(out, snapshot, user, check, title, options);
        }
    }
}

/// Who a trust policy lets in.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Trust {
    /// `*` with no condition on the statement.
    pub anyone: bool,
    /// `*` only under a condition (an external id, an org id, a source ARN).
    pub anyone_conditioned: bool,
    /// Accounts other than the snapshot's named by `AWS` principals.
    pub foreign: BTreeSet<String>,
}

/// Reads the Allow statements of a trust policy. `own` is the snapshot's account; without it no
/// account counts as foreign (the missing sts call is its own finding).
pub(crate) fn trust(policy: &Value, own: Option<&str>) -> Trust {
    let parsed;
    let policy = match policy {
        // A document left as text (not yet parsed by the collector) is read all the same.
        Value::String(text) => {
            parsed = serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
            &parsed
        }
        other => other,
    };
    let statements: Vec<&Value> = match policy.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    };
    let mut trust = Trust::default();
    for statement in statements {
        if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
            continue;
        }
        let conditioned = statement
            .get("Condition")
            .and_then(Value::as_object)
            .is_some_and(|c| !c.is_empty());
        let mut anyone = statement.get("NotPrincipal").is_some();
        match statement.get("Principal") {
            Some(Value::String(s)) if s == "*" => anyone = true,
            Some(Value::Object(principal)) => {
                let aws: Vec<&str> = match principal.get("AWS") {
                    Some(Value::String(s)) => vec![s.as_str()],
                    Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
                    _ => Vec::new(),
                };
                for who in aws {
                    if who == "*" {
                        anyone = true;
                    } else if let (Some(account), Some(own)) = (account_of(who), own)
                        && account != own
                    {
                        trust.foreign.insert(account.to_string());
                    }
                }
            }
            _ => {}
        }
        if anyone && conditioned {
            trust.anyone_conditioned = true;
        } else if anyone {
            trust.anyone = true;
        }
    }
    trust
}

/// The account of an `AWS` principal: a bare 12-digit id or an ARN's account field.
fn account_of(principal: &str) -> Option<&str> {
    let account = match principal.strip_prefix("arn:") {
        Some(rest) => rest.split(':').nth(3)?,
        None => principal,
    };
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

fn role_trust(snapshot: &Snapshot, options: &AuditOptions, out: &mut Vec<Finding>) {
    let tags = &["attack.persistence", "attack.t1098"][..];
    for role in snapshot.of_kind(Kind::IamRole) {
        let Some(policy) = role.attr("trust_policy") else {
            continue;
        };
        let trust = trust(policy, snapshot.account_id.as_deref());
        let name = label(role);
        if trust.anyone || trust.anyone_conditioned {
            let (level, how) = if trust.anyone {
                (Level::Critical, "")
            } else {
                (Level::High, " (under a condition)")
            };
            let title = format!("role {name} can be assumed by any AWS principal{how}");
            report(
                out,
                snapshot,
                role,
                ("inventory-role-trusts-anyone", level, tags),
                title,
                options,
            );
        }
        if !trust.foreign.is_empty() {
            let accounts: Vec<&str> = trust.foreign.iter().map(String::as_str).collect();
            let noun = if accounts.len() == 1 { "account" } else { "accounts" };
            let title = format!("role {name} trusts {noun} {}", accounts.join(", "));
            let check = ("inventory-role-trusts-foreign-account", Level::Medium, tags);
            report(out, snapshot, role, check, title, options);
        }
    }
}

/// What a security group opens to 0.0.0.0/0 or ::/0: all traffic, or these admin ports.
pub(crate) fn world_open(group: &Item) -> (bool, BTreeSet<u16>) {
    let mut all = false;
    let mut ports = BTreeSet::new();
    for rule in group.attr_array("ingress") {
        let cidr = rule.get("cidr").and_then(Value::as_str).unwrap_or_default();
        if cidr != "0.0.0.0/0" && cidr != "::/0" {
            continue;
        }
        let protocol = match rule.get("protocol") {
            Some(Value::String(s)) => s.to_ascii_lowercase(),
            Some(Value::Number(n)) => n.to_string(),
            _ => continue,
        };
        if protocol == "-1" || protocol == "all" {
            all = true;
            continue;
        }
        if !matches!(protocol.as_str(), "tcp" | "6" | "udp" | "17") {
            continue;
        }
        let port = |key: &str| rule.get(key).and_then(Value::as_i64);
        let from = port("from_port").unwrap_or(0);
        let to = port("to_port").unwrap_or(65535);
        ports.extend(
            ADMIN_PORTS
                .iter()
                .copied()
                .filter(|p| from <= i64::from(*p) && i64::from(*p) <= to),
        );
    }
    (all, ports)
}

fn open_security_groups(snapshot: &Snapshot, options: &AuditOptions, out: &mut Vec<Finding>) {
    for group in snapshot.of_kind(Kind::SecurityGroup) {
        let (all, ports) = world_open(group);
        let what = if all {
            "all traffic".to_string()
        } else if !ports.is_empty() {
            let list: Vec<String> = ports.iter().map(u16::to_string).collect();
            let noun = if list.len() == 1 { "port" } else { "ports" };
            format!("{noun} {}", list.join(", "))
        } else {
            continue;
        };
        let check = (
            "inventory-security-group-open-to-world",
            Level::High,
            &["attack.initial_access", "attack.t1133"][..],
        );
        let title = format!("security group {} is open to the world on {what}", label(group));
        report(out, snapshot, group, check, title, options);
    }
}

const TRAIL_TAGS: &[&str] = &["attack.defense_evasion", "attack.t1562.008"];

fn trails(snapshot: &Snapshot, options: &AuditOptions, out: &mut Vec<Finding>) {
    let trails: Vec<&Item> = snapshot.of_kind(Kind::Trail).collect();
    for trail in &trails {
        if trail.attr_bool("is_logging") == Some(false) {
            let title = format!("trail {} is not logging", label(trail));
            report(
                out,
                snapshot,
                trail,
                ("inventory-trail-not-logging", Level::High, TRAIL_TAGS),
                title,
                options,
            );
        }
    }
    let listing_failed = snapshot
        .errors
        .iter()
        .any(|e| e.service == "cloudtrail" && matches!(e.operation.as_str(), "DescribeTrails" | "ListTrails"));
    if listing_failed {
        // Coverage is unknown, not missing: the collection error says so.
        return;
    }
    if trails.is_empty() {
        let subject = Subject::account(snapshot, "trail:global:none".into(), Kind::Trail, None);
        let title = "no CloudTrail trail: API activity is not being recorded".to_string();
        out.push(subject.finding(
            snapshot,
            "inventory-no-trail".into(),
            title,
            Level::Critical,
            TRAIL_TAGS,
            options,
        ));
        return;
    }
    // A trail whose status could not be read is given the benefit of the doubt.
    let logging: Vec<&&Item> = trails
        .iter()
        .filter(|t| t.attr_bool("is_logging") != Some(false))
        .collect();
    for region in &snapshot.regions {
        let covered = logging
            .iter()
            .any(|t| t.attr_bool("multi_region") == Some(true) || t.region.as_deref() == Some(region.as_str()));
        if !covered {
            let subject = Subject::account(snapshot, format!("trail:{region}:coverage"), Kind::Trail, Some(region));
            let title = format!("no logging trail covers {region}");
            let rule = "inventory-region-without-trail".to_string();
            out.push(subject.finding(snapshot, rule, title, Level::Medium, TRAIL_TAGS, options));
        }
    }
}

fn public_buckets(snapshot: &Snapshot, options: &AuditOptions, out: &mut Vec<Finding>) {
    for bucket in snapshot.of_kind(Kind::S3Bucket) {
        let blocked = bucket
            .attr("public_access_block")
            .and_then(Value::as_object)
            .is_some_and(|b| b.len() >= 4 && b.values().all(|v| v.as_bool() == Some(true)));
        if bucket.attr_bool("policy_public") == Some(true) && !blocked {
            let check = (
                "inventory-bucket-public",
                Level::High,
                &["attack.collection", "attack.t1530"][..],
            );
            let title = format!("bucket {} has a public bucket policy", label(bucket));
            report(out, snapshot, bucket, check, title, options);
        }
    }
}

fn collection_errors(snapshot: &Snapshot, options: &AuditOptions, out: &mut Vec<Finding>) {
    for error in &snapshot.errors {
        let region = error.region.as_deref();
        let service = if error.service.contains('.') {
            error.service.clone()
        } else {
            format!("{}.amazonaws.com", error.service)
        };
        let code = error.code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default();
        let message: String = error.message.chars().take(300).collect();
        let subject = Subject {
            item: None,
            event_id: format!(
                "collect:{}:{}:{}",
                error.service,
                region.unwrap_or("global"),
                error.operation
            ),
            time: snapshot.collected_at,
            event_name: error.operation.clone(),
            event_source: service,
            region: region.map(str::to_string),
            principal_arn: None,
            access_key_id: None,
            error_code: error.code.clone(),
        };
        let place = region.map(|r| format!(" in {r}")).unwrap_or_default();
        let title = format!(
            "could not collect {} {}{place}: {code}{message}",
            error.service, error.operation
        );
        let rule = "inventory-collection-error".to_string();
        out.push(subject.finding(snapshot, rule, title, Level::Informational, &[], options));
    }
}
