//! What happened in the events read, beyond findings: who uses the console (with or without
//! MFA, from where), the most active principals and their error rates, regions, access keys.
//! `summary` prints it; the HTML report of a hunt shows it beside the findings.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use trailhound_event::{DerivedField, FieldPath, Record, query::first_text};
use trailhound_source::Sink;

/// Source addresses kept per principal or key: enough to read, bounded for hostile input.
const MAX_ADDRESSES: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub struct ConsoleUse {
    pub principal: String,
    pub success_with_mfa: u64,
    pub success_without_mfa: u64,
    pub failures: u64,
    pub source_ips: BTreeSet<String>,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PrincipalUse {
    pub principal: String,
    pub events: u64,
    pub errors: u64,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyUse {
    pub access_key_id: String,
    pub principal: String,
    pub events: u64,
    pub source_ips: BTreeSet<String>,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

/// Calls from one source network (`trailhound.src.network`, when a context derived it).
#[derive(Debug, Clone, Serialize)]
pub struct NetworkUse {
    pub network: String,
    /// Where that is, in words (AS and country, AWS service), when known.
    pub from: Option<String>,
    /// Whether it is AWS's (absent when unknown).
    pub aws: Option<bool>,
    pub events: u64,
    /// Distinct principals seen from it (counted up to [`MAX_NETWORK_PRINCIPALS`]).
    pub principals: u64,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    #[serde(skip)]
    seen: BTreeSet<String>,
}

/// Principals counted per network: enough to read, bounded for hostile input.
const MAX_NETWORK_PRINCIPALS: usize = 1000;
/// Networks kept: past it, new networks are not added (the busiest come first anyway).
const MAX_NETWORKS: usize = 100_000;

/// Activity figures over a set of records. One per worker; merged at the end.
#[derive(Debug)]
pub struct Activity {
    console: HashMap<String, ConsoleUse>,
    principals: HashMap<String, PrincipalUse>,
    regions: HashMap<String, u64>,
    keys: HashMap<String, KeyUse>,
    networks: HashMap<String, NetworkUse>,
    login_result: FieldPath,
    mfa_used: FieldPath,
}

impl Default for Activity {
    fn default() -> Activity {
        Activity {
            console: HashMap::new(),
            principals: HashMap::new(),
            regions: HashMap::new(),
            keys: HashMap::new(),
            networks: HashMap::new(),
            login_result: FieldPath::new("responseElements.ConsoleLogin"),
            mfa_used: FieldPath::new("additionalEventData.MFAUsed"),
        }
    }
}

fn touch(first: &mut DateTime<Utc>, last: &mut DateTime<Utc>, time: DateTime<Utc>) {
    *first = (*first).min(time);
    *last = (*last).max(time);
}

fn add_address(set: &mut BTreeSet<String>, ip: Option<&str>) {
    if let Some(ip) = ip
        && set.len() < MAX_ADDRESSES
    {
        set.insert(ip.to_string());
    }
}

impl Activity {
    pub fn add(&mut self, record: &Record<'_>) {
        // A CloudTrail Insights event reports on calls counted already: nobody's activity.
        if record.is_insight() {
            return;
        }
        let time = record.time;
        let principal = record
            .identity
            .arn
            .as_deref()
            .or(record.identity.user_name.as_deref())
            .or(record.identity.invoked_by.as_deref())
            .unwrap_or("-")
            .to_string();
        let failed = record.error_code.is_some();
        let entry = self
            .principals
            .entry(principal.clone())
            .or_insert_with(|| PrincipalUse {
                principal: principal.clone(),
                events: 0,
                errors: 0,
                first: time,
                last: time,
            });
        entry.events += 1;
        entry.errors += u64::from(failed);
        touch(&mut entry.first, &mut entry.last, time);
        if let Some(region) = record.aws_region.as_deref() {
            *self.regions.entry(region.to_string()).or_default() += 1;
        }
        if let Some(derived) = record.derived()
            && let Some(network) = derived.text(DerivedField::SrcNetwork)
            && (self.networks.len() < MAX_NETWORKS || self.networks.contains_key(network))
        {
            let entry = self.networks.entry(network.to_string()).or_insert_with(|| NetworkUse {
                network: network.to_string(),
                // AWS's addresses and services are one network: no one service names it.
                from: match network {
                    "aws" => Some("AWS".to_string()),
                    "vpc" => Some("VPC endpoint".to_string()),
                    "private" => Some("private address".to_string()),
                    _ => trailhound_finding::origin_of(derived),
                },
                aws: derived.flag(DerivedField::SrcAws),
                events: 0,
                principals: 0,
                first: time,
                last: time,
                seen: BTreeSet::new(),
            });
            entry.events += 1;
            if entry.seen.len() < MAX_NETWORK_PRINCIPALS {
                entry.seen.insert(principal.clone());
                entry.principals = entry.seen.len() as u64;
            }
            touch(&mut entry.first, &mut entry.last, time);
        }
        if let Some(key) = record.identity.access_key_id.as_deref() {
            let entry = self.keys.entry(key.to_string()).or_insert_with(|| KeyUse {
                access_key_id: key.to_string(),
                principal: principal.clone(),
                events: 0,
                source_ips: BTreeSet::new(),
                first: time,
                last: time,
            });
            entry.events += 1;
            add_address(&mut entry.source_ips, record.source_ip.as_deref());
            touch(&mut entry.first, &mut entry.last, time);
        }
        if record.event_name == "ConsoleLogin" {
            let success = first_text(record, &self.login_result).eq_ignore_ascii_case("success");
            let mfa = first_text(record, &self.mfa_used).eq_ignore_ascii_case("yes");
            let entry = self.console.entry(principal.clone()).or_insert_with(|| ConsoleUse {
                principal,
                success_with_mfa: 0,
                success_without_mfa: 0,
                failures: 0,
                source_ips: BTreeSet::new(),
                first: time,
                last: time,
            });
            match (success, mfa) {
                (true, true) => entry.success_with_mfa += 1,
                (true, false) => entry.success_without_mfa += 1,
                (false, _) => entry.failures += 1,
            }
            add_address(&mut entry.source_ips, record.source_ip.as_deref());
            touch(&mut entry.first, &mut entry.last, time);
        }
    }

    pub fn merge(&mut self, other: Activity) {
        for (k, v) in other.console {
            match self.console.get_mut(&k) {
                Some(e) => {
                    e.success_with_mfa += v.success_with_mfa;
                    e.success_without_mfa += v.success_without_mfa;
                    e.failures += v.failures;
                    for ip in v.source_ips {
                        add_address(&mut e.source_ips, Some(&ip));
                    }
                    touch(&mut e.first, &mut e.last, v.first);
                    touch(&mut e.first, &mut e.last, v.last);
                }
                None => {
                    self.console.insert(k, v);
                }
            }
        }
        for (k, v) in other.principals {
            match self.principals.get_mut(&k) {
                Some(e) => {
                    e.events += v.events;
                    e.errors += v.errors;
                    touch(&mut e.first, &mut e.last, v.first);
                    touch(&mut e.first, &mut e.last, v.last);
                }
                None => {
                    self.principals.insert(k, v);
                }
            }
        }
        for (k, v) in other.regions {
            *self.regions.entry(k).or_default() += v;
        }
        for (k, v) in other.networks {
            let room = self.networks.len() < MAX_NETWORKS;
            match self.networks.get_mut(&k) {
                Some(e) => {
                    e.events += v.events;
                    for p in v.seen {
                        if e.seen.len() < MAX_NETWORK_PRINCIPALS {
                            e.seen.insert(p);
                        }
                    }
                    e.principals = e.seen.len() as u64;
                    touch(&mut e.first, &mut e.last, v.first);
                    touch(&mut e.first, &mut e.last, v.last);
                }
                None if room => {
                    self.networks.insert(k, v);
                }
                None => {}
            }
        }
        for (k, v) in other.keys {
            match self.keys.get_mut(&k) {
                Some(e) => {
                    e.events += v.events;
                    for ip in v.source_ips {
                        add_address(&mut e.source_ips, Some(&ip));
                    }
                    touch(&mut e.first, &mut e.last, v.first);
                    touch(&mut e.first, &mut e.last, v.last);
                }
                None => {
                    self.keys.insert(k, v);
                }
            }
        }
    }

    /// Console users, most logins first.
    pub fn console(&self) -> Vec<ConsoleUse> {
        let mut list: Vec<ConsoleUse> = self.console.values().cloned().collect();
        list.sort_by(|a, b| {
            let total = |c: &ConsoleUse| c.success_with_mfa + c.success_without_mfa + c.failures;
            total(b).cmp(&total(a)).then_with(|| a.principal.cmp(&b.principal))
        });
        list
    }

    /// Principals, most events first.
    pub fn principals(&self) -> Vec<PrincipalUse> {
        let mut list: Vec<PrincipalUse> = self.principals.values().cloned().collect();
        list.sort_by(|a, b| b.events.cmp(&a.events).then_with(|| a.principal.cmp(&b.principal)));
        list
    }

    pub fn regions(&self) -> Vec<(String, u64)> {
        let mut list: Vec<(String, u64)> = self.regions.iter().map(|(k, v)| (k.clone(), *v)).collect();
        list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        list
    }

    /// Source networks (when a context derived them), most events first.
    pub fn networks(&self) -> Vec<NetworkUse> {
        let mut list: Vec<NetworkUse> = self.networks.values().cloned().collect();
        list.sort_by(|a, b| b.events.cmp(&a.events).then_with(|| a.network.cmp(&b.network)));
        list
    }

    pub fn keys(&self) -> Vec<KeyUse> {
        let mut list: Vec<KeyUse> = self.keys.values().cloned().collect();
        list.sort_by(|a, b| {
            b.events
                .cmp(&a.events)
                .then_with(|| a.access_key_id.cmp(&b.access_key_id))
        });
        list
    }
}

/// Collects activity for the summary command.
/// The sink that only summarises.
pub struct Summarizer(pub Activity);

impl Sink for Summarizer {
    fn record(&mut self, _: &str, record: &Record<'_>) {
        self.0.add(record);
    }
}

/// A time as summaries write it.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}
