//! The engine on the bundled example, without any front door: what the CLI and the Lambda get.

use std::path::PathBuf;

use trailhound_hunt::{HuntOptions, Silent, StoreOptions, hunt};
use trailhound_rules::Selection;
use trailhound_source::{Input, ReadOptions};
use trailhound_store::RunStart;

fn examples() -> Input {
    Input::Path(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples"))
}

fn options() -> HuntOptions {
    HuntOptions {
        read: ReadOptions {
            inputs: vec![examples()],
            ..ReadOptions::default()
        },
        ..HuntOptions::default()
    }
}

#[test]
fn the_example_hunts_to_its_story_and_a_second_run_finds_nothing_new() {
    let (rules, errors) = Selection::default().load().expect("the built-in pack");
    assert!(errors.is_empty(), "{errors:?}");
    let hunted = hunt(&rules, &options(), None, &Silent).expect("hunt");
    assert_eq!(hunted.stats.records_in_window, 3000);
    assert_eq!(hunted.findings.len(), 51, "the README's figure");
    assert!(
        hunted.findings.windows(2).all(|w| w[0].time <= w[1].time),
        "sorted by time"
    );
    let stop = hunted
        .findings
        .iter()
        .filter(|f| f.rule_id == "aws-cloudtrail-stop-logging")
        .count();
    assert_eq!(stop, 1);
    assert!(
        hunted.findings.iter().any(|f| f.correlation.is_some()),
        "correlations sweep inside the engine"
    );

    let dir = tempfile::tempdir().expect("tmp");
    let store = StoreOptions {
        path: dir.path().join("store.db"),
        new_only: true,
        since_last_run: false,
        run: RunStart {
            command: "test".into(),
            ..RunStart::default()
        },
    };
    let remembered = HuntOptions {
        store: Some(store),
        ..options()
    };
    let first = hunt(&rules, &remembered, None, &Silent).expect("first");
    assert_eq!((first.findings.len(), first.new_findings), (51, 51));
    assert!(first.findings.iter().all(|f| f.store_id.is_some()));
    let second = hunt(&rules, &remembered, None, &Silent).expect("second");
    assert_eq!((second.findings.len(), second.new_findings), (0, 0));
}

#[test]
fn remote_sources_need_a_remote_side() {
    let (rules, _) = Selection::default().load().expect("pack");
    let options = HuntOptions {
        read: ReadOptions {
            inputs: vec![Input::parse("s3://trail-bucket/AWSLogs/").expect("input")],
            ..ReadOptions::default()
        },
        ..HuntOptions::default()
    };
    let error = hunt(&rules, &options, None, &Silent).expect_err("no AWS here");
    let text = error.to_string();
    assert!(text.contains("s3://trail-bucket/AWSLogs/"), "{text}");
}

/// A rule of denied calls and a correlation of 20 of them by one principal in ten minutes.
fn denied_burst_rules(dir: &std::path::Path) -> trailhound_rules::RuleSet {
    let text = "title: denied\nname: denied\nlogsource: {product: aws, service: cloudtrail}\nlevel: low\ndetection:\n  sel:\n    errorCode: AccessDenied\n  condition: sel\n---\ntitle: denied burst\nname: denied-burst\nlevel: high\ncorrelation:\n  type: event_count\n  rules: [denied]\n  group-by: [userIdentity.arn]\n  timespan: 10m\n  condition: {gte: 20}\n";
    std::fs::write(dir.join("burst.yml"), text).expect("rule file");
    let selection = Selection {
        builtin: false,
        paths: vec![dir.join("burst.yml")],
        ..Selection::default()
    };
    let (rules, errors) = selection.load().expect("rules");
    assert!(errors.is_empty(), "{errors:?}");
    rules
}

/// A delivery file of `count` denied calls, one every ten seconds from `first`.
fn denied_file(dir: &std::path::Path, name: &str, first: u32, count: u32) -> Input {
    let records: Vec<String> = (first..first + count)
        .map(|i| {
            format!(
                r#"{{"eventVersion":"1.08","eventTime":"2024-03-01T12:{:02}:{:02}Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7","errorCode":"AccessDenied","eventID":"denied-{i}","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/mallory","accessKeyId":"AKIAEXAMPLEMALLORY1"}}}}"#,
                i / 6,
                (i % 6) * 10
            )
        })
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, format!("{{\"Records\":[{}]}}", records.join(","))).expect("file");
    Input::Path(path)
}

fn incremental(store: &std::path::Path, input: Input) -> HuntOptions {
    HuntOptions {
        read: ReadOptions {
            inputs: vec![input],
            ..ReadOptions::default()
        },
        store: Some(StoreOptions {
            path: store.to_path_buf(),
            new_only: true,
            since_last_run: true,
            run: RunStart::default(),
        }),
        ..HuntOptions::default()
    }
}

fn bursts(hunted: &trailhound_hunt::Hunted) -> Vec<u64> {
    hunted
        .findings
        .iter()
        .filter_map(|f| f.correlation.as_ref().map(|c| c.count))
        .collect()
}

/// 24 denied calls delivered in two files and hunted by two incremental runs with one store
/// are one burst, as they are when both files are hunted in one run (the burst reports when
/// its 20th call arrives).
#[test]
fn a_burst_split_across_two_incremental_runs_is_one_finding() {
    let dir = tempfile::tempdir().expect("tmp");
    let rules = denied_burst_rules(dir.path());
    let first = denied_file(dir.path(), "first.json", 0, 12);
    let second = denied_file(dir.path(), "second.json", 12, 12);
    let store = dir.path().join("store.db");

    let one = hunt(&rules, &incremental(&store, first.clone()), None, &Silent).expect("first run");
    assert!(bursts(&one).is_empty(), "12 are not a burst yet");
    let two = hunt(&rules, &incremental(&store, second.clone()), None, &Silent).expect("second run");
    assert_eq!(
        bursts(&two),
        vec![20],
        "the second run continues the first one's window"
    );

    // The same two files in one run give the same burst.
    let both = HuntOptions {
        read: ReadOptions {
            inputs: vec![first, second.clone()],
            ..ReadOptions::default()
        },
        ..HuntOptions::default()
    };
    assert_eq!(bursts(&hunt(&rules, &both, None, &Silent).expect("one run")), vec![20]);

    // A run that is not incremental starts from nothing, whatever the store holds.
    let mut fresh = incremental(&store, second);
    fresh.store.as_mut().expect("store").since_last_run = false;
    fresh.store.as_mut().expect("store").new_only = false;
    assert!(bursts(&hunt(&rules, &fresh, None, &Silent).expect("fresh")).is_empty());
}

/// A store that fails after the scan (here: another process holds its write lock) loses no
/// finding: the hunt returns them with the store's error.
#[test]
fn a_store_failing_after_the_scan_keeps_the_findings() {
    let dir = tempfile::tempdir().expect("tmp");
    let rules = denied_burst_rules(dir.path());
    let input = denied_file(dir.path(), "calls.json", 0, 24);
    let store = dir.path().join("store.db");
    drop(trailhound_store::Store::open(&store).expect("create"));
    let holder = rusqlite::Connection::open(&store).expect("second connection");
    holder
        .execute_batch("BEGIN EXCLUSIVE; INSERT INTO meta (key, value) VALUES ('held', 'yes');")
        .expect("hold the write lock");
    let hunted = hunt(&rules, &incremental(&store, input), None, &Silent).expect("the scan itself succeeds");
    assert_eq!(bursts(&hunted), vec![20], "every finding is returned");
    let error = hunted.store_error.expect("the store's failure is reported");
    assert!(error.to_string().contains("store.db"), "{error}");
    holder.execute_batch("ROLLBACK").expect("release");
}

/// A store that cannot be opened stops the hunt before anything is read.
#[test]
fn a_store_that_cannot_be_opened_stops_the_hunt_before_the_scan() {
    let dir = tempfile::tempdir().expect("tmp");
    let rules = denied_burst_rules(dir.path());
    let input = denied_file(dir.path(), "calls.json", 0, 3);
    let store = dir.path().join("not-a-store.db");
    std::fs::write(&store, vec![b'x'; 4096]).expect("garbage");
    let error = hunt(&rules, &incremental(&store, input), None, &Silent).expect_err("refused");
    assert!(error.to_string().contains("not-a-store.db"), "{error}");
}
