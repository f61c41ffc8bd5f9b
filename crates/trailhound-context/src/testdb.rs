//! Small MaxMind DB files for tests (feature `testing`): the tests of this crate, of the hunt
//! engine and of the command line make their own GeoIP databases instead of shipping or
//! downloading one.
//!
//! A compact writer of the MaxMind DB format, version 2.0: an IPv6 binary search tree (IPv4
//! networks under `::/96`, without the `::ffff:0:0/96` or 6to4 aliases real databases carry, so
//! callers look IPv4-mapped addresses up as IPv4), 24- or 28-bit records, the 16-byte separator,
//! a data section without pointers (identical records are stored once), then the metadata after
//! `\xAB\xCD\xEFMaxMind.com`. It is written for test data only: no speed or size work, and a
//! network given twice keeps the later record.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use ipnet::IpNet;

/// The build time written to every database (2026-01-01 00:00:00 UTC), so files are reproducible.
pub const BUILD_EPOCH: u64 = 1_767_225_600;

/// What a test database says about one network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    /// The network; host bits are ignored.
    pub network: IpNet,
    /// Autonomous system number.
    pub asn: Option<u32>,
    /// Autonomous system organisation.
    pub as_org: Option<String>,
    /// Country code, written as given.
    pub country: Option<String>,
}

/// A data-section value, for records of any shape (e.g. a field of an unexpected type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A UTF-8 string.
    Text(String),
    /// An unsigned 16-bit integer.
    Uint16(u16),
    /// An unsigned 32-bit integer.
    Uint32(u32),
    /// An unsigned 64-bit integer.
    Uint64(u64),
    /// A boolean.
    Bool(bool),
    /// An array.
    Array(Vec<Value>),
    /// A map, keys in the order given.
    Map(Vec<(String, Value)>),
}

impl Value {
    /// A map from `(key, value)` pairs.
    pub fn map<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Map(pairs.into_iter().map(|(key, value)| (key.into(), value)).collect())
    }

    /// A string.
    pub fn text(text: impl Into<String>) -> Value {
        Value::Text(text.into())
    }
}

/// Writes `entries` in MaxMind's layout (as GeoLite2-ASN and GeoLite2-Country together):
/// `{"autonomous_system_number": u32, "autonomous_system_organization": str,
/// "country": {"iso_code": str}}`, each field only when the entry has it.
///
/// # Errors
///
/// When the file cannot be written (the error names it).
pub fn write_mmdb(entries: &[Entry], database_type: &str, path: &Path) -> io::Result<()> {
    write_file(path, &maxmind_bytes(entries, database_type)?)
}

/// Writes `entries` in IPinfo's layout (as `country_asn.mmdb`): `{"asn": "AS123",
/// "as_name": str, "country": "DE"}`, each field only when the entry has it.
///
/// # Errors
///
/// When the file cannot be written (the error names it).
pub fn write_ipinfo_mmdb(entries: &[Entry], path: &Path) -> io::Result<()> {
    write_file(path, &ipinfo_bytes(entries)?)
}

/// Writes a database whose records are given as they are.
///
/// # Errors
///
/// When the file cannot be written (the error names it).
pub fn write_records(records: &[(IpNet, Value)], database_type: &str, path: &Path) -> io::Result<()> {
    write_file(path, &records_bytes(records, database_type)?)
}

/// The bytes [`write_mmdb`] writes.
///
/// # Errors
///
/// Only for databases too large for this writer (over 2^28 nodes and data bytes).
pub fn maxmind_bytes(entries: &[Entry], database_type: &str) -> io::Result<Vec<u8>> {
    let records: Vec<_> = entries
        .iter()
        .map(|entry| (entry.network, maxmind_record(entry)))
        .collect();
    records_bytes(&records, database_type)
}

/// The bytes [`write_ipinfo_mmdb`] writes.
///
/// # Errors
///
/// Only for databases too large for this writer.
pub fn ipinfo_bytes(entries: &[Entry]) -> io::Result<Vec<u8>> {
    let records: Vec<_> = entries
        .iter()
        .map(|entry| (entry.network, ipinfo_record(entry)))
        .collect();
    records_bytes(&records, "ipinfo country_asn.mmdb")
}

/// The bytes [`write_records`] writes.
///
/// # Errors
///
/// Only for databases too large for this writer.
pub fn records_bytes(records: &[(IpNet, Value)], database_type: &str) -> io::Result<Vec<u8>> {
    // Broader networks first, so a more specific one inserted later splits them; the stable
    // sort keeps the given order among equal lengths, so a repeated network keeps its last record.
    let mut order: Vec<&(IpNet, Value)> = records.iter().collect();
    order.sort_by_key(|(network, _)| tree_prefix(network).1);

    let mut tree = Tree::default();
    let mut data = Vec::new();
    let mut stored: HashMap<Vec<u8>, usize> = HashMap::new();
    for (network, value) in order {
        let mut encoded = Vec::new();
        encode(value, &mut encoded)?;
        let offset = match stored.get(&encoded) {
            Some(&offset) => offset,
            None => {
                let offset = data.len();
                data.extend_from_slice(&encoded);
                stored.insert(encoded, offset);
                offset
            }
        };
        let (address, len) = tree_prefix(network);
        tree.insert(address, len, offset);
    }

    let node_count = tree.nodes.len();
    let largest = node_count + DATA_SECTION_SEPARATOR.len() + data.len();
    let record_size: u16 = if largest < 1 << 24 {
        24
    } else if largest < 1 << 28 {
        28
    } else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "test database too large"));
    };

    let mut out = Vec::new();
    for node in &tree.nodes {
        let [left, right] = node.map(|record| match record {
            Record::Empty => node_count,
            Record::Node(next) => next,
            Record::Data(offset) => node_count + DATA_SECTION_SEPARATOR.len() + offset,
        });
        write_node(&mut out, left, right, record_size);
    }
    out.extend_from_slice(&DATA_SECTION_SEPARATOR);
    out.extend_from_slice(&data);
    out.extend_from_slice(METADATA_MARKER);
    let metadata = Value::map([
        ("binary_format_major_version", Value::Uint16(2)),
        ("binary_format_minor_version", Value::Uint16(0)),
        ("build_epoch", Value::Uint64(BUILD_EPOCH)),
        ("database_type", Value::text(database_type)),
        (
            "description",
            Value::map([("en", Value::text("trailhound test database"))]),
        ),
        ("ip_version", Value::Uint16(6)),
        ("languages", Value::Array(vec![Value::text("en")])),
        (
            "node_count",
            Value::Uint32(u32::try_from(node_count).map_err(|_| too_large())?),
        ),
        ("record_size", Value::Uint16(record_size)),
    ]);
    encode(&metadata, &mut out)?;
    Ok(out)
}

fn maxmind_record(entry: &Entry) -> Value {
    let mut fields = Vec::new();
    if let Some(asn) = entry.asn {
        fields.push(("autonomous_system_number".to_owned(), Value::Uint32(asn)));
    }
    if let Some(org) = &entry.as_org {
        fields.push(("autonomous_system_organization".to_owned(), Value::text(org)));
    }
    if let Some(country) = &entry.country {
        fields.push(("country".to_owned(), Value::map([("iso_code", Value::text(country))])));
    }
    Value::Map(fields)
}

fn ipinfo_record(entry: &Entry) -> Value {
    let mut fields = Vec::new();
    if let Some(asn) = entry.asn {
        fields.push(("asn".to_owned(), Value::Text(format!("AS{asn}"))));
    }
    if let Some(org) = &entry.as_org {
        fields.push(("as_name".to_owned(), Value::text(org)));
    }
    if let Some(country) = &entry.country {
        fields.push(("country".to_owned(), Value::text(country)));
    }
    Value::Map(fields)
}

fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    std::fs::write(path, bytes)
        .map_err(|error| io::Error::new(error.kind(), format!("cannot write {}: {error}", path.display())))
}

fn too_large() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "value too large for a test database")
}

const DATA_SECTION_SEPARATOR: [u8; 16] = [0; 16];
const METADATA_MARKER: &[u8] = b"\xAB\xCD\xEFMaxMind.com";

/// A network's place in the IPv6 tree: IPv4 networks sit under `::/96`.
fn tree_prefix(network: &IpNet) -> (u128, u8) {
    match network.trunc() {
        IpNet::V4(net) => (u128::from(u32::from(net.network())), 96 + net.prefix_len()),
        IpNet::V6(net) => (u128::from(net.network()), net.prefix_len()),
    }
}

/// One record of a tree node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    Empty,
    Node(usize),
    /// An offset into the data section.
    Data(usize),
}

/// The search tree; node 0 is the root.
struct Tree {
    nodes: Vec<[Record; 2]>,
}

impl Default for Tree {
    fn default() -> Tree {
        Tree {
            nodes: vec![[Record::Empty; 2]],
        }
    }
}

impl Tree {
    /// Points the network `address/len` at `data`, replacing whatever was inside it and
    /// splitting a broader network's record on the way down.
    fn insert(&mut self, address: u128, len: u8, data: usize) {
        if len == 0 {
            // The whole space: both halves of the root.
            self.insert(0, 1, data);
            self.insert(1 << 127, 1, data);
            return;
        }
        let mut node = 0;
        for depth in 0..len {
            let bit = usize::from((address >> (127 - depth)) & 1 == 1);
            if depth + 1 == len {
                self.nodes[node][bit] = Record::Data(data);
                return;
            }
            node = match self.nodes[node][bit] {
                Record::Node(next) => next,
                inherited => {
                    let next = self.nodes.len();
                    self.nodes.push([inherited; 2]);
                    self.nodes[node][bit] = Record::Node(next);
                    next
                }
            };
        }
    }
}

fn write_node(out: &mut Vec<u8>, left: usize, right: usize, record_size: u16) {
    // Values were checked to fit the record size, so the casts keep every bit.
    let (left, right) = (left as u32, right as u32);
    let (l, r) = (left.to_be_bytes(), right.to_be_bytes());
    if record_size == 24 {
        out.extend_from_slice(&[l[1], l[2], l[3], r[1], r[2], r[3]]);
    } else {
        // 28 bits: the low 24 bits of each record, the middle byte holding the high nibbles.
        let middle = ((left >> 20) & 0xF0) as u8 | ((right >> 24) & 0x0F) as u8;
        out.extend_from_slice(&[l[1], l[2], l[3], middle, r[1], r[2], r[3]]);
    }
}

/// Data-section type numbers.
const TYPE_STRING: u8 = 2;
const TYPE_UINT16: u8 = 5;
const TYPE_UINT32: u8 = 6;
const TYPE_MAP: u8 = 7;
const TYPE_UINT64: u8 = 9;
const TYPE_ARRAY: u8 = 11;
const TYPE_BOOLEAN: u8 = 14;

fn encode(value: &Value, out: &mut Vec<u8>) -> io::Result<()> {
    match value {
        Value::Text(text) => {
            control(out, TYPE_STRING, text.len())?;
            out.extend_from_slice(text.as_bytes());
        }
        Value::Uint16(number) => unsigned(out, TYPE_UINT16, u64::from(*number))?,
        Value::Uint32(number) => unsigned(out, TYPE_UINT32, u64::from(*number))?,
        Value::Uint64(number) => unsigned(out, TYPE_UINT64, *number)?,
        Value::Bool(flag) => control(out, TYPE_BOOLEAN, usize::from(*flag))?,
        Value::Array(items) => {
            control(out, TYPE_ARRAY, items.len())?;
            for item in items {
                encode(item, out)?;
            }
        }
        Value::Map(pairs) => {
            control(out, TYPE_MAP, pairs.len())?;
            for (key, item) in pairs {
                control(out, TYPE_STRING, key.len())?;
                out.extend_from_slice(key.as_bytes());
                encode(item, out)?;
            }
        }
    }
    Ok(())
}

/// An unsigned integer in as few big-endian bytes as it needs (none for zero).
fn unsigned(out: &mut Vec<u8>, type_number: u8, number: u64) -> io::Result<()> {
    let bytes = number.to_be_bytes();
    let skip = bytes.iter().take_while(|&&byte| byte == 0).count();
    control(out, type_number, bytes.len() - skip)?;
    out.extend_from_slice(&bytes[skip..]);
    Ok(())
}

/// The control byte of a value: type and size, then the extended type and size bytes if needed.
fn control(out: &mut Vec<u8>, type_number: u8, size: usize) -> io::Result<()> {
    let (size_bits, extra): (u8, Vec<u8>) = if size < 29 {
        (size as u8, Vec::new())
    } else if size < 29 + 256 {
        (29, vec![(size - 29) as u8])
    } else if size < 285 + 65_536 {
        (30, ((size - 285) as u16).to_be_bytes().to_vec())
    } else if size < 65_821 + (1 << 24) {
        (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec())
    } else {
        return Err(too_large());
    };
    if type_number <= 7 {
        out.push((type_number << 5) | size_bits);
    } else {
        out.push(size_bits);
        out.push(type_number - 7);
    }
    out.extend_from_slice(&extra);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::IpAddr;

    use maxminddb::Reader;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq, Eq)]
    struct Country<'a> {
        iso_code: &'a str,
    }

    #[derive(Debug, Deserialize, PartialEq, Eq)]
    struct MaxMind<'a> {
        autonomous_system_number: Option<u32>,
        autonomous_system_organization: Option<&'a str>,
        #[serde(borrow)]
        country: Option<Country<'a>>,
    }

    #[derive(Debug, Deserialize, PartialEq, Eq)]
    struct Ipinfo<'a> {
        asn: Option<&'a str>,
        as_name: Option<&'a str>,
        country: Option<&'a str>,
    }

    fn net(text: &str) -> IpNet {
        text.parse().unwrap_or_default()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    fn entry(network: &str, asn: u32, org: &str, country: &str) -> Entry {
        Entry {
            network: net(network),
            asn: Some(asn),
            as_org: Some(org.into()),
            country: Some(country.into()),
        }
    }

    fn sample() -> Vec<Entry> {
        vec![
            // The /24 comes first: order must not matter.
            entry("198.51.100.0/24", 64_501, "Inner Org", "FR"),
            entry("198.51.0.0/16", 64_500, "Outer Org", "DE"),
            entry("2001:db8::/32", 64_502, "Six Org", "NL"),
            Entry {
                network: net("203.0.113.0/25"),
                asn: Some(64_503),
                ..Entry::default()
            },
            // Host bits are ignored.
            entry("192.0.2.77/24", 4_200_000_000, "Big ASN", "JP"),
        ]
    }

    fn maxmind<'a>(reader: &'a Reader<Vec<u8>>, address: &str) -> Option<MaxMind<'a>> {
        reader.lookup(ip(address)).ok()?.decode().ok()?
    }

    #[test]
    fn the_maxmind_reader_reads_what_is_written() -> Result<(), Box<dyn std::error::Error>> {
        let reader = Reader::from_source(maxmind_bytes(&sample(), "Test-ASN-Country")?)?;
        reader.verify()?;
        assert_eq!(reader.metadata().database_type, "Test-ASN-Country");
        assert_eq!(reader.metadata().build_epoch, BUILD_EPOCH);
        assert_eq!(reader.metadata().record_size, 24);

        let outer = maxmind(&reader, "198.51.7.1").ok_or("outer")?;
        assert_eq!(outer.autonomous_system_number, Some(64_500));
        assert_eq!(outer.autonomous_system_organization, Some("Outer Org"));
        assert_eq!(outer.country, Some(Country { iso_code: "DE" }));
        // Either side of the nested /24 is the /16; inside it, the /24.
        assert_eq!(
            maxmind(&reader, "198.51.99.255").and_then(|r| r.autonomous_system_number),
            Some(64_500)
        );
        assert_eq!(
            maxmind(&reader, "198.51.100.0").and_then(|r| r.autonomous_system_number),
            Some(64_501)
        );
        assert_eq!(
            maxmind(&reader, "198.51.100.255").and_then(|r| r.country),
            Some(Country { iso_code: "FR" })
        );
        assert_eq!(
            maxmind(&reader, "198.51.101.0").and_then(|r| r.autonomous_system_number),
            Some(64_500)
        );

        let six = maxmind(&reader, "2001:db8:ffff::1").ok_or("six")?;
        assert_eq!(six.autonomous_system_organization, Some("Six Org"));
        let partial = maxmind(&reader, "203.0.113.127").ok_or("partial")?;
        assert_eq!(
            partial,
            MaxMind {
                autonomous_system_number: Some(64_503),
                autonomous_system_organization: None,
                country: None
            }
        );
        assert_eq!(
            maxmind(&reader, "192.0.2.1").and_then(|r| r.autonomous_system_number),
            Some(4_200_000_000)
        );

        for uncovered in [
            "203.0.113.128",
            "198.50.255.255",
            "8.8.8.8",
            "2001:db9::1",
            "::1",
            "0.0.0.0",
        ] {
            let result = reader.lookup(ip(uncovered))?;
            assert!(!result.has_data(), "{uncovered}");
        }
        Ok(())
    }

    #[test]
    fn the_ipinfo_layout() -> Result<(), Box<dyn std::error::Error>> {
        let reader = Reader::from_source(ipinfo_bytes(&sample())?)?;
        reader.verify()?;
        let record: Ipinfo<'_> = reader.lookup(ip("198.51.100.9"))?.decode()?.ok_or("record")?;
        assert_eq!(
            record,
            Ipinfo {
                asn: Some("AS64501"),
                as_name: Some("Inner Org"),
                country: Some("FR")
            }
        );
        Ok(())
    }

    #[test]
    fn a_repeated_network_keeps_its_last_record_and_the_whole_space_works() -> Result<(), Box<dyn std::error::Error>> {
        let records = [
            (net("::/0"), Value::text("everything")),
            (net("0.0.0.0/0"), Value::text("ipv4")),
            (net("10.0.0.0/8"), Value::text("first")),
            (net("10.0.0.0/8"), Value::text("second")),
        ];
        let reader = Reader::from_source(records_bytes(&records, "Test")?)?;
        reader.verify()?;
        let text = |address: &str| -> Option<String> { reader.lookup(ip(address)).ok()?.decode().ok()? };
        assert_eq!(text("10.1.2.3").as_deref(), Some("second"));
        assert_eq!(text("11.1.2.3").as_deref(), Some("ipv4"));
        assert_eq!(text("2001:db8::1").as_deref(), Some("everything"));
        Ok(())
    }

    #[test]
    fn every_value_type_and_size_class_round_trips() -> Result<(), Box<dyn std::error::Error>> {
        #[derive(Debug, Deserialize, PartialEq)]
        struct All {
            short: String,
            medium: String,
            long: String,
            huge: String,
            zero: u32,
            small: u16,
            wide: u64,
            yes: bool,
            list: Vec<u32>,
            nested: BTreeMap<String, u32>,
        }
        let many: Vec<(String, Value)> = (0..300)
            .map(|index| (format!("k{index}"), Value::Uint32(index)))
            .collect();
        let value = Value::map([
            ("short", Value::text("x".repeat(28))),
            ("medium", Value::text("y".repeat(200))),
            ("long", Value::text("z".repeat(5_000))),
            ("huge", Value::text("w".repeat(70_000))),
            ("zero", Value::Uint32(0)),
            ("small", Value::Uint16(513)),
            ("wide", Value::Uint64(u64::MAX)),
            ("yes", Value::Bool(true)),
            ("list", Value::Array((0..40).map(Value::Uint32).collect())),
            ("nested", Value::Map(many)),
        ]);
        let reader = Reader::from_source(records_bytes(&[(net("192.0.2.0/24"), value)], "Test")?)?;
        reader.verify()?;
        let all: All = reader.lookup(ip("192.0.2.1"))?.decode()?.ok_or("record")?;
        assert_eq!(
            (all.short.len(), all.medium.len(), all.long.len(), all.huge.len()),
            (28, 200, 5_000, 70_000)
        );
        assert_eq!((all.zero, all.small, all.wide, all.yes), (0, 513, u64::MAX, true));
        assert_eq!(all.list, (0..40).collect::<Vec<_>>());
        assert_eq!(all.nested.len(), 300);
        assert_eq!(all.nested.get("k299"), Some(&299));
        Ok(())
    }

    #[test]
    fn record_size_28_when_24_bits_do_not_fit() -> Result<(), Box<dyn std::error::Error>> {
        // A large record puts data offsets past 2^24.
        let big = Value::text("b".repeat(1 << 24));
        let records = [(net("10.0.0.0/8"), big), (net("11.0.0.0/8"), Value::text("after"))];
        let reader = Reader::from_source(records_bytes(&records, "Test")?)?;
        assert_eq!(reader.metadata().record_size, 28);
        let after: Option<String> = reader.lookup(ip("11.2.3.4"))?.decode()?;
        assert_eq!(after.as_deref(), Some("after"));
        let big: Option<&str> = reader.lookup(ip("10.2.3.4"))?.decode()?;
        assert_eq!(big.map(str::len), Some(1 << 24));
        Ok(())
    }

    #[test]
    fn an_empty_database_is_valid() -> Result<(), Box<dyn std::error::Error>> {
        let reader = Reader::from_source(records_bytes(&[], "Empty")?)?;
        assert!(!reader.lookup(ip("1.2.3.4"))?.has_data());
        assert!(!reader.lookup(ip("2001:db8::1"))?.has_data());
        Ok(())
    }

    #[test]
    fn files_are_written_where_asked() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("asn.mmdb");
        write_mmdb(&sample(), "Test-ASN", &path)?;
        let reader = Reader::open_readfile(&path)?;
        assert_eq!(reader.metadata().database_type, "Test-ASN");
        let missing = dir.path().join("no/such/folder/x.mmdb");
        let error = write_ipinfo_mmdb(&sample(), &missing)
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default();
        assert!(error.contains("no/such/folder/x.mmdb"), "{error}");
        Ok(())
    }
}
