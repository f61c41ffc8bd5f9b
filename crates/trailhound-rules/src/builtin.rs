//! The built-in rule pack, embedded at build time from `rules/` (see build.rs).

use crate::error::RuleError;
use rayon::prelude::*;

use crate::load::{LoadOptions, RuleFile, TESTS_SUFFIX, gather, parse_rules_with, tests_path_for};
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
    // Files are parsed and compiled on every core (YAML and regex compilation are most of a
    // short hunt's time), and gathered in the pack's order.
    let parsed: Vec<(Vec<Rule>, Vec<RuleError>)> = FILES
        .par_iter()
        .filter(|(path, _)| !path.ends_with(TESTS_SUFFIX) && (path.ends_with(".yml") || path.ends_with(".yaml")))
        .map(|(path, text)| {
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
            parse_rules_with(&file, options)
        })
        .collect();
    gather(parsed)
}
