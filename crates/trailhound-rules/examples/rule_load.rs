//! Measures what loading hostile or large rule files costs: `cargo run --release -p
//! trailhound-rules --example rule_load -- MODE [N]`.
//!
//! Modes: `many N` (N small rules in one file), `builtin` (the built-in pack), `glob N` (a
//! `1 of a*a*...b` condition with N stars). Prints the time taken and the peak RSS (Linux).

use std::time::Instant;

use trailhound_rules::{RuleFile, RuleSet, builtin_rules, parse_rules};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("many");
    let n: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(3000);
    let start = Instant::now();
    let summary = match mode {
        "many" => many(n),
        "builtin" => {
            let (rules, errors) = builtin_rules();
            let (set, _) = RuleSet::new(rules);
            format!("{} rules, {} errors", set.len(), errors.len())
        }
        "glob" => glob(n),
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
        "title: G\nname: g\nlogsource: {{product: aws}}\ndetection:\n  {}:\n    eventName: X\n  condition: 1 of {}b\n",
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
