//! Context on the engine: derived fields from a GeoIP database and AWS's ranges the test builds,
//! baselines kept in a store across runs, stolen instance credentials, AWS's own calls.

use std::path::Path;
use std::sync::Arc;

use trailhound_context::testdb::{Entry, write_mmdb};
use trailhound_context::{AwsRanges, GeoIp};
use trailhound_event::DerivedField;
use trailhound_finding::Finding;
use trailhound_hunt::{ContextOptions, HuntOptions, Hunted, Silent, StoreOptions, hunt};
use trailhound_rules::{RuleSet, Selection};
use trailhound_source::{Input, ReadOptions};
use trailhound_store::RunStart;

/// AWS's ranges, as the published file has them: one EC2 block in us-east-1 inside an AMAZON one.
const RANGES: &str = r#"{"syncToken":"1","createDate":"2026-11-30-12-00-00","prefixes":[
 {"ip_prefix":"52.95.0.0/16","region":"us-east-1","service":"AMAZON","network_border_group":"us-east-1"},
 {"ip_prefix":"52.95.0.0/20","region":"us-east-1","service":"EC2","network_border_group":"us-east-1"}],
 "ipv6_prefixes":[]}"#;

/// An ASN and a country database: the owner's network (US), an intruder's (DE), AWS's.
fn geoip(dir: &Path) -> GeoIp {
    let entry = |net: &str, asn: u32, org: &str, country: &str| Entry {
        network: net.parse().expect("network"),
        asn: Some(asn),
        as_org: Some(org.to_string()),
        country: Some(country.to_string()),
    };
    let entries = [
        entry("198.51.100.0/24", 64501, "Owner Telecom", "US"),
        entry("203.0.113.0/24", 64500, "Bulletproof Hosting", "DE"),
        entry("52.95.0.0/16", 16509, "AMAZON-02", "US"),
    ];
    let asn = dir.join("asn.mmdb");
    let country = dir.join("country.mmdb");
    write_mmdb(&entries, "GeoLite2-ASN", &asn).expect("asn db");
    let countries: Vec<Entry> = entries
        .iter()
        .map(|e| Entry {
            asn: None,
            as_org: None,
            ..e.clone()
        })
        .collect();
    write_mmdb(&countries, "GeoLite2-Country", &country).expect("country db");
    GeoIp::open(&[asn, country]).expect("geoip")
}

fn context(dir: &Path) -> ContextOptions {
    ContextOptions {
        ranges: Arc::new(AwsRanges::parse(RANGES).expect("ranges")),
        geoip: Some(Arc::new(geoip(dir))),
        ..ContextOptions::default()
    }
}

fn rules(only: &[&str]) -> RuleSet {
    let selection = Selection {
        only: only.iter().map(|s| s.to_string()).collect(),
        ..Selection::default()
    };
    let (rules, errors) = selection.load().expect("rules");
    assert!(errors.is_empty(), "{errors:?}");
    rules
}

/// One event: `who` (a userIdentity object) calls `name` from `ip` at `time`.
fn event(time: &str, name: &str, ip: &str, who: &str, extra: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","eventTime":"{time}","eventSource":"{source}","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":"{ip}","userAgent":"aws-cli/2.15","eventID":"{id}","recipientAccountId":"111122223333","userIdentity":{who}{extra}}}"#,
        source = if name == "CreateUser" {
            "iam.amazonaws.com"
        } else {
            "s3.amazonaws.com"
        },
        id = format!("{time}-{name}-{ip}").replace([':', '.'], "")
    )
}

const ALICE: &str = r#"{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice","accessKeyId":"AKIAEXAMPLEALICE0001","userName":"alice"}"#;
const BOB: &str = r#"{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/bob","accessKeyId":"AKIAEXAMPLEBOB000001","userName":"bob"}"#;
const INSTANCE: &str = r#"{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/web/i-0123456789abcdef0","accessKeyId":"ASIAEXAMPLEWEB00001","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::111122223333:role/web","userName":"web"}}}"#;

fn file(dir: &Path, name: &str, events: &[String]) -> Input {
    let path = dir.join(name);
    std::fs::write(&path, format!("{{\"Records\":[{}]}}", events.join(","))).expect("file");
    Input::Path(path)
}

fn run(rules: &RuleSet, input: Input, context: ContextOptions, store: Option<&Path>) -> Hunted {
    let options = HuntOptions {
        read: ReadOptions {
            inputs: vec![input],
            ..ReadOptions::default()
        },
        context: Some(context),
        store: store.map(|path| StoreOptions {
            path: path.to_path_buf(),
            new_only: false,
            since_last_run: false,
            run: RunStart::default(),
        }),
        ..HuntOptions::default()
    };
    hunt(rules, &options, None, &Silent).expect("hunt")
}

fn ids(findings: &[Finding]) -> Vec<(String, String)> {
    findings
        .iter()
        .map(|f| (f.rule_id.clone(), f.event_id.clone().unwrap_or_default()))
        .collect()
}

fn derived(finding: &Finding) -> &trailhound_event::Derived {
    finding.context.as_deref().expect("derived fields on the finding")
}

#[test]
fn findings_carry_asn_country_and_aws_from_the_databases() {
    let dir = tempfile::tempdir().expect("dir");
    let rules = rules(&["aws-iam-user-created"]);
    let events = [
        event("2026-03-01T10:00:00Z", "CreateUser", "203.0.113.9", ALICE, ""),
        event("2026-03-01T10:01:00Z", "CreateUser", "52.95.1.1", BOB, ""),
    ];
    let hunted = run(&rules, file(dir.path(), "a.json", &events), context(dir.path()), None);
    assert_eq!(hunted.findings.len(), 2, "{:?}", ids(&hunted.findings));
    let outside = derived(&hunted.findings[0]);
    assert_eq!(outside.number(DerivedField::SrcAsn), Some(64500));
    assert_eq!(outside.text(DerivedField::SrcAsOrg), Some("Bulletproof Hosting"));
    assert_eq!(outside.text(DerivedField::SrcCountry), Some("DE"));
    assert_eq!(outside.flag(DerivedField::SrcAws), Some(false));
    assert_eq!(outside.text(DerivedField::SrcNetwork), Some("AS64500"));
    assert_eq!(outside.text(DerivedField::PrincipalKind), Some("iam-user"));
    let inside = derived(&hunted.findings[1]);
    assert_eq!(inside.flag(DerivedField::SrcAws), Some(true));
    assert_eq!(inside.text(DerivedField::SrcAwsService), Some("EC2"));
    assert_eq!(inside.text(DerivedField::SrcAwsRegion), Some("us-east-1"));
    assert_eq!(inside.text(DerivedField::SrcNetwork), Some("aws"));
    // In JSON, the fields are one nested object.
    let json = serde_json::to_value(&hunted.findings[0]).expect("json");
    assert_eq!(json["trailhound"]["src"]["asn"], 64500);
    assert_eq!(json["trailhound"]["principal"]["kind"], "iam-user");
    // Without a store there is no history: nothing is judged.
    assert_eq!(outside.text(DerivedField::BaselineState), None);
    assert!(!hunted.baseline_status.expect("status").trained);
}

#[test]
fn instance_credentials_from_outside_aws_are_found_and_from_inside_are_not() {
    let dir = tempfile::tempdir().expect("dir");
    let rules = rules(&["aws-context-instance-credentials-outside-aws"]);
    let events = [
        event("2026-03-01T10:00:00Z", "ListBuckets", "52.95.1.1", INSTANCE, ""),
        event("2026-03-01T10:05:00Z", "ListBuckets", "203.0.113.9", INSTANCE, ""),
        // Through a VPC endpoint: a private address, inside AWS.
        event(
            "2026-03-01T10:06:00Z",
            "ListBuckets",
            "10.0.1.5",
            INSTANCE,
            r#","vpcEndpointId":"vpce-0123""#,
        ),
    ];
    let hunted = run(&rules, file(dir.path(), "i.json", &events), context(dir.path()), None);
    assert_eq!(hunted.findings.len(), 1, "{:?}", ids(&hunted.findings));
    assert_eq!(hunted.findings[0].source_ip.as_deref(), Some("203.0.113.9"));
    let d = derived(&hunted.findings[0]);
    assert_eq!(d.text(DerivedField::PrincipalInstance), Some("i-0123456789abcdef0"));
    // Without AWS's ranges, whether the address is AWS's is unknown: the rule stays silent.
    let unknown = ContextOptions {
        ranges: Arc::new(AwsRanges::empty()),
        ..context(dir.path())
    };
    let hunted = run(&rules, file(dir.path(), "i.json", &events), unknown, None);
    assert!(hunted.findings.is_empty(), "{:?}", ids(&hunted.findings));
}

#[test]
fn calls_aws_makes_itself_do_not_trip_rules_written_for_people() {
    let dir = tempfile::tempdir().expect("dir");
    let rules = rules(&["aws-iam-user-created"]);
    let linked = r#"{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/AWSServiceRoleForSSO/sso","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::111122223333:role/aws-service-role/sso.amazonaws.com/AWSServiceRoleForSSO"}}}"#;
    let events = [
        event("2026-03-01T10:00:00Z", "CreateUser", "sso.amazonaws.com", linked, ""),
        event("2026-03-01T10:01:00Z", "CreateUser", "203.0.113.9", ALICE, ""),
    ];
    let with = run(&rules, file(dir.path(), "s.json", &events), context(dir.path()), None);
    assert_eq!(with.findings.len(), 1, "{:?}", ids(&with.findings));
    assert_eq!(with.findings[0].source_ip.as_deref(), Some("203.0.113.9"));
    // A rule that names who made the call asks for AWS's calls too.
    let asks = dir.path().join("asks.yml");
    std::fs::write(
        &asks,
        "title: users AWS creates\nname: by-aws\nlogsource: {product: aws}\nlevel: low\ndetection:\n  sel:\n    eventName: CreateUser\n    trailhound.principal.by_aws: true\n  condition: sel\n",
    )
    .expect("rule");
    let (asking, errors) = Selection {
        builtin: false,
        paths: vec![asks],
        ..Selection::default()
    }
    .load()
    .expect("rules");
    assert!(errors.is_empty(), "{errors:?}");
    let found = run(&asking, file(dir.path(), "s.json", &events), context(dir.path()), None);
    assert_eq!(found.findings.len(), 1, "{:?}", ids(&found.findings));
    assert_eq!(found.findings[0].source_ip.as_deref(), Some("sso.amazonaws.com"));
}

fn day(d: u32, hour: u32) -> String {
    format!("2026-03-{d:02}T{hour:02}:00:00Z")
}

#[test]
fn baselines_learn_then_report_the_first_deviation_only() {
    let dir = tempfile::tempdir().expect("dir");
    let store = dir.path().join("store.db");
    let rules = rules(&[
        "aws-context-principal-new-network",
        "aws-context-principal-new-country",
        "aws-context-access-key-new-network",
        "aws-context-dormant-access-key-used",
    ]);
    // Run 1: ten days of alice from her network, bob once on day 1. Nothing to judge against.
    let mut learn: Vec<String> = (1..=10)
        .map(|d| event(&day(d, 9), "ListBuckets", "198.51.100.7", ALICE, ""))
        .collect();
    learn.push(event(&day(1, 12), "ListBuckets", "198.51.100.8", BOB, ""));
    let first = run(
        &rules,
        file(dir.path(), "learn.json", &learn),
        context(dir.path()),
        Some(&store),
    );
    assert!(
        first.findings.is_empty(),
        "a first run only learns: {:?}",
        ids(&first.findings)
    );
    let status = first.baseline_status.expect("status");
    assert!(!status.trained);
    assert_eq!((status.principals, status.keys), (2, 2));

    // Run 2: learned behaviour, then a deviation seen three times.
    let events = [
        event(&day(11, 9), "ListBuckets", "198.51.100.9", ALICE, ""),
        event(&day(11, 10), "ListBuckets", "203.0.113.9", ALICE, ""),
        event(&day(11, 11), "ListBuckets", "203.0.113.10", ALICE, ""),
        event(&day(11, 12), "ListBuckets", "203.0.113.11", ALICE, ""),
        // bob's key, idle since day 1, is back on day 11 from his usual network: only 10 days idle.
        event(&day(11, 13), "ListBuckets", "198.51.100.8", BOB, ""),
    ];
    let second = run(
        &rules,
        file(dir.path(), "day11.json", &events),
        context(dir.path()),
        Some(&store),
    );
    assert!(second.baseline_status.as_ref().expect("status").trained);
    let mut found = ids(&second.findings);
    found.sort();
    let deviation = events[1]
        .split("\"eventID\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("id");
    assert_eq!(
        found,
        [
            ("aws-context-access-key-new-network".to_string(), deviation.to_string()),
            ("aws-context-principal-new-country".to_string(), deviation.to_string()),
            ("aws-context-principal-new-network".to_string(), deviation.to_string()),
        ],
        "the first deviation only, once per rule"
    );
    let normal = derived(&second.findings[0])
        .text(DerivedField::BaselineNormal)
        .expect("what was normal");
    assert!(normal.contains("first call from network AS64500"), "{normal}");
    assert!(normal.contains("AS64501 only"), "{normal}");

    // Run 3: the deviation is now learned; bob's key after 120 days idle is dormant.
    let events = [
        event(&day(12, 9), "ListBuckets", "203.0.113.12", ALICE, ""),
        event("2026-07-09T13:00:00Z", "ListBuckets", "198.51.100.8", BOB, ""),
    ];
    let third = run(
        &rules,
        file(dir.path(), "later.json", &events),
        context(dir.path()),
        Some(&store),
    );
    assert_eq!(
        ids(&third.findings)
            .into_iter()
            .map(|(rule, _)| rule)
            .collect::<Vec<_>>(),
        ["aws-context-dormant-access-key-used"],
        "{:?}",
        ids(&third.findings)
    );
    let idle = derived(&third.findings[0]).number(DerivedField::BaselineKeyIdleDays);
    assert_eq!(idle, Some(120));
}

#[test]
fn a_key_used_from_two_networks_within_minutes_is_found() {
    let dir = tempfile::tempdir().expect("dir");
    let rules = rules(&["aws-context-access-key-two-networks"]);
    let events = [
        event(&day(1, 9), "ListBuckets", "198.51.100.7", ALICE, ""),
        event("2026-03-01T09:04:00Z", "ListBuckets", "203.0.113.9", ALICE, ""),
        // bob from two AWS addresses: one network, aws.
        event(&day(1, 10), "ListBuckets", "52.95.1.1", BOB, ""),
        event("2026-03-01T10:02:00Z", "ListBuckets", "52.95.7.7", BOB, ""),
    ];
    let hunted = run(&rules, file(dir.path(), "k.json", &events), context(dir.path()), None);
    assert_eq!(hunted.findings.len(), 1, "{:?}", ids(&hunted.findings));
    assert_eq!(
        hunted.findings[0].access_key_id.as_deref(),
        Some("AKIAEXAMPLEALICE0001")
    );
}

#[test]
fn new_regions_services_and_dormant_roles_report_once_and_not_once_learned() {
    let dir = tempfile::tempdir().expect("dir");
    let store = dir.path().join("store.db");
    let rules = rules(&[
        "aws-context-principal-new-region",
        "aws-context-principal-new-service",
        "aws-context-dormant-role-assumed",
    ]);
    let assume = |time: &str| {
        event(
            time,
            "AssumeRole",
            "198.51.100.7",
            ALICE,
            r#","requestParameters":{"roleArn":"arn:aws:iam::111122223333:role/breakglass","roleSessionName":"alice"}"#,
        )
        .replace("s3.amazonaws.com", "sts.amazonaws.com")
    };
    // Run 1 (learning): ten days of S3 calls in us-east-1, and the break-glass role assumed once.
    let mut learn: Vec<String> = (1..=10)
        .map(|d| event(&day(d, 9), "ListBuckets", "198.51.100.7", ALICE, ""))
        .collect();
    learn.push(assume(&day(1, 10)));
    let first = run(
        &rules,
        file(dir.path(), "learn.json", &learn),
        context(dir.path()),
        Some(&store),
    );
    assert!(first.findings.is_empty(), "{:?}", ids(&first.findings));
    // Run 2: the usual, then a new region twice; the first is reported, once.
    let other_region =
        |time: &str| event(time, "ListBuckets", "198.51.100.7", ALICE, "").replace("us-east-1", "ap-south-1");
    let events = [
        event(&day(11, 9), "ListBuckets", "198.51.100.7", ALICE, ""),
        other_region(&day(11, 10)),
        other_region(&day(11, 11)),
    ];
    let second = run(
        &rules,
        file(dir.path(), "day11.json", &events),
        context(dir.path()),
        Some(&store),
    );
    assert_eq!(
        ids(&second.findings),
        [(
            "aws-context-principal-new-region".to_string(),
            "2026-03-11T100000Z-ListBuckets-198511007".to_string()
        )],
        "the first call in the new region only"
    );
    // Run 3: the region is learned now; the role, unused for 130 days, is dormant.
    let events = [other_region(&day(12, 9)), assume("2026-07-09T10:00:00Z")];
    let third = run(
        &rules,
        file(dir.path(), "later.json", &events),
        context(dir.path()),
        Some(&store),
    );
    let found: Vec<String> = ids(&third.findings).into_iter().map(|(rule, _)| rule).collect();
    assert_eq!(
        found,
        ["aws-context-dormant-role-assumed"],
        "{:?}",
        ids(&third.findings)
    );
    let d = derived(&third.findings[0]);
    assert_eq!(d.number(DerivedField::BaselineRoleIdleDays), Some(130));
    assert!(
        d.text(DerivedField::BaselineNormal).is_some_and(
            |n| n.contains("role arn:aws:iam::111122223333:role/breakglass last used 130 days before (2026-03-01)")
        ),
        "{:?}",
        d.text(DerivedField::BaselineNormal)
    );
}
