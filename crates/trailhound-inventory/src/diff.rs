//! What changed between two snapshots: items added, removed, and changed field by field.
//!
//! Items are matched by (kind, region, id). Name, ARN, creation time and every attribute are
//! compared; arrays compare as multisets (the APIs return them in no promised order), and for an
//! array the change lists the elements that came and went, so "user added to group Admins" or
//! "new ingress rule" read directly. This module computes; rendering is the output crate's.

use std::collections::{BTreeMap, BTreeSet};

use chrono::SecondsFormat;
use serde::Serialize;
use serde_json::Value;

use crate::kind::Kind;
use crate::snapshot::{Item, Snapshot};

/// The differences between two snapshots, in (kind, region, id) order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Diff {
    pub added: Vec<Item>,
    pub removed: Vec<Item>,
    pub changed: Vec<Change>,
}

/// One item present in both snapshots whose fields differ.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub kind: Kind,
    pub id: String,
    /// The name in the newer snapshot.
    pub name: String,
    pub region: Option<String>,
    /// In field order: `name`, `arn`, `created`, then attributes by name.
    pub fields: Vec<FieldChange>,
}

/// One field that differs. An absent field is null.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub before: Value,
    pub after: Value,
    /// For arrays (or an array replacing null): the elements only `after` has.
    pub added: Vec<Value>,
    /// For arrays: the elements only `before` has.
    pub removed: Vec<Value>,
}

impl Diff {
    /// Nothing was added, removed or changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// The kinds that appear in the diff, in kind order.
    pub fn kinds(&self) -> Vec<Kind> {
        let kinds: BTreeSet<Kind> = self
            .added
            .iter()
            .map(|i| i.kind)
            .chain(self.removed.iter().map(|i| i.kind))
            .chain(self.changed.iter().map(|c| c.kind))
            .collect();
        kinds.into_iter().collect()
    }
}

/// Attributes that change with use, not with configuration: when keys, roles and passwords were
/// last used, when a trail last delivered. [`diff`] leaves them out, so a nightly diff shows
/// drift, not activity; [`diff_with_activity`] keeps them.
pub const ACTIVITY_FIELDS: [&str; 5] = [
    "last_used",
    "last_used_service",
    "last_used_region",
    "password_last_used",
    "latest_delivery_time",
];

/// The differences from `from` (older) to `to` (newer), activity fields left out.
pub fn diff(from: &Snapshot, to: &Snapshot) -> Diff {
    compare_snapshots(from, to, false)
}

/// [`diff`] with the [`ACTIVITY_FIELDS`] compared too.
pub fn diff_with_activity(from: &Snapshot, to: &Snapshot) -> Diff {
    compare_snapshots(from, to, true)
}

fn compare_snapshots(from: &Snapshot, to: &Snapshot, activity: bool) -> Diff {
    let index = |s: &Snapshot| -> BTreeMap<(Kind, Option<String>, String), Item> {
        s.items
            .iter()
            .map(|i| ((i.kind, i.region.clone(), i.id.clone()), i.clone()))
            .collect()
    };
    let before = index(from);
    let mut after = index(to);
    let mut out = Diff::default();
    for (key, old) in before {
        match after.remove(&key) {
            None => out.removed.push(old),
            Some(new) => {
                let mut fields = changed_fields(&old, &new);
                if !activity {
                    fields.retain(|f| !ACTIVITY_FIELDS.contains(&f.field.as_str()));
                }
                if !fields.is_empty() {
                    out.changed.push(Change {
                        kind: new.kind,
                        id: new.id,
                        name: new.name,
                        region: new.region,
                        fields,
                    });
                }
            }
        }
    }
    out.added = after.into_values().collect();
    out
}

fn changed_fields(old: &Item, new: &Item) -> Vec<FieldChange> {
    let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
    let time = |item: &Item| {
        item.created.map_or(Value::Null, |t| {
            Value::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        })
    };
    let mut fields = Vec::new();
    let core = [
        ("name", Value::String(old.name.clone()), Value::String(new.name.clone())),
        ("arn", text(&old.arn), text(&new.arn)),
        ("created", time(old), time(new)),
    ];
    for (field, before, after) in core {
        if let Some(change) = compare(field, &before, &after) {
            fields.push(change);
        }
    }
    let names: BTreeSet<&String> = old.attributes.keys().chain(new.attributes.keys()).collect();
    for name in names {
        let before = old.attributes.get(name).unwrap_or(&Value::Null);
        let after = new.attributes.get(name).unwrap_or(&Value::Null);
        if let Some(change) = compare(name, before, after) {
            fields.push(change);
        }
    }
    fields
}

fn compare(field: &str, before: &Value, after: &Value) -> Option<FieldChange> {
    let elements = |v: &Value| -> Option<Vec<Value>> {
        match v {
            Value::Array(a) => Some(a.clone()),
            Value::Null => Some(Vec::new()),
            _ => None,
        }
    };
    let (added, removed) = match (elements(before), elements(after)) {
        (Some(old), Some(new)) if before.is_array() || after.is_array() => {
            let added = without(&new, &old);
            let removed = without(&old, &new);
            if added.is_empty() && removed.is_empty() {
                // Same elements in another order, or `[]` against null: not a change.
                return None;
            }
            (added, removed)
        }
        _ if before == after => return None,
        _ => (Vec::new(), Vec::new()),
    };
    Some(FieldChange {
        field: field.to_string(),
        before: before.clone(),
        after: after.clone(),
        added,
        removed,
    })
}

/// The elements of `a` left after taking away one match in `b` for each: a multiset difference,
/// in `a`'s order.
fn without(a: &[Value], b: &[Value]) -> Vec<Value> {
    let mut used = vec![false; b.len()];
    let mut out = Vec::new();
    for value in a {
        match b.iter().enumerate().position(|(i, v)| !used[i] && v == value) {
            Some(i) => used[i] = true,
            None => out.push(value.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use serde_json::json;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("time").with_timezone(&Utc)
    }

    fn snapshot(items: Vec<Item>) -> Snapshot {
        let mut s = Snapshot::new(at("2026-12-02T05:00:00Z"));
        s.items = items;
        s
    }

    fn user(name: &str, groups: Value) -> Item {
        Item::new(Kind::IamUser, name, name).with("groups", groups)
    }

    fn sg(rules: Value) -> Item {
        let mut item = Item::new(Kind::SecurityGroup, "sg-1", "web").with("ingress", rules);
        item.region = Some("us-east-1".into());
        item
    }

    #[test]
    fn added_and_removed_items_in_order() {
        let from = snapshot(vec![user("old", json!([])), user("kept", json!([]))]);
        let mut vpc = Item::new(Kind::Vpc, "vpc-9", "new");
        vpc.region = Some("eu-west-1".into());
        let to = snapshot(vec![vpc, user("kept", json!([])), user("backup-svc", json!([]))]);
        let d = diff(&from, &to);
        let ids = |items: &[Item]| items.iter().map(|i| i.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&d.added), ["backup-svc", "vpc-9"]);
        assert_eq!(ids(&d.removed), ["old"]);
        assert!(d.changed.is_empty());
        assert_eq!(d.kinds(), [Kind::IamUser, Kind::Vpc]);
    }

    #[test]
    fn same_id_in_another_region_is_another_item() {
        let mut a = Item::new(Kind::Vpc, "vpc-1", "x");
        a.region = Some("us-east-1".into());
        let mut b = a.clone();
        b.region = Some("eu-west-1".into());
        let d = diff(&snapshot(vec![a]), &snapshot(vec![b]));
        assert_eq!((d.added.len(), d.removed.len()), (1, 1));
    }

    #[test]
    fn array_elements_added_and_removed() {
        let from = snapshot(vec![user("alice", json!(["Dev", "Ops"]))]);
        let to = snapshot(vec![user("alice", json!(["Admins", "Dev"]))]);
        let d = diff(&from, &to);
        assert_eq!(d.changed.len(), 1);
        let change = &d.changed[0];
        assert_eq!((change.kind, change.id.as_str()), (Kind::IamUser, "alice"));
        assert_eq!(change.fields.len(), 1);
        let field = &change.fields[0];
        assert_eq!(field.field, "groups");
        assert_eq!(field.added, [json!("Admins")]);
        assert_eq!(field.removed, [json!("Ops")]);
        assert_eq!(field.after, json!(["Admins", "Dev"]));
    }

    #[test]
    fn new_ingress_rule_reads_as_one_element() {
        let ssh = json!({"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.0.0.0/8"});
        let world = json!({"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "0.0.0.0/0"});
        let d = diff(
            &snapshot(vec![sg(json!([ssh.clone()]))]),
            &snapshot(vec![sg(json!([world.clone(), ssh]))]),
        );
        let field = &d.changed[0].fields[0];
        assert_eq!((field.added.clone(), field.removed.len()), (vec![world], 0));
    }

    #[test]
    fn reordered_arrays_and_empty_against_null_are_not_changes() {
        let from = snapshot(vec![user("a", json!(["x", "y", "x"])), user("b", Value::Null)]);
        let to = snapshot(vec![user("a", json!(["x", "x", "y"])), user("b", json!([]))]);
        assert!(diff(&from, &to).is_empty());
        // A duplicate counts: the multiset changed.
        let to = snapshot(vec![user("a", json!(["x", "y"])), user("b", json!([]))]);
        let d = diff(&from, &to);
        assert_eq!(d.changed[0].fields[0].removed, [json!("x")]);
    }

    #[test]
    fn scalar_fields_and_created_changes() {
        let mut old = Item::new(Kind::AccessKey, "AKIA1", "AKIA1").with("status", "Active");
        old.created = Some(at("2026-01-01T00:00:00Z"));
        let mut new = old
            .clone()
            .with("status", "Inactive")
            .with("last_used", "2026-12-01T00:00:00Z");
        new.created = Some(at("2026-11-30T00:00:00Z"));
        let (from, to) = (snapshot(vec![old]), snapshot(vec![new]));
        let quiet = diff(&from, &to);
        assert!(
            quiet.changed[0].fields.iter().all(|f| f.field != "last_used"),
            "use is not drift by default"
        );
        let d = diff_with_activity(&from, &to);
        let fields: Vec<(&str, &Value, &Value)> = d.changed[0]
            .fields
            .iter()
            .map(|f| (f.field.as_str(), &f.before, &f.after))
            .collect();
        assert_eq!(
            fields,
            [
                (
                    "created",
                    &json!("2026-01-01T00:00:00Z"),
                    &json!("2026-11-30T00:00:00Z")
                ),
                ("last_used", &Value::Null, &json!("2026-12-01T00:00:00Z")),
                ("status", &json!("Active"), &json!("Inactive")),
            ]
        );
        assert!(
            d.changed[0]
                .fields
                .iter()
                .all(|f| f.added.is_empty() && f.removed.is_empty())
        );
        let json = serde_json::to_value(&d).expect("serialize");
        assert_eq!(json["changed"][0]["fields"][2]["after"], "Inactive");
        assert_eq!(json["changed"][0]["kind"], "access_key");
    }
}
