use trailhound_event::Record;
use trailhound_finding::Explanation;
use trailhound_rules::{RuleFile, parse_rules};

use super::*;

fn finding(event_id: &str) -> Finding {
    let (rules, errors) = parse_rules(&RuleFile {
        path: "r.yml".into(),
        text: "title: T\nname: aws-t\nlogsource: {product: aws}\nlevel: high\ndetection:\n  s: {eventName: X}\n  condition: s\n".into(),
        tests: None,
    });
    assert!(errors.is_empty());
    let json = format!(
        r#"{{"eventTime":"2024-03-01T12:00:00Z","eventName":"X","eventSource":"s","eventID":"{event_id}","userIdentity":{{"arn":"arn:aws:iam::1:user/a"}}}}"#
    );
    let record = Record::parse(&json).expect("record");
    Finding::new(rules[0].info(), &record, "file.json", false)
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(&dir.path().join("sub/dir/case.db")).expect("open");
    (dir, store)
}

#[test]
fn creates_and_migrates() {
    let (dir, store) = store();
    assert_eq!(store.schema_version().expect("version"), MIGRATIONS.len() as i64);
    drop(store);
    // Reopening is a no-op; a newer schema is refused with the file named.
    let path = dir.path().join("sub/dir/case.db");
    let store = Store::open(&path).expect("reopen");
    store
        .conn
        .execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'", [])
        .expect("bump");
    drop(store);
    let err = Store::open(&path).err().expect("newer schema refused");
    assert!(
        err.to_string().contains("case.db") && err.to_string().contains("schema 99"),
        "{err}"
    );
}

#[test]
fn findings_are_new_once_and_triage_lasts() {
    let (_dir, mut store) = store();
    let run1 = store
        .begin_run(&RunStart {
            command: "hunt".into(),
            ..RunStart::default()
        })
        .expect("run");
    let first = store
        .record_findings(run1, &[finding("e1"), finding("e2")])
        .expect("record");
    assert!(first.iter().all(|r| r.new));
    store.finish_run(run1, 10, 2, 2).expect("finish");
    let run2 = store
        .begin_run(&RunStart {
            command: "hunt".into(),
            ..RunStart::default()
        })
        .expect("run");
    let second = store
        .record_findings(run2, &[finding("e1"), finding("e3")])
        .expect("record");
    assert_eq!(
        (second[0].id, second[0].new),
        (first[0].id, false),
        "same rule and event: same finding, not new"
    );
    assert!(second[1].new, "a new event is new");
    let all = store.list(&Filter::default()).expect("list");
    assert_eq!(all.len(), 3);
    assert_eq!(all.iter().find(|f| f.id == first[0].id).map(|f| f.times_seen), Some(2));

    store
        .set_status(&[first[0].id], Status::Acked, None, None)
        .expect("ack");
    store
        .set_status(&[first[1].id], Status::Explained, Some("expected"), Some("OPS-1"))
        .expect("explain");
    assert!(matches!(
        store.set_status(&[9999], Status::Acked, None, None),
        Err(StoreError::NoSuchFinding(9999))
    ));
    let new: Vec<i64> = store
        .list(&Filter {
            status: Some(Status::New),
            ..Filter::default()
        })
        .expect("list")
        .iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(new, [second[1].id]);
    let run3 = store.begin_run(&RunStart::default()).expect("run");
    let third = store.record_findings(run3, &[finding("e2")]).expect("record");
    assert!(!third[0].new, "an explained finding does not come back as new");
    assert_eq!(
        (third[0].status, third[0].reason.as_deref()),
        (Status::Explained, Some("expected"))
    );
    let explained = store
        .list(&Filter {
            status: Some(Status::Explained),
            ..Filter::default()
        })
        .expect("list");
    assert_eq!(
        (explained[0].reason.as_deref(), explained[0].ticket.as_deref()),
        (Some("expected"), Some("OPS-1"))
    );
    assert_eq!(explained[0].finding["event_id"], "e2");
}

#[test]
fn reasons_file_explanations_are_stored() {
    let (_dir, mut store) = store();
    let run = store.begin_run(&RunStart::default()).expect("run");
    let mut f = finding("e9");
    f.explanation = Some(Box::new(Explanation {
        reason: "billing".into(),
        ticket: Some("SEC-9".into()),
        expires: None,
    }));
    store.record_findings(run, &[f]).expect("record");
    let listed = store.list(&Filter::default()).expect("list");
    assert_eq!(listed[0].status, Status::Explained);
}

#[test]
fn cursors() {
    let (_dir, mut store) = store();
    assert_eq!(store.cursor("s3://b", "us-east-1").expect("read"), None);
    store.set_cursor("s3://b", "us-east-1", "key-1").expect("set");
    store.set_cursor("s3://b", "us-east-1", "key-2").expect("set");
    assert_eq!(
        store.cursor("s3://b", "us-east-1").expect("read").as_deref(),
        Some("key-2")
    );
}

#[test]
fn snapshots_are_saved_and_listed_newest_first() {
    let (_dir, mut store) = store();
    assert!(store.latest_snapshots(5).expect("list").is_empty());
    let older = store
        .save_snapshot(
            "2026-12-01T05:00:00Z",
            Some("111122223333"),
            r#"{"format_version":1,"n":1}"#,
        )
        .expect("save");
    let newest = store
        .save_snapshot("2026-12-02T05:00:00.250Z", None, r#"{"format_version":1,"n":3}"#)
        .expect("save");
    // Saved last but collected in between: order is by collection time, fractions included.
    let middle = store
        .save_snapshot(
            "2026-12-02T05:00:00Z",
            Some("111122223333"),
            r#"{"format_version":1,"n":2}"#,
        )
        .expect("save");
    let listed = store.latest_snapshots(10).expect("list");
    assert_eq!(
        listed,
        [
            (newest, "2026-12-02T05:00:00.250Z".to_string(), None),
            (
                middle,
                "2026-12-02T05:00:00Z".to_string(),
                Some("111122223333".to_string())
            ),
            (
                older,
                "2026-12-01T05:00:00Z".to_string(),
                Some("111122223333".to_string())
            ),
        ]
    );
    assert_eq!(
        store
            .latest_snapshots(2)
            .expect("list")
            .iter()
            .map(|s| s.0)
            .collect::<Vec<_>>(),
        [newest, middle]
    );
    assert_eq!(
        store.snapshot(middle).expect("read").as_deref(),
        Some(r#"{"format_version":1,"n":2}"#)
    );
    assert_eq!(store.snapshot(9999).expect("read"), None);
}

#[test]
fn a_version_1_store_migrates_and_keeps_its_findings() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("v1.db");
    {
        // A store as the first release left it: only migration 1 applied.
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);")
            .expect("meta");
        conn.execute_batch(MIGRATIONS[0]).expect("migration 1");
        conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')", [])
            .expect("version");
        conn.execute(
            "INSERT INTO runs (id, command, started_at, sources) VALUES (1, 'hunt', '2026-11-01T00:00:00Z', '[]')",
            [],
        )
        .expect("run");
        conn.execute(
            "INSERT INTO findings (key, rule_id, level, event_time, event_name, first_run, last_run, times_seen, finding)
             VALUES ('aws-t\u{1f}e1', 'aws-t', 'high', '2024-03-01T12:00:00Z', 'X', 1, 1, 1, '{\"event_id\":\"e1\"}')",
            [],
        )
        .expect("finding");
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE name = 'snapshots'", [], |r| {
                r.get(0)
            })
            .expect("count");
        assert_eq!(tables, 0);
    }
    let mut store = Store::open(&path).expect("migrate");
    assert_eq!(store.schema_version().expect("version"), MIGRATIONS.len() as i64);
    let listed = store.list(&Filter::default()).expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].finding["event_id"], "e1");
    let id = store
        .save_snapshot("2026-12-02T05:00:00Z", None, "{}")
        .expect("the new table is there");
    assert_eq!(store.latest_snapshots(1).expect("list")[0].0, id);
    drop(store);
    assert_eq!(
        Store::open(&path).expect("reopen").schema_version().expect("version"),
        MIGRATIONS.len() as i64
    );
}

/// Two hunts creating one new store at the same moment both open it (the race once failed
/// with "table runs already exists" a few times in a hundred).
#[test]
fn concurrent_creation_of_one_new_store_never_fails() {
    for round in 0..20 {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join(format!("race-{round}.db"));
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let path = path.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    Store::open(&path).map(|s| s.schema_version().expect("version"))
                })
            })
            .collect();
        for handle in handles {
            let version = handle.join().expect("thread").expect("every opener succeeds");
            assert_eq!(version, MIGRATIONS.len() as i64);
        }
    }
}

/// Listing opens the store read-only: it works, and writes nothing (no row, no migration).
#[test]
fn a_store_opened_read_only_lists_and_never_writes() {
    let (dir, mut store) = store();
    let run = store.begin_run(&RunStart::default()).expect("run");
    store.record_findings(run, &[finding("e1")]).expect("record");
    drop(store);
    let path = dir.path().join("sub/dir/case.db");
    let before = std::fs::read(&path).expect("bytes");
    let mut reader = Store::open_read_only(&path).expect("read-only open");
    assert_eq!(reader.list(&Filter::default()).expect("list").len(), 1);
    assert!(
        reader.begin_run(&RunStart::default()).is_err(),
        "a read-only store refuses writes"
    );
    drop(reader);
    assert_eq!(std::fs::read(&path).expect("bytes"), before);
    // No store there is an error naming the file, and creates nothing.
    let missing = dir.path().join("none.db");
    let err = Store::open_read_only(&missing).err().expect("missing");
    assert!(err.to_string().contains("none.db"), "{err}");
    assert!(!missing.exists());
}

/// Cursors and state blobs are saved together and read back; a later save replaces them.
#[test]
fn progress_is_saved_all_together_and_read_back() {
    let (_dir, mut store) = store();
    assert_eq!(store.state("correlations").expect("state"), None);
    store
        .save_progress([("s3", "trail/us-east-1", "key-1")], [("correlations", &b"one"[..])])
        .expect("save");
    store
        .save_progress([("s3", "trail/us-east-1", "key-2")], [("correlations", &b"two"[..])])
        .expect("save again");
    assert_eq!(
        store.state("correlations").expect("state").as_deref(),
        Some(&b"two"[..])
    );
    assert_eq!(
        store.cursor("s3", "trail/us-east-1").expect("cursor").as_deref(),
        Some("key-2")
    );
}

/// A version-2 store (before named state) migrates forward and keeps its findings.
#[test]
fn a_version_two_store_gains_the_state_table() {
    let (dir, mut store) = store();
    let run = store.begin_run(&RunStart::default()).expect("run");
    store.record_findings(run, &[finding("e1")]).expect("record");
    store
        .conn
        .execute_batch("DROP TABLE state; UPDATE meta SET value = '2' WHERE key = 'schema_version';")
        .expect("downgrade");
    drop(store);
    let store = Store::open(&dir.path().join("sub/dir/case.db")).expect("reopen");
    assert_eq!(store.schema_version().expect("version"), 3);
    assert_eq!(store.list(&Filter::default()).expect("list").len(), 1);
    assert_eq!(store.state("x").expect("state"), None);
}
