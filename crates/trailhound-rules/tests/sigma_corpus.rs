//! Real-world Sigma: every SigmaHQ CloudTrail rule loads and compiles, and a few of them fire on
//! the Stratus Red Team detonation they describe.

use std::path::{Path, PathBuf};

use trailhound_rules::{RuleSet, load_path};

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
        set.matches(&record, &mut scratch, &mut |rule| hits.push(rule.id.clone()));
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
