use super::*;
use crate::{RuleFile, RuleSet, parse_rules};

fn rule_set(text: &str) -> RuleSet {
    let (rules, errors) = parse_rules(&RuleFile {
        path: "test.yml".into(),
        text: text.into(),
        tests: None,
    });
    assert!(errors.is_empty(), "{errors:?}");
    RuleSet::new(rules).0
}

fn compile(detection: &str) -> Result<String, Unsupported> {
    let set = rule_set(&format!(
        "title: t\nname: t\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n{detection}"
    ));
    where_clause(&set.rules()[0], Dialect::Athena)
}

#[test]
fn plain_values_fold_ascii_case_only() {
    let sql = compile("  sel: {eventName: [CreateUser, DeleteKey]}\n  condition: sel").expect("compiles");
    assert!(
        sql.contains("lower((eventname)) IN ('createuser', 'deletekey')"),
        "{sql}"
    );
    assert!(
        sql.contains("strpos((eventname), '\u{212A}') = 0"),
        "a value has k: {sql}"
    );
    assert!(!sql.contains('\u{130}'), "no value has i... {sql}");
}

#[test]
fn nested_and_json_fields() {
    let sql = compile(
        "  sel: {userIdentity.sessionContext.sessionIssuer.arn|endswith: /admin, requestParameters.policyArn|contains: Admin}\n  condition: sel",
    )
    .expect("compiles");
    assert!(sql.contains("useridentity.sessioncontext.sessionissuer.arn"), "{sql}");
    assert!(sql.contains("json_extract(v"), "{sql}");
    assert!(sql.contains("[\"policyArn\"]"), "{sql}");
    let duck = {
        let set = rule_set(
            "title: t\nname: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel: {requestParameters.a.b: x}\n  condition: not sel",
        );
        where_clause(&set.rules()[0], Dialect::Duckdb).expect("compiles")
    };
    assert!(duck.starts_with("NOT ("), "{duck}");
    assert!(duck.contains("list_filter") && duck.contains("lambda v"), "{duck}");
}

#[test]
fn what_has_no_exact_form_is_refused_with_the_reason() {
    for (detection, reason) in [
        ("  sel: [evil]\n  condition: sel", "keyword"),
        ("  sel: {managementEvent: true}\n  condition: sel", "not a column"),
        ("  sel: {EventName: x}\n  condition: sel", "case-sensitive"),
        ("  sel: {userIdentity.sessionContext: x}\n  condition: sel", "struct"),
        ("  sel: {eventTime|hour: 3}\n  condition: sel", "time modifiers"),
        (
            "  sel: {sourceIPAddress|cidr: '2001:db8::/32'}\n  condition: sel",
            "IPv6",
        ),
        ("  sel: {userAgent|re: '\\bkali'}\n  condition: sel", "word boundaries"),
        ("  sel: {resources.arn: null}\n  condition: sel", "missing member"),
        ("  sel: {requestParameters.items.0: x}\n  condition: sel", "array index"),
    ] {
        let err = compile(detection).expect_err(detection);
        assert!(err.0.contains(reason), "{detection}: {err}");
    }
}

#[test]
fn correlations_and_filters_have_no_query_of_their_own() {
    let set = rule_set(
        "title: base\nname: base\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel: {eventName: A}\n  condition: sel\n---\ntitle: c\nname: c\ncorrelation: {type: event_count, rules: [base], group-by: [sourceIPAddress], timespan: 1h, condition: {gte: 2}}\n---\ntitle: f\nname: f\nlogsource: {product: aws, service: cloudtrail}\nfilter:\n  rules: [base]\n  sel: {userAgent|startswith: terraform}\n  condition: not sel\n",
    );
    let base = set.rules().iter().find(|r| r.id == "base").expect("base");
    let sql = where_clause(base, Dialect::Athena).expect("base compiles");
    assert!(sql.contains("NOT ("), "the filter is part of the rule: {sql}");
    assert!(sql.contains("'terraform'"), "{sql}");
    for id in ["c", "f"] {
        let rule = set.rules().iter().find(|r| r.id == id).expect("rule");
        assert!(where_clause(rule, Dialect::Athena).is_err(), "{id}");
    }
}
