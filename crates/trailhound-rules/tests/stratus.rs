//! Stratus Red Team coverage: every technique of the current release is caught by a behaviour
//! rule (the user-agent rules left out), and `rules/STRATUS-COVERAGE.md` is what this test
//! generates from the technique files and the detonation logs.
//!
//! Two kinds of evidence, both under `tests/fixtures/`:
//! - `stratus-techniques/<id>.yml`: each technique of the current Stratus Red Team release, as
//!   the partial CloudTrail records its documented API calls produce (merged over the rule
//!   tests' default record, as in `rules/*/*.tests.yml`);
//! - `stratus/<id>.json`: the CloudTrail records real detonations produced (older techniques).
//!
//! Regenerate the coverage file with
//! `UPDATE_STRATUS_COVERAGE=1 cargo test -p trailhound-rules --test stratus`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use trailhound_rules::testcase::TestCase;
use trailhound_rules::{Evaluator, Rule, RuleSet, builtin_rules};

/// One technique file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Technique {
    technique: String,
    title: String,
    #[serde(default)]
    platform: Option<String>,
    #[serde(default)]
    tactics: Vec<String>,
    #[serde(default)]
    calls: Vec<String>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    events: Vec<serde_json::Value>,
    /// Why the technique leaves no CloudTrail evidence (EKS techniques seen only in
    /// Kubernetes audit logs).
    #[serde(default)]
    left_out: Option<String>,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The built-in pack without the rules that look at the user agent alone.
fn behaviour_rules() -> RuleSet {
    let (rules, errors) = builtin_rules();
    assert!(errors.is_empty(), "{errors:?}");
    let rules: Vec<Rule> = rules
        .into_iter()
        .filter(|r| !r.file.starts_with("builtin:useragent/"))
        .collect();
    let (set, errors) = RuleSet::new(rules);
    assert!(errors.is_empty(), "{errors:?}");
    set
}

/// The rules (id, level) that fire on `records`, correlations included, with the context a
/// default hunt derives (no AWS ranges, no GeoIP database, no baselines): what a user gets.
fn fired(set: &RuleSet, records: &[String]) -> Vec<(String, String)> {
    let context = trailhound_context::Context::new(Default::default(), None);
    let mut cache = trailhound_context::Cache::default();
    let mut evaluator = Evaluator::new(set, false);
    for json in records {
        trailhound_event::for_each_record(json, &mut |slot| {
            let record = slot.record.expect("valid record");
            record.set_derived(context.derive(&record, &mut cache));
            evaluator.observe(&record, "stratus");
        })
        .expect("parses");
    }
    let levels: BTreeMap<&str, String> = set
        .rules()
        .iter()
        .map(|r| (r.id.as_str(), r.level.as_str().to_string()))
        .collect();
    let ids: BTreeSet<String> = evaluator.finish().findings.into_iter().map(|f| f.rule_id).collect();
    ids.into_iter()
        .map(|id| {
            let level = levels.get(id.as_str()).cloned().unwrap_or_default();
            (id, level)
        })
        .collect()
}

fn sorted_files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

struct Row {
    technique: String,
    title: String,
    evidence: String,
    calls: String,
    rules: Vec<(String, String)>,
    left_out: Option<String>,
}

#[test]
fn every_current_stratus_technique_is_caught_by_a_behaviour_rule_and_the_coverage_file_is_current() {
    let set = behaviour_rules();
    let mut rows = Vec::new();
    let mut missed = Vec::new();
    let technique_dir = root().join("tests/fixtures/stratus-techniques");
    let techniques = sorted_files(&technique_dir, "yml");
    assert!(techniques.len() >= 40, "only {} technique files", techniques.len());
    for path in &techniques {
        let text = std::fs::read_to_string(path).expect("read");
        let technique: Technique = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        assert_eq!(
            technique.technique,
            stem,
            "{}: file named after its technique",
            path.display()
        );
        let records: Vec<String> = TestCase {
            name: technique.technique.clone(),
            expect: true,
            event: serde_json::Value::Null,
            events: technique.events.clone(),
        }
        .records_json(&technique.technique, 0);
        let rules = if technique.events.is_empty() {
            Vec::new()
        } else {
            fired(&set, &records)
        };
        match (&technique.left_out, technique.events.is_empty()) {
            (Some(_), true) => {}
            (Some(_), false) => panic!("{stem}: left_out, yet it has events"),
            (None, true) => panic!("{stem}: no events and no left_out reason"),
            (None, false) if rules.is_empty() => missed.push(stem.to_string()),
            (None, false) => {}
        }
        let platform = technique.platform.as_deref().unwrap_or("AWS");
        let _ = (&technique.tactics, &technique.note);
        rows.push(Row {
            technique: technique.technique.clone(),
            title: technique.title.clone(),
            evidence: format!("documented calls ({platform}, {} events)", technique.events.len()),
            calls: technique.calls.join(", "),
            rules,
            left_out: technique.left_out.clone(),
        });
    }
    for path in sorted_files(&root().join("tests/fixtures/stratus"), "json") {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let text = std::fs::read_to_string(&path).expect("read");
        let rules = fired(&set, &[text]);
        if rules.is_empty() {
            missed.push(format!("{stem} (detonation log)"));
        }
        rows.push(Row {
            technique: stem,
            title: String::new(),
            evidence: "detonation log".to_string(),
            calls: String::new(),
            rules,
            left_out: None,
        });
    }
    assert!(missed.is_empty(), "techniques no behaviour rule catches: {missed:?}");
    let generated = coverage_markdown(&rows, techniques.len());
    let file = root().join("rules/STRATUS-COVERAGE.md");
    if std::env::var_os("UPDATE_STRATUS_COVERAGE").is_some() {
        std::fs::write(&file, &generated).expect("write coverage");
        return;
    }
    let current = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        current == generated,
        "rules/STRATUS-COVERAGE.md is stale: regenerate it with `UPDATE_STRATUS_COVERAGE=1 cargo test -p trailhound-rules --test stratus` and review the diff"
    );
}

fn coverage_markdown(rows: &[Row], techniques: usize) -> String {
    let mut out = String::new();
    out.push_str("# Stratus Red Team coverage\n\n");
    out.push_str(
        "Generated by `crates/trailhound-rules/tests/stratus.rs` (do not edit by hand; regenerate with\n\
         `UPDATE_STRATUS_COVERAGE=1 cargo test -p trailhound-rules --test stratus`). The test fails when this\n\
         file is stale, or when a technique is caught by no rule.\n\n",
    );
    out.push_str(
        "Each row lists the built-in rules that fire on the technique's CloudTrail records with the\n\
         user-agent rules (`rules/useragent/`) left out: an attacker changes the user agent, so only\n\
         rules about the behaviour count. Correlation rules are listed where the records reach their\n\
         threshold on their own.\n\n",
    );
    let documented = rows.iter().filter(|r| r.evidence != "detonation log").count();
    out.push_str(&format!(
        "## The current release: {techniques} techniques, from their documented API calls\n\n\
         One file per technique in `tests/fixtures/stratus-techniques/`: the records its documented\n\
         calls produce, built from the technique's documentation and real records of the same calls.\n\n\
         | Technique | Title | Calls | Rules |\n|---|---|---|---|\n"
    ));
    let rules_cell = |row: &Row| -> String {
        if let Some(reason) = &row.left_out {
            return format!("left out: {reason}");
        }
        row.rules
            .iter()
            .map(|(id, level)| format!("`{id}` ({level})"))
            .collect::<Vec<_>>()
            .join("<br>")
    };
    for row in rows.iter().take(documented) {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            row.technique,
            row.title.replace('|', "\\|"),
            row.calls,
            rules_cell(row)
        ));
    }
    out.push_str(
        "\n## Real detonation logs\n\n\
         The CloudTrail records of real detonations (`tests/fixtures/stratus/`, one file per technique,\n\
         recorded with an older release; several ran with deliberately insufficient permissions, so\n\
         their key calls failed, and the rules match attempts as well as successes).\n\n\
         | Technique (log) | Rules |\n|---|---|\n",
    );
    for row in rows.iter().skip(documented) {
        out.push_str(&format!("| `{}` | {} |\n", row.technique, rules_cell(row)));
    }
    out
}
