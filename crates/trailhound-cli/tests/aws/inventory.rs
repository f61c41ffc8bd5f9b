//! `inventory collect | show | diff | audit` against moto: an account seeded in two regions is
//! collected, changed the way an intruder would change it, and collected again; the diff and
//! the audit must name exactly what changed and what is wrong. Also a region that fails, an
//! account with nothing but moto's defaults, and missing credentials.

use std::path::{Path, PathBuf};

use aws_sdk_ec2::types::{GatewayType, IpPermission, IpRange, ResourceType, Tag, TagSpecification};
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use serde_json::{Value, json};
use trailhound_aws::Aws;

use crate::support::{Moto, Run, jsonl, run, trailhound};

const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const FOREIGN: &str = "999988887777";
const OWN: &str = "123456789012";

fn trust(principal: Value) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}]
    })
    .to_string()
}

/// What the tests need to recognise later: ids AWS made up.
struct Seeded {
    alice_key: String,
    backup_key: String,
    /// The `web` security group of us-east-1.
    web_us: String,
}

async fn seed(aws: &Aws) -> Seeded {
    let iam = aws.iam();
    for user in ["alice", "backup-svc", "ci-deploy-1"] {
        iam.create_user().user_name(user).send().await.expect("user");
    }
    iam.create_login_profile()
        .user_name("alice")
        .password("Correct-Horse-1")
        .send()
        .await
        .expect("login profile");
    let mfa = iam
        .create_virtual_mfa_device()
        .virtual_mfa_device_name("alice-phone")
        .send()
        .await
        .expect("mfa device");
    let serial = mfa
        .virtual_mfa_device()
        .map(|d| d.serial_number().to_string())
        .expect("serial");
    iam.enable_mfa_device()
        .user_name("alice")
        .serial_number(&serial)
        .authentication_code1("123456")
        .authentication_code2("654321")
        .send()
        .await
        .expect("mfa enabled");
    let key = |user: &'static str| {
        let iam = iam.clone();
        async move {
            let out = iam.create_access_key().user_name(user).send().await.expect("key");
            out.access_key().map(|k| k.access_key_id().to_string()).expect("key id")
        }
    };
    let alice_key = key("alice").await;
    let backup_key = key("backup-svc").await;
    let admin = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    let policy = iam
        .create_policy()
        .policy_name("AdminAll")
        .policy_document(admin.to_string())
        .send()
        .await
        .expect("policy");
    let policy_arn = policy.policy().and_then(|p| p.arn()).expect("policy arn").to_string();
    for group in ["admins", "devs"] {
        iam.create_group().group_name(group).send().await.expect("group");
    }
    iam.attach_group_policy()
        .group_name("admins")
        .policy_arn(&policy_arn)
        .send()
        .await
        .expect("attached");
    iam.add_user_to_group()
        .group_name("admins")
        .user_name("alice")
        .send()
        .await
        .expect("alice in admins");
    iam.add_user_to_group()
        .group_name("devs")
        .user_name("ci-deploy-1")
        .send()
        .await
        .expect("ci in devs");
    for (role, principal) in [
        ("app-role", json!({"Service": "ec2.amazonaws.com"})),
        ("audit-role", json!({"AWS": format!("arn:aws:iam::{OWN}:root")})),
    ] {
        iam.create_role()
            .role_name(role)
            .assume_role_policy_document(trust(principal))
            .send()
            .await
            .expect("role");
    }

    let mut web_us = String::new();
    for region in REGIONS {
        let ec2 = aws.ec2(region);
        let name = |kind: ResourceType, value: String| {
            TagSpecification::builder()
                .resource_type(kind)
                .tags(Tag::builder().key("Name").value(value).build())
                .build()
        };
        let vpc = ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .tag_specifications(name(ResourceType::Vpc, format!("prod-{region}")))
            .send()
            .await
            .expect("vpc");
        let vpc_id = vpc.vpc().and_then(|v| v.vpc_id()).expect("vpc id").to_string();
        ec2.create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block("10.0.1.0/24")
            .send()
            .await
            .expect("subnet");
        ec2.create_vpn_gateway()
            .r#type(GatewayType::Ipsec1)
            .send()
            .await
            .expect("vpn gateway");
        let group = ec2
            .create_security_group()
            .group_name("web")
            .description("web servers")
            .vpc_id(&vpc_id)
            .send()
            .await
            .expect("security group");
        let group_id = group.group_id().expect("group id").to_string();
        ec2.authorize_security_group_ingress()
            .group_id(&group_id)
            .ip_permissions(open(443))
            .send()
            .await
            .expect("https open");
        if region == "us-east-1" {
            web_us = group_id;
        }
    }

    aws.s3(None)
        .create_bucket()
        .bucket("logs-trailhound")
        .send()
        .await
        .expect("bucket");
    aws.s3(Some("eu-west-1"))
        .create_bucket()
        .bucket("eu-data")
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .expect("eu bucket");
    for (region, trail, bucket, multi) in [
        ("us-east-1", "main", "logs-trailhound", true),
        ("eu-west-1", "eu-trail", "eu-data", false),
    ] {
        let cloudtrail = aws.cloudtrail(region, true);
        cloudtrail
            .create_trail()
            .name(trail)
            .s3_bucket_name(bucket)
            .is_multi_region_trail(multi)
            .send()
            .await
            .expect("trail");
        cloudtrail.start_logging().name(trail).send().await.expect("logging");
    }
    Seeded {
        alice_key,
        backup_key,
        web_us,
    }
}

fn open(port: i32) -> IpPermission {
    IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(port)
        .to_port(port)
        .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
        .build()
}

/// What an intruder leaves behind. Returns the new key's id.
async fn intrude(aws: &Aws, seeded: &Seeded) -> String {
    let iam = aws.iam();
    iam.create_user().user_name("mallory").send().await.expect("mallory");
    iam.create_login_profile()
        .user_name("mallory")
        .password("Hunter2-Hunter2")
        .send()
        .await
        .expect("console");
    iam.add_user_to_group()
        .group_name("admins")
        .user_name("mallory")
        .send()
        .await
        .expect("mallory in admins");
    let key = iam
        .create_access_key()
        .user_name("backup-svc")
        .send()
        .await
        .expect("second key");
    iam.create_role()
        .role_name("vendor-access")
        .assume_role_policy_document(trust(json!({"AWS": format!("arn:aws:iam::{FOREIGN}:root")})))
        .send()
        .await
        .expect("foreign role");
    aws.ec2("us-east-1")
        .authorize_security_group_ingress()
        .group_id(&seeded.web_us)
        .ip_permissions(open(22))
        .send()
        .await
        .expect("ssh open");
    let s3 = aws.s3(None);
    s3.create_bucket().bucket("exfil-bucket").send().await.expect("bucket");
    let public = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::exfil-bucket/*"}]
    });
    s3.put_bucket_policy()
        .bucket("exfil-bucket")
        .policy(public.to_string())
        .send()
        .await
        .expect("public policy");
    // Only the test writes; trailhound itself never calls StopLogging.
    aws.cloudtrail("us-east-1", true)
        .stop_logging()
        .name("main")
        .send()
        .await
        .expect("stopped");
    key.access_key().map(|k| k.access_key_id().to_string()).expect("key id")
}

fn reasons(dir: &Path, seeded: &Seeded) -> PathBuf {
    let text = format!(
        r#"
- match: {{kind: iam_user, name: alice}}
  reason: account administrator
  ticket: SEC-1
- match: {{kind: iam_user, name: "ci-deploy-*"}}
  reason: CI deploy users
  ticket: OPS-123
- match: {{kind: iam_user, name: backup-svc}}
  reason: nightly backups
  ticket: OPS-7
- match: {{kind: access_key, user: alice}}
  reason: alice's CLI key
  ticket: SEC-1
- match: {{kind: access_key, name: {backup}}}
  reason: the backup job's key
  ticket: OPS-7
- match: {{kind: iam_role, name: "*-role"}}
  reason: application and audit roles
  ticket: OPS-9
- match: {{kind: iam_policy, name: AdminAll}}
  reason: the admins' policy
  ticket: SEC-2
- match: {{kind: vpc, name: "prod-*"}}
  reason: production networks
  ticket: NET-1
- match: {{kind: vpc, is_default: "true"}}
  reason: default VPCs, unused
  ticket: NET-2
- match: {{kind: vpn_gateway, name: "vgw-*"}}
  reason: office VPN
  ticket: NET-3
- match: {{kind: s3_bucket, name: logs-trailhound}}
  reason: the trail's bucket
  ticket: SEC-3
- match: {{kind: s3_bucket, region: eu-west-1}}
  reason: EU data
  ticket: DATA-1
- match: {{kind: trail, name: eu-trail}}
  reason: the EU trail
  ticket: SEC-4
"#,
        backup = seeded.backup_key
    );
    let path = dir.join("reasons.yml");
    std::fs::write(&path, text).expect("reasons written");
    path
}

fn collect(moto: &Moto, regions: &str, extra: &[&str]) -> Run {
    let url = moto.url();
    let mut args = vec![
        "inventory",
        "collect",
        "--regions",
        regions,
        "--endpoint-url",
        url.as_str(),
    ];
    args.extend_from_slice(extra);
    let out = run(trailhound().args(&args));
    assert_eq!(out.code, 0, "collect: {}", out.stderr);
    out
}

/// The collection time the summary line reports, in seconds.
fn elapsed(stderr: &str) -> f64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("inventory: "))
        .expect("summary line");
    let seconds = line
        .rsplit("; ")
        .next()
        .and_then(|t| t.strip_suffix(" s"))
        .expect("elapsed");
    seconds.parse().expect("a number")
}

/// A diff item as a person names it: kind, region, and name (a key by its user).
fn label(item: &Value) -> (String, Value, String) {
    let kind = item["kind"].as_str().unwrap_or_default().to_string();
    let name = match item["attributes"]["user"].as_str() {
        Some(user) if kind == "access_key" => format!("key of {user}"),
        _ => item["name"].as_str().unwrap_or_default().to_string(),
    };
    (kind, item["region"].clone(), name)
}

/// A changed field: its added and removed elements for lists, else before and after (times
/// made `<time>`).
fn field(change: &Value) -> Value {
    if change["added"].as_array().is_some_and(|a| !a.is_empty())
        || change["removed"].as_array().is_some_and(|a| !a.is_empty())
    {
        return json!({"field": change["field"], "added": change["added"], "removed": change["removed"]});
    }
    let time = |v: &Value| match v.as_str() {
        Some(t) if chrono::DateTime::parse_from_rfc3339(t).is_ok() => json!("<time>"),
        _ => v.clone(),
    };
    json!({"field": change["field"], "before": time(&change["before"]), "after": time(&change["after"])})
}

#[test]
fn collect_diff_and_audit_an_account_an_intruder_changed() {
    let Some(moto) = Moto::start() else { return };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let aws = moto.aws(&runtime);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("case.db");
    let store_text = store.display().to_string();
    let seeded = runtime.block_on(seed(&aws));
    let reasons = reasons(dir.path(), &seeded);
    let reasons_text = reasons.display().to_string();

    let first = collect(&moto, "us-east-1,eu-west-1", &["--store", &store_text]);
    let seconds = elapsed(&first.stderr);
    eprintln!("seeded account collected in {seconds} s: {}", first.stderr.trim());
    assert!(
        first
            .stderr
            .contains("in 2 regions of account 123456789012; 0 collection errors"),
        "{}",
        first.stderr
    );
    assert!(first.stderr.contains("saved as snapshot 1 in"), "{}", first.stderr);

    // The baseline audit, remembered: everything in it is explained.
    let audit = |extra: &[&str]| {
        let mut args = vec![
            "inventory",
            "audit",
            "--reasons",
            &reasons_text,
            "--store",
            &store_text,
            "--format",
            "jsonl",
        ];
        args.extend_from_slice(extra);
        run(trailhound().args(&args))
    };
    let baseline = audit(&[]);
    assert_eq!(baseline.code, 0, "{}", baseline.stderr);
    assert_eq!(baseline.stdout, "", "nothing unexplained before the intrusion");
    assert!(
        baseline.stderr.contains("explained by known reasons (hidden)"),
        "{}",
        baseline.stderr
    );

    // Keys created from now on are "recent"; the baseline's are at least a second older.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let mark = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let new_key = runtime.block_on(intrude(&aws, &seeded));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    collect(&moto, "us-east-1,eu-west-1", &["--store", &store_text]);

    let diffed = run(trailhound().args([
        "inventory",
        "diff",
        "--store",
        &store_text,
        "--format",
        "json",
        "--explain",
        &reasons_text,
        "--with-activity",
    ]));
    assert_eq!(diffed.code, 0, "{}", diffed.stderr);
    let diff: Value = serde_json::from_str(&diffed.stdout).expect("diff JSON");
    let added: Vec<_> = diff["added"].as_array().expect("added").iter().map(label).collect();
    let label_of = |kind: &str, region: Value, name: &str| (kind.to_string(), region, name.to_string());
    assert_eq!(
        added,
        [
            label_of("iam_user", Value::Null, "mallory"),
            label_of("iam_role", Value::Null, "vendor-access"),
            label_of("access_key", Value::Null, "key of backup-svc"),
            label_of("s3_bucket", json!("us-east-1"), "exfil-bucket"),
        ]
    );
    assert_eq!(diff["removed"], json!([]));
    let changed: Vec<(String, Value, String, Vec<Value>)> = diff["changed"]
        .as_array()
        .expect("changed")
        .iter()
        .map(|c| {
            let (kind, region, name) = label(c);
            (
                kind,
                region,
                name,
                c["fields"].as_array().expect("fields").iter().map(field).collect(),
            )
        })
        .collect();
    let ssh = json!({"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "0.0.0.0/0", "group": null, "description": null});
    assert_eq!(
        changed,
        [
            (
                "iam_group".to_string(),
                Value::Null,
                "admins".to_string(),
                vec![json!({"field": "members", "added": ["mallory"], "removed": []})]
            ),
            (
                "security_group".to_string(),
                json!("us-east-1"),
                "web".to_string(),
                vec![json!({"field": "ingress", "added": [ssh], "removed": []})]
            ),
            // moto, like AWS, moves a logging trail's latest delivery on.
            (
                "trail".to_string(),
                json!("eu-west-1"),
                "eu-trail".to_string(),
                vec![json!({"field": "latest_delivery_time", "before": "<time>", "after": "<time>"})]
            ),
            (
                "trail".to_string(),
                json!("us-east-1"),
                "main".to_string(),
                vec![json!({"field": "is_logging", "before": true, "after": false})]
            ),
        ]
    );
    let explained: Vec<(&str, &str)> = diff["explained"]
        .as_array()
        .expect("explained")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or_default(),
                e["ticket"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        explained,
        [("eu-trail", "SEC-4")],
        "only the EU trail's change has a reason"
    );
    // The added items carry what the collectors read: decoded trust policy, groups, console.
    let item = |name: &str| {
        diff["added"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["name"] == name))
            .cloned()
            .expect("added item")
    };
    let vendor = item("vendor-access");
    assert_eq!(
        vendor["attributes"]["trust_policy"]["Statement"][0]["Principal"]["AWS"],
        format!("arn:aws:iam::{FOREIGN}:root")
    );
    let mallory = item("mallory");
    assert_eq!(mallory["attributes"]["groups"], json!(["admins"]));
    assert_eq!(mallory["attributes"]["login_profile"], json!(true));
    assert_eq!(mallory["attributes"]["mfa_devices"], json!([]));
    let key = item(&new_key);
    assert_eq!(key["attributes"]["status"], "Active");
    assert_eq!(key["attributes"]["last_used"], Value::Null);
    let key_created = key["created"].as_str().expect("key created").to_string();

    let text = run(trailhound().args([
        "inventory",
        "diff",
        "--store",
        &store_text,
        "--explain",
        &reasons_text,
        "--with-activity",
    ]));
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text.stdout.contains("4 added, 0 removed, 4 changed"), "{}", text.stdout);
    // By default, a trail's last delivery is activity, not drift.
    let drift = run(trailhound().args(["inventory", "diff", "--store", &store_text]));
    assert_eq!(drift.code, 0, "{}", drift.stderr);
    assert!(
        drift.stdout.contains("4 added, 0 removed, 3 changed"),
        "{}",
        drift.stdout
    );
    assert!(!drift.stdout.contains("latest_delivery_time"), "{}", drift.stdout);
    assert!(text.stdout.contains("      members: +mallory"), "{}", text.stdout);
    assert!(text.stdout.contains("explained by known reasons: 1"), "{}", text.stdout);

    // Only what the intrusion made is new, and all of it is unexplained.
    let audited = audit(&["--new-only", "--since", &mark]);
    assert_eq!(audited.code, 0, "{}", audited.stderr);
    crate::schema::assert_findings(&jsonl(&audited.stdout));
    let web = &seeded.web_us;
    let mut titles: Vec<(String, String)> = jsonl(&audited.stdout)
        .iter()
        .map(|f| {
            let title = f["rule_title"].as_str().unwrap_or_default().replace(&new_key, "NEWKEY");
            (
                f["rule_id"].as_str().unwrap_or_default().to_string(),
                title.replace(web, "WEB"),
            )
        })
        .collect();
    titles.sort();
    let expected = [
        (
            "inventory-access-key-created-recently",
            format!("access key NEWKEY of user backup-svc was created {key_created}"),
        ),
        (
            "inventory-bucket-public",
            "bucket exfil-bucket in us-east-1 has a public bucket policy".into(),
        ),
        (
            "inventory-console-user-without-mfa",
            "user mallory can sign in to the console without MFA".into(),
        ),
        (
            "inventory-region-without-trail",
            "no logging trail covers us-east-1".into(),
        ),
        (
            "inventory-role-trusts-foreign-account",
            format!("role vendor-access trusts account {FOREIGN}"),
        ),
        (
            "inventory-security-group-open-to-world",
            "security group WEB (web) in us-east-1 is open to the world on port 22".into(),
        ),
        (
            "inventory-trail-not-logging",
            "trail main in us-east-1 is not logging".into(),
        ),
        (
            "inventory-unexplained-access-key",
            "access key NEWKEY of user backup-svc exists; no reason on file".into(),
        ),
        (
            "inventory-unexplained-iam-role",
            "role vendor-access exists; no reason on file".into(),
        ),
        (
            "inventory-unexplained-iam-user",
            "user mallory exists; no reason on file".into(),
        ),
        (
            "inventory-unexplained-s3-bucket",
            "bucket exfil-bucket in us-east-1 exists; no reason on file".into(),
        ),
    ];
    let expected: Vec<(String, String)> = expected.into_iter().map(|(r, t)| (r.to_string(), t)).collect();
    assert_eq!(titles, expected);
    assert!(audited.stderr.contains("11 new in"), "{}", audited.stderr);

    // Run again: nothing is new any more; without --new-only the same 11 are printed, and with
    // --show-explained the explained items too, with their tickets.
    let again = audit(&["--new-only", "--since", &mark]);
    assert_eq!((again.code, again.stdout.as_str()), (0, ""), "{}", again.stderr);
    let all = audit(&["--since", &mark, "--show-explained", "--fail-on", "high"]);
    assert_eq!(all.code, 1, "high findings unexplained: {}", all.stderr);
    let findings = jsonl(&all.stdout);
    assert_eq!(findings.iter().filter(|f| f["explanation"].is_null()).count(), 11);
    let ticket = |id: &str| {
        findings
            .iter()
            .find(|f| f["event_id"] == id)
            .map(|f| f["explanation"]["ticket"].clone())
            .unwrap_or_else(|| panic!("no finding for {id}"))
    };
    assert_eq!(ticket(&format!("access_key:global:{}", seeded.alice_key)), "SEC-1");
    assert_eq!(ticket(&format!("access_key:global:{}", seeded.backup_key)), "OPS-7");
    let unexplained_users: Vec<&str> = findings
        .iter()
        .filter(|f| f["rule_id"] == "inventory-unexplained-iam-user")
        .map(|f| f["principal_arn"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        unexplained_users.len(),
        4,
        "alice, backup-svc, ci-deploy-1 explained, mallory not"
    );

    // show: the latest snapshot's tables from the store.
    let users = run(trailhound().args(["inventory", "show", "users", "--store", &store_text, "--format", "json"]));
    assert_eq!(users.code, 0, "{}", users.stderr);
    let rows: Vec<Value> = serde_json::from_str(&users.stdout).expect("rows");
    let row = |name: &str| rows.iter().find(|r| r["name"] == name).cloned().expect("user row");
    assert_eq!(
        (row("alice")["console"].clone(), row("alice")["mfa"].clone()),
        (json!("yes"), json!("1"))
    );
    assert_eq!(row("mallory")["groups"], "admins");
    assert_eq!(rows.len(), 4);
    let counts = run(trailhound().args([
        "inventory",
        "show",
        "--from",
        "1",
        "--store",
        &store_text,
        "--format",
        "csv",
    ]));
    assert_eq!(counts.code, 0, "{}", counts.stderr);
    for line in [
        "users,3",
        "keys,2",
        "roles,2",
        "buckets,2",
        "trails,2",
        "vpcs,4",
        "collection-errors,0",
    ] {
        assert!(counts.stdout.lines().any(|l| l == line), "{line} in {}", counts.stdout);
    }
}

#[test]
fn a_failing_region_is_recorded_and_the_others_are_collected() {
    let Some(moto) = Moto::start() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("snapshot.json");
    let file_text = file.display().to_string();
    // moto answers a region it does not know with a 500: no EC2 or CloudTrail there.
    let out = collect(&moto, "us-east-1,xx-fake-1", &["--out", &file_text]);
    assert!(out.stderr.contains("2 collection errors"), "{}", out.stderr);
    let snapshot: Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("written")).expect("JSON");
    let errors: Vec<(&str, &str, &str)> = snapshot["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["service"].as_str().unwrap_or_default(),
                e["region"].as_str().unwrap_or_default(),
                e["operation"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            ("cloudtrail", "xx-fake-1", "DescribeTrails"),
            ("ec2", "xx-fake-1", "DescribeVpcs")
        ]
    );
    for error in snapshot["errors"].as_array().expect("errors") {
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("in xx-fake-1"),
            "the error names the region: {message}"
        );
    }
    let regional: Vec<(&str, &str)> = snapshot["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["kind"] == "vpc")
        .map(|i| {
            (
                i["region"].as_str().unwrap_or_default(),
                i["attributes"]["cidr"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(regional, [("us-east-1", "172.31.0.0/16")], "us-east-1 still collected");

    // The audit says what could not be collected, and does not guess at trail coverage.
    let audited = run(trailhound().args(["inventory", "audit", "--from", &file_text, "--format", "jsonl"]));
    assert_eq!(audited.code, 0, "{}", audited.stderr);
    let rules: Vec<(String, String)> = jsonl(&audited.stdout)
        .iter()
        .map(|f| {
            (
                f["rule_id"].as_str().unwrap_or_default().into(),
                f["event_id"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    let vpc = snapshot["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["kind"] == "vpc"))
        .and_then(|v| v["id"].as_str())
        .expect("default vpc");
    let mut expected = vec![
        (
            "inventory-collection-error".to_string(),
            "collect:cloudtrail:xx-fake-1:DescribeTrails".to_string(),
        ),
        (
            "inventory-collection-error".to_string(),
            "collect:ec2:xx-fake-1:DescribeVpcs".to_string(),
        ),
        ("inventory-unexplained-vpc".to_string(), format!("vpc:us-east-1:{vpc}")),
    ];
    let mut rules = rules;
    rules.sort();
    expected.sort();
    assert_eq!(rules, expected);
}

#[test]
fn an_empty_account_has_only_defaults_and_no_trail() {
    let Some(moto) = Moto::start() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("empty.json");
    let file_text = file.display().to_string();
    let out = collect(&moto, "us-east-1", &["--out", &file_text]);
    assert!(out.stderr.contains("0 collection errors"), "{}", out.stderr);
    let counts = run(trailhound().args(["inventory", "show", "--from", &file_text, "--format", "csv"]));
    assert_eq!(counts.code, 0, "{}", counts.stderr);
    let mut expected = String::from("table,items\n");
    for (table, n) in [
        ("users", 0),
        ("keys", 0),
        ("groups", 0),
        ("roles", 0),
        ("policies", 0),
        ("vpcs", 1),
        ("subnets", 6),
        ("gateways", 0),
        ("route-tables", 1),
        ("network-acls", 1),
        ("security-groups", 1),
        ("peering", 0),
        ("flow-logs", 0),
        ("buckets", 0),
        ("trails", 0),
        ("account", 1),
        ("collection-errors", 0),
    ] {
        expected.push_str(&format!("{table},{n}\n"));
    }
    assert_eq!(counts.stdout, expected);
    let audited = run(trailhound().args([
        "inventory",
        "audit",
        "--from",
        &file_text,
        "--format",
        "jsonl",
        "--fail-on",
        "critical",
    ]));
    assert_eq!(audited.code, 1, "no trail is critical: {}", audited.stderr);
    let rules: Vec<(String, String)> = jsonl(&audited.stdout)
        .iter()
        .map(|f| {
            (
                f["rule_id"].as_str().unwrap_or_default().into(),
                f["level"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    let mut rules = rules;
    rules.sort();
    assert_eq!(
        rules,
        [
            ("inventory-no-trail".to_string(), "critical".to_string()),
            ("inventory-unexplained-vpc".to_string(), "informational".to_string()),
        ]
    );
    // With no snapshots in the store, show and diff say how to get some.
    let store = dir.path().join("none.db").display().to_string();
    let diffed = run(trailhound().args(["inventory", "diff", "--store", &store]));
    assert_eq!(diffed.code, 2);
    assert!(diffed.stderr.contains("no case store at"), "{}", diffed.stderr);
}

#[test]
fn missing_credentials_end_collection_with_status_2() {
    let Some(moto) = Moto::start() else { return };
    let url = moto.url();
    let out = run(trailhound()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .args(["inventory", "collect", "--regions", "us-east-1", "--endpoint-url", &url]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("no AWS credentials"), "{}", out.stderr);
    assert_eq!(out.stdout, "", "no snapshot without credentials");
}
