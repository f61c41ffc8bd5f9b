//! Hunting queries over the Athena table: the compiled rules in as few queries as fit Athena's
//! limit on query text, each pruned to the partitions (account, region, day) of the window.
//!
//! Athena bills the bytes it scans, and a JSON table is read whole by every query that touches a
//! partition, whatever its condition: so rules are batched (one `OR` of their conditions per
//! query), never run one query each. The rows are re-evaluated by the engine, which is what makes
//! the findings, correlations and reasons those of any other source.

use chrono::{DateTime, Duration, Utc};

use super::table::{COLUMNS, Shape};
use super::{Dialect, quote, where_clauses};
use crate::rule::Rule;

/// Why `rule` is left out of a hunt's SQL instead of making the hunt read every row, if it is:
/// it tests fields trailhound derives (`trailhound.*`: context, baselines), which no column
/// holds and most of which ask about every event, or CloudTrail Insights events'
/// `insightDetails`, which the table does not hold (Insights files lie beside the trail's, not
/// under the table's location). Such rules see the rows the other rules select.
pub fn kept_local(rule: &Rule) -> Option<&'static str> {
    let fields = rule.fields();
    if fields.iter().any(|f| f.starts_with("trailhound.")) {
        Some("it tests fields trailhound derives (trailhound.*: context, baselines)")
    } else if fields
        .iter()
        .any(|f| *f == "insightDetails" || f.starts_with("insightDetails."))
    {
        Some("it is about CloudTrail Insights events, which the table does not hold")
    } else {
        None
    }
}

/// Athena refuses query text over 262,144 bytes; stay well below it.
pub const MAX_QUERY_BYTES: usize = 200_000;

/// Partition columns of the table `trailhound athena table` creates.
pub const PARTITIONS: [&str; 3] = ["account", "region", "day"];

/// The 17 regions enabled by default in every account (the commercial partition), the regions a
/// table projects when none are given.
pub const DEFAULT_REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "sa-east-1",
];

/// What a hunt reads: a window and, optionally, some accounts and regions.
#[derive(Debug, Clone)]
pub struct Scope {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Empty: every account the table projects.
    pub accounts: Vec<String>,
    /// Empty: every region the table projects.
    pub regions: Vec<String>,
}

impl Scope {
    /// The day partitions that can hold events of the window: CloudTrail files are filed under
    /// the day they are delivered, up to about 15 minutes after the event, so the day after the
    /// window's end too.
    pub fn days(&self) -> Vec<String> {
        let first = self.since.date_naive();
        let last = (self.until + Duration::minutes(15)).date_naive();
        first
            .iter_days()
            .take_while(|day| *day <= last)
            .map(|day| day.format("%Y/%m/%d").to_string())
            .collect()
    }

    /// The partition and time condition of every query of the hunt.
    pub fn filter(&self) -> String {
        let days = self.days();
        let mut parts = vec![format!(
            "\"day\" BETWEEN {} AND {}",
            quote(days.first().map_or("", String::as_str)),
            quote(days.last().map_or("", String::as_str))
        )];
        let list = |items: &[String]| items.iter().map(|i| quote(i)).collect::<Vec<_>>().join(", ");
        if !self.accounts.is_empty() {
            parts.push(format!("\"account\" IN ({})", list(&self.accounts)));
        }
        if !self.regions.is_empty() {
            parts.push(format!("\"region\" IN ({})", list(&self.regions)));
        }
        // eventTime is ISO 8601 in UTC (`Z`): text order is time order.
        parts.push(format!(
            "eventtime >= {} AND eventtime < {}",
            quote(&self.since.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            quote(&self.until.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        ));
        parts.join(" AND ")
    }

    /// The account-region-day partitions the window reads: `None` when no accounts are named
    /// (how many the table holds is not known here). Regions not named are the 17 default ones.
    pub fn partitions(&self) -> Option<u64> {
        let accounts = self.accounts.len() as u64;
        let regions = if self.regions.is_empty() {
            DEFAULT_REGIONS.len()
        } else {
            self.regions.len()
        } as u64;
        (accounts > 0).then(|| accounts * regions * self.days().len() as u64)
    }
}

/// The select list: every column, structs as JSON text (Athena returns every value as text).
pub fn select_list(dialect: Dialect) -> String {
    COLUMNS
        .iter()
        .map(|(name, shape)| {
            let column = name.to_ascii_lowercase();
            match (shape, dialect) {
                (Shape::Struct(_) | Shape::Elements(_), Dialect::Athena) => {
                    format!("json_format(CAST({column} AS JSON)) AS {column}")
                }
                (Shape::Struct(_) | Shape::Elements(_), Dialect::Duckdb) => {
                    format!("CAST(to_json({column}) AS VARCHAR) AS {column}")
                }
                _ => column,
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One query: the rules it runs and its text.
#[derive(Debug, Clone)]
pub struct Query {
    pub rules: Vec<String>,
    pub sql: String,
}

/// The hunting queries for `compiled` rules (id, condition) over `table` in `scope`: as few as
/// fit [`MAX_QUERY_BYTES`]. A rule whose condition alone is too long gets a query of its own
/// and is reported by the caller if Athena refuses it.
pub fn queries(table: &str, scope: &Scope, compiled: &[(String, String)], dialect: Dialect) -> Vec<Query> {
    let head = format!(
        "SELECT {} FROM {table} WHERE {} AND (",
        select_list(dialect),
        scope.filter()
    );
    let mut out: Vec<Query> = Vec::new();
    let mut current: Option<Query> = None;
    for (id, condition) in compiled {
        let part = format!("({condition})");
        if let Some(query) = current.as_mut()
            && query.sql.len() + part.len() + 5 < MAX_QUERY_BYTES
        {
            query.sql.push_str(" OR ");
            query.sql.push_str(&part);
            query.rules.push(id.clone());
            continue;
        }
        if let Some(done) = current.take() {
            out.push(done);
        }
        current = Some(Query {
            rules: vec![id.clone()],
            sql: format!("{head}{part}"),
        });
    }
    out.extend(current);
    for query in &mut out {
        query.sql.push(')');
    }
    out
}

/// What a hunt on the table runs: the rules' conditions OR-ed into as few queries as fit, each
/// ordered by event time (the reader merges them into one stream in time order), or one query
/// for every row of the window when some rule has no SQL form. The engine evaluates the rows
/// again: the SQL only chooses which rows come back, never what is found.
#[derive(Debug, Clone)]
pub struct HuntPlan {
    pub queries: Vec<Query>,
    /// Detection rules whose condition the queries carry.
    pub compiled: usize,
    /// Why the queries return every row of the window's partitions, when they do.
    pub every_row: Option<String>,
}

impl HuntPlan {
    /// The bytes the plan is expected to scan at `mb_per_partition` (compressed MB of one
    /// account-region-day): each query reads every partition of the window whatever its
    /// condition. `None` when the partitions cannot be counted (see [`Scope::partitions`]).
    pub fn expected_scan(&self, scope: &Scope, mb_per_partition: f64) -> Option<f64> {
        scope
            .partitions()
            .map(|partitions| partitions as f64 * mb_per_partition * 1e6 * self.queries.len() as f64)
    }
}

/// Rules named in a reason: the first few.
const NAMED: usize = 3;

/// The hunt of `detections` (detection rules, filters attached, as a [`crate::RuleSet`] holds
/// them; correlations are evaluated over the rows of the rules they count) over `table` in
/// `scope`.
pub fn hunt<'r>(table: &str, scope: &Scope, detections: impl IntoIterator<Item = &'r Rule>) -> HuntPlan {
    let detections: Vec<&Rule> = detections
        .into_iter()
        .filter(|r| !r.is_filter() && !r.is_correlation())
        .collect();
    let compiled = where_clauses(detections.iter().copied(), Dialect::Athena);
    let every_row = if detections.is_empty() {
        Some("no detection rules to push down: every event of the window is read".to_string())
    } else if !compiled.refused.is_empty() {
        let named: Vec<String> = compiled
            .refused
            .iter()
            .take(NAMED)
            .map(|(rule, reason)| format!("{} ({reason})", rule.id))
            .collect();
        let more = compiled.refused.len().saturating_sub(NAMED);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        Some(format!(
            "{} rules have no SQL form and must see every record, so every row of the window is read: {}{more}; leave them out (--exclude-rule) to push the others down",
            compiled.refused.len(),
            named.join(", ")
        ))
    } else {
        None
    };
    let queries = if every_row.is_some() {
        vec![Query {
            rules: detections.iter().map(|r| r.id.clone()).collect(),
            sql: format!(
                "SELECT {} FROM {table} WHERE {}",
                select_list(Dialect::Athena),
                scope.filter()
            ),
        }]
    } else {
        let conditions: Vec<(String, String)> = compiled
            .rules
            .iter()
            .map(|(rule, condition)| (rule.id.clone(), condition.clone()))
            .collect();
        queries(table, scope, &conditions, Dialect::Athena)
    };
    HuntPlan {
        queries: queries
            .into_iter()
            .map(|mut query| {
                query.sql.push_str(" ORDER BY eventtime");
                query
            })
            .collect(),
        compiled: if every_row.is_some() { 0 } else { compiled.rules.len() },
        every_row,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope {
            since: "2026-11-20T00:00:00Z".parse().expect("time"),
            until: "2026-11-22T00:00:00Z".parse().expect("time"),
            accounts: vec!["111122223333".into()],
            regions: vec![],
        }
    }

    #[test]
    fn the_window_prunes_days_accounts_and_regions() {
        assert_eq!(scope().days(), ["2026/11/20", "2026/11/21", "2026/11/22"]);
        let filter = scope().filter();
        assert!(
            filter.contains("\"day\" BETWEEN '2026/11/20' AND '2026/11/22'"),
            "{filter}"
        );
        assert!(filter.contains("\"account\" IN ('111122223333')"), "{filter}");
        assert!(!filter.contains("region"), "{filter}");
        assert!(filter.contains("eventtime < '2026-11-22T00:00:00Z'"), "{filter}");
    }

    fn rules(text: &str) -> crate::RuleSet {
        let (rules, errors) = crate::parse_rules(&crate::RuleFile {
            path: "test.yml".into(),
            text: text.into(),
            tests: None,
        });
        assert!(errors.is_empty(), "{errors:?}");
        let (set, errors) = crate::RuleSet::new(rules);
        assert!(errors.is_empty(), "{errors:?}");
        set
    }

    #[test]
    fn a_hunt_pushes_compiled_rules_down_or_reads_every_row() {
        let set = rules(
            "title: t\nid: stop\nlogsource: {product: aws, service: cloudtrail}\nlevel: high\n\
             detection: {selection: {eventName: StopLogging}, condition: selection}\n",
        );
        let plan = hunt("trails.cloudtrail", &scope(), set.rules());
        assert_eq!(plan.every_row, None);
        assert_eq!((plan.queries.len(), plan.compiled), (1, 1));
        let sql = &plan.queries[0].sql;
        assert!(sql.starts_with("SELECT eventversion, "), "{sql}");
        assert!(sql.contains("FROM trails.cloudtrail WHERE \"day\" BETWEEN"), "{sql}");
        assert!(sql.contains("stoplogging"), "{sql}");
        assert!(sql.ends_with(") ORDER BY eventtime"), "{sql}");
        assert_eq!(scope().partitions(), Some(17 * 3));
        assert_eq!(plan.expected_scan(&scope(), 2.0), Some(17.0 * 3.0 * 2e6));

        let keyword = rules(
            "title: k\nid: keyword\nlogsource: {product: aws, service: cloudtrail}\nlevel: high\n\
             detection: {keywords: [mimikatz], condition: keywords}\n",
        );
        let plan = hunt("t", &scope(), keyword.rules());
        let reason = plan.every_row.expect("every row");
        assert!(reason.starts_with("1 rules have no SQL form"), "{reason}");
        assert!(reason.contains("keyword ("), "{reason}");
        assert_eq!(plan.queries.len(), 1);
        assert!(
            plan.queries[0]
                .sql
                .ends_with("eventtime < '2026-11-22T00:00:00Z' ORDER BY eventtime"),
            "{}",
            plan.queries[0].sql
        );
        let none = hunt("t", &scope(), []);
        assert!(none.every_row.is_some());
        let unnamed = Scope {
            accounts: vec![],
            ..scope()
        };
        assert_eq!(plan_scan(&unnamed), None);
    }

    fn plan_scan(scope: &Scope) -> Option<f64> {
        hunt("t", scope, []).expected_scan(scope, 1.0)
    }

    #[test]
    fn rules_are_batched_below_the_size_limit() {
        let big = "x".repeat(60_000);
        let compiled: Vec<(String, String)> = (0..7).map(|n| (format!("r{n}"), big.clone())).collect();
        let queries = queries("db.t", &scope(), &compiled, Dialect::Athena);
        assert_eq!(queries.len(), 3);
        assert_eq!(queries[0].rules, ["r0", "r1", "r2"]);
        assert!(
            queries
                .iter()
                .all(|q| q.sql.len() < MAX_QUERY_BYTES && q.sql.ends_with(')'))
        );
        assert!(
            queries[0]
                .sql
                .contains("json_format(CAST(useridentity AS JSON)) AS useridentity")
        );
    }
}
