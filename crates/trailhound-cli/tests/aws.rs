//! The AWS-facing sources against real protocol peers: trail buckets and Athena on moto's
//! server, and LookupEvents on a small server of our own (moto has no LookupEvents). Findings
//! must equal those from hunting the same events on disk; request counts prove window pruning.

#[path = "aws/alerts.rs"]
mod alerts;
#[path = "aws/athena.rs"]
mod athena;
#[path = "aws/inventory.rs"]
mod inventory;
#[path = "aws/lookup.rs"]
mod lookup;
#[path = "aws/schema.rs"]
mod schema;
mod support;

use std::path::{Path, PathBuf};

use support::{Moto, jsonl, run, trailhound};

const BUCKET: &str = "trail-bucket";

fn examples() -> PathBuf {
    support::root().join("examples/cloudtrail/AWSLogs/111122223333")
}

/// Every file under `dir`, as paths relative to it.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).expect("readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).expect("under dir").to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// A trail bucket in both layouts, and the same objects on disk under `mirror`: the example
/// account (two regions, a week, digests) as `AWSLogs/111122223333/...`, and its us-east-1 logs
/// of Nov 19-22 as a second account of an organization trail, `AWSLogs/o-exampleorg1/444455556666/...`.
struct Seeded {
    keys: Vec<String>,
    mirror: tempfile::TempDir,
}

fn seed(moto: &Moto, runtime: &tokio::runtime::Runtime) -> Seeded {
    let s3 = moto.aws(runtime).s3(None);
    runtime
        .block_on(s3.create_bucket().bucket(BUCKET).send())
        .expect("bucket created");
    let mirror = tempfile::tempdir().expect("mirror dir");
    let mut keys = Vec::new();
    for relative in files_under(&examples()) {
        let text = relative.to_string_lossy().to_string();
        let mut targets = vec![format!("AWSLogs/111122223333/{text}")];
        let org_days = ["2026/11/19/", "2026/11/20/", "2026/11/21/", "2026/11/22/"];
        if text.starts_with("CloudTrail/us-east-1/") && org_days.iter().any(|d| text.contains(d)) {
            targets.push(format!("AWSLogs/o-exampleorg1/444455556666/{text}"));
        }
        let bytes = std::fs::read(examples().join(&relative)).expect("example file");
        for key in targets {
            put(runtime, &s3, &key, bytes.clone(), None);
            let local = mirror.path().join(&key);
            std::fs::create_dir_all(local.parent().expect("parent")).expect("mkdir");
            std::fs::write(&local, &bytes).expect("mirror file");
            keys.push(key);
        }
    }
    Seeded { keys, mirror }
}

fn put(
    runtime: &tokio::runtime::Runtime,
    s3: &aws_sdk_s3::Client,
    key: &str,
    bytes: Vec<u8>,
    class: Option<aws_sdk_s3::types::StorageClass>,
) {
    runtime
        .block_on(
            s3.put_object()
                .bucket(BUCKET)
                .key(key)
                .set_storage_class(class)
                .body(bytes.into())
                .send(),
        )
        .expect("object put");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Findings as comparable text: the source named relative to the bucket or mirror root.
fn normalized(stdout: &str, roots: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = jsonl(stdout)
        .into_iter()
        .map(|f| {
            let mut text = f.to_string();
            for root in roots {
                text = text.replace(root, "");
            }
            text
        })
        .collect();
    out.sort();
    out
}

/// Asserts two normalized finding lists are equal, showing only what differs.
fn same_findings(remote: &[String], local: &[String]) {
    let only_remote: Vec<&String> = remote.iter().filter(|f| !local.contains(f)).collect();
    let only_local: Vec<&String> = local.iter().filter(|f| !remote.contains(f)).collect();
    assert!(
        only_remote.is_empty() && only_local.is_empty() && remote.len() == local.len(),
        "only from S3: {only_remote:#?}\nonly from disk: {only_local:#?}"
    );
}

fn hunt_s3(moto: &Moto, args: &[&str]) -> support::Run {
    run(trailhound()
        .args([
            "hunt",
            &format!("s3://{BUCKET}"),
            "--format",
            "jsonl",
            "--endpoint-url",
            &moto.url(),
        ])
        .args(args))
}

/// Object GETs and ListObjectsV2 calls (with their query) among moto's recorded requests.
fn s3_requests(moto: &Moto) -> (Vec<String>, Vec<String>) {
    let mut gets = Vec::new();
    let mut lists = Vec::new();
    for (method, path) in moto.take_requests() {
        if method != "GET" {
            continue;
        }
        let Some(rest) = path.strip_prefix(&format!("/{BUCKET}")) else {
            continue;
        };
        if rest.contains("list-type=2") {
            lists.push(decode(rest));
        } else if let Some(key) = rest.strip_prefix('/').map(|k| k.split('?').next().unwrap_or_default())
            && !key.is_empty()
        {
            gets.push(decode(key));
        }
    }
    (gets, lists)
}

/// Percent-decoding of a URL's path and query.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn summary_number(stderr: &str, after: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| {
            let i = l.find(after)?;
            let before = l[..i].trim_end();
            before
                .rsplit(|c: char| !c.is_ascii_digit() && c != ',')
                .next()?
                .replace(',', "")
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {after:?} in {stderr}"))
}

#[test]
fn bucket_hunt_equals_the_same_files_on_disk() {
    let Some(moto) = Moto::start() else { return };
    let rt = runtime();
    let seeded = seed(&moto, &rt);
    moto.take_requests();

    let remote = hunt_s3(&moto, &[]);
    assert_eq!(remote.code, 0, "{}", remote.stderr);
    let mirror = seeded.mirror.path().display().to_string();
    let local = run(trailhound().args(["hunt", &mirror, "--format", "jsonl"]));
    assert_eq!(local.code, 0, "{}", local.stderr);
    let from_s3 = normalized(&remote.stdout, &[&format!("s3://{BUCKET}/")]);
    let from_disk = normalized(&local.stdout, &[&format!("{mirror}/")]);
    assert_eq!(
        from_s3.len(),
        51,
        "the organization copy of the same events adds no finding"
    );
    same_findings(&from_s3, &from_disk);
    assert!(from_s3.iter().any(|f| f.contains("aws-cloudtrail-stop-logging")));

    // Every event object was fetched once (the organization layout's included); digests never.
    let (gets, _) = s3_requests(&moto);
    assert!(
        gets.iter()
            .any(|k| k.starts_with("AWSLogs/o-exampleorg1/444455556666/")),
        "the organization layout is read"
    );
    let events = seeded.keys.iter().filter(|k| k.contains("/CloudTrail/")).count();
    assert_eq!(gets.len(), events);
    assert!(gets.iter().all(|k| !k.contains("CloudTrail-Digest")));
    assert!(
        remote.stderr.contains(&format!("s3://{BUCKET}/: 3 accounts/regions")),
        "{}",
        remote.stderr
    );

    // The slicing commands read buckets too.
    let count = |source: &str, extra: &[&str]| {
        let out = run(trailhound()
            .args([
                "events",
                source,
                "--count-by",
                "eventSource,eventName",
                "--top",
                "0",
                "--format",
                "json",
            ])
            .args(extra));
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.stdout
    };
    let by_name = count(&format!("s3://{BUCKET}"), &["--endpoint-url", &moto.url()]);
    assert_eq!(by_name, count(&mirror, &[]));
    assert!(by_name.contains("StopLogging"));
}

#[test]
fn insights_folders_are_read_beside_the_trail() {
    let Some(moto) = Moto::start() else { return };
    let rt = runtime();
    let s3 = moto.aws(&rt).s3(None);
    rt.block_on(s3.create_bucket().bucket(BUCKET).send())
        .expect("bucket created");
    let record = serde_json::json!({"eventVersion": "1.09", "eventTime": "2026-11-20T22:03:15Z",
        "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging", "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.66", "eventID": "stop-1", "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333", "requestParameters": {"name": "management-trail"},
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/backup-svc", "accountId": "111122223333"}});
    let insight = |state: &str, time: &str| {
        serde_json::json!({"eventVersion": "1.07", "eventTime": time, "awsRegion": "us-east-1",
            "eventID": format!("insight-{state}"), "eventType": "AwsCloudTrailInsight",
            "recipientAccountId": "111122223333", "sharedEventID": "s1", "eventCategory": "Insight",
            "insightDetails": {"state": state, "eventSource": "iam.amazonaws.com", "eventName": "CreateAccessKey",
                "insightType": "ApiCallRateInsight",
                "insightContext": {"statistics": {"baseline": {"average": 0.001}, "insight": {"average": 3.0}}}}})
    };
    let trail_key =
        "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/20/111122223333_CloudTrail_us-east-1_20261120T2205Z_a.json";
    let insight_key = "AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2026/11/20/111122223333_CloudTrail-Insight_us-east-1_20261120T2215Z_b.json";
    let digest_key = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/20/111122223333_CloudTrail-Digest_us-east-1_t_us-east-1_20261120T2300Z.json.gz";
    let insights = serde_json::json!({"Records": [insight("Start", "2026-11-20T22:02:00Z"), insight("End", "2026-11-20T22:07:00Z")]});
    put(
        &rt,
        &s3,
        trail_key,
        serde_json::json!({"Records": [record]}).to_string().into_bytes(),
        None,
    );
    put(&rt, &s3, insight_key, insights.to_string().into_bytes(), None);
    put(&rt, &s3, digest_key, b"not read".to_vec(), None);
    moto.take_requests();

    let out = hunt_s3(
        &moto,
        &["--since", "2026-11-20T00:00:00Z", "--until", "2026-11-21T00:00:00Z"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let findings = jsonl(&out.stdout);
    let rules: Vec<&str> = findings.iter().filter_map(|f| f["rule_id"].as_str()).collect();
    assert!(rules.contains(&"aws-cloudtrail-stop-logging"), "{rules:?}");
    assert!(rules.contains(&"aws-cloudtrail-insight-started"), "{rules:?}");
    let (mut gets, _) = s3_requests(&moto);
    gets.sort();
    assert_eq!(gets, [insight_key, trail_key], "both folders read, the digest never");

    // A prefix that names the Insights folder reads it alone.
    let out = run(trailhound().args([
        "hunt",
        &format!("s3://{BUCKET}/AWSLogs/111122223333/CloudTrail-Insight/"),
        "--format",
        "jsonl",
        "--endpoint-url",
        &moto.url(),
    ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rules: Vec<String> = jsonl(&out.stdout)
        .iter()
        .filter_map(|f| f["rule_id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(rules, ["aws-cloudtrail-insight-started"]);
}

/// Whether a delivery-named key may hold events of [since, until): events reach a file up to an
/// hour before its delivery time and a few minutes after (the documented pruning rule).
fn named_in_window(key: &str, since: &str, until: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or_default();
    let stamp = name
        .split('_')
        .find(|p| p.len() == 14 && p.ends_with('Z'))
        .expect("delivery time");
    let at = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%MZ")
        .expect("time")
        .and_utc();
    let since = chrono::DateTime::parse_from_rfc3339(since).expect("since");
    let until = chrono::DateTime::parse_from_rfc3339(until).expect("until");
    at + chrono::Duration::minutes(15) >= since && at - chrono::Duration::hours(1) < until
}

#[test]
fn a_window_lists_only_its_days_and_fetches_only_its_objects() {
    let Some(moto) = Moto::start() else { return };
    let rt = runtime();
    let seeded = seed(&moto, &rt);
    moto.take_requests();
    let (since, until) = ("2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z");

    let remote = hunt_s3(&moto, &["--since", since, "--until", until]);
    assert_eq!(remote.code, 0, "{}", remote.stderr);
    let (gets, lists) = s3_requests(&moto);

    let expected: Vec<&String> = seeded
        .keys
        .iter()
        .filter(|k| k.contains("/CloudTrail/") && named_in_window(k, since, until))
        .collect();
    assert!(
        expected.len() < seeded.keys.len() / 3,
        "the window is a small part of the bucket"
    );
    let mut fetched = gets.clone();
    fetched.sort();
    let mut expected_sorted: Vec<String> = expected.iter().map(|k| k.to_string()).collect();
    expected_sorted.sort();
    assert_eq!(fetched, expected_sorted, "exactly the objects named inside the window");

    // Listing: folders by delimiter to discover, then only the day folders that can hold the
    // window (the 19th's late deliveries, the 20th, the 21st's early ones), per account/region.
    let mut day_lists: Vec<String> = lists.iter().filter(|q| !q.contains("delimiter=/")).cloned().collect();
    day_lists.sort();
    let mut wanted = Vec::new();
    for scope in [
        "AWSLogs/111122223333/CloudTrail/eu-west-1/",
        "AWSLogs/111122223333/CloudTrail/us-east-1/",
        "AWSLogs/o-exampleorg1/444455556666/CloudTrail/us-east-1/",
    ] {
        for day in ["19", "20", "21"] {
            wanted.push(format!("{scope}2026/11/{day}/"));
        }
    }
    let listed_prefixes: Vec<String> = day_lists
        .iter()
        .map(|q| {
            q.split(['?', '&'])
                .find_map(|p| p.strip_prefix("prefix="))
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let mut listed_sorted = listed_prefixes.clone();
    listed_sorted.sort();
    wanted.sort();
    assert_eq!(listed_sorted, wanted, "day listings: {day_lists:?}");
    let discovery = lists.len() - day_lists.len();
    // "", AWSLogs/, the organization, and the CloudTrail/ and CloudTrail-Insight/ folders of
    // each of the two accounts.
    assert_eq!(discovery, 7, "{lists:?}");

    // Same findings as the same window over the files on disk.
    let mirror = seeded.mirror.path().display().to_string();
    let local = run(trailhound().args(["hunt", &mirror, "--format", "jsonl", "--since", since, "--until", until]));
    same_findings(
        &normalized(&remote.stdout, &[&format!("s3://{BUCKET}/")]),
        &normalized(&local.stdout, &[&format!("{mirror}/")]),
    );
    assert_eq!(
        summary_number(&local.stderr, "files read"),
        gets.len() as u64,
        "disk and bucket read the same files"
    );
}

#[test]
fn accounts_and_regions_narrow_the_read() {
    let Some(moto) = Moto::start() else { return };
    let rt = runtime();
    seed(&moto, &rt);
    moto.take_requests();
    let remote = hunt_s3(&moto, &["--accounts", "444455556666", "--regions", "us-east-1"]);
    assert_eq!(remote.code, 0, "{}", remote.stderr);
    let (gets, _) = s3_requests(&moto);
    assert!(!gets.is_empty());
    assert!(
        gets.iter()
            .all(|k| k.starts_with("AWSLogs/o-exampleorg1/444455556666/CloudTrail/us-east-1/")),
        "{gets:?}"
    );
    let findings = jsonl(&remote.stdout);
    assert!(findings.iter().all(|f| {
        f["source_file"]
            .as_str()
            .is_some_and(|s| s.starts_with("s3://trail-bucket/AWSLogs/o-exampleorg1/444455556666/"))
    }));
}

#[test]
fn an_unreadable_object_is_reported_and_skipped_or_fatal_with_strict() {
    let Some(moto) = Moto::start() else { return };
    let rt = runtime();
    seed(&moto, &rt);
    let s3 = moto.aws(&rt).s3(None);
    let archived = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/20/111122223333_CloudTrail_us-east-1_20261120T1200Z_archived.json.gz";
    let bytes = std::fs::read(
        examples().join(
            files_under(&examples())
                .into_iter()
                .find(|p| p.to_string_lossy().contains("CloudTrail/us-east-1/2026/11/20/"))
                .expect("an example file"),
        ),
    )
    .expect("bytes");
    put(
        &rt,
        &s3,
        archived,
        bytes,
        Some(aws_sdk_s3::types::StorageClass::Glacier),
    );

    let window = ["--since", "2026-11-20T00:00:00Z", "--until", "2026-11-21T00:00:00Z"];
    let lenient = hunt_s3(&moto, &window);
    assert_eq!(lenient.code, 0, "{}", lenient.stderr);
    let line = lenient
        .stderr
        .lines()
        .find(|l| l.contains(archived))
        .unwrap_or_else(|| panic!("the object is named: {}", lenient.stderr));
    assert!(
        line.contains("archived (Glacier / Deep Archive): restore it first"),
        "{line}"
    );
    assert!(
        lenient.stdout.contains("aws-cloudtrail-stop-logging"),
        "the rest is still hunted"
    );
    assert!(lenient.stderr.contains("1 failed"), "{}", lenient.stderr);

    let strict = hunt_s3(&moto, &[&window[..], &["--strict"]].concat());
    assert_eq!(strict.code, 2, "{}", strict.stderr);
}

#[test]
fn incremental_runs_read_only_what_is_new() {
    let Some(moto) = Moto::start() else { return };
    let rt = runtime();
    let seeded = seed(&moto, &rt);
    let db = tempfile::tempdir().expect("dir");
    let store = db.path().join("case.db").display().to_string();
    let args = ["--store", &store, "--since-last-run", "--new-only"];
    moto.take_requests();

    let first = hunt_s3(&moto, &args);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let (gets, _) = s3_requests(&moto);
    let events = seeded.keys.iter().filter(|k| k.contains("/CloudTrail/")).count();
    assert_eq!(gets.len(), events);
    assert!(first.stdout.contains("aws-cloudtrail-stop-logging"));

    let second = hunt_s3(&moto, &args);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let (gets, lists) = s3_requests(&moto);
    assert_eq!(gets, Vec::<String>::new(), "nothing new to read");
    assert!(second.stdout.is_empty(), "{}", second.stdout);
    // Each scope's day folders are listed from its cursor's day (after the cursor's key) to
    // today, not the week before it.
    let day_lists: Vec<&String> = lists.iter().filter(|q| !q.contains("delimiter=/")).collect();
    let cursor_day = chrono::NaiveDate::from_ymd_opt(2026, 11, 22).expect("date");
    let days_to_tomorrow = (chrono::Utc::now().date_naive() - cursor_day).num_days() as usize + 2;
    assert_eq!(day_lists.len(), 3 * days_to_tomorrow, "{day_lists:?}");
    assert!(day_lists.iter().all(|q| !q.contains("2026/11/21/")), "{day_lists:?}");
    assert_eq!(
        day_lists.iter().filter(|q| q.contains("start-after=")).count(),
        3,
        "the cursor's own day resumes after its key"
    );

    // A new object delivered later: the next run reads exactly it.
    let s3 = moto.aws(&rt).s3(None);
    let new_key = "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/23/111122223333_CloudTrail_eu-west-1_20261123T0105Z_new.json.gz";
    let record = serde_json::json!({"Records": [{
        "eventVersion": "1.09", "eventTime": "2026-11-23T01:00:00Z", "eventSource": "cloudtrail.amazonaws.com",
        "eventName": "StopLogging", "awsRegion": "eu-west-1", "sourceIPAddress": "203.0.113.66",
        "userAgent": "aws-cli/2.15.0", "eventID": "0f3c1d2e-0000-4000-8000-000000000001", "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/backup-svc",
                         "accountId": "111122223333", "accessKeyId": "AKIA2BACKUPSVCEXAMPL", "userName": "backup-svc"},
        "requestParameters": {"name": "management-trail"}, "responseElements": null}]});
    put(&rt, &s3, new_key, record.to_string().into_bytes(), None);
    moto.take_requests();
    let third = hunt_s3(&moto, &args);
    assert_eq!(third.code, 0, "{}", third.stderr);
    let (gets, _) = s3_requests(&moto);
    assert_eq!(gets, vec![new_key.to_string()]);
    let findings = jsonl(&third.stdout);
    assert_eq!(findings.len(), 1, "{}", third.stdout);
    assert_eq!(findings[0]["event_id"], "0f3c1d2e-0000-4000-8000-000000000001");

    // An object of the same region and minute that appears after that run, and sorts before
    // the cursor's key (its random suffix is smaller): the next run reads exactly it.
    let early_key = new_key.replace("_new.json.gz", "_early.json.gz");
    assert!(early_key.as_str() < new_key);
    let mut early = record.clone();
    early["Records"][0]["eventID"] = "0f3c1d2e-0000-4000-8000-000000000002".into();
    put(&rt, &s3, &early_key, early.to_string().into_bytes(), None);
    moto.take_requests();
    let fourth = hunt_s3(&moto, &args);
    assert_eq!(fourth.code, 0, "{}", fourth.stderr);
    let (gets, _) = s3_requests(&moto);
    assert_eq!(gets, vec![early_key.clone()], "{}", fourth.stderr);
    let findings = jsonl(&fourth.stdout);
    assert_eq!(findings.len(), 1, "{}", fourth.stdout);
    assert_eq!(findings[0]["event_id"], "0f3c1d2e-0000-4000-8000-000000000002");
    assert!(
        fourth.stderr.contains("read by the last run skipped"),
        "{}",
        fourth.stderr
    );

    // And a run after it fetches nothing again.
    moto.take_requests();
    let fifth = hunt_s3(&moto, &args);
    assert_eq!(fifth.code, 0, "{}", fifth.stderr);
    assert_eq!(s3_requests(&moto).0, Vec::<String>::new());
}

#[test]
fn a_missing_bucket_is_one_clear_line() {
    let Some(moto) = Moto::start() else { return };
    let out = run(trailhound().args(["hunt", "s3://no-such-bucket", "--endpoint-url", &moto.url()]));
    assert_eq!(out.code, 2);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(
        lines[0].contains("s3://no-such-bucket: no such bucket"),
        "{}",
        out.stderr
    );
}

#[test]
fn no_credentials_is_one_clear_line() {
    // No moto needed: nothing may be sent anywhere. The endpoint is a closed local port.
    let port = support::free_port();
    let out = run(trailhound()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .args([
            "hunt",
            "s3://some-bucket",
            "--endpoint-url",
            &format!("http://127.0.0.1:{port}"),
        ]));
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("no AWS credentials found"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn role_arn_assumes_the_audit_role_with_its_external_id() {
    let Some(moto) = Moto::start() else { return };
    let rt = runtime();
    seed(&moto, &rt);
    moto.take_requests();
    let role = "arn:aws:iam::123456789012:role/trailhound-audit";
    let out = hunt_s3(
        &moto,
        &[
            "--role-arn",
            role,
            "--external-id",
            "ext-42",
            "--since",
            "2026-11-22T00:00:00Z",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let recorded = moto.take_recorded();
    let body = |v: &serde_json::Value| {
        let raw = v["body"].as_str().unwrap_or_default();
        if v["body_encoded"].as_bool() == Some(true) {
            String::from_utf8(base64_decode(raw)).unwrap_or_default()
        } else {
            raw.to_string()
        }
    };
    let assume = recorded
        .iter()
        .find(|v| body(v).contains("Action=AssumeRole"))
        .unwrap_or_else(|| panic!("no AssumeRole among {recorded:?}"));
    let text = decode(&body(assume));
    assert!(text.contains(&format!("RoleArn={role}")), "{text}");
    assert!(text.contains("ExternalId=ext-42"), "{text}");
    assert!(text.contains("RoleSessionName=trailhound"), "{text}");
    // Bucket requests are signed with the role's credentials, not the base ones.
    let s3: Vec<&serde_json::Value> = recorded
        .iter()
        .filter(|v| v["url"].as_str().is_some_and(|u| u.contains(&format!("/{BUCKET}"))))
        .collect();
    assert!(!s3.is_empty());
    for request in s3 {
        let auth = request["headers"]["Authorization"].as_str().unwrap_or_default();
        assert!(
            auth.contains("Credential=") && !auth.contains("Credential=testing/"),
            "{auth}"
        );
    }
}

/// Standard base64, for moto's recorded bodies.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn access_denied_names_the_bucket_and_the_permission() {
    // After 3 unchecked actions moto enforces IAM: a user with no policy may list nothing.
    let Some(moto) = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]) else {
        return;
    };
    let rt = runtime();
    let aws = moto.aws(&rt);
    rt.block_on(aws.s3(None).create_bucket().bucket(BUCKET).send())
        .expect("bucket");
    rt.block_on(aws.iam().create_user().user_name("nobody").send())
        .expect("user");
    let key = rt
        .block_on(aws.iam().create_access_key().user_name("nobody").send())
        .expect("key");
    let key = key.access_key().expect("access key");
    let out = run(trailhound()
        .env("AWS_ACCESS_KEY_ID", key.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", key.secret_access_key())
        .args(["hunt", &format!("s3://{BUCKET}"), "--endpoint-url", &moto.url()]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("access denied to s3://trail-bucket/: the credentials need s3:ListBucket on it"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(key.secret_access_key()));
}

/// The tests' signing key (tests/fixtures/digest-signing), standing in for CloudTrail's.
fn signing_key() -> ring::signature::RsaKeyPair {
    let der = std::fs::read(support::root().join("tests/fixtures/digest-signing/test-key.pk8")).expect("test key");
    ring::signature::RsaKeyPair::from_pkcs8(&der).expect("PKCS #8 RSA key")
}

fn inflate(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut out).expect("gzip");
    out
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// Puts a digest at `key` with the signature CloudTrail would give it (`signature` false: none).
fn put_digest(
    runtime: &tokio::runtime::Runtime,
    s3: &aws_sdk_s3::Client,
    key: &str,
    gz: Vec<u8>,
    signed: Option<&str>,
) {
    let mut put = s3.put_object().bucket(BUCKET).key(key).body(gz.into());
    if let Some(signature) = signed {
        put = put
            .metadata("signature", signature)
            .metadata("signature-algorithm", "SHA256withRSA");
    }
    runtime.block_on(put.send()).expect("digest put");
}

/// CloudTrail's signature over the digest `content`, as the test key makes it.
fn signature_of(content: &[u8]) -> String {
    use sha2_free::hex;
    let digest: serde_json::Value = serde_json::from_slice(content).expect("digest JSON");
    let text = |field: &str| digest[field].as_str().unwrap_or("null").to_string();
    let message = format!(
        "{}\n{}/{}\n{}\n{}",
        text("digestEndTime"),
        text("digestS3Bucket"),
        text("digestS3Object"),
        hex(ring::digest::digest(&ring::digest::SHA256, content).as_ref()),
        text("previousDigestSignature"),
    );
    let pair = signing_key();
    let mut signature = vec![0; pair.public().modulus_len()];
    pair.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        message.as_bytes(),
        &mut signature,
    )
    .expect("signed");
    hex(&signature)
}

mod sha2_free {
    pub fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[test]
fn verify_in_the_bucket_checks_signatures_and_catches_a_consistent_forgery() {
    use base64::Engine as _;
    let Some(moto) = Moto::start() else { return };
    let rt = runtime();
    let seeded = seed(&moto, &rt);
    let s3 = moto.aws(&rt).s3(None);
    // Every digest signed as CloudTrail signs it; CloudTrail's public key given as the CLI
    // prints it (moto has no ListPublicKeys).
    let digests: Vec<&String> = seeded
        .keys
        .iter()
        .filter(|k| k.contains("/CloudTrail-Digest/"))
        .collect();
    let mut fingerprints = std::collections::BTreeSet::new();
    for key in &digests {
        let gz = std::fs::read(seeded.mirror.path().join(key)).expect("digest");
        let content = inflate(&gz);
        let digest: serde_json::Value = serde_json::from_slice(&content).expect("digest JSON");
        fingerprints.insert(
            digest["digestPublicKeyFingerprint"]
                .as_str()
                .expect("fingerprint")
                .to_string(),
        );
        put_digest(&rt, &s3, key, gz, Some(&signature_of(&content)));
    }
    let value = base64::engine::general_purpose::STANDARD.encode(signing_key().public().as_ref());
    let list: Vec<serde_json::Value> = fingerprints
        .iter()
        .map(|f| serde_json::json!({"Value": value, "Fingerprint": f, "ValidityStartTime": "2026-01-01T00:00:00Z"}))
        .collect();
    let dir = tempfile::tempdir().expect("tmp");
    let keys = dir.path().join("keys.json");
    std::fs::write(&keys, serde_json::json!({ "PublicKeyList": list }).to_string()).expect("keys");
    let keys = keys.to_str().expect("utf8");
    let url = moto.url();
    let verify = |extra: &[&str]| {
        let mut cmd = trailhound();
        cmd.args(["verify", &format!("s3://{BUCKET}"), "--endpoint-url", &url]);
        run(cmd.args(extra))
    };

    let out = verify(&["--public-keys", keys, "--format", "json"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let clean: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(clean["digests"]["found"], digests.len());
    assert_eq!(clean["digests"]["signatures_valid"], digests.len());
    assert_eq!(clean["logs"]["valid"], 7);
    assert_eq!(clean["problems"], serde_json::json!([]));
    assert!(
        clean["chains"]
            .as_array()
            .expect("chains")
            .iter()
            .all(|c| c["newest_signed"] == true)
    );

    // Who can write to the bucket changes the log file the newest us-east-1 digest lists and
    // rewrites that digest to list the new hash, keeping its metadata.
    let newest = digests
        .iter()
        .filter(|k| k.contains("/us-east-1/"))
        .max()
        .expect("a us-east-1 digest");
    let mut digest: serde_json::Value = serde_json::from_slice(&inflate(
        &std::fs::read(seeded.mirror.path().join(newest)).expect("digest"),
    ))
    .expect("digest JSON");
    let log_key = digest["logFiles"][0]["s3Object"].as_str().expect("listed").to_string();
    let forged = serde_json::json!({"Records": []}).to_string();
    put(&rt, &s3, &log_key, deflate(forged.as_bytes()), None);
    digest["logFiles"][0]["hashValue"] = serde_json::json!(sha2_free::hex(
        ring::digest::digest(&ring::digest::SHA256, forged.as_bytes()).as_ref()
    ));
    let head = rt
        .block_on(s3.head_object().bucket(BUCKET).key(newest.as_str()).send())
        .expect("head");
    let kept = head
        .metadata()
        .and_then(|m| m.get("signature"))
        .expect("signature kept")
        .clone();
    put_digest(&rt, &s3, newest, deflate(digest.to_string().as_bytes()), Some(&kept));

    let out = verify(&["--public-keys", keys]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("digest-signature-invalid"), "{}", out.stdout);
    let figures = format!("signatures: {} valid; 1 invalid, 0 missing", digests.len() - 1);
    assert!(out.stdout.contains(&figures), "{}", out.stdout);
    assert!(!out.stdout.contains("log-modified"), "{}", out.stdout);
    // Without the keys (moto answers no ListPublicKeys) the forgery holds: said on both streams.
    let out = verify(&[]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("Signatures not checked"), "{}", out.stdout);
    assert!(
        out.stderr.contains("digest signatures are not checked"),
        "{}",
        out.stderr
    );

    // A digest put without metadata is named as unsigned.
    let oldest = digests.iter().min().expect("digest");
    put_digest(
        &rt,
        &s3,
        oldest,
        std::fs::read(seeded.mirror.path().join(oldest)).expect("digest"),
        None,
    );
    let out = verify(&["--public-keys", keys, "--format", "json"]);
    assert_eq!(out.code, 1);
    let found: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(found["digests"]["unsigned"], 1);
    assert_eq!(found["digests"]["signatures_invalid"], 1);
    // A copy cannot be given keys: it keeps no signatures.
    let mirror = seeded.mirror.path().to_str().expect("utf8");
    let out = run(trailhound().args(["verify", mirror, "--public-keys", keys]));
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--public-keys is for s3://"), "{}", out.stderr);
}

#[test]
fn verify_in_the_bucket_finds_an_organization_trails_digests() {
    // The sample's us-east-1 digests and logs moved under an organization trail's prefix
    // (`AWSLogs/o-ID/ACCOUNT/...`), the keys inside each digest rewritten to match, the chain's
    // hashes recomputed and every digest signed again.
    use base64::Engine as _;
    let Some(moto) = Moto::start() else { return };
    let rt = runtime();
    let s3 = moto.aws(&rt).s3(None);
    rt.block_on(s3.create_bucket().bucket(BUCKET).send()).expect("bucket");
    let org = "AWSLogs/o-exampleorg1/111122223333/";
    let moved = |key: &str| key.replacen("AWSLogs/111122223333/", org, 1);
    let mut digests: Vec<PathBuf> = files_under(&examples())
        .into_iter()
        .filter(|p| p.to_string_lossy().starts_with("CloudTrail-Digest/us-east-1/"))
        .collect();
    digests.sort_by_key(|p| p.file_name().map(|n| n.to_os_string()));
    let mut previous: Option<String> = None;
    let mut logs = 0;
    let mut fingerprints = std::collections::BTreeSet::new();
    for relative in &digests {
        let gz = std::fs::read(examples().join(relative)).expect("digest");
        let mut digest: serde_json::Value = serde_json::from_slice(&inflate(&gz)).expect("digest JSON");
        let key = moved(digest["digestS3Object"].as_str().expect("key"));
        fingerprints.insert(
            digest["digestPublicKeyFingerprint"]
                .as_str()
                .expect("fingerprint")
                .to_string(),
        );
        digest["digestS3Object"] = serde_json::json!(key);
        if let Some(prev) = digest["previousDigestS3Object"].as_str().map(moved) {
            digest["previousDigestS3Object"] = serde_json::json!(prev);
            digest["previousDigestHashValue"] = serde_json::json!(previous.clone().expect("the chain in order"));
        }
        for log in digest["logFiles"].as_array_mut().expect("logFiles") {
            let original = log["s3Object"].as_str().expect("listed").to_string();
            let local = original.replacen("AWSLogs/111122223333/", "", 1);
            put(
                &rt,
                &s3,
                &moved(&original),
                std::fs::read(examples().join(local)).expect("log"),
                None,
            );
            log["s3Object"] = serde_json::json!(moved(&original));
            logs += 1;
        }
        let content = digest.to_string().into_bytes();
        previous = Some(sha2_free::hex(
            ring::digest::digest(&ring::digest::SHA256, &content).as_ref(),
        ));
        put_digest(&rt, &s3, &key, deflate(&content), Some(&signature_of(&content)));
    }
    assert!(
        digests.len() >= 3 && logs >= 3,
        "{} digests, {logs} logs",
        digests.len()
    );
    let value = base64::engine::general_purpose::STANDARD.encode(signing_key().public().as_ref());
    let dir = tempfile::tempdir().expect("tmp");
    let keys = dir.path().join("keys.json");
    let list: Vec<serde_json::Value> = fingerprints
        .iter()
        .map(|f| serde_json::json!({"Value": value, "Fingerprint": f}))
        .collect();
    let list = serde_json::json!({ "PublicKeyList": list });
    std::fs::write(&keys, list.to_string()).expect("keys");
    let out = run(trailhound().args([
        "verify",
        &format!("s3://{BUCKET}"),
        "--endpoint-url",
        &moto.url(),
        "--public-keys",
        keys.to_str().expect("utf8"),
        "--format",
        "json",
    ]));
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let found: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(found["digests"]["found"], digests.len());
    assert_eq!(found["digests"]["signatures_valid"], digests.len());
    assert_eq!(found["digests"]["links_valid"], digests.len() - 1);
    assert_eq!(found["logs"]["valid"], logs);
    assert_eq!(found["chains"][0]["newest_signed"], true);
}
