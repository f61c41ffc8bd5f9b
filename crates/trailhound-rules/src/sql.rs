//! Rules as SQL: a detection compiled to a `WHERE` condition over the CloudTrail table that AWS
//! documents for Amazon Athena (see [`table`]), in Athena's dialect (Trino) or DuckDB's.
//!
//! The SQL is made from the *compiled* rule, the same selections, tests and filters the engine
//! evaluates, and means exactly what the engine means: Sigma's case-insensitive matching (plain
//! ASCII values folded as the engine folds them, everything else through the engine's own regex
//! rewritten with explicit character classes, see `regex`), wildcards, lists, `null` and
//! `exists`, numbers, `cidr`, `fieldref`, and paths into the JSON columns where a path crossing an
//! array matches if any element does. Each test is two-valued (a missing field never turns a
//! `not` into "unknown"). A rule whose meaning has no exact SQL form (keyword searches over the
//! whole record, fields the table does not have, time parts, IPv6 networks, word-boundary
//! regexes...) is refused with the reason: it is left to the local engine, never approximated.
//!
//! This module only writes text: it runs nothing and knows no AWS API.

pub mod plan;
mod regex;
mod render;
pub mod table;

pub(crate) use regex::portable;
pub(crate) use render::Render;

use crate::rule::{Body, Rule};

/// The SQL dialect to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Amazon Athena (engine version 3, Trino).
    Athena,
    /// DuckDB.
    Duckdb,
}

/// How a string value is placed against a field's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    Whole,
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compare {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// A condition over one row. Every leaf is two-valued: true or false, never SQL's unknown.
#[derive(Debug, Clone)]
pub(crate) enum Cond {
    Const(bool),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Test(Field, Test),
}

/// Where a rule's field path leads in the table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Field {
    /// A string column or struct member: at most one value. The SQL expression reads it.
    Scalar(String),
    /// A JSON column walked along `keys` (none: the column's value itself).
    Json { column: String, keys: Vec<String> },
    /// One member of every element of an array-of-structs column.
    Elements { column: String, member: String },
}

/// What is asked of a field's values.
#[derive(Debug, Clone)]
pub(crate) enum Test {
    /// Some value reached is null, or none is reached (Sigma's `null`).
    Null,
    /// Some value reached is not null.
    Present,
    /// The text of some non-null value passes.
    Text(TextTest),
    /// Some value equals (contains, starts or ends with) some value of the other field,
    /// lower-cased unless `cased`.
    Ref {
        other: Field,
        placement: Placement,
        cased: bool,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum TextTest {
    /// ASCII values, already lower-cased unless `cased`, compared with ASCII case folding.
    Literal {
        placement: Placement,
        values: Vec<String>,
        cased: bool,
    },
    /// A portable regex (see `regex`), found anywhere in the text.
    Regex(String),
    /// The text as a number (Rust's float syntax, surrounding whitespace allowed).
    Compare(Compare, f64),
    /// The text as an IPv4 address inside one of the networks (first, last address).
    Ipv4(Vec<(u32, u32)>),
}

/// Why a rule has no SQL form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The condition a rule's detection compiles to (for a legacy aggregation, any of its parts).
/// Correlation rules and filters have none: correlations are evaluated over the rows their
/// rules match, and filters are already part of the rules they name.
pub(crate) fn condition(rule: &Rule) -> Result<Cond, Unsupported> {
    let result = match &rule.body {
        Body::Detection(detection) => detection.sql(),
        Body::Aggregation { parts, .. } => parts
            .iter()
            .map(|part| part.sql())
            .collect::<Result<Vec<_>, _>>()
            .map(Cond::Or),
        Body::Correlation(_) => Err("a correlation: evaluated over the rows of the rules it counts".to_string()),
        Body::Filter { .. } => Err("a filter: part of the rules it names".to_string()),
    };
    result.map_err(Unsupported)
}

/// The `WHERE` condition of `rule` in `dialect`. `rule` should come from a [`crate::RuleSet`],
/// where Sigma filters are attached to the rules they name.
pub fn where_clause(rule: &Rule, dialect: Dialect) -> Result<String, Unsupported> {
    let cond = condition(rule)?;
    Render::new(dialect).cond(&cond).map_err(Unsupported)
}

/// Rules sorted by whether they compile: each with its condition, or the reason it has none.
#[derive(Debug, Default)]
pub struct Compiled<'r> {
    pub rules: Vec<(&'r Rule, String)>,
    pub refused: Vec<(&'r Rule, Unsupported)>,
}

/// The `WHERE` condition of each rule in `dialect`; rules with no SQL form are set apart with
/// the reason.
pub fn where_clauses<'r>(rules: impl IntoIterator<Item = &'r Rule>, dialect: Dialect) -> Compiled<'r> {
    let mut compiled = Compiled::default();
    for rule in rules {
        match where_clause(rule, dialect) {
            Ok(sql) => compiled.rules.push((rule, sql)),
            Err(reason) => compiled.refused.push((rule, reason)),
        }
    }
    compiled
}

/// Whether a rule's field path has a place in the CloudTrail table, so that a test on it can be
/// compiled (the fields trailhound derives, `trailhound.*`, have none).
pub fn in_table(path: &str) -> bool {
    field(path).is_ok()
}

/// A SQL string literal.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Maps a rule's field path to the table, or says why it is not there.
pub(crate) fn field(path: &str) -> Result<Field, String> {
    use table::{MemberShape, Shape};
    let mut segments = path.split('.');
    let first = segments.next().unwrap_or_default();
    let rest: Vec<&str> = segments.collect();
    let Some(shape) = table::column(first) else {
        return Err(format!(
            "field {path:?}: {first:?} is not a column of the CloudTrail table (names are case-sensitive, as in records)"
        ));
    };
    let column = first.to_ascii_lowercase();
    match shape {
        Shape::Text | Shape::Boolean if !rest.is_empty() => Err(format!(
            "field {path:?}: {first} is a string in the CloudTrail table, it has no members"
        )),
        Shape::Text => Ok(Field::Scalar(column)),
        // The engine reads readOnly as a boolean ("true" in any case is true, any other string
        // false); the table keeps the text.
        Shape::Boolean => Ok(Field::Scalar(format!(
            "CASE WHEN {column} IS NULL THEN NULL WHEN lower({column}) = 'true' THEN 'true' ELSE 'false' END"
        ))),
        Shape::Json => {
            let keys = rest.iter().map(|k| json_key(path, k)).collect::<Result<Vec<_>, _>>()?;
            Ok(Field::Json { column, keys })
        }
        Shape::Struct(members) => {
            let mut members = members;
            let mut sql = column;
            for (n, name) in rest.iter().enumerate() {
                let Some(member) = members.iter().find(|m| m.name == *name) else {
                    return Err(format!(
                        "field {path:?}: {name:?} is not a member of {first} in the CloudTrail table"
                    ));
                };
                sql.push('.');
                sql.push_str(&member.name.to_ascii_lowercase());
                let last = n + 1 == rest.len();
                match member.shape {
                    MemberShape::Text if last => return Ok(Field::Scalar(sql)),
                    MemberShape::Text => {
                        return Err(format!("field {path:?}: {name} is a string, it has no members"));
                    }
                    MemberShape::Struct(inner) => members = inner,
                    MemberShape::Map => {
                        return Err(format!("field {path:?}: {name} is a map in the CloudTrail table"));
                    }
                }
            }
            Err(format!(
                "field {path:?} is a struct in the CloudTrail table: its JSON text is not kept"
            ))
        }
        Shape::Elements(members) => match rest.as_slice() {
            [name] if members.iter().any(|m| m.name == *name) => Ok(Field::Elements {
                column,
                member: name.to_ascii_lowercase(),
            }),
            _ => Err(format!(
                "field {path:?}: only {first}.arn, .accountId and .type are in the CloudTrail table"
            )),
        },
    }
}

/// A key of a JSON path, refused when a JSON path could not spell it the same way everywhere.
fn json_key(path: &str, key: &str) -> Result<String, String> {
    if key.is_empty() || key.parse::<usize>().is_ok() {
        return Err(format!(
            "field {path:?}: the segment {key:?} (empty, or an array index) is not compiled"
        ));
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '@' | '$' | ' '))
    {
        return Err(format!(
            "field {path:?}: the key {key:?} has characters a JSON path cannot quote the same way in every engine"
        ));
    }
    Ok(key.to_string())
}

#[cfg(test)]
mod tests;
