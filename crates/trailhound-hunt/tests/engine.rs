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
    assert_eq!(hunted.findings.len(), 47, "the README's figure");
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
    assert_eq!((first.findings.len(), first.new_findings), (47, 47));
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
