//! Baselines: what is normal for each principal and access key, learned from the events read.
//!
//! A profile keeps, per principal, the networks, countries, services, regions and user-agent
//! families it was seen with, each value with the first and last time; per long-term access key
//! the networks and countries; per role the last time it was used. A hunt judges each event
//! against the profiles as they were when the run started (a snapshot: every worker sees the same
//! thing, whatever the read order) and learns from every event it reads; the learned profiles are
//! kept for the next run (in the case store). So a run reports what is new compared with earlier
//! runs, and a first run, with nothing learned, reports that baselines are still learning.
//!
//! Everything is bounded: [`MAX_VALUES`] values per dimension and [`MAX_PROFILES`] profiles per
//! table, the least recently seen going first.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use trailhound_event::{Derived, DerivedField, Record};

/// Values kept per dimension of a profile (networks, countries, ...).
pub const MAX_VALUES: usize = 32;
/// Profiles kept per table (principals, access keys, roles).
pub const MAX_PROFILES: usize = 25_000;
/// An access key or role idle this many days is worth a word in `trailhound.baseline.normal`.
const MENTION_IDLE_DAYS: i64 = 30;
/// The format of saved baselines.
const VERSION: u32 = 1;

/// How baselines judge events.
#[derive(Debug, Clone, Copy)]
pub struct BaselineOptions {
    /// A value not seen in this long before an event is new again.
    pub lookback: Duration,
    /// Baselines judge nothing until they hold this much history.
    pub min_history: Duration,
}

impl Default for BaselineOptions {
    fn default() -> BaselineOptions {
        BaselineOptions {
            lookback: Duration::days(30),
            min_history: Duration::days(7),
        }
    }
}

/// First and last time a value was seen (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Span(i64, i64);

impl Span {
    fn at(t: i64) -> Span {
        Span(t, t)
    }

    fn widen(&mut self, other: Span) {
        self.0 = self.0.min(other.0);
        self.1 = self.1.max(other.1);
    }
}

type Values = BTreeMap<String, Span>;

/// What one principal or access key was seen doing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Profile {
    first: i64,
    last: i64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    networks: Values,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    countries: Values,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    services: Values,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    regions: Values,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    agents: Values,
}

impl Profile {
    fn new(t: i64) -> Profile {
        Profile {
            first: t,
            last: t,
            ..Profile::default()
        }
    }

    /// Notes a call at `t` from `network` and `country`.
    fn see_place(&mut self, network: Option<&str>, country: Option<&str>, t: i64) {
        if let Some(network) = network {
            see(&mut self.networks, network, t);
        }
        if let Some(country) = country {
            see(&mut self.countries, country, t);
        }
    }

    fn merge(&mut self, other: Profile) {
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
        for (mine, theirs) in [
            (&mut self.networks, other.networks),
            (&mut self.countries, other.countries),
            (&mut self.services, other.services),
            (&mut self.regions, other.regions),
            (&mut self.agents, other.agents),
        ] {
            for (value, span) in theirs {
                add_span(mine, value, span);
            }
        }
    }
}

/// Adds `span` of `value`, keeping at most [`MAX_VALUES`] (the least recently seen go).
fn add_span(values: &mut Values, value: String, span: Span) {
    match values.get_mut(&value) {
        Some(known) => known.widen(span),
        None => {
            values.insert(value, span);
            if values.len() > MAX_VALUES
                && let Some(oldest) = values.iter().min_by_key(|(_, s)| s.1).map(|(v, _)| v.clone())
            {
                values.remove(&oldest);
            }
        }
    }
}

fn see(values: &mut Values, value: &str, t: i64) {
    match values.get_mut(value) {
        Some(span) => span.widen(Span::at(t)),
        None => add_span(values, value.to_string(), Span::at(t)),
    }
}

/// The profile of `id` in `table` (a new one if needed), widened to `t`. The key is copied only
/// for a new profile: this runs for every record.
fn profile_at<'t>(table: &'t mut HashMap<String, Profile>, id: &str, t: i64) -> &'t mut Profile {
    if !table.contains_key(id) {
        table.insert(id.to_string(), Profile::new(t));
    }
    let profile = table.get_mut(id).expect("present: inserted above if missing");
    profile.first = profile.first.min(t);
    profile.last = profile.last.max(t);
    profile
}

/// Keeps at most [`MAX_PROFILES`] entries of `table`, dropping the least recently seen.
fn bound<V>(table: &mut HashMap<String, V>, last: impl Fn(&V) -> i64) -> usize {
    let over = table.len().saturating_sub(MAX_PROFILES);
    if over == 0 {
        return 0;
    }
    let mut times: Vec<i64> = table.values().map(&last).collect();
    times.select_nth_unstable(over - 1);
    let cut = times[over - 1];
    let mut removed = 0;
    table.retain(|_, v| {
        if removed < over && last(v) <= cut {
            removed += 1;
            false
        } else {
            true
        }
    });
    removed
}

/// Profiles of principals, access keys and roles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Baselines {
    version: u32,
    /// Earliest and latest event time learned from.
    first: Option<i64>,
    last: Option<i64>,
    principals: HashMap<String, Profile>,
    keys: HashMap<String, Profile>,
    /// Role ARN -> (first, last) time it was used or assumed.
    roles: HashMap<String, Span>,
    /// Profiles this worker dropped while learning (see [`Baselines::learn`]), reported when it
    /// is merged.
    #[serde(skip)]
    forgotten: usize,
}

/// Why saved baselines could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("saved baselines are not readable: {0}")]
    Format(#[from] serde_json::Error),
    #[error("saved baselines are of format {0}, this build reads format {VERSION}")]
    Version(u32),
}

impl Baselines {
    /// Nothing learned.
    pub fn new() -> Baselines {
        Baselines {
            version: VERSION,
            ..Baselines::default()
        }
    }

    /// Reads baselines [`Baselines::save`] wrote.
    pub fn load(bytes: &[u8]) -> Result<Baselines, BaselineError> {
        let baselines: Baselines = serde_json::from_slice(bytes)?;
        if baselines.version != VERSION {
            return Err(BaselineError::Version(baselines.version));
        }
        Ok(baselines)
    }

    /// The baselines as bytes, for a later run.
    pub fn save(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Principals, access keys and roles with a profile.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (self.principals.len(), self.keys.len(), self.roles.len())
    }

    /// How much history the profiles hold (latest minus earliest event learned from).
    pub fn history(&self) -> Duration {
        match (self.first, self.last) {
            (Some(first), Some(last)) => Duration::seconds(last - first),
            _ => Duration::zero(),
        }
    }

    /// Whether there is enough history to judge events.
    pub fn trained(&self, options: &BaselineOptions) -> bool {
        self.first.is_some() && self.history() >= options.min_history
    }

    /// Learns from one record, whose derived fields (principal, network, country) are given.
    pub fn learn(&mut self, record: &Record<'_>, derived: &Derived) {
        let t = record.time.timestamp();
        self.first = Some(self.first.map_or(t, |f| f.min(t)));
        self.last = Some(self.last.map_or(t, |l| l.max(t)));
        let network = derived.text(DerivedField::SrcNetwork);
        let country = countable_country(derived);
        if let Some(id) = derived.text(DerivedField::PrincipalId)
            && !derived.flag(DerivedField::PrincipalByAws).unwrap_or(false)
        {
            let profile = profile_at(&mut self.principals, id, t);
            profile.see_place(network, country, t);
            see(&mut profile.services, &record.event_source, t);
            if let Some(region) = record.aws_region.as_deref() {
                see(&mut profile.regions, region, t);
            }
            if let Some(agent) = record.user_agent.as_deref() {
                see(&mut profile.agents, agent_family(agent), t);
            }
        }
        if let Some(key) = long_term_key(record) {
            profile_at(&mut self.keys, key, t).see_place(network, country, t);
        }
        for role in roles_used(record) {
            match self.roles.get_mut(role) {
                Some(span) => span.widen(Span::at(t)),
                None => {
                    self.roles.insert(role.to_string(), Span::at(t));
                }
            }
        }
        // A worker reading one batch of many principals (a stream, a large file) would otherwise
        // hold all of them until it is merged: past twice the bound, it keeps the bound's worth,
        // the least recently seen going as at a merge.
        if self.principals.len() > 2 * MAX_PROFILES {
            self.forgotten += bound(&mut self.principals, |p| p.last);
        }
        if self.keys.len() > 2 * MAX_PROFILES {
            self.forgotten += bound(&mut self.keys, |p| p.last);
        }
        if self.roles.len() > 2 * MAX_PROFILES {
            self.forgotten += bound(&mut self.roles, |s| s.1);
        }
    }

    /// Folds what another worker (or run) learned into these baselines, then bounds them.
    /// Returns how many profiles were dropped to stay within [`MAX_PROFILES`] (here, and by the
    /// other while it learned).
    pub fn merge(&mut self, other: Baselines) -> usize {
        let forgotten = other.forgotten;
        self.first = match (self.first, other.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last = self.last.max(other.last);
        for (id, profile) in other.principals {
            match self.principals.get_mut(&id) {
                Some(mine) => mine.merge(profile),
                None => {
                    self.principals.insert(id, profile);
                }
            }
        }
        for (key, profile) in other.keys {
            match self.keys.get_mut(&key) {
                Some(mine) => mine.merge(profile),
                None => {
                    self.keys.insert(key, profile);
                }
            }
        }
        for (role, span) in other.roles {
            self.roles.entry(role).or_insert(span).widen(span);
        }
        forgotten
            + bound(&mut self.principals, |p| p.last)
            + bound(&mut self.keys, |p| p.last)
            + bound(&mut self.roles, |s| s.1)
    }

    /// Judges `record` against these baselines, adding the `trailhound.baseline.` fields to
    /// `derived` (which holds the record's other derived fields already).
    pub fn judge(&self, record: &Record<'_>, derived: &mut Derived, options: &BaselineOptions) {
        if !self.trained(options) {
            derived.set_word(DerivedField::BaselineState, "learning");
            return;
        }
        derived.set_word(DerivedField::BaselineState, "trained");
        let t = record.time.timestamp();
        let since = t - options.lookback.num_seconds();
        let network = derived.text(DerivedField::SrcNetwork).map(str::to_string);
        let country = countable_country(derived).map(str::to_string);
        let mut normal = Vec::new();
        let by_aws = derived.flag(DerivedField::PrincipalByAws).unwrap_or(false);
        let principal = derived
            .text(DerivedField::PrincipalId)
            .filter(|_| !by_aws)
            .map(|id| (id.to_string(), self.principals.get(id).filter(|p| p.first < t)));
        if let Some((_, profile)) = &principal {
            derived.set(DerivedField::BaselinePrincipalSeen, profile.is_some());
        }
        // A profile with nothing in the lookback has no recent normal to deviate from: what it
        // does now is a return from dormancy (key_idle_days), not a string of new things.
        if let Some((id, Some(profile))) = principal.as_ref().filter(|(_, p)| p.is_some_and(|p| p.last >= since)) {
            let days = (t - profile.first) / 86_400;
            let mut check = |field: DerivedField, values: &Values, value: Option<&str>, what: &str| {
                let Some(value) = value else { return };
                let new = !known(values, value, t, since);
                derived.set(field, new);
                if new {
                    normal.push(format!(
                        "{id}: first {what} {value}; in the last {} days: {}",
                        days.min(options.lookback.num_days()),
                        usual(values, t, since)
                    ));
                }
            };
            check(
                DerivedField::BaselineNewNetwork,
                &profile.networks,
                network.as_deref(),
                "call from network",
            );
            check(
                DerivedField::BaselineNewCountry,
                &profile.countries,
                country.as_deref(),
                "call from country",
            );
            check(
                DerivedField::BaselineNewService,
                &profile.services,
                Some(&record.event_source),
                "call to",
            );
            check(
                DerivedField::BaselineNewRegion,
                &profile.regions,
                record.aws_region.as_deref(),
                "call in region",
            );
        }
        if let Some(key) = long_term_key(record)
            && let Some(profile) = self.keys.get(key).filter(|p| p.first < t)
        {
            if profile.last < t {
                let idle = (t - profile.last) / 86_400;
                derived.set(DerivedField::BaselineKeyIdleDays, idle as u64);
                if idle >= MENTION_IDLE_DAYS {
                    normal.push(format!(
                        "access key {key} last used {idle} days before ({})",
                        date(profile.last)
                    ));
                }
            }
            let recent = profile.last >= since;
            let mut check = |field: DerivedField, values: &Values, value: Option<&str>, what: &str| {
                let Some(value) = value.filter(|_| recent) else { return };
                let new = !known(values, value, t, since);
                derived.set(field, new);
                if new {
                    normal.push(format!(
                        "access key {key}: first use from {what} {value}; before: {}",
                        usual(values, t, since)
                    ));
                }
            };
            check(
                DerivedField::BaselineKeyNewNetwork,
                &profile.networks,
                network.as_deref(),
                "network",
            );
            check(
                DerivedField::BaselineKeyNewCountry,
                &profile.countries,
                country.as_deref(),
                "country",
            );
        }
        if let Some(role) = assumed_role(record) {
            derived.set(DerivedField::BaselineRole, role);
            if let Some(span) = self.roles.get(role).filter(|s| s.0 < t && s.1 < t) {
                let idle = (t - span.1) / 86_400;
                derived.set(DerivedField::BaselineRoleIdleDays, idle as u64);
                if idle >= MENTION_IDLE_DAYS {
                    normal.push(format!("role {role} last used {idle} days before ({})", date(span.1)));
                }
            }
        }
        if !normal.is_empty() {
            derived.set(DerivedField::BaselineNormal, normal.join("; "));
        }
    }
}

/// The country baselines count: not for AWS's own addresses (a workload in two regions is in
/// two countries without anything being unusual).
fn countable_country(derived: &Derived) -> Option<&str> {
    derived
        .text(DerivedField::SrcCountry)
        .filter(|_| derived.flag(DerivedField::SrcAws) != Some(true))
}

/// Whether `value` was seen at or before `t` and again no earlier than `since`. An event an
/// earlier run already learned (read again in an overlap, or a window hunted twice) is known:
/// what the store holds is normal, whenever it was learned.
fn known(values: &Values, value: &str, t: i64, since: i64) -> bool {
    values.get(value).is_some_and(|span| span.0 <= t && span.1 >= since)
}

/// The values seen in the lookback, most recent first, in words.
fn usual(values: &Values, t: i64, since: i64) -> String {
    let mut recent: Vec<(&String, &Span)> = values.iter().filter(|(_, s)| s.0 <= t && s.1 >= since).collect();
    if recent.is_empty() {
        return "nothing".to_string();
    }
    recent.sort_by(|a, b| b.1.1.cmp(&a.1.1).then_with(|| a.0.cmp(b.0)));
    let shown: Vec<&str> = recent.iter().take(5).map(|(v, _)| v.as_str()).collect();
    let more = recent.len().saturating_sub(shown.len());
    match (shown.len(), more) {
        (1, 0) => format!("{} only", shown[0]),
        (_, 0) => shown.join(", "),
        _ => format!("{} and {more} more", shown.join(", ")),
    }
}

fn date(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0).map_or_else(String::new, |d| d.format("%Y-%m-%d").to_string())
}

/// A long-term access key (`AKIA...`): temporary keys change every session and have no history
/// worth keeping.
fn long_term_key<'r>(record: &'r Record<'_>) -> Option<&'r str> {
    record
        .identity
        .access_key_id
        .as_deref()
        .filter(|k| k.starts_with("AKIA") && k.len() <= 128)
}

/// The role an `AssumeRole*` call assumes (`requestParameters.roleArn`).
fn assumed_role<'r>(record: &'r Record<'_>) -> Option<&'r str> {
    if !record.event_name.starts_with("AssumeRole") {
        return None;
    }
    let raw = record.raw();
    // The role ARN is a plain string: read it without a field walk's generality.
    let at = raw.find("\"roleArn\"")?;
    let rest = raw[at + 9..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    let end = rest.find(['"', '\\'])?;
    let role = &rest[..end];
    role.starts_with("arn:").then_some(role)
}

/// The roles a record shows in use: the issuer of a role session, and the role an AssumeRole
/// call assumes (when it succeeded).
fn roles_used<'r>(record: &'r Record<'_>) -> impl Iterator<Item = &'r str> {
    let issuer = record
        .identity
        .session_context
        .as_ref()
        .and_then(|c| c.session_issuer.as_ref())
        .and_then(|i| i.arn.as_deref())
        .filter(|arn| arn.contains(":role/"));
    let assumed = assumed_role(record).filter(|_| record.error_code.is_none());
    issuer.into_iter().chain(assumed)
}

/// The family of a user agent: its first product token, cut short
/// (`aws-cli/2.15 Python/3.11 ...` -> `aws-cli`; `[S3Console/0.4]` -> `S3Console`).
pub fn agent_family(agent: &str) -> &str {
    let agent = agent.trim_start_matches(['[', ' ']);
    let end = agent.find(['/', ' ', ']', ',', ';', '(']).unwrap_or(agent.len());
    let family = &agent[..end];
    match family.char_indices().nth(32) {
        Some((at, _)) => &family[..at],
        None => family,
    }
}

#[cfg(test)]
mod tests;
