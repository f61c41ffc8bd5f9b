//! The function's configuration, from environment variables (documented in README.md,
//! "Run it unattended"). Read once per cold start; bad values fail the invocation clearly.

use anyhow::{Context, Result, bail};
use trailhound_aws::AwsSettings;
use trailhound_finding::Level;
use trailhound_source::Input;

/// An S3 location: bucket and key or prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub key: String,
}

impl S3Location {
    pub fn parse(text: &str) -> Option<S3Location> {
        let rest = text.strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        (!bucket.is_empty()).then(|| S3Location {
            bucket: bucket.to_string(),
            key: key.trim_start_matches('/').to_string(),
        })
    }

    /// `key` under this prefix.
    pub fn child(&self, key: &str) -> String {
        if self.key.is_empty() || self.key.ends_with('/') {
            format!("{}{key}", self.key)
        } else {
            format!("{}/{key}", self.key)
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub aws: AwsSettings,
    /// TRAILHOUND_STATE: where dedupe markers, the case store and snapshots live.
    pub state: Option<S3Location>,
    /// TRAILHOUND_ALERTS: slack, webhook, sns, securityhub (comma-separated).
    pub alerts: Vec<trailhound_alert::AlertKind>,
    /// TRAILHOUND_MIN_LEVEL: lowest level that alerts (default high).
    pub min_level: Level,
    /// TRAILHOUND_RULES: an s3:// prefix (or a path) of extra Sigma rules.
    pub rules: Option<String>,
    /// TRAILHOUND_NO_BUILTIN=true leaves the built-in pack out.
    pub no_builtin: bool,
    /// TRAILHOUND_REASONS: the known-reasons file, a path or s3://bucket/key.
    pub reasons: Option<String>,
    /// TRAILHOUND_SOURCES: what a scheduled run hunts (s3://..., lookup:...), space-separated.
    pub sources: Vec<Input>,
    /// TRAILHOUND_SINCE: the window of a scheduled run with no cursor yet (default 25h).
    pub since: String,
    /// TRAILHOUND_INVENTORY: `all` or regions: a scheduled run also collects and audits.
    pub inventory: Option<Option<Vec<String>>>,
    /// TRAILHOUND_CORRELATION_MEMORY (MB), else a quarter of the function's memory: bytes
    /// correlation state may hold.
    pub correlation_memory: Option<usize>,
    /// TRAILHOUND_GEOIP: MaxMind-format databases (paths in the package or a layer, or
    /// s3://bucket/key), comma-separated.
    pub geoip: Vec<String>,
    /// TRAILHOUND_AWS_RANGES: AWS's ip-ranges.json (a path or s3://bucket/key).
    pub aws_ranges: Option<String>,
    /// TRAILHOUND_NO_CONTEXT=true: derive no `trailhound.` fields (README, "Context").
    pub no_context: bool,
}

impl Config {
    pub fn from_env() -> Result<Config> {
        Config::from(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// Reads the settings through `var` (the environment, or a map in tests).
    pub fn from(var: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let state = match var("TRAILHOUND_STATE") {
            Some(text) => Some(
                S3Location::parse(&text)
                    .with_context(|| format!("TRAILHOUND_STATE: {text:?} is not s3://BUCKET/PREFIX"))?,
            ),
            None => None,
        };
        let alerts = var("TRAILHOUND_ALERTS")
            .map(|text| {
                text.split(',')
                    .map(|a| a.trim().parse())
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(anyhow::Error::msg)
                    .context("TRAILHOUND_ALERTS")
            })
            .transpose()?
            .unwrap_or_default();
        let min_level = match var("TRAILHOUND_MIN_LEVEL") {
            Some(text) => text
                .parse()
                .map_err(anyhow::Error::msg)
                .context("TRAILHOUND_MIN_LEVEL")?,
            None => Level::High,
        };
        let mut sources = Vec::new();
        for text in var("TRAILHOUND_SOURCES")
            .unwrap_or_default()
            .split([' ', ','])
            .filter(|s| !s.is_empty())
        {
            let input = Input::parse(text).context("TRAILHOUND_SOURCES")?;
            if !input.is_remote() {
                bail!("TRAILHOUND_SOURCES: {text:?}: a scheduled run reads s3:// or lookup: sources");
            }
            sources.push(input);
        }
        let inventory = var("TRAILHOUND_INVENTORY").map(|text| match text.trim() {
            "all" | "true" => None,
            list => Some(list.split(',').map(|r| r.trim().to_string()).collect()),
        });
        Ok(Config {
            aws: AwsSettings {
                endpoint_url: var("TRAILHOUND_ENDPOINT_URL"),
                ..AwsSettings::default()
            },
            state,
            alerts,
            min_level,
            rules: var("TRAILHOUND_RULES"),
            no_builtin: var("TRAILHOUND_NO_BUILTIN").is_some_and(|v| v == "true" || v == "1"),
            reasons: var("TRAILHOUND_REASONS"),
            sources,
            since: var("TRAILHOUND_SINCE").unwrap_or_else(|| "25h".into()),
            inventory,
            correlation_memory: correlation_memory(&var)?,
            geoip: var("TRAILHOUND_GEOIP")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            aws_ranges: var("TRAILHOUND_AWS_RANGES"),
            no_context: var("TRAILHOUND_NO_CONTEXT").is_some_and(|v| v == "true" || v == "1"),
        })
    }
}

/// Bytes correlations may hold: `TRAILHOUND_CORRELATION_MEMORY` (MB), else a quarter of the
/// function's memory (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, MB), else the rules' default.
fn correlation_memory(var: &impl Fn(&str) -> Option<String>) -> Result<Option<usize>> {
    if let Some(text) = var("TRAILHOUND_CORRELATION_MEMORY") {
        let mb: usize = text
            .trim()
            .parse()
            .ok()
            .filter(|mb| *mb > 0)
            .with_context(|| format!("TRAILHOUND_CORRELATION_MEMORY: {text:?} is not a number of MB"))?;
        return Ok(Some(mb.saturating_mul(1 << 20)));
    }
    Ok(var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .and_then(|text| text.trim().parse::<usize>().ok())
        .map(|mb| mb.saturating_mul(1 << 20) / 4))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn reads_the_documented_variables() {
        let env: HashMap<&str, &str> = [
            ("TRAILHOUND_STATE", "s3://state-bucket/trailhound"),
            ("TRAILHOUND_ALERTS", "slack, sns"),
            ("TRAILHOUND_MIN_LEVEL", "medium"),
            ("TRAILHOUND_SOURCES", "s3://trail-bucket lookup:all"),
            ("TRAILHOUND_INVENTORY", "us-east-1,eu-west-1"),
            (
                "TRAILHOUND_GEOIP",
                "/opt/geoip/asn.mmdb, s3://state-bucket/country.mmdb",
            ),
            ("TRAILHOUND_AWS_RANGES", "s3://state-bucket/ip-ranges.json"),
        ]
        .into_iter()
        .collect();
        let config = Config::from(|k| env.get(k).map(|v| v.to_string())).expect("config");
        assert_eq!(config.geoip, ["/opt/geoip/asn.mmdb", "s3://state-bucket/country.mmdb"]);
        assert_eq!(config.aws_ranges.as_deref(), Some("s3://state-bucket/ip-ranges.json"));
        assert!(!config.no_context);
        assert_eq!(
            config.state.as_ref().map(|s| s.child("store.db")),
            Some("trailhound/store.db".into())
        );
        assert_eq!(config.alerts.len(), 2);
        assert_eq!(config.min_level, Level::Medium);
        assert_eq!(config.sources.len(), 2);
        assert_eq!(
            config.inventory,
            Some(Some(vec!["us-east-1".into(), "eu-west-1".into()]))
        );
        assert_eq!(config.correlation_memory, None, "outside Lambda: the rules' default");
        let sized: HashMap<&str, &str> = [("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")].into_iter().collect();
        let config = Config::from(|k| sized.get(k).map(|v| v.to_string())).expect("config");
        assert_eq!(
            config.correlation_memory,
            Some(128 << 20),
            "a quarter of the function's memory"
        );
        let bad: HashMap<&str, &str> = [("TRAILHOUND_CORRELATION_MEMORY", "lots")].into_iter().collect();
        assert!(Config::from(|k| bad.get(k).map(|v| v.to_string())).is_err());
        let bad: HashMap<&str, &str> = [("TRAILHOUND_SOURCES", "/tmp/logs")].into_iter().collect();
        assert!(Config::from(|k| bad.get(k).map(|v| v.to_string())).is_err());
        let bad: HashMap<&str, &str> = [("TRAILHOUND_ALERTS", "pager")].into_iter().collect();
        assert!(Config::from(|k| bad.get(k).map(|v| v.to_string())).is_err());
        let hub: HashMap<&str, &str> = [("TRAILHOUND_ALERTS", "sns,securityhub")].into_iter().collect();
        let config = Config::from(|k| hub.get(k).map(|v| v.to_string())).expect("config");
        assert_eq!(
            config.alerts,
            [
                trailhound_alert::AlertKind::Sns,
                trailhound_alert::AlertKind::SecurityHub
            ]
        );
    }
}
