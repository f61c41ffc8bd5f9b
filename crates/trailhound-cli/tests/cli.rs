//! Drives the real `trailhound` binary over fixtures: formats, sources, windows, hostile input,
//! exit codes, rule tooling and the bundled example.

use std::io::Write;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(path: &str) -> PathBuf {
    root().join("tests/fixtures").join(path)
}

fn trailhound() -> Command {
    let mut cmd = Command::cargo_bin("trailhound").expect("binary built");
    cmd.env_remove("NO_COLOR").env_remove("TRAILHOUND_LOG");
    cmd
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    run_with(trailhound().args(args))
}

fn run_with(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn jsonl(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

fn rule_ids(findings: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = findings
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// A CloudTrail record with the given name and source, and overrides.
fn record(name: &str, source: &str, time: &str, extra: Value) -> Value {
    let mut r = json!({
        "eventVersion": "1.09", "eventTime": time, "eventSource": source, "eventName": name,
        "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15.0",
        "eventID": format!("id-{name}-{time}"), "eventType": "AwsApiCall", "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice", "accountId": "111122223333",
                         "accessKeyId": "AKIAEXAMPLE", "userName": "alice"},
        "requestParameters": {"name": "management-trail"}, "responseElements": null
    });
    if let (Some(base), Value::Object(extra)) = (r.as_object_mut(), extra) {
        base.extend(extra);
    }
    r
}

fn stop_logging(time: &str) -> Value {
    record("StopLogging", "cloudtrail.amazonaws.com", time, json!({}))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("write");
    enc.finish().expect("finish")
}

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&path, data).expect("write fixture");
    path
}

const FINDING_FIELDS: [&str; 17] = [
    "rule_id",
    "rule_title",
    "level",
    "tags",
    "event_id",
    "event_time",
    "event_name",
    "event_source",
    "aws_region",
    "account_id",
    "principal_arn",
    "principal_type",
    "access_key_id",
    "source_ip",
    "user_agent",
    "error_code",
    "source_file",
];

#[test]
fn json_findings_have_exactly_the_contract_fields() {
    let file = fixture("stratus/aws.defense-evasion.cloudtrail-stop.json");
    let out = run(&["hunt", file.to_str().expect("utf8"), "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let findings: Vec<Value> = serde_json::from_str(&out.stdout).expect("one JSON array");
    let stop = findings
        .iter()
        .find(|f| f["rule_id"] == "aws-cloudtrail-stop-logging")
        .expect("StopLogging found");
    let mut keys: Vec<&str> = stop.as_object().expect("object").keys().map(String::as_str).collect();
    keys.sort();
    let mut expected = FINDING_FIELDS.to_vec();
    // The derived fields (README, "Context") come with every event finding of a hunt.
    expected.push("trailhound");
    expected.sort();
    assert_eq!(keys, expected);
    assert_eq!(stop["level"], "critical");
    assert_eq!(stop["event_time"], "2024-07-31T13:06:24Z");
    assert_eq!(stop["principal_arn"], "arn:aws:iam::143434273843:user/christophe");
    assert_eq!(stop["access_key_id"], "AKIAGGWFBBHBE7D3M9WI");
    assert_eq!(stop["account_id"], "143434273843");
    assert_eq!(stop["source_file"], file.to_str().expect("utf8"));
    assert!(
        stop["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "attack.t1562.008"))
    );
    assert!(out.stderr.contains("1 files read"), "{}", out.stderr);
}

#[test]
fn jsonl_csv_table_and_with_event() {
    let file = fixture("stratus/aws.defense-evasion.cloudtrail-stop.json");
    let file = file.to_str().expect("utf8");
    let lines = jsonl(&run(&["hunt", file, "--format", "jsonl", "--with-event"]).stdout);
    assert!(!lines.is_empty());
    assert_eq!(
        lines[0]["event"]["eventName"], "StopLogging",
        "--with-event carries the record"
    );

    let csv = run(&["hunt", file, "--format", "csv"]).stdout;
    let mut rows = csv.lines();
    // The contract fields first, then the derived fields people slice on (README, "Context").
    let header = rows.next().expect("a header");
    assert!(
        header.starts_with(&format!("{},", FINDING_FIELDS.join(","))),
        "{header}"
    );
    assert!(
        header.ends_with(",principal_kind,principal_by_aws,baseline_normal"),
        "{header}"
    );
    let plain = run(&["hunt", file, "--format", "csv", "--no-context"]).stdout;
    assert_eq!(plain.lines().next(), Some(FINDING_FIELDS.join(",").as_str()));
    assert!(rows.any(|r| r.starts_with("aws-cloudtrail-stop-logging,")), "{csv}");

    let table = run(&["hunt", file, "--format", "table"]).stdout;
    let header = table.lines().next().unwrap_or_default();
    for column in ["TIME", "LEVEL", "RULE", "EVENT", "PRINCIPAL", "SOURCE IP", "ACCESS KEY"] {
        assert!(header.contains(column), "{header}");
    }
    assert!(table.contains("aws-cloudtrail-stop-logging") && table.contains("critical"));
    assert!(!table.contains('\u{1b}'), "no colour when stdout is not a terminal");
}

#[test]
fn output_file_takes_its_format_from_the_extension() {
    let dir = tempfile::tempdir().expect("tmp");
    let out_path = dir.path().join("findings.csv");
    let file = fixture("stratus/aws.defense-evasion.cloudtrail-stop.json");
    let out = run(&[
        "hunt",
        file.to_str().expect("utf8"),
        "-o",
        out_path.to_str().expect("utf8"),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.is_empty(), "findings went to the file");
    let text = std::fs::read_to_string(&out_path).expect("written");
    assert!(text.starts_with("rule_id,rule_title,level"), "{text}");
}

#[test]
fn every_document_shape_gives_the_same_findings() {
    let dir = tempfile::tempdir().expect("tmp");
    let records = vec![
        stop_logging("2024-03-01T12:00:00Z"),
        record(
            "CreateUser",
            "iam.amazonaws.com",
            "2024-03-01T12:01:00Z",
            json!({"requestParameters": {"userName": "backup"}}),
        ),
        record(
            "DescribeInstances",
            "ec2.amazonaws.com",
            "2024-03-01T12:02:00Z",
            json!({}),
        ),
    ];
    let envelope = serde_json::to_vec(&json!({"Records": records})).expect("json");
    let array = serde_json::to_vec(&records).expect("json");
    let ndjson: Vec<u8> = records.iter().flat_map(|r| format!("{r}\n").into_bytes()).collect();
    // What jq makes of delivered files: `jq -s .` (an array of envelopes) and `jq -c .Records`
    // (one array of records a line).
    let slurped = serde_json::to_vec(&json!([{"Records": records[..1]}, {"Records": records[1..]}])).expect("json");
    let record_lists = format!("{}\n{}\n", json!(records[..1]), json!(records[1..])).into_bytes();
    let shapes: Vec<(&str, Vec<u8>)> = vec![
        ("envelope.json", envelope.clone()),
        ("envelope.json.gz", gzip(&envelope)),
        ("gzip-without-extension.json", gzip(&envelope)),
        ("array.json", array),
        ("lines.jsonl", ndjson.clone()),
        ("lines.ndjson.gz", gzip(&ndjson)),
        ("jq-slurped.json", slurped.clone()),
        ("jq-record-lists.jsonl", record_lists.clone()),
    ];
    // CloudTrail as other AWS services carry it: LookupEvents output (`aws cloudtrail
    // lookup-events`, and its results one a line), EventBridge events, CloudWatch Logs (a
    // subscription's messages through Firehose, FilterLogEvents output, an export to S3).
    let results: Vec<Value> = records
        .iter()
        .map(|r| json!({"EventId": r["eventID"], "EventName": r["eventName"], "Resources": [], "CloudTrailEvent": r.to_string()}))
        .collect();
    let lookup = serde_json::to_vec_pretty(&json!({"Events": results, "NextToken": "x"})).expect("json");
    let lookup_lines: Vec<u8> = results.iter().flat_map(|r| format!("{r}\n").into_bytes()).collect();
    let eventbridge: Vec<u8> = records
        .iter()
        .map(|r| json!({"version": "0", "id": "e", "detail-type": "AWS API Call via CloudTrail", "source": "aws.cloudtrail", "detail": r}))
        .flat_map(|e| format!("{e}\n").into_bytes())
        .collect();
    let log_events: Vec<Value> = records
        .iter()
        .map(|r| json!({"id": "1", "timestamp": 1709294400000u64, "message": r.to_string()}))
        .collect();
    let control = json!({"messageType": "CONTROL_MESSAGE", "logEvents": [{"id": "", "timestamp": 1, "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}]});
    let subscription = format!(
        "{control}{}{}",
        json!({"messageType": "DATA_MESSAGE", "logGroup": "trail", "logEvents": log_events[..2]}),
        json!({"messageType": "DATA_MESSAGE", "logGroup": "trail", "logEvents": log_events[2..]})
    );
    let filtered = serde_json::to_vec(&json!({"events": log_events, "searchedLogStreams": []})).expect("json");
    let exported: Vec<u8> = records
        .iter()
        .flat_map(|r| format!("{} {r}\n", r["eventTime"].as_str().unwrap_or_default()).into_bytes())
        .collect();
    // Search exports: Splunk's (one result a line, the record as text in `_raw`, beside the
    // fields Splunk extracted), Elasticsearch's (a `_search` response; one hit a line, each an
    // ECS document keeping the record's text in `event.original`).
    let splunk: Vec<u8> = records
        .iter()
        .enumerate()
        .map(|(i, r)| json!({"preview": false, "offset": i, "result": {"_raw": r.to_string(), "_time": r["eventTime"], "eventName": "Extracted", "sourcetype": "aws:cloudtrail"}}))
        .flat_map(|e| format!("{e}\n").into_bytes())
        .collect();
    let hits: Vec<Value> = records
        .iter()
        .map(|r| json!({"_index": "cloudtrail", "_id": r["eventID"], "_score": 1.0, "_source": r}))
        .collect();
    let search =
        serde_json::to_vec(&json!({"took": 2, "timed_out": false, "hits": {"total": {"value": 3}, "hits": hits}}))
            .expect("json");
    let ecs: Vec<u8> = records
        .iter()
        .map(|r| json!({"_index": "logs-aws.cloudtrail-default", "_source": {"@timestamp": r["eventTime"], "event": {"action": r["eventName"], "original": r.to_string()}, "cloud": {"provider": "aws"}}}))
        .flat_map(|e| format!("{e}\n").into_bytes())
        .collect();
    // The same hits as Elastic's AWS integration indexes them by default: no `event.original`,
    // the record as renamed fields.
    let ecs_fields: Vec<u8> = records
        .iter()
        .map(|r| {
            json!({"_index": "logs-aws.cloudtrail-default", "_source": {
                "@timestamp": r["eventTime"],
                "event": {"action": r["eventName"], "provider": r["eventSource"], "id": r["eventID"], "dataset": "aws.cloudtrail"},
                "cloud": {"region": r["awsRegion"], "account": {"id": r["recipientAccountId"]}},
                "source": {"address": r["sourceIPAddress"]},
                "user_agent": {"original": r["userAgent"]},
                "aws": {"cloudtrail": {
                    "event_type": r["eventType"],
                    "request_parameters": r["requestParameters"].to_string(),
                    "user_identity": {"type": r["userIdentity"]["type"], "arn": r["userIdentity"]["arn"], "access_key_id": r["userIdentity"]["accessKeyId"]}
                }}
            }})
        })
        .flat_map(|e| format!("{e}\n").into_bytes())
        .collect();
    // Amazon Security Lake's copy (OCSF API Activity, as an Athena UNLOAD writes it): the
    // record as renamed fields, the request parameters as JSON text.
    let ocsf: Vec<u8> = records
        .iter()
        .map(|r| {
            json!({
                "class_uid": 6003, "class_name": "API Activity", "severity_id": 1,
                "time_dt": r["eventTime"],
                "metadata": {"uid": r["eventID"], "event_code": r["eventType"], "version": "1.1.0",
                    "product": {"name": "CloudTrail", "vendor_name": "AWS", "version": r["eventVersion"]}},
                "cloud": {"provider": "AWS", "region": r["awsRegion"], "account": {"uid": r["recipientAccountId"]}},
                "api": {"operation": r["eventName"], "service": {"name": r["eventSource"]},
                    "request": {"data": r["requestParameters"].to_string()}},
                "actor": {"user": {"type": r["userIdentity"]["type"], "uid": r["userIdentity"]["arn"],
                    "credential_uid": r["userIdentity"]["accessKeyId"]}},
                "src_endpoint": {"ip": r["sourceIPAddress"]},
                "http_request": {"user_agent": r["userAgent"]}
            })
        })
        .flat_map(|e| format!("{e}\n").into_bytes())
        .collect();
    let carried: Vec<(&str, Vec<u8>)> = vec![
        ("security-lake-ocsf.ndjson", ocsf),
        ("elastic-ecs-fields.ndjson", ecs_fields),
        ("splunk-export.json", splunk),
        ("elasticsearch-search.json", search),
        ("elastic-agent-hits.ndjson", ecs),
        ("lookup-events.json", lookup.clone()),
        ("lookup-results.jsonl", lookup_lines),
        ("eventbridge.jsonl", eventbridge),
        ("firehose-cloudwatch-logs.gz", gzip(subscription.as_bytes())),
        ("filter-log-events.json", filtered),
        ("cloudwatch-export/000000.gz", gzip(&exported)),
    ];
    // What Windows PowerShell 5 writes (`aws cloudtrail lookup-events > events.json`,
    // `Out-File`): UTF-16 little-endian with its mark, CRLF line ends; and UTF-16 without one.
    let utf16 = |text: &str, big_endian: bool| -> Vec<u8> {
        text.encode_utf16()
            .flat_map(|unit| match big_endian {
                true => unit.to_be_bytes(),
                false => unit.to_le_bytes(),
            })
            .collect()
    };
    let powershell = utf16(
        &format!("\u{feff}{}", String::from_utf8_lossy(&lookup).replace('\n', "\r\n")),
        false,
    );
    let unmarked_utf16 = utf16(&String::from_utf8_lossy(&ndjson), true);
    let carried: Vec<(&str, Vec<u8>)> = carried
        .into_iter()
        .chain([
            ("lookup-events-powershell.json", powershell.clone()),
            ("utf16be.jsonl.gz", gzip(&unmarked_utf16)),
        ])
        .collect();
    let shapes: Vec<(&str, Vec<u8>)> = shapes.into_iter().chain(carried).collect();
    for (name, data) in &shapes {
        let path = write(dir.path(), name, data);
        let out = run(&["hunt", path.to_str().expect("utf8"), "--format", "jsonl"]);
        assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        let ids = rule_ids(&jsonl(&out.stdout));
        assert!(
            ids.contains(&"aws-cloudtrail-stop-logging".into()) && ids.contains(&"aws-iam-user-created".into()),
            "{name}: {ids:?}"
        );
        assert!(
            out.stderr.contains("3 records, 3 in the window"),
            "{name}: {}",
            out.stderr
        );
    }
    // A single record object, and stdin.
    let single = write(
        dir.path(),
        "single.json",
        &serde_json::to_vec_pretty(&records[0]).expect("json"),
    );
    assert_eq!(
        rule_ids(&jsonl(&run(&["hunt", single.to_str().expect("utf8")]).stdout)),
        ["aws-cloudtrail-stop-logging"]
    );
    let out = run_with(
        trailhound()
            .args(["hunt", "-", "--format", "jsonl"])
            .write_stdin(gzip(&envelope)),
    );
    let findings = jsonl(&out.stdout);
    assert!(
        rule_ids(&findings).contains(&"aws-cloudtrail-stop-logging".into()),
        "{}",
        out.stderr
    );
    assert_eq!(findings[0]["source_file"], "<stdin>");
    for data in [slurped, record_lists, lookup, powershell] {
        let out = run_with(trailhound().args(["hunt", "-", "--format", "jsonl"]).write_stdin(data));
        assert!(out.stderr.contains("3 records, 3 in the window"), "{}", out.stderr);
    }
    // A folder: every shape above, read recursively, findings sorted by time.
    let out = run(&["hunt", dir.path().to_str().expect("utf8"), "--format", "jsonl"]);
    let findings = jsonl(&out.stdout);
    let times: Vec<&str> = findings
        .iter()
        .map(|f| f["event_time"].as_str().unwrap_or_default())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(out.stderr.contains("22 files read"), "{}", out.stderr);
    assert!(!out.stderr.contains("invalid"), "{}", out.stderr);
}

/// A CloudTrail record as Amazon Security Lake keeps it (OCSF 1.1 API Activity), after the
/// published mapping: renamed fields, JSON kept as text, the rest in `unmapped`.
fn ocsf_of(r: &Value) -> Value {
    let id = &r["userIdentity"];
    let context = &id["sessionContext"];
    let text = |v: &Value| {
        if v.is_null() {
            Value::Null
        } else {
            Value::String(v.to_string())
        }
    };
    let mut unmapped = serde_json::Map::new();
    for key in [
        "sessionCredentialFromConsole",
        "additionalEventData",
        "sharedEventID",
        "tlsDetails",
        "readOnly",
    ] {
        match &r[key] {
            Value::Null => {}
            Value::Object(_) => {
                unmapped.insert(key.into(), text(&r[key]));
            }
            Value::Bool(b) => {
                unmapped.insert(key.into(), Value::String(b.to_string()));
            }
            other => {
                unmapped.insert(key.into(), other.clone());
            }
        }
    }
    if let Some(delivery) = context.get("ec2RoleDelivery") {
        unmapped.insert("userIdentity.sessionContext.ec2RoleDelivery".into(), delivery.clone());
    }
    let resources: Vec<Value> = r["resources"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|x| json!({"uid": x["ARN"], "type": x["type"], "owner": {"account": {"uid": x["accountId"]}}}))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "class_uid": 6003, "time_dt": r["eventTime"],
        "metadata": {"uid": r["eventID"], "event_code": r["eventType"],
            "product": {"name": "CloudTrail", "vendor_name": "AWS", "version": r["eventVersion"]}},
        "cloud": {"region": r["awsRegion"], "account": {"uid": r["recipientAccountId"]}},
        "api": {"operation": r["eventName"], "service": {"name": r["eventSource"]},
            "request": {"uid": r["requestID"], "data": text(&r["requestParameters"])},
            "response": {"error": r["errorCode"], "message": r["errorMessage"], "data": text(&r["responseElements"])}},
        "actor": {"user": {"type": id["type"], "uid": id["arn"], "uid_alt": id["principalId"],
                "credential_uid": id["accessKeyId"], "name": id["userName"], "account": {"uid": id["accountId"]}},
            "session": {"issuer": context["sessionIssuer"]["arn"],
                "is_mfa": context["attributes"]["mfaAuthenticated"] == "true",
                "created_time_dt": context["attributes"]["creationDate"]},
            "invoked_by": id["invokedBy"]},
        "src_endpoint": {"ip": r["sourceIPAddress"], "uid": r["vpcEndpointId"]},
        "http_request": {"user_agent": r["userAgent"]},
        "resources": resources,
        "unmapped": unmapped,
    })
}

#[test]
fn security_lake_copies_of_the_stratus_detonations_give_the_same_findings() {
    let dir = tempfile::tempdir().expect("tmp");
    let (records_dir, ocsf_dir) = (dir.path().join("records"), dir.path().join("ocsf"));
    let mut files = 0;
    for entry in std::fs::read_dir(fixture("stratus")).expect("stratus fixtures") {
        let path = entry.expect("entry").path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| n.ends_with(".json"))
        else {
            continue;
        };
        let data: Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        // A detonation log is a list of records, an envelope of them, or one record.
        let records = match (data.as_array(), data["Records"].as_array()) {
            (Some(list), _) | (None, Some(list)) => list.clone(),
            (None, None) => vec![data.clone()],
        };
        let ocsf: String = records.iter().map(|r| format!("{}\n", ocsf_of(r))).collect();
        write(&records_dir, name, &serde_json::to_vec(&data).expect("json"));
        write(&ocsf_dir, &format!("{name}l"), ocsf.as_bytes());
        files += 1;
    }
    assert!(files >= 30, "{files} detonation logs");
    let findings = |dir: &Path| -> Vec<(String, String)> {
        let out = run(&["hunt", dir.to_str().expect("utf8"), "--format", "jsonl"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let mut found: Vec<(String, String)> = jsonl(&out.stdout)
            .iter()
            .map(|f| (f["rule_id"].to_string(), f["event_id"].to_string()))
            .collect();
        found.sort();
        found
    };
    let (from_records, from_ocsf) = (findings(&records_dir), findings(&ocsf_dir));
    assert!(from_records.len() > 300, "{}", from_records.len());
    let only = |a: &[(String, String)], b: &[(String, String)]| -> Vec<(String, String)> {
        a.iter().filter(|x| !b.contains(x)).cloned().collect()
    };
    assert_eq!(
        (only(&from_records, &from_ocsf), only(&from_ocsf, &from_records)),
        (vec![], vec![]),
        "(only from the records, only from the OCSF copies)"
    );
    assert_eq!(from_records.len(), from_ocsf.len());
}

#[test]
fn archives_of_logs_are_hunted_as_their_files() {
    // Logs handed over as an archive (zip, tar, tar.gz): hunted without unpacking, each
    // entry named inside its archive, the window applied to the entries' delivery times.
    let dir = tempfile::tempdir().expect("tmp");
    let day = |d: u32| {
        let trail = serde_json::to_vec(&json!({"Records": [stop_logging(&format!("2024-01-{d:02}T00:00:00Z"))]}))
            .expect("json");
        (
            format!(
                "AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/{d:02}/111122223333_CloudTrail_us-east-1_202401{d:02}T0000Z_a.json.gz"
            ),
            gzip(&trail),
        )
    };
    let entries = [day(1), day(20)];
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in &entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, path, data.as_slice()).expect("append");
    }
    let tar = builder.into_inner().expect("tar");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (path, data) in &entries {
        zip.start_file(path.as_str(), zip::write::SimpleFileOptions::default())
            .expect("entry");
        zip.write_all(data).expect("write");
    }
    let zip = zip.finish().expect("zip").into_inner();
    for (name, data) in [
        ("logs.tar", tar.clone()),
        ("logs.tar.gz", gzip(&tar)),
        ("logs.zip", zip),
    ] {
        let path = write(dir.path(), name, &data);
        let out = run(&["hunt", path.to_str().expect("utf8"), "--format", "jsonl"]);
        let findings = jsonl(&out.stdout);
        assert_eq!(findings.len(), 2, "{name}: {}", out.stderr);
        let source = findings[0]["source_file"].as_str().unwrap_or_default();
        assert!(
            source.ends_with(&format!("{name}!/{}", entries[0].0)),
            "{name}: {source}"
        );
        let out = run(&[
            "hunt",
            path.to_str().expect("utf8"),
            "--format",
            "jsonl",
            "--since",
            "2024-01-10",
        ]);
        assert_eq!(jsonl(&out.stdout).len(), 1, "{name}: {}", out.stderr);
        assert!(out.stderr.contains("1 outside the window"), "{name}: {}", out.stderr);
        std::fs::remove_file(&path).expect("rm");
    }
}

#[test]
fn other_services_logs_beside_the_trail_are_skipped_and_counted() {
    // One bucket often takes a trail's logs and other services' (VPC flow logs, load balancer
    // access logs, Config): pointed at AWSLogs/, a hunt reads the trail's only.
    let dir = tempfile::tempdir().expect("tmp");
    let account = "AWSLogs/o-abc123def4/111122223333";
    let trail = serde_json::to_vec(&json!({"Records": [stop_logging("2024-01-01T00:00:00Z")]})).expect("json");
    write(
        dir.path(),
        &format!(
            "{account}/CloudTrail/us-east-1/2024/01/01/111122223333_CloudTrail_us-east-1_20240101T0000Z_abc.json.gz"
        ),
        &gzip(&trail),
    );
    let flow = b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n";
    write(
        dir.path(),
        &format!(
            "{account}/vpcflowlogs/us-east-1/2024/01/01/111122223333_vpcflowlogs_us-east-1_fl-1_20240101T0000Z_abc.log.gz"
        ),
        &gzip(flow),
    );
    write(
        dir.path(),
        &format!(
            "{account}/elasticloadbalancing/us-east-1/2024/01/01/111122223333_elasticloadbalancing_us-east-1_app.web_20240101T0000Z_abc.log.gz"
        ),
        &gzip(b"https 2024-01-01T00:00:00.000000Z app/web/1 198.51.100.1:5 10.0.0.1:80\n"),
    );
    let config = json!({"fileVersion": "1.0", "configurationItems": [{"resourceType": "AWS::EC2::VPC"}]});
    let config_file = write(
        dir.path(),
        &format!(
            "{account}/Config/us-east-1/2024/1/1/ConfigSnapshot/111122223333_Config_us-east-1_ConfigSnapshot_x.json.gz"
        ),
        &gzip(config.to_string().as_bytes()),
    );
    let out = run(&[
        "hunt",
        dir.path().to_str().expect("utf8"),
        "--format",
        "jsonl",
        "--strict",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(rule_ids(&jsonl(&out.stdout)), ["aws-cloudtrail-stop-logging"]);
    assert!(out.stderr.contains("1 files read"), "{}", out.stderr);
    assert!(
        out.stderr.contains("skipped: 3 files of other AWS services' logs"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("problems"), "{}", out.stderr);
    // A file named on the command line is read as given.
    let out = run(&["hunt", config_file.to_str().expect("utf8")]);
    assert!(out.stderr.contains("1 JSON file not CloudTrail"), "{}", out.stderr);
}

#[test]
fn insights_events_are_read_and_their_bursts_reported() {
    // CloudTrail Insights files lie beside the trail's, with records that have no eventName,
    // eventSource or userIdentity of their own.
    let dir = tempfile::tempdir().expect("tmp");
    let insight = |state: &str, time: &str| {
        json!({"eventVersion": "1.07", "eventTime": time, "awsRegion": "us-east-1", "eventID": format!("i-{state}"),
            "eventType": "AwsCloudTrailInsight", "recipientAccountId": "111122223333", "sharedEventID": "s1",
            "insightDetails": {"state": state, "eventSource": "iam.amazonaws.com", "eventName": "CreateAccessKey",
                "insightType": "ApiCallRateInsight",
                "insightContext": {"statistics": {"baseline": {"average": 0.001}, "insight": {"average": 3.5}}}},
            "eventCategory": "Insight"})
    };
    write(
        dir.path(),
        "AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2024/03/01/111122223333_CloudTrail-Insight_us-east-1_20240301T1215Z_a.json.gz",
        &gzip(
            json!({"Records": [insight("Start", "2024-03-01T12:00:00Z"), insight("End", "2024-03-01T12:05:00Z")]})
                .to_string()
                .as_bytes(),
        ),
    );
    write(
        dir.path(),
        "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T1205Z_b.json.gz",
        &gzip(
            json!({"Records": [stop_logging("2024-03-01T12:01:00Z")]})
                .to_string()
                .as_bytes(),
        ),
    );
    let out = run(&["hunt", dir.path().to_str().expect("utf8"), "--format", "jsonl"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("3 records, 3 in the window"), "{}", out.stderr);
    assert!(!out.stderr.contains("invalid"), "{}", out.stderr);
    let findings = jsonl(&out.stdout);
    assert_eq!(
        rule_ids(&findings),
        ["aws-cloudtrail-insight-started", "aws-cloudtrail-stop-logging"]
    );
    let burst = findings
        .iter()
        .find(|f| f["rule_id"] == "aws-cloudtrail-insight-started")
        .expect("the burst");
    // The finding names the call the burst is about, and no principal.
    assert_eq!(
        (
            &burst["event_name"],
            &burst["event_source"],
            &burst["event_id"],
            &burst["principal_arn"]
        ),
        (
            &json!("CreateAccessKey"),
            &json!("iam.amazonaws.com"),
            &json!("i-Start"),
            &Value::Null
        )
    );
    // An Insights event is nobody's activity: the summary counts the calls, not the report.
    let out = run(&["summary", dir.path().to_str().expect("utf8"), "--format", "json"]);
    let summary: Value = serde_json::from_str(&out.stdout).expect("json");
    let principals: Vec<&str> = summary["top_principals"]
        .as_array()
        .expect("principals")
        .iter()
        .filter_map(|p| p["principal"].as_str())
        .collect();
    assert_eq!(principals, ["arn:aws:iam::111122223333:user/alice"], "{}", out.stdout);
}

#[test]
fn records_that_went_through_logstash_keep_their_time_in_at_timestamp() {
    // A real attack (OTRF's CloudGoat dataset) shipped through Logstash, whose CloudTrail codec
    // moves eventTime to @timestamp: every record is read, and the stolen instance credentials
    // used from the intruder's address are found.
    let file = fixture("otrf/ec2_proxy_s3_exfiltration_2020-09-14011940.json");
    let out = run(&["hunt", file.to_str().expect("utf8"), "--format", "jsonl"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("103 records, 103 in the window"), "{}", out.stderr);
    assert!(!out.stderr.contains("invalid"), "{}", out.stderr);
    let findings = jsonl(&out.stdout);
    let ids = rule_ids(&findings);
    assert!(
        ids.contains(&"aws-context-instance-credentials-from-person-address".into())
            && ids.contains(&"aws-context-instance-credentials-from-macos-client".into()),
        "{ids:?}"
    );
    // The window applies to that time.
    let out = run(&[
        "hunt",
        file.to_str().expect("utf8"),
        "--since",
        "2020-09-14T01:00:00Z",
        "--until",
        "2020-09-14T01:05:00Z",
    ]);
    assert!(out.stderr.contains("103 records, 7 in the window"), "{}", out.stderr);
}

#[test]
fn digests_are_skipped_and_counted() {
    let dir = tempfile::tempdir().expect("tmp");
    let digest = json!({"awsAccountId": "111122223333", "digestStartTime": "2024-03-01T11:00:00Z", "digestEndTime": "2024-03-01T12:00:00Z",
        "digestS3Bucket": "b", "digestS3Object": "k", "logFiles": []});
    write(
        dir.path(),
        "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/03/01/d.json.gz",
        &gzip(digest.to_string().as_bytes()),
    );
    write(dir.path(), "other/digest-shaped.json", digest.to_string().as_bytes());
    write(
        dir.path(),
        "events.json",
        json!({"Records": [stop_logging("2024-03-01T12:00:00Z")]})
            .to_string()
            .as_bytes(),
    );
    let out = run(&["hunt", dir.path().to_str().expect("utf8")]);
    assert_eq!(out.code, 0);
    assert!(out.stderr.contains("2 digest files"), "{}", out.stderr);
    assert!(!out.stderr.contains("WARN"), "digests are not errors: {}", out.stderr);
    assert_eq!(rule_ids(&jsonl(&out.stdout)), ["aws-cloudtrail-stop-logging"]);
}

/// Copies the folder `from` into `to`.
fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn verify_finds_what_was_changed_deleted_and_added_in_a_copy_of_the_bucket() {
    let dir = tempfile::tempdir().expect("tmp");
    copy_tree(&root().join("examples/cloudtrail"), dir.path());
    let path = dir.path().to_str().expect("utf8");
    let out = run(&["verify", path, "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let clean: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(clean["logs"]["valid"], 7);
    assert_eq!(clean["digests"]["links_valid"], 6);
    assert_eq!(clean["problems"], json!([]));

    let digests = dir
        .path()
        .join("AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/16");
    let digest = |stamp: &str| {
        digests.join(format!(
            "111122223333_CloudTrail-Digest_us-east-1_management-trail_us-east-1_{stamp}.json.gz"
        ))
    };
    // A record of a log file the 05:00-06:00 digest lists is changed (its source address).
    let mut content = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(digest("20261116T060836Z")).expect("digest")),
        &mut content,
    )
    .expect("inflate");
    let listed: Value = serde_json::from_str(&content).expect("digest JSON");
    let key = listed["logFiles"][0]["s3Object"].as_str().expect("key");
    let log = dir.path().join(key);
    let mut records = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&log).expect("log")),
        &mut records,
    )
    .expect("inflate");
    let mut records: Value = serde_json::from_str(&records).expect("log JSON");
    records["Records"][0]["sourceIPAddress"] = json!("192.0.2.99");
    std::fs::write(&log, gzip(records.to_string().as_bytes())).expect("rewrite");
    // The 06:00-07:00 digest is deleted, and a file is put in the bucket at 05:10, with an
    // escape sequence in its name.
    std::fs::remove_file(digest("20261116T070741Z")).expect("delete");
    let injected = "111122223333_CloudTrail_us-east-1_20261116T0510Z_\x1b[31mred.json.gz";
    write(
        dir.path(),
        &format!("AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/16/{injected}"),
        &gzip(
            json!({"Records": [stop_logging("2026-11-16T05:05:00Z")]})
                .to_string()
                .as_bytes(),
        ),
    );

    let out = run(&["verify", path, "--format", "json"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let found: Value = serde_json::from_str(&out.stdout).expect("JSON");
    let kinds: Vec<&str> = found["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["log-modified", "log-unlisted", "digest-missing"]);
    let problems = &found["problems"];
    assert!(
        problems[0]["file"]
            .as_str()
            .expect("file")
            .ends_with(key.rsplit('/').next().expect("name"))
    );
    assert!(problems[1]["file"].as_str().expect("file").ends_with("red.json.gz"));
    assert!(
        problems[2]["object"]
            .as_str()
            .expect("object")
            .ends_with("20261116T070741Z.json.gz")
    );
    assert_eq!(
        (found["logs"]["valid"].clone(), found["logs"]["modified"].clone()),
        (json!(5), json!(1))
    );

    // Before 05:00 nothing was touched: the hours after it are read for their links only.
    let out = run(&["verify", path, "--until", "2026-11-16T05:00:00Z"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(out.stdout.contains("2 of them outside the window"), "{}", out.stdout);
    let out = run(&["verify", path, "--since", "2026-11-16T05:00:00Z", "--until", "tomorrow"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("\"tomorrow\" is neither a duration"),
        "{}",
        out.stderr
    );

    let out = run(&["verify", path]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("log-unlisted"), "{}", out.stdout);
    assert!(
        !out.stdout.contains('\x1b'),
        "the file name's escape is shown escaped: {}",
        out.stdout
    );

    let empty = tempfile::tempdir().expect("tmp");
    let out = run(&["verify", empty.path().to_str().expect("utf8")]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("no CloudTrail digest files"), "{}", out.stderr);
}

#[test]
fn time_window_filters_events_and_prunes_files_by_name() {
    let dir = tempfile::tempdir().expect("tmp");
    let layout = "AWSLogs/111122223333/CloudTrail/us-east-1";
    let early = json!({"Records": [stop_logging("2024-03-01T09:58:00Z")]});
    let late = json!({"Records": [stop_logging("2024-03-03T10:01:00Z"), stop_logging("2024-03-03T10:03:00Z")]});
    write(
        dir.path(),
        &format!("{layout}/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T1000Z_aaaa.json.gz"),
        &gzip(early.to_string().as_bytes()),
    );
    write(
        dir.path(),
        &format!("{layout}/2024/03/03/111122223333_CloudTrail_us-east-1_20240303T1005Z_bbbb.json.gz"),
        &gzip(late.to_string().as_bytes()),
    );
    // Corrupt, but named a week earlier: opening it would raise a warning.
    write(
        dir.path(),
        &format!("{layout}/2024/02/20/111122223333_CloudTrail_us-east-1_20240220T1005Z_cccc.json.gz"),
        b"\x1f\x8b garbage",
    );
    let base = dir.path().to_str().expect("utf8");
    let out = run(&["hunt", base, "--since", "2024-03-02T00:00:00Z"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(jsonl(&out.stdout).len(), 2);
    assert!(
        out.stderr.contains("2 outside the window (not opened)"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("WARN"), "{}", out.stderr);
    let out = run(&[
        "hunt",
        base,
        "--since",
        "2024-03-03T10:02:00Z",
        "--until",
        "2024-03-03T11:00:00Z",
    ]);
    let findings = jsonl(&out.stdout);
    assert_eq!(findings.len(), 1, "{}", out.stderr);
    assert_eq!(findings[0]["event_time"], "2024-03-03T10:03:00Z");
    // Relative windows: far in the past relative to now, nothing is left.
    let out = run(&["hunt", base, "--since", "7d"]);
    assert_eq!(jsonl(&out.stdout).len(), 0);
    assert!(out.stderr.contains("3 outside the window"), "{}", out.stderr);
    let bad = run(&["hunt", base, "--since", "yesterday"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("neither a duration"), "{}", bad.stderr);
}

#[test]
fn a_record_with_a_field_written_twice_is_read_and_named() {
    let dir = tempfile::tempdir().expect("tmp");
    // The second eventName hides the first from readers that take the last value, and the
    // other way round: CloudTrail never writes either.
    let altered =
        stop_logging("2024-03-01T12:00:00Z")
            .to_string()
            .replacen('{', r#"{"eventName":"DescribeTrails","#, 1);
    let text = format!("{{\"Records\":[{},{altered}]}}", stop_logging("2024-03-01T11:00:00Z"));
    write(dir.path(), "events.json", text.as_bytes());
    let out = run(&["hunt", dir.path().to_str().expect("utf8")]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        jsonl(&out.stdout).len(),
        2,
        "both records are read, with the last value"
    );
    assert!(
        out.stderr
            .contains("events.json: record 1: `eventName` appears twice in the record"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("altered? 1 record with a field CloudTrail writes once written twice"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("invalid records"), "{}", out.stderr);
}

#[test]
fn hostile_input_is_reported_and_the_scan_goes_on() {
    let dir = tempfile::tempdir().expect("tmp");
    let good = json!({"Records": [stop_logging("2024-03-01T12:00:00Z")]}).to_string();
    write(dir.path(), "a-good.json", good.as_bytes());
    let full = gzip(json!({"Records": (0..500).map(|i| stop_logging(&format!("2024-03-01T12:{:02}:00Z", i % 60))).collect::<Vec<_>>()}).to_string().as_bytes());
    write(dir.path(), "b-truncated.json.gz", &full[..full.len() / 2]);
    write(dir.path(), "c-invalid.json", b"{\"Records\": [ {\"eventName\": ");
    let shapes = [
        json!({"eventName": "StopLogging", "eventSource": "cloudtrail.amazonaws.com", "userIdentity": {}}),
        json!({"eventTime": "not a time", "eventName": "StopLogging", "eventSource": "cloudtrail.amazonaws.com", "userIdentity": {}}),
        json!({"eventTime": "2024-03-01T12:00:00Z", "eventName": 42, "eventSource": "cloudtrail.amazonaws.com", "userIdentity": {}}),
        json!({"eventTime": "2024-03-01T12:00:00Z", "eventName": "StopLogging", "eventSource": "cloudtrail.amazonaws.com"}),
        json!("just a string"),
        // Not at a whole minute: b-truncated's records (same name and time, so the same
        // eventID) would make it a copy of an event read already.
        stop_logging("2024-03-01T12:30:30Z"),
    ];
    write(
        dir.path(),
        "d-shapes.json",
        json!({"Records": shapes}).to_string().as_bytes(),
    );
    let mut long = serde_json::to_vec(&record(
        "CreateUser",
        "iam.amazonaws.com",
        "2024-03-01T12:00:00Z",
        json!({"requestParameters": {"userName": "x".repeat(50 << 20)}}),
    ))
    .expect("json");
    long.push(b'\n');
    long.extend(serde_json::to_vec(&stop_logging("2024-03-01T12:40:30Z")).expect("json"));
    write(dir.path(), "e-long-line.jsonl", &long);
    let mut bad_utf8 = serde_json::to_vec(&json!({"Records": [record("CreateUser", "iam.amazonaws.com", "2024-03-01T12:00:30Z", json!({"userAgent": "PLACEHOLDER"}))]})).expect("json");
    let at = bad_utf8
        .windows(11)
        .position(|w| w == b"PLACEHOLDER")
        .expect("placeholder");
    bad_utf8.splice(at..at + 11, [0xff, 0xfe, b'x']);
    write(dir.path(), "f-bad-utf8.json", &bad_utf8);
    std::os::unix::fs::symlink("/nonexistent/trailhound", dir.path().join("g-dangling.json")).expect("symlink");
    write(
        dir.path(),
        "h-records-object.json",
        br#"{"Records": {"eventName": "StopLogging"}}"#,
    );

    let base = dir.path().to_str().expect("utf8");
    let out = run(&["hunt", base]);
    assert_eq!(out.code, 0, "bad input is a warning by default: {}", out.stderr);
    let stderr = &out.stderr;
    for expected in [
        "b-truncated.json.gz: gzip stream broken",
        "c-invalid.json: line 1:",
        "d-shapes.json: record 0: record has no eventTime",
        "d-shapes.json: record 1: eventTime \"not a time\" is not a time",
        "d-shapes.json: record 2: eventName is a number, expected a string",
        "d-shapes.json: record 3: record has no userIdentity",
        "d-shapes.json: record 4: record is a string, not an object",
        "f-bad-utf8.json: invalid UTF-8 replaced",
        "g-dangling.json",
        "h-records-object.json: record 0 (line 1): Records is an object, expected an array",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
    let findings = jsonl(&out.stdout);
    let from = |file: &str| {
        findings
            .iter()
            .filter(|f| f["source_file"].as_str().is_some_and(|s| s.ends_with(file)))
            .count()
    };
    assert_eq!(from("a-good.json"), 1);
    assert!(from("b-truncated.json.gz") > 0, "records before the break are kept");
    assert_eq!(from("d-shapes.json"), 1, "the good record among bad ones is kept");
    assert_eq!(from("e-long-line.jsonl"), 2, "a 50 MB line is read");
    assert_eq!(from("f-bad-utf8.json"), 1);
    assert!(stderr.contains("6 invalid records"), "{stderr}");

    let strict = run(&["hunt", base, "--strict"]);
    assert_eq!(strict.code, 2, "{}", strict.stderr);
    assert!(
        !jsonl(&strict.stdout).is_empty(),
        "findings are still written under --strict"
    );
}

#[test]
fn values_are_escaped_for_terminal_and_spreadsheet() {
    let dir = tempfile::tempdir().expect("tmp");
    let evil = record(
        "CreateUser",
        "iam.amazonaws.com",
        "2024-03-01T12:00:00Z",
        json!({
            "userAgent": "\u{1b}[31mred\u{1b}]0;pwned\u{7}",
            "sourceIPAddress": "=HYPERLINK(\"http://evil\")",
            "userIdentity": {"type": "IAMUser", "arn": "@SUM(1+1)\u{1b}[2J", "accessKeyId": "-2+3", "userName": "x"},
        }),
    );
    let path = write(
        dir.path(),
        "evil.json",
        json!({"Records": [evil]}).to_string().as_bytes(),
    );
    let path = path.to_str().expect("utf8");
    let table = run(&["hunt", path, "--format", "table"]).stdout;
    assert!(!table.contains('\u{1b}') && !table.contains('\u{7}'), "{table:?}");
    assert!(table.contains("\\u{1b}[2J"), "{table}");
    let csv = run(&["hunt", path, "--format", "csv"]).stdout;
    assert!(
        csv.contains("'=HYPERLINK") && csv.contains("'@SUM") && csv.contains(",'-2+3,"),
        "{csv}"
    );
    let json = jsonl(&run(&["hunt", path]).stdout);
    assert_eq!(
        json[0]["user_agent"], "\u{1b}[31mred\u{1b}]0;pwned\u{7}",
        "JSON keeps the value, JSON-escaped"
    );
}

#[test]
fn exit_codes() {
    let file = fixture("stratus/aws.defense-evasion.cloudtrail-stop.json");
    let file = file.to_str().expect("utf8");
    assert_eq!(run(&["hunt", file, "--fail-on", "high"]).code, 1);
    assert_eq!(
        run(&[
            "hunt",
            file,
            "--fail-on",
            "critical",
            "--exclude-rule",
            "aws-cloudtrail-stop-logging"
        ])
        .code,
        0
    );
    assert_eq!(run(&["hunt", file]).code, 0, "no --fail-on, no exit 1");
    assert_eq!(run(&["hunt", "/nonexistent/logs"]).code, 2);
    assert_eq!(run(&["hunt", file, "--fail-on", "severe"]).code, 2);
    assert_eq!(run(&["hunt"]).code, 2, "a source is required");
    assert_eq!(run(&["hunt", "s3://bucket/prefix"]).code, 2);
    assert_eq!(run(&["hunt", file, "--rule", "no-such-rule"]).code, 2);
    let min = jsonl(&run(&["hunt", file, "--min-level", "critical"]).stdout);
    assert!(min.iter().all(|f| f["level"] == "critical") && !min.is_empty());
}

#[test]
fn user_rules_from_disk() {
    let dir = tempfile::tempdir().expect("tmp");
    write(dir.path(), "mine.yml", b"title: Alice stops logging\nname: my-alice\nlogsource: {product: aws, service: cloudtrail}\nlevel: low\ntags: [attack.t1562.008]\ndetection:\n  sel:\n    userIdentity.userName: christophe\n    eventName|startswith: Stop\n  condition: sel\n");
    write(dir.path(), "mine.tests.yml", b"- name: stops\n  match: true\n  event: {eventSource: cloudtrail.amazonaws.com, eventName: StopLogging, userIdentity: {userName: christophe}}\n- name: wrong test on purpose\n  match: true\n  event: {eventSource: cloudtrail.amazonaws.com, eventName: StartLogging}\n");
    write(
        dir.path(),
        "broken.yml",
        b"title: Broken\nlogsource: {product: aws}\ndetection:\n  sel:\n    eventName|nope: X\n  condition: sel\n",
    );
    let rules = dir.path().to_str().expect("utf8");
    let file = fixture("stratus/aws.defense-evasion.cloudtrail-stop.json");
    let out = run(&["hunt", file.to_str().expect("utf8"), "--rules", rules, "--no-builtin"]);
    assert_eq!(rule_ids(&jsonl(&out.stdout)), ["my-alice"], "{}", out.stderr);
    assert!(
        out.stderr.contains("broken.yml:5") && out.stderr.contains("unknown modifier"),
        "{}",
        out.stderr
    );
    assert_eq!(
        run(&["hunt", file.to_str().expect("utf8"), "--rules", rules, "--strict"]).code,
        2
    );

    let validate = run(&["rules", "validate", rules]);
    assert_eq!(validate.code, 1);
    assert!(
        validate
            .stdout
            .contains("broken.yml:5 (rule broken): \"eventName|nope\": unknown modifier"),
        "{}",
        validate.stdout
    );
    let test = run(&["rules", "test", rules]);
    assert_eq!(test.code, 1);
    assert!(
        test.stdout.contains("FAIL     my-alice (1 of 2 tests failed)"),
        "{}",
        test.stdout
    );
    assert!(
        test.stdout.contains("wrong test on purpose: did not match but must"),
        "{}",
        test.stdout
    );
}

#[test]
fn rule_tooling_on_the_builtin_pack() {
    let test = run(&["rules", "test"]);
    assert_eq!(test.code, 0, "{}", test.stdout);
    assert!(
        test.stdout.contains(" 0 failed, 0 rules without tests"),
        "{}",
        test.stdout
    );
    let list = run(&["rules", "list", "--min-level", "critical"]);
    assert!(list.stdout.contains("aws-cloudtrail-stop-logging"));
    assert!(
        list.stdout.lines().skip(1).all(|l| l.contains("critical")),
        "{}",
        list.stdout
    );
    let json: Vec<Value> =
        serde_json::from_str(&run(&["rules", "list", "--format", "json", "--tag", "attack.t1562.008"]).stdout)
            .expect("json");
    assert!(
        json.iter().all(|r| r["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "attack.t1562.008")))
            && !json.is_empty()
    );
    let show = run(&["rules", "show", "aws-cloudtrail-stop-logging"]);
    assert!(
        show.stdout.contains("eventName: StopLogging") && show.stdout.contains("must match"),
        "{}",
        show.stdout
    );
}

#[test]
fn the_bundled_example_tells_its_story() {
    let examples = root().join("examples");
    let out = run(&["hunt", examples.to_str().expect("utf8"), "--min-level", "medium"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        !out.stderr.contains("WARN"),
        "the example is clean input: {}",
        out.stderr
    );
    assert!(out.stderr.contains("3,000 records"), "{}", out.stderr);
    let findings = jsonl(&out.stdout);
    let find = |rule: &str| {
        findings
            .iter()
            .find(|f| f["rule_id"] == rule)
            .unwrap_or_else(|| panic!("{rule} missing"))
    };
    let stop = find("aws-cloudtrail-stop-logging");
    assert_eq!(
        (stop["level"].as_str(), stop["access_key_id"].as_str()),
        (Some("critical"), Some("AKIA2BACKUPSVCEXAMPL"))
    );
    assert_eq!(
        find("aws-ec2-security-group-ingress-open-to-world")["source_ip"],
        "203.0.113.66"
    );
    assert_eq!(
        find("aws-iam-user-added-to-admin-group")["access_key_id"],
        "AKIA2CIDEPLOYEXAMPLE"
    );
    assert_eq!(
        find("aws-iam-access-key-created-for-other-user")["event_time"],
        "2026-11-20T21:53:40Z"
    );
    assert_eq!(
        find("aws-signin-console-login-without-mfa")["principal_arn"],
        "arn:aws:iam::111122223333:user/backup-svc"
    );
    // The leaked key's discovery calls come from an attack distribution's user agent.
    let leaked = findings
        .iter()
        .filter(|f| f["rule_id"] == "aws-useragent-pentest-distribution")
        .count();
    assert!(leaked >= 10, "{leaked}");
    // Nothing above informational fires before the story starts.
    assert!(
        findings
            .iter()
            .filter(|f| f["level"] != "medium")
            .all(|f| f["event_time"].as_str() >= Some("2026-11-20T21:47:00Z"))
    );
}

#[test]
fn known_reasons_explain_and_hide_findings() {
    let dir = tempfile::tempdir().expect("tmp");
    let reasons = write(
        dir.path(),
        "reasons.yml",
        b"- match:\n    kind: finding\n    rule: aws-signin-console-login\n    principal_arn: \"arn:aws:iam::*:user/alice\"\n  reason: alice uses the console for billing\n  ticket: SEC-9\n- match:\n    kind: finding\n    rule: aws-iam-user-created\n  reason: onboarding\n  expires: 2020-01-31\n",
    );
    let examples = root().join("examples");
    let (examples, reasons) = (examples.to_str().expect("utf8"), reasons.to_str().expect("utf8"));
    let plain = jsonl(&run(&["hunt", examples]).stdout);
    let alice = |f: &&Value| {
        f["rule_id"] == "aws-signin-console-login"
            && f["principal_arn"].as_str().is_some_and(|a| a.ends_with("user/alice"))
    };
    assert!(plain.iter().filter(alice).count() >= 3);
    let out = run(&["hunt", examples, "--reasons", reasons]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let hidden = jsonl(&out.stdout);
    assert_eq!(hidden.iter().filter(alice).count(), 0);
    assert_eq!(hidden.len(), plain.len() - plain.iter().filter(alice).count());
    assert!(
        hidden.iter().any(|f| f["rule_id"] == "aws-iam-user-created"),
        "an expired reason explains nothing"
    );
    assert!(
        out.stderr
            .contains("reasons.yml:7: reason \"onboarding\" (no ticket) expired on 2020-01-31"),
        "{}",
        out.stderr
    );
    let shown = jsonl(&run(&["hunt", examples, "--reasons", reasons, "--show-explained"]).stdout);
    let explained: Vec<&Value> = shown.iter().filter(|f| f.get("explanation").is_some()).collect();
    assert_eq!(explained.len(), plain.iter().filter(alice).count());
    assert_eq!(
        explained[0]["explanation"],
        json!({"reason": "alice uses the console for billing", "ticket": "SEC-9"})
    );
    // Explained findings do not fail a run.
    let fail_on = run(&[
        "hunt",
        examples,
        "--reasons",
        reasons,
        "--rule",
        "aws-signin-console-login",
        "--fail-on",
        "informational",
    ]);
    assert_eq!(fail_on.code, 1, "bob's logins are not explained");
    let bad = write(dir.path(), "bad.yml", b"- match:\n    kind: finding\n    rule: x\n  reason: ok\n- match:\n    kind: finding\n    colour: blue\n  reason: r\n");
    let out = run(&["hunt", examples, "--reasons", bad.to_str().expect("utf8")]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("bad.yml:5: a finding has no field \"colour\""),
        "{}",
        out.stderr
    );
}

#[test]
fn grouping_folds_repeated_findings() {
    let dir = tempfile::tempdir().expect("tmp");
    let ingress = |time: &str| {
        record(
            "AuthorizeSecurityGroupIngress",
            "ec2.amazonaws.com",
            time,
            json!({"requestParameters": {"groupId": "sg-1"}}),
        )
    };
    let mut records: Vec<Value> = (0..5)
        .map(|m| ingress(&format!("2024-03-01T12:{:02}:00Z", m * 10)))
        .collect();
    records.push(ingress("2024-03-02T09:00:00Z"));
    let path = write(
        dir.path(),
        "sg.json",
        json!({"Records": records}).to_string().as_bytes(),
    );
    let path = path.to_str().expect("utf8");
    let args = ["hunt", path, "--rule", "aws-ec2-security-group-ingress-authorized"];
    assert_eq!(jsonl(&run(&args).stdout).len(), 6);
    let grouped = jsonl(&run(&[&args[..], &["--group"]].concat()).stdout);
    assert_eq!(grouped.len(), 2, "{grouped:?}");
    let ids: Vec<String> = (0..5)
        .map(|m| format!("id-AuthorizeSecurityGroupIngress-2024-03-01T12:{:02}:00Z", m * 10))
        .collect();
    assert_eq!(
        grouped[0]["group"],
        json!({"count": 5, "first_time": "2024-03-01T12:00:00Z", "last_time": "2024-03-01T12:40:00Z", "event_ids": ids})
    );
    assert_eq!(grouped[1]["group"]["count"], 1);
    assert_eq!(jsonl(&run(&[&args[..], &["--group", "1d"]].concat()).stdout).len(), 2);
    assert_eq!(run(&[&args[..], &["--group", "often"]].concat()).code, 2);
    let table = run(&[&args[..], &["--group", "--format", "table"]].concat()).stdout;
    assert!(table.contains("AuthorizeSecurityGroupIngress (x5)"), "{table}");
    // 120 findings in one hour: the first 50 ids and the last 50.
    let time = |i: usize| format!("2024-03-03T10:{:02}:{:02}Z", i / 2, (i % 2) * 30);
    let records: Vec<Value> = (0..120).map(|i| ingress(&time(i))).collect();
    let many = write(
        dir.path(),
        "many.json",
        json!({"Records": records}).to_string().as_bytes(),
    );
    let grouped = jsonl(
        &run(&[
            "hunt",
            many.to_str().expect("utf8"),
            "--rule",
            "aws-ec2-security-group-ingress-authorized",
            "--group",
        ])
        .stdout,
    );
    let listed: Vec<&str> = grouped[0]["group"]["event_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let expected: Vec<String> = (0..50)
        .chain(70..120)
        .map(|i| format!("id-AuthorizeSecurityGroupIngress-{}", time(i)))
        .collect();
    assert_eq!((grouped.len(), grouped[0]["group"]["count"].as_u64()), (1, Some(120)));
    assert_eq!(listed, expected);
}

/// A failed-login base rule and a correlation counting 10 of them within 10 minutes per address.
const BURST_RULES: &[u8] = b"title: failed login\nname: my-failed-login\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s: {eventName: ConsoleLogin, responseElements.ConsoleLogin: Failure}\n  condition: s\nlevel: low\n---\ntitle: burst of failed logins\nname: my-burst\ncorrelation:\n  type: event_count\n  rules: [my-failed-login]\n  group-by: [sourceIPAddress]\n  timespan: 10m\n  condition: {gte: 10}\nlevel: high\n";

#[test]
fn correlation_rules_run_in_a_hunt() {
    let dir = tempfile::tempdir().expect("tmp");
    write(dir.path(), "rules/burst.yml", BURST_RULES);
    let failure = |i: u32, ip: &str| {
        record(
            "ConsoleLogin",
            "signin.amazonaws.com",
            &format!("2024-03-01T12:{i:02}:30Z"),
            json!({"responseElements": {"ConsoleLogin": "Failure"}, "sourceIPAddress": ip}),
        )
    };
    // Two files, the burst split across them and written out of time order.
    let first: Vec<Value> = (0..6).rev().map(|i| failure(i, "203.0.113.5")).collect();
    let second: Vec<Value> = (6..12)
        .map(|i| failure(i, "203.0.113.5"))
        .chain((0..5).map(|i| failure(i, "198.51.100.1")))
        .collect();
    write(
        dir.path(),
        "logs/a.json",
        json!({"Records": first}).to_string().as_bytes(),
    );
    write(
        dir.path(),
        "logs/b.json",
        json!({"Records": second}).to_string().as_bytes(),
    );
    let out = run(&[
        "hunt",
        dir.path().join("logs").to_str().expect("utf8"),
        "--no-builtin",
        "--rules",
        dir.path().join("rules").to_str().expect("utf8"),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let findings = jsonl(&out.stdout);
    assert_eq!(
        findings.len(),
        1,
        "the base rule reports nothing itself; one burst: {findings:?}"
    );
    let burst = &findings[0];
    assert_eq!(
        (burst["rule_id"].as_str(), burst["level"].as_str()),
        (Some("my-burst"), Some("high"))
    );
    assert_eq!(burst["correlation"]["type"], "event_count");
    assert_eq!(burst["correlation"]["group"], json!({"sourceIPAddress": "203.0.113.5"}));
    assert_eq!(burst["correlation"]["count"], 10);
    assert_eq!(burst["correlation"]["first_time"], "2024-03-01T12:00:30Z");
    assert_eq!(
        burst["event_time"], "2024-03-01T12:09:30Z",
        "the event that completed the window"
    );
    assert!(out.stderr.contains("1 correlations"), "{}", out.stderr);
}

#[test]
fn store_new_only_and_triage_across_runs() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("cases/trailhound.db");
    let db = db.to_str().expect("utf8");
    let examples = root().join("examples");
    let examples = examples.to_str().expect("utf8");
    let first = run(&["hunt", examples, "--store", db, "--new-only", "--fail-on", "critical"]);
    assert_eq!(first.code, 1, "a new critical finding: {}", first.stderr);
    let found = jsonl(&first.stdout);
    assert!(found.len() > 20);
    assert!(found.iter().all(|f| f["store_id"].as_i64().is_some()));
    assert!(
        first.stderr.contains(&format!("store: {} new findings", found.len())),
        "{}",
        first.stderr
    );
    let second = run(&["hunt", examples, "--store", db, "--new-only", "--fail-on", "critical"]);
    assert_eq!(
        (second.code, second.stdout.as_str()),
        (0, ""),
        "an identical second run prints nothing: {}",
        second.stderr
    );

    let listed = jsonl(&run(&["findings", "list", "--store", db]).stdout);
    assert_eq!(listed.len(), found.len());
    assert!(listed.iter().all(|f| f["status"] == "new" && f["times_seen"] == 2));
    let id_of = |rule: &str| {
        found
            .iter()
            .find(|f| f["rule_id"] == rule)
            .and_then(|f| f["store_id"].as_i64())
            .expect("rule found")
            .to_string()
    };
    let stop = id_of("aws-cloudtrail-stop-logging");
    let login = id_of("aws-signin-console-login");
    assert_eq!(run(&["findings", "ack", "--store", db, &stop]).code, 0);
    assert_eq!(
        run(&[
            "findings",
            "explain",
            "--store",
            db,
            &login,
            "--reason",
            "alice, billing",
            "--ticket",
            "SEC-9"
        ])
        .code,
        0
    );
    assert_eq!(
        run(&["findings", "ack", "--store", db, "999999"]).code,
        2,
        "unknown ids are an error"
    );
    let acked = jsonl(&run(&["findings", "list", "--store", db, "--status", "acked"]).stdout);
    assert_eq!(acked.len(), 1);
    assert_eq!(acked[0]["finding"]["rule_id"], "aws-cloudtrail-stop-logging");
    let explained = jsonl(&run(&["findings", "list", "--store", db, "--status", "explained"]).stdout);
    assert_eq!(
        (explained[0]["reason"].as_str(), explained[0]["ticket"].as_str()),
        (Some("alice, billing"), Some("SEC-9"))
    );
    let table = run(&[
        "findings",
        "list",
        "--store",
        db,
        "--rule",
        "aws-cloudtrail-stop-logging",
        "--format",
        "table",
    ])
    .stdout;
    assert!(table.contains("acked") && table.lines().count() == 2, "{table}");

    // A full run hides what the store explains, and stays quiet about it with --new-only.
    let full = jsonl(&run(&["hunt", examples, "--store", db]).stdout);
    assert_eq!(full.len(), found.len() - 1, "the explained finding is hidden");
    assert!(
        !full
            .iter()
            .any(|f| f["store_id"].as_i64().map(|i| i.to_string()) == Some(login.clone()))
    );
    assert_eq!(run(&["findings", "list", "--store", db, "--status", "bogus"]).code, 2);
}

#[test]
fn events_filter_pick_fields_and_count() {
    let examples = root().join("examples");
    let examples = examples.to_str().expect("utf8");
    let leaked = jsonl(
        &run(&[
            "events",
            examples,
            "--where",
            "userIdentity.accessKeyId=AKIA2CIDEPLOYEXAMPLE",
            "--where",
            "sourceIPAddress=203.0.113.66",
        ])
        .stdout,
    );
    assert!(leaked.len() >= 14, "{}", leaked.len());
    assert!(
        leaked.iter().all(|r| r["sourceIPAddress"] == "203.0.113.66"),
        "whole records by default"
    );
    let denied = jsonl(
        &run(&[
            "events",
            examples,
            "--where",
            "errorCode~*denied*",
            "--where",
            "sourceIPAddress=203.0.113.66",
            "--fields",
            "eventName,errorCode",
        ])
        .stdout,
    );
    assert_eq!(denied.len(), 3, "{denied:?}");
    assert!(denied.iter().all(|r| r.as_object().is_some_and(|o| o.len() == 2)));
    let names = jsonl(
        &run(&[
            "events",
            examples,
            "--name",
            "StopLogging",
            "--name",
            "StartLogging",
            "--fields",
            "eventName",
        ])
        .stdout,
    );
    assert_eq!(
        names
            .iter()
            .map(|r| r["eventName"].as_str().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["StopLogging", "StartLogging"]
    );
    // Which IPs and user agents used the leaked key?
    let counted = jsonl(
        &run(&[
            "events",
            examples,
            "--where",
            "userIdentity.accessKeyId=AKIA2CIDEPLOYEXAMPLE",
            "--count-by",
            "sourceIPAddress",
            "--top",
            "0",
        ])
        .stdout,
    );
    let attacker = counted
        .iter()
        .find(|r| r["sourceIPAddress"] == "203.0.113.66")
        .expect("attacker address counted");
    assert!(attacker["count"].as_u64().is_some_and(|n| n >= 14), "{attacker}");
    assert_eq!(attacker["first_seen"], "2026-11-20T21:47:05Z");
    assert!(counted.len() >= 2, "the CI addresses are there too: {counted:?}");
    let agents = jsonl(
        &run(&[
            "events",
            examples,
            "--where",
            "sourceIPAddress=203.0.113.66",
            "--where",
            "userIdentity.accessKeyId=AKIA2CIDEPLOYEXAMPLE",
            "--count-by",
            "userAgent",
        ])
        .stdout,
    );
    assert!(
        !agents.is_empty()
            && agents
                .iter()
                .all(|r| r["userAgent"].as_str().is_some_and(|ua| ua.contains("kali"))),
        "{agents:?}"
    );
    let counts: Vec<u64> = counted
        .iter()
        .filter_map(|r| r["count"].as_str()?.parse().ok())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "sorted by count: {counts:?}");
    let csv = run(&[
        "events",
        examples,
        "--count-by",
        "eventSource",
        "--top",
        "3",
        "--format",
        "csv",
    ])
    .stdout;
    assert_eq!(csv.lines().count(), 4);
    assert!(csv.starts_with("eventSource,count,first_seen,last_seen"));
    assert_eq!(run(&["events", examples, "--where", "nonsense"]).code, 2);
}

#[test]
fn timeline_follows_credentials_hop_by_hop() {
    let dir = tempfile::tempdir().expect("tmp");
    let user = json!({"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/leaky", "accessKeyId": "AKIALEAKY", "userName": "leaky"});
    let role = |key: &str, role: &str| json!({"type": "AssumedRole", "arn": format!("arn:aws:sts::111122223333:assumed-role/{role}/s"), "accessKeyId": key});
    let assume = |time: &str, who: Value, issued: &str| {
        record(
            "AssumeRole",
            "sts.amazonaws.com",
            time,
            json!({"userIdentity": who, "responseElements": {"credentials": {"accessKeyId": issued, "sessionToken": "x", "expiration": "later"}}}),
        )
    };
    let call =
        |name: &str, source: &str, time: &str, who: Value| record(name, source, time, json!({"userIdentity": who}));
    // The second hop sits in an earlier file than the first: order of files must not matter.
    write(
        dir.path(),
        "a.json",
        json!({"Records": [
            assume("2024-03-01T12:10:00Z", role("ASIAHOPONE", "deployer"), "ASIAHOPTWO"),
            call("CreateUser", "iam.amazonaws.com", "2024-03-01T12:11:00Z", role("ASIAHOPTWO", "admin")),
            call("ListBuckets", "s3.amazonaws.com", "2024-03-01T12:12:00Z", role("ASIAUNRELATED", "other")),
        ]})
        .to_string()
        .as_bytes(),
    );
    write(
        dir.path(),
        "b.json",
        json!({"Records": [
            call("GetCallerIdentity", "sts.amazonaws.com", "2024-03-01T12:00:00Z", user.clone()),
            assume("2024-03-01T12:05:00Z", user.clone(), "ASIAHOPONE"),
            call("DescribeInstances", "ec2.amazonaws.com", "2024-03-01T12:06:00Z", role("ASIAHOPONE", "deployer")),
            assume("2024-03-01T12:07:00Z", role("ASIAUNRELATED", "other"), "ASIANOTOURS"),
        ]})
        .to_string()
        .as_bytes(),
    );
    let base = dir.path().to_str().expect("utf8");
    let rows = jsonl(&run(&["timeline", base, "--access-key", "AKIALEAKY"]).stdout);
    let seen: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["event_name"].as_str().unwrap_or(""),
                r["access_key_id"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("GetCallerIdentity", "AKIALEAKY"),
            ("AssumeRole", "AKIALEAKY"),
            ("DescribeInstances", "ASIAHOPONE"),
            ("AssumeRole", "ASIAHOPONE"),
            ("CreateUser", "ASIAHOPTWO"),
        ]
    );
    assert_eq!(rows[2]["via"], "AssumeRole by AKIALEAKY");
    assert_eq!(rows[4]["via"], "AssumeRole by ASIAHOPONE");
    assert!(
        rows[4]["findings"]
            .as_str()
            .is_some_and(|f| f.contains("aws-iam-user-created")),
        "findings are marked inline"
    );
    let direct = jsonl(&run(&["timeline", base, "--access-key", "AKIALEAKY", "--no-follow"]).stdout);
    assert_eq!(direct.len(), 2);
    let by_ip = jsonl(&run(&["timeline", base, "--ip", "198.51.100.7", "--no-follow"]).stdout);
    assert_eq!(by_ip.len(), 7, "every record carries the default address");
    assert_eq!(run(&["timeline", base]).code, 2, "an identity is required");
}

#[test]
fn summary_answers_who_uses_the_console() {
    let examples = root().join("examples");
    let out = run(&["summary", examples.to_str().expect("utf8"), "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let summary: Value = serde_json::from_str(&out.stdout).expect("json");
    let logins = summary["console_logins"].as_array().expect("array");
    let backup = logins
        .iter()
        .find(|c| c["principal"] == "arn:aws:iam::111122223333:user/backup-svc")
        .expect("backup-svc logged in");
    assert_eq!(
        (
            backup["success_without_mfa"].as_u64(),
            backup["success_with_mfa"].as_u64()
        ),
        (Some(1), Some(0))
    );
    assert_eq!(backup["source_ips"], json!(["203.0.113.66"]));
    let alice = logins
        .iter()
        .find(|c| c["principal"] == "arn:aws:iam::111122223333:user/alice")
        .expect("alice");
    assert_eq!(alice["success_without_mfa"], 0);
    assert_eq!(summary["records"], 3000);
    let keys = summary["access_keys"].as_array().expect("keys");
    assert!(keys.iter().any(|k| {
        k["access_key_id"] == "AKIA2CIDEPLOYEXAMPLE"
            && k["source_ips"]
                .as_array()
                .is_some_and(|ips| ips.iter().any(|ip| ip == "203.0.113.66"))
    }));
    let table = run(&["summary", examples.to_str().expect("utf8")]).stdout;
    for heading in [
        "Console logins",
        "Most active principals",
        "Errors by principal",
        "Regions",
        "Access keys",
    ] {
        assert!(table.contains(heading), "{heading}");
    }
}

#[test]
fn html_report_renders_in_headless_chromium() {
    let dir = tempfile::tempdir().expect("tmp");
    let hostile = record(
        "CreateUser",
        "iam.amazonaws.com",
        "2026-11-20T23:00:00Z",
        json!({
            "userAgent": "</script><script>alert(1)</script>",
            "userIdentity": {"type": "IAMUser", "arn": "<img src=x onerror=alert(1)>", "accessKeyId": "AKIA\u{202e}EVIL", "userName": "x"},
        }),
    );
    write(
        dir.path(),
        "logs/evil.json",
        json!({"Records": [hostile]}).to_string().as_bytes(),
    );
    let examples = root().join("examples");
    let report = dir.path().join("report.html");
    let logs = dir.path().join("logs");
    let args = [
        "report",
        examples.to_str().expect("utf8"),
        logs.to_str().expect("utf8"),
        "-o",
        report.to_str().expect("utf8"),
    ];
    let out = run(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let page = std::fs::read_to_string(&report).expect("written");
    assert!(
        !page.contains("</script><script>alert(1)") && !page.contains("<img src=x"),
        "data is escaped for the script element"
    );
    assert!(
        [
            "src=\"http",
            "href=\"http",
            "url(http",
            "@import",
            "src='http",
            "href='http"
        ]
        .iter()
        .all(|asset| !page.contains(asset)),
        "no external assets"
    );
    let findings = jsonl(&run(&["hunt", examples.to_str().expect("utf8"), logs.to_str().expect("utf8")]).stdout).len();

    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        assert!(
            std::env::var("TRAILHOUND_REQUIRE_CHROMIUM").is_err(),
            "Chromium is required here but {chromium} is missing"
        );
        eprintln!("skipping the browser check: no Chromium at {chromium}");
        return;
    }
    let check = std::process::Command::new("python3")
        .arg(root().join("scripts/report-check.py"))
        .arg(&report)
        .args(["--expect-rows", &findings.to_string(), "--selftest"])
        .args([
            "--expect-text",
            "aws-cloudtrail-stop-logging",
            "--expect-text",
            "</script><script>alert(1)</script>",
        ])
        .args([
            "--forbid-text",
            "<script>alert(1)</script>",
            "--forbid-text",
            "<img src=\"x\"",
        ])
        .output()
        .expect("python3 runs");
    assert!(
        check.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn validate_reports_correlations_that_refer_to_missing_rules() {
    let dir = tempfile::tempdir().expect("tmp");
    write(dir.path(), "c.yml", b"title: burst\nname: my-burst\ncorrelation:\n  type: event_count\n  rules: [nowhere-to-be-found]\n  timespan: 5m\n  condition: {gte: 3}\n");
    write(dir.path(), "uses-builtin.yml", b"title: many stops\nname: my-stops\ncorrelation:\n  type: event_count\n  rules: [aws-cloudtrail-stop-logging]\n  timespan: 1h\n  condition: {gte: 2}\n");
    let out = run(&["rules", "validate", dir.path().to_str().expect("utf8")]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .contains("(rule my-burst): correlation refers to rule \"nowhere-to-be-found\", which is not loaded"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("1 rules valid, 1 errors"),
        "a correlation may count a built-in rule: {}",
        out.stdout
    );
}

#[test]
fn correlations_sweep_batch_by_batch_across_delivery_hours() {
    let dir = tempfile::tempdir().expect("tmp");
    write(dir.path(), "rules/burst.yml", BURST_RULES);
    let failure = |time: &str| {
        record(
            "ConsoleLogin",
            "signin.amazonaws.com",
            time,
            json!({"responseElements": {"ConsoleLogin": "Failure"}, "sourceIPAddress": "203.0.113.5"}),
        )
    };
    let layout = "logs/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1";
    // A burst straddling two files, two hours of deliveries apart in the batch order, plus a quiet
    // day later so the sweep moves well past it.
    let early: Vec<Value> = (52..60).map(|m| failure(&format!("2024-03-01T12:{m}:00Z"))).collect();
    let late: Vec<Value> = (0..4).map(|m| failure(&format!("2024-03-01T13:0{m}:00Z"))).collect();
    write(
        dir.path(),
        &format!("{layout}_20240301T1258Z_a.json.gz"),
        &gzip(json!({"Records": early}).to_string().as_bytes()),
    );
    write(
        dir.path(),
        &format!("{layout}_20240301T1308Z_b.json.gz"),
        &gzip(json!({"Records": late}).to_string().as_bytes()),
    );
    for hour in 15..20 {
        let quiet = json!({"Records": [failure(&format!("2024-03-01T{hour}:00:00Z"))]});
        write(
            dir.path(),
            &format!("{layout}_20240301T{hour}05Z_q.json.gz"),
            &gzip(quiet.to_string().as_bytes()),
        );
    }
    let out = run(&[
        "hunt",
        dir.path().join("logs").to_str().expect("utf8"),
        "--no-builtin",
        "--rules",
        dir.path().join("rules").to_str().expect("utf8"),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let findings = jsonl(&out.stdout);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0]["correlation"]["count"], 10);
    assert_eq!(findings[0]["correlation"]["first_time"], "2024-03-01T12:52:00Z");
    assert_eq!(findings[0]["event_time"], "2024-03-01T13:01:00Z");
    assert!(!out.stderr.contains("late"), "{}", out.stderr);
}

#[test]
fn at_most_100_problems_are_printed_across_batches() {
    let dir = tempfile::tempdir().expect("tmp");
    let layout = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1";
    for hour in 10..13 {
        let bad: String = (0..60).map(|i| format!("{{\"eventName\": {i}}}\n")).collect();
        write(
            dir.path(),
            &format!("{layout}_20240301T{hour}05Z_x.json"),
            bad.as_bytes(),
        );
    }
    let out = run(&["hunt", dir.path().to_str().expect("utf8")]);
    assert_eq!(out.code, 0);
    let warnings = out
        .stderr
        .lines()
        .filter(|l| l.contains("WARN") && l.contains(": record "))
        .count();
    assert_eq!(warnings, 100, "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("80 more bad files or records not shown").count(),
        1,
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("180 invalid records"), "{}", out.stderr);
}

#[test]
fn rules_sql_prints_each_rule_query_and_the_rules_left_to_the_engine() {
    let out = run(&["rules", "sql", "--table", "trails.cloudtrail"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("detection rules compiled over trails.cloudtrail"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(
        "-- aws-cloudtrail-stop-logging (critical): CloudTrail logging stopped\nSELECT * FROM trails.cloudtrail WHERE "
    ));
    assert!(out.stdout.contains("regexp_like("), "Athena's regex function");
    assert!(
        out.stdout
            .contains("-- Not compiled (no exact SQL form; left to the local engine):")
    );
    assert!(
        out.stderr.contains("not compiled: aws-context-principal-new-network"),
        "{}",
        out.stderr
    );
    let duck = run(&["rules", "sql", "--dialect", "duckdb", "aws-iam-user-created"]);
    assert_eq!(duck.code, 0, "{}", duck.stderr);
    assert!(
        duck.stdout
            .starts_with("-- trailhound rules sql (duckdb): 1 of 1 detection rules"),
        "{}",
        duck.stdout
    );
    assert_eq!(duck.stdout.matches("SELECT * FROM cloudtrail WHERE").count(), 1);
}

#[test]
fn athena_table_and_plan() {
    let out = run(&[
        "athena",
        "table",
        "s3://org-trails/",
        "--organization",
        "o-abc123",
        "--accounts",
        "111122223333",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("PARTITIONED BY (`account` string, `region` string, `day` string)")
    );
    assert!(out.stdout.contains("'projection.account.values'='111122223333'"));
    assert!(out.stdout.contains(
        "'storage.location.template'='s3://org-trails/AWSLogs/o-abc123/${account}/CloudTrail/${region}/${day}'"
    ));
    let bad = run(&["athena", "table", "s3://bucket'; DROP TABLE x; --"]);
    assert_eq!(bad.code, 2, "refused: {}", bad.stdout);
    let plan = run(&[
        "athena",
        "plan",
        "--since",
        "2025-01-01",
        "--until",
        "2026-01-01",
        "--account-count",
        "1000",
    ]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stdout.contains("1000 accounts x 17 regions x 366 days = 6222000"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("scan per query   6.22 TB"), "{}", plan.stdout);
}

/// `--geoip` with a database the test builds, `--aws-ranges`, and `context ranges|show`: the
/// derived fields reach `events --where/--fields`, findings and the summary.
#[test]
fn context_from_a_test_geoip_database_and_installed_aws_ranges() {
    use trailhound_context::testdb::{Entry, write_mmdb};
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("asn-country.mmdb");
    let entry = |net: &str, asn: u32, org: &str, country: &str| Entry {
        network: net.parse().expect("network"),
        asn: Some(asn),
        as_org: Some(org.to_string()),
        country: Some(country.to_string()),
    };
    write_mmdb(
        &[
            entry("203.0.113.0/24", 64500, "Bulletproof Hosting", "DE"),
            entry("198.51.100.0/24", 64501, "Owner Telecom", "US"),
        ],
        "GeoLite2-Country",
        &db,
    )
    .expect("db");
    let ranges = dir.path().join("ip-ranges.json");
    std::fs::write(
        &ranges,
        r#"{"syncToken":"1","createDate":"2026-11-30-12-00-00","prefixes":[{"ip_prefix":"52.95.0.0/16","region":"us-east-1","service":"EC2","network_border_group":"us-east-1"}],"ipv6_prefixes":[]}"#,
    )
    .expect("ranges");
    let who = r#"{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/web/i-0123456789abcdef0","accessKeyId":"ASIAEXAMPLEWEB00001","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::111122223333:role/web"}}}"#;
    let records: Vec<String> = [("52.95.1.1", "e1"), ("203.0.113.9", "e2"), ("198.51.100.7", "e3")]
        .iter()
        .map(|(ip, id)| {
            format!(
                r#"{{"eventTime":"2026-03-01T10:00:0{n}Z","eventName":"ListBuckets","eventSource":"s3.amazonaws.com","awsRegion":"us-east-1","sourceIPAddress":"{ip}","eventID":"{id}","userIdentity":{who}}}"#,
                n = &id[1..]
            )
        })
        .collect();
    let logs = dir.path().join("logs.json");
    std::fs::write(&logs, format!("{{\"Records\":[{}]}}", records.join(","))).expect("logs");
    let data = dir.path().join("data");
    let with_env = |args: &[&str]| {
        run_with(
            trailhound()
                .env("XDG_DATA_HOME", &data)
                .env("HOME", dir.path())
                .env_remove("TRAILHOUND_GEOIP")
                .env_remove("TRAILHOUND_AWS_RANGES")
                .args(args),
        )
    };
    let (logs, db) = (logs.to_str().expect("utf8"), db.to_str().expect("utf8"));
    // events: the derived fields are fields like any other.
    let out = with_env(&[
        "events",
        logs,
        "--geoip",
        db,
        "--where",
        "trailhound.src.country=DE",
        "--fields",
        "eventID,trailhound.src.asn,trailhound.src.as_org,trailhound.principal.kind",
        "--format",
        "jsonl",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows = jsonl(&out.stdout);
    assert_eq!(rows.len(), 1, "{}", out.stdout);
    assert_eq!(rows[0]["eventID"], "e2");
    assert_eq!(rows[0]["trailhound.src.as_org"], "Bulletproof Hosting");
    assert_eq!(rows[0]["trailhound.principal.kind"], "instance");
    // Without ranges nothing is known to be outside AWS; installed, they are used by default.
    let hunt = |format: &str| {
        with_env(&[
            "hunt",
            logs,
            "--geoip",
            db,
            "--format",
            format,
            "--rule",
            "aws-context-instance-credentials-outside-aws",
        ])
    };
    let before = hunt("jsonl");
    assert_eq!(before.code, 0, "{}", before.stderr);
    assert!(before.stdout.is_empty(), "{}", before.stdout);
    let installed = with_env(&["context", "ranges", ranges.to_str().expect("utf8")]);
    assert_eq!(installed.code, 0, "{}", installed.stderr);
    assert!(
        installed.stdout.contains("1 prefixes, published 2026-11-30 12:00 UTC"),
        "{}",
        installed.stdout
    );
    let after = hunt("jsonl");
    let findings = jsonl(&after.stdout);
    let ids: Vec<&str> = findings
        .iter()
        .map(|f| f["event_id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids, ["e2", "e3"], "the two calls from outside AWS: {}", after.stderr);
    assert_eq!(findings[0]["trailhound"]["src"]["country"], "DE");
    assert_eq!(findings[0]["trailhound"]["src"]["aws"], false);
    // The table says where from.
    let table = hunt("table");
    assert!(
        table.stdout.contains("AS64500 Bulletproof Hosting, DE"),
        "{}",
        table.stdout
    );
    // context show describes what a hunt would use.
    let show = with_env(&[
        "context",
        "show",
        "--geoip",
        db,
        "--store",
        dir.path().join("none.db").to_str().expect("utf8"),
    ]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert!(
        show.stdout
            .contains("AWS ranges: 1 prefixes, published 2026-11-30 12:00 UTC"),
        "{}",
        show.stdout
    );
    assert!(show.stdout.contains("GeoLite2-Country"), "{}", show.stdout);
    // A file that is not AWS's ranges is refused with its name, and nothing is installed over.
    std::fs::write(dir.path().join("bad.json"), "{}").expect("bad");
    let bad = with_env(&["context", "ranges", dir.path().join("bad.json").to_str().expect("utf8")]);
    assert_eq!(bad.code, 2, "{}", bad.stdout);
    assert!(bad.stderr.contains("bad.json"), "{}", bad.stderr);
}

/// The example's files inflated into one NDJSON stream of envelopes, in path order.
fn example_stream() -> Vec<u8> {
    let mut files = Vec::new();
    let mut folders = vec![root().join("examples/cloudtrail/AWSLogs")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("folder") {
            let path = entry.expect("entry").path();
            let name = path.to_string_lossy();
            if path.is_dir() {
                folders.push(path);
            } else if name.ends_with(".json.gz") && !name.contains("Digest") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let mut text = Vec::new();
        let bytes = std::fs::read(&file).expect("read");
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text).expect("gzip");
        out.extend(text.trim_ascii_end());
        out.push(b'\n');
    }
    out
}

#[test]
fn a_stream_on_stdin_split_over_cores_reads_as_the_files_do() {
    // About 4 MB: several blocks for the other cores.
    let stream = example_stream();
    assert!(stream.len() > 3 << 20, "{} bytes", stream.len());
    let examples = root().join("examples");
    let examples = examples.to_str().expect("utf8");
    let without_source = |stdout: &str| {
        let mut rows: Vec<String> = jsonl(stdout)
            .into_iter()
            .map(|mut f| {
                f["source_file"] = Value::Null;
                f.to_string()
            })
            .collect();
        rows.sort();
        rows
    };
    let files = run(&["hunt", examples, "--format", "jsonl"]);
    for threads in ["1", "2", "4"] {
        let piped = run_with(
            trailhound()
                .args(["hunt", "-", "--format", "jsonl", "--threads", threads])
                .write_stdin(stream.clone()),
        );
        assert_eq!(piped.code, files.code, "{}", piped.stderr);
        assert!(piped.stderr.contains("3,000 records"), "{}", piped.stderr);
        assert_eq!(
            without_source(&piped.stdout),
            without_source(&files.stdout),
            "{threads} threads"
        );
        // Events of the same second come out in one order, whichever core read them.
        let args = ["events", "-", "--format", "jsonl", "--threads", threads];
        let events = run_with(trailhound().args(args).write_stdin(stream.clone()));
        let from_files = run(&["events", examples, "--format", "jsonl"]);
        assert_eq!(events.stdout, from_files.stdout, "{threads} threads");
        assert_eq!(events.stdout.lines().count(), 3000);
    }
}
