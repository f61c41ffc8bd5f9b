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

/// The bodies of the requests of one operation, in order.
fn bodies<'c>(calls: &'c [(String, Value)], operation: &str) -> Vec<&'c Value> {
    calls
        .iter()
        .filter(|(op, _)| op == operation)
        .map(|(_, body)| body)
        .collect()
}

/// The id of the first query polled.
fn first_polled(calls: &[(String, Value)]) -> &str {
    calls
        .iter()
        .find(|(op, _)| op == "GetQueryExecution")
        .and_then(|(_, body)| body["QueryExecutionId"].as_str())
        .expect("polled")
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
    let starts = bodies(&calls, "StartQueryExecution");
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
    for body in bodies(&calls, "StartQueryExecution") {
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
    let failed = first_polled(&calls);
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

/// The StartQueryExecution SQL moto received, in order.
fn started_sql(moto: &Moto) -> Vec<String> {
    bodies(&athena_calls(moto), "StartQueryExecution")
        .into_iter()
        .filter_map(|body| body["QueryString"].as_str().map(str::to_string))
        .collect()
}

/// The same command over the records from a file and over the table (whose queries each get
/// every record: moto runs no SQL, and the command filters the rows itself).
fn file_and_table(moto: &Moto, records: &[String], queries: usize, args: &[&str]) -> (String, String) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("records.jsonl");
    std::fs::write(&path, records.join("\n")).expect("write");
    let local = run(trailhound()
        .args([args[0], &path.display().to_string()])
        .args(WINDOW)
        .args(&args[1..]));
    assert_eq!(local.code, 0, "{}", local.stderr);
    queue(moto, (0..queries).map(|_| result_set(records)).collect());
    let remote = run(trailhound()
        .args([args[0], TABLE, "--endpoint-url", &moto.url()])
        .args(["--athena-output", "s3://trailhound-athena-results/trailhound/"])
        .args(WINDOW)
        .args(&args[1..]));
    assert_eq!(remote.code, 0, "{}", remote.stderr);
    (local.stdout, remote.stdout)
}

#[test]
fn events_and_timeline_push_their_filters_down() {
    let Some(moto) = Moto::start() else {
        return;
    };
    let records = records();
    let args = [
        "events",
        "--where",
        "eventSource=iam.amazonaws.com",
        "--where",
        "trailhound.src.kind=ipv4",
        "--name",
        "CreateAccessKey",
        "--name",
        "CreateUser",
        "--fields",
        "eventTime,eventName,eventID,sourceIPAddress,trailhound.src.kind",
        "--format",
        "jsonl",
    ];
    let (local, remote) = file_and_table(&moto, &records, 1, &args);
    assert!(jsonl(&local).len() >= 2, "{local}");
    assert_eq!(remote, local);
    let sql = started_sql(&moto);
    assert_eq!(sql.len(), 1, "{sql:?}");
    let query = &sql[0];
    assert!(
        query.contains("createaccesskey") && query.contains("iam.amazonaws.com"),
        "{query}"
    );
    assert!(!query.contains("trailhound"), "a derived field stays local: {query}");

    let key = "AKIA2CIDEPLOYEXAMPLE";
    let args = ["timeline", "--access-key", key, "--format", "jsonl"];
    let (local, remote) = file_and_table(&moto, &records, 2, &args);
    assert!(jsonl(&local).len() >= 50, "{local}");
    assert_eq!(remote, local);
    let sql = started_sql(&moto);
    assert_eq!(sql.len(), 2, "two passes: {sql:?}");
    assert!(
        sql[0].contains("assumerole") && sql[0].contains("createaccesskey"),
        "{}",
        sql[0]
    );
    assert!(sql[1].contains(&key.to_lowercase()), "{}", sql[1]);
    assert!(sql.iter().all(|q| q.contains(" AND ((")), "{sql:?}");
}

#[test]
fn an_incremental_hunt_starts_before_its_cursor_and_skips_what_it_read() {
    let Some(moto) = Moto::start() else {
        return;
    };
    let records = records();
    let store = tempfile::tempdir().expect("store");
    let store = store.path().join("cases.db");
    let time = |record: &String| -> String {
        let value: Value = serde_json::from_str(record).expect("record");
        value["eventTime"].as_str().unwrap_or_default().to_string()
    };
    let hunt = |moto: &Moto, window: &[&str], rows: &[String]| {
        queue(moto, (0..3).map(|_| result_set(rows)).collect());
        let out = run(trailhound()
            .args(["hunt", TABLE, "--format", "jsonl", "--endpoint-url", &moto.url()])
            .args(["--athena-output", "s3://trailhound-athena-results/trailhound/"])
            .args(["--store", &store.display().to_string(), "--since-last-run"])
            .args(window)
            .args(exclude_uncompiled()));
        assert_eq!(out.code, 0, "{}", out.stderr);
        out
    };
    // First run: up to 2026-11-19T20:00. Moto returns the rows the SQL would.
    let first_rows: Vec<String> = records
        .iter()
        .filter(|r| time(r).as_str() < "2026-11-19T20")
        .cloned()
        .collect();
    let first = hunt(
        &moto,
        &["--since", "2026-11-16T00:00:00Z", "--until", "2026-11-19T20:00:00Z"],
        &first_rows,
    );
    assert!(!jsonl(&first.stdout).is_empty());
    // Second run, no --since: from an hour before where the first stopped.
    let second_rows: Vec<String> = records
        .iter()
        .filter(|r| time(r).as_str() >= "2026-11-19T19:00:00Z")
        .cloned()
        .collect();
    let overlap = second_rows
        .iter()
        .filter(|r| time(r).as_str() < "2026-11-19T20")
        .count();
    assert!(overlap > 0, "the example has events in the hour before the cursor");
    let second = hunt(&moto, &["--until", "2026-11-23T00:00:00Z"], &second_rows);
    let sql = started_sql(&moto);
    let last = &sql[sql.len() - 3..];
    assert!(
        last.iter()
            .all(|q| q.contains("\"day\" BETWEEN '2026/11/19' AND '2026/11/23'")
                && q.contains("eventtime >= '2026-11-19T19:00:00Z' AND eventtime < '2026-11-23T00:00:00Z'")),
        "{last:?}"
    );
    assert!(
        second
            .stderr
            .contains(&format!("{overlap} read by the last run skipped")),
        "{}",
        second.stderr
    );
    assert!(
        second
            .stderr
            .contains("60 minutes before where the last run stopped, 2026-11-19T20:00:00Z"),
        "{}",
        second.stderr
    );
    // Between them, the two runs found each event's findings once: those of the whole window.
    let events = |stdout: &str| -> Vec<String> {
        jsonl(stdout)
            .into_iter()
            .filter(|f| f.get("correlation").is_none())
            .map(|f| format!("{} {}", f["rule_id"], f["event_id"]))
            .collect()
    };
    let mut both: Vec<String> = events(&first.stdout)
        .into_iter()
        .chain(events(&second.stdout))
        .collect();
    both.sort();
    let exclude = exclude_uncompiled();
    let exclude: Vec<&str> = exclude.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("records.jsonl");
    std::fs::write(&path, records.join("\n")).expect("write");
    let local = run(trailhound()
        .args(["hunt", &path.display().to_string(), "--format", "jsonl"])
        .args(WINDOW)
        .args(&exclude));
    let mut whole = events(&local.stdout);
    whole.sort();
    assert!(whole.len() >= 20, "{}", whole.len());
    assert_eq!(both, whole);
}

#[test]
fn athena_table_create_runs_the_statement_it_prints() {
    let Some(moto) = Moto::start() else {
        return;
    };
    let printed = run(trailhound().args(["athena", "table", "s3://org-trails", "--table", "trails.cloudtrail"]));
    assert_eq!(printed.code, 0, "{}", printed.stderr);
    assert_eq!(count(&athena_calls(&moto), "StartQueryExecution"), 0);
    let created = run(trailhound()
        .args([
            "athena",
            "table",
            "s3://org-trails",
            "--table",
            "trails.cloudtrail",
            "--create",
        ])
        .args(["--workgroup", "primary", "--endpoint-url", &moto.url()])
        .args(["--athena-output", "s3://trailhound-athena-results/trailhound/"]));
    assert_eq!(created.code, 0, "{}", created.stderr);
    assert_eq!(created.stdout, printed.stdout, "the statement is printed all the same");
    let calls = athena_calls(&moto);
    let starts = bodies(&calls, "StartQueryExecution");
    assert_eq!(starts.len(), 1, "{calls:?}");
    let sql = starts[0]["QueryString"].as_str().expect("SQL");
    assert_eq!(format!("{sql};\n"), printed.stdout);
    assert!(
        sql.starts_with("CREATE EXTERNAL TABLE IF NOT EXISTS trails.cloudtrail ("),
        "{sql}"
    );
    assert_eq!(starts[0]["WorkGroup"], "primary");
    assert_eq!(starts[0]["QueryExecutionContext"]["Database"], "trails");
    assert!(count(&calls, "GetQueryExecution") >= 1, "waited for it: {calls:?}");
    assert_eq!(count(&calls, "GetQueryResults"), 0);
    let id = first_polled(&calls);
    assert!(
        created.stderr.contains(&format!(
            "created table trails.cloudtrail in the workgroup primary (Athena query {id})"
        )),
        "{}",
        created.stderr
    );

    let failed = run(trailhound()
        .args([
            "athena",
            "table",
            "s3://org-trails",
            "--table",
            "trails.does_not_exist",
            "--create",
        ])
        .args(["--endpoint-url", &moto.url()]));
    assert_eq!(failed.code, 2, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("creating trails.does_not_exist") && failed.stderr.contains("FAILED: TABLE_NOT_FOUND"),
        "{}",
        failed.stderr
    );
    let refused = run(trailhound().args(["athena", "table", "s3://org-trails", "--workgroup", "primary"]));
    assert_eq!(refused.code, 2, "--workgroup goes with --create: {}", refused.stderr);
}
