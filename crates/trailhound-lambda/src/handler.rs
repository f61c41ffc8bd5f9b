//! One invocation: new objects are hunted with the rule set and new findings alerted; a
//! schedule hunts the configured sources since the last run and audits the inventory.
//!
//! The hunt is the engine's ([`trailhound_hunt::hunt`]), run on a blocking thread with this
//! process's runtime and AWS connection (made once per cold start, reused by every warm
//! invocation). A bad object is reported and skipped; AWS errors that a retry may cure (throttling,
//! the network, an alert receiver down) fail the invocation so Lambda retries it, and the
//! alert markers make sure nothing is alerted twice.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use trailhound_alert::{AlertRun, AlertSettings, Target};
use trailhound_aws::Aws;
use trailhound_context::{AwsRanges, GeoIp};
use trailhound_finding::{Finding, Reasons};
use trailhound_hunt::{
    ContextOptions, HuntOptions, Hunted, Silent, StoreOptions, hunt, load_reasons, merge_correlation_states,
};
use trailhound_rules::{RuleSet, Selection};
use trailhound_source::{Input, ReadOptions, Remote, TimeWindow, parse_bound};
use trailhound_store::RunStart;

use crate::config::{Config, S3Location};
use crate::state::{self, State};
use crate::trigger::{self, Object, Trigger};

pub struct Function {
    pub config: Config,
    aws: Aws,
    state: Option<State>,
    targets: Vec<Target>,
    /// The rule set, loaded and compiled once per cold start.
    rule_set: Arc<RuleSet>,
    /// The known reasons, read once per cold start (expired entries warned about then).
    reasons: Option<Reasons>,
    /// Where this instance keeps files between invocations (/tmp on Lambda).
    scratch: PathBuf,
    /// AWS's ranges and GeoIP databases, read once per cold start (`None`: TRAILHOUND_NO_CONTEXT).
    context: Option<ContextOptions>,
}

impl Function {
    /// Cold start: AWS access, alert targets (secrets resolved once), extra rules and the
    /// reasons file fetched to local disk.
    pub async fn init(config: Config, scratch: PathBuf) -> Result<Function> {
        let aws = Aws::connect(&config.aws).await?;
        let state = config.state.clone().map(|location| State {
            client: aws.s3(None),
            location,
        });
        if state.is_none() {
            tracing::warn!("TRAILHOUND_STATE is not set: retried invocations may alert twice");
        }
        let references = trailhound_alert::references(&config.alerts)
            .with_context(|| "TRAILHOUND_ALERTS names a target whose variable is not set")?;
        let targets = trailhound_alert::resolve(references, Some(&aws)).await?;
        let rules = match &config.rules {
            Some(text) => Some(fetch_tree(&aws, text, &scratch.join("rules")).await?),
            None => None,
        };
        let selection = Selection {
            builtin: !config.no_builtin,
            paths: rules.iter().cloned().collect(),
            ..Selection::default()
        };
        let (rule_set, errors) = selection.load()?;
        for error in &errors {
            tracing::warn!("rule skipped: {error}");
        }
        if rule_set.is_empty() {
            bail!("no rules to run (TRAILHOUND_NO_BUILTIN without TRAILHOUND_RULES?)");
        }
        tracing::info!("{} rules loaded", rule_set.len());
        let reasons = match &config.reasons {
            Some(text) => Some(load_reasons(
                &fetch_file(&aws, text, &scratch.join("reasons.yml")).await?,
            )?),
            None => None,
        };
        let context = if config.no_context {
            None
        } else {
            let ranges = match &config.aws_ranges {
                Some(text) => AwsRanges::open(&fetch_file(&aws, text, &scratch.join("ip-ranges.json")).await?)
                    .context("TRAILHOUND_AWS_RANGES")?,
                None => AwsRanges::empty(),
            };
            let mut databases = Vec::new();
            for (n, text) in config.geoip.iter().enumerate() {
                databases.push(fetch_file(&aws, text, &scratch.join(format!("geoip-{n}.mmdb"))).await?);
            }
            let geoip = if databases.is_empty() {
                None
            } else {
                Some(Arc::new(GeoIp::open(&databases).context("TRAILHOUND_GEOIP")?))
            };
            Some(ContextOptions {
                ranges: Arc::new(ranges),
                geoip,
                ..ContextOptions::default()
            })
        };
        Ok(Function {
            config,
            aws,
            state,
            targets,
            rule_set: Arc::new(rule_set),
            reasons,
            scratch,
            context,
        })
    }

    pub async fn handle(&self, payload: &Value) -> Result<Value> {
        match trigger::parse(payload) {
            Trigger::Objects(objects) => self.objects(objects).await,
            Trigger::Schedule => self.schedule().await,
            Trigger::Ignored(why) => {
                tracing::info!("ignored: {why}");
                Ok(json!({"ignored": why}))
            }
        }
    }

    /// Hunts the new objects and alerts on what no earlier invocation alerted. Correlation
    /// windows continue from the earlier invocations' state and are left for the next ones,
    /// so a burst split across delivery files is still one burst.
    async fn objects(&self, objects: Vec<Object>) -> Result<Value> {
        let inputs = objects
            .iter()
            .map(|o| Input::S3 {
                bucket: o.bucket.clone(),
                prefix: o.key.clone(),
            })
            .collect();
        let carry = self.state.as_ref().filter(|_| self.rule_set.correlations() > 0);
        let carried = match carry {
            Some(state) => state.get_tagged(&state.location.child(CORRELATIONS)).await?,
            None => None,
        };
        let mut options = self.options(inputs);
        // Baselines learn in scheduled runs (which keep the store); per-object invocations judge
        // against the copy the last scheduled run left, and learn nothing themselves.
        if let (Some(state), Some(context)) = (&self.state, options.context.as_mut()) {
            context.continue_baselines = state.get(&state.location.child(BASELINES)).await?;
        }
        options.continue_correlations = carried.as_ref().map(|(bytes, _)| bytes.clone());
        options.keep_correlations = carry.is_some();
        let mut hunted = self.hunt(options).await?;
        if hunted.transient_failures > 0 {
            bail!(
                "{} objects could not be fetched (transient errors); failing so Lambda retries",
                hunted.transient_failures
            );
        }
        let (alerted, duplicates) = self
            .alert(&hunted.findings, &format!("lambda {}", describe(&objects)))
            .await?;
        if let (Some(state), Some(bytes)) = (carry, hunted.correlation_state.take()) {
            self.save_correlations(state, bytes, carried.map(|(_, etag)| etag))
                .await?;
        }
        Ok(json!({
            "objects": objects.len(),
            "records": hunted.stats.records_in_window,
            "bad_files": hunted.stats.files_failed + hunted.stats.files_damaged,
            "findings": hunted.findings.len(),
            "alerted": alerted,
            "already_alerted": duplicates,
        }))
    }

    /// A scheduled run: hunt the sources from their cursors, audit the inventory, alert on
    /// what is new. The case store travels to and from the state prefix.
    async fn schedule(&self) -> Result<Value> {
        let store_path = self.scratch.join("store.db");
        let store_key = self.state.as_ref().map(|s| s.location.child("store.db"));
        if let (Some(state), Some(key)) = (&self.state, &store_key) {
            match state.get(key).await? {
                Some(bytes) => std::fs::write(&store_path, bytes).context("writing the store to local disk")?,
                None => {
                    let _ = std::fs::remove_file(&store_path);
                }
            }
        }
        let mut report = json!({});
        let mut new_findings: Vec<Finding> = Vec::new();
        if !self.config.sources.is_empty() {
            let mut options = self.options(self.config.sources.clone());
            let now = chrono::Utc::now();
            let since = parse_bound(&self.config.since, now).context("TRAILHOUND_SINCE")?;
            options.read.scan.window = TimeWindow::new(Some(since), None)?;
            options.store = Some(StoreOptions {
                path: store_path.clone(),
                new_only: true,
                since_last_run: true,
                run: RunStart {
                    command: "lambda schedule".into(),
                    sources: self.config.sources.iter().map(Input::describe).collect(),
                    since: Some(since.to_rfc3339()),
                    until: None,
                    ..RunStart::default()
                },
            });
            let hunted = self.hunt(options).await?;
            if let Some(err) = hunted.store_error {
                bail!("the case store failed after the hunt; failing so the next run reads again: {err}");
            }
            if let (Some(state), Some(bytes)) = (&self.state, &hunted.baselines) {
                state.put(&state.location.child(BASELINES), bytes.clone()).await?;
            }
            report["hunt"] = json!({"records": hunted.stats.records_in_window, "new_findings": hunted.findings.len()});
            new_findings.extend(hunted.findings);
        }
        if let Some(regions) = &self.config.inventory {
            let findings = crate::inventory::run(
                &self.aws,
                regions.clone(),
                self.reasons.as_ref(),
                &store_path,
                self.state.as_ref(),
            )
            .await?;
            report["inventory"] = json!({"new_findings": findings.len()});
            new_findings.extend(findings);
        }
        let (alerted, duplicates) = self.alert(&new_findings, "lambda schedule").await?;
        if let (Some(state), Some(key)) = (&self.state, &store_key)
            && store_path.exists()
        {
            state
                .put(key, std::fs::read(&store_path).context("reading the store")?)
                .await?;
        }
        report["alerted"] = json!(alerted);
        report["already_alerted"] = json!(duplicates);
        Ok(report)
    }

    /// Alerts the unexplained findings at or above the level that carry no marker yet, then
    /// marks them. Returns (alerted, skipped as already alerted).
    async fn alert(&self, findings: &[Finding], what: &str) -> Result<(usize, usize)> {
        let candidates: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.explanation.is_none() && f.level >= self.config.min_level)
            .collect();
        let mut fresh = Vec::new();
        let mut duplicates = 0;
        for finding in candidates {
            match &self.state {
                Some(state) if state.exists(&state.marker(finding)).await? => duplicates += 1,
                _ => fresh.push(finding.clone()),
            }
        }
        if fresh.is_empty() || self.targets.is_empty() {
            return Ok((0, duplicates));
        }
        let run = AlertRun {
            what: what.to_string(),
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        trailhound_alert::send(Some(&self.aws), &self.targets, &run, &fresh, &AlertSettings::default()).await?;
        if let Some(state) = &self.state {
            for finding in &fresh {
                state
                    .put(&state.marker(finding), finding.rule_id.clone().into_bytes())
                    .await?;
            }
        }
        Ok((fresh.len(), duplicates))
    }

    /// Writes this invocation's correlation state over the one it started from. When another
    /// invocation wrote in between, the two states are merged (a match both hold counts once)
    /// and the write is tried again.
    async fn save_correlations(&self, state: &State, mut bytes: Vec<u8>, mut etag: Option<String>) -> Result<()> {
        let key = state.location.child(CORRELATIONS);
        for _ in 0..8 {
            if state.put_if(&key, bytes.clone(), etag.as_deref()).await? {
                return Ok(());
            }
            let Some((theirs, their_etag)) = state.get_tagged(&key).await? else {
                etag = None;
                continue;
            };
            bytes = merge_correlation_states(&self.rule_set, &theirs, &bytes);
            etag = Some(their_etag);
        }
        bail!(
            "{}: other invocations kept rewriting it; the correlation state of this one is lost",
            state.uri(&key)
        )
    }

    /// The engine's options for a hunt of `inputs` with this function's rules and reasons.
    fn options(&self, inputs: Vec<Input>) -> HuntOptions {
        HuntOptions {
            read: ReadOptions {
                inputs,
                ..ReadOptions::default()
            },
            reasons: self.reasons.clone(),
            correlation_memory: self.config.correlation_memory,
            context: self.context.clone(),
            ..HuntOptions::default()
        }
    }

    /// The hunt on a blocking thread (rayon scans there), reading through this process's
    /// runtime and AWS connection.
    async fn hunt(&self, options: HuntOptions) -> Result<Hunted> {
        let rules = self.rule_set.clone();
        let aws = self.aws.clone();
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let remote = Remote {
                runtime: &runtime,
                aws: &aws,
            };
            hunt(&rules, &options, Some(&remote), &Silent)
        })
        .await
        .context("the hunt thread")?
        .map_err(anyhow::Error::from)
    }
}

/// The state object of per-object invocations' correlation windows.
const CORRELATIONS: &str = "correlations.json";
/// The baselines the last scheduled run left, for per-object invocations to judge against.
const BASELINES: &str = "baselines.json";

fn describe(objects: &[Object]) -> String {
    match objects {
        [one] => format!("s3://{}/{}", one.bucket, one.key),
        many => format!("{} objects", many.len()),
    }
}

/// A file from `s3://bucket/key` (fetched to `local`) or a local path.
async fn fetch_file(aws: &Aws, text: &str, local: &Path) -> Result<PathBuf> {
    let Some(location) = S3Location::parse(text) else {
        return Ok(PathBuf::from(text));
    };
    let bytes = state::get(&aws.s3(None), &location.bucket, &location.key)
        .await?
        .with_context(|| format!("{text}: no such object"))?;
    std::fs::write(local, bytes).with_context(|| format!("writing {}", local.display()))?;
    Ok(local.to_path_buf())
}

/// The rule files under an `s3://` prefix (fetched under `local`), or a local path.
async fn fetch_tree(aws: &Aws, text: &str, local: &Path) -> Result<PathBuf> {
    let Some(location) = S3Location::parse(text) else {
        return Ok(PathBuf::from(text));
    };
    let client = aws.s3(None);
    std::fs::create_dir_all(local).with_context(|| format!("creating {}", local.display()))?;
    let mut count = 0;
    for key in state::list(&client, &location.bucket, &location.key).await? {
        if !(key.ends_with(".yml") || key.ends_with(".yaml")) {
            continue;
        }
        let Some(bytes) = state::get(&client, &location.bucket, &key).await? else {
            continue;
        };
        // Flattened names: a key cannot climb out of the folder.
        let name = key.replace('/', "__");
        std::fs::write(local.join(name), bytes)
            .with_context(|| format!("writing a rule from s3://{}/{key}", location.bucket))?;
        count += 1;
    }
    tracing::info!("{count} rule files from {text}");
    Ok(local.to_path_buf())
}
