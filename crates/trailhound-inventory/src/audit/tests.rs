use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use trailhound_finding::{Level, Reasons};

use super::checks::{Trust, trust};
use super::*;
use crate::snapshot::CollectError;

const ACCOUNT: &str = "111122223333";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).expect("time").with_timezone(&Utc)
}

fn options() -> AuditOptions {
    AuditOptions::new(at("2026-12-02T05:00:00Z"), "inventory:2026-12-02T05:00:00Z")
}

fn snapshot(items: Vec<Item>) -> Snapshot {
    let mut s = Snapshot::new(at("2026-12-02T05:00:00Z"));
    s.account_id = Some(ACCOUNT.into());
    s.regions = vec!["us-east-1".into()];
    s.items = items;
    // A logging multi-region trail, so coverage findings only appear where a test wants them.
    if !s.items.iter().any(|i| i.kind == Kind::Trail) {
        s.items.push(trail("main", Some(true), true));
    }
    s
}

fn regional(mut item: Item, region: &str) -> Item {
    item.region = Some(region.into());
    item
}

fn user(name: &str) -> Item {
    let mut u = Item::new(Kind::IamUser, format!("AIDA{name}"), name).with("path", "/");
    u.arn = Some(format!("arn:aws:iam::{ACCOUNT}:user/{name}"));
    u.created = Some(at("2025-01-01T00:00:00Z"));
    u
}

fn key(id: &str, created: &str, last_used: Value, status: &str) -> Item {
    let mut k = Item::new(Kind::AccessKey, id, id)
        .with("user", "alice")
        .with("status", status)
        .with("last_used", last_used);
    k.created = Some(at(created));
    k
}

fn role(name: &str, path: &str, trust_policy: Value) -> Item {
    let mut r = Item::new(Kind::IamRole, format!("AROA{name}"), name)
        .with("path", path)
        .with("trust_policy", trust_policy);
    r.arn = Some(format!("arn:aws:iam::{ACCOUNT}:role{path}{name}"));
    r
}

fn trail(name: &str, logging: Option<bool>, multi: bool) -> Item {
    let item = Item::new(Kind::Trail, name, name)
        .with("multi_region", multi)
        .with("is_logging", logging.map_or(Value::Null, Value::Bool));
    regional(item, "us-east-1")
}

fn ids(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.rule_id.as_str()).collect()
}

fn only<'f>(findings: &'f [Finding], rule: &str) -> Vec<&'f Finding> {
    findings.iter().filter(|f| f.rule_id == rule).collect()
}

#[test]
fn every_item_of_an_explained_kind_is_unexplained_without_reasons() {
    let default_vpc = regional(Item::new(Kind::Vpc, "vpc-d", "").with("is_default", true), "us-east-1");
    let igw = regional(
        Item::new(Kind::InternetGateway, "igw-d", "").with("vpc_ids", json!(["vpc-d"])),
        "us-east-1",
    );
    let vpc = regional(
        Item::new(Kind::Vpc, "vpc-1", "prod").with("is_default", false),
        "us-east-1",
    );
    let vgw = regional(Item::new(Kind::VpnGateway, "vgw-1", "vgw-1"), "us-east-1");
    let subnet = regional(Item::new(Kind::Subnet, "subnet-1", "a"), "us-east-1");
    let linked = role(
        "AWSServiceRoleForSupport",
        "/aws-service-role/support.amazonaws.com/",
        json!({}),
    );
    let s = snapshot(vec![user("backup-svc"), default_vpc, igw, vpc, vgw, subnet, linked]);
    let findings = audit(&s, None, &options());
    let unexplained: Vec<(&str, Level, &str)> = findings
        .iter()
        .filter(|f| f.rule_id.starts_with("inventory-unexplained-"))
        .map(|f| (f.rule_id.as_str(), f.level, f.event_id.as_deref().unwrap_or_default()))
        .collect();
    assert_eq!(
        unexplained,
        [
            (
                "inventory-unexplained-iam-user",
                Level::Low,
                "iam_user:global:AIDAbackup-svc"
            ),
            (
                "inventory-unexplained-internet-gateway",
                Level::Informational,
                "internet_gateway:us-east-1:igw-d"
            ),
            ("inventory-unexplained-vpc", Level::Low, "vpc:us-east-1:vpc-1"),
            ("inventory-unexplained-vpc", Level::Informational, "vpc:us-east-1:vpc-d"),
            (
                "inventory-unexplained-vpn-gateway",
                Level::Medium,
                "vpn_gateway:us-east-1:vgw-1"
            ),
        ],
        "no subnet, no trail, no service-linked role"
    );
    let f = &findings[0];
    assert_eq!(f.rule_title, "user backup-svc exists; no reason on file");
    assert_eq!(f.event_time, "2025-01-01T00:00:00Z", "created time");
    assert_eq!(
        f.principal_arn.as_deref(),
        Some("arn:aws:iam::111122223333:user/backup-svc")
    );
    assert_eq!(
        (f.event_name.as_str(), f.event_source.as_str()),
        ("", "iam.amazonaws.com"),
        "an item is not an event"
    );
    assert_eq!(
        f.item
            .as_ref()
            .map(|i| (i.kind.as_str(), i.id.as_str(), i.name.as_str())),
        Some(("iam_user", "AIDAbackup-svc", "backup-svc"))
    );
    assert_eq!(f.account_id.as_deref(), Some(ACCOUNT));
    assert_eq!(f.source_file, "inventory:2026-12-02T05:00:00Z");
    let vpc = findings
        .iter()
        .find(|f| f.event_id.as_deref() == Some("vpc:us-east-1:vpc-1"));
    assert_eq!(
        vpc.map(|f| (f.event_time.as_str(), f.aws_region.as_deref(), f.rule_title.as_str())),
        Some((
            "2026-12-02T05:00:00Z",
            Some("us-east-1"),
            "VPC vpc-1 (prod) in us-east-1 exists; no reason on file"
        )),
        "no created time: the collection time"
    );
}

#[test]
fn reasons_explain_items_by_name_id_or_attribute() {
    let reasons = Reasons::parse(
        "reasons.yml",
        r#"
- match: {kind: iam_user, name: "ci-*"}
  reason: CI users
  ticket: OPS-1
- match: {kind: vpc, name: vpc-1}
  reason: the prod VPC
- match: {kind: access_key, user: alice}
  reason: alice's key
- match: {kind: iam_user, groups: '*"Admins"*'}
  reason: admins are known
  expires: 2026-01-01
"#,
    )
    .expect("reasons");
    let admin = user("root-admin").with("groups", json!(["Admins"]));
    let vpc = regional(Item::new(Kind::Vpc, "vpc-1", "prod"), "us-east-1");
    let key = key("AKIA1", "2026-11-30T00:00:00Z", json!("2026-12-01T00:00:00Z"), "Active");
    let s = snapshot(vec![user("ci-deploy"), admin, vpc, key]);
    let findings = audit(&s, Some(&reasons), &options());
    let explained: Vec<(&str, Option<&str>)> = findings
        .iter()
        .map(|f| (f.rule_title.as_str(), f.explanation.as_ref().map(|e| e.reason.as_str())))
        .collect();
    assert!(
        explained.contains(&("user ci-deploy exists", Some("CI users"))),
        "{explained:?}"
    );
    assert!(
        explained.contains(&("VPC vpc-1 (prod) in us-east-1 exists", Some("the prod VPC"))),
        "by id"
    );
    assert!(explained.contains(&("access key AKIA1 of user alice exists", Some("alice's key"))));
    assert!(
        explained.contains(&("user root-admin exists; no reason on file", None)),
        "expired entries explain nothing: {explained:?}"
    );
}

#[test]
fn key_age_use_and_recency() {
    let mut opts = options();
    opts.since = Some(at("2026-12-01T00:00:00Z"));
    let s = snapshot(vec![
        key("AKIANEW", "2026-12-01T10:00:00Z", Value::Null, "Active"),
        key("AKIANEVER", "2026-11-01T00:00:00Z", Value::Null, "Active"),
        key(
            "AKIAIDLE",
            "2026-06-01T00:00:00Z",
            json!("2026-08-01T00:00:00Z"),
            "Active",
        ),
        key(
            "AKIAOLD",
            "2024-01-01T00:00:00Z",
            json!("2026-12-01T00:00:00Z"),
            "Active",
        ),
        key("AKIAOFF", "2020-01-01T00:00:00Z", Value::Null, "Inactive"),
    ]);
    let findings = audit(&s, None, &opts);
    let by_key = |rule: &str| -> Vec<&str> {
        only(&findings, rule)
            .iter()
            .filter_map(|f| f.access_key_id.as_deref())
            .collect()
    };
    assert_eq!(by_key("inventory-access-key-created-recently"), ["AKIANEW"]);
    assert_eq!(
        by_key("inventory-access-key-never-used"),
        ["AKIANEVER"],
        "not the day-old key"
    );
    assert_eq!(by_key("inventory-access-key-unused"), ["AKIAIDLE"]);
    assert_eq!(
        by_key("inventory-access-key-old"),
        ["AKIAOLD", "AKIAIDLE"],
        "oldest first, not the inactive one"
    );
    let old = only(&findings, "inventory-access-key-old");
    assert!(old[0].rule_title.contains("1066 days old"), "{}", old[0].rule_title);
    assert_eq!(old[0].event_id.as_deref(), Some("access_key:global:AKIAOLD"));
    assert_eq!(old[0].event_time, "2024-01-01T00:00:00Z");
    assert_eq!(old[0].level, Level::Low);
    // Without since there is no recency check, and a looser limit clears the old keys.
    opts.since = None;
    opts.max_key_age_days = 5000;
    let findings = audit(&s, None, &opts);
    assert!(only(&findings, "inventory-access-key-created-recently").is_empty());
    assert!(only(&findings, "inventory-access-key-old").is_empty());
}

#[test]
fn key_findings_carry_the_user_arn() {
    let s = snapshot(vec![
        user("alice"),
        key(
            "AKIAOLD",
            "2024-01-01T00:00:00Z",
            json!("2026-12-01T00:00:00Z"),
            "Active",
        ),
    ]);
    let findings = audit(&s, None, &options());
    let old = only(&findings, "inventory-access-key-old");
    assert_eq!(
        old[0].principal_arn.as_deref(),
        Some("arn:aws:iam::111122223333:user/alice")
    );
}

#[test]
fn console_users_without_mfa() {
    let s = snapshot(vec![
        user("nomfa").with("login_profile", true).with("mfa_devices", json!([])),
        user("mfa")
            .with("login_profile", true)
            .with("mfa_devices", json!(["arn:aws:iam::1:mfa/x"])),
        user("api").with("login_profile", false),
    ]);
    let findings = audit(&s, None, &options());
    let hits = only(&findings, "inventory-console-user-without-mfa");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].rule_title, "user nomfa can sign in to the console without MFA");
    assert_eq!(hits[0].level, Level::High);
}

#[test]
fn trust_policies() {
    let policy = |principal: Value, condition: Option<Value>| {
        let mut statement = json!({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"});
        if let Some(c) = condition {
            statement["Condition"] = c;
        }
        json!({"Version": "2012-10-17", "Statement": [statement]})
    };
    let own = Some(ACCOUNT);
    let t = trust(&policy(json!({"AWS": "arn:aws:iam::444455556666:root"}), None), own);
    assert_eq!(t.foreign.iter().collect::<Vec<_>>(), ["444455556666"]);
    let t = trust(
        &policy(
            json!({"AWS": ["777788889999", format!("arn:aws:iam::{ACCOUNT}:role/x"), "AROAXYZ"]}),
            None,
        ),
        own,
    );
    assert_eq!(
        t.foreign.iter().collect::<Vec<_>>(),
        ["777788889999"],
        "own account, unique ids skipped"
    );
    assert!(!t.anyone);
    assert!(trust(&policy(json!("*"), None), own).anyone);
    assert!(trust(&policy(json!({"AWS": "*"}), None), own).anyone);
    let conditioned = trust(
        &policy(
            json!({"AWS": "*"}),
            Some(json!({"StringEquals": {"aws:PrincipalOrgID": "o-1"}})),
        ),
        own,
    );
    assert!(conditioned.anyone_conditioned && !conditioned.anyone);
    assert_eq!(
        trust(&policy(json!({"Service": "ec2.amazonaws.com"}), None), own),
        Trust::default()
    );
    assert_eq!(
        trust(
            &policy(json!({"Federated": "arn:aws:iam::444455556666:saml-provider/x"}), None),
            own
        ),
        Trust::default()
    );
    let deny = json!({"Statement": {"Effect": "Deny", "Principal": "*"}});
    assert_eq!(trust(&deny, own), Trust::default());
    let text = Value::String(policy(json!({"AWS": "444455556666"}), None).to_string());
    assert_eq!(trust(&text, own).foreign.len(), 1, "a document left as text");
    assert!(
        trust(&policy(json!({"AWS": "444455556666"}), None), None)
            .foreign
            .is_empty()
    );
}

#[test]
fn roles_trusting_anyone_or_other_accounts() {
    let anyone = role(
        "open",
        "/",
        json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}}]}),
    );
    let guarded = role(
        "guarded",
        "/",
        json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Condition": {"StringEquals": {"sts:ExternalId": "x"}}}]}),
    );
    let vendor = role(
        "vendor",
        "/",
        json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::444455556666:root", "arn:aws:iam::222233334444:root"]}}]}),
    );
    let ec2 = role(
        "ec2",
        "/",
        json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}}]}),
    );
    let findings = audit(&snapshot(vec![anyone, guarded, vendor, ec2]), None, &options());
    let anyone: Vec<(&str, Level)> = only(&findings, "inventory-role-trusts-anyone")
        .iter()
        .map(|f| (f.rule_title.as_str(), f.level))
        .collect();
    assert_eq!(
        anyone,
        [
            (
                "role guarded can be assumed by any AWS principal (under a condition)",
                Level::High
            ),
            ("role open can be assumed by any AWS principal", Level::Critical),
        ]
    );
    let foreign = only(&findings, "inventory-role-trusts-foreign-account");
    assert_eq!(foreign.len(), 1);
    assert_eq!(
        foreign[0].rule_title,
        "role vendor trusts accounts 222233334444, 444455556666"
    );
    assert_eq!(foreign[0].level, Level::Medium);
}

#[test]
fn security_groups_open_to_the_world() {
    let rule = |protocol: &str, from: Value, to: Value, cidr: &str| json!({"protocol": protocol, "from_port": from, "to_port": to, "cidr": cidr});
    let sg = |id: &str, ingress: Value| {
        regional(
            Item::new(Kind::SecurityGroup, id, id).with("ingress", ingress),
            "eu-west-1",
        )
    };
    let s = snapshot(vec![
        sg(
            "sg-ssh",
            json!([
                rule("tcp", json!(22), json!(22), "0.0.0.0/0"),
                rule("tcp", json!(3380), json!(3390), "::/0")
            ]),
        ),
        sg("sg-all", json!([rule("-1", Value::Null, Value::Null, "0.0.0.0/0")])),
        sg("sg-web", json!([rule("tcp", json!(443), json!(443), "0.0.0.0/0")])),
        sg("sg-internal", json!([rule("tcp", json!(22), json!(22), "10.0.0.0/8")])),
        sg("sg-icmp", json!([rule("icmp", json!(-1), json!(-1), "0.0.0.0/0")])),
    ]);
    let findings = audit(&s, None, &options());
    let titles: Vec<&str> = only(&findings, "inventory-security-group-open-to-world")
        .iter()
        .map(|f| f.rule_title.as_str())
        .collect();
    assert_eq!(
        titles,
        [
            "security group sg-all in eu-west-1 is open to the world on all traffic",
            "security group sg-ssh in eu-west-1 is open to the world on ports 22, 3389",
        ]
    );
}

#[test]
fn trails_logging_and_coverage() {
    let mut s = snapshot(vec![
        trail("stopped", Some(false), true),
        regional(
            Item::new(Kind::Trail, "eu", "eu")
                .with("multi_region", false)
                .with("is_logging", true),
            "eu-west-1",
        ),
    ]);
    s.regions = vec!["eu-west-1".into(), "us-east-1".into(), "us-west-2".into()];
    let findings = audit(&s, None, &options());
    let not_logging = only(&findings, "inventory-trail-not-logging");
    assert_eq!(not_logging.len(), 1);
    assert_eq!(not_logging[0].rule_title, "trail stopped in us-east-1 is not logging");
    let uncovered: Vec<Option<&str>> = only(&findings, "inventory-region-without-trail")
        .iter()
        .map(|f| f.aws_region.as_deref())
        .collect();
    assert_eq!(uncovered, [Some("us-east-1"), Some("us-west-2")]);
    assert!(only(&findings, "inventory-no-trail").is_empty());

    // A logging multi-region trail covers everything.
    s.items.push(trail("org", Some(true), true));
    assert!(only(&audit(&s, None, &options()), "inventory-region-without-trail").is_empty());

    // No trail at all: one critical finding, not one per region.
    s.items.clear();
    let findings = audit(&s, None, &options());
    assert_eq!(ids(&findings), ["inventory-no-trail"]);
    assert_eq!(findings[0].level, Level::Critical);
    assert_eq!(findings[0].event_id.as_deref(), Some("trail:global:none"));

    // Trails that could not be listed are unknown, not missing.
    s.errors.push(CollectError {
        service: "cloudtrail".into(),
        region: Some("us-east-1".into()),
        operation: "DescribeTrails".into(),
        code: Some("AccessDenied".into()),
        message: "not allowed".into(),
    });
    assert_eq!(ids(&audit(&s, None, &options())), ["inventory-collection-error"]);
}

#[test]
fn public_buckets() {
    let block = |on: bool| json!({"block_public_acls": on, "ignore_public_acls": on, "block_public_policy": on, "restrict_public_buckets": on});
    let bucket = |name: &str, public: Value, pab: Value| {
        regional(
            Item::new(Kind::S3Bucket, name, name)
                .with("policy_public", public)
                .with("public_access_block", pab),
            "us-east-1",
        )
    };
    let s = snapshot(vec![
        bucket("leaky", json!(true), Value::Null),
        bucket(
            "half",
            json!(true),
            json!({"block_public_acls": true, "restrict_public_buckets": false}),
        ),
        bucket("blocked", json!(true), block(true)),
        bucket("private", json!(false), block(false)),
        bucket("unknown", Value::Null, Value::Null),
    ]);
    let findings = audit(&s, None, &options());
    let public: Vec<(&str, Option<&str>)> = only(&findings, "inventory-bucket-public")
        .iter()
        .map(|f| (f.event_id.as_deref().unwrap_or_default(), f.principal_arn.as_deref()))
        .collect();
    assert_eq!(
        public,
        [
            ("s3_bucket:us-east-1:half", Some("arn:aws:s3:::half")),
            ("s3_bucket:us-east-1:leaky", Some("arn:aws:s3:::leaky")),
        ]
    );
}

#[test]
fn collection_errors_are_findings_and_checks_are_explained() {
    let mut s = snapshot(vec![]);
    s.errors.push(CollectError {
        service: "ec2".into(),
        region: Some("ap-south-2".into()),
        operation: "DescribeVpcs".into(),
        code: Some("UnauthorizedOperation".into()),
        message: "You are not authorized\u{1b}[2J".into(),
    });
    let reasons = Reasons::parse(
        "r.yml",
        "- match: {kind: finding, rule: inventory-collection-error, aws_region: ap-*}\n  reason: opt-in region\n  ticket: OPS-7\n",
    )
    .expect("reasons");
    let findings = audit(&s, Some(&reasons), &options());
    assert_eq!(findings.len(), 1);
    let f = &findings[0];
    assert_eq!(f.level, Level::Informational);
    assert_eq!(f.event_id.as_deref(), Some("collect:ec2:ap-south-2:DescribeVpcs"));
    assert_eq!(
        (f.event_name.as_str(), f.event_source.as_str(), f.error_code.as_deref()),
        ("DescribeVpcs", "ec2.amazonaws.com", Some("UnauthorizedOperation"))
    );
    assert!(
        f.rule_title
            .starts_with("could not collect ec2 DescribeVpcs in ap-south-2: UnauthorizedOperation")
    );
    assert_eq!(f.explanation.as_ref().and_then(|e| e.ticket.as_deref()), Some("OPS-7"));
    assert!(audit(&s, None, &options())[0].explanation.is_none());
}

#[test]
fn findings_are_sorted_and_stable() {
    let s = snapshot(vec![
        user("b").with("login_profile", true),
        user("a").with("login_profile", true),
    ]);
    let first = audit(&s, None, &options());
    let keys: Vec<(&str, Option<&str>)> = first
        .iter()
        .map(|f| (f.rule_id.as_str(), f.event_id.as_deref()))
        .collect();
    assert_eq!(
        keys,
        [
            ("inventory-console-user-without-mfa", Some("iam_user:global:AIDAa")),
            ("inventory-console-user-without-mfa", Some("iam_user:global:AIDAb")),
            ("inventory-unexplained-iam-user", Some("iam_user:global:AIDAa")),
            ("inventory-unexplained-iam-user", Some("iam_user:global:AIDAb")),
        ]
    );
    let again = audit(&s, None, &options());
    assert_eq!(
        serde_json::to_string(&first).expect("json"),
        serde_json::to_string(&again).expect("json")
    );
}
