//! The built-in rule pack, embedded at build time from `rules/` (see build.rs).

use crate::error::RuleError;
use crate::load::{LoadOptions, RuleFile, TESTS_SUFFIX, parse_rules_with, tests_path_for};
use crate::rule::Rule;

include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));

/// Compiles the built-in pack with its test events. Errors here are bugs in the pack; a test
/// keeps them at zero.
pub fn builtin_rules() -> (Vec<Rule>, Vec<RuleError>) {
    builtin_rules_with(&LoadOptions {
        tests: true,
        ..LoadOptions::default()
    })
}

/// Compiles the built-in pack; its test events only when `options.tests`.
pub fn builtin_rules_with(options: &LoadOptions) -> (Vec<Rule>, Vec<RuleError>) {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for (path, text) in FILES {
        if path.ends_with(TESTS_SUFFIX) || !(path.ends_with(".yml") || path.ends_with(".yaml")) {
            continue;
        }
        let tests = if options.tests {
            let tests_path = tests_path_for(path);
            FILES
                .iter()
                .find(|(p, _)| *p == tests_path)
                .map(|(p, t)| (format!("builtin:{p}"), t.to_string()))
        } else {
            None
        };
        let file = RuleFile {
            path: format!("builtin:{path}"),
            text: text.to_string(),
            tests,
        };
        let (found, failed) = parse_rules_with(&file, options);
        rules.extend(found);
        errors.extend(failed);
    }
    (rules, errors)
}
