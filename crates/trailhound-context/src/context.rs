//! The context a hunt derives for each record: the `trailhound.` fields.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use trailhound_event::{Derived, DerivedField, FieldPath, Record};

use crate::baseline::{BaselineOptions, Baselines};
use crate::geoip::{GeoInfo, GeoIp};
use crate::principal;
use crate::ranges::AwsRanges;
use crate::source::{Source, SourceKind, prefix_network};

/// The network of a call, before it is written as `trailhound.src.network`.
enum Network {
    Aws,
    Vpc,
    Private,
    Other(String),
}

/// Addresses a worker's [`Cache`] remembers before it starts afresh.
const CACHE_ADDRESSES: usize = 65_536;

/// What trailhound knows beyond the records: AWS's ranges, GeoIP databases, baselines. Shared
/// by every scan worker (it is only read).
#[derive(Debug)]
pub struct Context {
    ranges: Arc<AwsRanges>,
    geoip: Option<Arc<GeoIp>>,
    /// The profiles as they were when the run started: every event is judged against these.
    baselines: Option<Baselines>,
    options: BaselineOptions,
    vpc_endpoint: FieldPath,
    web_identity: FieldPath,
}

/// A worker's memory of GeoIP answers (consecutive events mostly come from a few addresses).
#[derive(Debug, Default)]
pub struct Cache {
    geo: HashMap<IpAddr, GeoInfo>,
}

impl Context {
    /// A context with AWS's ranges (possibly [`AwsRanges::empty`]) and GeoIP databases.
    pub fn new(ranges: Arc<AwsRanges>, geoip: Option<Arc<GeoIp>>) -> Context {
        Context {
            ranges,
            geoip,
            baselines: None,
            options: BaselineOptions::default(),
            vpc_endpoint: FieldPath::new("vpcEndpointId"),
            web_identity: principal::web_identity_path(),
        }
    }

    /// Judges events against `baselines` (the profiles earlier runs learned).
    pub fn with_baselines(mut self, baselines: Baselines, options: BaselineOptions) -> Context {
        self.baselines = Some(baselines);
        self.options = options;
        self
    }

    /// The baselines events are judged against, if any.
    pub fn baselines(&self) -> Option<&Baselines> {
        self.baselines.as_ref()
    }

    /// How baselines judge.
    pub fn baseline_options(&self) -> &BaselineOptions {
        &self.options
    }

    /// AWS's ranges in use.
    pub fn ranges(&self) -> &AwsRanges {
        &self.ranges
    }

    /// The GeoIP databases in use.
    pub fn geoip(&self) -> Option<&GeoIp> {
        self.geoip.as_deref()
    }

    /// Works out the derived fields of `record`.
    pub fn derive(&self, record: &Record<'_>, cache: &mut Cache) -> Derived {
        let mut d = Derived::with_capacity(12);
        let source = Source::classify(record.source_ip.as_deref());
        d.set_word(DerivedField::SrcKind, source.kind.name());
        let mut aws = None;
        let network = match (source.kind, source.ip) {
            (SourceKind::AwsService, _) => {
                aws = Some(true);
                d.set_some(DerivedField::SrcAwsService, record.source_ip.as_deref());
                Some(Network::Aws)
            }
            (SourceKind::AwsInternal, _) => {
                aws = Some(true);
                Some(Network::Aws)
            }
            (_, Some(_)) if source.private() => {
                d.set(DerivedField::SrcPrivate, true);
                let endpoint = record.visit(&self.vpc_endpoint, &mut |v| v.text().is_some_and(|t| !t.is_empty()));
                if endpoint {
                    aws = Some(true);
                    Some(Network::Vpc)
                } else {
                    Some(Network::Private)
                }
            }
            (_, Some(ip)) => {
                d.set(DerivedField::SrcPrivate, false);
                if let Some(range) = self.ranges.lookup(ip) {
                    aws = Some(true);
                    d.set(DerivedField::SrcAwsService, range.service);
                    d.set(DerivedField::SrcAwsRegion, range.region);
                } else if !self.ranges.is_empty() {
                    aws = Some(false);
                }
                let geo = self.geo(ip, cache);
                d.set_some(DerivedField::SrcAsn, geo.asn.map(u64::from));
                d.set_some(DerivedField::SrcAsOrg, geo.as_org.as_deref());
                d.set_some(DerivedField::SrcCountry, geo.country.as_deref());
                Some(match (aws, geo.asn) {
                    (Some(true), _) => Network::Aws,
                    (_, Some(asn)) => Network::Other(format!("AS{asn}")),
                    (_, None) => Network::Other(prefix_network(ip)),
                })
            }
            _ => None,
        };
        d.set_some(DerivedField::SrcAws, aws);
        match network {
            Some(Network::Aws) => d.set_word(DerivedField::SrcNetwork, "aws"),
            Some(Network::Vpc) => d.set_word(DerivedField::SrcNetwork, "vpc"),
            Some(Network::Private) => d.set_word(DerivedField::SrcNetwork, "private"),
            Some(Network::Other(name)) => d.set(DerivedField::SrcNetwork, name),
            None => {}
        }
        let principal = principal::classify(record, source.kind, &self.web_identity);
        d.set_word(DerivedField::PrincipalKind, principal.kind.name());
        d.set_some(DerivedField::PrincipalId, principal.id);
        d.set(DerivedField::PrincipalByAws, principal.by_aws);
        d.set_some(DerivedField::PrincipalInstance, principal.instance);
        if let Some(baselines) = &self.baselines {
            baselines.judge(record, &mut d, &self.options);
        }
        d
    }

    fn geo(&self, ip: IpAddr, cache: &mut Cache) -> GeoInfo {
        let Some(geoip) = &self.geoip else {
            return GeoInfo::default();
        };
        if let Some(info) = cache.geo.get(&ip) {
            return info.clone();
        }
        let info = geoip.lookup(ip);
        if cache.geo.len() >= CACHE_ADDRESSES {
            cache.geo.clear();
        }
        cache.geo.insert(ip, info.clone());
        info
    }
}
