//! OCSF (Open Cybersecurity Schema Framework) forms of findings and events, for Amazon Security
//! Lake, SIEMs and anything else that reads OCSF.
//!
//! - A finding is a **Detection Finding** (class 2004, category Findings): the rule as
//!   `finding_info` (its analytic, its ATT&CK tactics and techniques from the rule's tags), the
//!   severity from the level, the triggering CloudTrail event as `evidences` (mapped as OCSF maps
//!   CloudTrail's API Activity: actor, API operation and service, source endpoint, request id),
//!   correlation and grouping figures, and the explanation when a known reason applies.
//! - A CloudTrail record is an **API Activity** (class 6003, category Application Activity), as
//!   a Security Lake custom source would carry it.
//!
//! Both use schema version [`OCSF_VERSION`] with the `cloud` profile; the tests validate them
//! against that version's JSON Schema.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use trailhound_finding::{Finding, Level};

/// The OCSF schema version both forms follow.
pub const OCSF_VERSION: &str = "1.5.0";

/// ATT&CK enterprise tactics in the matrix's order: Sigma tag name, tactic id, display name.
pub const TACTICS: &[(&str, &str, &str)] = &[
    ("reconnaissance", "TA0043", "Reconnaissance"),
    ("resource-development", "TA0042", "Resource Development"),
    ("initial-access", "TA0001", "Initial Access"),
    ("execution", "TA0002", "Execution"),
    ("persistence", "TA0003", "Persistence"),
    ("privilege-escalation", "TA0004", "Privilege Escalation"),
    ("defense-evasion", "TA0005", "Defense Evasion"),
    ("credential-access", "TA0006", "Credential Access"),
    ("discovery", "TA0007", "Discovery"),
    ("lateral-movement", "TA0008", "Lateral Movement"),
    ("collection", "TA0009", "Collection"),
    ("command-and-control", "TA0011", "Command and Control"),
    ("exfiltration", "TA0010", "Exfiltration"),
    ("impact", "TA0040", "Impact"),
];

/// The ATT&CK tactic (id, name) a Sigma tag (`attack.defense-evasion`) names.
pub fn tactic_of_tag(tag: &str) -> Option<(&'static str, &'static str)> {
    let name = tag.strip_prefix("attack.")?;
    TACTICS
        .iter()
        .find(|(tag, _, _)| *tag == name)
        .map(|(_, id, display)| (*id, *display))
}

/// `attack.t1562.008` -> `T1562.008`.
fn technique_of_tag(tag: &str) -> Option<String> {
    let id = tag.strip_prefix("attack.")?;
    (id.starts_with('t') && id[1..].starts_with(|c: char| c.is_ascii_digit())).then(|| id.to_uppercase())
}

fn severity(level: Level) -> (u8, &'static str) {
    match level {
        Level::Informational => (1, "Informational"),
        Level::Low => (2, "Low"),
        Level::Medium => (3, "Medium"),
        Level::High => (4, "High"),
        Level::Critical => (5, "Critical"),
    }
}

fn millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

/// The CloudTrail events behind a correlation or a group, by their `eventID`s (at most 100),
/// as `finding_info.related_events`.
fn related_events(info: &mut Map<String, Value>, ids: &[String]) {
    if !ids.is_empty() {
        let related: Vec<Value> = ids.iter().map(|id| json!({"uid": id})).collect();
        info.insert("related_events".into(), Value::Array(related));
    }
}

fn parse_millis(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
}

fn product() -> Value {
    json!({
        "name": "trailhound",
        "vendor_name": "trailhound",
        "version": env!("CARGO_PKG_VERSION"),
    })
}

/// Inserts `value` under `key` unless it is null or an empty object.
fn put(map: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = value.is_null() || value.as_object().is_some_and(Map::is_empty);
    if !empty {
        map.insert(key.to_string(), value);
    }
}

fn object(pairs: &[(&str, Value)]) -> Value {
    let mut map = Map::new();
    for (k, v) in pairs {
        put(&mut map, k, v.clone());
    }
    Value::Object(map)
}

fn text(value: Option<&str>) -> Value {
    value
        .filter(|v| !v.is_empty())
        .map_or(Value::Null, |v| Value::String(v.to_string()))
}

/// A source address as an OCSF network endpoint: an IP address, or (when CloudTrail names an AWS
/// service, `ec2.amazonaws.com`, or says `AWS Internal`) a service name.
fn endpoint(source: Option<&str>) -> Value {
    match source {
        None | Some("") => Value::Null,
        Some(s) if s.parse::<std::net::IpAddr>().is_ok() => json!({"ip": s}),
        Some(s) => json!({"svc_name": s}),
    }
}

/// The user of a CloudTrail `userIdentity` (or of a finding's fields when there is no record):
/// ARN, type, name, access key, account, principal id.
fn user(
    arn: Option<&str>,
    kind: Option<&str>,
    name: Option<&str>,
    key: Option<&str>,
    account: Option<&str>,
    principal_id: Option<&str>,
) -> Value {
    // OCSF user types: 1 User, 2 Admin, 3 System, 99 Other.
    let type_id = match kind {
        Some("Root") => 2,
        Some("IAMUser") => 1,
        Some("AWSService") => 3,
        Some(_) => 99,
        None => 0,
    };
    let mut user = Map::new();
    put(&mut user, "uid", text(arn.or(principal_id)));
    put(
        &mut user,
        "uid_alt",
        if arn.is_some() { text(principal_id) } else { Value::Null },
    );
    put(&mut user, "name", text(name));
    put(&mut user, "type", text(kind));
    if kind.is_some() {
        user.insert("type_id".into(), json!(type_id));
    }
    put(&mut user, "credential_uid", text(key));
    put(&mut user, "account", aws_account(account));
    Value::Object(user)
}

/// An AWS account as an OCSF account object; null without an id.
fn aws_account(uid: Option<&str>) -> Value {
    match uid {
        Some(uid) if !uid.is_empty() => json!({"uid": uid, "type": "AWS Account", "type_id": 10}),
        _ => Value::Null,
    }
}

fn str_at<'v>(record: &'v Value, path: &[&str]) -> Option<&'v str> {
    let mut v = record;
    for key in path {
        v = v.get(key)?;
    }
    v.as_str()
}

/// The API Activity activity of a CloudTrail event name: Create 1, Read 2, Update 3, Delete 4,
/// Other 99.
fn api_activity_id(event_name: &str) -> (u8, &'static str) {
    const READ: &[&str] = &[
        "Get", "List", "Describe", "Lookup", "Search", "Head", "Scan", "Query", "BatchGet", "Select",
    ];
    const CREATE: &[&str] = &[
        "Create", "Put", "Run", "Start", "Add", "Attach", "Import", "Register", "Allocate", "Upload", "Issue",
        "Request", "Copy",
    ];
    const UPDATE: &[&str] = &[
        "Update",
        "Modify",
        "Set",
        "Change",
        "Enable",
        "Disable",
        "Associate",
        "Authorize",
        "Replace",
        "Reset",
        "Tag",
        "Untag",
        "Apply",
        "Restore",
    ];
    const DELETE: &[&str] = &[
        "Delete",
        "Remove",
        "Terminate",
        "Detach",
        "Deregister",
        "Revoke",
        "Release",
        "Disassociate",
        "Purge",
        "Stop",
        "Cancel",
        "Deactivate",
        "Schedule",
    ];
    let starts = |list: &[&str]| list.iter().any(|p| event_name.starts_with(p));
    if starts(READ) {
        (2, "Read")
    } else if starts(DELETE) {
        (4, "Delete")
    } else if starts(UPDATE) {
        (3, "Update")
    } else if starts(CREATE) {
        (1, "Create")
    } else {
        (99, "Other")
    }
}

/// The API part of an event (OCSF `api`): operation, service, request id, error.
fn api(record: Option<&Value>, finding_name: &str, finding_source: &str, error: Option<&str>) -> Value {
    let operation = record.and_then(|r| str_at(r, &["eventName"])).unwrap_or(finding_name);
    let service = record
        .and_then(|r| str_at(r, &["eventSource"]))
        .unwrap_or(finding_source);
    let request_id = record.and_then(|r| str_at(r, &["requestID"]));
    let message = record.and_then(|r| str_at(r, &["errorMessage"]));
    let mut api = Map::new();
    api.insert("operation".into(), json!(operation));
    put(&mut api, "service", object(&[("name", text(Some(service)))]));
    if let Some(id) = request_id {
        let mut request = Map::new();
        request.insert("uid".into(), json!(id));
        if let Some(data) = record
            .and_then(|r| r.get("requestParameters"))
            .filter(|d| d.is_object())
        {
            request.insert("data".into(), data.clone());
        }
        api.insert("request".into(), Value::Object(request));
    }
    let mut response = Map::new();
    put(&mut response, "error", text(error));
    put(&mut response, "error_message", text(message));
    if let Some(data) = record.and_then(|r| r.get("responseElements")).filter(|d| d.is_object()) {
        response.insert("data".into(), data.clone());
    }
    put(&mut api, "response", Value::Object(response));
    put(
        &mut api,
        "version",
        text(record.and_then(|r| str_at(r, &["apiVersion"]))),
    );
    Value::Object(api)
}

fn actor_of_record(record: &Value) -> Value {
    let id = |k: &str| str_at(record, &["userIdentity", k]);
    let user = user(
        id("arn"),
        id("type"),
        id("userName")
            .or_else(|| str_at(record, &["userIdentity", "sessionContext", "sessionIssuer", "userName"]))
            .or_else(|| id("invokedBy")),
        id("accessKeyId"),
        id("accountId"),
        id("principalId"),
    );
    let mut actor = Map::new();
    put(&mut actor, "user", user);
    put(&mut actor, "invoked_by", text(id("invokedBy")));
    let mfa = str_at(
        record,
        &["userIdentity", "sessionContext", "attributes", "mfaAuthenticated"],
    );
    let created = str_at(
        record,
        &["userIdentity", "sessionContext", "attributes", "creationDate"],
    )
    .and_then(parse_millis);
    let issuer = str_at(record, &["userIdentity", "sessionContext", "sessionIssuer", "arn"]);
    let mut session = Map::new();
    if let Some(mfa) = mfa {
        session.insert("is_mfa".into(), json!(mfa == "true"));
    }
    if let Some(created) = created {
        session.insert("created_time".into(), json!(created));
    }
    put(&mut session, "issuer", text(issuer));
    put(&mut session, "credential_uid", text(id("accessKeyId")));
    put(&mut actor, "session", Value::Object(session));
    Value::Object(actor)
}

/// The class, category, activity and severity attributes every OCSF event starts with.
fn header(
    out: &mut Map<String, Value>,
    (class_uid, class_name): (u32, &str),
    (category_uid, category_name): (u32, &str),
    (activity_id, activity_name): (u8, &str),
    (severity_id, severity): (u8, &str),
) {
    out.insert("class_uid".into(), json!(class_uid));
    out.insert("class_name".into(), json!(class_name));
    out.insert("category_uid".into(), json!(category_uid));
    out.insert("category_name".into(), json!(category_name));
    out.insert("activity_id".into(), json!(activity_id));
    out.insert("activity_name".into(), json!(activity_name));
    out.insert("type_uid".into(), json!(class_uid * 100 + u32::from(activity_id)));
    out.insert("type_name".into(), json!(format!("{class_name}: {activity_name}")));
    out.insert("severity_id".into(), json!(severity_id));
    out.insert("severity".into(), json!(severity));
}

fn cloud(region: Option<&str>, account: Option<&str>) -> Value {
    let mut cloud = Map::new();
    cloud.insert("provider".into(), json!("AWS"));
    put(&mut cloud, "region", text(region));
    put(&mut cloud, "account", aws_account(account));
    Value::Object(cloud)
}

/// A CloudTrail record as an OCSF API Activity (class 6003). `None` when the record has no
/// `eventTime` or `eventName` (OCSF needs both).
pub fn api_activity(record: &Value) -> Option<Value> {
    let time = str_at(record, &["eventTime"]).and_then(parse_millis)?;
    let event_name = str_at(record, &["eventName"])?;
    let (activity_id, activity) = api_activity_id(event_name);
    let error = str_at(record, &["errorCode"]);
    let account = str_at(record, &["recipientAccountId"]).or_else(|| str_at(record, &["userIdentity", "accountId"]));
    let mut out = Map::new();
    header(
        &mut out,
        (6003, "API Activity"),
        (6, "Application Activity"),
        (activity_id, activity),
        (1, "Informational"),
    );
    out.insert("time".into(), json!(time));
    let (status_id, status) = if error.is_some() {
        (2, "Failure")
    } else {
        (1, "Success")
    };
    out.insert("status_id".into(), json!(status_id));
    out.insert("status".into(), json!(status));
    put(&mut out, "status_code", text(error));
    put(&mut out, "status_detail", text(str_at(record, &["errorMessage"])));
    let mut metadata = Map::new();
    metadata.insert("version".into(), json!(OCSF_VERSION));
    metadata.insert("profiles".into(), json!(["cloud"]));
    metadata.insert(
        "product".into(),
        json!({"name": "CloudTrail", "vendor_name": "AWS", "feature": {"name": "Management, Data, and Insights"}}),
    );
    put(&mut metadata, "uid", text(str_at(record, &["eventID"])));
    put(&mut metadata, "event_code", text(str_at(record, &["eventType"])));
    put(&mut metadata, "log_version", text(str_at(record, &["eventVersion"])));
    put(&mut metadata, "original_time", text(str_at(record, &["eventTime"])));
    out.insert("metadata".into(), Value::Object(metadata));
    out.insert("actor".into(), actor_of_record(record));
    out.insert("api".into(), api(Some(record), event_name, "", error));
    // OCSF requires a source endpoint: CloudTrail always names one (an address or a service).
    let source = str_at(record, &["sourceIPAddress"]);
    out.insert(
        "src_endpoint".into(),
        match endpoint(source) {
            Value::Null => json!({"svc_name": "unknown"}),
            e => e,
        },
    );
    put(
        &mut out,
        "http_request",
        object(&[("user_agent", text(str_at(record, &["userAgent"])))]),
    );
    out.insert("cloud".into(), cloud(str_at(record, &["awsRegion"]), account));
    if let Some(resources) = record.get("resources").and_then(Value::as_array) {
        let list: Vec<Value> = resources
            .iter()
            .map(|r| {
                object(&[
                    ("uid", text(r.get("ARN").and_then(Value::as_str))),
                    ("type", text(r.get("type").and_then(Value::as_str))),
                    (
                        "owner",
                        object(&[(
                            "account",
                            object(&[("uid", text(r.get("accountId").and_then(Value::as_str)))]),
                        )]),
                    ),
                ])
            })
            .filter(|r| r.as_object().is_some_and(|m| !m.is_empty()))
            .collect();
        if !list.is_empty() {
            out.insert("resources".into(), Value::Array(list));
        }
    }
    Some(Value::Object(out))
}

/// A finding as an OCSF Detection Finding (class 2004).
pub fn detection_finding(finding: &Finding) -> Value {
    let (severity_id, severity) = severity(finding.level);
    let record: Option<Value> = finding
        .event
        .as_ref()
        .and_then(|raw| serde_json::from_str(raw.get()).ok());
    let mut attacks = Vec::new();
    let tactics: Vec<(&str, &str)> = finding.tags.iter().filter_map(|t| tactic_of_tag(t)).collect();
    let techniques: Vec<String> = finding.tags.iter().filter_map(|t| technique_of_tag(t)).collect();
    for technique in &techniques {
        let (base, sub) = match technique.split_once('.') {
            Some((base, _)) => (base.to_string(), Some(technique.clone())),
            None => (technique.clone(), None),
        };
        let mut attack = Map::new();
        attack.insert("technique".into(), json!({"uid": base}));
        if let Some(sub) = sub {
            attack.insert("sub_technique".into(), json!({"uid": sub}));
        }
        if let Some((uid, name)) = tactics.first() {
            attack.insert("tactic".into(), json!({"uid": uid, "name": name}));
        }
        if tactics.len() > 1 {
            attack.insert(
                "tactics".into(),
                Value::Array(
                    tactics
                        .iter()
                        .map(|(uid, name)| json!({"uid": uid, "name": name}))
                        .collect(),
                ),
            );
        }
        attacks.push(Value::Object(attack));
    }
    if techniques.is_empty() {
        for (uid, name) in &tactics {
            attacks.push(json!({"tactic": {"uid": uid, "name": name}}));
        }
    }
    let mut info = Map::new();
    info.insert("uid".into(), json!(finding.uid()));
    info.insert("title".into(), json!(finding.rule_title));
    info.insert(
        "analytic".into(),
        json!({"uid": finding.rule_id, "name": finding.rule_title, "type_id": 1, "type": "Rule"}),
    );
    if !attacks.is_empty() {
        info.insert("attacks".into(), Value::Array(attacks));
    }
    info.insert("types".into(), json!(["AWS CloudTrail"]));
    put(&mut info, "product", product());
    if !finding.tags.is_empty() {
        info.insert(
            "tags".into(),
            json!(
                finding
                    .tags
                    .iter()
                    .map(|t| json!({"name": "sigma", "value": t}))
                    .collect::<Vec<_>>()
            ),
        );
    }
    let mut count = None;
    let (first, last) = match (&finding.correlation, &finding.group) {
        (Some(c), _) => {
            info.insert("related_events_count".into(), json!(c.events));
            related_events(&mut info, &c.event_ids);
            count = Some(c.events);
            let mut desc = format!(
                "Correlation {} met its condition: {} over {} events",
                c.kind.name(),
                c.value.map_or(c.count.to_string(), |v| v.to_string()),
                c.events
            );
            if !c.group.is_empty() {
                let group: Vec<String> = c.group.iter().map(|(k, v)| format!("{k}={v}")).collect();
                desc.push_str(&format!(", grouped by {}", group.join(", ")));
            }
            info.insert("desc".into(), json!(desc));
            (parse_millis(&c.first_time), parse_millis(&c.last_time))
        }
        (None, Some(g)) => {
            info.insert("related_events_count".into(), json!(g.count));
            related_events(&mut info, &g.event_ids);
            count = Some(g.count);
            info.insert(
                "desc".into(),
                json!(format!("{} findings of this rule by one principal, grouped", g.count)),
            );
            (parse_millis(&g.first_time), parse_millis(&g.last_time))
        }
        (None, None) => (Some(millis(finding.time)), Some(millis(finding.time))),
    };
    if let Some(first) = first {
        info.insert("first_seen_time".into(), json!(first));
    }
    if let Some(last) = last {
        info.insert("last_seen_time".into(), json!(last));
    }
    let mut out = Map::new();
    header(
        &mut out,
        (2004, "Detection Finding"),
        (2, "Findings"),
        (1, "Create"),
        (severity_id, severity),
    );
    out.insert("time".into(), json!(millis(finding.time)));
    out.insert("is_alert".into(), json!(finding.level >= Level::High));
    if let Some(count) = count {
        out.insert("count".into(), json!(count));
    }
    let who = finding.principal_arn.as_deref().unwrap_or("an unknown principal");
    let message = match &finding.item {
        Some(item) => format!("{}: {} {}", finding.rule_title, item.kind, item.id),
        None => format!("{}: {} by {}", finding.rule_title, finding.event_name, who),
    };
    out.insert("message".into(), json!(message));
    match &finding.explanation {
        Some(explanation) => {
            out.insert("status_id".into(), json!(3));
            out.insert("status".into(), json!("Suppressed"));
            let ticket = explanation
                .ticket
                .as_deref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default();
            out.insert(
                "status_detail".into(),
                json!(format!("explained: {}{ticket}", explanation.reason)),
            );
            out.insert("comment".into(), json!(format!("{}{ticket}", explanation.reason)));
        }
        None => {
            out.insert("status_id".into(), json!(1));
            out.insert("status".into(), json!("New"));
        }
    }
    let mut metadata = Map::new();
    metadata.insert("version".into(), json!(OCSF_VERSION));
    metadata.insert("profiles".into(), json!(["cloud"]));
    metadata.insert("product".into(), product());
    metadata.insert("uid".into(), json!(finding.uid()));
    put(&mut metadata, "log_name", text(Some(&finding.source_file)));
    out.insert("metadata".into(), Value::Object(metadata));
    out.insert("finding_info".into(), Value::Object(info));
    out.insert(
        "cloud".into(),
        cloud(finding.aws_region.as_deref(), finding.account_id.as_deref()),
    );
    match &finding.item {
        Some(item) => {
            out.insert(
                "resources".into(),
                json!([{"uid": item.id, "name": item.name, "type": item.kind}]),
            );
        }
        None => {
            let mut evidence = Map::new();
            let actor = match &record {
                Some(r) => actor_of_record(r),
                None => object(&[(
                    "user",
                    user(
                        finding.principal_arn.as_deref(),
                        finding.principal_type.as_deref(),
                        None,
                        finding.access_key_id.as_deref(),
                        finding.account_id.as_deref(),
                        None,
                    ),
                )]),
            };
            put(&mut evidence, "actor", actor);
            evidence.insert(
                "api".into(),
                api(
                    record.as_ref(),
                    &finding.event_name,
                    &finding.event_source,
                    finding.error_code.as_deref(),
                ),
            );
            put(&mut evidence, "src_endpoint", endpoint(finding.source_ip.as_deref()));
            put(
                &mut evidence,
                "http_request",
                object(&[("user_agent", text(finding.user_agent.as_deref()))]),
            );
            put(&mut evidence, "uid", text(finding.event_id.as_deref()));
            if let Some(record) = record {
                evidence.insert("data".into(), record);
            }
            out.insert("evidences".into(), json!([Value::Object(evidence)]));
        }
    }
    let mut unmapped = Map::new();
    unmapped.insert("rule_id".into(), json!(finding.rule_id));
    unmapped.insert("source_file".into(), json!(finding.source_file));
    if let Some(c) = &finding.correlation {
        unmapped.insert("correlation".into(), serde_json::to_value(c).unwrap_or(Value::Null));
    }
    if let Some(g) = &finding.group {
        unmapped.insert("group".into(), serde_json::to_value(g).unwrap_or(Value::Null));
    }
    out.insert("unmapped".into(), Value::Object(unmapped));
    Value::Object(out)
}
