//! Writing a [`Cond`] as SQL text in one dialect.
//!
//! Values of a field are handled as lists where a field can have several (a JSON path crossing
//! arrays, an array of structs) and as one nullable expression otherwise. A JSON path is walked
//! the way the engine walks it: member by member, descending into the elements of any array met
//! on the way (arrays in arrays too, up to [`ARRAY_DEPTH`] levels at one step); where the path
//! ends on a non-empty array, its elements are the values; an empty array is the value `[]`.
//! Objects and arrays reached match as their compact JSON text.

use std::cell::Cell;

use super::{Compare, Cond, Dialect, Field, Placement, Test, TextTest, quote};

/// How deeply arrays directly inside arrays are entered at one step of a JSON path. CloudTrail
/// writes lists of objects, never lists of lists, along the paths rules use.
pub(crate) const ARRAY_DEPTH: usize = 2;

pub(crate) struct Render {
    dialect: Dialect,
    /// Names lambda variables apart.
    next: Cell<u32>,
}

/// The values of a field as SQL.
enum Values {
    /// One nullable string expression.
    One(String),
    /// An expression of a list of strings, none of them null, never itself null.
    Many(String),
}

impl Render {
    pub(crate) fn new(dialect: Dialect) -> Render {
        Render {
            dialect,
            next: Cell::new(0),
        }
    }

    fn var(&self) -> String {
        let n = self.next.get() + 1;
        self.next.set(n);
        format!("v{n}")
    }

    fn athena(&self) -> bool {
        self.dialect == Dialect::Athena
    }

    pub(crate) fn cond(&self, cond: &Cond) -> Result<String, String> {
        Ok(match cond {
            Cond::Const(true) => "TRUE".to_string(),
            Cond::Const(false) => "FALSE".to_string(),
            Cond::And(items) if items.is_empty() => "TRUE".to_string(),
            Cond::Or(items) if items.is_empty() => "FALSE".to_string(),
            Cond::And(items) | Cond::Or(items) if items.len() == 1 => self.cond(&items[0])?,
            Cond::And(items) => self.join(items, " AND ")?,
            Cond::Or(items) => self.join(items, " OR ")?,
            Cond::Not(inner) => format!("NOT ({})", self.cond(inner)?),
            Cond::Test(field, test) => self.test(field, test)?,
        })
    }

    fn join(&self, items: &[Cond], with: &str) -> Result<String, String> {
        let parts = items
            .iter()
            .map(|c| self.cond(c).map(|s| format!("({s})")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(parts.join(with))
    }

    // --- dialect primitives ---

    fn lambda(&self, var: &str, body: &str) -> String {
        if self.athena() {
            format!("{var} -> {body}")
        } else {
            format!("lambda {var}: {body}")
        }
    }

    fn filter(&self, list: &str, pred: impl FnOnce(&str) -> String) -> String {
        let var = self.var();
        let body = pred(&var);
        let f = if self.athena() { "filter" } else { "list_filter" };
        format!("{f}({list}, {})", self.lambda(&var, &body))
    }

    fn transform(&self, list: &str, map: impl FnOnce(&str) -> String) -> String {
        let var = self.var();
        let body = map(&var);
        let f = if self.athena() { "transform" } else { "list_transform" };
        format!("{f}({list}, {})", self.lambda(&var, &body))
    }

    fn len(&self, list: &str) -> String {
        if self.athena() {
            format!("cardinality({list})")
        } else {
            format!("len({list})")
        }
    }

    fn array(&self, item: &str) -> String {
        if self.athena() {
            format!("ARRAY[{item}]")
        } else {
            format!("[{item}]")
        }
    }

    fn any(&self, list: &str, pred: impl FnOnce(&str) -> String) -> String {
        format!("COALESCE({} > 0, FALSE)", self.len(&self.filter(list, pred)))
    }

    fn regex(&self, text: &str, pattern: &str) -> String {
        let f = if self.athena() { "regexp_like" } else { "regexp_matches" };
        format!("{f}({text}, {})", quote(pattern))
    }

    fn json_member(&self, value: &str, key: &str) -> String {
        if self.athena() {
            format!("json_extract({value}, {})", quote(&format!("$[\"{key}\"]")))
        } else {
            format!("json_extract({value}, {})", quote(&format!("$.\"{key}\"")))
        }
    }

    fn json_as_list(&self, value: &str) -> String {
        if self.athena() {
            format!("TRY_CAST({value} AS ARRAY(JSON))")
        } else {
            format!("TRY_CAST({value} AS JSON[])")
        }
    }

    fn json_is_null(&self, value: &str) -> String {
        if self.athena() {
            format!("json_format({value}) = 'null'")
        } else {
            format!("json_type({value}) = 'NULL'")
        }
    }

    /// The text the engine matches for a non-null JSON value: strings unquoted, numbers and
    /// booleans as written, objects and arrays as compact JSON.
    fn json_text(&self, value: &str) -> String {
        if self.athena() {
            format!("COALESCE(json_extract_scalar({value}, '$'), json_format({value}))")
        } else {
            format!(
                "CASE WHEN json_type({value}) IN ('OBJECT', 'ARRAY') THEN CAST({value} AS VARCHAR) ELSE json_extract_string({value}, '$') END"
            )
        }
    }

    // --- JSON walks ---

    /// The column's value as a list of one JSON value (none when null or not JSON).
    fn json_start(&self, column: &str) -> String {
        let parsed = format!("TRY(json_extract({column}, '$'))");
        self.filter(&self.array(&parsed), |v| format!("{v} IS NOT NULL"))
    }

    /// Each array in the list replaced by its elements.
    fn unwrap(&self, list: &str) -> String {
        let inner = self.transform(list, |v| {
            format!("COALESCE({}, {})", self.json_as_list(v), self.array(v))
        });
        format!("flatten({inner})")
    }

    /// The member `key` of each object in the list.
    fn member(&self, list: &str, key: &str) -> String {
        let values = self.transform(list, |v| self.json_member(v, key));
        self.filter(&values, |v| format!("{v} IS NOT NULL"))
    }

    /// The values where a path ends: the elements of non-empty arrays, anything else itself.
    fn ends(&self, list: &str) -> String {
        let inner = self.transform(list, |v| {
            format!(
                "CASE WHEN COALESCE(json_array_length({v}) > 0, FALSE) THEN {} ELSE {} END",
                self.json_as_list(v),
                self.array(v)
            )
        });
        format!("flatten({inner})")
    }

    /// The JSON values a path reaches, nulls included.
    fn json_leaves(&self, column: &str, keys: &[String]) -> String {
        let mut list = self.json_start(column);
        for key in keys {
            for _ in 0..ARRAY_DEPTH {
                list = self.unwrap(&list);
            }
            list = self.member(&list, key);
        }
        self.ends(&list)
    }

    fn json_texts(&self, leaves: &str) -> String {
        let present = self.filter(leaves, |v| format!("NOT ({})", self.json_is_null(v)));
        self.transform(&present, |v| self.json_text(v))
    }

    fn values(&self, field: &Field) -> Values {
        match field {
            Field::Scalar(sql) => Values::One(sql.clone()),
            Field::Json { column, keys } if keys.is_empty() => {
                // The column's own text, unless it holds a non-empty array (then its elements).
                let leaves = self.json_leaves(column, keys);
                let is_list = format!("COALESCE(TRY(json_array_length(json_extract({column}, '$'))) > 0, FALSE)");
                let own = self.filter(&self.array(column), |v| format!("{v} IS NOT NULL"));
                Values::Many(format!(
                    "CASE WHEN {is_list} THEN {} ELSE {own} END",
                    self.json_texts(&leaves)
                ))
            }
            Field::Json { column, keys } => Values::Many(self.json_texts(&self.json_leaves(column, keys))),
            Field::Elements { column, member } => {
                let members = self.transform(column, |v| format!("{v}.{member}"));
                let list = self.filter(&members, |v| format!("{v} IS NOT NULL"));
                let empty = if self.athena() { "ARRAY[]" } else { "[]" };
                Values::Many(format!("COALESCE({list}, {empty})"))
            }
        }
    }

    /// The values as a list, whatever the field.
    fn list(&self, field: &Field) -> String {
        match self.values(field) {
            Values::Many(list) => list,
            Values::One(sql) => self.filter(&self.array(&sql), |v| format!("{v} IS NOT NULL")),
        }
    }

    // --- tests ---

    fn test(&self, field: &Field, test: &Test) -> Result<String, String> {
        Ok(match test {
            Test::Null => {
                match field {
                    Field::Scalar(sql) => format!("({sql}) IS NULL"),
                    Field::Json { column, keys } => {
                        let leaves = self.json_leaves(column, keys);
                        let nulls = self.filter(&leaves, |v| self.json_is_null(v));
                        if keys.is_empty() {
                            format!("({column} IS NULL OR COALESCE({} > 0, FALSE))", self.len(&nulls))
                        } else {
                            format!(
                                "(COALESCE({} = 0, TRUE) OR COALESCE({} > 0, FALSE))",
                                self.len(&leaves),
                                self.len(&nulls)
                            )
                        }
                    }
                    Field::Elements { .. } => {
                        return Err("null tests of array-of-struct members: the table cannot tell a missing member from a null one".to_string());
                    }
                }
            }
            Test::Present => match self.values(field) {
                Values::One(sql) => format!("({sql}) IS NOT NULL"),
                Values::Many(list) => format!("COALESCE({} > 0, FALSE)", self.len(&list)),
            },
            Test::Text(text) => match self.values(field) {
                Values::One(sql) => format!("COALESCE({}, FALSE)", self.text_test(&format!("({sql})"), text)?),
                Values::Many(list) => {
                    let mut failed = None;
                    let sql = self.any(&list, |v| match self.text_test(v, text) {
                        Ok(sql) => sql,
                        Err(err) => {
                            failed = Some(err);
                            String::new()
                        }
                    });
                    if let Some(err) = failed {
                        return Err(err);
                    }
                    sql
                }
            },
            Test::Ref {
                other,
                placement,
                cased,
            } => {
                let ours = self.list(field);
                let theirs = self.list(other);
                let fold = |v: &str| {
                    if *cased {
                        v.to_string()
                    } else {
                        // Rust's to_lowercase, which the engine uses here: `İ` becomes `i̇`.
                        format!("lower(replace({v}, '\u{130}', 'i\u{307}'))")
                    }
                };
                self.any(&ours, |a| {
                    self.any(&theirs, |b| {
                        let (a, b) = (fold(a), fold(b));
                        match placement {
                            Placement::Whole => format!("{a} = {b}"),
                            Placement::Contains => format!("strpos({a}, {b}) > 0"),
                            Placement::StartsWith => format!("starts_with({a}, {b})"),
                            Placement::EndsWith => format!(
                                "length({a}) >= length({b}) AND substr({a}, length({a}) - length({b}) + 1) = {b}"
                            ),
                        }
                    })
                })
            }
        })
    }

    /// A test of one string expression (which may be null: the result is then null or false).
    fn text_test(&self, v: &str, test: &TextTest) -> Result<String, String> {
        Ok(match test {
            TextTest::Literal {
                placement,
                values,
                cased,
            } => self.literal(v, *placement, values, *cased)?,
            TextTest::Regex(pattern) => self.regex(v, pattern),
            TextTest::Compare(op, limit) => {
                if !limit.is_finite() {
                    return Err(format!("comparing with {limit} is not compiled"));
                }
                let ws = super::regex::portable(r"\s")?;
                let number =
                    format!("\\A{ws}*([+\\-]?(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)(?:[eE][+\\-]?[0-9]+)?){ws}*\\z");
                let value = format!("TRY_CAST(regexp_extract({v}, {}, 1) AS DOUBLE)", quote(&number));
                let op_sql = match op {
                    Compare::Gt => ">",
                    Compare::Gte => ">=",
                    Compare::Lt => "<",
                    Compare::Lte => "<=",
                };
                // Rust also reads infinities ("inf", "-Infinity"); NaN compares false anyway.
                let sign = if matches!(op, Compare::Gt | Compare::Gte) {
                    "\\+?"
                } else {
                    "\\-"
                };
                let infinity = format!("\\A{ws}*{sign}[iI][nN][fF](?:[iI][nN][iI][tT][yY])?{ws}*\\z");
                format!(
                    "(COALESCE({value} {op_sql} {limit:e}, FALSE) OR {})",
                    self.regex(v, &infinity)
                )
            }
            TextTest::Ipv4(nets) => {
                let ws = super::regex::portable(r"\s")?;
                let octet = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])";
                let address = format!("\\A{ws}*({octet}\\.{octet}\\.{octet}\\.{octet}){ws}*\\z");
                let text = format!("regexp_extract({v}, {}, 1)", quote(&address));
                let part = |n: u32| format!("TRY_CAST(split_part({text}, '.', {n}) AS BIGINT)");
                let number = format!(
                    "({} * 16777216 + {} * 65536 + {} * 256 + {})",
                    part(1),
                    part(2),
                    part(3),
                    part(4)
                );
                let ranges: Vec<String> = nets
                    .iter()
                    .map(|(first, last)| format!("{number} BETWEEN {first} AND {last}"))
                    .collect();
                format!("COALESCE({}, FALSE)", ranges.join(" OR "))
            }
        })
    }

    /// ASCII values against a text, as the engine compares them: byte for byte, ASCII letters
    /// folded unless `cased`. SQL's lower() also folds two non-ASCII letters into ASCII ones
    /// (KELVIN SIGN into k, İ into i): texts holding them where a value has k or i are ruled out.
    fn literal(&self, v: &str, placement: Placement, values: &[String], cased: bool) -> Result<String, String> {
        let guards = |text: &str, values: &[&String]| -> String {
            let mut out = String::new();
            if cased {
                return out;
            }
            if values.iter().any(|l| l.contains('k')) {
                out.push_str(&format!(" AND strpos({text}, '\u{212A}') = 0"));
            }
            if values.iter().any(|l| l.contains('i')) {
                out.push_str(&format!(" AND strpos({text}, '\u{130}') = 0"));
            }
            out
        };
        let fold = |text: &str| {
            if cased {
                text.to_string()
            } else {
                format!("lower({text})")
            }
        };
        Ok(match placement {
            Placement::Whole => {
                let list: Vec<String> = values.iter().map(|l| quote(l)).collect();
                let all: Vec<&String> = values.iter().collect();
                format!("({} IN ({}){})", fold(v), list.join(", "), guards(v, &all))
            }
            Placement::StartsWith | Placement::EndsWith => {
                let parts: Vec<String> = values
                    .iter()
                    .map(|l| {
                        let n = l.chars().count();
                        let part = if placement == Placement::StartsWith {
                            format!("substr({v}, 1, {n})")
                        } else {
                            format!("substr({v}, length({v}) - {n} + 1)")
                        };
                        let length = if placement == Placement::EndsWith {
                            format!("length({v}) >= {n} AND ")
                        } else {
                            String::new()
                        };
                        format!("({length}{} = {}{})", fold(&part), quote(l), guards(&part, &[l]))
                    })
                    .collect();
                format!("({})", parts.join(" OR "))
            }
            Placement::Contains => {
                return Err("a plain contains test (the engine runs it as a regex)".to_string());
            }
        })
    }
}
