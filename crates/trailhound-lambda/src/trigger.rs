//! What invoked the function: new objects (an S3 notification delivered directly, through SNS,
//! through SQS, or as an EventBridge "Object Created" event), or a schedule.
//!
//! Payloads are parsed loosely with serde_json: a record that is not understood is skipped and
//! named, never a panic. S3 notification keys are URL-encoded (`+` for a space); they are decoded.

use serde_json::Value;

/// One object to scan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Object {
    pub bucket: String,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// New CloudTrail objects (digests and other files already dropped).
    Objects(Vec<Object>),
    /// An EventBridge schedule: hunt since the last run and audit the inventory.
    Schedule,
    /// Nothing to do (an s3:TestEvent, only digests); the reason is logged.
    Ignored(String),
}

/// Reads the payload.
pub fn parse(payload: &Value) -> Trigger {
    if payload["detail-type"] == "Scheduled Event" || payload["trailhound"] == "schedule" {
        return Trigger::Schedule;
    }
    let mut objects = Vec::new();
    collect(payload, &mut objects, 0);
    objects.retain(|o| is_trail_object(&o.key));
    objects.sort();
    objects.dedup();
    if objects.is_empty() {
        Trigger::Ignored("no CloudTrail log object in the event".into())
    } else {
        Trigger::Objects(objects)
    }
}

/// Gathers objects from any of the envelopes, unwrapping SNS and SQS (at most a few levels).
fn collect(value: &Value, out: &mut Vec<Object>, depth: usize) {
    if depth > 4 {
        return;
    }
    // EventBridge: {"source": "aws.s3", "detail-type": "Object Created", "detail": {...}}
    if value["detail-type"] == "Object Created" {
        if let (Some(bucket), Some(key)) = (
            value["detail"]["bucket"]["name"].as_str(),
            value["detail"]["object"]["key"].as_str(),
        ) {
            out.push(Object {
                bucket: bucket.to_string(),
                key: key.to_string(),
            });
        }
        return;
    }
    // An SNS notification body inside SQS: {"Type": "Notification", "Message": "..."}
    if value["Type"] == "Notification"
        && let Some(message) = value["Message"].as_str()
    {
        if let Ok(inner) = serde_json::from_str::<Value>(message) {
            collect(&inner, out, depth + 1);
        }
        return;
    }
    let Some(records) = value["Records"].as_array() else {
        return;
    };
    for record in records {
        let source = record["eventSource"]
            .as_str()
            .or(record["EventSource"].as_str())
            .unwrap_or_default();
        match source {
            "aws:s3" => {
                if !record["eventName"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("ObjectCreated")
                {
                    continue;
                }
                if let (Some(bucket), Some(key)) = (
                    record["s3"]["bucket"]["name"].as_str(),
                    record["s3"]["object"]["key"].as_str(),
                ) {
                    out.push(Object {
                        bucket: bucket.to_string(),
                        key: url_decode(key),
                    });
                }
            }
            "aws:sns" => {
                if let Some(message) = record["Sns"]["Message"].as_str()
                    && let Ok(inner) = serde_json::from_str::<Value>(message)
                {
                    collect(&inner, out, depth + 1);
                }
            }
            "aws:sqs" => {
                if let Some(body) = record["body"].as_str()
                    && let Ok(inner) = serde_json::from_str::<Value>(body)
                {
                    collect(&inner, out, depth + 1);
                }
            }
            other => tracing::warn!("event record from {other:?} not understood; skipped"),
        }
    }
}

/// CloudTrail log objects (the trail's and CloudTrail Insights'), not digests, nor the logs of
/// other services that share the bucket (`AWSLogs/ACCOUNT/Config/...`).
fn is_trail_object(key: &str) -> bool {
    !key.contains("CloudTrail-Digest/")
        && !trailhound_source::is_other_service_path(std::path::Path::new(key))
        && (key.ends_with(".json.gz") || key.ends_with(".json"))
}

/// S3 notification keys: `+` is a space, `%XX` a byte.
fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/20/111122223333_CloudTrail_us-east-1_20261120T2205Z_abc.json.gz";

    fn s3_event(key: &str) -> Value {
        json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "trail-bucket"}, "object": {"key": key, "size": 100}}}]})
    }

    fn expected() -> Trigger {
        Trigger::Objects(vec![Object {
            bucket: "trail-bucket".into(),
            key: KEY.into(),
        }])
    }

    #[test]
    fn every_envelope_yields_the_object() {
        let direct = s3_event(KEY);
        assert_eq!(parse(&direct), expected());
        let sns = json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": direct.to_string()}}]});
        assert_eq!(parse(&sns), expected());
        let sqs = json!({"Records": [{"eventSource": "aws:sqs", "body": direct.to_string()}]});
        assert_eq!(parse(&sqs), expected());
        let sqs_sns = json!({"Records": [{"eventSource": "aws:sqs",
            "body": json!({"Type": "Notification", "Message": direct.to_string()}).to_string()}]});
        assert_eq!(parse(&sqs_sns), expected());
        let bridge = json!({"source": "aws.s3", "detail-type": "Object Created",
            "detail": {"bucket": {"name": "trail-bucket"}, "object": {"key": KEY}}});
        assert_eq!(parse(&bridge), expected());
        let schedule = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
        assert_eq!(parse(&schedule), Trigger::Schedule);
    }

    #[test]
    fn digests_tests_and_junk_are_ignored() {
        let digest = s3_event("AWSLogs/1/CloudTrail-Digest/us-east-1/2026/11/20/x.json.gz");
        assert!(matches!(parse(&digest), Trigger::Ignored(_)));
        // CloudTrail Insights files are hunted like the trail's.
        let insight = s3_event("AWSLogs/1/CloudTrail-Insight/us-east-1/2026/11/20/x.json.gz");
        assert!(matches!(parse(&insight), Trigger::Objects(_)), "{:?}", parse(&insight));
        // Other services' logs in the same bucket (a notification on the whole AWSLogs/ prefix).
        let config = s3_event("AWSLogs/111122223333/Config/us-east-1/2026/11/20/ConfigSnapshot/x.json.gz");
        assert!(matches!(parse(&config), Trigger::Ignored(_)), "{:?}", parse(&config));
        assert!(matches!(parse(&json!({"Event": "s3:TestEvent"})), Trigger::Ignored(_)));
        assert!(matches!(
            parse(&json!({"Records": [{"eventSource": "aws:sqs", "body": "not json"}]})),
            Trigger::Ignored(_)
        ));
        assert!(matches!(parse(&json!(42)), Trigger::Ignored(_)));
        assert_eq!(url_decode("a+b%2Fc%zz%4"), "a b/c%zz%4");
    }
}
