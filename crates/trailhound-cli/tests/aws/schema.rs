//! Findings that reach a receiver or an audit, against the same schema as `hunt`'s.

use serde_json::Value;

/// Asserts every finding in `findings` is valid against `schemas/finding.v1.schema.json`.
pub fn assert_findings(findings: &[Value]) {
    let path = crate::support::root().join("schemas/finding.v1.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("schema")).expect("JSON");
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("a valid schema");
    assert!(!findings.is_empty(), "nothing to validate");
    for finding in findings {
        if let Some(error) = validator.iter_errors(finding).next() {
            panic!("finding schema: {error} at {}\n{finding}", error.instance_path());
        }
    }
}
