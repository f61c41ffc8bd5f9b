//! `trailhound rules list | show | test | validate`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use std::collections::BTreeSet;
use trailhound_output::{write_coverage, write_rule, write_rule_list, write_test_report};

use trailhound_rules::{Rule, RuleError, RuleSet, Selection, builtin_rules, load_path, testcase};

use crate::args::{RulesCommand, TableOrJson};
use crate::commands::Outcome;
use crate::settings::rule_selection;

/// What a `rules` command does, resolved from its arguments.
pub enum RulesSettings {
    List { rules: Selection, json: bool },
    Show { id: String, rules: Selection },
    Test { path: Option<PathBuf> },
    Validate { path: PathBuf },
    Coverage { rules: Selection, json: bool },
}

impl RulesSettings {
    pub fn resolve(command: &RulesCommand) -> Result<RulesSettings> {
        Ok(match command {
            RulesCommand::List { rules, format } => RulesSettings::List {
                rules: Selection {
                    tests: true,
                    ..rule_selection(rules)?
                },
                json: *format == TableOrJson::Json,
            },
            RulesCommand::Show { id, rules } => RulesSettings::Show {
                id: id.clone(),
                rules: Selection {
                    tests: true,
                    ..rule_selection(rules)?
                },
            },
            RulesCommand::Test { path } => RulesSettings::Test { path: path.clone() },
            RulesCommand::Coverage { rules, format } => RulesSettings::Coverage {
                rules: Selection {
                    tests: true,
                    ..rule_selection(rules)?
                },
                json: *format == TableOrJson::Json,
            },
            RulesCommand::Validate { path } => RulesSettings::Validate { path: path.clone() },
            RulesCommand::Sql(_) => bail!("`rules sql` is run by commands::sql"),
        })
    }
}

pub fn run(settings: &RulesSettings) -> Result<Outcome> {
    let mut out = io::stdout().lock();
    let result = match settings {
        RulesSettings::List { rules, json } => {
            let json = *json;
            let (set, errors) = rules.load()?;
            warn_all(&errors);
            let mut listed: Vec<&Rule> = set.rules().iter().collect();
            listed.sort_by(|a, b| b.level.cmp(&a.level).then(a.id.cmp(&b.id)));
            write_rule_list(&mut out, &listed, json).map(|()| Outcome::Clean)
        }
        RulesSettings::Coverage { rules, json } => {
            let (set, errors) = rules.load()?;
            warn_all(&errors);
            let listed: Vec<&Rule> = set.rules().iter().filter(|r| !r.is_filter()).collect();
            write_coverage(&mut out, &listed, *json).map(|()| Outcome::Clean)
        }
        RulesSettings::Show { id, rules } => {
            let (set, errors) = rules.load()?;
            warn_all(&errors);
            let Some(rule) = set
                .rules()
                .iter()
                .find(|r| r.id == *id || r.uuid.as_deref() == Some(id))
            else {
                bail!("no rule has the id {id:?} (see `trailhound rules list`)");
            };
            write_rule(&mut out, rule).map(|()| Outcome::Clean)
        }
        RulesSettings::Test { path } => {
            let (set, tested, errors) = match path {
                Some(path) => with_builtin(load_existing(path)?),
                None => {
                    let (rules, mut errors) = builtin_rules();
                    let tested = rules.iter().map(|r| r.id.clone()).collect();
                    let (set, more) = RuleSet::new(rules);
                    errors.extend(more);
                    (set, tested, errors)
                }
            };
            warn_all(&errors);
            let results: Vec<(&Rule, Vec<testcase::Outcome>)> = set
                .rules()
                .iter()
                .filter(|rule| tested.contains(&rule.id))
                .map(|rule| (rule, testcase::run(&set, rule)))
                .collect();
            write_test_report(&mut out, &results).map(|failed| {
                if failed > 0 || !errors.is_empty() {
                    Outcome::Findings
                } else {
                    Outcome::Clean
                }
            })
        }
        RulesSettings::Validate { path } => {
            let (set, tested, errors) = with_builtin(load_existing(path)?);
            let rules: Vec<&Rule> = set.rules().iter().filter(|r| tested.contains(&r.id)).collect();
            for error in &errors {
                writeln!(out, "{}", trailhound_event::printable(&error.to_string()))?;
            }
            writeln!(out, "{} rules valid, {} errors", rules.len(), errors.len())?;
            Ok(if errors.is_empty() {
                Outcome::Clean
            } else {
                Outcome::Findings
            })
        }
    };
    match result {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(Outcome::Clean),
        other => Ok(other?),
    }
}

/// The user's rules in a set with the built-in ones they do not replace (correlations may refer
/// to built-in rules); returns the set, the ids of the user's rules, and every error.
fn with_builtin((rules, mut errors): (Vec<Rule>, Vec<RuleError>)) -> (RuleSet, BTreeSet<String>, Vec<RuleError>) {
    let ids: BTreeSet<String> = rules.iter().map(|r| r.id.clone()).collect();
    let (builtin, _) = builtin_rules();
    let mut all = rules;
    all.extend(builtin.into_iter().filter(|r| !ids.contains(&r.id)));
    let (set, more) = RuleSet::new(all);
    errors.extend(
        more.into_iter()
            .filter(|e| e.rule.as_ref().is_some_and(|id| ids.contains(id))),
    );
    (set, ids, errors)
}

fn load_existing(path: &Path) -> Result<(Vec<Rule>, Vec<RuleError>)> {
    if !path.exists() {
        bail!("{}: no such file or folder", path.display());
    }
    Ok(load_path(path))
}

fn warn_all(errors: &[RuleError]) {
    for error in errors {
        tracing::warn!("rule skipped: {error}");
    }
}
