//! Sigma rules for CloudTrail: parsing, compiling, evaluating, and the built-in pack.
//!
//! Correlation rules (counts, distinct values, sequences over time windows) are evaluated over the
//! base-rule matches collected during a scan, see `correlation`.
//!
//! A rule file is parsed and compiled once into closed enums (selections, value tests,
//! condition trees); evaluating a record then does no parsing of rule text. A [`RuleSet`] indexes
//! compiled rules by the eventName or eventSource they require, so a record is only shown to the
//! rules that could match it. This crate reads rule files and nothing else: no network, no async.

mod builtin;
mod condition;
mod correlation;
mod detection;
mod error;
mod evaluator;
mod load;
mod matcher;
mod rule;
mod ruleset;
mod selection;
pub mod sql;
pub mod testcase;

pub use builtin::{builtin_rules, builtin_rules_with};
pub use correlation::{Budget, DEFAULT_CORRELATION_MEMORY, MAX_ENTRIES, MIN_CORRELATION_MEMORY};
pub use error::RuleError;
pub use evaluator::{Evaluated, Evaluator};
pub use load::{LoadOptions, Placeholders, RuleFile, load_path, load_path_with, parse_rules, parse_rules_with};
pub use matcher::sigma_literal;
pub use rule::Rule;
pub use ruleset::RuleSet;
pub use selection::{Selection, SelectionError};
