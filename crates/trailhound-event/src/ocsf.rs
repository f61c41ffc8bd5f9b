//! CloudTrail records rebuilt from OCSF events: what Amazon Security Lake stores for each
//! CloudTrail event (and what OCSF pipelines built on its mapping write), exported as JSON by an
//! Athena query or a data-lake job. The record's fields were renamed (`api.operation` for
//! `eventName`, `actor.user.uid` for `userIdentity.arn`, `api.request.data` for
//! `requestParameters`...) and are put back together here.
//!
//! Field names follow the published mapping of CloudTrail to OCSF, in its two versions: OCSF
//! 1.1 (`actor.user.uid` the ARN, `uid_alt` the principal ID, `account.uid`, `is_mfa`) and
//! 1.0 (`actor.user.uuid` the ARN, `uid` the principal ID, `account_uid`, `mfa`). Fields may be
//! nested or dotted. An event is taken for a CloudTrail record only with an `api.operation`, an
//! `api.service.name` of an AWS service, a time, and CloudTrail named as its product (or AWS as
//! its vendor); fields it lacks are left out of the record, not guessed. An event that carries
//! the record's own text (`raw_data`) gives that text.

use chrono::{DateTime, SecondsFormat};
use serde_json::{Map, Value};

use crate::foreign::{bool_as_text, boolean, lookup, parsed, put, put_session_context};

/// The record an OCSF event stands for, as JSON text; `None` when it is not a CloudTrail
/// event's OCSF document.
pub(crate) fn record(doc: &Value) -> Option<String> {
    let text_of = |path: &str| lookup(doc, path).and_then(Value::as_str).map(str::to_string);
    let operation = text_of("api.operation")?;
    let service = text_of("api.service.name").filter(|s| s.ends_with(".amazonaws.com"))?;
    let product = text_of("metadata.product.name").unwrap_or_default();
    let vendor = text_of("metadata.product.vendor_name").unwrap_or_default();
    if !product.eq_ignore_ascii_case("cloudtrail") && !vendor.eq_ignore_ascii_case("aws") {
        return None;
    }
    let time = text_of("time_dt").or_else(|| lookup(doc, "time").and_then(epoch_millis))?;
    if let Some(raw) = text_of("raw_data").filter(|raw| is_the_record(raw, &operation)) {
        return Some(raw);
    }
    let mut record = Map::new();
    let mut put = |key: &str, value: Option<Value>| put(&mut record, key, value);
    put("eventVersion", lookup(doc, "metadata.product.version").cloned());
    put("userIdentity", Some(identity(doc)));
    put("eventTime", Some(Value::String(time)));
    put("eventSource", Some(Value::String(service)));
    put("eventName", Some(Value::String(operation.clone())));
    put("awsRegion", lookup(doc, "cloud.region").cloned());
    put(
        "sourceIPAddress",
        lookup(doc, "src_endpoint.ip")
            .or_else(|| lookup(doc, "src_endpoint.domain"))
            .cloned(),
    );
    put("userAgent", lookup(doc, "http_request.user_agent").cloned());
    put("errorCode", lookup(doc, "api.response.error").cloned());
    put("errorMessage", lookup(doc, "api.response.message").cloned());
    put(
        "requestParameters",
        lookup(doc, "api.request.data").cloned().map(parsed),
    );
    put(
        "responseElements",
        lookup(doc, "api.response.data")
            .cloned()
            .map(parsed)
            .or_else(|| console_login_result(doc, &operation)),
    );
    put("requestID", lookup(doc, "api.request.uid").cloned());
    put("apiVersion", lookup(doc, "api.version").cloned());
    put("eventID", lookup(doc, "metadata.uid").cloned());
    put("eventType", lookup(doc, "metadata.event_code").cloned());
    put("eventCategory", lookup(doc, "metadata.product.feature.name").cloned());
    put("resources", lookup(doc, "resources").map(resources));
    put("recipientAccountId", lookup(doc, "cloud.account.uid").cloned());
    put("vpcEndpointId", lookup(doc, "src_endpoint.uid").cloned());
    if operation == "ConsoleLogin" {
        put("additionalEventData", sign_in_details(doc));
    }
    if let Some(Value::Object(unmapped)) = lookup(doc, "unmapped") {
        for (key, value) in unmapped {
            put_unmapped(&mut record, key, value);
        }
    }
    serde_json::to_string(&Value::Object(record)).ok()
}

/// `raw_data` holds the record itself (an OCSF producer may keep the source event's text).
fn is_the_record(raw: &str, operation: &str) -> bool {
    serde_json::from_str::<Value>(raw)
        .ok()
        .is_some_and(|v| v.get("eventName").and_then(Value::as_str) == Some(operation))
}

/// An OCSF `time` (milliseconds since the epoch) as CloudTrail writes times; a time some
/// exporter already wrote as text is taken as it is.
fn epoch_millis(value: &Value) -> Option<String> {
    if let Some(text) = value.as_str() {
        return crate::parse_event_time(text).is_some().then(|| text.to_string());
    }
    let millis = value.as_i64().or_else(|| value.as_f64().map(|f| f as i64))?;
    let format = if millis % 1000 == 0 {
        SecondsFormat::Secs
    } else {
        SecondsFormat::Millis
    };
    Some(DateTime::from_timestamp_millis(millis)?.to_rfc3339_opts(format, true))
}

/// `userIdentity` from `actor`, in either version of the mapping.
fn identity(doc: &Value) -> Value {
    let actor = |field: &str| lookup(doc, &format!("actor.{field}")).cloned();
    let is_arn = |v: &Value| v.as_str().is_some_and(|s| s.starts_with("arn:"));
    // 1.1: `uid` is the ARN and `uid_alt` the principal ID; 1.0: `uuid` the ARN, `uid` the ID.
    let (arn, principal) = match (actor("user.uid"), actor("user.uuid")) {
        (Some(uid), _) if is_arn(&uid) => (Some(uid), actor("user.uid_alt")),
        (uid, Some(uuid)) if is_arn(&uuid) => (Some(uuid), uid),
        (uid, _) => (None, actor("user.uid_alt").or(uid)),
    };
    let mut identity = Map::new();
    put(&mut identity, "type", actor("user.type"));
    put(&mut identity, "principalId", principal);
    put(&mut identity, "arn", arn);
    put(
        &mut identity,
        "accountId",
        actor("user.account.uid").or_else(|| actor("user.account_uid")),
    );
    put(&mut identity, "accessKeyId", actor("user.credential_uid"));
    put(&mut identity, "userName", actor("user.name"));
    put(&mut identity, "invokedBy", actor("invoked_by"));
    let mut attributes = Map::new();
    put(
        &mut attributes,
        "creationDate",
        actor("session.created_time_dt")
            .or_else(|| actor("session.created_time").and_then(|t| epoch_millis(&t).map(Value::String))),
    );
    put(
        &mut attributes,
        "mfaAuthenticated",
        actor("session.is_mfa")
            .or_else(|| actor("session.mfa"))
            .map(bool_as_text),
    );
    let mut issuer = Map::new();
    put(&mut issuer, "arn", actor("session.issuer"));
    put_session_context(&mut identity, issuer, attributes);
    Value::Object(identity)
}

/// A console sign-in's result: the Authentication class keeps `responseElements.ConsoleLogin`
/// as the event's `status` (`Success`, `Failure`).
fn console_login_result(doc: &Value, operation: &str) -> Option<Value> {
    if operation != "ConsoleLogin" {
        return None;
    }
    let status = lookup(doc, "status").and_then(Value::as_str)?;
    let status = match status {
        s if s.eq_ignore_ascii_case("success") => "Success",
        s if s.eq_ignore_ascii_case("failure") => "Failure",
        _ => return None,
    };
    let mut result = Map::new();
    result.insert("ConsoleLogin".into(), Value::String(status.into()));
    Some(Value::Object(result))
}

/// A console sign-in's `additionalEventData`: whether MFA was used (`is_mfa`) and where to
/// (`dst_endpoint.svc_name`, the `LoginTo` address).
fn sign_in_details(doc: &Value) -> Option<Value> {
    let mut details = Map::new();
    if let Some(mfa) = lookup(doc, "is_mfa").and_then(|v| v.as_bool().or_else(|| boolean(v.clone()).as_bool())) {
        details.insert("MFAUsed".into(), Value::String(if mfa { "Yes" } else { "No" }.into()));
    }
    put(&mut details, "LoginTo", lookup(doc, "dst_endpoint.svc_name").cloned());
    (!details.is_empty()).then_some(Value::Object(details))
}

/// `resources` (OCSF: `uid`, `type`, `owner.account.uid` or `account_uid`) as CloudTrail
/// writes them (`ARN`, `type`, `accountId`).
fn resources(value: &Value) -> Value {
    let one = |r: &Value| {
        let mut out = Map::new();
        put(&mut out, "ARN", lookup(r, "uid").cloned());
        put(&mut out, "type", lookup(r, "type").cloned());
        put(
            &mut out,
            "accountId",
            lookup(r, "owner.account.uid")
                .or_else(|| lookup(r, "account_uid"))
                .cloned(),
        );
        Value::Object(out)
    };
    match value {
        Value::Array(items) => Value::Array(items.iter().map(one).collect()),
        Value::Object(_) => Value::Array(vec![one(value)]),
        other => other.clone(),
    }
}

/// The most parts a dotted key of `unmapped` may have.
const MAX_UNMAPPED_DEPTH: usize = 8;

/// A member of `unmapped` (the CloudTrail fields the mapping has no place for, such as
/// `sessionCredentialFromConsole`, `readOnly` or `additionalEventData`), at its CloudTrail path:
/// a dotted key names nested members, an object kept as JSON text is parsed, and a field the record already has
/// is kept as the mapping wrote it.
fn put_unmapped(record: &mut Map<String, Value>, key: &str, value: &Value) {
    // CloudTrail's own fields nest a few levels (`userIdentity.sessionContext.ec2RoleDelivery`);
    // a longer dotted key is no CloudTrail field, and would nest the record without bound.
    if key.split('.').any(str::is_empty) || key.split('.').count() > MAX_UNMAPPED_DEPTH {
        return;
    }
    // Objects and lists kept as JSON text are parsed; text such as `"true"` stays text, as
    // CloudTrail writes `sessionCredentialFromConsole`.
    let mut value = match value {
        Value::String(text) if text.trim_start().starts_with(['{', '[']) => parsed(value.clone()),
        other => other.clone(),
    };
    if matches!(key, "readOnly" | "managementEvent") {
        value = boolean(value);
    }
    let mut at = record;
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            match (at.get_mut(part), value) {
                (None, value) => {
                    at.insert(part.to_string(), value);
                }
                // Both objects: the members the record lacks are added.
                (Some(Value::Object(existing)), Value::Object(more)) => {
                    for (k, v) in more {
                        existing.entry(k).or_insert(v);
                    }
                }
                _ => {}
            }
            return;
        }
        let next = at.entry(part.to_string()).or_insert_with(|| Value::Object(Map::new()));
        match next {
            Value::Object(inner) => at = inner,
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::foreign::rebuild;
    use serde_json::Value;

    fn rebuilt(doc: &Value) -> Value {
        serde_json::from_str(&rebuild(&doc.to_string()).expect("a record")).expect("json")
    }

    /// An API Activity event as Security Lake (OCSF 1.1) writes a CloudTrail record.
    fn api_activity() -> Value {
        serde_json::json!({
            "class_uid": 6003, "class_name": "API Activity", "activity_id": 3, "severity_id": 1,
            "time": 1709294400000_i64, "time_dt": "2024-03-01T12:00:00.000Z",
            "status": "Failure",
            "metadata": {"uid": "e-1", "version": "1.1.0", "event_code": "AwsApiCall",
                "product": {"name": "CloudTrail", "vendor_name": "AWS", "version": "1.09", "feature": {"name": "Management"}}},
            "cloud": {"provider": "AWS", "region": "us-east-1", "account": {"uid": "111122223333"}},
            "api": {"operation": "PutBucketPolicy", "version": "2006-03-01",
                "service": {"name": "s3.amazonaws.com"},
                "request": {"uid": "r-1", "data": "{\"bucketName\":\"b\",\"bucketPolicy\":{\"Statement\":[{\"Principal\":\"*\"}]}}"},
                "response": {"error": "AccessDenied", "message": "denied"}},
            "actor": {"user": {"type": "AssumedRole", "uid": "arn:aws:sts::111122223333:assumed-role/r/s", "uid_alt": "AROAEXAMPLE:s",
                    "credential_uid": "ASIAEXAMPLE", "account": {"uid": "111122223333"}},
                "session": {"issuer": "arn:aws:iam::111122223333:role/r", "is_mfa": false, "created_time_dt": "2024-03-01T11:00:00Z"},
                "invoked_by": null},
            "src_endpoint": {"ip": "198.51.100.7"},
            "http_request": {"user_agent": "aws-cli/2.15.0"},
            "resources": [{"uid": "arn:aws:s3:::b", "type": "AWS::S3::Bucket", "owner": {"account": {"uid": "111122223333"}}}],
            "unmapped": {"sessionCredentialFromConsole": "true", "readOnly": "false", "tlsDetails.tlsVersion": "TLSv1.3"}
        })
    }

    #[test]
    fn an_api_activity_event_gives_its_record() {
        let record = rebuilt(&api_activity());
        assert_eq!(record["eventName"], "PutBucketPolicy");
        assert_eq!(record["eventSource"], "s3.amazonaws.com");
        assert_eq!(record["eventTime"], "2024-03-01T12:00:00.000Z");
        assert_eq!(record["eventVersion"], "1.09");
        assert_eq!(record["eventID"], "e-1");
        assert_eq!(record["eventType"], "AwsApiCall");
        assert_eq!(record["awsRegion"], "us-east-1");
        assert_eq!(record["recipientAccountId"], "111122223333");
        assert_eq!(record["sourceIPAddress"], "198.51.100.7");
        assert_eq!(record["userAgent"], "aws-cli/2.15.0");
        assert_eq!(record["errorCode"], "AccessDenied");
        assert_eq!(record["requestID"], "r-1");
        let identity = &record["userIdentity"];
        assert_eq!(identity["arn"], "arn:aws:sts::111122223333:assumed-role/r/s");
        assert_eq!(identity["principalId"], "AROAEXAMPLE:s");
        assert_eq!(identity["accessKeyId"], "ASIAEXAMPLE");
        assert_eq!(identity["accountId"], "111122223333");
        assert_eq!(
            identity["sessionContext"]["sessionIssuer"]["arn"],
            "arn:aws:iam::111122223333:role/r"
        );
        assert_eq!(identity["sessionContext"]["attributes"]["mfaAuthenticated"], "false");
        assert!(identity.get("invokedBy").is_none(), "a null is left out");
        assert_eq!(
            record["requestParameters"]["bucketPolicy"]["Statement"][0]["Principal"],
            "*"
        );
        assert_eq!(record["resources"][0]["ARN"], "arn:aws:s3:::b");
        assert_eq!(record["resources"][0]["accountId"], "111122223333");
        assert_eq!(record["sessionCredentialFromConsole"], "true");
        assert_eq!(record["readOnly"], false);
        assert_eq!(record["tlsDetails"]["tlsVersion"], "TLSv1.3");
    }

    #[test]
    fn the_older_mapping_and_an_epoch_time_are_read() {
        let doc = serde_json::json!({
            "class_uid": 3001, "time": 1709294401500_i64,
            "metadata": {"product": {"name": "CloudTrail", "vendor_name": "AWS"}},
            "api.operation": "CreateUser", "api.service.name": "iam.amazonaws.com",
            "actor": {"user": {"type": "IAMUser", "uid": "AIDAEXAMPLE", "uuid": "arn:aws:iam::111122223333:user/alice",
                "account_uid": "111122223333", "name": "alice"}, "session": {"mfa": true}}
        });
        let record = rebuilt(&doc);
        assert_eq!(record["eventTime"], "2024-03-01T12:00:01.500Z");
        assert_eq!(record["eventName"], "CreateUser");
        assert_eq!(record["userIdentity"]["arn"], "arn:aws:iam::111122223333:user/alice");
        assert_eq!(record["userIdentity"]["principalId"], "AIDAEXAMPLE");
        assert_eq!(record["userIdentity"]["accountId"], "111122223333");
        assert_eq!(record["userIdentity"]["userName"], "alice");
        assert_eq!(
            record["userIdentity"]["sessionContext"]["attributes"]["mfaAuthenticated"],
            "true"
        );
    }

    #[test]
    fn a_time_written_as_text_is_taken() {
        let doc = serde_json::json!({"time": "2024-03-01T12:00:00Z", "metadata": {"product": {"name": "CloudTrail"}},
            "api": {"operation": "StopLogging", "service": {"name": "cloudtrail.amazonaws.com"}}});
        assert_eq!(rebuilt(&doc)["eventTime"], "2024-03-01T12:00:00Z");
    }

    #[test]
    fn a_console_sign_in_keeps_its_result_and_mfa() {
        let doc = serde_json::json!({
            "class_uid": 3002, "time_dt": "2024-03-01T12:00:00Z", "status": "Success", "is_mfa": false,
            "metadata": {"product": {"name": "CloudTrail", "vendor_name": "AWS"}},
            "api": {"operation": "ConsoleLogin", "service": {"name": "signin.amazonaws.com"}},
            "dst_endpoint": {"svc_name": "https://console.aws.amazon.com/console/home"},
            "actor": {"user": {"type": "IAMUser", "uid": "arn:aws:iam::111122223333:user/alice", "name": "alice"}},
            "src_endpoint": {"ip": "203.0.113.9"}
        });
        let record = rebuilt(&doc);
        assert_eq!(record["responseElements"]["ConsoleLogin"], "Success");
        assert_eq!(record["additionalEventData"]["MFAUsed"], "No");
        assert_eq!(
            record["additionalEventData"]["LoginTo"],
            "https://console.aws.amazon.com/console/home"
        );
    }

    #[test]
    fn the_record_kept_as_raw_data_is_given_as_it_is() {
        let raw = r#"{"eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com","eventTime":"2024-03-01T12:00:00Z","sharedEventID":"s"}"#;
        let doc = serde_json::json!({
            "time_dt": "2024-03-01T12:00:00Z", "raw_data": raw,
            "metadata": {"product": {"name": "CloudTrail"}},
            "api": {"operation": "StopLogging", "service": {"name": "cloudtrail.amazonaws.com"}}
        });
        assert_eq!(rebuild(&doc.to_string()).as_deref(), Some(raw));
    }

    #[test]
    fn other_ocsf_events_are_not_taken_for_cloudtrail() {
        for doc in [
            // Another product's API activity (Okta, Azure...).
            serde_json::json!({"time_dt": "t", "metadata": {"product": {"name": "Okta", "vendor_name": "Okta"}},
                "api": {"operation": "user.session.start", "service": {"name": "okta.amazonaws.com.example"}}}),
            // A Security Lake finding or flow log: no API operation.
            serde_json::json!({"time": 1, "metadata": {"product": {"name": "Security Hub", "vendor_name": "AWS"}},
                "cloud": {"region": "us-east-1"}, "src_endpoint": {"domain": "ec2.amazonaws.com"}}),
            // No time.
            serde_json::json!({"metadata": {"product": {"name": "CloudTrail"}},
                "api": {"operation": "StopLogging", "service": {"name": "cloudtrail.amazonaws.com"}}}),
            // A time that is no time.
            serde_json::json!({"time": "soon", "metadata": {"product": {"name": "CloudTrail"}},
                "api": {"operation": "StopLogging", "service": {"name": "cloudtrail.amazonaws.com"}}}),
        ] {
            assert!(rebuild(&doc.to_string()).is_none(), "{doc}");
        }
    }

    #[test]
    fn hostile_unmapped_members_do_not_replace_the_record_s_fields() {
        let mut doc = api_activity();
        doc["unmapped"] = serde_json::json!({
            "eventName": "Harmless", "userIdentity.arn": "arn:aws:iam::111122223333:user/someone-else",
            "": 1, "a..b": 2, "errorCode.x": 3, "additionalEventData": "{\"MFAUsed\":\"Yes\"}"
        });
        // A key that would nest the record 100,000 deep (and overflow the stack writing it).
        doc["unmapped"]
            .as_object_mut()
            .expect("an object")
            .insert(vec!["deep"; 100_000].join("."), Value::from(4));
        let record = rebuilt(&doc);
        assert_eq!(record["eventName"], "PutBucketPolicy");
        assert_eq!(
            record["userIdentity"]["arn"],
            "arn:aws:sts::111122223333:assumed-role/r/s"
        );
        assert_eq!(record["errorCode"], "AccessDenied");
        assert_eq!(record["additionalEventData"]["MFAUsed"], "Yes");
        assert!(record.get("a").is_none() && record.get("").is_none(), "{record}");
        assert!(record.get("deep").is_none());
    }
}
