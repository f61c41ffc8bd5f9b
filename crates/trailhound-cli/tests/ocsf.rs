//! OCSF output against the OCSF schema itself: `hunt --format ocsf` (event, correlation and
//! grouped findings, explained ones, with and without `--with-event`) and inventory item findings
//! as Detection Finding (class 2004), `events --format ocsf` as API Activity (class 6003), both at
//! the pinned schema version with the `cloud` profile.
//!
//! The JSON Schemas come from the `ocsf-json-schema` package (PyPI), which carries the OCSF
//! schema of each release and builds a class's JSON Schema from it, offline; `.ci/run` installs it
//! in `.venv` beside moto. Without it the test skips, unless `TRAILHOUND_REQUIRE_MOTO` says the
//! venv must be complete (CI).

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use assert_cmd::Command;
use serde_json::Value;
use trailhound_output::ocsf::OCSF_VERSION;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The JSON Schema of OCSF class `class_uid` (with the cloud profile), from `ocsf-json-schema`.
fn ocsf_schema(class_uid: u32) -> Option<Value> {
    let python = std::env::var_os("TRAILHOUND_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/python"));
    let script = format!(
        "import json, sys\n\
         from ocsf_json_schema import get_ocsf_schema, OcsfJsonSchemaEmbedded\n\
         s = OcsfJsonSchemaEmbedded(get_ocsf_schema(version='{OCSF_VERSION}'))\n\
         name = s.lookup_class_name_from_uid(class_uid={class_uid})\n\
         json.dump(s.get_class_schema(class_name=name, profiles=['cloud']), sys.stdout)\n"
    );
    let out = Process::new(&python).args(["-c", &script]).output();
    match out {
        Ok(out) if out.status.success() => Some(serde_json::from_slice(&out.stdout).expect("a JSON Schema")),
        other => {
            assert!(
                std::env::var_os("TRAILHOUND_REQUIRE_MOTO").is_none(),
                "ocsf-json-schema is required in .venv: {other:?}"
            );
            eprintln!("skipped: .venv/bin/pip install ocsf-json-schema==1.2.0");
            None
        }
    }
}

fn trailhound(args: &[&str]) -> String {
    let out = Command::cargo_bin("trailhound")
        .expect("binary")
        .current_dir(root())
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("runs");
    assert!(
        out.status.code().is_some_and(|c| c < 2),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Asserts every value validates against `schema`; returns how many there were.
fn all_valid(schema: &Value, values: &[Value]) -> usize {
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("the OCSF JSON Schema compiles");
    for value in values {
        if let Some(error) = validator.iter_errors(value).next() {
            let shown: String = value.to_string().chars().take(800).collect();
            panic!("{error} at {}\n{shown}", error.instance_path());
        }
    }
    values.len()
}

#[test]
fn hunt_findings_are_valid_ocsf_detection_findings() {
    let Some(schema) = ocsf_schema(2004) else { return };
    let plain = lines(&trailhound(&["hunt", "examples/", "--format", "ocsf"]));
    assert_eq!(all_valid(&schema, &plain), 51, "every finding of the example");
    let correlation = plain
        .iter()
        .find(|f| f["unmapped"]["correlation"].is_object())
        .expect("a correlation finding");
    assert!(correlation["finding_info"]["related_events_count"].as_u64() > Some(1));
    // The window's events by their ids, as the JSON finding lists them.
    let related: Vec<&Value> = correlation["finding_info"]["related_events"]
        .as_array()
        .expect("related events")
        .iter()
        .map(|e| &e["uid"])
        .collect();
    let listed: Vec<&Value> = correlation["unmapped"]["correlation"]["event_ids"]
        .as_array()
        .expect("event ids")
        .iter()
        .collect();
    assert!(
        !related.is_empty() && related == listed,
        "{related:?} against {listed:?}"
    );
    assert!(
        correlation["finding_info"]["first_seen_time"].as_i64()
            < correlation["finding_info"]["last_seen_time"].as_i64()
    );
    let stop = plain
        .iter()
        .find(|f| f["finding_info"]["analytic"]["uid"] == "aws-cloudtrail-stop-logging")
        .expect("StopLogging");
    assert_eq!(
        (stop["severity_id"].as_u64(), stop["severity"].as_str()),
        (Some(5), Some("Critical"))
    );
    assert_eq!(stop["class_uid"], 2004);
    assert_eq!(stop["type_uid"], 200401);
    assert_eq!(stop["metadata"]["version"], OCSF_VERSION);
    assert_eq!(stop["cloud"]["provider"], "AWS");
    assert_eq!(stop["cloud"]["account"]["uid"], "111122223333");
    let attack = &stop["finding_info"]["attacks"][0];
    assert_eq!(attack["tactic"]["uid"], "TA0005", "defense evasion");
    assert_eq!(attack["technique"]["uid"], "T1562");
    assert_eq!(attack["sub_technique"]["uid"], "T1562.008");
    let evidence = &stop["evidences"][0];
    assert_eq!(evidence["api"]["operation"], "StopLogging");
    assert_eq!(evidence["api"]["service"]["name"], "cloudtrail.amazonaws.com");
    assert_eq!(evidence["src_endpoint"]["ip"], "203.0.113.66");
    assert!(
        evidence["actor"]["user"]["uid"]
            .as_str()
            .is_some_and(|u| u.ends_with("user/backup-svc"))
    );

    // Stable ids: the same finding has the same uid in every run.
    let again = lines(&trailhound(&["hunt", "examples/", "--format", "ocsf"]));
    let uids = |v: &[Value]| v.iter().map(|f| f["finding_info"]["uid"].clone()).collect::<Vec<_>>();
    assert_eq!(uids(&plain), uids(&again));
    let mut distinct = uids(&plain);
    distinct.sort_by_key(|v| v.to_string());
    distinct.dedup();
    assert_eq!(distinct.len(), plain.len(), "one uid per finding");

    // With the record: the request id and parameters, the record itself as evidence data.
    let full = lines(&trailhound(&["hunt", "examples/", "--format", "ocsf", "--with-event"]));
    assert_eq!(all_valid(&schema, &full), 51);
    let stop = full
        .iter()
        .find(|f| f["finding_info"]["analytic"]["uid"] == "aws-cloudtrail-stop-logging")
        .expect("StopLogging");
    assert!(stop["evidences"][0]["api"]["request"]["uid"].is_string());
    assert_eq!(stop["evidences"][0]["data"]["eventName"], "StopLogging");

    // Grouped findings carry their count.
    let grouped = lines(&trailhound(&["hunt", "examples/", "--format", "ocsf", "--group"]));
    all_valid(&schema, &grouped);
    assert!(grouped.iter().any(|f| f["count"].as_u64() > Some(1)));
}

#[test]
fn explained_and_inventory_findings_are_valid_ocsf() {
    let Some(schema) = ocsf_schema(2004) else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let reasons = dir.path().join("reasons.yml");
    std::fs::write(
        &reasons,
        "- match: {kind: finding, rule: aws-signin-console-login}\n  reason: console users sign in\n  ticket: SEC-1\n",
    )
    .expect("reasons");
    let reasons = reasons.display().to_string();
    let explained = lines(&trailhound(&[
        "hunt",
        "examples/",
        "--format",
        "ocsf",
        "--reasons",
        &reasons,
        "--show-explained",
    ]));
    all_valid(&schema, &explained);
    let suppressed = explained
        .iter()
        .find(|f| f["status"] == "Suppressed")
        .expect("an explained finding");
    assert_eq!(suppressed["status_id"], 3);
    assert_eq!(suppressed["comment"], "console users sign in (SEC-1)");

    // An inventory audit finding is about a resource, not an event.
    let item = trailhound_finding::Finding {
        rule_id: "inventory-unexplained-access-key".into(),
        rule_title: "Access key no known reason explains".into(),
        level: trailhound_finding::Level::Medium,
        tags: vec!["attack.persistence".into(), "attack.t1098.001".into()],
        event_id: None,
        event_time: "2026-11-21T00:00:00Z".into(),
        event_name: String::new(),
        event_source: String::new(),
        aws_region: None,
        account_id: Some("111122223333".into()),
        principal_arn: None,
        principal_type: None,
        access_key_id: Some("AKIAIOSFODNN7EXAMPLE".into()),
        source_ip: None,
        user_agent: None,
        error_code: None,
        source_file: "inventory".into(),
        store_id: None,
        explanation: None,
        group: None,
        correlation: None,
        item: Some(Box::new(trailhound_finding::ItemRef {
            kind: "access_key".into(),
            id: "AKIAIOSFODNN7EXAMPLE".into(),
            name: "alice".into(),
        })),
        context: None,
        event: None,
        time: "2026-11-21T00:00:00Z".parse().expect("time"),
    };
    let ocsf = trailhound_output::ocsf::detection_finding(&item);
    all_valid(&schema, std::slice::from_ref(&ocsf));
    assert_eq!(ocsf["resources"][0]["uid"], "AKIAIOSFODNN7EXAMPLE");
    assert!(ocsf.get("evidences").is_none());
}

#[test]
fn events_are_valid_ocsf_api_activity() {
    let Some(schema) = ocsf_schema(6003) else { return };
    let activity = lines(&trailhound(&["events", "examples/", "--format", "ocsf"]));
    assert_eq!(all_valid(&schema, &activity), 3000, "every record of the example");
    let stop = activity
        .iter()
        .find(|a| a["api"]["operation"] == "StopLogging")
        .expect("StopLogging");
    assert_eq!(stop["class_uid"], 6003);
    assert_eq!(
        (stop["activity_id"].as_u64(), stop["type_uid"].as_u64()),
        (Some(4), Some(600304))
    );
    assert_eq!(stop["src_endpoint"]["ip"], "203.0.113.66");
    assert_eq!(stop["cloud"]["region"], "us-east-1");
    assert!(stop["metadata"]["uid"].is_string(), "the eventID");
    assert!(stop["api"]["request"]["uid"].is_string(), "the requestID");
    let failed = activity
        .iter()
        .find(|a| a["status"] == "Failure")
        .expect("a failed call in the example");
    assert_eq!(failed["status_id"], 2);
    assert!(failed["status_code"].is_string());
}
