//! Reading rule files: YAML documents to compiled [`Rule`]s, with errors that name the file, the
//! rule and the line.

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;
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

/// How rules are read.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions<'a> {
    /// Values of the `%name%` placeholders that `expand` modifiers refer to; without them, a rule
    /// that uses `expand` is refused, as the Sigma specification asks.
    pub placeholders: Option<&'a Placeholders>,
    /// Whether the `.tests.yml` files beside rule files are read and parsed (for `rules test`,
    /// listings and coverage). A hunt leaves them: they are ten times the rules' own text, and
    /// parsing them was most of a hunt's start-up time and memory.
    pub tests: bool,
}

/// Placeholder values for the `expand` modifier: `name -> values`, read from a YAML map of
/// lists (`admins: [alice, bob]`).
#[derive(Debug, Clone, Default)]
pub struct Placeholders(BTreeMap<String, Vec<String>>);

/// At most this many values one `expand` entry may become (placeholders multiply).
const MAX_EXPANSION: usize = 10_000;

impl Placeholders {
    /// Reads a placeholder file: a YAML map whose values are strings or lists of strings.
    pub fn parse(text: &str) -> Result<Placeholders, String> {
        if let Some(line) = trailhound_event::flow_nesting_beyond(text, MAX_YAML_DEPTH) {
            return Err(format!("line {line}: nested deeper than {MAX_YAML_DEPTH} levels"));
        }
        let yaml: Yaml = serde_yaml_ng::from_str(text).map_err(|e| yaml_message(&e))?;
        let Yaml::Mapping(map) = yaml else {
            return Err("a placeholder file is a map of names to lists of values".to_string());
        };
        let mut out = BTreeMap::new();
        for (name, values) in map {
            let name = name
                .as_str()
                .ok_or_else(|| format!("placeholder name {name:?} is not a string"))?
                .trim_matches('%')
                .to_string();
            let scalar = |v: &Yaml| match v {
                Yaml::String(s) => Some(s.clone()),
                Yaml::Number(n) => Some(n.to_string()),
                Yaml::Bool(b) => Some(b.to_string()),
                _ => None,
            };
            let values: Vec<String> = match &values {
                Yaml::Sequence(items) => items
                    .iter()
                    .map(|i| scalar(i).ok_or_else(|| format!("placeholder {name:?}: values must be strings")))
                    .collect::<Result<_, _>>()?,
                other => vec![scalar(other).ok_or_else(|| format!("placeholder {name:?}: values must be strings"))?],
            };
            if values.is_empty() {
                return Err(format!("placeholder {name:?} has no values"));
            }
            out.insert(name, values);
        }
        Ok(Placeholders(out))
    }

    /// The values `text` stands for once every `%name%` in it is replaced (each combination).
    fn expand(&self, text: &str) -> Result<Vec<String>, String> {
        let mut results = vec![String::new()];
        let mut rest = text;
        while let Some(start) = rest.find('%') {
            let Some(len) = rest[start + 1..].find('%') else { break };
            let name = &rest[start + 1..start + 1 + len];
            let values = self
                .0
                .get(name)
                .ok_or_else(|| format!("placeholder %{name}% has no values (give them with --placeholders FILE)"))?;
            let literal = &rest[..start];
            let mut next = Vec::with_capacity(results.len() * values.len());
            for prefix in &results {
                for value in values {
                    next.push(format!("{prefix}{literal}{value}"));
                }
            }
            if next.len() > MAX_EXPANSION {
                return Err(format!("{text:?} expands to more than {MAX_EXPANSION} values"));
            }
            results = next;
            rest = &rest[start + 2 + len..];
        }
        for r in &mut results {
            r.push_str(rest);
        }
        Ok(results)
    }
}

/// The detection with every `field|expand` entry's placeholders replaced by their values (and
/// the `expand` modifier dropped). Placeholders are resolved when the rule loads; a rule whose
/// placeholders have no values is refused.
fn expand_placeholders(detection: &Yaml, placeholders: Option<&Placeholders>) -> Result<Yaml, CompileError> {
    let Yaml::Mapping(map) = detection else {
        return Ok(detection.clone());
    };
    let expand_map = |map: &serde_yaml_ng::Mapping| -> Result<serde_yaml_ng::Mapping, CompileError> {
        let mut out = serde_yaml_ng::Mapping::new();
        for (key, value) in map {
            let Some(spec) = key.as_str() else {
                out.insert(key.clone(), value.clone());
                continue;
            };
            let mut parts: Vec<&str> = spec.split('|').collect();
            let Some(at) = parts.iter().skip(1).position(|m| *m == "expand") else {
                out.insert(key.clone(), value.clone());
                continue;
            };
            parts.remove(at + 1);
            let Some(placeholders) = placeholders else {
                return Err(CompileError::at(
                    spec,
                    format!(
                        "{spec:?}: the expand modifier needs placeholder values (give them with --placeholders FILE)"
                    ),
                ));
            };
            let items: Vec<&Yaml> = match value {
                Yaml::Sequence(items) => items.iter().collect(),
                other => vec![other],
            };
            let mut values = Vec::new();
            for item in items {
                let Some(text) = item.as_str() else {
                    values.push(item.clone());
                    continue;
                };
                let expanded = placeholders
                    .expand(text)
                    .map_err(|message| CompileError::at(spec, format!("{spec:?}: {message}")))?;
                values.extend(expanded.into_iter().map(Yaml::String));
                if values.len() > MAX_EXPANSION {
                    return Err(CompileError::at(
                        spec,
                        format!("{spec:?}: more than {MAX_EXPANSION} values"),
                    ));
                }
            }
            out.insert(Yaml::String(parts.join("|")), Yaml::Sequence(values));
        }
        Ok(out)
    };
    let mut out = serde_yaml_ng::Mapping::new();
    for (name, selection) in map {
        let expanded = match selection {
            Yaml::Mapping(m) if name.as_str() != Some("condition") => Yaml::Mapping(expand_map(m)?),
            Yaml::Sequence(items) if name.as_str() != Some("condition") => Yaml::Sequence(
                items
                    .iter()
                    .map(|item| match item {
                        Yaml::Mapping(m) => expand_map(m).map(Yaml::Mapping),
                        other => Ok(other.clone()),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            other => other.clone(),
        };
        out.insert(name.clone(), expanded);
    }
    Ok(Yaml::Mapping(out))
}

/// The suffix of test files that sit beside rule files.
pub const TESTS_SUFFIX: &str = ".tests.yml";

/// Loads every rule in `path`, a rule file or a folder (searched recursively for `.yml`/`.yaml`,
/// test files excluded). Rules that fail are reported; the others still load.
pub fn load_path(path: &Path) -> (Vec<Rule>, Vec<RuleError>) {
    load_path_with(
        path,
        &LoadOptions {
            tests: true,
            ..LoadOptions::default()
        },
    )
}

/// [`load_path`] with options (placeholders for `expand`).
pub fn load_path_with(path: &Path, options: &LoadOptions) -> (Vec<Rule>, Vec<RuleError>) {
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
    // Read, parsed and compiled on every core; gathered in path order.
    let parsed: Vec<(Vec<Rule>, Vec<RuleError>)> = files
        .par_iter()
        .map(|file| {
            let display = file.display().to_string();
            let text = match std::fs::read_to_string(file) {
                Ok(text) => text,
                Err(err) => {
                    return (
                        Vec::new(),
                        vec![RuleError::new(&display, format!("cannot read: {err}"))],
                    );
                }
            };
            let tests = if options.tests {
                let tests_path = tests_path_for(&display);
                std::fs::read_to_string(&tests_path).ok().map(|t| (tests_path, t))
            } else {
                None
            };
            parse_rules_with(
                &RuleFile {
                    path: display,
                    text,
                    tests,
                },
                options,
            )
        })
        .collect();
    let (rules, more) = gather(parsed);
    errors.extend(more);
    (rules, errors)
}

/// The rules and errors of files parsed apart, in the files' order.
pub(crate) fn gather(parsed: Vec<(Vec<Rule>, Vec<RuleError>)>) -> (Vec<Rule>, Vec<RuleError>) {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for (found, failed) in parsed {
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

/// Parses and compiles every YAML document of one rule file. Each document is parsed on its own:
/// a syntax error in one leaves the others loading, each rule keeps only its own document's
/// text, and error lines are found within the document (line starts are computed once per file).
pub fn parse_rules(file: &RuleFile) -> (Vec<Rule>, Vec<RuleError>) {
    parse_rules_with(
        file,
        &LoadOptions {
            tests: true,
            ..LoadOptions::default()
        },
    )
}

/// [`parse_rules`] with options (placeholders for `expand`).
pub fn parse_rules_with(file: &RuleFile, options: &LoadOptions) -> (Vec<Rule>, Vec<RuleError>) {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    let lines = Lines::new(&file.text);
    // The tests file is parsed once, for every rule of the file.
    let tests = file
        .tests
        .as_ref()
        .filter(|_| options.tests)
        .map(|(path, text)| (path, testcase::parse(text)));
    for document in documents(&file.text) {
        let first_line = lines.line_of(document.offset);
        // Before the YAML reader, whose scanner is quadratic in flow nesting.
        if let Some(line) = trailhound_event::flow_nesting_beyond(document.text, MAX_YAML_DEPTH) {
            errors.push(RuleError {
                file: file.path.clone(),
                rule: rule_name_of(document.text),
                line: Some(first_line + line - 1),
                message: format!("invalid YAML: nested deeper than {MAX_YAML_DEPTH} levels (the limit for rule files)"),
            });
            continue;
        }
        let yaml: Yaml = match serde_yaml_ng::from_str(document.text) {
            Ok(yaml) => yaml,
            Err(err) => {
                errors.push(RuleError {
                    file: file.path.clone(),
                    rule: rule_name_of(document.text),
                    line: Some(
                        err.location()
                            .map_or(first_line, |l| first_line + l.line().saturating_sub(1)),
                    ),
                    message: yaml_message(&err),
                });
                continue;
            }
        };
        if yaml.is_null() {
            continue;
        }
        match compile(file, &yaml, document.shown(), options) {
            Ok(mut rule) => {
                match &tests {
                    Some((_, Ok(cases))) => rule.tests = cases.clone(),
                    Some((tests_path, Err(err))) => errors.push(RuleError {
                        rule: Some(rule.id.clone()),
                        ..RuleError::new(tests_path, err.clone())
                    }),
                    None => {}
                }
                rules.push(rule);
            }
            Err((rule, err)) => errors.push(RuleError {
                file: file.path.clone(),
                line: Some(
                    err.hint
                        .as_deref()
                        .and_then(|hint| find_line(document.text, hint))
                        .map_or(first_line, |at| lines.line_of(document.offset + at)),
                ),
                rule,
                message: err.message,
            }),
        }
    }
    (rules, errors)
}

/// A YAML parser's message, in words a rule author can act on.
fn yaml_message(err: &serde_yaml_ng::Error) -> String {
    let message = strip_location(&err.to_string());
    if message.starts_with("recursion limit exceeded") {
        format!("invalid YAML: nested deeper than {MAX_YAML_DEPTH} levels (the limit for rule files)")
    } else {
        format!("invalid YAML: {message}")
    }
}

/// How deep maps and lists may nest in a rule file: the YAML reader's own limit, which keeps a
/// hostile file from exhausting the stack. Real rules nest four or five levels.
pub const MAX_YAML_DEPTH: usize = 128;

/// Where each line of a text starts, computed once, so a byte offset's line is a binary search.
struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    fn new(text: &str) -> Lines {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        Lines { starts }
    }

    /// The 1-based line of byte `offset`.
    fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset).max(1)
    }
}

/// One YAML document of a rule file.
struct Document<'a> {
    text: &'a str,
    /// Byte offset of its first line in the file.
    offset: usize,
}

impl<'a> Document<'a> {
    /// The text a rule shows: its document without a bare `---` line before it.
    fn shown(&self) -> &'a str {
        match self.text.split_once('\n') {
            Some((first, rest)) if first.trim_end() == "---" => rest,
            _ => self.text,
        }
    }
}

/// Splits a YAML stream into its documents at `---` and `...` lines (which YAML forbids inside
/// any scalar, so they always separate documents) and before `%` directives. Directive and
/// comment lines stay with the document they precede; parts with no content are left out.
fn documents(text: &str) -> Vec<Document<'_>> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut content = false;
    let mut started = false;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let at = offset;
        offset += line.len();
        if is_marker(line, "---") {
            if content || started {
                push_document(&mut documents, text, start, at, content);
                start = at;
                content = false;
            }
            started = true;
            // `--- value` opens a document with content on the marker's line.
            content |= !line[3..].trim().is_empty() && !line[3..].trim_start().starts_with('#');
        } else if is_marker(line, "...") {
            push_document(&mut documents, text, start, offset, content);
            start = offset;
            content = false;
            started = false;
        } else if line.starts_with('%') {
            // A directive at column 0 ends a document with content and opens the next.
            if content {
                push_document(&mut documents, text, start, at, content);
                start = at;
                content = false;
                started = false;
            }
        } else {
            let trimmed = line.trim();
            content |= !(trimmed.is_empty() || trimmed.starts_with('#'));
        }
    }
    push_document(&mut documents, text, start, text.len(), content);
    documents
}

fn push_document<'a>(documents: &mut Vec<Document<'a>>, text: &'a str, start: usize, end: usize, content: bool) {
    if content && let Some(part) = text.get(start..end) {
        documents.push(Document {
            text: part,
            offset: start,
        });
    }
}

/// Whether `line` is the document marker `marker` (at column 0, then nothing or a space).
fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

/// The rule's name as written (`name:`, else `id:`, else `title:` at the top level), for errors
/// in documents that are not valid YAML.
fn rule_name_of(text: &str) -> Option<String> {
    ["name:", "id:", "title:"].iter().find_map(|key| {
        text.lines()
            .find_map(|line| line.strip_prefix(key))
            .map(|value| value.trim().trim_matches(['\'', '"']).to_string())
            .filter(|value| !value.is_empty() && value.len() <= 200)
    })
}

fn compile(
    file: &RuleFile,
    yaml: &Yaml,
    shown: &str,
    options: &LoadOptions,
) -> Result<Rule, (Option<String>, CompileError)> {
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
    } else if let Some(block) = yaml.get("filter") {
        check_logsource(yaml.get("logsource")).map_err(fail)?;
        let Yaml::Mapping(map) = block else {
            return Err(fail(CompileError::at(
                "filter",
                "filter must be a map of rules, selections and a condition",
            )));
        };
        let rules: Vec<String> = match map.get("rules") {
            Some(Yaml::Sequence(items)) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
            Some(Yaml::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        if rules.is_empty() {
            return Err(fail(CompileError::at("filter", "filter names no rules (filter.rules)")));
        }
        let mut detection = map.clone();
        detection.remove("rules");
        let detection = expand_placeholders(&Yaml::Mapping(detection), options.placeholders).map_err(fail)?;
        match compile_body(&detection).map_err(fail)? {
            Compiled::Detection(detection) => Body::Filter { rules, detection },
            Compiled::Aggregation { .. } => {
                return Err(fail(CompileError::at("condition", "a filter cannot aggregate")));
            }
        }
    } else {
        check_logsource(yaml.get("logsource")).map_err(fail)?;
        let detection = yaml
            .get("detection")
            .ok_or_else(|| fail(CompileError::new("rule has no detection")))?;
        let detection = expand_placeholders(detection, options.placeholders).map_err(fail)?;
        match compile_body(&detection).map_err(fail)? {
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
        text: shown.to_string(),
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

/// The byte offset of the first line of `text` that holds `hint` as a key, else of the first
/// that holds it anywhere.
fn find_line(text: &str, hint: &str) -> Option<usize> {
    let quoted = format!("'{hint}'");
    let as_key = |line: &str| {
        let line = line.trim_start().trim_start_matches("- ");
        line.strip_prefix(hint)
            .is_some_and(|rest| rest.starts_with(':') || rest.starts_with('|'))
            || line.strip_prefix(&quoted).is_some_and(|rest| rest.starts_with(':'))
    };
    let lines = || {
        text.split_inclusive('\n').scan(0, |offset, line| {
            let at = *offset;
            *offset += line.len();
            Some((at, line))
        })
    };
    lines()
        .find(|(_, line)| as_key(line))
        .or_else(|| lines().find(|(_, line)| line.contains(hint)))
        .map(|(at, _)| at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

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

    #[test]
    fn each_rule_keeps_only_its_own_document_text() {
        let second = GOOD.replace("aws-t", "aws-u");
        let (rules, errors) = load(&format!("{GOOD}---\n{second}"));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(rules[0].text, GOOD);
        assert_eq!(rules[1].text, second);
    }

    #[test]
    fn many_small_rules_in_one_file_hold_their_text_once() {
        let text = (0..3000)
            .map(|i| GOOD.replace("aws-t", &format!("aws-{i}")))
            .collect::<Vec<_>>()
            .join("---\n");
        let (rules, errors) = load(&text);
        assert!(errors.is_empty());
        assert_eq!(rules.len(), 3000);
        let held: usize = rules.iter().map(|r| r.text.len()).sum();
        assert!(held <= text.len(), "{held} bytes held for a file of {}", text.len());
    }

    #[test]
    fn error_lines_are_found_in_the_rules_own_document() {
        // Line 10 of the first rule holds a condition too: the error is on the second's.
        let bad = GOOD
            .replace("aws-t", "aws-u")
            .replace("condition: sel", "condition: sel and other");
        let (rules, errors) = load(&format!("{GOOD}---\n{bad}"));
        assert_eq!(rules.len(), 1);
        assert_eq!(errors[0].line, Some(21), "{}", errors[0]);
        assert_eq!(errors[0].rule.as_deref(), Some("aws-u"));
        // An error without a key to point at names the document's first line.
        let (_, errors) = load(&format!("{GOOD}---\n{}", GOOD.replace("title: T\n", "")));
        assert_eq!(errors[0].line, Some(11), "{}", errors[0]);
    }

    #[test]
    fn twenty_thousand_errors_in_one_file_each_name_their_line() {
        let bad = GOOD.replace("level: high", "level: severe");
        let text = vec![bad.as_str(); 20_000].join("---\n");
        let (_, errors) = load(&text);
        assert_eq!(errors.len(), 20_000);
        for (i, error) in errors.iter().enumerate() {
            assert_eq!(error.line, Some(5 + i * 11), "{error}");
        }
    }

    #[test]
    fn a_yaml_error_in_one_document_leaves_the_others_loading() {
        let (rules, errors) = load(&format!("title: [unclosed\nname: broken\n---\n{GOOD}"));
        assert_eq!(rules.len(), 1);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].rule.as_deref(), Some("broken"));
    }

    #[test]
    fn a_regex_too_big_for_the_engine_refuses_its_rule_with_file_and_line() {
        let text = GOOD.replace("eventName: X", "eventName: X\n    userAgent|re: '(?:x{1000}){1000}'");
        let (rules, errors) = load(&text);
        assert!(rules.is_empty(), "the rule would never match");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, Some(10), "{}", errors[0]);
        assert_eq!(errors[0].rule.as_deref(), Some("aws-t"));
        assert!(errors[0].message.contains("too big"), "{}", errors[0]);
    }

    #[test]
    fn deeply_nested_yaml_is_refused_with_file_rule_and_line() {
        for deep in [
            format!("{}x{}", "[".repeat(10_000), "]".repeat(10_000)),
            format!("{}x{}", "{a: ".repeat(10_000), "}".repeat(10_000)),
        ] {
            let text = GOOD.replace("eventName: X", &format!("eventName: X\n    userAgent: {deep}"));
            let (rules, errors) = load(&text);
            assert!(rules.is_empty());
            assert!(
                errors[0].message.contains("nested deeper than 128 levels"),
                "{}",
                errors[0]
            );
            assert_eq!(errors[0].rule.as_deref(), Some("aws-t"));
            assert_eq!(errors[0].line, Some(10), "{}", errors[0]);
        }
    }

    /// 100,000 levels of flow brackets (which the YAML scanner takes minutes over) are refused
    /// before it reads them, with the rule and line, and the rule after them still loads.
    #[test]
    fn flow_brackets_nested_past_the_limit_are_refused_before_the_yaml_reader() {
        let deep = format!("{}x{}", "[".repeat(100_000), "]".repeat(100_000));
        let hostile = GOOD.replace("eventName: X", &format!("eventName: X\n    userAgent: {deep}"));
        let text = format!("{hostile}\n---\n{}", GOOD.replace("aws-t", "aws-u"));
        let (rules, errors) = load(&text);
        assert_eq!(rules.len(), 1, "{errors:?}");
        assert!(
            errors[0].message.contains("nested deeper than 128 levels"),
            "{}",
            errors[0]
        );
        assert_eq!(errors[0].rule.as_deref(), Some("aws-t"));
        assert_eq!(errors[0].line, Some(10), "{}", errors[0]);
    }

    #[test]
    fn documents_split_where_yaml_does() {
        let texts = |text: &str| documents(text).iter().map(|d| d.text.to_string()).collect::<Vec<_>>();
        assert_eq!(texts("a: 1\n---\nb: 2\n"), ["a: 1\n", "---\nb: 2\n"]);
        assert_eq!(texts("# c\n---\na: 1\n"), ["# c\n---\na: 1\n"]);
        assert_eq!(
            texts("%YAML 1.2\n---\na: 1\n...\nb: 2"),
            ["%YAML 1.2\n---\na: 1\n...\n", "b: 2"]
        );
        assert_eq!(
            texts("---\n---\na: |\n  x\n  --- not a marker\n---\n"),
            ["---\na: |\n  x\n  --- not a marker\n"]
        );
        assert_eq!(texts("--- a\n---x: 1\n"), ["--- a\n---x: 1\n"]);
        assert!(texts("").is_empty());
    }

    proptest::proptest! {
        #[test]
        fn documents_agree_with_the_yaml_stream(parts in proptest::collection::vec("[a-c]: [0-9]|# x|%TAG ! tag:x:|---|\\.\\.\\.|--- [a-c]|", 0..8)) {
            let text = parts.join("\n");
            let stream: Result<Vec<Yaml>, _> = serde_yaml_ng::Deserializer::from_str(&text).map(Yaml::deserialize).collect();
            if let Ok(stream) = stream {
                let ours: Result<Vec<Yaml>, _> = documents(&text).iter().map(|d| serde_yaml_ng::from_str::<Yaml>(d.text)).collect();
                let stream: Vec<Yaml> = stream.into_iter().filter(|y| !y.is_null()).collect();
                let ours: Vec<Yaml> = ours.expect("each part parses").into_iter().filter(|y| !y.is_null()).collect();
                proptest::prop_assert_eq!(ours, stream, "{:?}", text);
            }
        }

        #[test]
        #[test]
        fn hostile_rule_text_never_panics(text in "[a-z:|\\-\\[\\]{} \\n*?'\"]{0,200}") {
            let _ = load(&text);
            let _ = load(&format!("{GOOD}{text}"));
        }
    }
}
