//! Inventory output: the tables of `inventory show` and the listing of `inventory diff`.
//!
//! Every value here came from an AWS API (names, tags, descriptions, policy documents) and is
//! untrusted: tables go through `write_rows`, which escapes each cell for its medium, and the
//! diff escapes each value with `terminal` before it is written.

use std::io::{self, Write};

use serde_json::Value;
use trailhound_inventory::{Diff, FieldChange, Item, Kind, Snapshot, Table};

use trailhound_output::{RowFormat, terminal, write_rows};

/// The columns and rows of one `inventory show` table, values unescaped.
pub fn inventory_rows(snapshot: &Snapshot, table: Table) -> (&'static [&'static str], Vec<Vec<String>>) {
    let items = || snapshot.items.iter().filter(move |i| table.kinds().contains(&i.kind));
    let columns: &'static [&'static str] = match table {
        Table::Users => &[
            "name",
            "created",
            "password_last_used",
            "console",
            "mfa",
            "groups",
            "keys",
            "policies",
        ],
        Table::Keys => &["key", "user", "status", "created", "last_used", "service", "region"],
        Table::Groups => &["name", "created", "members", "policies"],
        Table::Roles => &["name", "created", "last_used", "last_region", "trusts", "policies"],
        Table::Policies => &["name", "created", "version", "attachments", "arn"],
        Table::Vpcs => &["region", "id", "name", "cidr", "default", "state"],
        Table::Subnets => &["region", "id", "name", "vpc", "cidr", "zone", "public_ip"],
        Table::Gateways => &["region", "kind", "id", "name", "state", "attached"],
        Table::RouteTables => &["region", "id", "name", "vpc", "routes"],
        Table::NetworkAcls => &["region", "id", "name", "vpc", "default", "entries"],
        Table::SecurityGroups => &["region", "id", "name", "vpc", "ingress", "egress"],
        Table::Peering => &["region", "id", "requester", "accepter", "accepter_account", "status"],
        Table::FlowLogs => &["region", "id", "resource", "status", "destination"],
        Table::Buckets => &[
            "name",
            "region",
            "created",
            "public_access_block",
            "policy_public",
            "versioning",
        ],
        Table::Trails => &[
            "name",
            "home_region",
            "multi_region",
            "logging",
            "latest_delivery",
            "delivery_error",
            "bucket",
            "organization",
        ],
        Table::Account => &["field", "value"],
    };
    if table == Table::Account {
        return (columns, account_rows(snapshot));
    }
    let rows = items().map(|item| row(snapshot, table, item)).collect();
    (columns, rows)
}

/// Writes one `inventory show` table (`users`, `keys`, ...) in `format`; table cells are cut
/// at `max_width` columns (0: never).
pub fn write_inventory_table(
    out: &mut dyn Write,
    snapshot: &Snapshot,
    table: Table,
    format: RowFormat,
    max_width: usize,
) -> io::Result<()> {
    let (columns, rows) = inventory_rows(snapshot, table);
    write_rows(out, format, columns, &rows, max_width)
}

fn row(snapshot: &Snapshot, table: Table, item: &Item) -> Vec<String> {
    let a = |key: &str| text(item.attributes.get(key));
    let region = || item.region.clone().unwrap_or_else(|| "-".into());
    let created = || {
        item.created
            .map_or_else(|| "-".into(), |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
    };
    let policies =
        || (item.attr_array("attached_policies").len() + item.attr_array("inline_policies").len()).to_string();
    match table {
        Table::Users => {
            let keys: Vec<&Item> = snapshot
                .of_kind(Kind::AccessKey)
                .filter(|k| k.attr_str("user") == Some(item.name.as_str()))
                .collect();
            let active = keys.iter().filter(|k| k.attr_str("status") == Some("Active")).count();
            let mfa = item.attr_array("mfa_devices").len();
            vec![
                item.name.clone(),
                created(),
                a("password_last_used"),
                a("login_profile"),
                if mfa == 0 { "no".into() } else { mfa.to_string() },
                a("groups"),
                format!("{} ({active} active)", keys.len()),
                policies(),
            ]
        }
        Table::Keys => vec![
            item.id.clone(),
            a("user"),
            a("status"),
            created(),
            a("last_used"),
            a("last_used_service"),
            a("last_used_region"),
        ],
        Table::Groups => vec![item.name.clone(), created(), a("members"), policies()],
        Table::Roles => vec![
            item.name.clone(),
            created(),
            a("last_used"),
            a("last_used_region"),
            trusted(item.attributes.get("trust_policy")),
            policies(),
        ],
        Table::Policies => vec![
            item.name.clone(),
            created(),
            a("default_version"),
            a("attachment_count"),
            item.arn.clone().unwrap_or_else(|| "-".into()),
        ],
        Table::Vpcs => vec![
            region(),
            item.id.clone(),
            name(item),
            a("cidr"),
            a("is_default"),
            a("state"),
        ],
        Table::Subnets => vec![
            region(),
            item.id.clone(),
            name(item),
            a("vpc_id"),
            a("cidr"),
            a("availability_zone"),
            a("map_public_ip"),
        ],
        Table::Gateways => {
            let attached = match (item.attr("vpc_ids"), item.attr("ip_address"), item.attr("bgp_asn")) {
                (Some(vpcs), _, _) => text(Some(vpcs)),
                (None, Some(ip), Some(asn)) => format!("{} (ASN {})", text(Some(ip)), text(Some(asn))),
                (None, Some(ip), None) => text(Some(ip)),
                (None, None, _) => "-".into(),
            };
            let kind = item.kind.noun().to_string();
            vec![region(), kind, item.id.clone(), name(item), a("state"), attached]
        }
        Table::RouteTables => {
            let routes: Vec<String> = item
                .attr_array("routes")
                .iter()
                .map(|r| format!("{} -> {}", text(r.get("destination")), text(r.get("target"))))
                .collect();
            vec![region(), item.id.clone(), name(item), a("vpc_id"), list(routes)]
        }
        Table::NetworkAcls => vec![
            region(),
            item.id.clone(),
            name(item),
            a("vpc_id"),
            a("is_default"),
            item.attr_array("entries").len().to_string(),
        ],
        Table::SecurityGroups => {
            let rules = |key: &str| list(item.attr_array(key).iter().map(rule).collect());
            vec![
                region(),
                item.id.clone(),
                name(item),
                a("vpc_id"),
                rules("ingress"),
                rules("egress"),
            ]
        }
        Table::Peering => vec![
            region(),
            item.id.clone(),
            a("requester_vpc"),
            a("accepter_vpc"),
            a("accepter_account"),
            a("status"),
        ],
        Table::FlowLogs => vec![
            region(),
            item.id.clone(),
            a("resource_id"),
            a("status"),
            a("destination"),
        ],
        Table::Buckets => {
            let block = match item.attr("public_access_block").and_then(Value::as_object) {
                None => "none".to_string(),
                Some(b) if !b.is_empty() && b.values().all(|v| v.as_bool() == Some(true)) => "all on".into(),
                Some(b) if b.values().any(|v| v.as_bool() == Some(true)) => "partial".into(),
                Some(_) => "off".into(),
            };
            vec![
                item.name.clone(),
                region(),
                created(),
                block,
                a("policy_public"),
                a("versioning"),
            ]
        }
        Table::Trails => vec![
            item.name.clone(),
            region(),
            a("multi_region"),
            a("is_logging"),
            a("latest_delivery_time"),
            a("latest_delivery_error"),
            a("s3_bucket"),
            a("organization_trail"),
        ],
        Table::Account => Vec::new(),
    }
}

fn account_rows(snapshot: &Snapshot) -> Vec<Vec<String>> {
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let mut rows = vec![
        vec!["account_id".to_string(), or_dash(&snapshot.account_id)],
        vec!["caller_arn".to_string(), or_dash(&snapshot.caller_arn)],
        vec![
            "collected_at".to_string(),
            snapshot.collected_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        ],
        vec!["regions".to_string(), list(snapshot.regions.clone())],
        vec!["items".to_string(), snapshot.items.len().to_string()],
        vec!["collection_errors".to_string(), snapshot.errors.len().to_string()],
    ];
    if let Some(account) = snapshot.of_kind(Kind::Account).next() {
        rows.push(vec!["aliases".into(), text(account.attributes.get("aliases"))]);
        rows.push(vec![
            "password_policy".into(),
            text(account.attributes.get("password_policy")),
        ]);
    }
    rows
}

/// A cell for a JSON value: strings as they are, booleans yes/no, lists of strings joined,
/// anything else as compact JSON; absent or null is `-`.
fn text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(true)) => "yes".into(),
        Some(Value::Bool(false)) => "no".into(),
        Some(Value::Array(values)) if values.iter().all(Value::is_string) => {
            list(values.iter().filter_map(Value::as_str).map(str::to_string).collect())
        }
        Some(other) => other.to_string(),
    }
}

fn list(values: Vec<String>) -> String {
    if values.is_empty() {
        "-".into()
    } else {
        values.join(", ")
    }
}

fn name(item: &Item) -> String {
    if item.name.is_empty() || item.name == item.id {
        "-".into()
    } else {
        item.name.clone()
    }
}

/// A security group rule in a few words: `tcp 22 from 0.0.0.0/0`, `all from sg-1`.
fn rule(rule: &Value) -> String {
    let protocol = match rule.get("protocol") {
        Some(Value::String(p)) if p == "-1" => "all".to_string(),
        other => text(other),
    };
    let ports = match (
        rule.get("from_port").and_then(Value::as_i64),
        rule.get("to_port").and_then(Value::as_i64),
    ) {
        (Some(from), Some(to)) if from == to && from >= 0 => format!(" {from}"),
        (Some(from), Some(to)) if from >= 0 => format!(" {from}-{to}"),
        _ => String::new(),
    };
    let source = rule
        .get("cidr")
        .or_else(|| rule.get("group"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    format!("{protocol}{ports} from {source}")
}

/// The principals a trust policy's Allow statements name, e.g. `ec2.amazonaws.com, 444455556666`.
fn trusted(policy: Option<&Value>) -> String {
    let Some(policy) = policy else {
        return "-".into();
    };
    let statements: Vec<&Value> = match policy.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one) => vec![one],
        None => Vec::new(),
    };
    let mut names = Vec::new();
    for statement in statements {
        if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
            continue;
        }
        match statement.get("Principal") {
            Some(Value::Object(map)) => {
                for value in map.values() {
                    match value {
                        Value::Array(list) => names.extend(list.iter().map(|v| text(Some(v)))),
                        other => names.push(text(Some(other))),
                    }
                }
            }
            Some(other) => names.push(text(Some(other))),
            None => {}
        }
    }
    names.sort();
    names.dedup();
    list(names)
}

/// Writes a diff: as JSON, or per kind `+ added`, `- removed`, `~ changed` with one line per
/// field (`before -> after`, or `+element, -element` for lists), ending with the counts.
pub fn write_diff(out: &mut dyn Write, diff: &Diff, json: bool) -> io::Result<()> {
    if json {
        trailhound_output::write_json(&mut *out, diff, true)?;
        return writeln!(out);
    }
    for kind in diff.kinds() {
        writeln!(out, "{} ({})", kind.as_str(), kind.table())?;
        for item in diff.added.iter().filter(|i| i.kind == kind) {
            writeln!(
                out,
                "  + {}",
                terminal(&label(&item.id, &item.name, item.region.as_deref()))
            )?;
        }
        for item in diff.removed.iter().filter(|i| i.kind == kind) {
            writeln!(
                out,
                "  - {}",
                terminal(&label(&item.id, &item.name, item.region.as_deref()))
            )?;
        }
        for change in diff.changed.iter().filter(|c| c.kind == kind) {
            writeln!(
                out,
                "  ~ {}",
                terminal(&label(&change.id, &change.name, change.region.as_deref()))
            )?;
            for field in &change.fields {
                writeln!(
                    out,
                    "      {}: {}",
                    terminal(&field.field),
                    terminal(&field_text(field))
                )?;
            }
        }
    }
    if diff.is_empty() {
        return writeln!(out, "no changes");
    }
    writeln!(
        out,
        "{} added, {} removed, {} changed",
        diff.added.len(),
        diff.removed.len(),
        diff.changed.len()
    )
}

fn label(id: &str, name: &str, region: Option<&str>) -> String {
    let mut text = if name.is_empty() || name == id {
        id.to_string()
    } else {
        format!("{name} ({id})")
    };
    if let Some(region) = region {
        text.push_str(&format!(" [{region}]"));
    }
    text
}

fn field_text(field: &FieldChange) -> String {
    let value = |v: &Value| match v {
        Value::Null => "(none)".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if field.added.is_empty() && field.removed.is_empty() {
        return format!("{} -> {}", value(&field.before), value(&field.after));
    }
    let mut parts: Vec<String> = field.added.iter().map(|v| format!("+{}", value(v))).collect();
    parts.extend(field.removed.iter().map(|v| format!("-{}", value(v))));
    parts.join(", ")
}

#[cfg(test)]
mod tests;
