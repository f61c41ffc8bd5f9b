//! Golden outputs: what a person reads from the bundled example, byte for byte, in every format
//! people read or pipe. A change of output shows as a snapshot diff to review
//! (`cargo insta review`, or `INSTA_UPDATE=always cargo test` and read `git diff`).
//!
//! The runs use relative paths from the repository root, so `source_file` is the same on every
//! machine; the only redactions are the elapsed time and throughput of the run summary.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `trailhound ARGS` from the repository root without colour, returning (stdout, stderr).
fn trailhound(args: &[&str]) -> (String, String) {
    let out = Command::cargo_bin("trailhound")
        .expect("binary built")
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env_remove("TRAILHOUND_LOG")
        .args(args)
        .output()
        .expect("runs");
    assert!(
        out.status.code().is_some_and(|c| c < 2),
        "trailhound {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The run summary without what varies from run to run (elapsed time, rates).
fn redact(text: &str) -> String {
    text.lines()
        .map(
            |line| match line.find(" in ").filter(|_| line.trim_start().starts_with("time")) {
                Some(_) => "  time: [redacted]".to_string(),
                None => redact_elapsed(line),
            },
        )
        .collect::<Vec<_>>()
        .join("\n")
}

fn redact_elapsed(line: &str) -> String {
    // "  elapsed 0.05 s, 60,000 records/s, 90.1 MB/s" and the like.
    let lower = line.to_ascii_lowercase();
    if lower.contains("records/s") || lower.contains("mb/s") || lower.trim_start().starts_with("elapsed") {
        "  [elapsed and throughput redacted]".to_string()
    } else {
        line.to_string()
    }
}

#[test]
fn hunt_table() {
    let (stdout, _) = trailhound(&["hunt", "examples/", "--format", "table"]);
    insta::assert_snapshot!(stdout);
}

#[test]
fn hunt_jsonl() {
    let (stdout, _) = trailhound(&["hunt", "examples/", "--format", "jsonl"]);
    insta::assert_snapshot!(stdout);
}

#[test]
fn hunt_csv() {
    let (stdout, _) = trailhound(&["hunt", "examples/", "--format", "csv"]);
    insta::assert_snapshot!(stdout);
}

#[test]
fn hunt_grouped_table() {
    let (stdout, _) = trailhound(&["hunt", "examples/", "--format", "table", "--group"]);
    insta::assert_snapshot!(stdout);
}

#[test]
fn hunt_run_summary() {
    let (_, stderr) = trailhound(&["hunt", "examples/", "--format", "jsonl"]);
    insta::assert_snapshot!(redact(&stderr));
}

#[test]
fn summary_table() {
    let (stdout, _) = trailhound(&["summary", "examples/"]);
    insta::assert_snapshot!(stdout);
}

#[test]
fn summary_json() {
    let (stdout, _) = trailhound(&["summary", "examples/", "--format", "json"]);
    insta::assert_snapshot!(stdout);
}

#[test]
fn timeline_table() {
    let (stdout, _) = trailhound(&[
        "timeline",
        "examples/",
        "--access-key",
        "AKIA2CIDEPLOYEXAMPLE",
        "--format",
        "table",
    ]);
    insta::assert_snapshot!(stdout);
}

#[test]
fn timeline_jsonl() {
    let (stdout, _) = trailhound(&[
        "timeline",
        "examples/",
        "--access-key",
        "AKIA2CIDEPLOYEXAMPLE",
        "--format",
        "jsonl",
    ]);
    insta::assert_snapshot!(stdout);
}

#[test]
fn events_count_by() {
    let (stdout, _) = trailhound(&[
        "events",
        "examples/",
        "--count-by",
        "eventSource,eventName",
        "--format",
        "table",
    ]);
    insta::assert_snapshot!(stdout);
}

/// Counts as JSON numbers, a missing value as null.
#[test]
fn events_count_by_jsonl() {
    let (stdout, _) = trailhound(&[
        "events",
        "examples/",
        "--count-by",
        "errorCode",
        "--top",
        "4",
        "--format",
        "jsonl",
    ]);
    insta::assert_snapshot!(stdout);
}

#[test]
fn verify_table() {
    let (stdout, _) = trailhound(&["verify", "examples/"]);
    insta::assert_snapshot!(stdout);
}

#[test]
fn rules_list() {
    let (stdout, _) = trailhound(&["rules", "list"]);
    insta::assert_snapshot!(stdout);
}
