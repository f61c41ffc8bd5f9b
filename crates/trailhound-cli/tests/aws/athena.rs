//! `hunt athena://` against moto's Athena: moto runs no SQL, so each test queues the result sets
//! the queries would return (rows made by `sql::table::row`, as the differential test makes
//! them, in Athena's text form) and the findings must equal those of the same records hunted
//! from a file. Also: paging (1,000 rows a page), polling through QUEUED and RUNNING,
//! throttling recovered with backoff, a FAILED query naming its id and reason and stopping the
//! others, the scan and its cost reported, and `--max-scan-gb` refusing before any query.
//! (`support/moto_server.py` makes moto page, fail, throttle and report bytes as Athena does.)

use std::io::{Read, Write};
use std::time::Instant;

use serde_json::{Value, json};
use trailhound_rules::sql::table;

use crate::support::{Moto, jsonl, run, trailhound};

const WINDOW: [&str; 4] = ["--since", "2026-11-16T00:00:00Z", "--until", "2026-11-23T00:00:00Z"];
const TABLE: &str = "athena://primary/trails.cloudtrail";

/// Every record of the example account, sorted by event time (as the queries order them).
fn records() -> Vec<String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for relative in crate::files_under(&crate::examples()) {
        let name = relative.to_string_lossy().to_string();
        if !name.starts_with("CloudTrail/") || !name.ends_with(".json.gz") {
            continue;
        }
        let bytes = std::fs::read(crate::examples().join(&relative)).expect("example file");
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .expect("gzip");
        let document: Value = serde_json::from_str(&text).expect("json");
        for record in document["Records"].as_array().cloned().unwrap_or_default() {
            let time = record["eventTime"].as_str().unwrap_or_default().to_string();
            out.push((time, record.to_string()));
        }
    }
    out.sort();
    out.into_iter().map(|(_, record)| record).collect()
}

/// The column names, as Athena's header row gives them.
fn header() -> Vec<String> {
    table::column_types().into_iter().map(|(name, _)| name).collect()
}

/// A record as a row of Athena's results: every value text, structs and arrays as the JSON
/// text `json_format(CAST(... AS JSON))` gives, null as no value.
fn athena_row(record: &str) -> Value {
    let row = table::row(record).expect("row");
    let data: Vec<Value> = header()
        .iter()
        .map(|name| match &row[name] {
            Value::Null => json!({}),
            Value::String(text) => json!({"VarCharValue": text}),
            other => json!({"VarCharValue": other.to_string()}),
        })
        .collect();
    json!({"Data": data})
}

/// One result set: the header, then a row per record.
fn result_set(records: &[String]) -> Value {
    let head: Vec<Value> = header().iter().map(|n| json!({"VarCharValue": n})).collect();
    let mut rows = vec![json!({"Data": head})];
    rows.extend(records.iter().map(|r| athena_row(r)));
    json!({"rows": rows, "column_info": []})
}

/// POSTs JSON to moto's own API.
fn moto_api(moto: &Moto, path: &str, body: &Value) {
    let body = body.to_string();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", moto.port)).expect("connect");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    assert!(
        answer.starts_with("HTTP/1.1 20") || answer.starts_with("HTTP/1.0 20"),
        "{path}: {answer}"
    );
}

/// Queues one result set per query, in the order the queries start.
fn queue(moto: &Moto, sets: Vec<Value>) {
    moto_api(
        moto,
        "/moto-api/static/athena/query-results",
        &json!({"region": "us-east-1", "results": sets}),
    );
}

/// Queries go QUEUED, RUNNING, SUCCEEDED one poll at a time, as they would on Athena.
fn slow_queries(moto: &Moto) {
    moto_api(
        moto,
        "/moto-api/state-manager/set-transition",
        &json!({"model_name": "athena::execution", "transition": {"progression": "manual", "times": 2}}),
    );
}

/// Athena requests moto received, as (operation, body).
fn athena_calls(moto: &Moto) -> Vec<(String, Value)> {
    moto.take_recorded()
        .into_iter()
        .filter_map(|v| {
            let headers = v["headers"].as_object()?;
            let target = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-target"))?
                .1
                .as_str()?;
            let operation = target.strip_prefix("AmazonAthena.")?.to_string();
            let raw = v["body"].as_str().unwrap_or_default();
            let body = if v["body_encoded"].as_bool() == Some(true) {
                String::from_utf8(crate::base64_decode(raw)).unwrap_or_default()
            } else {
                raw.to_string()
            };
            Some((operation, serde_json::from_str(&body).unwrap_or(Value::Null)))
        })
        .collect()
}

fn count(calls: &[(String, Value)], operation: &str) -> usize {
    calls.iter().filter(|(op, _)| op == operation).count()
}

/// Findings as comparable text, whatever source they name.
fn findings(stdout: &str) -> Vec<String> {
    let mut out: Vec<String> = jsonl(stdout)
        .into_iter()
        .map(|mut f| {
            f["source_file"] = Value::Null;
            f.to_string()
        })
        .collect();
    out.sort();
    out
}

/// The same records hunted from a file, with `args`.
fn from_file(records: &[String], args: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("records.jsonl");
    std::fs::write(&path, records.join("\n")).expect("write");
    let local = run(trailhound()
        .args(["hunt", &path.display().to_string(), "--format", "jsonl"])
        .args(WINDOW)
        .args(args));
    assert_eq!(local.code, 0, "{}", local.stderr);
    findings(&local.stdout)
}

fn hunt_athena(moto: &Moto, args: &[&str]) -> crate::support::Run {
    run(trailhound()
        .args(["hunt", TABLE, "--format", "jsonl", "--endpoint-url", &moto.url()])
        .args(["--athena-output", "s3://trailhound-athena-results/trailhound/"])
        .args(WINDOW)
        .args(args))
}

/// The rules that have no SQL form (`athena plan` lists them) and the correlation that counts
/// one of them, as --exclude-rule arguments: the rest of the pack is pushed down.
fn exclude_uncompiled() -> Vec<String> {
    let out = run(trailhound().args(["athena", "plan", "--since", "2026-11-16T00:00:00Z"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout
        .lines()
        .filter_map(|l| l.strip_prefix("not compiled"))
        .filter_map(|l| l.trim().split(':').next())
        .chain(["aws-context-access-key-two-networks"])
        .flat_map(|id| ["--exclude-rule".to_string(), id.to_string()])
        .collect()
}

/// A rule with no SQL form (`\b` has no exact form in Athena's regexes), as `--rules` arguments:
/// with it, a plan reads every row of the window. The folder lives as long as the guard.
fn every_row_rule() -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("every-row.yml");
    std::fs::write(
        &path,
        "title: needs every row\nname: test-every-row\nlogsource: {product: aws, service: cloudtrail}\nlevel: low\ndetection:\n  sel:\n    userAgent|re: 'aws-cli\\b'\n  condition: sel\n",
    )
    .expect("rule");
    let args = vec!["--rules".to_string(), path.display().to_string()];
    (dir, args)
}

#[test]
fn athena_every_row_equals_files_with_paging_polling_throttling_and_cost() {
    let Some(moto) = Moto::start_with(&[
        ("TRAILHOUND_MOTO_ATHENA_THROTTLE_EVERY", "4"),
        ("TRAILHOUND_MOTO_ATHENA_SCANNED", "1234567890"),
    ]) else {
        return;
    };
    let records = records();
    assert!(records.len() > 2000, "{} records: several pages", records.len());
    slow_queries(&moto);
    queue(&moto, vec![result_set(&records)]);
    let (_rules, every_row) = every_row_rule();
    let every_row: Vec<&str> = every_row.iter().map(String::as_str).collect();
    let started = Instant::now();
    let remote = hunt_athena(&moto, &every_row);
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(remote.code, 0, "{}", remote.stderr);
    let local = from_file(&records, &every_row);
    assert!(local.len() >= 40, "{}", local.len());
    assert_eq!(findings(&remote.stdout), local);
    assert!(
        jsonl(&remote.stdout).iter().all(|f| f["source_file"] == TABLE),
        "findings name the table as their source"
    );

    let calls = athena_calls(&moto);
    let starts: Vec<&Value> = calls
        .iter()
        .filter(|(op, _)| op == "StartQueryExecution")
        .map(|(_, body)| body)
        .collect();
    // A rule with no SQL form: one query, every row of the window.
    assert!(
        !starts.is_empty() && starts.iter().all(|b| b == &starts[0]),
        "{starts:?}"
    );
    let query = starts[0]["QueryString"].as_str().expect("SQL");
    assert!(
        query.starts_with("SELECT eventversion, json_format(CAST(useridentity AS JSON))"),
        "{query}"
    );
    assert!(
        query.contains("FROM trails.cloudtrail WHERE \"day\" BETWEEN '2026/11/16' AND '2026/11/23'"),
        "{query}"
    );
    assert!(
        query.ends_with("eventtime < '2026-11-23T00:00:00Z' ORDER BY eventtime"),
        "{query}"
    );
    assert_eq!(starts[0]["WorkGroup"], "primary");
    assert_eq!(starts[0]["QueryExecutionContext"]["Database"], "trails");
    assert_eq!(
        starts[0]["ResultConfiguration"]["OutputLocation"],
        "s3://trailhound-athena-results/trailhound/"
    );
    assert!(
        count(&calls, "GetQueryExecution") >= 4,
        "polled through QUEUED and RUNNING: {calls:?}"
    );
    // The header is the first row of the first page.
    let pages = (records.len() + 1).div_ceil(1000);
    assert!(count(&calls, "GetQueryResults") >= pages);
    assert_eq!(count(&calls, "StopQueryExecution"), 0);
    let throttled = calls.len() / 4;
    assert!(throttled >= 2, "{calls:?}");
    let stderr = &remote.stderr;
    assert!(stderr.contains("one query for every row: "), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} rows in {pages} pages (0 bad, 0 returned by two queries)",
            records.len()
        )),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("({throttled} throttled)")), "{stderr}");
    assert!(
        stderr.contains("Athena scanned 1.23 GB: $0.0062 at $5 per TB"),
        "{stderr}"
    );
    eprintln!(
        "athena:// on moto: {} rows in {pages} pages, {} Athena requests ({throttled} throttled), {seconds:.1} s",
        records.len(),
        calls.len()
    );
}

#[test]
fn athena_pushed_down_queries_merge_in_time_order_and_equal_files() {
    let Some(moto) = Moto::start() else {
        return;
    };
    let exclude = exclude_uncompiled();
    assert!(!exclude.is_empty());
    let args: Vec<&str> = exclude.iter().map(String::as_str).collect();
    let records = records();
    // Each query gets every row: the rows two queries share are kept once, and the engine
    // decides what is found, so the findings are those of the records whatever the SQL chose.
    let mut sets: Vec<Value> = (0..8).map(|_| result_set(&records)).collect();
    // Two hostile rows in the first query's results: a struct that is not JSON, no event time.
    let rows = sets[0]["rows"].as_array_mut().expect("rows");
    let mut broken = rows[10].clone();
    broken["Data"][1] = json!({"VarCharValue": "{type=IAMUser, arn=x}"});
    let mut timeless = rows[11].clone();
    timeless["Data"][2] = json!({});
    rows.insert(5, broken);
    rows.insert(6, timeless);
    queue(&moto, sets);
    let remote = hunt_athena(&moto, &args);
    assert_eq!(remote.code, 0, "{}", remote.stderr);
    assert_eq!(findings(&remote.stdout), from_file(&records, &args));
    let calls = athena_calls(&moto);
    let queries = count(&calls, "StartQueryExecution");
    assert!(queries >= 2, "the pack is more SQL than one query holds: {queries}");
    for (_, body) in calls.iter().filter(|(op, _)| op == "StartQueryExecution") {
        let sql = body["QueryString"].as_str().expect("SQL");
        assert!(sql.len() < 262_144 && sql.contains(" AND ((") && sql.ends_with(") ORDER BY eventtime"));
    }
    let stderr = &remote.stderr;
    assert!(
        stderr.contains(&format!("pushed down as SQL in {queries} queries")),
        "{stderr}"
    );
    // The first query has two rows more, which fit in its last page.
    assert!(
        stderr.contains(&format!(
            "{} rows in {} pages (2 bad, {} returned by two queries)",
            records.len() * queries + 2,
            (records.len() + 1).div_ceil(1000) * queries,
            records.len() * (queries - 1)
        )),
        "{stderr}"
    );
    let first = calls
        .iter()
        .find(|(op, _)| op == "GetQueryResults")
        .and_then(|(_, body)| body["QueryExecutionId"].as_str())
        .expect("paged");
    assert!(
        stderr.contains(&format!(
            "athena://primary/trails.cloudtrail query {first} row 5: column useridentity: not the JSON text of its struct"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("query {first} row 6: no eventtime that reads as a time")),
        "{stderr}"
    );
}

#[test]
fn a_failed_query_names_its_id_and_reason_and_stops_the_others() {
    let Some(moto) = Moto::start() else {
        return;
    };
    let exclude = exclude_uncompiled();
    let out = run(trailhound()
        .args(["hunt", "athena://trails.does_not_exist", "--endpoint-url", &moto.url()])
        .args(WINDOW)
        .args(&exclude));
    assert_eq!(out.code, 2, "{}", out.stderr);
    let calls = athena_calls(&moto);
    let started = count(&calls, "StartQueryExecution");
    assert!(started >= 2);
    let failed = calls
        .iter()
        .find(|(op, _)| op == "GetQueryExecution")
        .and_then(|(_, body)| body["QueryExecutionId"].as_str())
        .expect("polled");
    assert!(
        out.stderr.contains(&format!(
            "athena://trails.does_not_exist: Athena query {failed} FAILED: TABLE_NOT_FOUND: line 1:8: Table 'awsdatacatalog.trails.does_not_exist' does not exist"
        )),
        "{}",
        out.stderr
    );
    assert_eq!(count(&calls, "StopQueryExecution"), started - 1, "{calls:?}");
    assert!(
        out.stderr.contains("stopped the queries this run had started"),
        "{}",
        out.stderr
    );
    // A rows-reading run that fails prints no findings.
    assert!(out.stdout.is_empty());
}

#[test]
fn max_scan_gb_refuses_before_any_query() {
    let Some(moto) = Moto::start() else {
        return;
    };
    let over = hunt_athena(
        &moto,
        &[
            "--accounts",
            "111122223333",
            "--mb-per-partition",
            "100",
            "--max-scan-gb",
            "1",
        ],
    );
    assert_eq!(over.code, 2, "{}", over.stderr);
    // 1 account x 17 regions x 8 days x 100 MB, for each of the pushed-down pack's 3 queries.
    assert!(
        over.stderr
            .contains("expected to scan 40.80 GB, above --max-scan-gb 1.00: no query was started"),
        "{}",
        over.stderr
    );
    let unknown = hunt_athena(&moto, &["--max-scan-gb", "1000"]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(
        unknown
            .stderr
            .contains("the expected scan cannot be estimated (the accounts are not named (--accounts)"),
        "{}",
        unknown.stderr
    );
    assert_eq!(count(&athena_calls(&moto), "StartQueryExecution"), 0);

    let no_since = run(trailhound().args(["hunt", TABLE, "--endpoint-url", &moto.url()]));
    assert_eq!(no_since.code, 2, "{}", no_since.stderr);
    assert!(no_since.stderr.contains("give --since"), "{}", no_since.stderr);
}

#[test]
fn ctrl_c_stops_the_queries_it_started() {
    let Some(moto) = Moto::start() else {
        return;
    };
    // Queries stay QUEUED for a long time.
    moto_api(
        &moto,
        "/moto-api/state-manager/set-transition",
        &json!({"model_name": "athena::execution", "transition": {"progression": "manual", "times": 1000}}),
    );
    let (_rules, every_row) = every_row_rule();
    let child = crate::support::trailhound_process()
        .args(["hunt", TABLE, "--format", "jsonl", "--endpoint-url", &moto.url()])
        .args(WINDOW)
        .args(&every_row)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("trailhound starts");
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    while !std::fs::read_to_string(&moto.recording)
        .unwrap_or_default()
        .contains("AmazonAthena.GetQueryExecution")
    {
        assert!(Instant::now() < deadline, "trailhound never polled its query");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-s", "INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("trailhound ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let calls = athena_calls(&moto);
    let started: Vec<&str> = calls
        .iter()
        .filter(|(op, _)| op == "GetQueryExecution")
        .filter_map(|(_, body)| body["QueryExecutionId"].as_str())
        .collect();
    let stopped: Vec<&str> = calls
        .iter()
        .filter(|(op, _)| op == "StopQueryExecution")
        .filter_map(|(_, body)| body["QueryExecutionId"].as_str())
        .collect();
    assert_eq!(stopped, started[..1], "{calls:?}");
    assert!(
        stderr.contains(&format!(
            "athena://primary/trails.cloudtrail: interrupted (stopped the queries this run had started: {})",
            stopped[0]
        )),
        "{stderr}"
    );
}
