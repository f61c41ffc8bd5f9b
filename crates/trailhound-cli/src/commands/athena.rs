//! `trailhound athena table | plan`: the CloudTrail table for Athena, and what a hunt on it would
//! run and scan. Both print; `athena table --create` also runs the statement in Athena, the one
//! write to the catalog trailhound makes (`hunt athena://` runs the queries).

use std::io::{self, Write};

use anyhow::{Context, Result, bail};
use trailhound_event::printable;
use trailhound_rules::Rule;
use trailhound_rules::sql::plan::{self, Scope};
use trailhound_rules::sql::{self, Dialect, table::Definition};

use trailhound_source::decimal_size;

use crate::args::{AthenaCommand, AthenaPlanArgs, AthenaTableArgs};
use crate::commands::Outcome;
use crate::process::Process;
use crate::settings::rule_selection;
use crate::write::finish;

pub fn run(process: &Process, command: &AthenaCommand) -> Result<Outcome> {
    match command {
        AthenaCommand::Table(args) => table(process, args),
        AthenaCommand::Plan(args) => plan(args),
    }
}

fn regions(given: &[String]) -> Vec<String> {
    if given.is_empty() {
        plan::DEFAULT_REGIONS.iter().map(|r| r.to_string()).collect()
    } else {
        given.to_vec()
    }
}

/// Names and values that go into the statement as they are: refused unless plainly safe.
fn check(what: &str, value: &str, extra: &[char]) -> Result<()> {
    if value.is_empty() || !value.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(&c)) {
        bail!("{what} {:?}: unexpected characters", printable(value));
    }
    Ok(())
}

fn table(process: &Process, args: &AthenaTableArgs) -> Result<Outcome> {
    let Some(bucket) = args.bucket.strip_prefix("s3://") else {
        bail!(
            "the bucket must be given as s3://BUCKET[/PREFIX], not {:?}",
            printable(&args.bucket)
        );
    };
    check("bucket", bucket.trim_end_matches('/'), &['-', '.', '/', '_'])?;
    check("--table", &args.table, &['_', '.'])?;
    if let Some(org) = &args.organization {
        check("--organization", org, &['-'])?;
    }
    for account in &args.accounts {
        if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
            bail!("--accounts: {:?} is not a 12-digit account id", printable(account));
        }
    }
    let regions = regions(&args.regions);
    for region in &regions {
        check("--regions", region, &['-'])?;
    }
    if chrono::NaiveDate::parse_from_str(&args.first_day, "%Y/%m/%d").is_err() {
        bail!("--first-day {:?} is not YYYY/MM/DD", printable(&args.first_day));
    }
    let definition = Definition {
        name: args.table.clone(),
        bucket: args.bucket.clone(),
        organization: args.organization.clone(),
        accounts: args.accounts.clone(),
        regions,
        first_day: args.first_day.clone(),
    };
    let statement = definition.create_statement();
    {
        let mut out = io::BufWriter::new(io::stdout().lock());
        let result = writeln!(out, "{statement};");
        finish(result, &mut out)?;
    }
    if args.create {
        create(process, args, &statement)?;
    }
    Ok(Outcome::Clean)
}

/// Runs the CREATE statement in Athena and waits for it.
#[cfg(feature = "aws")]
fn create(process: &Process, args: &AthenaTableArgs, statement: &str) -> Result<()> {
    if let Some(workgroup) = &args.workgroup {
        check("--workgroup", workgroup, &['_', '-', '.'])?;
    }
    if let Some(output) = &args.athena_output
        && !output.starts_with("s3://")
    {
        bail!(
            "--athena-output must be s3://BUCKET/PREFIX/, not {:?}",
            printable(output)
        );
    }
    let (database, table) = args.table.split_once('.').unwrap_or(("default", args.table.as_str()));
    let target = trailhound_source::AthenaTable {
        workgroup: args.workgroup.clone(),
        database: database.to_string(),
        table: table.to_string(),
    };
    let aws = process.aws(&crate::settings::AwsOptions::resolve(&args.aws))?;
    let runtime = process.runtime()?;
    let query =
        trailhound_source::aws::athena::execute(aws, runtime.handle(), &target, statement, args.athena_output.clone())
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("creating {}", printable(&args.table)))?;
    // The summary of what was done, on stderr (stdout holds the statement).
    let _ = writeln!(
        io::stderr(),
        "created table {} in the workgroup {} (Athena query {})",
        printable(&target.qualified()),
        printable(args.workgroup.as_deref().unwrap_or("primary")),
        query
    );
    Ok(())
}

#[cfg(not(feature = "aws"))]
fn create(_: &Process, _: &AthenaTableArgs, _: &str) -> Result<()> {
    bail!("--create: this trailhound was built without AWS support (the `aws` feature)")
}

fn plan(args: &AthenaPlanArgs) -> Result<Outcome> {
    let now = chrono::Utc::now();
    let since = trailhound_source::parse_bound(&args.since, now).context("--since")?;
    let until = match &args.until {
        Some(text) => trailhound_source::parse_bound(text, now).context("--until")?,
        None => now,
    };
    if since >= until {
        bail!("--since must be before --until");
    }
    if !(args.mb_per_partition.is_finite() && args.mb_per_partition >= 0.0) {
        bail!("--mb-per-partition must be a size in MB");
    }
    let regions = regions(&args.regions);
    let accounts = if args.accounts.is_empty() {
        args.account_count.unwrap_or(1)
    } else {
        args.accounts.len() as u64
    };
    let scope = Scope {
        since,
        until,
        accounts: args.accounts.clone(),
        regions: if args.regions.is_empty() {
            Vec::new()
        } else {
            regions.clone()
        },
    };
    let (set, errors) = rule_selection(&args.rules)?.load()?;
    for error in &errors {
        tracing::warn!("{}", printable(&error.to_string()));
    }
    let detections: Vec<&Rule> = set
        .rules()
        .iter()
        .filter(|r| !r.is_filter() && !r.is_correlation())
        .collect();
    let compiled = sql::where_clauses(detections.iter().copied(), Dialect::Athena);
    let conditions: Vec<(String, String)> = compiled.rules.iter().map(|(r, c)| (r.id.clone(), c.clone())).collect();
    let queries = plan::queries(&args.table, &scope, &conditions, Dialect::Athena);
    let days = scope.days().len() as u64;
    let partitions = accounts * regions.len() as u64 * days;
    let per_query = partitions as f64 * args.mb_per_partition * 1e6;
    let total = per_query * queries.len() as f64;
    let cost = total / 1e12 * args.price_per_tb;

    let mut out = io::BufWriter::new(io::stdout().lock());
    let result = (|| -> io::Result<()> {
        writeln!(
            out,
            "window           {} to {} ({days} day partitions, one day after the window for late delivery)",
            since.format("%Y-%m-%d %H:%M"),
            until.format("%Y-%m-%d %H:%M")
        )?;
        writeln!(
            out,
            "partitions       {accounts} accounts x {} regions x {days} days = {partitions}",
            regions.len()
        )?;
        writeln!(
            out,
            "rules            {} detection rules compiled into {} queries ({} left to the local engine), {} correlations evaluated locally",
            compiled.rules.len(),
            queries.len(),
            compiled.refused.len(),
            set.rules().iter().filter(|r| r.is_correlation()).count()
        )?;
        writeln!(
            out,
            "scan per query   {} (at {} MB per account-region-day; each query reads every partition of the window)",
            decimal_size(per_query),
            args.mb_per_partition
        )?;
        writeln!(out, "expected scan    {} in all", decimal_size(total))?;
        writeln!(
            out,
            "expected cost    ${cost:.2} (at ${} per TB scanned)",
            args.price_per_tb
        )?;
        for (n, query) in queries.iter().enumerate() {
            writeln!(
                out,
                "query {}          {} rules, {} bytes of SQL",
                n + 1,
                query.rules.len(),
                query.sql.len()
            )?;
            if args.sql {
                writeln!(out, "{};", query.sql)?;
            }
        }
        for (rule, reason) in &compiled.refused {
            writeln!(
                out,
                "not compiled     {}: {}",
                printable(&rule.id),
                printable(&reason.0)
            )?;
        }
        // Rules on the derived `trailhound.*` fields and on Insights events are left out of a
        // hunt's SQL (they see the rows the others select); any other rule without SQL makes it
        // read every row.
        let derived = |rule: &Rule| trailhound_rules::sql::plan::kept_local(rule).is_some();
        if compiled.refused.iter().any(|(rule, _)| !derived(rule)) {
            writeln!(
                out,
                "hunt athena://   with the rules not compiled, `trailhound hunt athena://...` runs one query for every row of the window (same scan, every row returned); leave them out (--exclude-rule) to push the others down"
            )?;
        } else if !compiled.refused.is_empty() {
            writeln!(
                out,
                "hunt athena://   the rules not compiled test fields the table has no columns for (trailhound.*, insightDetails): a hunt leaves them out of the SQL, and they see the rows the other rules select"
            )?;
        }
        Ok(())
    })();
    finish(result, &mut out)?;
    Ok(Outcome::Clean)
}
