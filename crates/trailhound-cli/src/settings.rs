//! Raw arguments resolved into the plain settings commands run with: parsed times, levels and
//! formats, defaults that depend on the terminal and the environment.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use trailhound_context::{AwsRanges, BaselineOptions, GeoIp};
use trailhound_finding::Level;
use trailhound_hunt::ContextOptions;
use trailhound_output::Format;
use trailhound_rules::Selection;
use trailhound_source::{
    AthenaOptions, Input, ReadOptions, RemoteOptions, ScanOptions, TimeWindow, parse_bound, parse_delivery_lag,
    parse_duration,
};

use crate::args::{AwsArgs, ContextArgs, HuntArgs, RuleSelection, ScanArgs};

/// Which rules to load and keep, from the rule selection options.
pub fn rule_selection(args: &RuleSelection) -> Result<Selection> {
    Ok(Selection {
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
        placeholders: args
            .placeholders
            .as_deref()
            .map(|path| {
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("--placeholders {}", path.display()))?;
                trailhound_rules::Placeholders::parse(&text)
                    .map_err(|message| anyhow::anyhow!("--placeholders {}: {message}", path.display()))
            })
            .transpose()?,
        tests: false,
    })
}

/// How to reach AWS, as given (`--profile`, `--region`, `--role-arn`...). Plain values in every
/// build; the `aws` feature turns them into the client setup's settings.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub endpoint_url: Option<String>,
}

impl AwsOptions {
    pub fn resolve(args: &AwsArgs) -> AwsOptions {
        AwsOptions {
            profile: args.profile.clone(),
            region: args.region.clone(),
            role_arn: args.role_arn.clone(),
            external_id: args.external_id.clone(),
            endpoint_url: args.endpoint_url.clone(),
        }
    }
}

/// Where events come from and which: shared by every command that reads events.
#[derive(Debug, Clone)]
pub struct ScanSettings {
    pub read: ReadOptions,
    pub progress: bool,
    pub aws: AwsOptions,
    /// What events are enriched with; `None` with `--no-context`.
    pub context: Option<ContextOptions>,
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
        let delivery_lag = parse_delivery_lag(&args.delivery_lag).context("--delivery-lag")?;
        if args.threads == Some(0) {
            bail!("--threads must be at least 1");
        }
        if args.concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        for account in &args.accounts {
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                bail!("--accounts: {account:?} is not a 12-digit account id");
            }
        }
        // Accounts and regions go into Athena's SQL: region names are checked as names.
        for region in &args.regions {
            if region.is_empty()
                || !region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                bail!("--regions: {region:?} is not a region name");
            }
        }
        if let Some(output) = &args.athena_output
            && !output.starts_with("s3://")
        {
            bail!("--athena-output: {output:?} is not an s3://BUCKET/PREFIX/ location");
        }
        let max_scan_bytes = match args.max_scan_gb {
            Some(gb) if gb.is_finite() && gb >= 0.0 => Some((gb * 1e9) as u64),
            Some(_) => bail!("--max-scan-gb must be a size in GB"),
            None => None,
        };
        if args.mb_per_partition.is_some_and(|mb| !(mb.is_finite() && mb >= 0.0)) {
            bail!("--mb-per-partition must be a size in MB");
        }
        Ok(ScanSettings {
            read: ReadOptions {
                inputs,
                scan: ScanOptions {
                    window,
                    delivery_lag,
                    max_file_bytes: args.max_file_size.saturating_mul(1 << 20),
                    ..ScanOptions::default()
                },
                threads: args.threads,
                remote: RemoteOptions {
                    accounts: args.accounts.clone(),
                    regions: args.regions.clone(),
                    concurrency: args.concurrency,
                },
                since: None,
                athena: AthenaOptions {
                    output: args.athena_output.clone(),
                    max_scan_bytes,
                    mb_per_partition: args.mb_per_partition,
                    plans: Default::default(),
                },
            },
            progress: !quiet && std::io::stderr().is_terminal(),
            aws: AwsOptions::resolve(&args.aws),
            context: context_options(&args.context)?,
        })
    }
}

/// Where `trailhound context ranges` installs AWS's ranges, and where they are read from by default.
pub fn installed_ranges_path() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("trailhound").join("ip-ranges.json"))
}

/// Reads AWS's ranges from `path`.
pub fn read_ranges(path: &std::path::Path) -> Result<AwsRanges> {
    Ok(AwsRanges::open(path)?)
}

/// Loads the ranges and GeoIP databases `args` name (once per process).
pub fn context_options(args: &ContextArgs) -> Result<Option<ContextOptions>> {
    if args.no_context {
        return Ok(None);
    }
    let duration = |text: &str, flag: &str| {
        parse_duration(text)
            .filter(|d| d.num_seconds() >= 0)
            .with_context(|| format!("{flag}: {text:?} is not a duration (7d, 30d, 12w)"))
    };
    let baselines = BaselineOptions {
        lookback: duration(&args.baseline_lookback, "--baseline-lookback")?,
        min_history: duration(&args.baseline_history, "--baseline-history")?,
    };
    let ranges = match &args.aws_ranges {
        Some(path) => read_ranges(path).context("--aws-ranges")?,
        None => match installed_ranges_path().filter(|p| p.is_file()) {
            Some(path) => read_ranges(&path)?,
            None => AwsRanges::empty(),
        },
    };
    let geoip = if args.geoip.is_empty() {
        None
    } else {
        Some(Arc::new(GeoIp::open(&args.geoip).context("--geoip")?))
    };
    Ok(Some(ContextOptions {
        ranges: Arc::new(ranges),
        geoip,
        baselines,
        continue_baselines: None,
    }))
}

/// Everything `hunt` needs.
#[derive(Debug, Clone)]
pub struct HuntSettings {
    pub scan: ScanSettings,
    /// Put the whole record into each finding.
    pub with_event: bool,
    /// Fold findings of one rule by one principal within this bucket.
    pub group: Option<chrono::Duration>,
    pub rules: Selection,
    pub format: Format,
    pub output: Option<PathBuf>,
    /// The known-reasons file.
    pub reasons: Option<PathBuf>,
    /// The case store, when findings are to be remembered.
    pub store: Option<PathBuf>,
    pub new_only: bool,
    /// Read remote sources from where the last run with the store stopped.
    pub since_last_run: bool,
    pub sources_text: Vec<String>,
    pub since_text: Option<String>,
    pub until_text: Option<String>,
    pub show_explained: bool,
    pub fail_on: Option<Level>,
    pub strict: bool,
    pub color: bool,
    pub max_width: usize,
    pub summary: bool,
    pub alerts: Vec<trailhound_alert::AlertKind>,
    pub alert_min_level: Level,
    /// Bytes correlations may hold.
    pub correlation_memory: usize,
}

impl HuntSettings {
    pub fn resolve(args: &HuntArgs, quiet: bool, now: DateTime<Utc>) -> Result<HuntSettings> {
        let scan = ScanSettings::resolve(&args.scan, quiet, now)?;
        let window = scan.read.scan.window;
        let stdout_terminal = args.output.is_none() && std::io::stdout().is_terminal();
        let format = match (args.format, &args.output) {
            (Some(format), _) => format.into(),
            (None, Some(path)) => format_for_path(path),
            (None, None) if stdout_terminal => Format::Table,
            (None, None) => Format::Jsonl,
        };
        let rules = rule_selection(&args.rules)?;
        let group = args
            .group
            .as_deref()
            .map(|text| {
                parse_duration(text)
                    .filter(|d| d.num_seconds() > 0)
                    .with_context(|| format!("--group: {text:?} is not a duration (15m, 1h, 1d)"))
            })
            .transpose()?;
        Ok(HuntSettings {
            with_event: args.with_event,
            group,
            scan,
            rules,
            format,
            output: args.output.clone(),
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
            fail_on: args
                .fail_on
                .as_deref()
                .map(parse_level)
                .transpose()
                .context("--fail-on")?,
            strict: args.strict,
            correlation_memory: args.correlation_memory.saturating_mul(1 << 20),
            color: stdout_terminal && color_allowed(),
            max_width: args.max_width,
            alerts: args.alerts.iter().map(|&a| a.into()).collect(),
            alert_min_level: parse_level(&args.alert_min_level).context("--alert-min-level")?,
            summary: !quiet,
        })
    }
}

pub fn parse_level(text: &str) -> Result<Level> {
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
