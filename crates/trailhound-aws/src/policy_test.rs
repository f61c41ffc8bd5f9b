//! The shipped policy (`deploy/iam-policy.json`) allows every AWS call trailhound makes for
//! hunting and inventory, and nothing that writes; the Athena source's calls are in a policy of
//! their own (`deploy/iam-policy-athena.json`), whose only writes are the documented ones
//! (starting and stopping queries, Athena writing their results, creating the trail table),
//! each on a named resource.
//!
//! The test reads every source file that uses the SDK (this crate, the remote sources, the
//! inventory collectors, alert delivery), finds each SDK call (a `.send()` chain whose
//! receiver is a service client: `aws.iam()`, `self.ec2(..)`, a variable bound to one, or a
//! field typed `aws_sdk_s3::Client`), derives the IAM action from the client and the method
//! (`iam` + `list_mfa_devices` -> `iam:ListMFADevices`, compared case-insensitively as IAM
//! does), and checks it against the policy. A call whose client it cannot tell fails the test,
//! so a new call cannot slip past it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::iam_action;

/// Services whose calls deliver alerts: they run under the alerting role (the Lambda's), never
/// under the read-only policy, and must not be in it.
const ALERT_SERVICES: [&str; 4] = ["sns", "ssm", "secretsmanager", "securityhub"];

/// The one alert action the policy file carries, in a statement of its own (`--alert
/// securityhub` from a laptop or CI runs under this policy): (statement id, action).
const ALERT_STATEMENT: (&str, &str) = (
    "OnlyForAlertSecurityHubImportFindings",
    "securityhub:BatchImportFindings",
);

/// Verbs of IAM actions that change something.
const WRITE_VERBS: [&str; 25] = [
    "Create",
    "Delete",
    "Put",
    "Update",
    "Attach",
    "Detach",
    "Set",
    "Start",
    "Stop",
    "Modify",
    "Authorize",
    "Revoke",
    "Run",
    "Terminate",
    "Add",
    "Remove",
    "Tag",
    "Untag",
    "Enable",
    "Disable",
    "Associate",
    "Disassociate",
    "Replace",
    "Reset",
    "Restore",
];

/// The service whose calls are in the Athena policy and nowhere else.
const ATHENA: &str = "athena";

/// Writes the Athena policy may hold, each on its named resources only: running queries in the
/// workgroup (and stopping them on error or Ctrl-C), Athena writing their results to the
/// results location in the caller's name, and creating the trail table in the catalog
/// (`athena table --create`, whose statement Athena runs in the caller's name).
const ATHENA_WRITES: [(&str, &str); 4] = [
    ("athena:StartQueryExecution", "arn:aws:athena:"),
    ("athena:StopQueryExecution", "arn:aws:athena:"),
    ("s3:PutObject", "arn:aws:s3:::"),
    ("glue:CreateTable", "arn:aws:glue:"),
];

/// What Athena reads in the caller's name while running a query: the table's definition in
/// the Glue catalog, the trail bucket, and its own results (no trailhound code calls them).
const ATHENA_ON_BEHALF: [&str; 5] = [
    "glue:GetDatabase",
    "glue:GetTable",
    "s3:GetObject",
    "s3:ListBucket",
    "s3:GetBucketLocation",
];

/// Allowed although not called through a client: the SDK's credential provider assumes
/// `--role-arn` with it, and only the identity that runs trailhound needs it.
const ASSUME_ROLE: &str = "sts:AssumeRole";

/// Every folder whose code calls the SDK, from this crate's folder.
/// (The Lambda's own state writes run under its role in `deploy/template.yaml`, not this policy.)
const SDK_SOURCES: [&str; 4] = [
    "src",
    "../trailhound-source/src/aws",
    "../trailhound-inventory/src/collect",
    "../trailhound-alert/src",
];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("source folder readable")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("policy_test.rs") {
            out.push(path);
        }
    }
}

/// The IAM service prefix of a client: its constructor on `Aws` or its crate name.
fn client_service(name: &str) -> Option<&'static str> {
    Some(match name {
        "iam" => "iam",
        "ec2" => "ec2",
        "s3" => "s3",
        "cloudtrail" => "cloudtrail",
        "sts" => "sts",
        "sns" => "sns",
        "ssm" => "ssm",
        "secrets_manager" | "secretsmanager" => "secretsmanager",
        "securityhub" => "securityhub",
        "athena" => "athena",
        _ => return None,
    })
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Source text without whole-line comments (doc examples must not count as calls).
fn code_of(text: &str) -> String {
    text.lines()
        .map(|l| if l.trim_start().starts_with("//") { "" } else { l })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Names that hold a client in this file: `let NAME = ..<client constructor>..;` and
/// `NAME: [&]aws_sdk_X::Client`.
fn bindings(code: &str) -> BTreeMap<String, BTreeSet<&'static str>> {
    let mut out: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    for (at, _) in code.match_indices("let ") {
        let rest = &code[at + 4..];
        let name: String = rest
            .trim_start_matches("mut ")
            .bytes()
            .take_while(|b| is_ident(*b))
            .map(char::from)
            .collect();
        let Some(rhs) = rest
            .split_once('=')
            .map(|(_, r)| r.split(';').next().unwrap_or_default())
        else {
            continue;
        };
        for client in [
            "iam",
            "ec2",
            "s3",
            "cloudtrail",
            "sts",
            "sns",
            "ssm",
            "secrets_manager",
            "securityhub",
            "athena",
        ] {
            if rhs.contains(&format!(".{client}(")) {
                out.entry(name.clone()).or_default().extend(client_service(client));
            }
        }
    }
    for (at, _) in code.match_indices("::Client") {
        let before = &code[..at];
        let Some(pos) = before.rfind("aws_sdk_") else { continue };
        let Some(service) = client_service(&before[pos + "aws_sdk_".len()..]) else {
            continue;
        };
        // `NAME: &aws_sdk_X::Client` or `NAME: aws_sdk_X::Client`.
        let head = before[..pos].trim_end();
        let head = head.trim_end_matches('&').trim_end();
        let Some(head) = head.strip_suffix(':') else { continue };
        let name: String = head
            .trim_end()
            .bytes()
            .rev()
            .take_while(|b| is_ident(*b))
            .map(char::from)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if !name.is_empty() {
            out.entry(name).or_default().insert(service);
        }
    }
    out
}

/// One step of a method chain, read backwards from `.send()`.
#[derive(Debug, PartialEq)]
enum Step {
    Call(String),
    Name(String),
}

/// The position of the `(` matching the `)` at `close`, skipping string literals.
fn open_of(code: &[u8], close: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = close + 1;
    while i > 0 {
        i -= 1;
        match code[i] {
            b')' => depth += 1,
            b'(' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            b'"' => {
                // Back to the opening quote.
                i = code[..i].iter().rposition(|b| *b == b'"')?;
            }
            _ => {}
        }
    }
    None
}

/// The chain before the `.` at `dot`, in source order.
fn chain(code: &[u8], dot: usize) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut end = dot;
    loop {
        let mut j = end;
        while j > 0 && (code[j - 1].is_ascii_whitespace() || code[j - 1] == b'?') {
            j -= 1;
        }
        if j == 0 {
            break;
        }
        let (name_end, is_call) = if code[j - 1] == b')' {
            match open_of(code, j - 1) {
                Some(open) => (open, true),
                None => break,
            }
        } else {
            (j, false)
        };
        let mut start = name_end;
        while start > 0 && is_ident(code[start - 1]) {
            start -= 1;
        }
        let name = String::from_utf8_lossy(&code[start..name_end]).into_owned();
        if name.is_empty() {
            break;
        }
        steps.push(if is_call { Step::Call(name) } else { Step::Name(name) });
        let mut k = start;
        while k > 0 && code[k - 1].is_ascii_whitespace() {
            k -= 1;
        }
        if k > 0 && code[k - 1] == b'.' {
            end = k - 1;
        } else {
            break;
        }
    }
    steps.reverse();
    steps
}

fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map_or(String::new(), |c| c.to_ascii_uppercase().to_string() + chars.as_str())
        })
        .collect()
}

/// The IAM action of calling `method` on a `service` client, by the rule the issue states.
fn action_of(service: &str, method: &str) -> String {
    let action = match (service, method) {
        ("s3", "list_objects_v2") => "ListBucket".to_string(),
        ("s3", "get_bucket_policy_status") => "GetBucketPolicyStatus".to_string(),
        ("s3", "get_public_access_block") => "GetBucketPublicAccessBlock".to_string(),
        ("s3", "list_buckets") => "ListAllMyBuckets".to_string(),
        _ => pascal(method),
    };
    format!("{service}:{action}")
}

/// Every SDK call in the crate: (action, where), and the calls whose client is unknown.
fn calls() -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let mut files = Vec::new();
    for dir in SDK_SOURCES {
        sources(&crate_dir().join(dir), &mut files);
    }
    assert!(files.len() >= 12, "found the SDK-using sources: {files:?}");
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut unknown = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("source readable");
        let code = code_of(&text);
        let names = bindings(&code);
        let bytes = code.as_bytes();
        let file = path.strip_prefix(crate_dir()).unwrap_or(&path).display().to_string();
        for (at, _) in code.match_indices(".send()") {
            let line = code[..at].matches('\n').count() + 1;
            let place = format!("{file}:{line}");
            let steps = chain(bytes, at);
            let client = steps.iter().position(|step| match step {
                Step::Call(name) => client_service(name).is_some(),
                Step::Name(name) => names.contains_key(name),
            });
            let (Some(client), Some(Step::Call(method))) = (client, client.and_then(|c| steps.get(c + 1))) else {
                unknown.push(format!("{place}: {steps:?}"));
                continue;
            };
            let services: Vec<&str> = match &steps[client] {
                Step::Call(name) => client_service(name).into_iter().collect(),
                Step::Name(name) => names[name].iter().copied().collect(),
            };
            if services.len() != 1 {
                unknown.push(format!("{place}: `{method}` on a name bound to {services:?}"));
                continue;
            }
            let action = action_of(services[0], method);
            // The collectors name their calls for error messages; both names must agree.
            let operation = pascal(method);
            let named = iam_action(services[0], &operation);
            assert!(
                named.eq_ignore_ascii_case(&action),
                "{place}: iam_action says {named}, the rule says {action}"
            );
            found.entry(action).or_default().push(place);
        }
    }
    (found, unknown)
}

fn policy(name: &str) -> Value {
    let path = crate_dir().join("../../deploy").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A statement's actions or resources: one text or a list.
fn texts(value: &Value) -> Vec<String> {
    match value {
        Value::String(one) => vec![one.clone()],
        Value::Array(list) => list.iter().map(|a| a.as_str().expect("text").to_string()).collect(),
        other => panic!("must be text or a list: {other}"),
    }
}

fn is_write(action: &str) -> bool {
    let verb = action.split_once(':').map_or(action, |(_, v)| v);
    WRITE_VERBS.iter().any(|write| verb.starts_with(write))
}

fn policy_actions() -> Vec<String> {
    let policy = policy("iam-policy.json");
    let mut actions = Vec::new();
    for statement in policy["Statement"].as_array().expect("Statement is an array") {
        assert_eq!(statement["Effect"], "Allow", "{statement}");
        if statement["Sid"] == ALERT_STATEMENT.0 {
            assert_eq!(
                statement["Action"], ALERT_STATEMENT.1,
                "the alert statement holds its one action"
            );
            continue;
        }
        match &statement["Action"] {
            Value::String(one) => actions.push(one.clone()),
            Value::Array(list) => actions.extend(list.iter().map(|a| a.as_str().expect("action text").to_string())),
            other => panic!("Action must be text or a list: {other}"),
        }
    }
    actions
}

#[test]
fn every_call_is_in_the_policy_and_the_policy_only_reads() {
    let (found, unknown) = calls();
    assert!(
        unknown.is_empty(),
        "calls on a client the test cannot tell: {unknown:#?}"
    );
    let per_service = |service: &str| found.keys().filter(|a| a.starts_with(&format!("{service}:"))).count();
    for (service, least) in [("iam", 15), ("ec2", 11), ("s3", 7), ("cloudtrail", 4), ("sts", 1)] {
        assert!(
            per_service(service) >= least,
            "only {} {service} calls found (expected at least {least}): {:?}",
            per_service(service),
            found.keys()
        );
    }
    for expected in [
        "iam:ListMfaDevices",
        "ec2:DescribeVpcs",
        "s3:ListBucket",
        "s3:GetObject",
        "s3:GetBucketPublicAccessBlock",
        "cloudtrail:LookupEvents",
        "sts:GetCallerIdentity",
    ] {
        assert!(
            found.contains_key(expected),
            "{expected} not found in {:?}",
            found.keys()
        );
    }

    let actions = policy_actions();
    let allowed: BTreeSet<String> = actions.iter().map(|a| a.to_ascii_lowercase()).collect();
    assert_eq!(allowed.len(), actions.len(), "an action is listed twice: {actions:?}");
    let mut used = BTreeSet::new();
    for (action, places) in &found {
        let service = action.split(':').next().unwrap_or_default();
        let key = action.to_ascii_lowercase();
        if service == ATHENA {
            assert!(
                !allowed.contains(&key),
                "{action} is the Athena source's: it belongs in deploy/iam-policy-athena.json only"
            );
            continue;
        }
        if ALERT_SERVICES.contains(&service) {
            assert!(
                !allowed.contains(&key),
                "{action} delivers alerts: it has no place in the read-only policy"
            );
            continue;
        }
        assert!(
            allowed.contains(&key),
            "{action} (called at {places:?}) is not in deploy/iam-policy.json"
        );
        used.insert(key);
    }
    for action in &actions {
        assert!(
            !action.contains('*'),
            "{action}: no wildcards in a least-privilege policy"
        );
        if action == ASSUME_ROLE {
            continue;
        }
        let verb = action.split_once(':').map_or(action.as_str(), |(_, v)| v);
        for write in WRITE_VERBS {
            assert!(!verb.starts_with(write), "{action} writes ({write}...)");
        }
        assert!(
            used.contains(&action.to_ascii_lowercase()),
            "{action} is in the policy but nothing calls it: least privilege means removing it"
        );
    }
}

#[test]
fn the_athena_policy_holds_the_athena_calls_and_only_its_documented_writes() {
    let (found, unknown) = calls();
    assert!(unknown.is_empty(), "{unknown:#?}");
    let called: BTreeSet<String> = found
        .keys()
        .filter(|a| a.starts_with(&format!("{ATHENA}:")))
        .map(|a| a.to_ascii_lowercase())
        .collect();
    for expected in [
        "athena:startqueryexecution",
        "athena:getqueryexecution",
        "athena:getqueryresults",
        "athena:stopqueryexecution",
    ] {
        assert!(called.contains(expected), "{expected} not found in {called:?}");
    }
    let mut allowed = BTreeSet::new();
    for statement in policy("iam-policy-athena.json")["Statement"]
        .as_array()
        .expect("Statement is an array")
    {
        assert_eq!(statement["Effect"], "Allow", "{statement}");
        let resources = texts(&statement["Resource"]);
        assert!(
            resources.iter().all(|r| r != "*"),
            "every statement of the Athena policy names its resources: {statement}"
        );
        for action in texts(&statement["Action"]) {
            assert!(!action.contains('*'), "{action}: no wildcards");
            let key = action.to_ascii_lowercase();
            allowed.insert(key.clone());
            if is_write(&action) {
                let Some((_, prefix)) = ATHENA_WRITES
                    .iter()
                    .find(|(write, _)| write.eq_ignore_ascii_case(&action))
                else {
                    panic!("{action} writes and is not one of the Athena source's documented writes");
                };
                assert!(
                    resources.iter().all(|r| r.starts_with(prefix)),
                    "{action} only on {prefix}... resources: {statement}"
                );
            } else {
                assert!(
                    called.contains(&key) || ATHENA_ON_BEHALF.iter().any(|a| a.eq_ignore_ascii_case(&action)),
                    "{action} is in the Athena policy but neither trailhound nor Athena on its behalf needs it"
                );
            }
        }
    }
    for action in &called {
        assert!(
            allowed.contains(action),
            "{action} is not in deploy/iam-policy-athena.json"
        );
    }
    assert!(is_write("athena:StartQueryExecution") && is_write("s3:PutObject") && is_write("glue:CreateTable"));
    assert!(!is_write("athena:GetQueryResults"));
}

#[test]
fn the_scanner_reads_chains_and_bindings() {
    let code = "let iam = scope.aws.iam();\nlet x = all_pages!(iam.list_users().into_paginator().send());\n\
                let y = self.client.list_objects_v2().bucket(format!(\"a(\")).send().await;\n\
                struct T { client: aws_sdk_s3::Client }\nfn f(c: &aws_sdk_cloudtrail::Client) {}";
    let names = bindings(code);
    assert_eq!(names["iam"], BTreeSet::from(["iam"]));
    assert_eq!(names["client"], BTreeSet::from(["s3"]));
    assert_eq!(names["c"], BTreeSet::from(["cloudtrail"]));
    let first = code.find(".send()").expect("a send");
    assert_eq!(
        chain(code.as_bytes(), first),
        [
            Step::Name("iam".into()),
            Step::Call("list_users".into()),
            Step::Call("into_paginator".into())
        ]
    );
    let second = code.rfind(".send()").expect("another send");
    assert_eq!(
        chain(code.as_bytes(), second),
        [
            Step::Name("self".into()),
            Step::Name("client".into()),
            Step::Call("list_objects_v2".into()),
            Step::Call("bucket".into())
        ]
    );
    assert_eq!(action_of("iam", "list_mfa_devices"), "iam:ListMfaDevices");
    assert_eq!(action_of("s3", "list_buckets"), "s3:ListAllMyBuckets");
}
