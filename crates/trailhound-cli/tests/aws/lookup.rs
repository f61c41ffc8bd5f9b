//! `hunt lookup:` against our LookupEvents server: same findings as the same events on disk,
//! paging, throttling recovered with backoff, at most 2 requests/s per region, regions that are
//! not enabled, and incremental runs.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use serde_json::Value;

use crate::support::lookup_server::{Behaviour, LookupServer};
use crate::support::{jsonl, run, trailhound};

const DAY: &str = "2026/11/20/";

/// The example account's records of one day in `region`.
fn records(region: &str) -> Vec<Value> {
    let dir = crate::examples().join(format!("CloudTrail/{region}/{DAY}"));
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("day folder") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("file");
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .expect("gzip");
        let document: Value = serde_json::from_str(&text).expect("json");
        out.extend(document["Records"].as_array().cloned().unwrap_or_default());
    }
    out
}

fn behaviour(throttle_every: usize, disabled: &[&str]) -> Behaviour {
    let mut events = BTreeMap::new();
    for region in ["us-east-1", "eu-west-1"] {
        events.insert(region.to_string(), records(region));
    }
    Behaviour {
        events,
        page: 50,
        throttle_every,
        disabled: disabled.iter().map(|r| r.to_string()).collect(),
    }
}

const WINDOW: [&str; 4] = ["--since", "2026-11-20T00:00:00Z", "--until", "2026-11-21T00:00:00Z"];

/// Findings as text, with `lookup:REGION` and the disk file of a region both named REGION.
fn by_region(stdout: &str) -> Vec<String> {
    let mut out: Vec<String> = jsonl(stdout)
        .into_iter()
        .map(|mut f| {
            let source = f["source_file"].as_str().unwrap_or_default().to_string();
            let region = source
                .trim_start_matches("lookup:")
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .trim_end_matches(".jsonl")
                .to_string();
            f["source_file"] = Value::String(region);
            f.to_string()
        })
        .collect();
    out.sort();
    out
}

#[test]
fn lookup_equals_disk_with_paging_throttling_and_the_rate_limit() {
    let server = LookupServer::start(behaviour(4, &[]));
    let remote = run(trailhound()
        .args([
            "hunt",
            "lookup:us-east-1,eu-west-1",
            "--format",
            "jsonl",
            "--endpoint-url",
            &server.url(),
        ])
        .args(WINDOW));
    assert_eq!(remote.code, 0, "{}", remote.stderr);

    let dir = tempfile::tempdir().expect("dir");
    for region in ["us-east-1", "eu-west-1"] {
        let lines: Vec<String> = records(region).iter().map(Value::to_string).collect();
        std::fs::write(dir.path().join(format!("{region}.jsonl")), lines.join("\n")).expect("write");
    }
    let local = run(trailhound()
        .args(["hunt", &dir.path().display().to_string(), "--format", "jsonl"])
        .args(WINDOW));
    assert_eq!(local.code, 0, "{}", local.stderr);
    let (from_lookup, from_disk) = (by_region(&remote.stdout), by_region(&local.stdout));
    assert!(from_lookup.len() >= 10, "{}", remote.stdout);
    assert_eq!(from_lookup, from_disk);
    assert!(from_lookup.iter().any(|f| f.contains("aws-cloudtrail-stop-logging")));
    assert!(
        jsonl(&remote.stdout)
            .iter()
            .all(|f| f["source_file"].as_str().is_some_and(|s| s.starts_with("lookup:"))),
        "findings name lookup:REGION as their source"
    );

    let seen = server.seen();
    let throttled = seen.iter().filter(|s| s.throttled).count();
    assert!(throttled >= 2, "the server throttled: {throttled}");
    let events: usize = ["us-east-1", "eu-west-1"].iter().map(|r| records(r).len()).sum();
    let pages = seen.iter().filter(|s| !s.throttled).count();
    assert!(pages >= events / 50, "paged through {events} events in {pages} pages");
    assert!(
        remote.stderr.contains(&format!(
            "lookup: 2 regions; {} requests ({throttled} throttled), {events} events",
            seen.len()
        )),
        "{}",
        remote.stderr
    );
    // Requests, retries included, never closer than 2 per second in one region.
    for region in ["us-east-1", "eu-west-1"] {
        let times: Vec<_> = seen.iter().filter(|s| s.region == region).map(|s| s.at).collect();
        for pair in times.windows(2) {
            let gap = pair[1].duration_since(pair[0]);
            assert!(gap >= Duration::from_millis(450), "{region}: requests {gap:?} apart");
        }
        // Every request asked for the window.
        let since = chrono::DateTime::parse_from_rfc3339(WINDOW[1])
            .expect("time")
            .timestamp() as f64;
        let until = chrono::DateTime::parse_from_rfc3339(WINDOW[3])
            .expect("time")
            .timestamp() as f64;
        assert!(
            seen.iter()
                .filter(|s| s.region == region)
                .all(|s| s.body["StartTime"].as_f64() == Some(since) && s.body["EndTime"].as_f64() == Some(until)),
            "{seen:?}"
        );
    }
}

#[test]
fn lookup_all_reads_every_enabled_region_and_names_a_disabled_one() {
    let server = LookupServer::start(behaviour(0, &["ap-east-1"]));
    let out = run(trailhound()
        .args([
            "hunt",
            "lookup:all",
            "--format",
            "jsonl",
            "--endpoint-url",
            &server.url(),
        ])
        .args(WINDOW));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let regions: std::collections::BTreeSet<String> = server.seen().into_iter().map(|s| s.region).collect();
    assert_eq!(
        regions.into_iter().collect::<Vec<_>>(),
        ["ap-east-1", "eu-west-1", "us-east-1"],
        "DescribeRegions, then LookupEvents in each region"
    );
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("lookup:ap-east-1"))
        .unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(
        line.contains("not valid in ap-east-1") && line.contains("not be enabled"),
        "{line}"
    );
    assert!(out.stdout.contains("aws-cloudtrail-stop-logging"));
    let strict = run(trailhound()
        .args([
            "hunt",
            "lookup:all",
            "--strict",
            "--format",
            "jsonl",
            "--endpoint-url",
            &server.url(),
        ])
        .args(WINDOW));
    assert_eq!(strict.code, 2, "{}", strict.stderr);
}

#[test]
fn a_second_lookup_run_reads_nothing() {
    let server = LookupServer::start(behaviour(0, &[]));
    let db = tempfile::tempdir().expect("dir");
    let store = db.path().join("case.db").display().to_string();
    let hunt = || {
        run(trailhound().args([
            "hunt",
            "lookup:us-east-1",
            "--format",
            "jsonl",
            "--store",
            &store,
            "--since-last-run",
            "--since",
            "2026-11-20T00:00:00Z",
            "--endpoint-url",
            &server.url(),
        ]))
    };
    let first = hunt();
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stdout.contains("aws-cloudtrail-stop-logging"));
    let requests = server.seen().len();
    let second = hunt();
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(second.stdout, "", "nothing new");
    let seen = server.seen();
    let latest = records("us-east-1")
        .iter()
        .filter_map(|e| chrono::DateTime::parse_from_rfc3339(e["eventTime"].as_str()?).ok())
        .map(|t| t.timestamp())
        .max()
        .expect("events");
    assert_eq!(seen.len(), requests + 1, "one request: the overlap before the cursor");
    assert_eq!(seen[requests].body["StartTime"].as_f64(), Some((latest - 900) as f64));
    assert!(second.stderr.contains(" 0 events, "), "{}", second.stderr);
    assert!(
        second.stderr.contains("read by the last run skipped"),
        "{}",
        second.stderr
    );
}

/// An event LookupEvents indexes late (its time is before the last run's cursor) is read by the
/// next incremental run, once; the events of the overlap read before are not read again.
#[test]
fn an_event_indexed_late_is_read_by_the_next_run() {
    let db = tempfile::tempdir().expect("dir");
    let store = db.path().join("case.db").display().to_string();
    let hunt = |url: &str| {
        run(trailhound().args([
            "hunt",
            "lookup:us-east-1",
            "--format",
            "jsonl",
            "--store",
            &store,
            "--since-last-run",
            "--new-only",
            "--since",
            "2026-11-20T00:00:00Z",
            "--endpoint-url",
            url,
        ]))
    };
    let before = LookupServer::start(behaviour(0, &[]));
    let first = hunt(&before.url());
    assert_eq!(first.code, 0, "{}", first.stderr);
    // The same events, and one more that happened five minutes before the latest of them.
    let mut late_behaviour = behaviour(0, &[]);
    let events = late_behaviour.events.get_mut("us-east-1").expect("region");
    let latest = events
        .iter()
        .filter_map(|e| chrono::DateTime::parse_from_rfc3339(e["eventTime"].as_str()?).ok())
        .max()
        .expect("events");
    let mut late = events
        .iter()
        .find(|e| e["eventName"] == "StopLogging")
        .cloned()
        .expect("a StopLogging record");
    late["eventID"] = "late-indexed-0000-4000-8000-000000000001".into();
    late["eventTime"] = (latest - chrono::Duration::minutes(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        .into();
    events.push(late);
    let after = LookupServer::start(late_behaviour);
    let second = hunt(&after.url());
    assert_eq!(second.code, 0, "{}", second.stderr);
    let findings = jsonl(&second.stdout);
    assert!(
        findings.iter().any(|f| f["rule_id"] == "aws-cloudtrail-stop-logging"),
        "{}",
        second.stdout
    );
    assert!(
        findings
            .iter()
            .all(|f| f["event_id"] == "late-indexed-0000-4000-8000-000000000001"),
        "only the late event's findings: {}",
        second.stdout
    );
    assert!(second.stderr.contains(" 1 events, "), "{}", second.stderr);
}
