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

/// The example's events as one NDJSON file of envelopes: in delivery order (the order a trail
/// delivers files in, across regions), or in path order, one region after the other, as `zcat`
/// of the trail's folders would make it.
fn example_as_one_stream(path: &std::path::Path, delivery_order: bool) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/cloudtrail/AWSLogs");
    let mut files = Vec::new();
    let mut folders = vec![root];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.to_string_lossy().ends_with(".json.gz") && !path.to_string_lossy().contains("Digest") {
                files.push(path);
            }
        }
    }
    // By delivery time, the last part of the file name (20261116T0205Z_...).
    let delivered = |p: &PathBuf| {
        p.file_name()
            .map(|n| n.to_string_lossy().split('_').nth(3).map(str::to_owned))
    };
    match delivery_order {
        true => files.sort_by_key(delivered),
        false => files.sort(),
    }
    let mut out = String::new();
    let mut scratch = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).expect("read");
        let decoded = trailhound_source::decode(&bytes, &mut scratch, 1 << 30).expect("gzip");
        out.push_str(decoded.text.trim_end());
        out.push('\n');
    }
    std::fs::write(path, out).expect("write");
}

#[test]
fn one_large_stream_sweeps_correlations_as_it_goes_and_finds_what_the_files_do() {
    let (rules, errors) = Selection::default().load().expect("the built-in pack");
    assert!(errors.is_empty(), "{errors:?}");
    let key =
        |f: &trailhound_finding::Finding| (f.rule_id.clone(), f.time, f.event_id.clone(), f.correlation.is_some());
    let files: Vec<_> = hunt(&rules, &options(), None, &Silent)
        .expect("files")
        .findings
        .iter()
        .map(key)
        .collect();
    assert_eq!(files.len(), 51);
    assert!(files.iter().filter(|k| k.3).count() >= 3, "correlations among them");
    let dir = tempfile::tempdir().expect("tmp");
    for (delivery_order, swept) in [(true, true), (false, false)] {
        let stream = dir.path().join(format!("all-{delivery_order}.ndjson"));
        example_as_one_stream(&stream, delivery_order);
        // Streamed as a large file is, with a checkpoint every 64 KB of the stream.
        let read = ReadOptions {
            inputs: vec![Input::Path(stream.clone())],
            scan: trailhound_source::ScanOptions {
                stream_file_bytes: 0,
                checkpoint_bytes: 64 << 10,
                ..trailhound_source::ScanOptions::default()
            },
            ..ReadOptions::default()
        };
        // In delivery order, the read hands the sinks on along the stream, each time with a
        // later watermark; one region after the other, the file goes back in time: not swept.
        struct Count(u64);
        impl trailhound_source::Sink for Count {
            fn record(&mut self, _: &str, _: &trailhound_event::Record<'_>) {
                self.0 += 1;
            }
        }
        let mut watermarks = Vec::new();
        let mut records = 0;
        let make = || Count(0);
        trailhound_source::read(
            &read,
            None,
            &trailhound_source::Silent,
            &make,
            true,
            &mut |sinks, watermark| {
                records += sinks.iter().map(|s| s.0).sum::<u64>();
                watermarks.extend(watermark);
            },
        )
        .expect("read");
        assert_eq!(records, 3000);
        match swept {
            true => assert!(watermarks.len() >= 10, "{} checkpoints", watermarks.len()),
            false => assert!(watermarks.is_empty(), "{} checkpoints", watermarks.len()),
        }
        assert!(watermarks.windows(2).all(|w| w[0] <= w[1]));
        let streamed = HuntOptions { read, ..options() };
        let hunted = hunt(&rules, &streamed, None, &Silent).expect("stream");
        let from_stream: Vec<_> = hunted.findings.iter().map(key).collect();
        assert_eq!(from_stream, files, "delivery order: {delivery_order}");
    }
}
