//! Every JSON output against its versioned JSON Schema in `schemas/`: what downstream parsers
//! may rely on. A change of shape fails here until the schema (and its version) changes too.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use jsonschema::{Resource, Validator};
use serde_json::Value;

const BASE: &str = "https://trailhound.dev/schemas/";
const SCHEMAS: [&str; 7] = [
    "finding",
    "stored-finding",
    "timeline-row",
    "event-row",
    "summary",
    "rule-list",
    "rule-coverage",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn schema(name: &str) -> Value {
    let path = root().join(format!("schemas/{name}.v1.schema.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The validator of schema `name`, with the others resolvable by their `$id`, formats checked.
fn validator(name: &str) -> Validator {
    let mut options = jsonschema::options().should_validate_formats(true);
    for other in SCHEMAS {
        options = options.with_resource(
            format!("{BASE}{other}.v1.schema.json"),
            Resource::from_contents(schema(other)),
        );
    }
    options
        .build(&schema(name))
        .unwrap_or_else(|e| panic!("schema {name}: {e}"))
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

/// Asserts every value is valid, naming the first error; returns how many there were.
fn all_valid(name: &str, values: &[Value]) -> usize {
    let validator = validator(name);
    for value in values {
        if let Some(error) = validator.iter_errors(value).next() {
            let text = value.to_string();
            let shown: String = text.chars().take(600).collect();
            panic!("{name}: {error} at {}\n{shown}", error.instance_path());
        }
    }
    values.len()
}

fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn array(stdout: &str) -> Vec<Value> {
    match serde_json::from_str(stdout).expect("JSON") {
        Value::Array(items) => items,
        other => panic!("not an array: {other}"),
    }
}

#[test]
fn every_schema_is_a_valid_schema() {
    for name in SCHEMAS {
        let schema = schema(name);
        assert!(jsonschema::meta::is_valid(&schema), "{name}");
        assert_eq!(schema["$id"], format!("{BASE}{name}.v1.schema.json"));
        validator(name);
    }
}

#[test]
fn findings_in_every_json_form_match_the_finding_schema() {
    let plain = lines(&trailhound(&["hunt", "examples/", "--format", "jsonl"]));
    assert_eq!(all_valid("finding", &plain), 51);
    assert!(plain.iter().any(|f| f.get("correlation").is_some()));
    assert_eq!(
        all_valid(
            "finding",
            &array(&trailhound(&["hunt", "examples/", "--format", "json"]))
        ),
        51
    );
    let grouped = lines(&trailhound(&[
        "hunt",
        "examples/",
        "--format",
        "jsonl",
        "--group",
        "1h",
    ]));
    assert!(grouped.iter().any(|f| f.get("group").is_some()));
    all_valid("finding", &grouped);
    all_valid(
        "finding",
        &lines(&trailhound(&[
            "hunt",
            "examples/",
            "--format",
            "jsonl",
            "--with-event",
            "--min-level",
            "high",
        ])),
    );
}

#[test]
fn stored_findings_match_their_schema() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = dir.path().join("case.db").display().to_string();
    trailhound(&["hunt", "examples/", "--store", &store, "--format", "jsonl"]);
    let listed = lines(&trailhound(&[
        "findings", "list", "--store", &store, "--format", "jsonl",
    ]));
    assert_eq!(all_valid("stored-finding", &listed), 51);
    all_valid(
        "stored-finding",
        &array(&trailhound(&[
            "findings", "list", "--store", &store, "--format", "json",
        ])),
    );
}

#[test]
fn timeline_events_summary_and_rules_match_their_schemas() {
    let key = ["timeline", "examples/", "--access-key", "AKIA2CIDEPLOYEXAMPLE"];
    let rows = lines(&trailhound(&[&key[..], &["--format", "jsonl"]].concat()));
    assert!(all_valid("timeline-row", &rows) > 50);
    assert!(
        rows.iter().any(|r| r["error_code"].is_null()),
        "missing values are null"
    );
    all_valid(
        "timeline-row",
        &array(&trailhound(&[&key[..], &["--format", "json"]].concat())),
    );

    let counted = lines(&trailhound(&[
        "events",
        "examples/",
        "--count-by",
        "errorCode,eventSource",
        "--top",
        "0",
        "--format",
        "jsonl",
    ]));
    assert!(all_valid("event-row", &counted) > 10);
    assert!(counted.iter().all(|r| r["count"].is_u64()), "counts are numbers");
    let fields = lines(&trailhound(&[
        "events",
        "examples/",
        "--fields",
        "eventTime,errorCode,requestParameters.bucketName",
        "--format",
        "jsonl",
    ]));
    assert_eq!(all_valid("event-row", &fields), 3000);

    let summary: Value =
        serde_json::from_str(&trailhound(&["summary", "examples/", "--format", "json"])).expect("JSON");
    all_valid("summary", &[summary]);
    let rules: Value = serde_json::from_str(&trailhound(&["rules", "list", "--format", "json"])).expect("JSON");
    all_valid("rule-list", &[rules]);
    let coverage: Value = serde_json::from_str(&trailhound(&["rules", "coverage", "--format", "json"])).expect("JSON");
    all_valid("rule-coverage", std::slice::from_ref(&coverage));
    assert!(
        coverage.as_array().is_some_and(|cells| cells.len() > 100),
        "the pack spans more than 100 tactic x technique cells"
    );
}

/// The schemas hold: the shapes this version replaced are refused.
#[test]
fn the_old_shapes_fail_their_schemas() {
    let count_as_text = serde_json::json!({"errorCode": null, "count": "15079", "first_seen": "2026-11-16T00:10:20Z", "last_seen": "2026-11-16T00:10:20Z"});
    assert!(!validator("event-row").is_valid(&count_as_text));
    let mut row: Value = lines(&trailhound(&[
        "timeline",
        "examples/",
        "--access-key",
        "AKIA2CIDEPLOYEXAMPLE",
        "--format",
        "jsonl",
    ]))
    .remove(0);
    assert!(validator("timeline-row").is_valid(&row));
    row.as_object_mut().expect("object").remove("event_id");
    assert!(!validator("timeline-row").is_valid(&row), "event_id is required");
    let mut finding = lines(&trailhound(&["hunt", "examples/", "--format", "jsonl"])).remove(0);
    finding["level"] = "severe".into();
    assert!(!validator("finding").is_valid(&finding));
}
