//! The real `trailhound-lambda` binary driven through a Lambda Runtime API emulator, against
//! moto (trail and state buckets) and a local Slack receiver: every trigger kind end to end,
//! a bad object skipped, and no alert twice for a retried or duplicated event.

#[path = "../../trailhound-cli/tests/support/mod.rs"]
mod support;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Moto;
use support::http::{HttpServer, Request, Response};

const TRAIL: &str = "trail-bucket";
const STATE: &str = "state-bucket";
const EXAMPLE_DAY: &str = "examples/cloudtrail/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/20";

/// The example file holding StopLogging, and one of the same day with only routine calls.
fn example(stamp: &str) -> (String, Vec<u8>) {
    let dir = support::root().join(EXAMPLE_DAY);
    let name = std::fs::read_dir(&dir)
        .expect("day")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .find(|n| n.contains(stamp))
        .expect("example file");
    let key = format!("AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/20/{name}");
    (key, std::fs::read(dir.join(&name)).expect("bytes"))
}

fn s3_event(bucket: &str, key: &str) -> Value {
    json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-20T22:06:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": key.replace(' ', "+"), "size": 1024}}}]})
}

/// A Runtime API: hands out `events` in order, records responses and errors.
fn runtime_api(events: Vec<Value>) -> HttpServer {
    let queue = Arc::new(Mutex::new(
        events
            .into_iter()
            .enumerate()
            .map(|(i, e)| (format!("request-{i}"), e))
            .collect::<VecDeque<_>>(),
    ));
    HttpServer::start(move |request| {
        if request.path == "/2018-06-01/runtime/invocation/next" {
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                if let Some((id, event)) = queue.lock().ok().and_then(|mut q| q.pop_front()) {
                    let deadline_ms = chrono::Utc::now().timestamp_millis() + 300_000;
                    return Response {
                        status: 200,
                        headers: vec![
                            ("Content-Type".into(), "application/json".into()),
                            ("Lambda-Runtime-Aws-Request-Id".into(), id),
                            ("Lambda-Runtime-Deadline-Ms".into(), deadline_ms.to_string()),
                            (
                                "Lambda-Runtime-Invoked-Function-Arn".into(),
                                "arn:aws:lambda:us-east-1:123456789012:function:trailhound".into(),
                            ),
                            (
                                "Lambda-Runtime-Trace-Id".into(),
                                "Root=1-00000000-000000000000000000000000".into(),
                            ),
                        ],
                        body: event.to_string().into_bytes(),
                    };
                }
                if Instant::now() > deadline {
                    return Response {
                        status: 500,
                        headers: Vec::new(),
                        body: Vec::new(),
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Response {
            status: 202,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: b"{}".to_vec(),
        }
    })
}

/// The outcome of request `i`: its response document, or its error.
fn outcome(requests: &[Request], i: usize) -> Option<Result<Value, Value>> {
    let prefix = format!("/2018-06-01/runtime/invocation/request-{i}/");
    requests.iter().find_map(|r| {
        let rest = r.path.strip_prefix(&prefix)?;
        Some(if rest == "response" {
            Ok(r.json())
        } else {
            Err(r.json())
        })
    })
}

/// Starts the function's binary on the Runtime API `api`, with state in the state bucket and
/// the extra `env`.
fn spawn_function(
    api: &HttpServer,
    moto: &Moto,
    scratch: &std::path::Path,
    env: &[(&str, String)],
) -> std::process::Child {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_trailhound-lambda"));
    Command::new(bin)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{}", api.port))
        .env("AWS_LAMBDA_FUNCTION_NAME", "trailhound")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("TRAILHOUND_ENDPOINT_URL", moto.url())
        .env("TRAILHOUND_STATE", format!("s3://{STATE}/trailhound"))
        .env("TRAILHOUND_SCRATCH", scratch)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the bootstrap starts")
}

/// Waits for the outcomes of the first `count` invocations, stops the function, and returns
/// the response documents (an invocation error fails the test) and the function's log.
fn wait_for(api: &HttpServer, count: usize, child: std::process::Child) -> (Vec<Value>, String) {
    let mut child = child;
    let deadline = Instant::now() + Duration::from_secs(180);
    while (0..count).any(|i| outcome(&api.requests(), i).is_none()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let logs = child
        .wait_with_output()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .unwrap_or_default();
    let requests = api.requests();
    let results = (0..count)
        .map(|i| match outcome(&requests, i) {
            Some(Ok(value)) => value,
            other => panic!("invocation {i}: {other:?}\n{logs}"),
        })
        .collect();
    (results, logs)
}

#[test]
fn every_trigger_kind_runs_end_to_end_and_alerts_once() {
    let Some(moto) = Moto::start() else { return };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let s3 = moto.aws(&rt).s3(None);
    let put = |bucket: &str, key: &str, bytes: Vec<u8>| {
        rt.block_on(s3.put_object().bucket(bucket).key(key).body(bytes.into()).send())
            .expect("put");
    };
    for bucket in [TRAIL, STATE] {
        rt.block_on(s3.create_bucket().bucket(bucket).send()).expect("bucket");
    }
    let (attack_key, attack) = example("20261120T2211Z");
    let (routine_key, routine) = example("20261120T0802Z");
    let org_key = attack_key.replace("AWSLogs/111122223333/", "AWSLogs/o-exampleorg1/111122223333/");
    let bad_key = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/20/111122223333_CloudTrail_us-east-1_20261120T2300Z_bad file.json.gz";
    put(TRAIL, &attack_key, attack.clone());
    put(TRAIL, &routine_key, routine);
    put(TRAIL, &org_key, attack);
    put(TRAIL, bad_key, b"\x1f\x8b not really gzip".to_vec());

    let slack = HttpServer::start(|_| Response {
        status: 200,
        headers: Vec::new(),
        body: b"ok".to_vec(),
    });
    let direct = s3_event(TRAIL, &attack_key);
    let events = vec![
        direct.clone(),
        // Lambda retries an invocation, or S3 delivers an event twice: no second alert.
        direct.clone(),
        json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
            "Sns": {"Type": "Notification", "Message": s3_event(TRAIL, &routine_key).to_string()}}]}),
        json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m1", "body": s3_event(TRAIL, bad_key).to_string()}]}),
        // The same events delivered again by an organization trail's copy, through EventBridge.
        json!({"version": "0", "source": "aws.s3", "detail-type": "Object Created",
            "detail": {"bucket": {"name": TRAIL}, "object": {"key": org_key}}}),
        json!({"version": "0", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}),
    ];
    let count = events.len();
    let api = runtime_api(events);
    let scratch = tempfile::tempdir().expect("scratch");
    let env = [
        ("TRAILHOUND_ALERTS", "slack".to_string()),
        (
            "TRAILHOUND_SLACK_WEBHOOK_URL",
            format!("{}/services/T0/B0/SECRET", slack.url()),
        ),
        ("TRAILHOUND_SOURCES", format!("s3://{TRAIL}")),
        ("TRAILHOUND_SINCE", "2026-11-01T00:00:00Z".to_string()),
        ("TRAILHOUND_INVENTORY", "us-east-1".to_string()),
    ];
    let child = spawn_function(&api, &moto, scratch.path(), &env);
    let (results, logs) = wait_for(&api, count, child);
    assert!(!logs.contains("SECRET"), "the webhook URL never reaches the logs");
    // The function's log (per-invocation timings), for `--nocapture`.
    eprintln!("{logs}");

    // Direct S3 notification: the attack file's high and critical findings, alerted.
    let first = &results[0];
    assert_eq!(first["objects"], 1);
    let alerted = first["alerted"].as_u64().expect("alerted");
    assert_eq!(
        alerted, 1,
        "StopLogging, the one finding at high or above in that file: {first}"
    );
    // The retry: nothing new.
    assert_eq!(results[1]["alerted"], 0, "{}", results[1]);
    assert_eq!(results[1]["already_alerted"], alerted);
    // SNS: routine traffic, nothing at high.
    assert_eq!(results[2]["objects"], 1);
    assert_eq!(results[2]["alerted"], 0);
    // SQS: a bad object is reported and skipped, not retried.
    assert_eq!(results[3]["bad_files"], 1, "{}", results[3]);
    assert!(logs.contains("bad file.json.gz"), "the bad object is named: {logs}");
    // EventBridge, same events from another copy: deduplicated by event id.
    assert_eq!(results[4]["alerted"], 0, "{}", results[4]);
    assert_eq!(results[4]["already_alerted"], alerted);
    // The schedule: hunts the bucket from its cursor, audits the inventory.
    let schedule = &results[5];
    assert!(
        schedule["hunt"]["new_findings"].as_u64().is_some_and(|n| n > 0),
        "{schedule}"
    );
    assert!(schedule["inventory"]["new_findings"].is_u64(), "{schedule}");

    let messages = slack.requests();
    assert!(!messages.is_empty());
    let first_message = messages[0].json();
    let blocks = first_message["blocks"].as_array().map_or(0, Vec::len);
    assert_eq!(blocks as u64, 2 + alerted, "one section per alerted finding");
    assert!(first_message.to_string().contains("aws-cloudtrail-stop-logging"));
    // Every message was for new findings: none repeats the StopLogging alert.
    let stop_alerts = messages
        .iter()
        .filter(|m| String::from_utf8_lossy(&m.body).contains("aws-cloudtrail-stop-logging"))
        .count();
    assert_eq!(stop_alerts, 1);
    // State: one marker per alerted finding, and the store kept for the next schedule.
    let state_keys: Vec<String> = rt
        .block_on(s3.list_objects_v2().bucket(STATE).prefix("trailhound/").send())
        .expect("list")
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    assert!(state_keys.iter().any(|k| k == "trailhound/store.db"), "{state_keys:?}");
    assert!(
        state_keys.iter().any(|k| k == "trailhound/inventory/latest.json"),
        "{state_keys:?}"
    );
    let markers = state_keys
        .iter()
        .filter(|k| k.starts_with("trailhound/alerted/"))
        .count();
    assert!(markers as u64 >= alerted, "{state_keys:?}");
}

/// A delivery file of `count` denied calls by one user, one every ten seconds from `first`.
fn denied_file(first: u32, count: u32) -> Vec<u8> {
    let records: Vec<String> = (first..first + count)
        .map(|i| {
            format!(
                r#"{{"eventVersion":"1.08","eventTime":"2026-11-20T12:{:02}:{:02}Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7","errorCode":"AccessDenied","eventID":"denied-{i}","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/mallory","accessKeyId":"AKIAEXAMPLEMALLORY1"}}}}"#,
                i / 6,
                (i % 6) * 10
            )
        })
        .collect();
    format!("{{\"Records\":[{}]}}", records.join(",")).into_bytes()
}

/// 24 denied calls delivered in two objects, each hunted by its own invocation: the second
/// invocation continues the window the first left in the state, and the burst is alerted once,
/// even when the second object's event comes again.
#[test]
fn a_burst_split_across_two_objects_is_alerted_once() {
    let Some(moto) = Moto::start() else { return };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let s3 = moto.aws(&rt).s3(None);
    for bucket in [TRAIL, STATE] {
        rt.block_on(s3.create_bucket().bucket(bucket).send()).expect("bucket");
    }
    let day = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/20";
    let first = format!("{day}/111122223333_CloudTrail_us-east-1_20261120T1205Z_first.json");
    let second = format!("{day}/111122223333_CloudTrail_us-east-1_20261120T1210Z_second.json");
    for (key, bytes) in [(&first, denied_file(0, 12)), (&second, denied_file(12, 12))] {
        rt.block_on(s3.put_object().bucket(TRAIL).key(key).body(bytes.into()).send())
            .expect("put");
    }
    let rules = tempfile::tempdir().expect("rules");
    std::fs::write(
        rules.path().join("burst.yml"),
        "title: denied\nname: denied\nlogsource: {product: aws, service: cloudtrail}\nlevel: low\ndetection:\n  sel:\n    errorCode: AccessDenied\n  condition: sel\n---\ntitle: denied burst\nname: denied-burst\nlevel: high\ncorrelation:\n  type: event_count\n  rules: [denied]\n  group-by: [userIdentity.arn]\n  timespan: 10m\n  condition: {gte: 20}\n",
    )
    .expect("rule file");
    let slack = HttpServer::start(|_| Response {
        status: 200,
        headers: Vec::new(),
        body: b"ok".to_vec(),
    });
    let events = vec![
        s3_event(TRAIL, &first),
        s3_event(TRAIL, &second),
        s3_event(TRAIL, &second),
    ];
    let count = events.len();
    let api = runtime_api(events);
    let scratch = tempfile::tempdir().expect("scratch");
    let env = [
        ("TRAILHOUND_ALERTS", "slack".to_string()),
        ("TRAILHOUND_SLACK_WEBHOOK_URL", format!("{}/hook", slack.url())),
        ("TRAILHOUND_RULES", rules.path().display().to_string()),
        ("TRAILHOUND_NO_BUILTIN", "1".to_string()),
    ];
    let child = spawn_function(&api, &moto, scratch.path(), &env);
    let (results, logs) = wait_for(&api, count, child);
    assert_eq!(
        results[0]["alerted"], 0,
        "12 calls are no burst yet: {}\n{logs}",
        results[0]
    );
    assert_eq!(
        results[1]["alerted"], 1,
        "the second object completes it: {}\n{logs}",
        results[1]
    );
    // The same object again (a retried invocation): its matches are already in the state and
    // the burst was reported; nothing is found or alerted again.
    assert_eq!(results[2]["alerted"], 0, "a repeat of the object: {}", results[2]);
    assert_eq!(results[2]["findings"], 0, "{}", results[2]);
    let bursts = slack
        .requests()
        .iter()
        .filter(|m| String::from_utf8_lossy(&m.body).contains("denied-burst"))
        .count();
    assert_eq!(bursts, 1);
    let state = rt
        .block_on(s3.get_object().bucket(STATE).key("trailhound/correlations.json").send())
        .expect("the correlation state is kept in the state prefix");
    assert!(state.content_length().unwrap_or_default() > 0);
}
