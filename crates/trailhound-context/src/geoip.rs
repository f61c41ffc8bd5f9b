//! ASN, AS organisation and country of an address, from MaxMind-format databases the user points
//! to (`--geoip PATH`, repeatable).
//!
//! Reads MaxMind's layouts (GeoLite2/GeoIP2 ASN: `autonomous_system_number`,
//! `autonomous_system_organization`; Country and City: `country.iso_code`, else
//! `registered_country.iso_code`) and IPinfo's free databases (`asn` as `"AS15169"`, `as_name`,
//! `country_code` or `country`). Several databases merge: for each field, the first database in
//! the order given that has it wins, so an ASN database and a country database together fill
//! every field.
//!
//! The databases are untrusted files: a record is decoded into a struct whose fields accept any
//! type and keep only what makes sense (a country code is two ASCII letters, an organisation name
//! loses control and bidirectional-formatting characters); a record that cannot be decoded gives
//! nothing, and a lookup never panics. This module never downloads or updates a database.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::{MaxMindDbError, Reader, WithinOptions};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Networks walked at most when opening a database to see whether it has fields we read.
const PROBE_NETWORKS: usize = 4096;

/// Records with data decoded at most when opening a database, for the same reason.
const PROBE_RECORDS: usize = 64;

/// Longest organisation name kept, in characters.
const ORGANISATION_LIMIT: usize = 200;

/// Why a GeoIP database cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GeoIpError {
    /// The file cannot be read.
    #[error("cannot read GeoIP database {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file is not a MaxMind DB (no metadata marker, unreadable metadata).
    #[error("{} is not a MaxMind DB: {source}", .path.display())]
    NotMaxMind {
        /// The file.
        path: PathBuf,
        /// What the reader found wrong.
        source: MaxMindDbError,
    },
    /// The file has MaxMind DB metadata, but its search tree cannot be walked.
    #[error("GeoIP database {} is damaged: {source}", .path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What the reader found wrong.
        source: MaxMindDbError,
    },
    /// The file is a MaxMind DB without any field trailhound reads.
    #[error(
        "GeoIP database {} ({database_type:?}) has none of the fields trailhound reads \
         (ASN, AS organisation, country)",
        .path.display()
    )]
    UnknownFields {
        /// The file.
        path: PathBuf,
        /// The database type its metadata claims (`database_type`), cleaned for printing.
        database_type: String,
    },
}

/// What the databases say about one address. Every field is optional: databases cover different
/// things and not every address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeoInfo {
    /// Autonomous system number, e.g. `15169`.
    pub asn: Option<u32>,
    /// The organisation of that autonomous system, without control characters.
    pub as_org: Option<String>,
    /// ISO 3166-1 alpha-2 country code, two uppercase ASCII letters.
    pub country: Option<String>,
}

impl GeoInfo {
    /// Whether no field is known.
    pub fn is_empty(&self) -> bool {
        self.asn.is_none() && self.as_org.is_none() && self.country.is_none()
    }

    fn is_complete(&self) -> bool {
        self.asn.is_some() && self.as_org.is_some() && self.country.is_some()
    }
}

/// Open MaxMind-format databases, in the order given.
///
/// `Send` and `Sync`: one is shared by reference between scan threads.
pub struct GeoIp {
    databases: Vec<Database>,
}

struct Database {
    path: PathBuf,
    reader: Reader<Vec<u8>>,
}

impl GeoIp {
    /// Opens each database (read whole into memory) and checks that it has fields we read.
    /// No path gives a `GeoIp` that knows nothing.
    ///
    /// # Errors
    ///
    /// The first file that cannot be read, is not a MaxMind DB, is damaged at the start of its
    /// search tree, or has none of the fields we read.
    pub fn open(paths: &[PathBuf]) -> Result<GeoIp, GeoIpError> {
        let databases = paths
            .iter()
            .map(|path| {
                let bytes = std::fs::read(path).map_err(|source| GeoIpError::Read {
                    path: path.clone(),
                    source,
                })?;
                Database::new(path, bytes)
            })
            .collect::<Result<_, _>>()?;
        Ok(GeoIp { databases })
    }

    /// What the databases know about `ip`; for each field the first database that has it wins.
    /// An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) is looked up as the IPv4 address. A
    /// database that fails on this address (a damaged record, an IPv6 address in an IPv4-only
    /// database) gives nothing for it.
    pub fn lookup(&self, ip: IpAddr) -> GeoInfo {
        let ip = ip.to_canonical();
        let mut info = GeoInfo::default();
        for database in &self.databases {
            if info.is_complete() {
                break;
            }
            if let Some(record) = database.record(ip) {
                record.fill(&mut info);
            }
        }
        info
    }

    /// One line per database: its path, database type and build date, e.g.
    /// `GeoLite2-ASN.mmdb: GeoLite2-ASN, built 2026-11-24`.
    pub fn describe(&self) -> Vec<String> {
        self.databases
            .iter()
            .map(|database| {
                let metadata = database.reader.metadata();
                let built = i64::try_from(metadata.build_epoch)
                    .ok()
                    .and_then(|epoch| chrono::DateTime::from_timestamp(epoch, 0))
                    .map_or_else(|| "unknown".to_owned(), |time| time.format("%Y-%m-%d").to_string());
                format!(
                    "{}: {}, built {built}",
                    database.path.display(),
                    clean_text(&metadata.database_type, ORGANISATION_LIMIT).unwrap_or_default()
                )
            })
            .collect()
    }

    /// How many databases are open.
    pub fn len(&self) -> usize {
        self.databases.len()
    }

    /// Whether no database is open (every lookup is empty).
    pub fn is_empty(&self) -> bool {
        self.databases.is_empty()
    }
}

impl fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.databases.iter().map(|database| {
                (
                    &database.path,
                    &database.reader.metadata().database_type,
                    database.reader.metadata().build_epoch,
                )
            }))
            .finish()
    }
}

impl Database {
    fn new(path: &Path, bytes: Vec<u8>) -> Result<Database, GeoIpError> {
        let reader = Reader::from_source(bytes).map_err(|source| GeoIpError::NotMaxMind {
            path: path.to_path_buf(),
            source,
        })?;
        let database = Database {
            path: path.to_path_buf(),
            reader,
        };
        match database.has_known_fields() {
            Ok(true) => Ok(database),
            Ok(false) => Err(GeoIpError::UnknownFields {
                path: database.path,
                database_type: clean_text(&database.reader.metadata().database_type, ORGANISATION_LIMIT)
                    .unwrap_or_default(),
            }),
            Err(source) => Err(GeoIpError::Damaged {
                path: database.path,
                source,
            }),
        }
    }

    /// Whether one of the first records has a field we read. Networks without data are walked
    /// too (and counted), so that a tree of empty branches cannot keep this busy.
    fn has_known_fields(&self) -> Result<bool, MaxMindDbError> {
        let options = WithinOptions::default().include_networks_without_data();
        let mut records = 0;
        for network in self.reader.networks(options)?.take(PROBE_NETWORKS) {
            let network = network?;
            if !network.has_data() {
                continue;
            }
            if let Ok(Some(record)) = network.decode::<Record<'_>>() {
                let mut info = GeoInfo::default();
                record.fill(&mut info);
                if !info.is_empty() {
                    return Ok(true);
                }
            }
            records += 1;
            if records >= PROBE_RECORDS {
                break;
            }
        }
        Ok(false)
    }

    fn record(&self, ip: IpAddr) -> Option<Record<'_>> {
        self.reader.lookup(ip).ok()?.decode::<Record<'_>>().ok()?
    }
}

/// The fields we read of a record, in MaxMind's and IPinfo's names; others are skipped unread.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Record<'a> {
    #[serde(borrow)]
    autonomous_system_number: Loose<'a>,
    #[serde(borrow)]
    autonomous_system_organization: Loose<'a>,
    /// MaxMind: a map with `iso_code`; IPinfo: the code, or (IPinfo Lite) the country's name.
    #[serde(borrow)]
    country: Loose<'a>,
    #[serde(borrow)]
    registered_country: Loose<'a>,
    #[serde(borrow)]
    country_code: Loose<'a>,
    #[serde(borrow)]
    asn: Loose<'a>,
    #[serde(borrow)]
    as_name: Loose<'a>,
}

impl Record<'_> {
    /// Sets the fields of `info` that are still empty from this record.
    fn fill(&self, info: &mut GeoInfo) {
        if info.asn.is_none() {
            info.asn = self.autonomous_system_number.asn().or_else(|| self.asn.asn());
        }
        if info.as_org.is_none() {
            info.as_org = self
                .autonomous_system_organization
                .text()
                .or_else(|| self.as_name.text())
                .and_then(|text| clean_text(text, ORGANISATION_LIMIT));
        }
        if info.country.is_none() {
            info.country = [
                self.country.iso_code(),
                self.country_code.text(),
                self.country.text(),
                self.registered_country.iso_code(),
            ]
            .into_iter()
            .flatten()
            .find_map(country_code);
        }
    }
}

/// A field value of whatever type the database has, reduced to what we can use.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Loose<'a> {
    #[default]
    Absent,
    Text(&'a str),
    Number(u64),
    /// A map; its `iso_code` if that is a string.
    Map(Option<&'a str>),
    /// Anything else (arrays, booleans, floats, bytes, negative numbers).
    Other,
}

impl<'a> Loose<'a> {
    fn text(self) -> Option<&'a str> {
        match self {
            Loose::Text(text) => Some(text),
            _ => None,
        }
    }

    fn iso_code(self) -> Option<&'a str> {
        match self {
            Loose::Map(code) => code,
            _ => None,
        }
    }

    /// An AS number: an integer (MaxMind), or `"AS15169"` or `"15169"` (IPinfo). Zero is "none".
    fn asn(self) -> Option<u32> {
        let number = match self {
            Loose::Number(number) => u32::try_from(number).ok(),
            Loose::Text(text) => {
                let text = text.trim();
                let digits = match text.get(..2) {
                    Some(prefix) if prefix.eq_ignore_ascii_case("AS") => text.get(2..).unwrap_or_default(),
                    _ => text,
                };
                if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
                    return None;
                }
                digits.parse().ok()
            }
            _ => None,
        };
        number.filter(|&number| number != 0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LooseVisitor)
    }
}

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any MaxMind DB value")
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(Loose::Text(value))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Loose::Other)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(Loose::Number(value))
    }

    fn visit_u128<E: de::Error>(self, value: u128) -> Result<Self::Value, E> {
        Ok(u64::try_from(value).map_or(Loose::Other, Loose::Number))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(u64::try_from(value).map_or(Loose::Other, Loose::Number))
    }

    fn visit_i128<E: de::Error>(self, value: i128) -> Result<Self::Value, E> {
        Ok(u64::try_from(value).map_or(Loose::Other, Loose::Number))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Loose::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Loose::Other)
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
        Ok(Loose::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Loose::Other)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Loose::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Loose::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut iso_code = None;
        while let Some(key) = map.next_key::<Loose<'de>>()? {
            if key == Loose::Text("iso_code") {
                iso_code = map.next_value::<Loose<'de>>()?.text();
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Loose::Map(iso_code))
    }
}

/// An ISO country code: exactly two ASCII letters, uppercased.
fn country_code(text: &str) -> Option<String> {
    let text = text.trim();
    (text.len() == 2 && text.bytes().all(|byte| byte.is_ascii_alphabetic())).then(|| text.to_ascii_uppercase())
}

/// `text` without control characters or bidirectional formatting (both can rewrite what a
/// terminal shows), each run of whitespace one space, at most `limit` characters; `None` if
/// nothing is left.
fn clean_text(text: &str, limit: usize) -> Option<String> {
    let mut out = String::with_capacity(text.len().min(limit));
    let mut count = 0;
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if c.is_control() || is_bidi_format(c) {
            continue;
        }
        if space {
            out.push(' ');
            count += 1;
            space = false;
        }
        if count >= limit {
            break;
        }
        out.push(c);
        count += 1;
    }
    let kept = out.trim_end().len();
    out.truncate(kept);
    (!out.is_empty()).then_some(out)
}

/// Unicode's explicit direction marks, embeddings, overrides and isolates.
fn is_bidi_format(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use ipnet::IpNet;

    use super::*;
    use crate::testdb::{self, Entry, Value};

    type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

    fn net(text: &str) -> IpNet {
        text.parse().unwrap_or_default()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    fn info(asn: Option<u32>, as_org: Option<&str>, country: Option<&str>) -> GeoInfo {
        GeoInfo {
            asn,
            as_org: as_org.map(str::to_owned),
            country: country.map(str::to_owned),
        }
    }

    fn open_bytes(bytes: Vec<u8>) -> std::result::Result<GeoIp, GeoIpError> {
        Ok(GeoIp {
            databases: vec![Database::new(Path::new("test.mmdb"), bytes)?],
        })
    }

    /// An ASN database, a country database (MaxMind's layouts) and an IPinfo database, in files.
    struct Files {
        _dir: tempfile::TempDir,
        asn: PathBuf,
        country: PathBuf,
        ipinfo: PathBuf,
    }

    fn files() -> Result<Files> {
        let dir = tempfile::tempdir()?;
        let asn = dir.path().join("GeoLite2-ASN.mmdb");
        let country = dir.path().join("GeoLite2-Country.mmdb");
        let ipinfo = dir.path().join("country_asn.mmdb");
        let as_only = |network: &str, asn: u32, org: &str| Entry {
            network: net(network),
            asn: Some(asn),
            as_org: Some(org.to_owned()),
            country: None,
        };
        testdb::write_mmdb(
            &[
                as_only("198.51.0.0/16", 64_500, "Outer Org"),
                as_only("198.51.100.0/24", 64_501, "Inner Org"),
                as_only("2001:db8::/32", 64_502, "Six Org"),
            ],
            "GeoLite2-ASN",
            &asn,
        )?;
        let country_only = |network: &str, code: &str| Entry {
            network: net(network),
            country: Some(code.to_owned()),
            ..Entry::default()
        };
        testdb::write_mmdb(
            &[country_only("198.51.0.0/16", "DE"), country_only("2001:db8::/32", "nl")],
            "GeoLite2-Country",
            &country,
        )?;
        testdb::write_ipinfo_mmdb(
            &[
                Entry {
                    network: net("198.51.100.0/24"),
                    asn: Some(65_000),
                    as_org: Some("IPinfo Org".into()),
                    country: Some("FR".into()),
                },
                Entry {
                    network: net("203.0.113.0/24"),
                    asn: Some(65_001),
                    as_org: Some("Only IPinfo".into()),
                    country: Some("JP".into()),
                },
            ],
            &ipinfo,
        )?;
        Ok(Files {
            _dir: dir,
            asn,
            country,
            ipinfo,
        })
    }

    #[test]
    fn databases_merge_first_one_wins_per_field() -> Result {
        let files = files()?;
        let geoip = GeoIp::open(&[files.asn.clone(), files.country.clone(), files.ipinfo.clone()])?;
        assert_eq!(geoip.len(), 3);
        // ASN from the ASN database (the /24 inside the /16), country from the country database.
        assert_eq!(
            geoip.lookup(ip("198.51.100.7")),
            info(Some(64_501), Some("Inner Org"), Some("DE"))
        );
        assert_eq!(
            geoip.lookup(ip("198.51.7.7")),
            info(Some(64_500), Some("Outer Org"), Some("DE"))
        );
        // Only IPinfo knows this one.
        assert_eq!(
            geoip.lookup(ip("203.0.113.1")),
            info(Some(65_001), Some("Only IPinfo"), Some("JP"))
        );
        // IPv6; the country code is uppercased.
        assert_eq!(
            geoip.lookup(ip("2001:db8::5")),
            info(Some(64_502), Some("Six Org"), Some("NL"))
        );
        // Nobody knows.
        assert_eq!(geoip.lookup(ip("8.8.8.8")), GeoInfo::default());
        assert!(geoip.lookup(ip("2001:db9::1")).is_empty());

        // IPinfo first: it wins where it knows.
        let geoip = GeoIp::open(&[files.ipinfo.clone(), files.asn.clone(), files.country.clone()])?;
        assert_eq!(
            geoip.lookup(ip("198.51.100.7")),
            info(Some(65_000), Some("IPinfo Org"), Some("FR"))
        );
        assert_eq!(
            geoip.lookup(ip("198.51.7.7")),
            info(Some(64_500), Some("Outer Org"), Some("DE"))
        );
        Ok(())
    }

    #[test]
    fn ipv4_mapped_addresses_look_up_as_ipv4() -> Result {
        let files = files()?;
        let geoip = GeoIp::open(&[files.asn])?;
        assert_eq!(geoip.lookup(ip("::ffff:198.51.100.7")).asn, Some(64_501));
        Ok(())
    }

    #[test]
    fn no_database_knows_nothing() -> Result {
        let geoip = GeoIp::open(&[])?;
        assert!(geoip.is_empty());
        assert!(geoip.lookup(ip("198.51.100.7")).is_empty());
        assert!(geoip.describe().is_empty());
        Ok(())
    }

    #[test]
    fn describe_names_path_type_and_build_date() -> Result {
        let files = files()?;
        let geoip = GeoIp::open(&[files.asn.clone(), files.ipinfo.clone()])?;
        assert_eq!(
            geoip.describe(),
            [
                format!("{}: GeoLite2-ASN, built 2026-01-01", files.asn.display()),
                format!("{}: ipinfo country_asn.mmdb, built 2026-01-01", files.ipinfo.display()),
            ]
        );
        assert!(format!("{geoip:?}").contains("GeoLite2-ASN"));
        Ok(())
    }

    #[test]
    fn ipinfo_lite_names_and_other_spellings() -> Result {
        // IPinfo Lite: `country` is the name, `country_code` the code; an ASN without "AS".
        let records = [
            (
                net("192.0.2.0/24"),
                Value::map([
                    ("asn", Value::text("AS15169")),
                    ("as_name", Value::text("Example LLC")),
                    ("as_domain", Value::text("example.com")),
                    ("country", Value::text("United States")),
                    ("country_code", Value::text("us")),
                    ("continent", Value::text("North America")),
                ]),
            ),
            (
                net("198.51.100.0/24"),
                Value::map([("asn", Value::text("64512")), ("country", Value::text("de"))]),
            ),
            // A City record: no country, only the registered country; names and ids skipped.
            (
                net("203.0.113.0/24"),
                Value::map([
                    (
                        "city",
                        Value::map([
                            ("geoname_id", Value::Uint32(1)),
                            ("names", Value::map([("en", Value::text("X"))])),
                        ]),
                    ),
                    (
                        "registered_country",
                        Value::map([
                            ("geoname_id", Value::Uint32(2_921_044)),
                            ("is_in_european_union", Value::Bool(true)),
                            ("iso_code", Value::text("DE")),
                            (
                                "names",
                                Value::map([("de", Value::text("Deutschland")), ("en", Value::text("Germany"))]),
                            ),
                        ]),
                    ),
                    (
                        "subdivisions",
                        Value::Array(vec![Value::map([("iso_code", Value::text("BE"))])]),
                    ),
                ]),
            ),
        ];
        let geoip = open_bytes(testdb::records_bytes(&records, "ipinfo ipinfo_lite.mmdb")?)?;
        assert_eq!(
            geoip.lookup(ip("192.0.2.1")),
            info(Some(15_169), Some("Example LLC"), Some("US"))
        );
        assert_eq!(geoip.lookup(ip("198.51.100.1")), info(Some(64_512), None, Some("DE")));
        assert_eq!(geoip.lookup(ip("203.0.113.1")), info(None, None, Some("DE")));
        Ok(())
    }

    #[test]
    fn hostile_values_are_cleaned_or_dropped() -> Result {
        let records = [
            (
                net("192.0.2.0/24"),
                Value::map([
                    ("autonomous_system_number", Value::Uint32(0)),
                    ("asn", Value::text("AS4294967296")),
                    (
                        "autonomous_system_organization",
                        Value::text("\u{1b}[31mEvil\u{7}\u{202e}  Corp\r\n\u{9b}2J "),
                    ),
                    ("country", Value::map([("iso_code", Value::text("D\u{1b}"))])),
                    ("country_code", Value::text("USA")),
                    ("registered_country", Value::map([("iso_code", Value::Uint32(7))])),
                ]),
            ),
            // Fields of the wrong type: ignored, the others still read.
            (
                net("198.51.100.0/24"),
                Value::map([
                    ("autonomous_system_number", Value::text("not a number")),
                    ("asn", Value::Array(vec![Value::Uint32(1)])),
                    ("autonomous_system_organization", Value::Uint32(5)),
                    ("as_name", Value::text(" \t ")),
                    ("country", Value::Bool(true)),
                    ("registered_country", Value::map([("iso_code", Value::text("fr"))])),
                ]),
            ),
            (
                net("203.0.113.0/24"),
                Value::map([
                    ("autonomous_system_number", Value::Uint64(u64::from(u32::MAX) + 1)),
                    ("as_name", Value::text("x".repeat(5_000))),
                    ("country", Value::text("ÄÖ")),
                ]),
            ),
        ];
        let geoip = open_bytes(testdb::records_bytes(&records, "Hostile")?)?;
        assert_eq!(
            geoip.lookup(ip("192.0.2.1")),
            info(None, Some("[31mEvil Corp 2J"), None)
        );
        assert_eq!(geoip.lookup(ip("198.51.100.1")), info(None, None, Some("FR")));
        let long = geoip.lookup(ip("203.0.113.1"));
        assert_eq!((long.asn, long.country), (None, None));
        assert_eq!(long.as_org.map(|org| org.chars().count()), Some(ORGANISATION_LIMIT));
        Ok(())
    }

    #[test]
    fn a_record_that_is_not_a_map_gives_nothing() -> Result {
        let records = [
            (
                net("192.0.2.0/24"),
                Value::map([("autonomous_system_number", Value::Uint32(64_500))]),
            ),
            (net("198.51.100.0/24"), Value::text("just a string")),
            (net("203.0.113.0/24"), Value::Array(vec![Value::Uint32(64_500)])),
        ];
        let geoip = open_bytes(testdb::records_bytes(&records, "Odd")?)?;
        assert_eq!(geoip.lookup(ip("192.0.2.1")).asn, Some(64_500));
        assert!(geoip.lookup(ip("198.51.100.1")).is_empty());
        assert!(geoip.lookup(ip("203.0.113.1")).is_empty());
        Ok(())
    }

    #[test]
    fn a_database_without_our_fields_is_refused_with_its_type() -> Result {
        let records = [
            (
                net("192.0.2.0/24"),
                Value::map([("connection_type", Value::text("Cable/DSL"))]),
            ),
            (net("198.51.100.0/24"), Value::map::<&str>([])),
        ];
        let error = open_bytes(testdb::records_bytes(
            &records,
            "GeoIP2-Connection-Type\u{1b}]0;x\u{7}",
        )?);
        match error {
            Err(GeoIpError::UnknownFields { database_type, .. }) => {
                assert_eq!(database_type, "GeoIP2-Connection-Type]0;x");
            }
            other => return Err(format!("{other:?}").into()),
        }
        let empty = open_bytes(testdb::records_bytes(&[], "Empty")?);
        assert!(matches!(empty, Err(GeoIpError::UnknownFields { .. })), "{empty:?}");
        Ok(())
    }

    #[test]
    fn unreadable_and_non_maxmind_files_name_the_file() -> Result {
        let dir = tempfile::tempdir()?;
        let missing = dir.path().join("missing.mmdb");
        let error = GeoIp::open(std::slice::from_ref(&missing))
            .err()
            .ok_or("missing file opened")?;
        assert!(matches!(error, GeoIpError::Read { .. }));
        assert!(error.to_string().contains(&missing.display().to_string()), "{error}");

        let garbage = dir.path().join("garbage.mmdb");
        std::fs::write(&garbage, b"this is not a database at all")?;
        let error = GeoIp::open(std::slice::from_ref(&garbage))
            .err()
            .ok_or("garbage opened")?;
        assert!(matches!(error, GeoIpError::NotMaxMind { .. }), "{error:?}");
        assert!(error.to_string().contains("garbage.mmdb"), "{error}");

        let folder = GeoIp::open(&[dir.path().to_path_buf()]);
        assert!(matches!(folder, Err(GeoIpError::Read { .. })), "{folder:?}");
        Ok(())
    }

    /// Every truncation and many single-byte corruptions of a valid database: `open` may refuse
    /// it, lookups may find nothing, but nothing panics or hangs.
    #[test]
    fn damaged_databases_never_panic() -> Result {
        let entries = [
            Entry {
                network: net("198.51.0.0/16"),
                asn: Some(64_500),
                as_org: Some("Outer Org".into()),
                country: Some("DE".into()),
            },
            Entry {
                network: net("198.51.100.0/24"),
                asn: Some(64_501),
                as_org: Some("Inner".into()),
                country: Some("FR".into()),
            },
            Entry {
                network: net("2001:db8::/32"),
                asn: Some(64_502),
                as_org: None,
                country: Some("NL".into()),
            },
        ];
        let bytes = testdb::maxmind_bytes(&entries, "GeoLite2-ASN")?;
        let probes = [
            "198.51.100.7",
            "198.51.7.7",
            "2001:db8::1",
            "8.8.8.8",
            "::",
            "255.255.255.255",
        ]
        .map(ip);
        let mut opened = 0;
        let mut found = 0;
        let mut exercise = |bytes: Vec<u8>| {
            if let Ok(geoip) = open_bytes(bytes) {
                opened += 1;
                for probe in probes {
                    found += usize::from(!geoip.lookup(probe).is_empty());
                }
                let _ = geoip.describe();
            }
        };
        for len in 0..bytes.len() {
            exercise(bytes[..len].to_vec());
        }
        for position in 0..bytes.len() {
            for replacement in [0x00, 0xff, 0x20, 0x7f, 0xe0, 0x01] {
                let mut damaged = bytes.clone();
                if let Some(byte) = damaged.get_mut(position) {
                    *byte ^= replacement;
                }
                exercise(damaged);
            }
        }
        // A tree pointing back at its own root everywhere.
        let node_bytes = bytes.len().min(600);
        let mut cyclic = bytes.clone();
        cyclic[..node_bytes].fill(0);
        exercise(cyclic);
        // Most corruptions leave a database that still opens and answers.
        assert!(
            opened > bytes.len() && found > bytes.len(),
            "{opened} opened, {found} found"
        );
        Ok(())
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<GeoIp>();
    }

    /// `cargo test -p trailhound-context --release --lib -- --ignored --nocapture geoip_lookup_speed`
    #[test]
    #[ignore = "a measurement, not a check"]
    fn geoip_lookup_speed() -> Result {
        let mut state: u32 = 0x9e37_79b9;
        let mut step = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        let entries: Vec<Entry> = (0..20_000u32)
            .map(|index| Entry {
                network: IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::from(index << 12), 20).unwrap_or_default()),
                asn: Some(64_512 + index % 1_000),
                as_org: Some(format!("Organisation {}", index % 1_000)),
                country: Some(["DE", "US", "FR", "JP"][usize::try_from(index % 4).unwrap_or(0)].to_owned()),
            })
            .collect();
        let geoip = open_bytes(testdb::maxmind_bytes(&entries, "GeoLite2-ASN")?)?;
        let addresses: Vec<IpAddr> = (0..1_000_000)
            .map(|_| IpAddr::V4(Ipv4Addr::from(step() % (20_000 << 12))))
            .collect();
        let started = std::time::Instant::now();
        let found = addresses
            .iter()
            .filter(|&&address| geoip.lookup(address).asn.is_some())
            .count();
        let elapsed = started.elapsed();
        eprintln!(
            "{:.1} ns/lookup ({found} of 1M found)",
            elapsed.as_secs_f64() * 1e9 / 1e6
        );
        Ok(())
    }

    #[test]
    fn text_cleaning() {
        assert_eq!(
            clean_text("  Amazon.com,\tInc.  ", 200).as_deref(),
            Some("Amazon.com, Inc.")
        );
        assert_eq!(clean_text("\u{0}\u{1b}\u{7f}\u{85}\u{2066}", 200), None);
        assert_eq!(clean_text("abcdef", 3).as_deref(), Some("abc"));
        assert_eq!(clean_text("ab cdef", 3).as_deref(), Some("ab"));
        assert_eq!(country_code(" gb ").as_deref(), Some("GB"));
        assert_eq!(country_code("G1"), None);
        assert_eq!(country_code(""), None);
        assert_eq!(Loose::Text("as64500").asn(), Some(64_500));
        assert_eq!(Loose::Text("AS").asn(), None);
        assert_eq!(Loose::Text("AS-1").asn(), None);
        assert_eq!(Loose::Text("AS+1").asn(), None);
        assert_eq!(Loose::Number(7).asn(), Some(7));
    }
}
