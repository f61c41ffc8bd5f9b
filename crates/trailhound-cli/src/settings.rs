//! Raw arguments resolved into the plain settings commands run with: parsed times, levels and
//! formats, defaults that depend on the terminal and the environment.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use trailhound_output::Format;
use trailhound_rules::Level;
use trailhound_source::{Input, ScanOptions, TimeWindow, parse_bound, parse_duration};

use trailhound_aws::AwsSettings;

use crate::args::{AwsArgs, HuntArgs, RuleSelection, ScanArgs};

/// Which rules to load and keep.
#[derive(Debug, Clone)]
pub struct RuleSettings {
    pub paths: Vec<PathBuf>,
    pub builtin: bool,
    pub min_level: Option<Level>,
    pub only: Vec<String>,
    pub exclude: Vec<String>,
    pub tags: Vec<String>,
}

impl RuleSettings {
    pub fn resolve(args: &RuleSelection) -> Result<RuleSettings> {
        Ok(RuleSettings {
            paths: args.paths.clone(),
            builtin: !args.no_builtin,
            min_level: args
                .min_level
                .as_deref()
                .map(parse_level)
                .transpose()
                .context("--min-level")?,
            only: args.only.clone(),
            exclude: args.exclude.clone(),
            tags: args.tags.iter().map(|t| t.to_lowercase()).collect(),
        })
    }
}

/// Where events come from and which: shared by every command that scans.
#[derive(Debug, Clone)]
pub struct ScanSettings {
    pub inputs: Vec<Input>,
    pub options: ScanOptions,
    pub threads: Option<usize>,
    pub progress: bool,
    pub remote: RemoteSettings,
}

/// How remote sources (s3://, lookup:) are read.
#[derive(Debug, Clone, Default)]
pub struct RemoteSettings {
    pub aws: AwsSettings,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub concurrency: usize,
}

impl RemoteSettings {
    pub fn resolve(args: &ScanArgs) -> Result<RemoteSettings> {
        if args.concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        for account in &args.accounts {
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                bail!("--accounts: {account:?} is not a 12-digit account id");
            }
        }
        Ok(RemoteSettings {
            aws: aws_settings(&args.aws),
            accounts: args.accounts.clone(),
            regions: args.regions.clone(),
            concurrency: args.concurrency,
        })
    }
}

/// The AWS options as the client setup takes them.
pub fn aws_settings(args: &AwsArgs) -> AwsSettings {
    AwsSettings {
        profile: args.profile.clone(),
        region: args.region.clone(),
        role_arn: args.role_arn.clone(),
        external_id: args.external_id.clone(),
        endpoint_url: args.endpoint_url.clone(),
        max_attempts: 0,
    }
}

impl ScanSettings {
    pub fn resolve(args: &ScanArgs, quiet: bool, now: DateTime<Utc>) -> Result<ScanSettings> {
        let inputs = args
            .sources
            .iter()
            .map(|s| Input::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        let bound = |text: &Option<String>, flag: &str| {
            text.as_deref()
                .map(|t| parse_bound(t, now))
                .transpose()
                .with_context(|| flag.to_string())
        };
        let window = TimeWindow::new(bound(&args.since, "--since")?, bound(&args.until, "--until")?)?;
        let Some(delivery_lag) = parse_duration(&args.delivery_lag) else {
            bail!("--delivery-lag: {:?} is not a duration (30m, 2h)", args.delivery_lag);
        };
        if args.threads == Some(0) {
            bail!("--threads must be at least 1");
        }
        Ok(ScanSettings {
            inputs,
            options: ScanOptions {
                window,
                delivery_lag,
                max_file_bytes: args.max_file_size.saturating_mul(1 << 20),
            },
            threads: args.threads,
            progress: !quiet && std::io::stderr().is_terminal(),
            remote: RemoteSettings::resolve(args)?,
        })
    }
}

/// Everything `hunt` needs.
#[derive(Debug, Clone)]
pub struct HuntSettings {
    pub scan: ScanSettings,
    pub rules: RuleSettings,
    pub format: Format,
    pub output: Option<PathBuf>,
    pub with_event: bool,
    /// The case store, when findings are to be remembered.
    pub store: Option<PathBuf>,
    pub new_only: bool,
    /// Read remote sources from where the last run with the store stopped.
    pub since_last_run: bool,
    pub sources_text: Vec<String>,
    pub since_text: Option<String>,
    pub until_text: Option<String>,
    pub reasons: Option<PathBuf>,
    pub show_explained: bool,
    pub group: Option<chrono::Duration>,
    pub fail_on: Option<Level>,
    pub strict: bool,
    pub color: bool,
    pub max_width: usize,
    pub summary: bool,
    pub alerts: Vec<AlertKind>,
    pub alert_min_level: Level,
    /// Rules already loaded and selected (by a long-lived caller); `rules` is then ignored.
    pub loaded_rules: Option<std::sync::Arc<trailhound_rules::RuleSet>>,
}

impl HuntSettings {
    pub fn resolve(args: &HuntArgs, quiet: bool, now: DateTime<Utc>) -> Result<HuntSettings> {
        let scan = ScanSettings::resolve(&args.scan, quiet, now)?;
        let window = scan.options.window;
        let stdout_terminal = args.output.is_none() && std::io::stdout().is_terminal();
        let format = match (&args.format, &args.output) {
            (Some(format), _) => format.parse().map_err(anyhow::Error::msg).context("--format")?,
            (None, Some(path)) => format_for_path(path),
            (None, None) if stdout_terminal => Format::Table,
            (None, None) => Format::Jsonl,
        };
        Ok(HuntSettings {
            scan: scan.clone(),
            rules: RuleSettings::resolve(&args.rules)?,
            format,
            output: args.output.clone(),
            with_event: args.with_event,
            store: match (&args.store, args.new_only || args.since_last_run) {
                (Some(path), _) if !path.as_os_str().is_empty() => Some(path.clone()),
                (Some(_), _) | (None, true) => Some(store_path(None)?),
                (None, false) => None,
            },
            new_only: args.new_only,
            since_last_run: args.since_last_run,
            sources_text: args.scan.sources.clone(),
            since_text: window.since.map(|t| t.to_rfc3339()),
            until_text: window.until.map(|t| t.to_rfc3339()),
            reasons: args.reasons.clone(),
            show_explained: args.show_explained,
            group: args
                .group
                .as_deref()
                .map(|text| {
                    parse_duration(text)
                        .filter(|d| d.num_seconds() > 0)
                        .with_context(|| format!("--group: {text:?} is not a duration (15m, 1h, 1d)"))
                })
                .transpose()?,
            fail_on: args
                .fail_on
                .as_deref()
                .map(parse_level)
                .transpose()
                .context("--fail-on")?,
            strict: args.strict,
            color: stdout_terminal && color_allowed(),
            max_width: args.max_width,
            alerts: args
                .alerts
                .iter()
                .map(|a| a.parse())
                .collect::<Result<_, _>>()
                .map_err(anyhow::Error::msg)
                .context("--alert")?,
            alert_min_level: parse_level(&args.alert_min_level).context("--alert-min-level")?,
            loaded_rules: None,
            summary: !quiet,
        })
    }
}

/// Where `--alert` sends findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    Slack,
    Webhook,
    Sns,
}

impl AlertKind {
    /// The environment variable that holds the target.
    pub fn variable(self) -> &'static str {
        match self {
            AlertKind::Slack => "TRAILHOUND_SLACK_WEBHOOK_URL",
            AlertKind::Webhook => "TRAILHOUND_WEBHOOK_URL",
            AlertKind::Sns => "TRAILHOUND_SNS_TOPIC_ARN",
        }
    }
}

impl std::str::FromStr for AlertKind {
    type Err = String;
    fn from_str(text: &str) -> Result<AlertKind, String> {
        match text {
            "slack" => Ok(AlertKind::Slack),
            "webhook" => Ok(AlertKind::Webhook),
            "sns" => Ok(AlertKind::Sns),
            other => Err(format!("{other:?} is not slack, webhook or sns")),
        }
    }
}

impl HuntSettings {
    /// A hunt of `inputs` with the defaults of `trailhound hunt` and no terminal: JSON lines,
    /// no summary, no progress. For callers that build settings without arguments (the Lambda).
    pub fn for_sources(inputs: Vec<Input>, aws: AwsSettings) -> HuntSettings {
        let sources_text = inputs
            .iter()
            .map(|input| match input {
                Input::Path(path) => path.display().to_string(),
                Input::Stdin => "-".to_string(),
                Input::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
                Input::Lookup(_) => "lookup:".to_string(),
            })
            .collect();
        HuntSettings {
            scan: ScanSettings {
                inputs,
                options: ScanOptions::default(),
                threads: None,
                progress: false,
                remote: RemoteSettings {
                    aws,
                    accounts: Vec::new(),
                    regions: Vec::new(),
                    concurrency: 16,
                },
            },
            rules: RuleSettings {
                paths: Vec::new(),
                builtin: true,
                min_level: None,
                only: Vec::new(),
                exclude: Vec::new(),
                tags: Vec::new(),
            },
            format: Format::Jsonl,
            output: None,
            with_event: false,
            store: None,
            new_only: false,
            since_last_run: false,
            sources_text,
            since_text: None,
            until_text: None,
            reasons: None,
            show_explained: false,
            group: None,
            fail_on: None,
            strict: false,
            color: false,
            max_width: 48,
            summary: false,
            alerts: Vec::new(),
            alert_min_level: Level::High,
            loaded_rules: None,
        }
    }
}

fn parse_level(text: &str) -> Result<Level> {
    text.parse().map_err(anyhow::Error::msg)
}

/// `-o findings.csv` means CSV; unknown extensions get JSON lines.
fn format_for_path(path: &std::path::Path) -> Format {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some("txt") => Format::Table,
        Some("html" | "htm") => Format::Html,
        _ => Format::Jsonl,
    }
}

/// NO_COLOR (any non-empty value) turns colour off: https://no-color.org
pub fn color_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The store named on the command line, else the default one.
pub fn store_path(given: Option<&std::path::Path>) -> Result<PathBuf> {
    match given {
        Some(path) => Ok(path.to_path_buf()),
        None => trailhound_store::Store::default_path()
            .context("no data directory to keep the case store in; give --store PATH"),
    }
}
