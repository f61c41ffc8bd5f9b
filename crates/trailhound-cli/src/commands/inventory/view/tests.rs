use chrono::{DateTime, Utc};
use serde_json::json;
use trailhound_inventory::{diff, diff_with_activity};

use super::*;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).expect("time").with_timezone(&Utc)
}

fn regional(mut item: Item, region: &str) -> Item {
    item.region = Some(region.into());
    item
}

fn snapshot() -> Snapshot {
    let mut s = Snapshot::new(at("2026-12-02T05:00:00Z"));
    s.account_id = Some("111122223333".into());
    s.regions = vec!["us-east-1".into()];
    let mut alice = Item::new(Kind::IamUser, "AIDA1", "alice")
        .with("login_profile", true)
        .with("mfa_devices", json!([]))
        .with("groups", json!(["Admins", "Dev"]))
        .with("attached_policies", json!(["arn:aws:iam::aws:policy/ReadOnlyAccess"]))
        .with("password_last_used", "2026-12-01T09:00:00Z");
    alice.created = Some(at("2025-01-01T00:00:00Z"));
    let evil = Item::new(Kind::IamUser, "AIDA2", "evil\u{1b}]0;pwned\u{7}").with("login_profile", false);
    let mut key = Item::new(Kind::AccessKey, "AKIA1", "AKIA1")
        .with("user", "alice")
        .with("status", "Active")
        .with("last_used", serde_json::Value::Null);
    key.created = Some(at("2026-11-30T00:00:00Z"));
    let sg = regional(
        Item::new(Kind::SecurityGroup, "sg-1", "web")
            .with("vpc_id", "vpc-1")
            .with(
                "ingress",
                json!([
                    {"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "0.0.0.0/0"},
                    {"protocol": "-1", "from_port": null, "to_port": null, "group": "sg-2"}
                ]),
            ),
        "us-east-1",
    );
    let igw = regional(
        Item::new(Kind::InternetGateway, "igw-1", "igw-1").with("vpc_ids", json!(["vpc-1"])),
        "us-east-1",
    );
    let cgw = regional(
        Item::new(Kind::CustomerGateway, "cgw-1", "office")
            .with("ip_address", "203.0.113.7")
            .with("bgp_asn", "65000"),
        "us-east-1",
    );
    let role = Item::new(Kind::IamRole, "AROA1", "vendor").with(
        "trust_policy",
        json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::444455556666:root"], "Service": "ec2.amazonaws.com"}}]}),
    );
    let account = Item::new(Kind::Account, "111122223333", "111122223333").with("aliases", json!(["acme-prod"]));
    s.items = vec![alice, evil, key, sg, igw, cgw, role, account];
    s.sort();
    s
}

fn render(table: Table) -> String {
    let mut out = Vec::new();
    write_inventory_table(&mut out, &snapshot(), table, RowFormat::Table, 0).expect("write");
    String::from_utf8(out).expect("utf8")
}

#[test]
fn users_table_joins_keys_and_escapes_names() {
    let text = render(Table::Users);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("NAME  ") && lines[0].contains("PASSWORD_LAST_USED"),
        "{text}"
    );
    let alice: Vec<&str> = lines[1].split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(
        alice,
        [
            "alice",
            "2025-01-01T00:00:00Z",
            "2026-12-01T09:00:00Z",
            "yes",
            "no",
            "Admins, Dev",
            "1 (1 active)",
            "1"
        ]
    );
    assert!(!text.contains('\u{1b}') && !text.contains('\u{7}'), "{text:?}");
    assert!(lines[2].starts_with("evil\\u{1b}]0;pwned\\u{7}"), "{text}");
    // Columns line up: every row's second column starts where the header's does.
    let at = lines[0].find("CREATED").expect("column");
    assert_eq!(&lines[1][at..at + 4], "2025");
}

#[test]
fn keys_gateways_groups_and_roles() {
    let keys = render(Table::Keys);
    assert!(
        keys.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("AKIA1  alice  Active  2026-11-30T00:00:00Z  -")),
        "{keys}"
    );
    let gateways = render(Table::Gateways);
    assert!(
        gateways.contains("customer gateway  cgw-1  office") && gateways.contains("203.0.113.7 (ASN 65000)"),
        "{gateways}"
    );
    assert!(
        gateways.contains("internet gateway  igw-1  -") && gateways.contains("vpc-1"),
        "{gateways}"
    );
    let groups = render(Table::SecurityGroups);
    assert!(groups.contains("tcp 22 from 0.0.0.0/0, all from sg-2"), "{groups}");
    let roles = render(Table::Roles);
    assert!(
        roles.contains("444455556666") && roles.contains("ec2.amazonaws.com"),
        "{roles}"
    );
    let account = render(Table::Account);
    assert!(
        account.contains("aliases") && account.contains("acme-prod"),
        "{account}"
    );
    assert!(
        account.contains("account_id") && account.contains("111122223333"),
        "{account}"
    );
    assert_eq!(render(Table::Trails).lines().count(), 1, "header only");
}

#[test]
fn tables_as_json_keep_raw_values() {
    let mut out = Vec::new();
    write_inventory_table(&mut out, &snapshot(), Table::Users, RowFormat::Json, 0).expect("write");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out).expect("json");
    assert_eq!(rows[0]["name"], "alice");
    assert_eq!(
        rows[1]["name"], "evil\u{1b}]0;pwned\u{7}",
        "JSON escapes by construction"
    );
}

fn changed_snapshot() -> Snapshot {
    let mut s = snapshot();
    s.collected_at = at("2026-12-03T05:00:00Z");
    s.items.retain(|i| i.id != "AKIA1");
    for item in &mut s.items {
        if item.name == "alice" {
            item.attributes.insert("groups".into(), json!(["Dev", "Ops"]));
            item.attributes
                .insert("password_last_used".into(), json!("2026-12-03T01:00:00Z"));
        }
        if item.id == "sg-1" {
            item.attributes.insert(
                "ingress".into(),
                json!([{"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "0.0.0.0/0"},
                       {"protocol": "-1", "from_port": null, "to_port": null, "group": "sg-2"},
                       {"protocol": "tcp", "from_port": 3389, "to_port": 3389, "cidr": "0.0.0.0/0"}]),
            );
        }
    }
    let mut backdoor = Item::new(Kind::IamUser, "AIDA9", "backup-svc\u{1b}[2J");
    backdoor.created = Some(at("2026-12-02T23:00:00Z"));
    s.items.push(backdoor);
    s.sort();
    s
}

#[test]
fn diff_lists_added_removed_and_changed_fields() {
    // With activity: a scalar change (the last password use) shows as before -> after.
    let d = diff_with_activity(&snapshot(), &changed_snapshot());
    let mut out = Vec::new();
    write_diff(&mut out, &d, false).expect("write");
    let text = String::from_utf8(out).expect("utf8");
    let rdp =
        serde_json::to_string(&json!({"protocol": "tcp", "from_port": 3389, "to_port": 3389, "cidr": "0.0.0.0/0"}))
            .expect("json");
    let expected = format!(
        "\
iam_user (users)
  + backup-svc\\u{{1b}}[2J (AIDA9)
  ~ alice (AIDA1)
      groups: +Ops, -Admins
      password_last_used: 2026-12-01T09:00:00Z -> 2026-12-03T01:00:00Z
access_key (keys)
  - AKIA1
security_group (security-groups)
  ~ web (sg-1) [us-east-1]
      ingress: +{rdp}
1 added, 1 removed, 2 changed
"
    );
    assert_eq!(text, expected);
}

#[test]
fn diff_as_json_and_no_changes() {
    let d = diff(&snapshot(), &changed_snapshot());
    let mut out = Vec::new();
    write_diff(&mut out, &d, true).expect("write");
    let json: serde_json::Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(json["added"][0]["id"], "AIDA9");
    assert_eq!(json["changed"][0]["fields"][0]["added"], json!(["Ops"]));
    let mut out = Vec::new();
    write_diff(&mut out, &diff(&snapshot(), &snapshot()), false).expect("write");
    assert_eq!(String::from_utf8(out).expect("utf8"), "no changes\n");
}
