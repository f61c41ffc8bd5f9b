//! CloudTrail records rebuilt from ECS documents: what Elastic's AWS integration (Filebeat's
//! `aws` module, Elastic Agent) indexes for each CloudTrail event. It keeps the record's text in
//! `event.original` only when told to; otherwise the record survives as renamed fields
//! (`event.action` for `eventName`, `aws.cloudtrail.user_identity.arn` for `userIdentity.arn`,
//! the request parameters as JSON text...), from which it is put back together here.
//!
//! Field names are those of the integration's documented field list. A field may come nested
//! (`{"aws":{"cloudtrail":{...}}}`, as `_source` usually is) or dotted (`"aws.cloudtrail.x"`,
//! as some exports flatten it), or a mix: [`lookup`] finds either. A document is taken for a
//! CloudTrail event only with an `event.action`, an `event.provider` of an AWS service and a
//! time; fields it lacks are left out of the record, not guessed.

use serde_json::{Map, Value};

use crate::foreign::{bool_as_text, boolean, lookup, parsed, put, put_session_context};

/// The record an ECS document stands for, as JSON text; `None` when it is not a CloudTrail
/// event's document.
pub(crate) fn record(doc: &Value) -> Option<String> {
    let text_of = |path: &str| lookup(doc, path).and_then(Value::as_str).map(str::to_string);
    let action = text_of("event.action")?;
    let provider = text_of("event.provider").filter(|p| p.ends_with(".amazonaws.com"))?;
    let time = text_of("@timestamp")?;
    let cloudtrail = lookup(doc, "aws.cloudtrail").is_some()
        || text_of("event.dataset").is_some_and(|d| d == "aws.cloudtrail")
        || doc
            .as_object()
            .is_some_and(|o| o.keys().any(|k| k.starts_with("aws.cloudtrail.")));
    if !cloudtrail {
        return None;
    }
    let ct = |field: &str| lookup(doc, &format!("aws.cloudtrail.{field}")).cloned();
    let mut record = Map::new();
    let mut put = |key: &str, value: Option<Value>| put(&mut record, key, value);
    put("eventVersion", ct("event_version"));
    put("userIdentity", Some(identity(doc)));
    put("eventTime", Some(Value::String(time)));
    put("eventSource", Some(Value::String(provider)));
    put("eventName", Some(Value::String(action)));
    put("awsRegion", lookup(doc, "cloud.region").cloned());
    put(
        "sourceIPAddress",
        lookup(doc, "source.address")
            .or_else(|| lookup(doc, "source.ip"))
            .cloned(),
    );
    put("userAgent", lookup(doc, "user_agent.original").cloned());
    put("errorCode", ct("error_code"));
    put("errorMessage", ct("error_message"));
    for (key, field) in [
        ("requestParameters", "request_parameters"),
        ("responseElements", "response_elements"),
        ("additionalEventData", "additional_eventdata"),
        ("serviceEventDetails", "service_event_details"),
    ] {
        // The integration keeps these as JSON text (and, when asked, a parsed copy under
        // `flattened`): the parsed copy, else the text parsed, else the text as it is.
        let value = ct(&format!("flattened.{field}")).or_else(|| ct(field).map(parsed));
        put(key, value);
    }
    put("requestID", ct("request_id"));
    put("eventID", lookup(doc, "event.id").cloned());
    put("readOnly", ct("read_only").map(boolean));
    put("resources", ct("resources").map(resources));
    put("eventType", ct("event_type"));
    put("managementEvent", ct("management_event").map(boolean));
    put(
        "recipientAccountId",
        ct("recipient_account_id").or_else(|| lookup(doc, "cloud.account.id").cloned()),
    );
    put("sharedEventID", ct("shared_event_id"));
    put("vpcEndpointId", ct("vpc_endpoint_id"));
    put("eventCategory", ct("event_category"));
    put("sessionCredentialFromConsole", ct("session_credential_from_console"));
    serde_json::to_string(&Value::Object(record)).ok()
}

/// `userIdentity` from `aws.cloudtrail.user_identity.*`, the user and the account.
fn identity(doc: &Value) -> Value {
    let id = |field: &str| lookup(doc, &format!("aws.cloudtrail.user_identity.{field}")).cloned();
    let mut identity = Map::new();
    put(&mut identity, "type", id("type"));
    put(&mut identity, "principalId", lookup(doc, "user.id").cloned());
    put(&mut identity, "arn", id("arn"));
    put(&mut identity, "accountId", lookup(doc, "cloud.account.id").cloned());
    put(&mut identity, "accessKeyId", id("access_key_id"));
    put(&mut identity, "userName", lookup(doc, "user.name").cloned());
    put(&mut identity, "invokedBy", id("invoked_by"));
    let mut issuer = Map::new();
    for (key, field) in [
        ("type", "type"),
        ("principalId", "principal_id"),
        ("arn", "arn"),
        ("accountId", "account_id"),
        ("userName", "user_name"),
    ] {
        put(&mut issuer, key, id(&format!("session_context.session_issuer.{field}")));
    }
    let mut attributes = Map::new();
    put(&mut attributes, "creationDate", id("session_context.creation_date"));
    put(
        &mut attributes,
        "mfaAuthenticated",
        id("session_context.mfa_authenticated").map(bool_as_text),
    );
    put_session_context(&mut identity, issuer, attributes);
    Value::Object(identity)
}

/// `resources` (ECS: `arn`, `type`, `account_id`; one object or a list) as CloudTrail writes
/// them (`ARN`, `type`, `accountId`).
fn resources(value: Value) -> Value {
    let one = |r: &Value| {
        let mut out = Map::new();
        for (key, field) in [("ARN", "arn"), ("type", "type"), ("accountId", "account_id")] {
            if let Some(v) = lookup(r, field) {
                out.insert(key.into(), v.clone());
            }
        }
        Value::Object(out)
    };
    match &value {
        Value::Array(items) => Value::Array(items.iter().map(one).collect()),
        Value::Object(_) => Value::Array(vec![one(&value)]),
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ecs() -> Value {
        serde_json::json!({
            "@timestamp": "2024-03-01T12:00:00.000Z",
            "event": {"action": "PutBucketPolicy", "provider": "s3.amazonaws.com", "id": "e-1", "dataset": "aws.cloudtrail", "outcome": "success"},
            "cloud": {"region": "us-east-1", "account": {"id": "111122223333"}},
            "source": {"address": "198.51.100.7", "ip": "198.51.100.7"},
            "user_agent": {"original": "aws-cli/2.15.0"},
            "user": {"name": "alice", "id": "AIDAEXAMPLE"},
            "aws": {"cloudtrail": {
                "event_version": "1.09",
                "event_type": "AwsApiCall",
                "read_only": "false",
                "recipient_account_id": "111122223333",
                "request_parameters": "{\"bucketName\":\"b\",\"bucketPolicy\":{\"Statement\":[{\"Principal\":\"*\"}]}}",
                "user_identity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice", "access_key_id": "AKIAEXAMPLE",
                    "session_context": {"mfa_authenticated": "false", "session_issuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/r"}}},
                "resources": [{"arn": "arn:aws:s3:::b", "type": "AWS::S3::Bucket"}]
            }}
        })
    }

    #[test]
    fn a_nested_document_gives_its_record() {
        let text = crate::foreign::rebuild(&ecs().to_string()).expect("a record");
        let record: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(record["eventName"], "PutBucketPolicy");
        assert_eq!(record["eventSource"], "s3.amazonaws.com");
        assert_eq!(record["eventTime"], "2024-03-01T12:00:00.000Z");
        assert_eq!(record["awsRegion"], "us-east-1");
        assert_eq!(record["sourceIPAddress"], "198.51.100.7");
        assert_eq!(record["userIdentity"]["arn"], "arn:aws:iam::111122223333:user/alice");
        assert_eq!(record["userIdentity"]["accessKeyId"], "AKIAEXAMPLE");
        assert_eq!(record["userIdentity"]["accountId"], "111122223333");
        assert_eq!(
            record["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"],
            "arn:aws:iam::111122223333:role/r"
        );
        assert_eq!(
            record["requestParameters"]["bucketPolicy"]["Statement"][0]["Principal"],
            "*"
        );
        assert_eq!(record["readOnly"], false);
        assert_eq!(record["resources"][0]["ARN"], "arn:aws:s3:::b");
        assert_eq!(record["eventID"], "e-1");
    }

    #[test]
    fn dotted_and_mixed_keys_are_found() {
        let dotted = serde_json::json!({
            "@timestamp": "2024-03-01T12:00:00Z",
            "event.action": "StopLogging",
            "event.provider": "cloudtrail.amazonaws.com",
            "aws.cloudtrail.user_identity.type": "Root",
            "aws.cloudtrail": {"error_code": "AccessDenied"}
        });
        let record: Value =
            serde_json::from_str(&crate::foreign::rebuild(&dotted.to_string()).expect("a record")).expect("json");
        assert_eq!(
            (
                &record["eventName"],
                &record["userIdentity"]["type"],
                &record["errorCode"]
            ),
            (
                &Value::from("StopLogging"),
                &Value::from("Root"),
                &Value::from("AccessDenied")
            )
        );
    }

    #[test]
    fn other_documents_are_not_taken_for_cloudtrail() {
        for doc in [
            // Not an AWS service.
            serde_json::json!({"@timestamp": "t", "event": {"action": "login", "provider": "okta", "dataset": "aws.cloudtrail"}}),
            // No time.
            serde_json::json!({"event": {"action": "StopLogging", "provider": "cloudtrail.amazonaws.com", "dataset": "aws.cloudtrail"}}),
            // Another AWS dataset (VPC flow logs, GuardDuty...).
            serde_json::json!({"@timestamp": "t", "event": {"action": "x", "provider": "ec2.amazonaws.com", "dataset": "aws.guardduty"}}),
            serde_json::json!("a string that mentions amazonaws.com"),
        ] {
            assert!(crate::foreign::rebuild(&doc.to_string()).is_none(), "{doc}");
        }
    }
}
