//! Command-line arguments as clap sees them. Nothing outside this file and settings.rs touches
//! clap types; commands receive resolved settings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "trailhound",
    version,
    about = "Hunt for indicators of compromise in AWS CloudTrail logs with Sigma rules"
)]
#[command(
    after_help = "Exit codes: 0 ok; 1 findings at or above --fail-on (or a failing rule test); 2 error.\nResults go to stdout, progress and diagnostics to stderr. NO_COLOR turns colour off."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More diagnostics on stderr (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr: no summary, no progress bar, no warnings.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the detection rules over CloudTrail events and print the findings.
    Hunt(Box<HuntArgs>),
    /// List, show, test and validate rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Write the self-contained HTML report of a hunt (like `hunt --format html`; -o defaults to
    /// report.html).
    Report(Box<HuntArgs>),
    /// The events themselves: filter, pick fields, count by fields.
    Events(Box<EventsArgs>),
    /// Everything one access key, principal or address did, in time order, following the
    /// temporary credentials it obtained; findings marked inline.
    Timeline(Box<TimelineArgs>),
    /// Who uses the console, the most active principals, regions, error rates, access keys.
    Summary(Box<SummaryArgs>),
    /// Findings remembered in the case store: list them, acknowledge or explain them.
    #[command(subcommand)]
    Findings(FindingsCommand),
    /// Inventory of an AWS account: collect snapshots, show them, diff two, audit one.
    #[command(subcommand)]
    Inventory(InventoryCommand),
    /// Hunting on Amazon Athena: the CloudTrail table to create, and the plan of a hunt.
    #[command(subcommand)]
    Athena(AthenaCommand),
    /// What events are enriched with: AWS's address ranges, GeoIP databases, baselines.
    #[command(subcommand)]
    Context(ContextCommand),
    /// Check a trail's bucket (s3://) or a copy of it against its digest files: log files
    /// changed, deleted or added after delivery, digests changed, missing or not signed by
    /// CloudTrail, times without digests.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bucket, s3://BUCKET[/PREFIX] (digests' signatures checked too), or folders, files
    /// or archives (zip, tar, tar.gz) holding a copy: log files and the `CloudTrail-Digest/`
    /// folders.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// CloudTrail's public keys as `aws cloudtrail list-public-keys` prints them (repeatable:
    /// one file a region), instead of asking CloudTrail (ListPublicKeys) for them.
    #[arg(long, value_name = "FILE")]
    pub public_keys: Vec<PathBuf>,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Only the digests of hours at or after this time, and the log files delivered then: a
    /// duration back from now (90m, 24h, 7d, 2w) or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Only the digests of hours before this time, and the log files delivered before it.
    #[arg(long)]
    pub until: Option<String>,
    /// table (default) or json.
    #[arg(long, short = 'f', value_enum, default_value_t = TableOrJson::Table)]
    pub format: TableOrJson,
    /// Write the result to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ContextCommand {
    /// Install AWS's ip-ranges.json (downloaded from https://ip-ranges.amazonaws.com/ip-ranges.json)
    /// into the data directory, after checking it; hunts then use it by default.
    Ranges {
        /// The file (- for stdin).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// What a hunt would use: the AWS ranges and their age, the GeoIP databases, the store's
    /// baselines.
    Show {
        #[command(flatten)]
        context: ContextArgs,
        /// The case store whose baselines to describe [default: the user's store].
        #[arg(long, value_name = "DB")]
        store: Option<PathBuf>,
    },
}

#[derive(Debug, Args, Clone)]
pub struct HuntArgs {
    #[command(flatten)]
    pub scan: ScanArgs,
    #[command(flatten)]
    pub rules: RuleSelection,
    /// Output format [default: table on a terminal, else jsonl; with -o, from the file extension].
    #[arg(long, short = 'f', value_enum, ignore_case = true)]
    pub format: Option<FindingFormat>,
    /// Write findings to this file instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Include the whole CloudTrail record in each finding (json, jsonl, csv).
    #[arg(long)]
    pub with_event: bool,
    /// Known reasons (reasons.yml): findings an entry matches are marked explained and hidden.
    #[arg(long, value_name = "FILE")]
    pub reasons: Option<PathBuf>,
    /// Also print findings that a known reason explains.
    #[arg(long)]
    pub show_explained: bool,
    /// Fold findings of one rule by one principal within a time bucket (default 1h) into one,
    /// with a count and the first and last time.
    #[arg(long, value_name = "BUCKET", num_args = 0..=1, default_missing_value = "1h")]
    pub group: Option<String>,
    /// Remember findings in the case store (SQLite; default in the user's data directory).
    #[arg(long, value_name = "DB", num_args = 0..=1, default_missing_value = "")]
    pub store: Option<PathBuf>,
    /// Print only findings no earlier run stored (implies --store).
    #[arg(long)]
    pub new_only: bool,
    /// s3:// and lookup: sources: read only what arrived since the last run with this store
    /// (implies --store; the store remembers the last object key per account, region and day,
    /// and the last event time per LookupEvents region).
    #[arg(long)]
    pub since_last_run: bool,
    /// Exit with status 1 when a finding is at or above this level.
    #[arg(long, value_name = "LEVEL")]
    pub fail_on: Option<String>,
    /// Treat any bad file, record or rule as an error (exit 2) instead of a warning.
    #[arg(long)]
    pub strict: bool,
    /// Memory correlations may hold, in MB (the oldest groups are forgotten past it, and
    /// counted in a warning).
    #[arg(long, default_value_t = 2048, value_name = "MB")]
    pub correlation_memory: usize,
    /// Widest table cell before values are cut (0: never cut).
    #[arg(long, default_value_t = 48)]
    pub max_width: usize,
    /// Send the findings (unexplained, at or above --alert-min-level) to slack, webhook or sns
    /// (repeatable). slack posts to TRAILHOUND_SLACK_WEBHOOK_URL, webhook to
    /// TRAILHOUND_WEBHOOK_URL (each a URL, secretsmanager:SECRET_ID or ssm:PARAMETER), sns
    /// publishes to TRAILHOUND_SNS_TOPIC_ARN. With --new-only, only new findings alert.
    #[arg(long = "alert", value_enum)]
    pub alerts: Vec<AlertArg>,
    /// Lowest level that alerts.
    #[arg(long, default_value = "high", value_name = "LEVEL")]
    pub alert_min_level: String,
}

/// The formats findings are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FindingFormat {
    /// Aligned columns for a person at a terminal.
    Table,
    /// One JSON array.
    Json,
    /// One JSON object a line.
    #[value(alias = "ndjson")]
    Jsonl,
    Csv,
    /// A self-contained HTML report.
    Html,
    /// OCSF Detection Findings (class 2004, schema 1.5.0), one a line.
    Ocsf,
}

impl From<FindingFormat> for trailhound_output::Format {
    fn from(format: FindingFormat) -> trailhound_output::Format {
        use trailhound_output::Format;
        match format {
            FindingFormat::Table => Format::Table,
            FindingFormat::Json => Format::Json,
            FindingFormat::Jsonl => Format::Jsonl,
            FindingFormat::Csv => Format::Csv,
            FindingFormat::Html => Format::Html,
            FindingFormat::Ocsf => Format::Ocsf,
        }
    }
}

/// Rows (events, timelines, inventory tables, audit findings) for people or tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RowsFormat {
    Table,
    Json,
    #[value(alias = "ndjson")]
    Jsonl,
    Csv,
}

impl From<RowsFormat> for trailhound_output::RowFormat {
    fn from(format: RowsFormat) -> trailhound_output::RowFormat {
        use trailhound_output::RowFormat;
        match format {
            RowsFormat::Table => RowFormat::Table,
            RowsFormat::Json => RowFormat::Json,
            RowsFormat::Jsonl => RowFormat::Jsonl,
            RowsFormat::Csv => RowFormat::Csv,
        }
    }
}

impl From<RowsFormat> for trailhound_output::Format {
    fn from(format: RowsFormat) -> trailhound_output::Format {
        use trailhound_output::Format;
        match format {
            RowsFormat::Table => Format::Table,
            RowsFormat::Json => Format::Json,
            RowsFormat::Jsonl => Format::Jsonl,
            RowsFormat::Csv => Format::Csv,
        }
    }
}

/// A report (summary, rule list) as a table or one JSON document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TableOrJson {
    Table,
    Json,
}

/// Stored findings: a table, one JSON array or JSON lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoredFormat {
    Table,
    Json,
    #[value(alias = "ndjson")]
    Jsonl,
}

/// An inventory diff: the `+ - ~` listing, or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    #[value(alias = "table")]
    Text,
    Json,
}

/// Where `--alert` sends findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AlertArg {
    Slack,
    Webhook,
    Sns,
    /// AWS Security Hub (BatchImportFindings, ASFF; the account's own product unless
    /// TRAILHOUND_SECURITYHUB_PRODUCT_ARN names one).
    Securityhub,
}

impl From<AlertArg> for trailhound_alert::AlertKind {
    fn from(kind: AlertArg) -> trailhound_alert::AlertKind {
        use trailhound_alert::AlertKind;
        match kind {
            AlertArg::Slack => AlertKind::Slack,
            AlertArg::Webhook => AlertKind::Webhook,
            AlertArg::Sns => AlertKind::Sns,
            AlertArg::Securityhub => AlertKind::SecurityHub,
        }
    }
}

/// Where events come from and which ones; shared by hunt, events, timeline and summary.
#[derive(Debug, Args, Clone)]
pub struct ScanArgs {
    /// Files or folders of CloudTrail logs (.json, .json.gz, envelopes, arrays, NDJSON), - for
    /// stdin, s3://BUCKET[/PREFIX] for a trail bucket (only the days in the window are listed),
    /// lookup:[all|REGION,...] for CloudTrail LookupEvents (management events of the last 90 days
    /// only, at 2 requests/s per region), or athena://[WORKGROUP/]DATABASE.TABLE for the
    /// CloudTrail table in Amazon Athena (`trailhound athena table`; needs --since).
    #[arg(value_name = "SOURCE", required = true)]
    pub sources: Vec<String>,
    /// Only events at or after this time: a duration back from now (90m, 24h, 7d, 2w) or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Only events before this time: a duration back from now or an RFC 3339 time.
    #[arg(long)]
    pub until: Option<String>,
    /// How long after its events CloudTrail may deliver a file; files named outside the window by
    /// more than this are not opened.
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub delivery_lag: String,
    /// Most JSON held at once, in MB once inflated: one top-level value (an NDJSON line, an
    /// envelope) of a streamed input (stdin, files over 32 MB or over this, gzip files that
    /// inflate past 64 MB or past this).
    #[arg(long, default_value_t = 1024, value_name = "MB")]
    pub max_file_size: u64,
    /// Worker threads [default: all cores].
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
    /// s3:// and athena:// sources: only these accounts (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub accounts: Vec<String>,
    /// s3:// and athena:// sources: only these regions (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "REGION,...")]
    pub regions: Vec<String>,
    /// s3:// sources: objects fetched at once.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub concurrency: usize,
    /// athena:// sources: where Athena writes query results [default: the workgroup's
    /// configured location].
    #[arg(long, value_name = "s3://BUCKET/PREFIX/")]
    pub athena_output: Option<String>,
    /// athena:// sources: refuse to start queries expected to scan more than this many GB
    /// (the expected scan needs --accounts; see --mb-per-partition).
    #[arg(long, value_name = "GB")]
    pub max_scan_gb: Option<f64>,
    /// athena:// sources: average compressed size of one account-region-day, in MB, for the
    /// expected scan [default: 1].
    #[arg(long, value_name = "MB")]
    pub mb_per_partition: Option<f64>,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub context: ContextArgs,
}

/// What events are enriched with (the `trailhound.` fields); shared by hunt, events, timeline
/// and summary.
#[derive(Debug, Args, Clone, Default)]
pub struct ContextArgs {
    /// MaxMind-format database (GeoLite2-ASN, GeoLite2-Country or -City, IPinfo's free
    /// databases) for ASN, organisation and country of source addresses (repeatable).
    #[arg(long, value_name = "MMDB", env = "TRAILHOUND_GEOIP", value_delimiter = ',')]
    pub geoip: Vec<PathBuf>,
    /// AWS's ip-ranges.json [default: the copy `trailhound context ranges` installed in the
    /// data directory, if any].
    #[arg(long, value_name = "FILE", env = "TRAILHOUND_AWS_RANGES")]
    pub aws_ranges: Option<PathBuf>,
    /// Do not derive the trailhound.* fields (no AWS ranges, GeoIP, principal kinds or
    /// baselines); AWS's own calls then reach every rule.
    #[arg(long)]
    pub no_context: bool,
    /// Baselines: a network, country, service or region not seen in this long is new again.
    #[arg(long, default_value = "30d", value_name = "DURATION")]
    pub baseline_lookback: String,
    /// Baselines judge nothing until the store holds this much history.
    #[arg(long, default_value = "7d", value_name = "DURATION")]
    pub baseline_history: String,
}

/// How to reach AWS; shared by every command that does.
#[derive(Debug, Args, Clone, Default)]
pub struct AwsArgs {
    /// AWS profile from ~/.aws/config (also: AWS_PROFILE).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// AWS region for requests that need one [default: from the profile or AWS_REGION].
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Assume this IAM role first (an audit role in another account).
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,
    /// External id for --role-arn.
    #[arg(long, value_name = "ID", requires = "role_arn")]
    pub external_id: Option<String>,
    /// Send every AWS request to this endpoint (an emulator, a VPC endpoint).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
}

/// Which rules to run; shared by hunt and the rules commands.
#[derive(Debug, Args, Clone)]
pub struct RuleSelection {
    /// Add Sigma rules from a file or folder (repeatable).
    #[arg(long = "rules", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Leave out the built-in rule pack.
    #[arg(long)]
    pub no_builtin: bool,
    /// Only rules at or above this level: informational, low, medium, high, critical.
    #[arg(long, value_name = "LEVEL")]
    pub min_level: Option<String>,
    /// Only these rules, by id (repeatable).
    #[arg(long = "rule", value_name = "ID")]
    pub only: Vec<String>,
    /// Leave out these rules, by id (repeatable).
    #[arg(long = "exclude-rule", value_name = "ID")]
    pub exclude: Vec<String>,
    /// Only rules with this tag, e.g. attack.persistence or attack.t1098 (repeatable: any of them).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Values for the %name% placeholders of `expand` modifiers: a YAML map of names to lists.
    #[arg(long, value_name = "FILE")]
    pub placeholders: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List the loaded rules: id, level, title, tags.
    List {
        #[command(flatten)]
        rules: RuleSelection,
        /// table or json.
        #[arg(long, short = 'f', value_enum, default_value_t = TableOrJson::Table)]
        format: TableOrJson,
    },
    /// Print a rule and its test events.
    Show {
        id: String,
        #[command(flatten)]
        rules: RuleSelection,
    },
    /// Run rules' test events (the built-in pack, or the rules under PATH); exit 1 on a failure
    /// or on a rule without both a matching and a near-miss case.
    Test { path: Option<PathBuf> },
    /// The rules' ATT&CK coverage: per tactic, each technique and the rules under it.
    Coverage {
        #[command(flatten)]
        rules: RuleSelection,
        /// table or json.
        #[arg(long, short = 'f', value_enum, default_value_t = TableOrJson::Table)]
        format: TableOrJson,
    },
    /// Parse and compile the rules under PATH; report every error with its file and line.
    Validate { path: PathBuf },
    /// Compile rules to SQL over the Athena CloudTrail table (`trailhound athena table`); rules
    /// with no exact SQL form are listed with the reason (to stderr) and left to the local engine.
    Sql(Box<RulesSqlArgs>),
}

/// SQL dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SqlDialect {
    /// Amazon Athena (engine version 3, Trino).
    Athena,
    /// DuckDB.
    Duckdb,
}

#[derive(Debug, Args, Clone)]
pub struct RulesSqlArgs {
    /// Only these rules, by id (all detection rules without).
    pub ids: Vec<String>,
    #[arg(long, value_enum, default_value_t = SqlDialect::Athena)]
    pub dialect: SqlDialect,
    /// The table the queries read.
    #[arg(long, default_value = "cloudtrail")]
    pub table: String,
    #[command(flatten)]
    pub rules: RuleSelection,
}

#[derive(Debug, Subcommand)]
pub enum AthenaCommand {
    /// Print the CREATE TABLE statement of a trail bucket's CloudTrail table, with partition
    /// projection on account, region and day (AWS's documented form), for you to run in Athena.
    Table(Box<AthenaTableArgs>),
    /// The queries, partitions and expected scan (bytes, cost) of a hunt on Athena over a window.
    Plan(Box<AthenaPlanArgs>),
}

#[derive(Debug, Args, Clone)]
pub struct AthenaTableArgs {
    /// The trail bucket: s3://BUCKET[/PREFIX] (the folder holding AWSLogs/).
    pub bucket: String,
    /// DATABASE.TABLE (or TABLE) to create.
    #[arg(long, default_value = "cloudtrail")]
    pub table: String,
    /// The organization id of an organization trail (o-...): AWSLogs/o-.../ACCOUNT/...
    #[arg(long, value_name = "ORG_ID")]
    pub organization: Option<String>,
    /// Accounts to project (comma-separated); without, the account is `injected`: each query
    /// names its accounts (hunt with --accounts).
    #[arg(long, value_delimiter = ',')]
    pub accounts: Vec<String>,
    /// Regions to project (comma-separated) [default: the 17 regions enabled by default].
    #[arg(long, value_delimiter = ',')]
    pub regions: Vec<String>,
    /// The first day of logs, YYYY/MM/DD.
    #[arg(long, default_value = "2020/01/01")]
    pub first_day: String,
    /// Also run the statement in Athena: trailhound's one write to the catalog (glue:CreateTable,
    /// its own statement in deploy/iam-policy-athena.json). The database must exist.
    #[arg(long)]
    pub create: bool,
    /// --create: the workgroup to run it in [default: the caller's default, primary].
    #[arg(long, value_name = "NAME", requires = "create")]
    pub workgroup: Option<String>,
    /// --create: where Athena writes the statement's result [default: the workgroup's
    /// configured location].
    #[arg(long, value_name = "s3://BUCKET/PREFIX/", requires = "create")]
    pub athena_output: Option<String>,
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Args, Clone)]
pub struct AthenaPlanArgs {
    /// DATABASE.TABLE the queries read.
    #[arg(long, default_value = "cloudtrail")]
    pub table: String,
    /// Start of the window: a duration back from now (90d, 24h) or a date/time.
    #[arg(long, default_value = "90d")]
    pub since: String,
    /// End of the window [default: now].
    #[arg(long)]
    pub until: Option<String>,
    /// Only these accounts (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub accounts: Vec<String>,
    /// How many accounts the table holds, when --accounts does not list them [default: 1].
    #[arg(long, value_name = "N")]
    pub account_count: Option<u64>,
    /// Only these regions (comma-separated) [default: the 17 regions enabled by default].
    #[arg(long, value_delimiter = ',')]
    pub regions: Vec<String>,
    /// Average compressed size of one account-region-day of logs, in MB (S3 Storage Lens or
    /// `aws s3 ls --summarize --recursive` on a few day folders tell yours).
    #[arg(long, value_name = "MB", default_value_t = 1.0)]
    pub mb_per_partition: f64,
    /// Athena's price per TB scanned, in USD.
    #[arg(long, value_name = "USD", default_value_t = 5.0)]
    pub price_per_tb: f64,
    /// Also print each query's SQL.
    #[arg(long)]
    pub sql: bool,
    #[command(flatten)]
    pub rules: RuleSelection,
}

#[derive(Debug, Subcommand)]
pub enum FindingsCommand {
    /// List stored findings.
    List {
        #[command(flatten)]
        store: StoreArg,
        /// new, acked or explained.
        #[arg(long)]
        status: Option<String>,
        /// Only this rule.
        #[arg(long)]
        rule: Option<String>,
        /// Only events at or after this time (duration back from now or RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// table (default on a terminal), json or jsonl.
        #[arg(long, short = 'f', value_enum)]
        format: Option<StoredFormat>,
    },
    /// Mark findings as seen and dealt with.
    Ack {
        #[command(flatten)]
        store: StoreArg,
        #[arg(required = true)]
        ids: Vec<i64>,
    },
    /// Mark findings as explained by a known reason; they never come back as new.
    Explain {
        #[command(flatten)]
        store: StoreArg,
        #[arg(required = true)]
        ids: Vec<i64>,
        #[arg(long, required = true)]
        reason: String,
        #[arg(long)]
        ticket: Option<String>,
    },
    /// Put findings back to new.
    Reopen {
        #[command(flatten)]
        store: StoreArg,
        #[arg(required = true)]
        ids: Vec<i64>,
    },
}

#[derive(Debug, Args, Clone)]
pub struct StoreArg {
    /// The case store [default: trailhound.db in the user's data directory].
    #[arg(long, value_name = "DB")]
    pub store: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub scan: ScanArgs,
    /// Keep events where FIELD=VALUE, FIELD!=VALUE, FIELD~GLOB or FIELD>=N (>, <, <=) holds;
    /// repeatable, all must hold. Text comparisons ignore case.
    #[arg(long = "where", value_name = "CONDITION")]
    pub conditions: Vec<String>,
    /// Keep events with this eventName (repeatable: any of them).
    #[arg(long)]
    pub name: Vec<String>,
    /// Columns to print (dotted paths, comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub fields: Vec<String>,
    /// Count events by these fields (comma-separated): top groups with count, first and last seen.
    #[arg(long, value_delimiter = ',')]
    pub count_by: Vec<String>,
    /// How many groups --count-by prints (0: all).
    #[arg(long, default_value_t = 25)]
    pub top: usize,
    /// table (default on a terminal), json, jsonl (default otherwise), csv, or ocsf (each
    /// record as an OCSF API Activity, one a line).
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<EventsFormat>,
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[arg(long, default_value_t = 60)]
    pub max_width: usize,
}

/// `events` formats: the row formats, plus the records as OCSF API Activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EventsFormat {
    Table,
    Json,
    #[value(alias = "ndjson")]
    Jsonl,
    Csv,
    /// Each record as an OCSF API Activity (class 6003, schema 1.5.0), one a line.
    Ocsf,
}

impl From<EventsFormat> for trailhound_output::RowFormat {
    fn from(format: EventsFormat) -> trailhound_output::RowFormat {
        use trailhound_output::RowFormat;
        match format {
            EventsFormat::Table => RowFormat::Table,
            EventsFormat::Json => RowFormat::Json,
            EventsFormat::Jsonl | EventsFormat::Ocsf => RowFormat::Jsonl,
            EventsFormat::Csv => RowFormat::Csv,
        }
    }
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("who").required(true).args(["access_key", "principal", "ip"]))]
pub struct TimelineArgs {
    #[command(flatten)]
    pub scan: ScanArgs,
    /// The access key id to follow.
    #[arg(long)]
    pub access_key: Option<String>,
    /// The principal ARN to follow (userIdentity.arn).
    #[arg(long)]
    pub principal: Option<String>,
    /// The source IP address to follow.
    #[arg(long)]
    pub ip: Option<String>,
    /// Do not follow temporary credentials obtained by the identity.
    #[arg(long)]
    pub no_follow: bool,
    #[command(flatten)]
    pub rules: RuleSelection,
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<RowsFormat>,
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[arg(long, default_value_t = 48)]
    pub max_width: usize,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    #[command(flatten)]
    pub scan: ScanArgs,
    /// Rows per section (0: all).
    #[arg(long, default_value_t = 15)]
    pub top: usize,
    /// table (default) or json.
    #[arg(long, short = 'f', value_enum, default_value_t = TableOrJson::Table)]
    pub format: TableOrJson,
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// Collect a snapshot of the account: IAM, EC2 in each region, S3, CloudTrail, with
    /// read-only calls (deploy/iam-policy.json). A call that fails is recorded in the snapshot.
    Collect(Box<InventoryCollectArgs>),
    /// Print a snapshot's items as a table, or how many items each table has.
    Show(InventoryShowArgs),
    /// What was added, removed or changed between two snapshots.
    Diff(InventoryDiffArgs),
    /// Findings from one snapshot: items no known reason explains, and risky settings.
    Audit(Box<InventoryAuditArgs>),
}

#[derive(Debug, Args)]
pub struct InventoryCollectArgs {
    /// Regions for the EC2 and CloudTrail collectors: all (every region enabled for the
    /// account) or a comma-separated list.
    #[arg(long, default_value = "all", value_name = "all|REGION,...")]
    pub regions: String,
    /// Write the snapshot to this JSON file (- for stdout) [default: stdout without --store].
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Save the snapshot in the case store (SQLite; default in the user's data directory).
    #[arg(long, value_name = "DB", num_args = 0..=1, default_missing_value = "")]
    pub store: Option<PathBuf>,
    /// AWS calls in flight at once, across services and regions.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub concurrency: usize,
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Args)]
pub struct InventoryShowArgs {
    /// users, keys, groups, roles, policies, vpcs, subnets, gateways, route-tables,
    /// network-acls, security-groups, peering, flow-logs, buckets, trails or account
    /// [default: a count per table].
    #[arg(value_name = "TABLE")]
    pub table: Option<String>,
    /// The snapshot: a JSON file or a store id [default: the latest in the store].
    #[arg(long, value_name = "FILE|ID")]
    pub from: Option<String>,
    /// The case store [default: trailhound.db in the user's data directory].
    #[arg(long, value_name = "DB", num_args = 0..=1, default_missing_value = "")]
    pub store: Option<PathBuf>,
    /// table, json or csv.
    #[arg(long, short = 'f', value_enum, default_value_t = RowsFormat::Table)]
    pub format: RowsFormat,
    /// Widest table cell before values are cut (0: never cut).
    #[arg(long, default_value_t = 48)]
    pub max_width: usize,
}

#[derive(Debug, Args)]
pub struct InventoryDiffArgs {
    /// The older snapshot: a JSON file or a store id [default: the second latest in the store].
    #[arg(long, value_name = "FILE|ID")]
    pub from: Option<String>,
    /// The newer snapshot: a JSON file or a store id [default: the latest in the store].
    #[arg(long, value_name = "FILE|ID")]
    pub to: Option<String>,
    /// The case store [default: trailhound.db in the user's data directory].
    #[arg(long, value_name = "DB", num_args = 0..=1, default_missing_value = "")]
    pub store: Option<PathBuf>,
    /// text or json.
    #[arg(long, short = 'f', value_enum, ignore_case = true, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    /// Known reasons (reasons.yml): added and changed items an entry explains are listed with it.
    #[arg(long, value_name = "FILE")]
    pub explain: Option<PathBuf>,
    /// Also show changes of use, not configuration: keys, roles and passwords last used, trails'
    /// last delivery.
    #[arg(long)]
    pub with_activity: bool,
}

#[derive(Debug, Args)]
pub struct InventoryAuditArgs {
    /// The snapshot: a JSON file or a store id [default: the latest in the store].
    #[arg(long, value_name = "FILE|ID")]
    pub from: Option<String>,
    /// Known reasons (reasons.yml): items and findings an entry matches are explained, and hidden.
    #[arg(long, value_name = "FILE")]
    pub reasons: Option<PathBuf>,
    /// Report access keys created within this time: a duration back from now (24h, 7d) or an
    /// RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// The case store: where the snapshot is read from, and, when given, where findings are
    /// remembered (for --new-only).
    #[arg(long, value_name = "DB", num_args = 0..=1, default_missing_value = "")]
    pub store: Option<PathBuf>,
    /// Print only findings no earlier run stored (implies --store).
    #[arg(long)]
    pub new_only: bool,
    /// Only findings at or above this level: informational, low, medium, high, critical.
    #[arg(long, value_name = "LEVEL")]
    pub min_level: Option<String>,
    /// table (default on a terminal), json, jsonl (default otherwise) or csv.
    #[arg(long, short = 'f', value_enum, ignore_case = true)]
    pub format: Option<RowsFormat>,
    /// Exit with status 1 when an unexplained finding is at or above this level.
    #[arg(long, value_name = "LEVEL")]
    pub fail_on: Option<String>,
    /// Also print findings that a known reason explains.
    #[arg(long)]
    pub show_explained: bool,
    /// An active access key older than this many days is a finding.
    #[arg(long, default_value_t = 90, value_name = "DAYS")]
    pub max_key_age: i64,
    /// An active access key not used for this many days is a finding.
    #[arg(long, default_value_t = 90, value_name = "DAYS")]
    pub max_unused: i64,
    /// Widest table cell before values are cut (0: never cut).
    #[arg(long, default_value_t = 120)]
    pub max_width: usize,
}
