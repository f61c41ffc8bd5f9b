//! The commands. Each takes resolved settings and returns how the process should exit.

pub mod alerts;
pub mod events;
pub mod findings;
pub mod hunt;
pub mod inventory;
pub mod rules;
pub mod scanning;
pub mod summary;
pub mod timeline;

use anyhow::Result;
use trailhound_rules::{Rule, RuleError, RuleSet, builtin_rules, load_path};

use crate::settings::RuleSettings;

/// How a command ended, as the process exit status (see `--help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 0: done, nothing at or above `--fail-on`.
    Clean,
    /// 1: findings at or above `--fail-on`, or a rule test failed.
    Findings,
    /// 2: an error the user must fix.
    Error,
}

/// Loads the built-in pack and the user's rule paths, then keeps what the selection asks for.
pub fn load_rules(settings: &RuleSettings) -> Result<(RuleSet, Vec<RuleError>)> {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    if settings.builtin {
        let (found, failed) = builtin_rules();
        rules.extend(found);
        errors.extend(failed);
    }
    for path in &settings.paths {
        if !path.exists() {
            anyhow::bail!("--rules {}: no such file or folder", path.display());
        }
        let (found, failed) = load_path(path);
        rules.extend(found);
        errors.extend(failed);
    }
    for id in settings.only.iter().chain(&settings.exclude) {
        if !rules.iter().any(|r| r.id == *id) {
            anyhow::bail!("no rule has the id {id:?} (see `trailhound rules list`)");
        }
    }
    // Keep the selected rules, and the rules selected correlations count (below --min-level or
    // outside --tag as those may be: they report nothing of their own unless asked to).
    let selected: Vec<bool> = rules.iter().map(|rule| keep(rule, settings)).collect();
    let needed: std::collections::BTreeSet<String> = rules
        .iter()
        .zip(&selected)
        .filter(|(_, kept)| **kept)
        .flat_map(|(rule, _)| rule.references().iter().cloned())
        .collect();
    let mut selected = selected.into_iter();
    rules.retain(|rule| {
        selected.next().unwrap_or(false)
            || needed.contains(&rule.id)
            || rule.uuid.as_ref().is_some_and(|u| needed.contains(u))
    });
    let (set, duplicates) = RuleSet::new(rules);
    errors.extend(duplicates);
    Ok((set, errors))
}

fn keep(rule: &Rule, settings: &RuleSettings) -> bool {
    settings.min_level.is_none_or(|min| rule.level >= min)
        && (settings.only.is_empty() || settings.only.contains(&rule.id))
        && !settings.exclude.contains(&rule.id)
        && (settings.tags.is_empty() || rule.tags.iter().any(|t| settings.tags.contains(t)))
}

/// The findings a run prints after the store recorded them (`states`, in the same order): one
/// per stored finding (a record delivered twice is one finding), only new ones with `new_only`,
/// each with its store id, and an analyst's `findings explain` carried onto it.
pub fn keep_recorded(
    findings: Vec<trailhound_rules::Finding>,
    states: Vec<trailhound_store::Recorded>,
    new_only: bool,
) -> Vec<trailhound_rules::Finding> {
    let mut seen = std::collections::HashSet::new();
    let mut kept = Vec::with_capacity(findings.len());
    for (mut finding, recorded) in findings.into_iter().zip(states) {
        if !seen.insert(recorded.id) || (new_only && !recorded.new) {
            continue;
        }
        finding.store_id = Some(recorded.id);
        if recorded.status == trailhound_store::Status::Explained && finding.explanation.is_none() {
            finding.explanation = Some(trailhound_rules::Explanation {
                reason: recorded.reason.unwrap_or_default(),
                ticket: recorded.ticket,
                expires: None,
            });
        }
        kept.push(finding);
    }
    kept
}
