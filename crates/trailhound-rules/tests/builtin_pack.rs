//! The built-in pack: every rule compiles, carries what a reviewer needs, passes its own test
//! events, and together the pack covers what users asked for and every Stratus Red Team technique.

use std::collections::BTreeMap;
use std::path::Path;

use trailhound_event::Record;
use trailhound_rules::testcase::{self, TestCase};
use trailhound_rules::{Evaluator, Rule, RuleSet, builtin_rules};

fn pack() -> Vec<Rule> {
    let (rules, errors) = builtin_rules();
    assert!(
        errors.is_empty(),
        "{}",
        errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    );
    rules
}

#[test]
fn every_rule_is_complete_and_passes_its_tests() {
    let (set, errors) = RuleSet::new(pack());
    assert!(errors.is_empty(), "{errors:?}");
    let rules = set.rules();
    assert!(rules.len() >= 80, "only {} rules", rules.len());
    let mut failures = Vec::new();
    for rule in rules {
        let mut missing = Vec::new();
        if rule.uuid.is_none() {
            missing.push("id");
        }
        if rule.description.as_deref().is_none_or(|d| d.trim().len() < 20) {
            missing.push("description");
        }
        if rule.falsepositives.is_empty() {
            missing.push("falsepositives");
        }
        if rule.techniques().next().is_none() {
            missing.push("ATT&CK technique tag");
        }
        if !rule.tests.iter().any(|t| t.expect) {
            missing.push("a matching test event");
        }
        if !rule.tests.iter().any(|t| !t.expect) {
            missing.push("a non-matching test event");
        }
        if !missing.is_empty() {
            failures.push(format!("{}: no {}", rule.id, missing.join(", ")));
        }
        for outcome in testcase::run(&set, rule) {
            if !outcome.passed() {
                failures.push(format!(
                    "{}: test {:?} failed: {:?}",
                    rule.id, outcome.name, outcome.result
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A minimal event of the given source and name, in the default test record.
fn event(source: &str, name: &str, extra: serde_json::Value) -> String {
    let mut patch = serde_json::json!({"eventSource": source, "eventName": name});
    testcase::merge(&mut patch, &extra);
    TestCase {
        name: name.into(),
        expect: true,
        event: patch,
        events: Vec::new(),
    }
    .record_json("probe", 0)
}

fn hits(set: &RuleSet, json: &str) -> Vec<(String, trailhound_finding::Level)> {
    let record = Record::parse(json).expect("record");
    let mut found = Vec::new();
    set.detections(&record, &mut String::new(), &mut |rule| {
        found.push((rule.id.clone(), rule.level))
    });
    found
}

#[test]
fn covers_what_users_asked_for() {
    let (set, _) = RuleSet::new(pack());
    let none = serde_json::json!({});
    let asked = [
        ("iam.amazonaws.com", "CreateAccessKey"),
        ("cloudtrail.amazonaws.com", "StopLogging"),
        ("signin.amazonaws.com", "ConsoleLogin"),
        ("ec2.amazonaws.com", "CreateNetworkAclEntry"),
        ("ec2.amazonaws.com", "CreateRoute"),
        ("ec2.amazonaws.com", "AuthorizeSecurityGroupEgress"),
        ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress"),
        (
            "elasticloadbalancing.amazonaws.com",
            "ApplySecurityGroupsToLoadBalancer",
        ),
        ("elasticloadbalancing.amazonaws.com", "SetSecurityGroups"),
        ("rds.amazonaws.com", "AuthorizeDBSecurityGroupIngress"),
        ("rds.amazonaws.com", "CreateDBSecurityGroup"),
        ("s3.amazonaws.com", "CreateBucket"),
        ("iam.amazonaws.com", "CreateUser"),
        ("iam.amazonaws.com", "AddUserToGroup"),
        ("cloudtrail.amazonaws.com", "DeleteTrail"),
        ("cloudtrail.amazonaws.com", "UpdateTrail"),
        ("cloudtrail.amazonaws.com", "PutEventSelectors"),
    ];
    for (source, name) in asked {
        let extra = if name == "ConsoleLogin" {
            serde_json::json!({"responseElements": {"ConsoleLogin": "Success"}, "additionalEventData": {"MFAUsed": "Yes"}})
        } else {
            none.clone()
        };
        assert!(
            !hits(&set, &event(source, name, extra)).is_empty(),
            "nothing fires on {name}"
        );
    }
    let level_of = |json: &str, id: &str| hits(&set, json).into_iter().find(|(r, _)| r == id).map(|(_, l)| l);
    use trailhound_finding::Level::*;
    // StopLogging is critical: we want to see zero.
    assert_eq!(
        level_of(
            &event("cloudtrail.amazonaws.com", "StopLogging", none.clone()),
            "aws-cloudtrail-stop-logging"
        ),
        Some(Critical)
    );
    // Ingress opened to the world ranks above any ingress change, in both request forms.
    let world = serde_json::json!({"requestParameters": {"groupId": "sg-1", "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipv6Ranges": {"items": [{"cidrIpv6": "::/0"}]}}]}}});
    let levels: Vec<_> = hits(
        &set,
        &event("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", world),
    )
    .into_iter()
    .map(|(_, l)| l)
    .collect();
    assert!(levels.contains(&High), "{levels:?}");
    let private = serde_json::json!({"requestParameters": {"groupId": "sg-1", "ipPermissions": {"items": [{"ipRanges": {"items": [{"cidrIp": "10.0.0.0/8"}]}}]}}});
    let levels: Vec<_> = hits(
        &set,
        &event("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", private),
    )
    .into_iter()
    .map(|(_, l)| l)
    .collect();
    assert!(levels.iter().all(|l| *l < High), "{levels:?}");
    // Console logins: listed; without MFA higher; root higher still.
    let login = |extra: serde_json::Value| hits(&set, &event("signin.amazonaws.com", "ConsoleLogin", extra));
    let with_mfa = login(
        serde_json::json!({"responseElements": {"ConsoleLogin": "Success"}, "additionalEventData": {"MFAUsed": "Yes"}}),
    );
    assert!(with_mfa.iter().all(|(_, l)| *l == Informational), "{with_mfa:?}");
    let without = login(
        serde_json::json!({"responseElements": {"ConsoleLogin": "Success"}, "additionalEventData": {"MFAUsed": "No"}}),
    );
    assert!(without.iter().any(|(_, l)| *l >= High), "{without:?}");
    let root = login(
        serde_json::json!({"userIdentity": {"type": "Root", "arn": "arn:aws:iam::111122223333:root", "userName": null, "accessKeyId": null}, "responseElements": {"ConsoleLogin": "Success"}, "additionalEventData": {"MFAUsed": "Yes"}}),
    );
    assert!(root.iter().any(|(_, l)| *l == Critical), "{root:?}");
    // Any root activity.
    let root_call = serde_json::json!({"userIdentity": {"type": "Root", "arn": "arn:aws:iam::111122223333:root"}});
    assert!(!hits(&set, &event("ec2.amazonaws.com", "DescribeInstances", root_call)).is_empty());
}

#[test]
fn every_stratus_technique_is_caught() {
    // User-agent rules fire on every Stratus event (its user agent names the tool), so they are
    // left out: each technique must be caught by a rule about the behaviour itself.
    let rules: Vec<Rule> = pack()
        .into_iter()
        .filter(|r| !r.id.starts_with("aws-useragent-"))
        .collect();
    let (set, _) = RuleSet::new(rules);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/stratus");
    let mut caught: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for path in files.iter().filter(|p| p.extension().is_some_and(|e| e == "json")) {
        let technique = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let text = std::fs::read_to_string(path).expect("read");
        let mut evaluator = Evaluator::new(&set, false);
        trailhound_event::for_each_record(&text, &mut |slot| {
            let record = slot.record.expect("valid record");
            evaluator.observe(&record, "stratus");
        })
        .expect("parses");
        let mut ids: Vec<String> = evaluator.finish().findings.into_iter().map(|f| f.rule_id).collect();
        ids.sort();
        ids.dedup();
        caught.insert(technique, ids);
    }
    assert_eq!(caught.len(), 37, "all 37 technique files were read");
    let missed: Vec<&String> = caught
        .iter()
        .filter(|(_, ids)| ids.is_empty())
        .map(|(t, _)| t)
        .collect();
    assert!(missed.is_empty(), "techniques no rule catches: {missed:?}");
}

/// `rules/considered/`, the per-service record of the events weighed for the pack, stays true:
/// every rule a decision names is in the pack, and the index lists every file with its number
/// of decisions.
#[test]
fn considered_events_name_rules_of_the_pack() {
    let names: std::collections::BTreeSet<String> = pack().into_iter().map(|r| r.id).collect();
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules/considered");
    let index = std::fs::read_to_string(folder.join("README.md")).expect("considered/README.md");
    let mut failures = Vec::new();
    let mut files = 0;
    for entry in std::fs::read_dir(&folder).expect("rules/considered") {
        let path = entry.expect("entry").path();
        let file = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if file == "README.md" || !file.ends_with(".md") {
            continue;
        }
        files += 1;
        let text = std::fs::read_to_string(&path).expect("considered file");
        let mut decisions = 0;
        // The decision table is the one headed `| Event |` or `| Pattern |`; others (the data
        // events a rule needs, in s3.md) are not decisions.
        let mut in_decisions = false;
        for line in text.lines() {
            if !line.starts_with('|') {
                in_decisions = false;
                continue;
            }
            let cells: Vec<&str> = line.split(" | ").collect();
            if matches!(cells.first(), Some(&"| Event" | &"| Pattern")) {
                in_decisions = true;
                continue;
            }
            let Some(decision) = cells.last() else { continue };
            if !in_decisions || line.starts_with("|-") {
                continue;
            }
            decisions += 1;
            let Some(named) = decision.strip_prefix("rule: ").or(decision.strip_prefix("rules: ")) else {
                continue;
            };
            for word in named.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
                if word.starts_with("aws-") && !names.contains(word) {
                    failures.push(format!("{file}: {word} is not a rule of the pack"));
                }
            }
        }
        let row = format!("| [`{file}`]({file}) |");
        match index.lines().find(|l| l.starts_with(&row)) {
            None => failures.push(format!("README.md does not list {file}")),
            Some(l) if !l.ends_with(&format!("| {decisions} |")) => {
                failures.push(format!("README.md: {file} has {decisions} decisions, not {l:?}"))
            }
            Some(_) => {}
        }
    }
    assert!(files >= 50, "only {files} files in rules/considered");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
