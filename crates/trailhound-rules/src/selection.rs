//! Which rules a run uses: the built-in pack and rule files, narrowed by level, id and tag.
//!
//! A correlation counts the matches of the rules it refers to, so those are kept even when the
//! selection would leave them out (below `--min-level`, outside `--tag`); they report nothing of
//! their own unless the correlation says `generate: true`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use trailhound_finding::Level;

use crate::builtin::builtin_rules_with;
use crate::error::RuleError;
use crate::load::{LoadOptions, Placeholders, load_path_with};
use crate::rule::Rule;
use crate::ruleset::RuleSet;

/// Which rules to load and keep.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Rule files and folders to load.
    pub paths: Vec<PathBuf>,
    /// Whether the built-in pack is loaded.
    pub builtin: bool,
    pub min_level: Option<Level>,
    /// Only these rule ids (empty: all).
    pub only: Vec<String>,
    pub exclude: Vec<String>,
    /// Only rules with one of these tags, lower case (empty: all).
    pub tags: Vec<String>,
    /// Values for the `%name%` placeholders of `expand` modifiers in rule files.
    pub placeholders: Option<Placeholders>,
    /// Whether rules carry their test events (listings, coverage); a hunt does without.
    pub tests: bool,
}

impl Default for Selection {
    /// The built-in pack, whole.
    fn default() -> Selection {
        Selection {
            paths: Vec::new(),
            builtin: true,
            min_level: None,
            only: Vec::new(),
            exclude: Vec::new(),
            tags: Vec::new(),
            placeholders: None,
            tests: false,
        }
    }
}

/// A selection that cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum SelectionError {
    #[error("--rules {0}: no such file or folder")]
    NoSuchPath(PathBuf),
    #[error("no rule has the id {0:?} (see `trailhound rules list`)")]
    NoSuchRule(String),
}

impl Selection {
    /// Loads the built-in pack and the rule paths, then keeps what the selection asks for.
    /// Rules that fail to load are returned beside the set, with their file and line.
    pub fn load(&self) -> Result<(RuleSet, Vec<RuleError>), SelectionError> {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        let options = LoadOptions {
            placeholders: self.placeholders.as_ref(),
            tests: self.tests,
        };
        if self.builtin {
            let (found, failed) = builtin_rules_with(&options);
            rules.extend(found);
            errors.extend(failed);
        }
        for path in &self.paths {
            if !path.exists() {
                return Err(SelectionError::NoSuchPath(path.clone()));
            }
            let (found, failed) = load_path_with(path, &options);
            rules.extend(found);
            errors.extend(failed);
        }
        for id in self.only.iter().chain(&self.exclude) {
            if !rules.iter().any(|r| r.id == *id) {
                return Err(SelectionError::NoSuchRule(id.clone()));
            }
        }
        // A filter naming a rule nobody loaded is a mistake worth a word (a typo would let the
        // noise it was written for through).
        let known = |name: &str| rules.iter().any(|r| r.id == name || r.uuid.as_deref() == Some(name));
        for filter in rules.iter().filter(|r| r.is_filter()) {
            for name in filter.filtered() {
                if !known(name) {
                    errors.push(RuleError {
                        file: filter.file.clone(),
                        rule: Some(filter.id.clone()),
                        line: None,
                        message: format!("filter names rule {name:?}, which is not loaded"),
                    });
                }
            }
        }
        let selected: Vec<bool> = rules.iter().map(|rule| rule.is_filter() || self.keeps(rule)).collect();
        // What the selected correlations refer to, and what those refer to in turn (chains).
        let mut needed: BTreeSet<String> = BTreeSet::new();
        let mut frontier: Vec<&Rule> = rules
            .iter()
            .zip(&selected)
            .filter(|(_, k)| **k)
            .map(|(r, _)| r)
            .collect();
        while let Some(rule) = frontier.pop() {
            for reference in rule.references() {
                if needed.insert(reference.clone()) {
                    frontier.extend(
                        rules
                            .iter()
                            .filter(|r| r.id == *reference || r.uuid.as_deref() == Some(reference.as_str())),
                    );
                }
            }
        }
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

    /// Whether the selection asks for `rule` itself.
    pub fn keeps(&self, rule: &Rule) -> bool {
        self.min_level.is_none_or(|min| rule.level >= min)
            && (self.only.is_empty() || self.only.contains(&rule.id))
            && !self.exclude.contains(&rule.id)
            && (self.tags.is_empty() || rule.tags.iter().any(|t| self.tags.contains(t)))
    }
}
