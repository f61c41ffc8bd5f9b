//! The proof of `trailhound_rules::sql`: every built-in rule's compiled SQL, run on DuckDB over a
//! table shaped like Athena's CloudTrail table, selects exactly the events the engine matches.
//!
//! The events are every test event of every built-in rule (matches and near misses), the Stratus
//! Red Team detonation logs and technique fixtures, and two hostile copies of each rule test
//! event: one with every string upper-cased, one with `k` and `s` replaced by the KELVIN SIGN and
//! the LONG S (which case-insensitive matching folds into `k` and `s` and SQL's `lower()` does
//! not), plus hand-made edge cases (nested arrays, nulls in lists, numbers in strings). Each rule
//! is run over all of them, not only its own. The DuckDB SQL runs as written; the Athena SQL is
//! parsed as Trino by sqlglot, transpiled to DuckDB mechanically, and must select the same rows.
//!
//! Needs the project's virtualenv (`.venv`, or `TRAILHOUND_PYTHON`) with duckdb and sqlglot; it
//! skips itself without one unless `TRAILHOUND_REQUIRE_MOTO` is set, as in CI.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use trailhound_event::Record;
use trailhound_rules::sql::{self, Dialect};
use trailhound_rules::{RuleSet, builtin_rules};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TRAILHOUND_PYTHON") {
        return Some(PathBuf::from(path));
    }
    let venv = root().join(".venv/bin/python");
    venv.exists().then_some(venv)
}

/// A Hive column type as DuckDB's.
fn duckdb_type(hive: &str) -> String {
    if hive == "string" {
        return "VARCHAR".into();
    }
    if let Some(inner) = hive.strip_prefix("array<").and_then(|t| t.strip_suffix('>')) {
        return format!("{}[]", duckdb_type(inner));
    }
    if hive == "map<string,string>" {
        return "MAP(VARCHAR, VARCHAR)".into();
    }
    let inner = hive
        .strip_prefix("struct<")
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or_else(|| panic!("type {hive}"));
    // Split at commas outside brackets.
    let mut members = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (at, c) in inner.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ',' if depth == 0 => {
                members.push(&inner[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    members.push(&inner[start..]);
    let members: Vec<String> = members
        .iter()
        .map(|m| {
            let (name, kind) = m.split_once(':').expect("name:type");
            format!("\"{name}\" {}", duckdb_type(kind))
        })
        .collect();
    format!("STRUCT({})", members.join(", "))
}

/// Every string in `value` (not keys) through `f`.
fn map_strings(value: &mut Value, f: &dyn Fn(&str) -> String) {
    match value {
        Value::String(s) => *s = f(s),
        Value::Array(items) => items.iter_mut().for_each(|v| map_strings(v, f)),
        Value::Object(map) => map.values_mut().for_each(|v| map_strings(v, f)),
        _ => {}
    }
}

/// Events made to probe the edges of matching.
fn edge_cases() -> Vec<Value> {
    let base = trailhound_rules::testcase::default_record();
    let patches = [
        serde_json::json!({"eventSource": "ec2.amazonaws.com", "eventName": "AuthorizeSecurityGroupIngress",
            "requestParameters": {"ipPermissions": {"items": [[{"ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]]}}}),
        serde_json::json!({"eventSource": "ec2.amazonaws.com", "eventName": "AuthorizeSecurityGroupIngress",
            "requestParameters": {"ipPermissions": {"items": [{"ipRanges": {"items": [null, {"cidrIp": null}, {"cidrIp": "0.0.0.0/0"}]}}]}}}),
        serde_json::json!({"eventSource": "iam.amazonaws.com", "eventName": "CreateAccessKey", "requestParameters": {"userName": null}}),
        serde_json::json!({"eventSource": "iam.amazonaws.com", "eventName": "CreateAccessKey", "requestParameters": {"userName": ["ALICE", null]}}),
        serde_json::json!({"eventSource": "iam.amazonaws.com", "eventName": "CreateLoginProfile", "requestParameters": {"userName": "Al\u{130}ce"},
            "userIdentity": {"userName": "al\u{130}ce"}}),
        serde_json::json!({"eventSource": "logs.amazonaws.com", "eventName": "PutRetentionPolicy", "requestParameters": {"retentionInDays": " 1 "}}),
        serde_json::json!({"eventSource": "logs.amazonaws.com", "eventName": "PutRetentionPolicy", "requestParameters": {"retentionInDays": "-inf"}}),
        serde_json::json!({"eventSource": "logs.amazonaws.com", "eventName": "PutRetentionPolicy", "requestParameters": {"retentionInDays": 1.5e0}}),
        serde_json::json!({"eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging", "requestParameters": "not json"}),
        serde_json::json!({"eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging", "requestParameters": [1, "a"]}),
        serde_json::json!({"eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging", "requestParameters": {}, "errorCode": null}),
        serde_json::json!({"eventSource": "s3.amazonaws.com", "eventName": "PutBucketPolicy",
            "requestParameters": {"bucketPolicy": {"Statement": [[{"Effect": "Allow", "Principal": "*"}], {"Principal": {"AWS": ["*"]}}]}}}),
        serde_json::json!({"eventSource": "kms.amazonaws.com", "eventName": "ScheduleKeyDeletion", "readOnly": "TRUE", "userAgent": "\u{17F}tratus \u{212A}ali"}),
        serde_json::json!({"eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin", "userIdentity": {"type": "Root"},
            "responseElements": {"ConsoleLogin": "Success"}, "additionalEventData": {"MFAUsed": "No"}, "sourceIPAddress": " 203.0.113.9 "}),
    ];
    patches
        .iter()
        .map(|patch| {
            let mut record = base.clone();
            trailhound_rules::testcase::merge(&mut record, patch);
            record
        })
        .collect()
}

/// Records of a fixture file: a JSON array or `{"Records": [...]}`, texts kept as written.
fn fixture_records(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("fixture");
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(rename = "Records")]
        records: Vec<Box<serde_json::value::RawValue>>,
    }
    if let Ok(list) = serde_json::from_str::<Vec<Box<serde_json::value::RawValue>>>(&text) {
        return list.into_iter().map(|r| r.get().to_string()).collect();
    }
    if let Ok(envelope) = serde_json::from_str::<Envelope>(&text) {
        return envelope.records.into_iter().map(|r| r.get().to_string()).collect();
    }
    Vec::new()
}

#[test]
fn compiled_sql_selects_exactly_what_the_engine_matches() {
    let Some(python) = python() else {
        assert!(
            std::env::var_os("TRAILHOUND_REQUIRE_MOTO").is_none(),
            "the virtualenv with duckdb and sqlglot is required (TRAILHOUND_REQUIRE_MOTO)"
        );
        eprintln!("skipped: no .venv (python3 -m venv .venv && .venv/bin/pip install duckdb sqlglot)");
        return;
    };
    let (rules, errors) = builtin_rules();
    assert!(errors.is_empty(), "{errors:?}");
    let (set, errors) = RuleSet::new(rules);
    assert!(errors.is_empty(), "{errors:?}");

    // The events: texts the engine reads and rows the table holds.
    let mut texts: Vec<String> = Vec::new();
    let mut own_tests = 0;
    for rule in set.rules() {
        for (index, case) in rule.tests.iter().enumerate() {
            for json in case.records_json(&rule.id, index) {
                let value: Value = serde_json::from_str(&json).expect("test record");
                for f in [
                    &(|s: &str| s.to_string()) as &dyn Fn(&str) -> String,
                    &|s: &str| s.to_uppercase(),
                    &|s: &str| s.replace('k', "\u{212A}").replace('s', "\u{17F}"),
                ] {
                    let mut copy = value.clone();
                    map_strings(&mut copy, f);
                    texts.push(copy.to_string());
                }
                own_tests += 1;
            }
        }
    }
    texts.extend(edge_cases().iter().map(Value::to_string));
    let mut fixtures = 0;
    for folder in ["tests/fixtures/stratus", "tests/fixtures/stratus-techniques"] {
        let Ok(entries) = std::fs::read_dir(root().join(folder)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths.iter().filter(|p| p.extension().is_some_and(|e| e == "json")) {
            let records = fixture_records(path);
            fixtures += records.len();
            texts.extend(records);
        }
    }
    // Only what the engine reads as a record: the others are never matched by anything.
    texts.retain(|text| Record::parse(text).is_ok());
    let records: Vec<Record<'_>> = texts.iter().map(|t| Record::parse(t).expect("parsed above")).collect();

    let dir = tempfile::tempdir().expect("temp dir");
    let mut rows = String::new();
    for (n, text) in texts.iter().enumerate() {
        let mut row = sql::table::row(text).expect("row");
        row["_n"] = n.into();
        rows.push_str(&row.to_string());
        rows.push('\n');
    }
    std::fs::write(dir.path().join("rows.ndjson"), rows).expect("rows");
    let columns: Vec<String> = sql::table::column_types()
        .iter()
        .map(|(name, kind)| format!("\"{name}\" {}", duckdb_type(kind)))
        .collect();
    std::fs::write(
        dir.path().join("table.sql"),
        format!("CREATE TABLE cloudtrail (_n BIGINT, {})", columns.join(", ")),
    )
    .expect("table");

    // The queries, and what the engine says.
    let detections: Vec<_> = set
        .rules()
        .iter()
        .filter(|r| !r.is_correlation() && !r.is_filter())
        .collect();
    let mut queries = Vec::new();
    let mut expected: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut refused: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for rule in &detections {
        let athena = sql::where_clause(rule, Dialect::Athena);
        let duckdb = sql::where_clause(rule, Dialect::Duckdb);
        match (athena, duckdb) {
            (Ok(athena), Ok(duckdb)) => {
                queries.push(serde_json::json!({"rule": rule.id, "athena": athena, "duckdb": duckdb}));
                let matched = (0..records.len()).filter(|&n| rule.matches(&records[n])).collect();
                expected.insert(&rule.id, matched);
            }
            (Err(reason), _) | (_, Err(reason)) => refused.entry(reason.0).or_default().push(&rule.id),
        }
    }
    std::fs::write(
        dir.path().join("queries.json"),
        serde_json::to_string(&queries).expect("json"),
    )
    .expect("queries");

    let output = Command::new(&python)
        .arg(root().join("crates/trailhound-rules/tests/sql/differential.py"))
        .arg(dir.path())
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "differential.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).expect("results"))
            .expect("json");

    let mut failures = Vec::new();
    let mut matched_total = 0;
    for result in results["results"].as_array().expect("results") {
        let rule = result["rule"].as_str().expect("rule");
        let want = &expected[rule];
        matched_total += want.len();
        for dialect in ["duckdb", "athena"] {
            let got = &result[dialect];
            if let Some(err) = got.get("error") {
                failures.push(format!("{rule} ({dialect}): {err}"));
                continue;
            }
            let got: Vec<usize> = got["rows"]
                .as_array()
                .expect("rows")
                .iter()
                .map(|n| n.as_u64().expect("n") as usize)
                .collect();
            if got != *want {
                let extra: Vec<&str> = got
                    .iter()
                    .filter(|n| !want.contains(n))
                    .map(|&n| texts[n].as_str())
                    .take(2)
                    .collect();
                let missing: Vec<&str> = want
                    .iter()
                    .filter(|n| !got.contains(n))
                    .map(|&n| texts[n].as_str())
                    .take(2)
                    .collect();
                failures.push(format!(
                    "{rule} ({dialect}): SQL selected {} events, the engine matched {}\n  selected, not matched: {extra:?}\n  matched, not selected: {missing:?}",
                    got.len(),
                    want.len()
                ));
            }
        }
    }
    let compiled = queries.len();
    let not_compiled: usize = refused.values().map(Vec::len).sum();
    eprintln!(
        "SQL differential: {compiled} of {} built-in detection rules compile ({not_compiled} do not); {} events ({own_tests} rule test events, x3 with the hostile copies, {fixtures} fixture records, {} edge cases); {matched_total} rule matches; DuckDB {:.1} s",
        detections.len(),
        texts.len(),
        edge_cases().len(),
        results["seconds"].as_f64().unwrap_or_default()
    );
    for (reason, ids) in &refused {
        eprintln!("  not compiled ({}): {reason}: {}", ids.len(), ids.join(", "));
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(compiled * 10 >= detections.len() * 9, "most rules compile");
}
