//! Real-world Sigma: every SigmaHQ CloudTrail rule loads and compiles, and a few of them fire on
//! the Stratus Red Team detonation they describe.

use std::path::{Path, PathBuf};

use trailhound_rules::{Evaluator, RuleSet, load_path};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

#[test]
fn all_57_sigmahq_cloudtrail_rules_compile() {
    let (rules, errors) = load_path(&fixtures().join("sigmahq/rules"));
    assert!(
        errors.is_empty(),
        "{}",
        errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    );
    assert_eq!(rules.len(), 57);
    let (set, errors) = RuleSet::new(rules);
    assert!(errors.is_empty());
    // The index must do its job on real rules: few of them should look at every record.
    assert!(set.unindexed() <= 12, "{} rules are unindexed", set.unindexed());
}

fn stratus_hits(set: &RuleSet, technique: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixtures().join(format!("stratus/{technique}.json"))).expect("fixture");
    let mut hits = Vec::new();
    let mut scratch = String::new();
    trailhound_event::for_each_record(&text, &mut |slot| {
        let record = slot.record.expect("stratus records are valid");
        set.detections(&record, &mut scratch, &mut |rule| hits.push(rule.id.clone()));
    })
    .expect("stratus file parses");
    hits.sort();
    hits.dedup();
    hits
}

#[test]
fn sigmahq_rules_fire_on_the_attacks_they_describe() {
    let (rules, _) = load_path(&fixtures().join("sigmahq/rules"));
    let (set, _) = RuleSet::new(rules);
    let title_of = |id: &str| {
        set.rules()
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.title.clone())
            .unwrap_or_default()
    };
    let cases = [
        ("aws.defense-evasion.cloudtrail-stop", "AWS CloudTrail Important Change"),
        ("aws.defense-evasion.vpc-remove-flow-logs", "AWS VPC Flow Logs Deleted"),
        (
            "aws.initial-access.console-login-without-mfa",
            "AWS Successful Console Login Without MFA",
        ),
        (
            "aws.exfiltration.ec2-security-group-open-port-22-ingress",
            "Ingress/Egress Security Group Modification",
        ),
    ];
    for (technique, title) in cases {
        let titles: Vec<String> = stratus_hits(&set, technique).iter().map(|id| title_of(id)).collect();
        assert!(
            titles.iter().any(|t| t.eq_ignore_ascii_case(title)),
            "{technique}: {titles:?}"
        );
    }
}

/// Runs records (JSON texts) through `set`; returns the ids of correlation findings.
fn correlated(set: &RuleSet, records: &[String]) -> Vec<String> {
    let mut evaluator = Evaluator::new(set, false);
    for json in records {
        let record = trailhound_event::Record::parse(json).expect("record");
        evaluator.observe(&record, "test");
    }
    evaluator
        .finish()
        .findings
        .into_iter()
        .filter(|f| f.correlation.is_some())
        .map(|f| f.rule_id)
        .collect()
}

fn event(name: &str, source: &str, minute: u32, extra: &str) -> String {
    format!(
        r#"{{"eventTime":"2024-03-01T12:{minute:02}:00Z","eventName":"{name}","eventSource":"{source}","eventID":"e{minute}","sourceIPAddress":"203.0.113.9","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/x"}}{extra}}}"#
    )
}

#[test]
fn the_8_legacy_aggregation_rules_load_and_work() {
    let (rules, errors) = load_path(&fixtures().join("sigmahq/unsupported"));
    assert!(
        errors.is_empty(),
        "{}",
        errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    );
    assert_eq!(rules.len(), 8);
    assert!(rules.iter().all(|r| r.is_correlation()));
    let title = |id: &str| {
        rules
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.title.clone())
            .unwrap_or_default()
    };
    let (set, errors) = RuleSet::new(rules.clone());
    assert!(errors.is_empty());
    let fired =
        |records: Vec<String>| -> Vec<String> { correlated(&set, &records).iter().map(|id| title(id)).collect() };
    let user_data = |m: u32| {
        event(
            "DescribeInstanceAttribute",
            "ec2.amazonaws.com",
            m,
            r#","requestParameters":{"attribute":"userData"}"#,
        )
    };
    // count() > 10 within 30m: eleven reads fire, ten do not.
    assert!(
        fired((0..11).map(user_data).collect())
            .iter()
            .any(|t| t.contains("Userdata")),
        "{:?}",
        fired((0..11).map(user_data).collect())
    );
    assert!(
        !fired((0..10).map(user_data).collect())
            .iter()
            .any(|t| t.contains("Userdata"))
    );
    // count() > 50 of list* within 10m.
    let lists: Vec<String> = (0..51)
        .map(|i| event("ListBuckets", "s3.amazonaws.com", i % 10, ""))
        .collect();
    assert!(fired(lists).iter().any(|t| t.contains("Enumeration")));
    // count() by sourceIPAddress > 5.
    let macie: Vec<String> = (0..6)
        .map(|m| event("UpdateClassificationJob", "macie.amazonaws.com", m, ""))
        .collect();
    assert!(!fired(macie).is_empty());
    // selection1 | near selection2, and `a and b` under a timeframe.
    let lambda = vec![
        event("Invoke", "lambda.amazonaws.com", 5, ""),
        event("CreateFunction", "lambda.amazonaws.com", 1, ""),
    ];
    assert!(fired(lambda).iter().any(|t| t.contains("Lambda")));
    let ses = vec![
        event("VerifyEmailIdentity", "ses.amazonaws.com", 3, ""),
        event("UpdateAccountSendingEnabled", "ses.amazonaws.com", 1, ""),
    ];
    assert!(fired(ses).iter().any(|t| t.contains("Email Service")));
    let ses_far = vec![
        event("VerifyEmailIdentity", "ses.amazonaws.com", 30, ""),
        event("UpdateAccountSendingEnabled", "ses.amazonaws.com", 1, ""),
    ];
    assert!(
        !fired(ses_far).iter().any(|t| t.contains("Email Service")),
        "5m timeframe"
    );
}
