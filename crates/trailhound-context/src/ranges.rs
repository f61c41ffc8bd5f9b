//! AWS's published address ranges (`ip-ranges.json`): is a source address AWS's, and if so which
//! service and region announce it.
//!
//! The file lists each prefix once per service that uses it: `AMAZON` is the superset, `EC2`,
//! `S3`, `CLOUDFRONT` and the others name what part of AWS the addresses belong to. The file is
//! read once into sorted, non-overlapping address intervals, one set per family, each naming the
//! most specific prefix that covers it; a lookup is then one binary search, without allocating
//! (it runs once per CloudTrail event).
//!
//! A file that is not AWS's format is rejected whole (a wrong or tampered file must not quietly
//! make addresses look like AWS's); keys AWS may add later are ignored. This module reads text
//! only: fetching the file is the caller's business.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Deserialize;

/// Largest ranges file [`AwsRanges::open`] reads (AWS's is a few megabytes).
pub const FILE_LIMIT: u64 = 64 * 1024 * 1024;

/// The service AWS lists every prefix under; a named service says more.
const SUPERSET_SERVICE: &str = "AMAZON";

/// Longest service or region name accepted (AWS's are well under this).
const NAME_LIMIT: usize = 64;

/// Longest part of a bad value quoted in an error.
const QUOTE_LIMIT: usize = 64;

/// What is wrong with a ranges file.
#[derive(Debug, thiserror::Error)]
pub enum RangesError {
    /// The text is not JSON at all.
    #[error("AWS ip-ranges file is not JSON: {source}")]
    NotJson {
        /// Line of the error (1-based).
        line: usize,
        /// Column of the error (1-based).
        column: usize,
        /// serde_json's error.
        source: serde_json::Error,
    },
    /// The text is JSON, but not shaped like AWS's file (a missing key, a value of the wrong type).
    #[error("AWS ip-ranges file does not have AWS's format: {source}")]
    Shape {
        /// Line of the error (1-based).
        line: usize,
        /// Column of the error (1-based).
        column: usize,
        /// serde_json's error.
        source: serde_json::Error,
    },
    /// Neither `prefixes` nor `ipv6_prefixes` lists anything.
    #[error("AWS ip-ranges file lists no prefixes (`prefixes` and `ipv6_prefixes` are empty)")]
    NoPrefixes,
    /// One entry is wrong: its prefix does not parse, is of the other family or has host bits
    /// set, or its service or region is not a name.
    #[error("AWS ip-ranges file: `{list}` entry {index} ({prefix:?}): {reason}")]
    BadPrefix {
        /// The list it is in: `prefixes` or `ipv6_prefixes`.
        list: &'static str,
        /// Its index in that list (0-based).
        index: usize,
        /// The prefix as written (cut short if long).
        prefix: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The file cannot be read, or is larger than any ranges file ([`FILE_LIMIT`]).
    #[error("cannot read AWS ip-ranges file {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file was read, and what it holds is wrong ([`AwsRanges::open`]).
    #[error("{}: {source}", .path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with its text.
        source: Box<RangesError>,
    },
}

/// The part of AWS's address ranges an address falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsRange<'a> {
    /// The prefix as the file writes it, e.g. `3.5.140.0/22`.
    pub prefix: &'a str,
    /// The same prefix, parsed.
    pub network: IpNet,
    /// The service using it, e.g. `EC2`; `AMAZON` when no more specific service lists it.
    pub service: &'a str,
    /// The region, e.g. `us-east-1`, or `GLOBAL`.
    pub region: &'a str,
}

/// AWS's published address ranges, ready for lookups.
///
/// Plain data: `Send` and `Sync`, shared by reference between scan threads.
#[derive(Clone, Default)]
pub struct AwsRanges {
    sync_token: String,
    created: Option<NaiveDateTime>,
    /// Prefix entries as the file lists them (both families).
    listed: usize,
    /// The chosen entry of each distinct prefix.
    entries: Vec<Entry>,
    /// Service and region names, each stored once.
    names: Vec<Box<str>>,
    v4: Intervals<u32>,
    v6: Intervals<u128>,
}

/// One distinct prefix and the service and region it is reported with.
#[derive(Clone)]
struct Entry {
    prefix: Box<str>,
    network: IpNet,
    service: u32,
    region: u32,
}

impl AwsRanges {
    /// Reads the text of `ip-ranges.json`.
    ///
    /// # Errors
    ///
    /// When the text is not JSON, not shaped like AWS's file, lists no prefix, or has an entry
    /// whose prefix, service or region is not valid. Unknown keys are ignored.
    pub fn parse(json: &str) -> Result<AwsRanges, RangesError> {
        let file: File<'_> = serde_json::from_str(json).map_err(|source| {
            let (line, column) = (source.line(), source.column());
            match source.classify() {
                serde_json::error::Category::Data => RangesError::Shape { line, column, source },
                _ => RangesError::NotJson { line, column, source },
            }
        })?;
        if file.prefixes.is_empty() && file.ipv6_prefixes.is_empty() {
            return Err(RangesError::NoPrefixes);
        }

        let mut builder = Builder::default();
        for (index, item) in file.prefixes.iter().enumerate() {
            let bad = |reason| bad_prefix("prefixes", index, &item.ip_prefix, reason);
            let network = match item.ip_prefix.parse::<Ipv4Net>() {
                Ok(network) => IpNet::V4(network),
                Err(_) if item.ip_prefix.parse::<Ipv6Net>().is_ok() => {
                    return Err(bad("an IPv6 prefix in the IPv4 list"));
                }
                Err(_) => return Err(bad("not an IPv4 prefix")),
            };
            builder
                .add(network, &item.ip_prefix, &item.service, &item.region)
                .map_err(bad)?;
        }
        for (index, item) in file.ipv6_prefixes.iter().enumerate() {
            let bad = |reason| bad_prefix("ipv6_prefixes", index, &item.ipv6_prefix, reason);
            let network = match item.ipv6_prefix.parse::<Ipv6Net>() {
                Ok(network) => IpNet::V6(network),
                Err(_) if item.ipv6_prefix.parse::<Ipv4Net>().is_ok() => {
                    return Err(bad("an IPv4 prefix in the IPv6 list"));
                }
                Err(_) => return Err(bad("not an IPv6 prefix")),
            };
            builder
                .add(network, &item.ipv6_prefix, &item.service, &item.region)
                .map_err(bad)?;
        }

        let created = file
            .create_date
            .as_deref()
            .and_then(|date| NaiveDateTime::parse_from_str(date, "%Y-%m-%d-%H-%M-%S").ok());
        let mut ranges = builder.finish();
        ranges.sync_token = file.sync_token.map(Cow::into_owned).unwrap_or_default();
        ranges.created = created;
        ranges.listed = file.prefixes.len() + file.ipv6_prefixes.len();
        Ok(ranges)
    }

    /// Reads `ip-ranges.json` from a file (see [`AwsRanges::parse`]).
    ///
    /// # Errors
    ///
    /// When the file cannot be read, is over [`FILE_LIMIT`] bytes or is not valid UTF-8
    /// ([`RangesError::Read`]), or its text is not a valid ranges file
    /// ([`RangesError::InFile`]); both name the file.
    pub fn open(path: &Path) -> Result<AwsRanges, RangesError> {
        let read = |source| RangesError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(FILE_LIMIT + 1).read_to_string(&mut text))
            .map_err(read)?;
        if u64::try_from(text.len()).unwrap_or(u64::MAX) > FILE_LIMIT {
            return Err(read(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("larger than {FILE_LIMIT} bytes, far more than AWS's file"),
            )));
        }
        AwsRanges::parse(&text).map_err(|source| RangesError::InFile {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }

    /// No ranges at all: every lookup gives `None`.
    pub fn empty() -> AwsRanges {
        AwsRanges::default()
    }

    /// The most specific AWS prefix containing `ip`, if any.
    ///
    /// Among entries for the same prefix, a named service wins over `AMAZON`, then the first
    /// service and region in alphabetical order. An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`)
    /// is looked up as the IPv4 address it carries.
    pub fn lookup(&self, ip: IpAddr) -> Option<AwsRange<'_>> {
        let entry = match ip.to_canonical() {
            IpAddr::V4(v4) => self.v4.find(u32::from(v4)),
            IpAddr::V6(v6) => self.v6.find(u128::from(v6)),
        }?;
        let entry = self.entries.get(usize::try_from(entry).ok()?)?;
        Some(AwsRange {
            prefix: &entry.prefix,
            network: entry.network,
            service: self.name(entry.service),
            region: self.name(entry.region),
        })
    }

    /// When AWS made the file (`createDate`, UTC), if it says so in its usual format.
    pub fn created(&self) -> Option<NaiveDateTime> {
        self.created
    }

    /// The file's `syncToken` (empty when absent).
    pub fn sync_token(&self) -> &str {
        &self.sync_token
    }

    /// How many prefix entries the file lists, both families; a prefix listed under several
    /// services counts once per listing.
    pub fn len(&self) -> usize {
        self.listed
    }

    /// Whether there are no ranges (as [`AwsRanges::empty`]).
    pub fn is_empty(&self) -> bool {
        self.listed == 0
    }

    /// How many distinct prefixes there are, both families.
    pub fn distinct_prefixes(&self) -> usize {
        self.entries.len()
    }

    fn name(&self, index: u32) -> &str {
        usize::try_from(index)
            .ok()
            .and_then(|index| self.names.get(index))
            .map_or("", |name| name)
    }
}

impl fmt::Debug for AwsRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsRanges")
            .field("sync_token", &self.sync_token)
            .field("created", &self.created)
            .field("listed", &self.listed)
            .field("distinct_prefixes", &self.entries.len())
            .field("v4_intervals", &self.v4.starts.len())
            .field("v6_intervals", &self.v6.starts.len())
            .finish()
    }
}

/// The file as AWS writes it; other keys are ignored.
#[derive(Deserialize)]
struct File<'a> {
    #[serde(rename = "syncToken", borrow, default)]
    sync_token: Option<Cow<'a, str>>,
    #[serde(rename = "createDate", borrow, default)]
    create_date: Option<Cow<'a, str>>,
    #[serde(borrow)]
    prefixes: Vec<V4Item<'a>>,
    #[serde(borrow, default)]
    ipv6_prefixes: Vec<V6Item<'a>>,
}

#[derive(Deserialize)]
struct V4Item<'a> {
    #[serde(borrow)]
    ip_prefix: Cow<'a, str>,
    #[serde(borrow)]
    region: Cow<'a, str>,
    #[serde(borrow)]
    service: Cow<'a, str>,
}

#[derive(Deserialize)]
struct V6Item<'a> {
    #[serde(borrow)]
    ipv6_prefix: Cow<'a, str>,
    #[serde(borrow)]
    region: Cow<'a, str>,
    #[serde(borrow)]
    service: Cow<'a, str>,
}

fn bad_prefix(list: &'static str, index: usize, prefix: &str, reason: &'static str) -> RangesError {
    RangesError::BadPrefix {
        list,
        index,
        prefix: prefix.chars().take(QUOTE_LIMIT).collect(),
        reason,
    }
}

/// Whether `name` looks like an AWS service or region name: short, printable ASCII, no spaces.
fn is_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= NAME_LIMIT && name.bytes().all(|byte| byte.is_ascii_graphic())
}

/// Collects entries, keeps the preferred one of each distinct prefix, then builds the intervals.
#[derive(Default)]
struct Builder {
    names: Vec<Box<str>>,
    name_index: HashMap<Box<str>, u32>,
    /// Distinct prefix → index into `entries`.
    seen: HashMap<IpNet, usize>,
    entries: Vec<Entry>,
}

impl Builder {
    fn add(&mut self, network: IpNet, prefix: &str, service: &str, region: &str) -> Result<(), &'static str> {
        if network.trunc() != network {
            return Err("host bits are set");
        }
        if !is_name(service) {
            return Err("the service is not a name");
        }
        if !is_name(region) {
            return Err("the region is not a name");
        }
        let service = self.intern(service);
        let region = self.intern(region);
        match self.seen.get(&network) {
            Some(&index) => {
                let names = &self.names;
                if let Some(kept) = self.entries.get_mut(index)
                    && preference(names, service, region) < preference(names, kept.service, kept.region)
                {
                    kept.service = service;
                    kept.region = region;
                }
            }
            None => {
                self.seen.insert(network, self.entries.len());
                self.entries.push(Entry {
                    prefix: prefix.into(),
                    network,
                    service,
                    region,
                });
            }
        }
        Ok(())
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&index) = self.name_index.get(name) {
            return index;
        }
        // At most two names per listed entry, far below u32::MAX for any file that fits in memory.
        let index = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(name.into());
        self.name_index.insert(name.into(), index);
        index
    }

    fn finish(self) -> AwsRanges {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (index, entry) in self.entries.iter().enumerate() {
            let Ok(index) = u32::try_from(index) else { break };
            match entry.network {
                IpNet::V4(net) => v4.push(Span {
                    start: u32::from(net.network()),
                    end: u32::from(net.broadcast()),
                    len: net.prefix_len(),
                    entry: index,
                }),
                IpNet::V6(net) => v6.push(Span {
                    start: u128::from(net.network()),
                    end: u128::from(net.broadcast()),
                    len: net.prefix_len(),
                    entry: index,
                }),
            }
        }
        AwsRanges {
            entries: self.entries,
            names: self.names,
            v4: Intervals::build(v4),
            v6: Intervals::build(v6),
            ..AwsRanges::default()
        }
    }
}

/// Sort key of an entry among entries for the same prefix: smaller is preferred.
fn preference(names: &[Box<str>], service: u32, region: u32) -> (bool, &str, &str) {
    let name = |index: u32| {
        usize::try_from(index)
            .ok()
            .and_then(|index| names.get(index))
            .map_or("", |name| name)
    };
    let service = name(service);
    (service == SUPERSET_SERVICE, service, name(region))
}

/// An address as the number the intervals are made of.
trait Address: Copy + Ord + Default {
    fn next(self) -> Option<Self>;
    fn previous(self) -> Option<Self>;
}

impl Address for u32 {
    fn next(self) -> Option<Self> {
        self.checked_add(1)
    }
    fn previous(self) -> Option<Self> {
        self.checked_sub(1)
    }
}

impl Address for u128 {
    fn next(self) -> Option<Self> {
        self.checked_add(1)
    }
    fn previous(self) -> Option<Self> {
        self.checked_sub(1)
    }
}

/// A prefix as an inclusive address range.
struct Span<A> {
    start: A,
    end: A,
    len: u8,
    entry: u32,
}

/// Sorted, non-overlapping inclusive intervals, each with the entry of the most specific prefix
/// covering it. Kept as three parallel vectors so the binary search reads only `starts`.
#[derive(Clone, Default)]
struct Intervals<A> {
    starts: Vec<A>,
    ends: Vec<A>,
    entries: Vec<u32>,
}

impl<A: Address> Intervals<A> {
    /// Builds the intervals from distinct CIDR prefixes. Two prefixes are either disjoint or one
    /// contains the other, so a sweep in address order with a stack of the open prefixes gives
    /// each address to the innermost prefix containing it.
    fn build(mut spans: Vec<Span<A>>) -> Intervals<A> {
        spans.sort_unstable_by(|a, b| a.start.cmp(&b.start).then(a.len.cmp(&b.len)));
        let mut out = Intervals::default();
        // Open prefixes, outermost first: (end, entry).
        let mut open: Vec<(A, u32)> = Vec::new();
        // The first address not yet given to any interval; None once the family's last address
        // has been given.
        let mut cursor: Option<A> = None;
        for span in spans {
            while let Some(&(end, entry)) = open.last() {
                if end >= span.start {
                    break;
                }
                out.push(cursor, end, entry);
                cursor = end.next();
                open.pop();
            }
            if let (Some(&(_, entry)), Some(before)) = (open.last(), span.start.previous()) {
                out.push(cursor, before, entry);
            }
            cursor = Some(span.start);
            open.push((span.end, span.entry));
        }
        while let Some((end, entry)) = open.pop() {
            out.push(cursor, end, entry);
            cursor = end.next();
        }
        out
    }

    /// Adds `[start, end]` unless it is empty (no start, or start past end).
    fn push(&mut self, start: Option<A>, end: A, entry: u32) {
        if let Some(start) = start
            && start <= end
        {
            self.starts.push(start);
            self.ends.push(end);
            self.entries.push(entry);
        }
    }

    /// The entry of the interval containing `address`.
    #[inline]
    fn find(&self, address: A) -> Option<u32> {
        let index = self.starts.partition_point(|&start| start <= address).checked_sub(1)?;
        if *self.ends.get(index)? >= address {
            self.entries.get(index).copied()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    /// A small hand-written file in AWS's shape (not AWS's data).
    const SAMPLE: &str = r#"{
      "syncToken": "1767225600",
      "createDate": "2026-01-01-00-00-00",
      "prefixes": [
        {"ip_prefix": "10.0.0.0/16", "region": "us-east-1", "service": "AMAZON", "network_border_group": "us-east-1"},
        {"ip_prefix": "10.0.16.0/20", "region": "us-east-1", "service": "AMAZON", "network_border_group": "us-east-1"},
        {"ip_prefix": "10.0.16.0/20", "region": "us-east-1", "service": "EC2", "network_border_group": "us-east-1"},
        {"ip_prefix": "10.0.200.0/24", "region": "us-east-1", "service": "S3", "network_border_group": "us-east-1"},
        {"ip_prefix": "10.0.200.0/24", "region": "us-east-1", "service": "AMAZON", "network_border_group": "us-east-1"},
        {"ip_prefix": "10.0.200.0/24", "region": "us-east-1", "service": "EC2", "network_border_group": "us-east-1"},
        {"ip_prefix": "10.0.200.128/25", "region": "GLOBAL", "service": "ROUTE53_HEALTHCHECKS", "network_border_group": "GLOBAL"},
        {"ip_prefix": "192.0.2.0/24", "region": "eu-west-1", "service": "AMAZON", "network_border_group": "eu-west-1", "future_key": [1, {"x": 2}]},
        {"ip_prefix": "255.255.255.0/24", "region": "ap-south-1", "service": "CLOUDFRONT", "network_border_group": "ap-south-1"}
      ],
      "ipv6_prefixes": [
        {"ipv6_prefix": "2600:1f00::/24", "region": "us-west-2", "service": "AMAZON", "network_border_group": "us-west-2"},
        {"ipv6_prefix": "2600:1f14::/35", "region": "us-west-2", "service": "EC2", "network_border_group": "us-west-2"},
        {"ipv6_prefix": "ffff:ffff:ffff:ffff::/64", "region": "sa-east-1", "service": "AMAZON", "network_border_group": "sa-east-1"}
      ],
      "unknownTopLevel": {"ignored": true}
    }"#;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    fn service_of(ranges: &AwsRanges, address: &str) -> Option<String> {
        ranges
            .lookup(ip(address))
            .map(|range| format!("{} {} {}", range.prefix, range.service, range.region))
    }

    #[test]
    fn reads_the_header_and_counts() -> Result<(), RangesError> {
        let ranges = AwsRanges::parse(SAMPLE)?;
        assert_eq!(ranges.sync_token(), "1767225600");
        assert_eq!(
            ranges.created().map(|date| date.to_string()).as_deref(),
            Some("2026-01-01 00:00:00")
        );
        assert_eq!(ranges.len(), 12);
        assert!(!ranges.is_empty());
        assert_eq!(ranges.distinct_prefixes(), 9);
        Ok(())
    }

    #[test]
    fn the_most_specific_prefix_wins_and_named_services_beat_amazon() -> Result<(), RangesError> {
        let ranges = AwsRanges::parse(SAMPLE)?;
        // Only the AMAZON /16.
        assert_eq!(
            service_of(&ranges, "10.0.0.1").as_deref(),
            Some("10.0.0.0/16 AMAZON us-east-1")
        );
        assert_eq!(
            service_of(&ranges, "10.0.255.255").as_deref(),
            Some("10.0.0.0/16 AMAZON us-east-1")
        );
        // The /20 listed as AMAZON and EC2 inside the /16: EC2.
        assert_eq!(
            service_of(&ranges, "10.0.16.0").as_deref(),
            Some("10.0.16.0/20 EC2 us-east-1")
        );
        assert_eq!(
            service_of(&ranges, "10.0.31.255").as_deref(),
            Some("10.0.16.0/20 EC2 us-east-1")
        );
        // Back in the /16 after the /20.
        assert_eq!(
            service_of(&ranges, "10.0.32.0").as_deref(),
            Some("10.0.0.0/16 AMAZON us-east-1")
        );
        // Three services for one /24: AMAZON loses, then alphabetical (EC2 before S3).
        assert_eq!(
            service_of(&ranges, "10.0.200.1").as_deref(),
            Some("10.0.200.0/24 EC2 us-east-1")
        );
        // A /25 inside it.
        assert_eq!(
            service_of(&ranges, "10.0.200.200").as_deref(),
            Some("10.0.200.128/25 ROUTE53_HEALTHCHECKS GLOBAL")
        );
        assert_eq!(
            service_of(&ranges, "10.0.201.0").as_deref(),
            Some("10.0.0.0/16 AMAZON us-east-1")
        );
        Ok(())
    }

    #[test]
    fn ipv6_and_the_ends_of_the_address_space() -> Result<(), RangesError> {
        let ranges = AwsRanges::parse(SAMPLE)?;
        assert_eq!(
            service_of(&ranges, "2600:1f14::1").as_deref(),
            Some("2600:1f14::/35 EC2 us-west-2")
        );
        assert_eq!(
            service_of(&ranges, "2600:1f20::1").as_deref(),
            Some("2600:1f00::/24 AMAZON us-west-2")
        );
        assert_eq!(service_of(&ranges, "2600:2000::1"), None);
        assert_eq!(
            service_of(&ranges, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").as_deref(),
            Some("ffff:ffff:ffff:ffff::/64 AMAZON sa-east-1")
        );
        assert_eq!(
            service_of(&ranges, "255.255.255.255").as_deref(),
            Some("255.255.255.0/24 CLOUDFRONT ap-south-1")
        );
        assert_eq!(service_of(&ranges, "0.0.0.0"), None);
        assert_eq!(service_of(&ranges, "::"), None);
        Ok(())
    }

    #[test]
    fn addresses_outside_every_prefix_are_not_found() -> Result<(), RangesError> {
        let ranges = AwsRanges::parse(SAMPLE)?;
        for address in [
            "9.255.255.255",
            "10.1.0.0",
            "192.0.1.255",
            "192.0.3.0",
            "203.0.113.9",
            "2001:db8::1",
        ] {
            assert_eq!(service_of(&ranges, address), None, "{address}");
        }
        assert_eq!(
            service_of(&ranges, "192.0.2.77").as_deref(),
            Some("192.0.2.0/24 AMAZON eu-west-1")
        );
        Ok(())
    }

    #[test]
    fn ipv4_mapped_ipv6_looks_up_as_ipv4() -> Result<(), RangesError> {
        let ranges = AwsRanges::parse(SAMPLE)?;
        assert_eq!(
            service_of(&ranges, "::ffff:10.0.16.9").as_deref(),
            Some("10.0.16.0/20 EC2 us-east-1")
        );
        assert_eq!(service_of(&ranges, "::ffff:203.0.113.9"), None);
        Ok(())
    }

    #[test]
    fn the_empty_set_finds_nothing() {
        let ranges = AwsRanges::empty();
        assert!(ranges.is_empty());
        assert_eq!(ranges.len(), 0);
        assert_eq!(ranges.sync_token(), "");
        assert_eq!(ranges.created(), None);
        assert_eq!(service_of(&ranges, "10.0.0.1"), None);
        assert_eq!(service_of(&ranges, "2600:1f14::1"), None);
    }

    #[test]
    fn a_file_with_only_ipv6_or_an_odd_date_is_accepted() -> Result<(), RangesError> {
        let ranges = AwsRanges::parse(
            r#"{"createDate": "yesterday", "prefixes": [],
                "ipv6_prefixes": [{"ipv6_prefix": "::/0", "region": "GLOBAL", "service": "AMAZON"}]}"#,
        )?;
        assert_eq!(ranges.created(), None);
        assert_eq!(ranges.sync_token(), "");
        assert_eq!(service_of(&ranges, "1234::1").as_deref(), Some("::/0 AMAZON GLOBAL"));
        assert_eq!(service_of(&ranges, "1.2.3.4"), None);
        Ok(())
    }

    #[test]
    fn malformed_files_are_rejected_with_the_reason() {
        let not_json = AwsRanges::parse("{\"prefixes\": [\n  {,}\n]}");
        assert!(
            matches!(not_json, Err(RangesError::NotJson { line: 2, column: 4, .. })),
            "{not_json:?}"
        );

        let empty = AwsRanges::parse("");
        assert!(matches!(empty, Err(RangesError::NotJson { .. })), "{empty:?}");

        let no_key = AwsRanges::parse(r#"{"syncToken": "1"}"#);
        assert!(matches!(&no_key, Err(RangesError::Shape { .. })), "{no_key:?}");
        assert!(no_key.is_err_and(|error| error.to_string().contains("missing field `prefixes`")));

        let wrong_type = AwsRanges::parse(r#"{"prefixes": "3.5.140.0/22"}"#);
        assert!(
            matches!(wrong_type, Err(RangesError::Shape { line: 1, .. })),
            "{wrong_type:?}"
        );

        let no_service = AwsRanges::parse(r#"{"prefixes": [{"ip_prefix": "3.5.140.0/22", "region": "x"}]}"#);
        assert!(matches!(no_service, Err(RangesError::Shape { .. })), "{no_service:?}");

        let nothing = AwsRanges::parse(r#"{"prefixes": [], "ipv6_prefixes": []}"#);
        assert!(matches!(nothing, Err(RangesError::NoPrefixes)), "{nothing:?}");

        let array = AwsRanges::parse("[]");
        assert!(matches!(array, Err(RangesError::Shape { .. })), "{array:?}");
    }

    #[test]
    fn a_bad_prefix_names_its_list_and_index() {
        let cases = [
            (
                r#"{"prefixes": [P, {"ip_prefix": "3.5.140.0/33", "region": "r", "service": "S"}]}"#,
                "prefixes",
                1,
            ),
            (
                r#"{"prefixes": [P, {"ip_prefix": "3.5.140.1/22", "region": "r", "service": "S"}]}"#,
                "prefixes",
                1,
            ),
            (
                r#"{"prefixes": [{"ip_prefix": "2600::/32", "region": "r", "service": "S"}]}"#,
                "prefixes",
                0,
            ),
            (
                r#"{"prefixes": [P], "ipv6_prefixes": [{"ipv6_prefix": "1.2.3.0/24", "region": "r", "service": "S"}]}"#,
                "ipv6_prefixes",
                0,
            ),
            (
                r#"{"prefixes": [P, P, {"ip_prefix": "3.5.140.0/22", "region": "us east", "service": "S"}]}"#,
                "prefixes",
                2,
            ),
            (
                r#"{"prefixes": [{"ip_prefix": "3.5.140.0/22", "region": "r", "service": "\u001b[31m"}]}"#,
                "prefixes",
                0,
            ),
            (
                r#"{"prefixes": [{"ip_prefix": "", "region": "r", "service": "S"}]}"#,
                "prefixes",
                0,
            ),
        ];
        let good = r#"{"ip_prefix": "3.5.140.0/22", "region": "r", "service": "S"}"#;
        for (text, want_list, want_index) in cases {
            let text = text.replace('P', good).replace("\"S\"", "\"EC2\"");
            match AwsRanges::parse(&text) {
                Err(RangesError::BadPrefix { list, index, .. }) => {
                    assert_eq!((list, index), (want_list, want_index), "{text}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn error_messages_quote_safely() {
        let long = "9".repeat(10_000);
        let text = format!(r#"{{"prefixes": [{{"ip_prefix": "\u0007{long}", "region": "r", "service": "S"}}]}}"#);
        let message = AwsRanges::parse(&text)
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default();
        assert!(
            message.starts_with("AWS ip-ranges file: `prefixes` entry 0 (\"\\u{7}999"),
            "{message}"
        );
        assert!(message.len() < 200, "{message}");
        assert!(!message.contains('\u{7}'));
    }

    /// Every address of a small space against a brute-force longest-prefix match.
    #[test]
    fn intervals_agree_with_brute_force() {
        // Nested and adjacent prefixes in 8-bit space, as u32 addresses 0..=255.
        let prefixes: [(u32, u8); 9] = [
            (0, 1),
            (0, 4),
            (0, 8),
            (16, 4),
            (24, 5),
            (64, 2),
            (96, 3),
            (128, 1),
            (255, 8),
        ];
        let spans = prefixes
            .iter()
            .enumerate()
            .map(|(index, &(start, len))| Span {
                start,
                end: start + (1u32 << (8 - u32::from(len))) - 1,
                len,
                entry: u32::try_from(index).unwrap_or(0),
            })
            .collect();
        let intervals = Intervals::build(spans);
        for address in 0u32..=300 {
            let want = prefixes
                .iter()
                .enumerate()
                .filter(|&(_, &(start, len))| address >= start && address < start + (1u32 << (8 - u32::from(len))))
                .max_by_key(|&(_, &(_, len))| len)
                .map(|(index, _)| u32::try_from(index).unwrap_or(0));
            assert_eq!(intervals.find(address), want, "{address}");
        }
        // Non-overlapping and sorted.
        for pair in intervals.starts.windows(2).zip(intervals.ends.windows(2)) {
            assert!(pair.0[0] <= pair.1[0] && pair.1[0] < pair.0[1]);
        }
    }

    #[test]
    fn open_names_the_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let good = dir.path().join("ip-ranges.json");
        std::fs::write(&good, SAMPLE)?;
        assert_eq!(AwsRanges::open(&good)?.len(), 12);

        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{}")?;
        let error = AwsRanges::open(&bad).err().ok_or("bad file accepted")?;
        assert!(matches!(&error, RangesError::InFile { source, .. } if matches!(**source, RangesError::Shape { .. })));
        assert!(
            error
                .to_string()
                .starts_with(&format!("{}: AWS ip-ranges file", bad.display())),
            "{error}"
        );

        let missing = dir.path().join("missing.json");
        let error = AwsRanges::open(&missing).err().ok_or("missing file opened")?;
        assert!(matches!(error, RangesError::Read { .. }));
        assert!(error.to_string().contains("missing.json"), "{error}");

        let binary = dir.path().join("binary.json");
        std::fs::write(&binary, [0xff, 0xfe, 0x00])?;
        assert!(matches!(AwsRanges::open(&binary), Err(RangesError::Read { .. })));
        Ok(())
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<AwsRanges>();
    }

    /// `cargo test -p trailhound-context --release -- --ignored --nocapture lookup_speed`
    #[test]
    #[ignore = "a measurement, not a check"]
    fn lookup_speed() {
        use std::fmt::Write;
        let mut json = String::from(r#"{"prefixes": ["#);
        let mut state: u32 = 0x1234_5678;
        let mut step = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for index in 0..10_000 {
            let address = Ipv4Addr::from(step() & 0xffff_ff00);
            let len = 16 + step() % 9;
            let net = Ipv4Net::new(address, u8::try_from(len).unwrap_or(24)).map(|net| net.trunc());
            let Ok(net) = net else { continue };
            let comma = if index == 0 { "" } else { "," };
            let _ = write!(
                json,
                r#"{comma}{{"ip_prefix": "{net}", "region": "us-east-1", "service": "EC2"}}"#
            );
        }
        json.push_str("]}");
        let Ok(ranges) = AwsRanges::parse(&json) else {
            panic!("sample did not parse")
        };
        let addresses: Vec<IpAddr> = (0..1_000_000).map(|_| IpAddr::V4(Ipv4Addr::from(step()))).collect();
        let started = std::time::Instant::now();
        let found = addresses
            .iter()
            .filter(|&&address| ranges.lookup(address).is_some())
            .count();
        let elapsed = started.elapsed();
        eprintln!(
            "{} distinct prefixes, {} intervals: {:.1} ns/lookup ({found} of 1M found)",
            ranges.distinct_prefixes(),
            ranges.v4.starts.len(),
            elapsed.as_secs_f64() * 1e9 / 1e6,
        );
    }
}
