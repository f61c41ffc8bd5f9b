//! Ad-hoc record filters for slicing events: `FIELD=VALUE`, `FIELD!=VALUE`, `FIELD~GLOB`,
//! `FIELD>=N` (and `>`, `<`, `<=`). Text comparisons ignore case; a path crossing an array
//! matches if any element does, as in rules.

use crate::path::FieldPath;
use crate::record::Record;

/// The comparison of a [`Condition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Glob,
    Gt,
    Gte,
    Lt,
    Lte,
}

/// One parsed `--where` condition.
#[derive(Debug, Clone)]
pub struct Condition {
    field: FieldPath,
    op: Op,
    /// Lower-cased value (or pattern).
    value: String,
    number: Option<f64>,
}

impl Condition {
    /// Parses `FIELD<op>VALUE`; the operator is the first one in the text.
    pub fn parse(text: &str) -> Result<Condition, String> {
        const OPS: [(&str, Op); 7] = [
            ("!=", Op::Ne),
            (">=", Op::Gte),
            ("<=", Op::Lte),
            ("=", Op::Eq),
            ("~", Op::Glob),
            (">", Op::Gt),
            ("<", Op::Lt),
        ];
        let (at, token, op) = OPS
            .iter()
            .filter_map(|(token, op)| text.find(token).map(|at| (at, *token, *op)))
            .min_by_key(|(at, token, _)| (*at, std::cmp::Reverse(token.len())))
            .ok_or_else(|| format!("{text:?}: expected FIELD=VALUE, FIELD!=VALUE, FIELD~GLOB or FIELD>=N"))?;
        let field = text[..at].trim();
        if field.is_empty() {
            return Err(format!("{text:?}: no field before {token:?}"));
        }
        let value = text[at + token.len()..].to_string();
        let number = value.trim().parse::<f64>().ok();
        if matches!(op, Op::Gt | Op::Gte | Op::Lt | Op::Lte) && number.is_none() {
            return Err(format!("{text:?}: {value:?} is not a number"));
        }
        Ok(Condition {
            field: FieldPath::new(field),
            op,
            value: value.to_lowercase(),
            number,
        })
    }

    /// The field path it tests.
    pub fn field(&self) -> &FieldPath {
        &self.field
    }

    /// The comparison.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The value (or glob pattern) compared against, lower-cased.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The value as a number, for `>`, `>=`, `<` and `<=`.
    pub fn number(&self) -> Option<f64> {
        self.number
    }

    /// Whether `record` satisfies the condition.
    pub fn matches(&self, record: &Record<'_>) -> bool {
        let any = |test: &dyn Fn(&str, Option<f64>) -> bool| {
            record.visit(&self.field, &mut |value| {
                let number = value.number();
                value.text().is_some_and(|text| test(&text.to_lowercase(), number))
            })
        };
        match self.op {
            Op::Eq => any(&|text, _| text == self.value),
            Op::Ne => !any(&|text, _| text == self.value),
            Op::Glob => any(&|text, _| glob(&self.value, text)),
            Op::Gt => any(&|_, n| n.zip(self.number).is_some_and(|(n, limit)| n > limit)),
            Op::Gte => any(&|_, n| n.zip(self.number).is_some_and(|(n, limit)| n >= limit)),
            Op::Lt => any(&|_, n| n.zip(self.number).is_some_and(|(n, limit)| n < limit)),
            Op::Lte => any(&|_, n| n.zip(self.number).is_some_and(|(n, limit)| n <= limit)),
        }
    }
}

/// `*` matches any run of characters, `?` any one. Linear-time backtracking on the last `*`.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((star_p, star_t)) = star {
            pi = star_p + 1;
            ti = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The first text value of `path` in `record`, or `-`.
pub fn first_text(record: &Record<'_>, path: &FieldPath) -> String {
    first_value(record, path).unwrap_or_else(|| "-".to_string())
}

/// The first text value of `path` in `record`, if it has one.
pub fn first_value(record: &Record<'_>, path: &FieldPath) -> Option<String> {
    let mut out = None;
    record.visit(path, &mut |value| {
        out = value.text().map(|t| t.into_owned());
        out.is_some()
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"eventTime":"2024-03-01T12:00:00Z","eventName":"CreateUser","eventSource":"iam.amazonaws.com","sourceIPAddress":"203.0.113.66","userAgent":"python-requests/2.31","userIdentity":{"type":"IAMUser","accessKeyId":"AKIAX"},"requestParameters":{"userName":"Backup-Svc","tags":["a","b"]},"responseElements":{"user":{"createDate":1700000000}}}"#;

    fn holds(text: &str) -> bool {
        let record = Record::parse(EVENT).expect("record");
        Condition::parse(text).expect("condition").matches(&record)
    }

    #[test]
    fn operators() {
        assert!(holds("eventName=createuser"));
        assert!(!holds("eventName!=CreateUser"));
        assert!(holds("errorCode!=AccessDenied"), "missing is not equal");
        assert!(holds("userAgent~python*"));
        assert!(holds("requestParameters.userName~backup-*"));
        assert!(holds("requestParameters.tags=b"));
        assert!(holds("responseElements.user.createDate>=1700000000"));
        assert!(!holds("responseElements.user.createDate>1700000000"));
        assert!(holds("responseElements.user.createDate<1800000000"));
        assert!(holds("userIdentity.accessKeyId=AKIAX"));
    }

    #[test]
    fn parse_errors() {
        for bad in ["eventName", "=x", "a>=many"] {
            assert!(Condition::parse(bad).is_err(), "{bad}");
        }
        // The first operator wins: a value may hold operator characters.
        assert!(holds("userAgent~*requests/2.31*"));
        let c = Condition::parse("a=b=c").expect("ok");
        assert_eq!(c.value, "b=c");
    }

    #[test]
    fn globs() {
        assert!(glob("a*b*c", "axxbyyc") && !glob("a*b*c", "axxbyy") && glob("*", "") && glob("?", "x"));
        assert!(!glob(&"*a".repeat(40).replacen("*a", "*b", 1), &"a".repeat(3000)));
    }
}
