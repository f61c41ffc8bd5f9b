//! Field matchers: one `field|modifiers: values` entry of a selection, compiled.
//!
//! String values become one case-insensitive regex per entry (a list of values becomes one
//! alternation, which the regex crate turns into a literal automaton), so matching a record costs
//! one regex search per field value, whatever the list length.

use std::net::IpAddr;

use ipnet::IpNet;

use regex::Regex;
use serde_yaml_ng::Value as Yaml;
use trailhound_event::{FieldPath, Record, Value};

use crate::error::CompileError;

/// How a string value is placed against the field value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    Whole,
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// A regex, compiled when the rule is loaded: a pattern the engine refuses (too big for its size
/// limits, which only compiling finds out) is an error of its rule at load time, never a rule
/// that silently stops matching.
#[derive(Debug, Clone)]
struct CompiledRegex(Regex);

impl CompiledRegex {
    fn new(source: &str) -> Result<CompiledRegex, String> {
        Regex::new(source).map(CompiledRegex).map_err(|err| match err {
            regex::Error::CompiledTooBig(limit) => {
                format!("the pattern is too big for the regex engine (over its {limit}-byte size limit)")
            }
            other => other.to_string(),
        })
    }

    fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

/// One compiled test of a field's values.
#[derive(Debug, Clone)]
enum Test {
    /// Any of the (merged) patterns matches the value's text.
    Pattern(CompiledRegex),
    /// Plain ASCII values, whole or as prefix or suffix: compared directly, no regex. Most
    /// values in rules are like this (event names, identity types, error codes).
    Literal {
        placement: Placement,
        values: Vec<Box<str>>,
        cased: bool,
    },
    /// The field is missing or null.
    Null,
    Exists(bool),
    Compare(Compare, f64),
    Cidr(Vec<IpNet>),
    /// The value equals (or contains, starts or ends with) another field's value.
    FieldRef {
        other: Box<FieldPath>,
        placement: Placement,
        cased: bool,
    },
}

/// A compiled `field|modifiers: values` entry. The field is `None` for keyword searches, which
/// match anywhere in the record's JSON text.
#[derive(Debug, Clone)]
pub(crate) struct FieldMatcher {
    field: Option<FieldPath>,
    tests: Vec<Test>,
    /// `|all`: every test must match (otherwise any).
    all: bool,
    /// Plain, exact, wildcard-free values: what the rule index keys on.
    literals: Option<Vec<String>>,
}

impl FieldMatcher {
    /// Compiles `spec` (`field|mod|mod`, or `|mod` / empty for keywords) with its YAML value.
    pub fn compile(spec: &str, value: &Yaml) -> Result<FieldMatcher, CompileError> {
        let mut parts = spec.split('|');
        let field = parts.next().unwrap_or_default().trim();
        let mut placement = Placement::Whole;
        let mut all = false;
        let mut cased = false;
        let mut kind = Kind::Strings;
        let mut regex_flags = String::new();
        for modifier in parts {
            match modifier {
                "contains" | "startswith" | "endswith" => {
                    if placement != Placement::Whole {
                        return Err(CompileError::at(
                            spec,
                            format!("{spec:?}: contains, startswith and endswith exclude each other"),
                        ));
                    }
                    placement = match modifier {
                        "contains" => Placement::Contains,
                        "startswith" => Placement::StartsWith,
                        _ => Placement::EndsWith,
                    };
                }
                "all" => all = true,
                "cased" => cased = true,
                "re" => kind = Kind::Regex,
                "i" | "m" | "s" if kind == Kind::Regex => regex_flags.push_str(modifier),
                "cidr" => kind = Kind::Cidr,
                "exists" => kind = Kind::Exists,
                "gt" => kind = Kind::Compare(Compare::Gt),
                "gte" => kind = Kind::Compare(Compare::Gte),
                "lt" => kind = Kind::Compare(Compare::Lt),
                "lte" => kind = Kind::Compare(Compare::Lte),
                "fieldref" => kind = Kind::FieldRef,
                "base64" | "base64offset" | "utf16le" | "utf16be" | "utf16" | "wide" | "windash" | "expand" => {
                    return Err(CompileError::at(
                        spec,
                        format!(
                            "{spec:?}: modifier {modifier:?} is not supported for CloudTrail (its values are JSON, not command lines)"
                        ),
                    ));
                }
                other => {
                    return Err(CompileError::at(spec, format!("{spec:?}: unknown modifier {other:?}")));
                }
            }
        }
        let values: Vec<&Yaml> = match value {
            Yaml::Sequence(items) => items.iter().collect(),
            Yaml::Mapping(_) => {
                return Err(CompileError::at(
                    spec,
                    format!("{spec:?}: a value must be a scalar or a list of scalars, not a map"),
                ));
            }
            other => vec![other],
        };
        if values.is_empty() {
            return Err(CompileError::at(spec, format!("{spec:?}: empty list of values")));
        }
        let field = (!field.is_empty()).then(|| FieldPath::new(field));
        if field.is_none() && kind != Kind::Strings && kind != Kind::Regex {
            return Err(CompileError::at(
                spec,
                format!("{spec:?}: this modifier needs a field name"),
            ));
        }
        let mut tests = Vec::new();
        let mut patterns = Vec::new();
        // The value each pattern was made of, to point errors at its line.
        let mut sources: Vec<String> = Vec::new();
        let mut literals = Some(Vec::new());
        // String values that need no regex (see `Test::Literal`).
        let mut plain: Option<Vec<String>> = Some(Vec::new());
        for value in values {
            let text = scalar(spec, value)?;
            let Some(text) = text else {
                // null: the field is missing or null
                tests.push(Test::Null);
                literals = None;
                continue;
            };
            match kind {
                Kind::Strings => {
                    let placement = if field.is_none() && placement == Placement::Whole {
                        Placement::Contains
                    } else {
                        placement
                    };
                    if placement != Placement::Whole || has_wildcards(&text) || field.is_none() {
                        literals = None;
                    }
                    if let Some(list) = literals.as_mut() {
                        list.push(text.to_lowercase());
                    }
                    if placement == Placement::Contains || has_wildcards(&text) || !text.is_ascii() || field.is_none() {
                        plain = None;
                    }
                    if let Some(list) = plain.as_mut() {
                        list.push(text.clone());
                    }
                    patterns.push(wildcard_regex(&text, placement));
                    sources.push(text);
                }
                Kind::Regex => {
                    literals = None;
                    regex_syntax::Parser::new().parse(&text).map_err(|err| {
                        CompileError::at(&text, format!("{spec:?}: invalid regular expression {text:?}: {err}"))
                    })?;
                    patterns.push(format!("(?:{text})"));
                    sources.push(text);
                }
                Kind::Cidr => {
                    let net = text
                        .trim()
                        .parse::<IpNet>()
                        .or_else(|_| text.trim().parse::<IpAddr>().map(IpNet::from))
                        .map_err(|_| CompileError::at(&text, format!("{spec:?}: {text:?} is not a CIDR network")))?;
                    tests.push(Test::Cidr(vec![net]));
                }
                Kind::Exists => {
                    let wanted = match text.to_ascii_lowercase().as_str() {
                        "true" | "yes" => true,
                        "false" | "no" => false,
                        _ => {
                            return Err(CompileError::at(
                                spec,
                                format!("{spec:?}: exists takes true or false, not {text:?}"),
                            ));
                        }
                    };
                    tests.push(Test::Exists(wanted));
                }
                Kind::Compare(op) => {
                    let limit = text
                        .trim()
                        .parse::<f64>()
                        .map_err(|_| CompileError::at(spec, format!("{spec:?}: {text:?} is not a number")))?;
                    tests.push(Test::Compare(op, limit));
                }
                Kind::FieldRef => tests.push(Test::FieldRef {
                    other: Box::new(FieldPath::new(&text)),
                    placement,
                    cased,
                }),
            }
        }
        if kind != Kind::Strings {
            literals = None;
        }
        if kind == Kind::Strings
            && let Some(values) = plain.filter(|v| !v.is_empty() && v.len() == patterns.len())
        {
            let folded: Vec<Box<str>> = values
                .iter()
                .map(|v| {
                    if cased {
                        v.as_str().into()
                    } else {
                        v.to_ascii_lowercase().into()
                    }
                })
                .collect();
            if all {
                for value in folded {
                    tests.push(Test::Literal {
                        placement,
                        values: vec![value],
                        cased,
                    });
                }
            } else {
                tests.push(Test::Literal {
                    placement,
                    values: folded,
                    cased,
                });
            }
            patterns.clear();
        }
        if !patterns.is_empty() {
            let flags = match kind {
                Kind::Regex => regex_flags.clone(),
                _ if cased => "s".to_string(),
                _ => "si".to_string(),
            };
            let build = |items: &[String], values: &[String]| {
                let prefix = if flags.is_empty() {
                    String::new()
                } else {
                    format!("(?{flags})")
                };
                // One value: point at its line; several merged: at the field's.
                let hint = match values {
                    [one] => one.as_str(),
                    _ => spec,
                };
                CompiledRegex::new(&format!("{prefix}(?:{})", items.join("|")))
                    .map_err(|err| CompileError::at(hint, format!("{spec:?}: cannot compile values: {err}")))
            };
            if all {
                for (pattern, source) in patterns.iter().zip(&sources) {
                    tests.push(Test::Pattern(build(
                        std::slice::from_ref(pattern),
                        std::slice::from_ref(source),
                    )?));
                }
            } else {
                tests.push(Test::Pattern(build(&patterns, &sources)?));
            }
        }
        // A Cidr list matches if any network does: merge so `all` applies per value as written.
        if !all {
            let nets: Vec<IpNet> = tests
                .iter()
                .filter_map(|t| if let Test::Cidr(n) = t { Some(n.clone()) } else { None })
                .flatten()
                .collect();
            if !nets.is_empty() {
                tests.retain(|t| !matches!(t, Test::Cidr(_)));
                tests.push(Test::Cidr(nets));
            }
        }
        Ok(FieldMatcher {
            field,
            tests,
            all,
            literals,
        })
    }

    /// The field this matcher reads, if any.
    pub fn field(&self) -> Option<&FieldPath> {
        self.field.as_ref()
    }

    /// Relative cost of evaluating this matcher: core fields are free, other fields need the
    /// record's JSON tree, keywords search the whole text. Used to order tests cheapest first.
    pub fn cost(&self) -> u8 {
        match &self.field {
            Some(field)
                if field.is_core()
                    && self
                        .tests
                        .iter()
                        .all(|t| !matches!(t, Test::FieldRef { other, .. } if !other.is_core())) =>
            {
                0
            }
            Some(_) => 1,
            None => 2,
        }
    }

    /// Lower-cased exact values, when the matcher is a plain equality test.
    pub fn literals(&self) -> Option<&[String]> {
        if self.all { None } else { self.literals.as_deref() }
    }

    pub fn matches(&self, record: &Record<'_>) -> bool {
        let test = |t: &Test| self.test(t, record);
        if self.all {
            self.tests.iter().all(test)
        } else {
            self.tests.iter().any(test)
        }
    }

    fn test(&self, test: &Test, record: &Record<'_>) -> bool {
        let Some(field) = &self.field else {
            // Keywords: anywhere in the record's text.
            return match test {
                Test::Pattern(regex) => regex.is_match(record.raw()),
                _ => false,
            };
        };
        match test {
            Test::Null => {
                let mut seen = false;
                let null = record.visit(field, &mut |value| {
                    seen = true;
                    value == Value::Null
                });
                null || !seen
            }
            Test::Exists(wanted) => record.visit(field, &mut |value| value != Value::Null) == *wanted,
            Test::Literal {
                placement,
                values,
                cased,
            } => record.visit(field, &mut |value| {
                value
                    .text()
                    .is_some_and(|text| values.iter().any(|v| literal_matches(&text, v, *placement, *cased)))
            }),
            Test::Pattern(regex) => record.visit(field, &mut |value| {
                value.text().is_some_and(|text| regex.is_match(&text))
            }),
            Test::Compare(op, limit) => record.visit(field, &mut |value| {
                value.number().is_some_and(|n| match op {
                    Compare::Gt => n > *limit,
                    Compare::Gte => n >= *limit,
                    Compare::Lt => n < *limit,
                    Compare::Lte => n <= *limit,
                })
            }),
            Test::Cidr(nets) => record.visit(field, &mut |value| {
                value
                    .text()
                    .and_then(|t| t.trim().parse::<IpAddr>().ok())
                    .is_some_and(|ip| nets.iter().any(|n| n.contains(&ip)))
            }),
            Test::FieldRef {
                other,
                placement,
                cased,
            } => {
                let mut others = Vec::new();
                record.visit(other, &mut |value| {
                    if let Some(text) = value.text() {
                        others.push(if *cased { text.into_owned() } else { text.to_lowercase() });
                    }
                    false
                });
                record.visit(field, &mut |value| {
                    let Some(text) = value.text() else {
                        return false;
                    };
                    let text = if *cased { text.into_owned() } else { text.to_lowercase() };
                    others.iter().any(|o| match placement {
                        Placement::Whole => text == *o,
                        Placement::Contains => text.contains(o.as_str()),
                        Placement::StartsWith => text.starts_with(o.as_str()),
                        Placement::EndsWith => text.ends_with(o.as_str()),
                    })
                })
            }
        }
    }
}

/// `value` against an ASCII literal (lower-cased unless `cased`), placed whole or at an end.
fn literal_matches(value: &str, literal: &str, placement: Placement, cased: bool) -> bool {
    let (v, l) = (value.as_bytes(), literal.as_bytes());
    let same = |a: &[u8]| if cased { a == l } else { a.eq_ignore_ascii_case(l) };
    match placement {
        Placement::Whole => v.len() == l.len() && same(v),
        Placement::StartsWith => v.len() >= l.len() && same(&v[..l.len()]),
        Placement::EndsWith => v.len() >= l.len() && same(&v[v.len() - l.len()..]),
        Placement::Contains => v.windows(l.len().max(1)).any(same),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Strings,
    Regex,
    Cidr,
    Exists,
    Compare(Compare),
    FieldRef,
}

/// The text of a scalar YAML value; `None` for null.
fn scalar(spec: &str, value: &Yaml) -> Result<Option<String>, CompileError> {
    match value {
        Yaml::Null => Ok(None),
        Yaml::Bool(b) => Ok(Some(b.to_string())),
        Yaml::Number(n) => Ok(Some(n.to_string())),
        Yaml::String(s) => Ok(Some(s.clone())),
        Yaml::Sequence(_) | Yaml::Mapping(_) => Err(CompileError::at(
            spec,
            format!("{spec:?}: nested lists or maps are not values"),
        )),
        Yaml::Tagged(tagged) => scalar(spec, &tagged.value),
    }
}

fn has_wildcards(text: &str) -> bool {
    text.contains(['*', '?'])
}

/// Sigma's string syntax as a regex: `*` any run, `?` one character, `\*` `\?` `\\` escapes; any
/// other backslash is literal.
fn wildcard_regex(text: &str, placement: Placement) -> String {
    let mut out = String::new();
    if matches!(placement, Placement::Whole | Placement::StartsWith) {
        out.push('^');
    }
    let mut chars = text.chars().peekable();
    let mut literal = String::new();
    let flush = |literal: &mut String, out: &mut String| {
        out.push_str(&regex::escape(literal));
        literal.clear();
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some('*' | '?' | '\\')) => {
                literal.push(chars.next().unwrap_or('\\'));
            }
            '*' => {
                flush(&mut literal, &mut out);
                out.push_str(".*");
            }
            '?' => {
                flush(&mut literal, &mut out);
                out.push('.');
            }
            c => literal.push(c),
        }
    }
    flush(&mut literal, &mut out);
    if matches!(placement, Placement::Whole | Placement::EndsWith) {
        out.push('$');
    }
    format!("(?:{out})")
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"eventTime":"2024-03-01T12:00:00Z","eventName":"AuthorizeSecurityGroupIngress",
      "eventSource":"ec2.amazonaws.com","sourceIPAddress":"203.0.113.66","userAgent":"Mozilla/5.0 (Kali) *star*",
      "userIdentity":{"type":"IAMUser","userName":"Bob","arn":"arn:aws:iam::1:user/bob"},
      "requestParameters":{"groupId":"sg-1","fromPort":22,"toPort":"443","enabled":false,"userName":"bob","nothing":null,
        "ipPermissions":{"items":[{"ipRanges":{"items":[{"cidrIp":"10.0.0.0/8"},{"cidrIp":"0.0.0.0/0"}]}}]},
        "tags":["prod","Team-A"]},
      "responseElements":{"status":"Suspended"},"errorCode":null}"#;

    fn check(spec: &str, yaml: &str) -> bool {
        let value: Yaml = serde_yaml_ng::from_str(yaml).expect("yaml");
        let matcher = FieldMatcher::compile(spec, &value).unwrap_or_else(|e| panic!("{spec}: {}", e.message));
        let record = Record::parse(EVENT).expect("record");
        matcher.matches(&record)
    }

    #[test]
    fn plain_values_are_whole_and_case_insensitive() {
        assert!(check("eventName", "authorizesecuritygroupingress"));
        assert!(!check("eventName", "AuthorizeSecurityGroup"));
        assert!(check("eventName", "[CreateUser, AuthorizeSecurityGroupIngress]"));
        assert!(check("eventName|cased", "AuthorizeSecurityGroupIngress"));
        assert!(!check("eventName|cased", "authorizesecuritygroupingress"));
    }

    #[test]
    fn wildcards_and_escapes() {
        assert!(check("eventName", "Authorize*Ingress"));
        assert!(check("eventName", "Authorize?ecurityGroupIngress"));
        assert!(!check("eventName", "Authorize?Ingress"));
        assert!(check("userAgent|contains", "\\*star\\*"));
        assert!(!check("userAgent|contains", "\\*sta\\*"));
        assert!(
            check("userAgent|contains", "(kali)"),
            "regex metacharacters are literal"
        );
    }

    #[test]
    fn placements_and_all() {
        assert!(check("userAgent|startswith", "mozilla/"));
        assert!(check("userAgent|endswith", "'*STAR*'"));
        assert!(check("userAgent|contains|all", "[Kali, Mozilla]"));
        assert!(!check("userAgent|contains|all", "[Kali, Chrome]"));
        assert!(check("userAgent|contains", "[Chrome, Kali]"));
    }

    #[test]
    fn numbers_booleans_null() {
        assert!(check("requestParameters.fromPort", "22"));
        assert!(
            check("requestParameters.toPort", "443"),
            "numbers match numeric strings"
        );
        assert!(check("requestParameters.enabled", "false"));
        assert!(check("errorCode", "null"), "explicit null");
        assert!(check("errorMessage", "null"), "missing");
        assert!(!check("requestParameters.groupId", "null"));
        assert!(check("requestParameters.nothing", "[null, x]"));
    }

    #[test]
    fn arrays_objects_and_paths() {
        assert!(check(
            "requestParameters.ipPermissions.items.ipRanges.items.cidrIp",
            "0.0.0.0/0"
        ));
        assert!(check(
            "requestParameters.ipPermissions.items.ipRanges.items.cidrIp|endswith",
            "/0"
        ));
        assert!(check("requestParameters.tags", "team-a"));
        assert!(
            check("responseElements|contains", "suspended"),
            "objects match as JSON text"
        );
    }

    #[test]
    fn regex_cidr_exists_compare() {
        assert!(check("userAgent|re", "Kali\\)"));
        assert!(!check("userAgent|re", "kali\\)"));
        assert!(check("userAgent|re|i", "kali\\)"));
        assert!(check("sourceIPAddress|cidr", "203.0.113.0/24"));
        assert!(!check("sourceIPAddress|cidr", "[10.0.0.0/8, 192.168.0.0/16]"));
        assert!(
            !check(
                "requestParameters.ipPermissions.items.ipRanges.items.cidrIp|cidr",
                "0.0.0.0/0"
            ),
            "cidr values are not IPs"
        );
        assert!(check("requestParameters.groupId|exists", "true"));
        assert!(check("requestParameters.missing|exists", "false"));
        assert!(
            !check("requestParameters.nothing|exists", "true"),
            "null does not exist"
        );
        assert!(check("requestParameters.fromPort|gte", "22"));
        assert!(!check("requestParameters.fromPort|gt", "22"));
        assert!(check("requestParameters.toPort|lt", "1024"));
    }

    #[test]
    fn fieldref() {
        assert!(
            check("userIdentity.userName|fieldref", "requestParameters.userName"),
            "case-insensitive"
        );
        assert!(!check(
            "userIdentity.userName|fieldref|cased",
            "requestParameters.userName"
        ));
        assert!(check(
            "userIdentity.arn|fieldref|endswith",
            "requestParameters.userName"
        ));
        assert!(!check("userIdentity.arn|fieldref", "requestParameters.missing"));
    }

    #[test]
    fn keywords() {
        assert!(check("", "[Suspended]"));
        assert!(check("|contains", "sg-1"));
        assert!(!check("", "nowhere-to-be-found"));
    }

    #[test]
    fn compile_errors() {
        let bad = [
            ("f|nope", "x"),
            ("f|contains|endswith", "x"),
            ("f|re", "(unclosed"),
            ("f|cidr", "not-a-net"),
            ("f|exists", "maybe"),
            ("f|gt", "many"),
            ("f", "{a: 1}"),
            ("f", "[]"),
            ("|cidr", "1.2.3.4/8"),
            ("f|base64", "x"),
            ("f|re", "'(?:x{1000}){1000}'"),
            ("f|re|all", "['a', '(?:x{1000}){1000}']"),
        ];
        for (spec, yaml) in bad {
            let value: Yaml = serde_yaml_ng::from_str(yaml).expect("yaml");
            assert!(FieldMatcher::compile(spec, &value).is_err(), "{spec}: {yaml}");
        }
    }

    #[test]
    fn a_regex_too_big_for_the_engine_is_refused_when_compiled_not_at_first_use() {
        let value: Yaml = serde_yaml_ng::from_str("'(?:x{1000}){1000}'").expect("yaml");
        let err = FieldMatcher::compile("userAgent|re", &value).expect_err("too big");
        assert!(err.message.contains("too big"), "{}", err.message);
        assert_eq!(err.hint.as_deref(), Some("(?:x{1000}){1000}"), "points at the value");
    }

    #[test]
    fn literals_for_the_index() {
        let value: Yaml = serde_yaml_ng::from_str("[CreateUser, DeleteUser]").expect("yaml");
        let m = FieldMatcher::compile("eventName", &value).expect("ok");
        assert_eq!(
            m.literals(),
            Some(&["createuser".to_string(), "deleteuser".to_string()][..])
        );
        let m = FieldMatcher::compile("eventName|startswith", &value).expect("ok");
        assert_eq!(m.literals(), None);
    }
}
