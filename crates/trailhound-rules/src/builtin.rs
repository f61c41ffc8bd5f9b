//! The built-in rule pack, embedded at build time from `rules/` (see build.rs).

use crate::error::RuleError;
use crate::load::{RuleFile, TESTS_SUFFIX, parse_rules, tests_path_for};
use crate::rule::Rule;

include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));

/// Compiles the built-in pack. Errors here are bugs in the pack; a test keeps them at zero.
pub fn builtin_rules() -> (Vec<Rule>, Vec<RuleError>) {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for (path, text) in FILES {
        if path.ends_with(TESTS_SUFFIX) || !(path.ends_with(".yml") || path.ends_with(".yaml")) {
            continue;
        }
        let tests_path = tests_path_for(path);
        let tests = FILES
            .iter()
            .find(|(p, _)| *p == tests_path)
            .map(|(p, t)| (format!("builtin:{p}"), t.to_string()));
        let file = RuleFile {
            path: format!("builtin:{path}"),
            text: text.to_string(),
            tests,
        };
        let (found, failed) = parse_rules(&file);
        rules.extend(found);
        errors.extend(failed);
    }
    (rules, errors)
}
