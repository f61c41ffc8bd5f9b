//! The CloudTrail table as AWS documents it for Athena, and records as its rows.
//!
//! Columns are the record's top-level fields, lower-cased. `useridentity`, `addendum` and
//! `tlsdetails` are structs of strings; `requestparameters`, `responseelements`,
//! `additionaleventdata`, `serviceeventdetails` and `edgedevicedetails` hold the JSON text of
//! their object; `resources` is an array of structs; `readonly` is the string `true` or `false`.
//! A field that is not in this table is not in Athena's rows: a rule that reads it cannot be
//! compiled (the row does not have it), and a record rebuilt from a row does not have it either.
//!
//! [`row`] is what Athena's JSON SerDe makes of a record (the tests load such rows into DuckDB),
//! [`record`] the record trailhound rebuilds from a row for its own engine.

use serde_json::{Map, Value};

/// How a top-level field is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A string column.
    Text,
    /// `readOnly`: a boolean in the record, a string column.
    Boolean,
    /// The JSON text of the field's value.
    Json,
    /// A struct of strings (and of structs).
    Struct(&'static [Member]),
    /// An array of structs of strings.
    Elements(&'static [Member]),
}

/// A member of a struct column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Member {
    pub name: &'static str,
    pub shape: MemberShape,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemberShape {
    Text,
    Struct(&'static [Member]),
    /// `map<string,string>`: kept in the table, but not compiled.
    Map,
}

const fn text(name: &'static str) -> Member {
    Member {
        name,
        shape: MemberShape::Text,
    }
}

const fn nested(name: &'static str, members: &'static [Member]) -> Member {
    Member {
        name,
        shape: MemberShape::Struct(members),
    }
}

const SESSION_ISSUER: &[Member] = &[
    text("type"),
    text("principalId"),
    text("arn"),
    text("accountId"),
    text("userName"),
];
const SESSION_ATTRIBUTES: &[Member] = &[text("mfaAuthenticated"), text("creationDate")];
const WEB_IDENTITY: &[Member] = &[
    text("federatedProvider"),
    Member {
        name: "attributes",
        shape: MemberShape::Map,
    },
];
const SESSION_CONTEXT: &[Member] = &[
    nested("attributes", SESSION_ATTRIBUTES),
    nested("sessionIssuer", SESSION_ISSUER),
    text("ec2RoleDelivery"),
    nested("webIdFederationData", WEB_IDENTITY),
];
const ON_BEHALF_OF: &[Member] = &[text("userId"), text("identityStoreArn")];
const USER_IDENTITY: &[Member] = &[
    text("type"),
    text("principalId"),
    text("arn"),
    text("accountId"),
    text("invokedBy"),
    text("accessKeyId"),
    text("userName"),
    nested("onBehalfOf", ON_BEHALF_OF),
    nested("sessionContext", SESSION_CONTEXT),
];
const RESOURCE: &[Member] = &[text("arn"), text("accountId"), text("type")];
const ADDENDUM: &[Member] = &[
    text("reason"),
    text("updatedFields"),
    text("originalRequestID"),
    text("originalEventID"),
];
const TLS_DETAILS: &[Member] = &[
    text("tlsVersion"),
    text("cipherSuite"),
    text("clientProvidedHostHeader"),
];

/// The table's columns in AWS's order: the record's field name and how it is stored.
pub(crate) const COLUMNS: &[(&str, Shape)] = &[
    ("eventVersion", Shape::Text),
    ("userIdentity", Shape::Struct(USER_IDENTITY)),
    ("eventTime", Shape::Text),
    ("eventSource", Shape::Text),
    ("eventName", Shape::Text),
    ("awsRegion", Shape::Text),
    ("sourceIPAddress", Shape::Text),
    ("userAgent", Shape::Text),
    ("errorCode", Shape::Text),
    ("errorMessage", Shape::Text),
    ("requestParameters", Shape::Json),
    ("responseElements", Shape::Json),
    ("additionalEventData", Shape::Json),
    ("requestID", Shape::Text),
    ("eventID", Shape::Text),
    ("readOnly", Shape::Boolean),
    ("resources", Shape::Elements(RESOURCE)),
    ("eventType", Shape::Text),
    ("apiVersion", Shape::Text),
    ("recipientAccountId", Shape::Text),
    ("serviceEventDetails", Shape::Json),
    ("sharedEventID", Shape::Text),
    ("vpcEndpointId", Shape::Text),
    ("vpcEndpointAccountId", Shape::Text),
    ("eventCategory", Shape::Text),
    ("addendum", Shape::Struct(ADDENDUM)),
    ("sessionCredentialFromConsole", Shape::Text),
    ("edgeDeviceDetails", Shape::Json),
    ("tlsDetails", Shape::Struct(TLS_DETAILS)),
];

/// The column of a record field, as spelled in records (case matters, as in the engine).
pub(crate) fn column(field: &str) -> Option<Shape> {
    COLUMNS.iter().find(|(name, _)| *name == field).map(|(_, shape)| *shape)
}

/// The column types, for CREATE TABLE (`struct<...>` in Hive's syntax).
pub fn column_types() -> Vec<(String, String)> {
    fn members(list: &[Member]) -> String {
        let items: Vec<String> = list
            .iter()
            .map(|m| {
                let kind = match m.shape {
                    MemberShape::Text => "string".to_string(),
                    MemberShape::Map => "map<string,string>".to_string(),
                    MemberShape::Struct(inner) => format!("struct<{}>", members(inner)),
                };
                format!("{}:{kind}", m.name.to_ascii_lowercase())
            })
            .collect();
        items.join(",")
    }
    COLUMNS
        .iter()
        .map(|(name, shape)| {
            let kind = match shape {
                Shape::Text | Shape::Boolean | Shape::Json => "string".to_string(),
                Shape::Struct(list) => format!("struct<{}>", members(list)),
                Shape::Elements(list) => format!("array<struct<{}>>", members(list)),
            };
            (name.to_ascii_lowercase(), kind)
        })
        .collect()
}

/// The text a string column holds for a JSON value: strings as they are, other scalars as
/// written, objects and arrays as compact JSON. `None` for null.
fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn struct_row(members: &[Member], value: &Value) -> Value {
    let Value::Object(map) = value else {
        return Value::Null;
    };
    let mut out = Map::new();
    for member in members {
        let field = map.get(member.name).unwrap_or(&Value::Null);
        let cell = match member.shape {
            MemberShape::Text => as_text(field).map_or(Value::Null, Value::String),
            MemberShape::Struct(inner) => struct_row(inner, field),
            MemberShape::Map => match field {
                Value::Object(entries) => Value::Object(
                    entries
                        .iter()
                        .filter_map(|(k, v)| as_text(v).map(|t| (k.to_ascii_lowercase(), Value::String(t))))
                        .collect(),
                ),
                _ => Value::Null,
            },
        };
        out.insert(member.name.to_ascii_lowercase(), cell);
    }
    Value::Object(out)
}

/// JSON text without the whitespace between tokens (strings kept as written).
fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    out
}

/// The row Athena's JSON SerDe makes of a record's JSON text: lower-cased column names, strings
/// for string columns (compact JSON text, in the record's order, for objects), structs with
/// their declared members only.
pub fn row(record: &str) -> Result<Value, String> {
    let map: std::collections::BTreeMap<String, Box<serde_json::value::RawValue>> =
        serde_json::from_str(record).map_err(|err| format!("not a JSON object: {err}"))?;
    let mut out = Map::new();
    for (name, shape) in COLUMNS {
        let raw = map.get(*name).map(|raw| raw.get());
        let field: Value = raw
            .and_then(|raw| serde_json::from_str(raw).ok())
            .unwrap_or(Value::Null);
        let cell = match shape {
            Shape::Json => match (&field, raw) {
                (Value::Null, _) | (_, None) => Value::Null,
                (Value::String(s), _) => Value::String(s.clone()),
                (_, Some(raw)) => Value::String(compact(raw)),
            },
            Shape::Text | Shape::Boolean => as_text(&field).map_or(Value::Null, Value::String),
            Shape::Struct(members) => struct_row(members, &field),
            Shape::Elements(members) => match field {
                Value::Array(items) => Value::Array(items.iter().map(|item| struct_row(members, item)).collect()),
                _ => Value::Null,
            },
        };
        out.insert(name.to_ascii_lowercase(), cell);
    }
    Ok(Value::Object(out))
}

fn struct_record(members: &[Member], value: &Value) -> Option<Value> {
    let map = value.as_object()?;
    let mut out = Map::new();
    for member in members {
        let Some(cell) = map.get(&member.name.to_ascii_lowercase()) else {
            continue;
        };
        let field = match member.shape {
            MemberShape::Text | MemberShape::Map => match cell {
                Value::Null => None,
                Value::String(_) | Value::Object(_) => Some(cell.clone()),
                other => Some(Value::String(other.to_string())),
            },
            MemberShape::Struct(inner) => struct_record(inner, cell),
        };
        if let Some(field) = field {
            out.insert(member.name.to_string(), field);
        }
    }
    Some(Value::Object(out))
}

/// The record trailhound's engine sees for a row (column names lower-cased, as Athena returns
/// them), as JSON text: fields back under their CloudTrail names, JSON columns as the JSON they
/// hold, spliced as written (text that is not JSON stays a string), `readOnly` a boolean, null
/// columns left out.
pub fn record(row: &Map<String, Value>) -> String {
    let mut out: Vec<(&str, String)> = Vec::new();
    for (name, shape) in COLUMNS {
        let Some(cell) = row.get(&name.to_ascii_lowercase()) else {
            continue;
        };
        if cell.is_null() {
            continue;
        }
        let field = match shape {
            Shape::Text => match cell {
                Value::String(_) => cell.clone(),
                other => Value::String(other.to_string()),
            },
            Shape::Boolean => match cell {
                Value::Bool(_) => cell.clone(),
                Value::String(s) => Value::Bool(s.eq_ignore_ascii_case("true")),
                _ => Value::Bool(false),
            },
            Shape::Json => match cell {
                Value::String(text) if serde_json::from_str::<&serde_json::value::RawValue>(text).is_ok() => {
                    out.push((name, text.trim().to_string()));
                    continue;
                }
                other => other.clone(),
            },
            Shape::Struct(members) => match struct_record(members, cell) {
                Some(value) => value,
                None => continue,
            },
            Shape::Elements(members) => match cell {
                Value::Array(items) => Value::Array(items.iter().filter_map(|i| struct_record(members, i)).collect()),
                _ => continue,
            },
        };
        out.push((name, field.to_string()));
    }
    let members: Vec<String> = out
        .iter()
        .map(|(name, json)| format!("{}:{json}", Value::String((*name).to_string())))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// The record for a row as Athena's `GetQueryResults` returns it: every value as text (`None`
/// for SQL null), struct and array columns as the JSON text [`super::plan::select_list`] asks
/// for, `names` the result's column names (any case; columns not in the table are ignored).
/// A row is refused with the reason when its shape is wrong (a value count that is not the
/// column count, a struct column that is not JSON): rows come from outside and may be hostile.
pub fn record_from_text(names: &[String], cells: &[Option<String>]) -> Result<String, String> {
    if names.len() != cells.len() {
        return Err(format!("{} values for {} columns", cells.len(), names.len()));
    }
    let mut row = Map::new();
    for (name, cell) in names.iter().zip(cells) {
        let Some(text) = cell else { continue };
        let column = name.to_ascii_lowercase();
        let Some((_, shape)) = COLUMNS.iter().find(|(field, _)| field.eq_ignore_ascii_case(&column)) else {
            continue;
        };
        let value = match shape {
            Shape::Struct(_) | Shape::Elements(_) => serde_json::from_str::<Value>(text)
                .map_err(|err| format!("column {column}: not the JSON text of its struct: {err}"))?,
            Shape::Text | Shape::Boolean | Shape::Json => Value::String(text.clone()),
        };
        row.insert(column, value);
    }
    Ok(record(&row))
}

/// The table `trailhound athena table` describes.
#[derive(Debug, Clone)]
pub struct Definition {
    /// `DATABASE.TABLE` or `TABLE`.
    pub name: String,
    /// `s3://BUCKET[/PREFIX]` of the trail.
    pub bucket: String,
    /// `o-...` for an organization trail's layout (`AWSLogs/o-.../ACCOUNT/...`).
    pub organization: Option<String>,
    /// Accounts to project; empty: `injected` (every query names its accounts).
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    /// The first day of the projection, `YYYY/MM/DD`.
    pub first_day: String,
}

impl Definition {
    /// The `LOCATION` the partitions live under.
    pub fn location(&self) -> String {
        let base = self.bucket.trim_end_matches('/');
        match &self.organization {
            Some(org) => format!("{base}/AWSLogs/{org}/"),
            None => format!("{base}/AWSLogs/"),
        }
    }

    /// CREATE EXTERNAL TABLE with partition projection on account, region and day, in the
    /// form AWS documents for CloudTrail tables (JSON SerDe, CloudTrail's input format).
    pub fn create_statement(&self) -> String {
        let columns: Vec<String> = column_types()
            .iter()
            .map(|(name, kind)| format!("  `{name}` {kind}"))
            .collect();
        let location = self.location();
        let account = if self.accounts.is_empty() {
            "  'projection.account.type'='injected',\n".to_string()
        } else {
            format!(
                "  'projection.account.type'='enum',\n  'projection.account.values'='{}',\n",
                self.accounts.join(",")
            )
        };
        format!(
            "CREATE EXTERNAL TABLE IF NOT EXISTS {name} (\n{columns}\n)\n\
             PARTITIONED BY (`account` string, `region` string, `day` string)\n\
             ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'\n\
             STORED AS INPUTFORMAT 'com.amazon.emr.cloudtrail.CloudTrailInputFormat'\n\
             OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'\n\
             LOCATION '{location}'\n\
             TBLPROPERTIES (\n\
             \x20 'projection.enabled'='true',\n\
             {account}\
             \x20 'projection.region.type'='enum',\n\
             \x20 'projection.region.values'='{regions}',\n\
             \x20 'projection.day.type'='date',\n\
             \x20 'projection.day.range'='{first},NOW',\n\
             \x20 'projection.day.format'='yyyy/MM/dd',\n\
             \x20 'projection.day.interval'='1',\n\
             \x20 'projection.day.interval.unit'='DAYS',\n\
             \x20 'storage.location.template'='{location}${{account}}/CloudTrail/${{region}}/${{day}}'\n\
             )",
            name = self.name,
            columns = columns.join(",\n"),
            regions = self.regions.join(","),
            first = self.first_day,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_the_table() {
        let original = serde_json::json!({
            "eventVersion": "1.09", "eventTime": "2024-03-01T12:00:00Z", "eventName": "CreateUser",
            "eventSource": "iam.amazonaws.com", "readOnly": false, "notInTheTable": 1,
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/a", "extra": "x",
                "sessionContext": {"sessionIssuer": {"type": "Role"}, "attributes": {"mfaAuthenticated": "true"}}},
            "requestParameters": {"userName": "bob", "tags": [{"key": "a", "value": 1}]},
            "resources": [{"ARN": "ignored", "arn": "arn:x", "type": "T"}]
        });
        let row = row(&original.to_string()).expect("row");
        assert_eq!(row["readonly"], "false");
        assert_eq!(
            row["requestparameters"],
            r#"{"tags":[{"key":"a","value":1}],"userName":"bob"}"#
        );
        assert_eq!(row["useridentity"]["sessioncontext"]["sessionissuer"]["type"], "Role");
        assert!(row["useridentity"].get("extra").is_none());
        let back: Value = serde_json::from_str(&record(row.as_object().expect("object"))).expect("json");
        assert_eq!(back["readOnly"], false);
        assert_eq!(back["requestParameters"], original["requestParameters"]);
        assert_eq!(
            back["userIdentity"]["sessionContext"]["attributes"]["mfaAuthenticated"],
            "true"
        );
        assert_eq!(back["resources"][0]["arn"], "arn:x");
        assert!(back.get("notInTheTable").is_none());
        assert!(back.get("errorCode").is_none(), "null columns are left out");
    }

    #[test]
    fn json_columns_keep_the_record_order() {
        let row = row(r#"{"requestParameters": {"b": 1, "a": [ "x y" ]}, "readOnly": true}"#).expect("row");
        assert_eq!(row["requestparameters"], r#"{"b":1,"a":["x y"]}"#);
        assert_eq!(row["readonly"], "true");
        let back = record(row.as_object().expect("object"));
        assert!(back.contains(r#""requestParameters":{"b":1,"a":["x y"]}"#), "{back}");
        assert!(back.contains(r#""readOnly":true"#), "{back}");
    }

    #[test]
    fn rows_as_athena_returns_them_become_records() {
        let original = serde_json::json!({
            "eventTime": "2024-03-01T12:00:00Z", "eventName": "CreateUser", "readOnly": false,
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/a"},
            "requestParameters": {"userName": "bob"},
            "resources": [{"arn": "arn:x", "type": "T"}]
        });
        let row = row(&original.to_string()).expect("row");
        // Athena gives text: structs as JSON text (json_format), nulls as no value.
        let (names, cells): (Vec<String>, Vec<Option<String>>) = row
            .as_object()
            .expect("object")
            .iter()
            .map(|(name, value)| {
                let cell = match value {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                };
                (name.to_ascii_uppercase(), cell)
            })
            .unzip();
        let text = record_from_text(&names, &cells).expect("record");
        let back: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(back["userIdentity"]["arn"], "arn:aws:iam::1:user/a");
        assert_eq!(back["requestParameters"], original["requestParameters"]);
        assert_eq!(back["resources"][0]["type"], "T");
        assert_eq!(back["readOnly"], false);
        assert_eq!(back["eventTime"], "2024-03-01T12:00:00Z");

        let mut broken = cells.clone();
        let at = names.iter().position(|n| n == "USERIDENTITY").expect("column");
        broken[at] = Some("{type=IAMUser}".into());
        let err = record_from_text(&names, &broken).expect_err("not JSON");
        assert!(err.starts_with("column useridentity: "), "{err}");
        assert!(record_from_text(&names, &cells[1..]).is_err(), "a value short");
        let unknown = record_from_text(&["surprise".into()], &[Some("x".into())]).expect("ignored");
        assert_eq!(unknown, "{}");
    }

    #[test]
    fn the_table_projects_account_region_and_day() {
        let definition = Definition {
            name: "trails.cloudtrail".into(),
            bucket: "s3://org-trails/".into(),
            organization: Some("o-abc123".into()),
            accounts: vec![],
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            first_day: "2025/01/01".into(),
        };
        let sql = definition.create_statement();
        assert!(
            sql.starts_with("CREATE EXTERNAL TABLE IF NOT EXISTS trails.cloudtrail ("),
            "{sql}"
        );
        assert!(sql.contains("LOCATION 's3://org-trails/AWSLogs/o-abc123/'"), "{sql}");
        assert!(sql.contains("'projection.account.type'='injected'"), "{sql}");
        assert!(
            sql.contains("'projection.region.values'='us-east-1,eu-west-1'"),
            "{sql}"
        );
        assert!(
            sql.contains(
                "'storage.location.template'='s3://org-trails/AWSLogs/o-abc123/${account}/CloudTrail/${region}/${day}'"
            ),
            "{sql}"
        );
        assert!(sql.contains("  `useridentity` struct<type:string,"), "{sql}");
    }

    #[test]
    fn column_types_are_hive_types() {
        let types = column_types();
        assert_eq!(types[0], ("eventversion".to_string(), "string".to_string()));
        let (_, resources) = types.iter().find(|(n, _)| n == "resources").expect("resources");
        assert_eq!(resources, "array<struct<arn:string,accountid:string,type:string>>");
    }
}
