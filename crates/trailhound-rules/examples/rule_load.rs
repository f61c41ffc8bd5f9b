//! Measures what loading hostile or large rule files costs: `cargo run --release -p
//! trailhound-rules --example rule_load -- MODE [N]`.
//!
//! Modes: `many N` (N small rules in one file), `errors N` (N rules with an error each, in one
//! file), `builtin` (the built-in pack), `glob N` (a
//! `1 of a*a*...b` condition with N stars), `correlation N MIB` (N matches of a correlation
//! grouped by a field unique to each, under a bound of MIB mebibytes; 0: no bound). Prints the
//! time taken and the peak RSS (Linux).

use std::time::Instant;

use trailhound_rules::{Evaluator, RuleFile, RuleSet, builtin_rules, parse_rules};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("many");
    let n: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(3000);
    let start = Instant::now();
    let summary = match mode {
        "many" => many(n),
        "errors" => {
            let text = many_rules_text(n).replace("level: low", "level: severe");
            let (_, errors) = parse_rules(&RuleFile {
                path: "errors.yml".into(),
                text,
                tests: None,
            });
            format!(
                "{} errors, the last at line {:?}",
                errors.len(),
                errors.last().and_then(|e| e.line)
            )
        }
        "builtin" => {
            let (rules, errors) = builtin_rules();
            let (set, _) = RuleSet::new(rules);
            format!("{} rules, {} errors", set.len(), errors.len())
        }
        "glob" => glob(n),
        "correlation" => correlation(n, args.get(2).and_then(|m| m.parse().ok()).unwrap_or(0)),
        other => format!("unknown mode {other}"),
    };
    println!(
        "{mode} {n}: {summary}; {:.3} s; peak RSS {}",
        start.elapsed().as_secs_f64(),
        peak_rss()
    );
}

/// `n` small rules in one file.
fn many(n: usize) -> String {
    let text = many_rules_text(n);
    let size = text.len();
    let (rules, errors) = parse_rules(&RuleFile {
        path: "many.yml".into(),
        text,
        tests: None,
    });
    let held: usize = rules.iter().map(|r| r.text.len()).sum();
    format!(
        "file {size} bytes, {} rules, {} errors, rule text held {held} bytes",
        rules.len(),
        errors.len()
    )
}

/// The text of `n` small rules in one file.
pub fn many_rules_text(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "title: Rule {i}\nname: rule-{i}\nlogsource: {{product: aws, service: cloudtrail}}\nlevel: low\ndetection:\n  sel:\n    eventName: Event{i}\n  condition: sel\n"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// One rule whose condition is `1 of a*a*...*b` with `stars` stars, against a selection named
/// with many `a`s.
fn glob(stars: usize) -> String {
    let text = format!(
        "title: G\nname: g\nlogsource: {{product: aws}}\ndetection:\n  {}:\n    eventName: X\n  {}b:\n    eventName: Y\n  condition: 1 of {}b\n",
        "a".repeat(100),
        "a".repeat(100),
        "a*".repeat(stars)
    );
    let (rules, errors) = parse_rules(&RuleFile {
        path: "glob.yml".into(),
        text,
        tests: None,
    });
    format!("{} rules, {} errors", rules.len(), errors.len())
}

/// `n` failed logins, each from its own address, counted per address.
fn correlation(n: usize, mib: usize) -> String {
    let text = "title: failed login\nname: failed-login\nlogsource: {product: aws}\ndetection:\n  sel:\n    eventName: ConsoleLogin\n    errorMessage: Failed authentication\n  condition: sel\n---\ntitle: burst\nname: burst\ncorrelation:\n  type: event_count\n  rules: [failed-login]\n  group-by: [sourceIPAddress]\n  timespan: 10m\n  condition: {gte: 3}\n";
    let (rules, _) = parse_rules(&RuleFile {
        path: "r.yml".into(),
        text: text.into(),
        tests: None,
    });
    let (set, _) = RuleSet::new(rules);
    set.set_correlation_memory(if mib == 0 { usize::MAX / 2 } else { mib << 20 });
    let mut evaluator = Evaluator::new(&set, false);
    let base = 1_709_294_400i64;
    for i in 0..n {
        let time = chrono::DateTime::from_timestamp(base + i as i64 / 100, 0)
            .unwrap_or_default()
            .to_rfc3339();
        let json = format!(
            r#"{{"eventTime":"{time}","eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com","eventID":"{i:08x}-0000-4000-8000-000000000000","awsRegion":"us-east-1","recipientAccountId":"111122223333","sourceIPAddress":"10.{}.{}.{}","errorMessage":"Failed authentication","userAgent":"Mozilla/5.0 agent {}","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/u{}"}}}}"#,
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255,
            i % 1000,
            i % 100,
        );
        if let Ok(record) = trailhound_event::Record::parse(&json) {
            evaluator.observe(&record, "AWSLogs/111122223333/CloudTrail/us-east-1/file.json.gz");
        }
    }
    let (held, bytes) = (evaluator.held(), evaluator.held_bytes());
    let used = set.correlation_budget().used();
    let before_finish = peak_rss();
    let evaluated = evaluator.finish();
    format!(
        "{held} matches held, estimated {:.1} MiB ({:.0} bytes a match), budget used {:.1} MiB, peak RSS before finishing {before_finish}, {} forgotten in {} groups",
        bytes as f64 / 1048576.0,
        bytes as f64 / held.max(1) as f64,
        used as f64 / 1048576.0,
        evaluated.dropped,
        evaluated.evicted_groups
    )
}

/// Peak resident set size, from /proc (Linux); "n/a" elsewhere.
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l[6..].trim().to_string())
        })
        .unwrap_or_else(|| "n/a".into())
}
