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

mod sql;

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
    /// A part of a date-time value (`hour`, ...) equals, or compares with, a number.
    Time {
        part: TimePart,
        compare: Option<Compare>,
        limit: f64,
    },
}

/// The time modifiers: which part of a date-time value is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimePart {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl TimePart {
    fn parse(modifier: &str) -> Option<TimePart> {
        Some(match modifier {
            "minute" => TimePart::Minute,
            "hour" => TimePart::Hour,
            "day" => TimePart::Day,
            "week" => TimePart::Week,
            "month" => TimePart::Month,
            "year" => TimePart::Year,
            _ => return None,
        })
    }

    /// The part of an RFC 3339 time (in UTC), or of a `YYYY-MM-DD[ HH:MM:SS]` one.
    fn of(self, text: &str) -> Option<f64> {
        use chrono::{Datelike, Timelike};
        let text = text.trim();
        let time = chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.naive_utc())
            .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S"))
            .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
            .or_else(|_| {
                chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map(|d| d.and_time(chrono::NaiveTime::MIN))
            })
            .ok()?;
        Some(f64::from(match self {
            TimePart::Minute => time.minute(),
            TimePart::Hour => time.hour(),
            TimePart::Day => time.day(),
            TimePart::Week => time.iso_week().week(),
            TimePart::Month => time.month(),
            TimePart::Year => return Some(f64::from(time.year())),
        }))
    }
}

/// Value transformations, applied in the order written before the value is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// UTF-16 little endian (`utf16le`, `wide`), big endian, or little endian with a byte order mark.
    Utf16Le,
    Utf16Be,
    Utf16Bom,
    Base64,
    /// The three base64 encodings of the value at each offset in a 3-byte group.
    Base64Offset,
    /// Each `-` or `/` that starts a word also as `-`, `/`, en dash, em dash and horizontal bar.
    Windash,
}

impl Encoding {
    fn parse(modifier: &str) -> Option<Encoding> {
        Some(match modifier {
            "utf16le" | "wide" => Encoding::Utf16Le,
            "utf16be" => Encoding::Utf16Be,
            "utf16" => Encoding::Utf16Bom,
            "base64" => Encoding::Base64,
            "base64offset" => Encoding::Base64Offset,
            "windash" => Encoding::Windash,
            _ => return None,
        })
    }

    fn apply(self, values: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        use base64::Engine as _;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes).into_bytes();
        let utf16 = |bytes: &[u8], big: bool| -> Vec<u8> {
            String::from_utf8_lossy(bytes)
                .encode_utf16()
                .flat_map(|u| if big { u.to_be_bytes() } else { u.to_le_bytes() })
                .collect()
        };
        match self {
            Encoding::Utf16Le => values.iter().map(|v| utf16(v, false)).collect(),
            Encoding::Utf16Be => values.iter().map(|v| utf16(v, true)).collect(),
            Encoding::Utf16Bom => values
                .iter()
                .map(|v| [&[0xff, 0xfe][..], &utf16(v, false)].concat())
                .collect(),
            Encoding::Base64 => values.iter().map(|v| b64(v)).collect(),
            Encoding::Base64Offset => {
                let mut out = Vec::new();
                for value in &values {
                    for shift in 0..3usize {
                        // The value after `shift` bytes of a 3-byte group: the characters that
                        // depend only on the value, whatever comes before and after it.
                        let padded: Vec<u8> = std::iter::repeat_n(b' ', shift).chain(value.iter().copied()).collect();
                        let encoded = b64(&padded);
                        let start = [0, 2, 3][shift];
                        let end_trim = [0, 3, 2][(value.len() + shift) % 3];
                        let end = encoded.len().saturating_sub(end_trim);
                        if start < end {
                            out.push(encoded[start..end].to_vec());
                        }
                    }
                }
                out
            }
            Encoding::Windash => {
                let mut out = Vec::new();
                for value in &values {
                    let text = String::from_utf8_lossy(value);
                    for dash in ["-", "/", "\u{2013}", "\u{2014}", "\u{2015}"] {
                        let mut variant = String::new();
                        let mut previous: Option<char> = None;
                        for c in text.chars() {
                            if (c == '-' || c == '/') && previous.is_none_or(char::is_whitespace) {
                                variant.push_str(dash);
                            } else {
                                variant.push(c);
                            }
                            previous = Some(c);
                        }
                        let variant = variant.into_bytes();
                        if !out.contains(&variant) {
                            out.push(variant);
                        }
                    }
                }
                out
            }
        }
    }
}

/// A transformed value as a Sigma string that matches it literally.
fn escape_wildcards(bytes: &[u8]) -> String {
    sigma_literal(&String::from_utf8_lossy(bytes))
}

/// `text` as a Sigma string value that matches it literally: `*`, `?` and `\\` escaped.
pub fn sigma_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
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
    /// `|neq`: the field matches when none of its values equals any of the rule's.
    negate: bool,
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
        let mut negate = false;
        let mut time_part = None;
        let mut encodings = Vec::new();
        for modifier in parts {
            if let Some(part) = TimePart::parse(modifier) {
                if time_part.replace(part).is_some() {
                    return Err(CompileError::at(spec, format!("{spec:?}: one time modifier at most")));
                }
                continue;
            }
            if let Some(encoding) = Encoding::parse(modifier) {
                encodings.push(encoding);
                continue;
            }
            match modifier {
                "neq" => negate = true,
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
                "expand" => {
                    return Err(CompileError::at(
                        spec,
                        format!(
                            "{spec:?}: the expand modifier needs placeholder values (give them with --placeholders FILE)"
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
        let refuse = |message: &str| Err(CompileError::at(spec, format!("{spec:?}: {message}")));
        if !encodings.is_empty() && kind != Kind::Strings {
            return refuse(
                "the encoding modifiers (base64, base64offset, utf16*, wide, windash) apply to plain string values only",
            );
        }
        if encodings.contains(&Encoding::Base64Offset) && placement != Placement::Contains {
            return refuse("base64offset finds a value inside encoded text: use it with contains");
        }
        if negate && (all || kind != Kind::Strings || time_part.is_some()) {
            return refuse("neq compares plain values, without all, re, cidr, exists, comparisons or time parts");
        }
        if time_part.is_some()
            && (!matches!(kind, Kind::Strings | Kind::Compare(_))
                || placement != Placement::Whole
                || !encodings.is_empty())
        {
            return refuse("a time modifier (minute ... year) compares a number: alone or with gt, gte, lt, lte");
        }
        if field.is_none() && (time_part.is_some() || negate) {
            return refuse("this modifier needs a field name");
        }
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
        // Encoded values: each value becomes the literal strings its encodings produce.
        let mut encoded_values: Vec<Yaml> = Vec::new();
        let values: Vec<&Yaml> = if encodings.is_empty() {
            values
        } else {
            for value in values {
                let Some(text) = scalar(spec, value)? else {
                    return refuse("an encoded value cannot be null");
                };
                let windash_only = encodings.iter().all(|e| *e == Encoding::Windash);
                if has_wildcards(&text) && !windash_only {
                    return refuse("wildcards cannot be encoded (the encoded text would not hold them)");
                }
                let mut bytes = vec![text.into_bytes()];
                for encoding in &encodings {
                    bytes = encoding.apply(bytes);
                }
                for b in bytes {
                    encoded_values.push(Yaml::String(if windash_only {
                        String::from_utf8_lossy(&b).into_owned()
                    } else {
                        escape_wildcards(&b)
                    }));
                }
            }
            encoded_values.iter().collect()
        };
        if let Some(part) = time_part {
            let compare = match kind {
                Kind::Compare(op) => Some(op),
                _ => None,
            };
            for value in values {
                let text = scalar(spec, value)?.unwrap_or_default();
                let limit = text
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| CompileError::at(spec, format!("{spec:?}: {text:?} is not a number")))?;
                tests.push(Test::Time { part, compare, limit });
            }
            return Ok(FieldMatcher {
                field,
                tests,
                all,
                literals: None,
                negate,
            });
        }
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
                    // `\\` is an escaped backslash: only the pattern reads escapes.
                    let escaped = has_wildcards(&text) || text.contains("\\\\");
                    if placement != Placement::Whole || escaped || field.is_none() {
                        literals = None;
                    }
                    if let Some(list) = literals.as_mut() {
                        list.push(text.to_lowercase());
                    }
                    if placement == Placement::Contains || escaped || !text.is_ascii() || field.is_none() {
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
        if negate {
            literals = None;
        }
        Ok(FieldMatcher {
            field,
            tests,
            all,
            literals,
            negate,
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
            self.tests.iter().any(test) != self.negate
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
            Test::Time { part, compare, limit } => record.visit(field, &mut |value| {
                value
                    .text()
                    .and_then(|text| part.of(&text))
                    .is_some_and(|n| match compare {
                        None => n == *limit,
                        Some(Compare::Gt) => n > *limit,
                        Some(Compare::Gte) => n >= *limit,
                        Some(Compare::Lt) => n < *limit,
                        Some(Compare::Lte) => n <= *limit,
                    })
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
            ("f|base64", "x*"),
            ("f|base64offset", "x"),
            ("f|neq|all", "[a, b]"),
            ("f|hour|contains", "3"),
            ("f|expand", "'%admins%'"),
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

    fn check_event(event: &str, spec: &str, yaml: &str) -> bool {
        let value: Yaml = serde_yaml_ng::from_str(yaml).expect("yaml");
        let matcher = FieldMatcher::compile(spec, &value).unwrap_or_else(|e| panic!("{spec}: {}", e.message));
        let record = Record::parse(event).expect("record");
        matcher.matches(&record)
    }

    #[test]
    fn an_escaped_backslash_is_one_backslash_with_or_without_wildcards() {
        let event = r#"{"eventTime":"2024-03-01T12:00:00Z","eventName":"X","eventSource":"s","userIdentity":{"type":"Root"},"requestParameters":{"path":"C:\\Temp"}}"#;
        // The JSON text `C:\\Temp` is the value `C:\Temp`, one backslash.
        assert!(check_event(event, "requestParameters.path", r"'c:\\temp'"));
        assert!(check_event(event, "requestParameters.path", r"'c:\\te*'"));
        assert!(
            check_event(event, "requestParameters.path", r"'C:\temp'"),
            "a lone backslash is literal"
        );
        assert!(!check_event(event, "requestParameters.path", r"'c:\\\\temp'"));
    }

    #[test]
    fn neq_matches_when_no_value_is_equal() {
        assert!(check("eventName|neq", "CreateUser"));
        assert!(!check("eventName|neq", "authorizesecuritygroupingress"));
        assert!(
            !check("eventName|neq", "[CreateUser, AuthorizeSecurityGroupIngress]"),
            "none of the list"
        );
        assert!(
            check("requestParameters.missing|neq", "x"),
            "a missing field is not equal"
        );
    }

    #[test]
    fn time_modifiers_take_a_part_of_a_date() {
        // 2024-03-01T12:00:00Z: minute 0, hour 12, day 1, ISO week 9, month 3, year 2024.
        assert!(check("eventTime|hour", "12"));
        assert!(!check("eventTime|hour", "13"));
        assert!(check("eventTime|minute", "0"));
        assert!(check("eventTime|day", "1"));
        assert!(check("eventTime|week", "9"));
        assert!(check("eventTime|month", "[1, 3]"));
        assert!(check("eventTime|year", "2024"));
        assert!(check("eventTime|hour|gte", "8"));
        assert!(!check("eventTime|hour|gte", "22"));
        assert!(!check("userAgent|hour", "12"), "not a date");
    }

    /// The encodings, with the values of the Sigma modifier appendix's examples.
    #[test]
    fn base64_utf16_and_windash_encode_the_value() {
        let event = r#"{"eventTime":"2024-03-01T12:00:00Z","eventName":"X","eventSource":"s","userIdentity":{"type":"IAMUser"},
          "requestParameters":{"userData":"ZWNobyAvZXRjL3Bhc3N3ZA==","cmd":"cmd /c whoami","ps":"powershell –enc abc",
            "wide":"VABlAHMAdAA=","blob":"xxSW52b2tlLVdlYlJlcXVlc3Q=","blob2":"eHhJbnZva2UtV2ViUmVxdWVzdA=="}}"#;
        assert!(check_event(
            event,
            "requestParameters.userData|base64",
            "echo /etc/passwd"
        ));
        assert!(check_event(
            event,
            "requestParameters.userData|base64|contains",
            "echo /etc"
        ));
        // base64offset: the value found whatever its offset in the encoded text.
        assert!(check_event(
            event,
            "requestParameters.blob|base64offset|contains",
            "Invoke-WebRequest"
        ));
        assert!(check_event(
            event,
            "requestParameters.blob2|base64offset|contains",
            "Invoke-WebRequest"
        ));
        assert!(
            !check_event(event, "requestParameters.blob2|base64|contains", "Invoke-WebRequest"),
            "plain base64 needs offset 0"
        );
        // "Test" in UTF-16LE, base64: VABlAHMAdAA=
        assert!(check_event(event, "requestParameters.wide|wide|base64", "Test"));
        assert!(check_event(event, "requestParameters.wide|utf16le|base64", "Test"));
        assert!(!check_event(event, "requestParameters.wide|utf16be|base64", "Test"));
        // windash: -c and /c, -enc and en-dash enc.
        assert!(check_event(event, "requestParameters.cmd|windash|contains", " -c "));
        assert!(check_event(event, "requestParameters.ps|windash|contains", " -enc "));
        assert!(!check_event(event, "requestParameters.ps|contains", " -enc "));
    }

    #[test]
    fn cidr_matches_ipv6_too() {
        let event = r#"{"eventTime":"2024-03-01T12:00:00Z","eventName":"X","eventSource":"s","sourceIPAddress":"2001:db8::1","userIdentity":{"type":"IAMUser"}}"#;
        assert!(check_event(event, "sourceIPAddress|cidr", "2001:db8::/32"));
        assert!(!check_event(
            event,
            "sourceIPAddress|cidr",
            "[2001:db9::/32, 10.0.0.0/8]"
        ));
    }
}
