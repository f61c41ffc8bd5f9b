//! A compiled field matcher as a SQL condition (see `crate::sql`): each of its tests, read from
//! what the engine compiled, never from the rule's text again.

use ipnet::IpNet;

use super::{Compare, FieldMatcher, Placement, Test};
use crate::sql;

impl FieldMatcher {
    /// The matcher as a condition over the CloudTrail table, or why it has none.
    pub(crate) fn sql(&self) -> Result<sql::Cond, String> {
        let Some(path) = &self.field else {
            return Err(
                "a keyword search: it matches the record's whole JSON text, which the table does not keep".to_string(),
            );
        };
        let field = sql::field(path.as_str())?;
        let tests = self
            .tests
            .iter()
            .map(|test| Ok(sql::Cond::Test(field.clone(), test_sql(path.as_str(), test)?)))
            .collect::<Result<Vec<_>, String>>()?;
        // As `matches`: every test with `|all`, else any (none, with `|neq`).
        Ok(if self.all {
            sql::Cond::And(tests)
        } else if self.negate {
            sql::Cond::Not(Box::new(sql::Cond::Or(tests)))
        } else {
            sql::Cond::Or(tests)
        })
    }
}

fn placement(placement: Placement) -> sql::Placement {
    match placement {
        Placement::Whole => sql::Placement::Whole,
        Placement::Contains => sql::Placement::Contains,
        Placement::StartsWith => sql::Placement::StartsWith,
        Placement::EndsWith => sql::Placement::EndsWith,
    }
}

fn compare(op: Compare) -> sql::Compare {
    match op {
        Compare::Gt => sql::Compare::Gt,
        Compare::Gte => sql::Compare::Gte,
        Compare::Lt => sql::Compare::Lt,
        Compare::Lte => sql::Compare::Lte,
    }
}

fn test_sql(path: &str, test: &Test) -> Result<sql::Test, String> {
    Ok(match test {
        Test::Null => sql::Test::Null,
        Test::Exists(true) => sql::Test::Present,
        // Not present is Sigma's null: nothing reached, or only nulls.
        Test::Exists(false) => sql::Test::Null,
        Test::Literal {
            placement: at,
            values,
            cased,
        } => sql::Test::Text(sql::TextTest::Literal {
            placement: placement(*at),
            values: values.iter().map(|v| v.to_string()).collect(),
            cased: *cased,
        }),
        Test::Pattern(regex) => sql::Test::Text(sql::TextTest::Regex(sql::portable(regex.0.as_str())?)),
        Test::Compare(op, limit) => sql::Test::Text(sql::TextTest::Compare(compare(*op), *limit)),
        Test::Cidr(nets) => {
            let mut ranges = Vec::new();
            for net in nets {
                match net {
                    IpNet::V4(v4) => ranges.push((u32::from(v4.network()), u32::from(v4.broadcast()))),
                    IpNet::V6(_) => {
                        return Err(format!(
                            "{path}|cidr: IPv6 networks are not compiled (IPv6 text has many spellings)"
                        ));
                    }
                }
            }
            sql::Test::Text(sql::TextTest::Ipv4(ranges))
        }
        Test::FieldRef {
            other,
            placement: at,
            cased,
        } => sql::Test::Ref {
            other: sql::field(other.as_str())?,
            placement: placement(*at),
            cased: *cased,
        },
        Test::Time { .. } => {
            return Err(format!(
                "{path}: the time modifiers (minute ... year) read date formats SQL engines parse differently; not compiled"
            ));
        }
    })
}
