//! Reading rule files: YAML documents to compiled [`Rule`]s, with errors that name the file, the
//! rule and the line.

use std::path::Path;

use serde::Deserialize;
use serde_yaml_ng::Value as Yaml;

use crate::correlation::Correlation;
use crate::detection::{Compiled, compile_body};
use crate::error::{CompileError, RuleError, strip_location};
use crate::rule::{Body, Rule};
use crate::testcase;
use trailhound_finding::Level;

/// A rule file's text, and its test file's when it has one.
#[derive(Debug, Clone)]
pub struct RuleFile {
    pub path: String,
    pub text: String,
    pub tests: Option<(String, String)>,
}

/// The suffix of test files that sit beside rule files.
pub const TESTS_SUFFIX: &str = ".tests.yml";

/// Loads every rule in `path`, a rule file or a folder (searched recursively for `.yml`/`.yaml`,
/// test files excluded). Rules that fail are reported; the others still load.
pub fn load_path(path: &Path) -> (Vec<Rule>, Vec<RuleError>) {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    let mut files: Vec<_> = if path.is_dir() {
        walkdir::WalkDir::new(path)
            .follow_links(true)
            .into_iter()
            .filter_map(|entry| match entry {
                Ok(entry) => Some(entry.into_path()),
                Err(err) => {
                    errors.push(RuleError::new(&path.display().to_string(), err.to_string()));
                    None
                }
            })
            .filter(|p| p.is_file() && is_rule_file(p))
            .collect()
    } else {
        vec![path.to_path_buf()]
    };
    files.sort();
    for file in files {
        let display = file.display().to_string();
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(err) => {
                errors.push(RuleError::new(&display, format!("cannot read: {err}")));
                continue;
            }
        };
        let tests_path = tests_path_for(&display);
        let tests = std::fs::read_to_string(&tests_path).ok().map(|t| (tests_path, t));
        let (found, failed) = parse_rules(&RuleFile {
            path: display,
            text,
            tests,
        });
        rules.extend(found);
        errors.extend(failed);
    }
    (rules, errors)
}

fn is_rule_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    (name.ends_with(".yml") || name.ends_with(".yaml")) && !name.ends_with(TESTS_SUFFIX)
}

/// `rules/x/foo.yml` -> `rules/x/foo.tests.yml`.
pub(crate) fn tests_path_for(rule_path: &str) -> String {
    let stem = rule_path
        .strip_suffix(".yaml")
        .or_else(|| rule_path.strip_suffix(".yml"))
        .unwrap_or(rule_path);
    format!("{stem}{TESTS_SUFFIX}")
}

/// Parses and compiles every YAML document of one rule file.
pub fn parse_rules(file: &RuleFile) -> (Vec<Rule>, Vec<RuleError>) {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(&file.text) {
        let yaml = match Yaml::deserialize(document) {
            Ok(yaml) => yaml,
            Err(err) => {
                let mut error = RuleError::new(
                    &file.path,
                    format!("invalid YAML: {}", strip_location(&err.to_string())),
                );
                error.line = err.location().map(|l| l.line());
                errors.push(error);
                // The YAML stream cannot resume after a syntax error.
                break;
            }
        };
        if yaml.is_null() {
            continue;
        }
        match compile(file, &yaml) {
            Ok(mut rule) => {
                if let Some((tests_path, tests_text)) = &file.tests {
                    match testcase::parse(tests_text) {
                        Ok(cases) => rule.tests = cases,
                        Err(err) => errors.push(RuleError {
                            rule: Some(rule.id.clone()),
                            ..RuleError::new(tests_path, err)
                        }),
                    }
                }
                rules.push(rule);
            }
            Err((rule, err)) => errors.push(RuleError {
                file: file.path.clone(),
                line: err.hint.as_deref().and_then(|hint| find_line(&file.text, hint)),
                rule,
                message: err.message,
            }),
        }
    }
    (rules, errors)
}

fn compile(file: &RuleFile, yaml: &Yaml) -> Result<Rule, (Option<String>, CompileError)> {
    let text = |key: &str| yaml.get(key).and_then(Yaml::as_str).map(str::to_string);
    let list = |key: &str| -> Vec<String> {
        match yaml.get(key) {
            Some(Yaml::Sequence(items)) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
            Some(Yaml::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    };
    let stem = Path::new(&file.path)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("rule")
        .to_string();
    let id = text("name").or_else(|| text("id")).unwrap_or(stem);
    let fail = |err: CompileError| (Some(id.clone()), err);
    if !yaml.is_mapping() {
        return Err((None, CompileError::new("a rule must be a YAML map")));
    }
    let title = text("title").ok_or_else(|| fail(CompileError::new("rule has no title")))?;
    let level = match yaml.get("level") {
        None => Level::Medium,
        Some(value) => value
            .as_str()
            .ok_or_else(|| "level must be a string".to_string())
            .and_then(str::parse)
            .map_err(|message| fail(CompileError::at("level", message)))?,
    };
    let body = if let Some(block) = yaml.get("correlation") {
        Body::Correlation(Correlation::parse(block).map_err(fail)?)
    } else {
        check_logsource(yaml.get("logsource")).map_err(fail)?;
        let detection = yaml
            .get("detection")
            .ok_or_else(|| fail(CompileError::new("rule has no detection")))?;
        match compile_body(detection).map_err(fail)? {
            Compiled::Detection(detection) => Body::Detection(detection),
            Compiled::Aggregation { parts, correlation } => Body::Aggregation { parts, correlation },
        }
    };
    Ok(Rule {
        uuid: text("id"),
        id: id.clone(),
        title,
        level,
        status: text("status"),
        description: text("description"),
        tags: list("tags").into_iter().map(|t| t.to_lowercase()).collect(),
        falsepositives: list("falsepositives"),
        references: list("references"),
        author: text("author"),
        file: file.path.clone(),
        text: file.text.clone(),
        tests: Vec::new(),
        body,
    })
}

fn check_logsource(logsource: Option<&Yaml>) -> Result<(), CompileError> {
    let Some(logsource) = logsource else {
        return Err(CompileError::new(
            "rule has no logsource (expected product: aws, service: cloudtrail)",
        ));
    };
    let field = |key: &str| logsource.get(key).and_then(Yaml::as_str).map(str::to_ascii_lowercase);
    match (field("product"), field("service")) {
        (Some(p), _) if p != "aws" => Err(CompileError::at(
            "product",
            format!("logsource product is {p:?}; trailhound reads AWS CloudTrail (product: aws)"),
        )),
        (_, Some(s)) if s != "cloudtrail" => Err(CompileError::at(
            "service",
            format!("logsource service is {s:?}; trailhound reads CloudTrail (service: cloudtrail)"),
        )),
        (None, None) => Err(CompileError::at(
            "logsource",
            "logsource names neither product nor service",
        )),
        _ => Ok(()),
    }
}

/// The first line that holds `hint` as a key, else anywhere.
fn find_line(text: &str, hint: &str) -> Option<usize> {
    let as_key = |line: &str| {
        let line = line.trim_start().trim_start_matches("- ");
        line.strip_prefix(hint)
            .is_some_and(|rest| rest.starts_with(':') || rest.starts_with('|'))
            || line
                .strip_prefix(&format!("'{hint}'"))
                .is_some_and(|rest| rest.starts_with(':'))
    };
    text.lines()
        .position(as_key)
        .or_else(|| text.lines().position(|line| line.contains(hint)))
        .map(|index| index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (Vec<Rule>, Vec<RuleError>) {
        parse_rules(&RuleFile {
            path: "r.yml".into(),
            text: text.into(),
            tests: None,
        })
    }

    const GOOD: &str = "title: T\nname: aws-t\nid: 0e0e\nlogsource: {product: aws, service: cloudtrail}\nlevel: high\ntags: [attack.T1078.004, attack.persistence]\ndetection:\n  sel:\n    eventName: X\n  condition: sel\n";

    #[test]
    fn a_good_rule() {
        let (rules, errors) = load(GOOD);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(rules[0].id, "aws-t");
        assert_eq!(rules[0].uuid.as_deref(), Some("0e0e"));
        assert_eq!(rules[0].level, Level::High);
        assert_eq!(rules[0].techniques().collect::<Vec<_>>(), ["T1078.004"]);
    }

    #[test]
    fn errors_name_file_rule_and_line() {
        let (_, errors) = load(&GOOD.replace("eventName: X", "eventName|bogus: X"));
        assert_eq!(
            errors[0].to_string(),
            "r.yml:9 (rule aws-t): \"eventName|bogus\": unknown modifier \"bogus\""
        );
        let (_, errors) = load(&GOOD.replace("condition: sel", "condition: sel and other"));
        assert_eq!(errors[0].line, Some(10));
        assert!(errors[0].message.contains("\"other\""));
        let (_, errors) = load(&GOOD.replace("level: high", "level: severe"));
        assert_eq!(errors[0].line, Some(5));
        let (_, errors) = load("title: [unclosed\n");
        assert!(errors[0].message.starts_with("invalid YAML"), "{}", errors[0]);
        assert_eq!(errors[0].line, Some(2));
        let (_, errors) = load(&GOOD.replace("product: aws", "product: windows"));
        assert!(errors[0].message.contains("windows"));
    }

    #[test]
    fn several_documents() {
        let (rules, errors) = load(&format!("{GOOD}---\n{}", GOOD.replace("aws-t", "aws-u")));
        assert!(errors.is_empty());
        assert_eq!(rules.len(), 2);
    }

    proptest::proptest! {
        #[test]
        fn hostile_rule_text_never_panics(text in "[a-z:|\\-\\[\\]{} \\n*?'\"]{0,200}") {
            let _ = load(&text);
            let _ = load(&format!("{GOOD}{text}"));
        }
    }
}
